//! Application services: orchestration that reads and writes the store around the pure
//! cores (the detector, the plan), so those stay free of IO.

pub mod records;
pub mod score;
