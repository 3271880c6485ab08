//! Plan v2: scoped rules (`docs/plan.md`, "Plan v2: scoped rules").
//!
//! A rule applies only to the sales its [`Scope`] matches. `rate` rules replace the seller
//! rate (one winner), `rate_multiplier` rules stack on the rate, `accelerator` rules
//! replace the plan's accelerator schedule (one winner), `spiff` rules pay SPIFF lines.
//! Winners are chosen by priority (highest first), then specificity (more scope fields),
//! then the smaller `rule_id` ([`pick`]).
//!
//! Pure: no IO, no clock.

use std::cmp::Ordering;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::model::{Accelerator, PartnerKind};

/// Where a rule applies: every field given must hold for the sale.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scope {
    /// The partner's region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The partner's tier on the close date (its id, or its name in any case).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    /// The product's family.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    /// The product's sku.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku: Option<String>,
    /// The partner's kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partner_kind: Option<PartnerKind>,
    /// The fiscal quarter number (1-4) of the close date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quarter: Option<u32>,
    /// First close date (inclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<NaiveDate>,
    /// Last close date (inclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<NaiveDate>,
}

/// What a sale looks like to a scope.
#[derive(Debug, Clone, Copy)]
pub struct SaleFacts<'a> {
    pub region: Option<&'a str>,
    pub partner_kind: Option<PartnerKind>,
    pub tier_id: &'a str,
    /// The tier's display name, when the program names it.
    pub tier_name: Option<&'a str>,
    pub family: Option<&'a str>,
    pub sku: &'a str,
    /// Fiscal quarter number (1-4).
    pub quarter: u32,
    pub closed_on: NaiveDate,
}

/// Whether a tier (by id or name) is the one named.
pub(crate) fn tier_is(named: &str, tier_id: &str, tier_name: Option<&str>) -> bool {
    named == tier_id
        || named.eq_ignore_ascii_case(tier_id)
        || tier_name.is_some_and(|n| named.eq_ignore_ascii_case(n))
}

impl Scope {
    /// How many fields are given (the rule's specificity).
    pub fn field_count(&self) -> usize {
        [
            self.region.is_some(),
            self.tier.is_some(),
            self.family.is_some(),
            self.sku.is_some(),
            self.partner_kind.is_some(),
            self.quarter.is_some(),
            self.from.is_some(),
            self.to.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count()
    }

    /// The first field that does not hold for the sale, as words (`None`: it matches).
    pub fn mismatch(&self, f: &SaleFacts<'_>) -> Option<String> {
        if let Some(r) = &self.region {
            if f.region != Some(r.as_str()) {
                return Some(format!("region is not {r}"));
            }
        }
        if let Some(t) = &self.tier {
            if !tier_is(t, f.tier_id, f.tier_name) {
                return Some(format!("tier is not {t}"));
            }
        }
        if let Some(fam) = &self.family {
            if f.family != Some(fam.as_str()) {
                return Some(format!("family is not {fam}"));
            }
        }
        if let Some(s) = &self.sku {
            if f.sku != s {
                return Some(format!("sku is not {s}"));
            }
        }
        if let Some(k) = self.partner_kind {
            if f.partner_kind != Some(k) {
                return Some(format!("partner is not a {}", k.as_str()));
            }
        }
        if let Some(q) = self.quarter {
            if f.quarter != q {
                return Some(format!("not in fiscal quarter {q}"));
            }
        }
        if self.from.is_some_and(|d| f.closed_on < d) || self.to.is_some_and(|d| f.closed_on > d) {
            return Some("closed outside the scope's dates".into());
        }
        None
    }

    /// Whether every field given holds for the sale.
    pub fn matches(&self, f: &SaleFacts<'_>) -> bool {
        self.mismatch(f).is_none()
    }

    /// The scope in words: `region EMEA, fiscal Q4` (`every sale` when empty).
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(r) = &self.region {
            parts.push(format!("region {r}"));
        }
        if let Some(t) = &self.tier {
            parts.push(format!("tier {t}"));
        }
        if let Some(f) = &self.family {
            parts.push(format!("family {f}"));
        }
        if let Some(s) = &self.sku {
            parts.push(format!("sku {s}"));
        }
        if let Some(k) = self.partner_kind {
            parts.push(format!("{}s", k.as_str()));
        }
        if let Some(q) = self.quarter {
            parts.push(format!("fiscal Q{q}"));
        }
        match (self.from, self.to) {
            (Some(a), Some(b)) => parts.push(format!("closed {a} to {b}")),
            (Some(a), None) => parts.push(format!("closed on or after {a}")),
            (None, Some(b)) => parts.push(format!("closed on or before {b}")),
            (None, None) => {}
        }
        if parts.is_empty() {
            "every sale".into()
        } else {
            parts.join(", ")
        }
    }
}

/// What a rule does.
#[derive(Debug, Clone, PartialEq)]
pub enum RuleAction {
    /// Replaces the seller rate.
    Rate(Decimal),
    /// Multiplies the seller rate (stacks).
    RateMultiplier(Decimal),
    /// Replaces the accelerator schedule: `(attainment_from, multiplier)` ascending.
    Accelerator(Vec<(Decimal, Decimal)>),
    /// Pays `amount_per_unit x quantity` to the seller.
    Spiff {
        amount_per_unit: Decimal,
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
        /// `None`: every tier.
        eligible_tiers: Option<Vec<String>>,
    },
}

/// One scoped rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawRule", into = "RawRule")]
pub struct Rule {
    pub rule_id: String,
    pub scope: Scope,
    /// Default 0; higher wins.
    pub priority: i64,
    pub action: RuleAction,
}

/// The kinds of rule, as written in `kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    Rate,
    RateMultiplier,
    Accelerator,
    Spiff,
}

impl RuleKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            RuleKind::Rate => "rate",
            RuleKind::RateMultiplier => "rate_multiplier",
            RuleKind::Accelerator => "accelerator",
            RuleKind::Spiff => "spiff",
        }
    }
}

impl Rule {
    pub fn kind(&self) -> RuleKind {
        match self.action {
            RuleAction::Rate(_) => RuleKind::Rate,
            RuleAction::RateMultiplier(_) => RuleKind::RateMultiplier,
            RuleAction::Accelerator(_) => RuleKind::Accelerator,
            RuleAction::Spiff { .. } => RuleKind::Spiff,
        }
    }
}

/// A rule as written in plan.json.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    rule_id: String,
    kind: RuleKind,
    #[serde(default)]
    scope: Scope,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    priority: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rate: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    multiplier: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    accelerators: Option<Vec<Accelerator>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    amount_per_unit: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    from: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    to: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    eligible_tiers: Option<Vec<String>>,
}

impl TryFrom<RawRule> for Rule {
    type Error = String;

    fn try_from(r: RawRule) -> Result<Rule, String> {
        let id = &r.rule_id;
        if id.trim().is_empty() {
            return Err("a rule has an empty rule_id".into());
        }
        let need = |v: Option<Decimal>, field: &str| {
            v.ok_or_else(|| format!("rule {id} ({}) needs `{field}`", r.kind.as_str()))
        };
        if let Some(q) = r.scope.quarter {
            if !(1..=4).contains(&q) {
                return Err(format!("rule {id}: scope.quarter must be 1-4, found {q}"));
            }
        }
        if let (Some(a), Some(b)) = (r.scope.from, r.scope.to) {
            if a > b {
                return Err(format!("rule {id}: scope.from {a} is after scope.to {b}"));
            }
        }
        let action = match r.kind {
            RuleKind::Rate => {
                let rate = need(r.rate, "rate")?;
                if rate < Decimal::ZERO {
                    return Err(format!("rule {id}: rate {rate} is negative"));
                }
                RuleAction::Rate(rate)
            }
            RuleKind::RateMultiplier => {
                let m = need(r.multiplier, "multiplier")?;
                if m < Decimal::ZERO {
                    return Err(format!("rule {id}: multiplier {m} is negative"));
                }
                RuleAction::RateMultiplier(m)
            }
            RuleKind::Accelerator => {
                let acc = r
                    .accelerators
                    .ok_or_else(|| format!("rule {id} (accelerator) needs `accelerators`"))?;
                let mut v: Vec<(Decimal, Decimal)> = acc
                    .iter()
                    .map(|a| (a.attainment_from, a.multiplier))
                    .collect();
                v.sort_by_key(|a| a.0);
                RuleAction::Accelerator(v)
            }
            RuleKind::Spiff => {
                let amount_per_unit = need(r.amount_per_unit, "amount_per_unit")?;
                if let (Some(a), Some(b)) = (r.from, r.to) {
                    if a > b {
                        return Err(format!("rule {id}: from {a} is after to {b}"));
                    }
                }
                RuleAction::Spiff {
                    amount_per_unit,
                    from: r.from,
                    to: r.to,
                    eligible_tiers: r.eligible_tiers,
                }
            }
        };
        Ok(Rule {
            rule_id: r.rule_id,
            scope: r.scope,
            priority: r.priority.unwrap_or(0),
            action,
        })
    }
}

impl From<Rule> for RawRule {
    fn from(r: Rule) -> RawRule {
        let kind = r.kind();
        let mut raw = RawRule {
            rule_id: r.rule_id,
            kind,
            scope: r.scope,
            priority: (r.priority != 0).then_some(r.priority),
            rate: None,
            multiplier: None,
            accelerators: None,
            amount_per_unit: None,
            from: None,
            to: None,
            eligible_tiers: None,
        };
        match r.action {
            RuleAction::Rate(x) => raw.rate = Some(x),
            RuleAction::RateMultiplier(x) => raw.multiplier = Some(x),
            RuleAction::Accelerator(v) => {
                raw.accelerators = Some(
                    v.into_iter()
                        .map(|(attainment_from, multiplier)| Accelerator {
                            attainment_from,
                            multiplier,
                        })
                        .collect(),
                )
            }
            RuleAction::Spiff {
                amount_per_unit,
                from,
                to,
                eligible_tiers,
            } => {
                raw.amount_per_unit = Some(amount_per_unit);
                raw.from = from;
                raw.to = to;
                raw.eligible_tiers = eligible_tiers;
            }
        }
        raw
    }
}

/// Parses one rule from JSON text (a draft file), naming what is wrong.
pub fn parse_rule(text: &str) -> Result<Rule, String> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
    // A draft file is `{"rule": {...}, "paraphrase": ...}` or the rule itself.
    let v = match v.get("rule") {
        Some(r) => r.clone(),
        None => v,
    };
    serde_json::from_value(v).map_err(|e| e.to_string())
}

/// Checks that rule ids are unique.
pub fn check_unique_ids(rules: &[Rule]) -> Result<(), String> {
    let mut ids: Vec<&str> = rules.iter().map(|r| r.rule_id.as_str()).collect();
    ids.sort_unstable();
    match ids.windows(2).find(|w| w[0] == w[1]) {
        Some(w) => Err(format!("rule_id {} appears twice", w[0])),
        None => Ok(()),
    }
}

/// Orders two competing rules: the winner first (priority desc, scope fields desc,
/// rule_id asc).
fn precedence(a: &Rule, b: &Rule) -> Ordering {
    b.priority
        .cmp(&a.priority)
        .then(b.scope.field_count().cmp(&a.scope.field_count()))
        .then(a.rule_id.cmp(&b.rule_id))
}

/// Why `loser` lost to `winner`, in words.
pub fn why_lost(loser: &Rule, winner: &Rule) -> String {
    let (lp, wp) = (loser.priority, winner.priority);
    let (lf, wf) = (loser.scope.field_count(), winner.scope.field_count());
    if lp != wp {
        format!("lower priority ({lp} < {wp} of {})", winner.rule_id)
    } else if lf != wf {
        format!(
            "same priority {lp}, fewer scope fields ({lf} < {wf} of {})",
            winner.rule_id
        )
    } else {
        format!(
            "same priority {lp} and {lf} scope fields; {} sorts first",
            winner.rule_id
        )
    }
}

/// The winner among matching rules and each loser with why it lost.
pub fn pick<'r>(matching: &[&'r Rule]) -> (Option<&'r Rule>, Vec<(&'r Rule, String)>) {
    let mut v: Vec<&'r Rule> = matching.to_vec();
    v.sort_by(|a, b| precedence(a, b));
    let Some((&w, rest)) = v.split_first() else {
        return (None, Vec::new());
    };
    let lost = rest.iter().map(|&l| (l, why_lost(l, w))).collect();
    (Some(w), lost)
}

/// Which rules shaped a seller line (for explanations and the rule report).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuleTrace {
    /// The rate rule that set the rate.
    pub rate_rule: Option<(String, Decimal)>,
    /// Matching rate rules that lost, with why.
    pub rate_lost: Vec<(String, String)>,
    /// Every matching rate multiplier, in rule_id order.
    pub multipliers: Vec<(String, Decimal)>,
    /// The accelerator rule whose schedule applied.
    pub accelerator_rule: Option<String>,
    /// Matching accelerator rules that lost, with why.
    pub accelerator_lost: Vec<(String, String)>,
}

impl RuleTrace {
    /// Whether any rule touched the line.
    pub fn is_empty(&self) -> bool {
        self.rate_rule.is_none()
            && self.multipliers.is_empty()
            && self.accelerator_rule.is_none()
            && self.rate_lost.is_empty()
            && self.accelerator_lost.is_empty()
    }

    /// The ids of the rules that applied.
    pub fn applied(&self) -> Vec<&str> {
        let mut v = Vec::new();
        if let Some((id, _)) = &self.rate_rule {
            v.push(id.as_str());
        }
        v.extend(self.multipliers.iter().map(|(id, _)| id.as_str()));
        if let Some(id) = &self.accelerator_rule {
            v.push(id.as_str());
        }
        v
    }
}

/// A plan's rules split by kind, in rule_id order (so results do not depend on the order
/// rules are written in).
#[derive(Debug, Default)]
pub(crate) struct RuleSet<'a> {
    pub rates: Vec<&'a Rule>,
    pub multipliers: Vec<&'a Rule>,
    pub accelerators: Vec<&'a Rule>,
    pub spiffs: Vec<&'a Rule>,
}

impl<'a> RuleSet<'a> {
    pub fn new(rules: &'a [Rule]) -> RuleSet<'a> {
        let mut s = RuleSet::default();
        for r in rules {
            match r.action {
                RuleAction::Rate(_) => s.rates.push(r),
                RuleAction::RateMultiplier(_) => s.multipliers.push(r),
                RuleAction::Accelerator(_) => s.accelerators.push(r),
                RuleAction::Spiff { .. } => s.spiffs.push(r),
            }
        }
        for v in [
            &mut s.rates,
            &mut s.multipliers,
            &mut s.accelerators,
            &mut s.spiffs,
        ] {
            v.sort_by(|a, b| a.rule_id.cmp(&b.rule_id));
        }
        s
    }

    /// Whether the seller line can be touched by a rule.
    pub fn touches_seller(&self) -> bool {
        !(self.rates.is_empty() && self.multipliers.is_empty() && self.accelerators.is_empty())
    }
}

/// The matching rules of a list.
pub(crate) fn matching<'a>(rules: &[&'a Rule], f: &SaleFacts<'_>) -> Vec<&'a Rule> {
    rules
        .iter()
        .copied()
        .filter(|r| r.scope.matches(f))
        .collect()
}
