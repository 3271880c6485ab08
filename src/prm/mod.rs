//! PRM wire protocols, one module per PRM, shared by the sync client and the simulator.
//!
//! Each module owns its PRM's paths, query parameters, envelopes, field names and
//! encodings exactly as the vendor serves them (see `docs/connectors.md`), and maps
//! the PRM's records to the domain model. Nothing here does IO or reads a clock: the
//! connectors in `sync` send the requests, the simulator in `sim` answers them.
//!
//! Wire types accept unknown extra fields (a PRM adds fields over time; an item with
//! one still maps). What a PRM does not carry is never guessed silently: a mapping
//! returns the domain record plus the list of fields the source did not provide
//! ([`Mapped::missing`]), so a detector that needs one can say "not evaluated".

pub mod impartner;
pub mod partnerstack;

use std::collections::HashMap;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize};

use crate::model::CommissionRole;

/// A domain record mapped from a PRM item, and the domain fields the PRM does not
/// carry (filled with a neutral placeholder, named here so nothing passes silently).
#[derive(Debug, Clone, PartialEq)]
pub struct Mapped<T> {
    pub value: T,
    pub missing: Vec<&'static str>,
}

/// A partner and its current tier `(tier id, since)` when the PRM says.
pub type PartnerWithTier = (crate::model::Partner, Option<(String, NaiveDate)>);

/// What a connector can do on its PRM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// Pull incrementally by update time (otherwise by creation time plus full passes).
    pub incremental_by_updated: &'static [&'static str],
    /// Write a decision's fields on the record itself.
    pub patch_record: bool,
    /// Create a new commission (reward) for an adjustment.
    pub create_reward: bool,
    /// Approve, hold or decline a commission through the API.
    pub review_reward: bool,
}

/// Offer (PartnerStack) or commission type (Impartner) to commission role; seller by
/// default. Configured in `[prm.mapping]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoleMap {
    pub by_key: HashMap<String, CommissionRole>,
}

impl RoleMap {
    pub fn role(&self, key: Option<&str>) -> CommissionRole {
        key.and_then(|k| self.by_key.get(k).copied())
            .unwrap_or(CommissionRole::Seller)
    }
}

/// Parses a role name as written in the configuration.
pub fn parse_role(s: &str) -> Option<CommissionRole> {
    match s.trim().to_ascii_lowercase().as_str() {
        "seller" => Some(CommissionRole::Seller),
        "override" => Some(CommissionRole::Override),
        "spiff" => Some(CommissionRole::Spiff),
        "clawback" => Some(CommissionRole::Clawback),
        _ => None,
    }
}

/// Epoch milliseconds to UTC.
pub fn ms_to_utc(ms: i64) -> Result<DateTime<Utc>, String> {
    DateTime::<Utc>::from_timestamp_millis(ms).ok_or_else(|| format!("timestamp {ms} out of range"))
}

/// Epoch milliseconds to a UTC calendar date.
pub fn ms_to_date(ms: i64) -> Result<NaiveDate, String> {
    Ok(ms_to_utc(ms)?.date_naive())
}

/// Integer minor units (cents) to a decimal amount.
pub fn cents(c: i64) -> Decimal {
    Decimal::new(c, 2)
}

/// [`cents`] within what tierdesk accepts anywhere money enters (`field` names it in
/// the error): an amount beyond the bound is a malformed item, never a stored one.
pub fn bounded_cents(field: &'static str, c: i64) -> Result<Decimal, String> {
    crate::import::integrity::bounded_money(field, cents(c))
        .map_err(|e| format!("{}: {}", e.field, e.message))
}

/// The calendar quarter of a date, `YYYY-Qn` (the period a commission line belongs to).
pub fn quarter(d: NaiveDate) -> String {
    format!("{}-Q{}", d.year(), (d.month() - 1) / 3 + 1)
}

/// A JSON number (or a numeric string) read exactly as a decimal, never through f64
/// arithmetic: the number's shortest text form is parsed as a decimal.
pub fn de_decimal_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
    let v = Option::<serde_json::Value>::deserialize(d)?;
    match v {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::Number(n)) => decimal_text(&n.to_string())
            .map(Some)
            .map_err(serde::de::Error::custom),
        Some(serde_json::Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(serde_json::Value::String(s)) => decimal_text(s.trim())
            .map(Some)
            .map_err(serde::de::Error::custom),
        Some(other) => Err(serde::de::Error::custom(format!(
            "expected a number, got {other}"
        ))),
    }
}

fn decimal_text(s: &str) -> Result<Decimal, String> {
    let d = if s.contains(['e', 'E']) {
        Decimal::from_scientific(s)
    } else {
        s.parse::<Decimal>()
    };
    let d = d.map_err(|_| format!("`{s}` is not a decimal amount"))?;
    crate::import::integrity::bounded_money("amount", d).map_err(|e| e.message)
}

// ---------------------------------------------------------------- shared vocabulary

/// The API shape a simulator (and an adapter) speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Flavor {
    Partnerstack,
    Impartner,
}

impl Flavor {
    pub fn as_str(&self) -> &'static str {
        match self {
            Flavor::Partnerstack => "partnerstack",
            Flavor::Impartner => "impartner",
        }
    }
    pub fn parse(s: &str) -> Option<Flavor> {
        match s.trim().to_ascii_lowercase().as_str() {
            "partnerstack" => Some(Flavor::Partnerstack),
            "impartner" => Some(Flavor::Impartner),
            _ => None,
        }
    }
}

/// The resources a PRM exposes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Res {
    Partners,
    Customers,
    Deals,
    Transactions,
    Rewards,
    Flags,
}

impl Res {
    pub const ALL: [Res; 6] = [
        Res::Partners,
        Res::Customers,
        Res::Deals,
        Res::Transactions,
        Res::Rewards,
        Res::Flags,
    ];
    /// PartnerStack path segment (`/api/v2/{seg}`).
    pub fn ps_name(self) -> &'static str {
        match self {
            Res::Partners => "partnerships",
            Res::Customers => "customers",
            Res::Deals => "deals",
            Res::Transactions => "transactions",
            Res::Rewards => "rewards",
            Res::Flags => "flags",
        }
    }
    /// Impartner object name (`/api/objects/v1/{Object}`).
    pub fn imp_name(self) -> &'static str {
        match self {
            Res::Partners => "Partner",
            Res::Customers => "Customer",
            Res::Deals => "Deal",
            Res::Transactions => "Transaction",
            Res::Rewards => "Commission",
            Res::Flags => "Flag",
        }
    }
    pub fn from_ps(s: &str) -> Option<Res> {
        Res::ALL.into_iter().find(|r| r.ps_name() == s)
    }
    pub fn from_imp(s: &str) -> Option<Res> {
        Res::ALL.into_iter().find(|r| r.imp_name() == s)
    }
}
