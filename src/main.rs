use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = tierdesk::cli::Cli::parse();
    let paths = tierdesk::config::Paths::resolve(cli.db.as_deref());
    let _log = tierdesk::logging::init(&paths.log_dir);
    match tierdesk::cli::run(cli) {
        Ok(code) => code,
        // A reader that stops early (`| head`) is not a failure.
        Err(e) if tierdesk::cli::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("tierdesk: {e:#}");
            ExitCode::FAILURE
        }
    }
}
