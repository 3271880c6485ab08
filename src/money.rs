//! Money helpers: parsing decimal strings exactly, banker's rounding to cents,
//! minor units, and display with a currency and thousands separators.

use rust_decimal::{Decimal, RoundingStrategy};

/// Parses a decimal string exactly (never through `f64`). Accepts `"26873.47"`,
/// `"230.0"`, `"-150"`; rejects floats-in-disguise such as `"1e5"` and empty text.
pub fn parse_money(s: &str) -> Option<Decimal> {
    let t = s.trim();
    if t.is_empty() || t.contains(['e', 'E']) {
        return None;
    }
    t.parse::<Decimal>().ok()
}

/// Rounds to cents, half to even (banker's rounding).
pub fn round_cents(d: Decimal) -> Decimal {
    d.round_dp_with_strategy(2, RoundingStrategy::MidpointNearestEven)
}

/// Amount in minor units (cents), rounded half to even; saturates on overflow (never
/// panics: for sorting and display only; see [`to_minor_exact`] for what is sent out).
pub fn to_minor(d: Decimal) -> i64 {
    let c = round_cents(d)
        .checked_mul(Decimal::ONE_HUNDRED)
        .unwrap_or(if d.is_sign_negative() {
            Decimal::MIN
        } else {
            Decimal::MAX
        });
    c.trunc().try_into().unwrap_or(if d.is_sign_negative() {
        i64::MIN
    } else {
        i64::MAX
    })
}

/// The largest absolute amount tierdesk accepts anywhere money enters (an override, an
/// imported amount, a PRM line): a trillion in the program's currency. Anything larger is
/// a typing error or hostile input, and it keeps every sum of amounts far inside both
/// `Decimal` and `i64` minor units.
pub const MAX_ABS_AMOUNT: Decimal = Decimal::from_parts(3_567_587_328, 232, 0, false, 0); // 1e12

/// Digits after the decimal point of a currency's minor unit (ISO 4217; 2 unless listed).
pub fn minor_digits(currency: &str) -> u32 {
    match currency {
        "JPY" | "KRW" | "VND" | "CLP" | "ISK" | "UGX" | "XAF" | "XOF" | "PYG" => 0,
        "BHD" | "KWD" | "OMR" | "JOD" | "TND" | "LYD" | "IQD" => 3,
        _ => 2,
    }
}

/// Why an amount cannot be written as whole minor units.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MinorUnitsError {
    #[error("{amount} {currency} has more decimals than the currency's {digits}")]
    NotWhole {
        amount: Decimal,
        currency: String,
        digits: u32,
    },
    #[error(
        "{amount} {currency} is beyond the largest amount tierdesk accepts ({MAX_ABS_AMOUNT})"
    )]
    TooLarge { amount: Decimal, currency: String },
}

/// Amount in the currency's minor units, exactly: an amount with more decimals than the
/// currency has, or beyond [`MAX_ABS_AMOUNT`], is an error (never rounded, never saturated).
/// This is the conversion for anything written to a PRM or a bank file.
pub fn to_minor_exact(d: Decimal, currency: &str) -> Result<i64, MinorUnitsError> {
    if d.abs() > MAX_ABS_AMOUNT {
        return Err(MinorUnitsError::TooLarge {
            amount: d,
            currency: currency.to_string(),
        });
    }
    let digits = minor_digits(currency);
    let scaled = d
        .checked_mul(Decimal::from(10i64.pow(digits)))
        .ok_or_else(|| MinorUnitsError::TooLarge {
            amount: d,
            currency: currency.to_string(),
        })?;
    if scaled.fract() != Decimal::ZERO {
        return Err(MinorUnitsError::NotWhole {
            amount: d,
            currency: currency.to_string(),
            digits,
        });
    }
    i64::try_from(scaled).map_err(|_| MinorUnitsError::TooLarge {
        amount: d,
        currency: currency.to_string(),
    })
}

/// Groups thousands with two decimals: `12345.6` -> `"12,345.60"`.
pub fn group(d: Decimal) -> String {
    let r = round_cents(d);
    let neg = r.is_sign_negative() && !r.is_zero();
    let s = format!("{:.2}", r.abs());
    let (int, frac) = s.split_once('.').unwrap_or((&s, "00"));
    let mut out = String::with_capacity(s.len() + int.len() / 3 + 1);
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    format!("{}{}.{}", if neg { "-" } else { "" }, out, frac)
}

/// The symbol used before an amount for common currencies, else the code and a space.
pub fn currency_prefix(code: &str) -> String {
    match code {
        "USD" => "$".into(),
        "EUR" => "€".into(),
        "GBP" => "£".into(),
        "JPY" => "¥".into(),
        "AUD" => "A$".into(),
        "CAD" => "C$".into(),
        "INR" => "₹".into(),
        other => format!("{other} "),
    }
}

/// `format_money(1234.5, "USD")` -> `"$1,234.50"`; negatives as `"-$1,234.50"`.
pub fn format_money(d: Decimal, currency: &str) -> String {
    let g = group(d);
    let p = currency_prefix(currency);
    match g.strip_prefix('-') {
        Some(rest) => format!("-{p}{rest}"),
        None => format!("{p}{g}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn parses_exactly() {
        assert_eq!(parse_money("26873.47"), Some(dec!(26873.47)));
        assert_eq!(parse_money("-150"), Some(dec!(-150)));
        assert_eq!(parse_money("1e5"), None);
        assert_eq!(parse_money(""), None);
        assert_eq!(parse_money("abc"), None);
    }

    #[test]
    fn rounds_half_to_even() {
        assert_eq!(round_cents(dec!(0.125)), dec!(0.12));
        assert_eq!(round_cents(dec!(0.135)), dec!(0.14));
        assert_eq!(round_cents(dec!(-0.125)), dec!(-0.12));
        assert_eq!(to_minor(dec!(12.345)), 1234);
    }

    #[test]
    fn minor_units_are_exact_or_refused() {
        assert_eq!(MAX_ABS_AMOUNT, dec!(1000000000000));
        assert_eq!(to_minor_exact(dec!(12.34), "USD"), Ok(1234));
        assert_eq!(to_minor_exact(dec!(-0.5), "EUR"), Ok(-50));
        assert_eq!(to_minor_exact(dec!(1500), "JPY"), Ok(1500));
        assert_eq!(to_minor_exact(dec!(1.234), "KWD"), Ok(1234));
        assert!(matches!(
            to_minor_exact(dec!(12.345), "USD"),
            Err(MinorUnitsError::NotWhole { digits: 2, .. })
        ));
        assert!(matches!(
            to_minor_exact(dec!(0.5), "JPY"),
            Err(MinorUnitsError::NotWhole { digits: 0, .. })
        ));
        assert!(matches!(
            to_minor_exact(dec!(9999999999999999999999999999), "USD"),
            Err(MinorUnitsError::TooLarge { .. })
        ));
        assert!(matches!(
            to_minor_exact(dec!(1000000000000.01), "USD"),
            Err(MinorUnitsError::TooLarge { .. })
        ));
    }

    #[test]
    fn formats_with_separators() {
        assert_eq!(format_money(dec!(1234567.891), "USD"), "$1,234,567.89");
        assert_eq!(format_money(dec!(-950), "EUR"), "-€950.00");
        assert_eq!(format_money(dec!(5), "CHF"), "CHF 5.00");
        assert_eq!(group(dec!(100)), "100.00");
        assert_eq!(group(dec!(1000)), "1,000.00");
    }
}
