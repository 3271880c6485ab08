//! The grounding rule, checked on any answer: every citation resolves within the asker's
//! scope; every amount, percentage, date and count in a sentence equals a field of a
//! cited record or a declared sum, count or difference of them; a causal claim
//! ("because ...") names reason codes of a cited record.

use std::collections::BTreeSet;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::Value;

use crate::statement::Sentence;

/// A figure found in a sentence.
#[derive(Debug, Clone, PartialEq)]
pub enum Figure {
    Number { value: Decimal, percent: bool },
    Date(String),
}

/// The numbers and dates of a text (tokens with letters, such as ids, are not figures).
pub fn figures(text: &str) -> Vec<Figure> {
    let mut out = Vec::new();
    for raw in text.split_whitespace() {
        let t = raw.trim_matches(|c: char| {
            matches!(
                c,
                '.' | ',' | ';' | ':' | '(' | ')' | '"' | '\'' | '!' | '?'
            )
        });
        if t.is_empty()
            || t.chars().any(|c| c.is_alphabetic())
            || !t.chars().any(|c| c.is_ascii_digit())
        {
            continue;
        }
        if t.len() == 10 && t.as_bytes()[4] == b'-' && t.as_bytes()[7] == b'-' {
            out.push(Figure::Date(t.to_string()));
            continue;
        }
        let percent = t.ends_with('%');
        let n = t.trim_end_matches('%').replace(',', "");
        match Decimal::from_str(&n) {
            Ok(value) => out.push(Figure::Number { value, percent }),
            // Not a plain number (e.g. "1-2"): keep it as text that must match a field.
            Err(_) => out.push(Figure::Date(t.to_string())),
        }
    }
    out
}

fn leaves(v: &Value, nums: &mut BTreeSet<Decimal>, strs: &mut Vec<String>) {
    match v {
        Value::Object(o) => o.values().for_each(|x| leaves(x, nums, strs)),
        Value::Array(a) => a.iter().for_each(|x| leaves(x, nums, strs)),
        Value::Number(n) => {
            if let Ok(d) = Decimal::from_str(&n.to_string()) {
                nums.insert(d.normalize());
            }
        }
        Value::String(s) => {
            if let Ok(d) = Decimal::from_str(s) {
                nums.insert(d.normalize());
            }
            strs.push(s.clone());
        }
        _ => {}
    }
}

fn field<'v>(v: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.').try_fold(v, |cur, seg| cur.get(seg))
}

fn num(v: &Value) -> Option<Decimal> {
    match v {
        Value::String(s) => Decimal::from_str(s).ok(),
        Value::Number(n) => Decimal::from_str(&n.to_string()).ok(),
        _ => None,
    }
}

/// Checks one sentence; `resolve` gives a cited record as the asker may see it.
pub fn check_sentence(
    s: &Sentence,
    resolve: &dyn Fn(&str) -> Result<Value, String>,
) -> Result<(), String> {
    let mut recs = Vec::new();
    for c in &s.citations {
        recs.push(resolve(c).map_err(|e| format!("citation {c}: {e}"))?);
    }
    let mut nums = BTreeSet::new();
    let mut strs = Vec::new();
    for r in &recs {
        leaves(r, &mut nums, &mut strs);
    }
    let mut declared = BTreeSet::new();
    for d in &s.derived {
        let value = Decimal::from_str(&d.value)
            .map_err(|_| format!("declared value {:?} is not a number", d.value))?;
        for id in &d.of {
            if !s.citations.contains(id) {
                return Err(format!("declared {} uses {id}, which is not cited", d.op));
            }
        }
        let ok = match d.op.as_str() {
            "count" => Decimal::from(d.of.len()) == value,
            "sum" => {
                let path = d.field.as_deref().unwrap_or("amount");
                let mut sum = Decimal::ZERO;
                for id in &d.of {
                    let r = resolve(id).map_err(|e| format!("citation {id}: {e}"))?;
                    sum += field(&r, path)
                        .and_then(num)
                        .ok_or_else(|| format!("{id} has no number at {path} (declared sum)"))?;
                }
                sum.round_dp(2) == value.round_dp(2)
            }
            "difference" => match d.minus.as_slice() {
                [a, b] => {
                    let a = Decimal::from_str(a).map_err(|_| "bad difference".to_string())?;
                    let b = Decimal::from_str(b).map_err(|_| "bad difference".to_string())?;
                    let known = |x: &Decimal| {
                        nums.contains(&x.normalize()) || declared.contains(&x.normalize())
                    };
                    known(&a) && known(&b) && a - b == value
                }
                _ => false,
            },
            other => return Err(format!("unknown declared operation {other:?}")),
        };
        if !ok {
            return Err(format!("declared {} {} does not hold", d.op, d.value));
        }
        declared.insert(value.normalize());
    }
    for f in figures(&s.text) {
        match f {
            Figure::Number { value, percent } => {
                let v = value.normalize();
                let hit = nums.contains(&v)
                    || declared.contains(&v)
                    || (percent && nums.contains(&(value / Decimal::ONE_HUNDRED).normalize()));
                if !hit {
                    return Err(format!(
                        "{value}{} in {:?} is no field of a cited record nor a declared figure",
                        if percent { "%" } else { "" },
                        s.text
                    ));
                }
            }
            Figure::Date(d) => {
                if !strs.iter().any(|x| x.starts_with(&d)) {
                    return Err(format!("{d} in {:?} is no field of a cited record", s.text));
                }
            }
        }
    }
    if let Some((_, after)) = s.text.split_once("because") {
        let codes: BTreeSet<String> = recs
            .iter()
            .filter_map(|r| r.get("reason_codes").and_then(Value::as_array))
            .flatten()
            .filter_map(|c| c.as_str().map(String::from))
            .collect();
        let named: Vec<&str> = after
            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .filter(|w| w.contains('_'))
            .collect();
        if named.is_empty() || named.iter().any(|w| !codes.contains(*w)) {
            return Err(format!(
                "the causal claim in {:?} does not name reason codes of a cited record",
                s.text
            ));
        }
    }
    Ok(())
}

/// Checks every sentence of an answer.
pub fn check(
    sentences: &[Sentence],
    resolve: &dyn Fn(&str) -> Result<Value, String>,
) -> Result<(), String> {
    sentences
        .iter()
        .try_for_each(|s| check_sentence(s, resolve))
}
