//! SQL of payout runs, payee details and bank files (issue 20).

use std::collections::BTreeMap;

use chrono::NaiveDate;
use rusqlite::{params, OptionalExtension};
use rust_decimal::Decimal;

use super::workflow::WfDb;
use super::{Result, Store, StoreError};
use crate::model::BankAccount;
use crate::payout::checks::{Hold, Payee};
use crate::payout::details::{PayeeDetails, ProgramPayout};
use crate::payout::payable::{Line, PayeeResult, TxDecision};

fn corrupt(what: &str, v: &str) -> StoreError {
    StoreError::Corrupt(format!("{what}: {v:?}"))
}

fn dec(what: &str, s: &str) -> Result<Decimal> {
    crate::money::parse_money(s).ok_or_else(|| corrupt(what, s))
}

fn opt_date(s: Option<String>) -> Option<NaiveDate> {
    s.and_then(|d| NaiveDate::parse_from_str(&d, "%Y-%m-%d").ok())
}

/// A run's header.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRow {
    pub run_id: String,
    pub period: String,
    pub run_date: NaiveDate,
    pub currency: String,
    pub state: String,
    pub prepared_by: String,
    pub prepared_at: String,
    pub approved_by: Option<String>,
    pub approved_at: Option<String>,
    pub rail: Option<String>,
    pub exported_at: Option<String>,
}

/// A payee row of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunPayeeRow {
    pub partner_id: String,
    pub seq: i64,
    pub amount: Decimal,
    pub currency: String,
    pub status: String,
    pub holds: Vec<Hold>,
    pub warnings: Vec<Hold>,
    pub released: Vec<String>,
    pub payment_ref: Option<String>,
    pub state: String,
    pub return_code: Option<String>,
}

impl Store {
    /// Replaces the payee details of the partners in `rows` that are stored, and the
    /// program's payout fields.
    pub fn put_payee_details(
        &mut self,
        rows: &[PayeeDetails],
        program: Option<&ProgramPayout>,
    ) -> Result<()> {
        // IBANs are sealed at rest like the other bank details (masked without a key).
        let key = match rows.iter().any(|r| r.iban.is_some()) {
            true => self.cache_key().ok().cloned(),
            false => None,
        };
        let tx = self.conn.transaction()?;
        {
            let mut st = tx.prepare(
                "INSERT INTO payee_details (partner_id, legal_name, tax_form_kind,
                    tax_form_received_on, account_type, iban, bic, clearing_id, bank_changed_on)
                 SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9
                 WHERE EXISTS (SELECT 1 FROM partners WHERE partner_id = ?1)
                 ON CONFLICT(partner_id) DO UPDATE SET legal_name = excluded.legal_name,
                    tax_form_kind = excluded.tax_form_kind,
                    tax_form_received_on = excluded.tax_form_received_on,
                    account_type = excluded.account_type, iban = excluded.iban,
                    bic = excluded.bic, clearing_id = excluded.clearing_id,
                    bank_changed_on = excluded.bank_changed_on",
            )?;
            for r in rows {
                st.execute(params![
                    r.partner_id,
                    r.legal_name,
                    r.tax_form_kind,
                    r.tax_form_received_on.map(|d| d.to_string()),
                    r.account_type,
                    r.iban
                        .as_deref()
                        .map(|i| super::dataset::sealed(key.as_ref(), "iban", i)),
                    r.bic,
                    r.clearing_id,
                    r.bank_changed_on.map(|d| d.to_string()),
                ])?;
            }
            if let Some(p) = program {
                tx.execute(
                    "INSERT INTO payout_program (id, minimum_payout, payout_rail) VALUES (1, ?1, ?2)
                     ON CONFLICT(id) DO UPDATE SET minimum_payout = excluded.minimum_payout,
                        payout_rail = excluded.payout_rail",
                    params![p.minimum_payout.to_string(), p.payout_rail],
                )?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// program.json's payout fields (minimum 0 and the currency's rail when absent).
    pub fn payout_program(&self) -> Result<ProgramPayout> {
        let row: Option<(String, Option<String>)> = self
            .conn
            .query_row(
                "SELECT minimum_payout, payout_rail FROM payout_program WHERE id = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        Ok(match row {
            Some((m, rail)) => ProgramPayout {
                minimum_payout: dec("payout_program.minimum_payout", &m)?,
                payout_rail: rail,
            },
            None => ProgramPayout {
                minimum_payout: Decimal::ZERO,
                payout_rail: None,
            },
        })
    }

    /// Every partner as a payee (bank details and payee fields).
    pub fn payees(&self) -> Result<BTreeMap<String, Payee>> {
        let mut st = self.conn.prepare(
            "SELECT p.partner_id, p.name, p.country, p.bank_account, d.legal_name,
                    d.tax_form_kind, d.account_type, d.iban, d.bic, d.clearing_id,
                    d.bank_changed_on
             FROM partners p LEFT JOIN payee_details d ON d.partner_id = p.partner_id",
        )?;
        let rows = st.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, Option<String>>(5)?,
                r.get::<_, Option<String>>(6)?,
                r.get::<_, Option<String>>(7)?,
                r.get::<_, Option<String>>(8)?,
                r.get::<_, Option<String>>(9)?,
                r.get::<_, Option<String>>(10)?,
            ))
        })?;
        let mut out = BTreeMap::new();
        for row in rows {
            let (id, name, country, bank, legal, tax, atype, iban, bic, clearing, changed) = row?;
            // Sealed at rest: opened here for the payee checks and the bank file only.
            let unreadable = |what: &str, e: super::secret::SecretError| {
                StoreError::Corrupt(format!("{what} of payee {id}: {e}"))
            };
            let bank: Option<BankAccount> = match bank {
                Some(b) => {
                    let b = self
                        .open_value("bank_account", &b)
                        .map_err(|e| unreadable("partners.bank_account", e))?;
                    Some(serde_json::from_str(&b).map_err(|e| {
                        StoreError::Corrupt(format!("partners.bank_account of {id}: {e}"))
                    })?)
                }
                None => None,
            };
            let iban = match iban {
                Some(i) => Some(
                    self.open_value("iban", &i)
                        .map_err(|e| unreadable("payee_details.iban", e))?,
                ),
                None => None,
            };
            let nonempty = |s: &str| Some(s.to_string()).filter(|v| !v.trim().is_empty());
            out.insert(
                id.clone(),
                Payee {
                    partner_id: id,
                    name,
                    legal_name: legal,
                    country,
                    tax_form_kind: tax,
                    routing_number: bank.as_ref().and_then(|b| nonempty(&b.routing_number)),
                    account_number: bank.as_ref().and_then(|b| nonempty(&b.account_number)),
                    account_name: bank.as_ref().and_then(|b| nonempty(&b.account_name)),
                    account_type: atype,
                    iban,
                    bic,
                    clearing_id: clearing,
                    bank_changed_on: opt_date(changed),
                },
            );
        }
        Ok(out)
    }

    /// The lines a run for `period` may pay: the period's commission lines and lines of
    /// earlier periods kept out of an earlier run (held or carried forward), minus every
    /// line an exported run pays (unless that payment was returned).
    pub fn payout_candidate_lines(&self, period: &str) -> Result<Vec<Line>> {
        let mut st = self.conn.prepare(
            "SELECT c.commission_id, c.transaction_id, c.payee_partner_id, c.amount,
                    (SELECT status FROM prm_rewards r WHERE r.reward_id = c.commission_id)
             FROM commissions c
             WHERE (c.period = ?1
                    OR (c.period < ?1 AND EXISTS (SELECT 1 FROM payout_lines l
                                                 WHERE l.commission_id = c.commission_id)))
               AND NOT EXISTS (
                   SELECT 1 FROM payout_lines l
                   JOIN payout_runs r ON r.run_id = l.run_id
                   JOIN payout_payees p ON p.run_id = l.run_id AND p.partner_id = l.partner_id
                   WHERE l.commission_id = c.commission_id AND l.held = 0
                     AND r.state IN ('exported', 'settled', 'returned')
                     AND p.status = 'payable' AND p.state <> 'returned')
             ORDER BY c.commission_id",
        )?;
        let rows = st.query_map([period], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, Option<String>>(4)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (commission_id, transaction_id, payee, amount, status) = row?;
            out.push(Line {
                amount: dec("commissions.amount", &amount)?,
                commission_id,
                transaction_id,
                payee_partner_id: payee,
                prm_status: status.map(|s| s.to_ascii_lowercase()),
            });
        }
        Ok(out)
    }

    /// tierdesk's standing decision per transaction with a case.
    pub fn payout_decisions(&self) -> Result<BTreeMap<String, TxDecision>> {
        let mut st = self.conn.prepare(
            "SELECT c.transaction_id, c.state, c.decided_amount, p.action
             FROM cases c LEFT JOIN proposals p ON p.transaction_id = c.transaction_id",
        )?;
        let rows = st.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, Option<String>>(3)?,
            ))
        })?;
        let mut out = BTreeMap::new();
        for row in rows {
            let (tx, state, decided, action) = row?;
            let d = match state.as_str() {
                s if crate::workflow::awaits_decision(s) => TxDecision::UnderReview(state),
                "approved" | "overridden" | "signed_off" | "queued_for_push" | "pushed" => {
                    match decided {
                        Some(a) => TxDecision::Total(dec("cases.decided_amount", &a)?),
                        None if action.as_deref() == Some("hold") => TxDecision::Held,
                        None => TxDecision::AsSubmitted,
                    }
                }
                _ => TxDecision::AsSubmitted,
            };
            out.insert(tx, d);
        }
        Ok(out)
    }

    /// Payees whose latest payment was returned and not released since: partner -> code.
    pub fn payout_returned_payees(&self) -> Result<BTreeMap<String, String>> {
        let mut st = self.conn.prepare(
            "SELECT p.partner_id, COALESCE(p.return_code, ''), p.run_id FROM payout_payees p
             WHERE p.state = 'returned'
               AND NOT EXISTS (SELECT 1 FROM payout_payees q
                               JOIN payout_runs rq ON rq.run_id = q.run_id
                               JOIN payout_runs rp ON rp.run_id = p.run_id
                               WHERE q.partner_id = p.partner_id AND rq.prepared_at >= rp.prepared_at
                                 AND q.run_id <> p.run_id
                                 AND q.released_by LIKE '%\"returned\"%')",
        )?;
        let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        let mut out = BTreeMap::new();
        for row in rows {
            let (p, c) = row?;
            out.insert(p, c);
        }
        Ok(out)
    }

    /// The number of runs stored (for the next run id).
    pub fn payout_run_count(&self) -> Result<i64> {
        Ok(self
            .conn
            .query_row("SELECT COUNT(*) FROM payout_runs", [], |r| r.get(0))?)
    }

    pub fn payout_run(&self, run_id: &str) -> Result<Option<RunRow>> {
        self.wf().payout_run(run_id)
    }

    pub fn payout_run_payees(&self, run_id: &str) -> Result<Vec<RunPayeeRow>> {
        self.wf().payout_run_payees(run_id)
    }

    /// Every run, newest first, with its payee count and the total of its payable
    /// payees (summed exactly, in Rust: amounts are decimal text).
    pub fn payout_runs(&self) -> Result<Vec<(RunRow, RunTotals)>> {
        let mut st = self.conn.prepare(&format!(
            "SELECT {RUN_COLS} FROM payout_runs ORDER BY prepared_at DESC, run_id DESC"
        ))?;
        let rows = st.query_map([], run_cols)?;
        let mut runs = Vec::new();
        for r in rows {
            runs.push(run_row(r?)?);
        }
        let mut totals: BTreeMap<String, RunTotals> = BTreeMap::new();
        let mut st = self
            .conn
            .prepare("SELECT run_id, status, amount FROM payout_payees")?;
        let rows = st.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        for row in rows {
            let (run, status, amount) = row?;
            let t = totals.entry(run).or_default();
            t.payees += 1;
            match status.as_str() {
                "payable" => {
                    t.payable += 1;
                    t.payable_total += dec("payout_payees.amount", &amount)?;
                }
                "held" => t.held += 1,
                _ => {}
            }
        }
        Ok(runs
            .into_iter()
            .map(|r| {
                let t = totals.remove(&r.run_id).unwrap_or_default();
                (r, t)
            })
            .collect())
    }

    /// Bank statement entries that did not match an exported payment cleanly (class
    /// amount, date, ambiguous or unmatched), newest file first, at most `limit`.
    pub fn bank_exceptions(&self, limit: usize) -> Result<Vec<BankException>> {
        let mut st = self.conn.prepare(
            "SELECT f.name, e.entry, e.class, e.lines, e.code, e.amount, e.currency
             FROM bank_entries e JOIN bank_files f ON f.sha256 = e.file_sha256
             WHERE e.class NOT IN ('matched', 'returned')
             ORDER BY f.imported_at DESC, f.name, e.entry LIMIT ?1",
        )?;
        let rows = st.query_map([limit as i64], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, String>(6)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (file, entry, class, lines, code, amount, currency) = row?;
            out.push(BankException {
                lines: serde_json::from_str(&lines)
                    .map_err(|_| corrupt("bank_entries.lines", &lines))?,
                file,
                entry,
                class,
                code,
                amount,
                currency,
            });
        }
        Ok(out)
    }
}

/// A run's payee count and what it pays.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunTotals {
    pub payees: usize,
    pub payable: usize,
    pub held: usize,
    pub payable_total: Decimal,
}

/// A bank statement entry that needs a person (see [`Store::bank_exceptions`]).
#[derive(Debug, Clone, PartialEq)]
pub struct BankException {
    pub file: String,
    pub entry: i64,
    /// amount | date | ambiguous | unmatched
    pub class: String,
    /// The payments it names, as `RUN/PARTNER`.
    pub lines: Vec<String>,
    pub code: Option<String>,
    pub amount: String,
    pub currency: String,
}

const RUN_COLS: &str = "run_id, period, run_date, currency, state, prepared_by, prepared_at,
                        approved_by, approved_at, rail, exported_at";

type RunCols = (
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

fn run_cols(r: &rusqlite::Row<'_>) -> rusqlite::Result<RunCols> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
        r.get(10)?,
    ))
}

fn run_row(r: RunCols) -> Result<RunRow> {
    Ok(RunRow {
        run_date: NaiveDate::parse_from_str(&r.2, "%Y-%m-%d")
            .map_err(|_| corrupt("payout_runs.run_date", &r.2))?,
        run_id: r.0,
        period: r.1,
        currency: r.3,
        state: r.4,
        prepared_by: r.5,
        prepared_at: r.6,
        approved_by: r.7,
        approved_at: r.8,
        rail: r.9,
        exported_at: r.10,
    })
}

impl WfDb<'_> {
    /// Stores a prepared run (state `draft`) with its payees and lines.
    pub fn payout_insert_run(&self, run: &RunRow, payees: &[PayeeResult]) -> Result<()> {
        self.conn.execute(
            "INSERT INTO payout_runs (run_id, period, run_date, currency, state, prepared_by,
                prepared_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                run.run_id,
                run.period,
                run.run_date.to_string(),
                run.currency,
                run.state,
                run.prepared_by,
                run.prepared_at
            ],
        )?;
        let mut pst = self.conn.prepare(
            "INSERT INTO payout_payees (run_id, partner_id, seq, amount, currency, status, holds,
                warnings, released_by) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, '[]')",
        )?;
        let mut lst = self.conn.prepare(
            "INSERT INTO payout_lines (run_id, commission_id, partner_id, amount, held)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for (i, p) in payees.iter().enumerate() {
            pst.execute(params![
                run.run_id,
                p.partner_id,
                i as i64 + 1,
                p.amount.to_string(),
                run.currency,
                p.status,
                serde_json::to_string(&p.holds).unwrap_or_else(|_| "[]".into()),
                serde_json::to_string(&p.warnings).unwrap_or_else(|_| "[]".into()),
            ])?;
            for (cid, amt, held) in &p.lines {
                lst.execute(params![
                    run.run_id,
                    cid,
                    p.partner_id,
                    amt.to_string(),
                    *held as i64
                ])?;
            }
        }
        Ok(())
    }

    pub fn payout_run(&self, run_id: &str) -> Result<Option<RunRow>> {
        let row = self
            .conn
            .query_row(
                &format!("SELECT {RUN_COLS} FROM payout_runs WHERE run_id = ?1"),
                [run_id],
                run_cols,
            )
            .optional()?;
        row.map(run_row).transpose()
    }

    pub fn payout_run_payees(&self, run_id: &str) -> Result<Vec<RunPayeeRow>> {
        let mut st = self.conn.prepare(
            "SELECT partner_id, seq, amount, currency, status, holds, warnings, released_by,
                    payment_ref, state, return_code
             FROM payout_payees WHERE run_id = ?1 ORDER BY seq",
        )?;
        let rows = st.query_map([run_id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, String>(6)?,
                r.get::<_, Option<String>>(7)?,
                r.get::<_, Option<String>>(8)?,
                r.get::<_, String>(9)?,
                r.get::<_, Option<String>>(10)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (pid, seq, amount, cur, status, holds, warnings, released, pref, state, rc) = row?;
            let js = |what: &str, s: &str| -> Result<Vec<Hold>> {
                serde_json::from_str(s).map_err(|_| corrupt(what, s))
            };
            out.push(RunPayeeRow {
                amount: dec("payout_payees.amount", &amount)?,
                holds: js("payout_payees.holds", &holds)?,
                warnings: js("payout_payees.warnings", &warnings)?,
                released: match released {
                    Some(s) => serde_json::from_str(&s).map_err(|_| corrupt("released_by", &s))?,
                    None => Vec::new(),
                },
                partner_id: pid,
                seq,
                currency: cur,
                status,
                payment_ref: pref,
                state,
                return_code: rc,
            });
        }
        Ok(out)
    }

    pub fn payout_set_approved(&self, run_id: &str, by: &str, at: &str) -> Result<()> {
        self.conn.execute(
            "UPDATE payout_runs SET state = 'approved', approved_by = ?2, approved_at = ?3
             WHERE run_id = ?1",
            params![run_id, by, at],
        )?;
        Ok(())
    }

    /// Lifts the holds of `codes` on a payee of a run: the payee becomes payable when no
    /// hold that stops a payment remains.
    pub fn payout_release(
        &self,
        run_id: &str,
        partner_id: &str,
        holds: &[Hold],
        released: &[String],
        status: &str,
    ) -> Result<()> {
        self.conn.execute(
            "UPDATE payout_payees SET holds = ?3, released_by = ?4, status = ?5
             WHERE run_id = ?1 AND partner_id = ?2",
            params![
                run_id,
                partner_id,
                serde_json::to_string(holds).unwrap_or_else(|_| "[]".into()),
                serde_json::to_string(released).unwrap_or_else(|_| "[]".into()),
                status
            ],
        )?;
        Ok(())
    }

    /// Lines of the run's payable payees that an exported other run already pays.
    pub fn payout_lines_in_other_exported_runs(
        &self,
        run_id: &str,
    ) -> Result<Vec<(String, String)>> {
        let mut st = self.conn.prepare(
            "SELECT l.commission_id, o.run_id FROM payout_lines l
             JOIN payout_payees p ON p.run_id = l.run_id AND p.partner_id = l.partner_id
             JOIN payout_lines o ON o.commission_id = l.commission_id AND o.run_id <> l.run_id
             JOIN payout_runs r ON r.run_id = o.run_id
             JOIN payout_payees op ON op.run_id = o.run_id AND op.partner_id = o.partner_id
             WHERE l.run_id = ?1 AND l.held = 0 AND p.status = 'payable' AND o.held = 0
               AND op.status = 'payable' AND op.state <> 'returned'
               AND r.state IN ('exported', 'settled', 'returned')
             ORDER BY l.commission_id LIMIT 10",
        )?;
        let rows = st.query_map([run_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Marks the run exported (first export: rail, time, payment references).
    pub fn payout_set_exported(
        &self,
        run_id: &str,
        rail: &str,
        at: &str,
        sha: &str,
        refs: &[(String, String)],
    ) -> Result<()> {
        self.conn.execute(
            "UPDATE payout_runs SET state = 'exported', rail = ?2, exported_at = ?3,
                file_sha256 = ?4 WHERE run_id = ?1",
            params![run_id, rail, at, sha],
        )?;
        let mut st = self.conn.prepare(
            "UPDATE payout_payees SET payment_ref = ?3, state = 'sent'
             WHERE run_id = ?1 AND partner_id = ?2",
        )?;
        for (pid, r) in refs {
            st.execute(params![run_id, pid, r])?;
        }
        Ok(())
    }

    /// Records what an ACH export tells of accounts: prenotes sent (fingerprint, partner,
    /// trace) and accounts paid (fingerprint, partner). A paid account stays paid; a
    /// prenote row is written once (a re-export keeps it).
    pub fn payout_note_accounts(
        &self,
        run_id: &str,
        effective: NaiveDate,
        prenotes: &[(String, String, String)],
        paid: &[(String, String)],
        at: &str,
    ) -> Result<()> {
        let mut pre = self.conn.prepare(
            "INSERT INTO payout_accounts (fingerprint, partner_id, state, run_id, effective_date,
                trace, return_code, updated_at)
             VALUES (?1, ?2, 'prenote_sent', ?3, ?4, ?5, NULL, ?6)
             ON CONFLICT(fingerprint) DO NOTHING",
        )?;
        for (fp, pid, trace) in prenotes {
            pre.execute(params![fp, pid, run_id, effective.to_string(), trace, at])?;
        }
        let mut pay = self.conn.prepare(
            "INSERT INTO payout_accounts (fingerprint, partner_id, state, run_id, effective_date,
                trace, return_code, updated_at)
             VALUES (?1, ?2, 'paid', ?3, ?4, NULL, NULL, ?5)
             ON CONFLICT(fingerprint) DO UPDATE SET state = 'paid', updated_at = excluded.updated_at
             WHERE payout_accounts.state <> 'paid'",
        )?;
        for (fp, pid) in paid {
            pay.execute(params![fp, pid, run_id, effective.to_string(), at])?;
        }
        Ok(())
    }

    /// A return of the prenote with trace number `trace`: the account is marked returned
    /// (with the reason code). Returns the partner it belongs to, if it was a prenote.
    pub fn payout_prenote_returned(
        &self,
        trace: &str,
        code: &str,
        at: &str,
    ) -> Result<Option<String>> {
        let pid: Option<String> = self
            .conn
            .query_row(
                "SELECT partner_id FROM payout_accounts WHERE trace = ?1",
                [trace],
                |r| r.get(0),
            )
            .optional()?;
        if pid.is_some() {
            self.conn.execute(
                "UPDATE payout_accounts SET state = 'prenote_returned', return_code = ?2,
                    updated_at = ?3 WHERE trace = ?1",
                params![trace, code, at],
            )?;
        }
        Ok(pid)
    }

    pub fn payout_file_sha(&self, run_id: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row(
                "SELECT file_sha256 FROM payout_runs WHERE run_id = ?1",
                [run_id],
                |r| r.get::<_, Option<String>>(0),
            )
            .optional()?
            .flatten())
    }
}

impl Store {
    /// The trace numbers of prenotes sent, with their partner.
    pub fn payout_prenote_traces(&self) -> Result<BTreeMap<String, String>> {
        let mut st = self
            .conn
            .prepare("SELECT trace, partner_id FROM payout_accounts WHERE trace IS NOT NULL")?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// What tierdesk knows of each ACH account, by fingerprint (`payout::prenote`).
    pub fn payout_accounts(&self) -> Result<BTreeMap<String, crate::payout::prenote::Known>> {
        use crate::payout::prenote::Known;
        let mut st = self.conn.prepare(
            "SELECT fingerprint, state, run_id, effective_date, return_code FROM payout_accounts",
        )?;
        let rows = st.query_map([], |r| {
            let state: String = r.get(1)?;
            let run_id: String = r.get(2)?;
            let eff: String = r.get(3)?;
            let code: Option<String> = r.get(4)?;
            Ok((r.get::<_, String>(0)?, state, run_id, eff, code))
        })?;
        let mut out = BTreeMap::new();
        for row in rows {
            let (fp, state, run_id, eff, code) = row?;
            let known = match state.as_str() {
                "paid" => Known::Paid,
                "prenote_returned" => Known::Returned {
                    code: code.unwrap_or_else(|| "?".into()),
                },
                _ => Known::Sent {
                    run_id,
                    effective: eff.parse().map_err(|_| {
                        StoreError::Corrupt(format!(
                            "payout_accounts {fp}: effective_date {eff:?} is not a date"
                        ))
                    })?,
                },
            };
            out.insert(fp, known);
        }
        Ok(out)
    }
}

/// A statement entry as stored: (entry, class, lines, code).
pub type StoredEntry = (i64, String, Vec<String>, Option<String>);

impl Store {
    /// The stored entries of a bank file already imported (by content hash).
    pub fn bank_file_entries(&self, sha: &str) -> Result<Option<Vec<StoredEntry>>> {
        let seen: Option<String> = self
            .conn
            .query_row(
                "SELECT sha256 FROM bank_files WHERE sha256 = ?1",
                [sha],
                |r| r.get(0),
            )
            .optional()?;
        if seen.is_none() {
            return Ok(None);
        }
        let mut st = self.conn.prepare(
            "SELECT entry, class, lines, code FROM bank_entries WHERE file_sha256 = ?1 ORDER BY entry",
        )?;
        let rows = st.query_map([sha], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<String>>(3)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (e, c, l, code) = row?;
            let lines: Vec<String> =
                serde_json::from_str(&l).map_err(|_| corrupt("bank_entries.lines", &l))?;
            out.push((e, c, lines, code));
        }
        Ok(Some(out))
    }

    /// Every exported payment (with a payment reference).
    pub fn sent_payments(&self) -> Result<Vec<crate::payout::matching::Sent>> {
        let mut st = self.conn.prepare(
            "SELECT p.run_id, p.partner_id, p.payment_ref, p.amount, p.currency, r.run_date,
                    p.state, COALESCE(r.rail, '')
             FROM payout_payees p JOIN payout_runs r ON r.run_id = p.run_id
             WHERE p.payment_ref IS NOT NULL ORDER BY p.run_id, p.seq",
        )?;
        let rows = st.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, String>(6)?,
                r.get::<_, String>(7)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (run, pid, pref, amt, cur, date, state, rail) = row?;
            out.push(crate::payout::matching::Sent {
                batch_id: if rail == "ach" {
                    run.clone()
                } else {
                    format!("{run}-1")
                },
                run_date: NaiveDate::parse_from_str(&date, "%Y-%m-%d")
                    .map_err(|_| corrupt("payout_runs.run_date", &date))?,
                amount: dec("payout_payees.amount", &amt)?,
                run_id: run,
                partner_id: pid,
                payment_ref: pref,
                currency: cur,
                state,
            });
        }
        Ok(out)
    }
}

/// One classified entry to store.
pub struct EntryRow<'a> {
    pub entry: i64,
    pub class: &'a str,
    pub lines: &'a [String],
    pub code: Option<&'a str>,
    pub amount: Decimal,
    pub currency: &'a str,
    pub change: Option<(&'a str, &'a str)>,
}

impl WfDb<'_> {
    pub fn insert_bank_file(&self, sha: &str, name: &str, format: &str, at: &str) -> Result<()> {
        self.conn.execute(
            "INSERT INTO bank_files (sha256, name, format, imported_at) VALUES (?1, ?2, ?3, ?4)",
            params![sha, name, format, at],
        )?;
        Ok(())
    }

    /// Stores an entry and applies it: matched debits settle their payments, returns flip
    /// them to returned with the code; notifications of change are stored.
    pub fn apply_bank_entry(&self, sha: &str, e: &EntryRow<'_>) -> Result<()> {
        self.conn.execute(
            "INSERT INTO bank_entries (file_sha256, entry, class, lines, code, amount, currency)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                sha,
                e.entry,
                e.class,
                serde_json::to_string(e.lines).unwrap_or_else(|_| "[]".into()),
                e.code,
                e.amount.to_string(),
                e.currency
            ],
        )?;
        for key in e.lines {
            let Some((run, pid)) = key.split_once('/') else {
                continue;
            };
            if let Some((code, corrected)) = e.change {
                self.conn.execute(
                    "INSERT OR IGNORE INTO bank_change_notices (file_sha256, entry, partner_id, code, corrected)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![sha, e.entry, pid, code, crate::model::mask(corrected)],
                )?;
                continue;
            }
            match e.class {
                "returned" => {
                    self.conn.execute(
                        "UPDATE payout_payees SET state = 'returned', return_code = ?3
                         WHERE run_id = ?1 AND partner_id = ?2",
                        params![run, pid, e.code],
                    )?;
                }
                "matched" => {
                    self.conn.execute(
                        "UPDATE payout_payees SET state = 'settled'
                         WHERE run_id = ?1 AND partner_id = ?2 AND state = 'sent'",
                        params![run, pid],
                    )?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The run's state follows its payments: returned if one is, settled once none is
    /// still on its way.
    pub fn update_run_state(&self, run: &str) -> Result<()> {
        {
            self.conn.execute(
                "UPDATE payout_runs SET state = CASE
                    WHEN EXISTS (SELECT 1 FROM payout_payees WHERE run_id = ?1 AND state = 'returned') THEN 'returned'
                    WHEN NOT EXISTS (SELECT 1 FROM payout_payees WHERE run_id = ?1 AND state = 'sent') THEN 'settled'
                    ELSE state END
                 WHERE run_id = ?1 AND state IN ('exported', 'settled', 'returned')",
                [run],
            )?;
        }
        Ok(())
    }
}

impl Store {
    /// Settled and returned payments of the runs of `period`.
    pub fn posted_payments(&self, period: &str) -> Result<Vec<crate::payout::postings::Posted>> {
        let mut st = self.conn.prepare(
            "SELECT p.run_id, p.partner_id, r.run_date, p.currency, p.amount, p.state,
                    COALESCE(p.payment_ref, ''), p.return_code
             FROM payout_payees p JOIN payout_runs r ON r.run_id = p.run_id
             WHERE r.period = ?1 AND p.state IN ('settled', 'returned')
             ORDER BY p.run_id, p.seq",
        )?;
        let rows = st.query_map([period], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, String>(6)?,
                r.get::<_, Option<String>>(7)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (run_id, partner_id, date, currency, amount, state, payment_ref, return_code) =
                row?;
            out.push(crate::payout::postings::Posted {
                amount: dec("payout_payees.amount", &amount)?,
                run_id,
                partner_id,
                date,
                currency,
                state,
                payment_ref,
                return_code,
            });
        }
        Ok(out)
    }
}

impl Store {
    /// Seeds a synthetic program of `n` payees (one commission line each, valid bank
    /// details and W-9s) for `tierdesk payout bench`.
    pub fn payout_bench_seed(&mut self, n: usize) -> Result<()> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT OR REPLACE INTO program (id, program_id, name, currency, fiscal_year_start_month,
                as_of, review_start, review_end)
             VALUES (1, 'bench', 'Bench', 'USD', 1, '2026-09-30', '2026-07-01', '2026-09-30')",
            [],
        )?;
        {
            let mut p = tx.prepare(
                "INSERT INTO partners (partner_id, name, kind, region, country, joined_on,
                    certifications, bank_account)
                 VALUES (?1, ?2, 'reseller', 'NA', 'US', '2020-01-01', '[]', ?3)",
            )?;
            let mut d = tx.prepare(
                "INSERT INTO payee_details (partner_id, legal_name, tax_form_kind, account_type,
                    bank_changed_on) VALUES (?1, ?2, 'W-9', 'checking', '2020-01-02')",
            )?;
            let mut c = tx.prepare(
                "INSERT INTO commissions (commission_id, transaction_id, payee_partner_id, role,
                    amount, period) VALUES (?1, ?2, ?3, 'seller', ?4, '2026-Q3')",
            )?;
            for i in 0..n {
                let id = format!("B{i:07}");
                let name = format!("Bench Partner {i} Inc");
                let first8 = format!("{:08}", 11_000_000 + (i % 1000) as u64);
                let cd = crate::payout::checks::aba_check_digit(&first8).unwrap_or(0);
                let bank = serde_json::json!({
                    "routing_number": format!("{first8}{cd}"),
                    "account_number": format!("{:012}", 100_000_000 + i),
                    "account_name": name,
                });
                p.execute(params![id, name, bank.to_string()])?;
                d.execute(params![id, name])?;
                let amount = format!("{}.{:02}", 100 + i % 5000, i % 100);
                c.execute(params![format!("C-{id}"), format!("T-{id}"), id, amount])?;
            }
        }
        tx.commit()?;
        Ok(())
    }
}
