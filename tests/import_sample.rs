//! Import of the sample program: exact row counts, idempotence, malformed lines,
//! newer exports, and a second process writing the same cache.

use std::path::{Path, PathBuf};
use std::process::Command;

use tierdesk::import::{import_dir, load_dataset, Rejection, FILES};
use tierdesk::store::Store;

fn sample() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/sample-program"
    ))
}

fn lines(path: &Path) -> u64 {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count() as u64
}

/// Copies the data-set files (never answers/) into a fresh folder.
fn copy_sample(to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for f in FILES {
        std::fs::copy(sample().join(f), to.join(f)).unwrap();
    }
}

/// A smaller copy of the sample (keeps the debug-build tests fast): every file
/// whole except transactions (the first `n`) and the commission lines of those.
fn small_sample(to: &Path, n: usize) {
    copy_sample(to);
    let tx = std::fs::read_to_string(sample().join("transactions.jsonl")).unwrap();
    let kept: Vec<&str> = tx
        .lines()
        .filter(|l| !l.trim().is_empty())
        .take(n)
        .collect();
    let ids: std::collections::HashSet<String> = kept
        .iter()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["transaction_id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    std::fs::write(to.join("transactions.jsonl"), kept.join("\n") + "\n").unwrap();
    let comm = std::fs::read_to_string(sample().join("commissions.jsonl")).unwrap();
    let keep_comm: Vec<&str> = comm
        .lines()
        .filter(|l| {
            l.split("\"transaction_id\":\"")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .is_some_and(|id| ids.contains(id))
        })
        .collect();
    assert!(!keep_comm.is_empty());
    std::fs::write(to.join("commissions.jsonl"), keep_comm.join("\n") + "\n").unwrap();
}

fn quiet(_: &tierdesk::import::ImportProgress) {}

const TABLES: [(&str, &str); 9] = [
    ("tiers.jsonl", "tiers"),
    ("products.jsonl", "products"),
    ("discount_policy.jsonl", "discount_policy"),
    ("partners.jsonl", "partners"),
    ("tier_history.jsonl", "tier_history"),
    ("quotas.jsonl", "quotas"),
    ("registrations.jsonl", "registrations"),
    ("transactions.jsonl", "transactions"),
    ("commissions.jsonl", "commissions"),
];

#[test]
fn sample_imports_exact_counts_idempotently_and_round_trips() {
    let tmp = tempfile::tempdir().unwrap();
    let mut store = Store::open(&tmp.path().join("cache.db")).unwrap();
    let report = import_dir(&mut store, &sample(), &mut quiet).unwrap();
    assert_eq!(report.rejected_total, 0, "{report}");
    for (file, table) in TABLES {
        let n = lines(&sample().join(file));
        assert_eq!(store.count_rows(table).unwrap() as u64, n, "{table}");
        let fr = report.file(file).unwrap();
        assert_eq!((fr.read, fr.inserted), (n, n), "{file}");
    }
    assert_eq!(store.count_rows("program").unwrap(), 1);
    assert_eq!(store.count_rows("plan").unwrap(), 1);
    store.integrity_check().unwrap();

    // What the cache gives back is what the folder holds.
    let from_dir = load_dataset(&sample()).unwrap();
    assert!(from_dir.rejected.is_empty());
    let from_store = store.load_dataset().unwrap();
    assert_eq!(from_store, from_dir.dataset);
    let t = &from_dir.dataset.transactions[0];
    assert_eq!(
        store.get_transaction(&t.transaction_id).unwrap().as_ref(),
        Some(t)
    );
    let p = &from_dir.dataset.partners[0];
    assert_eq!(store.get_partner(&p.partner_id).unwrap().as_ref(), Some(p));
    assert!(store.get_transaction("no-such-id").unwrap().is_none());

    // Importing again changes nothing.
    let before = store.dataset_digest().unwrap();
    let again = import_dir(&mut store, &sample(), &mut quiet).unwrap();
    assert_eq!(store.dataset_digest().unwrap(), before);
    assert_eq!(again.accepted(), report.accepted());
    assert!(again
        .files
        .iter()
        .all(|f| f.inserted == 0 && f.updated == 0 && f.unchanged == f.read));
}

/// Appends lines to a file; `terminated` = whether the last one ends in a newline.
fn append(path: &Path, new: &[String], terminated: bool) -> usize {
    let mut text = std::fs::read_to_string(path).unwrap();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    let first = text.lines().count() + 1;
    text.push_str(&new.join("\n"));
    if terminated {
        text.push('\n');
    }
    std::fs::write(path, text).unwrap();
    first
}

fn with_id(line: &str, id: &str) -> serde_json::Value {
    let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
    v["transaction_id"] = id.into();
    v
}

fn find(rejs: &[Rejection], line: usize) -> &Rejection {
    rejs.iter()
        .find(|r| r.file == "transactions.jsonl" && r.line == line)
        .unwrap_or_else(|| panic!("no rejection for line {line}: {rejs:?}"))
}

#[test]
fn malformed_lines_are_reported_quarantined_and_the_rest_imported() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("broken");
    small_sample(&dir, 1500);
    let txf = dir.join("transactions.jsonl");
    let text = std::fs::read_to_string(&txf).unwrap();
    let first = text.lines().next().unwrap().to_string();
    let original = lines(&txf);

    let mut float_amount = with_id(&first, "NEW-FLOAT");
    float_amount["amount"] = serde_json::json!(26873.47);
    let mut missing = with_id(&first, "NEW-MISSING");
    missing.as_object_mut().unwrap().remove("sku");
    let mut unknown = with_id(&first, "NEW-UNKNOWN");
    unknown["partner_id"] = "NO-SUCH-PARTNER".into();
    let good = with_id(&first, "NEW-GOOD");
    let truncated = with_id(&first, "NEW-TRUNC").to_string();
    let new = vec![
        "{this is not json".to_string(),
        float_amount.to_string(),
        missing.to_string(),
        unknown.to_string(),
        first.clone(), // duplicate of line 1
        good.to_string(),
        truncated[..truncated.len() / 2].to_string(),
    ];
    let l = append(&txf, &new, false);

    // The in-memory loader and the import agree on every rejection.
    let loaded = load_dataset(&dir).unwrap();
    let mut store = Store::open(&tmp.path().join("cache.db")).unwrap();
    let report = import_dir(&mut store, &dir, &mut quiet).unwrap();
    assert_eq!(loaded.rejected, report.rejections);
    let rejs = &report.rejections;
    assert_eq!(rejs.len(), 6, "{rejs:#?}");

    assert_eq!(find(rejs, l).field, None);
    assert!(find(rejs, l).error.contains("not valid JSON"));
    assert_eq!(find(rejs, l + 1).field.as_deref(), Some("amount"));
    assert!(find(rejs, l + 1).error.contains("decimal string"));
    assert_eq!(find(rejs, l + 2).field.as_deref(), Some("sku"));
    assert!(find(rejs, l + 2).error.contains("missing"));
    assert_eq!(find(rejs, l + 3).field.as_deref(), Some("partner_id"));
    assert!(find(rejs, l + 3).error.contains("NO-SUCH-PARTNER"));
    assert_eq!(find(rejs, l + 4).field.as_deref(), Some("transaction_id"));
    assert!(find(rejs, l + 4).error.contains("duplicate"));
    assert!(
        find(rejs, l + 4).error.contains("first given on line 1"),
        "{}",
        find(rejs, l + 4).error
    );
    assert!(find(rejs, l + 6).error.contains("truncated last line"));
    assert_eq!(
        find(rejs, l + 1).to_string(),
        format!(
            "transactions.jsonl:{}: amount: {}",
            l + 1,
            find(rejs, l + 1).error
        )
    );

    // Quarantined with the raw text; the good rows are all in.
    // (The quarantine is in the order rows were found wrong: a repeated id is found
    // once the file is written.)
    let mut q = store.quarantined().unwrap();
    q.sort_by_key(|r| r.line);
    assert_eq!(&q, rejs);
    assert_eq!(q[0].raw, "{this is not json");
    assert_eq!(
        store.count_rows("transactions").unwrap() as u64,
        original + 1
    );
    assert!(store.get_transaction("NEW-GOOD").unwrap().is_some());
    assert!(store.get_transaction("NEW-FLOAT").unwrap().is_none());
    let fr = report.file("transactions.jsonl").unwrap();
    assert_eq!(
        (fr.read, fr.inserted, fr.rejected),
        (original + 7, original + 1, 6)
    );

    // Re-importing the broken folder does not quarantine the same rows twice.
    import_dir(&mut store, &dir, &mut quiet).unwrap();
    assert_eq!(store.quarantined().unwrap().len(), 6);

    // The command names each bad line as FILE:LINE: field: what is wrong on stderr.
    let out = Command::new(env!("CARGO_BIN_EXE_tierdesk"))
        .arg("--db")
        .arg(tmp.path().join("cli.db"))
        .arg("import")
        .arg(&dir)
        .env("HOME", tmp.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Imported with rejections: exit status 3.
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    for r in rejs {
        assert!(
            stderr.contains(&r.to_string()),
            "{r} not in stderr:\n{stderr}"
        );
        assert!(
            stdout.contains(&r.to_string()),
            "{r} not in summary:\n{stdout}"
        );
    }
    assert!(stderr.contains(&format!(
        "transactions.jsonl:{}: sku: missing required field",
        l + 2
    )));
}

/// The checks that need every stored id (a repeated key, a registration, a sale or
/// a transaction that is nowhere) are made by the store, so the import keeps no set
/// of ids: the same lines are rejected into an empty cache and on a re-import, with
/// their line, field and raw text, and agree with the in-memory loader.
#[test]
fn rows_naming_what_is_not_stored_are_rejected_first_import_and_re_import() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("refs");
    small_sample(&dir, 1200);
    let txf = dir.join("transactions.jsonl");
    let first = std::fs::read_to_string(&txf)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string();
    let mut no_reg = with_id(&first, "NEW-NOREG");
    no_reg["registration_id"] = "NO-SUCH-REG".into();
    let mut no_sale = with_id(&first, "NEW-NOSALE");
    no_sale["kind"] = "refund".into();
    no_sale["original_transaction_id"] = "NO-SUCH-SALE".into();
    // A well-formed refund (negative quantity and amount): only its sale is missing.
    let q = no_sale["quantity"].as_i64().unwrap();
    no_sale["quantity"] = (-q).into();
    let amount = format!("-{}", no_sale["amount"].as_str().unwrap());
    no_sale["amount"] = amount.into();
    let good = with_id(&first, "NEW-OK");
    let t = append(
        &txf,
        &[no_reg.to_string(), no_sale.to_string(), good.to_string()],
        true,
    );
    let cf = dir.join("commissions.jsonl");
    let c_first: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(&cf)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    let mut orphan = c_first.clone();
    orphan["commission_id"] = "C-ORPHAN".into();
    orphan["transaction_id"] = "NO-SUCH-TX".into();
    let mut on_new = c_first.clone();
    on_new["commission_id"] = "C-ON-NEW".into();
    on_new["transaction_id"] = "NEW-OK".into();
    // A line naming the refund the store refuses: that transaction is not stored.
    let mut on_refused = c_first.clone();
    on_refused["commission_id"] = "C-ON-REFUSED".into();
    on_refused["transaction_id"] = "NEW-NOSALE".into();
    let c = append(
        &cf,
        &[
            orphan.to_string(),
            c_first.to_string(),
            on_new.to_string(),
            on_refused.to_string(),
        ],
        true,
    );

    let loaded = load_dataset(&dir).unwrap();
    let mut store = Store::open(&tmp.path().join("cache.db")).unwrap();
    let report = import_dir(&mut store, &dir, &mut quiet).unwrap();
    assert_eq!(loaded.rejected, report.rejections);
    let got: Vec<(String, usize, Option<String>)> = report
        .rejections
        .iter()
        .map(|r| (r.file.clone(), r.line, r.field.clone()))
        .collect();
    let want = vec![
        (
            "transactions.jsonl".to_string(),
            t,
            Some("registration_id".to_string()),
        ),
        (
            "transactions.jsonl".to_string(),
            t + 1,
            Some("original_transaction_id".to_string()),
        ),
        (
            "commissions.jsonl".to_string(),
            c,
            Some("transaction_id".to_string()),
        ),
        (
            "commissions.jsonl".to_string(),
            c + 1,
            Some("commission_id".to_string()),
        ),
        (
            "commissions.jsonl".to_string(),
            c + 3,
            Some("transaction_id".to_string()),
        ),
    ];
    assert_eq!(got, want, "{:#?}", report.rejections);
    assert!(report.rejections[0]
        .error
        .contains("unknown registration \"NO-SUCH-REG\""));
    assert!(report.rejections[1]
        .error
        .contains("unknown transaction \"NO-SUCH-SALE\""));
    assert!(report.rejections[2]
        .error
        .contains("unknown transaction \"NO-SUCH-TX\""));
    assert!(report.rejections[3]
        .error
        .contains("duplicate commission_id"));
    assert!(report.rejections[4]
        .error
        .contains("unknown transaction \"NEW-NOSALE\""));
    // The raw text quarantined is the line as it is in the file.
    assert_eq!(report.rejections[0].raw, no_reg.to_string());
    assert_eq!(report.rejections[2].raw, orphan.to_string());
    assert!(store.get_transaction("NEW-OK").unwrap().is_some());
    assert!(store.get_transaction("NEW-NOREG").unwrap().is_none());
    let comm = report.file("commissions.jsonl").unwrap();
    assert_eq!((comm.read, comm.rejected), (lines(&cf), 3));

    // Re-importing into the filled cache: the same rows rejected, nothing written.
    let again = import_dir(&mut store, &dir, &mut quiet).unwrap();
    assert_eq!(again.rejections, report.rejections);
    let tx = again.file("transactions.jsonl").unwrap();
    assert_eq!((tx.inserted, tx.updated, tx.rejected), (0, 0, 2));
    assert_eq!(store.quarantined().unwrap().len(), 5);
}

#[test]
fn missing_file_is_a_clear_error_and_nothing_usable_fails() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("partial");
    copy_sample(&dir);
    std::fs::remove_file(dir.join("partners.jsonl")).unwrap();
    let mut store = Store::open(&tmp.path().join("cache.db")).unwrap();
    let err = import_dir(&mut store, &dir, &mut quiet)
        .unwrap_err()
        .to_string();
    assert!(err.contains("partners.jsonl"), "{err}");
    assert_eq!(store.count_rows("transactions").unwrap(), 0);
    assert!(load_dataset(&dir).is_err());
}

#[test]
fn newer_export_updates_changed_rows_and_bumps_record_version() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("v2");
    small_sample(&dir, 1500);
    let mut store = Store::open(&tmp.path().join("cache.db")).unwrap();
    import_dir(&mut store, &dir, &mut quiet).unwrap();

    let txf = dir.join("transactions.jsonl");
    let text = std::fs::read_to_string(&txf).unwrap();
    let mut rows: Vec<String> = text.lines().map(str::to_string).collect();
    let mut v: serde_json::Value = serde_json::from_str(&rows[4]).unwrap();
    let id = v["transaction_id"].as_str().unwrap().to_string();
    v["customer_name"] = "Renamed Customer Ltd".into();
    rows[4] = v.to_string();
    std::fs::write(&txf, rows.join("\n") + "\n").unwrap();

    let hash_before = store.transaction_row_hash(&id).unwrap().unwrap();
    assert_eq!(store.transaction_record_version(&id).unwrap(), Some(1));
    let report = import_dir(&mut store, &dir, &mut quiet).unwrap();
    let fr = report.file("transactions.jsonl").unwrap();
    assert_eq!((fr.inserted, fr.updated), (0, 1));
    assert_eq!(fr.unchanged, lines(&txf) - 1);
    assert_eq!(store.transaction_record_version(&id).unwrap(), Some(2));
    assert_ne!(
        store.transaction_row_hash(&id).unwrap().unwrap(),
        hash_before
    );
    assert_eq!(
        store.get_transaction(&id).unwrap().unwrap().customer_name,
        "Renamed Customer Ltd"
    );
}

#[test]
fn second_process_importing_while_this_one_writes_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("shared.db");
    let mut store = Store::open(&db).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tierdesk"))
        .arg("--db")
        .arg(&db)
        .arg("import")
        .arg("--quiet")
        .arg(sample())
        .env("HOME", tmp.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Meanwhile this process reads and writes the same cache.
    let mut mine = Vec::new();
    let mut i = 0;
    loop {
        let done = child.try_wait().unwrap().is_some();
        let r = Rejection {
            file: "concurrent-test".into(),
            line: i,
            field: None,
            error: "written while another process imports".into(),
            raw: format!("row {i}"),
            raw_bytes: None,
        };
        store.quarantine(std::slice::from_ref(&r)).unwrap();
        mine.push(r);
        let _ = store.count_rows("transactions").unwrap();
        i += 1;
        if done {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    store.integrity_check().unwrap();
    for (file, table) in TABLES {
        assert_eq!(
            store.count_rows(table).unwrap() as u64,
            lines(&sample().join(file)),
            "{table}"
        );
    }
    let q = store.quarantined().unwrap();
    let ours: Vec<&Rejection> = q.iter().filter(|r| r.file == "concurrent-test").collect();
    assert_eq!(ours.len(), mine.len());
    assert!(mine.len() > 1);
}

/// A refund whose sale comes later in the file is imported (file order does not
/// matter); a refund whose sale is nowhere is still rejected with its line.
#[test]
fn refund_before_its_sale_is_accepted_and_one_without_a_sale_is_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("refunds");
    small_sample(&dir, 1500);
    let txf = dir.join("transactions.jsonl");
    let text = std::fs::read_to_string(&txf).unwrap();
    let mut rows: Vec<String> = text.lines().map(str::to_string).collect();
    let value = |l: &str| serde_json::from_str::<serde_json::Value>(l).unwrap();
    // The first refund whose sale is in the file: move it before that sale.
    let (ri, si) = rows
        .iter()
        .enumerate()
        .find_map(|(i, l)| {
            let orig = value(l)["original_transaction_id"].as_str()?.to_string();
            let si = rows
                .iter()
                .position(|s| value(s)["transaction_id"].as_str() == Some(&orig))?;
            Some((i, si))
        })
        .expect("the sample has a refund of one of its first 1500 sales");
    assert!(si < ri);
    let refund = rows.remove(ri);
    let refund_id = value(&refund)["transaction_id"]
        .as_str()
        .unwrap()
        .to_string();
    rows.insert(0, refund);
    // A refund of a sale that exists nowhere, and a refund of that moved refund's
    // sale placed after it (resolution does not depend on order either).
    let mut orphan = value(&rows[0]);
    orphan["transaction_id"] = "NEW-ORPHAN-REFUND".into();
    orphan["original_transaction_id"] = "NO-SUCH-SALE".into();
    rows.insert(1, orphan.to_string());
    // A refund of that orphan: its chain ends nowhere either.
    let mut orphan_of_orphan = value(&rows[0]);
    orphan_of_orphan["transaction_id"] = "NEW-ORPHAN-REFUND-2".into();
    orphan_of_orphan["original_transaction_id"] = "NEW-ORPHAN-REFUND".into();
    rows.insert(2, orphan_of_orphan.to_string());
    std::fs::write(&txf, rows.join("\n") + "\n").unwrap();

    let loaded = load_dataset(&dir).unwrap();
    let mut store = Store::open(&tmp.path().join("cache.db")).unwrap();
    let report = import_dir(&mut store, &dir, &mut quiet).unwrap();
    assert_eq!(loaded.rejected, report.rejections);
    assert_eq!(report.rejections.len(), 2, "{:#?}", report.rejections);
    let r = &report.rejections[0];
    assert_eq!((r.file.as_str(), r.line), ("transactions.jsonl", 2));
    assert_eq!(r.field.as_deref(), Some("original_transaction_id"));
    assert!(r.error.contains("NO-SUCH-SALE"), "{r}");
    let r = &report.rejections[1];
    assert_eq!((r.file.as_str(), r.line), ("transactions.jsonl", 3));
    assert!(r.error.contains("NEW-ORPHAN-REFUND"), "{r}");
    assert_eq!(r.raw, rows[2]);
    assert!(store
        .get_transaction("NEW-ORPHAN-REFUND-2")
        .unwrap()
        .is_none());
    let fr = report.file("transactions.jsonl").unwrap();
    assert_eq!(fr.inserted, rows.len() as u64 - 2);
    let stored = store.get_transaction(&refund_id).unwrap().unwrap();
    assert!(stored.original_transaction_id.is_some());
    assert!(loaded
        .dataset
        .transactions
        .iter()
        .any(|t| t.transaction_id == refund_id));
    assert_eq!(store.quarantined().unwrap().len(), 2);
}
