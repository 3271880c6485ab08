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

/// The exported payments indexed for matching (built once per file).
pub struct Index<'a> {
    by_ref: BTreeMap<&'a str, &'a Sent>,
    by_batch: BTreeMap<&'a str, Vec<&'a Sent>>,
    /// Open (sent) payments by (amount, currency).
    open_by_amount: BTreeMap<(Decimal, &'a str), Vec<&'a Sent>>,
    /// Open payments per run and currency, with their sum.
    open_runs: BTreeMap<(&'a str, &'a str), (Decimal, Vec<&'a Sent>)>,
}

impl<'a> Index<'a> {
    pub fn new(sent: &'a [Sent]) -> Index<'a> {
        let mut ix = Index {
            by_ref: BTreeMap::new(),
            by_batch: BTreeMap::new(),
            open_by_amount: BTreeMap::new(),
            open_runs: BTreeMap::new(),
        };
        for s in sent {
            ix.by_ref.insert(s.payment_ref.as_str(), s);
            ix.by_batch.entry(s.batch_id.as_str()).or_default().push(s);
            if s.state == "sent" {
                ix.open_by_amount
                    .entry((s.amount.normalize(), s.currency.as_str()))
                    .or_default()
                    .push(s);
                let r = ix
                    .open_runs
                    .entry((s.run_id.as_str(), s.currency.as_str()))
                    .or_insert((Decimal::ZERO, Vec::new()));
                r.0 += s.amount;
                r.1.push(s);
            }
        }
        ix
    }
}

pub fn classify(e: &StmtEntry, sent: &[Sent], window_days: i64) -> Outcome {
    classify_in(e, &Index::new(sent), window_days)
}

pub fn classify_in(e: &StmtEntry, ix: &Index<'_>, window_days: i64) -> Outcome {
    let named: Vec<&Sent> = e
        .refs
        .iter()
        .filter_map(|r| ix.by_ref.get(r.trim()).copied())
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
        if let Some(batch) = ix.by_batch.get(b.as_str()) {
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
    let no_match = Vec::new();
    let same_amt: &Vec<&Sent> = ix
        .open_by_amount
        .get(&(e.amount.normalize(), e.currency.as_str()))
        .unwrap_or(&no_match);
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
    for ((_, cur), (sum, ss)) in &ix.open_runs {
        if *cur == e.currency && *sum == e.amount && ss.len() > 1 {
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
