//! Workflow: decisions, approvals, sign-off, audit trail, outbox.
//!
//! The only way a case changes state. Each action validates the transition, then in one
//! SQLite transaction writes the case (and `flags.status`), a `decisions` row (client-made
//! UUID v4), hash-chained audit entries, and — when the PRM must know — an outbox row
//! whose idempotency key is the decision id.
//!
//! State machine (per flagged transaction):
//! - `flagged` -> `in_review` (start review; implicit when deciding directly: both recorded)
//! - `in_review` -> `approved` (accept the proposal) | `overridden` (amount + reason) ->
//!   `awaiting_signoff` when |delta| >= the currency threshold or the partner is
//!   high-value, else `queued_for_push`. (`approved`/`overridden` are passed through and
//!   recorded in the audit trail; the case rests in the next state.)
//! - `in_review` -> `dismissed` (reason) | `escalated` (reason) | `documents_requested` (reason)
//! - `awaiting_signoff` -> `signed_off` -> `queued_for_push` (a manager, not the proposer)
//!   | `rejected` (reason)
//! - `queued_for_push` -> `pushed` | `conflict` (by the sync, via [`mark_pushed`] /
//!   [`mark_conflict`])
//! - `escalated`, `documents_requested`, `rejected`, `conflict` can be reopened
//!   (`in_review`) or decided directly.
//!
//! What reaches the PRM (outbox): a typed [`PrmWrite`] in an [`OutboxPayload`]
//! (`prm_write.rs`): approved/overridden amounts once queued (`adjust`, the decided
//! commission total), an approved `hold` proposal (`hold`: the PRM status goes to hold,
//! no amount changes, nothing is reversed), dismissals (`release`: the deal stands,
//! release any hold), document requests (`hold`), and compensations of pushed
//! decisions (the inverse write). Escalation is internal (no outbox). A pushed hold
//! stays open for the decision that ends it: dismiss (release) or override (adjust; a
//! reversal is an override to 0). The row's `idempotency_key` is the decision id;
//! `record_version` and `audit_head` ride along.
//!
//! Callers after a sync pull or a rescore should call [`lapse_changed_signoffs`]; the sync
//! reports push outcomes with [`mark_pushed`], [`mark_conflict`], [`mark_refused`] and
//! [`record_push_attempt`] so that each is audited and the case follows.
//!
//! Undo reverts the latest decision not yet undone: before push the case returns to its
//! previous state and the pending outbox row is cancelled; after push a compensating
//! decision is queued and pushed in turn.

mod amounts;
mod audit;
mod event;
pub mod identity;
mod journal;
pub mod prm_write;
mod queue;
mod types;

use chrono::{SecondsFormat, Utc};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub use amounts::{check_override_amount, far_beyond, override_limit, FarBeyond};
pub use audit::{audit_head, canonical, export as export_audit, trail, verify_chain, GENESIS};
pub use event::record_event;
pub use identity::{canonical_name, same_person};
pub use journal::{journal, journal_with, write_csv as write_journal_csv, JournalLine};
pub use prm_write::{OutboxPayload, PayloadError, PrmWrite, PAYLOAD_VERSION};
pub use queue::{queue, signoff_queue, QueueItem, SignoffItem};
pub use types::*;

use crate::money::parse_money;
use crate::store::workflow::{CaseRow, DecisionRow, FlagRow, OutboxRow, ProposalRow, WfDb};
use crate::store::Store;
use audit::NewEntry;

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn parse_state(s: &str) -> Result<CaseState, WorkflowError> {
    CaseState::parse(s).ok_or_else(|| WorkflowError::Corrupt(format!("unknown case state '{s}'")))
}

fn money(s: &str, what: &str, tx_id: &str) -> Result<Decimal, WorkflowError> {
    parse_money(s)
        .ok_or_else(|| WorkflowError::Corrupt(format!("{what} of {tx_id} is not an amount: '{s}'")))
}

fn snapshot(c: &CaseRow) -> Value {
    json!({
        "state": c.state,
        "decided_amount": c.decided_amount,
        "proposer": c.proposer,
        "signed_hash": c.signed_hash,
        "version": c.version,
    })
}

/// What a sign-off is bound to: the transaction's row hash, the flag's kinds and score,
/// and the proposal's amounts.
#[derive(Debug, Clone, PartialEq)]
struct Binding {
    row_hash: String,
    kinds: String,
    score: String,
    proposed: String,
}

impl Binding {
    fn load(db: &WfDb<'_>, tx_id: &str) -> Result<Binding, WorkflowError> {
        let row_hash = db
            .get_transaction(tx_id)?
            .map(|t| t.row_hash)
            .unwrap_or_else(|| "(transaction missing)".into());
        let (kinds, score) = match db.get_flag(tx_id)? {
            Some(f) => {
                let mut k: Vec<String> = serde_json::from_str(&f.kinds).unwrap_or_default();
                k.sort();
                (k.join(","), format!("{:.6}", f.score))
            }
            None => ("(no flag)".into(), "(no flag)".into()),
        };
        let norm = |s: &str| {
            parse_money(s)
                .map(|d| d.normalize().to_string())
                .unwrap_or_else(|| s.to_string())
        };
        let proposed = match db.get_proposal(tx_id)? {
            Some(p) => format!("{}->{}", norm(&p.current_amount), norm(&p.proposed_amount)),
            None => "(no proposal)".into(),
        };
        Ok(Binding {
            row_hash,
            kinds,
            score,
            proposed,
        })
    }

    fn hash(&self) -> String {
        let s = format!(
            "{}\n{}\n{}\n{}",
            self.row_hash, self.kinds, self.score, self.proposed
        );
        hex::encode(Sha256::digest(s.as_bytes()))
    }

    fn to_json(&self) -> Value {
        json!({"row_hash": self.row_hash, "kinds": self.kinds, "score": self.score, "proposed": self.proposed})
    }

    fn from_json(v: &Value) -> Option<Binding> {
        Some(Binding {
            row_hash: v.get("row_hash")?.as_str()?.to_string(),
            kinds: v.get("kinds")?.as_str()?.to_string(),
            score: v.get("score")?.as_str()?.to_string(),
            proposed: v.get("proposed")?.as_str()?.to_string(),
        })
    }

    /// Says what differs from `then` (what was bound).
    fn diff(&self, then: Option<&Binding>) -> String {
        let Some(then) = then else {
            return "what was signed no longer matches".into();
        };
        let mut parts = Vec::new();
        if then.row_hash != self.row_hash {
            parts.push("the transaction was changed in the PRM".to_string());
        }
        if then.kinds != self.kinds || then.score != self.score {
            parts.push(format!(
                "the flag changed (kinds {} score {} -> kinds {} score {})",
                then.kinds, then.score, self.kinds, self.score
            ));
        }
        if then.proposed != self.proposed {
            parts.push(format!(
                "the proposed amount changed ({} -> {})",
                then.proposed, self.proposed
            ));
        }
        if parts.is_empty() {
            "what was signed no longer matches".into()
        } else {
            parts.join("; ")
        }
    }
}

/// One workflow operation inside a SQLite transaction.
struct Op<'a, 'b> {
    db: &'a WfDb<'b>,
    actor: &'a Actor,
    at: String,
    /// Recorded role: the actor's, or `system` for the sync's bookkeeping.
    system: bool,
}

impl Op<'_, '_> {
    fn role(&self) -> &'static str {
        if self.system {
            "system"
        } else {
            self.actor.role.as_str()
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn audit(
        &self,
        action: &str,
        target: &str,
        before: Option<Value>,
        after: Option<Value>,
        reason: Option<&str>,
        flag: Option<&FlagRow>,
        decision_id: Option<&str>,
    ) -> Result<String, WorkflowError> {
        audit::append(
            self.db,
            self.actor,
            self.role(),
            &self.at,
            NewEntry {
                action,
                target,
                before,
                after,
                reason,
                flag,
                decision_id,
            },
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn decision(
        &self,
        tx_id: &str,
        action: &str,
        amount: Option<String>,
        reason: &str,
        from: CaseState,
        to: CaseState,
        reverts: Option<String>,
    ) -> Result<DecisionRow, WorkflowError> {
        let record_version = self.db.get_transaction(tx_id)?.map(|t| t.record_version);
        let d = DecisionRow {
            decision_id: new_id(),
            transaction_id: tx_id.to_string(),
            action: action.to_string(),
            amount,
            reason: reason.to_string(),
            actor: self.actor.user.clone(),
            role: self.role().to_string(),
            from_state: from.as_str().to_string(),
            to_state: to.as_str().to_string(),
            record_version,
            reverts,
            created_at: self.at.clone(),
        };
        self.db.insert_decision(&d)?;
        Ok(d)
    }

    /// Writes the case (with `flags.status`) and one audit entry for the change.
    #[allow(clippy::too_many_arguments)]
    fn step(
        &self,
        case: &mut CaseRow,
        before: Option<Value>,
        to: CaseState,
        action: &str,
        reason: Option<&str>,
        flag: Option<&FlagRow>,
        decision_id: Option<&str>,
        extra: Option<Value>,
    ) -> Result<String, WorkflowError> {
        let before = before.unwrap_or_else(|| snapshot(case));
        case.state = to.as_str().to_string();
        case.version += 1;
        case.updated_at = self.at.clone();
        self.db.put_case(case)?;
        let mut after = snapshot(case);
        if let (Some(Value::Object(extra)), Value::Object(a)) = (extra, &mut after) {
            for (k, v) in extra {
                a.insert(k, v);
            }
        }
        let target = case.transaction_id.clone();
        self.audit(
            action,
            &target,
            Some(before),
            Some(after),
            reason,
            flag,
            decision_id,
        )
    }

    fn outbox(
        &self,
        d: &DecisionRow,
        payload: OutboxPayload,
        audit_head: &str,
    ) -> Result<(), WorkflowError> {
        let payload = payload.to_json();
        self.db.insert_outbox(&OutboxRow {
            id: 0,
            decision_id: d.decision_id.clone(),
            idempotency_key: d.decision_id.clone(),
            transaction_id: d.transaction_id.clone(),
            payload: payload.to_string(),
            record_version: d.record_version,
            audit_head: Some(audit_head.to_string()),
            status: "pending".into(),
            attempts: 0,
            last_error: None,
            created_at: self.at.clone(),
            pushed_at: None,
        })?;
        Ok(())
    }

    /// The typed outbox payload of decision `d`, proposed by the acting user.
    fn payload(
        &self,
        d: &DecisionRow,
        write: PrmWrite,
        currency: &str,
    ) -> Result<OutboxPayload, WorkflowError> {
        Ok(OutboxPayload {
            payload_version: PAYLOAD_VERSION,
            decision_id: d.decision_id.clone(),
            transaction_id: d.transaction_id.clone(),
            action: d.action.clone(),
            write,
            currency: currency.to_string(),
            reason: d.reason.clone(),
            proposer: Some(self.actor.user.clone()),
            signed_off_by: None,
            signoff_reason: None,
            proposal_decision_id: None,
            reverts: d.reverts.clone(),
            decided_at: self.at.clone(),
            seen: self.seen(&d.transaction_id)?,
        })
    }

    fn seen(&self, tx_id: &str) -> Result<Value, WorkflowError> {
        Ok(match self.db.get_transaction(tx_id)? {
            Some(t) => json!({
                "row_hash": t.row_hash,
                "record_version": t.record_version,
                "amount": t.amount,
                "currency": t.currency,
                "partner_id": t.partner_id,
            }),
            None => Value::Null,
        })
    }
}

fn load_case(db: &WfDb<'_>, tx_id: &str, _flag: &FlagRow) -> Result<CaseRow, WorkflowError> {
    Ok(match db.get_case(tx_id)? {
        Some(c) => c,
        None => CaseRow {
            transaction_id: tx_id.to_string(),
            state: CaseState::Flagged.as_str().to_string(),
            decided_amount: None,
            proposer: None,
            signed_hash: None,
            version: 0,
            updated_at: String::new(),
        },
    })
}

/// The commission accrued now: the proposal's `current_amount`, else the sum of the
/// PRM's commission lines, else zero.
fn current_amount(
    db: &WfDb<'_>,
    tx_id: &str,
    proposal: Option<&ProposalRow>,
) -> Result<Decimal, WorkflowError> {
    if let Some(p) = proposal {
        return money(&p.current_amount, "proposal current_amount", tx_id);
    }
    let mut sum = Decimal::ZERO;
    for a in db.commission_amounts(tx_id)? {
        sum += money(&a, "commission amount", tx_id)?;
    }
    Ok(sum)
}

/// The flag, or why there is none: an unknown id or an unflagged transaction.
fn no_flag(db: &WfDb<'_>, tx_id: &str, flag: Option<FlagRow>) -> Result<FlagRow, WorkflowError> {
    match flag {
        Some(f) => Ok(f),
        None if db.get_transaction(tx_id)?.is_none() => {
            Err(WorkflowError::UnknownTransaction(tx_id.to_string()))
        }
        None => Err(WorkflowError::NoFlag(tx_id.to_string())),
    }
}

fn illegal(tx_id: &str, from: CaseState, action: &str) -> WorkflowError {
    let hint = match from {
        CaseState::AwaitingSignoff => "; a manager must sign it off or reject it, or undo it",
        CaseState::QueuedForPush | CaseState::Dismissed => "; undo it first to decide again",
        CaseState::Pushed => "; undo it to queue a compensating decision",
        CaseState::Flagged | CaseState::InReview => "; decide on it first",
        _ => "",
    };
    WorkflowError::IllegalTransition {
        tx_id: tx_id.to_string(),
        from,
        action: action.replace('_', " "),
        hint: hint.to_string(),
    }
}

pub(crate) fn decide_in(
    db: &WfDb<'_>,
    policy: &Policy,
    actor: &Actor,
    tx_id: &str,
    cmd: &Command,
    reason: &str,
) -> Result<CaseState, WorkflowError> {
    let reason = reason.trim();
    if cmd.needs_reason() && reason.is_empty() {
        return Err(WorkflowError::ReasonRequired);
    }
    let flag = no_flag(db, tx_id, db.get_flag(tx_id)?)?;
    let mut case = load_case(db, tx_id, &flag)?;
    let from = parse_state(&case.state)?;
    let op = Op {
        db,
        actor,
        at: now(),
        system: false,
    };
    let same_state = matches!(
        (cmd, from),
        (Command::Escalate, CaseState::Escalated)
            | (Command::RequestDocuments, CaseState::DocumentsRequested)
            | (Command::StartReview, CaseState::InReview)
    );
    // A pushed hold stays open for the decision that ends it: release (dismiss) or an
    // override (a reversal is an override to 0).
    let ends_hold = from == CaseState::Pushed
        && matches!(cmd, Command::Dismiss | Command::Override { .. })
        && standing_write(db, tx_id)?.is_some_and(|w| matches!(w, PrmWrite::Hold { .. }));
    if (!from.is_open() && !ends_hold) || same_state {
        return Err(illegal(tx_id, from, cmd.action()));
    }
    if from == CaseState::Conflict {
        db.resolve_conflicts(tx_id, &op.at)?;
    }
    // Pass through in_review (recorded as its own decision) when deciding directly.
    if from != CaseState::InReview {
        let d = op.decision(
            tx_id,
            "start_review",
            None,
            reason,
            from,
            CaseState::InReview,
            None,
        )?;
        op.step(
            &mut case,
            None,
            CaseState::InReview,
            "start_review",
            Some(reason).filter(|r| !r.is_empty()),
            Some(&flag),
            Some(&d.decision_id),
            None,
        )?;
        if *cmd == Command::StartReview {
            return Ok(CaseState::InReview);
        }
    }
    match cmd {
        Command::StartReview => unreachable_start(tx_id),
        Command::Approve | Command::Override { .. } => {
            decide_amount(&op, policy, &mut case, &flag, cmd, reason)
        }
        Command::Dismiss | Command::Escalate | Command::RequestDocuments => {
            decide_status(&op, &mut case, &flag, cmd, reason)
        }
    }
}

/// The currency of a transaction's commission: the proposal's, else the transaction's.
fn currency_of(
    db: &WfDb<'_>,
    tx_id: &str,
    proposal: Option<&ProposalRow>,
) -> Result<String, WorkflowError> {
    if let Some(p) = proposal {
        return Ok(p.currency.clone());
    }
    Ok(db
        .get_transaction(tx_id)?
        .map(|t| t.currency)
        .unwrap_or_default())
}

/// The PRM write a proposed decision stands for: a decided amount sets the total; no
/// amount on a `hold` proposal holds the commission (nothing reversed); otherwise the
/// commission is approved as accrued.
fn planned_write(
    proposal: Option<&ProposalRow>,
    decided: Option<Decimal>,
    current: Decimal,
) -> PrmWrite {
    match decided {
        Some(amount) => PrmWrite::Adjust {
            amount,
            current_amount: current,
        },
        None if proposal.is_some_and(|p| p.action == "hold") => PrmWrite::Hold {
            held_amount: current,
        },
        None => PrmWrite::Approve,
    }
}

/// The latest write on the transaction that reached (or is on its way to) the PRM and
/// was not undone: what the PRM carries for it.
fn standing_write(db: &WfDb<'_>, tx_id: &str) -> Result<Option<PrmWrite>, WorkflowError> {
    for d in db.decisions_for(tx_id)?.into_iter().rev() {
        let Some(o) = db.get_outbox(&d.decision_id)? else {
            continue;
        };
        if !matches!(o.status.as_str(), "pushed" | "pending" | "manual") {
            continue;
        }
        let v: Value = serde_json::from_str(&o.payload).map_err(|e| {
            WorkflowError::Corrupt(format!("outbox payload of {}: {e}", o.decision_id))
        })?;
        return Ok(Some(OutboxPayload::decode(&v, &o.decision_id)?.write));
    }
    Ok(None)
}

/// The action being approved, as every list shows it: `hold`, `reverse`, `recompute`
/// or `adjust` (the proposal's), `override` when the reviewer set the amount, and
/// `approve` when there is neither.
pub(crate) fn effect_name(proposal_action: Option<&str>, decision_action: Option<&str>) -> String {
    match (decision_action, proposal_action) {
        (Some("override"), _) => "override".into(),
        (_, Some(a)) => a.to_string(),
        _ => "approve".into(),
    }
}

/// Approve (the proposal) or override (an amount): rests awaiting sign-off or queued.
fn decide_amount(
    op: &Op<'_, '_>,
    policy: &Policy,
    case: &mut CaseRow,
    flag: &FlagRow,
    cmd: &Command,
    reason: &str,
) -> Result<CaseState, WorkflowError> {
    let (db, actor, tx_id) = (op.db, op.actor, flag.transaction_id.as_str());
    let reason_opt = Some(reason).filter(|r| !r.is_empty());
    let proposal = db.get_proposal(tx_id)?;
    let txr = db.get_transaction(tx_id)?;
    let current = current_amount(db, tx_id, proposal.as_ref())?;
    let currency = currency_of(db, tx_id, proposal.as_ref())?;
    let (decided, passed) = match cmd {
        Command::Override { amount } => {
            check_override_amount(*amount, &currency)?;
            (Some(*amount), CaseState::Overridden)
        }
        _ => match &proposal {
            // A hold changes no amount: the commission is held, not written off.
            Some(p) if p.action == "hold" => (None, CaseState::Approved),
            Some(p) => (
                Some(money(&p.proposed_amount, "proposed_amount", tx_id)?),
                CaseState::Approved,
            ),
            None => (None, CaseState::Approved),
        },
    };
    let write = planned_write(proposal.as_ref(), decided, current);
    let delta = decided.map(|d| d - current).unwrap_or(Decimal::ZERO);
    // What the decision puts at stake: the change, or for a hold the commission held.
    let exposure = match &write {
        PrmWrite::Hold { held_amount } => *held_amount,
        _ => delta,
    };
    let partner = txr
        .as_ref()
        .map(|t| t.partner_id.clone())
        .unwrap_or_else(|| flag.partner_id.clone());
    let hv = db.partner_high_value(&partner)?;
    let needs = policy.needs_signoff(exposure, &currency, &partner, hv);
    let to = if needs {
        CaseState::AwaitingSignoff
    } else {
        CaseState::QueuedForPush
    };
    let amount_s = decided.map(|d| d.to_string());
    let d = op.decision(
        tx_id,
        cmd.action(),
        amount_s.clone(),
        reason,
        CaseState::InReview,
        to,
        None,
    )?;
    let binding = Binding::load(db, tx_id)?;
    let before = snapshot(case);
    case.decided_amount = amount_s;
    case.proposer = Some(actor.user.clone());
    case.signed_hash = Some(binding.hash());
    let detail = json!({
        "current_amount": current.to_string(),
        "delta": delta.to_string(),
        "currency": currency,
        "effect": effect_name(proposal.as_ref().map(|p| p.action.as_str()), Some(cmd.action())),
        "prm_write": write.name(),
        "threshold": policy.threshold(&currency).to_string(),
        "high_value_partner": hv || policy.high_value_partners.contains(&partner),
        "binding": binding.to_json(),
    });
    op.step(
        case,
        Some(before),
        passed,
        cmd.action(),
        reason_opt,
        Some(flag),
        Some(&d.decision_id),
        Some(detail),
    )?;
    let head = op.step(
        case,
        None,
        to,
        if needs {
            "request_signoff"
        } else {
            "queue_for_push"
        },
        reason_opt,
        Some(flag),
        Some(&d.decision_id),
        None,
    )?;
    if !needs {
        let payload = op.payload(&d, write, &currency)?;
        op.outbox(&d, payload, &head)?;
    }
    Ok(to)
}

/// Dismiss (release), escalate (internal) or request documents (hold).
fn decide_status(
    op: &Op<'_, '_>,
    case: &mut CaseRow,
    flag: &FlagRow,
    cmd: &Command,
    reason: &str,
) -> Result<CaseState, WorkflowError> {
    let (db, tx_id) = (op.db, flag.transaction_id.as_str());
    let to = match cmd {
        Command::Dismiss => CaseState::Dismissed,
        Command::Escalate => CaseState::Escalated,
        _ => CaseState::DocumentsRequested,
    };
    let d = op.decision(
        tx_id,
        cmd.action(),
        None,
        reason,
        CaseState::InReview,
        to,
        None,
    )?;
    let before = snapshot(case);
    case.decided_amount = None;
    case.proposer = None;
    case.signed_hash = None;
    let head = op.step(
        case,
        Some(before),
        to,
        cmd.action(),
        Some(reason).filter(|r| !r.is_empty()),
        Some(flag),
        Some(&d.decision_id),
        None,
    )?;
    let write = match cmd {
        Command::Dismiss => Some(PrmWrite::Release),
        Command::RequestDocuments => {
            let proposal = db.get_proposal(tx_id)?;
            Some(PrmWrite::Hold {
                held_amount: current_amount(db, tx_id, proposal.as_ref())?,
            })
        }
        _ => None,
    };
    if let Some(write) = write {
        let currency = currency_of(db, tx_id, db.get_proposal(tx_id)?.as_ref())?;
        let payload = op.payload(&d, write, &currency)?;
        op.outbox(&d, payload, &head)?;
    }
    Ok(to)
}

fn unreachable_start(tx_id: &str) -> Result<CaseState, WorkflowError> {
    Err(illegal(tx_id, CaseState::InReview, "start_review"))
}

fn signoff_in(
    db: &WfDb<'_>,
    actor: &Actor,
    tx_id: &str,
    cmd: SignoffCommand,
    reason: &str,
) -> Result<CaseState, WorkflowError> {
    let reason = reason.trim();
    let flag = no_flag(db, tx_id, db.get_flag(tx_id)?)?;
    let mut case = load_case(db, tx_id, &flag)?;
    let from = parse_state(&case.state)?;
    if from != CaseState::AwaitingSignoff {
        return Err(illegal(tx_id, from, cmd.action()));
    }
    if actor.role != crate::config::Role::Manager {
        return Err(WorkflowError::NotManager);
    }
    if let Some(p) = &case.proposer {
        if same_person(p, &actor.user) {
            return Err(WorkflowError::FourEyes {
                tx_id: tx_id.to_string(),
                user: p.clone(),
            });
        }
    }
    if cmd == SignoffCommand::Reject && reason.is_empty() {
        return Err(WorkflowError::ReasonRequired);
    }
    let binding = Binding::load(db, tx_id)?;
    if cmd == SignoffCommand::Approve && case.signed_hash.as_deref() != Some(&binding.hash()) {
        let then = bound_binding(db, tx_id, case.signed_hash.as_deref())?;
        return Err(WorkflowError::Changed {
            tx_id: tx_id.to_string(),
            why: binding.diff(then.as_ref()),
        });
    }
    let op = Op {
        db,
        actor,
        at: now(),
        system: false,
    };
    let reason_opt = Some(reason).filter(|r| !r.is_empty());
    match cmd {
        SignoffCommand::Reject => {
            let d = op.decision(
                tx_id,
                cmd.action(),
                None,
                reason,
                from,
                CaseState::Rejected,
                None,
            )?;
            op.step(
                &mut case,
                None,
                CaseState::Rejected,
                cmd.action(),
                reason_opt,
                Some(&flag),
                Some(&d.decision_id),
                None,
            )?;
            Ok(CaseState::Rejected)
        }
        SignoffCommand::Approve => {
            let proposal_decision = db
                .decisions_for(tx_id)?
                .into_iter()
                .rev()
                .find(|d| d.to_state == CaseState::AwaitingSignoff.as_str());
            let d = op.decision(
                tx_id,
                cmd.action(),
                case.decided_amount.clone(),
                reason,
                from,
                CaseState::QueuedForPush,
                None,
            )?;
            let before = snapshot(&case);
            case.signed_hash = Some(binding.hash());
            op.step(
                &mut case,
                Some(before),
                CaseState::SignedOff,
                cmd.action(),
                reason_opt,
                Some(&flag),
                Some(&d.decision_id),
                Some(json!({"binding": binding.to_json()})),
            )?;
            let head = op.step(
                &mut case,
                None,
                CaseState::QueuedForPush,
                "queue_for_push",
                reason_opt,
                Some(&flag),
                Some(&d.decision_id),
                None,
            )?;
            let proposal = db.get_proposal(tx_id)?;
            let current = current_amount(db, tx_id, proposal.as_ref())?;
            let decided = match &case.decided_amount {
                Some(s) => Some(money(s, "decided amount", tx_id)?),
                None => None,
            };
            let currency = currency_of(db, tx_id, proposal.as_ref())?;
            let write = planned_write(proposal.as_ref(), decided, current);
            let mut payload = op.payload(&d, write, &currency)?;
            if let Some(p) = &proposal_decision {
                payload.action = p.action.clone();
                payload.reason = p.reason.clone();
                payload.proposal_decision_id = Some(p.decision_id.clone());
            }
            payload.proposer = case.proposer.clone();
            payload.signed_off_by = Some(actor.user.clone());
            payload.signoff_reason = Some(reason.to_string());
            op.outbox(&d, payload, &head)?;
            Ok(CaseState::QueuedForPush)
        }
    }
}

/// The binding recorded (in the audit trail) when `signed_hash` was set.
fn bound_binding(
    db: &WfDb<'_>,
    tx_id: &str,
    signed_hash: Option<&str>,
) -> Result<Option<Binding>, WorkflowError> {
    let Some(h) = signed_hash else {
        return Ok(None);
    };
    for e in db.audit_for(tx_id)?.into_iter().rev() {
        let Some(after) = e.after else { continue };
        let Ok(v) = serde_json::from_str::<Value>(&after) else {
            continue;
        };
        if let Some(b) = v.get("binding").and_then(Binding::from_json) {
            if b.hash() == h {
                return Ok(Some(b));
            }
        }
    }
    Ok(None)
}

const NON_UNDOABLE: &[&str] = &["undo", "compensate"];

fn undo_in(
    db: &WfDb<'_>,
    actor: &Actor,
    tx_id: &str,
    reason: &str,
) -> Result<CaseState, WorkflowError> {
    let reason = match reason.trim() {
        "" => "undo",
        r => r,
    };
    let nothing = |why: &str| WorkflowError::NothingToUndo {
        tx_id: tx_id.to_string(),
        why: why.to_string(),
    };
    let flag = db.get_flag(tx_id)?;
    let Some(mut case) = db.get_case(tx_id)? else {
        return Err(nothing("no decision was made on it"));
    };
    let state = parse_state(&case.state)?;
    let decisions = db.decisions_for(tx_id)?;
    let reverted: std::collections::HashSet<&str> = decisions
        .iter()
        .filter_map(|d| d.reverts.as_deref())
        .collect();
    let Some(last) = decisions.iter().rev().find(|d| {
        !NON_UNDOABLE.contains(&d.action.as_str()) && !reverted.contains(d.decision_id.as_str())
    }) else {
        return Err(nothing("every decision on it is already undone"));
    };
    if last.action == "lapse" {
        return Err(nothing(
            "its sign-off lapsed after a change; decide on it again instead",
        ));
    }
    let to_state = parse_state(&last.to_state)?;
    let prev_state = parse_state(&last.from_state)?;
    let outbox = db.get_outbox(&last.decision_id)?;
    let pushed = outbox.as_ref().is_some_and(|o| o.status == "pushed");
    let matches_state = state == to_state
        || (outbox.is_some() && matches!(state, CaseState::Pushed | CaseState::Conflict));
    if !matches_state {
        return Err(nothing(&format!(
            "its latest decision ({}) led to {}, but it is now {}",
            last.action, to_state, state
        )));
    }
    // The case as it was before `last` (from the first audit entry it wrote).
    let before: Option<CaseRow> = db
        .audit_for(tx_id)?
        .into_iter()
        .find(|e| e.decision_id.as_deref() == Some(last.decision_id.as_str()))
        .and_then(|e| e.before)
        .and_then(|b| serde_json::from_str::<Value>(&b).ok())
        .map(|v| CaseRow {
            transaction_id: tx_id.to_string(),
            state: prev_state.as_str().to_string(),
            decided_amount: v
                .get("decided_amount")
                .and_then(Value::as_str)
                .map(str::to_string),
            proposer: v
                .get("proposer")
                .and_then(Value::as_str)
                .map(str::to_string),
            signed_hash: v
                .get("signed_hash")
                .and_then(Value::as_str)
                .map(str::to_string),
            version: case.version,
            updated_at: case.updated_at.clone(),
        });
    if pushed && last.action == "sign_off" && actor.role != crate::config::Role::Manager {
        return Err(WorkflowError::NotManager);
    }
    let op = Op {
        db,
        actor,
        at: now(),
        system: false,
    };
    let action = if pushed { "compensate" } else { "undo" };
    let d = op.decision(
        tx_id,
        action,
        before.as_ref().and_then(|b| b.decided_amount.clone()),
        reason,
        state,
        prev_state,
        Some(last.decision_id.clone()),
    )?;
    if let Some(o) = &outbox {
        if !pushed && o.status != "cancelled" {
            db.set_outbox_status(
                &o.decision_id,
                "cancelled",
                None,
                Some("undone before push"),
            )?;
        }
    }
    let snap = snapshot(&case);
    if let Some(b) = before {
        case.decided_amount = b.decided_amount;
        case.proposer = b.proposer;
        case.signed_hash = b.signed_hash;
    } else {
        case.decided_amount = None;
        case.proposer = None;
        case.signed_hash = None;
    }
    let head = op.step(
        &mut case,
        Some(snap),
        prev_state,
        action,
        Some(reason),
        flag.as_ref(),
        Some(&d.decision_id),
        Some(json!({"reverts": last.decision_id, "reverted_action": last.action})),
    )?;
    if let (true, Some(o)) = (pushed, &outbox) {
        let payload = compensation_payload(&op, &d, o, reason)?;
        op.outbox(&d, payload, &head)?;
    }
    Ok(prev_state)
}

/// The outbox payload of a decision that reverts `original` (already pushed): the
/// inverse write ([`PrmWrite::inverse`]). An old-shape adjustment that did not record
/// the total it replaced is held instead (the total to restore is unknown).
fn compensation_payload(
    op: &Op<'_, '_>,
    d: &DecisionRow,
    original: &OutboxRow,
    reason: &str,
) -> Result<OutboxPayload, WorkflowError> {
    let raw: Value = serde_json::from_str(&original.payload).map_err(|e| {
        WorkflowError::Corrupt(format!("outbox payload of {}: {e}", original.decision_id))
    })?;
    let orig = OutboxPayload::decode(&raw, &original.decision_id)?;
    let proposal = op.db.get_proposal(&d.transaction_id)?;
    let held = current_amount(op.db, &d.transaction_id, proposal.as_ref())?;
    let unknown_total = orig.payload_version < PAYLOAD_VERSION
        && raw.get("current_amount").is_none_or(Value::is_null);
    let write = match &orig.write {
        PrmWrite::Adjust { .. } if unknown_total => PrmWrite::Hold { held_amount: held },
        w => w.inverse(held),
    };
    let mut payload = op.payload(d, write, &orig.currency)?;
    payload.reason = reason.to_string();
    payload.reverts = Some(original.decision_id.clone());
    Ok(payload)
}

/// Decides on one flagged transaction. Returns the state the case rests in.
pub fn decide(
    store: &mut Store,
    policy: &Policy,
    actor: &Actor,
    tx_id: &str,
    cmd: Command,
    reason: &str,
) -> Result<CaseState, WorkflowError> {
    store.wf_tx(|db| decide_in(db, policy, actor, tx_id, &cmd, reason))
}

fn check_distinct(tx_ids: &[String]) -> Result<(), WorkflowError> {
    let mut seen = std::collections::HashSet::new();
    for t in tx_ids {
        if !seen.insert(t.as_str()) {
            return Err(WorkflowError::Duplicate(t.clone()));
        }
    }
    Ok(())
}

fn batch_err(tx_id: &str, e: WorkflowError) -> WorkflowError {
    WorkflowError::Batch {
        tx_id: tx_id.to_string(),
        source: Box::new(e),
    }
}

/// Decides on several transactions with one reason, atomically: all or nothing.
pub fn decide_batch(
    store: &mut Store,
    policy: &Policy,
    actor: &Actor,
    tx_ids: &[String],
    cmd: Command,
    reason: &str,
) -> Result<Vec<CaseState>, WorkflowError> {
    check_distinct(tx_ids)?;
    store.wf_tx(|db| {
        tx_ids
            .iter()
            .map(|t| decide_in(db, policy, actor, t, &cmd, reason).map_err(|e| batch_err(t, e)))
            .collect()
    })
}

/// What [`decide`] would do, without doing it: the state the case would rest in (e.g.
/// `awaiting_signoff` tells the workbench a sign-off will be needed), or why it would be
/// refused.
pub fn preview_decide(
    store: &mut Store,
    policy: &Policy,
    actor: &Actor,
    tx_id: &str,
    cmd: Command,
    reason: &str,
) -> Result<CaseState, WorkflowError> {
    store.wf_dry_run(|db| decide_in(db, policy, actor, tx_id, &cmd, reason))
}

/// Whether `actor` may sign off `tx_id` now (role, four-eyes, state, nothing changed),
/// without doing it. The workbench uses it to enable or explain the sign-off action.
pub fn check_signoff(store: &mut Store, actor: &Actor, tx_id: &str) -> Result<(), WorkflowError> {
    store.wf_dry_run(|db| signoff_in(db, actor, tx_id, SignoffCommand::Approve, "").map(|_| ()))
}

/// A manager signs off (or rejects) an adjustment awaiting sign-off.
pub fn signoff(
    store: &mut Store,
    _policy: &Policy,
    actor: &Actor,
    tx_id: &str,
    cmd: SignoffCommand,
    reason: &str,
) -> Result<CaseState, WorkflowError> {
    store.wf_tx(|db| signoff_in(db, actor, tx_id, cmd, reason))
}

/// Signs off (or rejects) several adjustments atomically.
pub fn signoff_batch(
    store: &mut Store,
    _policy: &Policy,
    actor: &Actor,
    tx_ids: &[String],
    cmd: SignoffCommand,
    reason: &str,
) -> Result<Vec<CaseState>, WorkflowError> {
    check_distinct(tx_ids)?;
    store.wf_tx(|db| {
        tx_ids
            .iter()
            .map(|t| signoff_in(db, actor, t, cmd, reason).map_err(|e| batch_err(t, e)))
            .collect()
    })
}

/// Undoes the latest decision on a transaction: reverts it before push, queues a
/// compensating decision after. Returns the state the case returns to.
pub fn undo(
    store: &mut Store,
    _policy: &Policy,
    actor: &Actor,
    tx_id: &str,
    reason: &str,
) -> Result<CaseState, WorkflowError> {
    store.wf_tx(|db| undo_in(db, actor, tx_id, reason))
}

/// One case: state, proposal, decided amount, whether it waits for sign-off, proposer.
/// `None` when the transaction has neither a flag nor a case.
pub fn case(store: &Store, tx_id: &str) -> Result<Option<CaseView>, WorkflowError> {
    let db = store.wf();
    let flag = db.get_flag(tx_id)?;
    let c = db.get_case(tx_id)?;
    if flag.is_none() && c.is_none() {
        return Ok(None);
    }
    let state = match &c {
        Some(c) => parse_state(&c.state)?,
        None => CaseState::Flagged,
    };
    let proposal = match db.get_proposal(tx_id)? {
        Some(p) => Some(ProposalView {
            current_amount: money(&p.current_amount, "current_amount", tx_id)?,
            proposed_amount: money(&p.proposed_amount, "proposed_amount", tx_id)?,
            delta: money(&p.delta, "delta", tx_id)?,
            action: p.action,
            currency: p.currency,
            rationale: p.rationale,
            detector_version: p.detector_version,
        }),
        None => None,
    };
    let decided_amount = match c.as_ref().and_then(|c| c.decided_amount.as_deref()) {
        Some(s) => Some(money(s, "decided amount", tx_id)?),
        None => None,
    };
    Ok(Some(CaseView {
        transaction_id: tx_id.to_string(),
        state,
        proposal,
        decided_amount,
        needs_signoff: state == CaseState::AwaitingSignoff,
        proposer: c.as_ref().and_then(|c| c.proposer.clone()),
        score: flag.as_ref().map(|f| f.score),
        kinds: flag
            .as_ref()
            .and_then(|f| serde_json::from_str(&f.kinds).ok())
            .unwrap_or_default(),
        version: c.as_ref().map(|c| c.version).unwrap_or(0),
        updated_at: c.map(|c| c.updated_at),
    }))
}

/// After a sync pull or a rescore: every case awaiting sign-off or queued for push whose
/// transaction, flag or proposal changed since it was proposed/signed returns to
/// `in_review` (its pending outbox row cancelled), with an audit entry saying why.
/// Also re-aligns `flags.status` with case states. Returns the lapsed transaction ids.
pub fn lapse_changed_signoffs(
    store: &mut Store,
    actor: &Actor,
) -> Result<Vec<String>, WorkflowError> {
    store.wf_tx(|db| {
        let mut lapsed = Vec::new();
        let op = Op {
            db,
            actor,
            at: now(),
            system: false,
        };
        let cases = db.cases_in_states(&[
            CaseState::AwaitingSignoff.as_str(),
            CaseState::SignedOff.as_str(),
            CaseState::QueuedForPush.as_str(),
        ])?;
        for mut c in cases {
            let tx_id = c.transaction_id.clone();
            let now_b = Binding::load(db, &tx_id)?;
            if c.signed_hash.as_deref() == Some(&now_b.hash()) {
                continue;
            }
            let then = bound_binding(db, &tx_id, c.signed_hash.as_deref())?;
            let why = format!("sign-off lapsed: {}", now_b.diff(then.as_ref()));
            let from = parse_state(&c.state)?;
            let d = op.decision(&tx_id, "lapse", None, &why, from, CaseState::InReview, None)?;
            for dd in db.decisions_for(&tx_id)? {
                let queues_adjustment = dd.to_state == CaseState::QueuedForPush.as_str()
                    && matches!(dd.action.as_str(), "approve" | "override" | "sign_off");
                if !queues_adjustment {
                    continue;
                }
                if let Some(o) = db.get_outbox(&dd.decision_id)? {
                    if o.status == "pending" || o.status == "failed" {
                        db.set_outbox_status(&o.decision_id, "cancelled", None, Some(&why))?;
                    }
                }
            }
            let snap = snapshot(&c);
            c.decided_amount = None;
            c.proposer = None;
            c.signed_hash = None;
            let flag = db.get_flag(&tx_id)?;
            op.step(
                &mut c,
                Some(snap),
                CaseState::InReview,
                "lapse",
                Some(&why),
                flag.as_ref(),
                Some(&d.decision_id),
                Some(json!({"now": now_b.to_json()})),
            )?;
            lapsed.push(tx_id);
        }
        db.resync_flag_status()?;
        lapsed.sort();
        Ok(lapsed)
    })
}

fn to_item(o: OutboxRow) -> Result<OutboxItem, WorkflowError> {
    let payload = serde_json::from_str(&o.payload)
        .map_err(|e| WorkflowError::Corrupt(format!("outbox payload of {}: {e}", o.decision_id)))?;
    Ok(OutboxItem {
        id: o.id,
        decision_id: o.decision_id,
        idempotency_key: o.idempotency_key,
        transaction_id: o.transaction_id,
        payload,
        record_version: o.record_version,
        audit_head: o.audit_head,
        attempts: o.attempts,
        created_at: o.created_at,
    })
}

/// Pending outbox entries, oldest first.
pub fn pending_outbox(store: &Store, limit: usize) -> Result<Vec<OutboxItem>, WorkflowError> {
    store
        .wf()
        .pending_outbox(limit)?
        .into_iter()
        .map(to_item)
        .collect()
}

/// Every outbox entry with its status, oldest first.
pub fn outbox_entries(store: &Store) -> Result<Vec<(OutboxItem, String)>, WorkflowError> {
    store
        .wf()
        .all_outbox()?
        .into_iter()
        .map(|o| {
            let s = o.status.clone();
            to_item(o).map(|i| (i, s))
        })
        .collect()
}

fn system_actor() -> Actor {
    Actor::new("sync", crate::config::Role::Manager)
}

/// The PRM accepted a decision. Idempotent: marking a pushed entry again is a no-op.
pub fn mark_pushed(
    store: &mut Store,
    decision_id: &str,
    remote_ref: &str,
) -> Result<(), WorkflowError> {
    store.wf_tx(|db| {
        let o = db
            .get_outbox(decision_id)?
            .ok_or_else(|| WorkflowError::UnknownDecision(decision_id.to_string()))?;
        if o.status == "pushed" {
            return Ok(());
        }
        let actor = system_actor();
        let op = Op {
            db,
            actor: &actor,
            at: now(),
            system: true,
        };
        db.set_outbox_status(decision_id, "pushed", Some(&op.at), None)?;
        let d = db.get_decision(decision_id)?;
        let flag = db.get_flag(&o.transaction_id)?;
        let detail = json!({"remote_ref": remote_ref, "decision_id": decision_id, "outbox_status_was": o.status});
        if o.status == "cancelled" {
            // Undone or lapsed while the push was in flight: the PRM has it now, so
            // queue a compensating decision to take it back.
            let c = db.get_case(&o.transaction_id)?;
            let st = match &c {
                Some(c) => parse_state(&c.state)?,
                None => CaseState::Flagged,
            };
            let why = "pushed after it was undone or lapsed; compensating";
            let comp = op.decision(
                &o.transaction_id,
                "compensate",
                None,
                why,
                st,
                st,
                Some(decision_id.to_string()),
            )?;
            let head = op.audit(
                "compensate",
                &o.transaction_id,
                None,
                Some(detail),
                Some(why),
                flag.as_ref(),
                Some(&comp.decision_id),
            )?;
            let payload = compensation_payload(&op, &comp, &o, why)?;
            op.outbox(&comp, payload, &head)?;
            return Ok(());
        }
        match db.get_case(&o.transaction_id)? {
            Some(mut c)
                if c.state == CaseState::QueuedForPush.as_str()
                    && d.as_ref().is_some_and(|d| d.to_state == c.state) =>
            {
                op.step(
                    &mut c,
                    None,
                    CaseState::Pushed,
                    "pushed",
                    None,
                    flag.as_ref(),
                    Some(decision_id),
                    Some(detail),
                )?;
            }
            _ => {
                op.audit(
                    "pushed",
                    &o.transaction_id,
                    None,
                    Some(detail),
                    None,
                    flag.as_ref(),
                    Some(decision_id),
                )?;
            }
        }
        Ok(())
    })
}

/// The PRM has no API for this write (PartnerStack: hold, decline and approve are done in
/// its dashboard): the entry leaves the push queue as `manual`, with the note saying what
/// to do where, and waits for a pull that shows the PRM carrying it
/// ([`confirm_manual`]). The case stays queued for push until then.
pub fn mark_manual(store: &mut Store, decision_id: &str, note: &str) -> Result<(), WorkflowError> {
    store.wf_tx(|db| {
        let o = db
            .get_outbox(decision_id)?
            .ok_or_else(|| WorkflowError::UnknownDecision(decision_id.to_string()))?;
        if o.status == "manual" || o.status == "pushed" {
            return Ok(());
        }
        let actor = system_actor();
        let op = Op {
            db,
            actor: &actor,
            at: now(),
            system: true,
        };
        db.set_outbox_status(decision_id, "manual", None, Some(note))?;
        let flag = db.get_flag(&o.transaction_id)?;
        op.audit(
            "left_for_prm",
            &o.transaction_id,
            None,
            Some(json!({"decision_id": decision_id, "note": note})),
            Some(note),
            flag.as_ref(),
            Some(decision_id),
        )?;
        Ok(())
    })
}

/// Whether the transaction's reward statuses, as last pulled, show a manual write done.
fn manual_done(write: &PrmWrite, statuses: &[(String, String)]) -> bool {
    if statuses.is_empty() {
        return false;
    }
    let all = |ok: &[&str]| statuses.iter().all(|(_, s)| ok.contains(&s.as_str()));
    match write {
        PrmWrite::Hold { .. } => statuses.iter().any(|(_, s)| s == "hold"),
        PrmWrite::Decline => statuses.iter().any(|(_, s)| s == "declined"),
        PrmWrite::Approve | PrmWrite::Release => all(&["approved", "paid"]),
        // An adjustment is a write the connectors make themselves; it is never manual.
        PrmWrite::Adjust { .. } => false,
    }
}

/// Decisions left for the PRM's own screen that a pull now shows applied (the reward's
/// status is the one asked for) are marked pushed, exactly as a push would. Returns the
/// transactions confirmed.
pub fn confirm_manual(store: &mut Store) -> Result<Vec<String>, WorkflowError> {
    let rows = store.wf().outbox_with_status("manual")?;
    let mut confirmed = Vec::new();
    for o in rows {
        let v: Value = serde_json::from_str(&o.payload).unwrap_or(Value::Null);
        let Ok(p) = OutboxPayload::decode(&v, &o.decision_id) else {
            continue;
        };
        let statuses: Vec<(String, String)> = store
            .reward_statuses(&o.transaction_id)?
            .into_iter()
            .map(|(k, st, _)| (k, st))
            .collect();
        if !manual_done(&p.write, &statuses) {
            continue;
        }
        let seen: Vec<String> = statuses.iter().map(|(k, s)| format!("{k}={s}")).collect();
        mark_pushed(
            store,
            &o.decision_id,
            &format!("applied in the PRM (seen on pull: {})", seen.join(", ")),
        )?;
        confirmed.push(o.transaction_id);
    }
    Ok(confirmed)
}

/// A decision left for the PRM's own screen (`prm decisions`), still waiting for a pull
/// to show it applied.
#[derive(Debug, Clone, PartialEq)]
pub struct ManualDecision {
    pub decision_id: String,
    pub transaction_id: String,
    /// hold | decline | approve | release | adjust
    pub write: String,
    /// The amount held (a hold) or the new commission total (an adjustment).
    pub amount: Option<Decimal>,
    pub currency: String,
    pub reason: String,
    pub proposer: Option<String>,
    pub signed_off_by: Option<String>,
    pub decided_at: String,
    /// What to do where (the connector's note).
    pub note: String,
}

/// Every decision waiting as `manual`, oldest first.
pub fn manual_decisions(store: &Store) -> Result<Vec<ManualDecision>, WorkflowError> {
    let mut out = Vec::new();
    for o in store.wf().outbox_with_status("manual")? {
        let v: Value = serde_json::from_str(&o.payload).map_err(|e| {
            WorkflowError::Corrupt(format!("outbox payload of {}: {e}", o.decision_id))
        })?;
        let p = OutboxPayload::decode(&v, &o.decision_id)?;
        let amount = match &p.write {
            PrmWrite::Hold { held_amount } => Some(*held_amount),
            PrmWrite::Adjust { amount, .. } => Some(*amount),
            _ => None,
        };
        out.push(ManualDecision {
            decision_id: o.decision_id,
            transaction_id: o.transaction_id,
            write: p.write.name().to_string(),
            amount,
            currency: p.currency,
            reason: p.reason,
            proposer: p.proposer,
            signed_off_by: p.signed_off_by,
            decided_at: p.decided_at,
            note: o.last_error.unwrap_or_default(),
        });
    }
    Ok(out)
}

/// A push attempt failed transiently (network, 5xx, 429): count it and keep the error;
/// the entry stays pending and is retried in order.
pub fn record_push_attempt(
    store: &mut Store,
    decision_id: &str,
    error: &str,
) -> Result<(), WorkflowError> {
    store.wf_tx(|db| {
        db.get_outbox(decision_id)?
            .ok_or_else(|| WorkflowError::UnknownDecision(decision_id.to_string()))?;
        db.record_outbox_attempt(decision_id, error)?;
        Ok(())
    })
}

/// The PRM refused a decision for good (e.g. it enforces four-eyes itself, or the record
/// is locked): the entry is marked `failed`, the refusal is recorded as a conflict
/// (what was seen, decided, and the PRM's answer) and the case goes to `conflict` so a
/// reviewer sees it.
pub fn mark_refused(store: &mut Store, decision_id: &str, why: &str) -> Result<(), WorkflowError> {
    mark_conflict_as(store, decision_id, json!({"refused": why}), why, "failed")
}

/// The PRM refused a decision because its record changed: keep what the reviewer saw,
/// what they decided and what the PRM has now; the case goes to `conflict`.
pub fn mark_conflict(
    store: &mut Store,
    decision_id: &str,
    remote_snapshot: Value,
    why: &str,
) -> Result<(), WorkflowError> {
    mark_conflict_as(store, decision_id, remote_snapshot, why, "conflict")
}

fn mark_conflict_as(
    store: &mut Store,
    decision_id: &str,
    remote_snapshot: Value,
    why: &str,
    status: &str,
) -> Result<(), WorkflowError> {
    store.wf_tx(|db| {
        let o = db
            .get_outbox(decision_id)?
            .ok_or_else(|| WorkflowError::UnknownDecision(decision_id.to_string()))?;
        let actor = system_actor();
        let op = Op {
            db,
            actor: &actor,
            at: now(),
            system: true,
        };
        if o.status == "pushed" {
            return Err(WorkflowError::Corrupt(format!(
                "decision {decision_id} was already pushed; it cannot conflict now"
            )));
        }
        db.set_outbox_status(decision_id, status, None, Some(why))?;
        // What the reviewer saw (kept as stored; the same key in both payload shapes).
        let payload: Value = serde_json::from_str(&o.payload).unwrap_or(Value::Null);
        let seen = payload.get("seen").cloned().unwrap_or(Value::Null);
        db.insert_conflict(
            &o.transaction_id,
            decision_id,
            &seen.to_string(),
            &o.payload,
            &remote_snapshot.to_string(),
            &op.at,
        )?;
        let d = db.get_decision(decision_id)?;
        let flag = db.get_flag(&o.transaction_id)?;
        let detail = json!({"decision_id": decision_id, "remote": remote_snapshot});
        match db.get_case(&o.transaction_id)? {
            Some(mut c)
                if d.as_ref()
                    .is_some_and(|d| d.to_state == c.state && d.action != "compensate") =>
            {
                op.step(
                    &mut c,
                    None,
                    CaseState::Conflict,
                    "conflict",
                    Some(why),
                    flag.as_ref(),
                    Some(decision_id),
                    Some(detail),
                )?;
            }
            _ => {
                op.audit(
                    "conflict",
                    &o.transaction_id,
                    None,
                    Some(detail),
                    Some(why),
                    flag.as_ref(),
                    Some(decision_id),
                )?;
            }
        }
        Ok(())
    })
}

#[cfg(test)]
mod holds_tests;
#[cfg(test)]
mod tests;
