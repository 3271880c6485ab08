//! Logging to a file in the data directory: never to the terminal the UI draws on.

use std::path::Path;

use tracing_subscriber::EnvFilter;

/// Starts logging to `DIR/tierdesk.log`. Level from `TIERDESK_LOG` (default `info`).
/// Returns a guard that flushes the log when dropped; keep it alive in `main`.
pub fn init(dir: &Path) -> Option<tracing_appender::non_blocking::WorkerGuard> {
    std::fs::create_dir_all(dir).ok()?;
    // The log may name partners: readable by its owner only.
    crate::store::private_file(&dir.join("tierdesk.log"));
    let appender = tracing_appender::rolling::never(dir, "tierdesk.log");
    let (writer, guard) = tracing_appender::non_blocking(appender);
    let filter = EnvFilter::try_from_env("TIERDESK_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(false)
        .try_init()
        .ok()?;
    Some(guard)
}

/// Writes every panic (its message and where it happened) to the log before the
/// hook that was installed so far runs (which prints it; the workbench's also
/// restores the terminal first).
pub fn log_panics() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("(no message)");
        if crate::cli::is_broken_pipe_panic(msg) {
            return previous(info);
        }
        let at = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let thread = std::thread::current();
        tracing::error!(
            thread = thread.name().unwrap_or("unnamed"),
            at = %at,
            "panic: {msg}"
        );
        previous(info);
    }));
}
