//! Store: workflow.
