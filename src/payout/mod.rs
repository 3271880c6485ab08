//! Payouts: what each payee is owed, checked, approved by a second person and written
//! as the bank's file (docs/payouts.md). The cores (`checks`, `payable`, `nacha`,
//! `pain001`) are pure; this module ties them to the store and the audit chain.

pub mod checks;
pub mod details;
pub mod export;
pub mod matching;
pub mod nacha;
pub mod pain001;
pub mod payable;
pub mod postings;
pub mod prenote;
pub mod reconcile;
pub mod statements;

use std::collections::BTreeMap;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::json;

use crate::config::Role;
use crate::store::payout::{RunPayeeRow, RunRow};
use crate::store::Store;
use crate::workflow::{self, identity, Actor};
use checks::{CheckSettings, Rail};

/// `[payout]` in config.toml.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct PayoutConfig {
    pub company_name: Option<String>,
    pub company_id: Option<String>,
    pub odfi_routing: Option<String>,
    pub odfi_name: Option<String>,
    pub immediate_destination: Option<String>,
    pub immediate_origin: Option<String>,
    pub entry_description: Option<String>,
    pub debtor_name: Option<String>,
    pub debtor_iban: Option<String>,
    pub debtor_bic: Option<String>,
    pub bank_change_hold_days: Option<i64>,
    /// ACH: send a prenote to an account before its first payment (default false).
    pub prenotes: Option<bool>,
    /// Banking days between a prenote's effective date and the first payment (default 3).
    pub prenote_wait_days: Option<u32>,
    /// The cash account credited by settled payouts in `tierdesk journal` (default 1000).
    pub cash_account: Option<String>,
}

impl PayoutConfig {
    /// Reads `[payout]` from the config file (absent file or section: all unset).
    pub fn load(path: &std::path::Path) -> anyhow::Result<PayoutConfig> {
        #[derive(Deserialize, Default)]
        #[serde(default)]
        struct Outer {
            payout: PayoutConfig,
        }
        match std::fs::read_to_string(path) {
            Ok(t) => Ok(toml::from_str::<Outer>(&t)
                .map_err(|e| anyhow::anyhow!("config file {} [payout]: {e}", path.display()))?
                .payout),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(PayoutConfig::default()),
            Err(e) => Err(anyhow::anyhow!("cannot read {}: {e}", path.display())),
        }
    }

    /// A key a rail needs: a clear error naming it when missing.
    /// `Some(wait days)` when prenotes are on.
    pub fn prenote_wait(&self) -> Option<u32> {
        self.prenotes
            .unwrap_or(false)
            .then(|| self.prenote_wait_days.unwrap_or(3))
    }

    pub fn need<'a>(
        &self,
        v: &'a Option<String>,
        key: &str,
        rail: &str,
    ) -> anyhow::Result<&'a str> {
        match v.as_deref().map(str::trim) {
            Some(s) if !s.is_empty() => Ok(s),
            _ => anyhow::bail!("config.toml [payout] {key} is missing; the {rail} export needs it"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PayoutError {
    #[error("no payout run {0}")]
    UnknownRun(String),
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Workflow(#[from] workflow::WorkflowError),
}

/// A prepared run: its header and payees.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub run: RunRow,
    pub payees: Vec<payable::PayeeResult>,
}

/// Prepares a run for `period` as of `run_date`; stored as `draft`, audited.
pub fn prepare(
    store: &mut Store,
    actor: &Actor,
    period: &str,
    run_date: NaiveDate,
    hold_days: i64,
    prenote_wait_days: Option<u32>,
    now: &str,
) -> Result<Prepared, PayoutError> {
    crate::model::check_quarter(period).map_err(|e| PayoutError::Refused(e.to_string()))?;
    let program = store.program()?.ok_or_else(|| {
        PayoutError::Refused("no program in the cache: import a data set first".into())
    })?;
    let pp = store.payout_program()?;
    let rail = match pp.payout_rail.as_deref() {
        Some(r) => Rail::parse(r).ok_or_else(|| {
            PayoutError::Refused(format!(
                "program.json payout_rail {r:?} is not ach, sepa or pain001"
            ))
        })?,
        None => Rail::for_currency(&program.currency),
    };
    let lines = store.payout_candidate_lines(period)?;
    let decisions = store.payout_decisions()?;
    let payees = store.payees()?;
    let returned = store.payout_returned_payees()?;
    let released = BTreeMap::new();
    let known = match prenote_wait_days {
        Some(_) => store.payout_accounts()?,
        None => BTreeMap::new(),
    };
    let results = payable::compute(&payable::Inputs {
        currency: &program.currency,
        minimum_payout: pp.minimum_payout,
        rail,
        settings: CheckSettings {
            run_date,
            bank_change_hold_days: hold_days,
        },
        lines: &lines,
        decisions: &decisions,
        payees: &payees,
        returned: &returned,
        released: &released,
        prenotes: prenote_wait_days.map(|wait_days| payable::Prenotes {
            known: &known,
            wait_days,
        }),
    });
    let n = store.payout_run_count()? + 1;
    let run = RunRow {
        run_id: format!("PR-{period}-{n:03}"),
        period: period.to_string(),
        run_date,
        currency: program.currency.clone(),
        state: "draft".into(),
        prepared_by: actor.user.clone(),
        prepared_at: now.to_string(),
        approved_by: None,
        approved_at: None,
        rail: None,
        exported_at: None,
    };
    let payable_total: Decimal = results
        .iter()
        .filter(|p| p.status == "payable")
        .map(|p| p.amount)
        .sum();
    let count = |s: &str| results.iter().filter(|p| p.status == s).count();
    store.wf_tx(|db| -> Result<(), PayoutError> {
        db.payout_insert_run(&run, &results)?;
        workflow::record_event(
            db,
            actor,
            now,
            "payout_prepare",
            &run.run_id,
            Some(json!({
                "period": period, "run_date": run_date.to_string(), "currency": run.currency,
                "payable": count("payable"), "held": count("held"),
                "carried_forward": count("carried_forward"),
                "payable_total": payable_total.to_string(),
            })),
            None,
        )?;
        Ok(())
    })?;
    Ok(Prepared {
        run,
        payees: results,
    })
}

fn load(store: &Store, run_id: &str) -> Result<RunRow, PayoutError> {
    store
        .payout_run(run_id)?
        .ok_or_else(|| PayoutError::UnknownRun(run_id.to_string()))
}

/// A manager who did not prepare the run approves it (four-eyes), audited.
pub fn approve(
    store: &mut Store,
    actor: &Actor,
    run_id: &str,
    reason: &str,
    now: &str,
) -> Result<RunRow, PayoutError> {
    if reason.trim().is_empty() {
        return Err(PayoutError::Refused(
            "approving a run needs --reason".into(),
        ));
    }
    if actor.role != Role::Manager {
        return Err(PayoutError::Refused(format!(
            "{} acts as {}: approving a payout run needs the manager role",
            actor.user,
            actor.role.as_str()
        )));
    }
    let run = load(store, run_id)?;
    if identity::same_person(&run.prepared_by, &actor.user) {
        return Err(PayoutError::Refused(format!(
            "{} prepared {run_id}; a different manager must approve it (four-eyes)",
            actor.user
        )));
    }
    if run.state != "draft" {
        return Err(PayoutError::Refused(format!(
            "{run_id} is {}; only a draft run can be approved",
            run.state
        )));
    }
    store.wf_tx(|db| -> Result<(), PayoutError> {
        db.payout_set_approved(run_id, &actor.user, now)?;
        workflow::record_event(
            db,
            actor,
            now,
            "payout_approve",
            run_id,
            Some(json!({"state": "approved", "prepared_by": run.prepared_by})),
            Some(reason),
        )?;
        Ok(())
    })?;
    load(store, run_id)
}

/// Lifts a payee's holds (bank or tax ones, after a call-back) in a run that is not yet
/// exported, audited. Holds on lines under review and carried-forward balances stay.
pub fn release(
    store: &mut Store,
    actor: &Actor,
    run_id: &str,
    partner_id: &str,
    reason: &str,
    now: &str,
) -> Result<RunPayeeRow, PayoutError> {
    if reason.trim().is_empty() {
        return Err(PayoutError::Refused(
            "releasing a hold needs --reason".into(),
        ));
    }
    let run = load(store, run_id)?;
    if !matches!(run.state.as_str(), "draft" | "approved") {
        return Err(PayoutError::Refused(format!(
            "{run_id} is {}; holds can be released only before export",
            run.state
        )));
    }
    let payees = store.payout_run_payees(run_id)?;
    let p = payees
        .into_iter()
        .find(|p| p.partner_id == partner_id)
        .ok_or_else(|| PayoutError::Refused(format!("{partner_id} is not a payee of {run_id}")))?;
    let (lift, keep): (Vec<_>, Vec<_>) = p
        .holds
        .iter()
        .cloned()
        .partition(|h| checks::PAYEE_CODES.contains(&h.code.as_str()));
    if lift.is_empty() {
        return Err(PayoutError::Refused(format!(
            "{partner_id} has no bank or tax hold in {run_id} to release"
        )));
    }
    let mut released = p.released.clone();
    released.extend(lift.iter().map(|h| h.code.clone()));
    let carried = keep
        .iter()
        .any(|h| matches!(h.code.as_str(), "negative_balance" | "below_minimum"));
    let status = if carried {
        "carried_forward"
    } else if p.amount > Decimal::ZERO {
        "payable"
    } else {
        "held"
    };
    store.wf_tx(|db| -> Result<(), PayoutError> {
        db.payout_release(run_id, partner_id, &keep, &released, status)?;
        workflow::record_event(
            db,
            actor,
            now,
            "payout_release",
            &format!("{run_id}/{partner_id}"),
            Some(json!({"released": lift.iter().map(|h| &h.code).collect::<Vec<_>>(), "status": status})),
            Some(reason),
        )?;
        Ok(())
    })?;
    store
        .payout_run_payees(run_id)?
        .into_iter()
        .find(|p| p.partner_id == partner_id)
        .ok_or_else(|| PayoutError::UnknownRun(run_id.to_string()))
}
