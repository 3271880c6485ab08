//! Tier-attainment risk for the quarter in progress: the probability that each partner
//! reaches its quota (and keeps its tier) from what it booked so far, the share of a
//! quarter's bookings typically still to come, its forecast, and its open approved deal
//! registrations.

use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Serialize;

use super::model::norm_cdf;
use super::series::{dec, qbounds, qidx, qlabel};
use super::{money, Fitted};
use crate::model::{CommissionLine, Dataset, RegistrationStatus, TransactionKind};

/// Knobs of the risk view.
#[derive(Debug, Clone, PartialEq)]
pub struct RiskOptions {
    /// A partner keeps its tier when it books at least this share of its quota in the
    /// quarter. The data set carries no tier rule, so this is a setting (default 0.8).
    pub keep_tier_attainment: f64,
    /// A partner is at risk when its probability of reaching quota is below this (0.5).
    pub at_risk_below: f64,
}

impl Default for RiskOptions {
    fn default() -> Self {
        RiskOptions {
            keep_tier_attainment: 0.8,
            at_risk_below: 0.5,
        }
    }
}

/// The attainment outlook of one partner for the current quarter, with the numbers
/// behind it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PartnerRisk {
    pub partner_id: String,
    pub name: String,
    pub tier: Option<String>,
    /// Fiscal quarter `YYYY-Qn` containing `as_of`.
    pub period: String,
    pub quota: Decimal,
    /// Bookings (sales) closed in the quarter up to `as_of`.
    pub booked: Decimal,
    /// Share of a quarter's bookings typically done by this day of the quarter.
    pub typical_share_done: f64,
    /// Expected further bookings from the partner's usual run rate (outside registrations).
    pub expected_run_rate: Decimal,
    /// Open approved registrations (not yet closed, not expired at `as_of`).
    pub open_pipeline: Decimal,
    /// Part of the open pipeline expected to close in this quarter (historical conversion).
    pub expected_pipeline: Decimal,
    /// Booked + expected: the quarter's projected bookings.
    pub projected: Decimal,
    pub p_reach_quota: f64,
    pub p_keep_tier: f64,
    pub p_lose_tier: f64,
    pub at_risk: bool,
    /// One plain sentence with the numbers.
    pub reason: String,
}

/// Risk for the quarter containing `program.as_of`, default options, partners with a
/// quota for that quarter, least likely to reach quota first.
pub fn attainment_risk(ds: &Dataset, lines: &[CommissionLine]) -> Vec<PartnerRisk> {
    attainment_risk_with(ds, lines, ds.program.as_of, &RiskOptions::default())
}

/// Risk for the quarter containing `as_of`, using only what was known at `as_of`.
pub fn attainment_risk_with(
    ds: &Dataset,
    lines: &[CommissionLine],
    as_of: NaiveDate,
    opts: &RiskOptions,
) -> Vec<PartnerRisk> {
    let fitted = Fitted::new(ds, lines, as_of);
    let panel = &fitted.panel;
    let fy = panel.fy_start;
    let q = qidx(as_of, fy);
    let period = qlabel(q);
    let (qs, qe) = qbounds(q, fy);
    let (in_progress, done) = match panel.partial_q {
        Some(_) => (true, fitted.done_share()),
        None => (false, 1.0),
    };
    let rem = (1.0 - done).max(0.0);

    let quotas: HashMap<&str, Decimal> = ds
        .quotas
        .iter()
        .filter(|x| x.period == period)
        .map(|x| (x.partner_id.as_str(), x.quota))
        .collect();
    let lowest_rank = ds.tiers.iter().map(|t| t.rank).min();
    let rank: HashMap<&str, i64> = ds
        .tiers
        .iter()
        .map(|t| (t.tier_id.as_str(), t.rank))
        .collect();

    // Registrations: which were converted by a sale known at as_of; historical
    // conversion of resolved registrations; share of bookings that came through them.
    let mut cited: HashMap<&str, f64> = HashMap::new();
    let mut booked_total = 0.0;
    let mut booked_registered = 0.0;
    let hist_from = qbounds(q - 4, fy).0;
    for t in &ds.transactions {
        if t.kind != TransactionKind::Sale || t.closed_on > as_of {
            continue;
        }
        if let Some(r) = &t.registration_id {
            *cited.entry(r.as_str()).or_default() += dec(t.amount);
        }
        if t.closed_on >= hist_from && t.closed_on < qs {
            booked_total += dec(t.amount);
            if t.registration_id.is_some() {
                booked_registered += dec(t.amount);
            }
        }
    }
    let via_registrations = if booked_total > 0.0 {
        (booked_registered / booked_total).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let (mut conv_num, mut conv_den) = (0.0, 0.0);
    let mut open: HashMap<&str, (f64, f64)> = HashMap::new();
    let converted: HashSet<&str> = cited.keys().copied().collect();
    for r in &ds.registrations {
        if r.status != RegistrationStatus::Approved || r.registered_on > as_of {
            continue;
        }
        let amt = dec(r.expected_amount);
        if r.expires_on <= as_of {
            if r.expires_on >= hist_from {
                conv_den += amt;
                conv_num += cited
                    .get(r.registration_id.as_str())
                    .copied()
                    .unwrap_or(0.0);
            }
        } else if !converted.contains(r.registration_id.as_str()) {
            // Share of its remaining life that falls in this quarter.
            let life = (r.expires_on - as_of).num_days().max(1) as f64;
            let inside = (r.expires_on.min(qe) - as_of).num_days().max(0) as f64;
            let e = open.entry(r.partner_id.as_str()).or_default();
            e.0 += amt;
            e.1 += amt * inside / life;
        }
    }
    let conversion = if conv_den > 0.0 {
        (conv_num / conv_den).clamp(0.0, 1.5)
    } else {
        0.0
    };

    let mut out = Vec::new();
    for (p, partner) in ds.partners.iter().enumerate() {
        let Some(&quota) = quotas.get(partner.partner_id.as_str()) else {
            continue;
        };
        let Some(&pi) = panel.index.get(&partner.partner_id) else {
            continue;
        };
        debug_assert_eq!(p, pi);
        let booked = if in_progress {
            panel.partial_bookings[pi]
        } else {
            panel.bookings[pi].last().copied().unwrap_or(0.0)
        };
        let (run_rate, pipe_open, pipe_exp) = if in_progress {
            let full = fitted.partner_bookings(pi, panel.n);
            let (o, inq) = open
                .get(partner.partner_id.as_str())
                .copied()
                .unwrap_or_default();
            let pipeline_used = conversion > 0.0 && via_registrations > 0.0;
            // The registered share of the run rate is replaced by the open pipeline's
            // expected conversion when that is larger (a pipeline signals upside).
            let (run, pe) = if pipeline_used {
                let reg_part = rem * full * via_registrations;
                let pe = conversion * inq;
                if pe > reg_part {
                    (rem * full * (1.0 - via_registrations), pe)
                } else {
                    (rem * full, 0.0)
                }
            } else {
                (rem * full, 0.0)
            };
            (run, o, pe)
        } else {
            (0.0, 0.0, 0.0)
        };
        let mu = run_rate + pipe_exp;
        let tier = panel.tier[pi].clone();
        let sigma_q = fitted
            .partner_sigma_b
            .get(&tier)
            .or_else(|| fitted.partner_sigma_b.get(&None))
            .copied()
            .unwrap_or(0.5);
        let quota_f = dec(quota);
        let p_at_least = |x: f64| -> f64 {
            let need = x - booked;
            if need <= 0.0 {
                return 1.0;
            }
            if mu <= 0.0 || rem <= 0.0 {
                return 0.0;
            }
            let cv_q = ((sigma_q * sigma_q).exp() - 1.0).sqrt();
            let cv = (cv_q / rem.max(0.05).sqrt()).min(3.0);
            let s = (1.0 + cv * cv).ln().sqrt();
            let m = mu.ln() - s * s / 2.0;
            1.0 - norm_cdf((need.ln() - m) / s)
        };
        let (p_reach, p_keep) = if quota_f > 0.0 {
            let keep = match (&tier, lowest_rank) {
                (Some(t), Some(low)) if rank.get(t.as_str()).copied() == Some(low) => 1.0,
                (None, _) => 1.0,
                _ => p_at_least(opts.keep_tier_attainment * quota_f),
            };
            (p_at_least(quota_f), keep)
        } else {
            (1.0, 1.0)
        };
        let projected = booked + mu;
        let at_risk = p_reach < opts.at_risk_below;
        let cur = &ds.program.currency;
        let reason = format!(
            "Booked {} of a {} quota ({:.0}%) with {:.0}% of a typical quarter's bookings done; \
             expects {} more from its run rate and {} from {} of open approved registrations; \
             projected {} ({:.0}% of quota)",
            crate::money::format_money(money(booked), cur),
            crate::money::format_money(quota, cur),
            100.0 * booked / quota_f.max(f64::MIN_POSITIVE),
            100.0 * done,
            crate::money::format_money(money(run_rate), cur),
            crate::money::format_money(money(pipe_exp), cur),
            crate::money::format_money(money(pipe_open), cur),
            crate::money::format_money(money(projected), cur),
            100.0 * projected / quota_f.max(f64::MIN_POSITIVE),
        );
        out.push(PartnerRisk {
            partner_id: partner.partner_id.clone(),
            name: partner.name.clone(),
            tier,
            period: period.clone(),
            quota,
            booked: money(booked),
            typical_share_done: done,
            expected_run_rate: money(run_rate),
            open_pipeline: money(pipe_open),
            expected_pipeline: money(pipe_exp),
            projected: money(projected),
            p_reach_quota: p_reach,
            p_keep_tier: p_keep,
            p_lose_tier: 1.0 - p_keep,
            at_risk,
            reason,
        });
    }
    out.sort_by(|a, b| {
        a.p_reach_quota
            .total_cmp(&b.p_reach_quota)
            .then_with(|| a.partner_id.cmp(&b.partner_id))
    });
    out
}
