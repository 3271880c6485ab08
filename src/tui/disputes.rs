//! The Disputes view as one component: every dispute (partner inquiry) newest first,
//! with its age in days and whether it is past the review SLA (`[workbench]
//! dispute_sla_days`). `Enter` opens the disputed transaction's record. Drawing is in
//! `ui/disputes.rs`.
//!
//! Pure: the age is computed from a `today` handed to [`load`] (the worker reads the
//! clock, or a test fixes it).

use chrono::NaiveDate;

use crate::dispute::State;
use crate::store::Store;

use super::action::Action;
use super::app::{stepped, App, Level, Pane, View};
use super::effects::Effect;

/// Where a dispute stands against the SLA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sla {
    /// It has its answer (approved, partially approved, denied, withdrawn or closed).
    Answered,
    /// Still with the reviewers: days left before it is overdue (0: due today).
    Due(i64),
    /// Still with the reviewers and older than the SLA by this many days.
    Overdue(i64),
    /// The opening date or the state cannot be read: shown, never guessed.
    Unknown,
}

impl Sla {
    pub fn label(self) -> String {
        match self {
            Sla::Answered => "answered".into(),
            Sla::Due(0) => "due today".into(),
            Sla::Due(d) => format!("{d}d left"),
            Sla::Overdue(d) => format!("overdue {d}d"),
            Sla::Unknown => "?".into(),
        }
    }
}

/// A dispute's SLA status: `age` days after it was opened, in `state`.
pub fn sla_status(state: &str, age: Option<i64>, sla_days: u32) -> Sla {
    let Ok(st) = state.parse::<State>() else {
        return Sla::Unknown;
    };
    if st.is_answered() {
        return Sla::Answered;
    }
    match age {
        Some(a) if a > i64::from(sla_days) => Sla::Overdue(a - i64::from(sla_days)),
        Some(a) => Sla::Due(i64::from(sla_days) - a.max(0)),
        None => Sla::Unknown,
    }
}

/// One line of the view.
#[derive(Debug, Clone, PartialEq)]
pub struct DisputeLine {
    pub dispute_id: String,
    pub partner_id: String,
    pub transaction_id: String,
    pub reason_code: String,
    /// Exact decimal text as stored.
    pub claimed: String,
    pub granted: Option<String>,
    pub state: String,
    pub opened_at: String,
    /// Days from the opening date to `today` (None: the date cannot be read).
    pub age_days: Option<i64>,
    pub sla: Sla,
}

/// What the Disputes view shows, loaded on the worker.
#[derive(Debug, Clone, PartialEq)]
pub struct DisputesData {
    /// Newest first.
    pub lines: Vec<DisputeLine>,
    pub today: NaiveDate,
    pub sla_days: u32,
}

impl DisputesData {
    pub fn overdue(&self) -> usize {
        self.lines
            .iter()
            .filter(|l| matches!(l.sla, Sla::Overdue(_)))
            .count()
    }
}

/// The view's state in the app.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DisputesState {
    pub data: Option<Result<Box<DisputesData>, String>>,
    pub loading: bool,
    pub sel: usize,
}

impl DisputesState {
    pub fn selected(&self) -> Option<&DisputeLine> {
        match &self.data {
            Some(Ok(d)) => d.lines.get(self.sel),
            _ => None,
        }
    }

    fn len(&self) -> usize {
        match &self.data {
            Some(Ok(d)) => d.lines.len(),
            _ => 0,
        }
    }
}

/// The calendar date of a stored RFC 3339 time (`2026-10-01T10:00:00Z`).
fn date_of(ts: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(ts.get(..10)?, "%Y-%m-%d").ok()
}

/// Loads the view (on the worker) as of `today`.
pub fn load(store: &Store, today: NaiveDate, sla_days: u32) -> Result<DisputesData, String> {
    let rows = store.disputes(None).map_err(|e| e.to_string())?;
    let mut lines: Vec<DisputeLine> = rows
        .into_iter()
        .map(|d| {
            let age_days = date_of(&d.opened_at).map(|o| (today - o).num_days());
            DisputeLine {
                sla: sla_status(&d.state, age_days, sla_days),
                age_days,
                dispute_id: d.dispute_id,
                partner_id: d.partner_id,
                transaction_id: d.transaction_id,
                reason_code: d.reason_code,
                claimed: d.claimed,
                granted: d.granted,
                state: d.state,
                opened_at: d.opened_at,
            }
        })
        .collect();
    lines.sort_by(|a, b| {
        b.opened_at
            .cmp(&a.opened_at)
            .then_with(|| b.dispute_id.cmp(&a.dispute_id))
    });
    Ok(DisputesData {
        lines,
        today,
        sla_days,
    })
}

impl App {
    /// Asks the worker for the Disputes view unless it is on its way.
    pub(crate) fn disputes_effect(&mut self) -> Vec<Effect> {
        if self.disputes.loading {
            return vec![];
        }
        self.disputes.loading = true;
        vec![Effect::LoadDisputes]
    }

    /// Actions the Disputes view handles itself; `None` lets the app handle the rest.
    pub(crate) fn disputes_update(&mut self, action: Action) -> Option<Vec<Effect>> {
        if self.view != View::Disputes {
            return None;
        }
        let n = self.disputes.len();
        let page = self.size.get().1.saturating_sub(9).max(1) as isize;
        let step = |by: isize, a: &mut App| a.disputes.sel = stepped(a.disputes.sel, by, n);
        match action {
            Action::Up => step(-1, self),
            Action::Down => step(1, self),
            Action::PageUp => step(-page, self),
            Action::PageDown => step(page, self),
            Action::Top => self.disputes.sel = 0,
            Action::Bottom => self.disputes.sel = n.saturating_sub(1),
            Action::Back => self.view = View::Queue,
            Action::Refresh => {
                let mut fx = self.disputes_effect();
                fx.extend([Effect::LoadStatus, Effect::LoadCounters]);
                return Some(fx);
            }
            Action::Open => {
                let Some(id) = self.disputes.selected().map(|l| l.transaction_id.clone()) else {
                    self.message = Some((Level::Error, "nothing selected".into()));
                    return Some(vec![]);
                };
                return Some(self.open_record_from(View::Disputes, Pane::Detail, id));
            }
            a if a.acts_on_cases() => {
                self.message = Some((
                    Level::Info,
                    "disputes move with `tierdesk dispute move`: Enter opens the disputed record"
                        .into(),
                ));
            }
            _ => return None,
        }
        Some(vec![])
    }

    /// The worker's answer for the Disputes view.
    pub(crate) fn on_disputes(&mut self, r: Result<Box<DisputesData>, String>) -> Vec<Effect> {
        self.disputes.loading = false;
        self.disputes.data = Some(r);
        self.disputes.sel = self.disputes.sel.min(self.disputes.len().saturating_sub(1));
        self.dirty = true;
        vec![]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Role};
    use crate::tui::keymap::Keymap;
    use crate::tui::theme::Theme;
    use std::collections::BTreeMap;

    fn line(id: &str, tx: &str, state: &str, age: i64) -> DisputeLine {
        DisputeLine {
            dispute_id: id.into(),
            partner_id: "P1".into(),
            transaction_id: tx.into(),
            reason_code: "incorrect_amount".into(),
            claimed: "120.00".into(),
            granted: None,
            state: state.into(),
            opened_at: "2026-10-01T10:00:00Z".into(),
            age_days: Some(age),
            sla: sla_status(state, Some(age), 10),
        }
    }

    #[test]
    fn the_sla_counts_only_disputes_still_with_the_reviewers() {
        assert_eq!(sla_status("open", Some(3), 10), Sla::Due(7));
        assert_eq!(sla_status("in_review", Some(10), 10), Sla::Due(0));
        assert_eq!(sla_status("needs_info", Some(11), 10), Sla::Overdue(1));
        assert_eq!(sla_status("escalated", Some(40), 10), Sla::Overdue(30));
        for answered in [
            "approved",
            "partially_approved",
            "denied",
            "withdrawn",
            "closed",
        ] {
            assert_eq!(sla_status(answered, Some(40), 10), Sla::Answered);
        }
        assert_eq!(sla_status("bogus", Some(40), 10), Sla::Unknown);
        assert_eq!(sla_status("open", None, 10), Sla::Unknown);
        assert_eq!(Sla::Overdue(3).label(), "overdue 3d");
    }

    #[test]
    fn enter_opens_the_disputed_record_and_esc_comes_back() {
        let mut a = App::new(
            "ana".into(),
            Role::Analyst,
            Config::default(),
            Theme::monochrome(),
            Keymap::new(&BTreeMap::new()).unwrap(),
        );
        assert_eq!(a.update(Action::DisputesView), vec![Effect::LoadDisputes]);
        assert_eq!(a.update(Action::DisputesView), vec![]);
        a.on_disputes(Ok(Box::new(DisputesData {
            lines: vec![line("D2", "T2", "open", 12), line("D1", "T1", "closed", 30)],
            today: NaiveDate::from_ymd_opt(2026, 10, 13).unwrap(),
            sla_days: 10,
        })));
        assert_eq!(a.disputes.selected().unwrap().dispute_id, "D2");
        a.update(Action::Down);
        a.update(Action::Down);
        assert_eq!(a.disputes.selected().unwrap().dispute_id, "D1");
        // y copies the disputed transaction's id.
        assert_eq!(a.update(Action::CopyId), vec![Effect::Copy("T1".into())]);
        let fx = a.update(Action::Open);
        assert_eq!(fx, vec![Effect::LoadDetail("T1".into())]);
        assert_eq!(a.view, View::Record);
        assert_eq!(a.update(Action::Back), vec![Effect::LoadDisputes]);
        assert_eq!(a.view, View::Disputes);
        a.on_disputes(Err("gone".into()));
        assert!(a.update(Action::Refresh).contains(&Effect::LoadDisputes));
    }
}
