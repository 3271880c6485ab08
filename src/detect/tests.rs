//! Unit tests per detector on small hand-made programs.

use std::collections::BTreeMap;

use chrono::{NaiveDate, TimeZone, Utc};
use rust_decimal::Decimal;

use super::*;

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

/// One sale; `submitted` is a date (08:00 UTC).
#[allow(clippy::too_many_arguments)]
fn sale(
    id: &str,
    partner: &str,
    customer: &str,
    sku: &str,
    qty: i64,
    list: &str,
    net: &str,
    closed: &str,
    submitted: &str,
    invoice: &str,
) -> Transaction {
    let net_d = dec(net);
    let sd = d(submitted);
    Transaction {
        transaction_id: id.into(),
        kind: TransactionKind::Sale,
        original_transaction_id: None,
        partner_id: partner.into(),
        registration_id: None,
        customer_name: customer.into(),
        sku: sku.into(),
        quantity: qty,
        unit_list_price: dec(list),
        unit_net_price: net_d,
        amount: net_d * Decimal::from(qty),
        currency: "EUR".into(),
        closed_on: d(closed),
        submitted_at: Utc.from_utc_datetime(&sd.and_hms_opt(8, 0, 0).unwrap()),
        invoice_number: invoice.into(),
        notes: None,
    }
}

/// A program with one tier ("alpha"), two products, two partners and a year of
/// ordinary history for partner P1 (deals of roughly 9,000-11,000).
fn program() -> Dataset {
    let mut transactions = Vec::new();
    let start = d("2025-06-02");
    for i in 0..80i64 {
        let day = start + chrono::Duration::days(i * 4);
        let qty = 9 + (i % 3); // 9..11 units at 1000 list, 10% off
        let p = if i % 2 == 0 { "P1" } else { "P2" };
        transactions.push(sale(
            &format!("H{i:04}"),
            p,
            &format!("Customer {} Ltd", i % 7),
            "HW-1",
            qty,
            "1000",
            "900",
            &day.to_string(),
            &(day + chrono::Duration::days(i % 3)).to_string(),
            &format!("INV-{i:06}"),
        ));
    }
    Dataset {
        program: Program {
            program_id: "t".into(),
            name: "t".into(),
            currency: "EUR".into(),
            fiscal_year_start_month: 1,
            as_of: d("2026-09-30"),
            review_window: ReviewWindow {
                start: d("2026-08-01"),
                end: d("2026-09-30"),
            },
        },
        plan: Plan {
            plan_id: "p".into(),
            currency: "EUR".into(),
            period: None,
            seller_rates: BTreeMap::new(),
            family_multipliers: BTreeMap::new(),
            override_rate: None,
            accelerators: vec![],
            spiffs: vec![],
            per_transaction_cap: None,
            clawback_window_days: None,
            rules: Vec::new(),
        },
        tiers: vec![Tier {
            tier_id: "alpha".into(),
            name: "Alpha".into(),
            rank: 1,
        }],
        products: vec![
            Product {
                sku: "HW-1".into(),
                name: "box".into(),
                family: "boxes".into(),
                list_price: dec("1000"),
                certification_required: None,
                active: true,
            },
            Product {
                sku: "SEC-1".into(),
                name: "shield".into(),
                family: "boxes".into(),
                list_price: dec("1000"),
                certification_required: Some("shielding".into()),
                active: true,
            },
        ],
        discount_policy: vec![DiscountPolicy {
            tier_id: "alpha".into(),
            family: "boxes".into(),
            max_discount_pct: dec("20"),
        }],
        partners: ["P1", "P2"]
            .iter()
            .map(|p| Partner {
                partner_id: (*p).into(),
                name: (*p).into(),
                kind: PartnerKind::Reseller,
                parent_partner_id: None,
                region: "EU".into(),
                country: None,
                joined_on: d("2020-01-01"),
                certifications: if *p == "P2" {
                    vec!["shielding".into()]
                } else {
                    vec![]
                },
                tax_id: None,
                bank_account: None,
            })
            .collect(),
        tier_history: ["P1", "P2"]
            .iter()
            .map(|p| TierHistory {
                partner_id: (*p).into(),
                tier_id: "alpha".into(),
                effective_from: d("2020-01-01"),
            })
            .collect(),
        quotas: vec![],
        registrations: vec![Registration {
            registration_id: "R1".into(),
            partner_id: "P2".into(),
            customer_name: "Northwind GmbH".into(),
            expected_amount: dec("10000"),
            registered_on: d("2026-07-01"),
            expires_on: d("2026-08-15"),
            status: RegistrationStatus::Approved,
        }],
        transactions,
        commissions: vec![],
        erp_invoices: None,
    }
}

fn score(ds: &Dataset, id: &str) -> Finding {
    score_dataset(ds, &BTreeMap::new())
        .into_iter()
        .find(|f| f.score.transaction_id == id)
        .expect("scored")
}

fn kinds(f: &Finding) -> Vec<AnomalyKind> {
    f.score.kinds.clone()
}

#[test]
fn ordinary_sale_is_clean_and_low() {
    let mut ds = program();
    ds.transactions.push(sale(
        "N1",
        "P1",
        "Customer 3 Ltd",
        "HW-1",
        10,
        "1000",
        "900",
        "2026-08-10",
        "2026-08-11",
        "INV-900001",
    ));
    let f = score(&ds, "N1");
    assert!(kinds(&f).is_empty(), "{:?}", f.score.reasons);
    assert!(f.score.score < 0.5);
    assert!(f.proposal.is_none());
}

#[test]
fn discount_beyond_policy_is_flagged_with_the_numbers() {
    let mut ds = program();
    ds.transactions.push(sale(
        "D1",
        "P1",
        "Acme",
        "HW-1",
        10,
        "1000",
        "700",
        "2026-08-10",
        "2026-08-11",
        "INV-1",
    ));
    ds.transactions.push(sale(
        "D2",
        "P1",
        "Acme",
        "HW-1",
        1,
        "1000",
        "800",
        "2026-08-20",
        "2026-08-21",
        "INV-2",
    ));
    let f = score(&ds, "D1");
    assert_eq!(kinds(&f), vec![AnomalyKind::DiscountPolicy]);
    assert!(
        f.score.reasons[0].contains("30.0%"),
        "{}",
        f.score.reasons[0]
    );
    assert!(f.score.reasons[0].contains("20%"));
    assert!(f.score.score > 0.9);
    assert_eq!(
        f.proposal.as_ref().map(|p| p.action),
        Some(ProposalAction::Recompute)
    );
    // exactly at the maximum is allowed
    assert!(kinds(&score(&ds, "D2")).is_empty());
}

#[test]
fn uncertified_product_needs_the_certification() {
    let mut ds = program();
    ds.transactions.push(sale(
        "C1",
        "P1",
        "Acme",
        "SEC-1",
        2,
        "1000",
        "900",
        "2026-08-10",
        "2026-08-11",
        "INV-1",
    ));
    ds.transactions.push(sale(
        "C2",
        "P2",
        "Acme",
        "SEC-1",
        2,
        "1000",
        "900",
        "2026-08-10",
        "2026-08-11",
        "INV-2",
    ));
    let f = score(&ds, "C1");
    assert_eq!(kinds(&f), vec![AnomalyKind::UncertifiedProduct]);
    assert!(f.score.reasons[0].contains("shielding"));
    assert!(kinds(&score(&ds, "C2")).is_empty());
}

#[test]
fn registration_mismatches() {
    let mut ds = program();
    let mut other = sale(
        "G1",
        "P1",
        "Northwind GmbH",
        "HW-1",
        10,
        "1000",
        "900",
        "2026-08-10",
        "2026-08-11",
        "INV-1",
    );
    other.registration_id = Some("R1".into());
    let mut expired = sale(
        "G2",
        "P2",
        "Northwind GmbH",
        "HW-1",
        10,
        "1000",
        "900",
        "2026-09-10",
        "2026-09-11",
        "INV-2",
    );
    expired.registration_id = Some("R1".into());
    let mut customer = sale(
        "G3",
        "P2",
        "Southwind AG",
        "HW-1",
        10,
        "1000",
        "900",
        "2026-08-10",
        "2026-08-11",
        "INV-3",
    );
    customer.registration_id = Some("R1".into());
    let mut fine = sale(
        "G4",
        "P2",
        "NORTHWIND gmbh.",
        "HW-1",
        10,
        "1000",
        "900",
        "2026-08-09",
        "2026-08-11",
        "INV-4",
    );
    fine.registration_id = Some("R1".into());
    ds.transactions.extend([other, expired, customer, fine]);
    let f = score(&ds, "G1");
    assert_eq!(kinds(&f), vec![AnomalyKind::RegistrationMismatch]);
    assert!(f.score.reasons[0].contains("belongs to partner P2"));
    assert!(score(&ds, "G2").score.reasons[0].contains("expired"));
    assert!(score(&ds, "G3").score.reasons[0].contains("Southwind"));
    assert!(kinds(&score(&ds, "G4")).is_empty());
    assert_eq!(f.proposal.map(|p| p.action), Some(ProposalAction::Hold));
}

#[test]
fn duplicate_with_edits_vs_legit_repeat_order() {
    let mut ds = program();
    ds.transactions.push(sale(
        "U1",
        "P1",
        "Cedarwind Corp.",
        "HW-1",
        12,
        "1000",
        "880",
        "2026-08-10",
        "2026-08-11",
        "INV-555123",
    ));
    // resubmitted 9 days later: name retyped, close date shifted, invoice one char off
    ds.transactions.push(sale(
        "U2",
        "P1",
        "Cedarwind Corporation",
        "HW-1",
        12,
        "1000",
        "880",
        "2026-08-12",
        "2026-08-20",
        "INV-555128",
    ));
    // the same order again four months later: a legitimate repeat order
    ds.transactions.push(sale(
        "U3",
        "P1",
        "Cedarwind Corp.",
        "HW-1",
        12,
        "1000",
        "880",
        "2026-12-10",
        "2026-12-11",
        "INV-777001",
    ));
    let f = score(&ds, "U2");
    assert_eq!(kinds(&f), vec![AnomalyKind::Duplicate]);
    assert!(f.score.reasons[0].contains("U1"), "{}", f.score.reasons[0]);
    assert!(f.score.reasons[0].contains("one character"));
    assert_eq!(
        f.proposal.as_ref().map(|p| p.action),
        Some(ProposalAction::Reverse)
    );
    assert!(
        kinds(&score(&ds, "U1")).is_empty(),
        "the earlier one is not flagged"
    );
    assert!(
        kinds(&score(&ds, "U3")).is_empty(),
        "repeat order months later"
    );
}

#[test]
fn split_deal_flags_every_piece() {
    let mut ds = program();
    for (i, day) in ["2026-08-10", "2026-08-10", "2026-08-11", "2026-08-11"]
        .iter()
        .enumerate()
    {
        ds.transactions.push(sale(
            &format!("S{i}"),
            "P1",
            "Tidal Holdings",
            "HW-1",
            9,
            "1000",
            "900",
            day,
            day,
            &format!("INV-{}", 400000 + i * 7919),
        ));
    }
    for i in 0..4 {
        let f = score(&ds, &format!("S{i}"));
        assert_eq!(kinds(&f), vec![AnomalyKind::SplitDeals], "S{i}");
        assert!(f.score.reasons[0].contains("One of 4"));
    }
}

#[test]
fn backdated_vs_prompt_quarter_end() {
    let mut ds = program();
    ds.transactions.push(sale(
        "B1",
        "P1",
        "Acme",
        "HW-1",
        10,
        "1000",
        "900",
        "2026-06-29",
        "2026-08-20",
        "INV-1",
    ));
    ds.transactions.push(sale(
        "B2",
        "P1",
        "Beta",
        "HW-1",
        11,
        "1000",
        "900",
        "2026-06-30",
        "2026-07-02",
        "INV-880044",
    ));
    ds.commissions.push(CommissionLine {
        commission_id: "C-B1-S".into(),
        transaction_id: "B1".into(),
        payee_partner_id: "P1".into(),
        role: CommissionRole::Seller,
        amount: dec("450.00"),
        period: "2026-Q2".into(),
    });
    let f = score(&ds, "B1");
    assert_eq!(kinds(&f), vec![AnomalyKind::Backdated]);
    assert!(f.score.reasons[0].contains("2026-Q2"));
    assert!(kinds(&score(&ds, "B2")).is_empty());
    // The proposal holds exactly what is at stake and names both quarters.
    let p = f.proposal.expect("a backdated deal gets a proposal");
    assert_eq!(p.action, ProposalAction::Hold);
    assert_eq!(p.current_amount, dec("450.00"));
    assert_eq!(p.proposed_amount, Decimal::ZERO);
    assert_eq!(p.delta, dec("-450.00"));
    assert!(p.rationale.contains("booked in 2026-Q2"), "{}", p.rationale);
    assert!(
        p.rationale.contains("submitted in 2026-Q3"),
        "{}",
        p.rationale
    );
    assert!(
        !p.rationale.contains("when it submitted"),
        "{}",
        p.rationale
    );

    // A tier change between the claimed close and the submission is named.
    ds.tier_history.push(TierHistory {
        partner_id: "P1".into(),
        tier_id: "beta".into(),
        effective_from: d("2026-07-15"),
    });
    ds.tiers.push(Tier {
        tier_id: "beta".into(),
        name: "Beta".into(),
        rank: 2,
    });
    let p = score(&ds, "B1").proposal.expect("proposal");
    assert!(
        p.rationale
            .contains("was Alpha on the claimed date and Beta when it submitted"),
        "{}",
        p.rationale
    );
}

#[test]
fn scores_do_not_depend_on_the_thread_count() {
    let mut ds = program();
    for (i, (cust, inv)) in [
        ("Acme Ltd", "INV-7"),
        ("ACME Limited", "INV-7x"),
        ("Acme", "INV-9"),
    ]
    .iter()
    .enumerate()
    {
        ds.transactions.push(sale(
            &format!("X{i}"),
            "P1",
            cust,
            "HW-1",
            10,
            "1000",
            "900",
            "2026-08-10",
            &format!("2026-08-1{i}"),
            inv,
        ));
    }
    let v = BTreeMap::new();
    let one = score_dataset_threads(&ds, &v, 1);
    assert!(one.iter().any(|f| !f.score.kinds.is_empty()));
    for threads in [2, 3, 7] {
        assert_eq!(
            score_dataset_threads(&ds, &v, threads),
            one,
            "{threads} threads"
        );
    }
    // Output is in transaction-id order whatever the input order.
    let mut shuffled = ds.clone();
    shuffled.transactions.reverse();
    assert_eq!(score_dataset_threads(&shuffled, &v, 2), one);
}

#[test]
fn deal_far_above_partner_and_tier_history() {
    let mut ds = program();
    ds.transactions.push(sale(
        "L1",
        "P1",
        "Acme",
        "HW-1",
        400,
        "1000",
        "900",
        "2026-08-10",
        "2026-08-11",
        "INV-1",
    ));
    let f = score(&ds, "L1");
    assert_eq!(kinds(&f), vec![AnomalyKind::DealSizeTier]);
    assert!(
        f.score.reasons[0].contains("median"),
        "{}",
        f.score.reasons[0]
    );
}

#[test]
fn commission_variance_proposes_the_plan_amount() {
    let mut ds = program();
    ds.transactions.push(sale(
        "V1",
        "P1",
        "Acme",
        "HW-1",
        10,
        "1000",
        "900",
        "2026-08-10",
        "2026-08-11",
        "INV-1",
    ));
    ds.commissions.push(CommissionLine {
        commission_id: "C-V1".into(),
        transaction_id: "V1".into(),
        payee_partner_id: "P1".into(),
        role: CommissionRole::Seller,
        amount: dec("900"),
        period: "2026-Q3".into(),
    });
    let mut v = BTreeMap::new();
    v.insert(
        "V1".to_string(),
        VarianceInfo {
            reason: "Seller line is 900 where the plan gives 720".into(),
            plan_amount: Some(dec("720")),
        },
    );
    let f = score_dataset_full(&ds, &v)
        .into_iter()
        .find(|f| f.score.transaction_id == "V1")
        .unwrap();
    assert_eq!(kinds(&f), vec![AnomalyKind::CommissionVariance]);
    let p = f.proposal.unwrap();
    assert_eq!(p.action, ProposalAction::Adjust);
    assert_eq!(p.current_amount, dec("900"));
    assert_eq!(p.proposed_amount, dec("720"));
    assert_eq!(p.delta, dec("-180"));
}

#[test]
fn registration_threshold_is_learned_only_when_sharp() {
    // below 20k: one in ten registered; from 20k up: all
    let sales: Vec<(f64, bool)> = (0..400)
        .map(|i| {
            let a = 1000.0 + i as f64 * 100.0;
            (a, a >= 20_000.0 || i % 10 == 0)
        })
        .collect();
    let th = context::registration_threshold(sales.into_iter()).unwrap();
    assert!((19_000.0..=20_100.0).contains(&th), "{th}");
    let noisy: Vec<(f64, bool)> = (0..400)
        .map(|i| (1000.0 + i as f64 * 100.0, i % 2 == 0))
        .collect();
    assert!(context::registration_threshold(noisy.into_iter()).is_none());
}

/// Writes a whole data set into a store (what an import does).
fn put(store: &mut crate::store::Store, ds: &Dataset) {
    store.upsert_program(&ds.program).unwrap();
    store.upsert_plan(&ds.plan).unwrap();
    store.upsert_tiers(&ds.tiers).unwrap();
    store.upsert_products(&ds.products).unwrap();
    store.upsert_discount_policy(&ds.discount_policy).unwrap();
    store.upsert_partners(&ds.partners).unwrap();
    store.upsert_tier_history(&ds.tier_history).unwrap();
    store.upsert_quotas(&ds.quotas).unwrap();
    store.upsert_registrations(&ds.registrations).unwrap();
    store.upsert_transactions(&ds.transactions).unwrap();
    store.upsert_commissions(&ds.commissions).unwrap();
}

fn stored_kinds(store: &crate::store::Store, id: &str) -> Vec<String> {
    let f = store.flag(id).unwrap().expect("flag stored");
    assert_eq!(f.detector_version, DETECTOR_VERSION);
    serde_json::from_str(&f.kinds).unwrap()
}

#[test]
fn cache_rescoring_is_incremental_and_keeps_baselines_current() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = crate::store::Store::open(&dir.path().join("cache.db")).unwrap();
    let mut ds = program();
    let big = sale(
        "L1",
        "P1",
        "Acme",
        "HW-1",
        400,
        "1000",
        "900",
        "2026-08-10",
        "2026-08-11",
        "INV-1",
    );
    let ordinary = sale(
        "N1",
        "P1",
        "Customer 3 Ltd",
        "HW-1",
        10,
        "1000",
        "900",
        "2026-08-12",
        "2026-08-13",
        "INV-900001",
    );
    ds.transactions.push(big.clone());
    ds.transactions.push(ordinary.clone());
    put(&mut store, &ds);
    let n = ds.transactions.len();

    // First run: everything is new.
    let s = crate::service::score::score_cache(&mut store, &mut |_, _| {}).unwrap();
    assert_eq!((s.transactions, s.rescored, s.unchanged), (n, n, 0));
    assert_eq!(stored_kinds(&store, "L1"), vec!["deal_size_tier"]);
    assert!(stored_kinds(&store, "N1").is_empty());
    let n1_before = store.flag("N1").unwrap().unwrap();

    // Nothing changed: nothing is rewritten.
    let s = crate::service::score::score_cache(&mut store, &mut |_, _| {}).unwrap();
    assert_eq!((s.rescored, s.unchanged, s.baseline_moved), (0, n, 0));

    // One window transaction changes (priced far beyond the discount policy): only it
    // is rescored, and its flag carries the new result and the detector version.
    let mut changed = ordinary.clone();
    changed.unit_net_price = dec("500");
    changed.amount = dec("5000");
    store.upsert_transactions(&[changed]).unwrap();
    let s = crate::service::score::score_cache(&mut store, &mut |_, _| {}).unwrap();
    assert_eq!((s.rescored, s.unchanged, s.baseline_moved), (1, n - 1, 0));
    assert_eq!(stored_kinds(&store, "N1"), vec!["discount_policy"]);
    let n1_after = store.flag("N1").unwrap().unwrap();
    assert_ne!(n1_after.row_hash, n1_before.row_hash);
    assert!(store.proposal("N1").unwrap().is_some());

    // History moves the partner's baseline: five earlier deals as large as L1. They are
    // new rows; L1 did not change itself but is no longer out of line, so its flag is
    // rewritten too. Nothing else is.
    let mut history = Vec::new();
    for i in 0..5 {
        history.push(sale(
            &format!("H{i}"),
            "P1",
            "Acme",
            "HW-2",
            400,
            "1000",
            "900",
            &format!("2026-05-0{}", i + 1),
            &format!("2026-05-1{}", i + 1),
            &format!("INV-77{i}"),
        ));
    }
    store.upsert_transactions(&history).unwrap();
    let s = crate::service::score::score_cache(&mut store, &mut |_, _| {}).unwrap();
    assert_eq!(s.transactions, n + 5);
    assert!(s.baseline_moved >= 1, "{s:?}");
    assert!(stored_kinds(&store, "L1").is_empty());
    assert_eq!(s.rescored, 5 + s.baseline_moved, "{s:?}");
    // And the next run is quiet again.
    let s = crate::service::score::score_cache(&mut store, &mut |_, _| {}).unwrap();
    assert_eq!(s.rescored, 0);
}

mod v2;
