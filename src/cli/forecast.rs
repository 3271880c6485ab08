//! Forecasting: accruals, bookings and tier-attainment risk.
//! `tierdesk forecast` and `tierdesk backtest`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;

use super::{Context, Format};
use crate::forecast::{self, RiskOptions};
use crate::model::{CommissionLine, Dataset};
use crate::money::format_money;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A data-set folder (docs/dataset.md); without it the cache is used.
    #[arg(long, value_name = "DIR")]
    pub dataset: Option<PathBuf>,
    /// How many fiscal quarters to forecast (the quarter in progress counts as the first).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=12))]
    pub horizon: u16,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Also split each quarter into months (periods `YYYY-MM`).
    #[arg(long)]
    pub months: bool,
    /// Show the current quarter's tier-attainment risk instead of the forecast.
    #[arg(long)]
    pub risk: bool,
    /// With --risk: list every partner with a quota, not only those at risk.
    #[arg(long)]
    pub all: bool,
    /// Share of quota a partner must book to keep its tier (the data has no tier rule).
    #[arg(long, default_value_t = 0.8, value_name = "SHARE")]
    pub keep_tier_at: f64,
}

#[derive(Debug, clap::Args)]
pub struct BacktestArgs {
    /// A data-set folder (docs/dataset.md); without it the cache is used.
    #[arg(long, value_name = "DIR")]
    pub dataset: Option<PathBuf>,
    /// How many past quarter ends to forecast from (each needs a year of history before it).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=40))]
    pub origins: u16,
    /// Output format: a table, or one JSON object with every figure.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// The data set and the commission lines to learn accruals from.
fn load(ctx: &Context, dir: Option<&PathBuf>) -> anyhow::Result<(Dataset, Vec<CommissionLine>)> {
    let ds = match dir {
        Some(d) => {
            let loaded = crate::import::load_dataset(d)
                .with_context(|| format!("loading the data set in {}", d.display()))?;
            for r in &loaded.rejected {
                eprintln!("skipped {r}");
            }
            loaded.dataset
        }
        None => {
            let store = ctx.open_existing_store()?;
            load_cached(&store)?
        }
    };
    let lines = commission_lines(&ds);
    Ok((ds, lines))
}

/// The accrual basis: the plan's recalculated lines (not the PRM's, which can be wrong).
fn commission_lines(ds: &Dataset) -> Vec<CommissionLine> {
    crate::plan::recalculate(ds)
}

fn load_cached(store: &crate::store::Store) -> anyhow::Result<Dataset> {
    Ok(store.load_dataset()?)
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    if !(args.keep_tier_at.is_finite() && args.keep_tier_at > 0.0) {
        anyhow::bail!("--keep-tier-at must be a positive share of quota, e.g. 0.8");
    }
    let (ds, lines) = load(ctx, args.dataset.as_ref())?;
    let out = std::io::stdout();
    let mut out = crate::text::Clean::when(args.format == Format::Table, out.lock());
    if args.risk {
        let opts = RiskOptions {
            keep_tier_attainment: args.keep_tier_at,
            ..RiskOptions::default()
        };
        let risks = forecast::attainment_risk_with(&ds, &lines, ds.program.as_of, &opts);
        let shown: Vec<_> = risks.iter().filter(|r| args.all || r.at_risk).collect();
        match args.format {
            Format::Jsonl => {
                for r in shown {
                    writeln!(out, "{}", serde_json::to_string(r)?)?;
                }
            }
            Format::Table => print_risk(&mut out, &ds, &shown, risks.len())?,
        }
        return Ok(ExitCode::SUCCESS);
    }
    let horizon = usize::from(args.horizon);
    let rows = if args.months {
        forecast::forecast_months(&ds, &lines, horizon)
    } else {
        forecast::forecast(&ds, &lines, horizon)
    };
    match args.format {
        Format::Jsonl => {
            for r in &rows {
                let line = serde_json::json!({
                    "scope": r.scope,
                    "period": r.period,
                    "accrual": r.accrual.to_string(),
                    "bookings": r.bookings.to_string(),
                    "lo": r.lo.to_string(),
                    "hi": r.hi.to_string(),
                });
                writeln!(out, "{line}")?;
            }
        }
        Format::Table => {
            let cur = &ds.program.currency;
            writeln!(
                out,
                "Forecast from {} ({} {}), accrual with its 80% interval",
                ds.program.as_of, ds.program.program_id, cur
            )?;
            writeln!(
                out,
                "{:<20} {:<8} {:>18} {:>18} {:>18} {:>18}",
                "scope", "period", "bookings", "accrual", "low (80%)", "high (80%)"
            )?;
            for r in &rows {
                writeln!(
                    out,
                    "{:<20} {:<8} {:>18} {:>18} {:>18} {:>18}",
                    r.scope,
                    r.period,
                    format_money(r.bookings, cur),
                    format_money(r.accrual, cur),
                    format_money(r.lo, cur),
                    format_money(r.hi, cur)
                )?;
            }
            let risks = forecast::attainment_risk(&ds, &lines);
            let at_risk: Vec<_> = risks.iter().filter(|r| r.at_risk).collect();
            writeln!(out)?;
            print_risk(&mut out, &ds, &at_risk, risks.len())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_risk(
    out: &mut impl Write,
    ds: &Dataset,
    shown: &[&forecast::PartnerRisk],
    with_quota: usize,
) -> anyhow::Result<()> {
    let cur = &ds.program.currency;
    let period = shown.first().map(|r| r.period.clone()).unwrap_or_else(|| {
        crate::model::fiscal_quarter(ds.program.as_of, ds.program.fiscal_year_start_month)
    });
    writeln!(
        out,
        "Tier-attainment risk {period} at {}: {} of {} partners with a quota shown",
        ds.program.as_of,
        shown.len(),
        with_quota
    )?;
    writeln!(
        out,
        "{:<10} {:<12} {:>14} {:>14} {:>14} {:>8} {:>8}  why",
        "partner", "tier", "quota", "booked", "projected", "P(quota)", "P(lose)"
    )?;
    for r in shown {
        writeln!(
            out,
            "{:<10} {:<12} {:>14} {:>14} {:>14} {:>7.0}% {:>7.0}%  {}",
            r.partner_id,
            r.tier.as_deref().unwrap_or("-"),
            format_money(r.quota, cur),
            format_money(r.booked, cur),
            format_money(r.projected, cur),
            100.0 * r.p_reach_quota,
            100.0 * r.p_lose_tier,
            r.reason
        )?;
    }
    Ok(())
}

pub fn run_backtest(ctx: &Context, args: BacktestArgs) -> anyhow::Result<ExitCode> {
    let (ds, lines) = load(ctx, args.dataset.as_ref())?;
    let report = forecast::backtest(&ds, &lines, usize::from(args.origins));
    let out = std::io::stdout();
    let mut out = out.lock();
    if args.format == Format::Jsonl {
        writeln!(out, "{}", serde_json::to_string(&report)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    if report.origins.is_empty() {
        writeln!(
            out,
            "Not enough history to backtest: each origin needs a year of complete quarters before it."
        )?;
        return Ok(ExitCode::from(1));
    }
    let cur = &ds.program.currency;
    writeln!(
        out,
        "Rolling-origin backtest, one quarter ahead, {} origins",
        report.origins.len()
    )?;
    writeln!(
        out,
        "{:<8} {:<8} {:>16} {:>16} {:>8} {:>16} {:>8} {:>10} {:>10}",
        "origin",
        "target",
        "actual",
        "forecast",
        "APE",
        "seasonal naive",
        "APE",
        "MASE",
        "MASE naive"
    )?;
    for o in &report.origins {
        writeln!(
            out,
            "{:<8} {:<8} {:>16} {:>16} {:>7.1}% {:>16} {:>7.1}% {:>10.3} {:>10.3}",
            o.origin,
            o.target,
            format_money(o.program_actual, cur),
            format_money(o.program_forecast, cur),
            100.0 * o.program_ape,
            format_money(o.program_naive, cur),
            100.0 * o.program_naive_ape,
            o.partner_mase,
            o.partner_mase_naive
        )?;
    }
    writeln!(
        out,
        "Program accrual MAPE: {:.2}% (seasonal naive {:.2}%)",
        100.0 * report.program_mape,
        100.0 * report.program_mape_naive
    )?;
    writeln!(
        out,
        "Partner accrual MASE: {:.3} vs seasonal naive {:.3} ({:.1}% lower)",
        report.partner_mase,
        report.partner_mase_naive,
        100.0 * report.mase_improvement
    )?;
    writeln!(
        out,
        "80% interval coverage: {:.1}% overall ({:.1}% partners, {:.1}% program and tiers)",
        100.0 * report.coverage,
        100.0 * report.coverage_partners,
        100.0 * report.coverage_aggregates
    )?;
    if let Some(r) = &report.risk {
        writeln!(
            out,
            "Quota-attainment probabilities ({} partner-quarters, 1 and 2 months in): Brier {:.4} vs constant {:.4} (base rate {:.1}%)",
            r.cases,
            r.brier,
            r.brier_constant,
            100.0 * r.base_rate
        )?;
        for (lo, hi, n, p, o) in &r.buckets {
            writeln!(
                out,
                "  predicted {:>3.0}-{:<3.0}%: {:>5} cases, mean predicted {:>5.1}%, reached {:>5.1}%",
                100.0 * lo,
                100.0 * hi,
                n,
                100.0 * p,
                100.0 * o
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
