//! What both flavours derive from a [`Dataset`] before shaping it: each partner's
//! current tier, the (partner, customer) pairs, the calendar time a commission line is
//! dated at so that its period reads back, and the simulator clock's start.

use std::collections::{BTreeMap, HashMap};

use chrono::{NaiveDate, NaiveTime};
use rust_decimal::Decimal;

use crate::model::Dataset;

/// Midnight UTC of a date, in epoch milliseconds.
pub fn date_ms(d: NaiveDate) -> i64 {
    d.and_time(NaiveTime::MIN).and_utc().timestamp_millis()
}

/// A decimal amount in integer cents (rounded half to even).
pub fn cents(d: Decimal) -> i64 {
    crate::money::to_minor(d)
}

/// Each partner's current tier `(tier id, since)`: its latest tier-history entry.
pub fn current_tiers(ds: &Dataset) -> HashMap<String, (String, NaiveDate)> {
    let mut tiers: HashMap<String, (String, NaiveDate)> = HashMap::new();
    for th in &ds.tier_history {
        let e = tiers
            .entry(th.partner_id.clone())
            .or_insert((th.tier_id.clone(), th.effective_from));
        if th.effective_from >= e.1 {
            *e = (th.tier_id.clone(), th.effective_from);
        }
    }
    tiers
}

/// The distinct (partner id, customer name) pairs of the transactions, in that order,
/// with the first submission time (epoch ms) of each.
pub fn customers(ds: &Dataset) -> Vec<((String, String), i64)> {
    let mut m: BTreeMap<(&str, &str), i64> = BTreeMap::new();
    for t in &ds.transactions {
        let ms = t.submitted_at.timestamp_millis();
        let e = m
            .entry((t.partner_id.as_str(), t.customer_name.as_str()))
            .or_insert(ms);
        *e = (*e).min(ms);
    }
    m.into_iter()
        .map(|((p, c), ms)| ((p.to_string(), c.to_string()), ms))
        .collect()
}

/// The first and last millisecond of the calendar quarter a period `YYYY-Qn` names.
pub fn period_bounds(period: &str) -> Option<(i64, i64)> {
    let (y, q) = crate::model::parse_quarter(period)?;
    let first = NaiveDate::from_ymd_opt(y, (q - 1) * 3 + 1, 1)?;
    let next = if q == 4 {
        NaiveDate::from_ymd_opt(y + 1, 1, 1)?
    } else {
        NaiveDate::from_ymd_opt(y, q * 3 + 1, 1)?
    };
    Some((date_ms(first), date_ms(next) - 1))
}

/// The creation time of a commission line: its transaction's submission time moved into
/// the calendar quarter its period names (both PRMs carry no period: a client reads it
/// as the quarter of the creation time, so the line reads back with its own period).
pub fn line_created_ms(period: &str, submitted_ms: i64) -> i64 {
    match period_bounds(period) {
        Some((lo, hi)) => submitted_ms.clamp(lo, hi),
        None => submitted_ms,
    }
}

/// The newest time in a data set (epoch ms); a store also counts the times it assigns
/// (commission lines), and the simulator clock starts after all of them.
pub fn newest_ms(ds: &Dataset) -> i64 {
    let mut newest = date_ms(ds.program.as_of);
    for t in &ds.transactions {
        newest = newest.max(t.submitted_at.timestamp_millis());
    }
    for p in &ds.partners {
        newest = newest.max(date_ms(p.joined_on));
    }
    for th in &ds.tier_history {
        newest = newest.max(date_ms(th.effective_from));
    }
    for r in &ds.registrations {
        newest = newest.max(date_ms(r.registered_on));
    }
    newest
}

/// The decision UUID a tierdesk reward description carries
/// (`prm::partnerstack::decision_marker`), if any.
pub fn decision_in_description(desc: &str) -> Option<String> {
    let marker = crate::prm::partnerstack::decision_marker("");
    let at = desc.find(marker.as_str())?;
    let rest = desc[at + marker.len()..].trim_start();
    let token: String = rest
        .chars()
        .take_while(|c| c.is_ascii_hexdigit() || *c == '-')
        .collect();
    uuid::Uuid::parse_str(&token).ok().map(|u| u.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_dated_inside_its_period_quarter() {
        let (lo, hi) = period_bounds("2026-Q3").unwrap();
        assert_eq!(lo, date_ms(NaiveDate::from_ymd_opt(2026, 7, 1).unwrap()));
        assert_eq!(
            hi + 1,
            date_ms(NaiveDate::from_ymd_opt(2026, 10, 1).unwrap())
        );
        // A fiscal period named 2026-Q1 for a sale submitted in April: dated in March.
        let april = date_ms(NaiveDate::from_ymd_opt(2026, 4, 10).unwrap());
        let at = line_created_ms("2026-Q1", april);
        let q = crate::prm::quarter(crate::prm::ms_to_date(at).unwrap());
        assert_eq!(q, "2026-Q1");
        assert_eq!(line_created_ms("nonsense", april), april);
    }

    #[test]
    fn the_decision_is_read_from_the_marker() {
        let id = "6f1c1d2e-8a55-4c1e-9a4e-0e6c1b7d2f10";
        let d = format!(
            "adjustment: {}, reviewed",
            crate::prm::partnerstack::decision_marker(id)
        );
        assert_eq!(decision_in_description(&d).as_deref(), Some(id));
        assert_eq!(decision_in_description("tierdesk decision nope"), None);
        assert_eq!(decision_in_description("no marker"), None);
    }
}
