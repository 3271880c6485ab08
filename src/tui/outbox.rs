//! The Outbox view as one component: what waits for the PRM, what was pushed, what was
//! refused and why, and the open conflicts. `Enter` opens the record of the selected
//! row (its Decision pane resolves a conflict), `S` syncs now. Drawing is in
//! `ui/outbox.rs`.

use crate::store::Store;
use crate::workflow::prm_write::{OutboxPayload, PrmWrite};

use super::action::Action;
use super::app::{stepped, App, Level, Pane, View};
use super::effects::Effect;

/// One line of the view: an outbox row, decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxLine {
    pub transaction_id: String,
    pub decision_id: String,
    /// pending | pushed | conflict | failed | cancelled
    pub status: String,
    /// The decision (approve, override, sign_off, undo, …).
    pub action: String,
    /// The PRM write (adjust 123.45, hold, release, …), or why it cannot be read.
    pub write: String,
    pub currency: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub created_at: String,
    pub pushed_at: Option<String>,
}

/// An open conflict: the PRM changed the record after the reviewer saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct ConflictLine {
    pub transaction_id: String,
    pub decision_id: String,
    pub created_at: String,
}

/// A PRM event `tierdesk listen` received (newest first).
#[derive(Debug, Clone, PartialEq)]
pub struct EventLine {
    pub received_at: String,
    pub provider: String,
    pub event_type: String,
    pub key: Option<String>,
    /// received | fetched | scored | failed | ignored
    pub state: String,
    pub error: Option<String>,
}

/// What the Outbox view shows, loaded on the worker.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OutboxData {
    /// Newest first; waiting and failed rows before pushed ones.
    pub lines: Vec<OutboxLine>,
    pub conflicts: Vec<ConflictLine>,
    /// The latest webhook events, shown below the decisions.
    pub events: Vec<EventLine>,
}

/// The view's state in the app.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OutboxState {
    pub data: Option<Result<Box<OutboxData>, String>>,
    pub loading: bool,
    /// Index into conflicts then lines (conflicts are listed first).
    pub sel: usize,
}

impl OutboxState {
    /// The transaction of the selected row.
    pub fn selected(&self) -> Option<&str> {
        let Some(Ok(d)) = &self.data else {
            return None;
        };
        if self.sel < d.conflicts.len() {
            return Some(d.conflicts[self.sel].transaction_id.as_str());
        }
        d.lines
            .get(self.sel - d.conflicts.len())
            .map(|l| l.transaction_id.as_str())
    }

    fn len(&self) -> usize {
        match &self.data {
            Some(Ok(d)) => d.conflicts.len() + d.lines.len(),
            _ => 0,
        }
    }
}

/// How a write reads in the list.
fn describe(w: &PrmWrite, currency: &str) -> String {
    let money = |d: &rust_decimal::Decimal| crate::money::format_money(*d, currency);
    match w {
        PrmWrite::Adjust {
            amount,
            current_amount,
        } => format!("adjust {} → {}", money(current_amount), money(amount)),
        PrmWrite::Hold { held_amount } => format!("hold {}", money(held_amount)),
        other => other.name().to_string(),
    }
}

/// Webhook events listed under the decisions.
pub const EVENTS_SHOWN: usize = 20;

/// Loads the view (on the worker): at most `limit` outbox rows.
pub fn load(store: &Store, limit: usize) -> Result<OutboxData, String> {
    let s = |e: crate::store::StoreError| e.to_string();
    let rows = store.wf().all_outbox().map_err(s)?;
    let mut lines: Vec<OutboxLine> = rows
        .into_iter()
        .rev()
        .take(limit)
        .map(|o| {
            let decoded = serde_json::from_str::<serde_json::Value>(&o.payload)
                .map_err(|e| e.to_string())
                .and_then(|v| OutboxPayload::decode(&v, &o.decision_id).map_err(|e| e.to_string()));
            let (action, write, currency) = match decoded {
                Ok(p) => (
                    p.action.clone(),
                    describe(&p.write, &p.currency),
                    p.currency,
                ),
                Err(e) => (
                    "?".into(),
                    format!("unreadable payload: {e}"),
                    String::new(),
                ),
            };
            OutboxLine {
                transaction_id: o.transaction_id,
                decision_id: o.decision_id,
                status: o.status,
                action,
                write,
                currency,
                attempts: o.attempts,
                last_error: o.last_error,
                created_at: o.created_at,
                pushed_at: o.pushed_at,
            }
        })
        .collect();
    // What needs attention first: refused and conflicting, then waiting, then done.
    let rank = |s: &str| match s {
        "failed" | "conflict" => 0,
        "pending" | "manual" => 1,
        _ => 2,
    };
    lines.sort_by_key(|l| rank(&l.status));
    let conflicts = store
        .conflicts()
        .map_err(s)?
        .into_iter()
        .map(|c| ConflictLine {
            transaction_id: c.transaction_id,
            decision_id: c.decision_id,
            created_at: c.created_at,
        })
        .collect();
    let events = store
        .webhook_events(EVENTS_SHOWN)
        .map_err(s)?
        .into_iter()
        .map(|e| EventLine {
            received_at: e.received_at,
            provider: e.provider,
            event_type: e.event_type,
            key: e.object_key,
            state: e.state.as_str().to_string(),
            error: e.error,
        })
        .collect();
    Ok(OutboxData {
        lines,
        conflicts,
        events,
    })
}

impl App {
    /// Asks the worker for the Outbox view unless it is on its way.
    pub(crate) fn outbox_effect(&mut self) -> Vec<Effect> {
        if self.outbox.loading {
            return vec![];
        }
        self.outbox.loading = true;
        vec![Effect::LoadOutbox]
    }

    /// Actions the Outbox view handles itself; `None` lets the app handle the rest.
    pub(crate) fn outbox_update(&mut self, action: Action) -> Option<Vec<Effect>> {
        if self.view != View::Outbox {
            return None;
        }
        let n = self.outbox.len();
        let page = self.size.get().1.saturating_sub(8).max(1) as isize;
        let step = |by: isize, a: &mut App| a.outbox.sel = stepped(a.outbox.sel, by, n);
        match action {
            Action::Up => step(-1, self),
            Action::Down => step(1, self),
            Action::PageUp => step(-page, self),
            Action::PageDown => step(page, self),
            Action::Top => self.outbox.sel = 0,
            Action::Bottom => self.outbox.sel = n.saturating_sub(1),
            Action::Back => self.view = View::Queue,
            Action::Refresh => {
                let mut fx = self.outbox_effect();
                fx.extend([Effect::LoadStatus, Effect::LoadCounters]);
                return Some(fx);
            }
            Action::Open => {
                let Some(id) = self.outbox.selected().map(str::to_string) else {
                    self.message = Some((Level::Error, "nothing selected".into()));
                    return Some(vec![]);
                };
                return Some(self.open_record_from(View::Outbox, Pane::Decision, id));
            }
            a if a.acts_on_cases() => {
                self.message = Some((
                    Level::Info,
                    "the Outbox lists what goes to the PRM: Enter opens the record to act on it"
                        .into(),
                ));
            }
            _ => return None,
        }
        Some(vec![])
    }

    /// The worker's answer for the Outbox view.
    pub(crate) fn on_outbox(&mut self, r: Result<Box<OutboxData>, String>) -> Vec<Effect> {
        self.outbox.loading = false;
        self.outbox.data = Some(r);
        self.outbox.sel = self.outbox.sel.min(self.outbox.len().saturating_sub(1));
        self.dirty = true;
        vec![]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Role};
    use crate::tui::keymap::Keymap;
    use crate::tui::theme::Theme;
    use std::collections::BTreeMap;

    fn line(tx: &str, status: &str) -> OutboxLine {
        OutboxLine {
            transaction_id: tx.into(),
            decision_id: format!("d-{tx}"),
            status: status.into(),
            action: "approve".into(),
            write: "approve".into(),
            currency: "USD".into(),
            attempts: 0,
            last_error: None,
            created_at: "2026-10-01T10:00:00Z".into(),
            pushed_at: None,
        }
    }

    #[test]
    fn conflicts_come_first_and_enter_opens_the_decision_pane() {
        let mut a = App::new(
            "ana".into(),
            Role::Analyst,
            Config::default(),
            Theme::monochrome(),
            Keymap::new(&BTreeMap::new()).unwrap(),
        );
        assert_eq!(a.update(Action::OutboxView), vec![Effect::LoadOutbox]);
        a.on_outbox(Ok(Box::new(OutboxData {
            lines: vec![line("T1", "failed"), line("T2", "pushed")],
            conflicts: vec![ConflictLine {
                transaction_id: "T9".into(),
                decision_id: "d9".into(),
                created_at: "2026-10-02T00:00:00Z".into(),
            }],
            events: vec![],
        })));
        assert_eq!(a.outbox.selected(), Some("T9"));
        a.update(Action::Down);
        assert_eq!(a.outbox.selected(), Some("T1"));
        a.update(Action::Bottom);
        assert_eq!(a.outbox.selected(), Some("T2"));
        let fx = a.update(Action::Open);
        assert_eq!(fx, vec![Effect::LoadDetail("T2".into())]);
        assert_eq!((a.view, a.pane), (View::Record, Pane::Decision));
        // Esc goes back to the Outbox.
        a.update(Action::Back);
        assert_eq!(a.view, View::Outbox);
    }

    /// What `tierdesk listen` stored shows under the decisions at 80x24, a manual
    /// decision as "to apply"; the cursor never lands on an event.
    #[test]
    fn events_and_decisions_left_for_the_prm_show_at_80x24() {
        let mut a = App::new(
            "ana".into(),
            Role::Analyst,
            Config::default(),
            Theme::monochrome(),
            Keymap::new(&BTreeMap::new()).unwrap(),
        );
        a.update(Action::OutboxView);
        let mut m = line("T3", "manual");
        m.last_error = Some("hold the rewards of transaction T3".into());
        a.on_outbox(Ok(Box::new(OutboxData {
            lines: vec![m],
            conflicts: vec![],
            events: vec![EventLine {
                received_at: "2026-10-03T09:15:00Z".into(),
                provider: "partnerstack".into(),
                event_type: "reward.updated".into(),
                key: Some("rwd_7".into()),
                state: "scored".into(),
                error: None,
            }],
        })));
        let mut term = ratatui::Terminal::new(ratatui::backend::TestBackend::new(80, 24)).unwrap();
        term.draw(|f| crate::tui::ui::draw(f, &a)).unwrap();
        let text: String = term
            .backend()
            .buffer()
            .content()
            .iter()
            .map(|c| c.symbol())
            .collect();
        assert!(text.contains("to apply"), "{text}");
        assert!(text.contains("1 to apply in the PRM"), "{text}");
        assert!(text.contains("PRM events"), "{text}");
        assert!(text.contains("reward.updated"), "{text}");
        assert!(text.contains("rwd_7"), "{text}");
        a.update(Action::Bottom);
        assert_eq!(a.outbox.selected(), Some("T3"));
    }

    #[test]
    fn a_write_reads_with_its_amounts() {
        let w = PrmWrite::Adjust {
            amount: rust_decimal::Decimal::new(10000, 2),
            current_amount: rust_decimal::Decimal::new(25050, 2),
        };
        assert_eq!(describe(&w, "USD"), "adjust $250.50 → $100.00");
        assert_eq!(describe(&PrmWrite::Release, "USD"), "release");
    }
}
