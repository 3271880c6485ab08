//! PRM sync: adapters, credentials, pull and push.
//!
//! One run ([`run_once`]):
//! 1. **Push** the outbox in order. Neither PRM documents idempotency keys, so each
//!    write carries the decision's UUID where the PRM keeps it (a PartnerStack reward's
//!    description, an Impartner decision-id field) and the record is read back before
//!    every attempt: a write already there is not sent again. Transient failures are
//!    retried with exponential backoff and full jitter, honouring `Retry-After`; a
//!    record changed since the decision (Impartner `recordVersion`) becomes a conflict
//!    with three versions (seen / decided / remote), never an overwrite; a refusal marks
//!    the entry failed with the PRM's message; a write the PRM has no API for
//!    (PartnerStack holds, declines, approvals) is left `manual` for its own screen and
//!    confirmed when a pull shows it.
//! 2. **Pull** each resource connector-defined walk by walk: incremental from the saved
//!    cursor, or a full pass (the first pull, `--full`, or every full-pass interval for
//!    resources whose incremental pull cannot see status changes). A writer thread
//!    writes each page's rows together with the walk's position in one SQLite
//!    transaction (several pages per transaction, up to `commit_rows` /
//!    `commit_window`), so a crash resumes the walk without loss or duplication, and an
//!    incremental walk follows a resumed one. Malformed items are quarantined with their
//!    raw payload while the rest syncs; only what changed is written. A first pull into
//!    an empty cache drops the secondary indexes of the empty tables and rebuilds them
//!    at the end (the import's bulk path).
//! 3. Write the status (online/offline, last sync, items pulled, errors) to `sync_state`.
//!
//! Offline is a normal state: when the PRM cannot be reached the run says so, the
//! outbox keeps waiting, and everything else works on the cache.
//!
//! The outbox payload is the workflow's typed [`workflow::OutboxPayload`]; rows of the
//! older untyped shape are still read.

pub mod adapter;
pub mod creds;

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use rand::Rng;

use crate::prm::Res;
use crate::store::sync::PageWrite;
use crate::store::Store;
use crate::workflow::{self, OutboxItem};
pub use adapter::{
    AnyPrm, Conn, ConnectorConfig, Cursor, Page, Prm, PrmError, PushOutcome, PushRequest, Walk,
};

/// SQLite page cache while pulling into a non-empty cache, in KiB.
const BULK_CACHE_KIB: i64 = 64 * 1024;

/// How often a full pass re-reads the resources whose incremental pull cannot see
/// status changes (PartnerStack transactions and rewards), by default.
pub const DEFAULT_FULL_PASS: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, Clone)]
pub struct SyncOptions {
    pub page_limit: usize,
    pub max_attempts: u32,
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// Longest `Retry-After` honoured before giving up for this run.
    pub retry_after_cap: Duration,
    /// Rows per SQLite transaction at most (pages are never split).
    pub commit_rows: usize,
    /// Longest time pulled rows wait for more before they are committed.
    pub commit_window: Duration,
    /// The resources to pull (empty: every resource the connector pulls, in its order).
    pub resources: Vec<Res>,
    pub push: bool,
    /// Force a full pass of every resource now (`sync --full`).
    pub full: bool,
    /// Interval of the full pass of resources whose incremental pull cannot see status
    /// changes (`[prm] full_pass_hours`).
    pub full_interval: Duration,
}

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptions {
            page_limit: 250,
            max_attempts: 8,
            backoff_base: Duration::from_millis(200),
            backoff_cap: Duration::from_secs(10),
            retry_after_cap: Duration::from_secs(60),
            commit_rows: 100_000,
            commit_window: Duration::from_secs(2),
            resources: Vec::new(),
            push: true,
            full: false,
            full_interval: DEFAULT_FULL_PASS,
        }
    }
}

/// Progress of a run, for a progress bar.
#[derive(Debug, Clone)]
pub struct Progress {
    pub phase: &'static str,
    pub resource: &'static str,
    pub done: u64,
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct SyncReport {
    pub online: bool,
    pub pulled: BTreeMap<String, u64>,
    pub written: u64,
    pub quarantined: u64,
    pub pushed: u64,
    pub conflicts: u64,
    /// Decisions the PRM refused for good: (transaction, decision, message).
    pub refused: Vec<(String, String, String)>,
    pub errors: Vec<String>,
    /// What did not sync without stopping the rest (a mapped object the tenant lacks).
    pub warnings: Vec<String>,
    /// Transactions inserted or changed by this pull (to score).
    pub changed_transactions: Vec<String>,
    pub retries: u64,
    /// Cases sent back to review because the PRM changed their record.
    pub lapsed: Vec<String>,
    /// Resources read in full this run (a first pull, `--full`, or the periodic pass).
    pub full_passes: Vec<String>,
    /// Decisions the PRM has no API for, left for its own screen: (transaction, what to do).
    pub manual: Vec<(String, String)>,
    /// Decisions left for the PRM's screen that a pull now shows applied.
    pub confirmed: Vec<String>,
    /// Transactions whose processing status was written back on the PRM.
    pub statuses: u64,
}

impl SyncReport {
    pub fn total_pulled(&self) -> u64 {
        self.pulled.values().sum()
    }
}

/// `base * 2^attempt` capped, then a uniformly random delay in `[0, that]` (full jitter).
pub fn full_jitter(base: Duration, cap: Duration, attempt: u32) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.min(20)).min(cap);
    let ms = exp.as_millis() as u64;
    Duration::from_millis(if ms == 0 {
        0
    } else {
        rand::thread_rng().gen_range(0..=ms)
    })
}

async fn with_retry<T, F, Fut>(
    opts: &SyncOptions,
    retries: &mut u64,
    mut f: F,
) -> Result<T, PrmError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, PrmError>>,
{
    let mut attempt = 0u32;
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(PrmError::Transient { msg, retry_after }) => {
                attempt += 1;
                if attempt >= opts.max_attempts {
                    return Err(PrmError::Transient { msg, retry_after });
                }
                let delay = match retry_after {
                    Some(d) if d > opts.retry_after_cap => {
                        return Err(PrmError::Transient {
                            msg: format!("{msg}; PRM asks to retry after {}s", d.as_secs()),
                            retry_after: Some(d),
                        })
                    }
                    Some(d) => d,
                    None => full_jitter(opts.backoff_base, opts.backoff_cap, attempt - 1),
                };
                *retries += 1;
                tracing::debug!(attempt, ?delay, "retrying: {msg}");
                tokio::time::sleep(delay).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Maps a workflow outbox item to the PRM write it stands for: the typed
/// [`workflow::PrmWrite`] (old rows are read through the payload's fallback decoder),
/// matched exhaustively. An amount that cannot be written exactly in the currency's
/// minor units is refused here, naming the decision, and never blocks other rows.
pub fn push_request_item(
    row: &OutboxItem,
    audit_head: Option<String>,
) -> Result<PushRequest, String> {
    let p = workflow::OutboxPayload::decode(&row.payload, &row.decision_id)
        .map_err(|e| e.to_string())?;
    let (action, amount, delta) = match &p.write {
        workflow::PrmWrite::Adjust {
            amount,
            current_amount,
        } => {
            let delta = *amount - *current_amount;
            for d in [*amount, delta] {
                if let Err(e) = crate::money::to_minor_exact(d, &p.currency) {
                    return Err(format!("decision {}: {e}", row.decision_id));
                }
            }
            ("adjust", Some(*amount), Some(delta))
        }
        workflow::PrmWrite::Approve => ("approve", None, None),
        workflow::PrmWrite::Release => ("release", None, None),
        workflow::PrmWrite::Hold { .. } => ("hold", None, None),
        workflow::PrmWrite::Decline => ("decline", None, None),
    };
    Ok(PushRequest {
        idempotency_key: row.idempotency_key.clone(),
        transaction_id: row.transaction_id.clone(),
        action: action.to_string(),
        reason: Some(p.reason),
        amount,
        delta,
        currency: p.currency,
        proposer: p.proposer,
        approver: p.signed_off_by,
        record_version: row.record_version,
        audit_head: row.audit_head.clone().or(audit_head),
        decided_at: chrono::DateTime::parse_from_rfc3339(&p.decided_at)
            .ok()
            .map(|t| t.with_timezone(&chrono::Utc)),
        partner_id: None,
        commission_ids: Vec::new(),
        anomaly_score: None,
        flag_reason: None,
    })
}

/// Pushes the outbox in order. Stops at the first transient failure (order matters);
/// returns false only when the PRM could not be reached at all: a PRM that answered a write
/// with an error is still pulled from (the pull does not depend on the push).
pub async fn push_outbox<P: Prm>(
    prm: &P,
    store: &mut Store,
    opts: &SyncOptions,
    report: &mut SyncReport,
    progress: &mut (dyn FnMut(&Progress) + Send),
) -> bool {
    let head = workflow::audit_head(store).ok();
    let mut done = 0u64;
    loop {
        let rows = match workflow::pending_outbox(store, 100) {
            Ok(r) => r,
            Err(e) => {
                report.errors.push(format!("reading the outbox: {e}"));
                return true;
            }
        };
        if rows.is_empty() {
            return true;
        }
        for row in rows {
            let req = match push_request_item(&row, head.clone()) {
                Ok(mut r) => {
                    if let Ok(c) = store.push_context(&row.transaction_id) {
                        r.partner_id = c.partner_id;
                        r.commission_ids = c.commission_ids;
                        r.anomaly_score = c.anomaly_score;
                        r.flag_reason = c.flag_reason;
                    }
                    r
                }
                Err(e) => {
                    let _ = workflow::mark_refused(store, &row.decision_id, &e);
                    report.errors.push(e);
                    continue;
                }
            };
            let mut retries = 0;
            let res = with_retry(opts, &mut retries, || prm.apply(&req)).await;
            report.retries += retries;
            let r = match res {
                Ok(PushOutcome::Applied { remote_ref }) => {
                    report.pushed += 1;
                    workflow::mark_pushed(store, &row.decision_id, &remote_ref)
                }
                Ok(PushOutcome::Conflict { remote }) => {
                    report.conflicts += 1;
                    workflow::mark_conflict(
                        store,
                        &row.decision_id,
                        remote,
                        "the PRM record changed after the decision",
                    )
                }
                Ok(PushOutcome::Manual { note }) => {
                    report
                        .manual
                        .push((row.transaction_id.clone(), note.clone()));
                    workflow::mark_manual(store, &row.decision_id, &note)
                }
                Ok(PushOutcome::Refused { message }) => {
                    report.refused.push((
                        row.transaction_id.clone(),
                        row.decision_id.clone(),
                        message.clone(),
                    ));
                    workflow::mark_refused(
                        store,
                        &row.decision_id,
                        &format!("refused by the PRM: {message}"),
                    )
                }
                Err(e) => {
                    let _ = workflow::record_push_attempt(store, &row.decision_id, &e.to_string());
                    report.errors.push(format!("push {}: {e}", row.decision_id));
                    // Keep the order: nothing after this entry goes out before it.
                    return !e.is_unreachable();
                }
            };
            if let Err(e) = r {
                report
                    .errors
                    .push(format!("recording push of {}: {e}", row.decision_id));
                return true;
            }
            done += 1;
            progress(&Progress {
                phase: "push",
                resource: "outbox",
                done,
            });
        }
    }
}

/// Status writes per sync run at most (the rest follow in the next runs).
pub const STATUS_BATCH: usize = 2_000;

/// Writes processing statuses (with anomaly score and flag reason) back on the PRM where
/// the connector can, once per change; stops quietly where it cannot, and at the first
/// failure (the rest wait for the next run).
pub async fn push_statuses<P: Prm>(
    prm: &P,
    store: &mut Store,
    opts: &SyncOptions,
    report: &mut SyncReport,
) {
    if !prm.capabilities().patch_record {
        return;
    }
    let due = match store.prm_status_due(STATUS_BATCH) {
        Ok(d) => d,
        Err(e) => {
            report
                .errors
                .push(format!("reading statuses to write: {e}"));
            return;
        }
    };
    for d in due {
        let mut retries = 0;
        let res = with_retry(opts, &mut retries, || prm.write_status(&d)).await;
        report.retries += retries;
        match res {
            Ok(adapter::StatusOutcome::Written(_)) => {
                if let Err(e) = store.prm_status_written(&d) {
                    report
                        .errors
                        .push(format!("recording the status of {}: {e}", d.transaction_id));
                    return;
                }
                report.statuses += 1;
            }
            Ok(adapter::StatusOutcome::Unsupported(why)) => {
                report
                    .warnings
                    .push(format!("processing status not written back: {why}"));
                return;
            }
            Ok(adapter::StatusOutcome::Refused(why)) => {
                report
                    .errors
                    .push(format!("status of {}: {why}", d.transaction_id));
                return;
            }
            Err(e) => {
                report
                    .errors
                    .push(format!("status of {}: {e}", d.transaction_id));
                return;
            }
        }
    }
}

/// Pulls every resource from its cursor; the store is written on a writer thread.
/// Returns the store and whether the PRM was reachable.
pub async fn pull<P: Prm>(
    prm: &P,
    store: Store,
    opts: &SyncOptions,
    report: &mut SyncReport,
    progress: &mut (dyn FnMut(&Progress) + Send),
) -> (Store, bool) {
    let resources: Vec<Res> = prm
        .resources()
        .iter()
        .copied()
        .filter(|r| opts.resources.is_empty() || opts.resources.contains(r))
        .collect();
    let mut cursors = BTreeMap::new();
    for &res in &resources {
        let c = match store.sync_cursor(res.ps_name()) {
            Ok(Some(text)) => Cursor::parse(&text),
            Ok(None) => Cursor::default(),
            Err(e) => {
                report
                    .errors
                    .push(format!("reading cursor of {}: {e}", res.ps_name()));
                return (store, true);
            }
        };
        cursors.insert(res, c);
    }
    match store.prm_keys() {
        Ok(keys) => prm.prime(&keys),
        Err(e) => {
            report.errors.push(format!("reading PRM keys: {e}"));
            return (store, true);
        }
    }
    // A first pull into an empty cache takes the bulk path the import uses: secondary
    // indexes of the empty tables dropped and rebuilt once at the end (remembered in
    // the cache, so a run killed half-way gets them back on the next start). Otherwise
    // a larger page cache keeps the index pages of a big cache in memory.
    let mut store = store;
    let fresh = resources.contains(&Res::Transactions)
        && cursors
            .get(&Res::Transactions)
            .is_some_and(Cursor::is_start)
        && match store.sync_table_empty("transactions") {
            Ok(e) => e,
            Err(e) => {
                report.errors.push(format!("reading the cache: {e}"));
                return (store, true);
            }
        };
    let prepared = if fresh {
        store.begin_bulk_import().map(|_| None)
    } else {
        store
            .restore_dropped_indexes()
            .and_then(|_| store.sync_bulk_cache(BULK_CACHE_KIB).map(Some))
    };
    let restore_cache = match prepared {
        Ok(kib) => kib,
        Err(e) => {
            report.errors.push(format!("preparing the cache: {e}"));
            return (store, true);
        }
    };
    let (tx, rx) = std::sync::mpsc::sync_channel::<PageWrite>(64);
    let commit_rows = opts.commit_rows.max(1);
    let commit_window = opts.commit_window;
    let writer = std::thread::spawn(move || {
        let mut store = store;
        let mut stats = crate::store::sync::ApplyStats::default();
        let mut err = None;
        while let Ok(first) = rx.recv() {
            // Gather pages for up to `commit_window` (or `commit_rows` rows): one commit
            // (one fsync) per batch instead of one per page. Each page's rows still go
            // in with its cursor, so a crash loses at most the uncommitted batch, which
            // the next run pulls again from the saved cursor.
            let deadline = Instant::now() + commit_window;
            let mut rows = first.items.len();
            let mut batch = vec![first];
            while rows < commit_rows {
                let left = deadline.saturating_duration_since(Instant::now());
                match rx.recv_timeout(left) {
                    Ok(p) => {
                        rows += p.items.len();
                        batch.push(p);
                    }
                    Err(_) => break,
                }
            }
            match store.sync_apply(&batch) {
                Ok(s) => {
                    stats.rows += s.rows;
                    stats.quarantined += s.quarantined;
                    stats.changed_transactions.extend(s.changed_transactions);
                }
                Err(e) => {
                    err = Some(e.to_string());
                    break;
                }
            }
        }
        if fresh {
            if let Err(e) = store.end_bulk_import() {
                err.get_or_insert(format!("rebuilding indexes after the first pull: {e}"));
            }
        } else if let Some(kib) = restore_cache {
            let _ = store.sync_bulk_cache(kib);
        }
        (store, stats, err)
    });
    let mut online = true;
    let now_ms = chrono::Utc::now().timestamp_millis();
    'all: for &res in &resources {
        let mut cur = cursors.get(&res).cloned().unwrap_or_default();
        // Resume a walk a crash interrupted, else start one: a full pass the first time,
        // when asked, or when the incremental pull cannot see status changes and the
        // last full pass is older than the interval.
        // A walk a crash interrupted is finished first; it cannot see what was created
        // since it started, so an incremental walk follows it in the same run.
        let mut resumed = cur.walk.is_some();
        let mut walk = match cur.walk.clone() {
            Some(w) => w,
            None => {
                let due = !prm.incremental_sees_changes(res)
                    && cur.last_full.is_none_or(|t| {
                        now_ms.saturating_sub(t) >= opts.full_interval.as_millis() as i64
                    });
                let full = cur.since.is_none() || opts.full || due;
                Walk {
                    full,
                    since: if full { None } else { cur.since },
                    started: now_ms,
                    ..Walk::default()
                }
            }
        };
        if walk.full {
            report.full_passes.push(res.ps_name().to_string());
        }
        let mut n = 0u64;
        loop {
            let mut retries = 0;
            let page =
                with_retry(opts, &mut retries, || prm.list(res, &walk, opts.page_limit)).await;
            report.retries += retries;
            match page {
                Ok(p) => {
                    n += p.items.len() as u64;
                    *report.pulled.entry(res.ps_name().to_string()).or_default() +=
                        p.items.len() as u64;
                    progress(&Progress {
                        phase: "pull",
                        resource: res.ps_name(),
                        done: n,
                    });
                    walk = p.walk;
                    let done = p.done;
                    if done {
                        if let Some(t) = walk.max_seen {
                            cur.since = Some(cur.since.map_or(t, |s| s.max(t)));
                        }
                        if walk.full {
                            cur.last_full = Some(walk.started);
                        }
                        cur.walk = None;
                    } else {
                        cur.walk = Some(walk.clone());
                    }
                    let cursor = serde_json::to_string(&cur).unwrap_or_default();
                    if tx
                        .send(PageWrite {
                            resource: res.ps_name().to_string(),
                            items: p.items,
                            cursor,
                        })
                        .is_err()
                    {
                        break 'all; // the writer stopped; its error is reported below
                    }
                    if done {
                        if !resumed {
                            break;
                        }
                        resumed = false;
                        walk = Walk {
                            full: cur.since.is_none(),
                            since: cur.since,
                            started: chrono::Utc::now().timestamp_millis(),
                            ..Walk::default()
                        };
                    }
                }
                Err(PrmError::Missing(why)) => {
                    report.warnings.push(why);
                    continue 'all;
                }
                Err(e) => {
                    if matches!(e, PrmError::Transient { .. }) {
                        online = false;
                    }
                    report.errors.push(format!("pull {}: {e}", res.ps_name()));
                    break 'all;
                }
            }
        }
    }
    drop(tx);
    let (store, stats, err) = match writer.join() {
        Ok(v) => v,
        Err(_) => panic!("the sync writer thread panicked"),
    };
    if let Some(e) = err {
        report.errors.push(format!("writing pulled rows: {e}"));
    }
    report.written += stats.rows;
    report.quarantined += stats.quarantined;
    report
        .changed_transactions
        .extend(stats.changed_transactions);
    (store, online)
}

/// One full sync: push the outbox, pull every resource, record the status.
pub async fn run_once<P: Prm>(
    prm: &P,
    mut store: Store,
    opts: &SyncOptions,
    progress: &mut (dyn FnMut(&Progress) + Send),
) -> (Store, SyncReport) {
    let started = Instant::now();
    let mut report = SyncReport {
        online: true,
        ..SyncReport::default()
    };
    // The cache's binding (store::binding): a demo cache, or one bound to another PRM,
    // is neither pulled into nor pushed from.
    if let Ok(Some(why)) = store.sync_refusal(prm.flavor().as_str()) {
        report.errors.push(format!("sync refused: {why}"));
        return (store, report);
    }
    if opts.push {
        report.online = push_outbox(prm, &mut store, opts, &mut report, progress).await;
        if report.online {
            push_statuses(prm, &mut store, opts, &mut report).await;
        }
    }
    if report.online {
        let (s, online) = pull(prm, store, opts, &mut report, progress).await;
        store = s;
        report.online = online;
        // Decisions left for the PRM's own screen are done once a pull shows them.
        match workflow::confirm_manual(&mut store) {
            Ok(c) => report.confirmed = c,
            Err(e) => report
                .errors
                .push(format!("checking decisions left for the PRM: {e}")),
        }
        if !report.changed_transactions.is_empty() {
            // A decision signed off on a record the PRM has since changed goes back to review.
            let actor = workflow::Actor::new("sync", crate::config::Role::Manager);
            match workflow::lapse_changed_signoffs(&mut store, &actor) {
                Ok(lapsed) => report.lapsed = lapsed,
                Err(e) => report
                    .errors
                    .push(format!("lapsing changed sign-offs: {e}")),
            }
        }
    }
    let _ = record_status(&store, &report, started.elapsed());
    (store, report)
}

/// Writes the run's outcome into `sync_state` for the workbench status bar.
pub fn record_status(
    store: &Store,
    report: &SyncReport,
    took: Duration,
) -> crate::store::Result<()> {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let counts = store.sync_counts()?;
    let mut kv: Vec<(&str, String)> = vec![
        (
            "status",
            if report.online { "online" } else { "offline" }.to_string(),
        ),
        ("last_attempt", now.clone()),
        ("items_pulled", report.total_pulled().to_string()),
        ("pushed", report.pushed.to_string()),
        ("error_count", report.errors.len().to_string()),
        (
            "last_error",
            report.errors.last().cloned().unwrap_or_default(),
        ),
        (
            "outbox_pending",
            counts
                .get("outbox_pending")
                .copied()
                .unwrap_or(0)
                .to_string(),
        ),
        (
            "conflicts",
            counts.get("conflicts").copied().unwrap_or(0).to_string(),
        ),
        (
            "quarantined",
            counts.get("quarantined").copied().unwrap_or(0).to_string(),
        ),
        ("last_duration_ms", took.as_millis().to_string()),
    ];
    if report.online && report.errors.is_empty() {
        kv.push(("last_sync", now));
    }
    store.sync_state_set(&kv)
}

/// Marks the cache offline (the `--offline` flag) without contacting the PRM.
pub fn record_offline(store: &Store) -> crate::store::Result<()> {
    store.sync_state_set(&[("status", "offline".to_string())])
}
