//! Domain types shared by every module: the entities of `docs/dataset.md`
//! and the commission plan of `docs/plan.md`.
//!
//! Money is always [`Decimal`]; dates are [`NaiveDate`]; timestamps are UTC.
//! These types serialise to exactly the data-set format (field names and
//! decimal strings), so export and import round-trip.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// program.json
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Program {
    pub program_id: String,
    pub name: String,
    pub currency: String,
    pub fiscal_year_start_month: u32,
    pub as_of: NaiveDate,
    pub review_window: ReviewWindow,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewWindow {
    pub start: NaiveDate,
    pub end: NaiveDate,
}

impl ReviewWindow {
    /// True when a submission timestamp falls in the window (inclusive, by UTC date).
    pub fn contains(&self, submitted_at: &DateTime<Utc>) -> bool {
        let d = submitted_at.date_naive();
        d >= self.start && d <= self.end
    }
}

/// tiers.jsonl
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tier {
    pub tier_id: String,
    pub name: String,
    pub rank: i64,
}

/// products.jsonl
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Product {
    pub sku: String,
    pub name: String,
    pub family: String,
    pub list_price: Decimal,
    pub certification_required: Option<String>,
    pub active: bool,
}

/// discount_policy.jsonl
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiscountPolicy {
    pub tier_id: String,
    pub family: String,
    pub max_discount_pct: Decimal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartnerKind {
    Distributor,
    Reseller,
}

impl PartnerKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            PartnerKind::Distributor => "distributor",
            PartnerKind::Reseller => "reseller",
        }
    }
}

/// Bank details: personal/financial data, never shown unmasked, logged or sent to an AI.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct BankAccount {
    pub routing_number: String,
    pub account_number: String,
    pub account_name: String,
}

impl std::fmt::Debug for BankAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "BankAccount {{ routing_number: {}, account_number: {}, account_name: {:?} }}",
            mask(&self.routing_number),
            mask(&self.account_number),
            self.account_name
        )
    }
}

/// Masks all but the last four characters: `"9699460090"` -> `"******0090"`.
pub fn mask(s: &str) -> String {
    let n = s.chars().count();
    let keep = if n > 4 { 4 } else { 0 };
    s.chars()
        .enumerate()
        .map(|(i, c)| if i + keep < n { '*' } else { c })
        .collect()
}

/// partners.jsonl
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Partner {
    pub partner_id: String,
    pub name: String,
    pub kind: PartnerKind,
    pub parent_partner_id: Option<String>,
    pub region: String,
    pub country: Option<String>,
    pub joined_on: NaiveDate,
    pub certifications: Vec<String>,
    pub tax_id: Option<String>,
    pub bank_account: Option<BankAccount>,
}

impl std::fmt::Debug for Partner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Partner")
            .field("partner_id", &self.partner_id)
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("parent_partner_id", &self.parent_partner_id)
            .field("region", &self.region)
            .field("country", &self.country)
            .field("joined_on", &self.joined_on)
            .field("certifications", &self.certifications)
            .field("tax_id", &self.tax_id.as_deref().map(mask))
            .field("bank_account", &self.bank_account)
            .finish()
    }
}

/// tier_history.jsonl
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierHistory {
    pub partner_id: String,
    pub tier_id: String,
    pub effective_from: NaiveDate,
}

/// quotas.jsonl
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quota {
    pub partner_id: String,
    /// Fiscal quarter, `YYYY-Qn`.
    pub period: String,
    pub quota: Decimal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegistrationStatus {
    Approved,
    Rejected,
    Expired,
}

impl RegistrationStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            RegistrationStatus::Approved => "approved",
            RegistrationStatus::Rejected => "rejected",
            RegistrationStatus::Expired => "expired",
        }
    }
}

/// registrations.jsonl (deal registrations)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Registration {
    pub registration_id: String,
    pub partner_id: String,
    pub customer_name: String,
    pub expected_amount: Decimal,
    pub registered_on: NaiveDate,
    pub expires_on: NaiveDate,
    pub status: RegistrationStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransactionKind {
    Sale,
    Refund,
}

impl TransactionKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            TransactionKind::Sale => "sale",
            TransactionKind::Refund => "refund",
        }
    }
}

/// transactions.jsonl (partner-reported sales and refunds)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transaction {
    pub transaction_id: String,
    pub kind: TransactionKind,
    pub original_transaction_id: Option<String>,
    pub partner_id: String,
    pub registration_id: Option<String>,
    pub customer_name: String,
    pub sku: String,
    pub quantity: i64,
    pub unit_list_price: Decimal,
    pub unit_net_price: Decimal,
    pub amount: Decimal,
    pub currency: String,
    pub closed_on: NaiveDate,
    pub submitted_at: DateTime<Utc>,
    pub invoice_number: String,
    /// Free text typed by the partner: untrusted, never influences a score.
    #[serde(default)]
    pub notes: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommissionRole {
    Seller,
    Override,
    Spiff,
    Clawback,
}

impl CommissionRole {
    pub fn as_str(&self) -> &'static str {
        match self {
            CommissionRole::Seller => "seller",
            CommissionRole::Override => "override",
            CommissionRole::Spiff => "spiff",
            CommissionRole::Clawback => "clawback",
        }
    }
}

/// commissions.jsonl (the PRM's lines) and the plan's recalculated lines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommissionLine {
    pub commission_id: String,
    pub transaction_id: String,
    pub payee_partner_id: String,
    pub role: CommissionRole,
    pub amount: Decimal,
    /// Fiscal quarter of the transaction's `closed_on`, `YYYY-Qn`.
    pub period: String,
}

/// plan.json
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub plan_id: String,
    pub currency: String,
    #[serde(default)]
    pub period: Option<String>,
    pub seller_rates: BTreeMap<String, Decimal>,
    #[serde(default)]
    pub family_multipliers: BTreeMap<String, Decimal>,
    #[serde(default)]
    pub override_rate: Option<Decimal>,
    #[serde(default)]
    pub accelerators: Vec<Accelerator>,
    #[serde(default)]
    pub spiffs: Vec<Spiff>,
    #[serde(default)]
    pub per_transaction_cap: Option<Decimal>,
    #[serde(default)]
    pub clawback_window_days: Option<i64>,
    /// Plan v2: scoped rules (absent in a v1 plan; see `docs/plan.md`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<crate::plan::v2::Rule>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Accelerator {
    pub attainment_from: Decimal,
    pub multiplier: Decimal,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spiff {
    pub spiff_id: String,
    pub family: Option<String>,
    pub sku: Option<String>,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub amount_per_unit: Decimal,
    pub eligible_tiers: Vec<String>,
}

/// A whole program in memory: what `--dataset DIR` loads and what the demo generates.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    pub program: Program,
    pub plan: Plan,
    pub tiers: Vec<Tier>,
    pub products: Vec<Product>,
    pub discount_policy: Vec<DiscountPolicy>,
    pub partners: Vec<Partner>,
    pub tier_history: Vec<TierHistory>,
    pub quotas: Vec<Quota>,
    pub registrations: Vec<Registration>,
    pub transactions: Vec<Transaction>,
    pub commissions: Vec<CommissionLine>,
    /// What the vendor's ERP billed (`erp_invoices.jsonl`, optional): `None` when the
    /// program has no ERP file, so the ERP check says "not evaluated".
    pub erp_invoices: Option<Vec<ErpInvoice>>,
}

/// erp_invoices.jsonl: one invoice of the vendor's ERP (the system of record).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErpInvoice {
    pub invoice_number: String,
    pub customer_name: String,
    pub partner_id: String,
    pub invoice_date: NaiveDate,
    pub currency: String,
    pub lines: Vec<ErpLine>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErpLine {
    pub sku: String,
    pub quantity: i64,
    pub amount: Decimal,
}

/// The kinds of anomaly of `docs/dataset.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnomalyKind {
    DealSizeTier,
    DiscountPolicy,
    UncertifiedProduct,
    Duplicate,
    Backdated,
    SplitDeals,
    RegistrationMismatch,
    CommissionVariance,
    ErpMismatch,
    PeriodEndCluster,
    ProductMix,
    VolumeSpike,
    /// A row kept from the PRM although it breaks a rule of the data set (amount against
    /// quantity x price, signs, currency, ids): never paid without a decision.
    DataIntegrity,
}

impl AnomalyKind {
    pub const ALL: [AnomalyKind; 8] = [
        AnomalyKind::DealSizeTier,
        AnomalyKind::DiscountPolicy,
        AnomalyKind::UncertifiedProduct,
        AnomalyKind::Duplicate,
        AnomalyKind::Backdated,
        AnomalyKind::SplitDeals,
        AnomalyKind::RegistrationMismatch,
        AnomalyKind::CommissionVariance,
    ];

    /// The kinds of version 2 of the data-set format (ERP, timing, mix and volume).
    pub const V2: [AnomalyKind; 4] = [
        AnomalyKind::ErpMismatch,
        AnomalyKind::PeriodEndCluster,
        AnomalyKind::ProductMix,
        AnomalyKind::VolumeSpike,
    ];

    /// Every kind the detector can name (v1 then v2). [`AnomalyKind::DataIntegrity`] is
    /// not among them: it is a rule the row breaks, not an anomaly scored from the data,
    /// and no data set labels it.
    pub fn every() -> impl Iterator<Item = AnomalyKind> {
        AnomalyKind::ALL.into_iter().chain(AnomalyKind::V2)
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            AnomalyKind::DealSizeTier => "deal_size_tier",
            AnomalyKind::DiscountPolicy => "discount_policy",
            AnomalyKind::UncertifiedProduct => "uncertified_product",
            AnomalyKind::Duplicate => "duplicate",
            AnomalyKind::Backdated => "backdated",
            AnomalyKind::SplitDeals => "split_deals",
            AnomalyKind::RegistrationMismatch => "registration_mismatch",
            AnomalyKind::CommissionVariance => "commission_variance",
            AnomalyKind::ErpMismatch => "erp_mismatch",
            AnomalyKind::PeriodEndCluster => "period_end_cluster",
            AnomalyKind::ProductMix => "product_mix",
            AnomalyKind::VolumeSpike => "volume_spike",
            AnomalyKind::DataIntegrity => "data_integrity",
        }
    }

    pub fn parse(s: &str) -> Option<AnomalyKind> {
        AnomalyKind::every()
            .chain([AnomalyKind::DataIntegrity])
            .find(|k| k.as_str() == s)
    }
}

impl std::fmt::Display for AnomalyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One line of `tierdesk score --format jsonl`, and what is stored per transaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Score {
    pub transaction_id: String,
    pub score: f64,
    pub confidence: f64,
    pub kinds: Vec<AnomalyKind>,
    pub reasons: Vec<String>,
    /// Checks that could not be made for this transaction (their input is missing, such
    /// as the ERP extract): not a pass.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_evaluated: Vec<AnomalyKind>,
}

/// A fiscal quarter such as `2026-Q3`, given the program's fiscal year start month.
///
/// The fiscal year is named after the calendar year in which it starts (for a
/// calendar fiscal year, the calendar year itself).
pub fn fiscal_quarter(date: NaiveDate, fiscal_year_start_month: u32) -> String {
    let (year, q) = fiscal_year_quarter(date, fiscal_year_start_month);
    format!("{year}-Q{q}")
}

/// `(fiscal year, quarter 1..=4)` of a date.
pub fn fiscal_year_quarter(date: NaiveDate, fiscal_year_start_month: u32) -> (i32, u32) {
    let start = fiscal_year_start_month.clamp(1, 12);
    let m = date.month();
    let offset = (m + 12 - start) % 12; // months since the fiscal year started
    let year = if m >= start {
        date.year()
    } else {
        date.year() - 1
    };
    (year, offset / 3 + 1)
}

/// First and last day of a fiscal quarter given as `(fiscal year, quarter)`.
pub fn fiscal_quarter_bounds(
    fiscal_year: i32,
    quarter: u32,
    fiscal_year_start_month: u32,
) -> (NaiveDate, NaiveDate) {
    let start = fiscal_year_start_month.clamp(1, 12) as i32;
    let month0 = (start - 1) + ((quarter.clamp(1, 4) as i32) - 1) * 3; // months from Jan of fiscal_year
    let y = fiscal_year + month0 / 12;
    let m = (month0 % 12) + 1;
    let first = NaiveDate::from_ymd_opt(y, m as u32, 1).expect("valid quarter start");
    let next_m0 = month0 + 3;
    let ny = fiscal_year + next_m0 / 12;
    let nm = (next_m0 % 12) + 1;
    let next = NaiveDate::from_ymd_opt(ny, nm as u32, 1).expect("valid quarter end");
    (first, next.pred_opt().expect("valid date"))
}

/// The years a period may name: four digits (dates outside them are typing errors, and
/// the date arithmetic of far years would leave the calendar's range).
pub const PERIOD_YEARS: std::ops::RangeInclusive<i32> = 1000..=9999;

/// Parses `YYYY-Qn` into `(year, n)`.
pub fn parse_quarter(s: &str) -> Option<(i32, u32)> {
    check_quarter(s).ok()
}

/// Parses `YYYY-Qn` into `(year, n)`, saying what is wrong otherwise (the shape, the
/// quarter number, or a year outside [`PERIOD_YEARS`]).
pub fn check_quarter(s: &str) -> Result<(i32, u32), String> {
    let shape = || format!("'{s}' is not a quarter like 2026-Q3");
    let (y, q) = s.trim().split_once("-Q").ok_or_else(shape)?;
    let y: i32 = y.parse().map_err(|_| shape())?;
    let q: u32 = q.parse().map_err(|_| shape())?;
    if !(1..=4).contains(&q) {
        return Err(format!("'{s}': the quarter must be Q1 to Q4"));
    }
    if !PERIOD_YEARS.contains(&y) {
        return Err(format!(
            "'{s}': the year {y} is out of range ({}-{})",
            PERIOD_YEARS.start(),
            PERIOD_YEARS.end()
        ));
    }
    Ok((y, q))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn quarters_out_of_the_year_range_are_named_errors() {
        assert_eq!(check_quarter("2026-Q3"), Ok((2026, 3)));
        let e = check_quarter("300000-Q3").unwrap_err();
        assert!(e.contains("year 300000 is out of range"), "{e}");
        assert!(check_quarter("-5-Q1").is_err());
        assert!(check_quarter("2026-Q5").unwrap_err().contains("Q1 to Q4"));
        assert!(check_quarter("2026Q3")
            .unwrap_err()
            .contains("like 2026-Q3"));
        assert_eq!(parse_quarter("99999-Q1"), None);
    }

    #[test]
    fn calendar_quarters() {
        assert_eq!(fiscal_quarter(d("2024-10-01"), 1), "2024-Q4");
        assert_eq!(fiscal_quarter(d("2026-03-31"), 1), "2026-Q1");
        assert_eq!(fiscal_quarter(d("2026-07-01"), 1), "2026-Q3");
    }

    #[test]
    fn shifted_fiscal_year() {
        // Fiscal year starting in April: April-June is Q1 of that year.
        assert_eq!(fiscal_quarter(d("2026-04-01"), 4), "2026-Q1");
        assert_eq!(fiscal_quarter(d("2026-03-31"), 4), "2025-Q4");
        assert_eq!(fiscal_quarter(d("2027-01-15"), 4), "2026-Q4");
        assert_eq!(
            fiscal_quarter_bounds(2026, 4, 4),
            (d("2027-01-01"), d("2027-03-31"))
        );
        assert_eq!(
            fiscal_quarter_bounds(2026, 3, 1),
            (d("2026-07-01"), d("2026-09-30"))
        );
    }

    #[test]
    fn masking_keeps_last_four() {
        assert_eq!(mask("9699460090"), "******0090");
        assert_eq!(mask("123"), "***");
        let p = BankAccount {
            routing_number: "588028979".into(),
            account_number: "9699460090".into(),
            account_name: "Operating".into(),
        };
        let dbg = format!("{p:?}");
        assert!(!dbg.contains("9699460090"));
    }
}
