//! `tierdesk payout …`: prepare, approve, release, export and show payout runs.

use std::io::Write;
use std::process::ExitCode;

use chrono::{NaiveDate, SecondsFormat, Utc};
use clap::Subcommand;
use serde_json::json;

use super::{Context, Format};
use crate::payout::{self, PayoutConfig};
use crate::workflow::Actor;

/// Payout runs: what each payee is owed, held, approved, exported as the bank's file.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  tierdesk payout prepare --period 2026-Q3 --format jsonl\n  \
    tierdesk --role manager --user mia payout approve PR-2026-Q3-001 --reason \"checked totals\"\n  \
    tierdesk payout release R00041 --run PR-2026-Q3-001 --reason \"call-back to the number on file\"\n  \
    tierdesk payout export PR-2026-Q3-001 --out run.ach\n  tierdesk payout show PR-2026-Q3-001"
)]
pub struct Args {
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Compute what each payee is owed for a period, with holds; prints the run id.
    Prepare {
        /// Fiscal quarter, e.g. 2026-Q3.
        #[arg(long)]
        period: String,
        /// The run's date (YYYY-MM-DD; default: the program's as-of date).
        #[arg(long)]
        run_date: Option<String>,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Approve a draft run (a manager who did not prepare it).
    Approve {
        run: String,
        #[arg(long)]
        reason: String,
    },
    /// Lift a payee's bank or tax holds in a run after a call-back.
    Release {
        payee: String,
        #[arg(long)]
        run: String,
        #[arg(long)]
        reason: String,
    },
    /// Write the bank file of an approved run (same bytes on every export).
    Export {
        run: String,
        #[arg(long)]
        out: std::path::PathBuf,
        /// ach (NACHA), sepa or pain001 (ISO 20022 pain.001.001.09); default: by currency.
        #[arg(long)]
        rail: Option<String>,
    },
    /// Benchmark on a synthetic cache: prepare and export a run of N payees, reconcile a
    /// camt.053 of N entries; prints the times and peak memory.
    Bench {
        #[arg(long, default_value_t = 100_000)]
        payees: usize,
    },
    /// A run's payees with status, holds, payment reference and bank state.
    Show {
        run: String,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn holds_json(h: &[payout::checks::Hold]) -> serde_json::Value {
    json!(h
        .iter()
        .map(|h| json!({"code": h.code, "reason": h.reason}))
        .collect::<Vec<_>>())
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let actor = Actor::new(ctx.user.clone(), ctx.role);
    let cfg = PayoutConfig::load(&ctx.paths.config_file)?;
    if let Cmd::Bench { payees } = args.command {
        return bench(payees);
    }
    let mut store = ctx.open_existing_store()?;
    let out = std::io::stdout();
    let mut out = out.lock();
    match args.command {
        Cmd::Prepare {
            period,
            run_date,
            format,
        } => {
            let run_date = match run_date {
                Some(d) => NaiveDate::parse_from_str(d.trim(), "%Y-%m-%d").map_err(|_| {
                    anyhow::anyhow!("--run-date {d:?} is not a date like 2026-09-30")
                })?,
                None => {
                    store
                        .program()?
                        .ok_or_else(|| {
                            anyhow::anyhow!("no program in the cache: import a data set first")
                        })?
                        .as_of
                }
            };
            let days = cfg.bank_change_hold_days.unwrap_or(30);
            let p = payout::prepare(
                &mut store,
                &actor,
                &period,
                run_date,
                days,
                cfg.prenote_wait(),
                &now(),
            )?;
            match format {
                Format::Jsonl => {
                    for r in &p.payees {
                        let mut v = json!({
                            "run_id": p.run.run_id,
                            "payee_partner_id": r.partner_id,
                            "amount": r.amount.to_string(),
                            "currency": p.run.currency,
                            "status": r.status,
                            "holds": holds_json(&r.holds),
                        });
                        if !r.warnings.is_empty() {
                            v["warnings"] = holds_json(&r.warnings);
                        }
                        writeln!(out, "{v}")?;
                    }
                }
                Format::Table => {
                    writeln!(
                        out,
                        "{:<10} {:>14} {:<16} holds",
                        "payee", "amount", "status"
                    )?;
                    for r in &p.payees {
                        let codes: Vec<&str> = r.holds.iter().map(|h| h.code.as_str()).collect();
                        writeln!(
                            out,
                            "{:<10} {:>14} {:<16} {}",
                            crate::text::sanitize(&r.partner_id),
                            r.amount.to_string(),
                            r.status,
                            codes.join(",")
                        )?;
                    }
                    let n = |s: &str| p.payees.iter().filter(|r| r.status == s).count();
                    writeln!(
                        out,
                        "run {}: {} payable, {} held, {} carried forward",
                        p.run.run_id,
                        n("payable"),
                        n("held"),
                        n("carried_forward")
                    )?;
                }
            }
            eprintln!("{}", p.run.run_id);
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Approve { run, reason } => {
            let r = payout::approve(&mut store, &actor, &run, &reason, &now())?;
            writeln!(out, "{} approved by {}", r.run_id, actor.user)?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Release { payee, run, reason } => {
            let p = payout::release(&mut store, &actor, &run, &payee, &reason, &now())?;
            writeln!(out, "{} in {}: {}", p.partner_id, run, p.status)?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Export {
            run,
            out: path,
            rail,
        } => {
            let e =
                payout::export::export(&mut store, &actor, &cfg, &run, rail.as_deref(), &now())?;
            std::fs::write(&path, &e.bytes)
                .map_err(|err| anyhow::anyhow!("cannot write {}: {err}", path.display()))?;
            let pre = match e.prenotes {
                0 => String::new(),
                n => format!(" and {}", crate::plural::n(n as i128, "prenote")),
            };
            writeln!(
                out,
                "{}: {}{pre}, {} {} ({}) written to {}",
                run,
                crate::plural::n(e.count as i128, "payment"),
                e.total,
                e.currency,
                e.rail,
                path.display()
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Bench { .. } => Ok(ExitCode::SUCCESS),
        Cmd::Show { run, format } => {
            let r = store
                .payout_run(&run)?
                .ok_or_else(|| anyhow::anyhow!("no payout run {run}"))?;
            let payees = store.payout_run_payees(&run)?;
            match format {
                Format::Jsonl => {
                    for p in &payees {
                        writeln!(
                            out,
                            "{}",
                            json!({
                                "run_id": r.run_id, "run_state": r.state,
                                "payee_partner_id": p.partner_id, "amount": p.amount.to_string(),
                                "currency": p.currency, "status": p.status,
                                "holds": holds_json(&p.holds), "state": p.state,
                                "payment_ref": p.payment_ref, "return_code": p.return_code,
                            })
                        )?;
                    }
                }
                Format::Table => {
                    writeln!(
                        out,
                        "run {} ({}), period {}, prepared by {}{}",
                        r.run_id,
                        r.state,
                        r.period,
                        r.prepared_by,
                        r.approved_by
                            .as_deref()
                            .map(|a| format!(", approved by {a}"))
                            .unwrap_or_default()
                    )?;
                    for p in &payees {
                        let codes: Vec<&str> = p.holds.iter().map(|h| h.code.as_str()).collect();
                        writeln!(
                            out,
                            "{:<10} {:>14} {:<16} {:<9} {:<16} {} {}",
                            crate::text::sanitize(&p.partner_id),
                            p.amount.to_string(),
                            p.status,
                            p.state,
                            p.payment_ref.as_deref().unwrap_or("-"),
                            p.return_code.as_deref().unwrap_or(""),
                            codes.join(",")
                        )?;
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Peak resident memory of this process (VmHWM), in MiB, where /proc has it.
fn peak_mib() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: f64 = s
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

fn bench(n: usize) -> anyhow::Result<ExitCode> {
    use crate::config::Role;
    use std::time::Instant;
    let dir = tempfile_dir()?;
    let db = dir.join("bench.db");
    let mut store = crate::store::Store::open(&db)?;
    let t = Instant::now();
    store.payout_bench_seed(n)?;
    println!(
        "seed        {n} payees in {:.2} s",
        t.elapsed().as_secs_f64()
    );
    let preparer = Actor::new("bench-preparer", Role::Analyst);
    let manager = Actor::new("bench-manager", Role::Manager);
    let cfg = PayoutConfig {
        company_name: Some("Bench Co".into()),
        company_id: Some("1234567890".into()),
        odfi_routing: Some("011000015".into()),
        odfi_name: Some("BENCH BANK".into()),
        immediate_destination: Some("011000015".into()),
        immediate_origin: Some("1234567890".into()),
        ..PayoutConfig::default()
    };
    let date = NaiveDate::from_ymd_opt(2026, 9, 30).unwrap_or_default();
    let t = Instant::now();
    let p = payout::prepare(&mut store, &preparer, "2026-Q3", date, 30, None, &now())?;
    let prepare_s = t.elapsed().as_secs_f64();
    payout::approve(&mut store, &manager, &p.run.run_id, "bench", &now())?;
    let t = Instant::now();
    let e = payout::export::export(
        &mut store,
        &preparer,
        &cfg,
        &p.run.run_id,
        Some("ach"),
        &now(),
    )?;
    let export_s = t.elapsed().as_secs_f64();
    println!(
        "prepare     {} payees ({} payable) in {prepare_s:.2} s; export {} entries ({} bytes) in {export_s:.2} s; together {:.2} s",
        p.payees.len(),
        p.payees.iter().filter(|r| r.status == "payable").count(),
        e.count,
        e.bytes.len(),
        prepare_s + export_s
    );
    // A camt.053 with one booked debit per payment, by EndToEndId = trace number.
    let payees = store.payout_run_payees(&p.run.run_id)?;
    let mut xml = String::from("<?xml version=\"1.0\"?>\n<Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:camt.053.001.08\"><BkToCstmrStmt><Stmt>\n");
    for r in payees.iter().filter(|r| r.payment_ref.is_some()) {
        xml.push_str(&format!(
            "<Ntry><Amt Ccy=\"USD\">{}</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts><ValDt><Dt>2026-10-01</Dt></ValDt><NtryDtls><TxDtls><Refs><EndToEndId>{}</EndToEndId></Refs></TxDtls></NtryDtls></Ntry>\n",
            r.amount,
            r.payment_ref.as_deref().unwrap_or("")
        ));
    }
    xml.push_str("</Stmt></BkToCstmrStmt></Document>\n");
    let t = Instant::now();
    let res = payout::reconcile::reconcile(
        &mut store,
        &preparer,
        &[("bench.xml".to_string(), xml.into_bytes())],
        3,
        &now(),
    )?;
    let rec_s = t.elapsed().as_secs_f64();
    println!(
        "reconcile   {} entries ({} matched) in {rec_s:.2} s",
        res.len(),
        res.iter().filter(|r| r.class == "matched").count()
    );
    if let Some(m) = peak_mib() {
        println!("peak memory {m:.0} MiB");
    }
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(ExitCode::SUCCESS)
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let d = std::env::temp_dir().join(format!("tierdesk-payout-bench-{}", std::process::id()));
    std::fs::create_dir_all(&d)?;
    Ok(d)
}
