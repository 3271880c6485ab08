//! The version-2 parts of a demo program: an ERP invoice extract (with sales the
//! partner reported differently from what was billed), quarter-end clusters, volume
//! spikes and sales of a family a partner never sold. Shapes and sizes are drawn per
//! program (how many days a cluster spans, how strong a spike is, which field an ERP
//! mismatch changes, when the ERP extract starts) so no two seeds look alike.

use chrono::{Datelike, NaiveDate};
use rand::seq::SliceRandom;
use rand::Rng;
use rust_decimal::Decimal;

use super::add_days;
use super::build::{dec_f64, Ctx};
use super::names;
use crate::model::*;

impl Ctx {
    /// Sales of partner `p` that are history (submitted before the window).
    fn history_sales(&self, p: usize) -> Vec<usize> {
        let id = &self.partners[p].id;
        (0..self.txs.len())
            .filter(|&i| {
                let t = &self.txs[i];
                t.kind == TransactionKind::Sale
                    && &t.partner_id == id
                    && t.submitted_at.date_naive() < self.window_start
            })
            .collect()
    }

    /// Resellers with at least `min` history sales, shuffled.
    fn sellers_with_history(&mut self, min: usize) -> Vec<usize> {
        let mut counts = vec![0usize; self.partners.len()];
        let ids: std::collections::BTreeMap<&str, usize> = self
            .partners
            .iter()
            .enumerate()
            .map(|(i, p)| (p.id.as_str(), i))
            .collect();
        for t in &self.txs {
            if t.kind == TransactionKind::Sale && t.submitted_at.date_naive() < self.window_start {
                if let Some(&p) = ids.get(t.partner_id.as_str()) {
                    counts[p] += 1;
                }
            }
        }
        let mut out: Vec<usize> = (0..self.partners.len())
            .filter(|&p| counts[p] >= min && self.partners[p].kind == PartnerKind::Reseller)
            .collect();
        out.shuffle(&mut self.rng);
        out
    }

    /// An ordinary sale closed on `closed` and submitted within `max_delay` days (never
    /// after `as_of`), labelled `kind`.
    fn extra_sale(
        &mut self,
        p: usize,
        closed: NaiveDate,
        max_delay: i64,
        kind: AnomalyKind,
    ) -> bool {
        let Some(mut t) = self.ordinary_sale(p, closed) else {
            return false;
        };
        t.submitted_at = self.submit_after(closed, 0, max_delay);
        self.push(t, None, vec![kind]);
        true
    }

    /// Quarter-end clusters, volume spikes and product-mix sales in the window, about
    /// `per_kind` transactions of each.
    pub(crate) fn inject_v2(&mut self, per_kind: usize) {
        let mut used: Vec<usize> = Vec::new();
        self.clusters(per_kind, &mut used);
        self.spikes(per_kind, &mut used);
        self.product_mix(per_kind.div_ceil(3).max(2), &mut used);
    }

    fn clusters(&mut self, per_kind: usize, used: &mut Vec<usize>) {
        // The quarter ends inside the window.
        let mut ends = Vec::new();
        let mut d = self.window_start;
        while d <= self.as_of {
            let (y, q) = fiscal_year_quarter(d, self.fy);
            let (_, e) = fiscal_quarter_bounds(y, q, self.fy);
            if e <= self.as_of && !ends.contains(&e) {
                ends.push(e);
            }
            d = add_days(e, 1);
        }
        let Some(&end) = ends.last() else { return };
        let quarters = ((self.window_start - self.history_start).num_days() as f64 / 91.3).max(1.0);
        let mut made = 0;
        for p in self.sellers_with_history(10) {
            if made >= per_kind {
                break;
            }
            // Stuffing is far beyond the partner's usual quarter-end share: a partner
            // with a big quarter needs more sales bunched to stand out.
            let per_quarter = self.history_sales(p).len() as f64 / quarters;
            if per_quarter > 30.0 {
                continue;
            }
            let days = [2, 3, 5][self.rng.gen_range(0..3)];
            let k = ((per_quarter * self.rng.gen_range(0.35..0.8)).round() as usize)
                .max(self.rng.gen_range(5..=8));
            let mut n = 0;
            for _ in 0..k * 2 {
                if n >= k {
                    break;
                }
                let closed = add_days(end, -self.rng.gen_range(0..days));
                if self.extra_sale(p, closed, 1, AnomalyKind::PeriodEndCluster) {
                    n += 1;
                }
            }
            if n == 0 {
                continue;
            }
            // Every sale of those last days is part of the cluster.
            let from = add_days(end, -(days - 1));
            let id = self.partners[p].id.clone();
            for i in 0..self.txs.len() {
                let t = &self.txs[i];
                if t.kind == TransactionKind::Sale
                    && t.partner_id == id
                    && t.closed_on >= from
                    && t.closed_on <= end
                    && t.submitted_at.date_naive() >= self.window_start
                    && !self.labels[i].contains(&AnomalyKind::PeriodEndCluster)
                {
                    self.labels[i].push(AnomalyKind::PeriodEndCluster);
                    self.touched[i] = true;
                    n += 1;
                }
            }
            used.push(p);
            made += n;
        }
    }

    fn spikes(&mut self, per_kind: usize, used: &mut Vec<usize>) {
        // A month wholly in the window.
        let first = self.window_start;
        let months: Vec<NaiveDate> = (0..3)
            .filter_map(|m| first.checked_add_months(chrono::Months::new(m)))
            .filter(|m| {
                m.checked_add_months(chrono::Months::new(1))
                    .is_some_and(|next| add_days(next, -1) <= self.as_of)
            })
            .collect();
        if months.is_empty() {
            return;
        }
        let mut made = 0;
        for p in self.sellers_with_history(8) {
            if made >= per_kind {
                break;
            }
            if used.contains(&p) {
                continue;
            }
            let month = months[self.rng.gen_range(0..months.len())];
            // The partner's own level: its last six months of history, or the same
            // month a year earlier when that was busier (its season).
            let id = self.partners[p].id.clone();
            let month_of = |d: NaiveDate| (d.year(), d.month());
            let recent_from = self
                .window_start
                .checked_sub_months(chrono::Months::new(6))
                .unwrap_or(self.window_start);
            let last_year = month.checked_sub_months(chrono::Months::new(12));
            let (mut recent, mut season, mut existing) = (0usize, 0usize, 0usize);
            for t in &self.txs {
                if t.kind != TransactionKind::Sale || t.partner_id != id {
                    continue;
                }
                if t.closed_on >= recent_from && t.closed_on < self.window_start {
                    recent += 1;
                }
                if last_year.is_some_and(|m| month_of(t.closed_on) == month_of(m)) {
                    season += 1;
                }
                if month_of(t.closed_on) == month_of(month) {
                    existing += 1;
                }
            }
            let level = (recent as f64 / 6.0).max(season as f64).max(0.5);
            // A spike is only a spike for a partner of modest volume.
            if level > 4.0 {
                continue;
            }
            let target = (level * self.rng.gen_range(5.0..9.0)).round() as usize;
            let extra = target.saturating_sub(existing).max(5);
            let next = month
                .checked_add_months(chrono::Months::new(1))
                .unwrap_or(month);
            let len = (next - month).num_days();
            let mut n = 0;
            for _ in 0..extra * 2 {
                if n >= extra {
                    break;
                }
                let closed = add_days(month, self.rng.gen_range(0..len));
                if self.extra_sale(p, closed, 3, AnomalyKind::VolumeSpike) {
                    n += 1;
                }
            }
            // Every sale of that month makes the spike.
            for i in 0..self.txs.len() {
                let t = &self.txs[i];
                if t.kind == TransactionKind::Sale
                    && t.partner_id == id
                    && t.closed_on.year() == month.year()
                    && t.closed_on.month() == month.month()
                    && t.submitted_at.date_naive() >= self.window_start
                    && !self.labels[i].contains(&AnomalyKind::VolumeSpike)
                {
                    self.labels[i].push(AnomalyKind::VolumeSpike);
                    self.touched[i] = true;
                    n += 1;
                }
            }
            used.push(p);
            made += n;
        }
    }

    fn product_mix(&mut self, want: usize, used: &mut Vec<usize>) {
        let sellers = self.sellers_with_history(12);
        // The history does not change while the window's sales are added: each partner's
        // history sales and each family's history quantities (sorted) are read once.
        let family: std::collections::HashMap<&str, usize> = self
            .products
            .iter()
            .zip(&self.product_family)
            .map(|(p, f)| (p.sku.as_str(), *f))
            .collect();
        let mut by_partner: std::collections::HashMap<&str, Vec<usize>> = Default::default();
        let mut family_qty: Vec<Vec<i64>> = vec![Vec::new(); self.v.families.len()];
        for (i, t) in self.txs.iter().enumerate() {
            if t.kind != TransactionKind::Sale || t.submitted_at.date_naive() >= self.window_start {
                continue;
            }
            by_partner.entry(t.partner_id.as_str()).or_default().push(i);
            if let Some(&f) = family.get(t.sku.as_str()) {
                family_qty[f].push(t.quantity);
            }
        }
        for q in &mut family_qty {
            q.sort_unstable();
        }
        let history: Vec<Vec<(Option<usize>, f64)>> = sellers
            .iter()
            .map(|&p| {
                by_partner
                    .get(self.partners[p].id.as_str())
                    .map(|v| {
                        v.iter()
                            .map(|&i| {
                                let t = &self.txs[i];
                                (family.get(t.sku.as_str()).copied(), dec_f64(t.amount))
                            })
                            .collect()
                    })
                    .unwrap_or_default()
            })
            .collect();
        let mut made = 0;
        for (&p, hist) in sellers.iter().zip(history) {
            if made >= want {
                break;
            }
            if used.contains(&p) {
                continue;
            }
            let mut sold = vec![false; self.v.families.len()];
            let mut amounts: Vec<f64> = Vec::new();
            for (fam, amount) in hist {
                if let Some(f) = fam {
                    sold[f] = true;
                }
                amounts.push(amount);
            }
            amounts.sort_by(|a, b| a.total_cmp(b));
            let median = amounts.get(amounts.len() / 2).copied().unwrap_or(0.0);
            let fams: Vec<usize> = (0..sold.len())
                .filter(|&f| !sold[f] && !self.partners[p].allowed[f].is_empty())
                .collect();
            let Some(&fam) = fams.choose(&mut self.rng) else {
                continue;
            };
            // The family's largest quantities sold by anyone in the history.
            let qty = &family_qty[fam];
            let q90 = qty.get(qty.len() * 9 / 10).copied().unwrap_or(10).max(2);
            let closed = add_days(
                self.window_start,
                self.rng
                    .gen_range(0..(self.as_of - self.window_start).num_days().max(1)),
            );
            let Some(mut t) = self.ordinary_sale(p, closed) else {
                continue;
            };
            let list = &self.partners[p].allowed[fam];
            let product = list[self.rng.gen_range(0..list.len())];
            let Some(tier) = self.partners[p].tier_on(closed) else {
                continue;
            };
            let bp = self.legal_bp(self.policy[tier][fam]);
            let pr = &self.products[product];
            t.sku = pr.sku.clone();
            t.unit_list_price = pr.list_price;
            t.unit_net_price = super::build::net_price(pr.list_price, bp);
            let unit = dec_f64(t.unit_net_price).max(0.01);
            let by_qty = (q90 as f64 * self.rng.gen_range(1.1..2.5)).round();
            let by_amount = (median * self.rng.gen_range(2.5..12.0) / unit).round();
            t.quantity = by_qty.max(by_amount).clamp(2.0, 1_000_000.0) as i64;
            t.amount = t.unit_net_price * Decimal::from(t.quantity);
            t.registration_id = None;
            t.submitted_at = self.submit_after(closed, 0, 3);
            self.push(t, None, vec![AnomalyKind::ProductMix]);
            used.push(p);
            made += 1;
        }
    }

    /// The ERP's invoices for the program's sales: what was billed. The extract starts
    /// some weeks into the history (earlier sales are not evaluated); a resubmitted
    /// duplicate finds its invoice taken or no invoice at all; `mismatches` window sales
    /// (and a few history ones) were reported differently from what the ERP billed.
    pub(crate) fn erp_extract(&mut self, mismatches: usize) -> Vec<ErpInvoice> {
        let start = add_days(self.history_start, self.rng.gen_range(0..120));
        let mut cand = self.candidates(true);
        cand.truncate(mismatches);
        let mut hist = self.candidates(false);
        hist.retain(|&i| self.txs[i].closed_on >= add_days(start, 7));
        hist.truncate(mismatches / 4);
        cand.extend(hist);
        let mut out = Vec::new();
        let mut billed = std::collections::HashSet::new();
        let mut changed: Vec<usize> = Vec::new();
        for i in 0..self.txs.len() {
            let t = &self.txs[i];
            if t.kind != TransactionKind::Sale || t.closed_on < start {
                continue;
            }
            if self.labels[i].contains(&AnomalyKind::Duplicate)
                || !billed.insert(t.invoice_number.clone())
            {
                // A resubmission: the ERP billed the original once.
                continue;
            }
            let lag = self.rng.gen_range(0..6);
            let mut customer = t.customer_name.clone();
            if self.rng.gen_bool(0.05) {
                // The ERP spells the customer its own way (case, spacing, punctuation).
                customer = match self.rng.gen_range(0..3) {
                    0 => customer.to_uppercase(),
                    1 => format!("{customer}."),
                    _ => customer.replacen(' ', "  ", 1),
                };
            }
            out.push(ErpInvoice {
                invoice_number: t.invoice_number.clone(),
                customer_name: customer,
                partner_id: t.partner_id.clone(),
                invoice_date: add_days(t.closed_on, lag),
                currency: t.currency.clone(),
                lines: vec![ErpLine {
                    sku: t.sku.clone(),
                    quantity: t.quantity,
                    amount: t.amount,
                }],
            });
            if cand.contains(&i) {
                changed.push(out.len() - 1);
                self.labels[i].push(AnomalyKind::ErpMismatch);
                self.touched[i] = true;
            }
        }
        let skus: Vec<String> = self.products.iter().map(|p| p.sku.clone()).collect();
        let partner_ids: Vec<String> = self.partners.iter().map(|p| p.id.clone()).collect();
        let mut drop = Vec::new();
        for k in changed {
            let inv = &mut out[k];
            match self.rng.gen_range(0..6) {
                0 => drop.push(k),
                1 => {
                    let q = inv.lines[0].quantity;
                    let d = self.rng.gen_range(1..=(q / 5).max(2));
                    let nq = if q > d && self.rng.gen_bool(0.6) {
                        q - d
                    } else {
                        q + d
                    };
                    let unit = inv.lines[0].amount / Decimal::from(q.max(1));
                    inv.lines[0].quantity = nq;
                    inv.lines[0].amount = crate::money::round_cents(unit * Decimal::from(nq));
                }
                2 => {
                    let f = Decimal::from(self.rng.gen_range(80..97)) / Decimal::ONE_HUNDRED;
                    inv.lines[0].amount = crate::money::round_cents(inv.lines[0].amount * f);
                }
                3 => {
                    let other = partner_ids[self.rng.gen_range(0..partner_ids.len())].clone();
                    if other == inv.partner_id {
                        drop.push(k);
                    } else {
                        inv.partner_id = other;
                    }
                }
                4 => inv.customer_name = names::customer_name(&mut self.rng, "NA"),
                _ => {
                    let other = skus[self.rng.gen_range(0..skus.len())].clone();
                    if other == inv.lines[0].sku {
                        drop.push(k);
                    } else {
                        inv.lines[0].sku = other;
                    }
                }
            }
        }
        drop.sort_unstable();
        for k in drop.into_iter().rev() {
            out.remove(k);
        }
        // What the detector can know: sales closed before the first invoice are not
        // evaluated; every later resubmission is a mismatch (its invoice is taken or
        // absent).
        let first = out.iter().map(|v| v.invoice_date).min().unwrap_or(start);
        for i in 0..self.txs.len() {
            let t = &self.txs[i];
            if t.kind == TransactionKind::Sale
                && t.closed_on >= first
                && self.labels[i].contains(&AnomalyKind::Duplicate)
                && !self.labels[i].contains(&AnomalyKind::ErpMismatch)
            {
                self.labels[i].push(AnomalyKind::ErpMismatch);
            }
        }
        out.sort_by(|a, b| {
            (a.invoice_date, &a.invoice_number).cmp(&(b.invoice_date, &b.invoice_number))
        });
        out
    }
}
