//! PartnerStack Vendor API v2: the wire protocol.
//!
//! - Base path `/api/v2`; HTTP Basic auth, username = public key, password = secret key.
//! - Success envelope `{"data": …, "message": "…", "status": 200}`; a list's `data` is
//!   `{"items": [...], "has_more": bool}`; errors `{"message": "…", "status": 4xx/5xx}`.
//! - Paging: `limit` 1–250 (default 10), `starting_after` = the key of the last item of
//!   the previous page *in list order*, `ending_before` = the key of the first (not
//!   both). Lists are newest-created first.
//! - Every timestamp is epoch milliseconds (responses and query params); money is
//!   integer cents.
//! - `min_updated`/`max_updated` exist on partnerships, customers and deals;
//!   transactions and rewards only have `min_created`/`max_created`, so a status change
//!   there is only seen by a full pass.
//! - Writes that exist: `POST /api/v2/rewards` (create a reward). There is no endpoint
//!   to approve, hold or decline a reward.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::{bounded_cents, ms_to_date, ms_to_utc, quarter, Capabilities, Mapped, RoleMap};
use crate::model::{
    CommissionLine, CommissionRole, Partner, PartnerKind, Registration, RegistrationStatus,
    Transaction, TransactionKind,
};

pub const BASE_PATH: &str = "/api/v2";
pub const MAX_LIMIT: usize = 250;
pub const DEFAULT_LIMIT: usize = 10;
/// The reward statuses PartnerStack reports.
pub const REWARD_STATUSES: [&str; 5] = ["hold", "pending", "approved", "declined", "paid"];

pub const CAPABILITIES: Capabilities = Capabilities {
    incremental_by_updated: &["partnerships", "customers", "deals"],
    patch_record: false,
    create_reward: true,
    review_reward: false,
};

/// The collections tierdesk pulls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Resource {
    Partnerships,
    Customers,
    Deals,
    Transactions,
    Rewards,
}

impl Resource {
    pub const ALL: [Resource; 5] = [
        Resource::Partnerships,
        Resource::Customers,
        Resource::Deals,
        Resource::Transactions,
        Resource::Rewards,
    ];
    /// The path segment (`/api/v2/{segment}`).
    pub fn segment(self) -> &'static str {
        match self {
            Resource::Partnerships => "partnerships",
            Resource::Customers => "customers",
            Resource::Deals => "deals",
            Resource::Transactions => "transactions",
            Resource::Rewards => "rewards",
        }
    }
    pub fn from_segment(s: &str) -> Option<Resource> {
        Resource::ALL.into_iter().find(|r| r.segment() == s)
    }
    /// `/api/v2/{segment}`
    pub fn list_path(self) -> String {
        format!("{BASE_PATH}/{}", self.segment())
    }
    /// `/api/v2/{segment}/{key}`
    pub fn item_path(self, key: &str) -> String {
        format!("{BASE_PATH}/{}/{key}", self.segment())
    }
    /// Whether the collection filters on `min_updated` (else only `min_created`).
    pub fn has_min_updated(self) -> bool {
        !matches!(self, Resource::Transactions | Resource::Rewards)
    }
}

/// `POST /api/v2/rewards`
pub fn create_reward_path() -> String {
    format!("{BASE_PATH}/rewards")
}

/// The query of a list request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    pub limit: Option<usize>,
    pub starting_after: Option<String>,
    pub ending_before: Option<String>,
    pub min_updated: Option<i64>,
    pub max_updated: Option<i64>,
    pub min_created: Option<i64>,
    pub max_created: Option<i64>,
    pub order_by: Option<String>,
}

impl ListQuery {
    /// The query parameters as sent.
    pub fn to_pairs(&self) -> Vec<(&'static str, String)> {
        let mut q = Vec::new();
        if let Some(l) = self.limit {
            q.push(("limit", l.to_string()));
        }
        let opt = |q: &mut Vec<(&'static str, String)>, k, v: &Option<String>| {
            if let Some(v) = v {
                q.push((k, v.clone()));
            }
        };
        opt(&mut q, "starting_after", &self.starting_after);
        opt(&mut q, "ending_before", &self.ending_before);
        for (k, v) in [
            ("min_updated", self.min_updated),
            ("max_updated", self.max_updated),
            ("min_created", self.min_created),
            ("max_created", self.max_created),
        ] {
            if let Some(v) = v {
                q.push((k, v.to_string()));
            }
        }
        opt(&mut q, "order_by", &self.order_by);
        q
    }

    /// Parses and validates a request's query (the server side); the error is the
    /// message a 400 carries.
    pub fn parse(res: Resource, q: &HashMap<String, String>) -> Result<ListQuery, String> {
        let ms = |k: &str| -> Result<Option<i64>, String> {
            match q.get(k) {
                None => Ok(None),
                Some(v) => v
                    .parse::<i64>()
                    .map(Some)
                    .map_err(|_| format!("{k} must be epoch milliseconds, got `{v}`")),
            }
        };
        let limit = match q.get("limit") {
            None => None,
            Some(v) => match v.parse::<usize>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => Some(n),
                _ => {
                    return Err(format!(
                        "limit must be between 1 and {MAX_LIMIT}, got `{v}`"
                    ))
                }
            },
        };
        let out = ListQuery {
            limit,
            starting_after: q.get("starting_after").cloned(),
            ending_before: q.get("ending_before").cloned(),
            min_updated: ms("min_updated")?,
            max_updated: ms("max_updated")?,
            min_created: ms("min_created")?,
            max_created: ms("max_created")?,
            order_by: q.get("order_by").cloned(),
        };
        if out.starting_after.is_some() && out.ending_before.is_some() {
            return Err("starting_after and ending_before cannot be used together".into());
        }
        if !res.has_min_updated() && (out.min_updated.is_some() || out.max_updated.is_some()) {
            return Err(format!(
                "{} cannot be filtered by min_updated/max_updated",
                res.segment()
            ));
        }
        if let Some(o) = &out.order_by {
            let field = o.trim_start_matches('-');
            let ok = field == "created_at"
                || (res == Resource::Rewards && (field == "amount" || field == "ready_at"));
            if !ok {
                return Err(format!("order_by `{o}` is not supported here"));
            }
        }
        Ok(out)
    }
}

/// `{"data": T, "message": "…", "status": 200}`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope<T> {
    pub data: T,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub status: Option<u16>,
}

/// A list's `data`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ListData<T> {
    pub items: Vec<T>,
    pub has_more: bool,
}

/// `{"message": "…", "status": 4xx}`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    pub message: String,
    pub status: u16,
}

/// The key of a list item, wherever it sits (for paging over raw items).
pub fn item_key(v: &serde_json::Value) -> Option<&str> {
    v.get("key").and_then(|k| k.as_str())
}

// ---------------------------------------------------------------- records

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    pub key: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub slug: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TierRef {
    pub key: String,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Partnership {
    pub key: String,
    pub partner_key: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
    #[serde(default)]
    pub group: Option<Group>,
    #[serde(default)]
    pub tier: Option<TierRef>,
    #[serde(default)]
    pub joined_at: Option<i64>,
    #[serde(default)]
    pub manager: Option<serde_json::Value>,
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    #[serde(default)]
    pub team: Option<serde_json::Value>,
    #[serde(default)]
    pub m_data: Option<serde_json::Value>,
    pub created_at: i64,
    #[serde(default)]
    pub updated_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Customer {
    pub key: String,
    #[serde(default)]
    pub customer_key: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub partnership_key: Option<String>,
    #[serde(default)]
    pub partner_key: Option<String>,
    pub created_at: i64,
    #[serde(default)]
    pub updated_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deal {
    pub key: String,
    pub partner_key: String,
    #[serde(default)]
    pub account_name: Option<String>,
    /// cents
    #[serde(default)]
    pub amount: Option<i64>,
    /// `YYYY-MM-DD`
    #[serde(default)]
    pub close_date: Option<String>,
    #[serde(default)]
    pub stage: Option<String>,
    #[serde(default)]
    pub lost_reason: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub group_key: Option<String>,
    #[serde(default)]
    pub external_key: Option<String>,
    #[serde(default)]
    pub fields: Option<Vec<serde_json::Value>>,
    pub created_at: i64,
    #[serde(default)]
    pub updated_at: Option<i64>,
}

/// A customer as nested in a transaction or reward.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerRef {
    pub key: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub partner_key: Option<String>,
    #[serde(default)]
    pub partnership_key: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransactionRecord {
    pub key: String,
    /// cents, in `currency`
    pub amount: i64,
    #[serde(default)]
    pub amount_usd: Option<i64>,
    pub currency: String,
    #[serde(default)]
    pub approved: Option<bool>,
    #[serde(default)]
    pub archived: Option<bool>,
    #[serde(default)]
    pub category_key: Option<String>,
    #[serde(default)]
    pub product_key: Option<String>,
    #[serde(default)]
    pub customer: Option<CustomerRef>,
    #[serde(default)]
    pub customer_key: Option<String>,
    #[serde(default)]
    pub metadata: Option<serde_json::Value>,
    pub created_at: i64,
    #[serde(default)]
    pub updated_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartnershipRef {
    pub key: String,
    #[serde(default)]
    pub partner_key: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransactionRef {
    pub key: String,
    #[serde(default)]
    pub amount: Option<i64>,
    #[serde(default)]
    pub currency: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OfferRef {
    pub key: String,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InvoiceRef {
    pub key: String,
    #[serde(default)]
    pub payment_date: Option<i64>,
    #[serde(default)]
    pub status: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reward {
    pub key: String,
    /// cents
    pub amount: i64,
    #[serde(default)]
    pub description: Option<String>,
    pub reward_status: String,
    #[serde(default)]
    pub decline_reason: Option<String>,
    #[serde(default)]
    pub action: Option<serde_json::Value>,
    #[serde(default)]
    pub customer: Option<CustomerRef>,
    #[serde(default)]
    pub invoice: Option<InvoiceRef>,
    #[serde(default)]
    pub offer: Option<OfferRef>,
    #[serde(default)]
    pub partnership: Option<PartnershipRef>,
    #[serde(default)]
    pub transaction: Option<TransactionRef>,
    #[serde(default)]
    pub trigger: Option<serde_json::Value>,
    pub created_at: i64,
    #[serde(default)]
    pub updated_at: Option<i64>,
}

/// The body of `POST /api/v2/rewards` (an adjustment; the decision's UUID goes in the
/// description, which PartnerStack keeps, so a read-back can find it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateReward {
    /// cents; negative for a reduction
    pub amount: i64,
    pub description: String,
    pub partner_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_key: Option<String>,
}

/// The marker a tierdesk reward description carries: `tierdesk decision <uuid>`.
pub fn decision_marker(decision: &str) -> String {
    format!("tierdesk decision {decision}")
}

// ---------------------------------------------------------------- mapping

/// Domain fields PartnerStack does not carry for a partner.
pub const PARTNER_MISSING: [&str; 6] = [
    "kind",
    "parent_partner_id",
    "region",
    "country",
    "certifications",
    "tier_since",
];
/// Domain fields PartnerStack does not carry for a transaction.
pub const TRANSACTION_MISSING: [&str; 5] = [
    "quantity",
    "unit_list_price",
    "unit_net_price",
    "registration_id",
    "invoice_number",
];

/// Partnership key -> partner key, and customer key -> (partner key, name): what a
/// reward or transaction refers to by key when its nested object does not say.
#[derive(Debug, Clone, Default)]
pub struct Keys {
    pub partnerships: HashMap<String, String>,
    pub customers: HashMap<String, (String, Option<String>)>,
}

impl Keys {
    pub fn add_partnership(&mut self, p: &Partnership) {
        self.partnerships
            .insert(p.key.clone(), p.partner_key.clone());
    }
    pub fn add_customer(&mut self, c: &Customer) {
        if let Some(pk) = self.customer_partner(c) {
            self.customers.insert(c.key.clone(), (pk, c.name.clone()));
        }
    }
    fn customer_partner(&self, c: &Customer) -> Option<String> {
        c.partner_key.clone().or_else(|| {
            c.partnership_key
                .as_ref()
                .and_then(|k| self.partnerships.get(k).cloned())
        })
    }
}

/// A partnership as a partner (id = `partner_key`) and its current tier, if any. The
/// tier's start is not carried (PartnerStack keeps only the current tier): it is the
/// partnership's last update, named in `missing`.
pub fn map_partnership(p: &Partnership) -> Result<Mapped<super::PartnerWithTier>, String> {
    let name = match (&p.first_name, &p.last_name) {
        (Some(f), Some(l)) => format!("{f} {l}").trim().to_string(),
        (Some(f), None) => f.clone(),
        (None, Some(l)) => l.clone(),
        (None, None) => String::new(),
    };
    let name = if name.is_empty() {
        p.email.clone().unwrap_or_else(|| p.partner_key.clone())
    } else {
        name
    };
    let joined = ms_to_date(p.joined_at.unwrap_or(p.created_at))?;
    let tier = match &p.tier {
        Some(t) => Some((
            t.key.clone(),
            ms_to_date(p.updated_at.unwrap_or(p.created_at))?,
        )),
        None => None,
    };
    Ok(Mapped {
        value: (
            Partner {
                partner_id: p.partner_key.clone(),
                name,
                kind: PartnerKind::Reseller,
                parent_partner_id: None,
                region: String::new(),
                country: None,
                joined_on: joined,
                certifications: Vec::new(),
                tax_id: None,
                bank_account: None,
            },
            tier,
        ),
        missing: PARTNER_MISSING.to_vec(),
    })
}

/// A deal's stage as a registration status: `won`/`approved`/`open`-like stages are
/// approved, `lost`/`rejected`/`declined` rejected, `expired` expired.
pub fn stage_status(stage: Option<&str>) -> Result<RegistrationStatus, String> {
    let s = stage.unwrap_or("").trim().to_ascii_lowercase();
    Ok(match s.as_str() {
        "lost" | "closed_lost" | "rejected" | "declined" => RegistrationStatus::Rejected,
        "expired" => RegistrationStatus::Expired,
        "" => return Err("deal has no stage".into()),
        _ => RegistrationStatus::Approved,
    })
}

/// A deal as a registration. Registration expiry is not carried: the close date stands
/// in for it (named in `missing`).
pub fn map_deal(d: &Deal) -> Result<Mapped<Registration>, String> {
    let registered_on = ms_to_date(d.created_at)?;
    let close = match &d.close_date {
        Some(s) => Some(
            chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map_err(|_| format!("close_date `{s}` is not YYYY-MM-DD"))?,
        ),
        None => None,
    };
    let mut missing = vec!["expires_on"];
    if d.amount.is_none() {
        missing.push("expected_amount");
    }
    Ok(Mapped {
        value: Registration {
            registration_id: d.key.clone(),
            partner_id: d.partner_key.clone(),
            customer_name: d.account_name.clone().unwrap_or_default(),
            expected_amount: bounded_cents("amount", d.amount.unwrap_or(0))?,
            registered_on,
            expires_on: close.unwrap_or(registered_on),
            status: stage_status(d.stage.as_deref())?,
        },
        missing,
    })
}

/// A transaction. The partner comes from the nested customer (or the customer map);
/// the record version is `updated_at` (PartnerStack has no version counter). A
/// negative amount is a refund; `metadata.refund_of` names the original when sent.
pub fn map_transaction(
    t: &TransactionRecord,
    keys: &Keys,
) -> Result<Mapped<(Transaction, i64)>, String> {
    if t.currency.trim().is_empty() {
        return Err("currency is empty".into());
    }
    let customer_key = t
        .customer
        .as_ref()
        .map(|c| c.key.clone())
        .or_else(|| t.customer_key.clone())
        .ok_or("transaction has no customer")?;
    let known = keys.customers.get(&customer_key);
    let partner = t
        .customer
        .as_ref()
        .and_then(|c| {
            c.partner_key.clone().or_else(|| {
                c.partnership_key
                    .as_ref()
                    .and_then(|k| keys.partnerships.get(k).cloned())
            })
        })
        .or_else(|| known.map(|k| k.0.clone()))
        .ok_or_else(|| {
            format!("customer {customer_key}: no partner (not among pulled customers)")
        })?;
    let customer_name = t
        .customer
        .as_ref()
        .and_then(|c| c.name.clone())
        .or_else(|| known.and_then(|k| k.1.clone()))
        .unwrap_or_default();
    let amount = bounded_cents("amount", t.amount)?;
    let meta = |k: &str| {
        t.metadata
            .as_ref()
            .and_then(|m| m.get(k))
            .and_then(|v| v.as_str())
            .map(str::to_string)
    };
    let created = ms_to_utc(t.created_at)?;
    let mut missing = TRANSACTION_MISSING.to_vec();
    let invoice = meta("invoice_number");
    if invoice.is_some() {
        missing.retain(|m| *m != "invoice_number");
    }
    Ok(Mapped {
        value: (
            Transaction {
                transaction_id: t.key.clone(),
                kind: if t.amount < 0 {
                    TransactionKind::Refund
                } else {
                    TransactionKind::Sale
                },
                original_transaction_id: meta("refund_of"),
                partner_id: partner,
                registration_id: None,
                customer_name,
                sku: t
                    .product_key
                    .clone()
                    .or_else(|| t.category_key.clone())
                    .unwrap_or_default(),
                quantity: 1,
                unit_list_price: amount.abs(),
                unit_net_price: amount.abs(),
                amount,
                currency: t.currency.trim().to_ascii_uppercase(),
                closed_on: created.date_naive(),
                submitted_at: created,
                invoice_number: invoice.unwrap_or_default(),
                notes: None,
            },
            t.updated_at.unwrap_or(t.created_at),
        ),
        missing,
    })
}

/// A reward's status, checked against the documented set.
pub fn reward_status(raw: &str) -> Result<String, String> {
    let s = raw.trim().to_ascii_lowercase();
    if REWARD_STATUSES.contains(&s.as_str()) {
        Ok(s)
    } else {
        Err(format!(
            "reward_status `{raw}` is not one of {}",
            REWARD_STATUSES.join(", ")
        ))
    }
}

/// A reward as a commission line, with its status and decline reason. The role comes
/// from the offer through `roles` (seller by default); a negative reward is a
/// clawback. The period is the quarter of `created_at`.
pub fn map_reward(
    r: &Reward,
    keys: &Keys,
    roles: &RoleMap,
) -> Result<Mapped<(CommissionLine, String, Option<String>)>, String> {
    let tx = r
        .transaction
        .as_ref()
        .ok_or("reward has no transaction (not a commission on a sale)")?;
    let p = r.partnership.as_ref().ok_or("reward has no partnership")?;
    let payee = p
        .partner_key
        .clone()
        .or_else(|| keys.partnerships.get(&p.key).cloned())
        .ok_or_else(|| format!("partnership {}: not among pulled partnerships", p.key))?;
    let role = if r.amount < 0 {
        CommissionRole::Clawback
    } else {
        roles.role(r.offer.as_ref().map(|o| o.key.as_str()))
    };
    let status = reward_status(&r.reward_status)?;
    Ok(Mapped {
        value: (
            CommissionLine {
                commission_id: r.key.clone(),
                transaction_id: tx.key.clone(),
                payee_partner_id: payee,
                role,
                amount: bounded_cents("amount", r.amount)?,
                period: quarter(ms_to_date(r.created_at)?),
            },
            status,
            r.decline_reason.clone().filter(|s| !s.trim().is_empty()),
        ),
        missing: Vec::new(),
    })
}

// ---------------------------------------------------------------- paging

/// Walks a list in PartnerStack's order (newest created first): the next request's
/// `starting_after` is the key of the last item of the page just read. Items created
/// during the walk land in front of the position and are left for the next
/// incremental pull (`min_created`/`min_updated`), so the walk neither skips nor
/// repeats what existed when it started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pager {
    pub starting_after: Option<String>,
    pub done: bool,
}

impl Pager {
    /// The query of the next page.
    pub fn query(&self, limit: usize, base: &ListQuery) -> ListQuery {
        ListQuery {
            limit: Some(limit.clamp(1, MAX_LIMIT)),
            starting_after: self.starting_after.clone(),
            ending_before: None,
            ..base.clone()
        }
    }

    /// Moves past a page given its item keys in list order and its `has_more`. A page
    /// that says there is more but does not move the position is an error (a server
    /// that ignores `starting_after` would otherwise be read forever).
    pub fn advance(&mut self, keys: &[&str], has_more: bool) -> Result<(), String> {
        match keys.last() {
            Some(last) => {
                if self.starting_after.as_deref() == Some(*last) {
                    return Err(format!(
                        "the page after `{last}` ends with `{last}` again: the server does not honour starting_after"
                    ));
                }
                if has_more
                    && self
                        .starting_after
                        .as_deref()
                        .is_some_and(|s| keys.contains(&s))
                {
                    return Err(format!(
                        "the page after `{}` contains that item again: the server does not honour starting_after",
                        self.starting_after.as_deref().unwrap_or_default()
                    ));
                }
                self.starting_after = Some(last.to_string());
            }
            None if has_more => {
                return Err("an empty page says has_more: true".to_string());
            }
            None => {}
        }
        self.done = !has_more;
        Ok(())
    }
}
