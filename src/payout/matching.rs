//! Matching statement entries to exported payments (pure). Exact keys first
//! (EndToEndId, original trace number, batch id), then amount + currency + value date
//! within a window of business days, then one debit equal to a whole batch (run).

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate, Weekday};
use rust_decimal::Decimal;
use serde::Serialize;

use super::statements::StmtEntry;

/// One exported payment.
#[derive(Debug, Clone)]
pub struct Sent {
    pub run_id: String,
    pub partner_id: String,
    /// Trace number or EndToEndId.
    pub payment_ref: String,
    /// The run's payment-information / batch id (pain.001 `PmtInfId`).
    pub batch_id: String,
    pub amount: Decimal,
    pub currency: String,
    pub run_date: NaiveDate,
    /// prepared | sent | settled | returned | unmatched
    pub state: String,
}

impl Sent {
    pub fn key(&self) -> String {
        format!("{}/{}", self.run_id, self.partner_id)
    }
}

/// The class of one entry, the payments it names and a return or change code.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    pub class: &'static str,
    pub lines: Vec<String>,
    pub code: Option<String>,
}

/// Business days between two dates (weekends skipped), in absolute value.
pub fn business_days(a: NaiveDate, b: NaiveDate) -> i64 {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    let mut d = lo;
    let mut n = 0;
    while d < hi {
        d = d.succ_opt().unwrap_or(hi);
        if !matches!(d.weekday(), Weekday::Sat | Weekday::Sun) {
            n += 1;
        }
    }
    n
}

pub fn classify(e: &StmtEntry, sent: &[Sent], window_days: i64) -> Outcome {
    let by_ref: BTreeMap<&str, &Sent> = sent.iter().map(|s| (s.payment_ref.as_str(), s)).collect();
    let named: Vec<&Sent> = e
        .refs
        .iter()
        .filter_map(|r| by_ref.get(r.trim()).copied())
        .collect();
    if let Some((code, _)) = &e.change {
        return Outcome {
            class: if named.is_empty() {
                "unmatched"
            } else {
                "matched"
            },
            lines: named.iter().map(|s| s.key()).collect(),
            code: Some(code.clone()),
        };
    }
    let is_return =
        e.return_code.is_some() || e.type_code.as_deref().is_some_and(|t| t.contains("RRTN"));
    if is_return {
        return Outcome {
            class: if named.is_empty() {
                "unmatched"
            } else {
                "returned"
            },
            lines: named.iter().map(|s| s.key()).collect(),
            code: e.return_code.clone(),
        };
    }
    // Exact key.
    if !named.is_empty() {
        let sum: Decimal = named.iter().map(|s| s.amount).sum();
        let cur_ok = named.iter().all(|s| s.currency == e.currency);
        return Outcome {
            class: if sum == e.amount && cur_ok {
                "matched"
            } else {
                "amount"
            },
            lines: named.iter().map(|s| s.key()).collect(),
            code: None,
        };
    }
    if let Some(b) = &e.batch_id {
        let batch: Vec<&Sent> = sent.iter().filter(|s| &s.batch_id == b).collect();
        if !batch.is_empty() {
            let sum: Decimal = batch.iter().map(|s| s.amount).sum();
            return Outcome {
                class: if sum == e.amount { "matched" } else { "amount" },
                lines: batch.iter().map(|s| s.key()).collect(),
                code: None,
            };
        }
    }
    // Money out for our payments: amount + currency + date window.
    let in_window = |s: &Sent| match e.value_date {
        Some(d) => business_days(s.run_date, d) <= window_days,
        None => true,
    };
    let open: Vec<&Sent> = sent.iter().filter(|s| s.state == "sent").collect();
    let same_amt: Vec<&Sent> = open
        .iter()
        .copied()
        .filter(|s| s.amount == e.amount && s.currency == e.currency)
        .collect();
    let near: Vec<&Sent> = same_amt.iter().copied().filter(|s| in_window(s)).collect();
    match near.len() {
        1 => {
            return Outcome {
                class: "matched",
                lines: vec![near[0].key()],
                code: None,
            }
        }
        n if n > 1 => {
            return Outcome {
                class: "ambiguous",
                lines: near.iter().map(|s| s.key()).collect(),
                code: None,
            }
        }
        _ => {}
    }
    // One debit for a whole run (batch booking).
    let mut runs: BTreeMap<&str, Vec<&Sent>> = BTreeMap::new();
    for s in open.iter().copied().filter(|s| s.currency == e.currency) {
        runs.entry(&s.run_id).or_default().push(s);
    }
    for ss in runs.values() {
        let sum: Decimal = ss.iter().map(|s| s.amount).sum();
        if sum == e.amount && ss.len() > 1 {
            let class = if ss.iter().all(|s| in_window(s)) {
                "matched"
            } else {
                "date"
            };
            return Outcome {
                class,
                lines: ss.iter().map(|s| s.key()).collect(),
                code: None,
            };
        }
    }
    if !same_amt.is_empty() {
        return Outcome {
            class: "date",
            lines: same_amt.iter().map(|s| s.key()).collect(),
            code: None,
        };
    }
    Outcome {
        class: "unmatched",
        lines: Vec::new(),
        code: None,
    }
}
