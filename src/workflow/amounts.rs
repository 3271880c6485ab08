//! Money entering the workflow: an override is bounded and exact at the edge, and one
//! far beyond the deal needs a confirmation.
//!
//! Rules (documented in the README's Decisions section):
//! - an override is refused when negative, beyond [`MAX_ABS_AMOUNT`], or with more
//!   decimals than the currency's minor unit (never rounded: the reviewer types what is
//!   meant), so everything accepted converts exactly to the PRM's minor units;
//! - an override above [`override_limit`] — the larger of the deal amount and ten times
//!   the current commission — is far beyond the deal: the CLI refuses it without
//!   `--force` and the workbench asks first.

use rust_decimal::Decimal;

use super::types::WorkflowError;
use crate::money::{format_money, minor_digits, to_minor_exact, MinorUnitsError, MAX_ABS_AMOUNT};
use crate::store::Store;

/// Refuses an override amount that cannot be a commission in `currency`.
pub fn check_override_amount(amount: Decimal, currency: &str) -> Result<(), WorkflowError> {
    if amount.is_sign_negative() && !amount.is_zero() {
        return Err(WorkflowError::InvalidAmount(format!(
            "a commission cannot be negative ({amount})"
        )));
    }
    match to_minor_exact(amount, currency) {
        Ok(_) => Ok(()),
        Err(MinorUnitsError::TooLarge { .. }) => Err(WorkflowError::InvalidAmount(format!(
            "{amount} is beyond the largest amount tierdesk accepts ({MAX_ABS_AMOUNT} {currency})"
        ))),
        Err(MinorUnitsError::NotWhole { digits, .. }) => {
            let unit = match digits {
                0 => "no decimals".to_string(),
                1 => "1 decimal".to_string(),
                n => format!("{n} decimals"),
            };
            Err(WorkflowError::InvalidAmount(format!(
                "{amount} has more decimals than {currency} allows ({unit}); type the amount in whole {currency} minor units, e.g. {}",
                amount.round_dp(minor_digits(currency))
            )))
        }
    }
}

/// The largest override that is not "far beyond the deal": the larger of the deal
/// amount and ten times the current commission (both taken as absolute values).
pub fn override_limit(deal_amount: Decimal, current: Decimal) -> Decimal {
    deal_amount.abs().max(current.abs() * Decimal::TEN)
}

/// An override far beyond the deal, with the numbers to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FarBeyond {
    pub amount: Decimal,
    pub deal_amount: Decimal,
    pub current: Decimal,
    pub limit: Decimal,
    pub currency: String,
}

impl std::fmt::Display for FarBeyond {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let m = |d: Decimal| format_money(d, &self.currency);
        write!(
            f,
            "the override {} is far beyond the deal: the deal is {}, the current commission {}, and an override above {} (the larger of the deal and 10x the commission) needs confirmation",
            m(self.amount),
            m(self.deal_amount),
            m(self.current),
            m(self.limit)
        )
    }
}

/// Whether overriding `tx_id`'s commission with `amount` is far beyond its deal.
/// `Ok(None)` when it is not, or when the transaction is unknown (the decision then
/// refuses it with its own error).
pub fn far_beyond(
    store: &Store,
    tx_id: &str,
    amount: Decimal,
) -> Result<Option<FarBeyond>, WorkflowError> {
    let db = store.wf();
    let Some(t) = db.get_transaction(tx_id)? else {
        return Ok(None);
    };
    let deal_amount = super::money(&t.amount, "amount", tx_id)?;
    let proposal = db.get_proposal(tx_id)?;
    let current = super::current_amount(&db, tx_id, proposal.as_ref())?;
    let limit = override_limit(deal_amount, current);
    Ok((amount > limit).then_some(FarBeyond {
        amount,
        deal_amount,
        current,
        limit,
        currency: t.currency,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn overrides_are_exact_and_bounded() {
        assert!(check_override_amount(dec!(12.34), "USD").is_ok());
        assert!(check_override_amount(dec!(0), "USD").is_ok());
        assert!(check_override_amount(dec!(1000000000000), "USD").is_ok());
        assert!(check_override_amount(dec!(1500), "JPY").is_ok());
        for (a, cur, needle) in [
            (
                dec!(12.345),
                "USD",
                "more decimals than USD allows (2 decimals)",
            ),
            (dec!(0.5), "JPY", "no decimals"),
            (
                dec!(9999999999999999999999999999),
                "USD",
                "beyond the largest",
            ),
            (dec!(1000000000000.01), "USD", "beyond the largest"),
            (dec!(-1), "USD", "negative"),
        ] {
            let e = check_override_amount(a, cur).unwrap_err().to_string();
            assert!(e.contains(needle), "{a} {cur}: {e}");
        }
    }

    #[test]
    fn the_limit_is_the_deal_or_ten_times_the_commission() {
        assert_eq!(override_limit(dec!(67000), dec!(6700)), dec!(67000));
        assert_eq!(override_limit(dec!(1000), dec!(500)), dec!(5000));
        assert_eq!(override_limit(dec!(-2000), dec!(0)), dec!(2000));
    }
}
