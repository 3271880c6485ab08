//! PRM simulator (PartnerStack and Impartner flavours) over real HTTP.
//!
//! - `partnerstack`: `/api/v2/{partnerships,customers,deals,transactions,rewards,flags}`,
//!   envelope `{"data":{"items":[..],"has_more":bool}}`, `starting_after`/`limit` (1-250),
//!   `min_updated` (epoch ms), integer cents, epoch-ms timestamps, HTTP Basic auth with a
//!   key pair (`public:secret`). Decisions: `POST /api/v2/transactions/{key}/review`
//!   with `If-Match: <version>`.
//! - `impartner`: `/api/objects/v1/{Partner,Customer,Deal,Transaction,Commission,Flag}`,
//!   `skip`/`take` (1-1000), `fields`, `filter=updatedMs ge N`,
//!   `{"data":{"count":..,"results":[..]},"success":true}`, `Authorization: prm-key T`
//!   plus `X-PRM-Tenant`. Decisions: `PATCH /api/objects/v1/Transaction/{id}` with
//!   `recordVersion` in the body.
//!
//! Writes honour `Idempotency-Key` (same key, same stored response, applied once),
//! refuse a stale version (409 / 412 with the current record) and a sign-off whose
//! approver is the proposer (403). Every applied write is appended to a ledger
//! (`GET /_sim/ledger`). `POST /_sim/admin/...` mutates records server-side, inserts raw
//! (malformed) items and changes the fault settings. Faults: latency, 5xx, connection
//! resets, truncated bodies, malformed JSON, duplicated page items, 429 + Retry-After and
//! "lost" writes (applied, then the connection drops).

pub mod data;
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

use crate::model::{CommissionLine, CommissionRole, Dataset};
use data::{Body, Db, Rec, Res, Reward};

pub use crate::prm::Flavor;

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
}

impl Faults {
    /// Parses `latency=5,5xx=0.1,reset=0.05,truncate=0.05,malformed=0.05,dup=0.1,429=0.1,lost=0.5`.
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
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            flavor: Flavor::Partnerstack,
            token: DEFAULT_TOKEN.to_string(),
            tenant: DEFAULT_TENANT.to_string(),
            faults: Faults::default(),
            seed: 1,
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
    pub idempotency_key: String,
    pub transaction_id: String,
    pub action: String,
    pub amount_cents: Option<i64>,
    pub reason: Option<String>,
    pub audit_head: Option<String>,
}

struct Stored {
    status: u16,
    body: Vec<u8>,
}

struct Inner {
    opts: SimOptions,
    db: Db,
    faults: Faults,
    rng: ChaCha8Rng,
    idem: HashMap<String, Stored>,
    ledger: Vec<LedgerEntry>,
    requests: u64,
}

/// Shared simulator state (cheap to clone).
#[derive(Clone)]
pub struct SimState(Arc<Mutex<Inner>>);

impl SimState {
    pub fn new(ds: &Dataset, opts: SimOptions) -> SimState {
        SimState::from_db(Db::from_dataset(ds), opts)
    }

    pub fn from_db(db: Db, opts: SimOptions) -> SimState {
        SimState(Arc::new(Mutex::new(Inner {
            rng: ChaCha8Rng::seed_from_u64(opts.seed),
            faults: opts.faults.clone(),
            opts,
            db,
            idem: HashMap::new(),
            ledger: Vec::new(),
            requests: 0,
        })))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panicking handler must not take the simulator down with it.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn ledger(&self) -> Vec<LedgerEntry> {
        self.lock().ledger.clone()
    }

    pub fn set_faults(&self, f: Faults) {
        self.lock().faults = f;
    }

    pub fn requests(&self) -> u64 {
        self.lock().requests
    }

    /// The record as the flavour would serve it.
    pub fn record(&self, res: Res, key: &str) -> Option<Value> {
        let g = self.lock();
        let rec = g.db.coll(res).get(key)?;
        Some(match g.opts.flavor {
            Flavor::Partnerstack => data::ps_json(rec),
            Flavor::Impartner => data::imp_json(rec),
        })
    }

    /// Server-side change of a transaction (another user editing it in the PRM).
    pub fn mutate_transaction(
        &self,
        key: &str,
        notes: Option<String>,
        amount: Option<Decimal>,
    ) -> bool {
        let mut g = self.lock();
        let updated = g.db.tick();
        let coll = g.db.coll_mut(Res::Transactions);
        let Some(rec) = coll.get(key).cloned() else {
            return false;
        };
        let mut rec: Rec = rec;
        if let Body::Tx(t) = &mut rec.body {
            if let Some(n) = notes {
                t.notes = Some(n);
            }
            if let Some(a) = amount {
                t.amount = a;
            }
        }
        rec.version += 1;
        rec.updated = updated;
        coll.insert(rec);
        true
    }

    /// Server-side change of a reward's status (the PRM paying out, holding or declining
    /// it); bumps its version and updated time. False when there is no such reward.
    pub fn set_reward_status(&self, key: &str, status: &str, reason: Option<String>) -> bool {
        let mut g = self.lock();
        let updated = g.db.tick();
        let coll = g.db.coll_mut(Res::Rewards);
        let Some(mut rec) = coll.get(key).cloned() else {
            return false;
        };
        let Body::Reward(rw) = &mut rec.body else {
            return false;
        };
        rw.status = status.to_string();
        rw.decline_reason = reason;
        rec.version += 1;
        rec.updated = updated;
        coll.insert(rec);
        true
    }

    /// Inserts an item verbatim (a malformed record the PRM serves).
    pub fn insert_raw(&self, res: Res, key: &str, raw: Value) {
        let mut g = self.lock();
        g.db.put(res, key.to_string(), Body::Raw(raw));
    }
}

/// Serves the simulator on `listener` until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, state: SimState) -> std::io::Result<()> {
    axum::serve(listener, router(state)).await
}

pub fn router(state: SimState) -> Router {
    let flavor = state.lock().opts.flavor;
    let api = match flavor {
        Flavor::Partnerstack => Router::new()
            .route("/api/v2/{res}", get(ps_list))
            .route("/api/v2/{res}/{key}", get(ps_get))
            .route("/api/v2/transactions/{key}/review", post(ps_review)),
        Flavor::Impartner => Router::new()
            .route("/api/objects/v1/{obj}", get(imp_list))
            .route("/api/objects/v1/{obj}/{id}", get(imp_get).patch(imp_patch)),
    };
    api.route("/_sim/ledger", get(ledger))
        .route("/_sim/admin/faults", post(admin_faults))
        .route("/_sim/admin/transactions/{key}", post(admin_mutate))
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
            if auth.strip_prefix("prm-key ") != Some(g.opts.token.as_str()) {
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
        &json!({"error": "bad_request", "message": msg, "success": false}),
    )
}

// ---------------------------------------------------------------- reads

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

fn maybe_duplicate(g: &mut Inner, items: &mut Vec<Value>) {
    if let Some((i, at)) = duplicate_at(g, items.len()) {
        let dup = items[i].clone();
        items.insert(at, dup);
    }
}

async fn ps_list(
    State(st): State<SimState>,
    Path(res): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    latency(&st).await;
    let mut g = st.lock();
    if let Err(r) = check_auth(&g, &headers) {
        return r;
    }
    if let Pre::Reply(r) = pre_faults(&mut g) {
        return r;
    }
    let Some(res) = Res::from_ps(&res) else {
        return json_resp(StatusCode::NOT_FOUND, &json!({"error": "not_found"}));
    };
    let limit = match q.get("limit").map(|s| s.parse::<usize>()) {
        None => 25,
        Some(Ok(n)) if (1..=250).contains(&n) => n,
        _ => return bad_request("limit must be between 1 and 250".into()),
    };
    let min_updated = match q.get("min_updated").map(|s| s.parse::<i64>()) {
        None => None,
        Some(Ok(n)) => Some(n),
        Some(Err(_)) => return bad_request("min_updated must be epoch milliseconds".into()),
    };
    let coll = g.db.coll(res);
    let start: (i64, String) = match (q.get("starting_after"), min_updated) {
        (Some(k), Some(u)) => (u, k.clone()),
        (Some(k), None) => match coll.get(k) {
            Some(r) => (r.updated, r.key.clone()),
            None => return bad_request(format!("starting_after: no item `{k}`")),
        },
        (None, Some(u)) => (u, String::new()),
        (None, None) => (i64::MIN, String::new()),
    };
    let (page, has_more) = coll.after(start.0, &start.1, limit);
    // Serialised straight from the records into one buffer (no `Value` per item).
    let mut buf = Vec::with_capacity(page.len() * 512);
    let mut spans = Vec::with_capacity(page.len() + 1);
    for rec in page {
        let from = buf.len();
        data::ps_write(rec, &mut buf);
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
    if let Err(r) = check_auth(&g, &headers) {
        return r;
    }
    if let Pre::Reply(r) = pre_faults(&mut g) {
        return r;
    }
    let rec = Res::from_ps(&res).and_then(|r| g.db.coll(r).get(&key).map(data::ps_json));
    match rec {
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

fn parse_filter(f: &str) -> Result<i64, String> {
    let parts: Vec<&str> = f.split_whitespace().collect();
    match parts.as_slice() {
        ["updatedMs", "ge", n] => n
            .parse()
            .map_err(|_| format!("filter: `{n}` is not a number")),
        ["updated", "ge", t] => chrono::DateTime::parse_from_rfc3339(t)
            .map(|d| d.timestamp_millis())
            .map_err(|_| format!("filter: `{t}` is not an ISO timestamp")),
        _ => Err(format!(
            "filter `{f}` not supported (use `updatedMs ge N` or `updated ge ISO`)"
        )),
    }
}

async fn imp_list(
    State(st): State<SimState>,
    Path(obj): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    latency(&st).await;
    let mut g = st.lock();
    if let Err(r) = check_auth(&g, &headers) {
        return r;
    }
    if let Pre::Reply(r) = pre_faults(&mut g) {
        return r;
    }
    let Some(res) = Res::from_imp(&obj) else {
        return json_resp(
            StatusCode::NOT_FOUND,
            &json!({"success": false, "message": format!("unknown object {obj}")}),
        );
    };
    let take = match q.get("take").map(|s| s.parse::<usize>()) {
        None => 100,
        Some(Ok(n)) if (1..=1000).contains(&n) => n,
        _ => return bad_request("take must be between 1 and 1000".into()),
    };
    let skip = match q.get("skip").map(|s| s.parse::<usize>()) {
        None => 0,
        Some(Ok(n)) => n,
        _ => return bad_request("skip must be a number".into()),
    };
    let min = match q.get("filter").map(|f| parse_filter(f)) {
        None => i64::MIN,
        Some(Ok(n)) => n,
        Some(Err(e)) => return bad_request(e),
    };
    let fields: Option<Vec<&str>> = q.get("fields").map(|f| f.split(',').collect());
    let (page, count) = g.db.coll(res).from_updated(min, skip, take);
    let mut results: Vec<Value> = page
        .into_iter()
        .map(|r| {
            let mut v = data::imp_json(r);
            if let (Some(fields), Some(o)) = (&fields, v.as_object_mut()) {
                o.retain(|k, _| k == "id" || fields.contains(&k.as_str()));
            }
            v
        })
        .collect();
    maybe_duplicate(&mut g, &mut results);
    let fault = body_fault(&mut g);
    drop(g);
    let body =
        serde_json::to_vec(&json!({"data": {"count": count, "results": results}, "success": true}))
            .unwrap_or_default();
    respond(StatusCode::OK, body, fault)
}

async fn imp_get(
    State(st): State<SimState>,
    Path((obj, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    latency(&st).await;
    let mut g = st.lock();
    if let Err(r) = check_auth(&g, &headers) {
        return r;
    }
    if let Pre::Reply(r) = pre_faults(&mut g) {
        return r;
    }
    let rec = Res::from_imp(&obj).and_then(|r| g.db.coll(r).get(&id).map(data::imp_json));
    match rec {
        Some(v) => {
            let fault = body_fault(&mut g);
            respond(
                StatusCode::OK,
                serde_json::to_vec(&json!({"data": v, "success": true})).unwrap_or_default(),
                fault,
            )
        }
        None => json_resp(
            StatusCode::NOT_FOUND,
            &json!({"success": false, "message": "not found"}),
        ),
    }
}

// ---------------------------------------------------------------- writes

/// A decision as the PRM receives it (both flavours map onto this).
#[derive(Debug, Clone, Default)]
pub struct Review {
    /// hold | approve | decline | adjust
    pub action: String,
    pub reason: Option<String>,
    /// adjust: the decided commission total for the transaction, in cents.
    pub amount_cents: Option<i64>,
    pub proposer: Option<String>,
    pub approver: Option<String>,
}

#[derive(Deserialize)]
struct PsReviewBody {
    action: String,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    amount: Option<i64>,
    #[serde(default)]
    proposer: Option<String>,
    #[serde(default)]
    approver: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ImpReviewBody {
    action: String,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    amount: Option<Decimal>,
    #[serde(default)]
    proposer: Option<String>,
    #[serde(default)]
    approver: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ImpPatchBody {
    record_version: Option<i64>,
    review: ImpReviewBody,
}

struct WriteCtx<'a> {
    key: String,
    idem: Option<String>,
    audit_head: Option<String>,
    version: Option<i64>,
    review: Review,
    headers: &'a HeaderMap,
}

/// Handles one write with idempotency, version check, four-eyes and the ledger.
async fn write(st: &SimState, w: WriteCtx<'_>) -> Response {
    latency(st).await;
    let mut g = st.lock();
    if let Err(r) = check_auth(&g, w.headers) {
        return r;
    }
    if let Pre::Reply(r) = pre_faults(&mut g) {
        return r;
    }
    let flavor = g.opts.flavor;
    let (status, body) = match w.idem.as_ref().and_then(|k| g.idem.get(k)) {
        Some(s) => (s.status, s.body.clone()),
        None => {
            let (status, v) = apply(&mut g, &w);
            let body = serde_json::to_vec(&v).unwrap_or_default();
            if let Some(k) = &w.idem {
                g.idem.insert(
                    k.clone(),
                    Stored {
                        status,
                        body: body.clone(),
                    },
                );
            }
            (status, body)
        }
    };
    let _ = flavor;
    let lost = g.faults.lost;
    let fault = if lost > 0.0 && g.rng.gen_bool(lost) {
        BodyFault::Reset
    } else {
        body_fault(&mut g)
    };
    respond(
        StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
        body,
        fault,
    )
}

fn apply(g: &mut Inner, w: &WriteCtx<'_>) -> (u16, Value) {
    let flavor = g.opts.flavor;
    let render = |r: &Rec| match flavor {
        Flavor::Partnerstack => data::ps_json(r),
        Flavor::Impartner => data::imp_json(r),
    };
    let Some(tx) = g.db.coll(Res::Transactions).get(&w.key).cloned() else {
        return (
            404,
            json!({"error": "not_found", "success": false, "message": format!("no transaction {}", w.key)}),
        );
    };
    if let Some(v) = w.version {
        if v != tx.version {
            let code = match flavor {
                Flavor::Partnerstack => 409,
                Flavor::Impartner => 412,
            };
            return (
                code,
                json!({"error": "version_conflict", "success": false,
                       "message": format!("record version {v} is stale; current is {}", tx.version),
                       "data": render(&tx)}),
            );
        }
    }
    let r = &w.review;
    if let (Some(p), Some(a)) = (&r.proposer, &r.approver) {
        if p.trim().eq_ignore_ascii_case(a.trim()) {
            return (
                403,
                json!({"error": "four_eyes_violation", "success": false,
                       "message": format!("sign-off refused: approver {a} is the proposer")}),
            );
        }
    }
    let (status, reason) = match r.action.as_str() {
        "approve" => ("approved", None),
        "hold" => ("hold", None),
        "decline" => match &r.reason {
            Some(reason) if !reason.trim().is_empty() => ("declined", Some(reason.clone())),
            _ => {
                return (
                    422,
                    json!({"error": "reason_required", "success": false,
                           "message": "a decline needs a reason"}),
                )
            }
        },
        "adjust" => ("approved", None),
        other => {
            return (
                422,
                json!({"error": "unknown_action", "success": false,
                       "message": format!("unknown action `{other}`")}),
            )
        }
    };
    // The transaction's rewards.
    let keys: Vec<String> =
        g.db.coll(Res::Rewards)
            .recs
            .iter()
            .filter(|rec| matches!(&rec.body, Body::Reward(rw) if rw.line.transaction_id == w.key))
            .map(|rec| rec.key.clone())
            .collect();
    let mut current = 0i64;
    let mut template: Option<CommissionLine> = None;
    for k in &keys {
        let Some(mut rec) = g.db.coll(Res::Rewards).get(k).cloned() else {
            continue;
        };
        if let Body::Reward(rw) = &mut rec.body {
            if rw.status != "declined" {
                current += data::cents(rw.line.amount);
            }
            if template.is_none() || rw.line.role == CommissionRole::Seller {
                template = Some(rw.line.clone());
            }
            rw.status = status.to_string();
            rw.decline_reason = reason.clone();
        }
        rec.version += 1;
        rec.updated = g.db.tick();
        g.db.coll_mut(Res::Rewards).insert(rec);
    }
    let mut created = None;
    if r.action == "adjust" {
        let Some(total) = r.amount_cents else {
            return (
                422,
                json!({"error": "amount_required", "success": false,
                       "message": "an adjustment needs an amount"}),
            );
        };
        let delta = total - current;
        if delta != 0 {
            let key = format!(
                "adj_{}",
                w.idem.clone().unwrap_or_else(|| g.ledger.len().to_string())
            );
            let (payee, period) = match (&template, g.db.coll(Res::Transactions).get(&w.key)) {
                (Some(t), _) => (t.payee_partner_id.clone(), t.period.clone()),
                (
                    None,
                    Some(Rec {
                        body: Body::Tx(t), ..
                    }),
                ) => (t.partner_id.clone(), String::new()),
                _ => (String::new(), String::new()),
            };
            let line = CommissionLine {
                commission_id: key.clone(),
                transaction_id: w.key.clone(),
                payee_partner_id: payee,
                role: if delta < 0 {
                    CommissionRole::Clawback
                } else {
                    CommissionRole::Seller
                },
                amount: Decimal::new(delta, 2),
                period,
            };
            g.db.put(
                Res::Rewards,
                key.clone(),
                Body::Reward(Reward {
                    line,
                    status: "approved".into(),
                    decline_reason: None,
                }),
            );
            created = Some(key);
        }
    }
    let seq = g.ledger.len() as u64 + 1;
    g.ledger.push(LedgerEntry {
        seq,
        idempotency_key: w.idem.clone().unwrap_or_default(),
        transaction_id: w.key.clone(),
        action: r.action.clone(),
        amount_cents: r.amount_cents,
        reason: r.reason.clone(),
        audit_head: w.audit_head.clone(),
    });
    (
        200,
        json!({"success": true, "data": {"ledger_seq": seq, "transaction": render(&tx),
               "rewards_updated": keys.len(), "adjustment": created}}),
    )
}

fn header(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.to_string())
}

async fn ps_review(
    State(st): State<SimState>,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let b: PsReviewBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return bad_request(format!("body: {e}")),
    };
    let version = match header(&headers, "if-match") {
        None => None,
        Some(v) => match v.trim_matches('"').parse::<i64>() {
            Ok(n) => Some(n),
            Err(_) => return bad_request(format!("If-Match `{v}` is not a version")),
        },
    };
    let w = WriteCtx {
        key,
        idem: header(&headers, "idempotency-key"),
        audit_head: header(&headers, "x-audit-head"),
        version,
        review: Review {
            action: b.action,
            reason: b.reason,
            amount_cents: b.amount,
            proposer: b.proposer,
            approver: b.approver,
        },
        headers: &headers,
    };
    write(&st, w).await
}

async fn imp_patch(
    State(st): State<SimState>,
    Path((obj, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if obj != "Transaction" {
        return json_resp(
            StatusCode::METHOD_NOT_ALLOWED,
            &json!({"success": false, "message": format!("{obj} is read-only")}),
        );
    }
    let b: ImpPatchBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return bad_request(format!("body: {e}")),
    };
    let w = WriteCtx {
        key: id,
        idem: header(&headers, "idempotency-key"),
        audit_head: header(&headers, "x-audit-head"),
        version: b.record_version,
        review: Review {
            action: b.review.action,
            reason: b.review.reason,
            amount_cents: b.review.amount.map(data::cents),
            proposer: b.review.proposer,
            approver: b.review.approver,
        },
        headers: &headers,
    };
    write(&st, w).await
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
    #[serde(default)]
    notes: Option<String>,
    #[serde(default)]
    amount: Option<Decimal>,
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
    if st.mutate_transaction(&key, b.notes, b.amount) {
        let v = st.record(Res::Transactions, &key).unwrap_or(Value::Null);
        json_resp(StatusCode::OK, &json!({ "data": v }))
    } else {
        json_resp(StatusCode::NOT_FOUND, &json!({"error": "not_found"}))
    }
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
