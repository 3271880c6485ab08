-- What the vendor's ERP billed (erp_invoices.jsonl): the ERP cross-check of each sale.
-- Lines are kept as JSON ([{"sku","quantity","amount"}], amounts as decimal strings).
CREATE TABLE IF NOT EXISTS erp_invoices (
    invoice_number TEXT PRIMARY KEY,
    customer_name  TEXT NOT NULL,
    partner_id     TEXT NOT NULL,
    invoice_date   TEXT NOT NULL,
    currency       TEXT NOT NULL,
    lines          TEXT NOT NULL
);
