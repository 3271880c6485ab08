//! Everything a user can do in the workbench: one enum from which the keymap, the `?`
//! help overlay and the `:` command palette are all generated.

/// One user-level action. Each has a stable name (used in `config.toml` `[keys]` and in
/// the palette), a description (help and palette) and default keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    NextPane,
    PrevPane,
    Open,
    Back,
    Search,
    Filter,
    ClearFilter,
    Sort,
    ReverseSort,
    ToggleSelect,
    SelectAll,
    Approve,
    Override,
    Dismiss,
    Escalate,
    RequestDocuments,
    Reject,
    Undo,
    ApproveRun,
    ReleaseHold,
    QueueView,
    SignoffView,
    ForecastView,
    PolicyView,
    OutboxView,
    PayoutsView,
    DisputesView,
    PlanView,
    Refresh,
    SyncNow,
    Help,
    Palette,
    Quit,
    NextRecord,
    PrevRecord,
    NextUnreviewed,
    CopyId,
    ExportView,
    JumpLinked,
    Ask,
    Columns,
    Views,
}

/// Where an action is offered (for grouping in the help overlay).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    Move,
    View,
    Find,
    Decide,
    App,
}

impl Group {
    pub fn title(self) -> &'static str {
        match self {
            Group::Move => "Move",
            Group::View => "Views and panes",
            Group::Find => "Find and select",
            Group::Decide => "Decide",
            Group::App => "Workbench",
        }
    }
}

impl Action {
    pub const ALL: [Action; 48] = [
        Action::Up,
        Action::Down,
        Action::PageUp,
        Action::PageDown,
        Action::Top,
        Action::Bottom,
        Action::NextPane,
        Action::PrevPane,
        Action::Open,
        Action::Back,
        Action::NextRecord,
        Action::PrevRecord,
        Action::NextUnreviewed,
        Action::JumpLinked,
        Action::QueueView,
        Action::SignoffView,
        Action::ForecastView,
        Action::PolicyView,
        Action::OutboxView,
        Action::PayoutsView,
        Action::DisputesView,
        Action::PlanView,
        Action::Search,
        Action::Filter,
        Action::ClearFilter,
        Action::Sort,
        Action::ReverseSort,
        Action::ToggleSelect,
        Action::SelectAll,
        Action::CopyId,
        Action::ExportView,
        Action::Columns,
        Action::Views,
        Action::Ask,
        Action::Approve,
        Action::Override,
        Action::Dismiss,
        Action::Escalate,
        Action::RequestDocuments,
        Action::Reject,
        Action::Undo,
        Action::ApproveRun,
        Action::ReleaseHold,
        Action::Refresh,
        Action::SyncNow,
        Action::Help,
        Action::Palette,
        Action::Quit,
    ];

    /// Stable name: `config.toml` `[keys]` entries and palette commands use it.
    pub fn name(self) -> &'static str {
        match self {
            Action::Up => "up",
            Action::Down => "down",
            Action::PageUp => "page_up",
            Action::PageDown => "page_down",
            Action::Top => "top",
            Action::Bottom => "bottom",
            Action::NextPane => "next_pane",
            Action::PrevPane => "prev_pane",
            Action::Open => "open",
            Action::Back => "back",
            Action::Search => "search",
            Action::Filter => "filter",
            Action::ClearFilter => "clear_filter",
            Action::Sort => "sort",
            Action::ReverseSort => "reverse_sort",
            Action::ToggleSelect => "toggle_select",
            Action::SelectAll => "select_all",
            Action::Approve => "approve",
            Action::Override => "override",
            Action::Dismiss => "dismiss",
            Action::Escalate => "escalate",
            Action::RequestDocuments => "request_documents",
            Action::Reject => "reject",
            Action::Undo => "undo",
            Action::QueueView => "queue",
            Action::SignoffView => "signoff",
            Action::ForecastView => "forecast",
            Action::PolicyView => "policy",
            Action::OutboxView => "outbox",
            Action::PayoutsView => "payouts",
            Action::DisputesView => "disputes",
            Action::PlanView => "plan",
            Action::ApproveRun => "approve_run",
            Action::ReleaseHold => "release_hold",
            Action::Refresh => "refresh",
            Action::SyncNow => "sync",
            Action::Help => "help",
            Action::Palette => "palette",
            Action::Quit => "quit",
            Action::NextRecord => "next_record",
            Action::PrevRecord => "prev_record",
            Action::NextUnreviewed => "next_unreviewed",
            Action::CopyId => "copy_id",
            Action::JumpLinked => "linked",
            Action::ExportView => "export_view",
            Action::Columns => "columns",
            Action::Views => "views",
            Action::Ask => "ask",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Action::Up => "Move up one row",
            Action::Down => "Move down one row",
            Action::PageUp => "Move up one page (in a record: scroll the pane)",
            Action::PageDown => "Move down one page (in a record: scroll the pane)",
            Action::Top => "Go to the first row (in a record: top of the pane)",
            Action::Bottom => "Go to the last row (in a record: end of the pane)",
            Action::NextPane => "Next pane (detail, reasoning, commission, decision, audit)",
            Action::PrevPane => "Previous pane",
            Action::Open => "Open the selected record",
            Action::Back => "Back / close",
            Action::Search => "Search partner, customer or transaction id (incremental)",
            Action::Filter => "Filter by kind, tier, region, status, minimum amount or needs me",
            Action::ClearFilter => "Clear search and filters",
            Action::Sort => "Sort by score, at stake, amount or age",
            Action::ReverseSort => "Reverse the sort order",
            Action::ToggleSelect => "Select / unselect the row (for bulk actions)",
            Action::SelectAll => "Select every loaded row / clear the selection",
            Action::Approve => "Approve the proposed adjustment (or sign off, in Sign-off)",
            Action::Override => "Override the amount, with a note",
            Action::Dismiss => "Dismiss the flag, with a reason",
            Action::Escalate => "Escalate, with a note",
            Action::RequestDocuments => "Request documents from the partner",
            Action::Reject => "Reject an adjustment awaiting sign-off (managers)",
            Action::Undo => "Undo the latest decision on the record",
            Action::QueueView => "Show the exception queue",
            Action::SignoffView => "Show adjustments awaiting sign-off (managers)",
            Action::ForecastView => "Show the forecast, at-risk partners and backtest",
            Action::PolicyView => {
                "Show the routing rules, precision per kind and automated decisions (u rolls back)"
            }
            Action::OutboxView => {
                "Show what waits for the PRM, what was pushed or refused, and open conflicts"
            }
            Action::PayoutsView => {
                "Show payout runs, the selected run's payees and reconciliation exceptions"
            }
            Action::ApproveRun => {
                "Approve the selected payout run (a manager who did not prepare it; asks first)"
            }
            Action::ReleaseHold => {
                "Release the selected payee's bank or tax holds in the run (asks first)"
            }
            Action::DisputesView => {
                "Show partner disputes, newest first, with their age and the review SLA"
            }
            Action::PlanView => {
                "Show the plan's rules (triggered, paid, share, flags), findings and a what-if (:whatif KEY=VALUE)"
            }
            Action::Refresh => "Reload the queue, counts and sync status",
            Action::SyncNow => "Sync with the PRM now (push decisions, pull changes)",
            Action::Help => "Show this help",
            Action::Palette => "Command palette",
            Action::Quit => "Quit",
            Action::NextRecord => "Next record (in the record view too)",
            Action::PrevRecord => "Previous record (in the record view too)",
            Action::NextUnreviewed => "Next record nobody has reviewed yet",
            Action::CopyId => "Copy the transaction id to the clipboard (OSC 52)",
            Action::JumpLinked => {
                "Jump to a linked record (a duplicate's original, split siblings, a refund's sale); again cycles back"
            }
            Action::ExportView => "Export the queue as filtered and sorted now to a CSV file",
            Action::Columns => "Choose the queue's columns (Space shows or hides one; kept for next time)",
            Action::Views => {
                "Saved views: filter, sort and columns by name (Enter applies, d deletes; :view save NAME)"
            }
            Action::Ask => {
                "Ask the records a question (answers cite them; in a record: about it, as its partner)"
            }
        }
    }

    /// Decisions on cases and the selection they act on: what the list views that are
    /// not the queue (Policy, Outbox, Disputes, Payouts) answer with a pointer instead.
    pub fn acts_on_cases(self) -> bool {
        matches!(
            self,
            Action::Approve
                | Action::Override
                | Action::Dismiss
                | Action::Escalate
                | Action::RequestDocuments
                | Action::Reject
                | Action::Undo
                | Action::ToggleSelect
                | Action::SelectAll
        )
    }

    pub fn group(self) -> Group {
        match self {
            Action::Up
            | Action::Down
            | Action::PageUp
            | Action::PageDown
            | Action::Top
            | Action::Bottom => Group::Move,
            Action::NextPane
            | Action::PrevPane
            | Action::Open
            | Action::Back
            | Action::NextRecord
            | Action::PrevRecord
            | Action::NextUnreviewed
            | Action::JumpLinked
            | Action::QueueView
            | Action::SignoffView
            | Action::ForecastView
            | Action::PolicyView
            | Action::OutboxView
            | Action::PayoutsView
            | Action::DisputesView
            | Action::PlanView => Group::View,
            Action::Search
            | Action::Filter
            | Action::ClearFilter
            | Action::Sort
            | Action::ReverseSort
            | Action::ToggleSelect
            | Action::SelectAll
            | Action::CopyId
            | Action::ExportView
            | Action::Columns
            | Action::Views
            | Action::Ask => Group::Find,
            Action::Approve
            | Action::Override
            | Action::Dismiss
            | Action::Escalate
            | Action::RequestDocuments
            | Action::Reject
            | Action::Undo
            | Action::ApproveRun
            | Action::ReleaseHold => Group::Decide,
            Action::Refresh | Action::SyncNow | Action::Help | Action::Palette | Action::Quit => {
                Group::App
            }
        }
    }

    /// Default keys, in the notation of `config.toml` (see `keymap::parse_key`).
    pub fn default_keys(self) -> &'static [&'static str] {
        match self {
            Action::Up => &["up", "k"],
            Action::Down => &["down", "j"],
            Action::PageUp => &["pageup", "ctrl-b"],
            Action::PageDown => &["pagedown", "ctrl-f"],
            Action::Top => &["g", "home"],
            Action::Bottom => &["G", "end"],
            Action::NextPane => &["tab", "l", "right"],
            Action::PrevPane => &["backtab", "h", "left"],
            Action::Open => &["enter"],
            Action::Back => &["esc"],
            Action::Search => &["/"],
            Action::Filter => &["f"],
            Action::ClearFilter => &["F"],
            Action::Sort => &["s"],
            Action::ReverseSort => &["O"],
            Action::ToggleSelect => &["space"],
            Action::SelectAll => &["V"],
            Action::Approve => &["a"],
            Action::Override => &["o"],
            Action::Dismiss => &["d"],
            Action::Escalate => &["e"],
            Action::RequestDocuments => &["r"],
            Action::Reject => &["x"],
            Action::Undo => &["u"],
            Action::QueueView => &["1"],
            Action::SignoffView => &["2"],
            Action::ForecastView => &["3"],
            Action::PolicyView => &["4"],
            Action::OutboxView => &["5"],
            Action::PayoutsView => &["6"],
            Action::DisputesView => &["7"],
            Action::PlanView => &["8"],
            Action::ApproveRun => &["P"],
            Action::ReleaseHold => &["R"],
            Action::Refresh => &["ctrl-r"],
            Action::SyncNow => &["S"],
            Action::Help => &["?", "f1"],
            Action::Palette => &[":"],
            Action::Quit => &["q", "ctrl-c"],
            Action::NextRecord => &["]"],
            Action::PrevRecord => &["["],
            Action::NextUnreviewed => &["n"],
            Action::CopyId => &["y"],
            Action::JumpLinked => &["L"],
            Action::ExportView => &["E"],
            Action::Columns => &["C"],
            Action::Views => &["v"],
            Action::Ask => &["A"],
        }
    }

    pub fn from_name(name: &str) -> Option<Action> {
        Action::ALL.iter().copied().find(|a| a.name() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_round_trip() {
        let mut names: Vec<_> = Action::ALL.iter().map(|a| a.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), Action::ALL.len());
        for a in Action::ALL {
            assert_eq!(Action::from_name(a.name()), Some(a));
            assert!(!a.description().is_empty());
            assert!(!a.default_keys().is_empty(), "{a:?} has no key");
        }
    }
}
