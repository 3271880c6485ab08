//! The forecasting model: pooled multiplicative seasonality and damped trend (from the
//! program's own series), a per-scope level as an exponentially weighted mean of the
//! de-seasonalised history, partners shrunk towards their tier, and intervals from
//! honest one-step-ahead errors measured on the history itself.

use super::series::{qoy, Panel};

/// Weight of a quarter one step older than the next (exponential smoothing of the level).
pub(crate) const LAMBDA: f64 = 0.8;
/// Damping of the trend per quarter ahead.
pub(crate) const PHI: f64 = 0.85;
/// Prior weight (in quarters) of the tier's typical level in a partner's level.
pub(crate) const SHRINK: f64 = 1.0;
/// z of the 90th percentile of a standard normal (80% central interval).
pub(crate) const Z80: f64 = 1.281_551_565_5;
/// Prior log-scale spread of an aggregate's one-quarter-ahead error, used while the
/// history holds too few honest errors of its own (weighted as two observations).
pub(crate) const SIGMA_PRIOR: f64 = 0.06;

/// Log seasonal factors per quarter of the fiscal year and a growth rate per quarter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Season {
    pub s: [f64; 4],
    pub g: f64,
}

impl Season {
    #[cfg(test)]
    pub const NONE: Season = Season {
        s: [0.0; 4],
        g: 0.0,
    };

    /// Multiplier of the level at quarter offset `t` (from the panel's first quarter).
    pub fn factor(&self, first_q: i32, t: usize) -> f64 {
        (self.s[qoy(first_q + t as i32)] + self.g * t as f64).exp()
    }

    /// Multiplier for a target `t >= n` forecast from `n` quarters of history: the
    /// trend runs to the last observed quarter, then is damped.
    pub fn forecast_factor(&self, first_q: i32, n: usize, t: usize) -> f64 {
        let last = n.saturating_sub(1) as f64;
        let h = t.saturating_sub(last as usize);
        let damped: f64 = (1..=h).map(|i| PHI.powi(i as i32)).sum();
        (self.s[qoy(first_q + t as i32)] + self.g * (last + damped)).exp()
    }
}

/// Fits seasonality and growth on an aggregate series (all quarters complete).
///
/// Growth is the mean year-over-year log change (shrunk with few years, clamped); the
/// seasonal factor of a quarter is the mean de-trended log value of that quarter of the
/// year, centred. With less than a year of history there is no seasonality.
pub(crate) fn fit_season(y: &[f64], first_q: i32) -> Season {
    let n = y.len();
    let mut g = 0.0;
    let mut k = 0.0;
    for t in 4..n {
        if y[t] > 0.0 && y[t - 4] > 0.0 {
            g += (y[t] / y[t - 4]).ln() / 4.0;
            k += 1.0;
        }
    }
    let g = if k > 0.0 {
        (g / k * k / (k + 0.5)).clamp(-0.12, 0.12)
    } else {
        0.0
    };
    if n < 4 {
        return Season { s: [0.0; 4], g };
    }
    let mut sum = [0.0; 4];
    let mut cnt = [0.0; 4];
    for (t, &v) in y.iter().enumerate() {
        if v > 0.0 {
            let q = qoy(first_q + t as i32);
            sum[q] += v.ln() - g * t as f64;
            cnt[q] += 1.0;
        }
    }
    if cnt.contains(&0.0) {
        return Season { s: [0.0; 4], g };
    }
    let mut s = [0.0; 4];
    for q in 0..4 {
        s[q] = sum[q] / cnt[q];
    }
    let mean = s.iter().sum::<f64>() / 4.0;
    s.iter_mut().for_each(|v| *v -= mean);
    Season { s, g }
}

/// Fits seasonality and growth for partner-level series on a *same-store* basis: growth
/// is the year-over-year log change of the partners active in both quarters, and the
/// seasonal factors come from the chain of quarter-on-quarter changes of the partners
/// active in both quarters. Partners joining during the history inflate the program's
/// own growth; applying that growth to each partner's level would over-forecast the
/// incumbents, so partner levels use this instead. Same shrinkage and clamp as
/// [`fit_season`]; with every partner active from the start it equals [`fit_season`] of
/// their sum.
pub(crate) fn fit_season_same_store(
    series: &[Vec<f64>],
    starts: &[usize],
    upto: usize,
    first_q: i32,
) -> Season {
    // Sum over the partners active at `since` (and so at every later quarter) of
    // quarters `a` and `b`.
    let pair = |since: usize, a: usize, b: usize| -> (f64, f64) {
        series
            .iter()
            .zip(starts)
            .filter(|(y, s)| **s <= since && y.len() > a.max(b))
            .fold((0.0, 0.0), |acc, (y, _)| (acc.0 + y[a], acc.1 + y[b]))
    };
    let mut g = 0.0;
    let mut k = 0.0;
    for t in 4..upto {
        let (now, before) = pair(t - 4, t, t - 4);
        if now > 0.0 && before > 0.0 {
            g += (now / before).ln() / 4.0;
            k += 1.0;
        }
    }
    let g = if k > 0.0 {
        (g / k * k / (k + 0.5)).clamp(-0.12, 0.12)
    } else {
        0.0
    };
    if upto < 4 {
        return Season { s: [0.0; 4], g };
    }
    // Log index of the same-store chain: idx[t] - idx[t-1] = log change of the partners
    // active in both quarters (a missing link counts as no change).
    let mut idx = vec![0.0; upto];
    for t in 1..upto {
        let (now, before) = pair(t - 1, t, t - 1);
        let link = if now > 0.0 && before > 0.0 {
            (now / before).ln()
        } else {
            0.0
        };
        idx[t] = idx[t - 1] + link;
    }
    let mut sum = [0.0; 4];
    let mut cnt = [0.0; 4];
    for (t, v) in idx.iter().enumerate() {
        let q = qoy(first_q + t as i32);
        sum[q] += v - g * t as f64;
        cnt[q] += 1.0;
    }
    let mut s = [0.0; 4];
    for q in 0..4 {
        s[q] = sum[q] / cnt[q];
    }
    let mean = s.iter().sum::<f64>() / 4.0;
    s.iter_mut().for_each(|v| *v -= mean);
    Season { s, g }
}

/// Exponentially weighted mean of the de-seasonalised values from `start` to the end,
/// with the sum of the weights (the evidence behind it, in quarters).
pub(crate) fn level(y: &[f64], start: usize, season: &Season, first_q: i32) -> (f64, f64) {
    let n = y.len();
    let mut num = 0.0;
    let mut den = 0.0;
    for (t, &v) in y.iter().enumerate().skip(start) {
        let w = LAMBDA.powi((n - 1 - t) as i32);
        num += w * v / season.factor(first_q, t);
        den += w;
    }
    if den > 0.0 {
        (num / den, den)
    } else {
        (0.0, 0.0)
    }
}

/// Levels of many partners, each shrunk towards the mean level of its group (its tier)
/// in proportion to how little history it has.
pub(crate) fn shrunk_levels(
    series: &[Vec<f64>],
    upto: usize,
    starts: &[usize],
    groups: &[Option<String>],
    season: &Season,
    first_q: i32,
) -> Vec<f64> {
    let raw: Vec<(f64, f64)> = series
        .iter()
        .zip(starts)
        .map(|(y, &s)| level(&y[..upto.min(y.len())], s, season, first_q))
        .collect();
    // Group prior: mean level of members with at least two quarters of evidence.
    let mut prior: std::collections::HashMap<Option<&str>, (f64, f64)> = Default::default();
    let mut all = (0.0, 0.0);
    for ((l, w), g) in raw.iter().zip(groups) {
        if *w >= 1.5 {
            let e = prior.entry(g.as_deref()).or_default();
            e.0 += l;
            e.1 += 1.0;
            all.0 += l;
            all.1 += 1.0;
        }
    }
    let full_year: f64 = (0..4).map(|i| LAMBDA.powi(i)).sum();
    let overall = if all.1 > 0.0 { all.0 / all.1 } else { 0.0 };
    raw.iter()
        .zip(groups)
        .map(|((l, w), g)| {
            let p = match prior.get(&g.as_deref()) {
                Some((s, c)) if *c > 0.0 => s / c,
                _ => overall,
            };
            // Partners with a full year of history stand on their own.
            let k = SHRINK * (1.0 - w / full_year).max(0.0);
            if w + k > 0.0 {
                (w * l + k * p) / (w + k)
            } else {
                p
            }
        })
        .collect()
}

/// Prior weight, in quarters of a partner's own average pipeline, of the pooled ratio in
/// the partner's pipeline-to-outcome ratio.
pub(crate) const PIPE_PRIOR_QUARTERS: f64 = 3.0;

/// Share of its typical size the pipeline open now must reach to be read as complete.
pub(crate) const PIPE_COMPLETE: f64 = 0.5;

/// Per partner, the ratio of what the pipeline open on the eve of a quarter turned into
/// during that quarter (`outcome`) to its expected amount (`pipe`), over the quarters
/// 1..upto, shrunk towards the ratio pooled over all partners by
/// [`PIPE_PRIOR_QUARTERS`] quarters of the partner's own average pipeline.
pub(crate) fn pipe_ratios(
    outcome: &[Vec<f64>],
    pipe: &[Vec<f64>],
    starts: &[usize],
    upto: usize,
) -> Vec<f64> {
    let sums: Vec<(f64, f64)> = outcome
        .iter()
        .zip(pipe)
        .map(|(o, e)| {
            let span = 1..upto.min(o.len()).min(e.len());
            (o[span.clone()].iter().sum(), e[span].iter().sum())
        })
        .collect();
    let (num, den) = sums
        .iter()
        .fold((0.0, 0.0), |acc, (o, e)| (acc.0 + o, acc.1 + e));
    let pool = if den > 0.0 { num / den } else { 0.0 };
    sums.iter()
        .zip(starts)
        .map(|(&(o, e), &start)| {
            let quarters = upto.saturating_sub(1 + start).max(1) as f64;
            let prior = if e > 0.0 {
                PIPE_PRIOR_QUARTERS * e / quarters
            } else {
                0.0
            };
            if e + prior > 0.0 {
                (o + prior * pool) / (e + prior)
            } else {
                pool
            }
        })
        .collect()
}

/// One-quarter-ahead forecast that reads the registered pipeline: per partner, the
/// (bookings, non-SPIFF accrual) of quarter `upto` from the quarters before it.
///
/// A quarter splits into what the registrations open on its eve turn into, and the rest.
/// The first part is the open pipeline times the partner's learned pipeline ratio (what
/// its pipelines became, in bookings and in accruals: own registrations for seller lines,
/// its resellers' for override lines); the rest is the level of the partner's history
/// without the foretold part, with same-store seasonality and trend and shrunk to its
/// tier like every partner level.
pub(crate) fn pipeline_forecast(panel: &Panel, upto: usize) -> Vec<(f64, f64)> {
    let np = panel.partners.len();
    let minus = |a: &[Vec<f64>], b: &[&[Vec<f64>]]| -> Vec<Vec<f64>> {
        (0..np)
            .map(|p| {
                a[p].iter()
                    .enumerate()
                    .map(|(t, v)| v - b.iter().map(|s| s[p][t]).sum::<f64>())
                    .collect()
            })
            .collect()
    };
    let rest_b = minus(&panel.bookings, &[&panel.pipe_bookings]);
    let rest_a = minus(
        &panel.accrual,
        &[&panel.pipe_accrual_own, &panel.pipe_accrual_child],
    );
    let r_b = pipe_ratios(&panel.pipe_bookings, &panel.pipe_own, &panel.start, upto);
    let r_own = pipe_ratios(&panel.pipe_accrual_own, &panel.pipe_own, &panel.start, upto);
    let r_child = pipe_ratios(
        &panel.pipe_accrual_child,
        &panel.pipe_child,
        &panel.start,
        upto,
    );
    let first_q = panel.first_q;
    let sb = fit_season_same_store(&rest_b, &panel.start, upto, first_q);
    let sa = fit_season_same_store(&rest_a, &panel.start, upto, first_q);
    let lb = shrunk_levels(&rest_b, upto, &panel.start, &panel.tier, &sb, first_q);
    let la = shrunk_levels(&rest_a, upto, &panel.start, &panel.tier, &sa, first_q);
    let at = |s: &[Vec<f64>], p: usize| s[p].get(upto).copied().unwrap_or(0.0);
    (0..np)
        .map(|p| {
            let own = at(&panel.pipe_own, p);
            let child = at(&panel.pipe_child, p);
            let b = lb[p] * sb.forecast_factor(first_q, upto, upto) + r_b[p] * own;
            let a = la[p] * sa.forecast_factor(first_q, upto, upto)
                + r_own[p] * own
                + r_child[p] * child;
            (b.max(0.0), a)
        })
        .collect()
}

/// Whether the registrations open now look like a whole pipeline: at least
/// [`PIPE_COMPLETE`] of the typical pipeline open on the eve of the last four
/// quarters. A data set without the registrations still open (an export of closed
/// business only) would otherwise read as a collapse of next quarter's sales.
pub(crate) fn pipeline_complete(panel: &Panel) -> bool {
    let n = panel.n;
    if n < 2 {
        return false;
    }
    let open_on_eve = |t: usize| -> f64 { panel.pipe_own.iter().map(|s| s[t]).sum() };
    let recent: Vec<f64> = (n.saturating_sub(4).max(1)..n).map(open_on_eve).collect();
    let typical = recent.iter().sum::<f64>() / recent.len() as f64;
    typical > 0.0 && open_on_eve(n) >= PIPE_COMPLETE * typical
}

/// Log-scale spread of an aggregate's one-step errors, pooled with the prior.
pub(crate) fn aggregate_sigma(ratios: &[f64]) -> f64 {
    let logs: Vec<f64> = ratios
        .iter()
        .filter(|r| **r > 0.0)
        .map(|r| r.ln())
        .collect();
    let n = logs.len() as f64;
    let ss: f64 = logs.iter().map(|e| e * e).sum();
    ((ss + 2.0 * SIGMA_PRIOR * SIGMA_PRIOR) / (n + 2.0)).sqrt()
}

/// The `p` quantile (0..1) of values (linear interpolation); `None` when empty.
pub(crate) fn quantile(values: &[f64], p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let pos = p.clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    Some(v[lo] + (v[hi] - v[lo]) * (pos - lo as f64))
}

/// Standard normal CDF (Abramowitz–Stegun 7.1.26 on erf; error below 1.5e-7).
pub(crate) fn norm_cdf(x: f64) -> f64 {
    let z = x / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * z.abs());
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erf = 1.0 - poly * (-z * z).exp();
    let erf = if z >= 0.0 { erf } else { -erf };
    0.5 * (1.0 + erf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn season_recovers_a_multiplicative_pattern_and_growth() {
        // Quarter-of-year factors 1.3, 0.9, 0.9, 0.9 with 2% growth per quarter.
        let f = [1.3, 0.9, 0.9, 0.9];
        let y: Vec<f64> = (0..12)
            .map(|t| 100.0 * f[t % 4] * (0.02 * t as f64).exp())
            .collect();
        let s = fit_season(&y, 0);
        // Eight year-over-year pairs, shrunk by 8/8.5.
        assert!((s.g - 0.02 * 8.0 / 8.5).abs() < 1e-9, "g = {}", s.g);
        let ratio = (s.s[0] - s.s[1]).exp();
        assert!((ratio - 1.3 / 0.9).abs() < 0.05, "ratio {ratio}");
    }

    #[test]
    fn same_store_growth_ignores_partners_joining() {
        // Two incumbents flat with a 1.3 first-quarter peak; a third partner joins at
        // t = 4 and doubles the program: the program series "grows", the same store does not.
        let f = [1.3, 0.9, 0.9, 0.9];
        let inc: Vec<f64> = (0..8).map(|t| 100.0 * f[t % 4]).collect();
        let joiner: Vec<f64> = (0..8)
            .map(|t| if t >= 4 { 200.0 * f[t % 4] } else { 0.0 })
            .collect();
        let series = vec![inc.clone(), inc, joiner];
        let starts = [0, 0, 4];
        let ss = fit_season_same_store(&series, &starts, 8, 0);
        assert!(ss.g.abs() < 1e-9, "same-store g = {}", ss.g);
        assert!(
            ((ss.s[0] - ss.s[1]).exp() - 1.3 / 0.9).abs() < 1e-6,
            "{ss:?}"
        );
        let total: Vec<f64> = (0..8).map(|t| series.iter().map(|y| y[t]).sum()).collect();
        assert!(fit_season(&total, 0).g > 0.1);
        // With everyone active from the start it is the season of the sum.
        let two = vec![
            (0..12)
                .map(|t| 50.0 * f[t % 4] * (0.02 * t as f64).exp())
                .collect::<Vec<f64>>(),
            (0..12)
                .map(|t| 70.0 * f[t % 4] * (0.02 * t as f64).exp())
                .collect(),
        ];
        let sum: Vec<f64> = (0..12).map(|t| two[0][t] + two[1][t]).collect();
        let a = fit_season_same_store(&two, &[0, 0], 12, 0);
        let b = fit_season(&sum, 0);
        assert!((a.g - b.g).abs() < 1e-9);
        for q in 0..4 {
            assert!((a.s[q] - b.s[q]).abs() < 1e-9, "{a:?} vs {b:?}");
        }
    }

    /// A flat two-partner panel: a reseller (0) whose registrations turn 90% into bookings
    /// at a 10% accrual rate on top of 100 of unregistered bookings a quarter, and its
    /// distributor (1), earning 2% overrides on them on top of 20 of its own accruals.
    fn pipeline_panel(n: usize) -> Panel {
        let flat = |v: f64, len: usize| vec![v; len];
        let mut pipe_own = vec![flat(50.0, n + 1), flat(0.0, n + 1)];
        let mut pipe_child = vec![flat(0.0, n + 1), flat(50.0, n + 1)];
        for s in pipe_own.iter_mut().chain(pipe_child.iter_mut()) {
            s[0] = 0.0;
        }
        // A big registered deal is open on the eve of the quarter to forecast.
        pipe_own[0][n] = 200.0;
        pipe_child[1][n] = 200.0;
        let mut pipe_bookings = vec![flat(45.0, n), flat(0.0, n)];
        let mut pipe_own_acc = vec![flat(4.5, n), flat(0.0, n)];
        let mut pipe_child_acc = vec![flat(0.0, n), flat(0.9, n)];
        for s in [&mut pipe_bookings, &mut pipe_own_acc, &mut pipe_child_acc] {
            s.iter_mut().for_each(|v| v[0] = 0.0);
        }
        let bookings: Vec<Vec<f64>> = (0..2)
            .map(|p| (0..n).map(|t| 100.0 + pipe_bookings[p][t]).collect())
            .collect();
        let accrual: Vec<Vec<f64>> = vec![
            (0..n).map(|t| 10.0 + pipe_own_acc[0][t]).collect(),
            (0..n).map(|t| 20.0 + pipe_child_acc[1][t]).collect(),
        ];
        let partners = vec!["R1".to_string(), "D1".to_string()];
        Panel {
            fy_start: 1,
            as_of: chrono::NaiveDate::from_ymd_opt(2026, 9, 30).expect("date"),
            first_q: 0,
            n,
            partial_q: None,
            index: partners.iter().cloned().zip(0..).collect(),
            partners,
            bookings,
            accrual,
            spiff: vec![flat(0.0, n); 2],
            partial_bookings: vec![0.0; 2],
            partial_accrual: vec![0.0; 2],
            start: vec![0, 0],
            tier: vec![Some("a".into()), Some("b".into())],
            region: vec!["NA".into(); 2],
            shape: (1..=92).map(|d| d as f64 / 92.0).collect(),
            pipe_own,
            pipe_child,
            pipe_bookings,
            pipe_accrual_own: pipe_own_acc,
            pipe_accrual_child: pipe_child_acc,
        }
    }

    #[test]
    fn pipeline_forecast_adds_the_open_registrations_at_their_learned_yield() {
        let panel = pipeline_panel(6);
        let f = pipeline_forecast(&panel, 6);
        // Reseller: 100 unregistered + 0.9 x 200 of bookings; 10 + 0.09 x 200 accrued.
        assert!((f[0].0 - 280.0).abs() < 1e-6, "{f:?}");
        assert!((f[0].1 - 28.0).abs() < 1e-6, "{f:?}");
        // Distributor: its own 20 + 2% of 90% of its reseller's 200.
        assert!((f[1].1 - (20.0 + 0.018 * 200.0)).abs() < 1e-6, "{f:?}");
        assert!((f[1].0 - 100.0).abs() < 1e-6, "{f:?}");
        // Replayed inside the history, the usual pipeline gives the usual quarter.
        let g = pipeline_forecast(&panel, 4);
        assert!(
            (g[0].0 - 145.0).abs() < 1e-6 && (g[0].1 - 14.5).abs() < 1e-6,
            "{g:?}"
        );
    }

    #[test]
    fn an_empty_open_pipeline_is_not_read_as_a_collapse() {
        let mut panel = pipeline_panel(6);
        assert!(pipeline_complete(&panel));
        // An export without the registrations still open: next to nothing on the eve.
        panel.pipe_own[0][6] = 10.0;
        assert!(!pipeline_complete(&panel));
        // Half of the usual pipeline still counts.
        panel.pipe_own[0][6] = 25.0;
        assert!(pipeline_complete(&panel));
        // Too short a history to know what is usual.
        assert!(!pipeline_complete(&pipeline_panel(1)));
    }

    #[test]
    fn pipeline_ratios_are_shrunk_to_the_pool() {
        // Partner 0 turned its pipeline into 50%, partner 1 into 100%; pooled 75%.
        let outcome = vec![vec![0.0, 50.0, 50.0], vec![0.0, 100.0, 100.0], vec![0.0; 3]];
        let pipe = vec![
            vec![0.0, 100.0, 100.0],
            vec![0.0, 100.0, 100.0],
            vec![0.0; 3],
        ];
        let r = pipe_ratios(&outcome, &pipe, &[0, 0, 0], 3);
        // Two quarters of own evidence (200) against three quarters of the prior (300).
        assert!(
            (r[0] - (100.0 + 300.0 * 0.75) / 500.0).abs() < 1e-9,
            "{r:?}"
        );
        assert!(
            (r[1] - (200.0 + 300.0 * 0.75) / 500.0).abs() < 1e-9,
            "{r:?}"
        );
        // Without a pipeline of its own a partner gets the pooled ratio.
        assert!((r[2] - 0.75).abs() < 1e-9, "{r:?}");
        // Quarters from `upto` on are not looked at.
        let early = pipe_ratios(&outcome, &pipe, &[0, 0, 0], 2);
        assert!(
            (early[0] - (50.0 + 300.0 * 0.75) / 400.0).abs() < 1e-9,
            "{early:?}"
        );
    }

    #[test]
    fn short_history_has_no_seasonality() {
        assert_eq!(fit_season(&[1.0, 2.0, 3.0], 0).s, [0.0; 4]);
    }

    #[test]
    fn level_weights_recent_quarters_more() {
        let (l, w) = level(&[10.0, 10.0, 20.0], 0, &Season::NONE, 0);
        assert!(l > 13.33 && l < 20.0, "{l}");
        assert!((w - (1.0 + 0.8 + 0.64)).abs() < 1e-9);
        // Quarters before the start do not count.
        assert_eq!(level(&[99.0, 5.0], 1, &Season::NONE, 0).0, 5.0);
    }

    #[test]
    fn sparse_partners_are_pulled_to_their_tier() {
        let series = vec![
            vec![100.0, 100.0, 100.0, 100.0],
            vec![300.0, 300.0, 300.0, 300.0],
            vec![0.0, 0.0, 0.0, 1000.0],
        ];
        let starts = [0, 0, 3];
        let g = vec![Some("a".to_string()); 3];
        let l = shrunk_levels(&series, 4, &starts, &g, &Season::NONE, 0);
        // One quarter of evidence against a full year: the tier prior (200) weighs
        // 1 - 1/2.952 quarters.
        let k = 1.0 - 1.0 / (1.0 + 0.8 + 0.64 + 0.512);
        assert!(
            (l[2] - (1000.0 + k * 200.0) / (1.0 + k)).abs() < 1e-6,
            "{l:?}"
        );
        // A full year of history stands on its own.
        assert!((l[0] - 100.0).abs() < 1e-9, "{l:?}");
    }

    #[test]
    fn normal_cdf_and_quantiles() {
        assert!((norm_cdf(0.0) - 0.5).abs() < 1e-7);
        assert!((norm_cdf(Z80) - 0.9).abs() < 1e-6);
        assert_eq!(quantile(&[3.0, 1.0, 2.0], 0.5), Some(2.0));
        assert_eq!(quantile(&[], 0.5), None);
    }
}
