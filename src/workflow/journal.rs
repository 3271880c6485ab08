//! Recommended accrual journal entries for the adjustments decided in a period.
//!
//! One journal entry per partner and currency (External ID `TD-<period>-<partner>-<cur>`),
//! dated the last day of the fiscal quarter; for each adjustment a balanced pair of lines:
//! an increase debits Commission Expense and credits Accrued Commissions, a decrease the
//! reverse. Amounts are rounded to cents once per pair, so every entry balances exactly.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Serialize;

use super::types::WorkflowError;
use crate::model::{fiscal_quarter_bounds, parse_quarter};
use crate::money::{parse_money, round_cents};
use crate::store::Store;

pub const EXPENSE_ACCOUNT: &str = "Commission Expense";
pub const ACCRUED_ACCOUNT: &str = "Accrued Commissions";

/// One journal line, in the column order of the CSV.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JournalLine {
    #[serde(rename = "External ID")]
    pub external_id: String,
    #[serde(rename = "Date")]
    pub date: String,
    #[serde(rename = "Currency")]
    pub currency: String,
    #[serde(rename = "Account")]
    pub account: String,
    #[serde(rename = "Debit", serialize_with = "ser_opt_money")]
    pub debit: Option<Decimal>,
    #[serde(rename = "Credit", serialize_with = "ser_opt_money")]
    pub credit: Option<Decimal>,
    #[serde(rename = "Name")]
    pub entity: String,
    #[serde(rename = "Memo")]
    pub memo: String,
    #[serde(rename = "Line Memo")]
    pub line_memo: String,
    #[serde(rename = "Audit Reference")]
    pub audit_reference: String,
}

fn ser_opt_money<S: serde::Serializer>(v: &Option<Decimal>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(d) => s.serialize_str(&format!("{:.2}", round_cents(*d))),
        None => s.serialize_str(""),
    }
}

/// The journal lines for a fiscal quarter such as `2026-Q3` (adjustments whose
/// transaction closed in it and whose decision stands: signed off, queued or pushed).
pub fn journal(store: &Store, period: &str) -> Result<Vec<JournalLine>, WorkflowError> {
    let (fy, q) = parse_quarter(period).ok_or_else(|| {
        WorkflowError::InvalidPeriod(format!("'{period}' is not a quarter like 2026-Q3"))
    })?;
    let db = store.wf();
    let start_month = db.fiscal_year_start_month()?;
    let (first, last) = fiscal_quarter_bounds(fy, q, start_month);
    let rows = db.journal_rows(&["signed_off", "queued_for_push", "pushed"])?;
    let mut groups: BTreeMap<(String, String), Vec<JournalLine>> = BTreeMap::new();
    for r in rows {
        let closed = NaiveDate::parse_from_str(&r.closed_on, "%Y-%m-%d").map_err(|_| {
            WorkflowError::Corrupt(format!(
                "closed_on of {} is not a date: '{}'",
                r.transaction_id, r.closed_on
            ))
        })?;
        if closed < first || closed > last {
            continue;
        }
        let Some(decided_s) = &r.decided_amount else {
            continue;
        };
        let num = |s: &str, what: &str| {
            parse_money(s).ok_or_else(|| {
                WorkflowError::Corrupt(format!(
                    "{what} of {} is not an amount: '{s}'",
                    r.transaction_id
                ))
            })
        };
        let decided = num(decided_s, "decided amount")?;
        let current = match &r.current_amount {
            Some(c) => num(c, "current amount")?,
            None => {
                let mut sum = Decimal::ZERO;
                for a in db.commission_amounts(&r.transaction_id)? {
                    sum += num(&a, "commission amount")?;
                }
                sum
            }
        };
        let delta = round_cents(decided - current);
        if delta.is_zero() {
            continue;
        }
        let external_id = format!("TD-{period}-{}-{}", r.partner_id, r.currency);
        let memo = format!(
            "tierdesk accrual adjustments {period}, partner {}{}",
            r.partner_id,
            r.partner_name
                .as_deref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default()
        );
        let line_memo = format!(
            "{}: {} commission {} -> {}{}",
            r.transaction_id,
            r.decision_action.as_deref().unwrap_or("adjust"),
            current,
            decided,
            r.decision_reason
                .as_deref()
                .filter(|s| !s.is_empty())
                .map(|s| format!(" ({s})"))
                .unwrap_or_default()
        );
        let audit_reference = format!(
            "audit#{} decision {}",
            r.audit_seq.map(|s| s.to_string()).unwrap_or_default(),
            r.decision_id.as_deref().unwrap_or("")
        );
        let amt = delta.abs();
        let (dr, cr) = if delta > Decimal::ZERO {
            (EXPENSE_ACCOUNT, ACCRUED_ACCOUNT)
        } else {
            (ACCRUED_ACCOUNT, EXPENSE_ACCOUNT)
        };
        let mk = |account: &str, debit: Option<Decimal>, credit: Option<Decimal>| JournalLine {
            external_id: external_id.clone(),
            date: last.format("%Y-%m-%d").to_string(),
            currency: r.currency.clone(),
            account: account.to_string(),
            debit,
            credit,
            entity: r.partner_id.clone(),
            memo: memo.clone(),
            line_memo: line_memo.clone(),
            audit_reference: audit_reference.clone(),
        };
        let g = groups
            .entry((r.partner_id.clone(), r.currency.clone()))
            .or_default();
        g.push(mk(dr, Some(amt), None));
        g.push(mk(cr, None, Some(amt)));
    }
    Ok(groups.into_values().flatten().collect())
}

/// Writes the lines as CSV (NetSuite journal-import-like columns).
pub fn write_csv<W: std::io::Write>(lines: &[JournalLine], w: W) -> anyhow::Result<()> {
    let mut wr = csv::Writer::from_writer(w);
    if lines.is_empty() {
        wr.write_record([
            "External ID",
            "Date",
            "Currency",
            "Account",
            "Debit",
            "Credit",
            "Name",
            "Memo",
            "Line Memo",
            "Audit Reference",
        ])?;
    }
    for l in lines {
        wr.serialize(l)?;
    }
    wr.flush()?;
    Ok(())
}
