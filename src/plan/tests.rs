use super::*;
use rust_decimal_macros::dec;

#[test]
fn marginal_accelerators_cross_both_thresholds_in_one_sale() {
    let acc = [(dec!(1.0), dec!(1.5)), (dec!(1.25), dec!(2.0))];
    let s = segments(dec!(90), dec!(50), dec!(0.1), Some(dec!(100)), &acc).unwrap();
    let spans: Vec<_> = s.iter().map(|g| (g.amount, g.multiplier)).collect();
    assert_eq!(
        spans,
        vec![
            (dec!(10), dec!(1)),
            (dec!(25), dec!(1.5)),
            (dec!(15), dec!(2.0))
        ]
    );
    let total: Decimal = s.iter().map(|g| g.commission).sum();
    assert_eq!(total, dec!(1) + dec!(3.75) + dec!(3));
}
