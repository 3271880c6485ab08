//! Audit entries for events that are not decisions on a transaction (a rollout phase
//! changed, a flag held by the policy, a payout approved …): same hash chain, same
//! canonical form, written inside the caller's transaction.

use serde_json::Value;

use super::audit::{append, NewEntry};
use super::{Actor, WorkflowError};
use crate::store::workflow::WfDb;

/// Appends an event to the audit chain inside the transaction of `db`; returns the new
/// head. `at` is RFC 3339 UTC (the caller's clock).
pub fn record_event(
    db: &WfDb<'_>,
    actor: &Actor,
    at: &str,
    action: &str,
    target: &str,
    after: Option<Value>,
    reason: Option<&str>,
) -> Result<String, WorkflowError> {
    append(
        db,
        actor,
        actor.role.as_str(),
        at,
        NewEntry {
            action,
            target,
            before: None,
            after,
            reason,
            flag: None,
            decision_id: None,
        },
    )
}
