//! Keys to actions, built from `Action::default_keys` and `config.toml` `[keys]` overrides.

use std::collections::{BTreeMap, HashMap};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::action::Action;

/// A key with its modifiers, normalised so lookups match (shift folded into the char).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    pub code: KeyCode,
    pub ctrl: bool,
    pub alt: bool,
}

impl Key {
    pub fn from_event(ev: &KeyEvent) -> Key {
        // Shift is folded into the character (`G`), and Shift-Tab arrives as BackTab.
        Key {
            code: ev.code,
            ctrl: ev.modifiers.contains(KeyModifiers::CONTROL),
            alt: ev.modifiers.contains(KeyModifiers::ALT),
        }
    }

    /// The key as the help and hints show it (`ctrl-r`, `PgDn`, `/`).
    pub fn label(&self) -> String {
        let base = match self.code {
            KeyCode::Char(' ') => "Space".to_string(),
            KeyCode::Char(c) => c.to_string(),
            KeyCode::Up => "↑".into(),
            KeyCode::Down => "↓".into(),
            KeyCode::Left => "←".into(),
            KeyCode::Right => "→".into(),
            KeyCode::PageUp => "PgUp".into(),
            KeyCode::PageDown => "PgDn".into(),
            KeyCode::Home => "Home".into(),
            KeyCode::End => "End".into(),
            KeyCode::Enter => "Enter".into(),
            KeyCode::Esc => "Esc".into(),
            KeyCode::Tab => "Tab".into(),
            KeyCode::BackTab => "S-Tab".into(),
            KeyCode::Backspace => "Bksp".into(),
            KeyCode::Delete => "Del".into(),
            KeyCode::F(n) => format!("F{n}"),
            _ => "?".into(),
        };
        let mut s = String::new();
        if self.ctrl {
            s.push_str("C-");
        }
        if self.alt {
            s.push_str("M-");
        }
        s.push_str(&base);
        s
    }
}

/// Parses the config notation: `a`, `G`, `/`, `ctrl-r`, `alt-x`, `enter`, `esc`, `tab`,
/// `backtab`, `space`, `up`, `pagedown`, `home`, `f1`.
pub fn parse_key(s: &str) -> Option<Key> {
    let mut ctrl = false;
    let mut alt = false;
    let mut rest = s;
    loop {
        let lower = rest.to_ascii_lowercase();
        if let Some(r) = lower
            .strip_prefix("ctrl-")
            .or_else(|| lower.strip_prefix("c-"))
        {
            ctrl = true;
            rest = &rest[rest.len() - r.len()..];
        } else if let Some(r) = lower
            .strip_prefix("alt-")
            .or_else(|| lower.strip_prefix("m-"))
        {
            alt = true;
            rest = &rest[rest.len() - r.len()..];
        } else {
            break;
        }
    }
    let code = if rest.chars().count() == 1 {
        let c = rest.chars().next()?;
        KeyCode::Char(if ctrl { c.to_ascii_lowercase() } else { c })
    } else {
        match rest.to_ascii_lowercase().as_str() {
            "enter" | "return" => KeyCode::Enter,
            "esc" | "escape" => KeyCode::Esc,
            "tab" => KeyCode::Tab,
            "backtab" | "shift-tab" => KeyCode::BackTab,
            "space" => KeyCode::Char(' '),
            "up" => KeyCode::Up,
            "down" => KeyCode::Down,
            "left" => KeyCode::Left,
            "right" => KeyCode::Right,
            "pageup" | "pgup" => KeyCode::PageUp,
            "pagedown" | "pgdn" => KeyCode::PageDown,
            "home" => KeyCode::Home,
            "end" => KeyCode::End,
            "backspace" => KeyCode::Backspace,
            "delete" | "del" => KeyCode::Delete,
            f if f.starts_with('f') => KeyCode::F(f[1..].parse().ok()?),
            _ => return None,
        }
    };
    Some(Key { code, ctrl, alt })
}

/// The keymap: key -> action, and action -> keys (for help and hints).
#[derive(Debug, Clone)]
pub struct Keymap {
    by_key: HashMap<Key, Action>,
    keys: BTreeMap<Action, Vec<Key>>,
}

impl Keymap {
    /// Defaults, with `overrides` (action name -> key list) replacing an action's keys.
    /// Unknown action names or keys are errors naming them.
    pub fn new(overrides: &BTreeMap<String, Vec<String>>) -> anyhow::Result<Keymap> {
        let mut keys: BTreeMap<Action, Vec<Key>> = BTreeMap::new();
        for a in Action::ALL {
            let ks = a
                .default_keys()
                .iter()
                .filter_map(|k| parse_key(k))
                .collect();
            keys.insert(a, ks);
        }
        for (name, list) in overrides {
            let a = Action::from_name(name).ok_or_else(|| {
                anyhow::anyhow!("config [keys]: unknown action {name:?} (see `?` in the workbench)")
            })?;
            let mut ks = Vec::new();
            for k in list {
                ks.push(parse_key(k).ok_or_else(|| {
                    anyhow::anyhow!("config [keys]: {name} = {k:?} is not a key I understand")
                })?);
            }
            // A key given to this action is taken away from any other action.
            for other in keys.values_mut() {
                other.retain(|k| !ks.contains(k));
            }
            keys.insert(a, ks);
        }
        let mut by_key = HashMap::new();
        for (a, ks) in &keys {
            for k in ks {
                by_key.insert(*k, *a);
            }
        }
        Ok(Keymap { by_key, keys })
    }

    pub fn action(&self, ev: &KeyEvent) -> Option<Action> {
        let k = Key::from_event(ev);
        self.by_key.get(&k).copied().or_else(|| {
            // Ctrl-letter arrives lower-case; shifted letters arrive upper-case.
            if let KeyCode::Char(c) = k.code {
                if k.ctrl {
                    return self
                        .by_key
                        .get(&Key {
                            code: KeyCode::Char(c.to_ascii_lowercase()),
                            ..k
                        })
                        .copied();
                }
            }
            None
        })
    }

    pub fn keys(&self, a: Action) -> &[Key] {
        self.keys.get(&a).map(Vec::as_slice).unwrap_or(&[])
    }

    /// `a`, `↑/k`: the keys of an action joined for display.
    pub fn label(&self, a: Action) -> String {
        let ks = self.keys(a);
        if ks.is_empty() {
            return "—".into();
        }
        ks.iter().map(Key::label).collect::<Vec<_>>().join("/")
    }

    /// The first key of an action, for compact hints.
    pub fn short(&self, a: Action) -> String {
        self.keys(a)
            .first()
            .map(Key::label)
            .unwrap_or_else(|| "—".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::{KeyEventKind, KeyEventState};

    fn ev(code: KeyCode, m: KeyModifiers) -> KeyEvent {
        KeyEvent {
            code,
            modifiers: m,
            kind: KeyEventKind::Press,
            state: KeyEventState::NONE,
        }
    }

    #[test]
    fn defaults_and_overrides() {
        let km = Keymap::new(&BTreeMap::new()).unwrap();
        assert_eq!(
            km.action(&ev(KeyCode::Char('j'), KeyModifiers::NONE)),
            Some(Action::Down)
        );
        assert_eq!(
            km.action(&ev(KeyCode::Char('G'), KeyModifiers::SHIFT)),
            Some(Action::Bottom)
        );
        assert_eq!(
            km.action(&ev(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            Some(Action::Quit)
        );
        assert_eq!(
            km.action(&ev(KeyCode::BackTab, KeyModifiers::SHIFT)),
            Some(Action::PrevPane)
        );
        let mut o = BTreeMap::new();
        o.insert(
            "approve".to_string(),
            vec!["y".to_string(), "ctrl-a".to_string()],
        );
        o.insert("down".to_string(), vec!["n".to_string()]);
        let km = Keymap::new(&o).unwrap();
        assert_eq!(
            km.action(&ev(KeyCode::Char('y'), KeyModifiers::NONE)),
            Some(Action::Approve)
        );
        assert_eq!(
            km.action(&ev(KeyCode::Char('a'), KeyModifiers::CONTROL)),
            Some(Action::Approve)
        );
        assert_eq!(km.action(&ev(KeyCode::Char('a'), KeyModifiers::NONE)), None);
        assert_eq!(km.action(&ev(KeyCode::Char('j'), KeyModifiers::NONE)), None);
        assert_eq!(km.label(Action::Approve), "y/C-a");
    }

    #[test]
    fn bad_overrides_are_named() {
        let mut o = BTreeMap::new();
        o.insert("launch".to_string(), vec!["x".to_string()]);
        assert!(Keymap::new(&o).unwrap_err().to_string().contains("launch"));
        let mut o = BTreeMap::new();
        o.insert("quit".to_string(), vec!["hyper-q".to_string()]);
        assert!(Keymap::new(&o).unwrap_err().to_string().contains("hyper-q"));
    }
}
