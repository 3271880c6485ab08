//! Rows as the store writes them, and batches of them for a bulk import.
//!
//! [`TxRow`] and [`CommRow`] are borrowed views: every text already in its stored
//! form. The import parses a line straight into a view of slices of that line and
//! appends it to a [`TxBatch`] / [`CommBatch`], which keep all the texts of a batch in
//! one buffer: no allocation per field or per row once a batch has grown, and a
//! written batch is cleared and filled again.

use sha2::{Digest, Sha256};

use crate::model::{CommissionRole, TransactionKind};

/// One transaction with every text in the form the store writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxRow<'a> {
    pub transaction_id: &'a str,
    pub kind: TransactionKind,
    pub original_transaction_id: Option<&'a str>,
    pub partner_id: &'a str,
    pub registration_id: Option<&'a str>,
    pub customer_name: &'a str,
    pub sku: &'a str,
    pub quantity: i64,
    /// Decimal texts as `Decimal` displays them.
    pub unit_list_price: &'a str,
    pub unit_net_price: &'a str,
    pub amount: &'a str,
    /// `amount` in minor units (for sorting and filtering).
    pub amount_minor: i64,
    pub currency: &'a str,
    /// `YYYY-MM-DD`.
    pub closed_on: &'a str,
    /// RFC 3339 in UTC as `format_timestamp` writes it.
    pub submitted_at: &'a str,
    pub invoice_number: &'a str,
    pub notes: Option<&'a str>,
}

/// A decimal's text (as `Decimal` displays it) normalised like `Decimal::normalize`:
/// no trailing fractional zeros, no negative zero.
pub(super) fn normalized_decimal_text(s: &str) -> &str {
    let mut t = s;
    if t.contains('.') {
        t = t.trim_end_matches('0').trim_end_matches('.');
    }
    if t == "-0" {
        "0"
    } else {
        t
    }
}

impl TxRow<'_> {
    /// SHA-256 of a canonical serialisation: every field in a fixed order,
    /// length-prefixed, decimals normalised (`"230.0"` == `"230.00"`). It changes
    /// exactly when the PRM changes something about the row.
    pub fn hash(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        let mut field = |s: &str| {
            h.update((s.len() as u64).to_le_bytes());
            h.update(s.as_bytes());
        };
        const NULL: &str = "\u{0}null";
        field(self.transaction_id);
        field(self.kind.as_str());
        field(self.original_transaction_id.unwrap_or(NULL));
        field(self.partner_id);
        field(self.registration_id.unwrap_or(NULL));
        field(self.customer_name);
        field(self.sku);
        let mut qty = [0u8; 20];
        field(itoa(self.quantity, &mut qty));
        field(normalized_decimal_text(self.unit_list_price));
        field(normalized_decimal_text(self.unit_net_price));
        field(normalized_decimal_text(self.amount));
        field(self.currency);
        field(self.closed_on);
        field(self.submitted_at);
        field(self.invoice_number);
        field(self.notes.unwrap_or(NULL));
        h.finalize().into()
    }

    /// [`TxRow::hash`] in lower-case hex (the `row_hash` column).
    pub fn hash_hex(&self) -> String {
        String::from_utf8_lossy(&hex32(&self.hash())).into_owned()
    }
}

/// `n` in decimal, written into `buf` (20 bytes hold any `i64`).
fn itoa(n: i64, buf: &mut [u8; 20]) -> &str {
    let mut i = buf.len();
    let mut m = n.unsigned_abs();
    loop {
        i -= 1;
        buf[i] = b'0' + (m % 10) as u8;
        m /= 10;
        if m == 0 {
            break;
        }
    }
    if n < 0 {
        // 19 digits at most for |i64::MIN|: there is room for the sign.
        i -= 1;
        buf[i] = b'-';
    }
    std::str::from_utf8(&buf[i..]).unwrap_or("0")
}

/// A hash in lower-case hex (as `hex::encode`, without building a `String`).
fn hex32(bytes: &[u8; 32]) -> [u8; 64] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 64];
    for (k, b) in bytes.iter().enumerate() {
        out[2 * k] = DIGITS[usize::from(b >> 4)];
        out[2 * k + 1] = DIGITS[usize::from(b & 15)];
    }
    out
}

/// Why the store refused a row of an import's batch (checks that need every
/// stored id; see `BulkMode`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowProblem {
    /// Its key was already written by this import: a repeated line.
    /// `first`: the line the id was first given on, when the store knows it.
    Duplicate {
        field: &'static str,
        id: String,
        first: Option<usize>,
    },
    /// It names a row that is not stored: the field, what it names, the id.
    Unknown {
        field: &'static str,
        what: &'static str,
        id: String,
    },
}

/// One PRM commission line with its amount as `Decimal` displays it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommRow<'a> {
    pub commission_id: &'a str,
    pub transaction_id: &'a str,
    pub payee_partner_id: &'a str,
    pub role: CommissionRole,
    pub amount: &'a str,
    pub period: &'a str,
}

/// Texts of many rows in one buffer; each row's fields end at recorded offsets.
#[derive(Debug, Default)]
struct Texts {
    buf: String,
    ends: Vec<usize>,
}

impl Texts {
    fn clear(&mut self) {
        self.buf.clear();
        self.ends.clear();
    }
    fn push(&mut self, s: &str) {
        self.buf.push_str(s);
        self.ends.push(self.buf.len());
    }
    /// Field `k` (0-based over every field pushed).
    fn get(&self, k: usize) -> &str {
        let start = if k == 0 { 0 } else { self.ends[k - 1] };
        self.buf.get(start..self.ends[k]).unwrap_or("")
    }
}

/// Text fields of a transaction in a [`TxBatch`]: the 14 texts, then the hash.
const TX_TEXTS: usize = 15;

#[derive(Debug, Clone, Copy)]
struct TxFixed {
    kind: TransactionKind,
    quantity: i64,
    amount_minor: i64,
    /// Bit 0: no original transaction; bit 1: no registration; bit 2: no notes.
    nulls: u8,
}

/// A batch of transactions for the store, texts in one buffer, each with its row hash.
#[derive(Debug, Default)]
pub struct TxBatch {
    texts: Texts,
    fixed: Vec<TxFixed>,
}

impl TxBatch {
    pub fn len(&self) -> usize {
        self.fixed.len()
    }
    pub fn is_empty(&self) -> bool {
        self.fixed.is_empty()
    }
    pub fn clear(&mut self) {
        self.texts.clear();
        self.fixed.clear();
    }

    /// Appends `r` and its row hash.
    pub fn push(&mut self, r: &TxRow<'_>) {
        let hex = hex32(&r.hash());
        let hex = std::str::from_utf8(&hex).unwrap_or_default();
        for text in [
            r.transaction_id,
            r.original_transaction_id.unwrap_or(""),
            r.partner_id,
            r.registration_id.unwrap_or(""),
            r.customer_name,
            r.sku,
            r.unit_list_price,
            r.unit_net_price,
            r.amount,
            r.currency,
            r.closed_on,
            r.submitted_at,
            r.invoice_number,
            r.notes.unwrap_or(""),
            hex,
        ] {
            self.texts.push(text);
        }
        self.fixed.push(TxFixed {
            kind: r.kind,
            quantity: r.quantity,
            amount_minor: r.amount_minor,
            nulls: u8::from(r.original_transaction_id.is_none())
                | u8::from(r.registration_id.is_none()) << 1
                | u8::from(r.notes.is_none()) << 2,
        });
    }

    /// Row `i` and its row hash (hex).
    pub fn get(&self, i: usize) -> (TxRow<'_>, &str) {
        let f = self.fixed[i];
        let base = i * TX_TEXTS;
        let s = |k: usize| self.texts.get(base + k);
        let opt = |k: usize, bit: u8| (f.nulls & bit == 0).then(|| s(k));
        (
            TxRow {
                transaction_id: s(0),
                kind: f.kind,
                original_transaction_id: opt(1, 1),
                partner_id: s(2),
                registration_id: opt(3, 2),
                customer_name: s(4),
                sku: s(5),
                quantity: f.quantity,
                unit_list_price: s(6),
                unit_net_price: s(7),
                amount: s(8),
                amount_minor: f.amount_minor,
                currency: s(9),
                closed_on: s(10),
                submitted_at: s(11),
                invoice_number: s(12),
                notes: opt(13, 4),
            },
            s(14),
        )
    }

    pub fn iter(&self) -> impl Iterator<Item = (TxRow<'_>, &str)> {
        (0..self.len()).map(|i| self.get(i))
    }
}

/// Text fields of a commission line in a [`CommBatch`].
const COMM_TEXTS: usize = 5;

/// A batch of commission lines for the store, texts in one buffer.
#[derive(Debug, Default)]
pub struct CommBatch {
    texts: Texts,
    roles: Vec<CommissionRole>,
}

impl CommBatch {
    pub fn len(&self) -> usize {
        self.roles.len()
    }
    pub fn is_empty(&self) -> bool {
        self.roles.is_empty()
    }
    pub fn clear(&mut self) {
        self.texts.clear();
        self.roles.clear();
    }
    pub fn push(&mut self, r: &CommRow<'_>) {
        for text in [
            r.commission_id,
            r.transaction_id,
            r.payee_partner_id,
            r.amount,
            r.period,
        ] {
            self.texts.push(text);
        }
        self.roles.push(r.role);
    }
    pub fn get(&self, i: usize) -> CommRow<'_> {
        let base = i * COMM_TEXTS;
        let s = |k: usize| self.texts.get(base + k);
        CommRow {
            commission_id: s(0),
            transaction_id: s(1),
            payee_partner_id: s(2),
            role: self.roles[i],
            amount: s(3),
            period: s(4),
        }
    }
    pub fn iter(&self) -> impl Iterator<Item = CommRow<'_>> {
        (0..self.len()).map(|i| self.get(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row<'a>(id: &'a str, notes: Option<&'a str>) -> TxRow<'a> {
        TxRow {
            transaction_id: id,
            kind: TransactionKind::Sale,
            original_transaction_id: None,
            partner_id: "P1",
            registration_id: Some("R1"),
            customer_name: "Acme Ltd",
            sku: "S1",
            quantity: -3,
            unit_list_price: "10.0",
            unit_net_price: "9.50",
            amount: "-28.50",
            amount_minor: -2850,
            currency: "USD",
            closed_on: "2024-10-01",
            submitted_at: "2024-10-02T08:00:00Z",
            invoice_number: "INV-1",
            notes,
        }
    }

    #[test]
    fn a_batch_gives_back_what_was_pushed() {
        let mut b = TxBatch::default();
        let rows = [row("T1", None), row("T2", Some("")), row("", Some("n"))];
        for r in &rows {
            b.push(r);
        }
        assert_eq!(b.len(), 3);
        for (i, r) in rows.iter().enumerate() {
            let (got, hash) = b.get(i);
            assert_eq!(&got, r);
            assert_eq!(hash, r.hash_hex());
        }
        // None and "" are different rows (and hashes).
        assert_ne!(b.get(0).0.notes, b.get(1).0.notes);
        assert_ne!(rows[0].hash(), rows[1].hash());
        b.clear();
        assert!(b.is_empty());
        b.push(&rows[2]);
        assert_eq!(b.get(0).0, rows[2]);

        let mut c = CommBatch::default();
        let line = CommRow {
            commission_id: "C1",
            transaction_id: "T1",
            payee_partner_id: "P1",
            role: CommissionRole::Override,
            amount: "1.5",
            period: "2024-Q4",
        };
        c.push(&line);
        c.push(&CommRow { amount: "", ..line });
        assert_eq!(c.get(0), line);
        assert_eq!(c.get(1).amount, "");
        assert_eq!(c.iter().count(), 2);
    }

    #[test]
    fn itoa_writes_every_i64() {
        for n in [0, 7, -7, 10, -10, 123456789, i64::MAX, i64::MIN] {
            let mut buf = [0u8; 20];
            assert_eq!(itoa(n, &mut buf), n.to_string());
        }
    }

    #[test]
    fn hash_normalises_decimals_only() {
        let a = row("T1", None);
        let b = TxRow {
            unit_list_price: "10.00",
            amount: "-28.5",
            ..a
        };
        assert_eq!(a.hash(), b.hash());
        let c = TxRow {
            customer_name: "Acme Ltd.",
            ..a
        };
        assert_ne!(a.hash(), c.hash());
    }

    #[test]
    fn hex_is_lower_case_like_hex_encode() {
        for start in [0u8, 32, 64, 96, 128, 160, 192, 224] {
            let bytes: [u8; 32] = std::array::from_fn(|k| start + k as u8);
            assert_eq!(hex32(&bytes).to_vec(), hex::encode(bytes).into_bytes());
        }
    }

    #[test]
    fn text_normalisation_matches_decimal_normalize() {
        for s in [
            "0",
            "0.0",
            "0.00",
            "-0.0",
            "1520.0",
            "1520",
            "100",
            "0.50",
            "-150",
            "-0.05",
            "26873.47",
            "10.10",
            "1000000.000",
            "7.000001",
            "-12.340",
        ] {
            let d = rust_decimal::Decimal::from_str_exact(s).unwrap();
            assert_eq!(
                normalized_decimal_text(&d.to_string()),
                d.normalize().to_string(),
                "{s}"
            );
        }
    }
}
