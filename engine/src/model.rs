//! td's vocabulary: statuses and their transitions, types, priorities, log types, id formats,
//! timestamps and title rules. Pure functions, no storage.

use crate::error::{invalid, Result};
use crate::identity::random_bytes;

/// Issue status, with td's allowed transitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Not started.
    Open,
    /// Someone is working on it.
    InProgress,
    /// Waiting on something.
    Blocked,
    /// Waiting for a reviewer.
    InReview,
    /// Done.
    Closed,
}

impl Status {
    /// All statuses in td's order.
    pub const ALL: [Status; 5] = [
        Status::Open,
        Status::InProgress,
        Status::Blocked,
        Status::InReview,
        Status::Closed,
    ];

    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::InProgress => "in_progress",
            Status::Blocked => "blocked",
            Status::InReview => "in_review",
            Status::Closed => "closed",
        }
    }

    /// Parses user input (`in-progress` and `in_progress` both accepted).
    pub fn parse(s: &str) -> Result<Status> {
        let norm = s.trim().to_ascii_lowercase().replace('-', "_");
        Status::ALL.into_iter().find(|st| st.as_str() == norm).ok_or_else(|| {
            invalid(format!(
                "invalid status '{s}': expected one of open, in_progress, blocked, in_review, closed"
            ))
        })
    }

    /// Whether td allows moving from `self` to `to`.
    pub fn can_transition(self, to: Status) -> bool {
        use Status::*;
        matches!(
            (self, to),
            (Open, InProgress | InReview | Blocked | Closed)
                | (InProgress, Open | InReview | Blocked | Closed)
                | (Blocked, Open | InProgress | Closed)
                | (InReview, Open | InProgress | Closed)
                | (Closed, Open)
        )
    }

    /// td's name for the transition from `self` to `to` (`start`, `review`, `approve`, …).
    pub fn transition_name(self, to: Status) -> String {
        use Status::*;
        match (self, to) {
            (Open, InProgress) => "start".into(),
            (InProgress, Open) => "unstart".into(),
            (_, Blocked) => "block".into(),
            (Blocked, Open) => "unblock".into(),
            (_, InReview) => "review".into(),
            (InReview, Open) => "reject".into(),
            (InReview, Closed) => "approve".into(),
            (_, Closed) => "close".into(),
            (Closed, Open) => "reopen".into(),
            (a, b) => format!("{} → {}", a.as_str(), b.as_str()),
        }
    }

    /// Every allowed transition, in td's order of statuses.
    pub fn transitions() -> Vec<(Status, Status)> {
        Status::ALL
            .into_iter()
            .flat_map(|a| Status::ALL.into_iter().map(move |b| (a, b)))
            .filter(|(a, b)| a.can_transition(*b))
            .collect()
    }

    /// Fails with `invalid_input` unless the transition is allowed.
    pub fn check_transition(self, to: Status) -> Result<()> {
        if self.can_transition(to) {
            Ok(())
        } else {
            Err(invalid(format!(
                "cannot transition from {} to {}",
                self.as_str(),
                to.as_str()
            )))
        }
    }
}

/// Normalises an issue type (`story` means `feature`).
pub fn parse_type(s: &str) -> Result<&'static str> {
    match s.trim().to_ascii_lowercase().as_str() {
        "bug" => Ok("bug"),
        "feature" | "story" => Ok("feature"),
        "task" => Ok("task"),
        "epic" => Ok("epic"),
        "chore" => Ok("chore"),
        _ => Err(invalid(format!(
            "invalid type '{s}': expected one of bug, feature, task, epic, chore"
        ))),
    }
}

/// Normalises a priority (`P0..P4`, `0..4`, `critical/high/medium/low`).
pub fn parse_priority(s: &str) -> Result<&'static str> {
    match s.trim().to_ascii_lowercase().as_str() {
        "p0" | "0" | "critical" => Ok("P0"),
        "p1" | "1" | "high" => Ok("P1"),
        "p2" | "2" | "medium" => Ok("P2"),
        "p3" | "3" | "low" => Ok("P3"),
        "p4" | "4" | "lowest" | "none" => Ok("P4"),
        _ => Err(invalid(format!(
            "invalid priority '{s}': expected P0-P4, 0-4, or critical/high/medium/low"
        ))),
    }
}

/// Validates story points (td's Fibonacci scale; 0 means unset).
pub fn parse_points(n: i64) -> Result<i64> {
    if matches!(n, 0 | 1 | 2 | 3 | 5 | 8 | 13 | 21) {
        Ok(n)
    } else {
        Err(invalid(format!(
            "invalid points {n}: expected one of 1, 2, 3, 5, 8, 13, 21"
        )))
    }
}

/// Log types td knows.
pub const LOG_TYPES: [&str; 8] = [
    "progress",
    "security",
    "blocker",
    "decision",
    "hypothesis",
    "tried",
    "result",
    "orchestration",
];

/// Validates a log type.
pub fn parse_log_type(s: &str) -> Result<&'static str> {
    LOG_TYPES
        .into_iter()
        .find(|t| *t == s)
        .ok_or_else(|| invalid(format!("invalid log type '{s}'")))
}

/// Titles td refuses as too generic to be useful in a shared backlog.
const GENERIC_TITLES: [&str; 12] = [
    "task", "bug", "fix", "todo", "issue", "feature", "test", "update", "change", "wip", "stuff",
    "thing",
];

/// Maximum title length in characters.
pub const MAX_TITLE_CHARS: usize = 200;

/// Validates a title: not empty, not generic, at most 200 characters.
pub fn check_title(title: &str) -> Result<String> {
    let t = title.trim();
    if t.is_empty() {
        return Err(invalid("title is required"));
    }
    if GENERIC_TITLES.contains(&t.to_ascii_lowercase().as_str()) {
        return Err(invalid(format!(
            "title '{t}' is too generic: describe the work (e.g. 'Fix crash when config is missing')"
        )));
    }
    let n = t.chars().count();
    if n > MAX_TITLE_CHARS {
        return Err(invalid(format!(
            "title is too long ({n} characters, max {MAX_TITLE_CHARS})"
        )));
    }
    Ok(t.to_string())
}

/// A date as people type it (`--defer`, `--due`, `td defer`, `td due`): `2026-03-01`,
/// `tomorrow`, `friday`, `+7d`, `next-week`… (`dates.rs`), as `YYYY-MM-DD`.
pub fn check_date(s: &str) -> Result<String> {
    crate::dates::parse_date(s)
}

/// Entity kinds and their id prefixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// `td-` + 6 hex.
    Issue,
    /// `bd-` + 8 hex.
    Board,
    /// `ws-` + 4 hex.
    WorkSession,
    /// `nt-` + 6 hex.
    Note,
    /// `lg-` + 8 hex.
    Log,
    /// `cm-` + 8 hex.
    Comment,
    /// `ho-` + 8 hex.
    Handoff,
    /// `rv-` + 8 hex.
    Review,
    /// The project's member roster: the single document `roster`.
    Roster,
}

impl Kind {
    /// Every kind, in materialization order (the roster first, then parents before children).
    pub const ALL: [Kind; 9] = [
        Kind::Roster,
        Kind::Issue,
        Kind::Board,
        Kind::WorkSession,
        Kind::Note,
        Kind::Log,
        Kind::Comment,
        Kind::Handoff,
        Kind::Review,
    ];

    /// The id prefix and the number of hex digits td draws.
    pub fn prefix(self) -> (&'static str, usize) {
        match self {
            Kind::Issue => ("td-", 6),
            Kind::Board => ("bd-", 8),
            Kind::WorkSession => ("ws-", 4),
            Kind::Note => ("nt-", 6),
            Kind::Log => ("lg-", 8),
            Kind::Comment => ("cm-", 8),
            Kind::Handoff => ("ho-", 8),
            Kind::Review => ("rv-", 8),
            Kind::Roster => ("roster", 0),
        }
    }

    /// The kind an entity id belongs to.
    pub fn of_id(id: &str) -> Option<Kind> {
        // The roster is exactly one document: an id that merely starts with `roster` is no
        // roster (it is kept in the log and never materialized).
        Kind::ALL.into_iter().find(|k| match k {
            Kind::Roster => id == "roster",
            _ => id.starts_with(k.prefix().0),
        })
    }

    /// A fresh random id of this kind.
    pub fn new_id(self) -> String {
        let (p, n) = self.prefix();
        let bytes: [u8; 8] = random_bytes();
        format!("{p}{}", &hex::encode(bytes)[..n])
    }

    /// The name used in JSON output and the log.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Issue => "issue",
            Kind::Board => "board",
            Kind::WorkSession => "work_session",
            Kind::Note => "note",
            Kind::Log => "log",
            Kind::Comment => "comment",
            Kind::Handoff => "handoff",
            Kind::Review => "review",
            Kind::Roster => "roster",
        }
    }
}

/// Normalises an issue id from user input: `abc123` means `td-abc123`.
pub fn normalize_issue_id(s: &str) -> String {
    let s = s.trim();
    if s.starts_with("td-") {
        s.to_string()
    } else {
        format!("td-{s}")
    }
}

/// td's deterministic link-row id: prefix + first 16 hex chars of sha256(key).
pub fn link_id(prefix: &str, key: &str) -> String {
    use sha2::{Digest, Sha256};
    format!(
        "{prefix}{}",
        &hex::encode(Sha256::digest(key.as_bytes()))[..16]
    )
}

/// The current time in td's DATETIME format (`YYYY-MM-DD HH:MM:SS.ffffff±HH:MM`).
pub fn now_timestamp() -> String {
    chrono::Local::now()
        .format("%Y-%m-%d %H:%M:%S%.6f%:z")
        .to_string()
}

/// A stored td time as td's API and `--json` write Go times: RFC 3339, whole seconds, the
/// stored offset (`Z` for UTC); `None` for an empty or unreadable one.
pub fn rfc3339_seconds(timestamp: &str) -> Option<String> {
    if timestamp.is_empty() {
        return None;
    }
    parse_timestamp(timestamp).map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

/// A stored td time as td's `--json` writes Go's `time.Time`: RFC 3339 with the fraction's
/// trailing zeros trimmed (none when whole), the stored offset (`Z` for UTC). A value that is
/// not a time is returned as stored.
pub fn rfc3339_nanos(timestamp: &str) -> String {
    let Some(t) = parse_timestamp(timestamp) else {
        return timestamp.to_string();
    };
    let full = t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    // `2026-06-10T12:03:07.123400000Z` -> `…07.1234Z`; `.000000000` goes entirely.
    let Some(dot) = full.find('.') else {
        return full;
    };
    let end = full[dot..]
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or(full.len(), |i| dot + i);
    let frac = full[dot + 1..end].trim_end_matches('0');
    let dot_part = if frac.is_empty() {
        String::new()
    } else {
        format!(".{frac}")
    };
    format!("{}{}{}", &full[..dot], dot_part, &full[end..])
}

/// Reads a td timestamp ([`now_timestamp`]'s format, or RFC 3339).
pub fn parse_timestamp(timestamp: &str) -> Option<chrono::DateTime<chrono::FixedOffset>> {
    chrono::DateTime::parse_from_str(timestamp, "%Y-%m-%d %H:%M:%S%.f%:z")
        .or_else(|_| chrono::DateTime::parse_from_rfc3339(timestamp))
        .ok()
}

/// A td timestamp as people read its age: `just now`, `5m ago`, `3h ago`, `2d ago`, or the
/// date once it is a week old (td's format). An unreadable timestamp is shown as it is.
pub fn time_ago(timestamp: &str) -> String {
    let Some(t) = parse_timestamp(timestamp) else {
        return timestamp.to_string();
    };
    let secs = (chrono::Utc::now() - t.with_timezone(&chrono::Utc)).num_seconds();
    match secs {
        s if s < 60 => "just now".into(),
        s if s < 3_600 => format!("{}m ago", s / 60),
        s if s < 86_400 => format!("{}h ago", s / 3_600),
        s if s < 7 * 86_400 => format!("{}d ago", s / 86_400),
        _ => t.format("%Y-%m-%d").to_string(),
    }
}

/// Splits a comma-separated label list into trimmed, non-empty, de-duplicated labels.
pub fn parse_labels(s: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for l in s.split(',').map(str::trim).filter(|l| !l.is_empty()) {
        if !out.iter().any(|o| o == l) {
            out.push(l.to_string());
        }
    }
    out
}

/// The roster's document id.
pub const ROSTER_ID: &str = "roster";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions_match_td() {
        assert!(Status::Open.can_transition(Status::InProgress));
        assert!(!Status::Closed.can_transition(Status::InProgress));
        assert!(!Status::Blocked.can_transition(Status::InReview));
        assert!(Status::InReview.can_transition(Status::Closed));
    }

    #[test]
    fn link_ids_are_td_compatible() {
        // Computed by td for the sample database: bip_ of "bd-7e03272c|td-e85b72".
        assert_eq!(
            link_id("bip_", "bd-7e03272c|td-e85b72"),
            "bip_7f8ed8bd551c9e68"
        );
    }

    #[test]
    fn titles() {
        assert!(check_title("task").is_err());
        assert!(check_title(&"x".repeat(201)).is_err());
        assert_eq!(
            check_title("  Fix the sync loop ").unwrap(),
            "Fix the sync loop"
        );
    }
}
