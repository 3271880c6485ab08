//! The plan of a generated program and the PRM's commission lines: the plan's own
//! recalculation with errors injected on the `commission_variance` transactions.

use std::collections::{BTreeMap, BTreeSet};

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;

use super::variant::Variant;
use crate::model::*;
use crate::money::round_cents;

/// plan.json for a variant.
pub(crate) fn plan(v: &Variant, tiers: &[Tier], window: ReviewWindow, fy: u32) -> Plan {
    let seller_rates = tiers
        .iter()
        .enumerate()
        .map(|(i, t)| {
            (
                t.tier_id.clone(),
                v.seller_rate_base + v.seller_rate_step * Decimal::from(i as i64),
            )
        })
        .collect();
    let family_multipliers = v
        .family_multipliers
        .iter()
        .map(|(f, m)| (f.to_string(), *m))
        .collect();
    let (fy_year, _) = fiscal_year_quarter(window.end, fy);
    let (qy, qn) = fiscal_year_quarter(window.start, fy);
    let (q_start, _) = fiscal_quarter_bounds(qy, qn, fy);
    let prefix: String = v
        .spiff_family
        .chars()
        .take(3)
        .collect::<String>()
        .to_uppercase();
    Plan {
        plan_id: format!("FY-{fy_year}-channel"),
        currency: v.currency.to_string(),
        period: Some("quarter".to_string()),
        seller_rates,
        family_multipliers,
        override_rate: Some(v.override_rate),
        accelerators: v
            .accelerators
            .iter()
            .map(|(a, m)| Accelerator {
                attainment_from: *a,
                multiplier: *m,
            })
            .collect(),
        spiffs: vec![Spiff {
            spiff_id: format!("SP-{prefix}-Q"),
            family: Some(v.spiff_family.to_string()),
            sku: None,
            from: q_start,
            to: window.end,
            amount_per_unit: v.spiff_per_unit,
            eligible_tiers: tiers.iter().skip(1).map(|t| t.tier_id.clone()).collect(),
        }],
        per_transaction_cap: Some(v.per_transaction_cap),
        clawback_window_days: Some(v.clawback_window_days),
        rules: Vec::new(),
    }
}

/// The plan engine's recalculation of every commission line (`crate::plan`).
pub(crate) fn recalculated_lines(ds: &Dataset) -> Vec<CommissionLine> {
    crate::plan::recalculate(ds)
}

/// The PRM's lines: the recalculation, with a wrong amount, a missing override or
/// an extra line on each transaction in `variance`.
pub(crate) fn prm_lines(
    expected: &[CommissionLine],
    variance: &[&str],
    ds: &Dataset,
    rng: &mut ChaCha8Rng,
) -> Vec<CommissionLine> {
    let variance: BTreeSet<&str> = variance.iter().copied().collect();
    let mut by_tx: BTreeMap<&str, Vec<&CommissionLine>> = BTreeMap::new();
    let mut out = Vec::with_capacity(expected.len() + variance.len());
    for l in expected {
        if variance.contains(l.transaction_id.as_str()) {
            by_tx.entry(l.transaction_id.as_str()).or_default().push(l);
        } else {
            out.push(l.clone());
        }
    }
    let fy = ds.program.fiscal_year_start_month;
    for t in &ds.transactions {
        if !variance.contains(t.transaction_id.as_str()) {
            continue;
        }
        let mut lines: Vec<CommissionLine> = by_tx
            .get(t.transaction_id.as_str())
            .map(|v| v.iter().map(|l| (*l).clone()).collect())
            .unwrap_or_default();
        let period = fiscal_quarter(t.closed_on, fy);
        let has_override = lines.iter().any(|l| l.role == CommissionRole::Override);
        let seller = lines.iter().position(|l| l.role == CommissionRole::Seller);
        let mode = rng.gen_range(0..4);
        match (mode, seller) {
            (1, _) if has_override => {
                lines.retain(|l| l.role != CommissionRole::Override);
            }
            (0 | 1, Some(s)) => {
                // Wrong amount: a different rate or a mis-keyed figure.
                let f = Decimal::from(rng.gen_range(105..135)) / Decimal::ONE_HUNDRED;
                let old = lines[s].amount;
                let mut new = round_cents(old * f);
                if new == old {
                    new = old + Decimal::ONE;
                }
                lines[s].amount = new;
            }
            (2, Some(s)) => {
                // The seller line paid twice.
                let mut dup = lines[s].clone();
                dup.commission_id = format!("{}-2", dup.commission_id);
                lines.push(dup);
            }
            _ => {
                // An extra line the plan does not pay: a SPIFF outside its terms.
                lines.push(CommissionLine {
                    commission_id: format!("C-{}-X", t.transaction_id),
                    transaction_id: t.transaction_id.clone(),
                    payee_partner_id: t.partner_id.clone(),
                    role: CommissionRole::Spiff,
                    amount: round_cents(
                        Decimal::from(rng.gen_range(50..300))
                            * Decimal::from(t.quantity.abs().max(1)),
                    ),
                    period,
                });
            }
        }
        out.extend(lines);
    }
    out
}
