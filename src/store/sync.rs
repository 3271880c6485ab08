//! Store: sync. Cursors, sync state, pulled rows (written with their cursor in one
//! transaction), quarantine of malformed PRM items, remote flags, the outbox as the
//! pusher sees it, and conflicts.

use std::collections::BTreeMap;

use chrono::{NaiveDate, Utc};
use rusqlite::{params, OptionalExtension};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::{Result, Store};
use crate::model::{CommissionLine, Partner, Registration, Transaction};

/// An AI flag computed on the PRM side.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteFlag {
    pub flag_id: String,
    pub transaction_id: String,
    pub kind: String,
    pub score: f64,
    pub reason: String,
    pub updated_at: String,
}

/// One item pulled from the PRM, already mapped to domain types (or rejected).
#[derive(Debug, Clone)]
pub enum Pulled {
    /// A partner and its current tier `(tier_id, since)` when the PRM says.
    Partner(Box<Partner>, Option<(String, NaiveDate)>),
    Registration(Registration),
    /// A transaction and the PRM's record version.
    Transaction(Box<Transaction>, i64),
    Commission(CommissionLine),
    Flag(RemoteFlag),
    /// A malformed item: kept with its raw payload, never dropped.
    Bad {
        raw: String,
        error: String,
    },
}

/// One page (or several) of one resource, and the cursor after it.
#[derive(Debug, Clone)]
pub struct PageWrite {
    pub resource: String,
    pub items: Vec<Pulled>,
    pub cursor: String,
}

/// What a batch changed.
#[derive(Debug, Clone, Default)]
pub struct ApplyStats {
    pub rows: u64,
    pub quarantined: u64,
    /// Transactions inserted or changed (to be scored).
    pub changed_transactions: Vec<String>,
}

/// An outbox entry waiting to be pushed.
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
}

/// A conflict row (three versions of one record).
#[derive(Debug, Clone, PartialEq)]
pub struct ConflictRow {
    pub id: i64,
    pub transaction_id: String,
    pub decision_id: String,
    pub seen: String,
    pub decided: String,
    pub remote: String,
    pub created_at: String,
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

pub use super::dataset::transaction_hash;

impl Store {
    /// The saved cursor of a resource.
    pub fn sync_cursor(&self, resource: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row(
                "SELECT cursor FROM sync_cursors WHERE resource = ?1",
                [resource],
                |r| r.get::<_, Option<String>>(0),
            )
            .optional()?
            .flatten())
    }

    /// Writes pages and their cursors in ONE transaction: after a crash either the rows
    /// and the cursor are both there, or neither is.
    pub fn sync_apply(&mut self, pages: &[PageWrite]) -> Result<ApplyStats> {
        let at = now();
        let tx = self.conn.transaction()?;
        let mut stats = ApplyStats::default();
        {
            let mut up_tx = tx.prepare_cached(
                "INSERT INTO transactions (transaction_id, kind, original_transaction_id, partner_id,
                    registration_id, customer_name, sku, quantity, unit_list_price, unit_net_price,
                    amount, amount_minor, currency, closed_on, submitted_at, invoice_number, notes,
                    row_hash, record_version, updated_at)
                 VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19,?20)
                 ON CONFLICT(transaction_id) DO UPDATE SET kind=excluded.kind,
                    original_transaction_id=excluded.original_transaction_id,
                    partner_id=excluded.partner_id, registration_id=excluded.registration_id,
                    customer_name=excluded.customer_name, sku=excluded.sku,
                    quantity=excluded.quantity, unit_list_price=excluded.unit_list_price,
                    unit_net_price=excluded.unit_net_price, amount=excluded.amount,
                    amount_minor=excluded.amount_minor, currency=excluded.currency,
                    closed_on=excluded.closed_on, submitted_at=excluded.submitted_at,
                    invoice_number=excluded.invoice_number, notes=excluded.notes,
                    row_hash=excluded.row_hash, record_version=excluded.record_version,
                    updated_at=excluded.updated_at
                 WHERE transactions.row_hash <> excluded.row_hash
                    OR transactions.record_version <> excluded.record_version",
            )?;
            let mut up_partner = tx.prepare_cached(
                "INSERT INTO partners (partner_id, name, kind, parent_partner_id, region, country,
                    joined_on, certifications, tax_id, bank_account)
                 VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)
                 ON CONFLICT(partner_id) DO UPDATE SET name=excluded.name, kind=excluded.kind,
                    parent_partner_id=excluded.parent_partner_id, region=excluded.region,
                    country=excluded.country, joined_on=excluded.joined_on,
                    certifications=excluded.certifications, tax_id=excluded.tax_id,
                    bank_account=excluded.bank_account",
            )?;
            let mut up_tier = tx.prepare_cached(
                "INSERT INTO tier_history (partner_id, tier_id, effective_from) VALUES (?1,?2,?3)
                 ON CONFLICT(partner_id, effective_from) DO UPDATE SET tier_id=excluded.tier_id",
            )?;
            let mut up_reg = tx.prepare_cached(
                "INSERT INTO registrations (registration_id, partner_id, customer_name,
                    expected_amount, registered_on, expires_on, status)
                 VALUES (?1,?2,?3,?4,?5,?6,?7)
                 ON CONFLICT(registration_id) DO UPDATE SET partner_id=excluded.partner_id,
                    customer_name=excluded.customer_name, expected_amount=excluded.expected_amount,
                    registered_on=excluded.registered_on, expires_on=excluded.expires_on,
                    status=excluded.status",
            )?;
            let mut up_comm = tx.prepare_cached(
                "INSERT INTO commissions (commission_id, transaction_id, payee_partner_id, role,
                    amount, period) VALUES (?1,?2,?3,?4,?5,?6)
                 ON CONFLICT(commission_id) DO UPDATE SET transaction_id=excluded.transaction_id,
                    payee_partner_id=excluded.payee_partner_id, role=excluded.role,
                    amount=excluded.amount, period=excluded.period",
            )?;
            let mut up_flag = tx.prepare_cached(
                "INSERT INTO remote_flags (flag_id, transaction_id, kind, score, reason, updated_at)
                 VALUES (?1,?2,?3,?4,?5,?6)
                 ON CONFLICT(flag_id) DO UPDATE SET transaction_id=excluded.transaction_id,
                    kind=excluded.kind, score=excluded.score, reason=excluded.reason,
                    updated_at=excluded.updated_at",
            )?;
            let mut quarantine = tx.prepare_cached(
                "INSERT INTO quarantine (source, line, field, error, raw, received_at)
                 VALUES (?1, NULL, NULL, ?2, ?3, ?4)",
            )?;
            let mut cursor = tx.prepare_cached(
                "INSERT INTO sync_cursors (resource, cursor, updated_at) VALUES (?1,?2,?3)
                 ON CONFLICT(resource) DO UPDATE SET cursor=excluded.cursor, updated_at=excluded.updated_at",
            )?;
            for page in pages {
                for item in &page.items {
                    match item {
                        Pulled::Transaction(t, version) => {
                            let n = up_tx.execute(params![
                                t.transaction_id,
                                t.kind.as_str(),
                                t.original_transaction_id,
                                t.partner_id,
                                t.registration_id,
                                t.customer_name,
                                t.sku,
                                t.quantity,
                                t.unit_list_price.to_string(),
                                t.unit_net_price.to_string(),
                                t.amount.to_string(),
                                crate::money::to_minor(t.amount),
                                t.currency,
                                t.closed_on.to_string(),
                                t.submitted_at
                                    .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
                                t.invoice_number,
                                t.notes,
                                transaction_hash(t),
                                version,
                                at,
                            ])?;
                            if n > 0 {
                                stats.changed_transactions.push(t.transaction_id.clone());
                            }
                        }
                        Pulled::Partner(p, tier) => {
                            up_partner.execute(params![
                                p.partner_id,
                                p.name,
                                p.kind.as_str(),
                                p.parent_partner_id,
                                p.region,
                                p.country,
                                p.joined_on.to_string(),
                                serde_json::to_string(&p.certifications).unwrap_or_default(),
                                p.tax_id,
                                p.bank_account
                                    .as_ref()
                                    .map(|b| serde_json::to_string(b).unwrap_or_default()),
                            ])?;
                            if let Some((t, since)) = tier {
                                up_tier.execute(params![p.partner_id, t, since.to_string()])?;
                            }
                        }
                        Pulled::Registration(r) => {
                            up_reg.execute(params![
                                r.registration_id,
                                r.partner_id,
                                r.customer_name,
                                r.expected_amount.to_string(),
                                r.registered_on.to_string(),
                                r.expires_on.to_string(),
                                r.status.as_str(),
                            ])?;
                        }
                        Pulled::Commission(c) => {
                            up_comm.execute(params![
                                c.commission_id,
                                c.transaction_id,
                                c.payee_partner_id,
                                c.role.as_str(),
                                c.amount.to_string(),
                                c.period,
                            ])?;
                        }
                        Pulled::Flag(f) => {
                            up_flag.execute(params![
                                f.flag_id,
                                f.transaction_id,
                                f.kind,
                                f.score,
                                f.reason,
                                f.updated_at
                            ])?;
                        }
                        Pulled::Bad { raw, error } => {
                            quarantine.execute(params![page.resource, error, raw, at])?;
                            stats.quarantined += 1;
                            continue;
                        }
                    }
                    stats.rows += 1;
                }
                cursor.execute(params![page.resource, page.cursor, at])?;
            }
        }
        tx.commit()?;
        Ok(stats)
    }

    /// Sets sync status keys (online, last_sync, items_pulled, errors, ...).
    pub fn sync_state_set(&self, kv: &[(&str, String)]) -> Result<()> {
        let mut stmt = self.conn.prepare_cached(
            "INSERT INTO sync_state (key, value) VALUES (?1, ?2)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        )?;
        for (k, v) in kv {
            stmt.execute(params![k, v])?;
        }
        Ok(())
    }

    /// All sync status keys.
    pub fn sync_state(&self) -> Result<BTreeMap<String, String>> {
        let mut stmt = self.conn.prepare("SELECT key, value FROM sync_state")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Outbox entries still to push, in order.
    pub fn outbox_pending(&self, limit: usize) -> Result<Vec<OutboxRow>> {
        self.outbox_rows(Some("pending"), limit)
    }

    /// Outbox entries (all statuses when `status` is None), in order.
    pub fn outbox_rows(&self, status: Option<&str>, limit: usize) -> Result<Vec<OutboxRow>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, decision_id, idempotency_key, transaction_id, payload, record_version,
                    audit_head, status, attempts, last_error
             FROM outbox WHERE (?1 IS NULL OR status = ?1) ORDER BY id LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![status, limit as i64], |r| {
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
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Counts of outbox entries by status, open conflicts and quarantined rows.
    pub fn sync_counts(&self) -> Result<BTreeMap<String, i64>> {
        let mut out = BTreeMap::new();
        let mut stmt = self
            .conn
            .prepare("SELECT status, COUNT(*) FROM outbox GROUP BY status")?;
        for row in stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
            let (k, v) = row?;
            out.insert(format!("outbox_{k}"), v);
        }
        let c: i64 = self.conn.query_row(
            "SELECT COUNT(*) FROM conflicts WHERE resolved_at IS NULL",
            [],
            |r| r.get(0),
        )?;
        out.insert("conflicts".into(), c);
        let q: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM quarantine", [], |r| r.get(0))?;
        out.insert("quarantined".into(), q);
        Ok(out)
    }

    /// Open conflicts, oldest first.
    pub fn conflicts(&self) -> Result<Vec<ConflictRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, transaction_id, decision_id, seen, decided, remote, created_at
             FROM conflicts WHERE resolved_at IS NULL ORDER BY id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(ConflictRow {
                id: r.get(0)?,
                transaction_id: r.get(1)?,
                decision_id: r.get(2)?,
                seen: r.get(3)?,
                decided: r.get(4)?,
                remote: r.get(5)?,
                created_at: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The latest audit-chain hash (sent with each push).
    pub fn sync_audit_head(&self) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row(
                "SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// The cached transaction row as JSON (what the reviewer saw), if any.
    pub fn sync_transaction_snapshot(&self, id: &str) -> Result<Option<Value>> {
        Ok(self
            .conn
            .query_row(
                "SELECT transaction_id, partner_id, customer_name, sku, quantity, amount, currency,
                        closed_on, submitted_at, notes, record_version, row_hash
                 FROM transactions WHERE transaction_id = ?1",
                [id],
                |r| {
                    Ok(json!({
                        "transaction_id": r.get::<_, String>(0)?,
                        "partner_id": r.get::<_, String>(1)?,
                        "customer_name": r.get::<_, String>(2)?,
                        "sku": r.get::<_, String>(3)?,
                        "quantity": r.get::<_, i64>(4)?,
                        "amount": r.get::<_, String>(5)?,
                        "currency": r.get::<_, String>(6)?,
                        "closed_on": r.get::<_, String>(7)?,
                        "submitted_at": r.get::<_, String>(8)?,
                        "notes": r.get::<_, Option<String>>(9)?,
                        "record_version": r.get::<_, i64>(10)?,
                        "row_hash": r.get::<_, String>(11)?,
                    }))
                },
            )
            .optional()?)
    }

    /// Adds an outbox entry directly (tools and tests; the workflow writes real ones
    /// together with their decision and audit entry).
    pub fn outbox_enqueue(
        &self,
        decision_id: &str,
        transaction_id: &str,
        payload: &Value,
        record_version: Option<i64>,
        audit_head: Option<&str>,
    ) -> Result<()> {
        self.conn.execute(
            "INSERT INTO outbox (decision_id, idempotency_key, transaction_id, payload,
                                 record_version, audit_head, created_at)
             VALUES (?1, ?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                decision_id,
                transaction_id,
                payload.to_string(),
                record_version,
                audit_head,
                now()
            ],
        )?;
        Ok(())
    }

    /// The record version of a cached transaction.
    pub fn sync_record_version(&self, id: &str) -> Result<Option<i64>> {
        Ok(self
            .conn
            .query_row(
                "SELECT record_version FROM transactions WHERE transaction_id = ?1",
                [id],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// A digest of the pulled tables (for comparing two caches in tests and tools).
    pub fn sync_digest(&self) -> Result<BTreeMap<String, String>> {
        let queries = [
            ("partners", "SELECT partner_id, name, kind, parent_partner_id, region, country, joined_on, certifications, tax_id, bank_account FROM partners ORDER BY partner_id"),
            ("registrations", "SELECT * FROM registrations ORDER BY registration_id"),
            ("transactions", "SELECT transaction_id, row_hash, record_version FROM transactions ORDER BY transaction_id"),
            ("commissions", "SELECT * FROM commissions ORDER BY commission_id"),
            ("remote_flags", "SELECT flag_id, transaction_id, kind, score, reason FROM remote_flags ORDER BY flag_id"),
            ("quarantine", "SELECT source, error, raw FROM quarantine ORDER BY source, raw"),
            ("outbox", "SELECT decision_id, status FROM outbox ORDER BY id"),
        ];
        let mut out = BTreeMap::new();
        for (name, sql) in queries {
            let mut stmt = self.conn.prepare(sql)?;
            let n = stmt.column_count();
            let mut h = Sha256::new();
            let mut rows = stmt.query([])?;
            let mut count = 0u64;
            while let Some(r) = rows.next()? {
                count += 1;
                for i in 0..n {
                    let v: rusqlite::types::Value = r.get(i)?;
                    h.update(format!("{v:?}").as_bytes());
                    h.update([0x1f]);
                }
                h.update([0x1e]);
            }
            out.insert(
                name.to_string(),
                format!("{count}:{}", hex::encode(h.finalize())),
            );
        }
        Ok(out)
    }
}
