//! `td monitor`: td's live terminal dashboard (ratatui on crossterm). `app` holds the screen
//! state and the keys, `render` draws it; this module owns the terminal and the loop: it reads
//! the engine's [`td_engine::views::MonitorView`], watches the database for commits by other
//! processes, peer rounds and hub pulls, and carries out confirmed actions through the engine.

pub(crate) mod app;
pub(crate) mod render;

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::{self, Event, KeyEventKind};
use ratatui::crossterm::{cursor, execute, terminal};
use ratatui::Terminal;
use td_engine::conflicts::Resolution;
use td_engine::ops::monitor::MonitorOptions;
use td_engine::ops::workflow::ApproveOptions;
use td_engine::Project;

use app::{Action, App, Effect, Mode};

/// How often the loop wakes to look for keys and for commits (a `stat` of the database files
/// each time; the project is read again only when they moved).
const WATCH: Duration = Duration::from_millis(100);

/// The options the monitor asks the engine with, from the screen's state.
fn options(app: &App) -> MonitorOptions {
    MonitorOptions {
        query: app.query.clone(),
        show_closed: app.show_closed,
        board: app.board.as_ref().map(|b| b.id.clone()),
        activity: 100,
        today: String::new(),
    }
}

/// Reads the project again into `app`; a refused filter keeps the last view and says why.
pub(crate) fn refresh(p: &Project, app: &mut App) {
    let t = Instant::now();
    match p.monitor(&options(app)) {
        Ok(v) => {
            app.view = v;
            if let Ok(b) = p.boards() {
                app.boards = b;
            }
        }
        Err(e) => {
            app.message = Some((format!("{e}"), true));
            if app.query.is_some() {
                app.query = None;
            } else if app.board.take().is_none() {
                return;
            }
            if let Ok(v) = p.monitor(&options(app)) {
                app.view = v;
            }
        }
    }
    app.refresh_ms = t.elapsed().as_secs_f64() * 1000.0;
    app.now = chrono::Local::now().fixed_offset();
    app.clamp();
}

/// Carries out one confirmed action through the engine (its rules, the review policy
/// included, decide) and says what happened.
fn act(p: &mut Project, action: &Action, id: &str) -> std::result::Result<String, String> {
    let done = |what: &str| format!("{what} {id}");
    let r = match action {
        Action::Start => p.start(id, false, None, None).map(|_| done("started")),
        Action::Review => p
            .review(id, None, None)
            .map(|_| done("submitted for review")),
        Action::Approve => p
            .approve(id, &ApproveOptions::default(), None)
            .map(|_| done("approved")),
        Action::Reject => p.reject(id, None, None).map(|_| done("rejected")),
        Action::Block => p.block(id, None, None).map(|_| done("blocked")),
        Action::Close => p.close(id, None, None, None).map(|_| done("closed")),
        Action::Reopen => p.reopen(id, None).map(|_| done("reopened")),
        Action::Comment(text) => p.comment(id, text).map(|_| done("commented on")),
        Action::Resolve { conflict, keep } => {
            let how = if *keep {
                Resolution::Kept
            } else {
                Resolution::Overwritten
            };
            p.resolve_conflict(conflict, &how)
                .map(|_| format!("conflict {conflict} settled"))
        }
        Action::Move { board, slot } => p
            .board_move(board, id, *slot)
            .map(|_| format!("moved {id} to position {slot}")),
    };
    r.map_err(|e| e.to_string())
}

/// Puts the terminal back: raw mode off, the main screen back, the cursor shown. Safe to call
/// more than once (exit, panic, signal).
fn restore() {
    let _ = terminal::disable_raw_mode();
    let _ = execute!(
        std::io::stdout(),
        terminal::LeaveAlternateScreen,
        cursor::Show
    );
}

/// Restores the terminal when dropped, whatever way the loop ends.
struct Guard;

impl Drop for Guard {
    fn drop(&mut self) {
        restore();
    }
}

/// Runs the monitor until `q`, Ctrl-C, SIGTERM, SIGHUP or SIGINT.
/// `sync_now` is the `r` key's push and pull (`None`: no hub; else the status line).
pub(crate) fn run(
    p: &mut Project,
    interval: Duration,
    mut sync_now: impl FnMut(&mut Project) -> Option<std::result::Result<String, String>>,
) -> Result<()> {
    if !std::io::stdout().is_terminal() {
        anyhow::bail!("td monitor needs a terminal (for scripts: td usage --json, td list --json, td sync tail -f)");
    }
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
        signal_hook::consts::SIGINT,
    ] {
        signal_hook::flag::register(sig, Arc::clone(&stop))?;
    }
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore();
        previous(info);
    }));
    let mut app = App::new(p.monitor(&MonitorOptions::default())?, p.boards()?);
    refresh(p, &mut app);
    terminal::enable_raw_mode()?;
    let _guard = Guard;
    execute!(
        std::io::stdout(),
        terminal::EnterAlternateScreen,
        cursor::Hide
    )?;
    let mut term = Terminal::new(CrosstermBackend::new(std::io::stdout()))?;
    // Keys are read on their own thread: on a terminal that went away crossterm's reader can
    // spin on end-of-file without returning, and the loop below must still notice and exit
    // (the thread ends with the process).
    let (keys_tx, keys) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        while let Ok(e) = event::read() {
            if keys_tx.send(e).is_err() {
                break;
            }
        }
    });
    let db = p.store.path().to_path_buf();
    let mut stamp = td_engine::store::write_stamp(&db);
    let mut last_tick = Instant::now();
    let mut dirty = true;
    while !stop.load(Ordering::Relaxed) {
        // A terminal that went away (an ssh connection dropped, a tmux server killed) does not
        // always send SIGHUP to this process, and its input then reads as end-of-file forever:
        // asking for its size fails on a hung-up terminal, so the monitor exits instead.
        if terminal::size().is_err() {
            break;
        }
        if dirty {
            term.draw(|f| render::draw(f, &app))?;
            dirty = false;
        }
        match keys.recv_timeout(WATCH) {
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Ok(e) => match e {
                Event::Key(k) if k.kind == KeyEventKind::Press => {
                    dirty = true;
                    match app.on_key(k) {
                        Effect::None => {}
                        Effect::Quit => break,
                        Effect::Refresh => {
                            if let Some(r) = sync_now(p) {
                                app.message = Some(match r {
                                    Ok(m) => (m, false),
                                    Err(m) => (m, true),
                                });
                            }
                            refresh(p, &mut app)
                        }
                        Effect::LoadDetail(id) => load_detail(p, &mut app, &id),
                        Effect::Act(action, id) => {
                            app.message = Some(match act(p, &action, &id) {
                                Ok(m) => (m, false),
                                Err(m) => (m, true),
                            });
                            refresh(p, &mut app);
                        }
                    }
                }
                Event::Resize(..) => dirty = true,
                _ => {}
            },
        }
        // Commits by anyone (another terminal, a peer round, a hub pull) move the stamp.
        let now = td_engine::store::write_stamp(&db);
        if now != stamp {
            stamp = now;
            refresh(p, &mut app);
            if let Mode::Detail { id, .. } = &app.mode {
                let id = id.clone();
                load_detail(p, &mut app, &id);
            }
            dirty = true;
        }
        // Relative times on screen move on even when nothing changes.
        if last_tick.elapsed() >= interval {
            last_tick = Instant::now();
            app.now = chrono::Local::now().fixed_offset();
            dirty = true;
        }
    }
    drop(term);
    Ok(())
}

fn load_detail(p: &Project, app: &mut App, id: &str) {
    match p.issue_detail(id) {
        Ok(d) => app.detail = Some(d),
        Err(e) => {
            app.mode = Mode::Normal;
            app.message = Some((e.to_string(), true));
        }
    }
}

/// `td monitor --profile-frames N`: renders N frames off-screen at `width`×`height` and
/// refreshes N times, and returns both durations per frame (for the benchmark; no terminal).
pub(crate) fn profile(
    p: &Project,
    frames: usize,
    width: u16,
    height: u16,
) -> Result<(Vec<Duration>, Vec<Duration>)> {
    let mut app = App::new(p.monitor(&MonitorOptions::default())?, p.boards()?);
    let mut term = Terminal::new(ratatui::backend::TestBackend::new(width, height))?;
    let (mut draws, mut refreshes) = (Vec::new(), Vec::new());
    for n in 0..frames {
        let t = Instant::now();
        refresh(p, &mut app);
        refreshes.push(t.elapsed());
        app.cursor[2] = n % 40;
        let t = Instant::now();
        term.draw(|f| render::draw(f, &app))?;
        draws.push(t.elapsed());
    }
    Ok((draws, refreshes))
}
