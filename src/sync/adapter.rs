//! One `Prm` trait, one adapter per flavour: list with paging, get, apply a decision.
//! Adapters map PRM shapes to the domain model (cents -> Decimal, epoch ms -> UTC).

use std::future::Future;
use std::time::Duration;

use base64::Engine as _;
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::model::*;
use crate::prm::Flavor;
use crate::prm::Res;
use crate::store::sync::{Pulled, PulledTx, RemoteFlag, RewardState};

/// Where an incremental pull of one resource stands: after `(updated, key)`; `seen`
/// counts items already taken at `updated` (offset paging).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    pub updated: i64,
    pub key: String,
    #[serde(default)]
    pub seen: u64,
}

impl Default for Cursor {
    fn default() -> Self {
        Cursor {
            updated: i64::MIN,
            key: String::new(),
            seen: 0,
        }
    }
}

impl Cursor {
    pub fn is_start(&self) -> bool {
        self.updated == i64::MIN
    }
}

/// A page of mapped items and the cursor after it.
#[derive(Debug, Clone)]
pub struct Page {
    pub items: Vec<Pulled>,
    pub next: Cursor,
    pub done: bool,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum PrmError {
    /// Worth retrying (network, 5xx, 429, a cut or malformed body).
    #[error("{msg}")]
    Transient {
        msg: String,
        retry_after: Option<Duration>,
    },
    #[error("the PRM refused the credential: {0} (run `tierdesk login`)")]
    Auth(String),
    #[error("the PRM rejected the request: {0}")]
    Rejected(String),
}

/// A decision as sent to the PRM.
#[derive(Debug, Clone, PartialEq)]
pub struct PushRequest {
    pub idempotency_key: String,
    pub transaction_id: String,
    /// hold | approve | decline | adjust
    pub action: String,
    pub reason: Option<String>,
    /// adjust: the decided commission total.
    pub amount: Option<Decimal>,
    pub proposer: Option<String>,
    pub approver: Option<String>,
    pub record_version: Option<i64>,
    pub audit_head: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PushOutcome {
    Applied {
        remote_ref: String,
    },
    /// The record changed on the PRM; its current version.
    Conflict {
        remote: Value,
    },
    /// Refused for good (four-eyes, validation); the PRM's message.
    Refused {
        message: String,
    },
}

/// A PRM, whatever its API shape.
pub trait Prm: Send + Sync {
    fn flavor(&self) -> Flavor;
    /// The page after `cursor` (at most `limit` items).
    fn list(
        &self,
        res: Res,
        cursor: &Cursor,
        limit: usize,
    ) -> impl Future<Output = Result<Page, PrmError>> + Send;
    /// One record as the PRM serves it.
    fn get(
        &self,
        res: Res,
        key: &str,
    ) -> impl Future<Output = Result<Option<Value>, PrmError>> + Send;
    /// Applies a decision (idempotent on `idempotency_key`).
    fn apply(
        &self,
        req: &PushRequest,
    ) -> impl Future<Output = Result<PushOutcome, PrmError>> + Send;
}

/// Connection settings shared by the adapters.
#[derive(Clone)]
pub struct Conn {
    pub base: String,
    pub token: SecretString,
    pub tenant: String,
    pub client: reqwest::Client,
}

impl Conn {
    pub fn new(base: &str, token: SecretString, tenant: &str) -> Result<Conn, PrmError> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(5))
            .pool_max_idle_per_host(4)
            .build()
            .map_err(|e| PrmError::Rejected(format!("HTTP client: {e}")))?;
        Ok(Conn {
            base: base.trim_end_matches('/').to_string(),
            token,
            tenant: tenant.to_string(),
            client,
        })
    }
}

/// Parses `Retry-After`: seconds or an HTTP date.
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(s) = v.parse::<u64>() {
        return Some(Duration::from_secs(s));
    }
    let when = httpdate::parse_http_date(v).ok()?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

fn transient(msg: String) -> PrmError {
    PrmError::Transient {
        msg,
        retry_after: None,
    }
}

/// Sends a request and reads the whole body; classifies failures.
async fn send(rb: reqwest::RequestBuilder) -> Result<(u16, bytes_like::Bytes), PrmError> {
    let resp = rb
        .send()
        .await
        .map_err(|e| transient(format!("PRM unreachable: {e}")))?;
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|h| h.to_str().ok())
        .and_then(parse_retry_after);
    let body = resp
        .bytes()
        .await
        .map_err(|e| transient(format!("response cut off: {e}")))?;
    match status {
        401 | 403 if !looks_like_refusal(&body) => Err(PrmError::Auth(format!("HTTP {status}"))),
        429 => Err(PrmError::Transient {
            msg: "rate limited (429)".into(),
            retry_after,
        }),
        500..=599 => Err(PrmError::Transient {
            msg: format!("PRM error {status}"),
            retry_after,
        }),
        _ => Ok((status, body)),
    }
}

/// A 403 that carries a business refusal (four-eyes) rather than an auth failure.
fn looks_like_refusal(body: &[u8]) -> bool {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| {
            v.get("error")
                .and_then(|e| e.as_str())
                .map(|s| s.to_string())
        })
        .is_some_and(|e| e != "unauthorized")
}

mod bytes_like {
    pub type Bytes = axum::body::Bytes;
}

fn ms_to_utc(ms: i64) -> Result<DateTime<Utc>, String> {
    DateTime::<Utc>::from_timestamp_millis(ms).ok_or_else(|| format!("timestamp {ms} out of range"))
}

fn ms_to_date(ms: i64) -> Result<NaiveDate, String> {
    Ok(ms_to_utc(ms)?.date_naive())
}

fn cents(c: i64) -> Decimal {
    Decimal::new(c, 2)
}

fn message(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| {
            v.get("message")
                .and_then(|m| m.as_str())
                .map(str::to_string)
        })
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned())
}

/// Maps a decision to the PRM's outcome from the HTTP status and body.
fn outcome(status: u16, body: &[u8]) -> Result<PushOutcome, PrmError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| transient(format!("malformed response body: {e}")))?;
    match status {
        200..=299 => {
            let seq = v
                .pointer("/data/ledger_seq")
                .map(|s| s.to_string())
                .unwrap_or_default();
            Ok(PushOutcome::Applied { remote_ref: seq })
        }
        409 | 412 => Ok(PushOutcome::Conflict {
            remote: v.get("data").cloned().unwrap_or(Value::Null),
        }),
        _ => Ok(PushOutcome::Refused {
            message: format!("HTTP {status}: {}", message(body)),
        }),
    }
}

// ---------------------------------------------------------------- PartnerStack

#[derive(Deserialize)]
struct PsEnvelope {
    data: PsData,
}
#[derive(Deserialize)]
struct PsData {
    items: Vec<Value>,
    has_more: bool,
}
#[derive(Deserialize)]
struct PsGroup {
    key: String,
    since: i64,
}
#[derive(Deserialize)]
struct PsPartner {
    key: String,
    name: String,
    kind: PartnerKind,
    parent_key: Option<String>,
    region: String,
    country: Option<String>,
    created_at: i64,
    certifications: Vec<String>,
    tax_id: Option<String>,
    bank_account: Option<BankAccount>,
    group: Option<PsGroup>,
    #[serde(default)]
    updated_at: Option<i64>,
}
#[derive(Deserialize)]
struct PsDeal {
    key: String,
    partnership_key: String,
    customer_name: String,
    amount: i64,
    created_at: i64,
    expires_at: i64,
    status: RegistrationStatus,
    #[serde(default)]
    updated_at: Option<i64>,
}
#[derive(Deserialize)]
struct PsTx {
    key: String,
    category: TransactionKind,
    refund_of: Option<String>,
    partnership_key: String,
    deal_key: Option<String>,
    customer_name: String,
    product_key: String,
    quantity: i64,
    unit_list_price: i64,
    unit_net_price: i64,
    amount: i64,
    currency: String,
    closed_at: i64,
    created_at: i64,
    invoice_number: String,
    notes: Option<String>,
    version: i64,
    #[serde(default)]
    updated_at: Option<i64>,
}
#[derive(Deserialize)]
struct PsReward {
    key: String,
    transaction_key: String,
    partnership_key: String,
    reward_type: CommissionRole,
    amount: i64,
    period: String,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    decline_reason: Option<String>,
    #[serde(default)]
    version: Option<i64>,
    #[serde(default)]
    updated_at: Option<i64>,
}
#[derive(Deserialize)]
struct PsFlag {
    key: String,
    transaction_key: String,
    kind: String,
    score: f64,
    reason: String,
    updated_at: i64,
}

/// A PartnerStack item type: its key and `updated_at` (for the cursor) and its mapping.
trait PsItem: serde::de::DeserializeOwned {
    fn key(&self) -> &str;
    fn updated(&self) -> Option<i64>;
    fn into_pulled(self) -> Result<Pulled, String>;
}

impl PsItem for PsPartner {
    fn key(&self) -> &str {
        &self.key
    }
    fn updated(&self) -> Option<i64> {
        self.updated_at
    }
    fn into_pulled(self) -> Result<Pulled, String> {
        let p = self;
        let tier = match p.group {
            Some(g) => Some((g.key, ms_to_date(g.since)?)),
            None => None,
        };
        Ok(Pulled::Partner(
            Box::new(Partner {
                partner_id: p.key,
                name: p.name,
                kind: p.kind,
                parent_partner_id: p.parent_key,
                region: p.region,
                country: p.country,
                joined_on: ms_to_date(p.created_at)?,
                certifications: p.certifications,
                tax_id: p.tax_id,
                bank_account: p.bank_account,
            }),
            tier,
        ))
    }
}

impl PsItem for PsDeal {
    fn key(&self) -> &str {
        &self.key
    }
    fn updated(&self) -> Option<i64> {
        self.updated_at
    }
    fn into_pulled(self) -> Result<Pulled, String> {
        let d = self;
        Ok(Pulled::Registration(Registration {
            registration_id: d.key,
            partner_id: d.partnership_key,
            customer_name: d.customer_name,
            expected_amount: cents(d.amount),
            registered_on: ms_to_date(d.created_at)?,
            expires_on: ms_to_date(d.expires_at)?,
            status: d.status,
        }))
    }
}

impl PsItem for PsTx {
    fn key(&self) -> &str {
        &self.key
    }
    fn updated(&self) -> Option<i64> {
        self.updated_at
    }
    fn into_pulled(self) -> Result<Pulled, String> {
        let t = self;
        if t.currency.trim().is_empty() {
            return Err("currency is empty".into());
        }
        Ok(Pulled::Transaction(Box::new(PulledTx::new(
            Transaction {
                transaction_id: t.key,
                kind: t.category,
                original_transaction_id: t.refund_of,
                partner_id: t.partnership_key,
                registration_id: t.deal_key,
                customer_name: t.customer_name,
                sku: t.product_key,
                quantity: t.quantity,
                unit_list_price: cents(t.unit_list_price),
                unit_net_price: cents(t.unit_net_price),
                amount: cents(t.amount),
                currency: t.currency,
                closed_on: ms_to_date(t.closed_at)?,
                submitted_at: ms_to_utc(t.created_at)?,
                invoice_number: t.invoice_number,
                notes: t.notes,
            },
            t.version,
        ))))
    }
}

impl PsItem for PsReward {
    fn key(&self) -> &str {
        &self.key
    }
    fn updated(&self) -> Option<i64> {
        self.updated_at
    }
    fn into_pulled(self) -> Result<Pulled, String> {
        let r = self;
        let state = reward_state(r.status, r.decline_reason, r.version, r.updated_at)?;
        Ok(Pulled::Commission(
            CommissionLine {
                commission_id: r.key,
                transaction_id: r.transaction_key,
                payee_partner_id: r.partnership_key,
                role: r.reward_type,
                amount: cents(r.amount),
                period: r.period,
            },
            state,
        ))
    }
}

impl PsItem for PsFlag {
    fn key(&self) -> &str {
        &self.key
    }
    fn updated(&self) -> Option<i64> {
        Some(self.updated_at)
    }
    fn into_pulled(self) -> Result<Pulled, String> {
        let f = self;
        Ok(Pulled::Flag(RemoteFlag {
            flag_id: f.key,
            transaction_id: f.transaction_key,
            kind: f.kind,
            score: f.score,
            reason: f.reason,
            updated_at: ms_to_utc(f.updated_at)?
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        }))
    }
}

/// The reward statuses a PRM reports.
pub const REWARD_STATUSES: [&str; 5] = ["hold", "pending", "approved", "declined", "paid"];

/// A reward's PRM status (None when the PRM sends none); an unknown status is an error
/// (the item is quarantined with its payload rather than cached with a guess).
fn reward_state(
    status: Option<String>,
    decline_reason: Option<String>,
    version: Option<i64>,
    updated: Option<i64>,
) -> Result<Option<RewardState>, String> {
    let Some(raw) = status else {
        return Ok(None);
    };
    let status = raw.trim().to_ascii_lowercase();
    if !REWARD_STATUSES.contains(&status.as_str()) {
        return Err(format!(
            "reward status `{raw}` is not one of {}",
            REWARD_STATUSES.join(", ")
        ));
    }
    Ok(Some(RewardState {
        decline_reason: decline_reason.filter(|r| !r.trim().is_empty()),
        status,
        record_version: version,
        remote_updated: updated,
    }))
}

fn ps_map(res: Res, v: &Value) -> Result<Pulled, String> {
    fn one<T: PsItem>(v: &Value) -> Result<Pulled, String> {
        T::deserialize(v).map_err(|e| e.to_string())?.into_pulled()
    }
    match res {
        Res::Partners => one::<PsPartner>(v),
        Res::Deals => one::<PsDeal>(v),
        Res::Transactions => one::<PsTx>(v),
        Res::Rewards => one::<PsReward>(v),
        Res::Flags => one::<PsFlag>(v),
        Res::Customers => Err("customers are not synced".into()),
    }
}

#[derive(Deserialize)]
struct PsEnvelopeT<T> {
    data: PsDataT<T>,
}
#[derive(Deserialize)]
struct PsDataT<T> {
    items: Vec<T>,
    has_more: bool,
}

/// The fast path for a clean page: deserialised straight into typed items (no `Value`
/// per item). `None` when any item does not fit (a malformed item, a missing
/// `updated_at`, a mapping error): the caller then takes the item-by-item path, which
/// quarantines exactly the bad ones with their raw payload.
fn ps_typed_page<T: PsItem>(body: &[u8], cursor: &Cursor) -> Option<Page> {
    let env: PsEnvelopeT<T> = serde_json::from_slice(body).ok()?;
    let mut out = Vec::with_capacity(env.data.items.len());
    let mut next = cursor.clone();
    let mut seen_keys = std::collections::HashSet::with_capacity(env.data.items.len());
    for item in env.data.items {
        let u = item.updated()?;
        let k = item.key();
        if !seen_keys.insert(k.to_string()) {
            continue; // duplicated page item
        }
        if (u, k) <= (cursor.updated, cursor.key.as_str()) {
            continue; // already pulled
        }
        if (u, k) > (next.updated, next.key.as_str()) {
            if u == next.updated {
                next.seen += 1;
            } else {
                next.seen = 1;
            }
            next.updated = u;
            next.key = k.to_string();
        }
        out.push(item.into_pulled().ok()?);
    }
    Some(Page {
        items: out,
        next,
        done: !env.data.has_more,
    })
}

fn ps_fast_page(res: Res, body: &[u8], cursor: &Cursor) -> Option<Page> {
    match res {
        Res::Partners => ps_typed_page::<PsPartner>(body, cursor),
        Res::Deals => ps_typed_page::<PsDeal>(body, cursor),
        Res::Transactions => ps_typed_page::<PsTx>(body, cursor),
        Res::Rewards => ps_typed_page::<PsReward>(body, cursor),
        Res::Flags => ps_typed_page::<PsFlag>(body, cursor),
        Res::Customers => None,
    }
}

/// The PartnerStack v2 adapter.
pub struct PartnerStack {
    pub conn: Conn,
}

impl PartnerStack {
    fn auth(&self, rb: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        let b = base64::engine::general_purpose::STANDARD.encode(self.conn.token.expose_secret());
        rb.header("authorization", format!("Basic {b}"))
    }
}

/// Maps raw items; the next cursor is the largest `(updated, key)` seen.
fn map_items(
    items: Vec<Value>,
    cursor: &Cursor,
    upd_field: &str,
    key_field: &str,
    map: impl Fn(&Value) -> Result<Pulled, String>,
) -> (Vec<Pulled>, Cursor) {
    let mut out = Vec::with_capacity(items.len());
    let mut next = cursor.clone();
    let mut seen_keys = std::collections::HashSet::new();
    for v in items {
        let upd = v.get(upd_field).and_then(Value::as_i64);
        let key = v.get(key_field).and_then(Value::as_str).map(str::to_string);
        if let Some(k) = &key {
            if !seen_keys.insert(k.clone()) {
                continue; // duplicated page item
            }
        }
        if let (Some(u), Some(k)) = (upd, &key) {
            if (u, k.as_str()) <= (cursor.updated, cursor.key.as_str()) {
                continue; // already pulled (offset paging re-serves ties)
            }
            if (u, k.as_str()) > (next.updated, next.key.as_str()) {
                if u == next.updated {
                    next.seen += 1;
                } else {
                    next.seen = 1;
                }
                next.updated = u;
                next.key = k.clone();
            }
        }
        match map(&v) {
            Ok(p) => out.push(p),
            Err(error) => out.push(Pulled::Bad {
                raw: v.to_string(),
                error: match &key {
                    Some(k) => format!("{key_field} {k}: {error}"),
                    None => error,
                },
            }),
        }
    }
    (out, next)
}

impl Prm for PartnerStack {
    fn flavor(&self) -> Flavor {
        Flavor::Partnerstack
    }

    async fn list(&self, res: Res, cursor: &Cursor, limit: usize) -> Result<Page, PrmError> {
        let url = format!("{}/api/v2/{}", self.conn.base, res.ps_name());
        let mut q: Vec<(&str, String)> = vec![("limit", limit.clamp(1, 250).to_string())];
        if !cursor.is_start() {
            q.push(("min_updated", cursor.updated.to_string()));
            q.push(("starting_after", cursor.key.clone()));
        }
        let (status, body) = send(self.auth(self.conn.client.get(&url).query(&q))).await?;
        if status != 200 {
            return Err(PrmError::Rejected(format!(
                "{url}: HTTP {status}: {}",
                message(&body)
            )));
        }
        if let Some(page) = ps_fast_page(res, &body, cursor) {
            return Ok(page);
        }
        let env: PsEnvelope = serde_json::from_slice(&body)
            .map_err(|e| transient(format!("{}: malformed page: {e}", res.ps_name())))?;
        let (items, next) = map_items(env.data.items, cursor, "updated_at", "key", |v| {
            ps_map(res, v)
        });
        Ok(Page {
            items,
            next,
            done: !env.data.has_more,
        })
    }

    async fn get(&self, res: Res, key: &str) -> Result<Option<Value>, PrmError> {
        let url = format!("{}/api/v2/{}/{}", self.conn.base, res.ps_name(), key);
        let (status, body) = send(self.auth(self.conn.client.get(&url))).await?;
        if status == 404 {
            return Ok(None);
        }
        let v: Value =
            serde_json::from_slice(&body).map_err(|e| transient(format!("malformed body: {e}")))?;
        Ok(v.get("data").cloned())
    }

    async fn apply(&self, req: &PushRequest) -> Result<PushOutcome, PrmError> {
        let url = format!(
            "{}/api/v2/transactions/{}/review",
            self.conn.base, req.transaction_id
        );
        let body = json!({
            "action": req.action, "reason": req.reason,
            "amount": req.amount.map(crate::money::to_minor),
            "proposer": req.proposer, "approver": req.approver,
        });
        let mut rb = self
            .auth(self.conn.client.post(&url))
            .header("idempotency-key", &req.idempotency_key)
            .json(&body);
        if let Some(v) = req.record_version {
            rb = rb.header("if-match", v.to_string());
        }
        if let Some(h) = &req.audit_head {
            rb = rb.header("x-audit-head", h);
        }
        let (status, body) = send(rb).await?;
        outcome(status, &body)
    }
}

// ---------------------------------------------------------------- Impartner

#[derive(Deserialize)]
struct ImpEnvelope {
    data: ImpData,
    success: bool,
}
#[derive(Deserialize)]
struct ImpData {
    #[allow(dead_code)]
    count: u64,
    results: Vec<Value>,
}
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ImpPartner {
    id: String,
    name: String,
    kind: PartnerKind,
    parent_id: Option<String>,
    region: String,
    country: Option<String>,
    joined_on: NaiveDate,
    certifications: Vec<String>,
    tax_id: Option<String>,
    bank_account: Option<BankAccount>,
    tier: Option<String>,
    tier_since: Option<NaiveDate>,
}
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ImpDeal {
    id: String,
    partner_id: String,
    customer_name: String,
    expected_amount: Decimal,
    registered_on: NaiveDate,
    expires_on: NaiveDate,
    status: RegistrationStatus,
}
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ImpTx {
    id: String,
    kind: TransactionKind,
    original_transaction_id: Option<String>,
    partner_id: String,
    deal_id: Option<String>,
    customer_name: String,
    sku: String,
    quantity: i64,
    unit_list_price: Decimal,
    unit_net_price: Decimal,
    amount: Decimal,
    currency: String,
    closed_on: NaiveDate,
    submitted_at: DateTime<Utc>,
    invoice_number: String,
    notes: Option<String>,
    record_version: i64,
}
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ImpCommission {
    id: String,
    transaction_id: String,
    payee_partner_id: String,
    role: CommissionRole,
    amount: Decimal,
    period: String,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    decline_reason: Option<String>,
    #[serde(default)]
    record_version: Option<i64>,
    #[serde(default)]
    updated_ms: Option<i64>,
}
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ImpFlag {
    id: String,
    transaction_id: String,
    kind: String,
    score: f64,
    reason: String,
    updated: String,
}

fn imp_map(res: Res, v: &Value) -> Result<Pulled, String> {
    let e = |e: serde_json::Error| e.to_string();
    Ok(match res {
        Res::Partners => {
            let p = ImpPartner::deserialize(v).map_err(e)?;
            let tier = p.tier.zip(p.tier_since);
            Pulled::Partner(
                Box::new(Partner {
                    partner_id: p.id,
                    name: p.name,
                    kind: p.kind,
                    parent_partner_id: p.parent_id,
                    region: p.region,
                    country: p.country,
                    joined_on: p.joined_on,
                    certifications: p.certifications,
                    tax_id: p.tax_id,
                    bank_account: p.bank_account,
                }),
                tier,
            )
        }
        Res::Deals => {
            let d = ImpDeal::deserialize(v).map_err(e)?;
            Pulled::Registration(Registration {
                registration_id: d.id,
                partner_id: d.partner_id,
                customer_name: d.customer_name,
                expected_amount: d.expected_amount,
                registered_on: d.registered_on,
                expires_on: d.expires_on,
                status: d.status,
            })
        }
        Res::Transactions => {
            let t = ImpTx::deserialize(v).map_err(e)?;
            if t.currency.trim().is_empty() {
                return Err("currency is empty".into());
            }
            Pulled::Transaction(Box::new(PulledTx::new(
                Transaction {
                    transaction_id: t.id,
                    kind: t.kind,
                    original_transaction_id: t.original_transaction_id,
                    partner_id: t.partner_id,
                    registration_id: t.deal_id,
                    customer_name: t.customer_name,
                    sku: t.sku,
                    quantity: t.quantity,
                    unit_list_price: t.unit_list_price,
                    unit_net_price: t.unit_net_price,
                    amount: t.amount,
                    currency: t.currency,
                    closed_on: t.closed_on,
                    submitted_at: t.submitted_at,
                    invoice_number: t.invoice_number,
                    notes: t.notes,
                },
                t.record_version,
            )))
        }
        Res::Rewards => {
            let c = ImpCommission::deserialize(v).map_err(e)?;
            let state = reward_state(c.status, c.decline_reason, c.record_version, c.updated_ms)?;
            Pulled::Commission(
                CommissionLine {
                    commission_id: c.id,
                    transaction_id: c.transaction_id,
                    payee_partner_id: c.payee_partner_id,
                    role: c.role,
                    amount: c.amount,
                    period: c.period,
                },
                state,
            )
        }
        Res::Flags => {
            let f = ImpFlag::deserialize(v).map_err(e)?;
            Pulled::Flag(RemoteFlag {
                flag_id: f.id,
                transaction_id: f.transaction_id,
                kind: f.kind,
                score: f.score,
                reason: f.reason,
                updated_at: f.updated,
            })
        }
        Res::Customers => return Err("customers are not synced".into()),
    })
}

/// The Impartner objects-API adapter.
pub struct Impartner {
    pub conn: Conn,
}

impl Impartner {
    fn auth(&self, rb: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        rb.header(
            "authorization",
            format!("prm-key {}", self.conn.token.expose_secret()),
        )
        .header(crate::prm::impartner::TENANT_HEADER, &self.conn.tenant)
    }
}

impl Prm for Impartner {
    fn flavor(&self) -> Flavor {
        Flavor::Impartner
    }

    async fn list(&self, res: Res, cursor: &Cursor, limit: usize) -> Result<Page, PrmError> {
        let url = format!("{}/api/objects/v1/{}", self.conn.base, res.imp_name());
        let take = limit.clamp(1, 1000);
        // Filter on `updatedMs >= cursor` and drop what was already pulled; only when a
        // whole page is ties already seen, skip past them.
        let mut skip = 0u64;
        loop {
            let mut q: Vec<(&str, String)> = vec![("take", take.to_string())];
            if !cursor.is_start() {
                q.push(("filter", format!("updatedMs ge {}", cursor.updated)));
                q.push(("skip", skip.to_string()));
            }
            let (status, body) = send(self.auth(self.conn.client.get(&url).query(&q))).await?;
            if status != 200 {
                return Err(PrmError::Rejected(format!(
                    "{url}: HTTP {status}: {}",
                    message(&body)
                )));
            }
            let env: ImpEnvelope = serde_json::from_slice(&body)
                .map_err(|e| transient(format!("{}: malformed page: {e}", res.imp_name())))?;
            if !env.success {
                return Err(transient(format!("{}: success=false", res.imp_name())));
            }
            let n = env.data.results.len();
            let (items, next) = map_items(env.data.results, cursor, "updatedMs", "id", |v| {
                imp_map(res, v)
            });
            if items.is_empty() && n >= take && skip == 0 && cursor.seen > 0 {
                skip = cursor.seen;
                continue;
            }
            return Ok(Page {
                items,
                next,
                done: n < take,
            });
        }
    }

    async fn get(&self, res: Res, key: &str) -> Result<Option<Value>, PrmError> {
        let url = format!(
            "{}/api/objects/v1/{}/{}",
            self.conn.base,
            res.imp_name(),
            key
        );
        let (status, body) = send(self.auth(self.conn.client.get(&url))).await?;
        if status == 404 {
            return Ok(None);
        }
        let v: Value =
            serde_json::from_slice(&body).map_err(|e| transient(format!("malformed body: {e}")))?;
        Ok(v.get("data").cloned())
    }

    async fn apply(&self, req: &PushRequest) -> Result<PushOutcome, PrmError> {
        let url = format!(
            "{}/api/objects/v1/Transaction/{}",
            self.conn.base, req.transaction_id
        );
        let body = json!({
            "recordVersion": req.record_version,
            "review": {
                "action": req.action, "reason": req.reason,
                "amount": req.amount.map(|a| a.to_string()),
                "proposer": req.proposer, "approver": req.approver,
            }
        });
        let mut rb = self
            .auth(self.conn.client.patch(&url))
            .header("idempotency-key", &req.idempotency_key)
            .json(&body);
        if let Some(h) = &req.audit_head {
            rb = rb.header("x-audit-head", h);
        }
        let (status, body) = send(rb).await?;
        outcome(status, &body)
    }
}

/// Either adapter, chosen by flavour at run time.
pub enum AnyPrm {
    Partnerstack(PartnerStack),
    Impartner(Impartner),
}

impl AnyPrm {
    pub fn new(flavor: Flavor, conn: Conn) -> AnyPrm {
        match flavor {
            Flavor::Partnerstack => AnyPrm::Partnerstack(PartnerStack { conn }),
            Flavor::Impartner => AnyPrm::Impartner(Impartner { conn }),
        }
    }
}

impl Prm for AnyPrm {
    fn flavor(&self) -> Flavor {
        match self {
            AnyPrm::Partnerstack(p) => p.flavor(),
            AnyPrm::Impartner(p) => p.flavor(),
        }
    }
    async fn list(&self, res: Res, cursor: &Cursor, limit: usize) -> Result<Page, PrmError> {
        match self {
            AnyPrm::Partnerstack(p) => p.list(res, cursor, limit).await,
            AnyPrm::Impartner(p) => p.list(res, cursor, limit).await,
        }
    }
    async fn get(&self, res: Res, key: &str) -> Result<Option<Value>, PrmError> {
        match self {
            AnyPrm::Partnerstack(p) => p.get(res, key).await,
            AnyPrm::Impartner(p) => p.get(res, key).await,
        }
    }
    async fn apply(&self, req: &PushRequest) -> Result<PushOutcome, PrmError> {
        match self {
            AnyPrm::Partnerstack(p) => p.apply(req).await,
            AnyPrm::Impartner(p) => p.apply(req).await,
        }
    }
}
