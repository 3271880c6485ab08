//! Applying the policy: route every new or changed flag once, do what its route means in
//! the phase in force (hold, task, alert, or an adjustment by the `policy` actor through
//! the normal workflow), sample validated transactions of high-value partners for QA,
//! change phases behind the precision gate, and roll automated decisions back.

use std::collections::{BTreeMap, BTreeSet};

use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::json;

use super::precision::{self, KindPrecision, POLICY_ACTOR};
use super::{
    effect, phase_for, route, AutoGate, Effect, FlagView, Match, NoAuto, Phase, PolicyConfig,
};
use crate::alerts::{self, AlertsConfig};
use crate::config::Role;
use crate::store::policy::{FlagFacts, PhaseRow, RouteRow};
use crate::store::{Store, StoreError};
use crate::workflow::{self, Actor, Command, WorkflowError};

/// Why a policy command was refused.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error(
        "only a manager can change the rollout phase (you act as {0}); run with --role manager"
    )]
    NotManager(String),
    #[error("a reason is required (--reason TEXT)")]
    ReasonRequired,
    #[error("unknown tier `{0}`: the program's tiers are {1}")]
    UnknownTier(String, String),
    #[error("assist needs pre-approved kinds: list them in [policy] pre_approved in config.toml")]
    NoPreApproved,
    #[error("assist refused: measured precision is below the gate for {}", .0.join("; "))]
    BelowPrecision(Vec<String>),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Workflow(#[from] WorkflowError),
}

/// One flag with what the policy does with it.
#[derive(Debug, Clone)]
pub struct Planned {
    pub facts: FlagFacts,
    pub m: Match,
    pub phase: Phase,
    pub effect: Effect,
    pub no_auto: Option<NoAuto>,
}

/// What the policy does with `facts` (pure): each flag's rule, the phase of its tier (or
/// `phase_override` for every flag) and the effect.
pub fn plan(
    facts: Vec<FlagFacts>,
    policy: &PolicyConfig,
    phases: &[PhaseRow],
    precise: &BTreeSet<String>,
    phase_override: Option<Phase>,
) -> Vec<Planned> {
    let rules = policy.effective_rules();
    let gate = AutoGate {
        pre_approved: &policy.pre_approved,
        precise,
    };
    facts
        .into_iter()
        .map(|f| {
            let m = route(&rules, &FlagView::of(&f));
            let phase = phase_override.unwrap_or_else(|| phase_for(phases, f.tier_id.as_deref()));
            let (effect, no_auto) = effect(&m, phase, &f, &gate);
            Planned {
                facts: f,
                m,
                phase,
                effect,
                no_auto,
            }
        })
        .collect()
}

/// Counts per rule and kind, as `policy simulate` prints them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SimRow {
    pub rule: String,
    pub kind: String,
    pub action: String,
    pub count: usize,
    pub held: usize,
    pub adjusted: usize,
    pub queued: usize,
    pub tasks: usize,
    pub alerted: usize,
    /// Money at stake of the held flags (decimal string).
    pub held_amount: String,
    pub adjusted_amount: String,
    pub at_stake: String,
}

/// Aggregates a plan per (rule, kind): a flag with two kinds counts once for each.
pub fn simulate(planned: &[Planned]) -> Vec<SimRow> {
    #[derive(Default)]
    struct Acc {
        action: String,
        count: usize,
        held: usize,
        adjusted: usize,
        queued: usize,
        tasks: usize,
        alerted: usize,
        held_amount: Decimal,
        adjusted_amount: Decimal,
        at_stake: Decimal,
    }
    let mut by: BTreeMap<(Option<usize>, String, String), Acc> = BTreeMap::new();
    for p in planned {
        let stake = super::minor_to_decimal(p.facts.at_stake_minor, &p.facts.currency);
        for k in &p.facts.kinds {
            let a = by
                .entry((p.m.rule, p.m.label.clone(), k.clone()))
                .or_default();
            a.action = p.m.action.as_str().to_string();
            a.count += 1;
            a.at_stake += stake;
            match p.effect {
                Effect::Held => {
                    a.held += 1;
                    a.held_amount += stake;
                }
                Effect::Adjusted => {
                    a.adjusted += 1;
                    a.adjusted_amount += stake;
                }
                Effect::Queued => a.queued += 1,
                Effect::Task => a.tasks += 1,
                Effect::Alerted => a.alerted += 1,
            }
        }
    }
    by.into_iter()
        .map(|((_, rule, kind), a)| SimRow {
            rule,
            kind,
            action: a.action,
            count: a.count,
            held: a.held,
            adjusted: a.adjusted,
            queued: a.queued,
            tasks: a.tasks,
            alerted: a.alerted,
            held_amount: a.held_amount.to_string(),
            adjusted_amount: a.adjusted_amount.to_string(),
            at_stake: a.at_stake.to_string(),
        })
        .collect()
}

/// Precision per kind with the configured gate.
pub fn measured(store: &Store, cfg: &PolicyConfig) -> Result<Vec<KindPrecision>, StoreError> {
    Ok(precision::measure(
        &store.decisions_on_kinds()?,
        cfg.min_precision,
        cfg.min_decisions,
    ))
}

/// Whether the rules route this flag: a QA sample is in the queue for a person, not for
/// the rules (its only kind is `qa_sample`).
pub fn routable(f: &FlagFacts) -> bool {
    f.kinds.iter().any(|k| k != "qa_sample")
}

/// `policy simulate` on the current window: what each rule would do (in `phase`, else
/// the phases in force), per rule and kind. The CLI and the workbench show the same rows.
pub fn simulate_current(
    store: &Store,
    cfg: &PolicyConfig,
    phase: Option<Phase>,
) -> Result<(Vec<SimRow>, usize), StoreError> {
    let phases = store.policy_phases()?;
    let precise = precision::precise_kinds(&measured(store, cfg)?);
    let facts: Vec<FlagFacts> = store
        .policy_flag_facts()?
        .into_iter()
        .filter(routable)
        .collect();
    let planned = plan(facts, cfg, &phases, &precise, phase);
    Ok((simulate(&planned), planned.len()))
}

/// What one policy run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RunReport {
    pub routed: usize,
    pub queued: usize,
    pub tasks: usize,
    pub alerted: usize,
    pub held: usize,
    pub adjusted: usize,
    pub qa_sampled: usize,
    pub alerts_queued: usize,
    /// Automatic adjustments that went to the queue instead, with why.
    pub not_adjusted: Vec<String>,
}

fn policy_actor() -> Actor {
    Actor::new(POLICY_ACTOR, Role::Analyst)
}

fn route_row(p: &Planned, effect: Effect, decision_id: Option<String>, now: &str) -> RouteRow {
    RouteRow {
        transaction_id: p.facts.transaction_id.clone(),
        row_hash: p.facts.row_hash.clone(),
        kinds: p.facts.kinds.clone(),
        rule: p.m.label.clone(),
        action: p.m.action.as_str().to_string(),
        effect: effect.as_str().to_string(),
        phase: p.phase.as_str().to_string(),
        at_stake_minor: p.facts.at_stake_minor,
        decision_id,
        routed_at: now.to_string(),
    }
}

/// The flags to route: not routed yet in their current version (new, or changed since),
/// or still undecided and routed under another phase than the one now in force (a phase
/// change applies to the open queue).
pub fn unrouted(store: &Store, phases: &[PhaseRow]) -> Result<Vec<FlagFacts>, StoreError> {
    let routed = store.policy_routed()?;
    Ok(store
        .policy_flag_facts()?
        .into_iter()
        .filter(routable)
        .filter(|f| match routed.get(&f.transaction_id) {
            None => true,
            Some(r) => {
                r.row_hash != f.row_hash
                    || r.kinds != f.kinds
                    || (f.status == "flagged"
                        && r.phase != phase_for(phases, f.tier_id.as_deref()).as_str())
            }
        })
        .collect())
}

/// Routes every new or changed flag once and applies the effects. `now` is RFC 3339 UTC.
pub fn run(
    store: &mut Store,
    cfg: &PolicyConfig,
    alerts_cfg: &AlertsConfig,
    wf_policy: &workflow::Policy,
    now: &str,
) -> Result<RunReport, PolicyError> {
    let phases = store.policy_phases()?;
    let precise = precision::precise_kinds(&measured(store, cfg)?);
    let planned = plan(unrouted(store, &phases)?, cfg, &phases, &precise, None);
    let mut rep = RunReport::default();
    for p in &planned {
        apply_one(store, p, alerts_cfg, wf_policy, now, &mut rep)?;
    }
    rep.qa_sampled = qa_sample(store, cfg, &wf_policy.high_value_partners, now)?;
    Ok(rep)
}

fn apply_one(
    store: &mut Store,
    p: &Planned,
    alerts_cfg: &AlertsConfig,
    wf_policy: &workflow::Policy,
    now: &str,
    rep: &mut RunReport,
) -> Result<(), PolicyError> {
    rep.routed += 1;
    let mut eff = p.effect;
    let mut decision_id = None;
    if eff == Effect::Adjusted {
        let reason = format!(
            "pre-approved adjustment by policy rule `{}` in the assist phase (kinds {})",
            p.m.label,
            p.facts.kinds.join(", ")
        );
        let tx = &p.facts.transaction_id;
        match workflow::decide(
            store,
            wf_policy,
            &policy_actor(),
            tx,
            Command::Approve,
            &reason,
        ) {
            Ok(_) => {
                decision_id = store
                    .wf()
                    .decisions_for(tx)?
                    .into_iter()
                    .rev()
                    .find(|d| d.actor == POLICY_ACTOR)
                    .map(|d| d.decision_id);
            }
            Err(e) => {
                rep.not_adjusted.push(format!("{tx}: {e}"));
                eff = Effect::Queued;
            }
        }
    }
    if let Some(why) = &p.no_auto {
        if p.m.action == super::RouteAction::AutoAdjust && p.phase == Phase::Assist {
            rep.not_adjusted
                .push(format!("{}: {:?}", p.facts.transaction_id, why));
        }
    }
    let row = route_row(p, eff, decision_id, now);
    let what = match eff {
        Effect::Held => "hold",
        _ => "task",
    };
    let alert = matches!(eff, Effect::Held | Effect::Task | Effect::Alerted);
    let content = alerts::flag_content(&p.facts, what, &p.m.label, p.phase.as_str());
    let was_held = store
        .policy_route(&p.facts.transaction_id)?
        .is_some_and(|r| r.effect == Effect::Held.as_str());
    let queued = store.wf_tx(|db| -> Result<usize, PolicyError> {
        db.put_policy_route(&row)?;
        if was_held && eff != Effect::Held {
            workflow::record_event(
                db,
                &policy_actor(),
                now,
                "policy_release",
                &p.facts.transaction_id,
                Some(json!({"bucket": "pending_review", "now": eff.as_str(), "phase": p.phase.as_str()})),
                Some("released from the pending-review bucket: the policy no longer holds it"),
            )?;
        }
        if eff == Effect::Held {
            workflow::record_event(
                db,
                &policy_actor(),
                now,
                "policy_hold",
                &p.facts.transaction_id,
                Some(json!({
                    "bucket": "pending_review",
                    "rule": p.m.label,
                    "kinds": p.facts.kinds,
                    "at_stake": super::minor_to_decimal(p.facts.at_stake_minor, &p.facts.currency).to_string(),
                    "currency": p.facts.currency,
                    "phase": p.phase.as_str(),
                })),
                Some("held by the routing policy until a person decides"),
            )?;
        }
        Ok(if alert {
            alerts::enqueue_flag(db, alerts_cfg, &p.facts, &content, now)?
        } else {
            0
        })
    })?;
    rep.alerts_queued += queued;
    match eff {
        Effect::Queued => rep.queued += 1,
        Effect::Task => rep.tasks += 1,
        Effect::Alerted => rep.alerted += 1,
        Effect::Held => rep.held += 1,
        Effect::Adjusted => rep.adjusted += 1,
    }
    Ok(())
}

/// Puts the configured share of validated transactions of high-value partners into the
/// queue as a QA sample (deterministic per transaction version). Returns how many new.
fn qa_sample(
    store: &mut Store,
    cfg: &PolicyConfig,
    high_value: &std::collections::BTreeSet<String>,
    now: &str,
) -> Result<usize, PolicyError> {
    let routed = store.policy_routed()?;
    let mut n = 0;
    let listed: Vec<&str> = high_value.iter().map(String::as_str).collect();
    for (tx, hash, stake) in store.validated_high_value(&listed)? {
        if !super::in_qa_sample(&tx, &hash, cfg.qa_sample) {
            continue;
        }
        // A rescore of the same version writes the flag clean again: mark it every time.
        store.mark_qa_sample(
            &tx,
            &hash,
            &format!(
                "QA sample: validated transaction of a high-value partner, drawn for a human \
                 review ({}% of validated high-value transactions).",
                format!("{:.2}", cfg.qa_sample * 100.0)
                    .trim_end_matches('0')
                    .trim_end_matches('.')
            ),
        )?;
        if routed.get(&tx).is_some_and(|r| r.row_hash == hash) {
            continue;
        }
        store.put_policy_route(&RouteRow {
            transaction_id: tx,
            row_hash: hash,
            kinds: vec!["qa_sample".into()],
            rule: "qa_sample".into(),
            action: "queue".into(),
            effect: "qa_sample".into(),
            phase: String::new(),
            at_stake_minor: stake,
            decision_id: None,
            routed_at: now.to_string(),
        })?;
        n += 1;
    }
    Ok(n)
}

/// The outcome of a phase change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhaseChange {
    pub scope: String,
    pub from: Phase,
    pub to: Phase,
}

/// Sets the rollout phase of the program (or one tier). A manager only; `assist` only when
/// every pre-approved kind passes the precision gate (a refusal is audited too).
pub fn set_phase(
    store: &mut Store,
    cfg: &PolicyConfig,
    actor: &Actor,
    to: Phase,
    tier: Option<&str>,
    reason: &str,
    now: &str,
) -> Result<PhaseChange, PolicyError> {
    if actor.role != Role::Manager {
        return Err(PolicyError::NotManager(actor.role.as_str().into()));
    }
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(PolicyError::ReasonRequired);
    }
    if let Some(t) = tier {
        let tiers = store.policy_tier_ids()?;
        if !tiers.iter().any(|x| x == t) {
            return Err(PolicyError::UnknownTier(t.into(), tiers.join(", ")));
        }
    }
    let scope = tier.unwrap_or("*").to_string();
    let phases = store.policy_phases()?;
    let from = phase_for(&phases, tier);
    if to == Phase::Assist {
        if cfg.pre_approved.is_empty() {
            return Err(PolicyError::NoPreApproved);
        }
        let p = measured(store, cfg)?;
        let short: Vec<String> = cfg
            .pre_approved
            .iter()
            .filter(|k| !p.iter().any(|x| &x.kind == *k && x.passes))
            .map(|k| {
                precision::describe(
                    p.iter().find(|x| &x.kind == k),
                    k,
                    cfg.min_precision,
                    cfg.min_decisions,
                )
            })
            .collect();
        if !short.is_empty() {
            store.wf_tx(|db| {
                workflow::record_event(
                    db,
                    actor,
                    now,
                    "policy_phase_refused",
                    &format!("policy:{scope}"),
                    Some(json!({"from": from.as_str(), "to": to.as_str(), "below": short})),
                    Some(reason),
                )
            })?;
            return Err(PolicyError::BelowPrecision(short));
        }
    }
    store.wf_tx(|db| -> Result<(), PolicyError> {
        db.set_policy_phase(&PhaseRow {
            scope: scope.clone(),
            phase: to.as_str().into(),
            changed_by: actor.user.clone(),
            changed_at: now.into(),
            reason: reason.into(),
        })?;
        workflow::record_event(
            db,
            actor,
            now,
            "policy_phase",
            &format!("policy:{scope}"),
            Some(json!({"from": from.as_str(), "to": to.as_str()})),
            Some(reason),
        )?;
        Ok(())
    })?;
    Ok(PhaseChange { scope, from, to })
}

/// One automated decision considered by a rollback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RollbackItem {
    pub transaction_id: String,
    pub decision_id: String,
    /// `rolled_back`, or why it was left (a person decided since, nothing to undo …).
    pub outcome: String,
}

/// Writes compensating decisions for the policy actor's adjustments made at or after
/// `since` (optionally of one kind). History is never edited: each undo is a new decision.
pub fn rollback(
    store: &mut Store,
    wf_policy: &workflow::Policy,
    actor: &Actor,
    since: &str,
    kind: Option<&str>,
    reason: &str,
    now: &str,
) -> Result<Vec<RollbackItem>, PolicyError> {
    rollback_where(store, wf_policy, actor, reason, now, |r| {
        r.routed_at.as_str() >= since && kind.is_none_or(|k| r.kinds.iter().any(|x| x == k))
    })
}

/// Rolls back the policy actor's adjustment of one transaction (the workbench's Policy
/// view), like [`rollback`].
pub fn rollback_one(
    store: &mut Store,
    wf_policy: &workflow::Policy,
    actor: &Actor,
    tx_id: &str,
    reason: &str,
    now: &str,
) -> Result<Vec<RollbackItem>, PolicyError> {
    rollback_where(store, wf_policy, actor, reason, now, |r| {
        r.transaction_id == tx_id
    })
}

fn rollback_where(
    store: &mut Store,
    wf_policy: &workflow::Policy,
    actor: &Actor,
    reason: &str,
    now: &str,
    pick: impl Fn(&RouteRow) -> bool,
) -> Result<Vec<RollbackItem>, PolicyError> {
    let reason = match reason.trim() {
        "" => "policy rollback",
        r => r,
    };
    let mut out = Vec::new();
    for r in store.policy_routes()? {
        let Some(did) = r.decision_id.clone() else {
            continue;
        };
        if r.effect != Effect::Adjusted.as_str() || !pick(&r) {
            continue;
        }
        let latest = latest_undoable(store, &r.transaction_id)?;
        let outcome = if latest.as_deref() != Some(did.as_str()) {
            "left: a person decided on it since".to_string()
        } else {
            match workflow::undo(store, wf_policy, actor, &r.transaction_id, reason) {
                Ok(_) => {
                    let mut back = r.clone();
                    back.effect = "rolled_back".into();
                    back.routed_at = now.into();
                    store.put_policy_route(&back)?;
                    "rolled_back".to_string()
                }
                Err(e) => format!("left: {e}"),
            }
        };
        out.push(RollbackItem {
            transaction_id: r.transaction_id,
            decision_id: did,
            outcome,
        });
    }
    Ok(out)
}

/// The latest decision on a transaction that is not reverted and reverts nothing.
fn latest_undoable(store: &Store, tx: &str) -> Result<Option<String>, StoreError> {
    let ds = store.wf().decisions_for(tx)?;
    let reverted: BTreeSet<&str> = ds.iter().filter_map(|d| d.reverts.as_deref()).collect();
    Ok(ds
        .iter()
        .rev()
        .find(|d| {
            d.reverts.is_none()
                && !reverted.contains(d.decision_id.as_str())
                && !matches!(d.action.as_str(), "start_review" | "lapse")
        })
        .map(|d| d.decision_id.clone()))
}
