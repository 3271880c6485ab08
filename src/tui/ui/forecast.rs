//! Forecast: program accruals history and forecast with its 80% band (chart), bookings
//! (sparkline), per-tier forecast rows, partners at risk of missing quota or losing their
//! tier, and the backtest of closed quarters. Computed on the worker; shown from cache.

use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Chart, Dataset, GraphType, Paragraph, Sparkline};
use ratatui::Frame;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use unicode_width::UnicodeWidthStr;

use super::{block, fit};
use crate::money::format_money;
use crate::tui::app::{App, WIDE};
use crate::tui::effects::ForecastData;

pub fn draw(f: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let data = match &app.forecast.data {
        Some(Ok(d)) => d,
        other => {
            let (text, style) = match other {
                Some(Err(e)) => (format!("forecast failed: {e}"), t.danger),
                _ => ("computing forecast…".to_string(), t.muted),
            };
            f.render_widget(
                Paragraph::new(text)
                    .style(style)
                    .alignment(Alignment::Center)
                    .block(block(app, " Forecast ")),
                area,
            );
            return;
        }
    };
    let chart_h = (area.height * 45 / 100).clamp(8, 20);
    let [top, bottom] =
        Layout::vertical([Constraint::Length(chart_h), Constraint::Min(3)]).areas(area);
    let spark_w = (top.width / 3).clamp(16, 60);
    let [left, right] =
        Layout::horizontal([Constraint::Min(20), Constraint::Length(spark_w)]).areas(top);
    accrual_chart(f, app, data, left);
    bookings_spark(f, app, data, right);

    let recomputing = if app.forecast.loading {
        " · recomputing…"
    } else {
        ""
    };
    if area.width >= WIDE {
        let [l, r] = Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)])
            .areas(bottom);
        let mut a = rows_lines(app, data, l.width.saturating_sub(2) as usize);
        a.push(Line::default());
        a.extend(backtest_lines(
            app,
            data,
            l.width.saturating_sub(2) as usize,
        ));
        let b = risk_lines(app, data, r.width.saturating_sub(2) as usize);
        let inner = l.height.saturating_sub(2);
        let max = (a.len().max(b.len()) as u16).saturating_sub(inner);
        app.forecast.max_scroll.set(max);
        let s = app.forecast.scroll.min(max);
        let title = format!(" Forecast · as of {}{recomputing} ", data.as_of);
        f.render_widget(Paragraph::new(a).scroll((s, 0)).block(block(app, title)), l);
        f.render_widget(
            Paragraph::new(b)
                .scroll((s, 0))
                .block(block(app, " At risk: quarter in progress ")),
            r,
        );
    } else {
        let w = bottom.width.saturating_sub(2) as usize;
        let mut lines = rows_lines(app, data, w);
        lines.push(Line::default());
        lines.extend(risk_lines(app, data, w));
        lines.push(Line::default());
        lines.extend(backtest_lines(app, data, w));
        let inner = bottom.height.saturating_sub(2);
        let max = (lines.len() as u16).saturating_sub(inner);
        app.forecast.max_scroll.set(max);
        let s = app.forecast.scroll.min(max);
        let more = if s < max { " · ↓ more" } else { "" };
        let title = format!(" Forecast · as of {}{recomputing}{more} ", data.as_of);
        f.render_widget(
            Paragraph::new(lines)
                .scroll((s, 0))
                .block(block(app, title)),
            bottom,
        );
    }
}

fn f64_of(d: Decimal) -> f64 {
    d.to_f64().unwrap_or(0.0)
}

/// `1234567` -> `1.2M`: axis labels only.
fn compact(v: f64) -> String {
    let a = v.abs();
    if a >= 1e9 {
        format!("{:.1}G", v / 1e9)
    } else if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e3 {
        format!("{:.0}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

/// The quarters on the x axis: complete history, then the forecast quarters.
fn periods(d: &ForecastData) -> Vec<String> {
    let mut p: Vec<String> = d
        .history
        .iter()
        .filter(|h| h.complete)
        .map(|h| h.period.clone())
        .collect();
    for r in d.rows.iter().filter(|r| r.scope == "program") {
        if !p.contains(&r.period) {
            p.push(r.period.clone());
        }
    }
    p
}

fn accrual_chart(f: &mut Frame, app: &App, d: &ForecastData, area: Rect) {
    let t = &app.theme;
    let periods = periods(d);
    let x = |p: &str| periods.iter().position(|q| q == p).unwrap_or(0) as f64;
    let hist: Vec<(f64, f64)> = d
        .history
        .iter()
        .filter(|h| h.complete)
        .map(|h| (x(&h.period), f64_of(h.accrual)))
        .collect();
    let prog: Vec<_> = d.rows.iter().filter(|r| r.scope == "program").collect();
    let mut fc: Vec<(f64, f64)> = hist.last().copied().into_iter().collect();
    fc.extend(prog.iter().map(|r| (x(&r.period), f64_of(r.accrual))));
    let lo: Vec<(f64, f64)> = prog.iter().map(|r| (x(&r.period), f64_of(r.lo))).collect();
    let hi: Vec<(f64, f64)> = prog.iter().map(|r| (x(&r.period), f64_of(r.hi))).collect();
    let ymax = hist
        .iter()
        .chain(&hi)
        .chain(&fc)
        .map(|p| p.1)
        .fold(0.0f64, f64::max)
        .max(1.0)
        * 1.1;
    let xmax = (periods.len().saturating_sub(1) as f64).max(1.0);
    let sets = vec![
        Dataset::default()
            .name("accrual")
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(t.accent)
            .data(&hist),
        Dataset::default()
            .name("forecast")
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(t.warning)
            .data(&fc),
        Dataset::default()
            .name("80% band")
            .marker(Marker::Dot)
            .graph_type(GraphType::Line)
            .style(t.muted)
            .data(&hi),
        Dataset::default()
            .marker(Marker::Dot)
            .graph_type(GraphType::Line)
            .style(t.muted)
            .data(&lo),
    ];
    let xl: Vec<Span> = match (periods.first(), periods.last()) {
        (Some(a), Some(b)) if periods.len() > 2 => {
            let mid = &periods[periods.len() / 2];
            vec![a.clone().into(), mid.clone().into(), b.clone().into()]
        }
        (Some(a), Some(b)) => vec![a.clone().into(), b.clone().into()],
        _ => vec![],
    };
    let chart = Chart::new(sets)
        .block(block(
            app,
            format!(" Program accruals ({}) · forecast, 80% band ", d.currency),
        ))
        .x_axis(
            Axis::default()
                .style(t.muted)
                .bounds([0.0, xmax])
                .labels(xl),
        )
        .y_axis(
            Axis::default()
                .style(t.muted)
                .bounds([0.0, ymax])
                .labels(vec![
                    Span::raw("0"),
                    Span::raw(compact(ymax / 2.0)),
                    Span::raw(compact(ymax)),
                ]),
        )
        .legend_position(Some(ratatui::widgets::LegendPosition::TopLeft))
        .hidden_legend_constraints((Constraint::Percentage(60), Constraint::Percentage(60)));
    f.render_widget(chart, area);
}

fn bookings_spark(f: &mut Frame, app: &App, d: &ForecastData, area: Rect) {
    let t = &app.theme;
    let mut vals: Vec<u64> = d
        .history
        .iter()
        .filter(|h| h.complete)
        .map(|h| h.bookings.max(Decimal::ZERO).round().to_u64().unwrap_or(0))
        .collect();
    let fc: Vec<_> = d.rows.iter().filter(|r| r.scope == "program").collect();
    vals.extend(
        fc.iter()
            .map(|r| r.bookings.max(Decimal::ZERO).round().to_u64().unwrap_or(0)),
    );
    // The newest bars are the most useful: keep what fits.
    let inner = area.width.saturating_sub(2) as usize;
    let skip = vals.len().saturating_sub(inner);
    let next = fc
        .first()
        .map(|r| format!(" {} {}", r.period, compact(f64_of(r.bookings))))
        .unwrap_or_default();
    let title = fit(&format!(" Bookings{next} "), inner);
    f.render_widget(
        Sparkline::default()
            .data(&vals[skip..])
            .style(t.accent)
            .block(block(app, title)),
        area,
    );
}

fn pct(p: f64) -> String {
    format!("{:.0}%", (p * 100.0).clamp(0.0, 100.0))
}

/// Columns laid out left to right; the last one takes what is left, cut to fit.
fn cols(widths: &[usize], cells: &[String], w: usize) -> String {
    let mut out = String::new();
    for (i, c) in cells.iter().enumerate() {
        let used = out.width();
        let room = w.saturating_sub(used);
        if room == 0 {
            break;
        }
        let cw = widths.get(i).copied().unwrap_or(room).min(room);
        let c = fit(c, cw);
        if i == 0 || i + 1 == cells.len() && widths.len() < cells.len() {
            out.push_str(&format!("{c:<cw$}"));
        } else {
            out.push_str(&format!("{c:>cw$}"));
        }
        if i + 1 < cells.len() && out.width() < w {
            out.push(' ');
        }
    }
    out
}

fn section<'a>(app: &App, title: String) -> Line<'a> {
    Line::from(Span::styled(title, app.theme.header))
}

fn rows_lines<'a>(app: &App, d: &ForecastData, w: usize) -> Vec<Line<'a>> {
    let cur = &d.currency;
    let money_w = d
        .rows
        .iter()
        .flat_map(|r| [r.accrual, r.bookings, r.lo, r.hi])
        .map(|m| format_money(m, cur).width())
        .max()
        .unwrap_or(8);
    // Narrow: drop bookings, then shrink the scope column.
    let show_bookings = w >= 14 + 8 + 4 * (money_w + 1);
    let scope_w = w
        .saturating_sub(8 + (if show_bookings { 4 } else { 3 }) * (money_w + 1) + 1)
        .clamp(6, 24);
    let mut widths = vec![scope_w, 7, money_w];
    let mut head = vec!["scope", "period", "accrual"];
    if show_bookings {
        widths.push(money_w);
        head.push("bookings");
    }
    widths.extend([money_w, money_w]);
    head.extend(["lo (80%)", "hi (80%)"]);
    let head: Vec<String> = head.into_iter().map(String::from).collect();
    let mut out = vec![
        section(app, format!("Forecast by tier ({cur})")),
        Line::from(Span::styled(cols(&widths, &head, w), app.theme.muted)),
    ];
    for r in &d.rows {
        let scope = match r.scope.strip_prefix("tier:") {
            Some(id) => app
                .tiers
                .iter()
                .find(|t| t.0 == id)
                .map(|t| format!("tier {}", t.1))
                .unwrap_or_else(|| format!("tier {id}")),
            None => r.scope.clone(),
        };
        let mut cells = vec![scope, r.period.clone(), format_money(r.accrual, cur)];
        if show_bookings {
            cells.push(format_money(r.bookings, cur));
        }
        cells.push(format_money(r.lo, cur));
        cells.push(format_money(r.hi, cur));
        let style = if r.scope == "program" {
            app.theme.title
        } else {
            app.theme.text
        };
        out.push(Line::from(Span::styled(cols(&widths, &cells, w), style)));
    }
    out
}

fn risk_lines<'a>(app: &App, d: &ForecastData, w: usize) -> Vec<Line<'a>> {
    let cur = &d.currency;
    let period = d
        .risk
        .first()
        .map(|r| format!(" in {}", r.period))
        .unwrap_or_default();
    let mut out = vec![section(
        app,
        format!("Partners at risk{period}: {}", d.risk.len()),
    )];
    if let Some(note) = &d.risk_note {
        out.push(Line::from(Span::styled(note.clone(), app.theme.muted)));
        return out;
    }
    if d.risk.is_empty() {
        out.push(Line::from(Span::styled(
            "no partner is at risk of missing quota or losing its tier",
            app.theme.muted,
        )));
        return out;
    }
    let money_w = d
        .risk
        .iter()
        .flat_map(|r| [r.quota, r.booked])
        .map(|m| format_money(m, cur).width())
        .max()
        .unwrap_or(8)
        .min(16);
    let name_w = (w / 5).clamp(8, 28);
    let widths = [name_w, money_w, money_w, 8, 7];
    let head: Vec<String> = [
        "partner", "quota", "booked", "P(quota)", "P(lose)", "reason",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    out.push(Line::from(Span::styled(
        cols(&widths, &head, w),
        app.theme.muted,
    )));
    for r in &d.risk {
        let cells = vec![
            r.name.clone(),
            format_money(r.quota, cur),
            format_money(r.booked, cur),
            pct(r.p_reach_quota),
            pct(r.p_lose_tier),
            r.reason.clone(),
        ];
        let style = if r.p_lose_tier >= 0.5 {
            app.theme.danger
        } else {
            app.theme.warning
        };
        out.push(Line::from(Span::styled(cols(&widths, &cells, w), style)));
    }
    out
}

fn backtest_lines<'a>(app: &App, d: &ForecastData, w: usize) -> Vec<Line<'a>> {
    let b = &d.backtest;
    let cur = &d.currency;
    let mut out = vec![
        section(app, "Forecast vs actual (closed quarters, 1 ahead)".into()),
        Line::from(Span::styled(
            fit(
                &format!(
                    "MAPE {:.1}% (naive {:.1}%) · partner MASE {:.2} vs {:.2} · 80% coverage {:.0}%",
                    b.program_mape * 100.0,
                    b.program_mape_naive * 100.0,
                    b.partner_mase,
                    b.partner_mase_naive,
                    b.coverage * 100.0
                ),
                w,
            ),
            app.theme.text,
        )),
    ];
    if b.origins.is_empty() {
        out.push(Line::from(Span::styled(
            "not enough closed quarters to backtest",
            app.theme.muted,
        )));
        return out;
    }
    let money_w = b
        .origins
        .iter()
        .flat_map(|o| [o.program_actual, o.program_forecast])
        .map(|m| format_money(m, cur).width())
        .max()
        .unwrap_or(8);
    let widths = [7, money_w, money_w, 6, 8];
    let head: Vec<String> = ["quarter", "actual", "forecast", "APE", "in band"]
        .into_iter()
        .map(String::from)
        .collect();
    out.push(Line::from(Span::styled(
        cols(&widths, &head, w),
        app.theme.muted,
    )));
    for o in &b.origins {
        let inside = o.program_actual >= o.program_lo && o.program_actual <= o.program_hi;
        let cells = vec![
            o.target.clone(),
            format_money(o.program_actual, cur),
            format_money(o.program_forecast, cur),
            format!("{:.1}%", o.program_ape * 100.0),
            if inside { "yes" } else { "no" }.to_string(),
        ];
        let style: Style = if inside {
            app.theme.text
        } else {
            app.theme.warning
        };
        out.push(Line::from(Span::styled(cols(&widths, &cells, w), style)));
    }
    out
}
