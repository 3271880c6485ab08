//! The queue's column chooser (`C`) and saved views (`v`, `:view save NAME`,
//! `:view NAME`, `:view delete NAME`). Both are kept in the cache per person
//! (`store::views`): the columns chosen last come back in the next session, and
//! `tierdesk queue --view NAME` lists a view's rows.

use crossterm::event::{KeyCode, KeyEvent};

use super::app::{App, Level, Modal, View};
use super::effects::{Effect, Select};
use crate::store::views::{check_view_name, SavedView, ViewFilter};

/// The queue's columns: name (as kept and as `config.toml` would spell it) and label.
/// The id is always shown (every list names its record).
pub const COLUMNS: [(&str, &str); 11] = [
    ("score", "score (bar and points)"),
    ("id", "transaction id (always shown)"),
    ("kinds", "kinds"),
    ("partner", "partner · tier"),
    ("customer", "customer (when there is room)"),
    ("amount", "amount"),
    ("stake", "at stake"),
    ("age", "age"),
    ("status", "status"),
    (
        "action",
        "proposed action (hold, reverse, recompute, adjust)",
    ),
    ("delta", "proposed change Δ"),
];

/// Hidden until someone shows them.
pub const DEFAULT_HIDDEN: [&str; 2] = ["action", "delta"];

/// The column chooser's cursor.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ColumnsPicker {
    pub sel: usize,
}

/// The saved-views list's cursor.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ViewsPicker {
    pub sel: usize,
}

/// The default hidden columns, as kept.
pub fn default_hidden() -> Vec<String> {
    DEFAULT_HIDDEN.iter().map(|s| s.to_string()).collect()
}

/// A view in a few words: its filter (as the filter line says it) and sort.
pub fn describe(app: &App, v: &SavedView) -> String {
    let f = v.filter.to_filter(&app.user, app.role);
    let mut parts = Vec::new();
    if !f.kind.is_empty() {
        let k: Vec<&str> = f.kind.iter().map(|k| super::ui::kind_abbrev(k)).collect();
        parts.push(format!("kind {}", k.join(",")));
    }
    if !f.status.is_empty() {
        parts.push(format!("status {}", f.status.join(",")));
    }
    if let Some(x) = &f.tier {
        let name = app
            .tiers
            .iter()
            .find(|(id, _)| id == x)
            .map(|(_, n)| n.as_str())
            .unwrap_or(x);
        parts.push(format!("tier {}", crate::text::sanitize(name)));
    }
    if let Some(x) = &f.region {
        parts.push(format!("region {}", crate::text::sanitize(x)));
    }
    if let Some(m) = f.min_amount_minor {
        parts.push(format!("amount ≥ {}", super::ui::money_minor(app, m)));
    }
    if f.needs_me.is_some() {
        parts.push("needs me".into());
    }
    if parts.is_empty() {
        parts.push("everything".into());
    }
    format!("{} · {}", parts.join(" · "), v.order.label())
}

impl App {
    /// Whether the queue shows column `name`.
    pub fn shows_column(&self, name: &str) -> bool {
        name == "id" || !self.hidden_columns.iter().any(|h| h == name)
    }

    pub(crate) fn open_columns(&mut self) -> Vec<Effect> {
        self.view = View::Queue;
        self.modal = Some(Modal::Columns(ColumnsPicker::default()));
        vec![]
    }

    pub(crate) fn open_views(&mut self) -> Vec<Effect> {
        self.modal = Some(Modal::Views(ViewsPicker::default()));
        vec![Effect::LoadViews]
    }

    pub(crate) fn columns_key(&mut self, mut p: ColumnsPicker, key: KeyEvent) -> Vec<Effect> {
        match key.code {
            KeyCode::Down | KeyCode::Char('j') => p.sel = (p.sel + 1).min(COLUMNS.len() - 1),
            KeyCode::Up | KeyCode::Char('k') => p.sel = p.sel.saturating_sub(1),
            KeyCode::Char(' ') => {
                let name = COLUMNS[p.sel].0;
                if name == "id" {
                    self.message = Some((Level::Info, "the id is always shown".into()));
                } else if let Some(i) = self.hidden_columns.iter().position(|h| h == name) {
                    self.hidden_columns.remove(i);
                } else {
                    self.hidden_columns.push(name.to_string());
                }
            }
            KeyCode::Esc | KeyCode::Enter | KeyCode::Char('q') => {
                let shown = COLUMNS.iter().filter(|(n, _)| self.shows_column(n)).count();
                self.message = Some((
                    Level::Ok,
                    format!("{shown} columns shown, kept for next time"),
                ));
                return vec![Effect::SaveColumns(self.hidden_columns.clone())];
            }
            _ => {}
        }
        self.modal = Some(Modal::Columns(p));
        vec![]
    }

    pub(crate) fn views_key(&mut self, mut p: ViewsPicker, key: KeyEvent) -> Vec<Effect> {
        let n = self.views.len();
        match key.code {
            KeyCode::Down | KeyCode::Char('j') => p.sel = (p.sel + 1).min(n.saturating_sub(1)),
            KeyCode::Up | KeyCode::Char('k') => p.sel = p.sel.saturating_sub(1),
            KeyCode::Enter => {
                if let Some(v) = self.views.get(p.sel).cloned() {
                    return self.apply_view(v);
                }
                return vec![];
            }
            KeyCode::Char('d') | KeyCode::Delete => {
                if let Some(v) = self.views.get(p.sel) {
                    let name = v.name.clone();
                    self.modal = Some(Modal::Views(ViewsPicker {
                        sel: p.sel.min(n.saturating_sub(2)),
                    }));
                    return vec![Effect::DeleteView(name)];
                }
            }
            KeyCode::Esc | KeyCode::Char('q') => return vec![],
            _ => {}
        }
        self.modal = Some(Modal::Views(p));
        vec![]
    }

    /// Applies a saved view: its filter (the search text stays), sort and columns.
    pub(crate) fn apply_view(&mut self, v: SavedView) -> Vec<Effect> {
        let mut f = v.filter.to_filter(&self.user, self.role);
        f.search = self.queue.filter.search.clone();
        self.queue.filter = f;
        self.queue.sort = v.order;
        self.queue.marked.clear();
        self.hidden_columns = v.hidden.clone();
        self.view = View::Queue;
        self.message = Some((
            Level::Ok,
            format!(
                "view {} · {}",
                crate::text::sanitize(&v.name),
                v.order.label()
            ),
        ));
        vec![
            self.reload_queue(Select::First),
            Effect::SaveColumns(self.hidden_columns.clone()),
        ]
    }

    /// The view the queue shows now, under `name`.
    fn current_view(&self, name: String) -> SavedView {
        SavedView {
            name,
            filter: ViewFilter::of(&self.queue.filter),
            order: self.queue.sort,
            hidden: self.hidden_columns.clone(),
        }
    }

    /// `view save NAME`, `view NAME`, `view delete NAME`, `views`.
    pub(crate) fn view_command(&mut self, args: &[&str]) -> Vec<Effect> {
        let (verb, rest) = match args.first() {
            Some(v) if v.eq_ignore_ascii_case("save") => ("save", &args[1..]),
            Some(v) if v.eq_ignore_ascii_case("delete") || v.eq_ignore_ascii_case("rm") => {
                ("delete", &args[1..])
            }
            Some(_) => ("apply", args),
            None => return self.open_views(),
        };
        let name = match check_view_name(&rest.join(" ")) {
            Ok(n) => n,
            Err(e) => {
                self.message = Some((
                    Level::Error,
                    format!("view {verb}: {e} (:view save NAME, :view NAME, :view delete NAME)"),
                ));
                return vec![];
            }
        };
        match verb {
            "save" => {
                if self
                    .queue
                    .filter
                    .search
                    .as_deref()
                    .is_some_and(|s| !s.is_empty())
                {
                    self.message = Some((
                        Level::Info,
                        format!(
                            "view {}: saved without the search text (a view keeps filter, sort and columns)",
                            crate::text::sanitize(&name)
                        ),
                    ));
                }
                vec![Effect::SaveView(self.current_view(name))]
            }
            "delete" => vec![Effect::DeleteView(name)],
            _ => vec![Effect::ApplyView(name)],
        }
    }

    /// The worker's answer to a view effect: the person's layout and views.
    pub(crate) fn on_views(
        &mut self,
        hidden: Option<Vec<String>>,
        views: Vec<SavedView>,
        note: Option<(bool, String)>,
        apply: Option<Box<SavedView>>,
    ) -> Vec<Effect> {
        if let Some(h) = hidden {
            self.hidden_columns = h;
        }
        self.views = views;
        if let Some((ok, text)) = note {
            let keep_info = !ok || !matches!(&self.message, Some((Level::Info, _)));
            if keep_info {
                self.message = Some((if ok { Level::Ok } else { Level::Error }, text));
            }
        }
        if let Some(Modal::Views(p)) = &mut self.modal {
            p.sel = p.sel.min(self.views.len().saturating_sub(1));
        }
        match apply {
            Some(v) => self.apply_view(*v),
            None => vec![],
        }
    }
}
