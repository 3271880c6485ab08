//! `tierdesk policy …`: the routing policy of governed automation (show, check,
//! simulate, run), rollout phases behind the precision gate, and rollback.

use std::process::ExitCode;

use chrono::{SecondsFormat, Utc};
use clap::Subcommand;

use super::{Context, Format};
use crate::policy::apply::{self, PolicyError};
use crate::policy::check::{self, Severity};
use crate::policy::{Phase, PolicyConfig};
use crate::workflow::{self, Actor};

/// Routing policy, rollout phases, precision and rollback of automated decisions.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  tierdesk policy show\n  tierdesk policy check\n  \
    tierdesk policy simulate --phase review\n  tierdesk --role manager policy phase set review --reason \"pilot EMEA\"\n  \
    tierdesk policy precision\n  tierdesk --role manager policy rollback --since 2026-10-01T00:00:00Z --kind duplicate"
)]
pub struct Args {
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Print the rules in force (config.toml `[policy]`, or the default policy), the phases and the gate.
    Show,
    /// Validate the rules: unknown kinds, rules that never match or are never reached, overlaps.
    Check,
    /// What each rule would do on the current review window: counts, held, adjusted, at stake.
    Simulate {
        /// Simulate this phase for every tier (default: the phases in force).
        #[arg(long, value_parser = parse_phase)]
        phase: Option<Phase>,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Route every new or changed flag now (score and sync do this after scoring) and send alerts.
    Run,
    /// Commissions the policy holds in the pending-review bucket, by partner, with the
    /// sentence to tell the partner (for the partner manager where the PRM cannot).
    Held {
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Measured precision per kind: confirmed / decided by people, with the counts.
    Precision {
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Rollout phases.
    Phase {
        #[command(subcommand)]
        command: PhaseCmd,
    },
    /// Compensating decisions for the policy's automated adjustments since TIME.
    Rollback {
        /// RFC 3339 time (or a date): adjustments made at or after it.
        #[arg(long)]
        since: String,
        /// Only adjustments of flags of this kind.
        #[arg(long)]
        kind: Option<String>,
        #[arg(long, default_value = "")]
        reason: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum PhaseCmd {
    /// Set the phase (observe, review, assist) of the program or of one tier (a manager).
    Set {
        #[arg(value_parser = parse_phase)]
        phase: Phase,
        /// Only this partner tier.
        #[arg(long)]
        tier: Option<String>,
        #[arg(long)]
        reason: String,
    },
    /// The phases in force.
    Show,
}

fn parse_phase(s: &str) -> Result<Phase, String> {
    Phase::parse(s).ok_or_else(|| format!("unknown phase `{s}`: observe, review or assist"))
}

/// One commission the policy holds, as `policy held` lists it.
#[derive(Debug, serde::Serialize)]
struct Held {
    partner_id: String,
    partner_name: String,
    transaction_id: String,
    at_stake: String,
    currency: String,
    rule: String,
    kinds: Vec<String>,
    held_since: String,
    /// What to tell the partner (no tax ids or bank details; the reason as the detector
    /// gave it).
    message: String,
}

/// `policy held`: the holds still waiting for a person, by partner then transaction.
fn held(ctx: &Context, format: Format) -> anyhow::Result<ExitCode> {
    let store = ctx.open_existing_store()?;
    let facts: std::collections::HashMap<String, crate::store::policy::FlagFacts> = store
        .policy_flag_facts()?
        .into_iter()
        .map(|f| (f.transaction_id.clone(), f))
        .collect();
    let mut rows: Vec<Held> = store
        .policy_routes()?
        .into_iter()
        .filter(|r| r.effect == "held")
        .filter_map(|r| {
            let f = facts.get(&r.transaction_id)?;
            // Held until a person decides: a decided case is no longer the policy's hold.
            if !crate::workflow::awaits_decision(&f.status) {
                return None;
            }
            let at_stake = crate::policy::minor_to_decimal(f.at_stake_minor, &f.currency);
            let money = crate::money::format_money(at_stake, &f.currency);
            let why = f
                .top_reason
                .clone()
                .unwrap_or_else(|| "it needs a review".into());
            Some(Held {
                partner_id: f.partner_id.clone(),
                partner_name: crate::text::sanitize(&f.partner_name).into_owned(),
                transaction_id: r.transaction_id.clone(),
                at_stake: at_stake.to_string(),
                currency: f.currency.clone(),
                rule: r.rule.clone(),
                kinds: r.kinds.clone(),
                held_since: r.routed_at.clone(),
                message: crate::text::sanitize(&format!(
                    "The commission of {money} on {} is held for review while we check it: {why}",
                    r.transaction_id
                ))
                .into_owned(),
            })
        })
        .collect();
    rows.sort_by(|a, b| {
        (a.partner_id.as_str(), a.transaction_id.as_str())
            .cmp(&(b.partner_id.as_str(), b.transaction_id.as_str()))
    });
    let mut out = crate::text::clean_stdout();
    use std::io::Write as _;
    match format {
        Format::Jsonl => {
            for r in &rows {
                serde_json::to_writer(&mut out, r)?;
                writeln!(out)?;
            }
        }
        Format::Table => {
            writeln!(
                out,
                "{:<10} {:<24} {:<12} {:>14} {:<12} TELL THE PARTNER",
                "PARTNER", "NAME", "TRANSACTION", "HELD", "RULE"
            )?;
            for r in &rows {
                writeln!(
                    out,
                    "{:<10} {:<24} {:<12} {:>14} {:<12} {}",
                    r.partner_id,
                    crate::text::fit(&r.partner_name, 24),
                    r.transaction_id,
                    crate::money::format_money(r.at_stake.parse().unwrap_or_default(), &r.currency),
                    r.rule,
                    r.message
                )?;
            }
            writeln!(
                out,
                "{} held by the policy",
                crate::plural::n(rows.len() as i128, "commission")
            )?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let cfg = &ctx.config.policy;
    match args.command {
        Cmd::Show => show(ctx, cfg),
        Cmd::Check => run_check(ctx, cfg),
        Cmd::Simulate { phase, format } => simulate(ctx, cfg, phase, format),
        Cmd::Run => {
            let mut store = ctx.open_existing_store()?;
            after_scoring(&mut store, ctx, false)?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Held { format } => held(ctx, format),
        Cmd::Precision { format } => precision(ctx, cfg, format),
        Cmd::Phase { command } => match command {
            PhaseCmd::Set {
                phase,
                tier,
                reason,
            } => {
                let mut store = ctx.open_existing_store()?;
                let actor = Actor::new(ctx.user.clone(), ctx.role);
                match apply::set_phase(
                    &mut store,
                    cfg,
                    &actor,
                    phase,
                    tier.as_deref(),
                    &reason,
                    &now(),
                ) {
                    Ok(c) => {
                        println!(
                            "phase of {}: {} → {} (audited)",
                            scope_name(&c.scope),
                            c.from,
                            c.to
                        );
                        Ok(ExitCode::SUCCESS)
                    }
                    Err(e @ PolicyError::BelowPrecision(_)) => {
                        eprintln!("{e}\n(the refusal is in the audit trail; `tierdesk policy precision` shows the counts)");
                        Ok(ExitCode::from(1))
                    }
                    Err(e) => Err(e.into()),
                }
            }
            PhaseCmd::Show => {
                let store = ctx.open_existing_store()?;
                print_phases(&store)?;
                Ok(ExitCode::SUCCESS)
            }
        },
        Cmd::Rollback {
            since,
            kind,
            reason,
        } => {
            let since = normalise_since(&since)?;
            let mut store = ctx.open_existing_store()?;
            let actor = Actor::new(ctx.user.clone(), ctx.role);
            let wf = workflow::Policy::from_config(&ctx.config);
            let items = apply::rollback(
                &mut store,
                &wf,
                &actor,
                &since,
                kind.as_deref(),
                &reason,
                &now(),
            )?;
            let done = items.iter().filter(|i| i.outcome == "rolled_back").count();
            for i in &items {
                println!("{}  {}  {}", i.transaction_id, i.decision_id, i.outcome);
            }
            println!(
                "rolled back {done} automated adjustment{} of {} since {since} (compensating decisions queued for the PRM)",
                if done == 1 { "" } else { "s" },
                items.len()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `--since` as RFC 3339 UTC (a plain date means its start).
fn normalise_since(s: &str) -> anyhow::Result<String> {
    let t = s.trim();
    if let Ok(d) = chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return Ok(format!("{d}T00:00:00Z"));
    }
    let dt = chrono::DateTime::parse_from_rfc3339(t).map_err(|e| {
        anyhow::anyhow!("--since {t}: not an RFC 3339 time or YYYY-MM-DD date ({e})")
    })?;
    Ok(dt
        .with_timezone(&Utc)
        .to_rfc3339_opts(SecondsFormat::Secs, true))
}

fn scope_name(scope: &str) -> String {
    if scope == "*" {
        "the program".into()
    } else {
        format!("tier {scope}")
    }
}

fn print_phases(store: &crate::store::Store) -> anyhow::Result<()> {
    let phases = store.policy_phases()?;
    if !phases.iter().any(|p| p.scope == "*") {
        println!("the program: observe (the default; nothing changed yet)");
    }
    for p in phases {
        println!(
            "{}: {} (set by {} at {}: {})",
            scope_name(&p.scope),
            p.phase,
            crate::alerts::clean(&p.changed_by),
            p.changed_at,
            crate::alerts::clean(&p.reason)
        );
    }
    Ok(())
}

fn show(ctx: &Context, cfg: &PolicyConfig) -> anyhow::Result<ExitCode> {
    let rules = cfg.effective_rules();
    println!(
        "Routing policy ({}), first match wins:",
        if cfg.rules.is_empty() {
            "the default policy: no rules in [policy]".to_string()
        } else {
            format!("{}", ctx.paths.config_file.display())
        }
    );
    for (i, r) in rules.iter().enumerate() {
        println!("  {:>2}. {:<24} → {}", i + 1, r.label(i), r.action);
        let mut conds = Vec::new();
        if !r.kinds.is_empty() {
            conds.push(format!("kind in {}", r.kinds.join(", ")));
        }
        let range = |what: &str, lo: Option<String>, hi: Option<String>| match (lo, hi) {
            (Some(l), Some(h)) => Some(format!("{l} ≤ {what} < {h}")),
            (Some(l), None) => Some(format!("{what} ≥ {l}")),
            (None, Some(h)) => Some(format!("{what} < {h}")),
            (None, None) => None,
        };
        conds.extend(range(
            "confidence",
            r.min_confidence.map(|x| x.to_string()),
            r.max_confidence.map(|x| x.to_string()),
        ));
        conds.extend(range(
            "score",
            r.min_score.map(|x| x.to_string()),
            r.max_score.map(|x| x.to_string()),
        ));
        conds.extend(range(
            "at stake",
            r.min_at_stake.map(|x| x.to_string()),
            r.max_at_stake.map(|x| x.to_string()),
        ));
        if !r.tiers.is_empty() {
            conds.push(format!("tier in {}", r.tiers.join(", ")));
        }
        if let Some(h) = r.high_value {
            conds.push(if h {
                "high-value partners".into()
            } else {
                "not high-value partners".into()
            });
        }
        println!(
            "      when {}",
            if conds.is_empty() {
                "always".to_string()
            } else {
                conds.join(" and ")
            }
        );
    }
    println!(
        "pre-approved for auto_adjust: {}",
        if cfg.pre_approved.is_empty() {
            "none".to_string()
        } else {
            cfg.pre_approved.join(", ")
        }
    );
    println!(
        "precision gate for assist: ≥ {:.2} over ≥ {} decisions; QA sample {:.1}% of validated high-value transactions",
        cfg.min_precision,
        cfg.min_decisions,
        cfg.qa_sample * 100.0
    );
    if ctx.paths.db.exists() {
        let store = ctx.open_existing_store()?;
        print_phases(&store)?;
        let mut counts: std::collections::BTreeMap<String, i64> = Default::default();
        for (kinds, state, n) in store.processing_groups()? {
            let s = crate::policy::processing_status(kinds.as_deref(), state.as_deref());
            *counts.entry(s.to_string()).or_default() += n;
        }
        if !counts.is_empty() {
            println!(
                "processing status: {}",
                counts
                    .iter()
                    .map(|(s, n)| format!("{s} {n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn run_check(ctx: &Context, cfg: &PolicyConfig) -> anyhow::Result<ExitCode> {
    let file = ctx.paths.config_file.display().to_string();
    let text = std::fs::read_to_string(&ctx.paths.config_file).unwrap_or_default();
    let findings = check::check(cfg, &text);
    let errors = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    for f in &findings {
        let at = match f.line {
            Some(l) => format!("{file}:{l}: "),
            None => String::new(),
        };
        let sev = match f.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let rule = f
            .rule
            .as_ref()
            .map(|r| format!("rule `{r}`: "))
            .unwrap_or_default();
        println!("{at}{sev}: {rule}{}", f.message);
    }
    let warnings = findings.len() - errors;
    println!(
        "policy check: {} rule{}, {errors} error{}, {warnings} warning{}",
        cfg.effective_rules().len(),
        if cfg.effective_rules().len() == 1 {
            ""
        } else {
            "s"
        },
        if errors == 1 { "" } else { "s" },
        if warnings == 1 { "" } else { "s" }
    );
    Ok(if errors > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn simulate(
    ctx: &Context,
    cfg: &PolicyConfig,
    phase: Option<Phase>,
    format: Format,
) -> anyhow::Result<ExitCode> {
    let store = ctx.open_existing_store()?;
    let (rows, flags) = apply::simulate_current(&store, cfg, phase)?;
    match format {
        Format::Jsonl => {
            for r in &rows {
                println!("{}", serde_json::to_string(r)?);
            }
        }
        Format::Table => {
            println!(
                "{:<24} {:<22} {:<11} {:>6} {:>6} {:>8} {:>6} {:>14} {:>14}",
                "rule",
                "kind",
                "action",
                "count",
                "held",
                "adjusted",
                "tasks",
                "held amount",
                "at stake"
            );
            for r in &rows {
                println!(
                    "{:<24} {:<22} {:<11} {:>6} {:>6} {:>8} {:>6} {:>14} {:>14}",
                    trunc(&r.rule, 24),
                    trunc(&r.kind, 22),
                    r.action,
                    r.count,
                    r.held,
                    r.adjusted,
                    r.tasks,
                    r.held_amount,
                    r.at_stake
                );
            }
            println!(
                "{} flags in the review window, phase {}",
                flags,
                phase
                    .map(|p| p.as_str().to_string())
                    .unwrap_or_else(|| "as in force".into())
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn trunc(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

fn precision(ctx: &Context, cfg: &PolicyConfig, format: Format) -> anyhow::Result<ExitCode> {
    let store = ctx.open_existing_store()?;
    let p = apply::measured(&store, cfg)?;
    match format {
        Format::Jsonl => {
            for k in &p {
                println!("{}", serde_json::to_string(k)?);
            }
        }
        Format::Table => {
            println!(
                "{:<22} {:>9} {:>9} {:>7} {:>9}  gate (≥ {:.2} over ≥ {})",
                "kind",
                "confirmed",
                "dismissed",
                "decided",
                "precision",
                cfg.min_precision,
                cfg.min_decisions
            );
            for k in &p {
                println!(
                    "{:<22} {:>9} {:>9} {:>7} {:>9}  {}",
                    k.kind,
                    k.confirmed,
                    k.dismissed,
                    k.decided,
                    k.precision
                        .map(|x| format!("{x:.3}"))
                        .unwrap_or_else(|| "-".into()),
                    if k.passes { "passes" } else { "below" }
                );
            }
            if p.is_empty() {
                println!("no decisions by people yet");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Routes new flags and delivers due alerts within the configured budget; prints one line
/// to stderr. Called by `score` and `sync` after scoring; an unreachable receiver never
/// fails the command.
pub fn after_scoring(
    store: &mut crate::store::Store,
    ctx: &Context,
    quiet: bool,
) -> anyhow::Result<()> {
    let wf = workflow::Policy::from_config(&ctx.config);
    let rep = apply::run(store, &ctx.config.policy, &ctx.config.alerts, &wf, &now())?;
    let budget = std::time::Duration::from_secs(ctx.config.alerts.budget_secs);
    let sent = crate::alerts::deliver::deliver(store, &ctx.config.alerts, budget)?;
    if !quiet || rep.routed > 0 || sent.sent > 0 || !sent.errors.is_empty() {
        eprintln!(
            "policy: routed {} new flag{} (queue {}, task {}, hold {}, alert only {}, adjusted {}), QA sample {}; alerts sent {}, waiting {}{}",
            rep.routed,
            if rep.routed == 1 { "" } else { "s" },
            rep.queued,
            rep.tasks,
            rep.held,
            rep.alerted,
            rep.adjusted,
            rep.qa_sampled,
            sent.sent,
            sent.pending,
            sent.errors
                .first()
                .map(|e| format!(" (last error: {e})"))
                .unwrap_or_default()
        );
    }
    Ok(())
}
