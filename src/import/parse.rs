//! One line of a data-set file -> one domain row, or the field and reason it is bad.
//!
//! The fast path deserialises straight into a typed "raw" struct (money, dates and
//! enums still as text) and then converts each field, naming the field on failure.
//! Only when the typed parse fails does [`diagnose`] re-read the line as a JSON value
//! to say which field is missing or has the wrong type.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::Value;

use super::flat::{self, Val};
use crate::model::*;
use crate::money::parse_money;
use crate::store::bulk::{CommBatch, CommRow, TxBatch, TxRow};
use crate::store::dataset::{PreparedRegistration, PreparedTransaction};

/// Why a row is bad: the field (when one is to blame) and what is wrong.
pub type Bad = (Option<String>, String);

fn bad(field: &str, msg: impl Into<String>) -> Bad {
    (Some(field.to_string()), msg.into())
}

/// The JSON shape a field must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    Str,
    OptStr,
    Int,
    Bool,
    Money,
    Date,
    Timestamp,
    StrList,
    OptObject,
    Array,
}

fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) if n.is_f64() => format!("the float number {n}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string {s:?}"),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

fn type_ok(ty: Ty, v: &Value) -> Result<(), String> {
    let ok = match ty {
        Ty::Str | Ty::Money | Ty::Date | Ty::Timestamp => v.is_string(),
        Ty::OptStr => v.is_string() || v.is_null(),
        Ty::Int => v.is_i64(),
        Ty::Bool => v.is_boolean(),
        Ty::StrList => v.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
        Ty::OptObject => v.is_object() || v.is_null(),
        Ty::Array => v.is_array(),
    };
    if ok {
        return Ok(());
    }
    let want = match ty {
        Ty::Str => "a string",
        Ty::OptStr => "a string or null",
        Ty::Int => "a whole number",
        Ty::Bool => "true or false",
        Ty::Money => {
            return Err(match v {
                Value::Number(n) => format!(
                    "expected a decimal string such as \"230.0\", found the number {n} \
                     (money must be a string, never a float)"
                ),
                other => format!("expected a decimal string, found {}", describe(other)),
            })
        }
        Ty::Date => "a date string YYYY-MM-DD",
        Ty::Timestamp => "an RFC 3339 timestamp string",
        Ty::StrList => "an array of strings",
        Ty::OptObject => "an object or null",
        Ty::Array => "an array",
    };
    Err(format!("expected {want}, found {}", describe(v)))
}

/// Explains why `line` did not parse as a row with fields `spec`.
pub fn diagnose(line: &str, spec: &[(&str, Ty)], serde_msg: &str) -> Bad {
    let v: Value = match serde_json::from_str(line) {
        Ok(v) => v,
        Err(e) if e.is_eof() => {
            return (None, format!("incomplete JSON (the line ends early): {e}"));
        }
        Err(e) => return (None, format!("not valid JSON: {e}")),
    };
    let Some(obj) = v.as_object() else {
        return (
            None,
            format!("expected a JSON object, found {}", describe(&v)),
        );
    };
    for (name, ty) in spec {
        match obj.get(*name) {
            None if matches!(ty, Ty::OptStr | Ty::OptObject) => {}
            None => return bad(name, "missing required field"),
            Some(val) => {
                if let Err(msg) = type_ok(*ty, val) {
                    if is_sensitive(name) {
                        return bad(name, mask_values(&msg));
                    }
                    return bad(name, msg);
                }
            }
        }
    }
    (None, serde_msg.to_string())
}

/// Fields holding a partner's tax id or bank details: never printed unmasked.
fn is_sensitive(field: &str) -> bool {
    matches!(field, "tax_id" | "bank_account" | "iban" | "bic")
        || field.starts_with("bank_account.")
        || field.contains("account_number")
        || field.contains("routing_number")
}

/// `msg` with every run of five or more letters and digits that holds a digit
/// masked to its last four (`found the number 987654321` -> `found the number
/// *****4321`): an error message about a partner row never shows a tax id or an
/// account number.
pub fn mask_values(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.chars().count() >= 5 && run.chars().any(|c| c.is_ascii_digit()) {
            out.push_str(&crate::model::mask(run));
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in msg.chars() {
        if c.is_alphanumeric() || c == '-' {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

fn parse_typed<'a, T: Deserialize<'a>>(line: &'a str, spec: &[(&str, Ty)]) -> Result<T, Bad> {
    serde_json::from_str(line).map_err(|e| diagnose(line, spec, &e.to_string()))
}

fn money(field: &str, s: &str) -> Result<Decimal, Bad> {
    let d = parse_money(s).ok_or_else(|| {
        let digits = s.bytes().filter(u8::is_ascii_digit).count();
        if digits > 28
            && s.trim()
                .bytes()
                .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-')
        {
            bad(
                field,
                format!(
                    "{s:?} has {digits} digits: beyond the largest amount tierdesk accepts ({})",
                    crate::money::MAX_ABS_AMOUNT
                ),
            )
        } else {
            bad(field, format!("not a decimal amount: {s:?}"))
        }
    })?;
    if d.abs() > crate::money::MAX_ABS_AMOUNT {
        return Err(bad(
            field,
            format!(
                "{s} is beyond the largest amount tierdesk accepts ({})",
                crate::money::MAX_ABS_AMOUNT
            ),
        ));
    }
    Ok(d)
}

fn from_issue(i: super::integrity::Issue) -> Bad {
    (Some(i.field.to_string()), i.message)
}

/// An id as the cache keeps it (see [`super::integrity::normalize_id`]).
fn norm_id<'a>(field: &'static str, id: &mut Cow<'a, str>) -> Result<(), Bad> {
    if let Cow::Owned(n) = super::integrity::normalize_id(field, id).map_err(from_issue)? {
        *id = Cow::Owned(n);
    }
    Ok(())
}

fn norm_opt_id(field: &'static str, id: &mut Option<Cow<'_, str>>) -> Result<(), Bad> {
    match id {
        Some(id) => norm_id(field, id),
        None => Ok(()),
    }
}

fn norm_string(field: &'static str, id: &mut String) -> Result<(), Bad> {
    super::integrity::normalize_id_in(field, id).map_err(from_issue)
}

fn date(field: &str, s: &str) -> Result<NaiveDate, Bad> {
    canonical_date(s)
        .or_else(|| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
        .ok_or_else(|| bad(field, format!("not a date YYYY-MM-DD: {s:?}")))
}

/// `YYYY-MM-DD` exactly (the form the store writes), without chrono's format parser.
fn canonical_date(s: &str) -> Option<NaiveDate> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        b[r].iter().try_fold(0u32, |acc, c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    NaiveDate::from_ymd_opt(num(0..4)? as i32, num(5..7)?, num(8..10)?)
}

/// `YYYY-MM-DDTHH:MM:SSZ` exactly (the form the store writes), without chrono's
/// format parser; anything else (offsets, fractions, a leap second) is left to it.
fn canonical_timestamp(s: &str) -> Option<DateTime<Utc>> {
    let b = s.as_bytes();
    if b.len() != 20 || b[10] != b'T' || b[13] != b':' || b[16] != b':' || b[19] != b'Z' {
        return None;
    }
    let two = |i: usize| -> Option<u32> {
        let (h, l) = (b[i], b[i + 1]);
        (h.is_ascii_digit() && l.is_ascii_digit())
            .then(|| u32::from(h - b'0') * 10 + u32::from(l - b'0'))
    };
    let day = canonical_date(s.get(..10)?)?;
    Some(day.and_hms_opt(two(11)?, two(14)?, two(17)?)?.and_utc())
}

/// Whether `s` is a decimal exactly as `Decimal`'s `Display` writes it back
/// (`-?(0|[1-9][0-9]*)(\.[0-9]+)?`, not a negative zero), so the text can be
/// stored as given instead of formatting the parsed value again.
pub fn is_canonical_decimal(s: &str) -> bool {
    let b = s.as_bytes();
    let (neg, digits) = match b.first() {
        Some(b'-') => (true, &b[1..]),
        _ => (false, b),
    };
    let (int, frac) = match digits.iter().position(|&c| c == b'.') {
        Some(p) => (&digits[..p], Some(&digits[p + 1..])),
        None => (digits, None),
    };
    let int_ok =
        !int.is_empty() && int.iter().all(u8::is_ascii_digit) && (int.len() == 1 || int[0] != b'0');
    let frac_ok = frac.is_none_or(|f| !f.is_empty() && f.iter().all(u8::is_ascii_digit));
    let nonzero = !neg || digits.iter().any(|&c| (b'1'..=b'9').contains(&c));
    int_ok && frac_ok && nonzero && int.len() + frac.map_or(0, <[u8]>::len) <= 28
}

/// A money field: its value and its text as the store writes it.
fn money_text(field: &str, s: String) -> Result<(Decimal, String), Bad> {
    let (d, text) = money_cow(field, &s)?;
    Ok((d, rewritten(text).unwrap_or(s)))
}

/// A stored text worked out from an input: `None` when it is the input as given.
fn rewritten(text: Cow<'_, str>) -> Option<String> {
    match text {
        Cow::Owned(t) => Some(t),
        Cow::Borrowed(_) => None,
    }
}

/// [`money_text`] borrowing the input text when it is already in stored form.
fn money_cow<'r>(field: &str, s: &'r str) -> Result<(Decimal, Cow<'r, str>), Bad> {
    let d = money(field, s)?;
    if is_canonical_decimal(s) {
        Ok((d, Cow::Borrowed(s)))
    } else {
        Ok((d, Cow::Owned(d.to_string())))
    }
}

/// A timestamp: RFC 3339 (a space for the `T` accepted), any offset, stored in UTC
/// to whole seconds (a fraction of a second is cut off).
fn timestamp(field: &str, s: &str) -> Result<DateTime<Utc>, Bad> {
    use chrono::Timelike;
    if let Some(t) = canonical_timestamp(s) {
        return Ok(t);
    }
    DateTime::parse_from_rfc3339(s)
        .map(|d| d.with_timezone(&Utc))
        .ok()
        .and_then(|d| d.with_nanosecond(0))
        .ok_or_else(|| {
            bad(
                field,
                format!(
                    "not an RFC 3339 timestamp with an offset (e.g. 2026-09-12T08:31:40Z): {s:?}"
                ),
            )
        })
}

fn nonempty(field: &str, s: &str) -> Result<(), Bad> {
    if s.trim().is_empty() {
        Err(bad(field, "must not be empty"))
    } else {
        Ok(())
    }
}

/// A hasher for keys that are already hashes.
#[derive(Default)]
pub struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// 64-bit fingerprint of an id (std's SipHash; never persisted). Sets of ids keep only
/// fingerprints so memory stays small for millions of rows; a false match needs
/// a 64-bit collision (about 1 in 10^7 for a billion ids).
pub fn fingerprint(parts: &[&str]) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    for p in parts {
        h.write(p.as_bytes());
        h.write_u8(0x1f);
    }
    h.finish()
}

type FpMap<V> = HashMap<u64, V, BuildHasherDefault<IdentityHasher>>;
type FpSet = std::collections::HashSet<u64, BuildHasherDefault<IdentityHasher>>;

/// Ids known to exist (stored in the cache or accepted earlier in this import),
/// as 64-bit fingerprints (no copy of the id text), and which were accepted in this
/// import (for duplicates).
///
/// The small entities remember the line each key was accepted on ("first given on
/// line N"). The bulk ones (registrations, transactions, commissions; millions of
/// rows) keep only the fingerprints, about 9 bytes per id into an empty cache, so
/// an import's memory barely grows with the file.
#[derive(Default)]
pub struct IdSet {
    /// Small entities: fingerprint -> line accepted on (0 = known from the cache).
    lines: FpMap<u32>,
    compact: bool,
    /// Bulk entities: known from the cache, and accepted in this import.
    stored: FpSet,
    accepted: FpSet,
    /// Bulk entities checked by the store: ids of rows accepted in the file being
    /// read, known once it is written ([`IdSet::settle`]). A push per row here,
    /// the hashing into `stored` later: the parsing thread of a bulk file is the
    /// import's bottleneck.
    pending: Vec<u64>,
    /// Pending ids taken back before they settled.
    forgotten: FpSet,
    /// Settled ids, sorted: 8 bytes an id and no second copy while settling (a
    /// hash set would need both the list and its table at once). Fingerprints are
    /// uniform, so a lookup starts where the value says and takes a few probes.
    settled: Vec<u64>,
}

/// Whether sorted `v` holds `x`: starts at the place `x`'s value points to (the
/// fingerprints are spread evenly over u64), then gallops to it.
fn sorted_contains(v: &[u64], x: u64) -> bool {
    let n = v.len();
    if n == 0 {
        return false;
    }
    let guess = ((u128::from(x) * n as u128) >> 64) as usize;
    let (mut lo, mut hi) = (guess.min(n - 1), guess.min(n - 1));
    let mut step = 1usize;
    // Widen [lo, hi] around the guess until it brackets x.
    while lo > 0 && v[lo] > x {
        lo = lo.saturating_sub(step);
        step *= 2;
    }
    step = 1;
    while hi < n - 1 && v[hi] < x {
        hi = (hi + step).min(n - 1);
        step *= 2;
    }
    v[lo..=hi].binary_search(&x).is_ok()
}

impl IdSet {
    /// A set for a bulk entity: fingerprints only, no line numbers.
    pub fn compact() -> IdSet {
        IdSet {
            compact: true,
            ..IdSet::default()
        }
    }
    pub fn add_known(&mut self, id: &str) {
        let fp = fingerprint(&[id]);
        if self.compact {
            self.stored.insert(fp);
        } else {
            self.lines.entry(fp).or_insert(0);
        }
    }
    /// Notes `id` as known from the next [`IdSet::settle`] on, while the set holds
    /// fewer than `cap` ids (so memory stays bounded however long the file): a sure
    /// answer for the ids it holds, none for the others.
    pub fn add_pending_upto(&mut self, id: &str, cap: usize) {
        if self.known_len() + self.pending.len() < cap {
            self.pending.push(fingerprint(&[id]));
        }
    }
    /// Makes the pending ids known (those not forgotten meanwhile).
    pub fn settle(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let forgotten = std::mem::take(&mut self.forgotten);
        if self.settled.is_empty() {
            self.settled = std::mem::take(&mut self.pending);
        } else {
            self.settled.append(&mut self.pending);
        }
        self.settled.sort_unstable();
        self.settled.dedup();
        if !forgotten.is_empty() {
            self.settled.retain(|fp| !forgotten.contains(fp));
        }
    }
    /// Removes `id`: it is no longer known to exist (a later check asks the cache).
    pub fn forget(&mut self, id: &str) {
        let fp = fingerprint(&[id]);
        self.stored.remove(&fp);
        self.accepted.remove(&fp);
        self.lines.remove(&fp);
        if let Ok(at) = self.settled.binary_search(&fp) {
            self.settled.remove(at);
        }
        if !self.pending.is_empty() {
            self.forgotten.insert(fp);
        }
    }
    pub fn contains(&self, id: &str) -> bool {
        let fp = fingerprint(&[id]);
        if self.compact {
            self.accepted.contains(&fp)
                || self.stored.contains(&fp)
                || sorted_contains(&self.settled, fp)
        } else {
            self.lines.contains_key(&fp)
        }
    }
    /// The fingerprint of a row's key; `Err(first line, when known)` when a row
    /// with that key was already accepted in this import.
    fn claim(&self, parts: &[&str], _line: usize) -> Result<u64, Option<usize>> {
        let fp = fingerprint(parts);
        if self.compact {
            return if self.accepted.contains(&fp) {
                Err(None)
            } else {
                Ok(fp)
            };
        }
        match self.lines.get(&fp) {
            Some(&first) if first > 0 => Err(Some(first as usize)),
            _ => Ok(fp),
        }
    }
    /// [`IdSet::claim`] and [`IdSet::accept`] in one: takes the key for `line`
    /// unless this import already accepted it (one probe of the set, not two).
    fn claim_new(&mut self, parts: &[&str], line: usize) -> Result<(), Option<usize>> {
        if self.compact {
            return match self.accepted.insert(fingerprint(parts)) {
                true => Ok(()),
                false => Err(None),
            };
        }
        let fp = self.claim(parts, line)?;
        self.accept(fp, line, true);
        Ok(())
    }

    fn accept(&mut self, fp: u64, line: usize, _is_id: bool) {
        if self.compact {
            self.accepted.insert(fp);
        } else {
            self.lines
                .insert(fp, line.clamp(1, u32::MAX as usize) as u32);
        }
    }
    pub fn known_len(&self) -> usize {
        self.lines.len() + self.stored.len() + self.accepted.len() + self.settled.len()
    }
}

fn dup(field: &str, key: &str, first: Option<usize>) -> Bad {
    let at = match first {
        Some(line) => format!("first given on line {line}"),
        None => "given earlier in this file".to_string(),
    };
    bad(field, format!("duplicate {field} {key:?} ({at})"))
}

fn lookup_failed(e: crate::store::StoreError) -> Bad {
    (
        None,
        format!("cannot check the ids it names in the cache: {e}"),
    )
}

/// Why the store refused a row, as a rejection names it.
pub fn refused(problem: crate::store::bulk::RowProblem) -> Bad {
    use crate::store::bulk::RowProblem;
    match problem {
        RowProblem::Duplicate { field, id, first } => dup(field, &id, first),
        RowProblem::Unknown { field, what, id } => unknown(field, what, &id),
    }
}

fn unknown(field: &str, what: &str, id: &str) -> Bad {
    bad(field, format!("unknown {what} {id:?}"))
}

/// How many ids of this import's registrations (and, apart, of its transactions)
/// the parsing thread remembers, as sorted 64-bit fingerprints (about 7 MiB each),
/// so that the lines naming them need no lookup in the cache; past it, and for ids
/// stored by earlier imports, the cache is asked.
pub const KNOWN_REFERENCES_CAP: usize = (1 << 20) / 8 * 7;

/// Takes the id of a row accepted on line `no`. Checked here (a repeat is refused
/// with the line it was first given on) or, with `store_checks`, by the store: then
/// remembered, up to [`KNOWN_REFERENCES_CAP`], for the lines of later files that
/// name it (a repeated id is refused by the store, but its first row is stored).
fn take_id(
    set: &mut IdSet,
    store_checks: bool,
    field: &str,
    id: &str,
    no: usize,
) -> Result<(), Bad> {
    if store_checks {
        set.add_pending_upto(id, KNOWN_REFERENCES_CAP);
        Ok(())
    } else {
        set.claim_new(&[id], no).map_err(|f| dup(field, id, f))
    }
}

/// The bulk entities a line may name.
#[derive(Clone, Copy)]
enum Bulk {
    Registrations,
    Transactions,
}

/// Validates rows file by file, remembering which ids exist.
pub struct Validator {
    pub tiers: IdSet,
    pub products: IdSet,
    pub discount_policy: IdSet,
    pub partners: IdSet,
    /// Every `partner_id` in partners.jsonl (so a reseller may name a distributor
    /// that comes later in the file).
    pub partner_ids_in_file: IdSet,
    pub tier_history: IdSet,
    pub quotas: IdSet,
    pub erp_invoices: IdSet,
    pub registrations: IdSet,
    pub transactions: IdSet,
    pub commissions: IdSet,
    /// Set a refund whose sale is not known yet aside instead of rejecting it.
    pub defer_refunds: bool,
    /// Leave the checks that need every registration, transaction and commission id
    /// (duplicates, and references to them) to the store (`BulkMode::checks`): the
    /// import into a cache keeps at most `KNOWN_REFERENCES_CAP` of each, so its
    /// memory stays flat.
    pub store_checks: bool,
    /// With `store_checks`: a connection on which the references to rows of earlier
    /// files (registrations, transactions) are checked on the parsing thread.
    pub stored: Option<crate::store::dataset::Reader>,
    /// The program's currency (from program.json, or the cache's program): a
    /// transaction in another currency is rejected.
    pub program_currency: Option<String>,
    deferred: bool,
}

impl Default for Validator {
    fn default() -> Validator {
        Validator {
            tiers: IdSet::default(),
            products: IdSet::default(),
            discount_policy: IdSet::default(),
            partners: IdSet::default(),
            partner_ids_in_file: IdSet::default(),
            tier_history: IdSet::default(),
            quotas: IdSet::default(),
            erp_invoices: IdSet::default(),
            registrations: IdSet::compact(),
            transactions: IdSet::compact(),
            commissions: IdSet::compact(),
            defer_refunds: false,
            store_checks: false,
            stored: None,
            program_currency: None,
            deferred: false,
        }
    }
}

// ---- program.json and plan.json ----

#[derive(Deserialize)]
struct RawWindow {
    start: String,
    end: String,
}

#[derive(Deserialize)]
struct RawProgram {
    program_id: String,
    name: String,
    currency: String,
    fiscal_year_start_month: i64,
    as_of: String,
    review_window: RawWindow,
}

const PROGRAM_SPEC: &[(&str, Ty)] = &[
    ("program_id", Ty::Str),
    ("name", Ty::Str),
    ("currency", Ty::Str),
    ("fiscal_year_start_month", Ty::Int),
    ("as_of", Ty::Date),
    ("review_window", Ty::OptObject),
];

pub fn program(text: &str) -> Result<Program, Bad> {
    let mut r: RawProgram = parse_typed(text, PROGRAM_SPEC)?;
    nonempty("program_id", &r.program_id)?;
    norm_string("program_id", &mut r.program_id)?;
    if !(1..=12).contains(&r.fiscal_year_start_month) {
        return Err(bad(
            "fiscal_year_start_month",
            format!("must be 1..=12, found {}", r.fiscal_year_start_month),
        ));
    }
    let start = date("review_window.start", &r.review_window.start)?;
    let end = date("review_window.end", &r.review_window.end)?;
    if end < start {
        return Err(bad("review_window", "end is before start"));
    }
    Ok(Program {
        program_id: r.program_id,
        name: r.name,
        currency: r.currency,
        fiscal_year_start_month: r.fiscal_year_start_month as u32,
        as_of: date("as_of", &r.as_of)?,
        review_window: ReviewWindow { start, end },
    })
}

/// The first JSON float anywhere in `v` (money and rates must be decimal strings).
fn find_float(v: &Value, path: &str) -> Option<(String, String)> {
    match v {
        Value::Number(n) if n.is_f64() => Some((path.to_string(), n.to_string())),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .find_map(|(i, x)| find_float(x, &format!("{path}[{i}]"))),
        Value::Object(o) => o.iter().find_map(|(k, x)| {
            let p = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            find_float(x, &p)
        }),
        _ => None,
    }
}

pub fn plan(text: &str) -> Result<Plan, Bad> {
    let v: Value = serde_json::from_str(text).map_err(|e| {
        if e.is_eof() {
            (None, format!("incomplete JSON (the file ends early): {e}"))
        } else {
            (None, format!("not valid JSON: {e}"))
        }
    })?;
    if let Some((path, n)) = find_float(&v, "") {
        return Err(bad(
            &path,
            format!(
                "expected a decimal string, found the float number {n} (rates and money must be strings)"
            ),
        ));
    }
    for req in ["plan_id", "currency", "seller_rates"] {
        if v.get(req).is_none() {
            return Err(bad(req, "missing required field"));
        }
    }
    serde_json::from_value(v).map_err(|e| (None, e.to_string()))
}

// ---- the .jsonl files ----

#[derive(Deserialize)]
struct RawTier {
    tier_id: String,
    name: String,
    rank: i64,
}
const TIER_SPEC: &[(&str, Ty)] = &[("tier_id", Ty::Str), ("name", Ty::Str), ("rank", Ty::Int)];

#[derive(Deserialize)]
struct RawProduct {
    sku: String,
    name: String,
    family: String,
    list_price: String,
    #[serde(default)]
    certification_required: Option<String>,
    active: bool,
}
const PRODUCT_SPEC: &[(&str, Ty)] = &[
    ("sku", Ty::Str),
    ("name", Ty::Str),
    ("family", Ty::Str),
    ("list_price", Ty::Money),
    ("certification_required", Ty::OptStr),
    ("active", Ty::Bool),
];

#[derive(Deserialize)]
struct RawPolicy {
    tier_id: String,
    family: String,
    max_discount_pct: String,
}
const POLICY_SPEC: &[(&str, Ty)] = &[
    ("tier_id", Ty::Str),
    ("family", Ty::Str),
    ("max_discount_pct", Ty::Money),
];

#[derive(Deserialize)]
struct RawPartner {
    partner_id: String,
    name: String,
    kind: String,
    #[serde(default)]
    parent_partner_id: Option<String>,
    region: String,
    #[serde(default)]
    country: Option<String>,
    joined_on: String,
    certifications: Vec<String>,
    #[serde(default)]
    tax_id: Option<String>,
    #[serde(default)]
    bank_account: Option<BankAccount>,
}
const PARTNER_SPEC: &[(&str, Ty)] = &[
    ("partner_id", Ty::Str),
    ("name", Ty::Str),
    ("kind", Ty::Str),
    ("parent_partner_id", Ty::OptStr),
    ("region", Ty::Str),
    ("country", Ty::OptStr),
    ("joined_on", Ty::Date),
    ("certifications", Ty::StrList),
    ("tax_id", Ty::OptStr),
    ("bank_account", Ty::OptObject),
];

#[derive(Deserialize)]
struct RawTierHistory {
    partner_id: String,
    tier_id: String,
    effective_from: String,
}
const TIER_HISTORY_SPEC: &[(&str, Ty)] = &[
    ("partner_id", Ty::Str),
    ("tier_id", Ty::Str),
    ("effective_from", Ty::Date),
];

#[derive(Deserialize)]
struct RawQuota {
    partner_id: String,
    period: String,
    quota: String,
}
const QUOTA_SPEC: &[(&str, Ty)] = &[
    ("partner_id", Ty::Str),
    ("period", Ty::Str),
    ("quota", Ty::Money),
];

#[derive(Deserialize)]
struct RawErpInvoice {
    invoice_number: String,
    customer_name: String,
    partner_id: String,
    invoice_date: String,
    currency: String,
    lines: Vec<Value>,
}
const ERP_INVOICE_SPEC: &[(&str, Ty)] = &[
    ("invoice_number", Ty::Str),
    ("customer_name", Ty::Str),
    ("partner_id", Ty::Str),
    ("invoice_date", Ty::Date),
    ("currency", Ty::Str),
    ("lines", Ty::Array),
];

#[derive(Deserialize)]
struct RawRegistration {
    registration_id: String,
    partner_id: String,
    customer_name: String,
    expected_amount: String,
    registered_on: String,
    expires_on: String,
    status: String,
}
const REGISTRATION_SPEC: &[(&str, Ty)] = &[
    ("registration_id", Ty::Str),
    ("partner_id", Ty::Str),
    ("customer_name", Ty::Str),
    ("expected_amount", Ty::Money),
    ("registered_on", Ty::Date),
    ("expires_on", Ty::Date),
    ("status", Ty::Str),
];

#[derive(Deserialize, Default)]
struct RawTransaction<'a> {
    #[serde(borrow)]
    transaction_id: Cow<'a, str>,
    #[serde(borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    original_transaction_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    partner_id: Cow<'a, str>,
    #[serde(borrow, default)]
    registration_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    customer_name: Cow<'a, str>,
    #[serde(borrow)]
    sku: Cow<'a, str>,
    quantity: i64,
    #[serde(borrow)]
    unit_list_price: Cow<'a, str>,
    #[serde(borrow)]
    unit_net_price: Cow<'a, str>,
    #[serde(borrow)]
    amount: Cow<'a, str>,
    #[serde(borrow)]
    currency: Cow<'a, str>,
    #[serde(borrow)]
    closed_on: Cow<'a, str>,
    #[serde(borrow)]
    submitted_at: Cow<'a, str>,
    #[serde(borrow)]
    invoice_number: Cow<'a, str>,
    #[serde(borrow, default)]
    notes: Option<Cow<'a, str>>,
}
const TRANSACTION_SPEC: &[(&str, Ty)] = &[
    ("transaction_id", Ty::Str),
    ("kind", Ty::Str),
    ("original_transaction_id", Ty::OptStr),
    ("partner_id", Ty::Str),
    ("registration_id", Ty::OptStr),
    ("customer_name", Ty::Str),
    ("sku", Ty::Str),
    ("quantity", Ty::Int),
    ("unit_list_price", Ty::Money),
    ("unit_net_price", Ty::Money),
    ("amount", Ty::Money),
    ("currency", Ty::Str),
    ("closed_on", Ty::Date),
    ("submitted_at", Ty::Timestamp),
    ("invoice_number", Ty::Str),
    ("notes", Ty::OptStr),
];

#[derive(Deserialize, Default)]
struct RawCommission<'a> {
    #[serde(borrow)]
    commission_id: Cow<'a, str>,
    #[serde(borrow)]
    transaction_id: Cow<'a, str>,
    #[serde(borrow)]
    payee_partner_id: Cow<'a, str>,
    #[serde(borrow)]
    role: Cow<'a, str>,
    #[serde(borrow)]
    amount: Cow<'a, str>,
    #[serde(borrow)]
    period: Cow<'a, str>,
}
const COMMISSION_SPEC: &[(&str, Ty)] = &[
    ("commission_id", Ty::Str),
    ("transaction_id", Ty::Str),
    ("payee_partner_id", Ty::Str),
    ("role", Ty::Str),
    ("amount", Ty::Money),
    ("period", Ty::Str),
];

/// Reads a line into a raw row: the fast reader, where `set(row, index, value)`
/// stores the field at `index` of `spec` (false: wrong type); serde_json when the
/// line is not the simple shape, a field repeats, or a required one is missing or
/// has the wrong type (it reads the line, or explains what is wrong with it).
fn read_row<'a, R: Default + Deserialize<'a>>(
    line: &'a str,
    spec: &[(&str, Ty)],
    set: fn(&mut R, usize, Val<'a>) -> bool,
) -> Result<R, Bad> {
    let mut row = R::default();
    let mut seen: u64 = 0;
    let ok = flat::scan(line, |key, val| {
        let Some(k) = spec.iter().position(|(name, _)| *name == key) else {
            return true; // unknown fields are ignored, as serde does
        };
        if seen & (1 << k) != 0 {
            return false;
        }
        seen |= 1 << k;
        set(&mut row, k, val)
    });
    let required = spec
        .iter()
        .enumerate()
        .filter(|(_, (_, ty))| !matches!(ty, Ty::OptStr | Ty::OptObject))
        .fold(0u64, |m, (k, _)| m | 1 << k);
    if ok && seen & required == required {
        Ok(row)
    } else {
        parse_typed(line, spec)
    }
}

fn put<'a>(slot: &mut Cow<'a, str>, v: Val<'a>) -> bool {
    match v {
        Val::Str(s) => {
            *slot = Cow::Borrowed(s);
            true
        }
        _ => false,
    }
}

fn put_opt<'a>(slot: &mut Option<Cow<'a, str>>, v: Val<'a>) -> bool {
    match v {
        Val::Str(s) => {
            *slot = Some(Cow::Borrowed(s));
            true
        }
        Val::Null => {
            *slot = None;
            true
        }
        _ => false,
    }
}

/// A transaction line's fields (see [`read_row`]).
fn raw_transaction(line: &str) -> Result<RawTransaction<'_>, Bad> {
    fn set<'a>(r: &mut RawTransaction<'a>, k: usize, v: Val<'a>) -> bool {
        match k {
            0 => put(&mut r.transaction_id, v),
            1 => put(&mut r.kind, v),
            2 => put_opt(&mut r.original_transaction_id, v),
            3 => put(&mut r.partner_id, v),
            4 => put_opt(&mut r.registration_id, v),
            5 => put(&mut r.customer_name, v),
            6 => put(&mut r.sku, v),
            7 => match v {
                Val::Int(n) => {
                    r.quantity = n;
                    true
                }
                _ => false,
            },
            8 => put(&mut r.unit_list_price, v),
            9 => put(&mut r.unit_net_price, v),
            10 => put(&mut r.amount, v),
            11 => put(&mut r.currency, v),
            12 => put(&mut r.closed_on, v),
            13 => put(&mut r.submitted_at, v),
            14 => put(&mut r.invoice_number, v),
            15 => put_opt(&mut r.notes, v),
            _ => false,
        }
    }
    let mut r: RawTransaction<'_> = read_row(line, TRANSACTION_SPEC, set)?;
    norm_id("transaction_id", &mut r.transaction_id)?;
    norm_opt_id("original_transaction_id", &mut r.original_transaction_id)?;
    norm_id("partner_id", &mut r.partner_id)?;
    norm_opt_id("registration_id", &mut r.registration_id)?;
    norm_id("sku", &mut r.sku)?;
    Ok(r)
}

/// A commission line's fields (see [`raw_transaction`]).
fn raw_commission(line: &str) -> Result<RawCommission<'_>, Bad> {
    fn set<'a>(r: &mut RawCommission<'a>, k: usize, v: Val<'a>) -> bool {
        match k {
            0 => put(&mut r.commission_id, v),
            1 => put(&mut r.transaction_id, v),
            2 => put(&mut r.payee_partner_id, v),
            3 => put(&mut r.role, v),
            4 => put(&mut r.amount, v),
            5 => put(&mut r.period, v),
            _ => false,
        }
    }
    let mut r: RawCommission<'_> = read_row(line, COMMISSION_SPEC, set)?;
    norm_id("commission_id", &mut r.commission_id)?;
    norm_id("transaction_id", &mut r.transaction_id)?;
    norm_id("payee_partner_id", &mut r.payee_partner_id)?;
    Ok(r)
}

/// A transaction's checked values and the texts the store writes for them.
struct CheckedTx<'r> {
    kind: TransactionKind,
    unit_list_price: (Decimal, Cow<'r, str>),
    unit_net_price: (Decimal, Cow<'r, str>),
    amount: (Decimal, Cow<'r, str>),
    closed_on: (NaiveDate, Cow<'r, str>),
    submitted_at: (DateTime<Utc>, Cow<'r, str>),
}

/// The transaction a checked line holds.
fn owned_transaction(r: &RawTransaction<'_>, c: &CheckedTx<'_>) -> Transaction {
    let owned = |s: &Cow<'_, str>| s.to_string();
    Transaction {
        transaction_id: owned(&r.transaction_id),
        kind: c.kind,
        original_transaction_id: r.original_transaction_id.as_ref().map(owned),
        partner_id: owned(&r.partner_id),
        registration_id: r.registration_id.as_ref().map(owned),
        customer_name: owned(&r.customer_name),
        sku: owned(&r.sku),
        quantity: r.quantity,
        unit_list_price: c.unit_list_price.0,
        unit_net_price: c.unit_net_price.0,
        amount: c.amount.0,
        currency: owned(&r.currency),
        closed_on: c.closed_on.0,
        submitted_at: c.submitted_at.0,
        invoice_number: owned(&r.invoice_number),
        notes: r.notes.as_ref().map(owned),
    }
}

/// A commission line's checked role and amount (with its stored text).
struct CheckedComm<'r> {
    role: CommissionRole,
    amount: (Decimal, Cow<'r, str>),
}

fn period(field: &str, s: &str) -> Result<(), Bad> {
    parse_quarter(s)
        .map(|_| ())
        .ok_or_else(|| bad(field, format!("not a fiscal quarter YYYY-Qn: {s:?}")))
}

#[derive(Deserialize)]
struct JustPartnerId {
    partner_id: String,
}

impl Validator {
    /// Notes the `partner_id` of one partners.jsonl line, if it has one (pre-pass).
    pub fn note_partner_id(&mut self, line: &str) {
        if let Ok(mut r) = serde_json::from_str::<JustPartnerId>(line) {
            if norm_string("partner_id", &mut r.partner_id).is_err() {
                return;
            }
            self.partner_ids_in_file.add_known(&r.partner_id);
        }
    }

    pub fn tier(&mut self, line: &str, no: usize) -> Result<Tier, Bad> {
        let mut r: RawTier = parse_typed(line, TIER_SPEC)?;
        nonempty("tier_id", &r.tier_id)?;
        norm_string("tier_id", &mut r.tier_id)?;
        let fp = self
            .tiers
            .claim(&[&r.tier_id], no)
            .map_err(|f| dup("tier_id", &r.tier_id, f))?;
        self.tiers.accept(fp, no, true);
        Ok(Tier {
            tier_id: r.tier_id,
            name: r.name,
            rank: r.rank,
        })
    }

    pub fn product(&mut self, line: &str, no: usize) -> Result<Product, Bad> {
        let mut r: RawProduct = parse_typed(line, PRODUCT_SPEC)?;
        nonempty("sku", &r.sku)?;
        norm_string("sku", &mut r.sku)?;
        let list_price = money("list_price", &r.list_price)?;
        let fp = self
            .products
            .claim(&[&r.sku], no)
            .map_err(|f| dup("sku", &r.sku, f))?;
        self.products.accept(fp, no, true);
        Ok(Product {
            sku: r.sku,
            name: r.name,
            family: r.family,
            list_price,
            certification_required: r.certification_required,
            active: r.active,
        })
    }

    pub fn discount_policy(&mut self, line: &str, no: usize) -> Result<DiscountPolicy, Bad> {
        let mut r: RawPolicy = parse_typed(line, POLICY_SPEC)?;
        norm_string("tier_id", &mut r.tier_id)?;
        let pct = money("max_discount_pct", &r.max_discount_pct)?;
        if !self.tiers.contains(&r.tier_id) {
            return Err(unknown("tier_id", "tier", &r.tier_id));
        }
        let fp = self
            .discount_policy
            .claim(&[&r.tier_id, &r.family], no)
            .map_err(|f| dup("family", &format!("{}/{}", r.tier_id, r.family), f))?;
        self.discount_policy.accept(fp, no, false);
        Ok(DiscountPolicy {
            tier_id: r.tier_id,
            family: r.family,
            max_discount_pct: pct,
        })
    }

    pub fn partner(&mut self, line: &str, no: usize) -> Result<Partner, Bad> {
        let mut r: RawPartner =
            parse_typed(line, PARTNER_SPEC).map_err(|(field, msg)| (field, mask_values(&msg)))?;
        nonempty("partner_id", &r.partner_id)?;
        norm_string("partner_id", &mut r.partner_id)?;
        if let Some(p) = &mut r.parent_partner_id {
            norm_string("parent_partner_id", p)?;
        }
        let kind = match r.kind.as_str() {
            "distributor" => PartnerKind::Distributor,
            "reseller" => PartnerKind::Reseller,
            other => {
                return Err(bad(
                    "kind",
                    format!("expected \"distributor\" or \"reseller\", found {other:?}"),
                ))
            }
        };
        let joined_on = date("joined_on", &r.joined_on)?;
        if let Some(p) = &r.parent_partner_id {
            if !self.partners.contains(p) && !self.partner_ids_in_file.contains(p) {
                return Err(unknown("parent_partner_id", "partner", p));
            }
        }
        let fp = self
            .partners
            .claim(&[&r.partner_id], no)
            .map_err(|f| dup("partner_id", &r.partner_id, f))?;
        self.partners.accept(fp, no, true);
        Ok(Partner {
            partner_id: r.partner_id,
            name: r.name,
            kind,
            parent_partner_id: r.parent_partner_id,
            region: r.region,
            country: r.country,
            joined_on,
            certifications: r.certifications,
            tax_id: r.tax_id,
            bank_account: r.bank_account,
        })
    }

    pub fn tier_history(&mut self, line: &str, no: usize) -> Result<TierHistory, Bad> {
        let mut r: RawTierHistory = parse_typed(line, TIER_HISTORY_SPEC)?;
        norm_string("partner_id", &mut r.partner_id)?;
        norm_string("tier_id", &mut r.tier_id)?;
        let from = date("effective_from", &r.effective_from)?;
        if !self.partners.contains(&r.partner_id) {
            return Err(unknown("partner_id", "partner", &r.partner_id));
        }
        if !self.tiers.contains(&r.tier_id) {
            return Err(unknown("tier_id", "tier", &r.tier_id));
        }
        let fp = self
            .tier_history
            .claim(&[&r.partner_id, &r.effective_from], no)
            .map_err(|f| {
                dup(
                    "effective_from",
                    &format!("{} from {}", r.partner_id, r.effective_from),
                    f,
                )
            })?;
        self.tier_history.accept(fp, no, false);
        Ok(TierHistory {
            partner_id: r.partner_id,
            tier_id: r.tier_id,
            effective_from: from,
        })
    }

    pub fn quota(&mut self, line: &str, no: usize) -> Result<Quota, Bad> {
        let mut r: RawQuota = parse_typed(line, QUOTA_SPEC)?;
        norm_string("partner_id", &mut r.partner_id)?;
        period("period", &r.period)?;
        let quota = money("quota", &r.quota)?;
        if !self.partners.contains(&r.partner_id) {
            return Err(unknown("partner_id", "partner", &r.partner_id));
        }
        let fp = self
            .quotas
            .claim(&[&r.partner_id, &r.period], no)
            .map_err(|f| dup("period", &format!("{} {}", r.partner_id, r.period), f))?;
        self.quotas.accept(fp, no, false);
        Ok(Quota {
            partner_id: r.partner_id,
            period: r.period,
            quota,
        })
    }

    /// One line of erp_invoices.jsonl: what the vendor's ERP billed. The partner is
    /// not checked against partners.jsonl (an ERP bills direct customers too, and a
    /// sale naming another partner's invoice is what the ERP check is for).
    pub fn erp_invoice(&mut self, line: &str, no: usize) -> Result<ErpInvoice, Bad> {
        let mut r: RawErpInvoice = parse_typed(line, ERP_INVOICE_SPEC)?;
        nonempty("invoice_number", &r.invoice_number)?;
        norm_string("invoice_number", &mut r.invoice_number)?;
        norm_string("partner_id", &mut r.partner_id)?;
        let invoice_date = date("invoice_date", &r.invoice_date)?;
        let currency = r.currency.trim().to_ascii_uppercase();
        if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(bad(
                "currency",
                format!("{:?} is not a three-letter ISO 4217 code", r.currency),
            ));
        }
        if r.lines.is_empty() {
            return Err(bad("lines", "an invoice needs at least one line"));
        }
        let mut lines = Vec::with_capacity(r.lines.len());
        for (i, l) in r.lines.iter().enumerate() {
            let field = |f: &str| format!("lines[{i}].{f}");
            let Some(o) = l.as_object() else {
                return Err(bad(
                    &format!("lines[{i}]"),
                    format!("expected an object, found {}", describe(l)),
                ));
            };
            let sku = match o.get("sku") {
                Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
                Some(v) => {
                    return Err(bad(
                        &field("sku"),
                        format!("expected a non-empty string, found {}", describe(v)),
                    ))
                }
                None => return Err(bad(&field("sku"), "missing required field")),
            };
            let quantity = match o.get("quantity") {
                Some(v) if v.is_i64() => v.as_i64().unwrap_or_default(),
                Some(v) => {
                    return Err(bad(
                        &field("quantity"),
                        format!("expected a whole number, found {}", describe(v)),
                    ))
                }
                None => return Err(bad(&field("quantity"), "missing required field")),
            };
            let amount = match o.get("amount") {
                Some(v @ Value::String(_)) => {
                    type_ok(Ty::Money, v).map_err(|m| bad(&field("amount"), m))?;
                    money(&field("amount"), v.as_str().unwrap_or_default())?
                }
                Some(v) => {
                    let msg = type_ok(Ty::Money, v).err().unwrap_or_default();
                    return Err(bad(&field("amount"), msg));
                }
                None => return Err(bad(&field("amount"), "missing required field")),
            };
            lines.push(ErpLine {
                sku,
                quantity,
                amount,
            });
        }
        let fp = self
            .erp_invoices
            .claim(&[&r.invoice_number], no)
            .map_err(|f| dup("invoice_number", &r.invoice_number, f))?;
        self.erp_invoices.accept(fp, no, false);
        Ok(ErpInvoice {
            invoice_number: r.invoice_number,
            customer_name: r.customer_name.trim().to_string(),
            partner_id: r.partner_id,
            invoice_date,
            currency,
            lines,
        })
    }

    pub fn registration(&mut self, line: &str, no: usize) -> Result<Registration, Bad> {
        self.registration_prepared(line, no).map(|p| p.row)
    }

    /// A registration with the text forms the store writes.
    pub fn registration_prepared(
        &mut self,
        line: &str,
        no: usize,
    ) -> Result<PreparedRegistration, Bad> {
        let mut r: RawRegistration = parse_typed(line, REGISTRATION_SPEC)?;
        nonempty("registration_id", &r.registration_id)?;
        norm_string("registration_id", &mut r.registration_id)?;
        norm_string("partner_id", &mut r.partner_id)?;
        let (expected_amount, amount_text) = money_text("expected_amount", r.expected_amount)?;
        let registered_on = date("registered_on", &r.registered_on)?;
        let expires_on = date("expires_on", &r.expires_on)?;
        let status = match r.status.as_str() {
            "approved" => RegistrationStatus::Approved,
            "rejected" => RegistrationStatus::Rejected,
            "expired" => RegistrationStatus::Expired,
            other => {
                return Err(bad(
                    "status",
                    format!("expected approved, rejected or expired, found {other:?}"),
                ))
            }
        };
        if !self.partners.contains(&r.partner_id) {
            return Err(unknown("partner_id", "partner", &r.partner_id));
        }
        take_id(
            &mut self.registrations,
            self.store_checks,
            "registration_id",
            &r.registration_id,
            no,
        )?;
        Ok(PreparedRegistration::from_parts(
            Registration {
                registration_id: r.registration_id,
                partner_id: r.partner_id,
                customer_name: r.customer_name,
                expected_amount,
                registered_on,
                expires_on,
                status,
            },
            amount_text,
            date_text(r.registered_on, registered_on),
            date_text(r.expires_on, expires_on),
        ))
    }

    pub fn transaction(&mut self, line: &str, no: usize) -> Result<Transaction, Bad> {
        let r = raw_transaction(line)?;
        let c = self.check_transaction(&r, no)?;
        Ok(owned_transaction(&r, &c))
    }

    /// A transaction with the text forms the store writes and its row hash.
    pub fn transaction_prepared(
        &mut self,
        line: &str,
        no: usize,
    ) -> Result<PreparedTransaction, Bad> {
        let r = raw_transaction(line)?;
        let c = self.check_transaction(&r, no)?;
        let [ulp, unp, amount, closed, submitted] = [
            &c.unit_list_price.1,
            &c.unit_net_price.1,
            &c.amount.1,
            &c.closed_on.1,
            &c.submitted_at.1,
        ]
        .map(|t| t.to_string());
        Ok(PreparedTransaction::from_parts(
            owned_transaction(&r, &c),
            ulp,
            unp,
            amount,
            closed,
            submitted,
        ))
    }

    /// Checks a transaction line and appends it, in the form the store writes, to
    /// `out` (nothing is appended when it is rejected).
    ///
    /// A refund whose sale is not known yet is, while [`Validator::defer_refunds`]
    /// is set, not rejected but set aside ([`Validator::take_deferred`] says so): the
    /// reader tries it again once the whole file has been read.
    pub fn transaction_into(
        &mut self,
        line: &str,
        no: usize,
        out: &mut TxBatch,
    ) -> Result<(), Bad> {
        let r = raw_transaction(line)?;
        let c = self.check_transaction(&r, no)?;
        out.push(&TxRow {
            transaction_id: &r.transaction_id,
            kind: c.kind,
            original_transaction_id: r.original_transaction_id.as_deref(),
            partner_id: &r.partner_id,
            registration_id: r.registration_id.as_deref(),
            customer_name: &r.customer_name,
            sku: &r.sku,
            quantity: r.quantity,
            unit_list_price: &c.unit_list_price.1,
            unit_net_price: &c.unit_net_price.1,
            amount: &c.amount.1,
            amount_minor: crate::money::to_minor(c.amount.0),
            currency: &r.currency,
            closed_on: &c.closed_on.1,
            submitted_at: &c.submitted_at.1,
            invoice_number: &r.invoice_number,
            notes: r.notes.as_deref(),
        });
        Ok(())
    }

    /// Checks a transaction's fields in order (the first problem is the one named)
    /// and, when it is good, records its id as taken.
    fn check_transaction<'r>(
        &mut self,
        r: &'r RawTransaction<'_>,
        no: usize,
    ) -> Result<CheckedTx<'r>, Bad> {
        nonempty("transaction_id", &r.transaction_id)?;
        let kind = match &*r.kind {
            "sale" => TransactionKind::Sale,
            "refund" => TransactionKind::Refund,
            other => {
                return Err(bad(
                    "kind",
                    format!("expected \"sale\" or \"refund\", found {other:?}"),
                ))
            }
        };
        let unit_list_price = money_cow("unit_list_price", &r.unit_list_price)?;
        let unit_net_price = money_cow("unit_net_price", &r.unit_net_price)?;
        let amount = money_cow("amount", &r.amount)?;
        let closed_on = date("closed_on", &r.closed_on)?;
        let submitted_at = timestamp("submitted_at", &r.submitted_at)?;
        super::integrity::check_amounts(
            &super::integrity::Amounts {
                kind,
                quantity: r.quantity,
                unit_list_price: unit_list_price.0,
                unit_net_price: unit_net_price.0,
                amount: amount.0,
                currency: &r.currency,
            },
            self.program_currency.as_deref(),
        )
        .map_err(from_issue)?;
        if !self.partners.contains(&r.partner_id) {
            return Err(unknown("partner_id", "partner", &r.partner_id));
        }
        if !self.products.contains(&r.sku) {
            return Err(unknown("sku", "product", &r.sku));
        }
        if let Some(reg) = &r.registration_id {
            if !self.known(Bulk::Registrations, reg)? {
                return Err(unknown("registration_id", "registration", reg));
            }
        }
        if !self.store_checks {
            if let Some(orig) = &r.original_transaction_id {
                if !self.transactions.contains(orig) {
                    if self.defer_refunds {
                        self.deferred = true;
                        return Err((None, format!("deferred: sale {orig:?} not read yet")));
                    }
                    return Err(unknown("original_transaction_id", "transaction", orig));
                }
            }
        }
        // With store checks the id is known once written, unless the store refuses
        // the row for a reason other than a repeated id (the import then calls
        // `forget_transaction`).
        take_id(
            &mut self.transactions,
            self.store_checks,
            "transaction_id",
            &r.transaction_id,
            no,
        )?;
        // Timestamps in the form the store writes (UTC, `Z`, whole seconds) are kept as given.
        let submitted_text = if canonical_timestamp(&r.submitted_at).is_some() {
            Cow::Borrowed(&*r.submitted_at)
        } else {
            Cow::Owned(crate::store::dataset::format_timestamp(&submitted_at))
        };
        Ok(CheckedTx {
            kind,
            unit_list_price,
            unit_net_price,
            amount,
            closed_on: (closed_on, date_cow(&r.closed_on, closed_on)),
            submitted_at: (submitted_at, submitted_text),
        })
    }

    /// Whether a registration or transaction that a line names exists: in this
    /// import's set of ids, or — with `store_checks` — in the cache through
    /// `stored` (without a reader, the store checks it when writing: true here).
    fn known(&mut self, what: Bulk, id: &str) -> Result<bool, Bad> {
        let (set, table) = match what {
            Bulk::Registrations => (&self.registrations, "registrations"),
            Bulk::Transactions => (&self.transactions, "transactions"),
        };
        match (self.store_checks, &mut self.stored) {
            (false, _) => Ok(set.contains(id)),
            (true, Some(_)) if set.contains(id) => Ok(true),
            (true, Some(stored)) => stored.exists(table, id).map_err(lookup_failed),
            (true, None) => Ok(true),
        }
    }

    /// Takes back what [`Validator::transaction_into`] remembered of the transaction
    /// on `line` when the store refused to write it (a refund whose sale is nowhere):
    /// a commission line naming it is then checked against the cache.
    pub fn forget_transaction(&mut self, line: &str) {
        if let Ok(r) = raw_transaction(line) {
            self.transactions.forget(&r.transaction_id);
        }
    }

    /// Forgets the ids of registrations (once no file left names them).
    pub fn forget_registrations(&mut self) {
        self.registrations = IdSet::compact();
    }

    /// Makes the ids of the rows accepted in the file just written known (see
    /// [`IdSet::add_pending_upto`]); called before each file.
    pub fn settle(&mut self) {
        self.registrations.settle();
        self.transactions.settle();
    }

    /// Whether the last call set a row aside instead of accepting or rejecting it
    /// (and clears that).
    pub fn take_deferred(&mut self) -> bool {
        std::mem::take(&mut self.deferred)
    }

    pub fn commission(&mut self, line: &str, no: usize) -> Result<CommissionLine, Bad> {
        let r = raw_commission(line)?;
        let c = self.check_commission(&r, no)?;
        let (role, amount) = (c.role, c.amount.0);
        Ok(CommissionLine {
            commission_id: r.commission_id.into_owned(),
            transaction_id: r.transaction_id.into_owned(),
            payee_partner_id: r.payee_partner_id.into_owned(),
            role,
            amount,
            period: r.period.into_owned(),
        })
    }

    /// Checks a commission line and appends it, in the form the store writes, to
    /// `out` (nothing is appended when it is rejected).
    pub fn commission_into(
        &mut self,
        line: &str,
        no: usize,
        out: &mut CommBatch,
    ) -> Result<(), Bad> {
        let r = raw_commission(line)?;
        let c = self.check_commission(&r, no)?;
        out.push(&CommRow {
            commission_id: &r.commission_id,
            transaction_id: &r.transaction_id,
            payee_partner_id: &r.payee_partner_id,
            role: c.role,
            amount: &c.amount.1,
            period: &r.period,
        });
        Ok(())
    }

    fn check_commission<'r>(
        &mut self,
        r: &'r RawCommission<'_>,
        no: usize,
    ) -> Result<CheckedComm<'r>, Bad> {
        nonempty("commission_id", &r.commission_id)?;
        let role = match &*r.role {
            "seller" => CommissionRole::Seller,
            "override" => CommissionRole::Override,
            "spiff" => CommissionRole::Spiff,
            "clawback" => CommissionRole::Clawback,
            other => {
                return Err(bad(
                    "role",
                    format!("expected seller, override, spiff or clawback, found {other:?}"),
                ))
            }
        };
        let amount = money_cow("amount", &r.amount)?;
        period("period", &r.period)?;
        if !self.known(Bulk::Transactions, &r.transaction_id)? {
            return Err(unknown("transaction_id", "transaction", &r.transaction_id));
        }
        if !self.partners.contains(&r.payee_partner_id) {
            return Err(unknown("payee_partner_id", "partner", &r.payee_partner_id));
        }
        if !self.store_checks {
            self.commissions
                .claim_new(&[&r.commission_id], no)
                .map_err(|f| dup("commission_id", &r.commission_id, f))?;
        }
        Ok(CheckedComm { role, amount })
    }
}

/// [`date_text`] borrowing the input when it is already `YYYY-MM-DD`.
fn date_cow(given: &str, d: NaiveDate) -> Cow<'_, str> {
    if given.len() == 10 && canonical_date(given) == Some(d) {
        Cow::Borrowed(given)
    } else {
        Cow::Owned(d.to_string())
    }
}

/// A date's text as the store writes it: the input when already `YYYY-MM-DD`.
fn date_text(given: String, d: NaiveDate) -> String {
    rewritten(date_cow(&given, d)).unwrap_or(given)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TX: &str = r#"{"transaction_id":"T1","kind":"sale","original_transaction_id":null,"partner_id":"P1","registration_id":null,"customer_name":"Acme","sku":"S1","quantity":2,"unit_list_price":"10.0","unit_net_price":"9.5","amount":"19.0","currency":"USD","closed_on":"2024-10-01","submitted_at":"2024-10-01T08:31:40Z","invoice_number":"INV-1","notes":"x","extra_field":42}"#;

    fn v() -> Validator {
        let mut v = Validator::default();
        v.partners.add_known("P1");
        v.products.add_known("S1");
        v
    }

    #[test]
    fn good_row_with_unknown_extra_field() {
        let t = v().transaction(TX, 1).unwrap();
        assert_eq!(t.amount, Decimal::new(190, 1));
        assert_eq!(t.notes.as_deref(), Some("x"));
    }

    #[test]
    fn float_money_names_the_field() {
        let line = TX.replace("\"amount\":\"19.0\"", "\"amount\":19.0");
        let (field, msg) = v().transaction(&line, 1).unwrap_err();
        assert_eq!(field.as_deref(), Some("amount"));
        assert!(
            msg.contains("float") || msg.contains("decimal string"),
            "{msg}"
        );
    }

    #[test]
    fn missing_field_and_bad_json() {
        let line = TX.replace("\"sku\":\"S1\",", "");
        let (field, msg) = v().transaction(&line, 1).unwrap_err();
        assert_eq!(field.as_deref(), Some("sku"));
        assert_eq!(msg, "missing required field");
        let (field, msg) = v().transaction("{\"transaction_id\": ", 1).unwrap_err();
        assert_eq!(field, None);
        assert!(msg.contains("incomplete"), "{msg}");
        let (_, msg) = v().transaction("not json", 1).unwrap_err();
        assert!(msg.contains("not valid JSON"), "{msg}");
    }

    #[test]
    fn sorted_lookup_finds_exactly_the_members() {
        // Evenly spread (fingerprints), bunched (worst case for the guess), tiny.
        let spread: Vec<u64> = (0..5000u64)
            .map(|k| fingerprint(&[&k.to_string()]))
            .collect();
        let bunched: Vec<u64> = (0..5000u64).map(|k| k * 3 + (1 << 40)).collect();
        for (mut members, others) in [
            (spread[..2500].to_vec(), spread[2500..].to_vec()),
            (
                bunched.clone(),
                vec![0, 1, (1 << 40) + 1, u64::MAX, (1 << 40) + 3 * 5000],
            ),
            (vec![7], vec![0, 6, 8, u64::MAX]),
            (vec![0, u64::MAX], vec![1, u64::MAX - 1]),
        ] {
            members.sort_unstable();
            assert!(members.iter().all(|&m| sorted_contains(&members, m)));
            assert!(others.iter().all(|&o| !sorted_contains(&members, o)));
        }
        assert!(!sorted_contains(&[], 5));
    }

    #[test]
    fn remembered_ids_stop_at_the_cap_and_can_be_forgotten() {
        let mut set = IdSet::compact();
        for k in 0..10 {
            set.add_pending_upto(&format!("R{k}"), 4);
        }
        // Known once settled; one taken back before that never becomes known.
        assert!(!set.contains("R0"));
        set.forget("R3");
        set.settle();
        assert_eq!(set.known_len(), 3);
        assert!(set.contains("R0") && set.contains("R2"));
        assert!(!set.contains("R3") && !set.contains("R4") && !set.contains("R9"));
        set.forget("R2");
        assert!(!set.contains("R2") && set.contains("R1"));
        assert_eq!(set.known_len(), 2);
        // The cap counts what is known: room for two more.
        for k in 10..20 {
            set.add_pending_upto(&format!("R{k}"), 4);
        }
        set.settle();
        assert_eq!(set.known_len(), 4);
        assert!(set.contains("R11") && !set.contains("R12"));
    }

    #[test]
    fn unknown_reference_and_duplicate() {
        let mut val = v();
        let line = TX.replace("\"partner_id\":\"P1\"", "\"partner_id\":\"P9\"");
        let (field, msg) = val.transaction(&line, 1).unwrap_err();
        assert_eq!(field.as_deref(), Some("partner_id"));
        assert!(msg.contains("P9"));
        val.transaction(TX, 2).unwrap();
        let (field, msg) = val.transaction(TX, 3).unwrap_err();
        assert_eq!(field.as_deref(), Some("transaction_id"));
        assert!(
            msg.contains("duplicate") && msg.contains("earlier"),
            "{msg}"
        );
        // The small entities name the line the key was first given on.
        let tier = r#"{"tier_id":"gold","name":"Gold","rank":1}"#;
        val.tier(tier, 4).unwrap();
        let (field, msg) = val.tier(tier, 9).unwrap_err();
        assert_eq!(field.as_deref(), Some("tier_id"));
        assert!(msg.contains("line 4"), "{msg}");
    }

    #[test]
    fn erp_invoice_lines_are_checked_field_by_field() {
        let ok = r#"{"invoice_number":"INV-1","customer_name":" Acme Inc ","partner_id":"R1","invoice_date":"2024-10-02","currency":"usd","lines":[{"sku":"S1","quantity":3,"amount":"29.97"}]}"#;
        let mut val = Validator::default();
        let inv = val.erp_invoice(ok, 1).unwrap();
        assert_eq!(inv.customer_name, "Acme Inc");
        assert_eq!(inv.currency, "USD");
        assert_eq!(inv.lines[0].amount.to_string(), "29.97");
        let (field, msg) = val.erp_invoice(ok, 2).unwrap_err();
        assert_eq!(field.as_deref(), Some("invoice_number"));
        assert!(msg.contains("line 1"), "{msg}");
        let cases = [
            (
                r#""amount":"29.97""#,
                r#""amount":29.97"#,
                "lines[0].amount",
                "never a float",
            ),
            (
                r#""quantity":3"#,
                r#""quantity":3.5"#,
                "lines[0].quantity",
                "whole number",
            ),
            (r#""sku":"S1""#, r#""sku":"""#, "lines[0].sku", "non-empty"),
            (
                r#""currency":"usd""#,
                r#""currency":"dollars""#,
                "currency",
                "ISO 4217",
            ),
            (
                r#""invoice_date":"2024-10-02""#,
                r#""invoice_date":"02/10/2024""#,
                "invoice_date",
                "",
            ),
        ];
        for (i, (from, to, want_field, want_msg)) in cases.iter().enumerate() {
            let line = ok.replace("INV-1", &format!("INV-X{i}")).replace(from, to);
            let (field, msg) = val.erp_invoice(&line, 10 + i).unwrap_err();
            assert_eq!(field.as_deref(), Some(*want_field), "{line}: {msg}");
            assert!(msg.contains(want_msg), "{msg}");
        }
        let empty = ok.replace(r#"[{"sku":"S1","quantity":3,"amount":"29.97"}]"#, "[]");
        let (field, _) = val
            .erp_invoice(&empty.replace("INV-1", "INV-E"), 20)
            .unwrap_err();
        assert_eq!(field.as_deref(), Some("lines"));
    }

    #[test]
    fn parent_may_come_later_in_the_file_but_must_exist() {
        let child = r#"{"partner_id":"R1","name":"r","kind":"reseller","parent_partner_id":"D9","region":"NA","joined_on":"2021-01-01","certifications":[]}"#;
        let parent = r#"{"partner_id":"D9","name":"d","kind":"distributor","parent_partner_id":null,"region":"NA","country":null,"joined_on":"2021-01-01","certifications":["x"],"tax_id":null,"bank_account":null}"#;
        let mut val = Validator::default();
        let (field, _) = val.partner(child, 1).unwrap_err();
        assert_eq!(field.as_deref(), Some("parent_partner_id"));
        val.note_partner_id(child);
        val.note_partner_id(parent);
        assert_eq!(
            val.partner(child, 1).unwrap().parent_partner_id.as_deref(),
            Some("D9")
        );
        assert_eq!(
            val.partner(parent, 2).unwrap().kind,
            PartnerKind::Distributor
        );
    }

    #[test]
    fn canonical_decimal_text_is_what_decimal_displays() {
        for s in [
            "0",
            "0.0",
            "1520.0",
            "-150",
            "0.50",
            "26873.47",
            "-0.05",
            "10",
            "99999999.9999",
        ] {
            assert!(is_canonical_decimal(s), "{s}");
            assert_eq!(s.parse::<Decimal>().unwrap().to_string(), s);
        }
        for s in [
            "01.0", "+1", "1.", ".5", "-0.0", "-0", " 1", "1e5", "", "-", "1.2.3",
        ] {
            assert!(!is_canonical_decimal(s), "{s}");
        }
    }

    #[test]
    fn stored_texts_are_the_formatted_values_however_the_input_writes_them() {
        let line = TX
            .replace("\"19.0\"", "\" 19.00\"")
            .replace("2024-10-01T08:31:40Z", "2024-10-01T10:31:40+02:00");
        let p = v().transaction_prepared(&line, 1).unwrap();
        let q = crate::store::dataset::PreparedTransaction::new(p.tx.clone());
        assert_eq!(format!("{p:?}"), format!("{q:?}"));
        let p = v().transaction_prepared(TX, 1).unwrap();
        let q = crate::store::dataset::PreparedTransaction::new(p.tx.clone());
        assert_eq!(format!("{p:?}"), format!("{q:?}"));
    }

    #[test]
    fn plan_rejects_float_rates() {
        let (field, _) =
            plan(r#"{"plan_id":"p","currency":"USD","seller_rates":{"gold":0.1}}"#).unwrap_err();
        assert_eq!(field.as_deref(), Some("seller_rates.gold"));
        let p = plan(r#"{"plan_id":"p","currency":"USD","seller_rates":{"gold":"0.1"}}"#).unwrap();
        assert_eq!(p.seller_rates["gold"], Decimal::new(1, 1));
    }
}
