//! Snapshots of every workbench view at 80x24 and 160x48, in the default (dark) theme and
//! the NO_COLOR monochrome theme. Each snapshot holds the screen text and a style mask
//! (`C` coloured, `R` reversed, `B` bold, `U` underlined, `.` plain), so a theme that lost
//! its emphasis or a monochrome theme that leaked colour shows up as a diff.

use std::collections::BTreeMap;
use std::path::Path;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::{Color, Modifier};
use ratatui::Terminal;

use tierdesk::cli::workbench::settle;
use tierdesk::config::{Config, Role};
use tierdesk::store::queue::synthetic;
use tierdesk::store::Store;
use tierdesk::tui::app::{App, View};
use tierdesk::tui::effects::Env;
use tierdesk::tui::keymap::Keymap;
use tierdesk::tui::theme::Theme;

fn build_cache(path: &Path) {
    let mut s = Store::open(path).unwrap();
    synthetic::fill(
        &mut s,
        &synthetic::Options {
            transactions: 900,
            seed: 11,
            currency: "EUR".into(),
            anomaly_rate: 0.3,
        },
    )
    .unwrap();
    // A decided record with a fixed-time trail, for the Decision and Audit panes.
    s.execute_fixture_sql(
        "INSERT OR REPLACE INTO cases VALUES ((SELECT transaction_id FROM flags WHERE in_window = 1
           AND kinds <> '[]' ORDER BY score DESC, at_stake_minor DESC, transaction_id DESC LIMIT 1),
           'awaiting_signoff', '100.00', 'ana', NULL, 2, '2026-10-05T08:00:00Z');
         INSERT INTO decisions SELECT 'd-1', transaction_id, 'override', '100.00', 'Partner sent the signed order form',
           'ana', 'analyst', 'flagged', 'awaiting_signoff', 1, NULL, '2026-10-05T08:00:00Z' FROM cases
           WHERE state = 'awaiting_signoff' AND version = 2 AND proposer = 'ana' AND decided_amount = '100.00';
         INSERT INTO audit_log (at, actor, role, action, target, before, after, reason, prev_hash, hash)
           SELECT '2026-10-05T08:00:00Z', 'ana', 'analyst', 'override', transaction_id,
           '{\"state\":\"flagged\"}', '{\"state\":\"awaiting_signoff\",\"amount\":\"100.00\"}',
           'Partner sent the signed order form', '0000', 'abcdef0123456789abcdef' FROM decisions WHERE decision_id = 'd-1';",
    )
    .unwrap();
}

struct Harness {
    app: App,
    store: Store,
    env: Env,
    term: Terminal<TestBackend>,
}

impl Harness {
    fn new(db: &Path, w: u16, h: u16, theme: Theme, role: Role) -> Harness {
        let keymap = Keymap::new(&BTreeMap::new()).unwrap();
        let app = App::new("bob".into(), role, Config::default(), theme, keymap);
        app.size.set((w, h));
        let env = Env {
            user: "bob".into(),
            role,
            config: Config::default(),
        };
        let mut h = Harness {
            app,
            store: Store::open(db).unwrap(),
            env,
            term: Terminal::new(TestBackend::new(w, h)).unwrap(),
        };
        let fx = h.app.start();
        settle(&mut h.app, &mut h.store, &h.env, fx);
        h.draw();
        h
    }

    fn draw(&mut self) {
        let app = &self.app;
        self.term.draw(|f| tierdesk::tui::ui::draw(f, app)).unwrap();
    }

    fn key(&mut self, code: KeyCode) {
        self.key_mod(code, KeyModifiers::NONE);
    }

    fn key_mod(&mut self, code: KeyCode, m: KeyModifiers) {
        let fx = self.app.on_key(KeyEvent::new(code, m));
        settle(&mut self.app, &mut self.store, &self.env, fx);
        // Draw twice: the first draw records the table size used for paging.
        self.draw();
        self.draw();
    }

    fn keys(&mut self, s: &str) {
        for c in s.chars() {
            self.key(KeyCode::Char(c));
        }
    }

    fn screen(&self) -> String {
        render(self.term.backend().buffer())
    }
}

fn render(buf: &Buffer) -> String {
    let area = buf.area;
    let mut text = String::new();
    let mut mask = String::new();
    for y in 0..area.height {
        let mut skip = 0usize;
        for x in 0..area.width {
            let c = &buf[(x, y)];
            if skip > 0 {
                skip -= 1;
            } else {
                text.push_str(c.symbol());
                skip = unicode_width::UnicodeWidthStr::width(c.symbol()).saturating_sub(1);
            }
            let coloured = c.fg != Color::Reset || c.bg != Color::Reset;
            let m = c.modifier;
            mask.push(if coloured {
                'C'
            } else if m.contains(Modifier::REVERSED) {
                'R'
            } else if m.contains(Modifier::BOLD) {
                'B'
            } else if m.contains(Modifier::UNDERLINED) {
                'U'
            } else {
                '.'
            });
        }
        text.push('\n');
        mask.push('\n');
    }
    format!("{text}\n--- style mask ---\n{mask}")
}

/// Every view, driven by keys as a user would.
fn views(db: &Path, w: u16, h: u16, theme: &Theme, tag: &str) {
    let snap = |name: &str, s: String| {
        insta::assert_snapshot!(format!("{tag}_{w}x{h}_{name}"), s);
    };
    let mut hs = Harness::new(db, w, h, theme.clone(), Role::Analyst);
    assert!(!hs.app.queue.rows.is_empty(), "fixture queue is empty");
    snap("queue", hs.screen());
    // Drill into the top record and walk every pane.
    hs.key(KeyCode::Enter);
    assert_eq!(hs.app.view, View::Record);
    snap("detail", hs.screen());
    for name in ["reasoning", "commission", "decision", "audit"] {
        hs.key(KeyCode::Tab);
        snap(name, hs.screen());
    }
    hs.key(KeyCode::Esc);
    // A duplicate's side-by-side comparison: the first duplicate that names its original.
    let dups: Vec<usize> = hs
        .app
        .queue
        .rows
        .iter()
        .enumerate()
        .filter(|(_, r)| r.kinds.iter().any(|k| k == "duplicate"))
        .map(|(i, _)| i)
        .collect();
    let mut found = false;
    for i in dups {
        hs.app.queue.sel = i;
        hs.key(KeyCode::Enter);
        if hs.app.detail.as_ref().is_some_and(|d| d.original.is_some()) {
            found = true;
            break;
        }
        hs.key(KeyCode::Esc);
    }
    assert!(found, "fixture has no duplicate with its original");
    while hs.app.pane != tierdesk::tui::app::Pane::Detail {
        hs.key(KeyCode::Tab);
    }
    for _ in 0..40 {
        hs.key(KeyCode::Down);
    }
    snap("duplicate", hs.screen());
    hs.key(KeyCode::Esc);
    hs.key(KeyCode::Char('g'));
    hs.key(KeyCode::Char('?'));
    snap("help", hs.screen());
    hs.key(KeyCode::Esc);
    hs.key(KeyCode::Char(':'));
    hs.keys("sign");
    snap("palette", hs.screen());
    hs.key(KeyCode::Esc);
    hs.key(KeyCode::Char('/'));
    hs.keys("wonka");
    snap("search", hs.screen());
    hs.key(KeyCode::Enter);
    hs.key(KeyCode::Char('F'));
    hs.key(KeyCode::Char('f'));
    hs.key(KeyCode::Right);
    hs.key(KeyCode::Right);
    hs.key(KeyCode::Right);
    hs.key(KeyCode::Right);
    snap("filter", hs.screen());
    hs.key(KeyCode::Enter);
    snap("filtered", hs.screen());
    hs.key(KeyCode::Char('F'));
    hs.key(KeyCode::Char('j'));
    hs.key(KeyCode::Char('o'));
    hs.key_mod(KeyCode::Char('u'), KeyModifiers::CONTROL);
    hs.keys("1250.00");
    hs.key(KeyCode::Tab);
    hs.keys("Partner re-signed at the lower price");
    snap("override", hs.screen());
    hs.key(KeyCode::Esc);
    hs.key(KeyCode::Char('2'));
    snap("signoff", hs.screen());
    hs.key(KeyCode::Char('3'));
    assert_eq!(hs.app.view, View::Forecast);
    assert!(
        matches!(hs.app.forecast.data, Some(Ok(_))),
        "forecast not computed: {:?}",
        hs.app.forecast.data.as_ref().map(|r| r.as_ref().err())
    );
    snap("forecast", hs.screen());
    hs.key(KeyCode::Char('G'));
    snap("forecast_end", hs.screen());

    let mut small = Harness::new(db, 50, 12, theme.clone(), Role::Manager);
    small.draw();
    if w == 80 {
        snap("too_small", small.screen());
    }
    let mut mgr = Harness::new(db, w, h, theme.clone(), Role::Manager);
    mgr.key(KeyCode::Char('2'));
    mgr.key(KeyCode::Char(' '));
    snap("signoff_manager", mgr.screen());
}

#[test]
fn every_view_at_both_sizes_in_dark_and_no_color() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cache.db");
    build_cache(&db);
    let dark = Theme::load("dark", None).unwrap();
    let mono = Theme::select(Some("dark"), true, None).unwrap();
    for (w, h) in [(80, 24), (160, 48)] {
        views(&db, w, h, &dark, "dark");
        views(&db, w, h, &mono, "nocolor");
    }
}

#[test]
fn no_color_frames_carry_no_colour_but_keep_emphasis() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cache.db");
    build_cache(&db);
    let mono = Theme::select(None, true, None).unwrap();
    let mut h = Harness::new(&db, 80, 24, mono, Role::Analyst);
    let buf = h.term.backend().buffer().clone();
    let mut reversed = 0;
    for c in buf.content() {
        assert_eq!(c.fg, Color::Reset, "colour leaked into NO_COLOR: {c:?}");
        assert_eq!(c.bg, Color::Reset, "colour leaked into NO_COLOR: {c:?}");
        if c.modifier.contains(Modifier::REVERSED) {
            reversed += 1;
        }
    }
    assert!(
        reversed >= 40,
        "the selection is not shown in reverse video"
    );
    h.key(KeyCode::Char('j'));
}

#[test]
fn queue_paging_walks_past_the_loaded_window_and_back() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cache.db");
    let mut s = Store::open(&db).unwrap();
    let queued = synthetic::fill(
        &mut s,
        &synthetic::Options {
            transactions: 5_000,
            seed: 3,
            currency: "USD".into(),
            anomaly_rate: 1.0,
        },
    )
    .unwrap();
    assert!(
        queued > tierdesk::tui::app::WINDOW_MAX,
        "fixture too small: {queued}"
    );
    let mut h = Harness::new(&db, 80, 24, Theme::monochrome(), Role::Analyst);
    let mut seen = vec![h.app.queue.current().unwrap().transaction_id.clone()];
    for _ in 0..queued + 5 {
        h.key(KeyCode::Char('j'));
        let id = h.app.queue.current().unwrap().transaction_id.clone();
        if seen.last() != Some(&id) {
            seen.push(id);
        }
        assert!(h.app.queue.rows.len() <= tierdesk::tui::app::WINDOW_MAX);
    }
    // Every queued row was visited exactly once, in order, through keyset pages.
    assert_eq!(seen.len(), queued);
    let mut uniq = seen.clone();
    uniq.sort();
    uniq.dedup();
    assert_eq!(uniq.len(), queued);
    // G lands on the last row, g on the first; PageUp from the end walks back.
    h.key(KeyCode::Char('g'));
    assert_eq!(h.app.queue.current().unwrap().transaction_id, seen[0]);
    h.key(KeyCode::Char('G'));
    assert_eq!(
        &h.app.queue.current().unwrap().transaction_id,
        seen.last().unwrap()
    );
    for _ in 0..(queued / 19 + 2) {
        h.key(KeyCode::PageUp);
    }
    assert_eq!(h.app.queue.current().unwrap().transaction_id, seen[0]);
    // Header counters agree with the queue.
    let total = h
        .app
        .counters
        .iter()
        .find(|(n, _)| n == "queue:total")
        .map(|(_, v)| *v)
        .unwrap();
    assert_eq!(total as usize, queued);
}

#[test]
fn help_and_readme_list_every_action() {
    let keymap = Keymap::new(&BTreeMap::new()).unwrap();
    let app = App::new(
        "bob".into(),
        Role::Analyst,
        Config::default(),
        Theme::monochrome(),
        keymap,
    );
    let help: String = tierdesk::tui::ui::help_text(&app, 200);
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    for a in tierdesk::tui::action::Action::ALL {
        assert!(help.contains(a.description()), "help lacks {a:?}");
        assert!(
            help.contains(&app.keymap.label(a)),
            "help lacks the keys of {a:?}"
        );
        let row = format!("| `{}` | {} |", a.name(), a.description());
        assert!(
            readme
                .lines()
                .any(|l| l.starts_with("| `") && l.ends_with(&row)),
            "README's key table lacks the row of {} (`{row}`)",
            a.name()
        );
    }
}

/// The v2 sample with a payout run prepared by `mia` and three disputes opened at fixed
/// times (one long open, one recent, one withdrawn).
fn build_money_cache(path: &Path) {
    use tierdesk::workflow::{Actor, Policy};
    let mut s = Store::open(path).unwrap();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sample-program-v2");
    tierdesk::import::import_dir(&mut s, &dir, &mut |_| {}).unwrap();
    let mia = Actor::new("mia", Role::Manager);
    let run_date = chrono::NaiveDate::from_ymd_opt(2026, 9, 30).unwrap();
    tierdesk::payout::prepare(
        &mut s,
        &mia,
        "2026-Q3",
        run_date,
        30,
        None,
        "2026-10-02T09:00:00Z",
    )
    .unwrap();
    let ana = Actor::new("ana", Role::Analyst);
    let mut ids = Vec::new();
    for (tx, partner, reason, claimed) in [
        ("T00000001", "R00101", "incorrect_amount", "1250.00"),
        ("T00000002", "R00095", "missing_credit", "310.55"),
        ("T00000003", "", "wrong_tier", "99.00"),
    ] {
        let partner = if partner.is_empty() {
            s.wf()
                .get_transaction(tx)
                .unwrap()
                .unwrap()
                .partner_id
                .clone()
        } else {
            partner.to_string()
        };
        let id = tierdesk::dispute::open(
            &mut s,
            &ana,
            tierdesk::dispute::NewDispute {
                partner_id: partner,
                transaction_id: tx.into(),
                reason_code: reason.into(),
                claimed: claimed.parse().unwrap(),
                note: "partner says the line is short".into(),
            },
        )
        .unwrap();
        ids.push(id);
    }
    tierdesk::dispute::move_to(
        &mut s,
        &Policy::from_config(&Config::default()),
        &ana,
        &ids[2],
        tierdesk::dispute::State::Withdrawn,
        None,
        "partner withdrew it",
    )
    .unwrap();
    s.execute_fixture_sql(&format!(
        "UPDATE disputes SET opened_at = '2026-10-01T09:00:00Z' WHERE dispute_id = '{}';
         UPDATE disputes SET opened_at = '2026-10-15T09:00:00Z' WHERE dispute_id = '{}';
         UPDATE disputes SET opened_at = '2026-09-20T09:00:00Z' WHERE dispute_id = '{}';",
        ids[0], ids[1], ids[2]
    ))
    .unwrap();
}

/// The money views (Disputes, Payouts with the payees focused, Ask and its answer) at
/// 80x24 and 120x40, as of a fixed day.
#[test]
fn money_views_at_80x24_and_120x40() {
    use tierdesk::cli::workbench::settle_with;
    use tierdesk::tui::effects::WorkerState;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cache.db");
    build_money_cache(&db);
    for (w, h) in [(80u16, 24u16), (120, 40)] {
        let keymap = Keymap::new(&BTreeMap::new()).unwrap();
        let mut app = App::new(
            "max".into(),
            Role::Manager,
            Config::default(),
            Theme::load("dark", None).unwrap(),
            keymap,
        );
        app.size.set((w, h));
        let env = Env {
            user: "max".into(),
            role: Role::Manager,
            config: Config::default(),
        };
        let mut store = Store::open(&db).unwrap();
        let mut state = WorkerState::default();
        state.today = chrono::NaiveDate::from_ymd_opt(2026, 10, 20);
        let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
        let fx = app.start();
        settle_with(&mut app, &mut store, &env, &mut state, fx);
        let mut press = |app: &mut App, c: KeyCode| {
            let fx = app.on_key(KeyEvent::new(c, KeyModifiers::NONE));
            settle_with(app, &mut store, &env, &mut state, fx);
            term.draw(|f| tierdesk::tui::ui::draw(f, app)).unwrap();
            term.draw(|f| tierdesk::tui::ui::draw(f, app)).unwrap();
            render(term.backend().buffer())
        };
        let screen = press(&mut app, KeyCode::Char('7'));
        assert_eq!(app.view, View::Disputes);
        assert!(screen.contains("overdue 9d"), "{screen}");
        insta::assert_snapshot!(format!("money_{w}x{h}_disputes"), screen);
        let screen = press(&mut app, KeyCode::Char('6'));
        assert_eq!(app.view, View::Payouts);
        assert!(screen.contains("PR-2026-Q3-001"), "{screen}");
        insta::assert_snapshot!(format!("money_{w}x{h}_payouts"), screen);
        press(&mut app, KeyCode::Tab);
        for _ in 0..4 {
            press(&mut app, KeyCode::Char('j'));
        }
        // The sixth payee is held: its holds in full on the last line.
        let screen = press(&mut app, KeyCode::Char('j'));
        assert!(screen.contains("D0006: bank_changed_recently"), "{screen}");
        insta::assert_snapshot!(format!("money_{w}x{h}_payees"), screen);
        // Ask from a disputed record: the prompt, then the answer with its citations.
        press(&mut app, KeyCode::Char('7'));
        press(&mut app, KeyCode::Char('j'));
        press(&mut app, KeyCode::Enter);
        let screen = press(&mut app, KeyCode::Char('A'));
        insta::assert_snapshot!(format!("money_{w}x{h}_ask"), screen);
        let screen = press(&mut app, KeyCode::Enter);
        insta::assert_snapshot!(format!("money_{w}x{h}_answer"), screen);
        press(&mut app, KeyCode::Esc);
        let screen = press(&mut app, KeyCode::Char('8'));
        assert_eq!(app.view, View::Plan);
        assert!(screen.contains(" Plan · "), "{screen}");
        insta::assert_snapshot!(format!("money_{w}x{h}_plan"), screen);
    }
}
