//! `commission_variance`: the PRM's commission lines differ from the plan's recalculation.

use rust_decimal::Decimal;
use serde_json::json;

use super::Hit;
use super::VarianceInfo;
use crate::model::*;

pub fn detect(t: &Transaction, v: Option<&VarianceInfo>, accrued: Decimal) -> Option<Hit> {
    let v = v?;
    let mut reason = v.reason.trim().to_string();
    if reason.is_empty() {
        reason = "PRM commission lines differ from the plan's recalculation".to_string();
    }
    let mut p = 0.93;
    if let Some(plan) = v.plan_amount {
        let base = accrued.abs().max(plan.abs());
        if base > Decimal::ZERO {
            let rel = ((accrued - plan).abs() / base)
                .to_string()
                .parse::<f64>()
                .unwrap_or(0.0);
            p += 0.06 * rel.clamp(0.0, 1.0);
        }
    }
    Some(Hit {
        kind: AnomalyKind::CommissionVariance,
        p,
        confidence: 0.97,
        reason,
        evidence: json!({
            "transaction_id": t.transaction_id,
            "accrued": accrued.to_string(),
            "plan_amount": v.plan_amount.map(|d| d.to_string()),
        }),
    })
}
