//! The workbench as a user meets it, on a real cache (synthetic program, scored flags):
//! hostile text never reaches the terminal (TestBackend) or the CLI's table; the
//! transaction id is on screen at every width; the selection's colours win; the CLI
//! queue lists the workbench's rows in the workbench's order; record paging, next /
//! previous record, confirmations before bulk steps and sign-offs.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

use tierdesk::cli::workbench::settle;
use tierdesk::config::{Config, Role};
use tierdesk::store::queue::synthetic;
use tierdesk::store::Store;
use tierdesk::tui::app::{App, Modal, View};
use tierdesk::tui::effects::Env;
use tierdesk::tui::keymap::Keymap;
use tierdesk::tui::theme::Theme;

const HOSTILE: &str = "Evil\u{1b}[2J\u{1b}[H Corp\u{1b}]0;pwned\u{7} \u{202e}exe.gnp\u{202c}";

fn build_cache(path: &Path, hostile: bool) {
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
    if hostile {
        let name = HOSTILE.replace('\'', "''");
        s.execute_fixture_sql(&format!(
            "UPDATE partners SET name = '{name}';
             UPDATE transactions SET customer_name = '{name}';"
        ))
        .unwrap();
    }
}

struct Harness {
    app: App,
    store: Store,
    env: Env,
    term: Terminal<TestBackend>,
}

impl Harness {
    fn new(db: &Path, w: u16, h: u16, theme: Theme, role: Role, user: &str) -> Harness {
        let keymap = Keymap::new(&BTreeMap::new()).unwrap();
        let app = App::new(user.into(), role, Config::default(), theme, keymap);
        app.size.set((w, h));
        let env = Env {
            user: user.into(),
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
        h.draw();
        h
    }

    fn draw(&mut self) {
        let app = &self.app;
        self.term.draw(|f| tierdesk::tui::ui::draw(f, app)).unwrap();
    }

    fn key(&mut self, code: KeyCode) {
        let fx = self.app.on_key(KeyEvent::new(code, KeyModifiers::NONE));
        settle(&mut self.app, &mut self.store, &self.env, fx);
        self.draw();
        self.draw();
    }

    fn keys(&mut self, s: &str) {
        for c in s.chars() {
            self.key(KeyCode::Char(c));
        }
    }

    fn screen(&self) -> String {
        let buf = self.term.backend().buffer();
        let mut s = String::new();
        for y in 0..buf.area.height {
            for x in 0..buf.area.width {
                s.push_str(buf[(x, y)].symbol());
            }
            s.push('\n');
        }
        s
    }

    /// Every cell's symbol: no control or bidi formatting character.
    fn assert_clean(&self, what: &str) {
        for c in self.term.backend().buffer().content() {
            assert!(
                !c.symbol().chars().any(tierdesk::text::is_unsafe),
                "{what}: unsafe character in cell {:?}",
                c.symbol()
            );
        }
    }
}

fn bin(db: &Path, home: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tierdesk"))
        .arg("--db")
        .arg(db)
        .args(args)
        .env("HOME", home)
        .env("XDG_DATA_HOME", home.join("data"))
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("TIERDESK_CONFIG", home.join("config.toml"))
        .output()
        .unwrap()
}

#[test]
fn escape_codes_in_partner_and_customer_names_never_reach_the_screen_or_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cache.db");
    build_cache(&db, true);
    for (w, h) in [(80, 24), (200, 60)] {
        let mut hs = Harness::new(
            &db,
            w,
            h,
            Theme::load("dark", None).unwrap(),
            Role::Analyst,
            "bob",
        );
        assert!(!hs.app.queue.rows.is_empty());
        assert!(
            hs.app.queue.rows[0].partner_name.contains('\u{1b}'),
            "fixture not hostile"
        );
        hs.assert_clean("queue");
        assert!(hs.screen().contains("Evil"), "the name is still shown");
        hs.key(KeyCode::Enter);
        for pane in 0..5 {
            hs.assert_clean(&format!("record pane {pane} at {w}x{h}"));
            hs.key(KeyCode::Tab);
        }
        hs.key(KeyCode::Esc);
        hs.key(KeyCode::Char('2'));
        hs.assert_clean("sign-off");
    }
    let o = bin(&db, dir.path(), &["queue", "--format", "table"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(text.contains("Evil"), "{text}");
    for c in text.chars() {
        assert!(
            c == '\n' || !tierdesk::text::is_unsafe(c),
            "queue table printed {c:?}"
        );
    }
}

/// Random hostile text (escape sequences, C0 and C1 controls, bidi overrides, zero-width
/// and combining marks, wide characters, line breaks) as partner and customer names: no
/// view of the workbench draws a control or bidi character, and nothing panics.
mod hostile_names {
    use super::*;
    use proptest::prelude::*;

    fn piece() -> impl Strategy<Value = String> {
        prop_oneof![
            "[A-Za-z ]{1,8}",
            Just("\u{1b}[2J\u{1b}[H".to_string()),
            Just("\u{1b}]0;title\u{7}".to_string()),
            Just("\u{1b}P+q\u{1b}\\".to_string()),
            (0u32..0x20).prop_map(|c| char::from_u32(c).unwrap().to_string()),
            (0x7fu32..0xa0).prop_map(|c| char::from_u32(c).unwrap().to_string()),
            prop::sample::select(vec![
                '\u{202a}', '\u{202b}', '\u{202c}', '\u{202d}', '\u{202e}', '\u{2066}', '\u{2067}',
                '\u{2068}', '\u{2069}', '\u{200e}', '\u{200f}', '\u{061c}',
            ])
            .prop_map(|c| c.to_string()),
            Just("\u{200b}\u{feff}".to_string()),
            Just("e\u{301}\u{301}\u{301}".to_string()),
            Just("株式会社🦀".to_string()),
            Just("\t\r\n".to_string()),
        ]
    }

    fn hostile() -> impl Strategy<Value = String> {
        prop::collection::vec(piece(), 1..12).prop_map(|v| v.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 12, .. ProptestConfig::default() })]
        #[test]
        fn no_view_draws_a_control_character(partner in hostile(), customer in hostile()) {
            let dir = tempfile::tempdir().unwrap();
            let db = dir.path().join("cache.db");
            build_cache(&db, false);
            {
                // Bound parameters: the names may hold NUL and quotes, which SQL text cannot.
                let c = rusqlite::Connection::open(&db).unwrap();
                c.execute("UPDATE partners SET name = ?1", [&partner]).unwrap();
                c.execute("UPDATE transactions SET customer_name = ?1", [&customer])
                    .unwrap();
            }
            let mut hs = Harness::new(&db, 80, 24, Theme::load("dark", None).unwrap(), Role::Analyst, "bob");
            prop_assert!(!hs.app.queue.rows.is_empty());
            hs.assert_clean("queue");
            hs.key(KeyCode::Enter);
            for pane in 0..5 {
                hs.assert_clean(&format!("record pane {pane}"));
                hs.key(KeyCode::Tab);
            }
            hs.key(KeyCode::Esc);
            for view in ['2', '5', '6', '7', '3'] {
                hs.key(KeyCode::Char(view));
                hs.assert_clean(&format!("view {view}"));
            }
        }
    }
}

#[test]
fn the_transaction_id_is_on_screen_at_every_width_and_in_search_results() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cache.db");
    build_cache(&db, false);
    for (w, h) in [(80, 24), (120, 40), (200, 60)] {
        let mut hs = Harness::new(&db, w, h, Theme::monochrome(), Role::Analyst, "bob");
        let screen = hs.screen();
        let shown = hs
            .app
            .queue
            .rows
            .iter()
            .take(5)
            .filter(|r| screen.contains(&r.transaction_id))
            .count();
        assert_eq!(shown, 5, "ids missing at {w}x{h}:\n{screen}");
        // Search by part of an id: the result shows the whole id.
        let id = hs.app.queue.rows[3].transaction_id.clone();
        hs.key(KeyCode::Char('/'));
        hs.keys(&id);
        hs.key(KeyCode::Enter);
        assert_eq!(hs.app.queue.rows.len(), 1, "search for {id}");
        assert!(
            hs.screen().contains(&id),
            "search result lacks {id} at {w}x{h}"
        );
    }
}

#[test]
fn the_selection_colours_win_over_cell_colours_in_every_theme() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cache.db");
    build_cache(&db, false);
    for name in Theme::names() {
        let theme = Theme::load(name, None).unwrap();
        let sel = theme.selection;
        let hs = Harness::new(&db, 120, 30, theme, Role::Analyst, "bob");
        let area = hs.app.table_area.get();
        // Row 0 of the table is the header; the selection is the first data row.
        let y = area.y + 1;
        let buf = hs.term.backend().buffer();
        for x in area.x..area.x + area.width {
            let c = &buf[(x, y)];
            assert_eq!(
                (Some(c.fg), Some(c.bg)),
                (sel.fg, sel.bg),
                "{name}: cell {x} {:?} of the selected row keeps its own colours",
                c.symbol()
            );
        }
    }
}

#[test]
fn the_cli_queue_lists_the_workbench_rows_in_the_workbench_order() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cache.db");
    build_cache(&db, false);
    let hs = Harness::new(&db, 120, 40, Theme::monochrome(), Role::Analyst, "bob");
    let ui: Vec<String> = hs
        .app
        .queue
        .rows
        .iter()
        .map(|r| r.transaction_id.clone())
        .collect();
    assert!(
        ui.len() > 10 && hs.app.queue.at_bottom,
        "fixture: the whole queue loads"
    );
    let o = bin(&db, dir.path(), &["queue", "--format", "jsonl"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let lines: Vec<serde_json::Value> = String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let cli: Vec<String> = lines
        .iter()
        .map(|l| l["transaction_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(cli, ui, "the CLI queue and the workbench differ");
    for l in &lines {
        assert!(
            !l["kinds"].as_array().unwrap().is_empty(),
            "a row without kinds: {l}"
        );
        for k in [
            "action",
            "current_amount",
            "proposed_amount",
            "decided_amount",
            "state",
        ] {
            assert!(l.get(k).is_some(), "missing {k}: {l}");
        }
    }
    assert!(
        lines.iter().any(|l| l["action"].is_string()),
        "no proposal action shown"
    );
    let o = bin(&db, dir.path(), &["queue"]);
    let table = String::from_utf8(o.stdout).unwrap();
    let head = table.lines().next().unwrap();
    for col in ["ACTION", "CURRENT", "PROPOSED", "DECIDED"] {
        assert!(head.contains(col), "table lacks {col}: {head}");
    }
    assert_eq!(table.lines().count(), ui.len() + 2);
}

#[test]
fn record_view_pages_the_pane_and_brackets_change_the_record() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cache.db");
    build_cache(&db, false);
    let mut hs = Harness::new(&db, 80, 16, Theme::monochrome(), Role::Analyst, "bob");
    hs.key(KeyCode::Enter);
    assert_eq!(hs.app.view, View::Record);
    assert!(
        hs.app.pane_max.get() > 0,
        "the pane fits: nothing to scroll"
    );
    let first = hs.app.detail_id.clone();
    for code in [KeyCode::PageDown, KeyCode::End, KeyCode::Char('G')] {
        hs.key(code);
        assert_eq!(hs.app.detail_id, first, "{code:?} changed the record");
    }
    assert!(hs.app.pane_scroll > 0, "End did not scroll the pane");
    hs.key(KeyCode::Home);
    assert_eq!(hs.app.pane_scroll, 0);
    hs.key(KeyCode::Char(']'));
    let second = hs.app.detail_id.clone();
    assert_ne!(second, first, "] did not move to the next record");
    assert_eq!(hs.app.view, View::Record);
    hs.key(KeyCode::Char('['));
    assert_eq!(hs.app.detail_id, first);
    // `n`: the next record still flagged (nobody reviewed it).
    hs.key(KeyCode::Char('n'));
    let cur = hs.app.queue.current().unwrap();
    assert_eq!(cur.status, "flagged");
    assert!(hs.app.queue.sel > 0);
}

#[test]
fn bulk_approve_asks_with_count_and_total_and_esc_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cache.db");
    build_cache(&db, false);
    let mut hs = Harness::new(&db, 120, 40, Theme::monochrome(), Role::Analyst, "bob");
    // Select three flagged records with Space.
    let picked: Vec<String> = hs
        .app
        .queue
        .rows
        .iter()
        .filter(|r| r.status == "flagged")
        .take(3)
        .map(|r| r.transaction_id.clone())
        .collect();
    assert_eq!(picked.len(), 3);
    for id in &picked {
        hs.app.queue.sel = hs
            .app
            .queue
            .rows
            .iter()
            .position(|r| &r.transaction_id == id)
            .unwrap();
        hs.key(KeyCode::Char(' '));
    }
    let n = hs.app.queue.marked.len();
    assert_eq!(n, 3);
    // The selection count is in the status bar, at 80 columns too.
    assert!(hs.screen().contains("3 sel"), "{}", hs.screen());
    hs.key(KeyCode::Char('a'));
    let Some(Modal::Confirm(c)) = &hs.app.modal else {
        panic!("bulk approve did not ask first");
    };
    assert!(c.lines[0].contains("Approve 3 records"), "{:?}", c.lines);
    assert!(c.lines[0].contains("total Δ"), "{:?}", c.lines);
    assert!(hs.screen().contains("Approve 3 records"));
    hs.key(KeyCode::Esc);
    assert!(hs.app.modal.is_none());
    let states = |hs: &Harness| -> Vec<String> {
        picked
            .iter()
            .map(|id| hs.store.record_detail(id).unwrap().unwrap())
            .map(|d| d.case.map(|c| c.state).unwrap_or_else(|| "flagged".into()))
            .collect()
    };
    assert!(
        states(&hs).iter().all(|s| s == "flagged"),
        "Esc changed something"
    );
    hs.key(KeyCode::Char('a'));
    hs.key(KeyCode::Char('y'));
    assert!(
        states(&hs).iter().all(|s| s != "flagged"),
        "yes did not approve: {:?} {:?}",
        states(&hs),
        hs.app.message
    );
    // Bulk undo: select them again, `u` asks, `y` undoes each (back to review).
    for id in &picked {
        hs.app.queue.marked.insert(id.clone());
    }
    hs.key(KeyCode::Char('u'));
    assert!(matches!(&hs.app.modal, Some(Modal::Confirm(c)) if c.lines[0].contains("Undo")));
    hs.key(KeyCode::Char('y'));
    assert!(
        states(&hs)
            .iter()
            .all(|s| s == "flagged" || s == "in_review"),
        "bulk undo did not undo every approval: {:?} {:?}",
        states(&hs),
        hs.app.message
    );
}

#[test]
fn a_manager_signs_off_only_after_confirming_count_and_total() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cache.db");
    build_cache(&db, false);
    // An analyst's override far above the threshold waits for a manager.
    {
        let mut s = Store::open(&db).unwrap();
        let row = s
            .queue_page(
                &Default::default(),
                tierdesk::store::queue::QueueSort::Rank,
                None,
                tierdesk::store::queue::PageDir::After,
                50,
            )
            .unwrap()
            .into_iter()
            .find(|r| r.status == "flagged")
            .unwrap();
        let st = tierdesk::workflow::decide(
            &mut s,
            &tierdesk::workflow::Policy::from_config(&Config::default()),
            &tierdesk::workflow::Actor::new("ana", Role::Analyst),
            &row.transaction_id,
            tierdesk::workflow::Command::Override {
                amount: rust_decimal::Decimal::new(9_000_000, 2),
            },
            "partner sent the signed order form",
        )
        .unwrap();
        assert_eq!(st, tierdesk::workflow::CaseState::AwaitingSignoff);
    }
    let mut hs = Harness::new(&db, 80, 24, Theme::monochrome(), Role::Manager, "mia");
    hs.key(KeyCode::Char('2'));
    assert!(!hs.app.signoff.rows.is_empty(), "nothing awaits sign-off");
    let id = hs.app.signoff.rows[0].transaction_id.clone();
    hs.key(KeyCode::Char('a'));
    let Some(Modal::Confirm(c)) = &hs.app.modal else {
        panic!("sign-off did not ask first");
    };
    assert!(
        c.lines[0].contains("Sign off 1 adjustment"),
        "{:?}",
        c.lines
    );
    hs.key(KeyCode::Char('n'));
    assert_eq!(
        hs.app.signoff.rows[0].transaction_id, id,
        "n changed something"
    );
    // Opened from Sign-off, Esc returns to Sign-off.
    hs.key(KeyCode::Enter);
    assert_eq!(hs.app.view, View::Record);
    hs.key(KeyCode::Esc);
    assert_eq!(hs.app.view, View::Signoff);
    // An analyst's `x` refuses before asking for a note.
    let mut an = Harness::new(&db, 80, 24, Theme::monochrome(), Role::Analyst, "bob");
    an.key(KeyCode::Char('2'));
    an.key(KeyCode::Char('x'));
    assert!(an.app.modal.is_none(), "x opened a note for an analyst");
    assert!(matches!(&an.app.message, Some((_, m)) if m.contains("managers")));
}

#[test]
fn a_duplicate_shows_its_comparison_above_the_fold_and_l_jumps_to_the_original_and_back() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cache.db");
    build_cache(&db, false);
    let mut h = Harness::new(&db, 80, 24, Theme::monochrome(), Role::Analyst, "ana");
    // The first duplicate in the queue whose evidence names an original.
    let store = Store::open(&db).unwrap();
    let (dup, orig) = h
        .app
        .queue
        .rows
        .iter()
        .filter(|r| r.kinds.iter().any(|k| k == "duplicate"))
        .find_map(|r| {
            let d = store.record_detail(&r.transaction_id).ok()??;
            let o = d.original.as_ref()?.transaction_id.clone();
            Some((r.transaction_id.clone(), o))
        })
        .expect("a duplicate with its original in the first page");
    drop(store);
    let at = h
        .app
        .queue
        .rows
        .iter()
        .position(|r| r.transaction_id == dup)
        .unwrap();
    for _ in 0..at {
        h.key(KeyCode::Down);
    }
    h.key(KeyCode::Enter);
    assert_eq!(h.app.detail_id.as_deref(), Some(dup.as_str()));
    let screen = h.screen();
    assert!(
        screen.contains("Possible duplicate") && screen.contains(&orig),
        "the comparison is not on the first screen at 80x24:\n{screen}"
    );
    // L opens the original; L again comes back to the duplicate.
    h.key(KeyCode::Char('L'));
    assert_eq!(h.app.detail_id.as_deref(), Some(orig.as_str()));
    assert!(h.screen().contains(&orig));
    h.key(KeyCode::Char('L'));
    assert_eq!(h.app.detail_id.as_deref(), Some(dup.as_str()));
    // A record with no links says so.
    let lonely = tierdesk::tui::flow::linked_ids(&tierdesk::store::queue::RecordDetail::default());
    assert!(lonely.is_empty());
}

#[test]
fn the_outbox_view_lists_decisions_for_the_prm_and_opens_their_record() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cache.db");
    build_cache(&db, false);
    // Two decisions by an analyst: each writes an outbox row.
    let decided: Vec<String> = {
        let mut s = Store::open(&db).unwrap();
        let rows = s
            .queue_page(
                &Default::default(),
                tierdesk::store::queue::QueueSort::Rank,
                None,
                tierdesk::store::queue::PageDir::After,
                50,
            )
            .unwrap();
        let ids: Vec<String> = rows
            .iter()
            .filter(|r| r.status == "flagged")
            .take(2)
            .map(|r| r.transaction_id.clone())
            .collect();
        for id in &ids {
            tierdesk::workflow::decide(
                &mut s,
                &tierdesk::workflow::Policy::from_config(&Config::default()),
                &tierdesk::workflow::Actor::new("ana", Role::Analyst),
                id,
                tierdesk::workflow::Command::Dismiss,
                "checked with the partner",
            )
            .unwrap();
        }
        ids
    };
    let mut h = Harness::new(&db, 80, 24, Theme::monochrome(), Role::Analyst, "ana");
    h.key(KeyCode::Char('5'));
    assert_eq!(h.app.view, View::Outbox);
    let screen = h.screen();
    assert!(screen.contains("Outbox"), "{screen}");
    for id in &decided {
        assert!(screen.contains(id.as_str()), "{id} not listed:\n{screen}");
    }
    assert!(screen.contains("waiting"), "{screen}");
    // Enter opens the selected record on its Decision pane; Esc comes back.
    let sel = h.app.outbox.selected().unwrap().to_string();
    h.key(KeyCode::Enter);
    assert_eq!(h.app.view, View::Record);
    assert_eq!(h.app.detail_id.as_deref(), Some(sel.as_str()));
    h.key(KeyCode::Esc);
    assert_eq!(h.app.view, View::Outbox);
    h.assert_clean("outbox");
}

/// Types `:cmd` and Enter in the palette.
fn palette(hs: &mut Harness, cmd: &str) {
    hs.key(KeyCode::Char(':'));
    hs.keys(cmd);
    hs.key(KeyCode::Enter);
}

/// The transaction ids of `tierdesk queue --format jsonl` output, in order.
fn jsonl_ids(o: &std::process::Output) -> Vec<String> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["transaction_id"].as_str().unwrap().to_string()
        })
        .collect()
}

fn queue_ids(hs: &Harness) -> Vec<String> {
    hs.app
        .queue
        .rows
        .iter()
        .map(|r| r.transaction_id.clone())
        .collect()
}

#[test]
fn the_cli_and_the_workbench_give_the_same_order_for_every_sort_and_direction() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cache.db");
    build_cache(&db, false);
    let mut hs = Harness::new(&db, 120, 40, Theme::monochrome(), Role::Analyst, "bob");
    let mut seen: Vec<Vec<String>> = Vec::new();
    // `s` cycles score → stake → amount → age; `O` flips each.
    for (i, (name, label)) in [
        ("score", "score"),
        ("stake", "at stake"),
        ("amount", "amount"),
        ("age", "age"),
    ]
    .into_iter()
    .enumerate()
    {
        if i > 0 {
            hs.key(KeyCode::Char('s'));
        }
        for reverse in [false, true] {
            if reverse {
                hs.key(KeyCode::Char('O'));
            }
            let arrow = if reverse { '↑' } else { '↓' };
            let screen = hs.screen();
            assert!(
                screen
                    .lines()
                    .next()
                    .unwrap()
                    .contains(&format!("by {label} {arrow}")),
                "header lacks the order {label} {arrow}:\n{screen}"
            );
            let ui = queue_ids(&hs);
            assert!(
                ui.len() > 10 && hs.app.queue.at_bottom,
                "fixture: whole queue"
            );
            let mut args = vec!["queue", "--format", "jsonl", "--sort", name];
            if reverse {
                args.push("--reverse");
            }
            let o = bin(&db, dir.path(), &args);
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            let cli = jsonl_ids(&o);
            assert_eq!(cli, ui, "--sort {name} reverse={reverse}");
            if reverse {
                let mut back = ui.clone();
                back.reverse();
                assert_eq!(
                    &back,
                    seen.last().unwrap(),
                    "{name}: reverse is not the flip"
                );
            }
            seen.push(ui);
        }
        // Back to the sort's own direction for the next one.
        hs.key(KeyCode::Char('O'));
    }
    // The orders really differ from one another.
    assert_ne!(seen[0], seen[2]);
    assert_ne!(seen[0], seen[6]);
    // Age (where the cycle stopped, unreversed): the oldest submission first.
    assert_eq!(
        hs.app.queue.sort.sort,
        tierdesk::store::queue::QueueSort::Age
    );
    let days: Vec<&str> = hs
        .app
        .queue
        .rows
        .iter()
        .map(|r| r.submitted_at.as_str())
        .collect();
    assert!(days.windows(2).all(|w| w[0] <= w[1]), "{days:?}");
    assert!(days[0] < days[days.len() - 1]);
    let o = bin(&db, dir.path(), &["queue", "--sort", "sideways"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown sort 'sideways'"));
}

#[test]
fn multi_value_filters_show_in_the_header_and_bad_words_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cache.db");
    build_cache(&db, false);
    let mut hs = Harness::new(&db, 80, 24, Theme::monochrome(), Role::Analyst, "bob");
    let all = hs.app.queue.rows.clone();
    palette(&mut hs, "filter kind=dup,disc status=flagged,escalated");
    let rows = hs.app.queue.rows.clone();
    assert!(!rows.is_empty() && rows.len() < all.len());
    for r in &rows {
        assert!(
            r.kinds
                .iter()
                .any(|k| k == "duplicate" || k == "discount_policy"),
            "{r:?}"
        );
        assert!(matches!(r.status.as_str(), "flagged" | "escalated"));
    }
    let screen = hs.screen();
    let line = screen
        .lines()
        .find(|l| l.contains("filter:"))
        .expect("no filter line");
    assert!(
        line.contains("kind dup,disc · status flagged,escalated"),
        "{line}"
    );
    // The CLI takes the same lists and gives the same rows.
    let o = bin(
        &db,
        dir.path(),
        &[
            "queue",
            "--format",
            "jsonl",
            "--kind",
            "duplicate,discount_policy",
            "--state",
            "flagged,escalated",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let cli = jsonl_ids(&o);
    assert_eq!(cli, queue_ids(&hs));
    // A long filter is cut with an ellipsis inside 80 columns, the clear hint kept.
    palette(
        &mut hs,
        "filter kind=dup,disc,size,back,split status=flagged,escalated,in_review,rejected mine",
    );
    let screen = hs.screen();
    let line = screen.lines().find(|l| l.contains("filter:")).unwrap();
    assert!(line.contains('…') && line.contains("(F clears)"), "{line}");
    // Bad input: the message names the bad part and the filter stays as it was.
    let before = hs.app.queue.filter.clone();
    palette(&mut hs, "filter kind=dup,nope");
    assert!(
        matches!(&hs.app.message, Some((_, m)) if m.contains("unknown kind \"nope\"")),
        "{:?}",
        hs.app.message
    );
    assert_eq!(hs.app.queue.filter, before);
    // Clear filter clears every part.
    hs.key(KeyCode::Char('F'));
    assert!(hs.app.queue.filter.is_empty());
    assert_eq!(queue_ids(&hs).len(), all.len());
}

#[test]
fn needs_me_differs_for_analyst_and_manager_and_never_shows_a_manager_their_own_proposal() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cache.db");
    build_cache(&db, false);
    // Two overrides above the sign-off threshold: one by an analyst, one by manager mia.
    let (theirs, own) = {
        let mut s = Store::open(&db).unwrap();
        let flagged: Vec<String> = s
            .queue_page(
                &Default::default(),
                tierdesk::store::queue::QueueSort::Rank,
                None,
                tierdesk::store::queue::PageDir::After,
                50,
            )
            .unwrap()
            .into_iter()
            .filter(|r| r.status == "flagged")
            .map(|r| r.transaction_id)
            .collect();
        for (id, who, role) in [
            (&flagged[0], "ana", Role::Analyst),
            (&flagged[1], "Mia", Role::Manager),
        ] {
            let st = tierdesk::workflow::decide(
                &mut s,
                &tierdesk::workflow::Policy::from_config(&Config::default()),
                &tierdesk::workflow::Actor::new(who, role),
                id,
                tierdesk::workflow::Command::Override {
                    amount: rust_decimal::Decimal::new(9_000_000, 2),
                },
                "partner sent the signed order form",
            )
            .unwrap();
            assert_eq!(st, tierdesk::workflow::CaseState::AwaitingSignoff, "{who}");
        }
        (flagged[0].clone(), flagged[1].clone())
    };
    let mut mgr = Harness::new(&db, 120, 40, Theme::monochrome(), Role::Manager, "mia");
    palette(&mut mgr, "filter mine");
    let m = queue_ids(&mgr);
    assert!(
        m.contains(&theirs),
        "the analyst's proposal is missing: {m:?}"
    );
    assert!(
        !m.contains(&own),
        "a manager sees their own proposal: {m:?}"
    );
    assert!(mgr
        .app
        .queue
        .rows
        .iter()
        .all(|r| r.status == "awaiting_signoff"));
    assert!(mgr.screen().contains("needs me (sign-offs, not my own)"));

    let mut an = Harness::new(&db, 120, 40, Theme::monochrome(), Role::Analyst, "bob");
    palette(&mut an, "filter mine");
    let a = queue_ids(&an);
    assert!(a.len() > 5, "{a:?}");
    assert!(!a.contains(&theirs) && !a.contains(&own));
    assert!(an.app.queue.rows.iter().all(|r| matches!(
        r.status.as_str(),
        "flagged" | "in_review" | "documents_requested" | "rejected" | "conflict"
    )));
    assert_ne!(a, m);
    // The same through the filter dialog's "needs me" line (the last one).
    let mut mgr2 = Harness::new(&db, 120, 40, Theme::monochrome(), Role::Manager, "mia");
    mgr2.key(KeyCode::Char('f'));
    mgr2.key(KeyCode::Up);
    mgr2.key(KeyCode::Right);
    mgr2.key(KeyCode::Enter);
    assert_eq!(queue_ids(&mgr2), m);
}

/// The header line of the queue table (the line holding "id" and "status" or "age").
fn queue_header(hs: &Harness) -> String {
    hs.screen()
        .lines()
        .find(|l| l.split_whitespace().any(|w| w == "id"))
        .unwrap_or_default()
        .to_string()
}

#[test]
fn the_column_chooser_hides_and_shows_columns_and_keeps_them_per_person() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cache.db");
    build_cache(&db, false);
    let mut hs = Harness::new(&db, 120, 40, Theme::monochrome(), Role::Analyst, "bob");
    let head = queue_header(&hs);
    assert!(head.contains("kinds") && !head.contains("action"), "{head}");
    hs.key(KeyCode::Char('C'));
    assert!(hs.screen().contains("Queue columns"), "{}", hs.screen());
    // Down to "id": it cannot be hidden.
    hs.key(KeyCode::Down);
    hs.key(KeyCode::Char(' '));
    assert!(hs.app.shows_column("id"));
    // "kinds" off, "action" (the 10th) on.
    hs.key(KeyCode::Down);
    hs.key(KeyCode::Char(' '));
    for _ in 0..7 {
        hs.key(KeyCode::Down);
    }
    hs.key(KeyCode::Char(' '));
    hs.key(KeyCode::Enter);
    let head = queue_header(&hs);
    assert!(!head.contains("kinds"), "{head}");
    assert!(head.contains("action") && head.contains(" id "), "{head}");
    // The proposed action is in the rows.
    let action = hs.app.queue.rows[0].action.clone().expect("a proposal");
    assert!(hs.screen().contains(&action), "{}", hs.screen());
    // The next session of bob has the same columns; another person the default.
    let bob = Harness::new(&db, 120, 40, Theme::monochrome(), Role::Analyst, "bob");
    let head = queue_header(&bob);
    assert!(!head.contains("kinds") && head.contains("action"), "{head}");
    let eve = Harness::new(&db, 120, 40, Theme::monochrome(), Role::Analyst, "eve");
    let head = queue_header(&eve);
    assert!(head.contains("kinds") && !head.contains("action"), "{head}");
    // At 80 columns too the id stays when most columns are hidden or shown.
    let narrow = Harness::new(&db, 80, 24, Theme::monochrome(), Role::Analyst, "bob");
    let id = narrow.app.queue.rows[0].transaction_id.clone();
    assert!(narrow.screen().contains(&id));
    narrow.assert_clean("narrow queue with chosen columns");
}

#[test]
fn saved_views_keep_filter_sort_and_columns_and_the_cli_lists_the_same_rows() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cache.db");
    build_cache(&db, false);
    let mut hs = Harness::new(&db, 120, 40, Theme::monochrome(), Role::Analyst, "bob");
    palette(&mut hs, "filter kind=dup,disc");
    hs.key(KeyCode::Char('s')); // by at stake
    hs.key(KeyCode::Char('O')); // reversed
    let want = queue_ids(&hs);
    assert!(want.len() > 3, "fixture: some duplicates and discounts");
    palette(&mut hs, "view save Dups and discounts");
    assert!(
        hs.screen().contains("view Dups and discounts saved"),
        "{}",
        hs.screen()
    );
    // Clear everything, then apply the view by name (any case).
    hs.key(KeyCode::Char('F'));
    hs.key(KeyCode::Char('s'));
    assert_ne!(queue_ids(&hs), want);
    palette(&mut hs, "view dups AND discounts");
    assert_eq!(queue_ids(&hs), want);
    assert!(hs.screen().contains("kind dup,disc"), "{}", hs.screen());
    assert!(hs.screen().contains("by at stake ↑"), "{}", hs.screen());
    // The CLI prints the view's rows in the view's order, for the same person.
    let o = bin(
        &db,
        dir.path(),
        &[
            "--user",
            "bob",
            "queue",
            "--format",
            "jsonl",
            "--view",
            "Dups and discounts",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let cli = jsonl_ids(&o);
    assert_eq!(cli, want);
    // Another person has no such view: a clear error naming it.
    let o = bin(
        &db,
        dir.path(),
        &["--user", "eve", "queue", "--view", "Dups and discounts"],
    );
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("no view named 'Dups and discounts'"), "{err}");
    // `v` lists the views; Enter applies, d deletes.
    hs.key(KeyCode::Char('F'));
    hs.key(KeyCode::Char('v'));
    assert!(hs.screen().contains("Saved views"), "{}", hs.screen());
    assert!(
        hs.screen().contains("Dups and discounts — kind dup,disc"),
        "{}",
        hs.screen()
    );
    hs.key(KeyCode::Enter);
    assert_eq!(queue_ids(&hs), want);
    hs.key(KeyCode::Char('v'));
    hs.key(KeyCode::Char('d'));
    assert!(
        hs.screen().contains("view Dups and discounts deleted"),
        "{}",
        hs.screen()
    );
    assert!(hs.app.views.is_empty());
    hs.key(KeyCode::Esc);
    palette(&mut hs, "view Dups and discounts");
    assert!(
        hs.screen().contains("no view named Dups and discounts"),
        "{}",
        hs.screen()
    );
    // A bad name is refused with the reason.
    palette(&mut hs, "view save ");
    assert!(
        hs.screen().contains("a view needs a name"),
        "{}",
        hs.screen()
    );
}
