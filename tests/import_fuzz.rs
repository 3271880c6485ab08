//! Hostile input through the import: random and mangled JSON lines, money strings,
//! huge numbers and control characters. Nothing panics, every bad row is named with
//! its line, and nothing is lost (every line read is stored or quarantined).

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use tierdesk::import::parse::Validator;
use tierdesk::import::{import_dir, FILES};
use tierdesk::store::bulk::TxBatch;
use tierdesk::store::Store;

const TX: &str = r#"{"transaction_id":"T1","kind":"sale","original_transaction_id":null,"partner_id":"P1","registration_id":null,"customer_name":"Acme","sku":"S1","quantity":2,"unit_list_price":"10.0","unit_net_price":"9.5","amount":"19.0","currency":"USD","closed_on":"2024-10-01","submitted_at":"2024-10-01T08:31:40Z","invoice_number":"INV-1","notes":"x"}"#;

fn validator() -> Validator {
    let mut v = Validator::default();
    v.program_currency = Some("USD".into());
    v.partners.add_known("P1");
    v.products.add_known("S1");
    v
}

/// Text with the characters that break parsers and terminals.
fn hostile_text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just("\u{1b}[2J".to_string()),
            Just("\u{1b}]0;title\u{7}".to_string()),
            Just("\u{200B}".to_string()),
            Just("\u{202E}".to_string()),
            Just("\"".to_string()),
            Just("\\".to_string()),
            Just("\\u0000".to_string()),
            Just("{".to_string()),
            Just("}".to_string()),
            Just(",".to_string()),
            Just(":".to_string()),
            "[a-zA-Z0-9 .-]{0,8}",
            any::<char>().prop_map(|c| c.to_string()),
        ],
        0..12,
    )
    .prop_map(|v| v.concat())
}

/// Money-ish strings: long digit runs, signs, points, exponents, junk.
fn money_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "-?[0-9]{1,40}",
        "-?[0-9]{0,30}\\.[0-9]{0,30}",
        "[0-9]{1,5}[eE][0-9]{1,3}",
        Just("79228162514264337593543950335".to_string()),
        Just("-79228162514264337593543950336".to_string()),
        Just("0.0000000000000000000000000001".to_string()),
        hostile_text(),
    ]
}

/// A transaction line with one field replaced by a hostile value.
fn mangled_line() -> impl Strategy<Value = String> {
    let fields = prop::sample::select(vec![
        "transaction_id",
        "kind",
        "partner_id",
        "sku",
        "quantity",
        "unit_list_price",
        "unit_net_price",
        "amount",
        "currency",
        "closed_on",
        "submitted_at",
        "notes",
    ]);
    let value = prop_oneof![
        money_text().prop_map(serde_json::Value::String),
        hostile_text().prop_map(serde_json::Value::String),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(serde_json::Value::from),
        Just(serde_json::Value::Null),
        Just(serde_json::json!([1, 2])),
        Just(serde_json::json!(u64::MAX)),
        Just(serde_json::Value::from(1e300)),
    ];
    (fields, value).prop_map(|(f, v)| {
        let mut m: serde_json::Map<String, serde_json::Value> = serde_json::from_str(TX).unwrap();
        m.insert(f.to_string(), v);
        serde_json::Value::Object(m).to_string()
    })
}

/// Any line at all: mangled rows, cut rows, random text.
fn any_line() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => mangled_line(),
        1 => (0usize..TX.len()).prop_map(|n| TX.chars().take(n).collect()),
        1 => hostile_text(),
        1 => money_text().prop_map(|m| TX.replace("\"19.0\"", &format!("\"{m}\""))),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 600, ..ProptestConfig::default() })]

    #[test]
    fn any_line_is_a_row_or_a_named_rejection(line in any_line()) {
        let mut v = validator();
        let mut out = TxBatch::default();
        let r = v.transaction_into(&line, 7, &mut out);
        let ok = r.is_ok();
        match r {
            Ok(()) => prop_assert_eq!(out.len(), 1),
            Err((_, msg)) => {
                prop_assert!(!msg.is_empty());
                prop_assert_eq!(out.len(), 0);
            }
        }
        // The in-memory path agrees with the bulk path.
        let mut v2 = validator();
        prop_assert_eq!(v2.transaction(&line, 7).is_ok(), ok);
    }

    #[test]
    fn money_beyond_the_bound_never_enters(m in money_text()) {
        let line = TX
            .replace("\"19.0\"", &format!("{}", serde_json::Value::String(m.clone())));
        let mut v = validator();
        if let Ok(t) = v.transaction(&line, 1) {
            prop_assert!(t.amount.abs() <= tierdesk::money::MAX_ABS_AMOUNT);
            let expected = t.unit_net_price * rust_decimal::Decimal::from(t.quantity);
            let tol = tierdesk::import::integrity::rounding_tolerance("USD", t.quantity);
            prop_assert!((t.amount - expected).abs() <= tol, "{} vs {}", t.amount, expected);
        }
    }
}

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sample-program")
}

/// The sample's master data, its first 30 sales (no refunds), no commissions.
fn base_dir(to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for f in FILES {
        std::fs::copy(fixture().join(f), to.join(f)).unwrap();
    }
    let tx = std::fs::read_to_string(fixture().join("transactions.jsonl")).unwrap();
    let kept: Vec<&str> = tx
        .lines()
        .filter(|l| l.contains("\"sale\""))
        .take(30)
        .collect();
    std::fs::write(to.join("transactions.jsonl"), kept.join("\n") + "\n").unwrap();
    std::fs::write(to.join("commissions.jsonl"), "").unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// Whole imports of files with hostile lines mixed in: every line read is
    /// stored or quarantined with its line number.
    #[test]
    fn nothing_read_is_lost(extra in prop::collection::vec(any_line(), 1..40), raw in prop::collection::vec(any::<u8>(), 0..60)) {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        base_dir(&data);
        let p = data.join("transactions.jsonl");
        let mut bytes = std::fs::read(&p).unwrap();
        let base_lines = bytes.iter().filter(|&&b| b == b'\n').count();
        for l in &extra {
            // One line each: a newline inside would split it.
            bytes.extend_from_slice(l.replace(['\n', '\r'], " ").as_bytes());
            bytes.push(b'\n');
        }
        let raw: Vec<u8> = raw.into_iter().filter(|&b| b != b'\n' && b != b'\r').collect();
        bytes.extend_from_slice(&raw);
        bytes.push(b'\n');
        std::fs::write(&p, &bytes).unwrap();
        let total_lines = base_lines + extra.len() + 1;
        let mut store = Store::open(&dir.path().join("cache.db")).unwrap();
        let report = import_dir(&mut store, &data, &mut |_| {}).unwrap();
        let f = report.file("transactions.jsonl").unwrap();
        prop_assert_eq!(f.inserted + f.updated + f.unchanged + f.rejected, f.read);
        let q = store.quarantined().unwrap();
        let qt: Vec<_> = q.iter().filter(|r| r.file == "transactions.jsonl").collect();
        prop_assert_eq!(qt.len() as u64, f.rejected);
        for r in &qt {
            prop_assert!(r.line >= 1 && r.line <= total_lines, "{}", r);
        }
        prop_assert_eq!(store.count_rows("transactions").unwrap() as u64, f.inserted);
        prop_assert!(f.inserted >= 30, "the good rows are all kept");
    }
}
