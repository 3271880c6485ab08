-- Governed automation (policy routing, rollout phases, alerts). Relies only on schema v3.

-- The rollout phase per program ('*') or per partner tier; changed only by a manager
-- through `tierdesk policy phase set` (audited).
CREATE TABLE IF NOT EXISTS policy_phases (
    scope       TEXT PRIMARY KEY,           -- '*' for the program, else a tier id
    phase       TEXT NOT NULL,              -- observe | review | assist
    changed_by  TEXT NOT NULL,
    changed_at  TEXT NOT NULL,
    reason      TEXT NOT NULL
);

-- What the policy did with each flag (one row per transaction, for the flag version routed).
CREATE TABLE IF NOT EXISTS policy_routes (
    transaction_id TEXT PRIMARY KEY,
    row_hash       TEXT NOT NULL,           -- flags.row_hash routed
    kinds          TEXT NOT NULL,           -- JSON array, as routed
    rule           TEXT NOT NULL,           -- rule name (or 'default')
    action         TEXT NOT NULL,           -- queue | task | hold | auto_adjust
    effect         TEXT NOT NULL,           -- what was done in the phase: none | held | adjusted | queued | task | qa_sample
    phase          TEXT NOT NULL,
    at_stake_minor INTEGER NOT NULL DEFAULT 0,
    decision_id    TEXT,                    -- the policy actor's decision, when adjusted
    routed_at      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_policy_routes_effect ON policy_routes(effect);

-- Durable alerts outbox: one row per (channel, flag change) or digest.
CREATE TABLE IF NOT EXISTS alerts_outbox (
    id              INTEGER PRIMARY KEY,
    alert_id        TEXT NOT NULL UNIQUE,   -- webhook-id on the wire
    channel         TEXT NOT NULL,
    dedupe_key      TEXT NOT NULL UNIQUE,
    kind            TEXT NOT NULL,          -- flag | digest | test
    transaction_id  TEXT,
    payload         TEXT NOT NULL,          -- JSON: the alert content (no tax ids, no bank details)
    status          TEXT NOT NULL DEFAULT 'pending', -- pending | sent | failed
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    last_error      TEXT,
    created_at      TEXT NOT NULL,
    sent_at         TEXT
);
CREATE INDEX IF NOT EXISTS idx_alerts_pending ON alerts_outbox(status, next_attempt_at);
