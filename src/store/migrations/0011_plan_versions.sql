-- Local plan versions (tierdesk plan apply): every applied plan is kept; the newest is
-- the plan in use (also written to `plan`). Never pushed to the PRM.
CREATE TABLE IF NOT EXISTS plan_versions (
    version     INTEGER PRIMARY KEY,      -- 1, 2, ...: 1 is the plan as imported
    plan_id     TEXT NOT NULL,
    json        TEXT NOT NULL,            -- the whole plan.json of this version
    reason      TEXT NOT NULL,
    actor       TEXT NOT NULL,
    created_at  TEXT NOT NULL,            -- RFC 3339, UTC
    audit_seq   INTEGER                   -- the audit entry that recorded it
);
