//! The list `filter` language of Secret Manager (Google's AIP-160 subset the service documents):
//! restrictions `field op value` with `:` (has / substring, `*` for presence), `=`, `!=`, `<`,
//! `<=`, `>`, `>=`; `*` wildcards inside values; `NOT` / `-`; `OR` binding tighter than `AND`;
//! implicit `AND` between terms; parentheses; double-quoted values.

use std::collections::BTreeMap;

use jiff::Timestamp;

/// The fields a filter may name, for one listed object.
#[derive(Debug, Default)]
pub(crate) struct Fields<'a> {
    /// The short name (secret id or version number).
    pub(crate) short_name: &'a str,
    /// The full resource name.
    pub(crate) full_name: String,
    pub(crate) labels: Option<&'a BTreeMap<String, String>>,
    pub(crate) state: Option<&'static str>,
    pub(crate) create_time: Option<Timestamp>,
    pub(crate) automatic_replication: Option<bool>,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Open,
    Close,
    Word(String),
    Quoted(String),
    Op(&'static str),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    Restriction {
        field: String,
        op: &'static str,
        value: String,
    },
}

const OPS: [&str; 7] = ["<=", ">=", "!=", ":", "=", "<", ">"];

fn tokenize(input: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let chars: Vec<char> = input.chars().collect();
    let mut i = 0;
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut Vec<Token>| {
        if !word.is_empty() {
            out.push(Token::Word(std::mem::take(word)));
        }
    };
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            flush(&mut word, &mut out);
            i += 1;
            continue;
        }
        if c == '(' || c == ')' {
            flush(&mut word, &mut out);
            out.push(if c == '(' { Token::Open } else { Token::Close });
            i += 1;
            continue;
        }
        if c == '"' {
            flush(&mut word, &mut out);
            let mut s = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err("unterminated quoted string".to_owned()),
                    Some('"') => break,
                    Some('\\') => {
                        if let Some(n) = chars.get(i + 1) {
                            s.push(*n);
                        }
                        i += 2;
                        continue;
                    }
                    Some(ch) => s.push(*ch),
                }
                i += 1;
            }
            out.push(Token::Quoted(s));
            i += 1;
            continue;
        }
        if let Some(op) = OPS.iter().find(|op| {
            let op_chars: Vec<char> = op.chars().collect();
            chars[i..].starts_with(&op_chars)
        }) {
            flush(&mut word, &mut out);
            out.push(Token::Op(op));
            i += op.len();
            continue;
        }
        word.push(c);
        i += 1;
    }
    flush(&mut word, &mut out);
    Ok(out)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn is_keyword(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w == kw)
    }

    fn and_expr(&mut self) -> Result<Expr, String> {
        let mut items = vec![self.or_expr()?];
        loop {
            match self.peek() {
                None | Some(Token::Close) => break,
                _ if self.is_keyword("AND") => {
                    self.pos += 1;
                    items.push(self.or_expr()?);
                }
                _ => items.push(self.or_expr()?),
            }
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Expr::And(items)
        })
    }

    fn or_expr(&mut self) -> Result<Expr, String> {
        let mut items = vec![self.unary()?];
        while self.is_keyword("OR") {
            self.pos += 1;
            items.push(self.unary()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Expr::Or(items)
        })
    }

    fn unary(&mut self) -> Result<Expr, String> {
        if self.is_keyword("NOT") {
            self.pos += 1;
            return Ok(Expr::Not(Box::new(self.primary()?)));
        }
        if let Some(Token::Word(w)) = self.peek()
            && let Some(rest) = w.strip_prefix('-')
            && !rest.is_empty()
        {
            let rest = rest.to_owned();
            self.tokens[self.pos] = Token::Word(rest);
            return Ok(Expr::Not(Box::new(self.primary()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, String> {
        match self.next() {
            Some(Token::Open) => {
                let e = self.and_expr()?;
                match self.next() {
                    Some(Token::Close) => Ok(e),
                    _ => Err("unbalanced parentheses".to_owned()),
                }
            }
            Some(Token::Word(field)) => {
                let Some(Token::Op(op)) = self.next() else {
                    return Err(format!(
                        "expected an operator after {field:?}; bare values are not supported"
                    ));
                };
                let value = match self.next() {
                    Some(Token::Word(v) | Token::Quoted(v)) => v,
                    _ => return Err(format!("expected a value after {field}{op}")),
                };
                Ok(Expr::Restriction { field, op, value })
            }
            other => Err(format!("unexpected {other:?}")),
        }
    }
}

/// Parses a filter. An empty filter is `None` (everything matches).
pub(crate) fn parse(filter: &str) -> Result<Option<Expr>, String> {
    let tokens = tokenize(filter)?;
    if tokens.is_empty() {
        return Ok(None);
    }
    let mut p = Parser { tokens, pos: 0 };
    let e = p.and_expr()?;
    if p.pos < p.tokens.len() {
        return Err("unbalanced parentheses".to_owned());
    }
    Ok(Some(e))
}

/// Glob match with `*` (any run of characters).
fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let mut rest = text;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(part) else {
                return false;
            };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else if let Some(idx) = rest.find(part) {
            rest = &rest[idx + part.len()..];
        } else {
            return false;
        }
    }
    true
}

fn compare_text(op: &str, actual: &str, wanted: &str) -> bool {
    match op {
        ":" => {
            if wanted == "*" {
                !actual.is_empty()
            } else if wanted.contains('*') {
                glob(&format!("*{wanted}*"), actual)
            } else {
                actual.contains(wanted)
            }
        }
        "=" => glob(wanted, actual),
        "!=" => !glob(wanted, actual),
        "<" => actual < wanted,
        "<=" => actual <= wanted,
        ">" => actual > wanted,
        ">=" => actual >= wanted,
        _ => false,
    }
}

/// Whether `fields` satisfy `expr`. Unknown fields are errors (the service answers 400).
pub(crate) fn matches(expr: &Expr, fields: &Fields<'_>) -> Result<bool, String> {
    match expr {
        Expr::And(items) => {
            for e in items {
                if !matches(e, fields)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        Expr::Or(items) => {
            for e in items {
                if matches(e, fields)? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        Expr::Not(e) => Ok(!matches(e, fields)?),
        Expr::Restriction { field, op, value } => restriction(field, op, value, fields),
    }
}

fn restriction(field: &str, op: &str, value: &str, f: &Fields<'_>) -> Result<bool, String> {
    if field == "name" {
        return Ok(match op {
            ":" => compare_text(op, &f.full_name, value) || compare_text(op, f.short_name, value),
            _ => compare_text(op, f.short_name, value) || compare_text(op, &f.full_name, value),
        });
    }
    if let Some(labels) = f.labels {
        if field == "labels" {
            return match op {
                ":" => Ok(value == "*" && !labels.is_empty() || labels.contains_key(value)),
                _ => Err(format!("operator {op} is not supported on labels")),
            };
        }
        if let Some(key) = field.strip_prefix("labels.") {
            return Ok(match labels.get(key) {
                Some(actual) => compare_text(op, actual, value),
                None => op == "!=",
            });
        }
    }
    if field == "state"
        && let Some(state) = f.state
    {
        return match op {
            ":" | "=" => Ok(state.eq_ignore_ascii_case(value)),
            "!=" => Ok(!state.eq_ignore_ascii_case(value)),
            _ => Err(format!("operator {op} is not supported on state")),
        };
    }
    if field == "create_time"
        && let Some(created) = f.create_time
    {
        let wanted: Timestamp = value
            .parse()
            .map_err(|_| format!("invalid timestamp {value:?}"))?;
        return Ok(match op {
            "<" => created < wanted,
            "<=" => created <= wanted,
            ">" => created > wanted,
            ">=" => created >= wanted,
            "=" | ":" => created == wanted,
            "!=" => created != wanted,
            _ => false,
        });
    }
    if let Some(auto) = f.automatic_replication {
        match field {
            "replication.automatic" if op == ":" && value == "*" => return Ok(auto),
            "replication.user_managed" | "replication.userManaged" if op == ":" && value == "*" => {
                return Ok(!auto);
            }
            _ => {}
        }
    }
    Err(format!("field {field:?} is not supported in filter"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields<'a>(id: &'a str, labels: &'a BTreeMap<String, String>) -> Fields<'a> {
        Fields {
            short_name: id,
            full_name: format!("projects/1/secrets/{id}"),
            labels: Some(labels),
            automatic_replication: Some(true),
            ..Fields::default()
        }
    }

    fn check(filter: &str, id: &str, labels: &[(&str, &str)]) -> Result<bool, String> {
        let labels: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let e = parse(filter)?.ok_or("empty")?;
        matches(&e, &fields(id, &labels))
    }

    #[test]
    fn labels_and_names() {
        assert_eq!(check("labels.env=prod", "a", &[("env", "prod")]), Ok(true));
        assert_eq!(check("labels.env=prod", "a", &[("env", "dev")]), Ok(false));
        assert_eq!(check("labels.env=prod", "a", &[]), Ok(false));
        assert_eq!(
            check("labels.env=prod labels.team=a", "a", &[("env", "prod")]),
            Ok(false)
        );
        assert_eq!(
            check(
                "labels.env=prod AND labels.team=a",
                "a",
                &[("env", "prod"), ("team", "a")]
            ),
            Ok(true)
        );
        assert_eq!(check("labels.env:*", "a", &[("env", "x")]), Ok(true));
        assert_eq!(check("labels:env", "a", &[("env", "x")]), Ok(true));
        assert_eq!(check("name:db", "app-db-pass", &[]), Ok(true));
        assert_eq!(
            check("name:APIKEY*prod", "x-APIKEY-1-prod-y", &[]),
            Ok(true)
        );
        assert_eq!(
            check("name:asecret OR name:bsecret", "bsecret", &[]),
            Ok(true)
        );
        assert_eq!(check("NOT name:db", "db", &[]), Ok(false));
        assert_eq!(check("-name:db", "x", &[]), Ok(true));
        assert_eq!(
            check(
                "(name:a OR name:b) labels.env = \"prod\"",
                "b",
                &[("env", "prod")]
            ),
            Ok(true)
        );
        assert_eq!(check("replication.automatic:*", "b", &[]), Ok(true));
    }

    #[test]
    fn unknown_fields_and_bad_syntax_are_errors() {
        assert!(check("color=red", "a", &[]).is_err());
        assert!(check("(name:a", "a", &[]).is_err());
        assert!(check("name", "a", &[]).is_err());
        assert!(parse("").unwrap().is_none());
    }
}
