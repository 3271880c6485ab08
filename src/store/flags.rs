//! Store: flags.
