//! Statement formats: self-contained HTML (inline CSS, every text escaped) and CSV of
//! the lines. Both read the JSON statement model, so every format shows the same figures.

use serde_json::Value;

/// Escapes text for HTML element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

fn s(v: &Value, ptr: &str) -> String {
    match v.pointer(ptr) {
        Some(Value::String(x)) => x.clone(),
        Some(Value::Null) | None => String::new(),
        Some(x) => x.to_string(),
    }
}

const CSS: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222}\
table{border-collapse:collapse;width:100%;margin:1em 0}\
th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;font-size:13px}\
td.n{text-align:right;font-variant-numeric:tabular-nums}\
h1{font-size:20px}h2{font-size:16px;margin-top:1.5em}.muted{color:#666}\
.status{display:inline-block;padding:2px 8px;border-radius:4px;background:#eee}";

/// The statement as one self-contained HTML page.
pub fn html(st: &Value) -> String {
    let mut h = String::new();
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    h.push_str(&format!(
        "<title>Statement {}</title><style>{CSS}</style></head><body>\n",
        esc(&s(st, "/statement_id"))
    ));
    h.push_str(&format!(
        "<h1>Commission statement: {} ({})</h1>\n",
        esc(&s(st, "/payee/name")),
        esc(&s(st, "/payee_partner_id"))
    ));
    h.push_str("<table>\n");
    for (label, ptr) in [
        ("Statement", "/statement_id"),
        ("Program", "/program"),
        ("Plan", "/plan_id"),
        ("Period", "/period"),
        ("Status", "/status"),
        ("Computed at", "/computed_at"),
        ("Audit chain head", "/audit_head"),
        ("Tax id", "/payee/tax_id"),
        ("Bank account", "/payee/bank_account"),
        ("Currency", "/currency"),
    ] {
        h.push_str(&format!(
            "<tr><th>{}</th><td>{}</td></tr>\n",
            esc(label),
            esc(&s(st, ptr))
        ));
    }
    h.push_str("</table>\n<h2>Summary</h2>\n<table>\n");
    for (label, ptr) in [
        ("Total payable", "/summary/payable"),
        ("Earned", "/summary/earned"),
        ("Adjustments", "/summary/adjustments"),
        ("Clawbacks", "/summary/clawbacks"),
        ("Held", "/summary/held"),
        ("Carried forward", "/summary/carried_forward"),
        ("Bookings", "/summary/bookings"),
        ("Quota", "/summary/quota"),
        ("Attainment", "/summary/attainment"),
        (
            "Accelerator reached (multiplier)",
            "/summary/accelerator/multiplier",
        ),
        (
            "Previous period payable",
            "/summary/previous_period_payable",
        ),
        (
            "Change against the previous period",
            "/summary/change_vs_previous",
        ),
        ("Payable year to date (YTD)", "/summary/ytd_payable"),
    ] {
        h.push_str(&format!(
            "<tr><th>{}</th><td class=\"n\">{}</td></tr>\n",
            esc(label),
            esc(&s(st, ptr))
        ));
    }
    h.push_str("</table>\n<h2>Lines</h2>\n<table>\n<tr><th>Commission</th><th>Transaction</th><th>Closed</th><th>Role</th><th>Amount</th><th>Plan amount</th><th>Derivation</th><th>Review</th></tr>\n");
    for l in st["lines"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
        let steps: Vec<String> = l
            .pointer("/derivation/steps")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|x| x.as_str()).map(esc).collect())
            .unwrap_or_default();
        let review = if l["decision"].is_null() {
            String::new()
        } else {
            format!(
                "{} by {} at {} ({})",
                s(l, "/decision/action"),
                s(l, "/decision/by"),
                s(l, "/decision/at"),
                s(l, "/decision/state")
            )
        };
        h.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td><td>{}</td></tr>\n",
            esc(&s(l, "/commission_id")),
            esc(&s(l, "/transaction_id")),
            esc(&s(l, "/closed_on")),
            esc(&s(l, "/role")),
            esc(&s(l, "/amount")),
            esc(&s(l, "/derivation/plan_amount")),
            steps.join("<br>"),
            esc(&review),
        ));
    }
    h.push_str("</table>\n<h2>Prior-period adjustments</h2>\n<table>\n<tr><th>Transaction</th><th>Original period</th><th>Amount</th><th>Decision</th><th>Decided at</th></tr>\n");
    for p in st["prior_period_adjustments"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
    {
        h.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td><td>{}</td><td>{}</td></tr>\n",
            esc(&s(p, "/transaction_id")),
            esc(&s(p, "/original_period")),
            esc(&s(p, "/amount")),
            esc(&s(p, "/decision")),
            esc(&s(p, "/decided_at")),
        ));
    }
    h.push_str("</table>\n<h2>Disputes</h2>\n<table>\n<tr><th>Dispute</th><th>Transaction</th><th>State</th><th>Reason</th><th>Claimed</th><th>Granted</th></tr>\n");
    for d in st["disputes"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
        h.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>\n",
            esc(&s(d, "/dispute_id")),
            esc(&s(d, "/transaction_id")),
            esc(&s(d, "/state")),
            esc(&s(d, "/reason_code")),
            esc(&s(d, "/claimed")),
            esc(&s(d, "/granted")),
        ));
    }
    h.push_str("</table>\n<h2>What changed</h2>\n<ul>\n");
    for n in st["narrative"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
        h.push_str(&format!("<li>{}</li>\n", esc(&s(n, "/text"))));
    }
    h.push_str("</ul>\n<p class=\"muted\">Tax ids and bank details are masked to the last four characters.</p>\n</body></html>\n");
    h
}

/// The statement's lines as CSV.
pub fn csv(st: &Value) -> anyhow::Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "statement_id",
        "payee_partner_id",
        "period",
        "status",
        "commission_id",
        "transaction_id",
        "closed_on",
        "role",
        "amount",
        "prm_amount",
        "plan_amount",
        "decision",
        "decision_action",
        "decision_effect",
    ])?;
    for l in st["lines"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
        w.write_record([
            s(st, "/statement_id"),
            s(st, "/payee_partner_id"),
            s(st, "/period"),
            s(st, "/status"),
            s(l, "/commission_id"),
            s(l, "/transaction_id"),
            s(l, "/closed_on"),
            s(l, "/role"),
            s(l, "/amount"),
            s(l, "/prm_amount"),
            s(l, "/derivation/plan_amount"),
            s(l, "/decision/decision_id"),
            s(l, "/decision/action"),
            s(l, "/decision/effect/kind"),
        ])?;
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}
