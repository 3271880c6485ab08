//! The command line: one file per subcommand, each a thin shell over the core.
//!
//! Every subcommand file defines `Args` (clap) and
//! `pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode>`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Config, Paths, Role};

pub mod alerts;
pub mod ask;
pub mod audit;
pub mod bench;
pub mod commissions;
pub mod decide;
pub mod demo;
pub mod dispute;
pub mod doctor;
pub mod explain;
pub mod forecast;
pub mod guard;
pub mod import;
pub mod journal;
pub mod listen;
pub mod login;
pub mod payout;
pub mod plan;
pub mod policy;
pub mod prm;
pub mod queue;
pub mod reconcile;
pub mod resolve;
pub mod score;
pub mod sim;
pub mod statement;
pub mod sync;
pub mod workbench;

/// tierdesk: a keyboard-driven workbench for multi-tier channel-partner commissions.
///
/// With no subcommand it opens the workbench on your cache. New here? Run
/// `tierdesk demo` to generate a realistic program and explore it.
#[derive(Debug, Parser)]
#[command(name = "tierdesk", version, about)]
pub struct Cli {
    /// The SQLite cache to use (default: cache.db in the platform data directory).
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "TIERDESK_DB",
        value_name = "PATH"
    )]
    pub db: Option<PathBuf>,

    /// Who is acting (default: `user` in config.toml, else $USER).
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "TIERDESK_USER",
        value_name = "NAME"
    )]
    pub user: Option<String>,

    /// The role you act in: analyst or manager (default: `role` in config.toml, else analyst).
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        value_enum,
        env = "TIERDESK_ROLE"
    )]
    pub role: Option<Role>,

    /// Colour theme: dark, light, high-contrast, colorblind (NO_COLOR selects monochrome).
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        value_name = "NAME"
    )]
    pub theme: Option<String>,

    /// Config file (default: config.toml in the platform config directory).
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "TIERDESK_CONFIG",
        value_name = "PATH"
    )]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate a realistic demo program, import it into a demo cache and open the workbench.
    Demo(demo::Args),
    /// Import a data-set folder (the format of docs/dataset.md) into the cache.
    Import(import::Args),
    /// Score transactions for anomalies, from a data-set folder or the cache.
    Score(score::Args),
    /// Recalculate commission lines from the plan, from a data-set folder or the cache.
    Commissions(commissions::Args),
    /// Explain how every commission line of one transaction was derived.
    Explain(explain::Args),
    /// Show the paths, versions and row counts tierdesk is using.
    Doctor(doctor::Args),
    /// Decide on a flagged transaction: approve, override, dismiss, escalate, request documents.
    Decide(decide::DecideArgs),
    /// Sign off (or reject) an adjustment awaiting a manager's sign-off.
    Signoff(decide::SignoffArgs),
    /// Undo the latest decision on a transaction (compensating decision once pushed).
    Undo(decide::UndoArgs),
    /// Print the exception queue with workflow states.
    Queue(queue::Args),
    /// Verify or export the tamper-evident audit trail.
    Audit(audit::Args),
    /// Recommended accrual journal entries for signed-off adjustments of a period.
    Journal(journal::Args),
    /// Run a PRM simulator (PartnerStack or Impartner flavour) on a local port.
    Sim(sim::Args),
    /// Store a PRM credential in the OS keyring.
    Login(login::LoginArgs),
    /// Remove the stored PRM credential from the OS keyring.
    Logout(login::LogoutArgs),
    /// Pull records and AI flags from the PRM and push queued decisions.
    Sync(sync::Args),
    /// What the connected PRM has (describe), whether the mapping fits it (check), and
    /// the decisions left for its own screen (decisions).
    Prm(prm::Args),
    /// Receive PRM webhooks: verify, store, re-fetch through the API, sync and score
    /// (polling stays the fallback).
    Listen(listen::Args),
    /// Forecast bookings and accruals with prediction intervals.
    Forecast(forecast::Args),
    /// Rolling-origin backtest of the forecast against what happened.
    Backtest(forecast::BacktestArgs),
    /// Benchmarks that print figures (import, score, commissions, tui, sync).
    Bench(bench::Args),
    /// Plan rules: draft from plain English, apply as a new plan version, what-if, report.
    Plan(plan::Args),
    /// Governed automation: routing policy, rollout phases, precision gate, rollback.
    Policy(policy::Args),
    /// Alert channels (Slack, signed webhooks), the alerts outbox and the daily digest.
    Alerts(alerts::Args),
    /// A payee's commission statement for a period (JSON, HTML, CSV), or every payee's.
    Statement(statement::Args),
    /// Answer a question from the records (each sentence with its citations).
    Ask(ask::Args),
    /// Print any cited record (T…, C-…, decision:…, audit:…, plan:…, dispute:…) as JSON.
    Resolve(resolve::Args),
    /// Partner disputes: open, list, show, move (approvals adjust through the workflow).
    Dispute(dispute::Args),
    /// Payout runs: prepare, approve, release holds, export the bank file, show.
    Payout(payout::Args),
    /// Match bank statements and NACHA returns to exported payout lines.
    Reconcile(reconcile::Args),
}

/// What every subcommand gets: resolved paths, config and the acting person.
#[derive(Debug, Clone)]
pub struct Context {
    pub paths: Paths,
    pub config: Config,
    pub user: String,
    pub role: Role,
    pub theme: Option<String>,
}

impl Context {
    /// What the workbench needs of the context.
    pub fn workbench_options(&self) -> crate::tui::Options {
        crate::tui::Options {
            user: self.user.clone(),
            role: self.role,
            config: self.config.clone(),
            theme: self.theme.clone(),
            config_dir: self.paths.config_dir.clone(),
        }
    }

    pub fn from_cli(cli: &Cli) -> anyhow::Result<Context> {
        let mut paths = Paths::resolve(cli.db.as_deref());
        if let Some(c) = &cli.config {
            paths.config_file = c.clone();
        }
        let config = Config::load(&paths.config_file)?;
        let user = resolve_user(
            cli.user.as_deref(),
            config.user.as_deref(),
            std::env::var("USER").ok().as_deref(),
        );
        let role = cli.role.or(config.role).unwrap_or(Role::Analyst);
        let theme = cli.theme.clone().or_else(|| config.theme.clone());
        Ok(Context {
            paths,
            config,
            user,
            role,
            theme,
        })
    }

    /// Opens the user's cache.
    pub fn open_store(&self) -> anyhow::Result<crate::store::Store> {
        Ok(crate::store::Store::open(&self.paths.db)?)
    }

    /// Opens the cache for a command that reads or works on what was imported: a cache
    /// that does not exist yet is an error naming the path (a mistyped `--db` must not
    /// silently create an empty cache and report nothing).
    pub fn open_existing_store(&self) -> anyhow::Result<crate::store::Store> {
        missing_cache(&self.paths.db)?;
        self.open_store()
    }
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let ctx = Context::from_cli(&cli)?;
    match cli.command {
        None => workbench::run(&ctx),
        Some(Command::Demo(a)) => demo::run(&ctx, a),
        Some(Command::Import(a)) => import::run(&ctx, a),
        Some(Command::Score(a)) => score::run(&ctx, a),
        Some(Command::Commissions(a)) => commissions::run(&ctx, a),
        Some(Command::Explain(a)) => explain::run(&ctx, a),
        Some(Command::Doctor(a)) => doctor::run(&ctx, a),
        Some(Command::Decide(a)) => decide::run_decide(&ctx, a),
        Some(Command::Signoff(a)) => decide::run_signoff(&ctx, a),
        Some(Command::Undo(a)) => decide::run_undo(&ctx, a),
        Some(Command::Queue(a)) => queue::run(&ctx, a),
        Some(Command::Audit(a)) => audit::run(&ctx, a),
        Some(Command::Journal(a)) => journal::run(&ctx, a),
        Some(Command::Sim(a)) => sim::run(&ctx, a),
        Some(Command::Login(a)) => login::run_login(&ctx, a),
        Some(Command::Logout(a)) => login::run_logout(&ctx, a),
        Some(Command::Sync(a)) => sync::run(&ctx, a),
        Some(Command::Prm(a)) => prm::run(&ctx, a),
        Some(Command::Listen(a)) => listen::run(&ctx, a),
        Some(Command::Forecast(a)) => forecast::run(&ctx, a),
        Some(Command::Backtest(a)) => forecast::run_backtest(&ctx, a),
        Some(Command::Bench(a)) => bench::run(&ctx, a),
        Some(Command::Plan(a)) => plan::run(&ctx, a),
        Some(Command::Policy(a)) => policy::run(&ctx, a),
        Some(Command::Alerts(a)) => alerts::run(&ctx, a),
        Some(Command::Statement(a)) => statement::run(&ctx, a),
        Some(Command::Ask(a)) => ask::run(&ctx, a),
        Some(Command::Resolve(a)) => resolve::run(&ctx, a),
        Some(Command::Dispute(a)) => dispute::run(&ctx, a),
        Some(Command::Payout(a)) => payout::run(&ctx, a),
        Some(Command::Reconcile(a)) => reconcile::run(&ctx, a),
    }
}

/// For subcommands whose issue has not landed yet.
pub fn not_built(what: &str) -> anyhow::Result<ExitCode> {
    eprintln!("tierdesk {what}: not built yet");
    Ok(ExitCode::from(2))
}

/// Output formats shared by several subcommands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Jsonl,
    Table,
}

/// Who is acting: `--user` (or TIERDESK_USER), else `user` in config.toml, else $USER, else
/// "analyst". Names are trimmed and a blank one counts as not given, so an empty or padded
/// name never passes the four-eyes rule as "a different person".
pub fn resolve_user(flag: Option<&str>, config: Option<&str>, env: Option<&str>) -> String {
    [flag, config, env]
        .into_iter()
        .flatten()
        .map(str::trim)
        .find(|u| !u.is_empty())
        .unwrap_or("analyst")
        .to_string()
}

/// The error for a cache path that does not exist.
pub fn missing_cache(db: &std::path::Path) -> anyhow::Result<()> {
    if db.exists() {
        return Ok(());
    }
    anyhow::bail!(
        "no cache at {}: import a data set first (`tierdesk import DIR`), or pass --db PATH",
        db.display()
    )
}

/// Whether `err` comes from writing to a closed pipe (e.g. output piped into `head`):
/// the reader stopped early, which is not a failure of the command.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || cause
                .downcast_ref::<csv::Error>()
                .is_some_and(|c| matches!(c.kind(), csv::ErrorKind::Io(io) if io.kind() == std::io::ErrorKind::BrokenPipe))
            || cause
                .downcast_ref::<serde_json::Error>()
                .and_then(|j| j.io_error_kind())
                == Some(std::io::ErrorKind::BrokenPipe)
    })
}

/// Whether a panic message is the standard library's "failed printing to stdout: Broken
/// pipe" (what `println!` raises once the reader of a pipe has gone).
pub fn is_broken_pipe_panic(msg: &str) -> bool {
    msg.starts_with("failed printing to std") && msg.to_ascii_lowercase().contains("broken pipe")
}

#[cfg(test)]
mod pipe_tests {
    use super::{is_broken_pipe, is_broken_pipe_panic};

    #[test]
    fn user_names_are_trimmed_and_never_blank() {
        use super::resolve_user;
        assert_eq!(resolve_user(Some(" ann "), None, None), "ann");
        assert_eq!(resolve_user(Some("  "), Some("bob"), None), "bob");
        assert_eq!(resolve_user(Some(""), Some(" "), Some("carol")), "carol");
        assert_eq!(resolve_user(None, None, Some("")), "analyst");
    }

    #[test]
    fn a_missing_cache_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("typo.db");
        let err = super::missing_cache(&db).unwrap_err().to_string();
        assert!(err.contains("typo.db"), "{err}");
        std::fs::write(&db, b"").unwrap();
        assert!(super::missing_cache(&db).is_ok());
    }

    #[test]
    fn println_broken_pipe_panic_is_recognised() {
        let io = std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        assert!(is_broken_pipe_panic(&format!(
            "failed printing to stdout: {io}"
        )));
        assert!(!is_broken_pipe_panic("index out of bounds: the len is 3"));
    }

    #[test]
    fn broken_pipe_is_recognised_through_context() {
        let io = std::io::Error::new(std::io::ErrorKind::BrokenPipe, "closed");
        let err = anyhow::Error::new(io).context("writing scores");
        assert!(is_broken_pipe(&err));
        let other = anyhow::Error::new(std::io::Error::other("disk full")).context("writing");
        assert!(!is_broken_pipe(&other));
    }
}
