//! sprig's `semver` and `semverCompare`, with Masterminds/semver v3's version grammar,
//! ordering and constraint language.
//!
//! The `semver` crate is not used: its requirement syntax is Cargo's (a bare `1.2` means
//! `^1.2`, no `||`, no hyphen ranges, no `x` wildcards in every position, no `v` prefix) and
//! it matches prereleases differently, so Masterminds' answers could not be reproduced
//! through it.
//!
//! Constraints: comparisons `=`, `!=`, `>`, `<`, `>=` (`=>`), `<=` (`=<`), tilde `~` (`~>`),
//! caret `^`, wildcards `x`/`X`/`*` in any position (`1.2.x`, `*`), hyphen ranges
//! `1.2 - 1.4.5`, AND by space or comma, OR by `||`. A version with a prerelease satisfies a
//! comparison only when that comparison's own version carries a prerelease, as in
//! Masterminds v3.

use std::cmp::Ordering;
use std::sync::Arc;

use super::{Ctx, FnResult, Func, table, text};
use crate::value::Value;

pub(super) static FUNCS: &[(&str, Func)] = table! {
    "semver" => (Str) => semver;
    "semverCompare" => (Str, Str) => semver_compare;
};

/// ESO's vendored sprig replaces Masterminds' messages with these two.
const INVALID_VERSION: &str = "invalid version";
const INVALID_CONSTRAINT: &str = "invalid version constraint";

fn semver(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let v = SemVer::parse(&text(&a[0])).ok_or(INVALID_VERSION)?;
    Ok(Value::Semver(Arc::new(v)))
}

fn semver_compare(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let c = Constraints::parse(&text(&a[0])).ok_or(INVALID_CONSTRAINT)?;
    let v = SemVer::parse(&text(&a[1])).ok_or(INVALID_VERSION)?;
    Ok(Value::Bool(c.check(&v)))
}

/// A parsed version: Masterminds' `*semver.Version`, which templates get from `semver`.
///
/// It prints as its canonical form (`v1.2` prints `1.2.0`; `.Original` keeps the input) and
/// has the fields templates read: `.Major`, `.Minor`, `.Patch`, `.Prerelease`, `.Metadata`,
/// `.Original`, `.String`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SemVer {
    major: u64,
    minor: u64,
    patch: u64,
    pre: String,
    metadata: String,
    original: String,
}

fn ident_ok(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

impl SemVer {
    /// Masterminds' `NewVersion`: an optional `v`, one to three numeric parts (missing ones
    /// are 0), an optional `-prerelease` and `+metadata`.
    #[must_use]
    pub fn parse(s: &str) -> Option<SemVer> {
        let body = s.strip_prefix('v').unwrap_or(s);
        let (rest, metadata) = match body.split_once('+') {
            Some((r, m)) => {
                if !m.split('.').all(ident_ok) {
                    return None;
                }
                (r, m)
            }
            None => (body, ""),
        };
        let (nums, pre) = match rest.split_once('-') {
            Some((n, p)) => {
                // Numeric identifiers may not have leading zeros ("Version segment starts
                // with 0").
                let ok = p.split('.').all(|id| {
                    ident_ok(id)
                        && !(id.len() > 1
                            && id.starts_with('0')
                            && id.bytes().all(|b| b.is_ascii_digit()))
                });
                if !ok {
                    return None;
                }
                (n, p)
            }
            None => (rest, ""),
        };
        let parts: Vec<&str> = nums.split('.').collect();
        if parts.len() > 3 {
            return None;
        }
        let mut n = [0u64; 3];
        for (slot, p) in n.iter_mut().zip(&parts) {
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            *slot = p.parse().ok()?;
        }
        Some(SemVer {
            major: n[0],
            minor: n[1],
            patch: n[2],
            pre: pre.to_string(),
            metadata: metadata.to_string(),
            original: s.to_string(),
        })
    }

    /// The canonical form, without a `v`: what Go's `String()` returns.
    #[must_use]
    pub fn canonical(&self) -> String {
        let mut s = format!("{}.{}.{}", self.major, self.minor, self.patch);
        if !self.pre.is_empty() {
            s.push('-');
            s.push_str(&self.pre);
        }
        if !self.metadata.is_empty() {
            s.push('+');
            s.push_str(&self.metadata);
        }
        s
    }

    /// A field or zero-argument method as a template reads it (`.Major`, `.Prerelease`, ...).
    pub(crate) fn field(&self, name: &str) -> Option<Value> {
        Some(match name {
            // uint64 in Go; printed the same.
            "Major" => Value::Int64(self.major as i64),
            "Minor" => Value::Int64(self.minor as i64),
            "Patch" => Value::Int64(self.patch as i64),
            "Prerelease" => Value::str(&self.pre),
            "Metadata" => Value::str(&self.metadata),
            "Original" => Value::str(&self.original),
            "String" => Value::str(self.canonical()),
            _ => return None,
        })
    }

    /// Masterminds' `Compare`: precedence by major, minor, patch, then prerelease (a release
    /// sorts after its prereleases); metadata is ignored.
    fn compare(&self, o: &SemVer) -> Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(o.major, o.minor, o.patch))
            .then_with(|| match (self.pre.is_empty(), o.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => compare_prerelease(&self.pre, &o.pre),
            })
    }
}

fn compare_prerelease(a: &str, b: &str) -> Ordering {
    let pa: Vec<&str> = a.split('.').collect();
    let pb: Vec<&str> = b.split('.').collect();
    for i in 0..pa.len().max(pb.len()) {
        let d = compare_pre_part(
            pa.get(i).copied().unwrap_or(""),
            pb.get(i).copied().unwrap_or(""),
        );
        if d != Ordering::Equal {
            return d;
        }
    }
    Ordering::Equal
}

/// Masterminds' `comparePrePart`: a missing part sorts first, numbers before words, numbers
/// numerically, words by bytes.
fn compare_pre_part(s: &str, o: &str) -> Ordering {
    if s == o {
        return Ordering::Equal;
    }
    if s.is_empty() {
        return Ordering::Less;
    }
    if o.is_empty() {
        return Ordering::Greater;
    }
    match (s.parse::<u64>(), o.parse::<u64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        (Ok(_), Err(_)) => Ordering::Less,
        (Err(_), Ok(_)) => Ordering::Greater,
        (Err(_), Err(_)) => s.cmp(o),
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    Tilde,
    Caret,
}

/// One comparison; `dirty` when the version had a wildcard or missing part.
#[derive(Debug)]
struct Constraint {
    op: Op,
    con: SemVer,
    dirty: bool,
    minor_dirty: bool,
    patch_dirty: bool,
}

/// A parsed constraint: OR of ANDs.
#[derive(Debug)]
struct Constraints(Vec<Vec<Constraint>>);

fn is_wild(s: &str) -> bool {
    matches!(s, "x" | "X" | "*")
}

fn is_space(c: char) -> bool {
    // Go's regexp `\s`: space, \t, \n, \f, \r.
    matches!(c, ' ' | '\t' | '\n' | '\x0c' | '\r')
}

/// Splits the front of `s` into a constraint version (Masterminds' `cvRegex`) and the rest.
fn take_cv(s: &str) -> Option<(&str, &str)> {
    let b = s.as_bytes();
    let mut i = usize::from(b.first() == Some(&b'v'));
    let part = |c: u8| c.is_ascii_digit() || matches!(c, b'x' | b'X' | b'*' | b'|');
    let mut parts = 0;
    loop {
        let st = i;
        while i < b.len() && part(b[i]) {
            // `|` belongs to cvRegex's character class but never starts `||` here.
            if b[i] == b'|' && b.get(i + 1) == Some(&b'|') {
                break;
            }
            i += 1;
        }
        if i == st {
            if parts == 0 {
                return None;
            }
            // A dot without digits after it is not part of the version.
            i = st - 1;
            break;
        }
        parts += 1;
        if parts == 3 || b.get(i) != Some(&b'.') {
            break;
        }
        i += 1;
    }
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'-';
    for sep in [b'-', b'+'] {
        if b.get(i) == Some(&sep) && b.get(i + 1).is_some_and(|c| ident(*c)) {
            i += 1;
            loop {
                while i < b.len() && ident(b[i]) {
                    i += 1;
                }
                if b.get(i) == Some(&b'.') && b.get(i + 1).is_some_and(|c| ident(*c)) {
                    i += 1;
                } else {
                    break;
                }
            }
        }
    }
    Some((&s[..i], &s[i..]))
}

fn take_op(s: &str) -> (Op, &str) {
    for (t, op) in [
        ("!=", Op::Ne),
        (">=", Op::Ge),
        ("=>", Op::Ge),
        ("<=", Op::Le),
        ("=<", Op::Le),
        ("~>", Op::Tilde),
        ("=", Op::Eq),
        (">", Op::Gt),
        ("<", Op::Lt),
        ("~", Op::Tilde),
        ("^", Op::Caret),
    ] {
        if let Some(r) = s.strip_prefix(t) {
            return (op, r);
        }
    }
    (Op::Eq, s)
}

/// Masterminds' `parseConstraint` for one operator and version text.
fn constraint(op: Op, cv: &str) -> Option<Constraint> {
    let body = cv.strip_prefix('v').unwrap_or(cv);
    let (nums, pre) = match body.find(['-', '+']) {
        Some(i) => {
            let tail = &body[i..];
            // Metadata is dropped; the prerelease is kept.
            let pre = match tail.strip_prefix('-') {
                Some(p) => format!("-{}", p.split('+').next().unwrap_or("")),
                None => String::new(),
            };
            (&body[..i], pre)
        }
        None => (body, String::new()),
    };
    let parts: Vec<&str> = nums.split('.').collect();
    let get = |i: usize| parts.get(i).copied().unwrap_or("");
    let (ver, dirty, minor_dirty, patch_dirty) = if is_wild(get(0)) || get(0).is_empty() {
        (format!("0.0.0{pre}"), true, false, false)
    } else if is_wild(get(1)) || get(1).is_empty() {
        (format!("{}.0.0{pre}", get(0)), true, true, false)
    } else if is_wild(get(2)) || get(2).is_empty() {
        (format!("{}.{}.0{pre}", get(0), get(1)), true, false, true)
    } else {
        (format!("{nums}{pre}"), false, false, false)
    };
    Some(Constraint {
        op,
        con: SemVer::parse(&ver)?,
        dirty,
        minor_dirty,
        patch_dirty,
    })
}

impl Constraints {
    /// Masterminds' `NewConstraint`.
    fn parse(input: &str) -> Option<Constraints> {
        let rewritten = rewrite_ranges(input);
        let mut ors = Vec::new();
        for group in rewritten.split("||") {
            ors.push(parse_and_group(group)?);
        }
        Some(Constraints(ors))
    }

    fn check(&self, v: &SemVer) -> bool {
        self.0.iter().any(|and| and.iter().all(|c| c.check(v)))
    }
}

/// `1.2 - 1.4.5` becomes `>= 1.2, <= 1.4.5` (Masterminds' `rewriteRange`).
fn rewrite_ranges(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    'outer: while !rest.is_empty() {
        // Find "cv \s+ - \s+ cv" starting at a version boundary.
        for (i, _) in rest.char_indices() {
            let prev_ok = i == 0
                || !rest[..i].ends_with(|c: char| {
                    c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '+' || c == '*'
                });
            if !prev_ok {
                continue;
            }
            let Some((a, after_a)) = take_cv(&rest[i..]) else {
                continue;
            };
            let t = after_a.trim_start_matches(is_space);
            if t.len() == after_a.len() {
                continue;
            }
            let Some(t2) = t.strip_prefix('-') else {
                continue;
            };
            let t3 = t2.trim_start_matches(is_space);
            if t3.len() == t2.len() {
                continue;
            }
            let Some((b, after_b)) = take_cv(t3) else {
                continue;
            };
            out.push_str(&rest[..i]);
            out.push_str(&format!(">= {a}, <= {b}"));
            rest = after_b;
            continue 'outer;
        }
        out.push_str(rest);
        break;
    }
    out
}

/// One `||` branch: constraints separated by spaces or commas (Masterminds'
/// `validConstraintRegex`, then `findConstraintRegex`).
fn parse_and_group(group: &str) -> Option<Vec<Constraint>> {
    let mut out = Vec::new();
    let mut s = group.trim_start_matches(is_space);
    if s.trim_end_matches(is_space).is_empty() {
        // Masterminds rejects an empty branch ("improper constraint").
        return None;
    }
    let mut first = true;
    loop {
        if !first {
            // A separator: whitespace, or a comma with optional whitespace around it.
            let t = s.trim_start_matches(is_space);
            let had_space = t.len() != s.len();
            let t = match t.strip_prefix(',') {
                Some(r) => r.trim_start_matches(is_space),
                None if had_space => t,
                None => return None,
            };
            s = t;
        }
        first = false;
        let (op, r) = take_op(s);
        let r = r.trim_start_matches(is_space);
        let (cv, r) = take_cv(r)?;
        out.push(constraint(op, cv)?);
        s = r;
        if s.trim_start_matches(is_space).is_empty() {
            return Some(out);
        }
    }
}

impl Constraint {
    fn check(&self, v: &SemVer) -> bool {
        // Prereleases only match comparisons whose own version has one.
        if !v.pre.is_empty() && self.con.pre.is_empty() {
            return false;
        }
        let c = &self.con;
        match self.op {
            Op::Eq => {
                if self.dirty {
                    self.tilde(v)
                } else {
                    v.compare(c) == Ordering::Equal
                }
            }
            Op::Ne => self.not_equal(v),
            Op::Gt => {
                if !self.dirty {
                    return v.compare(c) == Ordering::Greater;
                }
                match v.major.cmp(&c.major) {
                    Ordering::Greater => true,
                    Ordering::Less => false,
                    Ordering::Equal if self.minor_dirty => false,
                    Ordering::Equal if self.patch_dirty => v.minor > c.minor,
                    Ordering::Equal => v.compare(c) == Ordering::Greater,
                }
            }
            Op::Lt => v.compare(c) == Ordering::Less,
            Op::Ge => v.compare(c) != Ordering::Less,
            Op::Le => {
                if !self.dirty {
                    return v.compare(c) != Ordering::Greater;
                }
                !(v.major > c.major
                    || (v.major == c.major && v.minor > c.minor && !self.minor_dirty))
            }
            Op::Tilde => self.tilde(v),
            Op::Caret => self.caret(v),
        }
    }

    fn not_equal(&self, v: &SemVer) -> bool {
        let c = &self.con;
        if self.dirty {
            if c.major != v.major {
                return true;
            }
            if c.minor != v.minor && !self.minor_dirty {
                return true;
            } else if self.minor_dirty {
                return false;
            } else if c.patch != v.patch && !self.patch_dirty {
                return true;
            } else if self.patch_dirty {
                if !v.pre.is_empty() || !c.pre.is_empty() {
                    return compare_prerelease(&v.pre, &c.pre) != Ordering::Equal;
                }
                return false;
            }
        }
        v.compare(c) != Ordering::Equal
    }

    /// `~1.2.3` is `>=1.2.3 <1.3.0`; `~1` is `>=1.0.0 <2.0.0`; `~0.0.0` is anything.
    fn tilde(&self, v: &SemVer) -> bool {
        let c = &self.con;
        if v.compare(c) == Ordering::Less {
            return false;
        }
        if c.major == 0 && c.minor == 0 && c.patch == 0 && !self.minor_dirty && !self.patch_dirty {
            return true;
        }
        if v.major != c.major {
            return false;
        }
        v.minor == c.minor || self.minor_dirty
    }

    /// `^1.2.3` is `>=1.2.3 <2.0.0`, `^0.2.3` is `>=0.2.3 <0.3.0`, `^0.0.3` is `=0.0.3`.
    fn caret(&self, v: &SemVer) -> bool {
        let c = &self.con;
        if v.compare(c) == Ordering::Less {
            return false;
        }
        if c.major > 0 || self.minor_dirty {
            return v.major == c.major;
        }
        if v.major > 0 {
            return false;
        }
        if c.minor > 0 || self.patch_dirty {
            return v.minor == c.minor;
        }
        if v.minor > 0 {
            return false;
        }
        c.patch == v.patch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(c: &str, v: &str) -> bool {
        let c = Constraints::parse(c).unwrap_or_else(|| panic!("constraint {c:?} parses"));
        c.check(&SemVer::parse(v).unwrap_or_else(|| panic!("version {v:?} parses")))
    }

    /// Cases from Masterminds/semver v3's `TestConstraintCheck` and its README tables.
    #[test]
    fn constraints_match_masterminds() {
        let cases: &[(&str, &str, bool)] = &[
            ("=2.0.0", "1.2.3", false),
            ("=2.0.0", "2.0.0", true),
            ("=2.0", "1.2.3", false),
            ("=2.0", "2.0.0", true),
            ("=2.0", "2.0.1", true),
            ("4.1", "4.1.0", true),
            ("!=4.1.0", "4.1.0", false),
            ("!=4.1.0", "4.1.1", true),
            ("!=4.1", "4.1.0", false),
            ("!=4.1", "4.1.1", false),
            ("!=4.1", "5.1.0-alpha.1", false),
            ("!=4.1-alpha", "4.1.0", true),
            ("!=4.1", "5.1.0", true),
            ("<11", "0.1.0", true),
            ("<11", "11.1.0", false),
            ("<1.1", "0.1.0", true),
            ("<1.1", "1.1.0", false),
            ("<1.1", "1.1.1", false),
            ("<=11", "1.2.3", true),
            ("<=11", "12.2.3", false),
            ("<=11", "11.2.3", true),
            ("<=1.1", "1.2.3", false),
            ("<=1.1", "0.1.0", true),
            ("<=1.1", "1.1.0", true),
            ("<=1.1", "1.1.1", true),
            (">5.0.0", "4.1.0", false),
            (">4.1", "4.1.0", false),
            (">4.1", "4.1.1", false),
            (">4.1", "4.2.0", true),
            (">11", "11.1.0", false),
            (">11", "12.0.0", true),
            (">=11", "11.1.0", true),
            (">=1.1", "1.1.1", true),
            ("~1.2.3", "1.2.4", true),
            ("~1.2.3", "1.3.4", false),
            ("~1.2", "1.2.4", true),
            ("~1.2", "1.3.4", false),
            ("~1", "1.2.4", true),
            ("~1", "2.3.4", false),
            ("~0.2.3", "0.2.5", true),
            ("~0.2.3", "0.3.5", false),
            ("~1.2.3-beta.2", "1.2.3-beta.4", true),
            ("~1.2.3-beta.2", "1.2.4-beta.2", true),
            ("~1.2.3-beta.2", "1.3.4-beta.2", false),
            ("^1.2.3", "1.8.9", true),
            ("^1.2.3", "2.8.9", false),
            ("^1.2.3", "1.2.1", false),
            ("^1.1.0", "2.1.0", false),
            ("^1.2.0", "2.2.1", false),
            ("^1.2.0", "1.2.1-alpha.1", false),
            ("^1.2.0-alpha.0", "1.2.1-alpha.1", true),
            ("^1.2.0-alpha.0", "1.2.1-alpha.0", true),
            ("^1.2.0-alpha.2", "1.2.0-alpha.1", false),
            ("^1.2", "1.8.9", true),
            ("^1.2", "2.8.9", false),
            ("^1", "1.8.9", true),
            ("^1", "2.8.9", false),
            ("^0.2.3", "0.2.5", true),
            ("^0.2.3", "0.5.6", false),
            ("^0.2", "0.2.5", true),
            ("^0.2", "0.5.6", false),
            ("^0.0.3", "0.0.3", true),
            ("^0.0.3", "0.0.4", false),
            ("^0.0", "0.0.3", true),
            ("^0.0", "0.1.4", false),
            ("^0.0", "1.0.4", false),
            ("^0", "0.2.3", true),
            ("^0", "1.1.4", false),
            ("^0.2.3-beta.2", "0.2.3-beta.4", true),
            ("^0.2.3-beta.2", "0.2.4-beta.2", true),
            ("^0.2.3-beta.2", "0.3.4-beta.2", false),
            ("^0.2.3-beta.2", "0.2.3-beta.1", false),
            ("*", "1.2.3", true),
            ("*", "1.2.3-alpha", false),
            ("2.*", "2.9.9", true),
            ("2.*", "3.0.0", false),
            ("1.2.x", "1.2.9", true),
            ("1.2.x", "1.3.0", false),
            (">=1.1 <2", "1.9.0", true),
            (">=1.1 <2", "2.0.0", false),
            (">=1.1, <2", "1.1.0", true),
            (">= 1.1,<2", "1.0.9", false),
            (">2 || <1", "0.5.0", true),
            (">2 || <1", "1.5.0", false),
            ("1.1 - 2", "1.9.0", true),
            ("1.1 - 2", "2.0.0", true),
            ("1.1 - 2", "2.1.0", true),
            ("1.1 - 2", "3.0.0", false),
            ("1.1 - 2.0.0", "2.0.1", false),
            ("1.1 - 2.0.0 || 3.x", "3.4.0", true),
            ("v1.2.3", "1.2.3", true),
            (">=1.2.3-0", "1.2.3-alpha", true),
            (">1.0.0-alpha", "1.0.0-alpha.1", true),
            (">1.0.0-alpha.1", "1.0.0-alpha.beta", true),
            (">1.0.0-beta.2", "1.0.0-beta.11", true),
            (">1.0.0-beta.11", "1.0.0-rc.1", true),
            ("<1.0.0", "1.0.0-rc.1", false),
        ];
        for (c, v, want) in cases {
            assert_eq!(check(c, v), *want, "{c:?} against {v:?}");
        }
    }

    #[test]
    fn invalid_constraints_and_versions_are_rejected() {
        for c in ["", "foo", ">=", "1.2 ||", ">1.2 <<1.3", "1.2,,1.3", "=>>1"] {
            assert!(Constraints::parse(c).is_none(), "{c:?} should not parse");
        }
        for v in [
            "", "1.2.3.4", "a.b.c", "1.2.3-", "1.2.3-01", "1.2.3+", "1..2", "v",
        ] {
            assert!(SemVer::parse(v).is_none(), "{v:?} should not parse");
        }
    }

    #[test]
    fn versions_parse_like_new_version() {
        let v = SemVer::parse("v1.2-beta.1+b5").unwrap();
        assert_eq!((v.major, v.minor, v.patch), (1, 2, 0));
        assert_eq!(v.canonical(), "1.2.0-beta.1+b5");
        assert_eq!(v.original, "v1.2-beta.1+b5");
        assert_eq!(SemVer::parse("7").unwrap().canonical(), "7.0.0");
    }
}
