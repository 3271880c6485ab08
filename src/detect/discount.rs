//! `discount_policy`: discounted off list price beyond the tier's maximum for the family.

use rust_decimal::Decimal;
use serde_json::json;

use super::context::{to_f64, Ctx};
use super::Hit;
use crate::model::*;

/// Checks a sale's discount against the policy of the partner's tier.
///
/// The discount is taken off the catalogue list price (the transaction's own list
/// price when the product is unknown). When the partner's tier changed between the
/// close and the submission, the more generous of the two tiers' limits applies.
pub fn detect(ctx: &Ctx, t: &Transaction) -> Option<Hit> {
    if t.kind != TransactionKind::Sale {
        return None;
    }
    let product = ctx.products.get(t.sku.as_str())?;
    let list = if product.list_price > Decimal::ZERO {
        product.list_price
    } else {
        t.unit_list_price
    };
    if list <= Decimal::ZERO {
        return None;
    }
    let mut best: Option<(&str, Decimal)> = None;
    for day in [t.closed_on, t.submitted_at.date_naive()] {
        if let Some(tier) = ctx.tier_on(&t.partner_id, day) {
            if let Some(max) = ctx.policy.get(&(tier, product.family.as_str())) {
                if best.is_none_or(|(_, m)| *max > m) {
                    best = Some((tier, *max));
                }
            }
        }
    }
    let (tier, max) = best?;
    // Plainly within policy (by a margin far above f64 error): skip the exact Decimal work.
    let discount_f = (1.0 - to_f64(t.unit_net_price) / to_f64(list)) * 100.0;
    let max_f = to_f64(max);
    if discount_f.is_finite() && discount_f < max_f - 0.01 - 1e-9 * (discount_f.abs() + max_f.abs())
    {
        return None;
    }
    let discount = (Decimal::ONE - t.unit_net_price / list) * Decimal::ONE_HUNDRED;
    // Net prices are rounded to cents: allow that rounding before calling it a breach.
    let tolerance = Decimal::new(1, 2) * Decimal::ONE_HUNDRED / list + Decimal::new(1, 3);
    let excess = discount - max;
    if excess <= tolerance {
        return None;
    }
    let excess_f = to_f64(excess);
    let strength = (excess_f / 15.0).clamp(0.0, 1.0);
    let reason = format!(
        "Discount {:.1}% off the list price of {} exceeds the {}/{} policy maximum of {}% by {:.1} points",
        to_f64(discount),
        ctx.money(list),
        ctx.tier_name(tier),
        product.family,
        max.normalize(),
        excess_f
    );
    // What the deal should have been at the policy's maximum discount.
    let allowed_unit = list * (Decimal::ONE - max / Decimal::ONE_HUNDRED);
    let allowed_amount = allowed_unit * Decimal::from(t.quantity);
    Some(Hit {
        kind: AnomalyKind::DiscountPolicy,
        p: 0.9 + 0.09 * strength,
        confidence: 0.97,
        reason,
        evidence: json!({
            "discount_pct": to_f64(discount),
            "max_discount_pct": to_f64(max),
            "excess_points": excess_f,
            "tier_id": tier,
            "family": product.family,
            "list_price": list.to_string(),
            "net_price": t.unit_net_price.to_string(),
            "amount_at_policy_max": crate::money::round_cents(allowed_amount).to_string(),
        }),
    })
}
