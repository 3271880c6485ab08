//! Getting data out of the workbench: the queue as filtered and sorted now as a CSV
//! file, and a transaction id onto the terminal's clipboard (OSC 52).

use std::io::Write;
use std::path::PathBuf;

use base64::Engine as _;
use rust_decimal::Decimal;

#[cfg(test)]
use crate::store::queue::QueueSort;
use crate::store::queue::{PageDir, QueueFilter, QueueOrder, QueueRow};
use crate::store::Store;

/// Writes `text` to the clipboard of the terminal (OSC 52; terminals that do not support
/// it ignore the sequence). Only the sanitized text is sent.
pub fn osc52(out: &mut impl Write, text: &str) {
    let clean = crate::text::sanitize(text);
    let b64 = base64::engine::general_purpose::STANDARD.encode(clean.as_bytes());
    let _ = write!(out, "\x1b]52;c;{b64}\x07");
    let _ = out.flush();
}

const HEADER: [&str; 14] = [
    "transaction_id",
    "score",
    "kinds",
    "partner_id",
    "partner_name",
    "tier",
    "customer",
    "amount",
    "currency",
    "at_stake",
    "state",
    "action",
    "proposed_amount",
    "decided_amount",
];

fn record(r: &QueueRow) -> [String; 14] {
    [
        r.transaction_id.clone(),
        format!("{:.4}", r.score),
        r.kinds.join(" "),
        r.partner_id.clone(),
        crate::text::sanitize(&r.partner_name).into_owned(),
        crate::text::sanitize(&r.tier).into_owned(),
        crate::text::sanitize(&r.customer).into_owned(),
        r.amount.clone(),
        r.currency.clone(),
        Decimal::new(r.at_stake_minor, 2).to_string(),
        r.status.clone(),
        r.action.clone().unwrap_or_default(),
        r.proposed_amount.clone().unwrap_or_default(),
        r.decided_amount.clone().unwrap_or_default(),
    ]
}

/// Writes every row of the queue under `filter` in `sort` order to `path`.
pub fn write_csv(
    store: &Store,
    filter: &QueueFilter,
    sort: impl Into<QueueOrder>,
    path: &std::path::Path,
) -> anyhow::Result<usize> {
    let sort: QueueOrder = sort.into();
    let mut w = csv::Writer::from_path(path)?;
    w.write_record(HEADER)?;
    let mut n = 0;
    let mut cursor = None;
    loop {
        let page = store.queue_page(filter, sort, cursor.as_ref(), PageDir::After, 1000)?;
        for r in &page {
            w.write_record(record(r))?;
        }
        n += page.len();
        match page.last() {
            Some(last) if page.len() == 1000 => cursor = Some(last.cursor()),
            _ => break,
        }
    }
    w.flush()?;
    Ok(n)
}

/// The export the `E` key asks for: a new file in the working folder, named by time.
pub fn queue_csv(store: &Store, filter: &QueueFilter, sort: QueueOrder) -> Result<String, String> {
    let name = format!(
        "tierdesk-queue-{}.csv",
        chrono::Utc::now().format("%Y%m%d-%H%M%S")
    );
    let path = PathBuf::from(name);
    match write_csv(store, filter, sort, &path) {
        Ok(n) => Ok(format!("exported {n} rows to {}", path.display())),
        Err(e) => Err(format!("export to {}: {e:#}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn osc52_carries_the_id_in_base64_without_escape_codes() {
        let mut out = Vec::new();
        osc52(&mut out, "T-1\x1b]0;x\x07");
        let s = String::from_utf8(out).unwrap();
        assert_eq!(
            s,
            format!(
                "\x1b]52;c;{}\x07",
                base64::engine::general_purpose::STANDARD.encode("T-1]0;x")
            )
        );
    }

    #[test]
    fn the_csv_has_every_queue_row_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("c.db")).unwrap();
        let n = crate::store::queue::synthetic::fill(
            &mut s,
            &crate::store::queue::synthetic::Options {
                transactions: 3000,
                seed: 5,
                currency: "USD".into(),
                anomaly_rate: 0.5,
            },
        )
        .unwrap();
        let path = dir.path().join("q.csv");
        let written = write_csv(&s, &QueueFilter::default(), QueueSort::Rank, &path).unwrap();
        assert_eq!(written, n);
        let mut rdr = csv::Reader::from_path(&path).unwrap();
        let ids: Vec<String> = rdr.records().map(|r| r.unwrap()[0].to_string()).collect();
        let want: Vec<String> = s
            .queue_page(
                &QueueFilter::default(),
                QueueSort::Rank,
                None,
                PageDir::After,
                100_000,
            )
            .unwrap()
            .into_iter()
            .map(|r| r.transaction_id)
            .collect();
        assert_eq!(ids, want);
    }
}
