-- PRM webhook events received by `tierdesk listen`, written before the receiver
-- answers 2xx. The record in the body is never trusted: the worker re-fetches the
-- named object through the PRM API (state received -> fetched -> scored, or failed;
-- unknown events are kept as `ignored`).
CREATE TABLE IF NOT EXISTS webhook_events (
    id                INTEGER PRIMARY KEY,
    provider          TEXT NOT NULL,
    event_id          TEXT,               -- webhook-id, or the body's id / event_id
    event_type        TEXT NOT NULL,      -- e.g. partnership.updated
    object_kind       TEXT,               -- partners, deals, transactions, rewards
    object_key        TEXT,
    object_updated_at TEXT,               -- as the body gave it (text)
    received_at       TEXT NOT NULL,
    raw_body          TEXT NOT NULL,
    state             TEXT NOT NULL DEFAULT 'received'
                      CHECK (state IN ('received', 'fetched', 'scored', 'failed', 'ignored')),
    error             TEXT
);
-- Deduplication: on the event id when there is one, else on the object and its
-- update time.
CREATE UNIQUE INDEX IF NOT EXISTS idx_webhook_event_id
    ON webhook_events (provider, event_id) WHERE event_id IS NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS idx_webhook_object_version
    ON webhook_events (provider, object_kind, object_key, object_updated_at)
    WHERE event_id IS NULL AND object_key IS NOT NULL AND object_updated_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS idx_webhook_state ON webhook_events (state, id);
