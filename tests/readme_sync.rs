//! The README's "PRM sync" walkthrough, run as written (the binary under test for `$t`,
//! a temporary folder for `/tmp`, a free port for 8787): every command succeeds and the
//! cache ends with the program, the decisions and the PRM's reward statuses.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// The first ```sh block after `## PRM sync`.
fn walkthrough() -> Vec<String> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = &readme[readme.find("## PRM sync").expect("a PRM sync section")..];
    let start = section.find("```sh\n").expect("a sh block") + 6;
    let end = start + section[start..].find("```").unwrap();
    section[start..end]
        .lines()
        .map(|l| l.split(" #").next().unwrap().trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_readme_sync_walkthrough_runs_as_written() {
    let exe = env!("CARGO_BIN_EXE_tierdesk");
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let tmp = home.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let env = |c: &mut Command| {
        c.env("HOME", home)
            .env("XDG_DATA_HOME", home.join("data"))
            .env("XDG_CONFIG_HOME", home.join("cfg"))
            .env("TIERDESK_CONFIG", home.join("config.toml"))
            .env("TIERDESK_SYNC_BACKOFF_MS", "5")
            .env_remove("TIERDESK_DB")
            .env_remove("TIERDESK_PRM_TOKEN");
    };
    let subst = |l: &str| {
        l.replace("/tmp/", &format!("{}/", tmp.display()))
            .replace("127.0.0.1:8787", &format!("127.0.0.1:{port}"))
    };
    let mut sim: Option<Killed> = None;
    let mut ran = Vec::new();
    let mut keyring_ok = true;
    for line in walkthrough() {
        // The build line: the binary under test is already built.
        if line.starts_with("t=") {
            continue;
        }
        let line = subst(&line);
        let (stdin, cmdline) = match line.split_once(" | ") {
            Some((echo, rest)) => (
                Some(echo.trim_start_matches("echo ").trim().to_string()),
                rest.to_string(),
            ),
            None => (None, line.clone()),
        };
        let background = cmdline.ends_with('&');
        let words: Vec<&str> = cmdline.trim_end_matches('&').split_whitespace().collect();
        assert_eq!(words[0], "$t", "every step runs tierdesk: {line}");
        let args = &words[1..];
        // The last step opens the workbench: a terminal program, driven elsewhere.
        if args.len() == 2 && args[0] == "--db" {
            continue;
        }
        let mut c = Command::new(exe);
        c.args(args);
        env(&mut c);
        if !keyring_ok {
            c.env("TIERDESK_PRM_TOKEN", "pk_demo:sk_demo");
        }
        if background {
            let mut child = c
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let mut first = String::new();
            BufReader::new(child.stdout.take().unwrap())
                .read_line(&mut first)
                .unwrap();
            assert!(first.contains(&format!("127.0.0.1:{port}")), "{first}");
            sim = Some(Killed(child));
            ran.push(line);
            continue;
        }
        let out = match stdin {
            Some(input) => {
                let mut child = c
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap();
                writeln!(child.stdin.take().unwrap(), "{input}").unwrap();
                child.wait_with_output().unwrap()
            }
            None => c.output().unwrap(),
        };
        let err = String::from_utf8_lossy(&out.stderr);
        if args.first() == Some(&"login") && !out.status.success() && err.contains("OS keyring") {
            // No keyring here: the same PRM through config and the environment.
            keyring_ok = false;
            std::fs::write(
                home.join("config.toml"),
                format!("[prm]\nurl = \"http://127.0.0.1:{port}\"\nflavor = \"partnerstack\"\n"),
            )
            .unwrap();
            ran.push(line);
            continue;
        }
        // `import` exits 3 when it quarantined lines (the demo's planted bad rows).
        let ok = out.status.success() || (args.contains(&"import") && out.status.code() == Some(3));
        assert!(
            ok,
            "`{line}` failed: {}\n{err}",
            String::from_utf8_lossy(&out.stdout)
        );
        ran.push(line);
    }
    assert!(sim.is_some(), "the walkthrough starts a simulator");
    assert!(ran.iter().any(|l| l.contains("sync --once --full")));
    // The cache holds the program and what the PRM said.
    let db = tmp.join("acme.db");
    assert!(Path::new(&db).exists());
    let c = rusqlite::Connection::open(&db).unwrap();
    let n = |sql: &str| -> i64 { c.query_row(sql, [], |r| r.get(0)).unwrap() };
    assert!(n("SELECT COUNT(*) FROM transactions") > 1000);
    assert!(n("SELECT COUNT(*) FROM prm_rewards") > 1000);
    assert!(n("SELECT COUNT(*) FROM flags") > 0, "scored after the pull");
    drop(sim);
}
