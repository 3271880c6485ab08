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
    variances_in(ds, None, recalculated)
}

/// [`variances`] with a calculator already built over the same data set (it explains
/// the differing lines).
pub fn variances_with(
    calc: &Calculator,
    recalculated: &[CommissionLine],
) -> BTreeMap<String, Variance> {
    variances_in(calc.dataset(), Some(calc), recalculated)
}

fn variances_in<'a>(
    ds: &'a Dataset,
    given: Option<&Calculator<'a>>,
    recalculated: &[CommissionLine],
) -> BTreeMap<String, Variance> {
    // Both sides grouped by transaction id with one stable sort each (already sorted
    // input, as `recalculate` gives, costs one pass); within a transaction, lines keep
    // their input order.
    let plan = by_id(recalculated);
    let prm = by_id(&ds.commissions);
    let cur = currency(ds);
    let mut built: Option<Calculator> = None;
    let mut out = BTreeMap::new();
    let (mut i, mut j) = (0, 0);
    while i < plan.len() || j < prm.len() {
        let id = match (plan.get(i), prm.get(j)) {
            (Some(a), Some(b)) => a.transaction_id.as_str().min(b.transaction_id.as_str()),
            (Some(a), None) => a.transaction_id.as_str(),
            (None, Some(b)) => b.transaction_id.as_str(),
            (None, None) => break,
        };
        let p = run_of(&plan, i, id);
        let r = run_of(&prm, j, id);
        i += p.len();
        j += r.len();
        if !differs(p, r) {
            continue;
        }
        let c = match given {
            Some(c) => c,
            None => built.get_or_insert_with(|| Calculator::new(ds)),
        };
        if let Some(v) = compare(id, p, r, Some(c), cur) {
            out.insert(id.to_string(), v);
        }
    }
    out
}

fn by_id(ls: &[CommissionLine]) -> Vec<&CommissionLine> {
    let mut v: Vec<&CommissionLine> = ls.iter().collect();
    v.sort_by(|a, b| a.transaction_id.cmp(&b.transaction_id));
    v
}

/// The lines from `start` on whose transaction is `id`.
fn run_of<'l, 'a>(
    ls: &'l [&'a CommissionLine],
    start: usize,
    id: &str,
) -> &'l [&'a CommissionLine] {
    let rest = ls.get(start..).unwrap_or_default();
    let n = rest
        .iter()
        .position(|l| l.transaction_id != id)
        .unwrap_or(rest.len());
    &rest[..n]
}

fn sorted_keys<'a>(ls: &[&'a CommissionLine]) -> Vec<Key<'a>> {
    let mut k: Vec<Key> = ls.iter().map(|l| key(l)).collect();
    k.sort();
    k
}

/// Whether the two sides differ as multisets of (role, payee, amount).
fn differs(plan: &[&CommissionLine], prm: &[&CommissionLine]) -> bool {
    if plan.len() != prm.len() {
        return true;
    }
    if plan.len() > 64 {
        return sorted_keys(plan) != sorted_keys(prm);
    }
    // Small sides (the usual case): match each plan line to an unused equal PRM line.
    let mut used = 0u64;
    for a in plan {
        let ka = key(a);
        let hit = prm
            .iter()
            .enumerate()
            .position(|(k, b)| used & (1u64 << k) == 0 && key(b) == ka);
        match hit {
            Some(k) => used |= 1u64 << k,
            None => return true,
        }
    }
    false
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
