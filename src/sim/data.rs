//! The simulator's records: one ordered collection per resource, kept in
//! `(updated, key)` order so incremental pulls (`min_updated` + `starting_after`, or a
//! filter on `updated` + `skip`) walk them deterministically.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use rust_decimal::Decimal;
use serde_json::{json, Value};

use crate::model::{CommissionLine, Dataset, Partner, Registration, Transaction};

pub use crate::prm::Res;

/// A reward (commission line) with its PRM status.
#[derive(Debug, Clone)]
pub struct Reward {
    pub line: CommissionLine,
    pub status: String,
    pub decline_reason: Option<String>,
}

/// A PRM-side AI flag.
#[derive(Debug, Clone)]
pub struct SimFlag {
    pub transaction_id: String,
    pub kind: String,
    pub score: f64,
    pub reason: String,
}

#[derive(Debug, Clone)]
pub enum Body {
    Partner(Box<Partner>, Option<(String, NaiveDate)>),
    Customer {
        name: String,
        partner_id: String,
    },
    Deal(Registration),
    Tx(Box<Transaction>),
    Reward(Reward),
    Flag(SimFlag),
    /// A malformed item as the PRM would send it (for quarantine tests).
    Raw(Value),
}

#[derive(Debug, Clone)]
pub struct Rec {
    pub key: String,
    pub updated: i64,
    pub version: i64,
    pub body: Body,
}

/// One resource's records in `(updated, key)` order.
#[derive(Debug, Default)]
pub struct Coll {
    pub recs: Vec<Rec>,
    pub by_key: HashMap<String, usize>,
    pub order: BTreeMap<(i64, String), usize>,
}

impl Coll {
    pub fn insert(&mut self, rec: Rec) {
        if let Some(&i) = self.by_key.get(&rec.key) {
            let old = &self.recs[i];
            self.order.remove(&(old.updated, old.key.clone()));
            self.order.insert((rec.updated, rec.key.clone()), i);
            self.recs[i] = rec;
        } else {
            let i = self.recs.len();
            self.by_key.insert(rec.key.clone(), i);
            self.order.insert((rec.updated, rec.key.clone()), i);
            self.recs.push(rec);
        }
    }
    pub fn get(&self, key: &str) -> Option<&Rec> {
        self.by_key.get(key).map(|&i| &self.recs[i])
    }
    /// Records strictly after `(updated, key)`, up to `limit`.
    pub fn after(&self, updated: i64, key: &str, limit: usize) -> (Vec<&Rec>, bool) {
        use std::ops::Bound;
        let mut it = self
            .order
            .range((
                Bound::Excluded((updated, key.to_string())),
                Bound::Unbounded,
            ))
            .map(|(_, &i)| &self.recs[i]);
        let page: Vec<&Rec> = it.by_ref().take(limit).collect();
        let more = it.next().is_some();
        (page, more)
    }
    /// Records with `updated >= min`, skipping `skip`, up to `take`; plus the total count.
    pub fn from_updated(&self, min: i64, skip: usize, take: usize) -> (Vec<&Rec>, usize) {
        use std::ops::Bound;
        let range = self
            .order
            .range((Bound::Included((min, String::new())), Bound::Unbounded));
        let page: Vec<&Rec> = range
            .clone()
            .skip(skip)
            .take(take)
            .map(|(_, &i)| &self.recs[i])
            .collect();
        let count = if min == i64::MIN {
            self.order.len()
        } else {
            range.count()
        };
        (page, count)
    }
}

pub fn date_ms(d: NaiveDate) -> i64 {
    d.and_time(NaiveTime::MIN).and_utc().timestamp_millis()
}

pub fn cents(d: Decimal) -> i64 {
    crate::money::to_minor(d)
}

fn iso(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A record in PartnerStack v2 shape: integer cents, epoch milliseconds, `key`s.
pub fn ps_json(rec: &Rec) -> Value {
    match &rec.body {
        Body::Raw(v) => v.clone(),
        _ => PsOut::of(rec)
            .and_then(|o| serde_json::to_value(o).ok())
            .unwrap_or(Value::Null),
    }
}

/// Appends a record in PartnerStack v2 shape as JSON to `out` (the list endpoint's
/// path: serialised straight from the record, no intermediate `Value`).
pub fn ps_write(rec: &Rec, out: &mut Vec<u8>) {
    let r = match (PsOut::of(rec), &rec.body) {
        (Some(o), _) => serde_json::to_writer(&mut *out, &o),
        (None, Body::Raw(v)) => serde_json::to_writer(&mut *out, v),
        (None, _) => Err(serde::ser::Error::custom("no PartnerStack shape")),
    };
    if r.is_err() {
        out.extend_from_slice(b"null");
    }
}

/// PartnerStack v2 shape of one record, borrowing from it.
#[derive(serde::Serialize)]
#[serde(untagged)]
enum PsBody<'a> {
    Partner {
        key: &'a str,
        name: &'a str,
        kind: &'static str,
        parent_key: &'a Option<String>,
        region: &'a str,
        country: &'a Option<String>,
        created_at: i64,
        certifications: &'a [String],
        tax_id: &'a Option<String>,
        bank_account: &'a Option<crate::model::BankAccount>,
        group: Option<PsGroupOut<'a>>,
    },
    Customer {
        key: &'a str,
        name: &'a str,
        partnership_key: &'a str,
    },
    Deal {
        key: &'a str,
        partnership_key: &'a str,
        customer_name: &'a str,
        amount: i64,
        created_at: i64,
        expires_at: i64,
        status: &'static str,
    },
    Tx {
        key: &'a str,
        category: &'static str,
        refund_of: &'a Option<String>,
        partnership_key: &'a str,
        deal_key: &'a Option<String>,
        customer_name: &'a str,
        product_key: &'a str,
        quantity: i64,
        unit_list_price: i64,
        unit_net_price: i64,
        amount: i64,
        currency: &'a str,
        closed_at: i64,
        created_at: i64,
        invoice_number: &'a str,
        notes: &'a Option<String>,
    },
    Reward {
        key: &'a str,
        transaction_key: &'a str,
        partnership_key: &'a str,
        reward_type: &'static str,
        amount: i64,
        period: &'a str,
        status: &'a str,
        decline_reason: &'a Option<String>,
    },
    Flag {
        key: &'a str,
        transaction_key: &'a str,
        kind: &'a str,
        score: f64,
        reason: &'a str,
    },
}

#[derive(serde::Serialize)]
struct PsGroupOut<'a> {
    key: &'a str,
    since: i64,
}

#[derive(serde::Serialize)]
struct PsOut<'a> {
    #[serde(flatten)]
    body: PsBody<'a>,
    updated_at: i64,
    version: i64,
}

impl<'a> PsOut<'a> {
    /// None for a raw (verbatim) item.
    fn of(rec: &'a Rec) -> Option<PsOut<'a>> {
        let body = match &rec.body {
            Body::Partner(p, tier) => PsBody::Partner {
                key: &p.partner_id,
                name: &p.name,
                kind: p.kind.as_str(),
                parent_key: &p.parent_partner_id,
                region: &p.region,
                country: &p.country,
                created_at: date_ms(p.joined_on),
                certifications: &p.certifications,
                tax_id: &p.tax_id,
                bank_account: &p.bank_account,
                group: tier.as_ref().map(|(t, since)| PsGroupOut {
                    key: t,
                    since: date_ms(*since),
                }),
            },
            Body::Customer { name, partner_id } => PsBody::Customer {
                key: &rec.key,
                name,
                partnership_key: partner_id,
            },
            Body::Deal(r) => PsBody::Deal {
                key: &r.registration_id,
                partnership_key: &r.partner_id,
                customer_name: &r.customer_name,
                amount: cents(r.expected_amount),
                created_at: date_ms(r.registered_on),
                expires_at: date_ms(r.expires_on),
                status: r.status.as_str(),
            },
            Body::Tx(t) => PsBody::Tx {
                key: &t.transaction_id,
                category: t.kind.as_str(),
                refund_of: &t.original_transaction_id,
                partnership_key: &t.partner_id,
                deal_key: &t.registration_id,
                customer_name: &t.customer_name,
                product_key: &t.sku,
                quantity: t.quantity,
                unit_list_price: cents(t.unit_list_price),
                unit_net_price: cents(t.unit_net_price),
                amount: cents(t.amount),
                currency: &t.currency,
                closed_at: date_ms(t.closed_on),
                created_at: t.submitted_at.timestamp_millis(),
                invoice_number: &t.invoice_number,
                notes: &t.notes,
            },
            Body::Reward(r) => PsBody::Reward {
                key: &r.line.commission_id,
                transaction_key: &r.line.transaction_id,
                partnership_key: &r.line.payee_partner_id,
                reward_type: r.line.role.as_str(),
                amount: cents(r.line.amount),
                period: &r.line.period,
                status: &r.status,
                decline_reason: &r.decline_reason,
            },
            Body::Flag(f) => PsBody::Flag {
                key: &rec.key,
                transaction_key: &f.transaction_id,
                kind: &f.kind,
                score: f.score,
                reason: &f.reason,
            },
            Body::Raw(_) => return None,
        };
        Some(PsOut {
            body,
            updated_at: rec.updated,
            version: rec.version,
        })
    }
}

/// A record in Impartner objects shape: camelCase, decimal strings, ISO dates.
pub fn imp_json(rec: &Rec) -> Value {
    let mut v = match &rec.body {
        Body::Partner(p, tier) => json!({
            "id": p.partner_id, "name": p.name, "kind": p.kind.as_str(),
            "parentId": p.parent_partner_id, "region": p.region, "country": p.country,
            "joinedOn": p.joined_on, "certifications": p.certifications, "taxId": p.tax_id,
            "bankAccount": p.bank_account,
            "tier": tier.as_ref().map(|t| &t.0), "tierSince": tier.as_ref().map(|t| t.1),
        }),
        Body::Customer { name, partner_id } => json!({
            "id": rec.key, "name": name, "partnerId": partner_id,
        }),
        Body::Deal(r) => json!({
            "id": r.registration_id, "partnerId": r.partner_id, "customerName": r.customer_name,
            "expectedAmount": r.expected_amount, "registeredOn": r.registered_on,
            "expiresOn": r.expires_on, "status": r.status.as_str(),
        }),
        Body::Tx(t) => json!({
            "id": t.transaction_id, "kind": t.kind.as_str(),
            "originalTransactionId": t.original_transaction_id, "partnerId": t.partner_id,
            "dealId": t.registration_id, "customerName": t.customer_name, "sku": t.sku,
            "quantity": t.quantity, "unitListPrice": t.unit_list_price,
            "unitNetPrice": t.unit_net_price, "amount": t.amount, "currency": t.currency,
            "closedOn": t.closed_on, "submittedAt": t.submitted_at,
            "invoiceNumber": t.invoice_number, "notes": t.notes,
        }),
        Body::Reward(r) => json!({
            "id": r.line.commission_id, "transactionId": r.line.transaction_id,
            "payeePartnerId": r.line.payee_partner_id, "role": r.line.role.as_str(),
            "amount": r.line.amount, "period": r.line.period, "status": r.status,
            "declineReason": r.decline_reason,
        }),
        Body::Flag(f) => json!({
            "id": rec.key, "transactionId": f.transaction_id, "kind": f.kind,
            "score": f.score, "reason": f.reason,
        }),
        Body::Raw(v) => return v.clone(),
    };
    if let Some(o) = v.as_object_mut() {
        o.insert("updated".into(), json!(iso(rec.updated)));
        o.insert("updatedMs".into(), json!(rec.updated));
        o.insert("recordVersion".into(), json!(rec.version));
    }
    v
}

/// All collections of a simulated program.
#[derive(Debug, Default)]
pub struct Db {
    pub colls: HashMap<Res, Coll>,
    /// Monotonic "updated" clock in epoch milliseconds.
    pub clock: i64,
}

impl Db {
    pub fn coll(&self, r: Res) -> &Coll {
        static EMPTY: std::sync::OnceLock<Coll> = std::sync::OnceLock::new();
        self.colls
            .get(&r)
            .unwrap_or_else(|| EMPTY.get_or_init(Coll::default))
    }
    pub fn coll_mut(&mut self, r: Res) -> &mut Coll {
        self.colls.entry(r).or_default()
    }
    pub fn tick(&mut self) -> i64 {
        self.clock += 1;
        self.clock
    }
    pub fn put(&mut self, r: Res, key: String, body: Body) {
        let updated = self.tick();
        self.coll_mut(r).insert(Rec {
            key,
            updated,
            version: 1,
            body,
        });
    }

    /// Builds the PRM's view of a program: partners with their current tier, customers,
    /// deals, transactions, rewards (paid, pending or approved; refund lines as
    /// clawbacks, i.e. negative rewards), and
    /// PRM-side AI flags (deep discounts).
    pub fn from_dataset(ds: &Dataset) -> Db {
        let mut db = Db {
            clock: date_ms(ds.program.as_of) - 86_400_000,
            ..Db::default()
        };
        let mut tiers: HashMap<&str, (String, NaiveDate)> = HashMap::new();
        for th in &ds.tier_history {
            let e = tiers
                .entry(th.partner_id.as_str())
                .or_insert((th.tier_id.clone(), th.effective_from));
            if th.effective_from >= e.1 {
                *e = (th.tier_id.clone(), th.effective_from);
            }
        }
        for p in &ds.partners {
            let tier = tiers.get(p.partner_id.as_str()).cloned();
            db.put(
                Res::Partners,
                p.partner_id.clone(),
                Body::Partner(Box::new(p.clone()), tier),
            );
        }
        let mut customers: BTreeMap<(String, String), ()> = BTreeMap::new();
        for t in &ds.transactions {
            customers.insert((t.partner_id.clone(), t.customer_name.clone()), ());
        }
        for (i, ((partner_id, name), _)) in customers.into_iter().enumerate() {
            db.put(
                Res::Customers,
                format!("cust_{i:07}"),
                Body::Customer { name, partner_id },
            );
        }
        for r in &ds.registrations {
            db.put(Res::Deals, r.registration_id.clone(), Body::Deal(r.clone()));
        }
        for t in &ds.transactions {
            db.put(
                Res::Transactions,
                t.transaction_id.clone(),
                Body::Tx(Box::new(t.clone())),
            );
            let list = t.unit_list_price;
            if list > Decimal::ZERO && t.unit_net_price < list * Decimal::new(55, 2) {
                let disc = (Decimal::ONE - t.unit_net_price / list) * Decimal::from(100);
                db.put(
                    Res::Flags,
                    format!("flag_{}", t.transaction_id),
                    Body::Flag(SimFlag {
                        transaction_id: t.transaction_id.clone(),
                        kind: "discount_policy".into(),
                        score: 0.7,
                        reason: format!("discount of {}% is unusually deep", disc.round_dp(1)),
                    }),
                );
            }
        }
        // Reward statuses follow the PRM's payout cycle: lines of deals closed before
        // the review window's previous quarter are paid, those in the review window
        // still pending, the rest approved (awaiting payout).
        let closed: HashMap<&str, NaiveDate> = ds
            .transactions
            .iter()
            .map(|t| (t.transaction_id.as_str(), t.closed_on))
            .collect();
        let window = &ds.program.review_window;
        let paid_before = window.start - chrono::Duration::days(90);
        for c in &ds.commissions {
            let status = match closed.get(c.transaction_id.as_str()) {
                Some(&d) if d < paid_before => "paid",
                Some(&d) if d >= window.start && d <= window.end => "pending",
                _ => "approved",
            };
            db.put(
                Res::Rewards,
                c.commission_id.clone(),
                Body::Reward(Reward {
                    line: c.clone(),
                    status: status.into(),
                    decline_reason: None,
                }),
            );
        }
        db
    }
}
