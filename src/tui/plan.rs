//! The Plan view (`8`) as one component: the plan's rules over the last periods (how
//! often each triggered, partners reached, what it paid and its share, the flags and
//! disputes it is involved in), the report's findings, and a what-if (`:whatif
//! override_rate=0.015`, `:whatif rate=0.12` …, as `tierdesk plan whatif --set`) with
//! the total and the partners whose payout moves most. Drawing is in `ui/plan.rs`.

use std::collections::BTreeSet;

use crate::plan::report::{self, Report};
use crate::plan::whatif::{self, WhatIf};
use crate::store::Store;

use super::action::Action;
use super::app::{stepped, App, Level, View};
use super::effects::Effect;

/// Periods the view's report covers.
pub const PERIODS: usize = 4;

/// What the Plan view shows, loaded on the worker.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanData {
    pub report: Report,
    pub currency: String,
}

/// The view's state in the app.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlanState {
    pub data: Option<Result<Box<PlanData>, String>>,
    pub loading: bool,
    pub sel: usize,
    /// The last what-if: the changes as typed, and its result.
    pub whatif: Option<(String, Result<Box<WhatIf>, String>)>,
}

impl PlanState {
    fn len(&self) -> usize {
        match &self.data {
            Some(Ok(d)) => d.report.rules.len(),
            _ => 0,
        }
    }
}

/// Loads the report (on the worker).
pub fn load(store: &Store) -> Result<PlanData, String> {
    let ds = store.load_dataset().map_err(|e| e.to_string())?;
    let (flagged, disputed): (BTreeSet<String>, BTreeSet<String>) =
        store.flagged_and_disputed().map_err(|e| e.to_string())?;
    Ok(PlanData {
        report: report::report(&ds, Some(PERIODS), &flagged, &disputed),
        currency: ds.program.currency.clone(),
    })
}

/// Runs a what-if of `changes` (`KEY=VALUE` words, as `plan whatif --set`) on the worker.
pub fn run_whatif(store: &Store, changes: &str) -> Result<WhatIf, String> {
    let ds = store.load_dataset().map_err(|e| e.to_string())?;
    let mut plan = ds.plan.clone();
    let words: Vec<&str> = changes.split_whitespace().collect();
    if words.is_empty() {
        return Err("whatif needs a change, e.g. :whatif override_rate=0.015".into());
    }
    for w in words {
        let c = whatif::parse_set(w).map_err(|e| format!("{w}: {e}"))?;
        plan = whatif::apply_change(&plan, &c).map_err(|e| format!("{w}: {e}"))?;
    }
    Ok(whatif::whatif(&ds, &plan, None))
}

impl App {
    /// Asks the worker for the Plan view unless it is on its way.
    pub(crate) fn plan_effect(&mut self) -> Vec<Effect> {
        if self.plan.loading {
            return vec![];
        }
        self.plan.loading = true;
        vec![Effect::LoadPlan]
    }

    /// `whatif KEY=VALUE ...` from the palette: opens the Plan view and runs it.
    pub(crate) fn whatif_command(&mut self, args: &[&str]) -> Vec<Effect> {
        self.view = View::Plan;
        let changes = args.join(" ");
        if changes.trim().is_empty() {
            self.message = Some((
                Level::Error,
                "whatif needs a change, e.g. :whatif override_rate=0.015".into(),
            ));
            return vec![];
        }
        self.message = Some((Level::Info, format!("what if {changes} …")));
        let mut fx = self.plan_effect();
        fx.push(Effect::PlanWhatIf(changes));
        fx
    }

    /// Actions the Plan view handles itself; `None` lets the app handle the rest.
    pub(crate) fn plan_update(&mut self, action: Action) -> Option<Vec<Effect>> {
        if self.view != View::Plan {
            return None;
        }
        let n = self.plan.len();
        let page = self.size.get().1.saturating_sub(12).max(1) as isize;
        let step = |by: isize, a: &mut App| a.plan.sel = stepped(a.plan.sel, by, n);
        match action {
            Action::Up => step(-1, self),
            Action::Down => step(1, self),
            Action::PageUp => step(-page, self),
            Action::PageDown => step(page, self),
            Action::Top => self.plan.sel = 0,
            Action::Bottom => self.plan.sel = n.saturating_sub(1),
            Action::Back => self.view = View::Queue,
            Action::Refresh => {
                self.plan.loading = false;
                return Some(self.plan_effect());
            }
            a if a.acts_on_cases() => {
                self.message = Some((
                    Level::Info,
                    "the Plan view changes nothing: try :whatif override_rate=0.015, or `tierdesk plan apply` (a manager)".into(),
                ));
            }
            _ => return None,
        }
        Some(vec![])
    }

    /// The worker's report for the Plan view.
    pub(crate) fn on_plan(&mut self, r: Result<Box<PlanData>, String>) -> Vec<Effect> {
        self.plan.loading = false;
        self.plan.data = Some(r);
        self.plan.sel = self.plan.sel.min(self.plan.len().saturating_sub(1));
        self.dirty = true;
        vec![]
    }

    /// The worker's what-if.
    pub(crate) fn on_plan_whatif(
        &mut self,
        changes: String,
        r: Result<Box<WhatIf>, String>,
    ) -> Vec<Effect> {
        let cur = self.currency().to_string();
        let money = |d| crate::money::format_money(d, &cur);
        self.message = Some(match &r {
            Ok(w) => (
                Level::Ok,
                format!(
                    "what if {changes}: total {} → {} (Δ {})",
                    money(w.total.before),
                    money(w.total.after),
                    money(w.total.difference)
                ),
            ),
            Err(e) => (Level::Error, format!("whatif: {e}")),
        });
        self.plan.whatif = Some((changes, r));
        self.dirty = true;
        vec![]
    }
}
