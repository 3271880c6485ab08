//! Sync against the PRM simulator on 127.0.0.1 (both flavours): full pull compared with
//! the source, offline decisions pushed exactly once, faults, conflicts, lost responses,
//! the PRM's four-eyes refusal, and SIGKILL crash-restart of `tierdesk sync`.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, Instant};

use rust_decimal::Decimal;
use secrecy::SecretString;
use serde_json::json;
use tierdesk::model::Dataset;
use tierdesk::sim::data::Res;
use tierdesk::sim::{
    Faults, Flavor, LedgerEntry, SimOptions, SimState, DEFAULT_TENANT, DEFAULT_TOKEN,
};
use tierdesk::store::workflow::OutboxRow;
use tierdesk::store::Store;
use tierdesk::sync::{AnyPrm, Conn, SyncOptions, SyncReport};

struct Sim {
    url: String,
    state: SimState,
    _rt: tokio::runtime::Runtime,
}

fn start_sim(ds: &Dataset, flavor: Flavor, faults: Faults) -> Sim {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let state = SimState::new(
        ds,
        SimOptions {
            flavor,
            faults,
            seed: 11,
            ..SimOptions::default()
        },
    );
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(tierdesk::sim::serve(listener, state.clone()));
    Sim {
        url: format!("http://{addr}"),
        state,
        _rt: rt,
    }
}

fn prm(url: &str, flavor: Flavor) -> AnyPrm {
    AnyPrm::new(
        flavor,
        Conn::new(
            url,
            SecretString::from(DEFAULT_TOKEN.to_string()),
            DEFAULT_TENANT,
        )
        .unwrap(),
    )
}

fn fast_opts(page: usize) -> SyncOptions {
    SyncOptions {
        page_limit: page,
        max_attempts: 40,
        backoff_base: Duration::from_millis(1),
        backoff_cap: Duration::from_millis(10),
        retry_after_cap: Duration::from_secs(5),
        commit_rows: 2_000,
        ..SyncOptions::default()
    }
}

fn sync(url: &str, flavor: Flavor, store: Store, opts: &SyncOptions) -> (Store, SyncReport) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let p = prm(url, flavor);
    rt.block_on(tierdesk::sync::run_once(&p, store, opts, &mut |_| {}))
}

fn fixture() -> Dataset {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/sample-program");
    tierdesk::import::load_dataset(Path::new(dir))
        .unwrap()
        .dataset
}

fn small(seed: u64, partners: usize, txs: usize) -> Dataset {
    tierdesk::sim::synth::program(seed, partners, txs, true)
}

/// Writes an outbox entry through the workflow's own outbox API (as a decision would).
fn enqueue(
    store: &Store,
    decision_id: &str,
    transaction_id: &str,
    payload: &serde_json::Value,
    record_version: Option<i64>,
    audit_head: Option<&str>,
) {
    store
        .wf()
        .insert_outbox(&OutboxRow {
            id: 0,
            decision_id: decision_id.to_string(),
            idempotency_key: decision_id.to_string(),
            transaction_id: transaction_id.to_string(),
            payload: payload.to_string(),
            record_version,
            audit_head: audit_head.map(str::to_string),
            status: "pending".into(),
            attempts: 0,
            last_error: None,
            created_at: "2026-09-30T12:00:00Z".into(),
            pushed_at: None,
        })
        .unwrap();
}

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

/// Compares every pulled row with the source program.
fn assert_matches_source(db: &Path, ds: &Dataset) {
    let c = rusqlite::Connection::open(db).unwrap();
    let n: i64 = c
        .query_row("SELECT COUNT(*) FROM transactions", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n as usize, ds.transactions.len());
    let mut stmt = c
        .prepare(
            "SELECT transaction_id, kind, original_transaction_id, partner_id, registration_id,
                    customer_name, sku, quantity, unit_list_price, unit_net_price, amount, currency,
                    closed_on, submitted_at, invoice_number, notes FROM transactions",
        )
        .unwrap();
    let mut got: HashMap<String, Vec<String>> = HashMap::new();
    let rows = stmt
        .query_map([], |r| {
            let mut v = Vec::new();
            for i in 0..16 {
                let x: Option<String> = match r.get_ref(i)? {
                    rusqlite::types::ValueRef::Null => None,
                    rusqlite::types::ValueRef::Integer(n) => Some(n.to_string()),
                    rusqlite::types::ValueRef::Text(t) => Some(String::from_utf8_lossy(t).into()),
                    other => Some(format!("{other:?}")),
                };
                v.push(x.unwrap_or_default());
            }
            Ok(v)
        })
        .unwrap();
    for r in rows {
        let r = r.unwrap();
        got.insert(r[0].clone(), r);
    }
    for t in &ds.transactions {
        let r = got.get(&t.transaction_id).expect("transaction pulled");
        assert_eq!(r[1], t.kind.as_str());
        assert_eq!(r[2], t.original_transaction_id.clone().unwrap_or_default());
        assert_eq!(r[3], t.partner_id);
        assert_eq!(r[4], t.registration_id.clone().unwrap_or_default());
        assert_eq!(r[5], t.customer_name);
        assert_eq!(r[6], t.sku);
        assert_eq!(r[7], t.quantity.to_string());
        assert_eq!(dec(&r[8]), t.unit_list_price, "{}", t.transaction_id);
        assert_eq!(dec(&r[9]), t.unit_net_price, "{}", t.transaction_id);
        assert_eq!(dec(&r[10]), t.amount, "{}", t.transaction_id);
        assert_eq!(r[11], t.currency);
        assert_eq!(r[12], t.closed_on.to_string());
        assert_eq!(
            chrono::DateTime::parse_from_rfc3339(&r[13]).unwrap(),
            t.submitted_at
        );
        assert_eq!(r[14], t.invoice_number);
        assert_eq!(r[15], t.notes.clone().unwrap_or_default());
    }
    // Partners, registrations, commissions.
    let np: i64 = c
        .query_row("SELECT COUNT(*) FROM partners", [], |r| r.get(0))
        .unwrap();
    assert_eq!(np as usize, ds.partners.len());
    for p in &ds.partners {
        let (name, parent, joined, certs): (String, Option<String>, String, String) = c
            .query_row(
                "SELECT name, parent_partner_id, joined_on, certifications FROM partners WHERE partner_id = ?1",
                [&p.partner_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .unwrap();
        assert_eq!(name, p.name);
        assert_eq!(parent, p.parent_partner_id);
        assert_eq!(joined, p.joined_on.to_string());
        assert_eq!(certs, serde_json::to_string(&p.certifications).unwrap());
    }
    let nr: i64 = c
        .query_row("SELECT COUNT(*) FROM registrations", [], |r| r.get(0))
        .unwrap();
    assert_eq!(nr as usize, ds.registrations.len());
    let mut comm: HashMap<String, (String, String)> = HashMap::new();
    let mut stmt = c
        .prepare("SELECT commission_id, amount, role FROM commissions")
        .unwrap();
    for r in stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
    {
        let (id, a, role) = r.unwrap();
        comm.insert(id, (a, role));
    }
    assert_eq!(comm.len(), ds.commissions.len());
    for l in &ds.commissions {
        let (a, role) = &comm[&l.commission_id];
        assert_eq!(dec(a), l.amount);
        assert_eq!(role, l.role.as_str());
    }
}

fn count(db: &Path, sql: &str) -> i64 {
    let c = rusqlite::Connection::open(db).unwrap();
    c.query_row(sql, [], |r| r.get(0)).unwrap()
}

/// The first pull drops the secondary indexes of empty tables and rebuilds them: after
/// a run they are all there again and nothing is left to repair.
fn assert_indexes_back(db: &Path) {
    for idx in ["idx_tx_partner", "idx_tx_submitted", "idx_comm_tx"] {
        assert_eq!(
            count(
                db,
                &format!("SELECT COUNT(*) FROM sqlite_master WHERE type='index' AND name='{idx}'")
            ),
            1,
            "index {idx} present"
        );
    }
    assert_eq!(
        count(
            db,
            "SELECT COUNT(*) FROM sync_state WHERE key = 'import.dropped_indexes'"
        ),
        0
    );
}

fn pull_whole_program(flavor: Flavor, ds: Dataset) {
    let sim = start_sim(&ds, flavor, Faults::default());
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cache.db");
    let page = if flavor == Flavor::Partnerstack {
        250
    } else {
        1000
    };
    let (store, report) = sync(
        &sim.url,
        flavor,
        Store::open(&db).unwrap(),
        &fast_opts(page),
    );
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert!(report.online);
    assert!(sim.state.requests() > (ds.transactions.len() / page) as u64);
    assert_matches_source(&db, &ds);
    let flags = count(&db, "SELECT COUNT(*) FROM remote_flags");
    assert!(flags > 0, "PRM-side flags pulled");
    assert_indexes_back(&db);
    // Nothing new: an incremental pull fetches nothing.
    let (store, again) = sync(&sim.url, flavor, store, &fast_opts(page));
    assert_eq!(again.total_pulled(), 0, "{:?}", again.pulled);
    // A server-side change comes down with its new version.
    let id = ds.transactions[17].transaction_id.clone();
    assert!(sim
        .state
        .mutate_transaction(&id, Some("edited in the PRM".into()), None));
    let (store, inc) = sync(&sim.url, flavor, store, &fast_opts(page));
    assert_eq!(inc.total_pulled(), 1);
    assert_eq!(inc.changed_transactions, vec![id.clone()]);
    assert_eq!(store.sync_record_version(&id).unwrap(), Some(2));
    store.integrity_check().unwrap();
}

#[test]
fn partnerstack_pulls_whole_program_through_pagination() {
    pull_whole_program(Flavor::Partnerstack, fixture());
}

#[test]
fn impartner_pulls_whole_program_through_pagination() {
    // The sample program is pulled by the PartnerStack test; a generated one here keeps
    // the suite quick on two cores.
    pull_whole_program(Flavor::Impartner, small(31, 60, 3000));
}

/// Decisions of every kind on the first transactions.
fn enqueue_decisions(store: &Store, ds: &Dataset, n: usize, prefix: &str) -> Vec<String> {
    let mut keys = Vec::new();
    for (i, t) in ds.transactions.iter().take(n).enumerate() {
        let id = format!("{prefix}-{i:04}");
        let payload = match i % 4 {
            0 => json!({"action": "approve", "reason": "checked", "actor": "ana"}),
            1 => json!({"action": "request_documents", "reason": "need the PO", "actor": "ana"}),
            2 => json!({"action": "reverse", "reason": "duplicate submission", "actor": "ana"}),
            _ => json!({"action": "override", "amount": "12.34", "reason": "wrong rate",
                        "proposer": "ana", "approver": "ben"}),
        };
        enqueue(
            store,
            &id,
            &t.transaction_id,
            &payload,
            Some(1),
            Some("head"),
        );
        keys.push(id);
    }
    keys
}

fn assert_exactly_once(ledger: &[LedgerEntry], keys: &[String]) {
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for e in ledger {
        *seen.entry(e.idempotency_key.as_str()).or_default() += 1;
    }
    for k in keys {
        assert_eq!(seen.get(k.as_str()), Some(&1), "decision {k} applied once");
    }
    assert_eq!(ledger.len(), keys.len(), "nothing else applied");
}

fn offline_then_push(flavor: Flavor) {
    let ds = small(3, 20, 120);
    let sim = start_sim(&ds, flavor, Faults::default());
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cache.db");
    let (store, _) = sync(&sim.url, flavor, Store::open(&db).unwrap(), &fast_opts(50));
    let keys = enqueue_decisions(&store, &ds, 24, "d");
    // Offline: a port nothing listens on.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let mut opts = fast_opts(50);
    opts.max_attempts = 2;
    let (store, off) = sync(&dead_url, flavor, store, &opts);
    assert!(!off.online);
    assert_eq!(store.wf().pending_outbox(100).unwrap().len(), 24);
    assert_eq!(store.sync_state().unwrap()["status"], "offline");
    assert!(sim.state.ledger().is_empty());
    // Online: everything pushed once, in order.
    let (store, on) = sync(&sim.url, flavor, store, &fast_opts(50));
    assert!(on.online, "{:?}", on.errors);
    assert_eq!(on.pushed, 24);
    let ledger = sim.state.ledger();
    assert_exactly_once(&ledger, &keys);
    let order: Vec<&str> = ledger.iter().map(|e| e.idempotency_key.as_str()).collect();
    let want: Vec<&str> = keys.iter().map(String::as_str).collect();
    assert_eq!(order, want, "pushed in outbox order");
    assert_eq!(ledger[3].action, "adjust");
    assert_eq!(ledger[3].amount_cents, Some(1234));
    assert_eq!(ledger[2].reason.as_deref(), Some("duplicate submission"));
    // The adjustment reward was pulled back.
    assert!(
        count(
            &db,
            "SELECT COUNT(*) FROM commissions WHERE commission_id LIKE 'adj_%'"
        ) >= 1
    );
    // Syncing again applies nothing twice.
    let (store, _) = sync(&sim.url, flavor, store, &fast_opts(50));
    assert_exactly_once(&sim.state.ledger(), &keys);
    assert_eq!(store.sync_state().unwrap()["status"], "online");
}

#[test]
fn partnerstack_offline_decisions_pushed_exactly_once() {
    offline_then_push(Flavor::Partnerstack);
}

#[test]
fn impartner_offline_decisions_pushed_exactly_once() {
    offline_then_push(Flavor::Impartner);
}

fn faults_same_end_state(flavor: Flavor) {
    let ds = small(5, 30, 300);
    let clean = start_sim(&ds, flavor, Faults::default());
    let faulty = start_sim(
        &ds,
        flavor,
        Faults::parse("5xx=0.15,reset=0.1,truncate=0.1,malformed=0.1,dup=0.3,429=0.15,lost=0.3")
            .unwrap(),
    );
    let dir = tempfile::tempdir().unwrap();
    let mut digests = Vec::new();
    for (name, sim) in [("clean", &clean), ("faulty", &faulty)] {
        let db = dir.path().join(format!("{name}.db"));
        let store = Store::open(&db).unwrap();
        let keys = enqueue_decisions(&store, &ds, 16, "same");
        let (store, report) = sync(&sim.url, flavor, store, &fast_opts(40));
        assert!(report.errors.is_empty(), "{name}: {:?}", report.errors);
        if name == "faulty" {
            assert!(
                report.retries > 5,
                "faults were injected: {}",
                report.retries
            );
        }
        assert_exactly_once(&sim.state.ledger(), &keys);
        store.integrity_check().unwrap();
        let mut d = store.sync_digest().unwrap();
        d.remove("outbox"); // decision ids differ per run (uuids)
        digests.push(d);
        assert_eq!(
            count(&db, "SELECT COUNT(*) FROM outbox WHERE status = 'pushed'"),
            16
        );
    }
    assert_eq!(digests[0], digests[1]);
}

#[test]
fn partnerstack_faults_reach_the_same_end_state() {
    faults_same_end_state(Flavor::Partnerstack);
}

#[test]
fn impartner_faults_reach_the_same_end_state() {
    faults_same_end_state(Flavor::Impartner);
}

#[test]
fn server_side_change_becomes_a_conflict_not_an_overwrite() {
    for flavor in [Flavor::Partnerstack, Flavor::Impartner] {
        let ds = small(8, 10, 40);
        let sim = start_sim(&ds, flavor, Faults::default());
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("cache.db");
        let (store, _) = sync(&sim.url, flavor, Store::open(&db).unwrap(), &fast_opts(100));
        let t = &ds.transactions[5];
        let v = store.sync_record_version(&t.transaction_id).unwrap();
        enqueue(
            &store,
            "dec-conflict",
            &t.transaction_id,
            &json!({"action": "override", "amount": "1.00", "reason": "rate", "proposer": "a", "approver": "b",
                        "seen": store.sync_transaction_snapshot(&t.transaction_id).unwrap()}),
            v,
            None,
        );
        // Someone edits the record in the PRM after the reviewer decided.
        assert!(sim
            .state
            .mutate_transaction(&t.transaction_id, None, Some(dec("999.99"))));
        let (store, report) = sync(&sim.url, flavor, store, &fast_opts(100));
        assert_eq!(report.conflicts, 1);
        assert!(sim.state.ledger().is_empty(), "not applied on the PRM");
        let conflicts = store.conflicts().unwrap();
        assert_eq!(conflicts.len(), 1);
        let c = &conflicts[0];
        assert_eq!(c.decision_id, "dec-conflict");
        let seen: serde_json::Value = serde_json::from_str(&c.seen).unwrap();
        let decided: serde_json::Value = serde_json::from_str(&c.decided).unwrap();
        let remote: serde_json::Value = serde_json::from_str(&c.remote).unwrap();
        assert_eq!(seen["record_version"], 1);
        assert_eq!(decided["amount"], "1.00");
        let rv = remote
            .get("version")
            .or_else(|| remote.get("recordVersion"));
        assert_eq!(rv, Some(&json!(2)), "{remote}");
        let status: String = rusqlite::Connection::open(&db)
            .unwrap()
            .query_row(
                "SELECT status FROM outbox WHERE decision_id='dec-conflict'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(status, "conflict");
        // The new PRM amount is pulled; the local decision did not overwrite it.
        assert_eq!(
            store.sync_record_version(&t.transaction_id).unwrap(),
            Some(2)
        );
    }
}

#[test]
fn lost_responses_never_apply_twice() {
    let ds = small(9, 10, 300);
    let sim = start_sim(&ds, Flavor::Partnerstack, Faults::default());
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cache.db");
    let (store, _) = sync(
        &sim.url,
        Flavor::Partnerstack,
        Store::open(&db).unwrap(),
        &fast_opts(250),
    );
    let mut keys = Vec::new();
    for (i, t) in ds.transactions.iter().take(300).enumerate() {
        let k = format!("lost-{i:04}");
        enqueue(
            &store,
            &k,
            &t.transaction_id,
            &json!({"action": "hold", "reason": "docs"}),
            Some(1),
            None,
        );
        keys.push(k);
    }
    // Every write is applied, then (70% of the time) the connection drops.
    sim.state.set_faults(Faults {
        lost: 0.7,
        ..Faults::default()
    });
    let before = sim.state.requests();
    let mut opts = fast_opts(250);
    opts.resources.clear();
    let (_store, report) = sync(&sim.url, Flavor::Partnerstack, store, &opts);
    assert_eq!(report.pushed, 300, "{:?}", report.errors);
    let requests = sim.state.requests() - before;
    assert!(
        requests >= 500,
        "hundreds of lost responses were retried: {requests}"
    );
    assert_exactly_once(&sim.state.ledger(), &keys);
}

#[test]
fn prm_refuses_self_signoff_and_tierdesk_records_it() {
    for flavor in [Flavor::Partnerstack, Flavor::Impartner] {
        let ds = small(4, 10, 20);
        let sim = start_sim(&ds, flavor, Faults::default());
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("cache.db");
        let store = Store::open(&db).unwrap();
        enqueue(
            &store,
            "self-signoff",
            &ds.transactions[0].transaction_id,
            &json!({"action": "override", "amount": "5.00", "reason": "x", "proposer": "ana", "approver": "ana"}),
            Some(1),
            None,
        );
        let (store, report) = sync(&sim.url, flavor, store, &fast_opts(100));
        assert!(sim.state.ledger().is_empty());
        assert_eq!(report.refused.len(), 1, "{:?}", report);
        assert!(
            report.refused[0].2.contains("four_eyes") || report.refused[0].2.contains("proposer")
        );
        let rows: Vec<OutboxRow> = store
            .wf()
            .all_outbox()
            .unwrap()
            .into_iter()
            .filter(|o| o.status == "failed")
            .collect();
        assert_eq!(rows.len(), 1);
        assert!(rows[0]
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("refused by the PRM"));
    }
}

#[test]
fn malformed_items_are_quarantined_while_the_rest_syncs() {
    let ds = small(6, 10, 60);
    let sim = start_sim(&ds, Flavor::Partnerstack, Faults::default());
    sim.state.insert_raw(
        Res::Transactions,
        "T-bad",
        json!({"key": "T-bad", "amount": "lots"}),
    );
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cache.db");
    let (_store, report) = sync(
        &sim.url,
        Flavor::Partnerstack,
        Store::open(&db).unwrap(),
        &fast_opts(25),
    );
    assert_eq!(report.quarantined, 1);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM transactions"), 60);
    let raw: String = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("SELECT raw FROM quarantine", [], |r| r.get(0))
        .unwrap();
    assert!(raw.contains("T-bad"));
}

/// SIGKILL `tierdesk sync` at random points, restart, and prove nothing is lost, nothing
/// applied twice, the file is sound and the end state equals a sync without crashes.
#[test]
fn crash_restart_keeps_integrity_and_exactly_once() {
    use rand::{Rng, SeedableRng};
    let exe = env!("CARGO_BIN_EXE_tierdesk");
    let ds = small(12, 20, 200);
    let faults = Faults {
        latency_ms: 1,
        ..Faults::default()
    };
    let crashy = start_sim(&ds, Flavor::Partnerstack, faults.clone());
    let reference = start_sim(&ds, Flavor::Partnerstack, faults);
    let dir = tempfile::tempdir().unwrap();
    let run = |db: &Path, url: &str| {
        std::process::Command::new(exe)
            .args(["--db", db.to_str().unwrap(), "--config"])
            .arg(dir.path().join("none.toml"))
            .args([
                "sync",
                "--once",
                "--page-size",
                "10",
                // A commit per page: many commit points for the kills to land between.
                "--commit-rows",
                "10",
                "--prm",
                url,
                "--flavor",
                "partnerstack",
            ])
            .env("TIERDESK_PRM_TOKEN", DEFAULT_TOKEN)
            .env("TIERDESK_SYNC_BACKOFF_MS", "1")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut keys = Vec::new();
    let prep = |db: &Path| {
        let store = Store::open(db).unwrap();
        let mut ks = Vec::new();
        for (i, t) in ds.transactions.iter().take(30).enumerate() {
            let k = format!("crash-{i:03}");
            let payload = if i % 3 == 0 {
                json!({"action": "override", "amount": "7.50", "reason": "r", "proposer": "a", "approver": "b"})
            } else {
                json!({"action": "hold", "reason": "docs"})
            };
            enqueue(&store, &k, &t.transaction_id, &payload, Some(1), None);
            ks.push(k);
        }
        ks
    };
    // Reference: one uninterrupted run.
    let ref_db = dir.path().join("ref.db");
    keys.extend(prep(&ref_db));
    let t0 = Instant::now();
    assert!(run(&ref_db, &reference.url).wait().unwrap().success());
    let full = t0.elapsed();
    // Crashy: killed at random points, at least 50 times.
    let db = dir.path().join("crash.db");
    prep(&db);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(99);
    let mut kills = 0;
    let mut window = full;
    let mut iteration = 0usize;
    let started = Instant::now();
    while kills < 55 && started.elapsed() < Duration::from_secs(100) {
        iteration += 1;
        // The PRM keeps changing (records no decision depends on), so every run has work.
        for j in 0..2 {
            let t = &ds.transactions[30 + (iteration * 2 + j) % (ds.transactions.len() - 30)];
            let note = Some(format!("edit {iteration}"));
            assert!(crashy
                .state
                .mutate_transaction(&t.transaction_id, note.clone(), None));
            assert!(reference
                .state
                .mutate_transaction(&t.transaction_id, note, None));
        }
        let mut child = run(&db, &crashy.url);
        let at = Duration::from_micros(rng.gen_range(0..window.as_micros().max(2) as u64));
        std::thread::sleep(at);
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            kills += 1;
        } else {
            window = (window * 3 / 5).max(Duration::from_millis(15));
        }
        child.wait().unwrap();
        // No decision applied twice so far; no committed decision lost.
        let ledger = crashy.state.ledger();
        let mut seen = std::collections::HashSet::new();
        for e in &ledger {
            assert!(
                seen.insert(e.idempotency_key.clone()),
                "applied twice: {}",
                e.idempotency_key
            );
        }
        assert_eq!(count(&db, "SELECT COUNT(*) FROM outbox"), 30);
    }
    eprintln!(
        "crash test: {kills} kills in {iteration} runs, {:?}; uninterrupted run {full:?}",
        started.elapsed()
    );
    // The reference catches up with the same PRM changes, uninterrupted.
    assert!(run(&ref_db, &reference.url).wait().unwrap().success());
    assert!(kills >= 50, "killed {kills} times");
    assert!(run(&db, &crashy.url).wait().unwrap().success());
    let s = Store::open(&db).unwrap();
    s.integrity_check().unwrap();
    assert_indexes_back(&db);
    assert_exactly_once(&crashy.state.ledger(), &keys);
    assert_exactly_once(&reference.state.ledger(), &keys);
    let r = Store::open(&ref_db).unwrap();
    assert_eq!(s.sync_digest().unwrap(), r.sync_digest().unwrap());
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM outbox WHERE status = 'pushed'"),
        30
    );
}

/// `tierdesk login` stores the secret in the OS keyring; a new process reads it back
/// (sync succeeds without TIERDESK_PRM_TOKEN); it is in neither config nor cache;
/// `tierdesk logout` removes it and sync then fails closed with a clear message.
#[test]
fn login_secret_is_read_back_by_a_new_process() {
    use std::io::Write;
    let exe = env!("CARGO_BIN_EXE_tierdesk");
    let ds = small(21, 5, 10);
    let secret = format!("pk_live:sk_{}", uuid::Uuid::new_v4().simple());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let state = SimState::new(
        &ds,
        SimOptions {
            token: secret.clone(),
            ..SimOptions::default()
        },
    );
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    rt.spawn(tierdesk::sim::serve(listener, state.clone()));
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.toml");
    let db = dir.path().join("cache.db");
    let cmd = |args: &[&str]| {
        let mut c = std::process::Command::new(exe);
        c.arg("--config")
            .arg(&cfg)
            .arg("--db")
            .arg(&db)
            .args(args)
            .env_remove("TIERDESK_PRM_TOKEN")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        c
    };
    let mut login = cmd(&["login", "--prm", &url, "--flavor", "partnerstack"])
        .spawn()
        .unwrap();
    writeln!(login.stdin.take().unwrap(), "{secret}").unwrap();
    let out = login.wait_with_output().unwrap();
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        if err.contains("OS keyring") {
            eprintln!("SKIPPED: no usable OS keyring backend here: {err}");
            return;
        }
        panic!("login failed: {err}");
    }
    let config_text = std::fs::read_to_string(&cfg).unwrap();
    assert!(config_text.contains(&url), "{config_text}");
    assert!(!config_text.contains("sk_"), "secret must not be in config");
    // A new process reads it back from the keyring.
    let out = cmd(&["sync", "--once"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("pulled"), "{stdout}");
    assert!(count(&db, "SELECT COUNT(*) FROM transactions") == 10);
    drop(Store::open(&db).unwrap()); // checkpoint-free read of the file is enough
    for f in std::fs::read_dir(dir.path()).unwrap() {
        let bytes = std::fs::read(f.unwrap().path()).unwrap();
        let needle = secret.as_bytes();
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle),
            "secret found on disk"
        );
    }
    // Logout removes it; sync then fails closed.
    let out = cmd(&["logout"]).output().unwrap();
    assert!(out.status.success());
    let out = cmd(&["sync", "--once"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("tierdesk login"), "{err}");
}

/// The PRM's reward statuses are cached, kept current by incremental pulls and read
/// back per transaction; an adjustment below the current total comes back as a
/// negative reward (clawback).
fn reward_statuses(flavor: Flavor) {
    let ds = small(41, 15, 400);
    let sim = start_sim(&ds, flavor, Faults::default());
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cache.db");
    let (store, report) = sync(&sim.url, flavor, Store::open(&db).unwrap(), &fast_opts(100));
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    // Every reward's status equals the PRM's.
    let mut by_status: BTreeMap<String, usize> = BTreeMap::new();
    for c in &ds.commissions {
        let remote = sim.state.record(Res::Rewards, &c.commission_id).unwrap();
        let cached = store.prm_reward_status(&c.transaction_id).unwrap();
        let mine = cached
            .iter()
            .find(|r| r.reward_id == c.commission_id)
            .unwrap_or_else(|| panic!("reward {} cached", c.commission_id));
        assert_eq!(Some(mine.status.as_str()), remote["status"].as_str());
        assert_eq!(mine.amount, Some(c.amount));
        assert_eq!(mine.role.as_deref(), Some(c.role.as_str()));
        *by_status.entry(mine.status.clone()).or_default() += 1;
    }
    assert!(
        by_status.len() >= 2,
        "the program has rewards in several statuses: {by_status:?}"
    );
    assert!(store
        .prm_reward_status("no-such-transaction")
        .unwrap()
        .is_empty());
    // Server-side changes: paid, declined with a reason, put on hold.
    let (a, b, c) = (&ds.commissions[0], &ds.commissions[1], &ds.commissions[2]);
    assert!(sim.state.set_reward_status(&a.commission_id, "paid", None));
    assert!(sim.state.set_reward_status(
        &b.commission_id,
        "declined",
        Some("deal registered by another partner".into())
    ));
    assert!(sim.state.set_reward_status(&c.commission_id, "hold", None));
    let (store, inc) = sync(&sim.url, flavor, store, &fast_opts(100));
    assert!(inc.errors.is_empty(), "{:?}", inc.errors);
    assert_eq!(inc.pulled.get("rewards"), Some(&3), "{:?}", inc.pulled);
    let status_of = |store: &Store, line: &tierdesk::model::CommissionLine| {
        store
            .prm_reward_status(&line.transaction_id)
            .unwrap()
            .into_iter()
            .find(|r| r.reward_id == line.commission_id)
            .unwrap()
    };
    assert_eq!(status_of(&store, a).status, "paid");
    let declined = status_of(&store, b);
    assert_eq!(declined.status, "declined");
    assert_eq!(
        declined.decline_reason.as_deref(),
        Some("deal registered by another partner")
    );
    assert_eq!(declined.record_version, Some(2));
    assert_eq!(status_of(&store, c).status, "hold");
    // An adjustment to a lower total: the PRM adds a negative reward.
    let t = &ds.transactions[5];
    let before: Decimal = store
        .prm_reward_status(&t.transaction_id)
        .unwrap()
        .iter()
        .filter_map(|r| r.amount)
        .sum();
    assert!(before > Decimal::ONE, "transaction 5 has a reward");
    enqueue(
        &store,
        "adj-down",
        &t.transaction_id,
        &json!({"action": "override", "amount": "1.00", "reason": "rate", "proposer": "ana", "approver": "ben"}),
        Some(1),
        None,
    );
    let (store, pushed) = sync(&sim.url, flavor, store, &fast_opts(100));
    assert_eq!(pushed.pushed, 1, "{:?}", pushed.errors);
    let rewards = store.prm_reward_status(&t.transaction_id).unwrap();
    let claw = rewards
        .iter()
        .find(|r| r.role.as_deref() == Some("clawback"))
        .expect("a clawback reward");
    assert_eq!(claw.amount, Some(dec("1.00") - before));
    assert!(rewards.iter().all(|r| r.status == "approved"));
    let total: Decimal = rewards.iter().filter_map(|r| r.amount).sum();
    assert_eq!(total, dec("1.00"));
}

#[test]
fn partnerstack_reward_statuses_cached_and_kept_current() {
    reward_statuses(Flavor::Partnerstack);
}

#[test]
fn impartner_reward_statuses_cached_and_kept_current() {
    reward_statuses(Flavor::Impartner);
}

#[test]
fn old_cache_upgrades_and_pulls_reward_statuses() {
    // A version-1 cache (before prm_rewards) with a rewards cursor already at the end.
    let ds = small(43, 10, 80);
    let sim = start_sim(&ds, Flavor::Partnerstack, Faults::default());
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cache.db");
    let (store, _) = sync(
        &sim.url,
        Flavor::Partnerstack,
        Store::open(&db).unwrap(),
        &fast_opts(100),
    );
    drop(store);
    {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.execute_batch("DROP TABLE prm_rewards; PRAGMA user_version = 1;")
            .unwrap();
    }
    let store = Store::open(&db).unwrap();
    assert_eq!(
        store.schema_version().unwrap(),
        tierdesk::store::SCHEMA_VERSION
    );
    assert_eq!(count(&db, "SELECT COUNT(*) FROM prm_rewards"), 0);
    let (store, report) = sync(&sim.url, Flavor::Partnerstack, store, &fast_opts(100));
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(
        report.pulled.get("rewards"),
        Some(&(ds.commissions.len() as u64))
    );
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM prm_rewards"),
        ds.commissions.len() as i64
    );
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM transactions"),
        ds.transactions.len() as i64
    );
    store.integrity_check().unwrap();
}

#[test]
fn simulator_list_serialisation_matches_the_record_shape() {
    // The list endpoint writes records straight to bytes; `get` and tests use the
    // `Value` form. Both must be the same JSON for every kind of record.
    let mut ds = small(47, 6, 40);
    ds.transactions[3].notes = Some("quote \" and \\ backslash, ünïcode".into());
    let mut db = tierdesk::sim::data::Db::from_dataset(&ds);
    db.put(
        Res::Transactions,
        "raw-1".into(),
        tierdesk::sim::data::Body::Raw(json!({"key": "raw-1", "amount": "oops"})),
    );
    let mut n = 0;
    for res in Res::ALL {
        for rec in &db.coll(res).recs {
            let mut buf = Vec::new();
            tierdesk::sim::data::ps_write(rec, &mut buf);
            let written: serde_json::Value = serde_json::from_slice(&buf).unwrap();
            assert_eq!(
                written,
                tierdesk::sim::data::ps_json(rec),
                "{res:?} {}",
                rec.key
            );
            assert!(
                matches!(rec.body, tierdesk::sim::data::Body::Raw(_))
                    || written["updated_at"].as_i64() == Some(rec.updated),
                "{res:?} {} carries updated_at",
                rec.key
            );
            n += 1;
        }
    }
    assert!(n > 100, "{n} records compared");
}

#[test]
fn impartner_simulator_wants_an_integer_tenant_id_in_x_prm_tenantid() {
    let ds = small(5, 6, 40);
    let sim = start_sim(&ds, Flavor::Impartner, Faults::default());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let status = |tenant: &str| {
        rt.block_on(async {
            reqwest::Client::new()
                .get(format!("{}/api/objects/v1/Partner?take=5", sim.url))
                .header("Authorization", format!("prm-key {DEFAULT_TOKEN}"))
                .header("X-PRM-TenantId", tenant)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        })
    };
    assert_eq!(status(DEFAULT_TENANT), 200);
    assert_eq!(status(" 4711 "), 200, "the integer, whatever the spacing");
    assert_eq!(status("tierdesk-demo"), 400, "not an integer");
    assert_eq!(status("4712"), 401, "another tenant");
}
