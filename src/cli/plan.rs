//! `tierdesk plan draft | apply | whatif | report | versions`: the plan's scoped rules.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{Context, Format};
use crate::config::Role;
use crate::money::format_money;
use crate::plan::draft::{self, Vocabulary};
use crate::plan::{report, v2, whatif};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: PlanCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum PlanCommand {
    /// Turn a sentence into a scoped rule (or refuse, naming the part it cannot read).
    Draft(DraftArgs),
    /// Add a drafted rule to the local plan as a new plan version (a manager; audited).
    Apply(ApplyArgs),
    /// Recalculate under a changed plan and print the difference per partner.
    Whatif(WhatifArgs),
    /// Rule effectiveness: triggers, partners reached, cost, findings.
    Report(ReportArgs),
    /// List the local plan versions.
    Versions,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DraftFormat {
    Text,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct DraftArgs {
    /// The rule in plain English, e.g. "accelerator of 1.5x for Q4 in EMEA above 110% of quota".
    #[arg(value_name = "SENTENCE")]
    pub sentence: String,
    #[arg(long, value_enum, default_value_t = DraftFormat::Text)]
    pub format: DraftFormat,
    /// Never ask the configured language model (`[assistant]`), even for phrasing the
    /// parser cannot read.
    #[arg(long)]
    pub offline: bool,
}

#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    /// A draft file (`plan draft --format json` output) or a rule as JSON.
    #[arg(value_name = "DRAFT")]
    pub draft: PathBuf,
    /// Why the rule is added (recorded in the audit trail).
    #[arg(long)]
    pub reason: String,
}

#[derive(Debug, clap::Args)]
pub struct WhatifArgs {
    /// A rule file to add (replacing a rule of the same id).
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "set",
        required_unless_present = "set"
    )]
    pub rule: Option<PathBuf>,
    /// A plan field to change: override_rate=0.015, per_transaction_cap=..., seller_rates.gold=...
    #[arg(long, value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Only this period (`YYYY-Qn`); default every period.
    #[arg(long, value_name = "Q")]
    pub period: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// A data-set folder; without it, the cache.
    #[arg(long, value_name = "DIR")]
    pub dataset: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Only the last N periods; default every period.
    #[arg(long, value_name = "N")]
    pub periods: Option<usize>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// A data-set folder; without it, the cache (with its flags and disputes).
    #[arg(long, value_name = "DIR")]
    pub dataset: Option<PathBuf>,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        PlanCommand::Draft(a) => run_draft(ctx, a),
        PlanCommand::Apply(a) => run_apply(ctx, a),
        PlanCommand::Whatif(a) => run_whatif(ctx, a),
        PlanCommand::Report(a) => run_report(ctx, a),
        PlanCommand::Versions => run_versions(ctx),
    }
}

/// The program's names when a cache is open, else defaults.
/// The program's names, and its partners' ids and names (which are never sent to a model).
fn vocabulary(ctx: &Context) -> (Vocabulary, Vec<String>) {
    if !ctx.paths.db.exists() {
        return (Vocabulary::defaults(), Vec::new());
    }
    match ctx.open_store().and_then(|s| Ok(s.load_dataset()?)) {
        Ok(ds) => {
            let partners = ds
                .partners
                .iter()
                .flat_map(|p| [p.partner_id.clone(), p.name.clone()])
                .collect();
            (Vocabulary::from_dataset(&ds), partners)
        }
        Err(_) => (Vocabulary::defaults(), Vec::new()),
    }
}

fn run_draft(ctx: &Context, a: DraftArgs) -> anyhow::Result<ExitCode> {
    let (vocab, partners) = vocabulary(ctx);
    let model = match (&ctx.config.assistant, a.offline) {
        (Some(cfg), false) => Some(crate::answer::model::ModelDrafter::new(
            cfg.clone(),
            partners,
        )),
        _ => None,
    };
    let mut out = std::io::stdout().lock();
    let model_ref = model
        .as_ref()
        .map(|m| m as &dyn crate::plan::draft::DraftModel);
    match draft::draft_with(&a.sentence, &vocab, model_ref) {
        Ok(d) => {
            match a.format {
                DraftFormat::Json => {
                    let v = json!({"rule": d.rule, "paraphrase": d.paraphrase, "source": d.source});
                    writeln!(out, "{v}")?;
                }
                DraftFormat::Text => {
                    if d.source == "model" {
                        writeln!(
                            out,
                            "(drafted by the language model and checked: schema, names, numbers)"
                        )?;
                    }
                    writeln!(out, "{}", d.paraphrase)?;
                    writeln!(out, "{}", serde_json::to_string_pretty(&d.rule)?)?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(r) => {
            match a.format {
                DraftFormat::Json => {
                    let v = json!({"refused": r.refused, "unreadable": r.unreadable});
                    writeln!(out, "{v}")?;
                }
                DraftFormat::Text => {
                    writeln!(out, "Refused: {}.", r.refused)?;
                    writeln!(out, "Could not read: {}", r.unreadable)?;
                }
            }
            Ok(ExitCode::from(2))
        }
    }
}

fn audit_hash(row: &crate::store::workflow::AuditRow) -> String {
    hex::encode(Sha256::digest(crate::workflow::canonical(row).as_bytes()))
}

fn run_apply(ctx: &Context, a: ApplyArgs) -> anyhow::Result<ExitCode> {
    if ctx.role != Role::Manager {
        bail!("tierdesk plan apply: only a manager may change the plan (you act as {}; pass --role manager)", ctx.role.as_str());
    }
    let reason = a.reason.trim();
    if reason.is_empty() {
        bail!("tierdesk plan apply: --reason must say why the rule is added");
    }
    let text = std::fs::read_to_string(&a.draft)
        .with_context(|| format!("reading the draft {}", a.draft.display()))?;
    let rule = v2::parse_rule(&text)
        .map_err(|e| anyhow::anyhow!("{}: not a plan v2 rule: {e}", a.draft.display()))?;
    let mut store = ctx.open_existing_store()?;
    let ds = store.load_dataset()?;
    let vocab = Vocabulary::from_dataset(&ds);
    draft::accept_model_rule(&serde_json::to_string(&rule)?, &vocab)
        .map_err(|r| anyhow::anyhow!("{}: {} ({})", a.draft.display(), r.refused, r.unreadable))?;
    let replaced = ds.plan.rules.iter().any(|r| r.rule_id == rule.rule_id);
    let plan = whatif::apply_change(&ds.plan, &whatif::Change::Rule(rule.clone()))?;
    let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let after = json!({"rule": rule, "paraphrase": draft::paraphrase(&rule), "replaced": replaced});
    let version = store.apply_plan_version(
        crate::store::plan_versions::NewPlanVersion {
            plan: &plan,
            reason,
            actor: &ctx.user,
            role: ctx.role.as_str(),
            at: &at,
            action: "plan_apply",
            after: after.to_string(),
        },
        &audit_hash,
    )?;
    println!(
        "plan {} version {version}: {} rule {} ({}). Local only: the PRM's engine is not changed.",
        plan.plan_id,
        if replaced { "replaced" } else { "added" },
        rule.rule_id,
        draft::paraphrase(&rule)
    );
    Ok(ExitCode::SUCCESS)
}

fn run_versions(ctx: &Context) -> anyhow::Result<ExitCode> {
    let store = ctx.open_existing_store()?;
    let versions = store.plan_versions()?;
    if versions.is_empty() {
        println!("No local plan versions: the plan is as imported.");
    }
    for v in versions {
        println!(
            "v{} {} {} by {}: {} ({} rules)",
            v.version,
            v.created_at,
            v.plan_id,
            v.actor,
            v.reason,
            v.plan.rules.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn run_whatif(ctx: &Context, a: WhatifArgs) -> anyhow::Result<ExitCode> {
    let ds = super::commissions::load(ctx, a.dataset.as_deref())?;
    let mut plan = ds.plan.clone();
    if let Some(path) = &a.rule {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the rule {}", path.display()))?;
        let change = whatif::parse_rule_change(&text)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        plan = whatif::apply_change(&plan, &change)?;
    }
    for s in &a.set {
        plan = whatif::apply_change(&plan, &whatif::parse_set(s)?)?;
    }
    let w = whatif::whatif(&ds, &plan, a.period.as_deref());
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let cur = &ds.program.currency;
    match a.format {
        Format::Jsonl => {
            for p in &w.partners {
                let v = json!({"partner_id": p.partner_id, "before": dec(p.before),
                    "after": dec(p.after), "difference": dec(p.difference)});
                writeln!(out, "{v}")?;
            }
            let t = &w.total;
            let v = json!({"total": {"before": dec(t.before), "after": dec(t.after), "difference": dec(t.difference)}});
            writeln!(out, "{v}")?;
        }
        Format::Table => whatif_table(&mut out, &w, cur)?,
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn dec(d: rust_decimal::Decimal) -> String {
    format!("{:.2}", d)
}

fn whatif_table(out: &mut impl Write, w: &whatif::WhatIf, cur: &str) -> anyhow::Result<()> {
    let m = |d| format_money(d, cur);
    let period = w.period.as_deref().unwrap_or("every period");
    writeln!(out, "What-if over {period}")?;
    writeln!(
        out,
        "Total cost: {} -> {} (difference {})",
        m(w.total.before),
        m(w.total.after),
        m(w.total.difference)
    )?;
    writeln!(
        out,
        "Accelerator reach: {} -> {} partners",
        w.accelerator_reach.0, w.accelerator_reach.1
    )?;
    for (title, groups) in [
        ("role", &w.by_role),
        ("tier", &w.by_tier),
        ("rule", &w.by_rule),
    ] {
        writeln!(out, "\nBy {title}:")?;
        for (k, t) in groups.iter().filter(|(_, t)| !t.difference.is_zero()) {
            writeln!(
                out,
                "  {k:<32} {:>16} -> {:>16}  {:>14}",
                m(t.before),
                m(t.after),
                m(t.difference)
            )?;
        }
    }
    writeln!(out, "\nPartners whose payout moves most:")?;
    let top = w.top_movers(10);
    if top.is_empty() {
        writeln!(out, "  none: no partner's payout changes")?;
    }
    for p in top {
        writeln!(
            out,
            "  {:<16} {:>16} -> {:>16}  {:>14}",
            p.partner_id,
            m(p.before),
            m(p.after),
            m(p.difference)
        )?;
    }
    Ok(())
}

fn run_report(ctx: &Context, a: ReportArgs) -> anyhow::Result<ExitCode> {
    let ds = super::commissions::load(ctx, a.dataset.as_deref())?;
    let (flagged, disputed) = if a.dataset.is_none() {
        ctx.open_existing_store()?.flagged_and_disputed()?
    } else {
        (BTreeSet::new(), BTreeSet::new())
    };
    let r = report::report(&ds, a.periods, &flagged, &disputed);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let cur = &ds.program.currency;
    match a.format {
        Format::Jsonl => {
            for s in &r.rules {
                let v = json!({"rule": s.rule, "kind": s.kind, "triggered": s.triggered,
                    "partners": s.partners, "paid": dec(s.paid), "share": format!("{:.4}", s.share),
                    "flags": s.flags, "disputes": s.disputes});
                writeln!(out, "{v}")?;
            }
            for f in &r.findings {
                writeln!(out, "{}", json!({ "finding": f }))?;
            }
        }
        Format::Table => {
            writeln!(
                out,
                "Rules over {} ({} sales, payout {})",
                r.periods.join(", "),
                r.sales,
                format_money(r.total, cur)
            )?;
            writeln!(
                out,
                "{:<34} {:<18} {:>9} {:>8} {:>16} {:>7} {:>6} {:>8}",
                "rule", "kind", "triggered", "partners", "paid", "share", "flags", "disputes"
            )?;
            for s in &r.rules {
                writeln!(
                    out,
                    "{:<34} {:<18} {:>9} {:>8} {:>16} {:>6.1}% {:>6} {:>8}",
                    s.rule,
                    s.kind,
                    s.triggered,
                    s.partners,
                    format_money(s.paid, cur),
                    s.share * rust_decimal::Decimal::ONE_HUNDRED,
                    s.flags,
                    s.disputes
                )?;
            }
            writeln!(out, "\nFindings:")?;
            if r.findings.is_empty() {
                writeln!(out, "  none")?;
            }
            for f in &r.findings {
                writeln!(out, "  - {f}")?;
            }
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
