//! Shadow commission recalculation (spec/plan.md).
