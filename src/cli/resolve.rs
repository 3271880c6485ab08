//! `tierdesk resolve`: any cited record as JSON, so anyone can check an answer.

use std::process::ExitCode;

use serde_json::json;

use super::Context;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ResolveFormat {
    Json,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Citations: T…, C-…, decision:<uuid>, audit:<seq>, plan:<path>, dispute:<id>. With
    /// one, the record is printed; with several, a JSON array of
    /// `{"citation","record"|"error"}`.
    #[arg(value_name = "CITATION", required = true)]
    pub citations: Vec<String>,
    /// Resolve as this partner: records outside the partner's scope are refused.
    #[arg(long, value_name = "PARTNER")]
    pub partner: Option<String>,
    #[arg(long, value_enum, default_value = "json")]
    pub format: ResolveFormat,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let store = ctx.open_existing_store()?;
    let loaded = crate::service::records::load(&store)?;
    let facts = crate::service::records::facts(&store)?;
    let partner = args.partner.as_deref().map(str::trim);
    crate::service::records::check_partner(&loaded.ds, partner)?;
    let book = loaded.book(crate::service::records::now());
    let resolve = |c: &str| crate::answer::resolve(&book, &facts, partner, c.trim());
    if let [one] = args.citations.as_slice() {
        return match resolve(one) {
            Ok(v) => {
                println!("{}", serde_json::to_string_pretty(&v)?);
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("tierdesk resolve: {e}");
                Ok(ExitCode::from(1))
            }
        };
    }
    let mut all_ok = true;
    let out: Vec<_> = args
        .citations
        .iter()
        .map(|c| match resolve(c) {
            Ok(v) => json!({"citation": c, "record": v}),
            Err(e) => {
                all_ok = false;
                json!({"citation": c, "error": e})
            }
        })
        .collect();
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
