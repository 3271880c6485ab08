//! Local plan versions (`tierdesk plan apply`): each applied plan is a new version, the
//! old ones kept; the newest is the plan in use. Audited in the hash-chained trail, in
//! the same SQLite transaction.

use rusqlite::{params, OptionalExtension};

use super::workflow::AuditRow;
use super::{Result, Store, StoreError};
use crate::model::Plan;

/// One stored plan version.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanVersion {
    pub version: i64,
    pub plan_id: String,
    pub plan: Plan,
    pub reason: String,
    pub actor: String,
    pub created_at: String,
    pub audit_seq: Option<i64>,
}

/// A `plan_versions` row: version, plan_id, json, reason, actor, created_at, audit_seq.
type VersionRow = (i64, String, String, String, String, String, Option<i64>);

/// What `apply_plan_version` records.
pub struct NewPlanVersion<'a> {
    pub plan: &'a Plan,
    pub reason: &'a str,
    pub actor: &'a str,
    pub role: &'a str,
    /// RFC 3339, UTC (the caller's clock).
    pub at: &'a str,
    /// The audit action, e.g. `plan_apply`.
    pub action: &'a str,
    /// The audit entry's `after` (JSON text), e.g. the applied rule.
    pub after: String,
}

fn to_json(p: &Plan) -> Result<String> {
    serde_json::to_string(p)
        .map_err(|e| StoreError::Corrupt(format!("plan cannot be serialised: {e}")))
}

impl Store {
    /// Every plan version, oldest first.
    pub fn plan_versions(&self) -> Result<Vec<PlanVersion>> {
        let mut st = self.conn.prepare(
            "SELECT version, plan_id, json, reason, actor, created_at, audit_seq
             FROM plan_versions ORDER BY version",
        )?;
        let rows: Vec<VersionRow> = st
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                ))
            })?
            .collect::<rusqlite::Result<_>>()?;
        rows.into_iter()
            .map(
                |(version, plan_id, json, reason, actor, created_at, audit_seq)| {
                    let plan = serde_json::from_str(&json).map_err(|e| {
                        StoreError::Corrupt(format!("plan version {version} is not a plan: {e}"))
                    })?;
                    Ok(PlanVersion {
                        version,
                        plan_id,
                        plan,
                        reason,
                        actor,
                        created_at,
                        audit_seq,
                    })
                },
            )
            .collect()
    }

    /// Records `v.plan` as a new plan version and makes it the plan in use, with an audit
    /// entry, in one transaction. The first apply also records the plan it replaces as
    /// version 1. `hash` computes an audit entry's chain hash. Returns the new version.
    pub fn apply_plan_version(
        &mut self,
        v: NewPlanVersion<'_>,
        hash: &dyn Fn(&AuditRow) -> String,
    ) -> Result<i64> {
        let tx = self.conn.unchecked_transaction()?;
        let current: Option<String> = tx
            .query_row("SELECT json FROM plan WHERE id = 1", [], |r| r.get(0))
            .optional()?;
        let Some(current) = current else {
            return Err(StoreError::Corrupt(
                "the cache holds no plan yet: run `tierdesk import DIR`".into(),
            ));
        };
        let last: Option<i64> =
            tx.query_row("SELECT MAX(version) FROM plan_versions", [], |r| r.get(0))?;
        let mut next = last.unwrap_or(0) + 1;
        if last.is_none() {
            let base: Plan = serde_json::from_str(&current)
                .map_err(|e| StoreError::Corrupt(format!("the stored plan is not a plan: {e}")))?;
            tx.execute(
                "INSERT INTO plan_versions (version, plan_id, json, reason, actor, created_at, audit_seq)
                 VALUES (1, ?1, ?2, 'as imported', 'import', ?3, NULL)",
                params![base.plan_id, current, v.at],
            )?;
            next = 2;
        }
        let text = to_json(v.plan)?;
        let wf = self.wf();
        let (seq, prev_hash) = match wf.audit_last()? {
            Some((s, h)) => (s + 1, h),
            None => (1, crate::workflow::GENESIS.to_string()),
        };
        let mut row = AuditRow {
            seq,
            at: v.at.to_string(),
            actor: v.actor.to_string(),
            role: v.role.to_string(),
            action: v.action.to_string(),
            target: format!("plan:{}:v{next}", v.plan.plan_id),
            before: Some(serde_json::json!({ "version": next - 1 }).to_string()),
            after: Some(v.after),
            reason: Some(v.reason.to_string()),
            score: None,
            confidence: None,
            detector_version: None,
            decision_id: None,
            prev_hash,
            hash: String::new(),
        };
        row.hash = hash(&row);
        wf.insert_audit(&row)?;
        tx.execute(
            "INSERT INTO plan_versions (version, plan_id, json, reason, actor, created_at, audit_seq)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![next, v.plan.plan_id, text, v.reason, v.actor, v.at, seq],
        )?;
        tx.execute(
            "UPDATE plan SET plan_id = ?1, json = ?2 WHERE id = 1",
            params![v.plan.plan_id, text],
        )?;
        tx.commit()?;
        Ok(next)
    }
}

impl Store {
    /// Transaction ids with a flag that names a kind, and those with a case opened on them
    /// (the rule report's administrative load).
    pub fn flagged_and_disputed(
        &self,
    ) -> Result<(
        std::collections::BTreeSet<String>,
        std::collections::BTreeSet<String>,
    )> {
        let ids = |sql: &str| -> Result<std::collections::BTreeSet<String>> {
            let mut st = self.conn.prepare(sql)?;
            let v = st
                .query_map([], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<_>>()?;
            Ok(v)
        };
        Ok((
            ids("SELECT transaction_id FROM flags WHERE kinds <> '[]'")?,
            ids("SELECT transaction_id FROM cases")?,
        ))
    }
}
