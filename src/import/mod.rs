//! Data-set import (the format of `shared/spec/dataset.md`).
//!
//! [`load_dataset`] reads a folder into memory (for `--dataset DIR` commands);
//! the streaming import into the cache lives beside it.
//!
//! NOTE: this first version stops at the first bad line; the foundation issue
//! replaces it with per-row validation, quarantine and reporting.

use std::io::BufRead;
use std::path::Path;

use anyhow::Context as _;
use serde::de::DeserializeOwned;

use crate::model::*;

/// A rejected input row: where it was, which field, what is wrong, and the raw text.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub file: String,
    pub line: usize,
    pub field: Option<String>,
    pub error: String,
    pub raw: String,
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

fn read_json<T: DeserializeOwned>(dir: &Path, name: &str) -> anyhow::Result<T> {
    let p = dir.join(name);
    let text = std::fs::read_to_string(&p)
        .with_context(|| format!("missing required file {}", p.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{name}: invalid"))
}

fn read_jsonl<T: DeserializeOwned>(dir: &Path, name: &str) -> anyhow::Result<Vec<T>> {
    let p = dir.join(name);
    let f = std::fs::File::open(&p)
        .with_context(|| format!("missing required file {}", p.display()))?;
    let mut out = Vec::new();
    for (i, line) in std::io::BufReader::new(f).lines().enumerate() {
        let line = line.with_context(|| format!("{name}:{}: unreadable", i + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        out.push(serde_json::from_str(&line).with_context(|| format!("{name}:{}", i + 1))?);
    }
    Ok(out)
}

/// Loads a data-set folder into memory. Never reads `answers/`.
pub fn load_dataset(dir: &Path) -> anyhow::Result<Loaded> {
    let dataset = Dataset {
        program: read_json(dir, "program.json")?,
        plan: read_json(dir, "plan.json")?,
        tiers: read_jsonl(dir, "tiers.jsonl")?,
        products: read_jsonl(dir, "products.jsonl")?,
        discount_policy: read_jsonl(dir, "discount_policy.jsonl")?,
        partners: read_jsonl(dir, "partners.jsonl")?,
        tier_history: read_jsonl(dir, "tier_history.jsonl")?,
        quotas: read_jsonl(dir, "quotas.jsonl")?,
        registrations: read_jsonl(dir, "registrations.jsonl")?,
        transactions: read_jsonl(dir, "transactions.jsonl")?,
        commissions: read_jsonl(dir, "commissions.jsonl")?,
    };
    Ok(Loaded {
        dataset,
        rejected: Vec::new(),
    })
}
