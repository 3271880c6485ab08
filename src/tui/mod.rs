//! The workbench (terminal UI): ratatui + crossterm.
//!
//! Shape (see `docs/architecture.md`): one [`action::Action`] enum drives the
//! keymap, the `?` help and the `:` palette; [`app::App::update`] is pure and returns
//! [`effects::Effect`]s, run on a worker thread with its own store connection; results
//! come back as messages on the same channel as terminal input, so the render loop never
//! waits on IO. Frames are drawn only when something changed, at most every ~16 ms.
//! A [`TerminalGuard`] restores the terminal on drop, on panic and on SIGTERM/SIGINT.

pub mod action;
pub mod app;
pub mod ask;
pub mod automation;
pub mod disputes;
pub mod effects;
pub mod export;
pub mod flow;
pub mod guard;
pub mod keymap;
pub mod outbox;
pub mod palette;
pub mod payouts;
pub mod plan;
pub mod policy;
pub mod search;
pub mod sync;
pub mod theme;
pub mod ui;
pub mod views;

use std::io::{stdout, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossterm::event::{self, DisableMouseCapture, EnableMouseCapture, Event, KeyEventKind};
use crossterm::execute;
use crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;

use app::App;
use effects::{Effect, Env, Incoming, WorkerState};
use keymap::Keymap;
use theme::Theme;

/// Frame budget: at most one draw per this interval.
pub const FRAME: Duration = Duration::from_millis(16);

/// Restores the terminal (raw mode off, main screen, mouse off, cursor shown).
fn restore_terminal() {
    let _ = disable_raw_mode();
    let mut out = stdout();
    let _ = execute!(
        out,
        DisableMouseCapture,
        LeaveAlternateScreen,
        crossterm::cursor::Show
    );
    let _ = out.flush();
}

/// Raw mode + alternate screen + mouse while alive; `Drop` puts everything back.
pub struct TerminalGuard {
    _private: (),
}

impl TerminalGuard {
    pub fn enter() -> anyhow::Result<TerminalGuard> {
        // Every panic is logged. The render thread's: restore first, then print the
        // panic, so the message is readable. Another thread's: the screen stays as it is
        // (its job turns the panic into a message, see `guard`).
        guard::mark_render_thread();
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            guard::hook(info, restore_terminal, || previous(info));
        }));
        enable_raw_mode()?;
        let guard = TerminalGuard { _private: () };
        execute!(stdout(), EnterAlternateScreen, EnableMouseCapture)?;
        Ok(guard)
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal();
    }
}

/// What the workbench is opened with (the CLI builds it from its context).
#[derive(Debug, Clone)]
pub struct Options {
    pub user: String,
    pub role: crate::config::Role,
    pub config: crate::config::Config,
    /// The theme asked for on the command line (`--theme`), if any.
    pub theme: Option<String>,
    /// Where user themes live (`themes/` in the config folder).
    pub config_dir: std::path::PathBuf,
}

/// Loads the theme and keymap the options ask for.
pub fn theme_and_keys(ctx: &Options) -> anyhow::Result<(Theme, Keymap)> {
    let theme = Theme::select(
        ctx.theme.as_deref(),
        theme::no_color_env(),
        Some(&ctx.config_dir.join("themes")),
    )?;
    let keymap = Keymap::new(&ctx.config.keys)?;
    Ok((theme, keymap))
}

/// A new App for the context (no IO beyond theme files).
pub fn new_app(ctx: &Options, theme: Theme, keymap: Keymap) -> App {
    App::new(
        ctx.user.clone(),
        ctx.role,
        ctx.config.clone(),
        theme,
        keymap,
    )
}

fn spawn_signals(tx: Sender<Incoming>, stop: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async move {
            #[cfg(unix)]
            {
                use tokio::signal::unix::{signal, SignalKind};
                let (Ok(mut term), Ok(mut hup), Ok(mut int)) = (
                    signal(SignalKind::terminate()),
                    signal(SignalKind::hangup()),
                    signal(SignalKind::interrupt()),
                ) else {
                    return;
                };
                tokio::select! {
                    _ = term.recv() => {}
                    _ = hup.recv() => {}
                    _ = int.recv() => {}
                }
            }
            #[cfg(not(unix))]
            {
                let _ = tokio::signal::ctrl_c().await;
            }
            stop.store(true, Ordering::SeqCst);
            let _ = tx.send(Incoming::Signal);
        });
    });
}

fn spawn_input(tx: Sender<Incoming>, stop: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        while !stop.load(Ordering::SeqCst) {
            match event::poll(Duration::from_millis(100)) {
                Ok(true) => match event::read() {
                    Ok(ev) => {
                        if tx.send(Incoming::Input(ev)).is_err() {
                            return;
                        }
                    }
                    Err(_) => return,
                },
                Ok(false) => {}
                Err(_) => return,
            }
        }
    });
}

/// Applies one incoming event to the app; returns the effects to run.
pub fn handle(app: &mut App, inc: Incoming) -> Vec<Effect> {
    match inc {
        Incoming::Input(Event::Key(k)) if k.kind == KeyEventKind::Press => app.on_key(k),
        Incoming::Input(Event::Mouse(m)) => app.on_mouse(m),
        Incoming::Input(Event::Resize(..)) => {
            app.dirty = true;
            vec![]
        }
        Incoming::Input(_) => vec![],
        Incoming::Msg(m) => app.on_msg(m),
        Incoming::Signal => {
            app.quit = true;
            vec![]
        }
    }
}

/// Opens the workbench on the cache at `db` until the user quits.
pub fn run(ctx: &Options, db: &Path) -> anyhow::Result<()> {
    let (theme, keymap) = theme_and_keys(ctx)?;
    // Fail before touching the terminal if the cache cannot be opened.
    drop(crate::store::Store::open(db)?);
    let mut app = new_app(ctx, theme, keymap);
    let (fx_tx, fx_rx) = mpsc::channel::<Effect>();
    let (in_tx, in_rx) = mpsc::channel::<Incoming>();
    let env = Env {
        user: ctx.user.clone(),
        role: ctx.role,
        config: ctx.config.clone(),
    };
    effects::spawn_worker(
        db.to_path_buf(),
        env.clone(),
        WorkerState::default(),
        fx_rx,
        in_tx.clone(),
    );
    // Searches run on their own worker (own connection, the in-memory index), so a
    // search never waits behind a slow query and a newer one cancels an older one.
    let latest_req = Arc::new(AtomicU64::new(0));
    let (search_tx, search_rx) = mpsc::channel::<Effect>();
    effects::spawn_worker(
        db.to_path_buf(),
        env,
        WorkerState::for_search(latest_req.clone()),
        search_rx,
        in_tx.clone(),
    );
    let _ = search_tx.send(Effect::BuildSearchIndex);
    // Background sync: its own thread, connection and runtime.
    let (sync_tx, sync_rx) = mpsc::channel::<sync::SyncCmd>();
    sync::spawn(
        db.to_path_buf(),
        ctx.config.prm.clone(),
        sync::interval(),
        sync_rx,
        in_tx.clone(),
    );
    // Routing and alerts: their own thread and connection (a slow receiver never
    // holds up the screen or a decision); a first round retries waiting alerts.
    let (auto_tx, auto_rx) = mpsc::channel::<()>();
    automation::spawn(db.to_path_buf(), ctx.config.clone(), auto_rx, in_tx.clone());
    let _ = auto_tx.send(());
    let dispatch = |e: Effect| {
        if let Effect::LoadQueue { req, .. } = &e {
            latest_req.store(*req, Ordering::SeqCst);
        }
        let _ = match e {
            Effect::Copy(text) => {
                export::osc52(&mut stdout(), &text);
                Ok(())
            }
            Effect::SyncNow => sync_tx.send(sync::SyncCmd::Now).map_err(|_| ()),
            Effect::RunPolicy => auto_tx.send(()).map_err(|_| ()),
            e if e.is_search() => search_tx.send(e).map_err(|_| ()),
            e => fx_tx.send(e).map_err(|_| ()),
        };
    };
    let stop = Arc::new(AtomicBool::new(false));
    spawn_signals(in_tx.clone(), stop.clone());

    let guard = TerminalGuard::enter()?;
    let mut terminal = Terminal::new(CrosstermBackend::new(stdout()))?;
    terminal.clear()?;
    spawn_input(in_tx, stop.clone());
    for e in app.start() {
        dispatch(e);
    }
    let mut last_draw = Instant::now() - FRAME;
    let result = (|| -> anyhow::Result<()> {
        loop {
            if app.dirty && last_draw.elapsed() >= FRAME {
                terminal.draw(|f| ui::draw(f, &app))?;
                app.dirty = false;
                last_draw = Instant::now();
            }
            if app.quit || stop.load(Ordering::SeqCst) {
                return Ok(());
            }
            let wait = if app.dirty {
                FRAME.saturating_sub(last_draw.elapsed())
            } else {
                Duration::from_millis(500)
            };
            let first = match in_rx.recv_timeout(wait) {
                Ok(i) => i,
                Err(RecvTimeoutError::Timeout) => {
                    // Idle: watch the cache for writes by other processes.
                    for e in app.tick(Instant::now()) {
                        dispatch(e);
                    }
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
            };
            // Handle everything already waiting before drawing once.
            let mut next = Some(first);
            while let Some(inc) = next {
                for e in handle(&mut app, inc) {
                    dispatch(e);
                }
                next = in_rx.try_recv().ok();
            }
        }
    })();
    stop.store(true, Ordering::SeqCst);
    drop(terminal);
    drop(guard);
    result
}
