//! Store: workflow — cases, decisions, audit log, outbox, conflicts, and the read
//! models behind `queue` and `journal`.
//!
//! The workflow module drives these through [`WfDb`]: reads on a plain connection
//! ([`Store::wf`]) and every state change inside one SQLite transaction
//! ([`Store::wf_tx`]), so a decision, its audit entry and its outbox row land together
//! or not at all.

use rusqlite::{params, Connection, OptionalExtension};

use super::{Result, Store, StoreError};

/// A `cases` row.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseRow {
    pub transaction_id: String,
    pub state: String,
    pub decided_amount: Option<String>,
    pub proposer: Option<String>,
    pub signed_hash: Option<String>,
    pub version: i64,
    pub updated_at: String,
}

/// The parts of a `flags` row the workflow acts on.
#[derive(Debug, Clone, PartialEq)]
pub struct FlagRow {
    pub transaction_id: String,
    pub score: f64,
    pub confidence: f64,
    /// JSON array of kind names, as stored.
    pub kinds: String,
    pub detector_version: String,
    pub row_hash: String,
    pub status: String,
    pub partner_id: String,
}

/// A `proposals` row (money as stored: exact decimal strings).
#[derive(Debug, Clone, PartialEq)]
pub struct ProposalRow {
    pub action: String,
    pub current_amount: String,
    pub proposed_amount: String,
    pub delta: String,
    pub currency: String,
    pub rationale: String,
    pub detector_version: String,
}

/// The parts of a `transactions` row the workflow needs.
#[derive(Debug, Clone, PartialEq)]
pub struct TxRow {
    pub transaction_id: String,
    pub partner_id: String,
    pub amount: String,
    pub currency: String,
    pub closed_on: String,
    pub row_hash: String,
    pub record_version: i64,
}

/// A `decisions` row.
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionRow {
    pub decision_id: String,
    pub transaction_id: String,
    pub action: String,
    pub amount: Option<String>,
    pub reason: String,
    pub actor: String,
    pub role: String,
    pub from_state: String,
    pub to_state: String,
    pub record_version: Option<i64>,
    pub reverts: Option<String>,
    pub created_at: String,
}

/// An `audit_log` row.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRow {
    pub seq: i64,
    pub at: String,
    pub actor: String,
    pub role: String,
    pub action: String,
    pub target: String,
    pub before: Option<String>,
    pub after: Option<String>,
    pub reason: Option<String>,
    pub score: Option<f64>,
    pub confidence: Option<f64>,
    pub detector_version: Option<String>,
    pub decision_id: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}

/// An `outbox` row.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRow {
    pub id: i64,
    pub decision_id: String,
    pub idempotency_key: String,
    pub transaction_id: String,
    pub payload: String,
    pub record_version: Option<i64>,
    pub audit_head: Option<String>,
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub created_at: String,
    pub pushed_at: Option<String>,
}

/// One line of the exception queue (flags in the review window, joined with their case
/// and proposal).
#[derive(Debug, Clone, PartialEq)]
pub struct QueueRow {
    pub transaction_id: String,
    pub partner_id: String,
    pub score: f64,
    pub confidence: f64,
    pub kinds: String,
    pub reasons: String,
    pub amount_minor: i64,
    pub at_stake_minor: i64,
    pub status: String,
    pub amount: Option<String>,
    pub currency: Option<String>,
    pub proposal_action: Option<String>,
    pub current_amount: Option<String>,
    pub proposed_amount: Option<String>,
    pub delta: Option<String>,
    pub decided_amount: Option<String>,
    pub proposer: Option<String>,
}

/// One adjustment for the journal: a case whose decision stands (awaiting push or pushed).
#[derive(Debug, Clone, PartialEq)]
pub struct JournalRow {
    pub transaction_id: String,
    pub partner_id: String,
    pub partner_name: Option<String>,
    pub closed_on: String,
    pub currency: String,
    pub state: String,
    pub current_amount: Option<String>,
    pub decided_amount: Option<String>,
    pub decision_id: Option<String>,
    pub decision_action: Option<String>,
    pub decision_reason: Option<String>,
    pub audit_seq: Option<i64>,
    /// When the decision that queued it was made (RFC 3339).
    pub decided_at: Option<String>,
    /// The proposal's action (hold | reverse | recompute | adjust), when there is one.
    pub proposal_action: Option<String>,
}

/// Workflow access to the cache, on a connection or inside a transaction.
pub struct WfDb<'a> {
    pub(super) conn: &'a Connection,
}

impl Store {
    /// Read access for the workflow (no transaction).
    pub fn wf(&self) -> WfDb<'_> {
        self.conn.set_prepared_statement_cache_capacity(64);
        WfDb { conn: &self.conn }
    }

    /// Runs `f` in one immediate SQLite transaction: committed when `f` returns `Ok`,
    /// rolled back (nothing applied) when it returns `Err`.
    pub fn wf_tx<T, E: From<StoreError>>(
        &mut self,
        f: impl FnOnce(&WfDb<'_>) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        self.conn.set_prepared_statement_cache_capacity(64);
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(StoreError::from)?;
        let out = f(&WfDb { conn: &tx })?;
        tx.commit().map_err(StoreError::from)?;
        Ok(out)
    }
}

impl Store {
    /// Up to `limit` queued transactions with a proposed adjustment and no case yet
    /// (nobody has acted on them), by id: what `tierdesk bench workflow` decides on.
    pub fn undecided_proposal_ids(&self, limit: usize) -> Result<Vec<String>> {
        let mut st = self.conn.prepare(
            "SELECT p.transaction_id FROM proposals p
             JOIN flags f ON f.transaction_id = p.transaction_id
             WHERE f.in_window = 1 AND f.kinds <> '[]'
               AND NOT EXISTS (SELECT 1 FROM cases c WHERE c.transaction_id = p.transaction_id)
             ORDER BY p.transaction_id LIMIT ?1",
        )?;
        let ids = st
            .query_map([limit as i64], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(ids)
    }

    /// Runs `f` in a transaction that is always rolled back: validates an action and
    /// reports its outcome without applying it.
    pub fn wf_dry_run<T, E: From<StoreError>>(
        &mut self,
        f: impl FnOnce(&WfDb<'_>) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        self.conn.set_prepared_statement_cache_capacity(64);
        let tx = self.conn.transaction().map_err(StoreError::from)?;
        let out = f(&WfDb { conn: &tx });
        tx.rollback().map_err(StoreError::from)?;
        out
    }
}

fn case_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<CaseRow> {
    Ok(CaseRow {
        transaction_id: r.get(0)?,
        state: r.get(1)?,
        decided_amount: r.get(2)?,
        proposer: r.get(3)?,
        signed_hash: r.get(4)?,
        version: r.get(5)?,
        updated_at: r.get(6)?,
    })
}

const CASE_COLS: &str =
    "transaction_id, state, decided_amount, proposer, signed_hash, version, updated_at";
const DECISION_COLS: &str = "decision_id, transaction_id, action, amount, reason, actor, role, from_state, to_state, record_version, reverts, created_at";
pub(crate) const AUDIT_COLS: &str = "seq, at, actor, role, action, target, before, after, reason, score, confidence, detector_version, decision_id, prev_hash, hash";
const OUTBOX_COLS: &str = "id, decision_id, idempotency_key, transaction_id, payload, record_version, audit_head, status, attempts, last_error, created_at, pushed_at";

fn decision_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<DecisionRow> {
    Ok(DecisionRow {
        decision_id: r.get(0)?,
        transaction_id: r.get(1)?,
        action: r.get(2)?,
        amount: r.get(3)?,
        reason: r.get(4)?,
        actor: r.get(5)?,
        role: r.get(6)?,
        from_state: r.get(7)?,
        to_state: r.get(8)?,
        record_version: r.get(9)?,
        reverts: r.get(10)?,
        created_at: r.get(11)?,
    })
}

pub(crate) fn audit_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<AuditRow> {
    Ok(AuditRow {
        seq: r.get(0)?,
        at: r.get(1)?,
        actor: r.get(2)?,
        role: r.get(3)?,
        action: r.get(4)?,
        target: r.get(5)?,
        before: r.get(6)?,
        after: r.get(7)?,
        reason: r.get(8)?,
        score: r.get(9)?,
        confidence: r.get(10)?,
        detector_version: r.get(11)?,
        decision_id: r.get(12)?,
        prev_hash: r.get(13)?,
        hash: r.get(14)?,
    })
}

fn outbox_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<OutboxRow> {
    Ok(OutboxRow {
        id: r.get(0)?,
        decision_id: r.get(1)?,
        idempotency_key: r.get(2)?,
        transaction_id: r.get(3)?,
        payload: r.get(4)?,
        record_version: r.get(5)?,
        audit_head: r.get(6)?,
        status: r.get(7)?,
        attempts: r.get(8)?,
        last_error: r.get(9)?,
        created_at: r.get(10)?,
        pushed_at: r.get(11)?,
    })
}

impl WfDb<'_> {
    /// Executes a statement through the prepared-statement cache.
    fn exec<P: rusqlite::Params>(&self, sql: &str, p: P) -> rusqlite::Result<usize> {
        self.conn.prepare_cached(sql)?.execute(p)
    }

    /// One row through the prepared-statement cache.
    fn one<T, P: rusqlite::Params>(
        &self,
        sql: &str,
        p: P,
        f: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        self.conn.prepare_cached(sql)?.query_row(p, f)
    }

    // ---- cases -------------------------------------------------------------------

    pub fn get_case(&self, tx_id: &str) -> Result<Option<CaseRow>> {
        Ok(self
            .one(
                &format!("SELECT {CASE_COLS} FROM cases WHERE transaction_id = ?1"),
                [tx_id],
                case_from,
            )
            .optional()?)
    }

    /// Cases in any of `states`.
    pub fn cases_in_states(&self, states: &[&str]) -> Result<Vec<CaseRow>> {
        let mut out = Vec::new();
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {CASE_COLS} FROM cases WHERE state = ?1 ORDER BY transaction_id"
        ))?;
        for s in states {
            for row in stmt.query_map([s], case_from)? {
                out.push(row?);
            }
        }
        Ok(out)
    }

    /// Inserts or replaces the case and keeps `flags.status` equal to its state.
    pub fn put_case(&self, c: &CaseRow) -> Result<()> {
        self.exec(
            "INSERT INTO cases (transaction_id, state, decided_amount, proposer, signed_hash, version, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT(transaction_id) DO UPDATE SET state = excluded.state,
               decided_amount = excluded.decided_amount, proposer = excluded.proposer,
               signed_hash = excluded.signed_hash, version = excluded.version,
               updated_at = excluded.updated_at",
            params![
                c.transaction_id,
                c.state,
                c.decided_amount,
                c.proposer,
                c.signed_hash,
                c.version,
                c.updated_at
            ],
        )?;
        self.exec(
            "UPDATE flags SET status = ?2 WHERE transaction_id = ?1 AND status <> ?2",
            params![c.transaction_id, c.state],
        )?;
        Ok(())
    }

    /// Re-aligns `flags.status` with the case state for every case (a rescore that
    /// rewrote flag rows may have reset it). Returns how many flags were corrected.
    pub fn resync_flag_status(&self) -> Result<usize> {
        Ok(self.exec(
            "UPDATE flags SET status = (SELECT c.state FROM cases c WHERE c.transaction_id = flags.transaction_id)
             WHERE EXISTS (SELECT 1 FROM cases c WHERE c.transaction_id = flags.transaction_id AND c.state <> flags.status)",
            [],
        )?)
    }

    // ---- inputs: flags, proposals, transactions, partners ----------------------------

    pub fn get_flag(&self, tx_id: &str) -> Result<Option<FlagRow>> {
        Ok(self
            .one(
                "SELECT transaction_id, score, confidence, kinds, detector_version, row_hash, status, partner_id
                 FROM flags WHERE transaction_id = ?1",
                [tx_id],
                |r| {
                    Ok(FlagRow {
                        transaction_id: r.get(0)?,
                        score: r.get(1)?,
                        confidence: r.get(2)?,
                        kinds: r.get(3)?,
                        detector_version: r.get(4)?,
                        row_hash: r.get(5)?,
                        status: r.get(6)?,
                        partner_id: r.get(7)?,
                    })
                },
            )
            .optional()?)
    }

    pub fn get_proposal(&self, tx_id: &str) -> Result<Option<ProposalRow>> {
        Ok(self
            .one(
                "SELECT action, current_amount, proposed_amount, delta, currency, rationale, detector_version
                 FROM proposals WHERE transaction_id = ?1",
                [tx_id],
                |r| {
                    Ok(ProposalRow {
                        action: r.get(0)?,
                        current_amount: r.get(1)?,
                        proposed_amount: r.get(2)?,
                        delta: r.get(3)?,
                        currency: r.get(4)?,
                        rationale: r.get(5)?,
                        detector_version: r.get(6)?,
                    })
                },
            )
            .optional()?)
    }

    pub fn get_transaction(&self, tx_id: &str) -> Result<Option<TxRow>> {
        Ok(self
            .one(
                "SELECT transaction_id, partner_id, amount, currency, closed_on, row_hash, record_version
                 FROM transactions WHERE transaction_id = ?1",
                [tx_id],
                |r| {
                    Ok(TxRow {
                        transaction_id: r.get(0)?,
                        partner_id: r.get(1)?,
                        amount: r.get(2)?,
                        currency: r.get(3)?,
                        closed_on: r.get(4)?,
                        row_hash: r.get(5)?,
                        record_version: r.get(6)?,
                    })
                },
            )
            .optional()?)
    }

    /// `partners.high_value` (false when the partner is unknown).
    pub fn partner_high_value(&self, partner_id: &str) -> Result<bool> {
        let v: Option<i64> = self
            .one(
                "SELECT high_value FROM partners WHERE partner_id = ?1",
                [partner_id],
                |r| r.get(0),
            )
            .optional()?;
        Ok(v.unwrap_or(0) != 0)
    }

    /// The PRM's commission amounts for a transaction (exact strings).
    pub fn commission_amounts(&self, tx_id: &str) -> Result<Vec<String>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT amount FROM commissions WHERE transaction_id = ?1")?;
        let rows = stmt.query_map([tx_id], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The program's fiscal year start month (1 when no program is imported).
    pub fn fiscal_year_start_month(&self) -> Result<u32> {
        let v: Option<i64> = self
            .one(
                "SELECT fiscal_year_start_month FROM program WHERE id = 1",
                [],
                |r| r.get(0),
            )
            .optional()?;
        Ok(v.and_then(|m| u32::try_from(m).ok()).unwrap_or(1))
    }

    // ---- decisions ---------------------------------------------------------------

    pub fn insert_decision(&self, d: &DecisionRow) -> Result<()> {
        self.exec(
            &format!("INSERT INTO decisions ({DECISION_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"),
            params![
                d.decision_id,
                d.transaction_id,
                d.action,
                d.amount,
                d.reason,
                d.actor,
                d.role,
                d.from_state,
                d.to_state,
                d.record_version,
                d.reverts,
                d.created_at
            ],
        )?;
        Ok(())
    }

    pub fn get_decision(&self, decision_id: &str) -> Result<Option<DecisionRow>> {
        Ok(self
            .one(
                &format!("SELECT {DECISION_COLS} FROM decisions WHERE decision_id = ?1"),
                [decision_id],
                decision_from,
            )
            .optional()?)
    }

    /// Decisions on a transaction, oldest first (insertion order).
    pub fn decisions_for(&self, tx_id: &str) -> Result<Vec<DecisionRow>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {DECISION_COLS} FROM decisions WHERE transaction_id = ?1 ORDER BY rowid"
        ))?;
        let rows = stmt.query_map([tx_id], decision_from)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn count_decisions(&self) -> Result<i64> {
        Ok(self.one("SELECT COUNT(*) FROM decisions", [], |r| r.get(0))?)
    }

    // ---- audit log ---------------------------------------------------------------

    /// `(seq, hash)` of the latest audit entry, if any.
    pub fn audit_last(&self) -> Result<Option<(i64, String)>> {
        Ok(self
            .one(
                "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    /// `(seq, hash)` recorded as the chain head when the last entry was written.
    pub fn audit_anchor(&self) -> Result<Option<(i64, String)>> {
        Ok(self
            .one("SELECT seq, hash FROM audit_anchor WHERE id = 1", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?)
    }

    /// Appends an entry (its `seq`, `prev_hash` and `hash` already computed) and moves
    /// the anchor to it.
    pub fn insert_audit(&self, a: &AuditRow) -> Result<()> {
        self.exec(
            &format!("INSERT INTO audit_log ({AUDIT_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"),
            params![
                a.seq,
                a.at,
                a.actor,
                a.role,
                a.action,
                a.target,
                a.before,
                a.after,
                a.reason,
                a.score,
                a.confidence,
                a.detector_version,
                a.decision_id,
                a.prev_hash,
                a.hash
            ],
        )?;
        self.exec(
            "INSERT INTO audit_anchor (id, seq, hash) VALUES (1, ?1, ?2)
             ON CONFLICT(id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
            params![a.seq, a.hash],
        )?;
        Ok(())
    }

    /// Calls `f` on every audit entry in `seq` order (streams; never loads the table).
    pub fn for_each_audit(
        &self,
        mut f: impl FnMut(AuditRow) -> std::result::Result<bool, StoreError>,
    ) -> Result<()> {
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT {AUDIT_COLS} FROM audit_log ORDER BY seq"))?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            if !f(audit_from(r)?)? {
                break;
            }
        }
        Ok(())
    }

    /// Entries whose target is `target`, in `seq` order.
    pub fn audit_for(&self, target: &str) -> Result<Vec<AuditRow>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {AUDIT_COLS} FROM audit_log WHERE target = ?1 ORDER BY seq"
        ))?;
        let rows = stmt.query_map([target], audit_from)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The latest audit `seq` written for a decision.
    pub fn audit_seq_of_decision(&self, decision_id: &str) -> Result<Option<i64>> {
        Ok(self.one(
            "SELECT MAX(seq) FROM audit_log WHERE decision_id = ?1",
            [decision_id],
            |r| r.get(0),
        )?)
    }

    // ---- outbox ------------------------------------------------------------------

    pub fn insert_outbox(&self, o: &OutboxRow) -> Result<i64> {
        self.exec(
            "INSERT INTO outbox (decision_id, idempotency_key, transaction_id, payload, record_version, audit_head, status, attempts, last_error, created_at, pushed_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            params![
                o.decision_id,
                o.idempotency_key,
                o.transaction_id,
                o.payload,
                o.record_version,
                o.audit_head,
                o.status,
                o.attempts,
                o.last_error,
                o.created_at,
                o.pushed_at
            ],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    pub fn get_outbox(&self, decision_id: &str) -> Result<Option<OutboxRow>> {
        Ok(self
            .one(
                &format!("SELECT {OUTBOX_COLS} FROM outbox WHERE decision_id = ?1"),
                [decision_id],
                outbox_from,
            )
            .optional()?)
    }

    /// Pending outbox rows in the order they were written.
    pub fn pending_outbox(&self, limit: usize) -> Result<Vec<OutboxRow>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {OUTBOX_COLS} FROM outbox WHERE status = 'pending' ORDER BY id LIMIT ?1"
        ))?;
        let lim = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt.query_map([lim], outbox_from)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Outbox rows with one status, in order (e.g. `manual`: decisions left for the PRM's
    /// own screen).
    pub fn outbox_with_status(&self, status: &str) -> Result<Vec<OutboxRow>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {OUTBOX_COLS} FROM outbox WHERE status = ?1 ORDER BY id"
        ))?;
        let rows = stmt.query_map([status], outbox_from)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Every outbox row, in order (tests, export).
    pub fn all_outbox(&self) -> Result<Vec<OutboxRow>> {
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT {OUTBOX_COLS} FROM outbox ORDER BY id"))?;
        let rows = stmt.query_map([], outbox_from)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Sets an outbox row's status (and `pushed_at`/`last_error` when given).
    pub fn set_outbox_status(
        &self,
        decision_id: &str,
        status: &str,
        pushed_at: Option<&str>,
        last_error: Option<&str>,
    ) -> Result<()> {
        self.exec(
            "UPDATE outbox SET status = ?2, pushed_at = COALESCE(?3, pushed_at),
               last_error = COALESCE(?4, last_error), attempts = attempts + CASE WHEN ?2 IN ('pushed','conflict','failed') THEN 1 ELSE 0 END
             WHERE decision_id = ?1",
            params![decision_id, status, pushed_at, last_error],
        )?;
        Ok(())
    }

    /// One more failed attempt for an outbox row (it stays pending).
    pub fn record_outbox_attempt(&self, decision_id: &str, error: &str) -> Result<()> {
        self.exec(
            "UPDATE outbox SET attempts = attempts + 1, last_error = ?2 WHERE decision_id = ?1",
            params![decision_id, error],
        )?;
        Ok(())
    }

    // ---- conflicts ---------------------------------------------------------------

    pub fn insert_conflict(
        &self,
        tx_id: &str,
        decision_id: &str,
        seen: &str,
        decided: &str,
        remote: &str,
        created_at: &str,
    ) -> Result<()> {
        self.exec(
            "INSERT INTO conflicts (transaction_id, decision_id, seen, decided, remote, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![tx_id, decision_id, seen, decided, remote, created_at],
        )?;
        Ok(())
    }

    /// Marks the open conflicts of a transaction resolved.
    pub fn resolve_conflicts(&self, tx_id: &str, at: &str) -> Result<()> {
        self.exec(
            "UPDATE conflicts SET resolved_at = ?2 WHERE transaction_id = ?1 AND resolved_at IS NULL",
            params![tx_id, at],
        )?;
        Ok(())
    }

    // ---- read models ----------------------------------------------------------------

    /// The exception queue: flags in the review window by score (highest first),
    /// optionally only those whose status is `state`.
    pub fn queue(&self, state: Option<&str>, limit: usize) -> Result<Vec<QueueRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT f.transaction_id, f.partner_id, f.score, f.confidence, f.kinds, f.reasons,
                    f.amount_minor, f.at_stake_minor, f.status, t.amount, t.currency,
                    p.action, p.current_amount, p.proposed_amount, p.delta,
                    c.decided_amount, c.proposer, p.currency
             FROM flags f
             LEFT JOIN transactions t ON t.transaction_id = f.transaction_id
             LEFT JOIN proposals p ON p.transaction_id = f.transaction_id
             LEFT JOIN cases c ON c.transaction_id = f.transaction_id
             WHERE f.in_window = 1 AND (?1 IS NULL OR f.status = ?1)
             ORDER BY f.score DESC, f.transaction_id
             LIMIT ?2",
        )?;
        let lim = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt.query_map(params![state, lim], |r| {
            let tx_currency: Option<String> = r.get(10)?;
            let p_currency: Option<String> = r.get(17)?;
            Ok(QueueRow {
                transaction_id: r.get(0)?,
                partner_id: r.get(1)?,
                score: r.get(2)?,
                confidence: r.get(3)?,
                kinds: r.get(4)?,
                reasons: r.get(5)?,
                amount_minor: r.get(6)?,
                at_stake_minor: r.get(7)?,
                status: r.get(8)?,
                amount: r.get(9)?,
                currency: tx_currency.or(p_currency),
                proposal_action: r.get(11)?,
                current_amount: r.get(12)?,
                proposed_amount: r.get(13)?,
                delta: r.get(14)?,
                decided_amount: r.get(15)?,
                proposer: r.get(16)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Adjustments whose decision stands (queued for push, pushed, or signed off),
    /// with their transaction, partner and the decision that queued them.
    pub fn journal_rows(&self, states: &[&str]) -> Result<Vec<JournalRow>> {
        let mut out = Vec::new();
        let mut stmt = self.conn.prepare_cached(
            "SELECT c.transaction_id, t.partner_id, pa.name, t.closed_on, t.currency, c.state,
                    p.current_amount, c.decided_amount, p.action,
                    (SELECT d.decision_id FROM decisions d WHERE d.transaction_id = c.transaction_id
                       AND d.to_state = 'queued_for_push' ORDER BY d.rowid DESC LIMIT 1) AS qd
             FROM cases c
             JOIN transactions t ON t.transaction_id = c.transaction_id
             LEFT JOIN partners pa ON pa.partner_id = t.partner_id
             LEFT JOIN proposals p ON p.transaction_id = c.transaction_id
             WHERE c.state = ?1
             ORDER BY t.partner_id, c.transaction_id",
        )?;
        for s in states {
            let rows = stmt.query_map([s], |r| {
                Ok(JournalRow {
                    transaction_id: r.get(0)?,
                    partner_id: r.get(1)?,
                    partner_name: r.get(2)?,
                    closed_on: r.get(3)?,
                    currency: r.get(4)?,
                    state: r.get(5)?,
                    current_amount: r.get(6)?,
                    decided_amount: r.get(7)?,
                    proposal_action: r.get(8)?,
                    decision_id: r.get(9)?,
                    decision_action: None,
                    decision_reason: None,
                    audit_seq: None,
                    decided_at: None,
                })
            })?;
            for row in rows {
                let mut row = row?;
                if let Some(did) = &row.decision_id {
                    if let Some(d) = self.get_decision(did)? {
                        row.decision_action = Some(d.action);
                        row.decision_reason = Some(d.reason);
                        row.decided_at = Some(d.created_at);
                    }
                    row.audit_seq = self.audit_seq_of_decision(did)?;
                }
                out.push(row);
            }
        }
        out.sort_by(|a, b| {
            (&a.partner_id, &a.transaction_id).cmp(&(&b.partner_id, &b.transaction_id))
        });
        Ok(out)
    }
}

/// Test support: writes the input tables the detection and import engineers fill for
/// real, so workflow tests can run on a handful of rows. Not for product code paths.
pub mod test_support {
    use super::*;

    /// A transaction row (only the columns the workflow reads are meaningful).
    #[allow(clippy::too_many_arguments)]
    pub fn insert_transaction(
        store: &Store,
        tx_id: &str,
        partner_id: &str,
        amount: &str,
        currency: &str,
        closed_on: &str,
        row_hash: &str,
    ) -> Result<()> {
        store.conn.execute(
            "INSERT INTO transactions (transaction_id, kind, partner_id, customer_name, sku, quantity,
               unit_list_price, unit_net_price, amount, amount_minor, currency, closed_on, submitted_at,
               invoice_number, row_hash, record_version, updated_at)
             VALUES (?1, 'sale', ?2, 'Customer', 'SKU-1', 1, ?3, ?3, ?3, 0, ?4, ?5, ?5 || 'T00:00:00Z',
               'INV-' || ?1, ?6, 1, ?5 || 'T00:00:00Z')",
            params![tx_id, partner_id, amount, currency, closed_on, row_hash],
        )?;
        Ok(())
    }

    /// A partner row.
    pub fn insert_partner(store: &Store, partner_id: &str, high_value: bool) -> Result<()> {
        store.conn.execute(
            "INSERT INTO partners (partner_id, name, kind, region, joined_on, certifications, high_value)
             VALUES (?1, 'Partner ' || ?1, 'reseller', 'NA', '2020-01-01', '[]', ?2)",
            params![partner_id, high_value as i64],
        )?;
        Ok(())
    }

    /// A flag in the review window.
    pub fn insert_flag(
        store: &Store,
        tx_id: &str,
        partner_id: &str,
        score: f64,
        kinds: &[&str],
        row_hash: &str,
    ) -> Result<()> {
        let kinds = serde_json::to_string(kinds).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        store.conn.execute(
            "INSERT INTO flags (transaction_id, score, confidence, kinds, reasons, detector_version,
               row_hash, scored_at, in_window, amount_minor, at_stake_minor, partner_id, status)
             VALUES (?1, ?2, 0.8, ?3, '[\"a reason\"]', 'test-1', ?4, '2026-09-30T00:00:00Z', 1, 100000, 5000, ?5, 'flagged')",
            params![tx_id, score, kinds, row_hash, partner_id],
        )?;
        Ok(())
    }

    /// A proposal: `current` -> `proposed`.
    pub fn insert_proposal(
        store: &Store,
        tx_id: &str,
        action: &str,
        current: &str,
        proposed: &str,
        delta: &str,
        currency: &str,
    ) -> Result<()> {
        store.conn.execute(
            "INSERT INTO proposals (transaction_id, action, current_amount, proposed_amount, delta,
               currency, rationale, detector_version, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'test rationale', 'test-1', '2026-09-30T00:00:00Z')
             ON CONFLICT(transaction_id) DO UPDATE SET action = excluded.action,
               current_amount = excluded.current_amount, proposed_amount = excluded.proposed_amount,
               delta = excluded.delta",
            params![tx_id, action, current, proposed, delta, currency],
        )?;
        Ok(())
    }

    /// A program row (for the fiscal calendar).
    pub fn insert_program(store: &Store, currency: &str, fiscal_start_month: u32) -> Result<()> {
        store.conn.execute(
            "INSERT INTO program (id, program_id, name, currency, fiscal_year_start_month, as_of, review_start, review_end)
             VALUES (1, 'P', 'Program', ?1, ?2, '2026-09-30', '2026-07-01', '2026-09-30')",
            params![currency, fiscal_start_month],
        )?;
        Ok(())
    }

    /// Runs arbitrary SQL (tamper tests: edit, delete, reorder audit rows).
    pub fn exec(store: &Store, sql: &str) -> Result<usize> {
        Ok(store.conn.execute(sql, [])?)
    }

    /// Simulates a PRM change to a transaction (new row hash and record version).
    pub fn change_transaction(store: &Store, tx_id: &str, new_hash: &str) -> Result<()> {
        store.conn.execute(
            "UPDATE transactions SET row_hash = ?2, record_version = record_version + 1 WHERE transaction_id = ?1",
            params![tx_id, new_hash],
        )?;
        Ok(())
    }
}
