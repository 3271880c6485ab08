//! Effects: the IO that `update` asks for (store queries, workflow commands), run off the
//! render loop on a worker thread with its own store connection. Results come back as
//! [`Msg`]s over a channel.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;

use rust_decimal::Decimal;

use crate::config::{Config, Role};
use crate::store::queue::{
    PageDir, ProgramInfo, QueueCursor, QueueFilter, QueueOrder, QueueRow, RecordDetail, SignoffRow,
    SyncStatus,
};
use crate::store::Store;
use crate::tui::search::{SearchError, SearchIndex};
use crate::workflow::{self, Actor, CaseState, Command, Policy, SignoffCommand};

/// A decision the user asked for.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Approve,
    Override(Decimal),
    Dismiss,
    Escalate,
    RequestDocuments,
}

impl Decision {
    pub fn label(&self) -> &'static str {
        match self {
            Decision::Approve => "approve",
            Decision::Override(_) => "override",
            Decision::Dismiss => "dismiss",
            Decision::Escalate => "escalate",
            Decision::RequestDocuments => "request documents",
        }
    }
}

/// How a fetched queue page joins the loaded window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageMode {
    /// Replace the window; select the first row, the last row, or keep the index.
    Replace(Select),
    Append,
    Prepend,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Select {
    First,
    Last,
    Keep,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    LoadProgram,
    LoadQueue {
        req: u64,
        filter: QueueFilter,
        sort: QueueOrder,
        cursor: Option<QueueCursor>,
        dir: PageDir,
        limit: usize,
        mode: PageMode,
    },
    LoadCounters,
    LoadStatus,
    LoadDetail(String),
    LoadSignoff,
    /// The plan's recalculation and derivation for one transaction.
    LoadExplain(String),
    Decide {
        ids: Vec<String>,
        decision: Decision,
        reason: String,
    },
    Signoff {
        ids: Vec<String>,
        approve: bool,
        reason: String,
    },
    Undo(String),
    /// Undo the latest decision on each of several records (each on its own).
    UndoBatch(Vec<String>),
    /// The forecast, attainment risk and backtest of the whole program (slow: seconds on
    /// big caches).
    LoadForecast,
    /// (Re)build the in-memory search index (on the search worker).
    BuildSearchIndex,
    /// Ask the background sync thread for a run now.
    SyncNow,
    /// Read the cache's data version (has another process written?).
    CheckDataVersion,
    /// Put text on the terminal's clipboard (OSC 52; done by the render loop).
    Copy(String),
    /// Write the whole queue as filtered and sorted to a CSV file in the working folder.
    ExportCsv {
        filter: QueueFilter,
        sort: QueueOrder,
    },
    /// The Policy view's rules, precision and automated decisions.
    LoadPolicy,
    /// Roll back the policy actor's adjustment of one transaction.
    PolicyRollback(String),
    /// Route new flags and deliver due alerts (on the automation worker).
    RunPolicy,
    /// The Outbox view: outbox rows and open conflicts.
    LoadOutbox,
    /// The Disputes view, aged as of the worker's today.
    LoadDisputes,
    /// The Payouts view: runs and reconciliation exceptions.
    LoadPayouts,
    /// One run's payees (masked accounts).
    LoadPayoutPayees(String),
    /// Approve a payout run through the payout core (four-eyes).
    ApproveRun(String),
    /// Release a payee's bank or tax holds in a run through the payout core.
    ReleaseHold {
        run_id: String,
        partner_id: String,
    },
    /// Answer a question from the records, as `partner` when given.
    Ask {
        question: String,
        partner: Option<String>,
    },
    /// The Plan view's rule report.
    LoadPlan,
    /// A what-if of the plan with these `KEY=VALUE` changes.
    PlanWhatIf(String),
    /// The person's column layout and saved views.
    LoadViews,
    /// Save (or replace) a view under its name.
    SaveView(crate::store::views::SavedView),
    /// Delete a saved view by name.
    DeleteView(String),
    /// Read a saved view by name and apply it.
    ApplyView(String),
    /// Keep the hidden columns for the next session.
    SaveColumns(Vec<String>),
}

impl Effect {
    /// What the effect does, in a few words (for messages about it).
    pub fn label(&self) -> &'static str {
        match self {
            Effect::LoadProgram => "loading the program",
            Effect::LoadQueue { .. } => "loading the queue",
            Effect::LoadCounters => "loading the counters",
            Effect::LoadStatus => "loading the sync status",
            Effect::LoadDetail(_) => "loading the record",
            Effect::LoadSignoff => "loading the sign-off list",
            Effect::LoadExplain(_) => "explaining the commission",
            Effect::Decide { .. } => "deciding",
            Effect::Signoff { .. } => "signing off",
            Effect::Undo(_) | Effect::UndoBatch(_) => "undoing",
            Effect::LoadForecast => "forecasting",
            Effect::BuildSearchIndex => "building the search index",
            Effect::SyncNow => "syncing",
            Effect::CheckDataVersion => "watching the cache",
            Effect::Copy(_) => "copying",
            Effect::ExportCsv { .. } => "exporting",
            Effect::LoadPolicy => "loading the policy",
            Effect::PolicyRollback(_) => "rolling back",
            Effect::RunPolicy => "routing new flags",
            Effect::LoadOutbox => "loading the outbox",
            Effect::LoadDisputes => "loading the disputes",
            Effect::LoadPayouts => "loading the payout runs",
            Effect::LoadPayoutPayees(_) => "loading the run's payees",
            Effect::ApproveRun(_) => "approving the payout run",
            Effect::ReleaseHold { .. } => "releasing the holds",
            Effect::Ask { .. } => "answering",
            Effect::LoadViews | Effect::ApplyView(_) => "loading the views",
            Effect::LoadPlan => "loading the plan's rules",
            Effect::PlanWhatIf(_) => "recalculating the what-if",
            Effect::SaveView(_) | Effect::DeleteView(_) | Effect::SaveColumns(_) => {
                "saving the views"
            }
            // Effects added by other views describe themselves generically.
            #[allow(unreachable_patterns)]
            _ => "working",
        }
    }

    /// Whether this effect belongs on the search worker: index builds and queue pages
    /// narrowed by a search text.
    pub fn is_search(&self) -> bool {
        match self {
            Effect::BuildSearchIndex => true,
            Effect::LoadQueue { filter, .. } => filter
                .search
                .as_deref()
                .is_some_and(|s| !s.trim().is_empty()),
            _ => false,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    Program(Option<ProgramInfo>, Vec<(String, String)>, Vec<String>),
    Queue {
        req: u64,
        mode: PageMode,
        rows: Vec<QueueRow>,
        limit: usize,
        /// More rows of the same request follow (an `Append`): keep loading.
        more: bool,
    },
    Counters(Vec<(String, i64)>),
    Status(SyncStatus),
    Detail(String, Option<Box<RecordDetail>>),
    Signoff(Vec<SignoffRow>),
    Explain(String, Result<ExplainView, String>),
    Forecast(Result<Box<ForecastData>, String>),
    Policy(Result<Box<crate::tui::policy::PolicyData>, String>),
    /// The automation worker routed flags or delivered alerts: what it did.
    PolicyRan(String),
    Outbox(Result<Box<crate::tui::outbox::OutboxData>, String>),
    Disputes(Result<Box<crate::tui::disputes::DisputesData>, String>),
    Plan(Result<Box<crate::tui::plan::PlanData>, String>),
    PlanWhatIf(String, Result<Box<crate::plan::whatif::WhatIf>, String>),
    Payouts(Result<Box<crate::tui::payouts::PayoutsData>, String>),
    PayoutPayees(String, Result<Vec<crate::tui::payouts::PayeeLine>, String>),
    /// The answer to an `ask` question.
    Answer {
        question: String,
        partner: Option<String>,
        result: Result<Box<crate::answer::Answer>, String>,
    },
    /// The search index is ready: entries and milliseconds it took.
    SearchIndex {
        entries: usize,
        millis: u64,
    },
    /// The background sync started a run.
    SyncStarted,
    /// Progress of the running sync (throttled).
    SyncProgress {
        phase: String,
        resource: String,
        done: u64,
    },
    /// The run finished.
    SyncFinished(Box<crate::tui::sync::SyncSummary>),
    /// No sync possible (no PRM configured, no credential...): why.
    SyncUnavailable(String),
    /// A command finished: `ok` and a message for the user.
    Done {
        ok: bool,
        text: String,
    },
    Error(String),
    /// The cache's data version (another connection committed when it changes).
    DataVersion(i64),
    /// The person's hidden columns (`None`: leave them), views, what happened (ok, text)
    /// and a view to apply.
    Views {
        hidden: Option<Vec<String>>,
        views: Vec<crate::store::views::SavedView>,
        note: Option<(bool, String)>,
        apply: Option<Box<crate::store::views::SavedView>>,
    },
}

/// Everything the render loop waits for, on one channel: terminal input, worker results,
/// and a termination signal.
#[derive(Debug)]
pub enum Incoming {
    Input(crossterm::event::Event),
    Msg(Msg),
    Signal,
}

/// The plan's lines for a transaction against the PRM's, and the derivation text.
#[derive(Debug, Clone, PartialEq)]
pub struct ExplainView {
    pub currency: String,
    /// (role, payee, plan amount, PRM amount) per role/payee seen on either side.
    pub lines: Vec<(String, String, Option<Decimal>, Option<Decimal>)>,
    pub matches: bool,
    pub text: String,
}

/// What the Forecast view shows, computed on the worker.
#[derive(Debug, Clone, PartialEq)]
pub struct ForecastData {
    pub currency: String,
    pub as_of: String,
    /// Program quarters (complete and in progress), oldest first.
    pub history: Vec<crate::forecast::SeriesPoint>,
    /// Program and tier rows of the forecast (partner rows are left out).
    pub rows: Vec<crate::forecast::ForecastRow>,
    /// Partners at risk, most at risk first.
    pub risk: Vec<crate::forecast::PartnerRisk>,
    /// Why no risk is shown although partners were assessed (the quarter is over).
    pub risk_note: Option<String>,
    pub backtest: crate::forecast::BacktestReport,
}

/// Quarters forecast by the workbench (the quarter in progress first).
pub const FORECAST_HORIZON: usize = 2;
/// Backtest origins shown in the Forecast view.
pub const BACKTEST_ORIGINS: usize = 4;

fn load_forecast(store: &Store) -> Result<ForecastData, String> {
    use crate::forecast::{self, Granularity};
    let ds = store.load_dataset().map_err(|e| e.to_string())?;
    let lines = crate::plan::recalculate(&ds);
    let mut history: Vec<_> = forecast::history(&ds, &lines)
        .into_iter()
        .filter(|p| p.scope == "program" && p.granularity == Granularity::Quarter)
        .collect();
    history.sort_by(|a, b| a.period.cmp(&b.period));
    let rows = forecast::forecast(&ds, &lines, FORECAST_HORIZON)
        .into_iter()
        .filter(|r| !r.scope.starts_with("partner:"))
        .collect();
    let all_risk = forecast::attainment_risk(&ds, &lines);
    // A quarter already over (as of its last day) has nothing left at risk: its
    // bookings are final, and the next quarter's have not started.
    let over = all_risk.first().filter(|r| r.typical_share_done >= 1.0);
    let risk_note = over.map(|r| {
        format!(
            "{} is over as of {}: its bookings are final, nothing is left at risk",
            r.period, ds.program.as_of
        )
    });
    let mut risk: Vec<_> = all_risk
        .into_iter()
        .filter(|r| r.at_risk && risk_note.is_none())
        .collect();
    risk.sort_by(|a, b| {
        a.p_keep_tier
            .total_cmp(&b.p_keep_tier)
            .then(a.p_reach_quota.total_cmp(&b.p_reach_quota))
            .then(a.partner_id.cmp(&b.partner_id))
    });
    let backtest = forecast::backtest(&ds, &lines, BACKTEST_ORIGINS);
    Ok(ForecastData {
        currency: ds.program.currency.clone(),
        as_of: ds.program.as_of.to_string(),
        history,
        rows,
        risk,
        risk_note,
        backtest,
    })
}

/// Caches larger than this do not load the whole program for explanations in the
/// workbench (memory); `tierdesk explain ID` still works.
pub const EXPLAIN_MAX_TRANSACTIONS: i64 = 250_000;

/// Worker-side state: the program loaded once for explanations; on the search worker,
/// the search index and the newest queue request (to drop superseded searches).
#[derive(Default)]
pub struct WorkerState {
    dataset: Option<crate::model::Dataset>,
    pub search: Option<SearchIndex>,
    /// The newest queue request the UI sent (set by the dispatcher).
    pub latest_req: Option<Arc<AtomicU64>>,
    /// The date views age things by (dispute SLA); `None`: today by the clock (UTC).
    pub today: Option<chrono::NaiveDate>,
    /// The program and facts `ask` answers from, kept between questions.
    ask: Option<super::ask::AskCache>,
}

impl WorkerState {
    /// The search worker's state: cancels searches when `latest` moves past them.
    pub fn for_search(latest: Arc<AtomicU64>) -> WorkerState {
        WorkerState {
            latest_req: Some(latest),
            ..WorkerState::default()
        }
    }

    /// The date views age things by: the fixed one, else today by the clock (UTC, as
    /// the stored times are).
    pub fn today(&self) -> chrono::NaiveDate {
        self.today
            .unwrap_or_else(|| chrono::Utc::now().date_naive())
    }

    fn superseded(&self, req: u64) -> bool {
        self.latest_req
            .as_ref()
            .is_some_and(|l| l.load(AtomicOrdering::SeqCst) != req)
    }
}

fn explain(store: &Store, state: &mut WorkerState, id: &str) -> Result<ExplainView, String> {
    if state.dataset.is_none() {
        let n = store.transaction_rowid_max().map_err(|e| e.to_string())?;
        if n > EXPLAIN_MAX_TRANSACTIONS {
            return Err(format!(
                "this cache has {n} transactions: run `tierdesk explain {id}` for the derivation"
            ));
        }
        state.dataset = Some(store.load_dataset().map_err(|e| e.to_string())?);
    }
    let ds = state.dataset.as_ref().ok_or("no program")?;
    let e = crate::plan::explain(ds, id).ok_or_else(|| format!("{id} is not in the program"))?;
    let mut lines: Vec<(String, String, Option<Decimal>, Option<Decimal>)> = Vec::new();
    for l in &e.lines {
        let key = (
            l.line.role.as_str().to_string(),
            l.line.payee_partner_id.clone(),
        );
        match lines
            .iter_mut()
            .find(|x| (x.0.as_str(), x.1.as_str()) == (key.0.as_str(), key.1.as_str()))
        {
            Some(x) => x.2 = Some(x.2.unwrap_or_default() + l.line.amount),
            None => lines.push((key.0, key.1, Some(l.line.amount), None)),
        }
    }
    for l in &e.prm_lines {
        let key = (l.role.as_str().to_string(), l.payee_partner_id.clone());
        match lines
            .iter_mut()
            .find(|x| (x.0.as_str(), x.1.as_str()) == (key.0.as_str(), key.1.as_str()))
        {
            Some(x) => x.3 = Some(x.3.unwrap_or_default() + l.amount),
            None => lines.push((key.0, key.1, None, Some(l.amount))),
        }
    }
    Ok(ExplainView {
        currency: e.currency.clone(),
        matches: e.variance.is_none(),
        lines,
        text: e.to_string(),
    })
}

/// Who acts and under which policy (what the worker needs for workflow commands).
#[derive(Debug, Clone)]
pub struct Env {
    pub user: String,
    pub role: Role,
    pub config: Config,
}

/// Rows of a search's first page sent ahead of the rest (a screenful and some), so the
/// results show as soon as they are found.
pub const SEARCH_FIRST: usize = 60;

/// Runs one effect, handing each message to `emit` as it is ready: a search's first
/// page arrives in two parts (the first screenful, then the rest).
pub fn execute_stream(
    store: &mut Store,
    env: &Env,
    state: &mut WorkerState,
    e: Effect,
    emit: &mut dyn FnMut(Msg) -> bool,
) {
    if let Effect::LoadQueue {
        req,
        filter,
        sort,
        cursor,
        dir,
        limit,
        mode,
    } = &e
    {
        if e.is_search() && state.search.is_some() {
            search_pages(
                store,
                state,
                *req,
                filter,
                *sort,
                cursor.as_ref(),
                *dir,
                *limit,
                *mode,
                emit,
            );
            return;
        }
    }
    emit(execute(store, env, state, e));
}

#[allow(clippy::too_many_arguments)]
fn search_pages(
    store: &Store,
    state: &mut WorkerState,
    req: u64,
    filter: &QueueFilter,
    sort: QueueOrder,
    cursor: Option<&QueueCursor>,
    dir: PageDir,
    limit: usize,
    mode: PageMode,
    emit: &mut dyn FnMut(Msg) -> bool,
) {
    let empty = |mode| Msg::Queue {
        req,
        mode,
        rows: Vec::new(),
        limit,
        more: false,
    };
    // The UI has moved on: an empty answer to a request it will ignore.
    if state.superseded(req) {
        emit(empty(mode));
        return;
    }
    let latest = state.latest_req.clone();
    let cancelled = move || {
        latest
            .as_ref()
            .is_some_and(|l| l.load(AtomicOrdering::SeqCst) != req)
    };
    let Some(ix) = state.search.as_mut() else {
        emit(empty(mode));
        return;
    };
    let split = matches!(mode, PageMode::Replace(Select::First))
        && cursor.is_none()
        && dir == PageDir::After
        && limit > SEARCH_FIRST;
    let first = if split { SEARCH_FIRST } else { limit };
    let rows = match ix.page(store, filter, sort, cursor, dir, first, &cancelled) {
        Ok(rows) => rows,
        Err(SearchError::Cancelled) => {
            emit(empty(mode));
            return;
        }
        Err(SearchError::Store(err)) => {
            emit(Msg::Error(format!("search: {err}")));
            return;
        }
    };
    let more = split && rows.len() >= first;
    let last = rows.last().map(QueueRow::cursor);
    if !emit(Msg::Queue {
        req,
        mode,
        rows,
        limit: first,
        more,
    }) || !more
    {
        return;
    }
    let rest = limit - first;
    let msg = match ix.page(
        store,
        filter,
        sort,
        last.as_ref(),
        PageDir::After,
        rest,
        &cancelled,
    ) {
        Ok(rows) => Msg::Queue {
            req,
            mode: PageMode::Append,
            rows,
            limit: rest,
            more: false,
        },
        // Superseded: end the stream (ignored by the UI, which asked for something else).
        Err(SearchError::Cancelled) => Msg::Queue {
            req,
            mode: PageMode::Append,
            rows: Vec::new(),
            limit: rest,
            more: false,
        },
        Err(SearchError::Store(err)) => Msg::Error(format!("search: {err}")),
    };
    emit(msg);
}

/// Runs one effect against `store` (a search page in one message).
pub fn execute(store: &mut Store, env: &Env, state: &mut WorkerState, e: Effect) -> Msg {
    if let Effect::LoadExplain(id) = &e {
        return Msg::Explain(id.clone(), explain(store, state, id));
    }
    if e == Effect::LoadForecast {
        return Msg::Forecast(load_forecast(store).map(Box::new));
    }
    if let Effect::Ask { question, partner } = &e {
        let result = super::ask::answer(
            store,
            &mut state.ask,
            question,
            partner.as_deref(),
            env.config.assistant.as_ref(),
        );
        return Msg::Answer {
            question: question.clone(),
            partner: partner.clone(),
            result: result.map(Box::new),
        };
    }
    if e == Effect::LoadDisputes {
        let sla = env.config.workbench.dispute_sla_days;
        return Msg::Disputes(super::disputes::load(store, state.today(), sla).map(Box::new));
    }
    if e == Effect::BuildSearchIndex {
        // Never cancelled: searches that arrive meanwhile wait for it.
        return match SearchIndex::build(store, &|| false) {
            Ok(Some(ix)) => {
                let m = Msg::SearchIndex {
                    entries: ix.len(),
                    millis: ix.built_in.as_millis() as u64,
                };
                state.search = Some(ix);
                m
            }
            Ok(None) => Msg::Error("search index: cancelled".into()),
            Err(err) => Msg::Error(format!("search index: {err}")),
        };
    }
    let msg = match run(store, env, e) {
        Ok(m) => m,
        Err(err) => Msg::Error(format!("{err:#}")),
    };
    // This connection wrote (the data version only moves for other connections'
    // writes): answers are read afresh.
    if matches!(msg, Msg::Done { .. }) {
        state.ask = None;
    }
    msg
}

fn run(store: &mut Store, env: &Env, e: Effect) -> anyhow::Result<Msg> {
    Ok(match e {
        Effect::LoadProgram => {
            let (tiers, regions) = store.filter_choices()?;
            Msg::Program(store.program_info()?, tiers, regions)
        }
        Effect::LoadQueue {
            req,
            filter,
            sort,
            cursor,
            dir,
            limit,
            mode,
        } => {
            let rows = store.queue_page(&filter, sort, cursor.as_ref(), dir, limit)?;
            Msg::Queue {
                req,
                mode,
                rows,
                limit,
                more: false,
            }
        }
        Effect::LoadCounters => Msg::Counters(store.queue_counters()?),
        Effect::LoadStatus => Msg::Status(store.sync_status()?),
        Effect::LoadDetail(id) => {
            let d = store.record_detail(&id)?;
            Msg::Detail(id, d.map(Box::new))
        }
        Effect::LoadSignoff => Msg::Signoff(store.signoff_list(2000)?),
        Effect::LoadExplain(id) => Msg::Explain(id, Err("not loaded".into())),
        Effect::Decide {
            ids,
            decision,
            reason,
        } => done(workflow_decide(store, env, &ids, &decision, &reason)),
        Effect::Signoff {
            ids,
            approve,
            reason,
        } => done(workflow_signoff(store, env, &ids, approve, &reason)),
        Effect::Undo(id) => done(workflow_undo(store, env, &id)),
        Effect::UndoBatch(ids) => done(workflow_undo_many(store, env, &ids)),
        Effect::LoadForecast => Msg::Forecast(Err("not loaded".into())),
        Effect::BuildSearchIndex => Msg::Error("search index: not built here".into()),
        Effect::CheckDataVersion => Msg::DataVersion(store.data_version()?),
        Effect::Copy(_) => Msg::Error("copying needs the interactive workbench".into()),
        Effect::ExportCsv { filter, sort } => done(super::export::queue_csv(store, &filter, sort)),
        Effect::LoadPolicy => Msg::Policy(super::policy::load(store, &env.config).map(Box::new)),
        Effect::PolicyRollback(id) => done(super::policy::rollback(store, env, &id)),
        Effect::RunPolicy => {
            Msg::Error("the automation worker runs in the interactive workbench".into())
        }
        Effect::LoadOutbox => Msg::Outbox(super::outbox::load(store, 5000).map(Box::new)),
        Effect::LoadDisputes => Msg::Error("disputes: loaded by the worker".into()),
        Effect::Ask { .. } => Msg::Error("ask: answered by the worker".into()),
        Effect::LoadPayouts => Msg::Payouts(super::payouts::load(store).map(Box::new)),
        Effect::LoadPayoutPayees(id) => {
            let r = super::payouts::load_payees(store, &id);
            Msg::PayoutPayees(id, r)
        }
        Effect::ApproveRun(id) => done(super::payouts::approve(store, env, &id)),
        Effect::ReleaseHold { run_id, partner_id } => {
            done(super::payouts::release(store, env, &run_id, &partner_id))
        }
        Effect::SyncNow => {
            Msg::SyncUnavailable("background sync runs in the interactive workbench".into())
        }
        Effect::LoadViews => views_msg(store, env, None, None, true)?,
        Effect::LoadPlan => Msg::Plan(super::plan::load(store).map(Box::new)),
        Effect::PlanWhatIf(changes) => {
            let r = super::plan::run_whatif(store, &changes).map(Box::new);
            Msg::PlanWhatIf(changes, r)
        }
        Effect::SaveView(v) => {
            store.save_view(&env.user, &v)?;
            let note = format!("view {} saved", crate::text::sanitize(&v.name));
            views_msg(store, env, Some((true, note)), None, false)?
        }
        Effect::DeleteView(name) => {
            let n = crate::text::sanitize(&name).into_owned();
            let note = if store.delete_view(&env.user, &name)? {
                (true, format!("view {n} deleted"))
            } else {
                (false, format!("no view named {n}"))
            };
            views_msg(store, env, Some(note), None, false)?
        }
        Effect::ApplyView(name) => match store.view(&env.user, &name)? {
            Some(v) => views_msg(store, env, None, Some(Box::new(v)), false)?,
            None => {
                let names: Vec<String> = store
                    .views(&env.user)?
                    .into_iter()
                    .map(|v| v.name)
                    .collect();
                let note = format!(
                    "no view named {}{}",
                    crate::text::sanitize(&name),
                    if names.is_empty() {
                        " (save one with :view save NAME)".to_string()
                    } else {
                        format!(" (saved: {})", crate::text::sanitize(&names.join(", ")))
                    }
                );
                views_msg(store, env, Some((false, note)), None, false)?
            }
        },
        Effect::SaveColumns(hidden) => {
            store.set_hidden_columns(&env.user, &hidden)?;
            views_msg(store, env, None, None, false)?
        }
    })
}

/// The person's views (and, with `layout`, the columns they chose last).
fn views_msg(
    store: &Store,
    env: &Env,
    note: Option<(bool, String)>,
    apply: Option<Box<crate::store::views::SavedView>>,
    layout: bool,
) -> Result<Msg, crate::store::StoreError> {
    Ok(Msg::Views {
        hidden: if layout {
            store.hidden_columns(&env.user)?
        } else {
            None
        },
        views: store.views(&env.user)?,
        note,
        apply,
    })
}

fn done(r: Result<String, String>) -> Msg {
    match r {
        Ok(text) => Msg::Done { ok: true, text },
        Err(text) => Msg::Done { ok: false, text },
    }
}

fn actor(env: &Env) -> (Policy, Actor) {
    (
        Policy::from_config(&env.config),
        Actor::new(env.user.clone(), env.role),
    )
}

fn states(v: &[CaseState]) -> String {
    let mut names: Vec<&str> = v.iter().map(|s| s.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    names.join(", ")
}

/// The one place workbench decisions reach the workflow (the only way state changes).
fn workflow_decide(
    store: &mut Store,
    env: &Env,
    ids: &[String],
    decision: &Decision,
    reason: &str,
) -> Result<String, String> {
    let (policy, actor) = actor(env);
    let cmd = match decision {
        Decision::Approve => Command::Approve,
        Decision::Override(amount) => Command::Override { amount: *amount },
        Decision::Dismiss => Command::Dismiss,
        Decision::Escalate => Command::Escalate,
        Decision::RequestDocuments => Command::RequestDocuments,
    };
    let result = match ids {
        [one] => workflow::decide(store, &policy, &actor, one, cmd, reason).map(|s| vec![s]),
        many => workflow::decide_batch(store, &policy, &actor, many, cmd, reason),
    };
    match result {
        Ok(st) if ids.len() == 1 => Ok(format!(
            "{}: {} → {}",
            ids[0],
            decision.label(),
            states(&st)
        )),
        Ok(st) => Ok(format!(
            "{} records: {} → {}",
            ids.len(),
            decision.label(),
            states(&st)
        )),
        Err(e) => Err(format!("{}: {e}", decision.label())),
    }
}

fn workflow_signoff(
    store: &mut Store,
    env: &Env,
    ids: &[String],
    approve: bool,
    reason: &str,
) -> Result<String, String> {
    let (policy, actor) = actor(env);
    let cmd = if approve {
        SignoffCommand::Approve
    } else {
        SignoffCommand::Reject
    };
    let what = if approve { "sign off" } else { "reject" };
    let result = match ids {
        [one] => workflow::signoff(store, &policy, &actor, one, cmd, reason).map(|s| vec![s]),
        many => workflow::signoff_batch(store, &policy, &actor, many, cmd, reason),
    };
    match result {
        Ok(st) => Ok(format!("{} record(s): {what} → {}", ids.len(), states(&st))),
        Err(e) => Err(format!("{what}: {e}")),
    }
}

fn workflow_undo(store: &mut Store, env: &Env, id: &str) -> Result<String, String> {
    let (policy, actor) = actor(env);
    workflow::undo(store, &policy, &actor, id, "undone in the workbench")
        .map(|s| format!("{id}: undone → {}", s.as_str()))
        .map_err(|e| format!("undo: {e}"))
}

/// Undoes each record's latest decision on its own; says how many worked and why the
/// first that did not.
fn workflow_undo_many(store: &mut Store, env: &Env, ids: &[String]) -> Result<String, String> {
    let mut undone = 0;
    let mut failed: Vec<String> = Vec::new();
    for id in ids {
        match workflow_undo(store, env, id) {
            Ok(_) => undone += 1,
            Err(e) => failed.push(e),
        }
    }
    match failed.first() {
        None => Ok(format!("undone {undone} of {} records", ids.len())),
        Some(first) if undone > 0 => Ok(format!(
            "undone {undone} of {} records; {} could not be: {first}",
            ids.len(),
            failed.len()
        )),
        Some(first) => Err(format!("nothing undone: {first}")),
    }
}

/// The background worker: one thread, its own store connection. Detail requests are
/// coalesced (only the newest pending one runs), so fast scrolling never queues work.
pub fn spawn_worker(
    db: PathBuf,
    env: Env,
    mut state: WorkerState,
    rx: Receiver<Effect>,
    tx: Sender<Incoming>,
) {
    std::thread::spawn(move || {
        let mut store = match Store::open(&db) {
            Ok(s) => s,
            Err(e) => {
                let _ = tx.send(Incoming::Msg(Msg::Error(format!(
                    "cannot open the cache: {e}"
                ))));
                return;
            }
        };
        while let Ok(first) = rx.recv() {
            let mut batch = vec![first];
            while let Ok(more) = rx.try_recv() {
                batch.push(more);
            }
            let last_detail = batch
                .iter()
                .rposition(|e| matches!(e, Effect::LoadDetail(_)));
            let last_queue = batch.iter().rposition(|e| {
                matches!(
                    e,
                    Effect::LoadQueue {
                        mode: PageMode::Replace(_),
                        ..
                    }
                )
            });
            for (i, e) in batch.into_iter().enumerate() {
                let stale = match &e {
                    Effect::LoadDetail(_) => Some(i) != last_detail,
                    Effect::LoadQueue {
                        mode: PageMode::Replace(_),
                        ..
                    } => Some(i) != last_queue,
                    _ => false,
                };
                if stale {
                    continue;
                }
                let mut alive = true;
                let what = e.label();
                let caught = super::guard::catch(what, || {
                    execute_stream(&mut store, &env, &mut state, e, &mut |m| {
                        alive = tx.send(Incoming::Msg(m)).is_ok();
                        alive
                    })
                });
                if let Err(why) = caught {
                    alive = tx.send(Incoming::Msg(Msg::Error(why))).is_ok();
                }
                if !alive {
                    return;
                }
            }
        }
    });
}
