//! Disputes: one line per dispute, newest first — id, partner, transaction, reason,
//! claimed, granted, state, opened, age and SLA (overdue in the warning style); the
//! selected dispute in full at the bottom. Columns drop from the right at 80 columns.

use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

use super::{block, fit, money_text};
use crate::tui::app::App;
use crate::tui::disputes::{DisputeLine, Sla};

/// (title, width) of each column, in the order they are dropped last to first.
const COLS: [(&str, usize); 10] = [
    ("dispute", 10),
    ("partner", 8),
    ("transaction", 11),
    ("state", 10),
    ("age", 4),
    ("sla", 12),
    ("claimed", 12),
    ("granted", 12),
    ("reason", 16),
    ("opened", 10),
];

fn cells(l: &DisputeLine, currency: &str) -> [String; 10] {
    [
        l.dispute_id.clone(),
        l.partner_id.clone(),
        l.transaction_id.clone(),
        l.state.clone(),
        l.age_days.map(|a| format!("{a}d")).unwrap_or("?".into()),
        l.sla.label(),
        money_text(&l.claimed, currency),
        l.granted
            .as_deref()
            .map(|g| money_text(g, currency))
            .unwrap_or_else(|| "-".into()),
        l.reason_code.clone(),
        l.opened_at.get(..10).unwrap_or(&l.opened_at).to_string(),
    ]
}

/// How many columns fit in `w` (each with a space after it); at least the first three.
fn shown(w: usize) -> usize {
    let mut used = 0;
    let mut n = 0;
    for (_, cw) in COLS {
        if used + cw + 1 > w && n >= 3 {
            break;
        }
        used += cw + 1;
        n += 1;
    }
    n
}

fn row(values: &[String], n: usize, w: usize) -> String {
    let mut s = String::new();
    for (i, v) in values.iter().take(n).enumerate() {
        let cw = COLS[i].1;
        // Amounts and ages read right-aligned.
        if matches!(i, 4 | 6 | 7) {
            s.push_str(&format!("{:>cw$} ", fit(v, cw)));
        } else {
            s.push_str(&format!("{:<cw$} ", fit(v, cw)));
        }
    }
    format!("{:<w$}", fit(s.trim_end(), w))
}

pub fn draw(f: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let d = match &app.disputes.data {
        Some(Ok(d)) => d,
        other => {
            let (text, style) = match other {
                Some(Err(e)) => (format!("disputes: {e}"), t.danger),
                _ => ("loading the disputes…".to_string(), t.muted),
            };
            f.render_widget(
                Paragraph::new(fit(&text, area.width.saturating_sub(2) as usize))
                    .style(style)
                    .alignment(Alignment::Center)
                    .block(block(app, " Disputes ")),
                area,
            );
            return;
        }
    };
    let [list, foot] = Layout::vertical([Constraint::Min(4), Constraint::Length(4)]).areas(area);
    let open = d
        .lines
        .iter()
        .filter(|l| !matches!(l.sla, Sla::Answered))
        .count();
    let title = format!(
        " Disputes · {} · {open} open · {} overdue (SLA {}d, as of {}) ",
        d.lines.len(),
        d.overdue(),
        d.sla_days,
        d.today
    );
    let w = list.width.saturating_sub(2) as usize;
    let h = list.height.saturating_sub(3) as usize;
    let n = shown(w);
    let currency = app.currency();
    let heads: Vec<String> = COLS.iter().map(|(c, _)| c.to_string()).collect();
    let mut lines = vec![Line::styled(row(&heads, n, w), t.header)];
    if d.lines.is_empty() {
        lines.push(Line::styled(
            "no disputes: partners' inquiries appear here once opened (`tierdesk dispute open`)",
            t.muted,
        ));
    }
    let sel = app.disputes.sel;
    let first = sel.saturating_sub(h.saturating_sub(1));
    for (i, l) in d.lines.iter().enumerate().skip(first).take(h) {
        let style = if i == sel {
            t.selection
        } else {
            match l.sla {
                Sla::Overdue(_) => t.warning,
                Sla::Answered => t.muted,
                _ => t.text,
            }
        };
        lines.push(Line::from(Span::styled(
            row(&cells(l, currency), n, w),
            style,
        )));
    }
    f.render_widget(
        Paragraph::new(lines).block(block(app, fit(&title, w))),
        list,
    );
    let detail = match app.disputes.selected() {
        Some(l) => format!(
            "{} · partner {} · transaction {} · {} · claimed {}{} · {} since {} ({}). Enter opens the record.",
            l.dispute_id,
            l.partner_id,
            l.transaction_id,
            l.reason_code,
            money_text(&l.claimed, currency),
            l.granted
                .as_deref()
                .map(|g| format!(", granted {}", money_text(g, currency)))
                .unwrap_or_default(),
            l.state,
            l.opened_at,
            l.sla.label()
        ),
        None => String::new(),
    };
    let style = match app.disputes.selected().map(|l| l.sla) {
        Some(Sla::Overdue(_)) => t.warning,
        _ => t.muted,
    };
    f.render_widget(
        Paragraph::new(crate::text::sanitize(&detail).into_owned())
            .style(style)
            .wrap(Wrap { trim: true })
            .block(block(app, " Selected ")),
        foot,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_fit_the_width_and_keep_the_first_three() {
        assert_eq!(shown(10), 3);
        let all: usize = COLS.iter().map(|(_, w)| w + 1).sum();
        assert_eq!(shown(all), COLS.len());
        assert!(shown(78) < COLS.len());
        let values: Vec<String> = COLS.iter().map(|_| "x".repeat(30)).collect();
        for w in [20, 78, 118, 200] {
            let r = row(&values, shown(w), w);
            assert_eq!(unicode_width::UnicodeWidthStr::width(r.as_str()), w);
        }
    }
}
