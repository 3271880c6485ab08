//! Writes a generated program as a data-set folder (docs/dataset.md), streaming
//! each file through a buffered writer.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::Context as _;
use serde::Serialize;

use super::Generated;

fn write_json<T: Serialize>(dir: &Path, name: &str, v: &T) -> anyhow::Result<()> {
    let p = dir.join(name);
    let f = File::create(&p).with_context(|| format!("cannot create {}", p.display()))?;
    let mut w = BufWriter::new(f);
    serde_json::to_writer_pretty(&mut w, v).with_context(|| format!("writing {}", p.display()))?;
    w.write_all(b"\n")?;
    w.flush()
        .with_context(|| format!("writing {}", p.display()))?;
    Ok(())
}

fn write_jsonl<'a, T: Serialize + 'a>(
    dir: &Path,
    name: &str,
    rows: impl IntoIterator<Item = &'a T>,
) -> anyhow::Result<()> {
    let p = dir.join(name);
    let f = File::create(&p).with_context(|| format!("cannot create {}", p.display()))?;
    let mut w = BufWriter::with_capacity(1 << 20, f);
    for r in rows {
        serde_json::to_writer(&mut w, r).with_context(|| format!("writing {}", p.display()))?;
        w.write_all(b"\n")?;
    }
    w.flush()
        .with_context(|| format!("writing {}", p.display()))?;
    Ok(())
}

/// Writes the data set to `dir` (created if needed); with `with_answers`, also
/// `answers/labels.jsonl` and `answers/expected_commissions.jsonl` for tests and
/// benchmarks (the product never reads them).
pub fn export(g: &Generated, dir: &Path, with_answers: bool) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let ds = &g.dataset;
    write_json(dir, "program.json", &ds.program)?;
    write_json(dir, "plan.json", &ds.plan)?;
    write_jsonl(dir, "tiers.jsonl", &ds.tiers)?;
    write_jsonl(dir, "products.jsonl", &ds.products)?;
    write_jsonl(dir, "discount_policy.jsonl", &ds.discount_policy)?;
    // Partners with the payee fields of version 2 of the format: the legal name, a tax
    // form on file for most (received when they joined), a checking account.
    let partners: Vec<serde_json::Value> = ds
        .partners
        .iter()
        .map(|p| {
            let mut v = serde_json::to_value(p).unwrap_or_default();
            if let Some(o) = v.as_object_mut() {
                o.insert("legal_name".into(), p.name.clone().into());
                let on_file = p.partner_id.bytes().map(u32::from).sum::<u32>() % 12 != 0;
                o.insert(
                    "tax_form".into(),
                    match on_file {
                        // A US payee files a W-9, a foreign business a W-8BEN-E.
                        true => serde_json::json!({
                            "kind": match p.country.as_deref() {
                                Some("US") | None => "W-9",
                                Some(_) => "W-8BEN-E",
                            },
                            "received_on": p.joined_on,
                        }),
                        false => serde_json::Value::Null,
                    },
                );
                if let Some(b) = o.get_mut("bank_account").and_then(|b| b.as_object_mut()) {
                    b.insert("account_type".into(), "checking".into());
                }
            }
            v
        })
        .collect();
    write_jsonl(dir, "partners.jsonl", &partners)?;
    write_jsonl(dir, "tier_history.jsonl", &ds.tier_history)?;
    write_jsonl(dir, "quotas.jsonl", &ds.quotas)?;
    write_jsonl(dir, "registrations.jsonl", &ds.registrations)?;
    write_jsonl(dir, "transactions.jsonl", &ds.transactions)?;
    write_jsonl(dir, "commissions.jsonl", &ds.commissions)?;
    if let Some(erp) = &ds.erp_invoices {
        write_jsonl(dir, crate::import::ERP_FILE, erp)?;
    }
    if with_answers {
        let a = dir.join("answers");
        std::fs::create_dir_all(&a).with_context(|| format!("cannot create {}", a.display()))?;
        write_jsonl(&a, "labels.jsonl", &g.labels)?;
        write_jsonl(&a, "expected_commissions.jsonl", &g.expected_commissions)?;
    }
    Ok(())
}
