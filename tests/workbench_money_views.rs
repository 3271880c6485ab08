//! The workbench's money views on a real cache (the v2 sample imported into SQLite in a
//! temporary folder), driven by keys as a user would: the Payouts view lists the run and
//! its payees with accounts masked to the last four (no full number in any frame),
//! approval is four-eyes through the payout core (the preparer is refused with the
//! core's message, another manager approves); a dispute opened through the dispute core
//! shows in the Disputes view and turns overdue once today is past the SLA; a question
//! asked from the disputed record (`A`) is answered with its citations on screen.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

use tierdesk::cli::workbench::settle_with;
use tierdesk::config::{Config, Role};
use tierdesk::store::Store;
use tierdesk::tui::app::{App, Level, Modal, View};
use tierdesk::tui::effects::{Env, WorkerState};
use tierdesk::tui::keymap::Keymap;
use tierdesk::tui::theme::Theme;
use tierdesk::workflow::Actor;

fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sample-program-v2")
}

/// The v2 sample imported, a 2026-Q3 run prepared by the manager `mia`.
fn cache(dir: &Path) -> (PathBuf, String) {
    let db = dir.join("cache.db");
    let mut s = Store::open(&db).unwrap();
    tierdesk::import::import_dir(&mut s, &sample(), &mut |_| {}).unwrap();
    let p = tierdesk::payout::prepare(
        &mut s,
        &Actor::new("mia", Role::Manager),
        "2026-Q3",
        chrono::NaiveDate::from_ymd_opt(2026, 9, 30).unwrap(),
        30,
        None,
        "2026-10-02T09:00:00Z",
    )
    .unwrap();
    (db, p.run.run_id)
}

struct Bench {
    app: App,
    store: Store,
    env: Env,
    state: WorkerState,
    term: Terminal<TestBackend>,
}

impl Bench {
    fn new(db: &Path, user: &str, role: Role, today: Option<chrono::NaiveDate>) -> Bench {
        let (w, h) = (120, 40);
        let app = App::new(
            user.into(),
            role,
            Config::default(),
            Theme::load("dark", None).unwrap(),
            Keymap::new(&BTreeMap::new()).unwrap(),
        );
        app.size.set((w, h));
        let mut state = WorkerState::default();
        state.today = today;
        let mut b = Bench {
            app,
            store: Store::open(db).unwrap(),
            env: Env {
                user: user.into(),
                role,
                config: Config::default(),
            },
            state,
            term: Terminal::new(TestBackend::new(w, h)).unwrap(),
        };
        let fx = b.app.start();
        b.settle(fx);
        b
    }

    fn settle(&mut self, fx: Vec<tierdesk::tui::effects::Effect>) {
        settle_with(
            &mut self.app,
            &mut self.store,
            &self.env,
            &mut self.state,
            fx,
        );
        let app = &self.app;
        self.term.draw(|f| tierdesk::tui::ui::draw(f, app)).unwrap();
        self.term.draw(|f| tierdesk::tui::ui::draw(f, app)).unwrap();
    }

    fn key(&mut self, code: KeyCode) {
        let fx = self.app.on_key(KeyEvent::new(code, KeyModifiers::NONE));
        self.settle(fx);
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

    fn message(&self) -> (Level, String) {
        self.app.message.clone().expect("no message")
    }
}

#[test]
fn payouts_view_masks_accounts_and_approval_is_four_eyes() {
    let dir = tempfile::tempdir().unwrap();
    let (db, run_id) = cache(dir.path());
    let store = Store::open(&db).unwrap();
    let payees = store.payout_run_payees(&run_id).unwrap();
    assert!(payees.len() > 20, "fixture run too small");
    // Every account number and IBAN on file for the run's payees.
    let details = store.payees().unwrap();
    let secrets: Vec<String> = payees
        .iter()
        .filter_map(|p| details.get(&p.partner_id))
        .flat_map(|d| [d.account_number.clone(), d.iban.clone()])
        .flatten()
        .filter(|s| s.len() > 4)
        .collect();
    assert!(secrets.len() > 20, "fixture has too few account numbers");

    // The preparer opens Payouts: the run and its payees.
    let mut b = Bench::new(&db, "mia", Role::Manager, None);
    b.key(KeyCode::Char('6'));
    assert_eq!(b.app.view, View::Payouts);
    let screen = b.screen();
    assert!(screen.contains(&run_id), "{screen}");
    assert!(screen.contains("draft"), "{screen}");
    let first = &payees[0];
    assert!(screen.contains(&first.partner_id), "{screen}");
    // Its account shows as its last four, behind stars.
    let acct = details[&first.partner_id].account_number.clone().unwrap();
    let tail = &acct[acct.len() - 4..];
    assert!(screen.contains(&format!("****{tail}")), "{screen}");
    // Walk every payee: no frame ever holds a full account number or IBAN.
    b.key(KeyCode::Tab);
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..payees.len() {
        let screen = b.screen();
        for s in &secrets {
            assert!(
                !screen.contains(s.as_str()),
                "a full account number is on screen"
            );
        }
        seen.insert(b.app.payouts.selected_payee().unwrap().partner_id.clone());
        b.key(KeyCode::Char('j'));
    }
    assert_eq!(seen.len(), payees.len(), "not every payee was reached");

    // The preparer approves: asked first, then refused by the core (four-eyes).
    b.key(KeyCode::Char('P'));
    assert!(matches!(b.app.modal, Some(Modal::Confirm(_))));
    b.key(KeyCode::Enter);
    let (level, text) = b.message();
    assert_eq!(level, Level::Error);
    assert!(
        text.contains("a different manager must approve it (four-eyes)"),
        "{text}"
    );
    assert_eq!(b.store.payout_run(&run_id).unwrap().unwrap().state, "draft");
    assert!(b.screen().contains("four-eyes"));

    // An analyst is refused for the role.
    let mut ana = Bench::new(&db, "ana", Role::Analyst, None);
    ana.key(KeyCode::Char('6'));
    ana.key(KeyCode::Char('P'));
    ana.key(KeyCode::Char('y'));
    assert!(
        ana.message().1.contains("needs the manager role"),
        "{:?}",
        ana.message()
    );

    // Another manager approves; the view shows who did.
    let mut max = Bench::new(&db, "max", Role::Manager, None);
    max.key(KeyCode::Char('6'));
    max.key(KeyCode::Char('P'));
    // Esc on the question changes nothing.
    max.key(KeyCode::Esc);
    assert_eq!(
        max.store.payout_run(&run_id).unwrap().unwrap().state,
        "draft"
    );
    max.key(KeyCode::Char('P'));
    max.key(KeyCode::Char('y'));
    let (level, text) = max.message();
    assert_eq!(level, Level::Ok, "{text}");
    assert!(text.contains("approved by max"), "{text}");
    let run = max.store.payout_run(&run_id).unwrap().unwrap();
    assert_eq!(
        (run.state.as_str(), run.approved_by.as_deref()),
        ("approved", Some("max"))
    );
    let screen = max.screen();
    let row = screen
        .lines()
        .find(|l| l.contains(&run_id) && l.contains("approved"))
        .unwrap_or_else(|| panic!("run row not refreshed: {screen}"));
    assert!(row.contains("max") && row.contains("mia"), "{row}");
}

#[test]
fn release_hold_lifts_a_bank_hold_through_the_core() {
    let dir = tempfile::tempdir().unwrap();
    let (db, run_id) = cache(dir.path());
    let mut b = Bench::new(&db, "max", Role::Manager, None);
    b.key(KeyCode::Char('6'));
    b.key(KeyCode::Tab);
    let payees = b.store.payout_run_payees(&run_id).unwrap();
    let idx = payees
        .iter()
        .position(|p| {
            p.holds
                .iter()
                .any(|h| tierdesk::payout::checks::PAYEE_CODES.contains(&h.code.as_str()))
        })
        .expect("fixture has a payee with a bank or tax hold");
    for _ in 0..idx {
        b.key(KeyCode::Char('j'));
    }
    let partner = payees[idx].partner_id.clone();
    assert_eq!(b.app.payouts.selected_payee().unwrap().partner_id, partner);
    b.key(KeyCode::Char('R'));
    assert!(matches!(b.app.modal, Some(Modal::Confirm(_))));
    b.key(KeyCode::Char('y'));
    let (level, text) = b.message();
    assert_eq!(level, Level::Ok, "{text}");
    let after = b.store.payout_run_payees(&run_id).unwrap();
    let p = after.iter().find(|p| p.partner_id == partner).unwrap();
    assert!(
        !p.holds
            .iter()
            .any(|h| tierdesk::payout::checks::PAYEE_CODES.contains(&h.code.as_str())),
        "{:?}",
        p.holds
    );
    assert!(!p.released.is_empty());
    // The payees reloaded: the view shows the release.
    let shown = b.app.payouts.selected_payee().unwrap();
    assert_eq!(shown.partner_id, partner);
    assert!(!shown.released.is_empty());
}

#[test]
fn a_dispute_shows_with_its_state_and_turns_overdue_past_the_sla() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = cache(dir.path());
    let mut s = Store::open(&db).unwrap();
    let tx = s.wf().get_transaction("T00000001").unwrap().unwrap();
    let id = tierdesk::dispute::open(
        &mut s,
        &Actor::new("ana", Role::Analyst),
        tierdesk::dispute::NewDispute {
            partner_id: tx.partner_id.clone(),
            transaction_id: tx.transaction_id.clone(),
            reason_code: "incorrect_amount".into(),
            claimed: "1250.00".parse().unwrap(),
            note: "the partner says the line is short".into(),
        },
    )
    .unwrap();
    let opened = s.dispute(&id).unwrap().unwrap().opened_at;
    let day = chrono::NaiveDate::parse_from_str(&opened[..10], "%Y-%m-%d").unwrap();
    let sla = Config::default().workbench.dispute_sla_days as u64;

    // On the day it was opened: open, due in the SLA's days, not in the warning style.
    let mut b = Bench::new(&db, "ana", Role::Analyst, Some(day));
    b.key(KeyCode::Char('7'));
    assert_eq!(b.app.view, View::Disputes);
    let screen = b.screen();
    let row = screen
        .lines()
        .find(|l| l.contains(&id))
        .unwrap_or_else(|| panic!("dispute not listed: {screen}"));
    assert!(
        row.contains(&tx.transaction_id) && row.contains("open"),
        "{row}"
    );
    assert!(row.contains(&format!("{sla}d left")), "{row}");
    assert!(!row.contains("overdue"), "{row}");
    assert!(screen.contains("0 overdue"), "{screen}");

    // Past the SLA: overdue, drawn in the theme's warning style (when not selected).
    let late = day + chrono::Days::new(sla + 2);
    let mut s2 = Store::open(&db).unwrap();
    let second = tierdesk::dispute::open(
        &mut s2,
        &Actor::new("ana", Role::Analyst),
        tierdesk::dispute::NewDispute {
            partner_id: tx.partner_id.clone(),
            transaction_id: tx.transaction_id.clone(),
            reason_code: "other".into(),
            claimed: "10.00".parse().unwrap(),
            note: "a second one, newer, so the first is not selected".into(),
        },
    )
    .unwrap();
    s2.execute_fixture_sql(&format!(
        "UPDATE disputes SET opened_at = '{}T12:00:00Z' WHERE dispute_id = '{second}'",
        late
    ))
    .unwrap();
    let mut b = Bench::new(&db, "ana", Role::Analyst, Some(late));
    b.key(KeyCode::Char('7'));
    let screen = b.screen();
    let (y, row) = screen
        .lines()
        .enumerate()
        .find(|(_, l)| l.contains(&id))
        .unwrap();
    assert!(row.contains("overdue 2d"), "{row}");
    assert_eq!(b.app.disputes.selected().unwrap().dispute_id, second);
    let buf = b.term.backend().buffer();
    let x = row[..row.find(&id).unwrap()].chars().count() as u16;
    let warning = Theme::load("dark", None).unwrap().warning;
    assert_eq!(buf[(x, y as u16)].fg, warning.fg.unwrap());
    // The title counts it; Enter on it opens the disputed transaction's record.
    assert!(screen.contains("1 overdue"), "{screen}");
    b.key(KeyCode::Char('j'));
    assert_eq!(b.app.disputes.selected().unwrap().dispute_id, id);
    b.key(KeyCode::Enter);
    assert_eq!(b.app.view, View::Record);
    assert_eq!(b.app.detail_id.as_deref(), Some(tx.transaction_id.as_str()));
    assert!(b.screen().contains(&tx.transaction_id));

    // Ask from the record: prefilled with its transaction, scoped to its partner.
    b.key(KeyCode::Char('A'));
    let Some(Modal::Ask(p)) = &b.app.modal else {
        panic!("no ask prompt")
    };
    assert_eq!(p.partner.as_deref(), Some(tx.partner_id.as_str()));
    assert!(p.text().contains(&tx.transaction_id), "{}", p.text());
    let screen = b.screen();
    assert!(
        screen.contains(&format!("as partner {}", tx.partner_id)),
        "{screen}"
    );
    b.key(KeyCode::Enter);
    let Some(Modal::Answer(a)) = &b.app.modal else {
        panic!("no answer: {:?}", b.app.message)
    };
    let cited: Vec<&String> = a.answer.answer.iter().flat_map(|s| &s.citations).collect();
    assert!(
        !cited.is_empty(),
        "an answer without citations: {:?}",
        a.answer
    );
    let screen = b.screen();
    assert!(screen.contains(cited[0].as_str()), "{screen}");
    let first = &a.answer.answer[0].text;
    assert!(
        screen.contains(&first[..first.len().min(30)]),
        "{first} not on screen: {screen}"
    );
    // A second question reuses the loaded program; Esc closes the answer.
    b.key(KeyCode::Esc);
    assert!(b.app.modal.is_none());
    b.key(KeyCode::Char('A'));
    b.key(KeyCode::Enter);
    assert!(matches!(b.app.modal, Some(Modal::Answer(_))));
    b.key(KeyCode::Esc);
    b.key(KeyCode::Esc);
    assert_eq!(b.app.view, View::Disputes);
}

#[test]
fn reconciliation_exceptions_list_only_entries_that_need_a_person() {
    let dir = tempfile::tempdir().unwrap();
    let (db, run_id) = cache(dir.path());
    let s = Store::open(&db).unwrap();
    s.execute_fixture_sql(&format!(
        "INSERT INTO bank_files VALUES ('abc', 'stmt-2026-10-05.xml', 'camt053', '2026-10-05T10:00:00Z');
         INSERT INTO bank_entries VALUES ('abc', 1, 'matched', '[\"{run_id}/D0001\"]', NULL, '201799.06', 'USD');
         INSERT INTO bank_entries VALUES ('abc', 2, 'unmatched', '[]', NULL, '77.10', 'USD');
         INSERT INTO bank_entries VALUES ('abc', 3, 'amount', '[\"{run_id}/D0002\"]', NULL, '28000.00', 'USD');
         INSERT INTO bank_entries VALUES ('abc', 4, 'returned', '[\"{run_id}/D0003\"]', 'R03', '57988.45', 'USD');"
    ))
    .unwrap();
    let ex = s.bank_exceptions(10).unwrap();
    let classes: Vec<(&str, i64)> = ex.iter().map(|e| (e.class.as_str(), e.entry)).collect();
    assert_eq!(classes, vec![("unmatched", 2), ("amount", 3)]);
    let mut b = Bench::new(&db, "max", Role::Manager, None);
    b.key(KeyCode::Char('6'));
    let screen = b.screen();
    assert!(screen.contains("Reconciliation exceptions · 2"), "{screen}");
    assert!(screen.contains("stmt-2026-10-05.xml #2"), "{screen}");
    assert!(screen.contains(&format!("{run_id}/D0002")), "{screen}");
    assert!(!screen.contains("#4"), "{screen}");
    // Tab twice focuses the exceptions; j moves within them.
    b.key(KeyCode::Tab);
    b.key(KeyCode::Tab);
    b.key(KeyCode::Char('j'));
    assert_eq!(b.app.payouts.exc_sel, 1);
    b.key(KeyCode::Char('j'));
    assert_eq!(b.app.payouts.exc_sel, 1);
}

/// `8` shows the plan's rules over the last periods with the report's findings (a rule
/// that never triggered is named), and `:whatif override_rate=0.015` shows the same
/// total difference as `tierdesk plan whatif --set override_rate=0.015`.
#[test]
fn the_plan_view_lists_rules_findings_and_a_whatif_that_matches_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = cache(dir.path());
    let mut b = Bench::new(&db, "ana", Role::Analyst, None);
    b.key(KeyCode::Char('8'));
    let s = b.screen();
    assert!(s.contains("[Plan]") && s.contains(" Plan · "), "{s}");
    let data = match &b.app.plan.data {
        Some(Ok(d)) => d.clone(),
        other => panic!("{other:?}"),
    };
    assert!(!data.report.rules.is_empty());
    let first = &data.report.rules[0];
    assert!(s.contains(&first.rule[..first.rule.len().min(20)]), "{s}");
    for f in data.report.findings.iter().take(1) {
        assert!(s.contains(&f[..f.len().min(40)]), "{f}\n{s}");
    }
    // The what-if, as the CLI computes it.
    let fx = b.app.palette_command("whatif override_rate=0.015").unwrap();
    b.settle(fx);
    let s = b.screen();
    assert!(s.contains("What if override_rate=0.015"), "{s}");
    let Some((_, Ok(w))) = &b.app.plan.whatif else {
        panic!("{:?}", b.app.plan.whatif)
    };
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_tierdesk"))
        .arg("--db")
        .arg(&db)
        .args([
            "plan",
            "whatif",
            "--set",
            "override_rate=0.015",
            "--format",
            "jsonl",
        ])
        .env("HOME", dir.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    let text = String::from_utf8(o.stdout).unwrap();
    let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    let cli: rust_decimal::Decimal = last["total"]["difference"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(w.total.difference, cli);
    assert!(!cli.is_zero(), "the override rate moves the total");
    let shown = tierdesk::money::format_money(w.total.difference, &data.currency);
    assert!(s.contains(&shown), "{shown}\n{s}");
    // An unknown key is named, and the view stays.
    let fx = b.app.palette_command("whatif bogus=1").unwrap();
    b.settle(fx);
    assert!(b.screen().contains("bogus"), "{}", b.screen());
}
