-- What tierdesk knows of a payee's ACH account, by fingerprint (SHA-256 of routing and
-- account number; the numbers are not stored here): a prenote sent (and whether it came
-- back) or a payment exported. Written at export and by returns.
CREATE TABLE IF NOT EXISTS payout_accounts (
    fingerprint    TEXT PRIMARY KEY,
    partner_id     TEXT NOT NULL,
    state          TEXT NOT NULL,       -- prenote_sent | prenote_returned | paid
    run_id         TEXT NOT NULL,       -- the run that sent the prenote or the first payment
    effective_date TEXT NOT NULL,
    trace          TEXT,                -- the prenote's trace number
    return_code    TEXT,
    updated_at     TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_payout_accounts_trace ON payout_accounts(trace);
