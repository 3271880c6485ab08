//! `backdated`: a close date in an earlier fiscal quarter than the submission, submitted
//! well after that quarter ended (ordinary quarter-end rushes submitted promptly are normal).

use serde_json::json;

use super::context::{lag_days, Ctx};
use super::{Hit, Soft};
use crate::model::*;

pub fn detect(ctx: &Ctx, t: &Transaction) -> (Option<Hit>, Soft) {
    if t.kind != TransactionKind::Sale {
        return (None, 0.0);
    }
    let fy = ctx.ds.program.fiscal_year_start_month;
    let submitted = t.submitted_at.date_naive();
    let closed_q = fiscal_year_quarter(t.closed_on, fy);
    let submitted_q = fiscal_year_quarter(submitted, fy);
    if closed_q >= submitted_q {
        return (None, 0.0);
    }
    let (_, q_end) = fiscal_quarter_bounds(closed_q.0, closed_q.1, fy);
    let after_end = (submitted - q_end).num_days();
    let lag = lag_days(t);
    // What "prompt" means here: the program's usual submission lag, or this partner's.
    let partner_q90 = ctx
        .partner_base
        .get(t.partner_id.as_str())
        .filter(|b| b.lag_n >= 10)
        .map(|b| b.lag_q90)
        .unwrap_or(0.0);
    let usual = ctx.lag_q995.max(partner_q90).max(7.0);
    let after_limit = ctx.lag_q99.max(partner_q90).max(7.0);
    let soft = ((lag as f64 - usual) / usual).clamp(0.0, 1.0) * 0.5;
    if (lag as f64) <= usual || (after_end as f64) <= after_limit {
        return (None, soft);
    }
    let strength = ((after_end as f64 - after_limit) / (3.0 * after_limit)).clamp(0.0, 1.0);
    let reason = format!(
        "Closed on {} in {} but submitted on {}, {} days after that quarter ended ({} days after the close; submissions here usually arrive within {:.0} days)",
        t.closed_on,
        fiscal_quarter(t.closed_on, fy),
        submitted,
        after_end,
        lag,
        usual
    );
    let hit = Hit {
        kind: AnomalyKind::Backdated,
        p: 0.7 + 0.27 * strength,
        confidence: 0.75 + 0.2 * strength,
        reason,
        evidence: json!({
            "closed_quarter": fiscal_quarter(t.closed_on, fy),
            "submitted_quarter": fiscal_quarter(submitted, fy),
            "days_after_quarter_end": after_end,
            "lag_days": lag,
            "usual_lag_days": usual,
        }),
    };
    (Some(hit), soft)
}
