//! Forecasting: bookings, accruals, tier-attainment risk and a rolling-origin backtest.
//!
//! Pure: data in, results out; "today" is `program.as_of`.
//!
//! **Definitions.** *Bookings* are the amounts of `sale` transactions by `closed_on`
//! (gross of refunds, the measure quota attainment uses in the plan). *Accrual* of a
//! period is the sum of the seller, override, SPIFF and clawback lines of that fiscal
//! quarter (by the transaction's `closed_on`), attributed to the payee. Pass the plan's
//! recalculated lines (`plan::recalculate`).
//!
//! **Model** (quarterly, multiplicative, fitted per call):
//! - seasonality (quarter of the fiscal year) and growth come from the program's own
//!   series (bookings and non-SPIFF accruals separately, since accelerators make the
//!   accrual peak sharper than the bookings peak); growth is the year-over-year log
//!   change, shrunk and damped over the horizon;
//! - partners use *same-store* seasonality and growth instead (the change of the partners
//!   active in both quarters), so partners joining during the history do not make every
//!   incumbent look like it grows;
//! - each scope's level is an exponentially weighted mean of its de-seasonalised history;
//!   a partner's level is shrunk towards the typical level of its tier in proportion to
//!   how short its history is (new and sparse partners borrow from the tier);
//! - the registered pipeline: a partner's next full quarter is what the deal registrations
//!   open on its eve will turn into (their expected amounts times the partner's learned
//!   yield, in bookings and in seller and override accruals, shrunk to the pooled yield)
//!   plus the level of its history without the part its pipelines foretold
//!   ([`model::pipeline_forecast`]); further quarters, the quarter in progress, and data
//!   whose open registrations look incomplete (far below the usual pipeline) use the
//!   level of the whole history;
//! - SPIFFs are promotions of the plan, not history: history excludes SPIFF lines and the
//!   forecast adds, for each SPIFF of the plan overlapping a quarter, the partner's recent
//!   units of the eligible products per unit of bookings x forecast bookings x the typical
//!   share of a quarter's bookings inside the SPIFF window x the amount per unit;
//! - 80% intervals come from honest one-step-ahead errors replayed on the history:
//!   pooled ratio quantiles per tier for partners (of the pipeline forecast for the next
//!   quarter), a log-scale spread (with a weak prior)
//!   for the program and the tiers; wider with the horizon.
//! - A quarter in progress is forecast as what is booked so far plus the model's quarter
//!   times the share of a quarter typically still to come.

mod backtest;
mod model;
mod risk;
mod series;

use std::collections::{BTreeMap, HashMap};

use rust_decimal::prelude::FromPrimitive;
use rust_decimal::Decimal;
use serde::Serialize;

use crate::model::{CommissionLine, Dataset, TransactionKind};
use crate::money::round_cents;

pub use backtest::{backtest, BacktestReport, OriginResult};
pub use risk::{attainment_risk, attainment_risk_with, PartnerRisk, RiskOptions};

use model::{Season, Z80};
use series::{dec, qbounds, qlabel, Panel};

/// One forecast line: a scope and a period, with the 80% interval of the accrual.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ForecastRow {
    /// `program`, `tier:<id>` or `partner:<id>`.
    pub scope: String,
    /// Fiscal quarter `YYYY-Qn` (or month `YYYY-MM` from [`forecast_months`]).
    pub period: String,
    pub accrual: Decimal,
    pub bookings: Decimal,
    /// Lower bound of the 80% prediction interval of the accrual.
    pub lo: Decimal,
    /// Upper bound of the 80% prediction interval of the accrual.
    pub hi: Decimal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Granularity {
    Month,
    Quarter,
}

/// One actual: bookings and accruals of a scope in a month or fiscal quarter.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeriesPoint {
    /// `program`, `region:<name>`, `tier:<id>` (current members) or `partner:<id>`.
    pub scope: String,
    pub granularity: Granularity,
    /// `YYYY-MM` or `YYYY-Qn`.
    pub period: String,
    pub bookings: Decimal,
    pub accrual: Decimal,
    /// False for the month or quarter still in progress at `as_of`.
    pub complete: bool,
}

pub(crate) fn money(x: f64) -> Decimal {
    if !x.is_finite() {
        return Decimal::ZERO;
    }
    let mut d = round_cents(Decimal::from_f64(x).unwrap_or(Decimal::ZERO));
    d.rescale(2);
    d
}

/// The fitted model on one panel; shared by the forecast, the risk and the backtest.
pub(crate) struct Fitted<'a> {
    pub ds: &'a Dataset,
    pub panel: Panel,
    /// Seasonality and growth of the program's own series (program and tier forecasts).
    pub season_b: Season,
    pub season_a: Season,
    /// Same-store seasonality and growth (partner forecasts, see
    /// [`model::fit_season_same_store`]).
    pub pseason_b: Season,
    pub pseason_a: Season,
    pub level_b: Vec<f64>,
    pub level_a: Vec<f64>,
    /// Per tier (None = pooled over all): (q10, q90) of a partner's accrual / forecast.
    pub partner_ratio_a: HashMap<Option<String>, (f64, f64, f64)>,
    /// The same for the pipeline forecast ([`model::pipeline_forecast`]) of the next quarter.
    pub partner_ratio_pipe: HashMap<Option<String>, (f64, f64, f64)>,
    /// Pipeline forecast (bookings, non-SPIFF accrual) of the quarter after the last
    /// complete one, per partner; `None` while a quarter is in progress or without any
    /// registered pipeline in the history.
    pub pipe_next: Option<Vec<(f64, f64)>>,
    /// Per tier (None = pooled): log-scale spread of a partner's quarterly bookings error.
    pub partner_sigma_b: HashMap<Option<String>, f64>,
    pub spiff_rates: Vec<SpiffRates>,
}

/// For one SPIFF of the plan: eligible units per unit of bookings of each partner.
pub(crate) struct SpiffRates {
    pub from: chrono::NaiveDate,
    pub to: chrono::NaiveDate,
    pub amount_per_unit: f64,
    /// `None` when the partner's current tier is not eligible.
    pub rate: Vec<Option<f64>>,
}

impl<'a> Fitted<'a> {
    pub fn new(ds: &'a Dataset, lines: &[CommissionLine], as_of: chrono::NaiveDate) -> Self {
        let panel = Panel::build(ds, lines, as_of);
        let all: Vec<usize> = (0..panel.partners.len()).collect();
        let prog_b = panel.sum(&panel.bookings, &all);
        let prog_a = panel.sum(&panel.accrual, &all);
        let season_b = model::fit_season(&prog_b, panel.first_q);
        let season_a = model::fit_season(&prog_a, panel.first_q);
        let n = panel.n;
        let pseason_b =
            model::fit_season_same_store(&panel.bookings, &panel.start, n, panel.first_q);
        let pseason_a =
            model::fit_season_same_store(&panel.accrual, &panel.start, n, panel.first_q);
        let level_b = model::shrunk_levels(
            &panel.bookings,
            n,
            &panel.start,
            &panel.tier,
            &pseason_b,
            panel.first_q,
        );
        let level_a = model::shrunk_levels(
            &panel.accrual,
            n,
            &panel.start,
            &panel.tier,
            &pseason_a,
            panel.first_q,
        );
        let (partner_ratio_a, partner_sigma_b) = partner_errors(&panel);
        let pipe_next = (panel.partial_q.is_none() && model::pipeline_complete(&panel))
            .then(|| model::pipeline_forecast(&panel, n));
        let partner_ratio_pipe = pipeline_errors(&panel);
        let spiff_rates = spiff_rates(ds, &panel);
        Fitted {
            ds,
            panel,
            season_b,
            season_a,
            pseason_b,
            pseason_a,
            level_b,
            level_a,
            partner_ratio_a,
            partner_ratio_pipe,
            pipe_next,
            partner_sigma_b,
            spiff_rates,
        }
    }

    /// Model bookings of partner `p` for the whole quarter at offset `t` (>= n).
    pub fn partner_bookings(&self, p: usize, t: usize) -> f64 {
        (self.level_b[p]
            * self
                .pseason_b
                .forecast_factor(self.panel.first_q, self.panel.n, t))
        .max(0.0)
    }

    fn partner_accrual(&self, p: usize, t: usize) -> f64 {
        self.level_a[p]
            * self
                .pseason_a
                .forecast_factor(self.panel.first_q, self.panel.n, t)
    }

    /// Expected SPIFF accrual of partner `p` in quarter offset `t`, for sales closed from
    /// day offset `from_day` of the quarter on, given its whole-quarter bookings `b`.
    fn partner_spiff(&self, p: usize, t: usize, from_day: i64, b: f64) -> f64 {
        let q = self.panel.first_q + t as i32;
        let (qs, qe) = qbounds(q, self.panel.fy_start);
        let mut total = 0.0;
        for s in &self.spiff_rates {
            let Some(rate) = s.rate[p] else { continue };
            let a = s.from.max(qs);
            let e = s.to.min(qe);
            if e < a {
                continue;
            }
            let a_off = (a - qs).num_days().max(from_day);
            let e_off = (e - qs).num_days();
            total += rate * b * self.panel.share_between(a_off, e_off) * s.amount_per_unit;
        }
        total
    }

    /// Share of a quarter's bookings typically done by `as_of` (0 when the quarter is
    /// complete or not started).
    pub fn done_share(&self) -> f64 {
        match self.panel.partial_q {
            Some(q) => {
                let (qs, _) = qbounds(q, self.panel.fy_start);
                let d = (self.panel.as_of - qs).num_days();
                self.panel.share_between(0, d)
            }
            None => 0.0,
        }
    }

    fn day_after_as_of(&self) -> i64 {
        match self.panel.partial_q {
            Some(q) => (self.panel.as_of - qbounds(q, self.panel.fy_start).0).num_days() + 1,
            None => 0,
        }
    }

    /// Forecast rows for `horizon` quarters after the last complete quarter (the first
    /// being the quarter in progress, if any).
    pub fn rows(&self, horizon: usize) -> Vec<ForecastRow> {
        let panel = &self.panel;
        let n = panel.n;
        let np = panel.partners.len();
        let done = self.done_share();
        let rest_from = self.day_after_as_of();
        let all: Vec<usize> = (0..np).collect();

        // Per partner per step: (bookings, non-spiff accrual, spiff) for the remaining part
        // of the quarter (whole quarter when not in progress), plus already-booked parts.
        struct Step {
            b: Vec<f64>,
            a: Vec<f64>,
            spiff: Vec<f64>,
            so_far_b: Vec<f64>,
            so_far_a: Vec<f64>,
            rem: f64,
            /// Partner figures from the pipeline forecast (no median correction).
            piped: bool,
        }
        let mut steps = Vec::with_capacity(horizon);
        for k in 0..horizon {
            let t = n + k;
            let partial = k == 0 && panel.partial_q.is_some();
            let rem = if partial { 1.0 - done } else { 1.0 };
            let from_day = if partial { rest_from } else { 0 };
            let mut b = vec![0.0; np];
            let mut a = vec![0.0; np];
            let mut spiff = vec![0.0; np];
            let piped = k == 0 && self.pipe_next.is_some();
            for p in 0..np {
                let (full_b, full_a) = match (&self.pipe_next, piped) {
                    (Some(next), true) => next[p],
                    _ => (self.partner_bookings(p, t), self.partner_accrual(p, t)),
                };
                b[p] = rem * full_b;
                // SPIFFs are expectations summed into the program and the tiers: they
                // scale with the history level of bookings, not one quarter's pipeline.
                let level_b = if piped {
                    self.partner_bookings(p, t)
                } else {
                    full_b
                };
                spiff[p] = self.partner_spiff(p, t, from_day, level_b);
                a[p] = rem * full_a + spiff[p];
            }
            let (so_far_b, so_far_a) = if partial {
                (
                    panel.partial_bookings.clone(),
                    panel.partial_accrual.clone(),
                )
            } else {
                (vec![0.0; np], vec![0.0; np])
            };
            steps.push(Step {
                b,
                a,
                spiff,
                so_far_b,
                so_far_a,
                rem,
                piped,
            });
        }

        let mut out = Vec::new();
        // Aggregates (program, tiers): own level and own error spread; SPIFFs summed.
        let mut scopes: Vec<(String, Vec<usize>)> = vec![("program".to_string(), all.clone())];
        for (tier, members) in panel.tier_members(self.ds) {
            scopes.push((format!("tier:{tier}"), members));
        }
        let prog_b = panel.sum(&panel.bookings, &all);
        let prog_a = panel.sum(&panel.accrual, &all);
        for (scope, members) in &scopes {
            let yb = panel.sum(&panel.bookings, members);
            let ya = panel.sum(&panel.accrual, members);
            let start = members.iter().map(|&p| panel.start[p]).min().unwrap_or(n);
            let (lb, _) = model::level(&yb, start, &self.season_b, panel.first_q);
            let (la, _) = model::level(&ya, start, &self.season_a, panel.first_q);
            let ratios = aggregate_ratios(panel, &prog_b, &prog_a, &ya, start);
            let sigma = model::aggregate_sigma(&ratios);
            for (k, st) in steps.iter().enumerate() {
                let t = n + k;
                let spiff: f64 = members.iter().map(|&p| st.spiff[p]).sum();
                let b_rem =
                    st.rem * lb * self.season_b.forecast_factor(panel.first_q, n, t).max(0.0);
                let a_rem = st.rem * la * self.season_a.forecast_factor(panel.first_q, n, t);
                let so_b: f64 = members.iter().map(|&p| st.so_far_b[p]).sum();
                let so_a: f64 = members.iter().map(|&p| st.so_far_a[p]).sum();
                let h = (k + 1) as f64;
                let width = Z80 * sigma * h.sqrt();
                let a_tot = a_rem + spiff;
                let (lo, hi) = if a_tot > 0.0 {
                    (a_tot * (-width).exp(), a_tot * width.exp())
                } else {
                    (a_tot, a_tot)
                };
                out.push(row(
                    scope,
                    t,
                    panel.first_q,
                    so_b + b_rem.max(0.0),
                    so_a + a_tot,
                    so_a + lo,
                    so_a + hi,
                ));
            }
        }
        for p in 0..np {
            let tier = panel.tier[p].clone();
            let (q10, q50, q90) = self
                .partner_ratio_a
                .get(&tier)
                .or_else(|| self.partner_ratio_a.get(&None))
                .copied()
                .unwrap_or((0.5, 1.0, 1.5));
            let pipe_q = self
                .partner_ratio_pipe
                .get(&tier)
                .or_else(|| self.partner_ratio_pipe.get(&None))
                .copied();
            for (k, st) in steps.iter().enumerate() {
                let t = n + k;
                let h = ((k + 1) as f64).sqrt();
                let widen = |r: f64| if r > 0.0 { r.powf(h) } else { r };
                // The pipeline forecast is a mean; its band spans both its own replayed
                // errors and the history model's (the pipeline's replays start later and
                // see fewer quarters, so alone they run narrow on large programs).
                let (q10, q50, q90) = match (st.piped, pipe_q) {
                    (true, Some((p10, _, p90))) => (q10.min(p10), 1.0, q90.max(p90)),
                    _ => (q10, q50, q90),
                };
                let a = st.a[p];
                let (lo, hi) = if a > 0.0 {
                    (a * widen(q10), a * widen(q90))
                } else {
                    (a, a)
                };
                out.push(row(
                    &format!("partner:{}", panel.partners[p]),
                    t,
                    panel.first_q,
                    st.so_far_b[p] + st.b[p],
                    st.so_far_a[p] + a * q50,
                    st.so_far_a[p] + lo,
                    st.so_far_a[p] + hi,
                ));
            }
        }
        out
    }
}

fn row(scope: &str, t: usize, first_q: i32, b: f64, a: f64, lo: f64, hi: f64) -> ForecastRow {
    let accrual = money(a);
    ForecastRow {
        scope: scope.to_string(),
        period: qlabel(first_q + t as i32),
        accrual,
        bookings: money(b.max(0.0)),
        lo: money(lo).min(accrual),
        hi: money(hi).max(accrual),
    }
}

/// First quarter from which one-step errors are replayed: with a year and a half of
/// history or more, only quarters where seasonality is estimable count.
fn replay_from(n: usize) -> usize {
    if n >= 6 {
        4
    } else {
        1
    }
}

/// Honest one-step ratios actual / forecast of an aggregate's non-SPIFF accrual.
fn aggregate_ratios(
    panel: &Panel,
    prog_b: &[f64],
    prog_a: &[f64],
    y: &[f64],
    start: usize,
) -> Vec<f64> {
    let _ = prog_b;
    let mut out = Vec::new();
    for t in replay_from(panel.n).max(start + 1)..panel.n {
        let season = model::fit_season(&prog_a[..t], panel.first_q);
        let (l, w) = model::level(&y[..t], start, &season, panel.first_q);
        let f = l * season.forecast_factor(panel.first_q, t, t);
        if w > 0.0 && f > 0.0 {
            out.push(y[t] / f);
        }
    }
    out
}

type PartnerErrors = (
    HashMap<Option<String>, (f64, f64, f64)>,
    HashMap<Option<String>, f64>,
);

/// Replays one-step forecasts of every partner over the history; pools the errors by tier.
fn partner_errors(panel: &Panel) -> PartnerErrors {
    let mut ratios_a: HashMap<Option<String>, Vec<f64>> = HashMap::new();
    let mut logs_b: HashMap<Option<String>, Vec<f64>> = HashMap::new();
    for t in replay_from(panel.n)..panel.n {
        let sb = model::fit_season_same_store(&panel.bookings, &panel.start, t, panel.first_q);
        let sa = model::fit_season_same_store(&panel.accrual, &panel.start, t, panel.first_q);
        let lb = model::shrunk_levels(
            &panel.bookings,
            t,
            &panel.start,
            &panel.tier,
            &sb,
            panel.first_q,
        );
        let la = model::shrunk_levels(
            &panel.accrual,
            t,
            &panel.start,
            &panel.tier,
            &sa,
            panel.first_q,
        );
        for p in 0..panel.partners.len() {
            if panel.start[p] + 1 > t {
                continue;
            }
            let fa = la[p] * sa.forecast_factor(panel.first_q, t, t);
            if fa > 0.0 {
                let r = panel.accrual[p][t] / fa;
                ratios_a.entry(panel.tier[p].clone()).or_default().push(r);
                ratios_a.entry(None).or_default().push(r);
            }
            let fb = lb[p] * sb.forecast_factor(panel.first_q, t, t);
            let yb = panel.bookings[p][t];
            if fb > 0.0 && yb > 0.0 {
                let e = (yb / fb).ln();
                logs_b.entry(panel.tier[p].clone()).or_default().push(e);
                logs_b.entry(None).or_default().push(e);
            }
        }
    }
    let pooled_q = |v: &Vec<f64>| {
        (
            model::quantile(v, 0.1).unwrap_or(0.5).min(1.0),
            model::quantile(v, 0.5).unwrap_or(1.0).clamp(0.5, 1.0),
            model::quantile(v, 0.9).unwrap_or(1.5).max(1.0),
        )
    };
    let all_q = ratios_a.get(&None).map(pooled_q).unwrap_or((0.5, 1.0, 1.5));
    let ra = ratios_a
        .iter()
        .map(|(k, v)| (k.clone(), if v.len() >= 30 { pooled_q(v) } else { all_q }))
        .collect();
    let sd = |v: &Vec<f64>| {
        let n = v.len() as f64;
        let m = v.iter().sum::<f64>() / n;
        (v.iter().map(|e| (e - m) * (e - m)).sum::<f64>() / (n - 1.0).max(1.0)).sqrt()
    };
    let all_sd = logs_b.get(&None).map(sd).unwrap_or(0.5);
    let sb = logs_b
        .iter()
        .map(|(k, v)| (k.clone(), if v.len() >= 30 { sd(v) } else { all_sd }))
        .collect();
    (ra, sb)
}

/// Replays the pipeline forecast of every quarter from the history (one quarter of
/// pipeline ratios at least) and pools the ratios actual / forecast of the non-SPIFF
/// accrual by tier (None = all): (q10, q50, q90), from 30 ratios on, else the pooled ones.
fn pipeline_errors(panel: &Panel) -> HashMap<Option<String>, (f64, f64, f64)> {
    let mut ratios: HashMap<Option<String>, Vec<f64>> = HashMap::new();
    for t in replay_from(panel.n).max(2)..panel.n {
        let f = model::pipeline_forecast(panel, t);
        for (p, &(_, fa)) in f.iter().enumerate() {
            if panel.start[p] + 1 > t || fa <= 0.0 {
                continue;
            }
            let r = panel.accrual[p][t] / fa;
            ratios.entry(panel.tier[p].clone()).or_default().push(r);
            ratios.entry(None).or_default().push(r);
        }
    }
    let q = |v: &Vec<f64>| {
        (
            model::quantile(v, 0.1).unwrap_or(0.5).min(1.0),
            model::quantile(v, 0.5).unwrap_or(1.0),
            model::quantile(v, 0.9).unwrap_or(1.5).max(1.0),
        )
    };
    let Some(all) = ratios.get(&None).map(q) else {
        return HashMap::new();
    };
    ratios
        .iter()
        .map(|(k, v)| (k.clone(), if v.len() >= 30 { q(v) } else { all }))
        .collect()
}

/// Units of each SPIFF's products per unit of bookings, per partner, over the last four
/// complete quarters (tier-pooled for partners without recent bookings).
fn spiff_rates(ds: &Dataset, panel: &Panel) -> Vec<SpiffRates> {
    if ds.plan.spiffs.is_empty() || panel.n == 0 {
        return Vec::new();
    }
    let family: HashMap<&str, &str> = ds
        .products
        .iter()
        .map(|p| (p.sku.as_str(), p.family.as_str()))
        .collect();
    let first = panel.first_q + panel.n.saturating_sub(4) as i32;
    let from = qbounds(first, panel.fy_start).0;
    let to = qbounds(panel.first_q + panel.n as i32 - 1, panel.fy_start).1;
    let np = panel.partners.len();
    let mut out = Vec::new();
    for sp in &ds.plan.spiffs {
        let mut units = vec![0.0; np];
        let mut amount = vec![0.0; np];
        for t in &ds.transactions {
            if t.kind != TransactionKind::Sale || t.closed_on < from || t.closed_on > to {
                continue;
            }
            let Some(&p) = panel.index.get(&t.partner_id) else {
                continue;
            };
            amount[p] += dec(t.amount);
            let fam = family.get(t.sku.as_str()).copied();
            let sku_ok = sp.sku.as_deref().is_none_or(|s| s == t.sku);
            let fam_ok = sp.family.as_deref().is_none_or(|f| Some(f) == fam);
            if sku_ok && fam_ok {
                units[p] += t.quantity as f64;
            }
        }
        let mut tier_tot: BTreeMap<Option<&str>, (f64, f64)> = BTreeMap::new();
        for p in 0..np {
            let e = tier_tot.entry(panel.tier[p].as_deref()).or_default();
            e.0 += units[p];
            e.1 += amount[p];
        }
        let rate = (0..np)
            .map(|p| {
                let tier = panel.tier[p].as_deref()?;
                if !sp.eligible_tiers.iter().any(|e| e == tier) {
                    return None;
                }
                if amount[p] > 0.0 {
                    Some(units[p] / amount[p])
                } else {
                    let (u, a) = tier_tot.get(&Some(tier)).copied().unwrap_or_default();
                    Some(if a > 0.0 { u / a } else { 0.0 })
                }
            })
            .collect();
        out.push(SpiffRates {
            from: sp.from,
            to: sp.to,
            amount_per_unit: dec(sp.amount_per_unit),
            rate,
        });
    }
    out
}

/// Forecast of bookings and accruals for the next `horizon_quarters` fiscal quarters
/// (the quarter in progress at `as_of` first, when there is one): the program, each
/// tier (its current members) and each partner, with 80% intervals of the accrual.
pub fn forecast(
    ds: &Dataset,
    lines: &[CommissionLine],
    horizon_quarters: usize,
) -> Vec<ForecastRow> {
    Fitted::new(ds, lines, ds.program.as_of).rows(horizon_quarters)
}

/// Monthly split of [`forecast`]: each quarter's figures spread over its months by the
/// typical share of a quarter's bookings done in each month (quarter-end peaks). The
/// period is `YYYY-MM`. For the quarter in progress the months carry only what is still
/// to come after `as_of` (the actuals so far are in [`history`]).
pub fn forecast_months(
    ds: &Dataset,
    lines: &[CommissionLine],
    horizon_quarters: usize,
) -> Vec<ForecastRow> {
    let fitted = Fitted::new(ds, lines, ds.program.as_of);
    let rows = fitted.rows(horizon_quarters);
    let panel = &fitted.panel;
    // Booked so far in the quarter in progress, per scope.
    let mut so_far: HashMap<String, (f64, f64)> = HashMap::new();
    if panel.partial_q.is_some() {
        let np = panel.partners.len();
        let mut add = |scope: String, members: &[usize]| {
            let b = members.iter().map(|&p| panel.partial_bookings[p]).sum();
            let a = members.iter().map(|&p| panel.partial_accrual[p]).sum();
            so_far.insert(scope, (b, a));
        };
        add("program".into(), &(0..np).collect::<Vec<_>>());
        for (t, m) in panel.tier_members(ds) {
            add(format!("tier:{t}"), &m);
        }
        for p in 0..np {
            add(format!("partner:{}", panel.partners[p]), &[p]);
        }
    }
    let mut out = Vec::new();
    for mut r in rows {
        let Some(q) = series::qidx_of_label(&r.period) else {
            continue;
        };
        if Some(q) == panel.partial_q {
            let (b, a) = so_far.get(&r.scope).copied().unwrap_or_default();
            let (b, a) = (money(b), money(a));
            r.bookings = (r.bookings - b).max(Decimal::ZERO);
            r.accrual -= a;
            r.lo -= a;
            r.hi -= a;
        }
        let (qs, qe) = qbounds(q, panel.fy_start);
        // Month boundaries inside the quarter, skipping days already past for the
        // quarter in progress.
        let mut m_start = qs;
        while m_start <= qe {
            let next = m_start
                .checked_add_months(chrono::Months::new(1))
                .unwrap_or(qe)
                .min(qe + chrono::Days::new(1));
            let m_end = next.pred_opt().unwrap_or(qe);
            let from = if Some(q) == panel.partial_q {
                m_start.max(panel.as_of + chrono::Days::new(1))
            } else {
                m_start
            };
            let done = Some(q) == panel.partial_q;
            let total_share = if done { 1.0 - fitted.done_share() } else { 1.0 };
            if from <= m_end && total_share > 0.0 {
                let share = panel.share_between((from - qs).num_days(), (m_end - qs).num_days())
                    / total_share;
                let s = Decimal::from_f64(share).unwrap_or(Decimal::ZERO);
                out.push(ForecastRow {
                    scope: r.scope.clone(),
                    period: m_start.format("%Y-%m").to_string(),
                    accrual: round_cents(r.accrual * s),
                    bookings: round_cents(r.bookings * s),
                    lo: round_cents(r.lo * s),
                    hi: round_cents(r.hi * s),
                });
            }
            m_start = next;
        }
    }
    out
}

/// Actual bookings and accruals per month and per fiscal quarter for the program, each
/// region, each tier (current members) and each partner: the history to chart next to
/// the forecast.
pub fn history(ds: &Dataset, lines: &[CommissionLine]) -> Vec<SeriesPoint> {
    let panel = Panel::build(ds, lines, ds.program.as_of);
    let np = panel.partners.len();
    let mut scopes: Vec<(String, Vec<usize>)> = vec![("program".into(), (0..np).collect())];
    let mut regions: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for p in 0..np {
        regions.entry(panel.region[p].as_str()).or_default().push(p);
    }
    for (r, m) in regions {
        scopes.push((format!("region:{r}"), m));
    }
    for (t, m) in panel.tier_members(ds) {
        scopes.push((format!("tier:{t}"), m));
    }
    for p in 0..np {
        scopes.push((format!("partner:{}", panel.partners[p]), vec![p]));
    }
    let monthly = series::monthly(ds, lines, &panel.index);
    let mut months: BTreeMap<&str, Vec<(usize, f64, f64)>> = BTreeMap::new();
    for ((m, p), (b, a)) in &monthly {
        months.entry(m.as_str()).or_default().push((*p, *b, *a));
    }
    let current_month = panel.as_of.format("%Y-%m").to_string();
    let month_complete = panel
        .as_of
        .succ_opt()
        .map(|d| d.format("%Y-%m").to_string())
        != Some(current_month.clone());
    let mut out = Vec::new();
    for (scope, members) in &scopes {
        let mut is_member = vec![false; np];
        members.iter().for_each(|&p| is_member[p] = true);
        for t in 0..panel.n {
            let b: f64 = members.iter().map(|&p| panel.bookings[p][t]).sum();
            let a: f64 = members
                .iter()
                .map(|&p| panel.accrual[p][t] + panel.spiff[p][t])
                .sum();
            out.push(point(
                scope,
                Granularity::Quarter,
                qlabel(panel.first_q + t as i32),
                b,
                a,
                true,
            ));
        }
        if let Some(q) = panel.partial_q {
            let b: f64 = members.iter().map(|&p| panel.partial_bookings[p]).sum();
            let a: f64 = members.iter().map(|&p| panel.partial_accrual[p]).sum();
            out.push(point(scope, Granularity::Quarter, qlabel(q), b, a, false));
        }
        for (m, vals) in &months {
            let (b, a) = vals
                .iter()
                .filter(|(p, _, _)| is_member[*p])
                .fold((0.0, 0.0), |acc, (_, b, a)| (acc.0 + b, acc.1 + a));
            let complete = *m != current_month.as_str() || month_complete;
            out.push(point(
                scope,
                Granularity::Month,
                m.to_string(),
                b,
                a,
                complete,
            ));
        }
    }
    out
}

fn point(
    scope: &str,
    g: Granularity,
    period: String,
    b: f64,
    a: f64,
    complete: bool,
) -> SeriesPoint {
    SeriesPoint {
        scope: scope.to_string(),
        granularity: g,
        period,
        bookings: money(b),
        accrual: money(a),
        complete,
    }
}
