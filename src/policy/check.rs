//! `tierdesk policy check`: unknown kinds, rules that can never match or never be reached,
//! and rules that overlap an earlier one with another action (first match wins), each
//! with the line of the rule in config.toml.

use std::collections::BTreeSet;

use rust_decimal::Decimal;

use super::{known_kinds, PolicyConfig, RouteAction, Rule};

/// How serious a finding is: errors make `policy check` exit non-zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

/// One finding about the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    /// 1-based line in the config file (None: the built-in default policy).
    pub line: Option<usize>,
    pub rule: Option<String>,
    pub message: String,
}

/// The 1-based line of each `[[policy.rules]]` table in `text`, in order (an inline
/// `rules = [...]` array gives its own line for every rule).
pub fn rule_lines(text: &str) -> Vec<usize> {
    let mut out = Vec::new();
    let mut inline = None;
    let mut in_policy = false;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let compact: String = line.chars().filter(|c| !c.is_whitespace()).collect();
        if compact.starts_with("[[policy.rules]]") {
            out.push(i + 1);
        } else if compact.starts_with('[') {
            in_policy = compact.starts_with("[policy]");
        } else if in_policy && compact.starts_with("rules=") {
            inline = Some(i + 1);
        }
    }
    if out.is_empty() {
        if let Some(l) = inline {
            return vec![l; 1024];
        }
    }
    out
}

/// The line of the `[policy]` table (for findings about the section as a whole).
fn policy_line(text: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            let c: String = l.chars().filter(|c| !c.is_whitespace()).collect();
            c.starts_with("[policy]")
        })
        .map(|i| i + 1)
}

fn interval_empty(lo: Option<f64>, hi: Option<f64>) -> bool {
    matches!((lo, hi), (Some(l), Some(h)) if l >= h)
}

fn money_empty(lo: Option<Decimal>, hi: Option<Decimal>) -> bool {
    matches!((lo, hi), (Some(l), Some(h)) if l >= h)
}

/// Whether `[lo_a, hi_a)` contains `[lo_b, hi_b)` (None = unbounded).
fn covers<T: PartialOrd + Copy>(
    lo_a: Option<T>,
    hi_a: Option<T>,
    lo_b: Option<T>,
    hi_b: Option<T>,
) -> bool {
    let lo_ok = match (lo_a, lo_b) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(a), Some(b)) => a <= b,
    };
    let hi_ok = match (hi_a, hi_b) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(a), Some(b)) => a >= b,
    };
    lo_ok && hi_ok
}

/// Whether `[lo_a, hi_a)` and `[lo_b, hi_b)` share a point.
fn intersects<T: PartialOrd + Copy>(
    lo_a: Option<T>,
    hi_a: Option<T>,
    lo_b: Option<T>,
    hi_b: Option<T>,
) -> bool {
    let lo = match (lo_a, lo_b) {
        (Some(a), Some(b)) => Some(if a > b { a } else { b }),
        (a, None) => a,
        (None, b) => b,
    };
    let hi = match (hi_a, hi_b) {
        (Some(a), Some(b)) => Some(if a < b { a } else { b }),
        (a, None) => a,
        (None, b) => b,
    };
    !matches!((lo, hi), (Some(l), Some(h)) if l >= h)
}

fn set_covers(a: &[String], b: &[String]) -> bool {
    a.is_empty() || (!b.is_empty() && b.iter().all(|x| a.contains(x)))
}

fn set_intersects(a: &[String], b: &[String]) -> bool {
    a.is_empty() || b.is_empty() || a.iter().any(|x| b.contains(x))
}

/// Whether every flag that matches `b` also matches `a`.
pub fn rule_covers(a: &Rule, b: &Rule) -> bool {
    set_covers(&a.kinds, &b.kinds)
        && set_covers(&a.tiers, &b.tiers)
        && (a.high_value.is_none() || a.high_value == b.high_value)
        && covers(
            a.min_confidence,
            a.max_confidence,
            b.min_confidence,
            b.max_confidence,
        )
        && covers(a.min_score, a.max_score, b.min_score, b.max_score)
        && covers(
            a.min_at_stake,
            a.max_at_stake,
            b.min_at_stake,
            b.max_at_stake,
        )
}

/// Whether some flag can match both rules.
pub fn rules_overlap(a: &Rule, b: &Rule) -> bool {
    set_intersects(&a.kinds, &b.kinds)
        && set_intersects(&a.tiers, &b.tiers)
        && (a.high_value.is_none() || b.high_value.is_none() || a.high_value == b.high_value)
        && intersects(
            a.min_confidence,
            a.max_confidence,
            b.min_confidence,
            b.max_confidence,
        )
        && intersects(a.min_score, a.max_score, b.min_score, b.max_score)
        && intersects(
            a.min_at_stake,
            a.max_at_stake,
            b.min_at_stake,
            b.max_at_stake,
        )
}

/// Checks the policy; `text` is the config file it came from (for line numbers).
pub fn check(policy: &PolicyConfig, text: &str) -> Vec<Finding> {
    let lines = rule_lines(text);
    let section = policy_line(text);
    let rules = policy.effective_rules();
    let configured = !policy.rules.is_empty();
    let line_of = |i: usize| {
        if configured {
            lines.get(i).copied()
        } else {
            None
        }
    };
    let known = known_kinds();
    let mut out = Vec::new();
    let mut push = |severity, line, rule: Option<String>, message: String| {
        out.push(Finding {
            severity,
            line,
            rule,
            message,
        })
    };
    for (i, r) in rules.iter().enumerate() {
        let label = r.label(i);
        for k in &r.kinds {
            if !known.contains(k) {
                push(
                    Severity::Error,
                    line_of(i),
                    Some(label.clone()),
                    format!("unknown kind `{k}` (known: {})", join(&known)),
                );
            }
        }
        for (what, v) in [
            ("min_confidence", r.min_confidence),
            ("max_confidence", r.max_confidence),
            ("min_score", r.min_score),
            ("max_score", r.max_score),
        ] {
            if let Some(x) = v {
                if !(0.0..=1.0).contains(&x) {
                    push(
                        Severity::Error,
                        line_of(i),
                        Some(label.clone()),
                        format!("{what} = {x} is outside 0..1"),
                    );
                }
            }
        }
        if interval_empty(r.min_confidence, r.max_confidence)
            || interval_empty(r.min_score, r.max_score)
            || money_empty(r.min_at_stake, r.max_at_stake)
        {
            push(
                Severity::Error,
                line_of(i),
                Some(label.clone()),
                "never matches: a lower bound is at or above its upper bound".into(),
            );
            continue;
        }
        if let Some((j, earlier)) = rules[..i]
            .iter()
            .enumerate()
            .find(|(_, e)| rule_covers(e, r))
        {
            push(
                Severity::Error,
                line_of(i),
                Some(label.clone()),
                format!(
                    "unreachable: every flag it matches is taken by {}{} first",
                    earlier.label(j),
                    line_of(j)
                        .map(|l| format!(" (line {l})"))
                        .unwrap_or_default()
                ),
            );
            continue;
        }
        if !r.is_catch_all() {
            for (j, earlier) in rules[..i].iter().enumerate() {
                if earlier.action != r.action && rules_overlap(earlier, r) {
                    push(
                        Severity::Warning,
                        line_of(i),
                        Some(label.clone()),
                        format!(
                            "overlaps {}{}: flags matching both go to `{}` (first match wins), not `{}`",
                            earlier.label(j),
                            line_of(j).map(|l| format!(" (line {l})")).unwrap_or_default(),
                            earlier.action,
                            r.action
                        ),
                    );
                }
            }
        }
        if r.action == RouteAction::AutoAdjust {
            let not_pre: Vec<&String> = r
                .kinds
                .iter()
                .filter(|k| !policy.pre_approved.contains(k))
                .collect();
            if r.kinds.is_empty() || !not_pre.is_empty() {
                push(
                    Severity::Warning,
                    line_of(i),
                    Some(label.clone()),
                    format!(
                        "auto_adjust acts only on pre_approved kinds; {} go to the queue",
                        if r.kinds.is_empty() {
                            "flags of other kinds".to_string()
                        } else {
                            not_pre
                                .iter()
                                .map(|k| format!("`{k}`"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        }
                    ),
                );
            }
        }
    }
    for k in &policy.pre_approved {
        if !known.contains(k) {
            push(
                Severity::Error,
                section,
                None,
                format!("pre_approved: unknown kind `{k}`"),
            );
        }
    }
    if !(0.0..=1.0).contains(&policy.qa_sample) {
        push(
            Severity::Error,
            section,
            None,
            format!("qa_sample = {} is outside 0..1", policy.qa_sample),
        );
    }
    if !(policy.min_precision > 0.0 && policy.min_precision <= 1.0) {
        push(
            Severity::Error,
            section,
            None,
            format!("min_precision = {} is outside (0, 1]", policy.min_precision),
        );
    }
    out
}

fn join(set: &BTreeSet<String>) -> String {
    set.iter().cloned().collect::<Vec<_>>().join(", ")
}
