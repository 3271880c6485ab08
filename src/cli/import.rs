//! `tierdesk import DIR` and `tierdesk bench import`.

use std::io::{BufRead, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use super::Context;
use crate::import::{import_dir, ImportProgress, ImportReport, FILES};
use crate::store::Store;

/// Import a data-set folder (docs/dataset.md) into the cache.
///
/// Reads program.json, plan.json and the .jsonl files, streaming them line by line.
/// Re-importing the same folder changes nothing; importing a newer export updates the
/// rows that changed. Each bad row (not JSON, a missing field, a wrong type, an
/// amount beyond what tierdesk accepts, an amount that is not quantity x unit price,
/// a sign that does not fit a sale or a refund, another currency than the program's,
/// a duplicate id, an unknown reference) is printed on stderr as
/// `FILE:LINE: field: what is wrong`, kept in the quarantine with its raw text, and
/// every good row is imported.
///
/// A cache holds one program: importing another program's data set is refused,
/// naming both, unless --replace is given (the current cache is then moved aside,
/// kept, and a new one started). A data set of master data only (no
/// registrations, transactions or commissions) is valid: its deals come from the PRM.
///
/// Exit status: 0 imported; 3 imported with rejections (the rejected rows are in the
/// quarantine); 1 nothing usable (no program), a required file missing, another
/// program's data set, or another import running on the same cache.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit status: 0 imported, 3 imported with rejections, 1 failed.\n\nExamples:\n  tierdesk import ./prm-export\n  tierdesk import --score ./prm-export\n  tierdesk --db /tmp/test.db import tests/fixtures/sample-program"
)]
pub struct Args {
    /// The data-set folder (program.json, plan.json, tiers.jsonl, ... commissions.jsonl).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Print no progress, only the summary and rejected rows.
    #[arg(long, short)]
    pub quiet: bool,
    /// Score the cache after importing (only new or changed rows are rescored).
    #[arg(long)]
    pub score: bool,
    /// Import another program than the cache's: the current cache is moved aside
    /// (kept as CACHE.replaced-TIMESTAMP) and a new cache is started.
    #[arg(long)]
    pub replace: bool,
}

/// The exit status of an import that stored its rows but rejected some.
pub const EXIT_REJECTIONS: u8 = 3;

/// Prints progress on stderr at most twice a second, and rejections as they come.
struct Reporter {
    quiet: bool,
    last: Instant,
    shown: bool,
}

impl Reporter {
    fn new(quiet: bool) -> Reporter {
        Reporter {
            quiet,
            last: Instant::now(),
            shown: false,
        }
    }

    fn on(&mut self, p: &ImportProgress) {
        let mut err = std::io::stderr().lock();
        if !p.new_rejections.is_empty() && self.shown {
            let _ = write!(err, "\r\x1b[K");
            self.shown = false;
        }
        for r in &p.new_rejections {
            let _ = writeln!(err, "{r}");
        }
        if self.quiet || p.total_bytes < 4 << 20 {
            return;
        }
        if p.done || self.last.elapsed() >= Duration::from_millis(500) {
            self.last = Instant::now();
            let pct = 100.0 * p.bytes as f64 / p.total_bytes.max(1) as f64;
            let _ = write!(err, "\r\x1b[K{}: {} lines ({:.0}%)", p.file, p.lines, pct);
            self.shown = true;
            if p.done {
                let _ = writeln!(err);
                self.shown = false;
            }
        }
    }
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let mut store = ctx.open_store()?;
    if args.replace {
        store = replace_if_other_program(ctx, store, &args.dir)?;
    }
    // The in-place progress line uses terminal escapes: only on a terminal.
    let mut rep = Reporter::new(args.quiet || !std::io::stderr().is_terminal());
    let report = import_dir(&mut store, &args.dir, &mut |p| rep.on(p))?;
    println!(
        "imported {} into {}",
        args.dir.display(),
        store.path().display()
    );
    println!("{report}");
    let has_program = store.program()?.is_some();
    if !has_program {
        eprintln!("tierdesk import: nothing usable in the cache (no program)");
        return Ok(ExitCode::FAILURE);
    }
    if store.count_rows("transactions")? == 0 {
        println!(
            "no deals were imported (master data only): they come from the PRM \
             (`tierdesk login`, then `tierdesk sync`)"
        );
    }
    after_import(&mut store, args.score)?;
    if report.rejected_total > 0 {
        eprintln!(
            "tierdesk import: imported with {} rejected row{} (kept in the quarantine)",
            report.rejected_total,
            if report.rejected_total == 1 { "" } else { "s" }
        );
        return Ok(ExitCode::from(EXIT_REJECTIONS));
    }
    Ok(ExitCode::SUCCESS)
}

/// Scores the cache (`--score`), or says how many rows wait for scoring.
fn after_import(store: &mut Store, score: bool) -> anyhow::Result<()> {
    let has_plan = store.plan()?.is_some();
    let unscored = store.unscored_count(crate::detect::DETECTOR_VERSION)?;
    if unscored == 0 {
        return Ok(());
    }
    if score && has_plan {
        let s = crate::service::score::score_cache(store, &mut |_, _| {})?;
        println!(
            "scored: {} rewritten, {} unchanged; {} flagged, {} of them in the review window",
            s.rescored, s.unchanged, s.flagged, s.flagged_in_window
        );
        if !s.lapsed.is_empty() {
            println!("lapsed back to review: {}", s.lapsed.join(", "));
        }
        return Ok(());
    }
    if score {
        eprintln!("not scoring: the cache has no plan (plan.json was rejected)");
        return Ok(());
    }
    let stale = store.stale_flag_count()?;
    println!(
        "{unscored} transaction{} not scored yet{}: run `tierdesk score` (or import with --score)",
        if unscored == 1 { " is" } else { "s are" },
        if stale > 0 {
            format!(" ({stale} of them changed since they were scored: their flags are stale)")
        } else {
            String::new()
        }
    );
    Ok(())
}

/// With `--replace`: when the data set is another program than the cache's, moves
/// the cache (and its WAL and shared-memory files) aside and opens a new one.
fn replace_if_other_program(ctx: &Context, store: Store, dir: &Path) -> anyhow::Result<Store> {
    let text = match std::fs::read_to_string(dir.join("program.json")) {
        Ok(t) => t,
        Err(_) => return Ok(store),
    };
    let Ok(program) = crate::import::parse::program(text.trim_start_matches('\u{feff}')) else {
        return Ok(store);
    };
    let incoming = crate::store::binding::ProgramRef::from(&program);
    match store.check_program_binding(&incoming) {
        Ok(()) => Ok(store),
        Err(crate::store::binding::BindingError::OtherProgram { cache, .. }) => {
            let db = store.path().to_path_buf();
            drop(store);
            let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
            let aside = PathBuf::from(format!("{}.replaced-{stamp}", db.display()));
            for suffix in ["", "-wal", "-shm"] {
                let from = PathBuf::from(format!("{}{suffix}", db.display()));
                if from.exists() {
                    let to = PathBuf::from(format!("{}{suffix}", aside.display()));
                    std::fs::rename(&from, &to).with_context(|| {
                        format!("cannot move {} aside to {}", from.display(), to.display())
                    })?;
                }
            }
            eprintln!(
                "--replace: the cache of program {cache} was moved aside to {}; importing {incoming} into a new cache",
                aside.display()
            );
            ctx.open_store()
        }
        Err(e) => Err(e.into()),
    }
}

fn has_dataset(dir: &Path) -> bool {
    FILES.iter().all(|f| dir.join(f).is_file())
}

/// Asks `tierdesk demo --export` (a child process) for a data set of `n` transactions.
fn export_demo(dir: &Path, n: usize, seed: u64) -> bool {
    let Ok(exe) = std::env::current_exe() else {
        return false;
    };
    let status = std::process::Command::new(exe)
        .arg("demo")
        .arg("--export")
        .arg(dir)
        .arg("--transactions")
        .arg(n.to_string())
        .arg("--seed")
        .arg(seed.to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
    matches!(status, Ok(s) if s.success()) && has_dataset(dir)
}

/// Fallback while `demo --export` is not available: the sample program with its
/// transactions (and their commission lines) replicated under new ids up to `n`.
fn replicate_sample(dir: &Path, n: usize) -> anyhow::Result<()> {
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sample-program");
    if !has_dataset(&sample) {
        anyhow::bail!(
            "no data set for the benchmark: `tierdesk demo --export` failed and the sample \
             program is not at {}",
            sample.display()
        );
    }
    std::fs::create_dir_all(dir)?;
    for f in FILES {
        if f != "transactions.jsonl" && f != "commissions.jsonl" {
            std::fs::copy(sample.join(f), dir.join(f))?;
        }
    }
    let read = |name: &str| -> anyhow::Result<Vec<serde_json::Value>> {
        let f = std::fs::File::open(sample.join(name))?;
        std::io::BufReader::new(f)
            .lines()
            .filter(|l| l.as_ref().map(|l| !l.trim().is_empty()).unwrap_or(true))
            .map(|l| Ok(serde_json::from_str(&l?)?))
            .collect()
    };
    let txs = read("transactions.jsonl")?;
    let comms = read("commissions.jsonl")?;
    let mut tw = BufWriter::new(std::fs::File::create(dir.join("transactions.jsonl"))?);
    let mut cw = BufWriter::new(std::fs::File::create(dir.join("commissions.jsonl"))?);
    let rename = |v: &mut serde_json::Value, key: &str, copy: usize| {
        if let Some(serde_json::Value::String(s)) = v.get_mut(key) {
            if copy > 0 {
                *s = format!("{s}-{copy}");
            }
        }
    };
    let mut written = 0;
    let mut copy = 0;
    while written < n && !txs.is_empty() {
        let mut kept = std::collections::HashSet::new();
        for t in &txs {
            if written >= n {
                break;
            }
            let mut t = t.clone();
            if let Some(id) = t.get("transaction_id").and_then(|v| v.as_str()) {
                kept.insert(id.to_string());
            }
            rename(&mut t, "transaction_id", copy);
            rename(&mut t, "original_transaction_id", copy);
            serde_json::to_writer(&mut tw, &t)?;
            tw.write_all(b"\n")?;
            written += 1;
        }
        for c in &comms {
            let of = c.get("transaction_id").and_then(|v| v.as_str());
            if of.is_some_and(|id| kept.contains(id)) {
                let mut c = c.clone();
                rename(&mut c, "commission_id", copy);
                rename(&mut c, "transaction_id", copy);
                serde_json::to_writer(&mut cw, &c)?;
                cw.write_all(b"\n")?;
            }
        }
        copy += 1;
    }
    tw.flush()?;
    cw.flush()?;
    Ok(())
}

/// User + system CPU seconds of this process so far (Linux), else NaN.
fn cpu_seconds() -> f64 {
    super::bench::cpu_seconds().unwrap_or(f64::NAN)
}

/// A scratch folder removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> anyhow::Result<TempDir> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let p = std::env::temp_dir().join(format!("tierdesk-bench-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&p).with_context(|| format!("cannot create {}", p.display()))?;
        Ok(TempDir(p))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `tierdesk bench import`: imports N transactions into a fresh cache and prints
/// the load rate, the index build time, the all-in rate and peak memory.
pub fn bench(_ctx: &Context, opts: &super::bench::BenchOpts) -> anyhow::Result<ExitCode> {
    let tmp = TempDir::new()?;
    let dir = opts.dir.clone().unwrap_or_else(|| tmp.0.join("data"));
    if !has_dataset(&dir) {
        eprintln!(
            "generating {} transactions in {} ...",
            opts.transactions,
            dir.display()
        );
        let t = Instant::now();
        if export_demo(&dir, opts.transactions, opts.seed) {
            eprintln!(
                "  tierdesk demo --export: {:.1}s",
                t.elapsed().as_secs_f64()
            );
        } else {
            eprintln!(
                "  (demo --export unavailable: replicating the sample program's transactions)"
            );
            replicate_sample(&dir, opts.transactions)
                .with_context(|| format!("cannot build a data set in {}", dir.display()))?;
            eprintln!("  replicated: {:.1}s", t.elapsed().as_secs_f64());
        }
    }
    let db = tmp.0.join("bench.db");
    let mut store = Store::open(&db)?;
    let mem_before = super::bench::peak_memory_mib();
    // CPU seconds at the end of each file: figures that hold on a busy machine too.
    // The progress callback runs on the writing thread: its own CPU time splits the
    // work between the writer (SQLite) and the parsing thread.
    let thread_cpu = || super::bench::cpu_seconds_of("thread-self").unwrap_or(f64::NAN);
    let mut cpu_at: Vec<(String, f64)> = vec![(String::new(), cpu_seconds())];
    let mut writer_at: Vec<(String, f64)> = vec![(String::new(), thread_cpu())];
    let report: ImportReport = import_dir(&mut store, &dir, &mut |p| {
        if p.done {
            cpu_at.push((p.file.clone(), cpu_seconds()));
            writer_at.push((p.file.clone(), thread_cpu()));
        }
    })?;
    let cpu_end = cpu_seconds();
    let writer_end = thread_cpu();
    let writer_after = |file: &str| writer_at.iter().find(|(f, _)| f == file).map(|(_, c)| *c);
    let tx_writer = match (
        writer_after("registrations.jsonl"),
        writer_after("transactions.jsonl"),
    ) {
        (Some(a), Some(b)) => b - a,
        _ => f64::NAN,
    };
    let cpu_after = |file: &str| cpu_at.iter().find(|(f, _)| f == file).map(|(_, c)| *c);
    let tx_cpu = match (
        cpu_after("registrations.jsonl"),
        cpu_after("transactions.jsonl"),
    ) {
        (Some(a), Some(b)) => b - a,
        _ => f64::NAN,
    };
    let idx_cpu = cpu_after("commissions.jsonl").map_or(f64::NAN, |c| cpu_end - c);
    let tx = report
        .file("transactions.jsonl")
        .cloned()
        .unwrap_or_default();
    let n_tx = (tx.inserted + tx.updated + tx.unchanged) as f64;
    let load = tx.elapsed.as_secs_f64();
    let idx = report.index_build.as_secs_f64();
    println!("{report}");
    println!();
    println!(
        "bench import: {} transactions from {}",
        n_tx as u64,
        dir.display()
    );
    println!(
        "  load (transactions.jsonl, indexes dropped): {:.2}s = {:.0} transactions/s \
         (checks after the key is built {:.2}s included)",
        load,
        n_tx / load.max(1e-9),
        report.key_checks.as_secs_f64()
    );
    let each: Vec<String> = report
        .indexes_rebuilt
        .iter()
        .map(|(name, t)| format!("{name} {:.2}s", t.as_secs_f64()))
        .collect();
    println!("  index build: {:.2}s ({})", idx, each.join(", "));
    println!(
        "  all in (load + index build): {:.0} transactions/s",
        n_tx / (load + idx).max(1e-9)
    );
    println!(
        "  whole import (all {} files, {} rows, index build and final checkpoint {:.2}s included): \
         {:.2}s = {:.0} transactions/s",
        report.files.len(),
        report.accepted(),
        report.checkpoint.as_secs_f64(),
        report.elapsed.as_secs_f64(),
        n_tx / report.elapsed.as_secs_f64().max(1e-9)
    );
    println!(
        "  CPU time (both threads): load {:.2}s ({:.0} transactions per CPU-second), \
         index build and checkpoint {:.2}s, whole import {:.2}s",
        tx_cpu,
        n_tx / tx_cpu.max(1e-9),
        idx_cpu,
        cpu_end - cpu_at[0].1
    );
    println!(
        "  CPU split of the load: writing thread {:.2}s, parsing thread {:.2}s \
         (on an idle 2-core machine the load runs at about the slower one: {:.0} transactions/s)",
        tx_writer,
        tx_cpu - tx_writer,
        n_tx / tx_writer.max(tx_cpu - tx_writer).max(1e-9)
    );
    println!(
        "  whole import: {:.0} rows per CPU-second ({:.2}s writing thread incl. index build)",
        report.accepted() as f64 / (cpu_end - cpu_at[0].1).max(1e-9),
        writer_end - writer_at[0].1
    );
    match (mem_before, super::bench::peak_memory_mib()) {
        (Some(b), Some(a)) => println!("  peak memory: {a:.0} MiB (before import {b:.0} MiB)"),
        _ => println!("  peak memory: unknown on this platform"),
    }
    Ok(ExitCode::SUCCESS)
}
