//! Governed automation: rollout phases, what the routing policy did with each flag, the
//! durable alerts outbox, and the read models the policy needs (flag facts, decisions).

use std::collections::HashMap;

use rusqlite::{params, Connection, OptionalExtension};

use super::workflow::WfDb;
use super::{Result, Store, StoreError};

/// What the routing policy looks at for one flagged transaction of the review window.
#[derive(Debug, Clone, PartialEq)]
pub struct FlagFacts {
    pub transaction_id: String,
    pub row_hash: String,
    pub kinds: Vec<String>,
    pub score: f64,
    pub confidence: f64,
    pub at_stake_minor: i64,
    pub partner_id: String,
    pub partner_name: String,
    /// The partner's tier on the close date (None when no tier history covers it).
    pub tier_id: Option<String>,
    pub high_value: bool,
    /// The case state (`flagged` when no one has decided).
    pub status: String,
    pub currency: String,
    pub top_reason: Option<String>,
    /// The proposal's action (hold / reverse / recompute / adjust), when there is one.
    pub proposal_action: Option<String>,
}

/// One routing outcome as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteRow {
    pub transaction_id: String,
    pub row_hash: String,
    pub kinds: Vec<String>,
    pub rule: String,
    pub action: String,
    pub effect: String,
    pub phase: String,
    pub at_stake_minor: i64,
    pub decision_id: Option<String>,
    pub routed_at: String,
}

/// A group of transactions with the same makings of a processing status: their current
/// flag's kinds (`None`: not scored in this version), their case state, how many.
pub type ProcessingGroup = (Option<Vec<String>>, Option<String>, i64);

/// What is stored of a route for deciding whether to route again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routed {
    pub row_hash: String,
    pub kinds: Vec<String>,
    pub phase: String,
    pub effect: String,
}

/// A rollout phase as stored for one scope (`*` or a tier id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhaseRow {
    pub scope: String,
    pub phase: String,
    pub changed_by: String,
    pub changed_at: String,
    pub reason: String,
}

/// A decision with the kinds of the flag it was made on.
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionOnKinds {
    pub decision_id: String,
    pub transaction_id: String,
    pub action: String,
    pub actor: String,
    pub created_at: String,
    pub kinds: Vec<String>,
}

/// An alert waiting in (or delivered from) the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRow {
    pub id: i64,
    pub alert_id: String,
    pub channel: String,
    pub dedupe_key: String,
    pub kind: String,
    pub transaction_id: Option<String>,
    pub payload: serde_json::Value,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: String,
    pub last_error: Option<String>,
    pub created_at: String,
    pub sent_at: Option<String>,
}

/// A new alert for the outbox.
#[derive(Debug, Clone)]
pub struct NewAlert<'a> {
    pub alert_id: &'a str,
    pub channel: &'a str,
    pub dedupe_key: &'a str,
    pub kind: &'a str,
    pub transaction_id: Option<&'a str>,
    pub payload: &'a serde_json::Value,
    pub now: &'a str,
}

fn kinds_of(table: &str, key: &str, text: &str) -> Result<Vec<String>> {
    serde_json::from_str(text).map_err(|e| {
        StoreError::Corrupt(format!(
            "{table} row {key}: column kinds is not a JSON list: {e}"
        ))
    })
}

const ALERT_COLS: &str =
    "id, alert_id, channel, dedupe_key, kind, transaction_id, payload, status, \
                          attempts, next_attempt_at, last_error, created_at, sent_at";

fn alert_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(AlertRow, String)> {
    Ok((
        AlertRow {
            id: r.get(0)?,
            alert_id: r.get(1)?,
            channel: r.get(2)?,
            dedupe_key: r.get(3)?,
            kind: r.get(4)?,
            transaction_id: r.get(5)?,
            payload: serde_json::Value::Null,
            status: r.get(7)?,
            attempts: r.get(8)?,
            next_attempt_at: r.get(9)?,
            last_error: r.get(10)?,
            created_at: r.get(11)?,
            sent_at: r.get(12)?,
        },
        r.get(6)?,
    ))
}

fn with_payload((mut a, text): (AlertRow, String)) -> Result<AlertRow> {
    a.payload = serde_json::from_str(&text).map_err(|e| {
        StoreError::Corrupt(format!(
            "alerts_outbox row {}: column payload is not JSON: {e}",
            a.alert_id
        ))
    })?;
    Ok(a)
}

/// Records (or replaces) what the policy did with one flag.
fn put_route(conn: &Connection, r: &RouteRow) -> Result<()> {
    let kinds = serde_json::to_string(&r.kinds)
        .map_err(|e| StoreError::Corrupt(format!("kinds of {}: {e}", r.transaction_id)))?;
    conn.execute(
        "INSERT INTO policy_routes (transaction_id, row_hash, kinds, rule, action, effect, phase,
                                    at_stake_minor, decision_id, routed_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
         ON CONFLICT(transaction_id) DO UPDATE SET
            row_hash = excluded.row_hash, kinds = excluded.kinds, rule = excluded.rule,
            action = excluded.action, effect = excluded.effect, phase = excluded.phase,
            at_stake_minor = excluded.at_stake_minor, decision_id = excluded.decision_id,
            routed_at = excluded.routed_at",
        params![
            r.transaction_id,
            r.row_hash,
            kinds,
            r.rule,
            r.action,
            r.effect,
            r.phase,
            r.at_stake_minor,
            r.decision_id,
            r.routed_at
        ],
    )?;
    Ok(())
}

/// Sets the phase of one scope (the caller audits it in the same transaction).
fn set_phase(conn: &Connection, p: &PhaseRow) -> Result<()> {
    conn.execute(
        "INSERT INTO policy_phases (scope, phase, changed_by, changed_at, reason)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT(scope) DO UPDATE SET phase = excluded.phase,
            changed_by = excluded.changed_by, changed_at = excluded.changed_at,
            reason = excluded.reason",
        params![p.scope, p.phase, p.changed_by, p.changed_at, p.reason],
    )?;
    Ok(())
}

/// Queues an alert; `false` when one with the same dedupe key exists already.
fn insert_alert_on(conn: &Connection, a: &NewAlert<'_>) -> Result<bool> {
    let payload = a.payload.to_string();
    let n = conn.execute(
        "INSERT INTO alerts_outbox (alert_id, channel, dedupe_key, kind, transaction_id, payload,
                                    status, attempts, next_attempt_at, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', 0, ?7, ?7)
         ON CONFLICT(dedupe_key) DO NOTHING",
        params![
            a.alert_id,
            a.channel,
            a.dedupe_key,
            a.kind,
            a.transaction_id,
            payload,
            a.now
        ],
    )?;
    Ok(n == 1)
}

macro_rules! policy_writers {
    ($t:ty, $conn:ident) => {
        impl $t {
            /// Records (or replaces) what the policy did with one flag.
            pub fn put_policy_route(&self, r: &RouteRow) -> Result<()> {
                put_route(&self.$conn, r)
            }

            /// Sets the phase of one scope (the caller audits it in the same transaction).
            pub fn set_policy_phase(&self, p: &PhaseRow) -> Result<()> {
                set_phase(&self.$conn, p)
            }

            /// Queues an alert; `false` when one with the same dedupe key exists already.
            pub fn insert_alert(&self, a: &NewAlert<'_>) -> Result<bool> {
                insert_alert_on(&self.$conn, a)
            }
        }
    };
}

policy_writers!(Store, conn);
policy_writers!(WfDb<'_>, conn);

impl Store {
    /// Every flagged transaction of the review window (a flag with at least one kind),
    /// with the facts the routing policy reads, worst first.
    pub fn policy_flag_facts(&self) -> Result<Vec<FlagFacts>> {
        let mut stmt = self.conn.prepare(
            "SELECT f.transaction_id, f.row_hash, f.kinds, f.score, f.confidence, f.at_stake_minor,
                    t.partner_id, COALESCE(p.name, t.partner_id),
                    (SELECT th.tier_id FROM tier_history th
                      WHERE th.partner_id = t.partner_id AND th.effective_from <= t.closed_on
                      ORDER BY th.effective_from DESC LIMIT 1),
                    COALESCE(p.high_value, 0), COALESCE(c.state, 'flagged'), t.currency,
                    f.reasons, pr.action
               FROM flags f
               JOIN transactions t ON t.transaction_id = f.transaction_id
               LEFT JOIN partners p ON p.partner_id = t.partner_id
               LEFT JOIN cases c ON c.transaction_id = f.transaction_id
               LEFT JOIN proposals pr ON pr.transaction_id = f.transaction_id
              WHERE f.in_window = 1 AND f.kinds <> '[]'
              ORDER BY f.score DESC, f.at_stake_minor DESC, f.transaction_id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, f64>(3)?,
                r.get::<_, f64>(4)?,
                r.get::<_, i64>(5)?,
                r.get::<_, String>(6)?,
                r.get::<_, String>(7)?,
                r.get::<_, Option<String>>(8)?,
                r.get::<_, i64>(9)?,
                r.get::<_, String>(10)?,
                r.get::<_, String>(11)?,
                r.get::<_, String>(12)?,
                r.get::<_, Option<String>>(13)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (tx, hash, kinds, score, conf, stake, pid, pname, tier, hv, st, cur, reasons, pa) =
                row?;
            let kinds = kinds_of("flags", &tx, &kinds)?;
            let reasons: Vec<String> = serde_json::from_str(&reasons).map_err(|e| {
                StoreError::Corrupt(format!(
                    "flags row {tx}: column reasons is not a JSON list: {e}"
                ))
            })?;
            out.push(FlagFacts {
                transaction_id: tx,
                row_hash: hash,
                kinds,
                score,
                confidence: conf,
                at_stake_minor: stake,
                partner_id: pid,
                partner_name: pname,
                tier_id: tier,
                high_value: hv != 0,
                status: st,
                currency: cur,
                top_reason: reasons.into_iter().next(),
                proposal_action: pa,
            });
        }
        Ok(out)
    }

    /// Transactions already routed: the flag version (`row_hash`), kinds, phase and
    /// effect routed.
    pub fn policy_routed(&self) -> Result<HashMap<String, Routed>> {
        let mut stmt = self
            .conn
            .prepare("SELECT transaction_id, row_hash, kinds, phase, effect FROM policy_routes")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
            ))
        })?;
        let mut out = HashMap::new();
        for row in rows {
            let (tx, row_hash, kinds, phase, effect) = row?;
            let kinds = kinds_of("policy_routes", &tx, &kinds)?;
            out.insert(
                tx,
                Routed {
                    row_hash,
                    kinds,
                    phase,
                    effect,
                },
            );
        }
        Ok(out)
    }

    /// Every stored route, oldest first.
    pub fn policy_routes(&self) -> Result<Vec<RouteRow>> {
        self.routes_where(None)
    }

    /// The route of one transaction.
    pub fn policy_route(&self, tx_id: &str) -> Result<Option<RouteRow>> {
        Ok(self.routes_where(Some(tx_id))?.into_iter().next())
    }

    fn routes_where(&self, tx_id: Option<&str>) -> Result<Vec<RouteRow>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT transaction_id, row_hash, kinds, rule, action, effect, phase, at_stake_minor,
                    decision_id, routed_at
               FROM policy_routes WHERE ?1 IS NULL OR transaction_id = ?1
              ORDER BY routed_at, transaction_id",
        )?;
        let rows = stmt.query_map([tx_id], |r| {
            Ok((
                RouteRow {
                    transaction_id: r.get(0)?,
                    row_hash: r.get(1)?,
                    kinds: Vec::new(),
                    rule: r.get(3)?,
                    action: r.get(4)?,
                    effect: r.get(5)?,
                    phase: r.get(6)?,
                    at_stake_minor: r.get(7)?,
                    decision_id: r.get(8)?,
                    routed_at: r.get(9)?,
                },
                r.get::<_, String>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (mut route, kinds) = row?;
            route.kinds = kinds_of("policy_routes", &route.transaction_id, &kinds)?;
            out.push(route);
        }
        Ok(out)
    }

    /// Every stored phase (program `*` and per tier).
    pub fn policy_phases(&self) -> Result<Vec<PhaseRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT scope, phase, changed_by, changed_at, reason FROM policy_phases ORDER BY scope",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(PhaseRow {
                scope: r.get(0)?,
                phase: r.get(1)?,
                changed_by: r.get(2)?,
                changed_at: r.get(3)?,
                reason: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Every decision with the kinds of the flag it was made on (decisions on transactions
    /// without a flag carry no kinds), oldest first. `reverted` decisions are left out, and
    /// so are the compensating decisions that revert them.
    pub fn decisions_on_kinds(&self) -> Result<Vec<DecisionOnKinds>> {
        let mut stmt = self.conn.prepare(
            "SELECT d.decision_id, d.transaction_id, d.action, d.actor, d.created_at,
                    COALESCE(f.kinds, '[]')
               FROM decisions d
               LEFT JOIN flags f ON f.transaction_id = d.transaction_id
              WHERE d.reverts IS NULL
                AND NOT EXISTS (SELECT 1 FROM decisions r WHERE r.reverts = d.decision_id)
              ORDER BY d.created_at, d.decision_id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                DecisionOnKinds {
                    decision_id: r.get(0)?,
                    transaction_id: r.get(1)?,
                    action: r.get(2)?,
                    actor: r.get(3)?,
                    created_at: r.get(4)?,
                    kinds: Vec::new(),
                },
                r.get::<_, String>(5)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (mut d, kinds) = row?;
            d.kinds = kinds_of("flags", &d.transaction_id, &kinds)?;
            out.push(d);
        }
        Ok(out)
    }

    /// Pending alerts whose next attempt is due at `now` (RFC 3339 text compares in order).
    pub fn due_alerts(&self, now: &str, limit: usize) -> Result<Vec<AlertRow>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {ALERT_COLS} FROM alerts_outbox
              WHERE status = 'pending' AND next_attempt_at <= ?1 ORDER BY id LIMIT ?2"
        ))?;
        let rows = stmt.query_map(params![now, limit as i64], alert_row)?;
        rows.map(|r| with_payload(r?)).collect()
    }

    /// The earliest next attempt of a pending alert.
    pub fn next_alert_due(&self) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row(
                "SELECT MIN(next_attempt_at) FROM alerts_outbox WHERE status = 'pending'",
                [],
                |r| r.get::<_, Option<String>>(0),
            )
            .optional()?
            .flatten())
    }

    /// Every alert, newest first.
    pub fn alerts(&self, limit: usize) -> Result<Vec<AlertRow>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {ALERT_COLS} FROM alerts_outbox ORDER BY id DESC LIMIT ?1"
        ))?;
        let rows = stmt.query_map(params![limit as i64], alert_row)?;
        rows.map(|r| with_payload(r?)).collect()
    }

    /// Marks an alert delivered.
    pub fn mark_alert_sent(&self, id: i64, now: &str) -> Result<()> {
        self.conn.execute(
            "UPDATE alerts_outbox SET status = 'sent', attempts = attempts + 1, sent_at = ?2,
                    last_error = NULL WHERE id = ?1",
            params![id, now],
        )?;
        Ok(())
    }

    /// Records a failed attempt: retried at `next_at`, or given up (`failed`) when `give_up`.
    pub fn mark_alert_attempt(
        &self,
        id: i64,
        error: &str,
        next_at: &str,
        give_up: bool,
    ) -> Result<()> {
        self.conn.execute(
            "UPDATE alerts_outbox SET attempts = attempts + 1, last_error = ?2, next_attempt_at = ?3,
                    status = CASE WHEN ?4 THEN 'failed' ELSE status END WHERE id = ?1",
            params![id, error, next_at, give_up],
        )?;
        Ok(())
    }

    /// Transactions scored (a flag row exists for their current version) and how: the
    /// inputs of the processing status. `None` for a transaction never scored.
    pub fn processing_facts(&self, tx_id: &str) -> Result<Option<(bool, Option<String>)>> {
        Ok(self
            .conn
            .query_row(
                "SELECT f.kinds <> '[]', c.state
                   FROM transactions t
                   JOIN flags f ON f.transaction_id = t.transaction_id AND f.row_hash = t.row_hash
                   LEFT JOIN cases c ON c.transaction_id = t.transaction_id
                  WHERE t.transaction_id = ?1",
                [tx_id],
                |r| Ok((r.get::<_, bool>(0)?, r.get::<_, Option<String>>(1)?)),
            )
            .optional()?)
    }

    /// Transactions grouped by what their processing status is made of: the kinds of
    /// their current flag (`None` when not scored in this version) and their case
    /// state, with the count of each group ([`crate::policy::processing_status`] names
    /// the status).
    pub fn processing_groups(&self) -> Result<Vec<ProcessingGroup>> {
        let mut stmt = self.conn.prepare(
            "SELECT CASE WHEN f.transaction_id IS NULL OR f.row_hash <> t.row_hash THEN NULL
                         ELSE f.kinds END AS k, c.state, COUNT(*)
               FROM transactions t
               LEFT JOIN flags f ON f.transaction_id = t.transaction_id
               LEFT JOIN cases c ON c.transaction_id = t.transaction_id
              GROUP BY k, c.state",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, Option<String>>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (k, state, n) = row?;
            let kinds = match k {
                Some(k) => Some(kinds_of("flags", "(group)", &k)?),
                None => None,
            };
            out.push((kinds, state, n));
        }
        Ok(out)
    }

    /// Puts a validated transaction into the queue as a QA sample: its flag (for this very
    /// version of the row) gains the `qa_sample` kind and the reason. A flag that already
    /// carries kinds is left alone. Returns whether the flag was changed.
    pub fn mark_qa_sample(&self, tx_id: &str, row_hash: &str, reason: &str) -> Result<bool> {
        let reasons = serde_json::Value::from(vec![reason]).to_string();
        let n = self.conn.execute(
            "UPDATE flags SET kinds = '[\"qa_sample\"]', reasons = ?3
              WHERE transaction_id = ?1 AND row_hash = ?2 AND kinds = '[]'",
            rusqlite::params![tx_id, row_hash, reasons],
        )?;
        Ok(n > 0)
    }

    /// `ai_validated` transactions of high-value partners in the review window (scored, no
    /// kinds), the pool the QA sample is drawn from.
    /// `listed` are the partners the configuration names high-value on top of the PRM's.
    pub fn validated_high_value(&self, listed: &[&str]) -> Result<Vec<(String, String, i64)>> {
        let listed = serde_json::Value::from(listed.to_vec()).to_string();
        let mut stmt = self.conn.prepare(
            "SELECT f.transaction_id, f.row_hash, f.at_stake_minor
               FROM flags f
               JOIN transactions t ON t.transaction_id = f.transaction_id AND t.row_hash = f.row_hash
               JOIN partners p ON p.partner_id = t.partner_id
                AND (p.high_value <> 0 OR p.partner_id IN (SELECT value FROM json_each(?1)))
              WHERE f.in_window = 1 AND f.kinds = '[]'
              ORDER BY f.transaction_id",
        )?;
        let rows = stmt.query_map([&listed], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The program's tier ids, lowest rank first.
    pub fn policy_tier_ids(&self) -> Result<Vec<String>> {
        let mut stmt = self
            .conn
            .prepare("SELECT tier_id FROM tiers ORDER BY rank, tier_id")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
