//! Store: dataset.
