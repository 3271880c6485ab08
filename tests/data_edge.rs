//! The data edge, end to end with the real binary and real SQLite files: values that
//! do not fit, the data set's invariants, ids, exit codes, master data only, the
//! program and PRM binding, the demo cache, interrupted work, scoring hints, file
//! permissions, masked tax ids, timestamps, non-UTF-8 lines, the sample config.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tierdesk::import::FILES;
use tierdesk::store::Store;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A copy of a sample program with its first `n` transactions (and their
/// commission lines): small enough for a debug build.
fn small(from: &str, to: &Path, n: usize) {
    std::fs::create_dir_all(to).unwrap();
    for f in FILES {
        std::fs::copy(fixture(from).join(f), to.join(f)).unwrap();
    }
    let tx = std::fs::read_to_string(fixture(from).join("transactions.jsonl")).unwrap();
    let kept: Vec<&str> = tx
        .lines()
        .filter(|l| !l.trim().is_empty())
        .take(n)
        .collect();
    let ids: std::collections::HashSet<String> = kept
        .iter()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["transaction_id"].as_str().unwrap().to_string()
        })
        .collect();
    // Refunds of sales not kept would be rejected: keep sales and their own refunds.
    let kept: Vec<&str> = kept
        .into_iter()
        .filter(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["original_transaction_id"]
                .as_str()
                .is_none_or(|o| ids.contains(o))
        })
        .collect();
    std::fs::write(to.join("transactions.jsonl"), kept.join("\n") + "\n").unwrap();
    let comm = std::fs::read_to_string(fixture(from).join("commissions.jsonl")).unwrap();
    let kept_comm: Vec<&str> = comm
        .lines()
        .filter(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            ids.contains(v["transaction_id"].as_str().unwrap())
        })
        .collect();
    std::fs::write(to.join("commissions.jsonl"), kept_comm.join("\n") + "\n").unwrap();
}

struct Env {
    dir: tempfile::TempDir,
    db: PathBuf,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("cache.db");
        Env { dir, db }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn run(&self, args: &[&str]) -> Output {
        let home = self.dir.path();
        Command::new(env!("CARGO_BIN_EXE_tierdesk"))
            .arg("--db")
            .arg(&self.db)
            .args(args)
            .env("HOME", home)
            .env("XDG_DATA_HOME", home.join("data"))
            .env("XDG_CONFIG_HOME", home.join("config"))
            .env("TIERDESK_CONFIG", home.join("no-config.toml"))
            .env("TIERDESK_PRM_TOKEN", "test-token")
            .env_remove("TIERDESK_DB")
            .output()
            .unwrap()
    }

    fn import(&self, dir: &Path, extra: &[&str]) -> Output {
        let mut args = vec!["import", "--quiet"];
        args.extend_from_slice(extra);
        args.push(dir.to_str().unwrap());
        self.run(&args)
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The first transaction line of a data set, as a JSON object.
fn first_tx(dir: &Path) -> serde_json::Map<String, serde_json::Value> {
    let t = std::fs::read_to_string(dir.join("transactions.jsonl")).unwrap();
    let line = t.lines().find(|l| l.contains("\"sale\"")).unwrap();
    serde_json::from_str(line).unwrap()
}

/// Appends lines to a data-set file; returns the line number of the first one.
fn append(dir: &Path, file: &str, lines: &[String]) -> usize {
    let p = dir.join(file);
    let mut t = std::fs::read_to_string(&p).unwrap();
    let first = t.lines().count() + 1;
    for l in lines {
        t.push_str(l);
        t.push('\n');
    }
    std::fs::write(&p, t).unwrap();
    first
}

fn variant(
    base: &serde_json::Map<String, serde_json::Value>,
    id: &str,
    edits: &[(&str, serde_json::Value)],
) -> String {
    let mut m = base.clone();
    m.insert("transaction_id".into(), id.into());
    for (k, v) in edits {
        m.insert((*k).to_string(), v.clone());
    }
    serde_json::Value::Object(m).to_string()
}

#[test]
fn values_that_do_not_fit_and_impossible_sales_are_rejected_rows_with_line_and_field() {
    let env = Env::new();
    let data = env.path("data");
    small("sample-program", &data, 300);
    let base = first_tx(&data);
    let q = base["quantity"].as_i64().unwrap();
    let unp: rust_decimal::Decimal = base["unit_net_price"].as_str().unwrap().parse().unwrap();
    let amount = (unp * rust_decimal::Decimal::from(q)).to_string();
    let id = base["transaction_id"].as_str().unwrap().to_string();
    use serde_json::json;
    let cases: Vec<(String, &str)> = vec![
        (
            variant(
                &base,
                "X-HUGE28",
                &[("amount", json!("9999999999999999999999999999"))],
            ),
            "amount",
        ),
        (
            variant(
                &base,
                "X-HUGE29",
                &[("amount", json!("79228162514264337593543950335"))],
            ),
            "amount",
        ),
        (
            variant(
                &base,
                "X-HUGE31",
                &[("amount", json!("1000000000000000000000000000000"))],
            ),
            "amount",
        ),
        (
            variant(&base, "X-QTY", &[("quantity", json!(i64::MAX))]),
            "quantity",
        ),
        (
            variant(
                &base,
                "X-37",
                &[(
                    "amount",
                    json!(
                        (unp * rust_decimal::Decimal::from(q) * rust_decimal_macros::dec!(3.7))
                            .round_dp(2)
                            .to_string()
                    ),
                )],
            ),
            "amount",
        ),
        (
            variant(
                &base,
                "X-NEGSALE",
                &[
                    ("quantity", json!(-q)),
                    ("amount", json!(format!("-{amount}"))),
                ],
            ),
            "quantity",
        ),
        (
            variant(
                &base,
                "X-ZERO",
                &[("quantity", json!(0)), ("amount", json!("0"))],
            ),
            "quantity",
        ),
        (
            variant(
                &base,
                "X-POSREFUND",
                &[
                    ("kind", json!("refund")),
                    ("original_transaction_id", json!(id)),
                ],
            ),
            "quantity",
        ),
        (
            variant(&base, "X-EUR", &[("currency", json!("EUR"))]),
            "currency",
        ),
        (
            variant(&base, &format!("{id}\u{200B}"), &[]),
            "transaction_id",
        ),
        (variant(&base, "X-BIDI\u{202E}1", &[]), "transaction_id"),
    ];
    let lines: Vec<String> = cases.iter().map(|(l, _)| l.clone()).collect();
    let first = append(&data, "transactions.jsonl", &lines);
    // A commission line of a good transaction after them: still loaded.
    let o = env.import(&data, &[]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(3), "{out}");
    assert!(!out.contains("panicked"), "{out}");
    for (k, (_, field)) in cases.iter().enumerate() {
        let at = format!("transactions.jsonl:{}: {field}:", first + k);
        assert!(out.contains(&at), "missing {at:?} in\n{out}");
    }
    let s = Store::open(&env.db).unwrap();
    let q = s.quarantined().unwrap();
    assert_eq!(
        q.iter().filter(|r| r.file == "transactions.jsonl").count(),
        cases.len(),
        "every rejected row is quarantined"
    );
    assert!(
        s.count_rows("commissions").unwrap() > 0,
        "commissions loaded"
    );
    assert!(s.get_transaction("X-HUGE28").unwrap().is_none());
}

#[test]
fn exit_status_three_is_documented_and_master_data_alone_imports() {
    let env = Env::new();
    let help = text(&env.run(&["import", "--help"]));
    assert!(help.contains("3 imported with rejections"), "{help}");
    assert!(
        help.contains("--score") && help.contains("--replace"),
        "{help}"
    );

    let data = env.path("master");
    small("sample-program", &data, 10);
    for f in [
        "registrations.jsonl",
        "transactions.jsonl",
        "commissions.jsonl",
    ] {
        std::fs::remove_file(data.join(f)).unwrap();
    }
    let o = env.import(&data, &[]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("no deals were imported"), "{out}");
    let s = Store::open(&env.db).unwrap();
    assert!(s.count_rows("partners").unwrap() > 0);
    assert!(s.plan().unwrap().is_some());

    // A clean import exits 0.
    let env = Env::new();
    let data = env.path("clean");
    small("sample-program", &data, 50);
    let o = env.import(&data, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

#[test]
fn another_program_is_refused_unless_replace_and_the_old_cache_is_kept() {
    let env = Env::new();
    let v1 = env.path("v1");
    let v2 = env.path("v2");
    small("sample-program", &v1, 40);
    small("sample-program-v2", &v2, 40);
    // Make the second one another program in another currency.
    let p = v2.join("program.json");
    let mut prog: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    prog["program_id"] = "other-9".into();
    prog["name"] = "Other program".into();
    std::fs::write(&p, prog.to_string()).unwrap();
    assert_eq!(env.import(&v1, &[]).status.code(), Some(0));
    let before = Store::open(&env.db)
        .unwrap()
        .count_rows("transactions")
        .unwrap();
    let o = env.import(&v2, &[]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("dev-7") && out.contains("other-9"), "{out}");
    let s = Store::open(&env.db).unwrap();
    assert_eq!(s.program().unwrap().unwrap().program_id, "dev-7");
    assert_eq!(
        s.count_rows("transactions").unwrap(),
        before,
        "nothing merged"
    );
    drop(s);
    let o = env.import(&v2, &["--replace"]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    let s = Store::open(&env.db).unwrap();
    assert_eq!(s.program().unwrap().unwrap().program_id, "other-9");
    let aside: Vec<_> = std::fs::read_dir(env.dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("cache.db.replaced-")
        })
        .collect();
    assert!(!aside.is_empty(), "the old cache is kept");
}

#[test]
fn a_demo_cache_and_a_cache_bound_to_another_prm_never_sync() {
    let env = Env::new();
    let demo_db = env.path("demo.db");
    let o = env.run(&[
        "demo",
        "--no-tui",
        "--partners",
        "20",
        "--transactions",
        "300",
        "--demo-db",
        demo_db.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(Store::open(&demo_db).unwrap().is_demo().unwrap());
    let o = Command::new(env!("CARGO_BIN_EXE_tierdesk"))
        .arg("--db")
        .arg(&demo_db)
        .args([
            "sync",
            "--once",
            "--prm",
            "http://127.0.0.1:9",
            "--flavor",
            "partnerstack",
        ])
        .env("TIERDESK_CONFIG", env.path("no-config.toml"))
        .env("TIERDESK_PRM_TOKEN", "x")
        .env("HOME", env.dir.path())
        .output()
        .unwrap();
    let out = text(&o);
    assert!(!o.status.success(), "{out}");
    assert!(
        out.contains("demo cache") && out.contains("127.0.0.1:9"),
        "{out}"
    );

    // A cache bound to one PRM refuses another, naming both.
    let s = Store::open(&env.db).unwrap();
    s.bind_prm(&tierdesk::store::binding::PrmIdentity::new(
        "partnerstack",
        "http://127.0.0.1:7",
        "tierdesk-demo",
    ))
    .unwrap();
    drop(s);
    let o = env.run(&[
        "sync",
        "--once",
        "--prm",
        "http://127.0.0.1:8",
        "--flavor",
        "partnerstack",
    ]);
    let out = text(&o);
    assert!(!o.status.success(), "{out}");
    assert!(
        out.contains("127.0.0.1:7") && out.contains("127.0.0.1:8"),
        "{out}"
    );
}

/// The pid of a process that has ended.
fn dead_pid() -> u32 {
    let mut c = Command::new("true").spawn().unwrap();
    let pid = c.id();
    c.wait().unwrap();
    pid
}

#[test]
fn an_interrupted_import_is_seen_by_doctor_and_score_and_finished_by_the_next_import() {
    let env = Env::new();
    let data = env.path("data");
    small("sample-program", &data, 60);
    assert_eq!(env.import(&data, &[]).status.code(), Some(0));
    // As a kill -9 mid-import leaves it: the marker of a process that is gone.
    let conn = rusqlite::Connection::open(&env.db).unwrap();
    conn.execute(
        "INSERT INTO work_runs (kind, source, pid, host, started_at) VALUES ('import', ?1, ?2, '', '2026-12-01T10:00:00Z')",
        rusqlite::params![data.to_str().unwrap(), dead_pid()],
    )
    .unwrap();
    drop(conn);
    let doctor = text(&env.run(&["doctor"]));
    assert!(
        doctor.contains("interrupted") && doctor.contains("tierdesk import"),
        "{doctor}"
    );
    assert!(!doctor.contains("integrity     ok"), "{doctor}");
    let o = env.run(&["score"]);
    let out = text(&o);
    assert!(!o.status.success(), "{out}");
    assert!(
        out.contains("incomplete") && out.contains("tierdesk import"),
        "{out}"
    );
    // The next import finishes it.
    assert_eq!(env.import(&data, &[]).status.code(), Some(0));
    assert!(text(&env.run(&["doctor"])).contains("integrity     ok"));
    assert!(env.run(&["score"]).status.success());
    assert!(Store::open(&env.db)
        .unwrap()
        .incomplete_work()
        .unwrap()
        .is_empty());
}

#[test]
fn a_second_import_while_one_runs_says_so() {
    let env = Env::new();
    let data = env.path("data");
    small("sample-program", &data, 20);
    assert_eq!(env.import(&data, &[]).status.code(), Some(0));
    let mut sleeper = Command::new("sleep").arg("30").spawn().unwrap();
    let conn = rusqlite::Connection::open(&env.db).unwrap();
    conn.execute(
        "INSERT INTO work_runs (kind, source, pid, host, started_at) VALUES ('import', '/elsewhere', ?1, '', '2026-12-01T10:00:00Z')",
        [sleeper.id()],
    )
    .unwrap();
    drop(conn);
    let o = env.import(&data, &[]);
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("another import is running"), "{out}");
    assert!(!out.contains("UNIQUE"), "{out}");
}

#[test]
fn import_offers_scoring_and_scores_with_the_flag() {
    let env = Env::new();
    let data = env.path("data");
    small("sample-program", &data, 80);
    let o = env.import(&data, &[]);
    let out = text(&o);
    assert!(
        out.contains("not scored yet") && out.contains("tierdesk score"),
        "{out}"
    );
    let s = Store::open(&env.db).unwrap();
    let n = s.count_rows("transactions").unwrap() as u64;
    assert_eq!(
        s.unscored_count(tierdesk::detect::DETECTOR_VERSION)
            .unwrap(),
        n
    );
    drop(s);
    let o = env.import(&data, &["--score"]);
    assert!(text(&o).contains("scored:"), "{}", text(&o));
    let s = Store::open(&env.db).unwrap();
    assert_eq!(
        s.unscored_count(tierdesk::detect::DETECTOR_VERSION)
            .unwrap(),
        0
    );
    drop(s);
    // A changed deal makes its flag stale, and the import says so.
    let p = data.join("transactions.jsonl");
    let t = std::fs::read_to_string(&p).unwrap();
    let mut lines: Vec<String> = t.lines().map(String::from).collect();
    let mut v: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    v["customer_name"] = "Renamed customer".into();
    lines[0] = v.to_string();
    std::fs::write(&p, lines.join("\n") + "\n").unwrap();
    let out = text(&env.import(&data, &[]));
    assert!(
        out.contains("1 transaction is not scored yet") && out.contains("stale"),
        "{out}"
    );
}

#[cfg(unix)]
#[test]
fn the_cache_its_wal_and_the_log_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    let data = env.path("data");
    small("sample-program", &data, 20);
    // The log goes to the data directory (XDG_DATA_HOME).
    assert_eq!(env.import(&data, &[]).status.code(), Some(0));
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&env.db), 0o600);
    let s = Store::open(&env.db).unwrap();
    let _ = s.count_rows("transactions").unwrap();
    let wal = PathBuf::from(format!("{}-wal", env.db.display()));
    if wal.exists() {
        assert_eq!(mode(&wal), 0o600);
    }
    drop(s);
    let logs: Vec<PathBuf> = walk(env.dir.path())
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n == "tierdesk.log"))
        .collect();
    assert!(!logs.is_empty(), "a log was written");
    for l in logs {
        assert_eq!(mode(&l), 0o600, "{}", l.display());
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn tax_ids_are_masked_in_import_errors() {
    let env = Env::new();
    let data = env.path("data");
    small("sample-program", &data, 10);
    let p = data.join("partners.jsonl");
    let t = std::fs::read_to_string(&p).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(t.lines().next().unwrap()).unwrap();
    v["partner_id"] = "ZZ-NEW".into();
    v["parent_partner_id"] = serde_json::Value::Null;
    v["tax_id"] = serde_json::json!(987654321);
    append(&data, "partners.jsonl", &[v.to_string()]);
    let out = text(&env.import(&data, &[]));
    assert!(out.contains("tax_id"), "{out}");
    assert!(!out.contains("987654321"), "{out}");
    assert!(out.contains("4321"), "{out}");
}

#[test]
fn timestamps_are_normalised_and_non_utf8_lines_keep_their_bytes() {
    let env = Env::new();
    let data = env.path("data");
    small("sample-program", &data, 20);
    let base = first_tx(&data);
    use serde_json::json;
    let l1 = variant(
        &base,
        "X-SPACE",
        &[("submitted_at", json!("2026-09-12 08:31:40Z"))],
    );
    let l2 = variant(
        &base,
        "X-FRAC",
        &[("submitted_at", json!("2026-09-12T10:31:40.987+02:00"))],
    );
    let l3 = variant(
        &base,
        "X-NOZONE",
        &[("submitted_at", json!("2026-09-12T08:31:40"))],
    );
    append(&data, "transactions.jsonl", &[l1, l2, l3]);
    let mut bytes = std::fs::read(data.join("transactions.jsonl")).unwrap();
    let bad: Vec<u8> = b"{\"transaction_id\":\"X-\xff\xfe\"}".to_vec();
    bytes.extend_from_slice(&bad);
    bytes.push(b'\n');
    std::fs::write(data.join("transactions.jsonl"), bytes).unwrap();
    let o = env.import(&data, &[]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(3), "{out}");
    assert!(out.contains("submitted_at"), "{out}");
    let s = Store::open(&env.db).unwrap();
    for id in ["X-SPACE", "X-FRAC"] {
        let t = s.get_transaction(id).unwrap().unwrap();
        assert_eq!(
            tierdesk::store::dataset::format_timestamp(&t.submitted_at),
            "2026-09-12T08:31:40Z"
        );
    }
    assert!(s.get_transaction("X-NOZONE").unwrap().is_none());
    let conn = rusqlite::Connection::open(&env.db).unwrap();
    let (stored, raw): (String, Vec<u8>) = conn
        .query_row(
            "SELECT submitted_at, (SELECT raw_bytes FROM quarantine_raw)
             FROM transactions WHERE transaction_id = 'X-SPACE'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(stored, "2026-09-12T08:31:40Z");
    assert_eq!(raw, bad);
}

#[test]
fn an_unreadable_folder_is_reported_as_unreadable() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    let data = env.path("data");
    small("sample-program", &data, 5);
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o000)).unwrap();
    if std::fs::read_dir(&data).is_ok() {
        // Running as root: permissions do not stop reading. Nothing to check here.
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
        eprintln!("skipped: this user reads folders whatever their mode");
        return;
    }
    let out = text(&env.import(&data, &[]));
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert!(out.contains("cannot read"), "{out}");
    assert!(!out.contains("missing required"), "{out}");
}

#[test]
fn the_sample_config_parses_with_high_value_partners_uncommented() {
    let sample = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/config.sample.toml"),
    )
    .unwrap();
    let uncommented = sample.replace("# high_value_partners", "high_value_partners");
    assert_ne!(uncommented, sample);
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("config.toml");
    std::fs::write(&p, uncommented).unwrap();
    let c = tierdesk::config::Config::load(&p).unwrap();
    assert_eq!(c.high_value_partners, vec!["D0001".to_string()]);
    assert!(!c.signoff_thresholds.is_empty());
}

/// A repeated transaction id on the bulk path names the line the id was first given on.
#[test]
fn a_repeated_id_on_the_bulk_path_names_its_first_line() {
    let dir = tempfile::tempdir().unwrap();
    let ds = dir.path().join("ds");
    small("sample-program", &ds, 400);
    let tx = ds.join("transactions.jsonl");
    let text = std::fs::read_to_string(&tx).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    // Repeat the third line at the end.
    let mut out = text.clone();
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(lines[2]);
    out.push('\n');
    std::fs::write(&tx, out).unwrap();
    let id = serde_json::from_str::<serde_json::Value>(lines[2]).unwrap()["transaction_id"]
        .as_str()
        .unwrap()
        .to_string();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_tierdesk"))
        .arg("--db")
        .arg(dir.path().join("c.db"))
        .arg("import")
        .arg(&ds)
        .env("HOME", dir.path())
        .env("XDG_DATA_HOME", dir.path().join("data"))
        .env("XDG_CONFIG_HOME", dir.path().join("cfg"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "imported with rejections");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let want = format!(
        "transactions.jsonl:{}: transaction_id: duplicate transaction_id {id:?} (first given on line 3)",
        lines.len() + 1
    );
    assert!(all.contains(&want), "{want}\nnot in:\n{all}");
}

/// The sample's PRM, receiver and model sections, uncommented, are a valid config: the
/// mapping, the roles, the receiver and the model reach the settings.
#[test]
fn the_sample_prm_listen_and_assistant_sections_parse_uncommented() {
    let sample = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/config.sample.toml"),
    )
    .unwrap();
    let start = sample.find("# [prm]\n").unwrap();
    let end = sample[start..].find("timeout_secs = 20").unwrap() + start;
    let end = end + sample[end..].find('\n').unwrap();
    let mut text = String::new();
    for line in sample[start..end].lines() {
        let l = line.strip_prefix("# ").unwrap_or(line);
        let setting = l.starts_with('[')
            || l.split_once(" = ").is_some_and(|(k, _)| {
                k.trim_matches('"')
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_')
            });
        if setting {
            text.push_str(l);
            text.push('\n');
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("config.toml");
    std::fs::write(&p, &text).unwrap();
    let c = tierdesk::config::Config::load(&p).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let prm = c.prm.unwrap();
    assert_eq!(prm.tenant.as_deref(), Some("4711"));
    assert_eq!(prm.full_pass_hours, Some(24));
    let m = prm.mapping.clone().unwrap();
    assert_eq!(m.commission_object, "Commission__co");
    assert_eq!(m.sale_object, "Sale", "unset names keep their defaults");
    assert_eq!(prm.roles["offer_override"], "override");
    assert_eq!(prm.tasks.clone().unwrap().alert_id, "tdAlertId__cf");
    let cc = tierdesk::sync::adapter::ConnectorConfig::from_config(&prm).unwrap();
    assert_eq!(
        cc.roles.role(Some("offer_override")),
        tierdesk::model::CommissionRole::Override
    );
    assert_eq!(c.listen.poll_secs, Some(300));
    assert_eq!(c.listen.providers["partnerstack"], "hmac:X-Signature");
    assert_eq!(c.assistant.unwrap().model, "qwen2.5-7b-instruct");
    // A typo in the mapping is an error naming it, not a silent default.
    std::fs::write(&p, text.replace("sale_amount =", "sale_amont =")).unwrap();
    let e = format!("{:#}", tierdesk::config::Config::load(&p).unwrap_err());
    assert!(e.contains("sale_amont"), "{e}");
}
