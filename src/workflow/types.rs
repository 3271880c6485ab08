//! Workflow vocabulary: actors, policy, states, commands, errors, views.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use rust_decimal::Decimal;
use serde::Serialize;

use crate::config::{self, Config};
use crate::store::StoreError;

/// Who acts, in which role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub user: String,
    pub role: config::Role,
}

impl Actor {
    pub fn new(user: impl Into<String>, role: config::Role) -> Actor {
        Actor {
            user: user.into(),
            role,
        }
    }
}

/// Sign-off policy: per-currency thresholds and partners that always need sign-off.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub thresholds: BTreeMap<String, Decimal>,
    pub default_threshold: Decimal,
    pub high_value_partners: BTreeSet<String>,
}

impl Policy {
    pub fn from_config(c: &Config) -> Policy {
        Policy {
            thresholds: c.signoff_thresholds.clone(),
            default_threshold: c.default_signoff_threshold,
            high_value_partners: c.high_value_partners.iter().cloned().collect(),
        }
    }

    /// The threshold for a currency (the default when none is configured for it).
    pub fn threshold(&self, currency: &str) -> Decimal {
        self.thresholds
            .get(currency)
            .copied()
            .unwrap_or(self.default_threshold)
    }

    /// Whether an adjustment of `delta` (signed) for `partner_id` needs a second person.
    pub fn needs_signoff(
        &self,
        delta: Decimal,
        currency: &str,
        partner_id: &str,
        partner_high_value: bool,
    ) -> bool {
        partner_high_value
            || self.high_value_partners.contains(partner_id)
            || delta.abs() >= self.threshold(currency)
    }
}

impl Default for Policy {
    fn default() -> Self {
        Policy::from_config(&Config::default())
    }
}

/// The state of one flagged transaction under review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseState {
    Flagged,
    InReview,
    Approved,
    Overridden,
    Dismissed,
    Escalated,
    DocumentsRequested,
    AwaitingSignoff,
    SignedOff,
    Rejected,
    QueuedForPush,
    Pushed,
    Conflict,
}

impl CaseState {
    pub const ALL: [CaseState; 13] = [
        CaseState::Flagged,
        CaseState::InReview,
        CaseState::Approved,
        CaseState::Overridden,
        CaseState::Dismissed,
        CaseState::Escalated,
        CaseState::DocumentsRequested,
        CaseState::AwaitingSignoff,
        CaseState::SignedOff,
        CaseState::Rejected,
        CaseState::QueuedForPush,
        CaseState::Pushed,
        CaseState::Conflict,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            CaseState::Flagged => "flagged",
            CaseState::InReview => "in_review",
            CaseState::Approved => "approved",
            CaseState::Overridden => "overridden",
            CaseState::Dismissed => "dismissed",
            CaseState::Escalated => "escalated",
            CaseState::DocumentsRequested => "documents_requested",
            CaseState::AwaitingSignoff => "awaiting_signoff",
            CaseState::SignedOff => "signed_off",
            CaseState::Rejected => "rejected",
            CaseState::QueuedForPush => "queued_for_push",
            CaseState::Pushed => "pushed",
            CaseState::Conflict => "conflict",
        }
    }

    pub fn parse(s: &str) -> Option<CaseState> {
        let t = s.trim().to_ascii_lowercase().replace('-', "_");
        CaseState::ALL.into_iter().find(|c| c.as_str() == t)
    }

    /// States from which a reviewer may (re)open the case and decide.
    pub fn is_open(&self) -> bool {
        matches!(
            self,
            CaseState::Flagged
                | CaseState::InReview
                | CaseState::Escalated
                | CaseState::DocumentsRequested
                | CaseState::Rejected
                | CaseState::Conflict
        )
    }
}

impl fmt::Display for CaseState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for CaseState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CaseState::parse(s).ok_or_else(|| format!("unknown state '{s}'"))
    }
}

/// A reviewer's decision on a case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    StartReview,
    /// Accept the proposed adjustment.
    Approve,
    /// Set a different commission amount (needs a reason).
    Override {
        amount: Decimal,
    },
    /// A false positive: the transaction stands as submitted (needs a reason).
    Dismiss,
    Escalate,
    RequestDocuments,
}

impl Command {
    /// The action name recorded in decisions and the audit trail.
    pub fn action(&self) -> &'static str {
        match self {
            Command::StartReview => "start_review",
            Command::Approve => "approve",
            Command::Override { .. } => "override",
            Command::Dismiss => "dismiss",
            Command::Escalate => "escalate",
            Command::RequestDocuments => "request_documents",
        }
    }

    pub(crate) fn needs_reason(&self) -> bool {
        !matches!(self, Command::StartReview | Command::Approve)
    }
}

/// A manager's answer to an adjustment awaiting sign-off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignoffCommand {
    Approve,
    Reject,
}

impl SignoffCommand {
    pub fn action(&self) -> &'static str {
        match self {
            SignoffCommand::Approve => "sign_off",
            SignoffCommand::Reject => "reject_signoff",
        }
    }
}

/// Why a workflow action was refused. Every message says what and what to do.
#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    #[error("cannot {action} transaction {tx_id}: it is {from}{hint}")]
    IllegalTransition {
        tx_id: String,
        from: CaseState,
        action: String,
        hint: String,
    },
    #[error("four-eyes rule: {user} proposed the adjustment on {tx_id}, so a different manager must sign it off")]
    FourEyes { tx_id: String, user: String },
    #[error("sign-off needs the manager role (act with --role manager)")]
    NotManager,
    #[error("a reason is required for this action (--reason TEXT)")]
    ReasonRequired,
    #[error("transaction {0} is not in the cache (check the id, or import/sync first)")]
    UnknownTransaction(String),
    #[error("transaction {0} has no flag: only flagged transactions can be decided (run `tierdesk score` first?)")]
    NoFlag(String),
    #[error(
        "transaction {tx_id} changed since the adjustment was proposed ({why}); review it again"
    )]
    Changed { tx_id: String, why: String },
    #[error("nothing to undo on {tx_id}: {why}")]
    NothingToUndo { tx_id: String, why: String },
    #[error("invalid amount: {0}")]
    InvalidAmount(String),
    #[error("invalid period: {0}")]
    InvalidPeriod(String),
    #[error("no outbox entry for decision {0}")]
    UnknownDecision(String),
    #[error("transaction {0} is listed twice in the batch")]
    Duplicate(String),
    #[error("batch refused at {tx_id} (nothing was applied): {source}")]
    Batch {
        tx_id: String,
        #[source]
        source: Box<WorkflowError>,
    },
    #[error("stored workflow data is invalid: {0}")]
    Corrupt(String),
    #[error("stored workflow data is invalid: {0}")]
    Payload(#[from] super::prm_write::PayloadError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The proposal a case acts on, with exact money.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProposalView {
    pub action: String,
    pub current_amount: Decimal,
    pub proposed_amount: Decimal,
    pub delta: Decimal,
    pub currency: String,
    pub rationale: String,
    pub detector_version: String,
}

/// One case as the workbench shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CaseView {
    pub transaction_id: String,
    pub state: CaseState,
    pub proposal: Option<ProposalView>,
    pub decided_amount: Option<Decimal>,
    /// True while the case waits for a manager's sign-off.
    pub needs_signoff: bool,
    /// Who proposed (approved or overrode) the adjustment.
    pub proposer: Option<String>,
    pub score: Option<f64>,
    pub kinds: Vec<String>,
    pub version: i64,
    pub updated_at: Option<String>,
}

/// One audit entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    pub seq: i64,
    pub at: String,
    pub actor: String,
    pub role: String,
    pub action: String,
    pub target: String,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
    pub reason: Option<String>,
    pub score: Option<f64>,
    pub confidence: Option<f64>,
    pub detector_version: Option<String>,
    pub decision_id: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}

/// The result of recomputing the audit chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainReport {
    pub entries: u64,
    /// The hash of the last entry (the genesis hash when empty).
    pub head: String,
    /// The first entry that was altered, removed or reordered, when the chain is broken.
    pub first_bad: Option<ChainBreak>,
}

impl ChainReport {
    pub fn is_ok(&self) -> bool {
        self.first_bad.is_none()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainBreak {
    pub seq: i64,
    pub why: String,
}

/// A decision waiting to be pushed to the PRM.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutboxItem {
    pub id: i64,
    pub decision_id: String,
    /// Equal to `decision_id`: send it as the idempotency key.
    pub idempotency_key: String,
    pub transaction_id: String,
    pub payload: serde_json::Value,
    /// The transaction's PRM record version the decision was made on.
    pub record_version: Option<i64>,
    /// The audit chain head when the decision was written.
    pub audit_head: Option<String>,
    pub attempts: i64,
    pub created_at: String,
}

/// Case states whose transaction's lines wait for someone to decide (flagged, in review,
/// escalated, documents requested, awaiting sign-off, sent back, in conflict): a payout
/// run holds them and a statement shows them as held.
pub fn awaits_decision(state: &str) -> bool {
    matches!(
        state,
        "flagged"
            | "in_review"
            | "escalated"
            | "documents_requested"
            | "awaiting_signoff"
            | "rejected"
            | "conflict"
    )
}
