//! Plain-words derivations of commission lines (`tierdesk explain`, the TUI's pane).

use std::fmt;

use chrono::NaiveDate;
use rust_decimal::Decimal;

use super::{Calculator, Derivation, NoLine, SellerDerivation};
use crate::model::{CommissionLine, CommissionRole, Dataset, TransactionKind};
use crate::money::{currency_prefix, format_money, round_cents};

use super::variance::{compare, Variance};

/// A recalculated line with how it was derived: structured and as sentences.
#[derive(Debug, Clone, PartialEq)]
pub struct ExplainedLine {
    pub line: CommissionLine,
    pub derivation: Derivation,
    /// One sentence per step, with the numbers.
    pub steps: Vec<String>,
}

/// Everything about one transaction's commission: its lines with their derivations,
/// why roles gave no line, and the variance against the PRM if any.
#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    pub transaction_id: String,
    pub kind: TransactionKind,
    pub partner_id: String,
    pub sku: String,
    pub family: Option<String>,
    pub quantity: i64,
    pub amount: Decimal,
    pub currency: String,
    pub closed_on: NaiveDate,
    pub period: String,
    pub lines: Vec<ExplainedLine>,
    /// Sentences saying why a role gave no line (no tier, outside a window, ...).
    pub no_lines: Vec<String>,
    /// The PRM's lines for this transaction.
    pub prm_lines: Vec<CommissionLine>,
    /// `None` when the PRM's lines match the plan.
    pub variance: Option<Variance>,
}

pub(crate) fn currency(ds: &Dataset) -> &str {
    if ds.program.currency.is_empty() {
        &ds.plan.currency
    } else {
        &ds.program.currency
    }
}

/// Money exactly: cents when the value has no more, else every digit (grouped).
pub(crate) fn money(d: Decimal, cur: &str) -> String {
    if round_cents(d) == d {
        return format_money(d, cur);
    }
    let n = d.normalize();
    let text = n.abs().to_string();
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    let mut grouped = String::with_capacity(int.len() + int.len() / 3);
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let sign = if n.is_sign_negative() { "-" } else { "" };
    if frac.is_empty() {
        format!("{sign}{}{grouped}", currency_prefix(cur))
    } else {
        format!("{sign}{}{grouped}.{frac}", currency_prefix(cur))
    }
}

/// `0.025` -> `2.5%`.
pub(crate) fn pct(d: Decimal) -> String {
    match d.checked_mul(Decimal::ONE_HUNDRED) {
        Some(p) => format!("{}%", p.normalize()),
        None => format!("{} (fraction)", d.normalize()),
    }
}

fn mult(d: Decimal) -> String {
    format!("{}x", d.normalize())
}

fn seller_steps(d: &SellerDerivation, line: &CommissionLine, cur: &str) -> Vec<String> {
    let mut s = Vec::new();
    s.push(format!(
        "Tier {}: the tier_history row effective {} is the latest on or before the close date.",
        d.tier_id, d.tier_effective_from
    ));
    let tr = &d.rules;
    match &d.family {
        _ if tr.rate_rule.is_some() => {
            if let Some((id, r)) = &tr.rate_rule {
                s.push(format!(
                    "Rate {} set by rate rule {id}: it replaces the {} seller rate and the family multiplier.",
                    pct(*r),
                    d.tier_id
                ));
            }
        }
        Some(f) if d.family_multiplier != Decimal::ONE => s.push(format!(
            "Rate {} ({} seller rate) x {} ({} family multiplier) = {}.",
            pct(d.tier_rate),
            d.tier_id,
            d.family_multiplier.normalize(),
            f,
            pct(d.rate)
        )),
        Some(f) => s.push(format!(
            "Rate {} ({} seller rate); family {} has no multiplier.",
            pct(d.rate),
            d.tier_id,
            f
        )),
        None => s.push(format!(
            "Rate {} ({} seller rate); the product is unknown, so no family multiplier.",
            pct(d.rate),
            d.tier_id
        )),
    }
    rule_steps(tr, d.rate, &mut s);
    match d.quota {
        Some(q) if q > Decimal::ZERO => {
            let att = |b: Decimal| {
                b.checked_div(q)
                    .map(|r| pct(r.round_dp(4)))
                    .unwrap_or_default()
            };
            s.push(format!(
                "Quarter {} quota {}: bookings before this sale {} ({} of quota), after {} ({}).",
                line.period,
                money(q, cur),
                money(d.before, cur),
                att(d.before),
                money(d.after, cur),
                att(d.after)
            ));
        }
        Some(q) => s.push(format!(
            "Quarter {} quota is {}: no accelerator applies (bookings before {}, after {}).",
            line.period,
            money(q, cur),
            money(d.before, cur),
            money(d.after, cur)
        )),
        None => s.push(format!(
            "No quota row for quarter {}: no accelerator applies (bookings before {}, after {}).",
            line.period,
            money(d.before, cur),
            money(d.after, cur)
        )),
    }
    for seg in &d.segments {
        let rate = d.rate.checked_mul(seg.multiplier).unwrap_or_default();
        match seg.attainment_from {
            None => s.push(format!(
                "{} (bookings {} to {}) below the first accelerator threshold at {} = {}.",
                money(seg.amount, cur),
                money(seg.from, cur),
                money(seg.to, cur),
                pct(d.rate),
                money(seg.commission, cur)
            )),
            Some(a) => s.push(format!(
                "{} (bookings {} to {}) at or above {} of quota at {}: {} x {} = {} = {}.",
                money(seg.amount, cur),
                money(seg.from, cur),
                money(seg.to, cur),
                pct(a),
                mult(seg.multiplier),
                pct(d.rate),
                mult(seg.multiplier),
                pct(rate),
                money(seg.commission, cur)
            )),
        }
    }
    match d.cap {
        Some(c) if d.capped => s.push(format!(
            "Total {} exceeds the per-transaction cap {}: capped at {}.",
            money(d.uncapped, cur),
            money(c, cur),
            money(c, cur)
        )),
        Some(c) => s.push(format!(
            "Total {} is within the per-transaction cap {}: cap not applied.",
            money(d.uncapped, cur),
            money(c, cur)
        )),
        None => s.push(format!(
            "Total {}; the plan has no per-transaction cap.",
            money(d.uncapped, cur)
        )),
    }
    s
}

/// The scoped rules of a seller line: the losing rate rules, the multipliers, the
/// accelerator rule and its losers.
fn rule_steps(tr: &super::v2::RuleTrace, rate: Decimal, s: &mut Vec<String>) {
    for (id, why) in &tr.rate_lost {
        s.push(format!("Rate rule {id} also matched but lost: {why}."));
    }
    if !tr.multipliers.is_empty() {
        let list: Vec<String> = tr
            .multipliers
            .iter()
            .map(|(id, m)| format!("{} ({id})", mult(*m)))
            .collect();
        s.push(format!(
            "Rate multiplier rules apply: {}; the rate is now {}.",
            list.join(" x "),
            pct(rate)
        ));
    }
    if let Some(id) = &tr.accelerator_rule {
        s.push(format!(
            "Accelerator rule {id} replaces the plan's accelerators for this sale (attainment still counts all of the partner's sales in the quarter)."
        ));
    }
    for (id, why) in &tr.accelerator_lost {
        s.push(format!(
            "Accelerator rule {id} also matched but lost: {why}."
        ));
    }
}

/// A SPIFF window in words (open ends of a rule's window say so).
fn window(from: NaiveDate, to: NaiveDate) -> String {
    match (from == NaiveDate::MIN, to == NaiveDate::MAX) {
        (true, true) => "runs without a date window".into(),
        (true, false) => format!("runs until {to}"),
        (false, true) => format!("runs from {from}"),
        (false, false) => format!("runs {from} to {to}"),
    }
}

/// The derivation of a line as sentences (the last one gives the rounded amount).
pub(crate) fn steps(d: &Derivation, line: &CommissionLine, cur: &str) -> Vec<String> {
    let mut s = match d {
        Derivation::Seller(sd) => seller_steps(sd, line, cur),
        Derivation::Override {
            seller_partner_id,
            parent_partner_id,
            rate,
            base,
        } => vec![format!(
            "{parent_partner_id} is the parent distributor of {seller_partner_id}: override {} of {} = {} (no accelerator, no cap).",
            pct(*rate),
            money(*base, cur),
            base.checked_mul(*rate).map(|x| money(x, cur)).unwrap_or_default()
        )],
        Derivation::Spiff {
            spiff_id,
            family,
            sku,
            from,
            to,
            tier_id,
            amount_per_unit,
            quantity,
        } => {
            let what = match (family, sku) {
                (Some(f), Some(k)) => format!("family {f}, sku {k}"),
                (Some(f), None) => format!("family {f}"),
                (None, Some(k)) => format!("sku {k}"),
                (None, None) => "every product".to_string(),
            };
            vec![format!(
                "SPIFF {spiff_id} ({what}) {}; the close date is inside it and tier {tier_id} is eligible: {} per unit x {quantity} = {}.",
                window(*from, *to),
                money(*amount_per_unit, cur),
                amount_per_unit
                    .checked_mul(Decimal::from(*quantity))
                    .map(|x| money(x, cur))
                    .unwrap_or_default()
            )]
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
            let window = match window_days {
                Some(w) => format!("within the {w}-day clawback window"),
                None => "and the plan has no clawback window".to_string(),
            };
            vec![format!(
                "Refund of {original_transaction_id} (closed {original_closed_on}) {days_after} days later, {window}: clawback of the original seller line {} x {refunded_quantity}/{original_quantity} refunded = -{}.",
                money(*original_seller_amount, cur),
                money(line.amount.abs(), cur)
            )]
        }
    };
    s.push(format!(
        "Rounded half to even to the cent: {}.",
        format_money(line.amount, cur)
    ));
    s
}

/// A short derivation for variance reasons: "gold 10% on $12,000.00, ...".
pub(crate) fn summary(d: &Derivation, cur: &str) -> String {
    match d {
        Derivation::Seller(sd) => {
            let mut s = match &sd.rules.rate_rule {
                Some((id, r)) => format!("rule {id} {}", pct(*r)),
                None => format!("{} {}", sd.tier_id, pct(sd.tier_rate)),
            };
            for (id, m) in &sd.rules.multipliers {
                s.push_str(&format!(" x {} ({id})", mult(*m)));
            }
            if let Some(id) = &sd.rules.accelerator_rule {
                s.push_str(&format!(", accelerators of rule {id}"));
            }
            if let (Some(f), true, None) = (
                &sd.family,
                sd.family_multiplier != Decimal::ONE,
                &sd.rules.rate_rule,
            ) {
                s.push_str(&format!(
                    " x {} {f} = {}",
                    sd.family_multiplier.normalize(),
                    pct(sd.rate)
                ));
            }
            s.push_str(&format!(" on {}", money(sd.after - sd.before, cur)));
            for seg in sd.segments.iter().filter(|g| g.attainment_from.is_some()) {
                s.push_str(&format!(
                    ", {} of it at or above {} of the {} quota at {}",
                    money(seg.amount, cur),
                    pct(seg.attainment_from.unwrap_or_default()),
                    money(sd.quota.unwrap_or_default(), cur),
                    mult(seg.multiplier)
                ));
            }
            if let (Some(c), true) = (sd.cap, sd.capped) {
                s.push_str(&format!(", capped at {}", money(c, cur)));
            }
            s
        }
        Derivation::Override {
            parent_partner_id,
            rate,
            base,
            ..
        } => format!(
            "override {} of {} to parent {parent_partner_id}",
            pct(*rate),
            money(*base, cur)
        ),
        Derivation::Spiff {
            spiff_id,
            from,
            to,
            amount_per_unit,
            quantity,
            ..
        } => format!(
            "SPIFF {spiff_id} {from} to {to}: {} x {quantity} units",
            money(*amount_per_unit, cur)
        ),
        Derivation::Clawback {
            original_transaction_id,
            days_after,
            original_seller_amount,
            refunded_quantity,
            original_quantity,
            ..
        } => format!(
            "clawback of {original_transaction_id}'s seller line {} x {refunded_quantity}/{original_quantity}, {days_after} days after",
            money(*original_seller_amount, cur)
        ),
    }
}

/// Why a role gave no line, as a sentence.
pub(crate) fn describe_no_line(n: &NoLine) -> String {
    match n {
        NoLine::NoTier {
            partner_id,
            closed_on,
        } => format!(
            "Partner {partner_id} has no tier on the close date {closed_on} (no tier_history row on or before it): no lines."
        ),
        NoLine::NoRate { tier_id } => {
            format!("The plan has no seller rate for tier {tier_id}: no seller line.")
        }
        NoLine::Overflow { role } => format!(
            "The {} amount is too large to compute exactly: no line (check the data).",
            role.as_str()
        ),
        NoLine::SpiffTierNotEligible { spiff_id, tier_id } => {
            format!("SPIFF {spiff_id} does not apply: tier {tier_id} is not eligible.")
        }
        NoLine::SpiffOutsideWindow { spiff_id, from, to } => format!(
            "SPIFF {spiff_id} does not apply: the close date is outside its window ({})."
            ,
            window(*from, *to)
        ),
        NoLine::RefundNoOriginal {
            original_transaction_id,
        } => match original_transaction_id {
            Some(id) => format!("Refund of {id}, which is not a known sale: nothing to claw back."),
            None => "Refund names no original sale: nothing to claw back.".to_string(),
        },
        NoLine::RefundOriginalNoSellerLine {
            original_transaction_id,
        } => format!(
            "The original sale {original_transaction_id} had no seller line: nothing to claw back."
        ),
        NoLine::RefundOutsideWindow {
            original_transaction_id,
            days_after,
            window_days,
        } => format!(
            "Refund closed {days_after} days after {original_transaction_id}, outside the {window_days}-day clawback window: nothing clawed back."
        ),
        NoLine::RefundZeroQuantity {
            original_transaction_id,
        } => format!(
            "The original sale {original_transaction_id} has quantity 0: no refunded fraction, nothing clawed back."
        ),
    }
}

impl Calculator<'_> {
    /// The explanation of one transaction (`None`: not in the data set), with its
    /// variance against the PRM's lines. Cheap once the calculator is built: keep one
    /// calculator per loaded data set to explain many transactions (the TUI).
    pub fn explain(&self, transaction_id: &str) -> Option<Explanation> {
        let i = self.index_of(transaction_id)?;
        let ds = self.dataset();
        let t = &ds.transactions[i];
        let cur = currency(ds);
        let tx = self.lines_of(i);
        let mut lines: Vec<ExplainedLine> = tx
            .lines
            .into_iter()
            .map(|(line, derivation)| ExplainedLine {
                steps: steps(&derivation, &line, cur),
                line,
                derivation,
            })
            .collect();
        lines.sort_by(|a, b| {
            a.line
                .role
                .cmp(&b.line.role)
                .then(a.line.commission_id.cmp(&b.line.commission_id))
        });
        let prm_refs = self.prm_lines(transaction_id);
        let prm_lines: Vec<CommissionLine> = prm_refs.iter().map(|l| (*l).clone()).collect();
        let plan_lines: Vec<&CommissionLine> = lines.iter().map(|l| &l.line).collect();
        let variance = compare(transaction_id, &plan_lines, &prm_refs, Some(self), cur);
        Some(Explanation {
            transaction_id: t.transaction_id.clone(),
            kind: t.kind,
            partner_id: t.partner_id.clone(),
            sku: t.sku.clone(),
            family: self.family_of(&t.sku).map(str::to_string),
            quantity: t.quantity,
            amount: t.amount,
            currency: cur.to_string(),
            closed_on: t.closed_on,
            period: self.period_of(t.closed_on),
            lines,
            no_lines: tx.no_lines.iter().map(describe_no_line).collect(),
            prm_lines,
            variance,
        })
    }
}

fn role_title(r: CommissionRole) -> &'static str {
    match r {
        CommissionRole::Seller => "Seller",
        CommissionRole::Override => "Override",
        CommissionRole::Spiff => "SPIFF",
        CommissionRole::Clawback => "Clawback",
    }
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cur = &self.currency;
        writeln!(
            f,
            "{} {}: partner {}, {} x {}{}, {}, closed {} (fiscal quarter {}).",
            self.kind.as_str(),
            self.transaction_id,
            self.partner_id,
            self.quantity,
            self.sku,
            self.family
                .as_deref()
                .map(|fam| format!(" ({fam})"))
                .unwrap_or_default(),
            format_money(self.amount, cur),
            self.closed_on,
            self.period
        )?;
        if self.lines.is_empty() {
            writeln!(f, "The plan gives no commission line.")?;
        }
        for l in &self.lines {
            writeln!(
                f,
                "\n{} line {} to {}: {}",
                role_title(l.line.role),
                l.line.commission_id,
                l.line.payee_partner_id,
                format_money(l.line.amount, cur)
            )?;
            for (k, s) in l.steps.iter().enumerate() {
                writeln!(f, "  {}. {}", k + 1, s)?;
            }
        }
        if !self.no_lines.is_empty() {
            writeln!(f)?;
            for s in &self.no_lines {
                writeln!(f, "{s}")?;
            }
        }
        writeln!(f)?;
        match &self.variance {
            None if self.prm_lines.is_empty() => {
                writeln!(f, "The PRM has no lines for it either: no variance.")
            }
            None => writeln!(f, "The PRM's lines match the plan: no variance."),
            Some(v) => writeln!(f, "Variance: {}", v.reason),
        }
    }
}
