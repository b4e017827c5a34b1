//! TDQ's tokens, scanned as td scans them (`internal/query/lexer.go`), with positions for
//! error messages (line and column, 1-based, counted in characters).

use crate::error::{invalid, Result};

/// Token kinds; names as td prints them in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tok {
    Eof,
    Ident,
    Str,
    Number,
    Date,
    Eq,
    Neq,
    Lt,
    Gt,
    Lte,
    Gte,
    Contains,
    NotContains,
    And,
    Or,
    Not,
    LParen,
    RParen,
    Comma,
    Dot,
    AtMe,
    Empty,
    Null,
    Sort,
}

impl Tok {
    fn name(self) -> &'static str {
        match self {
            Tok::Eof => "EOF",
            Tok::Ident => "IDENT",
            Tok::Str => "STRING",
            Tok::Number => "NUMBER",
            Tok::Date => "DATE",
            Tok::Eq => "=",
            Tok::Neq => "!=",
            Tok::Lt => "<",
            Tok::Gt => ">",
            Tok::Lte => "<=",
            Tok::Gte => ">=",
            Tok::Contains => "~",
            Tok::NotContains => "!~",
            Tok::And => "AND",
            Tok::Or => "OR",
            Tok::Not => "NOT",
            Tok::LParen => "(",
            Tok::RParen => ")",
            Tok::Comma => ",",
            Tok::Dot => ".",
            Tok::AtMe => "@me",
            Tok::Empty => "EMPTY",
            Tok::Null => "NULL",
            Tok::Sort => "SORT",
        }
    }
}

/// A token with its text and where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    pub(crate) kind: Tok,
    pub(crate) value: String,
    pub(crate) line: usize,
    pub(crate) column: usize,
}

impl std::fmt::Display for Token {
    /// td's `Token.String()`: `IDENT("status")`, or the bare kind without a value.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.value.is_empty() {
            write!(f, "{}", self.kind.name())
        } else {
            write!(f, "{}({:?})", self.kind.name(), self.value)
        }
    }
}

fn ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn ident_char(c: char) -> bool {
    ident_start(c) || c.is_ascii_digit() || c == '-'
}

const SORT_FIELD_NAMES: &str =
    "created, updated, closed, deleted, priority, id, title, status, points";

struct Lexer {
    chars: Vec<char>,
    pos: usize,
    line: usize,
    column: usize,
}

impl Lexer {
    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.pos + ahead).copied()
    }

    fn advance(&mut self) {
        if let Some(c) = self.peek(0) {
            if c == '\n' {
                self.line += 1;
                self.column = 1;
            } else {
                self.column += 1;
            }
            self.pos += 1;
        }
    }

    fn token(&self, kind: Tok, value: impl Into<String>, at: (usize, usize)) -> Token {
        Token {
            kind,
            value: value.into(),
            line: at.0,
            column: at.1,
        }
    }

    fn error(&self, msg: impl std::fmt::Display, at: (usize, usize)) -> crate::error::EngineError {
        invalid(format!(
            "lexer error at line {}, column {}: {msg}",
            at.0, at.1
        ))
    }

    fn next(&mut self) -> Result<Token> {
        while self.peek(0).is_some_and(char::is_whitespace) {
            self.advance();
        }
        // `\!`, `\<`… (a shell's escaping) mean the operator itself.
        if self.peek(0) == Some('\\') && matches!(self.peek(1), Some('!' | '<' | '>' | '=' | '~')) {
            self.advance();
        }
        let at = (self.line, self.column);
        let Some(c) = self.peek(0) else {
            return Ok(self.token(Tok::Eof, "", at));
        };
        let single = match c {
            '(' => Some(Tok::LParen),
            ')' => Some(Tok::RParen),
            ',' => Some(Tok::Comma),
            '.' => Some(Tok::Dot),
            '~' => Some(Tok::Contains),
            '=' => Some(Tok::Eq),
            _ => None,
        };
        if let Some(kind) = single {
            self.advance();
            return Ok(self.token(kind, c.to_string(), at));
        }
        let two: String = [Some(c), self.peek(1)].iter().flatten().collect();
        let pair = match two.as_str() {
            "!=" => Some(Tok::Neq),
            "!~" => Some(Tok::NotContains),
            "<=" => Some(Tok::Lte),
            ">=" => Some(Tok::Gte),
            "&&" => Some(Tok::And),
            "||" => Some(Tok::Or),
            _ => None,
        };
        if let Some(kind) = pair {
            self.advance();
            self.advance();
            return Ok(self.token(kind, two, at));
        }
        let after = match c {
            '<' => Some(Tok::Lt),
            '>' => Some(Tok::Gt),
            '!' => Some(Tok::Not),
            ':' => Some(Tok::Eq),
            _ => None,
        };
        if let Some(kind) = after {
            self.advance();
            return Ok(self.token(kind, c.to_string(), at));
        }
        match c {
            '"' | '\'' => self.string(c, at),
            '@' => self.at_value(at),
            '-' if self.peek(1).is_some_and(|n| n.is_ascii_digit()) => self.relative('-', at),
            '-' => {
                self.advance();
                Ok(self.token(Tok::Not, "-", at))
            }
            '+' => self.relative('+', at),
            c if c.is_ascii_digit() => Ok(self.number_or_date(at)),
            c if ident_start(c) => self.ident(at),
            c => {
                self.advance();
                Err(self.error(format!("unexpected character: {c:?}"), at))
            }
        }
    }

    fn string(&mut self, quote: char, at: (usize, usize)) -> Result<Token> {
        self.advance();
        let mut s = String::new();
        while let Some(c) = self.peek(0) {
            if c == quote {
                self.advance();
                return Ok(self.token(Tok::Str, s, at));
            }
            if c == '\\' && self.peek(1).is_some() {
                self.advance();
                let e = self.peek(0).unwrap_or('\\');
                s.push(match e {
                    'n' => '\n',
                    't' => '\t',
                    other => other,
                });
                self.advance();
                continue;
            }
            s.push(c);
            self.advance();
        }
        Err(self.error("unterminated string", at))
    }

    fn at_value(&mut self, at: (usize, usize)) -> Result<Token> {
        self.advance();
        let mut v = String::from("@");
        while let Some(c) = self.peek(0).filter(|c| ident_char(*c)) {
            v.push(c);
            self.advance();
        }
        if v == "@me" {
            return Ok(self.token(Tok::AtMe, v, at));
        }
        Err(self.error(format!("unknown special value: {v}"), at))
    }

    fn relative(&mut self, sign: char, at: (usize, usize)) -> Result<Token> {
        self.advance();
        let mut v = sign.to_string();
        while let Some(c) = self.peek(0).filter(char::is_ascii_digit) {
            v.push(c);
            self.advance();
        }
        if let Some(u) = self.peek(0).filter(|u| matches!(u, 'd' | 'w' | 'm' | 'h')) {
            v.push(u);
            self.advance();
            return Ok(self.token(Tok::Date, v, at));
        }
        if sign == '+' {
            return Err(self.error(
                format!("invalid relative date: {v} (expected d, w, m, or h suffix)"),
                at,
            ));
        }
        Ok(self.token(Tok::Number, v, at))
    }

    fn number_or_date(&mut self, at: (usize, usize)) -> Token {
        let mut v = String::new();
        while let Some(c) = self.peek(0).filter(|c| c.is_ascii_digit() || *c == '-') {
            v.push(c);
            self.advance();
        }
        let b = v.as_bytes();
        if b.len() == 10 && b[4] == b'-' && b[7] == b'-' {
            return self.token(Tok::Date, v, at);
        }
        if let Some(u) = self.peek(0).filter(|u| matches!(u, 'd' | 'w' | 'm' | 'h')) {
            v.push(u);
            self.advance();
            return self.token(Tok::Date, v, at);
        }
        self.token(Tok::Number, v, at)
    }

    fn ident(&mut self, at: (usize, usize)) -> Result<Token> {
        let mut v = String::new();
        while let Some(c) = self.peek(0).filter(|c| ident_char(*c)) {
            v.push(c);
            self.advance();
        }
        if v.eq_ignore_ascii_case("sort") && self.peek(0) == Some(':') {
            return self.sort(at);
        }
        let kind = match v.to_ascii_uppercase().as_str() {
            "AND" => Some(Tok::And),
            "OR" => Some(Tok::Or),
            "NOT" => Some(Tok::Not),
            "EMPTY" => Some(Tok::Empty),
            "NULL" => Some(Tok::Null),
            _ => None,
        };
        if let Some(kind) = kind {
            return Ok(self.token(kind, v, at));
        }
        let lower = v.to_ascii_lowercase();
        if matches!(
            lower.as_str(),
            "today" | "yesterday" | "this_week" | "last_week" | "this_month" | "last_month"
        ) {
            return Ok(self.token(Tok::Date, lower, at));
        }
        Ok(self.token(Tok::Ident, v, at))
    }

    fn sort(&mut self, at: (usize, usize)) -> Result<Token> {
        self.advance(); // ':'
        let mut v = String::new();
        if self.peek(0) == Some('-') {
            v.push('-');
            self.advance();
        }
        if !self.peek(0).is_some_and(ident_start) {
            return Err(self.error("sort: requires a field name", at));
        }
        while let Some(c) = self.peek(0).filter(|c| ident_char(*c)) {
            v.push(c);
            self.advance();
        }
        let name = v.trim_start_matches('-');
        if !super::SORT_FIELDS.iter().any(|(f, _)| *f == name) {
            return Err(self.error(
                format!("invalid sort field: {name} (valid: {SORT_FIELD_NAMES})"),
                at,
            ));
        }
        Ok(self.token(Tok::Sort, v, at))
    }
}

/// Every token of `input`, ending with `Eof`; the first lexical error stops it.
pub(crate) fn tokenize(input: &str) -> Result<Vec<Token>> {
    let mut l = Lexer {
        chars: input.chars().collect(),
        pos: 0,
        line: 1,
        column: 1,
    };
    let mut out = Vec::new();
    loop {
        let t = l.next()?;
        let end = t.kind == Tok::Eof;
        out.push(t);
        if end {
            return Ok(out);
        }
    }
}
