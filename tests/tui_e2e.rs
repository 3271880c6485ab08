//! End to end: the real binary in a pseudo-terminal (portable-pty + vt100) on a small
//! demo program (`tierdesk demo`: generated, imported, scored, seeded, workbench opened).
//! The analyst opens the queue, searches, approves one record, overrides another with a
//! note and quits; then the manager reopens the same demo and signs off (after the
//! confirmation); the decisions and audit entries are checked in the database.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portable_pty::{native_pty_system, CommandBuilder, PtySize};

use tierdesk::store::queue::{PageDir, QueueFilter, QueueSort};
use tierdesk::store::Store;

struct Screen {
    parser: Arc<Mutex<vt100::Parser>>,
}

impl Screen {
    fn text(&self) -> String {
        self.parser
            .lock()
            .map(|p| p.screen().contents())
            .unwrap_or_default()
    }

    fn wait_for(&self, what: &str, timeout: Duration) -> String {
        let start = Instant::now();
        loop {
            let t = self.text();
            if t.contains(what) {
                return t;
            }
            if start.elapsed() > timeout {
                panic!("timed out waiting for {what:?}; screen:\n{t}");
            }
            std::thread::sleep(Duration::from_millis(30));
        }
    }
}

fn send(w: &mut dyn Write, bytes: &[u8]) {
    w.write_all(bytes).unwrap();
    w.flush().unwrap();
    // Keys typed by a person arrive apart; an Esc glued to the next key reads as Alt.
    std::thread::sleep(Duration::from_millis(60));
}

fn type_text(w: &mut dyn Write, s: &str) {
    for c in s.chars() {
        let mut b = [0u8; 4];
        send(w, c.encode_utf8(&mut b).as_bytes());
    }
}

/// The demo program's options for this test: small, a non-default variant.
const DEMO: [&str; 8] = [
    "--seed",
    "41",
    "--partners",
    "30",
    "--transactions",
    "1500",
    "--variant",
    "2",
];

/// Generates, imports and scores the small demo program into `db` (the same command
/// the workbench test then runs in the terminal), and picks two flagged records.
fn small_demo_program(db: &Path, home: &Path) -> (String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tierdesk"))
        .arg("demo")
        .args(DEMO)
        .arg("--demo-db")
        .arg(db)
        .arg("--no-tui")
        .env("HOME", home)
        .env("XDG_DATA_HOME", home.join("data"))
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("TIERDESK_CONFIG", home.join("config.toml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "demo failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = Store::open(db).unwrap();
    // Two flagged records still to decide (not the top one, so search has work to do).
    let rows = s
        .queue_page(
            &QueueFilter {
                status: vec!["flagged".into()],
                ..Default::default()
            },
            QueueSort::Rank,
            None,
            PageDir::After,
            10,
        )
        .unwrap();
    assert!(rows.len() >= 6, "the demo program has too few flagged rows");
    (
        rows[3].transaction_id.clone(),
        rows[5].transaction_id.clone(),
    )
}

/// Runs `tierdesk ARGS demo DEMO --demo-db DB` in a 30x120 pseudo-terminal.
fn spawn_workbench(
    home: &Path,
    db: &Path,
    who: &[&str],
) -> (
    Box<dyn portable_pty::Child + Send + Sync>,
    Box<dyn Write + Send>,
    Screen,
) {
    let pty = native_pty_system();
    let pair = pty
        .openpty(PtySize {
            rows: 30,
            cols: 120,
            pixel_width: 0,
            pixel_height: 0,
        })
        .unwrap();
    let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_tierdesk"));
    cmd.args(who);
    cmd.arg("demo");
    cmd.args(DEMO);
    cmd.args(["--demo-db", db.to_str().unwrap()]);
    cmd.env("TIERDESK_CONFIG", home.join("config.toml"));
    cmd.env("XDG_DATA_HOME", home.join("data"));
    cmd.env("XDG_CONFIG_HOME", home.join("config"));
    cmd.env("HOME", home);
    cmd.env("TERM", "xterm-256color");
    cmd.env_remove("NO_COLOR");
    let child = pair.slave.spawn_command(cmd).unwrap();
    drop(pair.slave);
    let mut reader = pair.master.try_clone_reader().unwrap();
    let writer = pair.master.take_writer().unwrap();
    let parser = Arc::new(Mutex::new(vt100::Parser::new(30, 120, 0)));
    let p2 = parser.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            if let Ok(mut p) = p2.lock() {
                p.process(&buf[..n]);
            }
        }
    });
    // Keep the master open as long as the child runs.
    std::mem::forget(pair.master);
    (child, writer, Screen { parser })
}

fn wait_exit(child: &mut Box<dyn portable_pty::Child + Send + Sync>, t: Duration) {
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(start.elapsed() < t, "the workbench did not quit");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status {status:?}");
}

#[test]
fn search_approve_override_quit_in_a_real_terminal() {
    let dir = tempfile::tempdir().unwrap();
    // Learn two record ids from a first run of the demo, then let `tierdesk demo` (same
    // seed: the same program) recreate its cache and open the workbench in the terminal.
    let probe = dir.path().join("probe.db");
    let (approve_id, override_id) = small_demo_program(&probe, dir.path());
    let db = dir.path().join("demo.db");

    let (mut child, mut writer, screen) =
        spawn_workbench(dir.path(), &db, &["--user", "ana", "--role", "analyst"]);
    let t = Duration::from_secs(20);

    // The queue opens with its header counts.
    // (`demo` generates, imports and scores first: slow on a loaded debug build.)
    screen.wait_for("in queue", Duration::from_secs(120));
    screen.wait_for("by score", t);
    // No PRM configured: the status bar says so, and asking to sync explains it.
    screen.wait_for("offline: no PRM", t);
    send(&mut writer, b"S");
    screen.wait_for("decisions wait in the outbox", t);

    // Search for the first record by id; approve it.
    send(&mut writer, b"/");
    type_text(&mut writer, &approve_id);
    screen.wait_for("1 match", t);
    send(&mut writer, b"\r");
    send(&mut writer, b"a");
    screen.wait_for(&format!("{approve_id}: approve"), t);

    // Clear the search, find the second record, override it with a note.
    send(&mut writer, b"F");
    send(&mut writer, b"/");
    type_text(&mut writer, &override_id);
    screen.wait_for("1 match", t);
    send(&mut writer, b"\r");
    send(&mut writer, b"o");
    screen.wait_for("Override", t);
    send(&mut writer, &[0x15]); // Ctrl-U clears the prefilled amount
    type_text(&mut writer, "123.45");
    send(&mut writer, b"\t");
    type_text(&mut writer, "Partner re-signed at a lower price");
    send(&mut writer, &[0x13]); // Ctrl-S submits
    screen.wait_for(&format!("{override_id}: override"), t);

    // The rest of the README's tour: sort and reverse, the record's panes, payouts,
    // disputes, help and the palette.
    send(&mut writer, b"F");
    send(&mut writer, b"s");
    screen.wait_for("by at stake ↓", t);
    send(&mut writer, b"O");
    screen.wait_for("by at stake ↑", t);
    send(&mut writer, b"\r");
    screen.wait_for("Detail", t);
    send(&mut writer, b"\t");
    screen.wait_for("Reasoning", t);
    send(&mut writer, &[0x1b]);
    send(&mut writer, b"6");
    screen.wait_for("[Payouts]", t);
    send(&mut writer, b"7");
    screen.wait_for("[Disputes]", t);
    send(&mut writer, b"1");
    screen.wait_for("[Queue]", t);
    send(&mut writer, b"?");
    screen.wait_for("Help — ", t);
    send(&mut writer, &[0x1b]);
    send(&mut writer, b"C");
    screen.wait_for("Queue columns", t);
    send(&mut writer, &[0x1b]);

    send(&mut writer, b"q");
    wait_exit(&mut child, t);

    // The decisions and their audit entries are in the cache.
    let s = Store::open(&db).unwrap();
    let a = s.record_detail(&approve_id).unwrap().unwrap();
    assert!(
        a.decisions
            .iter()
            .any(|d| d.action == "approve" && d.actor == "ana"),
        "{:?}",
        a.decisions
    );
    assert!(
        a.audit.iter().any(|e| e.action.contains("approve")),
        "{:?}",
        a.audit
    );
    let o = s.record_detail(&override_id).unwrap().unwrap();
    let d = o
        .decisions
        .iter()
        .find(|d| d.action == "override")
        .expect("override decision");
    assert_eq!(
        d.amount.as_deref().and_then(tierdesk::money::parse_money),
        tierdesk::money::parse_money("123.45")
    );
    assert_eq!(d.reason, "Partner re-signed at a lower price");
    assert!(o.audit.iter().any(|e| e.action.contains("override")
        && e.reason.as_deref() == Some("Partner re-signed at a lower price")));

    // The manager tour: `demo` reopens the same cache (the analyst's work is kept) and
    // the seeded proposal of another analyst awaits sign-off.
    let (mut child, mut writer, screen) =
        spawn_workbench(dir.path(), &db, &["--user", "mia", "--role", "manager"]);
    screen.wait_for("in queue", Duration::from_secs(120));
    send(&mut writer, b"2");
    screen.wait_for("awaiting sign-off", t);
    let before = Store::open(&db).unwrap().signoff_list(100).unwrap();
    assert!(
        before.iter().any(|r| r.proposer.as_deref() != Some("mia")),
        "nothing for mia to sign off: {before:?}"
    );
    let target = before[0].transaction_id.clone();
    send(&mut writer, b"a");
    screen.wait_for("total Δ", t);
    send(&mut writer, b"y");
    screen.wait_for("sign off →", t);
    send(&mut writer, b"q");
    wait_exit(&mut child, t);
    let s = Store::open(&db).unwrap();
    let d = s.record_detail(&target).unwrap().unwrap();
    assert!(
        d.decisions.iter().any(|x| x.actor == "mia"),
        "mia's sign-off is not recorded: {:?}",
        d.decisions
    );
    // Reopened, not regenerated: the analyst's approval is still there.
    let a = s.record_detail(&approve_id).unwrap().unwrap();
    assert!(a
        .decisions
        .iter()
        .any(|d| d.action == "approve" && d.actor == "ana"));
}
