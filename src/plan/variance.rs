//! The PRM's commission lines against the plan's recalculation, per transaction.

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use super::explain::{currency, summary};
use super::Calculator;
use crate::model::{CommissionLine, CommissionRole, Dataset};
use crate::money::format_money;

/// A transaction whose PRM lines differ from the plan's, as multisets of
/// (role, payee, amount).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variance {
    pub transaction_id: String,
    /// Lines the plan gives that the PRM does not have.
    pub missing: Vec<CommissionLine>,
    /// PRM lines the plan does not give.
    pub extra: Vec<CommissionLine>,
    /// One sentence per missing, extra or different line, with amounts.
    pub reason: String,
}

type Key<'a> = (CommissionRole, &'a str, Decimal);

fn key(l: &CommissionLine) -> Key<'_> {
    (l.role, l.payee_partner_id.as_str(), l.amount)
}

/// Compares the PRM lines with the recalculated lines of every transaction. Only
/// transactions that differ appear, keyed by transaction id.
pub fn variances(ds: &Dataset, recalculated: &[CommissionLine]) -> BTreeMap<String, Variance> {
    let mut plan: BTreeMap<&str, Vec<&CommissionLine>> = BTreeMap::new();
    for l in recalculated {
        plan.entry(l.transaction_id.as_str()).or_default().push(l);
    }
    let mut prm: BTreeMap<&str, Vec<&CommissionLine>> = BTreeMap::new();
    for l in &ds.commissions {
        prm.entry(l.transaction_id.as_str()).or_default().push(l);
    }
    let cur = currency(ds);
    let mut calc: Option<Calculator> = None;
    let mut out = BTreeMap::new();
    let empty: Vec<&CommissionLine> = Vec::new();
    let mut ids: Vec<&str> = plan.keys().chain(prm.keys()).copied().collect();
    ids.sort_unstable();
    ids.dedup();
    for id in ids {
        let p = plan.get(id).unwrap_or(&empty);
        let r = prm.get(id).unwrap_or(&empty);
        if !differs(p, r) {
            continue;
        }
        let c = calc.get_or_insert_with(|| Calculator::new(ds));
        if let Some(v) = compare(id, p, r, Some(c), cur) {
            out.insert(id.to_string(), v);
        }
    }
    out
}

fn sorted_keys<'a>(ls: &[&'a CommissionLine]) -> Vec<Key<'a>> {
    let mut k: Vec<Key> = ls.iter().map(|l| key(l)).collect();
    k.sort();
    k
}

fn differs(plan: &[&CommissionLine], prm: &[&CommissionLine]) -> bool {
    plan.len() != prm.len() || sorted_keys(plan) != sorted_keys(prm)
}

/// The variance of one transaction, or `None` when the multisets are equal. With a
/// calculator, the reason carries the plan's derivation of each differing line.
pub(crate) fn compare(
    transaction_id: &str,
    plan: &[&CommissionLine],
    prm: &[&CommissionLine],
    calc: Option<&Calculator>,
    cur: &str,
) -> Option<Variance> {
    // Multiset difference by sorting both sides and merging.
    let mut p: Vec<&CommissionLine> = plan.to_vec();
    let mut r: Vec<&CommissionLine> = prm.to_vec();
    p.sort_by(|a, b| {
        key(a)
            .cmp(&key(b))
            .then(a.commission_id.cmp(&b.commission_id))
    });
    r.sort_by(|a, b| {
        key(a)
            .cmp(&key(b))
            .then(a.commission_id.cmp(&b.commission_id))
    });
    let (mut i, mut j) = (0, 0);
    let mut missing: Vec<CommissionLine> = Vec::new();
    let mut extra: Vec<CommissionLine> = Vec::new();
    while i < p.len() || j < r.len() {
        match (p.get(i), r.get(j)) {
            (Some(a), Some(b)) => match key(a).cmp(&key(b)) {
                std::cmp::Ordering::Equal => {
                    i += 1;
                    j += 1;
                }
                std::cmp::Ordering::Less => {
                    missing.push((*a).clone());
                    i += 1;
                }
                std::cmp::Ordering::Greater => {
                    extra.push((*b).clone());
                    j += 1;
                }
            },
            (Some(a), None) => {
                missing.push((*a).clone());
                i += 1;
            }
            (None, Some(b)) => {
                extra.push((*b).clone());
                j += 1;
            }
            (None, None) => break,
        }
    }
    if missing.is_empty() && extra.is_empty() {
        return None;
    }
    // The plan's derivations of this transaction's lines, by commission id.
    let derivations = calc
        .and_then(|c| c.index_of(transaction_id).map(|i| (c, i)))
        .map(|(c, i)| c.lines_of(i).lines)
        .unwrap_or_default();
    let why = |l: &CommissionLine| -> String {
        derivations
            .iter()
            .find(|(dl, _)| dl.commission_id == l.commission_id)
            .or_else(|| {
                derivations
                    .iter()
                    .find(|(dl, _)| dl.role == l.role && dl.payee_partner_id == l.payee_partner_id)
            })
            .map(|(_, d)| format!(" ({})", summary(d, cur)))
            .unwrap_or_default()
    };
    let known = calc.is_none_or(|c| c.index_of(transaction_id).is_some());
    let mut sentences = Vec::new();
    let mut used_extra = vec![false; extra.len()];
    for m in &missing {
        // A PRM line of the same role and payee with another amount: a different line.
        let pair = extra.iter().enumerate().position(|(k, e)| {
            !used_extra[k] && e.role == m.role && e.payee_partner_id == m.payee_partner_id
        });
        match pair {
            Some(k) => {
                used_extra[k] = true;
                let e = &extra[k];
                sentences.push(format!(
                    "PRM {} line to {} pays {} but the plan gives {}{}",
                    m.role.as_str(),
                    m.payee_partner_id,
                    format_money(e.amount, cur),
                    format_money(m.amount, cur),
                    why(m)
                ));
            }
            None => sentences.push(format!(
                "PRM is missing the {} line to {} of {} that the plan gives{}",
                m.role.as_str(),
                m.payee_partner_id,
                format_money(m.amount, cur),
                why(m)
            )),
        }
    }
    for (k, e) in extra.iter().enumerate() {
        if used_extra[k] {
            continue;
        }
        let tail = if !known {
            " (the transaction is not in the data set)".to_string()
        } else {
            let same = plan
                .iter()
                .find(|l| l.role == e.role && l.payee_partner_id == e.payee_partner_id);
            match same {
                Some(l) => format!(
                    " (the plan gives only one {} line of {} to {})",
                    l.role.as_str(),
                    format_money(l.amount, cur),
                    l.payee_partner_id
                ),
                None => String::new(),
            }
        };
        sentences.push(format!(
            "PRM pays an extra {} line {} to {} of {} that the plan does not give{}",
            e.role.as_str(),
            e.commission_id,
            e.payee_partner_id,
            format_money(e.amount, cur),
            tail
        ));
    }
    Some(Variance {
        transaction_id: transaction_id.to_string(),
        missing,
        extra,
        reason: sentences.join("; ") + ".",
    })
}
