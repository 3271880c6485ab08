//! Seeds the demo cache with review work in every state a reviewer meets, made through
//! the workflow (state + audit + outbox, as a person would): started reviews, an
//! escalation, a documents request, a dismissal, approvals, an adjustment awaiting
//! sign-off by a manager (proposed by another analyst), one signed off and one
//! rejected. The top of the queue stays untouched for the tour.

use std::collections::BTreeMap;

use crate::config::{Config, Role};
use crate::money::parse_money;
use crate::store::queue::{PageDir, QueueFilter, QueueRow, QueueSort};
use crate::store::Store;
use crate::workflow::{self, Actor, CaseState, Command, Policy, SignoffCommand};

/// The analyst whose proposals wait in the demo's sign-off list.
pub const DEMO_ANALYST: &str = "ana";
/// The manager who signed off (and rejected) one proposal each in the demo.
pub const DEMO_MANAGER: &str = "lee";
/// Rows at the top of the queue left as flagged for the tour.
pub const TOUR_ROWS: usize = 10;

/// What seeding did: each resulting state with its count, and commands refused.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Seeded {
    pub states: BTreeMap<String, usize>,
    pub refused: Vec<String>,
}

impl Seeded {
    pub fn describe(&self) -> String {
        let parts: Vec<String> = self
            .states
            .iter()
            .map(|(s, n)| format!("{s} {n}"))
            .collect();
        parts.join(", ")
    }
}

/// Seeds review work into a scored demo cache (see the module doc).
pub fn seed(store: &mut Store, config: &Config) -> anyhow::Result<Seeded> {
    let policy = Policy::from_config(config);
    let ana = Actor::new(DEMO_ANALYST, Role::Analyst);
    let lee = Actor::new(DEMO_MANAGER, Role::Manager);
    let rows = store.queue_page(
        &QueueFilter::default(),
        QueueSort::Rank,
        None,
        PageDir::After,
        400,
    )?;
    let pool: Vec<&QueueRow> = rows.iter().skip(TOUR_ROWS).collect();
    // Proposals by size of change: the biggest need a manager's sign-off.
    let mut by_delta: Vec<&QueueRow> = pool
        .iter()
        .copied()
        .filter(|r| r.delta.as_deref().and_then(parse_money).is_some())
        .collect();
    by_delta.sort_by_key(|r| {
        std::cmp::Reverse(
            r.delta
                .as_deref()
                .and_then(parse_money)
                .unwrap_or_default()
                .abs(),
        )
    });
    let mut out = Seeded::default();
    let mut used: Vec<String> = Vec::new();
    let note = |out: &mut Seeded, r: Result<CaseState, workflow::WorkflowError>, id: &str| match r {
        Ok(s) => *out.states.entry(s.as_str().to_string()).or_default() += 1,
        Err(e) => out.refused.push(format!("{id}: {e}")),
    };
    // The three biggest changes: approved by the analyst; one waits for sign-off, one is
    // signed off, one rejected by the manager.
    for (i, r) in by_delta.iter().take(3).enumerate() {
        let id = r.transaction_id.as_str();
        used.push(id.to_string());
        let first = workflow::decide(
            store,
            &policy,
            &ana,
            id,
            Command::Approve,
            "the plan's recalculation is right; partner confirmed the order",
        );
        let waits = matches!(first, Ok(CaseState::AwaitingSignoff));
        if i == 0 || !waits {
            note(&mut out, first, id);
            continue;
        }
        let (cmd, why) = if i == 1 {
            (
                SignoffCommand::Approve,
                "checked the order form: signed off",
            )
        } else {
            (
                SignoffCommand::Reject,
                "the partner disputes it: look again",
            )
        };
        let r = workflow::signoff(store, &policy, &lee, id, cmd, why);
        note(&mut out, r, id);
    }
    let rest: Vec<&QueueRow> = pool
        .iter()
        .copied()
        .filter(|r| !used.contains(&r.transaction_id))
        .collect();
    let plan: [(Command, &str); 5] = [
        (Command::StartReview, ""),
        (
            Command::Escalate,
            "a pattern across this partner's deals: escalated",
        ),
        (
            Command::RequestDocuments,
            "asked the partner for the signed order form",
        ),
        (Command::Dismiss, "a known customer renewal: not an anomaly"),
        (Command::Approve, "small correction, as the plan says"),
    ];
    for (r, (cmd, why)) in rest.iter().rev().zip(plan) {
        let id = r.transaction_id.as_str();
        let res = workflow::decide(store, &policy, &ana, id, cmd, why);
        note(&mut out, res, id);
        used.push(id.to_string());
    }
    // Two partner disputes (one already in review) and a payout run for the last
    // closed quarter, prepared by the analyst and waiting for a manager's approval.
    let free: Vec<&QueueRow> = rest
        .iter()
        .copied()
        .filter(|r| !used.contains(&r.transaction_id))
        .take(2)
        .collect();
    for (k, r) in free.iter().enumerate() {
        let claimed = r
            .delta
            .as_deref()
            .and_then(parse_money)
            .map(|d| d.abs())
            .filter(|d| !d.is_zero())
            .unwrap_or(rust_decimal::Decimal::ONE_HUNDRED);
        let opened = crate::dispute::open(
            store,
            &ana,
            crate::dispute::NewDispute {
                partner_id: r.partner_id.clone(),
                transaction_id: r.transaction_id.clone(),
                reason_code: ["incorrect_amount", "missing_credit"][k % 2].to_string(),
                claimed,
                note: "partner asks why the deal was adjusted".to_string(),
            },
        );
        match opened {
            Ok(id) if k == 0 => {
                if let Err(e) = crate::dispute::move_to(
                    store,
                    &policy,
                    &ana,
                    &id,
                    crate::dispute::State::InReview,
                    None,
                    "looking at the order form",
                ) {
                    out.refused.push(format!("dispute {id}: {e}"));
                }
                *out.states.entry("dispute".into()).or_default() += 1;
            }
            Ok(_) => *out.states.entry("dispute".into()).or_default() += 1,
            Err(e) => out
                .refused
                .push(format!("dispute on {}: {e}", r.transaction_id)),
        }
    }
    if let Some(program) = store.program()? {
        let (y, q) =
            crate::model::fiscal_year_quarter(program.as_of, program.fiscal_year_start_month);
        let (y, q) = if q == 1 { (y - 1, 4) } else { (y, q - 1) };
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        match crate::payout::prepare(
            store,
            &ana,
            &format!("{y}-Q{q}"),
            program.as_of,
            30,
            None,
            &now,
        ) {
            Ok(_) => *out.states.entry("payout run".into()).or_default() += 1,
            Err(e) => out.refused.push(format!("payout run {y}-Q{q}: {e}")),
        }
    }
    Ok(out)
}
