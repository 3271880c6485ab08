//! `tierdesk prm describe|check|decisions`: what the connected PRM has, whether the
//! configured mapping fits it, and the decisions left for its own screen.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context as _;

use super::Context;
use crate::prm::impartner as imp;
use crate::prm::{Flavor, Res};
use crate::sync::adapter::{connect_configured, AnyPrm, Prm, Walk};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub cmd: Cmd,
    /// PRM base URL (default: `prm.url` in config.toml).
    #[arg(long, value_name = "URL", global = true)]
    pub prm: Option<String>,
    /// PRM flavour (default: `prm.flavor` in config.toml).
    #[arg(long, value_enum, global = true)]
    pub flavor: Option<Flavor>,
    /// Impartner tenant id (default: `prm.tenant` in config.toml).
    #[arg(long, global = true)]
    pub tenant: Option<String>,
}

#[derive(Debug, clap::Subcommand)]
pub enum Cmd {
    /// Impartner: list the tenant's objects (`_describe`), or one object's fields.
    Describe {
        /// The object to describe (e.g. Sale, Commission__co).
        object: Option<String>,
        /// Print the PRM's answer as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Which mapped objects and fields the PRM lacks ([prm.mapping] in config.toml).
    /// Exit 1 when something is missing.
    Check,
    /// Decisions tierdesk cannot write through the API (PartnerStack holds, declines and
    /// approvals), to apply in the PRM's own screen; each stays listed until a pull shows
    /// the reward's new status.
    Decisions {
        /// table | csv
        #[arg(long, default_value = "table")]
        format: String,
        /// Write to this file instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<std::path::PathBuf>,
    },
}

fn connect(ctx: &Context, args: &Args) -> anyhow::Result<(AnyPrm, crate::config::PrmConfig)> {
    let (cfg, _) = super::sync::target(
        ctx,
        args.prm.as_deref(),
        args.flavor,
        args.tenant.as_deref(),
    )?;
    let prm = connect_configured(&cfg).map_err(|e| anyhow::anyhow!(e))?;
    Ok((prm, cfg))
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    match &args.cmd {
        Cmd::Describe { object, json } => describe(ctx, &args, object.as_deref(), *json),
        Cmd::Check => check(ctx, &args),
        Cmd::Decisions { format, out } => decisions(ctx, format, out.as_deref()),
    }
}

fn describe(
    ctx: &Context,
    args: &Args,
    object: Option<&str>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let (prm, _) = connect(ctx, args)?;
    let AnyPrm::Impartner(imp_prm) = &prm else {
        println!(
            "PartnerStack has no describe call: its Vendor API v2 resources are fixed \
             (partnerships, customers, deals, transactions, rewards) and need no mapping."
        );
        return Ok(ExitCode::SUCCESS);
    };
    let rt = runtime()?;
    let data = rt
        .block_on(imp_prm.describe(object))
        .map_err(|e| anyhow::anyhow!("describe {}: {e}", object.unwrap_or("the tenant")))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&data)?);
        return Ok(ExitCode::SUCCESS);
    }
    let (what, names) = match object {
        Some(o) => (format!("fields of {o}"), imp::describe_fields(&data)),
        None => ("objects".to_string(), imp::describe_objects(&data)),
    };
    println!("{} {what}:", names.len());
    for n in names {
        println!("  {}", crate::text::sanitize(&n));
    }
    Ok(ExitCode::SUCCESS)
}

/// One line of `prm check`: an object of the mapping and what the tenant lacks of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckLine {
    pub object: String,
    /// None: the tenant has no such object (or it could not be described).
    pub missing_fields: Option<Vec<String>>,
    pub error: Option<String>,
}

/// Compares the mapping with the tenant's `_describe` answers.
async fn check_impartner(p: &crate::sync::adapter::Impartner) -> Result<Vec<CheckLine>, String> {
    let mapping = p.mapping.clone();
    let mut out = Vec::new();
    for (object, fields) in mapping.required() {
        match p.describe(Some(&object)).await {
            Ok(data) => {
                let have = imp::describe_fields(&data);
                let missing: Vec<String> = fields
                    .iter()
                    .filter(|f| !have.iter().any(|h| h.eq_ignore_ascii_case(f)))
                    .cloned()
                    .collect();
                out.push(CheckLine {
                    object,
                    missing_fields: Some(missing),
                    error: None,
                });
            }
            // Unreachable or refused as a whole: not a verdict on the mapping.
            Err(e @ crate::sync::PrmError::Transient { .. }) => {
                return Err(format!("cannot check the mapping: {e}"))
            }
            Err(e) => out.push(CheckLine {
                object,
                missing_fields: None,
                error: Some(e.to_string()),
            }),
        }
    }
    Ok(out)
}

fn check(ctx: &Context, args: &Args) -> anyhow::Result<ExitCode> {
    let (prm, cfg) = connect(ctx, args)?;
    let rt = runtime()?;
    match &prm {
        AnyPrm::Impartner(p) => {
            let lines = rt
                .block_on(check_impartner(p))
                .map_err(|e| anyhow::anyhow!(e))?;
            let mut bad = 0;
            for l in &lines {
                let name = crate::text::sanitize(&l.object);
                match (&l.missing_fields, &l.error) {
                    (Some(m), _) if m.is_empty() => {
                        println!("ok       {name}: every mapped field is there")
                    }
                    (Some(m), _) => {
                        bad += 1;
                        println!(
                            "missing  {name}: {} (set the tenant's names in [prm.mapping] in config.toml)",
                            m.join(", ")
                        );
                    }
                    (None, e) => {
                        bad += 1;
                        println!(
                            "warning  {name}: the tenant has no such object ({}); what it maps is not synced, everything else is",
                            e.as_deref().unwrap_or("not described")
                        );
                    }
                }
            }
            if bad > 0 {
                println!("{} of {} mapped objects need attention", bad, lines.len());
                return Ok(ExitCode::FAILURE);
            }
            println!("the mapping fits the tenant");
            Ok(ExitCode::SUCCESS)
        }
        AnyPrm::Partnerstack(p) => {
            // Nothing to map: check the credential reaches every resource tierdesk reads.
            let mut bad = 0;
            for res in [
                Res::Partners,
                Res::Customers,
                Res::Deals,
                Res::Transactions,
                Res::Rewards,
            ] {
                match rt.block_on(p.list(res, &Walk::default(), 1)) {
                    Ok(_) => println!("ok       {}", res.ps_name()),
                    Err(e) => {
                        bad += 1;
                        println!("error    {}: {e}", res.ps_name());
                    }
                }
            }
            if cfg.roles.is_empty() {
                println!(
                    "note     no [prm.roles] in config.toml: every reward is a seller commission \
                     (a negative reward on a refund is a clawback)"
                );
            } else {
                for (k, r) in &cfg.roles {
                    println!("role     offer {} pays {r}", crate::text::sanitize(k));
                }
            }
            Ok(if bad > 0 {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
    }
}

fn decisions(
    ctx: &Context,
    format: &str,
    out: Option<&std::path::Path>,
) -> anyhow::Result<ExitCode> {
    if format != "csv" && format != "table" {
        anyhow::bail!("--format `{format}`: expected table or csv");
    }
    let store = ctx.open_store()?;
    let list = crate::workflow::manual_decisions(&store)?;
    let mut buf: Vec<u8> = Vec::new();
    if format == "csv" {
        let mut w = csv::Writer::from_writer(&mut buf);
        w.write_record([
            "decision_id",
            "transaction_id",
            "partner_id",
            "reward_keys",
            "action",
            "amount",
            "currency",
            "reason",
            "proposed_by",
            "signed_off_by",
            "decided_at",
            "status",
            "instruction",
        ])?;
        for d in &list {
            let c = store.push_context(&d.transaction_id)?;
            w.write_record([
                d.decision_id.as_str(),
                &d.transaction_id,
                c.partner_id.as_deref().unwrap_or(""),
                &c.commission_ids.join(" "),
                &d.write,
                &d.amount.map(|a| a.to_string()).unwrap_or_default(),
                &d.currency,
                &d.reason,
                d.proposer.as_deref().unwrap_or(""),
                d.signed_off_by.as_deref().unwrap_or(""),
                &d.decided_at,
                "to apply in the PRM",
                &d.note,
            ])?;
        }
        w.flush()?;
    } else {
        use crate::text::sanitize;
        if list.is_empty() {
            writeln!(buf, "nothing waits to be applied in the PRM")?;
        }
        for d in &list {
            writeln!(
                buf,
                "{}  {:<8} {}{}  {}  to apply in the PRM: {}",
                sanitize(&d.transaction_id),
                d.write,
                d.amount
                    .map(|a| format!("{} ", crate::money::format_money(a, &d.currency)))
                    .unwrap_or_default(),
                sanitize(&d.reason),
                d.decision_id,
                sanitize(&d.note)
            )?;
        }
    }
    match out {
        Some(p) => {
            std::fs::write(p, &buf).with_context(|| format!("writing {}", p.display()))?;
            eprintln!("wrote {} decisions to {}", list.len(), p.display());
        }
        None => std::io::stdout().write_all(&buf)?,
    }
    Ok(ExitCode::SUCCESS)
}
