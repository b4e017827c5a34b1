//! Output conventions: results on stdout (human or `--json`), diagnostics on stderr, one
//! `{"error":{"code","message"}}` line for a failed `--json` command.

use serde_json::{json, Value};
use td_engine::views::IssueView;
use td_engine::EngineError;

/// An error with td's JSON code, raised at the binary's edge.
#[derive(Debug)]
pub(crate) struct CliError {
    /// td error code.
    pub code: &'static str,
    /// Human message.
    pub message: String,
    /// Extra data for the JSON envelope (e.g. the current state on a conflict).
    pub detail: Option<Value>,
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

/// An `invalid_input` error for bad command-line input.
pub(crate) fn invalid(msg: String) -> anyhow::Error {
    CliError {
        code: "invalid_input",
        message: msg,
        detail: None,
    }
    .into()
}

/// Maps any error to (code, message, detail).
pub(crate) fn classify(err: &anyhow::Error) -> (&'static str, String, Option<Value>) {
    if let Some(c) = err.downcast_ref::<CliError>() {
        return (c.code, c.message.clone(), c.detail.clone());
    }
    if let Some(e) = err.downcast_ref::<EngineError>() {
        return (e.code(), e.to_string(), None);
    }
    if let Some(e) = err.downcast_ref::<td_transport::TransportError>() {
        use td_transport::TransportError as T;
        let code = match e {
            T::Engine(inner) => inner.code(),
            T::Identity(_) => "database_error",
            T::Address(_) => "invalid_input",
            _ => "network_error",
        };
        return (code, e.to_string(), None);
    }
    ("database_error", format!("{err:#}"), None)
}

/// Prints a failure: the JSON envelope on stdout in `--json` mode, `ERROR: …` on stderr
/// otherwise.
pub(crate) fn print_error(json_mode: bool, err: &anyhow::Error) {
    let (code, message, detail) = classify(err);
    if json_mode {
        let mut e = json!({"code": code, "message": message});
        if let Some(d) = detail {
            e["current"] = d;
        }
        println!("{}", json!({ "error": e }));
    } else {
        eprintln!("ERROR: {}", escape(&message));
        if let Some(d) = detail {
            eprintln!(
                "current state:\n{}",
                serde_json::to_string_pretty(&d).unwrap_or_default()
            );
        }
    }
}

/// `value` as td prints JSON (Go's `json.MarshalIndent(v, "", "  ")`): two-space indent,
/// keys sorted, and Go's HTML escaping (`<`, `>`, `&`, U+2028 and U+2029 as `\uXXXX`). These
/// characters only occur inside strings in JSON text, so escaping them there is exact. Every
/// `--json` result goes through here: the contract has one writer.
pub(crate) fn td_json(value: &Value) -> String {
    let text = serde_json::to_string_pretty(value).expect("JSON values serialize");
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// Prints a result: `value` as td's JSON ([`td_json`]), or the human text (escaped,
/// [`escape`]).
pub(crate) fn emit(json_mode: bool, value: &Value, human: impl FnOnce() -> String) {
    if json_mode {
        println!("{}", td_json(value));
    } else {
        // Human text carries titles, comments and messages from other machines: no control
        // sequence reaches the terminal raw. `--json` stays exact.
        let text = escape(&human());
        if !text.is_empty() {
            println!("{text}");
        }
    }
}

/// Prints one event of a stream (`td peer sync --watch`): `--json` as one compact line per
/// event (JSON lines, which a reader can take line by line), or the human text.
pub(crate) fn emit_line(json_mode: bool, value: &Value, human: impl FnOnce() -> String) {
    if json_mode {
        println!(
            "{}",
            serde_json::to_string(value).expect("JSON values serialize")
        );
    } else {
        emit(false, value, human);
    }
}

/// One or many results: a single object for one id, an array for several.
pub(crate) fn one_or_many(mut values: Vec<Value>) -> Value {
    if values.len() == 1 {
        values.pop().unwrap_or(Value::Null)
    } else {
        Value::Array(values)
    }
}

/// A short one-line summary of an issue for listings.
pub(crate) fn issue_line(i: &IssueView) -> String {
    // td's `FormatIssueShort`: id, priority, title (one line), points when set, type, status,
    // two spaces apart. td drops other control characters; here they stay, to be shown
    // escaped ([`escape`]), so hostile text is visible rather than hidden.
    let title: String = i
        .title
        .replace("\r\n", " ")
        .chars()
        .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
        .collect();
    let mut s = format!("{}  [{}]  {title}", i.id, i.priority);
    if i.points > 0 {
        s.push_str(&format!("  {}pts", i.points));
    }
    s.push_str(&format!("  {}  [{}]", i.issue_type, i.status));
    s
}

/// The human text of a listing: one line per item, or `empty` when there are none.
pub(crate) fn listing<T>(items: &[T], empty: &str, line: impl Fn(&T) -> String) -> String {
    if items.is_empty() {
        empty.to_string()
    } else {
        items.iter().map(line).collect::<Vec<_>>().join("\n")
    }
}

/// String fields of a JSON object, two spaces apart (a row of a plain listing).
pub(crate) fn columns(v: &Value, keys: &[&str]) -> String {
    keys.iter()
        .map(|k| v[*k].as_str().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("  ")
}

/// Parses `30m`, `12h`, `7d`, `90s`, `2w` and compounds such as `1h30m` (as Go's durations
/// and td's day suffix) into seconds.
pub(crate) fn parse_duration(s: &str) -> anyhow::Result<i64> {
    let bad = || {
        invalid(format!(
            "invalid duration '{s}': expected e.g. 30m, 12h, 1h30m, 7d"
        ))
    };
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total: i64 = 0;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let n: i64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let mult = match &rest[..unit_len] {
            "s" => 1,
            // A bare number is minutes, as before.
            "m" | "" => 60,
            "h" => 3600,
            "d" => 86400,
            "w" => 7 * 86400,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        total = n
            .checked_mul(mult)
            .and_then(|v| total.checked_add(v))
            .filter(|v| *v <= MAX_DURATION_SECS)
            .ok_or_else(|| invalid(format!("duration out of range: {s} (max 36500d)")))?;
    }
    Ok(total)
}

/// A polling interval: `500ms`, or a duration as [`parse_duration`] reads it (`2s`, `1m`);
/// at least 50 ms, so a typo cannot make a loop spin.
pub(crate) fn parse_interval(s: &str) -> anyhow::Result<std::time::Duration> {
    let ms = match s.trim().strip_suffix("ms") {
        Some(n) => n
            .parse::<u64>()
            .map_err(|_| invalid(format!("invalid interval '{s}': expected e.g. 500ms, 2s")))?,
        None => parse_duration(s)? as u64 * 1000,
    };
    if ms < 50 {
        return Err(invalid(format!(
            "interval {s} is too short (at least 50ms)"
        )));
    }
    Ok(std::time::Duration::from_millis(ms))
}

/// The longest duration accepted (td's limit: 100 years).
const MAX_DURATION_SECS: i64 = 36_500 * 86_400;

/// Text from the log or from another machine as it may reach a terminal: control characters
/// (C0 but newline and tab, DEL, C1) and bidirectional overrides are shown escaped (`\u{1b}`),
/// so no stored or remote text can move the cursor, clear the screen, set the clipboard or
/// reorder what is shown. `--json` output is never escaped this way (it is exact).
pub(crate) fn escape(s: &str) -> String {
    let unsafe_char = |c: char| {
        (c.is_control() && c != '\n' && c != '\t')
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}')
    };
    if !s.chars().any(unsafe_char) {
        return s.to_string();
    }
    s.chars()
        .map(|c| {
            if unsafe_char(c) {
                format!("\\u{{{:x}}}", c as u32)
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Prints issues as a JSON array or one line each.
pub(crate) fn print_issues(issues: &[IssueView], json: bool) {
    if json {
        emit_array(issues.iter().map(IssueView::to_json));
    } else {
        emit(false, &Value::Null, || {
            listing(issues, "No issues found.", issue_line)
        });
    }
}

/// Prints a JSON array exactly as [`emit`] prints `Value::Array` of the same items (td's
/// pretty layout), one item at a time: a list of 100,000 issues never exists as one value or
/// one string.
pub(crate) fn emit_array(items: impl Iterator<Item = Value>) {
    use std::io::Write;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut first = true;
    for v in items {
        let text = td_json(&v);
        let sep = if first { "[\n" } else { ",\n" };
        first = false;
        let _ = out.write_all(sep.as_bytes());
        for (n, line) in text.lines().enumerate() {
            if n > 0 {
                let _ = out.write_all(b"\n");
            }
            let _ = out.write_all(b"  ");
            let _ = out.write_all(line.as_bytes());
        }
    }
    let _ = out.write_all(if first { b"[]\n" } else { b"\n]\n" });
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escapes_terminal_controls_and_bidi() {
        assert_eq!(escape("plain"), "plain");
        assert_eq!(escape("a\x1b[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(escape("\x1b]52;c;aGk=\x07"), "\\u{1b}]52;c;aGk=\\u{7}");
        assert_eq!(escape("x\u{202e}y\u{9b}"), "x\\u{202e}y\\u{9b}");
        assert_eq!(escape("two\nlines\tok"), "two\nlines\tok");
    }
}
