//! Rolling-origin evaluation on the data itself: cut the history at past quarter ends,
//! forecast the next quarter with only what was known then, compare with what happened.

use std::collections::HashMap;

use rust_decimal::Decimal;
use serde::Serialize;

use super::series::{qbounds, qlabel, Panel};
use super::{money, risk, Fitted};
use crate::model::{CommissionLine, Dataset};

/// One origin of the backtest (history cut at the end of `origin`, forecasting `target`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OriginResult {
    pub origin: String,
    pub target: String,
    pub program_actual: Decimal,
    pub program_forecast: Decimal,
    pub program_lo: Decimal,
    pub program_hi: Decimal,
    /// Seasonal naive: the same quarter a year earlier.
    pub program_naive: Decimal,
    pub program_ape: f64,
    pub program_naive_ape: f64,
    pub partner_mase: f64,
    pub partner_mase_naive: f64,
    /// Partners compared at this origin.
    pub partners: usize,
    pub intervals: usize,
    pub covered: usize,
}

/// Calibration of the quota-attainment probabilities, replayed at past quarters.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RiskCalibration {
    pub cases: usize,
    pub brier: f64,
    /// Brier score of always predicting the observed base rate.
    pub brier_constant: f64,
    pub base_rate: f64,
    /// (bucket lower bound, upper bound, cases, mean predicted, observed rate).
    pub buckets: Vec<(f64, f64, usize, f64, f64)>,
}

/// The whole backtest.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BacktestReport {
    pub origins: Vec<OriginResult>,
    /// Program-level accrual MAPE one quarter ahead (fraction, 0.05 = 5%).
    pub program_mape: f64,
    pub program_mape_naive: f64,
    /// Partner-level accrual MASE (scale: the partner's mean absolute quarter-on-quarter
    /// change in its history), model and seasonal naive.
    pub partner_mase: f64,
    pub partner_mase_naive: f64,
    /// 1 - model / naive: how much lower the model's MASE is.
    pub mase_improvement: f64,
    /// Share of actuals inside the 80% interval (program, tiers and partners).
    pub coverage: f64,
    pub coverage_partners: f64,
    pub coverage_aggregates: f64,
    /// Attainment-probability calibration at mid-quarter cut days.
    pub risk: Option<RiskCalibration>,
}

/// Rolling-origin backtest over the last `origins` quarters that have a year of history
/// before them (fewer when the data is shorter).
pub fn backtest(ds: &Dataset, lines: &[CommissionLine], origins: usize) -> BacktestReport {
    let full = Panel::build(ds, lines, ds.program.as_of);
    let total = |p: usize, t: usize| full.accrual[p][t] + full.spiff[p][t];
    let first_cut = 4usize;
    let cuts: Vec<usize> = (first_cut..full.n).collect();
    let cuts = &cuts[cuts.len().saturating_sub(origins)..];

    let mut results = Vec::new();
    let (mut cov_p, mut n_p, mut cov_a, mut n_a) = (0usize, 0usize, 0usize, 0usize);
    let (mut mase_sum, mut naive_sum, mut mase_n) = (0.0, 0.0, 0usize);
    for &c in cuts {
        let cut_end = qbounds(full.first_q + c as i32 - 1, full.fy_start).1;
        let fitted = Fitted::new(ds, lines, cut_end);
        let rows = fitted.rows(1);
        let by_scope: HashMap<&str, &super::ForecastRow> =
            rows.iter().map(|r| (r.scope.as_str(), r)).collect();
        let cut = &fitted.panel;
        let np = full.partners.len();

        let prog_actual: f64 = (0..np).map(|p| total(p, c)).sum();
        let prog_naive: f64 = (0..np).map(|p| total(p, c - 4)).sum();
        let Some(prog) = by_scope.get("program") else {
            continue;
        };
        let actual_dec = money(prog_actual);
        let ape = |f: Decimal| {
            if prog_actual.abs() > 0.0 {
                (super::series::dec(f) - prog_actual).abs() / prog_actual.abs()
            } else {
                0.0
            }
        };
        let mut covered = 0usize;
        let mut intervals = 0usize;
        let mut check = |row: &super::ForecastRow, actual: f64, agg: bool| {
            let a = money(actual);
            let inside = row.lo <= a && a <= row.hi;
            intervals += 1;
            covered += usize::from(inside);
            if agg {
                n_a += 1;
                cov_a += usize::from(inside);
            } else {
                n_p += 1;
                cov_p += usize::from(inside);
            }
        };
        check(prog, prog_actual, true);
        for (tier, members) in cut.tier_members(ds) {
            if let Some(r) = by_scope.get(format!("tier:{tier}").as_str()) {
                let a: f64 = members.iter().map(|&p| total(p, c)).sum();
                check(r, a, true);
            }
        }
        let (mut m_sum, mut nv_sum, mut m_n) = (0.0, 0.0, 0usize);
        for p in 0..np {
            let start = cut.start[p];
            if start + 4 > c {
                continue;
            }
            let hist: Vec<f64> = (start..c).map(|t| total(p, t)).collect();
            let scale =
                hist.windows(2).map(|w| (w[1] - w[0]).abs()).sum::<f64>() / (hist.len() - 1) as f64;
            if scale <= 0.0 {
                continue;
            }
            let Some(r) = by_scope.get(format!("partner:{}", full.partners[p]).as_str()) else {
                continue;
            };
            let actual = total(p, c);
            let f = super::series::dec(r.accrual);
            m_sum += (f - actual).abs() / scale;
            nv_sum += (total(p, c - 4) - actual).abs() / scale;
            m_n += 1;
            check(r, actual, false);
        }
        mase_sum += m_sum;
        naive_sum += nv_sum;
        mase_n += m_n;
        let per = |s: f64| if m_n > 0 { s / m_n as f64 } else { 0.0 };
        results.push(OriginResult {
            origin: qlabel(full.first_q + c as i32 - 1),
            target: qlabel(full.first_q + c as i32),
            program_actual: actual_dec,
            program_forecast: prog.accrual,
            program_lo: prog.lo,
            program_hi: prog.hi,
            program_naive: money(prog_naive),
            program_ape: ape(prog.accrual),
            program_naive_ape: ape(money(prog_naive)),
            partner_mase: per(m_sum),
            partner_mase_naive: per(nv_sum),
            partners: m_n,
            intervals,
            covered,
        });
    }
    let mean = |f: &dyn Fn(&OriginResult) -> f64| {
        if results.is_empty() {
            0.0
        } else {
            results.iter().map(f).sum::<f64>() / results.len() as f64
        }
    };
    let frac = |a: usize, b: usize| if b > 0 { a as f64 / b as f64 } else { 0.0 };
    let partner_mase = if mase_n > 0 {
        mase_sum / mase_n as f64
    } else {
        0.0
    };
    let partner_mase_naive = if mase_n > 0 {
        naive_sum / mase_n as f64
    } else {
        0.0
    };
    BacktestReport {
        program_mape: mean(&|r| r.program_ape),
        program_mape_naive: mean(&|r| r.program_naive_ape),
        partner_mase,
        partner_mase_naive,
        mase_improvement: if partner_mase_naive > 0.0 {
            1.0 - partner_mase / partner_mase_naive
        } else {
            0.0
        },
        coverage: frac(cov_p + cov_a, n_p + n_a),
        coverage_partners: frac(cov_p, n_p),
        coverage_aggregates: frac(cov_a, n_a),
        risk: risk_calibration(ds, lines, &full, cuts),
        origins: results,
    }
}

/// Replays the attainment probabilities at one and two months into each target quarter
/// and scores them against whether the partner then reached its quota.
fn risk_calibration(
    ds: &Dataset,
    lines: &[CommissionLine],
    full: &Panel,
    cuts: &[usize],
) -> Option<RiskCalibration> {
    let mut cases: Vec<(f64, bool)> = Vec::new();
    for &c in cuts {
        let q = full.first_q + c as i32;
        let (qs, _) = qbounds(q, full.fy_start);
        for days in [30u64, 60] {
            let as_of = qs + chrono::Days::new(days);
            let risks = risk::attainment_risk_with(ds, lines, as_of, &risk::RiskOptions::default());
            for r in risks {
                let Some(&p) = full.index.get(&r.partner_id) else {
                    continue;
                };
                let reached = full.bookings[p][c] >= super::series::dec(r.quota);
                cases.push((r.p_reach_quota, reached));
            }
        }
    }
    if cases.is_empty() {
        return None;
    }
    let n = cases.len() as f64;
    let base = cases.iter().filter(|c| c.1).count() as f64 / n;
    let y = |b: bool| if b { 1.0 } else { 0.0 };
    let brier = cases.iter().map(|(p, o)| (p - y(*o)).powi(2)).sum::<f64>() / n;
    let brier_constant = cases
        .iter()
        .map(|(_, o)| (base - y(*o)).powi(2))
        .sum::<f64>()
        / n;
    let mut buckets = Vec::new();
    for i in 0..5 {
        let lo = i as f64 / 5.0;
        let hi = lo + 0.2;
        let inb: Vec<&(f64, bool)> = cases
            .iter()
            .filter(|(p, _)| *p >= lo && (*p < hi || (i == 4 && *p <= 1.0)))
            .collect();
        if inb.is_empty() {
            continue;
        }
        let k = inb.len() as f64;
        buckets.push((
            lo,
            hi,
            inb.len(),
            inb.iter().map(|c| c.0).sum::<f64>() / k,
            inb.iter().map(|c| y(c.1)).sum::<f64>() / k,
        ));
    }
    Some(RiskCalibration {
        cases: cases.len(),
        brier,
        brier_constant,
        base_rate: base,
        buckets,
    })
}
