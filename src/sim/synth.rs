//! A small deterministic program for the simulator when no data set is given (and for
//! `tierdesk bench sync`, which needs a million transactions quickly). The realistic
//! generator with injected anomalies is `crate::demo`; this one only needs plausible,
//! valid records.

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDate, TimeZone, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;

use crate::model::*;

/// A program with `partners` partners and `transactions` transactions (+ commission lines
/// when `with_commissions`).
pub fn program(seed: u64, partners: usize, transactions: usize, with_commissions: bool) -> Dataset {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let as_of = NaiveDate::from_ymd_opt(2026, 9, 30).unwrap_or_default();
    let start = as_of - Duration::days(720);
    let tiers = vec![
        Tier {
            tier_id: "registered".into(),
            name: "Registered".into(),
            rank: 1,
        },
        Tier {
            tier_id: "select".into(),
            name: "Select".into(),
            rank: 2,
        },
        Tier {
            tier_id: "premier".into(),
            name: "Premier".into(),
            rank: 3,
        },
    ];
    let skus = ["HW-100", "SW-200", "SUB-300", "SEC-400"];
    let products: Vec<Product> = skus
        .iter()
        .enumerate()
        .map(|(i, s)| Product {
            sku: s.to_string(),
            name: format!("Product {s}"),
            family: ["hardware", "software", "subscriptions", "security"][i].into(),
            list_price: Decimal::new([125_000, 49_900, 23_000, 80_000][i], 2),
            certification_required: None,
            active: true,
        })
        .collect();
    let n_dist = (partners / 10).max(1);
    let mut ps = Vec::with_capacity(partners);
    let mut history = Vec::new();
    for i in 0..partners.max(1) {
        let dist = i < n_dist;
        let id = if dist {
            format!("D{i:05}")
        } else {
            format!("R{i:06}")
        };
        let joined = start - Duration::days(rng.gen_range(0..1500));
        history.push(TierHistory {
            partner_id: id.clone(),
            tier_id: tiers[rng.gen_range(0..tiers.len())].tier_id.clone(),
            effective_from: joined,
        });
        ps.push(Partner {
            partner_id: id,
            name: format!("Partner {i} Ltd"),
            kind: if dist {
                PartnerKind::Distributor
            } else {
                PartnerKind::Reseller
            },
            parent_partner_id: (!dist).then(|| format!("D{:05}", rng.gen_range(0..n_dist))),
            region: ["NA", "EMEA", "APAC"][i % 3].into(),
            country: None,
            joined_on: joined,
            certifications: vec!["security".into()],
            tax_id: Some(format!("{:02}-{:07}", i % 97, i)),
            bank_account: None,
        });
    }
    let mut txs = Vec::with_capacity(transactions);
    let mut lines = Vec::new();
    for i in 0..transactions {
        let p = &ps[rng.gen_range(0..ps.len())];
        let prod = &products[rng.gen_range(0..products.len())];
        let qty: i64 = rng.gen_range(1..50);
        // Mostly ordinary discounts; a few deep ones (the PRM's AI flags those).
        let disc = if rng.gen_bool(0.03) {
            Decimal::new(rng.gen_range(46..70), 2)
        } else {
            Decimal::new(rng.gen_range(0..40), 2)
        };
        let net = crate::money::round_cents(prod.list_price * (Decimal::ONE - disc));
        let amount = net * Decimal::from(qty);
        let closed = start + Duration::days(rng.gen_range(0..720));
        let submitted = Utc.from_utc_datetime(&closed.and_hms_opt(9, 0, 0).unwrap_or_default())
            + Duration::seconds(rng.gen_range(0..86_400 * 3));
        let id = format!("T{i:08}");
        if with_commissions {
            lines.push(CommissionLine {
                commission_id: format!("C-{id}-S"),
                transaction_id: id.clone(),
                payee_partner_id: p.partner_id.clone(),
                role: CommissionRole::Seller,
                amount: crate::money::round_cents(amount * Decimal::new(8, 2)),
                period: fiscal_quarter(closed, 1),
            });
        }
        txs.push(Transaction {
            transaction_id: id,
            kind: TransactionKind::Sale,
            original_transaction_id: None,
            partner_id: p.partner_id.clone(),
            registration_id: None,
            customer_name: format!("Customer {} GmbH", rng.gen_range(0..5000)),
            sku: prod.sku.clone(),
            quantity: qty,
            unit_list_price: prod.list_price,
            unit_net_price: net,
            amount,
            currency: "USD".into(),
            closed_on: closed,
            submitted_at: submitted,
            invoice_number: format!("INV-{i:09}"),
            notes: None,
        });
    }
    Dataset {
        program: Program {
            program_id: format!("synthetic-{seed}"),
            name: "Synthetic program".into(),
            currency: "USD".into(),
            fiscal_year_start_month: 1,
            as_of,
            review_window: ReviewWindow {
                start: as_of - Duration::days(60),
                end: as_of,
            },
        },
        plan: Plan {
            plan_id: "synthetic".into(),
            currency: "USD".into(),
            period: None,
            seller_rates: tiers
                .iter()
                .map(|t| (t.tier_id.clone(), Decimal::new(5 + t.rank, 2)))
                .collect::<BTreeMap<_, _>>(),
            family_multipliers: BTreeMap::new(),
            override_rate: Some(Decimal::new(2, 2)),
            accelerators: vec![],
            spiffs: vec![],
            per_transaction_cap: None,
            clawback_window_days: Some(90),
            rules: Vec::new(),
        },
        tiers,
        products,
        discount_policy: vec![],
        partners: ps,
        tier_history: history,
        quotas: vec![],
        registrations: vec![],
        transactions: txs,
        commissions: lines,
        erp_invoices: None,
    }
}
