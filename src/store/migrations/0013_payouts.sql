-- Payouts and bank reconciliation (issue 20). Relies only on schema v3.

-- The payee fields of partners.jsonl the partners table does not hold (docs/payouts.md):
-- written by the import beside the partner row, replaced on every import of the partner.
CREATE TABLE IF NOT EXISTS payee_details (
    partner_id           TEXT PRIMARY KEY,
    legal_name           TEXT,
    tax_form_kind        TEXT,            -- W-9 | W-8BEN | W-8BEN-E; NULL = none on file
    tax_form_received_on TEXT,
    account_type         TEXT,            -- checking | savings
    iban                 TEXT,
    bic                  TEXT,
    clearing_id          TEXT,            -- local clearing id, e.g. AUBSB123456
    bank_changed_on      TEXT
);

-- program.json's payout fields.
CREATE TABLE IF NOT EXISTS payout_program (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    minimum_payout TEXT NOT NULL,
    payout_rail    TEXT                   -- ach | sepa | pain001; NULL = by currency
);

-- A payout run: draft -> approved -> exported -> settled | returned.
CREATE TABLE IF NOT EXISTS payout_runs (
    run_id      TEXT PRIMARY KEY,
    period      TEXT NOT NULL,
    run_date    TEXT NOT NULL,
    currency    TEXT NOT NULL,
    state       TEXT NOT NULL,
    prepared_by TEXT NOT NULL,
    prepared_at TEXT NOT NULL,
    approved_by TEXT,
    approved_at TEXT,
    rail        TEXT,                     -- set at the first export
    exported_at TEXT,                     -- the first export's time (the file's creation time)
    file_sha256 TEXT
);

-- One row per payee of a run: what is owed and why it is (not) paid.
CREATE TABLE IF NOT EXISTS payout_payees (
    run_id       TEXT NOT NULL,
    partner_id   TEXT NOT NULL,
    seq          INTEGER NOT NULL,        -- 1-based order in the run (trace/EndToEndId sequence)
    amount       TEXT NOT NULL,
    currency     TEXT NOT NULL,
    status       TEXT NOT NULL,           -- payable | held | carried_forward
    holds        TEXT NOT NULL,           -- JSON array of {code, reason}
    warnings     TEXT NOT NULL,           -- JSON array of {code, reason}
    released_by  TEXT,                    -- JSON array of released hold codes
    payment_ref  TEXT,                    -- trace number (ACH) or EndToEndId, set at export
    state        TEXT NOT NULL DEFAULT 'prepared', -- prepared | sent | settled | returned | unmatched
    return_code  TEXT,
    PRIMARY KEY (run_id, partner_id)
);
CREATE INDEX IF NOT EXISTS idx_payout_payees_ref ON payout_payees(payment_ref);

-- The commission lines a run's payee amount is made of.
CREATE TABLE IF NOT EXISTS payout_lines (
    run_id        TEXT NOT NULL,
    commission_id TEXT NOT NULL,
    partner_id    TEXT NOT NULL,
    amount        TEXT NOT NULL,          -- after tierdesk's decisions
    held          INTEGER NOT NULL DEFAULT 0, -- 1: under review, not in the amount
    PRIMARY KEY (run_id, commission_id)
);
CREATE INDEX IF NOT EXISTS idx_payout_lines_comm ON payout_lines(commission_id);

-- Bank files read by `tierdesk reconcile` (by content hash: a second import changes nothing).
CREATE TABLE IF NOT EXISTS bank_files (
    sha256      TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    format      TEXT NOT NULL,            -- camt053 | camt054 | bai2 | nacha_return
    imported_at TEXT NOT NULL
);

-- One row per statement entry, with its match class.
CREATE TABLE IF NOT EXISTS bank_entries (
    file_sha256 TEXT NOT NULL,
    entry       INTEGER NOT NULL,         -- 1-based entry number in the file
    class       TEXT NOT NULL,            -- matched | amount | date | ambiguous | unmatched | returned
    lines       TEXT NOT NULL,            -- JSON array of "RUN/PARTNER"
    code        TEXT,
    amount      TEXT NOT NULL,
    currency    TEXT NOT NULL,
    PRIMARY KEY (file_sha256, entry)
);

-- Notifications of change (NACHA addenda 98): the payee's bank details need an update.
CREATE TABLE IF NOT EXISTS bank_change_notices (
    file_sha256 TEXT NOT NULL,
    entry       INTEGER NOT NULL,
    partner_id  TEXT NOT NULL,
    code        TEXT NOT NULL,            -- C01, C02, C05 ...
    corrected   TEXT NOT NULL,            -- the corrected data, masked
    PRIMARY KEY (file_sha256, entry)
);
