//! What-if: the program recalculated under a changed plan, against the plan in use.
//!
//! Pure: two plans and a data set in, per-partner (and per-role, per-tier) differences
//! out. Each side is the sum of the recalculated lines paid to a partner (rounded lines,
//! as the PRM would pay them), optionally restricted to one period (`YYYY-Qn`).

use std::collections::{BTreeMap, BTreeSet};

use rust_decimal::Decimal;

use super::v2::{parse_rule, Rule};
use super::{recalculate_explained, Derivation, ExplainedLine};
use crate::model::{Dataset, Plan};

/// One partner's payout before and after the change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerDiff {
    pub partner_id: String,
    pub before: Decimal,
    pub after: Decimal,
    pub difference: Decimal,
}

/// Before, after and difference of a group (a role, a tier, the total).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Totals {
    pub before: Decimal,
    pub after: Decimal,
    pub difference: Decimal,
}

impl Totals {
    fn add(&mut self, before: Decimal, after: Decimal) {
        self.before += before;
        self.after += after;
        self.difference = self.after - self.before;
    }
}

/// The whole comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct WhatIf {
    /// The period compared (`None`: every period).
    pub period: Option<String>,
    /// Every partner paid on either side, by partner id.
    pub partners: Vec<PartnerDiff>,
    pub total: Totals,
    /// By line role (seller, override, spiff, clawback).
    pub by_role: BTreeMap<String, Totals>,
    /// By the seller's tier on the sale (lines without a seller tier: `-`).
    pub by_tier: BTreeMap<String, Totals>,
    /// By the scoped rule or plan element that shaped the lines (see [`shapers`]).
    pub by_rule: BTreeMap<String, Totals>,
    /// Partners with an accelerated seller line, before and after.
    pub accelerator_reach: (usize, usize),
}

impl WhatIf {
    /// Partners whose payout moves most (largest absolute difference first; ties by id).
    pub fn top_movers(&self, n: usize) -> Vec<&PartnerDiff> {
        let mut v: Vec<&PartnerDiff> = self
            .partners
            .iter()
            .filter(|p| !p.difference.is_zero())
            .collect();
        v.sort_by(|a, b| {
            b.difference
                .abs()
                .cmp(&a.difference.abs())
                .then(a.partner_id.cmp(&b.partner_id))
        });
        v.truncate(n);
        v
    }
}

/// A change to the plan: a rule added (or replacing the rule of the same id), or a field set.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Rule(Rule),
    /// `key=value`: `override_rate`, `per_transaction_cap`, `clawback_window_days`,
    /// `seller_rates.TIER`, `family_multipliers.FAMILY`.
    Set(String, String),
}

/// Errors of a change that cannot be applied.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ChangeError {
    #[error("--set {0}: expected KEY=VALUE")]
    NotKeyValue(String),
    #[error("--set {key}: '{value}' is not a decimal number")]
    NotDecimal { key: String, value: String },
    #[error("--set {key}: '{value}' is not a whole number of days")]
    NotDays { key: String, value: String },
    #[error("--set {0}: unknown key (override_rate, per_transaction_cap, clawback_window_days, seller_rates.TIER, family_multipliers.FAMILY)")]
    UnknownKey(String),
    #[error("rule file: {0}")]
    Rule(String),
}

/// Parses `KEY=VALUE`.
pub fn parse_set(s: &str) -> Result<Change, ChangeError> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| ChangeError::NotKeyValue(s.to_string()))?;
    Ok(Change::Set(k.trim().to_string(), v.trim().to_string()))
}

/// Parses a rule file (a bare rule or a `plan draft --format json` output).
pub fn parse_rule_change(text: &str) -> Result<Change, ChangeError> {
    parse_rule(text)
        .map(Change::Rule)
        .map_err(ChangeError::Rule)
}

/// The plan with a change applied.
pub fn apply_change(plan: &Plan, change: &Change) -> Result<Plan, ChangeError> {
    let mut p = plan.clone();
    match change {
        Change::Rule(r) => {
            p.rules.retain(|x| x.rule_id != r.rule_id);
            p.rules.push(r.clone());
        }
        Change::Set(key, value) => {
            let dec = || {
                value
                    .parse::<Decimal>()
                    .map_err(|_| ChangeError::NotDecimal {
                        key: key.clone(),
                        value: value.clone(),
                    })
            };
            match key.as_str() {
                "override_rate" => p.override_rate = Some(dec()?),
                "per_transaction_cap" => p.per_transaction_cap = Some(dec()?),
                "clawback_window_days" => {
                    p.clawback_window_days =
                        Some(value.parse().map_err(|_| ChangeError::NotDays {
                            key: key.clone(),
                            value: value.clone(),
                        })?)
                }
                k => {
                    if let Some(tier) = k.strip_prefix("seller_rates.") {
                        p.seller_rates.insert(tier.to_string(), dec()?);
                    } else if let Some(f) = k.strip_prefix("family_multipliers.") {
                        p.family_multipliers.insert(f.to_string(), dec()?);
                    } else {
                        return Err(ChangeError::UnknownKey(k.to_string()));
                    }
                }
            }
        }
    }
    Ok(p)
}

/// The names of what shaped a line: scoped rules by id, else `plan:seller_rates`,
/// `plan:accelerators`, `plan:override_rate`, `plan:spiff:ID`, `plan:clawback`.
pub fn shapers(e: &ExplainedLine, plan: &Plan) -> Vec<String> {
    match &e.derivation {
        Derivation::Seller(sd) => {
            let mut v: Vec<String> = sd.rules.applied().iter().map(|s| s.to_string()).collect();
            if sd.rules.rate_rule.is_none() {
                v.push("plan:seller_rates".into());
            }
            let accelerated = sd.segments.iter().any(|s| s.attainment_from.is_some());
            if accelerated && sd.rules.accelerator_rule.is_none() {
                v.push("plan:accelerators".into());
            }
            v
        }
        Derivation::Override { .. } => vec!["plan:override_rate".into()],
        Derivation::Spiff { spiff_id, .. } => {
            if plan.rules.iter().any(|r| &r.rule_id == spiff_id) {
                vec![spiff_id.clone()]
            } else {
                vec![format!("plan:spiff:{spiff_id}")]
            }
        }
        Derivation::Clawback { .. } => vec!["plan:clawback".into()],
    }
}

struct Side {
    lines: Vec<ExplainedLine>,
}

fn side(ds: &Dataset, plan: &Plan) -> Side {
    let mut d = ds.clone();
    d.plan = plan.clone();
    Side {
        lines: recalculate_explained(&d),
    }
}

fn accelerated_partners(s: &Side, period: Option<&str>) -> usize {
    let set: BTreeSet<&str> = s
        .lines
        .iter()
        .filter(|e| period.is_none_or(|p| e.line.period == p))
        .filter(|e| match &e.derivation {
            Derivation::Seller(sd) => sd.segments.iter().any(|g| g.attainment_from.is_some()),
            _ => false,
        })
        .map(|e| e.line.payee_partner_id.as_str())
        .collect();
    set.len()
}

fn tier_of(e: &ExplainedLine) -> String {
    match &e.derivation {
        Derivation::Seller(sd) => sd.tier_id.clone(),
        Derivation::Spiff { tier_id, .. } => tier_id.clone(),
        _ => "-".into(),
    }
}

/// Recalculates the data set under `changed` and compares it with `ds.plan`.
pub fn whatif(ds: &Dataset, changed: &Plan, period: Option<&str>) -> WhatIf {
    let before = side(ds, &ds.plan);
    let after = side(ds, changed);
    let mut partners: BTreeMap<String, (Decimal, Decimal)> = BTreeMap::new();
    let mut by_role: BTreeMap<String, Totals> = BTreeMap::new();
    let mut by_tier: BTreeMap<String, Totals> = BTreeMap::new();
    let mut by_rule: BTreeMap<String, Totals> = BTreeMap::new();
    let mut total = Totals::default();
    for (s, plan, is_after) in [(&before, &ds.plan, false), (&after, changed, true)] {
        for e in s
            .lines
            .iter()
            .filter(|e| period.is_none_or(|p| e.line.period == p))
        {
            let a = e.line.amount;
            let (b, af) = if is_after {
                (Decimal::ZERO, a)
            } else {
                (a, Decimal::ZERO)
            };
            let entry = partners.entry(e.line.payee_partner_id.clone()).or_default();
            entry.0 += b;
            entry.1 += af;
            total.add(b, af);
            by_role
                .entry(e.line.role.as_str().to_string())
                .or_default()
                .add(b, af);
            by_tier.entry(tier_of(e)).or_default().add(b, af);
            for r in shapers(e, plan) {
                by_rule.entry(r).or_default().add(b, af);
            }
        }
    }
    WhatIf {
        period: period.map(str::to_string),
        partners: partners
            .into_iter()
            .map(|(partner_id, (b, a))| PartnerDiff {
                partner_id,
                before: b,
                after: a,
                difference: a - b,
            })
            .collect(),
        total,
        by_role,
        by_tier,
        by_rule,
        accelerator_reach: (
            accelerated_partners(&before, period),
            accelerated_partners(&after, period),
        ),
    }
}
