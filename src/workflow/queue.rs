//! The exception queue with workflow states (for `tierdesk queue` and scripts).

use rust_decimal::Decimal;
use serde::Serialize;

use super::types::{CaseState, WorkflowError};
use crate::money::parse_money;
use crate::store::Store;

/// One flagged transaction in the review window, with its case state and proposal.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueueItem {
    pub transaction_id: String,
    pub partner_id: String,
    pub score: f64,
    pub confidence: f64,
    pub kinds: Vec<String>,
    pub amount: Decimal,
    pub currency: Option<String>,
    pub at_stake: Decimal,
    pub state: CaseState,
    pub proposed_action: Option<String>,
    pub current_amount: Option<Decimal>,
    pub proposed_amount: Option<Decimal>,
    pub delta: Option<Decimal>,
    pub decided_amount: Option<Decimal>,
    pub proposer: Option<String>,
    pub reasons: Vec<String>,
}

/// Flagged transactions of the review window by score (highest first), optionally
/// only those in `state`, at most `limit`.
pub fn queue(
    store: &Store,
    state: Option<CaseState>,
    limit: usize,
) -> Result<Vec<QueueItem>, WorkflowError> {
    let rows = store.wf().queue(state.map(|s| s.as_str()), limit)?;
    rows.into_iter()
        .map(|r| {
            let tx = r.transaction_id.clone();
            let m = |s: Option<String>, what: &str| -> Result<Option<Decimal>, WorkflowError> {
                match s {
                    None => Ok(None),
                    Some(s) => parse_money(&s).map(Some).ok_or_else(|| {
                        WorkflowError::Corrupt(format!("{what} of {tx} is not an amount: '{s}'"))
                    }),
                }
            };
            let amount = match m(r.amount, "amount")? {
                Some(a) => a,
                None => Decimal::new(r.amount_minor, 2),
            };
            Ok(QueueItem {
                state: CaseState::parse(&r.status).ok_or_else(|| {
                    WorkflowError::Corrupt(format!("flag status of {tx} is '{}'", r.status))
                })?,
                kinds: serde_json::from_str(&r.kinds)
                    .map_err(|e| WorkflowError::Corrupt(format!("flag kinds of {tx}: {e}")))?,
                reasons: serde_json::from_str(&r.reasons).unwrap_or_default(),
                current_amount: m(r.current_amount, "current_amount")?,
                proposed_amount: m(r.proposed_amount, "proposed_amount")?,
                delta: m(r.delta, "delta")?,
                decided_amount: m(r.decided_amount, "decided amount")?,
                at_stake: Decimal::new(r.at_stake_minor, 2),
                transaction_id: r.transaction_id,
                partner_id: r.partner_id,
                score: r.score,
                confidence: r.confidence,
                amount,
                currency: r.currency,
                proposed_action: r.proposal_action,
                proposer: r.proposer,
            })
        })
        .collect()
}

/// One adjustment waiting for a manager's sign-off.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SignoffItem {
    pub transaction_id: String,
    pub partner_id: String,
    pub partner_name: Option<String>,
    /// What is being approved: `hold` (the commission is held, no amount changes),
    /// `reverse`, `recompute` or `adjust` (the proposal's), `override` (the reviewer's
    /// amount), or `approve`.
    pub action: String,
    /// For a hold: the commission held (the amount at stake; `delta` is zero).
    pub held_amount: Option<Decimal>,
    /// Fiscal quarter of the transaction's close date, e.g. `2026-Q3`.
    pub period: String,
    pub currency: String,
    pub current_amount: Option<Decimal>,
    pub decided_amount: Option<Decimal>,
    /// decided - current (zero when either is unknown).
    pub delta: Decimal,
    /// Who proposed it: they may not sign it off.
    pub proposer: Option<String>,
}

/// Adjustments awaiting sign-off, by partner then transaction (the managers' pane;
/// totals per period/partner are sums over these).
pub fn signoff_queue(store: &Store) -> Result<Vec<SignoffItem>, WorkflowError> {
    let db = store.wf();
    let fy = db.fiscal_year_start_month()?;
    let mut out = Vec::new();
    for r in db.journal_rows(&[CaseState::AwaitingSignoff.as_str()])? {
        let tx = r.transaction_id.clone();
        let m = |s: &Option<String>| -> Result<Option<Decimal>, WorkflowError> {
            match s {
                None => Ok(None),
                Some(s) => parse_money(s).map(Some).ok_or_else(|| {
                    WorkflowError::Corrupt(format!("amount of {tx} is not an amount: '{s}'"))
                }),
            }
        };
        let current_amount = m(&r.current_amount)?;
        let decided_amount = m(&r.decided_amount)?;
        let closed = chrono::NaiveDate::parse_from_str(&r.closed_on, "%Y-%m-%d").map_err(|_| {
            WorkflowError::Corrupt(format!(
                "closed_on of {tx} is not a date: '{}'",
                r.closed_on
            ))
        })?;
        let proposer = db.get_case(&tx)?.and_then(|c| c.proposer);
        let proposing = db
            .decisions_for(&tx)?
            .into_iter()
            .rev()
            .find(|d| d.to_state == CaseState::AwaitingSignoff.as_str());
        let action = super::effect_name(
            r.proposal_action.as_deref(),
            proposing.as_ref().map(|d| d.action.as_str()),
        );
        let held_amount = (action == "hold" && decided_amount.is_none())
            .then_some(current_amount)
            .flatten();
        out.push(SignoffItem {
            action,
            held_amount,
            period: crate::model::fiscal_quarter(closed, fy),
            delta: match (current_amount, decided_amount) {
                (Some(c), Some(d)) => d - c,
                _ => Decimal::ZERO,
            },
            transaction_id: r.transaction_id,
            partner_id: r.partner_id,
            partner_name: r.partner_name,
            currency: r.currency,
            current_amount,
            decided_amount,
            proposer,
        });
    }
    Ok(out)
}
