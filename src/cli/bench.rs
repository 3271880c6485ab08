//! `tierdesk bench WHAT`: benchmarks that print figures (throughput, latency, peak memory).
//!
//! Each benchmark lives beside the command it measures; this file only dispatches.

use std::process::ExitCode;

use anyhow::Context as _;

use super::Context;
use crate::model::{Dataset, Transaction};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub what: Which,
}

/// Options every benchmark takes.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchOpts {
    /// How many transactions to generate for the run.
    #[arg(long, default_value_t = 1_000_000)]
    pub transactions: usize,
    /// Generator seed.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Keep generated files here instead of a temporary folder.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<std::path::PathBuf>,
}

#[derive(Debug, clap::Subcommand)]
pub enum Which {
    /// Import N generated transactions: load rate, index build, all-in rate, peak memory.
    Import(BenchOpts),
    /// Score N generated transactions: transactions/s and peak memory.
    Score(BenchOpts),
    /// Recalculate commissions for N generated transactions: lines/s.
    Commissions(BenchOpts),
    /// Workbench on a cache of N transactions: first frame, key-to-frame p50/p99, memory.
    Tui(BenchOpts),
    /// Pull N transactions from the simulator over loopback: records/s and memory.
    Sync(BenchOpts),
    /// Decisions on the workbench's cache of N transactions: a batch approval, single
    /// decisions (each its own durable transaction) and the audit chain's check.
    Workflow(BenchOpts),
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    match args.what {
        Which::Import(o) => super::import::bench(ctx, &o),
        Which::Score(o) => super::score::bench(ctx, &o),
        Which::Commissions(o) => super::commissions::bench(ctx, &o),
        Which::Tui(o) => super::workbench::bench(ctx, &o),
        Which::Sync(o) => super::sync::bench(ctx, &o),
        Which::Workflow(o) => super::decide::bench(ctx, &o),
    }
}

/// Peak resident memory of this process in MiB (Linux `VmHWM`), when known.
pub fn peak_memory_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// User + system CPU seconds of a process (`self` or a pid) so far, from /proc (Linux).
/// On a shared machine wall time overstates the work; this does not.
pub fn cpu_seconds_of(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the ")" that ends the command name: utime is the 12th, stime the 13th.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// CPU seconds this process has used (all threads), when known.
pub fn cpu_seconds() -> Option<f64> {
    cpu_seconds_of("self")
}

/// Produces a data set of about `n` transactions for the benchmark: through
/// `tierdesk demo --export` when that command works, else by replicating the sample.
pub fn dataset(opts: &BenchOpts, name: &str) -> anyhow::Result<(Dataset, String)> {
    let tmp;
    let dir = match &opts.dir {
        Some(d) => d.clone(),
        None => {
            tmp =
                std::env::temp_dir().join(format!("tierdesk-bench-{name}-{}", std::process::id()));
            tmp
        }
    };
    // Reuse a data set already exported into --dir.
    let exported = if dir.join("transactions.jsonl").exists() {
        Some(())
    } else {
        std::env::current_exe().ok().and_then(|exe| {
            let status = std::process::Command::new(exe)
                .args(["demo", "--export"])
                .arg(&dir)
                .args(["--transactions", &opts.transactions.to_string()])
                .args(["--seed", &opts.seed.to_string(), "--no-answers"])
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .ok()?;
            (status.success() && dir.join("transactions.jsonl").exists()).then_some(())
        })
    };
    if exported.is_some() {
        let ds = crate::import::load_dataset(&dir)?.dataset;
        if opts.dir.is_none() {
            let _ = std::fs::remove_dir_all(&dir);
        }
        return Ok((ds, "demo --export".to_string()));
    }
    if opts.dir.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    let sample = std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/sample-program"
    ));
    let base = crate::import::load_dataset(sample)
        .with_context(|| {
            format!(
                "no `demo --export` and no sample at {} to replicate",
                sample.display()
            )
        })?
        .dataset;
    Ok((
        replicate(&base, opts.transactions),
        format!(
            "sample replicated ({} transactions each copy)",
            base.transactions.len()
        ),
    ))
}

/// The sample's transactions copied with new ids until there are `n`; copies keep
/// partners and dates, so quarters fill up and accelerators and caps are exercised.
fn replicate(base: &Dataset, n: usize) -> Dataset {
    let mut ds = base.clone();
    ds.commissions.clear();
    ds.transactions = Vec::with_capacity(n);
    let src = &base.transactions;
    if src.is_empty() {
        return ds;
    }
    let mut copy = 0usize;
    while ds.transactions.len() < n {
        for t in src {
            if ds.transactions.len() >= n {
                break;
            }
            let mut c: Transaction = t.clone();
            c.transaction_id = format!("{}-{copy}", t.transaction_id);
            c.original_transaction_id = t
                .original_transaction_id
                .as_ref()
                .map(|o| format!("{o}-{copy}"));
            ds.transactions.push(c);
        }
        copy += 1;
    }
    ds
}
