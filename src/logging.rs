//! Logging to a file in the data directory: never to the terminal the UI draws on.

use std::path::Path;

use tracing_subscriber::EnvFilter;

/// Starts logging to `DIR/tierdesk.log`. Level from `TIERDESK_LOG` (default `info`).
/// Returns a guard that flushes the log when dropped; keep it alive in `main`.
pub fn init(dir: &Path) -> Option<tracing_appender::non_blocking::WorkerGuard> {
    std::fs::create_dir_all(dir).ok()?;
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
