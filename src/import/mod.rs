//! Data-set import (the format of `docs/dataset.md`).
//!
//! - [`load_dataset`] reads a folder into memory (for `--dataset DIR` commands).
//! - [`import_dir`] streams a folder into the cache: line by line, batches parsed on
//!   one thread and written on another, one SQLite transaction per batch.
//!
//! Both validate the same way: each bad row (not JSON, a missing required field, a
//! wrong type such as a float where a decimal string is required, a duplicate id, an
//! unknown id reference, a truncated last line) is rejected with its file, line,
//! field and reason; every good row is kept. Unknown extra fields are ignored.
//! Neither ever reads `answers/`.

pub mod flat;
pub mod integrity;
pub mod parse;

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::model::*;
use crate::store::bulk::{CommBatch, RowProblem, TxBatch};
use crate::store::dataset::{BulkMode, PreparedRegistration, Refused, UpsertCounts};
use crate::store::Store;
use parse::{Bad, Validator};

/// A rejected input row: where it was, which field, what is wrong, and the raw text.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub file: String,
    pub line: usize,
    pub field: Option<String>,
    pub error: String,
    pub raw: String,
    /// The line's exact bytes when they are not UTF-8 (`raw` is then a lossy copy).
    pub raw_bytes: Option<Vec<u8>>,
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{}:{}: {}: {}", self.file, self.line, field, self.error),
            None => write!(f, "{}:{}: {}", self.file, self.line, self.error),
        }
    }
}

/// A data set loaded into memory with the rows it rejected.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub dataset: Dataset,
    pub rejected: Vec<Rejection>,
}

/// The files of a data set, in load order (references point backwards).
pub const FILES: [&str; 11] = [
    "program.json",
    "plan.json",
    "tiers.jsonl",
    "products.jsonl",
    "discount_policy.jsonl",
    "partners.jsonl",
    "tier_history.jsonl",
    "quotas.jsonl",
    "registrations.jsonl",
    "transactions.jsonl",
    "commissions.jsonl",
];

/// Rows per batch (and per SQLite transaction) for the large files.
/// Small enough that the batches in flight (parsed, queued, being written) stay a
/// few MiB; large enough that a commit per batch costs little.
const BATCH: usize = 5_000;

/// How many rejections an [`ImportReport`] keeps in memory (all are counted,
/// quarantined and passed to the progress callback).
const KEEP_REJECTIONS: usize = 10_000;

/// Rows parsed from a file and handed to the store together.
pub trait Batch: Default + Send {
    /// How many rows it holds.
    fn rows(&self) -> usize;
    /// Empties the batch, keeping its memory for the next one.
    fn clear(&mut self);
    /// Called after each row is added, with where its line is in the file (kept by
    /// batches whose rows the store may still refuse).
    fn note_line(&mut self, _line: LineRef) {}
    /// Where row `i`'s line is, when kept.
    fn line(&self, _i: usize) -> Option<LineRef> {
        None
    }
}

/// Where a line is in its file: enough to read its raw text again (for the
/// quarantine) when the store refuses its row, without keeping every line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineRef {
    pub no: usize,
    pub offset: u64,
    pub len: usize,
    /// Whether it ended with a newline (a last line without one was truncated).
    pub terminated: bool,
}

/// A batch with the place of each row's line.
#[derive(Default)]
pub struct Lined<B> {
    pub rows: B,
    lines: Vec<LineRef>,
}

impl<B: Batch> Batch for Lined<B> {
    fn rows(&self) -> usize {
        self.rows.rows()
    }
    fn clear(&mut self) {
        self.rows.clear();
        self.lines.clear();
    }
    fn note_line(&mut self, line: LineRef) {
        self.lines.push(line);
    }
    fn line(&self, i: usize) -> Option<LineRef> {
        self.lines.get(i).copied()
    }
}

impl<T: Send> Batch for Vec<T> {
    fn rows(&self) -> usize {
        self.len()
    }
    fn clear(&mut self) {
        Vec::clear(self)
    }
}

impl Batch for TxBatch {
    fn rows(&self) -> usize {
        self.len()
    }
    fn clear(&mut self) {
        TxBatch::clear(self)
    }
}

impl Batch for CommBatch {
    fn rows(&self) -> usize {
        self.len()
    }
    fn clear(&mut self) {
        CommBatch::clear(self)
    }
}

/// Checks one line and appends its row to the batch (nothing when it is bad).
type ParseFn<B> = dyn Fn(&mut Validator, &str, usize, &mut B) -> Result<(), Bad> + Sync;

/// Writes a batch: what it did, and the rows the store refused.
type WriteFn<'a, B> = dyn Fn(&mut Store, &B) -> crate::store::Result<(UpsertCounts, Refused)> + 'a;

/// A [`ParseFn`] for a row parser that returns the row.
fn push_to<T>(
    parse: fn(&mut Validator, &str, usize) -> Result<T, Bad>,
) -> impl Fn(&mut Validator, &str, usize, &mut Vec<T>) -> Result<(), Bad> + Sync {
    move |v, line, no, out| parse(v, line, no).map(|row| out.push(row))
}

/// Counts for one file of an import.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileReport {
    pub file: String,
    /// Non-blank lines read.
    pub read: u64,
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub rejected: u64,
    pub elapsed: Duration,
}

impl FileReport {
    /// Adds what one write did.
    fn count(&mut self, c: UpsertCounts) {
        self.inserted += c.inserted;
        self.updated += c.updated;
        self.unchanged += c.unchanged;
    }
}

/// What an import did.
#[derive(Debug, Clone, Default)]
pub struct ImportReport {
    pub files: Vec<FileReport>,
    /// The first rejections (up to 10,000; `rejected_total` counts them all), file
    /// by file, each file's in line order.
    pub rejections: Vec<Rejection>,
    pub rejected_total: u64,
    /// Secondary indexes dropped for the bulk load and rebuilt after it, with the
    /// time each took to build.
    pub indexes_rebuilt: Vec<(String, Duration)>,
    /// Time of the whole index build.
    pub index_build: Duration,
    /// Time of the checkpoint that moves what the import wrote from the WAL into
    /// the database file (the rows were stored and readable before it).
    pub checkpoint: Duration,
    /// After a load of the transactions without their key: the time of the checks
    /// made once it is built (repeated ids, refunds of missing sales), counted in
    /// the file's time.
    pub key_checks: Duration,
    pub elapsed: Duration,
}

impl ImportReport {
    pub fn file(&self, name: &str) -> Option<&FileReport> {
        self.files.iter().find(|f| f.file == name)
    }

    /// Rows accepted (inserted, updated or unchanged) over all files.
    pub fn accepted(&self) -> u64 {
        self.files
            .iter()
            .map(|f| f.inserted + f.updated + f.unchanged)
            .sum()
    }
}

impl std::fmt::Display for ImportReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{:<24} {:>10} {:>10} {:>10} {:>10} {:>10} {:>8}",
            "file", "read", "inserted", "updated", "unchanged", "rejected", "seconds"
        )?;
        for r in &self.files {
            writeln!(
                f,
                "{:<24} {:>10} {:>10} {:>10} {:>10} {:>10} {:>8.2}",
                r.file,
                r.read,
                r.inserted,
                r.updated,
                r.unchanged,
                r.rejected,
                r.elapsed.as_secs_f64()
            )?;
        }
        let sum = |g: fn(&FileReport) -> u64| self.files.iter().map(g).sum::<u64>();
        writeln!(
            f,
            "{:<24} {:>10} {:>10} {:>10} {:>10} {:>10}",
            "total",
            sum(|r| r.read),
            sum(|r| r.inserted),
            sum(|r| r.updated),
            sum(|r| r.unchanged),
            sum(|r| r.rejected)
        )?;
        if self.rejected_total > 0 {
            writeln!(f, "rejected rows (kept in the quarantine):")?;
            for r in &self.rejections {
                writeln!(f, "  {r}")?;
            }
            let more = self.rejected_total - self.rejections.len() as u64;
            if more > 0 {
                writeln!(f, "  ... and {more} more")?;
            }
        }
        write!(f, "took {:.2}s", self.elapsed.as_secs_f64())?;
        if !self.indexes_rebuilt.is_empty() {
            write!(f, " (index build {:.2}s)", self.index_build.as_secs_f64())?;
        }
        Ok(())
    }
}

/// Progress of an import, reported per batch.
#[derive(Debug, Clone)]
pub struct ImportProgress {
    pub file: String,
    /// Lines read so far in this file.
    pub lines: u64,
    /// Bytes read so far in this file, and its size.
    pub bytes: u64,
    pub total_bytes: u64,
    /// Rejections found in the last batch (for printing as they come).
    pub new_rejections: Vec<Rejection>,
    /// True on the last report for a file.
    pub done: bool,
}

/// The files a data set may leave out (an import of master data only: its deals
/// are to come from the PRM).
pub const OPTIONAL_FILES: [&str; 4] = [
    "registrations.jsonl",
    "transactions.jsonl",
    "commissions.jsonl",
    ERP_FILE,
];

/// What the vendor's ERP billed (optional; version 2 of the format). Without it the
/// ERP cross-check says "not evaluated".
pub const ERP_FILE: &str = "erp_invoices.jsonl";

fn require_files(dir: &Path) -> anyhow::Result<()> {
    match std::fs::metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            anyhow::bail!("{} does not exist", dir.display())
        }
        Err(e) => anyhow::bail!("cannot read {}: {e}", dir.display()),
        Ok(m) if !m.is_dir() => anyhow::bail!("{} is not a folder", dir.display()),
        Ok(_) => {}
    }
    if let Err(e) = std::fs::read_dir(dir) {
        anyhow::bail!("cannot read the folder {}: {e}", dir.display());
    }
    let missing: Vec<&str> = FILES
        .iter()
        .copied()
        .filter(|f| !OPTIONAL_FILES.contains(f))
        .filter(|f| match std::fs::metadata(dir.join(f)) {
            Ok(m) => !m.is_file(),
            Err(e) => e.kind() == std::io::ErrorKind::NotFound,
        })
        .collect();
    if !missing.is_empty() {
        anyhow::bail!(
            "{} is missing required file{} {} (a data set has {}; {} may be left out; \
             see docs/dataset.md)",
            dir.display(),
            if missing.len() > 1 { "s" } else { "" },
            missing.join(", "),
            FILES.join(", "),
            OPTIONAL_FILES.join(", ")
        );
    }
    Ok(())
}

fn reject(file: &str, line: usize, raw: &str, (field, error): Bad) -> Rejection {
    // A rejected partner line is kept (and printed) with its tax id and bank details
    // masked: they are never stored readable.
    let raw = if file == "partners.jsonl" {
        crate::store::secret::mask_line(raw)
    } else {
        raw.to_string()
    };
    Rejection {
        file: file.to_string(),
        line,
        field,
        error,
        raw,
        raw_bytes: None,
    }
}

/// Reads one of the two `.json` files (small: read whole).
/// A file's leading UTF-8 byte-order mark (as written by some Windows exports) is not
/// part of its first line.
fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
}

fn read_json_file<T>(
    dir: &Path,
    name: &str,
    parse: fn(&str) -> Result<T, Bad>,
) -> anyhow::Result<Result<T, Rejection>> {
    let p = dir.join(name);
    let bytes = std::fs::read(&p).with_context(|| format!("cannot read {}", p.display()))?;
    let text = String::from_utf8_lossy(strip_bom(&bytes));
    Ok(parse(&text).map_err(|bad| {
        let line = match serde_json::from_str::<serde_json::Value>(&text) {
            Err(e) => e.line().max(1),
            Ok(_) => 1,
        };
        reject(name, line, &text, bad)
    }))
}

/// Streams one `.jsonl` file through `parse`, handing batches of good rows and
/// rejections to `sink`; each new batch comes from `fresh` (a spent one, cleared, or
/// a new one). Memory stays flat: one line and a few batches at a time.
#[allow(clippy::too_many_arguments)]
fn stream_jsonl<B: Batch>(
    dir: &Path,
    name: &str,
    v: &mut Validator,
    parse: &ParseFn<B>,
    batch: usize,
    fresh: &mut dyn FnMut() -> B,
    sink: &mut dyn FnMut(B, Vec<Rejection>, ImportProgress) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let path = dir.join(name);
    if OPTIONAL_FILES.contains(&name) && !path.exists() {
        let progress = ImportProgress {
            file: name.to_string(),
            lines: 0,
            bytes: 0,
            total_bytes: 0,
            new_rejections: Vec::new(),
            done: true,
        };
        return sink(fresh(), Vec::new(), progress);
    }
    let file =
        std::fs::File::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
    let total_bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    let mut rows = fresh();
    let mut rejs = Vec::new();
    let (mut lineno, mut lines, mut bytes) = (0usize, 0u64, 0u64);
    // Refunds read before their sale: tried again once the whole file is read.
    let mut deferred: Vec<(LineRef, String)> = Vec::new();
    v.defer_refunds = true;
    loop {
        buf.clear();
        let n = reader
            .by_ref()
            .read_until(b'\n', &mut buf)
            .with_context(|| format!("{name}:{}: cannot read", lineno + 1))?;
        if n == 0 {
            break;
        }
        lineno += 1;
        bytes += n as u64;
        let (raw, end, terminated) = line_body(&buf, lineno);
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        lines += 1;
        match std::str::from_utf8(raw) {
            Err(e) => rejs.push(Rejection {
                // The exact bytes are kept, except of partner lines (sensitive data).
                raw_bytes: (name != "partners.jsonl").then(|| raw.to_vec()),
                ..reject(
                    name,
                    lineno,
                    &String::from_utf8_lossy(raw),
                    (None, format!("not valid UTF-8 text: {e}")),
                )
            }),
            Ok(line) => {
                let at = LineRef {
                    no: lineno,
                    // `raw` is the end of `buf[..end]` (a byte-order mark cut off).
                    offset: bytes - n as u64 + (end - raw.len()) as u64,
                    len: raw.len(),
                    terminated,
                };
                match parse(v, line, lineno, &mut rows) {
                    Ok(()) => rows.note_line(at),
                    Err(_) if v.take_deferred() => deferred.push((at, line.to_string())),
                    Err(bad) => rejs.push(reject_line(name, lineno, line, terminated, bad)),
                }
            }
        }
        if rows.rows() >= batch {
            let progress = ImportProgress {
                file: name.to_string(),
                lines,
                bytes,
                total_bytes,
                new_rejections: Vec::new(),
                done: false,
            };
            sink(
                std::mem::replace(&mut rows, fresh()),
                std::mem::take(&mut rejs),
                progress,
            )?;
        }
    }
    // Resolve the set-aside refunds, repeating while that resolves more (a refund
    // of a refund); what is left names a sale that is nowhere: rejected.
    while !deferred.is_empty() {
        let before = deferred.len();
        let last_pass = std::mem::take(&mut deferred);
        for (at, line) in last_pass {
            match parse(v, &line, at.no, &mut rows) {
                Ok(()) => rows.note_line(at),
                Err(_) if v.take_deferred() => deferred.push((at, line)),
                Err(bad) => rejs.push(reject_line(name, at.no, &line, at.terminated, bad)),
            }
        }
        if deferred.len() == before {
            v.defer_refunds = false;
        }
    }
    v.defer_refunds = false;
    let progress = ImportProgress {
        file: name.to_string(),
        lines,
        bytes,
        total_bytes,
        new_rejections: Vec::new(),
        done: true,
    };
    sink(rows, rejs, progress)
}

/// A line as read (with its newline) without its line end, and without a
/// byte-order mark on line 1; where the line end starts; whether it had a newline.
fn line_body(buf: &[u8], lineno: usize) -> (&[u8], usize, bool) {
    let terminated = buf.last() == Some(&b'\n');
    let mut end = buf.len();
    while end > 0 && (buf[end - 1] == b'\n' || buf[end - 1] == b'\r') {
        end -= 1;
    }
    let raw = if lineno == 1 {
        strip_bom(&buf[..end])
    } else {
        &buf[..end]
    };
    (raw, end, terminated)
}

fn reject_line(name: &str, lineno: usize, line: &str, terminated: bool, bad: Bad) -> Rejection {
    let (field, msg) = bad;
    let msg = if terminated {
        msg
    } else {
        format!("truncated last line (no newline at end of file): {msg}")
    };
    reject(name, lineno, line, (field, msg))
}

/// Pre-pass over partners.jsonl: every partner id in it, so that a parent may be
/// named before its own line.
fn prescan_partners(dir: &Path, v: &mut Validator) -> anyhow::Result<()> {
    let path = dir.join("partners.jsonl");
    let f =
        std::fs::File::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut reader = BufReader::new(f);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf)? == 0 {
            return Ok(());
        }
        if let Ok(line) = std::str::from_utf8(strip_bom(&buf)) {
            v.note_partner_id(line.trim_end());
        }
    }
}

/// Loads a data-set folder into memory, validating exactly like [`import_dir`]:
/// bad rows are returned in `rejected`, good rows kept. A missing file, or a
/// `program.json`/`plan.json` that cannot be used, is an error. Never reads `answers/`.
/// A repeated transaction id found by a compact id set (fingerprints only) says "given
/// earlier in this file"; this names the line it was first given on, as the import's
/// key build does, by reading the file again up to the repeat (only when there is one).
fn name_first_lines(dir: &Path, name: &str, rejected: &mut [Rejection]) {
    const EARLIER: &str = "(given earlier in this file)";
    let todo: Vec<usize> = rejected
        .iter()
        .enumerate()
        .filter(|(_, r)| r.file == name && r.field.is_some() && r.error.ends_with(EARLIER))
        .map(|(i, _)| i)
        .collect();
    if todo.is_empty() {
        return;
    }
    let Ok(text) = std::fs::read_to_string(dir.join(name)) else {
        return;
    };
    let lines: Vec<&str> = text.lines().collect();
    for i in todo {
        let r = &rejected[i];
        let Some(field) = r.field.clone() else {
            continue;
        };
        let Some(id) = serde_json::from_str::<serde_json::Value>(&r.raw)
            .ok()
            .and_then(|v| v.get(&field).and_then(|x| x.as_str()).map(str::to_string))
        else {
            continue;
        };
        let first = lines.iter().take(r.line.saturating_sub(1)).position(|l| {
            l.contains(id.as_str())
                && serde_json::from_str::<serde_json::Value>(l)
                    .ok()
                    .and_then(|v| v.get(&field).and_then(|x| x.as_str()).map(|x| x == id))
                    .unwrap_or(false)
        });
        if let Some(at) = first {
            let e = &mut rejected[i].error;
            let cut = e.len() - EARLIER.len();
            e.replace_range(cut.., &format!("(first given on line {})", at + 1));
        }
    }
}

pub fn load_dataset(dir: &Path) -> anyhow::Result<Loaded> {
    require_files(dir)?;
    let program =
        read_json_file(dir, "program.json", parse::program)?.map_err(|r| anyhow::anyhow!("{r}"))?;
    let plan =
        read_json_file(dir, "plan.json", parse::plan)?.map_err(|r| anyhow::anyhow!("{r}"))?;
    let mut v = Validator::default();
    v.program_currency = Some(program.currency.clone());
    let mut rejected = Vec::new();
    fn collect<T: Send + 'static>(
        dir: &Path,
        name: &str,
        v: &mut Validator,
        parse: fn(&mut Validator, &str, usize) -> Result<T, Bad>,
        rejected: &mut Vec<Rejection>,
    ) -> anyhow::Result<Vec<T>> {
        let mut out = Vec::new();
        let parse = push_to(parse);
        stream_jsonl(
            dir,
            name,
            v,
            &parse,
            usize::MAX,
            &mut Vec::new,
            &mut |rows, rejs, _| {
                out.extend(rows);
                rejected.extend(rejs);
                Ok(())
            },
        )?;
        sort_file_rejections(rejected, name);
        if name == "transactions.jsonl" {
            name_first_lines(dir, name, rejected);
        }
        Ok(out)
    }
    let tiers = collect(dir, "tiers.jsonl", &mut v, Validator::tier, &mut rejected)?;
    let products = collect(
        dir,
        "products.jsonl",
        &mut v,
        Validator::product,
        &mut rejected,
    )?;
    let discount_policy = collect(
        dir,
        "discount_policy.jsonl",
        &mut v,
        Validator::discount_policy,
        &mut rejected,
    )?;
    prescan_partners(dir, &mut v)?;
    let partners = collect(
        dir,
        "partners.jsonl",
        &mut v,
        Validator::partner,
        &mut rejected,
    )?;
    let tier_history = collect(
        dir,
        "tier_history.jsonl",
        &mut v,
        Validator::tier_history,
        &mut rejected,
    )?;
    let quotas = collect(dir, "quotas.jsonl", &mut v, Validator::quota, &mut rejected)?;
    let registrations = collect(
        dir,
        "registrations.jsonl",
        &mut v,
        Validator::registration,
        &mut rejected,
    )?;
    let transactions = collect(
        dir,
        "transactions.jsonl",
        &mut v,
        Validator::transaction,
        &mut rejected,
    )?;
    let commissions = collect(
        dir,
        "commissions.jsonl",
        &mut v,
        Validator::commission,
        &mut rejected,
    )?;
    let erp_invoices = match dir.join(ERP_FILE).exists() {
        true => Some(collect(
            dir,
            ERP_FILE,
            &mut v,
            Validator::erp_invoice,
            &mut rejected,
        )?),
        false => None,
    };
    Ok(Loaded {
        dataset: Dataset {
            program,
            plan,
            tiers,
            products,
            discount_policy,
            partners,
            tier_history,
            quotas,
            registrations,
            transactions,
            commissions,
            erp_invoices,
        },
        rejected,
    })
}

struct Run<'a> {
    store: &'a mut Store,
    report: ImportReport,
    progress: &'a mut dyn FnMut(&ImportProgress),
    /// Indexes built during the import (the transactions' key after a keyless load).
    built: Vec<(String, std::time::Duration)>,
}

impl Run<'_> {
    /// After a keyless load of the transactions ([`Store::drop_transaction_key`]):
    /// builds their key, and rejects the rows it removed (a repeated id, a refund of
    /// a sale stored nowhere) with their line, field and raw text. The checks count
    /// in the file's time; the index build is reported with the others.
    fn settle_transaction_key(
        &mut self,
        dir: &Path,
        name: &str,
        v: &mut Validator,
    ) -> anyhow::Result<()> {
        let t0 = Instant::now();
        let key = self.store.build_transaction_key()?;
        self.built.push(("idx_tx_id".to_string(), key.index));
        let mut removed: Vec<(usize, RowProblem)> = key
            .repeated
            .into_iter()
            .map(|(no, id, first)| {
                let field = "transaction_id";
                let first = Some(first);
                (no, RowProblem::Duplicate { field, id, first })
            })
            .chain(key.orphans.into_iter().map(|(no, id)| {
                let (field, what) = ("original_transaction_id", "transaction");
                (no, RowProblem::Unknown { field, what, id })
            }))
            .collect();
        removed.sort_by_key(|(no, _)| *no);
        let nos: Vec<usize> = removed.iter().map(|(no, _)| *no).collect();
        let lines = read_lines_numbered(dir, name, &nos)?;
        let mut rejs = Vec::with_capacity(removed.len());
        for ((no, problem), (raw, terminated)) in removed.into_iter().zip(lines) {
            // Not stored: a commission line naming it is checked against the cache.
            v.forget_transaction(&raw);
            rejs.push(reject_line(
                name,
                no,
                &raw,
                terminated,
                parse::refused(problem),
            ));
        }
        let n = rejs.len() as u64;
        let lines_read = match self.report.files.iter_mut().rev().find(|f| f.file == name) {
            Some(fr) => {
                fr.inserted = fr.inserted.saturating_sub(n);
                fr.rejected += n;
                self.report.key_checks = t0.elapsed().saturating_sub(key.index);
                fr.elapsed += self.report.key_checks;
                fr.read
            }
            None => 0,
        };
        self.rejections(&rejs)?;
        sort_file_rejections(&mut self.report.rejections, name);
        if !rejs.is_empty() {
            (self.progress)(&ImportProgress {
                file: name.to_string(),
                lines: lines_read,
                bytes: 0,
                total_bytes: 0,
                new_rejections: rejs,
                done: false,
            });
        }
        Ok(())
    }

    fn rejections(&mut self, rejs: &[Rejection]) -> anyhow::Result<()> {
        if rejs.is_empty() {
            return Ok(());
        }
        self.store.quarantine(rejs)?;
        self.report.rejected_total += rejs.len() as u64;
        let room = KEEP_REJECTIONS.saturating_sub(self.report.rejections.len());
        self.report
            .rejections
            .extend(rejs.iter().take(room).cloned());
        Ok(())
    }

    fn json_file<T>(
        &mut self,
        dir: &Path,
        name: &str,
        parse: fn(&str) -> Result<T, Bad>,
        write: fn(&mut Store, &T) -> crate::store::Result<UpsertCounts>,
    ) -> anyhow::Result<()> {
        let t0 = Instant::now();
        let mut fr = FileReport {
            file: name.to_string(),
            read: 1,
            ..Default::default()
        };
        let rejs = match read_json_file(dir, name, parse)? {
            Ok(row) => {
                fr.count(write(self.store, &row)?);
                Vec::new()
            }
            Err(r) => {
                fr.rejected = 1;
                vec![r]
            }
        };
        self.rejections(&rejs)?;
        fr.elapsed = t0.elapsed();
        (self.progress)(&ImportProgress {
            file: name.to_string(),
            lines: 1,
            bytes: 0,
            total_bytes: 0,
            new_rejections: rejs,
            done: true,
        });
        self.report.files.push(fr);
        Ok(())
    }

    /// Parses `name` on a second thread while this one writes the batches.
    fn jsonl_file<B: Batch>(
        &mut self,
        dir: &Path,
        name: &str,
        v: &mut Validator,
        parse: &ParseFn<B>,
        write: &WriteFn<'_, B>,
    ) -> anyhow::Result<()> {
        let t0 = Instant::now();
        // The rows this file may name (earlier files') are all committed now.
        if let Some(stored) = &mut v.stored {
            stored.refresh()?;
        }
        v.settle();
        let mut fr = FileReport {
            file: name.to_string(),
            ..Default::default()
        };
        type Msg<B> = (B, Vec<Rejection>, ImportProgress);
        // Eight batches in flight let the two threads ride out each other's stalls
        // (a WAL checkpoint on the writer, a slow stretch of lines on the parser):
        // measured 123k -> 138-156k transactions/s for the load, for ~20 MiB more.
        let (tx, rx) = mpsc::sync_channel::<Msg<B>>(8);
        // Written batches go back to the parsing thread, which clears and refills
        // them: the writing thread (the bottleneck) spends no time on freeing rows,
        // and a batch's memory is reused instead of allocated again.
        let (spent_tx, spent_rx) = mpsc::channel::<B>();
        // Refunds the store refused because their sale is not stored yet: tried
        // again once the whole file is written (a sale may come after its refund).
        let mut deferred: Vec<LineRef> = Vec::new();
        let result = std::thread::scope(|s| -> anyhow::Result<()> {
            let v = &mut *v;
            let parser = s.spawn(move || {
                let mut fresh = || match spent_rx.try_recv() {
                    Ok(mut b) => {
                        b.clear();
                        b
                    }
                    Err(_) => B::default(),
                };
                stream_jsonl(
                    dir,
                    name,
                    v,
                    parse,
                    BATCH,
                    &mut fresh,
                    &mut |rows, rejs, p| {
                        tx.send((rows, rejs, p))
                            .map_err(|_| anyhow::anyhow!("import stopped"))
                    },
                )
            });
            // `rx` is moved into this loop: if writing fails, dropping it stops the
            // parser (its `send` fails) instead of leaving it blocked.
            let written = (|| -> anyhow::Result<()> {
                for (rows, mut rejs, mut p) in rx {
                    let (c, refused) = write(self.store, &rows)?;
                    for (i, problem) in refused {
                        let Some(at) = rows.line(i) else { continue };
                        if waits_for_sale(&problem) {
                            deferred.push(at);
                        } else {
                            let raw = read_line_at(dir, name, at)?;
                            rejs.push(refusal(name, at, &raw, problem));
                        }
                    }
                    rejs.sort_by_key(|r| r.line);
                    let _ = spent_tx.send(rows);
                    fr.count(c);
                    fr.rejected += rejs.len() as u64;
                    fr.read = p.lines;
                    self.rejections(&rejs)?;
                    p.new_rejections = rejs;
                    (self.progress)(&p);
                }
                Ok(())
            })();
            let parsed = match parser.join() {
                Ok(r) => r,
                Err(_) => Err(anyhow::anyhow!("{name}: the parsing thread failed")),
            };
            // A write error explains a parser's "import stopped": report it first.
            written.and(parsed)
        });
        result?;
        // The set-aside refunds, repeating while that resolves more (a refund of a
        // refund); what is left names a sale that is nowhere: rejected.
        let mut last_pass = false;
        while !deferred.is_empty() {
            let before = deferred.len();
            let mut rejs = Vec::new();
            for at in std::mem::take(&mut deferred) {
                let raw = read_line_at(dir, name, at)?;
                let mut one = B::default();
                if let Err(bad) = parse(v, &raw, at.no, &mut one) {
                    rejs.push(reject_line(name, at.no, &raw, at.terminated, bad));
                    continue;
                }
                one.note_line(at);
                let (c, refused) = write(self.store, &one)?;
                fr.count(c);
                if let Some((_, problem)) = refused.into_iter().next() {
                    if waits_for_sale(&problem) && !last_pass {
                        deferred.push(at);
                    } else {
                        rejs.push(refusal(name, at, &raw, problem));
                        // Only refunds are set aside: this one is not stored.
                        v.forget_transaction(&raw);
                    }
                }
            }
            last_pass = deferred.len() == before;
            fr.rejected += rejs.len() as u64;
            self.rejections(&rejs)?;
            (self.progress)(&ImportProgress {
                file: name.to_string(),
                lines: fr.read,
                bytes: 0,
                total_bytes: 0,
                new_rejections: rejs,
                done: false,
            });
        }
        fr.elapsed = t0.elapsed();
        self.report.files.push(fr);
        sort_file_rejections(&mut self.report.rejections, name);
        Ok(())
    }
}

/// Puts the rejections of `name` (the last ones in `rejs`) in line order: a row
/// found wrong only once its file was written is listed where its line is.
fn sort_file_rejections(rejs: &mut [Rejection], name: &str) {
    let start = rejs
        .iter()
        .rposition(|r| r.file != name)
        .map_or(0, |i| i + 1);
    rejs[start..].sort_by_key(|r| r.line);
}

/// The raw text (as [`stream_jsonl`] reads it: lossy for bytes that are not UTF-8)
/// and whether it ended with a newline, of each line numbered in `nos` (ascending),
/// in one pass over the file.
fn read_lines_numbered(
    dir: &Path,
    name: &str,
    nos: &[usize],
) -> anyhow::Result<Vec<(String, bool)>> {
    let mut out = Vec::with_capacity(nos.len());
    if nos.is_empty() {
        return Ok(out);
    }
    let path = dir.join(name);
    let file =
        std::fs::File::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut buf = Vec::new();
    let mut wanted = nos.iter().peekable();
    let mut lineno = 0usize;
    while let Some(&&next) = wanted.peek() {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .with_context(|| format!("{name}:{}: cannot read the line again", lineno + 1))?;
        if n == 0 {
            anyhow::bail!(
                "{name}:{next}: the file ended before this line (changed during the import?)"
            );
        }
        lineno += 1;
        if lineno < next {
            continue;
        }
        wanted.next();
        let (raw, _, terminated) = line_body(&buf, lineno);
        out.push((String::from_utf8_lossy(raw).into_owned(), terminated));
    }
    Ok(out)
}

/// The raw text of a line (as read: lossy for bytes that are not UTF-8).
fn read_line_at(dir: &Path, name: &str, at: LineRef) -> anyhow::Result<String> {
    use std::io::{Seek, SeekFrom};
    let path = dir.join(name);
    let mut f =
        std::fs::File::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut buf = vec![0u8; at.len];
    f.seek(SeekFrom::Start(at.offset))
        .and_then(|_| f.read_exact(&mut buf))
        .with_context(|| format!("{name}:{}: cannot read the line again", at.no))?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// The rejection of a row the store refused (`raw`: its line).
fn refusal(name: &str, at: LineRef, raw: &str, problem: RowProblem) -> Rejection {
    reject_line(name, at.no, raw, at.terminated, parse::refused(problem))
}

/// A refund the store refused because its sale is not stored (yet): the sale may
/// come later in the file.
fn waits_for_sale(problem: &RowProblem) -> bool {
    matches!(
        problem,
        RowProblem::Unknown {
            field: "original_transaction_id",
            ..
        }
    )
}

fn seed_known(store: &Store, v: &mut Validator) -> anyhow::Result<()> {
    store.stored_ids("tiers", &mut |id| v.tiers.add_known(id))?;
    store.stored_ids("products", &mut |id| v.products.add_known(id))?;
    store.stored_ids("partners", &mut |id| v.partners.add_known(id))?;
    // Registration, transaction and commission ids are checked by the store
    // (`BulkMode::checks`); of this import's own, a bounded number is remembered
    // (`KNOWN_REFERENCES_CAP`) so the lines naming them need no lookup.
    Ok(())
}

/// Streams a data-set folder into the cache. Re-importing the same folder changes
/// nothing; a newer export updates the rows that changed. Bad rows are rejected,
/// quarantined (with their raw text) and listed in the report; good rows are kept.
/// A missing required file is an error before anything is written.
pub fn import_dir(
    store: &mut Store,
    dir: &Path,
    progress: &mut dyn FnMut(&ImportProgress),
) -> anyhow::Result<ImportReport> {
    let t0 = Instant::now();
    require_files(dir)?;
    // A cache holds one program: another one's export is refused (naming both).
    if let Ok(program) = read_json_file(dir, "program.json", parse::program)? {
        store.check_program_binding(&crate::store::binding::ProgramRef::from(&program))?;
    }
    // Recorded as running until it ends well: an interrupted import is seen
    // (`doctor`, `score`, the workbench) and a second one at once is refused.
    let source = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    store.begin_work("import", &source.display().to_string())?;
    let report = import_dir_in(store, dir, progress, t0)?;
    // Payee fields (docs/payouts.md) the partner rows do not hold.
    crate::payout::details::store_from_dir(store, dir)?;
    store.end_work("import")?;
    Ok(report)
}

fn import_dir_in(
    store: &mut Store,
    dir: &Path,
    progress: &mut dyn FnMut(&ImportProgress),
    t0: Instant,
) -> anyhow::Result<ImportReport> {
    let mut v = Validator::default();
    v.store_checks = true;
    // References to earlier files' rows are checked on the parsing thread through
    // a second connection (the writing thread is the busier one); an in-memory
    // cache has none, and its store checks them.
    v.stored = store.reader();
    let refs = v.stored.is_none();
    seed_known(store, &mut v)?;
    // Tables empty now get plain inserts (every row is new); others upsert.
    let mode = |table: &str| -> anyhow::Result<BulkMode> {
        Ok(BulkMode {
            fresh: store.bulk_table_is_empty(table)?,
            checks: true,
            refs,
        })
    };
    let (reg_mode, mut tx_mode, comm_mode) = (
        mode("registrations")?,
        mode("transactions")?,
        mode("commissions")?,
    );
    store.begin_bulk_import()?;
    // Into an empty table, transactions are loaded without their key index, built
    // once after the file (repeated ids and refunds of missing sales found then).
    let keyless = tx_mode.fresh && store.drop_transaction_key()?;
    // Rows another process wrote since the table was found empty: upsert.
    tx_mode.fresh &= keyless;
    let mut run = Run {
        store,
        report: ImportReport::default(),
        progress,
        built: Vec::new(),
    };
    let res = (|| -> anyhow::Result<()> {
        run.json_file(dir, "program.json", parse::program, Store::upsert_program)?;
        run.json_file(dir, "plan.json", parse::plan, Store::upsert_plan)?;
        v.program_currency = run.store.program()?.map(|p| p.currency);
        run.jsonl_file(
            dir,
            "tiers.jsonl",
            &mut v,
            &push_to(Validator::tier),
            &|s, rows| Ok((s.upsert_tiers(rows)?, Refused::new())),
        )?;
        run.jsonl_file(
            dir,
            "products.jsonl",
            &mut v,
            &push_to(Validator::product),
            &|s, rows| Ok((s.upsert_products(rows)?, Refused::new())),
        )?;
        run.jsonl_file(
            dir,
            "discount_policy.jsonl",
            &mut v,
            &push_to(Validator::discount_policy),
            &|s, rows| Ok((s.upsert_discount_policy(rows)?, Refused::new())),
        )?;
        prescan_partners(dir, &mut v)?;
        run.jsonl_file(
            dir,
            "partners.jsonl",
            &mut v,
            &push_to(Validator::partner),
            &|s, rows| Ok((s.upsert_partners(rows)?, Refused::new())),
        )?;
        run.jsonl_file(
            dir,
            "tier_history.jsonl",
            &mut v,
            &push_to(Validator::tier_history),
            &|s, rows| Ok((s.upsert_tier_history(rows)?, Refused::new())),
        )?;
        run.jsonl_file(
            dir,
            "quotas.jsonl",
            &mut v,
            &push_to(Validator::quota),
            &|s, rows| Ok((s.upsert_quotas(rows)?, Refused::new())),
        )?;
        run.jsonl_file(
            dir,
            "registrations.jsonl",
            &mut v,
            &|v, line, no, out: &mut Lined<Vec<PreparedRegistration>>| {
                out.rows.push(v.registration_prepared(line, no)?);
                Ok(())
            },
            &|s, b| s.write_registration_batch(&b.rows, reg_mode),
        )?;
        run.jsonl_file(
            dir,
            "transactions.jsonl",
            &mut v,
            &|v, line, no, out: &mut Lined<TxBatch>| v.transaction_into(line, no, &mut out.rows),
            &|s, b| match keyless {
                true => s.write_transaction_batch_keyless(
                    &b.rows,
                    &|i| b.lines.get(i).map_or(0, |l| l.no),
                    refs,
                ),
                false => s.write_transaction_batch(&b.rows, tx_mode),
            },
        )?;
        if keyless {
            run.settle_transaction_key(dir, "transactions.jsonl", &mut v)?;
        }
        v.forget_registrations();
        run.jsonl_file(
            dir,
            "commissions.jsonl",
            &mut v,
            &|v, line, no, out: &mut Lined<CommBatch>| v.commission_into(line, no, &mut out.rows),
            &|s, b| s.write_commission_batch(&b.rows, comm_mode),
        )?;
        if dir.join(ERP_FILE).exists() {
            run.jsonl_file(
                dir,
                ERP_FILE,
                &mut v,
                &push_to(Validator::erp_invoice),
                &|s, rows| Ok((s.upsert_erp_invoices(rows)?, Refused::new())),
            )?;
        }
        Ok(())
    })();
    // The id fingerprints are not needed for the index build: free them first.
    drop(v);
    // Rebuild indexes even when the import failed part-way.
    let built = run.store.end_bulk_import();
    res?;
    let built = built?;
    let mut report = run.report;
    let mut indexes = run.built;
    indexes.extend(built.indexes);
    report.index_build = indexes.iter().map(|(_, t)| *t).sum();
    report.indexes_rebuilt = indexes;
    report.checkpoint = built.checkpoint;
    report.elapsed = t0.elapsed();
    tracing::info!(
        dir = %dir.display(),
        accepted = report.accepted(),
        rejected = report.rejected_total,
        "import finished"
    );
    Ok(report)
}

#[cfg(test)]
mod bom_tests {
    #[test]
    fn a_leading_byte_order_mark_is_dropped() {
        assert_eq!(super::strip_bom(b"\xEF\xBB\xBF{\"a\":1}"), b"{\"a\":1}");
        assert_eq!(super::strip_bom(b"{\"a\":1}"), b"{\"a\":1}");
        assert_eq!(super::strip_bom(b""), b"");
    }
}
