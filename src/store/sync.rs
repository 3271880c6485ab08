//! Store: sync.
