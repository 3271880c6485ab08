//! PRM webhook events (`tierdesk listen`): stored before the receiver answers 2xx,
//! deduplicated by the table's unique indexes (migration 0016), then worked through
//! in order by the receiver's worker.

use std::collections::BTreeMap;

use rusqlite::{params, OptionalExtension};

use super::{Result, Store, StoreError};

/// Where an event is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WebhookState {
    /// Verified and stored; waits for the worker.
    Received,
    /// The named object was re-fetched through the PRM API.
    Fetched,
    /// The fetched object went through the pull-and-score path.
    Scored,
    /// Re-fetching or scoring failed (`error` says why); polling catches up.
    Failed,
    /// An event tierdesk does not act on (kept, never an error).
    Ignored,
}

impl WebhookState {
    pub const ALL: [WebhookState; 5] = [
        WebhookState::Received,
        WebhookState::Fetched,
        WebhookState::Scored,
        WebhookState::Failed,
        WebhookState::Ignored,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WebhookState::Received => "received",
            WebhookState::Fetched => "fetched",
            WebhookState::Scored => "scored",
            WebhookState::Failed => "failed",
            WebhookState::Ignored => "ignored",
        }
    }

    pub fn parse(s: &str) -> Option<WebhookState> {
        WebhookState::ALL.into_iter().find(|w| w.as_str() == s)
    }
}

/// An event to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWebhookEvent<'a> {
    pub provider: &'a str,
    pub event_id: Option<&'a str>,
    pub event_type: &'a str,
    /// The tierdesk resource (`partners`, `deals`, `transactions`, `rewards`).
    pub object_kind: Option<&'a str>,
    pub object_key: Option<&'a str>,
    pub object_updated_at: Option<&'a str>,
    pub received_at: &'a str,
    pub raw_body: &'a str,
    /// `Received`, or `Ignored` for an event tierdesk does not act on.
    pub state: WebhookState,
    pub error: Option<&'a str>,
}

/// A stored event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEvent {
    pub id: i64,
    pub provider: String,
    pub event_id: Option<String>,
    pub event_type: String,
    pub object_kind: Option<String>,
    pub object_key: Option<String>,
    pub object_updated_at: Option<String>,
    pub received_at: String,
    pub raw_body: String,
    pub state: WebhookState,
    pub error: Option<String>,
}

const COLUMNS: &str = "id, provider, event_id, event_type, object_kind, object_key, \
                       object_updated_at, received_at, raw_body, state, error";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(WebhookEvent, String)> {
    let state: String = r.get(9)?;
    Ok((
        WebhookEvent {
            id: r.get(0)?,
            provider: r.get(1)?,
            event_id: r.get(2)?,
            event_type: r.get(3)?,
            object_kind: r.get(4)?,
            object_key: r.get(5)?,
            object_updated_at: r.get(6)?,
            received_at: r.get(7)?,
            raw_body: r.get(8)?,
            state: WebhookState::Received,
            error: r.get(10)?,
        },
        state,
    ))
}

fn finish(rows: Vec<(WebhookEvent, String)>) -> Result<Vec<WebhookEvent>> {
    rows.into_iter()
        .map(|(mut e, s)| {
            e.state = WebhookState::parse(&s).ok_or_else(|| {
                StoreError::Corrupt(format!("webhook event {}: unknown state `{s}`", e.id))
            })?;
            Ok(e)
        })
        .collect()
}

impl Store {
    /// Stores an event; `None` when it is a duplicate (same provider and event id, or,
    /// without an event id, the same object and update time) and nothing was written.
    /// The row is committed (synchronous=FULL) when this returns.
    pub fn insert_webhook_event(&self, e: &NewWebhookEvent<'_>) -> Result<Option<i64>> {
        let n = self.conn.execute(
            "INSERT INTO webhook_events (provider, event_id, event_type, object_kind, \
             object_key, object_updated_at, received_at, raw_body, state, error) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT DO NOTHING",
            params![
                e.provider,
                e.event_id,
                e.event_type,
                e.object_kind,
                e.object_key,
                e.object_updated_at,
                e.received_at,
                e.raw_body,
                e.state.as_str(),
                e.error,
            ],
        )?;
        Ok((n == 1).then(|| self.conn.last_insert_rowid()))
    }

    /// The latest `limit` events, newest first (for the workbench).
    pub fn webhook_events(&self, limit: usize) -> Result<Vec<WebhookEvent>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {COLUMNS} FROM webhook_events ORDER BY id DESC LIMIT ?1"
        ))?;
        let rows = stmt
            .query_map([limit.min(i64::MAX as usize) as i64], row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        finish(rows)
    }

    /// Up to `limit` events in `state`, oldest first (the worker's queue).
    pub fn webhook_events_in_state(
        &self,
        state: WebhookState,
        limit: usize,
    ) -> Result<Vec<WebhookEvent>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {COLUMNS} FROM webhook_events WHERE state = ?1 ORDER BY id LIMIT ?2"
        ))?;
        let rows = stmt
            .query_map(
                params![state.as_str(), limit.min(i64::MAX as usize) as i64],
                row,
            )?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        finish(rows)
    }

    /// One event by its row id.
    pub fn webhook_event(&self, id: i64) -> Result<Option<WebhookEvent>> {
        let r = self
            .conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM webhook_events WHERE id = ?1"),
                [id],
                row,
            )
            .optional()?;
        Ok(finish(r.into_iter().collect())?.pop())
    }

    /// Moves an event to `state`, recording `error` (cleared when `None`).
    pub fn set_webhook_event_state(
        &self,
        id: i64,
        state: WebhookState,
        error: Option<&str>,
    ) -> Result<()> {
        self.conn.execute(
            "UPDATE webhook_events SET state = ?2, error = ?3 WHERE id = ?1",
            params![id, state.as_str(), error],
        )?;
        Ok(())
    }

    /// How many events are in each state (states without events are left out).
    pub fn webhook_event_counts(&self) -> Result<BTreeMap<WebhookState, i64>> {
        let mut stmt = self
            .conn
            .prepare("SELECT state, COUNT(*) FROM webhook_events GROUP BY state")?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(|(s, n)| {
                WebhookState::parse(&s)
                    .map(|w| (w, n))
                    .ok_or_else(|| StoreError::Corrupt(format!("unknown webhook state `{s}`")))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev<'a>(
        event_id: Option<&'a str>,
        key: Option<&'a str>,
        upd: Option<&'a str>,
    ) -> NewWebhookEvent<'a> {
        NewWebhookEvent {
            provider: "partnerstack",
            event_id,
            event_type: "transaction.updated",
            object_kind: Some("transactions"),
            object_key: key,
            object_updated_at: upd,
            received_at: "2026-12-03T09:00:00Z",
            raw_body: "{}",
            state: WebhookState::Received,
            error: None,
        }
    }

    #[test]
    fn deduplicates_on_event_id_then_on_object_version() {
        let s = Store::open_in_memory().unwrap();
        let a = s.insert_webhook_event(&ev(Some("e1"), Some("t1"), Some("5")));
        assert!(a.unwrap().is_some());
        // Same event id, other content: a duplicate.
        assert_eq!(
            s.insert_webhook_event(&ev(Some("e1"), Some("t2"), Some("6")))
                .unwrap(),
            None
        );
        // Another event id for the same object version: a different delivery, kept.
        assert!(s
            .insert_webhook_event(&ev(Some("e2"), Some("t1"), Some("5")))
            .unwrap()
            .is_some());
        // Without event ids: the object and its update time decide.
        assert!(s
            .insert_webhook_event(&ev(None, Some("t1"), Some("5")))
            .unwrap()
            .is_some());
        assert_eq!(
            s.insert_webhook_event(&ev(None, Some("t1"), Some("5")))
                .unwrap(),
            None
        );
        assert!(s
            .insert_webhook_event(&ev(None, Some("t1"), Some("7")))
            .unwrap()
            .is_some());
        // Nothing to deduplicate on: every delivery is kept.
        assert!(s
            .insert_webhook_event(&ev(None, None, None))
            .unwrap()
            .is_some());
        assert!(s
            .insert_webhook_event(&ev(None, None, None))
            .unwrap()
            .is_some());
        assert_eq!(s.webhook_events(100).unwrap().len(), 6);
    }

    #[test]
    fn states_move_and_queue_is_oldest_first() {
        let s = Store::open_in_memory().unwrap();
        let a = s
            .insert_webhook_event(&ev(Some("a"), Some("t1"), None))
            .unwrap()
            .unwrap();
        let b = s
            .insert_webhook_event(&ev(Some("b"), Some("t2"), None))
            .unwrap()
            .unwrap();
        let q = s
            .webhook_events_in_state(WebhookState::Received, 10)
            .unwrap();
        assert_eq!(q.iter().map(|e| e.id).collect::<Vec<_>>(), [a, b]);
        s.set_webhook_event_state(a, WebhookState::Failed, Some("gone"))
            .unwrap();
        let got = s.webhook_event(a).unwrap().unwrap();
        assert_eq!(got.state, WebhookState::Failed);
        assert_eq!(got.error.as_deref(), Some("gone"));
        assert_eq!(s.webhook_events(1).unwrap()[0].id, b, "newest first");
        let counts = s.webhook_event_counts().unwrap();
        assert_eq!(counts.get(&WebhookState::Received), Some(&1));
        assert_eq!(counts.get(&WebhookState::Failed), Some(&1));
    }
}
