//! Workbench state and the pure `update`: actions and worker messages change the state
//! and return the effects to run. Nothing here does IO.

use std::cell::Cell;
use std::collections::BTreeSet;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseEvent, MouseEventKind};
use ratatui::layout::Rect;
use rust_decimal::Decimal;
use tui_textarea::TextArea;

use super::action::Action;
use super::effects::{Decision, Effect, Msg, PageMode, Select};
use super::keymap::Keymap;
use super::theme::Theme;
use crate::config::{Config, Role};
use crate::store::queue::{
    PageDir, ProgramInfo, QueueFilter, QueueOrder, QueueRow, RecordDetail, SignoffRow, SyncStatus,
};

/// Rows fetched per queue page.
pub const CHUNK: usize = 200;
/// Most rows kept in the loaded window.
pub const WINDOW_MAX: usize = 3 * CHUNK;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Queue,
    Record,
    Signoff,
    Forecast,
    Policy,
    Outbox,
    Payouts,
    Disputes,
    Plan,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    Detail,
    Reasoning,
    Commission,
    Decision,
    Audit,
}

impl Pane {
    pub const ALL: [Pane; 5] = [
        Pane::Detail,
        Pane::Reasoning,
        Pane::Commission,
        Pane::Decision,
        Pane::Audit,
    ];
    pub fn title(self) -> &'static str {
        match self {
            Pane::Detail => "Detail",
            Pane::Reasoning => "Reasoning",
            Pane::Commission => "Commission",
            Pane::Decision => "Decision",
            Pane::Audit => "Audit",
        }
    }
    fn index(self) -> usize {
        Pane::ALL.iter().position(|p| *p == self).unwrap_or(0)
    }
    fn shift(self, by: isize) -> Pane {
        let n = Pane::ALL.len() as isize;
        Pane::ALL[((self.index() as isize + by).rem_euclid(n)) as usize]
    }
}

/// The exception queue's loaded window (a few pages around the selection).
#[derive(Debug, Default)]
pub struct QueueState {
    pub rows: Vec<QueueRow>,
    pub sel: usize,
    /// First row drawn (kept by the drawing code so the selection stays visible).
    pub scroll: Cell<usize>,
    /// Absolute index of `rows[0]` in the queue, when known.
    pub base: Option<usize>,
    pub at_top: bool,
    pub at_bottom: bool,
    pub loading: bool,
    pub loaded_once: bool,
    pub req: u64,
    pub filter: QueueFilter,
    pub sort: QueueOrder,
    pub marked: BTreeSet<String>,
}

impl QueueState {
    pub fn current(&self) -> Option<&QueueRow> {
        self.rows.get(self.sel)
    }
}

#[derive(Debug, Default)]
pub struct SignoffState {
    pub rows: Vec<SignoffRow>,
    pub sel: usize,
    pub scroll: Cell<usize>,
    pub marked: BTreeSet<String>,
    pub loaded: bool,
}

/// The Forecast view: the result computed on the worker (cached until refreshed).
#[derive(Debug, Default)]
pub struct ForecastState {
    pub data: Option<Result<Box<super::effects::ForecastData>, String>>,
    pub loading: bool,
    /// First line of the scrollable sections.
    pub scroll: u16,
    /// The most it can scroll (set when drawn).
    pub max_scroll: Cell<u16>,
}

/// The filter dialog: one line per field; left/right cycle choices, digits type the amount.
#[derive(Debug, Clone)]
pub struct FilterForm {
    pub field: usize,
    /// The choice shown on the kind line (0: any).
    pub kind: usize,
    /// Kinds added with space (any of them passes); empty: the shown choice.
    pub kinds: Vec<String>,
    pub status: usize,
    pub statuses: Vec<String>,
    pub tier: usize,
    pub region: usize,
    pub min_amount: String,
    /// Only what waits for the workbench's user ("needs me").
    pub mine: bool,
}

/// Lines of the filter dialog.
pub const FILTER_FIELDS: usize = 6;

impl FilterForm {
    /// The kinds (or states) a dialog line stands for: the added ones, else the shown one.
    pub fn values(set: &[String], shown: usize, choices: &[&str]) -> Vec<String> {
        if !set.is_empty() {
            return set.to_vec();
        }
        match shown.checked_sub(1).and_then(|i| choices.get(i)) {
            Some(c) => vec![c.to_string()],
            None => Vec::new(),
        }
    }
}

/// Adds `shown`'s choice to `set`, or takes it out when there.
fn toggle_choice(set: &mut Vec<String>, shown: usize, choices: &[&str]) {
    let Some(c) = shown.checked_sub(1).and_then(|i| choices.get(i)) else {
        return;
    };
    match set.iter().position(|x| x == c) {
        Some(i) => {
            set.remove(i);
        }
        None => set.push(c.to_string()),
    }
}

pub const KIND_CHOICES: [&str; 13] = [
    "deal_size_tier",
    "discount_policy",
    "uncertified_product",
    "duplicate",
    "backdated",
    "split_deals",
    "registration_mismatch",
    "commission_variance",
    "erp_mismatch",
    "period_end_cluster",
    "volume_spike",
    "product_mix",
    "data_integrity",
];
pub const STATUS_CHOICES: [&str; 13] = [
    "flagged",
    "in_review",
    "approved",
    "overridden",
    "dismissed",
    "escalated",
    "documents_requested",
    "awaiting_signoff",
    "signed_off",
    "rejected",
    "queued_for_push",
    "pushed",
    "conflict",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormKind {
    Override,
    Dismiss,
    Escalate,
    RequestDocuments,
    Reject,
}

impl FormKind {
    pub fn title(self) -> &'static str {
        match self {
            FormKind::Override => "Override",
            FormKind::Dismiss => "Dismiss",
            FormKind::Escalate => "Escalate",
            FormKind::RequestDocuments => "Request documents",
            FormKind::Reject => "Reject sign-off",
        }
    }
}

/// The decision editor: an amount (override only) and a note (tui-textarea).
pub struct DecisionForm {
    pub kind: FormKind,
    pub ids: Vec<String>,
    pub amount: String,
    pub note: TextArea<'static>,
    pub on_amount: bool,
    pub error: Option<String>,
}

pub enum Modal {
    Help {
        scroll: u16,
    },
    Palette {
        input: String,
        sel: usize,
    },
    Search {
        input: String,
        before: Option<String>,
    },
    Filter(FilterForm),
    Form(Box<DecisionForm>),
    /// A question before a bulk action, a sign-off, a bulk undo or a far-off override.
    Confirm(Box<super::flow::Confirm>),
    /// The one-line question of `ask`.
    Ask(Box<super::ask::AskPrompt>),
    /// An answer with its citations (scrolls; Esc closes).
    Answer(Box<super::ask::AnswerView>),
    /// The column chooser.
    Columns(super::views::ColumnsPicker),
    /// The saved views.
    Views(super::views::ViewsPicker),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Level {
    Info,
    Ok,
    Error,
}

/// The background sync as the workbench last heard of it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BgSync {
    pub running: bool,
    /// (phase, resource, items done) of the running sync.
    pub progress: Option<(String, String, u64)>,
    /// Why no sync can run (no PRM configured, no credential, ...).
    pub unavailable: Option<String>,
    pub last: Option<crate::tui::sync::SyncSummary>,
    /// The user pressed sync and waits for an answer (show it in the message line).
    pub asked: bool,
}

impl BgSync {
    /// A short reason the workbench is offline, if it is known to be.
    pub fn offline_reason(&self, online: Option<bool>) -> Option<&'static str> {
        match &self.unavailable {
            Some(w) if w.starts_with("no PRM") => Some("no PRM"),
            Some(w) if w.contains("credential") || w.contains("keyring") => Some("no login"),
            Some(_) => Some("sync off"),
            // Offline in the cache's status may be a choice (`sync --offline`); only a
            // run of this workbench that could not reach the PRM says unreachable.
            None if self.last.as_ref().is_some_and(|l| l.crashed.is_some()) => Some("sync error"),
            None if online != Some(true) && self.last.as_ref().is_some_and(|l| !l.online) => {
                Some("unreachable")
            }
            None => None,
        }
    }
}

/// The whole workbench state.
pub struct App {
    pub user: String,
    pub role: Role,
    pub config: Config,
    pub theme: Theme,
    pub keymap: Keymap,
    pub program: Option<ProgramInfo>,
    pub tiers: Vec<(String, String)>,
    pub regions: Vec<String>,
    pub counters: Vec<(String, i64)>,
    pub sync: SyncStatus,
    pub view: View,
    pub pane: Pane,
    pub pane_scroll: u16,
    /// The most the current pane can scroll (set when drawn).
    pub pane_max: Cell<u16>,
    pub queue: QueueState,
    pub signoff: SignoffState,
    pub forecast: ForecastState,
    pub policy: super::policy::PolicyState,
    pub outbox: super::outbox::OutboxState,
    pub disputes: super::disputes::DisputesState,
    pub payouts: super::payouts::PayoutsState,
    pub plan: super::plan::PlanState,
    pub detail: Option<Box<RecordDetail>>,
    /// The plan's recalculation for `detail_id` (Commission pane), when loaded.
    pub explain: Option<(String, Result<super::effects::ExplainView, String>)>,
    /// The record the panes are about (set when drilling in / selection changes).
    pub detail_id: Option<String>,
    pub modal: Option<Modal>,
    pub message: Option<(Level, String)>,
    /// Records in the search index, once built (None: still building).
    pub search_entries: Option<usize>,
    /// The background sync, as the status bar shows it.
    pub bg: BgSync,
    pub quit: bool,
    pub dirty: bool,
    /// Last drawn size and the queue table's area (for paging and mouse clicks).
    pub size: Cell<(u16, u16)>,
    pub table_area: Cell<Rect>,
    /// Record navigation, auto-advance and where Esc returns (see `flow`).
    pub nav: super::flow::NavState,
    /// The queue's hidden columns (see `views`; kept in the cache per person).
    pub hidden_columns: Vec<String>,
    /// The person's saved views, by name (loaded with `v`).
    pub views: Vec<crate::store::views::SavedView>,
}

/// A list selection moved by `by` rows, kept within `n` rows (0 when the list is empty).
pub(crate) fn stepped(sel: usize, by: isize, n: usize) -> usize {
    (sel as isize + by).clamp(0, (n as isize - 1).max(0)) as usize
}

/// Width from which the queue and the record panes are shown side by side.
pub const WIDE: u16 = 150;
/// Below this size the workbench shows a "terminal too small" screen.
pub const MIN_W: u16 = 60;
pub const MIN_H: u16 = 16;

impl App {
    pub fn new(user: String, role: Role, config: Config, theme: Theme, keymap: Keymap) -> App {
        App {
            user,
            role,
            config: config.clone(),
            theme,
            keymap,
            program: None,
            tiers: Vec::new(),
            regions: Vec::new(),
            counters: Vec::new(),
            sync: SyncStatus::default(),
            view: View::Queue,
            pane: Pane::Detail,
            pane_scroll: 0,
            pane_max: Cell::new(u16::MAX),
            queue: QueueState::default(),
            signoff: SignoffState::default(),
            forecast: ForecastState::default(),
            policy: Default::default(),
            outbox: Default::default(),
            disputes: Default::default(),
            payouts: Default::default(),
            plan: Default::default(),
            detail: None,
            explain: None,
            detail_id: None,
            modal: None,
            message: None,
            search_entries: None,
            bg: BgSync::default(),
            quit: false,
            dirty: true,
            size: Cell::new((80, 24)),
            table_area: Cell::new(Rect::default()),
            nav: super::flow::NavState {
                auto_advance: config.workbench.auto_advance,
                ..Default::default()
            },
            hidden_columns: super::views::default_hidden(),
            views: Vec::new(),
        }
    }

    /// The effects that load everything for the first frame.
    pub fn start(&mut self) -> Vec<Effect> {
        let mut fx = vec![
            Effect::LoadProgram,
            Effect::LoadCounters,
            Effect::LoadStatus,
            Effect::LoadViews,
        ];
        fx.push(self.reload_queue(Select::First));
        fx
    }

    pub fn currency(&self) -> &str {
        self.program
            .as_ref()
            .map(|p| p.currency.as_str())
            .unwrap_or("USD")
    }

    /// Opens transaction `id`'s record on `pane` from a list view (`Esc` returns there).
    pub(crate) fn open_record_from(&mut self, from: View, pane: Pane, id: String) -> Vec<Effect> {
        self.nav.record_from = from;
        self.view = View::Record;
        self.pane = pane;
        self.pane_scroll = 0;
        self.detail_id = Some(id.clone());
        self.detail = None;
        vec![Effect::LoadDetail(id)]
    }

    pub fn wide(&self) -> bool {
        self.size.get().0 >= WIDE
    }

    /// Visible queue rows (the table's height), at least 1.
    pub fn page_rows(&self) -> usize {
        let a = self.table_area.get();
        (a.height.saturating_sub(1) as usize).max(1)
    }

    /// The effect that reloads the queue window (for sibling modules).
    pub(crate) fn reload_queue_effect(&mut self, select: Select) -> Effect {
        self.reload_queue(select)
    }

    pub(crate) fn reload_queue(&mut self, select: Select) -> Effect {
        self.queue.req += 1;
        self.queue.loading = true;
        let (cursor, dir) = match select {
            Select::Last => (None, PageDir::Before),
            Select::First => (None, PageDir::After),
            Select::Keep => match (self.queue.base, self.queue.rows.first()) {
                (Some(0), _) | (_, None) => (None, PageDir::After),
                (_, Some(r)) => (Some(r.cursor()), PageDir::From),
            },
        };
        Effect::LoadQueue {
            req: self.queue.req,
            filter: self.queue.filter.clone(),
            sort: self.queue.sort,
            cursor,
            dir,
            limit: if select == Select::Keep {
                self.queue.rows.len().clamp(CHUNK, WINDOW_MAX)
            } else {
                CHUNK
            },
            mode: PageMode::Replace(select),
        }
    }

    /// Loads more rows when the selection nears an edge of the loaded window.
    fn prefetch(&mut self) -> Vec<Effect> {
        if self.queue.loading || self.queue.rows.is_empty() {
            return vec![];
        }
        let margin = self.page_rows() * 2;
        let q = &self.queue;
        let (cursor, dir, mode) = if !q.at_bottom && q.sel + margin >= q.rows.len() {
            (
                q.rows.last().map(QueueRow::cursor),
                PageDir::After,
                PageMode::Append,
            )
        } else if !q.at_top && q.sel < margin {
            (
                q.rows.first().map(QueueRow::cursor),
                PageDir::Before,
                PageMode::Prepend,
            )
        } else {
            return vec![];
        };
        let e = Effect::LoadQueue {
            req: q.req,
            filter: q.filter.clone(),
            sort: q.sort,
            cursor,
            dir,
            limit: CHUNK,
            mode,
        };
        self.queue.loading = true;
        vec![e]
    }

    /// After the selection moved: prefetch and (when a pane shows it) load the record.
    pub(crate) fn selection_changed(&mut self) -> Vec<Effect> {
        let mut fx = self.prefetch();
        if self.view == View::Record || (self.view == View::Queue && self.wide()) {
            if let Some(id) = self.queue.current().map(|r| r.transaction_id.clone()) {
                if self.detail_id.as_deref() != Some(id.as_str()) {
                    self.detail_id = Some(id.clone());
                    self.pane_scroll = 0;
                    fx.push(Effect::LoadDetail(id));
                }
            }
        }
        fx.extend(self.want_explain());
        fx
    }

    /// Asks for the plan's derivation when the Commission pane shows a record without one.
    fn want_explain(&mut self) -> Vec<Effect> {
        let shown = self.view == View::Record || (self.view == View::Queue && self.wide());
        match (&self.detail_id, &self.explain) {
            (Some(id), Some((eid, _))) if id == eid => vec![],
            (Some(id), _) if shown && self.pane == Pane::Commission => {
                self.explain = Some((id.clone(), Err("loading…".into())));
                vec![Effect::LoadExplain(id.clone())]
            }
            _ => vec![],
        }
    }

    fn move_sel(&mut self, by: isize) -> Vec<Effect> {
        match self.view {
            View::Forecast => {
                let max = self.forecast.max_scroll.get() as isize;
                self.forecast.scroll =
                    (self.forecast.scroll as isize + by).clamp(0, max.max(0)) as u16;
                vec![]
            }
            View::Signoff => {
                let n = self.signoff.rows.len();
                if n > 0 {
                    self.signoff.sel = stepped(self.signoff.sel, by, n);
                }
                vec![]
            }
            _ => {
                let n = self.queue.rows.len();
                if n == 0 {
                    return vec![];
                }
                self.queue.sel = stepped(self.queue.sel, by, n);
                self.selection_changed()
            }
        }
    }

    /// The ids a decision applies to: the marked rows, else the current one.
    fn targets(&self) -> Vec<String> {
        match self.view {
            View::Signoff => {
                if !self.signoff.marked.is_empty() {
                    return self.signoff.marked.iter().cloned().collect();
                }
                self.signoff
                    .rows
                    .get(self.signoff.sel)
                    .map(|r| vec![r.transaction_id.clone()])
                    .unwrap_or_default()
            }
            View::Record => self.detail_id.clone().into_iter().collect(),
            View::Forecast
            | View::Policy
            | View::Outbox
            | View::Payouts
            | View::Disputes
            | View::Plan => vec![],
            View::Queue => {
                if !self.queue.marked.is_empty() {
                    return self.queue.marked.iter().cloned().collect();
                }
                self.queue
                    .current()
                    .map(|r| vec![r.transaction_id.clone()])
                    .unwrap_or_default()
            }
        }
    }

    fn info(&mut self, level: Level, text: impl Into<String>) {
        self.message = Some((level, text.into()));
    }

    fn open_form(&mut self, kind: FormKind) -> Vec<Effect> {
        let ids = self.targets();
        if ids.is_empty() {
            self.info(Level::Error, "nothing selected");
            return vec![];
        }
        let mut amount = String::new();
        if kind == FormKind::Override && ids.len() == 1 {
            if let Some(p) = self
                .detail
                .as_ref()
                .filter(|d| d.tx.transaction_id == ids[0])
                .and_then(|d| d.proposal.as_ref())
            {
                amount = p.proposed_amount.clone();
            }
        }
        let mut note = TextArea::default();
        note.set_placeholder_text("Why? (required: the audit trail records it)");
        let load = (kind == FormKind::Override && ids.len() == 1 && amount.is_empty())
            .then(|| ids[0].clone());
        self.modal = Some(Modal::Form(Box::new(DecisionForm {
            kind,
            ids,
            amount,
            note,
            on_amount: kind == FormKind::Override,
            error: None,
        })));
        // Prefill the override amount with the proposal once the record is loaded.
        match load {
            Some(id) => {
                self.detail_id = Some(id.clone());
                vec![Effect::LoadDetail(id)]
            }
            None => vec![],
        }
    }

    /// Asks the worker for the forecast unless it is cached (or `again`) or on its way.
    fn forecast_effect(&mut self, again: bool) -> Vec<Effect> {
        if self.forecast.loading || (self.forecast.data.is_some() && !again) {
            return vec![];
        }
        self.forecast.loading = true;
        vec![Effect::LoadForecast]
    }

    /// [`App::refresh`] for sibling modules.
    pub(crate) fn refresh_views(&mut self) -> Vec<Effect> {
        self.refresh()
    }

    /// Reloads the queue window, counts, sync status and what the view shows.
    fn refresh(&mut self) -> Vec<Effect> {
        let mut fx = vec![Effect::LoadCounters, Effect::LoadStatus];
        if self.view == View::Forecast {
            fx.extend(self.forecast_effect(true));
        }
        if self.view == View::Policy {
            fx.extend(self.policy_effect());
        }
        if self.view == View::Outbox {
            fx.extend(self.outbox_effect());
        }
        if self.view == View::Disputes {
            fx.extend(self.disputes_effect());
        }
        if self.view == View::Payouts {
            fx.extend(self.payouts_effect());
        }
        if self.view == View::Plan {
            fx.extend(self.plan_effect());
        }
        fx.push(self.reload_queue(Select::Keep));
        if self.view == View::Signoff {
            fx.push(Effect::LoadSignoff);
        }
        if let Some(id) = self.detail_id.clone() {
            fx.push(Effect::LoadDetail(id));
        }
        fx
    }

    /// The pure update: one action in, effects out.
    pub fn update(&mut self, action: Action) -> Vec<Effect> {
        self.dirty = true;
        if !matches!(
            action,
            Action::Up | Action::Down | Action::PageUp | Action::PageDown
        ) {
            self.message = None;
        }
        if let Some(fx) = self.flow_update(action) {
            return fx;
        }
        if let Some(fx) = self.policy_update(action) {
            return fx;
        }
        if let Some(fx) = self.outbox_update(action) {
            return fx;
        }
        if let Some(fx) = self.disputes_update(action) {
            return fx;
        }
        if let Some(fx) = self.payouts_update(action) {
            return fx;
        }
        if let Some(fx) = self.plan_update(action) {
            return fx;
        }
        let page = self.page_rows() as isize;
        match action {
            Action::Quit => {
                self.quit = true;
                vec![]
            }
            Action::Help => {
                self.modal = Some(Modal::Help { scroll: 0 });
                vec![]
            }
            Action::Palette => {
                self.modal = Some(Modal::Palette {
                    input: String::new(),
                    sel: 0,
                });
                vec![]
            }
            Action::Up | Action::Down if self.view == View::Record => {
                self.pane_scroll = if action == Action::Up {
                    self.pane_scroll.saturating_sub(1)
                } else {
                    self.pane_scroll.saturating_add(1).min(self.pane_max.get())
                };
                vec![]
            }
            Action::Up => self.move_sel(-1),
            Action::Down => self.move_sel(1),
            Action::PageUp => self.move_sel(-page),
            Action::PageDown => self.move_sel(page),
            Action::Top => match self.view {
                View::Forecast => {
                    self.forecast.scroll = 0;
                    vec![]
                }
                View::Signoff => self.move_sel(-(self.signoff.rows.len() as isize)),
                _ if self.queue.at_top => self.move_sel(-(self.queue.rows.len() as isize)),
                _ => vec![self.reload_queue(Select::First)],
            },
            Action::Bottom => match self.view {
                View::Forecast => {
                    self.forecast.scroll = self.forecast.max_scroll.get();
                    vec![]
                }
                View::Signoff => self.move_sel(self.signoff.rows.len() as isize),
                _ if self.queue.at_bottom => self.move_sel(self.queue.rows.len() as isize),
                _ => vec![self.reload_queue(Select::Last)],
            },
            Action::Open => match self.view {
                View::Queue if !self.queue.rows.is_empty() => {
                    self.view = View::Record;
                    self.selection_changed()
                }
                View::Signoff => {
                    let Some(id) = self
                        .signoff
                        .rows
                        .get(self.signoff.sel)
                        .map(|r| r.transaction_id.clone())
                    else {
                        return vec![];
                    };
                    self.view = View::Record;
                    self.pane = Pane::Decision;
                    self.detail_id = Some(id.clone());
                    self.detail = None;
                    vec![Effect::LoadDetail(id)]
                }
                _ => vec![],
            },
            Action::Back => {
                if self.view == View::Record {
                    self.view = View::Queue;
                } else if !self.queue.marked.is_empty() || !self.signoff.marked.is_empty() {
                    self.queue.marked.clear();
                    self.signoff.marked.clear();
                } else if self.view == View::Signoff || self.view == View::Forecast {
                    self.view = View::Queue;
                }
                vec![]
            }
            Action::NextPane | Action::PrevPane => {
                let by = if action == Action::NextPane { 1 } else { -1 };
                match self.view {
                    View::Record => {
                        self.pane = self.pane.shift(by);
                        self.pane_scroll = 0;
                        self.want_explain()
                    }
                    View::Queue if self.wide() => {
                        self.pane = self.pane.shift(by);
                        self.pane_scroll = 0;
                        self.selection_changed()
                    }
                    View::Queue => {
                        if by < 0 {
                            self.pane = self.pane.shift(-1);
                        }
                        self.update(Action::Open)
                    }
                    View::Signoff
                    | View::Forecast
                    | View::Policy
                    | View::Outbox
                    | View::Payouts
                    | View::Disputes
                    | View::Plan => vec![],
                }
            }
            Action::QueueView => {
                self.view = View::Queue;
                vec![]
            }
            Action::SignoffView => {
                self.view = View::Signoff;
                if self.role != Role::Manager {
                    self.info(
                        Level::Info,
                        "sign-off is for managers: you can look, but only a manager can sign off",
                    );
                }
                vec![Effect::LoadSignoff]
            }
            Action::ForecastView => {
                self.view = View::Forecast;
                self.forecast_effect(false)
            }
            Action::PolicyView => {
                self.view = View::Policy;
                self.policy_effect()
            }
            Action::OutboxView => {
                self.view = View::Outbox;
                self.outbox_effect()
            }
            Action::DisputesView => {
                self.view = View::Disputes;
                self.disputes_effect()
            }
            Action::PayoutsView => {
                self.view = View::Payouts;
                self.payouts_effect()
            }
            Action::PlanView => {
                self.view = View::Plan;
                self.plan_effect()
            }
            // Handled by `payouts_update` (in the Payouts view, or said where they work).
            Action::ApproveRun | Action::ReleaseHold => vec![],
            Action::Refresh => {
                // The user's reload also re-reads the search index (another process may
                // have rescored); first, so a search reload uses the new one.
                let mut fx = vec![Effect::BuildSearchIndex];
                fx.extend(self.refresh());
                fx
            }
            Action::SyncNow => {
                if self.bg.running {
                    self.info(Level::Info, "sync: already running");
                    return vec![];
                }
                self.bg.asked = true;
                self.info(Level::Info, "sync: asking the PRM …");
                vec![Effect::SyncNow]
            }
            Action::Search => {
                self.view = if self.view == View::Record {
                    View::Queue
                } else {
                    self.view
                };
                let before = self.queue.filter.search.clone();
                self.modal = Some(Modal::Search {
                    input: before.clone().unwrap_or_default(),
                    before,
                });
                vec![]
            }
            Action::Filter => {
                let f = &self.queue.filter;
                let pos = |list: &[String], v: &Option<String>| {
                    v.as_ref()
                        .and_then(|v| list.iter().position(|x| x == v))
                        .map_or(0, |i| i + 1)
                };
                // One value shows as the line's choice; several as the added list.
                let one = |v: &[String]| {
                    if v.len() == 1 {
                        v.first().cloned()
                    } else {
                        None
                    }
                };
                let many = |v: &[String]| if v.len() > 1 { v.to_vec() } else { Vec::new() };
                let kinds: Vec<String> = KIND_CHOICES.iter().map(|s| s.to_string()).collect();
                let states: Vec<String> = STATUS_CHOICES.iter().map(|s| s.to_string()).collect();
                let tiers: Vec<String> = self.tiers.iter().map(|t| t.0.clone()).collect();
                self.modal = Some(Modal::Filter(FilterForm {
                    field: 0,
                    kind: pos(&kinds, &one(&f.kind)),
                    kinds: many(&f.kind),
                    status: pos(&states, &one(&f.status)),
                    statuses: many(&f.status),
                    mine: f.needs_me.is_some(),
                    tier: pos(&tiers, &f.tier),
                    region: pos(&self.regions, &f.region),
                    min_amount: f
                        .min_amount_minor
                        .map(|m| (Decimal::new(m, 2)).normalize().to_string())
                        .unwrap_or_default(),
                }));
                vec![]
            }
            Action::ClearFilter => {
                self.queue.filter = QueueFilter::default();
                self.queue.marked.clear();
                vec![self.reload_queue(Select::First)]
            }
            Action::Sort => {
                self.queue.sort.sort = self.queue.sort.sort.next();
                self.info(Level::Info, format!("sorted {}", self.queue.sort.label()));
                vec![self.reload_queue(Select::First)]
            }
            Action::ReverseSort => {
                self.queue.sort.reverse = !self.queue.sort.reverse;
                self.info(Level::Info, format!("sorted {}", self.queue.sort.label()));
                vec![self.reload_queue(Select::First)]
            }
            Action::ToggleSelect => {
                if self.view == View::Signoff {
                    if let Some(id) = self
                        .signoff
                        .rows
                        .get(self.signoff.sel)
                        .map(|r| r.transaction_id.clone())
                    {
                        if !self.signoff.marked.remove(&id) {
                            self.signoff.marked.insert(id);
                        }
                    }
                } else if let Some(id) = self.queue.current().map(|r| r.transaction_id.clone()) {
                    if !self.queue.marked.remove(&id) {
                        self.queue.marked.insert(id);
                    }
                }
                self.move_sel(1)
            }
            Action::SelectAll => {
                match self.view {
                    View::Signoff => {
                        if self.signoff.marked.is_empty() {
                            self.signoff.marked = self
                                .signoff
                                .rows
                                .iter()
                                .map(|r| r.transaction_id.clone())
                                .collect();
                        } else {
                            self.signoff.marked.clear();
                        }
                    }
                    _ => {
                        if self.queue.marked.is_empty() {
                            self.queue.marked = self
                                .queue
                                .rows
                                .iter()
                                .map(|r| r.transaction_id.clone())
                                .collect();
                        } else {
                            self.queue.marked.clear();
                        }
                    }
                }
                vec![]
            }
            Action::Approve => {
                let ids = self.targets();
                if ids.is_empty() {
                    self.info(Level::Error, "nothing selected");
                    return vec![];
                }
                self.info(Level::Info, format!("working: approving {} …", ids.len()));
                if self.view == View::Signoff {
                    vec![Effect::Signoff {
                        ids,
                        approve: true,
                        reason: "signed off in the workbench".into(),
                    }]
                } else {
                    vec![Effect::Decide {
                        ids,
                        decision: Decision::Approve,
                        reason: "approved in the workbench".into(),
                    }]
                }
            }
            Action::Override => self.open_form(FormKind::Override),
            Action::Dismiss => self.open_form(FormKind::Dismiss),
            Action::Escalate => self.open_form(FormKind::Escalate),
            Action::RequestDocuments => self.open_form(FormKind::RequestDocuments),
            Action::Reject => {
                if self.view != View::Signoff && self.view != View::Record {
                    self.info(
                        Level::Info,
                        "reject applies to sign-off: press 2 for Sign-off",
                    );
                    return vec![];
                }
                self.open_form(FormKind::Reject)
            }
            // Handled in `flow_update` (record navigation, copy, export).
            Action::Ask => self.open_ask(),
            Action::Columns => self.open_columns(),
            Action::Views => self.open_views(),
            Action::NextRecord
            | Action::PrevRecord
            | Action::NextUnreviewed
            | Action::JumpLinked
            | Action::CopyId
            | Action::ExportView => vec![],
            Action::Undo => {
                let ids = self.targets();
                match ids.as_slice() {
                    [id] => vec![Effect::Undo(id.clone())],
                    [] => {
                        self.info(Level::Error, "nothing selected");
                        vec![]
                    }
                    _ => {
                        self.info(Level::Error, "undo works on one record at a time");
                        vec![]
                    }
                }
            }
        }
    }

    /// A worker message arrived.
    pub fn on_msg(&mut self, msg: Msg) -> Vec<Effect> {
        self.dirty = true;
        match msg {
            Msg::Program(p, tiers, regions) => {
                self.program = p;
                self.tiers = tiers;
                self.regions = regions;
                vec![]
            }
            Msg::Queue {
                req,
                mode,
                rows,
                limit,
                more,
            } => {
                if req != self.queue.req {
                    return vec![];
                }
                // More of this page follows: no prefetch of our own meanwhile.
                self.queue.loading = more;
                self.queue.loaded_once = true;
                let full = rows.len() >= limit;
                let q = &mut self.queue;
                match mode {
                    PageMode::Replace(select) => {
                        let keep_id = q.current().map(|r| r.transaction_id.clone());
                        let old_sel = q.sel;
                        q.rows = rows;
                        match select {
                            Select::First => {
                                q.sel = 0;
                                q.at_top = true;
                                q.at_bottom = !full;
                                q.base = Some(0);
                                q.scroll.set(0);
                            }
                            Select::Last => {
                                q.sel = q.rows.len().saturating_sub(1);
                                q.at_bottom = true;
                                q.at_top = !full;
                                q.base = if q.filter.is_empty() {
                                    self.counters
                                        .iter()
                                        .find(|(n, _)| n == "queue:total")
                                        .map(|(_, v)| (*v as usize).saturating_sub(q.rows.len()))
                                } else if !full {
                                    Some(0)
                                } else {
                                    None
                                };
                                q.scroll.set(q.sel);
                            }
                            Select::Keep => {
                                q.at_bottom = !full;
                                q.sel = keep_id
                                    .and_then(|id| {
                                        q.rows.iter().position(|r| r.transaction_id == id)
                                    })
                                    .unwrap_or(old_sel);
                                q.sel = q.sel.min(q.rows.len().saturating_sub(1));
                            }
                        }
                        let live: BTreeSet<String> =
                            q.rows.iter().map(|r| r.transaction_id.clone()).collect();
                        if select != Select::Keep {
                            q.marked.retain(|m| live.contains(m));
                        }
                        self.after_queue_page();
                    }
                    PageMode::Append => {
                        q.at_bottom = !full;
                        q.rows.extend(rows);
                        if q.rows.len() > WINDOW_MAX {
                            let drop = q.rows.len() - WINDOW_MAX;
                            q.rows.drain(..drop);
                            q.sel = q.sel.saturating_sub(drop);
                            q.scroll.set(q.scroll.get().saturating_sub(drop));
                            q.base = q.base.map(|b| b + drop);
                            q.at_top = false;
                        }
                    }
                    PageMode::Prepend => {
                        q.at_top = !full;
                        let n = rows.len();
                        let mut rows = rows;
                        rows.append(&mut q.rows);
                        q.rows = rows;
                        q.sel += n;
                        q.scroll.set(q.scroll.get() + n);
                        q.base = q.base.map(|b| b.saturating_sub(n));
                        if q.at_top {
                            q.base = Some(0);
                        }
                        if q.rows.len() > WINDOW_MAX {
                            q.rows.truncate(WINDOW_MAX);
                            q.at_bottom = false;
                        }
                    }
                }
                self.selection_changed()
            }
            Msg::Counters(c) => {
                self.counters = c;
                vec![]
            }
            Msg::Status(s) => {
                self.sync = s;
                vec![]
            }
            Msg::Detail(id, d) => {
                if self.detail_id.as_deref() == Some(id.as_str()) {
                    if let (Some(Modal::Form(form)), Some(p)) = (
                        self.modal.as_mut(),
                        d.as_ref().and_then(|d| d.proposal.as_ref()),
                    ) {
                        if form.kind == FormKind::Override
                            && form.amount.is_empty()
                            && form.ids == [id.clone()]
                        {
                            form.amount = p.proposed_amount.clone();
                        }
                    }
                    self.detail = d;
                }
                vec![]
            }
            Msg::Explain(id, r) => {
                if self.detail_id.as_deref() == Some(id.as_str()) {
                    self.explain = Some((id, r));
                }
                vec![]
            }
            Msg::Forecast(r) => {
                self.forecast.loading = false;
                self.forecast.data = Some(r);
                vec![]
            }
            Msg::Policy(r) => self.on_policy(r),
            Msg::Outbox(r) => self.on_outbox(r),
            Msg::Disputes(r) => self.on_disputes(r),
            Msg::Plan(r) => self.on_plan(r),
            Msg::PlanWhatIf(changes, r) => self.on_plan_whatif(changes, r),
            Msg::Answer {
                question,
                partner,
                result,
            } => self.on_answer(question, partner, result),
            Msg::Views {
                hidden,
                views,
                note,
                apply,
            } => self.on_views(hidden, views, note, apply),
            Msg::Payouts(r) => self.on_payouts(r),
            Msg::PayoutPayees(id, r) => self.on_payout_payees(id, r),
            Msg::PolicyRan(text) => {
                let failed = text.starts_with("policy run failed");
                self.info(if failed { Level::Error } else { Level::Info }, text);
                let mut fx = vec![Effect::LoadCounters, Effect::LoadStatus];
                if self.view == View::Policy {
                    fx.extend(self.policy_effect());
                }
                fx
            }
            Msg::Signoff(rows) => {
                self.signoff.rows = rows;
                self.signoff.loaded = true;
                self.signoff.sel = self
                    .signoff
                    .sel
                    .min(self.signoff.rows.len().saturating_sub(1));
                let live: BTreeSet<String> = self
                    .signoff
                    .rows
                    .iter()
                    .map(|r| r.transaction_id.clone())
                    .collect();
                self.signoff.marked.retain(|m| live.contains(m));
                vec![]
            }
            Msg::Done { ok, text } => {
                let mut fx = self.after_done(ok);
                if ok {
                    self.queue.marked.clear();
                    self.signoff.marked.clear();
                    self.info(Level::Ok, text);
                    fx.extend(self.refresh());
                    fx
                } else {
                    self.info(Level::Error, text);
                    fx
                }
            }
            Msg::SearchIndex { entries, .. } => {
                self.search_entries = Some(entries);
                vec![]
            }
            Msg::SyncStarted => {
                self.bg.running = true;
                self.bg.unavailable = None;
                self.bg.progress = None;
                vec![]
            }
            Msg::SyncProgress {
                phase,
                resource,
                done,
            } => {
                self.bg.progress = Some((phase, resource, done));
                vec![]
            }
            Msg::SyncFinished(summary) => {
                self.bg.running = false;
                self.bg.progress = None;
                let changed = summary.written > 0 || matches!(summary.scored, Some(Ok(n)) if n > 0);
                let summary_scored = match &summary.scored {
                    Some(Ok(n)) => Some(*n),
                    _ => None,
                };
                let text = summary.describe();
                let level = if !summary.online || !summary.errors.is_empty() {
                    Level::Error
                } else {
                    Level::Ok
                };
                let show = self.bg.asked || level == Level::Error || changed;
                self.bg.asked = false;
                self.bg.last = Some(*summary);
                // Reload what the run may have changed; keep the run's message.
                let mut fx = Vec::new();
                if changed {
                    // First: a search reload on the search worker then uses the new index.
                    fx.push(Effect::BuildSearchIndex);
                }
                if matches!(summary_scored, Some(n) if n > 0) {
                    // New flags: the policy routes them and alerts go out.
                    fx.push(Effect::RunPolicy);
                }
                if changed || self.view == View::Signoff {
                    fx.extend(self.refresh());
                } else {
                    fx.extend([Effect::LoadStatus, Effect::LoadCounters]);
                }
                if show {
                    self.info(level, text);
                }
                fx
            }
            Msg::SyncUnavailable(why) => {
                self.bg.running = false;
                if self.bg.asked {
                    self.info(
                        Level::Error,
                        format!("offline: {why}; decisions wait in the outbox"),
                    );
                }
                self.bg.asked = false;
                self.bg.unavailable = Some(why);
                vec![Effect::LoadStatus]
            }
            Msg::DataVersion(v) => self.on_data_version(v),
            Msg::Error(e) => {
                self.queue.loading = false;
                self.info(Level::Error, e);
                vec![]
            }
        }
    }

    /// A key press: modal components first, then the keymap.
    pub fn on_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        let fx = self.on_key_inner(key);
        self.note_effects(&fx);
        fx
    }

    fn on_key_inner(&mut self, key: KeyEvent) -> Vec<Effect> {
        self.dirty = true;
        // Behind "Terminal too small" nothing acts but quit: the user cannot see it.
        let (w, h) = self.size.get();
        if w < MIN_W || h < MIN_H {
            return match self.keymap.action(&key) {
                Some(Action::Quit) => self.update(Action::Quit),
                _ => vec![],
            };
        }
        if let Some(modal) = self.modal.take() {
            return self.modal_key(modal, key);
        }
        match self.keymap.action(&key) {
            Some(a) => self.update(a),
            None => vec![],
        }
    }

    pub fn on_mouse(&mut self, ev: MouseEvent) -> Vec<Effect> {
        if self.modal.is_some() {
            return vec![];
        }
        match ev.kind {
            MouseEventKind::ScrollUp => self.update(Action::Up),
            MouseEventKind::ScrollDown => self.update(Action::Down),
            MouseEventKind::Down(_) if self.view == View::Queue => {
                let a = self.table_area.get();
                // Row 0 of the table area is the header.
                if ev.column >= a.x
                    && ev.column < a.x + a.width
                    && ev.row > a.y
                    && ev.row < a.y + a.height
                {
                    let idx = self.queue.scroll.get() + (ev.row - a.y - 1) as usize;
                    if idx < self.queue.rows.len() {
                        self.dirty = true;
                        if idx == self.queue.sel {
                            return self.update(Action::Open);
                        }
                        self.queue.sel = idx;
                        return self.selection_changed();
                    }
                }
                vec![]
            }
            _ => vec![],
        }
    }

    fn modal_key(&mut self, modal: Modal, key: KeyEvent) -> Vec<Effect> {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match modal {
            Modal::Confirm(c) => self.confirm_key(c, key),
            Modal::Ask(p) => self.ask_key(p, key),
            Modal::Answer(a) => self.answer_key(a, key),
            Modal::Columns(p) => self.columns_key(p, key),
            Modal::Views(p) => self.views_key(p, key),
            Modal::Help { scroll } => {
                let scroll = match key.code {
                    KeyCode::Down | KeyCode::Char('j') => scroll.saturating_add(1),
                    KeyCode::Up | KeyCode::Char('k') => scroll.saturating_sub(1),
                    KeyCode::PageDown => scroll.saturating_add(10),
                    KeyCode::PageUp => scroll.saturating_sub(10),
                    _ => return vec![],
                };
                self.modal = Some(Modal::Help { scroll });
                vec![]
            }
            Modal::Palette { mut input, mut sel } => {
                let matches = palette_matches(&input);
                match key.code {
                    KeyCode::Esc => return vec![],
                    KeyCode::Enter => {
                        if let Some(fx) = self.palette_command(&input) {
                            return fx;
                        }
                        return match matches.get(sel) {
                            Some(a) => self.update(*a),
                            None => vec![],
                        };
                    }
                    KeyCode::Up => sel = sel.saturating_sub(1),
                    KeyCode::Down => sel = (sel + 1).min(matches.len().saturating_sub(1)),
                    KeyCode::Backspace => {
                        input.pop();
                        sel = 0;
                    }
                    KeyCode::Char(c) if !ctrl => {
                        input.push(c);
                        sel = 0;
                    }
                    _ => {}
                }
                self.modal = Some(Modal::Palette { input, sel });
                vec![]
            }
            Modal::Search { mut input, before } => {
                match key.code {
                    KeyCode::Esc => {
                        self.queue.filter.search = before;
                        return vec![self.reload_queue(Select::First)];
                    }
                    KeyCode::Enter => {
                        return vec![];
                    }
                    KeyCode::Backspace => {
                        input.pop();
                    }
                    KeyCode::Char('u') if ctrl => input.clear(),
                    KeyCode::Char(c) if !ctrl => input.push(c),
                    _ => {
                        self.modal = Some(Modal::Search { input, before });
                        return vec![];
                    }
                }
                self.queue.filter.search = if input.is_empty() {
                    None
                } else {
                    Some(input.clone())
                };
                self.modal = Some(Modal::Search { input, before });
                vec![self.reload_queue(Select::First)]
            }
            Modal::Filter(mut f) => {
                let counts = [
                    KIND_CHOICES.len(),
                    STATUS_CHOICES.len(),
                    self.tiers.len(),
                    self.regions.len(),
                ];
                match key.code {
                    KeyCode::Esc => return vec![],
                    KeyCode::Enter => return self.apply_filter(&f),
                    KeyCode::Up | KeyCode::BackTab => {
                        f.field = (f.field + FILTER_FIELDS - 1) % FILTER_FIELDS
                    }
                    KeyCode::Down | KeyCode::Tab => f.field = (f.field + 1) % FILTER_FIELDS,
                    KeyCode::Left | KeyCode::Right | KeyCode::Char(' ') if f.field == 5 => {
                        f.mine = !f.mine
                    }
                    KeyCode::Char(' ') if f.field == 0 => {
                        toggle_choice(&mut f.kinds, f.kind, &KIND_CHOICES)
                    }
                    KeyCode::Char(' ') if f.field == 1 => {
                        toggle_choice(&mut f.statuses, f.status, &STATUS_CHOICES)
                    }
                    KeyCode::Left | KeyCode::Right if f.field < 4 => {
                        let n = counts[f.field] + 1;
                        let slot = match f.field {
                            0 => &mut f.kind,
                            1 => &mut f.status,
                            2 => &mut f.tier,
                            _ => &mut f.region,
                        };
                        *slot = if key.code == KeyCode::Right {
                            (*slot + 1) % n
                        } else {
                            (*slot + n - 1) % n
                        };
                    }
                    KeyCode::Backspace if f.field == 4 => {
                        f.min_amount.pop();
                    }
                    KeyCode::Char(c) if f.field == 4 && (c.is_ascii_digit() || c == '.') => {
                        f.min_amount.push(c)
                    }
                    KeyCode::Char('x') | KeyCode::Delete => match f.field {
                        0 => {
                            f.kind = 0;
                            f.kinds.clear();
                        }
                        1 => {
                            f.status = 0;
                            f.statuses.clear();
                        }
                        2 => f.tier = 0,
                        3 => f.region = 0,
                        4 => f.min_amount.clear(),
                        _ => f.mine = false,
                    },
                    _ => {}
                }
                self.modal = Some(Modal::Filter(f));
                vec![]
            }
            Modal::Form(mut form) => {
                let submit = (ctrl && matches!(key.code, KeyCode::Char('s')))
                    || (key.modifiers.contains(KeyModifiers::ALT) && key.code == KeyCode::Enter)
                    || (form.on_amount && key.code == KeyCode::Enter && !form.note.is_empty());
                if key.code == KeyCode::Esc {
                    self.info(Level::Info, "cancelled; nothing was changed");
                    return vec![];
                }
                if submit {
                    return match self.submit_form(&form) {
                        Ok(fx) => fx,
                        Err(e) => {
                            form.error = Some(e);
                            self.modal = Some(Modal::Form(form));
                            vec![]
                        }
                    };
                }
                if key.code == KeyCode::Tab || key.code == KeyCode::BackTab {
                    if form.kind == FormKind::Override {
                        form.on_amount = !form.on_amount;
                    }
                } else if form.on_amount {
                    match key.code {
                        KeyCode::Enter => form.on_amount = false,
                        KeyCode::Backspace => {
                            form.amount.pop();
                        }
                        KeyCode::Char('u') if ctrl => form.amount.clear(),
                        KeyCode::Char(c)
                            if !ctrl && (c.is_ascii_digit() || c == '.' || c == '-') =>
                        {
                            form.amount.push(c)
                        }
                        KeyCode::Char(c) if !ctrl && c != ',' => {
                            // Words belong in the note: move there and keep typing.
                            form.on_amount = false;
                            form.note.input(key);
                        }
                        _ => {}
                    }
                } else {
                    form.note.input(key);
                }
                form.error = None;
                self.modal = Some(Modal::Form(form));
                vec![]
            }
        }
    }

    fn apply_filter(&mut self, f: &FilterForm) -> Vec<Effect> {
        let pick = |i: usize, list: Vec<String>| {
            if i == 0 {
                None
            } else {
                list.get(i - 1).cloned()
            }
        };
        let min = if f.min_amount.is_empty() {
            None
        } else {
            match crate::money::parse_money(&f.min_amount) {
                Some(d) => Some(crate::money::to_minor(d)),
                None => {
                    self.info(
                        Level::Error,
                        format!("minimum amount {:?} is not a number", f.min_amount),
                    );
                    self.modal = Some(Modal::Filter(f.clone()));
                    return vec![];
                }
            }
        };
        self.queue.filter = QueueFilter {
            kind: FilterForm::values(&f.kinds, f.kind, &KIND_CHOICES),
            status: FilterForm::values(&f.statuses, f.status, &STATUS_CHOICES),
            tier: pick(f.tier, self.tiers.iter().map(|t| t.0.clone()).collect()),
            region: pick(f.region, self.regions.clone()),
            min_amount_minor: min,
            search: self.queue.filter.search.clone(),
            needs_me: f.mine.then(|| crate::store::queue::NeedsMe {
                role: self.role,
                user: self.user.clone(),
            }),
        };
        self.queue.marked.clear();
        vec![self.reload_queue(Select::First)]
    }

    fn submit_form(&mut self, form: &DecisionForm) -> Result<Vec<Effect>, String> {
        let note = form.note.lines().join("\n").trim().to_string();
        // Every form decision carries a reason: the audit trail records it.
        if note.is_empty() {
            return Err(format!(
                "{} needs a note saying why",
                form.kind.title().to_lowercase()
            ));
        }
        let reason = note;
        let ids = form.ids.clone();
        let decision = match form.kind {
            FormKind::Override => {
                let amt = crate::money::parse_money(&form.amount)
                    .ok_or_else(|| format!("amount {:?} is not a number", form.amount))?;
                Decision::Override(amt)
            }
            FormKind::Dismiss => Decision::Dismiss,
            FormKind::Escalate => Decision::Escalate,
            FormKind::RequestDocuments => Decision::RequestDocuments,
            FormKind::Reject => {
                self.info(Level::Info, format!("working: rejecting {} …", ids.len()));
                return Ok(vec![Effect::Signoff {
                    ids,
                    approve: false,
                    reason,
                }]);
            }
        };
        self.info(
            Level::Info,
            format!("working: {} {} …", decision.label(), ids.len()),
        );
        let amount = match &decision {
            Decision::Override(a) => Some(*a),
            _ => None,
        };
        let fx = vec![Effect::Decide {
            ids: ids.clone(),
            decision,
            reason,
        }];
        Ok(match amount {
            Some(a) => self.confirm_override(&ids, a, fx),
            None => fx,
        })
    }

    /// Whether an adjustment of `delta` in `currency` for `partner` needs a manager's
    /// sign-off: the workflow's rule ([`crate::workflow::Policy::needs_signoff`]).
    pub fn needs_signoff(
        &self,
        delta: Decimal,
        currency: &str,
        partner_id: &str,
        high_value: bool,
    ) -> bool {
        crate::workflow::Policy::from_config(&self.config)
            .needs_signoff(delta, currency, partner_id, high_value)
    }
}

/// Actions whose name or description contains every word typed in the palette, the
/// exact name first (see `palette`).
pub fn palette_matches(input: &str) -> Vec<Action> {
    super::palette::ranked(input)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn app() -> App {
        App::new(
            "bob".into(),
            Role::Analyst,
            Config::default(),
            Theme::monochrome(),
            Keymap::new(&BTreeMap::new()).unwrap(),
        )
    }

    #[test]
    fn forecast_is_computed_once_on_the_worker_and_recomputed_on_refresh() {
        let mut a = app();
        assert_eq!(a.update(Action::ForecastView), vec![Effect::LoadForecast]);
        assert_eq!(a.view, View::Forecast);
        assert!(a.forecast.loading);
        // While it computes, pressing 3 again asks for nothing more.
        assert_eq!(a.update(Action::ForecastView), vec![]);
        a.on_msg(Msg::Forecast(Err("no program".into())));
        assert!(!a.forecast.loading);
        assert!(matches!(a.forecast.data, Some(Err(_))));
        // Cached: back to the queue and again costs nothing.
        a.update(Action::QueueView);
        assert_eq!(a.update(Action::ForecastView), vec![]);
        // Refresh in the Forecast view recomputes.
        assert!(a.update(Action::Refresh).contains(&Effect::LoadForecast));
        assert!(a.forecast.loading);
    }

    #[test]
    fn forecast_scroll_is_clamped_to_what_was_drawn() {
        let mut a = app();
        a.update(Action::ForecastView);
        a.forecast.max_scroll.set(3);
        for _ in 0..10 {
            a.update(Action::Down);
        }
        assert_eq!(a.forecast.scroll, 3);
        a.update(Action::Top);
        assert_eq!(a.forecast.scroll, 0);
        a.update(Action::Bottom);
        assert_eq!(a.forecast.scroll, 3);
        a.update(Action::Back);
        assert_eq!(a.view, View::Queue);
    }

    fn summary(online: bool, written: u64) -> crate::tui::sync::SyncSummary {
        crate::tui::sync::SyncSummary {
            online,
            pulled: written,
            written,
            ..Default::default()
        }
    }

    #[test]
    fn sync_key_asks_the_sync_thread_and_shows_progress_and_the_result() {
        let mut a = app();
        assert_eq!(a.update(Action::SyncNow), vec![Effect::SyncNow]);
        assert!(a.bg.asked);
        a.on_msg(Msg::SyncStarted);
        assert!(a.bg.running);
        // A second press while it runs asks for nothing.
        assert_eq!(a.update(Action::SyncNow), vec![]);
        a.on_msg(Msg::SyncProgress {
            phase: "pull".into(),
            resource: "transactions".into(),
            done: 750,
        });
        assert_eq!(
            a.bg.progress,
            Some(("pull".into(), "transactions".into(), 750))
        );
        // New rows: the index is rebuilt first, then the queue, counts and status reload.
        let fx = a.on_msg(Msg::SyncFinished(Box::new(summary(true, 12))));
        assert!(!a.bg.running && a.bg.progress.is_none());
        assert_eq!(fx.first(), Some(&Effect::BuildSearchIndex));
        assert!(fx.contains(&Effect::LoadStatus) && fx.contains(&Effect::LoadCounters));
        assert!(fx.iter().any(|e| matches!(e, Effect::LoadQueue { .. })));
        assert!(matches!(&a.message, Some((Level::Ok, m)) if m.contains("pulled 12")));
        // Nothing new: only the status bar's figures reload, no message for a quiet run.
        a.message = None;
        let fx = a.on_msg(Msg::SyncFinished(Box::new(summary(true, 0))));
        assert_eq!(fx, vec![Effect::LoadStatus, Effect::LoadCounters]);
        assert!(a.message.is_none());
    }

    #[test]
    fn offline_is_shown_with_its_reason_and_decisions_still_queue() {
        let mut a = app();
        // The sync thread found no PRM at start: no message, but a reason for the bar.
        assert_eq!(
            a.on_msg(Msg::SyncUnavailable(
                "no PRM configured (tierdesk login --prm URL --flavor F)".into()
            )),
            vec![Effect::LoadStatus]
        );
        assert!(a.message.is_none());
        assert_eq!(a.bg.offline_reason(None), Some("no PRM"));
        // Pressing S says why, and that decisions wait in the outbox.
        a.update(Action::SyncNow);
        a.on_msg(Msg::SyncUnavailable("no PRM configured".into()));
        assert!(
            matches!(&a.message, Some((Level::Error, m)) if m.contains("outbox")),
            "{:?}",
            a.message
        );
        // An unreachable PRM: the run reports offline, shown as an error.
        a.bg.unavailable = None;
        a.update(Action::SyncNow);
        a.on_msg(Msg::SyncStarted);
        a.on_msg(Msg::SyncFinished(Box::new(summary(false, 0))));
        assert!(matches!(&a.message, Some((Level::Error, m)) if m.contains("unreachable")));
        assert_eq!(a.bg.offline_reason(Some(false)), Some("unreachable"));
        assert_eq!(a.bg.offline_reason(Some(true)), None);
        // Offline by choice (no run here said unreachable): no reason is made up.
        assert_eq!(BgSync::default().offline_reason(Some(false)), None);
        // Deciding offline is unaffected: approve still asks the workflow.
        a.queue.rows = vec![crate::store::queue::QueueRow {
            transaction_id: "T1".into(),
            score: 0.9,
            confidence: 0.9,
            kinds: vec![],
            partner_id: "P".into(),
            partner_name: "P".into(),
            tier: String::new(),
            customer: String::new(),
            amount: "1".into(),
            currency: "USD".into(),
            amount_minor: 100,
            at_stake_minor: 1,
            submitted_at: String::new(),
            status: "flagged".into(),
            ..Default::default()
        }];
        assert!(matches!(
            a.update(Action::Approve).as_slice(),
            [Effect::Decide { ids, .. }] if ids == &["T1".to_string()]
        ));
    }
}
