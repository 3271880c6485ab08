//! The PRM protocol modules against hand-written payloads in the documented shapes
//! (tests/fixtures/prm, written from the vendors' public record, not from the
//! simulator): each maps field by field to the domain model, an item with an unknown
//! extra field still maps, and the queries are what the APIs take.

use std::collections::HashMap;
use std::path::PathBuf;
use std::str::FromStr;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde_json::Value;
use tierdesk::model::*;
use tierdesk::prm::impartner as imp;
use tierdesk::prm::partnerstack as ps;
use tierdesk::prm::RoleMap;

fn fixture(name: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/prm")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn ps_items<T: serde::de::DeserializeOwned>(name: &str) -> (Vec<T>, bool) {
    let env: ps::Envelope<ps::ListData<T>> = serde_json::from_str(&fixture(name)).unwrap();
    assert_eq!(env.status, Some(200));
    assert!(env.message.is_some());
    (env.data.items, env.data.has_more)
}

fn ps_keys() -> ps::Keys {
    let mut keys = ps::Keys::default();
    let (parts, _) = ps_items::<ps::Partnership>("partnerstack/partnerships.json");
    for p in &parts {
        keys.add_partnership(p);
    }
    let (custs, _) = ps_items::<ps::Customer>("partnerstack/customers.json");
    for c in &custs {
        keys.add_customer(c);
    }
    keys
}

#[test]
fn partnerstack_partnerships_map_to_partners() {
    let (items, has_more) = ps_items::<ps::Partnership>("partnerstack/partnerships.json");
    assert!(has_more);
    assert_eq!(items.len(), 2);
    // The first item carries a field PartnerStack does not document; it still maps.
    let m = ps::map_partnership(&items[0]).unwrap();
    let (p, tier) = m.value;
    assert_eq!(p.partner_id, "northwind-it");
    assert_eq!(p.name, "Ada Quist");
    assert_eq!(p.joined_on, date(2024, 3, 1)); // joined_at 1709251200000
    assert_eq!(p.parent_partner_id, None);
    assert_eq!(p.tax_id, None);
    assert_eq!(p.bank_account, None);
    assert_eq!(tier, Some(("tier_gold".to_string(), date(2025, 3, 5))));
    for f in ["region", "kind", "parent_partner_id", "tier_since"] {
        assert!(m.missing.contains(&f), "{f} must be reported missing");
    }
    // No name at all: the email stands in; no tier, no joined_at (created_at instead).
    let (p2, tier2) = ps::map_partnership(&items[1]).unwrap().value;
    assert_eq!(p2.partner_id, "blue-harbor");
    assert_eq!(p2.name, "billing@blueharbor.example");
    assert_eq!(p2.joined_on, date(2024, 2, 1));
    assert_eq!(tier2, None);
}

#[test]
fn partnerstack_deals_map_to_registrations() {
    let (items, _) = ps_items::<ps::Deal>("partnerstack/deals.json");
    let m = ps::map_deal(&items[0]).unwrap();
    assert_eq!(
        m.value,
        Registration {
            registration_id: "deal_Aa01".into(),
            partner_id: "northwind-it".into(),
            customer_name: "Acme Co".into(),
            expected_amount: dec("12500.50"),
            registered_on: date(2025, 3, 3), // 1741000000000
            expires_on: date(2026, 4, 30),   // close_date stands in
            status: RegistrationStatus::Approved,
        }
    );
    assert_eq!(m.missing, vec!["expires_on"]);
    let lost = ps::map_deal(&items[1]).unwrap().value;
    assert_eq!(lost.status, RegistrationStatus::Rejected);
    assert_eq!(lost.expected_amount, dec("3000.00"));
}

#[test]
fn partnerstack_transactions_map_to_transactions() {
    let keys = ps_keys();
    let (items, _) = ps_items::<ps::TransactionRecord>("partnerstack/transactions.json");
    let m = ps::map_transaction(&items[0], &keys).unwrap();
    let (t, version) = m.value;
    assert_eq!(t.transaction_id, "txn_Q9w8E7");
    assert_eq!(t.kind, TransactionKind::Sale);
    assert_eq!(t.partner_id, "northwind-it");
    assert_eq!(t.customer_name, "Acme Co");
    assert_eq!(t.sku, "pro-annual");
    assert_eq!(t.amount, dec("499.00"));
    assert_eq!(t.currency, "EUR");
    assert_eq!(t.invoice_number, "INV-2026-0042");
    assert_eq!(t.submitted_at.timestamp_millis(), 1741176000000);
    assert_eq!(t.closed_on, date(2025, 3, 5));
    assert_eq!(version, 1741262400000, "updated_at is the version");
    for f in ["quantity", "unit_list_price", "unit_net_price"] {
        assert!(m.missing.contains(&f), "{f} must be reported missing");
    }
    assert!(!m.missing.contains(&"invoice_number"));
    // The refund: its nested customer has no partner key; the customers pulled say.
    let r = ps::map_transaction(&items[1], &keys).unwrap().value.0;
    assert_eq!(r.kind, TransactionKind::Refund);
    assert_eq!(r.amount, dec("-499.00"));
    assert_eq!(r.partner_id, "northwind-it");
    assert_eq!(r.original_transaction_id.as_deref(), Some("txn_Q9w8E7"));
    // Without the customer map the partner is unknown: an error, not a guess.
    let e = ps::map_transaction(&items[1], &ps::Keys::default()).unwrap_err();
    assert!(e.contains("cus_44Fg9"), "{e}");
}

#[test]
fn partnerstack_rewards_map_to_commission_lines() {
    let keys = ps_keys();
    let mut roles = RoleMap::default();
    roles
        .by_key
        .insert("offer_dist_override".into(), CommissionRole::Override);
    let (items, _) = ps_items::<ps::Reward>("partnerstack/rewards.json");
    let (line, status, reason) = ps::map_reward(&items[0], &keys, &roles).unwrap().value;
    assert_eq!(
        line,
        CommissionLine {
            commission_id: "rwd_Paid01".into(),
            transaction_id: "txn_Q9w8E7".into(),
            payee_partner_id: "northwind-it".into(), // partnership.key through the map
            role: CommissionRole::Seller,            // offer not in the map: seller
            amount: dec("99.80"),
            period: "2025-Q1".into(),
        }
    );
    assert_eq!(status, "paid");
    assert_eq!(reason, None);
    let (line, status, reason) = ps::map_reward(&items[1], &keys, &roles).unwrap().value;
    assert_eq!(line.role, CommissionRole::Override);
    assert_eq!(line.payee_partner_id, "blue-harbor");
    assert_eq!(status, "declined");
    assert_eq!(reason.as_deref(), Some("Duplicate of an earlier claim"));
    let (line, status, _) = ps::map_reward(&items[2], &keys, &roles).unwrap().value;
    assert_eq!(line.role, CommissionRole::Clawback, "a negative reward");
    assert_eq!(line.amount, dec("-99.80"));
    assert_eq!(line.transaction_id, "txn_R1f2G3");
    assert_eq!(status, "approved");
    // An undocumented status is refused, naming it.
    let mut bad = items[0].clone();
    bad.reward_status = "settled".into();
    let e = ps::map_reward(&bad, &keys, &roles).unwrap_err();
    assert!(e.contains("settled"), "{e}");
}

#[test]
fn partnerstack_error_envelope_and_queries() {
    let e: ps::ErrorBody = serde_json::from_str(&fixture("partnerstack/error.json")).unwrap();
    assert_eq!(e.status, 401);
    let q = ps::ListQuery {
        limit: Some(250),
        starting_after: Some("rwd_Claw03".into()),
        min_created: Some(1741000000000),
        ..Default::default()
    };
    let pairs: HashMap<String, String> = q
        .to_pairs()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    assert_eq!(pairs["limit"], "250");
    assert_eq!(pairs["starting_after"], "rwd_Claw03");
    assert_eq!(pairs["min_created"], "1741000000000");
    assert_eq!(
        ps::ListQuery::parse(ps::Resource::Rewards, &pairs).unwrap(),
        q
    );
    // What the API refuses.
    let mut over = pairs.clone();
    over.insert("limit".into(), "251".into());
    assert!(ps::ListQuery::parse(ps::Resource::Rewards, &over).is_err());
    let mut upd = pairs.clone();
    upd.insert("min_updated".into(), "1".into());
    let e = ps::ListQuery::parse(ps::Resource::Rewards, &upd).unwrap_err();
    assert!(e.contains("rewards"), "{e}");
    assert!(ps::ListQuery::parse(ps::Resource::Deals, &upd).is_ok());
    let mut both = pairs;
    both.insert("ending_before".into(), "x".into());
    assert!(ps::ListQuery::parse(ps::Resource::Rewards, &both).is_err());
    assert_eq!(ps::Resource::Rewards.list_path(), "/api/v2/rewards");
    assert_eq!(ps::create_reward_path(), "/api/v2/rewards");
}

fn imp_results(name: &str) -> Vec<Value> {
    let env: imp::Envelope<imp::ListData<Value>> = serde_json::from_str(&fixture(name)).unwrap();
    assert!(env.success);
    assert_eq!(env.data.count as usize, env.data.results.len());
    env.data.results
}

#[test]
fn impartner_accounts_map_to_partners() {
    let rows = imp_results("impartner/account.json");
    let a: Vec<imp::Account> = rows
        .iter()
        .map(|v| serde_json::from_value(v.clone()).unwrap())
        .collect();
    let (dist, tier) = imp::map_account(&a[0]).unwrap().value;
    assert_eq!(dist.partner_id, "5001");
    assert_eq!(dist.name, "Contoso Distribution");
    assert_eq!(dist.kind, PartnerKind::Distributor);
    assert_eq!(dist.region, "EMEA");
    assert_eq!(dist.joined_on, date(2025, 1, 15));
    assert_eq!(tier, Some(("Platinum".to_string(), date(2026, 3, 5))));
    // The second carries an extra custom field and a zone-less `created`.
    let (res, _) = imp::map_account(&a[1]).unwrap().value;
    assert_eq!(res.partner_id, "5002");
    assert_eq!(res.kind, PartnerKind::Reseller);
    assert_eq!(res.parent_partner_id.as_deref(), Some("5001"));
    assert_eq!(res.region, "North America");
    assert_eq!(res.joined_on, date(2025, 6, 1));
    assert_eq!(
        imp::position(&rows[1]),
        Some((
            chrono::DateTime::parse_from_rfc3339("2026-03-05T14:02:11.250Z")
                .unwrap()
                .timestamp_millis(),
            5002
        ))
    );
}

#[test]
fn impartner_opportunity_sale_and_commission_map() {
    let m = imp::Mapping::default();
    let o: imp::Opportunity =
        serde_json::from_value(imp_results("impartner/opportunity.json")[0].clone()).unwrap();
    let r = imp::map_opportunity(&o, &m).unwrap();
    assert_eq!(
        r.value,
        Registration {
            registration_id: "88001".into(),
            partner_id: "5002".into(),
            customer_name: "Tailspin Toys".into(),
            expected_amount: dec("18250.75"),
            registered_on: date(2026, 3, 1),
            expires_on: date(2026, 6, 30),
            status: RegistrationStatus::Approved,
        }
    );
    assert!(r.missing.is_empty());

    let sale = &imp_results("impartner/sale.json")[0];
    let s = imp::map_sale(sale, &m).unwrap();
    let (t, version) = s.value;
    assert_eq!(t.transaction_id, "910001");
    assert_eq!(t.kind, TransactionKind::Sale);
    assert_eq!(t.partner_id, "5002");
    assert_eq!(t.registration_id.as_deref(), Some("88001"));
    assert_eq!(t.customer_name, "Tailspin Toys");
    assert_eq!(t.sku, "SEC-400");
    assert_eq!(t.quantity, 25);
    assert_eq!(t.unit_list_price, dec("800"));
    assert_eq!(
        t.unit_net_price,
        dec("730.03"),
        "a JSON number read exactly"
    );
    assert_eq!(t.amount, dec("18250.75"));
    assert_eq!(t.currency, "USD");
    assert_eq!(t.closed_on, date(2026, 3, 20));
    assert_eq!(t.invoice_number, "F-2026-311");
    assert_eq!(version, 4);
    assert!(s.missing.is_empty());

    let rows = imp_results("impartner/commission.json");
    let roles = RoleMap::default();
    let (line, status, reason) = imp::map_commission(&rows[0], &m, &roles).unwrap().value;
    assert_eq!(
        line,
        CommissionLine {
            commission_id: "300101".into(),
            transaction_id: "910001".into(),
            payee_partner_id: "5002".into(),
            role: CommissionRole::Seller,
            amount: dec("1460.06"),
            period: "2026-Q1".into(),
        }
    );
    assert_eq!(status.as_deref(), Some("pending"));
    assert_eq!(reason, None);
    let (line, status, reason) = imp::map_commission(&rows[1], &m, &roles).unwrap().value;
    assert_eq!(line.role, CommissionRole::Override);
    assert_eq!(line.amount, dec("365.02"));
    assert_eq!(status.as_deref(), Some("declined"));
    assert_eq!(reason.as_deref(), Some("override not in contract"));

    // Another tenant names its fields differently: the mapping says where they are.
    let mut other = m.clone();
    other.commission_amount = "value__cf".into();
    let e = imp::map_commission(&rows[0], &other, &roles).unwrap_err();
    assert!(e.contains("value__cf"), "{e}");
}

#[test]
fn impartner_query_filter_and_writes() {
    let e: imp::ErrorBody = serde_json::from_str(&fixture("impartner/error.json")).unwrap();
    assert!(!e.success);
    assert_eq!(e.errors[0].http_status, Some(404));
    let m = imp::Mapping::default();
    let q = imp::ListQuery {
        fields: m.fields("Account"),
        filter: Some(imp::Filter::updated_since(date(2026, 3, 5))),
        orderby: Some(imp::ORDER_BY.into()),
        skip: 500,
        take: 250,
    };
    let pairs: HashMap<String, String> = q
        .to_pairs()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    assert_eq!(pairs["filter"], "updated >= '2026/03/05'");
    assert_eq!(pairs["orderby"], "updated,id");
    assert_eq!(pairs["skip"], "500");
    assert_eq!(pairs["take"], "250");
    assert!(pairs["fields"].starts_with("id,created,updated,recordVersion,name"));
    assert_eq!(imp::ListQuery::parse(&pairs).unwrap(), q);
    let f = imp::Filter::parse("name = 'O''Brien' AND account.id >= 12 and updated like '2026%'")
        .unwrap();
    assert_eq!(f.0.len(), 3);
    assert_eq!(f.0[0].value, "O'Brien");
    assert_eq!(f.0[1].field, "account.id");
    assert!(!f.0[1].quoted);
    assert_eq!(f.0[2].op, "like");
    assert_eq!(imp::Filter::parse(&f.render()).unwrap(), f);
    assert!(imp::Filter::parse("updated ~ 3").is_err());
    assert!(imp::parse_tenant("4711").is_ok());
    assert!(imp::parse_tenant("tierdesk-demo").is_err());
    assert_eq!(imp::TENANT_HEADER, "X-PRM-TenantId");
    assert_eq!(
        imp::describe_path(Some("Sale")),
        "/api/objects/v1/Sale/_describe"
    );

    let w = imp::WriteBack {
        decision: "adjust".into(),
        amount: Some(dec("1200.50")),
        reason: Some("rate".into()),
        reviewer: Some("maria".into()),
        anomaly_score: Some(dec("0.82")),
        flag_reason: Some("deal size".into()),
        processing_status: "decided".into(),
        decision_id: "0b9e6c1e-0000-4000-8000-000000000001".into(),
        audit_head: Some("abc".into()),
    };
    let body = imp::patch_body(&m, &w);
    assert_eq!(body["tdAmount__cf"].to_string(), "1200.5");
    assert_eq!(body["tdAnomalyScore__cf"].to_string(), "0.82");
    assert_eq!(body["tdProcessingStatus__cf"], "decided");
    assert_eq!(body["tdFlagReason__cf"], "deal size");
    assert!(imp::carries_decision(&body, &m, &w.decision_id));
    assert!(!imp::carries_decision(
        &imp_results("impartner/commission.json")[0],
        &m,
        &w.decision_id
    ));
}

/// A PartnerStack-like list: newest created first, `starting_after` honoured.
fn ps_page(list: &[String], after: Option<&str>, limit: usize) -> (Vec<String>, bool) {
    let start = match after {
        Some(k) => list.iter().position(|x| x == k).map(|i| i + 1).unwrap_or(0),
        None => 0,
    };
    let page: Vec<String> = list.iter().skip(start).take(limit).cloned().collect();
    let more = start + page.len() < list.len();
    (page, more)
}

#[test]
fn partnerstack_newest_first_paging_with_items_created_during_the_pull() {
    // Keys newest first; 1,003 items at the start.
    let mut list: Vec<String> = (0..1003).rev().map(|i| format!("rwd_{i:05}")).collect();
    let original: std::collections::BTreeSet<String> = list.iter().cloned().collect();
    let mut pager = ps::Pager::default();
    let mut seen = Vec::new();
    let mut created = 0;
    while !pager.done {
        let q = pager.query(250, &ps::ListQuery::default());
        assert_eq!(q.limit, Some(250));
        let (page, more) = ps_page(&list, q.starting_after.as_deref(), 250);
        let keys: Vec<&str> = page.iter().map(String::as_str).collect();
        pager.advance(&keys, more).unwrap();
        seen.extend(page);
        // Two new rewards are created between every two requests (newest: in front).
        for _ in 0..2 {
            list.insert(0, format!("rwd_new_{created:03}"));
            created += 1;
        }
    }
    let got: std::collections::BTreeSet<String> = seen.iter().cloned().collect();
    assert_eq!(got.len(), seen.len(), "no item repeated");
    assert_eq!(
        got, original,
        "every item present at the start, none skipped"
    );
    // A server that ignores starting_after serves the first page again: an error.
    let mut stuck = ps::Pager::default();
    let (page, more) = ps_page(&list, None, 10);
    let keys: Vec<&str> = page.iter().map(String::as_str).collect();
    stuck.advance(&keys, more).unwrap();
    let e = stuck.advance(&keys, more).unwrap_err();
    assert!(e.contains("starting_after"), "{e}");
}

/// An Impartner-like server: records ordered by (updated, id), `skip`/`take`.
fn imp_page(recs: &[(i64, i64)], skip: usize, take: usize) -> Vec<(i64, i64)> {
    recs.iter().skip(skip).take(take).copied().collect()
}

#[test]
fn impartner_offset_paging_over_ten_thousand_records_with_ties() {
    // 10,000 records, 40 per `updated` value (ties), ids not in insertion order.
    let mut recs: Vec<(i64, i64)> = (0..10_000i64)
        .map(|i| (1_772_000_000_000 + (i / 40) * 1000, (i * 7919) % 100_003))
        .collect();
    recs.sort();
    let mut pager = imp::OffsetPager::new(1000);
    let mut got = Vec::new();
    let mut requests = 0;
    while !pager.done {
        let q = pager.query(vec!["id".into(), "updated".into()], None);
        assert_eq!(q.orderby.as_deref(), Some("updated,id"));
        let page = imp_page(&recs, q.skip, q.take);
        pager.advance("Sale", &page).unwrap();
        got.extend(page);
        requests += 1;
        assert!(requests < 100, "the walk must end");
    }
    assert_eq!(got, recs, "complete, in order, nothing twice");
    // A server that ignores skip serves the first page again: stop with an error.
    let mut pager = imp::OffsetPager::new(1000);
    pager.advance("Sale", &imp_page(&recs, 0, 1000)).unwrap();
    let e = pager
        .advance("Sale", &imp_page(&recs, 0, 1000))
        .unwrap_err();
    assert!(e.contains("skip=1000") && e.contains("ignores skip"), "{e}");
}
