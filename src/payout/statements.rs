//! Bank files in (pure): camt.053 / camt.054 (any namespace prefix, read with quick-xml's
//! event reader by local name), BAI2 and NACHA return files, detected by content. A file
//! that is none of these, truncated or inconsistent is refused whole with where and why.

use chrono::NaiveDate;
use quick_xml::events::Event;
use quick_xml::Reader;
use rust_decimal::Decimal;

/// One statement entry, in a shape shared by every format.
#[derive(Debug, Clone, PartialEq)]
pub struct StmtEntry {
    /// 1-based entry number in the file.
    pub entry: usize,
    /// Line (XML, BAI2) or record (NACHA) where the entry starts.
    pub line: usize,
    pub amount: Decimal,
    pub currency: String,
    /// `true` for money in (CRDT).
    pub credit: bool,
    pub booked: bool,
    pub value_date: Option<NaiveDate>,
    /// EndToEndIds or original trace numbers named by the entry.
    pub refs: Vec<String>,
    /// A batch booking's id (camt `Btch/PmtInfId`).
    pub batch_id: Option<String>,
    /// A return's reason code (`AC04`, `R01` …).
    pub return_code: Option<String>,
    /// A NACHA notification of change: (code, corrected data).
    pub change: Option<(String, String)>,
    /// BAI2 type code or camt bank transaction code, for information.
    pub type_code: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Camt053,
    Camt054,
    Bai2,
    NachaReturn,
}

impl Format {
    pub fn as_str(&self) -> &'static str {
        match self {
            Format::Camt053 => "camt053",
            Format::Camt054 => "camt054",
            Format::Bai2 => "bai2",
            Format::NachaReturn => "nacha_return",
        }
    }
}

/// Why a file is refused: the line/record and what is wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("line {line}: {what}")]
pub struct Refusal {
    pub line: usize,
    pub what: String,
}

fn refuse<T>(line: usize, what: impl Into<String>) -> Result<T, Refusal> {
    Err(Refusal {
        line,
        what: what.into(),
    })
}

/// Detects the format by content and parses the file.
pub fn parse(bytes: &[u8]) -> Result<(Format, Vec<StmtEntry>), Refusal> {
    let text = std::str::from_utf8(bytes).map_err(|e| Refusal {
        line: 1 + bytes[..e.valid_up_to()]
            .iter()
            .filter(|b| **b == b'\n')
            .count(),
        what: "not UTF-8 text".into(),
    })?;
    let t = text.trim_start_matches('\u{feff}').trim_start();
    if t.starts_with('<') {
        return parse_camt(text);
    }
    if t.starts_with("01,") {
        return Ok((Format::Bai2, parse_bai2(text)?));
    }
    if t.starts_with("101") {
        return Ok((Format::NachaReturn, parse_nacha_returns(text)?));
    }
    refuse(1, "not a camt.053/camt.054, BAI2 or NACHA file")
}

fn date(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s.get(..10).unwrap_or(s), "%Y-%m-%d").ok()
}

fn local(name: &[u8]) -> String {
    let n = match name.iter().rposition(|b| *b == b':') {
        Some(i) => &name[i + 1..],
        None => name,
    };
    String::from_utf8_lossy(n).into_owned()
}

/// camt.053 (`BkToCstmrStmt/Stmt/Ntry`) or camt.054 (`BkToCstmrDbtCdtNtfctn/Ntfctn/Ntry`).
fn parse_camt(text: &str) -> Result<(Format, Vec<StmtEntry>), Refusal> {
    let mut r = Reader::from_str(text);
    r.config_mut().trim_text(true);
    // Line numbers counted incrementally (positions only grow).
    let bytes_ = text.as_bytes();
    let counted = std::cell::Cell::new((0usize, 1usize));
    let line_of = |pos: usize| {
        let (at, line) = counted.get();
        let pos = pos.min(bytes_.len());
        if pos < at {
            return 1 + bytes_[..pos].iter().filter(|b| **b == b'\n').count();
        }
        let l = line + memchr::memchr_iter(b'\n', &bytes_[at..pos]).count();
        counted.set((pos, l));
        l
    };
    let mut path: Vec<String> = Vec::new();
    let mut format = None;
    let mut entries = Vec::new();
    let mut cur: Option<StmtEntry> = None;
    let mut ccy_attr: Option<String> = None;
    let mut amt_text: Option<String> = None;
    let mut cd_ind: Option<String> = None;
    let mut saw_document = false;
    let mut text_buf = String::new();
    loop {
        let pos = r.buffer_position() as usize;
        let ev = r.read_event().map_err(|e| Refusal {
            line: line_of(pos),
            what: format!("malformed XML: {e}"),
        })?;
        match ev {
            Event::Start(s) => {
                let name = local(s.name().as_ref());
                if path.is_empty() {
                    if name != "Document" {
                        return refuse(
                            line_of(pos),
                            format!("root element is {name}, not Document"),
                        );
                    }
                    saw_document = true;
                }
                if path.len() == 1 {
                    format = Some(match name.as_str() {
                        "BkToCstmrStmt" => Format::Camt053,
                        "BkToCstmrDbtCdtNtfctn" => Format::Camt054,
                        other => {
                            return refuse(
                                line_of(pos),
                                format!("{other} is not a camt.053 or camt.054 message"),
                            )
                        }
                    });
                }
                if name == "Ntry" && path.len() == 3 {
                    cur = Some(StmtEntry {
                        entry: entries.len() + 1,
                        line: line_of(pos),
                        amount: Decimal::ZERO,
                        currency: String::new(),
                        credit: false,
                        booked: false,
                        value_date: None,
                        refs: Vec::new(),
                        batch_id: None,
                        return_code: None,
                        change: None,
                        type_code: None,
                    });
                    amt_text = None;
                    cd_ind = None;
                }
                if name == "Amt" && path.last().is_some_and(|p| p == "Ntry") {
                    ccy_attr = None;
                    for a in s.attributes().flatten() {
                        if local(a.key.as_ref()) == "Ccy" {
                            ccy_attr = Some(String::from_utf8_lossy(&a.value).into_owned());
                        }
                    }
                }
                text_buf.clear();
                path.push(name);
            }
            Event::End(_) => {
                let v = std::mem::take(&mut text_buf).trim().to_string();
                if let Some(e) = cur.as_mut() {
                    let last = path.last().map(String::as_str).unwrap_or("");
                    let parent = if path.len() >= 2 {
                        path[path.len() - 2].as_str()
                    } else {
                        ""
                    };
                    let in_ntry_direct = parent == "Ntry";
                    match last {
                        "Amt" if in_ntry_direct => amt_text = Some(v),
                        "CdtDbtInd" if in_ntry_direct => cd_ind = Some(v),
                        "Cd" if parent == "Sts" => e.booked = v == "BOOK",
                        "Sts" if in_ntry_direct && !v.is_empty() => e.booked = v == "BOOK",
                        "Dt" | "DtTm" if parent == "ValDt" => e.value_date = date(&v),
                        "EndToEndId" => e.refs.push(v),
                        "PmtInfId" if parent == "Btch" => e.batch_id = Some(v),
                        "Cd" if parent == "Rsn" && path.iter().any(|p| p == "RtrInf") => {
                            e.return_code = Some(v)
                        }
                        "Cd" | "SubFmlyCd" if parent == "Fmly" || last == "SubFmlyCd" => {
                            let tc = e.type_code.get_or_insert_with(String::new);
                            if !tc.is_empty() {
                                tc.push('/');
                            }
                            tc.push_str(&v);
                        }
                        _ => {}
                    }
                }
                let name = path.pop().unwrap_or_default();
                if name == "Ntry" && path.len() == 3 {
                    let Some(mut e) = cur.take() else { continue };
                    let line = e.line;
                    let Some(a) = amt_text.take() else {
                        return refuse(line, format!("entry {} has no Amt", e.entry));
                    };
                    e.amount = crate::money::parse_money(&a).ok_or_else(|| Refusal {
                        line,
                        what: format!("entry {}: Amt {a:?} is not an amount", e.entry),
                    })?;
                    e.currency = ccy_attr.take().ok_or_else(|| Refusal {
                        line,
                        what: format!("entry {}: Amt has no Ccy", e.entry),
                    })?;
                    e.credit = match cd_ind.take().as_deref() {
                        Some("CRDT") => true,
                        Some("DBIT") => false,
                        other => {
                            return refuse(
                                line,
                                format!(
                                    "entry {}: CdtDbtInd {other:?} is not CRDT or DBIT",
                                    e.entry
                                ),
                            )
                        }
                    };
                    entries.push(e);
                }
            }
            Event::Text(t) => {
                text_buf.push_str(&t.xml10_content().unwrap_or_default());
            }
            Event::GeneralRef(g) => {
                let name = g.decode().unwrap_or_default();
                let c = match name.as_ref() {
                    "amp" => "&",
                    "lt" => "<",
                    "gt" => ">",
                    "quot" => "\"",
                    "apos" => "'",
                    _ => "",
                };
                text_buf.push_str(c);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !path.is_empty() {
        return refuse(
            line_of(text.len()),
            format!("truncated: {} is not closed", path.join("/")),
        );
    }
    if !saw_document {
        return refuse(1, "no Document element");
    }
    let Some(f) = format else {
        return refuse(1, "no camt message in the Document");
    };
    Ok((f, entries))
}

/// BAI2: `01` file, `02` group, `03` account, `16` detail, `88` continuation, `49` account
/// trailer (control total = sum of every amount in the account's 03/16/88 records, record
/// count), `98`, `99`. Amounts have no decimal point (implied by the currency).
fn parse_bai2(text: &str) -> Result<Vec<StmtEntry>, Refusal> {
    // Logical records: physical lines joined by 88 continuations.
    struct Rec {
        line: usize,
        fields: Vec<String>,
        physical: usize,
    }
    let mut recs: Vec<Rec> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let l = raw.trim();
        if l.is_empty() {
            continue;
        }
        let body = l.strip_suffix('/').unwrap_or(l);
        let fields: Vec<String> = body.split(',').map(|s| s.trim().to_string()).collect();
        if fields[0] == "88" {
            match recs.last_mut() {
                Some(prev) => {
                    prev.fields.extend(fields.into_iter().skip(1));
                    prev.physical += 1;
                }
                None => return refuse(i + 1, "88 continuation with nothing before it"),
            }
            continue;
        }
        recs.push(Rec {
            line: i + 1,
            fields,
            physical: 1,
        });
    }
    let Some(last) = recs.last() else {
        return refuse(1, "empty BAI2 file");
    };
    if last.fields[0] != "99" {
        return refuse(
            last.line,
            "truncated: the file does not end with a 99 record",
        );
    }
    let mut entries = Vec::new();
    let mut currency = String::from("USD");
    let mut group_date: Option<NaiveDate> = None;
    let mut acct_sum: i128 = 0;
    let mut acct_recs: usize = 0;
    let mut in_acct = false;
    let mut acct_entries: Vec<StmtEntry> = Vec::new();
    let amt = |s: &str, line: usize| -> Result<i128, Refusal> {
        if s.is_empty() {
            return Ok(0);
        }
        let (neg, d) = match s.strip_prefix('-') {
            Some(d) => (true, d),
            None => (false, s.strip_prefix('+').unwrap_or(s)),
        };
        if !d.bytes().all(|c| c.is_ascii_digit()) || d.is_empty() {
            return refuse(
                line,
                format!("amount {s:?} is not a whole number of minor units"),
            );
        }
        let v: i128 = d.parse().map_err(|_| Refusal {
            line,
            what: format!("amount {s:?} too large"),
        })?;
        Ok(if neg { -v } else { v })
    };
    for r in &recs {
        let f = &r.fields;
        match f[0].as_str() {
            "01" | "98" | "99" => {}
            "02" => {
                group_date = f
                    .get(4)
                    .and_then(|d| NaiveDate::parse_from_str(d, "%y%m%d").ok());
                if let Some(c) = f.get(6).filter(|c| !c.is_empty()) {
                    currency = c.clone();
                }
            }
            "03" => {
                in_acct = true;
                acct_sum = 0;
                acct_recs = r.physical;
                if let Some(c) = f.get(2).filter(|c| !c.is_empty()) {
                    currency = c.clone();
                }
                // Summary items: (type code, amount, item count, funds type) repeated.
                let mut i = 3;
                while i + 1 < f.len() {
                    acct_sum += amt(&f[i + 1], r.line)?;
                    i += 4;
                }
            }
            "16" => {
                if !in_acct {
                    return refuse(r.line, "16 detail outside an account (no 03 before it)");
                }
                acct_recs += r.physical;
                let code = f.get(1).cloned().unwrap_or_default();
                let a = amt(f.get(2).map(String::as_str).unwrap_or(""), r.line)?;
                acct_sum += a;
                let tc: u32 = code.parse().map_err(|_| Refusal {
                    line: r.line,
                    what: format!("type code {code:?} is not a number"),
                })?;
                // Funds type may add fields (S: three amounts, V: date+time, D: list).
                let funds = f.get(3).map(String::as_str).unwrap_or("");
                let skip = match funds {
                    "S" => 3,
                    "V" => 2,
                    _ => 0,
                };
                let bank_ref = f.get(4 + skip).cloned().unwrap_or_default();
                let cust_ref = f.get(5 + skip).cloned().unwrap_or_default();
                let text_ = f.get(6 + skip..).map(|v| v.join(",")).unwrap_or_default();
                let digits = crate::money::minor_digits(&currency);
                let amount = Decimal::from_i128_with_scale(a, digits);
                let mut refs = Vec::new();
                for s in [&cust_ref, &bank_ref] {
                    if !s.is_empty() {
                        refs.push(s.clone());
                    }
                }
                let returned = matches!(tc, 257 | 557);
                acct_entries.push(StmtEntry {
                    entry: 0,
                    line: r.line,
                    amount,
                    currency: currency.clone(),
                    credit: tc < 400,
                    booked: true,
                    value_date: group_date,
                    refs,
                    batch_id: None,
                    return_code: if returned {
                        Some(
                            text_
                                .split_whitespace()
                                .find(|w| w.len() == 3 && w.starts_with('R'))
                                .unwrap_or("R??")
                                .to_string(),
                        )
                    } else {
                        None
                    },
                    change: None,
                    type_code: Some(code),
                });
            }
            "49" => {
                if !in_acct {
                    return refuse(r.line, "49 account trailer without an 03 account");
                }
                let total = amt(f.get(1).map(String::as_str).unwrap_or(""), r.line)?;
                if total != acct_sum {
                    return refuse(
                        r.line,
                        format!("account control total {total} differs from the sum of the account's amounts {acct_sum}"),
                    );
                }
                let count: usize = f.get(2).and_then(|c| c.parse().ok()).unwrap_or(0);
                if count != acct_recs + r.physical {
                    return refuse(
                        r.line,
                        format!("account record count {count} differs from the {} records of the account", acct_recs + r.physical),
                    );
                }
                in_acct = false;
                for mut e in acct_entries.drain(..) {
                    e.entry = entries.len() + 1;
                    entries.push(e);
                }
            }
            other => {
                return refuse(
                    r.line,
                    format!("record type {other:?} is not a BAI2 record"),
                )
            }
        }
    }
    if in_acct {
        return refuse(last.line, "truncated: an account has no 49 trailer");
    }
    Ok(entries)
}

/// A NACHA return file: entries (21/31 returned credits) with addenda 99 (reason code at
/// 4-6, original trace at 7-21) or 98 (notification of change: code, corrected data).
fn parse_nacha_returns(text: &str) -> Result<Vec<StmtEntry>, Refusal> {
    let recs: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    for (i, r) in recs.iter().enumerate() {
        if r.len() != 94 {
            return refuse(i + 1, format!("record is {} characters, not 94", r.len()));
        }
    }
    let num = |s: &str, i: usize| -> Result<u64, Refusal> {
        s.trim().parse().map_err(|_| Refusal {
            line: i + 1,
            what: format!("{s:?} is not numeric"),
        })
    };
    let mut entries: Vec<StmtEntry> = Vec::new();
    let mut batch_entries = 0u64;
    let mut batch_hash = 0u64;
    let mut file_entries = 0u64;
    let mut effective: Option<NaiveDate> = None;
    let mut saw_file_control = false;
    let mut i = 0;
    while i < recs.len() {
        let r = recs[i];
        match &r[..1] {
            "1" => {}
            "5" => {
                batch_entries = 0;
                batch_hash = 0;
                effective = NaiveDate::parse_from_str(&r[69..75], "%y%m%d").ok();
            }
            "6" => {
                let code = &r[1..3];
                batch_entries += 1;
                batch_hash += num(&r[3..11], i)?;
                let cents = num(&r[29..39], i)?;
                let has_addenda = &r[78..79] == "1";
                let mut e = StmtEntry {
                    entry: entries.len() + 1,
                    line: i + 1,
                    amount: Decimal::new(cents as i64, 2),
                    currency: "USD".into(),
                    credit: matches!(code, "21" | "31" | "26" | "36"),
                    booked: true,
                    value_date: effective,
                    refs: Vec::new(),
                    batch_id: None,
                    return_code: None,
                    change: None,
                    type_code: Some(code.to_string()),
                };
                if has_addenda {
                    let Some(a) = recs.get(i + 1).filter(|a| a.starts_with('7')) else {
                        return refuse(
                            i + 2,
                            "entry says it has an addenda record but none follows",
                        );
                    };
                    batch_entries += 1;
                    let kind = &a[1..3];
                    let reason = a[3..6].to_string();
                    let trace = a[6..21].to_string();
                    match kind {
                        "99" => e.return_code = Some(reason),
                        "98" => e.change = Some((reason, a[35..64].trim().to_string())),
                        other => {
                            return refuse(
                                i + 2,
                                format!("addenda type {other} is not a return (99) or change (98)"),
                            )
                        }
                    }
                    if !trace.bytes().all(|b| b.is_ascii_digit()) {
                        return refuse(i + 2, format!("original trace {trace:?} is not 15 digits"));
                    }
                    e.refs.push(trace);
                    i += 1;
                } else {
                    return refuse(i + 1, "a return entry without its addenda record");
                }
                entries.push(e);
            }
            "8" => {
                let n = num(&r[4..10], i)?;
                if n != batch_entries {
                    return refuse(i + 1, format!("batch control counts {n} entries and addenda; the batch has {batch_entries}"));
                }
                let h = num(&r[10..20], i)?;
                if h != batch_hash % 10_000_000_000 {
                    return refuse(
                        i + 1,
                        format!(
                            "batch entry hash {h} differs from the computed {}",
                            batch_hash % 10_000_000_000
                        ),
                    );
                }
                file_entries += batch_entries;
            }
            "9" => {
                if r.bytes().all(|b| b == b'9') {
                    i += 1;
                    continue;
                }
                saw_file_control = true;
                let n = num(&r[13..21], i)?;
                if n != file_entries {
                    return refuse(i + 1, format!("file control counts {n} entries and addenda; the file has {file_entries}"));
                }
            }
            other => {
                return refuse(
                    i + 1,
                    format!("record type {other:?} is not a NACHA record"),
                )
            }
        }
        i += 1;
    }
    if !saw_file_control {
        return refuse(recs.len(), "truncated: no file control (9) record");
    }
    Ok(entries)
}
