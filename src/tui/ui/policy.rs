//! Policy: the rollout phases, each rule with what it would do on the current window
//! (as `tierdesk policy simulate`), precision per kind against the `assist` gate, and
//! the policy actor's automated decisions (selectable; `u` rolls one back).

use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

use super::{block, fit, money_text};
use crate::tui::app::App;
use crate::tui::policy::PolicyData;

pub fn draw(f: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let data = match &app.policy.data {
        Some(Ok(d)) => d,
        other => {
            let (text, style) = match other {
                Some(Err(e)) => (format!("policy: {e}"), t.danger),
                _ => ("loading the policy…".to_string(), t.muted),
            };
            f.render_widget(
                Paragraph::new(text)
                    .style(style)
                    .alignment(Alignment::Center)
                    .block(block(app, " Policy ")),
                area,
            );
            return;
        }
    };
    // The automated decisions get what the rules leave, at least a few rows.
    let auto_h = (data.automated.len() as u16 + 3).clamp(5, area.height / 2);
    let [top, bottom] =
        Layout::vertical([Constraint::Min(6), Constraint::Length(auto_h)]).areas(area);
    let lines = rule_lines(app, data, top.width.saturating_sub(2) as usize);
    let max = (lines.len() as u16).saturating_sub(top.height.saturating_sub(2));
    let scroll = app.policy.scroll.min(max);
    f.render_widget(
        Paragraph::new(lines)
            .scroll((scroll, 0))
            .wrap(Wrap { trim: false })
            .block(block(app, " Policy · rules on the current window ")),
        top,
    );
    automated(f, app, data, bottom);
}

fn rule_lines<'a>(app: &App, d: &'a PolicyData, w: usize) -> Vec<Line<'a>> {
    let t = &app.theme;
    let cur = app.currency().to_string();
    let program =
        d.phases
            .iter()
            .find(|p| p.scope == "*")
            .map_or("observe (the default)".to_string(), |p| {
                format!(
                    "{} (set by {} {})",
                    p.phase,
                    p.changed_by,
                    short(&p.changed_at)
                )
            });
    let mut out = vec![Line::from(vec![
        Span::styled("phase ", t.muted),
        Span::styled(program, t.accent),
    ])];
    for p in d.phases.iter().filter(|p| p.scope != "*") {
        out.push(Line::from(vec![
            Span::styled(format!("  tier {} ", p.scope), t.muted),
            Span::styled(p.phase.clone(), t.accent),
        ]));
    }
    out.push(Line::from(Span::styled(
        format!(
            "{} flag{} in the review window routed by the rules",
            d.flags,
            if d.flags == 1 { "" } else { "s" }
        ),
        t.muted,
    )));
    out.push(Line::default());
    // rule · kind · action · count · held · adjusted · at stake
    let money_w = 14usize;
    let fixed = 11 + 6 * 3 + money_w + 5;
    let name_w = w.saturating_sub(fixed).max(12);
    let rule_w = name_w / 2;
    let kind_w = name_w - rule_w;
    out.push(Line::from(Span::styled(
        format!(
            "{:<rule_w$} {:<kind_w$} {:<11}{:>6}{:>6}{:>6} {:>money_w$}",
            "rule", "kind", "action", "count", "held", "adj", "at stake"
        ),
        t.header,
    )));
    if d.rules.is_empty() {
        out.push(Line::from(Span::styled(
            "no flag in the review window: nothing to route",
            t.muted,
        )));
    }
    for r in &d.rules {
        out.push(Line::from(Span::styled(
            format!(
                "{:<rule_w$} {:<kind_w$} {:<11}{:>6}{:>6}{:>6} {:>money_w$}",
                fit(&r.rule, rule_w),
                fit(&r.kind, kind_w),
                fit(&r.action, 11),
                r.count,
                r.held,
                r.adjusted,
                fit(&money_text(&r.at_stake, &cur), money_w)
            ),
            t.text,
        )));
    }
    out.push(Line::default());
    let (min_p, min_n) = d.gate;
    out.push(Line::from(Span::styled(
        format!("precision per kind (assist needs ≥ {min_p:.2} over ≥ {min_n} decisions)"),
        t.header,
    )));
    if d.precision.is_empty() {
        out.push(Line::from(Span::styled(
            "no decisions by people yet",
            t.muted,
        )));
    }
    for k in &d.precision {
        let p = k.precision.map_or("—".to_string(), |p| format!("{p:.3}"));
        out.push(Line::from(vec![
            Span::styled(
                format!(
                    "{:<24} {:>4} confirmed {:>4} dismissed {:>6} ",
                    fit(&k.kind, 24),
                    k.confirmed,
                    k.dismissed,
                    p
                ),
                t.text,
            ),
            if k.passes {
                Span::styled("passes", t.ok)
            } else {
                Span::styled("below", t.warning)
            },
        ]));
    }
    out
}

fn automated(f: &mut Frame, app: &App, d: &PolicyData, area: Rect) {
    let t = &app.theme;
    let cur = app.currency().to_string();
    let title = format!(" Automated decisions ({}) ", d.automated.len());
    let inner_h = area.height.saturating_sub(2) as usize;
    let w = area.width.saturating_sub(2) as usize;
    let mut lines = Vec::new();
    if d.automated.is_empty() {
        lines.push(Line::from(Span::styled(
            "none: the policy adjusts only in the assist phase, for pre-approved kinds",
            t.muted,
        )));
    }
    // Keep the selection in view.
    let sel = app.policy.sel;
    let first = sel.saturating_sub(inner_h.saturating_sub(1));
    for (i, r) in d.automated.iter().enumerate().skip(first).take(inner_h) {
        let stake = crate::policy::minor_to_decimal(r.at_stake_minor, &cur).to_string();
        let state = if r.effect == "rolled_back" {
            "rolled back"
        } else {
            "adjusted"
        };
        let text = fit(
            &format!(
                "{} {:<11} {:<11} {:>12}  {} · {}",
                short(&r.routed_at),
                fit(&r.transaction_id, 11),
                state,
                money_text(&stake, &cur),
                r.kinds.join(","),
                r.rule
            ),
            w,
        );
        let style = if i == sel {
            t.selection
        } else if r.effect == "rolled_back" {
            t.muted
        } else {
            t.text
        };
        lines.push(Line::from(Span::styled(format!("{text:<w$}"), style)));
    }
    f.render_widget(Paragraph::new(lines).block(block(app, title)), area);
}

/// `2026-10-01T10:00:00Z` as `2026-10-01 10:00`.
fn short(ts: &str) -> String {
    let s = ts.replace('T', " ");
    s.get(..16).unwrap_or(&s).to_string()
}
