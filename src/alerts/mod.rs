//! Alerts: a Slack incoming webhook (Block Kit), a generic webhook signed with Standard
//! Webhooks, queued in a durable outbox in the cache and delivered with retries.
//!
//! Channels are named in `[alerts]` of config.toml; the Slack URL (which is the secret)
//! and the webhook's `whsec_` secret live in the OS keyring (or an environment variable
//! `TIERDESK_ALERT_<NAME>`), never in the file. An alert carries what, partner, amount at
//! stake, score, the top reason and the record id: never a tax id or bank detail.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::store::policy::{FlagFacts, NewAlert};
use crate::store::workflow::WfDb;
use crate::store::StoreError;

pub mod deliver;

/// The kind of an alert channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    /// A Slack incoming webhook (the URL is the secret, kept in the keyring).
    Slack,
    /// A generic HTTPS endpoint signed with Standard Webhooks (`whsec_` secret in the keyring).
    Webhook,
    /// A task record created in the PRM (`[prm]`'s connection and credential): Impartner's
    /// mapped task object; PartnerStack's API has none.
    Prm,
}

impl ChannelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Slack => "slack",
            ChannelKind::Webhook => "webhook",
            ChannelKind::Prm => "prm",
        }
    }
}

/// One channel of `[[alerts.channels]]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Channel {
    pub name: String,
    pub kind: ChannelKind,
    /// The endpoint of a generic webhook (a Slack URL is never written here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// `[alerts]` in config.toml.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertsConfig {
    pub channels: Vec<Channel>,
    /// How many flags the daily digest lists (5 to 10).
    pub digest_size: usize,
    /// First retry after this many milliseconds, doubling per attempt …
    pub retry_base_ms: u64,
    /// … up to this many seconds between attempts.
    pub retry_cap_secs: u64,
    /// Attempts before an alert is given up (it stays listed as `failed`).
    pub max_attempts: u32,
    /// Connect and read timeout of one delivery, in seconds.
    pub timeout_secs: u64,
    /// How long `score`, `sync` or a run may spend delivering, in seconds; what is left
    /// stays in the outbox for the next one.
    pub budget_secs: u64,
    /// `[prm]` of the same config file, for `prm` channels (filled when it is loaded).
    #[serde(skip)]
    pub prm: Option<crate::config::PrmConfig>,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            channels: Vec::new(),
            digest_size: 7,
            retry_base_ms: 2000,
            retry_cap_secs: 3600,
            max_attempts: 10,
            timeout_secs: 5,
            budget_secs: 10,
            prm: None,
        }
    }
}

impl AlertsConfig {
    pub fn channel(&self, name: &str) -> Option<&Channel> {
        self.channels.iter().find(|c| c.name == name)
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs.max(1))
    }
}

/// The keyring account of a channel's secret.
pub fn secret_account(name: &str) -> String {
    format!("alerts:{name}")
}

/// The environment variable that may carry a channel's secret instead of the keyring.
pub fn secret_env(name: &str) -> String {
    crate::sync::creds::env_name("TIERDESK_ALERT_", name)
}

/// Why a channel's secret could not be had.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(
        "no secret for alert channel `{name}`: run `tierdesk alerts add {kind} {name}` or set {env}"
    )]
    Missing {
        name: String,
        kind: &'static str,
        env: String,
    },
    #[error("alert channel `{name}`: keyring: {why}")]
    Keyring { name: String, why: String },
}

/// Reads a channel's secret: the environment variable first, then the keyring.
pub fn load_secret(ch: &Channel) -> Result<secrecy::SecretString, SecretError> {
    let env = secret_env(&ch.name);
    if let Ok(v) = std::env::var(&env) {
        if !v.trim().is_empty() {
            return Ok(secrecy::SecretString::from(v.trim().to_string()));
        }
    }
    match crate::sync::creds::load_keyring(&secret_account(&ch.name), Duration::from_secs(10)) {
        Ok((s, _)) => Ok(s),
        Err(crate::sync::creds::CredError::Missing { .. }) => Err(SecretError::Missing {
            name: ch.name.clone(),
            kind: ch.kind.as_str(),
            env,
        }),
        Err(e) => Err(SecretError::Keyring {
            name: ch.name.clone(),
            why: e.to_string(),
        }),
    }
}

/// Strips control and bidirectional-override characters from text that came from data.
pub fn clean(s: &str) -> String {
    s.chars()
        .filter(|c| {
            !c.is_control()
                && !matches!(*c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
        })
        .collect()
}

/// The content of a flag alert (channel-neutral; rendered per channel at delivery).
pub fn flag_content(f: &FlagFacts, what: &str, rule: &str, phase: &str) -> Value {
    let at_stake = crate::policy::minor_to_decimal(f.at_stake_minor, &f.currency);
    json!({
        "type": "flag",
        "what": what,
        "transaction_id": clean(&f.transaction_id),
        "partner_id": clean(&f.partner_id),
        "partner_name": clean(&f.partner_name),
        "amount_at_stake": at_stake.to_string(),
        "currency": f.currency,
        "score": (f.score * 100.0).round() / 100.0,
        "confidence": (f.confidence * 100.0).round() / 100.0,
        "kinds": f.kinds,
        "top_reason": f.top_reason.as_deref().map(clean),
        "rule": rule,
        "phase": phase,
    })
}

/// Queues one alert per channel for a flag the policy routed to `task` or `hold`
/// (deduplicated per channel and flag version). Returns how many were new.
pub fn enqueue_flag(
    db: &WfDb<'_>,
    cfg: &AlertsConfig,
    f: &FlagFacts,
    content: &Value,
    now: &str,
) -> Result<usize, StoreError> {
    let mut n = 0;
    for ch in &cfg.channels {
        let dedupe = format!(
            "{}:flag:{}:{}:{}",
            ch.name,
            f.transaction_id,
            f.row_hash,
            f.kinds.join(",")
        );
        let id = format!("msg_{}", uuid::Uuid::new_v4().simple());
        if db.insert_alert(&NewAlert {
            alert_id: &id,
            channel: &ch.name,
            dedupe_key: &dedupe,
            kind: "flag",
            transaction_id: Some(&f.transaction_id),
            payload: content,
            now,
        })? {
            n += 1;
        }
    }
    Ok(n)
}

/// The digest content: the `size` highest-risk flags (score, then amount at stake).
pub fn digest_content(flags: &[FlagFacts], size: usize, date: &str) -> Value {
    let size = size.clamp(5, 10);
    let items: Vec<Value> = flags
        .iter()
        .take(size)
        .map(|f| flag_content(f, "digest", "", ""))
        .collect();
    json!({"type": "digest", "date": date, "count": items.len(), "items": items})
}

/// Renders the Slack Block Kit message for an alert's content.
pub fn slack_message(content: &Value) -> Value {
    let s = |k: &str| content.get(k).and_then(Value::as_str).unwrap_or("");
    match s("type") {
        "digest" => {
            let items = content
                .get("items")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let mut blocks = vec![json!({
                "type": "header",
                "text": {"type": "plain_text", "text": format!("tierdesk: {} highest-risk new flags ({})", items.len(), s("date"))}
            })];
            for it in &items {
                blocks.push(
                    json!({"type": "section", "text": {"type": "mrkdwn", "text": flag_line(it)}}),
                );
            }
            json!({"text": format!("tierdesk digest: {} flags", items.len()), "blocks": blocks})
        }
        "test" => json!({
            "text": "tierdesk test alert",
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": format!("Test alert from tierdesk for channel `{}`.", s("channel"))}}]
        }),
        _ => {
            let title = format!(
                "{} {} · {}",
                match s("what") {
                    "hold" => "Hold:",
                    "task" => "Task:",
                    _ => "Flag:",
                },
                s("transaction_id"),
                s("partner_name")
            );
            json!({
                "text": format!("{title} ({} {} at stake)", s("amount_at_stake"), s("currency")),
                "blocks": [
                    {"type": "header", "text": {"type": "plain_text", "text": title}},
                    {"type": "section", "fields": [
                        {"type": "mrkdwn", "text": format!("*Partner*\n{} ({})", s("partner_name"), s("partner_id"))},
                        {"type": "mrkdwn", "text": format!("*At stake*\n{} {}", s("amount_at_stake"), s("currency"))},
                        {"type": "mrkdwn", "text": format!("*Score*\n{}", content.get("score").cloned().unwrap_or(Value::Null))},
                        {"type": "mrkdwn", "text": format!("*Kinds*\n{}", kinds_text(content))},
                    ]},
                    {"type": "section", "text": {"type": "mrkdwn", "text": format!("*Why*\n{}", s("top_reason"))}},
                    {"type": "context", "elements": [{"type": "mrkdwn", "text": format!("record `{}` · rule {} · phase {}", s("transaction_id"), s("rule"), s("phase"))}]}
                ]
            })
        }
    }
}

fn kinds_text(v: &Value) -> String {
    v.get("kinds")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

fn flag_line(it: &Value) -> String {
    let s = |k: &str| it.get(k).and_then(Value::as_str).unwrap_or("");
    format!(
        "*{}* {} ({}) · {} {} at stake · score {} · {}",
        s("transaction_id"),
        s("partner_name"),
        s("partner_id"),
        s("amount_at_stake"),
        s("currency"),
        it.get("score").cloned().unwrap_or(Value::Null),
        s("top_reason")
    )
}

/// The body a generic webhook receives (Standard Webhooks' `type`/`timestamp`/`data`).
pub fn webhook_body(content: &Value, at: &str) -> Value {
    let t = content
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("flag");
    json!({"type": format!("tierdesk.{t}"), "timestamp": at, "data": content})
}

#[cfg(test)]
mod tests;
