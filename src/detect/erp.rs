//! `erp_mismatch`: a partner-reported sale checked against what the vendor's ERP billed.
//!
//! The ERP is the system of record. A sale is a mismatch when no invoice carries its
//! invoice number, or the invoice names another partner, another customer (after
//! normalising legal forms, case and punctuation; a small spelling variant is the same
//! customer), another sku or quantity, or an amount beyond rounding. An invoice backs at
//! most one sale: of the sales naming it that agree with it, the earliest submitted owns
//! it, and a later one (a resubmission) is a mismatch too.
//!
//! Refunds are not checked (credit notes are not in the invoice file). Sales closed
//! before the ERP extract's first invoice, and every sale when no ERP file was given,
//! are "not evaluated".

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde_json::json;

use super::context::Ctx;
use super::names::{name_similarity, normalise_customer};
use super::Hit;
use crate::fxhash::{FxMap, FxSet};
use crate::model::*;

/// Two customer names at least this similar (after normalisation) are one customer
/// spelled differently.
const SAME_CUSTOMER: f64 = 0.8;

/// The outcome of the ERP check per transaction index.
#[derive(Debug, Default)]
pub struct ErpCheck {
    pub hits: FxMap<usize, Hit>,
    /// Sales that could not be checked.
    pub not_evaluated: FxSet<usize>,
}

/// Amounts within this of each other are the same amount (rounding of unit prices
/// times quantity: half a minor unit of the currency a unit, at least one minor unit).
pub fn tolerance(currency: &str, quantity: i64) -> Decimal {
    let minor = Decimal::new(1, crate::money::minor_digits(currency));
    let units = Decimal::from(
        quantity
            .unsigned_abs()
            .min(crate::import::integrity::MAX_ABS_QUANTITY as u64),
    );
    (minor / Decimal::TWO * units).max(minor)
}

struct Invoice<'a> {
    inv: &'a ErpInvoice,
    customer: String,
}

/// What differs between a sale and the invoice it names (empty when they agree).
fn differences(ctx: &Ctx, i: usize, t: &Transaction, inv: &Invoice<'_>) -> Vec<String> {
    let mut out = Vec::new();
    if inv.inv.partner_id != t.partner_id {
        out.push(format!("billed through partner {}", inv.inv.partner_id));
    }
    let ours = ctx.norm_customer(i);
    if ours != inv.customer && name_similarity(ours, &inv.customer) < SAME_CUSTOMER {
        out.push(format!("billed to {:?}", inv.inv.customer_name));
    }
    let line = inv
        .inv
        .lines
        .iter()
        .find(|l| l.sku == t.sku)
        .or(match inv.inv.lines.len() {
            1 => inv.inv.lines.first(),
            _ => None,
        });
    match line {
        None => out.push(format!(
            "no line for {} (the invoice bills {})",
            t.sku,
            inv.inv
                .lines
                .iter()
                .map(|l| l.sku.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
        Some(l) => {
            if l.sku != t.sku {
                out.push(format!("bills {} not {}", l.sku, t.sku));
            }
            if l.quantity != t.quantity {
                out.push(format!("bills quantity {} not {}", l.quantity, t.quantity));
            }
            if (l.amount - t.amount).abs() > tolerance(&t.currency, t.quantity) {
                out.push(format!(
                    "bills {} not {}",
                    ctx.money(l.amount),
                    ctx.money(t.amount)
                ));
            }
        }
    }
    out
}

pub fn check(ctx: &Ctx) -> ErpCheck {
    let ds = ctx.ds;
    let mut out = ErpCheck::default();
    let sales = || {
        ds.transactions
            .iter()
            .enumerate()
            .filter(|(_, t)| t.kind == TransactionKind::Sale)
    };
    let Some(invoices) = ds.erp_invoices.as_ref().filter(|v| !v.is_empty()) else {
        out.not_evaluated = sales().map(|(i, _)| i).collect();
        return out;
    };
    let first_day: NaiveDate = invoices
        .iter()
        .map(|v| v.invoice_date)
        .min()
        .unwrap_or(NaiveDate::MIN);
    let by_number: FxMap<&str, Invoice<'_>> = invoices
        .iter()
        .map(|v| {
            (
                v.invoice_number.as_str(),
                Invoice {
                    inv: v,
                    customer: normalise_customer(&v.customer_name),
                },
            )
        })
        .collect();
    // Sales per invoice number, earliest submission first.
    let mut claims: FxMap<&str, Vec<usize>> = FxMap::default();
    for (i, t) in sales() {
        if t.closed_on < first_day {
            out.not_evaluated.insert(i);
            continue;
        }
        claims.entry(t.invoice_number.as_str()).or_default().push(i);
    }
    for (number, mut idx) in claims {
        idx.sort_by(|&a, &b| {
            let (x, y) = (&ds.transactions[a], &ds.transactions[b]);
            (x.submitted_at, &x.transaction_id).cmp(&(y.submitted_at, &y.transaction_id))
        });
        let Some(inv) = by_number.get(number) else {
            for i in idx {
                let t = &ds.transactions[i];
                out.hits.insert(
                    i,
                    hit(
                        format!(
                            "No ERP invoice {} exists for this {} sale of {} x {} (the ERP extract has {} invoices from {})",
                            t.invoice_number,
                            ctx.money(t.amount),
                            t.quantity,
                            t.sku,
                            invoices.len(),
                            first_day
                        ),
                        json!({"invoice_number": t.invoice_number, "found": false}),
                    ),
                );
            }
            continue;
        };
        let mut owner: Option<usize> = None;
        for i in idx {
            let t = &ds.transactions[i];
            let diffs = differences(ctx, i, t, inv);
            if !diffs.is_empty() {
                out.hits.insert(
                    i,
                    hit(
                        format!(
                            "ERP invoice {} differs from this sale: it {}",
                            t.invoice_number,
                            diffs.join(", ")
                        ),
                        json!({
                            "invoice_number": t.invoice_number,
                            "found": true,
                            "differences": diffs,
                        }),
                    ),
                );
            } else if let Some(o) = owner {
                let first = &ds.transactions[o];
                out.hits.insert(
                    i,
                    hit(
                        format!(
                            "ERP invoice {} is already matched by {} (submitted {}); an invoice backs one sale",
                            t.invoice_number,
                            first.transaction_id,
                            first.submitted_at.date_naive()
                        ),
                        json!({
                            "invoice_number": t.invoice_number,
                            "found": true,
                            "matched_by": first.transaction_id,
                        }),
                    ),
                );
            } else {
                owner = Some(i);
            }
        }
    }
    out
}

fn hit(reason: String, evidence: serde_json::Value) -> Hit {
    Hit {
        kind: AnomalyKind::ErpMismatch,
        p: 0.93,
        confidence: 0.95,
        reason,
        evidence,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_tolerance_is_in_the_currency_s_minor_unit() {
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        assert_eq!(tolerance("USD", 1), d("0.01"));
        assert_eq!(tolerance("USD", 10), d("0.05"));
        assert_eq!(tolerance("USD", -10), d("0.05"));
        assert_eq!(tolerance("JPY", 1), d("1"));
        assert_eq!(tolerance("JPY", 10), d("5"));
    }
}
