//! Shadow commission recalculation: `shared/spec/plan.md`, exact to the cent.
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

mod explain;
mod variance;

use std::collections::HashMap as StdHashMap;
use std::hash::{BuildHasherDefault, Hasher};

use chrono::NaiveDate;
use rust_decimal::Decimal;

use crate::model::{
    fiscal_year_quarter, parse_quarter, CommissionLine, CommissionRole, Dataset, Partner, Product,
    Transaction, TransactionKind,
};
use crate::money::round_cents;

pub use explain::{ExplainedLine, Explanation};
pub use variance::{variances, Variance};

/// A small multiply-rotate hasher (FxHash style) for the calculator's indexes: keys are
/// the data set's own ids, not attacker-chosen, and SipHash dominated the lookups.
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher(u64);

const FX_SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(FX_SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_i32(&mut self, i: i32) {
        self.add(u64::from(i as u32));
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

/// `HashMap` with [`FxHasher`].
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
    let fy_start = ds.program.fiscal_year_start_month.clamp(1, 12);
    if fy_start == 1 {
        return FiscalYearNaming::StartYear;
    }
    let by_id: HashMap<&str, &Transaction> = ds
        .transactions
        .iter()
        .map(|t| (t.transaction_id.as_str(), t))
        .collect();
    let (mut start_votes, mut end_votes) = (0usize, 0usize);
    for line in &ds.commissions {
        let Some(t) = by_id.get(line.transaction_id.as_str()) else {
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
pub struct Calculator<'a> {
    ds: &'a Dataset,
    fy_start: u32,
    naming: FiscalYearNaming,
    tier_hist: HashMap<&'a str, Vec<(NaiveDate, &'a str)>>,
    tier_names: HashMap<&'a str, &'a str>,
    quotas: HashMap<(&'a str, i32, u32), Decimal>,
    products: HashMap<&'a str, &'a Product>,
    partners: HashMap<&'a str, &'a Partner>,
    tx_index: HashMap<&'a str, usize>,
    /// Per transaction index: the quarter bookings before it (sales only).
    before: Vec<Decimal>,
    /// Accelerators sorted by `attainment_from`.
    accelerators: Vec<(Decimal, Decimal)>,
    /// The PRM's lines by transaction, built on first use (explanations).
    prm_index: std::sync::OnceLock<HashMap<&'a str, Vec<usize>>>,
}

/// All lines of one transaction with their derivations, and why roles gave none.
#[derive(Debug, Clone, Default)]
pub(crate) struct TxLines {
    pub lines: Vec<(CommissionLine, Derivation)>,
    pub no_lines: Vec<NoLine>,
}

impl<'a> Calculator<'a> {
    /// Builds the indexes (O(n log n) in the transactions).
    pub fn new(ds: &'a Dataset) -> Calculator<'a> {
        let fy_start = ds.program.fiscal_year_start_month.clamp(1, 12);
        let naming = infer_fiscal_naming(ds);
        let mut tier_hist: HashMap<&str, Vec<(NaiveDate, &str)>> = HashMap::default();
        for h in &ds.tier_history {
            tier_hist
                .entry(h.partner_id.as_str())
                .or_default()
                .push((h.effective_from, h.tier_id.as_str()));
        }
        for v in tier_hist.values_mut() {
            // Stable: of two rows on one day, the later in the file wins.
            v.sort_by_key(|(d, _)| *d);
        }
        let tier_names = ds
            .tiers
            .iter()
            .map(|t| (t.tier_id.as_str(), t.name.as_str()))
            .collect();
        let quotas = ds
            .quotas
            .iter()
            .filter_map(|q| {
                let (y, n) = parse_quarter(&q.period)?;
                Some(((q.partner_id.as_str(), y, n), q.quota))
            })
            .collect();
        let products = ds.products.iter().map(|p| (p.sku.as_str(), p)).collect();
        let partners = ds
            .partners
            .iter()
            .map(|p| (p.partner_id.as_str(), p))
            .collect();
        let tx_index = ds
            .transactions
            .iter()
            .enumerate()
            .map(|(i, t)| (t.transaction_id.as_str(), i))
            .collect();
        let mut accelerators: Vec<(Decimal, Decimal)> = ds
            .plan
            .accelerators
            .iter()
            .map(|a| (a.attainment_from, a.multiplier))
            .collect();
        accelerators.sort_by_key(|a| a.0);
        let mut calc = Calculator {
            ds,
            fy_start,
            naming,
            tier_hist,
            tier_names,
            quotas,
            products,
            partners,
            tx_index,
            before: vec![Decimal::ZERO; ds.transactions.len()],
            accelerators,
            prm_index: std::sync::OnceLock::new(),
        };
        calc.compute_bookings();
        calc
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
        format!("{y}-Q{q}")
    }

    fn compute_bookings(&mut self) {
        let txs = &self.ds.transactions;
        let mut sales: Vec<(usize, (i32, u32))> = txs
            .iter()
            .enumerate()
            .filter(|(_, t)| t.kind == TransactionKind::Sale)
            .map(|(i, t)| (i, self.quarter_of(t.closed_on)))
            .collect();
        sales.sort_unstable_by(|(a, qa), (b, qb)| {
            let (ta, tb) = (&txs[*a], &txs[*b]);
            ta.partner_id
                .cmp(&tb.partner_id)
                .then(qa.cmp(qb))
                .then(ta.closed_on.cmp(&tb.closed_on))
                .then(ta.transaction_id.cmp(&tb.transaction_id))
                .then(a.cmp(b))
        });
        let mut running = Decimal::ZERO;
        let mut prev: Option<(&str, (i32, u32))> = None;
        for (i, q) in sales {
            let t = &txs[i];
            let key = (t.partner_id.as_str(), q);
            if prev != Some(key) {
                running = Decimal::ZERO;
                prev = Some(key);
            }
            self.before[i] = running;
            // Saturate rather than panic on absurd data; such a sale fails later as overflow.
            running = running.checked_add(t.amount).unwrap_or(Decimal::MAX);
        }
    }

    /// The partner's tier on a day and the `effective_from` of the row that set it.
    pub fn tier_on(&self, partner_id: &str, d: NaiveDate) -> Option<(&'a str, NaiveDate)> {
        let rows = self.tier_hist.get(partner_id)?;
        let n = rows.partition_point(|(from, _)| *from <= d);
        if n == 0 {
            return None;
        }
        let (from, tier) = rows[n - 1];
        Some((tier, from))
    }

    fn seller_rate(&self, tier_id: &str) -> Option<Decimal> {
        let rates = &self.ds.plan.seller_rates;
        rates.get(tier_id).copied().or_else(|| {
            let name = self.tier_names.get(tier_id)?;
            rates
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| *v)
        })
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

    /// The seller derivation of sale `i` (unrounded) or why there is none.
    fn seller(&self, i: usize) -> Result<SellerDerivation, NoLine> {
        let t = &self.ds.transactions[i];
        let (tier_id, tier_from) =
            self.tier_on(&t.partner_id, t.closed_on)
                .ok_or_else(|| NoLine::NoTier {
                    partner_id: t.partner_id.clone(),
                    closed_on: t.closed_on,
                })?;
        let tier_rate = self.seller_rate(tier_id).ok_or_else(|| NoLine::NoRate {
            tier_id: tier_id.to_string(),
        })?;
        let family = self.family_of(&t.sku);
        let family_multiplier = family
            .and_then(|f| self.ds.plan.family_multipliers.get(f).copied())
            .unwrap_or(Decimal::ONE);
        let overflow = || NoLine::Overflow {
            role: CommissionRole::Seller,
        };
        let rate = tier_rate
            .checked_mul(family_multiplier)
            .ok_or_else(overflow)?;
        let (y, q) = self.quarter_of(t.closed_on);
        let quota = self.quotas.get(&(t.partner_id.as_str(), y, q)).copied();
        let before = self.before[i];
        let after = before.checked_add(t.amount).ok_or_else(overflow)?;
        let segments = segments(
            before,
            t.amount,
            rate,
            quota.filter(|q| *q > Decimal::ZERO),
            &self.accelerators,
        )
        .ok_or_else(overflow)?;
        let mut uncapped = Decimal::ZERO;
        for s in &segments {
            uncapped = uncapped.checked_add(s.commission).ok_or_else(overflow)?;
        }
        let cap = self.ds.plan.per_transaction_cap;
        let capped = cap.is_some_and(|c| uncapped > c);
        Ok(SellerDerivation {
            tier_id: tier_id.to_string(),
            tier_effective_from: tier_from,
            tier_rate,
            family: family.map(str::to_string),
            family_multiplier,
            rate,
            quota,
            before,
            after,
            segments,
            uncapped,
            cap,
            capped,
        })
    }

    fn line(
        &self,
        t: &Transaction,
        role: CommissionRole,
        suffix: &str,
        payee: &str,
        amount: Decimal,
    ) -> CommissionLine {
        CommissionLine {
            commission_id: format!("C-{}-{}", t.transaction_id, suffix),
            transaction_id: t.transaction_id.clone(),
            payee_partner_id: payee.to_string(),
            role,
            amount: round_cents(amount),
            period: self.period_of(t.closed_on),
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
        // No tier, no lines (of any role).
        let Some((tier_id, _)) = self.tier_on(&t.partner_id, t.closed_on) else {
            out.no_lines.push(NoLine::NoTier {
                partner_id: t.partner_id.clone(),
                closed_on: t.closed_on,
            });
            return;
        };
        match self.seller(i) {
            Ok(d) => {
                let amount = match d.cap {
                    Some(c) if d.capped => c,
                    _ => d.uncapped,
                };
                let line = self.line(t, CommissionRole::Seller, "S", &t.partner_id, amount);
                out.lines.push((line, Derivation::Seller(d)));
            }
            Err(e) => out.no_lines.push(e),
        }
        let parent = self
            .partners
            .get(t.partner_id.as_str())
            .and_then(|p| p.parent_partner_id.as_deref());
        if let (Some(parent), Some(rate)) = (parent, self.ds.plan.override_rate) {
            match t.amount.checked_mul(rate) {
                Some(a) => {
                    let line = self.line(t, CommissionRole::Override, "O", parent, a);
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
        for sp in &self.ds.plan.spiffs {
            if sp.sku.as_ref().is_some_and(|s| *s != t.sku) {
                continue;
            }
            if sp.family.as_deref().is_some_and(|f| Some(f) != family) {
                continue;
            }
            if t.closed_on < sp.from || t.closed_on > sp.to {
                out.no_lines.push(NoLine::SpiffOutsideWindow {
                    spiff_id: sp.spiff_id.clone(),
                    from: sp.from,
                    to: sp.to,
                });
                continue;
            }
            if !self.tier_eligible(tier_id, &sp.eligible_tiers) {
                out.no_lines.push(NoLine::SpiffTierNotEligible {
                    spiff_id: sp.spiff_id.clone(),
                    tier_id: tier_id.to_string(),
                });
                continue;
            }
            match sp.amount_per_unit.checked_mul(Decimal::from(t.quantity)) {
                Some(a) => {
                    let suffix = format!("P-{}", sp.spiff_id);
                    let line = self.line(t, CommissionRole::Spiff, &suffix, &t.partner_id, a);
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
                None => out.no_lines.push(NoLine::Overflow {
                    role: CommissionRole::Spiff,
                }),
            }
        }
    }

    fn refund_lines(&self, t: &Transaction, out: &mut TxLines) {
        let orig_idx = t
            .original_transaction_id
            .as_deref()
            .and_then(|id| self.tx_index.get(id).copied())
            .filter(|&j| self.ds.transactions[j].kind == TransactionKind::Sale);
        let Some(j) = orig_idx else {
            out.no_lines.push(NoLine::RefundNoOriginal {
                original_transaction_id: t.original_transaction_id.clone(),
            });
            return;
        };
        let orig = &self.ds.transactions[j];
        let oid = orig.transaction_id.clone();
        let seller = match self.seller(j) {
            Ok(d) => d,
            Err(_) => {
                out.no_lines.push(NoLine::RefundOriginalNoSellerLine {
                    original_transaction_id: oid,
                });
                return;
            }
        };
        let days_after = (t.closed_on - orig.closed_on).num_days();
        let window = self.ds.plan.clawback_window_days;
        if let Some(w) = window {
            if days_after > w {
                out.no_lines.push(NoLine::RefundOutsideWindow {
                    original_transaction_id: oid,
                    days_after,
                    window_days: w,
                });
                return;
            }
        }
        if orig.quantity == 0 {
            out.no_lines.push(NoLine::RefundZeroQuantity {
                original_transaction_id: oid,
            });
            return;
        }
        let seller_amount = round_cents(match seller.cap {
            Some(c) if seller.capped => c,
            _ => seller.uncapped,
        });
        let refunded = t.quantity.checked_abs().unwrap_or(i64::MAX);
        let amount = seller_amount
            .checked_mul(Decimal::from(refunded))
            .and_then(|x| x.checked_div(Decimal::from(orig.quantity)))
            .map(|x| -x);
        match amount {
            Some(a) => {
                let line = self.line(t, CommissionRole::Clawback, "K", &orig.partner_id, a);
                out.lines.push((
                    line,
                    Derivation::Clawback {
                        original_transaction_id: oid,
                        original_closed_on: orig.closed_on,
                        days_after,
                        window_days: window,
                        original_seller_amount: seller_amount,
                        refunded_quantity: refunded,
                        original_quantity: orig.quantity,
                    },
                ));
            }
            None => out.no_lines.push(NoLine::Overflow {
                role: CommissionRole::Clawback,
            }),
        }
    }

    /// Index of a transaction by id.
    pub fn index_of(&self, transaction_id: &str) -> Option<usize> {
        self.tx_index.get(transaction_id).copied()
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
        let txs = &self.ds.transactions;
        // Transactions in id order; each one's lines sorted by role and id. This equals
        // sorting all lines by (transaction, role, id) at a fraction of the cost.
        let mut order: Vec<usize> = (0..txs.len()).collect();
        order.sort_unstable_by(|&a, &b| {
            txs[a]
                .transaction_id
                .cmp(&txs[b].transaction_id)
                .then(a.cmp(&b))
        });
        let run = |chunk: &[usize]| -> Vec<CommissionLine> {
            let mut out = Vec::with_capacity(chunk.len() * 2);
            for &i in chunk {
                let start = out.len();
                out.extend(self.lines_of(i).lines.into_iter().map(|(l, _)| l));
                sort_lines(&mut out[start..]);
            }
            out
        };
        let mut out = if threads < 2 || order.len() < min_parallel {
            run(&order)
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
            let mut out = Vec::with_capacity(parts.iter().map(Vec::len).sum());
            for p in parts {
                out.extend(p);
            }
            out
        };
        // Duplicate transaction ids (rejected by import, possible in hand-built data
        // sets) could interleave differently: settle them with a full sort.
        if order
            .windows(2)
            .any(|w| txs[w[0]].transaction_id == txs[w[1]].transaction_id)
        {
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
    let after = before.checked_add(amount)?;
    let base = |from, to, amount: Decimal| -> Option<Segment> {
        Some(Segment {
            from,
            to,
            amount,
            attainment_from: None,
            multiplier: Decimal::ONE,
            commission: amount.checked_mul(rate)?,
        })
    };
    let quota = match quota {
        Some(q) if q > Decimal::ZERO && !accelerators.is_empty() && amount > Decimal::ZERO => q,
        _ => return Some(vec![base(before, after, amount)?]),
    };
    // Regions: (-inf, t0) at 1, [t_k, t_{k+1}) at m_k, [t_last, +inf) at m_last.
    let mut thresholds = Vec::with_capacity(accelerators.len());
    for (a, m) in accelerators {
        thresholds.push((quota.checked_mul(*a)?, *a, *m));
    }
    let mut out = Vec::with_capacity(thresholds.len() + 1);
    let first = thresholds[0].0;
    if before < first {
        let to = after.min(first);
        out.push(base(before, to, to - before)?);
    }
    for (k, (t, a, m)) in thresholds.iter().enumerate() {
        let lo = before.max(*t);
        let hi = match thresholds.get(k + 1) {
            Some((next, _, _)) => after.min(*next),
            None => after,
        };
        if hi > lo {
            let part = hi - lo;
            out.push(Segment {
                from: lo,
                to: hi,
                amount: part,
                attainment_from: Some(*a),
                multiplier: *m,
                commission: part.checked_mul(rate)?.checked_mul(*m)?,
            });
        }
    }
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
