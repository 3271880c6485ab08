//! Governed automation: the routing policy (`[policy]` in config.toml), rollout phases,
//! the precision gate, and what routing a flag does in each phase.
//!
//! The pure part lives here and in [`check`] and [`precision`]: a flag's facts and the
//! policy in, a [`Route`] out, no SQLite and no clock. [`apply`] writes the outcome
//! (routes, holds, the policy actor's decisions, alerts) through the store and the
//! workflow.

use std::collections::BTreeSet;
use std::fmt;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::store::policy::FlagFacts;

pub mod apply;
pub mod check;
pub mod precision;

/// What a matching rule does with a flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteAction {
    /// The exception queue (the default).
    Queue,
    /// A task for a channel-ops manager (an alert where the PRM has no task object).
    Task,
    /// The commission goes into the `pending_review` accrual bucket; the partner is told.
    Hold,
    /// The proposed adjustment is made by the `policy` actor (assist phase only).
    AutoAdjust,
}

impl RouteAction {
    pub fn as_str(self) -> &'static str {
        match self {
            RouteAction::Queue => "queue",
            RouteAction::Task => "task",
            RouteAction::Hold => "hold",
            RouteAction::AutoAdjust => "auto_adjust",
        }
    }
}

impl fmt::Display for RouteAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Rollout phase of a program (or of one partner tier).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Detect and alert only; nothing is held or changed.
    Observe,
    /// Flags are routed; holds are placed; adjustments need a person.
    Review,
    /// Pre-approved kinds are adjusted automatically (audited, reversible).
    Assist,
}

impl Phase {
    pub const ALL: [Phase; 3] = [Phase::Observe, Phase::Review, Phase::Assist];

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Observe => "observe",
            Phase::Review => "review",
            Phase::Assist => "assist",
        }
    }

    pub fn parse(s: &str) -> Option<Phase> {
        let t = s.trim().to_ascii_lowercase();
        Phase::ALL.into_iter().find(|p| p.as_str() == t)
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One routing rule: every condition given must hold (lower bounds inclusive, upper
/// bounds exclusive); a rule with no condition matches every flag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The flag has at least one of these kinds (empty: any kind).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_confidence: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_confidence: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_score: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_score: Option<f64>,
    /// Amount at stake, in the program's currency (decimal string).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_at_stake: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_at_stake: Option<Decimal>,
    /// The partner's tier on the close date is one of these (empty: any tier).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tiers: Vec<String>,
    /// Only high-value partners (`true`) or only the others (`false`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub high_value: Option<bool>,
    pub action: RouteAction,
}

impl Rule {
    /// The rule's name, or `rule N` (1-based) when it has none.
    pub fn label(&self, index: usize) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("rule {}", index + 1))
    }

    /// Whether the rule has no condition at all (it matches every flag).
    pub fn is_catch_all(&self) -> bool {
        self.kinds.is_empty()
            && self.min_confidence.is_none()
            && self.max_confidence.is_none()
            && self.min_score.is_none()
            && self.max_score.is_none()
            && self.min_at_stake.is_none()
            && self.max_at_stake.is_none()
            && self.tiers.is_empty()
            && self.high_value.is_none()
    }

    /// Whether the rule matches a flag.
    pub fn matches(&self, f: &FlagView<'_>) -> bool {
        (self.kinds.is_empty() || f.kinds.iter().any(|k| self.kinds.contains(k)))
            && self.min_confidence.is_none_or(|m| f.confidence >= m)
            && self.max_confidence.is_none_or(|m| f.confidence < m)
            && self.min_score.is_none_or(|m| f.score >= m)
            && self.max_score.is_none_or(|m| f.score < m)
            && self.min_at_stake.is_none_or(|m| f.at_stake >= m)
            && self.max_at_stake.is_none_or(|m| f.at_stake < m)
            && (self.tiers.is_empty() || f.tier.is_some_and(|t| self.tiers.iter().any(|x| x == t)))
            && self.high_value.is_none_or(|h| h == f.high_value)
    }
}

/// `[policy]` in config.toml. Every field is optional.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyConfig {
    /// Ordered rules, first match wins; none given: [`default_rules`].
    pub rules: Vec<Rule>,
    /// Kinds `auto_adjust` may act on (the pre-approved rule classes).
    pub pre_approved: Vec<String>,
    /// Share (0..1) of validated transactions of high-value partners sampled into the queue.
    pub qa_sample: f64,
    /// The precision gate for `assist`: at least this share confirmed …
    pub min_precision: f64,
    /// … over at least this many decisions of the kind.
    pub min_decisions: u32,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            rules: Vec::new(),
            pre_approved: Vec::new(),
            qa_sample: 0.02,
            min_precision: 0.95,
            min_decisions: 50,
        }
    }
}

/// The policy in force without a `[policy]` section (or with no rules in it):
/// confidence ≥ 0.9 on the rule-violation kinds → hold; confidence < 0.6 → task; the rest
/// → queue.
pub fn default_rules() -> Vec<Rule> {
    let none = Rule {
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
        action: RouteAction::Queue,
    };
    vec![
        Rule {
            name: Some("confident violations".into()),
            kinds: [
                "discount_policy",
                "uncertified_product",
                "duplicate",
                "registration_mismatch",
                "commission_variance",
            ]
            .map(String::from)
            .to_vec(),
            min_confidence: Some(0.9),
            action: RouteAction::Hold,
            ..none.clone()
        },
        Rule {
            name: Some("low confidence".into()),
            max_confidence: Some(0.6),
            action: RouteAction::Task,
            ..none.clone()
        },
        Rule {
            name: Some("everything else".into()),
            ..none
        },
    ]
}

impl PolicyConfig {
    /// The rules in force (the configured ones, or the default policy).
    pub fn effective_rules(&self) -> Vec<Rule> {
        if self.rules.is_empty() {
            default_rules()
        } else {
            self.rules.clone()
        }
    }
}

/// Kinds tierdesk knows (the detectors', the data checks', the QA sample).
pub fn known_kinds() -> BTreeSet<String> {
    let mut k: BTreeSet<String> = crate::model::AnomalyKind::every()
        .map(|k| k.as_str().to_string())
        .collect();
    for extra in ["data_integrity", "qa_sample"] {
        k.insert(extra.to_string());
    }
    k
}

/// A flag as a rule sees it (money as Decimal in the program's currency).
#[derive(Debug, Clone)]
pub struct FlagView<'a> {
    pub kinds: &'a [String],
    pub confidence: f64,
    pub score: f64,
    pub at_stake: Decimal,
    pub tier: Option<&'a str>,
    pub high_value: bool,
}

impl<'a> FlagView<'a> {
    pub fn of(f: &'a FlagFacts) -> FlagView<'a> {
        FlagView {
            kinds: &f.kinds,
            confidence: f.confidence,
            score: f.score,
            at_stake: minor_to_decimal(f.at_stake_minor, &f.currency),
            tier: f.tier_id.as_deref(),
            high_value: f.high_value,
        }
    }
}

/// Minor units back to an amount in the currency.
pub fn minor_to_decimal(minor: i64, currency: &str) -> Decimal {
    Decimal::new(minor, crate::money::minor_digits(currency))
}

/// Which rule a flag falls under: its index (None: no rule matched, the queue) and action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    pub rule: Option<usize>,
    pub label: String,
    pub action: RouteAction,
}

/// First match wins; no match is the queue.
pub fn route(rules: &[Rule], f: &FlagView<'_>) -> Match {
    for (i, r) in rules.iter().enumerate() {
        if r.matches(f) {
            return Match {
                rule: Some(i),
                label: r.label(i),
                action: r.action,
            };
        }
    }
    Match {
        rule: None,
        label: "default".into(),
        action: RouteAction::Queue,
    }
}

/// What routing does with a flag in a phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// Left in the queue for a person.
    Queued,
    /// A task (and an alert) for a channel-ops manager.
    Task,
    /// Observe phase: alerted, nothing held or changed.
    Alerted,
    /// The commission is held in the `pending_review` accrual bucket.
    Held,
    /// Adjusted by the policy actor.
    Adjusted,
}

impl Effect {
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Queued => "queued",
            Effect::Task => "task",
            Effect::Alerted => "alerted",
            Effect::Held => "held",
            Effect::Adjusted => "adjusted",
        }
    }
}

/// Why an `auto_adjust` route may not adjust on its own (it goes to the queue instead).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoAuto {
    NotAssist,
    HighValue,
    NotPreApproved,
    BelowPrecision(String),
    NoProposal,
    AlreadyDecided,
}

/// Facts about the cache that decide whether an automatic adjustment may go ahead.
pub struct AutoGate<'a> {
    pub pre_approved: &'a [String],
    /// Kinds whose measured precision passes the gate.
    pub precise: &'a BTreeSet<String>,
}

/// What a matched route does in `phase` (pure).
pub fn effect(
    m: &Match,
    phase: Phase,
    f: &FlagFacts,
    gate: &AutoGate<'_>,
) -> (Effect, Option<NoAuto>) {
    match (phase, m.action) {
        (Phase::Observe, RouteAction::Task | RouteAction::Hold) => (Effect::Alerted, None),
        (Phase::Observe, RouteAction::AutoAdjust) => (Effect::Queued, Some(NoAuto::NotAssist)),
        (_, RouteAction::Queue) => (Effect::Queued, None),
        (_, RouteAction::Task) => (Effect::Task, None),
        (_, RouteAction::Hold) => (Effect::Held, None),
        (Phase::Review, RouteAction::AutoAdjust) => (Effect::Queued, Some(NoAuto::NotAssist)),
        (Phase::Assist, RouteAction::AutoAdjust) => match auto_allowed(f, gate) {
            Ok(()) => (Effect::Adjusted, None),
            Err(why) => (Effect::Queued, Some(why)),
        },
    }
}

fn auto_allowed(f: &FlagFacts, gate: &AutoGate<'_>) -> Result<(), NoAuto> {
    if f.high_value {
        return Err(NoAuto::HighValue);
    }
    if f.status != "flagged" {
        return Err(NoAuto::AlreadyDecided);
    }
    if f.proposal_action.is_none() {
        return Err(NoAuto::NoProposal);
    }
    // Every kind of the flag must be pre-approved and precise enough.
    for k in &f.kinds {
        if !gate.pre_approved.contains(k) {
            return Err(NoAuto::NotPreApproved);
        }
        if !gate.precise.contains(k) {
            return Err(NoAuto::BelowPrecision(k.clone()));
        }
    }
    Ok(())
}

/// The phase in force for a tier: its own, else the program's, else `observe`.
pub fn phase_for(phases: &[crate::store::policy::PhaseRow], tier: Option<&str>) -> Phase {
    let find = |scope: &str| {
        phases
            .iter()
            .find(|p| p.scope == scope)
            .and_then(|p| Phase::parse(&p.phase))
    };
    tier.and_then(find)
        .or_else(|| find("*"))
        .unwrap_or(Phase::Observe)
}

/// A transaction's processing status: `pending_ai_review` until it is scored (no kinds
/// known), `ai_validated` when scored clean, `anomaly_flagged` when flagged and nobody
/// has acted, then the workflow state of its case.
pub fn processing_status<'a>(kinds: Option<&[String]>, case_state: Option<&'a str>) -> &'a str {
    match (kinds, case_state) {
        (None, _) => "pending_ai_review",
        (Some(_), Some(s)) if s != "flagged" => s,
        // A QA sample is a validated transaction drawn for a person to look at.
        (Some(k), _) if k.iter().all(|k| k == "qa_sample") => "ai_validated",
        (Some(_), _) => "anomaly_flagged",
    }
}

/// Whether a validated transaction falls into the QA sample (deterministic: the same
/// transaction version is always in or out).
pub fn in_qa_sample(tx_id: &str, row_hash: &str, share: f64) -> bool {
    if share <= 0.0 {
        return false;
    }
    use sha2::{Digest, Sha256};
    let h = Sha256::digest(format!("qa:{tx_id}:{row_hash}").as_bytes());
    let v = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
    (f64::from(v) / f64::from(u32::MAX)) < share
}

#[cfg(test)]
mod tests;
