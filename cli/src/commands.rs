//! Command handlers: turn parsed arguments into engine calls and print the results.

use std::path::PathBuf;

use anyhow::Result;
use serde_json::{json, Value};
use td_engine::model::normalize_issue_id;
use td_engine::ops::issues::{IssueFields, IssueOutcome};
use td_engine::ops::records::HandoffText;
use td_engine::ops::workflow::ApproveOptions;
use td_engine::query::{self, ListFilter};
use td_engine::{export, model, EngineError, Project};

use crate::args::{
    Cli, Command, DepCommand, EpicCommand, FieldArgs, HandoffArgs, ListArgs, WsCommand,
};
use crate::env;
use crate::output::{emit, issue_line, one_or_many, CliError};

/// Runs one parsed command.
pub(crate) fn run(cli: &Cli) -> Result<()> {
    let root = env::resolve_root(cli.work_dir.as_deref())?;
    let json = cli.json;
    if let Command::Init {
        mode,
        url,
        token,
        migrate_from,
    } = &cli.command
    {
        if let Some(src) = migrate_from {
            // Check the source before creating anything.
            td_engine::migrate::check_source(src)?;
        }
        // With --migrate-from --json, the import's result is the one JSON value printed.
        let quiet = json && migrate_from.is_some();
        if quiet {
            crate::initcmd::init(&root, true, true)?;
            if mode.is_some() || url.is_some() {
                crate::hubcmd::init(
                    &root,
                    mode.as_deref(),
                    url.as_deref(),
                    token.as_deref(),
                    false,
                )?;
            }
        } else {
            crate::hubcmd::init(
                &root,
                mode.as_deref(),
                url.as_deref(),
                token.as_deref(),
                json,
            )?;
        }
        if let Some(src) = migrate_from {
            let identity = td_transport::identity::machine_identity()?;
            let mut p = Project::open(&root, identity, &env::session_context(&root))?;
            import(&mut p, src, src, json)?;
            if mode.is_some() || url.is_some() {
                crate::hubcmd::autosync(&mut p, &root, crate::hubcmd::Auto::PushAfter);
            }
        }
        return Ok(());
    }
    if let Command::Config(c) = &cli.command {
        return crate::config::command(&root, c, json);
    }
    if let Command::Feature(c) = &cli.command {
        return crate::featurecmd::command(&root, c, json);
    }
    if let Command::Peer(crate::args::PeerCommand::Id) = cli.command {
        return crate::peers::peer_id(json);
    }
    if let Command::Join { code, .. } = &cli.command {
        // A refused code writes nothing, not even a new database.
        td_engine::invite::InviteCode::decode(code)?.check(crate::joincmd::now_secs())?;
        if !td_engine::store::db_path(&root).exists() {
            crate::initcmd::init(&root, json, true)?; // joining starts from a fresh replica
        }
    }
    let identity = td_transport::identity::machine_identity()?;
    let ctx = env::session_context(&root);
    let mut p = Project::open(&root, identity, &ctx)?;
    p.review_mode = crate::featurecmd::review_mode(&root)?;
    let auto = autosync_kind(&cli.command);
    if auto == Some(crate::hubcmd::Auto::PullBefore) {
        crate::hubcmd::autosync(&mut p, &root, crate::hubcmd::Auto::PullBefore);
    }
    let result = run_command(cli, &mut p, &root, &ctx, json);
    // A session that lost a concurrent workflow transition is told on its next command that
    // touches the issue (after the result, on stderr).
    for id in issue_ids_of(&cli.command) {
        for w in p.conflict_warnings(&id).unwrap_or_default() {
            eprintln!("Warning: {w}");
        }
    }
    result?;
    if auto == Some(crate::hubcmd::Auto::PushAfter) {
        crate::hubcmd::autosync(&mut p, &root, crate::hubcmd::Auto::PushAfter);
    }
    Ok(())
}

fn import_command(
    p: &mut Project,
    tmp: &std::path::Path,
    file: Option<&std::path::Path>,
    from_db: Option<&std::path::Path>,
    dry_run: bool,
    json: bool,
) -> Result<()> {
    let src = match (file, from_db) {
        (_, Some(db)) => db.to_path_buf(),
        (Some(f), None) => {
            let text = std::fs::read_to_string(f)
                .map_err(|e| crate::output::invalid(format!("cannot read {}: {e}", f.display())))?;
            let v: Value = serde_json::from_str(&text)
                .map_err(|e| crate::output::invalid(format!("{} is not JSON: {e}", f.display())))?;
            let db = tmp.join("import.db");
            td_engine::migrate::json_export_to_db(&v, &db)?;
            db
        }
        (None, None) => {
            return Err(crate::output::invalid(
                "give a JSON export file or --from-db <path>".into(),
            ))
        }
    };
    if !dry_run {
        return import(p, &src, file.unwrap_or(&src), json);
    }
    let counts = p.store.migrate_dry_run(&src)?;
    let total: usize = counts.values().sum();
    emit(
        json,
        &json!({"action": "dry_run", "would_import": counts}),
        || {
            let mut s = format!("DRY RUN: would import {total} entities");
            for (t, n) in &counts {
                s.push_str(&format!("\n  {t}: {n}"));
            }
            s
        },
    );
    Ok(())
}

/// Today's date (local time) as `YYYY-MM-DD`.
fn chrono_today() -> String {
    td_engine::model::now_timestamp()[..10].to_string()
}

/// A private scratch directory under `.todos/` (removed by the caller).
fn tempfile_dir(root: &std::path::Path) -> Result<PathBuf> {
    let dir = root
        .join(".todos")
        .join(format!("import-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn import(
    p: &mut Project,
    src: &std::path::Path,
    shown: &std::path::Path,
    json: bool,
) -> Result<()> {
    let r = p
        .store
        .migrate_from_with_progress(src, &mut import_progress(json))?;
    let src = shown;
    let total: usize = r.imported.values().sum();
    let v = json!({"action": "imported", "source": src.display().to_string(), "imported": r.imported,
        "already_present": r.already_present, "skipped": r.skipped, "sessions": r.sessions, "seconds": r.seconds});
    emit(json, &v, || {
        let mut s = format!(
            "IMPORTED {total} rows from {} in {:.2}s",
            src.display(),
            r.seconds
        );
        for (t, n) in &r.imported {
            s.push_str(&format!("\n  {t}: {n}"));
        }
        if r.already_present > 0 {
            s.push_str(&format!(
                "\n  already present (skipped): {}",
                r.already_present
            ));
        }
        for k in &r.skipped {
            s.push_str(&format!("\n  skipped: {k}"));
        }
        s
    });
    Ok(())
}

/// A progress bar on stderr for importing a large database (never with --json or off a
/// terminal); cleared when the import ends.
fn import_progress(json: bool) -> impl FnMut(usize, usize) {
    use std::io::IsTerminal;
    let enabled = !json && std::io::stderr().is_terminal();
    let mut bar: Option<indicatif::ProgressBar> = None;
    move |done, total| {
        if !enabled || total < 2_000 {
            return;
        }
        let b = bar.get_or_insert_with(|| {
            let b = indicatif::ProgressBar::new(total as u64);
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "importing {bar:40} {pos}/{len} entities ({eta} left)",
                )
                .expect("valid template"),
            );
            b
        });
        b.set_position(done as u64);
        if done >= total {
            b.finish_and_clear();
        }
    }
}

/// The issues a command names (for conflict warnings).
fn issue_ids_of(c: &Command) -> Vec<String> {
    let ids: &[String] = match c {
        Command::Show { ids }
        | Command::Update { ids, .. }
        | Command::Delete { ids, .. }
        | Command::Restore { ids }
        | Command::Start { ids, .. }
        | Command::Unstart { ids }
        | Command::Review { ids, .. }
        | Command::Approve { ids, .. }
        | Command::Reject { ids, .. }
        | Command::Close { ids, .. }
        | Command::Reopen { ids }
        | Command::Block { ids, .. }
        | Command::Unblock { ids } => ids,
        Command::Handoff { id, .. }
        | Command::Comment { id, .. }
        | Command::Defer { id, .. }
        | Command::Due { id, .. }
        | Command::Link { id, .. }
        | Command::Unlink { id, .. } => std::slice::from_ref(id),
        _ => &[],
    };
    ids.iter().map(|i| normalize_issue_id(i)).collect()
}

/// Which commands read (pull first) and which write (push after) under autosync.
fn autosync_kind(c: &Command) -> Option<crate::hubcmd::Auto> {
    use crate::hubcmd::Auto;
    match c {
        Command::List(_)
        | Command::Show { .. }
        | Command::Usage
        | Command::Status { db: false }
        | Command::Export { .. } => Some(Auto::PullBefore),
        Command::Epic(EpicCommand::List { .. })
        | Command::Deleted
        | Command::Blocked
        | Command::InReview
        | Command::Reviewable
        | Command::Ready
        | Command::Next
        | Command::Board(
            crate::args::BoardCommand::List | crate::args::BoardCommand::Show { .. },
        )
        | Command::Note(
            crate::args::NoteCommand::List { .. } | crate::args::NoteCommand::Show { .. },
        )
        | Command::Files { .. }
        | Command::Search { .. }
        | Command::Query { .. }
        | Command::Tree { .. } => Some(Auto::PullBefore),
        Command::Init { .. }
        | Command::Config(_)
        | Command::Feature(_)
        | Command::Sync { .. }
        | Command::Status { .. }
        | Command::Peer(_)
        | Command::Member(_)
        | Command::Join { .. }
        | Command::Session { .. }
        | Command::Whoami
        | Command::Rebuild
        | Command::Ws(WsCommand::Current)
        | Command::Ws(WsCommand::List) => None,
        _ => Some(Auto::PushAfter),
    }
}

fn run_command(
    cli: &Cli,
    p: &mut Project,
    root: &std::path::Path,
    ctx: &td_engine::SessionContext,
    json: bool,
) -> Result<()> {
    let root = root.to_path_buf();
    match &cli.command {
        Command::Init { .. } | Command::Config(_) | Command::Feature(_) => {
            unreachable!("handled above")
        }
        Command::Board(c) => crate::boardcmd::run(p, c, json)?,
        Command::Note(c) => crate::notecmd::run(p, c, json)?,
        Command::Link { id, paths, role } => crate::findcmd::link(p, &root, id, paths, role, json)?,
        Command::Unlink { id, paths } => crate::findcmd::unlink(p, &root, id, paths, json)?,
        Command::Files { id } => crate::findcmd::list(p, id, json)?,
        Command::Search { text } => crate::findcmd::search(p, text, json)?,
        Command::Query { expr } => crate::findcmd::query(p, expr, json)?,
        Command::Tree { id } => crate::findcmd::tree(p, id, json)?,
        Command::Deleted => {
            let f = ListFilter {
                only_deleted: true,
                sort: Some("id".into()),
                ..Default::default()
            };
            crate::output::print_issues(query::list_issues(p.store.conn(), &f)?, json);
        }
        Command::Blocked | Command::InReview | Command::Reviewable => {
            let status = if matches!(cli.command, Command::Blocked) {
                "blocked"
            } else {
                "in_review"
            };
            let f = ListFilter {
                status: vec![status.into()],
                ..Default::default()
            };
            let issues = if matches!(cli.command, Command::Reviewable) {
                p.reviewable()?
            } else {
                query::list_issues(p.store.conn(), &f)?
            };
            crate::output::print_issues(issues, json);
        }
        Command::Ready | Command::Next => {
            let today = chrono_today();
            let issues = query::ready_issues(p.store.conn(), &today)?;
            if matches!(cli.command, Command::Next) {
                let next = issues.into_iter().next();
                let v = next.as_ref().map(|i| i.json.clone()).unwrap_or(Value::Null);
                emit(json, &v, || {
                    next.as_ref()
                        .map(|i| issue_line(&i.json))
                        .unwrap_or_else(|| "Nothing ready.".into())
                });
            } else {
                crate::output::print_issues(issues, json);
            }
        }
        Command::Defer { id, date, .. } | Command::Due { id, date, .. } => {
            let field = if matches!(cli.command, Command::Defer { .. }) {
                "defer_until"
            } else {
                "due_date"
            };
            let id = normalize_issue_id(id);
            let o = p.set_date(&id, field, date.as_deref())?;
            let action = match (o.changed, date.is_some()) {
                (false, _) => "unchanged",
                (true, true) => "set",
                (true, false) => "cleared",
            };
            let v = json!({"action": action, "id": id, field: o.issue.json[field], "issue": o.issue.json});
            emit(json, &v, || {
                format!(
                    "{} {field} of {id}{}",
                    action.to_uppercase(),
                    date.as_deref()
                        .map(|d| format!(" = {d}"))
                        .unwrap_or_default()
                )
            });
        }
        Command::Create {
            title,
            title_flag,
            fields,
            depends_on,
            blocks,
        } => {
            let mut f = fields_of(fields);
            f.title = title_flag.clone().or_else(|| title.clone());
            let issue = p.create(&f, depends_on, blocks)?;
            let v = json!({"action": "created", "id": issue.id, "status": issue.status, "issue": issue.json});
            emit(json, &v, || format!("CREATED {}", issue.id));
        }
        Command::List(a) => list(p, a, json)?,
        Command::Show { ids } => {
            let mut out = Vec::new();
            for id in ids {
                out.push(query::issue_detail(
                    p.store.conn(),
                    &normalize_issue_id(id),
                )?);
            }
            let human = out.iter().map(show_text).collect::<Vec<_>>().join("\n");
            emit(json, &one_or_many(out), || human);
        }
        Command::Update {
            ids,
            title,
            fields,
            status,
            append,
            if_match,
        } => {
            let mut f = fields_of(fields);
            f.title = title.clone();
            f.status = status.clone();
            f.append = append.clone();
            for_each(
                json,
                ids,
                "updated",
                "unchanged",
                |id| p.update(id, &f, if_match.if_match.as_deref()),
                &mut p_show_conflict(&root),
            )?;
        }
        Command::Delete { ids, if_match } => for_each(
            json,
            ids,
            "deleted",
            "already_deleted",
            |id| p.delete(id, if_match.if_match.as_deref()),
            &mut p_show_conflict(&root),
        )?,
        Command::Restore { ids } => for_each(
            json,
            ids,
            "restored",
            "not_deleted",
            |id| p.restore(id),
            &mut no_detail,
        )?,
        Command::Start {
            ids,
            force,
            if_match,
        } => for_each(
            json,
            ids,
            "started",
            "already_started",
            |id| p.start(id, *force, if_match.if_match.as_deref()),
            &mut p_show_conflict(&root),
        )?,
        Command::Unstart { ids } => for_each(
            json,
            ids,
            "unstarted",
            "not_started",
            |id| p.unstart(id),
            &mut no_detail,
        )?,
        Command::Review { ids, if_match } => for_each(
            json,
            ids,
            "submitted_for_review",
            "already_in_review",
            |id| p.review(id, if_match.if_match.as_deref()),
            &mut p_show_conflict(&root),
        )?,
        Command::Approve {
            ids,
            reviewed_by,
            self_review,
            reason,
            if_match,
        } => {
            let opts = ApproveOptions {
                reviewed_by: reviewed_by.clone(),
                self_review: *self_review,
                reason: reason.clone(),
            };
            for_each(
                json,
                ids,
                "approved",
                "already_closed",
                |id| p.approve(id, &opts, if_match.if_match.as_deref()),
                &mut p_show_conflict(&root),
            )?
        }
        Command::Reject {
            ids,
            reason,
            if_match,
        } => for_each(
            json,
            ids,
            "rejected",
            "unchanged",
            |id| p.reject(id, reason.as_deref(), if_match.if_match.as_deref()),
            &mut p_show_conflict(&root),
        )?,
        Command::Close {
            ids,
            self_close_exception,
            admin,
            if_match,
        } => for_each(
            json,
            ids,
            "closed",
            "already_closed",
            |id| {
                let exception = self_close_exception.as_deref().or(admin.as_deref());
                p.close(id, exception, if_match.if_match.as_deref())
            },
            &mut p_show_conflict(&root),
        )?,
        Command::Reopen { ids } => for_each(
            json,
            ids,
            "reopened",
            "already_open",
            |id| p.reopen(id),
            &mut no_detail,
        )?,
        Command::Block { ids, if_match } => for_each(
            json,
            ids,
            "blocked",
            "already_blocked",
            |id| p.block(id, if_match.if_match.as_deref()),
            &mut p_show_conflict(&root),
        )?,
        Command::Unblock { ids } => for_each(
            json,
            ids,
            "unblocked",
            "not_blocked",
            |id| p.unblock(id),
            &mut no_detail,
        )?,
        Command::Log {
            args,
            log_type,
            decision,
            blocker,
            hypothesis,
            tried,
            result,
        } => {
            let t = [
                (*decision, "decision"),
                (*blocker, "blocker"),
                (*hypothesis, "hypothesis"),
                (*tried, "tried"),
                (*result, "result"),
            ]
            .into_iter()
            .find(|(on, _)| *on)
            .map(|(_, t)| t.to_string())
            .or_else(|| log_type.clone())
            .unwrap_or_else(|| "progress".into());
            let (issue, msg) = match args.as_slice() {
                [id, msg] => (Some(normalize_issue_id(id)), msg.clone()),
                [msg] => (None, msg.clone()),
                _ => unreachable!("clap enforces 1..=2 values"),
            };
            let (log_id, issue) = p.log(issue.as_deref(), &msg, &t)?;
            let v = json!({"action": "logged", "id": log_id, "issue_id": issue, "type": t});
            emit(json, &v, || format!("LOGGED {issue} ({t})"));
        }
        Command::Handoff { id, lists } => {
            let id = normalize_issue_id(id);
            let hid = p.handoff(&id, &handoff_of(lists))?;
            emit(
                json,
                &json!({"action": "handoff", "id": hid, "issue_id": id}),
                || format!("HANDOFF RECORDED {id}"),
            );
        }
        Command::Comment { id, text } => {
            let id = normalize_issue_id(id);
            let cid = p.comment(&id, text)?;
            emit(
                json,
                &json!({"action": "commented", "id": cid, "issue_id": id}),
                || format!("COMMENT ADDED {id}"),
            );
        }
        Command::Dep(d) => dep(p, d, json)?,
        Command::Epic(EpicCommand::Create { title, fields }) => {
            let mut f = fields_of(fields);
            f.title = Some(title.clone());
            f.issue_type = Some("epic".into());
            let issue = p.create(&f, &[], &[])?;
            let v = json!({"action": "created", "id": issue.id, "status": issue.status, "issue": issue.json});
            emit(json, &v, || format!("CREATED EPIC {}", issue.id));
        }
        Command::Epic(EpicCommand::List { all }) => {
            let a = ListArgs {
                types: vec!["epic".into()],
                all: *all,
                ..Default::default()
            };
            list(p, &a, json)?;
        }
        Command::Ws(w) => ws(p, w, json)?,
        Command::Usage => usage(p, json)?,
        Command::Status { db } => {
            if *db {
                crate::hubcmd::status_db(p, &root, json)?
            } else {
                status(p, &root, json)?
            }
        }
        Command::Sync { cmd, push, pull } => {
            crate::hubcmd::sync(p, &root, cmd.as_ref(), *push, *pull, json)?
        }
        Command::Session { new } => {
            if *new {
                p.new_session(ctx)?;
            }
            let s = &p.session;
            let v = json!({"session": s.id, "name": s.name, "branch": s.branch, "started_at": s.started_at, "new": s.is_new});
            emit(json, &v, || {
                format!("{}{}", s.id, if s.is_new { " (new)" } else { "" })
            });
        }
        Command::Whoami => {
            let id = p.store.identity();
            let v = json!({"session": p.session.id, "name": p.session.name, "machine": id.fingerprint(),
                "public_key": id.public_key_hex(), "project": p.store.project_id()?});
            emit(json, &v, || {
                format!(
                    "session  {}\nmachine  {}\nkey      {}",
                    p.session.id,
                    id.fingerprint(),
                    id.public_key_hex()
                )
            });
        }
        Command::Export { format, output } => {
            let text = match format.as_str() {
                "json" => export::export_json_string(p.store.conn())?,
                "sql" => export::export_sql(p.store.conn())?,
                "md" | "markdown" => export::export_markdown(p.store.conn())?,
                other => {
                    return Err(crate::output::invalid(format!(
                        "unsupported export format '{other}' (supported: json, sql, md)"
                    )))
                }
            };
            match output {
                Some(path) => {
                    let tmp = path.with_extension("tmp-export");
                    std::fs::write(&tmp, &text)
                        .and_then(|_| std::fs::rename(&tmp, path))
                        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
                    let v = json!({"action": "exported", "format": format, "output": path.display().to_string(), "bytes": text.len()});
                    emit(json, &v, || {
                        format!("EXPORTED {} ({} bytes)", path.display(), text.len())
                    });
                }
                None => print!("{text}"),
            }
        }
        Command::Peer(c) => crate::peers::peer(p, &root, c, json)?,
        Command::Member(c) => crate::peers::member(p, &root, c, json)?,
        Command::Join {
            code,
            token,
            adopt,
            dry_run,
        } => crate::joincmd::join(
            p,
            &root,
            ctx,
            code,
            token.as_deref(),
            (*adopt, *dry_run),
            json,
        )?,
        Command::Import {
            file,
            from_db,
            dry_run,
        } => {
            let tmp = tempfile_dir(&root)?;
            let result =
                import_command(p, &tmp, file.as_deref(), from_db.as_deref(), *dry_run, json);
            let _ = std::fs::remove_dir_all(&tmp);
            result?;
        }
        Command::Rebuild => {
            let n = p.store.rebuild()?;
            emit(json, &json!({"action": "rebuilt", "changes": n}), || {
                format!("REBUILT from {n} changes")
            });
        }
    }
    Ok(())
}

fn fields_of(a: &FieldArgs) -> IssueFields {
    IssueFields {
        issue_type: a.issue_type.clone(),
        priority: a.priority.clone(),
        points: a.points,
        labels: a.labels.as_deref().map(model::parse_labels),
        description: a.description.clone(),
        acceptance: a.acceptance.clone(),
        parent: a.parent.clone(),
        sprint: a.sprint.clone(),
        minor: a.minor.then_some(true),
        defer_until: a.defer.clone().map(Some),
        due_date: a.due.clone().map(Some),
        ..Default::default()
    }
}

fn handoff_of(a: &HandoffArgs) -> HandoffText {
    HandoffText {
        done: a.done.clone(),
        remaining: a.remaining.clone(),
        decisions: a.decisions.clone(),
        uncertain: a.uncertain.clone(),
    }
}

type Detail<'a> = dyn FnMut(&str) -> Option<Value> + 'a;

fn no_detail(_: &str) -> Option<Value> {
    None
}

/// On a `conflict`, the current state of the issue (read from a fresh connection) goes into
/// the error so the caller can retry from it.
fn p_show_conflict(root: &std::path::Path) -> impl FnMut(&str) -> Option<Value> + '_ {
    move |id| {
        let identity = td_transport::identity::machine_identity().ok()?;
        let store = td_engine::Store::open(root, identity).ok()?;
        query::issue_detail(store.conn(), id).ok()
    }
}

/// Runs an issue command for each id, printing `action` (or `repeat` for idempotent repeats).
fn for_each(
    json: bool,
    ids: &[String],
    action: &str,
    repeat: &str,
    mut op: impl FnMut(&str) -> td_engine::Result<IssueOutcome>,
    detail: &mut Detail<'_>,
) -> Result<()> {
    let mut values = Vec::new();
    let mut lines = Vec::new();
    for raw in ids {
        let id = normalize_issue_id(raw);
        match op(&id) {
            Ok(o) => {
                let act = if o.changed { action } else { repeat };
                lines.push(if o.changed {
                    format!("{} {id}", act.to_uppercase().replace('_', " "))
                } else {
                    format!("{id}: {}", act.replace('_', " "))
                });
                values.push(json!({"action": act, "id": id, "status": o.issue.status, "issue": o.issue.json}));
            }
            Err(e) => {
                if !json {
                    for l in &lines {
                        println!("{}", crate::output::escape(l));
                    }
                }
                let d = matches!(e, EngineError::Conflict(_))
                    .then(|| detail(&id))
                    .flatten();
                return Err(CliError {
                    code: e.code(),
                    message: e.to_string(),
                    detail: d,
                }
                .into());
            }
        }
    }
    emit(json, &one_or_many(values), || lines.join("\n"));
    Ok(())
}

fn list(p: &Project, a: &ListArgs, json: bool) -> Result<()> {
    let norm = |v: &[String],
                f: fn(&str) -> td_engine::Result<&'static str>|
     -> td_engine::Result<Vec<String>> {
        v.iter().map(|s| f(s).map(String::from)).collect()
    };
    let status = a
        .status
        .iter()
        .map(|s| model::Status::parse(s).map(|s| s.as_str().to_string()))
        .collect::<td_engine::Result<Vec<_>>>()?;
    let f = ListFilter {
        status,
        types: norm(&a.types, model::parse_type)?,
        labels: a.labels.clone(),
        priority: norm(&a.priority, model::parse_priority)?,
        search: a.search.clone(),
        parent: a
            .parent
            .clone()
            .or_else(|| a.epic.clone())
            .map(|p| normalize_issue_id(&p)),
        mine: a.mine.then(|| p.session.id.clone()),
        all: a.all,
        only_deleted: false,
        sort: a.sort.clone(),
        limit: a.limit,
    };
    crate::output::print_issues(query::list_issues(p.store.conn(), &f)?, json);
    Ok(())
}

fn show_text(v: &Value) -> String {
    let mut s = format!("{}\n", issue_line(v));
    for (k, label) in [("description", "Description"), ("acceptance", "Acceptance")] {
        if let Some(t) = v[k].as_str().filter(|t| !t.is_empty()) {
            s.push_str(&format!("{label}:\n  {}\n", t.replace('\n', "\n  ")));
        }
    }
    for k in [
        "parent_id",
        "implementer_session",
        "reviewer_session",
        "creator_session",
        "created_at",
        "updated_at",
        "closed_at",
        "deleted_at",
        "version",
    ] {
        if let Some(t) = v[k].as_str().filter(|t| !t.is_empty()) {
            s.push_str(&format!("{k}: {t}\n"));
        }
    }
    for k in ["depends_on", "blocks", "children"] {
        if let Some(a) = v[k].as_array().filter(|a| !a.is_empty()) {
            let ids: Vec<&str> = a.iter().filter_map(Value::as_str).collect();
            s.push_str(&format!("{k}: {}\n", ids.join(", ")));
        }
    }
    if let Some(h) = v["handoff"].as_object() {
        s.push_str(&format!(
            "Handoff ({}):\n",
            h["timestamp"].as_str().unwrap_or("")
        ));
        for k in ["done", "remaining", "decisions", "uncertain"] {
            for item in h[k].as_array().into_iter().flatten() {
                s.push_str(&format!("  {k}: {}\n", item.as_str().unwrap_or("")));
            }
        }
    }
    for (k, label, text) in [
        ("logs", "Logs", "message"),
        ("comments", "Comments", "text"),
    ] {
        if let Some(a) = v[k].as_array().filter(|a| !a.is_empty()) {
            s.push_str(&format!("{label}:\n"));
            for l in a {
                s.push_str(&format!(
                    "  [{}] {}\n",
                    l["type"]
                        .as_str()
                        .unwrap_or(l["session_id"].as_str().unwrap_or("")),
                    l[text].as_str().unwrap_or("")
                ));
            }
        }
    }
    for c in v["conflicts"].as_array().into_iter().flatten() {
        let field = if c["field"] == "wf" {
            "status"
        } else {
            c["field"].as_str().unwrap_or("")
        };
        s.push_str(&format!(
            "(!) conflict {} on {field}: kept {} by {}, overwritten {} by {} (td sync resolve {} --keep kept|overwritten)\n",
            c["id"].as_str().unwrap_or(""),
            c["kept"]["value"],
            c["kept"]["session"].as_str().unwrap_or("?"),
            c["overwritten"]["value"],
            c["overwritten"]["session"].as_str().unwrap_or("?"),
            c["id"].as_str().unwrap_or("")
        ));
    }
    if let Some(a) = v["reviews"].as_array().filter(|a| !a.is_empty()) {
        s.push_str("Reviews:\n");
        for r in a {
            s.push_str(&format!(
                "  {} by {} {}\n",
                r["decision"].as_str().unwrap_or(""),
                r["reviewer_session"].as_str().unwrap_or(""),
                r["created_at"].as_str().unwrap_or("")
            ));
        }
    }
    s
}

fn dep(p: &mut Project, d: &DepCommand, json: bool) -> Result<()> {
    let (issue, on, added) = match d {
        DepCommand::Add { issue, depends_on } => {
            let (i, o) = (normalize_issue_id(issue), normalize_issue_id(depends_on));
            let added = p.dep_add(&i, &o)?;
            (i, o, Some(added))
        }
        DepCommand::Rm { issue, depends_on } => {
            let (i, o) = (normalize_issue_id(issue), normalize_issue_id(depends_on));
            let removed = p.dep_rm(&i, &o)?;
            (i, o, if removed { None } else { Some(false) })
        }
    };
    let action = match (d, added) {
        (DepCommand::Add { .. }, Some(true)) => "added",
        (DepCommand::Add { .. }, _) => "already_exists",
        (DepCommand::Rm { .. }, None) => "removed",
        (DepCommand::Rm { .. }, _) => "not_found",
    };
    emit(
        json,
        &json!({"action": action, "issue_id": issue, "depends_on_id": on}),
        || match action {
            "added" => format!("ADDED {issue} depends on {on}"),
            "removed" => format!("REMOVED {issue} no longer depends on {on}"),
            "already_exists" => format!("{issue} already depends on {on}"),
            _ => format!("{issue} did not depend on {on}"),
        },
    );
    Ok(())
}

fn ws(p: &mut Project, w: &WsCommand, json: bool) -> Result<()> {
    match w {
        WsCommand::Start { name } => {
            let id = p.ws_start(name)?;
            emit(
                json,
                &json!({"action": "started", "id": id, "name": name}),
                || format!("WORK SESSION STARTED {id} ({name})"),
            );
        }
        WsCommand::Tag { ids } | WsCommand::Untag { ids } => {
            let ids: Vec<String> = ids.iter().map(|i| normalize_issue_id(i)).collect();
            let tag = matches!(w, WsCommand::Tag { .. });
            let (ws, changed) = if tag {
                p.ws_tag(&ids)?
            } else {
                p.ws_untag(&ids)?
            };
            let action = if tag { "tagged" } else { "untagged" };
            emit(
                json,
                &json!({"action": action, "work_session_id": ws, "issues": changed}),
                || format!("{} {} in {ws}", action.to_uppercase(), changed.join(", ")),
            );
        }
        WsCommand::Log { message, log_type } => {
            let ids = p.ws_log(message, log_type)?;
            emit(json, &json!({"action": "logged", "ids": ids}), || {
                format!("LOGGED to {} issue(s)", ids.len())
            });
        }
        WsCommand::Handoff { lists } => {
            let (ws, ids) = p.ws_handoff(&handoff_of(lists))?;
            emit(
                json,
                &json!({"action": "handoff", "work_session_id": ws, "handoffs": ids}),
                || {
                    format!(
                        "HANDOFF RECORDED for {} issue(s); work session {ws} ended",
                        ids.len()
                    )
                },
            );
        }
        WsCommand::End => {
            let ws = p.ws_end()?;
            emit(json, &json!({"action": "ended", "id": ws}), || {
                format!("WORK SESSION ENDED {ws}")
            });
        }
        WsCommand::Current => {
            let cur = p.ws_current()?;
            let v = cur.clone().unwrap_or(Value::Null);
            emit(json, &v, || match cur {
                Some(c) => format!(
                    "{} {} ({} issues)",
                    c["id"].as_str().unwrap_or(""),
                    c["name"].as_str().unwrap_or(""),
                    c["issues"].as_array().map_or(0, Vec::len)
                ),
                None => "No active work session.".into(),
            });
        }
        WsCommand::List => {
            let all = p.ws_list()?;
            let human = if all.is_empty() {
                "No work sessions.".to_string()
            } else {
                all.iter()
                    .map(|c| {
                        format!(
                            "{}  {}  {}{}",
                            c["id"].as_str().unwrap_or(""),
                            c["started_at"].as_str().unwrap_or(""),
                            c["name"].as_str().unwrap_or(""),
                            if c["ended_at"].is_null() {
                                "  (active)"
                            } else {
                                ""
                            }
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            emit(json, &Value::Array(all), || human);
        }
    }
    Ok(())
}

fn section(p: &Project, status: &str) -> Result<Vec<Value>> {
    let f = ListFilter {
        status: vec![status.into()],
        ..Default::default()
    };
    Ok(query::list_issues(p.store.conn(), &f)?
        .into_iter()
        .map(|i| i.json)
        .collect())
}

fn usage(p: &Project, json: bool) -> Result<()> {
    let focused = td_engine::session::focused_issue(p.store.conn(), &p.session.id)?;
    let in_progress = section(p, "in_progress")?;
    let in_review = section(p, "in_review")?;
    let reviewable: Vec<Value> = p.reviewable()?.into_iter().map(|i| i.json).collect();
    let open: Vec<Value> = section(p, "open")?.into_iter().take(10).collect();
    let v = json!({"session": p.session.id, "focused_issue": focused, "in_progress": in_progress,
        "in_review": in_review, "reviewable": reviewable, "open": open});
    emit(json, &v, || {
        let mut s = format!("You are session {}.\n", p.session.id);
        if let Some(f) = &focused {
            s.push_str(&format!("Focused issue: {f}\n"));
        }
        for (title, list) in [
            ("In progress", &in_progress),
            ("Reviewable by you", &reviewable),
            ("Open (top 10)", &open),
        ] {
            s.push_str(&format!("\n{title}:\n"));
            if list.is_empty() {
                s.push_str("  (none)\n");
            }
            for i in list {
                s.push_str(&format!("  {}\n", issue_line(i)));
            }
        }
        s.push_str("\nCommands: td start <id> · td log \"msg\" · td handoff <id> --done ... · td review <id> · td approve <id>");
        s
    });
    Ok(())
}

fn status(p: &Project, root: &std::path::Path, json: bool) -> Result<()> {
    let counts = query::status_counts(p.store.conn())?;
    let stats = export::log_stats(p.store.conn())?;
    let focused = td_engine::session::focused_issue(p.store.conn(), &p.session.id)?;
    let mut by_status = serde_json::Map::new();
    for (s, n) in &counts {
        by_status.insert(s.clone(), Value::from(*n));
    }
    let db: PathBuf = td_engine::store::db_path(root);
    let v = json!({"session": p.session.id, "focused_issue": focused, "issues": by_status, "project": p.store.project_id()?,
        "machine": p.store.identity().fingerprint(), "database": db.display().to_string(),
        "change_log": {"changes": stats.changes, "actors": stats.actors, "documents": stats.documents}});
    emit(json, &v, || {
        let mut s = format!("Session: {}\n", p.session.id);
        if let Some(f) = &focused {
            s.push_str(&format!("Focused: {f}\n"));
        }
        s.push_str("Issues:");
        for (st, n) in &counts {
            s.push_str(&format!(" {st}={n}"));
        }
        s.push_str(&format!(
            "\nChange log: {} changes from {} writers across {} documents",
            stats.changes, stats.actors, stats.documents
        ));
        s
    });
    Ok(())
}
