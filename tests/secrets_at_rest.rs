//! Partner tax ids and bank details are encrypted at rest: after importing the v2
//! sample, none of them is in the database file, its WAL or the log (raw bytes); the
//! workbench's record shows them masked; without the key they cannot be read while
//! everything else works; a rejected partner line is quarantined masked.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sample-program-v2")
}

/// Every tax id, account number, routing number and IBAN of the sample's partners.
fn secrets() -> Vec<String> {
    let mut out = Vec::new();
    for l in std::fs::read_to_string(sample().join("partners.jsonl"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
    {
        let p: serde_json::Value = serde_json::from_str(l).unwrap();
        if let Some(t) = p["tax_id"].as_str() {
            out.push(t.to_string());
        }
        for k in ["account_number", "routing_number", "iban"] {
            if let Some(v) = p["bank_account"][k].as_str() {
                out.push(v.to_string());
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

fn run(home: &Path, db: &Path, key: Option<&str>, args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tierdesk"));
    c.arg("--db")
        .arg(db)
        .args(args)
        .env("HOME", home)
        .env("XDG_DATA_HOME", home.join("data"))
        .env("XDG_CONFIG_HOME", home.join("cfg"))
        .env("XDG_STATE_HOME", home.join("state"))
        .env("XDG_CACHE_HOME", home.join("cache"))
        .env("RUST_LOG", "debug")
        .env_remove("TIERDESK_DB");
    match key {
        Some(k) => c.env("TIERDESK_CACHE_KEY", k),
        None => c.env_remove("TIERDESK_CACHE_KEY"),
    };
    c.output().unwrap()
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

const KEY_A: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const KEY_B: &str = "Hx4dHBsaGRgXFhUUExIREA8ODQwLCgkIBwYFBAMCAQA=";

#[test]
fn tax_ids_and_bank_details_are_nowhere_in_the_cache_wal_or_log_and_show_masked() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let db = home.join("cache.db");
    let imp = run(
        home,
        &db,
        Some(KEY_A),
        &["import", sample().to_str().unwrap()],
    );
    assert!(
        matches!(imp.status.code(), Some(0) | Some(3)),
        "{}",
        String::from_utf8_lossy(&imp.stderr)
    );
    let sc = run(home, &db, Some(KEY_A), &["score"]);
    assert!(sc.status.success());
    // Raw bytes of every file tierdesk wrote: the cache, its WAL, the log.
    let mut files = files_under(home);
    files.retain(|f| !f.starts_with(home.join("nothing")));
    assert!(files.iter().any(|f| f.ends_with("cache.db")));
    let all: Vec<u8> = files
        .iter()
        .flat_map(|f| std::fs::read(f).unwrap_or_default())
        .collect();
    // Searched as text (ASCII values; lossy decoding keeps every ASCII run intact).
    let all = String::from_utf8_lossy(&all).into_owned();
    let secrets = secrets();
    assert!(secrets.len() > 100, "{}", secrets.len());
    for s in &secrets {
        assert!(
            !all.contains(s.as_str()),
            "{s} found in a file tierdesk wrote"
        );
    }
    // doctor says so.
    let doc =
        String::from_utf8_lossy(&run(home, &db, Some(KEY_A), &["doctor"]).stdout).into_owned();
    assert!(doc.contains("encrypted at rest"), "{doc}");
    assert!(doc.contains("readable with the key"), "{doc}");

    // The record view shows them masked (last four), opened with the key.
    std::env::set_var("TIERDESK_CACHE_KEY", KEY_A);
    let store = tierdesk::store::Store::open(&db).unwrap();
    let partners = store.partners().unwrap();
    let ds = tierdesk::import::load_dataset(&sample()).unwrap().dataset;
    let (with_tax, tx) = ds
        .transactions
        .iter()
        .find_map(|t| {
            partners
                .iter()
                .find(|p| p.partner_id == t.partner_id && p.tax_id.is_some())
                .map(|p| (p.clone(), t.transaction_id.clone()))
        })
        .expect("a selling partner with a tax id");
    let tax = with_tax.tax_id.clone().unwrap();
    assert!(secrets.contains(&tax), "the data-set reader opens them");
    let d = store.record_detail(&tx).unwrap().unwrap();
    let shown = d.partner.as_ref().unwrap().tax_id_masked.clone().unwrap();
    assert_eq!(shown, tierdesk::model::mask(&tax));
    assert!(!shown.contains(&tax[..tax.len() - 4]));
    drop(store);

    // Another key: nothing sensitive can be read, everything else works.
    std::env::set_var("TIERDESK_CACHE_KEY", KEY_B);
    let store = tierdesk::store::Store::open(&db).unwrap();
    let d = store.record_detail(&tx).unwrap().unwrap();
    assert_eq!(
        d.partner.as_ref().unwrap().tax_id_masked.as_deref(),
        Some("(encrypted; no key)")
    );
    assert!(store.partners().unwrap().iter().all(|p| p.tax_id.is_none()));
    std::env::remove_var("TIERDESK_CACHE_KEY");
    drop(store);
    let doc =
        String::from_utf8_lossy(&run(home, &db, Some(KEY_B), &["doctor"]).stdout).into_owned();
    assert!(doc.contains("NOT readable"), "{doc}");
    let q = run(home, &db, Some(KEY_B), &["queue", "--format", "jsonl"]);
    assert!(q.status.success());
    assert!(!q.stdout.is_empty(), "the queue works without the key");
}

#[test]
fn a_rejected_partner_line_is_quarantined_masked() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let ds = home.join("ds");
    std::fs::create_dir_all(&ds).unwrap();
    for e in std::fs::read_dir(sample()).unwrap().flatten() {
        if e.path().is_file() {
            std::fs::copy(e.path(), ds.join(e.file_name())).unwrap();
        }
    }
    let mut partners = std::fs::read_to_string(ds.join("partners.jsonl")).unwrap();
    // A partner with an unknown kind: rejected, with its tax id and account.
    partners.push_str(
        "{\"partner_id\":\"BAD1\",\"name\":\"Bad\",\"kind\":\"wizard\",\"parent_partner_id\":null,\
         \"region\":\"NA\",\"joined_on\":\"2020-01-01\",\"certifications\":[],\
         \"tax_id\":\"98-7654321\",\"bank_account\":{\"routing_number\":\"011000015\",\
         \"account_number\":\"123456789012\",\"account_name\":\"Bad\"}}\n",
    );
    std::fs::write(ds.join("partners.jsonl"), partners).unwrap();
    let db = home.join("cache.db");
    let o = run(home, &db, Some(KEY_A), &["import", ds.to_str().unwrap()]);
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(printed.contains("partners.jsonl:"), "{printed}");
    let all: Vec<u8> = files_under(home)
        .iter()
        .filter(|f| !f.starts_with(&ds))
        .flat_map(|f| std::fs::read(f).unwrap_or_default())
        .collect();
    let all = String::from_utf8_lossy(&all).into_owned();
    for s in ["98-7654321", "011000015", "123456789012"] {
        assert!(!printed.contains(s), "{s} printed");
        assert!(!all.contains(s), "{s} stored");
    }
}
