//! `tierdesk reconcile FILE...`: match bank statements (camt.053/054, BAI2) and NACHA
//! return files to exported payout lines.

use std::io::Write;
use std::process::ExitCode;

use chrono::{SecondsFormat, Utc};
use serde_json::json;

use super::{Context, Format};
use crate::workflow::Actor;

/// Match bank files to exported payments; one line per statement entry.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  tierdesk reconcile stmt-2026-10-02.xml returns.ach --format jsonl"
)]
pub struct Args {
    /// camt.053 / camt.054, BAI2 or NACHA return files (detected by content).
    #[arg(required = true)]
    pub files: Vec<std::path::PathBuf>,
    /// Business days a value date may be from the run date for an amount match.
    #[arg(long, default_value_t = 3)]
    pub window_days: i64,
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let actor = Actor::new(ctx.user.clone(), ctx.role);
    let mut files = Vec::new();
    for f in &args.files {
        let bytes =
            std::fs::read(f).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", f.display()))?;
        files.push((f.display().to_string(), bytes));
    }
    let mut store = ctx.open_existing_store()?;
    let now = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
    let res =
        crate::payout::reconcile::reconcile(&mut store, &actor, &files, args.window_days, &now)?;
    let out = std::io::stdout();
    let mut out = out.lock();
    for r in &res {
        match args.format {
            Format::Jsonl => writeln!(
                out,
                "{}",
                json!({"file": r.file, "entry": r.entry, "class": r.class, "lines": r.lines, "code": r.code})
            )?,
            Format::Table => writeln!(
                out,
                "{} #{:<5} {:<10} {:<6} {}",
                crate::text::sanitize(&r.file),
                r.entry,
                r.class,
                r.code.as_deref().unwrap_or(""),
                r.lines.join(",")
            )?,
        }
    }
    if res.iter().any(|r| r.repeated) {
        eprintln!("some files were read before: nothing of them was applied again");
    }
    Ok(ExitCode::SUCCESS)
}
