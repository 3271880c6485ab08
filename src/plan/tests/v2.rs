//! Plan v2 (scoped rules): hand-computed cases and properties.

use super::*;
use crate::plan::v2::{Rule, RuleAction, Scope};

fn scope() -> Scope {
    Scope::default()
}

fn rule(id: &str, scope: Scope, priority: i64, action: RuleAction) -> Rule {
    Rule {
        rule_id: id.into(),
        scope,
        priority,
        action,
    }
}

fn region(r: &str) -> Scope {
    Scope {
        region: Some(r.into()),
        ..scope()
    }
}

fn family(f: &str) -> Scope {
    Scope {
        family: Some(f.into()),
        ..scope()
    }
}

fn accel(from: Decimal, m: Decimal) -> RuleAction {
    RuleAction::Accelerator(vec![(from, m)])
}

fn prt(id: &str, region: &str, parent: Option<&str>) -> Partner {
    let mut p = partner(id, parent);
    p.region = region.into();
    p
}

/// A program whose fiscal year starts in April: fiscal Q4 is January to March.
/// E1 (EMEA, gold, parent D1), N1 (NA, silver). Gold 10%, silver 8%, services x0.5,
/// plan accelerator 1.5x from 100% of quota, override 2%, no cap.
fn v2_dataset(rules: Vec<Rule>, transactions: Vec<Transaction>) -> Dataset {
    let mut ds = dataset(transactions);
    ds.program.fiscal_year_start_month = 4;
    ds.plan.seller_rates = BTreeMap::from([
        ("silver".to_string(), dec!(0.08)),
        ("gold".to_string(), dec!(0.10)),
    ]);
    ds.plan.family_multipliers = BTreeMap::from([("services".to_string(), dec!(0.5))]);
    ds.plan.override_rate = Some(dec!(0.02));
    ds.plan.accelerators = vec![Accelerator {
        attainment_from: dec!(1.0),
        multiplier: dec!(1.5),
    }];
    ds.plan.spiffs = vec![];
    ds.plan.per_transaction_cap = None;
    ds.plan.rules = rules;
    ds.tiers = vec![
        Tier {
            tier_id: "silver".into(),
            name: "Silver".into(),
            rank: 1,
        },
        Tier {
            tier_id: "gold".into(),
            name: "Gold".into(),
            rank: 2,
        },
    ];
    let product = |sku: &str, fam: &str| Product {
        sku: sku.into(),
        name: sku.into(),
        family: fam.into(),
        list_price: dec!(100),
        certification_required: None,
        active: true,
    };
    ds.products = vec![
        product("SEC-1", "security"),
        product("HW-1", "hardware"),
        product("SVC-1", "services"),
    ];
    ds.partners = vec![
        prt("D1", "EMEA", None),
        prt("E1", "EMEA", Some("D1")),
        prt("N1", "NA", None),
    ];
    let th = |p: &str, t: &str| TierHistory {
        partner_id: p.into(),
        tier_id: t.into(),
        effective_from: d("2025-01-01"),
    };
    ds.tier_history = vec![th("E1", "gold"), th("N1", "silver")];
    // FY2026 Q2 = July to September 2026 (named after the year it starts in).
    let quota = |p: &str, q: Decimal| Quota {
        partner_id: p.into(),
        period: "2026-Q2".into(),
        quota: q,
    };
    ds.quotas = vec![quota("E1", dec!(10000)), quota("N1", dec!(1000))];
    ds
}

fn seller(ds: &Dataset, id: &str) -> Option<Decimal> {
    seller_of(ds, id)
}

#[test]
fn two_rate_rules_are_decided_by_priority_then_specificity_then_id() {
    let sec = |p| sale("S", "E1", "SEC-1", 1, dec!(1000), p);
    let ra = rule("R-A", family("security"), 5, RuleAction::Rate(dec!(0.15)));
    let rb = rule(
        "R-B",
        Scope {
            region: Some("EMEA".into()),
            family: Some("security".into()),
            ..scope()
        },
        1,
        RuleAction::Rate(dec!(0.20)),
    );
    // Priority 5 beats priority 1 although R-B has more scope fields: 1000 x 15%.
    let ds = v2_dataset(vec![ra.clone(), rb.clone()], vec![sec("2026-05-10")]);
    assert_eq!(seller(&ds, "S"), Some(dec!(150.00)));
    // Same priority: more scope fields win (R-D, 2 fields): 1000 x 13%.
    let rd = rule(
        "R-D",
        Scope {
            region: Some("EMEA".into()),
            tier: Some("gold".into()),
            ..scope()
        },
        5,
        RuleAction::Rate(dec!(0.13)),
    );
    let ds = v2_dataset(vec![rb.clone(), rd, ra.clone()], vec![sec("2026-05-10")]);
    assert_eq!(seller(&ds, "S"), Some(dec!(130.00)));
    // Same priority and fields: the smaller rule_id (R-A before R-C) wins.
    let rc = rule("R-C", region("EMEA"), 5, RuleAction::Rate(dec!(0.11)));
    let ds = v2_dataset(vec![rc, ra], vec![sec("2026-05-10")]);
    assert_eq!(seller(&ds, "S"), Some(dec!(150.00)));
    // The override is unchanged: 2% of 1000 to D1.
    let l = lines_of(&ds, "S");
    assert!(l.contains(&(CommissionRole::Override, "D1".into(), dec!(20.00))));
}

#[test]
fn a_rate_rule_replaces_the_family_multiplier_and_multipliers_stack() {
    let svc = sale("V", "E1", "SVC-1", 1, dec!(1000), "2026-05-10");
    let sec = sale("S", "E1", "SEC-1", 1, dec!(1000), "2026-05-11");
    // Without rules: gold 10% x services 0.5 = 5%.
    let ds = v2_dataset(vec![], vec![svc.clone(), sec.clone()]);
    assert_eq!(seller(&ds, "V"), Some(dec!(50.00)));
    let rules = vec![
        rule("SVC", family("services"), 0, RuleAction::Rate(dec!(0.09))),
        rule(
            "M-SEC",
            family("security"),
            0,
            RuleAction::RateMultiplier(dec!(1.2)),
        ),
        rule(
            "M-EMEA",
            region("EMEA"),
            0,
            RuleAction::RateMultiplier(dec!(1.5)),
        ),
    ];
    let ds = v2_dataset(rules, vec![svc, sec]);
    // 9% (no family multiplier on top) x 1.5 (EMEA) = 13.5% of 1000.
    assert_eq!(seller(&ds, "V"), Some(dec!(135.00)));
    // 10% x 1.2 x 1.5 = 18%.
    assert_eq!(seller(&ds, "S"), Some(dec!(180.00)));
}

#[test]
fn two_overlapping_scoped_accelerators_with_attainment_over_all_sales() {
    // E1 quota 10,000 in FY2026 Q2 (July-September 2026), gold 10%.
    // A1 (EMEA): 2x from 50%; A2 (EMEA security): 3x from 80%.
    let a1 = rule("A1", region("EMEA"), 0, accel(dec!(0.5), dec!(2)));
    let a2 = rule(
        "A2",
        Scope {
            region: Some("EMEA".into()),
            family: Some("security".into()),
            ..scope()
        },
        0,
        accel(dec!(0.8), dec!(3)),
    );
    let txs = vec![
        sale("S1", "E1", "HW-1", 1, dec!(6000), "2026-07-10"),
        sale("S2", "E1", "SEC-1", 1, dec!(3000), "2026-07-20"),
        sale("S3", "E1", "SVC-1", 1, dec!(2000), "2026-08-01"),
        sale("N", "N1", "SEC-1", 1, dec!(2000), "2026-07-15"),
    ];
    let ds = v2_dataset(vec![a2.clone(), a1.clone()], txs.clone());
    // S1 (A1 only): 5000 x 10% + 1000 x 20% = 700.
    assert_eq!(seller(&ds, "S1"), Some(dec!(700.00)));
    // S2 (A1 and A2 match, A2 has more scope fields): bookings 6000 -> 9000;
    // 2000 x 10% + 1000 x 30% = 500.
    assert_eq!(seller(&ds, "S2"), Some(dec!(500.00)));
    // S3 (A1): bookings 9000 -> 11000, all above 5000: 2000 x 5% x 2 = 200.
    assert_eq!(seller(&ds, "S3"), Some(dec!(200.00)));
    // N1 in NA: the plan's accelerators (1.5x from 100% of 1000): 80 + 120 = 200.
    assert_eq!(seller(&ds, "N"), Some(dec!(200.00)));
    // A1 with a higher priority wins S2 instead: 3000 x 10% x 2 = 600.
    let mut a1p = a1;
    a1p.priority = 1;
    let ds = v2_dataset(vec![a2, a1p], txs);
    assert_eq!(seller(&ds, "S2"), Some(dec!(600.00)));
    let e = explain(&ds, "S2").unwrap().to_string();
    assert!(e.contains("Accelerator rule A1 replaces"), "{e}");
    assert!(
        e.contains("Accelerator rule A2 also matched but lost: lower priority (0 < 1 of A1)"),
        "{e}"
    );
}

#[test]
fn a_quarter_scoped_rule_follows_a_fiscal_year_starting_in_april() {
    // Fiscal Q4 of a year starting in April is January to March.
    let q4 = rule(
        "Q4-DOUBLE",
        Scope {
            quarter: Some(4),
            ..scope()
        },
        0,
        RuleAction::RateMultiplier(dec!(2)),
    );
    let days = [
        ("A", "2026-11-10", dec!(80.00)),  // calendar Q4, fiscal Q3
        ("B", "2026-12-31", dec!(80.00)),  // fiscal Q3
        ("C", "2027-01-01", dec!(160.00)), // fiscal Q4
        ("D", "2027-03-31", dec!(160.00)), // fiscal Q4
        ("E", "2027-04-01", dec!(80.00)),  // fiscal Q1 of the next year
    ];
    let txs = days
        .iter()
        .map(|(id, day, _)| sale(id, "N1", "HW-1", 1, dec!(1000), day))
        .collect();
    let ds = v2_dataset(vec![q4], txs);
    for (id, _, want) in days {
        assert_eq!(seller(&ds, id), Some(want), "{id}");
    }
}

#[test]
fn spiff_rules_pay_within_their_scope_window_and_tiers() {
    let spiff = |tiers: Option<Vec<String>>| {
        rule(
            "NA-SPIFF",
            Scope {
                region: Some("NA".into()),
                sku: Some("SEC-1".into()),
                ..scope()
            },
            0,
            RuleAction::Spiff {
                amount_per_unit: dec!(75),
                from: Some(d("2026-10-01")),
                to: Some(d("2026-12-31")),
                eligible_tiers: tiers,
            },
        )
    };
    let txs = vec![
        sale("IN", "N1", "SEC-1", 3, dec!(300), "2026-12-31"),
        sale("OUT", "N1", "SEC-1", 3, dec!(300), "2027-01-01"),
        sale("HW", "N1", "HW-1", 3, dec!(300), "2026-11-01"),
        sale("EU", "E1", "SEC-1", 3, dec!(300), "2026-11-01"),
    ];
    let ds = v2_dataset(vec![spiff(Some(vec!["Silver".into()]))], txs.clone());
    let spiffs: Vec<(String, String, Decimal)> = recalculate(&ds)
        .into_iter()
        .filter(|l| l.role == CommissionRole::Spiff)
        .map(|l| (l.transaction_id, l.commission_id, l.amount))
        .collect();
    assert_eq!(
        spiffs,
        vec![("IN".into(), "C-IN-P-NA-SPIFF".into(), dec!(225.00))]
    );
    // Gold only: N1 is silver, so nothing, and the explanation says why.
    let ds = v2_dataset(vec![spiff(Some(vec!["gold".into()]))], txs);
    assert!(recalculate(&ds)
        .iter()
        .all(|l| l.role != CommissionRole::Spiff));
    let e = explain(&ds, "IN").unwrap();
    assert!(
        e.no_lines
            .iter()
            .any(|s| s.contains("NA-SPIFF") && s.contains("not eligible")),
        "{:?}",
        e.no_lines
    );
}

#[test]
fn explain_names_the_winning_and_losing_rate_rules() {
    let rules = vec![
        rule("R-A", family("security"), 5, RuleAction::Rate(dec!(0.15))),
        rule("R-B", region("EMEA"), 1, RuleAction::Rate(dec!(0.20))),
        rule("M", scope(), 0, RuleAction::RateMultiplier(dec!(1.1))),
    ];
    let ds = v2_dataset(
        rules,
        vec![sale("S", "E1", "SEC-1", 1, dec!(1000), "2026-05-10")],
    );
    let e = explain(&ds, "S").unwrap();
    let text = e.to_string();
    assert!(text.contains("set by rate rule R-A"), "{text}");
    assert!(
        text.contains("Rate rule R-B also matched but lost: lower priority (1 < 5 of R-A)"),
        "{text}"
    );
    assert!(text.contains("1.1x (M)"), "{text}");
    // 15% x 1.1 = 16.5% of 1000.
    assert_eq!(e.lines[0].line.amount, dec!(165.00));
    let Derivation::Seller(sd) = &e.lines[0].derivation else {
        panic!("not a seller line")
    };
    assert_eq!(sd.rules.applied(), vec!["R-A", "M"]);
}

#[test]
fn rules_parse_from_plan_json_and_bad_rules_are_named() {
    let text = r#"{"plan_id":"p","currency":"USD","seller_rates":{"gold":"0.10"},
      "rules":[
        {"rule_id":"EMEA-Q4-ACCEL","kind":"accelerator","scope":{"region":"EMEA","quarter":4},
         "accelerators":[{"attainment_from":"1.1","multiplier":"1.5"}],"priority":10},
        {"rule_id":"GOLD-SEC","kind":"rate","scope":{"tier":"gold","family":"security"},"rate":"0.12","priority":5},
        {"rule_id":"SEC-PUSH","kind":"rate_multiplier","scope":{"family":"security","from":"2026-07-01","to":"2026-09-30"},"multiplier":"1.2"},
        {"rule_id":"NA-SPIFF","kind":"spiff","scope":{"region":"NA","sku":"SEC-1002"},"amount_per_unit":"75",
         "from":"2026-10-01","to":"2026-12-31","eligible_tiers":["gold","platinum"]}]}"#;
    let p = crate::import::parse::plan(text).unwrap();
    assert_eq!(p.rules.len(), 4);
    assert_eq!(p.rules[0].priority, 10);
    assert_eq!(p.rules[1].action, RuleAction::Rate(dec!(0.12)));
    assert_eq!(p.rules[2].scope.field_count(), 3);
    // Round trip through the cache's serialisation.
    let back: Plan = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
    assert_eq!(back, p);
    let bad = text.replace(r#","rate":"0.12""#, "");
    let err = format!("{:?}", crate::import::parse::plan(&bad).unwrap_err());
    assert!(err.contains("GOLD-SEC") && err.contains("rate"), "{err}");
    // A v1 plan serialises without `rules`.
    let v1 = serde_json::to_string(&plan()).unwrap();
    assert!(!v1.contains("rules"));
}

fn rule_strategy() -> impl Strategy<Value = Rule> {
    (
        0usize..4,
        0i64..3,
        prop::option::of(prop::sample::select(vec!["EMEA", "NA"])),
        prop::option::of(prop::sample::select(vec![
            "security", "hardware", "services",
        ])),
        prop::option::of(1u32..5),
        1i64..300,
    )
        .prop_map(|(kind, priority, region, family, quarter, n)| {
            let action = match kind {
                0 => RuleAction::Rate(Decimal::new(n, 3)),
                1 => RuleAction::RateMultiplier(Decimal::new(n + 50, 2)),
                2 => RuleAction::Accelerator(vec![(Decimal::new(n, 2), dec!(1.7))]),
                _ => RuleAction::Spiff {
                    amount_per_unit: Decimal::new(n, 1),
                    from: None,
                    to: None,
                    eligible_tiers: None,
                },
            };
            Rule {
                rule_id: String::new(),
                scope: Scope {
                    region: region.map(str::to_string),
                    family: family.map(str::to_string),
                    quarter,
                    ..Scope::default()
                },
                priority,
                action,
            }
        })
}

proptest! {
    #[test]
    fn v2_result_does_not_depend_on_rule_or_row_order(
        rules in prop::collection::vec(rule_strategy(), 0..6),
        sales in prop::collection::vec((1i64..500_000, any::<bool>(), 0usize..3, 0u32..400), 1..20),
        seed in any::<u64>(),
    ) {
        let rules: Vec<Rule> = rules
            .into_iter()
            .enumerate()
            .map(|(i, mut r)| { r.rule_id = format!("R{i}"); r })
            .collect();
        let skus = ["SEC-1", "HW-1", "SVC-1"];
        let start = d("2026-04-01");
        let mut txs: Vec<Transaction> = sales
            .iter()
            .enumerate()
            .map(|(i, (a, emea, s, day))| {
                let p = if *emea { "E1" } else { "N1" };
                let closed = (start + chrono::Days::new(u64::from(*day))).to_string();
                sale(&format!("T{i:03}"), p, skus[*s], 2, Decimal::new(*a, 2), &closed)
            })
            .collect();
        let want = recalculate(&v2_dataset(rules.clone(), txs.clone()));
        let mut rng = seed;
        let mut shuffle = |n: usize| -> Vec<usize> {
            let mut ix: Vec<usize> = (0..n).collect();
            for i in (1..n).rev() {
                rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ix.swap(i, (rng >> 33) as usize % (i + 1));
            }
            ix
        };
        let rix = shuffle(rules.len());
        let shuffled_rules: Vec<Rule> = rix.iter().map(|&i| rules[i].clone()).collect();
        let tix = shuffle(txs.len());
        let shuffled_txs: Vec<Transaction> = tix.iter().map(|&i| txs[i].clone()).collect();
        txs = shuffled_txs;
        let ds = v2_dataset(shuffled_rules, txs);
        prop_assert_eq!(recalculate(&ds), want.clone());
        // The explained path agrees and each seller line's segments add up.
        let explained = recalculate_explained(&ds);
        for e in &explained {
            if let Derivation::Seller(sd) = &e.derivation {
                let sum: Decimal = sd.segments.iter().map(|s| s.commission).sum();
                prop_assert_eq!(sum, sd.uncapped);
                let span: Decimal = sd.segments.iter().map(|s| s.amount).sum();
                prop_assert_eq!(span, sd.after - sd.before);
            }
        }
        let lines: Vec<CommissionLine> = explained.into_iter().map(|e| e.line).collect();
        prop_assert_eq!(lines, want);
    }

    #[test]
    fn a_rate_rule_line_rounds_half_to_even_once(cents in 1i64..100_000_000) {
        // 1.25% on an amount in cents: the exact value has up to 6 decimals.
        let r = rule("R", scope(), 0, RuleAction::Rate(dec!(0.0125)));
        let ds = v2_dataset(
            vec![r],
            vec![sale("A", "N1", "HW-1", 1, Decimal::new(cents, 2), "2026-05-01")],
        );
        // In millionths: cents x 125; to cents, half to even.
        let v = cents * 125;
        let (q, r) = (v / 10_000, v % 10_000);
        let c = if r > 5_000 || (r == 5_000 && q % 2 == 1) { q + 1 } else { q };
        prop_assert_eq!(seller(&ds, "A"), Some(Decimal::new(c, 2)));
    }
}
