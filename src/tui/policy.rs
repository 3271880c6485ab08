//! The Policy view as one component: its state, the data the worker loads for it, how
//! it handles actions and messages. Drawing is in `ui/policy.rs`.
//!
//! It shows the rollout phases in force, each routing rule with what it would do on the
//! current window (the same rows as `tierdesk policy simulate`), the measured precision
//! per kind against the gate for `assist`, and the policy actor's automated decisions;
//! `u` on one rolls it back with a compensating decision (after a confirmation), as
//! `tierdesk policy rollback` does.

use crate::config::Config;
use crate::policy::apply::{self, SimRow};
use crate::policy::precision::KindPrecision;
use crate::store::policy::{PhaseRow, RouteRow};
use crate::store::Store;
use crate::workflow::{self, Actor};

use super::action::Action;
use super::app::{stepped, App, Level, Modal, View};
use super::effects::{Effect, Env};
use super::flow::Confirm;

/// What the Policy view shows, computed on the worker.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyData {
    pub phases: Vec<PhaseRow>,
    /// `policy simulate` on the current window, phases in force.
    pub rules: Vec<SimRow>,
    /// Flags of the review window the rules route.
    pub flags: usize,
    pub precision: Vec<KindPrecision>,
    /// The gate for `assist`: minimum precision and decisions.
    pub gate: (f64, u32),
    /// The policy actor's adjustments (and those rolled back), newest first.
    pub automated: Vec<RouteRow>,
}

/// The view's state in the app.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PolicyState {
    pub data: Option<Result<Box<PolicyData>, String>>,
    pub loading: bool,
    /// The selected automated decision.
    pub sel: usize,
    /// Scroll of the rules and precision part.
    pub scroll: u16,
}

impl PolicyState {
    /// The selected automated decision, when there is one.
    pub fn selected(&self) -> Option<&RouteRow> {
        match &self.data {
            Some(Ok(d)) => d.automated.get(self.sel),
            _ => None,
        }
    }
}

/// Loads the view's data (on the worker).
pub fn load(store: &Store, config: &Config) -> Result<PolicyData, String> {
    let cfg = &config.policy;
    let s = |e: crate::store::StoreError| e.to_string();
    let (rules, flags) = apply::simulate_current(store, cfg, None).map_err(s)?;
    let precision = apply::measured(store, cfg).map_err(s)?;
    let mut automated: Vec<RouteRow> = store
        .policy_routes()
        .map_err(s)?
        .into_iter()
        .filter(|r| {
            r.decision_id.is_some() && matches!(r.effect.as_str(), "adjusted" | "rolled_back")
        })
        .collect();
    automated.sort_by(|a, b| {
        b.routed_at
            .cmp(&a.routed_at)
            .then_with(|| a.transaction_id.cmp(&b.transaction_id))
    });
    Ok(PolicyData {
        phases: store.policy_phases().map_err(s)?,
        rules,
        flags,
        precision,
        gate: (cfg.min_precision, cfg.min_decisions),
        automated,
    })
}

/// Rolls back the policy actor's adjustment of one transaction (on the worker).
pub fn rollback(store: &mut Store, env: &Env, tx_id: &str) -> Result<String, String> {
    let wf = workflow::Policy::from_config(&env.config);
    let actor = Actor::new(env.user.clone(), env.role);
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let items = apply::rollback_one(
        store,
        &wf,
        &actor,
        tx_id,
        "rolled back in the workbench",
        &now,
    )
    .map_err(|e| e.to_string())?;
    match items.first() {
        Some(i) if i.outcome == "rolled_back" => Ok(format!(
            "{tx_id}: automated adjustment rolled back (compensating decision queued for the PRM)"
        )),
        Some(i) => Err(format!("{tx_id}: {}", i.outcome)),
        None => Err(format!("{tx_id}: no automated adjustment to roll back")),
    }
}

impl App {
    /// Asks the worker for the Policy view's data unless it is on its way.
    pub(crate) fn policy_effect(&mut self) -> Vec<Effect> {
        if self.policy.loading {
            return vec![];
        }
        self.policy.loading = true;
        vec![Effect::LoadPolicy]
    }

    /// Actions the Policy view handles itself; `None` lets the app handle the rest.
    pub(crate) fn policy_update(&mut self, action: Action) -> Option<Vec<Effect>> {
        if self.view != View::Policy {
            return None;
        }
        let n = match &self.policy.data {
            Some(Ok(d)) => d.automated.len(),
            _ => 0,
        };
        match action {
            Action::Up | Action::Down => {
                let by: isize = if action == Action::Up { -1 } else { 1 };
                self.policy.sel = stepped(self.policy.sel, by, n);
                Some(vec![])
            }
            Action::PageUp => {
                self.policy.scroll = self.policy.scroll.saturating_sub(5);
                Some(vec![])
            }
            Action::PageDown => {
                self.policy.scroll = self.policy.scroll.saturating_add(5);
                Some(vec![])
            }
            Action::Top => {
                self.policy.sel = 0;
                self.policy.scroll = 0;
                Some(vec![])
            }
            Action::Bottom => {
                self.policy.sel = n.saturating_sub(1);
                Some(vec![])
            }
            Action::Back => {
                self.view = View::Queue;
                Some(vec![])
            }
            Action::Refresh => {
                let mut fx = self.policy_effect();
                fx.extend([Effect::LoadStatus, Effect::LoadCounters]);
                Some(fx)
            }
            Action::Undo => {
                let Some(r) = self.policy.selected().cloned() else {
                    self.message = Some((Level::Error, "no automated decision selected".into()));
                    return Some(vec![]);
                };
                if r.effect == "rolled_back" {
                    self.message = Some((
                        Level::Info,
                        format!("{}: already rolled back", r.transaction_id),
                    ));
                    return Some(vec![]);
                }
                self.modal = Some(Modal::Confirm(Box::new(Confirm {
                    title: "Roll back".into(),
                    lines: vec![
                        format!(
                            "Roll back the automated adjustment of {} (rule {})?",
                            r.transaction_id, r.rule
                        ),
                        "A compensating decision is written and pushed; history stays.".into(),
                    ],
                    working: format!("working: rolling back {} …", r.transaction_id),
                    effects: vec![Effect::PolicyRollback(r.transaction_id)],
                })));
                Some(vec![])
            }
            // Deciding is done in the queue and the record (Undo, the rollback, is above).
            a if a.acts_on_cases() || a == Action::Open => {
                self.message = Some((
                    Level::Info,
                    "the Policy view shows the rules and automated decisions: decide in the queue (1)"
                        .into(),
                ));
                Some(vec![])
            }
            _ => None,
        }
    }

    /// The worker's answer for the Policy view.
    pub(crate) fn on_policy(&mut self, r: Result<Box<PolicyData>, String>) -> Vec<Effect> {
        self.policy.loading = false;
        if let Ok(d) = &r {
            self.policy.sel = self.policy.sel.min(d.automated.len().saturating_sub(1));
        }
        self.policy.data = Some(r);
        self.dirty = true;
        vec![]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Role;
    use crate::tui::keymap::Keymap;
    use crate::tui::theme::Theme;
    use std::collections::BTreeMap;

    fn app() -> App {
        App::new(
            "mia".into(),
            Role::Manager,
            Config::default(),
            Theme::monochrome(),
            Keymap::new(&BTreeMap::new()).unwrap(),
        )
    }

    fn route(tx: &str, effect: &str) -> RouteRow {
        RouteRow {
            transaction_id: tx.into(),
            row_hash: "h".into(),
            kinds: vec!["discount_policy".into()],
            rule: "auto-discount".into(),
            action: "auto_adjust".into(),
            effect: effect.into(),
            phase: "assist".into(),
            at_stake_minor: 12_345,
            decision_id: Some(format!("d-{tx}")),
            routed_at: "2026-10-01T10:00:00Z".into(),
        }
    }

    fn data(automated: Vec<RouteRow>) -> Box<PolicyData> {
        Box::new(PolicyData {
            phases: vec![],
            rules: vec![],
            flags: 0,
            precision: vec![],
            gate: (0.95, 50),
            automated,
        })
    }

    #[test]
    fn opening_loads_once_and_rollback_asks_first() {
        let mut a = app();
        assert_eq!(a.update(Action::PolicyView), vec![Effect::LoadPolicy]);
        assert_eq!(a.view, View::Policy);
        // Asked again while loading: nothing more.
        assert_eq!(a.update(Action::PolicyView), vec![]);
        a.on_policy(Ok(data(vec![
            route("T1", "adjusted"),
            route("T2", "rolled_back"),
        ])));
        a.update(Action::Down);
        assert_eq!(a.policy.sel, 1);
        // Already rolled back: nothing to do.
        assert_eq!(a.update(Action::Undo), vec![]);
        assert!(a.modal.is_none());
        a.update(Action::Up);
        assert_eq!(a.update(Action::Undo), vec![]);
        let Some(Modal::Confirm(c)) = &a.modal else {
            panic!("no confirmation");
        };
        assert_eq!(c.effects, vec![Effect::PolicyRollback("T1".into())]);
        // Decisions are not made here.
        a.modal = None;
        assert_eq!(a.update(Action::Approve), vec![]);
        assert!(a.message.is_some());
        assert_eq!(a.update(Action::Back), vec![]);
        assert_eq!(a.view, View::Queue);
    }

    #[test]
    fn selection_is_kept_in_range_when_the_list_shrinks() {
        let mut a = app();
        a.update(Action::PolicyView);
        a.on_policy(Ok(data(vec![
            route("T1", "adjusted"),
            route("T2", "adjusted"),
        ])));
        a.update(Action::Bottom);
        assert_eq!(a.policy.sel, 1);
        a.on_policy(Ok(data(vec![route("T1", "adjusted")])));
        assert_eq!(a.policy.sel, 0);
        assert_eq!(a.policy.selected().unwrap().transaction_id, "T1");
    }
}
