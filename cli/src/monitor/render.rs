//! Drawing the monitor: one function per pane, all pure (state in, cells out), so each is
//! tested on ratatui's test backend. Every piece of stored text goes through [`clean`] first:
//! text from the log (titles, comments, logs) comes from other machines too, and no control
//! character or bidirectional override in it may reach the terminal.

use ratatui::layout::{Constraint, Direction, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, List, ListItem, ListState, Paragraph, Wrap};
use ratatui::Frame;
use td_engine::views::IssueView;

use super::app::{App, Mode, Panel, TaskView, HELP};

/// Stored text as one screen line: control characters and bidi overrides escaped (as
/// `output::escape` does), newlines and tabs as spaces.
pub(crate) fn clean(s: &str) -> String {
    crate::output::escape(s).replace(['\n', '\t', '\r'], " ")
}

fn short_session(s: &str) -> String {
    let tail: String = s.chars().rev().take(6).collect();
    tail.chars().rev().collect()
}

/// How long ago a td timestamp was, compactly (`12s`, `4m`, `3h`, `2d`).
pub(crate) fn ago(at: &str, now: &chrono::DateTime<chrono::FixedOffset>) -> String {
    let Some(t) = td_engine::model::parse_timestamp(at) else {
        return "?".into();
    };
    let s = (*now - t).num_seconds().max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}

fn priority_style(p: &str) -> Style {
    match p {
        "P0" => Style::default().fg(Color::Red).add_modifier(Modifier::BOLD),
        "P1" => Style::default().fg(Color::Yellow),
        _ => Style::default().fg(Color::Gray),
    }
}

/// One issue as a line: id, priority, conflict mark, title, labels.
fn issue_line<'a>(app: &App, i: &IssueView, prefix: &str) -> Line<'a> {
    let mut spans = vec![
        Span::raw(prefix.to_string()),
        Span::styled(
            format!("{} ", clean(&i.id)),
            Style::default().fg(Color::Cyan),
        ),
        Span::styled(
            format!("{} ", clean(&i.priority)),
            priority_style(&i.priority),
        ),
    ];
    if app.in_conflict(&i.id) {
        spans.push(Span::styled(
            "⚠ ",
            Style::default().fg(Color::Red).add_modifier(Modifier::BOLD),
        ));
    }
    spans.push(Span::raw(clean(&i.title)));
    if !i.labels.is_empty() {
        spans.push(Span::styled(
            format!(" [{}]", clean(&i.labels.join(","))),
            Style::default().fg(Color::Magenta),
        ));
    }
    Line::from(spans)
}

fn pane_block(app: &App, panel: Panel, title: String) -> Block<'static> {
    let active = app.panel == panel && app.mode == Mode::Normal;
    Block::default()
        .borders(Borders::ALL)
        .title(title)
        .border_style(if active {
            Style::default().fg(Color::Cyan)
        } else {
            Style::default().fg(Color::DarkGray)
        })
}

fn list_state(app: &App, panel: Panel, index: usize) -> ListState {
    let mut s = ListState::default();
    if app.panel == panel {
        s.select(Some(index));
    }
    s
}

const HIGHLIGHT: Style = Style::new().add_modifier(Modifier::REVERSED);

/// Pane 1: the focused issue and every session's work in progress.
pub(crate) fn current(f: &mut Frame, area: Rect, app: &App) {
    let rows = app.current_rows();
    let items: Vec<ListItem> = if rows.is_empty() {
        vec![ListItem::new("No work in progress.")]
    } else {
        rows.iter()
            .map(|(focused, i)| {
                let mut line = issue_line(app, i, if *focused { "▶ " } else { "  " });
                if !i.implementer_session.is_empty() {
                    line.spans.push(Span::styled(
                        format!("  ({})", clean(&short_session(&i.implementer_session))),
                        Style::default().fg(Color::DarkGray),
                    ));
                }
                ListItem::new(line)
            })
            .collect()
    };
    let list = List::new(items)
        .block(pane_block(app, Panel::Current, " 1 Current work ".into()))
        .highlight_style(HIGHLIGHT);
    f.render_stateful_widget(
        list,
        area,
        &mut list_state(app, Panel::Current, app.cursor[0]),
    );
}

/// Pane 2: activity, newest first, with the machine each change came from.
pub(crate) fn activity(f: &mut Frame, area: Rect, app: &App) {
    let items: Vec<ListItem> = if app.view.activity.is_empty() {
        vec![ListItem::new("No activity yet.")]
    } else {
        app.view
            .activity
            .iter()
            .map(|a| {
                let from = if a.local {
                    Span::styled("here ", Style::default().fg(Color::DarkGray))
                } else {
                    Span::styled(
                        format!("{} ", clean(&a.machine)),
                        Style::default().fg(Color::Green),
                    )
                };
                ListItem::new(Line::from(vec![
                    Span::styled(
                        format!("{:>4} ", ago(&a.at, &app.now)),
                        Style::default().fg(Color::DarkGray),
                    ),
                    from,
                    Span::styled(
                        format!("{} ", clean(&a.issue)),
                        Style::default().fg(Color::Cyan),
                    ),
                    Span::raw(clean(&a.text)),
                ]))
            })
            .collect()
    };
    let list = List::new(items)
        .block(pane_block(app, Panel::Activity, " 2 Activity ".into()))
        .highlight_style(HIGHLIGHT);
    f.render_stateful_widget(
        list,
        area,
        &mut list_state(app, Panel::Activity, app.cursor[1]),
    );
}

/// Pane 3: the tasks as a list, kanban or swimlanes, of every issue or a td board.
pub(crate) fn tasks(f: &mut Frame, area: Rect, app: &App) {
    let view = match app.task_view {
        TaskView::List => "list",
        TaskView::Kanban => "kanban",
        TaskView::Swimlanes => "swimlanes",
    };
    let mut title = format!(" 3 Tasks · {view}");
    if let Some(b) = &app.board {
        title.push_str(&format!(" · board {}", clean(&b.name)));
    }
    if let Some(q) = &app.query {
        title.push_str(&format!(" · filter {}", clean(q)));
    }
    if app.show_closed {
        title.push_str(" · +closed");
    }
    title.push(' ');
    if app.task_view == TaskView::Kanban {
        return kanban(f, area, app, title);
    }
    let rows = app.task_rows();
    let positions: std::collections::HashMap<&str, i64> = app
        .view
        .board
        .iter()
        .flat_map(|b| b.issues.iter())
        .filter_map(|p| p.position.map(|n| (p.issue.id.as_str(), n)))
        .collect();
    let mut items = Vec::new();
    let mut selected = None;
    let mut last_section = "";
    for (n, (section, i)) in rows.iter().enumerate() {
        if *section != last_section {
            items.push(ListItem::new(Line::styled(
                section.to_string(),
                Style::default().add_modifier(Modifier::BOLD),
            )));
            last_section = section;
        }
        if n == app.cursor[2] {
            selected = Some(items.len());
        }
        let prefix = match positions.get(i.id.as_str()) {
            Some(_) => "  # ",
            None => "    ",
        };
        items.push(ListItem::new(issue_line(app, i, prefix)));
    }
    if rows.is_empty() {
        items.push(ListItem::new(if app.query.is_some() {
            "No issues match the filter."
        } else {
            "No issues."
        }));
    }
    let list = List::new(items)
        .block(pane_block(app, Panel::Tasks, title))
        .highlight_style(HIGHLIGHT);
    let mut state = ListState::default();
    if app.panel == Panel::Tasks {
        state.select(selected);
    }
    f.render_stateful_widget(list, area, &mut state);
}

fn kanban(f: &mut Frame, area: Rect, app: &App, title: String) {
    let block = pane_block(app, Panel::Tasks, title);
    let inner = block.inner(area);
    f.render_widget(block, area);
    let columns = app.kanban();
    let parts = Layout::default()
        .direction(Direction::Horizontal)
        .constraints(vec![
            Constraint::Ratio(1, columns.len().max(1) as u32);
            columns.len()
        ])
        .split(inner);
    for (c, ((status, issues), rect)) in columns.iter().zip(parts.iter()).enumerate() {
        let items: Vec<ListItem> = issues
            .iter()
            .map(|i| ListItem::new(issue_line(app, i, "")))
            .collect();
        let active = app.panel == Panel::Tasks && c == app.kanban_column;
        let list = List::new(items)
            .block(
                Block::default()
                    .borders(Borders::TOP)
                    .title(format!("{} ({})", status.replace('_', " "), issues.len()))
                    .border_style(if active {
                        Style::default().fg(Color::Cyan)
                    } else {
                        Style::default().fg(Color::DarkGray)
                    }),
            )
            .highlight_style(HIGHLIGHT);
        let mut state = ListState::default();
        if active {
            state.select(Some(app.cursor[2]));
        }
        f.render_stateful_widget(list, *rect, &mut state);
    }
}

/// The status line: peers and hubs with when each last synced, pending pushes, held records,
/// conflicts, and the last refresh.
pub(crate) fn status(f: &mut Frame, area: Rect, app: &App) {
    let s = &app.view.sync;
    let mut spans = Vec::new();
    if s.peers.is_empty() && s.hubs.is_empty() {
        spans.push(Span::styled(
            "no peers or hub  ",
            Style::default().fg(Color::DarkGray),
        ));
    }
    for p in &s.peers {
        let when = p
            .last_round
            .as_deref()
            .map_or("never".to_string(), |t| format!("{} ago", ago(t, &app.now)));
        spans.push(Span::raw(format!("peer {} {when}  ", clean(&p.name))));
    }
    for h in &s.hubs {
        let pull = h
            .last_pull_at
            .as_deref()
            .map_or("never".to_string(), |t| format!("{} ago", ago(t, &app.now)));
        spans.push(Span::raw(format!(
            "hub pulled {pull}, {} to push  ",
            h.pending
        )));
    }
    if s.held > 0 {
        spans.push(Span::styled(
            format!("held {}  ", s.held),
            Style::default().fg(Color::Yellow),
        ));
    }
    let conflicts = app.view.conflicts.len();
    spans.push(Span::styled(
        format!("conflicts {conflicts}  "),
        if conflicts > 0 {
            Style::default().fg(Color::Red)
        } else {
            Style::default()
        },
    ));
    spans.push(Span::styled(
        format!("● live {:.0}ms  ? help", app.refresh_ms),
        Style::default().fg(Color::DarkGray),
    ));
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// The line under the panes: the search or comment being typed, a confirmation, or the last
/// outcome.
pub(crate) fn prompt(f: &mut Frame, area: Rect, app: &App) {
    let line = match &app.mode {
        Mode::Search(q) => Line::from(vec![
            Span::styled("TDQ / ", Style::default().fg(Color::Cyan)),
            Span::raw(clean(q)),
            Span::raw("▏"),
        ]),
        Mode::Comment { id, input } => Line::from(vec![
            Span::styled(
                format!("comment on {} › ", clean(id)),
                Style::default().fg(Color::Cyan),
            ),
            Span::raw(clean(input)),
            Span::raw("▏"),
        ]),
        Mode::Confirm { action, id } => Line::styled(
            format!("{} {}? y/n", action.verb(), clean(id)),
            Style::default()
                .fg(Color::Yellow)
                .add_modifier(Modifier::BOLD),
        ),
        _ => match &app.message {
            Some((m, true)) => Line::styled(clean(m), Style::default().fg(Color::Red)),
            Some((m, false)) => Line::styled(clean(m), Style::default().fg(Color::Green)),
            None => Line::raw(""),
        },
    };
    f.render_widget(Paragraph::new(line), area);
}

fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

/// The issue detail modal: fields, description, handoff, logs, comments, conflicts (both
/// values, and the keys that settle them).
pub(crate) fn detail(f: &mut Frame, area: Rect, app: &App, scroll: u16) {
    let rect = centered(
        area,
        area.width.saturating_sub(4),
        area.height.saturating_sub(2),
    );
    f.render_widget(Clear, rect);
    let mut lines: Vec<Line> = Vec::new();
    let Some(d) = &app.detail else {
        f.render_widget(
            Paragraph::new("loading…").block(Block::default().borders(Borders::ALL)),
            rect,
        );
        return;
    };
    let i = &d.issue;
    lines.push(Line::styled(
        format!("{} {}", clean(&i.id), clean(&i.title)),
        Style::default().add_modifier(Modifier::BOLD),
    ));
    lines.push(Line::raw(format!(
        "{} · {} · {} · implementer {} · reviewer {}",
        clean(&i.status),
        clean(&i.priority),
        clean(&i.issue_type),
        clean(&short_session(&i.implementer_session)),
        clean(&short_session(&i.reviewer_session)),
    )));
    if !i.labels.is_empty() {
        lines.push(Line::raw(format!("labels {}", clean(&i.labels.join(", ")))));
    }
    let conflicts: Vec<_> = app
        .view
        .conflicts
        .iter()
        .filter(|c| c.entity == i.id)
        .collect();
    if !conflicts.is_empty() {
        lines.push(Line::raw(""));
        lines.push(Line::styled(
            "⚠ CONFLICTS (1 keeps the winner, 2 restores the other)",
            Style::default().fg(Color::Red).add_modifier(Modifier::BOLD),
        ));
        for c in conflicts {
            lines.push(Line::raw(format!("  {}", clean(&c.field))));
            for (what, side) in [("kept", &c.kept), ("overwritten", &c.overwritten)] {
                lines.push(Line::raw(format!(
                    "    {what} {} (from {})",
                    clean(&side.value.to_string()),
                    clean(&side.machine),
                )));
            }
        }
    }
    if !i.description.is_empty() {
        lines.push(Line::raw(""));
        for l in i.description.lines() {
            lines.push(Line::raw(clean(l)));
        }
    }
    if let Some(h) = &d.handoff {
        lines.push(Line::raw(""));
        lines.push(Line::styled(
            "HANDOFF",
            Style::default().add_modifier(Modifier::BOLD),
        ));
        for (name, v) in [
            ("done", &h.done),
            ("remaining", &h.remaining),
            ("decisions", &h.decisions),
        ] {
            for item in v.as_array().into_iter().flatten() {
                lines.push(Line::raw(format!(
                    "  {name}: {}",
                    clean(item.as_str().unwrap_or_default())
                )));
            }
        }
    }
    let minute = |t: &str| clean(t.get(..16).unwrap_or(t));
    section(
        &mut lines,
        "LOGS",
        d.logs.iter().map(|l| {
            format!(
                "  {} [{}] {}",
                minute(&l.timestamp),
                clean(&l.log_type),
                clean(&l.message)
            )
        }),
    );
    section(
        &mut lines,
        "COMMENTS",
        d.comments
            .iter()
            .map(|c| format!("  {} {}", minute(&c.created_at), clean(&c.text))),
    );
    let p = Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .scroll((scroll, 0))
        .block(
            Block::default()
                .borders(Borders::ALL)
                .title(" Issue · Esc close · s R a X B C O m act · j k scroll "),
        );
    f.render_widget(p, rect);
}

/// A titled block of the detail (nothing when it has no rows).
fn section(lines: &mut Vec<Line<'_>>, title: &'static str, rows: impl Iterator<Item = String>) {
    let rows: Vec<String> = rows.collect();
    if rows.is_empty() {
        return;
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        title,
        Style::default().add_modifier(Modifier::BOLD),
    ));
    lines.extend(rows.into_iter().map(Line::raw));
}

/// The key help.
pub(crate) fn help(f: &mut Frame, area: Rect) {
    let rect = centered(area, 78, HELP.len() as u16 + 2);
    f.render_widget(Clear, rect);
    let lines: Vec<Line> = HELP
        .iter()
        .map(|(k, what)| {
            Line::from(vec![
                Span::styled(format!("{k:>24}  "), Style::default().fg(Color::Cyan)),
                Span::raw(*what),
            ])
        })
        .collect();
    f.render_widget(
        Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(" Keys ")),
        rect,
    );
}

fn board_picker(f: &mut Frame, area: Rect, app: &App, at: usize) {
    let rect = centered(area, 50, app.boards.len() as u16 + 3);
    f.render_widget(Clear, rect);
    let mut items = vec![ListItem::new("All issues")];
    items.extend(app.boards.iter().map(|b| ListItem::new(clean(&b.name))));
    let mut state = ListState::default();
    state.select(Some(at));
    f.render_stateful_widget(
        List::new(items)
            .highlight_style(HIGHLIGHT)
            .block(Block::default().borders(Borders::ALL).title(" Board ")),
        rect,
        &mut state,
    );
}

/// The whole screen.
pub(crate) fn draw(f: &mut Frame, app: &App) {
    let area = f.area();
    let rows = Layout::default()
        .direction(Direction::Vertical)
        .constraints([
            Constraint::Min(3),
            Constraint::Length(1),
            Constraint::Length(1),
        ])
        .split(area);
    let main = rows[0];
    // Wide screens: current work and activity side by side above the tasks; narrow ones
    // stack all three.
    let (top, bottom) = {
        let v = Layout::default()
            .direction(Direction::Vertical)
            .constraints([Constraint::Percentage(40), Constraint::Percentage(60)])
            .split(main);
        (v[0], v[1])
    };
    let top = Layout::default()
        .direction(Direction::Horizontal)
        .constraints([Constraint::Percentage(45), Constraint::Percentage(55)])
        .split(top);
    current(f, top[0], app);
    activity(f, top[1], app);
    tasks(f, bottom, app);
    prompt(f, rows[1], app);
    status(f, rows[2], app);
    match &app.mode {
        Mode::Detail { scroll, .. } => detail(f, main, app, *scroll),
        Mode::Help => help(f, area),
        Mode::BoardPicker(at) => board_picker(f, area, app, *at),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    //! Every pane drawn on ratatui's test backend at 80×24 and 200×50, from a real project
    //! holding hostile titles: what a terminal would receive has no control character or
    //! bidirectional override, and the panes show what they should.
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;
    use td_engine::ops::issues::IssueFields;
    use td_engine::ops::monitor::MonitorOptions;
    use td_engine::{MachineIdentity, Project, SessionContext};

    use super::super::app::{App, Mode, TaskView};

    const HOSTILE: [&str; 4] = [
        "Escape \u{1b}[2J\u{1b}]52;c;cGF3bmVk\u{7} clears",
        "RTL \u{202e}txet desrever\u{202c} and \u{2067}isolate",
        "日本語のタイトル 한국어 中文",
        "Emoji 🎉🚀 with\nnewline\tand tab",
    ];

    fn project() -> (tempfile::TempDir, Project) {
        let dir = tempfile::tempdir().unwrap();
        let ctx = SessionContext {
            explicit: Some("render".into()),
            ..Default::default()
        };
        let (mut p, _) = Project::init(dir.path(), MachineIdentity::generate(), &ctx).unwrap();
        let mut first = None;
        for t in HOSTILE.iter().chain(["Plain work item"].iter()) {
            let f = IssueFields {
                title: Some(t.to_string()),
                labels: Some(vec!["ui".into()]),
                ..Default::default()
            };
            let i = p.create(&f, &[], &[]).unwrap();
            first.get_or_insert(i.id);
        }
        let id = first.unwrap();
        p.start(&id, false, None, None).unwrap();
        p.comment(&id, "comment with \u{1b}[31mred\u{1b}[0m")
            .unwrap();
        (dir, p)
    }

    fn screen(app: &App, w: u16, h: u16) -> String {
        let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
        t.draw(|f| super::draw(f, app)).unwrap();
        let buf = t.backend().buffer().clone();
        let mut out = String::new();
        for y in 0..h {
            for x in 0..w {
                let sym = buf[(x, y)].symbol();
                for c in sym.chars() {
                    assert!(
                        !c.is_control()
                            && !matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'),
                        "a raw {c:?} reached cell ({x},{y}) at {w}x{h}"
                    );
                }
                out.push_str(sym);
            }
            out.push('\n');
        }
        out
    }

    fn app(p: &Project) -> App {
        let mut a = App::new(
            p.monitor(&MonitorOptions {
                activity: 100,
                ..Default::default()
            })
            .unwrap(),
            p.boards().unwrap(),
        );
        a.now = chrono::Local::now().fixed_offset();
        a
    }

    #[test]
    fn every_pane_at_80x24_and_200x50_with_hostile_titles() {
        let (_dir, p) = project();
        for (w, h) in [(80u16, 24u16), (200, 50)] {
            let mut a = app(&p);
            let s = screen(&a, w, h);
            for pane in [
                "1 Current work",
                "2 Activity",
                "3 Tasks · list",
                "conflicts 0",
            ] {
                assert!(s.contains(pane), "{pane} missing at {w}x{h}:\n{s}");
            }
            assert!(s.contains("IN PROGRESS") && s.contains("READY"), "{s}");
            assert!(s.contains("\\u{1b}"), "the escape is shown escaped:\n{s}");
            if w == 200 {
                assert!(s.contains("\\u{202e}txet desrever"), "{s}");
                // Wide characters take two cells (the second drawn blank here).
                let packed = s.replace(' ', "");
                assert!(packed.contains("日本語のタイトル"), "{s}");
                assert!(packed.contains("Emoji🎉🚀"), "{s}");
                assert!(s.contains("with newline and tab"), "{s}");
                assert!(s.contains("Plain work item"), "{s}");
            }
            a.task_view = TaskView::Kanban;
            let s = screen(&a, w, h);
            assert!(
                s.contains("in progress (1)") && s.contains("open (4)"),
                "{s}"
            );
            a.task_view = TaskView::Swimlanes;
            let s = screen(&a, w, h);
            assert!(s.contains("OPEN") && s.contains("swimlanes"), "{s}");
            // The detail modal, with the issue's comment escaped.
            let id = a.view.in_progress[0].id.clone();
            a.detail = Some(p.issue_detail(&id).unwrap());
            a.mode = Mode::Detail {
                id: id.clone(),
                scroll: 0,
            };
            let s = screen(&a, w, h);
            assert!(s.contains(&id) && s.contains("COMMENTS"), "{s}");
            assert!(s.contains("\\u{1b}[31mred"), "{s}");
            a.mode = Mode::Help;
            let s = screen(&a, w, h);
            assert!(s.contains("Keys") && s.contains("approve"), "{s}");
        }
    }

    /// `K`/`J` on a td board ask the engine to move the selected issue, and the board order
    /// that comes back is the one the keys meant.
    #[test]
    fn k_and_j_move_an_issue_on_a_board() {
        use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
        let (_dir, mut p) = project();
        let board = p.board_create("Order", Some("status != closed")).unwrap();
        let ids: Vec<String> = p
            .board(&board.id)
            .unwrap()
            .issues
            .iter()
            .map(|i| i.issue.id.clone())
            .collect();
        p.board_move(&board.id, &ids[0], 1).unwrap();
        let mut a = app(&p);
        a.board = Some(board.clone());
        a.view = p
            .monitor(&MonitorOptions {
                board: Some(board.id.clone()),
                ..Default::default()
            })
            .unwrap();
        let order = |p: &Project| -> Vec<String> {
            p.board(&board.id)
                .unwrap()
                .issues
                .iter()
                .map(|i| i.issue.id.clone())
                .collect()
        };
        let before = order(&p);
        a.cursor[2] = 2; // the third issue, not positioned
        let key = |c| KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE);
        let super::super::app::Effect::Act(super::super::app::Action::Move { board: b, slot }, id) =
            a.on_key(key('K'))
        else {
            panic!("K on a board moves the issue");
        };
        assert_eq!((id.as_str(), slot), (before[2].as_str(), 2));
        p.board_move(&b, &id, slot).unwrap();
        let after = order(&p);
        assert_eq!(after[1], before[2], "{after:?}");
        assert_eq!(after[0], before[0]);
        // J on the last positioned issue (nothing positioned below it) does nothing.
        a.view = p
            .monitor(&MonitorOptions {
                board: Some(board.id.clone()),
                ..Default::default()
            })
            .unwrap();
        a.cursor[2] = 1;
        assert_eq!(a.on_key(key('J')), super::super::app::Effect::None);
        a.cursor[2] = 0;
        assert!(matches!(
            a.on_key(key('J')),
            super::super::app::Effect::Act(super::super::app::Action::Move { slot: 2, .. }, _)
        ));
    }

    #[test]
    fn a_search_filters_the_task_list() {
        let (_dir, p) = project();
        let mut a = app(&p);
        a.query = Some("title ~ \"Plain\"".into());
        a.view = p
            .monitor(&MonitorOptions {
                query: a.query.clone(),
                ..Default::default()
            })
            .unwrap();
        let s = screen(&a, 200, 50);
        let tasks = &s[s.find("3 Tasks").unwrap()..];
        assert!(tasks.contains("Plain work item"), "{s}");
        assert!(!tasks.contains("日本語"), "{s}");
        assert!(tasks.contains("filter title ~ \"Plain\""), "{s}");
    }
}
