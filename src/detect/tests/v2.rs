//! The version-2 kinds: the ERP cross-check, period-end clusters, volume spikes and
//! product mix, on hand-made programs.

use super::*;

/// A small deterministic generator (the tests need spread, not quality).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// `partners` partners (Q00..), each with 2-4 ordinary sales a month from 2024-10 to
/// 2026-09, days spread over the month, of family "boxes" (HW-1); partners Q00-Q09
/// sell "clouds" (CL-1) half of the time.
fn busy_program(partners: usize) -> Dataset {
    let mut ds = program();
    ds.transactions.clear();
    ds.registrations.clear();
    ds.products.push(Product {
        sku: "CL-1".into(),
        name: "cloud".into(),
        family: "clouds".into(),
        list_price: dec("100"),
        certification_required: None,
        active: true,
    });
    ds.discount_policy.push(DiscountPolicy {
        tier_id: "alpha".into(),
        family: "clouds".into(),
        max_discount_pct: dec("20"),
    });
    let ids: Vec<String> = (0..partners).map(|i| format!("Q{i:02}")).collect();
    ds.partners = ids
        .iter()
        .map(|p| Partner {
            partner_id: p.clone(),
            name: p.clone(),
            kind: PartnerKind::Reseller,
            parent_partner_id: None,
            region: "EU".into(),
            country: None,
            joined_on: d("2020-01-01"),
            certifications: vec![],
            tax_id: None,
            bank_account: None,
        })
        .collect();
    ds.tier_history = ids
        .iter()
        .map(|p| TierHistory {
            partner_id: p.clone(),
            tier_id: "alpha".into(),
            effective_from: d("2020-01-01"),
        })
        .collect();
    let mut rng = Lcg(42);
    let mut n = 0;
    for (pi, p) in ids.iter().enumerate() {
        for m in 0..24u32 {
            let (y, mo) = (2024 + ((9 + m) / 12) as i32, (9 + m) % 12 + 1);
            let per = 2 + rng.below(3);
            for _ in 0..per {
                let day = 1 + rng.below(28) as u32;
                let closed = NaiveDate::from_ymd_opt(y, mo, day).unwrap();
                let cloud = pi < 10 && rng.below(2) == 0;
                let (sku, qty, list, net) = match cloud {
                    true => ("CL-1", 5 + rng.below(10) as i64, "100", "90"),
                    false => ("HW-1", 9 + rng.below(3) as i64, "1000", "900"),
                };
                n += 1;
                ds.transactions.push(sale(
                    &format!("B{n:05}"),
                    p,
                    &format!("Customer {} Ltd", rng.below(40)),
                    sku,
                    qty,
                    list,
                    net,
                    &closed.to_string(),
                    &(closed + chrono::Duration::days(rng.below(3) as i64)).to_string(),
                    &format!("INV-{n:06}"),
                ));
            }
        }
    }
    ds
}

/// The ERP invoice that bills `t` exactly.
fn invoice_of(t: &Transaction) -> ErpInvoice {
    ErpInvoice {
        invoice_number: t.invoice_number.clone(),
        customer_name: t.customer_name.clone(),
        partner_id: t.partner_id.clone(),
        invoice_date: t.closed_on,
        currency: t.currency.clone(),
        lines: vec![ErpLine {
            sku: t.sku.clone(),
            quantity: t.quantity,
            amount: t.amount,
        }],
    }
}

fn with_kind(ds: &Dataset, kind: AnomalyKind) -> Vec<String> {
    score_dataset(ds, &BTreeMap::new())
        .into_iter()
        .filter(|f| f.score.kinds.contains(&kind))
        .map(|f| f.score.transaction_id)
        .collect()
}

#[test]
fn erp_check_matches_sales_to_invoices() {
    let mut ds = program();
    let window = |id: &str, qty: i64, invoice: &str| {
        sale(
            id,
            "P1",
            "Customer 3 Ltd",
            "HW-1",
            qty,
            "1000",
            "900",
            "2026-08-10",
            "2026-08-11",
            invoice,
        )
    };
    ds.transactions.push(window("E1", 10, "INV-E1"));
    ds.transactions.push(window("E2", 10, "INV-E2"));
    ds.transactions.push(window("E3", 10, "INV-E3"));
    ds.transactions.push(window("E4", 10, "INV-NONE"));
    let mut e5 = window("E5", 10, "INV-E1");
    e5.submitted_at += chrono::Duration::days(3);
    ds.transactions.push(e5);
    let mut invoices: Vec<ErpInvoice> = ds
        .transactions
        .iter()
        .filter(|t| !t.invoice_number.starts_with("INV-E") && t.invoice_number != "INV-NONE")
        .map(invoice_of)
        .collect();
    invoices.push(invoice_of(&ds.transactions[ds.transactions.len() - 5]));
    // E2: the ERP spells the customer with its legal form written out and a typo.
    let mut e2 = invoice_of(&ds.transactions[ds.transactions.len() - 4]);
    e2.customer_name = "CUSTMER 3 Limited.".into();
    invoices.push(e2);
    // E3: the ERP billed 9 units.
    let mut e3 = invoice_of(&ds.transactions[ds.transactions.len() - 3]);
    e3.lines[0].quantity = 9;
    e3.lines[0].amount = dec("8100");
    invoices.push(e3);
    ds.erp_invoices = Some(invoices);

    let findings = score_dataset(&ds, &BTreeMap::new());
    let get = |id: &str| {
        findings
            .iter()
            .find(|f| f.score.transaction_id == id)
            .unwrap()
    };
    let erp = |id: &str| {
        let f = get(id);
        f.score
            .kinds
            .iter()
            .position(|k| *k == AnomalyKind::ErpMismatch)
            .map(|i| f.score.reasons[i].clone())
    };
    assert_eq!(erp("E1"), None, "an exact match is clean");
    assert_eq!(erp("E2"), None, "a spelling variant is the same customer");
    let r3 = erp("E3").expect("quantity differs");
    assert!(r3.contains("quantity 9 not 10"), "{r3}");
    assert!(r3.contains("8,100.00"), "{r3}");
    let r4 = erp("E4").expect("no invoice");
    assert!(r4.contains("No ERP invoice INV-NONE"), "{r4}");
    let r5 = erp("E5").expect("the invoice backs E1 already");
    assert!(r5.contains("already matched by E1"), "{r5}");
    assert_eq!(
        get("E4").proposal.as_ref().map(|p| p.action),
        Some(ProposalAction::Hold)
    );
    // Checked sales are not "not evaluated"; history before the first invoice is.
    assert!(get("E1").score.not_evaluated.is_empty());
    let line = score_line(&get("E1").score);
    assert!(!line.contains("not_evaluated"), "{line}");
}

#[test]
fn without_an_erp_extract_sales_are_not_evaluated_not_passed() {
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
    assert!(f.score.kinds.is_empty());
    assert_eq!(f.score.not_evaluated, vec![AnomalyKind::ErpMismatch]);
    let line = score_line(&f.score);
    assert!(
        line.ends_with(r#""not_evaluated":["erp_mismatch"]}"#),
        "{line}"
    );
    // Sales closed before the extract's first invoice are not evaluated either.
    let later: Vec<ErpInvoice> = ds
        .transactions
        .iter()
        .filter(|t| t.closed_on >= d("2026-01-01"))
        .map(invoice_of)
        .collect();
    ds.erp_invoices = Some(later);
    let all = score_dataset(&ds, &BTreeMap::new());
    let early = all
        .iter()
        .find(|f| f.score.transaction_id == "H0000")
        .unwrap();
    assert_eq!(early.score.not_evaluated, vec![AnomalyKind::ErpMismatch]);
    let n1 = all.iter().find(|f| f.score.transaction_id == "N1").unwrap();
    assert!(n1.score.not_evaluated.is_empty());
    assert!(n1.score.kinds.is_empty(), "{:?}", n1.score.reasons);
}

#[test]
fn quarter_end_cluster_is_flagged_and_an_ordinary_rush_is_not() {
    let mut ds = busy_program(30);
    assert!(with_kind(&ds, AnomalyKind::PeriodEndCluster).is_empty());
    // Q07 books 7 extra sales in the last two days of 2026-Q3.
    for k in 0..7 {
        let closed = if k < 3 { "2026-09-29" } else { "2026-09-30" };
        ds.transactions.push(sale(
            &format!("PE{k}"),
            "Q07",
            &format!("Stuffed {k} Ltd"),
            "HW-1",
            10,
            "1000",
            "900",
            closed,
            closed,
            &format!("INV-PE{k}"),
        ));
    }
    let flagged = with_kind(&ds, AnomalyKind::PeriodEndCluster);
    for k in 0..7 {
        assert!(flagged.contains(&format!("PE{k}")), "{flagged:?}");
    }
    assert!(flagged.len() <= 9, "only the cluster: {flagged:?}");
    let f = score(&ds, "PE0");
    let r = &f.score.reasons[0];
    assert!(
        r.contains("Partner Q07 booked") && r.contains("2026-Q3"),
        "{r}"
    );
}

#[test]
fn volume_spike_is_judged_against_the_program_month() {
    let mut ds = busy_program(30);
    assert!(with_kind(&ds, AnomalyKind::VolumeSpike).is_empty());
    let spike = |ds: &mut Dataset, partner: &str, prefix: &str, n: usize| {
        for k in 0..n {
            let closed = format!("2026-09-{:02}", 2 + k % 25);
            ds.transactions.push(sale(
                &format!("{prefix}{k:02}"),
                partner,
                &format!("Spike {k} Ltd"),
                "HW-1",
                10,
                "1000",
                "900",
                &closed,
                &closed,
                &format!("INV-{prefix}{k}"),
            ));
        }
    };
    // Q11 books 16 more sales in September than its usual 2-4.
    spike(&mut ds, "Q11", "VS", 16);
    let flagged = with_kind(&ds, AnomalyKind::VolumeSpike);
    assert!(flagged.iter().any(|id| id.starts_with("VS")), "{flagged:?}");
    assert!(
        flagged.iter().all(|id| {
            id.starts_with("VS")
                || ds
                    .transactions
                    .iter()
                    .any(|t| t.transaction_id == *id && t.partner_id == "Q11")
        }),
        "only Q11's September: {flagged:?}"
    );
    // When the whole program triples in September, nobody's tripling is a spike.
    let mut grown = busy_program(30);
    for p in 0..30 {
        spike(&mut grown, &format!("Q{p:02}"), &format!("G{p:02}-"), 6);
    }
    assert!(with_kind(&grown, AnomalyKind::VolumeSpike).is_empty());
}

#[test]
fn product_mix_needs_a_new_family_in_volume() {
    let mut ds = busy_program(30);
    assert!(with_kind(&ds, AnomalyKind::ProductMix).is_empty());
    // Q20 never sold clouds; now 300 units at once (Q00-Q09 sell 5-14).
    let big = sale(
        "MX1",
        "Q20",
        "Customer 3 Ltd",
        "CL-1",
        300,
        "100",
        "90",
        "2026-09-10",
        "2026-09-11",
        "INV-MX1",
    );
    // One unit of the new family is a question of price, not of mix.
    let one = sale(
        "MX2",
        "Q21",
        "Customer 4 Ltd",
        "CL-1",
        1,
        "100",
        "90",
        "2026-09-10",
        "2026-09-11",
        "INV-MX2",
    );
    // A partner that sells clouds all along may sell many.
    let usual = sale(
        "MX3",
        "Q01",
        "Customer 5 Ltd",
        "CL-1",
        300,
        "100",
        "90",
        "2026-09-10",
        "2026-09-11",
        "INV-MX3",
    );
    ds.transactions.extend([big, one, usual]);
    let flagged = with_kind(&ds, AnomalyKind::ProductMix);
    assert_eq!(flagged, vec!["MX1".to_string()]);
    let r = &score(&ds, "MX1").score.reasons;
    assert!(r.iter().any(|r| r.contains("never sold clouds")), "{r:?}");
}

/// A transaction pulled without the inputs a check needs (PartnerStack carries no unit
/// prices and no close date) says which checks did not run and why, instead of passing.
#[test]
fn missing_inputs_are_not_evaluated_with_the_field_named() {
    let ds = busy_program(4);
    let variances = BTreeMap::new();
    let mut f = score_dataset_full(&ds, &variances)
        .into_iter()
        .find(|f| f.score.kinds.is_empty())
        .unwrap();
    let before = f.score.not_evaluated.clone();
    mark_missing_inputs(
        &mut f,
        &["unit_net_price".to_string(), "closed_on".to_string()],
    );
    let mut want = before;
    want.extend([
        AnomalyKind::DiscountPolicy,
        AnomalyKind::Backdated,
        AnomalyKind::PeriodEndCluster,
    ]);
    want.sort();
    assert_eq!(f.score.not_evaluated, want);
    let notes = f.evidence["not_evaluated"].to_string();
    assert!(
        notes.contains("discount_policy (no unit_net_price"),
        "{notes}"
    );
    assert!(notes.contains("backdated (no closed_on"), "{notes}");
    // A field no check needs changes nothing.
    let mut g = f.clone();
    mark_missing_inputs(&mut g, &["notes".to_string()]);
    assert_eq!(g.score.not_evaluated, f.score.not_evaluated);
}
