-- PRM connectors (issue 18).
-- Keys a PRM refers to records by that are not domain records: PartnerStack's
-- partnership keys (-> partner_key) and customer keys (-> partner, customer name).
CREATE TABLE IF NOT EXISTS prm_keys (
    kind       TEXT NOT NULL,          -- partnership | customer
    key        TEXT NOT NULL,
    partner_id TEXT NOT NULL,
    name       TEXT,
    PRIMARY KEY (kind, key)
);
-- The domain fields of a pulled transaction that neither the PRM nor an import
-- provided (comma list, NULL when complete): detectors that need one say
-- "not evaluated" for the record instead of passing it.
ALTER TABLE transactions ADD COLUMN missing TEXT;
