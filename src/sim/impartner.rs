//! The Impartner flavour's records: the objects API as a tenant serves it, with the
//! tenant's object and field names taken from a [`Mapping`].
//!
//! Ids are integers, foreign keys nested objects, `created`/`updated` ISO strings and
//! every record carries `recordVersion`. Records built from a data set are stamped with
//! the day they were made (midnight UTC), so many share one `updated`: a list ordered
//! `updated,id` has long runs of ties, as after a bulk import. Each object keeps its
//! records by id and the order `(updated, id)` (rebuilt after a change).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde_json::{json, Map, Value};

use super::dataset as data;
use crate::model::{Dataset, PartnerKind, RegistrationStatus, TransactionKind};
use crate::prm::impartner::{self as imp, Clause, Mapping};

/// One object's records.
#[derive(Debug, Default)]
pub struct Object {
    recs: HashMap<i64, (i64, Map<String, Value>)>,
    /// `(updated ms, id)` ascending; rebuilt when `dirty`.
    order: Vec<(i64, i64)>,
    dirty: bool,
    next_id: i64,
}

impl Object {
    fn new(first_id: i64) -> Object {
        Object {
            next_id: first_id,
            ..Object::default()
        }
    }

    fn insert(&mut self, updated_ms: i64, mut rec: Map<String, Value>) -> i64 {
        let id = match rec.get("id").and_then(Value::as_i64) {
            Some(id) => id,
            None => {
                let id = self.next_id;
                rec.insert("id".into(), json!(id));
                id
            }
        };
        self.next_id = self.next_id.max(id + 1);
        self.recs.insert(id, (updated_ms, rec));
        self.dirty = true;
        id
    }

    fn order(&mut self) -> &[(i64, i64)] {
        if self.dirty {
            self.order = self.recs.iter().map(|(id, (u, _))| (*u, *id)).collect();
            self.order.sort_unstable();
            self.dirty = false;
        }
        &self.order
    }

    pub fn get(&self, id: i64) -> Option<&Map<String, Value>> {
        self.recs.get(&id).map(|(_, r)| r)
    }

    pub fn len(&self) -> usize {
        self.recs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.recs.is_empty()
    }

    /// The field names the object's records carry.
    fn field_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .recs
            .values()
            .take(200)
            .flat_map(|(_, r)| r.keys().cloned())
            .collect();
        names.sort();
        names.dedup();
        names
    }
}

/// The tenant: its objects by name and the ids given to the data set's records.
#[derive(Debug)]
pub struct Store {
    pub mapping: Mapping,
    objects: BTreeMap<String, Object>,
    /// The fields each object declares (`_describe`), whether or not a record has them.
    declared: BTreeMap<String, Vec<String>>,
    /// (object, data-set id) -> Impartner id.
    ids: HashMap<(String, String), i64>,
    /// Custom fields the tenant has (written by PATCH) beyond what its records carry.
    writable: Vec<String>,
}

use imp::json_number as num;

fn time(ms: i64) -> String {
    imp::format_time(DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default())
}

fn day_of(ms: i64) -> i64 {
    ms - ms.rem_euclid(86_400_000)
}

fn day_str(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

fn reference(id: i64, name: Option<&str>) -> Value {
    match name {
        Some(n) => json!({"id": id, "name": n}),
        None => json!({"id": id}),
    }
}

impl Store {
    /// A tenant serving `ds` under `mapping`'s names. Ids: accounts from 1001,
    /// opportunities from 5001, sales from 100001, commission records from 900001.
    pub fn build(ds: &Dataset, mapping: Mapping) -> Store {
        let m = mapping;
        let mut ids: HashMap<(String, String), i64> = HashMap::new();
        let mut objects = BTreeMap::new();
        let mut accounts = Object::new(1001);
        let tiers = data::current_tiers(ds);
        // Distributors first, so a reseller's parent has its id.
        let mut partners: Vec<&crate::model::Partner> = ds.partners.iter().collect();
        partners.sort_by_key(|p| (p.kind != PartnerKind::Distributor, p.partner_id.clone()));
        for p in &partners {
            let id = accounts.next_id;
            ids.insert((m.account_object.clone(), p.partner_id.clone()), id);
            let created = data::date_ms(p.joined_on);
            let tier = tiers.get(&p.partner_id);
            let updated = tier.map_or(created, |(_, since)| created.max(data::date_ms(*since)));
            let mut r = Map::new();
            r.insert("id".into(), json!(id));
            r.insert("name".into(), json!(p.name));
            if let Some((t, _)) = tier {
                r.insert("tier".into(), reference(7000 + id, Some(t)));
                r.insert("partnerLevel".into(), reference(7000 + id, Some(t)));
            }
            r.insert("region".into(), reference(1, Some(p.region.as_str())));
            let parent = p
                .parent_partner_id
                .as_ref()
                .and_then(|pp| ids.get(&(m.account_object.clone(), pp.clone())).copied());
            r.insert(
                "parentAccount".into(),
                parent.map(|x| reference(x, None)).unwrap_or(Value::Null),
            );
            r.insert("crmId".into(), json!(p.partner_id));
            r.insert("created".into(), json!(time(created)));
            r.insert("updated".into(), json!(time(day_of(updated))));
            r.insert("recordVersion".into(), json!(1));
            accounts.insert(day_of(updated), r);
        }
        let acct = |ids: &HashMap<(String, String), i64>, p: &str| {
            ids.get(&(m.account_object.clone(), p.to_string())).copied()
        };
        let mut opps = Object::new(5001);
        for g in &ds.registrations {
            let Some(a) = acct(&ids, &g.partner_id) else {
                continue;
            };
            let id = opps.next_id;
            ids.insert(
                (m.opportunity_object.clone(), g.registration_id.clone()),
                id,
            );
            let created = data::date_ms(g.registered_on);
            let mut r = Map::new();
            r.insert("id".into(), json!(id));
            r.insert("name".into(), json!(g.customer_name));
            r.insert(
                "dollarValue".into(),
                json!(g.expected_amount.normalize().to_string()),
            );
            r.insert("dateExpires".into(), json!(day_str(g.expires_on)));
            r.insert(
                "approvalStatus".into(),
                json!(match g.status {
                    RegistrationStatus::Approved => "Approved",
                    RegistrationStatus::Rejected => "Denied",
                    RegistrationStatus::Expired => "Expired",
                }),
            );
            r.insert("reasonDenied".into(), Value::Null);
            r.insert(m.opportunity_account.clone(), reference(a, None));
            r.insert("created".into(), json!(time(created)));
            r.insert("updated".into(), json!(time(day_of(created))));
            r.insert("recordVersion".into(), json!(1));
            opps.insert(day_of(created), r);
        }
        let mut sales = Object::new(100_001);
        // Ids first: a refund names its sale, which may come later in the file.
        for (i, t) in ds.transactions.iter().enumerate() {
            let id = sales.next_id + i as i64;
            ids.insert((m.sale_object.clone(), t.transaction_id.clone()), id);
        }
        for t in &ds.transactions {
            let Some(a) = acct(&ids, &t.partner_id) else {
                continue;
            };
            let id = ids[&(m.sale_object.clone(), t.transaction_id.clone())];
            let created = t.submitted_at.timestamp_millis();
            let mut r = Map::new();
            r.insert("id".into(), json!(id));
            r.insert(m.sale_partner.clone(), reference(a, None));
            r.insert(
                m.sale_customer.clone(),
                json!({"id": 0, "name": t.customer_name}),
            );
            r.insert(m.sale_date.clone(), json!(day_str(t.closed_on)));
            r.insert(m.sale_amount.clone(), num(t.amount));
            r.insert(m.sale_currency.clone(), json!(t.currency));
            r.insert(m.sale_sku.clone(), json!(t.sku));
            r.insert(m.sale_quantity.clone(), json!(t.quantity));
            r.insert(m.sale_unit_list_price.clone(), num(t.unit_list_price));
            r.insert(m.sale_unit_net_price.clone(), num(t.unit_net_price));
            let opp = t
                .registration_id
                .as_ref()
                .and_then(|g| ids.get(&(m.opportunity_object.clone(), g.clone())));
            r.insert(
                m.sale_opportunity.clone(),
                opp.map(|o| reference(*o, None)).unwrap_or(Value::Null),
            );
            let refund = match (&t.kind, &t.original_transaction_id) {
                (TransactionKind::Refund, Some(o)) => ids.get(&(m.sale_object.clone(), o.clone())),
                _ => None,
            };
            r.insert(
                m.sale_refund_of.clone(),
                refund.map(|o| reference(*o, None)).unwrap_or(Value::Null),
            );
            r.insert("invoiceNumber".into(), json!(t.invoice_number));
            r.insert("created".into(), json!(time(created)));
            r.insert("updated".into(), json!(time(day_of(created))));
            r.insert("recordVersion".into(), json!(1));
            sales.insert(day_of(created), r);
        }
        let submitted: HashMap<&str, i64> = ds
            .transactions
            .iter()
            .map(|t| (t.transaction_id.as_str(), t.submitted_at.timestamp_millis()))
            .collect();
        let as_of = data::date_ms(ds.program.as_of);
        let mut comms = Object::new(900_001);
        for c in &ds.commissions {
            let (Some(sale), Some(payee)) = (
                ids.get(&(m.sale_object.clone(), c.transaction_id.clone()))
                    .copied(),
                acct(&ids, &c.payee_partner_id),
            ) else {
                continue;
            };
            let id = comms.next_id;
            ids.insert((m.commission_object.clone(), c.commission_id.clone()), id);
            let created = data::line_created_ms(
                &c.period,
                submitted
                    .get(c.transaction_id.as_str())
                    .copied()
                    .unwrap_or(as_of),
            );
            let mut r = Map::new();
            r.insert("id".into(), json!(id));
            r.insert(m.commission_sale.clone(), reference(sale, None));
            r.insert(m.commission_payee.clone(), reference(payee, None));
            r.insert(m.commission_amount.clone(), num(c.amount));
            r.insert(m.commission_type.clone(), json!(c.role.as_str()));
            r.insert(m.commission_status.clone(), json!("Approved"));
            r.insert(m.commission_decline_reason.clone(), Value::Null);
            r.insert(m.write_decision_id.clone(), Value::Null);
            r.insert("created".into(), json!(time(created)));
            r.insert("updated".into(), json!(time(day_of(created))));
            r.insert("recordVersion".into(), json!(1));
            comms.insert(day_of(created), r);
        }
        objects.insert(m.account_object.clone(), accounts);
        objects.insert(m.opportunity_object.clone(), opps);
        objects.insert(m.deal_object.clone(), Object::new(3001));
        objects.insert(m.sale_object.clone(), sales);
        objects.insert(m.commission_object.clone(), comms);
        // The custom object tierdesk's `prm` alert channel creates tasks in.
        let tasks = crate::prm::impartner::TaskMapping::default();
        objects.insert(tasks.object.clone(), Object::new(5001));
        let writable = vec![
            m.write_decision.clone(),
            m.write_amount.clone(),
            m.write_reason.clone(),
            m.write_reviewer.clone(),
            m.write_anomaly_score.clone(),
            m.write_flag_reason.clone(),
            m.write_processing_status.clone(),
            m.write_decision_id.clone(),
            m.write_audit_head.clone(),
        ];
        let declared = objects
            .keys()
            .map(|o| {
                let mut f = m.fields(o);
                if *o == m.commission_object {
                    f.extend(writable.iter().cloned());
                }
                if *o == tasks.object {
                    f = vec![
                        tasks.subject.clone(),
                        tasks.body.clone(),
                        tasks.transaction.clone(),
                        tasks.alert_id.clone(),
                    ];
                }
                (o.clone(), f)
            })
            .collect();
        Store {
            mapping: m,
            objects,
            declared,
            ids,
            writable,
        }
    }

    /// The Impartner id the data-set record `key` of `object` was given.
    pub fn id_of(&self, object: &str, key: &str) -> Option<i64> {
        self.ids
            .get(&(object.to_string(), key.to_string()))
            .copied()
    }

    pub fn object(&self, name: &str) -> Option<&Object> {
        self.objects.get(name)
    }

    /// Drops an object (a tenant without it) or one of its fields.
    pub fn remove(&mut self, object: &str, field: Option<&str>) {
        match field {
            None => {
                self.objects.remove(object);
                self.declared.remove(object);
            }
            Some(f) => {
                if let Some(d) = self.declared.get_mut(object) {
                    d.retain(|x| x != f);
                }
                if let Some(o) = self.objects.get_mut(object) {
                    for (_, r) in o.recs.values_mut() {
                        r.remove(f);
                    }
                }
                if object == self.mapping.commission_object {
                    self.writable.retain(|w| w != f);
                }
            }
        }
    }

    /// One page: the records (only `fields` and `id`) and the count matching the filter.
    /// `ignore_skip` serves from the start whatever `skip` says (a broken server).
    pub fn list(
        &mut self,
        object: &str,
        q: &imp::ListQuery,
        ignore_skip: bool,
    ) -> Result<(Vec<Value>, usize), (u16, String)> {
        if let Some(o) = &q.orderby {
            let norm: String = o.chars().filter(|c| !c.is_whitespace()).collect();
            if norm != "updated,id" && norm != "id" {
                return Err((400, format!("orderby `{o}` is not supported")));
            }
        }
        let obj = self.objects.get_mut(object).ok_or_else(|| {
            (
                404,
                format!("object {object} does not exist in this tenant"),
            )
        })?;
        let clauses: &[Clause] = q.filter.as_ref().map_or(&[], |f| &f.0);
        let mut lo_ms = i64::MIN;
        for c in clauses {
            if c.field != "updated" || !matches!(c.op.as_str(), ">=" | ">") {
                return Err((
                    400,
                    format!("filter on `{} {}` is not supported", c.field, c.op),
                ));
            }
            let t = imp::parse_time(&c.value).map_err(|e| (400, format!("filter: {e}")))?;
            let ms = t.timestamp_millis() + i64::from(c.op == ">");
            lo_ms = lo_ms.max(ms);
        }
        let order = obj.order();
        let start = order.partition_point(|(u, _)| *u < lo_ms);
        let count = order.len() - start;
        let skip = if ignore_skip { 0 } else { q.skip };
        let ids: Vec<i64> = order
            .iter()
            .skip(start + skip)
            .take(q.take)
            .map(|x| x.1)
            .collect();
        let page = ids
            .into_iter()
            .filter_map(|id| obj.get(id))
            .map(|r| select(r, &q.fields))
            .collect();
        Ok((page, count))
    }

    pub fn get(&self, object: &str, id: i64) -> Option<Value> {
        self.objects
            .get(object)?
            .get(id)
            .map(|r| Value::Object(r.clone()))
    }

    /// `PATCH`: the body's fields set on the record (only fields the object has, and
    /// never `id`, `created`, `updated` or `recordVersion`), its version bumped.
    /// `POST /api/objects/v1/{object}`: a new record of the object's declared fields.
    pub fn create(
        &mut self,
        object: &str,
        body: &Map<String, Value>,
        now: i64,
    ) -> Result<Value, (u16, String)> {
        let known = self.declared.get(object).cloned().ok_or_else(|| {
            (
                404,
                format!("object {object} does not exist in this tenant"),
            )
        })?;
        check_fields(object, body, &known)?;
        let o = self
            .objects
            .get_mut(object)
            .ok_or_else(|| (404, format!("no {object}")))?;
        let mut r = body.clone();
        r.insert("created".into(), json!(time(now)));
        r.insert("updated".into(), json!(time(now)));
        r.insert("recordVersion".into(), json!(1));
        r.remove("id");
        let id = o.insert(now, r);
        Ok(o.recs
            .get(&id)
            .map(|(_, r)| Value::Object(r.clone()))
            .unwrap_or(Value::Null))
    }

    pub fn patch(
        &mut self,
        object: &str,
        id: i64,
        body: &Map<String, Value>,
        now: i64,
    ) -> Result<Value, (u16, String)> {
        let known: Vec<String> = {
            let o = self.objects.get(object).ok_or_else(|| {
                (
                    404,
                    format!("object {object} does not exist in this tenant"),
                )
            })?;
            let mut k = o.field_names();
            if object == self.mapping.commission_object {
                k.extend(self.writable.iter().cloned());
            }
            k
        };
        check_fields(object, body, &known)?;
        let o = self
            .objects
            .get_mut(object)
            .ok_or_else(|| (404, format!("no {object}")))?;
        let (u, r) = o
            .recs
            .get_mut(&id)
            .ok_or_else(|| (404, format!("{object} {id} not found")))?;
        for (k, v) in body {
            r.insert(k.clone(), v.clone());
        }
        let ver = r.get("recordVersion").and_then(Value::as_i64).unwrap_or(0) + 1;
        r.insert("recordVersion".into(), json!(ver));
        r.insert("updated".into(), json!(time(now)));
        *u = now;
        o.dirty = true;
        Ok(Value::Object(r.clone()))
    }

    /// Sets fields server-side (another user editing the record): version and `updated`
    /// move. False when there is no such record.
    pub fn admin_set(
        &mut self,
        object: &str,
        id: i64,
        fields: Map<String, Value>,
        now: i64,
    ) -> bool {
        let Some(o) = self.objects.get_mut(object) else {
            return false;
        };
        let Some((u, r)) = o.recs.get_mut(&id) else {
            return false;
        };
        for (k, v) in fields {
            r.insert(k, v);
        }
        let ver = r.get("recordVersion").and_then(Value::as_i64).unwrap_or(0) + 1;
        r.insert("recordVersion".into(), json!(ver));
        r.insert("updated".into(), json!(time(now)));
        *u = now;
        o.dirty = true;
        true
    }

    /// `n` new sales (copies of existing ones), each with a seller commission record,
    /// all with the same `updated` (a bulk load: ties). Returns the new sale ids.
    pub fn create_sales(&mut self, n: usize, now: i64) -> Vec<i64> {
        let m = self.mapping.clone();
        let Some(sales) = self.objects.get(&m.sale_object) else {
            return Vec::new();
        };
        let mut templates: Vec<Map<String, Value>> = sales
            .recs
            .values()
            .take(50)
            .map(|(_, r)| r.clone())
            .collect();
        templates.sort_by_key(|r| r.get("id").and_then(Value::as_i64));
        if templates.is_empty() {
            return Vec::new();
        }
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let mut r = templates[i % templates.len()].clone();
            r.remove("id");
            r.insert(m.sale_refund_of.clone(), Value::Null);
            r.insert("invoiceNumber".into(), json!(format!("SIM-{now}-{i}")));
            r.insert("created".into(), json!(time(now)));
            r.insert("updated".into(), json!(time(now)));
            r.insert("recordVersion".into(), json!(1));
            let payee = r.get(&m.sale_partner).cloned().unwrap_or(Value::Null);
            let amount = r
                .get(&m.sale_amount)
                .and_then(|v| crate::prm::de_decimal_number(v.clone()).ok().flatten())
                .unwrap_or_default()
                .abs();
            r.insert(m.sale_amount.clone(), num(amount));
            let Some(sales) = self.objects.get_mut(&m.sale_object) else {
                break;
            };
            let id = sales.insert(now, r);
            let mut c = Map::new();
            c.insert(m.commission_sale.clone(), reference(id, None));
            c.insert(m.commission_payee.clone(), payee);
            c.insert(
                m.commission_amount.clone(),
                num((amount * Decimal::new(8, 2)).round_dp(2)),
            );
            c.insert(m.commission_type.clone(), json!("seller"));
            c.insert(m.commission_status.clone(), json!("Approved"));
            c.insert(m.commission_decline_reason.clone(), Value::Null);
            c.insert(m.write_decision_id.clone(), Value::Null);
            c.insert("created".into(), json!(time(now)));
            c.insert("updated".into(), json!(time(now)));
            c.insert("recordVersion".into(), json!(1));
            if let Some(comms) = self.objects.get_mut(&m.commission_object) {
                comms.insert(now, c);
            }
            out.push(id);
        }
        out
    }

    /// Serves `value` verbatim as record `id` of `object` (a malformed record), but for
    /// its `id` and `updated`: it is served in `(updated, id)` order as of now, as a
    /// real tenant orders a record just written, so `updated` says now.
    pub fn insert_raw(&mut self, object: &str, id: i64, value: Value, now: i64) {
        let mut r = match value {
            Value::Object(o) => o,
            other => {
                let mut o = Map::new();
                o.insert("value".into(), other);
                o
            }
        };
        r.insert("id".into(), json!(id));
        r.insert("updated".into(), json!(time(now)));
        if let Some(o) = self.objects.get_mut(object) {
            o.insert(now, r);
        }
    }

    /// `_describe`: the tenant's objects.
    pub fn describe_all(&self) -> Value {
        let results: Vec<Value> = self
            .objects
            .keys()
            .map(|k| json!({"name": k, "label": k.trim_end_matches("__co"), "custom": k.ends_with("__co")}))
            .collect();
        json!({"count": results.len(), "entity": "_describe", "results": results})
    }

    /// `{Object}/_describe`: its fields.
    pub fn describe(&self, object: &str) -> Option<Value> {
        let o = self.objects.get(object)?;
        let mut names = o.field_names();
        names.extend(self.declared.get(object).into_iter().flatten().cloned());
        names.sort();
        names.dedup();
        let fields: Vec<Value> = names
            .iter()
            .map(|n| json!({"name": n, "custom": n.ends_with("__cf")}))
            .collect();
        Some(json!({"entity": object, "fields": fields}))
    }
}

/// A record with only the asked fields (and `id`); every field when none is asked.
fn select(r: &Map<String, Value>, fields: &[String]) -> Value {
    if fields.is_empty() {
        return Value::Object(r.clone());
    }
    let mut o = Map::new();
    if let Some(id) = r.get("id") {
        o.insert("id".into(), id.clone());
    }
    for f in fields {
        if let Some(v) = r.get(f) {
            o.insert(f.clone(), v.clone());
        }
    }
    Value::Object(o)
}

/// A write's fields: none of the record's own (`id`, `created`, `updated`,
/// `recordVersion`), each one the object has.
fn check_fields(
    object: &str,
    body: &Map<String, Value>,
    known: &[String],
) -> Result<(), (u16, String)> {
    for k in body.keys() {
        if ["id", "created", "updated", "recordVersion"].contains(&k.as_str()) {
            return Err((400, format!("{k} cannot be written")));
        }
        if !known.contains(k) {
            return Err((400, format!("field {k} does not exist on {object}")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn program() -> Dataset {
        crate::demo::generate(&crate::demo::DemoOptions {
            seed: 9,
            partners: 10,
            transactions: 300,
            ..crate::demo::DemoOptions::default()
        })
        .dataset
    }

    /// Every sale and commission record maps back, through the client's mapping, to
    /// the data set's values (ids translated).
    #[test]
    fn records_round_trip_through_the_client_mappings() {
        let ds = program();
        let m = Mapping::default();
        let s = Store::build(&ds, m.clone());
        let roles = crate::prm::RoleMap::default();
        for t in &ds.transactions {
            let id = s.id_of(&m.sale_object, &t.transaction_id).unwrap();
            let v = s.get(&m.sale_object, id).unwrap();
            let (got, version) = imp::map_sale(&v, &m).unwrap().value;
            assert_eq!(version, 1);
            let pid = s.id_of(&m.account_object, &t.partner_id).unwrap();
            assert_eq!(got.partner_id, pid.to_string());
            assert_eq!(got.amount, t.amount);
            assert_eq!(got.quantity, t.quantity);
            assert_eq!(got.unit_list_price, t.unit_list_price);
            assert_eq!(got.unit_net_price, t.unit_net_price);
            assert_eq!(got.closed_on, t.closed_on);
            assert_eq!(got.submitted_at, t.submitted_at);
            assert_eq!(got.kind, t.kind);
            assert_eq!(got.customer_name, t.customer_name);
        }
        for c in &ds.commissions {
            let id = s.id_of(&m.commission_object, &c.commission_id).unwrap();
            let v = s.get(&m.commission_object, id).unwrap();
            let (line, status, _) = imp::map_commission(&v, &m, &roles).unwrap().value;
            assert_eq!(line.amount, c.amount);
            assert_eq!(line.period, c.period, "{}", c.commission_id);
            assert_eq!(status.as_deref(), Some("approved"));
        }
        for p in &ds.partners {
            let id = s.id_of(&m.account_object, &p.partner_id).unwrap();
            let a: imp::Account =
                serde_json::from_value(s.get(&m.account_object, id).unwrap()).unwrap();
            let (got, _) = imp::map_account(&a).unwrap().value;
            assert_eq!(got.name, p.name);
            // The kind is read from the parent account: a reseller with none reads as a
            // distributor (the data-set import says otherwise, and the cache keeps it).
            if p.parent_partner_id.is_some() {
                assert_eq!(got.kind, p.kind);
                let parent = s
                    .id_of(&m.account_object, p.parent_partner_id.as_deref().unwrap())
                    .unwrap();
                assert_eq!(got.parent_partner_id, Some(parent.to_string()));
            }
        }
    }

    #[test]
    fn skip_take_walks_ties_completely_and_a_broken_server_does_not_advance() {
        let ds = program();
        let m = Mapping::default();
        let mut s = Store::build(&ds, m.clone());
        s.create_sales(10_500, data::date_ms(ds.program.as_of));
        let total = s.object(&m.sale_object).unwrap().len();
        let mut pager = imp::OffsetPager::new(1000);
        let mut seen = std::collections::HashSet::new();
        loop {
            let q = pager.query(m.fields(&m.sale_object), None);
            let (page, count) = s.list(&m.sale_object, &q, false).unwrap();
            assert_eq!(count, total);
            let pos: Vec<(i64, i64)> = page.iter().filter_map(imp::position).collect();
            assert_eq!(pos.len(), page.len());
            for p in &pos {
                assert!(seen.insert(p.1), "repeated {}", p.1);
            }
            pager.advance(&m.sale_object, &pos).unwrap();
            if pager.done {
                break;
            }
        }
        assert_eq!(seen.len(), total);
        let mut pager = imp::OffsetPager::new(1000);
        let q = pager.query(vec![], None);
        let (p1, _) = s.list(&m.sale_object, &q, true).unwrap();
        pager
            .advance(
                "Sale",
                &p1.iter().filter_map(imp::position).collect::<Vec<_>>(),
            )
            .unwrap();
        let q = pager.query(vec![], None);
        let (p2, _) = s.list(&m.sale_object, &q, true).unwrap();
        let e = pager
            .advance(
                "Sale",
                &p2.iter().filter_map(imp::position).collect::<Vec<_>>(),
            )
            .unwrap_err();
        assert!(e.contains("does not advance"), "{e}");
    }

    #[test]
    fn a_patch_bumps_the_version_and_refuses_unknown_fields() {
        let ds = program();
        let m = Mapping::default();
        let mut s = Store::build(&ds, m.clone());
        let id = s
            .id_of(&m.commission_object, &ds.commissions[0].commission_id)
            .unwrap();
        let mut body = Map::new();
        body.insert(m.write_decision_id.clone(), json!("d-1"));
        let v = s
            .patch(&m.commission_object, id, &body, 1_900_000_000_000)
            .unwrap();
        assert_eq!(v["recordVersion"], 2);
        assert!(imp::carries_decision(&v, &m, "d-1"));
        body.insert("nope__cf".into(), json!(1));
        let e = s
            .patch(&m.commission_object, id, &body, 1_900_000_000_000)
            .unwrap_err();
        assert!(e.1.contains("nope__cf"));
        // A tenant without the audit-head field says so in _describe.
        s.remove(&m.commission_object, Some(&m.write_audit_head));
        let d = s.describe(&m.commission_object).unwrap();
        assert!(!imp::describe_fields(&d).contains(&m.write_audit_head));
        assert!(imp::describe_fields(&d).contains(&m.write_decision_id));
    }
}
