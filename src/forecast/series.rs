//! Turning transactions and commission lines into quarterly and monthly series.
//!
//! Definitions (documented in the module root):
//! - **bookings** = the amounts of `sale` transactions by `closed_on` (gross: refunds do not
//!   reduce bookings, exactly as quota attainment is measured by the plan);
//! - **accrual** = the sum of seller, override, SPIFF and clawback lines of the period, booked
//!   to the payee; SPIFF lines are kept apart so promotions in the plan can be forecast from
//!   the plan instead of being extrapolated from history.

use std::collections::{BTreeMap, HashMap};

use chrono::{Datelike, NaiveDate};
use rust_decimal::prelude::ToPrimitive;

use crate::model::{
    fiscal_quarter_bounds, fiscal_year_quarter, parse_quarter, CommissionLine, CommissionRole,
    Dataset, RegistrationStatus, TransactionKind,
};

/// A fiscal quarter as a running index (`fiscal year * 4 + quarter - 1`).
pub(crate) fn qidx(date: NaiveDate, fy_start: u32) -> i32 {
    let (y, q) = fiscal_year_quarter(date, fy_start);
    y * 4 + q as i32 - 1
}

pub(crate) fn qlabel(idx: i32) -> String {
    format!("{}-Q{}", idx.div_euclid(4), idx.rem_euclid(4) + 1)
}

pub(crate) fn qbounds(idx: i32, fy_start: u32) -> (NaiveDate, NaiveDate) {
    fiscal_quarter_bounds(idx.div_euclid(4), (idx.rem_euclid(4) + 1) as u32, fy_start)
}

pub(crate) fn qidx_of_label(s: &str) -> Option<i32> {
    parse_quarter(s).map(|(y, q)| y * 4 + q as i32 - 1)
}

/// Quarter of the year (0..=3) of a quarter index.
pub(crate) fn qoy(idx: i32) -> usize {
    idx.rem_euclid(4) as usize
}

pub(crate) fn dec(d: rust_decimal::Decimal) -> f64 {
    d.to_f64().unwrap_or(0.0)
}

/// The tier of a partner on a day: the row with the latest `effective_from <= day`.
pub(crate) fn tier_on(ds: &Dataset, day: NaiveDate) -> HashMap<String, String> {
    let mut best: HashMap<&str, (NaiveDate, &str)> = HashMap::new();
    for h in &ds.tier_history {
        if h.effective_from > day {
            continue;
        }
        let e = best
            .entry(h.partner_id.as_str())
            .or_insert((h.effective_from, h.tier_id.as_str()));
        if h.effective_from >= e.0 {
            *e = (h.effective_from, h.tier_id.as_str());
        }
    }
    best.into_iter()
        .map(|(p, (_, t))| (p.to_string(), t.to_string()))
        .collect()
}

/// Quarterly series of every partner, from the first quarter with a sale up to the last
/// complete quarter at `as_of`, plus the partial current quarter (if any) kept apart.
#[derive(Debug, Clone)]
pub(crate) struct Panel {
    pub fy_start: u32,
    pub as_of: NaiveDate,
    /// Quarter index of t = 0.
    pub first_q: i32,
    /// Number of complete quarters (t = 0..n).
    pub n: usize,
    /// The quarter containing `as_of` when it is not complete (its data so far is in `partial_*`).
    pub partial_q: Option<i32>,
    pub partners: Vec<String>,
    pub index: HashMap<String, usize>,
    /// Per partner, per complete quarter.
    pub bookings: Vec<Vec<f64>>,
    pub accrual: Vec<Vec<f64>>,
    pub spiff: Vec<Vec<f64>>,
    pub partial_bookings: Vec<f64>,
    pub partial_accrual: Vec<f64>,
    /// First quarter t at which a partner counts as active (joined and in the data).
    pub start: Vec<usize>,
    /// Current tier (at `as_of`) of each partner, if any.
    pub tier: Vec<Option<String>>,
    pub region: Vec<String>,
    /// Cumulative share of a quarter's bookings done by day offset d (0-based), pooled.
    pub shape: Vec<f64>,
    /// The registered pipeline, per partner, for t = 1..=n (index n: the quarter after
    /// the last complete one): expected amounts of the deal registrations (not rejected)
    /// the partner had open on the eve of quarter t (registered by then, not expired,
    /// no sale closed on them yet). Index 0 stays zero: before the data starts, closed
    /// sales are unknown.
    pub pipe_own: Vec<Vec<f64>>,
    /// The same for the registrations of the partner's resellers (its override base).
    pub pipe_child: Vec<Vec<f64>>,
    /// Per partner, per complete quarter: bookings of sales closed on a registration that
    /// was open on the eve of their quarter (the part of `bookings` the pipeline foretold).
    pub pipe_bookings: Vec<Vec<f64>>,
    /// Non-SPIFF accrual of the partner on those sales: seller and clawback lines (own),
    /// override lines (its resellers' pipeline).
    pub pipe_accrual_own: Vec<Vec<f64>>,
    pub pipe_accrual_child: Vec<Vec<f64>>,
}

impl Panel {
    /// Builds the panel as the data stood at `as_of` (later transactions are ignored).
    pub fn build(ds: &Dataset, lines: &[CommissionLine], as_of: NaiveDate) -> Panel {
        let fy = ds.program.fiscal_year_start_month;
        let q_asof = qidx(as_of, fy);
        let last_complete = if qbounds(q_asof, fy).1 == as_of {
            q_asof
        } else {
            q_asof - 1
        };
        let first_q = ds
            .transactions
            .iter()
            .filter(|t| t.kind == TransactionKind::Sale && t.closed_on <= as_of)
            .map(|t| qidx(t.closed_on, fy))
            .min()
            .unwrap_or(last_complete + 1)
            .min(last_complete + 1);
        let n = (last_complete - first_q + 1).max(0) as usize;
        let partial_q = (last_complete != q_asof).then_some(q_asof);

        let partners: Vec<String> = ds.partners.iter().map(|p| p.partner_id.clone()).collect();
        let index: HashMap<String, usize> = partners
            .iter()
            .enumerate()
            .map(|(i, p)| (p.clone(), i))
            .collect();
        let np = partners.len();
        let mut bookings = vec![vec![0.0; n]; np];
        let mut accrual = vec![vec![0.0; n]; np];
        let mut spiff = vec![vec![0.0; n]; np];
        let mut partial_bookings = vec![0.0; np];
        let mut partial_accrual = vec![0.0; np];

        // Day-of-quarter shape, pooled over complete quarters.
        let mut day_amounts: Vec<Vec<f64>> = vec![vec![0.0; 92]; n];
        let mut closed: HashMap<&str, NaiveDate> = HashMap::new();
        for t in &ds.transactions {
            closed.insert(t.transaction_id.as_str(), t.closed_on);
            if t.closed_on > as_of || t.kind != TransactionKind::Sale {
                continue;
            }
            let Some(&p) = index.get(&t.partner_id) else {
                continue;
            };
            let q = qidx(t.closed_on, fy);
            let amt = dec(t.amount);
            if Some(q) == partial_q {
                partial_bookings[p] += amt;
            } else if q >= first_q && q <= last_complete {
                let ti = (q - first_q) as usize;
                bookings[p][ti] += amt;
                let d = (t.closed_on - qbounds(q, fy).0).num_days().clamp(0, 91) as usize;
                day_amounts[ti][d] += amt;
            }
        }
        for l in lines {
            let q = match closed.get(l.transaction_id.as_str()) {
                Some(d) if *d > as_of => continue,
                Some(d) => qidx(*d, fy),
                None => match qidx_of_label(&l.period) {
                    Some(q) => q,
                    None => continue,
                },
            };
            let Some(&p) = index.get(&l.payee_partner_id) else {
                continue;
            };
            let amt = dec(l.amount);
            if Some(q) == partial_q {
                partial_accrual[p] += amt;
            } else if q >= first_q && q <= last_complete {
                let ti = (q - first_q) as usize;
                if l.role == CommissionRole::Spiff {
                    spiff[p][ti] += amt;
                } else {
                    accrual[p][ti] += amt;
                }
            }
        }

        // The registered pipeline on the eve of each quarter t = 1..=n.
        let eve = |t: usize| qbounds(first_q + t as i32, fy).0.pred_opt();
        let mut first_close: HashMap<&str, NaiveDate> = HashMap::new();
        for t in &ds.transactions {
            if t.kind != TransactionKind::Sale || t.closed_on > as_of {
                continue;
            }
            if let Some(r) = t.registration_id.as_deref() {
                let e = first_close.entry(r).or_insert(t.closed_on);
                *e = (*e).min(t.closed_on);
            }
        }
        let parent: Vec<Option<usize>> = ds
            .partners
            .iter()
            .map(|p| {
                p.parent_partner_id
                    .as_ref()
                    .and_then(|id| index.get(id).copied())
            })
            .collect();
        let mut pipe_own = vec![vec![0.0; n + 1]; np];
        let mut pipe_child = vec![vec![0.0; n + 1]; np];
        // Registration -> the quarter t whose eve it was open on and in which it closed.
        let mut foretold: HashMap<&str, usize> = HashMap::new();
        for r in &ds.registrations {
            if r.status == RegistrationStatus::Rejected || r.registered_on > as_of {
                continue;
            }
            let Some(&p) = index.get(&r.partner_id) else {
                continue;
            };
            let closed_on = first_close.get(r.registration_id.as_str()).copied();
            let amount = dec(r.expected_amount);
            for t in 1..=n {
                let Some(cut) = eve(t) else { continue };
                let open = r.registered_on <= cut
                    && r.expires_on > cut
                    && closed_on.is_none_or(|d| d > cut);
                if !open {
                    continue;
                }
                pipe_own[p][t] += amount;
                if let Some(d) = parent[p] {
                    pipe_child[d][t] += amount;
                }
                if t < n && closed_on.is_some_and(|d| qidx(d, fy) == first_q + t as i32) {
                    foretold.insert(r.registration_id.as_str(), t);
                }
            }
        }
        let mut pipe_bookings = vec![vec![0.0; n]; np];
        let mut pipe_tx: HashMap<&str, usize> = HashMap::new();
        for t in &ds.transactions {
            if t.kind != TransactionKind::Sale || t.closed_on > as_of {
                continue;
            }
            let (Some(r), Some(&p)) = (t.registration_id.as_deref(), index.get(&t.partner_id))
            else {
                continue;
            };
            let Some(&ti) = foretold.get(r) else { continue };
            if qidx(t.closed_on, fy) == first_q + ti as i32 {
                pipe_bookings[p][ti] += dec(t.amount);
                pipe_tx.insert(t.transaction_id.as_str(), ti);
            }
        }
        let mut pipe_accrual_own = vec![vec![0.0; n]; np];
        let mut pipe_accrual_child = vec![vec![0.0; n]; np];
        for l in lines {
            if l.role == CommissionRole::Spiff {
                continue;
            }
            let (Some(&ti), Some(&p)) = (
                pipe_tx.get(l.transaction_id.as_str()),
                index.get(&l.payee_partner_id),
            ) else {
                continue;
            };
            if l.role == CommissionRole::Override {
                pipe_accrual_child[p][ti] += dec(l.amount);
            } else {
                pipe_accrual_own[p][ti] += dec(l.amount);
            }
        }

        let tiers = tier_on(ds, as_of);
        let start = ds
            .partners
            .iter()
            .map(|p| {
                let (qs, _) = qbounds(qidx(p.joined_on, fy), fy);
                let jq = qidx(p.joined_on, fy) + i32::from(p.joined_on > qs);
                (jq - first_q).clamp(0, n as i32) as usize
            })
            .collect();

        // Shape: average over quarters of the cumulative share by day.
        let mut shape = vec![0.0; 92];
        let mut used = 0.0;
        for qa in &day_amounts {
            let tot: f64 = qa.iter().sum();
            if tot <= 0.0 {
                continue;
            }
            used += 1.0;
            let mut c = 0.0;
            for (d, a) in qa.iter().enumerate() {
                c += a / tot;
                shape[d] += c;
            }
        }
        if used > 0.0 {
            shape.iter_mut().for_each(|s| *s /= used);
        } else {
            // No history: bookings spread evenly over the quarter.
            for (d, s) in shape.iter_mut().enumerate() {
                *s = ((d + 1) as f64 / 91.0).min(1.0);
            }
        }

        Panel {
            fy_start: fy,
            as_of,
            first_q,
            n,
            partial_q,
            tier: partners.iter().map(|p| tiers.get(p).cloned()).collect(),
            region: ds.partners.iter().map(|p| p.region.clone()).collect(),
            partners,
            index,
            bookings,
            accrual,
            spiff,
            partial_bookings,
            partial_accrual,
            start,
            shape,
            pipe_own,
            pipe_child,
            pipe_bookings,
            pipe_accrual_own,
            pipe_accrual_child,
        }
    }

    /// Share of a quarter's bookings typically done from day offset `a` to `b` inclusive.
    pub fn share_between(&self, a: i64, b: i64) -> f64 {
        if b < a {
            return 0.0;
        }
        let at = |d: i64| -> f64 {
            if d < 0 {
                0.0
            } else {
                self.shape[(d as usize).min(self.shape.len() - 1)]
            }
        };
        (at(b) - at(a - 1)).clamp(0.0, 1.0)
    }

    /// Sum of a per-partner series over a set of partners.
    pub fn sum(&self, series: &[Vec<f64>], members: &[usize]) -> Vec<f64> {
        let mut out = vec![0.0; self.n];
        for &p in members {
            for (o, v) in out.iter_mut().zip(&series[p]) {
                *o += v;
            }
        }
        out
    }

    /// Partners of each current tier, in tier-rank order.
    pub fn tier_members(&self, ds: &Dataset) -> Vec<(String, Vec<usize>)> {
        let mut tiers: Vec<_> = ds.tiers.iter().collect();
        tiers.sort_by_key(|t| t.rank);
        tiers
            .into_iter()
            .map(|t| {
                let m = (0..self.partners.len())
                    .filter(|&p| self.tier[p].as_deref() == Some(t.tier_id.as_str()))
                    .collect();
                (t.tier_id.clone(), m)
            })
            .collect()
    }
}

/// Monthly actuals per partner: (partner index, "YYYY-MM") -> (bookings, accrual).
pub(crate) fn monthly(
    ds: &Dataset,
    lines: &[CommissionLine],
    index: &HashMap<String, usize>,
) -> BTreeMap<(String, usize), (f64, f64)> {
    let as_of = ds.program.as_of;
    let mut out: BTreeMap<(String, usize), (f64, f64)> = BTreeMap::new();
    let mut closed: HashMap<&str, NaiveDate> = HashMap::new();
    let ym = |d: NaiveDate| format!("{:04}-{:02}", d.year(), d.month());
    for t in &ds.transactions {
        closed.insert(t.transaction_id.as_str(), t.closed_on);
        if t.closed_on > as_of || t.kind != TransactionKind::Sale {
            continue;
        }
        if let Some(&p) = index.get(&t.partner_id) {
            out.entry((ym(t.closed_on), p)).or_default().0 += dec(t.amount);
        }
    }
    for l in lines {
        let Some(&d) = closed.get(l.transaction_id.as_str()) else {
            continue;
        };
        if d > as_of {
            continue;
        }
        if let Some(&p) = index.get(&l.payee_partner_id) {
            out.entry((ym(d), p)).or_default().1 += dec(l.amount);
        }
    }
    out
}
