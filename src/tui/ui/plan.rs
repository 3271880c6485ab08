//! Plan: the rules over the last periods (rule, kind, triggered, partners, paid, share,
//! flags, disputes), then either the last what-if (total before → after, the partners
//! whose payout moves most) or the report's findings.

use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

use super::{block, fit};
use crate::money::format_money;
use crate::tui::app::App;

/// (width, right-aligned) of the rule columns; narrow terminals drop them from the right.
const COLS: [(usize, bool); 8] = [
    (20, false),
    (13, false),
    (9, true),
    (8, true),
    (14, true),
    (6, true),
    (5, true),
    (8, true),
];

fn rule_row(cells: [String; 8], w: usize) -> String {
    let mut s = String::new();
    let mut used = 0;
    // The rule's name takes what a wide terminal has left (up to 20 more columns).
    let all: usize = COLS.iter().map(|c| c.0 + 1).sum();
    let extra = w.saturating_sub(all).min(20);
    for (i, (c, (cw, right))) in cells.iter().zip(COLS).enumerate() {
        let cw = if i == 0 { cw + extra } else { cw };
        if i >= 5 && used + cw + 1 > w {
            break;
        }
        used += cw + 1;
        if right {
            s.push_str(&format!("{:>cw$} ", fit(c, cw)));
        } else {
            s.push_str(&format!("{:<cw$} ", fit(c, cw)));
        }
    }
    format!("{:<w$}", fit(s.trim_end(), w))
}

pub fn draw(f: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let d = match &app.plan.data {
        Some(Ok(d)) => d,
        other => {
            let (text, style) = match other {
                Some(Err(e)) => (format!("plan: {e}"), t.danger),
                _ => ("loading the plan's rules…".to_string(), t.muted),
            };
            f.render_widget(
                Paragraph::new(fit(&text, area.width.saturating_sub(2) as usize))
                    .style(style)
                    .alignment(Alignment::Center)
                    .block(block(app, " Plan ")),
                area,
            );
            return;
        }
    };
    let r = &d.report;
    let cur = d.currency.as_str();
    let money = |x| format_money(x, cur);
    let lower = (area.height / 2).clamp(6, 14);
    let [top, bottom] =
        Layout::vertical([Constraint::Min(4), Constraint::Length(lower)]).areas(area);
    let w = top.width.saturating_sub(2) as usize;
    let h = top.height.saturating_sub(3) as usize;
    let mut lines = vec![Line::styled(
        rule_row(
            [
                "rule",
                "kind",
                "triggered",
                "partners",
                "paid",
                "share",
                "flags",
                "disputes",
            ]
            .map(String::from),
            w,
        ),
        t.header,
    )];
    if r.rules.is_empty() {
        lines.push(Line::styled(
            "no rule paid anything in these periods",
            t.muted,
        ));
    }
    let sel = app.plan.sel;
    let first = sel.saturating_sub(h.saturating_sub(1));
    for (i, s) in r.rules.iter().enumerate().skip(first).take(h) {
        let style = if i == sel {
            t.selection
        } else if s.triggered == 0 {
            t.warning
        } else {
            t.text
        };
        lines.push(Line::styled(
            rule_row(
                [
                    crate::text::sanitize(&s.rule).into_owned(),
                    s.kind.clone(),
                    s.triggered.to_string(),
                    s.partners.to_string(),
                    money(s.paid),
                    format!("{:.1}%", s.share * rust_decimal::Decimal::ONE_HUNDRED),
                    s.flags.to_string(),
                    s.disputes.to_string(),
                ],
                w,
            ),
            style,
        ));
    }
    let title = format!(
        " Plan · {} rules over {} · {} sales · payout {} ",
        r.rules.len(),
        r.periods.join(", "),
        r.sales,
        money(r.total)
    );
    f.render_widget(Paragraph::new(lines).block(block(app, fit(&title, w))), top);
    let bw = bottom.width.saturating_sub(2) as usize;
    match &app.plan.whatif {
        Some((changes, Ok(wi))) => {
            let mut l = vec![Line::styled(
                fit(
                    &format!(
                        "total {} → {} (Δ {}) · accelerated partners {} → {}",
                        money(wi.total.before),
                        money(wi.total.after),
                        money(wi.total.difference),
                        wi.accelerator_reach.0,
                        wi.accelerator_reach.1
                    ),
                    bw,
                ),
                t.accent,
            )];
            let movers = wi.top_movers(bottom.height.saturating_sub(3) as usize);
            if movers.is_empty() {
                l.push(Line::styled("no partner's payout moves", t.muted));
            }
            for p in movers {
                l.push(Line::styled(
                    fit(
                        &format!(
                            "{:<12} {:>14} → {:>14}  Δ {:>14}",
                            crate::text::sanitize(&p.partner_id),
                            money(p.before),
                            money(p.after),
                            money(p.difference)
                        ),
                        bw,
                    ),
                    if p.difference.is_sign_negative() {
                        t.money_negative
                    } else {
                        t.text
                    },
                ));
            }
            f.render_widget(
                Paragraph::new(l).block(block(app, fit(&format!(" What if {changes} "), bw))),
                bottom,
            );
        }
        Some((changes, Err(e))) => f.render_widget(
            Paragraph::new(fit(&format!("whatif {changes}: {e}"), bw))
                .style(t.danger)
                .block(block(app, " What if ")),
            bottom,
        ),
        None => {
            let mut text: Vec<String> = r
                .findings
                .iter()
                .map(|x| crate::text::sanitize(x).into_owned())
                .collect();
            if text.is_empty() {
                text.push("no findings: every rule triggered and paid its way".into());
            }
            text.push(
                "What-if: :whatif override_rate=0.015 (any `plan whatif --set` change)".into(),
            );
            f.render_widget(
                Paragraph::new(text.join("\n"))
                    .style(t.muted)
                    .wrap(Wrap { trim: true })
                    .block(block(app, " Findings ")),
                bottom,
            );
        }
    }
}
