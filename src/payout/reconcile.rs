//! `tierdesk reconcile`: reads bank files, classifies every entry against the exported
//! payments and applies the result in one transaction per file. A file already read
//! (same bytes) changes nothing: its stored classification is shown again.

use serde_json::json;
use sha2::{Digest, Sha256};

use super::matching::{self, Outcome};
use super::statements::{self, StmtEntry};
use super::PayoutError;
use crate::store::payout::EntryRow;
use crate::store::Store;
use crate::workflow::{self, Actor};

/// One output line.
#[derive(Debug, Clone, PartialEq)]
pub struct EntryResult {
    pub file: String,
    pub entry: i64,
    pub class: String,
    pub lines: Vec<String>,
    pub code: Option<String>,
    /// True when the file had been read before (nothing applied now).
    pub repeated: bool,
}

/// Parses and checks every file first: one malformed file refuses the whole call.
pub fn reconcile(
    store: &mut Store,
    actor: &Actor,
    files: &[(String, Vec<u8>)],
    window_days: i64,
    now: &str,
) -> Result<Vec<EntryResult>, PayoutError> {
    let mut parsed: Vec<(String, String, statements::Format, Vec<StmtEntry>)> = Vec::new();
    for (name, bytes) in files {
        let (f, entries) = statements::parse(bytes).map_err(|r| {
            PayoutError::Refused(format!(
                "{name}:{}: {}; nothing of it was applied",
                r.line, r.what
            ))
        })?;
        parsed.push((name.clone(), hex::encode(Sha256::digest(bytes)), f, entries));
    }
    let mut out = Vec::new();
    for (name, sha, format, entries) in parsed {
        if let Some(stored) = store.bank_file_entries(&sha)? {
            for (entry, class, lines, code) in stored {
                out.push(EntryResult {
                    file: name.clone(),
                    entry,
                    class,
                    lines,
                    code,
                    repeated: true,
                });
            }
            continue;
        }
        let sent = store.sent_payments()?;
        let index = matching::Index::new(&sent);
        let prenotes = store.payout_prenote_traces()?;
        // (trace, code) of returned prenotes, applied with the file.
        let mut prenote_returns: Vec<(String, String)> = Vec::new();
        let outcomes: Vec<(StmtEntry, Outcome)> = entries
            .into_iter()
            .map(|e| {
                let mut o = matching::classify_in(&e, &index, window_days);
                // A return of a prenote (no payment went out): the account is marked and
                // its payee held until the bank details change.
                if o.class == "unmatched" && e.change.is_none() {
                    if let (Some(code), Some((trace, pid))) = (
                        e.return_code.as_ref(),
                        e.refs
                            .iter()
                            .find_map(|r| prenotes.get(r.trim()).map(|p| (r.trim(), p))),
                    ) {
                        prenote_returns.push((trace.to_string(), code.clone()));
                        o = Outcome {
                            class: "returned",
                            lines: vec![format!("prenote:{pid}")],
                            code: Some(code.clone()),
                        };
                    }
                }
                (e, o)
            })
            .collect();
        let mut runs: Vec<&str> = outcomes
            .iter()
            .flat_map(|(_, o)| {
                o.lines
                    .iter()
                    .filter_map(|l| l.split_once('/').map(|p| p.0))
            })
            .collect();
        runs.sort_unstable();
        runs.dedup();
        store.wf_tx(|db| -> Result<(), PayoutError> {
            db.insert_bank_file(&sha, &name, format.as_str(), now)?;
            for (e, o) in &outcomes {
                db.apply_bank_entry(
                    &sha,
                    &EntryRow {
                        entry: e.entry as i64,
                        class: o.class,
                        lines: &o.lines,
                        code: o.code.as_deref(),
                        amount: e.amount,
                        currency: &e.currency,
                        change: e.change.as_ref().map(|(c, d)| (c.as_str(), d.as_str())),
                    },
                )?;
            }
            for run in &runs {
                db.update_run_state(run)?;
            }
            for (trace, code) in &prenote_returns {
                db.payout_prenote_returned(trace, code, now)?;
            }
            let count = |c: &str| outcomes.iter().filter(|(_, o)| o.class == c).count();
            workflow::record_event(
                db,
                actor,
                now,
                "reconcile",
                &format!("bank_file:{}", &sha[..16]),
                Some(json!({
                    "file": name, "format": format.as_str(), "entries": outcomes.len(),
                    "matched": count("matched"), "returned": count("returned"),
                    "exceptions": outcomes.len() - count("matched") - count("returned"),
                })),
                None,
            )?;
            Ok(())
        })?;
        for (e, o) in outcomes {
            out.push(EntryResult {
                file: name.clone(),
                entry: e.entry as i64,
                class: o.class.to_string(),
                lines: o.lines,
                code: o.code,
                repeated: false,
            });
        }
    }
    Ok(out)
}
