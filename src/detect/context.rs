//! Baselines every detector reads: lookups of the program's entities and robust
//! statistics learned from the history (sales submitted before the review window).

use chrono::{Datelike, NaiveDate};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;

use super::names::normalise_customer;
use crate::fxhash::FxMap;
use crate::model::*;

/// Per-transaction figures the pairwise detectors (duplicates, splits) compare, computed
/// once: the Decimal -> f64 conversions and the customer-name normalisation.
#[derive(Debug, Clone, Copy, Default)]
pub struct Feat {
    pub amount: f64,
    pub net: f64,
    /// Close date as days from the common era.
    pub day: i32,
    /// Index of the normalised customer name in [`Names::norm`].
    pub name: u32,
}

/// Interned customer names: each distinct normalised name once, with its form without
/// spaces (what the similarity compares) and a character histogram for a cheap lower
/// bound on the edit distance.
#[derive(Debug, Default)]
pub struct Names {
    /// Normalised names (`normalise_customer`).
    pub norm: Vec<String>,
    /// norm id -> index in `nospace`.
    pub nospace_of: Vec<u32>,
    pub nospace: Vec<NoSpace>,
}

/// A normalised name without whitespace.
#[derive(Debug)]
pub struct NoSpace {
    pub s: String,
    pub chars: u32,
    pub hist: [u32; HIST],
}

pub const HIST: usize = 64;

impl NoSpace {
    fn new(s: String) -> NoSpace {
        let mut hist = [0u32; HIST];
        let mut chars = 0u32;
        for c in s.chars() {
            hist[(c as usize) % HIST] += 1;
            chars += 1;
        }
        NoSpace { s, chars, hist }
    }
}

impl Names {
    /// Interns every transaction's customer name; returns the norm id per transaction.
    fn build(ds: &Dataset) -> (Names, Vec<u32>) {
        let mut names = Names::default();
        let mut raw: FxMap<&str, u32> = FxMap::default();
        let mut norm_ids: FxMap<String, u32> = FxMap::default();
        let mut nospace_ids: FxMap<String, u32> = FxMap::default();
        let mut ids = Vec::with_capacity(ds.transactions.len());
        for t in &ds.transactions {
            let id = match raw.get(t.customer_name.as_str()) {
                Some(&id) => id,
                None => {
                    let n = normalise_customer(&t.customer_name);
                    let id = match norm_ids.get(&n) {
                        Some(&id) => id,
                        None => {
                            let id = names.norm.len() as u32;
                            let ns: String = n.chars().filter(|c| !c.is_whitespace()).collect();
                            let nsid = match nospace_ids.get(&ns) {
                                Some(&x) => x,
                                None => {
                                    let x = names.nospace.len() as u32;
                                    nospace_ids.insert(ns.clone(), x);
                                    names.nospace.push(NoSpace::new(ns));
                                    x
                                }
                            };
                            norm_ids.insert(n.clone(), id);
                            names.norm.push(n);
                            names.nospace_of.push(nsid);
                            id
                        }
                    };
                    raw.insert(t.customer_name.as_str(), id);
                    id
                }
            };
            ids.push(id);
        }
        (names, ids)
    }

    /// [`super::names::name_similarity`] of two interned names, or `None` when it is
    /// certainly below `at_least` (the histogram bound on the edit distance says so).
    /// Gives exactly the value `name_similarity` gives on the two normalised names.
    pub fn similarity(&self, a: u32, b: u32, at_least: f64) -> Option<f64> {
        if a == b {
            return Some(1.0);
        }
        let (x, y) = (
            self.nospace_of[a as usize] as usize,
            self.nospace_of[b as usize] as usize,
        );
        if x == y {
            return Some(1.0);
        }
        let (na, nb) = (&self.nospace[x], &self.nospace[y]);
        let m = na.chars.max(nb.chars);
        if m == 0 {
            return Some(1.0);
        }
        // Each edit fixes at most one surplus character on either side.
        let (mut ab, mut ba) = (0u32, 0u32);
        for k in 0..HIST {
            let (p, q) = (na.hist[k], nb.hist[k]);
            if p > q {
                ab += p - q;
            } else {
                ba += q - p;
            }
        }
        let lb = ab.max(ba);
        if 1.0 - (lb as f64) / (m as f64) < at_least {
            return None;
        }
        let sim = strsim::normalized_damerau_levenshtein(&na.s, &nb.s);
        (sim >= at_least).then_some(sim)
    }
}

/// Robust statistics of the log deal size of one group of sales.
#[derive(Debug, Clone, Default)]
pub struct SizeStats {
    /// Sorted natural logs of the amounts.
    pub logs: Vec<f64>,
    pub median: f64,
    /// Median absolute deviation of the logs (unscaled).
    pub mad: f64,
    pub max: f64,
}

impl SizeStats {
    fn from_logs(mut logs: Vec<f64>) -> SizeStats {
        logs.sort_by(|a, b| a.total_cmp(b));
        let median = quantile_sorted(&logs, 0.5);
        let mut dev: Vec<f64> = logs.iter().map(|x| (x - median).abs()).collect();
        dev.sort_by(|a, b| a.total_cmp(b));
        let mad = quantile_sorted(&dev, 0.5);
        let max = logs.last().copied().unwrap_or(0.0);
        SizeStats {
            logs,
            median,
            mad,
            max,
        }
    }

    pub fn n(&self) -> usize {
        self.logs.len()
    }

    /// Share of the group strictly below `x` (0..=1).
    pub fn percentile(&self, x: f64) -> f64 {
        if self.logs.is_empty() {
            return 0.0;
        }
        let below = self.logs.partition_point(|v| *v < x);
        below as f64 / self.logs.len() as f64
    }

    pub fn quantile(&self, q: f64) -> f64 {
        quantile_sorted(&self.logs, q)
    }
}

/// Linear-interpolated quantile of a sorted slice (0 when empty).
pub fn quantile_sorted(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let pos = q.clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let frac = pos - lo as f64;
    v[lo] + (v[hi] - v[lo]) * frac
}

/// Per-partner baselines.
#[derive(Debug, Clone, Default)]
pub struct PartnerBase {
    pub size: SizeStats,
    /// 90th percentile of the partner's submission lag in days.
    pub lag_q90: f64,
    pub lag_n: usize,
}

/// Everything the detectors look up, built once per data set.
pub struct Ctx<'a> {
    pub ds: &'a Dataset,
    pub window_start: NaiveDate,
    pub products: FxMap<&'a str, &'a Product>,
    pub partners: FxMap<&'a str, &'a Partner>,
    pub tier_history: FxMap<&'a str, Vec<(NaiveDate, &'a str)>>,
    pub tier_names: FxMap<&'a str, &'a str>,
    pub policy: FxMap<(&'a str, &'a str), Decimal>,
    pub registrations: FxMap<&'a str, &'a Registration>,
    /// Sum of the PRM's commission lines per transaction (same index as `ds.transactions`;
    /// transactions sharing an id share the sum).
    pub accrued: Vec<Decimal>,
    pub partner_base: FxMap<&'a str, PartnerBase>,
    pub tier_size: FxMap<&'a str, SizeStats>,
    /// Submission lag (days from close to submission) quantiles over all history.
    pub lag_q99: f64,
    pub lag_q995: f64,
    /// Per-transaction figures (same index as `ds.transactions`).
    pub feat: Vec<Feat>,
    /// Interned normalised customer names (`feat[i].name` indexes them).
    pub names: Names,
    /// Transaction indices in output order (by transaction id, ties by index).
    pub order: Vec<u32>,
    pub currency: &'a str,
    /// The deal size above which (nearly) every sale cites a deal registration, when the
    /// history shows such a rule: splitting a deal keeps each piece under it.
    pub registration_threshold: Option<f64>,
}

pub fn lag_days(t: &Transaction) -> i64 {
    (t.submitted_at.date_naive() - t.closed_on).num_days()
}

pub fn to_f64(d: Decimal) -> f64 {
    d.to_f64().unwrap_or(0.0)
}

impl<'a> Ctx<'a> {
    pub fn build(ds: &'a Dataset) -> Ctx<'a> {
        let window_start = ds.program.review_window.start;
        let products = ds.products.iter().map(|p| (p.sku.as_str(), p)).collect();
        let partners = ds
            .partners
            .iter()
            .map(|p| (p.partner_id.as_str(), p))
            .collect();
        let mut tier_history: FxMap<&str, Vec<(NaiveDate, &str)>> = FxMap::default();
        for h in &ds.tier_history {
            tier_history
                .entry(h.partner_id.as_str())
                .or_default()
                .push((h.effective_from, h.tier_id.as_str()));
        }
        for v in tier_history.values_mut() {
            v.sort();
        }
        let tier_names = ds
            .tiers
            .iter()
            .map(|t| (t.tier_id.as_str(), t.name.as_str()))
            .collect();
        let policy = ds
            .discount_policy
            .iter()
            .map(|p| ((p.tier_id.as_str(), p.family.as_str()), p.max_discount_pct))
            .collect();
        // Independent lookups built side by side on two threads (same result either way).
        let side = || {
            let mut registrations: FxMap<&'a str, &'a Registration> = FxMap::default();
            registrations.reserve(ds.registrations.len());
            for r in &ds.registrations {
                registrations.insert(r.registration_id.as_str(), r);
            }
            (registrations, order_and_accrued(ds))
        };
        let main = || {
            let (names, name_ids) = Names::build(ds);
            let feat: Vec<Feat> = ds
                .transactions
                .iter()
                .zip(name_ids)
                .map(|(t, name)| Feat {
                    amount: to_f64(t.amount),
                    net: to_f64(t.unit_net_price),
                    day: t.closed_on.num_days_from_ce(),
                    name,
                })
                .collect();
            (names, feat)
        };
        let ((registrations, (order, accrued)), (names, feat)) = std::thread::scope(|s| {
            let h = s.spawn(side);
            let m = main();
            match h.join() {
                Ok(r) => (r, m),
                Err(e) => std::panic::resume_unwind(e),
            }
        });
        let mut ctx = Ctx {
            ds,
            window_start,
            products,
            partners,
            tier_history,
            tier_names,
            policy,
            registrations,
            accrued,
            partner_base: FxMap::default(),
            tier_size: FxMap::default(),
            lag_q99: 0.0,
            lag_q995: 0.0,
            feat,
            names,
            order,
            currency: ds.program.currency.as_str(),
            registration_threshold: None,
        };
        ctx.learn_history();
        ctx
    }

    /// True when the transaction is history (submitted before the review window).
    pub fn is_history(&self, t: &Transaction) -> bool {
        t.submitted_at.date_naive() < self.window_start
    }

    fn learn_history(&mut self) {
        let ds = self.ds;
        let mut p_logs: FxMap<&str, Vec<f64>> = FxMap::default();
        let mut p_lags: FxMap<&str, Vec<f64>> = FxMap::default();
        let mut t_logs: FxMap<&str, Vec<f64>> = FxMap::default();
        let mut lags: Vec<f64> = Vec::new();
        // Learn from the sales before the review window; with no history before the
        // window, from every sale (still better than nothing).
        let any_history = ds
            .transactions
            .iter()
            .any(|t| t.kind == TransactionKind::Sale && self.is_history(t));
        for (t, f) in ds.transactions.iter().zip(&self.feat) {
            if t.kind != TransactionKind::Sale || (any_history && !self.is_history(t)) {
                continue;
            }
            let amt = f.amount;
            let lag = lag_days(t).max(0) as f64;
            lags.push(lag);
            p_lags.entry(t.partner_id.as_str()).or_default().push(lag);
            if amt > 0.0 {
                let l = amt.ln();
                p_logs.entry(t.partner_id.as_str()).or_default().push(l);
                if let Some(tier) = self.tier_on(&t.partner_id, t.closed_on) {
                    t_logs.entry(tier).or_default().push(l);
                }
            }
        }
        self.registration_threshold = registration_threshold(
            ds.transactions
                .iter()
                .zip(&self.feat)
                .filter(|(t, _)| {
                    t.kind == TransactionKind::Sale && (!any_history || self.is_history(t))
                })
                .map(|(t, f)| (f.amount, t.registration_id.is_some())),
        );
        lags.sort_by(|a, b| a.total_cmp(b));
        self.lag_q99 = quantile_sorted(&lags, 0.99);
        self.lag_q995 = quantile_sorted(&lags, 0.995);
        for (p, logs) in p_logs {
            let mut lg = p_lags.remove(p).unwrap_or_default();
            lg.sort_by(|a, b| a.total_cmp(b));
            self.partner_base.insert(
                p,
                PartnerBase {
                    size: SizeStats::from_logs(logs),
                    lag_q90: quantile_sorted(&lg, 0.9),
                    lag_n: lg.len(),
                },
            );
        }
        for (p, mut lg) in p_lags {
            lg.sort_by(|a, b| a.total_cmp(b));
            self.partner_base.insert(
                p,
                PartnerBase {
                    size: SizeStats::default(),
                    lag_q90: quantile_sorted(&lg, 0.9),
                    lag_n: lg.len(),
                },
            );
        }
        for (tier, logs) in t_logs {
            self.tier_size.insert(tier, SizeStats::from_logs(logs));
        }
    }

    /// The partner's tier on a day: the row with the latest `effective_from` <= day.
    pub fn tier_on(&self, partner_id: &str, day: NaiveDate) -> Option<&'a str> {
        let h = self.tier_history.get(partner_id)?;
        let i = h.partition_point(|(d, _)| *d <= day);
        if i == 0 {
            None
        } else {
            Some(h[i - 1].1)
        }
    }

    pub fn tier_name(&self, tier_id: &str) -> String {
        self.tier_names
            .get(tier_id)
            .map(|s| s.to_string())
            .unwrap_or_else(|| tier_id.to_string())
    }

    pub fn money(&self, d: Decimal) -> String {
        crate::money::format_money(d, self.currency)
    }

    pub fn money_f(&self, x: f64) -> String {
        let d = Decimal::from_f64_retain(x)
            .map(|d| d.round_dp(0))
            .unwrap_or_default();
        crate::money::format_money(d, self.currency)
            .trim_end_matches(".00")
            .to_string()
    }

    /// The PRM's accrued commission of transaction `i` (index in `ds.transactions`).
    pub fn accrued_at(&self, i: usize) -> Decimal {
        self.accrued.get(i).copied().unwrap_or_default()
    }

    /// The normalised customer name of transaction `i`.
    pub fn norm_customer(&self, i: usize) -> &str {
        &self.names.norm[self.feat[i].name as usize]
    }
}

/// The output order (indices sorted by transaction id, stable) and the accrued
/// commission per transaction. Commission lines usually come grouped in transaction
/// order, so a moving cursor finds most of them without hashing.
fn order_and_accrued(ds: &Dataset) -> (Vec<u32>, Vec<Decimal>) {
    let tx = &ds.transactions;
    let n = tx.len();
    let mut order: Vec<u32> = (0..n as u32).collect();
    let strictly_sorted = tx
        .windows(2)
        .all(|w| w[0].transaction_id < w[1].transaction_id);
    if !strictly_sorted {
        order.sort_by(|&a, &b| {
            tx[a as usize]
                .transaction_id
                .cmp(&tx[b as usize].transaction_id)
        });
    }
    // Sum per transaction index; transactions sharing an id are pooled below.
    let mut sums: Vec<Decimal> = vec![Decimal::ZERO; n];
    let mut by_id: Option<FxMap<&str, u32>> = None;
    let mut cursor = 0usize;
    for c in &ds.commissions {
        let id = c.transaction_id.as_str();
        let hit = if cursor < n && tx[cursor].transaction_id == id {
            Some(cursor)
        } else if cursor + 1 < n && tx[cursor + 1].transaction_id == id {
            Some(cursor + 1)
        } else {
            let map = by_id.get_or_insert_with(|| {
                let mut m: FxMap<&str, u32> = FxMap::default();
                m.reserve(n);
                for &i in &order {
                    m.entry(tx[i as usize].transaction_id.as_str()).or_insert(i);
                }
                m
            });
            map.get(id).map(|&i| i as usize)
        };
        if let Some(i) = hit {
            sums[i] += c.amount;
            cursor = i;
        }
    }
    if !strictly_sorted {
        // Transactions sharing an id share their sum.
        let mut k = 0;
        while k < n {
            let mut e = k + 1;
            let id = &tx[order[k] as usize].transaction_id;
            while e < n && tx[order[e] as usize].transaction_id == *id {
                e += 1;
            }
            if e - k > 1 {
                let total: Decimal = order[k..e].iter().map(|&i| sums[i as usize]).sum();
                for &i in &order[k..e] {
                    sums[i as usize] = total;
                }
            }
            k = e;
        }
    }
    (order, sums)
}

/// Finds the deal size where registration becomes (nearly) universal: the smallest
/// amount A such that at least 95% of the sales in [A, 1.2A) and 97% of all sales at or
/// above A cite a registration (with enough sales to tell), while most smaller sales do not.
pub fn registration_threshold(sales: impl Iterator<Item = (f64, bool)>) -> Option<f64> {
    let mut v: Vec<(f64, bool)> = sales.filter(|(a, _)| *a > 0.0).collect();
    if v.len() < 100 {
        return None;
    }
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    let n = v.len();
    // prefix[i] = registered among v[..i]
    let mut prefix = vec![0usize; n + 1];
    for (i, (_, r)) in v.iter().enumerate() {
        prefix[i + 1] = prefix[i] + usize::from(*r);
    }
    let mut hi = 0usize;
    for lo in 0..n {
        let a = v[lo].0;
        if hi < lo {
            hi = lo;
        }
        while hi < n && v[hi].0 < a * 1.2 {
            hi += 1;
        }
        let win = hi - lo;
        let above = n - lo;
        if win < 20 || above < 30 {
            continue;
        }
        let win_share = (prefix[hi] - prefix[lo]) as f64 / win as f64;
        let above_share = (prefix[n] - prefix[lo]) as f64 / above as f64;
        let below_share = if lo > 0 {
            prefix[lo] as f64 / lo as f64
        } else {
            1.0
        };
        if win_share >= 0.95 && above_share >= 0.97 && below_share <= 0.6 && lo >= 30 {
            return Some(a);
        }
    }
    None
}
