//! The payee fields of partners.jsonl and program.json that the partner and program
//! rows do not hold (`legal_name`, `tax_form`, `bank_account.account_type` / `iban` /
//! `bic` / `clearing_id` / `changed_on`; `minimum_payout`, `payout_rail`), read after the
//! import has stored the partners. Lines the import rejected are skipped here too (only
//! partners that are stored get details).

use std::path::Path;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Deserialize;

use crate::store::Store;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct PayeeDetails {
    pub partner_id: String,
    pub legal_name: Option<String>,
    pub tax_form_kind: Option<String>,
    pub tax_form_received_on: Option<NaiveDate>,
    pub account_type: Option<String>,
    pub iban: Option<String>,
    pub bic: Option<String>,
    pub clearing_id: Option<String>,
    pub bank_changed_on: Option<NaiveDate>,
}

#[derive(Deserialize)]
struct RawTaxForm {
    kind: Option<String>,
    received_on: Option<String>,
}

#[derive(Deserialize, Default)]
struct RawBank {
    account_type: Option<String>,
    iban: Option<String>,
    bic: Option<String>,
    clearing_id: Option<String>,
    changed_on: Option<String>,
}

#[derive(Deserialize)]
struct RawPartner {
    partner_id: String,
    legal_name: Option<String>,
    tax_form: Option<RawTaxForm>,
    bank_account: Option<RawBank>,
}

fn date(s: Option<String>) -> Option<NaiveDate> {
    s.and_then(|d| NaiveDate::parse_from_str(d.trim(), "%Y-%m-%d").ok())
}

fn text(s: Option<String>) -> Option<String> {
    s.map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

/// The payee fields of one partners.jsonl line (None when the line is not a partner).
pub fn parse_partner_line(line: &str) -> Option<PayeeDetails> {
    let r: RawPartner = serde_json::from_str(line.trim_start_matches('\u{feff}')).ok()?;
    let b = r.bank_account.unwrap_or_default();
    let (kind, received) = match r.tax_form {
        Some(t) => (text(t.kind), date(t.received_on)),
        None => (None, None),
    };
    Some(PayeeDetails {
        partner_id: r.partner_id.trim().to_string(),
        legal_name: text(r.legal_name),
        tax_form_kind: kind,
        tax_form_received_on: received,
        account_type: text(b.account_type).map(|s| s.to_ascii_lowercase()),
        iban: text(b.iban),
        bic: text(b.bic).map(|s| s.to_ascii_uppercase()),
        clearing_id: text(b.clearing_id),
        bank_changed_on: date(b.changed_on),
    })
}

/// program.json's payout fields.
#[derive(Debug, Clone, PartialEq)]
pub struct ProgramPayout {
    pub minimum_payout: Decimal,
    pub payout_rail: Option<String>,
}

pub fn parse_program(text_: &str) -> Option<ProgramPayout> {
    #[derive(Deserialize)]
    struct Raw {
        minimum_payout: Option<String>,
        payout_rail: Option<String>,
    }
    let r: Raw = serde_json::from_str(text_.trim_start_matches('\u{feff}')).ok()?;
    let min = match r.minimum_payout {
        Some(m) => crate::money::parse_money(&m)?,
        None => Decimal::ZERO,
    };
    Some(ProgramPayout {
        minimum_payout: min,
        payout_rail: text(r.payout_rail).map(|s| s.to_ascii_lowercase()),
    })
}

/// Reads the payee fields of `dir`'s partners.jsonl and program.json into the cache.
pub fn store_from_dir(store: &mut Store, dir: &Path) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    if let Ok(text_) = std::fs::read_to_string(dir.join("partners.jsonl")) {
        rows.extend(text_.lines().filter_map(parse_partner_line));
    }
    let program = std::fs::read_to_string(dir.join("program.json"))
        .ok()
        .and_then(|t| parse_program(&t));
    store.put_payee_details(&rows, program.as_ref())?;
    Ok(())
}
