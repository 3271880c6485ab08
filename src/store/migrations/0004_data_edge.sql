-- 0004: the data edge. What a cache is bound to, the imports and syncs that started
-- and have not finished, the raw bytes of quarantined lines that were not UTF-8, and
-- the integrity problems of PRM rows kept because the PRM is the source of truth.

-- One row: the PRM the cache was filled from (set by the first sync that reaches it)
-- and whether it is a demo cache (which never syncs). The program it is bound to is
-- the `program` table's row.
CREATE TABLE IF NOT EXISTS cache_binding (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    demo          INTEGER NOT NULL DEFAULT 0,
    prm_provider  TEXT,
    prm_base_url  TEXT,
    prm_tenant    TEXT,
    prm_program   TEXT,
    bound_at      TEXT NOT NULL
);

-- An import or sync in progress: written when it starts, deleted when it ends well.
-- A row whose process is gone is an interrupted run.
CREATE TABLE IF NOT EXISTS work_runs (
    kind        TEXT PRIMARY KEY,      -- 'import' | 'sync'
    source      TEXT NOT NULL,         -- the folder imported, or the PRM's URL
    pid         INTEGER NOT NULL,
    host        TEXT NOT NULL DEFAULT '',
    started_at  TEXT NOT NULL
);

-- The exact bytes of a quarantined line that was not valid UTF-8 (`quarantine.raw`
-- holds a readable, lossy copy).
CREATE TABLE IF NOT EXISTS quarantine_raw (
    quarantine_id INTEGER PRIMARY KEY,   -- quarantine.id
    raw_bytes     BLOB NOT NULL
);

-- A PRM row kept although it breaks a rule of the data set (kind data_integrity).
CREATE TABLE IF NOT EXISTS integrity_issues (
    transaction_id TEXT PRIMARY KEY,
    field          TEXT NOT NULL,
    reason         TEXT NOT NULL,
    source         TEXT NOT NULL,      -- 'prm' | 'import'
    found_at       TEXT NOT NULL
);
