-- The processing status last written back to the PRM per transaction (Impartner's
-- custom fields), with the anomaly score and flag reason written beside it, so each
-- change is written once.
CREATE TABLE IF NOT EXISTS prm_status_written (
    transaction_id TEXT PRIMARY KEY,
    status         TEXT NOT NULL,
    score          REAL,
    reason         TEXT,
    written_at     TEXT NOT NULL
);
