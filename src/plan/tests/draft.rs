//! `plan draft`: phrasings that must give the right rule, sentences that must be refused.

use rust_decimal_macros::dec;

use crate::plan::draft::{draft, Vocabulary};
use crate::plan::v2::{RuleAction, Scope};

fn vocab() -> Vocabulary {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    Vocabulary {
        regions: s(&["APAC", "EMEA", "NA"]),
        tiers: ["silver", "gold", "platinum"]
            .iter()
            .map(|t| (t.to_string(), t[..1].to_uppercase() + &t[1..]))
            .collect(),
        families: s(&["networking", "security", "services"]),
        skus: s(&["NET-2001", "SEC-1002"]),
    }
}

fn d(s: &str) -> chrono::NaiveDate {
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn sc() -> Scope {
    Scope::default()
}

#[test]
fn common_phrasings_give_the_right_rule() {
    use crate::model::PartnerKind::*;
    use RuleAction::*;
    let region = |r: &str| Some(r.to_string());
    let cases: Vec<(&str, Scope, RuleAction, i64)> = vec![
        (
            "accelerator of 1.5x for Q4 overachievement in EMEA above 110% of quota",
            Scope { region: region("EMEA"), quarter: Some(4), ..sc() },
            Accelerator(vec![(dec!(1.1), dec!(1.5))]),
            0,
        ),
        (
            "1.5x accelerator above 100% of quota",
            sc(),
            Accelerator(vec![(dec!(1.0), dec!(1.5))]),
            0,
        ),
        (
            "accelerator 2x above quota for gold partners",
            Scope { tier: Some("gold".into()), ..sc() },
            Accelerator(vec![(dec!(1), dec!(2))]),
            0,
        ),
        (
            "accelerators of 1.5x above 100% of quota and 2x above 125% of quota",
            sc(),
            Accelerator(vec![(dec!(1.0), dec!(1.5)), (dec!(1.25), dec!(2))]),
            0,
        ),
        (
            "accelerator 3x above 150% of quota for distributors",
            Scope { partner_kind: Some(Distributor), ..sc() },
            Accelerator(vec![(dec!(1.5), dec!(3))]),
            0,
        ),
        (
            "in APAC, accelerate at 1.3x from 120% of quota in the third quarter",
            Scope { region: region("APAC"), quarter: Some(3), ..sc() },
            Accelerator(vec![(dec!(1.2), dec!(1.3))]),
            0,
        ),
        (
            "quota attainment above 105%: 1.4x accelerator for Gold",
            Scope { tier: Some("gold".into()), ..sc() },
            Accelerator(vec![(dec!(1.05), dec!(1.4))]),
            0,
        ),
        (
            "pay 12% commission for gold partners on security",
            Scope { tier: Some("gold".into()), family: Some("security".into()), ..sc() },
            Rate(dec!(0.12)),
            0,
        ),
        (
            "commission rate of 9% on services",
            Scope { family: Some("services".into()), ..sc() },
            Rate(dec!(0.09)),
            0,
        ),
        (
            "rate of 15% for distributors in NA",
            Scope { region: region("NA"), partner_kind: Some(Distributor), ..sc() },
            Rate(dec!(0.15)),
            0,
        ),
        (
            "12% rate for platinum resellers in APAC with priority 10",
            Scope {
                region: region("APAC"),
                tier: Some("platinum".into()),
                partner_kind: Some(Reseller),
                ..sc()
            },
            Rate(dec!(0.12)),
            10,
        ),
        (
            "pay a rate of 8.5% for silver partners until 2026-06-30",
            Scope { tier: Some("silver".into()), to: Some(d("2026-06-30")), ..sc() },
            Rate(dec!(0.085)),
            0,
        ),
        (
            "multiply the rate by 1.2 for security from 2026-07-01 to 2026-09-30",
            Scope {
                family: Some("security".into()),
                from: Some(d("2026-07-01")),
                to: Some(d("2026-09-30")),
                ..sc()
            },
            RateMultiplier(dec!(1.2)),
            0,
        ),
        (
            "boost rates by 20% on networking in Q3",
            Scope { family: Some("networking".into()), quarter: Some(3), ..sc() },
            RateMultiplier(dec!(1.2)),
            0,
        ),
        (
            "1.25x rate multiplier for EMEA",
            Scope { region: region("EMEA"), ..sc() },
            RateMultiplier(dec!(1.25)),
            0,
        ),
        (
            "rate multiplier of 1.1 for SEC-1002",
            Scope { sku: Some("SEC-1002".into()), ..sc() },
            RateMultiplier(dec!(1.1)),
            0,
        ),
        (
            "2x rate multiplier for security in Q4 priority 3",
            Scope { family: Some("security".into()), quarter: Some(4), ..sc() },
            RateMultiplier(dec!(2)),
            3,
        ),
        (
            "SPIFF of $75 per unit on SEC-1002 in NA from 2026-10-01 to 2026-12-31 for gold and platinum partners",
            Scope { region: region("NA"), sku: Some("SEC-1002".into()), ..sc() },
            Spiff {
                amount_per_unit: dec!(75),
                from: Some(d("2026-10-01")),
                to: Some(d("2026-12-31")),
                eligible_tiers: Some(vec!["gold".into(), "platinum".into()]),
            },
            0,
        ),
        (
            "spiff $50 per unit for networking in Q2",
            Scope { family: Some("networking".into()), quarter: Some(2), ..sc() },
            Spiff { amount_per_unit: dec!(50), from: None, to: None, eligible_tiers: None },
            0,
        ),
        (
            "bonus of 100 USD per unit on NET-2001 for silver partners",
            Scope { sku: Some("NET-2001".into()), ..sc() },
            Spiff {
                amount_per_unit: dec!(100),
                from: None,
                to: None,
                eligible_tiers: Some(vec!["silver".into()]),
            },
            0,
        ),
        (
            "spiff of 25 per seat for services between 2026-01-01 and 2026-03-31",
            Scope { family: Some("services".into()), ..sc() },
            Spiff {
                amount_per_unit: dec!(25),
                from: Some(d("2026-01-01")),
                to: Some(d("2026-03-31")),
                eligible_tiers: None,
            },
            0,
        ),
        (
            "SPIFF: €40 each unit sold by EMEA resellers in the fourth quarter",
            Scope { region: region("EMEA"), partner_kind: Some(Reseller), quarter: Some(4), ..sc() },
            Spiff { amount_per_unit: dec!(40), from: None, to: None, eligible_tiers: None },
            0,
        ),
    ];
    assert!(cases.len() >= 20);
    for (sentence, scope, action, priority) in cases {
        let got = draft(sentence, &vocab()).unwrap_or_else(|r| panic!("{sentence}: {r:?}"));
        assert_eq!(got.rule.scope, scope, "{sentence}");
        assert_eq!(got.rule.action, action, "{sentence}");
        assert_eq!(got.rule.priority, priority, "{sentence}");
        assert!(!got.paraphrase.is_empty());
        // The draft is a valid v2 rule: it round-trips through the plan schema.
        let json = serde_json::to_string(&got.rule).unwrap();
        assert_eq!(
            crate::plan::v2::parse_rule(&json).unwrap(),
            got.rule,
            "{sentence}"
        );
    }
}

#[test]
fn a_named_rule_keeps_its_id_and_the_paraphrase_says_what_it_does() {
    let got = draft(
        "accelerator of 1.5x above 110% of quota in EMEA called emea-push",
        &vocab(),
    )
    .unwrap();
    assert_eq!(got.rule.rule_id, "EMEA-PUSH");
    assert_eq!(
        got.paraphrase,
        "Accelerator for region EMEA: 1.5x from 110% of quota (attainment counts all of the partner's sales in the quarter) [EMEA-PUSH]."
    );
    let got = draft(
        "accelerator of 1.5x for Q4 overachievement in EMEA above 110% of quota",
        &vocab(),
    )
    .unwrap();
    assert_eq!(got.rule.rule_id, "ACCEL-EMEA-Q4");
}

#[test]
fn sentences_it_must_not_guess_are_refused_naming_the_part() {
    let cases: Vec<(&str, &str, &str)> = vec![
        (
            "accelerator of 1.5x above 110% of quota in Europe",
            "ambiguous region",
            "Europe",
        ),
        (
            "rate of 12% for the Americas",
            "ambiguous region",
            "Americas",
        ),
        (
            "accelerator of 1.5x above 110%",
            "percentage without a base",
            "110%",
        ),
        ("bonus of 10% for EMEA", "percentage without a base", "10%"),
        (
            "accelerator of 1.5x above 110% of quota and above 120% of quota",
            "contradictory thresholds",
            "110% of quota and 120% of quota",
        ),
        (
            "accelerator 1.5x above 110% of quota and 2x above 100% of quota",
            "contradictory thresholds",
            "multipliers",
        ),
        (
            "accelerator of 1.5x below 90% of quota",
            "below",
            "below 90%",
        ),
        (
            "spiff for SEC-1002 in NA",
            "without an amount per unit",
            "spiff",
        ),
        ("$500 bonus for gold partners", "not per unit", "$500"),
        (
            "accelerator of 1.5x in EMEA",
            "without a threshold",
            "accelerator",
        ),
        ("rate of 12% in EMEA and NA", "one region", "EMEA, NA"),
        (
            "multiply the rate by 1.2 for security from 2026-09-30 to 2026-07-01",
            "contradictory dates",
            "2026-09-30 to 2026-07-01",
        ),
        (
            "pay 12% rate and $50 per unit spiff on security",
            "more than one rule",
            "spiff and rate",
        ),
        ("rate of 12% for SEC-9999", "unknown sku", "SEC-9999"),
        (
            "give gold partners something nice",
            "could not be read",
            "something nice",
        ),
        (
            "accelerator of 1.5x above 110% of quota in LATAM",
            "could not be read",
            "LATAM",
        ),
        (
            "spiff of $50 per unit on security in July",
            "could not be read",
            "July",
        ),
    ];
    assert!(cases.len() >= 10);
    for (sentence, why, part) in cases {
        let r = match draft(sentence, &vocab()) {
            Ok(d) => panic!("{sentence}: drafted {:?}", d.rule),
            Err(r) => r,
        };
        assert!(r.refused.contains(why), "{sentence}: {r:?}");
        assert_eq!(r.unreadable, part, "{sentence}: {r:?}");
    }
}
