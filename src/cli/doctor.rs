//! `tierdesk doctor`.

use std::process::ExitCode;

use super::Context;
use crate::store::{Store, SCHEMA_VERSION};

/// Show the paths, versions and row counts tierdesk is using.
///
/// Prints where the cache, the demo cache, the config file and the log live, the
/// SQLite and schema versions, the keyring backend and the row count of every
/// table. Opening the cache creates it (empty) if it does not exist yet.
#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(ctx: &Context, _args: Args) -> anyhow::Result<ExitCode> {
    let p = &ctx.paths;
    let exists = |path: &std::path::Path| {
        if path.exists() {
            ""
        } else {
            " (not created yet)"
        }
    };
    println!("tierdesk {}", env!("CARGO_PKG_VERSION"));
    println!("paths");
    println!("  cache       {}{}", p.db.display(), exists(&p.db));
    println!(
        "  demo cache  {}{}",
        p.demo_db.display(),
        exists(&p.demo_db)
    );
    println!(
        "  config      {}{}",
        p.config_file.display(),
        exists(&p.config_file)
    );
    println!("  log         {}", p.log_dir.join("tierdesk.log").display());
    println!("versions");
    println!("  SQLite      {}", Store::sqlite_version());
    let store = ctx.open_store()?;
    println!(
        "  schema      {} (this build writes {SCHEMA_VERSION})",
        store.schema_version()?
    );
    {
        use crate::sync::creds::Backend;
        println!(
            "  keyring     {}; fallback {}{}",
            Backend::Default.describe(),
            Backend::KeyutilsUser.describe(),
            if std::env::var_os("TIERDESK_PRM_TOKEN").is_some() {
                " (TIERDESK_PRM_TOKEN is set and overrides it)"
            } else {
                ""
            }
        );
    }
    println!("user          {} ({})", ctx.user, ctx.role.as_str());
    match store.program()? {
        Some(prog) => println!(
            "program       {} \"{}\" ({}, as of {})",
            prog.program_id, prog.name, prog.currency, prog.as_of
        ),
        None => println!("program       none imported yet (tierdesk import DIR, or tierdesk demo)"),
    }
    println!("rows");
    for (table, n) in store.row_counts()? {
        println!("  {table:<16} {n:>12}");
    }
    let unfinished = store.incomplete_work()?;
    for run in &unfinished {
        println!("unfinished    {run}");
    }
    match store.prm_binding()? {
        Some(prm) => println!("bound to PRM  {prm}"),
        None if store.is_demo()? => println!("bound to PRM  none: a demo cache (never syncs)"),
        None => println!("bound to PRM  none yet (the first sync binds it)"),
    }
    println!("partner data  {}", store.secret_status()?);
    match store.integrity_check() {
        Ok(()) if unfinished.iter().any(|r| !r.running) => {
            println!("integrity     file ok, but the cache is incomplete (see unfinished above)")
        }
        Ok(()) => println!("integrity     ok"),
        Err(e) => {
            println!("integrity     FAILED: {e}");
            return Ok(ExitCode::FAILURE);
        }
    }
    Ok(ExitCode::SUCCESS)
}
