//! Delivery of the alerts outbox: one HTTP POST per due alert, retried with exponential
//! backoff (or the receiver's `Retry-After`), within a time budget so a slow or
//! unreachable receiver never blocks `score`, `sync` or the workbench.

use std::time::{Duration, Instant};

use base64::Engine as _;
use chrono::{DateTime, SecondsFormat, Utc};
use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use serde_json::Value;
use sha2::Sha256;

use super::{load_secret, slack_message, webhook_body, AlertsConfig, Channel, ChannelKind};
use crate::store::policy::AlertRow;
use crate::store::Store;

/// What one delivery pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub sent: usize,
    /// Attempts that failed and will be retried.
    pub retried: usize,
    /// Alerts given up after the last attempt.
    pub failed: usize,
    /// Alerts still waiting when the pass ended.
    pub pending: usize,
    /// One line per failed attempt (channel, alert, why).
    pub errors: Vec<String>,
}

/// A prepared HTTP request (owned, so it can run on another thread).
#[derive(Debug, Clone)]
pub struct Request {
    pub url: String,
    pub body: String,
    pub headers: Vec<(String, String)>,
}

/// The answer to one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// Retry later; `after` is the receiver's Retry-After when it gave one.
    Retry {
        why: String,
        after: Option<Duration>,
    },
    /// Never retried (e.g. a 4xx other than 408/429, or no secret).
    Fatal(String),
}

/// The Standard Webhooks signature: `v1,` + base64(HMAC-SHA256(key, "id.timestamp.body")),
/// where the key is the base64 part of a `whsec_` secret.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &str) -> Result<String, String> {
    let b64 = secret.strip_prefix("whsec_").unwrap_or(secret);
    let key = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|e| format!("the webhook secret is not a whsec_ base64 key: {e}"))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).map_err(|e| e.to_string())?;
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    Ok(format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    ))
}

/// The request that creates an alert's task in the PRM (a `prm` channel): Impartner's
/// task object through `[prm]`'s URL, tenant and credential. PartnerStack's API has no
/// task or case object, so such a channel is refused with what to use instead.
fn prm_request(
    ch: &Channel,
    prm: Option<&crate::config::PrmConfig>,
    alert: &AlertRow,
) -> Result<Request, String> {
    let prm = prm.ok_or_else(|| {
        format!(
            "alert channel `{}` is of kind prm but config.toml has no [prm] (tierdesk login)",
            ch.name
        )
    })?;
    if prm.flavor != "impartner" {
        return Err(format!(
            "alert channel `{}`: {}'s API has no task or case object; use a slack or webhook channel",
            ch.name, prm.flavor
        ));
    }
    let token = crate::sync::creds::load(
        &crate::sync::creds::account(&prm.url, &prm.flavor),
        crate::sync::creds::TIMEOUT,
    )
    .map_err(|e| e.to_string())?;
    let tenant =
        crate::sync::adapter::tenant_for(crate::prm::Flavor::Impartner, prm.tenant.as_deref())?;
    let t = prm.tasks.clone().unwrap_or_default();
    let p = &alert.payload;
    let text = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or("");
    let subject = super::clean(&format!("tierdesk: {}", summary(alert)));
    let mut body = summary(alert);
    if !text("partner_name").is_empty() {
        body.push_str(&format!(
            "; partner {} ({})",
            text("partner_name"),
            text("partner_id")
        ));
    }
    if let Some(s) = p.get("score").and_then(Value::as_f64) {
        body.push_str(&format!("; score {s:.2}"));
    }
    if !text("top_reason").is_empty() {
        body.push_str(&format!("; {}", text("top_reason")));
    }
    if !text("rule").is_empty() {
        body.push_str(&format!("; rule {}, phase {}", text("rule"), text("phase")));
    }
    let body = super::clean(&body);
    let tx = p.get("transaction_id").and_then(Value::as_str);
    let auth = crate::prm::impartner::auth_header(token.expose_secret());
    Ok(Request {
        url: format!(
            "{}{}",
            prm.url.trim_end_matches('/'),
            crate::prm::impartner::list_path(&t.object)
        ),
        body: crate::prm::impartner::task_body(&t, &subject, &body, tx, &alert.alert_id)
            .to_string(),
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("authorization".into(), auth),
            (crate::prm::impartner::TENANT_HEADER.into(), tenant),
        ],
    })
}

/// Builds the request for an alert on its channel (reads the channel's secret).
pub fn request(
    cfg: &AlertsConfig,
    ch: &Channel,
    alert: &AlertRow,
    now: DateTime<Utc>,
) -> Result<Request, String> {
    let secret = || load_secret(ch).map_err(|e| e.to_string());
    match ch.kind {
        ChannelKind::Prm => prm_request(ch, cfg.prm.as_ref(), alert),
        ChannelKind::Slack => Ok(Request {
            url: secret()?.expose_secret().to_string(),
            body: slack_message(&alert.payload).to_string(),
            headers: vec![("content-type".into(), "application/json".into())],
        }),
        ChannelKind::Webhook => {
            let secret = secret()?;
            let url = ch
                .url
                .clone()
                .ok_or_else(|| format!("alert channel `{}` has no url in [alerts]", ch.name))?;
            let at = now.to_rfc3339_opts(SecondsFormat::Secs, true);
            let body = webhook_body(&alert.payload, &at).to_string();
            let ts = now.timestamp();
            let sig = sign(secret.expose_secret(), &alert.alert_id, ts, &body)?;
            Ok(Request {
                url,
                body,
                headers: vec![
                    ("content-type".into(), "application/json".into()),
                    ("webhook-id".into(), alert.alert_id.clone()),
                    ("webhook-timestamp".into(), ts.to_string()),
                    ("webhook-signature".into(), sig),
                ],
            })
        }
    }
}

/// `Retry-After` as seconds or an HTTP date.
fn retry_after(v: Option<&reqwest::header::HeaderValue>, now: DateTime<Utc>) -> Option<Duration> {
    let t = v?.to_str().ok()?.trim();
    if let Ok(s) = t.parse::<u64>() {
        return Some(Duration::from_secs(s));
    }
    let when = httpdate::parse_http_date(t).ok()?;
    let when: DateTime<Utc> = when.into();
    (when - now).to_std().ok()
}

/// Sends the requests (on a thread of their own with its own runtime, so this works
/// inside and outside an async context) and returns one outcome each.
pub fn post_all(reqs: Vec<Request>, timeout: Duration) -> Vec<Outcome> {
    let n = reqs.len();
    let handle = std::thread::spawn(move || -> Vec<Outcome> {
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                return reqs
                    .iter()
                    .map(|_| Outcome::Retry {
                        why: format!("no runtime: {e}"),
                        after: None,
                    })
                    .collect()
            }
        };
        rt.block_on(async move {
            let client = match reqwest::Client::builder()
                .connect_timeout(timeout)
                .timeout(timeout)
                .build()
            {
                Ok(c) => c,
                Err(e) => {
                    return reqs
                        .iter()
                        .map(|_| Outcome::Retry {
                            why: e.to_string(),
                            after: None,
                        })
                        .collect()
                }
            };
            let mut out = Vec::with_capacity(reqs.len());
            for r in reqs {
                let mut b = client.post(&r.url).body(r.body);
                for (k, v) in &r.headers {
                    b = b.header(k, v);
                }
                out.push(match b.send().await {
                    Ok(resp) => {
                        let st = resp.status();
                        if st.is_success() {
                            Outcome::Delivered
                        } else if st.as_u16() == 429 || st.as_u16() == 408 || st.is_server_error() {
                            Outcome::Retry {
                                why: format!("the receiver answered {st}"),
                                after: retry_after(resp.headers().get("retry-after"), Utc::now()),
                            }
                        } else {
                            Outcome::Fatal(format!("the receiver answered {st}"))
                        }
                    }
                    Err(e) => Outcome::Retry {
                        why: format!("not delivered: {}", without_url(e)),
                        after: None,
                    },
                });
            }
            out
        })
    });
    handle.join().unwrap_or_else(|_| {
        (0..n)
            .map(|_| Outcome::Retry {
                why: "the delivery thread failed".into(),
                after: None,
            })
            .collect()
    })
}

/// A reqwest error without its URL (a Slack URL is a secret).
fn without_url(e: reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "cannot connect".into()
    } else {
        e.without_url().to_string()
    }
}

/// The delay before attempt `attempts + 1` (exponential, capped).
pub fn backoff(cfg: &AlertsConfig, attempts: i64) -> Duration {
    let exp = u32::try_from(attempts.clamp(0, 20)).unwrap_or(20);
    let ms = cfg.retry_base_ms.saturating_mul(1u64 << exp);
    Duration::from_millis(ms).min(Duration::from_secs(cfg.retry_cap_secs.max(1)))
}

fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Delivers due alerts until none is due or `budget` is spent (waiting for a retry that
/// falls inside the budget). Failures stay in the outbox with their next attempt.
pub fn deliver(store: &Store, cfg: &AlertsConfig, budget: Duration) -> anyhow::Result<Report> {
    let start = Instant::now();
    let mut rep = Report::default();
    loop {
        let now = Utc::now();
        let due = store.due_alerts(&stamp(now), 100)?;
        if due.is_empty() {
            match store.next_alert_due()? {
                Some(next) => {
                    let wait = DateTime::parse_from_rfc3339(&next)
                        .ok()
                        .and_then(|t| (t.with_timezone(&Utc) - now).to_std().ok())
                        .unwrap_or_default();
                    if start.elapsed() + wait < budget {
                        std::thread::sleep(wait.max(Duration::from_millis(5)));
                        continue;
                    }
                }
                None => break,
            }
            break;
        }
        if start.elapsed() >= budget {
            break;
        }
        let mut reqs = Vec::new();
        let mut sendable = Vec::new();
        for a in due {
            match cfg
                .channel(&a.channel)
                .ok_or_else(|| format!("no alert channel `{}` in [alerts]", a.channel))
                .and_then(|ch| request(cfg, ch, &a, now))
            {
                Ok(r) => {
                    reqs.push(r);
                    sendable.push(a);
                }
                Err(why) => {
                    record(store, cfg, &a, &Outcome::Fatal(why), &mut rep)?;
                }
            }
        }
        let outcomes = post_all(reqs, cfg.timeout());
        for (a, o) in sendable.iter().zip(outcomes.iter()) {
            record(store, cfg, a, o, &mut rep)?;
        }
    }
    rep.pending = store
        .alerts(10_000)?
        .iter()
        .filter(|a| a.status == "pending")
        .count();
    Ok(rep)
}

fn record(
    store: &Store,
    cfg: &AlertsConfig,
    a: &AlertRow,
    o: &Outcome,
    rep: &mut Report,
) -> anyhow::Result<()> {
    let now = Utc::now();
    match o {
        Outcome::Delivered => {
            store.mark_alert_sent(a.id, &stamp(now))?;
            rep.sent += 1;
        }
        Outcome::Retry { why, after } => {
            let give_up = a.attempts + 1 >= i64::from(cfg.max_attempts.max(1));
            let delay = after.unwrap_or_else(|| backoff(cfg, a.attempts));
            let next = now + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::zero());
            store.mark_alert_attempt(a.id, why, &stamp(next), give_up)?;
            rep.errors
                .push(format!("{} alert {}: {why}", a.channel, a.alert_id));
            if give_up {
                rep.failed += 1;
            } else {
                rep.retried += 1;
            }
        }
        Outcome::Fatal(why) => {
            store.mark_alert_attempt(a.id, why, &stamp(now), true)?;
            rep.errors
                .push(format!("{} alert {}: {why}", a.channel, a.alert_id));
            rep.failed += 1;
        }
    }
    Ok(())
}

/// Verifies a Standard Webhooks signature header (any of its space-separated `v1,`
/// signatures), for receivers and tests.
pub fn verify(secret: &str, id: &str, timestamp: i64, body: &str, header: &str) -> bool {
    let Ok(expected) = sign(secret, id, timestamp, body) else {
        return false;
    };
    header.split_whitespace().any(|s| s == expected)
}

/// Parses a stored alert payload for display.
pub fn summary(a: &AlertRow) -> String {
    let s = |k: &str| a.payload.get(k).and_then(Value::as_str).unwrap_or("");
    match s("type") {
        "digest" => format!(
            "digest {} ({} flags)",
            s("date"),
            a.payload.get("count").cloned().unwrap_or(Value::Null)
        ),
        "test" => "test".into(),
        _ => format!(
            "{} {} {} {} at stake",
            s("what"),
            s("transaction_id"),
            s("amount_at_stake"),
            s("currency")
        ),
    }
}
