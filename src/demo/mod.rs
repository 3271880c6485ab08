//! Demo program generator: a realistic multi-tier channel program with labelled
//! anomalies, deterministic for a seed, in the data-set format of
//! `docs/dataset.md`.
//!
//! [`generate`] builds a [`Generated`] (the [`Dataset`] and the [`Label`]s of the
//! anomalies it injected); [`export`] writes it as a data-set folder (with
//! `answers/` for tests and benchmarks when asked). [`DemoOptions::variant`]
//! changes the program's structure (tier ids and names, currency, fiscal year,
//! regions, product families, sizes, plan) so detectors can be tested on
//! programs they were not tuned on.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::model::{AnomalyKind, CommissionLine, Dataset};

mod build;
pub mod cases;
mod commissions;
mod export;
mod inject;
pub mod names;
mod v2;
pub mod variant;

pub use export::export;
pub use variant::Variant;

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoOptions {
    pub seed: u64,
    /// Partners (distributors and resellers).
    pub partners: usize,
    /// Transactions (sales and refunds, injected anomalies included).
    pub transactions: usize,
    /// Program structure: tier ids/names, currency, fiscal year, families, sizes.
    pub variant: u32,
    /// "Today" of the data set; the review window is the last two calendar months.
    pub as_of: NaiveDate,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            seed: 7,
            partners: 150,
            transactions: 20_000,
            variant: 0,
            as_of: default_as_of(),
        }
    }
}

/// 2026-09-30.
pub fn default_as_of() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 9, 30).unwrap_or_default()
}

/// The anomalies injected into one transaction (what `answers/labels.jsonl` holds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Label {
    pub transaction_id: String,
    pub kinds: Vec<AnomalyKind>,
}

/// A generated program.
#[derive(Debug, Clone)]
pub struct Generated {
    /// The data set; `commissions` are the PRM's lines (with injected errors).
    pub dataset: Dataset,
    /// Injected anomalies, sorted by transaction id.
    pub labels: Vec<Label>,
    /// The plan's own recalculation (what `answers/expected_commissions.jsonl` holds).
    pub expected_commissions: Vec<CommissionLine>,
}

impl Generated {
    /// How many labelled transactions carry each kind.
    pub fn kind_counts(&self) -> Vec<(AnomalyKind, usize)> {
        AnomalyKind::ALL
            .iter()
            .map(|k| {
                (
                    *k,
                    self.labels.iter().filter(|l| l.kinds.contains(k)).count(),
                )
            })
            .collect()
    }
}

/// Generates a program. Pure: same options, same output.
pub fn generate(opts: &DemoOptions) -> Generated {
    build::generate(opts)
}

pub(crate) fn add_days(d: NaiveDate, n: i64) -> NaiveDate {
    d.checked_add_signed(Duration::days(n)).unwrap_or(d)
}

pub(crate) fn at(d: NaiveDate, secs: u32) -> DateTime<Utc> {
    let t = d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
    t + Duration::seconds(i64::from(secs.min(86_399)))
}

/// Discount off list in basis points, rounded down.
pub(crate) fn discount_bp(list: Decimal, net: Decimal) -> i64 {
    if list <= Decimal::ZERO {
        return 0;
    }
    let bp = (list - net) / list * Decimal::from(10_000);
    i64::try_from(bp.floor()).unwrap_or(0)
}
