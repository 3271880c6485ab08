//! `tierdesk explain`.

use std::path::PathBuf;
use std::process::ExitCode;

use super::Context;
use serde_json::{json, Value};

use crate::plan::Calculator;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The transaction whose commission lines to explain.
    #[arg(value_name = "TRANSACTION_ID")]
    pub transaction_id: String,
    /// A data-set folder (docs/dataset.md); without it, the cache.
    #[arg(long, value_name = "DIR")]
    pub dataset: Option<PathBuf>,
    /// text | json (json adds the PRM's lines with their reward status as last pulled,
    /// and what tierdesk wrote back or left for the PRM's own screen).
    #[arg(long, default_value = "text")]
    pub format: String,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    if args.format != "text" && args.format != "json" {
        anyhow::bail!("--format `{}`: expected text or json", args.format);
    }
    let ds = super::commissions::load(ctx, args.dataset.as_deref())?;
    let calc = Calculator::new(&ds);
    match calc.explain(args.transaction_id.trim()) {
        Some(e) if args.format == "json" => {
            let store = match &args.dataset {
                Some(_) => None,
                None => Some(ctx.open_store()?),
            };
            let v = to_json(&e, store.as_ref())?;
            println!("{}", serde_json::to_string_pretty(&v)?);
            Ok(ExitCode::SUCCESS)
        }
        Some(e) => {
            print!("{}", crate::text::sanitize_multiline(&e.to_string()));
            Ok(ExitCode::SUCCESS)
        }
        None => {
            let source = match &args.dataset {
                Some(dir) => format!("the data set {} (or its line was rejected)", dir.display()),
                None => format!("the cache {}", ctx.paths.db.display()),
            };
            eprintln!(
                "tierdesk explain: no transaction {:?} in {source}",
                args.transaction_id
            );
            Ok(ExitCode::from(1))
        }
    }
}

fn line_json(l: &crate::model::CommissionLine) -> Value {
    json!({
        "commission_id": l.commission_id,
        "payee_partner_id": l.payee_partner_id,
        "role": l.role.as_str(),
        "amount": l.amount.to_string(),
        "period": l.period,
    })
}

/// The explanation as JSON: amounts as exact decimal strings. With the cache, each PRM
/// line carries its reward status and decline reason as last pulled, and `write_back`
/// lists every decision's write with its outbox status (pending, pushed, manual = left
/// for the PRM's own screen, conflict, failed, cancelled).
pub fn to_json(
    e: &crate::plan::Explanation,
    store: Option<&crate::store::Store>,
) -> anyhow::Result<Value> {
    let statuses: Vec<(String, String, Option<String>)> = match store {
        Some(s) => s.reward_statuses(&e.transaction_id)?,
        None => Vec::new(),
    };
    let prm_lines: Vec<Value> = e
        .prm_lines
        .iter()
        .map(|l| {
            let mut v = line_json(l);
            let st = statuses.iter().find(|(k, _, _)| *k == l.commission_id);
            v["reward_status"] = json!(st.map(|s| s.1.clone()));
            v["decline_reason"] = json!(st.and_then(|s| s.2.clone()));
            v
        })
        .collect();
    let mut write_back = Vec::new();
    if let Some(s) = store {
        let db = s.wf();
        for d in db.decisions_for(&e.transaction_id)? {
            let Some(o) = db.get_outbox(&d.decision_id)? else {
                continue;
            };
            let payload: Value = serde_json::from_str(&o.payload).unwrap_or(Value::Null);
            let write = crate::workflow::OutboxPayload::decode(&payload, &o.decision_id)
                .map(|p| serde_json::to_value(&p.write).unwrap_or(Value::Null))
                .unwrap_or(Value::Null);
            let left_for_prm = o.status == "manual";
            write_back.push(json!({
                "decision_id": o.decision_id,
                "decision": d.action,
                "by": d.actor,
                "write": write,
                "status": o.status,
                "left_for_prm_screen": left_for_prm,
                "note": o.last_error,
                "attempts": o.attempts,
                "created_at": o.created_at,
                "pushed_at": o.pushed_at,
            }));
        }
    }
    Ok(json!({
        "transaction_id": e.transaction_id,
        "kind": e.kind.as_str(),
        "partner_id": e.partner_id,
        "sku": e.sku,
        "family": e.family,
        "quantity": e.quantity,
        "amount": e.amount.to_string(),
        "currency": e.currency,
        "closed_on": e.closed_on.to_string(),
        "period": e.period,
        "lines": e.lines.iter().map(|l| {
            let mut v = line_json(&l.line);
            v["steps"] = json!(l.steps);
            v
        }).collect::<Vec<_>>(),
        "no_lines": e.no_lines,
        "prm_lines": prm_lines,
        "variance": e.variance.as_ref().map(|v| json!({
            "missing": v.missing.iter().map(line_json).collect::<Vec<_>>(),
            "extra": v.extra.iter().map(line_json).collect::<Vec<_>>(),
            "reason": v.reason,
        })),
        "write_back": write_back,
    }))
}
