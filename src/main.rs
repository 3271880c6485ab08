use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    quiet_on_closed_stdout();
    let cli = tierdesk::cli::Cli::parse();
    let paths = tierdesk::config::Paths::resolve(cli.db.as_deref());
    let _log = tierdesk::logging::init(&paths.log_dir);
    tierdesk::logging::log_panics();
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

/// `println!` panics when stdout is a pipe whose reader has gone (`tierdesk doctor | head -1`).
/// The reader stopping early is not a failure: exit quietly with success instead of a panic.
fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if tierdesk::cli::is_broken_pipe_panic(msg) {
            std::process::exit(0);
        }
        default(info);
    }));
}
