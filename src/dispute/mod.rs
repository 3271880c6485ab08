//! Disputes (partner inquiries): a state machine (pure [`transition`]) and the moves that
//! write a dispute, its event and its audit entry in one SQLite transaction.
//!
//! ```text
//! open -> in_review | escalated | withdrawn
//! in_review -> needs_info | approved | partially_approved | denied | escalated | withdrawn
//! needs_info -> in_review | escalated | withdrawn
//! escalated -> in_review | approved | partially_approved | denied | withdrawn
//! approved | partially_approved | withdrawn -> closed
//! denied -> closed | escalated
//! closed: final
//! ```
//! An approved (granted = claimed) or partially approved (0 < granted < claimed) dispute
//! becomes an override of the transaction's commission total through the workflow
//! (sign-off above the threshold, one outbox row, pushed once).

use std::str::FromStr;

use chrono::{SecondsFormat, Utc};
use rust_decimal::Decimal;
use serde_json::json;

use crate::money::{parse_money, MAX_ABS_AMOUNT};
use crate::store::dispute::{DisputeEventRow, DisputeRow};
use crate::store::Store;
use crate::workflow::{self, Actor, Command, Policy, WorkflowError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
    Open,
    InReview,
    NeedsInfo,
    Approved,
    PartiallyApproved,
    Denied,
    Escalated,
    Withdrawn,
    Closed,
}

pub const ALL: [State; 9] = [
    State::Open,
    State::InReview,
    State::NeedsInfo,
    State::Approved,
    State::PartiallyApproved,
    State::Denied,
    State::Escalated,
    State::Withdrawn,
    State::Closed,
];

impl State {
    pub fn as_str(&self) -> &'static str {
        match self {
            State::Open => "open",
            State::InReview => "in_review",
            State::NeedsInfo => "needs_info",
            State::Approved => "approved",
            State::PartiallyApproved => "partially_approved",
            State::Denied => "denied",
            State::Escalated => "escalated",
            State::Withdrawn => "withdrawn",
            State::Closed => "closed",
        }
    }

    /// Whether the partner has the reviewers' answer: approved, partially approved,
    /// denied, withdrawn or closed (the review SLA stops). Only `closed` is final in the
    /// state machine: a denied dispute may still be escalated, and is then open again.
    pub fn is_answered(&self) -> bool {
        use State::*;
        matches!(
            self,
            Approved | PartiallyApproved | Denied | Withdrawn | Closed
        )
    }

    /// The states a dispute may move to from this one.
    pub fn next(&self) -> &'static [State] {
        use State::*;
        match self {
            Open => &[InReview, Escalated, Withdrawn],
            InReview => &[
                NeedsInfo,
                Approved,
                PartiallyApproved,
                Denied,
                Escalated,
                Withdrawn,
            ],
            NeedsInfo => &[InReview, Escalated, Withdrawn],
            Escalated => &[InReview, Approved, PartiallyApproved, Denied, Withdrawn],
            Approved | PartiallyApproved | Withdrawn => &[Closed],
            Denied => &[Closed, Escalated],
            Closed => &[],
        }
    }
}

impl FromStr for State {
    type Err = DisputeError;
    fn from_str(s: &str) -> Result<State, DisputeError> {
        ALL.iter()
            .copied()
            .find(|x| x.as_str() == s.trim())
            .ok_or_else(|| DisputeError::UnknownState(s.to_string()))
    }
}

/// The reason codes of a dispute.
pub const REASON_CODES: [&str; 5] = [
    "incorrect_amount",
    "missing_credit",
    "wrong_tier",
    "clawback",
    "other",
];

#[derive(Debug, thiserror::Error)]
pub enum DisputeError {
    #[error("unknown dispute state {0:?} (one of open, in_review, needs_info, approved, partially_approved, denied, escalated, withdrawn, closed)")]
    UnknownState(String),
    #[error("cannot move dispute {id} from {from} to {to}: from {from} it can go to {allowed}")]
    Illegal {
        id: String,
        from: &'static str,
        to: &'static str,
        allowed: String,
    },
    #[error("unknown reason code {0:?} (one of incorrect_amount, missing_credit, wrong_tier, clawback, other)")]
    UnknownReason(String),
    #[error("invalid amount {what}: {why}")]
    Amount { what: String, why: String },
    #[error("a reason is required for every dispute move (--reason TEXT)")]
    ReasonRequired,
    #[error("no dispute {0:?} (see `tierdesk dispute list`)")]
    Unknown(String),
    #[error("transaction {0} is not in the cache")]
    UnknownTransaction(String),
    #[error(
        "transaction {tx} belongs to partner {owner}, and partner {partner} earns no line on it"
    )]
    NotPartners {
        tx: String,
        owner: String,
        partner: String,
    },
    #[error("stored dispute data is invalid: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Workflow(#[from] WorkflowError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// What a move grants: `approved` grants the claim, `partially_approved` needs
/// `0 < granted < claimed`; other moves grant nothing.
pub fn transition(
    id: &str,
    from: State,
    to: State,
    claimed: Decimal,
    granted: Option<Decimal>,
) -> Result<Option<Decimal>, DisputeError> {
    if !from.next().contains(&to) {
        let allowed = from.next().iter().map(State::as_str).collect::<Vec<_>>();
        return Err(DisputeError::Illegal {
            id: id.to_string(),
            from: from.as_str(),
            to: to.as_str(),
            allowed: if allowed.is_empty() {
                "nothing (closed is final)".into()
            } else {
                allowed.join(", ")
            },
        });
    }
    match to {
        State::Approved => match granted {
            Some(g) if g != claimed => Err(DisputeError::Amount {
                what: "--granted".into(),
                why: format!(
                    "approved grants the claim of {claimed}; use partially_approved for {g}"
                ),
            }),
            _ => Ok(Some(claimed)),
        },
        State::PartiallyApproved => match granted {
            None => Err(DisputeError::Amount {
                what: "--granted".into(),
                why: "partially_approved needs --granted AMOUNT".into(),
            }),
            Some(g)
                if g.is_sign_negative() == claimed.is_sign_negative()
                    && g != Decimal::ZERO
                    && g.abs() < claimed.abs() =>
            {
                Ok(Some(g))
            }
            Some(g) => Err(DisputeError::Amount {
                what: "--granted".into(),
                why: format!("{g} must be between 0 and the claim of {claimed}"),
            }),
        },
        _ => match granted {
            Some(_) => Err(DisputeError::Amount {
                what: "--granted".into(),
                why: format!(
                    "only approved or partially_approved grant an amount, not {}",
                    to.as_str()
                ),
            }),
            None => Ok(None),
        },
    }
}

/// Parses a claimed or granted amount: exact, non-zero, within the bounds of money.
pub fn parse_amount(s: &str, what: &str) -> Result<Decimal, DisputeError> {
    let d = parse_money(s).ok_or_else(|| DisputeError::Amount {
        what: what.into(),
        why: format!("{s:?} is not an amount like 1250.00"),
    })?;
    if d == Decimal::ZERO || d.abs() > MAX_ABS_AMOUNT || d.scale() > 2 {
        return Err(DisputeError::Amount {
            what: what.into(),
            why: format!("{s} must be non-zero, at most {MAX_ABS_AMOUNT} and in cents"),
        });
    }
    Ok(d)
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A new dispute.
#[derive(Debug, Clone)]
pub struct NewDispute {
    pub partner_id: String,
    pub transaction_id: String,
    pub reason_code: String,
    pub claimed: Decimal,
    pub note: String,
}

/// Opens a dispute (state `open`), with its event and audit entry. Returns its id.
pub fn open(store: &mut Store, actor: &Actor, d: NewDispute) -> Result<String, DisputeError> {
    if !REASON_CODES.contains(&d.reason_code.as_str()) {
        return Err(DisputeError::UnknownReason(d.reason_code));
    }
    let tx = store
        .wf()
        .get_transaction(&d.transaction_id)?
        .ok_or_else(|| DisputeError::UnknownTransaction(d.transaction_id.clone()))?;
    if tx.partner_id != d.partner_id && !store.payee_on(&d.transaction_id, &d.partner_id)? {
        return Err(DisputeError::NotPartners {
            tx: d.transaction_id,
            owner: tx.partner_id,
            partner: d.partner_id,
        });
    }
    let note = crate::text::sanitize(&d.note).into_owned();
    let at = now();
    store.wf_tx(|db| -> Result<String, DisputeError> {
        let n = db.count_disputes()? + 1;
        let id = format!("DSP-{n:06}");
        let row = DisputeRow {
            dispute_id: id.clone(),
            partner_id: d.partner_id.clone(),
            transaction_id: d.transaction_id.clone(),
            reason_code: d.reason_code.clone(),
            claimed: d.claimed.to_string(),
            granted: None,
            state: State::Open.as_str().into(),
            note: note.clone(),
            opened_by: actor.user.clone(),
            opened_at: at.clone(),
            updated_at: at.clone(),
            decision_id: None,
        };
        db.insert_dispute(&row)?;
        workflow::record_event(
            db,
            actor,
            &at,
            "dispute_open",
            &format!("dispute:{id}"),
            Some(json!({
                "state": "open",
                "partner_id": d.partner_id,
                "transaction_id": d.transaction_id,
                "reason_code": d.reason_code,
                "claimed": d.claimed.to_string(),
            })),
            Some("dispute opened"),
        )?;
        let seq = db.audit_last()?.map(|(s, _)| s);
        db.insert_dispute_event(&DisputeEventRow {
            dispute_id: id.clone(),
            from_state: None,
            to_state: "open".into(),
            actor: actor.user.clone(),
            role: actor.role.as_str().into(),
            reason: "dispute opened".into(),
            granted: None,
            at: at.clone(),
            audit_seq: seq,
        })?;
        Ok(id)
    })
}

/// The outcome of a move.
#[derive(Debug, Clone, PartialEq)]
pub struct Moved {
    pub state: State,
    pub granted: Option<Decimal>,
    /// The workflow case state of the adjustment an approval created.
    pub adjustment: Option<String>,
}

/// Moves a dispute; an approval overrides the commission total through the workflow.
pub fn move_to(
    store: &mut Store,
    policy: &Policy,
    actor: &Actor,
    id: &str,
    to: State,
    granted: Option<Decimal>,
    reason: &str,
) -> Result<Moved, DisputeError> {
    let reason = crate::text::sanitize(reason.trim()).into_owned();
    if reason.is_empty() {
        return Err(DisputeError::ReasonRequired);
    }
    let d = store
        .dispute(id)?
        .ok_or_else(|| DisputeError::Unknown(id.to_string()))?;
    let from = State::from_str(&d.state)
        .map_err(|_| DisputeError::Corrupt(format!("state {:?} of {id}", d.state)))?;
    let claimed = parse_money(&d.claimed)
        .ok_or_else(|| DisputeError::Corrupt(format!("claimed {:?} of {id}", d.claimed)))?;
    let granted = transition(id, from, to, claimed, granted)?;
    // The adjustment: the transaction's commission total plus what is granted.
    let adjust = match granted {
        Some(g) => {
            store.ensure_dispute_flag(&d.transaction_id, &d.partner_id)?;
            Some(store.commission_total(&d.transaction_id)? + g)
        }
        None => None,
    };
    let at = now();
    // The decision and the move in ONE transaction: a crash leaves both or neither.
    let (adjustment, _decision_id) = store.wf_tx(
        |db| -> Result<(Option<String>, Option<String>), DisputeError> {
            let mut adjustment = None;
            let mut decision_id = None;
            if let Some(amount) = adjust {
                let state = workflow::decide_in(
                    db,
                    policy,
                    actor,
                    &d.transaction_id,
                    &Command::Override { amount },
                    &format!("dispute {id} {}: {reason}", to.as_str()),
                )?;
                adjustment = Some(state.as_str().to_string());
                decision_id = db
                    .decisions_for(&d.transaction_id)?
                    .last()
                    .map(|x| x.decision_id.clone());
            }
            db.update_dispute(
                id,
                to.as_str(),
                granted.map(|g| g.to_string()).as_deref(),
                decision_id.as_deref(),
                &at,
            )?;
            workflow::record_event(
                db,
                actor,
                &at,
                "dispute_move",
                &format!("dispute:{id}"),
                Some(json!({
                    "from": from.as_str(),
                    "state": to.as_str(),
                    "granted": granted.map(|g| g.to_string()),
                    "decision_id": decision_id,
                })),
                Some(&reason),
            )?;
            let seq = db.audit_last()?.map(|(s, _)| s);
            db.insert_dispute_event(&DisputeEventRow {
                dispute_id: id.to_string(),
                from_state: Some(from.as_str().into()),
                to_state: to.as_str().into(),
                actor: actor.user.clone(),
                role: actor.role.as_str().into(),
                reason: reason.clone(),
                granted: granted.map(|g| g.to_string()),
                at: at.clone(),
                audit_seq: seq,
            })?;
            Ok((adjustment, decision_id))
        },
    )?;
    Ok(Moved {
        state: to,
        granted,
        adjustment,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn st() -> impl Strategy<Value = State> {
        (0..ALL.len()).prop_map(|i| ALL[i])
    }

    proptest! {
        /// A move is allowed exactly when the table lists it; closed is final.
        #[test]
        fn transition_follows_the_table(from in st(), to in st()) {
            let r = transition("DSP-1", from, to, Decimal::new(10000, 2), Some(Decimal::new(4000, 2)));
            let listed = from.next().contains(&to);
            match to {
                State::PartiallyApproved if listed => prop_assert_eq!(r.unwrap(), Some(Decimal::new(4000, 2))),
                _ if !listed => {
                    let e = r.unwrap_err().to_string();
                    prop_assert!(e.contains(from.as_str()) && e.contains(to.as_str()), "{}", e);
                }
                // A granted amount on any other move is refused.
                _ => prop_assert!(r.is_err()),
            }
        }
    }

    #[test]
    fn partial_grants_are_bounded() {
        let c = Decimal::new(10000, 2);
        let t = |g: i64| {
            transition(
                "D",
                State::InReview,
                State::PartiallyApproved,
                c,
                Some(Decimal::new(g, 2)),
            )
        };
        assert!(t(10000).is_err());
        assert!(t(0).is_err());
        assert!(t(-100).is_err());
        assert_eq!(t(9999).unwrap(), Some(Decimal::new(9999, 2)));
        assert_eq!(
            transition("D", State::InReview, State::Approved, c, None).unwrap(),
            Some(c)
        );
        assert!(transition("D", State::Closed, State::InReview, c, None).is_err());
    }
}
