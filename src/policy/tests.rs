use std::collections::BTreeSet;

use rust_decimal_macros::dec;

use super::check::{check, rule_lines, Severity};
use super::precision::{measure, precise_kinds};
use super::*;
use crate::store::policy::{DecisionOnKinds, FlagFacts, PhaseRow};

fn facts(kinds: &[&str], confidence: f64, stake_cents: i64) -> FlagFacts {
    FlagFacts {
        transaction_id: "T1".into(),
        row_hash: "h1".into(),
        kinds: kinds.iter().map(|s| s.to_string()).collect(),
        score: 0.8,
        confidence,
        at_stake_minor: stake_cents,
        partner_id: "P1".into(),
        partner_name: "Acme".into(),
        tier_id: Some("silver".into()),
        high_value: false,
        status: "flagged".into(),
        currency: "USD".into(),
        top_reason: Some("why".into()),
        proposal_action: Some("adjust".into()),
    }
}

fn rule(action: RouteAction) -> Rule {
    Rule {
        name: None,
        kinds: Vec::new(),
        min_confidence: None,
        max_confidence: None,
        min_score: None,
        max_score: None,
        min_at_stake: None,
        max_at_stake: None,
        tiers: Vec::new(),
        high_value: None,
        action,
    }
}

#[test]
fn default_policy_routes_as_documented() {
    let rules = default_rules();
    let r = |k: &[&str], c: f64| route(&rules, &FlagView::of(&facts(k, c, 100))).action;
    assert_eq!(r(&["discount_policy"], 0.95), RouteAction::Hold);
    assert_eq!(r(&["duplicate"], 0.9), RouteAction::Hold);
    assert_eq!(r(&["deal_size_tier"], 0.95), RouteAction::Queue);
    assert_eq!(r(&["discount_policy"], 0.89), RouteAction::Queue);
    assert_eq!(r(&["deal_size_tier"], 0.59), RouteAction::Task);
    assert_eq!(r(&["backdated"], 0.6), RouteAction::Queue);
}

#[test]
fn first_match_wins_and_every_condition_must_hold() {
    let mut big = rule(RouteAction::Hold);
    big.min_at_stake = Some(dec!(1000));
    big.tiers = vec!["gold".into()];
    let mut hv = rule(RouteAction::Task);
    hv.high_value = Some(true);
    let rules = vec![big, hv, rule(RouteAction::Queue)];
    let mut f = facts(&["duplicate"], 0.7, 150_000);
    assert_eq!(route(&rules, &FlagView::of(&f)).action, RouteAction::Queue);
    f.tier_id = Some("gold".into());
    let m = route(&rules, &FlagView::of(&f));
    assert_eq!((m.rule, m.action), (Some(0), RouteAction::Hold));
    f.at_stake_minor = 99_999;
    assert_eq!(route(&rules, &FlagView::of(&f)).action, RouteAction::Queue);
    f.high_value = true;
    assert_eq!(route(&rules, &FlagView::of(&f)).action, RouteAction::Task);
}

#[test]
fn phases_decide_what_a_route_does() {
    let pre = vec!["discount_policy".to_string()];
    let precise: BTreeSet<String> = pre.iter().cloned().collect();
    let gate = AutoGate {
        pre_approved: &pre,
        precise: &precise,
    };
    let f = facts(&["discount_policy"], 0.95, 500);
    let m = |a| Match {
        rule: Some(0),
        label: "r".into(),
        action: a,
    };
    assert_eq!(
        effect(&m(RouteAction::Hold), Phase::Observe, &f, &gate).0,
        Effect::Alerted
    );
    assert_eq!(
        effect(&m(RouteAction::Task), Phase::Observe, &f, &gate).0,
        Effect::Alerted
    );
    assert_eq!(
        effect(&m(RouteAction::Hold), Phase::Review, &f, &gate).0,
        Effect::Held
    );
    assert_eq!(
        effect(&m(RouteAction::AutoAdjust), Phase::Review, &f, &gate).0,
        Effect::Queued
    );
    assert_eq!(
        effect(&m(RouteAction::AutoAdjust), Phase::Assist, &f, &gate).0,
        Effect::Adjusted
    );
    // Never for high-value partners, never for kinds below the gate or not pre-approved.
    let mut hv = f.clone();
    hv.high_value = true;
    assert_eq!(
        effect(&m(RouteAction::AutoAdjust), Phase::Assist, &hv, &gate),
        (Effect::Queued, Some(NoAuto::HighValue))
    );
    let dup = facts(&["discount_policy", "duplicate"], 0.95, 500);
    assert_eq!(
        effect(&m(RouteAction::AutoAdjust), Phase::Assist, &dup, &gate),
        (Effect::Queued, Some(NoAuto::NotPreApproved))
    );
    let none: BTreeSet<String> = BTreeSet::new();
    let strict = AutoGate {
        pre_approved: &pre,
        precise: &none,
    };
    assert_eq!(
        effect(&m(RouteAction::AutoAdjust), Phase::Assist, &f, &strict).1,
        Some(NoAuto::BelowPrecision("discount_policy".into()))
    );
}

#[test]
fn a_tier_phase_overrides_the_program_phase() {
    let row = |scope: &str, phase: &str| PhaseRow {
        scope: scope.into(),
        phase: phase.into(),
        changed_by: "mia".into(),
        changed_at: "2026-10-01T00:00:00Z".into(),
        reason: "r".into(),
    };
    assert_eq!(phase_for(&[], Some("gold")), Phase::Observe);
    let phases = vec![row("*", "review"), row("gold", "assist")];
    assert_eq!(phase_for(&phases, Some("gold")), Phase::Assist);
    assert_eq!(phase_for(&phases, Some("silver")), Phase::Review);
    assert_eq!(phase_for(&phases, None), Phase::Review);
}

fn decision(tx: &str, action: &str, actor: &str, kinds: &[&str]) -> DecisionOnKinds {
    DecisionOnKinds {
        decision_id: format!("d-{tx}-{action}"),
        transaction_id: tx.into(),
        action: action.into(),
        actor: actor.into(),
        created_at: "2026-10-01T00:00:00Z".into(),
        kinds: kinds.iter().map(|s| s.to_string()).collect(),
    }
}

#[test]
fn precision_counts_people_latest_verdict_per_transaction() {
    let ds = vec![
        decision("T1", "dismiss", "ana", &["duplicate"]),
        decision("T1", "approve", "ana", &["duplicate"]), // latest verdict on T1
        decision("T2", "override", "bo", &["duplicate", "discount_policy"]),
        decision("T3", "dismiss", "ana", &["duplicate"]),
        decision("T4", "escalate", "ana", &["duplicate"]), // not a verdict
        decision("T5", "approve", "policy", &["duplicate"]), // automation never counts
    ];
    let p = measure(&ds, 0.6, 3);
    let dup = p.iter().find(|k| k.kind == "duplicate").unwrap();
    assert_eq!((dup.confirmed, dup.dismissed, dup.decided), (2, 1, 3));
    assert!((dup.precision.unwrap() - 2.0 / 3.0).abs() < 1e-9);
    assert!(dup.passes);
    let disc = p.iter().find(|k| k.kind == "discount_policy").unwrap();
    assert_eq!(disc.decided, 1);
    assert!(!disc.passes, "one decision is below the minimum count");
    assert_eq!(
        precise_kinds(&p),
        ["duplicate".to_string()].into_iter().collect()
    );
    let strict = measure(&ds, 0.95, 3);
    assert!(precise_kinds(&strict).is_empty());
}

const POLICY_TOML: &str = r#"user = "ana"

[policy]
pre_approved = ["discount_policy"]

[[policy.rules]]
name = "violations"
kinds = ["discount_policy", "duplicate"]
min_confidence = 0.9
action = "hold"

[[policy.rules]]
name = "typo"
kinds = ["dupliate"]
action = "task"

[[policy.rules]]
name = "shadowed"
kinds = ["duplicate"]
min_confidence = 0.95
action = "queue"

[[policy.rules]]
name = "overlapping"
kinds = ["duplicate"]
min_confidence = 0.5
action = "task"

[[policy.rules]]
name = "empty"
min_score = 0.8
max_score = 0.3
action = "queue"

[[policy.rules]]
name = "rest"
action = "queue"
"#;

#[test]
fn check_names_unknown_kinds_unreachable_and_overlapping_rules_with_lines() {
    #[derive(serde::Deserialize)]
    struct File {
        policy: PolicyConfig,
    }
    let f: File = toml::from_str(POLICY_TOML).unwrap();
    assert_eq!(rule_lines(POLICY_TOML), vec![6, 12, 17, 23, 29, 35]);
    let findings = check(&f.policy, POLICY_TOML);
    let find = |rule: &str, sev: Severity| {
        findings
            .iter()
            .find(|x| x.rule.as_deref() == Some(rule) && x.severity == sev)
            .unwrap_or_else(|| panic!("no {sev:?} for {rule}: {findings:?}"))
    };
    let typo = find("typo", Severity::Error);
    assert_eq!(typo.line, Some(12));
    assert!(
        typo.message.contains("unknown kind `dupliate`"),
        "{}",
        typo.message
    );
    let sh = find("shadowed", Severity::Error);
    assert_eq!(sh.line, Some(17));
    assert!(sh.message.contains("unreachable") && sh.message.contains("violations (line 6)"));
    let ov = find("overlapping", Severity::Warning);
    assert_eq!(ov.line, Some(23));
    assert!(ov.message.contains("overlaps violations"), "{}", ov.message);
    let empty = find("empty", Severity::Error);
    assert!(empty.message.contains("never matches"));
    // The final catch-all is not an overlap warning, and the default policy is clean.
    assert!(!findings.iter().any(|x| x.rule.as_deref() == Some("rest")));
    assert!(check(&PolicyConfig::default(), "").is_empty());
}

#[test]
fn qa_sample_is_deterministic_and_near_its_share() {
    let n = 20_000;
    let hits = (0..n)
        .filter(|i| in_qa_sample(&format!("T{i:06}"), "h", 0.02))
        .count();
    assert!((300..500).contains(&hits), "{hits} of {n}");
    assert_eq!(in_qa_sample("T1", "h", 0.02), in_qa_sample("T1", "h", 0.02));
    assert!(!in_qa_sample("T1", "h", 0.0));
    assert!(in_qa_sample("T1", "h", 1.0));
}

#[test]
fn processing_status_follows_scoring_then_the_workflow() {
    let k = vec!["duplicate".to_string()];
    assert_eq!(processing_status(None, None), "pending_ai_review");
    assert_eq!(processing_status(Some(&[]), None), "ai_validated");
    assert_eq!(processing_status(Some(&k), None), "anomaly_flagged");
    assert_eq!(
        processing_status(Some(&k), Some("flagged")),
        "anomaly_flagged"
    );
    assert_eq!(
        processing_status(Some(&k), Some("awaiting_signoff")),
        "awaiting_signoff"
    );
}
