//! Settlement and return postings beside the accrual entries (pure): a settled payment
//! debits commissions payable (the `[journal]` accrued account) and credits cash; a
//! returned one is the reverse. Each entry is one balanced pair of lines.

use rust_decimal::Decimal;

use crate::config::JournalConfig;
use crate::workflow::JournalLine;

/// A payment that reached the bank's statement.
#[derive(Debug, Clone)]
pub struct Posted {
    pub run_id: String,
    pub partner_id: String,
    pub date: String,
    pub currency: String,
    pub amount: Decimal,
    /// settled | returned
    pub state: String,
    pub payment_ref: String,
    pub return_code: Option<String>,
}

pub fn lines(payments: &[Posted], cfg: &JournalConfig, cash_account: &str) -> Vec<JournalLine> {
    let mut out = Vec::new();
    for p in payments {
        let (suffix, memo, debit_acct, credit_acct) = match p.state.as_str() {
            "settled" => (
                "S",
                "payout settled",
                cfg.accrued_account.as_str(),
                cash_account,
            ),
            "returned" => (
                "R",
                "payout returned",
                cash_account,
                cfg.accrued_account.as_str(),
            ),
            _ => continue,
        };
        let id = format!("TDP-{}-{}-{suffix}", p.run_id, p.partner_id);
        let line_memo = match &p.return_code {
            Some(c) if p.state == "returned" => format!("{} return {c}", p.payment_ref),
            _ => p.payment_ref.clone(),
        };
        let amount = crate::money::round_cents(p.amount);
        for (acct, debit) in [(debit_acct, true), (credit_acct, false)] {
            out.push(JournalLine {
                external_id: id.clone(),
                date: p.date.clone(),
                currency: p.currency.clone(),
                account: acct.to_string(),
                debit: debit.then_some(amount),
                credit: (!debit).then_some(amount),
                entity: p.partner_id.clone(),
                memo: memo.to_string(),
                line_memo: line_memo.clone(),
                audit_reference: p.run_id.clone(),
                subsidiary: cfg.subsidiary.clone().unwrap_or_default(),
                department: cfg.department.clone().unwrap_or_default(),
            });
        }
    }
    out
}

/// The postings of the runs of `period`, from the cache.
pub fn for_period(
    store: &crate::store::Store,
    period: &str,
    cfg: &JournalConfig,
    cash_account: &str,
) -> crate::store::Result<Vec<JournalLine>> {
    Ok(lines(&store.posted_payments(period)?, cfg, cash_account))
}
