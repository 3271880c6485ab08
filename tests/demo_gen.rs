//! The demo generator: determinism, every anomaly kind, exact export round trip,
//! variants, money arithmetic, refunds and the anomalies' defining properties.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use rust_decimal::Decimal;
use tierdesk::demo::{self, DemoOptions, Generated};
use tierdesk::model::*;

fn small(seed: u64, variant: u32) -> DemoOptions {
    DemoOptions {
        seed,
        partners: 60,
        transactions: 4_000,
        variant,
        ..DemoOptions::default()
    }
}

fn read_all(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for sub in [dir.to_path_buf(), dir.join("answers")] {
        for e in std::fs::read_dir(&sub).unwrap() {
            let p = e.unwrap().path();
            if p.is_file() {
                let name = p.strip_prefix(dir).unwrap().display().to_string();
                out.insert(name, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

#[test]
fn same_seed_gives_byte_identical_export_and_other_seeds_differ() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let c = tempfile::tempdir().unwrap();
    demo::export(&demo::generate(&small(11, 0)), a.path(), true).unwrap();
    demo::export(&demo::generate(&small(11, 0)), b.path(), true).unwrap();
    demo::export(&demo::generate(&small(12, 0)), c.path(), true).unwrap();
    let (fa, fb, fc) = (read_all(a.path()), read_all(b.path()), read_all(c.path()));
    assert_eq!(
        fa.len(),
        14,
        "12 data files (with the ERP extract) and 2 answer files"
    );
    assert_eq!(fa, fb);
    assert_ne!(fa["transactions.jsonl"], fc["transactions.jsonl"]);
}

#[test]
fn export_round_trips_through_load_dataset_exactly() {
    let g = demo::generate(&small(5, 0));
    let dir = tempfile::tempdir().unwrap();
    demo::export(&g, dir.path(), true).unwrap();
    let loaded = tierdesk::import::load_dataset(dir.path()).unwrap();
    assert!(loaded.rejected.is_empty(), "{:?}", loaded.rejected);
    assert_eq!(loaded.dataset, g.dataset);

    // Wire format: decimal strings, plain dates, RFC 3339 UTC timestamps.
    let text = std::fs::read_to_string(dir.path().join("transactions.jsonl")).unwrap();
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert!(first["amount"].is_string());
    assert!(first["unit_net_price"].is_string());
    let closed = first["closed_on"].as_str().unwrap();
    assert_eq!(closed.len(), 10, "{closed}");
    let sub = first["submitted_at"].as_str().unwrap();
    assert!(sub.ends_with('Z') && sub.len() == 20, "{sub}");

    let labels = std::fs::read_to_string(dir.path().join("answers/labels.jsonl")).unwrap();
    assert_eq!(labels.lines().count(), g.labels.len());
}

#[test]
fn every_anomaly_kind_is_injected_mostly_in_the_window() {
    for variant in [0, 3] {
        let g = demo::generate(&small(9, variant));
        let ds = &g.dataset;
        for (k, n) in g.kind_counts() {
            assert!(
                n >= 2,
                "variant {variant}: {k} has {n} labelled transactions"
            );
        }
        let ids: BTreeMap<&str, &Transaction> = ds
            .transactions
            .iter()
            .map(|t| (t.transaction_id.as_str(), t))
            .collect();
        let in_window = g
            .labels
            .iter()
            .filter(|l| {
                ds.program
                    .review_window
                    .contains(&ids[l.transaction_id.as_str()].submitted_at)
            })
            .count();
        assert!(
            in_window * 10 >= g.labels.len() * 7,
            "{in_window} of {}",
            g.labels.len()
        );
        let window_sales = ds
            .transactions
            .iter()
            .filter(|t| ds.program.review_window.contains(&t.submitted_at))
            .count();
        let share = in_window as f64 / window_sales as f64;
        assert!((0.01..0.12).contains(&share), "anomaly share {share}");
        // A few prompt-injection notes on the data.
        let injected = ds
            .transactions
            .iter()
            .filter(|t| {
                t.notes
                    .as_deref()
                    .is_some_and(|n| n.to_lowercase().contains("instructions"))
            })
            .count();
        assert!(injected >= 1);
    }
}

#[test]
fn variants_differ_in_tiers_currency_and_fiscal_year() {
    let a = demo::generate(&small(1, 0)).dataset;
    let b = demo::generate(&small(1, 1)).dataset;
    let c = demo::generate(&small(1, 2)).dataset;
    let tiers = |d: &Dataset| {
        d.tiers
            .iter()
            .map(|t| t.tier_id.clone())
            .collect::<Vec<_>>()
    };
    assert_ne!(tiers(&a), tiers(&b));
    assert_ne!(tiers(&b), tiers(&c));
    assert_ne!(a.program.currency, b.program.currency);
    assert_ne!(b.program.currency, c.program.currency);
    assert_ne!(
        a.program.fiscal_year_start_month,
        b.program.fiscal_year_start_month
    );
    for d in [&a, &b, &c] {
        assert!((3..=5).contains(&d.tiers.len()));
        let ids: BTreeSet<&str> = d.tiers.iter().map(|t| t.tier_id.as_str()).collect();
        assert_eq!(
            d.plan
                .seller_rates
                .keys()
                .map(String::as_str)
                .collect::<BTreeSet<_>>(),
            ids
        );
        assert!(d
            .transactions
            .iter()
            .all(|t| t.currency == d.program.currency));
        for p in &d.discount_policy {
            assert!(ids.contains(p.tier_id.as_str()));
        }
    }
}

fn tier_on<'a>(ds: &'a Dataset, partner: &str, d: chrono::NaiveDate) -> Option<&'a str> {
    ds.tier_history
        .iter()
        .filter(|h| h.partner_id == partner && h.effective_from <= d)
        .max_by_key(|h| h.effective_from)
        .map(|h| h.tier_id.as_str())
}

#[test]
fn money_refunds_and_rule_anomalies_are_consistent() {
    let g: Generated = demo::generate(&small(21, 2));
    let ds = &g.dataset;
    let labelled: BTreeMap<&str, &Vec<AnomalyKind>> = g
        .labels
        .iter()
        .map(|l| (l.transaction_id.as_str(), &l.kinds))
        .collect();
    let by_id: BTreeMap<&str, &Transaction> = ds
        .transactions
        .iter()
        .map(|t| (t.transaction_id.as_str(), t))
        .collect();
    assert_eq!(
        by_id.len(),
        ds.transactions.len(),
        "transaction ids are unique"
    );
    let products: BTreeMap<&str, &Product> =
        ds.products.iter().map(|p| (p.sku.as_str(), p)).collect();
    let partners: BTreeMap<&str, &Partner> = ds
        .partners
        .iter()
        .map(|p| (p.partner_id.as_str(), p))
        .collect();
    let policy: BTreeMap<(&str, &str), Decimal> = ds
        .discount_policy
        .iter()
        .map(|p| ((p.tier_id.as_str(), p.family.as_str()), p.max_discount_pct))
        .collect();
    let regs: BTreeMap<&str, &Registration> = ds
        .registrations
        .iter()
        .map(|r| (r.registration_id.as_str(), r))
        .collect();
    let mut refunds = 0;
    let mut inside = 0;
    let window_days = ds.plan.clawback_window_days.unwrap();
    for t in &ds.transactions {
        assert_eq!(
            t.amount,
            Decimal::from(t.quantity) * t.unit_net_price,
            "{}",
            t.transaction_id
        );
        let kinds = labelled
            .get(t.transaction_id.as_str())
            .map(|k| k.as_slice())
            .unwrap_or(&[]);
        if t.kind == TransactionKind::Refund {
            refunds += 1;
            let o = by_id[t.original_transaction_id.as_deref().unwrap()];
            assert_eq!(o.kind, TransactionKind::Sale);
            assert!(o.transaction_id < t.transaction_id && o.closed_on <= t.closed_on);
            assert!(t.quantity < 0 && -t.quantity <= o.quantity);
            assert_eq!(o.partner_id, t.partner_id);
            if (t.closed_on - o.closed_on).num_days() <= window_days {
                inside += 1;
            }
            continue;
        }
        let p = partners[t.partner_id.as_str()];
        let pr = products[t.sku.as_str()];
        let tier = tier_on(ds, &t.partner_id, t.closed_on).expect("a tier on every sale");
        let max = policy[&(tier, pr.family.as_str())];
        let disc =
            (t.unit_list_price - t.unit_net_price) / t.unit_list_price * Decimal::ONE_HUNDRED;
        assert_eq!(
            disc > max,
            kinds.contains(&AnomalyKind::DiscountPolicy),
            "{} discount {disc} vs {max}",
            t.transaction_id
        );
        let uncertified = pr
            .certification_required
            .as_ref()
            .is_some_and(|c| !p.certifications.contains(c));
        assert_eq!(
            uncertified,
            kinds.contains(&AnomalyKind::UncertifiedProduct)
        );
        let mismatch = t.registration_id.as_deref().is_some_and(|r| {
            let r = regs[r];
            r.partner_id != t.partner_id
                || r.status == RegistrationStatus::Rejected
                || r.expires_on < t.closed_on
                || r.customer_name != t.customer_name
        });
        assert_eq!(
            mismatch,
            kinds.contains(&AnomalyKind::RegistrationMismatch),
            "{}",
            t.transaction_id
        );
        let fy = ds.program.fiscal_year_start_month;
        let late_other_quarter = fiscal_quarter(t.closed_on, fy)
            != fiscal_quarter(t.submitted_at.date_naive(), fy)
            && (t.submitted_at.date_naive() - t.closed_on).num_days() > 14;
        assert_eq!(
            late_other_quarter,
            kinds.contains(&AnomalyKind::Backdated),
            "{}",
            t.transaction_id
        );
    }
    assert!(refunds > 5);
    assert!(
        inside > 0 && inside < refunds,
        "refunds inside and outside the clawback window"
    );
}

#[test]
fn duplicates_and_splits_have_realistic_shapes() {
    let g = demo::generate(&small(4, 0));
    let ds = &g.dataset;
    let by_id: BTreeMap<&str, &Transaction> = ds
        .transactions
        .iter()
        .map(|t| (t.transaction_id.as_str(), t))
        .collect();
    let thr_ok = |t: &Transaction| t.registration_id.is_none();
    for l in &g.labels {
        let t = by_id[l.transaction_id.as_str()];
        if l.kinds.contains(&AnomalyKind::Duplicate) {
            // An earlier sale of the same partner and product, nearly equal.
            let orig = ds.transactions.iter().find(|o| {
                o.transaction_id < t.transaction_id
                    && o.partner_id == t.partner_id
                    && o.sku == t.sku
                    && (o.closed_on - t.closed_on).num_days().abs() <= 5
                    && (o.amount - t.amount).abs() <= o.amount / Decimal::from(20)
            });
            assert!(
                orig.is_some(),
                "duplicate {} has no original",
                t.transaction_id
            );
        }
        if l.kinds.contains(&AnomalyKind::SplitDeals) {
            assert!(thr_ok(t));
            let siblings = g
                .labels
                .iter()
                .filter(|o| o.kinds.contains(&AnomalyKind::SplitDeals))
                .map(|o| by_id[o.transaction_id.as_str()])
                .filter(|o| {
                    o.partner_id == t.partner_id
                        && o.customer_name == t.customer_name
                        && (o.closed_on - t.closed_on).num_days().abs() <= 2
                })
                .count();
            assert!(siblings >= 2, "split {} stands alone", t.transaction_id);
        }
    }
}

#[test]
fn prm_lines_differ_from_the_plan_exactly_on_commission_variance_labels() {
    for variant in [0, 1] {
        let g = demo::generate(&small(8, variant));
        let ds = &g.dataset;
        let recalculated = tierdesk::plan::recalculate(ds);
        assert!(!recalculated.is_empty());
        assert_eq!(recalculated, g.expected_commissions);
        let found: BTreeSet<String> = tierdesk::plan::variances(ds, &recalculated)
            .into_keys()
            .collect();
        let labelled: BTreeSet<String> = g
            .labels
            .iter()
            .filter(|l| l.kinds.contains(&AnomalyKind::CommissionVariance))
            .map(|l| l.transaction_id.clone())
            .collect();
        assert!(labelled.len() >= 2);
        assert_eq!(found, labelled, "variant {variant}");
        // Every role of the plan appears in a realistic program.
        for role in [
            CommissionRole::Seller,
            CommissionRole::Override,
            CommissionRole::Spiff,
            CommissionRole::Clawback,
        ] {
            assert!(ds.commissions.iter().any(|l| l.role == role), "{role:?}");
        }
    }
}
