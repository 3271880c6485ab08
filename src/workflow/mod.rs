//! Workflow: decisions, approvals, sign-off, audit trail, outbox.
