//! Disputes (partner inquiries) and their moves.

use rusqlite::{params, OptionalExtension};

use super::workflow::WfDb;
use super::{Result, Store};

/// A `disputes` row.
#[derive(Debug, Clone, PartialEq)]
pub struct DisputeRow {
    pub dispute_id: String,
    pub partner_id: String,
    pub transaction_id: String,
    pub reason_code: String,
    pub claimed: String,
    pub granted: Option<String>,
    pub state: String,
    pub note: String,
    pub opened_by: String,
    pub opened_at: String,
    pub updated_at: String,
    pub decision_id: Option<String>,
}

/// A `dispute_events` row.
#[derive(Debug, Clone, PartialEq)]
pub struct DisputeEventRow {
    pub dispute_id: String,
    pub from_state: Option<String>,
    pub to_state: String,
    pub actor: String,
    pub role: String,
    pub reason: String,
    pub granted: Option<String>,
    pub at: String,
    pub audit_seq: Option<i64>,
}

const COLS: &str = "dispute_id, partner_id, transaction_id, reason_code, claimed, granted, state,
                    note, opened_by, opened_at, updated_at, decision_id";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DisputeRow> {
    Ok(DisputeRow {
        dispute_id: r.get(0)?,
        partner_id: r.get(1)?,
        transaction_id: r.get(2)?,
        reason_code: r.get(3)?,
        claimed: r.get(4)?,
        granted: r.get(5)?,
        state: r.get(6)?,
        note: r.get(7)?,
        opened_by: r.get(8)?,
        opened_at: r.get(9)?,
        updated_at: r.get(10)?,
        decision_id: r.get(11)?,
    })
}

fn list(conn: &rusqlite::Connection, state: Option<&str>) -> Result<Vec<DisputeRow>> {
    let sql = format!(
        "SELECT {COLS} FROM disputes WHERE (?1 IS NULL OR state = ?1) ORDER BY opened_at, dispute_id"
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map([state], row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn get(conn: &rusqlite::Connection, id: &str) -> Result<Option<DisputeRow>> {
    let sql = format!("SELECT {COLS} FROM disputes WHERE dispute_id = ?1");
    Ok(conn.query_row(&sql, [id], row).optional()?)
}

fn events(conn: &rusqlite::Connection, id: &str) -> Result<Vec<DisputeEventRow>> {
    let mut stmt = conn.prepare(
        "SELECT dispute_id, from_state, to_state, actor, role, reason, granted, at, audit_seq
         FROM dispute_events WHERE dispute_id = ?1 ORDER BY id",
    )?;
    let rows = stmt.query_map([id], |r| {
        Ok(DisputeEventRow {
            dispute_id: r.get(0)?,
            from_state: r.get(1)?,
            to_state: r.get(2)?,
            actor: r.get(3)?,
            role: r.get(4)?,
            reason: r.get(5)?,
            granted: r.get(6)?,
            at: r.get(7)?,
            audit_seq: r.get(8)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

impl Store {
    pub fn disputes(&self, state: Option<&str>) -> Result<Vec<DisputeRow>> {
        list(&self.conn, state)
    }
    pub fn dispute(&self, id: &str) -> Result<Option<DisputeRow>> {
        get(&self.conn, id)
    }
    pub fn dispute_events(&self, id: &str) -> Result<Vec<DisputeEventRow>> {
        events(&self.conn, id)
    }
}

impl WfDb<'_> {
    pub fn dispute(&self, id: &str) -> Result<Option<DisputeRow>> {
        get(self.conn, id)
    }

    pub fn count_disputes(&self) -> Result<i64> {
        Ok(self
            .conn
            .query_row("SELECT COUNT(*) FROM disputes", [], |r| r.get(0))?)
    }

    pub fn insert_dispute(&self, d: &DisputeRow) -> Result<()> {
        self.conn.execute(
            &format!(
                "INSERT INTO disputes ({COLS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12)"
            ),
            params![
                d.dispute_id,
                d.partner_id,
                d.transaction_id,
                d.reason_code,
                d.claimed,
                d.granted,
                d.state,
                d.note,
                d.opened_by,
                d.opened_at,
                d.updated_at,
                d.decision_id
            ],
        )?;
        Ok(())
    }

    pub fn update_dispute(
        &self,
        id: &str,
        state: &str,
        granted: Option<&str>,
        decision_id: Option<&str>,
        at: &str,
    ) -> Result<()> {
        self.conn.execute(
            "UPDATE disputes SET state = ?2, granted = COALESCE(?3, granted),
                    decision_id = COALESCE(?4, decision_id), updated_at = ?5
             WHERE dispute_id = ?1",
            params![id, state, granted, decision_id, at],
        )?;
        Ok(())
    }

    pub fn insert_dispute_event(&self, e: &DisputeEventRow) -> Result<()> {
        self.conn.execute(
            "INSERT INTO dispute_events (dispute_id, from_state, to_state, actor, role, reason,
               granted, at, audit_seq) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9)",
            params![
                e.dispute_id,
                e.from_state,
                e.to_state,
                e.actor,
                e.role,
                e.reason,
                e.granted,
                e.at,
                e.audit_seq
            ],
        )?;
        Ok(())
    }
}

impl Store {
    /// Whether `partner` is the payee of a commission line on the transaction.
    pub fn payee_on(&self, tx_id: &str, partner: &str) -> Result<bool> {
        Ok(self.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM commissions WHERE transaction_id = ?1 AND payee_partner_id = ?2)",
            [tx_id, partner],
            |r| r.get(0),
        )?)
    }

    /// The commission total the workflow starts from: the proposal's accrued amount,
    /// else the sum of the PRM's lines.
    pub fn commission_total(&self, tx_id: &str) -> Result<rust_decimal::Decimal> {
        if let Some(p) = self.wf().get_proposal(tx_id)? {
            return crate::money::parse_money(&p.current_amount).ok_or_else(|| {
                super::StoreError::Corrupt(format!(
                    "proposal current_amount of {tx_id} is not an amount: {:?}",
                    p.current_amount
                ))
            });
        }
        let mut sum = rust_decimal::Decimal::ZERO;
        for a in self.wf().commission_amounts(tx_id)? {
            sum += crate::money::parse_money(&a).ok_or_else(|| {
                super::StoreError::Corrupt(format!("commission amount of {tx_id}: {a:?}"))
            })?;
        }
        Ok(sum)
    }

    /// A transaction under dispute with no flag gets one of kind `dispute`, so the
    /// workflow (which decides flagged transactions) can carry the adjustment.
    pub fn ensure_dispute_flag(&self, tx_id: &str, partner_id: &str) -> Result<()> {
        self.conn.execute(
            "INSERT INTO flags (transaction_id, score, confidence, kinds, reasons, detector_version,
               row_hash, scored_at, in_window, amount_minor, at_stake_minor, partner_id, status)
             SELECT t.transaction_id, 1.0, 1.0, '[\"dispute\"]', '[\"partner dispute\"]', 'dispute',
                    t.row_hash, strftime('%Y-%m-%dT%H:%M:%SZ','now'), 1, t.amount_minor, 0, ?2, 'flagged'
             FROM transactions t
             WHERE t.transaction_id = ?1
               AND NOT EXISTS (SELECT 1 FROM flags f WHERE f.transaction_id = ?1)",
            [tx_id, partner_id],
        )?;
        Ok(())
    }
}
