//! `tierdesk sync` (and `tierdesk bench sync`).

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use super::Context;
use crate::sim::Flavor;
use crate::sync::{AnyPrm, Conn, Progress, SyncOptions, SyncReport};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Sync once and exit (default: keep syncing every --interval seconds). Exit status:
    /// 0 all went through, 3 partial (a page, a decision or a write failed, or the PRM
    /// refused a decision), 4 offline (the PRM could not be reached; the outbox waits).
    #[arg(long)]
    pub once: bool,
    /// Do not contact the PRM: mark the cache offline and show what waits in the outbox.
    #[arg(long)]
    pub offline: bool,
    /// PRM base URL (default: `prm.url` in config.toml).
    #[arg(long, value_name = "URL")]
    pub prm: Option<String>,
    /// PRM flavour (default: `prm.flavor` in config.toml).
    #[arg(long, value_enum)]
    pub flavor: Option<Flavor>,
    /// Impartner tenant (default: `prm.tenant` in config.toml).
    #[arg(long)]
    pub tenant: Option<String>,
    /// Items per page requested from the PRM.
    #[arg(long, default_value_t = 250)]
    pub page_size: usize,
    /// Rows per SQLite commit at most while pulling (each page goes in with its cursor).
    #[arg(long, default_value_t = 100_000, hide = true)]
    pub commit_rows: usize,
    /// Walk every resource from the start now (the full pass), writing only what
    /// changed: PartnerStack reward and transaction status changes show up this way.
    #[arg(long)]
    pub full: bool,
    /// Seconds between syncs when not --once.
    #[arg(long, default_value_t = 60)]
    pub interval: u64,
}

/// The PRM this command talks to: flags over `[prm]` in config.toml (its mapping,
/// roles and full-pass interval always come from the config).
pub(crate) fn target(
    ctx: &Context,
    prm: Option<&str>,
    flavor: Option<Flavor>,
    tenant: Option<&str>,
) -> anyhow::Result<(crate::config::PrmConfig, Flavor)> {
    let cfg = ctx.config.prm.as_ref();
    let url = prm
        .map(str::to_string)
        .or_else(|| cfg.map(|c| c.url.clone()))
        .ok_or_else(|| {
            anyhow::anyhow!(
                "no PRM configured: pass --prm URL or run `tierdesk login --prm URL --flavor F`"
            )
        })?;
    let flavor = match flavor {
        Some(f) => f,
        None => match cfg.map(|c| c.flavor.as_str()) {
            Some(f) => Flavor::parse(f).ok_or_else(|| {
                anyhow::anyhow!("config prm.flavor `{f}` is not partnerstack or impartner")
            })?,
            None => Flavor::Partnerstack,
        },
    };
    let tenant = tenant
        .map(str::to_string)
        .or_else(|| cfg.and_then(|c| c.tenant.clone()));
    let mut out = crate::config::PrmConfig::new(url.trim_end_matches('/'), flavor.as_str(), tenant);
    if let Some(c) = cfg {
        out.mapping = c.mapping.clone();
        out.roles = c.roles.clone();
        out.full_pass_hours = c.full_pass_hours;
        out.timeout_secs = c.timeout_secs;
    }
    Ok((out, flavor))
}

/// The status write-back's line, when it wrote anything.
fn print_statuses(n: u64) {
    if n > 0 {
        println!(
            "processing status written back for {}",
            crate::plural::n(n, "transaction")
        );
    }
}

fn print_report(r: &SyncReport, took: Duration) {
    if !r.online {
        eprintln!("PRM unreachable: working offline; queued decisions wait in the outbox.");
    }
    use crate::plural::n;
    println!(
        "pulled {} ({} written, {} quarantined), pushed {}, {}, {} refused in {:.1}s",
        n(r.total_pulled(), "item"),
        n(r.written, "row"),
        r.quarantined,
        n(r.pushed, "decision"),
        n(r.conflicts, "conflict"),
        r.refused.len(),
        took.as_secs_f64()
    );
    for (tx, decision, msg) in &r.refused {
        println!("refused by the PRM: transaction {tx} decision {decision}: {msg}");
    }
    if !r.manual.is_empty() {
        println!(
            "left for the PRM's own screen: {} (tierdesk prm decisions lists them)",
            crate::plural::n(r.manual.len() as u64, "decision")
        );
    }
    if !r.confirmed.is_empty() {
        println!("applied in the PRM since: {}", r.confirmed.join(", "));
    }
    print_statuses(r.statuses);
    for w in &r.warnings {
        eprintln!("warning: {w}");
    }
    for e in &r.errors {
        eprintln!("error: {e}");
    }
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let mut store = ctx.open_store()?;
    if args.offline {
        crate::sync::record_offline(&store)?;
        let counts = store.sync_counts()?;
        let get = |k: &str| *counts.get(k).unwrap_or(&0);
        let waits = if get("outbox_pending") == 1 {
            "waits"
        } else {
            "wait"
        };
        println!(
            "offline: {} {waits} in the outbox, {} open, {} quarantined",
            crate::plural::n(get("outbox_pending"), "decision"),
            crate::plural::n(get("conflicts"), "conflict"),
            crate::plural::n(get("quarantined"), "item")
        );
        return Ok(ExitCode::SUCCESS);
    }
    let (cfg, flavor) = target(
        ctx,
        args.prm.as_deref(),
        args.flavor,
        args.tenant.as_deref(),
    )?;
    let url = cfg.url.clone();
    // A demo cache never syncs; a cache filled from one PRM never syncs with another.
    let prm_id = super::guard::prm_identity(
        &url,
        flavor.as_str(),
        cfg.tenant.as_deref().unwrap_or(crate::sim::DEFAULT_TENANT),
    );
    store.check_prm_binding(&prm_id)?;
    let prm = crate::sync::adapter::connect_configured(&cfg).map_err(|e| anyhow::anyhow!(e))?;
    let mut opts = SyncOptions {
        page_limit: args.page_size,
        commit_rows: args.commit_rows.max(1),
        full: args.full,
        ..SyncOptions::default()
    };
    if let Some(h) = cfg.full_pass_hours {
        opts.full_interval = Duration::from_secs(h.saturating_mul(3600));
    }
    if let Ok(ms) = std::env::var("TIERDESK_SYNC_BACKOFF_MS") {
        if let Ok(ms) = ms.parse::<u64>() {
            opts.backoff_base = Duration::from_millis(ms);
            opts.backoff_cap = Duration::from_millis(ms * 20);
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let tty = std::io::stderr().is_terminal();
    loop {
        let started = Instant::now();
        let mut last = Instant::now();
        let mut bar = |p: &Progress| {
            if tty && last.elapsed() > Duration::from_millis(100) {
                last = Instant::now();
                let width = 24usize;
                let filled = ((p.done / 250) as usize) % (width + 1);
                eprint!(
                    "\r{:<5} {:<13} [{}{}] {:>9}",
                    p.phase,
                    p.resource,
                    "#".repeat(filled),
                    "-".repeat(width - filled),
                    p.done
                );
                let _ = std::io::stderr().flush();
            }
        };
        // Recorded as running until it ends: an interrupted sync is seen (`doctor`,
        // `score`, the workbench). Another sync running at once is not refused.
        let _ = store.begin_work("sync", &url);
        let (s, mut report) = rt.block_on(crate::sync::run_once(&prm, store, &opts, &mut bar));
        store = s;
        if report.online {
            store.bind_prm(&prm_id)?;
        }
        let _ = store.end_work("sync");
        if tty {
            eprint!("\r{:60}\r", "");
        }
        print_report(&report, started.elapsed());
        if !report.changed_transactions.is_empty() || has_unscored(&store) {
            score_new(&mut store, ctx);
            // What this run scored goes back to the PRM now, not at the next run.
            if report.online {
                let mut after = crate::sync::SyncReport::default();
                rt.block_on(crate::sync::push_statuses(
                    &prm, &mut store, &opts, &mut after,
                ));
                report.statuses += after.statuses;
                print_statuses(after.statuses);
                for w in &after.warnings {
                    eprintln!("warning: {w}");
                }
                for e in &after.errors {
                    eprintln!("error: {e}");
                }
                report.errors.extend(after.errors);
            }
        }
        if args.once {
            return Ok(ExitCode::from(exit_code(&report)));
        }
        std::thread::sleep(Duration::from_secs(args.interval.max(1)));
    }
}

/// `sync --once` exit status: 0 everything went through; 3 partial (the PRM answered,
/// but a page, a decision or a write failed, or the PRM refused a decision); 4 offline
/// (the PRM could not be reached; the outbox waits).
pub const EXIT_PARTIAL: u8 = 3;
pub const EXIT_OFFLINE: u8 = 4;

pub fn exit_code(r: &SyncReport) -> u8 {
    if !r.online {
        EXIT_OFFLINE
    } else if !r.errors.is_empty() || !r.refused.is_empty() {
        EXIT_PARTIAL
    } else {
        0
    }
}

/// Whether the cache holds transactions never scored (or scored by an older
/// detector, or changed since): a sync scores them too, not only what it pulled.
pub fn has_unscored(store: &crate::store::Store) -> bool {
    store
        .unscored_count(crate::detect::DETECTOR_VERSION)
        .is_ok_and(|n| n > 0)
}

/// Scores what the pull brought in (only new or changed rows are rewritten), so the
/// exception queue is current; sign-offs on changed flags lapse back to review.
pub(crate) fn score_new(store: &mut crate::store::Store, ctx: &Context) {
    match (store.program(), store.plan()) {
        (Ok(Some(_)), Ok(Some(_))) => {}
        _ => {
            eprintln!(
                "not scoring: the cache has no program or plan yet (a PRM does not serve the \
                 commission plan: import the program's data set, master data only is enough, \
                 with `tierdesk import DIR`)"
            );
            return;
        }
    }
    match crate::service::score::score_cache(store, &mut |_, _| {}) {
        Ok(s) => {
            println!(
                "scored: {} rewritten, {} unchanged, {} flagged in the review window",
                s.rescored, s.unchanged, s.flagged_in_window
            );
            if !s.lapsed.is_empty() {
                println!("lapsed back to review: {}", s.lapsed.join(", "));
            }
            // The routing policy and the alerts, as after `tierdesk score`.
            if let Err(e) = super::policy::after_scoring(store, ctx, true) {
                eprintln!("policy after sync failed: {e:#}");
            }
        }
        Err(e) => eprintln!("scoring after sync failed: {e:#}"),
    }
}

/// `tierdesk bench sync`: pull N transactions from a simulator over loopback.
pub fn bench(ctx: &Context, o: &super::bench::BenchOpts) -> anyhow::Result<ExitCode> {
    let _ = ctx;
    // `--dir` holding a data set (e.g. `demo --export` output): the simulator serves it
    // and the folder is only read; the cache goes to a temporary folder. Otherwise the
    // simulator serves a lean synthetic program and `--dir` keeps the cache.
    let dataset = o
        .dir
        .as_ref()
        .filter(|d| d.join("transactions.jsonl").is_file())
        .cloned();
    let keep = o.dir.is_some() && dataset.is_none();
    let dir = match &o.dir {
        Some(d) if keep => {
            std::fs::create_dir_all(d)?;
            tempdir_in(d)?
        }
        _ => tempdir_in(&std::env::temp_dir())?,
    };
    let exe = std::env::current_exe()?;
    let mut cmd = std::process::Command::new(exe);
    cmd.args([
        "sim",
        "--listen",
        "127.0.0.1:0",
        "--seed",
        &o.seed.to_string(),
    ]);
    match &dataset {
        Some(d) => {
            eprintln!(
                "starting the simulator on the data set in {}...",
                d.display()
            );
            cmd.arg("--dataset").arg(d);
        }
        None => {
            eprintln!(
                "starting the simulator with {} transactions...",
                o.transactions
            );
            cmd.args([
                "--transactions",
                &o.transactions.to_string(),
                "--partners",
                "2000",
                "--bare",
            ]);
        }
    }
    let mut child = cmd
        .env("TIERDESK_SIM_TOKEN", crate::sim::DEFAULT_TOKEN)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .context("starting the simulator")?;
    let child_pid = child.id();
    let result = (|| -> anyhow::Result<()> {
        let stdout = child.stdout.take().context("simulator stdout")?;
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)?;
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .context("simulator did not print its address")?
            .to_string();
        let store = crate::store::Store::open(&dir.join("bench.db"))?;
        let conn = Conn::new(
            &url,
            secrecy::SecretString::from(crate::sim::DEFAULT_TOKEN.to_string()),
            crate::sim::DEFAULT_TENANT,
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        let prm = AnyPrm::new(Flavor::Partnerstack, conn);
        let opts = SyncOptions {
            // A PartnerStack transaction names its customer; the customer names the
            // partner: the three are pulled together.
            resources: vec![
                crate::prm::Res::Partners,
                crate::prm::Res::Customers,
                crate::prm::Res::Transactions,
            ],
            push: false,
            ..SyncOptions::default()
        };
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let pid = child_pid.to_string();
        let sim0 = super::bench::cpu_seconds_of(&pid);
        let me0 = super::bench::cpu_seconds();
        let t = Instant::now();
        let (_store, report) = rt.block_on(crate::sync::run_once(&prm, store, &opts, &mut |_| {}));
        let secs = t.elapsed().as_secs_f64();
        if !report.errors.is_empty() {
            anyhow::bail!("sync failed: {}", report.errors.join("; "));
        }
        let n = report.total_pulled();
        println!(
            "bench sync: pulled {n} records (partnerships, customers, transactions) over loopback in {secs:.2}s"
        );
        println!(
            "bench sync: {:.0} records/s end to end (fetch, map, SQLite commit; goal >= 50000)",
            n as f64 / secs
        );
        println!("bench sync: {} rows written", report.written);
        // CPU spent during the pull only (not the simulator loading its program).
        let me = super::bench::cpu_seconds().zip(me0).map(|(b, a)| b - a);
        let sim = super::bench::cpu_seconds_of(&pid)
            .zip(sim0)
            .map(|(b, a)| b - a);
        if let (Some(me), Some(sim)) = (me, sim) {
            println!(
                "bench sync: CPU time during the pull: sync {me:.1}s ({:.0} records per CPU-second), simulator {sim:.1}s ({:.0} records per CPU-second); both together {:.1} µs per record; machine load makes wall time longer",
                n as f64 / me.max(0.001),
                n as f64 / sim.max(0.001),
                (me + sim) * 1e6 / (n.max(1) as f64)
            );
        }
        match super::bench::peak_memory_mib() {
            Some(m) => println!("bench sync: peak memory of the syncing process {m:.0} MiB"),
            None => println!("bench sync: peak memory unknown on this platform"),
        }
        Ok(())
    })();
    let _ = child.kill();
    let _ = child.wait();
    if !keep {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result?;
    Ok(ExitCode::SUCCESS)
}

fn tempdir_in(base: &std::path::Path) -> anyhow::Result<std::path::PathBuf> {
    let d = base.join(format!("tierdesk-bench-sync-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&d)?;
    Ok(d)
}
