//! Background PRM sync for the workbench: a thread with its own store connection and a
//! tokio runtime runs [`crate::sync::run_once`] when asked (`S`) and every
//! [`interval`] while a PRM is configured and its credential is found. Progress and
//! results come back as [`Msg`]s on the render loop's channel; the UI never waits.
//! Without a PRM (or credential, or network) the workbench is offline: decisions keep
//! queueing in the outbox and the status bar says why.

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use super::effects::{Incoming, Msg};
use crate::config::PrmConfig;
use crate::store::Store;
use crate::sync::{AnyPrm, Progress, SyncOptions, SyncReport};

/// Seconds between background syncs (`TIERDESK_SYNC_INTERVAL` overrides; 0 = only on `S`).
pub const DEFAULT_INTERVAL_SECS: u64 = 60;

/// Caches with more transactions than this are not rescored in the workbench after a
/// pull (memory); the status bar says to run `tierdesk score`.
pub const RESCORE_MAX_TRANSACTIONS: i64 = 250_000;

/// What the sync thread is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncCmd {
    Now,
}

/// One finished run, as the status bar shows it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SyncSummary {
    pub online: bool,
    pub pulled: u64,
    pub pushed: u64,
    pub conflicts: u64,
    pub refused: usize,
    pub errors: Vec<String>,
    /// Rows written (new or changed): the queue and the search index need a reload.
    pub written: u64,
    pub scored: Option<Result<usize, String>>,
    pub millis: u64,
    /// The run stopped on an internal error (a panic, logged): what it said.
    pub crashed: Option<String>,
}

impl SyncSummary {
    pub fn from_report(r: &SyncReport, took: Duration) -> SyncSummary {
        SyncSummary {
            online: r.online,
            pulled: r.total_pulled(),
            pushed: r.pushed,
            conflicts: r.conflicts,
            refused: r.refused.len(),
            errors: r.errors.clone(),
            written: r.written,
            scored: None,
            millis: took.as_millis() as u64,
            crashed: None,
        }
    }

    /// One line for the message area.
    pub fn describe(&self) -> String {
        if let Some(why) = &self.crashed {
            return format!("sync: {why}; decisions wait in the outbox");
        }
        if !self.online {
            return "sync: PRM unreachable — working offline; decisions wait in the outbox".into();
        }
        let mut s = format!(
            "sync: pulled {}, pushed {}, {} conflict(s)",
            self.pulled, self.pushed, self.conflicts
        );
        if self.refused > 0 {
            s.push_str(&format!(", {} refused by the PRM", self.refused));
        }
        match &self.scored {
            Some(Ok(n)) => s.push_str(&format!(", {n} rescored")),
            Some(Err(e)) => s.push_str(&format!(", not rescored: {e}")),
            None => {}
        }
        if let Some(e) = self.errors.last() {
            s.push_str(&format!(" — {} error(s), last: {e}", self.errors.len()));
        }
        s
    }
}

/// The interval from the environment, else the default.
pub fn interval() -> Option<Duration> {
    let secs = std::env::var("TIERDESK_SYNC_INTERVAL")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(DEFAULT_INTERVAL_SECS);
    (secs > 0).then(|| Duration::from_secs(secs))
}

fn send(tx: &Sender<Incoming>, m: Msg) -> bool {
    tx.send(Incoming::Msg(m)).is_ok()
}

/// Connects to the configured PRM: its flavour and the credential (keyring, with a
/// timeout; `TIERDESK_PRM_TOKEN` overrides). Err: why the workbench stays offline.
fn connect(prm: Option<&PrmConfig>) -> Result<AnyPrm, String> {
    let cfg =
        prm.ok_or_else(|| "no PRM configured (tierdesk login --prm URL --flavor F)".to_string())?;
    crate::sync::adapter::connect_configured(cfg)
}

/// One run against `prm` on `db`: push, pull, record status, rescore what changed.
pub fn run_one(
    rt: &tokio::runtime::Runtime,
    prm: &AnyPrm,
    db: &std::path::Path,
    opts: &SyncOptions,
    tx: &Sender<Incoming>,
) -> SyncSummary {
    let started = Instant::now();
    let store = match Store::open(db) {
        Ok(s) => s,
        Err(e) => {
            return SyncSummary {
                online: false,
                errors: vec![format!("cannot open the cache: {e}")],
                ..SyncSummary::default()
            }
        }
    };
    let mut last = Instant::now() - Duration::from_secs(1);
    let progress_tx = tx.clone();
    let mut progress = move |p: &Progress| {
        if last.elapsed() >= Duration::from_millis(100) {
            last = Instant::now();
            let _ = progress_tx.send(Incoming::Msg(Msg::SyncProgress {
                phase: p.phase.to_string(),
                resource: p.resource.to_string(),
                done: p.done,
            }));
        }
    };
    let (mut store, report) = rt.block_on(crate::sync::run_once(prm, store, opts, &mut progress));
    let mut summary = SyncSummary::from_report(&report, started.elapsed());
    if !report.changed_transactions.is_empty() {
        summary.scored = Some(rescore(&mut store));
    }
    summary.millis = started.elapsed().as_millis() as u64;
    summary
}

fn rescore(store: &mut Store) -> Result<usize, String> {
    let n = store.transaction_rowid_max().map_err(|e| e.to_string())?;
    if n > RESCORE_MAX_TRANSACTIONS {
        return Err(format!("{n} transactions: run `tierdesk score`"));
    }
    match (store.program(), store.plan()) {
        (Ok(Some(_)), Ok(Some(_))) => {}
        _ => return Err("no program or plan in the cache yet".into()),
    }
    crate::service::score::score_cache(store, &mut |_, _| {})
        .map(|s| s.rescored)
        .map_err(|e| format!("{e:#}"))
}

/// Options for the workbench's runs: fewer, shorter retries than `tierdesk sync` (an
/// unreachable PRM is reported within seconds; the next run tries again).
pub fn workbench_options() -> SyncOptions {
    SyncOptions {
        max_attempts: 3,
        backoff_base: Duration::from_millis(200),
        backoff_cap: Duration::from_secs(2),
        retry_after_cap: Duration::from_secs(10),
        ..SyncOptions::default()
    }
}

/// Starts the sync thread. It answers every [`SyncCmd::Now`] and, when a PRM is
/// reachable in principle (configured, credential found), syncs every `every`.
pub fn spawn(
    db: PathBuf,
    prm: Option<PrmConfig>,
    every: Option<Duration>,
    rx: Receiver<SyncCmd>,
    tx: Sender<Incoming>,
) {
    // The credential lookup can be slow (keyring): it happens on the sync thread.
    spawn_with(
        db,
        move || connect(prm.as_ref()),
        workbench_options(),
        every,
        rx,
        tx,
    );
}

/// [`spawn`] with the connection made by `connect` (on the sync thread) and `opts`.
pub fn spawn_with(
    db: PathBuf,
    connect: impl FnOnce() -> Result<AnyPrm, String> + Send + 'static,
    opts: SyncOptions,
    every: Option<Duration>,
    rx: Receiver<SyncCmd>,
    tx: Sender<Incoming>,
) {
    std::thread::spawn(move || {
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                send(&tx, Msg::SyncUnavailable(format!("no async runtime: {e}")));
                return;
            }
        };
        let conn = super::guard::catch("connecting to the PRM", connect).and_then(|c| c);
        if let Err(why) = &conn {
            if !send(&tx, Msg::SyncUnavailable(why.clone())) {
                return;
            }
        }
        // First run right away when a PRM is there and background sync is on
        // (`TIERDESK_SYNC_INTERVAL=0`: only when asked with `S`).
        let mut due = (conn.is_ok() && every.is_some()).then(Instant::now);
        loop {
            let wait = due.map_or(Duration::from_secs(3600), |d| {
                d.saturating_duration_since(Instant::now())
            });
            match rx.recv_timeout(wait) {
                Ok(SyncCmd::Now) => {}
                Err(RecvTimeoutError::Timeout) if due.is_some() => {}
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => return,
            }
            // Several presses while busy count once.
            while rx.try_recv().is_ok() {}
            let prm = match &conn {
                Ok(p) => p,
                Err(why) => {
                    if !send(&tx, Msg::SyncUnavailable(why.clone())) {
                        return;
                    }
                    continue;
                }
            };
            if !send(&tx, Msg::SyncStarted) {
                return;
            }
            let summary =
                super::guard::catch("the sync run", || run_one(&rt, prm, &db, &opts, &tx))
                    .unwrap_or_else(|why| SyncSummary {
                        crashed: Some(why),
                        ..SyncSummary::default()
                    });
            if !send(&tx, Msg::SyncFinished(Box::new(summary))) {
                return;
            }
            due = every.map(|e| Instant::now() + e);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prm::Flavor;
    use crate::sim::{SimOptions, SimState, DEFAULT_TENANT, DEFAULT_TOKEN};
    use crate::sync::Conn;
    use secrecy::SecretString;
    use std::sync::mpsc;

    /// Waits for the next sync message (progress skipped unless `progress`).
    fn next(rx: &Receiver<Incoming>, progress: &mut usize) -> Msg {
        loop {
            match rx.recv_timeout(Duration::from_secs(60)) {
                Ok(Incoming::Msg(Msg::SyncProgress { .. })) => *progress += 1,
                Ok(Incoming::Msg(m)) => return m,
                Ok(other) => panic!("unexpected {other:?}"),
                Err(e) => panic!("no message from the sync thread: {e}"),
            }
        }
    }

    /// The workbench's sync thread against the simulator on 127.0.0.1: the first run
    /// pulls the program and records online status; with the simulator gone, a run
    /// asked for with `S` reports offline and the status says so.
    #[test]
    fn background_sync_pulls_from_the_simulator_then_reports_offline() {
        let ds = crate::sim::synth::program(3, 12, 300, true);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let state = SimState::new(&ds, SimOptions::default());
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        rt.spawn(crate::sim::serve(listener, state));

        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("cache.db");
        let (cmd_tx, cmd_rx) = mpsc::channel();
        let (tx, rx) = mpsc::channel();
        let u = url.clone();
        let opts = SyncOptions {
            page_limit: 50,
            max_attempts: 2,
            backoff_base: Duration::from_millis(1),
            backoff_cap: Duration::from_millis(5),
            ..SyncOptions::default()
        };
        spawn_with(
            db.clone(),
            move || {
                let conn = Conn::new(
                    &u,
                    SecretString::from(DEFAULT_TOKEN.to_string()),
                    DEFAULT_TENANT,
                )
                .map_err(|e| e.to_string())?;
                Ok(AnyPrm::new(Flavor::Partnerstack, conn))
            },
            opts,
            Some(Duration::from_secs(3600)),
            cmd_rx,
            tx,
        );
        let mut progress = 0;
        // A PRM is there: the first run starts by itself.
        assert_eq!(next(&rx, &mut progress), Msg::SyncStarted);
        let Msg::SyncFinished(done) = next(&rx, &mut progress) else {
            panic!("expected the run's result");
        };
        assert!(done.online, "{:?}", done.errors);
        assert!(
            done.pulled >= ds.transactions.len() as u64,
            "pulled {}",
            done.pulled
        );
        assert!(done.written > 0);
        let status = Store::open(&db).unwrap().sync_status().unwrap();
        assert_eq!(status.online, Some(true));
        assert!(status.last_sync.is_some());

        // The PRM goes away: `S` runs again and reports offline, without a panic or hang.
        drop(rt);
        cmd_tx.send(SyncCmd::Now).unwrap();
        assert_eq!(next(&rx, &mut progress), Msg::SyncStarted);
        let Msg::SyncFinished(off) = next(&rx, &mut progress) else {
            panic!("expected the run's result");
        };
        assert!(!off.online);
        assert!(off.describe().contains("offline"));
        let status = Store::open(&db).unwrap().sync_status().unwrap();
        assert_eq!(status.online, Some(false));
    }

    /// `TIERDESK_SYNC_INTERVAL=0` (no interval): nothing runs at start, only when asked;
    /// a panic while connecting is a message, and the thread still answers.
    #[test]
    fn no_interval_means_no_run_at_start_and_a_panic_is_a_message() {
        let dir = tempfile::tempdir().unwrap();
        let (cmd_tx, cmd_rx) = mpsc::channel();
        let (tx, rx) = mpsc::channel();
        spawn_with(
            dir.path().join("c.db"),
            || -> Result<AnyPrm, String> { panic!("keyring exploded") },
            SyncOptions::default(),
            None,
            cmd_rx,
            tx,
        );
        let mut p = 0;
        let Msg::SyncUnavailable(why) = next(&rx, &mut p) else {
            panic!("expected unavailable");
        };
        assert!(
            why.contains("internal error") && why.contains("keyring exploded"),
            "{why}"
        );
        // Nothing else arrives by itself.
        assert!(rx.recv_timeout(Duration::from_millis(300)).is_err());
        cmd_tx.send(SyncCmd::Now).unwrap();
        assert!(matches!(next(&rx, &mut p), Msg::SyncUnavailable(_)));

        // With a PRM but no interval, the first run waits for `S`.
        let (cmd_tx, cmd_rx) = mpsc::channel();
        let (tx, rx) = mpsc::channel();
        spawn_with(
            dir.path().join("d.db"),
            || {
                let conn = Conn::new(
                    "http://127.0.0.1:9",
                    SecretString::from(DEFAULT_TOKEN.to_string()),
                    DEFAULT_TENANT,
                )
                .map_err(|e| e.to_string())?;
                Ok(AnyPrm::new(Flavor::Partnerstack, conn))
            },
            SyncOptions {
                max_attempts: 1,
                ..SyncOptions::default()
            },
            None,
            cmd_rx,
            tx,
        );
        assert!(
            rx.recv_timeout(Duration::from_millis(500)).is_err(),
            "a sync ran at start with the interval off"
        );
        cmd_tx.send(SyncCmd::Now).unwrap();
        assert_eq!(next(&rx, &mut p), Msg::SyncStarted);
    }

    #[test]
    fn without_a_prm_the_thread_says_why_and_answers_each_request() {
        let dir = tempfile::tempdir().unwrap();
        let (cmd_tx, cmd_rx) = mpsc::channel();
        let (tx, rx) = mpsc::channel();
        spawn(
            dir.path().join("c.db"),
            None,
            Some(Duration::from_millis(1)),
            cmd_rx,
            tx,
        );
        let mut p = 0;
        let Msg::SyncUnavailable(why) = next(&rx, &mut p) else {
            panic!("expected unavailable");
        };
        assert!(why.contains("no PRM configured"), "{why}");
        cmd_tx.send(SyncCmd::Now).unwrap();
        assert!(matches!(next(&rx, &mut p), Msg::SyncUnavailable(_)));
    }
}
