//! The record panes: Detail, Reasoning, Commission, Decision, Audit.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;
use rust_decimal::Decimal;
use unicode_width::UnicodeWidthStr;

use super::{block, fit, kind_abbrev, money_minor, money_text, status_style};
use crate::money::parse_money;
use crate::store::queue::{RecordDetail, TxView};
use crate::tui::action::Action;
use crate::tui::app::{App, Pane};

pub fn draw(f: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let [tabs, body] = Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(area);
    let mut spans = vec![Span::raw(" ")];
    for (i, p) in Pane::ALL.iter().enumerate() {
        if i > 0 {
            spans.push(Span::styled(" │ ", t.border));
        }
        let st = if *p == app.pane { t.selection } else { t.muted };
        spans.push(Span::styled(format!(" {} ", p.title()), st));
    }
    let keys = format!(
        "  {}/{} panes",
        app.keymap.short(Action::PrevPane),
        app.keymap.short(Action::NextPane)
    );
    if spans.iter().map(|s| s.content.width()).sum::<usize>() + keys.width() <= area.width as usize
    {
        spans.push(Span::styled(keys, t.muted));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), tabs);

    let Some(d) = app
        .detail
        .as_deref()
        .filter(|d| Some(&d.tx.transaction_id) == app.detail_id.as_ref())
    else {
        let text = if app.detail_id.is_some() {
            "loading…"
        } else {
            "select a record in the queue"
        };
        f.render_widget(
            Paragraph::new(text)
                .style(t.muted)
                .block(block(app, " Record ")),
            body,
        );
        return;
    };
    let title = format!(
        " {} · {} ",
        d.tx.transaction_id,
        d.partner
            .as_ref()
            .map_or(d.tx.partner_id.as_str(), |p| p.name.as_str())
    );
    let inner_w = body.width.saturating_sub(2) as usize;
    let lines = match app.pane {
        Pane::Detail => detail_lines(app, d, inner_w),
        Pane::Reasoning => reasoning_lines(app, d),
        Pane::Commission => commission_lines(app, d),
        Pane::Decision => decision_lines(app, d),
        Pane::Audit => audit_lines(app, d, inner_w),
    };
    let wrap = matches!(
        app.pane,
        Pane::Reasoning | Pane::Commission | Pane::Decision
    );
    // Scroll no further than the last line (wrapped lines counted by width).
    let total: usize = lines
        .iter()
        .map(|l| {
            if wrap {
                l.width().div_ceil(inner_w.max(1)).max(1)
            } else {
                1
            }
        })
        .sum();
    let total = total.min(u16::MAX as usize) as u16;
    let max = total.saturating_sub(body.height.saturating_sub(2));
    app.pane_max.set(max);
    let scroll = app.pane_scroll.min(max);
    let mut blk = block(app, fit(&title, inner_w));
    // More above / below: a marker on the bottom border says where and how to get there.
    if scroll < max {
        let more = format!(
            " ▼ more ({}/{}) ",
            app.keymap.short(Action::Down),
            app.keymap.short(Action::PageDown)
        );
        blk = blk.title_bottom(Line::styled(more, t.accent).right_aligned());
    } else if scroll > 0 {
        blk = blk.title_bottom(Line::styled(" ▲ top: Home ", t.muted).right_aligned());
    }
    let mut p = Paragraph::new(lines).block(blk).scroll((scroll, 0));
    if wrap {
        p = p.wrap(Wrap { trim: false });
    }
    f.render_widget(p, body);
}

/// An audit entry's before → after as the fields that changed, `field: old → new`
/// (JSON objects compared key by key; other values shown whole).
pub fn audit_change(before: Option<&str>, after: Option<&str>) -> Vec<String> {
    use serde_json::Value;
    let parse = |s: Option<&str>| s.and_then(|s| serde_json::from_str::<Value>(s).ok());
    let show = |v: Option<&Value>| match v {
        None | Some(Value::Null) => "—".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    match (parse(before), parse(after)) {
        (b @ (Some(Value::Object(_)) | None), a @ (Some(Value::Object(_)) | None))
            if b.is_some() || a.is_some() =>
        {
            let empty = serde_json::Map::new();
            let bm = b.as_ref().and_then(Value::as_object).unwrap_or(&empty);
            let am = a.as_ref().and_then(Value::as_object).unwrap_or(&empty);
            let mut keys: Vec<&String> = bm.keys().collect();
            keys.extend(am.keys().filter(|k| !bm.contains_key(*k)));
            keys.into_iter()
                .filter(|k| bm.get(*k) != am.get(*k))
                .map(|k| format!("{k}: {} → {}", show(bm.get(k)), show(am.get(k))))
                .collect()
        }
        _ => vec![format!(
            "{} → {}",
            before.unwrap_or("—"),
            after.unwrap_or("—")
        )],
    }
}

fn kv<'a>(app: &App, k: &str, v: impl Into<String>, w: usize) -> Line<'a> {
    let v = v.into();
    Line::from(vec![
        Span::styled(format!("{k:<11}"), app.theme.muted),
        Span::styled(fit(&v, w.saturating_sub(11)), app.theme.text),
    ])
}

fn section<'a>(app: &App, s: &str) -> Line<'a> {
    Line::styled(s.to_string(), app.theme.header)
}

/// Joins two columns of lines side by side, the left padded to `lw` columns.
fn two_col<'a>(left: Vec<Line<'a>>, right: Vec<Line<'a>>, lw: usize) -> Vec<Line<'a>> {
    let n = left.len().max(right.len());
    let mut out = Vec::with_capacity(n);
    let mut l = left.into_iter();
    let mut r = right.into_iter();
    for _ in 0..n {
        let mut spans: Vec<Span<'a>> = l.next().map(|x| x.spans).unwrap_or_default();
        let used: usize = spans.iter().map(|s| s.content.width()).sum();
        spans.push(Span::raw(" ".repeat(lw.saturating_sub(used))));
        if let Some(x) = r.next() {
            spans.extend(x.spans);
        }
        out.push(Line::from(spans));
    }
    out
}

fn tx_lines<'a>(app: &App, tx: &TxView, w: usize) -> Vec<Line<'a>> {
    let cur = tx.currency.as_str();
    let product = match (&tx.product_name, &tx.family) {
        (Some(n), Some(fam)) => format!("{} ({n}, {fam})", tx.sku),
        _ => tx.sku.clone(),
    };
    let mut v = vec![
        section(app, "Transaction"),
        kv(app, "id", format!("{} ({})", tx.transaction_id, tx.kind), w),
        kv(app, "customer", tx.customer_name.clone(), w),
        kv(app, "product", product, w),
        kv(
            app,
            "qty × net",
            format!("{} × {}", tx.quantity, money_text(&tx.unit_net_price, cur)),
            w,
        ),
        kv(app, "list price", money_text(&tx.unit_list_price, cur), w),
        kv(app, "amount", money_text(&tx.amount, cur), w),
        kv(app, "closed", tx.closed_on.clone(), w),
        kv(app, "submitted", tx.submitted_at.replace('T', " "), w),
        kv(app, "invoice", tx.invoice_number.clone(), w),
    ];
    if let Some(o) = &tx.original_transaction_id {
        v.push(kv(app, "refund of", o.clone(), w));
    }
    if let Some(n) = tx.notes.as_deref().filter(|n| !n.is_empty()) {
        v.push(kv(app, "notes", format!("“{n}” (partner text)"), w));
    }
    v
}

fn partner_lines<'a>(app: &App, d: &RecordDetail, w: usize) -> Vec<Line<'a>> {
    let Some(p) = &d.partner else {
        return vec![
            section(app, "Partner"),
            kv(app, "id", format!("{} (not in cache)", d.tx.partner_id), w),
        ];
    };
    let mut v = vec![
        section(app, "Partner"),
        kv(
            app,
            "name",
            format!("{}{}", p.name, if p.high_value { " ★" } else { "" }),
            w,
        ),
        kv(
            app,
            "id · kind",
            format!("{} · {}", p.partner_id, p.kind),
            w,
        ),
        kv(
            app,
            "region",
            format!(
                "{}{}",
                p.region,
                p.country
                    .as_deref()
                    .map(|c| format!(" ({c})"))
                    .unwrap_or_default()
            ),
            w,
        ),
        kv(app, "joined", p.joined_on.clone(), w),
    ];
    if let Some((id, name)) = &p.parent {
        v.push(kv(app, "parent", format!("{name} ({id})"), w));
    }
    let tiers: Vec<String> = p
        .tier_history
        .iter()
        .map(|(_, name, from)| format!("{name} {from}"))
        .collect();
    v.push(kv(
        app,
        "tiers",
        if tiers.is_empty() {
            "—".into()
        } else {
            tiers.join(" → ")
        },
        w,
    ));
    v.push(kv(
        app,
        "certified",
        if p.certifications.is_empty() {
            "none".into()
        } else {
            p.certifications.join(", ")
        },
        w,
    ));
    v.push(kv(
        app,
        "tax id",
        p.tax_id_masked.clone().unwrap_or_else(|| "—".into()),
        w,
    ));
    v.push(kv(
        app,
        "bank",
        p.bank_masked.clone().unwrap_or_else(|| "—".into()),
        w,
    ));
    v
}

const SPARK: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

fn sparkline<'a>(app: &App, d: &RecordDetail, w: usize) -> Vec<Line<'a>> {
    let t = &app.theme;
    if d.monthly.is_empty() {
        return vec![];
    }
    let n = w.saturating_sub(2).min(d.monthly.len()).max(1);
    // Keep the deal's month in view: end the window at the deal or the last month.
    let deal_idx = d.monthly.iter().position(|(m, _)| *m == d.deal_month);
    let end = match deal_idx {
        Some(i) => (i + 1 + n / 4).max(n).min(d.monthly.len()),
        None => d.monthly.len(),
    };
    let start = end.saturating_sub(n);
    let slice = &d.monthly[start..end];
    let max = slice.iter().map(|(_, v)| *v).fold(0.0_f64, f64::max);
    let mut spans = vec![Span::raw(" ")];
    let mut marker = String::from(" ");
    for (m, v) in slice {
        let lvl = if max > 0.0 {
            ((v / max) * 7.0).round().clamp(0.0, 7.0) as usize
        } else {
            0
        };
        let is_deal = *m == d.deal_month;
        spans.push(Span::styled(
            SPARK[lvl].to_string(),
            if is_deal { t.marked } else { t.accent },
        ));
        marker.push(if is_deal { '▲' } else { ' ' });
    }
    let first = slice.first().map(|x| x.0.clone()).unwrap_or_default();
    let last = slice.last().map(|x| x.0.clone()).unwrap_or_default();
    vec![
        section(app, "Partner bookings per month"),
        Line::from(spans),
        Line::from(vec![
            Span::styled(marker.trim_end().to_string(), t.marked),
            Span::styled(format!("  this deal ({})", d.deal_month), t.muted),
        ]),
        Line::styled(format!(" {first} … {last}"), t.muted),
    ]
}

fn diff_lines<'a>(app: &App, d: &RecordDetail, o: &TxView, w: usize) -> Vec<Line<'a>> {
    let t = &app.theme;
    let a = &d.tx;
    let fields: Vec<(&str, String, String)> = vec![
        ("id", a.transaction_id.clone(), o.transaction_id.clone()),
        ("partner", a.partner_id.clone(), o.partner_id.clone()),
        ("customer", a.customer_name.clone(), o.customer_name.clone()),
        ("sku", a.sku.clone(), o.sku.clone()),
        ("quantity", a.quantity.to_string(), o.quantity.to_string()),
        (
            "amount",
            money_text(&a.amount, &a.currency),
            money_text(&o.amount, &o.currency),
        ),
        ("closed", a.closed_on.clone(), o.closed_on.clone()),
        (
            "invoice",
            a.invoice_number.clone(),
            o.invoice_number.clone(),
        ),
        (
            "registration",
            a.registration_id.clone().unwrap_or_default(),
            o.registration_id.clone().unwrap_or_default(),
        ),
    ];
    let col = (w.saturating_sub(14)) / 2;
    let mut v = vec![
        section(app, "Possible duplicate: this deal vs the original"),
        Line::from(vec![
            Span::styled(format!("  {:<12}", "field"), t.muted),
            Span::styled(format!("{:<col$}", "this deal"), t.muted),
            Span::styled("original".to_string(), t.muted),
        ]),
    ];
    for (name, x, y) in fields {
        let differs = x != y;
        let st = if differs { t.diff } else { t.text };
        v.push(Line::from(vec![
            Span::styled(if differs { "≠ " } else { "  " }, t.danger),
            Span::styled(format!("{name:<12}"), t.muted),
            Span::styled(format!("{:<col$}", fit(&x, col.saturating_sub(1))), st),
            Span::styled(fit(&y, col), st),
        ]));
    }
    v
}

fn detail_lines<'a>(app: &App, d: &RecordDetail, w: usize) -> Vec<Line<'a>> {
    // A possible duplicate is decided on the comparison: it comes first, above the fold
    // even at 80x24.
    let mut lines = Vec::new();
    if let Some(o) = &d.original {
        lines.extend(diff_lines(app, d, o, w));
        lines.push(Line::raw(""));
    }
    lines.extend(if w >= 76 {
        let lw = w / 2;
        two_col(
            tx_lines(app, &d.tx, lw - 1),
            partner_lines(app, d, w - lw),
            lw,
        )
    } else {
        let mut v = tx_lines(app, &d.tx, w);
        v.push(Line::raw(""));
        v.extend(partner_lines(app, d, w));
        v
    });
    lines.push(Line::raw(""));
    match &d.registration {
        Some(r) => {
            lines.push(section(app, "Deal registration"));
            lines.push(kv(
                app,
                &format!("{} ", r.registration_id),
                format!(
                    "{} · {} · expected {} · {} → {}",
                    r.status,
                    r.customer_name,
                    money_text(&r.expected_amount, &d.tx.currency),
                    r.registered_on,
                    r.expires_on
                ),
                w,
            ));
            if r.partner_id != d.tx.partner_id {
                lines.push(Line::styled(
                    format!(
                        "  registered by {}, not the submitting partner",
                        r.partner_id
                    ),
                    app.theme.danger,
                ));
            }
        }
        None => {
            lines.push(section(app, "Deal registration"));
            lines.push(Line::styled(
                match &d.tx.registration_id {
                    Some(id) => format!("  {id} (not found in the cache)"),
                    None => "  none".to_string(),
                },
                app.theme.muted,
            ));
        }
    }
    lines.push(Line::raw(""));
    lines.extend(sparkline(app, d, w));
    lines
}

fn reasoning_lines<'a>(app: &App, d: &RecordDetail) -> Vec<Line<'a>> {
    let t = &app.theme;
    let Some(fl) = &d.flag else {
        return vec![Line::styled(
            "not scored yet: run `tierdesk score`",
            t.muted,
        )];
    };
    let mut v = vec![
        Line::from(vec![
            Span::styled("score ", t.muted),
            Span::styled(format!("{:.2}", fl.score), t.danger),
            Span::styled("  confidence ", t.muted),
            Span::styled(format!("{:.2}", fl.confidence), t.text),
            Span::styled("  detector ", t.muted),
            Span::styled(fl.detector_version.clone(), t.text),
            Span::styled(
                format!("  ({}, scored {})", fl.source, fl.scored_at),
                t.muted,
            ),
        ]),
        Line::from(vec![
            Span::styled("kinds ", t.muted),
            Span::styled(
                fl.kinds
                    .iter()
                    .map(|k| format!("{k} ({})", kind_abbrev(k)))
                    .collect::<Vec<_>>()
                    .join(", "),
                t.accent,
            ),
        ]),
        Line::from(vec![
            Span::styled("at stake ", t.muted),
            Span::styled(money_minor(app, fl.at_stake_minor), t.warning),
        ]),
    ];
    if !fl.not_evaluated.is_empty() {
        // A check that could not run is not a pass: say so next to the kinds.
        v.push(Line::from(vec![
            Span::styled("not evaluated ", t.muted),
            Span::styled(
                fl.not_evaluated
                    .iter()
                    .map(|k| match k.as_str() {
                        "erp_mismatch" => {
                            "erp_mismatch (no ERP invoice extract covers this sale)".to_string()
                        }
                        other => other.to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
                t.warning,
            ),
        ]));
    }
    v.push(Line::raw(""));
    v.push(section(app, "Reasons"));
    if fl.reasons.is_empty() {
        v.push(Line::styled("  (none)", t.muted));
    }
    for r in &fl.reasons {
        v.push(Line::from(vec![
            Span::styled(" • ", t.accent),
            Span::styled(r.clone(), t.text),
        ]));
    }
    v.push(Line::raw(""));
    v.push(section(app, "Evidence"));
    if fl.evidence.is_empty() {
        v.push(Line::styled("  (no figures recorded)", t.muted));
    }
    let kw = fl
        .evidence
        .iter()
        .map(|(k, _)| k.width())
        .max()
        .unwrap_or(0)
        .min(32);
    for (k, val) in &fl.evidence {
        v.push(Line::from(vec![
            Span::styled(format!("  {:<kw$}  ", fit(k, kw)), t.muted),
            Span::styled(val.clone(), t.text),
        ]));
    }
    v
}

fn commission_lines<'a>(app: &App, d: &RecordDetail) -> Vec<Line<'a>> {
    let t = &app.theme;
    let cur = d.tx.currency.as_str();
    let mut v = vec![section(app, "PRM commission lines")];
    if d.commissions.is_empty() {
        v.push(Line::styled("  none reported", t.muted));
    }
    let mut total = Decimal::ZERO;
    for c in &d.commissions {
        let amt = parse_money(&c.amount);
        total += amt.unwrap_or_default();
        let st = if amt.is_some_and(|a| a.is_sign_negative()) {
            t.money_negative
        } else {
            t.text
        };
        v.push(Line::from(vec![
            Span::styled(
                format!(
                    "  {:<14} {:<9} {:<12} ",
                    fit(&c.commission_id, 14),
                    c.role,
                    fit(&c.payee_partner_id, 12)
                ),
                t.muted,
            ),
            Span::styled(format!("{:>14}", money_text(&c.amount, cur)), st),
            Span::styled(format!("  {}", c.period), t.muted),
            Span::styled(
                c.prm_status
                    .as_deref()
                    .map(|s| format!("  PRM: {s}"))
                    .unwrap_or_default(),
                if c.prm_status
                    .as_deref()
                    .is_some_and(|s| s.starts_with("declined"))
                {
                    t.danger
                } else {
                    t.muted
                },
            ),
        ]));
    }
    if !d.commissions.is_empty() {
        v.push(Line::from(vec![
            Span::styled(format!("  {:<38}", "total"), t.muted),
            Span::styled(
                format!("{:>14}", crate::money::format_money(total, cur)),
                t.header,
            ),
        ]));
    }
    v.push(Line::raw(""));
    v.push(section(app, "Recalculated from the plan"));
    match app
        .explain
        .as_ref()
        .filter(|(id, _)| *id == d.tx.transaction_id)
        .map(|(_, r)| r)
    {
        Some(Ok(e)) => {
            v.push(Line::styled(
                format!(
                    "  {:<10} {:<12} {:>14} {:>14}",
                    "role", "payee", "plan", "PRM"
                ),
                t.muted,
            ));
            for (role, payee, plan, prm) in &e.lines {
                let same = plan == prm;
                let show = |x: &Option<Decimal>| {
                    x.map(|a| crate::money::format_money(a, &e.currency))
                        .unwrap_or_else(|| "missing".into())
                };
                v.push(Line::from(vec![
                    Span::styled(if same { "  " } else { "≠ " }, t.danger),
                    Span::styled(format!("{:<10} {:<12} ", role, fit(payee, 12)), t.text),
                    Span::styled(
                        format!("{:>14} ", show(plan)),
                        if same { t.text } else { t.diff },
                    ),
                    Span::styled(
                        format!("{:>14}", show(prm)),
                        if same { t.text } else { t.diff },
                    ),
                ]));
            }
            v.push(if e.matches {
                Line::styled("  = the PRM's lines match the plan", t.ok)
            } else {
                Line::styled("  ≠ the PRM's lines differ from the plan", t.danger)
            });
            v.push(Line::raw(""));
            v.push(section(app, "Derivation"));
            for l in e.text.lines() {
                v.push(Line::styled(format!("  {l}"), t.text));
            }
            v.push(Line::raw(""));
        }
        Some(Err(msg)) => v.push(Line::styled(format!("  {msg}"), t.muted)),
        None => {}
    }
    v.push(section(app, "Proposed accrual adjustment"));
    match &d.proposal {
        Some(p) => {
            let delta = parse_money(&p.delta).unwrap_or_default();
            let mark = if delta.is_zero() { ("  = matches the plan", t.ok) } else { ("  ≠ differs from the PRM", t.danger) };
            v.push(Line::from(vec![
                Span::styled("  accrued now ", t.muted),
                Span::styled(money_text(&p.current_amount, &p.currency), t.text),
                Span::styled("   plan says ", t.muted),
                Span::styled(money_text(&p.proposed_amount, &p.currency), t.text),
                Span::styled("   Δ ", t.muted),
                Span::styled(money_text(&p.delta, &p.currency), if delta.is_sign_negative() { t.money_negative } else { t.ok }),
                Span::styled(mark.0, mark.1),
            ]));
            v.push(Line::from(vec![Span::styled("  derivation: ", t.muted), Span::styled(p.rationale.clone(), t.text)]));
        }
        None => v.push(Line::styled(
            "  no recalculation stored for this record (run `tierdesk score`); `tierdesk explain ID` prints the derivation",
            t.muted,
        )),
    }
    v
}

fn decision_lines<'a>(app: &App, d: &RecordDetail) -> Vec<Line<'a>> {
    let t = &app.theme;
    let state = d
        .case
        .as_ref()
        .map(|c| c.state.clone())
        .or_else(|| d.flag.as_ref().map(|f| f.status.clone()))
        .unwrap_or_else(|| "not flagged".into());
    let mut v = vec![Line::from(vec![
        Span::styled("state ", t.muted),
        Span::styled(state.clone(), status_style(app, &state)),
    ])];
    if let Some(c) = &d.case {
        if let Some(a) = &c.decided_amount {
            v.push(Line::from(vec![
                Span::styled("decided ", t.muted),
                Span::styled(money_text(a, &d.tx.currency), t.text),
            ]));
        }
        if let Some(p) = &c.proposer {
            v.push(Line::from(vec![
                Span::styled("proposed by ", t.muted),
                Span::styled(p.clone(), t.text),
            ]));
        }
    }
    v.extend(conflict_lines(app, d));
    v.push(Line::raw(""));
    v.push(section(app, "Proposed adjustment"));
    match &d.proposal {
        Some(p) => {
            v.push(Line::from(vec![
                Span::styled(format!("  {} ", p.action), t.accent),
                Span::styled(
                    format!(
                        "{} → {} (Δ {})",
                        money_text(&p.current_amount, &p.currency),
                        money_text(&p.proposed_amount, &p.currency),
                        money_text(&p.delta, &p.currency)
                    ),
                    t.text,
                ),
            ]));
            v.push(Line::styled(format!("  {}", p.rationale), t.muted));
            let delta = parse_money(&p.delta).unwrap_or_default();
            let hv = d.partner.as_ref().is_some_and(|p| p.high_value);
            let needs = app.needs_signoff(delta, &p.currency, &d.tx.partner_id, hv);
            let thr = app.config.signoff_threshold(&p.currency);
            v.push(if needs {
                Line::styled(
                    format!(
                        "  sign-off: needed (|Δ| ≥ {} or high-value partner) — a second person, a manager, must sign off",
                        crate::money::format_money(thr, &p.currency)
                    ),
                    t.warning,
                )
            } else {
                Line::styled(
                    format!("  sign-off: not needed (|Δ| < {})", crate::money::format_money(thr, &p.currency)),
                    t.ok,
                )
            });
        }
        None => v.push(Line::styled("  none", t.muted)),
    }
    v.push(Line::raw(""));
    let k = |a: Action| app.keymap.short(a);
    v.push(Line::from(vec![
        Span::styled(format!(" {} ", k(Action::Approve)), t.key),
        Span::styled("approve  ", t.text),
        Span::styled(format!(" {} ", k(Action::Override)), t.key),
        Span::styled("override  ", t.text),
        Span::styled(format!(" {} ", k(Action::Dismiss)), t.key),
        Span::styled("dismiss  ", t.text),
        Span::styled(format!(" {} ", k(Action::Escalate)), t.key),
        Span::styled("escalate  ", t.text),
        Span::styled(format!(" {} ", k(Action::RequestDocuments)), t.key),
        Span::styled("request docs  ", t.text),
        Span::styled(format!(" {} ", k(Action::Undo)), t.key),
        Span::styled("undo", t.text),
    ]));
    if !d.decisions.is_empty() {
        v.push(Line::raw(""));
        v.push(section(app, "Decisions"));
        for x in &d.decisions {
            v.push(Line::from(vec![
                Span::styled(
                    format!(
                        "  {} ",
                        x.created_at
                            .get(..16)
                            .unwrap_or(&x.created_at)
                            .replace('T', " ")
                    ),
                    t.muted,
                ),
                Span::styled(format!("{} ", x.action), t.accent),
                Span::styled(
                    format!(
                        "{}{} → {} by {}: {}",
                        x.amount
                            .as_deref()
                            .map(|a| format!("{} ", money_text(a, &d.tx.currency)))
                            .unwrap_or_default(),
                        x.from_state,
                        x.to_state,
                        x.actor,
                        x.reason
                    ),
                    t.text,
                ),
            ]));
        }
    }
    v
}

fn audit_lines<'a>(app: &App, d: &RecordDetail, w: usize) -> Vec<Line<'a>> {
    let t = &app.theme;
    if d.audit.is_empty() {
        return vec![Line::styled(
            "no audit entries for this record yet",
            t.muted,
        )];
    }
    let mut v = Vec::new();
    for a in &d.audit {
        v.push(Line::from(vec![
            Span::styled(format!("#{:<5}", a.seq), t.muted),
            Span::styled(
                format!("{} ", a.at.get(..19).unwrap_or(&a.at).replace('T', " ")),
                t.muted,
            ),
            Span::styled(format!("{} ({}) ", a.actor, a.role), t.text),
            Span::styled(a.action.clone(), t.accent),
        ]));
        for change in audit_change(a.before.as_deref(), a.after.as_deref()) {
            v.push(Line::from(vec![
                Span::raw("      "),
                Span::styled(fit(&change, w.saturating_sub(6)), t.text),
            ]));
        }
        if let Some(r) = a.reason.as_deref().filter(|r| !r.is_empty()) {
            v.push(Line::from(vec![
                Span::raw("      "),
                Span::styled(fit(&format!("“{r}”"), w.saturating_sub(6)), t.muted),
            ]));
        }
        v.push(Line::from(vec![
            Span::raw("      "),
            Span::styled(
                format!("hash {}", a.hash.get(..16).unwrap_or(&a.hash)),
                t.muted,
            ),
        ]));
    }
    v
}

/// Open conflicts with the PRM: what the reviewer saw, what they decided and what the
/// PRM has now, field by field, differences marked.
fn conflict_lines<'a>(app: &App, d: &RecordDetail) -> Vec<Line<'a>> {
    let t = &app.theme;
    let mut v = Vec::new();
    for c in &d.conflicts {
        v.push(Line::raw(""));
        v.push(section(
            app,
            "Conflict: the PRM changed this record after the decision",
        ));
        let cur = d.tx.currency.as_str();
        let rows = super::conflict::rows(&c.seen, &c.remote, &c.decided, cur);
        v.push(Line::styled(
            format!(
                "  {:<9} {:<18} {:<18} {}",
                "field", "you saw", "PRM has now", "decided"
            ),
            t.muted,
        ));
        for r in &rows {
            let st = if r.changed { t.diff } else { t.text };
            v.push(Line::from(vec![
                Span::styled(if r.changed { "≠ " } else { "  " }, t.danger),
                Span::styled(format!("{:<9} ", r.field), t.muted),
                Span::styled(format!("{:<18} ", fit(&r.saw, 18)), st),
                Span::styled(format!("{:<18} ", fit(&r.now, 18)), st),
                Span::styled(fit(&r.decided, 18), t.text),
            ]));
        }
        let changed = rows.iter().filter(|r| r.changed).count();
        v.push(Line::styled(
            format!("  {changed} field(s) changed on the PRM since the decision"),
            if changed > 0 { t.warning } else { t.muted },
        ));
        let obj = |text: &str| -> Vec<(String, String)> {
            match serde_json::from_str::<serde_json::Value>(text) {
                Ok(serde_json::Value::Object(m)) => m
                    .into_iter()
                    .map(|(k, v)| {
                        let shown = match v {
                            serde_json::Value::String(s) => s,
                            other => other.to_string(),
                        };
                        (k, shown)
                    })
                    .collect(),
                _ => vec![],
            }
        };
        let get = |side: &[(String, String)], k: &str| {
            side.iter()
                .find(|(x, _)| x == k)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let decided = obj(&c.decided);
        let summary: Vec<String> = ["action", "amount", "reason"]
            .iter()
            .filter_map(|k| {
                let v = get(&decided, k);
                (!v.is_empty() && v != "null").then(|| format!("{k} {v}"))
            })
            .collect();
        v.push(Line::from(vec![
            Span::styled("  decided: ", t.muted),
            Span::styled(
                if summary.is_empty() {
                    c.decision_id.clone()
                } else {
                    format!("{} ({})", summary.join(", "), c.decision_id)
                },
                t.text,
            ),
        ]));
        v.push(Line::styled(
            format!(
                "  since {}; a new decision, with a note saying why, resolves it (never overwrites the PRM)",
                c.created_at
            ),
            t.muted,
        ));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::audit_change;

    #[test]
    fn audit_changes_are_fields_not_truncated_json() {
        let c = audit_change(
            Some(r#"{"state":"flagged","version":1}"#),
            Some(r#"{"state":"awaiting_signoff","amount":"100.00","version":2}"#),
        );
        assert_eq!(
            c,
            vec![
                "state: flagged → awaiting_signoff",
                "version: 1 → 2",
                "amount: — → 100.00"
            ]
        );
        assert_eq!(audit_change(None, Some(r#"{"a":"x"}"#)), vec!["a: — → x"]);
        assert_eq!(audit_change(Some("plain"), None), vec!["plain → —"]);
    }
}
