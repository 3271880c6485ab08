//! Store: flags and proposals written by the detector (`tierdesk score` on the cache).

use std::collections::HashMap;

use rusqlite::{params, OptionalExtension};

use super::{Result, Store};

/// One scored transaction as stored in `flags`.
#[derive(Debug, Clone, PartialEq)]
pub struct FlagRow {
    pub transaction_id: String,
    pub score: f64,
    pub confidence: f64,
    /// JSON array of kind names.
    pub kinds: String,
    /// JSON array of sentences.
    pub reasons: String,
    /// JSON object of evidence figures.
    pub evidence: String,
    pub detector_version: String,
    pub row_hash: String,
    pub scored_at: String,
    pub in_window: bool,
    pub amount_minor: i64,
    pub at_stake_minor: i64,
    pub partner_id: String,
}

/// The scoring result stored in one `flags` row (see [`Store::flag_results`]).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredResult {
    pub row_hash: String,
    pub detector_version: String,
    pub score: f64,
    pub confidence: f64,
    pub kinds: String,
    pub reasons: String,
    pub evidence: String,
}

/// One proposed accrual adjustment as stored in `proposals` (money as decimal strings).
#[derive(Debug, Clone, PartialEq)]
pub struct ProposalRow {
    pub transaction_id: String,
    pub action: String,
    pub current_amount: String,
    pub proposed_amount: String,
    pub delta: String,
    pub currency: String,
    pub rationale: String,
    pub detector_version: String,
    pub created_at: String,
}

impl Store {
    /// `transaction_id -> (row_hash, detector_version)` of every stored flag.
    pub fn flag_hashes(&self) -> Result<HashMap<String, (String, String)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT transaction_id, row_hash, detector_version FROM flags")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))?;
        let mut out = HashMap::new();
        for row in rows {
            let (k, v): (String, (String, String)) = row?;
            out.insert(k, v);
        }
        Ok(out)
    }

    /// What every stored flag says (for the incremental rescore: a flag is rewritten
    /// when its row, the detector version or the result computed from current baselines
    /// differs from this).
    pub fn flag_results(&self) -> Result<HashMap<String, StoredResult>> {
        let mut stmt = self.conn.prepare(
            "SELECT transaction_id, row_hash, detector_version, score, confidence, kinds, reasons,
                    evidence FROM flags",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                StoredResult {
                    row_hash: r.get(1)?,
                    detector_version: r.get(2)?,
                    score: r.get(3)?,
                    confidence: r.get(4)?,
                    kinds: r.get(5)?,
                    reasons: r.get(6)?,
                    evidence: r.get(7)?,
                },
            ))
        })?;
        let mut out = HashMap::new();
        for row in rows {
            let (k, v) = row?;
            out.insert(k, v);
        }
        Ok(out)
    }

    /// `transaction_id -> (action, proposed_amount, rationale)` of every stored proposal.
    pub fn proposal_digests(&self) -> Result<HashMap<String, (String, String, String)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT transaction_id, action, proposed_amount, rationale FROM proposals")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?, r.get(3)?))))?;
        let mut out = HashMap::new();
        for row in rows {
            let (k, v): (String, (String, String, String)) = row?;
            out.insert(k, v);
        }
        Ok(out)
    }

    /// `transaction_id -> row_hash` of every cached transaction.
    pub fn transaction_row_hashes(&self) -> Result<HashMap<String, String>> {
        let mut stmt = self
            .conn
            .prepare("SELECT transaction_id, row_hash FROM transactions")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        let mut out = HashMap::new();
        for row in rows {
            let (k, v): (String, String) = row?;
            out.insert(k, v);
        }
        Ok(out)
    }

    /// Writes flags and replaces proposals in one transaction. A new flag gets status
    /// `flagged`; an existing flag keeps the status the workflow gave it. Transactions in
    /// `clear_proposals` lose any stale proposal.
    pub fn write_flags(
        &mut self,
        flags: &[FlagRow],
        proposals: &[ProposalRow],
        clear_proposals: &[String],
    ) -> Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut up = tx.prepare_cached(
                "INSERT INTO flags (transaction_id, score, confidence, kinds, reasons, evidence,
                    detector_version, source, row_hash, scored_at, in_window, amount_minor,
                    at_stake_minor, partner_id, status)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'local', ?8, ?9, ?10, ?11, ?12, ?13, 'flagged')
                 ON CONFLICT(transaction_id) DO UPDATE SET
                    score = excluded.score, confidence = excluded.confidence,
                    kinds = excluded.kinds, reasons = excluded.reasons,
                    evidence = excluded.evidence, detector_version = excluded.detector_version,
                    source = excluded.source, row_hash = excluded.row_hash,
                    scored_at = excluded.scored_at, in_window = excluded.in_window,
                    amount_minor = excluded.amount_minor,
                    at_stake_minor = excluded.at_stake_minor,
                    partner_id = excluded.partner_id",
            )?;
            for f in flags {
                up.execute(params![
                    f.transaction_id,
                    f.score,
                    f.confidence,
                    f.kinds,
                    f.reasons,
                    f.evidence,
                    f.detector_version,
                    f.row_hash,
                    f.scored_at,
                    f.in_window as i64,
                    f.amount_minor,
                    f.at_stake_minor,
                    f.partner_id,
                ])?;
            }
            let mut del = tx.prepare_cached("DELETE FROM proposals WHERE transaction_id = ?1")?;
            for id in clear_proposals {
                del.execute(params![id])?;
            }
            let mut ins = tx.prepare_cached(
                "INSERT INTO proposals (transaction_id, action, current_amount, proposed_amount,
                    delta, currency, rationale, detector_version, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT(transaction_id) DO UPDATE SET
                    action = excluded.action, current_amount = excluded.current_amount,
                    proposed_amount = excluded.proposed_amount, delta = excluded.delta,
                    currency = excluded.currency, rationale = excluded.rationale,
                    detector_version = excluded.detector_version,
                    created_at = excluded.created_at",
            )?;
            for p in proposals {
                ins.execute(params![
                    p.transaction_id,
                    p.action,
                    p.current_amount,
                    p.proposed_amount,
                    p.delta,
                    p.currency,
                    p.rationale,
                    p.detector_version,
                    p.created_at,
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// The stored flag of one transaction.
    pub fn flag(&self, transaction_id: &str) -> Result<Option<FlagRow>> {
        Ok(self
            .conn
            .query_row(
                "SELECT transaction_id, score, confidence, kinds, reasons, evidence,
                    detector_version, row_hash, scored_at, in_window, amount_minor,
                    at_stake_minor, partner_id
                 FROM flags WHERE transaction_id = ?1",
                params![transaction_id],
                |r| {
                    Ok(FlagRow {
                        transaction_id: r.get(0)?,
                        score: r.get(1)?,
                        confidence: r.get(2)?,
                        kinds: r.get(3)?,
                        reasons: r.get(4)?,
                        evidence: r.get(5)?,
                        detector_version: r.get(6)?,
                        row_hash: r.get(7)?,
                        scored_at: r.get(8)?,
                        in_window: r.get::<_, i64>(9)? != 0,
                        amount_minor: r.get(10)?,
                        at_stake_minor: r.get(11)?,
                        partner_id: r.get(12)?,
                    })
                },
            )
            .optional()?)
    }

    /// The stored proposal of one transaction.
    pub fn proposal(&self, transaction_id: &str) -> Result<Option<ProposalRow>> {
        Ok(self
            .conn
            .query_row(
                "SELECT transaction_id, action, current_amount, proposed_amount, delta, currency,
                    rationale, detector_version, created_at
                 FROM proposals WHERE transaction_id = ?1",
                params![transaction_id],
                |r| {
                    Ok(ProposalRow {
                        transaction_id: r.get(0)?,
                        action: r.get(1)?,
                        current_amount: r.get(2)?,
                        proposed_amount: r.get(3)?,
                        delta: r.get(4)?,
                        currency: r.get(5)?,
                        rationale: r.get(6)?,
                        detector_version: r.get(7)?,
                        created_at: r.get(8)?,
                    })
                },
            )
            .optional()?)
    }
}
