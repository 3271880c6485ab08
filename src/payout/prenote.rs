//! ACH prenotes (pure): a zero-dollar entry (transaction code 23 to a checking account,
//! 33 to savings) sent to an account before its first payment, so the receiving bank can
//! refuse a wrong account before money moves. With `[payout] prenotes = true`, a payee
//! whose account tierdesk has neither paid nor prenoted is held `prenote_pending` and its
//! run's file carries the prenote; the payment follows in a run dated at least
//! `prenote_wait_days` banking days (default 3, Monday to Friday; bank holidays are not
//! known) after the prenote's effective date. A returned prenote holds the payee
//! (`prenote_returned`) until the bank details change.
//!
//! Accounts are known by a SHA-256 fingerprint of routing and account number (the
//! numbers themselves are not written again).

use chrono::{Datelike, NaiveDate, Weekday};
use sha2::{Digest, Sha256};

use super::checks::{Hold, Payee};

/// What tierdesk knows of an account (table `payout_accounts`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Known {
    /// A prenote went out in `run_id`, effective `effective`.
    Sent {
        run_id: String,
        effective: NaiveDate,
    },
    /// The prenote came back with this return reason code.
    Returned { code: String },
    /// A payment to the account was exported: no prenote needed.
    Paid,
}

/// The account fingerprint of an ACH payee (routing and account number).
pub fn fingerprint(p: &Payee) -> Option<String> {
    let r = p.routing_number.as_deref()?.trim();
    let a = p.account_number.as_deref()?.trim();
    if r.is_empty() || a.is_empty() {
        return None;
    }
    Some(hex::encode(Sha256::digest(format!("ach:{r}:{a}"))))
}

/// `n` banking days (Monday to Friday) after `d`.
pub fn add_banking_days(d: NaiveDate, n: u32) -> NaiveDate {
    let mut out = d;
    let mut left = n;
    while left > 0 {
        out = out.succ_opt().unwrap_or(out);
        if !matches!(out.weekday(), Weekday::Sat | Weekday::Sun) {
            left -= 1;
        }
    }
    out
}

/// The last four characters, for reasons (never the whole number).
fn last4(s: &str) -> String {
    let t: Vec<char> = s.trim().chars().collect();
    let tail: String = t[t.len().saturating_sub(4)..].iter().collect();
    format!("••{tail}")
}

/// The prenote hold of a payee in a run dated `run_date`, if any: `None` when the
/// account was paid before, or its prenote is old enough.
pub fn hold(p: &Payee, known: Option<&Known>, run_date: NaiveDate, wait_days: u32) -> Option<Hold> {
    let account = last4(p.account_number.as_deref().unwrap_or(""));
    match known {
        Some(Known::Paid) => None,
        Some(Known::Returned { code }) => Some(Hold::new(
            "prenote_returned",
            format!(
                "the prenote to account {account} was returned ({code}); correct the bank details"
            ),
        )),
        Some(Known::Sent { run_id, effective }) => {
            let ready = add_banking_days(*effective, wait_days);
            (run_date < ready).then(|| {
                Hold::new(
                    "prenote_pending",
                    format!(
                        "the prenote to account {account} went out in {run_id} effective {effective}; the first payment can go in a run dated {ready} or later ({wait_days} banking days)"
                    ),
                )
            })
        }
        None => {
            let ready = add_banking_days(run_date, wait_days);
            Some(Hold::new(
                "prenote_pending",
                format!(
                    "first payment to account {account}: a prenote goes with this run's file; the payment can go in a run dated {ready} or later ({wait_days} banking days)"
                ),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payee(acct: &str) -> Payee {
        Payee {
            routing_number: Some("011000015".into()),
            account_number: Some(acct.into()),
            ..Payee::default()
        }
    }

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn banking_days_skip_weekends() {
        // Friday + 3 banking days = Wednesday.
        assert_eq!(add_banking_days(d("2026-10-02"), 3), d("2026-10-07"));
        assert_eq!(add_banking_days(d("2026-10-05"), 3), d("2026-10-08"));
        assert_eq!(add_banking_days(d("2026-10-03"), 1), d("2026-10-05"));
        assert_eq!(add_banking_days(d("2026-10-05"), 0), d("2026-10-05"));
    }

    #[test]
    fn a_new_account_waits_for_its_prenote_and_a_paid_one_does_not() {
        let p = payee("123456789");
        let h = hold(&p, None, d("2026-10-05"), 3).unwrap();
        assert_eq!(h.code, "prenote_pending");
        assert!(
            h.reason.contains("••6789") && h.reason.contains("2026-10-08"),
            "{}",
            h.reason
        );
        assert!(!h.reason.contains("123456789"));
        let sent = Known::Sent {
            run_id: "PR-1".into(),
            effective: d("2026-10-05"),
        };
        assert!(hold(&p, Some(&sent), d("2026-10-07"), 3).is_some());
        assert_eq!(hold(&p, Some(&sent), d("2026-10-08"), 3), None);
        assert_eq!(hold(&p, Some(&Known::Paid), d("2026-10-05"), 3), None);
        let back = hold(
            &p,
            Some(&Known::Returned { code: "R03".into() }),
            d("2026-11-01"),
            3,
        )
        .unwrap();
        assert_eq!(back.code, "prenote_returned");
        assert!(back.reason.contains("R03"));
    }

    #[test]
    fn the_fingerprint_names_the_account_not_the_payee() {
        let a = fingerprint(&payee("1234")).unwrap();
        assert_eq!(a, fingerprint(&payee(" 1234 ")).unwrap());
        assert_ne!(a, fingerprint(&payee("1235")).unwrap());
        assert!(!a.contains("1234"));
        assert_eq!(fingerprint(&Payee::default()), None);
    }
}
