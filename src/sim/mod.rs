//! PRM simulator (PartnerStack and Impartner flavours) over real HTTP, serving the real
//! shapes of both APIs (the `crate::prm` protocol modules) and nothing invented in them.
//!
//! - `partnerstack` (Vendor API v2): `GET /api/v2/{partnerships,customers,deals,
//!   transactions,rewards}` newest created first (`starting_after` = the last key of a
//!   page, `limit` 1-250, `min_updated`/`min_created`), `GET /api/v2/{res}/{key}`,
//!   `POST /api/v2/rewards`; HTTP Basic with a key pair (`public:secret`). There is no
//!   review API: holds, declines and approvals happen on the "dashboard"
//!   (`POST /_sim/admin/rewards/{key}`).
//! - `impartner` (objects API): `GET /api/objects/v1/{Object}` with `fields`, `filter`,
//!   `orderby=updated,id`, `skip`/`take` (1-1000), `GET|PATCH /api/objects/v1/{Object}/{id}`,
//!   `_describe`; `Authorization: prm-key KEY` (or Basic) and `X-PRM-TenantId: <integer>`.
//!   Object and field names come from the tenant's [`Mapping`]; a tenant can lack objects
//!   or fields ([`SimOptions::missing`]); `ignore_skip` makes it a broken server.
//!
//! Neither API documents idempotency keys, so the simulator has none: a write sent twice
//! is applied twice (the client's read-back is what keeps it exactly once). Every applied
//! write is appended to a ledger (`GET /_sim/ledger`). `POST /_sim/admin/...` changes
//! records server-side, inserts raw (malformed) items, creates items and sets the faults:
//! latency, 5xx, connection resets, truncated bodies, malformed JSON, duplicated page
//! items, 429 + Retry-After and "lost" writes (applied, then the connection drops).

pub mod dataset;
pub mod impartner;
pub mod partnerstack;
pub mod synth;
pub mod webhook;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body as HttpBody, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use base64::Engine as _;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::model::Dataset;
use crate::prm::impartner::{self as imp, Mapping};
use crate::prm::partnerstack as ps;

pub use crate::prm::{Flavor, Res};

/// Fault injection rates (probabilities per request) and fixed latency.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Faults {
    pub latency_ms: u64,
    pub server_error: f64,
    pub reset: f64,
    pub truncate: f64,
    pub malformed: f64,
    pub duplicate: f64,
    pub rate_limit: f64,
    /// Writes only: apply, then drop the connection before the response.
    pub lost: f64,
    /// Writes only: answer 503 without applying (reads keep working).
    #[serde(default)]
    pub write_error: f64,
}

impl Faults {
    /// Parses `latency=5,5xx=0.1,reset=0.05,truncate=0.05,malformed=0.05,dup=0.1,429=0.1,lost=0.5,write5xx=1`.
    pub fn parse(spec: &str) -> Result<Faults, String> {
        let mut f = Faults::default();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("fault `{part}`: expected NAME=VALUE"))?;
            if k == "latency" {
                f.latency_ms = v
                    .trim_end_matches("ms")
                    .parse()
                    .map_err(|_| format!("fault latency: `{v}` is not milliseconds"))?;
                continue;
            }
            let p: f64 = v
                .parse()
                .map_err(|_| format!("fault {k}: `{v}` is not a probability"))?;
            if !(0.0..=1.0).contains(&p) {
                return Err(format!("fault {k}: {p} is not between 0 and 1"));
            }
            match k {
                "5xx" => f.server_error = p,
                "reset" => f.reset = p,
                "truncate" => f.truncate = p,
                "malformed" => f.malformed = p,
                "dup" | "duplicate" => f.duplicate = p,
                "429" => f.rate_limit = p,
                "lost" => f.lost = p,
                "write5xx" => f.write_error = p,
                other => return Err(format!("unknown fault `{other}`")),
            }
        }
        Ok(f)
    }
}

/// Simulator settings.
#[derive(Debug, Clone)]
pub struct SimOptions {
    pub flavor: Flavor,
    /// The credential clients must present (`public:secret` for PartnerStack).
    pub token: String,
    pub tenant: String,
    pub faults: Faults,
    pub seed: u64,
    /// Impartner: the tenant's object and field names.
    pub mapping: Mapping,
    /// Impartner: objects (`(name, None)`) or fields (`(object, Some(field))`) the tenant
    /// does not have.
    pub missing: Vec<(String, Option<String>)>,
    /// Impartner: serve every page from the start whatever `skip` says (a broken server).
    pub ignore_skip: bool,
    /// Send an event to a `tierdesk listen` receiver after every server-side change.
    pub notify: Option<Notify>,
}

/// Where and how the simulator sends its webhooks.
#[derive(Debug, Clone)]
pub struct Notify {
    /// The receiver's route, e.g. `http://127.0.0.1:8790/hooks/partnerstack`.
    pub url: String,
    pub mode: webhook::SignMode,
    pub secret: Vec<u8>,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            flavor: Flavor::Partnerstack,
            token: DEFAULT_TOKEN.to_string(),
            tenant: DEFAULT_TENANT.to_string(),
            faults: Faults::default(),
            seed: 1,
            mapping: Mapping::default(),
            missing: Vec::new(),
            ignore_skip: false,
            notify: None,
        }
    }
}

pub const DEFAULT_TOKEN: &str = "pk_demo:sk_demo";
/// The simulated Impartner tenant id (an integer, as `X-PRM-TenantId` carries it).
pub const DEFAULT_TENANT: &str = "4711";
pub const TENANT_HEADER: &str = crate::prm::impartner::TENANT_HEADER;

/// One applied write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LedgerEntry {
    pub seq: u64,
    /// The record written: a reward key (PartnerStack) or `Object/id` (Impartner).
    pub record: String,
    /// The transaction (PartnerStack key, Impartner sale id) the write is about.
    pub transaction_id: String,
    /// `adjust` (a new reward), or the decision written on an Impartner record.
    pub action: String,
    pub amount_cents: Option<i64>,
    pub reason: Option<String>,
    /// The tierdesk decision UUID the write carries (description marker or field).
    pub decision_id: Option<String>,
    pub audit_head: Option<String>,
}

enum Tenant {
    Ps(Box<partnerstack::Store>),
    Imp(Box<impartner::Store>),
}

struct Inner {
    opts: SimOptions,
    tenant: Tenant,
    faults: Faults,
    rng: ChaCha8Rng,
    ledger: Vec<LedgerEntry>,
    requests: u64,
    /// The last time handed out (epoch ms): the clock never runs behind the wall clock
    /// or the newest record, and never repeats.
    clock: i64,
}

impl Inner {
    fn now(&mut self) -> i64 {
        let wall = chrono::Utc::now().timestamp_millis();
        self.clock = wall.max(self.clock + 1);
        self.clock
    }
}

/// Shared simulator state (cheap to clone).
#[derive(Clone)]
pub struct SimState(Arc<Mutex<Inner>>);

impl SimState {
    pub fn new(ds: &Dataset, opts: SimOptions) -> SimState {
        let (tenant, newest) = match opts.flavor {
            Flavor::Partnerstack => {
                let (s, newest) = partnerstack::Store::build(ds);
                (Tenant::Ps(Box::new(s)), newest)
            }
            Flavor::Impartner => {
                let mut s = impartner::Store::build(ds, opts.mapping.clone());
                for (o, f) in &opts.missing {
                    s.remove(o, f.as_deref());
                }
                (Tenant::Imp(Box::new(s)), dataset::newest_ms(ds))
            }
        };
        SimState(Arc::new(Mutex::new(Inner {
            rng: ChaCha8Rng::seed_from_u64(opts.seed),
            faults: opts.faults.clone(),
            opts,
            tenant,
            ledger: Vec::new(),
            requests: 0,
            clock: newest,
        })))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panicking handler must not take the simulator down with it.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn flavor(&self) -> Flavor {
        self.lock().opts.flavor
    }

    pub fn ledger(&self) -> Vec<LedgerEntry> {
        self.lock().ledger.clone()
    }

    pub fn set_faults(&self, f: Faults) {
        self.lock().faults = f;
    }

    /// Where server-side changes are announced from now on (None: nowhere).
    pub fn set_notify(&self, n: Option<Notify>) {
        self.lock().opts.notify = n;
    }

    pub fn requests(&self) -> u64 {
        self.lock().requests
    }

    /// Impartner: the id the data-set record `key` of `res` was given (PartnerStack keys
    /// are the data set's ids).
    pub fn remote_id(&self, res: Res, key: &str) -> Option<String> {
        let g = self.lock();
        match &g.tenant {
            Tenant::Ps(_) => Some(key.to_string()),
            Tenant::Imp(s) => {
                let object = imp_object(&s.mapping, res)?;
                s.id_of(&object, key).map(|i| i.to_string())
            }
        }
    }

    /// The record as the flavour serves it (`key` as the PRM names it).
    pub fn record(&self, res: Res, key: &str) -> Option<Value> {
        let g = self.lock();
        match &g.tenant {
            Tenant::Ps(s) => s
                .get(ps_resource(res)?, key)
                .map(partnerstack::Item::to_value),
            Tenant::Imp(s) => {
                let object = imp_object(&s.mapping, res)?;
                s.get(&object, key.parse().ok()?)
            }
        }
    }

    /// Someone edits a transaction's amount in the PRM (`key` as the PRM names it).
    pub fn mutate_sale(&self, key: &str, amount: Decimal) -> bool {
        let mut g = self.lock();
        let now = g.now();
        match &mut g.tenant {
            Tenant::Ps(s) => s.mutate_transaction(key, amount, now),
            Tenant::Imp(s) => {
                let (Ok(id), m) = (key.parse::<i64>(), s.mapping.clone()) else {
                    return false;
                };
                let mut f = serde_json::Map::new();
                f.insert(m.sale_amount.clone(), imp::json_number(amount));
                s.admin_set(&m.sale_object, id, f, now)
            }
        }
    }

    /// The PRM's own screen changes a reward's status (paid, hold, declined with a
    /// reason); `key` as the PRM names the reward or commission record.
    pub fn set_reward_status(&self, key: &str, status: &str, reason: Option<String>) -> bool {
        let mut g = self.lock();
        let now = g.now();
        match &mut g.tenant {
            Tenant::Ps(s) => s.set_reward_status(key, status, reason, now).is_ok(),
            Tenant::Imp(s) => {
                let (Ok(id), m) = (key.parse::<i64>(), s.mapping.clone()) else {
                    return false;
                };
                let mut f = serde_json::Map::new();
                f.insert(m.commission_status.clone(), json!(status));
                f.insert(
                    m.commission_decline_reason.clone(),
                    reason.map(Value::String).unwrap_or(Value::Null),
                );
                s.admin_set(&m.commission_object, id, f, now)
            }
        }
    }

    /// `n` new transactions, each with a seller commission, created now. Returns their
    /// keys as the PRM names them.
    pub fn create_transactions(&self, n: usize) -> Vec<String> {
        let mut g = self.lock();
        let now = g.now();
        let g = &mut *g;
        match &mut g.tenant {
            Tenant::Ps(s) => {
                let mut clock = now;
                let out = s.create_transactions(n, || {
                    clock += 1;
                    clock
                });
                g.clock = clock;
                out
            }
            Tenant::Imp(s) => s
                .create_sales(n, now)
                .into_iter()
                .map(|i| i.to_string())
                .collect(),
        }
    }

    /// Serves `raw` verbatim as item `key` of `res` (a malformed record).
    pub fn insert_raw(&self, res: Res, key: &str, raw: Value) {
        let mut g = self.lock();
        let now = g.now();
        match &mut g.tenant {
            Tenant::Ps(s) => {
                if let Some(r) = ps_resource(res) {
                    s.insert_raw(r, key, raw, now);
                }
            }
            Tenant::Imp(s) => {
                if let (Some(o), Ok(id)) = (imp_object(&s.mapping, res), key.parse::<i64>()) {
                    s.insert_raw(&o, id, raw, now);
                }
            }
        }
    }
}

impl SimState {
    /// Sends the event for a changed record to the configured receiver (in the
    /// background; a receiver that is down only misses it, as with a real PRM).
    fn notify(&self, res: Res, key: &str, change: &str) {
        let (n, flavor, seq) = {
            let g = self.lock();
            let Some(n) = g.opts.notify.clone() else {
                return;
            };
            (n, g.opts.flavor, g.ledger.len() + g.clock as usize)
        };
        let id = format!(
            "evt_{}_{seq}",
            key.replace(|c: char| !c.is_ascii_alphanumeric(), "")
        );
        let event = match flavor {
            Flavor::Partnerstack => {
                let kind = match res {
                    Res::Partners => "partnership",
                    Res::Customers => "customer",
                    Res::Deals => "deal",
                    Res::Rewards => "reward",
                    _ => "transaction",
                };
                json!({"id": id, "event": format!("{kind}.{change}"), "data": {"key": key}})
            }
            Flavor::Impartner => {
                let object = {
                    let g = self.lock();
                    match &g.tenant {
                        Tenant::Imp(s) => imp_object(&s.mapping, res).unwrap_or_default(),
                        Tenant::Ps(_) => String::new(),
                    }
                };
                json!({"event_id": id, "event": change, "object": object,
                       "id": key.parse::<i64>().ok(),
                       "updated": chrono::Utc::now().to_rfc3339()})
            }
        };
        let sig_id = id.clone();
        tokio::spawn(async move {
            let _ = webhook::send(&n.url, &n.mode, &n.secret, &event, &sig_id).await;
        });
    }
}

fn ps_resource(r: Res) -> Option<ps::Resource> {
    ps::Resource::from_segment(r.ps_name())
}

/// The tenant object a resource lives in.
fn imp_object(m: &Mapping, r: Res) -> Option<String> {
    Some(match r {
        Res::Partners => m.account_object.clone(),
        Res::Deals => m.opportunity_object.clone(),
        Res::Transactions => m.sale_object.clone(),
        Res::Rewards => m.commission_object.clone(),
        _ => return None,
    })
}

/// Serves the simulator on `listener` until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, state: SimState) -> std::io::Result<()> {
    axum::serve(listener, router(state)).await
}

pub fn router(state: SimState) -> Router {
    let api = match state.flavor() {
        Flavor::Partnerstack => Router::new()
            .route(
                "/api/v2/rewards",
                get(ps_rewards_list).post(ps_create_reward),
            )
            .route("/api/v2/{res}", get(ps_list))
            .route("/api/v2/{res}/{key}", get(ps_get)),
        Flavor::Impartner => Router::new()
            .route("/api/objects/v1/{obj}", get(imp_list).post(imp_create))
            .route("/api/objects/v1/{obj}/{id}", get(imp_get).patch(imp_patch)),
    };
    api.route("/_sim/ledger", get(ledger))
        .route("/_sim/admin/faults", post(admin_faults))
        .route("/_sim/admin/transactions/{key}", post(admin_mutate))
        .route("/_sim/admin/rewards/{key}", post(admin_reward))
        .route("/_sim/admin/create/{n}", post(admin_create))
        .route("/_sim/admin/raw/{res}/{key}", post(admin_raw))
        .with_state(state)
}

// ---------------------------------------------------------------- responses and faults

enum BodyFault {
    None,
    Reset,
    Truncate,
    Malformed,
}

fn respond(status: StatusCode, body: Vec<u8>, fault: BodyFault) -> Response {
    let body = match fault {
        BodyFault::None => HttpBody::from(body),
        BodyFault::Malformed => {
            let n = body.len() / 2;
            let mut b = body[..n].to_vec();
            b.extend_from_slice(b"\x00}]oops");
            HttpBody::from(b)
        }
        BodyFault::Reset | BodyFault::Truncate => {
            let keep = if matches!(fault, BodyFault::Reset) {
                0
            } else {
                body.len() / 3
            };
            let head = Bytes::from(body[..keep].to_vec());
            let stream = futures::stream::iter(vec![
                Ok::<Bytes, std::io::Error>(head),
                Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "simulated reset",
                )),
            ]);
            HttpBody::from_stream(stream)
        }
    };
    let mut r = Response::new(body);
    *r.status_mut() = status;
    r.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    r
}

fn json_resp(status: StatusCode, v: &Value) -> Response {
    respond(
        status,
        serde_json::to_vec(v).unwrap_or_default(),
        BodyFault::None,
    )
}

/// What happens to this request before it is handled.
enum Pre {
    Go,
    Reply(Response),
}

fn pre_faults(g: &mut Inner) -> Pre {
    g.requests += 1;
    let f = g.faults.clone();
    if f.rate_limit > 0.0 && g.rng.gen_bool(f.rate_limit) {
        let retry = if g.rng.gen_bool(0.5) {
            "0".to_string()
        } else {
            httpdate::fmt_http_date(std::time::SystemTime::now())
        };
        let mut r = json_resp(
            StatusCode::TOO_MANY_REQUESTS,
            &json!({"error": "rate_limited", "message": "too many requests"}),
        );
        if let Ok(h) = HeaderValue::from_str(&retry) {
            r.headers_mut().insert("retry-after", h);
        }
        return Pre::Reply(r);
    }
    if f.server_error > 0.0 && g.rng.gen_bool(f.server_error) {
        let code = [500u16, 502, 503][g.rng.gen_range(0..3)];
        return Pre::Reply(json_resp(
            StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            &json!({"error": "server_error"}),
        ));
    }
    Pre::Go
}

fn body_fault(g: &mut Inner) -> BodyFault {
    let f = g.faults.clone();
    if f.reset > 0.0 && g.rng.gen_bool(f.reset) {
        BodyFault::Reset
    } else if f.truncate > 0.0 && g.rng.gen_bool(f.truncate) {
        BodyFault::Truncate
    } else if f.malformed > 0.0 && g.rng.gen_bool(f.malformed) {
        BodyFault::Malformed
    } else {
        BodyFault::None
    }
}

async fn latency(st: &SimState) {
    let ms = st.lock().faults.latency_ms;
    if ms > 0 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
}

fn unauthorized(msg: &str) -> Response {
    json_resp(
        StatusCode::UNAUTHORIZED,
        &json!({"error": "unauthorized", "message": msg}),
    )
}

#[allow(clippy::result_large_err)]
fn check_auth(g: &Inner, headers: &HeaderMap) -> Result<(), Response> {
    let auth = headers
        .get("authorization")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    match g.opts.flavor {
        Flavor::Partnerstack => {
            let want = base64::engine::general_purpose::STANDARD.encode(&g.opts.token);
            if auth.strip_prefix("Basic ") != Some(want.as_str()) {
                return Err(unauthorized("invalid API key pair"));
            }
        }
        Flavor::Impartner => {
            // `prm-key KEY`, or Basic with the integration user of a `basic:user:pass`
            // token.
            let ok =
                match auth.strip_prefix("Basic ") {
                    Some(b) => g.opts.token.strip_prefix("basic:").is_some_and(|up| {
                        base64::engine::general_purpose::STANDARD.encode(up) == b
                    }),
                    None => auth.strip_prefix("prm-key ") == Some(g.opts.token.as_str()),
                };
            if !ok {
                return Err(unauthorized("invalid prm-key"));
            }
            let tenant = headers
                .get(TENANT_HEADER)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("");
            let Ok(id) = crate::prm::impartner::parse_tenant(tenant) else {
                return Err(json_resp(
                    StatusCode::BAD_REQUEST,
                    &serde_json::to_value(crate::prm::impartner::ErrorBody::new(
                        400,
                        &format!("{TENANT_HEADER} must be an integer tenant id"),
                    ))
                    .unwrap_or_default(),
                ));
            };
            if crate::prm::impartner::parse_tenant(&g.opts.tenant).ok() != Some(id) {
                return Err(unauthorized("unknown tenant"));
            }
        }
    }
    Ok(())
}

fn bad_request(msg: String) -> Response {
    json_resp(
        StatusCode::BAD_REQUEST,
        &json!({"error": "bad_request", "message": msg}),
    )
}

fn imp_error(status: u16, msg: &str) -> Response {
    json_resp(
        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
        &serde_json::to_value(imp::ErrorBody::new(status, msg)).unwrap_or_default(),
    )
}

/// Runs auth, counting and the pre-handling faults; `Err` is the response to send.
#[allow(clippy::result_large_err)]
fn admit(g: &mut Inner, headers: &HeaderMap) -> Result<(), Response> {
    check_auth(g, headers)?;
    match pre_faults(g) {
        Pre::Go => Ok(()),
        Pre::Reply(r) => Err(r),
    }
}

/// [`admit`] for a write: the `write5xx` fault refuses it with a 503 before anything is
/// applied.
#[allow(clippy::result_large_err)]
fn admit_write(g: &mut Inner, headers: &HeaderMap) -> Result<(), Response> {
    admit(g, headers)?;
    let p = g.faults.write_error;
    if p > 0.0 && g.rng.gen_bool(p) {
        return Err(json_resp(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"error": "server_error", "message": "writes are unavailable"}),
        ));
    }
    Ok(())
}

/// The duplicated-items fault: which of `n` items to repeat, and where.
fn duplicate_at(g: &mut Inner, n: usize) -> Option<(usize, usize)> {
    let p = g.faults.duplicate;
    if p > 0.0 && n > 0 && g.rng.gen_bool(p) {
        let i = g.rng.gen_range(0..n);
        let at = g.rng.gen_range(0..=n);
        Some((i, at))
    } else {
        None
    }
}

// ---------------------------------------------------------------- PartnerStack

async fn ps_rewards_list(
    st: State<SimState>,
    q: Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    ps_list(st, Path("rewards".to_string()), q, headers).await
}

async fn ps_list(
    State(st): State<SimState>,
    Path(res): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    latency(&st).await;
    let mut g = st.lock();
    if let Err(r) = admit(&mut g, &headers) {
        return r;
    }
    let Some(res) = ps::Resource::from_segment(&res) else {
        return json_resp(StatusCode::NOT_FOUND, &json!({"error": "not_found"}));
    };
    let q = match ps::ListQuery::parse(res, &q) {
        Ok(q) => q,
        Err(e) => return bad_request(e),
    };
    let Tenant::Ps(store) = &g.tenant else {
        return json_resp(StatusCode::NOT_FOUND, &json!({"error": "not_found"}));
    };
    let (page, has_more) = match store.list(res, &q, false) {
        Ok(x) => x,
        Err(e) => return bad_request(e),
    };
    // Serialised straight from the records into one buffer (no `Value` per item).
    let mut buf = Vec::with_capacity(page.len() * 400);
    let mut spans = Vec::with_capacity(page.len() + 1);
    for it in page {
        let from = buf.len();
        it.write(&mut buf);
        spans.push(from..buf.len());
    }
    if let Some((i, at)) = duplicate_at(&mut g, spans.len()) {
        let dup = spans[i].clone();
        spans.insert(at, dup);
    }
    let fault = body_fault(&mut g);
    drop(g);
    let mut body = Vec::with_capacity(buf.len() + spans.len() + 64);
    body.extend_from_slice(b"{\"data\":{\"items\":[");
    for (n, s) in spans.into_iter().enumerate() {
        if n > 0 {
            body.push(b',');
        }
        body.extend_from_slice(&buf[s]);
    }
    body.extend_from_slice(if has_more {
        b"],\"has_more\":true}}"
    } else {
        b"],\"has_more\":false}}"
    });
    respond(StatusCode::OK, body, fault)
}

async fn ps_get(
    State(st): State<SimState>,
    Path((res, key)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    latency(&st).await;
    let mut g = st.lock();
    if let Err(r) = admit(&mut g, &headers) {
        return r;
    }
    let item = match (&g.tenant, ps::Resource::from_segment(&res)) {
        (Tenant::Ps(s), Some(r)) => s.get(r, &key).map(partnerstack::Item::to_value),
        _ => None,
    };
    match item {
        Some(v) => {
            let fault = body_fault(&mut g);
            respond(
                StatusCode::OK,
                serde_json::to_vec(&json!({ "data": v })).unwrap_or_default(),
                fault,
            )
        }
        None => json_resp(StatusCode::NOT_FOUND, &json!({"error": "not_found"})),
    }
}

/// The "lost" fault on a write: applied, then the connection drops.
fn write_fault(g: &mut Inner) -> BodyFault {
    let lost = g.faults.lost;
    if lost > 0.0 && g.rng.gen_bool(lost) {
        BodyFault::Reset
    } else {
        body_fault(g)
    }
}

async fn ps_create_reward(State(st): State<SimState>, headers: HeaderMap, body: Bytes) -> Response {
    latency(&st).await;
    let mut g = st.lock();
    if let Err(r) = admit_write(&mut g, &headers) {
        return r;
    }
    let b: ps::CreateReward = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return bad_request(format!("body: {e}")),
    };
    let now = g.now();
    let g = &mut *g;
    let Tenant::Ps(store) = &mut g.tenant else {
        return json_resp(StatusCode::NOT_FOUND, &json!({"error": "not_found"}));
    };
    let reward = match store.create_reward(&b, now) {
        Ok(r) => r,
        Err(e) => return bad_request(e),
    };
    let seq = g.ledger.len() as u64 + 1;
    g.ledger.push(LedgerEntry {
        seq,
        record: reward.key.clone(),
        transaction_id: b.transaction_key.clone().unwrap_or_default(),
        action: "adjust".into(),
        amount_cents: Some(b.amount),
        reason: Some(b.description.clone()),
        decision_id: dataset::decision_in_description(&b.description),
        audit_head: None,
    });
    let fault = write_fault(g);
    respond(
        StatusCode::OK,
        serde_json::to_vec(&json!({ "data": reward })).unwrap_or_default(),
        fault,
    )
}

// ---------------------------------------------------------------- Impartner

fn imp_ok(data: Value, fault: BodyFault) -> Response {
    respond(
        StatusCode::OK,
        serde_json::to_vec(&json!({"success": true, "data": data})).unwrap_or_default(),
        fault,
    )
}

/// What an Impartner write shares: the write faults, the JSON body, the tenant; `f`
/// applies it. The record written and the body, or the response to send.
#[allow(clippy::result_large_err)]
fn imp_write(
    g: &mut Inner,
    headers: &HeaderMap,
    body: &Bytes,
    f: impl FnOnce(
        &mut impartner::Store,
        &serde_json::Map<String, Value>,
        i64,
    ) -> Result<Value, (u16, String)>,
) -> Result<(Value, serde_json::Map<String, Value>), Response> {
    admit_write(g, headers)?;
    let b: serde_json::Map<String, Value> =
        serde_json::from_slice(body).map_err(|e| imp_error(400, &format!("body: {e}")))?;
    let now = g.now();
    let Tenant::Imp(store) = &mut g.tenant else {
        return Err(imp_error(404, "not found"));
    };
    let rec = f(store, &b, now).map_err(|(code, e)| imp_error(code, &e))?;
    Ok((rec, b))
}

/// Creates a record (the `prm` alert channel's tasks); in the ledger as `task`.
async fn imp_create(
    State(st): State<SimState>,
    Path(obj): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    latency(&st).await;
    let mut g = st.lock();
    let (rec, b) = match imp_write(&mut g, &headers, &body, |s, b, now| s.create(&obj, b, now)) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let g = &mut *g;
    let t = crate::prm::impartner::TaskMapping::default();
    let s = |k: &str| b.get(k).and_then(Value::as_str).map(str::to_string);
    let seq = g.ledger.len() as u64 + 1;
    g.ledger.push(LedgerEntry {
        seq,
        record: format!(
            "{obj}/{}",
            rec.get("id").and_then(Value::as_i64).unwrap_or_default()
        ),
        transaction_id: s(&t.transaction).unwrap_or_default(),
        action: "task".into(),
        amount_cents: None,
        reason: s(&t.body),
        decision_id: s(&t.alert_id),
        audit_head: None,
    });
    let fault = write_fault(g);
    imp_ok(json!({"count": 1, "entity": obj, "results": [rec]}), fault)
}

async fn imp_list(
    State(st): State<SimState>,
    Path(obj): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    latency(&st).await;
    let mut g = st.lock();
    if let Err(r) = admit(&mut g, &headers) {
        return r;
    }
    let ignore_skip = g.opts.ignore_skip;
    let Tenant::Imp(store) = &mut g.tenant else {
        return imp_error(404, "not found");
    };
    if obj == "_describe" {
        let d = store.describe_all();
        let fault = body_fault(&mut g);
        return imp_ok(d, fault);
    }
    let q = match imp::ListQuery::parse(&q) {
        Ok(q) => q,
        Err(e) => return imp_error(400, &e),
    };
    let (mut results, count) = match store.list(&obj, &q, ignore_skip) {
        Ok(x) => x,
        Err((code, e)) => return imp_error(code, &e),
    };
    if let Some((i, at)) = duplicate_at(&mut g, results.len()) {
        let dup = results[i].clone();
        results.insert(at, dup);
    }
    let fault = body_fault(&mut g);
    drop(g);
    imp_ok(
        json!({"count": count, "entity": obj, "results": results}),
        fault,
    )
}

async fn imp_get(
    State(st): State<SimState>,
    Path((obj, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    latency(&st).await;
    let mut g = st.lock();
    if let Err(r) = admit(&mut g, &headers) {
        return r;
    }
    let Tenant::Imp(store) = &g.tenant else {
        return imp_error(404, "not found");
    };
    let found = if id == "_describe" {
        store.describe(&obj)
    } else {
        match id.parse::<i64>() {
            Ok(n) => store.get(&obj, n),
            Err(_) => return imp_error(400, &format!("id `{id}` is not an integer")),
        }
    };
    match found {
        Some(v) => {
            let fault = body_fault(&mut g);
            imp_ok(v, fault)
        }
        None => imp_error(404, &format!("{obj} {id} not found")),
    }
}

async fn imp_patch(
    State(st): State<SimState>,
    Path((obj, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    latency(&st).await;
    let mut g = st.lock();
    let Ok(id) = id.parse::<i64>() else {
        return imp_error(400, &format!("id `{id}` is not an integer"));
    };
    let (rec, b) = match imp_write(&mut g, &headers, &body, |s, b, now| {
        s.patch(&obj, id, b, now)
    }) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let g = &mut *g;
    let Tenant::Imp(store) = &g.tenant else {
        return imp_error(404, "not found");
    };
    let m = &store.mapping;
    let s = |k: &str| b.get(k).and_then(Value::as_str).map(str::to_string);
    let sale = rec
        .get(&m.commission_sale)
        .and_then(|v| v.get("id").and_then(Value::as_i64).or_else(|| v.as_i64()))
        .map(|i| i.to_string())
        .unwrap_or_else(|| id.to_string());
    let amount = b
        .get(&m.write_amount)
        .cloned()
        .and_then(|v| crate::prm::de_decimal_number(v).ok().flatten())
        .and_then(|d| (d * Decimal::ONE_HUNDRED).round().try_into().ok());
    let seq = g.ledger.len() as u64 + 1;
    g.ledger.push(LedgerEntry {
        seq,
        record: format!("{obj}/{id}"),
        transaction_id: sale,
        // A write without a decision but with the processing status is a status write.
        action: s(&m.write_decision).unwrap_or_else(|| {
            if b.contains_key(&m.write_processing_status) {
                "status".into()
            } else {
                "patch".into()
            }
        }),
        amount_cents: amount,
        reason: s(&m.write_reason),
        decision_id: s(&m.write_decision_id),
        audit_head: s(&m.write_audit_head),
    });
    let fault = write_fault(g);
    imp_ok(rec, fault)
}

// ---------------------------------------------------------------- test/admin endpoints

async fn ledger(State(st): State<SimState>) -> Response {
    json_resp(StatusCode::OK, &json!(st.ledger()))
}

async fn admin_faults(State(st): State<SimState>, body: String) -> Response {
    match Faults::parse(&body) {
        Ok(f) => {
            st.set_faults(f.clone());
            json_resp(StatusCode::OK, &json!(f))
        }
        Err(e) => bad_request(e),
    }
}

#[derive(Deserialize)]
struct MutateBody {
    amount: Decimal,
}

async fn admin_mutate(
    State(st): State<SimState>,
    Path(key): Path<String>,
    body: Bytes,
) -> Response {
    let b: MutateBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return bad_request(format!("body: {e}")),
    };
    if st.mutate_sale(&key, b.amount) {
        st.notify(Res::Transactions, &key, "updated");
        let v = st.record(Res::Transactions, &key).unwrap_or(Value::Null);
        json_resp(StatusCode::OK, &json!({ "data": v }))
    } else {
        json_resp(StatusCode::NOT_FOUND, &json!({"error": "not_found"}))
    }
}

#[derive(Deserialize)]
struct RewardBody {
    status: String,
    #[serde(default)]
    reason: Option<String>,
}

/// The PRM's own review screen: set a reward's status.
async fn admin_reward(
    State(st): State<SimState>,
    Path(key): Path<String>,
    body: Bytes,
) -> Response {
    let b: RewardBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return bad_request(format!("body: {e}")),
    };
    if st.set_reward_status(&key, &b.status, b.reason) {
        st.notify(Res::Rewards, &key, "updated");
        json_resp(StatusCode::OK, &json!({"ok": true}))
    } else {
        json_resp(StatusCode::NOT_FOUND, &json!({"error": "not_found"}))
    }
}

async fn admin_create(State(st): State<SimState>, Path(n): Path<usize>) -> Response {
    let keys = st.create_transactions(n.min(1_000_000));
    for k in keys.iter().take(100) {
        st.notify(Res::Transactions, k, "created");
    }
    json_resp(StatusCode::OK, &json!({ "created": keys }))
}

async fn admin_raw(
    State(st): State<SimState>,
    Path((res, key)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let Some(res) = Res::from_ps(&res).or_else(|| Res::from_imp(&res)) else {
        return json_resp(StatusCode::NOT_FOUND, &json!({"error": "not_found"}));
    };
    match serde_json::from_slice::<Value>(&body) {
        Ok(v) => {
            st.insert_raw(res, &key, v);
            json_resp(StatusCode::OK, &json!({"ok": true}))
        }
        Err(e) => bad_request(format!("body: {e}")),
    }
}
