//! `tierdesk listen`: the PRM webhook receiver.
//!
//! 1. **Verify** each `POST /hooks/{provider}` (or `/hooks/{provider}/{secret}` in path
//!    mode) with the provider's mode ([`verify`]): a wrong path secret or an unknown
//!    route is 404 (nothing revealed), a bad or missing signature 401, a body over the
//!    limit 413, malformed JSON 400; nothing is stored for any of them.
//! 2. **Store** the verified event in `webhook_events` (committed) *before* answering
//!    200. Duplicates (same event id — the Standard Webhooks `webhook-id`, else the
//!    body's `id`/`event_id` — or, without one, the same object key and update time)
//!    answer 200 `{"duplicate":true}` and store nothing. Events tierdesk does not act
//!    on are stored as `ignored` ([`event`]).
//! 3. A **worker** takes the received events in order, re-fetches each named object
//!    through the PRM API ([`Refetch`]; the body's record is never trusted), marks it
//!    `fetched`, then hands the batch to [`Ingest`] (in the CLI: an incremental sync of
//!    the named resources followed by the scoring `tierdesk sync` runs) and marks the
//!    events `scored`, or `failed` with the error. Polling stays the fallback (the CLI
//!    runs a full incremental sync every `--poll-secs`).
//!
//! One line per event goes to the output (stdout in the CLI): `received
//! partnership.updated prtnr_1 (partnerstack)`, `duplicate …`, `refused: bad signature
//! from 127.0.0.1 (…)`. Secrets are never printed, logged or stored in the cache.

pub mod event;
pub mod verify;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use secrecy::{ExposeSecret, SecretSlice, SecretString};
use serde_json::{json, Value};
use tokio::sync::Notify;

pub use crate::prm::Res as Resource;
use crate::store::webhook::{NewWebhookEvent, WebhookEvent, WebhookState};
use crate::store::Store;
pub use verify::Mode;

/// `--addr` when neither the flag nor `[listen] addr` says.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8790";
/// `--poll-secs` when neither the flag nor `[listen] poll_secs` says.
pub const DEFAULT_POLL_SECS: u64 = 300;
/// The largest body accepted (413 above).
pub const MAX_BODY: usize = 1 << 20;
/// `TIERDESK_WEBHOOK_SECRET_<PROVIDER>` overrides the keyring.
pub const SECRET_ENV_PREFIX: &str = "TIERDESK_WEBHOOK_SECRET_";
/// The shortest path secret accepted (it is the only credential in path mode).
pub const MIN_PATH_SECRET: usize = 16;

/// How often the worker looks for received events when nothing wakes it (events left
/// by an earlier run, or stored by another process).
const WORKER_TICK: Duration = Duration::from_secs(5);

/// The environment variable holding a provider's secret: upper-case, `-` and other
/// non-alphanumerics as `_` (`TIERDESK_WEBHOOK_SECRET_PARTNERSTACK`).
pub fn secret_env(provider: &str) -> String {
    crate::sync::creds::env_name(SECRET_ENV_PREFIX, provider)
}

/// The keyring account of a provider's secret (service `tierdesk`, as the PRM token).
pub fn secret_account(provider: &str) -> String {
    format!("webhook:{provider}")
}

/// A provider's secret: the environment variable first, then the OS keyring.
pub fn load_secret(provider: &str) -> Result<SecretString, String> {
    let env = secret_env(provider);
    if let Ok(v) = std::env::var(&env) {
        if !v.trim().is_empty() {
            return Ok(SecretString::from(v.trim().to_string()));
        }
    }
    use crate::sync::creds;
    match creds::load_keyring(&secret_account(provider), creds::TIMEOUT) {
        Ok((s, _)) => Ok(s),
        Err(creds::CredError::Missing { .. }) => Err(format!(
            "no webhook secret for provider `{provider}`: run `tierdesk listen --set-secret \
             {provider}` (reads it from stdin into the OS keyring) or set {env}"
        )),
        Err(e) => Err(format!("webhook secret for `{provider}`: {e}")),
    }
}

/// Provider names are route segments: letters, digits, `-` and `_`.
pub fn valid_provider_name(name: &str) -> Result<(), String> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(format!(
            "provider name `{name}`: use letters, digits, - and _ only (at most 64)"
        ));
    }
    Ok(())
}

/// The resource name stored in `webhook_events.object_kind`.
pub fn resource_name(r: Resource) -> &'static str {
    match r {
        Resource::Partners => "partners",
        Resource::Customers => "customers",
        Resource::Deals => "deals",
        Resource::Transactions => "transactions",
        Resource::Rewards => "rewards",
        Resource::Flags => "flags",
    }
}

/// The inverse of [`resource_name`].
pub fn parse_resource(s: &str) -> Option<Resource> {
    Resource::ALL.into_iter().find(|r| resource_name(*r) == s)
}

/// One webhook sender: its route name, verification mode and secret.
pub struct Provider {
    name: String,
    mode: Mode,
    /// Path and HMAC modes: the secret's bytes; Standard Webhooks: the decoded key.
    key: SecretSlice<u8>,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("name", &self.name)
            .field("mode", &self.mode)
            .field("key", &"[redacted]")
            .finish()
    }
}

impl Provider {
    /// A provider with its secret as stored (Standard Webhooks: `whsec_<base64>`).
    /// A secret unusable for the mode is refused here, before anything listens.
    pub fn new(name: &str, mode: Mode, secret: &[u8]) -> Result<Provider, String> {
        valid_provider_name(name)?;
        let key = match &mode {
            Mode::Standard => verify::standard_key(secret)?,
            Mode::Path => {
                let ok = secret.len() >= MIN_PATH_SECRET
                    && secret.iter().all(|b| {
                        b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~')
                    });
                if !ok {
                    return Err(format!(
                        "provider `{name}`: a path secret needs at least {MIN_PATH_SECRET} \
                         characters, letters, digits, - _ . ~ only (e.g. `openssl rand -hex 24`)"
                    ));
                }
                secret.to_vec()
            }
            Mode::Hmac { .. } => {
                if secret.is_empty() {
                    return Err(format!("provider `{name}`: the HMAC secret is empty"));
                }
                secret.to_vec()
            }
        };
        Ok(Provider {
            name: name.to_string(),
            mode,
            key: SecretSlice::from(key),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn mode(&self) -> &Mode {
        &self.mode
    }

    /// The route the provider posts to (the path secret shown as `<secret>`).
    pub fn route(&self) -> String {
        match self.mode {
            Mode::Path => format!("/hooks/{}/<secret>", self.name),
            _ => format!("/hooks/{}", self.name),
        }
    }
}

/// Re-fetches a named object through the PRM API: `Ok(None)` when the PRM has no such
/// object, `Err` when it could not be asked.
pub trait Refetch: Send + Sync {
    fn refetch(
        &self,
        kind: Resource,
        key: &str,
    ) -> impl Future<Output = Result<Option<Value>, String>> + Send;
}

/// An event whose object was re-fetched.
#[derive(Debug, Clone, PartialEq)]
pub struct Fetched {
    /// The `webhook_events` row id.
    pub event: i64,
    pub kind: Resource,
    pub key: String,
    /// The record as the PRM serves it now.
    pub record: Value,
}

/// Brings fetched objects into the cache and scores them (the CLI: an incremental
/// sync of the named resources, then the scoring `tierdesk sync` runs). `Ok` marks the
/// events `scored`; `Err` marks them `failed` with the message.
pub trait Ingest: Send + Sync {
    fn ingest(&self, fetched: &[Fetched]) -> impl Future<Output = Result<(), String>> + Send;
}

/// Where the receiver's one-line reports go.
pub type Output = Arc<dyn Fn(&str) + Send + Sync>;

struct Shared {
    store: Mutex<Store>,
    providers: HashMap<String, Provider>,
    notify: Notify,
    out: Output,
    max_body: usize,
}

impl Shared {
    fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }
    fn say(&self, line: &str) {
        (self.out)(line);
    }
}

/// The receiver: its routes, and the worker that acts on what it stored.
#[derive(Clone)]
pub struct Receiver {
    shared: Arc<Shared>,
}

fn answer(status: StatusCode, body: Value) -> Response {
    (status, Json(body)).into_response()
}

fn not_found() -> Response {
    answer(StatusCode::NOT_FOUND, json!({"error": "not found"}))
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

impl Receiver {
    /// A receiver storing into `store`, for `providers` (one route each); reports go
    /// to stdout.
    pub fn new(store: Store, providers: Vec<Provider>) -> Receiver {
        Receiver::with_output(store, providers, Arc::new(|l: &str| println!("{l}")))
    }

    /// As [`Receiver::new`], with reports going to `out`.
    pub fn with_output(store: Store, providers: Vec<Provider>, out: Output) -> Receiver {
        Receiver {
            shared: Arc::new(Shared {
                store: Mutex::new(store),
                providers: providers.into_iter().map(|p| (p.name.clone(), p)).collect(),
                notify: Notify::new(),
                out,
                max_body: MAX_BODY,
            }),
        }
    }

    /// The routes. Serve them with connect info (as [`Receiver::serve`] does) so a
    /// refusal names the peer.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/hooks/{provider}", post(hook))
            .route("/hooks/{provider}/{secret}", post(hook_with_secret))
            .fallback(|| async { not_found() })
            .with_state(self.shared.clone())
    }

    /// Serves the routes on `listener` until the task is dropped.
    pub async fn serve(&self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        axum::serve(
            listener,
            self.router()
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    }

    /// Runs the worker on its own task: it wakes on every stored event (and every few
    /// seconds for events left by an earlier run).
    pub fn spawn_worker<R, I>(&self, refetch: R, ingest: I) -> tokio::task::JoinHandle<()>
    where
        R: Refetch + 'static,
        I: Ingest + 'static,
    {
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                me.work_once(&refetch, &ingest).await;
                tokio::select! {
                    _ = me.shared.notify.notified() => {}
                    _ = tokio::time::sleep(WORKER_TICK) => {}
                }
            }
        })
    }

    /// Works through every received event, oldest first; returns how many it took.
    pub async fn work_once<R: Refetch, I: Ingest>(&self, refetch: &R, ingest: &I) -> usize {
        let sh = &self.shared;
        let mut done = 0;
        loop {
            let batch = match sh
                .store()
                .webhook_events_in_state(WebhookState::Received, 100)
            {
                Ok(b) => b,
                Err(e) => {
                    sh.say(&format!("error: reading received events: {e}"));
                    return done;
                }
            };
            if batch.is_empty() {
                return done;
            }
            done += batch.len();
            let mut fetched = Vec::new();
            for e in batch {
                if let Some(f) = self.fetch_one(refetch, &e).await {
                    fetched.push(f);
                }
            }
            if fetched.is_empty() {
                continue;
            }
            let (state, error, line) = match ingest.ingest(&fetched).await {
                Ok(()) => (
                    WebhookState::Scored,
                    None,
                    format!("scored {}", crate::plural::n(fetched.len() as u64, "event")),
                ),
                Err(e) => (
                    WebhookState::Failed,
                    Some(format!("re-fetched, but pulling and scoring failed: {e}")),
                    format!("failed: pulling and scoring after events: {e}"),
                ),
            };
            {
                let store = sh.store();
                for f in &fetched {
                    if let Err(e) = store.set_webhook_event_state(f.event, state, error.as_deref())
                    {
                        sh.say(&format!("error: recording event {}: {e}", f.event));
                    }
                }
            }
            sh.say(&line);
        }
    }

    /// Re-fetches one event's object and records the outcome.
    async fn fetch_one<R: Refetch>(&self, refetch: &R, e: &WebhookEvent) -> Option<Fetched> {
        let sh = &self.shared;
        let target = e
            .object_kind
            .as_deref()
            .and_then(parse_resource)
            .zip(e.object_key.clone());
        let (state, error, out) = match target {
            None => (
                WebhookState::Failed,
                Some("the event names no object".to_string()),
                None,
            ),
            Some((kind, key)) => match refetch.refetch(kind, &key).await {
                Ok(Some(record)) => (
                    WebhookState::Fetched,
                    None,
                    Some(Fetched {
                        event: e.id,
                        kind,
                        key,
                        record,
                    }),
                ),
                Ok(None) => (
                    WebhookState::Failed,
                    Some(format!("the PRM has no {} {key}", resource_name(kind))),
                    None,
                ),
                Err(msg) => (
                    WebhookState::Failed,
                    Some(format!("re-fetching from the PRM failed: {msg}")),
                    None,
                ),
            },
        };
        if let Err(err) = sh
            .store()
            .set_webhook_event_state(e.id, state, error.as_deref())
        {
            sh.say(&format!("error: recording event {}: {err}", e.id));
            return None;
        }
        let key = e.object_key.as_deref().unwrap_or("-");
        match &error {
            None => sh.say(&format!("fetched {} {key} ({})", e.event_type, e.provider)),
            Some(why) => sh.say(&format!(
                "failed {} {key} ({}): {why}",
                e.event_type, e.provider
            )),
        }
        out
    }
}

async fn hook(
    State(sh): State<Arc<Shared>>,
    Path(provider): Path<String>,
    req: Request,
) -> Response {
    receive(sh, provider, None, req).await
}

async fn hook_with_secret(
    State(sh): State<Arc<Shared>>,
    Path((provider, secret)): Path<(String, String)>,
    req: Request,
) -> Response {
    receive(sh, provider, Some(secret), req).await
}

async fn receive(
    sh: Arc<Shared>,
    provider: String,
    secret: Option<String>,
    req: Request,
) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_else(|| "an unknown peer".into());
    let Some(p) = sh.providers.get(&provider) else {
        sh.say(&format!("refused: unknown route from {peer}"));
        return not_found();
    };
    // The route must match the mode; a wrong path secret looks like no route at all.
    match (&p.mode, &secret) {
        (Mode::Path, Some(s)) if verify::verify_path(p.key.expose_secret(), s).is_err() => {
            sh.say(&format!(
                "refused: wrong path secret from {peer} ({provider})"
            ));
            return not_found();
        }
        (Mode::Path, Some(_)) => {}
        (Mode::Path, None) | (_, Some(_)) => {
            sh.say(&format!("refused: unknown route from {peer} ({provider})"));
            return not_found();
        }
        _ => {}
    }
    let headers = req.headers().clone();
    let too_large = header(&headers, "content-length")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .is_some_and(|n| n > sh.max_body as u64);
    let body = if too_large {
        None
    } else {
        axum::body::to_bytes(req.into_body(), sh.max_body)
            .await
            .ok()
    };
    let Some(body) = body else {
        sh.say(&format!(
            "refused: body over {} bytes from {peer} ({provider})",
            sh.max_body
        ));
        return answer(
            StatusCode::PAYLOAD_TOO_LARGE,
            json!({"error": "body too large"}),
        );
    };
    let verified = match &p.mode {
        Mode::Path => Ok(()),
        Mode::Hmac { header: h } => {
            verify::verify_hmac(p.key.expose_secret(), &body, header(&headers, h))
        }
        Mode::Standard => verify::verify_standard(
            p.key.expose_secret(),
            header(&headers, verify::ID_HEADER),
            header(&headers, verify::TIMESTAMP_HEADER),
            header(&headers, verify::SIGNATURE_HEADER),
            &body,
            chrono::Utc::now().timestamp(),
        ),
    };
    if let Err(why) = verified {
        sh.say(&format!(
            "refused: bad signature from {peer} ({provider}: {why})"
        ));
        return answer(StatusCode::UNAUTHORIZED, json!({"error": "bad signature"}));
    }
    let parsed = serde_json::from_slice::<Value>(&body)
        .map_err(|e| e.to_string())
        .and_then(|v| event::parse(&v));
    let (parsed, raw) = match (parsed, String::from_utf8(body.to_vec())) {
        (Ok(p), Ok(raw)) => (p, raw),
        (Err(e), _) => {
            sh.say(&format!(
                "refused: malformed JSON from {peer} ({provider}: {e})"
            ));
            return answer(StatusCode::BAD_REQUEST, json!({"error": "malformed JSON"}));
        }
        (_, Err(_)) => {
            sh.say(&format!(
                "refused: malformed JSON from {peer} ({provider}: not UTF-8)"
            ));
            return answer(StatusCode::BAD_REQUEST, json!({"error": "malformed JSON"}));
        }
    };
    // A verified Standard Webhooks id is the event's id (it is signed); otherwise only
    // the body (signed, or behind the path secret) says.
    let event_id = match p.mode {
        Mode::Standard => header(&headers, verify::ID_HEADER).map(str::to_string),
        _ => parsed.event_id.clone(),
    };
    let received_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let state = if parsed.ignored.is_some() {
        WebhookState::Ignored
    } else {
        WebhookState::Received
    };
    let store_sh = sh.clone();
    let (prov, ev) = (provider.clone(), parsed.clone());
    let inserted = tokio::task::spawn_blocking(move || {
        store_sh.store().insert_webhook_event(&NewWebhookEvent {
            provider: &prov,
            event_id: event_id.as_deref(),
            event_type: &ev.event_type,
            object_kind: ev.resource.map(resource_name),
            object_key: ev.key.as_deref(),
            object_updated_at: ev.updated.as_deref(),
            received_at: &received_at,
            raw_body: &raw,
            state,
            error: ev.ignored.as_deref(),
        })
    })
    .await;
    let key = parsed.key.as_deref().unwrap_or("-");
    match inserted {
        Ok(Ok(Some(id))) => {
            match &parsed.ignored {
                None => {
                    sh.say(&format!(
                        "received {} {key} ({provider})",
                        parsed.event_type
                    ));
                    sh.notify.notify_one();
                }
                Some(why) => sh.say(&format!(
                    "ignored {} {key} ({provider}): {why}",
                    parsed.event_type
                )),
            }
            answer(
                StatusCode::OK,
                json!({"received": true, "id": id, "ignored": parsed.ignored.is_some()}),
            )
        }
        Ok(Ok(None)) => {
            sh.say(&format!(
                "duplicate {} {key} ({provider})",
                parsed.event_type
            ));
            answer(StatusCode::OK, json!({"duplicate": true}))
        }
        Ok(Err(e)) => {
            sh.say(&format!("error: storing an event from {provider}: {e}"));
            answer(
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"error": "not stored"}),
            )
        }
        Err(e) => {
            sh.say(&format!("error: storing an event from {provider}: {e}"));
            answer(
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"error": "not stored"}),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_env_and_account_names() {
        assert_eq!(
            secret_env("partnerstack"),
            "TIERDESK_WEBHOOK_SECRET_PARTNERSTACK"
        );
        assert_eq!(secret_env("my-prm"), "TIERDESK_WEBHOOK_SECRET_MY_PRM");
        assert_eq!(secret_account("impartner"), "webhook:impartner");
    }

    #[test]
    fn providers_refuse_unusable_secrets_and_never_print_them() {
        assert!(Provider::new("ps", Mode::Path, b"short").is_err());
        assert!(Provider::new("ps", Mode::Path, b"has/slash/in/it/abcdef").is_err());
        assert!(Provider::new("ps", Mode::Standard, b"whsec_***").is_err());
        assert!(Provider::new("bad name", Mode::Path, b"0123456789abcdef").is_err());
        let p = Provider::new(
            "ps",
            Mode::Hmac {
                header: "X-Signature".into(),
            },
            b"topsecretvalue",
        )
        .unwrap();
        assert!(!format!("{p:?}").contains("topsecretvalue"));
        assert_eq!(p.route(), "/hooks/ps");
        let p = Provider::new("acme", Mode::Path, b"0123456789abcdef").unwrap();
        assert_eq!(p.route(), "/hooks/acme/<secret>");
    }

    #[test]
    fn resource_names_round_trip() {
        for r in Resource::ALL {
            assert_eq!(parse_resource(resource_name(r)), Some(r));
        }
    }
}
