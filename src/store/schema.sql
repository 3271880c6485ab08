-- tierdesk cache schema, version 1.
-- Money columns are TEXT holding exact decimal strings (never REAL).
-- Dates are TEXT 'YYYY-MM-DD'; timestamps TEXT RFC 3339 UTC ('2026-09-12T08:31:40Z').

CREATE TABLE IF NOT EXISTS program (
    id                      INTEGER PRIMARY KEY CHECK (id = 1),
    program_id              TEXT NOT NULL,
    name                    TEXT NOT NULL,
    currency                TEXT NOT NULL,
    fiscal_year_start_month INTEGER NOT NULL,
    as_of                   TEXT NOT NULL,
    review_start            TEXT NOT NULL,
    review_end              TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS plan (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    plan_id   TEXT NOT NULL,
    json      TEXT NOT NULL           -- plan.json as imported (canonical re-serialisation)
);

CREATE TABLE IF NOT EXISTS tiers (
    tier_id TEXT PRIMARY KEY,
    name    TEXT NOT NULL,
    rank    INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS products (
    sku                    TEXT PRIMARY KEY,
    name                   TEXT NOT NULL,
    family                 TEXT NOT NULL,
    list_price             TEXT NOT NULL,
    certification_required TEXT,
    active                 INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS discount_policy (
    tier_id          TEXT NOT NULL,
    family           TEXT NOT NULL,
    max_discount_pct TEXT NOT NULL,
    PRIMARY KEY (tier_id, family)
);

CREATE TABLE IF NOT EXISTS partners (
    partner_id        TEXT PRIMARY KEY,
    name              TEXT NOT NULL,
    kind              TEXT NOT NULL,
    parent_partner_id TEXT,
    region            TEXT NOT NULL,
    country           TEXT,
    joined_on         TEXT NOT NULL,
    certifications    TEXT NOT NULL,  -- JSON array
    tax_id            TEXT,
    bank_account      TEXT,           -- JSON object
    high_value        INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS tier_history (
    partner_id     TEXT NOT NULL,
    tier_id        TEXT NOT NULL,
    effective_from TEXT NOT NULL,
    PRIMARY KEY (partner_id, effective_from)
);

CREATE TABLE IF NOT EXISTS quotas (
    partner_id TEXT NOT NULL,
    period     TEXT NOT NULL,
    quota      TEXT NOT NULL,
    PRIMARY KEY (partner_id, period)
);

CREATE TABLE IF NOT EXISTS registrations (
    registration_id TEXT PRIMARY KEY,
    partner_id      TEXT NOT NULL,
    customer_name   TEXT NOT NULL,
    expected_amount TEXT NOT NULL,
    registered_on   TEXT NOT NULL,
    expires_on      TEXT NOT NULL,
    status          TEXT NOT NULL
);

-- Partner-reported sales and refunds. `rowid` is the stable integer key used by
-- indexes and keyset pagination; `row_hash` changes when the PRM changes the row
-- (so rescoring and sign-off lapsing can detect it); `record_version` is the PRM's.
CREATE TABLE IF NOT EXISTS transactions (
    rowid                   INTEGER PRIMARY KEY,
    transaction_id          TEXT NOT NULL,       -- unique: idx_tx_id
    kind                    TEXT NOT NULL,
    original_transaction_id TEXT,
    partner_id              TEXT NOT NULL,
    registration_id         TEXT,
    customer_name           TEXT NOT NULL,
    sku                     TEXT NOT NULL,
    quantity                INTEGER NOT NULL,
    unit_list_price         TEXT NOT NULL,
    unit_net_price          TEXT NOT NULL,
    amount                  TEXT NOT NULL,
    amount_minor            INTEGER NOT NULL, -- amount in minor units (cents), for sorting/filtering only
    currency                TEXT NOT NULL,
    closed_on               TEXT NOT NULL,
    submitted_at            TEXT NOT NULL,
    invoice_number          TEXT NOT NULL,
    notes                   TEXT,
    row_hash                TEXT NOT NULL,
    record_version          INTEGER NOT NULL DEFAULT 1,
    updated_at              TEXT NOT NULL
);

-- The PRM's commission lines.
CREATE TABLE IF NOT EXISTS commissions (
    commission_id    TEXT PRIMARY KEY,
    transaction_id   TEXT NOT NULL,
    payee_partner_id TEXT NOT NULL,
    role             TEXT NOT NULL,
    amount           TEXT NOT NULL,
    period           TEXT NOT NULL
);

-- Rejected input rows: nothing a partner sent is lost.
CREATE TABLE IF NOT EXISTS quarantine (
    id          INTEGER PRIMARY KEY,
    source      TEXT NOT NULL,        -- file name or PRM resource
    line        INTEGER,              -- 1-based line number, when from a file
    field       TEXT,
    error       TEXT NOT NULL,
    raw         TEXT NOT NULL,
    received_at TEXT NOT NULL
);

-- One flag per scored transaction (the latest scoring).
CREATE TABLE IF NOT EXISTS flags (
    transaction_id   TEXT PRIMARY KEY,
    score            REAL NOT NULL,
    confidence       REAL NOT NULL,
    kinds            TEXT NOT NULL,   -- JSON array of kind names
    reasons          TEXT NOT NULL,   -- JSON array of sentences
    evidence         TEXT NOT NULL DEFAULT '{}', -- JSON: detector evidence figures
    detector_version TEXT NOT NULL,
    source           TEXT NOT NULL DEFAULT 'local', -- 'local' or 'prm'
    row_hash         TEXT NOT NULL,   -- transactions.row_hash that was scored
    scored_at        TEXT NOT NULL,
    in_window        INTEGER NOT NULL DEFAULT 0,
    amount_minor     INTEGER NOT NULL DEFAULT 0,
    at_stake_minor   INTEGER NOT NULL DEFAULT 0,
    partner_id       TEXT NOT NULL DEFAULT '',
    status           TEXT NOT NULL DEFAULT 'flagged'
);

-- AI flags computed on the PRM side, merged with local ones.
CREATE TABLE IF NOT EXISTS remote_flags (
    flag_id        TEXT PRIMARY KEY,
    transaction_id TEXT NOT NULL,
    kind           TEXT NOT NULL,
    score          REAL NOT NULL,
    reason         TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);

-- Proposed accrual adjustment per flagged transaction.
CREATE TABLE IF NOT EXISTS proposals (
    transaction_id   TEXT PRIMARY KEY,
    action           TEXT NOT NULL,   -- hold | reverse | recompute | adjust
    current_amount   TEXT NOT NULL,   -- the accrued commission now
    proposed_amount  TEXT NOT NULL,   -- what it should be
    delta            TEXT NOT NULL,   -- proposed - current
    currency         TEXT NOT NULL,
    rationale        TEXT NOT NULL,
    detector_version TEXT NOT NULL,
    created_at       TEXT NOT NULL
);

-- Workflow state per transaction under review.
CREATE TABLE IF NOT EXISTS cases (
    transaction_id  TEXT PRIMARY KEY,
    state           TEXT NOT NULL,
    decided_amount  TEXT,
    proposer        TEXT,
    signed_hash     TEXT,             -- hash of what was signed off (lapses when it changes)
    version         INTEGER NOT NULL DEFAULT 0,
    updated_at      TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS decisions (
    decision_id     TEXT PRIMARY KEY, -- client-made UUID; idempotency key on the wire
    transaction_id  TEXT NOT NULL,
    action          TEXT NOT NULL,
    amount          TEXT,
    reason          TEXT NOT NULL,
    actor           TEXT NOT NULL,
    role            TEXT NOT NULL,
    from_state      TEXT NOT NULL,
    to_state        TEXT NOT NULL,
    record_version  INTEGER,
    reverts         TEXT,             -- decision_id this one reverts/compensates
    created_at      TEXT NOT NULL
);

-- Append-only, hash-chained audit trail.
CREATE TABLE IF NOT EXISTS audit_log (
    seq              INTEGER PRIMARY KEY,
    at               TEXT NOT NULL,
    actor            TEXT NOT NULL,
    role             TEXT NOT NULL,
    action           TEXT NOT NULL,
    target           TEXT NOT NULL,
    before           TEXT,
    after            TEXT,
    reason           TEXT,
    score            REAL,
    confidence       REAL,
    detector_version TEXT,
    decision_id      TEXT,
    prev_hash        TEXT NOT NULL,
    hash             TEXT NOT NULL
);

-- The head of the audit chain as last written (same SQLite transaction as the entry):
-- lets `audit verify` notice entries removed from the end of the chain.
CREATE TABLE IF NOT EXISTS audit_anchor (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  INTEGER NOT NULL,
    hash TEXT NOT NULL
);

-- flags.status mirrors the case state (the workbench queue reads it), whoever writes
-- cases, and survives a rescore that re-inserts the flag row.
CREATE TRIGGER IF NOT EXISTS trg_cases_status_ins AFTER INSERT ON cases
BEGIN
    UPDATE flags SET status = NEW.state
     WHERE transaction_id = NEW.transaction_id AND status <> NEW.state;
END;

CREATE TRIGGER IF NOT EXISTS trg_cases_status_upd AFTER UPDATE OF state ON cases
BEGIN
    UPDATE flags SET status = NEW.state
     WHERE transaction_id = NEW.transaction_id AND status <> NEW.state;
END;

CREATE TRIGGER IF NOT EXISTS trg_flags_status_from_case AFTER INSERT ON flags
WHEN EXISTS (SELECT 1 FROM cases c WHERE c.transaction_id = NEW.transaction_id AND c.state <> NEW.status)
BEGIN
    UPDATE flags SET status = (SELECT c.state FROM cases c WHERE c.transaction_id = NEW.transaction_id)
     WHERE transaction_id = NEW.transaction_id;
END;

-- Transactional outbox of decisions to push to the PRM.
CREATE TABLE IF NOT EXISTS outbox (
    id              INTEGER PRIMARY KEY,
    decision_id     TEXT NOT NULL UNIQUE,
    idempotency_key TEXT NOT NULL UNIQUE,
    transaction_id  TEXT NOT NULL,
    payload         TEXT NOT NULL,    -- JSON
    record_version  INTEGER,
    audit_head      TEXT,
    status          TEXT NOT NULL DEFAULT 'pending', -- pending | pushed | conflict | failed | cancelled (undone before push)
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    created_at      TEXT NOT NULL,
    pushed_at       TEXT
);

-- Conflicts found while pushing: what the reviewer saw, decided, and what the PRM has now.
CREATE TABLE IF NOT EXISTS conflicts (
    id             INTEGER PRIMARY KEY,
    transaction_id TEXT NOT NULL,
    decision_id    TEXT NOT NULL,
    seen           TEXT NOT NULL,
    decided        TEXT NOT NULL,
    remote         TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    resolved_at    TEXT
);

CREATE TABLE IF NOT EXISTS sync_cursors (
    resource   TEXT PRIMARY KEY,
    cursor     TEXT,
    updated_at TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS sync_state (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Counters kept current as flags and decisions change (the queue header reads these,
-- never a COUNT over the whole table per frame).
CREATE TABLE IF NOT EXISTS counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);

-- The transactions' key, as an index of its own (not a column constraint) so that a
-- bulk import into an empty table can build it once at the end (schema version 3).
CREATE UNIQUE INDEX IF NOT EXISTS idx_tx_id ON transactions (transaction_id);
CREATE INDEX IF NOT EXISTS idx_tx_partner ON transactions (partner_id, closed_on);
CREATE INDEX IF NOT EXISTS idx_tx_submitted ON transactions (submitted_at);
CREATE INDEX IF NOT EXISTS idx_comm_tx ON commissions (transaction_id);
CREATE INDEX IF NOT EXISTS idx_flags_queue ON flags (in_window, score DESC, transaction_id);
CREATE INDEX IF NOT EXISTS idx_flags_partner ON flags (partner_id);
CREATE INDEX IF NOT EXISTS idx_flags_status ON flags (status, score DESC);
CREATE INDEX IF NOT EXISTS idx_cases_state ON cases (state);
CREATE INDEX IF NOT EXISTS idx_decisions_tx ON decisions (transaction_id, created_at);
CREATE INDEX IF NOT EXISTS idx_audit_target ON audit_log (target, seq);
CREATE INDEX IF NOT EXISTS idx_outbox_status ON outbox (status, id);
CREATE INDEX IF NOT EXISTS idx_reg_partner ON registrations (partner_id);
CREATE INDEX IF NOT EXISTS idx_quarantine_line ON quarantine (source, line);

-- Workbench queue (tui): rank/sort indexes for keyset pagination over in-window flags.
-- Partial indexes: they hold only the queue's rows, so scans never touch clean transactions.
CREATE INDEX IF NOT EXISTS idx_queue_rank ON flags (score, at_stake_minor, transaction_id)
    WHERE in_window = 1 AND kinds <> '[]';
CREATE INDEX IF NOT EXISTS idx_queue_stake ON flags (at_stake_minor, transaction_id)
    WHERE in_window = 1 AND kinds <> '[]';
CREATE INDEX IF NOT EXISTS idx_queue_amount ON flags (amount_minor, transaction_id)
    WHERE in_window = 1 AND kinds <> '[]';

-- Queue header counters (tui): `queue:total`, `kind:<kind>` and `status:<state>` over the
-- exception queue (in-window flags with at least one kind), kept current by triggers so the
-- header never counts rows per frame.
CREATE TRIGGER IF NOT EXISTS trg_flags_count_ins AFTER INSERT ON flags
WHEN NEW.in_window = 1 AND NEW.kinds <> '[]'
BEGIN
    INSERT INTO counters (name, value) VALUES ('queue:total', 1)
        ON CONFLICT (name) DO UPDATE SET value = value + 1;
    INSERT INTO counters (name, value) VALUES ('status:' || NEW.status, 1)
        ON CONFLICT (name) DO UPDATE SET value = value + 1;
    INSERT INTO counters (name, value) SELECT 'kind:' || j.value, 1 FROM json_each(NEW.kinds) AS j WHERE 1
        ON CONFLICT (name) DO UPDATE SET value = value + 1;
END;

CREATE TRIGGER IF NOT EXISTS trg_flags_count_del AFTER DELETE ON flags
WHEN OLD.in_window = 1 AND OLD.kinds <> '[]'
BEGIN
    UPDATE counters SET value = value - 1 WHERE name = 'queue:total';
    UPDATE counters SET value = value - 1 WHERE name = 'status:' || OLD.status;
    UPDATE counters SET value = value - 1
        WHERE name IN (SELECT 'kind:' || j.value FROM json_each(OLD.kinds) AS j);
END;

CREATE TRIGGER IF NOT EXISTS trg_flags_count_upd_old AFTER UPDATE OF in_window, kinds, status ON flags
WHEN OLD.in_window = 1 AND OLD.kinds <> '[]'
BEGIN
    UPDATE counters SET value = value - 1 WHERE name = 'queue:total';
    UPDATE counters SET value = value - 1 WHERE name = 'status:' || OLD.status;
    UPDATE counters SET value = value - 1
        WHERE name IN (SELECT 'kind:' || j.value FROM json_each(OLD.kinds) AS j);
END;

CREATE TRIGGER IF NOT EXISTS trg_flags_count_upd_new AFTER UPDATE OF in_window, kinds, status ON flags
WHEN NEW.in_window = 1 AND NEW.kinds <> '[]'
BEGIN
    INSERT INTO counters (name, value) VALUES ('queue:total', 1)
        ON CONFLICT (name) DO UPDATE SET value = value + 1;
    INSERT INTO counters (name, value) VALUES ('status:' || NEW.status, 1)
        ON CONFLICT (name) DO UPDATE SET value = value + 1;
    INSERT INTO counters (name, value) SELECT 'kind:' || j.value, 1 FROM json_each(NEW.kinds) AS j WHERE 1
        ON CONFLICT (name) DO UPDATE SET value = value + 1;
END;

-- The PRM's reward (commission object) status per commission line, pulled with the
-- rewards (sync; schema version 2). status as the PRM says it: hold | pending | approved
-- | declined (with decline_reason) | paid; a clawback is a negative reward (commissions
-- row with a negative amount). record_version / remote_updated: the PRM's version and
-- updated time (epoch ms) of the reward.
CREATE TABLE IF NOT EXISTS prm_rewards (
    reward_id      TEXT PRIMARY KEY,
    transaction_id TEXT NOT NULL,
    status         TEXT NOT NULL,
    decline_reason TEXT,
    record_version INTEGER,
    remote_updated INTEGER,
    pulled_at      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_prm_rewards_tx ON prm_rewards (transaction_id);
