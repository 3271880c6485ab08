-- The processing status last written back to the PRM per transaction (Impartner's
-- custom fields): a digest of status, anomaly score and flag reason, so each change is
-- written once.
CREATE TABLE IF NOT EXISTS prm_status_written (
    transaction_id TEXT PRIMARY KEY,
    digest         TEXT NOT NULL,
    status         TEXT NOT NULL,
    written_at     TEXT NOT NULL
);
