//! Detectors of a partner's pattern over many sales, each judged against the partner's
//! own history and the program's (learned from the sales submitted before the review
//! window):
//!
//! - `period_end_cluster`: sales bunched into the last days of a fiscal quarter far
//!   beyond the share of a quarter's sales the partner and the program usually book
//!   there (channel stuffing). Each sale of the cluster is flagged.
//! - `volume_spike`: a month in which the partner books far more than its share of the
//!   program's volume that month (which carries the program's seasonality and growth)
//!   and than the same month a year earlier. Each sale of the month is flagged.
//! - `product_mix`: a sale in a product family the partner has (nearly) never sold, in a
//!   quantity high for its tier and that family, and large for the partner.
//!
//! Only sales outside the history are flagged: the history is what they are judged by.
//! The tests are counts against expectations (Poisson and binomial tails), so the same
//! evidence counts the same at any program size.

use chrono::{Datelike, NaiveDate};
use serde_json::json;

use super::context::{quantile_sorted, Ctx};
use super::Hit;
use crate::fxhash::FxMap;
use crate::model::*;

/// The quarter-end windows tried (days before and including the quarter's last day).
const END_DAYS: [i64; 4] = [2, 3, 5, 7];
/// Weight (in sales) of the program's quarter-end share in a partner's expected share.
const PRIOR_SALES: f64 = 30.0;
/// A cluster or a spike is reported when its tail probability (corrected for the
/// windows tried) is below this. Back-tested on the history of five programs (two
/// samples, three generated): one to three partner-quarters in a thousand, and about
/// two partner-months in a thousand, reach it by chance.
const CLUSTER_P: f64 = 4e-3;
/// A cluster is at least this many sales.
const MIN_CLUSTER: usize = 5;
const SPIKE_P: f64 = 2e-3;
/// A month's weight in a partner's share of the program halves every this many months
/// back from the review window.
const HALF_LIFE_MONTHS: f64 = 6.0;

/// Hits per transaction index.
pub type Hits = FxMap<usize, Vec<Hit>>;

pub fn detect(ctx: &Ctx) -> Hits {
    let mut out = Hits::default();
    let lf = LnFact::new(ctx.ds.transactions.len() + 2);
    period_end(ctx, &lf, &mut out);
    volume(ctx, &lf, &mut out);
    product_mix(ctx, &mut out);
    out
}

/// ln(k!) for k up to a bound (beyond it, Stirling).
struct LnFact(Vec<f64>);

impl LnFact {
    fn new(n: usize) -> LnFact {
        let mut v = Vec::with_capacity(n + 1);
        v.push(0.0);
        for i in 1..=n {
            let last = v[i - 1];
            v.push(last + (i as f64).ln());
        }
        LnFact(v)
    }

    fn get(&self, k: usize) -> f64 {
        match self.0.get(k) {
            Some(x) => *x,
            None => {
                let k = k as f64;
                k * k.ln() - k + 0.5 * (2.0 * std::f64::consts::PI * k).ln()
            }
        }
    }

    /// P(X >= k) for X ~ Poisson(lambda).
    fn poisson_sf(&self, k: usize, lambda: f64) -> f64 {
        if k == 0 {
            return 1.0;
        }
        if lambda <= 0.0 {
            return 0.0;
        }
        let ln_l = lambda.ln();
        let mut sum = 0.0;
        for j in k..k + 400 {
            let term = (-lambda + j as f64 * ln_l - self.get(j)).exp();
            sum += term;
            if j as f64 > lambda && term < sum * 1e-12 {
                break;
            }
        }
        sum.min(1.0)
    }
}

fn sales<'a>(ctx: &'a Ctx) -> impl Iterator<Item = (usize, &'a Transaction)> + 'a {
    ctx.ds
        .transactions
        .iter()
        .enumerate()
        .filter(|(_, t)| t.kind == TransactionKind::Sale)
}

fn pct(x: f64) -> String {
    match x * 100.0 {
        v if v < 10.0 => format!("{v:.1}%"),
        v => format!("{v:.0}%"),
    }
}

// ---- period_end_cluster ----

fn period_end(ctx: &Ctx, lf: &LnFact, out: &mut Hits) {
    let fy = ctx.ds.program.fiscal_year_start_month;
    // Days from each sale's close to the last day of its fiscal quarter.
    let quarter_of = |d: NaiveDate| -> ((i32, u32), i64) {
        let (y, q) = fiscal_year_quarter(d, fy);
        let (_, end) = fiscal_quarter_bounds(y, q, fy);
        ((y, q), (end - d).num_days())
    };
    let mut prog_n = 0usize;
    let mut prog_k = [0usize; END_DAYS.len()];
    let mut hist_n: FxMap<&str, usize> = FxMap::default();
    let mut hist_k: FxMap<&str, [usize; END_DAYS.len()]> = FxMap::default();
    /// (partner, (fiscal year, quarter)) -> (transaction index, days to quarter end).
    type Key<'a> = (&'a str, (i32, u32));
    type Quarter<'a> = (Key<'a>, Vec<(usize, i64)>);
    let mut quarters: FxMap<Key<'_>, Vec<(usize, i64)>> = FxMap::default();
    let mut all_history: FxMap<(&str, (i32, u32)), bool> = FxMap::default();
    for (i, t) in sales(ctx) {
        let (q, left) = quarter_of(t.closed_on);
        let p = t.partner_id.as_str();
        quarters.entry((p, q)).or_default().push((i, left));
        let h = ctx.is_history(t);
        *all_history.entry((p, q)).or_insert(true) &= h;
        if h {
            prog_n += 1;
            *hist_n.entry(p).or_default() += 1;
            let k = hist_k.entry(p).or_default();
            for (d, &days) in END_DAYS.iter().enumerate() {
                if left < days {
                    prog_k[d] += 1;
                    k[d] += 1;
                }
            }
        }
    }
    if prog_n == 0 {
        return;
    }
    // The partner's usual quarter: the median count of its quarters wholly in history.
    let mut sizes: FxMap<&str, Vec<f64>> = FxMap::default();
    for ((p, q), v) in &quarters {
        if all_history.get(&(*p, *q)).copied().unwrap_or(false) {
            sizes.entry(p).or_default().push(v.len() as f64);
        }
    }
    for v in sizes.values_mut() {
        v.sort_by(|a, b| a.total_cmp(b));
    }
    let mut list: Vec<Quarter<'_>> = quarters.into_iter().collect();
    list.sort_by(|a, b| a.0.cmp(&b.0));
    for ((p, q), v) in list {
        if all_history.get(&(p, q)).copied().unwrap_or(true) {
            continue;
        }
        let Some(usual) = sizes.get(p).filter(|s| s.len() >= 2) else {
            continue;
        };
        let typical = quantile_sorted(usual, 0.5);
        let n = v.len();
        let (hn, hk) = (
            hist_n.get(p).copied().unwrap_or(0) as f64,
            hist_k.get(p).copied().unwrap_or_default(),
        );
        let mut best: Option<(f64, usize, usize, f64, f64)> = None;
        for (d, &days) in END_DAYS.iter().enumerate() {
            let k = v.iter().filter(|(_, left)| *left < days).count();
            let prog_share = prog_k[d] as f64 / prog_n as f64;
            // The partner's own share, drawn towards the program's; never below the
            // program's (a partner that happened to book less at quarter ends is not
            // held to a stricter standard than the program's normal rush).
            let share =
                ((hk[d] as f64 + PRIOR_SALES * prog_share) / (hn + PRIOR_SALES)).max(prog_share);
            let expected = share * typical.max((n - k) as f64);
            let pv = (lf.poisson_sf(k, expected) * END_DAYS.len() as f64).min(1.0);
            if best.is_none_or(|b| pv < b.0) {
                best = Some((pv, d, k, expected, share));
            }
        }
        let Some((pv, d, k, expected, share)) = best else {
            continue;
        };
        if pv >= CLUSTER_P || k < MIN_CLUSTER || (k as f64) < 3.0 * expected {
            continue;
        }
        let days = END_DAYS[d];
        let quarter = format!("{}-Q{}", q.0, q.1);
        let prog_share = prog_k[d] as f64 / prog_n as f64;
        for &(i, left) in &v {
            let t = &ctx.ds.transactions[i];
            if left >= days || ctx.is_history(t) {
                continue;
            }
            out.entry(i).or_default().push(Hit {
                kind: AnomalyKind::PeriodEndCluster,
                p: strength(pv, CLUSTER_P),
                confidence: 0.8,
                reason: format!(
                    "Partner {p} booked {k} of its {n} sales of {quarter} in the quarter's last {days} days, against {expected:.1} expected (its usual share there is {}, the program's {})",
                    pct(share),
                    pct(prog_share)
                ),
                evidence: json!({
                    "quarter": quarter,
                    "last_days": days,
                    "in_last_days": k,
                    "quarter_sales": n,
                    "expected": super::round4(expected),
                    "partner_share": super::round4(share),
                    "program_share": super::round4(prog_share),
                    "p_value": pv,
                }),
            });
        }
    }
}

/// A hit's strength from its tail probability: just past the threshold 0.6, rising
/// towards 0.9 as the evidence grows. A pattern over many sales says less about each
/// one of them than a finding on the sale itself, so these rank below those.
fn strength(pv: f64, threshold: f64) -> f64 {
    let extra = (threshold / pv.max(1e-300)).log10().max(0.0);
    (0.6 + 0.05 * extra).min(0.9)
}

// ---- volume_spike ----

fn month(d: NaiveDate) -> (i32, u32) {
    (d.year(), d.month())
}

fn volume(ctx: &Ctx, lf: &LnFact, out: &mut Hits) {
    let mut prog_count: FxMap<(i32, u32), usize> = FxMap::default();
    let mut prog_amount: FxMap<(i32, u32), f64> = FxMap::default();
    let mut months: FxMap<(&str, (i32, u32)), Vec<usize>> = FxMap::default();
    // The history per month, program-wide and per partner: a partner's share is of the
    // program's volume since it started selling, recent months weighing more (a
    // partner that grew is judged by what it sells now).
    type Month = (i32, u32);
    let mut hist_month: std::collections::BTreeMap<Month, (usize, f64)> = Default::default();
    let mut p_hist: FxMap<&str, std::collections::BTreeMap<Month, (usize, f64)>> = FxMap::default();
    for (i, t) in sales(ctx) {
        let m = month(t.closed_on);
        let amt = ctx.feat[i].amount.max(0.0);
        *prog_count.entry(m).or_default() += 1;
        *prog_amount.entry(m).or_default() += amt;
        months
            .entry((t.partner_id.as_str(), m))
            .or_default()
            .push(i);
        if ctx.is_history(t) {
            let h = hist_month.entry(m).or_default();
            h.0 += 1;
            h.1 += amt;
            let ph = p_hist
                .entry(t.partner_id.as_str())
                .or_default()
                .entry(m)
                .or_default();
            ph.0 += 1;
            ph.1 += amt;
        }
    }
    if hist_month.is_empty() {
        return;
    }
    let start = month(ctx.window_start);
    let weight = |m: Month| {
        let age = (start.0 - m.0) * 12 + start.1 as i32 - m.1 as i32;
        0.5f64.powf(age.max(0) as f64 / HALF_LIFE_MONTHS)
    };
    let mut list: Vec<_> = months.iter().collect();
    list.sort_by(|a, b| a.0.cmp(b.0));
    for (&(p, m), idx) in list {
        if idx.iter().all(|&i| ctx.is_history(&ctx.ds.transactions[i])) {
            continue;
        }
        let Some(ph) = p_hist.get(p) else {
            continue;
        };
        let c: usize = ph.values().map(|h| h.0).sum();
        let Some((&first, _)) = ph.iter().next() else {
            continue;
        };
        let (mut pc, mut pa, mut hc, mut ha) = (0f64, 0f64, 0f64, 0f64);
        for (&hm, h) in hist_month.range(first..) {
            let w = weight(hm);
            hc += w * h.0 as f64;
            ha += w * h.1;
            if let Some(x) = ph.get(&hm) {
                pc += w * x.0 as f64;
                pa += w * x.1;
            }
        }
        if c < 5 || pc <= 0.0 || pc >= hc || pa <= 0.0 || pa >= ha {
            continue;
        }
        let (share, share_a) = (pc / hc, pa / ha);
        let n = idx.len();
        let amount: f64 = idx.iter().map(|&i| ctx.feat[i].amount.max(0.0)).sum();
        let rest = prog_count.get(&m).copied().unwrap_or(0).saturating_sub(n) as f64;
        let rest_a = (prog_amount.get(&m).copied().unwrap_or(0.0) - amount).max(0.0);
        let mut expected = share / (1.0 - share) * rest;
        let expected_a = share_a / (1.0 - share_a) * rest_a;
        // The partner's own season: the same month a year earlier, scaled by the
        // program's growth since.
        let last_year = (m.0 - 1, m.1);
        let mut seasonal = None;
        if let (Some(prev), Some(&prog_prev)) =
            (months.get(&(p, last_year)), prog_count.get(&last_year))
        {
            let total = prog_count.get(&m).copied().unwrap_or(0) as f64;
            let s = prev.len() as f64 * total / prog_prev as f64;
            seasonal = Some(s);
            // One month a year ago is a noisy count: it moves the expectation halfway.
            expected = expected.max((expected + s) / 2.0);
        }
        if expected <= 0.0 || expected_a <= 0.0 {
            continue;
        }
        let pv = lf.poisson_sf(n, expected);
        let (ratio, ratio_a) = (n as f64 / expected, amount / expected_a);
        if pv >= SPIKE_P || n < 5 || ratio < 3.0 || ratio_a < 2.0 {
            continue;
        }
        let label = format!("{}-{:02}", m.0, m.1);
        let season = match seasonal {
            Some(s) => format!(", {s:.1} from the same month a year earlier"),
            None => String::new(),
        };
        for &i in idx {
            if ctx.is_history(&ctx.ds.transactions[i]) {
                continue;
            }
            out.entry(i).or_default().push(Hit {
                kind: AnomalyKind::VolumeSpike,
                p: strength(pv, SPIKE_P),
                confidence: 0.75,
                reason: format!(
                    "Partner {p} booked {n} sales worth {} in {label}, {ratio:.1}x the {expected:.1} its usual {} share of the program's volume gives{season}",
                    ctx.money_f(amount),
                    pct(share)
                ),
                evidence: json!({
                    "month": label,
                    "sales": n,
                    "amount": super::round4(amount),
                    "expected_sales": super::round4(expected),
                    "expected_amount": super::round4(expected_a),
                    "count_ratio": super::round4(ratio),
                    "amount_ratio": super::round4(ratio_a),
                    "p_value": pv,
                }),
            });
        }
    }
}

// ---- product_mix ----

fn product_mix(ctx: &Ctx, out: &mut Hits) {
    let family = |t: &Transaction| ctx.products.get(t.sku.as_str()).map(|p| p.family.as_str());
    let mut p_n: FxMap<&str, usize> = FxMap::default();
    let mut p_f: FxMap<(&str, &str), usize> = FxMap::default();
    let mut t_n: FxMap<&str, usize> = FxMap::default();
    let mut t_f: FxMap<(&str, &str), usize> = FxMap::default();
    let mut t_qty: FxMap<(&str, &str), Vec<f64>> = FxMap::default();
    let mut p_amt: FxMap<&str, Vec<f64>> = FxMap::default();
    for (i, t) in sales(ctx) {
        if !ctx.is_history(t) {
            continue;
        }
        let Some(f) = family(t) else { continue };
        let p = t.partner_id.as_str();
        *p_n.entry(p).or_default() += 1;
        *p_f.entry((p, f)).or_default() += 1;
        p_amt.entry(p).or_default().push(ctx.feat[i].amount);
        if let Some(tier) = ctx.tier_on(p, t.closed_on) {
            *t_n.entry(tier).or_default() += 1;
            *t_f.entry((tier, f)).or_default() += 1;
            t_qty.entry((tier, f)).or_default().push(t.quantity as f64);
        }
    }
    for v in t_qty.values_mut().chain(p_amt.values_mut()) {
        v.sort_by(|a, b| a.total_cmp(b));
    }
    for (i, t) in sales(ctx) {
        // One unit is a question of price, not of mix.
        if ctx.is_history(t) || t.quantity <= 1 {
            continue;
        }
        let Some(f) = family(t) else { continue };
        let p = t.partner_id.as_str();
        let n = p_n.get(p).copied().unwrap_or(0);
        let k = p_f.get(&(p, f)).copied().unwrap_or(0);
        // Never or rarely: at most one earlier sale of the family, and at most 5% of the
        // partner's sales.
        if n < 10 || k > 1 || k as f64 > 0.05 * n as f64 {
            continue;
        }
        let Some(tier) = ctx.tier_on(p, t.closed_on) else {
            continue;
        };
        let tier_share = t_f.get(&(tier, f)).copied().unwrap_or(0) as f64
            / t_n.get(tier).copied().unwrap_or(1).max(1) as f64;
        // How unlikely so few sales of the family are for a partner of this tier (shown
        // in the evidence; a family the tier hardly sells is no mix anomaly).
        let rarity = binom_cdf(k, n, tier_share);
        if tier_share < 0.02 {
            continue;
        }
        let Some(qty) = t_qty.get(&(tier, f)).filter(|q| q.len() >= 10) else {
            continue;
        };
        let q = t.quantity as f64;
        let qty_pct = qty.partition_point(|v| *v < q) as f64 / qty.len() as f64;
        let median = p_amt.get(p).map(|v| quantile_sorted(v, 0.5)).unwrap_or(0.0);
        if median <= 0.0 {
            continue;
        }
        let ratio = ctx.feat[i].amount / median;
        if qty_pct < 0.85 || ratio < 2.0 {
            continue;
        }
        let history = match k {
            0 => "never sold".to_string(),
            _ => "sold once".to_string(),
        };
        out.entry(i).or_default().push(Hit {
            kind: AnomalyKind::ProductMix,
            p: (0.7 + 0.15 * (qty_pct - 0.85) / 0.15 + 0.02 * ratio.min(7.0)).min(0.97),
            confidence: 0.75,
            reason: format!(
                "Partner {p} has {history} {f} in {n} earlier sales (its tier: {} of sales), and this sale of {} units is above {} of the tier's {f} sales and {ratio:.1}x the partner's median deal",
                pct(tier_share),
                t.quantity,
                pct(qty_pct)
            ),
            evidence: json!({
                "family": f,
                "partner_sales": n,
                "partner_family_sales": k,
                "tier_family_share": super::round4(tier_share),
                "quantity_percentile": super::round4(qty_pct),
                "amount_to_partner_median": super::round4(ratio),
                "p_so_few": rarity,
            }),
        });
    }
}

/// P(X <= k) for X ~ Binomial(n, p).
fn binom_cdf(k: usize, n: usize, p: f64) -> f64 {
    if p <= 0.0 {
        return 1.0;
    }
    if p >= 1.0 {
        return if k >= n { 1.0 } else { 0.0 };
    }
    let (lp, lq) = (p.ln(), (1.0 - p).ln());
    let mut ln_choose = 0.0;
    let mut sum = 0.0;
    for j in 0..=k.min(n) {
        if j > 0 {
            ln_choose += ((n - j + 1) as f64).ln() - (j as f64).ln();
        }
        sum += (ln_choose + j as f64 * lp + (n - j) as f64 * lq).exp();
    }
    sum.min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poisson_tail_matches_closed_forms() {
        let lf = LnFact::new(100);
        // P(X >= 1) = 1 - e^-l
        assert!((lf.poisson_sf(1, 2.0) - (1.0 - (-2.0f64).exp())).abs() < 1e-9);
        // P(X >= 2) = 1 - e^-l (1 + l)
        let l: f64 = 0.5;
        assert!((lf.poisson_sf(2, l) - (1.0 - (-l).exp() * (1.0 + l))).abs() < 1e-9);
        assert_eq!(lf.poisson_sf(0, 3.0), 1.0);
        assert_eq!(lf.poisson_sf(3, 0.0), 0.0);
    }

    #[test]
    fn binomial_cdf_matches_closed_forms() {
        // P(X <= 0) = (1-p)^n
        assert!((binom_cdf(0, 10, 0.2) - 0.8f64.powi(10)).abs() < 1e-12);
        // P(X <= 1) = (1-p)^n + n p (1-p)^(n-1)
        let want = 0.8f64.powi(10) + 10.0 * 0.2 * 0.8f64.powi(9);
        assert!((binom_cdf(1, 10, 0.2) - want).abs() < 1e-12);
        assert!((binom_cdf(10, 10, 0.3) - 1.0).abs() < 1e-9);
    }

    #[test]
    fn strength_rises_with_evidence() {
        assert!((strength(CLUSTER_P, CLUSTER_P) - 0.6).abs() < 1e-12);
        assert!(strength(1e-6, CLUSTER_P) > strength(1e-4, CLUSTER_P));
        assert!(strength(1e-200, CLUSTER_P) <= 0.9);
    }
}
