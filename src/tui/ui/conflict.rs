//! A conflict made readable: what the reviewer saw, what the PRM has now and what was
//! decided, as three normalised columns. The PRM's payload is in its own vocabulary
//! (camelCase or snake_case keys, integer cents, epoch milliseconds); each field is
//! brought to the cache's form (decimal money in the program's currency, dates as dates)
//! before comparing, so only real changes are marked.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::{Map, Value};

use crate::money::{format_money, parse_money};

/// One compared field.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub field: &'static str,
    pub saw: String,
    pub now: String,
    pub decided: String,
    /// The PRM's value differs from what the reviewer saw (after normalising).
    pub changed: bool,
}

/// The fields compared, with the keys a PRM may use for each.
const FIELDS: [(&str, &[&str]); 5] = [
    (
        "amount",
        &["amount", "amountCents", "amount_cents", "value"],
    ),
    ("currency", &["currency", "currencyCode", "currency_code"]),
    (
        "partner",
        &[
            "partner_id",
            "partnerId",
            "partner_key",
            "partnerKey",
            "partner",
        ],
    ),
    ("version", &["record_version", "recordVersion", "version"]),
    (
        "updated",
        &[
            "updated",
            "updatedMs",
            "updated_at",
            "updatedAt",
            "updated_ms",
        ],
    ),
];

fn object(text: &str) -> Map<String, Value> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

fn lookup<'a>(m: &'a Map<String, Value>, keys: &[&str]) -> Option<(&'a str, &'a Value)> {
    keys.iter()
        .find_map(|k| m.get_key_value(*k))
        .map(|(k, v)| (k.as_str(), v))
        .filter(|(_, v)| !v.is_null())
}

/// A PRM money value as a decimal: integers (and keys naming cents) are minor units.
fn money_of(key: &str, v: &Value) -> Option<Decimal> {
    let cents = key.to_ascii_lowercase().contains("cents") || v.is_i64() || v.is_u64();
    let d = match v {
        Value::String(s) => parse_money(s)?,
        Value::Number(n) => parse_money(&n.to_string())?,
        _ => return None,
    };
    Some(if cents && !matches!(v, Value::String(_)) {
        d / Decimal::from(100)
    } else {
        d
    })
}

/// A timestamp as `YYYY-MM-DD HH:MM` (epoch milliseconds or ISO text).
fn when_of(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) => {
            let ms = n.as_i64()?;
            let t: DateTime<Utc> = DateTime::from_timestamp_millis(ms)?;
            Some(t.format("%Y-%m-%d %H:%M").to_string())
        }
        Value::String(s) => Some(s.replace('T', " ").chars().take(16).collect()),
        _ => None,
    }
}

fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The normalised value of `field` in `m` (money formatted in `currency`).
fn value(field: &str, keys: &[&str], m: &Map<String, Value>, currency: &str) -> Option<String> {
    let (k, v) = lookup(m, keys)?;
    Some(match field {
        "amount" => format_money(money_of(k, v)?, currency),
        "currency" => plain(v).to_ascii_uppercase(),
        "updated" => when_of(v)?,
        _ => plain(v),
    })
}

/// The three columns of one conflict: `seen` and `decided` as tierdesk stored them,
/// `remote` as the PRM sent it.
pub fn rows(seen: &str, remote: &str, decided: &str, currency: &str) -> Vec<Row> {
    let (s, r, d) = (object(seen), object(remote), object(decided));
    // The PRM may nest the record (`{"deal": {...}}`, `{"record": {...}}`).
    let r = ["record", "deal", "transaction", "data"]
        .iter()
        .find_map(|k| r.get(*k).and_then(Value::as_object).cloned())
        .unwrap_or(r);
    let mut out = Vec::new();
    for (field, keys) in FIELDS {
        let saw = value(field, keys, &s, currency);
        let now = value(field, keys, &r, currency);
        if saw.is_none() && now.is_none() {
            continue;
        }
        let decided = match field {
            "amount" => d
                .get("amount")
                .and_then(|v| parse_money(&plain(v)))
                .map(|a| format_money(a, currency))
                .unwrap_or_default(),
            _ => String::new(),
        };
        let changed = saw.is_some() && now.is_some() && saw != now;
        out.push(Row {
            field,
            saw: saw.unwrap_or_else(|| "—".into()),
            now: now.unwrap_or_else(|| "—".into()),
            decided,
            changed,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cents_and_epoch_milliseconds_compare_as_money_and_dates() {
        let seen = r#"{"row_hash":"h","record_version":3,"amount":"1234.50","currency":"USD","partner_id":"P1"}"#;
        // PartnerStack-like: integer cents, camelCase keys, epoch ms; only the amount changed.
        let remote = r#"{"key":"T1","amount":130000,"currency":"usd","partnerKey":"P1","recordVersion":4,"updatedMs":1759276800000}"#;
        let decided = r#"{"action":"override","amount":"1000.00","seen":{}}"#;
        let r = rows(seen, remote, decided, "USD");
        let get = |f: &str| r.iter().find(|x| x.field == f).unwrap().clone();
        let amount = get("amount");
        assert_eq!(amount.saw, format_money(Decimal::new(123450, 2), "USD"));
        assert_eq!(amount.now, format_money(Decimal::new(130000, 2), "USD"));
        assert_eq!(amount.decided, format_money(Decimal::new(100000, 2), "USD"));
        assert!(amount.changed);
        assert!(
            !get("currency").changed,
            "usd and USD are the same currency"
        );
        assert!(!get("partner").changed);
        assert!(get("version").changed);
        assert_eq!(get("updated").now, "2025-10-01 00:00");
        // The same amount in cents and in dollars is no change.
        let same = rows(seen, r#"{"amount":123450}"#, "{}", "USD");
        assert!(!same[0].changed, "{same:?}");
        let same = rows(seen, r#"{"deal":{"amount":"1234.5"}}"#, "{}", "USD");
        assert!(!same[0].changed, "{same:?}");
    }
}
