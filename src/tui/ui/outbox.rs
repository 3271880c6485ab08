//! Outbox: open conflicts first, then outbox rows (refused and conflicting, waiting,
//! pushed), newest first within each; the selected row's error in full at the bottom.

use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

use super::{block, fit};
use crate::tui::app::App;

pub fn draw(f: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let d = match &app.outbox.data {
        Some(Ok(d)) => d,
        other => {
            let (text, style) = match other {
                Some(Err(e)) => (format!("outbox: {e}"), t.danger),
                _ => ("loading the outbox…".to_string(), t.muted),
            };
            f.render_widget(
                Paragraph::new(text)
                    .style(style)
                    .alignment(Alignment::Center)
                    .block(block(app, " Outbox ")),
                area,
            );
            return;
        }
    };
    let waiting = d.lines.iter().filter(|l| l.status == "pending").count();
    let refused = d
        .lines
        .iter()
        .filter(|l| matches!(l.status.as_str(), "failed" | "conflict"))
        .count();
    let pushed = d.lines.iter().filter(|l| l.status == "pushed").count();
    // Left for the PRM's own screen (PartnerStack holds and declines).
    let manual = d.lines.iter().filter(|l| l.status == "manual").count();
    let [list, foot] = Layout::vertical([Constraint::Min(4), Constraint::Length(4)]).areas(area);
    let to_apply = if manual > 0 {
        format!(" · {manual} to apply in the PRM")
    } else {
        String::new()
    };
    let title = format!(
        " Outbox · {} conflict{} · {refused} refused · {waiting} waiting{to_apply} · {pushed} pushed ",
        d.conflicts.len(),
        if d.conflicts.len() == 1 { "" } else { "s" },
    );
    let w = list.width.saturating_sub(2) as usize;
    let h = list.height.saturating_sub(2) as usize;
    let sel = app.outbox.sel;
    let first = sel.saturating_sub(h.saturating_sub(1));
    let mut rows: Vec<(String, ratatui::style::Style)> = Vec::new();
    for c in &d.conflicts {
        rows.push((
            format!(
                "{} {:<11} conflict  the PRM changed the record after it was decided ({})",
                short(&c.created_at),
                fit(&c.transaction_id, 11),
                fit(&c.decision_id, 8)
            ),
            t.danger,
        ));
    }
    for l in &d.lines {
        let style = match l.status.as_str() {
            "failed" | "conflict" => t.danger,
            "pending" | "manual" => t.warning,
            "cancelled" => t.muted,
            _ => t.text,
        };
        let tries = if l.attempts > 0 {
            format!(
                " · {} tr{}",
                l.attempts,
                if l.attempts == 1 { "y" } else { "ies" }
            )
        } else {
            String::new()
        };
        rows.push((
            format!(
                "{} {:<11} {:<9} {:<10} {}{tries}",
                short(l.pushed_at.as_deref().unwrap_or(&l.created_at)),
                fit(&l.transaction_id, 11),
                fit(
                    if l.status == "manual" {
                        "to apply"
                    } else {
                        &l.status
                    },
                    9
                ),
                fit(&l.action, 10),
                l.write
            ),
            style,
        ));
    }
    // What `tierdesk listen` received, newest first (not selectable).
    if !d.events.is_empty() {
        rows.push((
            format!("── PRM events ({} latest) ──", d.events.len()),
            t.muted,
        ));
        for e in &d.events {
            let style = match e.state.as_str() {
                "failed" => t.danger,
                "received" | "fetched" => t.warning,
                _ => t.muted,
            };
            rows.push((
                format!(
                    "{} {:<11} {:<9} {} ({}){}",
                    short(&e.received_at),
                    fit(e.key.as_deref().unwrap_or("-"), 11),
                    fit(&e.state, 9),
                    e.event_type,
                    e.provider,
                    e.error
                        .as_deref()
                        .map(|x| format!(": {x}"))
                        .unwrap_or_default()
                ),
                style,
            ));
        }
    }
    let mut lines = Vec::new();
    if rows.is_empty() {
        lines.push(Line::styled(
            "nothing was decided yet: decisions wait here until the PRM has them",
            t.muted,
        ));
    }
    for (i, (text, style)) in rows.iter().enumerate().skip(first).take(h) {
        let text = fit(text, w);
        let st = if i == sel { t.selection } else { *style };
        lines.push(Line::from(Span::styled(format!("{text:<w$}"), st)));
    }
    f.render_widget(Paragraph::new(lines).block(block(app, title)), list);
    // The selected row in full: its error, or what it is.
    let detail = if sel < d.conflicts.len() {
        let c = &d.conflicts[sel];
        format!(
            "{}: decision {} met a newer PRM version. Enter opens the record; its Decision pane shows saw / PRM now / decided and resolves it.",
            c.transaction_id, c.decision_id
        )
    } else {
        match d.lines.get(sel - d.conflicts.len()) {
            Some(l) => match &l.last_error {
                Some(note) if l.status == "manual" => format!(
                    "{} {}: to apply in the PRM's own screen: {note}. It is marked pushed once a sync shows the reward's new status (tierdesk prm decisions lists them all).",
                    l.transaction_id, l.decision_id
                ),
                Some(e) => format!("{} {}: {e}", l.transaction_id, l.decision_id),
                None => format!(
                    "{} decision {}: {} ({})",
                    l.transaction_id, l.decision_id, l.write, l.status
                ),
            },
            None => String::new(),
        }
    };
    f.render_widget(
        Paragraph::new(crate::text::sanitize(&detail).into_owned())
            .style(t.muted)
            .wrap(Wrap { trim: true })
            .block(block(app, " Selected ")),
        foot,
    );
}

/// `2026-10-01T10:00:00Z` as `10-01 10:00`.
fn short(ts: &str) -> String {
    let s = ts.replace('T', " ");
    s.get(5..16).unwrap_or(&s).to_string()
}
