//! Injected anomalies, one function per kind of `docs/dataset.md`. Each turns an
//! ordinary sale into an anomalous one (or adds new transactions) and labels it.

use chrono::NaiveDate;
use rand::Rng;
use rust_decimal::Decimal;

use super::add_days;
use super::build::{dec_f64, net_price, quarter_start, Ctx, Plan};
use super::names;
use crate::model::{AnomalyKind, PartnerKind, RegistrationStatus, TransactionKind};

impl Ctx {
    pub(crate) fn inject(&mut self, plan: &Plan) {
        let mut partner_max = vec![0.0f64; self.partners.len()];
        let ids: std::collections::BTreeMap<String, usize> = self
            .partners
            .iter()
            .enumerate()
            .map(|(i, p)| (p.id.clone(), i))
            .collect();
        for t in &self.txs {
            if let Some(&p) = ids.get(&t.partner_id) {
                partner_max[p] = partner_max[p].max(dec_f64(t.amount));
            }
        }
        for window in [true, false] {
            let counts = if window {
                &plan.per_kind
            } else {
                &plan.hist_per_kind
            };
            let groups = if window {
                plan.split_groups
            } else {
                plan.hist_split_groups
            };
            let mut cand = self.candidates(window);
            for kind in AnomalyKind::ALL {
                let want = counts.get(&kind).copied().unwrap_or(0);
                if kind == AnomalyKind::SplitDeals {
                    let mut made = 0;
                    for _ in 0..groups * 6 {
                        if made >= groups {
                            break;
                        }
                        if self.split_group(window) {
                            made += 1;
                        }
                    }
                    continue;
                }
                let mut made = 0;
                let mut tries = 0;
                let mut unused = Vec::new();
                while made < want && tries < want * 30 + 30 {
                    tries += 1;
                    let Some(i) = cand.pop() else { break };
                    if self.touched[i] {
                        continue;
                    }
                    let ok = match kind {
                        AnomalyKind::DealSizeTier => self.deal_size(i, &partner_max, &ids),
                        AnomalyKind::DiscountPolicy => self.discount(i),
                        AnomalyKind::UncertifiedProduct => self.uncertified(i),
                        AnomalyKind::Duplicate => self.duplicate(i, window),
                        AnomalyKind::Backdated => self.backdated(i),
                        AnomalyKind::RegistrationMismatch => self.registration_mismatch(i),
                        AnomalyKind::CommissionVariance => true,
                        AnomalyKind::SplitDeals => false,
                        _ => false,
                    };
                    if ok {
                        if kind != AnomalyKind::Duplicate {
                            self.labels[i].push(kind);
                        }
                        self.touched[i] = true;
                        made += 1;
                    } else {
                        // Unusable for this kind: leave it for the next one.
                        unused.push(i);
                    }
                }
                cand.extend(unused.into_iter().rev());
            }
        }
    }

    fn family_of(&self, sku: &str) -> Option<usize> {
        self.products
            .iter()
            .position(|p| p.sku == sku)
            .map(|i| self.product_family[i])
    }

    fn deal_size(
        &mut self,
        i: usize,
        partner_max: &[f64],
        ids: &std::collections::BTreeMap<String, usize>,
    ) -> bool {
        let Some(&p) = ids.get(&self.txs[i].partner_id) else {
            return false;
        };
        let ntiers = self.tiers.len();
        let Some(tier) = self.partners[p].tier_on(self.txs[i].closed_on) else {
            return false;
        };
        if self.partners[p].kind != PartnerKind::Reseller || tier + 1 >= ntiers {
            return false;
        }
        let top = self.partners[p].median * Ctx::tier_scale(ntiers - 1);
        let target =
            (partner_max[p] * self.rng.gen_range(2.5..5.0)).max(top * self.rng.gen_range(4.0..8.0));
        let t = &mut self.txs[i];
        let unit = dec_f64(t.unit_net_price).max(0.01);
        let q = (target / unit).round().max(1.0) as i64;
        t.quantity = q;
        t.amount = t.unit_net_price * Decimal::from(q);
        t.registration_id = None;
        true
    }

    fn discount(&mut self, i: usize) -> bool {
        let p = self.partner_index(&self.txs[i].partner_id.clone());
        let Some(fam) = self.family_of(&self.txs[i].sku.clone()) else {
            return false;
        };
        let Some(max) = self.policy_max(p, self.txs[i].closed_on, fam) else {
            return false;
        };
        let pct = (max + self.rng.gen_range(6..26)).min(85);
        let bp = i64::from(pct) * 100 + self.rng.gen_range(0..100);
        let t = &mut self.txs[i];
        t.unit_net_price = net_price(t.unit_list_price, bp);
        t.amount = t.unit_net_price * Decimal::from(t.quantity);
        true
    }

    fn uncertified(&mut self, i: usize) -> bool {
        let p = self.partner_index(&self.txs[i].partner_id.clone());
        let closed = self.txs[i].closed_on;
        let Some(tier) = self.partners[p].tier_on(closed) else {
            return false;
        };
        let options: Vec<usize> = (0..self.products.len())
            .filter(|&k| {
                let pr = &self.products[k];
                pr.active
                    && pr
                        .certification_required
                        .as_ref()
                        .is_some_and(|c| !self.partners[p].certs.contains(c))
            })
            .collect();
        if options.is_empty() {
            return false;
        }
        let k = options[self.rng.gen_range(0..options.len())];
        let fam = self.product_family[k];
        let bp = self.legal_bp(self.policy[tier][fam]);
        let target = dec_f64(self.txs[i].amount);
        let mut t = self.txs[i].clone();
        self.price_sale(&mut t, k, bp, target);
        self.txs[i] = t;
        true
    }

    fn duplicate(&mut self, i: usize, window: bool) -> bool {
        let o = self.txs[i].clone();
        let p = self.partner_index(&o.partner_id);
        let gap = self.rng.gen_range(1..16);
        let sub_day = add_days(o.submitted_at.date_naive(), gap);
        if sub_day > self.as_of || (!window && sub_day >= self.window_start) {
            return false;
        }
        let mut d = o.clone();
        let secs = self.rng.gen_range(7 * 3600..21 * 3600);
        d.submitted_at = super::at(sub_day, secs);
        let mut edits = 0;
        while edits == 0 {
            if self.rng.gen_bool(0.6) {
                d.customer_name = names::name_variant(&mut self.rng, &o.customer_name);
                d.registration_id = None;
                edits += 1;
            }
            if self.rng.gen_bool(0.55) {
                let shift = self.rng.gen_range(1..5) * if self.rng.gen_bool(0.5) { 1 } else { -1 };
                let c = add_days(o.closed_on, shift);
                let fam = self.family_of(&o.sku);
                let same_policy = fam.map(|f| self.policy_max(p, c, f))
                    == fam.map(|f| self.policy_max(p, o.closed_on, f));
                let same_quarter = quarter_start(c, self.fy) == quarter_start(o.closed_on, self.fy);
                if c <= sub_day && same_policy && same_quarter && c >= self.partners[p].joined {
                    d.closed_on = c;
                    edits += 1;
                }
            }
            if self.rng.gen_bool(0.6) {
                d.invoice_number = names::invoice_variant(&mut self.rng, &o.invoice_number);
                edits += 1;
            }
            if self.rng.gen_bool(0.5) {
                if o.quantity >= 10 && self.rng.gen_bool(0.5) {
                    d.quantity = o.quantity + if self.rng.gen_bool(0.5) { 1 } else { -1 };
                } else {
                    // Price re-keyed up to 1% higher (never past the discount policy).
                    let bump = Decimal::from(self.rng.gen_range(1..100)) / Decimal::from(10_000);
                    let np = crate::money::round_cents(o.unit_net_price * (Decimal::ONE + bump));
                    d.unit_net_price = if np == o.unit_net_price {
                        o.unit_net_price + Decimal::new(1, 2)
                    } else {
                        np
                    };
                    if d.unit_net_price > d.unit_list_price {
                        d.unit_net_price = o.unit_net_price;
                        d.quantity = o.quantity + 1;
                    }
                }
                d.amount = d.unit_net_price * Decimal::from(d.quantity);
                edits += 1;
            }
        }
        // A resubmission, not a backdating: keep it prompt or in the same quarter.
        let late = (sub_day - d.closed_on).num_days() > 14
            && quarter_start(sub_day, self.fy) != quarter_start(d.closed_on, self.fy);
        if late {
            return false;
        }
        self.push(d, None, vec![AnomalyKind::Duplicate]);
        true
    }

    fn backdated(&mut self, i: usize) -> bool {
        let t = &self.txs[i];
        if t.registration_id.is_some() {
            return false;
        }
        let s = t.submitted_at.date_naive();
        let qs = quarter_start(s, self.fy);
        if (s - qs).num_days() < 21 {
            return false;
        }
        let closed = add_days(qs, -self.rng.gen_range(1..40));
        let p = self.partner_index(&t.partner_id.clone());
        let old = self.txs[i].closed_on;
        let fam = self.family_of(&self.txs[i].sku.clone());
        let Some(f) = fam else { return false };
        if self.partners[p].joined > closed
            || self.policy_max(p, closed, f) != self.policy_max(p, old, f)
        {
            return false;
        }
        self.txs[i].closed_on = closed;
        true
    }

    fn registration_mismatch(&mut self, i: usize) -> bool {
        let t = self.txs[i].clone();
        let p = self.partner_index(&t.partner_id);
        match self.rng.gen_range(0..4) {
            0 => {
                // Cites another partner's live, approved registration.
                for _ in 0..60 {
                    if self.regs.is_empty() {
                        return false;
                    }
                    let r = &self.regs[self.rng.gen_range(0..self.regs.len())];
                    if r.partner_id != t.partner_id
                        && r.status == RegistrationStatus::Approved
                        && r.registered_on <= t.closed_on
                        && r.expires_on >= t.closed_on
                    {
                        let (id, cust) = (r.registration_id.clone(), r.customer_name.clone());
                        self.txs[i].registration_id = Some(id);
                        self.txs[i].customer_name = cust;
                        return true;
                    }
                }
                false
            }
            1 => {
                let id = self.new_registration(
                    p,
                    &t.customer_name,
                    t.amount,
                    t.closed_on,
                    RegistrationStatus::Rejected,
                );
                self.txs[i].registration_id = Some(id);
                true
            }
            2 => {
                let reg_on = add_days(t.closed_on, -self.rng.gen_range(100..220));
                let status = if self.rng.gen_bool(0.6) {
                    RegistrationStatus::Expired
                } else {
                    RegistrationStatus::Approved
                };
                let id = self.push_registration(p, &t.customer_name, t.amount, reg_on, 90, status);
                self.txs[i].registration_id = Some(id);
                true
            }
            _ => {
                let pool = &self.partners[p].customers;
                let other: Vec<String> = pool
                    .iter()
                    .filter(|c| **c != t.customer_name)
                    .cloned()
                    .collect();
                if other.is_empty() {
                    return false;
                }
                let c = other[self.rng.gen_range(0..other.len())].clone();
                let id = self.new_registration(
                    p,
                    &c,
                    t.amount,
                    t.closed_on,
                    RegistrationStatus::Approved,
                );
                self.txs[i].registration_id = Some(id);
                true
            }
        }
    }

    /// Several near-identical deals to one customer within a day or two, each
    /// just under the registration threshold.
    fn split_group(&mut self, window: bool) -> bool {
        let p = self.rng.gen_range(0..self.partners.len());
        if self.partners[p].kind != PartnerKind::Reseller {
            return false;
        }
        let (lo, hi) = if window {
            (self.window_start, add_days(self.as_of, -3))
        } else {
            (
                add_days(self.history_start, 120),
                add_days(self.window_start, -10),
            )
        };
        if lo >= hi {
            return false;
        }
        let day: NaiveDate = add_days(lo, self.rng.gen_range(0..(hi - lo).num_days()));
        if self.partners[p].joined > day {
            return false;
        }
        let Some(tier) = self.partners[p].tier_on(day) else {
            return false;
        };
        let thr = self.v.registration_threshold;
        let thr_f = dec_f64(thr);
        let options: Vec<usize> = self.partners[p]
            .allowed
            .iter()
            .flatten()
            .copied()
            .filter(|&k| dec_f64(self.products[k].list_price) * 4.0 < thr_f)
            .collect();
        if options.is_empty() {
            return false;
        }
        let k = options[self.rng.gen_range(0..options.len())];
        let fam = self.product_family[k];
        let bp = self.legal_bp(self.policy[tier][fam]);
        let unit = net_price(self.products[k].list_price, bp);
        let piece = thr_f * self.rng.gen_range(0.80..0.97);
        let q = (piece / dec_f64(unit).max(0.01)).floor() as i64;
        if q < 1 || unit * Decimal::from(q) >= thr {
            return false;
        }
        let n = match self.rng.gen_range(0..10) {
            0..=1 => 2,
            2..=6 => 3,
            _ => 4,
        };
        let ci = self.rng.gen_range(0..self.partners[p].customers.len());
        let customer = self.partners[p].customers[ci].clone();
        let notes = self.notes();
        for _ in 0..n {
            let closed = add_days(day, self.rng.gen_range(0..2)).min(self.as_of);
            if self.partners[p].tier_on(closed) != Some(tier) {
                continue;
            }
            let qty = if q > 1 && self.rng.gen_bool(0.25) {
                q - 1
            } else {
                q
            };
            let sub = self.submit_after(closed, 0, 2);
            let t = crate::model::Transaction {
                transaction_id: String::new(),
                kind: TransactionKind::Sale,
                original_transaction_id: None,
                partner_id: self.partners[p].id.clone(),
                registration_id: None,
                customer_name: customer.clone(),
                sku: self.products[k].sku.clone(),
                quantity: qty,
                unit_list_price: self.products[k].list_price,
                unit_net_price: unit,
                amount: unit * Decimal::from(qty),
                currency: self.currency().to_string(),
                closed_on: closed,
                submitted_at: sub,
                invoice_number: self.invoice(p),
                notes: notes.clone(),
            };
            self.push(t, None, vec![AnomalyKind::SplitDeals]);
        }
        true
    }
}
