//! `tierdesk dispute`: open, list, show and move partner disputes.

use std::process::ExitCode;

use serde_json::json;

use super::Context;
use crate::dispute::{self, NewDispute, State};
use crate::workflow::{Actor, Policy};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ListFormat {
    Table,
    Jsonl,
    Csv,
}

#[derive(Debug, clap::Subcommand)]
pub enum Cmd {
    /// Open a dispute on a transaction for a partner.
    Open {
        #[arg(long)]
        partner: String,
        #[arg(long)]
        transaction: String,
        /// incorrect_amount | missing_credit | wrong_tier | clawback | other
        #[arg(long)]
        reason: String,
        /// The amount the partner claims (added to the commission total when approved).
        #[arg(long, allow_hyphen_values = true)]
        claimed: String,
        #[arg(long, default_value = "")]
        note: String,
    },
    /// List disputes.
    List {
        #[arg(long)]
        state: Option<String>,
        #[arg(long, value_enum, default_value = "table")]
        format: ListFormat,
    },
    /// One dispute with its history.
    Show { id: String },
    /// Move a dispute to another state.
    Move {
        id: String,
        #[arg(long)]
        to: String,
        /// For partially_approved: the amount granted.
        #[arg(long, allow_hyphen_values = true)]
        granted: Option<String>,
        #[arg(long)]
        reason: String,
    },
}

fn row_json(d: &crate::store::dispute::DisputeRow) -> serde_json::Value {
    json!({
        "dispute_id": d.dispute_id,
        "citation": format!("dispute:{}", d.dispute_id),
        "partner_id": d.partner_id,
        "transaction_id": d.transaction_id,
        "reason_code": d.reason_code,
        "claimed": d.claimed,
        "granted": d.granted,
        "state": d.state,
        "note": crate::text::sanitize(&d.note),
        "opened_by": d.opened_by,
        "opened_at": d.opened_at,
        "updated_at": d.updated_at,
        "decision_id": d.decision_id,
    })
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let mut store = ctx.open_existing_store()?;
    let actor = Actor::new(ctx.user.clone(), ctx.role);
    match args.cmd {
        Cmd::Open {
            partner,
            transaction,
            reason,
            claimed,
            note,
        } => {
            let claimed = dispute::parse_amount(&claimed, "--claimed")?;
            let id = dispute::open(
                &mut store,
                &actor,
                NewDispute {
                    partner_id: partner.trim().to_string(),
                    transaction_id: transaction.trim().to_string(),
                    reason_code: reason.trim().to_string(),
                    claimed,
                    note,
                },
            )?;
            println!("{id}");
        }
        Cmd::List { state, format } => {
            if let Some(s) = &state {
                s.parse::<State>()?;
            }
            let rows = store.disputes(state.as_deref())?;
            match format {
                ListFormat::Jsonl => {
                    for d in &rows {
                        println!("{}", serde_json::to_string(&row_json(d))?);
                    }
                }
                ListFormat::Csv => {
                    let mut w = csv::Writer::from_writer(std::io::stdout());
                    w.write_record([
                        "dispute_id",
                        "partner_id",
                        "transaction_id",
                        "reason_code",
                        "claimed",
                        "granted",
                        "state",
                        "opened_at",
                        "updated_at",
                    ])?;
                    for d in &rows {
                        w.write_record([
                            d.dispute_id.as_str(),
                            &d.partner_id,
                            &d.transaction_id,
                            &d.reason_code,
                            &d.claimed,
                            d.granted.as_deref().unwrap_or(""),
                            &d.state,
                            &d.opened_at,
                            &d.updated_at,
                        ])?;
                    }
                    w.flush()?;
                }
                ListFormat::Table => {
                    println!(
                        "{:<11} {:<10} {:<12} {:<18} {:>12} {:>12}  state",
                        "id", "partner", "transaction", "reason", "claimed", "granted"
                    );
                    for d in &rows {
                        println!(
                            "{:<11} {:<10} {:<12} {:<18} {:>12} {:>12}  {}",
                            d.dispute_id,
                            crate::text::sanitize(&d.partner_id),
                            crate::text::sanitize(&d.transaction_id),
                            d.reason_code,
                            d.claimed,
                            d.granted.as_deref().unwrap_or("-"),
                            d.state
                        );
                    }
                }
            }
        }
        Cmd::Show { id } => {
            let id = id.trim().trim_start_matches("dispute:");
            let d = store
                .dispute(id)?
                .ok_or_else(|| dispute::DisputeError::Unknown(id.to_string()))?;
            let mut v = row_json(&d);
            v["events"] = store
                .dispute_events(id)?
                .into_iter()
                .map(|e| {
                    json!({
                        "from": e.from_state, "to": e.to_state, "by": e.actor, "role": e.role,
                        "reason": crate::text::sanitize(&e.reason), "granted": e.granted, "at": e.at,
                        "audit": e.audit_seq.map(|s| format!("audit:{s}")),
                    })
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        Cmd::Move {
            id,
            to,
            granted,
            reason,
        } => {
            let id = id.trim().trim_start_matches("dispute:").to_string();
            let to: State = to.parse()?;
            let granted = granted
                .as_deref()
                .map(|g| dispute::parse_amount(g, "--granted"))
                .transpose()?;
            let policy = Policy::from_config(&ctx.config);
            let m = dispute::move_to(&mut store, &policy, &actor, &id, to, granted, &reason)?;
            match (&m.granted, &m.adjustment) {
                (Some(g), Some(s)) => println!(
                    "{id}: {} (granted {g}; the adjustment is {})",
                    m.state.as_str(),
                    s.replace('_', " ")
                ),
                _ => println!("{id}: {}", m.state.as_str()),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
