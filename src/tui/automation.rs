//! The workbench's automation worker: routes new flags by the policy and delivers due
//! alerts on its own thread and connection, so a slow or unreachable receiver never
//! holds up the screen or a decision. It runs when asked (after a sync rescored) and
//! every [`EVERY`] (retries of waiting alerts).

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

use super::effects::{Incoming, Msg};
use crate::config::Config;
use crate::policy::apply;
use crate::store::Store;
use crate::workflow;

/// How often waiting alerts are retried while the workbench is open.
pub const EVERY: Duration = Duration::from_secs(60);

/// How long one delivery round may take (alerts left are retried later).
const BUDGET: Duration = Duration::from_secs(10);

/// One round: route what is new, deliver what is due. `None` when nothing happened.
pub fn run_once(db: &std::path::Path, config: &Config) -> Result<Option<String>, String> {
    let mut store = Store::open(db).map_err(|e| e.to_string())?;
    let wf = workflow::Policy::from_config(config);
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let rep = apply::run(&mut store, &config.policy, &config.alerts, &wf, &now)
        .map_err(|e| e.to_string())?;
    let sent = crate::alerts::deliver::deliver(&store, &config.alerts, BUDGET)
        .map_err(|e| e.to_string())?;
    // Routing into the queue alone is no news (the queue shows it); holds, automated
    // adjustments and alerts are.
    if rep.held == 0 && rep.adjusted == 0 && sent.sent == 0 && sent.errors.is_empty() {
        return Ok(None);
    }
    let mut text = format!(
        "policy: routed {} new flag{} (held {}, adjusted {}), QA sample {}; alerts sent {}, waiting {}",
        rep.routed,
        if rep.routed == 1 { "" } else { "s" },
        rep.held,
        rep.adjusted,
        rep.qa_sampled,
        sent.sent,
        sent.pending
    );
    if let Some(e) = sent.errors.first() {
        text.push_str(&format!(" (last error: {e})"));
    }
    Ok(Some(text))
}

/// Starts the worker. Each `()` on `rx` asks for a round now; several count once.
pub fn spawn(db: PathBuf, config: Config, rx: Receiver<()>, tx: Sender<Incoming>) {
    std::thread::spawn(move || loop {
        match rx.recv_timeout(EVERY) {
            Ok(()) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        while rx.try_recv().is_ok() {}
        let msg = match super::guard::catch("the policy run", || run_once(&db, &config)) {
            Ok(Ok(None)) => continue,
            Ok(Ok(Some(text))) => Msg::PolicyRan(text),
            Ok(Err(e)) | Err(e) => Msg::PolicyRan(format!("policy run failed: {e}")),
        };
        if tx.send(Incoming::Msg(msg)).is_err() {
            return;
        }
    });
}
