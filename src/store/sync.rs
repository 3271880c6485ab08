//! Store: sync. Cursors, sync state, pulled rows (written with their cursor in one
//! transaction), quarantine of malformed PRM items, remote flags, PRM reward statuses,
//! outbox counts and conflicts (the outbox itself is the workflow's: store::workflow).

use std::collections::BTreeMap;

use chrono::{NaiveDate, Utc};
use rusqlite::{params, OptionalExtension};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::dataset::PreparedTransaction;
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

/// Domain fields a PRM did not provide for a record (see `prm::Mapped::missing`). On
/// an existing cached row they keep their cached value (from a data-set import or an
/// earlier source); what nothing provided is kept in `transactions.missing`.
pub type Missing = Vec<&'static str>;

/// One item pulled from the PRM, already mapped to domain types (or rejected).
#[derive(Debug, Clone)]
pub enum Pulled {
    /// A partner, its current tier `(tier_id, since)` when the PRM says, and what the
    /// PRM does not carry.
    Partner(Box<Partner>, Option<(String, NaiveDate)>, Missing),
    Registration(Registration, Missing),
    /// A transaction with the PRM's record version and its text forms (prepared on
    /// the fetching side, so the writer only binds them).
    Transaction(Box<PulledTx>),
    /// A commission line (a PRM reward) and its PRM status when the PRM says.
    Commission(CommissionLine, Option<RewardState>),
    /// A key the PRM refers to records by (PartnerStack partnership and customer keys).
    Key(PrmKey),
    Flag(RemoteFlag),
    /// A malformed item: kept with its raw payload, never dropped.
    Bad {
        raw: String,
        error: String,
    },
}

/// A PRM key that is not a domain record: `partnership` -> partner id, `customer` ->
/// partner id and customer name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrmKey {
    pub kind: &'static str,
    pub key: String,
    pub partner_id: String,
    pub name: Option<String>,
}

/// A processing status to write back on the PRM (see [`Store::prm_status_due`]).
#[derive(Debug, Clone, PartialEq)]
pub struct StatusDue {
    pub transaction_id: String,
    /// `pending_ai_review`, `ai_validated`, `anomaly_flagged` or the workflow state.
    pub status: String,
    pub anomaly_score: Option<Decimal>,
    pub flag_reason: Option<String>,
    pub commission_ids: Vec<String>,
    /// The score as compared with what was written (rounded to 4 places).
    pub score: Option<f64>,
}

/// A pulled transaction with the text forms and row hash the cache stores (the same as an
/// import's), the PRM's record version, and the fields the PRM did not provide.
#[derive(Debug, Clone)]
pub struct PulledTx {
    pub prepared: PreparedTransaction,
    pub version: i64,
    pub missing: Missing,
}

impl PulledTx {
    pub fn new(tx: Transaction, version: i64) -> PulledTx {
        PulledTx::with_missing(tx, version, Vec::new())
    }
    pub fn with_missing(tx: Transaction, version: i64, missing: Missing) -> PulledTx {
        PulledTx {
            prepared: PreparedTransaction::new(tx),
            version,
            missing,
        }
    }
}

/// The fields of a transaction a PRM may not carry, as the cache holds them.
const MERGEABLE_TX: [&str; 6] = [
    "quantity",
    "unit_list_price",
    "unit_net_price",
    "registration_id",
    "invoice_number",
    "closed_on",
];

/// `,a,b,` (for `instr` in SQL) of a missing list.
fn missing_marks(m: &[&str]) -> String {
    let mut s = String::from(",");
    for f in m {
        s.push_str(f);
        s.push(',');
    }
    s
}

/// Fills a pulled transaction's missing fields from the cached row (an import's or an
/// earlier source's values); returns what is still missing.
fn merge_cached_tx(
    tx: &rusqlite::Transaction<'_>,
    pulled: &PulledTx,
) -> rusqlite::Result<Option<(PreparedTransaction, Missing)>> {
    let mut stmt = tx.prepare_cached(
        "SELECT quantity, unit_list_price, unit_net_price, registration_id, invoice_number,
                closed_on, missing FROM transactions WHERE transaction_id = ?1",
    )?;
    let row = stmt
        .query_row([&pulled.prepared.tx.transaction_id], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, Option<String>>(6)?,
            ))
        })
        .optional()?;
    let Some((qty, list, net, reg, inv, closed, cached_missing)) = row else {
        return Ok(None);
    };
    let cached_missing = cached_missing.unwrap_or_default();
    let lacks = |f: &str| cached_missing.split(',').any(|m| m == f);
    let mut t = pulled.prepared.tx.clone();
    let mut still = Vec::new();
    for &f in &pulled.missing {
        if !MERGEABLE_TX.contains(&f) || lacks(f) {
            still.push(f);
            continue;
        }
        let ok = match f {
            "quantity" => {
                t.quantity = qty;
                true
            }
            "unit_list_price" => list.parse().map(|d| t.unit_list_price = d).is_ok(),
            "unit_net_price" => net.parse().map(|d| t.unit_net_price = d).is_ok(),
            "registration_id" => {
                t.registration_id = reg.clone();
                true
            }
            "invoice_number" => {
                t.invoice_number = inv.clone();
                true
            }
            "closed_on" => closed.parse().map(|d| t.closed_on = d).is_ok(),
            _ => false,
        };
        if !ok {
            still.push(f);
        }
    }
    Ok(Some((PreparedTransaction::new(t), still)))
}

/// What a push takes from the cache (see [`Store::push_context`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PushContext {
    pub partner_id: Option<String>,
    pub commission_ids: Vec<String>,
    pub anomaly_score: Option<rust_decimal::Decimal>,
    pub flag_reason: Option<String>,
}

/// A reward's status on the PRM.
#[derive(Debug, Clone, PartialEq)]
pub struct RewardState {
    /// hold | pending | approved | declined | paid (as the PRM says, lower case).
    pub status: String,
    pub decline_reason: Option<String>,
    pub record_version: Option<i64>,
    /// The PRM's updated time of the reward, epoch ms.
    pub remote_updated: Option<i64>,
}

/// A PRM reward (commission object) of a transaction as cached, for the workbench.
#[derive(Debug, Clone, PartialEq)]
pub struct PrmReward {
    pub reward_id: String,
    pub transaction_id: String,
    /// From the cached commission line (None when that line is not in the cache).
    pub payee_partner_id: Option<String>,
    pub role: Option<String>,
    /// Negative for a clawback.
    pub amount: Option<rust_decimal::Decimal>,
    pub status: String,
    pub decline_reason: Option<String>,
    pub record_version: Option<i64>,
    pub remote_updated: Option<i64>,
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

    /// Whether a pulled table has no rows yet (a first pull).
    pub fn sync_table_empty(&self, table: &str) -> Result<bool> {
        const PULLED: [&str; 5] = [
            "transactions",
            "commissions",
            "partners",
            "registrations",
            "remote_flags",
        ];
        if !PULLED.contains(&table) {
            return Err(super::StoreError::Corrupt(format!(
                "{table} is not a pulled table"
            )));
        }
        Ok(self.conn.query_row(
            &format!("SELECT NOT EXISTS (SELECT 1 FROM {table})"),
            [],
            |r| r.get(0),
        )?)
    }

    /// Sets this connection's page cache to `kib` KiB; returns the previous size (KiB)
    /// so a bulk pull can put it back.
    pub fn sync_bulk_cache(&self, kib: i64) -> Result<i64> {
        let old: i64 = self.conn.query_row("PRAGMA cache_size", [], |r| r.get(0))?;
        // A positive cache_size counts pages; normalise to KiB.
        let old_kib = if old < 0 {
            -old
        } else {
            let page: i64 = self.conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
            old * page / 1024
        };
        self.conn
            .execute_batch(&format!("PRAGMA cache_size = -{}", kib.max(1)))?;
        Ok(old_kib)
    }

    /// Writes pages and their cursors in ONE transaction: after a crash either the rows
    /// and the cursor are both there, or neither is.
    pub fn sync_apply(&mut self, pages: &[PageWrite]) -> Result<ApplyStats> {
        let at = now();
        // Partner tax ids and bank details are sealed (masked without a key).
        let sensitive = pages.iter().any(|pg| {
            pg.items.iter().any(|i| {
                matches!(i, Pulled::Partner(p, _, _) if p.tax_id.is_some() || p.bank_account.is_some())
            })
        });
        let key = if sensitive {
            self.cache_key().ok().cloned()
        } else {
            None
        };
        let tx = self.conn.transaction()?;
        let mut stats = ApplyStats::default();
        {
            let mut up_tx = tx.prepare_cached(
                "INSERT INTO transactions (transaction_id, kind, original_transaction_id, partner_id,
                    registration_id, customer_name, sku, quantity, unit_list_price, unit_net_price,
                    amount, amount_minor, currency, closed_on, submitted_at, invoice_number, notes,
                    row_hash, record_version, updated_at, missing)
                 VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19,?20,?21)
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
                    updated_at=excluded.updated_at, missing=excluded.missing
                 WHERE transactions.row_hash <> excluded.row_hash
                    OR transactions.record_version <> excluded.record_version
                    OR transactions.missing IS NOT excluded.missing",
            )?;
            // What the PRM does not carry (?11, `,field,` marks) keeps the cached value;
            // tax ids and bank details come from imports only and are never blanked.
            let mut up_partner = tx.prepare_cached(
                "INSERT INTO partners (partner_id, name, kind, parent_partner_id, region, country,
                    joined_on, certifications, tax_id, bank_account)
                 VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)
                 ON CONFLICT(partner_id) DO UPDATE SET name=excluded.name,
                    kind=CASE WHEN instr(?11, ',kind,') > 0 THEN partners.kind ELSE excluded.kind END,
                    parent_partner_id=CASE WHEN instr(?11, ',parent_partner_id,') > 0
                        THEN partners.parent_partner_id ELSE excluded.parent_partner_id END,
                    region=CASE WHEN instr(?11, ',region,') > 0 THEN partners.region ELSE excluded.region END,
                    country=CASE WHEN instr(?11, ',country,') > 0 THEN partners.country ELSE excluded.country END,
                    joined_on=excluded.joined_on,
                    certifications=CASE WHEN instr(?11, ',certifications,') > 0
                        THEN partners.certifications ELSE excluded.certifications END,
                    tax_id=COALESCE(excluded.tax_id, partners.tax_id),
                    bank_account=COALESCE(excluded.bank_account, partners.bank_account)
                 WHERE partners.name IS NOT excluded.name
                    OR partners.joined_on IS NOT excluded.joined_on
                    OR (instr(?11, ',kind,') = 0 AND partners.kind IS NOT excluded.kind)
                    OR (instr(?11, ',parent_partner_id,') = 0
                        AND partners.parent_partner_id IS NOT excluded.parent_partner_id)
                    OR (instr(?11, ',region,') = 0 AND partners.region IS NOT excluded.region)
                    OR (instr(?11, ',country,') = 0 AND partners.country IS NOT excluded.country)
                    OR (instr(?11, ',certifications,') = 0
                        AND partners.certifications IS NOT excluded.certifications)
                    OR (excluded.tax_id IS NOT NULL AND partners.tax_id IS NOT excluded.tax_id)
                    OR (excluded.bank_account IS NOT NULL
                        AND partners.bank_account IS NOT excluded.bank_account)",
            )?;
            // A PRM that keeps only the current tier: a new history row only when the
            // tier differs from the latest one cached (?4 = 1).
            let mut up_tier = tx.prepare_cached(
                "INSERT INTO tier_history (partner_id, tier_id, effective_from)
                 SELECT ?1, ?2, ?3
                  WHERE ?4 = 0 OR (SELECT tier_id FROM tier_history WHERE partner_id = ?1
                                   ORDER BY effective_from DESC LIMIT 1) IS NOT ?2
                 ON CONFLICT(partner_id, effective_from) DO UPDATE SET tier_id=excluded.tier_id
                   WHERE tier_history.tier_id IS NOT excluded.tier_id",
            )?;
            let mut up_reg = tx.prepare_cached(
                "INSERT INTO registrations (registration_id, partner_id, customer_name,
                    expected_amount, registered_on, expires_on, status)
                 VALUES (?1,?2,?3,?4,?5,?6,?7)
                 ON CONFLICT(registration_id) DO UPDATE SET partner_id=excluded.partner_id,
                    customer_name=excluded.customer_name,
                    expected_amount=CASE WHEN instr(?8, ',expected_amount,') > 0
                        THEN registrations.expected_amount ELSE excluded.expected_amount END,
                    registered_on=excluded.registered_on,
                    expires_on=CASE WHEN instr(?8, ',expires_on,') > 0
                        THEN registrations.expires_on ELSE excluded.expires_on END,
                    status=excluded.status
                 WHERE registrations.partner_id IS NOT excluded.partner_id
                    OR registrations.customer_name IS NOT excluded.customer_name
                    OR registrations.registered_on IS NOT excluded.registered_on
                    OR registrations.status IS NOT excluded.status
                    OR (instr(?8, ',expected_amount,') = 0
                        AND registrations.expected_amount IS NOT excluded.expected_amount)
                    OR (instr(?8, ',expires_on,') = 0
                        AND registrations.expires_on IS NOT excluded.expires_on)",
            )?;
            let mut up_key = tx.prepare_cached(
                "INSERT INTO prm_keys (kind, key, partner_id, name) VALUES (?1,?2,?3,?4)
                 ON CONFLICT(kind, key) DO UPDATE SET partner_id=excluded.partner_id,
                    name=excluded.name
                 WHERE prm_keys.partner_id IS NOT excluded.partner_id
                    OR prm_keys.name IS NOT excluded.name",
            )?;
            let mut up_comm = tx.prepare_cached(
                "INSERT INTO commissions (commission_id, transaction_id, payee_partner_id, role,
                    amount, period) VALUES (?1,?2,?3,?4,?5,?6)
                 ON CONFLICT(commission_id) DO UPDATE SET transaction_id=excluded.transaction_id,
                    payee_partner_id=excluded.payee_partner_id, role=excluded.role,
                    amount=excluded.amount, period=excluded.period
                 WHERE commissions.transaction_id IS NOT excluded.transaction_id
                    OR commissions.payee_partner_id IS NOT excluded.payee_partner_id
                    OR commissions.role IS NOT excluded.role
                    OR commissions.amount IS NOT excluded.amount
                    OR commissions.period IS NOT excluded.period",
            )?;
            let mut up_reward = tx.prepare_cached(
                "INSERT INTO prm_rewards (reward_id, transaction_id, status, decline_reason,
                    record_version, remote_updated, pulled_at) VALUES (?1,?2,?3,?4,?5,?6,?7)
                 ON CONFLICT(reward_id) DO UPDATE SET transaction_id=excluded.transaction_id,
                    status=excluded.status, decline_reason=excluded.decline_reason,
                    record_version=excluded.record_version,
                    remote_updated=excluded.remote_updated, pulled_at=excluded.pulled_at
                 WHERE prm_rewards.transaction_id IS NOT excluded.transaction_id
                    OR prm_rewards.status IS NOT excluded.status
                    OR prm_rewards.decline_reason IS NOT excluded.decline_reason
                    OR prm_rewards.record_version IS NOT excluded.record_version
                    OR prm_rewards.remote_updated IS NOT excluded.remote_updated",
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
            // A row that breaks a data rule is kept (the PRM is the source of truth) and
            // its issue recorded, so the scorer flags it `data_integrity`.
            let program_currency: Option<String> = tx
                .query_row("SELECT currency FROM program WHERE id = 1", [], |r| {
                    r.get(0)
                })
                .optional()?;
            let mut put_issue = tx.prepare_cached(
                "INSERT OR REPLACE INTO integrity_issues (transaction_id, field, reason, source, found_at)
                 VALUES (?1, ?2, ?3, 'prm', ?4)",
            )?;
            let mut clear_issue =
                tx.prepare_cached("DELETE FROM integrity_issues WHERE transaction_id = ?1")?;
            let mut cursor = tx.prepare_cached(
                "INSERT INTO sync_cursors (resource, cursor, updated_at) VALUES (?1,?2,?3)
                 ON CONFLICT(resource) DO UPDATE SET cursor=excluded.cursor, updated_at=excluded.updated_at",
            )?;
            for page in pages {
                for item in &page.items {
                    match item {
                        Pulled::Transaction(pulled) => {
                            let merged = if pulled.missing.is_empty() {
                                None
                            } else {
                                merge_cached_tx(&tx, pulled)?
                            };
                            let (p, still) = match &merged {
                                Some((p, still)) => (p, still.as_slice()),
                                None => (&pulled.prepared, pulled.missing.as_slice()),
                            };
                            let missing = (!still.is_empty()).then(|| still.join(","));
                            let t = &p.tx;
                            let n = up_tx.execute(params![
                                t.transaction_id,
                                t.kind.as_str(),
                                t.original_transaction_id,
                                t.partner_id,
                                t.registration_id,
                                t.customer_name,
                                t.sku,
                                t.quantity,
                                p.unit_list_price,
                                p.unit_net_price,
                                p.amount,
                                p.amount_minor,
                                t.currency,
                                p.closed_on,
                                p.submitted_at,
                                t.invoice_number,
                                t.notes,
                                p.row_hash,
                                pulled.version,
                                at,
                                missing,
                            ])?;
                            if n > 0 {
                                stats.changed_transactions.push(t.transaction_id.clone());
                            } else {
                                continue;
                            }
                            let still: Vec<&str> = still.iter().map(|m| m.as_ref()).collect();
                            match crate::import::integrity::check_pulled_transaction(
                                t,
                                program_currency.as_deref(),
                                &still,
                            ) {
                                Some(issue) => {
                                    put_issue.execute(params![
                                        t.transaction_id,
                                        issue.field,
                                        issue.message,
                                        at
                                    ])?;
                                }
                                None => {
                                    clear_issue.execute([&t.transaction_id])?;
                                }
                            }
                        }
                        Pulled::Partner(p, tier, missing) => {
                            let marks = missing_marks(missing);
                            let mut n = up_partner.execute(params![
                                p.partner_id,
                                p.name,
                                p.kind.as_str(),
                                p.parent_partner_id,
                                p.region,
                                p.country,
                                p.joined_on.to_string(),
                                serde_json::to_string(&p.certifications).unwrap_or_default(),
                                p.tax_id.as_deref().map(|t| super::dataset::sealed(
                                    key.as_ref(),
                                    "tax_id",
                                    t
                                )),
                                p.bank_account
                                    .as_ref()
                                    .map(|b| super::dataset::sealed_bank(key.as_ref(), b)),
                                marks,
                            ])?;
                            if let Some((t, since)) = tier {
                                let current_only = missing.contains(&"tier_since");
                                n += up_tier.execute(params![
                                    p.partner_id,
                                    t,
                                    since.to_string(),
                                    current_only as i64
                                ])?;
                            }
                            if n == 0 {
                                continue; // unchanged
                            }
                        }
                        Pulled::Registration(r, missing) => {
                            let n = up_reg.execute(params![
                                r.registration_id,
                                r.partner_id,
                                r.customer_name,
                                r.expected_amount.to_string(),
                                r.registered_on.to_string(),
                                r.expires_on.to_string(),
                                r.status.as_str(),
                                missing_marks(missing),
                            ])?;
                            if n == 0 {
                                continue; // unchanged
                            }
                        }
                        Pulled::Commission(c, state) => {
                            let mut n = up_comm.execute(params![
                                c.commission_id,
                                c.transaction_id,
                                c.payee_partner_id,
                                c.role.as_str(),
                                c.amount.to_string(),
                                c.period,
                            ])?;
                            if let Some(st) = state {
                                n += up_reward.execute(params![
                                    c.commission_id,
                                    c.transaction_id,
                                    st.status,
                                    st.decline_reason,
                                    st.record_version,
                                    st.remote_updated,
                                    at,
                                ])?;
                            }
                            if n == 0 {
                                continue; // unchanged (a full pass re-reads everything)
                            }
                        }
                        Pulled::Key(k) => {
                            if up_key.execute(params![k.kind, k.key, k.partner_id, k.name])? == 0 {
                                continue;
                            }
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

    /// The PRM keys cached (partnership and customer keys), for mapping what refers
    /// to them.
    pub fn prm_keys(&self) -> Result<Vec<PrmKey>> {
        let mut stmt = self
            .conn
            .prepare("SELECT kind, key, partner_id, name FROM prm_keys ORDER BY kind, key")?;
        let rows = stmt.query_map([], |r| {
            let kind: String = r.get(0)?;
            Ok(PrmKey {
                kind: if kind == "partnership" {
                    "partnership"
                } else {
                    "customer"
                },
                key: r.get(1)?,
                partner_id: r.get(2)?,
                name: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// What a push needs from the cache besides the decision: the transaction's
    /// partner, its PRM commission records, and its flag's score and first reason.
    pub fn push_context(&self, tx_id: &str) -> Result<PushContext> {
        let partner_id = self
            .conn
            .query_row(
                "SELECT partner_id FROM transactions WHERE transaction_id = ?1",
                [tx_id],
                |r| r.get::<_, String>(0),
            )
            .optional()?;
        let mut stmt = self.conn.prepare_cached(
            "SELECT commission_id FROM commissions WHERE transaction_id = ?1 ORDER BY commission_id",
        )?;
        let commission_ids = stmt
            .query_map([tx_id], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let flag = self
            .conn
            .query_row(
                "SELECT score, reasons FROM flags WHERE transaction_id = ?1",
                [tx_id],
                |r| Ok((r.get::<_, f64>(0)?, r.get::<_, String>(1)?)),
            )
            .optional()?;
        let (score, reason) = match flag {
            Some((s, reasons)) => (
                rust_decimal::Decimal::from_f64_retain(s).map(|d| d.round_dp(4)),
                serde_json::from_str::<Vec<String>>(&reasons)
                    .ok()
                    .and_then(|v| v.into_iter().next()),
            ),
            None => (None, None),
        };
        Ok(PushContext {
            partner_id,
            commission_ids,
            anomaly_score: score,
            flag_reason: reason,
        })
    }

    /// Transactions pulled from the PRM whose processing status (with its anomaly score
    /// and first flag reason) differs from what was last written back, at most `limit`,
    /// with the commission records to write it on.
    pub fn prm_status_due(&self, limit: usize) -> Result<Vec<StatusDue>> {
        // The status as `policy::processing_status` names it, in SQL (a scored row: a
        // flag exists), so only what changed is read.
        let mut st = self.conn.prepare(
            "SELECT transaction_id, status, score, reason FROM (
                SELECT f.transaction_id, round(f.score, 4) AS score,
                    json_extract(f.reasons, '$[0]') AS reason,
                    CASE WHEN c.state IS NOT NULL AND c.state <> 'flagged' THEN c.state
                         WHEN f.kinds IN ('[]', '[\"qa_sample\"]') THEN 'ai_validated'
                         ELSE 'anomaly_flagged' END AS status,
                    w.transaction_id AS w_id, w.status AS w_status, w.score AS w_score,
                    w.reason AS w_reason
                FROM flags f
                JOIN transactions t ON t.transaction_id = f.transaction_id
                LEFT JOIN cases c ON c.transaction_id = f.transaction_id
                LEFT JOIN prm_status_written w ON w.transaction_id = f.transaction_id
                WHERE t.record_version IS NOT NULL)
             WHERE w_id IS NULL OR w_status <> status OR w_score IS NOT score
                OR w_reason IS NOT reason
             ORDER BY transaction_id LIMIT ?1",
        )?;
        let rows = st
            .query_map([limit as i64], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<f64>>(2)?,
                    r.get::<_, Option<String>>(3)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let mut commissions = self.conn.prepare_cached(
            "SELECT commission_id FROM commissions WHERE transaction_id = ?1 ORDER BY commission_id",
        )?;
        let mut out = Vec::with_capacity(rows.len());
        for (id, status, score, reason) in rows {
            let commission_ids = commissions
                .query_map([&id], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            out.push(StatusDue {
                transaction_id: id,
                status,
                anomaly_score: score
                    .and_then(|s| Decimal::from_f64_retain(s).map(|d| d.round_dp(4))),
                score,
                flag_reason: reason,
                commission_ids,
            });
        }
        Ok(out)
    }

    /// Records that `due`'s status is on the PRM now.
    pub fn prm_status_written(&self, due: &StatusDue) -> Result<()> {
        self.conn.execute(
            "INSERT INTO prm_status_written (transaction_id, status, score, reason, written_at)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT(transaction_id) DO UPDATE SET status = excluded.status,
                score = excluded.score, reason = excluded.reason,
                written_at = excluded.written_at",
            params![
                due.transaction_id,
                due.status,
                due.score,
                due.flag_reason,
                now()
            ],
        )?;
        Ok(())
    }

    /// Every cached transaction some domain fields are missing for (none from an
    /// import; pulled from a PRM that does not carry them): id -> fields.
    pub fn transactions_missing(&self) -> Result<std::collections::HashMap<String, Vec<String>>> {
        let mut stmt = self.conn.prepare(
            "SELECT transaction_id, missing FROM transactions WHERE missing IS NOT NULL AND missing <> ''",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        let mut out = std::collections::HashMap::new();
        for row in rows {
            let (id, m) = row?;
            out.insert(
                id,
                m.split(',')
                    .filter(|x| !x.is_empty())
                    .map(str::to_string)
                    .collect(),
            );
        }
        Ok(out)
    }

    /// The domain fields no source provided for a cached transaction.
    pub fn transaction_missing(&self, id: &str) -> Result<Vec<String>> {
        let m: Option<Option<String>> = self
            .conn
            .query_row(
                "SELECT missing FROM transactions WHERE transaction_id = ?1",
                [id],
                |r| r.get(0),
            )
            .optional()?;
        Ok(m.flatten()
            .map(|s| {
                s.split(',')
                    .filter(|x| !x.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default())
    }

    /// The PRM's rewards (commission objects) of a transaction with their PRM status
    /// (hold, pending, approved, declined with reason, paid; a clawback has a negative
    /// amount), as of the last pull, in reward id order.
    pub fn prm_reward_status(&self, transaction_id: &str) -> Result<Vec<PrmReward>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT r.reward_id, r.transaction_id, c.payee_partner_id, c.role, c.amount,
                    r.status, r.decline_reason, r.record_version, r.remote_updated
             FROM prm_rewards r LEFT JOIN commissions c ON c.commission_id = r.reward_id
             WHERE r.transaction_id = ?1 ORDER BY r.reward_id",
        )?;
        let rows = stmt.query_map([transaction_id], |r| {
            Ok((
                PrmReward {
                    reward_id: r.get(0)?,
                    transaction_id: r.get(1)?,
                    payee_partner_id: r.get(2)?,
                    role: r.get(3)?,
                    amount: None,
                    status: r.get(5)?,
                    decline_reason: r.get(6)?,
                    record_version: r.get(7)?,
                    remote_updated: r.get(8)?,
                },
                r.get::<_, Option<String>>(4)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (mut rw, amount) = row?;
            if let Some(a) = amount {
                rw.amount = Some(a.parse().map_err(|_| {
                    super::StoreError::Corrupt(format!(
                        "commission {}: amount `{a}` is not a decimal",
                        rw.reward_id
                    ))
                })?);
            }
            out.push(rw);
        }
        Ok(out)
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
            ("prm_rewards", "SELECT reward_id, transaction_id, status, decline_reason, record_version FROM prm_rewards ORDER BY reward_id"),
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
