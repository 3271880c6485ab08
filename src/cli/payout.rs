//! `tierdesk payout …`: prepare, approve, release, export and show payout runs.

use std::io::Write;
use std::process::ExitCode;

use chrono::{NaiveDate, SecondsFormat, Utc};
use clap::Subcommand;
use serde_json::json;

use super::{Context, Format};
use crate::payout::{self, PayoutConfig};
use crate::workflow::Actor;

/// Payout runs: what each payee is owed, held, approved, exported as the bank's file.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  tierdesk payout prepare --period 2026-Q3 --format jsonl\n  \
    tierdesk --role manager --user mia payout approve PR-2026-Q3-001 --reason \"checked totals\"\n  \
    tierdesk payout release R00041 --run PR-2026-Q3-001 --reason \"call-back to the number on file\"\n  \
    tierdesk payout export PR-2026-Q3-001 --out run.ach\n  tierdesk payout show PR-2026-Q3-001"
)]
pub struct Args {
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Compute what each payee is owed for a period, with holds; prints the run id.
    Prepare {
        /// Fiscal quarter, e.g. 2026-Q3.
        #[arg(long)]
        period: String,
        /// The run's date (YYYY-MM-DD; default: the program's as-of date).
        #[arg(long)]
        run_date: Option<String>,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Approve a draft run (a manager who did not prepare it).
    Approve {
        run: String,
        #[arg(long)]
        reason: String,
    },
    /// Lift a payee's bank or tax holds in a run after a call-back.
    Release {
        payee: String,
        #[arg(long)]
        run: String,
        #[arg(long)]
        reason: String,
    },
    /// Write the bank file of an approved run (same bytes on every export).
    Export {
        run: String,
        #[arg(long)]
        out: std::path::PathBuf,
        /// ach (NACHA), sepa or pain001 (ISO 20022 pain.001.001.09); default: by currency.
        #[arg(long)]
        rail: Option<String>,
    },
    /// A run's payees with status, holds, payment reference and bank state.
    Show {
        run: String,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn holds_json(h: &[payout::checks::Hold]) -> serde_json::Value {
    json!(h
        .iter()
        .map(|h| json!({"code": h.code, "reason": h.reason}))
        .collect::<Vec<_>>())
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let actor = Actor::new(ctx.user.clone(), ctx.role);
    let cfg = PayoutConfig::load(&ctx.paths.config_file)?;
    let mut store = ctx.open_existing_store()?;
    let out = std::io::stdout();
    let mut out = out.lock();
    match args.command {
        Cmd::Prepare {
            period,
            run_date,
            format,
        } => {
            let run_date = match run_date {
                Some(d) => NaiveDate::parse_from_str(d.trim(), "%Y-%m-%d").map_err(|_| {
                    anyhow::anyhow!("--run-date {d:?} is not a date like 2026-09-30")
                })?,
                None => {
                    store
                        .program()?
                        .ok_or_else(|| {
                            anyhow::anyhow!("no program in the cache: import a data set first")
                        })?
                        .as_of
                }
            };
            let days = cfg.bank_change_hold_days.unwrap_or(30);
            let p = payout::prepare(&mut store, &actor, &period, run_date, days, &now())?;
            match format {
                Format::Jsonl => {
                    for r in &p.payees {
                        let mut v = json!({
                            "run_id": p.run.run_id,
                            "payee_partner_id": r.partner_id,
                            "amount": r.amount.to_string(),
                            "currency": p.run.currency,
                            "status": r.status,
                            "holds": holds_json(&r.holds),
                        });
                        if !r.warnings.is_empty() {
                            v["warnings"] = holds_json(&r.warnings);
                        }
                        writeln!(out, "{v}")?;
                    }
                }
                Format::Table => {
                    writeln!(
                        out,
                        "{:<10} {:>14} {:<16} holds",
                        "payee", "amount", "status"
                    )?;
                    for r in &p.payees {
                        let codes: Vec<&str> = r.holds.iter().map(|h| h.code.as_str()).collect();
                        writeln!(
                            out,
                            "{:<10} {:>14} {:<16} {}",
                            crate::text::sanitize(&r.partner_id),
                            r.amount.to_string(),
                            r.status,
                            codes.join(",")
                        )?;
                    }
                    let n = |s: &str| p.payees.iter().filter(|r| r.status == s).count();
                    writeln!(
                        out,
                        "run {}: {} payable, {} held, {} carried forward",
                        p.run.run_id,
                        n("payable"),
                        n("held"),
                        n("carried_forward")
                    )?;
                }
            }
            eprintln!("{}", p.run.run_id);
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Approve { run, reason } => {
            let r = payout::approve(&mut store, &actor, &run, &reason, &now())?;
            writeln!(out, "{} approved by {}", r.run_id, actor.user)?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Release { payee, run, reason } => {
            let p = payout::release(&mut store, &actor, &run, &payee, &reason, &now())?;
            writeln!(out, "{} in {}: {}", p.partner_id, run, p.status)?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Export {
            run,
            out: path,
            rail,
        } => {
            let e =
                payout::export::export(&mut store, &actor, &cfg, &run, rail.as_deref(), &now())?;
            std::fs::write(&path, &e.bytes)
                .map_err(|err| anyhow::anyhow!("cannot write {}: {err}", path.display()))?;
            writeln!(
                out,
                "{}: {} payments, {} {} ({}) written to {}",
                run,
                e.count,
                e.total,
                e.currency,
                e.rail,
                path.display()
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Show { run, format } => {
            let r = store
                .payout_run(&run)?
                .ok_or_else(|| anyhow::anyhow!("no payout run {run}"))?;
            let payees = store.payout_run_payees(&run)?;
            match format {
                Format::Jsonl => {
                    for p in &payees {
                        writeln!(
                            out,
                            "{}",
                            json!({
                                "run_id": r.run_id, "run_state": r.state,
                                "payee_partner_id": p.partner_id, "amount": p.amount.to_string(),
                                "currency": p.currency, "status": p.status,
                                "holds": holds_json(&p.holds), "state": p.state,
                                "payment_ref": p.payment_ref, "return_code": p.return_code,
                            })
                        )?;
                    }
                }
                Format::Table => {
                    writeln!(
                        out,
                        "run {} ({}), period {}, prepared by {}{}",
                        r.run_id,
                        r.state,
                        r.period,
                        r.prepared_by,
                        r.approved_by
                            .as_deref()
                            .map(|a| format!(", approved by {a}"))
                            .unwrap_or_default()
                    )?;
                    for p in &payees {
                        let codes: Vec<&str> = p.holds.iter().map(|h| h.code.as_str()).collect();
                        writeln!(
                            out,
                            "{:<10} {:>14} {:<16} {:<9} {:<16} {} {}",
                            crate::text::sanitize(&p.partner_id),
                            p.amount.to_string(),
                            p.status,
                            p.state,
                            p.payment_ref.as_deref().unwrap_or("-"),
                            p.return_code.as_deref().unwrap_or(""),
                            codes.join(",")
                        )?;
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
