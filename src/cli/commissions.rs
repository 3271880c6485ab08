//! Shadow commission recalculation (docs/plan.md).
//! `tierdesk commissions`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context as _;
use serde::Serialize;

use super::{Context, Format};
use crate::model::{CommissionLine, Dataset};
use crate::money::format_money;
use crate::plan;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A data-set folder (docs/dataset.md); without it, the cache.
    #[arg(long, value_name = "DIR")]
    pub dataset: Option<PathBuf>,
    /// Output format: a table (the default, like the other commands), or one JSON
    /// object per line.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Print the variance report (PRM lines against the plan) instead of the lines.
    #[arg(long)]
    pub variances: bool,
}

/// Loads the data set from a folder, else from the cache.
pub(crate) fn load(ctx: &Context, dataset: Option<&Path>) -> anyhow::Result<Dataset> {
    match dataset {
        Some(dir) => {
            let loaded = crate::import::load_dataset(dir)
                .with_context(|| format!("loading data set {}", dir.display()))?;
            if !loaded.rejected.is_empty() {
                eprintln!(
                    "warning: {} rows of {} rejected (first: {})",
                    loaded.rejected.len(),
                    dir.display(),
                    loaded.rejected[0]
                );
            }
            Ok(loaded.dataset)
        }
        None => load_cache(ctx),
    }
}

fn load_cache(ctx: &Context) -> anyhow::Result<Dataset> {
    super::missing_cache(&ctx.paths.db)?;
    let store = ctx
        .open_store()
        .with_context(|| format!("opening the cache {}", ctx.paths.db.display()))?;
    store.load_dataset().with_context(|| {
        format!(
            "reading the program from the cache {}",
            ctx.paths.db.display()
        )
    })
}

#[derive(Serialize)]
struct JsonLine<'a> {
    transaction_id: &'a str,
    role: &'a str,
    payee_partner_id: &'a str,
    amount: String,
    period: &'a str,
    commission_id: &'a str,
}

#[derive(Serialize)]
struct JsonVariance<'a> {
    transaction_id: &'a str,
    missing: Vec<JsonLine<'a>>,
    extra: Vec<JsonLine<'a>>,
    reason: &'a str,
}

fn json_line(l: &CommissionLine) -> JsonLine<'_> {
    JsonLine {
        transaction_id: &l.transaction_id,
        role: l.role.as_str(),
        payee_partner_id: &l.payee_partner_id,
        amount: format!("{:.2}", l.amount),
        period: &l.period,
        commission_id: &l.commission_id,
    }
}

/// Treats a closed pipe (`| head`) as a normal end of output.
fn finish(r: std::io::Result<()>) -> anyhow::Result<ExitCode> {
    match r {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(e) => Err(e).context("writing output"),
    }
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let ds = load(ctx, args.dataset.as_deref())?;
    let calc = plan::Calculator::new(&ds);
    let lines = calc.recalculate();
    let stdout = std::io::stdout();
    let mut out = crate::text::Clean::when(
        args.format == Format::Table,
        std::io::BufWriter::new(stdout.lock()),
    );
    let cur = ds.program.currency.clone();
    if args.variances {
        let vars = plan::variances_with(&calc, &lines);
        return finish((|| {
            match args.format {
                Format::Jsonl => {
                    for v in vars.values() {
                        let j = JsonVariance {
                            transaction_id: &v.transaction_id,
                            missing: v.missing.iter().map(json_line).collect(),
                            extra: v.extra.iter().map(json_line).collect(),
                            reason: &v.reason,
                        };
                        serde_json::to_writer(&mut out, &j)?;
                        out.write_all(b"\n")?;
                    }
                }
                Format::Table => {
                    writeln!(out, "{:<12} REASON", "TRANSACTION")?;
                    for v in vars.values() {
                        writeln!(out, "{:<12} {}", v.transaction_id, v.reason)?;
                    }
                    writeln!(
                        out,
                        "{} of {} transactions differ from the plan.",
                        vars.len(),
                        ds.transactions.len()
                    )?;
                }
            }
            out.flush()
        })());
    }
    finish((|| {
        match args.format {
            Format::Jsonl => {
                for l in &lines {
                    serde_json::to_writer(&mut out, &json_line(l))?;
                    out.write_all(b"\n")?;
                }
            }
            Format::Table => {
                writeln!(
                    out,
                    "{:<12} {:<9} {:<10} {:>16} {:<8} COMMISSION_ID",
                    "TRANSACTION", "ROLE", "PAYEE", "AMOUNT", "PERIOD"
                )?;
                let mut total = rust_decimal::Decimal::ZERO;
                for l in &lines {
                    total += l.amount;
                    writeln!(
                        out,
                        "{:<12} {:<9} {:<10} {:>16} {:<8} {}",
                        l.transaction_id,
                        l.role.as_str(),
                        l.payee_partner_id,
                        format_money(l.amount, &cur),
                        l.period,
                        l.commission_id
                    )?;
                }
                writeln!(
                    out,
                    "{} lines, total {}.",
                    lines.len(),
                    format_money(total, &cur)
                )?;
            }
        }
        out.flush()
    })())
}

pub fn bench(_ctx: &Context, opts: &super::bench::BenchOpts) -> anyhow::Result<ExitCode> {
    let t0 = Instant::now();
    let (ds, source) = super::bench::dataset(opts, "commissions")?;
    let prep = t0.elapsed();
    println!(
        "bench commissions: {} transactions ({source}), prepared in {:.2} s",
        ds.transactions.len(),
        prep.as_secs_f64()
    );
    let cpu0 = super::bench::cpu_seconds();
    let t1 = Instant::now();
    let lines = plan::recalculate(&ds);
    let secs = t1.elapsed().as_secs_f64();
    let cpu = super::bench::cpu_seconds().zip(cpu0).map(|(b, a)| b - a);
    println!(
        "recalculate: {} lines in {:.3} s wall = {:.0} lines/s, {:.0} transactions/s",
        lines.len(),
        secs,
        lines.len() as f64 / secs.max(1e-9),
        ds.transactions.len() as f64 / secs.max(1e-9)
    );
    if let Some(c) = cpu {
        println!(
            "recalculate: {c:.2} CPU s over {} threads (wall time on a loaded machine is higher)",
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        );
    }
    if let Some(m) = super::bench::peak_memory_mib() {
        println!("peak memory after recalculate: {m:.1} MiB");
    }
    let t2 = Instant::now();
    let vars = plan::variances(&ds, &lines);
    println!(
        "variances: {} transactions differ, {:.3} s",
        vars.len(),
        t2.elapsed().as_secs_f64()
    );
    match super::bench::peak_memory_mib() {
        Some(m) => println!("peak memory: {m:.1} MiB"),
        None => println!("peak memory: unknown"),
    }
    let goal = if ds.transactions.len() >= 1_000_000 {
        if secs < 5.0 {
            " (goal < 5 s for 1,000,000: met)"
        } else {
            " (goal < 5 s for 1,000,000: NOT met)"
        }
    } else {
        ""
    };
    println!("result: {:.3} s{goal}", secs);
    Ok(ExitCode::SUCCESS)
}
