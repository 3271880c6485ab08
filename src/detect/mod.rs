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

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::model::*;

pub mod backdated;
pub mod certification;
pub mod context;
pub mod deal_size;
pub mod discount;
pub mod duplicate;
pub mod erp;
pub mod names;
pub mod pattern;
pub mod registration;
pub mod split;
pub mod variance;

pub use context::Ctx;

use crate::fxhash::{FxMap, FxSet};

/// Recorded with every flag and proposal; bump when scoring changes.
pub const DETECTOR_VERSION: &str = "detect-2.0";

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
    let v: FxMap<&str, VarianceInfo> = variances
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
    score_with(ds, &v, threads())
}

/// Like [`score_dataset`], with the plan's amount per variance (for the proposal).
pub fn score_dataset_full(
    ds: &Dataset,
    variances: &BTreeMap<String, VarianceInfo>,
) -> Vec<Finding> {
    score_dataset_threads(ds, variances, threads())
}

/// [`score_dataset_full`] on a given number of threads (the result does not depend on it).
pub fn score_dataset_threads(
    ds: &Dataset,
    variances: &BTreeMap<String, VarianceInfo>,
    threads: usize,
) -> Vec<Finding> {
    let v: FxMap<&str, VarianceInfo> = variances
        .iter()
        .map(|(k, r)| (k.as_str(), r.clone()))
        .collect();
    score_with(ds, &v, threads)
}

fn threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 4)
}

/// What the pairwise detectors found, keyed by transaction index.
#[derive(Default)]
struct Pairwise {
    splits: FxMap<usize, Hit>,
    dups: FxMap<usize, Hit>,
    dup_soft: FxMap<usize, Soft>,
    /// The ERP cross-check (`erp_mismatch`, and the sales it could not check).
    erp: erp::ErpCheck,
    /// Partner patterns over many sales (period-end clusters, volume spikes, mix).
    patterns: pattern::Hits,
}

/// Runs `f` on every item of `0..n` across `threads` threads (work handed out in order
/// from a shared counter) and returns the results in item order.
fn par_map<T: Send>(n: usize, threads: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let next = AtomicUsize::new(0);
    let mut parts: Vec<(usize, T)> = Vec::with_capacity(n);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads.max(1))
            .map(|_| {
                let (next, f) = (&next, &f);
                s.spawn(move || {
                    let mut mine = Vec::new();
                    loop {
                        let k = next.fetch_add(1, Ordering::Relaxed);
                        if k >= n {
                            break;
                        }
                        mine.push((k, f(k)));
                    }
                    mine
                })
            })
            .collect();
        for h in handles {
            match h.join() {
                Ok(v) => parts.extend(v),
                Err(e) => std::panic::resume_unwind(e),
            }
        }
    });
    parts.sort_by_key(|(k, _)| *k);
    parts.into_iter().map(|(_, t)| t).collect()
}

/// Split groups and duplicates, block by block (blocks are independent: a duplicate or
/// a split piece is always of the same partner and sku).
fn pairwise(ctx: &Ctx, threads: usize) -> Pairwise {
    let blocks = split::blocks(ctx);
    // Big blocks first so the threads finish together; results are merged by key.
    let mut by_size: Vec<usize> = (0..blocks.len()).collect();
    by_size.sort_by_key(|&b| std::cmp::Reverse(blocks[b].len()));
    let results = par_map(by_size.len(), threads, |k| {
        let block = &blocks[by_size[k]];
        // The block's figures side by side: the pair loops scan them without touching
        // the (large, scattered) transactions until a pair passes the cheap tests.
        let feats: Vec<context::Feat> = block.iter().map(|&i| ctx.feat[i as usize]).collect();
        let splits = split::detect_block(ctx, block, &feats);
        let in_split: FxSet<usize> = splits.iter().map(|(i, _)| *i).collect();
        let (dups, soft) = duplicate::detect_block(ctx, block, &feats, &in_split);
        (splits, dups, soft)
    });
    let mut out = Pairwise::default();
    for (splits, dups, soft) in results {
        out.splits.extend(splits);
        out.dups.extend(dups);
        out.dup_soft.extend(soft);
    }
    out
}

fn score_with(ds: &Dataset, variances: &FxMap<&str, VarianceInfo>, threads: usize) -> Vec<Finding> {
    let ctx = Ctx::build(ds);
    let mut pw = pairwise(&ctx, threads);
    pw.erp = erp::check(&ctx);
    pw.patterns = pattern::detect(&ctx);
    // Score in output order (by transaction id), in chunks spread over the threads.
    let n = ctx.order.len();
    let chunk = 4096;
    let parts = par_map(n.div_ceil(chunk), threads, |c| {
        ctx.order[c * chunk..((c + 1) * chunk).min(n)]
            .iter()
            .map(|&i| score_one(&ctx, i as usize, &pw, variances))
            .collect::<Vec<_>>()
    });
    let mut out: Vec<Finding> = Vec::with_capacity(n);
    for p in parts {
        out.extend(p);
    }
    out
}

fn score_one(ctx: &Ctx, i: usize, pw: &Pairwise, variances: &FxMap<&str, VarianceInfo>) -> Finding {
    let t = &ctx.ds.transactions[i];
    let accrued = ctx.accrued_at(i);
    let mut hits: Vec<Hit> = Vec::new();
    let mut soft: f64 = pw.dup_soft.get(&i).copied().unwrap_or(0.0);
    let (h, s) = deal_size::detect(ctx, i, t);
    hits.extend(h);
    soft = soft.max(s);
    hits.extend(discount::detect(ctx, i, t));
    hits.extend(certification::detect(ctx, t));
    hits.extend(pw.dups.get(&i).cloned());
    let (h, s) = backdated::detect(ctx, t);
    hits.extend(h);
    soft = soft.max(s);
    hits.extend(pw.splits.get(&i).cloned());
    hits.extend(registration::detect(ctx, i, t));
    hits.extend(variance::detect(
        t,
        variances.get(t.transaction_id.as_str()),
        accrued,
    ));
    hits.extend(pw.erp.hits.get(&i).cloned());
    if let Some(p) = pw.patterns.get(&i) {
        hits.extend(p.iter().cloned());
    }
    hits.sort_by_key(|h| h.kind);
    let mut f = combine(ctx, t, accrued, hits, soft);
    if pw.erp.not_evaluated.contains(&i) {
        f.score.not_evaluated = vec![AnomalyKind::ErpMismatch];
        if let Some(m) = f.evidence.as_object_mut() {
            m.insert(
                "not_evaluated".into(),
                serde_json::json!([AnomalyKind::ErpMismatch.as_str()]),
            );
        }
    }
    f
}

/// The checks a missing field keeps from running: a detector without its input says
/// "not evaluated" (with the field) instead of passing the record.
pub fn needs(field: &str) -> &'static [AnomalyKind] {
    match field {
        "quantity" | "unit_list_price" | "unit_net_price" => &[AnomalyKind::DiscountPolicy],
        "registration_id" => &[AnomalyKind::RegistrationMismatch],
        "closed_on" => &[AnomalyKind::Backdated, AnomalyKind::PeriodEndCluster],
        _ => &[],
    }
}

/// Marks in `f` the checks its transaction's `missing` fields kept from running (kinds
/// that found something anyway stay as found).
pub fn mark_missing_inputs(f: &mut Finding, missing: &[String]) {
    let mut by_kind: BTreeMap<AnomalyKind, Vec<&str>> = BTreeMap::new();
    for m in missing {
        for k in needs(m) {
            if !f.score.kinds.contains(k) {
                by_kind.entry(*k).or_default().push(m);
            }
        }
    }
    if by_kind.is_empty() {
        return;
    }
    let mut notes: Vec<serde_json::Value> = f
        .evidence
        .get("not_evaluated")
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default();
    for (k, fields) in &by_kind {
        if !f.score.not_evaluated.contains(k) {
            f.score.not_evaluated.push(*k);
        }
        notes.push(serde_json::json!(format!(
            "{} (no {} from the PRM or an import)",
            k.as_str(),
            fields.join(", ")
        )));
    }
    f.score.not_evaluated.sort();
    if let Some(m) = f.evidence.as_object_mut() {
        m.insert("not_evaluated".into(), serde_json::Value::Array(notes));
    }
}

/// Marks in `f` a rule of the data set its row breaks (a PRM row kept as the source of
/// truth, see `import::integrity::check_pulled_transaction`): kind `data_integrity`
/// first, score 1, the field and rule named, and a hold of the accrual so it is never
/// paid without a decision (unless a finding already proposes a reversal).
pub fn mark_integrity_issue(
    f: &mut Finding,
    field: &str,
    reason: &str,
    accrued: Decimal,
    currency: &str,
) {
    let k = AnomalyKind::DataIntegrity;
    if !f.score.kinds.contains(&k) {
        f.score.kinds.insert(0, k);
        f.score.reasons.insert(
            0,
            format!("The PRM's row breaks a data rule: {field}: {reason}"),
        );
    }
    f.score.score = 1.0;
    f.score.confidence = 1.0;
    if let Some(m) = f.evidence.as_object_mut() {
        m.insert(
            k.as_str().into(),
            serde_json::json!({ "field": field, "rule": reason }),
        );
    } else {
        f.evidence = serde_json::json!({ k.as_str(): { "field": field, "rule": reason } });
    }
    let keep = f
        .proposal
        .as_ref()
        .is_some_and(|p| matches!(p.action, ProposalAction::Reverse | ProposalAction::Hold));
    if !keep {
        f.proposal = Some(Proposal {
            action: ProposalAction::Hold,
            current_amount: accrued,
            proposed_amount: Decimal::ZERO,
            delta: -accrued,
            rationale: format!(
                "Hold the {} accrued until the PRM's row is corrected ({field}: {reason})",
                crate::money::format_money(accrued, currency)
            ),
        });
    }
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
            not_evaluated: Vec::new(),
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
    if let Some(h) = has(AnomalyKind::ErpMismatch) {
        return make(
            ProposalAction::Hold,
            Decimal::ZERO,
            format!(
                "Hold the {} accrued until the sale is reconciled with the ERP ({})",
                money(accrued),
                h.reason
            ),
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
    if let Some(h) = has(AnomalyKind::Backdated) {
        // The claimed close date books the deal (and its accrual) into an earlier quarter
        // than the one it was submitted in: that quarter's attainment, accelerator and
        // the tier of that date decide the commission. Hold what is at stake until the
        // close date is proven; name the two quarters and tiers so the reviewer can
        // recompute at the submission quarter if the proof does not come.
        let q = |k: &str| h.evidence[k].as_str().unwrap_or("?").to_string();
        let (claimed, submitted) = (q("closed_quarter"), q("submitted_quarter"));
        let tier_then = ctx.tier_on(&t.partner_id, t.closed_on);
        let tier_now = ctx.tier_on(&t.partner_id, t.submitted_at.date_naive());
        let tiers = match (tier_then, tier_now) {
            (Some(a), Some(b)) if a != b => format!(
                "; the partner was {} on the claimed date and {} when it submitted",
                ctx.tier_name(a),
                ctx.tier_name(b)
            ),
            _ => String::new(),
        };
        return make(
            ProposalAction::Hold,
            Decimal::ZERO,
            format!(
                "Hold the {} accrued on this {} deal pending proof of the close date: it is booked in {} but was submitted in {}{}; without proof, recompute it in {}",
                money(accrued),
                money(t.amount),
                claimed,
                submitted,
                tiers,
                submitted
            ),
        );
    }
    for (kind, why) in [
        (
            AnomalyKind::PeriodEndCluster,
            "pending the customer's order documents and delivery dates for this quarter-end deal",
        ),
        (
            AnomalyKind::VolumeSpike,
            "pending the customer's order documents for this month's unusual volume",
        ),
        (
            AnomalyKind::ProductMix,
            "pending the customer's order documents for this unusual product volume",
        ),
    ] {
        if has(kind).is_some() {
            return make(
                ProposalAction::Hold,
                Decimal::ZERO,
                format!("Hold the {} accrued {why}", money(accrued)),
            );
        }
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
    let mut buf = Vec::with_capacity(96);
    write_score_line(&mut buf, s);
    String::from_utf8(buf).unwrap_or_default()
}

/// Appends [`score_line`] (without a newline) to `buf`, without building a JSON value.
pub fn write_score_line(buf: &mut Vec<u8>, s: &Score) {
    #[derive(Serialize)]
    struct Line<'a> {
        transaction_id: &'a str,
        score: f64,
        confidence: f64,
        kinds: &'a [AnomalyKind],
        reasons: &'a [String],
        #[serde(skip_serializing_if = "<[AnomalyKind]>::is_empty")]
        not_evaluated: &'a [AnomalyKind],
    }
    let line = Line {
        transaction_id: &s.transaction_id,
        score: round4(s.score),
        confidence: round4(s.confidence),
        kinds: &s.kinds,
        reasons: &s.reasons,
        not_evaluated: &s.not_evaluated,
    };
    // Serialising plain strings, numbers and unit enums into memory cannot fail.
    let _ = serde_json::to_writer(buf, &line);
}

#[cfg(test)]
mod tests;
