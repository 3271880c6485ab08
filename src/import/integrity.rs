//! The data set's invariants, checked where a row enters the cache (a data-set import
//! and the PRM sync alike): money within [`MAX_ABS_AMOUNT`], quantities within
//! [`MAX_ABS_QUANTITY`], `amount` = `quantity` x `unit_net_price` within rounding, the
//! signs a sale and a refund carry, the program's currency, and ids without invisible
//! or control characters (and in Unicode NFC).
//!
//! Pure functions: no IO. The import rejects a row that breaks one (with its line and
//! field); the sync, where the PRM is the source of truth and the row must be kept,
//! keeps it and flags it (`data_integrity`, see [`check_pulled_transaction`]).

use std::borrow::Cow;

use rust_decimal::Decimal;
use unicode_normalization::{is_nfc_quick, IsNormalized, UnicodeNormalization};

use crate::model::{Transaction, TransactionKind};
use crate::money::{minor_digits, MAX_ABS_AMOUNT};

/// The kind name of a kept-but-inconsistent PRM row.
pub const DATA_INTEGRITY: &str = "data_integrity";

/// The largest absolute quantity a transaction may carry (a billion units).
pub const MAX_ABS_QUANTITY: i64 = 1_000_000_000;

/// An invariant a row breaks: the field to blame and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub field: &'static str,
    pub message: String,
}

fn issue(field: &'static str, message: impl Into<String>) -> Issue {
    Issue {
        field,
        message: message.into(),
    }
}

/// An amount within what tierdesk accepts anywhere money enters.
pub fn bounded_money(field: &'static str, d: Decimal) -> Result<Decimal, Issue> {
    if d.abs() > MAX_ABS_AMOUNT {
        return Err(issue(
            field,
            format!("{d} is beyond the largest amount tierdesk accepts ({MAX_ABS_AMOUNT})"),
        ));
    }
    Ok(d)
}

/// The values of a transaction the invariants speak about.
#[derive(Debug, Clone, Copy)]
pub struct Amounts<'a> {
    pub kind: TransactionKind,
    pub quantity: i64,
    pub unit_list_price: Decimal,
    pub unit_net_price: Decimal,
    pub amount: Decimal,
    pub currency: &'a str,
}

/// How far `amount` may be from `quantity` x `unit_net_price`: one minor unit of the
/// currency, plus half a minor unit per unit sold (a unit price rounded to the minor
/// unit from an exact one).
pub fn rounding_tolerance(currency: &str, quantity: i64) -> Decimal {
    let minor = Decimal::new(1, minor_digits(currency));
    let per_unit = minor / Decimal::TWO;
    minor + per_unit * Decimal::from(quantity.unsigned_abs().min(MAX_ABS_QUANTITY as u64))
}

/// Checks a transaction's amounts against the data set's rules; `program_currency`
/// is the cache's program currency when known.
pub fn check_amounts(a: &Amounts<'_>, program_currency: Option<&str>) -> Result<(), Issue> {
    for (field, d) in [
        ("unit_list_price", a.unit_list_price),
        ("unit_net_price", a.unit_net_price),
        ("amount", a.amount),
    ] {
        bounded_money(field, d)?;
    }
    if a.quantity == 0 {
        return Err(issue("quantity", "must not be 0"));
    }
    if a.quantity.unsigned_abs() > MAX_ABS_QUANTITY as u64 {
        return Err(issue(
            "quantity",
            format!(
                "{} is beyond the largest quantity tierdesk accepts ({MAX_ABS_QUANTITY})",
                a.quantity
            ),
        ));
    }
    for (field, d) in [
        ("unit_list_price", a.unit_list_price),
        ("unit_net_price", a.unit_net_price),
    ] {
        if d.is_sign_negative() && !d.is_zero() {
            return Err(issue(
                field,
                format!("{d} is negative (a unit price is never negative; a refund's sign is in its quantity and amount)"),
            ));
        }
    }
    match a.kind {
        TransactionKind::Sale if a.quantity < 0 => {
            return Err(issue(
                "quantity",
                format!("a sale has a positive quantity, found {}", a.quantity),
            ))
        }
        TransactionKind::Sale if a.amount.is_sign_negative() && !a.amount.is_zero() => {
            return Err(issue(
                "amount",
                format!("a sale has a positive amount, found {}", a.amount),
            ))
        }
        TransactionKind::Refund if a.quantity > 0 => {
            return Err(issue(
                "quantity",
                format!("a refund has a negative quantity, found {}", a.quantity),
            ))
        }
        TransactionKind::Refund if a.amount.is_sign_positive() && !a.amount.is_zero() => {
            return Err(issue(
                "amount",
                format!("a refund has a negative amount, found {}", a.amount),
            ))
        }
        _ => {}
    }
    let expected = a
        .unit_net_price
        .checked_mul(Decimal::from(a.quantity))
        .ok_or_else(|| issue("quantity", "quantity x unit_net_price is too large"))?;
    let diff = (a.amount - expected).abs();
    let tolerance = rounding_tolerance(a.currency, a.quantity);
    if diff > tolerance {
        return Err(issue(
            "amount",
            format!(
                "{} is not quantity x unit_net_price ({} x {} = {}; off by {}, more than rounding allows ({}))",
                a.amount, a.quantity, a.unit_net_price, expected, diff, tolerance
            ),
        ));
    }
    check_currency(a.currency, program_currency)
}

/// The currency rule: a row's currency is the program's.
fn check_currency(currency: &str, program_currency: Option<&str>) -> Result<(), Issue> {
    if let Some(program) = program_currency {
        if currency != program {
            return Err(issue(
                "currency",
                format!("{currency:?} is not the program's currency {program:?}"),
            ));
        }
    }
    Ok(())
}

/// A character that must not appear in an id: control characters, zero-width and
/// other invisible format characters, and bidirectional controls. Ids differing only
/// by one of these look identical on screen.
pub fn is_hidden_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{034F}'
                | '\u{061C}'
                | '\u{115F}'
                | '\u{1160}'
                | '\u{17B4}'
                | '\u{17B5}'
                | '\u{180B}'..='\u{180F}'
                | '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{206F}'
                | '\u{3164}'
                | '\u{FE00}'..='\u{FE0F}'
                | '\u{FEFF}'
                | '\u{FFA0}'
                | '\u{FFF0}'..='\u{FFFB}'
                | '\u{E0000}'..='\u{E007F}'
        )
}

/// An id as the cache keeps it: refused when it has a hidden character (see
/// [`is_hidden_char`]) or surrounding white space, else in Unicode NFC (borrowed
/// when it already is, as every ASCII id is).
pub fn normalize_id<'a>(field: &'static str, id: &'a str) -> Result<Cow<'a, str>, Issue> {
    if id.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        if id.starts_with(' ') || id.ends_with(' ') {
            return Err(issue(
                field,
                format!("{id:?} has leading or trailing spaces"),
            ));
        }
        return Ok(Cow::Borrowed(id));
    }
    if let Some((at, c)) = id.char_indices().find(|(_, c)| is_hidden_char(*c)) {
        return Err(issue(
            field,
            format!(
                "{:?} holds the invisible or control character U+{:04X} at byte {at} (ids must be visible text)",
                id.escape_debug().to_string(),
                u32::from(c)
            ),
        ));
    }
    if id.trim() != id {
        return Err(issue(
            field,
            format!(
                "{:?} has leading or trailing white space",
                id.escape_debug().to_string()
            ),
        ));
    }
    match is_nfc_quick(id.chars()) {
        IsNormalized::Yes => Ok(Cow::Borrowed(id)),
        _ => {
            let nfc: String = id.nfc().collect();
            Ok(if nfc == id {
                Cow::Borrowed(id)
            } else {
                Cow::Owned(nfc)
            })
        }
    }
}

/// [`normalize_id`] for an owned id, rewritten in place.
pub fn normalize_id_in(field: &'static str, id: &mut String) -> Result<(), Issue> {
    if let Cow::Owned(n) = normalize_id(field, id)? {
        *id = n;
    }
    Ok(())
}

/// A pulled transaction's problem, if any: the sync keeps the row (the PRM is the
/// source of truth) and records the issue with kind [`DATA_INTEGRITY`], so it is
/// never paid without a decision. `program_currency` is the cache's program currency;
/// `missing` names the fields the PRM did not carry (and no import filled): a rule on
/// them cannot be checked, so the amount rules are skipped when a price or the quantity
/// is among them, and a missing id is not checked.
pub fn check_pulled_transaction(
    tx: &Transaction,
    program_currency: Option<&str>,
    missing: &[&str],
) -> Option<Issue> {
    for (field, id) in [
        ("transaction_id", Some(tx.transaction_id.as_str())),
        ("partner_id", Some(tx.partner_id.as_str())),
        ("sku", Some(tx.sku.as_str())),
        (
            "original_transaction_id",
            tx.original_transaction_id.as_deref(),
        ),
        ("registration_id", tx.registration_id.as_deref()),
    ] {
        if missing.contains(&field) {
            continue;
        }
        if let Some(id) = id {
            if let Err(e) = normalize_id(field, id) {
                return Some(e);
            }
        }
    }
    if ["quantity", "unit_list_price", "unit_net_price", "amount"]
        .iter()
        .any(|f| missing.contains(f))
    {
        return check_currency(&tx.currency, program_currency).err();
    }
    check_amounts(
        &Amounts {
            kind: tx.kind,
            quantity: tx.quantity,
            unit_list_price: tx.unit_list_price,
            unit_net_price: tx.unit_net_price,
            amount: tx.amount,
            currency: &tx.currency,
        },
        program_currency,
    )
    .err()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn sale(q: i64, unp: Decimal, amount: Decimal) -> Amounts<'static> {
        Amounts {
            kind: TransactionKind::Sale,
            quantity: q,
            unit_list_price: dec!(230.0),
            unit_net_price: unp,
            amount,
            currency: "USD",
        }
    }

    #[test]
    fn amounts_must_be_quantity_times_price_with_the_right_signs() {
        assert!(check_amounts(&sale(151, dec!(177.97), dec!(26873.47)), Some("USD")).is_ok());
        // Rounding of the unit price is allowed, 3.7x is not.
        assert!(check_amounts(&sale(3, dec!(33.33), dec!(100.00)), None).is_ok());
        let e = check_amounts(&sale(2, dec!(10), dec!(74)), None).unwrap_err();
        assert_eq!(e.field, "amount");
        let e = check_amounts(&sale(-2, dec!(10), dec!(-20)), None).unwrap_err();
        assert_eq!(e.field, "quantity");
        let e = check_amounts(&sale(0, dec!(10), dec!(0)), None).unwrap_err();
        assert_eq!(e.field, "quantity");
        let mut r = sale(-2, dec!(10), dec!(-20));
        r.kind = TransactionKind::Refund;
        assert!(check_amounts(&r, None).is_ok());
        r.quantity = 2;
        r.amount = dec!(20);
        assert_eq!(check_amounts(&r, None).unwrap_err().field, "quantity");
        let mut eur = sale(1, dec!(10), dec!(10));
        eur.currency = "EUR";
        assert_eq!(
            check_amounts(&eur, Some("USD")).unwrap_err().field,
            "currency"
        );
        let huge = sale(1, dec!(10), dec!(9999999999999999999999999999));
        assert_eq!(check_amounts(&huge, None).unwrap_err().field, "amount");
        let many = sale(i64::MAX, dec!(10), dec!(10));
        assert_eq!(check_amounts(&many, None).unwrap_err().field, "quantity");
    }

    #[test]
    fn ids_are_nfc_and_visible() {
        assert!(matches!(
            normalize_id("id", "T00001"),
            Ok(Cow::Borrowed("T00001"))
        ));
        assert!(normalize_id("id", "T0000\u{200B}1").is_err());
        assert!(normalize_id("id", "T\u{202E}1").is_err());
        assert!(normalize_id("id", "T\u{1b}[2J").is_err());
        assert!(normalize_id("id", " T1").is_err());
        // "é" decomposed becomes the composed character.
        let n = normalize_id("id", "Caf\u{0065}\u{0301}").unwrap();
        assert_eq!(n, "Caf\u{00E9}");
        assert!(matches!(
            normalize_id("id", "Caf\u{00E9}"),
            Ok(Cow::Borrowed(_))
        ));
    }
}
