//! TDQ, td's query language (`td query`, `td list -f`, boards, the monitor's `/` search):
//! field comparisons (`= != < > <= >= ~ !~`), `AND`/`OR`/`NOT` (also `&&`, `||`, `!`, `-`),
//! implicit AND, parentheses, plain-text terms, functions (`has`, `is`, `any`, `all`, `none`,
//! `label`, `child_of`, `descendant_of`, `blocks`, `blocked_by`, `linked_to`, `rework`,
//! `is_ready`, `has_open_deps`), `@me`, `EMPTY`, `NULL`, relative dates (`-7d`, `today`,
//! `this_week`…), cross-entity fields (`log.`, `comment.`, `handoff.`, `file.`, `dep.`) and a
//! `sort:` clause. Parsed into a tree with td's grammar, precedence and error messages, then
//! evaluated in Rust over the materialized rows (`eval.rs`): a query never reaches SQL as text.
//!
//! Written by hand: no crate parses td's dialect, and its lexer has td-specific rules (`-` is
//! NOT before a field and a date sign before a digit, `:` means `=`, `sort:` is a token).

pub mod eval;
mod lexer;
mod parser;

pub use eval::{evaluate, EvalContext, QueryOptions, QueryResult};
pub use parser::parse;

/// A parsed query: its expression (none for an empty query) and an optional sort clause.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// The expression; `None` matches every issue.
    pub root: Option<Node>,
    /// `sort:field` / `sort:-field`.
    pub sort: Option<Sort>,
}

/// A sort clause: a column and a direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sort {
    /// The column (`created_at`, `priority`, …).
    pub column: String,
    /// Descending.
    pub descending: bool,
}

/// An expression node.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// Both hold.
    And(Box<Node>, Box<Node>),
    /// Either holds.
    Or(Box<Node>, Box<Node>),
    /// The inner one does not hold.
    Not(Box<Node>),
    /// `field op value` (the field may be `log.message` and the like).
    Field {
        /// The field as written (`status`, `log.message`).
        field: String,
        /// The comparison.
        op: Op,
        /// The value.
        value: Value,
    },
    /// `name(args)`.
    Func {
        /// The function.
        name: String,
        /// Its arguments.
        args: Vec<Value>,
    },
    /// A plain-text term: matches id, title or description.
    Text(String),
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `=` (also `:`)
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `>`
    Gt,
    /// `<=`
    Le,
    /// `>=`
    Ge,
    /// `~` (contains, case-insensitive)
    Contains,
    /// `!~`
    NotContains,
}

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Gt => ">",
            Op::Le => "<=",
            Op::Ge => ">=",
            Op::Contains => "~",
            Op::NotContains => "!~",
        }
    }

    fn ordering(self) -> bool {
        matches!(self, Op::Lt | Op::Gt | Op::Le | Op::Ge)
    }
}

/// A value in a comparison or a function call.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A word or a quoted string.
    Str(String),
    /// An integer.
    Int(i64),
    /// A date: absolute (`2026-05-09`) or relative (`-7d`, `today`).
    Date {
        /// As written.
        raw: String,
        /// Relative to now.
        relative: bool,
    },
    /// `@me`: the acting session.
    Me,
    /// `EMPTY`: null or empty.
    Empty,
    /// `NULL`.
    Null,
    /// `(a, b, …)`.
    List(Vec<Value>),
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Str(s) => write!(f, "{s}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Date { raw, .. } => write!(f, "{raw}"),
            Value::Me => write!(f, "@me"),
            Value::Empty => write!(f, "EMPTY"),
            Value::Null => write!(f, "NULL"),
            Value::List(v) => {
                let parts: Vec<String> = v.iter().map(|x| x.to_string()).collect();
                write!(f, "({})", parts.join(", "))
            }
        }
    }
}

impl std::fmt::Display for Node {
    /// td's rendering of the parsed tree (`td query --explain`): `(a AND b)`, `(NOT x)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Node::And(a, b) => write!(f, "({a} AND {b})"),
            Node::Or(a, b) => write!(f, "({a} OR {b})"),
            Node::Not(x) => write!(f, "(NOT {x})"),
            Node::Field { field, op, value } => write!(f, "{field} {} {value}", op.as_str()),
            Node::Func { name, args } => {
                let parts: Vec<String> = args.iter().map(|x| x.to_string()).collect();
                write!(f, "{name}({})", parts.join(", "))
            }
            Node::Text(t) => write!(f, "\"{t}\""),
        }
    }
}

impl std::fmt::Display for Query {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if let Some(r) = &self.root {
            parts.push(r.to_string());
        }
        if let Some(s) = &self.sort {
            parts.push(format!(
                "sort:{}{}",
                if s.descending { "-" } else { "" },
                s.column
            ));
        }
        write!(f, "{}", parts.join(" "))
    }
}

/// The issue fields TDQ knows and their kinds (td's `KnownFields`, plus `acceptance`,
/// `creator`, `due` and `defer`, which this td adds).
pub(crate) const FIELDS: &[(&str, Kind)] = &[
    ("id", Kind::Text),
    ("title", Kind::Text),
    ("description", Kind::Text),
    ("status", Kind::Enum),
    ("type", Kind::Enum),
    ("priority", Kind::Ordinal),
    ("points", Kind::Number),
    ("labels", Kind::Text),
    ("parent", Kind::Text),
    ("epic", Kind::Text),
    ("implementer", Kind::Text),
    ("reviewer", Kind::Text),
    ("minor", Kind::Bool),
    ("branch", Kind::Text),
    ("sprint", Kind::Text),
    ("created", Kind::Date),
    ("updated", Kind::Date),
    ("closed", Kind::Date),
    ("acceptance", Kind::Text),
    ("creator", Kind::Text),
    ("due", Kind::Date),
    ("defer", Kind::Date),
];

/// Cross-entity fields: prefix → (field, kind).
pub(crate) const CROSS_FIELDS: &[(&str, &[(&str, Kind)])] = &[
    (
        "log",
        &[
            ("message", Kind::Text),
            ("type", Kind::Enum),
            ("timestamp", Kind::Date),
            ("session", Kind::Text),
        ],
    ),
    (
        "comment",
        &[
            ("text", Kind::Text),
            ("created", Kind::Date),
            ("session", Kind::Text),
        ],
    ),
    (
        "handoff",
        &[
            ("done", Kind::Text),
            ("remaining", Kind::Text),
            ("decisions", Kind::Text),
            ("uncertain", Kind::Text),
            ("timestamp", Kind::Date),
        ],
    ),
    ("file", &[("path", Kind::Text), ("role", Kind::Enum)]),
    ("dep", &[("blocks", Kind::Text), ("depends_on", Kind::Text)]),
];

/// Functions: (name, least args, most args or none, help).
pub(crate) const FUNCTIONS: &[(&str, usize, Option<usize>, &str)] = &[
    ("has", 1, Some(1), "has(field) - field is not empty"),
    ("is", 1, Some(1), "is(status) - shorthand for status check"),
    (
        "any",
        2,
        None,
        "any(field, v1, v2, ...) - field matches any value",
    ),
    (
        "all",
        2,
        None,
        "all(field, v1, v2, ...) - field matches all values",
    ),
    (
        "none",
        2,
        None,
        "none(field, v1, v2, ...) - field matches none",
    ),
    (
        "blocks",
        1,
        Some(1),
        "blocks(id) - issues that block the given id",
    ),
    (
        "blocked_by",
        1,
        Some(1),
        "blocked_by(id) - issues blocked by the given id",
    ),
    (
        "child_of",
        1,
        Some(1),
        "child_of(id) - direct children of issue",
    ),
    (
        "descendant_of",
        1,
        Some(1),
        "descendant_of(id) - all descendants (recursive)",
    ),
    (
        "linked_to",
        1,
        Some(1),
        "linked_to(path) - issues linked to file path",
    ),
    (
        "rework",
        0,
        Some(0),
        "rework() - issues rejected and awaiting rework",
    ),
    (
        "is_ready",
        0,
        Some(0),
        "is_ready() - issues with no open dependencies",
    ),
    (
        "has_open_deps",
        0,
        Some(0),
        "has_open_deps() - issues with open dependencies",
    ),
    (
        "label",
        1,
        Some(1),
        "label(name) - issues with the given label",
    ),
    ("labels", 1, Some(1), "labels(name) - alias for label()"),
];

/// What a field holds, for validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Text,
    Enum,
    Ordinal,
    Number,
    Bool,
    Date,
}

/// Sort fields and their columns (td's `SortFieldToColumn`).
pub(crate) const SORT_FIELDS: &[(&str, &str)] = &[
    ("created", "created_at"),
    ("updated", "updated_at"),
    ("closed", "closed_at"),
    ("deleted", "deleted_at"),
    ("priority", "priority"),
    ("id", "id"),
    ("title", "title"),
    ("status", "status"),
    ("points", "points"),
];
