//! `tierdesk listen` as a user runs it: the real binary against the PRM simulator on
//! 127.0.0.1. A signed event for a new transaction is stored, the transaction is
//! re-fetched and synced into the cache; a bad signature is refused and stores nothing.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::json;
use tierdesk::sim::webhook::{send, SignMode};
use tierdesk::sim::{Flavor, SimOptions, SimState, DEFAULT_TOKEN};
use tierdesk::store::Store;

const SECRET: &str = "listen-cli-secret-0001";

fn tierdesk(home: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tierdesk"));
    c.args(["--db", home.join("cache.db").to_str().unwrap()])
        .args(args)
        .env("HOME", home)
        .env("XDG_DATA_HOME", home.join("data"))
        .env("TIERDESK_CONFIG", home.join("config.toml"))
        .env("TIERDESK_PRM_TOKEN", DEFAULT_TOKEN)
        .env("TIERDESK_WEBHOOK_SECRET_PS", SECRET)
        .env_remove("TIERDESK_DB");
    c
}

#[test]
fn a_signed_event_brings_the_transaction_in_and_a_bad_one_is_refused() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let ds = tierdesk::sim::synth::program(4, 8, 60, true);
    let state = SimState::new(
        &ds,
        SimOptions {
            flavor: Flavor::Partnerstack,
            ..SimOptions::default()
        },
    );
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let prm = format!("http://{}", listener.local_addr().unwrap());
    rt.spawn(tierdesk::sim::serve(listener, state.clone()));
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    std::fs::write(
        home.join("config.toml"),
        format!(
            "[prm]\nurl = \"{prm}\"\nflavor = \"partnerstack\"\n\n[listen]\npoll_secs = 0\n\
             [listen.providers]\nps = \"hmac:X-Signature\"\n"
        ),
    )
    .unwrap();
    let first = tierdesk(home, &["sync", "--once"]).output().unwrap();
    assert!(first.status.success(), "{first:?}");
    // Without a sender configured for it, or with a bad mode, listen says what is wrong.
    let bad = tierdesk(home, &["listen", "--provider", "ps=rot13"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("provider `ps`"));

    let mut child = tierdesk(home, &["listen", "--addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    let wait_for = |what: &str, lines: &mut Vec<String>| {
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(60) {
            if let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
                lines.push(l.clone());
                if l.contains(what) {
                    return l;
                }
            }
        }
        panic!("no `{what}` from listen: {lines:?}");
    };
    let mut lines = Vec::new();
    let first_line = wait_for("listening on", &mut lines);
    let addr = first_line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap()
        .to_string();
    let hook = format!("{addr}/hooks/ps");
    let key = state.create_transactions(1).remove(0);
    let mode = SignMode::Hmac {
        header: "X-Signature".into(),
    };
    let ev = json!({"id": "evt_1", "event": "transaction.created", "data": {"key": key}});
    // A bad signature: 401, nothing stored.
    let status = rt
        .block_on(send(&hook, &mode, b"not-the-secret", &ev, ""))
        .unwrap();
    assert_eq!(status, 401);
    let status = rt
        .block_on(send(&hook, &mode, SECRET.as_bytes(), &ev, ""))
        .unwrap();
    assert_eq!(status, 200);
    // The same event again is a duplicate.
    let again = rt
        .block_on(send(&hook, &mode, SECRET.as_bytes(), &ev, ""))
        .unwrap();
    assert_eq!(again, 200);
    wait_for("sync after events", &mut lines);
    // The simulator announces its own changes to the receiver.
    state.set_notify(Some(tierdesk::sim::Notify {
        url: hook.clone(),
        mode: mode.clone(),
        secret: SECRET.as_bytes().to_vec(),
    }));
    let created: serde_json::Value = rt
        .block_on(async {
            reqwest::Client::new()
                .post(format!("{prm}/_sim/admin/create/1"))
                .send()
                .await
                .unwrap()
                .json()
                .await
        })
        .unwrap();
    let announced = created["created"][0].as_str().unwrap().to_string();
    wait_for("sync after events", &mut lines);
    let _ = child.kill();
    let _ = child.wait();
    let store = Store::open(&home.join("cache.db")).unwrap();
    assert!(
        store.get_transaction(&key).unwrap().is_some(),
        "the transaction the event named was synced: {lines:?}"
    );
    assert!(
        store.get_transaction(&announced).unwrap().is_some(),
        "the announced transaction was synced: {lines:?}"
    );
    let events = store.webhook_events(10).unwrap();
    assert_eq!(events.len(), 2, "each stored once: {events:?}");
    assert!(events
        .iter()
        .any(|e| e.object_key.as_deref() == Some(key.as_str())));
    assert!(
        lines.iter().all(|l| !l.contains(SECRET)),
        "the secret is never printed"
    );
}
