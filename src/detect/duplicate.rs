//! `duplicate`: a resubmission of an earlier transaction of the same partner with small
//! edits (customer spelled differently, date shifted a few days, invoice changed, amount
//! nearly equal). The later submission is flagged and names the earlier one.

use serde_json::json;

use super::context::{Ctx, Feat};
use super::names::{invoice_contains, invoice_distance};
use super::split::rel_diff;
use super::{Hit, Soft};
use crate::fxhash::{FxMap, FxSet};
use crate::model::*;

/// Close dates further apart than this are not the same deal (repeat orders are).
pub const DUP_DAYS: i64 = 14;
/// Amounts within this relative difference are "nearly equal".
pub const DUP_AMOUNT_REL: f64 = 0.05;
/// Normalised customer names at least this similar are the same customer.
pub const DUP_NAME_SIM: f64 = 0.85;

/// One candidate match of a later transaction to an earlier one.
struct Match {
    earlier: usize,
    strength: f64,
    name_sim: f64,
    amount_rel: f64,
    invoice_distance: usize,
    days: i64,
}

/// Flagged later transactions and soft suspicions of one block, by transaction index.
pub type BlockDups = (Vec<(usize, Hit)>, Vec<(usize, Soft)>);

/// Finds the duplicates within one block (sales of one partner and sku, sorted by close
/// date); returns flagged later transactions (by index) and a soft near-miss suspicion
/// for others. `in_split` holds the block's members of split groups.
/// `feats[k]` are the figures of `block[k]`.
pub fn detect_block(
    ctx: &Ctx,
    block: &[u32],
    feats: &[Feat],
    in_split: &FxSet<usize>,
) -> BlockDups {
    let ds = ctx.ds;
    let mut best: FxMap<usize, Match> = FxMap::default();
    let mut soft: FxMap<usize, Soft> = FxMap::default();
    {
        for (a, fa) in feats.iter().enumerate() {
            let ia = block[a] as usize;
            let a_split = !in_split.is_empty() && in_split.contains(&ia);
            for (b, fb) in feats.iter().enumerate().skip(a + 1) {
                let days = i64::from(fb.day - fa.day);
                if days > DUP_DAYS {
                    break;
                }
                let amount_rel = rel_diff(fa.amount, fb.amount);
                // Cheap rejections first: amounts this far apart never qualify below.
                if amount_rel > 0.5 {
                    continue;
                }
                let same_price = rel_diff(fa.net, fb.net) <= 0.01;
                if amount_rel > 2.0 * DUP_AMOUNT_REL && !same_price {
                    continue;
                }
                let ib = block[b] as usize;
                if a_split && in_split.contains(&ib) {
                    continue;
                }
                let (ta, tb) = (&ds.transactions[ia], &ds.transactions[ib]);
                let inv = invoice_distance(&ta.invoice_number, &tb.invoice_number);
                let inv_kept = inv <= 2 || invoice_contains(&ta.invoice_number, &tb.invoice_number);
                // With the invoice kept, an edited quantity at the same price is still a copy.
                let amount_ok =
                    amount_rel <= DUP_AMOUNT_REL || (inv_kept && same_price && amount_rel <= 0.5);
                if !amount_ok && amount_rel > 2.0 * DUP_AMOUNT_REL {
                    continue;
                }
                let Some(name_sim) = ctx.names.similarity(fa.name, fb.name, 0.7) else {
                    continue;
                };
                // Which one came later (the resubmission).
                let a_first = (ta.submitted_at, ta.closed_on, &ta.transaction_id)
                    <= (tb.submitted_at, tb.closed_on, &tb.transaction_id);
                let (early, late) = if a_first { (ia, ib) } else { (ib, ia) };
                let s_name = ((name_sim - 0.7) / 0.3).clamp(0.0, 1.0);
                let s_amt = if amount_rel <= DUP_AMOUNT_REL || !amount_ok {
                    1.0 - (amount_rel / (2.0 * DUP_AMOUNT_REL)).clamp(0.0, 1.0)
                } else {
                    0.5
                };
                let s_inv = match inv {
                    0 => 1.0,
                    1 => 0.95,
                    2 => 0.8,
                    _ if inv_kept => 0.8,
                    3 => 0.4,
                    _ => 0.0,
                };
                let s_day = 1.0 - (days as f64 / DUP_DAYS as f64).clamp(0.0, 1.0);
                let s_qty = if ta.quantity == tb.quantity { 1.0 } else { 0.0 };
                let strength =
                    0.3 * s_name + 0.25 * s_amt + 0.2 * s_inv + 0.15 * s_day + 0.1 * s_qty;
                // A resubmission leaves an edit trace: the invoice number kept (nearly), or
                // the same customer typed differently. A repeat order (or one piece of a split
                // deal) has a new invoice and the customer's name exactly as before.
                let name_edited = ta.customer_name != tb.customer_name;
                let trace = inv_kept || (name_edited && amount_rel <= DUP_AMOUNT_REL);
                let qualifies = name_sim >= DUP_NAME_SIM && amount_ok && trace && strength >= 0.6;
                if !qualifies {
                    let e = soft.entry(late).or_insert(0.0);
                    *e = e.max(strength * 0.6);
                    continue;
                }
                let m = Match {
                    earlier: early,
                    strength,
                    name_sim,
                    amount_rel,
                    invoice_distance: inv,
                    days,
                };
                match best.get(&late) {
                    Some(old) if old.strength >= m.strength => {}
                    _ => {
                        best.insert(late, m);
                    }
                }
            }
        }
    }
    let mut hits = Vec::new();
    for (late, m) in best {
        if in_split.contains(&late) {
            continue;
        }
        let t = &ds.transactions[late];
        let e = &ds.transactions[m.earlier];
        let sub_days = (t.submitted_at - e.submitted_at).num_days();
        let mut diffs: Vec<String> = Vec::new();
        if t.sku == e.sku && t.quantity == e.quantity {
            diffs.push(format!("same sku {} and quantity {}", t.sku, t.quantity));
        } else {
            diffs.push(format!(
                "same sku {}, quantity {} vs {}",
                t.sku, t.quantity, e.quantity
            ));
        }
        if t.customer_name == e.customer_name {
            diffs.push(format!("same customer '{}'", t.customer_name));
        } else {
            diffs.push(format!(
                "customer '{}' vs '{}'",
                t.customer_name, e.customer_name
            ));
        }
        if t.amount == e.amount {
            diffs.push(format!("same amount {}", ctx.money(t.amount)));
        } else {
            diffs.push(format!(
                "amount {} vs {} ({:.1}% apart)",
                ctx.money(t.amount),
                ctx.money(e.amount),
                m.amount_rel * 100.0
            ));
        }
        diffs.push(match m.invoice_distance {
            0 => "same invoice number".to_string(),
            1 => "invoice differs by one character".to_string(),
            d => format!("invoice differs by {d} characters"),
        });
        if m.days != 0 {
            diffs.push(format!(
                "close date shifted {}",
                crate::plural::n(m.days, "day")
            ));
        }
        let reason = format!(
            "Looks like a resubmission of {} from {} earlier: {}",
            e.transaction_id,
            crate::plural::n(sub_days.max(0), "day"),
            super::registration::join_and(&diffs)
        );
        hits.push((
            late,
            Hit {
                kind: AnomalyKind::Duplicate,
                p: 0.8 + 0.19 * ((m.strength - 0.6) / 0.4).clamp(0.0, 1.0),
                confidence: 0.7 + 0.27 * ((m.strength - 0.6) / 0.4).clamp(0.0, 1.0),
                reason,
                evidence: json!({
                    "duplicate_of": e.transaction_id,
                    "name_similarity": (m.name_sim * 1000.0).round() / 1000.0,
                    "amount_rel_diff": (m.amount_rel * 10000.0).round() / 10000.0,
                    "invoice_distance": m.invoice_distance,
                    "close_days_apart": m.days,
                    "submitted_days_apart": sub_days,
                }),
            },
        ));
    }
    (hits, soft.into_iter().collect())
}
