//! Partner statements: one payee, one period, built from the cache's lines, the plan's
//! derivations, the review's decisions and the audit chain. Pure: the caller loads a
//! [`Book`] (no IO here, no clock: `computed_at` is passed in).
//!
//! Money rules (see docs/statements.md):
//! - `earned` = the PRM's lines of the period that are not clawbacks;
//! - `clawbacks` = minus the clawback lines (a positive number);
//! - `adjustments` = the review's adjustments in effect on the payee's own transactions of
//!   the period, plus prior-period adjustments landing in this period;
//! - `held` = lines on hold (an approved hold) or waiting for a decision (flagged, in
//!   review, escalated, documents requested, awaiting sign-off, sent back, in conflict),
//!   as a payout run holds them;
//! - `net = earned + adjustments - clawbacks - held`, `payable = max(net, 0)`,
//!   `carried_forward = payable - net` (what is owed back and carried to later periods).

pub mod render;

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::model::{CommissionLine, CommissionRole, Dataset};
use crate::money::round_cents;
use crate::plan::{Calculator, Derivation};

/// A sentence with the records it rests on and the sums it declares.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sentence {
    pub text: String,
    pub citations: Vec<String>,
    /// Numbers in the text that are sums, counts or differences of cited records' fields.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub derived: Vec<Derived>,
}

/// A declared figure: `sum` of `field` over `of`, `count` of `of`, or `difference` of
/// two earlier declared values (`minus`: `[a, b]` = a - b).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Derived {
    pub value: String,
    pub op: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub of: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub minus: Vec<String>,
}

impl Derived {
    pub fn sum(value: Decimal, field: &str, of: Vec<String>) -> Derived {
        Derived {
            value: m2(value),
            op: "sum".into(),
            field: Some(field.into()),
            of,
            minus: vec![],
        }
    }
    pub fn count(of: Vec<String>) -> Derived {
        Derived {
            value: of.len().to_string(),
            op: "count".into(),
            field: None,
            of,
            minus: vec![],
        }
    }
    pub fn difference(a: Decimal, b: Decimal) -> Derived {
        Derived {
            value: m2(a - b),
            op: "difference".into(),
            field: None,
            of: vec![],
            minus: vec![m2(a), m2(b)],
        }
    }
}

/// Money as a decimal string with cents.
pub fn m2(d: Decimal) -> String {
    format!("{:.2}", round_cents(d))
}

/// A reviewed transaction (a case), as the statement reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct Review {
    pub transaction_id: String,
    pub partner_id: String,
    pub state: String,
    pub current: Option<Decimal>,
    pub decided: Option<Decimal>,
    pub proposal_action: Option<String>,
    /// The flag's reason codes.
    pub kinds: Vec<String>,
}

/// A decision and its audit entry.
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionRef {
    pub decision_id: String,
    pub transaction_id: String,
    pub action: String,
    pub actor: String,
    pub to_state: String,
    pub reverts: Option<String>,
    pub created_at: String,
    pub audit_seq: Option<i64>,
}

/// A stored final statement.
#[derive(Debug, Clone, PartialEq)]
pub struct FinalRef {
    pub finalized_at: String,
    pub statement: Value,
}

/// A dispute as a statement lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DisputeRef {
    pub dispute_id: String,
    pub partner_id: String,
    pub transaction_id: String,
    pub state: String,
    pub reason_code: String,
    pub claimed: String,
    pub granted: Option<String>,
    pub opened_at: String,
    pub updated_at: String,
}

/// What the review did to a transaction, as far as money goes.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Nothing changes the amount (no decision, pending, dismissed ...).
    None,
    /// The decided total replaces the accrued one: `delta` = decided - accrued.
    Adjust { delta: Decimal },
    /// The payee's lines on the transaction are held.
    Hold,
}

/// Everything a statement is built from.
pub struct Book<'a> {
    pub ds: &'a Dataset,
    pub calc: Calculator<'a>,
    pub reviews: BTreeMap<String, Review>,
    /// Decisions per transaction, in the order made.
    pub decisions: BTreeMap<String, Vec<DecisionRef>>,
    /// Final statements by (partner, period).
    pub finals: BTreeMap<(String, String), FinalRef>,
    pub disputes: Vec<DisputeRef>,
    pub audit_head: String,
    pub computed_at: String,
    by_payee_period: HashMap<(String, String), Vec<usize>>,
    tx_index: HashMap<String, usize>,
    lines_by_tx: HashMap<String, Vec<usize>>,
}

/// One line of a statement.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Line {
    pub commission_id: String,
    pub transaction_id: String,
    pub role: String,
    pub amount: String,
    pub prm_amount: String,
    pub closed_on: String,
    pub derivation: Value,
    pub decision: Value,
}

/// A correction to an earlier period shown in this one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PriorAdjustment {
    pub transaction_id: String,
    pub original_period: String,
    pub amount: String,
    pub decision: String,
    pub audit: Option<String>,
    pub decided_at: String,
    pub reason_codes: Vec<String>,
}

/// The money of a payee's period.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Totals {
    pub earned: Decimal,
    pub clawbacks: Decimal,
    pub adjustments: Decimal,
    pub held: Decimal,
    pub net: Decimal,
    pub payable: Decimal,
    pub carried_forward: Decimal,
    /// (commission id, amount) per line.
    pub line_ids: Vec<String>,
    /// Adjustments of the period's own transactions: (tx, delta, decision).
    pub adjusted: Vec<(String, Decimal, Option<DecisionRef>)>,
    pub held_tx: Vec<(String, Decimal, Option<DecisionRef>)>,
    pub prior: Vec<PriorAdjustment>,
}

/// `2026-Q3` -> (2026, 3).
pub fn parse_period(p: &str) -> Result<(i32, u32), String> {
    crate::model::check_quarter(p)
}

pub fn period_string(y: i32, q: u32) -> String {
    format!("{y}-Q{q}")
}

pub fn prev_period(p: &str) -> Option<String> {
    let (y, q) = parse_period(p).ok()?;
    Some(if q == 1 {
        period_string(y - 1, 4)
    } else {
        period_string(y, q - 1)
    })
}

pub fn next_period(p: &str) -> Option<String> {
    let (y, q) = parse_period(p).ok()?;
    Some(if q == 4 {
        period_string(y + 1, 1)
    } else {
        period_string(y, q + 1)
    })
}

/// Periods compare as (year, quarter).
fn pkey(p: &str) -> (i32, u32) {
    parse_period(p).unwrap_or((i32::MIN, 0))
}

fn date_of(ts: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(ts.get(..10)?, "%Y-%m-%d").ok()
}

/// The states in which a decided amount stands.
pub fn stands(state: &str) -> bool {
    matches!(
        state,
        "approved" | "overridden" | "queued_for_push" | "pushed" | "signed_off"
    )
}

/// Case states whose transaction's lines are not paid until someone decides: the set a
/// payout run holds (`store::payout_decisions` uses this too).
pub fn under_review(state: &str) -> bool {
    crate::workflow::awaits_decision(state)
}

impl<'a> Book<'a> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        ds: &'a Dataset,
        reviews: Vec<Review>,
        decisions: Vec<DecisionRef>,
        finals: BTreeMap<(String, String), FinalRef>,
        disputes: Vec<DisputeRef>,
        audit_head: String,
        computed_at: String,
    ) -> Book<'a> {
        let mut by_payee_period: HashMap<(String, String), Vec<usize>> = HashMap::new();
        let mut lines_by_tx: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, c) in ds.commissions.iter().enumerate() {
            by_payee_period
                .entry((c.payee_partner_id.clone(), c.period.clone()))
                .or_default()
                .push(i);
            lines_by_tx
                .entry(c.transaction_id.clone())
                .or_default()
                .push(i);
        }
        let tx_index = ds
            .transactions
            .iter()
            .enumerate()
            .map(|(i, t)| (t.transaction_id.clone(), i))
            .collect();
        let mut by_tx: BTreeMap<String, Vec<DecisionRef>> = BTreeMap::new();
        for d in decisions {
            by_tx.entry(d.transaction_id.clone()).or_default().push(d);
        }
        Book {
            calc: Calculator::new(ds),
            ds,
            reviews: reviews
                .into_iter()
                .map(|r| (r.transaction_id.clone(), r))
                .collect(),
            decisions: by_tx,
            finals,
            disputes,
            audit_head,
            computed_at,
            by_payee_period,
            tx_index,
            lines_by_tx,
        }
    }

    pub fn transaction(&self, tx_id: &str) -> Option<&'a crate::model::Transaction> {
        let ds = self.ds;
        self.tx_index.get(tx_id).map(|&i| &ds.transactions[i])
    }

    pub fn line(&self, commission_id: &str) -> Option<&'a CommissionLine> {
        let ds = self.ds;
        ds.commissions
            .iter()
            .find(|c| c.commission_id == commission_id)
    }

    /// The PRM lines of one transaction.
    pub fn lines_of_tx(&self, tx_id: &str) -> Vec<&'a CommissionLine> {
        let ds = self.ds;
        self.lines_by_tx
            .get(tx_id)
            .map(|v| v.iter().map(|&i| &ds.commissions[i]).collect())
            .unwrap_or_default()
    }

    /// The PRM lines of a payee in a period, in commission id order.
    pub fn lines(&self, partner: &str, period: &str) -> Vec<&'a CommissionLine> {
        let ds = self.ds;
        let mut v: Vec<&CommissionLine> = self
            .by_payee_period
            .get(&(partner.to_string(), period.to_string()))
            .map(|v| v.iter().map(|&i| &ds.commissions[i]).collect())
            .unwrap_or_default();
        v.sort_by(|a, b| a.commission_id.cmp(&b.commission_id));
        v
    }

    /// The periods in which a payee has lines, in order.
    pub fn periods_of(&self, partner: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .by_payee_period
            .keys()
            .filter(|(p, _)| p == partner)
            .map(|(_, q)| q.clone())
            .collect();
        v.sort_by_key(|p| pkey(p));
        v
    }

    /// Every payee with a line in the period.
    pub fn payees(&self, period: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .by_payee_period
            .keys()
            .filter(|(_, q)| q == period)
            .map(|(p, _)| p.clone())
            .collect();
        v.sort();
        v
    }

    /// The latest decision on a transaction that has not been undone.
    pub fn latest_decision(&self, tx_id: &str) -> Option<&DecisionRef> {
        let ds = self.decisions.get(tx_id)?;
        let reverted: Vec<&str> = ds.iter().filter_map(|d| d.reverts.as_deref()).collect();
        ds.iter()
            .rev()
            .find(|d| d.reverts.is_none() && !reverted.contains(&d.decision_id.as_str()))
    }

    /// The decision that put the case in its standing state (for dates and citations).
    fn effect_decision(&self, tx_id: &str) -> Option<&DecisionRef> {
        self.latest_decision(tx_id)
    }

    /// What the review does to a transaction's money.
    pub fn effect(&self, tx_id: &str) -> Effect {
        let Some(r) = self.reviews.get(tx_id) else {
            return Effect::None;
        };
        // Not decided yet (or sent back): the lines wait, as a payout run holds them.
        if under_review(&r.state) {
            return Effect::Hold;
        }
        if !stands(&r.state) {
            return Effect::None;
        }
        let last = self.latest_decision(tx_id).map(|d| d.action.as_str());
        if r.proposal_action.as_deref() == Some("hold") && last == Some("approve") {
            return Effect::Hold;
        }
        match r.decided {
            Some(decided) => {
                let current = r
                    .current
                    .unwrap_or_else(|| self.lines_of_tx(tx_id).iter().map(|l| l.amount).sum());
                Effect::Adjust {
                    delta: decided - current,
                }
            }
            None => Effect::None,
        }
    }

    /// The period a transaction's lines belong to.
    pub fn tx_period(&self, tx_id: &str) -> Option<String> {
        self.transaction(tx_id)
            .map(|t| self.calc.period_of(t.closed_on))
    }

    /// Where an adjustment on a transaction lands: its own period, unless that period's
    /// statement was final before the decision; then the later of the decision's
    /// period and the next one.
    fn landing(&self, partner: &str, tx_period: &str, d: Option<&DecisionRef>) -> String {
        let Some(f) = self
            .finals
            .get(&(partner.to_string(), tx_period.to_string()))
        else {
            return tx_period.to_string();
        };
        let decided_at = d.map(|d| d.created_at.as_str()).unwrap_or("");
        // Times have whole seconds: a decision in the same second as the finalizing is
        // told by the final statement itself (it cites every decision it includes).
        let in_final = d.is_some_and(|d| {
            f.statement
                .to_string()
                .contains(&format!("decision:{}", d.decision_id))
        });
        if decided_at < f.finalized_at.as_str() || (decided_at == f.finalized_at && in_final) {
            return tx_period.to_string();
        }
        let next = next_period(tx_period).unwrap_or_else(|| tx_period.to_string());
        let by_date = date_of(decided_at)
            .map(|d| self.calc.period_of(d))
            .unwrap_or_else(|| next.clone());
        if pkey(&by_date) > pkey(&next) {
            by_date
        } else {
            next
        }
    }

    /// The money of a payee's period (computed, never the stored final).
    pub fn totals(&self, partner: &str, period: &str) -> Totals {
        let mut t = Totals::default();
        let lines = self.lines(partner, period);
        let mut seen_tx: Vec<&str> = Vec::new();
        for l in &lines {
            t.line_ids.push(l.commission_id.clone());
            if l.role == CommissionRole::Clawback {
                t.clawbacks -= l.amount;
            } else {
                t.earned += l.amount;
            }
            if !seen_tx.contains(&l.transaction_id.as_str()) {
                seen_tx.push(&l.transaction_id);
            }
        }
        for tx in seen_tx {
            let d = self.effect_decision(tx).cloned();
            match self.effect(tx) {
                Effect::Hold => {
                    let held: Decimal = lines
                        .iter()
                        .filter(|l| l.transaction_id == tx)
                        .map(|l| l.amount)
                        .sum();
                    t.held += held;
                    t.held_tx.push((tx.to_string(), held, d));
                }
                Effect::Adjust { delta } => {
                    let own = self
                        .transaction(tx)
                        .is_some_and(|x| x.partner_id == partner);
                    if own && self.landing(partner, period, d.as_ref()) == period {
                        t.adjustments += delta;
                        t.adjusted.push((tx.to_string(), delta, d));
                    }
                }
                Effect::None => {}
            }
        }
        // Prior-period adjustments landing here: the payee's transactions of final
        // periods decided after the statement was final.
        for ((p, q), _) in self.finals.range((partner.to_string(), String::new())..) {
            if p != partner {
                break;
            }
            if pkey(q) >= pkey(period) {
                continue;
            }
            for r in self.reviews.values().filter(|r| r.partner_id == partner) {
                if self.tx_period(&r.transaction_id).as_deref() != Some(q.as_str()) {
                    continue;
                }
                let Effect::Adjust { delta } = self.effect(&r.transaction_id) else {
                    continue;
                };
                let d = self.effect_decision(&r.transaction_id);
                if self.landing(partner, q, d) != period {
                    continue;
                }
                t.adjustments += delta;
                t.prior.push(PriorAdjustment {
                    transaction_id: r.transaction_id.clone(),
                    original_period: q.clone(),
                    amount: m2(delta),
                    decision: d
                        .map(|d| format!("decision:{}", d.decision_id))
                        .unwrap_or_default(),
                    audit: d.and_then(|d| d.audit_seq).map(|s| format!("audit:{s}")),
                    decided_at: d.map(|d| d.created_at.clone()).unwrap_or_default(),
                    reason_codes: r.kinds.clone(),
                });
            }
        }
        t.net = t.earned + t.adjustments - t.clawbacks - t.held;
        t.payable = t.net.max(Decimal::ZERO);
        t.carried_forward = t.payable - t.net;
        t
    }

    /// The payable of a period: the stored final statement's, else computed.
    pub fn payable(&self, partner: &str, period: &str) -> Decimal {
        if let Some(f) = self.finals.get(&(partner.to_string(), period.to_string())) {
            if let Some(p) = f
                .statement
                .pointer("/summary/payable")
                .and_then(Value::as_str)
                .and_then(crate::money::parse_money)
            {
                return p;
            }
        }
        self.totals(partner, period).payable
    }

    /// The plan's derivation of a PRM line, as JSON (`null` when the plan gives no such line).
    pub fn derivation(&self, line: &CommissionLine) -> Value {
        let Some(e) = self.calc.explain(&line.transaction_id) else {
            return Value::Null;
        };
        let Some(x) = e
            .lines
            .iter()
            .find(|x| x.line.commission_id == line.commission_id)
            .or_else(|| {
                e.lines.iter().find(|x| {
                    x.line.role == line.role && x.line.payee_partner_id == line.payee_partner_id
                })
            })
        else {
            return Value::Null;
        };
        let plan = &self.ds.plan;
        let mut cites: Vec<String> = Vec::new();
        let mut v = match &x.derivation {
            Derivation::Seller(s) => {
                cites.push(format!("plan:seller_rates.{}", s.tier_id));
                if s.family_multiplier != Decimal::ONE {
                    if let Some(f) = &s.family {
                        cites.push(format!("plan:family_multipliers.{f}"));
                    }
                }
                let mut accel: Option<Value> = None;
                let mut uplift = Decimal::ZERO;
                let segs: Vec<Value> = s
                    .segments
                    .iter()
                    .map(|g| {
                        let base = g.amount * s.rate;
                        if g.multiplier != Decimal::ONE {
                            uplift += g.commission - base;
                        }
                        if let Some(a) = g.attainment_from {
                            if let Some(i) = plan
                                .accelerators
                                .iter()
                                .position(|x| x.attainment_from == a)
                            {
                                let c = format!("plan:accelerators.{i}");
                                if !cites.contains(&c) {
                                    cites.push(c.clone());
                                }
                                accel = Some(json!({
                                    "attainment_from": a.normalize().to_string(),
                                    "multiplier": g.multiplier.normalize().to_string(),
                                    "citation": c,
                                }));
                            }
                        }
                        json!({
                            "amount": m2(g.amount),
                            "multiplier": g.multiplier.normalize().to_string(),
                            "attainment_from": g.attainment_from.map(|a| a.normalize().to_string()),
                            "commission": m2(g.commission),
                        })
                    })
                    .collect();
                if s.capped {
                    cites.push("plan:per_transaction_cap".into());
                }
                json!({
                    "kind": "seller",
                    "tier": s.tier_id,
                    "tier_effective_from": s.tier_effective_from.to_string(),
                    "tier_rate": s.tier_rate.normalize().to_string(),
                    "family": s.family,
                    "family_multiplier": s.family_multiplier.normalize().to_string(),
                    "rate": s.rate.normalize().to_string(),
                    "rate_rule": s.rules.rate_rule.as_ref().map(|(id, _)| id.clone()),
                    "quota": s.quota.map(m2),
                    "bookings_before": m2(s.before),
                    "bookings_after": m2(s.after),
                    "segments": segs,
                    "accelerator": accel,
                    "accelerator_uplift": m2(uplift),
                    "cap": s.cap.map(m2),
                    "capped": s.capped,
                })
            }
            Derivation::Override {
                seller_partner_id,
                rate,
                base,
                ..
            } => {
                cites.push("plan:override_rate".into());
                json!({
                    "kind": "override",
                    "seller_partner_id": seller_partner_id,
                    "rate": rate.normalize().to_string(),
                    "base": m2(*base),
                })
            }
            Derivation::Spiff {
                spiff_id,
                amount_per_unit,
                quantity,
                ..
            } => {
                cites.push(format!("plan:spiffs.{spiff_id}"));
                json!({
                    "kind": "spiff",
                    "spiff_id": spiff_id,
                    "amount_per_unit": m2(*amount_per_unit),
                    "quantity": quantity,
                })
            }
            Derivation::Clawback {
                original_transaction_id,
                original_closed_on,
                days_after,
                window_days,
                original_seller_amount,
                refunded_quantity,
                original_quantity,
            } => {
                cites.push("plan:clawback_window_days".into());
                let fraction = if *original_quantity != 0 {
                    (Decimal::from(*refunded_quantity) / Decimal::from(*original_quantity))
                        .round_dp(4)
                        .normalize()
                        .to_string()
                } else {
                    "0".into()
                };
                json!({
                    "kind": "clawback",
                    "original_transaction_id": original_transaction_id,
                    "original_closed_on": original_closed_on.to_string(),
                    "days_after": days_after,
                    "window_days": window_days,
                    "original_seller_amount": m2(*original_seller_amount),
                    "refunded_quantity": refunded_quantity,
                    "original_quantity": original_quantity,
                    "fraction": fraction,
                })
            }
        };
        if let Some(o) = v.as_object_mut() {
            o.insert("plan_amount".into(), json!(m2(x.line.amount)));
            o.insert("matches_prm".into(), json!(x.line.amount == line.amount));
            o.insert("citations".into(), json!(cites));
            o.insert(
                "steps".into(),
                json!(x
                    .steps
                    .iter()
                    .map(|s| crate::text::sanitize(s).into_owned())
                    .collect::<Vec<_>>()),
            );
        }
        v
    }

    /// What the review did to a transaction, as the partner may see it (`null`: nothing).
    pub fn decision_view(&self, tx_id: &str) -> Value {
        let Some(d) = self.latest_decision(tx_id) else {
            return Value::Null;
        };
        let r = self.reviews.get(tx_id);
        let effect = match self.effect(tx_id) {
            Effect::None => json!({"kind": "none"}),
            Effect::Hold => json!({"kind": "hold"}),
            Effect::Adjust { delta } => json!({"kind": "adjustment", "amount": m2(delta)}),
        };
        json!({
            "decision_id": format!("decision:{}", d.decision_id),
            "action": d.action,
            "state": r.map(|r| r.state.clone()),
            "by": d.actor,
            "at": d.created_at,
            "reason_codes": r.map(|r| r.kinds.clone()).unwrap_or_default(),
            "audit": d.audit_seq.map(|s| format!("audit:{s}")),
            "effect": effect,
        })
    }

    /// The bookings of a payee's period as the plan counts them (the last seller line's
    /// bookings after the sale) and its quota.
    fn attainment(&self, partner: &str, period: &str) -> (Option<Decimal>, Option<Decimal>) {
        let quota = self
            .ds
            .quotas
            .iter()
            .find(|q| q.partner_id == partner && q.period == period)
            .map(|q| q.quota);
        let bookings: Decimal = self
            .ds
            .transactions
            .iter()
            .filter(|t| {
                t.partner_id == partner
                    && t.kind == crate::model::TransactionKind::Sale
                    && self.calc.period_of(t.closed_on) == period
            })
            .map(|t| t.amount)
            .sum();
        (Some(bookings), quota)
    }

    /// Builds the statement of a payee and period. A period with a final statement
    /// returns it unchanged.
    pub fn statement(&self, partner: &str, period: &str) -> Value {
        if let Some(f) = self.finals.get(&(partner.to_string(), period.to_string())) {
            return f.statement.clone();
        }
        self.build(partner, period)
    }

    /// Builds a draft (never the stored final).
    pub fn build(&self, partner: &str, period: &str) -> Value {
        let t = self.totals(partner, period);
        let lines: Vec<Line> = self
            .lines(partner, period)
            .into_iter()
            .map(|l| Line {
                commission_id: l.commission_id.clone(),
                transaction_id: l.transaction_id.clone(),
                role: l.role.as_str().to_string(),
                amount: m2(l.amount),
                prm_amount: m2(l.amount),
                closed_on: self
                    .transaction(&l.transaction_id)
                    .map(|t| t.closed_on.to_string())
                    .unwrap_or_default(),
                derivation: self.derivation(l),
                decision: self.decision_view(&l.transaction_id),
            })
            .collect();
        let (bookings, quota) = self.attainment(partner, period);
        let attainment = match (bookings, quota) {
            (Some(b), Some(q)) if q > Decimal::ZERO => b.checked_div(q).map(|r| r.round_dp(4)),
            _ => None,
        };
        let accelerator = attainment.and_then(|a| {
            self.ds
                .plan
                .accelerators
                .iter()
                .enumerate()
                .filter(|(_, x)| a >= x.attainment_from)
                .max_by(|x, y| x.1.attainment_from.cmp(&y.1.attainment_from))
                .map(|(i, x)| {
                    json!({
                        "attainment_from": x.attainment_from.normalize().to_string(),
                        "multiplier": x.multiplier.normalize().to_string(),
                        "citation": format!("plan:accelerators.{i}"),
                    })
                })
        });
        let prev = prev_period(period);
        let previous_payable = prev.as_deref().map(|p| self.payable(partner, p));
        let ytd = self.ytd(partner, period, t.payable);
        let status = "draft";
        let partner_rec = self.ds.partners.iter().find(|p| p.partner_id == partner);
        let payee = json!({
            "partner_id": partner,
            "name": partner_rec.map(|p| crate::text::sanitize(&p.name).into_owned()),
            "tax_id": partner_rec.and_then(|p| p.tax_id.as_deref()).map(crate::model::mask),
            "bank_account": partner_rec
                .and_then(|p| p.bank_account.as_ref())
                .map(|b| crate::model::mask(&b.account_number)),
        });
        let disputes: Vec<&DisputeRef> = self
            .disputes
            .iter()
            .filter(|d| d.partner_id == partner)
            .filter(|d| {
                self.tx_period(&d.transaction_id).as_deref() == Some(period)
                    || !matches!(d.state.as_str(), "closed" | "withdrawn")
            })
            .collect();
        let narrative = self.narrative(partner, period, &t);
        let id_basis = format!(
            "{partner}\n{period}\n{}\n{}",
            self.audit_head,
            serde_json::to_string(&lines).unwrap_or_default()
        );
        let digest = {
            use sha2::{Digest, Sha256};
            let h = Sha256::digest(id_basis.as_bytes());
            h.iter()
                .take(6)
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        };
        let statement_id = format!("ST-{partner}-{period}-{digest}");
        json!({
            "statement_id": statement_id,
            "payee_partner_id": partner,
            "payee": payee,
            "program": self.ds.program.program_id,
            "plan_id": self.ds.plan.plan_id,
            "currency": if self.ds.program.currency.is_empty() { &self.ds.plan.currency } else { &self.ds.program.currency },
            "period": period,
            "status": status,
            "computed_at": self.computed_at,
            "audit_head": self.audit_head,
            "summary": {
                "payable": m2(t.payable),
                "earned": m2(t.earned),
                "adjustments": m2(t.adjustments),
                "clawbacks": m2(t.clawbacks),
                "held": m2(t.held),
                "carried_forward": m2(t.carried_forward),
                "bookings": bookings.map(m2),
                "quota": quota.map(m2),
                "attainment": attainment.map(|a| a.normalize().to_string()),
                "accelerator": accelerator,
                "previous_period": prev,
                "previous_period_payable": previous_payable.map(m2),
                "change_vs_previous": previous_payable.map(|p| m2(t.payable - p)),
                "ytd_label": "YTD (fiscal year to date, this period included)",
                "ytd_payable": m2(ytd),
            },
            "lines": lines,
            "prior_period_adjustments": t.prior,
            "disputes": disputes,
            "narrative": narrative,
        })
    }

    fn ytd(&self, partner: &str, period: &str, this: Decimal) -> Decimal {
        let Ok((y, q)) = parse_period(period) else {
            return this;
        };
        let mut sum = this;
        for k in 1..q {
            sum += self.payable(partner, &period_string(y, k));
        }
        sum
    }

    /// Deterministic sentences from the change decomposition against the previous period.
    pub fn narrative(&self, partner: &str, period: &str, t: &Totals) -> Vec<Sentence> {
        let mut out = Vec::new();
        let Some(prev) = prev_period(period) else {
            return out;
        };
        out.extend(self.compare(partner, &prev, period, t));
        out
    }

    /// Sentences comparing period `a` (earlier) with `b`, by driver.
    pub fn compare(&self, partner: &str, a: &str, b: &str, tb: &Totals) -> Vec<Sentence> {
        let ta = self.totals(partner, a);
        let la = self.lines(partner, a);
        let lb = self.lines(partner, b);
        let mut out = Vec::new();
        let roles = [
            (CommissionRole::Seller, "Seller commission"),
            (CommissionRole::Override, "Override commission"),
            (CommissionRole::Spiff, "SPIFF"),
            (CommissionRole::Clawback, "Clawbacks"),
        ];
        for (role, label) in roles {
            let ia: Vec<&&CommissionLine> = la.iter().filter(|l| l.role == role).collect();
            let ib: Vec<&&CommissionLine> = lb.iter().filter(|l| l.role == role).collect();
            if ia.is_empty() && ib.is_empty() {
                continue;
            }
            let sa: Decimal = ia.iter().map(|l| l.amount).sum();
            let sb: Decimal = ib.iter().map(|l| l.amount).sum();
            let ids_a: Vec<String> = ia.iter().map(|l| l.commission_id.clone()).collect();
            let ids_b: Vec<String> = ib.iter().map(|l| l.commission_id.clone()).collect();
            let mut cites = ids_b.clone();
            cites.extend(ids_a.iter().cloned());
            out.push(Sentence {
                text: format!(
                    "{label}: {} in {b} from {} lines, against {} in {a} from {} lines, a change of {}.",
                    m2(sb),
                    ids_b.len(),
                    m2(sa),
                    ids_a.len(),
                    m2(sb - sa)
                ),
                citations: cites,
                derived: vec![
                    Derived::sum(sb, "amount", ids_b.clone()),
                    Derived::count(ids_b),
                    Derived::sum(sa, "amount", ids_a.clone()),
                    Derived::count(ids_a),
                    Derived::difference(sb, sa),
                ],
            });
            if role == CommissionRole::Seller {
                let up = |ls: &[&&CommissionLine]| -> Decimal {
                    ls.iter()
                        .filter_map(|l| {
                            self.derivation(l)
                                .get("accelerator_uplift")
                                .and_then(Value::as_str)
                                .and_then(crate::money::parse_money)
                        })
                        .sum()
                };
                let (ua, ub) = (up(&ia), up(&ib));
                if ua != Decimal::ZERO || ub != Decimal::ZERO {
                    let ids_a: Vec<String> = ia.iter().map(|l| l.commission_id.clone()).collect();
                    let ids_b: Vec<String> = ib.iter().map(|l| l.commission_id.clone()).collect();
                    let mut cites = ids_b.clone();
                    cites.extend(ids_a.iter().cloned());
                    cites.push("plan:accelerators".into());
                    out.push(Sentence {
                        text: format!(
                            "Of that, the accelerator added {} in {b} against {} in {a}, a change of {}.",
                            m2(ub),
                            m2(ua),
                            m2(ub - ua)
                        ),
                        citations: cites,
                        derived: vec![
                            Derived::sum(ub, "derivation.accelerator_uplift", ids_b),
                            Derived::sum(ua, "derivation.accelerator_uplift", ids_a),
                            Derived::difference(ub, ua),
                        ],
                    });
                }
            }
        }
        let adj = |t: &Totals| -> (Decimal, Vec<String>) {
            let mut ids = Vec::new();
            let mut sum = Decimal::ZERO;
            for (_, delta, d) in &t.adjusted {
                if let Some(d) = d {
                    ids.push(format!("decision:{}", d.decision_id));
                    sum += delta;
                }
            }
            for p in &t.prior {
                if !p.decision.is_empty() {
                    ids.push(p.decision.clone());
                    sum += crate::money::parse_money(&p.amount).unwrap_or_default();
                }
            }
            (sum, ids)
        };
        let (aa, ida) = adj(&ta);
        let (ab, idb) = adj(tb);
        if !ida.is_empty() || !idb.is_empty() {
            let mut cites = idb.clone();
            cites.extend(ida.iter().cloned());
            out.push(Sentence {
                text: format!(
                    "Review adjustments: {} in {b} from {} decisions, against {} in {a} from {} decisions.",
                    m2(ab),
                    idb.len(),
                    m2(aa),
                    ida.len()
                ),
                citations: cites,
                derived: vec![
                    Derived::sum(ab, "adjustment", idb.clone()),
                    Derived::count(idb),
                    Derived::sum(aa, "adjustment", ida.clone()),
                    Derived::count(ida),
                ],
            });
        }
        let holds = |t: &Totals| -> (Decimal, Vec<String>) {
            let ids: Vec<String> = t
                .held_tx
                .iter()
                .flat_map(|(tx, _, _)| {
                    self.lines(partner, &self.tx_period(tx).unwrap_or_default())
                        .into_iter()
                        .filter(|l| &l.transaction_id == tx)
                        .map(|l| l.commission_id.clone())
                        .collect::<Vec<_>>()
                })
                .collect();
            (t.held, ids)
        };
        let (ha, hida) = holds(&ta);
        let (hb, hidb) = holds(tb);
        if !hida.is_empty() || !hidb.is_empty() {
            let mut cites = hidb.clone();
            cites.extend(hida.iter().cloned());
            out.push(Sentence {
                text: format!(
                    "On hold pending review: {} in {b} against {} in {a}.",
                    m2(hb),
                    m2(ha)
                ),
                citations: cites,
                derived: vec![
                    Derived::sum(hb, "amount", hidb),
                    Derived::sum(ha, "amount", hida),
                ],
            });
        }
        out
    }
}
