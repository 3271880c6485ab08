//! What a decision accepts and writes, through the real binary on a real cache file:
//! overrides bounded and exact at the edge, `--force` for one far beyond the deal,
//! four-eyes on normalised names, holds, the journal's accounts and closed periods,
//! period year ranges, and singular counts in messages.

use std::path::PathBuf;
use std::process::{Command, Output};

use tierdesk::store::workflow::test_support as ts;
use tierdesk::store::Store;

struct Env {
    dir: tempfile::TempDir,
    db: PathBuf,
}

impl Env {
    /// Deals of 5,000 with proposals: `TX-A` adjust 100 -> 40, `TX-B` adjust 9000 -> 0,
    /// `TX-H` hold 300 (proposed 0), closed in 2026-Q3.
    fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("cache.db");
        let s = Store::open(&db).unwrap();
        ts::insert_program(&s, "USD", 1).unwrap();
        ts::insert_partner(&s, "P1", false).unwrap();
        for (t, action, cur, prop) in [
            ("TX-A", "adjust", "100.00", "40.00"),
            ("TX-B", "adjust", "9000.00", "0.00"),
            ("TX-H", "hold", "300.00", "0.00"),
        ] {
            let h = format!("h-{t}");
            ts::insert_transaction(&s, t, "P1", "5000.00", "USD", "2026-08-03", &h).unwrap();
            ts::insert_flag(&s, t, "P1", 0.8, &["registration_mismatch"], &h).unwrap();
            let delta = prop.parse::<rust_decimal::Decimal>().unwrap()
                - cur.parse::<rust_decimal::Decimal>().unwrap();
            ts::insert_proposal(&s, t, action, cur, prop, &delta.to_string(), "USD").unwrap();
        }
        Env { dir, db }
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("config.toml")
    }

    fn run(&self, user: &str, role: &str, args: &[&str]) -> Output {
        let home = self.dir.path();
        Command::new(env!("CARGO_BIN_EXE_tierdesk"))
            .args([
                "--db",
                self.db.to_str().unwrap(),
                "--user",
                user,
                "--role",
                role,
            ])
            .args(args)
            .env("HOME", home)
            .env("XDG_DATA_HOME", home.join("data"))
            .env("XDG_CONFIG_HOME", home.join("config"))
            .env("TIERDESK_CONFIG", self.config())
            .env_remove("TIERDESK_USER")
            .env_remove("TIERDESK_ROLE")
            .env_remove("TIERDESK_DB")
            .env_remove("TIERDESK_PRM_TOKEN")
            .output()
            .unwrap()
    }

    fn outbox_payloads(&self) -> Vec<serde_json::Value> {
        let s = Store::open(&self.db).unwrap();
        tierdesk::workflow::outbox_entries(&s)
            .unwrap()
            .into_iter()
            .map(|(o, _)| o.payload)
            .collect()
    }
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn overrides_are_bounded_exact_and_confirmed_when_far_beyond_the_deal() {
    let e = Env::new();
    let decide = |amount: &str, extra: &[&str]| {
        let mut a = vec!["decide", "TX-A", "--override", amount, "--reason", "r"];
        a.extend_from_slice(extra);
        e.run("ana", "analyst", &a)
    };
    for (amount, needle) in [
        ("12.345", "more decimals than USD allows"),
        ("9999999999999999999999999999", "beyond the largest amount"),
    ] {
        let o = decide(amount, &["--force"]);
        assert_eq!(o.status.code(), Some(1), "{amount}: {}", err(&o));
        assert!(err(&o).contains(needle), "{amount}: {}", err(&o));
    }
    // Far beyond the deal (5,000; 10x the commission is 1,000): refused, naming numbers.
    let o = decide("99999999999", &[]);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    let msg = err(&o);
    assert!(
        msg.contains("$99,999,999,999.00") && msg.contains("$5,000.00") && msg.contains("--force"),
        "{msg}"
    );
    assert!(e.outbox_payloads().is_empty());
    let o = e.run("ana", "analyst", &["queue", "--format", "jsonl"]);
    assert!(out(&o).contains("\"flagged\""));
    // Confirmed: accepted (and, being large, it needs a sign-off).
    let o = decide("99999999999", &["--force"]);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(out(&o).trim(), "TX-A: awaiting_signoff");
    // Within the deal: no confirmation needed.
    let o = e.run(
        "ana",
        "analyst",
        &["decide", "TX-B", "--override", "4999.99", "--reason", "r"],
    );
    assert!(o.status.success(), "{}", err(&o));
}

#[test]
fn four_eyes_refuses_the_proposer_under_another_spelling() {
    let e = Env::new();
    let o = e.run("Mia", "manager", &["decide", "TX-B", "--approve"]);
    assert_eq!(out(&o).trim(), "TX-B: awaiting_signoff", "{}", err(&o));
    for other in ["mia", "mia ", "MIA", "m\u{0456}a"] {
        let o = e.run(other, "manager", &["signoff", "TX-B", "--approve"]);
        assert_eq!(o.status.code(), Some(1), "{other:?}");
        assert!(err(&o).contains("four-eyes"), "{other:?}: {}", err(&o));
    }
    let o = e.run("max", "manager", &["signoff", "TX-B", "--approve"]);
    assert!(o.status.success(), "{}", err(&o));
}

#[test]
fn an_approved_hold_is_pushed_as_a_hold_and_books_no_reversal() {
    let e = Env::new();
    let o = e.run("ana", "analyst", &["decide", "TX-H", "--approve"]);
    assert_eq!(out(&o).trim(), "TX-H: queued_for_push", "{}", err(&o));
    let p = e.outbox_payloads();
    assert_eq!(p.len(), 1);
    assert_eq!(p[0]["prm_write"], "hold");
    assert_eq!(p[0]["held_amount"], "300.00");
    assert!(p[0].get("amount").is_none(), "{}", p[0]);
    for period in ["2026-Q3", "2026-Q4", "2027-Q1"] {
        let o = e.run("ana", "analyst", &["journal", "--period", period]);
        assert!(o.status.success(), "{}", err(&o));
        assert_eq!(out(&o).lines().count(), 1, "{period}: {}", out(&o));
    }
}

#[test]
fn journal_accounts_closed_periods_and_year_ranges() {
    let e = Env::new();
    let o = e.run("ana", "analyst", &["decide", "TX-A", "--approve"]);
    assert!(o.status.success(), "{}", err(&o));
    let o = e.run("ana", "analyst", &["journal", "--period", "300000-Q3"]);
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert!(err(&o).contains("out of range"), "{}", err(&o));
    assert!(!err(&o).contains("panicked"));
    std::fs::write(
        e.config(),
        "[journal]\nexpense_account = \"6100 Commission Expense\"\naccrued_account = \"2150 Accrued Commissions\"\nsubsidiary = \"Parent : US\"\ndepartment = \"Sales Ops\"\nclosed_through = \"2026-Q2\"\n",
    )
    .unwrap();
    let o = e.run("ana", "analyst", &["journal", "--period", "2026-Q3"]);
    assert!(o.status.success(), "{}", err(&o));
    let mut rdr = csv::Reader::from_reader(o.stdout.as_slice());
    let h = rdr.headers().unwrap().clone();
    let col = |name: &str| h.iter().position(|x| x == name).unwrap();
    let rows: Vec<csv::StringRecord> = rdr.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(&rows[0][col("Account")], "2150 Accrued Commissions");
    assert_eq!(&rows[0][col("Debit")], "60.00");
    assert_eq!(&rows[1][col("Account")], "6100 Commission Expense");
    assert_eq!(&rows[1][col("Subsidiary")], "Parent : US");
    assert_eq!(&rows[1][col("Department")], "Sales Ops");
    // 2026-Q3 closed as well: booked in 2026-Q4, naming the quarter it affects.
    std::fs::write(e.config(), "[journal]\nclosed_through = \"2026-Q3\"\n").unwrap();
    let o = e.run("ana", "analyst", &["journal", "--period", "2026-Q3"]);
    assert_eq!(out(&o).lines().count(), 1, "{}", out(&o));
    let o = e.run("ana", "analyst", &["journal", "--period", "2026-Q4"]);
    let text = out(&o);
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(
        text.contains("affects 2026-Q3, a closed period, booked in 2026-Q4"),
        "{text}"
    );
    assert!(text.contains("2026-12-31"), "{text}");
}

#[test]
fn counts_of_one_are_singular() {
    let e = Env::new();
    let o = e.run("ana", "analyst", &["decide", "TX-A", "--approve"]);
    assert!(o.status.success(), "{}", err(&o));
    let o = e.run("ana", "analyst", &["sync", "--offline"]);
    assert!(o.status.success(), "{}", err(&o));
    let text = out(&o);
    assert!(
        text.contains("1 decision waits in the outbox, 0 conflicts open, 0 items quarantined"),
        "{text}"
    );
    let o = e.run("ana", "analyst", &["audit", "verify"]);
    assert!(out(&o).contains("entries"), "{}", out(&o));
    assert!(!out(&o).contains("1 entries"), "{}", out(&o));
}
