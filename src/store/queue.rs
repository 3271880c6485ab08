//! Read models for the workbench: keyset-paginated queue pages, header counters,
//! the record detail, the audit trail, the sign-off list and sync status.
//!
//! The queue is the review window's exceptions: `flags` rows with `in_window = 1` and at
//! least one kind. Pages are fetched with keyset pagination on indexes declared in
//! `schema.sql` (partial indexes `idx_queue_rank`, `idx_queue_stake`, `idx_queue_amount`), never
//! with OFFSET. The age order (submission date, from `transactions`) has no index of its own:
//! each page sorts the filtered queue (about as fast as the stake and amount orders on a
//! 36,000-row queue). A reversed order walks the same keys the other way.

use rusqlite::{params_from_iter, types::Value, OptionalExtension, Row};

use super::{Result, Store};

/// How the queue is ordered (the biggest problems first: highest score, stake or amount,
/// or the oldest submission).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QueueSort {
    /// Score, then commission at stake.
    #[default]
    Rank,
    /// Commission at stake.
    AtStake,
    /// Transaction amount.
    Amount,
    /// Days since the transaction was submitted: oldest first (unknown dates last).
    Age,
}

/// The sort key of a submission date for [`QueueSort::Age`]: the date text, or a key
/// after every date when unknown (so undated rows come last, oldest first).
pub fn age_key(submitted_at: &str) -> String {
    if submitted_at.is_empty() {
        AGE_UNKNOWN.to_string()
    } else {
        submitted_at.to_string()
    }
}

const AGE_UNKNOWN: &str = "9999-12-31";

impl QueueSort {
    pub const ALL: [QueueSort; 4] = [
        QueueSort::Rank,
        QueueSort::AtStake,
        QueueSort::Amount,
        QueueSort::Age,
    ];

    pub fn label(self) -> &'static str {
        match self {
            QueueSort::Rank => "score",
            QueueSort::AtStake => "at stake",
            QueueSort::Amount => "amount",
            QueueSort::Age => "age",
        }
    }

    pub fn next(self) -> QueueSort {
        match self {
            QueueSort::Rank => QueueSort::AtStake,
            QueueSort::AtStake => QueueSort::Amount,
            QueueSort::Amount => QueueSort::Age,
            QueueSort::Age => QueueSort::Rank,
        }
    }

    /// The name [`QueueSort::parse`] reads back (`score`, `stake`, `amount`, `age`).
    pub fn name(self) -> &'static str {
        match self {
            QueueSort::Rank => "score",
            QueueSort::AtStake => "stake",
            QueueSort::Amount => "amount",
            QueueSort::Age => "age",
        }
    }

    /// The sort named `s` (`score`, `stake`, `amount`, `age`; as the CLI spells them).
    pub fn parse(s: &str) -> Option<QueueSort> {
        match s.trim().to_ascii_lowercase().as_str() {
            "score" | "rank" => Some(QueueSort::Rank),
            "stake" | "at_stake" | "at-stake" => Some(QueueSort::AtStake),
            "amount" => Some(QueueSort::Amount),
            "age" => Some(QueueSort::Age),
            _ => None,
        }
    }

    /// The key columns, in order, of this sort (all compared the same way).
    fn columns(self) -> &'static [&'static str] {
        match self {
            QueueSort::Rank => &["f.score", "f.at_stake_minor", "f.transaction_id"],
            QueueSort::AtStake => &["f.at_stake_minor", "f.transaction_id"],
            QueueSort::Amount => &["f.amount_minor", "f.transaction_id"],
            QueueSort::Age => &[
                "COALESCE(NULLIF(t.submitted_at, ''), '9999-12-31')",
                "f.transaction_id",
            ],
        }
    }

    /// Whether the queue order of this sort is ascending in its key columns (the oldest
    /// submission first); the others are descending.
    pub fn ascending(self) -> bool {
        self == QueueSort::Age
    }
}

/// A sort and its direction: `reverse` flips the sort's queue order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueOrder {
    pub sort: QueueSort,
    pub reverse: bool,
}

impl From<QueueSort> for QueueOrder {
    fn from(sort: QueueSort) -> Self {
        QueueOrder {
            sort,
            reverse: false,
        }
    }
}

impl QueueOrder {
    /// `by score ↓` (the sort's own order: biggest or oldest first) or `by age ↑` (reversed).
    pub fn label(self) -> String {
        format!(
            "by {} {}",
            self.sort.label(),
            if self.reverse { '↑' } else { '↓' }
        )
    }

    /// Whether SQL walks the key columns ascending for this order.
    fn ascending(self) -> bool {
        self.sort.ascending() != self.reverse
    }
}

/// "Needs me": the records waiting for this person's action.
#[derive(Debug, Clone, PartialEq)]
pub struct NeedsMe {
    pub role: crate::config::Role,
    pub user: String,
}

/// Workflow states that wait for an analyst: new flags, reviews under way, documents
/// requested (to check when they come), sign-offs rejected back, and sync conflicts.
pub const ANALYST_STATES: [&str; 5] = [
    "flagged",
    "in_review",
    "documents_requested",
    "rejected",
    "conflict",
];

/// What narrows the queue. Empty fields do not filter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueueFilter {
    /// Anomaly kind names (`duplicate`, ...): a row with any of them passes.
    pub kind: Vec<String>,
    /// Workflow states (`flagged`, `awaiting_signoff`, ...): any of them.
    pub status: Vec<String>,
    /// Tier id (the partner's current tier).
    pub tier: Option<String>,
    pub region: Option<String>,
    /// Minimum transaction amount, minor units.
    pub min_amount_minor: Option<i64>,
    /// Substring of the transaction id, partner name/id or customer name.
    pub search: Option<String>,
    /// Only what waits for this person (an analyst's open work, or a manager's
    /// sign-offs of other people's proposals: never their own).
    pub needs_me: Option<NeedsMe>,
}

impl QueueFilter {
    pub fn is_empty(&self) -> bool {
        self.kind.is_empty()
            && self.status.is_empty()
            && self.needs_me.is_none()
            && self.tier.is_none()
            && self.region.is_none()
            && self.min_amount_minor.is_none()
            && self.search.as_deref().is_none_or(str::is_empty)
    }
}

/// Where a page starts: the sort key of the row next to it.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueCursor {
    pub score: f64,
    pub at_stake_minor: i64,
    pub amount_minor: i64,
    /// [`age_key`] of the submission date.
    pub submitted_at: String,
    pub transaction_id: String,
}

/// Which way a page goes from its cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageDir {
    /// Rows after the cursor in queue order (from the top without a cursor).
    After,
    /// Rows before the cursor (from the bottom without a cursor); returned in queue order.
    Before,
    /// The cursor's row (if still there) and the rows after it: reloading a window in place.
    From,
}

/// Tiers (id, name) by rank, and regions: the filter dialog's choices.
pub type FilterChoices = (Vec<(String, String)>, Vec<String>);

/// One queue line.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct QueueRow {
    pub transaction_id: String,
    pub score: f64,
    pub confidence: f64,
    pub kinds: Vec<String>,
    pub partner_id: String,
    pub partner_name: String,
    pub tier: String,
    pub customer: String,
    /// Exact decimal text of the transaction amount.
    pub amount: String,
    pub currency: String,
    pub amount_minor: i64,
    pub at_stake_minor: i64,
    pub submitted_at: String,
    pub status: String,
    /// The proposal being reviewed (hold / reverse / recompute / adjust), if any.
    pub action: Option<String>,
    /// Exact decimal texts of the proposal: accrued now, what it should be, the change.
    pub current_amount: Option<String>,
    pub proposed_amount: Option<String>,
    pub delta: Option<String>,
    /// The amount a reviewer decided (override or approved proposal), if decided.
    pub decided_amount: Option<String>,
    pub proposer: Option<String>,
    /// The flag's reasons (one sentence each).
    pub reasons: Vec<String>,
}

impl QueueRow {
    pub fn cursor(&self) -> QueueCursor {
        QueueCursor {
            score: self.score,
            at_stake_minor: self.at_stake_minor,
            amount_minor: self.amount_minor,
            submitted_at: age_key(&self.submitted_at),
            transaction_id: self.transaction_id.clone(),
        }
    }
}

/// The program's header facts the workbench shows.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProgramInfo {
    pub name: String,
    pub currency: String,
    pub as_of: String,
    pub review_start: String,
    pub review_end: String,
    pub fiscal_year_start_month: u32,
}

/// Sync and outbox status for the status bar.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SyncStatus {
    /// `Some(true)` online, `Some(false)` offline, `None` never synced.
    pub online: Option<bool>,
    pub last_sync: Option<String>,
    pub outbox_pending: i64,
    pub conflicts: i64,
    pub last_error: Option<String>,
    /// The rollout phases in force: (scope, phase), `*` for the whole program; empty when
    /// none was ever set (the program observes).
    pub phases: Vec<(String, String)>,
}

/// A partner as the detail pane shows it (tax id and bank details masked here).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PartnerView {
    pub partner_id: String,
    pub name: String,
    pub kind: String,
    pub region: String,
    pub country: Option<String>,
    pub joined_on: String,
    pub certifications: Vec<String>,
    pub parent: Option<(String, String)>,
    pub tax_id_masked: Option<String>,
    pub bank_masked: Option<String>,
    pub high_value: bool,
    /// (tier id, tier name, effective from), oldest first.
    pub tier_history: Vec<(String, String, String)>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct TxView {
    pub transaction_id: String,
    pub kind: String,
    pub original_transaction_id: Option<String>,
    pub partner_id: String,
    pub registration_id: Option<String>,
    pub customer_name: String,
    pub sku: String,
    pub product_name: Option<String>,
    pub family: Option<String>,
    pub quantity: i64,
    pub unit_list_price: String,
    pub unit_net_price: String,
    pub amount: String,
    pub currency: String,
    pub closed_on: String,
    pub submitted_at: String,
    pub invoice_number: String,
    pub notes: Option<String>,
    pub record_version: i64,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct RegistrationView {
    pub registration_id: String,
    pub partner_id: String,
    pub customer_name: String,
    pub expected_amount: String,
    pub registered_on: String,
    pub expires_on: String,
    pub status: String,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct FlagView {
    pub score: f64,
    pub confidence: f64,
    pub kinds: Vec<String>,
    pub reasons: Vec<String>,
    /// Evidence figures as (name, value) pairs, flattened from the JSON object.
    pub evidence: Vec<(String, String)>,
    /// Checks that could not be made for this record (their input was missing).
    pub not_evaluated: Vec<String>,
    pub detector_version: String,
    pub source: String,
    pub scored_at: String,
    pub status: String,
    pub at_stake_minor: i64,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProposalView {
    pub action: String,
    pub current_amount: String,
    pub proposed_amount: String,
    pub delta: String,
    pub currency: String,
    pub rationale: String,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct CaseRow {
    pub state: String,
    pub decided_amount: Option<String>,
    pub proposer: Option<String>,
    pub version: i64,
    pub updated_at: String,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct CommissionView {
    pub commission_id: String,
    pub payee_partner_id: String,
    pub role: String,
    pub amount: String,
    pub period: String,
    /// The PRM's status of this reward as of the last sync (`declined: reason` for a
    /// decline); `None` when the line came from a file import or was never pulled.
    pub prm_status: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct AuditView {
    pub seq: i64,
    pub at: String,
    pub actor: String,
    pub role: String,
    pub action: String,
    pub before: Option<String>,
    pub after: Option<String>,
    pub reason: Option<String>,
    pub hash: String,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct DecisionView {
    pub decision_id: String,
    pub action: String,
    pub amount: Option<String>,
    pub reason: String,
    pub actor: String,
    pub from_state: String,
    pub to_state: String,
    pub created_at: String,
}

/// Everything the record panes show about one transaction.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RecordDetail {
    pub tx: TxView,
    pub partner: Option<PartnerView>,
    pub registration: Option<RegistrationView>,
    pub flag: Option<FlagView>,
    pub proposal: Option<ProposalView>,
    pub case: Option<CaseRow>,
    pub commissions: Vec<CommissionView>,
    pub decisions: Vec<DecisionView>,
    pub audit: Vec<AuditView>,
    /// The partner's bookings per month (`YYYY-MM`, sum of amounts), oldest first.
    pub monthly: Vec<(String, f64)>,
    /// The month of this deal (`YYYY-MM`).
    pub deal_month: String,
    /// For a duplicate: the earlier transaction it repeats.
    pub original: Option<TxView>,
    /// Open conflicts with the PRM (a record changed there after the reviewer decided).
    pub conflicts: Vec<ConflictView>,
}

/// One open conflict: the three versions, each as the JSON text sync stored.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConflictView {
    pub decision_id: String,
    /// The record as the reviewer saw it when deciding.
    pub seen: String,
    /// What the reviewer decided (the pushed payload).
    pub decided: String,
    /// The record as the PRM has it now.
    pub remote: String,
    pub created_at: String,
}

/// One line of the sign-off list.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SignoffRow {
    pub transaction_id: String,
    pub partner_id: String,
    pub partner_name: String,
    pub period: String,
    pub closed_on: String,
    pub proposer: Option<String>,
    pub current_amount: String,
    pub decided_amount: String,
    pub delta: String,
    pub currency: String,
}

const QUEUE_SELECT: &str = "SELECT f.transaction_id, f.score, f.confidence, f.kinds, f.partner_id,
        COALESCE(p.name, f.partner_id),
        COALESCE((SELECT COALESCE(ti.name, h.tier_id) FROM tier_history h
                  LEFT JOIN tiers ti ON ti.tier_id = h.tier_id
                  WHERE h.partner_id = f.partner_id AND h.effective_from <= t.closed_on
                  ORDER BY h.effective_from DESC LIMIT 1), ''),
        COALESCE(t.customer_name, ''), COALESCE(t.amount, '0'), COALESCE(t.currency, ''),
        f.amount_minor, f.at_stake_minor, COALESCE(t.submitted_at, ''), f.status,
        pr.action, pr.current_amount, pr.proposed_amount, pr.delta, c.decided_amount,
        c.proposer, f.reasons
   FROM flags f
   LEFT JOIN transactions t ON t.transaction_id = f.transaction_id
   LEFT JOIN partners p ON p.partner_id = f.partner_id
   LEFT JOIN proposals pr ON pr.transaction_id = f.transaction_id
   LEFT JOIN cases c ON c.transaction_id = f.transaction_id";

fn queue_row(r: &Row<'_>) -> rusqlite::Result<QueueRow> {
    let kinds: String = r.get(3)?;
    Ok(QueueRow {
        transaction_id: r.get(0)?,
        score: r.get(1)?,
        confidence: r.get(2)?,
        kinds: serde_json::from_str(&kinds).unwrap_or_default(),
        partner_id: r.get(4)?,
        partner_name: r.get(5)?,
        tier: r.get(6)?,
        customer: r.get(7)?,
        amount: r.get(8)?,
        currency: r.get(9)?,
        amount_minor: r.get(10)?,
        at_stake_minor: r.get(11)?,
        submitted_at: r.get(12)?,
        status: r.get(13)?,
        action: r.get(14)?,
        current_amount: r.get(15)?,
        proposed_amount: r.get(16)?,
        delta: r.get(17)?,
        decided_amount: r.get(18)?,
        proposer: r.get(19)?,
        reasons: r
            .get::<_, Option<String>>(20)?
            .and_then(|j| serde_json::from_str(&j).ok())
            .unwrap_or_default(),
    })
}

/// A TEXT column borrowed from the row (no copy).
fn text<'a>(r: &'a Row<'_>, i: usize) -> rusqlite::Result<&'a str> {
    r.get_ref(i)?.as_str().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn like_pattern(s: &str) -> String {
    let mut p = String::with_capacity(s.len() + 2);
    p.push('%');
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// Appends the filter's conditions (`AND ...`) and their arguments; the search
/// substring (a LIKE over id, partner and customer) only when `with_search`.
/// `own` are the proposer names (as stored) that are the `needs_me` manager themselves.
fn filter_sql(
    filter: &QueueFilter,
    with_search: bool,
    own: &[String],
    sql: &mut String,
    args: &mut Vec<Value>,
) {
    if !filter.kind.is_empty() {
        let any: Vec<&str> = filter.kind.iter().map(|_| "f.kinds LIKE ?").collect();
        sql.push_str(&format!(" AND ({})", any.join(" OR ")));
        for k in &filter.kind {
            args.push(Value::Text(format!("%\"{k}\"%")));
        }
    }
    if !filter.status.is_empty() {
        in_list(sql, "f.status", filter.status.len());
        args.extend(filter.status.iter().map(|s| Value::Text(s.clone())));
    }
    if let Some(me) = &filter.needs_me {
        if me.role == crate::config::Role::Manager {
            sql.push_str(" AND f.status = 'awaiting_signoff'");
            if !own.is_empty() {
                sql.push_str(" AND (c.proposer IS NULL OR NOT (");
                in_list_bare(sql, "c.proposer", own.len());
                sql.push_str("))");
                args.extend(own.iter().map(|s| Value::Text(s.clone())));
            }
        } else {
            in_list(sql, "f.status", ANALYST_STATES.len());
            args.extend(ANALYST_STATES.iter().map(|s| Value::Text(s.to_string())));
        }
    }
    if let Some(tier) = &filter.tier {
        sql.push_str(
            " AND f.partner_id IN (SELECT h.partner_id FROM tier_history h
               WHERE h.tier_id = ? AND h.effective_from = (SELECT MAX(h2.effective_from)
               FROM tier_history h2 WHERE h2.partner_id = h.partner_id))",
        );
        args.push(Value::Text(tier.clone()));
    }
    if let Some(region) = &filter.region {
        sql.push_str(" AND f.partner_id IN (SELECT partner_id FROM partners WHERE region = ?)");
        args.push(Value::Text(region.clone()));
    }
    if let Some(min) = filter.min_amount_minor {
        sql.push_str(" AND f.amount_minor >= ?");
        args.push(Value::Integer(min));
    }
    if !with_search {
        return;
    }
    if let Some(q) = filter.search.as_deref().filter(|q| !q.trim().is_empty()) {
        let pat = like_pattern(q.trim());
        sql.push_str(
            " AND (f.transaction_id LIKE ? ESCAPE '\\' OR f.partner_id LIKE ? ESCAPE '\\'
               OR f.partner_id IN (SELECT partner_id FROM partners WHERE name LIKE ? ESCAPE '\\')
               OR t.customer_name LIKE ? ESCAPE '\\')",
        );
        for _ in 0..4 {
            args.push(Value::Text(pat.clone()));
        }
    }
}

/// ` AND col IN (?, ?, ...)` with `n` placeholders.
fn in_list(sql: &mut String, col: &str, n: usize) {
    sql.push_str(" AND ");
    in_list_bare(sql, col, n);
}

fn in_list_bare(sql: &mut String, col: &str, n: usize) {
    sql.push_str(&format!("{col} IN ({})", vec!["?"; n].join(", ")));
}

/// The cursor's key values of `sort`, as its columns list them.
fn cursor_args(sort: QueueSort, c: &QueueCursor, args: &mut Vec<Value>) {
    match sort {
        QueueSort::Rank => {
            args.push(Value::Real(c.score));
            args.push(Value::Integer(c.at_stake_minor));
        }
        QueueSort::AtStake => args.push(Value::Integer(c.at_stake_minor)),
        QueueSort::Amount => args.push(Value::Integer(c.amount_minor)),
        QueueSort::Age => args.push(Value::Text(c.submitted_at.clone())),
    }
    args.push(Value::Text(c.transaction_id.clone()));
}

/// One queue row as the workbench's in-memory search index reads it: the searchable
/// text, the filterable facts and the sort keys.
#[derive(Debug, Clone, Copy)]
pub struct SearchSource<'a> {
    pub rowid: i64,
    pub transaction_id: &'a str,
    pub partner_id: &'a str,
    pub partner_name: &'a str,
    pub customer: &'a str,
    /// JSON array of kind names.
    pub kinds: &'a str,
    pub score: f64,
    pub at_stake_minor: i64,
    pub amount_minor: i64,
    /// [`age_key`] of the submission date.
    pub submitted_at: &'a str,
}

impl Store {
    /// The proposer names (as stored) that are the `needs_me` manager themselves
    /// (the four-eyes rule compares people, not spellings: see `same_person`).
    fn own_proposer_names(&self, filter: &QueueFilter) -> Result<Vec<String>> {
        let Some(me) = filter
            .needs_me
            .as_ref()
            .filter(|m| m.role == crate::config::Role::Manager)
        else {
            return Ok(Vec::new());
        };
        let mut stmt = self
            .conn
            .prepare_cached("SELECT DISTINCT proposer FROM cases WHERE proposer IS NOT NULL")?;
        let names: Vec<String> = stmt
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(names
            .into_iter()
            .filter(|p| crate::workflow::identity::same_person(p, &me.user))
            .collect())
    }

    /// One page of the exception queue: `limit` rows after/before `cursor` in `sort` order.
    /// Rows come back in queue order either way.
    pub fn queue_page(
        &self,
        filter: &QueueFilter,
        order: impl Into<QueueOrder>,
        cursor: Option<&QueueCursor>,
        dir: PageDir,
        limit: usize,
    ) -> Result<Vec<QueueRow>> {
        let order: QueueOrder = order.into();
        let sort = order.sort;
        let own = self.own_proposer_names(filter)?;
        let mut sql = String::from(QUEUE_SELECT);
        sql.push_str(" WHERE f.in_window = 1 AND f.kinds <> '[]'");
        let mut args: Vec<Value> = Vec::new();
        filter_sql(filter, true, &own, &mut sql, &mut args);
        let cols = sort.columns();
        let n = cols.len();
        // Walking the key columns ascending (in queue order) or descending.
        let asc = order.ascending() != (dir == PageDir::Before);
        if let Some(c) = cursor {
            let op = match (dir, asc) {
                (PageDir::From, true) => ">=",
                (PageDir::From, false) => "<=",
                (_, true) => ">",
                (_, false) => "<",
            };
            sql.push_str(&format!(" AND ({}) {op} (", cols.join(", ")));
            sql.push_str(&vec!["?"; n].join(", "));
            sql.push(')');
            cursor_args(sort, c, &mut args);
        }
        let dir_sql = if asc { "ASC" } else { "DESC" };
        let order_by: Vec<String> = cols.iter().map(|c| format!("{c} {dir_sql}")).collect();
        sql.push_str(&format!(
            " ORDER BY {} LIMIT {}",
            order_by.join(", "),
            limit
        ));
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let mut rows: Vec<QueueRow> = stmt
            .query_map(params_from_iter(args), queue_row)?
            .collect::<rusqlite::Result<_>>()?;
        if dir == PageDir::Before {
            rows.reverse();
        }
        Ok(rows)
    }

    /// Streams every queue row (in-window flags with a kind) to `f` for the workbench's
    /// search index; `f` returns false to stop early (cancelled).
    pub fn for_each_queue_search_row(
        &self,
        f: &mut dyn FnMut(&SearchSource<'_>) -> bool,
    ) -> Result<()> {
        let mut stmt = self.conn.prepare(
            "SELECT f.rowid, f.transaction_id, f.partner_id, COALESCE(p.name, ''),
                    COALESCE(t.customer_name, ''), f.kinds, f.score, f.at_stake_minor,
                    f.amount_minor, COALESCE(NULLIF(t.submitted_at, ''), '9999-12-31')
               FROM flags f
               LEFT JOIN transactions t ON t.transaction_id = f.transaction_id
               LEFT JOIN partners p ON p.partner_id = f.partner_id
              WHERE f.in_window = 1 AND f.kinds <> '[]'",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let src = SearchSource {
                rowid: r.get(0)?,
                transaction_id: text(r, 1)?,
                partner_id: text(r, 2)?,
                partner_name: text(r, 3)?,
                customer: text(r, 4)?,
                kinds: text(r, 5)?,
                score: r.get(6)?,
                at_stake_minor: r.get(7)?,
                amount_minor: r.get(8)?,
                submitted_at: text(r, 9)?,
            };
            if !f(&src) {
                break;
            }
        }
        Ok(())
    }

    /// Each partner's current tier (latest `tier_history` entry, '' when none) and region:
    /// what the queue's tier and region filters compare.
    pub fn partner_tier_region(&self) -> Result<Vec<(String, String, String)>> {
        let mut stmt = self.conn.prepare(
            "SELECT p.partner_id,
                    COALESCE((SELECT h.tier_id FROM tier_history h WHERE h.partner_id = p.partner_id
                              ORDER BY h.effective_from DESC LIMIT 1), ''),
                    p.region
               FROM partners p",
        )?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// The queue rows among `rowids` (flags rowids) that pass `filter` (its search text
    /// is ignored: the caller matched it), in `order` (backwards when `backwards`),
    /// at most `limit`.
    pub fn queue_rows_by_rowid(
        &self,
        rowids: &[i64],
        filter: &QueueFilter,
        order: impl Into<QueueOrder>,
        backwards: bool,
        limit: usize,
    ) -> Result<Vec<QueueRow>> {
        let order: QueueOrder = order.into();
        let own = self.own_proposer_names(filter)?;
        if rowids.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let mut sql = String::from(QUEUE_SELECT);
        sql.push_str(" WHERE f.rowid IN (");
        for (i, id) in rowids.iter().enumerate() {
            if i > 0 {
                sql.push(',');
            }
            sql.push_str(&id.to_string());
        }
        sql.push_str(") AND f.in_window = 1 AND f.kinds <> '[]'");
        let mut args: Vec<Value> = Vec::new();
        filter_sql(filter, false, &own, &mut sql, &mut args);
        let dir_sql = if order.ascending() != backwards {
            "ASC"
        } else {
            "DESC"
        };
        let order_by: Vec<String> = order
            .sort
            .columns()
            .iter()
            .map(|c| format!("{c} {dir_sql}"))
            .collect();
        sql.push_str(&format!(" ORDER BY {} LIMIT {limit}", order_by.join(", ")));
        // Not cached: the id list makes each statement different.
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt
            .query_map(params_from_iter(args), queue_row)?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// The queue header counters (`queue:total`, `kind:*`, `status:*`), non-zero ones.
    pub fn queue_counters(&self) -> Result<Vec<(String, i64)>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT name, value FROM counters WHERE value <> 0 ORDER BY name")?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// Recomputes the queue counters from the flags table (repair; not per frame).
    pub fn rebuild_queue_counters(&self) -> Result<()> {
        let tx = self.conn.unchecked_transaction()?;
        tx.execute_batch(
            "DELETE FROM counters WHERE name = 'queue:total' OR name LIKE 'kind:%' OR name LIKE 'status:%';
             INSERT INTO counters (name, value)
               SELECT 'queue:total', COUNT(*) FROM flags WHERE in_window = 1 AND kinds <> '[]';
             INSERT INTO counters (name, value)
               SELECT 'status:' || status, COUNT(*) FROM flags WHERE in_window = 1 AND kinds <> '[]'
               GROUP BY status;
             INSERT INTO counters (name, value)
               SELECT 'kind:' || j.value, COUNT(*) FROM flags f, json_each(f.kinds) j
               WHERE f.in_window = 1 AND f.kinds <> '[]' GROUP BY j.value;",
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The program's facts, if a program was imported.
    pub fn program_info(&self) -> Result<Option<ProgramInfo>> {
        Ok(self
            .conn
            .query_row(
                "SELECT name, currency, as_of, review_start, review_end, fiscal_year_start_month
                 FROM program WHERE id = 1",
                [],
                |r| {
                    Ok(ProgramInfo {
                        name: r.get(0)?,
                        currency: r.get(1)?,
                        as_of: r.get(2)?,
                        review_start: r.get(3)?,
                        review_end: r.get(4)?,
                        fiscal_year_start_month: r.get(5)?,
                    })
                },
            )
            .optional()?)
    }

    /// Filter choices: tiers (id, name) by rank, regions, workflow states seen.
    pub fn filter_choices(&self) -> Result<FilterChoices> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT tier_id, name FROM tiers ORDER BY rank, tier_id")?;
        let tiers = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let mut stmt = self
            .conn
            .prepare_cached("SELECT DISTINCT region FROM partners ORDER BY region")?;
        let regions = stmt
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        Ok((tiers, regions))
    }

    /// Sync status for the status bar: sync_state keys, pending outbox, open conflicts.
    pub fn sync_status(&self) -> Result<SyncStatus> {
        let mut st = SyncStatus::default();
        let mut stmt = self
            .conn
            .prepare_cached("SELECT key, value FROM sync_state")?;
        let kv: Vec<(String, String)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        for (k, v) in kv {
            match k.as_str() {
                "online" | "status" | "mode" | "connection" => {
                    let v = v.to_ascii_lowercase();
                    st.online = Some(matches!(v.as_str(), "online" | "true" | "1" | "ok"));
                }
                "last_sync" | "last_sync_at" | "last_synced_at" | "last_pull_at" => {
                    st.last_sync = Some(v)
                }
                "last_error" if !v.is_empty() => st.last_error = Some(v),
                _ => {}
            }
        }
        st.outbox_pending = self.conn.query_row(
            "SELECT COUNT(*) FROM outbox WHERE status IN ('pending', 'failed')",
            [],
            |r| r.get(0),
        )?;
        st.conflicts = self.conn.query_row(
            "SELECT COUNT(*) FROM conflicts WHERE resolved_at IS NULL",
            [],
            |r| r.get(0),
        )?;
        let mut stmt = self
            .conn
            .prepare_cached("SELECT scope, phase FROM policy_phases ORDER BY scope")?;
        st.phases = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(st)
    }

    fn tx_view(&self, tx_id: &str) -> Result<Option<TxView>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT t.transaction_id, t.kind, t.original_transaction_id, t.partner_id,
                    t.registration_id, t.customer_name, t.sku, pr.name, pr.family, t.quantity,
                    t.unit_list_price, t.unit_net_price, t.amount, t.currency, t.closed_on,
                    t.submitted_at, t.invoice_number, t.notes, t.record_version
             FROM transactions t LEFT JOIN products pr ON pr.sku = t.sku
             WHERE t.transaction_id = ?",
        )?;
        Ok(stmt
            .query_row([tx_id], |r| {
                Ok(TxView {
                    transaction_id: r.get(0)?,
                    kind: r.get(1)?,
                    original_transaction_id: r.get(2)?,
                    partner_id: r.get(3)?,
                    registration_id: r.get(4)?,
                    customer_name: r.get(5)?,
                    sku: r.get(6)?,
                    product_name: r.get(7)?,
                    family: r.get(8)?,
                    quantity: r.get(9)?,
                    unit_list_price: r.get(10)?,
                    unit_net_price: r.get(11)?,
                    amount: r.get(12)?,
                    currency: r.get(13)?,
                    closed_on: r.get(14)?,
                    submitted_at: r.get(15)?,
                    invoice_number: r.get(16)?,
                    notes: r.get(17)?,
                    record_version: r.get(18)?,
                })
            })
            .optional()?)
    }

    fn partner_view(&self, partner_id: &str) -> Result<Option<PartnerView>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT p.partner_id, p.name, p.kind, p.region, p.country, p.joined_on,
                    p.certifications, p.parent_partner_id, pp.name, p.tax_id, p.bank_account,
                    p.high_value
             FROM partners p LEFT JOIN partners pp ON pp.partner_id = p.parent_partner_id
             WHERE p.partner_id = ?",
        )?;
        let pv = stmt
            .query_row([partner_id], |r| {
                let certs: String = r.get(6)?;
                let parent: Option<String> = r.get(7)?;
                let parent_name: Option<String> = r.get(8)?;
                let tax: Option<String> = r.get(9)?;
                let bank: Option<String> = r.get(10)?;
                let hv: i64 = r.get(11)?;
                Ok(PartnerView {
                    partner_id: r.get(0)?,
                    name: r.get(1)?,
                    kind: r.get(2)?,
                    region: r.get(3)?,
                    country: r.get(4)?,
                    joined_on: r.get(5)?,
                    certifications: serde_json::from_str(&certs).unwrap_or_default(),
                    parent: parent.map(|id| {
                        let name = parent_name.unwrap_or_else(|| id.clone());
                        (id, name)
                    }),
                    // Sealed at rest: opened here only to be masked.
                    tax_id_masked: tax.map(|t| match self.open_value("tax_id", &t) {
                        Ok(v) => crate::model::mask(&v),
                        Err(_) => NOT_READABLE.to_string(),
                    }),
                    bank_masked: bank.and_then(|b| match self.open_value("bank_account", &b) {
                        Ok(v) => mask_bank(&v),
                        Err(_) => Some(NOT_READABLE.to_string()),
                    }),
                    high_value: hv != 0,
                    tier_history: Vec::new(),
                })
            })
            .optional()?;
        let Some(mut pv) = pv else { return Ok(None) };
        let mut stmt = self.conn.prepare_cached(
            "SELECT h.tier_id, COALESCE(t.name, h.tier_id), h.effective_from FROM tier_history h
             LEFT JOIN tiers t ON t.tier_id = h.tier_id
             WHERE h.partner_id = ? ORDER BY h.effective_from",
        )?;
        pv.tier_history = stmt
            .query_map([partner_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(Some(pv))
    }

    /// Everything the record panes show about `tx_id`; `None` if there is no such transaction.
    pub fn record_detail(&self, tx_id: &str) -> Result<Option<RecordDetail>> {
        let Some(tx) = self.tx_view(tx_id)? else {
            return Ok(None);
        };
        let mut d = RecordDetail {
            deal_month: tx.closed_on.get(..7).unwrap_or("").to_string(),
            partner: self.partner_view(&tx.partner_id)?,
            ..RecordDetail::default()
        };
        if let Some(reg) = &tx.registration_id {
            let mut stmt = self.conn.prepare_cached(
                "SELECT registration_id, partner_id, customer_name, expected_amount,
                        registered_on, expires_on, status
                 FROM registrations WHERE registration_id = ?",
            )?;
            d.registration = stmt
                .query_row([reg], |r| {
                    Ok(RegistrationView {
                        registration_id: r.get(0)?,
                        partner_id: r.get(1)?,
                        customer_name: r.get(2)?,
                        expected_amount: r.get(3)?,
                        registered_on: r.get(4)?,
                        expires_on: r.get(5)?,
                        status: r.get(6)?,
                    })
                })
                .optional()?;
        }
        let mut stmt = self.conn.prepare_cached(
            "SELECT score, confidence, kinds, reasons, evidence, detector_version, source,
                    scored_at, status, at_stake_minor
             FROM flags WHERE transaction_id = ?",
        )?;
        d.flag = stmt
            .query_row([tx_id], |r| {
                let kinds: String = r.get(2)?;
                let reasons: String = r.get(3)?;
                let evidence: String = r.get(4)?;
                Ok(FlagView {
                    score: r.get(0)?,
                    confidence: r.get(1)?,
                    kinds: serde_json::from_str(&kinds).unwrap_or_default(),
                    reasons: serde_json::from_str(&reasons).unwrap_or_default(),
                    not_evaluated: not_evaluated(&evidence),
                    evidence: flatten_evidence(&evidence),
                    detector_version: r.get(5)?,
                    source: r.get(6)?,
                    scored_at: r.get(7)?,
                    status: r.get(8)?,
                    at_stake_minor: r.get(9)?,
                })
            })
            .optional()?;
        let mut stmt = self.conn.prepare_cached(
            "SELECT action, current_amount, proposed_amount, delta, currency, rationale
             FROM proposals WHERE transaction_id = ?",
        )?;
        d.proposal = stmt
            .query_row([tx_id], |r| {
                Ok(ProposalView {
                    action: r.get(0)?,
                    current_amount: r.get(1)?,
                    proposed_amount: r.get(2)?,
                    delta: r.get(3)?,
                    currency: r.get(4)?,
                    rationale: r.get(5)?,
                })
            })
            .optional()?;
        let mut stmt = self.conn.prepare_cached(
            "SELECT state, decided_amount, proposer, version, updated_at
             FROM cases WHERE transaction_id = ?",
        )?;
        d.case = stmt
            .query_row([tx_id], |r| {
                Ok(CaseRow {
                    state: r.get(0)?,
                    decided_amount: r.get(1)?,
                    proposer: r.get(2)?,
                    version: r.get(3)?,
                    updated_at: r.get(4)?,
                })
            })
            .optional()?;
        let mut stmt = self.conn.prepare_cached(
            "SELECT c.commission_id, c.payee_partner_id, c.role, c.amount, c.period,
                    r.status, r.decline_reason
             FROM commissions c LEFT JOIN prm_rewards r ON r.reward_id = c.commission_id
             WHERE c.transaction_id = ? ORDER BY c.commission_id",
        )?;
        d.commissions = stmt
            .query_map([tx_id], |r| {
                let status: Option<String> = r.get(5)?;
                let reason: Option<String> = r.get(6)?;
                Ok(CommissionView {
                    commission_id: r.get(0)?,
                    payee_partner_id: r.get(1)?,
                    role: r.get(2)?,
                    amount: r.get(3)?,
                    period: r.get(4)?,
                    prm_status: status.map(|s| match reason.filter(|x| !x.is_empty()) {
                        Some(why) => format!("{s}: {why}"),
                        None => s,
                    }),
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        let mut stmt = self.conn.prepare_cached(
            "SELECT decision_id, action, amount, reason, actor, from_state, to_state, created_at
             FROM decisions WHERE transaction_id = ? ORDER BY created_at, rowid",
        )?;
        d.decisions = stmt
            .query_map([tx_id], |r| {
                Ok(DecisionView {
                    decision_id: r.get(0)?,
                    action: r.get(1)?,
                    amount: r.get(2)?,
                    reason: r.get(3)?,
                    actor: r.get(4)?,
                    from_state: r.get(5)?,
                    to_state: r.get(6)?,
                    created_at: r.get(7)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        d.audit = self.audit_for(tx_id)?;
        let mut stmt = self.conn.prepare_cached(
            "SELECT decision_id, seen, decided, remote, created_at FROM conflicts
             WHERE transaction_id = ? AND resolved_at IS NULL ORDER BY id",
        )?;
        d.conflicts = stmt
            .query_map([tx_id], |r| {
                Ok(ConflictView {
                    decision_id: r.get(0)?,
                    seen: r.get(1)?,
                    decided: r.get(2)?,
                    remote: r.get(3)?,
                    created_at: r.get(4)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        // Monthly bookings of the partner (sales), for the sparkline.
        let mut stmt = self.conn.prepare_cached(
            "SELECT substr(closed_on, 1, 7), SUM(amount_minor) FROM transactions
             WHERE partner_id = ? AND kind = 'sale' GROUP BY 1 ORDER BY 1",
        )?;
        d.monthly = stmt
            .query_map([&tx.partner_id], |r| {
                let m: String = r.get(0)?;
                let v: i64 = r.get(1)?;
                Ok((m, v as f64 / 100.0))
            })?
            .collect::<rusqlite::Result<_>>()?;
        // The original of a duplicate: named in the evidence, else the refund's original.
        let original_id = d
            .flag
            .as_ref()
            .and_then(|f| {
                f.evidence
                    .iter()
                    .find(|(k, _)| {
                        matches!(
                            k.as_str(),
                            "duplicate_of"
                                | "original"
                                | "original_transaction_id"
                                | "earlier_transaction_id"
                                | "duplicate.duplicate_of"
                                | "duplicate.original"
                                | "duplicate.original_transaction_id"
                                | "duplicate.earlier_transaction_id"
                        )
                    })
                    .map(|(_, v)| v.trim_matches('"').to_string())
            })
            .or_else(|| tx.original_transaction_id.clone());
        if let Some(o) = original_id.filter(|o| o != tx_id) {
            d.original = self.tx_view(&o)?;
        }
        d.tx = tx;
        Ok(Some(d))
    }

    /// The audit entries whose target is `tx_id`, oldest first.
    pub fn audit_for(&self, tx_id: &str) -> Result<Vec<AuditView>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT seq, at, actor, role, action, before, after, reason, hash
             FROM audit_log WHERE target = ? ORDER BY seq",
        )?;
        let rows = stmt
            .query_map([tx_id], |r| {
                Ok(AuditView {
                    seq: r.get(0)?,
                    at: r.get(1)?,
                    actor: r.get(2)?,
                    role: r.get(3)?,
                    action: r.get(4)?,
                    before: r.get(5)?,
                    after: r.get(6)?,
                    reason: r.get(7)?,
                    hash: r.get(8)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// Adjustments awaiting a manager's sign-off, by period then partner.
    pub fn signoff_list(&self, limit: usize) -> Result<Vec<SignoffRow>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT c.transaction_id, t.partner_id, COALESCE(p.name, t.partner_id),
                    COALESCE((SELECT MIN(period) FROM commissions m
                              WHERE m.transaction_id = c.transaction_id), substr(t.closed_on, 1, 7)),
                    t.closed_on, c.proposer,
                    COALESCE(pr.current_amount, '0'),
                    COALESCE(c.decided_amount, pr.proposed_amount, '0'),
                    COALESCE(pr.currency, t.currency)
             FROM cases c
             JOIN transactions t ON t.transaction_id = c.transaction_id
             LEFT JOIN partners p ON p.partner_id = t.partner_id
             LEFT JOIN proposals pr ON pr.transaction_id = c.transaction_id
             WHERE c.state = 'awaiting_signoff'
             ORDER BY 4, 3, c.transaction_id LIMIT ?",
        )?;
        let rows = stmt
            .query_map([limit as i64], |r| {
                let current: String = r.get(6)?;
                let decided: String = r.get(7)?;
                let delta = match (
                    crate::money::parse_money(&current),
                    crate::money::parse_money(&decided),
                ) {
                    (Some(c), Some(d)) => (d - c).to_string(),
                    _ => String::new(),
                };
                Ok(SignoffRow {
                    transaction_id: r.get(0)?,
                    partner_id: r.get(1)?,
                    partner_name: r.get(2)?,
                    period: r.get(3)?,
                    closed_on: r.get(4)?,
                    proposer: r.get(5)?,
                    current_amount: current,
                    decided_amount: decided,
                    delta,
                    currency: r.get(8)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// The highest transaction rowid: a cheap upper bound of the transaction count.
    /// SQLite's `PRAGMA data_version` of this connection: it changes when another
    /// connection (another process, another thread) commits to the cache.
    pub fn data_version(&self) -> Result<i64> {
        Ok(self
            .conn
            .query_row("PRAGMA data_version", [], |r| r.get(0))?)
    }

    pub fn transaction_rowid_max(&self) -> Result<i64> {
        Ok(self.conn.query_row(
            "SELECT COALESCE(MAX(rowid), 0) FROM transactions",
            [],
            |r| r.get(0),
        )?)
    }

    /// Whether `partner_id` is flagged high-value in the cache.
    pub fn partner_high_value(&self, partner_id: &str) -> Result<bool> {
        Ok(self
            .conn
            .query_row(
                "SELECT high_value FROM partners WHERE partner_id = ?",
                [partner_id],
                |r| r.get::<_, i64>(0),
            )
            .optional()?
            .is_some_and(|v| v != 0))
    }

    /// Runs SQL for test fixtures and benchmarks that build a cache directly.
    #[doc(hidden)]
    pub fn execute_fixture_sql(&self, sql: &str) -> Result<()> {
        self.conn.execute_batch(sql)?;
        Ok(())
    }

    /// Bulk-inserts synthetic rows (benchmarks): runs `fill` inside one transaction with
    /// a prepared-statement helper.
    #[doc(hidden)]
    pub fn with_fixture_tx(
        &mut self,
        fill: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<()>,
    ) -> Result<()> {
        let tx = self.conn.transaction()?;
        fill(&tx)?;
        tx.commit()?;
        Ok(())
    }
}

/// What a sealed value shows when the cache key is missing.
const NOT_READABLE: &str = "(encrypted; no key)";

fn mask_bank(json: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    let acct = v.get("account_number")?.as_str()?;
    let routing = v
        .get("routing_number")
        .and_then(|r| r.as_str())
        .map(crate::model::mask)
        .unwrap_or_default();
    Some(format!("{} / {}", routing, crate::model::mask(acct)))
}

/// The `not_evaluated` list of an evidence object (the checks that could not run).
fn not_evaluated(json: &str) -> Vec<String> {
    serde_json::from_str::<serde_json::Value>(json)
        .ok()
        .and_then(|v| v.get("not_evaluated").cloned())
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default()
}

/// Flattens an evidence JSON object into (dotted name, value) pairs for display (the
/// `not_evaluated` list is shown on its own).
fn flatten_evidence(json: &str) -> Vec<(String, String)> {
    fn walk(prefix: &str, v: &serde_json::Value, out: &mut Vec<(String, String)>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    let name = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&name, v, out);
                }
            }
            serde_json::Value::String(s) => out.push((prefix.to_string(), s.clone())),
            other => out.push((prefix.to_string(), other.to_string())),
        }
    }
    let mut out = Vec::new();
    if let Ok(mut v) = serde_json::from_str::<serde_json::Value>(json) {
        if let Some(m) = v.as_object_mut() {
            m.remove("not_evaluated");
        }
        walk("", &v, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flag(store: &Store, id: &str, score: f64, stake: i64, kinds: &str, status: &str) {
        store
            .conn
            .execute(
                "INSERT INTO flags (transaction_id, score, confidence, kinds, reasons,
                   detector_version, row_hash, scored_at, in_window, amount_minor,
                   at_stake_minor, partner_id, status)
                 VALUES (?1, ?2, 0.9, ?3, '[]', 'v1', 'h', '2026-01-01T00:00:00Z', 1,
                   ?4 * 10, ?4, 'P1', ?5)",
                rusqlite::params![id, score, kinds, stake, status],
            )
            .unwrap();
    }

    fn counter(store: &Store, name: &str) -> i64 {
        store
            .queue_counters()
            .unwrap()
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
            .unwrap_or(0)
    }

    #[test]
    fn record_detail_carries_prm_reward_statuses_and_open_conflicts() {
        let s = Store::open_in_memory().unwrap();
        s.conn
            .execute_batch(
                "INSERT INTO partners (partner_id, name, kind, region, joined_on, certifications)
                 VALUES ('P1', 'Acme Resale', 'reseller', 'EMEA', '2024-01-01', '[]');
                 INSERT INTO transactions (transaction_id, kind, partner_id, customer_name, sku,
                   quantity, unit_list_price, unit_net_price, amount, amount_minor, currency,
                   closed_on, submitted_at, invoice_number, row_hash, updated_at)
                 VALUES ('T1', 'sale', 'P1', 'Cedar Corp', 'SKU1', 1, '100.00', '90.00',
                   '90.00', 9000, 'USD', '2026-01-10', '2026-01-11T00:00:00Z', 'INV1', 'h',
                   '2026-01-11T00:00:00Z');
                 INSERT INTO commissions VALUES ('C1', 'T1', 'P1', 'seller', '9.00', '2026-01');
                 INSERT INTO commissions VALUES ('C2', 'T1', 'P0', 'override', '1.00', '2026-01');
                 INSERT INTO commissions VALUES ('C3', 'T1', 'P1', 'spiff', '5.00', '2026-01');
                 INSERT INTO prm_rewards (reward_id, transaction_id, status, decline_reason, pulled_at)
                   VALUES ('C1', 'T1', 'paid', NULL, '2026-01-12T00:00:00Z'),
                          ('C2', 'T1', 'declined', 'not certified', '2026-01-12T00:00:00Z');",
            )
            .unwrap();
        s.conn
            .execute_batch(
                "INSERT INTO conflicts (transaction_id, decision_id, seen, decided, remote, created_at)
                 VALUES ('T1', 'D1', '{\"amount\":\"90.00\"}', '{\"action\":\"approve\"}',
                         '{\"amount\":\"95.00\"}', '2026-01-13T00:00:00Z'),
                        ('T1', 'D0', '{}', '{}', '{}', '2026-01-12T00:00:00Z');
                 UPDATE conflicts SET resolved_at = '2026-01-12T01:00:00Z' WHERE decision_id = 'D0';",
            )
            .unwrap();
        let d = s.record_detail("T1").unwrap().unwrap();
        assert_eq!(
            d.conflicts.len(),
            1,
            "only the open conflict: {:?}",
            d.conflicts
        );
        assert_eq!(d.conflicts[0].decision_id, "D1");
        assert_eq!(d.conflicts[0].remote, r#"{"amount":"95.00"}"#);
        let status: Vec<_> = d
            .commissions
            .iter()
            .map(|c| (c.commission_id.as_str(), c.prm_status.as_deref()))
            .collect();
        assert_eq!(
            status,
            vec![
                ("C1", Some("paid")),
                ("C2", Some("declined: not certified")),
                ("C3", None)
            ]
        );
    }

    #[test]
    fn counters_follow_inserts_updates_and_deletes() {
        let s = Store::open_in_memory().unwrap();
        flag(
            &s,
            "T1",
            0.9,
            100,
            r#"["duplicate","backdated"]"#,
            "flagged",
        );
        flag(&s, "T2", 0.8, 50, r#"["duplicate"]"#, "flagged");
        flag(&s, "T3", 0.1, 0, "[]", "flagged");
        assert_eq!(counter(&s, "queue:total"), 2);
        assert_eq!(counter(&s, "kind:duplicate"), 2);
        assert_eq!(counter(&s, "kind:backdated"), 1);
        assert_eq!(counter(&s, "status:flagged"), 2);
        s.conn
            .execute(
                "UPDATE flags SET status = 'approved' WHERE transaction_id = 'T1'",
                [],
            )
            .unwrap();
        assert_eq!(counter(&s, "status:flagged"), 1);
        assert_eq!(counter(&s, "status:approved"), 1);
        s.conn
            .execute(
                "UPDATE flags SET in_window = 0 WHERE transaction_id = 'T2'",
                [],
            )
            .unwrap();
        assert_eq!(counter(&s, "queue:total"), 1);
        assert_eq!(counter(&s, "kind:duplicate"), 1);
        s.conn
            .execute("DELETE FROM flags WHERE transaction_id = 'T1'", [])
            .unwrap();
        assert_eq!(counter(&s, "queue:total"), 0);
        assert_eq!(counter(&s, "kind:backdated"), 0);
        // A rebuild agrees with the triggers.
        flag(&s, "T4", 0.5, 1, r#"["split_deals"]"#, "escalated");
        let before = s.queue_counters().unwrap();
        s.rebuild_queue_counters().unwrap();
        assert_eq!(s.queue_counters().unwrap(), before);
    }

    /// Partner P1 and a transaction for `id` submitted on `day` (no row: date unknown).
    fn submitted(store: &Store, id: &str, day: &str) {
        store
            .conn
            .execute(
                "INSERT OR IGNORE INTO partners (partner_id, name, kind, region, joined_on,
                   certifications) VALUES ('P1', 'Acme Resale', 'reseller', 'EMEA',
                   '2024-01-01', '[]')",
                [],
            )
            .unwrap();
        store
            .conn
            .execute(
                "INSERT INTO transactions (transaction_id, kind, partner_id, customer_name, sku,
                   quantity, unit_list_price, unit_net_price, amount, amount_minor, currency,
                   closed_on, submitted_at, invoice_number, row_hash, updated_at)
                 VALUES (?1, 'sale', 'P1', 'Cedar Corp', 'SKU1', 1, '100.00', '90.00',
                   '90.00', 9000, 'USD', ?2, ?2, ?1, 'h', ?2)",
                rusqlite::params![id, day],
            )
            .unwrap();
    }

    /// The whole queue in `order`, page by page (`n` rows a page).
    fn walk(s: &Store, f: &QueueFilter, order: QueueOrder, n: usize) -> Vec<QueueRow> {
        let mut seen = Vec::new();
        let mut cur: Option<QueueCursor> = None;
        loop {
            let page = s
                .queue_page(f, order, cur.as_ref(), PageDir::After, n)
                .unwrap();
            if page.is_empty() {
                break;
            }
            cur = page.last().map(QueueRow::cursor);
            seen.extend(page);
        }
        seen
    }

    #[test]
    fn keyset_pages_cover_the_queue_once_in_order() {
        let s = Store::open_in_memory().unwrap();
        for i in 0..57 {
            // Ties on score to exercise the tie-breakers.
            let score = ((i % 7) as f64) / 10.0;
            let id = format!("T{i:03}");
            flag(
                &s,
                &id,
                score,
                (i * 13 % 11) as i64,
                r#"["duplicate"]"#,
                "flagged",
            );
            // Submission days with ties; every fifth transaction has no date.
            if i % 5 != 0 {
                submitted(&s, &id, &format!("2026-0{}-1{}", 1 + i % 3, i % 4));
            }
        }
        for order in QueueSort::ALL
            .into_iter()
            .flat_map(|sort| [false, true].map(|reverse| QueueOrder { sort, reverse }))
        {
            let f = QueueFilter::default();
            let seen = walk(&s, &f, order, 10);
            assert_eq!(seen.len(), 57, "{order:?}");
            let mut ids: Vec<_> = seen.iter().map(|r| r.transaction_id.clone()).collect();
            ids.sort();
            ids.dedup();
            assert_eq!(ids.len(), 57);
            for w in seen.windows(2) {
                let (a, b) = if order.reverse {
                    (&w[1], &w[0])
                } else {
                    (&w[0], &w[1])
                };
                match order.sort {
                    QueueSort::Rank => assert!(a.score >= b.score),
                    QueueSort::AtStake => assert!(a.at_stake_minor >= b.at_stake_minor),
                    QueueSort::Amount => assert!(a.amount_minor >= b.amount_minor),
                    // Oldest first; unknown dates last.
                    QueueSort::Age => assert!(
                        age_key(&a.submitted_at) <= age_key(&b.submitted_at),
                        "{order:?}: {} before {}",
                        a.submitted_at,
                        b.submitted_at
                    ),
                }
            }
            // Reversed is exactly the other direction, ties included.
            let flipped = walk(
                &s,
                &f,
                QueueOrder {
                    reverse: !order.reverse,
                    ..order
                },
                7,
            );
            let mut back = flipped.clone();
            back.reverse();
            assert_eq!(back, seen, "{order:?}");
            // Paging backwards from the end returns the same rows in the same order.
            let last = s.queue_page(&f, order, None, PageDir::Before, 10).unwrap();
            assert_eq!(last, seen[47..].to_vec(), "{order:?}");
            let before = s
                .queue_page(&f, order, Some(&seen[47].cursor()), PageDir::Before, 10)
                .unwrap();
            assert_eq!(before, seen[37..47].to_vec(), "{order:?}");
            let from = s
                .queue_page(&f, order, Some(&seen[20].cursor()), PageDir::From, 5)
                .unwrap();
            assert_eq!(from, seen[20..25].to_vec(), "{order:?}");
        }
        // Age: the oldest submission first, undated ones at the end.
        let age = walk(&s, &QueueFilter::default(), QueueSort::Age.into(), 9);
        assert!(
            age[0].submitted_at.starts_with("2026-01-10"),
            "{}",
            age[0].submitted_at
        );
        assert!(age[56].submitted_at.is_empty());
        assert!(age[45].submitted_at.is_empty() && !age[44].submitted_at.is_empty());
    }

    /// `kind` and `status` lists pass any of their values; fields AND together; the
    /// manager's "needs me" skips their own proposals (whatever the spelling).
    #[test]
    fn multi_value_filters_and_needs_me() {
        let s = Store::open_in_memory().unwrap();
        flag(&s, "A", 0.9, 1, r#"["duplicate"]"#, "flagged");
        flag(&s, "B", 0.8, 1, r#"["discount_policy"]"#, "escalated");
        flag(&s, "C", 0.7, 1, r#"["backdated"]"#, "flagged");
        flag(
            &s,
            "D",
            0.6,
            1,
            r#"["duplicate","backdated"]"#,
            "awaiting_signoff",
        );
        flag(&s, "E", 0.5, 1, r#"["duplicate"]"#, "awaiting_signoff");
        flag(&s, "F", 0.4, 1, r#"["duplicate"]"#, "in_review");
        s.conn
            .execute_batch(
                "INSERT INTO cases (transaction_id, state, proposer, updated_at) VALUES ('D', 'awaiting_signoff', ' Mia  ', 'x');
                 INSERT INTO cases (transaction_id, state, proposer, updated_at) VALUES ('E', 'awaiting_signoff', 'ann', 'x');",
            )
            .unwrap();
        let ids = |f: QueueFilter| -> Vec<String> {
            walk(&s, &f, QueueOrder::default(), 4)
                .into_iter()
                .map(|r| r.transaction_id)
                .collect()
        };
        let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            ids(QueueFilter {
                kind: v(&["duplicate", "discount_policy"]),
                ..Default::default()
            }),
            v(&["A", "B", "D", "E", "F"])
        );
        assert_eq!(
            ids(QueueFilter {
                kind: v(&["duplicate", "backdated"]),
                status: v(&["flagged", "escalated"]),
                ..Default::default()
            }),
            v(&["A", "C"])
        );
        let me = |role, user: &str| QueueFilter {
            needs_me: Some(NeedsMe {
                role,
                user: user.into(),
            }),
            ..Default::default()
        };
        use crate::config::Role;
        assert_eq!(ids(me(Role::Analyst, "mia")), v(&["A", "C", "F"]));
        assert_eq!(ids(me(Role::Manager, "MIA")), v(&["E"]));
        assert_eq!(ids(me(Role::Manager, "Ann")), v(&["D"]));
        assert_eq!(ids(me(Role::Manager, "zoe")), v(&["D", "E"]));
    }

    #[test]
    fn filters_and_search_narrow_the_queue() {
        let s = Store::open_in_memory().unwrap();
        s.conn
            .execute_batch(
                "INSERT INTO partners (partner_id, name, kind, region, joined_on, certifications)
                 VALUES ('P1', 'Acme Resale', 'reseller', 'EMEA', '2024-01-01', '[]');",
            )
            .unwrap();
        flag(&s, "T1", 0.9, 100, r#"["duplicate"]"#, "flagged");
        flag(&s, "T2", 0.8, 50, r#"["backdated"]"#, "approved");
        let page = |f: QueueFilter| {
            s.queue_page(&f, QueueSort::Rank, None, PageDir::After, 50)
                .unwrap()
                .into_iter()
                .map(|r| r.transaction_id)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            page(QueueFilter {
                kind: vec!["backdated".into()],
                ..Default::default()
            }),
            ["T2"]
        );
        assert_eq!(
            page(QueueFilter {
                status: vec!["flagged".into()],
                ..Default::default()
            }),
            ["T1"]
        );
        assert_eq!(
            page(QueueFilter {
                min_amount_minor: Some(600),
                ..Default::default()
            }),
            ["T1"]
        );
        assert_eq!(
            page(QueueFilter {
                search: Some("acme".into()),
                ..Default::default()
            }),
            ["T1", "T2"]
        );
        assert_eq!(
            page(QueueFilter {
                search: Some("t2".into()),
                ..Default::default()
            }),
            ["T2"]
        );
        assert!(page(QueueFilter {
            search: Some("zz%".into()),
            ..Default::default()
        })
        .is_empty());
        assert_eq!(
            page(QueueFilter {
                region: Some("EMEA".into()),
                ..Default::default()
            })
            .len(),
            2
        );
    }
}

/// A synthetic program written straight into a cache, for workbench tests and the
/// `bench tui` benchmark (before/independently of the demo generator and importer).
/// Deterministic for a seed. Not used by the product's normal paths.
#[doc(hidden)]
pub mod synthetic {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use rusqlite::params;

    use crate::store::{Result, Store};

    pub struct Options {
        pub transactions: usize,
        pub seed: u64,
        pub currency: String,
        /// Share of in-window transactions carrying at least one anomaly kind.
        pub anomaly_rate: f64,
    }

    const FIRST: [&str; 16] = [
        "Acme",
        "Blue River",
        "Northwind",
        "Contoso",
        "Fabrikam",
        "Globex",
        "Initech",
        "Umbrella",
        "Stark",
        "Wayne",
        "Tyrell",
        "Cyberdyne",
        "Hooli",
        "Vandelay",
        "Soylent",
        "Wonka",
    ];
    const SECOND: [&str; 8] = [
        "Systems",
        "Networks",
        "Solutions",
        "Partners",
        "Digital",
        "IT Services",
        "Cloud",
        "Group",
    ];
    const CUSTOMERS: [&str; 12] = [
        "Helios Health",
        "Orbit Logistics",
        "Kestrel Bank",
        "Mariner Foods",
        "Quanta Labs",
        "Juniper Retail",
        "Atlas Mining",
        "Beacon Insurance",
        "Cobalt Energy",
        "Delta Freight",
        "Evergreen Schools",
        "Falcon Air",
    ];
    const SUFFIX: [&str; 4] = ["", " Inc", " GmbH", " Ltd"];
    const KINDS: [&str; 8] = [
        "deal_size_tier",
        "discount_policy",
        "uncertified_product",
        "duplicate",
        "backdated",
        "split_deals",
        "registration_mismatch",
        "commission_variance",
    ];
    const REGIONS: [&str; 4] = ["NA", "EMEA", "APAC", "LATAM"];
    const TIERS: [(&str, &str); 4] = [
        ("registered", "Registered"),
        ("silver", "Silver"),
        ("gold", "Gold"),
        ("platinum", "Platinum"),
    ];
    const PRODUCTS: [(&str, &str, &str, i64); 6] = [
        ("SKU-CORE-1", "Core Platform", "platform", 1200000),
        ("SKU-CORE-2", "Core Platform Plus", "platform", 2400000),
        ("SKU-SEC-1", "Secure Gateway", "security", 850000),
        ("SKU-SEC-2", "Threat Analytics", "security", 430000),
        ("SKU-SVC-1", "Onboarding Service", "services", 150000),
        ("SKU-SVC-2", "Premium Support", "services", 90000),
    ];

    fn money(minor: i64) -> String {
        rust_decimal::Decimal::new(minor, 2).to_string()
    }

    /// Writes a whole synthetic program; returns how many transactions are in the queue.
    pub fn fill(store: &mut Store, o: &Options) -> Result<usize> {
        let mut rng = ChaCha8Rng::seed_from_u64(o.seed);
        let n_partners = (o.transactions / 200).clamp(12, 5000);
        let mut queued = 0usize;
        let cur = o.currency.clone();
        store.with_fixture_tx(|tx| {
            tx.execute(
                "INSERT OR REPLACE INTO program VALUES (1, 'PRG-SYN', 'Northwind Partner Program', ?1, 1,
                 '2026-10-05', '2026-07-01', '2026-09-30')",
                [&cur],
            )?;
            let plan = serde_json::json!({
                "plan_id": "PLAN-SYN",
                "currency": cur,
                "seller_rates": {"registered": "0.06", "silver": "0.08", "gold": "0.10", "platinum": "0.12"},
                "override_rate": "0.02"
            });
            tx.execute(
                "INSERT OR REPLACE INTO plan VALUES (1, 'PLAN-SYN', ?1)",
                [plan.to_string()],
            )?;
            for (i, (id, name)) in TIERS.iter().enumerate() {
                tx.execute("INSERT OR REPLACE INTO tiers VALUES (?1, ?2, ?3)", params![id, name, i as i64 + 1])?;
            }
            for (sku, name, fam, price) in PRODUCTS {
                tx.execute(
                    "INSERT OR REPLACE INTO products VALUES (?1, ?2, ?3, ?4, ?5, 1)",
                    params![sku, name, fam, money(price), if fam == "security" { Some("SEC-CERT") } else { None }],
                )?;
            }
            let mut partners = Vec::with_capacity(n_partners);
            for i in 0..n_partners {
                let id = format!("P{:05}", i + 1);
                let name = format!(
                    "{} {}{}",
                    FIRST[i % FIRST.len()],
                    SECOND[(i / FIRST.len()) % SECOND.len()],
                    if i >= FIRST.len() * SECOND.len() { format!(" {}", i / (FIRST.len() * SECOND.len())) } else { String::new() }
                );
                let distributor = i % 10 == 0;
                let parent = if distributor || i < 10 { None } else { Some(format!("P{:05}", (i / 10) * 10 + 1)) };
                let region = REGIONS[i % REGIONS.len()];
                let certs = if rng.gen_bool(0.6) { "[\"SEC-CERT\"]" } else { "[]" };
                let tax = format!("{:09}", rng.gen_range(100_000_000u64..999_999_999));
                let bank = format!(
                    "{{\"routing_number\":\"{:09}\",\"account_number\":\"{:010}\",\"account_name\":\"{}\"}}",
                    rng.gen_range(10_000_000u64..99_999_999),
                    rng.gen_range(1_000_000_000u64..9_999_999_999),
                    name
                );
                tx.execute(
                    "INSERT OR REPLACE INTO partners VALUES (?1, ?2, ?3, ?4, ?5, ?6, '2023-03-01', ?7, ?8, ?9, ?10)",
                    params![
                        id,
                        name,
                        if distributor { "distributor" } else { "reseller" },
                        parent,
                        region,
                        ["US", "DE", "JP", "BR"][i % 4],
                        certs,
                        tax,
                        bank,
                        i64::from(i % 37 == 5)
                    ],
                )?;
                let t0 = rng.gen_range(0..3usize);
                tx.execute(
                    "INSERT OR REPLACE INTO tier_history VALUES (?1, ?2, '2023-03-01')",
                    params![id, TIERS[t0].0],
                )?;
                if rng.gen_bool(0.4) {
                    tx.execute(
                        "INSERT OR REPLACE INTO tier_history VALUES (?1, ?2, '2025-07-01')",
                        params![id, TIERS[(t0 + 1).min(3)].0],
                    )?;
                }
                partners.push((id, parent));
            }
            let mut ins_tx = tx.prepare(
                "INSERT INTO transactions (transaction_id, kind, partner_id, registration_id, customer_name,
                   sku, quantity, unit_list_price, unit_net_price, amount, amount_minor, currency, closed_on,
                   submitted_at, invoice_number, row_hash, updated_at)
                 VALUES (?1, 'sale', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?13)",
            )?;
            let mut ins_flag = tx.prepare(
                "INSERT INTO flags (transaction_id, score, confidence, kinds, reasons, evidence,
                   detector_version, row_hash, scored_at, in_window, amount_minor, at_stake_minor,
                   partner_id, status)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'syn-1', ?7, '2026-10-05T06:00:00Z', ?8, ?9, ?10, ?11, ?12)",
            )?;
            let mut ins_comm = tx.prepare("INSERT INTO commissions VALUES (?1, ?2, ?3, ?4, ?5, ?6)")?;
            let mut ins_prop = tx.prepare(
                "INSERT INTO proposals VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'syn-1', '2026-10-05T06:00:00Z')",
            )?;
            let mut ins_reg = tx.prepare(
                "INSERT INTO registrations VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            let start = chrono::NaiveDate::from_ymd_opt(2025, 1, 1).unwrap_or_default();
            let window_start = chrono::NaiveDate::from_ymd_opt(2026, 7, 1).unwrap_or_default();
            let mut last_by_partner: Vec<Option<(String, String, String, i64)>> = vec![None; n_partners];
            for i in 0..o.transactions {
                let pi = rng.gen_range(0..n_partners);
                let (pid, parent) = &partners[pi];
                let id = format!("TX-{:07}", i + 1);
                // The last ~15% of transactions fall in the review window.
                let day = if rng.gen_bool(0.15) { rng.gen_range(546..638) } else { rng.gen_range(0..546) };
                let closed = start + chrono::Duration::days(day);
                let submitted = closed + chrono::Duration::days(rng.gen_range(0..15));
                let in_window = submitted >= window_start && submitted <= chrono::NaiveDate::from_ymd_opt(2026, 9, 30).unwrap_or_default();
                let (sku, _, _, list) = PRODUCTS[rng.gen_range(0..PRODUCTS.len())];
                let qty = rng.gen_range(1..20i64);
                let disc = rng.gen_range(0..30i64);
                let net = list * (100 - disc) / 100;
                let amount = net * qty;
                let mut customer = format!(
                    "{}{}",
                    CUSTOMERS[rng.gen_range(0..CUSTOMERS.len())],
                    SUFFIX[rng.gen_range(0..SUFFIX.len())]
                );
                let anomalous = in_window && rng.gen_bool(o.anomaly_rate);
                let mut kinds: Vec<&str> = Vec::new();
                let mut reasons: Vec<String> = Vec::new();
                let mut evidence = serde_json::Map::new();
                let mut amount = amount;
                if anomalous {
                    let k = KINDS[rng.gen_range(0..KINDS.len())];
                    kinds.push(k);
                    if rng.gen_bool(0.2) {
                        let k2 = KINDS[rng.gen_range(0..KINDS.len())];
                        if k2 != k {
                            kinds.push(k2);
                        }
                    }
                    for k in &kinds {
                        match *k {
                            "duplicate" => {
                                if let Some((oid, ocust, _, oamt)) = &last_by_partner[pi] {
                                    customer = ocust.to_uppercase().replace(" INC", ", Inc.");
                                    amount = *oamt;
                                    reasons.push(format!("Same partner, customer and amount as {oid} submitted earlier; the customer name differs only in case and punctuation."));
                                    evidence.insert("duplicate_of".into(), oid.clone().into());
                                    evidence.insert("name_similarity".into(), 0.97.into());
                                } else {
                                    reasons.push("Resembles an earlier submission by the same partner.".into());
                                }
                            }
                            "discount_policy" => {
                                reasons.push(format!("Discount of {}% exceeds the tier's maximum of 20% for this family.", 20 + disc));
                                evidence.insert("discount_pct".into(), (20 + disc).into());
                                evidence.insert("max_discount_pct".into(), 20.into());
                            }
                            "backdated" => {
                                reasons.push("Closed date is 41 days before submission, after the quarter closed.".into());
                                evidence.insert("lag_days".into(), 41.into());
                            }
                            "deal_size_tier" => {
                                reasons.push("Deal is 6.2× the partner's median deal size for its tier.".into());
                                evidence.insert("ratio_to_median".into(), 6.2.into());
                            }
                            other => {
                                reasons.push(format!("Flagged for {}.", other.replace('_', " ")));
                                evidence.insert("rule".into(), other.into());
                            }
                        }
                    }
                }
                let reg_id = if rng.gen_bool(0.3) { Some(format!("REG-{:07}", i + 1)) } else { None };
                if let Some(r) = &reg_id {
                    let (rp, rstatus) = if kinds.contains(&"registration_mismatch") {
                        (partners[(pi + 1) % n_partners].0.clone(), "expired")
                    } else {
                        (pid.clone(), "approved")
                    };
                    ins_reg.execute(params![
                        r,
                        rp,
                        customer,
                        money(amount),
                        (closed - chrono::Duration::days(60)).to_string(),
                        (closed + chrono::Duration::days(30)).to_string(),
                        rstatus
                    ])?;
                }
                let closed_s = closed.to_string();
                let submitted_s = format!("{submitted}T09:{:02}:00Z", i % 60);
                ins_tx.execute(params![
                    id,
                    pid,
                    reg_id,
                    customer,
                    sku,
                    qty,
                    money(list),
                    money(net),
                    money(amount),
                    amount,
                    cur,
                    closed_s,
                    submitted_s,
                    format!("INV-{:08}", i + 1),
                    format!("h{i}")
                ])?;
                let comm = amount / 10;
                let period = format!("{}-Q{}", closed.format("%Y"), (chrono::Datelike::month(&closed) - 1) / 3 + 1);
                ins_comm.execute(params![format!("C-{:07}-S", i + 1), id, pid, "seller", money(comm), period])?;
                if let Some(par) = parent {
                    ins_comm.execute(params![format!("C-{:07}-O", i + 1), id, par, "override", money(amount / 50), period])?;
                }
                let score: f64 = if kinds.is_empty() { rng.gen_range(0.0..0.3) } else { rng.gen_range(0.55..0.99) };
                let stake = if kinds.is_empty() { 0 } else { comm };
                let status = if kinds.is_empty() { "flagged" } else {
                    match rng.gen_range(0..20) { 0 => "in_review", 1 => "awaiting_signoff", 2 => "escalated", _ => "flagged" }
                };
                ins_flag.execute(params![
                    id,
                    (score * 10000.0).round() / 10000.0,
                    if kinds.is_empty() { 0.5 } else { 0.85 },
                    serde_json::to_string(&kinds).unwrap_or_else(|_| "[]".into()),
                    serde_json::to_string(&reasons).unwrap_or_else(|_| "[]".into()),
                    serde_json::Value::Object(evidence).to_string(),
                    format!("h{i}"),
                    i64::from(in_window),
                    amount,
                    stake,
                    pid,
                    status
                ])?;
                if !kinds.is_empty() {
                    queued += 1;
                    let (action, proposed) = if kinds.contains(&"duplicate") {
                        ("reverse", 0)
                    } else if kinds.contains(&"registration_mismatch") {
                        ("hold", 0)
                    } else {
                        ("adjust", comm * 7 / 10)
                    };
                    ins_prop.execute(params![
                        id,
                        action,
                        money(comm),
                        money(proposed),
                        money(proposed - comm),
                        cur,
                        format!("seller rate applied to {} gives {}; the PRM accrued {}", money(amount), money(proposed), money(comm))
                    ])?;
                    if status == "awaiting_signoff" {
                        tx.execute(
                            "INSERT INTO cases VALUES (?1, 'awaiting_signoff', ?2, 'ana', NULL, 2, '2026-10-05T07:00:00Z')",
                            params![id, money(proposed)],
                        )?;
                    }
                }
                last_by_partner[pi] = Some((id, customer, closed_s, amount));
            }
            tx.execute(
                "INSERT OR REPLACE INTO sync_state VALUES ('status', 'offline'), ('last_sync', '2026-10-05T06:30:00Z')",
                [],
            )?;
            Ok(())
        })?;
        Ok(queued)
    }
}
