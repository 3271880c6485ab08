//! `tierdesk audit verify` and `tierdesk audit export --format csv|jsonl`.

use std::io::Write;
use std::process::ExitCode;

use super::Context;
use crate::workflow::{self, AuditEntry};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub what: What,
}

#[derive(Debug, clap::Subcommand)]
pub enum What {
    /// Recompute the hash chain; exits 1 naming the first altered, removed or reordered entry.
    Verify,
    /// Write the trail for auditors.
    Export(ExportArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    Csv,
    Jsonl,
}

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Output format: csv (one row per entry) or jsonl (one JSON object per entry).
    #[arg(long, value_enum)]
    pub format: ExportFormat,
    /// Only the entries of one transaction.
    #[arg(long, value_name = "ID")]
    pub transaction: Option<String>,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let store = ctx.open_existing_store()?;
    match args.what {
        What::Verify => {
            let r = workflow::verify_chain(&store)?;
            match r.first_bad {
                None => {
                    println!(
                        "audit chain ok: {}, head {}",
                        crate::plural::count(r.entries, "entry", "entries"),
                        r.head
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Some(b) => {
                    eprintln!("audit chain broken at entry {}: {}", b.seq, b.why);
                    Ok(ExitCode::from(1))
                }
            }
        }
        What::Export(a) => {
            let stdout = std::io::stdout();
            let out = std::io::BufWriter::new(stdout.lock());
            match a.format {
                ExportFormat::Jsonl => {
                    let mut out = out;
                    workflow::export_audit(&store, a.transaction.as_deref(), |e| {
                        serde_json::to_writer(&mut out, &e)?;
                        out.write_all(b"\n")?;
                        Ok(())
                    })?;
                    out.into_inner().map_err(|e| e.into_error())?.flush()?;
                }
                ExportFormat::Csv => {
                    let mut w = csv::Writer::from_writer(out);
                    w.write_record(CSV_HEADER)?;
                    workflow::export_audit(&store, a.transaction.as_deref(), |e| {
                        w.write_record(csv_record(&e))?;
                        Ok(())
                    })?;
                    w.flush()?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

const CSV_HEADER: [&str; 15] = [
    "seq",
    "at",
    "actor",
    "role",
    "action",
    "target",
    "before",
    "after",
    "reason",
    "score",
    "confidence",
    "detector_version",
    "decision_id",
    "prev_hash",
    "hash",
];

fn csv_record(e: &AuditEntry) -> Vec<String> {
    let j = |v: &Option<serde_json::Value>| v.as_ref().map(|v| v.to_string()).unwrap_or_default();
    let f = |v: Option<f64>| v.map(|x| x.to_string()).unwrap_or_default();
    vec![
        e.seq.to_string(),
        e.at.clone(),
        e.actor.clone(),
        e.role.clone(),
        e.action.clone(),
        e.target.clone(),
        j(&e.before),
        j(&e.after),
        e.reason.clone().unwrap_or_default(),
        f(e.score),
        f(e.confidence),
        e.detector_version.clone().unwrap_or_default(),
        e.decision_id.clone().unwrap_or_default(),
        e.prev_hash.clone(),
        e.hash.clone(),
    ]
}
