//! `deal_size_tier`: far larger than the partner's own history and than its tier's deals.

use serde_json::json;

use super::context::Ctx;
use super::{Hit, Soft};
use crate::model::*;

/// MAD of a normal distribution is 0.6745 sigma.
const MAD_TO_SIGMA: f64 = 1.4826;
/// Fewer history deals than this: the partner's own statistics are not trusted alone.
const MIN_PARTNER_HISTORY: usize = 5;

/// How much evidence a deal must carry against the partner's own history: z/3 (capped
/// at z = 6) plus log2 of the ratio to its largest earlier deal.
const EVIDENCE: f64 = 2.3;

/// The partner-side evidence of a deal: `min(z, 6) / 3 + log2(deal / largest earlier)`.
pub fn size_evidence(partner_z: f64, ratio_max: f64) -> f64 {
    partner_z.min(6.0) / 3.0 + ratio_max.max(1e-9).log2()
}

/// Returns the hit (when flagged) and a soft suspicion in [0,1] used for ranking otherwise.
/// `t` is `ds.transactions[i]`.
pub fn detect(ctx: &Ctx, i: usize, t: &Transaction) -> (Option<Hit>, Soft) {
    if t.kind != TransactionKind::Sale || t.amount <= rust_decimal::Decimal::ZERO {
        return (None, 0.0);
    }
    let amount = ctx.feat[i].amount;
    let la = amount.ln();
    let Some(tier) = ctx.tier_on(&t.partner_id, t.closed_on) else {
        return (None, 0.0);
    };
    let Some(ts) = ctx.tier_size.get(tier) else {
        return (None, 0.0);
    };
    if ts.n() < 20 {
        return (None, 0.0);
    }
    let tier_sigma = (ts.mad * MAD_TO_SIGMA).max(1e-6);
    let tier_pct = ts.percentile(la);
    let tier_z = (la - ts.median) / tier_sigma;
    let ps = ctx.partner_base.get(t.partner_id.as_str()).map(|b| &b.size);
    let n_p = ps.map(|s| s.n()).unwrap_or(0);
    let (partner_z, ratio_max, partner_median) = match ps {
        Some(s) if s.n() >= MIN_PARTNER_HISTORY => {
            // A very regular partner has a tiny MAD: floor it at a share of the tier's spread.
            let sigma = (s.mad * MAD_TO_SIGMA).max(0.35 * tier_sigma).max(1e-6);
            ((la - s.median) / sigma, (la - s.max).exp(), s.median.exp())
        }
        _ => (f64::NAN, f64::NAN, f64::NAN),
    };
    let have_partner = partner_z.is_finite();

    // Both views must call it extreme: the partner's own history and its tier.
    let flagged = if have_partner {
        // "Far larger" than the partner's history: the evidence of its spread (z) and of
        // its largest earlier deal add up. A partner with a wide spread (low z) is still
        // flagged for a deal several times its largest; a steady one (high z) for a deal
        // clearly beyond its largest.
        tier_pct >= 0.99
            && partner_z >= 2.0
            && ratio_max >= 1.25
            && size_evidence(partner_z, ratio_max) >= EVIDENCE
    } else {
        tier_pct >= 0.999 && tier_z >= 3.5
    };
    let pz = if have_partner {
        partner_z
    } else {
        tier_z - 1.0
    };
    let soft = {
        let a = ((pz - 1.5) / 4.0).clamp(0.0, 1.0);
        let b = ((tier_pct - 0.9) / 0.1).clamp(0.0, 1.0);
        (a * b).sqrt()
    };
    if !flagged {
        return (None, soft);
    }
    let s_partner = ((pz - 3.0) / 4.0).clamp(0.0, 1.0);
    let s_max = if ratio_max.is_finite() {
        (ratio_max.ln() / 4f64.ln()).clamp(0.0, 1.0)
    } else {
        0.5
    };
    let s_tier = ((tier_pct - 0.99) / 0.01).clamp(0.0, 1.0);
    let strength = 0.4 * s_partner + 0.35 * s_max + 0.25 * s_tier;
    let tier_q995 = ts.quantile(0.995).exp();
    let tier_name = ctx.tier_name(tier).to_lowercase();
    let reason = if have_partner {
        format!(
            "Deal of {} is {:.1}x this partner's median of {} ({:.1}x its largest earlier deal, {} deals of history) and above the 99.5th percentile of {}-tier deals ({})",
            ctx.money(t.amount),
            amount / partner_median,
            ctx.money_f(partner_median),
            ratio_max,
            n_p,
            tier_name,
            ctx.money_f(tier_q995)
        )
    } else {
        format!(
            "Deal of {} is above the 99.9th percentile of {}-tier deals ({}) and the partner has only {} earlier deals",
            ctx.money(t.amount),
            tier_name,
            ctx.money_f(ts.quantile(0.999).exp()),
            n_p
        )
    };
    let hit = Hit {
        kind: AnomalyKind::DealSizeTier,
        p: 0.62 + 0.33 * strength,
        confidence: 0.6 + 0.3 * strength,
        reason,
        evidence: json!({
            "amount": t.amount.to_string(),
            "tier_id": tier,
            "tier_percentile": round4(tier_pct),
            "tier_z": round4(tier_z),
            "partner_z": if have_partner { Some(round4(partner_z)) } else { None },
            "partner_median": if have_partner { Some(round4(partner_median)) } else { None },
            "ratio_to_partner_max": if have_partner { Some(round4(ratio_max)) } else { None },
            "partner_history": n_p,
            "evidence": if have_partner { Some(round4(size_evidence(partner_z, ratio_max))) } else { None },
        }),
    };
    (Some(hit), soft)
}

pub fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}
