//! The forecasting model: pooled multiplicative seasonality and damped trend (from the
//! program's own series), a per-scope level as an exponentially weighted mean of the
//! de-seasonalised history, partners shrunk towards their tier, and intervals from
//! honest one-step-ahead errors measured on the history itself.

use super::series::qoy;

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
        (g / k * k / (k + 1.0)).clamp(-0.08, 0.08)
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
        // Eight year-over-year pairs, shrunk by 8/9.
        assert!((s.g - 0.02 * 8.0 / 9.0).abs() < 1e-9, "g = {}", s.g);
        let ratio = (s.s[0] - s.s[1]).exp();
        assert!((ratio - 1.3 / 0.9).abs() < 0.05, "ratio {ratio}");
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
