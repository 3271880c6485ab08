//! Store: queue.
