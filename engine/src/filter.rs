//! td's query expressions (`td query "<expr>"`, `td board create -q`): field comparisons
//! joined by `and`/`or`/`not` and parentheses, e.g. `status = open and (priority <= P1 or
//! labels ~ sync)`. Parsed once into a tree and evaluated against issue rows in Rust, so a
//! query can never reach SQL. A hand-written recursive-descent parser: the grammar is a dozen
//! lines and no crate implements td's dialect.

use serde_json::Value;

use crate::error::{invalid, Result};
use crate::model;

/// A parsed query expression.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    /// Both sides hold.
    And(Box<Expr>, Box<Expr>),
    /// Either side holds.
    Or(Box<Expr>, Box<Expr>),
    /// The inner expression does not hold.
    Not(Box<Expr>),
    /// `field op value`.
    Cmp {
        /// The issue column compared (after alias resolution).
        field: &'static str,
        /// The comparison.
        op: Op,
        /// The value, normalised for the field (`in-progress` → `in_progress`, `1` → `P1`).
        value: String,
    },
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `~`: contains (case-insensitive); for labels, has a label containing the value.
    Contains,
    /// `!~`: does not contain.
    NotContains,
}

/// Field names users may write, and the column each means.
const FIELDS: [(&str, &str); 22] = [
    ("id", "id"),
    ("title", "title"),
    ("description", "description"),
    ("desc", "description"),
    ("acceptance", "acceptance"),
    ("status", "status"),
    ("type", "type"),
    ("priority", "priority"),
    ("points", "points"),
    ("labels", "labels"),
    ("label", "labels"),
    ("parent", "parent_id"),
    ("epic", "parent_id"),
    ("sprint", "sprint"),
    ("implementer", "implementer_session"),
    ("creator", "creator_session"),
    ("reviewer", "reviewer_session"),
    ("created", "created_at"),
    ("updated", "updated_at"),
    ("closed", "closed_at"),
    ("due", "due_date"),
    ("defer", "defer_until"),
];

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Quoted(String),
    Op(Op),
    Open,
    Close,
}

fn tokenize(s: &str) -> Result<Vec<Tok>> {
    let mut out = Vec::new();
    let mut it = s.char_indices().peekable();
    while let Some(&(i, c)) = it.peek() {
        match c {
            c if c.is_whitespace() => {
                it.next();
            }
            '(' => {
                it.next();
                out.push(Tok::Open);
            }
            ')' => {
                it.next();
                out.push(Tok::Close);
            }
            '"' | '\'' => {
                it.next();
                let mut v = String::new();
                let mut closed = false;
                for (_, ch) in it.by_ref() {
                    if ch == c {
                        closed = true;
                        break;
                    }
                    v.push(ch);
                }
                if !closed {
                    return Err(invalid(format!(
                        "unterminated quote starting at character {}",
                        i + 1
                    )));
                }
                out.push(Tok::Quoted(v));
            }
            '=' | '!' | '<' | '>' | '~' => {
                it.next();
                let next = it.peek().map(|&(_, n)| n);
                let (op, two) = match (c, next) {
                    ('=', Some('=')) => (Op::Eq, true),
                    ('=', _) => (Op::Eq, false),
                    ('!', Some('=')) => (Op::Ne, true),
                    ('!', Some('~')) => (Op::NotContains, true),
                    ('<', Some('=')) => (Op::Le, true),
                    ('<', _) => (Op::Lt, false),
                    ('>', Some('=')) => (Op::Ge, true),
                    ('>', _) => (Op::Gt, false),
                    ('~', _) => (Op::Contains, false),
                    _ => return Err(invalid(format!("unexpected '{c}' at character {}", i + 1))),
                };
                if two {
                    it.next();
                }
                out.push(Tok::Op(op));
            }
            _ => {
                let mut v = String::new();
                while let Some(&(_, ch)) = it.peek() {
                    if ch.is_whitespace() || "()=!<>~\"'".contains(ch) {
                        break;
                    }
                    v.push(ch);
                    it.next();
                }
                out.push(Tok::Word(v));
            }
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek_keyword(&self, kw: &str) -> bool {
        matches!(self.toks.get(self.pos), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw))
    }

    fn or(&mut self) -> Result<Expr> {
        let mut left = self.and()?;
        while self.peek_keyword("or") {
            self.pos += 1;
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr> {
        let mut left = self.not()?;
        while self.peek_keyword("and") {
            self.pos += 1;
            left = Expr::And(Box::new(left), Box::new(self.not()?));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Expr> {
        if self.peek_keyword("not") {
            self.pos += 1;
            return Ok(Expr::Not(Box::new(self.not()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr> {
        match self.toks.get(self.pos).cloned() {
            Some(Tok::Open) => {
                self.pos += 1;
                let e = self.or()?;
                if self.toks.get(self.pos) != Some(&Tok::Close) {
                    return Err(invalid("missing ')' in query"));
                }
                self.pos += 1;
                Ok(e)
            }
            Some(Tok::Word(name)) => {
                self.pos += 1;
                let field = FIELDS
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(&name))
                    .map(|(_, col)| *col)
                    .ok_or_else(|| {
                        invalid(format!(
                            "unknown field '{name}' in query: expected one of {}",
                            FIELDS.map(|(n, _)| n).join(", ")
                        ))
                    })?;
                let Some(Tok::Op(op)) = self.toks.get(self.pos).cloned() else {
                    return Err(invalid(format!(
                        "expected an operator (=, !=, <, <=, >, >=, ~, !~) after '{name}'"
                    )));
                };
                self.pos += 1;
                let value = match self.toks.get(self.pos).cloned() {
                    Some(Tok::Word(v)) | Some(Tok::Quoted(v)) => v,
                    _ => return Err(invalid(format!("expected a value after '{name}'"))),
                };
                self.pos += 1;
                Ok(Expr::Cmp {
                    field,
                    op,
                    value: normalise(field, &value)?,
                })
            }
            Some(t) => Err(invalid(format!("unexpected {t:?} in query"))),
            None => Err(invalid("query ended early: expected a comparison")),
        }
    }
}

fn normalise(field: &str, value: &str) -> Result<String> {
    Ok(match field {
        "status" => model::Status::parse(value)?.as_str().to_string(),
        "priority" => model::parse_priority(value)?.to_string(),
        "type" => model::parse_type(value)?.to_string(),
        "parent_id" if !value.is_empty() => model::normalize_issue_id(value),
        _ => value.to_string(),
    })
}

/// Parses a query expression, with a clear error for bad input.
pub(crate) fn parse(s: &str) -> Result<Expr> {
    if s.trim().is_empty() {
        return Err(invalid("query is empty"));
    }
    let mut p = Parser {
        toks: tokenize(s)?,
        pos: 0,
    };
    let e = p.or()?;
    if p.pos != p.toks.len() {
        return Err(invalid(format!(
            "unexpected {:?} in query: join comparisons with 'and' or 'or'",
            p.toks[p.pos]
        )));
    }
    Ok(e)
}

fn compare(op: Op, actual: &str, value: &str, numeric: bool) -> bool {
    let ord = if numeric {
        match (actual.parse::<i64>(), value.parse::<i64>()) {
            (Ok(a), Ok(b)) => a.cmp(&b),
            _ => actual.cmp(value),
        }
    } else {
        actual.cmp(value)
    };
    let contains = || actual.to_lowercase().contains(&value.to_lowercase());
    match op {
        Op::Eq => ord.is_eq(),
        Op::Ne => ord.is_ne(),
        Op::Lt => ord.is_lt(),
        Op::Le => ord.is_le(),
        Op::Gt => ord.is_gt(),
        Op::Ge => ord.is_ge(),
        Op::Contains => contains(),
        Op::NotContains => !contains(),
    }
}

impl Expr {
    /// Whether an issue (td's JSON form, labels as an array) matches.
    pub(crate) fn matches(&self, issue: &Value) -> bool {
        match self {
            Expr::And(a, b) => a.matches(issue) && b.matches(issue),
            Expr::Or(a, b) => a.matches(issue) || b.matches(issue),
            Expr::Not(a) => !a.matches(issue),
            Expr::Cmp { field, op, value } => {
                if *field == "labels" {
                    let labels: Vec<&str> = issue["labels"]
                        .as_array()
                        .map(|a| a.iter().filter_map(Value::as_str).collect())
                        .unwrap_or_default();
                    return match op {
                        Op::Eq => labels.iter().any(|l| l.eq_ignore_ascii_case(value)),
                        Op::Ne => !labels.iter().any(|l| l.eq_ignore_ascii_case(value)),
                        Op::NotContains => !labels
                            .iter()
                            .any(|l| compare(Op::Contains, l, value, false)),
                        _ => labels.iter().any(|l| compare(*op, l, value, false)),
                    };
                }
                let actual = match &issue[*field] {
                    Value::String(s) => s.clone(),
                    Value::Null => String::new(),
                    v => v.to_string(),
                };
                compare(*op, &actual, value, *field == "points")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn issue() -> Value {
        json!({"id": "td-abc123", "status": "in_progress", "priority": "P1", "type": "bug",
               "labels": ["sync", "ui"], "points": 5, "title": "Fix the Sync loop", "parent_id": ""})
    }

    #[test]
    fn comparisons_and_logic() {
        let i = issue();
        for (q, want) in [
            ("status = in-progress", true),
            ("priority <= P1", true),
            ("priority < 1", false),
            ("labels ~ syn", true),
            ("labels = UI and type = bug", true),
            ("not (type = bug) or points > 3", true),
            ("points >= 8", false),
            ("title ~ 'sync loop'", true),
            ("labels !~ sync", false),
            ("status != closed and (priority = P0 or labels = ui)", true),
        ] {
            assert_eq!(parse(q).unwrap().matches(&i), want, "{q}");
        }
    }

    #[test]
    fn bad_queries_are_clear_errors() {
        for q in [
            "",
            "status",
            "status =",
            "colour = red",
            "status = nope",
            "(status = open",
            "status = open status = closed",
            "title = 'open",
            "status ! open",
        ] {
            assert!(parse(q).is_err(), "{q} should fail");
        }
    }
}
