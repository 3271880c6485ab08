//! Scoring the cache: loads the program from the store, scores it (baselines are
//! always recomputed from the whole cache, so they stay current) and writes only the
//! flags whose input row changed or is new, that another detector version scored, or
//! whose result moved because a baseline it depends on moved (another sale of the
//! partner, its tier's deals, a neighbouring submission, the plan). Everything else is
//! left as stored. Calls store methods only.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::Serialize;

use crate::detect::{self, score_dataset_full, Finding, VarianceInfo, DETECTOR_VERSION};
use crate::model::Dataset;
use crate::store::flags::{FlagRow, ProposalRow};
use crate::store::Store;

/// What a cache scoring did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScoreSummary {
    pub transactions: usize,
    /// Flags written (new, changed rows, a new detector version, or a moved baseline).
    pub rescored: usize,
    /// Of `rescored`: rows that did not change themselves but whose result did, because
    /// a baseline or neighbour it depends on changed.
    pub baseline_moved: usize,
    pub unchanged: usize,
    /// Transactions with at least one kind.
    pub flagged: usize,
    pub flagged_in_window: usize,
    pub detector_version: String,
    /// Sign-offs that lapsed back to review because their flag or proposal changed.
    pub lapsed: Vec<String>,
}

/// The plan's variances as the detector needs them (reason and plan total).
pub fn variances_for(ds: &Dataset) -> BTreeMap<String, VarianceInfo> {
    // One calculator: its indexes serve the recalculation and the variance check.
    let calc = crate::plan::Calculator::new(ds);
    let lines = calc.recalculate();
    let mut plan_total: BTreeMap<&str, Decimal> = BTreeMap::new();
    for l in &lines {
        *plan_total.entry(l.transaction_id.as_str()).or_default() += l.amount;
    }
    crate::plan::variances_with(&calc, &lines)
        .into_iter()
        .map(|(id, v)| {
            let plan_amount = Some(plan_total.get(id.as_str()).copied().unwrap_or_default());
            (
                id,
                VarianceInfo {
                    reason: v.reason,
                    plan_amount,
                },
            )
        })
        .collect()
}

/// Scores the cache and writes flags and proposals incrementally.
///
/// `progress(done, total)` is called as rows are written. `scored_at` is taken from
/// the program's `as_of` date plus the wall clock only here in the shell-side code.
pub fn score_cache(
    store: &mut Store,
    progress: &mut dyn FnMut(usize, usize),
) -> anyhow::Result<ScoreSummary> {
    let ds = store.load_dataset()?;
    let variances = variances_for(&ds);
    let mut findings = score_dataset_full(&ds, &variances);
    // Transactions a PRM pulled without some inputs: those checks did not run.
    let missing = store.transactions_missing()?;
    if !missing.is_empty() {
        for f in &mut findings {
            if let Some(m) = missing.get(f.score.transaction_id.as_str()) {
                detect::mark_missing_inputs(f, m);
            }
        }
    }
    let row_hashes = store.transaction_row_hashes()?;
    let existing = store.flag_results()?;
    let stored_proposals = store.proposal_digests()?;
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let by_id: std::collections::HashMap<&str, &crate::model::Transaction> = ds
        .transactions
        .iter()
        .map(|t| (t.transaction_id.as_str(), t))
        .collect();
    // PRM rows kept although they break a data rule: flagged so they are never paid
    // without a decision. An issue whose row is consistent now (an import replaced it,
    // the program's currency changed) is cleared instead.
    let mut issues = store.integrity_issues()?;
    if !issues.is_empty() {
        let currency = Some(ds.program.currency.as_str());
        let mut cleared = Vec::new();
        issues.retain(|(id, _, _)| {
            let still = by_id.get(id.as_str()).is_some_and(|t| {
                let m: Vec<&str> = missing
                    .get(id.as_str())
                    .map(|v| v.iter().map(String::as_str).collect())
                    .unwrap_or_default();
                crate::import::integrity::check_pulled_transaction(t, currency, &m).is_some()
            });
            if !still {
                cleared.push(id.clone());
            }
            still
        });
        for id in &cleared {
            store.clear_integrity_issue(id)?;
        }
        let by_tx: std::collections::HashMap<&str, (&str, &str)> = issues
            .iter()
            .map(|(t, f, r)| (t.as_str(), (f.as_str(), r.as_str())))
            .collect();
        let mut accrued: std::collections::HashMap<&str, Decimal> = Default::default();
        for l in &ds.commissions {
            if by_tx.contains_key(l.transaction_id.as_str()) {
                *accrued.entry(l.transaction_id.as_str()).or_default() += l.amount;
            }
        }
        for f in &mut findings {
            let id = f.score.transaction_id.as_str();
            if let Some((field, reason)) = by_tx.get(id) {
                let a = accrued.get(id).copied().unwrap_or_default();
                detect::mark_integrity_issue(f, field, reason, a, &ds.program.currency);
            }
        }
    }
    let window = ds.program.review_window;
    let currency = ds.program.currency.clone();
    let total = findings.len();
    let mut flags = Vec::new();
    let mut proposals = Vec::new();
    let mut clear = Vec::new();
    let mut summary = ScoreSummary {
        transactions: total,
        rescored: 0,
        baseline_moved: 0,
        unchanged: 0,
        flagged: 0,
        flagged_in_window: 0,
        detector_version: DETECTOR_VERSION.to_string(),
        lapsed: Vec::new(),
    };
    for f in &findings {
        let id = f.score.transaction_id.as_str();
        let Some(t) = by_id.get(id) else { continue };
        let in_window = window.contains(&t.submitted_at);
        if !f.score.kinds.is_empty() {
            summary.flagged += 1;
            if in_window {
                summary.flagged_in_window += 1;
            }
        }
        let hash = row_hashes.get(id).cloned().unwrap_or_default();
        let row = flag_row(f, t, &hash, in_window, &now);
        let stored = existing.get(id);
        let same_input =
            stored.is_some_and(|s| s.row_hash == hash && s.detector_version == DETECTOR_VERSION);
        // A clean result on a row the policy drew as a QA sample keeps the sample (the
        // policy marks the flag of that very row version; a rescore must not unmark it).
        let qa_kept =
            |s: &crate::store::flags::StoredResult| s.kinds == QA_SAMPLE_KINDS && row.kinds == "[]";
        let same_result = stored.is_some_and(|s| {
            s.score == row.score
                && s.confidence == row.confidence
                && ((s.kinds == row.kinds && s.reasons == row.reasons) || qa_kept(s))
                && s.evidence == row.evidence
        }) && same_proposal(stored_proposals.get(id), f.proposal.as_ref());
        if same_input && same_result {
            summary.unchanged += 1;
            continue;
        }
        summary.rescored += 1;
        if same_input {
            summary.baseline_moved += 1;
        }
        flags.push(row);
        match &f.proposal {
            Some(p) => proposals.push(ProposalRow {
                transaction_id: id.to_string(),
                action: p.action.as_str().to_string(),
                current_amount: p.current_amount.to_string(),
                proposed_amount: p.proposed_amount.to_string(),
                delta: p.delta.to_string(),
                currency: currency.clone(),
                rationale: p.rationale.clone(),
                detector_version: DETECTOR_VERSION.to_string(),
                created_at: now.clone(),
            }),
            None => clear.push(id.to_string()),
        }
    }
    // Write in chunks so progress is visible on big caches.
    let chunk = 20_000;
    let mut done = summary.unchanged;
    progress(done, total);
    let mut pi = 0;
    for fl in flags.chunks(chunk) {
        let ids: std::collections::HashSet<&str> =
            fl.iter().map(|f| f.transaction_id.as_str()).collect();
        let mut ps = Vec::new();
        while pi < proposals.len() && ids.contains(proposals[pi].transaction_id.as_str()) {
            ps.push(proposals[pi].clone());
            pi += 1;
        }
        let cl: Vec<String> = clear
            .iter()
            .filter(|c| ids.contains(c.as_str()))
            .cloned()
            .collect();
        store.write_flags(fl, &ps, &cl)?;
        done += fl.len();
        progress(done, total);
    }
    if pi < proposals.len() {
        store.write_flags(&[], &proposals[pi..], &[])?;
    }
    if summary.rescored > 0 {
        store.rebuild_queue_counters()?;
        // A sign-off bound to a flag or proposal that just changed lapses back to review.
        let actor = crate::workflow::Actor::new("scorer", crate::config::Role::Manager);
        summary.lapsed = crate::workflow::lapse_changed_signoffs(store, &actor)?;
    }
    Ok(summary)
}

/// True when the stored proposal (action, proposed amount, rationale) is the new one.
fn same_proposal(
    stored: Option<&(String, String, String)>,
    new: Option<&detect::Proposal>,
) -> bool {
    match (stored, new) {
        (None, None) => true,
        (Some((action, amount, rationale)), Some(p)) => {
            action == p.action.as_str()
                && *amount == p.proposed_amount.to_string()
                && *rationale == p.rationale
        }
        _ => false,
    }
}

/// The kinds of a flag the routing policy put into the queue as a QA sample.
pub const QA_SAMPLE_KINDS: &str = r#"["qa_sample"]"#;

fn flag_row(
    f: &Finding,
    t: &crate::model::Transaction,
    hash: &str,
    in_window: bool,
    now: &str,
) -> FlagRow {
    let at_stake = match &f.proposal {
        Some(p) => p.delta.abs().max(Decimal::ZERO),
        None => Decimal::ZERO,
    };
    let kinds: Vec<&str> = f.score.kinds.iter().map(|k| k.as_str()).collect();
    FlagRow {
        transaction_id: f.score.transaction_id.clone(),
        score: f.score.score,
        confidence: f.score.confidence,
        kinds: serde_json::to_string(&kinds).unwrap_or_else(|_| "[]".into()),
        reasons: serde_json::to_string(&f.score.reasons).unwrap_or_else(|_| "[]".into()),
        evidence: f.evidence.to_string(),
        detector_version: DETECTOR_VERSION.to_string(),
        row_hash: hash.to_string(),
        scored_at: now.to_string(),
        in_window,
        amount_minor: crate::money::to_minor(t.amount),
        at_stake_minor: crate::money::to_minor(at_stake),
        partner_id: t.partner_id.clone(),
    }
}
