//! Measured precision per kind: of the flags of a kind that people decided, the share
//! they confirmed (approved or overridden) rather than dismissed. The `policy` actor's own
//! decisions never count: automation cannot vouch for itself.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;

use crate::store::policy::DecisionOnKinds;

/// The actor name automated decisions are made under.
pub const POLICY_ACTOR: &str = "policy";

/// Precision of one kind.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KindPrecision {
    pub kind: String,
    pub confirmed: u32,
    pub dismissed: u32,
    pub decided: u32,
    /// confirmed / decided (None when nothing was decided).
    pub precision: Option<f64>,
    /// Whether the gate for `assist` is met.
    pub passes: bool,
}

/// Per kind, from every (not reverted) decision; the latest human verdict per
/// transaction counts once.
pub fn measure(
    decisions: &[DecisionOnKinds],
    min_precision: f64,
    min_decisions: u32,
) -> Vec<KindPrecision> {
    // Latest verdict per transaction (decisions come oldest first).
    let mut latest: HashMap<&str, &DecisionOnKinds> = HashMap::new();
    for d in decisions {
        if d.actor == POLICY_ACTOR {
            continue;
        }
        if matches!(d.action.as_str(), "approve" | "override" | "dismiss") {
            latest.insert(d.transaction_id.as_str(), d);
        }
    }
    let mut per: BTreeMap<String, (u32, u32)> = BTreeMap::new();
    for d in latest.values() {
        let confirmed = d.action != "dismiss";
        // A QA sample is not a detector's claim: its verdicts measure no kind.
        for k in d.kinds.iter().filter(|k| *k != "qa_sample") {
            let e = per.entry(k.clone()).or_default();
            if confirmed {
                e.0 += 1;
            } else {
                e.1 += 1;
            }
        }
    }
    per.into_iter()
        .map(|(kind, (confirmed, dismissed))| {
            let decided = confirmed + dismissed;
            let precision = (decided > 0).then(|| f64::from(confirmed) / f64::from(decided));
            KindPrecision {
                kind,
                confirmed,
                dismissed,
                decided,
                precision,
                passes: decided >= min_decisions && precision.is_some_and(|p| p >= min_precision),
            }
        })
        .collect()
}

/// The kinds that pass the gate.
pub fn precise_kinds(p: &[KindPrecision]) -> BTreeSet<String> {
    p.iter()
        .filter(|k| k.passes)
        .map(|k| k.kind.clone())
        .collect()
}

/// One line about a kind for a refusal: "duplicate: 0.91 over 40 decisions (needs 0.95
/// over 50)".
pub fn describe(k: Option<&KindPrecision>, kind: &str, min_p: f64, min_n: u32) -> String {
    match k {
        Some(k) => format!(
            "{kind}: {} over {} decision{} (needs {min_p:.2} over {min_n})",
            k.precision
                .map(|p| format!("{p:.2}"))
                .unwrap_or_else(|| "no precision".into()),
            k.decided,
            if k.decided == 1 { "" } else { "s" }
        ),
        None => format!("{kind}: no decisions yet (needs {min_p:.2} over {min_n})"),
    }
}
