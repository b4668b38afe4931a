//! Lexer and parser for Go's `text/template` syntax, with Go's parse-time checks: undefined
//! functions, undeclared variables, `break`/`continue` outside `range`, malformed pipelines.

use std::collections::HashMap;
use std::sync::Arc;

use crate::value::Value;

/// One parse-tree node of a template body.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    Text(Arc<[u8]>),
    Action(Pipe),
    If {
        pipe: Pipe,
        list: Vec<Node>,
        else_list: Option<Vec<Node>>,
    },
    With {
        pipe: Pipe,
        list: Vec<Node>,
        else_list: Option<Vec<Node>>,
    },
    Range {
        pipe: Pipe,
        list: Vec<Node>,
        else_list: Option<Vec<Node>>,
    },
    Template {
        pos: usize,
        name: String,
        pipe: Option<Pipe>,
    },
    Break,
    Continue,
}

/// A pipeline: optional variable declarations and `|`-separated commands.
#[derive(Debug, Clone)]
pub(crate) struct Pipe {
    pub(crate) pos: usize,
    pub(crate) is_assign: bool,
    pub(crate) decl: Vec<String>,
    pub(crate) cmds: Vec<Command>,
}

/// One command: a function or a value with arguments.
#[derive(Debug, Clone)]
pub(crate) struct Command {
    pub(crate) pos: usize,
    pub(crate) text: String,
    pub(crate) args: Vec<Arg>,
}

/// An operand.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Dot,
    Nil,
    Bool(bool),
    /// A number constant: its Go kinds (int if it is an integer, always a float), and text.
    Number {
        int: Option<i64>,
        float: Option<f64>,
        text: String,
    },
    Str(Arc<[u8]>),
    /// `.a.b`
    Field(Vec<String>),
    /// `$x.a.b` (`$` alone is the root).
    Variable(String, Vec<String>),
    /// A function name.
    Ident(String),
    /// `(pipeline)` with an optional `.field` chain.
    Pipe(Box<Pipe>, Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Text(Vec<u8>),
    Left,
    Right,
    Space,
    Ident(String),
    Field(String),
    Variable(String),
    Dot,
    Str(Vec<u8>),
    Char(i64),
    Number(String),
    Bool(bool),
    Nil,
    Pipe,
    LParen,
    RParen,
    Assign,
    Declare,
    Comma,
    Kw(&'static str),
    Eof,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    pos: usize,
}

/// A parse failure: byte offset and message.
#[derive(Debug)]
pub(crate) struct ParseErr {
    pub(crate) pos: usize,
    pub(crate) msg: String,
}

fn perr<T>(pos: usize, msg: impl Into<String>) -> Result<T, ParseErr> {
    Err(ParseErr {
        pos,
        msg: msg.into(),
    })
}

const KEYWORDS: &[&str] = &[
    "block", "break", "continue", "define", "else", "end", "if", "range", "nil", "template", "with",
];

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_alnum(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

struct Lexer<'a> {
    src: &'a str,
    b: &'a [u8],
    left: &'a str,
    right: &'a str,
    pos: usize,
    out: Vec<Token>,
    paren_depth: usize,
}

impl<'a> Lexer<'a> {
    fn run(src: &'a str, left: &'a str, right: &'a str) -> Result<Vec<Token>, ParseErr> {
        let mut l = Lexer {
            src,
            b: src.as_bytes(),
            left,
            right,
            pos: 0,
            out: Vec::new(),
            paren_depth: 0,
        };
        l.lex_text()?;
        Ok(l.out)
    }

    fn emit(&mut self, tok: Tok, pos: usize) {
        self.out.push(Token { tok, pos });
    }

    fn lex_text(&mut self) -> Result<(), ParseErr> {
        let mut trim_next = false;
        loop {
            let rest = &self.src[self.pos..];
            let (text_end, found) = match rest.find(self.left) {
                Some(i) => (self.pos + i, true),
                None => (self.b.len(), false),
            };
            let mut text = &self.b[self.pos..text_end];
            if trim_next {
                let skip = text.iter().take_while(|c| is_space(**c)).count();
                text = &text[skip..];
            }
            let after_left = text_end + self.left.len();
            let left_trim = found
                && self.b.len() >= after_left + 2
                && self.b[after_left] == b'-'
                && is_space(self.b[after_left + 1]);
            if left_trim {
                let keep = text.len() - text.iter().rev().take_while(|c| is_space(**c)).count();
                text = &text[..keep];
            }
            if !text.is_empty() {
                let start = text_end - text.len();
                self.emit(Tok::Text(text.to_vec()), start);
            }
            if !found {
                self.emit(Tok::Eof, self.b.len());
                return Ok(());
            }
            self.pos = after_left;
            if left_trim {
                self.pos += 2;
            }
            // comment?
            if self.src[self.pos..].starts_with("/*") {
                let start = self.pos;
                let Some(end) = self.src[self.pos + 2..].find("*/") else {
                    return perr(start, "unclosed comment");
                };
                self.pos = self.pos + 2 + end + 2;
                let (ok, trim) = self.at_right_delim();
                if !ok {
                    return perr(start, "comment ends before closing delimiter");
                }
                self.pos += self.right.len() + if trim { 2 } else { 0 };
                trim_next = trim;
                continue;
            }
            self.emit(Tok::Left, text_end);
            trim_next = self.lex_inside()?;
        }
    }

    /// Whether the input continues with the right delimiter (optionally preceded by " -").
    fn at_right_delim(&self) -> (bool, bool) {
        let rest = &self.src[self.pos..];
        if rest.len() >= 2
            && is_space(rest.as_bytes()[0])
            && rest.as_bytes()[1] == b'-'
            && rest[2..].starts_with(self.right)
        {
            return (true, true);
        }
        (rest.starts_with(self.right), false)
    }

    /// Lexes one action; returns whether the right delimiter had a trim marker.
    fn lex_inside(&mut self) -> Result<bool, ParseErr> {
        loop {
            let (at_right, trim) = self.at_right_delim();
            if at_right && self.paren_depth == 0 {
                let p = self.pos;
                self.pos += self.right.len() + if trim { 2 } else { 0 };
                self.emit(Tok::Right, p);
                return Ok(trim);
            }
            if at_right {
                return perr(self.pos, "unclosed left paren");
            }
            let start = self.pos;
            let Some(c) = self.src[self.pos..].chars().next() else {
                return perr(start, "unclosed action");
            };
            match c {
                ' ' | '\t' | '\r' | '\n' => {
                    while self.pos < self.b.len() && is_space(self.b[self.pos]) {
                        // a trim marker before the delimiter ends the spaces
                        let (r, _) = self.at_right_delim();
                        if r && self.b[self.pos + 1] == b'-' {
                            break;
                        }
                        self.pos += 1;
                    }
                    self.emit(Tok::Space, start);
                }
                '=' => {
                    self.pos += 1;
                    self.emit(Tok::Assign, start);
                }
                ':' => {
                    if self.b.get(self.pos + 1) != Some(&b'=') {
                        return perr(start, "expected :=");
                    }
                    self.pos += 2;
                    self.emit(Tok::Declare, start);
                }
                '|' => {
                    self.pos += 1;
                    self.emit(Tok::Pipe, start);
                }
                '"' => {
                    let s = self.lex_quote()?;
                    self.emit(Tok::Str(s), start);
                }
                '`' => {
                    let Some(end) = self.src[self.pos + 1..].find('`') else {
                        return perr(start, "unterminated raw quoted string");
                    };
                    let raw: Vec<u8> = self.b[self.pos + 1..self.pos + 1 + end]
                        .iter()
                        .copied()
                        .filter(|b| *b != b'\r')
                        .collect();
                    self.pos += end + 2;
                    self.emit(Tok::Str(raw), start);
                }
                '\'' => {
                    let v = self.lex_char()?;
                    self.emit(Tok::Char(v), start);
                }
                '$' => {
                    self.pos += 1;
                    let n = self.take_alnum();
                    let name = format!("${n}");
                    self.check_terminator()?;
                    self.emit(Tok::Variable(name), start);
                }
                '.' => {
                    let next = self.b.get(self.pos + 1).copied();
                    if next.is_some_and(|d| d.is_ascii_digit()) {
                        self.lex_number()?;
                    } else {
                        self.pos += 1;
                        let n = self.take_alnum();
                        if n.is_empty() {
                            self.check_terminator()?;
                            self.emit(Tok::Dot, start);
                        } else {
                            self.check_terminator()?;
                            self.emit(Tok::Field(n), start);
                        }
                    }
                }
                ',' => {
                    self.pos += 1;
                    self.emit(Tok::Comma, start);
                }
                '(' => {
                    self.pos += 1;
                    self.paren_depth += 1;
                    self.emit(Tok::LParen, start);
                }
                ')' => {
                    self.pos += 1;
                    if self.paren_depth == 0 {
                        return perr(start, "unexpected right paren");
                    }
                    self.paren_depth -= 1;
                    self.emit(Tok::RParen, start);
                }
                '+' | '-' | '0'..='9' => self.lex_number()?,
                c if is_alnum(c) => {
                    let w = self.take_alnum();
                    self.check_terminator()?;
                    let tok = match w.as_str() {
                        "true" => Tok::Bool(true),
                        "false" => Tok::Bool(false),
                        "nil" => Tok::Nil,
                        _ => match KEYWORDS.iter().find(|k| **k == w) {
                            Some(k) => Tok::Kw(k),
                            None => Tok::Ident(w),
                        },
                    };
                    self.emit(tok, start);
                }
                c => {
                    return perr(
                        start,
                        format!("unrecognized character in action: {}", go_rune(c)),
                    );
                }
            }
        }
    }

    fn take_alnum(&mut self) -> String {
        let start = self.pos;
        for c in self.src[self.pos..].chars() {
            if is_alnum(c) {
                self.pos += c.len_utf8();
            } else {
                break;
            }
        }
        self.src[start..self.pos].to_string()
    }

    fn check_terminator(&self) -> Result<(), ParseErr> {
        let rest = &self.src[self.pos..];
        let Some(c) = rest.chars().next() else {
            return Ok(());
        };
        if matches!(
            c,
            ' ' | '\t' | '\r' | '\n' | '.' | ',' | '|' | ':' | ')' | '(' | '='
        ) || rest.starts_with(self.right)
        {
            return Ok(());
        }
        perr(self.pos, format!("bad character {}", go_rune(c)))
    }

    fn lex_number(&mut self) -> Result<(), ParseErr> {
        let start = self.pos;
        let b = self.b;
        let mut i = self.pos;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        let mut digits: &[u8] = b"0123456789_";
        let mut exp: &[u8] = b"eE";
        if i + 1 < b.len() && b[i] == b'0' {
            match b[i + 1] {
                b'x' | b'X' => {
                    i += 2;
                    digits = b"0123456789abcdefABCDEF_";
                    exp = b"pP";
                }
                b'o' | b'O' => {
                    i += 2;
                    digits = b"01234567_";
                    exp = b"";
                }
                b'b' | b'B' => {
                    i += 2;
                    digits = b"01_";
                    exp = b"";
                }
                _ => {}
            }
        }
        while i < b.len() && digits.contains(&b[i]) {
            i += 1;
        }
        if i < b.len() && b[i] == b'.' {
            i += 1;
            while i < b.len() && digits.contains(&b[i]) {
                i += 1;
            }
        }
        if !exp.is_empty() && i < b.len() && exp.contains(&b[i]) {
            i += 1;
            if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
                i += 1;
            }
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
        }
        if i < b.len() && b[i] == b'i' {
            i += 1;
        }
        self.pos = i;
        let text = &self.src[start..i];
        if i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'.') {
            return perr(
                start,
                format!("bad number syntax: {:?}", &self.src[start..=i]),
            );
        }
        self.emit(Tok::Number(text.to_string()), start);
        Ok(())
    }

    fn lex_quote(&mut self) -> Result<Vec<u8>, ParseErr> {
        let start = self.pos;
        let mut i = self.pos + 1;
        let mut out = Vec::new();
        let b = self.b;
        loop {
            if i >= b.len() || b[i] == b'\n' {
                return perr(start, "unterminated quoted string");
            }
            match b[i] {
                b'"' => {
                    self.pos = i + 1;
                    return Ok(out);
                }
                b'\\' => {
                    i += 1;
                    let Some(&e) = b.get(i) else {
                        return perr(start, "unterminated quoted string");
                    };
                    i += 1;
                    match e {
                        b'a' => out.push(7),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'v' => out.push(11),
                        b'\\' => out.push(b'\\'),
                        b'"' => out.push(b'"'),
                        b'x' => {
                            let v = hex_val(b, i, 2).ok_or(ParseErr {
                                pos: start,
                                msg: "invalid syntax".into(),
                            })?;
                            out.push(v as u8);
                            i += 2;
                        }
                        b'0'..=b'7' => {
                            let mut v: u32 = u32::from(e - b'0');
                            for k in 0..2 {
                                match b.get(i + k) {
                                    Some(d @ b'0'..=b'7') => v = v * 8 + u32::from(d - b'0'),
                                    _ => return perr(start, "invalid syntax"),
                                }
                            }
                            if v > 255 {
                                return perr(start, "invalid syntax");
                            }
                            out.push(v as u8);
                            i += 2;
                        }
                        b'u' | b'U' => {
                            let n = if e == b'u' { 4 } else { 8 };
                            let v = hex_val(b, i, n).ok_or(ParseErr {
                                pos: start,
                                msg: "invalid syntax".into(),
                            })?;
                            let c = char::from_u32(v).ok_or(ParseErr {
                                pos: start,
                                msg: "invalid syntax".into(),
                            })?;
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                            i += n;
                        }
                        _ => return perr(start, "invalid syntax"),
                    }
                }
                c => {
                    out.push(c);
                    i += 1;
                }
            }
        }
    }

    fn lex_char(&mut self) -> Result<i64, ParseErr> {
        let start = self.pos;
        let rest = &self.src[self.pos + 1..];
        let Some(end) = rest.find('\'') else {
            return perr(start, "unterminated character constant");
        };
        // an escaped quote: '\''
        let (body, len) = if rest.starts_with("\\'") {
            ("\\'", 3)
        } else {
            (&rest[..end], end + 1)
        };
        self.pos += 1 + len;
        let mut chars = body.chars();
        let v = match (chars.next(), chars.next()) {
            (Some(c), None) if c != '\\' => c as i64,
            (Some('\\'), Some(e)) => match e {
                'a' => 7,
                'b' => 8,
                'f' => 12,
                'n' => 10,
                'r' => 13,
                't' => 9,
                'v' => 11,
                '\\' => 92,
                '\'' => 39,
                'x' | 'u' | 'U' => {
                    let h = &body[2..];
                    i64::from_str_radix(h, 16).map_err(|_| ParseErr {
                        pos: start,
                        msg: format!("malformed character constant: {body:?}"),
                    })?
                }
                _ => return perr(start, format!("malformed character constant: '{body}'")),
            },
            _ => return perr(start, format!("malformed character constant: '{body}'")),
        };
        Ok(v)
    }
}

fn hex_val(b: &[u8], i: usize, n: usize) -> Option<u32> {
    let s = std::str::from_utf8(b.get(i..i + n)?).ok()?;
    u32::from_str_radix(s, 16).ok()
}

fn go_rune(c: char) -> String {
    format!("U+{:04X} '{}'", c as u32, c)
}

/// Parses Go's number syntax into its int and float readings.
fn parse_number(text: &str) -> Option<(Option<i64>, Option<f64>)> {
    let clean: String = text.chars().filter(|c| *c != '_').collect();
    if clean.ends_with('i') {
        return None; // complex numbers have no use in secret templates
    }
    let (neg, body) = match clean.strip_prefix('-') {
        Some(r) => (true, r.to_string()),
        None => (false, clean.strip_prefix('+').unwrap_or(&clean).to_string()),
    };
    let lower = body.to_ascii_lowercase();
    let as_int = if let Some(h) = lower.strip_prefix("0x") {
        if h.contains('.') || h.contains('p') {
            None
        } else {
            i128::from_str_radix(h, 16).ok()
        }
    } else if let Some(o) = lower.strip_prefix("0o") {
        i128::from_str_radix(o, 8).ok()
    } else if let Some(bn) = lower.strip_prefix("0b") {
        i128::from_str_radix(bn, 2).ok()
    } else if lower.len() > 1 && lower.starts_with('0') && lower.bytes().all(|c| c.is_ascii_digit())
    {
        i128::from_str_radix(&lower[1..], 8).ok()
    } else if lower.bytes().all(|c| c.is_ascii_digit()) && !lower.is_empty() {
        lower.parse::<i128>().ok()
    } else {
        None
    };
    let as_int = as_int.map(|v| if neg { -v } else { v });
    let float = if lower.starts_with("0x") && !lower.contains('p') && as_int.is_none() {
        None
    } else if lower.starts_with("0x") {
        as_int.map(|v| v as f64)
    } else if lower.starts_with("0o") || lower.starts_with("0b") {
        as_int.map(|v| v as f64)
    } else {
        let t: f64 = body.parse().ok()?;
        Some(if neg { -t } else { t })
    };
    let float = match (float, as_int) {
        (None, Some(v)) => Some(v as f64),
        (f, _) => f,
    };
    // an integer-valued float constant such as 1e3 is also an integer in Go
    let int = match as_int {
        Some(v) => i64::try_from(v).ok(),
        None => float.and_then(|f| {
            if f.fract() == 0.0 && f.abs() < 9.2e18 {
                Some(f as i64)
            } else {
                None
            }
        }),
    };
    if int.is_none() && float.is_none() {
        return None;
    }
    Some((int, float))
}

/// The parsed set of templates from one text: the main body and every `define`/`block`.
#[derive(Debug, Clone)]
pub(crate) struct Tree {
    pub(crate) templates: HashMap<String, Arc<Vec<Node>>>,
}

struct Parser<'a> {
    toks: Vec<Token>,
    i: usize,
    src: &'a str,
    vars: Vec<String>,
    range_depth: usize,
    funcs: &'a dyn Fn(&str) -> bool,
    defs: HashMap<String, Arc<Vec<Node>>>,
    depth: usize,
}

/// Maximum nesting of control structures and parentheses while parsing.
const MAX_PARSE_DEPTH: usize = 200;

pub(crate) fn parse(
    name: &str,
    src: &str,
    left: &str,
    right: &str,
    funcs: &dyn Fn(&str) -> bool,
) -> Result<Tree, ParseErr> {
    let toks = Lexer::run(src, left, right)?;
    let mut p = Parser {
        toks,
        i: 0,
        src,
        vars: vec!["$".into()],
        range_depth: 0,
        funcs,
        defs: HashMap::new(),
        depth: 0,
    };
    let mut body = Vec::new();
    loop {
        match p.peek().tok.clone() {
            Tok::Eof => break,
            Tok::Left if matches!(p.peek_non_space_at(1), Some(Tok::Kw("define"))) => {
                p.next();
                p.next_non_space();
                p.parse_define()?;
            }
            _ => match p.text_or_action()? {
                Item::Node(n) => body.push(n),
                Item::End(pos) => return perr(pos, "unexpected {{end}}"),
                Item::Else(pos, _) => return perr(pos, "unexpected {{else}}"),
            },
        }
    }
    let mut templates = std::mem::take(&mut p.defs);
    let main_empty = is_empty_tree(&body);
    match templates.get(name) {
        Some(_) if main_empty => {}
        Some(_) => {
            return perr(
                0,
                format!("template: multiple definition of template {name:?}"),
            );
        }
        None => {
            templates.insert(name.to_string(), Arc::new(body));
        }
    }
    Ok(Tree { templates })
}

fn is_empty_tree(nodes: &[Node]) -> bool {
    nodes.iter().all(|n| match n {
        Node::Text(t) => t.iter().all(|c| is_space(*c)),
        _ => false,
    })
}

enum Item {
    Node(Node),
    End(usize),
    Else(usize, Option<&'static str>),
}

impl Parser<'_> {
    fn peek(&self) -> &Token {
        let i = self.i.min(self.toks.len() - 1);
        &self.toks[i]
    }

    fn next(&mut self) -> Token {
        let t = self.peek().clone();
        if self.i < self.toks.len() - 1 {
            self.i += 1;
        }
        t
    }

    fn peek_non_space(&mut self) -> Token {
        while self.peek().tok == Tok::Space {
            self.i += 1;
        }
        self.peek().clone()
    }

    fn next_non_space(&mut self) -> Token {
        self.peek_non_space();
        self.next()
    }

    fn peek_non_space_at(&self, offset: usize) -> Option<Tok> {
        let mut j = self.i + offset;
        while j < self.toks.len() && self.toks[j].tok == Tok::Space {
            j += 1;
        }
        self.toks.get(j).map(|t| t.tok.clone())
    }

    fn unexpected<T>(&self, t: &Token, ctx: &str) -> Result<T, ParseErr> {
        if t.tok == Tok::Eof {
            return perr(t.pos, format!("unexpected EOF in {ctx}"));
        }
        perr(t.pos, format!("unexpected {} in {ctx}", self.describe(t)))
    }

    fn describe(&self, t: &Token) -> String {
        match &t.tok {
            Tok::Right => "\"}}\"".into(),
            Tok::Left => "\"{{\"".into(),
            Tok::Kw(k) => format!("<{k}>"),
            Tok::Eof => "EOF".into(),
            _ => {
                let end = self
                    .toks
                    .iter()
                    .find(|x| x.pos > t.pos)
                    .map_or(self.src.len(), |x| x.pos);
                format!("{:?}", self.src.get(t.pos..end).unwrap_or(""))
            }
        }
    }

    fn expect_right(&mut self, ctx: &str) -> Result<(), ParseErr> {
        let t = self.next_non_space();
        if t.tok != Tok::Right {
            return self.unexpected(&t, ctx);
        }
        Ok(())
    }

    fn enter(&mut self, pos: usize) -> Result<(), ParseErr> {
        self.depth += 1;
        if self.depth > MAX_PARSE_DEPTH {
            return perr(
                pos,
                format!("template nesting deeper than {MAX_PARSE_DEPTH} levels"),
            );
        }
        Ok(())
    }

    fn parse_define(&mut self) -> Result<(), ParseErr> {
        let t = self.next_non_space();
        let Tok::Str(name) = t.tok else {
            return self.unexpected(&t, "define clause");
        };
        let name = String::from_utf8_lossy(&name).into_owned();
        self.expect_right("define clause")?;
        let saved = std::mem::replace(&mut self.vars, vec!["$".into()]);
        let saved_range = std::mem::replace(&mut self.range_depth, 0);
        let (list, end) = self.item_list()?;
        self.vars = saved;
        self.range_depth = saved_range;
        if let Item::Else(pos, _) = end {
            return perr(pos, "unexpected {{else}}");
        }
        self.add_def(name, list, t.pos)
    }

    fn add_def(&mut self, name: String, list: Vec<Node>, pos: usize) -> Result<(), ParseErr> {
        match self.defs.get(&name) {
            Some(existing) if !is_empty_tree(existing) && !is_empty_tree(&list) => perr(
                pos,
                format!("template: multiple definition of template {name:?}"),
            ),
            Some(_) if is_empty_tree(&list) => Ok(()),
            _ => {
                self.defs.insert(name, Arc::new(list));
                Ok(())
            }
        }
    }

    /// Parses nodes until `{{end}}` or `{{else}}`; returns them and which one ended the list.
    fn item_list(&mut self) -> Result<(Vec<Node>, Item), ParseErr> {
        let mut list = Vec::new();
        loop {
            if self.peek().tok == Tok::Eof {
                let t = self.peek().clone();
                return self.unexpected(&t, "input");
            }
            match self.text_or_action()? {
                Item::Node(n) => list.push(n),
                other => return Ok((list, other)),
            }
        }
    }

    fn text_or_action(&mut self) -> Result<Item, ParseErr> {
        let t = self.next();
        match t.tok {
            Tok::Text(s) => Ok(Item::Node(Node::Text(Arc::from(s)))),
            Tok::Left => self.action(t.pos),
            _ => self.unexpected(&t, "input"),
        }
    }

    fn action(&mut self, left_pos: usize) -> Result<Item, ParseErr> {
        let t = self.peek_non_space();
        match t.tok {
            Tok::Kw("block") => {
                self.next();
                self.block_control(t.pos).map(Item::Node)
            }
            Tok::Kw("break") | Tok::Kw("continue") => {
                self.next();
                let is_break = t.tok == Tok::Kw("break");
                let word = if is_break { "break" } else { "continue" };
                if self.range_depth == 0 {
                    return perr(t.pos, format!("{{{{{word}}}}} outside {{{{range}}}}"));
                }
                let n = self.next_non_space();
                if n.tok != Tok::Right {
                    return self.unexpected(&n, &format!("{{{{{word}}}}}"));
                }
                Ok(Item::Node(if is_break {
                    Node::Break
                } else {
                    Node::Continue
                }))
            }
            Tok::Kw("else") => {
                self.next();
                let n = self.peek_non_space();
                match n.tok {
                    Tok::Kw("if") => Ok(Item::Else(t.pos, Some("if"))),
                    Tok::Kw("with") => Ok(Item::Else(t.pos, Some("with"))),
                    _ => {
                        self.expect_right("else")?;
                        Ok(Item::Else(t.pos, None))
                    }
                }
            }
            Tok::Kw("end") => {
                self.next();
                self.expect_right("end")?;
                Ok(Item::End(t.pos))
            }
            Tok::Kw("if") => {
                self.next();
                self.control("if", t.pos).map(Item::Node)
            }
            Tok::Kw("range") => {
                self.next();
                self.control("range", t.pos).map(Item::Node)
            }
            Tok::Kw("with") => {
                self.next();
                self.control("with", t.pos).map(Item::Node)
            }
            Tok::Kw("template") => {
                self.next();
                self.template_control(t.pos).map(Item::Node)
            }
            Tok::Kw("define") => perr(t.pos, "unexpected <define> in command"),
            _ => {
                let _ = left_pos;
                let pipe = self.pipeline("command", &Tok::Right)?;
                Ok(Item::Node(Node::Action(pipe)))
            }
        }
    }

    fn control(&mut self, ctx: &'static str, pos: usize) -> Result<Node, ParseErr> {
        self.enter(pos)?;
        let nvars = self.vars.len();
        let pipe = self.pipeline(ctx, &Tok::Right)?;
        if ctx == "range" {
            self.range_depth += 1;
        }
        let (list, end) = self.item_list()?;
        if ctx == "range" {
            self.range_depth -= 1;
        }
        let else_list = match end {
            Item::End(_) => None,
            Item::Else(epos, chained) => match chained {
                Some(kw) if (kw == "if" && ctx == "if") || (kw == "with" && ctx == "with") => {
                    // `{{else if ...}}` is an `if` nested in the else branch sharing our `{{end}}`.
                    self.next_non_space();
                    let inner = self.control(kw, epos)?;
                    Some(vec![inner])
                }
                Some(_) => {
                    let t = self.peek_non_space();
                    return self.unexpected(&t, "else");
                }
                None => {
                    let (el, end2) = self.item_list()?;
                    match end2 {
                        Item::End(_) => Some(el),
                        Item::Else(p, _) => {
                            return perr(p, "expected end; found {{else}}");
                        }
                        Item::Node(_) => None,
                    }
                }
            },
            Item::Node(_) => None,
        };
        self.vars.truncate(nvars);
        self.depth -= 1;
        Ok(match ctx {
            "if" => Node::If {
                pipe,
                list,
                else_list,
            },
            "with" => Node::With {
                pipe,
                list,
                else_list,
            },
            _ => Node::Range {
                pipe,
                list,
                else_list,
            },
        })
    }

    fn template_control(&mut self, pos: usize) -> Result<Node, ParseErr> {
        let t = self.next_non_space();
        let Tok::Str(name) = t.tok else {
            return self.unexpected(&t, "template clause");
        };
        let name = String::from_utf8_lossy(&name).into_owned();
        let pipe = if self.peek_non_space().tok != Tok::Right {
            Some(self.pipeline("template clause", &Tok::Right)?)
        } else {
            self.next();
            None
        };
        Ok(Node::Template { pos, name, pipe })
    }

    fn block_control(&mut self, pos: usize) -> Result<Node, ParseErr> {
        self.enter(pos)?;
        let t = self.next_non_space();
        let Tok::Str(name) = t.tok else {
            return self.unexpected(&t, "block clause");
        };
        let name = String::from_utf8_lossy(&name).into_owned();
        let pipe = if self.peek_non_space().tok != Tok::Right {
            Some(self.pipeline("block clause", &Tok::Right)?)
        } else {
            self.next();
            None
        };
        let saved = std::mem::replace(&mut self.vars, vec!["$".into()]);
        let saved_range = std::mem::replace(&mut self.range_depth, 0);
        let (list, end) = self.item_list()?;
        self.vars = saved;
        self.range_depth = saved_range;
        if let Item::Else(p, _) = end {
            return perr(p, "unexpected {{else}}");
        }
        self.add_def(name.clone(), list, pos)?;
        self.depth -= 1;
        Ok(Node::Template { pos, name, pipe })
    }

    fn pipeline(&mut self, ctx: &str, end: &Tok) -> Result<Pipe, ParseErr> {
        let start = self.peek_non_space();
        let mut pipe = Pipe {
            pos: start.pos,
            is_assign: false,
            decl: Vec::new(),
            cmds: Vec::new(),
        };
        // declarations
        let save = self.i;
        'decl: loop {
            let v = self.peek_non_space();
            let Tok::Variable(name) = v.tok.clone() else {
                break;
            };
            self.next();
            let after = self.peek_non_space();
            match after.tok {
                Tok::Declare | Tok::Assign => {
                    self.next();
                    pipe.is_assign = after.tok == Tok::Assign;
                    pipe.decl.push(name.clone());
                    if pipe.is_assign {
                        if !self.vars.contains(&name) {
                            return perr(v.pos, format!("undefined variable {name:?}"));
                        }
                    } else {
                        self.vars.push(name);
                    }
                    break 'decl;
                }
                Tok::Comma if ctx == "range" && pipe.decl.is_empty() => {
                    self.next();
                    pipe.decl.push(name);
                    continue;
                }
                Tok::Comma => return perr(after.pos, format!("too many declarations in {ctx}")),
                _ => {
                    if !pipe.decl.is_empty() {
                        return perr(after.pos, "missing := after range variables");
                    }
                    self.i = save;
                    break 'decl;
                }
            }
        }
        if pipe.decl.len() == 2 && !pipe.is_assign {
            // the first variable of `range $i, $e :=` was not pushed yet
            let first = pipe.decl[0].clone();
            let second = self.vars.pop().unwrap_or_default();
            self.vars.push(first);
            self.vars.push(second);
        } else if pipe.decl.len() == 2 && pipe.is_assign && !self.vars.contains(&pipe.decl[0]) {
            return perr(pipe.pos, format!("undefined variable {:?}", pipe.decl[0]));
        }
        loop {
            let t = self.peek_non_space();
            if &t.tok == end {
                self.next();
                self.check_pipeline(&pipe, ctx, t.pos)?;
                return Ok(pipe);
            }
            match t.tok {
                Tok::Bool(_)
                | Tok::Char(_)
                | Tok::Dot
                | Tok::Field(_)
                | Tok::Ident(_)
                | Tok::Number(_)
                | Tok::Nil
                | Tok::Str(_)
                | Tok::Variable(_)
                | Tok::LParen => {
                    let cmd = self.command()?;
                    pipe.cmds.push(cmd);
                }
                _ => return self.unexpected(&t, ctx),
            }
        }
    }

    fn check_pipeline(&self, pipe: &Pipe, ctx: &str, pos: usize) -> Result<(), ParseErr> {
        if pipe.cmds.is_empty() {
            return perr(pos, format!("missing value for {ctx}"));
        }
        for (i, c) in pipe.cmds.iter().enumerate().skip(1) {
            if matches!(
                c.args.first(),
                Some(Arg::Bool(_) | Arg::Dot | Arg::Nil | Arg::Number { .. } | Arg::Str(_))
            ) {
                return perr(
                    c.pos,
                    format!("non executable command in pipeline stage {}", i + 1),
                );
            }
        }
        Ok(())
    }

    fn command(&mut self) -> Result<Command, ParseErr> {
        let start = self.peek_non_space().pos;
        let mut cmd = Command {
            pos: start,
            text: String::new(),
            args: Vec::new(),
        };
        let mut end_pos;
        loop {
            self.peek_non_space();
            if let Some(op) = self.operand()? {
                cmd.args.push(op);
            }
            end_pos = self.peek().pos;
            let t = self.next();
            match t.tok {
                Tok::Space => continue,
                Tok::Right | Tok::RParen => {
                    self.i -= 1;
                }
                Tok::Pipe => {}
                _ => return self.unexpected(&t, "operand"),
            }
            break;
        }
        if cmd.args.is_empty() {
            return perr(start, "empty command");
        }
        cmd.text = self
            .src
            .get(start..end_pos)
            .unwrap_or("")
            .trim()
            .to_string();
        Ok(cmd)
    }

    fn operand(&mut self) -> Result<Option<Arg>, ParseErr> {
        let Some(term) = self.term()? else {
            return Ok(None);
        };
        let mut fields = Vec::new();
        while let Tok::Field(f) = &self.peek().tok {
            fields.push(f.clone());
            self.next();
        }
        if fields.is_empty() {
            return Ok(Some(term));
        }
        Ok(Some(match term {
            Arg::Field(mut f) => {
                f.extend(fields);
                Arg::Field(f)
            }
            Arg::Variable(v, mut f) => {
                f.extend(fields);
                Arg::Variable(v, f)
            }
            Arg::Pipe(p, mut f) => {
                f.extend(fields);
                Arg::Pipe(p, f)
            }
            Arg::Ident(name) => {
                return perr(self.peek().pos, format!("unexpected . after term {name:?}"));
            }
            other => {
                let desc = match other {
                    Arg::Dot => ".".to_string(),
                    Arg::Nil => "nil".to_string(),
                    Arg::Bool(b) => b.to_string(),
                    Arg::Number { text, .. } => text,
                    Arg::Str(s) => format!("{:?}", String::from_utf8_lossy(&s)),
                    _ => String::new(),
                };
                return perr(self.peek().pos, format!("unexpected . after term {desc:?}"));
            }
        }))
    }

    fn term(&mut self) -> Result<Option<Arg>, ParseErr> {
        let t = self.next_non_space();
        Ok(Some(match t.tok {
            Tok::Ident(name) => {
                if !(self.funcs)(&name) {
                    return perr(t.pos, format!("function {name:?} not defined"));
                }
                Arg::Ident(name)
            }
            Tok::Dot => Arg::Dot,
            Tok::Nil => Arg::Nil,
            Tok::Variable(name) => {
                if !self.vars.contains(&name) {
                    return perr(t.pos, format!("undefined variable {name:?}"));
                }
                Arg::Variable(name, Vec::new())
            }
            Tok::Field(f) => Arg::Field(vec![f]),
            Tok::Bool(b) => Arg::Bool(b),
            Tok::Char(c) => Arg::Number {
                int: Some(c),
                float: Some(c as f64),
                text: format!("'{}'", char::from_u32(c as u32).unwrap_or('?')),
            },
            Tok::Number(text) => {
                let Some((int, float)) = parse_number(&text) else {
                    return perr(t.pos, format!("illegal number syntax: {text:?}"));
                };
                Arg::Number { int, float, text }
            }
            Tok::LParen => {
                self.enter(t.pos)?;
                let p = self.pipeline("parenthesized pipeline", &Tok::RParen)?;
                self.depth -= 1;
                Arg::Pipe(Box::new(p), Vec::new())
            }
            Tok::Str(s) => Arg::Str(Arc::from(s)),
            _ => {
                self.i -= 1;
                return Ok(None);
            }
        }))
    }
}

/// The constant a number literal stands for where Go wants an `interface{}`: `int` when it is
/// written as an integer, otherwise `float64`.
pub(crate) fn ideal_constant(
    int: Option<i64>,
    float: Option<f64>,
    text: &str,
) -> Result<Value, String> {
    let looks_float = !text.starts_with("0x")
        && !text.starts_with("0X")
        && !text.starts_with('\'')
        && text.contains(['.', 'e', 'E', 'p', 'P']);
    if looks_float {
        return float
            .map(Value::Float)
            .ok_or_else(|| format!("illegal number syntax: {text:?}"));
    }
    match int {
        Some(i) => Ok(Value::Int(i)),
        None => Err(format!("{text} overflows int")),
    }
}
