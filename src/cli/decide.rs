//! `tierdesk decide`, `tierdesk signoff`, `tierdesk undo`: thin shells over `workflow`.
//!
//! A refused action prints the reason on stderr and exits 1; nothing is applied.

use std::process::ExitCode;

use super::Context;
use crate::money::parse_money;
use crate::workflow::{self, Actor, CaseState, Command, Policy, SignoffCommand, WorkflowError};

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("decision").required(true).args(
    ["approve", "override", "dismiss", "escalate", "request_documents", "start_review"]
)))]
pub struct DecideArgs {
    /// The transaction(s) to decide on; several are decided atomically (all or nothing).
    #[arg(value_name = "TRANSACTION_ID", required = true)]
    pub transaction_ids: Vec<String>,
    /// Accept the proposed adjustment.
    #[arg(long)]
    pub approve: bool,
    /// Set a different commission amount (needs --reason).
    #[arg(long, value_name = "AMOUNT", allow_negative_numbers = true)]
    pub r#override: Option<String>,
    /// A false positive: the deal stands as submitted (needs --reason).
    #[arg(long)]
    pub dismiss: bool,
    /// Hand the case to someone senior (needs --reason).
    #[arg(long)]
    pub escalate: bool,
    /// Hold the commission until the partner sends documents (needs --reason).
    #[arg(long)]
    pub request_documents: bool,
    /// Only open the case for review.
    #[arg(long)]
    pub start_review: bool,
    /// Why (kept in the audit trail).
    #[arg(long, value_name = "TEXT", default_value = "")]
    pub reason: String,
}

fn actor(ctx: &Context) -> Actor {
    Actor::new(ctx.user.clone(), ctx.role)
}

/// Prints the outcome of an action; a refusal exits 1, a store failure is an error.
fn report(
    what: &str,
    ids: &[String],
    res: Result<Vec<CaseState>, WorkflowError>,
) -> anyhow::Result<ExitCode> {
    match res {
        Ok(states) => {
            for (id, st) in ids.iter().zip(states) {
                println!("{id}: {st}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(WorkflowError::Store(e)) => Err(e.into()),
        Err(e) => {
            eprintln!("tierdesk {what}: refused: {e}");
            Ok(ExitCode::from(1))
        }
    }
}

pub fn run_decide(ctx: &Context, args: DecideArgs) -> anyhow::Result<ExitCode> {
    let cmd = if args.approve {
        Command::Approve
    } else if let Some(a) = &args.r#override {
        match parse_money(a) {
            Some(amount) => Command::Override { amount },
            None => {
                eprintln!("tierdesk decide: --override '{a}' is not an amount (e.g. 1250.00)");
                return Ok(ExitCode::from(2));
            }
        }
    } else if args.dismiss {
        Command::Dismiss
    } else if args.escalate {
        Command::Escalate
    } else if args.request_documents {
        Command::RequestDocuments
    } else {
        Command::StartReview
    };
    let mut store = ctx.open_existing_store()?;
    let policy = Policy::from_config(&ctx.config);
    let actor = actor(ctx);
    let res = if args.transaction_ids.len() == 1 {
        workflow::decide(
            &mut store,
            &policy,
            &actor,
            &args.transaction_ids[0],
            cmd,
            &args.reason,
        )
        .map(|s| vec![s])
    } else {
        workflow::decide_batch(
            &mut store,
            &policy,
            &actor,
            &args.transaction_ids,
            cmd,
            &args.reason,
        )
    };
    report("decide", &args.transaction_ids, res)
}

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("answer").required(true).args(["approve", "reject"])))]
pub struct SignoffArgs {
    /// The transaction(s) awaiting sign-off; several are signed atomically.
    #[arg(value_name = "TRANSACTION_ID", required = true)]
    pub transaction_ids: Vec<String>,
    /// Sign the adjustment off (it is queued for the PRM).
    #[arg(long)]
    pub approve: bool,
    /// Reject the adjustment (needs --reason).
    #[arg(long)]
    pub reject: bool,
    /// Why (kept in the audit trail).
    #[arg(long, value_name = "TEXT", default_value = "")]
    pub reason: String,
}

pub fn run_signoff(ctx: &Context, args: SignoffArgs) -> anyhow::Result<ExitCode> {
    let cmd = if args.approve {
        SignoffCommand::Approve
    } else {
        SignoffCommand::Reject
    };
    let mut store = ctx.open_existing_store()?;
    let policy = Policy::from_config(&ctx.config);
    let actor = actor(ctx);
    let res = if args.transaction_ids.len() == 1 {
        workflow::signoff(
            &mut store,
            &policy,
            &actor,
            &args.transaction_ids[0],
            cmd,
            &args.reason,
        )
        .map(|s| vec![s])
    } else {
        workflow::signoff_batch(
            &mut store,
            &policy,
            &actor,
            &args.transaction_ids,
            cmd,
            &args.reason,
        )
    };
    report("signoff", &args.transaction_ids, res)
}

#[derive(Debug, clap::Args)]
pub struct UndoArgs {
    /// The transaction whose latest decision to undo.
    #[arg(value_name = "TRANSACTION_ID")]
    pub transaction_id: String,
    /// Why (kept in the audit trail).
    #[arg(long, value_name = "TEXT", default_value = "")]
    pub reason: String,
}

pub fn run_undo(ctx: &Context, args: UndoArgs) -> anyhow::Result<ExitCode> {
    let mut store = ctx.open_existing_store()?;
    let policy = Policy::from_config(&ctx.config);
    let res = workflow::undo(
        &mut store,
        &policy,
        &actor(ctx),
        &args.transaction_id,
        &args.reason,
    )
    .map(|s| vec![s]);
    report("undo", std::slice::from_ref(&args.transaction_id), res)
}
