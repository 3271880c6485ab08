//! What `statement`, `ask` and the workbench's Ask read from the cache: the statement
//! book's inputs and the resolver's facts (reward statuses, audit entries).

use std::collections::BTreeMap;

use anyhow::Context as _;
use chrono::{SecondsFormat, Utc};
use serde_json::{json, Value};

use crate::answer::Facts;
use crate::model::Dataset;
use crate::money::parse_money;
use crate::statement::{Book, DecisionRef, DisputeRef, FinalRef, Review};
use crate::store::Store;

/// Everything the statement builder needs, loaded from the cache.
pub struct Loaded {
    pub ds: Dataset,
    pub reviews: Vec<Review>,
    pub decisions: Vec<DecisionRef>,
    pub finals: BTreeMap<(String, String), FinalRef>,
    pub disputes: Vec<DisputeRef>,
    pub audit_head: String,
}

impl Loaded {
    pub fn book(&self, computed_at: String) -> Book<'_> {
        Book::new(
            &self.ds,
            self.reviews.clone(),
            self.decisions.clone(),
            self.finals.clone(),
            self.disputes.clone(),
            self.audit_head.clone(),
            computed_at,
        )
    }
}

pub fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub fn load(store: &Store) -> anyhow::Result<Loaded> {
    let ds = store
        .load_dataset()
        .context("reading the program from the cache")?;
    let reviews = store
        .review_rows()?
        .into_iter()
        .map(|r| Review {
            current: r.current_amount.as_deref().and_then(parse_money),
            decided: r.decided_amount.as_deref().and_then(parse_money),
            kinds: r
                .kinds
                .as_deref()
                .and_then(|k| serde_json::from_str(k).ok())
                .unwrap_or_default(),
            transaction_id: r.transaction_id,
            partner_id: r.partner_id,
            state: r.state,
            proposal_action: r.proposal_action,
        })
        .collect();
    let decisions = store
        .decisions_with_audit()?
        .into_iter()
        .map(|d| DecisionRef {
            decision_id: d.decision_id,
            transaction_id: d.transaction_id,
            action: d.action,
            actor: d.actor,
            to_state: d.to_state,
            reverts: d.reverts,
            created_at: d.created_at,
            audit_seq: d.audit_seq,
        })
        .collect();
    let mut finals = BTreeMap::new();
    for f in store.final_statements()? {
        let statement: Value = serde_json::from_str(&f.json)
            .with_context(|| format!("stored statement {} is not valid JSON", f.statement_id))?;
        finals.insert(
            (f.partner_id, f.period),
            FinalRef {
                finalized_at: f.finalized_at,
                statement,
            },
        );
    }
    let disputes = store
        .disputes(None)?
        .into_iter()
        .map(|d| DisputeRef {
            dispute_id: format!("dispute:{}", d.dispute_id),
            partner_id: d.partner_id,
            transaction_id: d.transaction_id,
            state: d.state,
            reason_code: d.reason_code,
            claimed: d.claimed,
            granted: d.granted,
            opened_at: d.opened_at,
            updated_at: d.updated_at,
        })
        .collect();
    let audit_head = crate::workflow::audit_head(store)?;
    Ok(Loaded {
        ds,
        reviews,
        decisions,
        finals,
        disputes,
        audit_head,
    })
}

/// Reward statuses and audit entries, for the resolver.
pub fn facts(store: &Store) -> anyhow::Result<Facts> {
    let mut f = Facts::default();
    for (tx, reward, status) in store.all_reward_statuses()? {
        f.rewards.entry(tx).or_default().push((reward, status));
    }
    store.wf().for_each_audit(|a| {
        let parse = |s: &Option<String>| -> Value {
            s.as_deref()
                .and_then(|x| serde_json::from_str(x).ok())
                .unwrap_or(Value::Null)
        };
        f.audit.insert(
            a.seq,
            json!({
                "seq": a.seq,
                "at": a.at,
                "actor": a.actor,
                "role": a.role,
                "action": a.action,
                "target": a.target,
                "before": parse(&a.before),
                "after": parse(&a.after),
                "reason": a.reason,
                "decision_id": a.decision_id,
                "prev_hash": a.prev_hash,
                "hash": a.hash,
            }),
        );
        Ok(true)
    })?;
    Ok(f)
}

pub fn check_partner(ds: &crate::model::Dataset, p: Option<&str>) -> anyhow::Result<()> {
    if let Some(p) = p {
        if !ds.partners.iter().any(|x| x.partner_id == p) {
            anyhow::bail!("--partner: no partner {p:?} in the cache");
        }
    }
    Ok(())
}
