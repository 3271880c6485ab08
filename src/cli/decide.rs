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
    /// Set a different commission amount (needs --reason). At most the currency's
    /// decimals and at most 1,000,000,000,000; on a held commission, 0 reverses it.
    #[arg(long, value_name = "AMOUNT", allow_negative_numbers = true)]
    pub r#override: Option<String>,
    /// Confirm an override far beyond the deal: above the larger of the deal amount
    /// and ten times the current commission.
    #[arg(long, requires = "override")]
    pub force: bool,
    /// A false positive: the deal stands as submitted; on a held commission, releases
    /// the hold (needs --reason).
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
    if let (Command::Override { amount }, false) = (&cmd, args.force) {
        for id in &args.transaction_ids {
            if let Some(far) = workflow::far_beyond(&store, id, *amount)? {
                eprintln!(
                    "tierdesk decide: refused: {id}: {far}; add --force if it is meant (nothing was applied)"
                );
                return Ok(ExitCode::from(1));
            }
        }
    }
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

/// `tierdesk bench workflow`: on a copy of the workbench benchmark's cache (built
/// once, as `bench tui` builds it), approves a batch of proposals in one decision,
/// then decides on single ones one by one, then checks the audit chain.
pub fn bench(ctx: &Context, opts: &super::bench::BenchOpts) -> anyhow::Result<ExitCode> {
    use std::time::{Duration, Instant};
    const BATCH: usize = 2_500;
    const SINGLES: usize = 200;
    let dir = std::env::temp_dir().join("tierdesk-bench-tui");
    std::fs::create_dir_all(&dir)?;
    let base = dir.join(format!("bench-tui-{}.db", opts.transactions));
    super::workbench::bench_cache(&base, opts.transactions, opts.seed)?;
    // Decisions change the cache: work on a copy (the base stays reusable).
    let db = dir.join(format!("bench-workflow-{}.db", std::process::id()));
    std::fs::copy(&base, &db)?;
    let result = (|| -> anyhow::Result<()> {
        let mut store = crate::store::Store::open(&db)?;
        let ids = store.undecided_proposal_ids(BATCH + SINGLES)?;
        if ids.len() < 2 {
            anyhow::bail!(
                "the cache has {} undecided proposals: use more --transactions",
                ids.len()
            );
        }
        let batch = ids.len().min(BATCH).min(ids.len() - 1);
        let policy = Policy::from_config(&ctx.config);
        let actor = Actor::new("bench", crate::config::Role::Analyst);
        let t = Instant::now();
        workflow::decide_batch(
            &mut store,
            &policy,
            &actor,
            &ids[..batch],
            Command::Approve,
            "bench: batch approval",
        )?;
        let batch_took = t.elapsed();
        let mut singles: Vec<Duration> = Vec::new();
        for id in &ids[batch..] {
            let t = Instant::now();
            workflow::decide(
                &mut store,
                &policy,
                &actor,
                id,
                Command::Dismiss,
                "bench: false positive",
            )?;
            singles.push(t.elapsed());
        }
        singles.sort();
        let pct = |p: f64| singles[((singles.len() - 1) as f64 * p).round() as usize];
        let t = Instant::now();
        let chain = workflow::verify_chain(&store)?;
        let verify_took = t.elapsed();
        anyhow::ensure!(chain.is_ok(), "the audit chain does not verify: {chain:?}");
        println!(
            "bench workflow: cache of {} transactions ({})",
            opts.transactions,
            base.display()
        );
        println!(
            "  batch approval of {batch} proposals (one transaction, synchronous=FULL): {:.3}s = {:.0} decisions/s",
            batch_took.as_secs_f64(),
            batch as f64 / batch_took.as_secs_f64().max(1e-9)
        );
        println!(
            "  single decisions ({} dismissals, each its own durable transaction): p50 {:.2} ms, p99 {:.2} ms",
            singles.len(),
            pct(0.5).as_secs_f64() * 1e3,
            pct(0.99).as_secs_f64() * 1e3
        );
        println!(
            "  audit chain check: {} entries in {:.3}s",
            chain.entries,
            verify_took.as_secs_f64()
        );
        Ok(())
    })();
    for ext in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{ext}", db.display()));
    }
    result.map(|()| ExitCode::SUCCESS)
}
