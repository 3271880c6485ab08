//! `tierdesk queue --format jsonl|table [--state S] [--limit N]`: the exception queue.

use std::io::Write;
use std::process::ExitCode;

use super::{Context, Format};
use crate::money::format_money;
use crate::workflow::{self, CaseState};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output format: a table for people, or one JSON object per case (jsonl).
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Only cases in this state (flagged, in_review, awaiting_signoff, queued_for_push, ...).
    #[arg(long, value_name = "S")]
    pub state: Option<String>,
    /// At most N rows.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let state = match args.state.as_deref() {
        None => None,
        Some(s) => match CaseState::parse(s) {
            Some(st) => Some(st),
            None => {
                let all: Vec<&str> = CaseState::ALL.iter().map(|s| s.as_str()).collect();
                eprintln!(
                    "tierdesk queue: unknown state '{s}'; one of: {}",
                    all.join(", ")
                );
                return Ok(ExitCode::from(2));
            }
        },
    };
    let store = ctx.open_existing_store()?;
    let items = workflow::queue(&store, state, args.limit.unwrap_or(usize::MAX))?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match args.format {
        Format::Jsonl => {
            for it in &items {
                serde_json::to_writer(&mut out, it)?;
                out.write_all(b"\n")?;
            }
        }
        Format::Table => {
            writeln!(
                out,
                "{:<18} {:<12} {:>6}  {:<18} {:>16} {:>14} {:>14}  KINDS",
                "TRANSACTION", "PARTNER", "SCORE", "STATE", "AMOUNT", "AT STAKE", "PROPOSED"
            )?;
            for it in &items {
                let cur = it.currency.as_deref().unwrap_or("");
                writeln!(
                    out,
                    "{:<18} {:<12} {:>6.3}  {:<18} {:>16} {:>14} {:>14}  {}",
                    it.transaction_id,
                    it.partner_id,
                    it.score,
                    it.state.as_str(),
                    format_money(it.amount, cur),
                    format_money(it.at_stake, cur),
                    it.proposed_amount
                        .map(|p| format_money(p, cur))
                        .unwrap_or_else(|| "-".into()),
                    it.kinds.join(",")
                )?;
            }
            writeln!(out, "{} case(s)", items.len())?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
