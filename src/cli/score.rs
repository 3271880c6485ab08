//! `tierdesk score`: anomaly scores from a data-set folder (printed) or the cache (stored).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;

use super::{Context, Format};
use crate::detect::{self, Finding};
use crate::model::Dataset;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Score a data-set folder (docs/dataset.md) and print the scores, instead of the cache.
    #[arg(long, value_name = "DIR")]
    pub dataset: Option<PathBuf>,
    /// Output format: jsonl (one line per transaction) or table (top flagged first).
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Table only: how many rows to show (0 = all flagged).
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    /// With --dataset: skip the plan recalculation (commission variances are not checked).
    #[arg(long, requires = "dataset")]
    pub skip_commissions: bool,
}

/// The variance map the detectors need, from the plan's recalculation: the plan's
/// reason and its total commission per transaction whose PRM lines differ.
pub fn variances_for(ds: &Dataset) -> BTreeMap<String, detect::VarianceInfo> {
    crate::service::score::variances_for(ds)
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let Some(dir) = args.dataset else {
        return run_cache(ctx, args.format, args.limit);
    };
    let loaded = crate::import::load_dataset(&dir)
        .with_context(|| format!("cannot load the data set at {}", dir.display()))?;
    for r in &loaded.rejected {
        eprintln!("skipped: {r}");
    }
    let ds = loaded.dataset;
    let variances = if args.skip_commissions {
        BTreeMap::new()
    } else {
        variances_for(&ds)
    };
    let findings = detect::score_dataset_full(&ds, &variances);
    let stdout = std::io::stdout();
    let mut out = crate::text::Clean::when(
        args.format == Format::Table,
        std::io::BufWriter::new(stdout.lock()),
    );
    match args.format {
        Format::Jsonl => write_jsonl(&mut out, &findings)?,
        Format::Table => write_table(&mut out, &ds, &findings, args.limit)?,
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn run_cache(ctx: &Context, format: Format, _limit: usize) -> anyhow::Result<ExitCode> {
    let mut store = ctx.open_existing_store()?;
    if let Some(why) = store.incomplete_message()? {
        eprintln!("tierdesk score: not scoring an incomplete cache: {why}");
        return Ok(ExitCode::FAILURE);
    }
    let mut last = 0usize;
    let summary = crate::service::score::score_cache(&mut store, &mut |done, total| {
        if total > 0 && (done == total || done >= last + total.div_ceil(10)) {
            last = done;
            eprintln!("scored {done}/{total}");
        }
    })?;
    match format {
        Format::Jsonl => println!("{}", serde_json::to_string(&summary)?),
        Format::Table => println!(
            "Scored {} transactions ({} new or changed rewritten, {} unchanged); {} flagged, {} of them submitted in the review window; detector {}",
            summary.transactions,
            summary.rescored,
            summary.unchanged,
            summary.flagged,
            summary.flagged_in_window,
            summary.detector_version
        ),
    }
    if !summary.lapsed.is_empty() {
        eprintln!(
            "{} sign-off(s) lapsed back to review because their flag or proposal changed: {}",
            summary.lapsed.len(),
            summary.lapsed.join(", ")
        );
    }
    if let Err(e) = super::policy::after_scoring(&mut store, ctx, false) {
        eprintln!("policy routing after scoring failed: {e:#}");
    }
    Ok(ExitCode::SUCCESS)
}

fn write_table(
    out: &mut dyn Write,
    ds: &Dataset,
    findings: &[Finding],
    limit: usize,
) -> anyhow::Result<()> {
    let window = ds.program.review_window;
    let by_id: std::collections::HashMap<&str, &crate::model::Transaction> = ds
        .transactions
        .iter()
        .map(|t| (t.transaction_id.as_str(), t))
        .collect();
    let mut flagged: Vec<&Finding> = findings
        .iter()
        .filter(|f| !f.score.kinds.is_empty())
        .collect();
    flagged.sort_by(|a, b| {
        b.score
            .score
            .total_cmp(&a.score.score)
            .then_with(|| a.score.transaction_id.cmp(&b.score.transaction_id))
    });
    let in_window = flagged
        .iter()
        .filter(|f| {
            by_id
                .get(f.score.transaction_id.as_str())
                .is_some_and(|t| window.contains(&t.submitted_at))
        })
        .count();
    writeln!(
        out,
        "{} transactions scored, {} flagged ({} submitted in the review window {}..{})",
        findings.len(),
        flagged.len(),
        in_window,
        window.start,
        window.end
    )?;
    writeln!(
        out,
        "{:<12} {:>6} {:>5} {:<8} {:>16}  {:<34} REASON",
        "TRANSACTION", "SCORE", "CONF", "PARTNER", "AMOUNT", "KINDS"
    )?;
    let n = if limit == 0 { flagged.len() } else { limit };
    for f in flagged.iter().take(n) {
        let t = by_id.get(f.score.transaction_id.as_str());
        let partner = t.map(|t| t.partner_id.as_str()).unwrap_or("");
        let amount = t
            .map(|t| crate::money::format_money(t.amount, &t.currency))
            .unwrap_or_default();
        let kinds: Vec<&str> = f.score.kinds.iter().map(|k| k.as_str()).collect();
        writeln!(
            out,
            "{:<12} {:>6.4} {:>5.2} {:<8} {:>16}  {:<34} {}",
            f.score.transaction_id,
            f.score.score,
            f.score.confidence,
            partner,
            amount,
            kinds.join(","),
            f.score.reasons.first().map(String::as_str).unwrap_or("")
        )?;
        for r in f.score.reasons.iter().skip(1) {
            writeln!(out, "{:<96}{}", "", r)?;
        }
    }
    if flagged.len() > n {
        writeln!(
            out,
            "... {} more flagged (--limit 0 shows all)",
            flagged.len() - n
        )?;
    }
    Ok(())
}

/// Writes one `score_line` per finding.
pub fn write_jsonl(out: &mut dyn Write, findings: &[Finding]) -> std::io::Result<()> {
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 16);
    for f in findings {
        detect::write_score_line(&mut buf, &f.score);
        buf.push(b'\n');
        if buf.len() >= 1 << 16 {
            out.write_all(&buf)?;
            buf.clear();
        }
    }
    out.write_all(&buf)
}

/// Wall and CPU seconds since a start point.
struct Clock {
    wall: std::time::Instant,
    cpu: Option<f64>,
}

impl Clock {
    fn start() -> Clock {
        Clock {
            wall: std::time::Instant::now(),
            cpu: super::bench::cpu_seconds(),
        }
    }

    /// (wall seconds, CPU seconds when known)
    fn lap(&self) -> (f64, Option<f64>) {
        let cpu = match (self.cpu, super::bench::cpu_seconds()) {
            (Some(a), Some(b)) => Some(b - a),
            _ => None,
        };
        (self.wall.elapsed().as_secs_f64(), cpu)
    }
}

fn secs((wall, cpu): (f64, Option<f64>)) -> String {
    match cpu {
        Some(c) => format!("{wall:.2} s wall, {c:.2} CPU-s"),
        None => format!("{wall:.2} s wall"),
    }
}

fn peak() -> String {
    match super::bench::peak_memory_mib() {
        Some(m) => format!("{m:.0} MiB"),
        None => "unknown".to_string(),
    }
}

/// `tierdesk bench score`: times detection alone (`score_dataset`) and the whole
/// `tierdesk score --dataset DIR --format jsonl` path (read + plan + detect + write).
pub fn bench(_ctx: &Context, opts: &super::bench::BenchOpts) -> anyhow::Result<ExitCode> {
    let load = Clock::start();
    let (ds, source) = super::bench::dataset(opts, "score")?;
    let read = load.lap();
    let n = ds.transactions.len();
    println!(
        "bench score: {n} transactions ({source}); read in {} (peak so far {})",
        secs(read),
        peak()
    );
    println!(
        "threads: {}",
        std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
    );

    let c = Clock::start();
    let findings = detect::score_dataset(&ds, &BTreeMap::new());
    let detect_only = c.lap();
    let flagged = findings
        .iter()
        .filter(|f| !f.score.kinds.is_empty())
        .count();
    drop(findings);
    println!(
        "detection alone (score_dataset): {n} transactions in {} = {:.0} transactions/s ({flagged} flagged)",
        secs(detect_only),
        n as f64 / detect_only.0.max(1e-9)
    );

    let c = Clock::start();
    let v = variances_for(&ds);
    let plan = c.lap();
    let c = Clock::start();
    let findings = detect::score_dataset_full(&ds, &v);
    let detect = c.lap();
    let c = Clock::start();
    let mut sink = std::io::sink();
    write_jsonl(&mut sink, &findings)?;
    let write = c.lap();
    let add = |xs: [(f64, Option<f64>); 4]| {
        let wall = xs.iter().map(|x| x.0).sum();
        let cpu = xs.iter().map(|x| x.1).sum::<Option<f64>>();
        (wall, cpu)
    };
    let total = add([read, plan, detect, write]);
    println!(
        "tierdesk score --dataset DIR --format jsonl, as the user runs it: {} in total = {:.0} transactions/s",
        secs(total),
        n as f64 / total.0.max(1e-9)
    );
    println!("  read the data set:        {}", secs(read));
    println!(
        "  plan recalculation:       {} ({} variances)",
        secs(plan),
        v.len()
    );
    println!("  detection with variances: {}", secs(detect));
    println!("  write jsonl:              {}", secs(write));
    println!("peak memory: {}", peak());
    Ok(ExitCode::SUCCESS)
}
