//! Rule effectiveness: which rules of the plan earn their keep.
//!
//! For every rule (the v2 scoped rules by id, and the v1 plan's own elements under
//! `plan:` names) over the recalculated lines of the chosen periods: how often it
//! triggered, partners reached, what it paid, its share of the payout, and how many of
//! the transactions it touched are flagged or disputed (administrative load). Findings
//! in plain words: never or rarely triggered, cost concentrated on few partners, SPIFFs
//! without lift against the same window a year before. Pure: no IO.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Months, NaiveDate};
use rust_decimal::Decimal;

use super::v2::RuleAction;
use super::{recalculate_explained, Derivation, ExplainedLine};
use crate::model::{parse_quarter, Dataset, TransactionKind};

/// One rule's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleStat {
    pub rule: String,
    /// rate, rate_multiplier, accelerator, spiff, override, clawback, family_multiplier.
    pub kind: String,
    /// Lines it shaped.
    pub triggered: usize,
    pub partners: usize,
    /// What it paid: the lines' amounts; for accelerators, the premium above the base rate.
    pub paid: Decimal,
    /// `paid / total payout` (0 when nothing was paid).
    pub share: Decimal,
    /// Distinct transactions it touched that are flagged / disputed.
    pub flags: usize,
    pub disputes: usize,
    /// Paid per partner, largest first.
    pub top_partners: Vec<(String, Decimal)>,
}

/// The report.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The periods covered, oldest first.
    pub periods: Vec<String>,
    /// Every line's amount in the periods, summed.
    pub total: Decimal,
    pub sales: usize,
    pub rules: Vec<RuleStat>,
    pub findings: Vec<String>,
}

#[derive(Default)]
struct Acc {
    kind: String,
    triggered: usize,
    paid: Decimal,
    by_partner: BTreeMap<String, Decimal>,
    txs: BTreeSet<String>,
}

impl Acc {
    fn hit(&mut self, e: &ExplainedLine, paid: Decimal) {
        self.triggered += 1;
        self.paid += paid;
        *self
            .by_partner
            .entry(e.line.payee_partner_id.clone())
            .or_default() += paid;
        self.txs.insert(e.line.transaction_id.clone());
    }
}

/// Every rule the plan has, with its kind (so rules that never trigger are listed).
fn candidates(ds: &Dataset) -> BTreeMap<String, Acc> {
    let mut m: BTreeMap<String, Acc> = BTreeMap::new();
    let mut add = |name: String, kind: &str| {
        m.entry(name).or_default().kind = kind.to_string();
    };
    for r in &ds.plan.rules {
        add(r.rule_id.clone(), r.kind().as_str());
    }
    for a in &ds.plan.accelerators {
        add(
            format!("plan:accelerator@{}", a.attainment_from.normalize()),
            "accelerator",
        );
    }
    for s in &ds.plan.spiffs {
        add(format!("plan:spiff:{}", s.spiff_id), "spiff");
    }
    for f in ds.plan.family_multipliers.keys() {
        add(format!("plan:family_multiplier:{f}"), "family_multiplier");
    }
    if ds.plan.override_rate.is_some() {
        add("plan:override_rate".into(), "override");
    }
    m
}

fn record(m: &mut BTreeMap<String, Acc>, e: &ExplainedLine, ds: &Dataset) {
    let mut hit = |name: String, kind: &str, paid: Decimal| {
        let a = m.entry(name).or_default();
        if a.kind.is_empty() {
            a.kind = kind.to_string();
        }
        a.hit(e, paid);
    };
    let amount = e.line.amount;
    match &e.derivation {
        Derivation::Seller(sd) => {
            if let Some((id, _)) = &sd.rules.rate_rule {
                hit(id.clone(), "rate", amount);
            } else if sd.family_multiplier != Decimal::ONE {
                if let Some(f) = &sd.family {
                    hit(
                        format!("plan:family_multiplier:{f}"),
                        "family_multiplier",
                        amount,
                    );
                }
            }
            for (id, _) in &sd.rules.multipliers {
                hit(id.clone(), "rate_multiplier", amount);
            }
            for seg in &sd.segments {
                let Some(a) = seg.attainment_from else {
                    continue;
                };
                let base = seg.amount * sd.rate;
                let premium = seg.commission - base;
                match &sd.rules.accelerator_rule {
                    Some(id) => hit(id.clone(), "accelerator", premium),
                    None => hit(
                        format!("plan:accelerator@{}", a.normalize()),
                        "accelerator",
                        premium,
                    ),
                }
            }
        }
        Derivation::Spiff { spiff_id, .. } => {
            if ds.plan.rules.iter().any(|r| &r.rule_id == spiff_id) {
                hit(spiff_id.clone(), "spiff", amount);
            } else {
                hit(format!("plan:spiff:{spiff_id}"), "spiff", amount);
            }
        }
        Derivation::Override { .. } => hit("plan:override_rate".into(), "override", amount),
        Derivation::Clawback { .. } => hit("plan:clawback".into(), "clawback", amount),
    }
}

/// The last `n` periods of the lines (all when `None`), oldest first.
fn choose_periods(lines: &[ExplainedLine], n: Option<usize>) -> Vec<String> {
    let mut ps: Vec<String> = lines
        .iter()
        .map(|e| e.line.period.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    ps.sort_by_key(|p| parse_quarter(p).unwrap_or((i32::MAX, 0)));
    if let Some(n) = n {
        let skip = ps.len().saturating_sub(n);
        ps.drain(..skip);
    }
    ps
}

/// The rule report over the last `periods` periods (all when `None`). `flagged` and
/// `disputed` are transaction ids (flags with kinds; cases opened on them).
pub fn report(
    ds: &Dataset,
    periods: Option<usize>,
    flagged: &BTreeSet<String>,
    disputed: &BTreeSet<String>,
) -> Report {
    let lines = recalculate_explained(ds);
    let chosen = choose_periods(&lines, periods);
    let keep: BTreeSet<&str> = chosen.iter().map(String::as_str).collect();
    let mut m = candidates(ds);
    let mut total = Decimal::ZERO;
    let mut sales = BTreeSet::new();
    for e in lines
        .iter()
        .filter(|e| keep.contains(e.line.period.as_str()))
    {
        total += e.line.amount;
        if matches!(e.derivation, Derivation::Seller(_)) {
            sales.insert(e.line.transaction_id.as_str());
        }
        record(&mut m, e, ds);
    }
    let rules: Vec<RuleStat> = m
        .into_iter()
        .map(|(rule, a)| {
            let mut top: Vec<(String, Decimal)> = a.by_partner.into_iter().collect();
            top.sort_by(|x, y| y.1.abs().cmp(&x.1.abs()).then(x.0.cmp(&y.0)));
            RuleStat {
                share: if total.is_zero() {
                    Decimal::ZERO
                } else {
                    a.paid / total
                },
                partners: top.len(),
                flags: a.txs.iter().filter(|t| flagged.contains(*t)).count(),
                disputes: a.txs.iter().filter(|t| disputed.contains(*t)).count(),
                rule,
                kind: a.kind,
                triggered: a.triggered,
                paid: a.paid,
                top_partners: top,
            }
        })
        .collect();
    let mut findings = Vec::new();
    let span = match (chosen.first(), chosen.last()) {
        (Some(a), Some(b)) if a != b => format!("{a} to {b}"),
        (Some(a), _) => a.clone(),
        _ => "the data".into(),
    };
    let paying = rules
        .iter()
        .flat_map(|r| r.top_partners.iter().map(|p| p.0.as_str()))
        .collect::<BTreeSet<_>>()
        .len();
    for r in &rules {
        findings.extend(usage_finding(r, &span, sales.len()));
        findings.extend(concentration_finding(r, paying, &ds.program.currency));
    }
    findings.extend(spiff_lift_findings(ds));
    Report {
        periods: chosen,
        total,
        sales: sales.len(),
        rules,
        findings,
    }
}

fn usage_finding(r: &RuleStat, span: &str, sales: usize) -> Option<String> {
    if r.kind == "clawback" {
        return None;
    }
    let rare = (sales / 100).max(3);
    if r.triggered == 0 {
        Some(format!(
            "{} ({}) never triggered in {span}.",
            r.rule, r.kind
        ))
    } else if r.triggered < rare {
        Some(format!(
            "{} ({}) triggered rarely: {} time(s) on {} partner(s) in {span}, against {sales} sales with a seller line.",
            r.rule, r.kind, r.triggered, r.partners
        ))
    } else {
        None
    }
}

fn concentration_finding(r: &RuleStat, paying: usize, cur: &str) -> Option<String> {
    if r.paid <= Decimal::ZERO || r.triggered < 2 || paying < 5 {
        return None;
    }
    let n = r.top_partners.len().min(3);
    let top: Decimal = r.top_partners.iter().take(n).map(|p| p.1).sum();
    let share = top / r.paid;
    // Three partners or fewer take at least 80% of what it paid.
    if share < Decimal::new(8, 1) {
        return None;
    }
    let names: Vec<String> = r
        .top_partners
        .iter()
        .take(n)
        .map(|(p, a)| format!("{p} {}%", (a / r.paid * Decimal::ONE_HUNDRED).round_dp(0)))
        .collect();
    Some(format!(
        "{} concentrates its cost: {}% of its {} {} went to {} of {paying} paid partners ({}).",
        r.rule,
        (share * Decimal::ONE_HUNDRED).round_dp(0),
        r.paid.round_dp(2),
        cur,
        n,
        names.join(", ")
    ))
}

/// A SPIFF's product target and window.
struct SpiffTarget<'a> {
    id: String,
    family: Option<&'a str>,
    sku: Option<&'a str>,
    from: NaiveDate,
    to: NaiveDate,
}

fn spiff_targets(ds: &Dataset) -> Vec<SpiffTarget<'_>> {
    let mut v: Vec<SpiffTarget<'_>> = ds
        .plan
        .spiffs
        .iter()
        .map(|s| SpiffTarget {
            id: format!("plan:spiff:{}", s.spiff_id),
            family: s.family.as_deref(),
            sku: s.sku.as_deref(),
            from: s.from,
            to: s.to,
        })
        .collect();
    for r in &ds.plan.rules {
        if let RuleAction::Spiff { from, to, .. } = &r.action {
            if let (Some(f), Some(t)) = (from.or(r.scope.from), to.or(r.scope.to)) {
                v.push(SpiffTarget {
                    id: r.rule_id.clone(),
                    family: r.scope.family.as_deref(),
                    sku: r.scope.sku.as_deref(),
                    from: f,
                    to: t,
                });
            }
        }
    }
    v
}

/// SPIFFs whose window sold no more units of the targeted products than the same window
/// a year before.
fn spiff_lift_findings(ds: &Dataset) -> Vec<String> {
    let family: BTreeMap<&str, &str> = ds
        .products
        .iter()
        .map(|p| (p.sku.as_str(), p.family.as_str()))
        .collect();
    let mut out = Vec::new();
    for s in spiff_targets(ds) {
        let (Some(pf), Some(pt)) = (
            s.from.checked_sub_months(Months::new(12)),
            s.to.checked_sub_months(Months::new(12)),
        ) else {
            continue;
        };
        let units = |a: NaiveDate, b: NaiveDate| -> i64 {
            ds.transactions
                .iter()
                .filter(|t| t.kind == TransactionKind::Sale)
                .filter(|t| t.closed_on >= a && t.closed_on <= b)
                .filter(|t| s.sku.is_none_or(|k| k == t.sku))
                .filter(|t| {
                    s.family
                        .is_none_or(|f| family.get(t.sku.as_str()) == Some(&f))
                })
                .map(|t| t.quantity)
                .sum()
        };
        let (now, before) = (units(s.from, s.to), units(pf, pt));
        let target = match (s.family, s.sku) {
            (_, Some(k)) => format!("sku {k}"),
            (Some(f), None) => format!("family {f}"),
            (None, None) => "all products".into(),
        };
        if before == 0 {
            out.push(format!(
                "{}: lift cannot be measured: no {target} sales from {pf} to {pt} to compare with ({now} units in its window {} to {}).",
                s.id, s.from, s.to
            ));
        } else if now <= before {
            out.push(format!(
                "{} produced no lift in {target}: {now} units in its window {} to {} against {before} from {pf} to {pt}.",
                s.id, s.from, s.to
            ));
        }
    }
    out
}
