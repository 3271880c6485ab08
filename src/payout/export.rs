//! Writing an approved run as the bank's file: NACHA for ACH, pain.001.001.09 for
//! SEPA and other currencies. The first export fixes the file's creation time and the
//! payment references (trace numbers, EndToEndIds), so exporting again gives the same
//! bytes; a line an earlier exported run pays is never exported again.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::checks::Rail;
use super::{nacha, pain001, PayoutConfig, PayoutError};
use crate::store::Store;
use crate::workflow::{self, Actor};

pub struct Exported {
    pub bytes: Vec<u8>,
    pub count: usize,
    pub total: Decimal,
    pub currency: String,
    pub rail: &'static str,
    /// ACH prenotes (zero-dollar entries to new accounts) in the file.
    pub prenotes: usize,
}

/// The EndToEndId of a payee's payment in a run (≤ 35 characters).
pub fn end_to_end_id(run_id: &str, seq: i64) -> String {
    let s = format!("{run_id}-{seq:06}");
    s.chars()
        .rev()
        .take(35)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect()
}

fn refused(s: String) -> PayoutError {
    PayoutError::Refused(s)
}

pub fn export(
    store: &mut Store,
    actor: &Actor,
    cfg: &PayoutConfig,
    run_id: &str,
    rail: Option<&str>,
    now: &str,
) -> Result<Exported, PayoutError> {
    let run = store
        .payout_run(run_id)?
        .ok_or_else(|| PayoutError::UnknownRun(run_id.to_string()))?;
    let first = match run.state.as_str() {
        "approved" => true,
        "exported" | "settled" | "returned" => false,
        s => {
            return Err(refused(format!(
                "{run_id} is {s}; a run is exported once a manager approved it"
            )))
        }
    };
    let asked = match rail {
        Some(r) => Some(
            Rail::parse(r)
                .ok_or_else(|| refused(format!("--rail {r:?}: expected ach, sepa or pain001")))?,
        ),
        None => None,
    };
    let stored = run.rail.as_deref().and_then(Rail::parse);
    let pp = store.payout_program()?;
    let rail = match (asked, stored) {
        (Some(a), Some(s)) if a != s => {
            return Err(refused(format!(
                "{run_id} was exported as {}; it cannot be exported as {} too",
                s.as_str(),
                a.as_str()
            )))
        }
        (Some(a), _) => a,
        (None, Some(s)) => s,
        (None, None) => pp
            .payout_rail
            .as_deref()
            .and_then(Rail::parse)
            .unwrap_or_else(|| Rail::for_currency(&run.currency)),
    };
    if rail == Rail::Ach && run.currency != "USD" {
        return Err(refused(format!(
            "ACH pays USD only; {run_id} is in {}",
            run.currency
        )));
    }
    if rail == Rail::Sepa && run.currency != "EUR" {
        return Err(refused(format!(
            "SEPA pays EUR only; {run_id} is in {}",
            run.currency
        )));
    }
    let twice = store.wf().payout_lines_in_other_exported_runs(run_id)?;
    if let Some((line, other)) = twice.first() {
        return Err(refused(format!(
            "commission line {line} of {run_id} is already paid by the exported run {other} ({} such lines): prepare a new run",
            twice.len()
        )));
    }
    let created = match &run.exported_at {
        Some(t) => t.clone(),
        None => now.to_string(),
    };
    let created_t: DateTime<Utc> = DateTime::parse_from_rfc3339(&created)
        .map_err(|_| refused(format!("export time {created:?} is not RFC 3339")))?
        .with_timezone(&Utc);
    let payees = store.payout_run_payees(run_id)?;
    let bank = store.payees()?;
    let payable: Vec<_> = payees.iter().filter(|p| p.status == "payable").collect();
    // ACH prenotes: payees held only until their new account is prenoted (this run's
    // prenote, or one not sent yet) get a zero-dollar entry in the file.
    let prenote_payees: Vec<_> = if rail == Rail::Ach {
        let known = store.payout_accounts()?;
        payees
            .iter()
            .filter(|p| p.status == "held" && p.holds.iter().any(|h| h.code == "prenote_pending"))
            .filter(|p| {
                let fp = bank
                    .get(&p.partner_id)
                    .and_then(super::prenote::fingerprint);
                match fp.as_ref().map(|f| known.get(f)) {
                    Some(None) => true,
                    Some(Some(super::prenote::Known::Sent { run_id: r, .. })) => r == run_id,
                    _ => false,
                }
            })
            .collect()
    } else {
        Vec::new()
    };
    if payable.is_empty() && prenote_payees.is_empty() {
        return Err(refused(format!("{run_id} has no payable payee")));
    }
    let total: Decimal = payable.iter().map(|p| p.amount).sum();
    let mut refs = Vec::new();
    let mut prenotes: Vec<(String, String, String)> = Vec::new();
    let mut paid_accounts: Vec<(String, String)> = Vec::new();
    let bytes = match rail {
        Rail::Ach => {
            let need = |v: &Option<String>, k: &str| cfg.need(v, k, "ACH").map(str::to_string);
            let odfi =
                need(&cfg.odfi_routing, "odfi_routing").map_err(|e| refused(e.to_string()))?;
            if !super::checks::aba_valid(&odfi) {
                return Err(refused(
                    "config.toml [payout] odfi_routing fails the ABA check".into(),
                ));
            }
            let o = nacha::Originator {
                immediate_destination: need(&cfg.immediate_destination, "immediate_destination")
                    .map_err(|e| refused(e.to_string()))?,
                immediate_origin: need(&cfg.immediate_origin, "immediate_origin")
                    .map_err(|e| refused(e.to_string()))?,
                destination_name: need(&cfg.odfi_name, "odfi_name")
                    .map_err(|e| refused(e.to_string()))?,
                origin_name: need(&cfg.company_name, "company_name")
                    .map_err(|e| refused(e.to_string()))?,
                company_name: need(&cfg.company_name, "company_name")
                    .map_err(|e| refused(e.to_string()))?,
                company_id: need(&cfg.company_id, "company_id")
                    .map_err(|e| refused(e.to_string()))?,
                odfi_routing: odfi.clone(),
                entry_description: cfg
                    .entry_description
                    .clone()
                    .unwrap_or_else(|| "COMMISSION".into()),
            };
            let mut entries = Vec::new();
            for (p, prenote) in payable
                .iter()
                .map(|p| (p, false))
                .chain(prenote_payees.iter().map(|p| (p, true)))
            {
                let b = bank
                    .get(&p.partner_id)
                    .ok_or_else(|| refused(format!("{}: no bank details on file", p.partner_id)))?;
                let routing = b.routing_number.clone().unwrap_or_default();
                if !super::checks::aba_valid(&routing) {
                    return Err(refused(format!(
                        "{}: routing number fails the ABA check",
                        p.partner_id
                    )));
                }
                let account = b.account_number.clone().unwrap_or_default();
                if account.is_empty() || account.len() > 17 {
                    return Err(refused(format!(
                        "{}: account number must be 1 to 17 characters",
                        p.partner_id
                    )));
                }
                let cents = if prenote {
                    0
                } else {
                    nacha::cents(p.amount)
                        .filter(|c| *c > 0 && *c < 10_000_000_000)
                        .ok_or_else(|| {
                            refused(format!(
                                "{}: amount {} does not fit a NACHA entry",
                                p.partner_id, p.amount
                            ))
                        })?
                };
                let individual = b.tax_form_kind.as_deref() == Some("W-8BEN");
                entries.push(nacha::Entry {
                    routing,
                    account,
                    savings: b.account_type.as_deref() == Some("savings"),
                    cents,
                    id_number: p.partner_id.clone(),
                    name: b.account_name.clone().unwrap_or_else(|| b.name.clone()),
                    sec: if individual { "PPD" } else { "CCD" },
                    seq: p.seq as u64,
                    prenote,
                });
                let trace = nacha::trace(&odfi, p.seq as u64);
                let fp = super::prenote::fingerprint(b).unwrap_or_default();
                if prenote {
                    prenotes.push((fp, p.partner_id.clone(), trace));
                } else {
                    paid_accounts.push((fp, p.partner_id.clone()));
                    refs.push((p.partner_id.clone(), trace));
                }
            }
            let dates = nacha::Dates {
                created_yymmdd: created_t.format("%y%m%d").to_string(),
                created_hhmm: created_t.format("%H%M").to_string(),
                effective_yymmdd: run.run_date.format("%y%m%d").to_string(),
            };
            nacha::write(&o, &dates, &entries).into_bytes()
        }
        Rail::Sepa | Rail::Pain001 => {
            let name = cfg
                .need(&cfg.debtor_name, "debtor_name", "pain.001")
                .map_err(|e| refused(e.to_string()))?;
            let iban = cfg
                .need(&cfg.debtor_iban, "debtor_iban", "pain.001")
                .map_err(|e| refused(e.to_string()))?;
            let mut payments = Vec::new();
            for p in &payable {
                let b = bank
                    .get(&p.partner_id)
                    .ok_or_else(|| refused(format!("{}: no bank details on file", p.partner_id)))?;
                let e2e = end_to_end_id(run_id, p.seq);
                let clearing = b.clearing_id.as_deref().and_then(|c| {
                    let c = c.trim();
                    (c.len() > 5).then(|| (c[..5].to_string(), c[5..].to_string()))
                });
                payments.push(pain001::Payment {
                    instr_id: e2e.clone(),
                    end_to_end_id: e2e.clone(),
                    amount: p.amount,
                    currency: run.currency.clone(),
                    creditor_name: b.legal_name.clone().unwrap_or_else(|| b.name.clone()),
                    iban: b.iban.clone(),
                    other_account: b.account_number.clone(),
                    bic: b.bic.clone(),
                    clearing,
                    remittance: format!("Commissions {} {}", run.period, p.partner_id),
                });
                refs.push((p.partner_id.clone(), e2e));
            }
            let m = pain001::Message {
                msg_id: run_id.to_string(),
                created: created_t.format("%Y-%m-%dT%H:%M:%S").to_string(),
                initiating_party: name.to_string(),
                execution_date: run.run_date.to_string(),
                debtor: pain001::Debtor {
                    name: name.to_string(),
                    iban: iban.to_string(),
                    bic: cfg.debtor_bic.clone().filter(|s| !s.trim().is_empty()),
                },
                sepa: rail == Rail::Sepa,
                payments,
            };
            pain001::check_rules(&m).map_err(refused)?;
            pain001::write(&m)
        }
    };
    let sha = hex::encode(Sha256::digest(&bytes));
    if !first {
        let stored_sha = store.wf().payout_file_sha(run_id)?;
        if stored_sha.as_deref() != Some(sha.as_str()) {
            return Err(refused(format!(
                "{run_id}: the file would differ from the one exported (bank details changed since); not written"
            )));
        }
    }
    let rail_s = rail.as_str();
    store.wf_tx(|db| -> Result<(), PayoutError> {
        if first {
            db.payout_set_exported(run_id, rail_s, &created, &sha, &refs)?;
            db.payout_note_accounts(run_id, run.run_date, &prenotes, &paid_accounts, now)?;
        }
        workflow::record_event(
            db,
            actor,
            now,
            if first { "payout_export" } else { "payout_reexport" },
            run_id,
            Some(json!({"rail": rail_s, "payments": refs.len(), "prenotes": prenotes.len(), "total": total.to_string(), "sha256": sha})),
            None,
        )?;
        Ok(())
    })?;
    Ok(Exported {
        bytes,
        count: refs.len(),
        total,
        currency: run.currency,
        rail: rail_s,
        prenotes: prenotes.len(),
    })
}
