//! `tierdesk bench WHAT`: benchmarks that print figures (throughput, latency, peak memory).
//!
//! Each benchmark lives beside the command it measures; this file only dispatches.

use std::process::ExitCode;

use super::Context;

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
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    match args.what {
        Which::Import(o) => super::import::bench(ctx, &o),
        Which::Score(o) => super::score::bench(ctx, &o),
        Which::Commissions(o) => super::commissions::bench(ctx, &o),
        Which::Tui(o) => super::workbench::bench(ctx, &o),
        Which::Sync(o) => super::sync::bench(ctx, &o),
    }
}

/// Peak resident memory of this process in MiB (Linux `VmHWM`), when known.
pub fn peak_memory_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}
