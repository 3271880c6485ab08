//! `tierdesk explain`.

use std::path::PathBuf;
use std::process::ExitCode;

use super::Context;
use crate::plan::Calculator;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The transaction whose commission lines to explain.
    #[arg(value_name = "TRANSACTION_ID")]
    pub transaction_id: String,
    /// A data-set folder (docs/dataset.md); without it, the cache.
    #[arg(long, value_name = "DIR")]
    pub dataset: Option<PathBuf>,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let ds = super::commissions::load(ctx, args.dataset.as_deref())?;
    let calc = Calculator::new(&ds);
    match calc.explain(args.transaction_id.trim()) {
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
