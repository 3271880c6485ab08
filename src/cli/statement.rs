//! `tierdesk statement`: one payee's statement for a period (JSON, HTML, CSV), or every
//! payee's with an index; `--finalize` stores the statement as final (immutable).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use serde_json::{json, Value};

use super::Context;
use crate::service::records::{load, now};
use crate::statement::render;
use crate::store::Store;
use crate::workflow::Actor;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StatementFormat {
    Json,
    Html,
    Csv,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The payee (partner id).
    #[arg(long, value_name = "PARTNER", required_unless_present = "all")]
    pub partner: Option<String>,
    /// The fiscal quarter, `YYYY-Qn`.
    #[arg(long, value_name = "PERIOD")]
    pub period: String,
    /// Every payee with lines in the period (needs --out).
    #[arg(long, requires = "out", conflicts_with = "partner")]
    pub all: bool,
    #[arg(long, value_enum, default_value = "json")]
    pub format: StatementFormat,
    /// Write files into this folder (one per payee, plus index.json and index.html).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Store the statement(s) as final: they never change afterwards (manager role;
    /// stands in for the approval of the period's payout run).
    #[arg(long)]
    pub finalize: bool,
}

fn render(st: &Value, f: StatementFormat) -> anyhow::Result<String> {
    Ok(match f {
        StatementFormat::Json => format!("{}\n", serde_json::to_string_pretty(st)?),
        StatementFormat::Html => render::html(st),
        StatementFormat::Csv => render::csv(st)?,
    })
}

fn ext(f: StatementFormat) -> &'static str {
    match f {
        StatementFormat::Json => "json",
        StatementFormat::Html => "html",
        StatementFormat::Csv => "csv",
    }
}

/// Stores drafts as final, each with an audit entry; returns the statements as stored.
fn finalize(
    ctx: &Context,
    store: &mut Store,
    drafts: Vec<Value>,
    at: &str,
) -> anyhow::Result<Vec<Value>> {
    if ctx.role != crate::config::Role::Manager {
        anyhow::bail!("finalizing statements needs the manager role (act with --role manager)");
    }
    let actor = Actor::new(ctx.user.clone(), ctx.role);
    let out = store.wf_tx(|db| -> anyhow::Result<Vec<Value>> {
        let mut out = Vec::new();
        for mut st in drafts {
            if st["status"] == "final" {
                out.push(st);
                continue;
            }
            let partner = st["payee_partner_id"].as_str().unwrap_or_default().to_string();
            let period = st["period"].as_str().unwrap_or_default().to_string();
            let id = format!("ST-{partner}-{period}");
            st["status"] = json!("final");
            st["statement_id"] = json!(id);
            st["finalized_at"] = json!(at);
            st["finalized_by"] = json!(ctx.user);
            let head = crate::workflow::record_event(
                db,
                &actor,
                at,
                "statement_finalized",
                &format!("statement:{id}"),
                Some(json!({"partner": partner, "period": period, "payable": st["summary"]["payable"]})),
                None,
            )?;
            st["final_audit_head"] = json!(head);
            db.insert_final_statement(&crate::store::statement::FinalRow {
                statement_id: id,
                partner_id: partner,
                period,
                finalized_at: at.to_string(),
                finalized_by: ctx.user.clone(),
                json: serde_json::to_string(&st)?,
            })?;
            out.push(st);
        }
        Ok(out)
    })?;
    Ok(out)
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    crate::statement::parse_period(&args.period).map_err(|e| anyhow::anyhow!("--period: {e}"))?;
    let mut store = ctx.open_existing_store()?;
    let loaded = load(&store)?;
    let at = now();
    let book = loaded.book(at.clone());
    let partners: Vec<String> = match &args.partner {
        Some(p) => {
            let p = p.trim().to_string();
            if !loaded.ds.partners.iter().any(|x| x.partner_id == p) {
                anyhow::bail!("--partner: no partner {p:?} in the cache");
            }
            vec![p]
        }
        None => book.payees(&args.period),
    };
    let mut statements: Vec<Value> = partners
        .iter()
        .map(|p| book.statement(p, &args.period))
        .collect();
    drop(book);
    if args.finalize {
        statements = finalize(ctx, &mut store, statements, &at)?;
    }
    match &args.out {
        None => {
            for st in &statements {
                print!("{}", render(st, args.format)?);
            }
        }
        Some(dir) => write_dir(dir, &statements, args.format, &args.period)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn write_dir(dir: &Path, sts: &[Value], f: StatementFormat, period: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut index = Vec::new();
    let mut rows = String::new();
    for st in sts {
        let partner = st["payee_partner_id"].as_str().unwrap_or_default();
        let safe: String = partner
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let name = format!("statement-{safe}-{period}.{}", ext(f));
        let path = dir.join(&name);
        std::fs::write(&path, render(st, f)?)
            .with_context(|| format!("writing {}", path.display()))?;
        index.push(json!({
            "payee_partner_id": partner,
            "statement_id": st["statement_id"],
            "status": st["status"],
            "payable": st["summary"]["payable"],
            "file": name,
        }));
        rows.push_str(&format!(
            "<tr><td><a href=\"{}\">{}</a></td><td>{}</td><td>{}</td></tr>\n",
            render::esc(&name),
            render::esc(partner),
            render::esc(st["status"].as_str().unwrap_or_default()),
            render::esc(st["summary"]["payable"].as_str().unwrap_or_default()),
        ));
    }
    let idx = json!({"period": period, "statements": index});
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_string_pretty(&idx)? + "\n",
    )?;
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Statements {p}</title><style>body{{font-family:system-ui,sans-serif;margin:2em}}td,th{{border:1px solid #ccc;padding:4px 8px}}table{{border-collapse:collapse}}</style></head><body><h1>Statements {p}</h1><table><tr><th>Payee</th><th>Status</th><th>Payable</th></tr>\n{rows}</table></body></html>\n",
        p = render::esc(period)
    );
    std::fs::write(dir.join("index.html"), html)?;
    eprintln!(
        "wrote {} statement{} and an index to {}",
        sts.len(),
        if sts.len() == 1 { "" } else { "s" },
        dir.display()
    );
    Ok(())
}
