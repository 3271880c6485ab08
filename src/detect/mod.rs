//! Anomaly detection: explainable scores for partner-submitted transactions.
//!
//! Pure: no IO and no clock. [`score_dataset`] scores every transaction of a
//! [`Dataset`] against baselines learned from its history (sales submitted before the
//! review window): the partner's own deal sizes and submission lags, its tier's deal
//! sizes, the discount policy, certifications, deal registrations, earlier submissions
//! (duplicates, split deals) and the plan's recalculation (commission variances).
//!
//! Each detector returns a [`Hit`] (its kind, a probability-like strength, a confidence,
//! a plain-English reason with the numbers and evidence figures); the combiner turns
//! hits into one [`Score`] per transaction (noisy-or of the hits, so more independent
//! problems rank higher) and picks a [`Proposal`] for the accrual.
//!
//! Notes typed by partners are never read here.

use std::collections::{BTreeMap, HashMap};

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::model::*;

pub mod backdated;
pub mod cache;
pub mod certification;
pub mod context;
pub mod deal_size;
pub mod discount;
pub mod duplicate;
pub mod names;
pub mod registration;
pub mod split;
pub mod variance;

pub use context::Ctx;

/// Recorded with every flag and proposal; bump when scoring changes.
pub const DETECTOR_VERSION: &str = "detect-1.0";

/// A detector's finding for one transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub kind: AnomalyKind,
    /// How likely this transaction needs a reviewer because of this finding, in (0.5, 1].
    pub p: f64,
    pub confidence: f64,
    pub reason: String,
    pub evidence: serde_json::Value,
}

/// A sub-threshold suspicion in [0,1], used only to rank unflagged transactions.
pub type Soft = f64;

/// The plan's view of one transaction whose PRM lines differ from the recalculation.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct VarianceInfo {
    pub reason: String,
    /// The plan's total commission for the transaction, when known.
    pub plan_amount: Option<Decimal>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProposalAction {
    Hold,
    Reverse,
    Recompute,
    Adjust,
}

impl ProposalAction {
    pub fn as_str(&self) -> &'static str {
        match self {
            ProposalAction::Hold => "hold",
            ProposalAction::Reverse => "reverse",
            ProposalAction::Recompute => "recompute",
            ProposalAction::Adjust => "adjust",
        }
    }

    pub fn parse(s: &str) -> Option<ProposalAction> {
        [
            ProposalAction::Hold,
            ProposalAction::Reverse,
            ProposalAction::Recompute,
            ProposalAction::Adjust,
        ]
        .into_iter()
        .find(|a| a.as_str() == s)
    }
}

/// The proposed accrual adjustment for a flagged transaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Proposal {
    pub action: ProposalAction,
    /// The PRM's accrued commission for the transaction (sum of its lines).
    pub current_amount: Decimal,
    pub proposed_amount: Decimal,
    /// proposed - current
    pub delta: Decimal,
    pub rationale: String,
}

/// The result for one transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub score: Score,
    /// Evidence figures per kind: `{"discount_policy": {...}, ...}`.
    pub evidence: serde_json::Value,
    pub proposal: Option<Proposal>,
}

/// Scores every transaction of the data set (sorted by transaction id).
///
/// `variances` maps transaction_id -> the plan's reason for a commission variance.
pub fn score_dataset(ds: &Dataset, variances: &BTreeMap<String, String>) -> Vec<Finding> {
    let v: HashMap<&str, VarianceInfo> = variances
        .iter()
        .map(|(k, r)| {
            (
                k.as_str(),
                VarianceInfo {
                    reason: r.clone(),
                    plan_amount: None,
                },
            )
        })
        .collect();
    score_with(ds, &v)
}

/// Like [`score_dataset`], with the plan's amount per variance (for the proposal).
pub fn score_dataset_full(
    ds: &Dataset,
    variances: &BTreeMap<String, VarianceInfo>,
) -> Vec<Finding> {
    let v: HashMap<&str, VarianceInfo> = variances
        .iter()
        .map(|(k, r)| (k.as_str(), r.clone()))
        .collect();
    score_with(ds, &v)
}

fn score_with(ds: &Dataset, variances: &HashMap<&str, VarianceInfo>) -> Vec<Finding> {
    let ctx = Ctx::build(ds);
    let blocks = split::blocks(ds);
    let splits = split::detect(&ctx, &blocks);
    let (dups, dup_soft) = duplicate::detect(&ctx, &blocks, &splits);

    let n = ds.transactions.len();
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 4);
    let chunk = n.div_ceil(threads).max(1);
    let mut out: Vec<Finding> = Vec::with_capacity(n);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .step_by(chunk)
            .map(|start| {
                let ctx = &ctx;
                let splits = &splits;
                let dups = &dups;
                let dup_soft = &dup_soft;
                s.spawn(move || {
                    (start..(start + chunk).min(n))
                        .map(|i| score_one(ctx, i, splits, dups, dup_soft, variances))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for h in handles {
            match h.join() {
                Ok(v) => out.extend(v),
                Err(e) => std::panic::resume_unwind(e),
            }
        }
    });
    out.sort_by(|a, b| a.score.transaction_id.cmp(&b.score.transaction_id));
    out
}

fn score_one(
    ctx: &Ctx,
    i: usize,
    splits: &HashMap<usize, Hit>,
    dups: &HashMap<usize, Hit>,
    dup_soft: &HashMap<usize, Soft>,
    variances: &HashMap<&str, VarianceInfo>,
) -> Finding {
    let t = &ctx.ds.transactions[i];
    let accrued = ctx.accrued_for(&t.transaction_id);
    let mut hits: Vec<Hit> = Vec::new();
    let mut soft: f64 = dup_soft.get(&i).copied().unwrap_or(0.0);
    let (h, s) = deal_size::detect(ctx, t);
    hits.extend(h);
    soft = soft.max(s);
    hits.extend(discount::detect(ctx, t));
    hits.extend(certification::detect(ctx, t));
    hits.extend(dups.get(&i).cloned());
    let (h, s) = backdated::detect(ctx, t);
    hits.extend(h);
    soft = soft.max(s);
    hits.extend(splits.get(&i).cloned());
    hits.extend(registration::detect(ctx, t));
    hits.extend(variance::detect(
        t,
        variances.get(t.transaction_id.as_str()),
        accrued,
    ));
    hits.sort_by_key(|h| h.kind);
    combine(ctx, t, accrued, hits, soft)
}

/// Rounds a score to 4 decimals so output is byte-stable.
pub fn round4(x: f64) -> f64 {
    ((x * 10_000.0).round() / 10_000.0).clamp(0.0, 1.0)
}

fn combine(ctx: &Ctx, t: &Transaction, accrued: Decimal, hits: Vec<Hit>, soft: f64) -> Finding {
    let mut evidence = serde_json::Map::new();
    let (score, confidence) = if hits.is_empty() {
        // Unflagged: a low score that still ranks near-misses above the plainly normal.
        let s = 0.05 + 0.4 * soft.clamp(0.0, 1.0);
        (s, 1.0 - s)
    } else {
        let miss: f64 = hits.iter().map(|h| 1.0 - h.p.clamp(0.0, 1.0)).product();
        let conf_miss: f64 = hits
            .iter()
            .map(|h| 1.0 - h.confidence.clamp(0.0, 1.0))
            .product();
        (1.0 - miss, 1.0 - conf_miss)
    };
    for h in &hits {
        evidence.insert(h.kind.as_str().to_string(), h.evidence.clone());
    }
    if !hits.is_empty() {
        evidence.insert("soft".into(), serde_json::json!(round4(soft)));
    }
    let proposal = propose(ctx, t, accrued, &hits);
    Finding {
        score: Score {
            transaction_id: t.transaction_id.clone(),
            score: round4(score),
            confidence: round4(confidence),
            kinds: hits.iter().map(|h| h.kind).collect(),
            reasons: hits.into_iter().map(|h| h.reason).collect(),
        },
        evidence: serde_json::Value::Object(evidence),
        proposal,
    }
}

/// Picks the accrual adjustment for the most consequential finding.
fn propose(ctx: &Ctx, t: &Transaction, accrued: Decimal, hits: &[Hit]) -> Option<Proposal> {
    let has = |k: AnomalyKind| hits.iter().find(|h| h.kind == k);
    let money = |d: Decimal| ctx.money(d);
    let make = |action, proposed: Decimal, rationale: String| {
        let proposed = crate::money::round_cents(proposed);
        Some(Proposal {
            action,
            current_amount: accrued,
            proposed_amount: proposed,
            delta: proposed - accrued,
            rationale,
        })
    };
    if let Some(h) = has(AnomalyKind::Duplicate) {
        let of = h.evidence["duplicate_of"]
            .as_str()
            .unwrap_or("an earlier transaction");
        return make(
            ProposalAction::Reverse,
            Decimal::ZERO,
            format!(
                "Reverse the {} accrued: the deal was already reported as {}",
                money(accrued),
                of
            ),
        );
    }
    if let Some(h) = has(AnomalyKind::CommissionVariance) {
        let plan = h.evidence["plan_amount"]
            .as_str()
            .and_then(crate::money::parse_money);
        if let Some(plan) = plan {
            return make(
                ProposalAction::Adjust,
                plan,
                format!(
                    "Adjust the accrual from {} to the plan's {}",
                    money(accrued),
                    money(plan)
                ),
            );
        }
        return make(
            ProposalAction::Recompute,
            accrued,
            "Recompute the commission lines from the plan; the PRM's lines differ from it"
                .to_string(),
        );
    }
    if let Some(h) = has(AnomalyKind::RegistrationMismatch) {
        return make(
            ProposalAction::Hold,
            Decimal::ZERO,
            format!(
                "Hold the {} accrued pending documents for the deal registration ({})",
                money(accrued),
                h.reason
            ),
        );
    }
    if let Some(h) = has(AnomalyKind::DiscountPolicy) {
        // Commission on the deal as if priced at the policy's maximum discount: the
        // discount beyond policy is not commissionable.
        let allowed = h.evidence["amount_at_policy_max"]
            .as_str()
            .and_then(crate::money::parse_money);
        if let Some(allowed) = allowed {
            if t.amount > Decimal::ZERO && allowed > Decimal::ZERO {
                let excess_value = allowed - t.amount;
                let base = (t.amount - excess_value).max(Decimal::ZERO);
                let proposed = accrued * base / t.amount;
                return make(
                    ProposalAction::Recompute,
                    proposed.min(accrued),
                    format!(
                        "Recompute at the policy's maximum discount: the deal at the limit would be {} vs {} reported; the {} discounted beyond policy is deducted from the commission base",
                        money(allowed),
                        money(t.amount),
                        money(excess_value)
                    ),
                );
            }
        }
        return make(
            ProposalAction::Hold,
            Decimal::ZERO,
            format!(
                "Hold the {} accrued pending approval of the discount",
                money(accrued)
            ),
        );
    }
    if has(AnomalyKind::UncertifiedProduct).is_some() {
        return make(
            ProposalAction::Hold,
            Decimal::ZERO,
            format!(
                "Hold the {} accrued until the partner proves the required certification",
                money(accrued)
            ),
        );
    }
    if has(AnomalyKind::SplitDeals).is_some() {
        return make(
            ProposalAction::Hold,
            Decimal::ZERO,
            format!(
                "Hold the {} accrued pending documents showing the deals are separate orders",
                money(accrued)
            ),
        );
    }
    if has(AnomalyKind::Backdated).is_some() {
        return make(
            ProposalAction::Hold,
            Decimal::ZERO,
            format!(
                "Hold the {} accrued pending proof of the close date (the quarter decides the accelerator)",
                money(accrued)
            ),
        );
    }
    if has(AnomalyKind::DealSizeTier).is_some() {
        return make(
            ProposalAction::Hold,
            Decimal::ZERO,
            format!(
                "Hold the {} accrued pending the customer's order documents for this unusually large deal",
                money(accrued)
            ),
        );
    }
    None
}

/// One line of `tierdesk score --format jsonl` (fixed key order, 4-decimal figures).
pub fn score_line(s: &Score) -> String {
    let v = serde_json::json!({
        "transaction_id": s.transaction_id,
        "score": round4(s.score),
        "confidence": round4(s.confidence),
        "kinds": s.kinds.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
        "reasons": s.reasons,
    });
    v.to_string()
}
