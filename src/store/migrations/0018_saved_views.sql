-- Saved views of the workbench's queue: a person's named filter, sort and columns, and
-- (under the empty name) the columns they chose last.
CREATE TABLE IF NOT EXISTS saved_views (
    owner      TEXT NOT NULL,
    name       TEXT NOT NULL,
    filter     TEXT NOT NULL,       -- JSON: kind[], status[], tier, region, min_amount_minor, mine
    sort       TEXT NOT NULL,       -- score | stake | amount | age
    reverse    INTEGER NOT NULL,
    hidden     TEXT NOT NULL,       -- JSON: the column names hidden
    updated_at TEXT NOT NULL,
    PRIMARY KEY (owner, name)
);
