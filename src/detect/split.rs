//! `split_deals`: several near-identical deals by one partner to one customer within a
//! day or two, each kept under a threshold. Every member of such a group is flagged.

use serde_json::json;

use super::context::{to_f64, Ctx, Feat};
use super::names::invoice_distance;
use super::Hit;
use crate::fxhash::FxMap;
use crate::model::*;

/// Close dates at most this many days apart belong to one split.
pub const SPLIT_DAYS: i64 = 2;
/// Amounts within this relative difference are "near-identical".
pub const SPLIT_AMOUNT_REL: f64 = 0.05;
/// A split is at least this many deals.
pub const SPLIT_MIN_DEALS: usize = 3;

/// Sales grouped by (partner, sku), each block sorted by close date then id: the
/// blocking that keeps duplicate and split detection linear in practice. Blocks are
/// ordered by their first transaction index.
pub fn blocks(ctx: &Ctx) -> Vec<Vec<u32>> {
    let ds = ctx.ds;
    let mut map: FxMap<(&str, &str), u32> = FxMap::default();
    let mut out: Vec<Vec<u32>> = Vec::new();
    for (i, t) in ds.transactions.iter().enumerate() {
        if t.kind == TransactionKind::Sale {
            let b = *map
                .entry((t.partner_id.as_str(), t.sku.as_str()))
                .or_insert_with(|| {
                    out.push(Vec::new());
                    (out.len() - 1) as u32
                });
            out[b as usize].push(i as u32);
        }
    }
    for b in &mut out {
        b.sort_by(|&a, &c| {
            let (x, y) = (&ds.transactions[a as usize], &ds.transactions[c as usize]);
            ctx.feat[a as usize]
                .day
                .cmp(&ctx.feat[c as usize].day)
                .then_with(|| x.transaction_id.cmp(&y.transaction_id))
        });
    }
    out
}

pub fn rel_diff(a: f64, b: f64) -> f64 {
    let m = a.abs().max(b.abs());
    if m == 0.0 {
        0.0
    } else {
        (a - b).abs() / m
    }
}

fn find(parent: &mut [usize], mut x: usize) -> usize {
    while parent[x] != x {
        parent[x] = parent[parent[x]];
        x = parent[x];
    }
    x
}

/// Finds the split groups of one block; returns the hit for every member, keyed by
/// transaction index.
/// `feats[k]` are the figures of `block[k]`.
pub fn detect_block(ctx: &Ctx, block: &[u32], feats: &[Feat]) -> Vec<(usize, Hit)> {
    let ds = ctx.ds;
    let mut out = Vec::new();
    if block.len() < SPLIT_MIN_DEALS {
        return out;
    }
    {
        let n = block.len();
        let mut parent: Vec<usize> = (0..n).collect();
        for a in 0..n {
            let ia = block[a] as usize;
            let fa = &feats[a];
            for (b, fb) in feats.iter().enumerate().skip(a + 1) {
                if i64::from(fb.day - fa.day) > SPLIT_DAYS {
                    break;
                }
                let amount_rel = rel_diff(fa.amount, fb.amount);
                if amount_rel > SPLIT_AMOUNT_REL
                    && !(amount_rel <= 0.25 && rel_diff(fa.net, fb.net) <= 0.01)
                {
                    continue;
                }
                let ib = block[b] as usize;
                let (ta, tb) = (&ds.transactions[ia], &ds.transactions[ib]);
                let sub_gap = (tb.submitted_at - ta.submitted_at).num_hours().abs();
                if sub_gap > (SPLIT_DAYS + 1) * 24 {
                    continue;
                }
                // A kept invoice number is a resubmission (duplicate), not a separate piece.
                if invoice_distance(&ta.invoice_number, &tb.invoice_number) <= 2 {
                    continue;
                }
                if ctx.names.similarity(fa.name, fb.name, 0.9).is_none() {
                    continue;
                }
                let (ra, rb) = (find(&mut parent, a), find(&mut parent, b));
                if ra != rb {
                    parent[ra.max(rb)] = ra.min(rb);
                }
            }
        }
        let mut groups: FxMap<usize, Vec<usize>> = FxMap::default();
        for (k, &idx) in block.iter().enumerate() {
            let r = find(&mut parent, k);
            groups.entry(r).or_default().push(idx as usize);
        }
        let mut groups: Vec<Vec<usize>> = groups.into_values().collect();
        groups.sort();
        for g in groups {
            if g.len() < 2 {
                continue;
            }
            let members: Vec<&Transaction> = g.iter().map(|&i| &ds.transactions[i]).collect();
            let total: rust_decimal::Decimal = members.iter().map(|t| t.amount).sum();
            // Two pieces: only when the program has a registration threshold that each
            // piece stays under, none is registered, and together they are over it.
            let mut under: Option<f64> = None;
            if g.len() < SPLIT_MIN_DEALS {
                let Some(th) = ctx.registration_threshold else {
                    continue;
                };
                let max_piece = members.iter().map(|t| to_f64(t.amount)).fold(0.0, f64::max);
                let none_registered = members.iter().all(|t| t.registration_id.is_none());
                if !(none_registered && max_piece < th && to_f64(total) >= th) {
                    continue;
                }
                under = Some(th);
            }
            let first = members.iter().map(|t| t.closed_on).min();
            let last = members.iter().map(|t| t.closed_on).max();
            let (Some(first), Some(last)) = (first, last) else {
                continue;
            };
            let registered = members
                .iter()
                .filter(|t| t.registration_id.is_some())
                .count();
            let ids: Vec<&str> = members.iter().map(|t| t.transaction_id.as_str()).collect();
            let spread = members
                .iter()
                .map(|t| to_f64(t.amount))
                .fold((f64::MAX, f64::MIN), |(lo, hi), x| (lo.min(x), hi.max(x)));
            let tightness = 1.0 - (rel_diff(spread.0, spread.1) / SPLIT_AMOUNT_REL).clamp(0.0, 1.0);
            let size_bonus = (g.len().saturating_sub(SPLIT_MIN_DEALS) as f64 / 3.0).clamp(0.0, 1.0);
            let partner_median = ctx
                .partner_base
                .get(members[0].partner_id.as_str())
                .filter(|b| b.size.n() >= 5)
                .map(|b| b.size.median.exp());
            let versus = match partner_median {
                Some(m) if m > 0.0 => format!(
                    ", {:.1}x this partner's median deal of {}",
                    to_f64(total) / m,
                    ctx.money_f(m)
                ),
                _ => String::new(),
            };
            for &i in &g {
                let t = &ds.transactions[i];
                let others: Vec<&str> = ids
                    .iter()
                    .copied()
                    .filter(|id| *id != t.transaction_id)
                    .collect();
                let threshold = match ctx.registration_threshold {
                    Some(th) if to_f64(total) >= th => format!(
                        "; each under the {} above which deals are registered, together over it",
                        ctx.money_f(th)
                    ),
                    _ => String::new(),
                };
                let reason = format!(
                    "One of {} near-identical {} deals to '{}' between {} and {} (this one {}, {} together{}; {} of {} cite a registration{}); others: {}",
                    g.len(),
                    t.sku,
                    t.customer_name,
                    first,
                    last,
                    ctx.money(t.amount),
                    ctx.money(total),
                    versus,
                    registered,
                    g.len(),
                    threshold,
                    others.join(", ")
                );
                out.push((
                    i,
                    Hit {
                        kind: AnomalyKind::SplitDeals,
                        p: if under.is_some() {
                            0.8 + 0.1 * tightness
                        } else {
                            0.85 + 0.07 * tightness + 0.05 * size_bonus
                        },
                        confidence: 0.8 + 0.1 * tightness,
                        reason,
                        evidence: json!({
                            "group": ids,
                            "total": total.to_string(),
                            "first_close": first.to_string(),
                            "last_close": last.to_string(),
                        }),
                    },
                ));
            }
        }
    }
    out
}
