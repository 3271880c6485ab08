//! Baselines every detector reads: lookups of the program's entities and robust
//! statistics learned from the history (sales submitted before the review window).

use std::collections::HashMap;

use chrono::NaiveDate;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;

use super::names::normalise_customer;
use crate::model::*;

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
    pub products: HashMap<&'a str, &'a Product>,
    pub partners: HashMap<&'a str, &'a Partner>,
    pub tier_history: HashMap<&'a str, Vec<(NaiveDate, &'a str)>>,
    pub tier_names: HashMap<&'a str, &'a str>,
    pub policy: HashMap<(&'a str, &'a str), Decimal>,
    pub registrations: HashMap<&'a str, &'a Registration>,
    /// Sum of the PRM's commission lines per transaction.
    pub accrued: HashMap<&'a str, Decimal>,
    pub partner_base: HashMap<&'a str, PartnerBase>,
    pub tier_size: HashMap<&'a str, SizeStats>,
    /// Submission lag (days from close to submission) quantiles over all history.
    pub lag_q99: f64,
    pub lag_q995: f64,
    /// Normalised customer name of every transaction (same index as `ds.transactions`).
    pub norm_customer: Vec<String>,
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
        let mut tier_history: HashMap<&str, Vec<(NaiveDate, &str)>> = HashMap::new();
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
        let registrations = ds
            .registrations
            .iter()
            .map(|r| (r.registration_id.as_str(), r))
            .collect();
        let mut accrued: HashMap<&str, Decimal> = HashMap::new();
        for c in &ds.commissions {
            *accrued.entry(c.transaction_id.as_str()).or_default() += c.amount;
        }
        let norm_customer = ds
            .transactions
            .iter()
            .map(|t| normalise_customer(&t.customer_name))
            .collect();

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
            partner_base: HashMap::new(),
            tier_size: HashMap::new(),
            lag_q99: 0.0,
            lag_q995: 0.0,
            norm_customer,
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
        let mut p_logs: HashMap<&str, Vec<f64>> = HashMap::new();
        let mut p_lags: HashMap<&str, Vec<f64>> = HashMap::new();
        let mut t_logs: HashMap<&str, Vec<f64>> = HashMap::new();
        let mut lags: Vec<f64> = Vec::new();
        let mut any_history = false;
        for t in &ds.transactions {
            if t.kind != TransactionKind::Sale || !self.is_history(t) {
                continue;
            }
            any_history = true;
            let amt = to_f64(t.amount);
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
        if !any_history {
            // No history before the window: learn from everything (still better than nothing).
            for t in &ds.transactions {
                if t.kind != TransactionKind::Sale {
                    continue;
                }
                let amt = to_f64(t.amount);
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
        }
        self.registration_threshold = registration_threshold(
            ds.transactions
                .iter()
                .filter(|t| t.kind == TransactionKind::Sale && (!any_history || self.is_history(t)))
                .map(|t| (to_f64(t.amount), t.registration_id.is_some())),
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

    pub fn accrued_for(&self, transaction_id: &str) -> Decimal {
        self.accrued
            .get(transaction_id)
            .copied()
            .unwrap_or_default()
    }
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
