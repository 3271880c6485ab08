-- Partner statements (final snapshots) and disputes. Relies only on schema v3.

-- A final statement is stored once, as built, and never rewritten: later corrections
-- show as prior-period adjustments on a later statement.
CREATE TABLE IF NOT EXISTS statements (
    statement_id  TEXT PRIMARY KEY,
    partner_id    TEXT NOT NULL,
    period        TEXT NOT NULL,
    finalized_at  TEXT NOT NULL,
    finalized_by  TEXT NOT NULL,
    json          TEXT NOT NULL,
    UNIQUE (partner_id, period)
);

-- Partner inquiries about a commission.
CREATE TABLE IF NOT EXISTS disputes (
    dispute_id     TEXT PRIMARY KEY,
    partner_id     TEXT NOT NULL,
    transaction_id TEXT NOT NULL,
    reason_code    TEXT NOT NULL,
    claimed        TEXT NOT NULL,
    granted        TEXT,
    state          TEXT NOT NULL,
    note           TEXT NOT NULL,
    opened_by      TEXT NOT NULL,
    opened_at      TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    decision_id    TEXT
);
CREATE INDEX IF NOT EXISTS idx_disputes_partner ON disputes (partner_id, state);

-- Every move of a dispute, with its audit entry.
CREATE TABLE IF NOT EXISTS dispute_events (
    id          INTEGER PRIMARY KEY,
    dispute_id  TEXT NOT NULL,
    from_state  TEXT,
    to_state    TEXT NOT NULL,
    actor       TEXT NOT NULL,
    role        TEXT NOT NULL,
    reason      TEXT NOT NULL,
    granted     TEXT,
    at          TEXT NOT NULL,
    audit_seq   INTEGER
);
CREATE INDEX IF NOT EXISTS idx_dispute_events ON dispute_events (dispute_id, id);
