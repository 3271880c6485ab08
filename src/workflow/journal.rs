//! Recommended accrual journal entries for the adjustments decided in a period.
//!
//! One journal entry per partner and currency (External ID `TD-<period>-<partner>-<cur>`),
//! dated the last day of the fiscal quarter it is booked in; for each adjustment a
//! balanced pair of lines: an increase debits the expense account and credits the
//! accrued account, a decrease the reverse (account numbers, subsidiary and department
//! from `[journal]` in `config.toml`). Amounts are rounded to cents once per pair, so
//! every entry balances exactly.
//!
//! Nothing is dated into a closed quarter: an adjustment is booked in the quarter of its
//! transaction's close date while that quarter is open, else in the first open quarter
//! (the one the decision was made in, or the one after `closed_through`), and its line
//! memo names the original quarter. Holds and releases change no amount and book
//! nothing.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Serialize;

use super::types::WorkflowError;
use crate::config::JournalConfig;
use crate::model::{check_quarter, fiscal_quarter_bounds, fiscal_year_quarter};
use crate::money::{parse_money, round_cents};
use crate::store::workflow::JournalRow;
use crate::store::Store;

const HEADER: [&str; 12] = [
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
    "Subsidiary",
    "Department",
];

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
    #[serde(rename = "Subsidiary")]
    pub subsidiary: String,
    #[serde(rename = "Department")]
    pub department: String,
}

fn ser_opt_money<S: serde::Serializer>(v: &Option<Decimal>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(d) => s.serialize_str(&format!("{:.2}", round_cents(*d))),
        None => s.serialize_str(""),
    }
}

/// A fiscal quarter as `(year, quarter)`, ordered.
type Quarter = (i32, u32);

fn next_quarter((y, q): Quarter) -> Quarter {
    if q >= 4 {
        (y + 1, 1)
    } else {
        (y, q + 1)
    }
}

fn quarter_name((y, q): Quarter) -> String {
    format!("{y}-Q{q}")
}

/// Where an adjustment is booked: its own quarter while open, else the first open one.
/// `closed_through` (when configured) is the last closed quarter; otherwise a quarter
/// is closed once it ended before the decision (`decided`).
fn booking_quarter(
    own: Quarter,
    decided: Option<Quarter>,
    closed_through: Option<Quarter>,
) -> Quarter {
    let first_open = match closed_through {
        Some(c) => next_quarter(c),
        None => decided.unwrap_or(own),
    };
    own.max(first_open)
}

fn date_of(s: &str, what: &str, tx: &str) -> Result<NaiveDate, WorkflowError> {
    let day = s.get(..10).unwrap_or(s);
    NaiveDate::parse_from_str(day, "%Y-%m-%d")
        .map_err(|_| WorkflowError::Corrupt(format!("{what} of {tx} is not a date: '{s}'")))
}

/// The journal lines for a fiscal quarter such as `2026-Q3`, with the default
/// `[journal]` settings.
pub fn journal(store: &Store, period: &str) -> Result<Vec<JournalLine>, WorkflowError> {
    journal_with(store, period, &JournalConfig::default())
}

/// The journal lines booked in a fiscal quarter such as `2026-Q3`: adjustments whose
/// decision stands (signed off, queued or pushed), each booked by [`booking_quarter`].
pub fn journal_with(
    store: &Store,
    period: &str,
    cfg: &JournalConfig,
) -> Result<Vec<JournalLine>, WorkflowError> {
    let want = check_quarter(period).map_err(WorkflowError::InvalidPeriod)?;
    let closed_through = match &cfg.closed_through {
        Some(c) => Some(check_quarter(c).map_err(|e| {
            WorkflowError::InvalidPeriod(format!("[journal] closed_through in config.toml: {e}"))
        })?),
        None => None,
    };
    let period = quarter_name(want);
    let db = store.wf();
    let start_month = db.fiscal_year_start_month()?;
    let (_, last) = fiscal_quarter_bounds(want.0, want.1, start_month);
    let rows = db.journal_rows(&["signed_off", "queued_for_push", "pushed"])?;
    let mut groups: BTreeMap<(String, String), Vec<JournalLine>> = BTreeMap::new();
    for r in rows {
        let tx = r.transaction_id.as_str();
        let own = fiscal_year_quarter(date_of(&r.closed_on, "closed_on", tx)?, start_month);
        let decided_q = match &r.decided_at {
            Some(at) => Some(fiscal_year_quarter(
                date_of(at, "decision date", tx)?,
                start_month,
            )),
            None => None,
        };
        if booking_quarter(own, decided_q, closed_through) != want {
            continue;
        }
        let Some(delta) = adjustment(&db, &r)? else {
            continue;
        };
        let note = (own != want).then(|| {
            format!(
                "; affects {}, a closed period, booked in {period}",
                quarter_name(own)
            )
        });
        let mut pair = lines_for(&r, delta, &period, last, cfg, note.as_deref());
        groups
            .entry((r.partner_id.clone(), r.currency.clone()))
            .or_default()
            .append(&mut pair);
    }
    Ok(groups.into_values().flatten().collect())
}

/// The change a standing decision makes to the accrued commission (rounded to cents),
/// `None` when it changes nothing (a hold, a release, an unchanged total).
fn adjustment(
    db: &crate::store::workflow::WfDb<'_>,
    r: &JournalRow,
) -> Result<Option<Decimal>, WorkflowError> {
    let Some(decided_s) = &r.decided_amount else {
        return Ok(None);
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
    Ok((!delta.is_zero()).then_some(delta))
}

/// The balanced pair of lines for one adjustment of `delta`.
fn lines_for(
    r: &JournalRow,
    delta: Decimal,
    period: &str,
    last: NaiveDate,
    cfg: &JournalConfig,
    note: Option<&str>,
) -> Vec<JournalLine> {
    let external_id = format!("TD-{period}-{}-{}", r.partner_id, r.currency);
    let memo = format!(
        "tierdesk accrual adjustments {period}, partner {}{}",
        r.partner_id,
        r.partner_name
            .as_deref()
            .map(|n| format!(" ({n})"))
            .unwrap_or_default()
    );
    let decided = r.decided_amount.as_deref().unwrap_or("");
    let current = r.current_amount.as_deref().unwrap_or("the accrued total");
    let line_memo = format!(
        "{}: {} commission {} -> {}{}{}",
        r.transaction_id,
        r.decision_action.as_deref().unwrap_or("adjust"),
        current,
        decided,
        r.decision_reason
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(|s| format!(" ({s})"))
            .unwrap_or_default(),
        note.unwrap_or("")
    );
    let audit_reference = format!(
        "audit#{} decision {}",
        r.audit_seq.map(|s| s.to_string()).unwrap_or_default(),
        r.decision_id.as_deref().unwrap_or("")
    );
    let amt = delta.abs();
    let (expense, accrued) = (cfg.expense_account.as_str(), cfg.accrued_account.as_str());
    let (dr, cr) = if delta > Decimal::ZERO {
        (expense, accrued)
    } else {
        (accrued, expense)
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
        subsidiary: cfg.subsidiary.clone().unwrap_or_default(),
        department: cfg.department.clone().unwrap_or_default(),
    };
    vec![mk(dr, Some(amt), None), mk(cr, None, Some(amt))]
}

/// Writes the lines as CSV (NetSuite journal-import-like columns).
pub fn write_csv<W: std::io::Write>(lines: &[JournalLine], w: W) -> anyhow::Result<()> {
    let mut wr = csv::Writer::from_writer(w);
    if lines.is_empty() {
        wr.write_record(HEADER)?;
    }
    for l in lines {
        wr.serialize(l)?;
    }
    wr.flush()?;
    Ok(())
}
