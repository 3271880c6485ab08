//! Ask (`A`): a one-line question answered from the records, each sentence with its
//! citations (the deterministic answerer of `tierdesk ask`, `crate::answer`). With a
//! record open the prompt is prefilled with its transaction and scoped to its partner
//! (as `tierdesk ask --partner`); the answer opens in an overlay that scrolls and
//! closes with Esc. The program (book) and facts are loaded once on the worker and kept
//! until something writes to the cache.

use crossterm::event::{KeyCode, KeyEvent};
use tui_textarea::TextArea;

use crate::answer::{Answer, Facts};
use crate::store::Store;

use super::app::{App, Level, Modal, View};
use super::effects::Effect;

/// The question prompt.
pub struct AskPrompt {
    pub input: TextArea<'static>,
    /// Answers cite only this partner's records (the open record's partner).
    pub partner: Option<String>,
    /// The open record's transaction, for the title.
    pub transaction: Option<String>,
    pub error: Option<String>,
}

impl AskPrompt {
    pub fn text(&self) -> String {
        self.input.lines().join(" ").trim().to_string()
    }
}

/// An answer as the overlay shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct AnswerView {
    pub question: String,
    pub partner: Option<String>,
    pub answer: Answer,
    pub scroll: u16,
}

/// The worker's program and facts for answers, with the cache's data version they were
/// read at.
pub(crate) struct AskCache {
    loaded: crate::service::records::Loaded,
    facts: Facts,
    version: i64,
}

/// Answers `question` (on the worker), scoped to `partner` when given. Reuses `cache`
/// while nothing else wrote to the cache (the worker drops it after its own writes).
pub(crate) fn answer(
    store: &Store,
    cache: &mut Option<AskCache>,
    question: &str,
    partner: Option<&str>,
    assistant: Option<&crate::answer::model::AssistantConfig>,
) -> Result<Answer, String> {
    let s = |e: anyhow::Error| format!("{e:#}");
    let version = store.data_version().map_err(|e| e.to_string())?;
    if cache.as_ref().is_none_or(|c| c.version != version) {
        // The whole program is loaded: on very large caches the CLI is the place.
        let n = store.transaction_rowid_max().map_err(|e| e.to_string())?;
        if n > super::effects::EXPLAIN_MAX_TRANSACTIONS {
            return Err(format!(
                "this cache has {n} transactions: run `tierdesk ask \"…\"` for answers"
            ));
        }
        *cache = Some(AskCache {
            loaded: crate::service::records::load(store).map_err(s)?,
            facts: crate::service::records::facts(store).map_err(s)?,
            version,
        });
    }
    let c = cache.as_ref().ok_or("no program")?;
    crate::service::records::check_partner(&c.loaded.ds, partner).map_err(s)?;
    let book = c.loaded.book(crate::service::records::now());
    let det = crate::answer::answer(&book, &c.facts, partner, question);
    // The configured model may rephrase it (checked, else the deterministic answer).
    Ok(crate::answer::model::maybe_rephrase(
        assistant, &book, &c.facts, partner, question, det,
    ))
}

impl App {
    /// `A`: the prompt, prefilled from the open record (its transaction, its partner's
    /// scope).
    pub(crate) fn open_ask(&mut self) -> Vec<Effect> {
        let record = match self.view {
            View::Record => self.detail.as_ref().map(|d| &d.tx),
            _ => None,
        };
        let mut input = TextArea::default();
        input
            .set_placeholder_text("e.g. Why was T00000001 adjusted? · Was it paid? · Who decided?");
        let (partner, transaction) = match record {
            Some(tx) => {
                input.insert_str(format!("Why was {} adjusted?", tx.transaction_id));
                (Some(tx.partner_id.clone()), Some(tx.transaction_id.clone()))
            }
            None => (None, None),
        };
        self.modal = Some(Modal::Ask(Box::new(AskPrompt {
            input,
            partner,
            transaction,
            error: None,
        })));
        vec![]
    }

    /// Keys of the prompt: Enter asks, Esc cancels, the rest edits the line.
    pub(crate) fn ask_key(&mut self, mut p: Box<AskPrompt>, key: KeyEvent) -> Vec<Effect> {
        match key.code {
            KeyCode::Esc => vec![],
            KeyCode::Enter => {
                let question = p.text();
                if question.is_empty() {
                    p.error = Some("type a question first".into());
                    self.modal = Some(Modal::Ask(p));
                    return vec![];
                }
                self.message = Some((Level::Info, "working: asking the records …".into()));
                vec![Effect::Ask {
                    question,
                    partner: p.partner.clone(),
                }]
            }
            _ => {
                p.input.input(key);
                p.error = None;
                self.modal = Some(Modal::Ask(p));
                vec![]
            }
        }
    }

    /// Keys of the answer overlay: it scrolls; Esc (or q, Enter) closes it.
    pub(crate) fn answer_key(&mut self, mut a: Box<AnswerView>, key: KeyEvent) -> Vec<Effect> {
        let max = a
            .answer
            .answer
            .iter()
            .map(|s| s.text.len() / 40 + 2)
            .sum::<usize>()
            .min(u16::MAX as usize) as u16;
        a.scroll = match key.code {
            KeyCode::Esc | KeyCode::Char('q') | KeyCode::Enter => return vec![],
            KeyCode::Down | KeyCode::Char('j') => a.scroll.saturating_add(1),
            KeyCode::Up | KeyCode::Char('k') => a.scroll.saturating_sub(1),
            KeyCode::PageDown | KeyCode::Char(' ') => a.scroll.saturating_add(10),
            KeyCode::PageUp => a.scroll.saturating_sub(10),
            KeyCode::Home | KeyCode::Char('g') => 0,
            _ => a.scroll,
        }
        .min(max);
        self.modal = Some(Modal::Answer(a));
        vec![]
    }

    /// The worker's answer: shown in the overlay (an error in the status line).
    pub(crate) fn on_answer(
        &mut self,
        question: String,
        partner: Option<String>,
        r: Result<Box<Answer>, String>,
    ) -> Vec<Effect> {
        match r {
            Ok(answer) => {
                self.message = None;
                self.modal = Some(Modal::Answer(Box::new(AnswerView {
                    question,
                    partner,
                    answer: *answer,
                    scroll: 0,
                })));
            }
            Err(e) => self.message = Some((Level::Error, format!("ask: {e}"))),
        }
        vec![]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Role};
    use crate::tui::action::Action;
    use crate::tui::keymap::Keymap;
    use crate::tui::theme::Theme;
    use crossterm::event::KeyModifiers;
    use std::collections::BTreeMap;

    fn key(c: KeyCode) -> KeyEvent {
        KeyEvent::new(c, KeyModifiers::NONE)
    }

    #[test]
    fn the_prompt_asks_on_enter_and_the_answer_closes_on_esc() {
        let mut a = App::new(
            "ana".into(),
            Role::Analyst,
            Config::default(),
            Theme::monochrome(),
            Keymap::new(&BTreeMap::new()).unwrap(),
        );
        a.size.set((80, 24));
        assert_eq!(a.update(Action::Ask), vec![]);
        assert!(matches!(a.modal, Some(Modal::Ask(_))));
        // Enter on nothing asks nothing.
        assert_eq!(a.on_key(key(KeyCode::Enter)), vec![]);
        assert!(matches!(&a.modal, Some(Modal::Ask(p)) if p.error.is_some()));
        for c in "who decided T1?".chars() {
            a.on_key(key(KeyCode::Char(c)));
        }
        assert_eq!(
            a.on_key(key(KeyCode::Enter)),
            vec![Effect::Ask {
                question: "who decided T1?".into(),
                partner: None
            }]
        );
        a.on_answer(
            "who decided T1?".into(),
            None,
            Ok(Box::new(Answer {
                answer: vec![crate::statement::Sentence {
                    text: "ana approved it.".into(),
                    citations: vec!["decision:d1".into()],
                    derived: vec![],
                }],
                intent: "who_decided".into(),
                source: "deterministic".into(),
                fallback: None,
            })),
        );
        assert!(matches!(a.modal, Some(Modal::Answer(_))));
        a.on_key(key(KeyCode::Char('j')));
        assert!(matches!(&a.modal, Some(Modal::Answer(v)) if v.scroll == 1));
        a.on_key(key(KeyCode::Esc));
        assert!(a.modal.is_none());
        // An error goes to the status line.
        a.on_answer("x".into(), None, Err("no program".into()));
        assert!(matches!(&a.message, Some((Level::Error, m)) if m.contains("no program")));
    }
}
