//! Sign-off (managers): adjustments awaiting sign-off with totals per period and partner.

use std::collections::BTreeMap;

use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table};
use ratatui::Frame;
use rust_decimal::Decimal;

use super::{block, fit, money_text};
use crate::config::Role;
use crate::money::{format_money, parse_money};
use crate::tui::app::App;

pub fn draw(f: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let s = &app.signoff;
    let cur = app.currency().to_string();
    // Totals per period and per partner over the whole list (decided - current).
    let mut per_period: BTreeMap<&str, (usize, Decimal)> = BTreeMap::new();
    let mut per_partner: BTreeMap<&str, (usize, Decimal)> = BTreeMap::new();
    for r in &s.rows {
        let d = parse_money(&r.delta).unwrap_or_default();
        let e = per_period.entry(r.period.as_str()).or_default();
        e.0 += 1;
        e.1 += d;
        let e = per_partner.entry(r.partner_name.as_str()).or_default();
        e.0 += 1;
        e.1 += d;
    }
    let mut top_partners: Vec<_> = per_partner.into_iter().collect();
    top_partners.sort_by(|a, b| b.1 .1.abs().cmp(&a.1 .1.abs()).then(a.0.cmp(b.0)));
    let periods: Vec<String> = per_period
        .iter()
        .map(|(p, (n, d))| format!("{p}: {n} · Δ {}", format_money(*d, &cur)))
        .collect();
    let partners: Vec<String> = top_partners
        .iter()
        .take(3)
        .map(|(p, (n, d))| format!("{}: {n} · Δ {}", fit(p, 18), format_money(*d, &cur)))
        .collect();
    let mut head = vec![Line::from(vec![
        Span::styled(format!(" {} awaiting sign-off", s.rows.len()), t.header),
        Span::styled(
            if app.role == Role::Manager {
                "  · four-eyes: you cannot sign off what you proposed".to_string()
            } else {
                "  · read-only: signing off needs the manager role (--role manager)".to_string()
            },
            if app.role == Role::Manager {
                t.muted
            } else {
                t.warning
            },
        ),
    ])];
    head.push(Line::from(vec![
        Span::styled(" per period  ", t.muted),
        Span::styled(periods.join("   "), t.text),
    ]));
    head.push(Line::from(vec![
        Span::styled(" top partners ", t.muted),
        Span::styled(partners.join("   "), t.text),
    ]));
    let [h, body] = Layout::vertical([Constraint::Length(3), Constraint::Min(1)]).areas(area);
    f.render_widget(Paragraph::new(head), h);

    if s.rows.is_empty() {
        let text = if s.loaded {
            "nothing awaits sign-off"
        } else {
            "loading…"
        };
        f.render_widget(
            Paragraph::new(text)
                .style(t.muted)
                .alignment(Alignment::Center)
                .block(block(app, " Sign-off ")),
            body,
        );
        return;
    }
    let w = body.width as usize;
    let money_w = s
        .rows
        .iter()
        .flat_map(|r| [&r.current_amount, &r.decided_amount, &r.delta])
        .map(|a| money_text(a, &cur).chars().count())
        .max()
        .unwrap_or(8)
        .clamp(8, 16);
    // Narrow terminals drop the current amount (decided and Δ say what changes).
    let show_current = w >= 100;
    let n_money = if show_current { 3 } else { 2 };
    let fixed = 1 + 8 + 10 + n_money * money_w;
    let gaps = 5 + n_money;
    let flex = w.saturating_sub(fixed + gaps);
    let partner_w = flex * 3 / 5;
    let tx_w = flex - partner_w;
    let mut widths = vec![
        Constraint::Length(1),
        Constraint::Length(8),
        Constraint::Length(partner_w as u16),
        Constraint::Length(tx_w as u16),
        Constraint::Length(10),
    ];
    widths.extend((0..n_money).map(|_| Constraint::Length(money_w as u16)));
    let right = |s: &'static str| Cell::from(Line::from(s).alignment(Alignment::Right));
    let mut head: Vec<Cell> = ["", "period", "partner", "transaction", "proposer"]
        .into_iter()
        .map(Cell::from)
        .collect();
    if show_current {
        head.push(right("current"));
    }
    head.push(right("decided"));
    head.push(right("Δ"));
    let header = Row::new(head).style(t.header);
    let visible = (body.height as usize).saturating_sub(1).max(1);
    let mut scroll = s.scroll.get();
    if s.sel < scroll {
        scroll = s.sel;
    } else if s.sel >= scroll + visible {
        scroll = s.sel + 1 - visible;
    }
    s.scroll.set(scroll);
    let end = (scroll + visible).min(s.rows.len());
    let rows = s.rows[scroll..end].iter().enumerate().map(|(i, r)| {
        let selected = scroll + i == s.sel;
        let st = |role| if selected { t.on_selection(role) } else { role };
        let marked = s.marked.contains(&r.transaction_id);
        let own = r
            .proposer
            .as_deref()
            .is_some_and(|p| crate::workflow::same_person(p, &app.user));
        let delta_neg = r.delta.starts_with('-');
        let mut cells = vec![
            Cell::from(if marked { "●" } else { " " }).style(st(t.marked)),
            Cell::from(r.period.clone()).style(st(t.muted)),
            Cell::from(fit(&r.partner_name, partner_w)).style(st(t.text)),
            Cell::from(fit(&r.transaction_id, tx_w)).style(st(t.text)),
            Cell::from(fit(
                &format!(
                    "{}{}",
                    r.proposer.as_deref().unwrap_or("—"),
                    if own { " (you)" } else { "" }
                ),
                10,
            ))
            .style(st(if own { t.warning } else { t.text })),
        ];
        if show_current {
            cells.push(Cell::from(
                Line::from(money_text(&r.current_amount, &r.currency)).alignment(Alignment::Right),
            ));
        }
        cells.push(Cell::from(
            Line::from(money_text(&r.decided_amount, &r.currency)).alignment(Alignment::Right),
        ));
        cells.push(
            Cell::from(Line::from(money_text(&r.delta, &r.currency)).alignment(Alignment::Right))
                .style(st(if delta_neg { t.money_negative } else { t.ok })),
        );
        let row = Row::new(cells);
        if selected {
            row.style(t.selection)
        } else if marked {
            row.style(t.marked)
        } else {
            row
        }
    });
    f.render_widget(
        Table::new(rows, widths).header(header).column_spacing(1),
        body,
    );
}
