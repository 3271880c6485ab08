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
    /// Score a data-set folder (spec/dataset.md) and print the scores, instead of the cache.
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
    detect::cache::variances_for(ds)
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
    let mut out = std::io::BufWriter::new(stdout.lock());
    match args.format {
        Format::Jsonl => {
            for f in &findings {
                writeln!(out, "{}", detect::score_line(&f.score))?;
            }
        }
        Format::Table => write_table(&mut out, &ds, &findings, args.limit)?,
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn run_cache(ctx: &Context, format: Format, _limit: usize) -> anyhow::Result<ExitCode> {
    let mut store = ctx.open_existing_store()?;
    let mut last = 0usize;
    let summary = detect::cache::score_cache(&mut store, &mut |done, total| {
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

/// `tierdesk bench score`: times `score_dataset` on N transactions.
pub fn bench(_ctx: &Context, opts: &super::bench::BenchOpts) -> anyhow::Result<ExitCode> {
    let t0 = std::time::Instant::now();
    let (ds, source) = super::bench::dataset(opts, "score")?;
    println!(
        "bench score: {} transactions ({source}), prepared in {:.2} s",
        ds.transactions.len(),
        t0.elapsed().as_secs_f64()
    );
    let t1 = std::time::Instant::now();
    let findings = detect::score_dataset(&ds, &BTreeMap::new());
    let secs = t1.elapsed().as_secs_f64();
    let flagged = findings
        .iter()
        .filter(|f| !f.score.kinds.is_empty())
        .count();
    println!(
        "score_dataset: {} transactions in {:.3} s = {:.0} transactions/s ({} flagged)",
        findings.len(),
        secs,
        findings.len() as f64 / secs.max(1e-9),
        flagged
    );
    let t2 = std::time::Instant::now();
    let v = variances_for(&ds);
    let findings = detect::score_dataset_full(&ds, &v);
    let secs2 = t2.elapsed().as_secs_f64();
    println!(
        "with the plan's variances (recalculate + score): {:.3} s = {:.0} transactions/s ({} variances)",
        secs2,
        findings.len() as f64 / secs2.max(1e-9),
        v.len()
    );
    match super::bench::peak_memory_mib() {
        Some(m) => println!("peak memory: {m:.0} MiB"),
        None => println!("peak memory: unknown"),
    }
    Ok(ExitCode::SUCCESS)
}
