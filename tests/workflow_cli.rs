//! The workflow's command-line contracts, end to end on a real cache file:
//! decide / signoff / undo (refusals exit non-zero with the reason), queue jsonl,
//! audit verify (and tamper detection), audit export, journal csv.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tierdesk::store::workflow::test_support as ts;
use tierdesk::store::Store;

struct Env {
    dir: tempfile::TempDir,
    db: PathBuf,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("cache.db");
        let s = Store::open(&db).unwrap();
        ts::insert_program(&s, "USD", 1).unwrap();
        ts::insert_partner(&s, "P1", false).unwrap();
        ts::insert_partner(&s, "P2", false).unwrap();
        for (t, p, cur, prop, day) in [
            ("TX-1", "P1", "100.00", "40.00", "2026-08-03"),
            ("TX-2", "P2", "9000.00", "0.00", "2026-08-04"),
            ("TX-3", "P1", "250.00", "250.00", "2026-09-10"),
            ("TX-4", "P2", "80.00", "95.50", "2026-04-10"),
        ] {
            let h = format!("h-{t}");
            ts::insert_transaction(&s, t, p, "5000.00", "USD", day, &h).unwrap();
            ts::insert_flag(
                &s,
                t,
                p,
                0.5 + t.len() as f64 / 100.0,
                &["discount_abuse"],
                &h,
            )
            .unwrap();
            let delta = prop.parse::<rust_decimal::Decimal>().unwrap()
                - cur.parse::<rust_decimal::Decimal>().unwrap();
            ts::insert_proposal(&s, t, "adjust", cur, prop, &delta.to_string(), "USD").unwrap();
        }
        Env { dir, db }
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
            .env("TIERDESK_CONFIG", home.join("no-config.toml"))
            .env_remove("TIERDESK_USER")
            .env_remove("TIERDESK_ROLE")
            .env_remove("TIERDESK_DB")
            .output()
            .unwrap()
    }

    fn store(&self) -> Store {
        Store::open(Path::new(&self.db)).unwrap()
    }
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn decide_signoff_undo_queue_audit_journal() {
    let e = Env::new();
    // small approval: straight to the outbox
    let o = e.run(
        "ana",
        "analyst",
        &["decide", "TX-1", "--approve", "--reason", "duplicate"],
    );
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(out(&o).trim(), "TX-1: queued_for_push");
    // big one: needs a manager who is not the proposer
    let o = e.run(
        "ana",
        "analyst",
        &["decide", "TX-2", "--approve", "--reason", "refund"],
    );
    assert_eq!(out(&o).trim(), "TX-2: awaiting_signoff");
    let o = e.run(
        "ana",
        "manager",
        &["signoff", "TX-2", "--approve", "--reason", "ok"],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(err(&o).contains("four-eyes"), "{}", err(&o));
    let o = e.run("bob", "analyst", &["signoff", "TX-2", "--approve"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(err(&o).contains("manager"), "{}", err(&o));
    let o = e.run(
        "max",
        "manager",
        &["signoff", "TX-2", "--approve", "--reason", "checked"],
    );
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(out(&o).trim(), "TX-2: queued_for_push");
    // override needs a reason; illegal transitions refused
    let o = e.run("ana", "analyst", &["decide", "TX-3", "--override", "300"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(err(&o).contains("reason"), "{}", err(&o));
    let o = e.run(
        "ana",
        "analyst",
        &[
            "decide",
            "TX-3",
            "--override",
            "300",
            "--reason",
            "rate card",
        ],
    );
    assert!(o.status.success(), "{}", err(&o));
    let o = e.run(
        "ana",
        "analyst",
        &["decide", "TX-1", "--dismiss", "--reason", "x"],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(err(&o).contains("queued_for_push"), "{}", err(&o));
    let o = e.run(
        "ana",
        "analyst",
        &["decide", "TX-4", "--override", "abc", "--reason", "x"],
    );
    assert_ne!(o.status.code(), Some(0));
    // undo
    let o = e.run("ana", "analyst", &["undo", "TX-3"]);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(out(&o).trim(), "TX-3: in_review");

    // queue jsonl
    let o = e.run("ana", "analyst", &["queue", "--format", "jsonl"]);
    assert!(o.status.success(), "{}", err(&o));
    let lines: Vec<serde_json::Value> = out(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    for k in [
        "transaction_id",
        "partner_id",
        "score",
        "kinds",
        "amount",
        "at_stake",
        "state",
        "proposed_amount",
    ] {
        assert!(lines[0].get(k).is_some(), "missing {k}");
    }
    let scores: Vec<f64> = lines.iter().map(|l| l["score"].as_f64().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]));
    let st = |id: &str| {
        lines.iter().find(|l| l["transaction_id"] == id).unwrap()["state"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(st("TX-1"), "queued_for_push");
    assert_eq!(st("TX-3"), "in_review");
    assert_eq!(st("TX-4"), "flagged");
    let o = e.run(
        "ana",
        "analyst",
        &[
            "queue",
            "--format",
            "jsonl",
            "--state",
            "queued_for_push",
            "--limit",
            "1",
        ],
    );
    assert_eq!(out(&o).lines().count(), 1);
    let o = e.run("ana", "analyst", &["queue", "--format", "table"]);
    assert!(out(&o).contains("TX-2"));
    let o = e.run(
        "ana",
        "analyst",
        &["queue", "--format", "table", "--state", "bogus"],
    );
    assert_ne!(o.status.code(), Some(0));

    // journal: Q3 has TX-1 (-60) and TX-2 (-9000): balanced (Q3 kept open in the config:
    // by default a quarter that ended before the decision is closed)
    std::fs::write(
        e.dir.path().join("no-config.toml"),
        "[journal]\nclosed_through = \"2026-Q2\"\n",
    )
    .unwrap();
    let o = e.run(
        "ana",
        "analyst",
        &["journal", "--period", "2026-Q3", "--format", "csv"],
    );
    assert!(o.status.success(), "{}", err(&o));
    let mut rdr = csv::Reader::from_reader(o.stdout.as_slice());
    let h = rdr.headers().unwrap().clone();
    assert_eq!(&h[0], "External ID");
    let (di, ci) = (
        h.iter().position(|x| x == "Debit").unwrap(),
        h.iter().position(|x| x == "Credit").unwrap(),
    );
    let mut rows = 0;
    let (mut d, mut c) = (rust_decimal::Decimal::ZERO, rust_decimal::Decimal::ZERO);
    for r in rdr.records() {
        let r = r.unwrap();
        rows += 1;
        d += r[di].parse::<rust_decimal::Decimal>().unwrap_or_default();
        c += r[ci].parse::<rust_decimal::Decimal>().unwrap_or_default();
    }
    assert_eq!(rows, 4);
    assert_eq!(d, c);
    assert_eq!(d.to_string(), "9060.00");

    // audit verify / export
    let o = e.run("ana", "analyst", &["audit", "verify"]);
    assert!(o.status.success(), "{}", err(&o));
    let o = e.run(
        "ana",
        "analyst",
        &[
            "audit",
            "export",
            "--format",
            "jsonl",
            "--transaction",
            "TX-2",
        ],
    );
    let acts: Vec<String> = out(&o)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["action"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        acts,
        [
            "start_review",
            "approve",
            "request_signoff",
            "sign_off",
            "queue_for_push"
        ]
    );
    let o = e.run("ana", "analyst", &["audit", "export", "--format", "csv"]);
    let n = csv::Reader::from_reader(o.stdout.as_slice())
        .records()
        .count();
    assert!(n >= 10, "{n}");

    // tamper: edit one row
    ts::exec(
        &e.store(),
        "UPDATE audit_log SET actor = 'mallory' WHERE seq = 3",
    )
    .unwrap();
    let o = e.run("ana", "analyst", &["audit", "verify"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(err(&o).contains("entry 3"), "{}", err(&o));
}

/// The workflow on a real imported program: batch approve, four-eyes sign-off, a PRM
/// change lapsing a sign-off (through the real upsert), journal balanced per period.
#[test]
fn sample_program_end_to_end() {
    use rust_decimal::Decimal;
    use std::collections::BTreeMap;
    use tierdesk::config::Role;
    use tierdesk::workflow::{self, Actor, CaseState, Command, Policy, SignoffCommand};

    let dir = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/sample-program"
    ));
    let loaded = tierdesk::import::load_dataset(dir).unwrap();
    let ds = loaded.dataset;
    let mut s = Store::open_in_memory().unwrap();
    s.upsert_program(&ds.program).unwrap();
    s.upsert_partners(&ds.partners).unwrap();
    s.upsert_transactions(&ds.transactions).unwrap();
    s.upsert_commissions(&ds.commissions).unwrap();

    // A generic pick: the first 40 sales (by id) submitted in the review window.
    let mut pick: Vec<&tierdesk::model::Transaction> = ds
        .transactions
        .iter()
        .filter(|t| ds.program.review_window.contains(&t.submitted_at))
        .collect();
    pick.sort_by(|a, b| a.transaction_id.cmp(&b.transaction_id));
    pick.truncate(40);
    assert_eq!(pick.len(), 40);
    let mut current: BTreeMap<String, Decimal> = BTreeMap::new();
    for c in &ds.commissions {
        *current.entry(c.transaction_id.clone()).or_default() += c.amount;
    }
    let mut deltas: BTreeMap<String, Decimal> = BTreeMap::new();
    for t in &pick {
        let h = s.transaction_row_hash(&t.transaction_id).unwrap().unwrap();
        ts::insert_flag(
            &s,
            &t.transaction_id,
            &t.partner_id,
            0.9,
            &["discount_abuse"],
            &h,
        )
        .unwrap();
        let cur = current.get(&t.transaction_id).copied().unwrap_or_default();
        let prop = tierdesk::money::round_cents(cur * Decimal::new(8, 1));
        deltas.insert(t.transaction_id.clone(), prop - cur);
        ts::insert_proposal(
            &s,
            &t.transaction_id,
            "adjust",
            &cur.to_string(),
            &prop.to_string(),
            &(prop - cur).to_string(),
            &t.currency,
        )
        .unwrap();
    }
    let policy = Policy {
        thresholds: BTreeMap::new(),
        default_threshold: Decimal::from(100),
        high_value_partners: Default::default(),
    };
    let ana = Actor::new("ana", Role::Analyst);
    let max = Actor::new("max", Role::Manager);
    let ids: Vec<String> = pick.iter().map(|t| t.transaction_id.clone()).collect();
    let states =
        workflow::decide_batch(&mut s, &policy, &ana, &ids, Command::Approve, "cut to plan")
            .unwrap();
    let awaiting: Vec<String> = ids
        .iter()
        .zip(&states)
        .filter(|(_, st)| **st == CaseState::AwaitingSignoff)
        .map(|(id, _)| id.clone())
        .collect();
    for (id, st) in ids.iter().zip(&states) {
        let needs = deltas[id].abs() >= Decimal::from(100);
        assert_eq!(*st == CaseState::AwaitingSignoff, needs, "{id}");
    }
    assert!(
        !awaiting.is_empty() && awaiting.len() < ids.len(),
        "{} awaiting",
        awaiting.len()
    );
    assert!(workflow::signoff_batch(
        &mut s,
        &policy,
        &ana,
        &awaiting,
        SignoffCommand::Approve,
        ""
    )
    .is_err());
    workflow::signoff_batch(
        &mut s,
        &policy,
        &max,
        &awaiting,
        SignoffCommand::Approve,
        "ok",
    )
    .unwrap();
    assert_eq!(workflow::pending_outbox(&s, 1000).unwrap().len(), 40);

    // The PRM changes one signed-off transaction: the real upsert bumps row_hash.
    let changed = awaiting[0].clone();
    let mut t = ds
        .transactions
        .iter()
        .find(|t| t.transaction_id == changed)
        .unwrap()
        .clone();
    t.quantity += 1;
    t.amount += t.unit_net_price;
    s.upsert_transactions(std::slice::from_ref(&t)).unwrap();
    let lapsed =
        workflow::lapse_changed_signoffs(&mut s, &Actor::new("sync", Role::Manager)).unwrap();
    assert_eq!(lapsed, vec![changed.clone()]);
    assert_eq!(
        workflow::case(&s, &changed).unwrap().unwrap().state,
        CaseState::InReview
    );
    assert_eq!(workflow::pending_outbox(&s, 1000).unwrap().len(), 39);

    // Journal: every period balances and covers exactly the standing adjustments.
    let fy = ds.program.fiscal_year_start_month;
    let mut by_period: BTreeMap<String, Decimal> = BTreeMap::new();
    for t in &pick {
        if t.transaction_id != changed {
            *by_period
                .entry(tierdesk::model::fiscal_quarter(t.closed_on, fy))
                .or_default() += deltas[&t.transaction_id].abs();
        }
    }
    assert!(!by_period.is_empty());
    // Every quarter open, so each adjustment is booked in its own quarter (the default
    // books adjustments of quarters that ended before the decision in the current one).
    let open = tierdesk::config::JournalConfig {
        closed_through: Some("2000-Q1".into()),
        ..Default::default()
    };
    for (period, expected) in by_period {
        let lines = workflow::journal_with(&s, &period, &open).unwrap();
        let d: Decimal = lines.iter().filter_map(|l| l.debit).sum();
        let c: Decimal = lines.iter().filter_map(|l| l.credit).sum();
        assert_eq!(d, c, "{period}");
        assert_eq!(d, expected, "{period}");
        for l in &lines {
            let tx = l.line_memo.split(':').next().unwrap();
            assert!(deltas.contains_key(tx) && tx != changed, "{}", l.line_memo);
        }
    }
    assert!(workflow::verify_chain(&s).unwrap().is_ok());
}
