//! The hash-chained audit trail.
//!
//! Each entry's hash is SHA-256 over a canonical serialisation: a JSON object with a
//! fixed key order (`seq, at, actor, role, action, target, before, after, reason, score,
//! confidence, detector_version, decision_id, prev_hash`), where `before`/`after` are the
//! exact stored JSON text. `prev_hash` is the previous entry's hash (64 zeros for the
//! first), so altering, removing or reordering any entry breaks the chain from there on.
//! The chain head is also recorded in `audit_anchor` (and sent with every push), so
//! entries cut from the end are noticed too.

use serde_json::json;
use sha2::{Digest, Sha256};

use super::types::{AuditEntry, ChainBreak, ChainReport, WorkflowError};
use super::Actor;
use crate::store::workflow::{AuditRow, FlagRow, WfDb};
use crate::store::Store;

/// The `prev_hash` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The canonical serialisation an entry's hash covers.
pub fn canonical(a: &AuditRow) -> String {
    json!({
        "seq": a.seq,
        "at": a.at,
        "actor": a.actor,
        "role": a.role,
        "action": a.action,
        "target": a.target,
        "before": a.before,
        "after": a.after,
        "reason": a.reason,
        "score": a.score,
        "confidence": a.confidence,
        "detector_version": a.detector_version,
        "decision_id": a.decision_id,
        "prev_hash": a.prev_hash,
    })
    .to_string()
}

pub fn hash_entry(a: &AuditRow) -> String {
    hex::encode(Sha256::digest(canonical(a).as_bytes()))
}

/// What an audit entry records (the chain fields are filled by [`append`]).
pub(crate) struct NewEntry<'a> {
    pub action: &'a str,
    pub target: &'a str,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
    pub reason: Option<&'a str>,
    pub flag: Option<&'a FlagRow>,
    pub decision_id: Option<&'a str>,
}

/// Appends an entry to the chain; returns its hash (the new head).
pub(crate) fn append(
    db: &WfDb<'_>,
    actor: &Actor,
    role: &str,
    at: &str,
    e: NewEntry<'_>,
) -> Result<String, WorkflowError> {
    let (seq, prev_hash) = match db.audit_last()? {
        Some((s, h)) => (s + 1, h),
        None => (1, GENESIS.to_string()),
    };
    let mut row = AuditRow {
        seq,
        at: at.to_string(),
        actor: actor.user.clone(),
        role: role.to_string(),
        action: e.action.to_string(),
        target: e.target.to_string(),
        before: e.before.map(|v| v.to_string()),
        after: e.after.map(|v| v.to_string()),
        reason: e.reason.map(str::to_string),
        score: e.flag.map(|f| f.score),
        confidence: e.flag.map(|f| f.confidence),
        detector_version: e.flag.map(|f| f.detector_version.clone()),
        decision_id: e.decision_id.map(str::to_string),
        prev_hash,
        hash: String::new(),
    };
    row.hash = hash_entry(&row);
    db.insert_audit(&row)?;
    Ok(row.hash)
}

pub(crate) fn to_entry(r: AuditRow) -> AuditEntry {
    let parse = |s: Option<String>| {
        s.map(|t| serde_json::from_str(&t).unwrap_or(serde_json::Value::String(t)))
    };
    AuditEntry {
        seq: r.seq,
        at: r.at,
        actor: r.actor,
        role: r.role,
        action: r.action,
        target: r.target,
        before: parse(r.before),
        after: parse(r.after),
        reason: r.reason,
        score: r.score,
        confidence: r.confidence,
        detector_version: r.detector_version,
        decision_id: r.decision_id,
        prev_hash: r.prev_hash,
        hash: r.hash,
    }
}

/// The audit trail of one transaction, oldest first.
pub fn trail(store: &Store, tx_id: &str) -> Result<Vec<AuditEntry>, WorkflowError> {
    Ok(store
        .wf()
        .audit_for(tx_id)?
        .into_iter()
        .map(to_entry)
        .collect())
}

/// Calls `f` on every audit entry (optionally of one transaction) in order.
pub fn export(
    store: &Store,
    transaction: Option<&str>,
    mut f: impl FnMut(AuditEntry) -> anyhow::Result<()>,
) -> Result<(), WorkflowError> {
    let db = store.wf();
    if let Some(t) = transaction {
        for r in db.audit_for(t)? {
            f(to_entry(r)).map_err(|e| WorkflowError::Corrupt(e.to_string()))?;
        }
        return Ok(());
    }
    let mut err = None;
    db.for_each_audit(|r| match f(to_entry(r)) {
        Ok(()) => Ok(true),
        Err(e) => {
            err = Some(e);
            Ok(false)
        }
    })?;
    match err {
        Some(e) => Err(WorkflowError::Corrupt(e.to_string())),
        None => Ok(()),
    }
}

/// The latest hash of the chain (the genesis hash when the trail is empty).
pub fn audit_head(store: &Store) -> Result<String, WorkflowError> {
    Ok(store
        .wf()
        .audit_last()?
        .map(|(_, h)| h)
        .unwrap_or_else(|| GENESIS.to_string()))
}

/// Recomputes the whole chain; names the first entry altered, removed or reordered.
pub fn verify_chain(store: &Store) -> Result<ChainReport, WorkflowError> {
    let db = store.wf();
    let mut expected_seq = 1i64;
    let mut prev = GENESIS.to_string();
    let mut count = 0u64;
    let mut first_bad: Option<ChainBreak> = None;
    db.for_each_audit(|r| {
        count += 1;
        let recomputed = hash_entry(&r);
        let why = if r.seq != expected_seq {
            Some((
                expected_seq,
                format!(
                    "entry {expected_seq} is missing: the chain jumps from entry {} to entry {} (removed or renumbered)",
                    expected_seq - 1,
                    r.seq
                ),
            ))
        } else if recomputed != r.hash {
            Some((
                r.seq,
                format!(
                    "entry {} was altered or moved: its content no longer matches its hash",
                    r.seq
                ),
            ))
        } else if r.prev_hash != prev {
            Some((
                r.seq,
                format!(
                    "entry {} does not follow entry {}: the entry before it was altered, removed or reordered",
                    r.seq,
                    r.seq - 1
                ),
            ))
        } else {
            None
        };
        if let Some((seq, why)) = why {
            first_bad = Some(ChainBreak { seq, why });
            return Ok(false);
        }
        expected_seq += 1;
        prev = r.hash;
        Ok(true)
    })?;
    if first_bad.is_none() {
        if let Some((aseq, ahash)) = db.audit_anchor()? {
            let last = expected_seq - 1;
            if aseq != last || ahash != prev {
                let seq = if aseq > last { last + 1 } else { aseq };
                first_bad = Some(ChainBreak {
                    seq,
                    why: if aseq > last {
                        format!(
                            "entries {} to {aseq} were removed: the recorded head is entry {aseq} but the trail ends at entry {last}",
                            last + 1
                        )
                    } else {
                        format!("entry {aseq} no longer matches the recorded chain head")
                    },
                });
            }
        } else if count > 0 {
            first_bad = Some(ChainBreak {
                seq: expected_seq - 1,
                why: "the recorded chain head is missing".into(),
            });
        }
    }
    Ok(ChainReport {
        entries: count,
        head: prev,
        first_bad,
    })
}
