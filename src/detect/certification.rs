//! `uncertified_product`: the product needs a certification the partner does not hold.

use serde_json::json;

use super::context::Ctx;
use super::Hit;
use crate::model::*;

pub fn detect(ctx: &Ctx, t: &Transaction) -> Option<Hit> {
    if t.kind != TransactionKind::Sale {
        return None;
    }
    let product = ctx.products.get(t.sku.as_str())?;
    let required = product.certification_required.as_deref()?;
    if required.is_empty() {
        return None;
    }
    let partner = ctx.partners.get(t.partner_id.as_str())?;
    if partner
        .certifications
        .iter()
        .any(|c| c.eq_ignore_ascii_case(required))
    {
        return None;
    }
    let held = if partner.certifications.is_empty() {
        "none".to_string()
    } else {
        partner.certifications.join(", ")
    };
    Some(Hit {
        kind: AnomalyKind::UncertifiedProduct,
        p: 0.95,
        confidence: 0.97,
        reason: format!(
            "{} ({}) requires the '{}' certification, which partner {} does not hold (holds: {})",
            t.sku, product.family, required, t.partner_id, held
        ),
        evidence: json!({
            "required": required,
            "held": partner.certifications,
            "sku": t.sku,
        }),
    })
}
