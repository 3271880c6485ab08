//! The imported program entities: idempotent upserts per entity (one SQLite
//! transaction per call), the quarantine of rejected input rows, the bulk-import
//! mode (relaxed `synchronous`, secondary indexes dropped and rebuilt) and loading
//! everything back as domain types.

use std::str::FromStr;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use rusqlite::types::Value;
use rusqlite::{params, OptionalExtension, TransactionBehavior};
use rust_decimal::Decimal;

use sha2::{Digest, Sha256};

use super::bulk::{CommBatch, CommRow, RowProblem, TxBatch, TxRow};
use super::{Result, Store, StoreError};
use crate::import::Rejection;
use crate::model::*;

/// What an upsert did: rows new to the cache, rows changed, rows already identical.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UpsertCounts {
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
}

impl UpsertCounts {
    /// Runs `ins` (an insert that ignores an existing key) and, when the row exists,
    /// `upd` (an update guarded by a change), counting which one took effect.
    fn insert_or_update<P: rusqlite::Params + Clone>(
        &mut self,
        ins: &mut rusqlite::Statement<'_>,
        upd: &mut rusqlite::Statement<'_>,
        params: P,
    ) -> rusqlite::Result<()> {
        if ins.execute(params.clone())? == 1 {
            self.inserted += 1;
        } else if upd.execute(params)? == 1 {
            self.updated += 1;
        } else {
            self.unchanged += 1;
        }
        Ok(())
    }
}

impl std::ops::AddAssign for UpsertCounts {
    fn add_assign(&mut self, o: UpsertCounts) {
        self.inserted += o.inserted;
        self.updated += o.updated;
        self.unchanged += o.unchanged;
    }
}

/// The page cache of a bulk load (restored after a sort within it).
const BULK_LOAD_CACHE: &str = "PRAGMA cache_size=-32768;";

/// An index build's sort: two sorter threads, each sorting runs of at most
/// cache_size bytes (spilled to temporary files: memory stays bounded). Runs of
/// 4 MiB rather than 16 keep both sorter threads busy while the table is scanned
/// (measured on 1M transactions: (partner_id, closed_on) 2.0 -> 1.45 s).
const INDEX_SORT: &str = "PRAGMA threads=2; PRAGMA cache_size=-4096;";

/// Key of `sync_state` holding the indexes a bulk import dropped (JSON array of
/// `CREATE INDEX` statements) until it rebuilds them.
const DROPPED_INDEXES_KEY: &str = "import.dropped_indexes";

/// The `CREATE INDEX` statements of the indexes a bulk import dropped and has not
/// rebuilt (empty when none).
fn dropped_indexes(conn: &rusqlite::Connection) -> Result<Vec<String>> {
    let saved: Option<String> = conn
        .query_row(
            "SELECT value FROM sync_state WHERE key = ?1",
            [DROPPED_INDEXES_KEY],
            |r| r.get(0),
        )
        .optional()?;
    match saved {
        Some(text) => json("sync_state.import.dropped_indexes", &text),
        None => Ok(Vec::new()),
    }
}

/// Records `sqls` as the indexes to rebuild ([`dropped_indexes`]); none: forgets.
fn save_dropped_indexes(conn: &rusqlite::Connection, sqls: &[&str]) -> Result<()> {
    if sqls.is_empty() {
        conn.execute(
            "DELETE FROM sync_state WHERE key = ?1",
            [DROPPED_INDEXES_KEY],
        )?;
        return Ok(());
    }
    let text =
        serde_json::to_string(sqls).map_err(|e| StoreError::Corrupt(format!("index list: {e}")))?;
    conn.execute(
        "INSERT INTO sync_state (key, value) VALUES (?1, ?2)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![DROPPED_INDEXES_KEY, text],
    )?;
    Ok(())
}

/// A second, read-only connection to a cache, for checking that rows named by an
/// import's lines are stored (rows of earlier files, committed already) on the
/// parsing thread rather than on the writing one.
pub struct Reader {
    conn: rusqlite::Connection,
    /// The last id found per table of [`LOOKUPS`].
    last_found: [String; 2],
}

impl Reader {
    /// Starts a new read transaction: later lookups see what is committed now, and
    /// keep one snapshot (and so their page cache) until the next call. The import
    /// calls it before each file, whose references are to earlier files' rows.
    pub fn refresh(&mut self) -> Result<()> {
        if !self.conn.is_autocommit() {
            self.conn.execute_batch("COMMIT")?;
        }
        self.last_found = Default::default();
        Ok(self.conn.execute_batch("BEGIN")?)
    }

    /// Whether a registration (`"registrations"`) or a transaction
    /// (`"transactions"`) with this id is stored.
    pub fn exists(&mut self, table: &str, id: &str) -> Result<bool> {
        let k = lookup_index(table)?;
        let mut st = self.conn.prepare_cached(LOOKUPS[k].1)?;
        Ok(lookup(&mut st, &mut self.last_found[k], id)?)
    }
}

/// What [`Store::end_bulk_import`] did: each index it rebuilt with its build time,
/// and how long the checkpoint of the WAL into the database file took.
#[derive(Debug, Clone, Default)]
pub struct BulkEnd {
    pub indexes: Vec<(String, Duration)>,
    pub checkpoint: Duration,
}

/// The name in a `CREATE [UNIQUE] INDEX [IF NOT EXISTS] name ON ...` statement.
fn index_name(sql: &str) -> String {
    let words: Vec<&str> = sql.split_whitespace().collect();
    let at = words.iter().position(|w| w.eq_ignore_ascii_case("INDEX"));
    let mut rest = words[at.map_or(words.len(), |i| i + 1)..].iter();
    let mut name = rest.next().copied().unwrap_or("");
    if name.eq_ignore_ascii_case("IF") {
        name = rest.nth(2).copied().unwrap_or(""); // IF NOT EXISTS name
    }
    name.trim_matches('"').to_string()
}

/// Tables whose secondary indexes a bulk import into an empty cache may drop.
const BULK_TABLES: &[&str] = &["transactions", "commissions", "registrations"];

fn now_rfc3339() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// RFC 3339 in UTC with `Z`, fractional seconds only when present.
pub fn format_timestamp(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// SHA-256 (hex) of a canonical serialisation of a transaction: every field in a
/// fixed order, length-prefixed, decimals normalised (`"230.0"` == `"230.00"`).
/// It changes exactly when the PRM changes something about the row.
///
/// SHA-256 stays (rather than a faster non-cryptographic hash): the sync compares
/// it with hashes it computes the same way, it is about 1% of an import's CPU
/// time, and a collision would silently hide a change, not just cost a write.
pub fn transaction_hash(t: &Transaction) -> String {
    let ulp = t.unit_list_price.to_string();
    let unp = t.unit_net_price.to_string();
    let amount = t.amount.to_string();
    let closed_on = t.closed_on.to_string();
    let submitted_at = format_timestamp(&t.submitted_at);
    TxRow {
        closed_on: &closed_on,
        submitted_at: &submitted_at,
        // amount_minor is not part of the hash.
        ..tx_row(t, &ulp, &unp, &amount, 0)
    }
    .hash_hex()
}

/// A transaction with the text forms the store writes and its row hash computed.
#[derive(Debug, Clone)]
pub struct PreparedTransaction {
    pub tx: Transaction,
    pub(super) unit_list_price: String,
    pub(super) unit_net_price: String,
    pub(super) amount: String,
    pub(super) amount_minor: i64,
    pub(super) closed_on: String,
    pub(super) submitted_at: String,
    pub row_hash: String,
}

impl PreparedTransaction {
    pub fn new(tx: Transaction) -> PreparedTransaction {
        let ulp = tx.unit_list_price.to_string();
        let unp = tx.unit_net_price.to_string();
        let amount = tx.amount.to_string();
        let closed = tx.closed_on.to_string();
        let submitted = format_timestamp(&tx.submitted_at);
        PreparedTransaction::from_parts(tx, ulp, unp, amount, closed, submitted)
    }

    /// From the texts the store writes, which the caller guarantees are what
    /// `Decimal`/`NaiveDate` display and [`format_timestamp`] give for the values
    /// in `tx` (the import keeps input text that is already in that form).
    pub fn from_parts(
        tx: Transaction,
        unit_list_price: String,
        unit_net_price: String,
        amount: String,
        closed_on: String,
        submitted_at: String,
    ) -> PreparedTransaction {
        let amount_minor = crate::money::to_minor(tx.amount);
        let row = tx_row(
            &tx,
            &unit_list_price,
            &unit_net_price,
            &amount,
            amount_minor,
        );
        let row_hash = TxRow {
            closed_on: &closed_on,
            submitted_at: &submitted_at,
            ..row
        }
        .hash_hex();
        PreparedTransaction {
            amount_minor,
            unit_list_price,
            unit_net_price,
            amount,
            closed_on,
            submitted_at,
            row_hash,
            tx,
        }
    }
}

impl PreparedTransaction {
    /// The row as the store writes it.
    pub fn row(&self) -> TxRow<'_> {
        TxRow {
            closed_on: &self.closed_on,
            submitted_at: &self.submitted_at,
            ..tx_row(
                &self.tx,
                &self.unit_list_price,
                &self.unit_net_price,
                &self.amount,
                self.amount_minor,
            )
        }
    }
}

/// The view of `t` with the given texts (dates left empty for the caller to set).
fn tx_row<'a>(
    t: &'a Transaction,
    unit_list_price: &'a str,
    unit_net_price: &'a str,
    amount: &'a str,
    amount_minor: i64,
) -> TxRow<'a> {
    TxRow {
        transaction_id: &t.transaction_id,
        kind: t.kind,
        original_transaction_id: t.original_transaction_id.as_deref(),
        partner_id: &t.partner_id,
        registration_id: t.registration_id.as_deref(),
        customer_name: &t.customer_name,
        sku: &t.sku,
        quantity: t.quantity,
        unit_list_price,
        unit_net_price,
        amount,
        amount_minor,
        currency: &t.currency,
        closed_on: "",
        submitted_at: "",
        invoice_number: &t.invoice_number,
        notes: t.notes.as_deref(),
    }
}

/// A registration with the texts of its amount and dates.
#[derive(Debug, Clone)]
pub struct PreparedRegistration {
    pub row: Registration,
    expected_amount: String,
    registered_on: String,
    expires_on: String,
}

impl PreparedRegistration {
    pub fn new(row: Registration) -> PreparedRegistration {
        PreparedRegistration {
            expected_amount: row.expected_amount.to_string(),
            registered_on: row.registered_on.to_string(),
            expires_on: row.expires_on.to_string(),
            row,
        }
    }
    /// The texts must be what `Decimal`/`NaiveDate` display for the values in `row`.
    pub fn from_parts(
        row: Registration,
        expected_amount: String,
        registered_on: String,
        expires_on: String,
    ) -> PreparedRegistration {
        PreparedRegistration {
            row,
            expected_amount,
            registered_on,
            expires_on,
        }
    }
}

fn corrupt(what: &str, v: &str) -> StoreError {
    StoreError::Corrupt(format!("{what}: cannot read {v:?}"))
}

fn dec(what: &str, s: &str) -> Result<Decimal> {
    Decimal::from_str(s).map_err(|_| corrupt(what, s))
}

fn date(what: &str, s: &str) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| corrupt(what, s))
}

fn timestamp(what: &str, s: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|d| d.with_timezone(&Utc))
        .map_err(|_| corrupt(what, s))
}

fn json<T: serde::de::DeserializeOwned>(what: &str, s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|_| corrupt(what, s))
}

/// A table's shape for the generic upsert: its columns and which of them are the key.
struct Shape {
    table: &'static str,
    cols: &'static [&'static str],
    key: &'static [&'static str],
}

impl Shape {
    fn insert_sql(&self) -> String {
        let ph: Vec<String> = (1..=self.cols.len()).map(|i| format!("?{i}")).collect();
        format!(
            "INSERT INTO {} ({}) VALUES ({}) ON CONFLICT DO NOTHING",
            self.table,
            self.cols.join(","),
            ph.join(",")
        )
    }

    fn update_sql(&self) -> String {
        let mut set = Vec::new();
        let mut same = Vec::new();
        let mut key = Vec::new();
        for (i, c) in self.cols.iter().enumerate() {
            let p = i + 1;
            if self.key.contains(c) {
                key.push(format!("{c} = ?{p}"));
            } else {
                set.push(format!("{c} = ?{p}"));
                same.push(format!("{c} IS ?{p}"));
            }
        }
        if set.is_empty() {
            // Key-only table: an existing row is always unchanged.
            return format!(
                "UPDATE {} SET {c} = {c} WHERE 0",
                self.table,
                c = self.cols[0]
            );
        }
        format!(
            "UPDATE {} SET {} WHERE {} AND NOT ({})",
            self.table,
            set.join(", "),
            key.join(" AND "),
            same.join(" AND ")
        )
    }
}

const TIERS: Shape = Shape {
    table: "tiers",
    cols: &["tier_id", "name", "rank"],
    key: &["tier_id"],
};
const PRODUCTS: Shape = Shape {
    table: "products",
    cols: &[
        "sku",
        "name",
        "family",
        "list_price",
        "certification_required",
        "active",
    ],
    key: &["sku"],
};
const DISCOUNT_POLICY: Shape = Shape {
    table: "discount_policy",
    cols: &["tier_id", "family", "max_discount_pct"],
    key: &["tier_id", "family"],
};
const PARTNERS: Shape = Shape {
    table: "partners",
    cols: &[
        "partner_id",
        "name",
        "kind",
        "parent_partner_id",
        "region",
        "country",
        "joined_on",
        "certifications",
        "tax_id",
        "bank_account",
    ],
    key: &["partner_id"],
};
const TIER_HISTORY: Shape = Shape {
    table: "tier_history",
    cols: &["partner_id", "tier_id", "effective_from"],
    key: &["partner_id", "effective_from"],
};
/// A row of six text columns, as [`Store::six_texts`] reads it.
type SixTexts = (String, String, String, String, String, String);

const ERP_INVOICES: Shape = Shape {
    table: "erp_invoices",
    cols: &[
        "invoice_number",
        "customer_name",
        "partner_id",
        "invoice_date",
        "currency",
        "lines",
    ],
    key: &["invoice_number"],
};
const QUOTAS: Shape = Shape {
    table: "quotas",
    cols: &["partner_id", "period", "quota"],
    key: &["partner_id", "period"],
};
const REGISTRATIONS: Shape = Shape {
    table: "registrations",
    cols: &[
        "registration_id",
        "partner_id",
        "customer_name",
        "expected_amount",
        "registered_on",
        "expires_on",
        "status",
    ],
    key: &["registration_id"],
};
const COMMISSIONS: Shape = Shape {
    table: "commissions",
    cols: &[
        "commission_id",
        "transaction_id",
        "payee_partner_id",
        "role",
        "amount",
        "period",
    ],
    key: &["commission_id"],
};
const PROGRAM: Shape = Shape {
    table: "program",
    cols: &[
        "id",
        "program_id",
        "name",
        "currency",
        "fiscal_year_start_month",
        "as_of",
        "review_start",
        "review_end",
    ],
    key: &["id"],
};
const PLAN: Shape = Shape {
    table: "plan",
    cols: &["id", "plan_id", "json"],
    key: &["id"],
};

fn t(s: &str) -> Value {
    Value::Text(s.to_string())
}
fn ot(s: Option<&str>) -> Value {
    s.map(t).unwrap_or(Value::Null)
}
fn i(n: i64) -> Value {
    Value::Integer(n)
}

/// Upserts rows of one shape inside an open transaction.
fn upsert_in<R>(
    tx: &rusqlite::Transaction<'_>,
    shape: &Shape,
    rows: &[R],
    values: impl Fn(&R) -> Vec<Value>,
) -> Result<UpsertCounts> {
    let mut ins = tx.prepare_cached(&shape.insert_sql())?;
    let mut upd = tx.prepare_cached(&shape.update_sql())?;
    let mut c = UpsertCounts::default();
    for r in rows {
        let v = values(r);
        c.insert_or_update(&mut ins, &mut upd, rusqlite::params_from_iter(v.iter()))?;
    }
    Ok(c)
}

/// How the import writes a batch into one of the bulk tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BulkMode {
    /// The table was empty when the import began: every row is new, so plain
    /// inserts and no update probes.
    pub fresh: bool,
    /// The store checks what needs every stored id (the import keeps at most a
    /// bounded set of them, so its memory does not grow with the file): a key this
    /// import already wrote, and a reference to a row that is not stored, are
    /// refused and reported.
    pub checks: bool,
    /// With `checks`: whether the store also checks references to rows of other
    /// tables (registrations named by transactions, transactions named by commission
    /// lines). Off when the import checked them already with a [`Reader`].
    pub refs: bool,
}

impl BulkMode {
    /// Upserts with no checks (the sync, and callers that checked already).
    pub const UPSERT: BulkMode = BulkMode {
        fresh: false,
        checks: false,
        refs: false,
    };
}

/// Rows of a batch the store refused (index in the batch, and why); nothing of
/// them was written.
pub type Refused = Vec<(usize, RowProblem)>;

/// The tables whose ids an import's lines name, and the lookup of a stored id.
const LOOKUPS: [(&str, &str); 2] = [
    (
        "registrations",
        "SELECT 1 FROM registrations WHERE registration_id = ?1",
    ),
    (
        "transactions",
        "SELECT 1 FROM transactions WHERE transaction_id = ?1",
    ),
];

fn lookup_index(table: &str) -> Result<usize> {
    LOOKUPS
        .iter()
        .position(|(t, _)| *t == table)
        .ok_or_else(|| StoreError::Corrupt(format!("no lookup for {table}")))
}

/// Runs an id lookup of [`LOOKUPS`]; `last` is the last id it found (lines naming
/// the same row often come together, such as a sale's commission lines).
fn lookup(st: &mut rusqlite::Statement<'_>, last: &mut String, id: &str) -> rusqlite::Result<bool> {
    if !last.is_empty() && last == id {
        return Ok(true);
    }
    st.raw_bind_parameter(1, id)?;
    let found = st.raw_query().next()?.is_some();
    if found {
        last.clear();
        last.push_str(id);
    }
    Ok(found)
}

/// A lookup of stored ids for [`BulkMode::checks`] inside a write.
struct Lookups<'c> {
    st: rusqlite::CachedStatement<'c>,
    last_found: String,
}

impl<'c> Lookups<'c> {
    fn new(tx: &'c rusqlite::Transaction<'_>, table: &str) -> Result<Self> {
        Ok(Lookups {
            st: tx.prepare_cached(LOOKUPS[lookup_index(table)?].1)?,
            last_found: String::new(),
        })
    }
    fn exists(&mut self, id: &str) -> rusqlite::Result<bool> {
        lookup(&mut self.st, &mut self.last_found, id)
    }
    /// The problem of a row whose `field` names `id`, a `what` that is not stored
    /// (none when `id` is absent or stored).
    fn unknown(
        &mut self,
        field: &'static str,
        what: &'static str,
        id: Option<&str>,
    ) -> rusqlite::Result<Option<RowProblem>> {
        Ok(match id {
            Some(id) if !self.exists(id)? => Some(RowProblem::Unknown {
                field,
                what,
                id: id.to_string(),
            }),
            _ => None,
        })
    }
}

/// Writes `rows` of one bulk table: for each, `check` (references, when checking),
/// the duplicate check of [`BulkMode::checks`], then the insert of `sql` (one that
/// ignores an existing key) and — when the key exists and the table was not empty
/// (`mode.fresh`) — its update (guarded by a change); `bind` binds a row to either,
/// `batch_param` is a parameter with one value for the whole batch. Counts which
/// took effect.
#[allow(clippy::too_many_arguments)]
fn write_rows<R>(
    tx: &rusqlite::Transaction<'_>,
    entity: &str,
    rows: impl Iterator<Item = R>,
    mode: BulkMode,
    sql: (&str, &str),
    batch_param: Option<(usize, &str)>,
    bind: fn(&mut rusqlite::Statement<'_>, &R) -> rusqlite::Result<()>,
    key: (&'static str, fn(&R) -> &str),
    check: &mut dyn FnMut(&R) -> rusqlite::Result<Option<RowProblem>>,
) -> rusqlite::Result<(UpsertCounts, Refused)> {
    let mut ins = tx.prepare_cached(sql.0)?;
    let mut upd = match mode.fresh {
        true => None,
        false => Some(tx.prepare_cached(sql.1)?),
    };
    // A statement keeps its bindings from one execution to the next.
    if let Some((k, value)) = batch_param {
        ins.raw_bind_parameter(k, value)?;
        if let Some(u) = &mut upd {
            u.raw_bind_parameter(k, value)?;
        }
    }
    let (key_field, key) = key;
    let duplicate = |r: &R| RowProblem::Duplicate {
        field: key_field,
        id: key(r).to_string(),
        first: None,
    };
    let mut c = UpsertCounts::default();
    let mut refused = Refused::new();
    // Re-importing into a table that has rows: the keys this import wrote are kept
    // in a temporary table (on disk during a bulk import), to refuse a repeated one.
    let mut seen = match mode.checks && !mode.fresh {
        true => Some(tx.prepare_cached(
            "INSERT INTO temp.import_seen (entity, id) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
        )?),
        false => None,
    };
    if let Some(st) = &mut seen {
        st.raw_bind_parameter(1, entity)?;
    }
    for (i, r) in rows.enumerate() {
        if mode.checks {
            if let Some(problem) = check(&r)? {
                refused.push((i, problem));
                continue;
            }
        }
        if let Some(st) = &mut seen {
            st.raw_bind_parameter(2, key(&r))?;
            if st.raw_execute()? == 0 {
                refused.push((i, duplicate(&r)));
                continue;
            }
        }
        bind(&mut ins, &r)?;
        if ins.raw_execute()? == 1 {
            c.inserted += 1;
            continue;
        }
        match upd.as_deref_mut() {
            Some(u) => {
                bind(u, &r)?;
                if u.raw_execute()? == 1 {
                    c.updated += 1;
                } else {
                    c.unchanged += 1;
                }
            }
            // A fresh table: the key was written by this import (a repeated line).
            None if mode.checks => refused.push((i, duplicate(&r))),
            None => c.unchanged += 1,
        }
    }
    Ok((c, refused))
}

fn program_values(p: &Program) -> Vec<Value> {
    vec![
        i(1),
        t(&p.program_id),
        t(&p.name),
        t(&p.currency),
        i(p.fiscal_year_start_month as i64),
        t(&p.as_of.to_string()),
        t(&p.review_window.start.to_string()),
        t(&p.review_window.end.to_string()),
    ]
}

/// A partner's sensitive value as stored: sealed with the cache key, or masked (last
/// four) when there is none — never readable without the key.
pub(crate) fn sealed(key: Option<&super::secret::CacheKey>, field: &str, plain: &str) -> String {
    match key {
        Some(k) => k.seal(field, plain),
        None => crate::model::mask(plain),
    }
}

/// The stored text of a partner's bank account: its JSON, sealed.
pub(crate) fn sealed_bank(
    key: Option<&super::secret::CacheKey>,
    b: &crate::model::BankAccount,
) -> String {
    match key {
        Some(k) => k.seal(
            "bank_account",
            &serde_json::to_string(b).unwrap_or_else(|_| "null".into()),
        ),
        // No key: the masked account only (what the views show).
        None => {
            let mut m = b.clone();
            m.routing_number = crate::model::mask(&m.routing_number);
            m.account_number = crate::model::mask(&m.account_number);
            serde_json::to_string(&m).unwrap_or_else(|_| "null".into())
        }
    }
}

fn partner_values(key: Option<&super::secret::CacheKey>, p: &Partner) -> Vec<Value> {
    vec![
        t(&p.partner_id),
        t(&p.name),
        t(p.kind.as_str()),
        ot(p.parent_partner_id.as_deref()),
        t(&p.region),
        ot(p.country.as_deref()),
        t(&p.joined_on.to_string()),
        Value::Text(serde_json::to_string(&p.certifications).unwrap_or_else(|_| "[]".into())),
        match &p.tax_id {
            Some(tax) => Value::Text(sealed(key, "tax_id", tax)),
            None => Value::Null,
        },
        match &p.bank_account {
            Some(b) => Value::Text(sealed_bank(key, b)),
            None => Value::Null,
        },
    ]
}

fn registration_values(r: &Registration) -> Vec<Value> {
    vec![
        t(&r.registration_id),
        t(&r.partner_id),
        t(&r.customer_name),
        t(&r.expected_amount.to_string()),
        t(&r.registered_on.to_string()),
        t(&r.expires_on.to_string()),
        t(r.status.as_str()),
    ]
}

const TX_INSERT: &str = "INSERT INTO transactions (transaction_id, kind, original_transaction_id, \
     partner_id, registration_id, customer_name, sku, quantity, unit_list_price, unit_net_price, \
     amount, amount_minor, currency, closed_on, submitted_at, invoice_number, notes, row_hash, \
     record_version, updated_at) \
     VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,1,?19) \
     ON CONFLICT(transaction_id) DO NOTHING";

/// The transactions' key (schema.sql, word for word: a bulk import drops it and the
/// repair of an interrupted one recognises it).
const TX_KEY_INDEX: &str =
    "CREATE UNIQUE INDEX IF NOT EXISTS idx_tx_id ON transactions (transaction_id)";

/// [`TX_INSERT`] for a keyless load ([`Store::drop_transaction_key`]): no key to
/// conflict on; the row's line in the file is its rowid (?20).
const TX_INSERT_KEYLESS: &str = "INSERT INTO transactions (transaction_id, kind, \
     original_transaction_id, partner_id, registration_id, customer_name, sku, quantity, \
     unit_list_price, unit_net_price, amount, amount_minor, currency, closed_on, submitted_at, \
     invoice_number, notes, row_hash, record_version, updated_at, rowid) \
     VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,1,?19,?20)";

/// Deletes every transaction whose id an earlier row (lower rowid) has; returns
/// each deleted row's rowid, id and the rowid of the row kept, in rowid order.
fn delete_repeated_transaction_ids(
    tx: &rusqlite::Transaction<'_>,
) -> rusqlite::Result<Vec<(i64, String, i64)>> {
    let repeated: Vec<(i64, String, i64)> = tx
        .prepare(
            "WITH firsts AS (SELECT transaction_id, MIN(rowid) AS first
                               FROM transactions GROUP BY transaction_id HAVING COUNT(*) > 1)
             SELECT t.rowid, t.transaction_id, f.first
               FROM transactions t JOIN firsts f ON f.transaction_id = t.transaction_id
              WHERE t.rowid <> f.first
              ORDER BY t.rowid",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    delete_transaction_rows(tx, repeated.iter().map(|(rowid, _, _)| *rowid))?;
    Ok(repeated)
}

/// Deletes the transactions at these rowids.
fn delete_transaction_rows(
    tx: &rusqlite::Transaction<'_>,
    rowids: impl Iterator<Item = i64>,
) -> rusqlite::Result<()> {
    let mut del = tx.prepare_cached("DELETE FROM transactions WHERE rowid = ?1")?;
    for rowid in rowids {
        del.execute([rowid])?;
    }
    Ok(())
}

/// Binds a transaction and its row hash to ?1..?18 of [`TX_INSERT`] / [`TX_UPDATE`].
fn bind_transaction(
    st: &mut rusqlite::Statement<'_>,
    row: &(TxRow<'_>, &str),
) -> rusqlite::Result<()> {
    let (r, hash) = row;
    st.raw_bind_parameter(1, r.transaction_id)?;
    st.raw_bind_parameter(2, r.kind.as_str())?;
    st.raw_bind_parameter(3, r.original_transaction_id)?;
    st.raw_bind_parameter(4, r.partner_id)?;
    st.raw_bind_parameter(5, r.registration_id)?;
    st.raw_bind_parameter(6, r.customer_name)?;
    st.raw_bind_parameter(7, r.sku)?;
    st.raw_bind_parameter(8, r.quantity)?;
    st.raw_bind_parameter(9, r.unit_list_price)?;
    st.raw_bind_parameter(10, r.unit_net_price)?;
    st.raw_bind_parameter(11, r.amount)?;
    st.raw_bind_parameter(12, r.amount_minor)?;
    st.raw_bind_parameter(13, r.currency)?;
    st.raw_bind_parameter(14, r.closed_on)?;
    st.raw_bind_parameter(15, r.submitted_at)?;
    st.raw_bind_parameter(16, r.invoice_number)?;
    st.raw_bind_parameter(17, r.notes)?;
    st.raw_bind_parameter(18, *hash)
}

/// What [`Store::build_transaction_key`] found and did after a keyless load.
#[derive(Debug, Default)]
pub struct KeyBuild {
    /// Rows removed because an earlier line has their id: (line, id, that earlier line).
    pub repeated: Vec<(usize, String, usize)>,
    /// Refunds removed because the sale they name is stored nowhere: (line, that id).
    pub orphans: Vec<(usize, String)>,
    /// Time spent building the key index (without the checks).
    pub index: Duration,
}

const TX_UPDATE: &str = "UPDATE transactions SET kind=?2, original_transaction_id=?3, \
     partner_id=?4, registration_id=?5, customer_name=?6, sku=?7, quantity=?8, \
     unit_list_price=?9, unit_net_price=?10, amount=?11, amount_minor=?12, currency=?13, \
     closed_on=?14, submitted_at=?15, invoice_number=?16, notes=?17, row_hash=?18, \
     record_version = record_version + 1, updated_at=?19, missing=NULL \
     WHERE transaction_id=?1 AND row_hash <> ?18";

fn tx_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<[Option<String>; 17]> {
    let mut out: [Option<String>; 17] = Default::default();
    for (k, slot) in out.iter_mut().enumerate() {
        *slot = if k == 7 {
            Some(r.get::<_, i64>(k)?.to_string())
        } else {
            r.get(k)?
        };
    }
    Ok(out)
}

fn tx_from_strings(v: [Option<String>; 17]) -> Result<Transaction> {
    let [id, kind, orig, partner, reg, customer, sku, qty, ulp, unp, amount, currency, closed, submitted, invoice, notes, _hash] =
        v;
    let req = |o: Option<String>, what: &str| -> Result<String> {
        o.ok_or_else(|| StoreError::Corrupt(format!("transactions.{what} is NULL")))
    };
    let id = req(id, "transaction_id")?;
    let kind = match req(kind, "kind")?.as_str() {
        "sale" => TransactionKind::Sale,
        "refund" => TransactionKind::Refund,
        other => return Err(corrupt("transactions.kind", other)),
    };
    let qty = req(qty, "quantity")?;
    Ok(Transaction {
        kind,
        original_transaction_id: orig,
        partner_id: req(partner, "partner_id")?,
        registration_id: reg,
        customer_name: req(customer, "customer_name")?,
        sku: req(sku, "sku")?,
        quantity: qty
            .parse()
            .map_err(|_| corrupt("transactions.quantity", &qty))?,
        unit_list_price: dec(
            "transactions.unit_list_price",
            &req(ulp, "unit_list_price")?,
        )?,
        unit_net_price: dec("transactions.unit_net_price", &req(unp, "unit_net_price")?)?,
        amount: dec("transactions.amount", &req(amount, "amount")?)?,
        currency: req(currency, "currency")?,
        closed_on: date("transactions.closed_on", &req(closed, "closed_on")?)?,
        submitted_at: timestamp(
            "transactions.submitted_at",
            &req(submitted, "submitted_at")?,
        )?,
        invoice_number: req(invoice, "invoice_number")?,
        notes,
        transaction_id: id,
    })
}

const TX_SELECT: &str = "SELECT transaction_id, kind, original_transaction_id, partner_id, \
     registration_id, customer_name, sku, quantity, unit_list_price, unit_net_price, amount, \
     currency, closed_on, submitted_at, invoice_number, notes, row_hash FROM transactions";

impl Store {
    fn write_tx(&mut self) -> Result<rusqlite::Transaction<'_>> {
        Ok(self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?)
    }

    fn upsert_shape<R>(
        &mut self,
        shape: &Shape,
        rows: &[R],
        values: impl Fn(&R) -> Vec<Value>,
    ) -> Result<UpsertCounts> {
        let tx = self.write_tx()?;
        let c = upsert_in(&tx, shape, rows, values)?;
        tx.commit()?;
        Ok(c)
    }

    pub fn upsert_program(&mut self, p: &Program) -> Result<UpsertCounts> {
        self.upsert_shape(&PROGRAM, std::slice::from_ref(p), program_values)
    }

    pub fn upsert_plan(&mut self, p: &Plan) -> Result<UpsertCounts> {
        let text = serde_json::to_string(p)
            .map_err(|e| StoreError::Corrupt(format!("plan cannot be serialised: {e}")))?;
        self.upsert_shape(&PLAN, &[(p.plan_id.clone(), text)], |(id, j)| {
            vec![i(1), t(id), t(j)]
        })
    }

    pub fn upsert_tiers(&mut self, rows: &[Tier]) -> Result<UpsertCounts> {
        self.upsert_shape(&TIERS, rows, |r| vec![t(&r.tier_id), t(&r.name), i(r.rank)])
    }

    pub fn upsert_products(&mut self, rows: &[Product]) -> Result<UpsertCounts> {
        self.upsert_shape(&PRODUCTS, rows, |r| {
            vec![
                t(&r.sku),
                t(&r.name),
                t(&r.family),
                t(&r.list_price.to_string()),
                ot(r.certification_required.as_deref()),
                i(r.active as i64),
            ]
        })
    }

    pub fn upsert_discount_policy(&mut self, rows: &[DiscountPolicy]) -> Result<UpsertCounts> {
        self.upsert_shape(&DISCOUNT_POLICY, rows, |r| {
            vec![
                t(&r.tier_id),
                t(&r.family),
                t(&r.max_discount_pct.to_string()),
            ]
        })
    }

    pub fn upsert_partners(&mut self, rows: &[Partner]) -> Result<UpsertCounts> {
        let sensitive = rows
            .iter()
            .any(|p| p.tax_id.is_some() || p.bank_account.is_some());
        let key = match sensitive {
            true => match self.cache_key() {
                Ok(k) => Some(k.clone()),
                Err(e) => {
                    tracing::warn!(error = %e, "partner tax ids and bank details stored masked");
                    None
                }
            },
            false => None,
        };
        self.upsert_shape(&PARTNERS, rows, |p| partner_values(key.as_ref(), p))
    }

    pub fn upsert_tier_history(&mut self, rows: &[TierHistory]) -> Result<UpsertCounts> {
        self.upsert_shape(&TIER_HISTORY, rows, |r| {
            vec![
                t(&r.partner_id),
                t(&r.tier_id),
                t(&r.effective_from.to_string()),
            ]
        })
    }

    pub fn upsert_erp_invoices(&mut self, rows: &[ErpInvoice]) -> Result<UpsertCounts> {
        self.upsert_shape(&ERP_INVOICES, rows, |r| {
            vec![
                t(&r.invoice_number),
                t(&r.customer_name),
                t(&r.partner_id),
                t(&r.invoice_date.to_string()),
                t(&r.currency),
                t(&serde_json::to_string(&r.lines).unwrap_or_else(|_| "[]".into())),
            ]
        })
    }

    pub fn upsert_quotas(&mut self, rows: &[Quota]) -> Result<UpsertCounts> {
        self.upsert_shape(&QUOTAS, rows, |r| {
            vec![t(&r.partner_id), t(&r.period), t(&r.quota.to_string())]
        })
    }

    pub fn upsert_registrations(&mut self, rows: &[Registration]) -> Result<UpsertCounts> {
        self.upsert_shape(&REGISTRATIONS, rows, registration_values)
    }

    pub fn upsert_commissions(&mut self, rows: &[CommissionLine]) -> Result<UpsertCounts> {
        let amounts: Vec<String> = rows.iter().map(|r| r.amount.to_string()).collect();
        let views = rows.iter().zip(&amounts).map(|(r, amount)| CommRow {
            commission_id: &r.commission_id,
            transaction_id: &r.transaction_id,
            payee_partner_id: &r.payee_partner_id,
            role: r.role,
            amount,
            period: &r.period,
        });
        Ok(self.write_commissions(views, BulkMode::UPSERT)?.0)
    }

    /// The import's commission writer (see [`BulkMode`]); with checks, a line whose
    /// transaction is not stored is refused.
    pub fn write_commission_batch(
        &mut self,
        rows: &CommBatch,
        mode: BulkMode,
    ) -> Result<(UpsertCounts, Refused)> {
        self.write_commissions(rows.iter(), mode)
    }

    fn write_commissions<'r>(
        &mut self,
        rows: impl Iterator<Item = CommRow<'r>>,
        mode: BulkMode,
    ) -> Result<(UpsertCounts, Refused)> {
        fn bind(st: &mut rusqlite::Statement<'_>, r: &CommRow<'_>) -> rusqlite::Result<()> {
            st.raw_bind_parameter(1, r.commission_id)?;
            st.raw_bind_parameter(2, r.transaction_id)?;
            st.raw_bind_parameter(3, r.payee_partner_id)?;
            st.raw_bind_parameter(4, r.role.as_str())?;
            st.raw_bind_parameter(5, r.amount)?;
            st.raw_bind_parameter(6, r.period)
        }
        let tx = self.write_tx()?;
        let out = {
            let mut sales = Lookups::new(&tx, "transactions")?;
            write_rows(
                &tx,
                "commissions",
                rows,
                mode,
                (&COMMISSIONS.insert_sql(), &COMMISSIONS.update_sql()),
                None,
                bind,
                ("commission_id", |r| r.commission_id),
                &mut |r| {
                    if !mode.refs {
                        return Ok(None);
                    }
                    sales.unknown("transaction_id", "transaction", Some(r.transaction_id))
                },
            )?
        };
        tx.commit()?;
        Ok(out)
    }

    /// The import's registration writer (see [`BulkMode`]).
    pub fn write_registration_batch(
        &mut self,
        rows: &[PreparedRegistration],
        mode: BulkMode,
    ) -> Result<(UpsertCounts, Refused)> {
        fn bind(
            st: &mut rusqlite::Statement<'_>,
            p: &&PreparedRegistration,
        ) -> rusqlite::Result<()> {
            let r = &p.row;
            st.raw_bind_parameter(1, &r.registration_id)?;
            st.raw_bind_parameter(2, &r.partner_id)?;
            st.raw_bind_parameter(3, &r.customer_name)?;
            st.raw_bind_parameter(4, &p.expected_amount)?;
            st.raw_bind_parameter(5, &p.registered_on)?;
            st.raw_bind_parameter(6, &p.expires_on)?;
            st.raw_bind_parameter(7, r.status.as_str())
        }
        let tx = self.write_tx()?;
        let out = write_rows(
            &tx,
            "registrations",
            rows.iter(),
            mode,
            (&REGISTRATIONS.insert_sql(), &REGISTRATIONS.update_sql()),
            None,
            bind,
            ("registration_id", |p| &p.row.registration_id),
            &mut |_| Ok(None),
        )?;
        tx.commit()?;
        Ok(out)
    }

    /// Whether one of the bulk tables (transactions, commissions, registrations)
    /// holds no rows: an import may then write it with plain inserts
    /// ([`BulkMode::fresh`]).
    pub fn bulk_table_is_empty(&self, table: &str) -> Result<bool> {
        if !BULK_TABLES.contains(&table) {
            return Err(StoreError::Corrupt(format!("not a bulk table: {table}")));
        }
        Ok(self.conn.query_row(
            &format!("SELECT NOT EXISTS (SELECT 1 FROM {table})"),
            [],
            |r| r.get(0),
        )?)
    }

    /// Upserts transactions: new ids are inserted; an existing row whose
    /// [`transaction_hash`] changed is rewritten with `record_version` bumped and
    /// `updated_at` set; identical rows are not written.
    pub fn upsert_transactions(&mut self, rows: &[Transaction]) -> Result<UpsertCounts> {
        let prepared: Vec<PreparedTransaction> = rows
            .iter()
            .map(|t| PreparedTransaction::new(t.clone()))
            .collect();
        self.upsert_prepared_transactions(&prepared)
    }

    /// [`Store::upsert_transactions`] with the text forms and hash computed ahead.
    pub fn upsert_prepared_transactions(
        &mut self,
        rows: &[PreparedTransaction],
    ) -> Result<UpsertCounts> {
        let rows = rows.iter().map(|p| (p.row(), p.row_hash.as_str()));
        Ok(self.write_transactions(rows, BulkMode::UPSERT)?.0)
    }

    /// Drops the transactions' key index for a load into the empty table (remembered
    /// like the other dropped indexes, so an interrupted import is repaired): rows
    /// are then written with [`Store::write_transaction_batch_keyless`] and the key
    /// is built once, by [`Store::build_transaction_key`], instead of being updated
    /// (and probed for a conflict) row by row.
    /// Returns whether it did: not when the table has rows (another process may
    /// have written some since the import looked).
    pub fn drop_transaction_key(&mut self) -> Result<bool> {
        let tx = self.write_tx()?;
        let empty: bool =
            tx.query_row("SELECT NOT EXISTS (SELECT 1 FROM transactions)", [], |r| {
                r.get(0)
            })?;
        if !empty {
            return Ok(false);
        }
        let saved = dropped_indexes(&tx)?;
        let mut sqls: Vec<&str> = saved.iter().map(String::as_str).collect();
        if !sqls.contains(&TX_KEY_INDEX) {
            sqls.push(TX_KEY_INDEX);
        }
        save_dropped_indexes(&tx, &sqls)?;
        tx.execute_batch("DROP INDEX IF EXISTS idx_tx_id")?;
        tx.commit()?;
        Ok(true)
    }

    /// Writes a batch into the transactions table while its key is dropped: plain
    /// inserts, each row's rowid its line number `line(i)` (so a row found wrong
    /// later is reported with its line). Repeated ids and refunds of sales stored
    /// nowhere are found by [`Store::build_transaction_key`]; with `refs`, a row
    /// naming a registration that is not stored is refused here.
    pub fn write_transaction_batch_keyless(
        &mut self,
        rows: &TxBatch,
        line: &dyn Fn(usize) -> usize,
        refs: bool,
    ) -> Result<(UpsertCounts, Refused)> {
        let now = now_rfc3339();
        let tx = self.write_tx()?;
        let mut c = UpsertCounts::default();
        let mut refused = Refused::new();
        {
            let mut ins = tx.prepare_cached(TX_INSERT_KEYLESS)?;
            ins.raw_bind_parameter(19, now.as_str())?;
            let mut refund =
                tx.prepare_cached("INSERT INTO temp.import_refunds (line) VALUES (?1)")?;
            let mut regs = Lookups::new(&tx, "registrations")?;
            for (i, row) in rows.iter().enumerate() {
                let (r, _) = &row;
                let reg = r.registration_id.filter(|_| refs);
                if let Some(problem) = regs.unknown("registration_id", "registration", reg)? {
                    refused.push((i, problem));
                    continue;
                }
                let no = line(i) as i64;
                bind_transaction(&mut ins, &row)?;
                ins.raw_bind_parameter(20, no)?;
                ins.raw_execute()?;
                if r.original_transaction_id.is_some() {
                    refund.raw_bind_parameter(1, no)?;
                    refund.raw_execute()?;
                }
                c.inserted += 1;
            }
        }
        tx.commit()?;
        Ok((c, refused))
    }

    /// Ends a keyless load ([`Store::drop_transaction_key`]): builds the key index —
    /// when the load wrote an id twice, the later rows are removed first — then
    /// removes each refund whose sale is stored nowhere (again, while that removes
    /// more: a refund of a removed refund). Returns what it removed, by line.
    pub fn build_transaction_key(&mut self) -> Result<KeyBuild> {
        let mut out = KeyBuild::default();
        // Sorted as end_bulk_import sorts, then back to the load's page cache.
        self.conn.execute_batch(INDEX_SORT)?;
        let built = self.build_transaction_key_in(&mut out);
        self.conn
            .execute_batch(&format!("PRAGMA threads=0; {BULK_LOAD_CACHE}"))?;
        built?;
        Ok(out)
    }

    fn build_transaction_key_in(&mut self, out: &mut KeyBuild) -> Result<()> {
        // The key, in a transaction of its own: once committed, an interrupted
        // import no longer needs to rebuild it.
        let t0 = Instant::now();
        let tx = self.write_tx()?;
        match tx.execute_batch(TX_KEY_INDEX) {
            Ok(()) => {}
            Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation) => {
                out.repeated = delete_repeated_transaction_ids(&tx)?
                    .into_iter()
                    .map(|(rowid, id, first)| (rowid as usize, id, first as usize))
                    .collect();
                tx.execute_batch(TX_KEY_INDEX)?;
            }
            Err(e) => return Err(e.into()),
        }
        let saved = dropped_indexes(&tx)?;
        let rest: Vec<&str> = saved
            .iter()
            .map(String::as_str)
            .filter(|s| *s != TX_KEY_INDEX)
            .collect();
        save_dropped_indexes(&tx, &rest)?;
        tx.commit()?;
        out.index = t0.elapsed();
        // Then the refunds. (Should the import stop before this commits, a refund of
        // a missing sale stays stored; importing the folder again rejects its line.)
        let tx = self.write_tx()?;
        loop {
            let orphans: Vec<(i64, String)> = tx
                .prepare_cached(
                    "SELECT t.rowid, t.original_transaction_id
                     FROM temp.import_refunds r CROSS JOIN transactions t ON t.rowid = r.line
                     WHERE NOT EXISTS (SELECT 1 FROM transactions s
                                       WHERE s.transaction_id = t.original_transaction_id)
                     ORDER BY r.line",
                )?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            if orphans.is_empty() {
                break;
            }
            delete_transaction_rows(&tx, orphans.iter().map(|(rowid, _)| *rowid))?;
            out.orphans
                .extend(orphans.into_iter().map(|(r, id)| (r as usize, id)));
        }
        out.orphans.sort();
        tx.execute_batch("DELETE FROM temp.import_refunds")?;
        tx.commit()?;
        Ok(())
    }

    /// The import's transaction writer (see [`BulkMode`]); with checks, a row naming
    /// a registration or an original sale that is not stored is refused.
    pub fn write_transaction_batch(
        &mut self,
        rows: &TxBatch,
        mode: BulkMode,
    ) -> Result<(UpsertCounts, Refused)> {
        self.write_transactions(rows.iter(), mode)
    }

    fn write_transactions<'r>(
        &mut self,
        rows: impl Iterator<Item = (TxRow<'r>, &'r str)>,
        mode: BulkMode,
    ) -> Result<(UpsertCounts, Refused)> {
        let now = now_rfc3339();
        let tx = self.write_tx()?;
        let out = {
            let mut regs = Lookups::new(&tx, "registrations")?;
            let mut sales = Lookups::new(&tx, "transactions")?;
            write_rows(
                &tx,
                "transactions",
                rows,
                mode,
                (TX_INSERT, TX_UPDATE),
                // `updated_at` (?19): the same for the whole batch.
                Some((19, &now)),
                bind_transaction,
                ("transaction_id", |(r, _)| r.transaction_id),
                &mut |(r, _)| {
                    let reg = r.registration_id.filter(|_| mode.refs);
                    match regs.unknown("registration_id", "registration", reg)? {
                        Some(problem) => Ok(Some(problem)),
                        None => sales.unknown(
                            "original_transaction_id",
                            "transaction",
                            r.original_transaction_id,
                        ),
                    }
                },
            )?
        };
        tx.commit()?;
        Ok(out)
    }

    /// Keeps rejected input rows (with their raw text). A row already quarantined
    /// (same source, line and raw text) is not added twice.
    pub fn quarantine(&mut self, rows: &[Rejection]) -> Result<usize> {
        let now = now_rfc3339();
        let tx = self.write_tx()?;
        let mut n = 0;
        {
            let mut st = tx.prepare_cached(
                "INSERT INTO quarantine (source, line, field, error, raw, received_at)
                 SELECT ?1, ?2, ?3, ?4, ?5, ?6
                 WHERE NOT EXISTS (SELECT 1 FROM quarantine
                                   WHERE source = ?1 AND line IS ?2 AND raw = ?5)",
            )?;
            let mut bytes = tx.prepare_cached(
                "INSERT OR REPLACE INTO quarantine_raw (quarantine_id, raw_bytes) VALUES (?1, ?2)",
            )?;
            for r in rows {
                let added =
                    st.execute(params![r.file, r.line as i64, r.field, r.error, r.raw, now])?;
                n += added;
                if let (1, Some(b)) = (added, &r.raw_bytes) {
                    bytes.execute(params![tx.last_insert_rowid(), b])?;
                }
            }
        }
        tx.commit()?;
        Ok(n)
    }

    /// Every quarantined row, oldest first.
    pub fn quarantined(&self) -> Result<Vec<Rejection>> {
        let mut st = self.conn.prepare(
            "SELECT q.source, q.line, q.field, q.error, q.raw, r.raw_bytes FROM quarantine q
             LEFT JOIN quarantine_raw r ON r.quarantine_id = q.id ORDER BY q.id",
        )?;
        let rows = st
            .query_map([], |r| {
                Ok(Rejection {
                    file: r.get(0)?,
                    line: r.get::<_, Option<i64>>(1)?.unwrap_or(0).max(0) as usize,
                    field: r.get(2)?,
                    error: r.get(3)?,
                    raw: r.get(4)?,
                    raw_bytes: r.get(5)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    pub fn program(&self) -> Result<Option<Program>> {
        let row = self
            .conn
            .query_row(
                "SELECT program_id, name, currency, fiscal_year_start_month, as_of, review_start, review_end
                 FROM program WHERE id = 1",
                [],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, String>(4)?,
                        r.get::<_, String>(5)?,
                        r.get::<_, String>(6)?,
                    ))
                },
            )
            .optional()?;
        let Some((program_id, name, currency, fy, as_of, start, end)) = row else {
            return Ok(None);
        };
        Ok(Some(Program {
            program_id,
            name,
            currency,
            fiscal_year_start_month: u32::try_from(fy)
                .map_err(|_| corrupt("program.fiscal_year_start_month", &fy.to_string()))?,
            as_of: date("program.as_of", &as_of)?,
            review_window: ReviewWindow {
                start: date("program.review_start", &start)?,
                end: date("program.review_end", &end)?,
            },
        }))
    }

    pub fn plan(&self) -> Result<Option<Plan>> {
        let text: Option<String> = self
            .conn
            .query_row("SELECT json FROM plan WHERE id = 1", [], |r| r.get(0))
            .optional()?;
        text.map(|s| json("plan.json", &s)).transpose()
    }

    pub fn tiers(&self) -> Result<Vec<Tier>> {
        let mut st = self
            .conn
            .prepare("SELECT tier_id, name, rank FROM tiers ORDER BY rowid")?;
        let rows = st
            .query_map([], |r| {
                Ok(Tier {
                    tier_id: r.get(0)?,
                    name: r.get(1)?,
                    rank: r.get(2)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    pub fn products(&self) -> Result<Vec<Product>> {
        let mut st = self.conn.prepare(
            "SELECT sku, name, family, list_price, certification_required, active FROM products ORDER BY rowid",
        )?;
        let raw: Vec<(String, String, String, String, Option<String>, bool)> = st
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })?
            .collect::<rusqlite::Result<_>>()?;
        raw.into_iter()
            .map(|(sku, name, family, lp, cert, active)| {
                Ok(Product {
                    list_price: dec("products.list_price", &lp)?,
                    sku,
                    name,
                    family,
                    certification_required: cert,
                    active,
                })
            })
            .collect()
    }

    pub fn discount_policy(&self) -> Result<Vec<DiscountPolicy>> {
        let mut st = self.conn.prepare(
            "SELECT tier_id, family, max_discount_pct FROM discount_policy ORDER BY rowid",
        )?;
        let raw: Vec<(String, String, String)> = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<rusqlite::Result<_>>()?;
        raw.into_iter()
            .map(|(tier_id, family, pct)| {
                Ok(DiscountPolicy {
                    max_discount_pct: dec("discount_policy.max_discount_pct", &pct)?,
                    tier_id,
                    family,
                })
            })
            .collect()
    }

    fn partners_where(&self, clause: &str, p: &[&dyn rusqlite::ToSql]) -> Result<Vec<Partner>> {
        let mut st = self.conn.prepare(&format!(
            "SELECT partner_id, name, kind, parent_partner_id, region, country, joined_on,
                    certifications, tax_id, bank_account FROM partners {clause}"
        ))?;
        type Raw = (
            String,
            String,
            String,
            Option<String>,
            String,
            Option<String>,
            String,
            String,
            Option<String>,
            Option<String>,
        );
        let raw: Vec<Raw> = st
            .query_map(p, |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                    r.get(8)?,
                    r.get(9)?,
                ))
            })?
            .collect::<rusqlite::Result<_>>()?;
        raw.into_iter()
            .map(
                |(partner_id, name, kind, parent, region, country, joined, certs, tax, bank)| {
                    Ok(Partner {
                        kind: match kind.as_str() {
                            "distributor" => PartnerKind::Distributor,
                            "reseller" => PartnerKind::Reseller,
                            other => return Err(corrupt("partners.kind", other)),
                        },
                        parent_partner_id: parent,
                        region,
                        country,
                        joined_on: date("partners.joined_on", &joined)?,
                        certifications: json("partners.certifications", &certs)?,
                        tax_id: tax.and_then(|t| self.open_lenient(&partner_id, "tax_id", &t)),
                        bank_account: match bank
                            .and_then(|b| self.open_lenient(&partner_id, "bank_account", &b))
                        {
                            Some(b) => Some(json("partners.bank_account", &b)?),
                            None => None,
                        },
                        partner_id,
                        name,
                    })
                },
            )
            .collect()
    }

    /// A sealed value for the data-set reader: what cannot be opened (no key, another
    /// key) is left out with a warning, so detection and everything else still work;
    /// `tierdesk doctor` and the payout file say what cannot be read.
    fn open_lenient(&self, partner: &str, field: &str, stored: &str) -> Option<String> {
        match self.open_value(field, stored) {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::warn!(partner, field, error = %e, "partner value not readable");
                None
            }
        }
    }

    /// How partner tax ids and bank details are kept, for `tierdesk doctor`: sealed
    /// (and whether this machine has the key to read them), readable from before
    /// sealing, or masked (imported without a key).
    pub fn secret_status(&self) -> Result<String> {
        let values: Vec<String> = self
            .conn
            .prepare(
                "SELECT tax_id FROM partners WHERE tax_id IS NOT NULL
                 UNION ALL SELECT bank_account FROM partners WHERE bank_account IS NOT NULL",
            )?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        if values.is_empty() {
            return Ok("no tax ids or bank details stored".into());
        }
        let sealed: Vec<&String> = values
            .iter()
            .filter(|v| super::secret::is_sealed(v))
            .collect();
        let masked = values
            .iter()
            .filter(|v| !super::secret::is_sealed(v) && v.contains("****"))
            .count();
        let plain = values.len() - sealed.len() - masked;
        let mut parts = Vec::new();
        if !sealed.is_empty() {
            let key = match super::secret::load_key(false) {
                Ok((k, src)) => match sealed.iter().find(|v| {
                    k.open("tax_id", v).is_err() && k.open("bank_account", v).is_err()
                }) {
                    None => format!("readable with the {}", src.describe()),
                    Some(_) => format!(
                        "NOT readable with the {} (another key sealed them): payouts cannot use them",
                        src.describe()
                    ),
                },
                Err(e) => format!("NOT readable here: {e}"),
            };
            parts.push(format!(
                "{} value{} encrypted at rest (ChaCha20-Poly1305), {key}",
                sealed.len(),
                if sealed.len() == 1 { "" } else { "s" }
            ));
        }
        if masked > 0 {
            parts.push(format!(
                "{masked} stored masked only (imported without a cache key: import again with one)"
            ));
        }
        if plain > 0 {
            parts.push(format!(
                "{plain} stored readable (from before encryption: import or sync again to seal them)"
            ));
        }
        Ok(parts.join("; "))
    }

    pub fn partners(&self) -> Result<Vec<Partner>> {
        self.partners_where("ORDER BY rowid", &[])
    }

    pub fn get_partner(&self, id: &str) -> Result<Option<Partner>> {
        Ok(self
            .partners_where("WHERE partner_id = ?1", &[&id])?
            .into_iter()
            .next())
    }

    pub fn tier_history(&self) -> Result<Vec<TierHistory>> {
        let mut st = self.conn.prepare(
            "SELECT partner_id, tier_id, effective_from FROM tier_history ORDER BY rowid",
        )?;
        let raw: Vec<(String, String, String)> = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<rusqlite::Result<_>>()?;
        raw.into_iter()
            .map(|(partner_id, tier_id, from)| {
                Ok(TierHistory {
                    effective_from: date("tier_history.effective_from", &from)?,
                    partner_id,
                    tier_id,
                })
            })
            .collect()
    }

    /// The ERP invoices, or `None` when none were ever imported (the ERP check then
    /// says "not evaluated").
    pub fn erp_invoices(&self) -> Result<Option<Vec<ErpInvoice>>> {
        let raw = self.six_texts(
            "SELECT invoice_number, customer_name, partner_id, invoice_date, currency, lines \
             FROM erp_invoices ORDER BY rowid",
        )?;
        if raw.is_empty() {
            return Ok(None);
        }
        raw.into_iter()
            .map(
                |(invoice_number, customer_name, partner_id, day, currency, lines)| {
                    let lines: Vec<ErpLine> = serde_json::from_str(&lines).map_err(|e| {
                        StoreError::Corrupt(format!(
                            "erp_invoices.lines of invoice {invoice_number}: {e}"
                        ))
                    })?;
                    Ok(ErpInvoice {
                        invoice_date: date("erp_invoices.invoice_date", &day)?,
                        invoice_number,
                        customer_name,
                        partner_id,
                        currency,
                        lines,
                    })
                },
            )
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }

    pub fn quotas(&self) -> Result<Vec<Quota>> {
        let mut st = self
            .conn
            .prepare("SELECT partner_id, period, quota FROM quotas ORDER BY rowid")?;
        let raw: Vec<(String, String, String)> = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<rusqlite::Result<_>>()?;
        raw.into_iter()
            .map(|(partner_id, period, q)| {
                Ok(Quota {
                    quota: dec("quotas.quota", &q)?,
                    partner_id,
                    period,
                })
            })
            .collect()
    }

    pub fn registrations(&self) -> Result<Vec<Registration>> {
        let mut st = self.conn.prepare(
            "SELECT registration_id, partner_id, customer_name, expected_amount, registered_on,
                    expires_on, status FROM registrations ORDER BY rowid",
        )?;
        type Raw = (String, String, String, String, String, String, String);
        let raw: Vec<Raw> = st
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
        raw.into_iter()
            .map(|(id, partner_id, customer, amount, reg, exp, status)| {
                Ok(Registration {
                    registration_id: id,
                    partner_id,
                    customer_name: customer,
                    expected_amount: dec("registrations.expected_amount", &amount)?,
                    registered_on: date("registrations.registered_on", &reg)?,
                    expires_on: date("registrations.expires_on", &exp)?,
                    status: match status.as_str() {
                        "approved" => RegistrationStatus::Approved,
                        "rejected" => RegistrationStatus::Rejected,
                        "expired" => RegistrationStatus::Expired,
                        other => return Err(corrupt("registrations.status", other)),
                    },
                })
            })
            .collect()
    }

    /// Every transaction, in the order it was first imported.
    pub fn transactions(&self) -> Result<Vec<Transaction>> {
        let mut st = self.conn.prepare(&format!("{TX_SELECT} ORDER BY rowid"))?;
        let raw: Vec<[Option<String>; 17]> = st
            .query_map([], tx_from_row)?
            .collect::<rusqlite::Result<_>>()?;
        raw.into_iter().map(tx_from_strings).collect()
    }

    pub fn get_transaction(&self, id: &str) -> Result<Option<Transaction>> {
        let raw = self
            .conn
            .query_row(
                &format!("{TX_SELECT} WHERE transaction_id = ?1"),
                [id],
                tx_from_row,
            )
            .optional()?;
        raw.map(tx_from_strings).transpose()
    }

    /// The stored `row_hash` of a transaction (see [`transaction_hash`]).
    pub fn transaction_row_hash(&self, id: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row(
                "SELECT row_hash FROM transactions WHERE transaction_id = ?1",
                [id],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// The stored `record_version` of a transaction.
    pub fn transaction_record_version(&self, id: &str) -> Result<Option<i64>> {
        Ok(self
            .conn
            .query_row(
                "SELECT record_version FROM transactions WHERE transaction_id = ?1",
                [id],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// The rows of a query selecting six text columns.
    fn six_texts(&self, sql: &str) -> Result<Vec<SixTexts>> {
        let mut st = self.conn.prepare(sql)?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    pub fn commissions(&self) -> Result<Vec<CommissionLine>> {
        let raw = self.six_texts(
            "SELECT commission_id, transaction_id, payee_partner_id, role, amount, period
             FROM commissions ORDER BY rowid",
        )?;
        raw.into_iter()
            .map(|(id, tx, payee, role, amount, period)| {
                Ok(CommissionLine {
                    commission_id: id,
                    transaction_id: tx,
                    payee_partner_id: payee,
                    role: match role.as_str() {
                        "seller" => CommissionRole::Seller,
                        "override" => CommissionRole::Override,
                        "spiff" => CommissionRole::Spiff,
                        "clawback" => CommissionRole::Clawback,
                        other => return Err(corrupt("commissions.role", other)),
                    },
                    amount: dec("commissions.amount", &amount)?,
                    period,
                })
            })
            .collect()
    }

    /// The whole program back as domain types (as `import::load_dataset(dir)` gives it).
    pub fn load_dataset(&self) -> Result<Dataset> {
        let program = self.program()?.ok_or_else(|| {
            StoreError::Corrupt("the cache holds no program yet: run `tierdesk import DIR`".into())
        })?;
        let plan = self.plan()?.ok_or_else(|| {
            StoreError::Corrupt("the cache holds no plan yet: run `tierdesk import DIR`".into())
        })?;
        Ok(Dataset {
            program,
            plan,
            tiers: self.tiers()?,
            products: self.products()?,
            discount_policy: self.discount_policy()?,
            partners: self.partners()?,
            tier_history: self.tier_history()?,
            quotas: self.quotas()?,
            registrations: self.registrations()?,
            transactions: self.transactions()?,
            commissions: self.commissions()?,
            erp_invoices: self.erp_invoices()?,
        })
    }

    /// Ids of one stored entity (the import checks references against these).
    /// `what` is one of: tiers, products, partners, registrations, transactions, commissions.
    pub fn stored_ids(&self, what: &str, each: &mut dyn FnMut(&str)) -> Result<()> {
        let sql = match what {
            "tiers" => "SELECT tier_id FROM tiers",
            "products" => "SELECT sku FROM products",
            "partners" => "SELECT partner_id FROM partners",
            "registrations" => "SELECT registration_id FROM registrations",
            "transactions" => "SELECT transaction_id FROM transactions",
            "commissions" => "SELECT commission_id FROM commissions",
            other => return Err(StoreError::Corrupt(format!("no id list for {other}"))),
        };
        let mut st = self.conn.prepare(sql)?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let s: rusqlite::types::ValueRef<'_> = r.get_ref(0)?;
            if let rusqlite::types::ValueRef::Text(b) = s {
                each(&String::from_utf8_lossy(b));
            }
        }
        Ok(())
    }

    /// Row count of one of the data-set tables.
    pub fn count_rows(&self, table: &str) -> Result<i64> {
        const KNOWN: &[&str] = &[
            "program",
            "plan",
            "tiers",
            "products",
            "discount_policy",
            "partners",
            "tier_history",
            "quotas",
            "registrations",
            "transactions",
            "commissions",
            "quarantine",
        ];
        if !KNOWN.contains(&table) {
            return Err(StoreError::Corrupt(format!("unknown table {table}")));
        }
        Ok(self
            .conn
            .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))?)
    }

    /// Starts a bulk import: `synchronous=NORMAL` (WAL stays crash-safe), a larger
    /// page cache, and — for tables that are empty now — their secondary indexes
    /// dropped (remembered in `sync_state` so an interrupted import is repaired by
    /// the next one). Returns the names of the indexes dropped.
    pub fn begin_bulk_import(&mut self) -> Result<Vec<String>> {
        self.restore_dropped_indexes()?;
        // Rare automatic checkpoints while bulk loading: each one makes the writer
        // wait for fsyncs of the WAL and the database (measured: a 1M-transaction
        // load took 5.5 s with one per 160 MiB, 3.7-4.4 s with none). The WAL holds
        // what the import writes (committed rows are readable and safe in it) until
        // it reaches 1 GiB, which bounds the extra disk space, or `end_bulk_import`
        // checkpoints it.
        let page: i64 = self.conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
        self.conn.execute_batch(&format!(
            "PRAGMA synchronous=NORMAL; {BULK_LOAD_CACHE} PRAGMA wal_autocheckpoint={};",
            (1i64 << 30) / page.max(512)
        ))?;
        // The keys a re-import has written (see `BulkMode::checks`), in a temporary
        // file rather than in memory.
        self.conn.execute_batch(
            "PRAGMA temp_store=FILE;
             CREATE TEMP TABLE IF NOT EXISTS import_seen (
                 entity TEXT NOT NULL, id TEXT NOT NULL, PRIMARY KEY (entity, id)
             ) WITHOUT ROWID;
             DELETE FROM temp.import_seen;
             CREATE TEMP TABLE IF NOT EXISTS import_refunds (line INTEGER PRIMARY KEY);
             DELETE FROM temp.import_refunds;",
        )?;
        let tx = self.write_tx()?;
        let mut dropped: Vec<(String, String)> = Vec::new();
        for table in BULK_TABLES {
            let empty: bool = tx.query_row(
                &format!("SELECT NOT EXISTS (SELECT 1 FROM {table})"),
                [],
                |r| r.get(0),
            )?;
            if !empty {
                continue;
            }
            let mut st = tx.prepare(
                "SELECT name, sql FROM sqlite_master
                 WHERE type = 'index' AND tbl_name = ?1 AND sql IS NOT NULL
                   AND sql NOT LIKE 'CREATE UNIQUE%'",
            )?;
            let idx: Vec<(String, String)> = st
                .query_map([table], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            dropped.extend(idx);
        }
        if !dropped.is_empty() {
            let sqls: Vec<&str> = dropped.iter().map(|(_, s)| s.as_str()).collect();
            save_dropped_indexes(&tx, &sqls)?;
            for (name, _) in &dropped {
                tx.execute_batch(&format!("DROP INDEX IF EXISTS \"{name}\""))?;
            }
        }
        tx.commit()?;
        Ok(dropped.into_iter().map(|(n, _)| n).collect())
    }

    /// A [`Reader`] on this cache (`None` for an in-memory one).
    pub fn reader(&self) -> Option<Reader> {
        if self.path.as_os_str() == ":memory:" {
            return None;
        }
        let conn = rusqlite::Connection::open_with_flags(
            &self.path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .ok()?;
        conn.busy_timeout(Duration::from_secs(30)).ok()?;
        // A small cache: lookups of one batch touch a few pages each, and with 8 MiB
        // an import's memory grew by 30+ MiB over a long file (measured on 6M).
        conn.execute_batch("PRAGMA cache_size=-2048").ok()?;
        Some(Reader {
            conn,
            last_found: Default::default(),
        })
    }

    /// Ends a bulk import: rebuilds the indexes it dropped, restores
    /// `synchronous=FULL` and checkpoints the WAL (each step timed).
    pub fn end_bulk_import(&mut self) -> Result<BulkEnd> {
        // Sort for the index build in temporary files, not in memory (flat memory),
        // on two threads (the import's parsing thread is idle by now).
        self.conn.execute_batch(&format!(
            "DROP TABLE IF EXISTS temp.import_seen; DROP TABLE IF EXISTS temp.import_refunds;
             PRAGMA temp_store=FILE; {INDEX_SORT}"
        ))?;
        let rebuilt = self.rebuild_dropped_indexes();
        self.conn
            .execute_batch("PRAGMA temp_store=MEMORY; PRAGMA threads=0;")?;
        let indexes = rebuilt?;
        let t0 = Instant::now();
        self.conn.execute_batch(
            "PRAGMA synchronous=FULL; PRAGMA cache_size=-2000; PRAGMA wal_autocheckpoint=1000;
             PRAGMA wal_checkpoint(PASSIVE);",
        )?;
        Ok(BulkEnd {
            indexes,
            checkpoint: t0.elapsed(),
        })
    }

    /// Recreates indexes a bulk import dropped and has not rebuilt (also repairs a
    /// cache whose import was interrupted). Returns how many it built.
    pub fn restore_dropped_indexes(&mut self) -> Result<usize> {
        Ok(self.rebuild_dropped_indexes()?.len())
    }

    /// [`Store::restore_dropped_indexes`] with each index's name and build time.
    fn rebuild_dropped_indexes(&mut self) -> Result<Vec<(String, Duration)>> {
        let sqls = dropped_indexes(&self.conn)?;
        if sqls.is_empty() {
            return Ok(Vec::new());
        }
        let tx = self.write_tx()?;
        let mut built = Vec::with_capacity(sqls.len());
        for sql in &sqls {
            let sql = if sql.contains("IF NOT EXISTS") {
                sql.clone()
            } else {
                sql.replacen("INDEX", "INDEX IF NOT EXISTS", 1)
            };
            let t0 = Instant::now();
            if sql == TX_KEY_INDEX {
                // A keyless load interrupted before its key was built may have left
                // repeated ids: the first row of each is kept (the import that wrote
                // them never finished; running it again reports those lines).
                let gone = delete_repeated_transaction_ids(&tx)?;
                if !gone.is_empty() {
                    tracing::warn!(
                        rows = gone.len(),
                        "removed repeated transaction ids left by an interrupted import"
                    );
                }
            }
            tx.execute_batch(&sql)?;
            built.push((index_name(&sql), t0.elapsed()));
        }
        save_dropped_indexes(&tx, &[])?;
        tx.commit()?;
        Ok(built)
    }

    /// A digest of every row of the data-set tables (for tests and `doctor`):
    /// equal digests mean equal contents.
    pub fn dataset_digest(&self) -> Result<String> {
        let mut h = Sha256::new();
        for table in [
            "program",
            "plan",
            "tiers",
            "products",
            "discount_policy",
            "partners",
            "tier_history",
            "quotas",
            "registrations",
            "transactions",
            "commissions",
            "quarantine",
        ] {
            let mut st = self
                .conn
                .prepare(&format!("SELECT * FROM {table} ORDER BY rowid"))?;
            let n = st.column_count();
            let mut rows = st.query([])?;
            h.update(table.as_bytes());
            while let Some(r) = rows.next()? {
                for k in 0..n {
                    let v = match r.get_ref(k)? {
                        rusqlite::types::ValueRef::Null => "\u{0}N".to_string(),
                        rusqlite::types::ValueRef::Integer(x) => x.to_string(),
                        rusqlite::types::ValueRef::Real(x) => x.to_string(),
                        rusqlite::types::ValueRef::Text(b) | rusqlite::types::ValueRef::Blob(b) => {
                            String::from_utf8_lossy(b).into_owned()
                        }
                    };
                    h.update((v.len() as u64).to_le_bytes());
                    h.update(v.as_bytes());
                }
            }
        }
        Ok(hex::encode(h.finalize()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A transaction line of partner P1 and product S1 (`reg`, `orig`: JSON values;
    /// a refund when `orig` is not null).
    fn tx_line(id: &str, reg: &str, orig: &str) -> String {
        format!(
            r#"{{"transaction_id":"{id}","kind":"{kind}","original_transaction_id":{orig},"partner_id":"P1","registration_id":{reg},"customer_name":"Acme","sku":"S1","quantity":{sign}1,"unit_list_price":"10.0","unit_net_price":"9.5","amount":"{sign}9.5","currency":"USD","closed_on":"2024-10-01","submitted_at":"2024-10-01T08:31:40Z","invoice_number":"INV-1","notes":null}}"#,
            kind = if orig == "null" { "sale" } else { "refund" },
            sign = if orig == "null" { "" } else { "-" }
        )
    }

    /// A validator leaving id checks to the store, knowing partner P1 and product S1.
    fn checking_validator() -> crate::import::parse::Validator {
        let mut v = crate::import::parse::Validator::default();
        v.store_checks = true;
        v.partners.add_known("P1");
        v.products.add_known("S1");
        v
    }

    fn rowid_of(s: &Store, id: &str) -> i64 {
        s.conn
            .query_row(
                "SELECT rowid FROM transactions WHERE transaction_id = ?1",
                [id],
                |r| r.get(0),
            )
            .unwrap()
    }

    fn index_names(s: &Store) -> Vec<String> {
        let mut st = s
            .conn
            .prepare("SELECT name FROM sqlite_master WHERE type='index' AND sql IS NOT NULL ORDER BY name")
            .unwrap();
        st.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    #[test]
    fn upsert_counts_inserted_updated_unchanged() {
        let mut s = Store::open_in_memory().unwrap();
        let tiers = vec![
            Tier {
                tier_id: "a".into(),
                name: "A".into(),
                rank: 1,
            },
            Tier {
                tier_id: "b".into(),
                name: "B".into(),
                rank: 2,
            },
        ];
        assert_eq!(s.upsert_tiers(&tiers).unwrap().inserted, 2);
        let mut changed = tiers.clone();
        changed[1].name = "Bee".into();
        let c = s.upsert_tiers(&changed).unwrap();
        assert_eq!((c.inserted, c.updated, c.unchanged), (0, 1, 1));
        assert_eq!(s.tiers().unwrap(), changed);
    }

    #[test]
    fn prepared_hash_equals_transaction_hash_and_changes_with_the_row() {
        let line = r#"{"transaction_id":"T1","kind":"sale","original_transaction_id":null,"partner_id":"P1","registration_id":null,"customer_name":"Acme","sku":"S1","quantity":2,"unit_list_price":"10.50","unit_net_price":"9.5","amount":"19.00","currency":"USD","closed_on":"2024-10-01","submitted_at":"2024-10-01T08:31:40Z","invoice_number":"INV-1","notes":null}"#;
        let mut v = crate::import::parse::Validator::default();
        v.partners.add_known("P1");
        v.products.add_known("S1");
        let p = v.transaction_prepared(line, 1).unwrap();
        assert_eq!(p.row_hash, transaction_hash(&p.tx));
        assert_eq!(p.row_hash, PreparedTransaction::new(p.tx.clone()).row_hash);
        // The same values written differently hash the same; a changed value does not.
        let other = line
            .replace("\"10.50\"", "\"10.5\"")
            .replace("08:31:40Z", "10:31:40+02:00")
            .replace("\"T1\"", "\"T2\"");
        let q = v.transaction_prepared(&other, 2).unwrap();
        let mut same = q.tx.clone();
        same.transaction_id = "T1".into();
        assert_eq!(transaction_hash(&same), p.row_hash);
        assert_eq!(q.row_hash, transaction_hash(&q.tx));
        let mut changed = p.tx.clone();
        changed.amount = Decimal::new(1901, 2);
        assert_ne!(transaction_hash(&changed), p.row_hash);
    }

    #[test]
    fn fresh_table_fast_path_stores_what_the_upsert_stores() {
        let line = |id: &str, amount: &str| {
            format!(
                r#"{{"transaction_id":"{id}","kind":"sale","original_transaction_id":null,"partner_id":"P1","registration_id":null,"customer_name":"Acme","sku":"S1","quantity":1,"unit_list_price":"{amount}","unit_net_price":"{amount}","amount":"{amount}","currency":"USD","closed_on":"2024-10-01","submitted_at":"2024-10-01T08:31:40Z","invoice_number":"INV-1","notes":"n"}}"#
            )
        };
        let mut v = crate::import::parse::Validator::default();
        v.partners.add_known("P1");
        v.products.add_known("S1");
        // A hundred-odd rows through the import's batch (fresh table: plain inserts)
        // and, prepared one by one as the sync does, through the upsert.
        let mut batch = TxBatch::default();
        for k in 0..130 {
            v.transaction_into(
                &line(&format!("T{k}"), &format!("{k}.5")),
                k + 1,
                &mut batch,
            )
            .unwrap();
        }
        let mut v2 = crate::import::parse::Validator::default();
        v2.partners.add_known("P1");
        v2.products.add_known("S1");
        let rows: Vec<PreparedTransaction> = (0..130)
            .map(|k| {
                v2.transaction_prepared(&line(&format!("T{k}"), &format!("{k}.5")), k + 1)
                    .unwrap()
            })
            .collect();
        let mut fast = Store::open_in_memory().unwrap();
        let mut slow = Store::open_in_memory().unwrap();
        assert!(fast.bulk_table_is_empty("transactions").unwrap());
        let fresh = BulkMode {
            fresh: true,
            checks: true,
            refs: true,
        };
        let (c, refused) = fast.write_transaction_batch(&batch, fresh).unwrap();
        assert_eq!((c.inserted, c.unchanged), (130, 0));
        assert!(refused.is_empty());
        slow.upsert_prepared_transactions(&rows).unwrap();
        assert!(!fast.bulk_table_is_empty("transactions").unwrap());
        assert_eq!(fast.transactions().unwrap(), slow.transactions().unwrap());
        assert_eq!(
            fast.transaction_row_hash("T129").unwrap(),
            slow.transaction_row_hash("T129").unwrap()
        );
        assert_eq!(fast.transaction_record_version("T7").unwrap(), Some(1));
        // Re-upserting the same rows changes nothing, either way.
        let again = fast.upsert_prepared_transactions(&rows).unwrap();
        assert_eq!(
            (again.inserted, again.updated, again.unchanged),
            (0, 0, 130)
        );
        let (again, _) = slow
            .write_transaction_batch(&batch, BulkMode::UPSERT)
            .unwrap();
        assert_eq!(
            (again.inserted, again.updated, again.unchanged),
            (0, 0, 130)
        );
        // A changed row is updated (version bumped), a new one inserted.
        let mut v3 = crate::import::parse::Validator::default();
        v3.partners.add_known("P1");
        v3.products.add_known("S1");
        let mut newer = TxBatch::default();
        v3.transaction_into(&line("T7", "99.99"), 1, &mut newer)
            .unwrap();
        v3.transaction_into(&line("T7000", "1.0"), 2, &mut newer)
            .unwrap();
        let (c, _) = slow
            .write_transaction_batch(&newer, BulkMode::UPSERT)
            .unwrap();
        assert_eq!((c.inserted, c.updated, c.unchanged), (1, 1, 0));
        assert_eq!(slow.transaction_record_version("T7").unwrap(), Some(2));
        let t7 = slow.get_transaction("T7").unwrap().unwrap();
        assert_eq!(t7.amount, Decimal::new(9999, 2));
        assert_eq!(
            slow.transaction_row_hash("T7").unwrap().unwrap(),
            transaction_hash(&t7)
        );
    }

    /// With checks, the store refuses (and does not write) a key this import already
    /// wrote and a reference to a row that is not stored; the rest is written.
    #[test]
    fn checked_batches_refuse_repeated_keys_and_unknown_references() {
        let line = tx_line;
        let mut v = checking_validator();
        for fresh in [true, false] {
            let mut s = Store::open_in_memory().unwrap();
            s.begin_bulk_import().unwrap();
            if !fresh {
                let mut old = TxBatch::default();
                v.transaction_into(&line("T0", "null", "null"), 1, &mut old)
                    .unwrap();
                s.write_transaction_batch(&old, BulkMode::UPSERT).unwrap();
            }
            let mut b = TxBatch::default();
            for l in [
                line("T1", "null", "null"),
                line("T1", "null", "null"),    // repeated: refused
                line("T2", "\"R9\"", "null"),  // no such registration
                line("T3", "null", "\"T1\""),  // refund of T1: fine
                line("T4", "null", "\"T99\""), // refund of nothing
                line("T0", "null", "null"),    // stored before this import: updated/unchanged
            ] {
                v.transaction_into(&l, 1, &mut b).unwrap();
            }
            let mode = BulkMode {
                fresh,
                checks: true,
                refs: true,
            };
            let (c, refused) = s.write_transaction_batch(&b, mode).unwrap();
            let problems: Vec<(usize, RowProblem)> = refused;
            assert_eq!(
                problems,
                vec![
                    (
                        1,
                        RowProblem::Duplicate {
                            field: "transaction_id",
                            id: "T1".into(),
                            first: None,
                        }
                    ),
                    (
                        2,
                        RowProblem::Unknown {
                            field: "registration_id",
                            what: "registration",
                            id: "R9".into()
                        }
                    ),
                    (
                        4,
                        RowProblem::Unknown {
                            field: "original_transaction_id",
                            what: "transaction",
                            id: "T99".into()
                        }
                    ),
                ],
                "fresh: {fresh}"
            );
            let expect_t0 = if fresh { (3, 0, 0) } else { (2, 0, 1) };
            assert_eq!(
                (c.inserted, c.updated, c.unchanged),
                expect_t0,
                "fresh: {fresh}"
            );
            // A second batch of the same import: T1 is still taken.
            let mut again = TxBatch::default();
            v.transaction_into(&line("T1", "null", "null"), 9, &mut again)
                .unwrap();
            let (_, refused) = s.write_transaction_batch(&again, mode).unwrap();
            assert_eq!(refused.len(), 1, "fresh: {fresh}");
            s.end_bulk_import().unwrap();
            // T0, T1 and T3, either way.
            assert_eq!(s.count_rows("transactions").unwrap(), 3, "fresh: {fresh}");
        }
    }

    /// A keyless load writes every row (each at its line), then the key build
    /// removes and reports the later rows of a repeated id and the refunds of sales
    /// stored nowhere (a refund of such a refund too); a registration that is not
    /// stored is refused while writing.
    #[test]
    fn keyless_load_finds_repeated_ids_and_orphan_refunds_when_the_key_is_built() {
        let line = tx_line;
        let mut v = checking_validator();
        let mut s = Store::open_in_memory().unwrap();
        let dropped = s.begin_bulk_import().unwrap();
        // The generic drop (also the sync's) keeps the key: its upserts need it.
        assert!(!dropped.iter().any(|n| n == "idx_tx_id"), "{dropped:?}");
        assert!(s.drop_transaction_key().unwrap());
        assert!(!index_names(&s).contains(&"idx_tx_id".to_string()));
        let mut b = TxBatch::default();
        let rows = [
            line("T4", "null", "\"T1\""), // refund before its sale: fine
            line("T1", "null", "null"),
            line("T1", "null", "null"),    // repeated: removed
            line("T2", "\"R9\"", "null"),  // no such registration: refused
            line("T5", "null", "\"T99\""), // refund of nothing: removed
            line("T6", "null", "\"T5\""),  // refund of that refund: removed
            line("T3", "null", "null"),
        ];
        for l in &rows {
            v.transaction_into(l, 1, &mut b).unwrap();
        }
        // Lines 10, 12, 14, ...: a row's rowid is its line.
        let (c, refused) = s
            .write_transaction_batch_keyless(&b, &|i| 10 + 2 * i, true)
            .unwrap();
        assert_eq!(c.inserted, 6);
        assert_eq!(
            refused,
            vec![(
                3,
                RowProblem::Unknown {
                    field: "registration_id",
                    what: "registration",
                    id: "R9".into()
                }
            )]
        );
        let key = s.build_transaction_key().unwrap();
        assert_eq!(
            key.repeated,
            vec![(14, "T1".to_string(), 12)],
            "the kept row is line 12"
        );
        assert_eq!(
            key.orphans,
            vec![(18, "T99".to_string()), (20, "T5".to_string())]
        );
        assert!(index_names(&s).contains(&"idx_tx_id".to_string()));
        // With rows in the table the key is not dropped again.
        assert!(!s.drop_transaction_key().unwrap());
        assert!(index_names(&s).contains(&"idx_tx_id".to_string()));
        let mut ids: Vec<String> = s
            .transactions()
            .unwrap()
            .into_iter()
            .map(|t| t.transaction_id)
            .collect();
        ids.sort();
        assert_eq!(ids, ["T1", "T3", "T4"]);
        assert_eq!(rowid_of(&s, "T3"), 22);
        // Built: nothing left for a repair to rebuild but the other indexes.
        let rebuilt = s.end_bulk_import().unwrap();
        assert!(!rebuilt.indexes.iter().any(|(n, _)| n == "idx_tx_id"));
        s.integrity_check().unwrap();
    }

    /// An import interrupted during a keyless load (repeated ids written, the key
    /// not built) is repaired by the next one: the first row of each id is kept and
    /// the key built.
    #[test]
    fn interrupted_keyless_load_is_repaired_keeping_the_first_row_of_each_id() {
        let line = |id: &str| tx_line(id, "null", "null");
        let mut v = checking_validator();
        let mut s = Store::open_in_memory().unwrap();
        let before = index_names(&s);
        s.begin_bulk_import().unwrap();
        assert!(s.drop_transaction_key().unwrap());
        let mut b = TxBatch::default();
        for id in ["T1", "T2", "T1"] {
            v.transaction_into(&line(id), 1, &mut b).unwrap();
        }
        s.write_transaction_batch_keyless(&b, &|i| i + 1, false)
            .unwrap();
        // Crash: neither build_transaction_key nor end_bulk_import ran.
        assert!(s.restore_dropped_indexes().unwrap() >= 1);
        assert_eq!(index_names(&s), before);
        assert_eq!(s.count_rows("transactions").unwrap(), 2);
        assert_eq!(rowid_of(&s, "T1"), 1);
    }

    #[test]
    fn interrupted_bulk_import_indexes_are_restored() {
        let mut s = Store::open_in_memory().unwrap();
        let before = index_names(&s);
        let dropped = s.begin_bulk_import().unwrap();
        assert!(dropped.iter().any(|n| n == "idx_tx_partner"), "{dropped:?}");
        assert!(!index_names(&s).contains(&"idx_tx_partner".to_string()));
        // Simulate a crash: no end_bulk_import; the next import repairs it.
        assert_eq!(s.restore_dropped_indexes().unwrap(), dropped.len());
        assert_eq!(index_names(&s), before);
        assert_eq!(s.restore_dropped_indexes().unwrap(), 0);
        assert_eq!(
            index_name("CREATE INDEX IF NOT EXISTS \"idx_a\" ON t (x)"),
            "idx_a"
        );
        assert_eq!(index_name("create unique index idx_b on t(x)"), "idx_b");
    }

    #[test]
    fn quarantine_keeps_raw_text_once() {
        let mut s = Store::open_in_memory().unwrap();
        let r = Rejection {
            file: "transactions.jsonl".into(),
            line: 7,
            field: Some("amount".into()),
            error: "bad".into(),
            raw: "{\"amount\":1.5}".into(),
            raw_bytes: None,
        };
        assert_eq!(s.quarantine(std::slice::from_ref(&r)).unwrap(), 1);
        assert_eq!(s.quarantine(std::slice::from_ref(&r)).unwrap(), 0);
        assert_eq!(s.quarantined().unwrap(), vec![r]);
    }
}
