//! Deterministic answers to partners' questions, each sentence with its citations, and
//! the record resolver and grounding checker every answer (deterministic or rephrased by
//! a model) must pass. Pure: works on a loaded [`Book`].

pub mod ground;
pub mod model;

use std::collections::BTreeMap;

use chrono::Datelike;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::model::CommissionRole;
use crate::statement::{m2, parse_period, period_string, Book, Effect, Sentence};

/// An answer: sentences with citations, the intent understood, and where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    pub answer: Vec<Sentence>,
    pub intent: String,
    /// `deterministic` or `model`.
    pub source: String,
    /// Why a model's answer was not used, when one was asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
}

/// The intents the answerer knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    LineAdjusted,
    PeriodDiff,
    TierRate,
    Paid,
    DisputeState,
    WhoDecided,
    Unknown,
}

impl Intent {
    pub fn as_str(&self) -> &'static str {
        match self {
            Intent::LineAdjusted => "line_adjusted",
            Intent::PeriodDiff => "period_difference",
            Intent::TierRate => "tier_rate_accelerator",
            Intent::Paid => "line_paid",
            Intent::DisputeState => "dispute_state",
            Intent::WhoDecided => "who_decided",
            Intent::Unknown => "unknown",
        }
    }
}

/// Extra facts the resolver shows: the PRM's reward statuses per transaction.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub rewards: BTreeMap<String, Vec<(String, String)>>,
    /// Audit entries by sequence number, as JSON (loaded on demand by the caller).
    pub audit: BTreeMap<i64, Value>,
}

/// Which intent a question asks, by its words.
pub fn classify(q: &str) -> Intent {
    let l = q.to_lowercase();
    let has = |ws: &[&str]| ws.iter().any(|w| l.contains(w));
    if has(&["dispute", "inquiry", "claim"]) {
        Intent::DisputeState
    } else if has(&[
        "who decided",
        "who approved",
        "who reviewed",
        "reviewer",
        "who signed",
        "what did the review",
        "what was decided",
        "decided",
    ]) {
        Intent::WhoDecided
    } else if has(&[
        "differ",
        "lower than",
        "higher than",
        "less than",
        "more than",
        "compared",
        " vs ",
        "versus",
        "change from",
        "dropped",
        "went down",
        "went up",
    ]) {
        Intent::PeriodDiff
    } else if has(&[
        "tier",
        "rate",
        "accelerator",
        "multiplier",
        "quota",
        "attainment",
    ]) {
        Intent::TierRate
    } else if has(&["paid", "payment", "pay out", "payout", "when will"]) {
        Intent::Paid
    } else if has(&[
        "adjust",
        "clawed",
        "clawback",
        "claw back",
        "reduced",
        "held",
        "hold",
        "changed",
        "why was",
        "why is",
    ]) {
        Intent::LineAdjusted
    } else {
        Intent::Unknown
    }
}

fn clean(tok: &str) -> &str {
    tok.trim_matches(|c: char| !(c.is_alphanumeric() || c == '-' || c == ':' || c == '_'))
}

/// Record ids named in the question (transactions, lines, disputes).
pub fn ids_in(q: &str) -> Vec<String> {
    q.split_whitespace()
        .map(clean)
        .filter(|t| !t.is_empty())
        .map(|t| t.trim_end_matches(':').to_string())
        .filter(|t| {
            t.starts_with("dispute:")
                || t.starts_with("DSP-")
                || t.starts_with("C-")
                || (t.len() > 1
                    && t.starts_with('T')
                    && t[1..]
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-')
                    && t.chars().any(|c| c.is_ascii_digit()))
        })
        .collect()
}

/// Periods named in the question: `2026-Q3` or `Q3` (year from `default_year`).
pub fn periods_in(q: &str, default_year: i32) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let toks: Vec<&str> = q.split_whitespace().map(clean).collect();
    for (i, t) in toks.iter().enumerate() {
        let up = t.to_uppercase();
        let p = if parse_period(&up).is_ok() {
            Some(up)
        } else if up.len() == 2 && up.starts_with('Q') {
            up[1..]
                .parse::<u32>()
                .ok()
                .filter(|q| (1..=4).contains(q))
                .map(|q| {
                    let y = toks
                        .get(i + 1)
                        .and_then(|n| n.parse::<i32>().ok())
                        .filter(|y| (1990..3000).contains(y))
                        .unwrap_or(default_year);
                    period_string(y, q)
                })
        } else {
            None
        };
        if let Some(p) = p {
            if !out.contains(&p) {
                out.push(p);
            }
        }
    }
    out
}

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

fn month_in(q: &str) -> Option<u32> {
    let l = q.to_lowercase();
    for w in l.split(|c: char| !c.is_alphabetic()) {
        for (i, m) in MONTHS.iter().enumerate() {
            if w.len() >= 3 && (w == *m || (w.len() == 3 && m.starts_with(w))) {
                return Some(i as u32 + 1);
            }
        }
    }
    None
}

/// Whether `partner` may see record `id` (`None`: an internal user sees everything).
pub fn in_scope(book: &Book, facts: &Facts, partner: Option<&str>, id: &str) -> bool {
    let Some(p) = partner else {
        return resolve_raw(book, facts, id).is_some();
    };
    if id.starts_with("plan:") {
        return resolve_raw(book, facts, id).is_some();
    }
    if let Some(d) = id.strip_prefix("decision:") {
        return book
            .decisions
            .values()
            .flatten()
            .find(|x| x.decision_id == d)
            .is_some_and(|x| tx_in_scope(book, p, &x.transaction_id));
    }
    if let Some(seq) = id.strip_prefix("audit:") {
        let Some(a) = seq.parse::<i64>().ok().and_then(|s| facts.audit.get(&s)) else {
            return false;
        };
        let target = a["target"].as_str().unwrap_or_default();
        return in_scope(book, facts, partner, target)
            || target == format!("statement:ST-{p}")
            || target.starts_with(&format!("statement:ST-{p}-"));
    }
    if id.starts_with("dispute:") {
        return book
            .disputes
            .iter()
            .any(|d| d.dispute_id == id && d.partner_id == p);
    }
    if let Some(l) = book.line(id) {
        return l.payee_partner_id == p;
    }
    tx_in_scope(book, p, id)
}

/// A transaction is the partner's own, or one the partner earns a line on.
fn tx_in_scope(book: &Book, p: &str, tx: &str) -> bool {
    book.transaction(tx).is_some_and(|t| t.partner_id == p)
        || book.lines_of_tx(tx).iter().any(|l| l.payee_partner_id == p)
}

/// A value inside the plan by dotted path; array elements by index or by an `*_id` field.
fn plan_path(plan: &Value, path: &str) -> Option<Value> {
    let mut cur = plan;
    for seg in path.split('.') {
        cur = match cur {
            Value::Object(o) => o.get(seg)?,
            Value::Array(a) => match seg.parse::<usize>() {
                Ok(i) => a.get(i)?,
                Err(_) => a.iter().find(|e| {
                    e.as_object().is_some_and(|o| {
                        o.iter()
                            .any(|(k, v)| k.ends_with("_id") && v.as_str() == Some(seg))
                    })
                })?,
            },
            _ => return None,
        };
    }
    Some(cur.clone())
}

/// Any cited record as JSON, without scope checks.
pub fn resolve_raw(book: &Book, facts: &Facts, id: &str) -> Option<Value> {
    if let Some(path) = id.strip_prefix("plan:") {
        let plan = serde_json::to_value(&book.ds.plan).ok()?;
        let v = plan_path(&plan, path)?;
        return Some(json!({"type": "plan_rule", "id": id, "path": path, "value": v}));
    }
    if let Some(d) = id.strip_prefix("decision:") {
        let x = book
            .decisions
            .values()
            .flatten()
            .find(|x| x.decision_id == d)?;
        let r = book.reviews.get(&x.transaction_id);
        let latest = book
            .latest_decision(&x.transaction_id)
            .is_some_and(|l| l.decision_id == x.decision_id);
        let mut v = json!({
            "type": "decision",
            "id": id,
            "transaction_id": x.transaction_id,
            "action": x.action,
            "by": x.actor,
            "at": x.created_at,
            "to_state": x.to_state,
            "reverts": x.reverts,
            "audit": x.audit_seq.map(|s| format!("audit:{s}")),
            "latest": latest,
            "case_state": r.map(|r| r.state.clone()),
            "reason_codes": r.map(|r| r.kinds.clone()).unwrap_or_default(),
        });
        if latest {
            if let Some(r) = r {
                v["current_amount"] = json!(r.current.map(m2));
                v["decided_amount"] = json!(r.decided.map(m2));
            }
            match book.effect(&x.transaction_id) {
                Effect::Adjust { delta } => v["adjustment"] = json!(m2(delta)),
                Effect::Hold => {
                    let held: Decimal = book
                        .lines_of_tx(&x.transaction_id)
                        .iter()
                        .map(|l| l.amount)
                        .sum();
                    v["held_amount"] = json!(m2(held));
                }
                Effect::None => {}
            }
        }
        return Some(v);
    }
    if let Some(seq) = id.strip_prefix("audit:") {
        let a = facts.audit.get(&seq.parse::<i64>().ok()?)?;
        let mut v = a.clone();
        v["type"] = json!("audit");
        v["id"] = json!(id);
        return Some(v);
    }
    if id.starts_with("dispute:") {
        let d = book.disputes.iter().find(|d| d.dispute_id == id)?;
        let mut v = serde_json::to_value(d).ok()?;
        v["type"] = json!("dispute");
        v["id"] = json!(id);
        return Some(v);
    }
    if id.starts_with("payout:") {
        return None;
    }
    if let Some(l) = book.line(id) {
        let fin = book
            .finals
            .get(&(l.payee_partner_id.clone(), l.period.clone()));
        let prm_status: Vec<Value> = facts
            .rewards
            .get(&l.transaction_id)
            .map(|v| {
                v.iter()
                    .map(|(r, s)| json!({"reward_id": r, "status": s}))
                    .collect()
            })
            .unwrap_or_default();
        return Some(json!({
            "type": "commission_line",
            "id": id,
            "commission_id": l.commission_id,
            "transaction_id": l.transaction_id,
            "payee_partner_id": l.payee_partner_id,
            "role": l.role.as_str(),
            "amount": m2(l.amount),
            "period": l.period,
            "derivation": book.derivation(l),
            "statement_status": if fin.is_some() { "final" } else { "draft" },
            "finalized_at": fin.map(|f| f.finalized_at.clone()),
            "prm_status": prm_status,
        }));
    }
    let t = book.transaction(id)?;
    Some(json!({
        "type": "transaction",
        "id": id,
        "transaction_id": t.transaction_id,
        "kind": t.kind.as_str(),
        "original_transaction_id": t.original_transaction_id,
        "partner_id": t.partner_id,
        "sku": t.sku,
        "quantity": t.quantity,
        "unit_list_price": m2(t.unit_list_price),
        "unit_net_price": m2(t.unit_net_price),
        "amount": m2(t.amount),
        "currency": t.currency,
        "closed_on": t.closed_on.to_string(),
        "period": book.tx_period(id),
    }))
}

/// A cited record as the asker may see it: `Err` names why not.
pub fn resolve(
    book: &Book,
    facts: &Facts,
    partner: Option<&str>,
    id: &str,
) -> Result<Value, String> {
    if !in_scope(book, facts, partner, id) {
        return Err(match partner {
            Some(p) => format!("{id} is not a record tierdesk can show to partner {p}"),
            None if id.starts_with("payout:") => {
                format!("{id}: payouts are not in this cache (no payout runs yet)")
            }
            None => format!("{id} is not a record in the cache"),
        });
    }
    let mut v = resolve_raw(book, facts, id).ok_or_else(|| format!("{id} is not a record"))?;
    if partner.is_some() && v["type"] == "audit" {
        // Partners see that and when, not the reviewers' internal notes.
        if let Some(o) = v.as_object_mut() {
            o.remove("before");
            o.remove("after");
            o.remove("reason");
        }
    }
    Ok(v)
}

fn pct(d: Decimal) -> String {
    format!("{}%", (d * Decimal::ONE_HUNDRED).normalize())
}

fn s(text: String, citations: Vec<String>) -> Sentence {
    Sentence {
        text,
        citations,
        derived: vec![],
    }
}

fn dstr(v: &Value, k: &str) -> String {
    match v.get(k) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(x) => x.to_string(),
    }
}

/// What the answerer can do, for questions it cannot answer.
pub const CAPABILITIES: &str = "I can answer: why a line was adjusted, held or clawed back (name a transaction or commission id, or a month), why one period differs from another (name both quarters), which tier, rate and accelerator applied (name an id), whether a line is paid, the state of a dispute, and who decided on a transaction.";

fn cannot(intent: Intent, why: &str) -> Answer {
    Answer {
        answer: vec![
            s(
                format!("I cannot answer that from the records: {why}"),
                vec![],
            ),
            s(CAPABILITIES.to_string(), vec![]),
        ],
        intent: intent.as_str().into(),
        source: "deterministic".into(),
        fallback: None,
    }
}

/// The deterministic answer to a question, asked as `partner` (or internally).
pub fn answer(book: &Book, facts: &Facts, partner: Option<&str>, q: &str) -> Answer {
    let intent = classify(q);
    let ids = ids_in(q);
    for id in &ids {
        let known = resolve_raw(book, facts, id).is_some()
            || (id.starts_with("DSP-") && in_scope(book, facts, partner, &format!("dispute:{id}")));
        let norm = if id.starts_with("DSP-") {
            format!("dispute:{id}")
        } else {
            id.clone()
        };
        if !known || !in_scope(book, facts, partner, &norm) {
            return cannot(
                intent,
                &format!("{id} is not among the records you can see."),
            );
        }
    }
    let sentences = match intent {
        Intent::LineAdjusted => adjusted(book, facts, partner, q, &ids),
        Intent::PeriodDiff => period_diff(book, partner, q),
        Intent::TierRate => tier_rate(book, &ids),
        Intent::Paid => paid(book, facts, &ids),
        Intent::DisputeState => disputes(book, partner, &ids),
        Intent::WhoDecided => who(book, &ids),
        Intent::Unknown => Err("the question matches none of the questions I know.".into()),
    };
    match sentences {
        Ok(v) if !v.is_empty() => Answer {
            answer: v,
            intent: intent.as_str().into(),
            source: "deterministic".into(),
            fallback: None,
        },
        Ok(_) => cannot(intent, "no record matches the question."),
        Err(why) => cannot(intent, &why),
    }
}

/// The transactions an id list names (a line's transaction for a commission id).
fn txs_of(book: &Book, ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for id in ids {
        let t = match book.line(id) {
            Some(l) => l.transaction_id.clone(),
            None if book.transaction(id).is_some() => id.clone(),
            None => continue,
        };
        if !out.contains(&t) {
            out.push(t);
        }
    }
    out
}

fn decision_sentences(book: &Book, tx: &str, out: &mut Vec<Sentence>) -> bool {
    let Some(d) = book.latest_decision(tx) else {
        return false;
    };
    let did = format!("decision:{}", d.decision_id);
    let mut cites = vec![did.clone(), tx.to_string()];
    if let Some(a) = d.audit_seq {
        cites.push(format!("audit:{a}"));
    }
    let date = d.created_at.get(..10).unwrap_or(&d.created_at).to_string();
    let r = book.reviews.get(tx);
    out.push(s(
        format!(
            "Transaction {tx} was reviewed: {} decided {} on {date}; the case is {}.",
            d.actor,
            d.action.replace('_', " "),
            r.map(|r| r.state.replace('_', " ")).unwrap_or_default()
        ),
        cites.clone(),
    ));
    if let Some(r) = r {
        if !r.kinds.is_empty() {
            out.push(s(
                format!(
                    "It was flagged because of the reason codes {}.",
                    r.kinds.join(", ")
                ),
                vec![did.clone()],
            ));
        }
    }
    match book.effect(tx) {
        Effect::Adjust { delta } => {
            if let Some(r) = r {
                out.push(s(
                    format!(
                        "The decided commission total is {} against {} accrued, an adjustment of {}.",
                        r.decided.map(m2).unwrap_or_default(),
                        r.current.map(m2).unwrap_or_default(),
                        m2(delta)
                    ),
                    vec![did],
                ));
            }
        }
        Effect::Hold => {
            let held: Decimal = book.lines_of_tx(tx).iter().map(|l| l.amount).sum();
            out.push(s(
                format!(
                    "Its commission of {} is on hold until the review ends.",
                    m2(held)
                ),
                vec![did],
            ));
        }
        Effect::None => {}
    }
    true
}

fn clawback_sentences(
    book: &Book,
    tx: &str,
    partner: Option<&str>,
    out: &mut Vec<Sentence>,
) -> bool {
    let mut any = false;
    for l in book.lines_of_tx(tx) {
        if l.role != CommissionRole::Clawback || partner.is_some_and(|p| p != l.payee_partner_id) {
            continue;
        }
        let d = book.derivation(l);
        if d.is_null() {
            out.push(s(
                format!(
                    "Line {} is a clawback of {} on refund {tx}.",
                    l.commission_id,
                    m2(l.amount)
                ),
                vec![l.commission_id.clone(), tx.to_string()],
            ));
        } else {
            let orig = dstr(&d, "original_transaction_id");
            out.push(s(
                format!(
                    "Line {} is a clawback of {}: refund {tx} returned {} of {} units of sale {orig} (closed {}), {} days after the sale, within the clawback window of {} days.",
                    l.commission_id,
                    m2(l.amount),
                    dstr(&d, "refunded_quantity"),
                    dstr(&d, "original_quantity"),
                    dstr(&d, "original_closed_on"),
                    dstr(&d, "days_after"),
                    dstr(&d, "window_days"),
                ),
                vec![l.commission_id.clone(), tx.to_string(), "plan:clawback_window_days".into()],
            ));
            out.push(s(
                format!(
                    "The clawback takes back that fraction, {}, of the original seller line of {}.",
                    dstr(&d, "fraction"),
                    dstr(&d, "original_seller_amount")
                ),
                vec![l.commission_id.clone()],
            ));
        }
        any = true;
    }
    any
}

fn adjusted(
    book: &Book,
    _facts: &Facts,
    partner: Option<&str>,
    q: &str,
    ids: &[String],
) -> Result<Vec<Sentence>, String> {
    let mut txs = txs_of(book, ids);
    if txs.is_empty() {
        let (Some(m), Some(p)) = (month_in(q), partner) else {
            return Err(
                "name a transaction or commission id (or ask as a partner about a month).".into(),
            );
        };
        // The partner's transactions closed in that month (latest year on or before
        // the program's as-of date) with a decision or a clawback.
        let as_of = book.ds.program.as_of;
        let year = if m <= as_of.month() {
            as_of.year()
        } else {
            as_of.year() - 1
        };
        let year = periods_year(q).unwrap_or(year);
        txs = book
            .ds
            .transactions
            .iter()
            .filter(|t| t.partner_id == p && t.closed_on.month() == m && t.closed_on.year() == year)
            .filter(|t| {
                book.latest_decision(&t.transaction_id).is_some()
                    || book
                        .lines_of_tx(&t.transaction_id)
                        .iter()
                        .any(|l| l.role == CommissionRole::Clawback)
            })
            .map(|t| t.transaction_id.clone())
            .collect();
        if txs.is_empty() {
            return Ok(vec![s(
                "None of your transactions closed in that month was adjusted, held or clawed back by the review."
                    .into(),
                vec![],
            )]);
        }
    }
    let mut out = Vec::new();
    for tx in txs.iter().take(10) {
        let a = decision_sentences(book, tx, &mut out);
        let b = clawback_sentences(book, tx, partner, &mut out);
        if !a && !b {
            let lines: Vec<_> = book
                .lines_of_tx(tx)
                .into_iter()
                .filter(|l| partner.is_none_or(|p| p == l.payee_partner_id))
                .collect();
            for l in lines {
                out.push(s(
                    format!(
                        "No review decision touched transaction {tx}; line {} stands at {} as the PRM computed it.",
                        l.commission_id,
                        m2(l.amount)
                    ),
                    vec![l.commission_id.clone(), tx.clone()],
                ));
                let d = book.derivation(l);
                if d.get("matches_prm") == Some(&Value::Bool(false)) {
                    out.push(s(
                        format!(
                            "The plan gives {} for line {}, which differs from the PRM's {}.",
                            dstr(&d, "plan_amount"),
                            l.commission_id,
                            m2(l.amount)
                        ),
                        vec![l.commission_id.clone()],
                    ));
                }
            }
        }
    }
    Ok(out)
}

fn periods_year(q: &str) -> Option<i32> {
    q.split(|c: char| !c.is_ascii_digit())
        .filter(|t| t.len() == 4)
        .filter_map(|t| t.parse::<i32>().ok())
        .find(|y| (1990..3000).contains(y))
}

fn period_diff(book: &Book, partner: Option<&str>, q: &str) -> Result<Vec<Sentence>, String> {
    let Some(p) = partner else {
        return Err("ask as a partner (--partner P) to compare that partner's periods.".into());
    };
    let periods = book.periods_of(p);
    let default_year = periods
        .last()
        .and_then(|x| parse_period(x).ok())
        .map(|(y, _)| y)
        .unwrap_or(book.ds.program.as_of.year());
    let mut named = periods_in(q, default_year);
    if named.len() == 1 {
        if let Some(prev) = crate::statement::prev_period(&named[0]) {
            named.insert(0, prev);
        }
    }
    if named.len() < 2 {
        return Err(
            "name the two quarters to compare (like Q2 and Q3, or 2026-Q2 and 2026-Q3).".into(),
        );
    }
    let (mut a, mut b) = (named[0].clone(), named[1].clone());
    if parse_period(&a).ok() > parse_period(&b).ok() {
        std::mem::swap(&mut a, &mut b);
    }
    let tb = book.totals(p, &b);
    let mut out = vec![s(
        format!("Comparing {b} with {a}, driver by driver:"),
        vec![],
    )];
    out.extend(book.compare(p, &a, &b, &tb));
    // Tier and rate of the last seller line of each period.
    let mut tier_bits = Vec::new();
    let mut cites = Vec::new();
    for per in [&b, &a] {
        if let Some(l) = book
            .lines(p, per)
            .into_iter()
            .filter(|l| l.role == CommissionRole::Seller)
            .max_by(|x, y| x.commission_id.cmp(&y.commission_id))
        {
            let d = book.derivation(l);
            if d.is_null() {
                continue;
            }
            let rate = crate::money::parse_money(&dstr(&d, "tier_rate")).unwrap_or_default();
            let mut bit = format!(
                "in {per} tier {} at a seller rate of {}",
                dstr(&d, "tier"),
                pct(rate)
            );
            if let Some(acc) = d.get("accelerator").filter(|a| !a.is_null()) {
                bit.push_str(&format!(
                    " with the accelerator multiplier {} reached",
                    dstr(acc, "multiplier")
                ));
                cites.push(dstr(acc, "citation"));
            }
            tier_bits.push(bit);
            cites.push(l.commission_id.clone());
            cites.push(format!("plan:seller_rates.{}", dstr(&d, "tier")));
        }
    }
    if !tier_bits.is_empty() {
        out.push(s(
            format!("Latest seller lines: {}.", tier_bits.join("; ")),
            cites,
        ));
    }
    if out.len() == 1 {
        return Ok(vec![s(
            format!("You have no commission lines in {a} or {b}."),
            vec![],
        )]);
    }
    Ok(out)
}

fn tier_rate(book: &Book, ids: &[String]) -> Result<Vec<Sentence>, String> {
    if ids.is_empty() {
        return Err("name a transaction or commission id.".into());
    }
    let mut out = Vec::new();
    let mut lines = Vec::new();
    for id in ids {
        match book.line(id) {
            Some(l) => lines.push(l),
            None => lines.extend(book.lines_of_tx(id)),
        }
    }
    for l in lines {
        let d = book.derivation(l);
        let c = l.commission_id.clone();
        let mut cites = vec![c.clone()];
        if let Some(a) = d.get("citations").and_then(Value::as_array) {
            cites.extend(a.iter().filter_map(|x| x.as_str().map(String::from)));
        }
        match d.get("kind").and_then(Value::as_str) {
            Some("seller") => {
                let tr = crate::money::parse_money(&dstr(&d, "tier_rate")).unwrap_or_default();
                let r = crate::money::parse_money(&dstr(&d, "rate")).unwrap_or_default();
                out.push(s(
                    format!(
                        "Line {c}: tier {} (tier history effective {}), seller rate {}, family multiplier {}, so the rate is {}.",
                        dstr(&d, "tier"),
                        dstr(&d, "tier_effective_from"),
                        pct(tr),
                        dstr(&d, "family_multiplier"),
                        pct(r)
                    ),
                    cites.clone(),
                ));
                if !d["quota"].is_null() {
                    out.push(s(
                        format!(
                            "Quarter bookings were {} before this sale and {} after it, against a quota of {}.",
                            dstr(&d, "bookings_before"),
                            dstr(&d, "bookings_after"),
                            dstr(&d, "quota")
                        ),
                        vec![c.clone()],
                    ));
                }
                match d.get("accelerator").filter(|a| !a.is_null()) {
                    Some(acc) => out.push(s(
                        format!(
                            "The accelerator from attainment {} applied: multiplier {}, adding {} to the line.",
                            pct(crate::money::parse_money(&dstr(acc, "attainment_from")).unwrap_or_default()),
                            dstr(acc, "multiplier"),
                            dstr(&d, "accelerator_uplift")
                        ),
                        vec![c.clone(), dstr(acc, "citation")],
                    )),
                    None => out.push(s(
                        "No accelerator applied: the sale stayed below the first attainment threshold."
                            .into(),
                        vec![c.clone(), "plan:accelerators".into()],
                    )),
                }
                if d["capped"] == Value::Bool(true) {
                    out.push(s(
                        format!("The line was capped at {}.", dstr(&d, "cap")),
                        vec![c.clone(), "plan:per_transaction_cap".into()],
                    ));
                }
                out.push(s(
                    format!(
                        "The plan gives {}; the PRM line is {}.",
                        dstr(&d, "plan_amount"),
                        m2(l.amount)
                    ),
                    vec![c.clone()],
                ));
            }
            Some("override") => out.push(s(
                format!(
                    "Line {c} is an override at a rate of {} of the seller's base {}: {}.",
                    pct(crate::money::parse_money(&dstr(&d, "rate")).unwrap_or_default()),
                    dstr(&d, "base"),
                    m2(l.amount)
                ),
                cites,
            )),
            Some("spiff") => out.push(s(
                format!(
                    "Line {c} is SPIFF {}: {} per unit for {} units.",
                    dstr(&d, "spiff_id"),
                    dstr(&d, "amount_per_unit"),
                    dstr(&d, "quantity")
                ),
                cites,
            )),
            Some("clawback") => {
                clawback_sentences(book, &l.transaction_id, Some(&l.payee_partner_id), &mut out);
            }
            _ => out.push(s(
                format!(
                    "Line {c} ({}) of {} has no derivation in the current plan.",
                    l.role.as_str(),
                    m2(l.amount)
                ),
                vec![c.clone()],
            )),
        }
    }
    Ok(out)
}

fn paid(book: &Book, facts: &Facts, ids: &[String]) -> Result<Vec<Sentence>, String> {
    if ids.is_empty() {
        return Err("name a transaction or commission id.".into());
    }
    let mut out = Vec::new();
    for tx in txs_of(book, ids) {
        let lines: Vec<_> = book
            .lines_of_tx(&tx)
            .into_iter()
            .filter(|l| ids.contains(&l.commission_id) || ids.contains(&tx))
            .collect();
        for l in lines {
            let c = l.commission_id.clone();
            let fin = book
                .finals
                .get(&(l.payee_partner_id.clone(), l.period.clone()));
            match fin {
                Some(f) => out.push(s(
                    format!(
                        "Line {c} of {} is on the final statement of {}, final since {}.",
                        m2(l.amount),
                        l.period,
                        f.finalized_at.get(..10).unwrap_or(&f.finalized_at)
                    ),
                    vec![c.clone()],
                )),
                None => out.push(s(
                    format!(
                        "Line {c} of {} is on the draft statement of {}: it is paid once that period's payout run is approved.",
                        m2(l.amount),
                        l.period
                    ),
                    vec![c.clone()],
                )),
            }
            if let Some(r) = facts.rewards.get(&tx) {
                let st: Vec<&str> = r.iter().map(|(_, s)| s.as_str()).collect();
                out.push(s(
                    format!("The PRM reports the reward status as {}.", st.join(", ")),
                    vec![c.clone()],
                ));
            }
        }
        if book.effect(&tx) == Effect::Hold {
            decision_sentences(book, &tx, &mut out);
        }
    }
    Ok(out)
}

fn disputes(book: &Book, partner: Option<&str>, ids: &[String]) -> Result<Vec<Sentence>, String> {
    let wanted: Vec<String> = ids
        .iter()
        .map(|i| {
            if i.starts_with("dispute:") {
                i.clone()
            } else if i.starts_with("DSP-") {
                format!("dispute:{i}")
            } else {
                i.clone()
            }
        })
        .collect();
    let ds: Vec<_> = book
        .disputes
        .iter()
        .filter(|d| partner.is_none_or(|p| d.partner_id == p))
        .filter(|d| {
            wanted.is_empty()
                || wanted.contains(&d.dispute_id)
                || wanted.contains(&d.transaction_id)
        })
        .collect();
    if ds.is_empty() {
        return Ok(vec![s(
            "There is no dispute on record for that.".into(),
            vec![],
        )]);
    }
    Ok(ds
        .into_iter()
        .map(|d| {
            let granted = d
                .granted
                .as_deref()
                .map(|g| format!(", granted {g}"))
                .unwrap_or_default();
            s(
                format!(
                    "Dispute {} on transaction {} ({}) is {} since {}: claimed {}{granted}.",
                    d.dispute_id.trim_start_matches("dispute:"),
                    d.transaction_id,
                    d.reason_code,
                    d.state.replace('_', " "),
                    d.updated_at.get(..10).unwrap_or(&d.updated_at),
                    d.claimed
                ),
                vec![d.dispute_id.clone(), d.transaction_id.clone()],
            )
        })
        .collect())
}

fn who(book: &Book, ids: &[String]) -> Result<Vec<Sentence>, String> {
    let txs = txs_of(book, ids);
    if txs.is_empty() {
        return Err("name a transaction or commission id.".into());
    }
    let mut out = Vec::new();
    for tx in txs {
        let Some(ds) = book.decisions.get(&tx) else {
            out.push(s(
                format!("No reviewer has decided on transaction {tx}."),
                vec![tx.clone()],
            ));
            continue;
        };
        for d in ds.iter().filter(|d| d.action != "start_review") {
            let mut cites = vec![format!("decision:{}", d.decision_id), tx.clone()];
            if let Some(a) = d.audit_seq {
                cites.push(format!("audit:{a}"));
            }
            out.push(s(
                format!(
                    "On {}, {} decided {} on transaction {tx}; the case went to {}.",
                    d.created_at.get(..10).unwrap_or(&d.created_at),
                    d.actor,
                    d.action.replace('_', " "),
                    d.to_state.replace('_', " ")
                ),
                cites,
            ));
        }
    }
    Ok(out)
}
