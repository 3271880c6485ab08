use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = tierdesk::cli::Cli::parse();
    let paths = tierdesk::config::Paths::resolve(cli.db.as_deref());
    let _log = tierdesk::logging::init(&paths.log_dir);
    match tierdesk::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("tierdesk: {e:#}");
            ExitCode::FAILURE
        }
    }
}
