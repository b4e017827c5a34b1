//! TDQ's grammar (td's `internal/query/parser.go`): OR binds loosest, then AND (written or
//! implied by juxtaposition), then NOT; a word followed by no operator is a text term. Then
//! td's validation: known fields and functions, argument counts, enum values (normalized:
//! `in-progress` → `in_progress`, `high` → `P1`), date operands.

use super::lexer::{tokenize, Tok, Token};
use super::{Kind, Node, Op, Query, Sort, Value, CROSS_FIELDS, FIELDS, FUNCTIONS, SORT_FIELDS};
use crate::error::{invalid, EngineError, Result};

/// Deepest parenthesis nesting a query may use.
const MAX_DEPTH: usize = 50;
/// Longest query accepted (a query comes from a flag, a board or a web request).
const MAX_QUERY_CHARS: usize = 10_000;
/// The most AND/OR terms in one query (far beyond any typed or board query).
const MAX_TERMS: usize = 1_000;

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
    terms: usize,
}

fn parse_error(tok: &Token, msg: &str, expected: Option<&str>) -> EngineError {
    invalid(match expected {
        Some(e) => format!(
            "parse error at line {}, column {}: {msg} (expected {e}, got {tok})",
            tok.line, tok.column
        ),
        None => format!(
            "parse error at line {}, column {}: {msg}",
            tok.line, tok.column
        ),
    })
}

impl Parser {
    fn current(&self) -> &Token {
        &self.tokens[self.pos.min(self.tokens.len() - 1)]
    }

    fn at_end(&self) -> bool {
        self.current().kind == Tok::Eof
    }

    fn advance(&mut self) -> Token {
        let t = self.current().clone();
        if !self.at_end() {
            self.pos += 1;
        }
        t
    }

    fn check(&self, k: Tok) -> bool {
        self.current().kind == k
    }

    fn matches(&mut self, k: Tok) -> bool {
        if self.check(k) {
            self.advance();
            return true;
        }
        false
    }

    fn or(&mut self) -> Result<Node> {
        let mut left = self.and()?;
        while self.matches(Tok::Or) {
            self.term()?;
            let right = self.and()?;
            left = Node::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Node> {
        let mut left = self.unary()?;
        loop {
            let implied = !self.at_end()
                && matches!(
                    self.current().kind,
                    Tok::Ident | Tok::Str | Tok::LParen | Tok::Not
                );
            if self.matches(Tok::And) || implied {
                self.term()?;
                let right = self.unary()?;
                left = Node::And(Box::new(left), Box::new(right));
                continue;
            }
            return Ok(left);
        }
    }

    fn unary(&mut self) -> Result<Node> {
        // Each NOT nests like a parenthesis: a query of ten thousand `!` is refused, never a
        // stack overflow (a board's query reaches every teammate's `td serve`).
        let mut nots = 0usize;
        while self.check(Tok::Not) {
            if self.depth + nots >= MAX_DEPTH {
                return Err(parse_error(
                    self.current(),
                    &format!("query exceeds maximum nesting depth of {MAX_DEPTH}"),
                    None,
                ));
            }
            self.advance();
            nots += 1;
        }
        self.depth += nots;
        let inner = self.primary();
        self.depth -= nots;
        let mut node = inner?;
        for _ in 0..nots {
            node = Node::Not(Box::new(node));
        }
        Ok(node)
    }

    /// Counts one more term of an AND or OR chain: their trees are as deep as they are long,
    /// and every pass over a query recurses through them.
    fn term(&mut self) -> Result<()> {
        self.terms += 1;
        if self.terms > MAX_TERMS {
            return Err(parse_error(
                self.current(),
                &format!("query has more than {MAX_TERMS} terms"),
                None,
            ));
        }
        Ok(())
    }

    fn primary(&mut self) -> Result<Node> {
        if self.matches(Tok::LParen) {
            self.depth += 1;
            if self.depth > MAX_DEPTH {
                return Err(parse_error(
                    self.current(),
                    &format!("query exceeds maximum nesting depth of {MAX_DEPTH}"),
                    None,
                ));
            }
            let e = self.or()?;
            self.depth -= 1;
            if !self.matches(Tok::RParen) {
                return Err(parse_error(
                    self.current(),
                    "missing closing parenthesis",
                    Some(")"),
                ));
            }
            return Ok(e);
        }
        if self.check(Tok::Ident) {
            return self.ident_expr();
        }
        if self.check(Tok::Str) {
            return Ok(Node::Text(self.advance().value));
        }
        Err(parse_error(
            self.current(),
            "unexpected token",
            Some("field, function, or quoted text"),
        ))
    }

    fn ident_expr(&mut self) -> Result<Node> {
        let name = self.advance().value;
        if self.check(Tok::LParen) {
            return self.call(name);
        }
        let mut field = name;
        while self.matches(Tok::Dot) {
            if !self.check(Tok::Ident) {
                return Err(parse_error(
                    self.current(),
                    "expected field name after '.'",
                    Some("identifier"),
                ));
            }
            field = format!("{field}.{}", self.advance().value);
        }
        let op = match self.current().kind {
            Tok::Eq => Op::Eq,
            Tok::Neq => Op::Ne,
            Tok::Lt => Op::Lt,
            Tok::Gt => Op::Gt,
            Tok::Lte => Op::Le,
            Tok::Gte => Op::Ge,
            Tok::Contains => Op::Contains,
            Tok::NotContains => Op::NotContains,
            // A word alone is text to search for.
            _ => return Ok(Node::Text(field)),
        };
        self.advance();
        let value = self.value()?;
        Ok(Node::Field { field, op, value })
    }

    fn call(&mut self, name: String) -> Result<Node> {
        self.advance(); // '('
        let mut args = Vec::new();
        if self.matches(Tok::RParen) {
            return Ok(Node::Func { name, args });
        }
        loop {
            args.push(self.argument()?);
            if !self.matches(Tok::Comma) {
                break;
            }
        }
        if !self.matches(Tok::RParen) {
            return Err(parse_error(
                self.current(),
                "missing closing parenthesis in function call",
                Some(")"),
            ));
        }
        Ok(Node::Func { name, args })
    }

    fn number(&mut self) -> Result<Value> {
        let t = self.advance();
        t.value.parse::<i64>().map(Value::Int).map_err(|_| {
            parse_error(
                &t,
                &format!("invalid number: {}", t.value),
                Some("valid integer"),
            )
        })
    }

    fn scalar(&mut self) -> Option<Result<Value>> {
        let t = self.current().clone();
        Some(match t.kind {
            Tok::Str => {
                self.advance();
                Ok(Value::Str(t.value))
            }
            Tok::Number => self.number(),
            Tok::Date => {
                self.advance();
                Ok(Value::Date {
                    relative: is_relative(&t.value),
                    raw: t.value,
                })
            }
            Tok::AtMe => {
                self.advance();
                Ok(Value::Me)
            }
            Tok::Empty => {
                self.advance();
                Ok(Value::Empty)
            }
            Tok::Null => {
                self.advance();
                Ok(Value::Null)
            }
            _ => return None,
        })
    }

    fn argument(&mut self) -> Result<Value> {
        if self.check(Tok::Ident) {
            let mut v = self.advance().value;
            while self.matches(Tok::Dot) {
                if !self.check(Tok::Ident) {
                    break;
                }
                v = format!("{v}.{}", self.advance().value);
            }
            return Ok(Value::Str(v));
        }
        self.scalar().unwrap_or_else(|| {
            Err(parse_error(
                self.current(),
                "invalid function argument",
                Some("identifier, string, number, or special value"),
            ))
        })
    }

    fn value(&mut self) -> Result<Value> {
        if self.check(Tok::Ident) {
            return Ok(Value::Str(self.advance().value));
        }
        if self.check(Tok::LParen) {
            self.advance();
            let mut values = Vec::new();
            if self.matches(Tok::RParen) {
                return Ok(Value::List(values));
            }
            loop {
                values.push(self.value()?);
                if !self.matches(Tok::Comma) {
                    break;
                }
            }
            if !self.matches(Tok::RParen) {
                return Err(parse_error(
                    self.current(),
                    "missing closing parenthesis in list",
                    Some(")"),
                ));
            }
            return Ok(Value::List(values));
        }
        self.scalar().unwrap_or_else(|| {
            Err(parse_error(
                self.current(),
                "expected value",
                Some("identifier, string, number, date, or special value"),
            ))
        })
    }
}

/// A relative date: `today` and its kin, a signed offset, or a number with a unit.
pub(crate) fn is_relative(s: &str) -> bool {
    if matches!(
        s,
        "today" | "yesterday" | "this_week" | "last_week" | "this_month" | "last_month"
    ) {
        return true;
    }
    (s.len() >= 2 && (s.starts_with('-') || s.starts_with('+')))
        || (s.len() >= 2 && s.ends_with(['d', 'w', 'm', 'h']))
}

/// Parses and validates a TDQ query as td does; the error messages are td's.
pub fn parse(input: &str) -> Result<Query> {
    let input = input.trim();
    if input.chars().count() > MAX_QUERY_CHARS {
        return Err(invalid(format!(
            "query is longer than {MAX_QUERY_CHARS} characters"
        )));
    }
    if input.is_empty() {
        return Ok(Query {
            root: None,
            sort: None,
        });
    }
    let mut sort = None;
    let mut tokens = Vec::new();
    for t in tokenize(input)? {
        if t.kind != Tok::Sort {
            tokens.push(t);
            continue;
        }
        if sort.is_some() {
            return Err(parse_error(&t, "multiple sort clauses not allowed", None));
        }
        let descending = t.value.starts_with('-');
        let name = t.value.trim_start_matches('-');
        let column = SORT_FIELDS
            .iter()
            .find(|(f, _)| *f == name)
            .map_or(name, |(_, c)| c)
            .to_string();
        sort = Some(Sort { column, descending });
    }
    let mut p = Parser {
        tokens,
        pos: 0,
        depth: 0,
        terms: 0,
    };
    if p.at_end() {
        return Ok(Query { root: None, sort });
    }
    let mut root = p.or()?;
    if !p.at_end() {
        return Err(parse_error(
            p.current(),
            "unexpected token after expression",
            None,
        ));
    }
    validate(&mut root)?;
    Ok(Query {
        root: Some(root),
        sort,
    })
}

/// td's `normalizeEnumValue`: the canonical spelling of an enum value, if it is one.
pub(crate) fn normalize_enum(field: &str, v: &str) -> Option<String> {
    let lower = v.to_lowercase();
    let found = match field {
        "status" => {
            let s = lower.replace('-', "_");
            let s = if s == "review" {
                "in_review".to_string()
            } else {
                s
            };
            ["open", "in_progress", "blocked", "in_review", "closed"]
                .contains(&s.as_str())
                .then_some(s)
        }
        "type" => {
            let t = if lower == "story" {
                "feature".to_string()
            } else {
                lower
            };
            ["bug", "feature", "task", "epic", "chore"]
                .contains(&t.as_str())
                .then_some(t)
        }
        "priority" => match lower.as_str() {
            "0" | "p0" | "critical" | "highest" => Some("P0".into()),
            "1" | "p1" | "high" => Some("P1".into()),
            "2" | "p2" | "medium" | "normal" | "default" => Some("P2".into()),
            "3" | "p3" | "low" => Some("P3".into()),
            "4" | "p4" | "lowest" | "none" => Some("P4".into()),
            _ => None,
        },
        "log.type" => [
            "progress",
            "blocker",
            "decision",
            "hypothesis",
            "tried",
            "result",
            "orchestration",
            "security",
        ]
        .contains(&lower.as_str())
        .then_some(lower),
        "file.role" => ["implementation", "test", "reference", "config"]
            .contains(&lower.as_str())
            .then_some(lower),
        _ => None,
    };
    found
}

fn enum_values(field: &str) -> Option<&'static str> {
    Some(match field {
        "status" => "open, in_progress, blocked, in_review, closed",
        "type" => "bug, feature, task, epic, chore",
        "priority" => "P0, P1, P2, P3, P4",
        "log.type" => "progress, blocker, decision, hypothesis, tried, result, orchestration",
        "file.role" => "implementation, test, reference, config",
        _ => return None,
    })
}

/// The kind of a field as written (`status`, `log.message`), or td's message for an unknown
/// one.
pub(crate) fn field_kind(field: &str) -> Result<(Kind, bool)> {
    let unknown = || invalid(format!("validation error: unknown field: {field}"));
    match field.split_once('.') {
        None => FIELDS
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, k)| (*k, false))
            .ok_or_else(unknown),
        Some(("note", _)) => Err(invalid(format!(
            "validation error: {field}: note fields query notes ('td note list -s <text>'), not issues"
        ))),
        Some((prefix, sub)) => {
            let (_, subs) = CROSS_FIELDS
                .iter()
                .find(|(p, _)| *p == prefix)
                .ok_or_else(unknown)?;
            subs.iter()
                .find(|(f, _)| *f == sub)
                .map(|(_, k)| (*k, true))
                .ok_or_else(unknown)
        }
    }
}

fn validate(n: &mut Node) -> Result<()> {
    match n {
        Node::And(a, b) | Node::Or(a, b) => {
            validate(a)?;
            validate(b)
        }
        Node::Not(x) => validate(x),
        Node::Text(_) => Ok(()),
        Node::Field { field, op, value } => {
            let (kind, cross) = field_kind(field)?;
            if cross && op.ordering() {
                return Err(invalid(format!(
                    "validation error: operator {} is not supported on {field} (supported: =, !=, ~, !~)",
                    op.as_str()
                )));
            }
            if kind == Kind::Date {
                validate_date(field, *op, value)?;
            }
            if let (Some(values), Value::Str(s)) = (enum_values(field), &*value) {
                match normalize_enum(field, s) {
                    Some(v) => *value = Value::Str(v),
                    None => {
                        return Err(invalid(format!(
                            "validation error: invalid value for {field}: {s:?} (expected one of: {values})"
                        )))
                    }
                }
            }
            Ok(())
        }
        Node::Func { name, args } => {
            let Some((_, min, max, _)) = FUNCTIONS.iter().find(|(f, ..)| f == name) else {
                return Err(invalid(format!(
                    "validation error: unknown function: {name}"
                )));
            };
            if args.len() < *min {
                return Err(invalid(format!(
                    "validation error: function {name} requires at least {min} argument(s), got {}",
                    args.len()
                )));
            }
            if let Some(max) = max.filter(|m| args.len() > *m) {
                return Err(invalid(format!(
                    "validation error: function {name} accepts at most {max} argument(s), got {}",
                    args.len()
                )));
            }
            match name.as_str() {
                "is" => {
                    if let Some(Value::Str(s)) = args.first() {
                        if let Some(v) = normalize_enum("status", s) {
                            args[0] = Value::Str(v);
                        }
                    }
                }
                "any" | "all" | "none" => {
                    let field = args[0].to_string();
                    if enum_values(&field).is_some() {
                        for a in args.iter_mut().skip(1) {
                            if let Value::Str(s) = a {
                                if let Some(v) = normalize_enum(&field, s) {
                                    *a = Value::Str(v);
                                }
                            }
                        }
                    }
                }
                _ => {}
            }
            Ok(())
        }
    }
}

fn validate_date(field: &str, op: Op, value: &Value) -> Result<()> {
    if matches!(value, Value::Empty | Value::Null) {
        return Ok(());
    }
    if matches!(op, Op::Contains | Op::NotContains) {
        return Err(invalid(format!(
            "validation error: operator {} is not supported on date field {field} (use =, !=, <, <=, > or >=)",
            op.as_str()
        )));
    }
    let raw = match value {
        Value::Date { raw, .. } | Value::Str(raw) => raw.clone(),
        other => {
            return Err(invalid(format!(
                "validation error: {field} is a date field: expected a date like 2026-05-09, today or -7d, got {other}"
            )))
        }
    };
    if is_relative(&raw) {
        let keyword = matches!(
            raw.to_lowercase().as_str(),
            "today" | "yesterday" | "this_week" | "last_week" | "this_month" | "last_month"
        );
        let body = raw.trim_start_matches(['-', '+']);
        let offset = body.len() >= 2
            && body[..body.len() - 1].chars().all(|c| c.is_ascii_digit())
            && body.ends_with(['d', 'w', 'm', 'h']);
        if keyword || offset {
            return Ok(());
        }
        return Err(invalid(format!(
            "validation error: {field}: {raw:?} is not a valid relative date (expected today, yesterday, this_week, last_week, this_month, last_month, or an offset like -7d/+3w/-1m/-12h)"
        )));
    }
    if super::eval::parse_date_literal(&raw).is_none() {
        return Err(invalid(format!(
            "validation error: {field} is a date field: expected a date like 2026-05-09, today or -7d, got {raw:?}"
        )));
    }
    Ok(())
}
