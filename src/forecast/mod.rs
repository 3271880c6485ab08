//! Forecasting: accruals, bookings and tier-attainment risk.
