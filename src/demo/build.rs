//! The generator's state and the ordinary (non-anomalous) parts of a program:
//! tiers, products, policy, partners, tier history, quotas, registrations,
//! seasonal sales history, refunds and legitimate repeat orders.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate, Weekday};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;

use super::names;
use super::variant::Variant;
use super::{add_days, at, DemoOptions, Generated, Label};
use crate::model::*;
use crate::money::round_cents;

/// A partner while generating.
pub(crate) struct P {
    pub id: String,
    pub num: usize,
    pub kind: PartnerKind,
    pub parent: Option<usize>,
    pub region: &'static str,
    pub joined: NaiveDate,
    pub certs: Vec<String>,
    /// `(effective_from, tier index)`, ascending.
    pub timeline: Vec<(NaiveDate, usize)>,
    /// Median deal size at the lowest tier, in currency units.
    pub median: f64,
    pub customers: Vec<String>,
    pub fam_weights: Vec<f64>,
    /// Per family, the products this partner may sell (certified, active).
    pub allowed: Vec<Vec<usize>>,
}

impl P {
    pub fn tier_on(&self, d: NaiveDate) -> Option<usize> {
        self.timeline
            .iter()
            .rev()
            .find(|(from, _)| *from <= d)
            .map(|(_, t)| *t)
    }
}

pub(crate) struct Ctx {
    pub rng: ChaCha8Rng,
    pub v: Variant,
    pub as_of: NaiveDate,
    pub window_start: NaiveDate,
    pub history_start: NaiveDate,
    pub fy: u32,
    pub tiers: Vec<Tier>,
    pub products: Vec<Product>,
    pub product_family: Vec<usize>,
    /// `[tier][family]` maximum discount, percent.
    pub policy: Vec<Vec<u32>>,
    pub partners: Vec<P>,
    pub regs: Vec<Registration>,
    pub txs: Vec<Transaction>,
    pub orig: Vec<Option<usize>>,
    pub labels: Vec<Vec<AnomalyKind>>,
    pub touched: Vec<bool>,
    /// Invoice numbers issued so far.
    pub invoices: std::collections::HashSet<String>,
    days: Vec<NaiveDate>,
    day_cum: Vec<f64>,
    partner_cum: Vec<f64>,
}

pub(crate) fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = rng.gen_range(f64::EPSILON..1.0);
    let u2: f64 = rng.gen::<f64>();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

pub(crate) fn lognormal(rng: &mut ChaCha8Rng, sigma: f64) -> f64 {
    (sigma * normal(rng)).exp()
}

fn pick_cum(cum: &[f64], lo: f64, rng: &mut ChaCha8Rng) -> usize {
    let total = cum.last().copied().unwrap_or(0.0);
    if total <= lo {
        return cum.len().saturating_sub(1);
    }
    let u = rng.gen_range(lo..total);
    cum.partition_point(|c| *c <= u).min(cum.len() - 1)
}

/// Net unit price after a discount in basis points, rounded to cents.
pub(crate) fn net_price(list: Decimal, bp: i64) -> Decimal {
    round_cents(list * Decimal::from(10_000 - bp) / Decimal::from(10_000))
}

fn quarter_end(d: NaiveDate, fy: u32) -> NaiveDate {
    let (y, q) = fiscal_year_quarter(d, fy);
    fiscal_quarter_bounds(y, q, fy).1
}

pub(crate) fn quarter_start(d: NaiveDate, fy: u32) -> NaiveDate {
    let (y, q) = fiscal_year_quarter(d, fy);
    fiscal_quarter_bounds(y, q, fy).0
}

impl Ctx {
    fn new(opts: &DemoOptions) -> Ctx {
        let v = Variant::new(opts.variant);
        let mix = opts.seed ^ (u64::from(opts.variant).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let rng = ChaCha8Rng::seed_from_u64(mix);
        let as_of = opts.as_of;
        let first_of_month = as_of.with_day(1).unwrap_or(as_of);
        let window_start = first_of_month
            .checked_sub_months(chrono::Months::new(1))
            .unwrap_or(first_of_month);
        let history_start = add_days(as_of, -729);
        let fy = v.fiscal_year_start_month;
        Ctx {
            rng,
            v,
            as_of,
            window_start,
            history_start,
            fy,
            tiers: Vec::new(),
            products: Vec::new(),
            product_family: Vec::new(),
            policy: Vec::new(),
            partners: Vec::new(),
            regs: Vec::new(),
            txs: Vec::new(),
            orig: Vec::new(),
            labels: Vec::new(),
            touched: Vec::new(),
            invoices: Default::default(),
            days: Vec::new(),
            day_cum: Vec::new(),
            partner_cum: Vec::new(),
        }
    }

    pub fn currency(&self) -> &'static str {
        self.v.currency
    }

    pub fn tier_scale(t: usize) -> f64 {
        1.6f64.powi(t as i32)
    }

    pub fn base_median(&self) -> f64 {
        6_000.0 * self.v.size_scale
    }

    fn build_catalogue(&mut self) {
        self.tiers = self
            .v
            .tiers
            .iter()
            .enumerate()
            .map(|(i, (id, name))| Tier {
                tier_id: id.to_string(),
                name: name.to_string(),
                rank: i as i64 + 1,
            })
            .collect();
        let per_family = 8 + self.rng.gen_range(0..5);
        let mut sku = 1000;
        let families = self.v.families.clone();
        for (fi, f) in families.iter().enumerate() {
            for k in 0..per_family {
                let (lo, hi) = f.price;
                // Prices cluster toward the cheap end, in round tens (5s for services).
                let u: f64 = self.rng.gen::<f64>().powf(1.8);
                let raw = f64::from(lo) + u * f64::from(hi - lo);
                let step = if f.name == "services" { 5.0 } else { 10.0 };
                let price = ((raw / step).round() * step).max(step) as i64;
                let scaled = ((price as f64) * self.v.size_scale.sqrt()).round().max(1.0) as i64;
                let cert = match &f.certification {
                    Some(c) if self.rng.gen_bool(f.cert_share.clamp(0.0, 1.0)) => Some(c.clone()),
                    _ => None,
                };
                // A few discontinued products (never sold in the generated window).
                let active = !(k == per_family - 1 && self.rng.gen_bool(0.3));
                self.products.push(Product {
                    sku: format!("{}-{sku}", f.prefix),
                    name: format!("{} {} {}", title(f.name), model_word(k), sku),
                    family: f.name.to_string(),
                    list_price: Decimal::new(scaled * 10, 1),
                    certification_required: cert,
                    active,
                });
                self.product_family.push(fi);
                sku += 1;
            }
        }
        self.policy = (0..self.tiers.len())
            .map(|t| {
                families
                    .iter()
                    .map(|f| (f.base_discount + self.v.discount_step * t as u32).min(70))
                    .collect()
            })
            .collect();
    }

    fn build_partners(&mut self, n: usize) {
        let n = n.max(2);
        let n_dist = ((n as f64 / 18.0).round() as usize).clamp(1, n - 1);
        let ntiers = self.tiers.len();
        let regions = self.v.regions.clone();
        let certs_all: Vec<String> = {
            let mut c: Vec<String> = self
                .v
                .families
                .iter()
                .filter_map(|f| f.certification.clone())
                .collect();
            c.sort();
            c.dedup();
            c
        };
        let mut dist_by_region: BTreeMap<&'static str, Vec<usize>> = BTreeMap::new();
        let nfam = self.v.families.len();
        for i in 0..n {
            let is_dist = i < n_dist;
            let region = regions[if is_dist {
                i % regions.len()
            } else {
                self.rng.gen_range(0..regions.len())
            }];
            let num = if is_dist { i + 1 } else { i - n_dist + 1 };
            let id = if is_dist {
                format!("D{num:04}")
            } else {
                format!("R{num:05}")
            };
            // Joined: most before the history starts, some during it.
            let joined = if self.rng.gen_bool(0.85) || is_dist {
                add_days(self.history_start, -self.rng.gen_range(30..2900))
            } else {
                add_days(self.history_start, self.rng.gen_range(0..500))
            };
            // Tiers: distributors at the top, resellers weighted toward the low tiers.
            let tier = if is_dist {
                ntiers - 1 - usize::from(ntiers > 3 && self.rng.gen_bool(0.3))
            } else {
                let u: f64 = self.rng.gen::<f64>().powf(1.7);
                ((u * ntiers as f64) as usize).min(ntiers - 1)
            };
            let mut timeline = vec![(joined, tier)];
            if !is_dist && self.rng.gen_bool(0.28) {
                let lo = add_days(joined.max(self.history_start), 60);
                let hi = add_days(self.window_start, -20);
                if lo < hi {
                    let span = (hi - lo).num_days();
                    let when = add_days(lo, self.rng.gen_range(0..span));
                    let up = self.rng.gen_bool(0.7);
                    let nt = if up && tier + 1 < ntiers {
                        tier + 1
                    } else if tier > 0 {
                        tier - 1
                    } else {
                        tier + 1
                    };
                    if nt < ntiers && nt != tier {
                        timeline.push((when, nt));
                    }
                }
            }
            let certs = if is_dist {
                certs_all.clone()
            } else {
                let p = 0.25 + 0.15 * tier as f64;
                certs_all
                    .iter()
                    .filter(|_| self.rng.gen_bool(p.min(0.95)))
                    .cloned()
                    .collect()
            };
            let median = self.base_median()
                * lognormal(&mut self.rng, 0.45)
                * if is_dist { 2.5 } else { 1.0 };
            let ncust = if is_dist {
                self.rng.gen_range(30..80)
            } else {
                self.rng.gen_range(6..40)
            };
            let customers = (0..ncust)
                .map(|_| names::customer_name(&mut self.rng, region))
                .collect();
            let fam_weights = self
                .v
                .families
                .iter()
                .map(|f| f.weight * lognormal(&mut self.rng, 0.6))
                .collect();
            let mut allowed = vec![Vec::new(); nfam];
            for (pi, pr) in self.products.iter().enumerate() {
                let ok = pr.active
                    && pr
                        .certification_required
                        .as_ref()
                        .is_none_or(|c| certs.contains(c));
                if ok {
                    allowed[self.product_family[pi]].push(pi);
                }
            }
            let parent = if is_dist {
                None
            } else if self.rng.gen_bool(0.8) {
                dist_by_region
                    .get(region)
                    .and_then(|v| v.choose(&mut self.rng).copied())
                    .or_else(|| Some(self.rng.gen_range(0..n_dist)))
            } else {
                None
            };
            if is_dist {
                dist_by_region.entry(region).or_default().push(i);
            }
            self.partners.push(P {
                id,
                num,
                kind: if is_dist {
                    PartnerKind::Distributor
                } else {
                    PartnerKind::Reseller
                },
                parent,
                region,
                joined,
                certs,
                timeline,
                median,
                customers,
                fam_weights,
                allowed,
            });
        }
        let mut acc = 0.0;
        self.partner_cum = self
            .partners
            .iter()
            .map(|p| {
                // Distributors mostly earn overrides on their resellers' sales and
                // report only the odd direct deal of their own.
                let w = lognormal(&mut self.rng, 0.8)
                    * if p.kind == PartnerKind::Distributor {
                        0.3
                    } else {
                        1.0
                    };
                acc += w;
                acc
            })
            .collect();
    }

    fn build_calendar(&mut self) {
        let len = (self.as_of - self.history_start).num_days() + 1;
        let mut acc = 0.0;
        for i in 0..len {
            let d = add_days(self.history_start, i);
            let to_qe = (quarter_end(d, self.fy) - d).num_days();
            let mut w = 1.0 + 0.35 * i as f64 / len as f64;
            if to_qe < 14 {
                w *= 1.0 + 1.4 * (1.0 - to_qe as f64 / 14.0);
            }
            if d.month() == 12 {
                w *= 1.5;
            }
            if matches!(d.weekday(), Weekday::Sat | Weekday::Sun) {
                w *= 0.25;
            }
            acc += w;
            self.days.push(d);
            self.day_cum.push(acc);
        }
    }

    /// Share of all sales closed in the review window (for sizing the injections).
    fn window_share(&self) -> f64 {
        let total = self.day_cum.last().copied().unwrap_or(1.0);
        let i = self.days.partition_point(|d| *d < self.window_start);
        let before = if i == 0 { 0.0 } else { self.day_cum[i - 1] };
        (total - before) / total
    }

    fn pick_day_from(&mut self, from: NaiveDate) -> NaiveDate {
        let i = self.days.partition_point(|d| *d < from);
        let lo = if i == 0 { 0.0 } else { self.day_cum[i - 1] };
        let k = pick_cum(&self.day_cum, lo, &mut self.rng);
        self.days[k]
    }

    pub fn pick_family(&mut self, p: usize) -> usize {
        let w = &self.partners[p].fam_weights;
        let allowed = &self.partners[p].allowed;
        let total: f64 = w
            .iter()
            .zip(allowed)
            .filter(|(_, a)| !a.is_empty())
            .map(|(w, _)| *w)
            .sum();
        let mut u = self.rng.gen_range(0.0..total.max(f64::MIN_POSITIVE));
        for (i, (wi, a)) in w.iter().zip(allowed).enumerate() {
            if a.is_empty() {
                continue;
            }
            if u < *wi {
                return i;
            }
            u -= wi;
        }
        allowed.iter().position(|a| !a.is_empty()).unwrap_or(0)
    }

    /// A submission timestamp shortly after the close (never after `as_of`).
    pub fn submit_after(&mut self, closed: NaiveDate, min_days: i64, max_days: i64) -> DateTime {
        let delay = if max_days <= min_days {
            min_days
        } else {
            self.rng.gen_range(min_days..=max_days)
        };
        let d = add_days(closed, delay).min(self.as_of).max(closed);
        let secs = self.rng.gen_range(7 * 3600..21 * 3600);
        at(d, secs)
    }

    pub fn prompt_delay(&mut self) -> i64 {
        // Mostly same day to three days; a long tail to twelve.
        let u: f64 = self.rng.gen();
        ((-(1.0 - u).ln() * 1.3) as i64).min(12)
    }

    pub fn policy_max(&self, p: usize, d: NaiveDate, family: usize) -> Option<u32> {
        self.partners[p].tier_on(d).map(|t| self.policy[t][family])
    }

    /// A discount within policy (basis points), usually well inside it.
    pub fn legal_bp(&mut self, max_pct: u32) -> i64 {
        if self.rng.gen_bool(0.12) {
            return 0;
        }
        let max_bp = (i64::from(max_pct) * 100 - 60).max(0);
        let u: f64 = self.rng.gen::<f64>().powf(1.3);
        (u * max_bp as f64) as i64
    }

    pub fn notes(&mut self) -> Option<String> {
        if self.rng.gen_bool(0.3) {
            Some(String::new())
        } else {
            let n = names::NOTES[self.rng.gen_range(0..names::NOTES.len())];
            Some(n.to_string())
        }
    }

    /// A new invoice number of partner `p` (an ERP never issues one twice).
    pub fn invoice(&mut self, p: usize) -> String {
        let num = self.partners[p].num;
        loop {
            let n = format!("INV-{num:05}-{:06}", self.rng.gen_range(100_000..1_000_000));
            if self.invoices.insert(n.clone()) {
                return n;
            }
        }
    }

    /// A product of this family the partner may sell, preferring prices near the target.
    pub fn pick_product(&mut self, p: usize, fam: usize, target: f64) -> Option<usize> {
        let list = &self.partners[p].allowed[fam];
        if list.is_empty() {
            return None;
        }
        let mut best = list[self.rng.gen_range(0..list.len())];
        for _ in 0..2 {
            let price = dec_f64(self.products[best].list_price);
            if price * 1.5 <= target {
                break;
            }
            best = list[self.rng.gen_range(0..list.len())];
        }
        Some(best)
    }

    /// Sets product, price, quantity and amount of a sale for a target amount.
    pub fn price_sale(&mut self, t: &mut Transaction, product: usize, bp: i64, target: f64) {
        let pr = &self.products[product];
        t.sku = pr.sku.clone();
        t.unit_list_price = pr.list_price;
        t.unit_net_price = net_price(pr.list_price, bp);
        let unit = dec_f64(t.unit_net_price).max(0.01);
        let q = (target / unit).round().clamp(1.0, 1_000_000.0) as i64;
        t.quantity = q;
        t.amount = t.unit_net_price * Decimal::from(q);
    }

    /// An ordinary sale by partner `p` closed on `closed`; `None` when the partner
    /// has no tier or nothing to sell on that day.
    pub fn ordinary_sale(&mut self, p: usize, closed: NaiveDate) -> Option<Transaction> {
        let tier = self.partners[p].tier_on(closed)?;
        let fam = self.pick_family(p);
        let target =
            self.partners[p].median * Self::tier_scale(tier) * lognormal(&mut self.rng, 0.75);
        let product = self.pick_product(p, fam, target)?;
        let bp = self.legal_bp(self.policy[tier][fam]);
        let ncust = self.partners[p].customers.len();
        let ci = ((self.rng.gen::<f64>().powi(2)) * ncust as f64) as usize;
        let customer = self.partners[p].customers[ci.min(ncust.saturating_sub(1))].clone();
        let delay = self.prompt_delay();
        let submitted_at = self.submit_after(closed, delay, delay);
        let mut t = Transaction {
            transaction_id: String::new(),
            kind: TransactionKind::Sale,
            original_transaction_id: None,
            partner_id: self.partners[p].id.clone(),
            registration_id: None,
            customer_name: customer,
            sku: String::new(),
            quantity: 0,
            unit_list_price: Decimal::ZERO,
            unit_net_price: Decimal::ZERO,
            amount: Decimal::ZERO,
            currency: self.currency().to_string(),
            closed_on: closed,
            submitted_at,
            invoice_number: self.invoice(p),
            notes: self.notes(),
        };
        self.price_sale(&mut t, product, bp, target);
        if t.amount >= self.v.registration_threshold || self.rng.gen_bool(0.15) {
            let reg = self.new_registration(
                p,
                &t.customer_name.clone(),
                t.amount,
                closed,
                RegistrationStatus::Approved,
            );
            t.registration_id = Some(reg);
        }
        Some(t)
    }

    /// A registration by partner `p` valid on `closed` (registered 5-80 days before).
    pub fn new_registration(
        &mut self,
        p: usize,
        customer: &str,
        amount: Decimal,
        closed: NaiveDate,
        status: RegistrationStatus,
    ) -> String {
        let registered_on = add_days(closed, -self.rng.gen_range(5..80));
        self.push_registration(p, customer, amount, registered_on, 90, status)
    }

    pub fn push_registration(
        &mut self,
        p: usize,
        customer: &str,
        amount: Decimal,
        registered_on: NaiveDate,
        valid_days: i64,
        status: RegistrationStatus,
    ) -> String {
        let factor = Decimal::from(self.rng.gen_range(80..125)) / Decimal::ONE_HUNDRED;
        let expected = (amount * factor).round();
        let id = format!("REG{:07}", self.regs.len() + 1);
        self.regs.push(Registration {
            registration_id: id.clone(),
            partner_id: self.partners[p].id.clone(),
            customer_name: customer.to_string(),
            expected_amount: expected,
            registered_on,
            expires_on: add_days(registered_on, valid_days),
            status,
        });
        id
    }

    pub fn push(&mut self, t: Transaction, orig: Option<usize>, kinds: Vec<AnomalyKind>) -> usize {
        self.txs.push(t);
        self.orig.push(orig);
        self.touched.push(!kinds.is_empty());
        self.labels.push(kinds);
        self.txs.len() - 1
    }

    fn base_sales(&mut self, n: usize) {
        let mut tries = 0;
        while self.txs.len() < n && tries < n * 4 + 100 {
            tries += 1;
            let p = pick_cum(&self.partner_cum, 0.0, &mut self.rng);
            let from = self.partners[p].joined.max(self.history_start);
            let closed = self.pick_day_from(from);
            if let Some(t) = self.ordinary_sale(p, closed) {
                self.push(t, None, Vec::new());
            }
        }
    }

    /// Unrelated registrations that never became a reported sale.
    fn noise_registrations(&mut self, n: usize) {
        for _ in 0..n {
            let p = self.rng.gen_range(0..self.partners.len());
            let c = self.partners[p].customers[0].clone();
            let when = add_days(self.history_start, self.rng.gen_range(0..700));
            let status = match self.rng.gen_range(0..10) {
                0..=3 => RegistrationStatus::Rejected,
                4..=7 => RegistrationStatus::Expired,
                _ => RegistrationStatus::Approved,
            };
            let amount = Decimal::from((self.base_median() * 4.0) as i64);
            self.push_registration(p, &c, amount, when, 90, status);
        }
    }

    fn quarters(&self) -> Vec<(String, NaiveDate, NaiveDate)> {
        let mut out = Vec::new();
        let mut d = quarter_start(self.history_start, self.fy);
        while d <= self.as_of {
            let (y, q) = fiscal_year_quarter(d, self.fy);
            let (s, e) = fiscal_quarter_bounds(y, q, self.fy);
            out.push((format!("{y}-Q{q}"), s, e));
            d = add_days(e, 1);
        }
        out
    }

    fn quotas(&mut self) -> Vec<Quota> {
        let quarters = self.quarters();
        let mut bookings = vec![Decimal::ZERO; self.partners.len()];
        let mut by_id: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, p) in self.partners.iter().enumerate() {
            by_id.insert(p.id.as_str(), i);
        }
        for t in &self.txs {
            if let Some(&i) = by_id.get(t.partner_id.as_str()) {
                bookings[i] += t.amount;
            }
        }
        let mut out = Vec::new();
        for (i, p) in self.partners.iter().enumerate() {
            if self.rng.gen_bool(0.05) {
                continue;
            }
            let active: Vec<&(String, NaiveDate, NaiveDate)> =
                quarters.iter().filter(|(_, _, e)| *e >= p.joined).collect();
            if active.is_empty() {
                continue;
            }
            let avg = bookings[i] / Decimal::from(active.len());
            let floor = Decimal::from((1000.0 * self.v.size_scale) as i64 + 100);
            for (period, _, _) in active {
                let f = Decimal::from(self.rng.gen_range(80..118)) / Decimal::ONE_HUNDRED;
                let q = ((avg * f) / Decimal::ONE_HUNDRED).round() * Decimal::ONE_HUNDRED;
                out.push(Quota {
                    partner_id: p.id.clone(),
                    period: period.clone(),
                    quota: q.max(floor),
                });
            }
        }
        out
    }

    /// Candidates for an injection: untouched sales submitted in the window (or in
    /// history), shuffled.
    pub fn candidates(&mut self, window: bool) -> Vec<usize> {
        let hist_from = add_days(self.history_start, 120);
        let mut c: Vec<usize> = (0..self.txs.len())
            .filter(|&i| {
                let t = &self.txs[i];
                if self.touched[i] || t.kind != TransactionKind::Sale {
                    return false;
                }
                let d = t.submitted_at.date_naive();
                if window {
                    d >= self.window_start && d <= self.as_of
                } else {
                    d >= hist_from && d < self.window_start
                }
            })
            .collect();
        c.shuffle(&mut self.rng);
        c
    }

    /// Refunds of earlier ordinary sales, inside and outside the clawback window.
    fn refunds(&mut self, n: usize) {
        let mut cand = self.candidates(false);
        cand.extend(self.candidates(true));
        cand.shuffle(&mut self.rng);
        let cw = self.v.clawback_window_days;
        let mut made = 0;
        for i in cand {
            if made >= n {
                break;
            }
            let s = self.txs[i].clone();
            let days = if self.rng.gen_bool(0.7) {
                self.rng.gen_range(3..(cw - 3).max(4))
            } else {
                self.rng.gen_range(cw + 3..cw + 160)
            };
            // A credit note follows the sale's submission, never precedes it.
            let closed = add_days(s.closed_on, days).max(add_days(s.submitted_at.date_naive(), 1));
            if closed > self.as_of {
                continue;
            }
            let k = if s.quantity > 1 && self.rng.gen_bool(0.3) {
                self.rng.gen_range(1..s.quantity)
            } else {
                s.quantity
            };
            let secs = self.rng.gen_range(0..86_400);
            let r = Transaction {
                transaction_id: String::new(),
                kind: TransactionKind::Refund,
                original_transaction_id: None,
                registration_id: None,
                quantity: -k,
                amount: -(s.unit_net_price * Decimal::from(k)),
                closed_on: closed,
                submitted_at: at(closed, secs),
                invoice_number: s.invoice_number.replacen("INV", "CN", 1),
                notes: Some(
                    [
                        "credit note",
                        "return: damaged on arrival",
                        "customer cancelled",
                    ][self.rng.gen_range(0..3)]
                    .to_string(),
                ),
                ..s
            };
            self.touched[i] = true;
            self.push(r, Some(i), Vec::new());
            made += 1;
        }
    }

    /// Legitimate repeat orders (same customer and product months later) and
    /// prompt quarter-end rushes: realistic non-anomalies next to the anomalies.
    fn legit_lookalikes(&mut self, n: usize) {
        let mut cand = self.candidates(true);
        cand.extend(self.candidates(false).into_iter().take(n));
        let mut by_partner: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (k, t) in self.txs.iter().enumerate() {
            if t.kind == TransactionKind::Sale && self.labels[k].is_empty() {
                by_partner.entry(t.partner_id.as_str()).or_default().push(k);
            }
        }
        let by_partner: BTreeMap<String, Vec<usize>> = by_partner
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        let mut made = 0;
        let mut rushes: BTreeMap<(usize, NaiveDate), usize> = BTreeMap::new();
        while made < n {
            let Some(i) = cand.pop() else { break };
            let Some(j) = cand.pop() else { break };
            // i becomes a repeat order of an earlier sale of the same partner:
            // same customer, product, quantity and price, 2-8 months later.
            let p_id = self.txs[i].partner_id.clone();
            let pi = self.partner_index(&p_id);
            let later = self.txs[i].closed_on;
            let earlier = by_partner.get(&p_id).and_then(|v| {
                v.iter().copied().find(|&k| {
                    let gap = (later - self.txs[k].closed_on).num_days();
                    (60..=240).contains(&gap)
                })
            });
            if let Some(k) = earlier {
                let e = self.txs[k].clone();
                let fam = self
                    .products
                    .iter()
                    .position(|p| p.sku == e.sku)
                    .map(|x| self.product_family[x]);
                let bp = super::discount_bp(e.unit_list_price, e.unit_net_price);
                let within = fam
                    .and_then(|f| self.policy_max(pi, later, f))
                    .is_some_and(|m| bp < i64::from(m) * 100);
                if within {
                    let t = &mut self.txs[i];
                    t.customer_name = e.customer_name;
                    t.sku = e.sku;
                    t.quantity = e.quantity;
                    t.unit_list_price = e.unit_list_price;
                    t.unit_net_price = e.unit_net_price;
                    t.amount = e.amount;
                    t.registration_id = None;
                    if t.amount >= self.v.registration_threshold {
                        let amt = t.amount;
                        let cust = t.customer_name.clone();
                        let reg = self.new_registration(
                            pi,
                            &cust,
                            amt,
                            later,
                            RegistrationStatus::Approved,
                        );
                        self.txs[i].registration_id = Some(reg);
                    }
                    self.touched[i] = true;
                    made += 1;
                }
            }
            // j: a quarter-end rush closed on the last day, submitted promptly.
            let t = &self.txs[j];
            let qe = quarter_end(t.closed_on, self.fy);
            let qe = if qe > self.as_of {
                add_days(quarter_start(t.closed_on, self.fy), -1)
            } else {
                qe
            };
            let pj = self.partner_index(&t.partner_id.clone());
            // An ordinary rush: at most two of a partner's sales moved to one quarter end
            // (more would be a cluster, which is an anomaly of its own).
            let rushed = rushes.get(&(pj, qe)).copied().unwrap_or(0);
            if self.partners[pj].tier_on(qe) == self.partners[pj].tier_on(t.closed_on)
                && t.registration_id.is_none()
                && qe >= self.history_start
                && qe >= self.partners[pj].joined
                && rushed < 2
            {
                *rushes.entry((pj, qe)).or_default() += 1;
                let sub = self.submit_after(qe, 0, 3);
                let t = &mut self.txs[j];
                t.closed_on = qe;
                t.submitted_at = sub;
                t.notes = Some("Q-end push".to_string());
                self.touched[j] = true;
            }
        }
    }

    /// A few prompt-injection notes on otherwise ordinary transactions.
    fn injection_notes(&mut self) {
        let mut cand = self.candidates(true);
        let n = (self.txs.len() / 4000).clamp(3, 40);
        for k in 0..n {
            let Some(i) = cand.pop() else { break };
            self.txs[i].notes = Some(names::INJECTIONS[k % names::INJECTIONS.len()].to_string());
        }
    }

    pub fn partner_index(&self, id: &str) -> usize {
        self.partners.iter().position(|p| p.id == id).unwrap_or(0)
    }

    fn finish(mut self, opts: &DemoOptions, quotas: Vec<Quota>, erp: Vec<ErpInvoice>) -> Generated {
        // Transaction ids in submission order, as a PRM numbers them.
        let mut order: Vec<usize> = (0..self.txs.len()).collect();
        order.sort_by(|&a, &b| {
            (self.txs[a].submitted_at, &self.txs[a].partner_id, a).cmp(&(
                self.txs[b].submitted_at,
                &self.txs[b].partner_id,
                b,
            ))
        });
        let mut ids = vec![String::new(); self.txs.len()];
        for (n, &i) in order.iter().enumerate() {
            ids[i] = format!("T{:08}", n + 1);
        }
        let mut txs = Vec::with_capacity(self.txs.len());
        let mut labels = Vec::new();
        let old = std::mem::take(&mut self.txs);
        let mut slots: Vec<Option<Transaction>> = old.into_iter().map(Some).collect();
        for &i in &order {
            let Some(mut t) = slots[i].take() else {
                continue;
            };
            t.transaction_id = ids[i].clone();
            t.original_transaction_id = self.orig[i].map(|o| ids[o].clone());
            if !self.labels[i].is_empty() {
                let mut kinds = self.labels[i].clone();
                kinds.sort();
                kinds.dedup();
                labels.push(Label {
                    transaction_id: t.transaction_id.clone(),
                    kinds,
                });
            }
            txs.push(t);
        }
        let window = crate::model::ReviewWindow {
            start: self.window_start,
            end: self.as_of,
        };
        let program = Program {
            program_id: format!("demo-{}-{}", opts.variant, opts.seed),
            name: format!("Demo channel program (variant {})", opts.variant),
            currency: self.v.currency.to_string(),
            fiscal_year_start_month: self.fy,
            as_of: self.as_of,
            review_window: window,
        };
        let plan = super::commissions::plan(&self.v, &self.tiers, window, self.fy);
        let partners = self
            .partners
            .iter()
            .map(|p| Partner {
                partner_id: p.id.clone(),
                name: String::new(),
                kind: p.kind,
                parent_partner_id: p.parent.map(|i| self.partners[i].id.clone()),
                region: p.region.to_string(),
                country: None,
                joined_on: p.joined,
                certifications: p.certs.clone(),
                tax_id: None,
                bank_account: None,
            })
            .collect::<Vec<_>>();
        let partners = self.personal_data(partners);
        let tier_history = self
            .partners
            .iter()
            .flat_map(|p| {
                p.timeline.iter().map(|(from, t)| TierHistory {
                    partner_id: p.id.clone(),
                    tier_id: self.tiers[*t].tier_id.clone(),
                    effective_from: *from,
                })
            })
            .collect();
        let discount_policy = self
            .policy
            .iter()
            .enumerate()
            .flat_map(|(t, fams)| fams.iter().enumerate().map(move |(f, pct)| (t, f, *pct)))
            .map(|(t, f, pct)| DiscountPolicy {
                tier_id: self.tiers[t].tier_id.clone(),
                family: self.v.families[f].name.to_string(),
                max_discount_pct: Decimal::from(pct),
            })
            .collect();
        let mut dataset = Dataset {
            program,
            plan,
            tiers: self.tiers.clone(),
            products: self.products.clone(),
            discount_policy,
            partners,
            tier_history,
            quotas,
            registrations: std::mem::take(&mut self.regs),
            transactions: txs,
            commissions: Vec::new(),
            erp_invoices: Some(erp),
        };
        let variance: Vec<&str> = labels
            .iter()
            .filter(|l| l.kinds.contains(&AnomalyKind::CommissionVariance))
            .map(|l| l.transaction_id.as_str())
            .collect();
        let expected = super::commissions::recalculated_lines(&dataset);
        dataset.commissions =
            super::commissions::prm_lines(&expected, &variance, &dataset, &mut self.rng);
        labels.sort_by(|a, b| a.transaction_id.cmp(&b.transaction_id));
        Generated {
            dataset,
            labels,
            expected_commissions: expected,
        }
    }

    fn personal_data(&mut self, mut partners: Vec<Partner>) -> Vec<Partner> {
        for (p, g) in partners.iter_mut().zip(&self.partners) {
            p.name = names::partner_name(&mut self.rng, g.region);
            p.country = if self.rng.gen_bool(0.6) {
                let c: &[&str] = match g.region {
                    "NA" | "AMER" => &["US", "CA"],
                    "EMEA" => &["DE", "NL", "GB", "FR", "SE"],
                    "MEA" => &["AE", "ZA", "SA"],
                    "APAC" | "APJ" => &["SG", "JP", "IN", "KR"],
                    "ANZ" => &["AU", "NZ"],
                    "LATAM" => &["BR", "MX", "CO"],
                    _ => &["US"],
                };
                Some(c[self.rng.gen_range(0..c.len())].to_string())
            } else {
                None
            };
            p.tax_id = Some(format!(
                "{:02}-{:07}",
                self.rng.gen_range(10..99),
                self.rng.gen_range(0..10_000_000)
            ));
            // A valid ABA routing number (its ninth digit the check digit); one partner in
            // thirty has a mistyped one, which the payee checks hold.
            let first8 = format!("{:08}", self.rng.gen_range(1_000_000..32_999_999));
            let check = crate::payout::checks::aba_check_digit(&first8).unwrap_or(0);
            let check = if self.rng.gen_bool(1.0 / 30.0) {
                (check + 1) % 10
            } else {
                check
            };
            p.bank_account = Some(BankAccount {
                routing_number: format!("{first8}{check}"),
                account_number: format!("{}", self.rng.gen_range(1_000_000_000u64..99_999_999_999)),
                account_name: ["Operating", "Commissions", "Main"][self.rng.gen_range(0..3)]
                    .to_string(),
            });
        }
        partners
    }
}

type DateTime = chrono::DateTime<chrono::Utc>;

pub(crate) fn dec_f64(d: Decimal) -> f64 {
    use rust_decimal::prelude::ToPrimitive;
    d.to_f64().unwrap_or(0.0)
}

fn title(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

fn model_word(k: usize) -> &'static str {
    [
        "Edge", "Core", "Pro", "Max", "Lite", "Plus", "Flex", "One", "Ultra", "Prime", "Go", "X",
    ][k % 12]
}

/// Injection sizing: how many of each kind, given the expected window sales.
pub(crate) struct Plan {
    pub per_kind: BTreeMap<AnomalyKind, usize>,
    pub hist_per_kind: BTreeMap<AnomalyKind, usize>,
    pub split_groups: usize,
    pub hist_split_groups: usize,
}

pub(crate) fn generate(opts: &DemoOptions) -> Generated {
    let mut c = Ctx::new(opts);
    c.build_catalogue();
    c.build_partners(opts.partners);
    c.build_calendar();
    let n = opts.transactions.max(50);
    let est_window = (n as f64 * c.window_share()).max(1.0);
    let rate = |k: AnomalyKind| match k {
        AnomalyKind::DealSizeTier => 0.004,
        AnomalyKind::DiscountPolicy => 0.006,
        AnomalyKind::UncertifiedProduct => 0.004,
        AnomalyKind::Duplicate => 0.006,
        AnomalyKind::Backdated => 0.005,
        AnomalyKind::SplitDeals => 0.0025, // groups of 2-4
        AnomalyKind::RegistrationMismatch => 0.008,
        AnomalyKind::CommissionVariance => 0.005,
        // The v2 kinds are sized in `generate` (they add sales rather than alter them).
        _ => 0.0,
    };
    let mut per_kind = BTreeMap::new();
    let mut hist_per_kind = BTreeMap::new();
    for k in AnomalyKind::ALL {
        let w = ((est_window * rate(k)).round() as usize).max(2);
        per_kind.insert(k, w);
        hist_per_kind.insert(k, w / 8);
    }
    let split_groups = per_kind[&AnomalyKind::SplitDeals].div_ceil(2).max(1);
    let hist_split_groups = hist_per_kind[&AnomalyKind::SplitDeals] / 2;
    let plan = Plan {
        per_kind,
        hist_per_kind,
        split_groups,
        hist_split_groups,
    };
    let dup_total =
        plan.per_kind[&AnomalyKind::Duplicate] + plan.hist_per_kind[&AnomalyKind::Duplicate];
    let split_total = (plan.split_groups + plan.hist_split_groups) * 4;
    let n_refunds = (n / 170).max(2);
    let n_base = n
        .saturating_sub(n_refunds + dup_total + split_total)
        .max(20);
    c.base_sales(n_base);
    c.noise_registrations(c.regs.len() / 6 + 2);
    let quotas = c.quotas();
    c.inject(&plan);
    c.legit_lookalikes((n / 400).max(2));
    c.refunds(n_refunds);
    // Top up to the requested count with ordinary sales when injections came up short.
    let target = n;
    let mut guard = 0;
    while c.txs.len() < target && guard < target {
        guard += 1;
        let p = pick_cum(&c.partner_cum, 0.0, &mut c.rng);
        let from = c.partners[p].joined.max(c.history_start);
        let closed = c.pick_day_from(from);
        if let Some(t) = c.ordinary_sale(p, closed) {
            c.push(t, None, Vec::new());
        }
    }
    // The version-2 kinds, sized like the others, and the ERP extract last (it bills
    // the sales as they finally stand).
    let v2_each = ((est_window * 0.006).round() as usize).max(5);
    c.inject_v2(v2_each);
    c.injection_notes();
    let erp = c.erp_extract(((est_window * 0.008).round() as usize).max(4));
    c.finish(opts, quotas, erp)
}
