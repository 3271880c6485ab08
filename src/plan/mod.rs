//! Shadow commission recalculation: `docs/plan.md`, exact to the cent.
//!
//! Pure: data in, lines out; no IO and no clock. Every amount is [`Decimal`]; each line
//! is rounded once, at the end, half to even ([`round_cents`]).
//!
//! Entry points:
//! - [`recalculate`]: every line the plan gives, sorted by (transaction, role, id).
//! - [`recalculate_explained`]: the same with the derivation of each line.
//! - [`explain`]: one transaction's derivation in plain words (the TUI's commission pane).
//! - [`variances`]: the PRM's lines against the recalculation, per transaction.
//! - [`Calculator`]: the indexes behind all of these, built once and reusable (e.g. to
//!   explain many transactions of one large data set without rebuilding).
//!
//! Commission ids follow the PRM's pattern: `C-{transaction}-S` (seller), `-O`
//! (override), `-P-{spiff_id}` (SPIFF) and `-K` (clawback).
//!
//! ## Fiscal-year naming
//! For a fiscal year that does not start in January, `YYYY` in `YYYY-Qn` is ambiguous.
//! [`model::fiscal_quarter`](crate::model::fiscal_quarter) names the year after the
//! calendar year in which it starts. Some PRMs name it after the year in which it ends.
//! [`infer_fiscal_naming`] decides which one a data set uses: a majority vote over the
//! PRM's lines whose transaction is known (the line's `period` against both names of its
//! transaction's quarter); when the lines do not decide (none, or a tie), a vote over the
//! sales on which name finds a quota row for the partner; when that does not decide
//! either, the start-year naming. The same naming is used for the lines' `period` and
//! for looking up quotas.

pub mod draft;
mod explain;
pub mod report;
mod rules;
pub mod v2;
mod variance;
pub mod whatif;

use std::collections::HashMap as StdHashMap;
use std::hash::BuildHasherDefault;

use crate::fxhash::FxHasher;

use chrono::{Datelike, NaiveDate};
use rust_decimal::Decimal;

use crate::model::{
    fiscal_year_quarter, parse_quarter, CommissionLine, CommissionRole, Dataset, Partner, Product,
    Transaction, TransactionKind,
};
use crate::money::round_cents;

pub use explain::{ExplainedLine, Explanation};
pub use variance::{variances, variances_with, Variance};

/// `HashMap` with the crate's [`FxHasher`].
pub(crate) type HashMap<K, V> = StdHashMap<K, V, BuildHasherDefault<FxHasher>>;

/// How the `YYYY` of a fiscal quarter is named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FiscalYearNaming {
    /// After the calendar year in which the fiscal year starts (the model's default).
    StartYear,
    /// After the calendar year in which the fiscal year ends.
    EndYear,
}

/// Which fiscal-year naming the data set uses (see the module documentation).
pub fn infer_fiscal_naming(ds: &Dataset) -> FiscalYearNaming {
    if ds.program.fiscal_year_start_month.clamp(1, 12) == 1 {
        return FiscalYearNaming::StartYear;
    }
    // A map keeps the last row of a duplicated id, as the calculator's index does.
    let by_id: HashMap<&str, usize> = ds
        .transactions
        .iter()
        .enumerate()
        .map(|(i, t)| (t.transaction_id.as_str(), i))
        .collect();
    infer_naming_with(ds, |id| by_id.get(id).copied())
}

/// [`infer_fiscal_naming`] with a transaction lookup by id supplied by the caller.
fn infer_naming_with(ds: &Dataset, find: impl Fn(&str) -> Option<usize>) -> FiscalYearNaming {
    let fy_start = ds.program.fiscal_year_start_month.clamp(1, 12);
    if fy_start == 1 {
        return FiscalYearNaming::StartYear;
    }
    let (mut start_votes, mut end_votes) = (0usize, 0usize);
    for line in &ds.commissions {
        let Some(t) = find(&line.transaction_id).and_then(|i| ds.transactions.get(i)) else {
            continue;
        };
        let Some((y, q)) = parse_quarter(&line.period) else {
            continue;
        };
        let (fy, fq) = fiscal_year_quarter(t.closed_on, fy_start);
        if fq != q {
            continue;
        }
        if y == fy {
            start_votes += 1;
        } else if y == fy + 1 {
            end_votes += 1;
        }
    }
    if start_votes != end_votes {
        return if end_votes > start_votes {
            FiscalYearNaming::EndYear
        } else {
            FiscalYearNaming::StartYear
        };
    }
    // Fall back on quotas: which naming finds a quota row for the partner's quarter.
    let quotas: std::collections::HashSet<(&str, i32, u32), BuildHasherDefault<FxHasher>> = ds
        .quotas
        .iter()
        .filter_map(|q| {
            let (y, n) = parse_quarter(&q.period)?;
            Some((q.partner_id.as_str(), y, n))
        })
        .collect();
    let (mut start_hits, mut end_hits) = (0usize, 0usize);
    for t in ds
        .transactions
        .iter()
        .filter(|t| t.kind == TransactionKind::Sale)
    {
        let (fy, fq) = fiscal_year_quarter(t.closed_on, fy_start);
        if quotas.contains(&(t.partner_id.as_str(), fy, fq)) {
            start_hits += 1;
        }
        if quotas.contains(&(t.partner_id.as_str(), fy + 1, fq)) {
            end_hits += 1;
        }
    }
    if end_hits > start_hits {
        FiscalYearNaming::EndYear
    } else {
        FiscalYearNaming::StartYear
    }
}

/// One span of a sale's bookings and the multiplier it earns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Quarter bookings where the span starts (inclusive).
    pub from: Decimal,
    /// Quarter bookings where the span ends (exclusive).
    pub to: Decimal,
    /// `to - from`: the part of the sale in this span.
    pub amount: Decimal,
    /// The attainment threshold this span is at or above (`None` = below the first).
    pub attainment_from: Option<Decimal>,
    /// 1 below the first threshold, else the threshold's multiplier.
    pub multiplier: Decimal,
    /// `amount x rate x multiplier`, unrounded.
    pub commission: Decimal,
}

/// How a seller line was derived.
#[derive(Debug, Clone, PartialEq)]
pub struct SellerDerivation {
    pub tier_id: String,
    /// The tier_history row that set the tier: its `effective_from`.
    pub tier_effective_from: NaiveDate,
    pub tier_rate: Decimal,
    pub family: Option<String>,
    /// 1 when the family has no multiplier.
    pub family_multiplier: Decimal,
    /// `tier_rate x family_multiplier`.
    pub rate: Decimal,
    /// The partner's quota for the quarter (`None`: no row).
    pub quota: Option<Decimal>,
    /// The partner's bookings in the quarter before this sale.
    pub before: Decimal,
    /// `before + amount`.
    pub after: Decimal,
    pub segments: Vec<Segment>,
    /// Base plus accelerated parts, before the cap and rounding.
    pub uncapped: Decimal,
    pub cap: Option<Decimal>,
    pub capped: bool,
    /// Plan v2: the scoped rules that shaped this line and the matching ones that lost.
    pub rules: Box<v2::RuleTrace>,
}

/// How any line was derived.
#[derive(Debug, Clone, PartialEq)]
pub enum Derivation {
    Seller(SellerDerivation),
    Override {
        seller_partner_id: String,
        parent_partner_id: String,
        rate: Decimal,
        base: Decimal,
    },
    Spiff {
        spiff_id: String,
        family: Option<String>,
        sku: Option<String>,
        from: NaiveDate,
        to: NaiveDate,
        tier_id: String,
        amount_per_unit: Decimal,
        quantity: i64,
    },
    Clawback {
        original_transaction_id: String,
        original_closed_on: NaiveDate,
        days_after: i64,
        window_days: Option<i64>,
        /// The original seller line, rounded.
        original_seller_amount: Decimal,
        refunded_quantity: i64,
        original_quantity: i64,
    },
}

/// Why a transaction gets no line of some role (for explanations).
#[derive(Debug, Clone, PartialEq)]
pub enum NoLine {
    NoTier {
        partner_id: String,
        closed_on: NaiveDate,
    },
    NoRate {
        tier_id: String,
    },
    Overflow {
        role: CommissionRole,
    },
    SpiffTierNotEligible {
        spiff_id: String,
        tier_id: String,
    },
    SpiffOutsideWindow {
        spiff_id: String,
        from: NaiveDate,
        to: NaiveDate,
    },
    RefundNoOriginal {
        original_transaction_id: Option<String>,
    },
    RefundOriginalNoSellerLine {
        original_transaction_id: String,
    },
    RefundOutsideWindow {
        original_transaction_id: String,
        days_after: i64,
        window_days: i64,
    },
    RefundZeroQuantity {
        original_transaction_id: String,
    },
}

/// Indexes over one data set; the whole recalculation hangs off it.
///
/// Partners and tiers are interned (indices into vectors), transactions are kept in id
/// order (`order`, used for lookups by id and for the output order), and each sale's
/// quarter bookings before it are computed once with one sort.
pub struct Calculator<'a> {
    ds: &'a Dataset,
    fy_start: u32,
    naming: FiscalYearNaming,
    /// Partner id -> partner index (every id seen in partners, tier history, quotas and
    /// transactions).
    partner_ix: HashMap<&'a str, usize>,
    /// Per partner index: the partner row (the last one of a duplicated id).
    partner_rows: Vec<Option<&'a Partner>>,
    /// Per partner index: `(effective_from, tier index)`, sorted by date (stable: of two
    /// rows on one day, the later in the file wins).
    tier_hist: Vec<Vec<(NaiveDate, usize)>>,
    /// Per tier index: the tier id and its seller rate (`None`: the plan has none).
    tiers: Vec<(&'a str, Option<Decimal>)>,
    tier_names: HashMap<&'a str, &'a str>,
    /// `(partner index, named year, quarter)` -> quota and, for a positive quota, its
    /// accelerator thresholds (`None`: overflow).
    quotas: QuotaIndex,
    products: HashMap<&'a str, &'a Product>,
    /// Per transaction index: its partner's index.
    tx_partner: Vec<usize>,
    /// Transaction indices sorted by (transaction id, index).
    order: Vec<usize>,
    /// Whether two transactions share an id (possible in hand-built data sets).
    duplicate_ids: bool,
    /// Per transaction index: the quarter bookings before it (sales only).
    before: Vec<Decimal>,
    /// Accelerators sorted by `attainment_from`.
    accelerators: Vec<(Decimal, Decimal)>,
    /// The PRM's lines by transaction, built on first use (explanations).
    prm_index: std::sync::OnceLock<HashMap<&'a str, Vec<usize>>>,
    /// Plan v2: the scoped rules by kind.
    rules: v2::RuleSet<'a>,
}

/// `(partner index, named year, quarter)` -> quota and, for a positive quota, its
/// accelerator thresholds (`None`: overflow).
type QuotaIndex = HashMap<(usize, i32, u32), (Decimal, Option<Box<[Decimal]>>)>;

/// All lines of one transaction with their derivations, and why roles gave none.
#[derive(Debug, Clone, Default)]
pub(crate) struct TxLines {
    pub lines: Vec<(CommissionLine, Derivation)>,
    pub no_lines: Vec<NoLine>,
}

/// A seller line's figures without the owned parts of [`SellerDerivation`].
#[derive(Debug, Clone, Copy)]
struct SellerCore<'a> {
    tier_id: &'a str,
    tier_from: NaiveDate,
    tier_rate: Decimal,
    family: Option<&'a str>,
    family_multiplier: Decimal,
    rate: Decimal,
    quota: Option<Decimal>,
    before: Decimal,
    after: Decimal,
    uncapped: Decimal,
    cap: Option<Decimal>,
    capped: bool,
    /// Plan v2: the accelerator rule whose schedule applied.
    accel_rule: Option<&'a v2::Rule>,
}

impl SellerCore<'_> {
    /// The amount before rounding: the cap when it applies, else the uncapped amount.
    fn amount(&self) -> Decimal {
        match self.cap {
            Some(c) if self.capped => c,
            _ => self.uncapped,
        }
    }
}

/// How a SPIFF applies to a sale.
pub(crate) enum SpiffCheck {
    /// Another sku or family: not a candidate at all.
    Skip,
    OutsideWindow,
    TierNotEligible,
    /// The unrounded amount (`None`: overflow).
    Pays(Option<Decimal>),
}

/// A clawback's figures (the refund's original sale and its seller line).
struct Clawback<'a> {
    orig: &'a Transaction,
    days_after: i64,
    seller_amount: Decimal,
    refunded: i64,
    /// `None`: overflow.
    amount: Option<Decimal>,
}

/// `YYYY-Qn` without the formatting machinery (the same text as `format!("{y}-Q{q}")`).
fn period_string(y: i32, q: u32) -> String {
    if (1000..=9999).contains(&y) && (1..=9).contains(&q) {
        let y = y.unsigned_abs();
        let digits = [
            b'0' + (y / 1000) as u8,
            b'0' + (y / 100 % 10) as u8,
            b'0' + (y / 10 % 10) as u8,
            b'0' + (y % 10) as u8,
            b'-',
            b'Q',
            b'0' + q as u8,
        ];
        let mut s = String::with_capacity(digits.len());
        s.extend(digits.iter().map(|&b| char::from(b)));
        s
    } else {
        format!("{y}-Q{q}")
    }
}

impl<'a> Calculator<'a> {
    /// Builds the indexes (O(n log n) in the transactions). On large data sets the sort
    /// by id runs on a second thread beside the partner index.
    pub fn new(ds: &'a Dataset) -> Calculator<'a> {
        let fy_start = ds.program.fiscal_year_start_month.clamp(1, 12);
        let txs = &ds.transactions;
        let sort_by_id = || {
            let mut order: Vec<usize> = (0..txs.len()).collect();
            order.sort_unstable_by(|&a, &b| {
                txs[a]
                    .transaction_id
                    .cmp(&txs[b].transaction_id)
                    .then(a.cmp(&b))
            });
            let duplicate_ids = order
                .windows(2)
                .any(|w| txs[w[0]].transaction_id == txs[w[1]].transaction_id);
            (order, duplicate_ids)
        };
        let parallel =
            txs.len() >= 50_000 && std::thread::available_parallelism().is_ok_and(|n| n.get() > 1);
        let ((order, duplicate_ids), (partner_ix, tx_partner)) = if parallel {
            std::thread::scope(|s| {
                let h = s.spawn(sort_by_id);
                let rest = partner_index(ds);
                let sorted = h.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
                (sorted, rest)
            })
        } else {
            (sort_by_id(), partner_index(ds))
        };
        let before = bookings(ds, fy_start, &tx_partner, &order);
        let naming = infer_naming_with(ds, |id| find_in_order(txs, &order, id));

        let mut partner_ix = partner_ix;
        let mut intern = |id: &'a str| -> usize {
            let n = partner_ix.len();
            *partner_ix.entry(id).or_insert(n)
        };
        let hist_ix: Vec<usize> = ds
            .tier_history
            .iter()
            .map(|h| intern(&h.partner_id))
            .collect();
        let quota_ix: Vec<usize> = ds.quotas.iter().map(|q| intern(&q.partner_id)).collect();
        let n_partners = partner_ix.len();

        let mut partner_rows: Vec<Option<&'a Partner>> = vec![None; n_partners];
        for p in &ds.partners {
            if let Some(&k) = partner_ix.get(p.partner_id.as_str()) {
                partner_rows[k] = Some(p);
            }
        }
        let tier_names: HashMap<&'a str, &'a str> = ds
            .tiers
            .iter()
            .map(|t| (t.tier_id.as_str(), t.name.as_str()))
            .collect();
        let mut tier_ix: HashMap<&'a str, usize> = HashMap::default();
        let mut tiers: Vec<(&'a str, Option<Decimal>)> = Vec::new();
        let mut tier_hist: Vec<Vec<(NaiveDate, usize)>> = vec![Vec::new(); n_partners];
        for (h, &p) in ds.tier_history.iter().zip(&hist_ix) {
            let id = h.tier_id.as_str();
            let k = match tier_ix.get(id) {
                Some(&k) => k,
                None => {
                    let k = tiers.len();
                    tiers.push((id, seller_rate(ds, &tier_names, id)));
                    tier_ix.insert(id, k);
                    k
                }
            };
            tier_hist[p].push((h.effective_from, k));
        }
        for v in &mut tier_hist {
            v.sort_by_key(|(d, _)| *d);
        }
        let products = ds.products.iter().map(|p| (p.sku.as_str(), p)).collect();
        let mut accelerators: Vec<(Decimal, Decimal)> = ds
            .plan
            .accelerators
            .iter()
            .map(|a| (a.attainment_from, a.multiplier))
            .collect();
        accelerators.sort_by_key(|a| a.0);
        let mut quotas: QuotaIndex = HashMap::default();
        for (q, &p) in ds.quotas.iter().zip(&quota_ix) {
            if let Some((y, n)) = parse_quarter(&q.period) {
                let th = if q.quota > Decimal::ZERO {
                    thresholds(q.quota, &accelerators)
                } else {
                    None
                };
                quotas.insert((p, y, n), (q.quota, th));
            }
        }
        Calculator {
            ds,
            fy_start,
            naming,
            partner_ix,
            partner_rows,
            tier_hist,
            tiers,
            tier_names,
            quotas,
            products,
            tx_partner,
            order,
            duplicate_ids,
            before,
            accelerators,
            prm_index: std::sync::OnceLock::new(),
            rules: v2::RuleSet::new(&ds.plan.rules),
        }
    }

    /// The fiscal-year naming in use.
    pub fn naming(&self) -> FiscalYearNaming {
        self.naming
    }

    /// `(named year, quarter)` of a date under the data set's naming.
    pub fn quarter_of(&self, d: NaiveDate) -> (i32, u32) {
        let (y, q) = fiscal_year_quarter(d, self.fy_start);
        match self.naming {
            FiscalYearNaming::StartYear => (y, q),
            FiscalYearNaming::EndYear => (y + 1, q),
        }
    }

    /// `YYYY-Qn` of a date under the data set's naming.
    pub fn period_of(&self, d: NaiveDate) -> String {
        let (y, q) = self.quarter_of(d);
        period_string(y, q)
    }

    /// The tier index on a day of partner `p` and the `effective_from` of its row.
    fn tier_ix_on(&self, p: usize, d: NaiveDate) -> Option<(usize, NaiveDate)> {
        let rows = self.tier_hist.get(p)?;
        let n = rows.partition_point(|(from, _)| *from <= d);
        if n == 0 {
            return None;
        }
        let (from, tier) = rows[n - 1];
        Some((tier, from))
    }

    /// The partner's tier on a day and the `effective_from` of the row that set it.
    pub fn tier_on(&self, partner_id: &str, d: NaiveDate) -> Option<(&'a str, NaiveDate)> {
        let p = *self.partner_ix.get(partner_id)?;
        let (k, from) = self.tier_ix_on(p, d)?;
        Some((self.tiers[k].0, from))
    }

    fn tier_eligible(&self, tier_id: &str, eligible: &[String]) -> bool {
        eligible.iter().any(|e| {
            e == tier_id
                || self
                    .tier_names
                    .get(tier_id)
                    .is_some_and(|n| e.eq_ignore_ascii_case(n))
        })
    }

    /// The family of a sku (`None`: unknown product).
    pub fn family_of(&self, sku: &str) -> Option<&'a str> {
        self.products.get(sku).map(|p| p.family.as_str())
    }

    /// The seller figures of sale `i` (unrounded) or why there is none.
    fn seller_core(&self, i: usize) -> Result<SellerCore<'a>, NoLine> {
        let t = &self.ds.transactions[i];
        let p = self.tx_partner[i];
        let (k, tier_from) = self
            .tier_ix_on(p, t.closed_on)
            .ok_or_else(|| NoLine::NoTier {
                partner_id: t.partner_id.clone(),
                closed_on: t.closed_on,
            })?;
        let (tier_id, tier_rate) = self.tiers[k];
        let family = self.family_of(&t.sku);
        let family_multiplier = family
            .and_then(|f| self.ds.plan.family_multipliers.get(f).copied())
            .unwrap_or(Decimal::ONE);
        let overflow = || NoLine::Overflow {
            role: CommissionRole::Seller,
        };
        let ruled = self
            .rules
            .touches_seller()
            .then(|| self.seller_rules(i, tier_id, family, false));
        let rate_rule = ruled.as_ref().and_then(|r| r.rate.map(rules::rate_of));
        let (tier_rate, mut rate) = match (rate_rule, tier_rate) {
            (Some(r), tr) => (tr.unwrap_or(Decimal::ZERO), r),
            (None, Some(tr)) => (tr, tr.checked_mul(family_multiplier).ok_or_else(overflow)?),
            (None, None) => {
                return Err(NoLine::NoRate {
                    tier_id: tier_id.to_string(),
                })
            }
        };
        let accel_rule = ruled.as_ref().and_then(|r| r.accel);
        for m in ruled.iter().flat_map(|r| r.mults.iter()) {
            rate = rate
                .checked_mul(rules::multiplier_of(m))
                .ok_or_else(overflow)?;
        }
        let schedule = accel_rule.map_or(&self.accelerators[..], rules::schedule_of);
        let (y, q) = self.quarter_of(t.closed_on);
        let row = self.quotas.get(&(p, y, q));
        let quota = row.map(|r| r.0);
        let before = self.before[i];
        let after = before.checked_add(t.amount).ok_or_else(overflow)?;
        let mut uncapped = Decimal::ZERO;
        let add = |s: Segment| {
            uncapped = uncapped.checked_add(s.commission)?;
            Some(())
        };
        // The same spans as `segments`, with the quota's thresholds computed once.
        match row {
            Some((q, th)) if accelerated(*q, t.amount, schedule) => {
                let owned;
                let th = if accel_rule.is_some() {
                    owned = thresholds(*q, schedule).ok_or_else(overflow)?;
                    &owned[..]
                } else {
                    th.as_deref().ok_or_else(overflow)?
                };
                visit_accelerated(before, after, rate, th, schedule, add)
            }
            _ => visit_base(before, t.amount, rate, add),
        }
        .ok_or_else(overflow)?;
        let cap = self.ds.plan.per_transaction_cap;
        let capped = cap.is_some_and(|c| uncapped > c);
        Ok(SellerCore {
            tier_id,
            tier_from,
            tier_rate,
            family,
            family_multiplier,
            rate,
            quota,
            before,
            after,
            uncapped,
            cap,
            capped,
            accel_rule,
        })
    }

    /// The seller derivation of sale `i` (unrounded) or why there is none.
    fn seller(&self, i: usize) -> Result<SellerDerivation, NoLine> {
        let c = self.seller_core(i)?;
        let t = &self.ds.transactions[i];
        let schedule = c
            .accel_rule
            .map_or(&self.accelerators[..], rules::schedule_of);
        let segments = segments(
            c.before,
            t.amount,
            c.rate,
            c.quota.filter(|q| *q > Decimal::ZERO),
            schedule,
        )
        .ok_or(NoLine::Overflow {
            role: CommissionRole::Seller,
        })?;
        Ok(SellerDerivation {
            tier_id: c.tier_id.to_string(),
            tier_effective_from: c.tier_from,
            tier_rate: c.tier_rate,
            family: c.family.map(str::to_string),
            family_multiplier: c.family_multiplier,
            rate: c.rate,
            quota: c.quota,
            before: c.before,
            after: c.after,
            segments,
            uncapped: c.uncapped,
            cap: c.cap,
            capped: c.capped,
            rules: if self.rules.touches_seller() {
                let family = c.family;
                Box::new(self.seller_rules(i, c.tier_id, family, true).trace())
            } else {
                Box::default()
            },
        })
    }

    /// The override parent of partner index `p` when the plan pays overrides.
    fn override_of(&self, p: usize) -> Option<(&'a str, Decimal)> {
        let parent = self
            .partner_rows
            .get(p)
            .copied()
            .flatten()
            .and_then(|row| row.parent_partner_id.as_deref())?;
        Some((parent, self.ds.plan.override_rate?))
    }

    fn spiff_check(
        &self,
        sp: &crate::model::Spiff,
        t: &Transaction,
        family: Option<&str>,
        tier_id: &str,
    ) -> SpiffCheck {
        if sp.sku.as_ref().is_some_and(|s| *s != t.sku) {
            return SpiffCheck::Skip;
        }
        if sp.family.as_deref().is_some_and(|f| Some(f) != family) {
            return SpiffCheck::Skip;
        }
        if t.closed_on < sp.from || t.closed_on > sp.to {
            return SpiffCheck::OutsideWindow;
        }
        if !self.tier_eligible(tier_id, &sp.eligible_tiers) {
            return SpiffCheck::TierNotEligible;
        }
        SpiffCheck::Pays(sp.amount_per_unit.checked_mul(Decimal::from(t.quantity)))
    }

    /// The original sale of a refund, when it is a sale in the data set.
    fn original_of(&self, t: &Transaction) -> Option<usize> {
        t.original_transaction_id
            .as_deref()
            .and_then(|id| self.index_of(id))
            .filter(|&j| self.ds.transactions[j].kind == TransactionKind::Sale)
    }

    /// The clawback of refund `t`, or why there is none.
    fn clawback(&self, t: &Transaction) -> Result<Clawback<'a>, NoLine> {
        let Some(j) = self.original_of(t) else {
            return Err(NoLine::RefundNoOriginal {
                original_transaction_id: t.original_transaction_id.clone(),
            });
        };
        let orig = &self.ds.transactions[j];
        let seller = self
            .seller_core(j)
            .map_err(|_| NoLine::RefundOriginalNoSellerLine {
                original_transaction_id: orig.transaction_id.clone(),
            })?;
        let days_after = (t.closed_on - orig.closed_on).num_days();
        if let Some(w) = self.ds.plan.clawback_window_days {
            if days_after > w {
                return Err(NoLine::RefundOutsideWindow {
                    original_transaction_id: orig.transaction_id.clone(),
                    days_after,
                    window_days: w,
                });
            }
        }
        if orig.quantity == 0 {
            return Err(NoLine::RefundZeroQuantity {
                original_transaction_id: orig.transaction_id.clone(),
            });
        }
        let seller_amount = round_cents(seller.amount());
        let refunded = t.quantity.checked_abs().unwrap_or(i64::MAX);
        let amount = seller_amount
            .checked_mul(Decimal::from(refunded))
            .and_then(|x| x.checked_div(Decimal::from(orig.quantity)))
            .map(|x| -x);
        Ok(Clawback {
            orig,
            days_after,
            seller_amount,
            refunded,
            amount,
        })
    }

    /// A line of transaction `t`: id `C-{transaction}-{suffix}{suffix2}`, amount rounded.
    fn line(
        &self,
        t: &Transaction,
        role: CommissionRole,
        suffix: (&str, &str),
        payee: &str,
        amount: Decimal,
        period: String,
    ) -> CommissionLine {
        let tid = t.transaction_id.as_str();
        let mut commission_id =
            String::with_capacity(3 + tid.len() + suffix.0.len() + suffix.1.len());
        commission_id.push_str("C-");
        commission_id.push_str(tid);
        commission_id.push('-');
        commission_id.push_str(suffix.0);
        commission_id.push_str(suffix.1);
        CommissionLine {
            commission_id,
            transaction_id: tid.to_string(),
            payee_partner_id: payee.to_string(),
            role,
            amount: round_cents(amount),
            period,
        }
    }

    /// The lines of transaction `i` (no derivations), appended to `out` in the order
    /// seller, override, SPIFFs in plan order, clawback.
    fn emit(&self, i: usize, out: &mut Vec<CommissionLine>) {
        let Some(t) = self.ds.transactions.get(i) else {
            return;
        };
        match t.kind {
            TransactionKind::Sale => {
                let p = self.tx_partner[i];
                let Some((k, _)) = self.tier_ix_on(p, t.closed_on) else {
                    return;
                };
                let tier_id = self.tiers[k].0;
                // The first line takes the period; later ones copy it.
                let start = out.len();
                let mut owned = Some(self.period_of(t.closed_on));
                let mut period = |out: &[CommissionLine]| {
                    owned
                        .take()
                        .or_else(|| out.get(start).map(|l| l.period.clone()))
                        .unwrap_or_default()
                };
                if let Ok(c) = self.seller_core(i) {
                    let l = self.line(
                        t,
                        CommissionRole::Seller,
                        ("S", ""),
                        &t.partner_id,
                        c.amount(),
                        period(out),
                    );
                    out.push(l);
                }
                if let Some((parent, rate)) = self.override_of(p) {
                    if let Some(a) = t.amount.checked_mul(rate) {
                        let p = period(out);
                        let l = self.line(t, CommissionRole::Override, ("O", ""), parent, a, p);
                        out.push(l);
                    }
                }
                if self.ds.plan.spiffs.is_empty() && self.rules.spiffs.is_empty() {
                    return;
                }
                let family = self.family_of(&t.sku);
                for (rule, check) in self.spiff_rule_checks(i, tier_id, family) {
                    if let SpiffCheck::Pays(Some(a)) = check {
                        let l = self.line(
                            t,
                            CommissionRole::Spiff,
                            ("P-", &rule.rule_id),
                            &t.partner_id,
                            a,
                            period(out),
                        );
                        out.push(l);
                    }
                }
                for sp in &self.ds.plan.spiffs {
                    if let SpiffCheck::Pays(Some(a)) = self.spiff_check(sp, t, family, tier_id) {
                        let l = self.line(
                            t,
                            CommissionRole::Spiff,
                            ("P-", &sp.spiff_id),
                            &t.partner_id,
                            a,
                            period(out),
                        );
                        out.push(l);
                    }
                }
            }
            TransactionKind::Refund => {
                if let Ok(c) = self.clawback(t) {
                    if let Some(a) = c.amount {
                        let l = self.line(
                            t,
                            CommissionRole::Clawback,
                            ("K", ""),
                            &c.orig.partner_id,
                            a,
                            self.period_of(t.closed_on),
                        );
                        out.push(l);
                    }
                }
            }
        }
    }

    /// Every line of transaction `i` with its derivation, and why roles gave none.
    pub(crate) fn lines_of(&self, i: usize) -> TxLines {
        let mut out = TxLines::default();
        let Some(t) = self.ds.transactions.get(i) else {
            return out;
        };
        match t.kind {
            TransactionKind::Sale => self.sale_lines(t, i, &mut out),
            TransactionKind::Refund => self.refund_lines(t, &mut out),
        }
        out
    }

    fn sale_lines(&self, t: &Transaction, i: usize, out: &mut TxLines) {
        let p = self.tx_partner[i];
        // No tier, no lines (of any role).
        let Some((k, _)) = self.tier_ix_on(p, t.closed_on) else {
            out.no_lines.push(NoLine::NoTier {
                partner_id: t.partner_id.clone(),
                closed_on: t.closed_on,
            });
            return;
        };
        let tier_id = self.tiers[k].0;
        let period = self.period_of(t.closed_on);
        match self.seller(i) {
            Ok(d) => {
                let amount = match d.cap {
                    Some(c) if d.capped => c,
                    _ => d.uncapped,
                };
                let line = self.line(
                    t,
                    CommissionRole::Seller,
                    ("S", ""),
                    &t.partner_id,
                    amount,
                    period.clone(),
                );
                out.lines.push((line, Derivation::Seller(d)));
            }
            Err(e) => out.no_lines.push(e),
        }
        if let Some((parent, rate)) = self.override_of(p) {
            match t.amount.checked_mul(rate) {
                Some(a) => {
                    let line = self.line(
                        t,
                        CommissionRole::Override,
                        ("O", ""),
                        parent,
                        a,
                        period.clone(),
                    );
                    out.lines.push((
                        line,
                        Derivation::Override {
                            seller_partner_id: t.partner_id.clone(),
                            parent_partner_id: parent.to_string(),
                            rate,
                            base: t.amount,
                        },
                    ));
                }
                None => out.no_lines.push(NoLine::Overflow {
                    role: CommissionRole::Override,
                }),
            }
        }
        let family = self.family_of(&t.sku);
        self.spiff_rule_lines(t, i, tier_id, family, &period, out);
        for sp in &self.ds.plan.spiffs {
            match self.spiff_check(sp, t, family, tier_id) {
                SpiffCheck::Skip => {}
                SpiffCheck::OutsideWindow => out.no_lines.push(NoLine::SpiffOutsideWindow {
                    spiff_id: sp.spiff_id.clone(),
                    from: sp.from,
                    to: sp.to,
                }),
                SpiffCheck::TierNotEligible => out.no_lines.push(NoLine::SpiffTierNotEligible {
                    spiff_id: sp.spiff_id.clone(),
                    tier_id: tier_id.to_string(),
                }),
                SpiffCheck::Pays(Some(a)) => {
                    let line = self.line(
                        t,
                        CommissionRole::Spiff,
                        ("P-", &sp.spiff_id),
                        &t.partner_id,
                        a,
                        period.clone(),
                    );
                    out.lines.push((
                        line,
                        Derivation::Spiff {
                            spiff_id: sp.spiff_id.clone(),
                            family: sp.family.clone(),
                            sku: sp.sku.clone(),
                            from: sp.from,
                            to: sp.to,
                            tier_id: tier_id.to_string(),
                            amount_per_unit: sp.amount_per_unit,
                            quantity: t.quantity,
                        },
                    ));
                }
                SpiffCheck::Pays(None) => out.no_lines.push(NoLine::Overflow {
                    role: CommissionRole::Spiff,
                }),
            }
        }
    }

    fn refund_lines(&self, t: &Transaction, out: &mut TxLines) {
        let c = match self.clawback(t) {
            Ok(c) => c,
            Err(e) => {
                out.no_lines.push(e);
                return;
            }
        };
        match c.amount {
            Some(a) => {
                let line = self.line(
                    t,
                    CommissionRole::Clawback,
                    ("K", ""),
                    &c.orig.partner_id,
                    a,
                    self.period_of(t.closed_on),
                );
                out.lines.push((
                    line,
                    Derivation::Clawback {
                        original_transaction_id: c.orig.transaction_id.clone(),
                        original_closed_on: c.orig.closed_on,
                        days_after: c.days_after,
                        window_days: self.ds.plan.clawback_window_days,
                        original_seller_amount: c.seller_amount,
                        refunded_quantity: c.refunded,
                        original_quantity: c.orig.quantity,
                    },
                ));
            }
            None => out.no_lines.push(NoLine::Overflow {
                role: CommissionRole::Clawback,
            }),
        }
    }

    /// Index of a transaction by id (of a duplicated id, the last row).
    pub fn index_of(&self, transaction_id: &str) -> Option<usize> {
        find_in_order(&self.ds.transactions, &self.order, transaction_id)
    }

    /// Every recalculated line, sorted by (transaction, role, commission id).
    pub fn recalculate(&self) -> Vec<CommissionLine> {
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(8);
        self.recalculate_on(threads, 50_000)
    }

    /// [`Calculator::recalculate`] on up to `threads` threads when there are at least
    /// `min_parallel` transactions.
    pub(crate) fn recalculate_on(
        &self,
        threads: usize,
        min_parallel: usize,
    ) -> Vec<CommissionLine> {
        // Transactions in id order; each one's lines sorted by role and id. This equals
        // sorting all lines by (transaction, role, id) at a fraction of the cost.
        let order = &self.order;
        let run = |chunk: &[usize]| -> Vec<CommissionLine> {
            let mut out = Vec::with_capacity(chunk.len() * 2);
            for &i in chunk {
                let start = out.len();
                self.emit(i, &mut out);
                if out.len() - start > 1 {
                    sort_lines(&mut out[start..]);
                }
            }
            out.shrink_to_fit();
            out
        };
        let mut out = if threads < 2 || order.len() < min_parallel {
            run(order)
        } else {
            let size = order.len().div_ceil(threads);
            let parts: Vec<Vec<CommissionLine>> = std::thread::scope(|s| {
                let handles: Vec<_> = order
                    .chunks(size)
                    .map(|c| s.spawn(move || run(c)))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                    .collect()
            });
            // The first part grows into the whole (a large block grows in place or by
            // remapping), so the lines are not held twice.
            let total = parts.iter().map(Vec::len).sum::<usize>();
            let mut parts = parts.into_iter();
            let mut out = parts.next().unwrap_or_default();
            out.reserve_exact(total - out.len());
            for p in parts {
                out.extend(p);
            }
            out
        };
        // Duplicate transaction ids (rejected by import, possible in hand-built data
        // sets) could interleave differently: settle them with a full sort.
        if self.duplicate_ids {
            sort_lines(&mut out);
        }
        out
    }

    /// The PRM's lines of one transaction (indexed on first call).
    pub fn prm_lines(&self, transaction_id: &str) -> Vec<&'a CommissionLine> {
        let ds = self.ds;
        let idx = self.prm_index.get_or_init(|| {
            let mut m: HashMap<&'a str, Vec<usize>> = HashMap::default();
            for (k, l) in ds.commissions.iter().enumerate() {
                m.entry(l.transaction_id.as_str()).or_default().push(k);
            }
            m
        });
        idx.get(transaction_id)
            .map(|v| v.iter().map(|&k| &ds.commissions[k]).collect())
            .unwrap_or_default()
    }

    /// The data set this calculator indexes.
    pub fn dataset(&self) -> &'a Dataset {
        self.ds
    }
}

/// The partner index (partners' rows first, then the transactions' partners) and each
/// transaction's partner index.
fn partner_index(ds: &Dataset) -> (HashMap<&str, usize>, Vec<usize>) {
    let mut partner_ix: HashMap<&str, usize> = HashMap::default();
    for p in &ds.partners {
        let n = partner_ix.len();
        partner_ix.entry(p.partner_id.as_str()).or_insert(n);
    }
    let tx_partner: Vec<usize> = ds
        .transactions
        .iter()
        .map(|t| {
            let n = partner_ix.len();
            *partner_ix.entry(t.partner_id.as_str()).or_insert(n)
        })
        .collect();
    (partner_ix, tx_partner)
}

/// Each sale's bookings in its partner's fiscal quarter before it, in the order (close
/// date, transaction id, index); zero for refunds. `order` is the transactions sorted by
/// (id, index): a position in it settles ties on the close date.
///
/// Sorted by (partner, close date): a partner's fiscal quarters are runs of dates, so
/// this groups each (partner, quarter) with its sales in date order. Quarters are
/// grouped by the start-year naming: the end-year naming only renames them.
fn bookings(ds: &Dataset, fy_start: u32, tx_partner: &[usize], order: &[usize]) -> Vec<Decimal> {
    let txs = &ds.transactions;
    let mut rank = vec![0usize; txs.len()];
    for (r, &i) in order.iter().enumerate() {
        rank[i] = r;
    }
    // (partner << 32 | day number, rank): day numbers fit in 32 bits once offset.
    let day_key = |d: NaiveDate| (i64::from(d.num_days_from_ce()) - i64::from(i32::MIN)) as u128;
    let mut sales: Vec<(u128, usize)> = txs
        .iter()
        .enumerate()
        .filter(|(_, t)| t.kind == TransactionKind::Sale)
        .map(|(i, t)| {
            (
                ((tx_partner[i] as u128) << 32) | day_key(t.closed_on),
                rank[i],
            )
        })
        .collect();
    drop(rank);
    sales.sort_unstable();
    let mut before = vec![Decimal::ZERO; txs.len()];
    let mut running = Decimal::ZERO;
    let mut prev: Option<(usize, (i32, u32))> = None;
    for (_, r) in sales {
        let i = order[r];
        let t = &txs[i];
        let group = (tx_partner[i], fiscal_year_quarter(t.closed_on, fy_start));
        if prev != Some(group) {
            running = Decimal::ZERO;
            prev = Some(group);
        }
        before[i] = running;
        // Saturate rather than panic on absurd data; such a sale fails later as overflow.
        running = running.checked_add(t.amount).unwrap_or(Decimal::MAX);
    }
    before
}

/// The seller rate of a tier: by id, else by the tier's name (case-insensitive).
fn seller_rate(ds: &Dataset, tier_names: &HashMap<&str, &str>, tier_id: &str) -> Option<Decimal> {
    let rates = &ds.plan.seller_rates;
    rates.get(tier_id).copied().or_else(|| {
        let name = tier_names.get(tier_id)?;
        rates
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    })
}

/// The index of the last transaction with this id, through `order` (indices sorted by
/// (id, index)).
fn find_in_order(txs: &[Transaction], order: &[usize], id: &str) -> Option<usize> {
    let end = order.partition_point(|&k| txs[k].transaction_id.as_str() <= id);
    let k = *order.get(end.checked_sub(1)?)?;
    (txs[k].transaction_id == id).then_some(k)
}

fn sort_lines(lines: &mut [CommissionLine]) {
    lines.sort_by(|a, b| {
        a.transaction_id
            .cmp(&b.transaction_id)
            .then(a.role.cmp(&b.role))
            .then(a.commission_id.cmp(&b.commission_id))
            .then(a.payee_partner_id.cmp(&b.payee_partner_id))
            .then(a.amount.cmp(&b.amount))
    });
}

/// Calls `f` with each accelerator span of a sale covering bookings
/// `before .. before + amount` (see [`segments`]); `None` on decimal overflow or when
/// `f` returns `None`.
fn visit_segments(
    before: Decimal,
    amount: Decimal,
    rate: Decimal,
    quota: Option<Decimal>,
    accelerators: &[(Decimal, Decimal)],
    f: impl FnMut(Segment) -> Option<()>,
) -> Option<()> {
    match quota {
        Some(q) if accelerated(q, amount, accelerators) => {
            let after = before.checked_add(amount)?;
            let th = thresholds(q, accelerators)?;
            visit_accelerated(before, after, rate, &th, accelerators, f)
        }
        _ => visit_base(before, amount, rate, f),
    }
}

/// Whether a sale of `amount` against a quota goes through the accelerators.
fn accelerated(quota: Decimal, amount: Decimal, accelerators: &[(Decimal, Decimal)]) -> bool {
    quota > Decimal::ZERO && !accelerators.is_empty() && amount > Decimal::ZERO
}

/// `quota x attainment_from` of each accelerator, ascending (`None`: overflow).
fn thresholds(quota: Decimal, accelerators: &[(Decimal, Decimal)]) -> Option<Box<[Decimal]>> {
    accelerators
        .iter()
        .map(|(a, _)| quota.checked_mul(*a))
        .collect()
}

/// The whole sale as one span at multiplier 1.
fn visit_base(
    before: Decimal,
    amount: Decimal,
    rate: Decimal,
    mut f: impl FnMut(Segment) -> Option<()>,
) -> Option<()> {
    let after = before.checked_add(amount)?;
    f(Segment {
        from: before,
        to: after,
        amount,
        attainment_from: None,
        multiplier: Decimal::ONE,
        commission: amount.checked_mul(rate)?,
    })
}

/// The spans of a sale covering `before .. after` with the accelerators' thresholds
/// `th` (ascending, one per accelerator, at least one).
/// Regions: (-inf, t0) at 1, [t_k, t_{k+1}) at m_k, [t_last, +inf) at m_last.
fn visit_accelerated(
    before: Decimal,
    after: Decimal,
    rate: Decimal,
    th: &[Decimal],
    accelerators: &[(Decimal, Decimal)],
    mut f: impl FnMut(Segment) -> Option<()>,
) -> Option<()> {
    let first = *th.first()?;
    if before < first {
        let to = after.min(first);
        let part = to - before;
        f(Segment {
            from: before,
            to,
            amount: part,
            attainment_from: None,
            multiplier: Decimal::ONE,
            commission: part.checked_mul(rate)?,
        })?;
        if after <= first {
            // Below the first threshold throughout: no accelerated span.
            return Some(());
        }
    }
    for (k, (&t, &(a, m))) in th.iter().zip(accelerators).enumerate() {
        let lo = before.max(t);
        let hi = match th.get(k + 1) {
            Some(&n) => after.min(n),
            None => after,
        };
        if hi > lo {
            let part = hi - lo;
            f(Segment {
                from: lo,
                to: hi,
                amount: part,
                attainment_from: Some(a),
                multiplier: m,
                commission: part.checked_mul(rate)?.checked_mul(m)?,
            })?;
        }
    }
    Some(())
}

/// Splits a sale covering bookings `before .. before + amount` into accelerator spans.
///
/// `accelerators` is `(attainment_from, multiplier)` sorted by attainment. Without a
/// positive quota, or for a non-positive amount, the whole sale is one base span.
/// Returns `None` only on decimal overflow.
pub fn segments(
    before: Decimal,
    amount: Decimal,
    rate: Decimal,
    quota: Option<Decimal>,
    accelerators: &[(Decimal, Decimal)],
) -> Option<Vec<Segment>> {
    let mut out = Vec::with_capacity(accelerators.len() + 1);
    visit_segments(before, amount, rate, quota, accelerators, |s| {
        out.push(s);
        Some(())
    })?;
    Some(out)
}

/// Every line the plan gives for the data set, sorted by (transaction, role, id): the
/// result does not depend on the order of the input rows.
pub fn recalculate(ds: &Dataset) -> Vec<CommissionLine> {
    Calculator::new(ds).recalculate()
}

/// Every line with its derivation, in the order of [`recalculate`].
pub fn recalculate_explained(ds: &Dataset) -> Vec<ExplainedLine> {
    let calc = Calculator::new(ds);
    let currency = explain::currency(ds);
    let mut out = Vec::new();
    for i in 0..ds.transactions.len() {
        for (line, d) in calc.lines_of(i).lines {
            let steps = explain::steps(&d, &line, currency);
            out.push(ExplainedLine {
                line,
                derivation: d,
                steps,
            });
        }
    }
    out.sort_by(|a, b| {
        a.line
            .transaction_id
            .cmp(&b.line.transaction_id)
            .then(a.line.role.cmp(&b.line.role))
            .then(a.line.commission_id.cmp(&b.line.commission_id))
    });
    out
}

/// The derivation of every line of one transaction, with its variance against the PRM
/// when there is one; `None` when the transaction is not in the data set.
pub fn explain(ds: &Dataset, transaction_id: &str) -> Option<Explanation> {
    Calculator::new(ds).explain(transaction_id)
}

#[cfg(test)]
mod tests;
