//! Rules from plain English: a deterministic parser from a sentence to a v2 rule.
//!
//! It reads the common forms (rates, multipliers, thresholds as % of quota, regions,
//! tiers, families, SKUs, partner kinds, fiscal quarters, ISO date ranges, SPIFF amounts
//! per unit, priorities) and refuses, naming the words it could not read, anything it
//! would have to guess: a region that is not one of the program's, a percentage without
//! a base, a SPIFF without an amount per unit, contradictory thresholds or scopes.
//!
//! A language model may later handle what the parser refuses: it implements
//! [`DraftModel`]; its answer goes through [`accept_model_rule`] (schema and vocabulary
//! checks, deterministic paraphrase) before anyone can apply it. Pure: no IO.

use chrono::NaiveDate;
use rust_decimal::Decimal;

use super::v2::{Rule, RuleAction, RuleKind, Scope};
use crate::model::{Dataset, PartnerKind};

/// The names a sentence may use, from the program in the cache (or defaults).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Vocabulary {
    pub regions: Vec<String>,
    /// `(tier_id, name)`.
    pub tiers: Vec<(String, String)>,
    pub families: Vec<String>,
    pub skus: Vec<String>,
}

impl Vocabulary {
    /// The program's regions, tiers, families and SKUs.
    pub fn from_dataset(ds: &Dataset) -> Vocabulary {
        let mut v = Vocabulary {
            regions: ds.partners.iter().map(|p| p.region.clone()).collect(),
            tiers: ds
                .tiers
                .iter()
                .map(|t| (t.tier_id.clone(), t.name.clone()))
                .collect(),
            families: ds.products.iter().map(|p| p.family.clone()).collect(),
            skus: ds.products.iter().map(|p| p.sku.clone()).collect(),
        };
        for l in [&mut v.regions, &mut v.families, &mut v.skus] {
            l.sort();
            l.dedup();
        }
        v
    }

    /// Names used when no program is open.
    pub fn defaults() -> Vocabulary {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        Vocabulary {
            regions: s(&["EMEA", "NA", "APAC", "LATAM"]),
            tiers: ["registered", "silver", "gold", "platinum"]
                .iter()
                .map(|t| (t.to_string(), t.to_string()))
                .collect(),
            families: s(&[
                "security",
                "networking",
                "services",
                "hardware",
                "software",
                "storage",
                "cloud",
            ]),
            skus: Vec::new(),
        }
    }
}

/// A drafted rule and its paraphrase.
#[derive(Debug, Clone, PartialEq)]
pub struct Drafted {
    pub rule: Rule,
    pub paraphrase: String,
    /// `parser`, or `model` when the optional language model drafted it (checked).
    pub source: &'static str,
}

/// Why a sentence was refused and the part that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub refused: String,
    pub unreadable: String,
}

fn refuse(refused: impl Into<String>, unreadable: impl Into<String>) -> Refusal {
    Refusal {
        refused: refused.into(),
        unreadable: unreadable.into(),
    }
}

/// The seam for an optional language model: JSON text of one rule for a sentence.
/// The model sees the sentence and the vocabulary only (no partner data).
pub trait DraftModel {
    fn draft_rule(&self, sentence: &str, vocabulary: &Vocabulary) -> Result<String, String>;
}

/// Validates a model's rule (the plan schema, the vocabulary) and paraphrases it.
pub fn accept_model_rule(json: &str, vocab: &Vocabulary) -> Result<Drafted, Refusal> {
    let rule =
        super::v2::parse_rule(json).map_err(|e| refuse("the model's rule is not valid", e))?;
    check_vocabulary(&rule, vocab)?;
    Ok(Drafted {
        paraphrase: paraphrase(&rule),
        rule,
        source: "model",
    })
}

/// Refusals a model may try to do better on: phrasing the parser could not read. Every
/// other refusal is something that must not be guessed (a vague region, a percentage
/// without a base, a missing amount, contradictions), and stays a refusal.
const MODEL_MAY_TRY: [&str; 2] = [
    "part of the sentence could not be read",
    "no rate, multiplier, quota threshold or SPIFF amount per unit found",
];

/// Whether the model is asked after the parser's refusal `r`.
pub fn model_may_try(r: &Refusal) -> bool {
    MODEL_MAY_TRY.contains(&r.refused.as_str())
}

/// The numbers written in a sentence (`1.5x`, `110%` also as 1.1, `$25`, `Q4`, and
/// the words double, twice, triple and half).
fn numbers_in(sentence: &str) -> Vec<Decimal> {
    let mut out = Vec::new();
    for w in sentence
        .to_lowercase()
        .split(|c: char| !c.is_ascii_alphabetic())
    {
        match w {
            "double" | "doubled" | "twice" => out.push(Decimal::from(2)),
            "triple" | "tripled" | "thrice" => out.push(Decimal::from(3)),
            "half" => out.push(Decimal::new(5, 1)),
            _ => {}
        }
    }
    let mut cur = String::new();
    let chars: Vec<char> = sentence.chars().chain([' ']).collect();
    for (i, c) in chars.iter().enumerate() {
        if c.is_ascii_digit()
            || (*c == '.'
                && !cur.is_empty()
                && chars.get(i + 1).is_some_and(|n| n.is_ascii_digit()))
        {
            cur.push(*c);
            continue;
        }
        if *c == ',' && !cur.is_empty() && chars.get(i + 1).is_some_and(|n| n.is_ascii_digit()) {
            continue;
        }
        if !cur.is_empty() {
            if let Ok(d) = cur.parse::<Decimal>() {
                out.push(d.normalize());
                if *c == '%' {
                    out.push((d / Decimal::ONE_HUNDRED).normalize());
                }
            }
            cur.clear();
        }
    }
    out
}

/// A model's rule may say only what the sentence says: every scope name and every
/// number it uses must be written in the sentence (so it never guesses a region, a
/// base or an amount the parser refused to guess).
fn check_mentioned(rule: &Rule, sentence: &str) -> Result<(), Refusal> {
    let lower = sentence.to_lowercase();
    let s = &rule.scope;
    let named: Vec<(&str, String)> = [
        ("region", s.region.clone()),
        ("tier", s.tier.clone()),
        ("family", s.family.clone()),
        ("sku", s.sku.clone()),
        ("from", s.from.map(|d| d.to_string())),
        ("to", s.to.map(|d| d.to_string())),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|v| (k, v)))
    .collect();
    for (what, v) in named {
        if !lower.contains(&v.to_lowercase()) {
            return Err(refuse(
                "the model's rule names what the sentence does not say",
                format!("{what} {v}"),
            ));
        }
    }
    if let Some(k) = s.partner_kind {
        let word = serde_json::to_value(k)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        if !lower.contains(&word) {
            return Err(refuse(
                "the model's rule names what the sentence does not say",
                format!("partner kind {word}"),
            ));
        }
    }
    let said = numbers_in(sentence);
    let mut used = Vec::new();
    match &rule.action {
        super::v2::RuleAction::Rate(d) | super::v2::RuleAction::RateMultiplier(d) => {
            used.push(d.normalize())
        }
        super::v2::RuleAction::Accelerator(steps) => {
            for (from, m) in steps {
                used.push(from.normalize());
                used.push(m.normalize());
            }
        }
        super::v2::RuleAction::Spiff {
            amount_per_unit,
            from,
            to,
            ..
        } => {
            used.push(amount_per_unit.normalize());
            for d in [from, to].into_iter().flatten() {
                if !lower.contains(&d.to_string()) {
                    return Err(refuse(
                        "the model's rule names what the sentence does not say",
                        format!("date {d}"),
                    ));
                }
            }
        }
    }
    if let Some(q) = s.quarter {
        used.push(Decimal::from(q));
    }
    for n in used {
        // 0 and 1 are the schedule's base (from nothing, times one), never an amount.
        if n.is_zero() || n == Decimal::ONE {
            continue;
        }
        if !said.contains(&n) {
            return Err(refuse(
                "the model's rule has a number the sentence does not",
                n.to_string(),
            ));
        }
    }
    Ok(())
}

/// The parser first; when it refuses only because it could not read the phrasing and a
/// model is given, the model's answer, checked against the schema, the vocabulary and
/// the sentence itself.
pub fn draft_with(
    sentence: &str,
    vocab: &Vocabulary,
    model: Option<&dyn DraftModel>,
) -> Result<Drafted, Refusal> {
    match (draft(sentence, vocab), model) {
        (Ok(d), _) => Ok(d),
        (Err(r), Some(m)) if model_may_try(&r) => match m.draft_rule(sentence, vocab) {
            Ok(json) => {
                let d = accept_model_rule(&json, vocab)?;
                check_mentioned(&d.rule, sentence)?;
                Ok(d)
            }
            Err(_) => Err(r),
        },
        (Err(r), _) => Err(r),
    }
}

fn check_vocabulary(rule: &Rule, vocab: &Vocabulary) -> Result<(), Refusal> {
    let s = &rule.scope;
    if let Some(r) = &s.region {
        if !vocab.regions.is_empty() && !vocab.regions.contains(r) {
            return Err(refuse("unknown region", r.clone()));
        }
    }
    if let Some(f) = &s.family {
        if !vocab.families.is_empty() && !vocab.families.contains(f) {
            return Err(refuse("unknown product family", f.clone()));
        }
    }
    if let Some(k) = &s.sku {
        if !vocab.skus.is_empty() && !vocab.skus.contains(k) {
            return Err(refuse("unknown sku", k.clone()));
        }
    }
    Ok(())
}

/// Place words that name no single region of a program.
const VAGUE_PLACES: &[&str] = &[
    "europe",
    "european",
    "america",
    "americas",
    "american",
    "asia",
    "asian",
    "africa",
    "international",
    "overseas",
    "abroad",
    "domestic",
    "worldwide",
    "north",
    "south",
    "east",
    "west",
    "northern",
    "southern",
    "eastern",
    "western",
    "emerging",
    "regional",
];

/// Words that carry no meaning of their own here.
const FILLER: &[&str] = &[
    "a",
    "an",
    "the",
    "of",
    "for",
    "in",
    "on",
    "at",
    "to",
    "with",
    "and",
    "by",
    "all",
    "every",
    "any",
    "their",
    "its",
    "is",
    "are",
    "be",
    "gets",
    "get",
    "give",
    "gives",
    "pay",
    "pays",
    "paid",
    "earn",
    "earns",
    "partners",
    "partner",
    "sales",
    "sale",
    "deals",
    "deal",
    "products",
    "product",
    "family",
    "tier",
    "tiers",
    "region",
    "rule",
    "new",
    "set",
    "sets",
    "commission",
    "commissions",
    "seller",
    "selling",
    "sold",
    "who",
    "that",
    "when",
    "which",
    "during",
    "fiscal",
    "quarter",
    "only",
    "applies",
    "apply",
    "line",
    "lines",
    "sku",
    "skus",
    "level",
    "sells",
    "sell",
    "reach",
    "reaching",
    "reached",
    "hit",
    "hits",
    "on",
    "an",
];

#[derive(Debug, Clone)]
struct Tok {
    /// Lowercase, trailing punctuation stripped.
    low: String,
    /// As written (trailing punctuation stripped).
    raw: String,
    used: bool,
}

fn tokenize(s: &str) -> Vec<Tok> {
    s.split_whitespace()
        .filter_map(|w| {
            let w = w
                .trim_matches(|c: char| matches!(c, ',' | ';' | ':' | '!' | '?' | '(' | ')' | '"'));
            let w = w.strip_suffix('.').unwrap_or(w);
            (!w.is_empty()).then(|| Tok {
                low: w.to_lowercase(),
                raw: w.to_string(),
                used: false,
            })
        })
        .collect()
}

fn number(s: &str) -> Option<Decimal> {
    let s = s.replace(',', "");
    if s.is_empty() || !s.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return None;
    }
    s.parse().ok()
}

fn date(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}

/// What the sentence says, before it becomes a rule.
#[derive(Debug, Default)]
struct Read {
    multipliers: Vec<Decimal>,
    thresholds: Vec<Decimal>,
    rates: Vec<Decimal>,
    /// `boost by N%`: rate multipliers from percentages.
    boosts: Vec<Decimal>,
    per_unit: Vec<Decimal>,
    regions: Vec<String>,
    tiers: Vec<String>,
    families: Vec<String>,
    skus: Vec<String>,
    kinds: Vec<PartnerKind>,
    quarters: Vec<u32>,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    priority: Option<i64>,
    rule_id: Option<String>,
    accel_word: bool,
    spiff_word: bool,
    multiplier_word: bool,
    rate_word: bool,
}

struct Parser<'v> {
    t: Vec<Tok>,
    vocab: &'v Vocabulary,
    r: Read,
}

impl Parser<'_> {
    fn low(&self, i: usize) -> &str {
        self.t.get(i).map_or("", |t| t.low.as_str())
    }

    fn use_(&mut self, i: usize) {
        if let Some(t) = self.t.get_mut(i) {
            t.used = true;
        }
    }

    /// Whether the words at `i..` are `words` (then marks them used).
    fn take(&mut self, i: usize, words: &[&str]) -> bool {
        if words.iter().enumerate().all(|(k, w)| self.low(i + k) == *w) {
            for k in 0..words.len() {
                self.use_(i + k);
            }
            true
        } else {
            false
        }
    }

    fn keywords(&mut self) {
        for i in 0..self.t.len() {
            let w = self.low(i).to_string();
            match w.as_str() {
                "accelerator" | "accelerators" | "accelerate" | "accelerated" | "kicker"
                | "overachievement" | "over-achievement" | "overperformance" => {
                    self.r.accel_word = true;
                    self.use_(i);
                }
                "spiff" | "spiffs" | "bonus" => {
                    self.r.spiff_word = true;
                    self.use_(i);
                }
                "multiplier" | "multiply" | "multiplied" | "boost" | "boosted" | "uplift"
                | "raise" | "increase" => {
                    self.r.multiplier_word = true;
                    self.use_(i);
                }
                "rate" | "rates" => {
                    self.r.rate_word = true;
                    self.use_(i);
                }
                "distributor" | "distributors" => {
                    self.r.kinds.push(PartnerKind::Distributor);
                    self.use_(i);
                }
                "reseller" | "resellers" => {
                    self.r.kinds.push(PartnerKind::Reseller);
                    self.use_(i);
                }
                "priority" => {
                    if let Some(n) = self.t.get(i + 1).and_then(|t| t.low.parse::<i64>().ok()) {
                        self.r.priority = Some(n);
                        self.use_(i);
                        self.use_(i + 1);
                    }
                }
                "id" | "named" | "called" => {
                    if let Some(t) = self.t.get(i + 1) {
                        self.r.rule_id = Some(t.raw.to_uppercase());
                        self.use_(i);
                        self.use_(i + 1);
                    }
                }
                _ => {}
            }
        }
    }

    fn quarters(&mut self) {
        let ordinals = [("first", 1), ("second", 2), ("third", 3), ("fourth", 4)];
        for i in 0..self.t.len() {
            let w = self.low(i).to_string();
            if let Some(n) = w.strip_prefix('q').and_then(|n| n.parse::<u32>().ok()) {
                if (1..=4).contains(&n) {
                    self.r.quarters.push(n);
                    self.use_(i);
                }
            }
            for (o, n) in ordinals {
                if w == o && self.low(i + 1) == "quarter" {
                    self.r.quarters.push(n);
                    self.use_(i);
                    self.use_(i + 1);
                }
            }
        }
    }

    fn dates(&mut self) {
        for i in 0..self.t.len() {
            let Some(d) = date(self.low(i)) else { continue };
            let prev = if i > 0 {
                self.low(i - 1).to_string()
            } else {
                String::new()
            };
            match prev.as_str() {
                "from" | "between" | "after" | "since" | "starting" => {
                    self.r.from = Some(d);
                    self.use_(i - 1);
                }
                "to" | "and" | "until" | "through" | "till" | "thru" | "by" | "ending" => {
                    self.r.to = Some(d);
                    self.use_(i - 1);
                }
                _ => continue,
            }
            self.use_(i);
        }
    }

    /// Percentages: thresholds (`% of quota`), rates (`rate of N%`), boosts (`by N%`).
    fn percents(&mut self) -> Result<(), Refusal> {
        for i in 0..self.t.len() {
            let w = self.low(i).to_string();
            let (value, width) = if let Some(n) = w.strip_suffix('%').and_then(number) {
                (n, 1)
            } else if let (Some(n), true) = (number(&w), matches!(self.low(i + 1), "%" | "percent"))
            {
                (n, 2)
            } else {
                continue;
            };
            let frac = (value / Decimal::ONE_HUNDRED).normalize();
            let next = i + width;
            let prev = if i > 0 {
                self.low(i - 1).to_string()
            } else {
                String::new()
            };
            let prev2 = if i > 1 {
                self.low(i - 2).to_string()
            } else {
                String::new()
            };
            for k in 0..width {
                self.use_(i + k);
            }
            if self.take(next, &["of", "quota"])
                || self.take(next, &["of", "the", "quota"])
                || self.take(next, &["of", "their", "quota"])
                || self.take(next, &["of", "target"])
                || self.take(next, &["quota", "attainment"])
                || self.take(next, &["attainment"])
                || prev == "attainment"
                || (prev2 == "attainment" && matches!(prev.as_str(), "above" | "over" | "of"))
            {
                self.below_check(i)?;
                self.r.thresholds.push(frac);
            } else if matches!(prev.as_str(), "by") && self.r.multiplier_word {
                self.r.boosts.push((Decimal::ONE + frac).normalize());
            } else if self.rate_context(i, next) {
                self.r.rates.push(frac);
            } else {
                return Err(refuse(
                    "a percentage without a base (say `of quota` for a threshold, or `a rate of` for a commission rate)",
                    self.t[i..next].iter().map(|t| t.raw.as_str()).collect::<Vec<_>>().join(" "),
                ));
            }
        }
        Ok(())
    }

    fn below_check(&self, i: usize) -> Result<(), Refusal> {
        let prev = if i > 0 { self.low(i - 1) } else { "" };
        if matches!(prev, "below" | "under" | "beneath" | "less") {
            return Err(refuse(
                "a threshold below quota attainment (accelerators start at a threshold and go up)",
                format!("{prev} {}", self.t[i].raw),
            ));
        }
        Ok(())
    }

    /// Whether a percentage at `i` is a commission rate.
    fn rate_context(&self, i: usize, next: usize) -> bool {
        let before: Vec<&str> = (i.saturating_sub(3)..i).map(|k| self.low(k)).collect();
        let after = [self.low(next), self.low(next + 1)];
        before.iter().any(|w| {
            matches!(
                *w,
                "rate" | "rates" | "commission" | "pay" | "pays" | "earn" | "earns"
            )
        }) || after.iter().any(|w| matches!(*w, "rate" | "commission"))
    }

    /// `1.5x`, `1.5 x`, `1.5 times`, `multiplier of 1.5`, `x1.5`.
    fn multipliers(&mut self) {
        for i in 0..self.t.len() {
            if self.t[i].used {
                continue;
            }
            let w = self.low(i).to_string();
            let inline = w
                .strip_suffix('x')
                .or_else(|| w.strip_suffix('×'))
                .or_else(|| w.strip_prefix('x'))
                .and_then(number);
            if let Some(m) = inline {
                self.r.multipliers.push(m);
                self.use_(i);
                continue;
            }
            if let Some(m) = number(&w) {
                if matches!(self.low(i + 1), "x" | "×" | "times") {
                    self.r.multipliers.push(m);
                    self.use_(i);
                    self.use_(i + 1);
                } else if self.r.multiplier_word
                    && i > 0
                    && matches!(self.low(i - 1), "of" | "by" | "multiplier")
                    && !matches!(self.low(i + 1), "per" | "a" | "each")
                {
                    self.r.multipliers.push(m);
                    self.use_(i);
                }
            }
        }
    }

    /// `$75 per unit`, `75 USD per unit`, `75 per unit`, `€50 a unit`.
    fn per_unit(&mut self) -> Result<(), Refusal> {
        for i in 0..self.t.len() {
            if self.t[i].used {
                continue;
            }
            let w = self.low(i).to_string();
            let stripped = w.trim_start_matches(['$', '€', '£']);
            let Some(amount) = number(stripped) else {
                continue;
            };
            let mut j = i + 1;
            if matches!(self.low(j), "usd" | "eur" | "gbp" | "dollars" | "euros") {
                j += 1;
            }
            let unit = ["per", "a", "each", "for", "every"].iter().any(|p| {
                self.low(j) == *p
                    && matches!(
                        self.low(j + 1),
                        "unit" | "units" | "seat" | "seats" | "license" | "licence" | "item"
                    )
            });
            if unit {
                for k in i..j + 2 {
                    self.use_(k);
                }
                self.r.per_unit.push(amount);
            } else if stripped.len() < w.len() || j > i + 1 {
                return Err(refuse(
                    "an amount that is not per unit (SPIFFs pay an amount per unit sold)",
                    self.t[i..j]
                        .iter()
                        .map(|t| t.raw.as_str())
                        .collect::<Vec<_>>()
                        .join(" "),
                ));
            }
        }
        Ok(())
    }

    /// Thresholds without a percentage: `above quota`, `over quota`.
    fn quota_words(&mut self) {
        for i in 0..self.t.len() {
            if matches!(self.low(i), "above" | "over" | "beyond" | "exceeding")
                && self.low(i + 1) == "quota"
            {
                self.r.thresholds.push(Decimal::ONE);
                self.use_(i);
                self.use_(i + 1);
            }
        }
        // The words around a percentage threshold.
        for i in 0..self.t.len() {
            if matches!(
                self.low(i),
                "above"
                    | "over"
                    | "beyond"
                    | "exceeding"
                    | "from"
                    | "past"
                    | "attainment"
                    | "quota"
            ) && !self.r.thresholds.is_empty()
            {
                self.use_(i);
            }
        }
    }

    fn names(&mut self) -> Result<(), Refusal> {
        for i in 0..self.t.len() {
            if self.t[i].used {
                continue;
            }
            let (low, raw) = (self.t[i].low.clone(), self.t[i].raw.clone());
            if let Some(r) = self.vocab.regions.iter().find(|r| r.to_lowercase() == low) {
                self.r.regions.push(r.clone());
            } else if let Some((id, _)) = self
                .vocab
                .tiers
                .iter()
                .find(|(id, n)| id.to_lowercase() == low || n.to_lowercase() == low)
            {
                self.r.tiers.push(id.clone());
            } else if let Some(f) = self.vocab.families.iter().find(|f| {
                let f = f.to_lowercase();
                f == low || format!("{f}s") == low
            }) {
                self.r.families.push(f.clone());
            } else if let Some(s) = self.vocab.skus.iter().find(|s| s.to_lowercase() == low) {
                self.r.skus.push(s.clone());
            } else if looks_like_sku(&raw) {
                if !self.vocab.skus.is_empty() {
                    return Err(refuse("unknown sku (not a product of the program)", raw));
                }
                self.r.skus.push(raw.to_uppercase());
            } else if VAGUE_PLACES.contains(&low.as_str()) {
                return Err(refuse(
                    format!(
                        "ambiguous region (say one of the program's regions: {})",
                        self.vocab.regions.join(", ")
                    ),
                    raw,
                ));
            } else {
                continue;
            }
            self.use_(i);
        }
        Ok(())
    }

    fn leftovers(&self) -> Vec<&str> {
        self.t
            .iter()
            .filter(|t| !t.used && !FILLER.contains(&t.low.as_str()))
            .map(|t| t.raw.as_str())
            .collect()
    }
}

fn looks_like_sku(s: &str) -> bool {
    let Some((a, b)) = s.split_once('-') else {
        return false;
    };
    a.len() >= 2
        && a.chars().all(|c| c.is_ascii_uppercase())
        && !b.is_empty()
        && b.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && b.chars().any(|c| c.is_ascii_digit())
}

/// At most one of a scope field.
fn one<T: Clone + PartialEq + std::fmt::Debug>(v: &[T], what: &str) -> Result<Option<T>, Refusal> {
    let mut u: Vec<T> = Vec::new();
    for x in v {
        if !u.contains(x) {
            u.push(x.clone());
        }
    }
    match u.as_slice() {
        [] => Ok(None),
        [x] => Ok(Some(x.clone())),
        many => Err(refuse(
            format!("a rule has one {what}; the sentence names several"),
            many.iter()
                .map(|x| format!("{x:?}").trim_matches('"').to_string())
                .collect::<Vec<_>>()
                .join(", "),
        )),
    }
}

/// Turns a sentence into a v2 rule, or refuses naming what it could not read.
pub fn draft(sentence: &str, vocab: &Vocabulary) -> Result<Drafted, Refusal> {
    let mut p = Parser {
        t: tokenize(sentence),
        vocab,
        r: Read::default(),
    };
    if p.t.is_empty() {
        return Err(refuse("an empty sentence", ""));
    }
    p.keywords();
    p.quarters();
    p.dates();
    p.percents()?;
    p.multipliers();
    p.per_unit()?;
    p.quota_words();
    p.names()?;
    let left = p.leftovers();
    if !left.is_empty() {
        return Err(refuse(
            "part of the sentence could not be read",
            left.join(" "),
        ));
    }
    let rule = build(p.r)?;
    check_vocabulary(&rule, vocab)?;
    Ok(Drafted {
        paraphrase: paraphrase(&rule),
        rule,
        source: "parser",
    })
}

fn build(r: Read) -> Result<Rule, Refusal> {
    let mut kinds: Vec<RuleKind> = Vec::new();
    if !r.thresholds.is_empty() || r.accel_word {
        kinds.push(RuleKind::Accelerator);
    }
    if !r.per_unit.is_empty() || r.spiff_word {
        kinds.push(RuleKind::Spiff);
    }
    if !r.rates.is_empty() {
        kinds.push(RuleKind::Rate);
    }
    if (!r.multipliers.is_empty() || !r.boosts.is_empty())
        && !kinds.contains(&RuleKind::Accelerator)
    {
        kinds.push(RuleKind::RateMultiplier);
    }
    let kind = match kinds.as_slice() {
        [k] => *k,
        [] => {
            return Err(refuse(
                "no rate, multiplier, quota threshold or SPIFF amount per unit found",
                "the whole sentence",
            ))
        }
        many => {
            return Err(refuse(
                "more than one rule in one sentence (write one rule per sentence)",
                many.iter()
                    .map(|k| k.as_str())
                    .collect::<Vec<_>>()
                    .join(" and "),
            ))
        }
    };
    if let (Some(a), Some(b)) = (r.from, r.to) {
        if a > b {
            return Err(refuse(
                "contradictory dates (the start is after the end)",
                format!("{a} to {b}"),
            ));
        }
    }
    let mut scope = Scope {
        region: one(&r.regions, "region")?,
        // A SPIFF names its tiers in `eligible_tiers`.
        tier: if kind == RuleKind::Spiff {
            None
        } else {
            one(&r.tiers, "tier")?
        },
        family: one(&r.families, "product family")?,
        sku: one(&r.skus, "sku")?,
        partner_kind: one(&r.kinds, "partner kind")?,
        quarter: one(&r.quarters, "fiscal quarter")?,
        from: None,
        to: None,
    };
    let action = match kind {
        RuleKind::Accelerator => RuleAction::Accelerator(schedule(&r)?),
        RuleKind::Rate => {
            let rate = one(&r.rates, "rate")?.unwrap_or_default();
            if !r.multipliers.is_empty() || !r.boosts.is_empty() {
                return Err(refuse("a rate and a multiplier in one rule", "multiplier"));
            }
            RuleAction::Rate(rate)
        }
        RuleKind::RateMultiplier => {
            let all: Vec<Decimal> = r.multipliers.iter().chain(&r.boosts).copied().collect();
            match one(&all, "multiplier")? {
                Some(m) => RuleAction::RateMultiplier(m),
                None => return Err(refuse("a multiplier without a number", "multiplier")),
            }
        }
        RuleKind::Spiff => {
            let Some(amount) = one(&r.per_unit, "SPIFF amount")? else {
                return Err(refuse("a SPIFF without an amount per unit", "spiff"));
            };
            if !r.multipliers.is_empty() || !r.rates.is_empty() {
                return Err(refuse("a SPIFF with a rate or multiplier", "rate"));
            }
            let tiers: Vec<String> = {
                let mut t = r.tiers.clone();
                t.dedup();
                t
            };
            RuleAction::Spiff {
                amount_per_unit: amount,
                from: r.from,
                to: r.to,
                eligible_tiers: (!tiers.is_empty()).then_some(tiers),
            }
        }
    };
    if kind != RuleKind::Spiff {
        scope.from = r.from;
        scope.to = r.to;
    }
    let rule_id = r
        .rule_id
        .clone()
        .unwrap_or_else(|| rule_id(kind, &scope, &action));
    Ok(Rule {
        rule_id,
        scope,
        priority: r.priority.unwrap_or(0),
        action,
    })
}

fn schedule(r: &Read) -> Result<Vec<(Decimal, Decimal)>, Refusal> {
    let mut th = r.thresholds.clone();
    th.dedup();
    let ms = &r.multipliers;
    if th.is_empty() {
        return Err(refuse(
            "an accelerator without a threshold (say `above 110% of quota`)",
            "accelerator",
        ));
    }
    if ms.is_empty() {
        return Err(refuse(
            "an accelerator without a multiplier (say `1.5x`)",
            "accelerator",
        ));
    }
    if ms.len() != th.len() {
        return Err(refuse(
            "contradictory thresholds (each multiplier needs exactly one threshold)",
            th.iter()
                .map(|t| format!("{}% of quota", (t * Decimal::ONE_HUNDRED).normalize()))
                .collect::<Vec<_>>()
                .join(" and "),
        ));
    }
    let mut v: Vec<(Decimal, Decimal)> = th.into_iter().zip(ms.iter().copied()).collect();
    v.sort_by_key(|a| a.0);
    if v.windows(2).any(|w| w[1].1 < w[0].1) {
        return Err(refuse(
            "contradictory thresholds (a higher threshold with a lower multiplier)",
            "multipliers",
        ));
    }
    Ok(v)
}

fn rule_id(kind: RuleKind, s: &Scope, action: &RuleAction) -> String {
    let mut parts: Vec<String> = vec![match kind {
        RuleKind::Rate => "RATE".into(),
        RuleKind::RateMultiplier => "MULT".into(),
        RuleKind::Accelerator => "ACCEL".into(),
        RuleKind::Spiff => "SPIFF".into(),
    }];
    parts.extend(s.region.clone());
    parts.extend(s.tier.clone());
    parts.extend(s.family.clone());
    parts.extend(s.sku.clone());
    parts.extend(s.partner_kind.map(|k| k.as_str().to_string()));
    parts.extend(s.quarter.map(|q| format!("Q{q}")));
    let (from, to) = match action {
        RuleAction::Spiff { from, to, .. } => (*from, *to),
        _ => (s.from, s.to),
    };
    parts.extend(from.map(|d| d.to_string()));
    parts.extend(to.map(|d| d.to_string()));
    parts
        .join("-")
        .to_uppercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

fn pct(d: Decimal) -> String {
    format!("{}%", (d * Decimal::ONE_HUNDRED).normalize())
}

/// The rule in words (deterministic: the same rule always reads the same).
pub fn paraphrase(rule: &Rule) -> String {
    let scope = rule.scope.describe();
    let prio = if rule.priority != 0 {
        format!(" (priority {})", rule.priority)
    } else {
        String::new()
    };
    let body = match &rule.action {
        RuleAction::Rate(r) => format!(
            "Seller rate {} for {scope}, replacing the tier rate and family multiplier",
            pct(*r)
        ),
        RuleAction::RateMultiplier(m) => {
            format!("Seller rate multiplied by {} for {scope}", m.normalize())
        }
        RuleAction::Accelerator(v) => {
            let steps: Vec<String> = v
                .iter()
                .map(|(a, m)| format!("{}x from {} of quota", m.normalize(), pct(*a)))
                .collect();
            format!(
                "Accelerator for {scope}: {} (attainment counts all of the partner's sales in the quarter)",
                steps.join(", ")
            )
        }
        RuleAction::Spiff {
            amount_per_unit,
            from,
            to,
            eligible_tiers,
        } => {
            let window = match (from, to) {
                (Some(a), Some(b)) => format!(", closed {a} to {b}"),
                (Some(a), None) => format!(", closed on or after {a}"),
                (None, Some(b)) => format!(", closed on or before {b}"),
                (None, None) => String::new(),
            };
            let tiers = match eligible_tiers {
                Some(t) => format!(", tiers {}", t.join(", ")),
                None => String::new(),
            };
            format!(
                "SPIFF of {} per unit for {scope}{window}{tiers}",
                amount_per_unit.normalize()
            )
        }
    };
    format!("{body}{prio} [{}].", rule.rule_id)
}
