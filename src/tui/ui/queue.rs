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

/// The active search and filters, `·`-separated (the filter line shows it, cut to fit).
pub fn filter_summary(app: &App) -> String {
    let q = &app.queue.filter;
    let mut parts = Vec::new();
    if let Some(s) = &q.search {
        parts.push(format!("search \"{}\"", crate::text::sanitize(s)));
    }
    if !q.kind.is_empty() {
        let k: Vec<&str> = q.kind.iter().map(|k| kind_abbrev(k)).collect();
        parts.push(format!("kind {}", k.join(",")));
    }
    if !q.status.is_empty() {
        parts.push(format!("status {}", q.status.join(",")));
    }
    if let Some(x) = &q.tier {
        parts.push(format!("tier {}", crate::text::sanitize(x)));
    }
    if let Some(x) = &q.region {
        parts.push(format!("region {}", crate::text::sanitize(x)));
    }
    if let Some(m) = q.min_amount_minor {
        parts.push(format!("amount ≥ {}", money_minor(app, m)));
    }
    if let Some(me) = &q.needs_me {
        parts.push(if me.role == crate::config::Role::Manager {
            "needs me (sign-offs, not my own)".to_string()
        } else {
            "needs me (open work)".to_string()
        });
    }
    parts.join(" · ")
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
        let clear = app.keymap.short(crate::tui::action::Action::ClearFilter);
        let hint = format!("   ({clear} clears)");
        let room = (fl.width as usize).saturating_sub(9 + hint.width());
        f.render_widget(
            Paragraph::new(Line::from(vec![
                Span::styled(" filter: ", t.accent),
                Span::styled(fit(&filter_summary(app), room), t.text),
                Span::styled(hint, t.muted),
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
    // A row's own currency, the program's when it has none.
    let row_currency = |r: &'_ crate::store::queue::QueueRow| -> String {
        if r.currency.is_empty() {
            cur.to_string()
        } else {
            r.currency.clone()
        }
    };
    let amounts: Vec<String> = slice
        .iter()
        .map(|r| money_text(&r.amount, &row_currency(r)))
        .collect();
    let stakes: Vec<String> = slice
        .iter()
        .map(|r| money_minor(app, r.at_stake_minor))
        .collect();

    // Column widths sized to the terminal and to the visible figures. The transaction
    // id is always shown; narrow terminals shorten the score bar and partner · tier.
    // Columns the person hid (`C`) take no room.
    let show = |name: &str| app.shows_column(name);
    let (score_on, kinds_on, partner_on) = (show("score"), show("kinds"), show("partner"));
    let (amount_on, stake_on, age_on, status_on) =
        (show("amount"), show("stake"), show("age"), show("status"));
    let (action_on, delta_on) = (show("action"), show("delta"));
    let deltas: Vec<String> = if delta_on {
        slice
            .iter()
            .map(|r| match &r.delta {
                Some(d) => {
                    let m = money_text(d, &row_currency(r));
                    if d.starts_with('-') || d.trim_start_matches(['0', '.']).is_empty() {
                        m
                    } else {
                        format!("+{m}")
                    }
                }
                None => "—".into(),
            })
            .collect()
    } else {
        Vec::new()
    };
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
    let delta_w = deltas
        .iter()
        .map(|s| s.width())
        .max()
        .unwrap_or(0)
        .clamp(5, 14);
    let id_w = slice
        .iter()
        .map(|r| crate::text::sanitize(&r.transaction_id).width())
        .max()
        .unwrap_or(0)
        .clamp(2, if w < 100 { 12 } else { 20 });
    let score_w = if w < 100 { 3 } else { 8 };
    let kinds_w = match w {
        0..100 => 9,
        100..140 => 12,
        _ => 20,
    };
    // (shown, width) of the fixed columns, in order around the flexible ones.
    let lead = [
        (true, 1),
        (score_on, score_w),
        (true, id_w),
        (kinds_on, kinds_w),
    ];
    let tail = [
        (amount_on, amt_w),
        (stake_on, stake_w),
        (delta_on, delta_w),
        (action_on, 9),
        (age_on, 4),
        (status_on, 9),
    ];
    let fixed: usize = lead.iter().chain(&tail).filter(|c| c.0).map(|c| c.1).sum();
    let n_fixed = lead.iter().chain(&tail).filter(|c| c.0).count();
    // One gap after each column but the last, and one column of slack.
    let flex = w.saturating_sub(fixed + n_fixed + usize::from(partner_on));
    let want_customer = show("customer");
    let show_customer = want_customer && if partner_on { flex >= 40 } else { flex >= 9 };
    let (partner_w, cust_w) = match (partner_on, show_customer) {
        // Partner names get the larger share: they are what a reviewer scans.
        (true, true) => (flex * 3 / 5, flex - flex * 3 / 5 - 1),
        (true, false) => (flex, 0),
        (false, true) => (0, flex.saturating_sub(1)),
        (false, false) => (0, 0),
    };
    let mut widths = vec![Constraint::Length(1)];
    let mut head: Vec<Cell> = vec![Cell::from("")];
    let right = |s: &'static str| Cell::from(Line::from(s).alignment(Alignment::Right));
    if score_on {
        widths.push(Constraint::Length(score_w as u16));
        head.push(Cell::from(if score_w < 8 { "scr" } else { "score" }));
    }
    widths.push(Constraint::Length(id_w as u16));
    head.push(Cell::from("id"));
    if kinds_on {
        widths.push(Constraint::Length(kinds_w as u16));
        head.push(Cell::from("kinds"));
    }
    if partner_on {
        widths.push(Constraint::Length(partner_w as u16));
        head.push(Cell::from(if partner_w < 16 {
            "partner"
        } else {
            "partner · tier"
        }));
    }
    if show_customer {
        widths.push(Constraint::Length(cust_w as u16));
        head.push(Cell::from("customer"));
    }
    for (on, cw, label, is_right) in [
        (amount_on, amt_w, "amount", true),
        (stake_on, stake_w, "at stake", true),
        (delta_on, delta_w, "Δ", true),
        (action_on, 9, "action", false),
        (age_on, 4, "age", false),
        (status_on, 9, "status", false),
    ] {
        if on {
            widths.push(Constraint::Length(cw as u16));
            head.push(if is_right {
                right(label)
            } else {
                Cell::from(label)
            });
        }
    }
    let header = Row::new(head).style(t.header);

    let as_of = app.program.as_ref().map(|p| p.as_of.as_str());
    let rows = slice.iter().enumerate().map(|(i, r)| {
        let idx = scroll + i;
        let selected = idx == q.sel;
        // On the selected row the selection's colours win over every cell's.
        let st = |role| if selected { t.on_selection(role) } else { role };
        let marked = q.marked.contains(&r.transaction_id);
        let mut cells = vec![Cell::from(if marked { "●" } else { " " }).style(st(t.marked))];
        if score_on {
            let score = if score_w < 8 {
                format!("{:>3}", (r.score * 100.0).round() as i64)
            } else {
                format!(
                    "{}{:>3}",
                    score_bar(r.score),
                    (r.score * 100.0).round() as i64
                )
            };
            cells.push(Cell::from(score).style(st(t.bar)));
        }
        cells.push(Cell::from(fit(&r.transaction_id, id_w)).style(st(t.text)));
        if kinds_on {
            let kinds: Vec<&str> = r.kinds.iter().map(|k| kind_abbrev(k)).collect();
            cells.push(Cell::from(fit(&kinds.join(","), kinds_w)).style(st(t.accent)));
        }
        if partner_on {
            let partner = partner_tier(&r.partner_name, &r.tier, partner_w);
            cells.push(Cell::from(fit(&partner, partner_w)).style(st(t.text)));
        }
        if show_customer {
            cells.push(Cell::from(fit(&r.customer, cust_w)).style(st(t.text)));
        }
        let money_style = |v: &str| {
            if v.starts_with('-') {
                t.money_negative
            } else {
                t.text
            }
        };
        if amount_on {
            let amount = &amounts[i];
            cells.push(
                Cell::from(Line::from(fit(amount, amt_w)).alignment(Alignment::Right))
                    .style(st(money_style(&r.amount))),
            );
        }
        if stake_on {
            cells.push(
                Cell::from(Line::from(fit(&stakes[i], stake_w)).alignment(Alignment::Right))
                    .style(st(t.warning)),
            );
        }
        if delta_on {
            cells.push(
                Cell::from(Line::from(fit(&deltas[i], delta_w)).alignment(Alignment::Right))
                    .style(st(money_style(&deltas[i]))),
            );
        }
        if action_on {
            let a = r.action.as_deref().unwrap_or("—");
            cells.push(Cell::from(fit(a, 9)).style(st(t.text)));
        }
        if age_on {
            cells.push(Cell::from(age_days(as_of, &r.submitted_at)).style(st(t.muted)));
        }
        if status_on {
            cells.push(
                Cell::from(fit(status_abbrev(&r.status), 9))
                    .style(st(status_style(app, &r.status))),
            );
        }
        let row = Row::new(cells);
        if selected {
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

/// "Partner · Tier" in `w` columns: the tier keeps its first letters, the name the rest
/// (at least 3/5 of the column); below 16 columns only the name.
pub fn partner_tier(name: &str, tier: &str, w: usize) -> String {
    let name = crate::text::sanitize(name);
    let tier = crate::text::sanitize(tier);
    if tier.is_empty() || w < 16 {
        return fit(&name, w);
    }
    let name_w = name
        .width()
        .min(w.saturating_sub(tier.width() + 3))
        .max(w * 3 / 5);
    let tier_w = w.saturating_sub(name_w + 3);
    format!("{} · {}", fit(&name, name_w), fit(&tier, tier_w))
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
