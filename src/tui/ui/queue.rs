//! The exception queue table: only the visible rows become table rows.

use chrono::NaiveDate;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table};
use ratatui::Frame;
use unicode_width::UnicodeWidthStr;

use super::{fit, kind_abbrev, money_minor, money_text, status_abbrev, status_style};
use crate::tui::app::{App, Modal};

const BAR: [&str; 9] = [" ", "▏", "▎", "▍", "▌", "▋", "▊", "▉", "█"];

/// A score in [0, 1] as a 5-cell bar (eighths).
pub fn score_bar(score: f64) -> String {
    let eighths = (score.clamp(0.0, 1.0) * 40.0).round() as usize;
    let mut s = String::new();
    for i in 0..5 {
        let n = eighths.saturating_sub(i * 8).min(8);
        s.push_str(BAR[n]);
    }
    s
}

fn age_days(as_of: Option<&str>, submitted_at: &str) -> String {
    let d = |s: &str| NaiveDate::parse_from_str(s.get(..10)?, "%Y-%m-%d").ok();
    match (as_of.and_then(d), d(submitted_at)) {
        (Some(a), Some(s)) => format!("{}d", (a - s).num_days().max(0)),
        _ => "—".into(),
    }
}

pub fn draw(f: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let q = &app.queue;
    let filter_line = !q.filter.is_empty() || matches!(app.modal, Some(Modal::Search { .. }));
    let [fl, table_area] = Layout::vertical([
        Constraint::Length(u16::from(filter_line)),
        Constraint::Min(1),
    ])
    .areas(area);
    if filter_line {
        let mut parts = Vec::new();
        if let Some(s) = &q.filter.search {
            parts.push(format!("search \"{s}\""));
        }
        if let Some(k) = &q.filter.kind {
            parts.push(format!("kind {k}"));
        }
        if let Some(s) = &q.filter.status {
            parts.push(format!("status {s}"));
        }
        if let Some(x) = &q.filter.tier {
            parts.push(format!("tier {x}"));
        }
        if let Some(x) = &q.filter.region {
            parts.push(format!("region {x}"));
        }
        if let Some(m) = q.filter.min_amount_minor {
            parts.push(format!("amount ≥ {}", money_minor(app, m)));
        }
        let clear = app.keymap.short(crate::tui::action::Action::ClearFilter);
        f.render_widget(
            Paragraph::new(Line::from(vec![
                Span::styled(" filter: ", t.accent),
                Span::styled(parts.join(" · "), t.text),
                Span::styled(format!("   ({clear} clears)"), t.muted),
            ])),
            fl,
        );
    }
    app.table_area.set(table_area);

    if q.rows.is_empty() {
        let text = if !q.loaded_once || q.loading {
            "loading…".to_string()
        } else if !q.filter.is_empty() {
            "nothing matches the search/filter — F clears it".to_string()
        } else {
            "the queue is empty: no flagged transactions in the review window. Import and score a program (`tierdesk import DIR`, `tierdesk score`) or try `tierdesk demo`.".to_string()
        };
        f.render_widget(
            Paragraph::new(text)
                .style(t.muted)
                .alignment(Alignment::Center)
                .wrap(ratatui::widgets::Wrap { trim: true }),
            Rect::new(
                table_area.x,
                table_area.y + table_area.height / 3,
                table_area.width,
                3.min(table_area.height),
            ),
        );
        return;
    }

    // Keep the selection visible; only the visible slice is built.
    let visible = (table_area.height as usize).saturating_sub(1).max(1);
    let mut scroll = q.scroll.get();
    if q.sel < scroll {
        scroll = q.sel;
    } else if q.sel >= scroll + visible {
        scroll = q.sel + 1 - visible;
    }
    scroll = scroll.min(q.rows.len().saturating_sub(1));
    q.scroll.set(scroll);
    let end = (scroll + visible).min(q.rows.len());
    let cur = app.currency();
    let slice = &q.rows[scroll..end];
    let amounts: Vec<String> = slice
        .iter()
        .map(|r| {
            money_text(
                &r.amount,
                if r.currency.is_empty() {
                    cur
                } else {
                    &r.currency
                },
            )
        })
        .collect();
    let stakes: Vec<String> = slice
        .iter()
        .map(|r| money_minor(app, r.at_stake_minor))
        .collect();

    // Column widths sized to the terminal and to the visible figures.
    let w = table_area.width as usize;
    let amt_w = amounts
        .iter()
        .map(|s| s.width())
        .max()
        .unwrap_or(0)
        .clamp(6, 16);
    let stake_w = stakes
        .iter()
        .map(|s| s.width())
        .max()
        .unwrap_or(0)
        .clamp(8, 14);
    let kinds_w = if w < 100 { 9 } else { 12 };
    let fixed = 1 + 8 + kinds_w + amt_w + stake_w + 4 + 9;
    // Eight gaps between nine columns; one more when the customer column shows.
    let flex = w.saturating_sub(fixed + 8);
    let show_customer = flex >= 34;
    let (partner_w, cust_w) = if show_customer {
        (flex * 9 / 20, flex - flex * 9 / 20 - 1)
    } else {
        (flex, 0)
    };
    let mut widths = vec![
        Constraint::Length(1),
        Constraint::Length(8),
        Constraint::Length(kinds_w as u16),
        Constraint::Length(partner_w as u16),
    ];
    if show_customer {
        widths.push(Constraint::Length(cust_w as u16));
    }
    widths.extend([
        Constraint::Length(amt_w as u16),
        Constraint::Length(stake_w as u16),
        Constraint::Length(4),
        Constraint::Length(9),
    ]);

    let mut head = vec!["", "score", "kinds", "partner · tier"];
    if show_customer {
        head.push("customer");
    }
    let mut header_cells: Vec<Cell> = head.into_iter().map(Cell::from).collect();
    header_cells.push(Cell::from(Line::from("amount").alignment(Alignment::Right)));
    header_cells.push(Cell::from(
        Line::from("at stake").alignment(Alignment::Right),
    ));
    header_cells.push(Cell::from("age"));
    header_cells.push(Cell::from("status"));
    let header = Row::new(header_cells).style(t.header);

    let as_of = app.program.as_ref().map(|p| p.as_of.as_str());
    let rows = slice.iter().enumerate().map(|(i, r)| {
        let idx = scroll + i;
        let marked = q.marked.contains(&r.transaction_id);
        let kinds: Vec<&str> = r.kinds.iter().map(|k| kind_abbrev(k)).collect();
        let partner = if r.tier.is_empty() {
            fit(&r.partner_name, partner_w)
        } else {
            // Keep the tier visible: shorten the name, not the tier.
            // The name keeps at least 3/5 of the column; the tier shortens first.
            let name_w = (r.partner_name.width())
                .min(partner_w.saturating_sub(r.tier.width() + 3))
                .max(partner_w * 3 / 5);
            let tier_w = partner_w.saturating_sub(name_w + 3);
            format!(
                "{} · {}",
                fit(&r.partner_name, name_w),
                fit(&r.tier, tier_w)
            )
        };
        let amount = &amounts[i];
        let mut cells = vec![
            Cell::from(if marked { "●" } else { " " }).style(t.marked),
            Cell::from(format!(
                "{}{:>3}",
                score_bar(r.score),
                (r.score * 100.0).round() as i64
            ))
            .style(t.bar),
            Cell::from(fit(&kinds.join(","), kinds_w)).style(t.accent),
            Cell::from(fit(&partner, partner_w)).style(t.text),
        ];
        if show_customer {
            cells.push(Cell::from(fit(&r.customer, cust_w)).style(t.text));
        }
        let amount_style = if r.amount.starts_with('-') {
            t.money_negative
        } else {
            t.text
        };
        cells.extend([
            Cell::from(Line::from(fit(amount, amt_w)).alignment(Alignment::Right))
                .style(amount_style),
            Cell::from(Line::from(fit(&stakes[i], stake_w)).alignment(Alignment::Right))
                .style(t.warning),
            Cell::from(age_days(as_of, &r.submitted_at)).style(t.muted),
            Cell::from(fit(status_abbrev(&r.status), 9)).style(status_style(app, &r.status)),
        ]);
        let row = Row::new(cells);
        if idx == q.sel {
            row.style(t.selection)
        } else if marked {
            row.style(t.marked)
        } else {
            row
        }
    });
    let table = Table::new(rows, widths).header(header).column_spacing(1);
    f.render_widget(table, table_area);
}

fn total_label(app: &App) -> String {
    if app.queue.filter.is_empty() {
        app.counters
            .iter()
            .find(|(n, _)| n == "queue:total")
            .map(|(_, v)| super::group_int(*v))
            .unwrap_or_else(|| "?".into())
    } else if app.queue.at_bottom && app.queue.base.is_some() {
        super::group_int((app.queue.base.unwrap_or(0) + app.queue.rows.len()) as i64)
    } else {
        "many".into()
    }
}

/// The position label (row N of M), shown in the status line by the caller.
pub fn position(app: &App) -> Option<String> {
    let q = &app.queue;
    q.rows.get(q.sel)?;
    Some(match q.base {
        Some(b) => format!(
            "{}/{}",
            super::group_int((b + q.sel + 1) as i64),
            total_label(app)
        ),
        None => format!("…/{}", total_label(app)),
    })
}
