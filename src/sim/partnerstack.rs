//! The PartnerStack flavour's records and list logic: a program shaped as the
//! [`crate::prm::partnerstack`] structs and served newest created first.
//!
//! Each collection keeps its items in one vector, a key index and the order by
//! `(created_at, key)` (ascending; lists read it backwards). Nothing changes an item's
//! `created_at`, and every item the simulator creates is newer than all others, so the
//! order only ever grows at its end and a page is found in O(log n + limit).

use std::collections::HashMap;

use rust_decimal::Decimal;
use serde_json::{Map, Value};

use super::dataset as data;
use crate::model::{CommissionRole, Dataset, RegistrationStatus};
use crate::prm::partnerstack as ps;
use crate::prm::partnerstack::Resource;
use crate::prm::RoleMap;

/// The offer a reward is issued under, per commission role (a reward carries no role
/// of its own; a client maps the offer key back through its `[prm.mapping]` role map).
/// Clawbacks are negative rewards.
pub const OFFER_KEYS: [(&str, CommissionRole); 4] = [
    ("offer_seller", CommissionRole::Seller),
    ("offer_override", CommissionRole::Override),
    ("offer_spiff", CommissionRole::Spiff),
    ("offer_clawback", CommissionRole::Clawback),
];

/// The offer key of a role.
pub fn offer_key(role: CommissionRole) -> &'static str {
    OFFER_KEYS
        .iter()
        .find(|(_, r)| *r == role)
        .map(|(k, _)| *k)
        .unwrap_or("offer_seller")
}

/// The role map a client configures for [`OFFER_KEYS`].
pub fn role_map() -> RoleMap {
    RoleMap {
        by_key: OFFER_KEYS
            .iter()
            .map(|(k, r)| (k.to_string(), *r))
            .collect(),
    }
}

/// The partnership key of a partner (the partner's own key is `partner_key`).
pub fn partnership_key(partner_id: &str) -> String {
    format!("prtnr_{partner_id}")
}

/// One served item.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Partnership(ps::Partnership),
    Customer(ps::Customer),
    Deal(ps::Deal),
    Transaction(ps::TransactionRecord),
    Reward(ps::Reward),
    /// An item served verbatim (a malformed record, for quarantine tests).
    Raw {
        key: String,
        created_at: i64,
        updated_at: i64,
        value: Value,
    },
}

impl Item {
    pub fn key(&self) -> &str {
        match self {
            Item::Partnership(x) => &x.key,
            Item::Customer(x) => &x.key,
            Item::Deal(x) => &x.key,
            Item::Transaction(x) => &x.key,
            Item::Reward(x) => &x.key,
            Item::Raw { key, .. } => key,
        }
    }
    pub fn created(&self) -> i64 {
        match self {
            Item::Partnership(x) => x.created_at,
            Item::Customer(x) => x.created_at,
            Item::Deal(x) => x.created_at,
            Item::Transaction(x) => x.created_at,
            Item::Reward(x) => x.created_at,
            Item::Raw { created_at, .. } => *created_at,
        }
    }
    pub fn updated(&self) -> i64 {
        let u = match self {
            Item::Partnership(x) => x.updated_at,
            Item::Customer(x) => x.updated_at,
            Item::Deal(x) => x.updated_at,
            Item::Transaction(x) => x.updated_at,
            Item::Reward(x) => x.updated_at,
            Item::Raw { updated_at, .. } => Some(*updated_at),
        };
        u.unwrap_or_else(|| self.created())
    }
    /// Appends the item's JSON to `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        let r = match self {
            Item::Partnership(x) => serde_json::to_writer(&mut *out, x),
            Item::Customer(x) => serde_json::to_writer(&mut *out, x),
            Item::Deal(x) => serde_json::to_writer(&mut *out, x),
            Item::Transaction(x) => serde_json::to_writer(&mut *out, x),
            Item::Reward(x) => serde_json::to_writer(&mut *out, x),
            Item::Raw { value, .. } => serde_json::to_writer(&mut *out, value),
        };
        if r.is_err() {
            out.extend_from_slice(b"null");
        }
    }
    pub fn to_value(&self) -> Value {
        let mut b = Vec::new();
        self.write(&mut b);
        serde_json::from_slice(&b).unwrap_or(Value::Null)
    }
}

/// One collection in `(created_at, key)` order.
#[derive(Debug, Default)]
pub struct Coll {
    items: Vec<Item>,
    by_key: HashMap<String, u32>,
    /// Item indexes sorted by `(created_at, key)` ascending.
    ord: Vec<u32>,
    /// Item index -> position in `ord`.
    rank: Vec<u32>,
}

impl Coll {
    fn from_items(items: Vec<Item>) -> Coll {
        let mut ord: Vec<u32> = (0..items.len() as u32).collect();
        ord.sort_by(|&a, &b| {
            let (a, b) = (&items[a as usize], &items[b as usize]);
            (a.created(), a.key()).cmp(&(b.created(), b.key()))
        });
        let mut rank = vec![0u32; items.len()];
        for (r, &i) in ord.iter().enumerate() {
            rank[i as usize] = r as u32;
        }
        let mut by_key = HashMap::with_capacity(items.len());
        for (i, it) in items.iter().enumerate() {
            by_key.entry(it.key().to_string()).or_insert(i as u32);
        }
        Coll {
            items,
            by_key,
            ord,
            rank,
        }
    }

    /// Appends a new item (newer than every other), or replaces the item with its key in
    /// place (keeping its position).
    fn push(&mut self, item: Item) {
        if let Some(&i) = self.by_key.get(item.key()) {
            self.items[i as usize] = item;
            return;
        }
        let i = self.items.len() as u32;
        self.by_key.insert(item.key().to_string(), i);
        self.items.push(item);
        self.rank.push(self.ord.len() as u32);
        self.ord.push(i);
    }

    pub fn get(&self, key: &str) -> Option<&Item> {
        self.by_key.get(key).map(|&i| &self.items[i as usize])
    }

    fn get_mut(&mut self, key: &str) -> Option<&mut Item> {
        let i = *self.by_key.get(key)?;
        self.items.get_mut(i as usize)
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Item> {
        self.items.iter()
    }

    fn at(&self, r: usize) -> &Item {
        &self.items[self.ord[r] as usize]
    }
}

/// The PartnerStack flavour's program.
#[derive(Debug, Default)]
pub struct Store {
    colls: [Coll; 5],
    seq: u64,
}

fn idx(r: Resource) -> usize {
    match r {
        Resource::Partnerships => 0,
        Resource::Customers => 1,
        Resource::Deals => 2,
        Resource::Transactions => 3,
        Resource::Rewards => 4,
    }
}

fn role_title(r: CommissionRole) -> &'static str {
    match r {
        CommissionRole::Seller => "Seller commission",
        CommissionRole::Override => "Distributor override",
        CommissionRole::Spiff => "Spiff",
        CommissionRole::Clawback => "Clawback",
    }
}

impl Store {
    /// Shapes a program; also returns the newest time it serves (epoch ms).
    pub fn build(ds: &Dataset) -> (Store, i64) {
        let mut newest = data::newest_ms(ds);
        let tiers = data::current_tiers(ds);
        let tier_names: HashMap<&str, &str> = ds
            .tiers
            .iter()
            .map(|t| (t.tier_id.as_str(), t.name.as_str()))
            .collect();
        let mut partnerships = Vec::with_capacity(ds.partners.len());
        for p in &ds.partners {
            let created = data::date_ms(p.joined_on);
            let tier = tiers.get(&p.partner_id);
            let updated = tier.map_or(created, |(_, since)| created.max(data::date_ms(*since)));
            newest = newest.max(updated);
            partnerships.push(Item::Partnership(ps::Partnership {
                key: partnership_key(&p.partner_id),
                partner_key: p.partner_id.clone(),
                email: None,
                first_name: Some(p.name.clone()),
                last_name: None,
                group: Some(ps::Group {
                    key: format!("grp_{}", p.kind.as_str()),
                    name: Some(match p.kind {
                        crate::model::PartnerKind::Distributor => "Distributors".into(),
                        crate::model::PartnerKind::Reseller => "Resellers".into(),
                    }),
                    slug: Some(format!("{}s", p.kind.as_str())),
                }),
                tier: tier.map(|(t, _)| ps::TierRef {
                    key: t.clone(),
                    name: tier_names.get(t.as_str()).map(|n| n.to_string()),
                }),
                joined_at: Some(created),
                manager: None,
                tags: None,
                team: None,
                m_data: None,
                created_at: created,
                updated_at: Some(updated),
            }));
        }
        let mut customer_keys: HashMap<(String, String), String> = HashMap::new();
        let mut customers = Vec::new();
        for (i, ((partner, name), first)) in data::customers(ds).into_iter().enumerate() {
            let key = format!("cust_{:07}", i + 1);
            customers.push(Item::Customer(ps::Customer {
                key: key.clone(),
                customer_key: None,
                email: None,
                name: Some(name.clone()),
                partnership_key: Some(partnership_key(&partner)),
                partner_key: Some(partner.clone()),
                created_at: first,
                updated_at: Some(first),
            }));
            customer_keys.insert((partner, name), key);
        }
        let deals = ds
            .registrations
            .iter()
            .map(|r| {
                let created = data::date_ms(r.registered_on);
                Item::Deal(ps::Deal {
                    key: r.registration_id.clone(),
                    partner_key: r.partner_id.clone(),
                    account_name: Some(r.customer_name.clone()),
                    amount: Some(data::cents(r.expected_amount)),
                    close_date: Some(r.expires_on.format("%Y-%m-%d").to_string()),
                    stage: Some(
                        match r.status {
                            RegistrationStatus::Approved => "approved",
                            RegistrationStatus::Rejected => "lost",
                            RegistrationStatus::Expired => "expired",
                        }
                        .to_string(),
                    ),
                    lost_reason: None,
                    source: None,
                    group_key: None,
                    external_key: None,
                    fields: None,
                    created_at: created,
                    updated_at: Some(created),
                })
            })
            .collect();
        let mut txs = Vec::with_capacity(ds.transactions.len());
        let mut tx_info: HashMap<&str, (i64, i64, &str)> =
            HashMap::with_capacity(if ds.commissions.is_empty() {
                0
            } else {
                ds.transactions.len()
            });
        for (i, t) in ds.transactions.iter().enumerate() {
            let created = t.submitted_at.timestamp_millis();
            let amount = data::cents(t.amount);
            let ckey = customer_keys
                .get(&(t.partner_id.clone(), t.customer_name.clone()))
                .cloned()
                .unwrap_or_default();
            // One in five carries only the customer's key: a client must use the
            // pulled customers for its partner and name.
            let only_key = i % 5 == 4;
            let mut meta = Map::new();
            meta.insert(
                "invoice_number".into(),
                Value::String(t.invoice_number.clone()),
            );
            if let Some(o) = &t.original_transaction_id {
                meta.insert("refund_of".into(), Value::String(o.clone()));
            }
            if !ds.commissions.is_empty() {
                tx_info.insert(&t.transaction_id, (created, amount, &t.currency));
            }
            txs.push(Item::Transaction(ps::TransactionRecord {
                key: t.transaction_id.clone(),
                amount,
                amount_usd: (t.currency == "USD").then_some(amount),
                currency: t.currency.clone(),
                approved: None,
                archived: None,
                category_key: None,
                product_key: Some(t.sku.clone()),
                customer: (!only_key).then(|| ps::CustomerRef {
                    key: ckey.clone(),
                    email: None,
                    name: Some(t.customer_name.clone()),
                    partner_key: Some(t.partner_id.clone()),
                    partnership_key: Some(partnership_key(&t.partner_id)),
                }),
                customer_key: only_key.then_some(ckey),
                metadata: Some(Value::Object(meta)),
                created_at: created,
                updated_at: Some(created),
            }));
        }
        let as_of = data::date_ms(ds.program.as_of);
        let mut rewards = Vec::with_capacity(ds.commissions.len());
        for (i, c) in ds.commissions.iter().enumerate() {
            let info = tx_info.get(c.transaction_id.as_str());
            let created = data::line_created_ms(&c.period, info.map_or(as_of, |x| x.0));
            newest = newest.max(created);
            rewards.push(Item::Reward(ps::Reward {
                key: c.commission_id.clone(),
                amount: data::cents(c.amount),
                description: Some(format!("{} on {}", role_title(c.role), c.transaction_id)),
                reward_status: "approved".into(),
                decline_reason: None,
                action: None,
                customer: None,
                invoice: None,
                offer: Some(ps::OfferRef {
                    key: offer_key(c.role).into(),
                    name: Some(role_title(c.role).into()),
                }),
                // Half the rewards name only the partnership: a client must use the
                // pulled partnerships for the payee.
                partnership: Some(ps::PartnershipRef {
                    key: partnership_key(&c.payee_partner_id),
                    partner_key: (i % 2 == 0).then(|| c.payee_partner_id.clone()),
                    email: None,
                }),
                transaction: Some(ps::TransactionRef {
                    key: c.transaction_id.clone(),
                    amount: info.map(|x| x.1),
                    currency: info.map(|x| x.2.to_string()),
                }),
                trigger: None,
                created_at: created,
                updated_at: Some(created),
            }));
        }
        drop(tx_info);
        let store = Store {
            colls: [
                Coll::from_items(partnerships),
                Coll::from_items(customers),
                Coll::from_items(deals),
                Coll::from_items(txs),
                Coll::from_items(rewards),
            ],
            seq: 0,
        };
        (store, newest)
    }

    pub fn coll(&self, r: Resource) -> &Coll {
        &self.colls[idx(r)]
    }

    fn coll_mut(&mut self, r: Resource) -> &mut Coll {
        &mut self.colls[idx(r)]
    }

    pub fn get(&self, r: Resource, key: &str) -> Option<&Item> {
        self.coll(r).get(key)
    }

    /// One page of a list: the items in list order and `has_more`. The error is a 400's
    /// message. `ignore_cursor` serves the first page whatever `starting_after` says
    /// (the fault of a server that does not honour the cursor).
    pub fn list(
        &self,
        res: Resource,
        q: &ps::ListQuery,
        ignore_cursor: bool,
    ) -> Result<(Vec<&Item>, bool), String> {
        let c = self.coll(res);
        let limit = q.limit.unwrap_or(ps::DEFAULT_LIMIT);
        let desc = match q.order_by.as_deref() {
            None | Some("-created_at") => true,
            Some("created_at") => false,
            Some(o) => return Err(format!("order_by `{o}` is not supported by the simulator")),
        };
        let n = c.ord.len();
        let lo = match q.min_created {
            Some(m) => c
                .ord
                .partition_point(|&i| c.items[i as usize].created() < m),
            None => 0,
        };
        let hi = match q.max_created {
            Some(m) => c
                .ord
                .partition_point(|&i| c.items[i as usize].created() <= m),
            None => n,
        };
        let keep = |it: &Item| {
            q.min_updated.is_none_or(|m| it.updated() >= m)
                && q.max_updated.is_none_or(|m| it.updated() <= m)
        };
        let pos = |name: &str, k: &str| -> Result<isize, String> {
            c.by_key
                .get(k)
                .map(|&i| c.rank[i as usize] as isize)
                .ok_or_else(|| format!("{name}: there is no {} with key `{k}`", res.segment()))
        };
        let step: isize = if desc { -1 } else { 1 };
        let (start, dir, backwards) = match (&q.starting_after, &q.ending_before) {
            (Some(k), _) if !ignore_cursor => (pos("starting_after", k)? + step, step, false),
            (_, Some(k)) => (pos("ending_before", k)? - step, -step, true),
            _ => (
                if desc { hi as isize - 1 } else { lo as isize },
                step,
                false,
            ),
        };
        let (lo, hi) = (lo as isize, hi as isize);
        let mut page = Vec::with_capacity(limit.min(n));
        let mut more = false;
        let mut r = start;
        while r >= lo && r < hi {
            let it = c.at(r as usize);
            if keep(it) {
                if page.len() == limit {
                    more = true;
                    break;
                }
                page.push(it);
            }
            r += dir;
        }
        if backwards {
            page.reverse();
        }
        Ok((page, more))
    }

    fn next_key(&mut self, prefix: &str, r: Resource) -> String {
        loop {
            self.seq += 1;
            let k = format!("{prefix}_{:06}", self.seq);
            if self.coll(r).get(&k).is_none() {
                return k;
            }
        }
    }

    /// The partnership of a partner key.
    fn partnership_of(&self, partner_key: &str) -> Option<&ps::Partnership> {
        match self.get(Resource::Partnerships, &partnership_key(partner_key)) {
            Some(Item::Partnership(p)) if p.partner_key == partner_key => Some(p),
            _ => self
                .coll(Resource::Partnerships)
                .iter()
                .find_map(|it| match it {
                    Item::Partnership(p) if p.partner_key == partner_key => Some(p),
                    _ => None,
                }),
        }
    }

    /// `POST /api/v2/rewards`: a new pending reward at `now`. The error is a 400's
    /// message (an unknown partner, customer or transaction).
    pub fn create_reward(&mut self, b: &ps::CreateReward, now: i64) -> Result<ps::Reward, String> {
        let p = self
            .partnership_of(&b.partner_key)
            .ok_or_else(|| format!("partner_key `{}`: no such partner", b.partner_key))?
            .key
            .clone();
        let customer = match &b.customer_key {
            None => None,
            Some(k) => match self.get(Resource::Customers, k) {
                Some(Item::Customer(c)) => Some(ps::CustomerRef {
                    key: c.key.clone(),
                    email: c.email.clone(),
                    name: c.name.clone(),
                    partner_key: c.partner_key.clone(),
                    partnership_key: c.partnership_key.clone(),
                }),
                _ => return Err(format!("customer_key `{k}`: no such customer")),
            },
        };
        let transaction = match &b.transaction_key {
            None => None,
            Some(k) => match self.get(Resource::Transactions, k) {
                Some(Item::Transaction(t)) => Some(ps::TransactionRef {
                    key: t.key.clone(),
                    amount: Some(t.amount),
                    currency: Some(t.currency.clone()),
                }),
                _ => return Err(format!("transaction_key `{k}`: no such transaction")),
            },
        };
        let key = self.next_key("rwd", Resource::Rewards);
        let r = ps::Reward {
            key,
            amount: b.amount,
            description: Some(b.description.clone()),
            reward_status: "pending".into(),
            decline_reason: None,
            action: None,
            customer,
            invoice: None,
            offer: None,
            partnership: Some(ps::PartnershipRef {
                key: p,
                partner_key: Some(b.partner_key.clone()),
                email: None,
            }),
            transaction,
            trigger: None,
            created_at: now,
            updated_at: Some(now),
        };
        self.coll_mut(Resource::Rewards)
            .push(Item::Reward(r.clone()));
        Ok(r)
    }

    /// Sets a reward's status and decline reason (PartnerStack's own review screen);
    /// `updated_at` moves, `created_at` does not.
    pub fn set_reward_status(
        &mut self,
        key: &str,
        status: &str,
        reason: Option<String>,
        now: i64,
    ) -> Result<(), String> {
        let status = ps::reward_status(status)?;
        match self.coll_mut(Resource::Rewards).get_mut(key) {
            Some(Item::Reward(r)) => {
                r.reward_status = status;
                r.decline_reason = reason;
                r.updated_at = Some(now);
                Ok(())
            }
            _ => Err(format!("no reward `{key}`")),
        }
    }

    /// Changes a transaction's amount (someone editing it in PartnerStack).
    pub fn mutate_transaction(&mut self, key: &str, amount: Decimal, now: i64) -> bool {
        match self.coll_mut(Resource::Transactions).get_mut(key) {
            Some(Item::Transaction(t)) => {
                t.amount = data::cents(amount);
                t.amount_usd = (t.currency == "USD").then_some(t.amount);
                t.updated_at = Some(now);
                true
            }
            _ => false,
        }
    }

    /// `n` new transactions, each with a seller reward, created now (copies of existing
    /// transactions for other invoices). Returns the new transaction keys.
    pub fn create_transactions(&mut self, n: usize, mut tick: impl FnMut() -> i64) -> Vec<String> {
        let base = self.coll(Resource::Transactions).len();
        let mut out = Vec::with_capacity(n);
        if base == 0 {
            return out;
        }
        for j in 0..n {
            let Some(Item::Transaction(t)) = self
                .coll(Resource::Transactions)
                .items
                .get((self.seq as usize + j) % base)
                .cloned()
            else {
                continue;
            };
            let partner = t
                .customer
                .as_ref()
                .and_then(|c| c.partner_key.clone())
                .or_else(|| {
                    t.customer_key
                        .as_ref()
                        .and_then(|k| match self.get(Resource::Customers, k) {
                            Some(Item::Customer(c)) => c.partner_key.clone(),
                            _ => None,
                        })
                });
            let key = self.next_key("txn_sim", Resource::Transactions);
            let now = tick();
            let amount = t.amount.abs();
            let mut meta = Map::new();
            meta.insert("invoice_number".into(), Value::String(format!("SIM-{key}")));
            let tx = ps::TransactionRecord {
                key: key.clone(),
                amount,
                amount_usd: t.amount_usd.map(i64::abs),
                metadata: Some(Value::Object(meta)),
                created_at: now,
                updated_at: Some(now),
                ..t
            };
            let currency = tx.currency.clone();
            self.coll_mut(Resource::Transactions)
                .push(Item::Transaction(tx));
            if let Some(partner) = partner {
                let rkey = self.next_key("rwd", Resource::Rewards);
                let now = tick();
                let r = ps::Reward {
                    key: rkey,
                    amount: amount * 8 / 100,
                    description: Some(format!("Seller commission on {key}")),
                    reward_status: "approved".into(),
                    decline_reason: None,
                    action: None,
                    customer: None,
                    invoice: None,
                    offer: Some(ps::OfferRef {
                        key: offer_key(CommissionRole::Seller).into(),
                        name: Some(role_title(CommissionRole::Seller).into()),
                    }),
                    partnership: Some(ps::PartnershipRef {
                        key: partnership_key(&partner),
                        partner_key: Some(partner),
                        email: None,
                    }),
                    transaction: Some(ps::TransactionRef {
                        key: key.clone(),
                        amount: Some(amount),
                        currency: Some(currency),
                    }),
                    trigger: None,
                    created_at: now,
                    updated_at: Some(now),
                };
                self.coll_mut(Resource::Rewards).push(Item::Reward(r));
            }
            out.push(key);
        }
        out
    }

    /// Serves `value` verbatim as the item `key` of `res` (created now, or in the place
    /// of the item with that key).
    pub fn insert_raw(&mut self, res: Resource, key: &str, value: Value, now: i64) {
        let created = self.get(res, key).map_or(now, Item::created);
        self.coll_mut(res).push(Item::Raw {
            key: key.to_string(),
            created_at: created,
            updated_at: now,
            value,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{CommissionLine, TransactionKind};
    use crate::prm::partnerstack::{map_deal, map_partnership, map_reward, map_transaction};

    fn all(store: &Store, r: Resource) -> Vec<&Item> {
        store.coll(r).iter().collect()
    }

    /// Every record of a program served and mapped back with the client's mappings gives
    /// the data set's values for every field PartnerStack carries.
    #[test]
    fn every_record_round_trips_through_the_client_mappings() {
        let mut ds = crate::demo::generate(&crate::demo::DemoOptions {
            seed: 5,
            partners: 12,
            transactions: 400,
            ..crate::demo::DemoOptions::default()
        })
        .dataset;
        // A fiscal year that is not the calendar year: periods still read back.
        ds.program.fiscal_year_start_month = 1;
        let (store, newest) = Store::build(&ds);
        let mut keys = ps::Keys::default();
        for it in all(&store, Resource::Partnerships) {
            let Item::Partnership(p) = it else { panic!() };
            assert_ne!(p.key, p.partner_key);
            keys.add_partnership(p);
        }
        for it in all(&store, Resource::Customers) {
            let Item::Customer(c) = it else { panic!() };
            keys.add_customer(c);
        }
        let tiers = data::current_tiers(&ds);
        assert_eq!(store.coll(Resource::Partnerships).len(), ds.partners.len());
        for p in &ds.partners {
            let Some(Item::Partnership(sp)) =
                store.get(Resource::Partnerships, &partnership_key(&p.partner_id))
            else {
                panic!("no partnership for {}", p.partner_id)
            };
            let (m, tier) = map_partnership(sp).unwrap().value;
            assert_eq!(m.partner_id, p.partner_id);
            assert_eq!(m.name, p.name);
            assert_eq!(m.joined_on, p.joined_on);
            assert_eq!(
                tier.map(|t| t.0),
                tiers.get(&p.partner_id).map(|t| t.0.clone())
            );
        }
        for r in &ds.registrations {
            let Some(Item::Deal(d)) = store.get(Resource::Deals, &r.registration_id) else {
                panic!()
            };
            assert_eq!(&map_deal(d).unwrap().value, r);
        }
        let roles = role_map();
        let mut only_key = 0;
        let mut refunds = 0;
        for t in &ds.transactions {
            let Some(Item::Transaction(st)) = store.get(Resource::Transactions, &t.transaction_id)
            else {
                panic!()
            };
            if st.customer.is_none() {
                only_key += 1;
            }
            assert!(st.created_at <= newest);
            let (m, version) = map_transaction(st, &keys).unwrap().value;
            assert_eq!(version, st.created_at);
            assert_eq!(m.transaction_id, t.transaction_id);
            assert_eq!(m.kind, t.kind);
            assert_eq!(m.original_transaction_id, t.original_transaction_id);
            assert_eq!(m.partner_id, t.partner_id);
            assert_eq!(m.customer_name, t.customer_name);
            assert_eq!(m.sku, t.sku);
            assert_eq!(m.amount, t.amount);
            assert_eq!(m.currency, t.currency);
            assert_eq!(m.submitted_at, t.submitted_at);
            assert_eq!(m.invoice_number, t.invoice_number);
            if t.kind == TransactionKind::Refund {
                refunds += 1;
                assert!(m.amount < Decimal::ZERO);
            }
        }
        assert!(only_key > 0 && refunds > 0, "{only_key} {refunds}");
        assert!(!ds.commissions.is_empty());
        let mut without_partner_key = 0;
        for c in &ds.commissions {
            let Some(Item::Reward(r)) = store.get(Resource::Rewards, &c.commission_id) else {
                panic!()
            };
            if r.partnership.as_ref().unwrap().partner_key.is_none() {
                without_partner_key += 1;
            }
            let (line, status, reason) = map_reward(r, &keys, &roles).unwrap().value;
            let want = CommissionLine {
                role: if c.amount < Decimal::ZERO {
                    CommissionRole::Clawback
                } else {
                    c.role
                },
                ..c.clone()
            };
            assert_eq!(line, want);
            assert_eq!(status, "approved");
            assert_eq!(reason, None);
        }
        assert!(without_partner_key > 0);
    }

    #[test]
    fn pages_walk_newest_first_and_bounds_are_inclusive() {
        let ds = crate::sim::synth::program(2, 5, 57, true);
        let (store, _) = Store::build(&ds);
        let mut q = ps::ListQuery {
            limit: Some(10),
            ..ps::ListQuery::default()
        };
        let mut seen: Vec<(i64, String)> = Vec::new();
        loop {
            let (page, more) = store.list(Resource::Transactions, &q, false).unwrap();
            seen.extend(page.iter().map(|i| (i.created(), i.key().to_string())));
            if !more {
                break;
            }
            q.starting_after = page.last().map(|i| i.key().to_string());
        }
        assert_eq!(seen.len(), 57);
        assert!(seen.windows(2).all(|w| w[0] > w[1]), "newest first");
        // ending_before the 20th gives the 10 before it, in list order.
        let q = ps::ListQuery {
            limit: Some(10),
            ending_before: Some(seen[20].1.clone()),
            ..ps::ListQuery::default()
        };
        let (page, more) = store.list(Resource::Transactions, &q, false).unwrap();
        let keys: Vec<_> = page.iter().map(|i| i.key().to_string()).collect();
        let want: Vec<_> = seen[10..20].iter().map(|x| x.1.clone()).collect();
        assert_eq!(keys, want);
        assert!(more);
        // Inclusive created bounds, ascending order.
        let (a, b) = (seen[40].0, seen[30].0);
        let q = ps::ListQuery {
            limit: Some(250),
            min_created: Some(a),
            max_created: Some(b),
            order_by: Some("created_at".into()),
            ..ps::ListQuery::default()
        };
        let (page, more) = store.list(Resource::Transactions, &q, false).unwrap();
        let want: Vec<_> = seen
            .iter()
            .filter(|x| x.0 >= a && x.0 <= b)
            .rev()
            .map(|x| x.1.clone())
            .collect();
        assert_eq!(
            page.iter().map(|i| i.key().to_string()).collect::<Vec<_>>(),
            want
        );
        assert!(!more);
        let bad = ps::ListQuery {
            starting_after: Some("nope".into()),
            ..ps::ListQuery::default()
        };
        let e = store.list(Resource::Transactions, &bad, false).unwrap_err();
        assert!(e.contains("`nope`"), "{e}");
    }
}
