//! The monitor's screen state and what each key does. Keys only change this state or ask for
//! an [`Effect`]; the loop in `mod.rs` carries effects out through the engine, which owns every
//! rule (the review policy included).

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use td_engine::views::{BoardRow, IssueDetail, IssueView, MonitorView};

/// The three panes, as td numbers them (1, 2, 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Panel {
    Current,
    Activity,
    Tasks,
}

impl Panel {
    const ALL: [Panel; 3] = [Panel::Current, Panel::Activity, Panel::Tasks];

    fn index(self) -> usize {
        Panel::ALL.iter().position(|p| *p == self).unwrap_or(0)
    }
}

/// How the task pane shows its issues (`v` cycles).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TaskView {
    /// td's task list: sections (reviewable, in progress, ready, blocked, in review, closed).
    List,
    /// Columns by status.
    Kanban,
    /// One lane per status, issues in board order within it.
    Swimlanes,
}

/// A workflow action the monitor offers (each asks for confirmation first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    Start,
    Review,
    Approve,
    Reject,
    Block,
    Close,
    Reopen,
    Comment(String),
    /// Settle a conflict: keep the value that won (`true`) or restore the overwritten one.
    Resolve {
        conflict: String,
        keep: bool,
    },
    /// Put the issue at this 1-based slot of a td board (`td board move`; no confirmation,
    /// as in td).
    Move {
        board: String,
        slot: i64,
    },
}

impl Action {
    /// What the confirmation asks.
    pub(crate) fn verb(&self) -> String {
        match self {
            Action::Start => "Start work on".into(),
            Action::Review => "Submit for review".into(),
            Action::Approve => "Approve".into(),
            Action::Reject => "Reject".into(),
            Action::Block => "Block".into(),
            Action::Close => "Close".into(),
            Action::Reopen => "Reopen".into(),
            Action::Comment(_) => "Add the comment to".into(),
            Action::Resolve { keep: true, .. } => "Keep the winning value of".into(),
            Action::Resolve { keep: false, .. } => "Restore the overwritten value of".into(),
            Action::Move { slot, .. } => format!("Move to position {slot}:"),
        }
    }
}

/// What the screen is doing besides showing the panes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Mode {
    Normal,
    /// Typing a TDQ filter after `/`.
    Search(String),
    /// The issue detail modal, scrolled by this many lines.
    Detail {
        id: String,
        scroll: u16,
    },
    /// Waiting for y/n on an action.
    Confirm {
        action: Action,
        id: String,
    },
    /// Typing a comment for an issue.
    Comment {
        id: String,
        input: String,
    },
    /// The key help.
    Help,
    /// Choosing a td board (the first row is "All issues").
    BoardPicker(usize),
}

/// What the loop must do after a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Effect {
    None,
    Quit,
    /// Read the project again (a filter, board or toggle changed, or `r`).
    Refresh,
    /// Read the issue's detail for the modal.
    LoadDetail(String),
    /// Carry out a confirmed action.
    Act(Action, String),
}

/// The monitor's state.
pub(crate) struct App {
    pub view: MonitorView,
    pub detail: Option<IssueDetail>,
    pub boards: Vec<BoardRow>,
    pub panel: Panel,
    pub cursor: [usize; 3],
    pub kanban_column: usize,
    pub task_view: TaskView,
    pub mode: Mode,
    pub query: Option<String>,
    pub show_closed: bool,
    pub board: Option<BoardRow>,
    /// The last action's outcome or a refresh error (text, is an error).
    pub message: Option<(String, bool)>,
    /// How long the last refresh took (ms), shown on the status line.
    pub refresh_ms: f64,
    /// "Now" for relative times on the status line (set by the loop; fixed in tests).
    pub now: chrono::DateTime<chrono::FixedOffset>,
}

/// The statuses in the order td's columns and lanes show them.
pub(crate) const STATUSES: [&str; 5] = ["open", "in_progress", "blocked", "in_review", "closed"];

impl App {
    pub(crate) fn new(view: MonitorView, boards: Vec<BoardRow>) -> App {
        App {
            view,
            detail: None,
            boards,
            panel: Panel::Tasks,
            cursor: [0; 3],
            kanban_column: 0,
            task_view: TaskView::List,
            mode: Mode::Normal,
            query: None,
            show_closed: false,
            board: None,
            message: None,
            refresh_ms: 0.0,
            now: chrono::Local::now().fixed_offset(),
        }
    }

    /// The issues the task pane shows, in the order it lists them (board order on a board).
    pub(crate) fn task_issues(&self) -> Vec<&IssueView> {
        match &self.view.board {
            Some(b) => b
                .issues
                .iter()
                .map(|p| &p.issue)
                .filter(|i| self.show_closed || i.status != "closed")
                .collect(),
            None => self.view.tasks.iter().collect(),
        }
    }

    /// The task list's rows: (section, issue), sections in td's order.
    pub(crate) fn task_rows(&self) -> Vec<(&'static str, &IssueView)> {
        let issues = self.task_issues();
        let section = |i: &IssueView| -> (usize, &'static str) {
            match i.status.as_str() {
                "in_review" if self.view.reviewable.contains(&i.id) => (0, "REVIEWABLE"),
                "in_progress" => (1, "IN PROGRESS"),
                "open" => (2, "READY"),
                "blocked" => (3, "BLOCKED"),
                "in_review" => (4, "IN REVIEW"),
                _ => (5, "CLOSED"),
            }
        };
        let mut rows: Vec<(usize, usize, &'static str, &IssueView)> = issues
            .into_iter()
            .enumerate()
            .map(|(n, i)| {
                let (k, name) = section(i);
                (k, n, name, i)
            })
            .collect();
        if self.task_view == TaskView::Swimlanes {
            // Lanes by status, board order kept within each.
            rows.sort_by_key(|(_, n, _, i)| {
                (
                    STATUSES.iter().position(|s| *s == i.status).unwrap_or(9),
                    *n,
                )
            });
            return rows
                .into_iter()
                .map(|(_, _, _, i)| (lane_name(&i.status), i))
                .collect();
        }
        if self.view.board.is_none() {
            rows.sort_by_key(|(k, n, _, _)| (*k, *n));
        }
        rows.into_iter().map(|(_, _, s, i)| (s, i)).collect()
    }

    /// The kanban columns: (status, issues).
    pub(crate) fn kanban(&self) -> Vec<(&'static str, Vec<&IssueView>)> {
        let issues = self.task_issues();
        STATUSES
            .iter()
            .filter(|s| self.show_closed || **s != "closed")
            .map(|s| {
                (
                    *s,
                    issues.iter().copied().filter(|i| i.status == *s).collect(),
                )
            })
            .collect()
    }

    /// The current-work pane's issues: the focused one first, then every in-progress issue.
    pub(crate) fn current_rows(&self) -> Vec<(bool, &IssueView)> {
        let mut rows: Vec<(bool, &IssueView)> = Vec::new();
        if let Some(f) = &self.view.focused {
            rows.push((true, f));
        }
        for i in &self.view.in_progress {
            if self.view.focused.as_ref().is_some_and(|f| f.id == i.id) {
                continue;
            }
            rows.push((false, i));
        }
        rows
    }

    fn rows_in(&self, panel: Panel) -> usize {
        match panel {
            Panel::Current => self.current_rows().len(),
            Panel::Activity => self.view.activity.len(),
            Panel::Tasks => match self.task_view {
                TaskView::Kanban => self
                    .kanban()
                    .get(self.kanban_column)
                    .map_or(0, |(_, v)| v.len()),
                _ => self.task_rows().len(),
            },
        }
    }

    /// Keeps every cursor inside its pane after the data changed.
    pub(crate) fn clamp(&mut self) {
        let columns = self.kanban().len();
        self.kanban_column = self.kanban_column.min(columns.saturating_sub(1));
        for p in Panel::ALL {
            let n = self.rows_in(p);
            let c = &mut self.cursor[p.index()];
            *c = (*c).min(n.saturating_sub(1));
        }
    }

    /// The issue under the cursor of the active pane.
    pub(crate) fn selected(&self) -> Option<String> {
        let c = self.cursor[self.panel.index()];
        match self.panel {
            Panel::Current => self.current_rows().get(c).map(|(_, i)| i.id.clone()),
            Panel::Activity => self.view.activity.get(c).map(|a| a.issue.clone()),
            Panel::Tasks => match self.task_view {
                TaskView::Kanban => self
                    .kanban()
                    .get(self.kanban_column)
                    .and_then(|(_, v)| v.get(c).map(|i| i.id.clone())),
                _ => self.task_rows().get(c).map(|(_, i)| i.id.clone()),
            },
        }
    }

    /// Whether an issue has an unresolved conflict.
    pub(crate) fn in_conflict(&self, id: &str) -> bool {
        self.view.conflicts.iter().any(|c| c.entity == id)
    }

    /// Handles one key.
    pub(crate) fn on_key(&mut self, key: KeyEvent) -> Effect {
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            return Effect::Quit;
        }
        match self.mode.clone() {
            Mode::Normal => self.on_main_key(key),
            Mode::Search(mut input) => match key.code {
                KeyCode::Esc => {
                    self.mode = Mode::Normal;
                    Effect::None
                }
                KeyCode::Enter => {
                    self.mode = Mode::Normal;
                    let q = input.trim().to_string();
                    self.query = (!q.is_empty()).then_some(q);
                    self.cursor[Panel::Tasks.index()] = 0;
                    self.panel = Panel::Tasks;
                    Effect::Refresh
                }
                KeyCode::Backspace => {
                    input.pop();
                    self.mode = Mode::Search(input);
                    Effect::None
                }
                KeyCode::Char('u') if key.modifiers.contains(KeyModifiers::CONTROL) => {
                    self.mode = Mode::Search(String::new());
                    Effect::None
                }
                KeyCode::Char(c) => {
                    input.push(c);
                    self.mode = Mode::Search(input);
                    Effect::None
                }
                _ => Effect::None,
            },
            Mode::Comment { id, mut input } => match key.code {
                KeyCode::Esc => {
                    self.mode = Mode::Normal;
                    Effect::None
                }
                KeyCode::Enter if !input.trim().is_empty() => {
                    self.mode = Mode::Confirm {
                        action: Action::Comment(input.trim().to_string()),
                        id,
                    };
                    Effect::None
                }
                KeyCode::Backspace => {
                    input.pop();
                    self.mode = Mode::Comment { id, input };
                    Effect::None
                }
                KeyCode::Char(c) => {
                    input.push(c);
                    self.mode = Mode::Comment { id, input };
                    Effect::None
                }
                _ => Effect::None,
            },
            Mode::Confirm { action, id } => match key.code {
                KeyCode::Char('y') | KeyCode::Char('Y') | KeyCode::Enter => {
                    self.mode = Mode::Normal;
                    Effect::Act(action, id)
                }
                KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc => {
                    self.mode = Mode::Normal;
                    self.message = Some(("cancelled".into(), false));
                    Effect::None
                }
                _ => Effect::None,
            },
            Mode::Help => {
                if matches!(
                    key.code,
                    KeyCode::Char('?') | KeyCode::Esc | KeyCode::Char('q')
                ) {
                    self.mode = Mode::Normal;
                }
                Effect::None
            }
            Mode::BoardPicker(n) => match key.code {
                KeyCode::Esc | KeyCode::Char('q') => {
                    self.mode = Mode::Normal;
                    Effect::None
                }
                KeyCode::Char('j') | KeyCode::Down => {
                    self.mode = Mode::BoardPicker((n + 1).min(self.boards.len()));
                    Effect::None
                }
                KeyCode::Char('k') | KeyCode::Up => {
                    self.mode = Mode::BoardPicker(n.saturating_sub(1));
                    Effect::None
                }
                KeyCode::Enter => {
                    self.mode = Mode::Normal;
                    self.board = n.checked_sub(1).and_then(|i| self.boards.get(i).cloned());
                    self.cursor[Panel::Tasks.index()] = 0;
                    self.panel = Panel::Tasks;
                    Effect::Refresh
                }
                _ => Effect::None,
            },
            Mode::Detail { id, scroll } => match key.code {
                KeyCode::Esc | KeyCode::Enter | KeyCode::Char('q') => {
                    self.mode = Mode::Normal;
                    self.detail = None;
                    Effect::None
                }
                KeyCode::Char('j') | KeyCode::Down => {
                    self.mode = Mode::Detail {
                        id,
                        scroll: scroll.saturating_add(1),
                    };
                    Effect::None
                }
                KeyCode::Char('k') | KeyCode::Up => {
                    self.mode = Mode::Detail {
                        id,
                        scroll: scroll.saturating_sub(1),
                    };
                    Effect::None
                }
                KeyCode::Char('1') | KeyCode::Char('2') => {
                    let first = self.view.conflicts.iter().find(|c| c.entity == id);
                    match first {
                        Some(c) => {
                            self.mode = Mode::Confirm {
                                action: Action::Resolve {
                                    conflict: c.id.clone(),
                                    keep: key.code == KeyCode::Char('1'),
                                },
                                id,
                            };
                        }
                        None => self.message = Some((format!("{id} has no conflict"), false)),
                    }
                    Effect::None
                }
                KeyCode::Char('r') => Effect::LoadDetail(id),
                _ => match action_for(key.code) {
                    Some(a) => self.ask(a, id),
                    None => Effect::None,
                },
            },
        }
    }

    /// `K`/`J` on a td board: the selected issue one place up or down in board order (up
    /// takes the slot before it; an unpositioned issue moved up joins the end of the
    /// positioned ones; down only moves a positioned issue that has one below it).
    fn move_on_board(&mut self, up: bool) -> Effect {
        let (Some(board), Some(id)) = (self.board.clone(), self.selected()) else {
            self.message = Some((
                "J/K move issues on a td board: choose one with b".into(),
                true,
            ));
            return Effect::None;
        };
        if self.panel != Panel::Tasks || self.task_view != TaskView::List {
            return Effect::None;
        }
        let issues = self.task_issues();
        let Some(n) = issues.iter().position(|i| i.id == id) else {
            return Effect::None;
        };
        let positioned: Vec<bool> = self
            .view
            .board
            .iter()
            .flat_map(|b| b.issues.iter())
            .filter(|p| self.show_closed || p.issue.status != "closed")
            .map(|p| p.position.is_some())
            .collect();
        let k = positioned.iter().filter(|p| **p).count();
        let is_positioned = positioned.get(n).copied().unwrap_or(false);
        let slot = if up {
            if n == 0 {
                return Effect::None;
            }
            n.min(k + 1)
        } else {
            if !is_positioned || n + 1 >= k {
                return Effect::None;
            }
            n + 2
        };
        self.cursor[Panel::Tasks.index()] = slot - 1;
        Effect::Act(
            Action::Move {
                board: board.id,
                slot: slot as i64,
            },
            id,
        )
    }

    fn ask(&mut self, action: Option<Action>, id: String) -> Effect {
        match action {
            Some(action) => self.mode = Mode::Confirm { action, id },
            None => {
                self.mode = Mode::Comment {
                    id,
                    input: String::new(),
                }
            }
        }
        Effect::None
    }

    fn on_main_key(&mut self, key: KeyEvent) -> Effect {
        let p = self.panel.index();
        match key.code {
            KeyCode::Char('q') => Effect::Quit,
            KeyCode::Char('?') => {
                self.mode = Mode::Help;
                Effect::None
            }
            KeyCode::Tab => {
                self.panel = Panel::ALL[(p + 1) % 3];
                Effect::None
            }
            KeyCode::BackTab => {
                self.panel = Panel::ALL[(p + 2) % 3];
                Effect::None
            }
            KeyCode::Char(c @ '1'..='3') => {
                self.panel = Panel::ALL[c as usize - '1' as usize];
                Effect::None
            }
            KeyCode::Char('j') | KeyCode::Down => {
                let n = self.rows_in(self.panel);
                self.cursor[p] = (self.cursor[p] + 1).min(n.saturating_sub(1));
                Effect::None
            }
            KeyCode::Char('k') | KeyCode::Up => {
                self.cursor[p] = self.cursor[p].saturating_sub(1);
                Effect::None
            }
            KeyCode::Char('G') | KeyCode::End => {
                self.cursor[p] = self.rows_in(self.panel).saturating_sub(1);
                Effect::None
            }
            KeyCode::Home => {
                self.cursor[p] = 0;
                Effect::None
            }
            KeyCode::Char('h') | KeyCode::Left
                if self.panel == Panel::Tasks && self.task_view == TaskView::Kanban =>
            {
                self.kanban_column = self.kanban_column.saturating_sub(1);
                self.clamp();
                Effect::None
            }
            KeyCode::Char('l') | KeyCode::Right
                if self.panel == Panel::Tasks && self.task_view == TaskView::Kanban =>
            {
                self.kanban_column += 1;
                self.clamp();
                Effect::None
            }
            KeyCode::Char('v') => {
                self.task_view = match self.task_view {
                    TaskView::List => TaskView::Kanban,
                    TaskView::Kanban => TaskView::Swimlanes,
                    TaskView::Swimlanes => TaskView::List,
                };
                self.panel = Panel::Tasks;
                self.clamp();
                Effect::None
            }
            KeyCode::Char('c') => {
                self.show_closed = !self.show_closed;
                Effect::Refresh
            }
            KeyCode::Char('b') => {
                let at = self
                    .board
                    .as_ref()
                    .and_then(|b| self.boards.iter().position(|x| x.id == b.id))
                    .map_or(0, |i| i + 1);
                self.mode = Mode::BoardPicker(at);
                Effect::None
            }
            KeyCode::Char('/') => {
                self.mode = Mode::Search(self.query.clone().unwrap_or_default());
                Effect::None
            }
            KeyCode::Esc => {
                if self.query.take().is_some() {
                    return Effect::Refresh;
                }
                Effect::None
            }
            KeyCode::Char('r') => Effect::Refresh,
            KeyCode::Char(c @ ('J' | 'K')) => self.move_on_board(c == 'K'),
            KeyCode::Enter => match self.selected() {
                Some(id) => {
                    self.mode = Mode::Detail {
                        id: id.clone(),
                        scroll: 0,
                    };
                    Effect::LoadDetail(id)
                }
                None => Effect::None,
            },
            code => match (action_for(code), self.selected()) {
                (Some(a), Some(id)) => self.ask(a, id),
                (Some(_), None) => {
                    self.message = Some(("no issue selected".into(), true));
                    Effect::None
                }
                _ => Effect::None,
            },
        }
    }
}

/// The workflow keys: `Some(Some(action))`, or `Some(None)` for a comment (asks for text).
fn action_for(code: KeyCode) -> Option<Option<Action>> {
    Some(Some(match code {
        KeyCode::Char('s') => Action::Start,
        KeyCode::Char('R') => Action::Review,
        KeyCode::Char('a') => Action::Approve,
        KeyCode::Char('X') => Action::Reject,
        KeyCode::Char('B') => Action::Block,
        KeyCode::Char('C') => Action::Close,
        KeyCode::Char('O') => Action::Reopen,
        KeyCode::Char('m') => return Some(None),
        _ => return None,
    }))
}

/// A swimlane's heading.
fn lane_name(status: &str) -> &'static str {
    match status {
        "open" => "OPEN",
        "in_progress" => "IN PROGRESS",
        "blocked" => "BLOCKED",
        "in_review" => "IN REVIEW",
        _ => "CLOSED",
    }
}

/// The key help `?` shows: (keys, what they do).
pub(crate) const HELP: [(&str, &str); 25] = [
    (
        "Tab / Shift+Tab, 1 2 3",
        "switch pane (current work, activity, tasks)",
    ),
    ("j k / ↓ ↑, Home, G", "move in the pane"),
    ("h l / ← →", "kanban: previous / next column"),
    ("Enter", "issue detail (Esc closes; j k scroll)"),
    (
        "/",
        "filter the tasks with TDQ (Enter applies, Esc cancels)",
    ),
    ("Esc", "clear the filter"),
    ("v", "task view: list, kanban, swimlanes"),
    ("b", "choose a td board (positions kept)"),
    ("K / J", "on a board: move the issue up / down"),
    ("c", "show or hide closed issues"),
    ("r", "refresh now"),
    ("s", "start work on the issue"),
    ("R", "submit for review"),
    ("a", "approve (the review policy decides)"),
    ("X", "reject (back to open)"),
    ("B", "block"),
    ("C", "close"),
    ("O", "reopen"),
    ("m", "comment"),
    (
        "1 / 2 (detail)",
        "conflict: keep the winner / restore the other",
    ),
    ("y / n", "confirm / cancel an action"),
    ("?", "this help"),
    ("q, Ctrl+C", "quit"),
    (
        "status line",
        "peers and hubs (last round), pending, held, conflicts",
    ),
    ("⚠ mark", "the issue has an unresolved conflict"),
];
