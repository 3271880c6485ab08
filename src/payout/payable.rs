//! What each payee is owed (pure): commission lines with tierdesk's decisions applied,
//! lines under review held, payee checks, carried-forward balances.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::Serialize;

use super::checks::{self, CheckSettings, Hold, Payee, Rail};

/// One PRM commission line that may be paid.
#[derive(Debug, Clone)]
pub struct Line {
    pub commission_id: String,
    pub transaction_id: String,
    pub payee_partner_id: String,
    pub amount: Decimal,
    /// The PRM's status of the line (`paid`, `declined`, …), when synced.
    pub prm_status: Option<String>,
}

/// tierdesk's standing decision on a transaction.
#[derive(Debug, Clone)]
pub enum TxDecision {
    /// Still under review (flagged, in review, escalated, documents requested,
    /// awaiting sign-off); the state name is kept for the reason.
    UnderReview(String),
    /// The commission total of the transaction set to this amount (an approved or
    /// signed-off adjustment, override or reversal).
    Total(Decimal),
    /// Put on hold by a decision.
    Held,
    /// Stands as submitted.
    AsSubmitted,
}

/// A payee's result in a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PayeeResult {
    pub partner_id: String,
    pub amount: Decimal,
    pub status: &'static str,
    pub holds: Vec<Hold>,
    pub warnings: Vec<Hold>,
    /// The lines in the amount (after decisions) and the lines held (under review).
    #[serde(skip)]
    pub lines: Vec<(String, Decimal, bool)>,
}

pub struct Inputs<'a> {
    pub currency: &'a str,
    pub minimum_payout: Decimal,
    pub rail: Rail,
    pub settings: CheckSettings,
    pub lines: &'a [Line],
    pub decisions: &'a BTreeMap<String, TxDecision>,
    /// Every partner with bank details (the shared-account check looks at all of them).
    pub payees: &'a BTreeMap<String, Payee>,
    /// Payees held by an earlier return until their bank details are confirmed.
    pub returned: &'a BTreeMap<String, String>,
    /// Hold codes released for a payee in this run (after a call-back).
    pub released: &'a BTreeMap<String, Vec<String>>,
    /// ACH prenotes, when `[payout] prenotes` is on: what is known of each account (by
    /// fingerprint) and the banking days a prenote must precede the first payment.
    pub prenotes: Option<Prenotes<'a>>,
}

/// See [`Inputs::prenotes`] and `payout::prenote`.
#[derive(Debug, Clone, Copy)]
pub struct Prenotes<'a> {
    pub known: &'a BTreeMap<String, super::prenote::Known>,
    pub wait_days: u32,
}

/// Rounds to the currency's minor units.
fn round(d: Decimal, currency: &str) -> Decimal {
    d.round_dp_with_strategy(
        crate::money::minor_digits(currency),
        rust_decimal::RoundingStrategy::MidpointNearestEven,
    )
}

/// Applies a transaction total to its lines pro rata (the residual of rounding on the
/// last line, so the lines sum to the total exactly).
fn spread(total: Decimal, lines: &[&Line], currency: &str) -> Vec<Decimal> {
    let current: Decimal = lines.iter().map(|l| l.amount).sum();
    let n = lines.len();
    let mut out = Vec::with_capacity(n);
    if n == 0 {
        return out;
    }
    if current.is_zero() {
        out.push(total);
        out.extend(std::iter::repeat_n(Decimal::ZERO, n - 1));
        return out;
    }
    let mut used = Decimal::ZERO;
    for (i, l) in lines.iter().enumerate() {
        if i + 1 == n {
            out.push(total - used);
        } else {
            let v = round(total * l.amount / current, currency);
            used += v;
            out.push(v);
        }
    }
    out
}

/// Computes every payee of the run, ordered by partner id.
pub fn compute(inp: &Inputs<'_>) -> Vec<PayeeResult> {
    // Lines by transaction, for decisions that set a transaction's total.
    let mut by_tx: BTreeMap<&str, Vec<&Line>> = BTreeMap::new();
    for l in inp.lines {
        if matches!(l.prm_status.as_deref(), Some("paid") | Some("declined")) {
            continue;
        }
        by_tx.entry(&l.transaction_id).or_default().push(l);
    }
    struct Acc {
        amount: Decimal,
        lines: Vec<(String, Decimal, bool)>,
        review: Vec<(String, String, Decimal)>,
        decision_held: Vec<(String, Decimal)>,
    }
    let mut acc: BTreeMap<String, Acc> = BTreeMap::new();
    for (tx, lines) in &by_tx {
        let decision = inp.decisions.get(*tx).unwrap_or(&TxDecision::AsSubmitted);
        let amounts: Vec<Decimal> = match decision {
            TxDecision::Total(t) => spread(*t, lines, inp.currency),
            _ => lines.iter().map(|l| l.amount).collect(),
        };
        for (l, amt) in lines.iter().zip(amounts) {
            let a = acc.entry(l.payee_partner_id.clone()).or_insert(Acc {
                amount: Decimal::ZERO,
                lines: Vec::new(),
                review: Vec::new(),
                decision_held: Vec::new(),
            });
            match decision {
                TxDecision::UnderReview(state) => {
                    a.review.push((tx.to_string(), state.clone(), amt));
                    a.lines.push((l.commission_id.clone(), amt, true));
                }
                TxDecision::Held => {
                    a.decision_held.push((tx.to_string(), amt));
                    a.lines.push((l.commission_id.clone(), amt, true));
                }
                _ => {
                    a.amount += amt;
                    a.lines.push((l.commission_id.clone(), amt, false));
                }
            }
        }
    }
    let shared = checks::shared_accounts(&inp.payees.values().cloned().collect::<Vec<_>>());
    let no_released = Vec::new();
    let mut out = Vec::with_capacity(acc.len());
    for (pid, a) in acc {
        let released = inp.released.get(&pid).unwrap_or(&no_released);
        let mut holds = Vec::new();
        let mut warnings = Vec::new();
        match inp.payees.get(&pid) {
            Some(p) => {
                let none = Vec::new();
                let r = checks::check_payee(
                    p,
                    inp.rail,
                    inp.settings,
                    shared.get(&pid).unwrap_or(&none),
                );
                holds.extend(r.holds);
                warnings = r.warnings;
                // A prenote can only go to an account that passes the checks on its
                // numbers (a payee held for a tax form or a call-back still gets it).
                let numbers_ok = !holds.iter().any(|h| h.code == "invalid_routing");
                if let (Rail::Ach, Some(pn), true) = (inp.rail, inp.prenotes, numbers_ok) {
                    if let Some(fp) = super::prenote::fingerprint(p) {
                        holds.extend(super::prenote::hold(
                            p,
                            pn.known.get(&fp),
                            inp.settings.run_date,
                            pn.wait_days,
                        ));
                    }
                }
            }
            None => holds.push(Hold::new(
                match inp.rail {
                    Rail::Ach => "invalid_routing",
                    _ => "invalid_iban",
                },
                "the payee is not a partner with bank details on file",
            )),
        }
        if let Some(code) = inp.returned.get(&pid) {
            holds.push(Hold::new(
                "returned",
                format!("an earlier payment was returned ({code}); bank details must be confirmed"),
            ));
        }
        holds.retain(|h| !released.contains(&h.code));
        let bank_hold = !holds.is_empty();
        if !a.review.is_empty() {
            let sum: Decimal = a.review.iter().map(|r| r.2).sum();
            let list: Vec<String> = a
                .review
                .iter()
                .map(|(tx, st, amt)| format!("{tx} ({st}, {amt})"))
                .collect();
            holds.push(Hold::new(
                "under_review",
                format!(
                    "{} {} {} under review held out of the run: {}",
                    sum,
                    inp.currency,
                    if a.review.len() == 1 { "is" } else { "are" },
                    list.join(", ")
                ),
            ));
        }
        if !a.decision_held.is_empty() {
            let sum: Decimal = a.decision_held.iter().map(|r| r.1).sum();
            let list: Vec<&str> = a.decision_held.iter().map(|r| r.0.as_str()).collect();
            holds.push(Hold::new(
                "under_review",
                format!(
                    "{sum} {} on hold by decision: {}",
                    inp.currency,
                    list.join(", ")
                ),
            ));
        }
        let amount = a.amount;
        let mut carried = false;
        if amount < Decimal::ZERO {
            carried = true;
            holds.push(Hold::new(
                "negative_balance",
                format!(
                    "the balance {amount} {} is negative (clawbacks larger than earnings): carried forward",
                    inp.currency
                ),
            ));
        } else if amount < inp.minimum_payout || (amount.is_zero() && !a.lines.is_empty()) {
            carried = true;
            holds.push(Hold::new(
                "below_minimum",
                format!(
                    "the balance {amount} {} is below the minimum payout {}: carried forward",
                    inp.currency, inp.minimum_payout
                ),
            ));
        }
        let status = if bank_hold {
            "held"
        } else if carried {
            "carried_forward"
        } else if amount.is_zero() {
            "held"
        } else {
            "payable"
        };
        out.push(PayeeResult {
            partner_id: pid,
            amount,
            status,
            holds,
            warnings,
            lines: a.lines,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn line(c: &str, tx: &str, p: &str, a: Decimal) -> Line {
        Line {
            commission_id: c.into(),
            transaction_id: tx.into(),
            payee_partner_id: p.into(),
            amount: a,
            prm_status: None,
        }
    }

    fn payee(id: &str) -> Payee {
        Payee {
            partner_id: id.into(),
            name: format!("{id} Inc"),
            country: Some("US".into()),
            tax_form_kind: Some("W-9".into()),
            routing_number: Some("011000015".into()),
            account_number: Some(format!("1000{}", id.len())),
            ..Payee::default()
        }
    }

    #[test]
    fn decisions_apply_and_review_holds_lines_not_payees() {
        let lines = vec![
            line("c1", "t1", "A", dec!(100.00)),
            line("c2", "t2", "A", dec!(40.00)),
            line("c3", "t3", "B", dec!(70.00)),
            line("c4", "t3", "C", dec!(30.00)),
            Line {
                prm_status: Some("paid".into()),
                ..line("c5", "t4", "A", dec!(999.00))
            },
            Line {
                prm_status: Some("declined".into()),
                ..line("c6", "t5", "B", dec!(999.00))
            },
            line("c7", "t6", "D", dec!(10.00)),
        ];
        let mut decisions = BTreeMap::new();
        decisions.insert(
            "t2".to_string(),
            TxDecision::UnderReview("escalated".into()),
        );
        decisions.insert("t3".to_string(), TxDecision::Total(dec!(50.00)));
        let mut payees = BTreeMap::new();
        for id in ["A", "B", "C", "D"] {
            let mut p = payee(id);
            p.account_number = Some(format!("99{id}"));
            payees.insert(id.to_string(), p);
        }
        let none = BTreeMap::new();
        let released = BTreeMap::new();
        let r = compute(&Inputs {
            currency: "USD",
            minimum_payout: dec!(20),
            rail: Rail::Ach,
            settings: CheckSettings {
                run_date: chrono::NaiveDate::from_ymd_opt(2026, 9, 30).unwrap(),
                bank_change_hold_days: 30,
            },
            lines: &lines,
            decisions: &decisions,
            payees: &payees,
            returned: &none,
            released: &released,
            prenotes: None,
        });
        let by: BTreeMap<&str, &PayeeResult> =
            r.iter().map(|p| (p.partner_id.as_str(), p)).collect();
        // A: the paid line is not paid twice; the escalated line is held out, A still paid.
        assert_eq!(by["A"].amount, dec!(100.00));
        assert_eq!(by["A"].status, "payable");
        assert!(by["A"]
            .holds
            .iter()
            .any(|h| h.code == "under_review" && h.reason.contains("t2")));
        // t3's total 50 spread 70:30 over B and C; the declined line of B is not paid.
        assert_eq!(by["B"].amount, dec!(35.00));
        assert_eq!(by["C"].amount, dec!(15.00));
        assert_eq!(by["C"].status, "carried_forward");
        assert_eq!(by["D"].status, "carried_forward");
        assert!(by["D"].holds.iter().any(|h| h.code == "below_minimum"));
    }

    #[test]
    fn spread_keeps_the_total_exact() {
        let a = line("a", "t", "p", dec!(1.00));
        let b = line("b", "t", "q", dec!(2.00));
        let v = spread(dec!(1.00), &[&a, &b], "USD");
        assert_eq!(v, vec![dec!(0.33), dec!(0.67)]);
    }
}
