//! Read models for partner statements and answers, and the final-statement snapshots.

use rusqlite::{params, OptionalExtension};

use super::workflow::WfDb;
use super::{Result, Store};

/// A reviewed transaction: its case, proposal and flag reason codes.
#[derive(Debug, Clone, PartialEq)]
pub struct ReviewRow {
    pub transaction_id: String,
    pub partner_id: String,
    pub state: String,
    pub current_amount: Option<String>,
    pub decided_amount: Option<String>,
    pub proposal_action: Option<String>,
    /// The flag's kinds (reason codes), JSON array text.
    pub kinds: Option<String>,
}

/// A decision with the audit entry that recorded it.
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionAudit {
    pub decision_id: String,
    pub transaction_id: String,
    pub action: String,
    pub amount: Option<String>,
    pub actor: String,
    pub role: String,
    pub from_state: String,
    pub to_state: String,
    pub reverts: Option<String>,
    pub created_at: String,
    pub audit_seq: Option<i64>,
}

/// A stored final statement.
#[derive(Debug, Clone, PartialEq)]
pub struct FinalRow {
    pub statement_id: String,
    pub partner_id: String,
    pub period: String,
    pub finalized_at: String,
    pub finalized_by: String,
    pub json: String,
}

impl Store {
    /// Every case with its transaction's partner, proposal and flag kinds.
    pub fn review_rows(&self) -> Result<Vec<ReviewRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT c.transaction_id, t.partner_id, c.state, p.current_amount, c.decided_amount,
                    p.action, f.kinds
             FROM cases c
             JOIN transactions t ON t.transaction_id = c.transaction_id
             LEFT JOIN proposals p ON p.transaction_id = c.transaction_id
             LEFT JOIN flags f ON f.transaction_id = c.transaction_id
             ORDER BY c.transaction_id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(ReviewRow {
                transaction_id: r.get(0)?,
                partner_id: r.get(1)?,
                state: r.get(2)?,
                current_amount: r.get(3)?,
                decided_amount: r.get(4)?,
                proposal_action: r.get(5)?,
                kinds: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Every decision in the order made, with the audit entry that recorded it.
    pub fn decisions_with_audit(&self) -> Result<Vec<DecisionAudit>> {
        let mut stmt = self.conn.prepare(
            "SELECT d.decision_id, d.transaction_id, d.action, d.amount, d.actor, d.role,
                    d.from_state, d.to_state, d.reverts, d.created_at,
                    (SELECT MIN(a.seq) FROM audit_log a WHERE a.decision_id = d.decision_id)
             FROM decisions d ORDER BY d.rowid",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(DecisionAudit {
                decision_id: r.get(0)?,
                transaction_id: r.get(1)?,
                action: r.get(2)?,
                amount: r.get(3)?,
                actor: r.get(4)?,
                role: r.get(5)?,
                from_state: r.get(6)?,
                to_state: r.get(7)?,
                reverts: r.get(8)?,
                created_at: r.get(9)?,
                audit_seq: r.get(10)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The PRM's reward statuses of a transaction (`status`, `decline_reason`).
    pub fn reward_statuses(&self, tx_id: &str) -> Result<Vec<(String, String, Option<String>)>> {
        let mut stmt = self.conn.prepare(
            "SELECT reward_id, status, decline_reason FROM prm_rewards
             WHERE transaction_id = ?1 ORDER BY reward_id",
        )?;
        let rows = stmt.query_map([tx_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// All final statements (small: one per payee and closed period).
    pub fn final_statements(&self) -> Result<Vec<FinalRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT statement_id, partner_id, period, finalized_at, finalized_by, json
             FROM statements ORDER BY partner_id, period",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(FinalRow {
                statement_id: r.get(0)?,
                partner_id: r.get(1)?,
                period: r.get(2)?,
                finalized_at: r.get(3)?,
                finalized_by: r.get(4)?,
                json: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// An audit entry by sequence number, as JSON-ready fields.
    pub fn audit_entry(&self, seq: i64) -> Result<Option<super::workflow::AuditRow>> {
        self.conn
            .query_row(
                &format!(
                    "SELECT {} FROM audit_log WHERE seq = ?1",
                    super::workflow::AUDIT_COLS
                ),
                [seq],
                super::workflow::audit_from,
            )
            .optional()
            .map_err(Into::into)
    }
}

impl WfDb<'_> {
    /// Stores a final statement; `false` when one exists for the payee and period (it
    /// is never replaced).
    pub fn insert_final_statement(&self, f: &FinalRow) -> Result<bool> {
        let n = self.conn.execute(
            "INSERT OR IGNORE INTO statements
               (statement_id, partner_id, period, finalized_at, finalized_by, json)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                f.statement_id,
                f.partner_id,
                f.period,
                f.finalized_at,
                f.finalized_by,
                f.json
            ],
        )?;
        Ok(n == 1)
    }
}

impl Store {
    /// Every PRM reward status by transaction: (transaction, reward, status).
    pub fn all_reward_statuses(&self) -> Result<Vec<(String, String, String)>> {
        let mut stmt = self.conn.prepare(
            "SELECT transaction_id, reward_id, status FROM prm_rewards ORDER BY transaction_id, reward_id",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
