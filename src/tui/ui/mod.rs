//! Drawing: every view draws from `&App` only. Only the visible queue rows are handed to
//! the table widget.

pub mod conflict;
mod disputes;
mod forecast;
mod outbox;
mod overlay;
mod payouts;
mod plan;
mod policy;
mod queue;
mod record;
mod signoff;

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};
use ratatui::Frame;
use rust_decimal::Decimal;
use unicode_width::UnicodeWidthStr;

use super::action::Action;
use super::app::{App, Level, View, MIN_H, MIN_W, WIDE};
use crate::money::{format_money, parse_money};

/// Draws one frame.
pub fn draw(f: &mut Frame, app: &App) {
    let area = f.area();
    app.size.set((area.width, area.height));
    if area.width < MIN_W || area.height < MIN_H {
        too_small(f, app, area);
        return;
    }
    let msg_h = u16::from(app.message.is_some());
    let [top, body, msg, status] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Min(1),
        Constraint::Length(msg_h),
        Constraint::Length(1),
    ])
    .areas(area);
    header(f, app, top);
    match app.view {
        View::Queue if area.width >= WIDE => {
            let [l, r] =
                Layout::horizontal([Constraint::Percentage(58), Constraint::Percentage(42)])
                    .areas(body);
            queue::draw(f, app, l);
            record::draw(f, app, r);
        }
        View::Queue => queue::draw(f, app, body),
        View::Record => record::draw(f, app, body),
        View::Signoff => signoff::draw(f, app, body),
        View::Forecast => forecast::draw(f, app, body),
        View::Policy => policy::draw(f, app, body),
        View::Outbox => outbox::draw(f, app, body),
        View::Disputes => disputes::draw(f, app, body),
        View::Payouts => payouts::draw(f, app, body),
        View::Plan => plan::draw(f, app, body),
    }
    if let Some((level, text)) = &app.message {
        let st = match level {
            Level::Info => app.theme.accent,
            Level::Ok => app.theme.ok,
            Level::Error => app.theme.danger,
        };
        let prefix = match level {
            Level::Info => "· ",
            Level::Ok => "✓ ",
            Level::Error => "✗ ",
        };
        // Data may be quoted in a message: sanitized, and cut with an ellipsis.
        let room = (msg.width as usize).saturating_sub(prefix.width());
        f.render_widget(
            Paragraph::new(Line::from(vec![
                Span::styled(prefix, st),
                Span::styled(fit(text, room), st),
            ])),
            msg,
        );
    }
    status_bar(f, app, status);
    if let Some(m) = &app.modal {
        overlay::draw(f, app, m, area);
    }
    scrub(f.buffer_mut());
}

/// The last line of defence against data on screen: no cell carries a control or bidi
/// formatting character to the terminal (see `crate::text`).
pub fn scrub(buf: &mut ratatui::buffer::Buffer) {
    for cell in buf.content.iter_mut() {
        if cell.symbol().chars().any(crate::text::is_unsafe) {
            let clean = crate::text::sanitize(cell.symbol()).into_owned();
            cell.set_symbol(if clean.is_empty() { " " } else { &clean });
        }
    }
}

/// The help overlay's text (every action with its keys), for tests and docs.
pub fn help_text(app: &App, width: usize) -> String {
    overlay::help_lines(app, width)
        .iter()
        .map(|l| {
            l.spans
                .iter()
                .map(|s| s.content.as_ref())
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn too_small(f: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let lines = vec![
        Line::styled("Terminal too small", t.danger),
        Line::styled(
            format!(
                "{}x{} — tierdesk needs at least {MIN_W}x{MIN_H}",
                area.width, area.height
            ),
            t.text,
        ),
        Line::styled("Enlarge the window, or press q to quit.", t.muted),
    ];
    let h = lines.len() as u16;
    let y = area.y + area.height.saturating_sub(h) / 2;
    f.render_widget(
        Paragraph::new(lines)
            .alignment(ratatui::layout::Alignment::Center)
            .wrap(Wrap { trim: true }),
        Rect::new(area.x, y, area.width, h.min(area.height)),
    );
}

/// Short names of anomaly kinds for narrow columns.
pub fn kind_abbrev(k: &str) -> &str {
    match k {
        "deal_size_tier" => "size",
        "discount_policy" => "disc",
        "uncertified_product" => "cert",
        "duplicate" => "dup",
        "backdated" => "back",
        "split_deals" => "split",
        "registration_mismatch" => "reg",
        "commission_variance" => "var",
        "erp_mismatch" => "erp",
        "period_end_cluster" => "qend",
        "volume_spike" => "spike",
        "product_mix" => "mix",
        "data_integrity" => "data",
        other => other,
    }
}

/// Workflow states in a few characters.
pub fn status_abbrev(s: &str) -> &str {
    match s {
        "in_review" => "review",
        "overridden" => "override",
        "documents_requested" => "docs req",
        "awaiting_signoff" => "sign-off",
        "signed_off" => "signed",
        "queued_for_push" => "queued",
        other => other,
    }
}

pub fn status_style(app: &App, s: &str) -> Style {
    let t = &app.theme;
    match s {
        "flagged" => t.warning,
        "conflict" | "rejected" => t.danger,
        "approved" | "overridden" | "signed_off" | "pushed" | "queued_for_push" | "dismissed" => {
            t.ok
        }
        "awaiting_signoff" | "escalated" | "documents_requested" => t.accent,
        _ => t.text,
    }
}

pub fn money_minor(app: &App, minor: i64) -> String {
    format_money(Decimal::new(minor, 2), app.currency())
}

/// Formats a stored exact decimal string; shows the text as is if it does not parse.
pub fn money_text(text: &str, currency: &str) -> String {
    match parse_money(text) {
        Some(d) => format_money(d, currency),
        None => text.to_string(),
    }
}

/// Cuts `s` to `w` display columns, with an ellipsis when cut (sanitized: data).
pub fn fit(s: &str, w: usize) -> String {
    crate::text::fit(s, w)
}

/// Appends spans while they fit in `room` columns; ends with "…" when something was cut.
fn push_fit<'a>(out: &mut Vec<Span<'a>>, room: &mut usize, items: Vec<Span<'a>>) {
    for sp in items {
        let w = sp.content.width();
        if w + 1 > *room {
            if *room > 0 {
                out.push(Span::raw("…"));
                *room = 0;
            }
            return;
        }
        *room -= w;
        out.push(sp);
    }
}

fn header(f: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let [l1, l2] = Layout::vertical([Constraint::Length(1), Constraint::Length(1)]).areas(area);
    let width = area.width as usize;
    let view = match app.view {
        View::Queue => "Queue",
        View::Record => "Record",
        View::Signoff => "Sign-off",
        View::Forecast => "Forecast",
        View::Policy => "Policy",
        View::Outbox => "Outbox",
        View::Disputes => "Disputes",
        View::Payouts => "Payouts",
        View::Plan => "Plan",
    };
    let pos = match app.view {
        View::Queue | View::Record => queue::position(app)
            .map(|p| format!("{p} · {} ", app.queue.sort.label()))
            .unwrap_or_default(),
        View::Signoff
        | View::Forecast
        | View::Policy
        | View::Outbox
        | View::Payouts
        | View::Disputes
        | View::Plan => String::new(),
    };
    let right = format!("{pos}[{view}] ");
    let mut room = width.saturating_sub(right.width());
    let mut spans = Vec::new();
    let mut left = vec![Span::styled(" tierdesk ", t.title)];
    if let Some(p) = &app.program {
        left.push(Span::styled(p.name.clone(), t.text));
        left.push(Span::styled(
            format!("  review {} → {}", p.review_start, p.review_end),
            t.muted,
        ));
        left.push(Span::styled(format!("  as of {}", p.as_of), t.muted));
    } else if app.queue.loaded_once {
        left.push(Span::styled(
            "no program imported: run `tierdesk demo` or `tierdesk import DIR`",
            t.warning,
        ));
    }
    // Drop the least important pieces first rather than cutting words.
    while left.len() > 2 && left.iter().map(|s| s.content.width()).sum::<usize>() > room {
        left.pop();
    }
    push_fit(&mut spans, &mut room, left);
    spans.push(Span::raw(" ".repeat(room)));
    spans.push(Span::styled(right, t.muted));
    f.render_widget(Paragraph::new(Line::from(spans)), l1);

    // Counters: total, per status, per kind (from the counters table, never a COUNT).
    let get = |name: &str| {
        app.counters
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| *v)
    };
    let narrow = width < 130;
    let mut items = vec![Span::styled(
        format!(" {} in queue ", group_int(get("queue:total").unwrap_or(0))),
        t.header,
    )];
    items.push(Span::styled("│", t.border));
    for (n, v) in app
        .counters
        .iter()
        .filter(|(n, _)| n.starts_with("status:"))
    {
        let s = &n["status:".len()..];
        items.push(Span::styled(
            format!(
                " {} {}",
                if narrow { status_abbrev(s) } else { s },
                group_int(*v)
            ),
            status_style(app, s),
        ));
    }
    if app.counters.iter().any(|(n, _)| n.starts_with("kind:")) {
        items.push(Span::styled(" │", t.border));
    }
    for (n, v) in app.counters.iter().filter(|(n, _)| n.starts_with("kind:")) {
        let k = &n["kind:".len()..];
        items.push(Span::styled(
            format!(
                " {} {}",
                if narrow { kind_abbrev(k) } else { k },
                group_int(*v)
            ),
            t.muted,
        ));
    }
    let mut out = Vec::new();
    let mut room = width;
    push_fit(&mut out, &mut room, items);
    f.render_widget(Paragraph::new(Line::from(out)), l2);
}

pub fn group_int(v: i64) -> String {
    let s = v.abs().to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if v < 0 {
        format!("-{out}")
    } else {
        out
    }
}

/// The rollout phase for the status bar: the program's (observe when none was set),
/// with the number of tiers that have their own.
pub fn phase_label(phases: &[(String, String)], narrow: bool) -> String {
    let program = phases
        .iter()
        .find(|(scope, _)| scope == "*")
        .map_or("observe", |(_, p)| p.as_str());
    let tiers = phases.iter().filter(|(scope, _)| scope != "*").count();
    let head = if narrow {
        program.to_string()
    } else {
        format!("phase {program}")
    };
    match tiers {
        0 => head,
        n => format!("{head} +{n} tier{}", if n == 1 { "" } else { "s" }),
    }
}

fn status_bar(f: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let bar = t.status_bar;
    let s = &app.sync;
    let narrow = area.width < 110;
    let net: String = if app.bg.running {
        match &app.bg.progress {
            Some((phase, res, done)) if !narrow => {
                format!("⟳ {phase} {res} {}", group_int(*done as i64))
            }
            Some((_, _, done)) => format!("⟳ {}", group_int(*done as i64)),
            None => "⟳ syncing".into(),
        }
    } else {
        // Never "online" without a PRM: the saved status may be from another setup.
        let why = if app.config.prm.is_none() {
            Some("no PRM")
        } else {
            app.bg.offline_reason(s.online)
        };
        match (why, s.online) {
            (Some(why), _) if !narrow => format!("○ offline: {why}"),
            (None, Some(true)) => "● online".into(),
            _ => "○ offline".into(),
        }
    };
    let last = s
        .last_sync
        .as_deref()
        .map(|l| {
            let l = l.replace('T', " ");
            let l = l.get(..16).unwrap_or(&l).to_string();
            if narrow {
                l.get(5..).unwrap_or(&l).to_string()
            } else {
                l
            }
        })
        .unwrap_or_else(|| "never".into());
    let mut spans = vec![
        Span::styled(
            format!(" {} ({}) ", app.user, app.role.as_str()),
            bar.patch(t.key),
        ),
        Span::styled(
            format!("│ {net} │ sync {last} │ outbox {} ", s.outbox_pending),
            bar,
        ),
        Span::styled(
            format!(
                "│ {} {} ",
                if narrow { "confl" } else { "conflicts" },
                s.conflicts
            ),
            if s.conflicts > 0 {
                bar.patch(t.danger)
            } else {
                bar
            },
        ),
    ];
    spans.push(Span::styled(
        format!("│ {} ", phase_label(&s.phases, narrow)),
        bar,
    ));
    let marked = match app.view {
        View::Signoff => app.signoff.marked.len(),
        _ => app.queue.marked.len(),
    };
    if marked > 0 {
        spans.push(Span::styled(
            format!("│ {marked} sel "),
            bar.patch(t.marked),
        ));
    }
    // Key hints: help first (always), then what fits.
    let hints: &[(Action, &str)] = match app.view {
        View::Record => &[
            (Action::Help, "help"),
            (Action::NextPane, "pane"),
            (Action::Approve, "approve"),
            (Action::Override, "override"),
            (Action::Back, "back"),
        ],
        View::Signoff => &[
            (Action::Help, "help"),
            (Action::Approve, "sign off"),
            (Action::Reject, "reject"),
            (Action::ToggleSelect, "select"),
        ],
        View::Outbox => &[
            (Action::Help, "help"),
            (Action::Open, "open"),
            (Action::SyncNow, "sync"),
            (Action::Refresh, "reload"),
            (Action::QueueView, "queue"),
            (Action::Quit, "quit"),
        ],
        View::Payouts => &[
            (Action::Help, "help"),
            (Action::NextPane, "part"),
            (Action::ApproveRun, "approve run"),
            (Action::ReleaseHold, "release hold"),
            (Action::Refresh, "reload"),
            (Action::Quit, "quit"),
        ],
        View::Plan => &[
            (Action::Help, "help"),
            (Action::Palette, "whatif"),
            (Action::Refresh, "reload"),
            (Action::QueueView, "queue"),
            (Action::Quit, "quit"),
        ],
        View::Disputes => &[
            (Action::Help, "help"),
            (Action::Open, "open record"),
            (Action::Refresh, "reload"),
            (Action::QueueView, "queue"),
            (Action::Quit, "quit"),
        ],
        View::Policy => &[
            (Action::Help, "help"),
            (Action::Down, "select"),
            (Action::Undo, "roll back"),
            (Action::Refresh, "reload"),
            (Action::QueueView, "queue"),
            (Action::Quit, "quit"),
        ],
        View::Forecast => &[
            (Action::Help, "help"),
            (Action::Down, "scroll"),
            (Action::Refresh, "recompute"),
            (Action::QueueView, "queue"),
            (Action::Quit, "quit"),
        ],
        View::Queue => &[
            (Action::Help, "help"),
            (Action::Open, "open"),
            (Action::Search, "search"),
            (Action::Filter, "filter"),
            (Action::Approve, "approve"),
            (Action::Override, "override"),
            (Action::Palette, "commands"),
            (Action::Quit, "quit"),
        ],
    };
    let mut hint_spans = vec![Span::styled("│", bar)];
    let mut room = area.width as usize;
    let base: usize = spans.iter().map(|s| s.content.width()).sum();
    // Reserve room for the help hint by shortening the left part if needed.
    let help_w = app.keymap.short(Action::Help).width() + 7;
    if base + help_w + 1 > room {
        spans.truncate(2);
    }
    room = room.saturating_sub(spans.iter().map(|s| s.content.width()).sum::<usize>() + 1);
    for (a, label) in hints {
        let k = app.keymap.short(*a);
        let w = k.width() + label.width() + 2;
        if w > room {
            break;
        }
        room -= w;
        hint_spans.push(Span::styled(format!(" {k}"), bar.patch(t.key)));
        hint_spans.push(Span::styled(format!(" {label}"), bar));
    }
    if hint_spans.len() > 1 {
        spans.extend(hint_spans);
    }
    f.render_widget(Paragraph::new(Line::from(spans)).style(bar), area);
}

/// A titled block in the theme's border style.
pub fn block<'a>(app: &App, title: impl Into<Line<'a>>) -> Block<'a> {
    Block::bordered()
        .border_style(app.theme.border)
        .title(title.into().style(app.theme.title))
}
