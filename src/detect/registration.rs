//! `registration_mismatch`: the cited deal registration belongs to another partner, was
//! rejected, had expired on the close date, names a different customer, or does not exist.

use serde_json::json;

use super::context::Ctx;
use super::names::{name_similarity, normalise_customer};
use super::Hit;
use crate::model::*;

/// Normalised names at least this similar are the same customer (typos, legal suffixes).
const SAME_CUSTOMER: f64 = 0.85;

/// Checks the registration cited by transaction `i` (`t` is `ds.transactions[i]`).
pub fn detect(ctx: &Ctx, i: usize, t: &Transaction) -> Option<Hit> {
    if t.kind != TransactionKind::Sale {
        return None;
    }
    let reg_id = t.registration_id.as_deref()?;
    if reg_id.is_empty() {
        return None;
    }
    let Some(reg) = ctx.registrations.get(reg_id) else {
        return Some(Hit {
            kind: AnomalyKind::RegistrationMismatch,
            p: 0.9,
            confidence: 0.85,
            reason: format!("Cites deal registration {reg_id}, which does not exist"),
            evidence: json!({"registration_id": reg_id, "problems": ["unknown"]}),
        });
    };
    let mut problems: Vec<&str> = Vec::new();
    let mut parts: Vec<String> = Vec::new();
    let mut p: f64 = 0.0;
    if reg.partner_id != t.partner_id {
        problems.push("other_partner");
        parts.push(format!("belongs to partner {}", reg.partner_id));
        p = p.max(0.97);
    }
    if reg.status == RegistrationStatus::Rejected {
        problems.push("rejected");
        parts.push("was rejected".to_string());
        p = p.max(0.97);
    }
    if reg.expires_on < t.closed_on {
        let days = (t.closed_on - reg.expires_on).num_days();
        problems.push("expired");
        parts.push(format!(
            "expired on {}, {} before the close on {}",
            reg.expires_on,
            crate::plural::n(days, "day"),
            t.closed_on
        ));
        p = p.max(0.93 + 0.04 * (days as f64 / 30.0).min(1.0));
    }
    let sim = if reg.customer_name == t.customer_name {
        1.0
    } else {
        name_similarity(
            &normalise_customer(&reg.customer_name),
            ctx.norm_customer(i),
        )
    };
    if sim < SAME_CUSTOMER {
        problems.push("other_customer");
        parts.push(format!(
            "names customer '{}', not '{}'",
            reg.customer_name, t.customer_name
        ));
        p = p.max(0.9 + 0.07 * (1.0 - sim));
    }
    if problems.is_empty() {
        return None;
    }
    let reason = format!("Deal registration {} {}", reg_id, join_and(&parts));
    Some(Hit {
        kind: AnomalyKind::RegistrationMismatch,
        p,
        confidence: 0.95,
        reason,
        evidence: json!({
            "registration_id": reg_id,
            "problems": problems,
            "registration_partner_id": reg.partner_id,
            "registration_status": reg.status.as_str(),
            "registration_customer": reg.customer_name,
            "expires_on": reg.expires_on.to_string(),
            "customer_similarity": (sim * 1000.0).round() / 1000.0,
        }),
    })
}

pub fn join_and(parts: &[String]) -> String {
    match parts.len() {
        0 => String::new(),
        1 => parts[0].clone(),
        n => format!("{} and {}", parts[..n - 1].join(", "), parts[n - 1]),
    }
}
