//! Overlays: help (generated from the keymap), command palette, search prompt, filter
//! dialog and the decision editor.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Wrap};
use ratatui::Frame;

use super::{block, fit};
use crate::tui::action::{Action, Group};
use crate::tui::app::{palette_matches, App, FormKind, Modal, KIND_CHOICES, STATUS_CHOICES};

fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

pub fn draw(f: &mut Frame, app: &App, m: &Modal, area: Rect) {
    match m {
        Modal::Help { scroll } => help(f, app, *scroll, area),
        Modal::Palette { input, sel } => palette(f, app, input, *sel, area),
        Modal::Search { input, .. } => search(f, app, input, area),
        Modal::Filter(ff) => filter(f, app, ff, area),
        Modal::Form(form) => decision_form(f, app, form, area),
        Modal::Confirm(c) => confirm(f, app, c, area),
        Modal::Ask(p) => ask_prompt(f, app, p, area),
        Modal::Answer(a) => answer(f, app, a, area),
        Modal::Columns(p) => columns(f, app, p, area),
        Modal::Views(p) => views(f, app, p, area),
    }
}

/// The column chooser: every column with a check box (the id is fixed).
fn columns(f: &mut Frame, app: &App, p: &crate::tui::views::ColumnsPicker, area: Rect) {
    let t = &app.theme;
    let cols = &crate::tui::views::COLUMNS;
    let r = centered(area, 62, cols.len() as u16 + 5);
    f.render_widget(Clear, r);
    let mut lines = Vec::new();
    for (i, (name, label)) in cols.iter().enumerate() {
        let on = i == p.sel;
        let mark = if *name == "id" {
            "[■]"
        } else if app.shows_column(name) {
            "[x]"
        } else {
            "[ ]"
        };
        let style = if on { t.selection } else { t.text };
        lines.push(Line::from(vec![
            Span::styled(format!(" {mark} "), if on { t.selection } else { t.accent }),
            Span::styled(fit(label, (r.width as usize).saturating_sub(8)), style),
        ]));
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        " ↑/↓ column · Space shows/hides · Enter/Esc closes (kept)",
        t.muted,
    ));
    f.render_widget(
        Paragraph::new(lines).block(block(app, " Queue columns ")),
        r,
    );
}

/// The saved views: name, filter summary and sort.
fn views(f: &mut Frame, app: &App, p: &crate::tui::views::ViewsPicker, area: Rect) {
    let t = &app.theme;
    let n = app.views.len().max(1) as u16;
    let r = centered(area, 76, (n + 5).min(area.height));
    f.render_widget(Clear, r);
    let room = (r.width as usize).saturating_sub(4);
    let mut lines = Vec::new();
    if app.views.is_empty() {
        lines.push(Line::styled(
            " No saved views yet: set a filter, sort and columns, then :view save NAME",
            t.muted,
        ));
    }
    let body = (r.height as usize).saturating_sub(5).max(1);
    let start = p.sel.saturating_sub(body.saturating_sub(1));
    for (i, v) in app.views.iter().enumerate().skip(start).take(body) {
        let on = i == p.sel;
        let what = crate::tui::views::describe(app, v);
        let text = format!(" {} — {what}", crate::text::sanitize(&v.name));
        lines.push(Line::styled(
            fit(&text, room),
            if on { t.selection } else { t.text },
        ));
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        " ↑/↓ view · Enter applies · d deletes · Esc closes",
        t.muted,
    ));
    f.render_widget(Paragraph::new(lines).block(block(app, " Saved views ")), r);
}

/// The one-line question (tui-textarea) at the bottom, with its scope.
fn ask_prompt(f: &mut Frame, app: &App, p: &crate::tui::ask::AskPrompt, area: Rect) {
    let t = &app.theme;
    let h = 4u16.min(area.height);
    let r = Rect::new(
        area.x,
        area.y + area.height.saturating_sub(h + 1),
        area.width,
        h,
    );
    f.render_widget(Clear, r);
    let scope = match (&p.partner, &p.transaction) {
        (Some(pa), Some(tx)) => format!(" Ask — about {tx}, as partner {pa} "),
        (Some(pa), None) => format!(" Ask — as partner {pa} "),
        _ => " Ask the records ".to_string(),
    };
    let outer = block(app, fit(&scope, r.width.saturating_sub(4) as usize));
    let inner = outer.inner(r);
    f.render_widget(outer, r);
    let [line, help] =
        Layout::vertical([Constraint::Length(1), Constraint::Length(1)]).areas(inner);
    let mut ta = p.input.clone();
    ta.set_style(t.text);
    ta.set_cursor_style(t.selection);
    ta.set_cursor_line_style(t.text);
    f.render_widget(&ta, line);
    let hint = match &p.error {
        Some(e) => Span::styled(fit(&format!("✗ {e}"), help.width as usize), t.danger),
        None => Span::styled(
            fit(
                "Enter asks · Esc cancels · answers cite the records they come from",
                help.width as usize,
            ),
            t.muted,
        ),
    };
    f.render_widget(Paragraph::new(hint), help);
}

/// The answer: each sentence with its citations; scrolls, Esc closes.
fn answer(f: &mut Frame, app: &App, a: &crate::tui::ask::AnswerView, area: Rect) {
    let t = &app.theme;
    let w = area.width.saturating_sub(4).min(100);
    let inner = w.saturating_sub(2) as usize;
    let mut lines = vec![
        Line::styled(fit(&format!("Q: {}", a.question), inner), t.accent),
        Line::raw(""),
    ];
    for s in &a.answer.answer {
        lines.push(Line::styled(
            crate::text::sanitize(&s.text).into_owned(),
            t.text,
        ));
        if s.citations.is_empty() {
            lines.push(Line::styled("  (no citation)", t.muted));
        } else {
            lines.push(Line::styled(
                crate::text::sanitize(&format!("  [{}]", s.citations.join(", "))).into_owned(),
                t.muted,
            ));
        }
    }
    if a.answer.answer.is_empty() {
        lines.push(Line::styled("no answer", t.muted));
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        fit(
            &format!(
                "answer: {}{} · {}{}",
                a.answer.source,
                a.answer
                    .fallback
                    .as_deref()
                    .map(|f| format!(" (the model's answer was not used: {f})"))
                    .unwrap_or_default(),
                a.answer.intent,
                a.partner
                    .as_deref()
                    .map(|p| format!(" · as partner {p}"))
                    .unwrap_or_default()
            ),
            inner,
        ),
        t.muted,
    ));
    // As tall as the wrapped answer (roughly), at most the screen.
    let rows: usize = lines
        .iter()
        .map(|l| l.width().max(1).div_ceil(inner.max(1)))
        .sum();
    let r = centered(
        area,
        w,
        (rows as u16 + 2).min(area.height.saturating_sub(2)),
    );
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .scroll((a.scroll, 0))
            .block(block(app, " Answer — ↑/↓ scroll, Esc closes ")),
        r,
    );
}

/// A yes/no question with what will happen (count, total Δ).
fn confirm(f: &mut Frame, app: &App, c: &crate::tui::flow::Confirm, area: Rect) {
    let t = &app.theme;
    let w = area.width.saturating_sub(4).min(72);
    let inner = w.saturating_sub(4) as usize;
    let mut lines: Vec<Line> = c
        .lines
        .iter()
        .map(|l| Line::styled(format!(" {}", fit(l, inner)), t.text))
        .collect();
    lines.push(Line::raw(""));
    lines.push(Line::from(vec![
        Span::styled(" y", t.key),
        Span::styled(" / ", t.muted),
        Span::styled("Enter", t.key),
        Span::styled(" yes    ", t.text),
        Span::styled("n", t.key),
        Span::styled(" / ", t.muted),
        Span::styled("Esc", t.key),
        Span::styled(" no, change nothing", t.text),
    ]));
    let h = lines.len() as u16 + 2;
    let r = centered(area, w, h);
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(lines).block(block(app, format!(" {} ", c.title))),
        r,
    );
}

/// The help text: every action, grouped, with its keys — generated from the keymap.
pub fn help_lines<'a>(app: &App, width: usize) -> Vec<Line<'a>> {
    let t = &app.theme;
    let mut lines = Vec::new();
    for g in [
        Group::Move,
        Group::View,
        Group::Find,
        Group::Decide,
        Group::App,
    ] {
        lines.push(Line::styled(g.title().to_string(), t.header));
        for a in Action::ALL.iter().filter(|a| a.group() == g) {
            let keys = app.keymap.label(*a);
            lines.push(Line::from(vec![
                Span::styled(format!("  {:<16}", fit(&keys, 16)), t.key),
                Span::styled(fit(a.description(), width.saturating_sub(18)), t.text),
            ]));
        }
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        "In forms: Tab switches field, Ctrl-S submits, Esc cancels. Mouse: wheel scrolls, click selects.",
        t.muted,
    ));
    lines.push(Line::styled(
        "Keys can be changed in config.toml under [keys], e.g. approve = [\"a\", \"ctrl-a\"].",
        t.muted,
    ));
    lines
}

fn help(f: &mut Frame, app: &App, scroll: u16, area: Rect) {
    let r = centered(area, 76, area.height.saturating_sub(2));
    let lines = help_lines(app, r.width.saturating_sub(2) as usize);
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .scroll((scroll, 0))
            .block(block(app, " Help — ↑/↓ scroll, any other key closes ")),
        r,
    );
}

fn palette(f: &mut Frame, app: &App, input: &str, sel: usize, area: Rect) {
    let t = &app.theme;
    let r = centered(area, 64, 16);
    f.render_widget(Clear, r);
    let matches = palette_matches(input);
    let mut lines = vec![Line::from(vec![
        Span::styled(": ", t.accent),
        Span::styled(input.to_string(), t.text),
        Span::styled("▏", t.accent),
    ])];
    let room = r.height.saturating_sub(3) as usize;
    let start = sel.saturating_sub(room.saturating_sub(1));
    for (i, a) in matches.iter().enumerate().skip(start).take(room) {
        let st = if i == sel { t.selection } else { t.text };
        lines.push(Line::from(vec![
            Span::styled(format!(" {:<18}", a.name()), st),
            Span::styled(
                format!("{:<8}", fit(&app.keymap.short(*a), 8)),
                if i == sel { st } else { t.key },
            ),
            Span::styled(
                fit(a.description(), r.width.saturating_sub(30) as usize),
                if i == sel { st } else { t.muted },
            ),
        ]));
    }
    if let Some(usage) = crate::tui::palette::arg_hint(input) {
        lines.insert(1, Line::styled(format!(" Enter: {usage}"), t.accent));
    } else if matches.is_empty() {
        lines.push(Line::styled(" no command matches", t.muted));
    }
    f.render_widget(
        Paragraph::new(lines).block(block(
            app,
            " Command — type to filter, Enter runs, Esc closes ",
        )),
        r,
    );
}

fn search(f: &mut Frame, app: &App, input: &str, area: Rect) {
    let t = &app.theme;
    let r = Rect::new(
        area.x,
        area.y + area.height.saturating_sub(2),
        area.width,
        1,
    );
    f.render_widget(Clear, r);
    let n = app.queue.rows.len();
    let count = if app.queue.loading && app.search_entries.is_none() {
        "indexing…".to_string()
    } else if app.queue.loading {
        "searching…".to_string()
    } else if app.queue.at_bottom {
        format!("{n} match{}", if n == 1 { "" } else { "es" })
    } else {
        format!("{n}+ matches")
    };
    f.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled(" / ", t.accent),
            Span::styled(input.to_string(), t.text),
            Span::styled("▏", t.accent),
            Span::styled(
                format!(
                    "  {count} · partner, customer or transaction id · Enter keeps · Esc restores"
                ),
                t.muted,
            ),
        ])),
        r,
    );
}

fn filter(f: &mut Frame, app: &App, ff: &crate::tui::app::FilterForm, area: Rect) {
    let t = &app.theme;
    let r = centered(area, 60, 12);
    f.render_widget(Clear, r);
    let choice = |i: usize, list: Vec<String>| {
        if i == 0 {
            "any".to_string()
        } else {
            list.get(i - 1).cloned().unwrap_or_default()
        }
    };
    // Values added with space follow the shown choice: `duplicate  + dup,disc`.
    let added = |set: &[String], abbrev: bool| {
        if set.is_empty() {
            String::new()
        } else {
            let v: Vec<&str> = set
                .iter()
                .map(|x| {
                    if abbrev {
                        super::kind_abbrev(x)
                    } else {
                        x.as_str()
                    }
                })
                .collect();
            format!("  + {}", v.join(","))
        }
    };
    let fields = [
        (
            "kind",
            choice(
                ff.kind,
                KIND_CHOICES.iter().map(|s| s.to_string()).collect(),
            ),
        ),
        (
            "status",
            choice(
                ff.status,
                STATUS_CHOICES.iter().map(|s| s.to_string()).collect(),
            ),
        ),
        (
            "tier",
            choice(
                ff.tier,
                app.tiers
                    .iter()
                    .map(|(id, name)| format!("{name} ({id})"))
                    .collect(),
            ),
        ),
        ("region", choice(ff.region, app.regions.clone())),
        (
            "min amount",
            if ff.min_amount.is_empty() {
                "any".to_string()
            } else {
                ff.min_amount.clone()
            },
        ),
        ("needs me", if ff.mine { "yes" } else { "no" }.to_string()),
    ];
    let extra = [added(&ff.kinds, true), added(&ff.statuses, false)];
    let mut lines = Vec::new();
    for (i, (name, val)) in fields.iter().enumerate() {
        let on = i == ff.field;
        let arrows = if i != 4 {
            ("◀ ", " ▶")
        } else {
            ("", "▏")
        };
        lines.push(Line::from(vec![
            Span::styled(
                format!(" {:<12}", name),
                if on { t.accent } else { t.muted },
            ),
            Span::styled(
                if on {
                    format!("{}{}{}", arrows.0, val, arrows.1)
                } else {
                    val.clone()
                },
                if on { t.selection } else { t.text },
            ),
            Span::styled(extra.get(i).cloned().unwrap_or_default(), t.accent),
        ]));
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        " ↑/↓ field · ←/→ choose · space adds (any of) · digits",
        t.muted,
    ));
    lines.push(Line::styled(
        " x clears the field · Enter applies · Esc cancels",
        t.muted,
    ));
    f.render_widget(
        Paragraph::new(lines).block(block(app, " Filter the queue ")),
        r,
    );
}

fn decision_form(f: &mut Frame, app: &App, form: &crate::tui::app::DecisionForm, area: Rect) {
    let t = &app.theme;
    let r = centered(area, 70, 15);
    f.render_widget(Clear, r);
    let title = format!(
        " {} — {} ",
        form.kind.title(),
        if form.ids.len() == 1 {
            form.ids[0].clone()
        } else {
            format!("{} records", form.ids.len())
        }
    );
    let outer = block(app, title);
    let inner = outer.inner(r);
    f.render_widget(outer, r);
    let amount_h = u16::from(form.kind == FormKind::Override);
    let [amt, label, note, err, help] = Layout::vertical([
        Constraint::Length(amount_h),
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(inner);
    if form.kind == FormKind::Override {
        f.render_widget(
            Paragraph::new(Line::from(vec![
                Span::styled("amount ", if form.on_amount { t.accent } else { t.muted }),
                Span::styled(
                    format!(" {}{} ", form.amount, if form.on_amount { "▏" } else { "" }),
                    if form.on_amount { t.selection } else { t.text },
                ),
                Span::styled(
                    format!(
                        " {}  (the new commission amount; Ctrl-U clears)",
                        app.currency()
                    ),
                    t.muted,
                ),
            ])),
            amt,
        );
    }
    f.render_widget(
        Paragraph::new(Span::styled(
            "note",
            if form.on_amount { t.muted } else { t.accent },
        )),
        label,
    );
    let mut ta = form.note.clone();
    ta.set_style(t.text);
    ta.set_cursor_style(if form.on_amount { t.text } else { t.selection });
    ta.set_cursor_line_style(t.text);
    ta.set_block(
        ratatui::widgets::Block::bordered().border_style(if form.on_amount {
            t.border
        } else {
            t.accent
        }),
    );
    f.render_widget(&ta, note);
    if let Some(e) = &form.error {
        f.render_widget(
            Paragraph::new(Span::styled(format!("✗ {e}"), t.danger)),
            err,
        );
    }
    f.render_widget(
        Paragraph::new(Span::styled(
            "Ctrl-S submit · Tab switch field · Esc cancel",
            t.muted,
        )),
        help,
    );
}
