//! `tierdesk journal --period 2026-Q3 --format csv`: recommended accrual entries.

use std::process::ExitCode;

use super::Context;
use crate::workflow::{self, WorkflowError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum JournalFormat {
    Csv,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The fiscal quarter the entries are booked in, e.g. 2026-Q3 (an adjustment of a
    /// closed quarter is booked in the first open one; see `[journal]` in config.toml).
    #[arg(long, value_name = "PERIOD")]
    pub period: String,
    /// Output format: csv in the shape of an ERP journal import (NetSuite-style columns).
    #[arg(long, value_enum, default_value = "csv")]
    pub format: JournalFormat,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let store = ctx.open_existing_store()?;
    let lines = match workflow::journal_with(&store, &args.period, &ctx.config.journal) {
        Ok(l) => l,
        Err(e @ WorkflowError::InvalidPeriod(_)) => {
            eprintln!("tierdesk journal: {e}");
            return Ok(ExitCode::from(2));
        }
        Err(e) => return Err(e.into()),
    };
    // Settlement and return postings of the period's payout runs (docs/payouts.md).
    let mut lines = lines;
    let cash = crate::payout::PayoutConfig::load(&ctx.paths.config_file)?.cash_account;
    lines.extend(crate::payout::postings::for_period(
        &store,
        &args.period,
        &ctx.config.journal,
        cash.as_deref().unwrap_or("1000"),
    )?);
    let stdout = std::io::stdout();
    workflow::write_journal_csv(&lines, stdout.lock())?;
    Ok(ExitCode::SUCCESS)
}
