//! Plan v2 inside the calculator: which scoped rules shape a sale's seller line, and the
//! SPIFF lines of `spiff` rules.

use chrono::NaiveDate;
use rust_decimal::Decimal;

use super::v2::{self, Rule, RuleAction, RuleTrace, SaleFacts};
use super::{Calculator, Derivation, NoLine, SpiffCheck, TxLines};
use crate::model::{fiscal_year_quarter, CommissionRole, Transaction};

/// The rules that apply to one sale's seller line.
pub(crate) struct SellerRules<'a> {
    pub rate: Option<&'a Rule>,
    pub rate_lost: Vec<(&'a Rule, String)>,
    /// Every matching rate multiplier, in rule_id order.
    pub mults: Vec<&'a Rule>,
    pub accel: Option<&'a Rule>,
    pub accel_lost: Vec<(&'a Rule, String)>,
}

impl SellerRules<'_> {
    pub fn trace(&self) -> RuleTrace {
        let lost = |v: &[(&Rule, String)]| {
            v.iter()
                .map(|(r, why)| (r.rule_id.clone(), why.clone()))
                .collect()
        };
        RuleTrace {
            rate_rule: self.rate.map(|r| (r.rule_id.clone(), rate_of(r))),
            rate_lost: lost(&self.rate_lost),
            multipliers: self
                .mults
                .iter()
                .map(|r| (r.rule_id.clone(), multiplier_of(r)))
                .collect(),
            accelerator_rule: self.accel.map(|r| r.rule_id.clone()),
            accelerator_lost: lost(&self.accel_lost),
        }
    }
}

/// A rate rule's rate (0 for another kind; never called with one).
pub(crate) fn rate_of(r: &Rule) -> Decimal {
    match r.action {
        RuleAction::Rate(x) => x,
        _ => Decimal::ZERO,
    }
}

/// A rate multiplier rule's multiplier (1 for another kind).
pub(crate) fn multiplier_of(r: &Rule) -> Decimal {
    match r.action {
        RuleAction::RateMultiplier(x) => x,
        _ => Decimal::ONE,
    }
}

/// An accelerator rule's schedule, ascending (empty for another kind).
pub(crate) fn schedule_of(r: &Rule) -> &[(Decimal, Decimal)] {
    match &r.action {
        RuleAction::Accelerator(v) => v,
        _ => &[],
    }
}

/// A spiff rule's window: its own `from`/`to`, else its scope's, else open.
fn spiff_window(r: &Rule) -> (Option<NaiveDate>, Option<NaiveDate>) {
    match &r.action {
        RuleAction::Spiff { from, to, .. } => (from.or(r.scope.from), to.or(r.scope.to)),
        _ => (r.scope.from, r.scope.to),
    }
}

impl<'a> Calculator<'a> {
    /// What sale `i` looks like to a rule's scope.
    pub(crate) fn facts(
        &self,
        i: usize,
        tier_id: &'a str,
        family: Option<&'a str>,
    ) -> SaleFacts<'a> {
        let t = &self.ds.transactions[i];
        let row = self.partner_rows.get(self.tx_partner[i]).copied().flatten();
        SaleFacts {
            region: row.map(|p| p.region.as_str()),
            partner_kind: row.map(|p| p.kind),
            tier_id,
            tier_name: self.tier_names.get(tier_id).copied(),
            family,
            sku: t.sku.as_str(),
            quarter: fiscal_year_quarter(t.closed_on, self.fy_start).1,
            closed_on: t.closed_on,
        }
    }

    /// The rate, multiplier and accelerator rules that match sale `i`; the losers are
    /// named only when `with_losers` (explanations).
    pub(crate) fn seller_rules(
        &self,
        i: usize,
        tier_id: &'a str,
        family: Option<&'a str>,
        with_losers: bool,
    ) -> SellerRules<'a> {
        let f = self.facts(i, tier_id, family);
        let (rate, rate_lost) = v2::pick(&v2::matching(&self.rules.rates, &f));
        let (accel, accel_lost) = v2::pick(&v2::matching(&self.rules.accelerators, &f));
        let keep = |v: Vec<(&'a Rule, String)>| if with_losers { v } else { Vec::new() };
        SellerRules {
            rate,
            rate_lost: keep(rate_lost),
            mults: v2::matching(&self.rules.multipliers, &f),
            accel,
            accel_lost: keep(accel_lost),
        }
    }

    /// Each spiff rule whose scope matches sale `i`, with how it applies.
    pub(crate) fn spiff_rule_checks(
        &self,
        i: usize,
        tier_id: &'a str,
        family: Option<&'a str>,
    ) -> Vec<(&'a Rule, SpiffCheck)> {
        if self.rules.spiffs.is_empty() {
            return Vec::new();
        }
        let t = &self.ds.transactions[i];
        let f = self.facts(i, tier_id, family);
        let mut out = Vec::new();
        for &r in &self.rules.spiffs {
            let RuleAction::Spiff {
                amount_per_unit,
                eligible_tiers,
                ..
            } = &r.action
            else {
                continue;
            };
            let check = if !r.scope.matches(&f) {
                SpiffCheck::Skip
            } else if !in_window(spiff_window(r), t.closed_on) {
                SpiffCheck::OutsideWindow
            } else if eligible_tiers
                .as_ref()
                .is_some_and(|e| !e.iter().any(|n| v2::tier_is(n, tier_id, f.tier_name)))
            {
                SpiffCheck::TierNotEligible
            } else {
                SpiffCheck::Pays(amount_per_unit.checked_mul(Decimal::from(t.quantity)))
            };
            if !matches!(check, SpiffCheck::Skip) {
                out.push((r, check));
            }
        }
        out
    }

    /// The SPIFF lines of spiff rules for sale `i` with their derivations (and why a
    /// matching rule paid nothing).
    pub(crate) fn spiff_rule_lines(
        &self,
        t: &Transaction,
        i: usize,
        tier_id: &'a str,
        family: Option<&'a str>,
        period: &str,
        out: &mut TxLines,
    ) {
        for (r, check) in self.spiff_rule_checks(i, tier_id, family) {
            let (from, to) = spiff_window(r);
            let (from, to) = (from.unwrap_or(NaiveDate::MIN), to.unwrap_or(NaiveDate::MAX));
            match check {
                SpiffCheck::Skip => {}
                SpiffCheck::OutsideWindow => out.no_lines.push(NoLine::SpiffOutsideWindow {
                    spiff_id: r.rule_id.clone(),
                    from,
                    to,
                }),
                SpiffCheck::TierNotEligible => out.no_lines.push(NoLine::SpiffTierNotEligible {
                    spiff_id: r.rule_id.clone(),
                    tier_id: tier_id.to_string(),
                }),
                SpiffCheck::Pays(None) => out.no_lines.push(NoLine::Overflow {
                    role: CommissionRole::Spiff,
                }),
                SpiffCheck::Pays(Some(a)) => {
                    let line = self.line(
                        t,
                        CommissionRole::Spiff,
                        ("P-", &r.rule_id),
                        &t.partner_id,
                        a,
                        period.to_string(),
                    );
                    let amount_per_unit = match &r.action {
                        RuleAction::Spiff {
                            amount_per_unit, ..
                        } => *amount_per_unit,
                        _ => Decimal::ZERO,
                    };
                    out.lines.push((
                        line,
                        Derivation::Spiff {
                            spiff_id: r.rule_id.clone(),
                            family: r.scope.family.clone(),
                            sku: r.scope.sku.clone(),
                            from,
                            to,
                            tier_id: tier_id.to_string(),
                            amount_per_unit,
                            quantity: t.quantity,
                        },
                    ));
                }
            }
        }
    }
}

fn in_window((from, to): (Option<NaiveDate>, Option<NaiveDate>), d: NaiveDate) -> bool {
    from.is_none_or(|f| f <= d) && to.is_none_or(|t| d <= t)
}
