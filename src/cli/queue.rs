//! `tierdesk queue --format jsonl|table [--state S] [--kind K] [--sort score|stake|amount|age]
//! [--reverse] [--view NAME] [--limit N]`: the exception queue — the same rows, in the same order, as the
//! workbench's queue (one read model: `Store::queue_page`, review window, at least one kind,
//! by score then at stake unless sorted otherwise).

use std::io::Write;
use std::process::ExitCode;

use rust_decimal::Decimal;
use serde::Serialize;

use super::{Context, Format};
use crate::money::{format_money, parse_money};
use crate::store::queue::{PageDir, QueueFilter, QueueOrder, QueueRow, QueueSort};
use crate::text::sanitize;
use crate::workflow::CaseState;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output format: a table for people, or one JSON object per case (jsonl).
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Only cases in this state (flagged, in_review, awaiting_signoff, queued_for_push, ...);
    /// a comma list passes any of them.
    #[arg(long, value_name = "S")]
    pub state: Option<String>,
    /// Only flags of this kind (duplicate, discount_policy, ...); a comma list: any of them.
    #[arg(long, value_name = "K")]
    pub kind: Option<String>,
    /// At most N rows.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Order: score (default; then at stake), stake, amount (highest first) or age
    /// (oldest submission first), as the workbench's `s` cycles them.
    #[arg(long, value_name = "ORDER", default_value = "score")]
    pub sort: String,
    /// Reverse the order (the workbench's `O`).
    #[arg(long)]
    pub reverse: bool,
    /// A view saved in the workbench (`:view save NAME`) by this `--user`: its filter and
    /// sort, instead of --state, --kind, --sort and --reverse.
    #[arg(long, value_name = "NAME", conflicts_with_all = ["state", "kind", "sort", "reverse"])]
    pub view: Option<String>,
}

/// One queue line as `--format jsonl` prints it (money as exact decimal strings).
#[derive(Debug, Serialize)]
struct Item<'a> {
    transaction_id: &'a str,
    partner_id: &'a str,
    partner_name: &'a str,
    tier: &'a str,
    score: f64,
    confidence: f64,
    kinds: &'a [String],
    amount: &'a str,
    currency: &'a str,
    at_stake: String,
    state: &'a str,
    /// `anomaly_flagged` until someone acts, then the workflow state.
    processing_status: &'a str,
    /// hold / reverse / recompute / adjust: what approving carries out.
    action: Option<&'a str>,
    /// The same as `action` (the name earlier versions printed).
    proposed_action: Option<&'a str>,
    current_amount: Option<&'a str>,
    proposed_amount: Option<&'a str>,
    delta: Option<&'a str>,
    decided_amount: Option<&'a str>,
    proposer: Option<&'a str>,
    reasons: &'a [String],
}

impl<'a> Item<'a> {
    fn of(r: &'a QueueRow) -> Item<'a> {
        Item {
            transaction_id: &r.transaction_id,
            partner_id: &r.partner_id,
            partner_name: &r.partner_name,
            tier: &r.tier,
            score: r.score,
            confidence: r.confidence,
            kinds: &r.kinds,
            amount: &r.amount,
            currency: &r.currency,
            at_stake: Decimal::new(r.at_stake_minor, 2).to_string(),
            state: &r.status,
            processing_status: crate::policy::processing_status(Some(&r.kinds), Some(&r.status)),
            action: r.action.as_deref(),
            proposed_action: r.action.as_deref(),
            current_amount: r.current_amount.as_deref(),
            proposed_amount: r.proposed_amount.as_deref(),
            delta: r.delta.as_deref(),
            decided_amount: r.decided_amount.as_deref(),
            proposer: r.proposer.as_deref(),
            reasons: &r.reasons,
        }
    }
}

/// Rows fetched per page while walking the queue.
const PAGE: usize = 500;

/// The whole queue (or its first `limit` rows) in the workbench's order.
pub fn rows(
    store: &crate::store::Store,
    filter: &QueueFilter,
    order: QueueOrder,
    limit: usize,
) -> anyhow::Result<Vec<QueueRow>> {
    let mut out: Vec<QueueRow> = Vec::new();
    while out.len() < limit {
        let want = PAGE.min(limit - out.len());
        let cursor = out.last().map(QueueRow::cursor);
        let page = store.queue_page(filter, order, cursor.as_ref(), PageDir::After, want)?;
        let n = page.len();
        out.extend(page);
        if n < want {
            break;
        }
    }
    Ok(out)
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let list = |v: &Option<String>| -> Vec<String> {
        v.as_deref()
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|x| !x.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let states = list(&args.state);
    for s in &states {
        if CaseState::parse(s).is_none() {
            let all: Vec<&str> = CaseState::ALL.iter().map(|s| s.as_str()).collect();
            eprintln!(
                "tierdesk queue: unknown state '{}'; one of: {}",
                sanitize(s),
                all.join(", ")
            );
            return Ok(ExitCode::from(2));
        }
    }
    let Some(sort) = QueueSort::parse(&args.sort) else {
        eprintln!(
            "tierdesk queue: unknown sort '{}'; one of: score, stake, amount, age",
            sanitize(&args.sort)
        );
        return Ok(ExitCode::from(2));
    };
    let order = QueueOrder {
        sort,
        reverse: args.reverse,
    };
    let store = ctx.open_existing_store()?;
    let (filter, order) = match &args.view {
        Some(name) => match store.view(&ctx.user, name)? {
            Some(v) => (v.filter.to_filter(&ctx.user, ctx.role), v.order),
            None => {
                let names: Vec<String> = store
                    .views(&ctx.user)?
                    .into_iter()
                    .map(|v| v.name)
                    .collect();
                eprintln!(
                    "tierdesk queue: {} has no view named '{}'{}",
                    sanitize(&ctx.user),
                    sanitize(name),
                    if names.is_empty() {
                        " (save one in the workbench with :view save NAME)".to_string()
                    } else {
                        format!("; saved: {}", sanitize(&names.join(", ")))
                    }
                );
                return Ok(ExitCode::from(2));
            }
        },
        None => (
            QueueFilter {
                status: states,
                kind: list(&args.kind),
                ..QueueFilter::default()
            },
            order,
        ),
    };
    let items = rows(&store, &filter, order, args.limit.unwrap_or(usize::MAX))?;
    match args.format {
        Format::Jsonl => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            for it in &items {
                serde_json::to_writer(&mut out, &Item::of(it))?;
                out.write_all(b"\n")?;
            }
            out.flush()?;
        }
        Format::Table => {
            let mut out = crate::text::clean_stdout();
            table(&mut out, &items)?;
            out.flush()?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn money(s: Option<&str>, cur: &str) -> String {
    match s.and_then(parse_money) {
        Some(d) => format_money(d, cur),
        None => "-".into(),
    }
}

fn table(out: &mut impl Write, items: &[QueueRow]) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<14} {:>5}  {:<18} {:<22} {:<16} {:<9} {:>14} {:>14} {:>14} {:>14}",
        "TRANSACTION",
        "SCORE",
        "KINDS",
        "PARTNER",
        "STATE",
        "ACTION",
        "AT STAKE",
        "CURRENT",
        "PROPOSED",
        "DECIDED"
    )?;
    for r in items {
        let cur = r.currency.as_str();
        writeln!(
            out,
            "{:<14} {:>5.3}  {:<18} {:<22} {:<16} {:<9} {:>14} {:>14} {:>14} {:>14}",
            r.transaction_id,
            r.score,
            crate::text::fit(&r.kinds.join(","), 18),
            crate::text::fit(&r.partner_name, 22),
            r.status,
            r.action.as_deref().unwrap_or("-"),
            format_money(Decimal::new(r.at_stake_minor, 2), cur),
            money(r.current_amount.as_deref(), cur),
            money(r.proposed_amount.as_deref(), cur),
            money(r.decided_amount.as_deref(), cur),
        )?;
    }
    writeln!(out, "{} case(s)", items.len())
}
