//! Saved views of the workbench's queue: a person's named filter, sort and hidden
//! columns, kept in the cache (a view names this program's tiers and kinds), and the
//! column layout they chose last (under the empty name). `tierdesk queue --view NAME`
//! reads the same rows.

use rusqlite::{params, OptionalExtension};
use serde::{Deserialize, Serialize};

use super::queue::{NeedsMe, QueueFilter, QueueOrder, QueueSort};
use super::{Result, Store};

/// The filter of a view as stored (the search text is not part of a view; "needs me"
/// is the person's own, whoever opens it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewFilter {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kind: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub status: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_amount_minor: Option<i64>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub mine: bool,
}

impl ViewFilter {
    pub fn of(f: &QueueFilter) -> ViewFilter {
        ViewFilter {
            kind: f.kind.clone(),
            status: f.status.clone(),
            tier: f.tier.clone(),
            region: f.region.clone(),
            min_amount_minor: f.min_amount_minor,
            mine: f.needs_me.is_some(),
        }
    }

    /// The queue filter for `user` in `role` (no search text).
    pub fn to_filter(&self, user: &str, role: crate::config::Role) -> QueueFilter {
        QueueFilter {
            kind: self.kind.clone(),
            status: self.status.clone(),
            tier: self.tier.clone(),
            region: self.region.clone(),
            min_amount_minor: self.min_amount_minor,
            search: None,
            needs_me: self.mine.then(|| NeedsMe {
                role,
                user: user.to_string(),
            }),
        }
    }
}

/// One saved view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedView {
    pub name: String,
    pub filter: ViewFilter,
    pub order: QueueOrder,
    /// Column names hidden in the queue.
    pub hidden: Vec<String>,
}

/// The longest view name accepted.
pub const MAX_VIEW_NAME: usize = 40;

/// A view name as kept: trimmed, visible text, at most [`MAX_VIEW_NAME`] characters.
pub fn check_view_name(name: &str) -> std::result::Result<String, String> {
    let n = name.trim();
    if n.is_empty() {
        return Err("a view needs a name".into());
    }
    if n.chars().count() > MAX_VIEW_NAME {
        return Err(format!(
            "view name {:?} is longer than {MAX_VIEW_NAME} characters",
            crate::text::sanitize(n)
        ));
    }
    if n.chars().any(crate::import::integrity::is_hidden_char) {
        return Err(format!(
            "view name {:?} has a control or invisible character",
            n.escape_debug().to_string()
        ));
    }
    Ok(n.to_string())
}

fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn read(r: &rusqlite::Row<'_>) -> rusqlite::Result<SavedView> {
    let filter: String = r.get(1)?;
    let sort: String = r.get(2)?;
    let hidden: String = r.get(4)?;
    Ok(SavedView {
        name: r.get(0)?,
        filter: serde_json::from_str(&filter).unwrap_or_default(),
        order: QueueOrder {
            sort: QueueSort::parse(&sort).unwrap_or_default(),
            reverse: r.get::<_, i64>(3)? != 0,
        },
        hidden: serde_json::from_str(&hidden).unwrap_or_default(),
    })
}

impl Store {
    /// Saves (or replaces) `owner`'s view (check the name with [`check_view_name`]).
    pub fn save_view(&self, owner: &str, v: &SavedView) -> Result<()> {
        self.conn.execute(
            "INSERT INTO saved_views (owner, name, filter, sort, reverse, hidden, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT(owner, name) DO UPDATE SET filter = excluded.filter,
                sort = excluded.sort, reverse = excluded.reverse, hidden = excluded.hidden,
                updated_at = excluded.updated_at",
            params![
                owner,
                v.name,
                serde_json::to_string(&v.filter).unwrap_or_else(|_| "{}".into()),
                v.order.sort.name(),
                v.order.reverse as i64,
                serde_json::to_string(&v.hidden).unwrap_or_else(|_| "[]".into()),
                now()
            ],
        )?;
        Ok(())
    }

    /// `owner`'s named views, by name.
    pub fn views(&self, owner: &str) -> Result<Vec<SavedView>> {
        let mut st = self.conn.prepare(
            "SELECT name, filter, sort, reverse, hidden FROM saved_views
             WHERE owner = ?1 AND name <> '' ORDER BY name",
        )?;
        let rows = st
            .query_map([owner], read)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// One of `owner`'s views by name (exact first, then ignoring case).
    pub fn view(&self, owner: &str, name: &str) -> Result<Option<SavedView>> {
        let exact = self
            .conn
            .query_row(
                "SELECT name, filter, sort, reverse, hidden FROM saved_views
                 WHERE owner = ?1 AND name = ?2 AND name <> ''",
                params![owner, name],
                read,
            )
            .optional()?;
        if exact.is_some() {
            return Ok(exact);
        }
        Ok(self
            .views(owner)?
            .into_iter()
            .find(|v| v.name.eq_ignore_ascii_case(name)))
    }

    /// Deletes one of `owner`'s views; false when there was none of that name.
    pub fn delete_view(&self, owner: &str, name: &str) -> Result<bool> {
        let n = self.conn.execute(
            "DELETE FROM saved_views WHERE owner = ?1 AND name = ?2 AND name <> ''",
            params![owner, name],
        )?;
        Ok(n > 0)
    }

    /// The columns `owner` hid last (kept across sessions); `None` when they never chose.
    pub fn hidden_columns(&self, owner: &str) -> Result<Option<Vec<String>>> {
        let h: Option<String> = self
            .conn
            .query_row(
                "SELECT hidden FROM saved_views WHERE owner = ?1 AND name = ''",
                [owner],
                |r| r.get(0),
            )
            .optional()?;
        Ok(h.map(|h| serde_json::from_str(&h).unwrap_or_default()))
    }

    /// Keeps the columns `owner` hides for the next session.
    pub fn set_hidden_columns(&self, owner: &str, hidden: &[String]) -> Result<()> {
        self.save_view(
            owner,
            &SavedView {
                name: String::new(),
                filter: ViewFilter::default(),
                order: QueueOrder::default(),
                hidden: hidden.to_vec(),
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Role;

    #[test]
    fn views_are_saved_per_owner_replaced_by_name_and_deleted() {
        let s = Store::open_in_memory().unwrap();
        let v = SavedView {
            name: "Big dups".into(),
            filter: ViewFilter {
                kind: vec!["duplicate".into()],
                min_amount_minor: Some(1_000_000),
                mine: true,
                ..ViewFilter::default()
            },
            order: QueueOrder {
                sort: QueueSort::AtStake,
                reverse: true,
            },
            hidden: vec!["customer".into()],
        };
        s.save_view("ana", &v).unwrap();
        assert_eq!(s.views("ana").unwrap(), vec![v.clone()]);
        assert!(s.views("bob").unwrap().is_empty(), "views are personal");
        assert_eq!(s.view("ana", "big DUPS").unwrap(), Some(v.clone()));
        let f = v.filter.to_filter("ana", Role::Analyst);
        assert_eq!(f.needs_me.unwrap().user, "ana");
        assert_eq!(
            ViewFilter::of(&v.filter.to_filter("x", Role::Manager)),
            v.filter
        );
        let mut w = v.clone();
        w.order.reverse = false;
        s.save_view("ana", &w).unwrap();
        assert_eq!(s.views("ana").unwrap(), vec![w]);
        // The layout row is not a view.
        s.set_hidden_columns("ana", &["age".into()]).unwrap();
        assert_eq!(s.views("ana").unwrap().len(), 1);
        assert_eq!(
            s.hidden_columns("ana").unwrap(),
            Some(vec!["age".to_string()])
        );
        assert_eq!(s.hidden_columns("bob").unwrap(), None);
        assert!(s.delete_view("ana", "Big dups").unwrap());
        assert!(!s.delete_view("ana", "Big dups").unwrap());
        assert!(s.views("ana").unwrap().is_empty());
        assert_eq!(
            s.hidden_columns("ana").unwrap(),
            Some(vec!["age".to_string()])
        );
    }

    #[test]
    fn view_names_are_visible_text_of_a_bounded_length() {
        assert_eq!(check_view_name("  Q3 dups ").unwrap(), "Q3 dups");
        assert!(check_view_name(" ").is_err());
        assert!(check_view_name("a\u{1b}[2J").is_err());
        assert!(check_view_name(&"x".repeat(41)).is_err());
    }
}
