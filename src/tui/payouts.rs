//! The Payouts view as one component: payout runs (newest first), the selected run's
//! payees (loaded per run: masked account, amount, holds, bank state) and the
//! reconciliation exceptions; `Tab` moves the focus between the three. `approve_run`
//! and `release_hold` call the payout core (`payout::approve` / `payout::release`)
//! after a confirmation, as the workbench's user: the core's refusals (four-eyes, the
//! manager role, a run past draft) come back in the status line. Drawing is in
//! `ui/payouts.rs`.

use rust_decimal::Decimal;

use crate::payout::checks::{Hold, Payee};
use crate::store::payout::{BankException, RunRow, RunTotals};
use crate::store::Store;
use crate::workflow::Actor;

use super::action::Action;
use super::app::{stepped, App, Level, Modal, View};
use super::effects::{Effect, Env};
use super::flow::Confirm;

/// The focused part of the view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PayoutPane {
    #[default]
    Runs,
    Payees,
    Exceptions,
}

impl PayoutPane {
    fn shift(self, by: isize) -> PayoutPane {
        const ALL: [PayoutPane; 3] = [PayoutPane::Runs, PayoutPane::Payees, PayoutPane::Exceptions];
        let i = ALL.iter().position(|p| *p == self).unwrap_or(0) as isize;
        ALL[(i + by).rem_euclid(3) as usize]
    }
}

/// A run in the list.
#[derive(Debug, Clone, PartialEq)]
pub struct RunLine {
    pub run: RunRow,
    pub totals: RunTotals,
}

/// One payee of the selected run, with the account shown masked (last four only).
#[derive(Debug, Clone, PartialEq)]
pub struct PayeeLine {
    pub partner_id: String,
    /// `IBAN ****1234`, `****6789`, `-` (none on file) — never the full number.
    pub account: String,
    pub amount: Decimal,
    pub currency: String,
    /// payable | held | carried_forward
    pub status: String,
    pub holds: Vec<Hold>,
    pub released: Vec<String>,
    /// prepared | sent | settled | returned | unmatched
    pub bank_state: String,
    pub return_code: Option<String>,
}

impl PayeeLine {
    /// Whether `release_hold` can lift something (a bank or tax hold).
    pub fn releasable(&self) -> bool {
        self.holds
            .iter()
            .any(|h| crate::payout::checks::PAYEE_CODES.contains(&h.code.as_str()))
    }
}

/// What the view shows besides the payees, loaded on the worker.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PayoutsData {
    pub runs: Vec<RunLine>,
    pub exceptions: Vec<BankException>,
}

/// The view's state in the app.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PayoutsState {
    pub data: Option<Result<Box<PayoutsData>, String>>,
    pub loading: bool,
    pub pane: PayoutPane,
    pub run_sel: usize,
    pub payee_sel: usize,
    pub exc_sel: usize,
    /// The payees of one run (the selected one, once loaded).
    pub payees: Option<(String, Result<Vec<PayeeLine>, String>)>,
}

impl PayoutsState {
    pub fn selected_run(&self) -> Option<&RunLine> {
        match &self.data {
            Some(Ok(d)) => d.runs.get(self.run_sel),
            _ => None,
        }
    }

    /// The payees shown: those of the selected run, when loaded.
    pub fn shown_payees(&self) -> Option<&Result<Vec<PayeeLine>, String>> {
        let run = self.selected_run()?;
        match &self.payees {
            Some((id, r)) if *id == run.run.run_id => Some(r),
            _ => None,
        }
    }

    pub fn selected_payee(&self) -> Option<&PayeeLine> {
        match self.shown_payees() {
            Some(Ok(p)) => p.get(self.payee_sel),
            _ => None,
        }
    }

    fn lens(&self) -> (usize, usize, usize) {
        let (runs, exc) = match &self.data {
            Some(Ok(d)) => (d.runs.len(), d.exceptions.len()),
            _ => (0, 0),
        };
        let payees = match self.shown_payees() {
            Some(Ok(p)) => p.len(),
            _ => 0,
        };
        (runs, payees, exc)
    }
}

/// The last four characters of an account number or IBAN behind stars; nothing of a
/// number of four characters or fewer.
fn last_four(s: &str) -> String {
    let compact: Vec<char> = s.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.len() <= 4 {
        return "****".into();
    }
    let tail: String = compact[compact.len() - 4..].iter().collect();
    format!("****{tail}")
}

/// How a payee's account reads in the workbench: the IBAN's or the account number's
/// last four, never more.
pub fn masked_account(p: &Payee) -> String {
    fn nonempty(v: &Option<String>) -> Option<&str> {
        v.as_deref().filter(|s| !s.trim().is_empty())
    }
    if let Some(iban) = nonempty(&p.iban) {
        return format!("IBAN {}", last_four(iban));
    }
    match nonempty(&p.account_number) {
        Some(a) => last_four(a),
        None => "-".into(),
    }
}

/// Loads the runs and the reconciliation exceptions (on the worker).
pub fn load(store: &Store) -> Result<PayoutsData, String> {
    let s = |e: crate::store::StoreError| e.to_string();
    let runs = store
        .payout_runs()
        .map_err(s)?
        .into_iter()
        .map(|(run, totals)| RunLine { run, totals })
        .collect();
    let exceptions = store.bank_exceptions(500).map_err(s)?;
    Ok(PayoutsData { runs, exceptions })
}

/// Loads one run's payees with masked accounts (on the worker). Bank details that
/// cannot be opened (no cache key) show as such; the payees are still listed.
pub fn load_payees(store: &Store, run_id: &str) -> Result<Vec<PayeeLine>, String> {
    let rows = store.payout_run_payees(run_id).map_err(|e| e.to_string())?;
    let details = store.payees();
    Ok(rows
        .into_iter()
        .map(|p| {
            let account = match &details {
                Ok(d) => d
                    .get(&p.partner_id)
                    .map(masked_account)
                    .unwrap_or_else(|| "-".into()),
                Err(_) => "(no key)".into(),
            };
            PayeeLine {
                account,
                partner_id: p.partner_id,
                amount: p.amount,
                currency: p.currency,
                status: p.status,
                holds: p.holds,
                released: p.released,
                bank_state: p.state,
                return_code: p.return_code,
            }
        })
        .collect())
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// `approve_run` on the worker: the core's four-eyes approval as the workbench's user.
pub fn approve(store: &mut Store, env: &Env, run_id: &str) -> Result<String, String> {
    let actor = Actor::new(env.user.clone(), env.role);
    crate::payout::approve(store, &actor, run_id, "approved in the workbench", &now())
        .map(|r| format!("{} approved by {}", r.run_id, actor.user))
        .map_err(|e| format!("approve_run: {e}"))
}

/// `release_hold` on the worker: lifts a payee's bank or tax holds in a run.
pub fn release(
    store: &mut Store,
    env: &Env,
    run_id: &str,
    partner_id: &str,
) -> Result<String, String> {
    let actor = Actor::new(env.user.clone(), env.role);
    crate::payout::release(
        store,
        &actor,
        run_id,
        partner_id,
        "released in the workbench after a call-back",
        &now(),
    )
    .map(|p| {
        format!(
            "{} in {run_id}: holds released → {}",
            p.partner_id, p.status
        )
    })
    .map_err(|e| format!("release_hold: {e}"))
}

impl App {
    /// Asks the worker for the runs and exceptions unless they are on their way.
    pub(crate) fn payouts_effect(&mut self) -> Vec<Effect> {
        if self.payouts.loading {
            return vec![];
        }
        self.payouts.loading = true;
        vec![Effect::LoadPayouts]
    }

    /// The selected run's payees, unless they are the ones shown.
    fn payees_effect(&mut self, again: bool) -> Vec<Effect> {
        let Some(id) = self.payouts.selected_run().map(|r| r.run.run_id.clone()) else {
            return vec![];
        };
        if !again && matches!(&self.payouts.payees, Some((p, _)) if *p == id) {
            return vec![];
        }
        vec![Effect::LoadPayoutPayees(id)]
    }

    /// Actions the Payouts view handles itself; `None` lets the app handle the rest.
    pub(crate) fn payouts_update(&mut self, action: Action) -> Option<Vec<Effect>> {
        if matches!(action, Action::ApproveRun | Action::ReleaseHold) && self.view != View::Payouts
        {
            self.message = Some((
                Level::Info,
                format!(
                    "{} works in the Payouts view ({})",
                    action.name(),
                    self.keymap.short(Action::PayoutsView)
                ),
            ));
            return Some(vec![]);
        }
        if self.view != View::Payouts {
            return None;
        }
        let (runs, payees, exc) = self.payouts.lens();
        let page = self.size.get().1.saturating_sub(14).max(1) as isize;
        let by = match action {
            Action::Up => Some(-1),
            Action::Down => Some(1),
            Action::PageUp => Some(-page),
            Action::PageDown => Some(page),
            Action::Top => Some(isize::MIN / 2),
            Action::Bottom => Some(isize::MAX / 2),
            _ => None,
        };
        if let Some(by) = by {
            let p = &mut self.payouts;
            match p.pane {
                PayoutPane::Runs => {
                    let before = p.run_sel;
                    p.run_sel = stepped(p.run_sel, by, runs);
                    if p.run_sel != before {
                        p.payee_sel = 0;
                        return Some(self.payees_effect(false));
                    }
                }
                PayoutPane::Payees => p.payee_sel = stepped(p.payee_sel, by, payees),
                PayoutPane::Exceptions => p.exc_sel = stepped(p.exc_sel, by, exc),
            }
            return Some(vec![]);
        }
        match action {
            Action::NextPane => self.payouts.pane = self.payouts.pane.shift(1),
            Action::PrevPane => self.payouts.pane = self.payouts.pane.shift(-1),
            Action::Open if self.payouts.pane == PayoutPane::Runs => {
                self.payouts.pane = PayoutPane::Payees;
            }
            Action::Back if self.payouts.pane != PayoutPane::Runs => {
                self.payouts.pane = PayoutPane::Runs;
            }
            Action::Back => self.view = View::Queue,
            Action::Refresh => {
                // The runs' answer reloads the selected run's payees too.
                let mut fx = self.payouts_effect();
                fx.extend([Effect::LoadStatus, Effect::LoadCounters]);
                return Some(fx);
            }
            Action::ApproveRun => return Some(self.confirm_approve_run()),
            Action::ReleaseHold => return Some(self.confirm_release_hold()),
            a if a.acts_on_cases() || a == Action::Open => {
                self.message = Some((
                    Level::Info,
                    format!(
                        "in Payouts: {} approves the selected run, {} releases the selected payee's holds",
                        self.keymap.short(Action::ApproveRun),
                        self.keymap.short(Action::ReleaseHold)
                    ),
                ));
            }
            _ => return None,
        }
        Some(vec![])
    }

    fn confirm_approve_run(&mut self) -> Vec<Effect> {
        let Some(r) = self.payouts.selected_run() else {
            self.message = Some((Level::Error, "no payout run selected".into()));
            return vec![];
        };
        let run = &r.run;
        let lines = vec![
            format!(
                "Approve payout run {} ({}, {})?",
                run.run_id, run.period, run.state
            ),
            format!(
                "{} payees: {} payable, total {}; {} held.",
                r.totals.payees,
                r.totals.payable,
                crate::money::format_money(r.totals.payable_total, &run.currency),
                r.totals.held
            ),
            format!(
                "Prepared by {}; you approve as {} ({}). A different manager must approve.",
                run.prepared_by,
                self.user,
                self.role.as_str()
            ),
        ];
        let id = run.run_id.clone();
        self.modal = Some(Modal::Confirm(Box::new(Confirm {
            title: "Approve payout run".into(),
            lines,
            working: format!("working: approving {id} …"),
            effects: vec![Effect::ApproveRun(id)],
        })));
        vec![]
    }

    fn confirm_release_hold(&mut self) -> Vec<Effect> {
        let Some(run) = self.payouts.selected_run().map(|r| r.run.run_id.clone()) else {
            self.message = Some((Level::Error, "no payout run selected".into()));
            return vec![];
        };
        let Some(p) = self.payouts.selected_payee() else {
            self.message = Some((
                Level::Error,
                "select a payee first (Tab to the payees, j/k)".into(),
            ));
            return vec![];
        };
        if !p.releasable() {
            self.message = Some((
                Level::Error,
                format!(
                    "{} has no bank or tax hold in {run} to release",
                    p.partner_id
                ),
            ));
            return vec![];
        }
        let codes: Vec<&str> = p
            .holds
            .iter()
            .map(|h| h.code.as_str())
            .filter(|c| crate::payout::checks::PAYEE_CODES.contains(c))
            .collect();
        let partner = p.partner_id.clone();
        let lines = vec![
            format!(
                "Release the holds of {partner} in {run} ({})?",
                codes.join(", ")
            ),
            "Only after a call-back to the number on file: the audit trail records it.".into(),
        ];
        self.modal = Some(Modal::Confirm(Box::new(Confirm {
            title: "Release holds".into(),
            lines,
            working: format!("working: releasing {partner} in {run} …"),
            effects: vec![Effect::ReleaseHold {
                run_id: run,
                partner_id: partner,
            }],
        })));
        vec![]
    }

    /// The worker's runs and exceptions: keeps the selected run, loads its payees.
    pub(crate) fn on_payouts(&mut self, r: Result<Box<PayoutsData>, String>) -> Vec<Effect> {
        let keep = self.payouts.selected_run().map(|r| r.run.run_id.clone());
        self.payouts.loading = false;
        self.payouts.data = Some(r);
        if let (Some(id), Some(Ok(d))) = (keep, &self.payouts.data) {
            if let Some(i) = d.runs.iter().position(|r| r.run.run_id == id) {
                self.payouts.run_sel = i;
            }
        }
        let (runs, _, exc) = self.payouts.lens();
        self.payouts.run_sel = self.payouts.run_sel.min(runs.saturating_sub(1));
        self.payouts.exc_sel = self.payouts.exc_sel.min(exc.saturating_sub(1));
        self.dirty = true;
        self.payees_effect(true)
    }

    /// The worker's payees of one run (dropped if the selection moved on meanwhile).
    pub(crate) fn on_payout_payees(
        &mut self,
        run_id: String,
        r: Result<Vec<PayeeLine>, String>,
    ) -> Vec<Effect> {
        if self.payouts.selected_run().map(|r| r.run.run_id.as_str()) != Some(run_id.as_str()) {
            return vec![];
        }
        let n = r.as_ref().map(|p| p.len()).unwrap_or(0);
        self.payouts.payee_sel = self.payouts.payee_sel.min(n.saturating_sub(1));
        self.payouts.payees = Some((run_id, r));
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

    fn payee(iban: Option<&str>, acct: Option<&str>) -> Payee {
        Payee {
            partner_id: "R1".into(),
            name: "R1".into(),
            legal_name: None,
            country: None,
            tax_form_kind: None,
            routing_number: Some("011000015".into()),
            account_number: acct.map(str::to_string),
            account_name: None,
            account_type: None,
            iban: iban.map(str::to_string),
            bic: None,
            clearing_id: None,
            bank_changed_on: None,
        }
    }

    #[test]
    fn accounts_show_only_their_last_four() {
        assert_eq!(masked_account(&payee(None, Some("9699460090"))), "****0090");
        assert_eq!(
            masked_account(&payee(Some("DE89 3704 0044 0532 0130 00"), Some("1"))),
            "IBAN ****3000"
        );
        assert_eq!(masked_account(&payee(None, Some("123"))), "****");
        assert_eq!(masked_account(&payee(None, Some("  "))), "-");
        assert_eq!(masked_account(&payee(None, None)), "-");
    }

    fn run(id: &str) -> RunLine {
        RunLine {
            run: RunRow {
                run_id: id.into(),
                period: "2026-Q3".into(),
                run_date: chrono::NaiveDate::from_ymd_opt(2026, 9, 30).unwrap(),
                currency: "USD".into(),
                state: "draft".into(),
                prepared_by: "mia".into(),
                prepared_at: "2026-10-01T00:00:00Z".into(),
                approved_by: None,
                approved_at: None,
                rail: None,
                exported_at: None,
            },
            totals: RunTotals::default(),
        }
    }

    fn line(partner: &str, hold: Option<&str>) -> PayeeLine {
        PayeeLine {
            partner_id: partner.into(),
            account: "****0090".into(),
            amount: Decimal::new(12345, 2),
            currency: "USD".into(),
            status: if hold.is_some() { "held" } else { "payable" }.into(),
            holds: hold
                .map(|c| vec![Hold::new(c, "bad routing number")])
                .unwrap_or_default(),
            released: vec![],
            bank_state: "prepared".into(),
            return_code: None,
        }
    }

    #[test]
    fn payees_load_per_selected_run_and_actions_confirm_first() {
        let mut a = App::new(
            "max".into(),
            Role::Manager,
            Config::default(),
            Theme::monochrome(),
            Keymap::new(&BTreeMap::new()).unwrap(),
        );
        assert_eq!(a.update(Action::PayoutsView), vec![Effect::LoadPayouts]);
        let fx = a.on_payouts(Ok(Box::new(PayoutsData {
            runs: vec![run("PR-2"), run("PR-1")],
            exceptions: vec![],
        })));
        assert_eq!(fx, vec![Effect::LoadPayoutPayees("PR-2".into())]);
        a.on_payout_payees(
            "PR-2".into(),
            Ok(vec![line("R1", None), line("R2", Some("invalid_routing"))]),
        );
        // A late answer for another run is dropped.
        a.on_payout_payees("PR-9".into(), Ok(vec![]));
        assert_eq!(a.payouts.shown_payees().unwrap().as_ref().unwrap().len(), 2);
        // Moving in the runs loads the new run's payees only.
        assert_eq!(
            a.update(Action::Down),
            vec![Effect::LoadPayoutPayees("PR-1".into())]
        );
        assert!(a.payouts.shown_payees().is_none());
        a.update(Action::Up);
        a.on_payout_payees(
            "PR-2".into(),
            Ok(vec![line("R1", None), line("R2", Some("invalid_routing"))]),
        );
        // Approve asks first; yes runs the core through the effect.
        assert_eq!(a.update(Action::ApproveRun), vec![]);
        let Some(Modal::Confirm(c)) = &a.modal else {
            panic!("no confirmation: {:?}", a.message)
        };
        assert_eq!(c.effects, vec![Effect::ApproveRun("PR-2".into())]);
        assert!(c.lines.iter().any(|l| l.contains("Prepared by mia")));
        a.modal = None;
        // Release: on a payee without a bank hold it says so; with one it asks.
        a.update(Action::NextPane);
        assert_eq!(a.payouts.pane, PayoutPane::Payees);
        assert_eq!(a.update(Action::ReleaseHold), vec![]);
        assert!(a.modal.is_none());
        assert!(matches!(&a.message, Some((Level::Error, m)) if m.contains("no bank or tax hold")));
        a.update(Action::Down);
        a.update(Action::ReleaseHold);
        let Some(Modal::Confirm(c)) = &a.modal else {
            panic!("no confirmation")
        };
        assert_eq!(
            c.effects,
            vec![Effect::ReleaseHold {
                run_id: "PR-2".into(),
                partner_id: "R2".into()
            }]
        );
        // Outside the view the money actions only say where they work.
        a.modal = None;
        a.update(Action::QueueView);
        assert_eq!(a.update(Action::ApproveRun), vec![]);
        assert!(a.modal.is_none());
    }
}
