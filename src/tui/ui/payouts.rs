//! Payouts: runs on top, the selected run's payees in the middle (accounts masked to
//! their last four), reconciliation exceptions at the bottom; the focused part has the
//! accent border. Columns are cut to the width, never wrapped.

use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::{block, fit, money_text};
use crate::money::format_money;
use crate::tui::app::App;
use crate::tui::payouts::{PayeeLine, PayoutPane, RunLine};

/// Cells laid out left to right in `widths` (0: the rest of the line), cut to `w`.
fn row(cells: &[String], widths: &[usize], right: &[usize], w: usize) -> String {
    let mut s = String::new();
    for (i, c) in cells.iter().enumerate() {
        let used = unicode_width::UnicodeWidthStr::width(s.as_str());
        if used >= w {
            break;
        }
        let cw = match widths.get(i) {
            Some(0) | None => w.saturating_sub(used),
            Some(cw) => *cw,
        };
        if right.contains(&i) {
            s.push_str(&format!("{:>cw$} ", fit(c, cw)));
        } else {
            s.push_str(&format!("{:<cw$} ", fit(c, cw)));
        }
    }
    format!("{:<w$}", fit(s.trim_end(), w))
}

/// The visible slice of a list of `n` rows in `h` lines keeping `sel` in view.
fn window(sel: usize, h: usize) -> usize {
    sel.saturating_sub(h.saturating_sub(1))
}

fn pane_block<'a>(app: &App, title: String, focused: bool) -> ratatui::widgets::Block<'a> {
    let b = block(app, title);
    if focused {
        b.border_style(app.theme.accent)
    } else {
        b
    }
}

const RUN_W: [usize; 7] = [15, 7, 9, 6, 14, 8, 0];

fn run_cells(r: &RunLine) -> Vec<String> {
    vec![
        r.run.run_id.clone(),
        r.run.period.clone(),
        r.run.state.clone(),
        r.totals.payees.to_string(),
        format_money(r.totals.payable_total, &r.run.currency),
        r.run.prepared_by.clone(),
        r.run.approved_by.clone().unwrap_or_else(|| "-".into()),
    ]
}

/// partner, account, amount, status, bank, holds (the rest).
const PAYEE_W: [usize; 6] = [8, 13, 13, 9, 12, 0];

fn payee_cells(p: &PayeeLine) -> Vec<String> {
    let bank = match &p.return_code {
        Some(rc) => format!("{} {rc}", p.bank_state),
        None => p.bank_state.clone(),
    };
    let holds = if p.holds.is_empty() {
        if p.released.is_empty() {
            "-".into()
        } else {
            format!("released {}", p.released.join(","))
        }
    } else {
        p.holds
            .iter()
            .map(|h| format!("{}: {}", h.code, h.reason))
            .collect::<Vec<_>>()
            .join("; ")
    };
    vec![
        p.partner_id.clone(),
        p.account.clone(),
        format_money(p.amount, &p.currency),
        p.status.clone(),
        bank,
        holds,
    ]
}

pub fn draw(f: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let st = &app.payouts;
    let d = match &st.data {
        Some(Ok(d)) => d,
        other => {
            let (text, style) = match other {
                Some(Err(e)) => (format!("payouts: {e}"), t.danger),
                _ => ("loading the payout runs…".to_string(), t.muted),
            };
            f.render_widget(
                Paragraph::new(fit(&text, area.width.saturating_sub(2) as usize))
                    .style(style)
                    .alignment(Alignment::Center)
                    .block(block(app, " Payouts ")),
                area,
            );
            return;
        }
    };
    let runs_h = (d.runs.len().max(1) as u16 + 3).min(area.height / 3).max(4);
    let exc_h = if d.exceptions.is_empty() { 3 } else { 5 };
    let [runs_a, payees_a, exc_a] = Layout::vertical([
        Constraint::Length(runs_h),
        Constraint::Min(4),
        Constraint::Length(exc_h),
    ])
    .areas(area);
    let sel_style = |i: usize, sel: usize, focused: bool, base: Style| {
        if i == sel && focused {
            t.selection
        } else if i == sel {
            base.patch(t.accent)
        } else {
            base
        }
    };

    // Runs.
    let w = runs_a.width.saturating_sub(2) as usize;
    let h = runs_a.height.saturating_sub(3) as usize;
    let focused = st.pane == PayoutPane::Runs;
    let heads: Vec<String> = [
        "run", "period", "state", "payees", "payable", "prepared", "approved",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut lines = vec![Line::styled(row(&heads, &RUN_W, &[3, 4], w), t.header)];
    if d.runs.is_empty() {
        lines.push(Line::styled(
            fit(
                "no payout runs: `tierdesk payout prepare --period 2026-Q3`",
                w,
            ),
            t.muted,
        ));
    }
    for (i, r) in d
        .runs
        .iter()
        .enumerate()
        .skip(window(st.run_sel, h))
        .take(h)
    {
        let base = match r.run.state.as_str() {
            "draft" => t.warning,
            "approved" | "exported" => t.ok,
            _ => t.text,
        };
        lines.push(Line::styled(
            row(&run_cells(r), &RUN_W, &[3, 4], w),
            sel_style(i, st.run_sel, focused, base),
        ));
    }
    let title = format!(" Payout runs · {} ", d.runs.len());
    f.render_widget(
        Paragraph::new(lines).block(pane_block(app, fit(&title, w), focused)),
        runs_a,
    );

    // Payees of the selected run.
    let w = payees_a.width.saturating_sub(2) as usize;
    let focused = st.pane == PayoutPane::Payees;
    // With the payees focused, the last line holds the selected payee's holds in full.
    let detail = st
        .selected_payee()
        .filter(|p| focused && !p.holds.is_empty())
        .map(|p| {
            let holds: Vec<String> = p
                .holds
                .iter()
                .map(|h| format!("{}: {}", h.code, h.reason))
                .collect();
            format!("{}: {}", p.partner_id, holds.join("; "))
        });
    let h = payees_a
        .height
        .saturating_sub(3 + u16::from(detail.is_some())) as usize;
    let heads: Vec<String> = ["payee", "account", "amount", "status", "bank", "holds"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut lines = vec![Line::styled(row(&heads, &PAYEE_W, &[2], w), t.header)];
    let run_id = st
        .selected_run()
        .map(|r| r.run.run_id.clone())
        .unwrap_or_default();
    let mut title = format!(" Payees of {run_id} ");
    match st.shown_payees() {
        None if st.selected_run().is_some() => {
            lines.push(Line::styled("loading the payees…", t.muted));
        }
        None => {}
        Some(Err(e)) => lines.push(Line::styled(fit(&format!("payees: {e}"), w), t.danger)),
        Some(Ok(ps)) => {
            let held = ps.iter().filter(|p| p.status == "held").count();
            title = format!(" Payees of {run_id} · {} · {held} held ", ps.len());
            for (i, p) in ps.iter().enumerate().skip(window(st.payee_sel, h)).take(h) {
                let base = match (p.status.as_str(), p.bank_state.as_str()) {
                    (_, "returned") => t.danger,
                    ("held", _) => t.warning,
                    ("carried_forward", _) => t.muted,
                    _ => t.text,
                };
                lines.push(Line::styled(
                    row(&payee_cells(p), &PAYEE_W, &[2], w),
                    sel_style(i, st.payee_sel, focused, base),
                ));
            }
        }
    }
    if let Some(d) = detail {
        while lines.len() < h + 1 {
            lines.push(Line::raw(""));
        }
        lines.push(Line::styled(fit(&d, w), t.warning));
    }
    f.render_widget(
        Paragraph::new(lines).block(pane_block(app, fit(&title, w), focused)),
        payees_a,
    );

    // Reconciliation exceptions.
    let w = exc_a.width.saturating_sub(2) as usize;
    let h = exc_a.height.saturating_sub(2) as usize;
    let focused = st.pane == PayoutPane::Exceptions;
    let mut lines = Vec::new();
    if d.exceptions.is_empty() {
        lines.push(Line::styled(
            fit(
                "no reconciliation exceptions (`tierdesk reconcile FILE...` reads bank files)",
                w,
            ),
            t.muted,
        ));
    }
    for (i, e) in d
        .exceptions
        .iter()
        .enumerate()
        .skip(window(st.exc_sel, h))
        .take(h)
    {
        let text = format!(
            "{:<10} {:>12} {} #{} {} {}",
            e.class,
            money_text(&e.amount, &e.currency),
            e.file,
            e.entry,
            e.code.as_deref().unwrap_or(""),
            if e.lines.is_empty() {
                "names no payment".to_string()
            } else {
                e.lines.join(",")
            }
        );
        lines.push(Line::from(Span::styled(
            format!("{:<w$}", fit(&text, w)),
            sel_style(i, st.exc_sel, focused, t.warning),
        )));
    }
    let title = format!(" Reconciliation exceptions · {} ", d.exceptions.len());
    f.render_widget(
        Paragraph::new(lines).block(pane_block(app, fit(&title, w), focused)),
        exc_a,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_exactly_the_width() {
        let cells: Vec<String> = (0..7).map(|_| "x".repeat(40)).collect();
        for w in [10, 40, 78, 118] {
            let r = row(&cells, &RUN_W, &[3, 4], w);
            assert_eq!(unicode_width::UnicodeWidthStr::width(r.as_str()), w, "{r}");
            let r = row(&cells[..6], &PAYEE_W, &[2], w);
            assert_eq!(unicode_width::UnicodeWidthStr::width(r.as_str()), w, "{r}");
        }
    }
}
