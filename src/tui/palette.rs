//! The `:` palette: actions ranked (the exact name first, then names that start with the
//! typed word, then any match in name or description), and commands with arguments:
//! `goto ID`, `filter kind=dup,disc status=flagged tier=T region=R min=1000 mine`,
//! `theme NAME`.

use super::action::Action;
use super::app::{App, Level, View, KIND_CHOICES, STATUS_CHOICES};
use super::effects::{Effect, Select};
use super::theme::Theme;
use crate::store::queue::{NeedsMe, QueueFilter};

/// The commands that take an argument, with their usage (shown in the palette).
pub const ARG_COMMANDS: [(&str, &str); 5] = [
    ("goto", "goto ID — open the record with this transaction id"),
    (
        "filter",
        "filter kind=dup,disc status=flagged tier=T region=R min=1000 mine — set the filter",
    ),
    (
        "theme",
        "theme dark|light|high-contrast|colorblind — switch the palette",
    ),
    (
        "view",
        "view save NAME | view NAME | view delete NAME — saved filter, sort and columns",
    ),
    (
        "whatif",
        "whatif override_rate=0.015 — recalculate the plan with a change (Plan view)",
    ),
];

/// Actions matching every typed word, best first: the exact name, then names starting
/// with the first word, then the rest (in the order of the action list).
pub fn ranked(input: &str) -> Vec<Action> {
    let words: Vec<String> = input.split_whitespace().map(str::to_lowercase).collect();
    let mut hits: Vec<(u8, usize, Action)> = Action::ALL
        .iter()
        .copied()
        .enumerate()
        .filter(|(_, a)| {
            let hay = format!("{} {}", a.name(), a.description()).to_lowercase();
            words.iter().all(|w| hay.contains(w.as_str()))
        })
        .map(|(i, a)| {
            let first = words.first().map(String::as_str).unwrap_or("");
            let rank = if a.name() == first {
                0
            } else if !first.is_empty() && a.name().starts_with(first) {
                1
            } else {
                2
            };
            (rank, i, a)
        })
        .collect();
    hits.sort_by_key(|(r, i, _)| (*r, *i));
    hits.into_iter().map(|(_, _, a)| a).collect()
}

/// The usage line of an argument command the input starts with (`goto …`).
pub fn arg_hint(input: &str) -> Option<&'static str> {
    let first = input.split_whitespace().next()?.to_lowercase();
    ARG_COMMANDS
        .iter()
        .find(|(n, _)| *n == first)
        .map(|(_, usage)| *usage)
}

/// A kind by its name or its short form (`dup`, `disc`, ...).
fn kind_named(s: &str) -> Option<&'static str> {
    KIND_CHOICES
        .iter()
        .copied()
        .find(|k| *k == s || crate::tui::ui::kind_abbrev(k) == s)
}

impl App {
    /// Runs an argument command typed in the palette; `None` when the input is not one
    /// (then the selected action runs).
    pub fn palette_command(&mut self, input: &str) -> Option<Vec<Effect>> {
        let mut parts = input.split_whitespace();
        let cmd = parts.next()?.to_lowercase();
        let args: Vec<&str> = parts.collect();
        match cmd.as_str() {
            "goto" => Some(self.goto(args.first().copied())),
            "filter" if !args.is_empty() => Some(self.filter_command(&args)),
            "view" | "views" => Some(self.view_command(&args)),
            "whatif" | "what-if" => Some(self.whatif_command(&args)),
            "theme" if !args.is_empty() => {
                match Theme::select(Some(args[0]), super::theme::no_color_env(), None) {
                    Ok(t) => {
                        self.theme = t;
                        self.message = Some((Level::Ok, format!("theme {}", args[0])));
                    }
                    Err(e) => self.message = Some((Level::Error, format!("{e:#}"))),
                }
                Some(vec![])
            }
            _ => None,
        }
    }

    /// `goto ID`: narrows the queue to the id and opens the record.
    fn goto(&mut self, id: Option<&str>) -> Vec<Effect> {
        let Some(id) = id else {
            self.message = Some((Level::Error, "goto needs a transaction id".into()));
            return vec![];
        };
        self.view = View::Record;
        self.nav.record_from = View::Queue;
        self.detail_id = Some(id.to_string());
        self.detail = None;
        self.pane_scroll = 0;
        self.queue.filter.search = Some(id.to_string());
        self.queue.marked.clear();
        self.nav.goto = Some(id.to_string());
        vec![
            self.reload_queue_first(),
            Effect::LoadDetail(id.to_string()),
        ]
    }

    fn reload_queue_first(&mut self) -> Effect {
        self.reload_queue_effect(Select::First)
    }

    /// `filter k=v ...`: replaces the filter (the search text stays).
    fn filter_command(&mut self, args: &[&str]) -> Vec<Effect> {
        match parse_filter(args, &self.tiers, &self.user, self.role) {
            Ok(mut f) => {
                f.search = self.queue.filter.search.clone();
                self.queue.filter = f;
                self.queue.marked.clear();
                self.view = View::Queue;
                vec![self.reload_queue_first()]
            }
            Err(e) => {
                self.message = Some((Level::Error, e));
                vec![]
            }
        }
    }
}

const FILTER_KEYS: &str = "kind, status, tier, region, min, or mine";

/// Parses the words of `filter ...`: `key=value` words (`kind` and `status` take a
/// comma list, any of which passes), all of them together (AND), and `mine` (what waits
/// for `user` in `role`). Tiers match by id or name. The error names the bad word.
pub fn parse_filter(
    args: &[&str],
    tiers: &[(String, String)],
    user: &str,
    role: crate::config::Role,
) -> Result<QueueFilter, String> {
    let mut f = QueueFilter::default();
    let mut seen: Vec<&str> = Vec::new();
    for a in args {
        if a.eq_ignore_ascii_case("mine") {
            f.needs_me = Some(NeedsMe {
                role,
                user: user.to_string(),
            });
            continue;
        }
        let Some((k, v)) = a.split_once('=') else {
            return Err(format!("filter: {a:?} is not key=value ({FILTER_KEYS})"));
        };
        let k = k.trim().to_ascii_lowercase();
        let key: &str = match k.as_str() {
            "kind" => "kind",
            "status" | "state" => "status",
            "tier" => "tier",
            "region" => "region",
            "min" | "amount" => "min",
            _ => {
                return Err(format!(
                    "filter: unknown key {k:?} in {a:?} ({FILTER_KEYS})"
                ))
            }
        };
        if seen.contains(&key) {
            return Err(format!(
                "filter: {key} given twice in {a:?}; list the values with commas (kind=dup,disc)"
            ));
        }
        seen.push(key);
        let values: Vec<&str> = v.split(',').map(str::trim).collect();
        if values.iter().any(|x| x.is_empty()) {
            return Err(format!("filter: {a:?} has an empty value"));
        }
        if values.len() > 1 && !matches!(key, "kind" | "status") {
            return Err(format!("filter: {key} takes one value, not {v:?}"));
        }
        let bad = |what: &str, x: &str| format!("filter: unknown {what} {x:?} in {a:?}");
        match key {
            "kind" => {
                for x in values {
                    let kind = kind_named(x).ok_or_else(|| bad("kind", x))?;
                    if !f.kind.iter().any(|k| k == kind) {
                        f.kind.push(kind.to_string());
                    }
                }
            }
            "status" => {
                for x in values {
                    let st = STATUS_CHOICES
                        .iter()
                        .find(|s| **s == x)
                        .ok_or_else(|| bad("status", x))?;
                    if !f.status.iter().any(|s| s == st) {
                        f.status.push(st.to_string());
                    }
                }
            }
            "tier" => {
                let (id, _) = tiers
                    .iter()
                    .find(|(id, name)| id == v || name.eq_ignore_ascii_case(v))
                    .ok_or_else(|| bad("tier", v))?;
                f.tier = Some(id.clone());
            }
            "region" => f.region = Some(v.to_string()),
            _ => match crate::money::parse_money(v) {
                Some(d) => f.min_amount_minor = Some(crate::money::to_minor(d)),
                None => return Err(format!("filter: {v:?} in {a:?} is not an amount")),
            },
        }
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exact_name_ranks_first() {
        assert_eq!(ranked("sync").first(), Some(&Action::SyncNow));
        assert_eq!(ranked("filter").first(), Some(&Action::Filter));
        assert_eq!(ranked("sign").first(), Some(&Action::SignoffView));
        assert!(ranked("").len() == Action::ALL.len());
        assert_eq!(
            arg_hint("goto T1").map(|h| h.starts_with("goto")),
            Some(true)
        );
        assert_eq!(kind_named("dup"), Some("duplicate"));
    }

    fn tiers() -> Vec<(String, String)> {
        vec![("T2".into(), "Gold".into()), ("T1".into(), "Silver".into())]
    }

    fn parse(input: &str) -> Result<QueueFilter, String> {
        let args: Vec<&str> = input.split_whitespace().collect();
        parse_filter(&args, &tiers(), "mia", crate::config::Role::Analyst)
    }

    #[test]
    fn filter_lists_and_fields_combine() {
        let f = parse("kind=dup,disc status=flagged,escalated tier=gold min=1000.50").unwrap();
        assert_eq!(f.kind, vec!["duplicate", "discount_policy"]);
        assert_eq!(f.status, vec!["flagged", "escalated"]);
        assert_eq!(f.tier.as_deref(), Some("T2"));
        assert_eq!(f.min_amount_minor, Some(100_050));
        assert!(f.needs_me.is_none());
        // Repeated values collapse; full kind names work; `state` is `status`.
        let f = parse("KIND=duplicate,dup state=in_review").unwrap();
        assert_eq!(f.kind, vec!["duplicate"]);
        assert_eq!(f.status, vec!["in_review"]);
        let f = parse("mine kind=dup").unwrap();
        assert_eq!(
            f.needs_me,
            Some(NeedsMe {
                role: crate::config::Role::Analyst,
                user: "mia".into()
            })
        );
        assert_eq!(f.kind, vec!["duplicate"]);
    }

    #[test]
    fn bad_filter_words_are_named_in_the_message() {
        let cases = [
            (
                "kind=dup,nope",
                "unknown kind \"nope\" in \"kind=dup,nope\"",
            ),
            ("status=flagged,late", "unknown status \"late\""),
            ("kind=dup,,disc", "\"kind=dup,,disc\" has an empty value"),
            ("kind=", "\"kind=\" has an empty value"),
            ("tier=gold,silver", "tier takes one value"),
            ("tier=platinum", "unknown tier \"platinum\""),
            ("colour=red", "unknown key \"colour\""),
            ("dup", "\"dup\" is not key=value"),
            ("kind=dup kind=disc", "kind given twice"),
            ("min=lots", "\"lots\" in \"min=lots\" is not an amount"),
        ];
        for (input, want) in cases {
            let e = parse(input).unwrap_err();
            assert!(e.starts_with("filter: "), "{input}: {e}");
            assert!(e.contains(want), "{input}: {e:?} lacks {want:?}");
        }
    }
}
