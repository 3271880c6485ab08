//! The sample program: the plan reproduces answers/expected_commissions.jsonl exactly,
//! and exactly the PRM lines that differ are reported as variances.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use tierdesk::model::CommissionLine;

fn sample() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/sample-program"
    ))
}

fn read_lines(p: &Path) -> Vec<CommissionLine> {
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

type Row = (String, String, String, String, String, String);

fn row(l: &CommissionLine) -> Row {
    (
        l.transaction_id.clone(),
        l.commission_id.clone(),
        l.role.as_str().to_string(),
        l.payee_partner_id.clone(),
        format!("{:.2}", l.amount),
        l.period.clone(),
    )
}

#[test]
fn sample_reproduces_expected_commissions_and_variances() {
    let ds = tierdesk::import::load_dataset(sample()).unwrap().dataset;
    let expected = read_lines(&sample().join("answers/expected_commissions.jsonl"));
    let got = tierdesk::plan::recalculate(&ds);

    let mut want: Vec<Row> = expected.iter().map(row).collect();
    want.sort();
    let mut have: Vec<Row> = got.iter().map(row).collect();
    have.sort();
    let missing: Vec<&Row> = want
        .iter()
        .filter(|r| have.binary_search(r).is_err())
        .collect();
    let extra: Vec<&Row> = have
        .iter()
        .filter(|r| want.binary_search(r).is_err())
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{} missing (first {:?}), {} extra (first {:?})",
        missing.len(),
        missing.iter().take(5).collect::<Vec<_>>(),
        extra.len(),
        extra.iter().take(5).collect::<Vec<_>>()
    );
    assert_eq!(want, have, "same multiset of lines");

    // The explained path (explain, the TUI's pane) derives exactly the same lines, in
    // the same order, as the fast path.
    let explained: Vec<CommissionLine> = tierdesk::plan::recalculate_explained(&ds)
        .into_iter()
        .map(|e| e.line)
        .collect();
    assert_eq!(explained, got);

    // Expected variances: transactions whose PRM multiset differs from the expected one.
    let key = |l: &CommissionLine| {
        (
            l.role.as_str().to_string(),
            l.payee_partner_id.clone(),
            format!("{:.2}", l.amount),
        )
    };
    let mut by_tx: BTreeMap<String, (Vec<_>, Vec<_>)> = BTreeMap::new();
    for l in &expected {
        by_tx
            .entry(l.transaction_id.clone())
            .or_default()
            .0
            .push(key(l));
    }
    for l in &ds.commissions {
        by_tx
            .entry(l.transaction_id.clone())
            .or_default()
            .1
            .push(key(l));
    }
    let want_var: BTreeSet<String> = by_tx
        .into_iter()
        .filter_map(|(id, (mut a, mut b))| {
            a.sort();
            b.sort();
            (a != b).then_some(id)
        })
        .collect();
    assert!(!want_var.is_empty());
    let var = tierdesk::plan::variances(&ds, &got);
    let got_var: BTreeSet<String> = var.keys().cloned().collect();
    assert_eq!(want_var, got_var);
    for (id, v) in &var {
        assert_eq!(&v.transaction_id, id);
        assert!(!v.missing.is_empty() || !v.extra.is_empty());
        assert!(v.reason.contains("PRM"), "{}", v.reason);
    }
}

#[test]
fn cli_prints_the_contract_keys_and_explains() {
    let exe = env!("CARGO_BIN_EXE_tierdesk");
    let dir = sample().to_str().unwrap();
    let out = std::process::Command::new(exe)
        .args(["commissions", "--dataset", dir, "--format", "jsonl"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let expected = read_lines(&sample().join("answers/expected_commissions.jsonl"));
    let mut n = 0;
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let obj = v.as_object().unwrap();
        let keys: BTreeSet<&str> = obj.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            BTreeSet::from([
                "transaction_id",
                "role",
                "payee_partner_id",
                "amount",
                "period",
                "commission_id"
            ])
        );
        // amount is a decimal string with cents.
        let amount = obj["amount"].as_str().unwrap();
        assert!(amount.parse::<rust_decimal::Decimal>().is_ok(), "{amount}");
        assert_eq!(amount.split('.').nth(1).map(str::len), Some(2), "{amount}");
        n += 1;
    }
    assert_eq!(n, expected.len());

    // explain a transaction whose PRM lines differ from the plan.
    let ds = tierdesk::import::load_dataset(sample()).unwrap().dataset;
    let var = tierdesk::plan::variances(&ds, &tierdesk::plan::recalculate(&ds));
    let tid = var.keys().next().unwrap().as_str();
    let out = std::process::Command::new(exe)
        .args(["explain", tid, "--dataset", dir])
        .output()
        .unwrap();
    assert!(out.status.success());
    let e = String::from_utf8(out.stdout).unwrap();
    assert!(
        e.contains(tid) && e.contains("Variance:") && e.contains("Tier "),
        "{e}"
    );
}

/// Generated programs of other shapes (tier ids, currencies, fiscal years, rates):
/// every sale of a partner with a tier gets one seller line, an override exactly when
/// the partner has a parent, periods in the program's fiscal quarters; and when the
/// generator carries answers, they are reproduced.
#[test]
fn generated_programs_of_other_shapes() {
    use std::collections::HashMap;
    use tierdesk::model::{fiscal_quarter, CommissionRole, TransactionKind};
    for variant in 0..6 {
        let opts = tierdesk::demo::DemoOptions {
            seed: 11 + variant as u64,
            partners: 40,
            transactions: 1500,
            variant,
            ..Default::default()
        };
        let g = tierdesk::demo::generate(&opts);
        let ds = &g.dataset;
        let got = tierdesk::plan::recalculate(ds);
        if !g.expected_commissions.is_empty() {
            let mut want: Vec<Row> = g.expected_commissions.iter().map(row).collect();
            want.sort();
            let mut have: Vec<Row> = got.iter().map(row).collect();
            have.sort();
            assert_eq!(want, have, "variant {variant}");
        }
        let parents: HashMap<&str, Option<&str>> = ds
            .partners
            .iter()
            .map(|p| (p.partner_id.as_str(), p.parent_partner_id.as_deref()))
            .collect();
        let mut roles: HashMap<(&str, CommissionRole), usize> = HashMap::new();
        for l in &got {
            *roles
                .entry((l.transaction_id.as_str(), l.role))
                .or_default() += 1;
        }
        let fy = ds.program.fiscal_year_start_month;
        let by_id: HashMap<&str, _> = ds
            .transactions
            .iter()
            .map(|t| (t.transaction_id.as_str(), t))
            .collect();
        for l in &got {
            let t = by_id[l.transaction_id.as_str()];
            assert_eq!(
                l.period,
                fiscal_quarter(t.closed_on, fy),
                "variant {variant}"
            );
        }
        let mut sellers = 0;
        for t in ds
            .transactions
            .iter()
            .filter(|t| t.kind == TransactionKind::Sale)
        {
            let tiered = ds
                .tier_history
                .iter()
                .any(|h| h.partner_id == t.partner_id && h.effective_from <= t.closed_on);
            let id = t.transaction_id.as_str();
            let n = |r| roles.get(&(id, r)).copied().unwrap_or(0);
            assert_eq!(
                n(CommissionRole::Seller),
                usize::from(tiered),
                "variant {variant} {id}"
            );
            let has_parent = parents
                .get(t.partner_id.as_str())
                .copied()
                .flatten()
                .is_some();
            assert_eq!(
                n(CommissionRole::Override),
                usize::from(tiered && has_parent),
                "variant {variant} {id}"
            );
            sellers += n(CommissionRole::Seller);
        }
        assert!(sellers > 1000, "variant {variant}: {sellers} seller lines");
    }
}
