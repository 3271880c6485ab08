//! Payee checks (pure): routing numbers, IBANs, BICs, tax forms, recent bank changes,
//! shared accounts and the name on the account. No IO, no clock: the run date is passed.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::Serialize;

use crate::model::mask;

/// A hold (or a warning) on a payee: a stable code and a sentence naming the numbers
/// and fields (never a full account number).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
pub struct Hold {
    pub code: String,
    pub reason: String,
}

impl Hold {
    pub fn new(code: &str, reason: impl Into<String>) -> Hold {
        Hold {
            code: code.to_string(),
            reason: reason.into(),
        }
    }
}

/// Hold codes that come from a payee's bank or tax details.
pub const PAYEE_CODES: [&str; 7] = [
    "invalid_routing",
    "invalid_iban",
    "invalid_bic",
    "missing_tax_form",
    "bank_changed_recently",
    "shared_account",
    "returned",
];

/// The rail a payment goes by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Rail {
    Ach,
    Sepa,
    Pain001,
}

impl Rail {
    pub fn as_str(&self) -> &'static str {
        match self {
            Rail::Ach => "ach",
            Rail::Sepa => "sepa",
            Rail::Pain001 => "pain001",
        }
    }
    pub fn parse(s: &str) -> Option<Rail> {
        match s.trim().to_ascii_lowercase().as_str() {
            "ach" => Some(Rail::Ach),
            "sepa" => Some(Rail::Sepa),
            "pain001" => Some(Rail::Pain001),
            _ => None,
        }
    }
    /// The default rail for a currency: USD by ACH, EUR by SEPA, others by pain.001.
    pub fn for_currency(currency: &str) -> Rail {
        match currency {
            "USD" => Rail::Ach,
            "EUR" => Rail::Sepa,
            _ => Rail::Pain001,
        }
    }
}

/// What the checks need to know about a payee.
#[derive(Debug, Clone, Default)]
pub struct Payee {
    pub partner_id: String,
    pub name: String,
    pub legal_name: Option<String>,
    pub country: Option<String>,
    pub tax_form_kind: Option<String>,
    pub routing_number: Option<String>,
    pub account_number: Option<String>,
    pub account_name: Option<String>,
    pub account_type: Option<String>,
    pub iban: Option<String>,
    pub bic: Option<String>,
    pub clearing_id: Option<String>,
    pub bank_changed_on: Option<NaiveDate>,
}

impl Payee {
    /// The account's identity for the shared-account check: routing + account, or IBAN.
    pub fn account_key(&self) -> Option<String> {
        if let Some(iban) = self.iban.as_deref().map(compact).filter(|s| !s.is_empty()) {
            return Some(format!("IBAN:{iban}"));
        }
        match (
            self.routing_number.as_deref(),
            self.account_number.as_deref(),
        ) {
            (Some(r), Some(a)) if !r.trim().is_empty() && !a.trim().is_empty() => {
                Some(format!("ACH:{}:{}", r.trim(), a.trim()))
            }
            _ => None,
        }
    }
}

fn compact(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// ABA routing number: nine digits and
/// `3(d1+d4+d7) + 7(d2+d5+d8) + (d3+d6+d9) ≡ 0 (mod 10)`.
pub fn aba_valid(routing: &str) -> bool {
    let b = routing.as_bytes();
    if b.len() != 9 || !b.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let d: Vec<u32> = b.iter().map(|c| u32::from(c - b'0')).collect();
    let sum = 3 * (d[0] + d[3] + d[6]) + 7 * (d[1] + d[4] + d[7]) + (d[2] + d[5] + d[8]);
    sum % 10 == 0
}

/// The ABA check digit (the 9th digit) for the first eight digits.
pub fn aba_check_digit(first8: &str) -> Option<u8> {
    let b = first8.as_bytes();
    if b.len() != 8 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let d: Vec<u32> = b.iter().map(|c| u32::from(c - b'0')).collect();
    let sum = 3 * (d[0] + d[3] + d[6]) + 7 * (d[1] + d[4] + d[7]) + (d[2] + d[5]);
    Some(((10 - sum % 10) % 10) as u8)
}

/// An IBAN checked against the SWIFT registry (country, length, format) and mod 97.
pub fn iban_problem(iban: &str) -> Option<String> {
    match compact(iban).parse::<iban::Iban>() {
        Ok(_) => None,
        Err(e) => Some(e.to_string()),
    }
}

/// ISO 3166-1 alpha-2 country codes (officially assigned).
const COUNTRIES: &str =
    "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL \
BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK \
DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU \
GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ \
LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY \
MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU \
RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO \
TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW";

pub fn is_country(code: &str) -> bool {
    code.len() == 2 && COUNTRIES.split(' ').any(|c| c == code)
}

/// A BIC: `[A-Z0-9]{4}[A-Z]{2}[A-Z0-9]{2}([A-Z0-9]{3})?` with a real country in 5–6.
pub fn bic_problem(bic: &str) -> Option<String> {
    let b = bic.trim();
    let ok_len = b.len() == 8 || b.len() == 11;
    let alnum = |c: &u8| c.is_ascii_uppercase() || c.is_ascii_digit();
    let bytes = b.as_bytes();
    if !ok_len || !bytes.iter().all(alnum) {
        return Some(format!(
            "{} characters; a BIC is 8 or 11 upper-case letters and digits",
            b.chars().count()
        ));
    }
    if !bytes[4..6].iter().all(u8::is_ascii_uppercase) || !is_country(&b[4..6]) {
        return Some(format!(
            "positions 5-6 are {:?}, not an ISO 3166 country",
            &b[4..6]
        ));
    }
    None
}

/// Legal-form words dropped before comparing names.
const LEGAL_FORMS: [&str; 16] = [
    "INC",
    "INCORPORATED",
    "LLC",
    "LTD",
    "LIMITED",
    "GMBH",
    "AG",
    "SA",
    "SAS",
    "SARL",
    "PTY",
    "CORP",
    "CORPORATION",
    "CO",
    "PLC",
    "BV",
];

fn name_words(s: &str) -> Vec<String> {
    let up: String = s
        .chars()
        .map(|c| {
            if c.is_alphanumeric() {
                c.to_uppercase().next().unwrap_or(c)
            } else {
                ' '
            }
        })
        .collect();
    // "S.A." becomes "S A": rejoin single letters.
    let mut words: Vec<String> = Vec::new();
    let mut letters = String::new();
    for w in up.split_whitespace() {
        if w.chars().count() == 1 {
            letters.push_str(w);
            continue;
        }
        if !letters.is_empty() {
            words.push(std::mem::take(&mut letters));
        }
        words.push(w.to_string());
    }
    if !letters.is_empty() {
        words.push(letters);
    }
    words
        .into_iter()
        .filter(|w| !LEGAL_FORMS.contains(&w.as_str()))
        .collect()
}

/// Verification-of-payee style comparison of the account name with the legal name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameMatch {
    Match,
    Close,
    NoMatch,
}

pub fn name_match(account_name: &str, legal_name: &str) -> NameMatch {
    let a = name_words(account_name).join(" ");
    let b = name_words(legal_name).join(" ");
    if a == b {
        return NameMatch::Match;
    }
    if strsim::jaro_winkler(&a, &b) >= 0.9 {
        return NameMatch::Close;
    }
    NameMatch::NoMatch
}

/// What the checks of one payee found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CheckResult {
    pub holds: Vec<Hold>,
    pub warnings: Vec<Hold>,
}

/// Settings of the checks.
#[derive(Debug, Clone, Copy)]
pub struct CheckSettings {
    pub run_date: NaiveDate,
    pub bank_change_hold_days: i64,
}

/// Runs every check on `p` for a payment in `currency` by `rail`. `shared_with` are
/// the other payees with the same account.
pub fn check_payee(p: &Payee, rail: Rail, s: CheckSettings, shared_with: &[String]) -> CheckResult {
    let mut r = CheckResult::default();
    match rail {
        Rail::Ach => match p.routing_number.as_deref().map(str::trim) {
            None | Some("") => r.holds.push(Hold::new(
                "invalid_routing",
                "no bank_account.routing_number on file for an ACH payment",
            )),
            Some(rt) if !aba_valid(rt) => {
                let why = if rt.len() != 9 || !rt.bytes().all(|c| c.is_ascii_digit()) {
                    format!("{} characters, not 9 digits", rt.chars().count())
                } else {
                    format!(
                        "check digit {} should be {}",
                        &rt[8..],
                        aba_check_digit(&rt[..8]).unwrap_or(0)
                    )
                };
                r.holds.push(Hold::new(
                    "invalid_routing",
                    format!(
                        "bank_account.routing_number {} fails the ABA check: {why}",
                        mask(rt)
                    ),
                ));
            }
            Some(_) => {}
        },
        Rail::Sepa | Rail::Pain001 => {
            let iban = p.iban.as_deref().map(str::trim).filter(|s| !s.is_empty());
            match iban {
                Some(i) => {
                    if let Some(why) = iban_problem(i) {
                        r.holds.push(Hold::new(
                            "invalid_iban",
                            format!("bank_account.iban {} is not a valid IBAN: {why}", mask(i)),
                        ));
                    }
                }
                None if rail == Rail::Sepa => r.holds.push(Hold::new(
                    "invalid_iban",
                    "no bank_account.iban on file for a SEPA payment",
                )),
                None => {
                    if p.account_number
                        .as_deref()
                        .is_none_or(|a| a.trim().is_empty())
                    {
                        r.holds.push(Hold::new(
                            "invalid_iban",
                            "neither bank_account.iban nor bank_account.account_number on file",
                        ));
                    }
                }
            }
        }
    }
    if let Some(bic) = p.bic.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        if let Some(why) = bic_problem(bic) {
            r.holds.push(Hold::new(
                "invalid_bic",
                format!("bank_account.bic {bic:?}: {why}"),
            ));
        } else if let Some(i) = p.iban.as_deref().map(compact).filter(|s| s.len() >= 2) {
            if bic[4..6] != i[..2] {
                r.holds.push(Hold::new(
                    "invalid_bic",
                    format!(
                        "bank_account.bic country {} differs from the IBAN's country {}",
                        &bic[4..6],
                        &i[..2]
                    ),
                ));
            }
        }
    }
    // Tax form: a US payee needs a W-9, a foreign one a W-8BEN (individual) or W-8BEN-E
    // (entity). Partners are businesses, so a foreign partner needs a W-8BEN-E; with no
    // country on file any form on file is accepted.
    let country = p
        .country
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty());
    match (p.tax_form_kind.as_deref(), country) {
        (None, c) => r.holds.push(Hold::new(
            "missing_tax_form",
            format!(
                "no tax_form on file (a {} payee needs a {})",
                c.unwrap_or("payee of unknown country"),
                match c {
                    Some("US") => "W-9",
                    Some(_) => "W-8BEN-E",
                    None => "W-9 or W-8BEN-E",
                }
            ),
        )),
        (Some(k), Some("US")) if k != "W-9" => r.holds.push(Hold::new(
            "missing_tax_form",
            format!("tax_form is a {k}; a US payee needs a W-9"),
        )),
        (Some("W-9"), Some(c)) if c != "US" => r.holds.push(Hold::new(
            "missing_tax_form",
            format!("tax_form is a W-9; a payee in {c} needs a W-8BEN-E"),
        )),
        _ => {}
    }
    if let Some(ch) = p.bank_changed_on {
        let days = (s.run_date - ch).num_days();
        if days < s.bank_change_hold_days {
            r.holds.push(Hold::new(
                "bank_changed_recently",
                format!(
                    "bank_account.changed_on {ch} is {days} days before the run date {}, within the {} days that need a call-back",
                    s.run_date, s.bank_change_hold_days
                ),
            ));
        }
    }
    if !shared_with.is_empty() {
        let what = if p.iban.as_deref().is_some_and(|i| !i.trim().is_empty()) {
            format!("IBAN {}", mask(&compact(p.iban.as_deref().unwrap_or(""))))
        } else {
            format!(
                "routing {} account {}",
                mask(p.routing_number.as_deref().unwrap_or("").trim()),
                mask(p.account_number.as_deref().unwrap_or("").trim())
            )
        };
        r.holds.push(Hold::new(
            "shared_account",
            format!("{what} is also the account of {}", shared_with.join(", ")),
        ));
    }
    if let Some(an) = p.account_name.as_deref().filter(|s| !s.trim().is_empty()) {
        let legal = p.legal_name.as_deref().unwrap_or(&p.name);
        if name_match(an, legal) == NameMatch::NoMatch {
            r.warnings.push(Hold::new(
                "name_mismatch",
                format!("bank_account.account_name {an:?} does not match the legal name {legal:?}"),
            ));
        }
    }
    r
}

/// Payees sharing an account: partner id -> the other partner ids on the same account.
pub fn shared_accounts(payees: &[Payee]) -> BTreeMap<String, Vec<String>> {
    let mut by_key: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for p in payees {
        if let Some(k) = p.account_key() {
            by_key.entry(k).or_default().push(p.partner_id.clone());
        }
    }
    let mut out = BTreeMap::new();
    for ids in by_key.values().filter(|v| v.len() > 1) {
        for id in ids {
            let others: Vec<String> = ids.iter().filter(|o| *o != id).cloned().collect();
            out.insert(id.clone(), others);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aba_examples() {
        assert!(aba_valid("011000015"));
        assert!(!aba_valid("011000016"));
        assert!(!aba_valid("01100001"));
        assert_eq!(aba_check_digit("01100001"), Some(5));
    }

    #[test]
    fn bic_examples() {
        assert!(bic_problem("DEUTDEFF").is_none());
        assert!(bic_problem("DEUTDEFF500").is_none());
        assert!(bic_problem("DEUTXXFF").is_some());
        assert!(bic_problem("DEUT").is_some());
    }

    #[test]
    fn names() {
        assert_eq!(
            name_match("Sierraline S.A.", "Sierraline SA"),
            NameMatch::Match
        );
        assert_eq!(
            name_match("AURORAPATH INC.", "Aurorapath Inc."),
            NameMatch::Match
        );
        assert_eq!(
            name_match("Copperfield Group Ltd", "Keystoneridge International Ltd"),
            NameMatch::NoMatch
        );
    }
}
