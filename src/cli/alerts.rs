//! `tierdesk alerts …`: alert channels (secrets into the OS keyring), the durable alerts
//! outbox, tests and the daily digest.

use std::io::Read;
use std::process::ExitCode;

use chrono::{SecondsFormat, Utc};
use clap::Subcommand;
use secrecy::{ExposeSecret, SecretString};

use super::Context;
use crate::alerts::{self, deliver, Channel, ChannelKind};
use crate::store::policy::NewAlert;

/// Alert channels (Slack, signed webhooks), the alerts outbox and the daily digest.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  echo \"$SLACK_WEBHOOK_URL\" | tierdesk alerts add slack ops\n  \
    echo whsec_… | tierdesk alerts add webhook hooks --url https://example.com/tierdesk\n  \
    tierdesk alerts test ops\n  tierdesk alerts digest\n  tierdesk alerts list"
)]
pub struct Args {
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Add a channel: the Slack webhook URL, or the webhook's whsec_ secret, is read from stdin into the OS keyring.
    Add {
        #[command(subcommand)]
        kind: AddCmd,
    },
    /// Send a test alert on one channel now.
    Test { name: String },
    /// The alerts outbox, newest first.
    List {
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Queue today's digest of the highest-risk new flags on every channel and send it.
    Digest,
    /// Deliver what is waiting in the outbox now.
    Send,
}

#[derive(Debug, Subcommand)]
pub enum AddCmd {
    /// A Slack incoming webhook (its URL, read from stdin, is the secret).
    Slack { name: String },
    /// A generic webhook signed with Standard Webhooks (the whsec_ secret is read from stdin).
    Webhook {
        name: String,
        #[arg(long)]
        url: String,
    },
    /// Tasks in the PRM ([prm] and its login; Impartner's task object from [prm.tasks]);
    /// PartnerStack's API has no task object.
    Prm { name: String },
}

fn now_s() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Cmd::Add { kind } => add(ctx, kind),
        Cmd::Test { name } => test(ctx, &name),
        Cmd::List { limit } => list(ctx, limit),
        Cmd::Digest => digest(ctx),
        Cmd::Send => {
            let store = ctx.open_existing_store()?;
            let budget = std::time::Duration::from_secs(ctx.config.alerts.budget_secs);
            let rep = deliver::deliver(&store, &ctx.config.alerts, budget)?;
            print_report(&rep);
            Ok(if rep.failed > 0 {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
    }
}

fn read_stdin_secret(what: &str) -> anyhow::Result<SecretString> {
    let mut s = String::new();
    std::io::stdin().read_to_string(&mut s)?;
    let t = s.trim();
    if t.is_empty() {
        anyhow::bail!("no {what} on stdin: pipe it in, e.g. `echo … | tierdesk alerts add …`");
    }
    Ok(SecretString::from(t.to_string()))
}

fn valid_name(name: &str) -> anyhow::Result<()> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        anyhow::bail!("channel name `{name}`: use letters, digits, - and _ only");
    }
    Ok(())
}

/// `alerts add prm NAME`: the PRM connection is the channel (no secret of its own).
fn add_prm(ctx: &Context, name: &str) -> anyhow::Result<ExitCode> {
    valid_name(name)?;
    let prm = ctx.config.prm.as_ref().ok_or_else(|| {
        anyhow::anyhow!(
            "a prm channel uses the PRM connection: configure it with `tierdesk login` first"
        )
    })?;
    if prm.flavor != "impartner" {
        anyhow::bail!(
            "{}'s API has no task or case object: add a slack or webhook channel instead",
            prm.flavor
        );
    }
    let ch = Channel {
        name: name.to_string(),
        kind: ChannelKind::Prm,
        url: None,
    };
    write_channel(&ctx.paths.config_file, &ch)?;
    let object = prm.tasks.clone().unwrap_or_default().object;
    println!(
        "alert channel `{name}` (prm) added to {}: alerts become {object} records in {} (the PRM login is used)",
        ctx.paths.config_file.display(),
        prm.url
    );
    Ok(ExitCode::SUCCESS)
}

fn add(ctx: &Context, kind: AddCmd) -> anyhow::Result<ExitCode> {
    let (name, ch, secret) = match kind {
        AddCmd::Prm { name } => return add_prm(ctx, &name),
        AddCmd::Slack { name } => {
            valid_name(&name)?;
            let url = read_stdin_secret("Slack webhook URL")?;
            if !url.expose_secret().starts_with("https://")
                && !url.expose_secret().starts_with("http://")
            {
                anyhow::bail!("the Slack webhook URL read from stdin does not start with https://");
            }
            let ch = Channel {
                name: name.clone(),
                kind: ChannelKind::Slack,
                url: None,
            };
            (name, ch, url)
        }
        AddCmd::Webhook { name, url } => {
            valid_name(&name)?;
            let secret = read_stdin_secret("whsec_ secret")?;
            if !secret.expose_secret().starts_with("whsec_") {
                anyhow::bail!(
                    "the webhook secret read from stdin must start with whsec_ (Standard Webhooks)"
                );
            }
            deliver::sign(secret.expose_secret(), "msg_check", 0, "")
                .map_err(|e| anyhow::anyhow!(e))?;
            let ch = Channel {
                name: name.clone(),
                kind: ChannelKind::Webhook,
                url: Some(url),
            };
            (name, ch, secret)
        }
    };
    let backend = crate::sync::creds::store(
        &alerts::secret_account(&name),
        &secret,
        std::time::Duration::from_secs(10),
    )?;
    write_channel(&ctx.paths.config_file, &ch)?;
    println!(
        "alert channel `{name}` ({}) added to {}; its secret is in the OS keyring ({})",
        ch.kind.as_str(),
        ctx.paths.config_file.display(),
        backend.describe()
    );
    Ok(ExitCode::SUCCESS)
}

/// Adds (or replaces) a channel in config.toml, keeping the file's comments and layout.
pub fn write_channel(path: &std::path::Path, ch: &Channel) -> anyhow::Result<()> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(anyhow::anyhow!("cannot read {}: {e}", path.display())),
    };
    let mut doc: toml_edit::DocumentMut = text
        .parse()
        .map_err(|e| anyhow::anyhow!("config file {}: {e}", path.display()))?;
    let alerts = doc
        .entry("alerts")
        .or_insert_with(|| toml_edit::Item::Table(toml_edit::Table::new()))
        .as_table_mut()
        .ok_or_else(|| anyhow::anyhow!("{}: `alerts` is not a table", path.display()))?;
    let channels = alerts
        .entry("channels")
        .or_insert_with(|| toml_edit::Item::ArrayOfTables(toml_edit::ArrayOfTables::new()))
        .as_array_of_tables_mut()
        .ok_or_else(|| {
            anyhow::anyhow!(
                "{}: `alerts.channels` is not an array of tables",
                path.display()
            )
        })?;
    let mut t = toml_edit::Table::new();
    t["name"] = toml_edit::value(ch.name.clone());
    t["kind"] = toml_edit::value(ch.kind.as_str());
    if let Some(u) = &ch.url {
        t["url"] = toml_edit::value(u.clone());
    }
    let existing = channels
        .iter()
        .position(|c| c.get("name").and_then(|v| v.as_str()) == Some(ch.name.as_str()));
    match existing.and_then(|i| channels.get_mut(i)) {
        Some(slot) => *slot = t,
        None => channels.push(t),
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, doc.to_string())?;
    Ok(())
}

fn test(ctx: &Context, name: &str) -> anyhow::Result<ExitCode> {
    let ch = ctx.config.alerts.channel(name).ok_or_else(|| {
        anyhow::anyhow!(
            "no alert channel `{name}` in [alerts] of {} (add one with `tierdesk alerts add`)",
            ctx.paths.config_file.display()
        )
    })?;
    let store = ctx.open_existing_store()?;
    let now = now_s();
    let id = format!("msg_{}", uuid::Uuid::new_v4().simple());
    let payload = serde_json::json!({"type": "test", "channel": ch.name});
    store.insert_alert(&NewAlert {
        alert_id: &id,
        channel: &ch.name,
        dedupe_key: &format!("{}:test:{id}", ch.name),
        kind: "test",
        transaction_id: None,
        payload: &payload,
        now: &now,
    })?;
    let budget = std::time::Duration::from_secs(ctx.config.alerts.timeout_secs.max(1) + 1);
    let rep = deliver::deliver(&store, &ctx.config.alerts, budget)?;
    let this = store.alerts(1000)?.into_iter().find(|a| a.alert_id == id);
    match this {
        Some(a) if a.status == "sent" => {
            println!("test alert delivered on `{name}`");
            Ok(ExitCode::SUCCESS)
        }
        Some(a) => {
            eprintln!(
                "test alert on `{name}` not delivered: {} (it stays in the outbox; `tierdesk alerts send` retries)",
                a.last_error.unwrap_or_else(|| "no answer yet".into())
            );
            let _ = rep;
            Ok(ExitCode::from(1))
        }
        None => Ok(ExitCode::from(1)),
    }
}

fn list(ctx: &Context, limit: usize) -> anyhow::Result<ExitCode> {
    let store = ctx.open_existing_store()?;
    let rows = store.alerts(limit)?;
    if rows.is_empty() {
        println!("no alerts yet");
    }
    for a in rows {
        println!(
            "{:<9} {:<12} {:<8} attempts {:<2} {}  {}{}",
            a.status,
            a.channel,
            a.kind,
            a.attempts,
            a.created_at,
            alerts::clean(&deliver::summary(&a)),
            a.last_error
                .map(|e| format!("  ({})", alerts::clean(&e)))
                .unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn digest(ctx: &Context) -> anyhow::Result<ExitCode> {
    let store = ctx.open_existing_store()?;
    let now = now_s();
    let date = now.get(..10).unwrap_or(&now).to_string();
    let flags: Vec<_> = store
        .policy_flag_facts()?
        .into_iter()
        .filter(|f| f.status == "flagged")
        .collect();
    if flags.is_empty() {
        println!("no new flags: no digest");
        return Ok(ExitCode::SUCCESS);
    }
    let payload = alerts::digest_content(&flags, ctx.config.alerts.digest_size, &date);
    let mut queued = 0;
    for ch in &ctx.config.alerts.channels {
        let id = format!("msg_{}", uuid::Uuid::new_v4().simple());
        if store.insert_alert(&NewAlert {
            alert_id: &id,
            channel: &ch.name,
            dedupe_key: &format!("{}:digest:{date}", ch.name),
            kind: "digest",
            transaction_id: None,
            payload: &payload,
            now: &now,
        })? {
            queued += 1;
        }
    }
    if ctx.config.alerts.channels.is_empty() {
        println!("no alert channels in [alerts]: add one with `tierdesk alerts add`");
        return Ok(ExitCode::SUCCESS);
    }
    let budget = std::time::Duration::from_secs(ctx.config.alerts.budget_secs);
    let rep = deliver::deliver(&store, &ctx.config.alerts, budget)?;
    println!(
        "digest of {date}: {} flag{} on {queued} channel{} (already queued today elsewhere: {})",
        payload.get("count").and_then(|c| c.as_u64()).unwrap_or(0),
        if payload.get("count").and_then(|c| c.as_u64()) == Some(1) {
            ""
        } else {
            "s"
        },
        if queued == 1 { "" } else { "s" },
        ctx.config.alerts.channels.len() - queued
    );
    print_report(&rep);
    Ok(ExitCode::SUCCESS)
}

fn print_report(rep: &deliver::Report) {
    println!(
        "alerts: {} sent, {} to retry, {} given up, {} waiting",
        rep.sent, rep.retried, rep.failed, rep.pending
    );
    for e in &rep.errors {
        eprintln!("  {}", alerts::clean(e));
    }
}
