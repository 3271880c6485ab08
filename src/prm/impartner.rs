//! Impartner PRM objects REST API: the wire protocol.
//!
//! - Paths `/api/objects/v1/{Object}` and `/api/objects/v1/{Object}/{id}`; metadata at
//!   `/api/objects/v1/_describe` and `/api/objects/v1/{Object}/_describe`.
//! - Auth `Authorization: prm-key <api key>` plus `X-PRM-TenantId: <integer>` (or HTTP
//!   Basic with an integration user).
//! - Query `fields` (always sent), `filter` (SQL-like: `updated >= '2026/03/05'`,
//!   clauses joined with `AND`), `orderby`, `skip`, `take`.
//! - Envelope `{"success": true, "data": {"count": N, "entity": "…", "results": [...]}}`;
//!   errors `{"success": false, "message": "…", "errors": [{"httpStatus", "code",
//!   "message"}]}`.
//! - Integer ids; a foreign key is a nested object `{"id": 12, "name": "…"}`; `created`
//!   and `updated` are strings; objects carry `recordVersion`. Currency, Id, Percent and
//!   Integer fields are JSON numbers.
//! - Writes: `PATCH /api/objects/v1/{Object}/{id}` with the object's own fields.
//!
//! Object and field names that vary per tenant (custom objects `…__co`, custom fields
//! `…__cf`) come from [`Mapping`].

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{quarter, Capabilities, Mapped, RoleMap};
use crate::model::{
    CommissionLine, CommissionRole, Partner, PartnerKind, Registration, RegistrationStatus,
    Transaction, TransactionKind,
};

pub const BASE_PATH: &str = "/api/objects/v1";
pub const TENANT_HEADER: &str = "X-PRM-TenantId";
pub const AUTH_SCHEME: &str = "prm-key";
/// The order every list request sends with `skip`/`take`.
pub const ORDER_BY: &str = "updated,id";
pub const MAX_TAKE: usize = 1000;

pub const CAPABILITIES: Capabilities = Capabilities {
    incremental_by_updated: &["Account", "Opportunity", "Deal", "Sale", "commission"],
    patch_record: true,
    create_reward: false,
    review_reward: true,
};

/// The `Authorization` value of a credential: `prm-key <key>`, or HTTP Basic for an
/// integration user given as `basic:user:password`.
pub fn auth_header(token: &str) -> String {
    use base64::Engine as _;
    match token.strip_prefix("basic:") {
        Some(up) => format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(up)
        ),
        None => format!("{AUTH_SCHEME} {token}"),
    }
}

/// `/api/objects/v1/{object}`
pub fn list_path(object: &str) -> String {
    format!("{BASE_PATH}/{object}")
}
/// `/api/objects/v1/{object}/{id}`
pub fn item_path(object: &str, id: i64) -> String {
    format!("{BASE_PATH}/{object}/{id}")
}
/// `/api/objects/v1/_describe` or `/api/objects/v1/{object}/_describe`
pub fn describe_path(object: Option<&str>) -> String {
    match object {
        Some(o) => format!("{BASE_PATH}/{o}/_describe"),
        None => format!("{BASE_PATH}/_describe"),
    }
}

/// Parses the tenant id a configuration or header carries (an integer).
pub fn parse_tenant(s: &str) -> Result<i64, String> {
    s.trim()
        .parse::<i64>()
        .map_err(|_| format!("Impartner tenant id `{s}` is not an integer"))
}

/// The object names in a tenant `_describe` answer's `data`: a list of names or of
/// objects with `name` (directly, or under `results` / `objects`).
pub fn describe_objects(data: &Value) -> Vec<String> {
    names(data, &["results", "objects", "entities"])
}

/// The field names in an object `_describe` answer's `data`: `fields` (or `results`) as
/// names or objects with `name`.
pub fn describe_fields(data: &Value) -> Vec<String> {
    names(data, &["fields", "results", "properties"])
}

fn names(data: &Value, keys: &[&str]) -> Vec<String> {
    let list = match data {
        Value::Array(a) => Some(a),
        Value::Object(m) => keys
            .iter()
            .find_map(|k| m.get(*k).and_then(Value::as_array)),
        _ => None,
    };
    let mut out: Vec<String> = list
        .into_iter()
        .flatten()
        .filter_map(|v| match v {
            Value::String(s) => Some(s.clone()),
            Value::Object(m) => m
                .get("name")
                .or_else(|| m.get("fieldName"))
                .or_else(|| m.get("entity"))
                .and_then(Value::as_str)
                .map(str::to_string),
            _ => None,
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

// ---------------------------------------------------------------- query

/// One filter clause: `field op value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clause {
    pub field: String,
    /// `=`, `!=`, `>=`, `>`, `<=`, `<`, `like`
    pub op: String,
    /// The literal without quotes.
    pub value: String,
    pub quoted: bool,
}

/// A filter: clauses joined with `AND`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter(pub Vec<Clause>);

impl Filter {
    /// `updated >= 'YYYY/MM/DD'`: the API's filter dates are whole days, so an
    /// incremental pull re-reads the cursor's day and drops what it already has.
    pub fn updated_since(day: NaiveDate) -> Filter {
        Filter(vec![Clause {
            field: "updated".into(),
            op: ">=".into(),
            value: day.format("%Y/%m/%d").to_string(),
            quoted: true,
        }])
    }

    pub fn render(&self) -> String {
        self.0
            .iter()
            .map(|c| {
                let v = if c.quoted {
                    format!("'{}'", c.value.replace('\'', "''"))
                } else {
                    c.value.clone()
                };
                format!("{} {} {v}", c.field, c.op)
            })
            .collect::<Vec<_>>()
            .join(" AND ")
    }

    /// Parses the SQL-like syntax (server side).
    pub fn parse(s: &str) -> Result<Filter, String> {
        let mut out = Vec::new();
        let mut rest = s.trim();
        while !rest.is_empty() {
            let (field, r) = rest
                .split_once(char::is_whitespace)
                .ok_or_else(|| format!("filter `{s}`: expected `field op value`"))?;
            let r = r.trim_start();
            let (op, r) = r
                .split_once(char::is_whitespace)
                .ok_or_else(|| format!("filter `{s}`: expected an operator after `{field}`"))?;
            let op = op.to_ascii_lowercase();
            if !["=", "!=", ">=", ">", "<=", "<", "like"].contains(&op.as_str()) {
                return Err(format!("filter `{s}`: unknown operator `{op}`"));
            }
            let r = r.trim_start();
            let (value, quoted, after) = if let Some(q) = r.strip_prefix('\'') {
                let mut val = String::new();
                let mut chars = q.char_indices().peekable();
                let mut end = None;
                while let Some((i, c)) = chars.next() {
                    if c == '\'' {
                        if matches!(chars.peek(), Some((_, '\''))) {
                            val.push('\'');
                            chars.next();
                        } else {
                            end = Some(i + 1);
                            break;
                        }
                    } else {
                        val.push(c);
                    }
                }
                let end = end.ok_or_else(|| format!("filter `{s}`: unclosed quote"))?;
                (val, true, &q[end..])
            } else {
                let (v, a) = r.split_once(char::is_whitespace).unwrap_or((r, ""));
                (v.to_string(), false, a)
            };
            out.push(Clause {
                field: field.to_string(),
                op,
                value,
                quoted,
            });
            let after = after.trim_start();
            if after.is_empty() {
                break;
            }
            let (and, r) = after.split_once(char::is_whitespace).unwrap_or((after, ""));
            if !and.eq_ignore_ascii_case("and") {
                return Err(format!("filter `{s}`: expected AND, got `{and}`"));
            }
            rest = r.trim_start();
        }
        Ok(Filter(out))
    }
}

/// The query of a list request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    pub fields: Vec<String>,
    pub filter: Option<Filter>,
    pub orderby: Option<String>,
    pub skip: usize,
    pub take: usize,
}

impl ListQuery {
    pub fn to_pairs(&self) -> Vec<(&'static str, String)> {
        let mut q = vec![("fields", self.fields.join(","))];
        if let Some(f) = &self.filter {
            q.push(("filter", f.render()));
        }
        if let Some(o) = &self.orderby {
            q.push(("orderby", o.clone()));
        }
        q.push(("skip", self.skip.to_string()));
        q.push(("take", self.take.to_string()));
        q
    }

    pub fn parse(q: &HashMap<String, String>) -> Result<ListQuery, String> {
        let num = |k: &str, default: usize| -> Result<usize, String> {
            match q.get(k) {
                None => Ok(default),
                Some(v) => v
                    .parse::<usize>()
                    .map_err(|_| format!("{k} must be a non-negative integer, got `{v}`")),
            }
        };
        let take = num("take", 100)?;
        if !(1..=MAX_TAKE).contains(&take) {
            return Err(format!("take must be between 1 and {MAX_TAKE}"));
        }
        Ok(ListQuery {
            fields: q
                .get("fields")
                .map(|f| {
                    f.split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            filter: q.get("filter").map(|f| Filter::parse(f)).transpose()?,
            orderby: q.get("orderby").cloned(),
            skip: num("skip", 0)?,
            take,
        })
    }
}

// ---------------------------------------------------------------- envelopes

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ListData<T> {
    pub count: u64,
    #[serde(default)]
    pub entity: Option<String>,
    pub results: Vec<T>,
}

/// `{"success": true, "data": …}`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope<T> {
    pub success: bool,
    pub data: T,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorItem {
    #[serde(default)]
    pub http_status: Option<u16>,
    #[serde(default)]
    pub code: Option<Value>,
    #[serde(default)]
    pub message: Option<String>,
}

/// `{"success": false, "message": "…", "errors": [...]}`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub success: bool,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub errors: Vec<ErrorItem>,
}

impl ErrorBody {
    pub fn new(status: u16, message: &str) -> ErrorBody {
        ErrorBody {
            success: false,
            message: Some(message.to_string()),
            errors: vec![ErrorItem {
                http_status: Some(status),
                code: None,
                message: Some(message.to_string()),
            }],
        }
    }
}

// ---------------------------------------------------------------- records

/// A foreign key as nested in a record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ref {
    pub id: i64,
    #[serde(default)]
    pub name: Option<String>,
}

/// Parses an Impartner time string: RFC 3339, or a zone-less ISO / `YYYY/MM/DD
/// HH:MM:SS` time read as UTC, or a bare date.
pub fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    let t = s.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Ok(d.with_timezone(&Utc));
    }
    for f in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y/%m/%d %H:%M:%S%.f",
    ] {
        if let Ok(d) = NaiveDateTime::parse_from_str(t, f) {
            return Ok(d.and_utc());
        }
    }
    parse_date(t)
        .map(|d| d.and_time(chrono::NaiveTime::MIN).and_utc())
        .map_err(|_| format!("`{s}` is not a time"))
}

/// Parses a date: `YYYY-MM-DD`, `YYYY/MM/DD`, or the date part of a time.
pub fn parse_date(s: &str) -> Result<NaiveDate, String> {
    let t = s.trim();
    let head = t.get(..10).unwrap_or(t);
    NaiveDate::parse_from_str(head, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(head, "%Y/%m/%d"))
        .map_err(|_| format!("`{s}` is not a date"))
}

/// The time written back in records (`updated`, `created`): ISO 8601 UTC with
/// milliseconds.
pub fn format_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    pub id: i64,
    pub name: String,
    #[serde(default)]
    pub partner_level: Option<Ref>,
    #[serde(default)]
    pub tier: Option<Ref>,
    #[serde(default)]
    pub region: Option<Ref>,
    #[serde(default)]
    pub parent_account: Option<Ref>,
    #[serde(default)]
    pub crm_id: Option<String>,
    #[serde(default)]
    pub created: Option<String>,
    pub updated: String,
    #[serde(default)]
    pub record_version: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deal {
    pub id: i64,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "super::de_decimal_number")]
    pub amount: Option<Decimal>,
    #[serde(default)]
    pub close_date: Option<String>,
    #[serde(default)]
    pub stage: Option<Ref>,
    #[serde(default)]
    pub primary_account: Option<Ref>,
    #[serde(default, deserialize_with = "super::de_decimal_number")]
    pub probability: Option<Decimal>,
    #[serde(default)]
    pub created: Option<String>,
    pub updated: String,
    #[serde(default)]
    pub record_version: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Opportunity {
    pub id: i64,
    #[serde(default)]
    pub name: Option<String>,
    /// A decimal string.
    #[serde(default)]
    pub dollar_value: Option<String>,
    #[serde(default)]
    pub date_expires: Option<String>,
    #[serde(default)]
    pub approval_status: Option<String>,
    #[serde(default)]
    pub reason_denied: Option<String>,
    #[serde(default)]
    pub created: Option<String>,
    pub updated: String,
    #[serde(default)]
    pub record_version: Option<i64>,
    /// Everything else (tenant fields, the account reference named in the mapping).
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

// ---------------------------------------------------------------- mapping config

/// Tenant-specific object and field names (`[prm.mapping]` in `config.toml`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Mapping {
    pub account_object: String,
    pub opportunity_object: String,
    pub deal_object: String,
    pub sale_object: String,
    /// The tenant's custom object for commission lines.
    pub commission_object: String,
    /// Opportunity -> the partner account.
    pub opportunity_account: String,
    pub sale_partner: String,
    pub sale_customer: String,
    pub sale_date: String,
    pub sale_amount: String,
    pub sale_currency: String,
    pub sale_sku: String,
    pub sale_quantity: String,
    pub sale_unit_list_price: String,
    pub sale_unit_net_price: String,
    pub sale_opportunity: String,
    pub sale_refund_of: String,
    pub commission_sale: String,
    pub commission_payee: String,
    pub commission_amount: String,
    pub commission_type: String,
    pub commission_status: String,
    pub commission_decline_reason: String,
    /// Fields tierdesk writes on the commission record.
    pub write_decision: String,
    pub write_amount: String,
    pub write_reason: String,
    pub write_reviewer: String,
    pub write_anomaly_score: String,
    pub write_flag_reason: String,
    pub write_processing_status: String,
    pub write_decision_id: String,
    pub write_audit_head: String,
}

impl Default for Mapping {
    fn default() -> Self {
        let s = |x: &str| x.to_string();
        Mapping {
            account_object: s("Account"),
            opportunity_object: s("Opportunity"),
            deal_object: s("Deal"),
            sale_object: s("Sale"),
            commission_object: s("Commission__co"),
            opportunity_account: s("account"),
            sale_partner: s("billToAccount"),
            sale_customer: s("shipToAccount"),
            sale_date: s("invoiceDate"),
            sale_amount: s("amount__cf"),
            sale_currency: s("currency__cf"),
            sale_sku: s("sku__cf"),
            sale_quantity: s("quantity__cf"),
            sale_unit_list_price: s("unitListPrice__cf"),
            sale_unit_net_price: s("unitNetPrice__cf"),
            sale_opportunity: s("opportunity__cf"),
            sale_refund_of: s("refundOf__cf"),
            commission_sale: s("sale__cf"),
            commission_payee: s("account__cf"),
            commission_amount: s("amount__cf"),
            commission_type: s("commissionType__cf"),
            commission_status: s("status__cf"),
            commission_decline_reason: s("declineReason__cf"),
            write_decision: s("tdDecision__cf"),
            write_amount: s("tdAmount__cf"),
            write_reason: s("tdReason__cf"),
            write_reviewer: s("tdReviewer__cf"),
            write_anomaly_score: s("tdAnomalyScore__cf"),
            write_flag_reason: s("tdFlagReason__cf"),
            write_processing_status: s("tdProcessingStatus__cf"),
            write_decision_id: s("tdDecisionId__cf"),
            write_audit_head: s("tdAuditHead__cf"),
        }
    }
}

impl Mapping {
    /// The fields a list of `object` requests (`fields` is always sent).
    pub fn fields(&self, object: &str) -> Vec<String> {
        let mut f: Vec<&str> = vec!["id", "created", "updated", "recordVersion"];
        if object == self.account_object {
            f.extend([
                "name",
                "partnerLevel",
                "tier",
                "region",
                "parentAccount",
                "crmId",
            ]);
        } else if object == self.opportunity_object {
            f.extend([
                "name",
                "dollarValue",
                "dateExpires",
                "approvalStatus",
                "reasonDenied",
            ]);
            f.push(&self.opportunity_account);
        } else if object == self.deal_object {
            f.extend([
                "name",
                "amount",
                "closeDate",
                "stage",
                "primaryAccount",
                "probability",
            ]);
        } else if object == self.sale_object {
            f.extend([
                self.sale_partner.as_str(),
                &self.sale_customer,
                &self.sale_date,
                &self.sale_amount,
                &self.sale_currency,
                &self.sale_sku,
                &self.sale_quantity,
                &self.sale_unit_list_price,
                &self.sale_unit_net_price,
                &self.sale_opportunity,
                &self.sale_refund_of,
            ]);
        } else if object == self.commission_object {
            f.extend([
                self.commission_sale.as_str(),
                &self.commission_payee,
                &self.commission_amount,
                &self.commission_type,
                &self.commission_status,
                &self.commission_decline_reason,
                &self.write_decision_id,
            ]);
        }
        f.into_iter().map(str::to_string).collect()
    }

    /// Every (object, field) tierdesk reads or writes, for `prm check`.
    pub fn required(&self) -> Vec<(String, Vec<String>)> {
        let mut out = Vec::new();
        for o in [
            &self.account_object,
            &self.opportunity_object,
            &self.deal_object,
            &self.sale_object,
        ] {
            out.push((o.clone(), self.fields(o)));
        }
        let mut c = self.fields(&self.commission_object);
        for w in [
            &self.write_decision,
            &self.write_amount,
            &self.write_reason,
            &self.write_reviewer,
            &self.write_anomaly_score,
            &self.write_flag_reason,
            &self.write_processing_status,
            &self.write_audit_head,
        ] {
            if !c.contains(w) {
                c.push(w.clone());
            }
        }
        out.push((self.commission_object.clone(), c));
        out
    }
}

// ---------------------------------------------------------------- mapping

/// A record's `updated` time in epoch ms and its id (the paging position).
pub fn position(v: &Value) -> Option<(i64, i64)> {
    let id = v.get("id")?.as_i64()?;
    let upd = parse_time(v.get("updated")?.as_str()?).ok()?;
    Some((upd.timestamp_millis(), id))
}

fn field<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    v.get(name).filter(|x| !x.is_null())
}

fn ref_id(v: &Value, name: &str) -> Result<Option<i64>, String> {
    match field(v, name) {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| format!("{name}: `{n}` is not an id")),
        Some(Value::Object(o)) => match o.get("id").and_then(Value::as_i64) {
            Some(id) => Ok(Some(id)),
            None => Err(format!("{name}: nested object has no integer id")),
        },
        Some(other) => Err(format!("{name}: expected a nested object, got {other}")),
    }
}

fn text(v: &Value, name: &str) -> Option<String> {
    match field(v, name)? {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("name").and_then(Value::as_str).map(str::to_string),
        other => Some(other.to_string()),
    }
}

fn decimal(v: &Value, name: &str) -> Result<Option<Decimal>, String> {
    super::de_decimal_number(field(v, name).cloned().unwrap_or(Value::Null))
        .map_err(|e: serde_json::Error| format!("{name}: {e}"))
}

/// An account as a partner (id = the integer id as text) and its current tier. A
/// parent account is the distributor above; the tier's start is not carried (the
/// record's `updated` date stands in, named in `missing`).
pub fn map_account(a: &Account) -> Result<Mapped<super::PartnerWithTier>, String> {
    let updated = parse_time(&a.updated)?;
    let created = match &a.created {
        Some(c) => parse_time(c)?,
        None => updated,
    };
    let tier = a.tier.as_ref().or(a.partner_level.as_ref()).map(|t| {
        (
            t.name.clone().unwrap_or_else(|| t.id.to_string()),
            updated.date_naive(),
        )
    });
    Ok(Mapped {
        value: (
            Partner {
                partner_id: a.id.to_string(),
                name: a.name.clone(),
                kind: if a.parent_account.is_some() {
                    PartnerKind::Reseller
                } else {
                    PartnerKind::Distributor
                },
                parent_partner_id: a.parent_account.as_ref().map(|p| p.id.to_string()),
                region: a
                    .region
                    .as_ref()
                    .and_then(|r| r.name.clone())
                    .unwrap_or_default(),
                country: None,
                joined_on: created.date_naive(),
                certifications: Vec::new(),
                tax_id: None,
                bank_account: None,
            },
            tier,
        ),
        missing: vec!["country", "certifications", "tier_since"],
    })
}

/// An opportunity (deal registration) as a registration.
pub fn map_opportunity(o: &Opportunity, m: &Mapping) -> Result<Mapped<Registration>, String> {
    let other = Value::Object(o.other.clone());
    let partner = ref_id(&other, &m.opportunity_account)?
        .ok_or_else(|| format!("{}: no partner account", m.opportunity_account))?;
    let amount = match &o.dollar_value {
        Some(s) if !s.trim().is_empty() => {
            super::decimal_text(s.trim()).map_err(|e| format!("dollarValue: {e}"))?
        }
        _ => Decimal::ZERO,
    };
    let registered = match &o.created {
        Some(c) => parse_time(c)?,
        None => parse_time(&o.updated)?,
    };
    let mut missing = Vec::new();
    let expires = match &o.date_expires {
        Some(d) => parse_date(d).map_err(|e| format!("dateExpires: {e}"))?,
        None => {
            missing.push("expires_on");
            registered.date_naive()
        }
    };
    let status = match o
        .approval_status
        .as_deref()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
        .as_str()
    {
        "approved" => RegistrationStatus::Approved,
        "denied" | "rejected" | "declined" => RegistrationStatus::Rejected,
        "expired" => RegistrationStatus::Expired,
        other => {
            return Err(format!(
                "approvalStatus `{other}` is not approved/denied/expired"
            ))
        }
    };
    Ok(Mapped {
        value: Registration {
            registration_id: o.id.to_string(),
            partner_id: partner.to_string(),
            customer_name: o.name.clone().unwrap_or_default(),
            expected_amount: amount,
            registered_on: registered.date_naive(),
            expires_on: expires,
            status,
        },
        missing,
    })
}

/// A sale as a transaction, through the mapped field names. Record version =
/// `recordVersion`.
pub fn map_sale(v: &Value, m: &Mapping) -> Result<Mapped<(Transaction, i64)>, String> {
    let id = v
        .get("id")
        .and_then(Value::as_i64)
        .ok_or("id is not an integer")?;
    let updated = parse_time(
        v.get("updated")
            .and_then(Value::as_str)
            .ok_or("updated is missing")?,
    )?;
    let created = match v.get("created").and_then(Value::as_str) {
        Some(c) => parse_time(c)?,
        None => updated,
    };
    let partner = ref_id(v, &m.sale_partner)?
        .ok_or_else(|| format!("{}: no partner account", m.sale_partner))?;
    let amount =
        decimal(v, &m.sale_amount)?.ok_or_else(|| format!("{}: no amount", m.sale_amount))?;
    let currency = text(v, &m.sale_currency).unwrap_or_default();
    if currency.trim().is_empty() {
        return Err(format!("{}: currency is empty", m.sale_currency));
    }
    let mut missing = Vec::new();
    let closed = match text(v, &m.sale_date) {
        Some(d) => parse_date(&d).map_err(|e| format!("{}: {e}", m.sale_date))?,
        None => {
            missing.push("closed_on");
            created.date_naive()
        }
    };
    let quantity = match field(v, &m.sale_quantity) {
        Some(q) => q
            .as_i64()
            .ok_or_else(|| format!("{}: `{q}` is not an integer", m.sale_quantity))?,
        None => {
            missing.push("quantity");
            1
        }
    };
    let unit = |name: &str, miss: &'static str, missing: &mut Vec<&'static str>| {
        decimal(v, name).map(|d| {
            d.unwrap_or_else(|| {
                missing.push(miss);
                amount.abs()
            })
        })
    };
    let list = unit(&m.sale_unit_list_price, "unit_list_price", &mut missing)?;
    let net = unit(&m.sale_unit_net_price, "unit_net_price", &mut missing)?;
    let refund_of = ref_id(v, &m.sale_refund_of)?;
    Ok(Mapped {
        value: (
            Transaction {
                transaction_id: id.to_string(),
                kind: if refund_of.is_some() || amount < Decimal::ZERO {
                    TransactionKind::Refund
                } else {
                    TransactionKind::Sale
                },
                original_transaction_id: refund_of.map(|r| r.to_string()),
                partner_id: partner.to_string(),
                registration_id: ref_id(v, &m.sale_opportunity)?.map(|r| r.to_string()),
                customer_name: text(v, &m.sale_customer).unwrap_or_default(),
                sku: text(v, &m.sale_sku).unwrap_or_default(),
                quantity,
                unit_list_price: list,
                unit_net_price: net,
                amount,
                currency: currency.trim().to_ascii_uppercase(),
                closed_on: closed,
                submitted_at: created,
                invoice_number: text(v, "invoiceNumber").unwrap_or_default(),
                notes: None,
            },
            v.get("recordVersion").and_then(Value::as_i64).unwrap_or(0),
        ),
        missing,
    })
}

/// A commission custom-object record as a commission line, its status and decline
/// reason (the status field is optional per tenant).
#[allow(clippy::type_complexity)]
pub fn map_commission(
    v: &Value,
    m: &Mapping,
    roles: &RoleMap,
) -> Result<Mapped<(CommissionLine, Option<String>, Option<String>)>, String> {
    let id = v
        .get("id")
        .and_then(Value::as_i64)
        .ok_or("id is not an integer")?;
    let sale =
        ref_id(v, &m.commission_sale)?.ok_or_else(|| format!("{}: no sale", m.commission_sale))?;
    let payee = ref_id(v, &m.commission_payee)?
        .ok_or_else(|| format!("{}: no payee account", m.commission_payee))?;
    let amount = decimal(v, &m.commission_amount)?
        .ok_or_else(|| format!("{}: no amount", m.commission_amount))?;
    let created = match v.get("created").and_then(Value::as_str) {
        Some(c) => parse_time(c)?,
        None => parse_time(
            v.get("updated")
                .and_then(Value::as_str)
                .ok_or("updated is missing")?,
        )?,
    };
    let kind = text(v, &m.commission_type);
    let role = if amount < Decimal::ZERO {
        CommissionRole::Clawback
    } else {
        kind.as_deref()
            .and_then(super::parse_role)
            .unwrap_or_else(|| roles.role(kind.as_deref()))
    };
    let status = text(v, &m.commission_status).map(|s| s.trim().to_ascii_lowercase());
    Ok(Mapped {
        value: (
            CommissionLine {
                commission_id: id.to_string(),
                transaction_id: sale.to_string(),
                payee_partner_id: payee.to_string(),
                role,
                amount,
                period: quarter(created.date_naive()),
            },
            status,
            text(v, &m.commission_decline_reason).filter(|s| !s.trim().is_empty()),
        ),
        missing: Vec::new(),
    })
}

/// What tierdesk writes back on a commission record.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WriteBack {
    pub decision: String,
    pub amount: Option<Decimal>,
    pub reason: Option<String>,
    pub reviewer: Option<String>,
    pub anomaly_score: Option<Decimal>,
    pub flag_reason: Option<String>,
    pub processing_status: String,
    pub decision_id: String,
    pub audit_head: Option<String>,
}

/// A Currency/Percent field's value: a JSON number written from the decimal's exact text.
pub fn json_number(d: Decimal) -> Value {
    serde_json::from_str::<Value>(&d.normalize().to_string()).unwrap_or(Value::Null)
}

/// The `PATCH` body: the object's own (mapped custom) fields. Amounts and scores are
/// JSON numbers, written from their exact decimal text.
pub fn patch_body(m: &Mapping, w: &WriteBack) -> Value {
    let num = json_number;
    let mut o = Map::new();
    o.insert(m.write_decision.clone(), Value::String(w.decision.clone()));
    o.insert(
        m.write_amount.clone(),
        w.amount.map(num).unwrap_or(Value::Null),
    );
    o.insert(
        m.write_reason.clone(),
        w.reason.clone().map(Value::String).unwrap_or(Value::Null),
    );
    o.insert(
        m.write_reviewer.clone(),
        w.reviewer.clone().map(Value::String).unwrap_or(Value::Null),
    );
    o.insert(
        m.write_anomaly_score.clone(),
        w.anomaly_score.map(num).unwrap_or(Value::Null),
    );
    o.insert(
        m.write_flag_reason.clone(),
        w.flag_reason
            .clone()
            .map(Value::String)
            .unwrap_or(Value::Null),
    );
    o.insert(
        m.write_processing_status.clone(),
        Value::String(w.processing_status.clone()),
    );
    o.insert(
        m.write_decision_id.clone(),
        Value::String(w.decision_id.clone()),
    );
    o.insert(
        m.write_audit_head.clone(),
        w.audit_head
            .clone()
            .map(Value::String)
            .unwrap_or(Value::Null),
    );
    Value::Object(o)
}

/// The `PATCH` body of a processing-status write: status, anomaly score and flag
/// reason only (a decision's fields are left as they are).
pub fn status_body(
    m: &Mapping,
    status: &str,
    score: Option<Decimal>,
    reason: Option<&str>,
) -> Value {
    let mut o = Map::new();
    o.insert(
        m.write_processing_status.clone(),
        Value::String(status.to_string()),
    );
    o.insert(
        m.write_anomaly_score.clone(),
        score.map(json_number).unwrap_or(Value::Null),
    );
    o.insert(
        m.write_flag_reason.clone(),
        reason
            .map(|r| Value::String(r.to_string()))
            .unwrap_or(Value::Null),
    );
    Value::Object(o)
}

/// Whether a record read back already carries every field of `body` (a status write
/// that is already there is not sent again).
pub fn carries_fields(record: &Value, body: &Value) -> bool {
    body.as_object().is_some_and(|o| {
        o.iter().all(|(k, v)| match (record.get(k), v) {
            (Some(Value::Number(a)), Value::Number(b)) => a.as_f64() == b.as_f64(),
            (Some(a), b) => a == b,
            (None, Value::Null) => true,
            (None, _) => false,
        })
    })
}

/// The task tierdesk creates for an alert (a `prm` alert channel): the mapped task
/// object's fields, with the alert id so a person (or a later check) can tell them apart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TaskMapping {
    pub object: String,
    pub subject: String,
    pub body: String,
    pub transaction: String,
    pub alert_id: String,
}

impl Default for TaskMapping {
    fn default() -> Self {
        TaskMapping {
            object: "tdTask__co".into(),
            subject: "name".into(),
            body: "tdDescription__cf".into(),
            transaction: "tdTransaction__cf".into(),
            alert_id: "tdAlertId__cf".into(),
        }
    }
}

/// The `POST` body of a task record.
pub fn task_body(
    t: &TaskMapping,
    subject: &str,
    body: &str,
    transaction: Option<&str>,
    alert_id: &str,
) -> Value {
    let mut o = Map::new();
    o.insert(t.subject.clone(), Value::String(subject.to_string()));
    o.insert(t.body.clone(), Value::String(body.to_string()));
    o.insert(
        t.transaction.clone(),
        transaction
            .map(|x| Value::String(x.to_string()))
            .unwrap_or(Value::Null),
    );
    o.insert(t.alert_id.clone(), Value::String(alert_id.to_string()));
    Value::Object(o)
}

/// Whether a record read back already carries the decision (the check before a retry).
pub fn carries_decision(record: &Value, m: &Mapping, decision_id: &str) -> bool {
    record.get(&m.write_decision_id).and_then(Value::as_str) == Some(decision_id)
}

// ---------------------------------------------------------------- paging

/// Offset paging with `orderby=updated,id`: `skip` grows by each page's length, and
/// every page must start strictly after where the previous one ended in
/// `(updated, id)` order. A page that does not advance (a server ignoring `skip` or
/// `orderby`) is an error that stops the pull, never a reason to ask again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OffsetPager {
    pub skip: usize,
    pub take: usize,
    pub last: Option<(i64, i64)>,
    pub done: bool,
}

impl OffsetPager {
    pub fn new(take: usize) -> OffsetPager {
        OffsetPager {
            take: take.clamp(1, MAX_TAKE),
            ..OffsetPager::default()
        }
    }

    /// The query of the next page.
    pub fn query(&self, fields: Vec<String>, filter: Option<Filter>) -> ListQuery {
        ListQuery {
            fields,
            filter,
            orderby: Some(ORDER_BY.to_string()),
            skip: self.skip,
            take: self.take,
        }
    }

    /// Moves past a page given its items' `(updated ms, id)` in the order served.
    pub fn advance(&mut self, object: &str, positions: &[(i64, i64)]) -> Result<(), String> {
        let mut prev = self.last;
        for &p in positions {
            if let Some(q) = prev {
                if p <= q {
                    return Err(format!(
                        "{object}: the page at skip={} does not advance (item id {} updated {} is not after id {} updated {}); the server ignores skip or orderby=updated,id, so the pull stops here",
                        self.skip, p.1, p.0, q.1, q.0
                    ));
                }
            }
            prev = Some(p);
        }
        self.last = prev;
        self.skip += positions.len();
        self.done = positions.len() < self.take;
        Ok(())
    }
}
