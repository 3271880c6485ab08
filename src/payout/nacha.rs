//! NACHA (ACH) credit file writer, hand-written (pure): records of 94 characters,
//! alphanumeric fields left-justified and space-filled, numeric ones right-justified
//! and zero-filled, blocked to a multiple of ten records with all-`9` records.

use rust_decimal::Decimal;

/// The originator's settings (config.toml `[payout]`).
#[derive(Debug, Clone)]
pub struct Originator {
    pub immediate_destination: String,
    pub immediate_origin: String,
    pub destination_name: String,
    pub origin_name: String,
    pub company_name: String,
    pub company_id: String,
    pub odfi_routing: String,
    pub entry_description: String,
}

/// One credit entry.
#[derive(Debug, Clone)]
pub struct Entry {
    pub routing: String,
    pub account: String,
    pub savings: bool,
    pub cents: i64,
    pub id_number: String,
    pub name: String,
    /// `CCD` (business) or `PPD` (person).
    pub sec: &'static str,
    /// 7-digit sequence of the trace number.
    pub seq: u64,
    /// A prenote: zero dollars, transaction code 23 (checking) or 33 (savings).
    pub prenote: bool,
}

/// File creation time and the effective entry date, as `YYMMDD` / `HHMM`.
#[derive(Debug, Clone)]
pub struct Dates {
    pub created_yymmdd: String,
    pub created_hhmm: String,
    pub effective_yymmdd: String,
}

fn alpha(s: &str, n: usize) -> String {
    // ASCII upper case only; anything else becomes a space.
    let mut out: String = s
        .chars()
        .map(|c| {
            let c = c.to_ascii_uppercase();
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                ' '
            }
        })
        .take(n)
        .collect();
    while out.len() < n {
        out.push(' ');
    }
    out
}

fn num(v: u64, n: usize) -> String {
    let s = format!("{v:0n$}");
    s[s.len() - n..].to_string()
}

/// The trace number: the ODFI's first 8 digits and a 7-digit sequence.
pub fn trace(odfi_routing: &str, seq: u64) -> String {
    format!(
        "{}{}",
        &odfi_routing[..8.min(odfi_routing.len())],
        num(seq, 7)
    )
}

/// Writes the file; entries are grouped into one batch per SEC code (CCD, then PPD).
pub fn write(o: &Originator, d: &Dates, entries: &[Entry]) -> String {
    let mut recs: Vec<String> = Vec::new();
    let odfi8 = &o.odfi_routing[..8.min(o.odfi_routing.len())];
    recs.push(format!(
        "101{}{}{}{}A094101{}{}{}",
        alpha(&format!(" {}", o.immediate_destination.trim()), 10),
        alpha(&pad_left(o.immediate_origin.trim(), 10), 10),
        d.created_yymmdd,
        d.created_hhmm,
        alpha(&o.destination_name, 23),
        alpha(&o.origin_name, 23),
        alpha("", 8),
    ));
    let mut batch_no = 0u64;
    let (mut f_entries, mut f_hash, mut f_credit) = (0u64, 0u64, 0u64);
    for sec in ["CCD", "PPD"] {
        let es: Vec<&Entry> = entries.iter().filter(|e| e.sec == sec).collect();
        if es.is_empty() {
            continue;
        }
        batch_no += 1;
        recs.push(format!(
            "5220{}{}{}{}{}{}{}   1{}{}",
            alpha(&o.company_name, 16),
            alpha("", 20),
            alpha(&o.company_id, 10),
            sec,
            alpha(&o.entry_description, 10),
            alpha("", 6),
            d.effective_yymmdd,
            odfi8,
            num(batch_no, 7),
        ));
        let (mut hash, mut credit) = (0u64, 0u64);
        for e in &es {
            let rdfi8 = &e.routing[..8];
            let check = &e.routing[8..9];
            hash += rdfi8.parse::<u64>().unwrap_or(0);
            let cents = if e.prenote { 0 } else { e.cents.max(0) as u64 };
            credit += cents;
            recs.push(format!(
                "6{}{}{}{}{}{}{}  0{}",
                match (e.savings, e.prenote) {
                    (false, false) => "22",
                    (false, true) => "23",
                    (true, false) => "32",
                    (true, true) => "33",
                },
                rdfi8,
                check,
                alpha(&e.account, 17),
                num(cents, 10),
                alpha(&e.id_number, 15),
                alpha(&e.name, 22),
                trace(&o.odfi_routing, e.seq),
            ));
        }
        let n = es.len() as u64;
        recs.push(format!(
            "8220{}{}{}{}{}{}{}{}{}",
            num(n, 6),
            num(hash % 10_000_000_000, 10),
            num(0, 12),
            num(credit, 12),
            alpha(&o.company_id, 10),
            alpha("", 19),
            alpha("", 6),
            odfi8,
            num(batch_no, 7),
        ));
        f_entries += n;
        f_hash += hash;
        f_credit += credit;
    }
    let records = recs.len() as u64 + 1;
    let blocks = records.div_ceil(10);
    recs.push(format!(
        "9{}{}{}{}{}{}{}",
        num(batch_no, 6),
        num(blocks, 6),
        num(f_entries, 8),
        num(f_hash % 10_000_000_000, 10),
        num(0, 12),
        num(f_credit, 12),
        alpha("", 39),
    ));
    while recs.len() % 10 != 0 {
        recs.push("9".repeat(94));
    }
    let mut s = recs.join("\n");
    s.push('\n');
    s
}

fn pad_left(s: &str, n: usize) -> String {
    if s.len() >= n {
        s.to_string()
    } else {
        format!("{}{s}", " ".repeat(n - s.len()))
    }
}

/// Amount in cents, exact.
pub fn cents(d: Decimal) -> Option<i64> {
    crate::money::to_minor_exact(d, "USD").ok()
}
