//! Moving through records and asking before big steps: the record view's own paging,
//! next/previous/next-unreviewed record, auto-advance after a decision, Esc back to the
//! view a record was opened from, and confirmations (bulk actions, sign-offs, bulk undo,
//! an override far beyond the deal). Pure: state in, effects out.

use crossterm::event::{KeyCode, KeyEvent};
use rust_decimal::Decimal;

use super::action::Action;
use super::app::{App, Level, Modal, View};
use super::effects::{Decision, Effect};
use crate::config::Role;
use crate::money::{format_money, parse_money};

/// Navigation state beyond the views themselves.
#[derive(Debug, Clone)]
pub struct NavState {
    /// The view Esc returns to from the record view.
    pub record_from: View,
    /// Move to the next record after a decision on the current one succeeds.
    pub auto_advance: bool,
    /// The record whose pending decision, once done, moves the selection on.
    pub advance_after: Option<String>,
    /// `:goto ID` waits for the queue page that holds the id, to select it.
    pub goto: Option<String>,
    /// The cache's data version last read, and when it was last asked for.
    pub data_version: Option<i64>,
    pub last_poll: Option<std::time::Instant>,
    /// `L` cycles through the records linked to the one it started on: (start, linked).
    pub linked: Option<(String, Vec<String>)>,
}

impl Default for NavState {
    fn default() -> Self {
        NavState {
            record_from: View::Queue,
            auto_advance: true,
            advance_after: None,
            goto: None,
            data_version: None,
            last_poll: None,
            linked: None,
        }
    }
}

/// A question before a step that is hard to take back.
#[derive(Debug, Clone, PartialEq)]
pub struct Confirm {
    pub title: String,
    pub lines: Vec<String>,
    /// What runs on "yes".
    pub effects: Vec<Effect>,
    /// The message shown while it runs.
    pub working: String,
}

/// How often the workbench checks the cache for writes by other processes.
pub const POLL: std::time::Duration = std::time::Duration::from_secs(2);

/// An override this many times the deal (or more) asks first.
pub const OVERRIDE_CONFIRM_FACTOR: i64 = 1;

impl App {
    /// Actions this module handles (or prepares) before the generic update; `None` lets
    /// the generic update run.
    pub fn flow_update(&mut self, action: Action) -> Option<Vec<Effect>> {
        let rec = self.view == View::Record;
        match action {
            Action::PageDown | Action::PageUp | Action::Top | Action::Bottom if rec => {
                let page = self.size.get().1.saturating_sub(10).max(1);
                let max = self.pane_max.get();
                self.pane_scroll = match action {
                    Action::PageDown => self.pane_scroll.saturating_add(page).min(max),
                    Action::PageUp => self.pane_scroll.saturating_sub(page),
                    Action::Top => 0,
                    _ => max,
                };
                Some(vec![])
            }
            Action::JumpLinked => Some(self.jump_linked()),
            Action::NextRecord => Some(self.step_record(1)),
            Action::PrevRecord => Some(self.step_record(-1)),
            Action::NextUnreviewed => Some(self.next_unreviewed()),
            Action::Back if rec && self.nav.record_from == View::Signoff => {
                self.view = View::Signoff;
                Some(vec![Effect::LoadSignoff])
            }
            Action::Back if rec && self.nav.record_from == View::Outbox => {
                self.view = View::Outbox;
                Some(self.outbox_effect())
            }
            Action::Back if rec && self.nav.record_from == View::Disputes => {
                self.view = View::Disputes;
                Some(self.disputes_effect())
            }
            Action::Open | Action::NextPane | Action::PrevPane
                if matches!(self.view, View::Queue | View::Signoff) =>
            {
                self.nav.record_from = self.view;
                None
            }
            Action::CopyId => {
                let id = match self.view {
                    View::Signoff => self
                        .signoff
                        .rows
                        .get(self.signoff.sel)
                        .map(|r| r.transaction_id.clone()),
                    View::Record => self.detail_id.clone(),
                    View::Disputes => self.disputes.selected().map(|l| l.transaction_id.clone()),
                    _ => self.queue.current().map(|r| r.transaction_id.clone()),
                };
                Some(match id {
                    Some(id) => {
                        self.say(Level::Ok, format!("copied {id}"));
                        vec![Effect::Copy(id)]
                    }
                    None => {
                        self.say(Level::Error, "nothing selected");
                        vec![]
                    }
                })
            }
            Action::ExportView => {
                self.say(Level::Info, "working: exporting the queue as CSV …");
                Some(vec![Effect::ExportCsv {
                    filter: self.queue.filter.clone(),
                    sort: self.queue.sort,
                }])
            }
            Action::Approve => self.confirm_approve(),
            Action::Undo => self.bulk_undo(),
            Action::Reject if self.role != Role::Manager => {
                self.say(
                    Level::Error,
                    "reject is for managers: sign-off decisions need the manager role (--role manager)",
                );
                Some(vec![])
            }
            _ => None,
        }
    }

    fn say(&mut self, level: Level, text: impl Into<String>) {
        self.message = Some((level, text.into()));
    }

    /// Whether the record view shows a record opened from Sign-off.
    fn in_signoff_record(&self) -> bool {
        self.view == View::Record && self.nav.record_from == View::Signoff
    }

    /// `]` / `[`: the next / previous record of the list the record came from.
    pub fn step_record(&mut self, by: isize) -> Vec<Effect> {
        if self.in_signoff_record() || self.view == View::Signoff {
            let n = self.signoff.rows.len();
            if n == 0 {
                return vec![];
            }
            self.signoff.sel = super::app::stepped(self.signoff.sel, by, n);
            if self.view != View::Record {
                return vec![];
            }
            let Some(id) = self
                .signoff
                .rows
                .get(self.signoff.sel)
                .map(|r| r.transaction_id.clone())
            else {
                return vec![];
            };
            if self.detail_id.as_deref() == Some(id.as_str()) {
                return vec![];
            }
            self.detail_id = Some(id.clone());
            self.pane_scroll = 0;
            return vec![Effect::LoadDetail(id)];
        }
        // In the queue (and a record opened from it) this is one row down/up.
        self.move_queue_sel(by)
    }

    fn move_queue_sel(&mut self, by: isize) -> Vec<Effect> {
        let n = self.queue.rows.len();
        if n == 0 {
            return vec![];
        }
        self.queue.sel = super::app::stepped(self.queue.sel, by, n);
        self.selection_changed()
    }

    /// `n`: the next record nobody has reviewed yet (state `flagged`) after the selection.
    pub fn next_unreviewed(&mut self) -> Vec<Effect> {
        let from = self.queue.sel + 1;
        let found = self
            .queue
            .rows
            .iter()
            .enumerate()
            .skip(from)
            .find(|(_, r)| r.status == "flagged")
            .map(|(i, _)| i);
        match found {
            Some(i) => {
                self.queue.sel = i;
                self.selection_changed()
            }
            None if !self.queue.at_bottom => {
                // Go to the end of the loaded rows: the next page loads, press again.
                self.queue.sel = self.queue.rows.len().saturating_sub(1);
                self.say(
                    Level::Info,
                    "no unreviewed record in the loaded rows: loading more, press again",
                );
                self.selection_changed()
            }
            None => {
                self.say(Level::Info, "no unreviewed record below this one");
                vec![]
            }
        }
    }

    /// Idle tick of the render loop: every [`POLL`] ask whether another process wrote.
    pub fn tick(&mut self, now: std::time::Instant) -> Vec<Effect> {
        if self
            .nav
            .last_poll
            .is_some_and(|t| now.duration_since(t) < POLL)
        {
            return vec![];
        }
        self.nav.last_poll = Some(now);
        vec![Effect::CheckDataVersion]
    }

    /// Another connection committed since the last look: reload what the views show.
    pub fn on_data_version(&mut self, v: i64) -> Vec<Effect> {
        let before = self.nav.data_version.replace(v);
        match before {
            Some(old) if old != v && !self.bg.running => {
                let mut fx = vec![Effect::BuildSearchIndex];
                fx.extend(self.refresh_views());
                fx
            }
            _ => vec![],
        }
    }

    /// A queue page replaced the window: select the row `:goto` asked for.
    pub fn after_queue_page(&mut self) {
        if let Some(id) = self.nav.goto.take() {
            if let Some(i) = self.queue.rows.iter().position(|r| r.transaction_id == id) {
                self.queue.sel = i;
            }
        }
    }

    /// Called with the effects a key produced: a decision on one record arms auto-advance.
    pub fn note_effects(&mut self, fx: &[Effect]) {
        for e in fx {
            if let Effect::Decide { ids, .. } | Effect::Signoff { ids, .. } = e {
                self.nav.advance_after = match ids.as_slice() {
                    [one] if self.nav.auto_advance && self.view != View::Forecast => {
                        Some(one.clone())
                    }
                    _ => None,
                };
            }
        }
    }

    /// A workflow command finished: on success, move on from the decided record.
    pub fn after_done(&mut self, ok: bool) -> Vec<Effect> {
        let Some(id) = self.nav.advance_after.take() else {
            return vec![];
        };
        if !ok {
            return vec![];
        }
        let current = if self.view == View::Signoff || self.in_signoff_record() {
            self.signoff
                .rows
                .get(self.signoff.sel)
                .map(|r| r.transaction_id.clone())
        } else {
            self.queue.current().map(|r| r.transaction_id.clone())
        };
        if current.as_deref() != Some(id.as_str()) {
            return vec![];
        }
        match self.view {
            View::Record | View::Signoff => self.step_record(1),
            View::Queue => self.move_queue_sel(1),
            _ => vec![],
        }
    }

    /// `L`: opens the next record linked to the one the jumps started on (its original,
    /// split siblings, a refund's sale), then back to it, round and round.
    fn jump_linked(&mut self) -> Vec<Effect> {
        let Some(cur) = self
            .detail_id
            .clone()
            .or_else(|| self.queue.current().map(|r| r.transaction_id.clone()))
        else {
            self.say(Level::Error, "nothing selected");
            return vec![];
        };
        let cycle = match &self.nav.linked {
            Some((start, ids)) if start == &cur || ids.contains(&cur) => {
                let mut ring = vec![start.clone()];
                ring.extend(ids.iter().cloned());
                ring
            }
            _ => {
                let Some(d) = self.detail.as_ref().filter(|d| d.tx.transaction_id == cur) else {
                    self.say(Level::Info, "the record is loading: press L again");
                    return vec![];
                };
                let ids = linked_ids(d);
                if ids.is_empty() {
                    self.say(Level::Info, format!("{cur}: no linked records"));
                    return vec![];
                }
                self.nav.linked = Some((cur.clone(), ids.clone()));
                let mut ring = vec![cur.clone()];
                ring.extend(ids);
                ring
            }
        };
        let at = cycle.iter().position(|i| i == &cur).unwrap_or(0);
        let next = cycle[(at + 1) % cycle.len()].clone();
        if self.view != View::Record {
            self.nav.record_from = self.view;
            self.view = View::Record;
        }
        self.say(
            Level::Info,
            format!(
                "linked {}/{}: {next} (L for the next)",
                (at + 1) % cycle.len() + 1,
                cycle.len()
            ),
        );
        self.detail_id = Some(next.clone());
        self.detail = None;
        self.pane_scroll = 0;
        vec![Effect::LoadDetail(next)]
    }

    /// `a`: one record approves at once; several (bulk) and every sign-off ask first,
    /// showing the count and the total change.
    fn confirm_approve(&mut self) -> Option<Vec<Effect>> {
        let signoff = self.view == View::Signoff || self.in_signoff_record();
        let ids = self.decision_targets();
        if ids.is_empty() {
            return None;
        }
        if signoff {
            if self.role != Role::Manager {
                self.say(
                    Level::Error,
                    "sign-off needs the manager role (--role manager)",
                );
                return Some(vec![]);
            }
            let (n, total) = self.signoff_total(&ids);
            self.modal = Some(Modal::Confirm(Box::new(Confirm {
                title: "Sign off".into(),
                lines: vec![
                    format!(
                        "Sign off {} adjustment(s), total Δ {}?",
                        ids.len(),
                        format_money(total, self.currency())
                    ),
                    if n < ids.len() {
                        format!(
                            "({} of them not in the loaded list: not in the total)",
                            ids.len() - n
                        )
                    } else {
                        "They are queued for the PRM once signed off.".into()
                    },
                ],
                working: format!("working: signing off {} …", ids.len()),
                effects: vec![Effect::Signoff {
                    ids,
                    approve: true,
                    reason: "signed off in the workbench".into(),
                }],
            })));
            return Some(vec![]);
        }
        if ids.len() < 2 {
            return None;
        }
        let (with, total) = self.queue_total(&ids);
        self.modal = Some(Modal::Confirm(Box::new(Confirm {
            title: "Approve".into(),
            lines: vec![
                format!(
                    "Approve {} records, total Δ {}?",
                    ids.len(),
                    format_money(total, self.currency())
                ),
                format!("{with} of them carry a proposal; the rest are approved as they are."),
            ],
            working: format!("working: approving {} …", ids.len()),
            effects: vec![Effect::Decide {
                ids,
                decision: Decision::Approve,
                reason: "approved in the workbench".into(),
            }],
        })));
        Some(vec![])
    }

    /// `u` on several selected records: undo each, after a confirmation.
    fn bulk_undo(&mut self) -> Option<Vec<Effect>> {
        let ids = self.decision_targets();
        if ids.len() < 2 {
            return None;
        }
        self.modal = Some(Modal::Confirm(Box::new(Confirm {
            title: "Undo".into(),
            lines: vec![
                format!("Undo the latest decision on {} records?", ids.len()),
                "Each is undone on its own; one that cannot be undone is named.".into(),
            ],
            working: format!("working: undoing {} …", ids.len()),
            effects: vec![Effect::UndoBatch(ids)],
        })));
        Some(vec![])
    }

    /// The records a decision applies to: the marked rows of the list, else the current.
    pub fn decision_targets(&self) -> Vec<String> {
        let (marked, current) = match self.view {
            View::Signoff => (
                &self.signoff.marked,
                self.signoff
                    .rows
                    .get(self.signoff.sel)
                    .map(|r| r.transaction_id.clone()),
            ),
            View::Record => return self.detail_id.clone().into_iter().collect(),
            View::Queue => (
                &self.queue.marked,
                self.queue.current().map(|r| r.transaction_id.clone()),
            ),
            _ => return vec![],
        };
        if marked.is_empty() {
            current.into_iter().collect()
        } else {
            marked.iter().cloned().collect()
        }
    }

    /// (rows found, total Δ) of sign-off rows among `ids`.
    fn signoff_total(&self, ids: &[String]) -> (usize, Decimal) {
        let mut n = 0;
        let mut total = Decimal::ZERO;
        for r in self
            .signoff
            .rows
            .iter()
            .filter(|r| ids.contains(&r.transaction_id))
        {
            n += 1;
            total += parse_money(&r.delta).unwrap_or_default();
        }
        (n, total)
    }

    /// (rows with a proposal, total Δ of their proposals) among the loaded queue rows.
    fn queue_total(&self, ids: &[String]) -> (usize, Decimal) {
        let mut n = 0;
        let mut total = Decimal::ZERO;
        for r in self
            .queue
            .rows
            .iter()
            .filter(|r| ids.contains(&r.transaction_id))
        {
            if let Some(d) = r.delta.as_deref().and_then(parse_money) {
                n += 1;
                total += d;
            }
        }
        (n, total)
    }

    /// An override of one record far beyond its deal (at least the deal's amount) asks
    /// first; otherwise the decision runs.
    pub fn confirm_override(
        &mut self,
        ids: &[String],
        amount: Decimal,
        fx: Vec<Effect>,
    ) -> Vec<Effect> {
        let deal = match ids {
            [one] => self
                .detail
                .as_ref()
                .filter(|d| &d.tx.transaction_id == one)
                .and_then(|d| parse_money(&d.tx.amount))
                .or_else(|| {
                    self.queue
                        .rows
                        .iter()
                        .find(|r| &r.transaction_id == one)
                        .and_then(|r| parse_money(&r.amount))
                }),
            _ => None,
        };
        let Some(deal) = deal else {
            return fx;
        };
        let limit = deal.abs() * Decimal::from(OVERRIDE_CONFIRM_FACTOR);
        if amount.abs() <= limit {
            return fx;
        }
        let cur = self.currency().to_string();
        self.modal = Some(Modal::Confirm(Box::new(Confirm {
            title: "Override far beyond the deal".into(),
            lines: vec![
                format!(
                    "The override {} is more than the whole deal ({}).",
                    format_money(amount, &cur),
                    format_money(deal, &cur)
                ),
                "Is this amount right?".into(),
            ],
            working: "working: override …".into(),
            effects: fx,
        })));
        vec![]
    }

    /// Keys of an open confirmation: y / Enter runs it, n / Esc cancels.
    pub fn confirm_key(&mut self, c: Box<Confirm>, key: KeyEvent) -> Vec<Effect> {
        match key.code {
            KeyCode::Char('y') | KeyCode::Char('Y') | KeyCode::Enter => {
                self.say(Level::Info, c.working.clone());
                c.effects
            }
            KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc => {
                self.nav.advance_after = None;
                self.say(Level::Info, "cancelled; nothing was changed");
                vec![]
            }
            _ => {
                self.modal = Some(Modal::Confirm(c));
                vec![]
            }
        }
    }
}

/// The records linked to a record, in order: the original it may duplicate, the other
/// deals of its split group, the sale a refund returns. Never the record itself.
pub fn linked_ids(d: &crate::store::queue::RecordDetail) -> Vec<String> {
    let me = d.tx.transaction_id.as_str();
    let mut out: Vec<String> = Vec::new();
    let mut add = |id: &str| {
        if !id.is_empty() && id != me && !out.iter().any(|o| o == id) {
            out.push(id.to_string());
        }
    };
    if let Some(o) = &d.original {
        add(&o.transaction_id);
    }
    if let Some(f) = &d.flag {
        for (k, v) in &f.evidence {
            if k.ends_with("duplicate_of") {
                add(v);
            } else if k.ends_with(".group") || k == "group" {
                if let Ok(ids) = serde_json::from_str::<Vec<String>>(v) {
                    ids.iter().for_each(|i| add(i));
                }
            }
        }
    }
    if let Some(sale) = &d.tx.original_transaction_id {
        add(sale);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::store::queue::QueueRow;
    use crate::tui::app::{KIND_CHOICES, STATUS_CHOICES};
    use crate::tui::keymap::Keymap;
    use crate::tui::theme::Theme;
    use crossterm::event::KeyModifiers;
    use std::collections::BTreeMap;

    fn app(role: Role) -> App {
        let mut a = App::new(
            "bob".into(),
            role,
            Config::default(),
            Theme::monochrome(),
            Keymap::new(&BTreeMap::new()).unwrap(),
        );
        a.queue.rows = (0..5)
            .map(|i| QueueRow {
                transaction_id: format!("T{i}"),
                amount: "1000.00".into(),
                status: if i == 3 { "flagged" } else { "in_review" }.into(),
                delta: Some("-10.00".into()),
                ..Default::default()
            })
            .collect();
        a.queue.at_bottom = true;
        a
    }

    fn key(a: &mut App, c: KeyCode) -> Vec<Effect> {
        a.on_key(KeyEvent::new(c, KeyModifiers::NONE))
    }

    #[test]
    fn keys_do_nothing_behind_terminal_too_small_but_quit() {
        let mut a = app(Role::Analyst);
        a.size.set((50, 12));
        assert!(key(&mut a, KeyCode::Char('j')).is_empty());
        assert_eq!(a.queue.sel, 0);
        key(&mut a, KeyCode::Char('V'));
        assert!(
            a.queue.marked.is_empty(),
            "V acted behind the too-small screen"
        );
        key(&mut a, KeyCode::Char('q'));
        assert!(a.quit);
    }

    #[test]
    fn a_decision_on_one_record_advances_after_it_succeeds() {
        let mut a = app(Role::Analyst);
        let fx = key(&mut a, KeyCode::Char('a'));
        assert!(
            matches!(fx.as_slice(), [Effect::Decide { ids, .. }] if ids == &["T0".to_string()])
        );
        a.on_msg(crate::tui::effects::Msg::Done {
            ok: true,
            text: "T0: approve → queued_for_push".into(),
        });
        assert_eq!(a.queue.sel, 1, "no auto-advance");
        // Off in the config: the selection stays.
        let mut b = app(Role::Analyst);
        b.nav.auto_advance = false;
        key(&mut b, KeyCode::Char('a'));
        b.on_msg(crate::tui::effects::Msg::Done {
            ok: true,
            text: "x".into(),
        });
        assert_eq!(b.queue.sel, 0);
        // A failed decision does not move on.
        let mut c = app(Role::Analyst);
        key(&mut c, KeyCode::Char('a'));
        c.on_msg(crate::tui::effects::Msg::Done {
            ok: false,
            text: "refused".into(),
        });
        assert_eq!(c.queue.sel, 0);
    }

    #[test]
    fn an_override_beyond_the_deal_asks_first() {
        let mut a = app(Role::Analyst);
        let fx = a.confirm_override(
            &["T0".into()],
            Decimal::new(99_999_999_999, 0),
            vec![Effect::LoadCounters],
        );
        assert!(fx.is_empty());
        let Some(Modal::Confirm(c)) = &a.modal else {
            panic!("no confirmation");
        };
        assert!(
            c.lines[0].contains("more than the whole deal"),
            "{:?}",
            c.lines
        );
        assert_eq!(key(&mut a, KeyCode::Char('y')), vec![Effect::LoadCounters]);
        // Within the deal: runs at once.
        let fx = a.confirm_override(
            &["T0".into()],
            Decimal::new(500, 0),
            vec![Effect::LoadCounters],
        );
        assert_eq!(fx, vec![Effect::LoadCounters]);
    }

    #[test]
    fn next_unreviewed_skips_reviewed_rows_and_data_version_changes_refresh() {
        let mut a = app(Role::Analyst);
        key(&mut a, KeyCode::Char('n'));
        assert_eq!(a.queue.sel, 3);
        key(&mut a, KeyCode::Char('n'));
        assert_eq!(a.queue.sel, 3);
        assert!(matches!(&a.message, Some((_, m)) if m.contains("no unreviewed")));
        // The first version read only records it; a change reloads the views.
        assert!(a
            .on_msg(crate::tui::effects::Msg::DataVersion(4))
            .is_empty());
        assert!(a
            .on_msg(crate::tui::effects::Msg::DataVersion(4))
            .is_empty());
        let fx = a.on_msg(crate::tui::effects::Msg::DataVersion(5));
        assert!(
            fx.iter().any(|e| matches!(e, Effect::LoadQueue { .. })),
            "{fx:?}"
        );
        let now = std::time::Instant::now();
        assert_eq!(a.tick(now), vec![Effect::CheckDataVersion]);
        assert!(a.tick(now).is_empty(), "polled again within {POLL:?}");
    }

    /// `s` cycles the four sorts, `O` flips the direction; each asks for the queue in
    /// that order from the top.
    #[test]
    fn sort_cycles_to_age_and_reverse_flips_the_order() {
        use crate::store::queue::{QueueOrder, QueueSort};
        let mut a = app(Role::Analyst);
        let order = |fx: &[Effect]| match fx {
            [Effect::LoadQueue { sort, cursor, .. }] => {
                assert!(cursor.is_none(), "a new order starts at the top");
                *sort
            }
            other => panic!("{other:?}"),
        };
        let mut got = Vec::new();
        for _ in 0..4 {
            got.push(order(&key(&mut a, KeyCode::Char('s'))));
        }
        let sorts: Vec<QueueSort> = got.iter().map(|o| o.sort).collect();
        assert_eq!(
            sorts,
            [
                QueueSort::AtStake,
                QueueSort::Amount,
                QueueSort::Age,
                QueueSort::Rank
            ]
        );
        assert!(got.iter().all(|o| !o.reverse));
        let o = order(&key(&mut a, KeyCode::Char('O')));
        assert_eq!(
            o,
            QueueOrder {
                sort: QueueSort::Rank,
                reverse: true
            }
        );
        assert!(matches!(&a.message, Some((_, m)) if m == "sorted by score ↑"));
        // The direction stays when the sort changes.
        let o = order(&key(&mut a, KeyCode::Char('s')));
        assert!(o.reverse && o.sort == QueueSort::AtStake);
        assert_eq!(a.queue.sort.label(), "by at stake ↑");
        key(&mut a, KeyCode::Char('O'));
        assert_eq!(a.queue.sort.label(), "by at stake ↓");
    }

    /// In the filter dialog space adds kinds and states (any of them), the last line
    /// is "needs me"; opening it again shows the lists; `x` clears a line.
    #[test]
    fn the_filter_dialog_adds_values_and_needs_me() {
        let mut a = app(Role::Manager);
        key(&mut a, KeyCode::Char('f'));
        // kind: the first two choices, each added with space.
        key(&mut a, KeyCode::Right);
        key(&mut a, KeyCode::Char(' '));
        key(&mut a, KeyCode::Right);
        key(&mut a, KeyCode::Char(' '));
        // status: flagged and escalated.
        key(&mut a, KeyCode::Down);
        key(&mut a, KeyCode::Right);
        key(&mut a, KeyCode::Char(' '));
        for _ in 0..5 {
            key(&mut a, KeyCode::Right);
        }
        key(&mut a, KeyCode::Char(' '));
        // needs me: the last line, from the first one upwards.
        key(&mut a, KeyCode::Up);
        key(&mut a, KeyCode::Up);
        key(&mut a, KeyCode::Char(' '));
        let fx = key(&mut a, KeyCode::Enter);
        assert!(matches!(fx.as_slice(), [Effect::LoadQueue { .. }]));
        let f = &a.queue.filter;
        assert_eq!(f.kind, vec![KIND_CHOICES[0], KIND_CHOICES[1]]);
        assert_eq!(f.status, vec![STATUS_CHOICES[0], STATUS_CHOICES[5]]);
        assert_eq!(STATUS_CHOICES[5], "escalated");
        assert_eq!(
            f.needs_me,
            Some(crate::store::queue::NeedsMe {
                role: Role::Manager,
                user: "bob".into()
            })
        );
        // Reopened: the lists come back; x on the kind line clears it, space removes one.
        key(&mut a, KeyCode::Char('f'));
        match &a.modal {
            Some(Modal::Filter(ff)) => {
                assert_eq!(ff.kinds.len(), 2);
                assert!(ff.mine);
            }
            _ => panic!("the filter dialog did not open"),
        }
        key(&mut a, KeyCode::Char('x'));
        key(&mut a, KeyCode::Down);
        key(&mut a, KeyCode::Right);
        key(&mut a, KeyCode::Char(' '));
        key(&mut a, KeyCode::Enter);
        assert!(a.queue.filter.kind.is_empty());
        assert_eq!(a.queue.filter.status, vec!["escalated"]);
        // Clear filter clears everything, needs me included.
        key(&mut a, KeyCode::Char('F'));
        assert!(a.queue.filter.is_empty());
    }

    #[test]
    fn the_palette_runs_commands_with_arguments() {
        let mut a = app(Role::Analyst);
        key(&mut a, KeyCode::Char(':'));
        for c in "filter kind=dup status=flagged".chars() {
            key(&mut a, KeyCode::Char(c));
        }
        let fx = key(&mut a, KeyCode::Enter);
        assert_eq!(a.queue.filter.kind, vec!["duplicate".to_string()]);
        assert_eq!(a.queue.filter.status, vec!["flagged".to_string()]);
        assert!(matches!(fx.as_slice(), [Effect::LoadQueue { .. }]));
        key(&mut a, KeyCode::Char(':'));
        for c in "theme light".chars() {
            key(&mut a, KeyCode::Char(c));
        }
        key(&mut a, KeyCode::Enter);
        if !crate::tui::theme::no_color_env() {
            assert_eq!(a.theme.name, "light");
        }
        key(&mut a, KeyCode::Char(':'));
        for c in "goto T4".chars() {
            key(&mut a, KeyCode::Char(c));
        }
        let fx = key(&mut a, KeyCode::Enter);
        assert_eq!(a.view, View::Record);
        assert!(fx.contains(&Effect::LoadDetail("T4".into())));
        // Typing "sync" runs sync, not refresh.
        key(&mut a, KeyCode::Esc);
        key(&mut a, KeyCode::Char(':'));
        for c in "sync".chars() {
            key(&mut a, KeyCode::Char(c));
        }
        assert_eq!(key(&mut a, KeyCode::Enter), vec![Effect::SyncNow]);
    }

    #[test]
    fn the_status_bar_never_says_online_without_a_prm() {
        let mut a = app(Role::Analyst);
        a.sync.online = Some(true);
        for w in [80u16, 120] {
            let mut term =
                ratatui::Terminal::new(ratatui::backend::TestBackend::new(w, 24)).unwrap();
            term.draw(|f| crate::tui::ui::draw(f, &a)).unwrap();
            let text: String = term
                .backend()
                .buffer()
                .content()
                .iter()
                .map(|c| c.symbol())
                .collect();
            assert!(!text.contains("online"), "claims online at {w} columns");
            assert!(text.contains("offline"));
        }
        a.config.prm = Some(crate::config::PrmConfig::new(
            "http://127.0.0.1:1",
            "partnerstack",
            None,
        ));
        let mut term = ratatui::Terminal::new(ratatui::backend::TestBackend::new(120, 24)).unwrap();
        term.draw(|f| crate::tui::ui::draw(f, &a)).unwrap();
        let text: String = term
            .backend()
            .buffer()
            .content()
            .iter()
            .map(|c| c.symbol())
            .collect();
        assert!(text.contains("online"));
    }
}
