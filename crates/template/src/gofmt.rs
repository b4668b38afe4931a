//! Go's `fmt` package as far as templates reach it: `print`, `println`, `printf` verbs, and
//! the `%v` form the template uses to write values.

use crate::value::Value;

/// Nesting beyond this prints `...`; Go would recurse forever on a map that contains itself.
const MAX_PRINT_DEPTH: usize = 64;

/// Printing stops growing the buffer past this size; a map that holds itself several times
/// would otherwise print for an exponential time. The executor's output limit then fails the
/// execution.
const MAX_PRINT_BYTES: usize = 64 << 20;

#[derive(Clone, Copy, Default)]
struct Flags {
    plus: bool,
    minus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    width: Option<usize>,
    prec: Option<usize>,
}

/// `fmt.Sprint`: operands formatted with `%v`, a space between operands when neither side is
/// a string.
pub(crate) fn sprint(args: &[Value]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut prev_string = false;
    for (i, a) in args.iter().enumerate() {
        let is_string = matches!(a, Value::Str(_));
        if i > 0 && !is_string && !prev_string {
            out.push(b' ');
        }
        fmt_value(&mut out, a, 'v', Flags::default(), 0);
        prev_string = is_string;
    }
    out
}

/// `fmt.Sprintln`: always a space between operands and a newline at the end.
pub(crate) fn sprintln(args: &[Value]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        fmt_value(&mut out, a, 'v', Flags::default(), 0);
    }
    out.push(b'\n');
    out
}

/// `fmt.Sprintf`.
pub(crate) fn sprintf(format: &[u8], args: &[Value]) -> Vec<u8> {
    let mut out = Vec::with_capacity(format.len() + 16);
    let mut argn = 0usize;
    let mut i = 0usize;
    let end = format.len();
    while i < end {
        let lasti = i;
        while i < end && format[i] != b'%' {
            i += 1;
        }
        out.extend_from_slice(&format[lasti..i]);
        if i >= end {
            break;
        }
        i += 1; // skip %
        let mut f = Flags::default();
        while i < end {
            match format[i] {
                b'#' => f.sharp = true,
                b'0' => f.zero = !f.minus,
                b'+' => f.plus = true,
                b'-' => {
                    f.minus = true;
                    f.zero = false;
                }
                b' ' => f.space = true,
                _ => break,
            }
            i += 1;
        }
        // width
        if i < end && format[i] == b'*' {
            i += 1;
            match args.get(argn) {
                Some(Value::Int(n) | Value::Int64(n)) => {
                    argn += 1;
                    if *n < 0 {
                        f.minus = true;
                        f.zero = false;
                    }
                    let w = n.unsigned_abs();
                    if w > 1_000_000 {
                        out.extend_from_slice(b"%!(BADWIDTH)");
                    } else {
                        f.width = Some(w as usize);
                    }
                }
                _ => {
                    if argn < args.len() {
                        argn += 1;
                    }
                    out.extend_from_slice(b"%!(BADWIDTH)");
                }
            }
        } else {
            let (n, ni) = parse_num(format, i);
            if let Some(n) = n {
                f.width = Some(n);
            }
            i = ni;
        }
        // precision
        if i < end && format[i] == b'.' {
            i += 1;
            if i < end && format[i] == b'*' {
                i += 1;
                match args.get(argn) {
                    Some(Value::Int(n) | Value::Int64(n)) if *n >= 0 && *n <= 1_000_000 => {
                        argn += 1;
                        f.prec = Some(*n as usize);
                    }
                    Some(Value::Int(n) | Value::Int64(n)) if *n < 0 => {
                        argn += 1;
                        f.prec = None;
                    }
                    _ => {
                        if argn < args.len() {
                            argn += 1;
                        }
                        out.extend_from_slice(b"%!(BADPREC)");
                    }
                }
            } else {
                let (n, ni) = parse_num(format, i);
                f.prec = Some(n.unwrap_or(0));
                i = ni;
            }
        }
        if i >= end {
            out.extend_from_slice(b"%!(NOVERB)");
            break;
        }
        // the verb is one UTF-8 character
        let (verb, size) = decode_rune(&format[i..]);
        i += size;
        if verb == '%' {
            out.push(b'%');
            continue;
        }
        match args.get(argn) {
            None => {
                out.extend_from_slice(b"%!");
                push_char(&mut out, verb);
                out.extend_from_slice(b"(MISSING)");
            }
            Some(a) => {
                argn += 1;
                fmt_top(&mut out, a, verb, f);
            }
        }
    }
    if argn < args.len() {
        out.extend_from_slice(b"%!(EXTRA ");
        for (k, a) in args[argn..].iter().enumerate() {
            if k > 0 {
                out.extend_from_slice(b", ");
            }
            if matches!(a, Value::Nil) {
                out.extend_from_slice(b"<nil>");
            } else {
                out.extend_from_slice(a.type_name().as_bytes());
                out.push(b'=');
                fmt_value(&mut out, a, 'v', Flags::default(), 0);
            }
        }
        out.push(b')');
    }
    out
}

fn parse_num(s: &[u8], mut i: usize) -> (Option<usize>, usize) {
    let start = i;
    let mut n: usize = 0;
    while i < s.len() && s[i].is_ascii_digit() {
        n = n
            .saturating_mul(10)
            .saturating_add(usize::from(s[i] - b'0'));
        i += 1;
    }
    if i == start {
        (None, i)
    } else {
        (Some(n.min(1_000_000)), i)
    }
}

fn decode_rune(s: &[u8]) -> (char, usize) {
    let take = s.len().min(4);
    for n in 1..=take {
        if let Ok(t) = std::str::from_utf8(&s[..n])
            && let Some(c) = t.chars().next()
        {
            return (c, n);
        }
    }
    ('\u{FFFD}', 1)
}

fn push_char(out: &mut Vec<u8>, c: char) {
    let mut b = [0u8; 4];
    out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
}

/// Top-level operand of printf: `%T` and nil handling happen here, as in Go's printArg.
fn fmt_top(out: &mut Vec<u8>, v: &Value, verb: char, f: Flags) {
    if verb == 'T' {
        pad(out, v.type_name().as_bytes(), f);
        return;
    }
    if let Value::Nil = v {
        match verb {
            'v' => pad(out, b"<nil>", f),
            _ => bad_verb(out, v, verb),
        }
        return;
    }
    fmt_value(out, v, verb, f, 0);
}

fn bad_verb(out: &mut Vec<u8>, v: &Value, verb: char) {
    out.extend_from_slice(b"%!");
    push_char(out, verb);
    out.push(b'(');
    if let Value::Nil = v {
        out.extend_from_slice(b"<nil>");
    } else {
        out.extend_from_slice(v.type_name().as_bytes());
        out.push(b'=');
        fmt_value(out, v, 'v', Flags::default(), 0);
    }
    out.push(b')');
}

fn fmt_value(out: &mut Vec<u8>, v: &Value, verb: char, f: Flags, depth: usize) {
    if depth > MAX_PRINT_DEPTH || out.len() > MAX_PRINT_BYTES {
        out.extend_from_slice(b"...");
        return;
    }
    match v {
        Value::Nil => {
            if f.sharp && verb == 'v' {
                out.extend_from_slice(b"interface {}(nil)");
            } else {
                pad(out, b"<nil>", f);
            }
        }
        Value::Bool(b) => match verb {
            'v' | 't' => pad(out, if *b { b"true" } else { b"false" }, f),
            _ => bad_verb(out, v, verb),
        },
        Value::Int(i) | Value::Int64(i) => fmt_int(out, v, *i, verb, f),
        Value::Float(x) => fmt_float_verb(out, v, *x, verb, f),
        Value::Str(s) => fmt_str(out, v, s, verb, f),
        Value::List(items, elem) => {
            if f.sharp && verb == 'v' {
                out.extend_from_slice(v.type_name().as_bytes());
                out.push(b'{');
                for (k, it) in items.iter().enumerate() {
                    if k > 0 {
                        out.extend_from_slice(b", ");
                    }
                    fmt_value(out, it, verb, f, depth + 1);
                }
                out.push(b'}');
                return;
            }
            let _ = elem;
            out.push(b'[');
            for (k, it) in items.iter().enumerate() {
                if k > 0 {
                    out.push(b' ');
                }
                fmt_value(out, it, verb, f, depth + 1);
            }
            out.push(b']');
        }
        Value::Map(m) => {
            let entries = m.entries();
            if f.sharp && verb == 'v' {
                out.extend_from_slice(v.type_name().as_bytes());
                out.push(b'{');
                for (k, (key, val)) in entries.iter().enumerate() {
                    if k > 0 {
                        out.extend_from_slice(b", ");
                    }
                    out.extend_from_slice(quote(key.as_bytes()).as_bytes());
                    out.push(b':');
                    fmt_value(out, val, verb, f, depth + 1);
                }
                out.push(b'}');
                return;
            }
            out.extend_from_slice(b"map[");
            for (k, (key, val)) in entries.iter().enumerate() {
                if k > 0 {
                    out.push(b' ');
                }
                fmt_str(out, &Value::str(key), key.as_bytes(), verb, f);
                out.push(b':');
                fmt_value(out, val, verb, f, depth + 1);
            }
            out.push(b']');
        }
        // A Stringer: fmt prints t.String() for every verb that takes a string.
        Value::Time(t) => {
            let s = t.go_string();
            fmt_str(out, &Value::str(&s), s.as_bytes(), verb, f);
        }
        Value::Semver(v) => {
            let s = v.canonical();
            fmt_str(out, &Value::str(&s), s.as_bytes(), verb, f);
        }
        Value::Cert { cert, key } => {
            out.push(b'{');
            fmt_str(out, v, cert, verb, f);
            out.push(b' ');
            fmt_str(out, v, key, verb, f);
            out.push(b'}');
        }
    }
}

/// Pads `s` to the width with spaces (or zeros with the `0` flag), left or right.
fn pad(out: &mut Vec<u8>, s: &[u8], f: Flags) {
    let Some(w) = f.width else {
        out.extend_from_slice(s);
        return;
    };
    let n = String::from_utf8_lossy(s).chars().count();
    if n >= w {
        out.extend_from_slice(s);
        return;
    }
    let fill = w - n;
    if f.minus {
        out.extend_from_slice(s);
        out.extend(std::iter::repeat_n(b' ', fill));
    } else {
        let c = if f.zero { b'0' } else { b' ' };
        out.extend(std::iter::repeat_n(c, fill));
        out.extend_from_slice(s);
    }
}

fn fmt_int(out: &mut Vec<u8>, v: &Value, i: i64, verb: char, f: Flags) {
    let (base, upper) = match verb {
        'v' | 'd' => (10, false),
        'b' => (2, false),
        'o' | 'O' => (8, false),
        'x' => (16, false),
        'X' => (16, true),
        'c' => {
            let c = u32::try_from(i)
                .ok()
                .and_then(char::from_u32)
                .unwrap_or('\u{FFFD}');
            let mut b = Vec::new();
            push_char(&mut b, c);
            pad(out, &b, f);
            return;
        }
        'q' => {
            let c = u32::try_from(i)
                .ok()
                .and_then(char::from_u32)
                .unwrap_or('\u{FFFD}');
            pad(out, quote_rune(c).as_bytes(), f);
            return;
        }
        'U' => {
            let u = i as u64;
            let mut s = format!("U+{u:04X}");
            if f.sharp
                && let Some(c) = u32::try_from(i).ok().and_then(char::from_u32)
                && is_print(c)
            {
                s.push_str(&format!(" '{c}'"));
            }
            pad(out, s.as_bytes(), f);
            return;
        }
        _ => {
            bad_verb(out, v, verb);
            return;
        }
    };
    let neg = i < 0;
    let u = i.unsigned_abs();
    let mut digits = match base {
        2 => format!("{u:b}"),
        8 => format!("{u:o}"),
        16 if upper => format!("{u:X}"),
        16 => format!("{u:x}"),
        _ => u.to_string(),
    };
    if let Some(p) = f.prec {
        if p == 0 && u == 0 {
            digits.clear();
        }
        while digits.len() < p {
            digits.insert(0, '0');
        }
    }
    let mut prefix = String::new();
    if neg {
        prefix.push('-');
    } else if f.plus {
        prefix.push('+');
    } else if f.space {
        prefix.push(' ');
    }
    if f.sharp {
        match base {
            2 => prefix.push_str("0b"),
            8 if !digits.starts_with('0') => prefix.push('0'),
            16 if upper => prefix.push_str("0X"),
            16 => prefix.push_str("0x"),
            _ => {}
        }
    }
    if verb == 'O' {
        prefix.push_str("0o");
    }
    if f.zero
        && f.prec.is_none()
        && !f.minus
        && let Some(w) = f.width
    {
        while prefix.len() + digits.len() < w {
            digits.insert(0, '0');
        }
    }
    let s = format!("{prefix}{digits}");
    pad(out, s.as_bytes(), Flags { zero: false, ..f });
}

fn fmt_float_verb(out: &mut Vec<u8>, v: &Value, x: f64, verb: char, f: Flags) {
    let body = match verb {
        'v' | 'g' => format_float(x, 'g', f.prec),
        'G' => format_float(x, 'G', f.prec),
        'e' | 'E' | 'f' | 'F' => format_float(x, verb, Some(f.prec.unwrap_or(6))),
        _ => {
            bad_verb(out, v, verb);
            return;
        }
    };
    let (neg, digits) = match body.strip_prefix('-') {
        Some(rest) => (true, rest.to_string()),
        None => (false, body),
    };
    let mut sign = String::new();
    if neg {
        sign.push('-');
    } else if f.plus || digits == "Inf" {
        sign.push('+');
    } else if f.space {
        sign.push(' ');
    }
    let mut digits = digits;
    let finite = x.is_finite();
    if f.zero
        && finite
        && !f.minus
        && let Some(w) = f.width
    {
        while sign.len() + digits.len() < w {
            digits.insert(0, '0');
        }
    }
    let s = format!("{sign}{digits}");
    pad(out, s.as_bytes(), Flags { zero: false, ..f });
}

/// Decimal digits and decimal-point position of `x` (> 0), rounded to `sig` significant
/// digits, or the shortest digits that read back as `x` when `sig` is `None`.
fn decimal_digits(x: f64, sig: Option<usize>) -> (Vec<u8>, i32) {
    let s = match sig {
        Some(p) => format!("{:.*e}", p.saturating_sub(1), x),
        None => format!("{x:e}"),
    };
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let mut digits: Vec<u8> = mant.bytes().filter(u8::is_ascii_digit).collect();
    while digits.len() > 1 && digits.last() == Some(&b'0') {
        digits.pop();
    }
    (digits, exp + 1)
}

/// Go's `strconv.FormatFloat(x, verb, prec, 64)` for verbs e, E, f, F, g, G (`prec` None is
/// Go's -1, the shortest representation).
pub(crate) fn format_float(x: f64, verb: char, prec: Option<usize>) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let neg = x.is_sign_negative();
    let ax = x.abs();
    let body = match verb {
        'e' | 'E' => fmt_e(ax, prec, verb == 'E'),
        'f' | 'F' => match prec {
            Some(p) => format!("{ax:.p$}"),
            None => {
                let (d, dp) = if ax == 0.0 {
                    (vec![b'0'], 1)
                } else {
                    decimal_digits(ax, None)
                };
                fmt_f_digits(&d, dp, None)
            }
        },
        _ => {
            let upper = verb == 'G';
            if ax == 0.0 {
                "0".to_string()
            } else {
                let shortest = prec.is_none();
                let p = prec.map(|p| p.max(1));
                let (d, dp) = decimal_digits(ax, p);
                let nd = d.len() as i32;
                let mut eprec = p.map_or(nd, |p| p as i32);
                if !shortest && eprec > nd && nd >= dp {
                    eprec = nd;
                }
                if shortest {
                    eprec = 6;
                }
                let exp = dp - 1;
                if exp < -4 || exp >= eprec {
                    let pe = match p {
                        Some(p) => (p as i32).min(nd),
                        None => nd,
                    };
                    e_from_digits(&d, dp, (pe - 1).max(0) as usize, upper)
                } else {
                    let pf = match p {
                        Some(p) if (p as i32) > dp => nd,
                        Some(p) => p as i32,
                        None => nd,
                    };
                    fmt_f_digits(&d, dp, Some((pf - dp).max(0) as usize))
                }
            }
        }
    };
    if neg { format!("-{body}") } else { body }
}

fn fmt_e(ax: f64, prec: Option<usize>, upper: bool) -> String {
    if ax == 0.0 {
        let p = prec.unwrap_or(0);
        let mut s = "0".to_string();
        if p > 0 {
            s.push('.');
            s.extend(std::iter::repeat_n('0', p));
        }
        s.push_str(if upper { "E+00" } else { "e+00" });
        return s;
    }
    let (d, dp) = match prec {
        Some(p) => {
            let s = format!("{:.*e}", p, ax);
            let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
            let exp: i32 = exp.parse().unwrap_or(0);
            (
                mant.bytes().filter(u8::is_ascii_digit).collect::<Vec<u8>>(),
                exp + 1,
            )
        }
        None => decimal_digits(ax, None),
    };
    let p = prec.unwrap_or(d.len().saturating_sub(1));
    e_from_digits(&d, dp, p, upper)
}

fn e_from_digits(d: &[u8], dp: i32, p: usize, upper: bool) -> String {
    let mut s = String::new();
    s.push(char::from(*d.first().unwrap_or(&b'0')));
    if p > 0 {
        s.push('.');
        for k in 1..=p {
            s.push(char::from(*d.get(k).unwrap_or(&b'0')));
        }
    }
    let exp = if d.iter().all(|c| *c == b'0') {
        0
    } else {
        dp - 1
    };
    s.push(if upper { 'E' } else { 'e' });
    s.push(if exp < 0 { '-' } else { '+' });
    let a = exp.unsigned_abs();
    if a < 10 {
        s.push('0');
    }
    s.push_str(&a.to_string());
    s
}

fn fmt_f_digits(d: &[u8], dp: i32, frac: Option<usize>) -> String {
    let mut s = String::new();
    if dp > 0 {
        for k in 0..dp as usize {
            s.push(char::from(*d.get(k).unwrap_or(&b'0')));
        }
    } else {
        s.push('0');
    }
    let frac = frac.unwrap_or_else(|| (d.len() as i32 - dp).max(0) as usize);
    if frac > 0 {
        s.push('.');
        for k in 0..frac {
            let idx = dp + k as i32;
            let c = if idx < 0 {
                b'0'
            } else {
                *d.get(idx as usize).unwrap_or(&b'0')
            };
            s.push(char::from(c));
        }
    }
    s
}

fn fmt_str(out: &mut Vec<u8>, v: &Value, s: &[u8], verb: char, f: Flags) {
    match verb {
        'v' if f.sharp => pad(out, quote(s).as_bytes(), f),
        'v' | 's' => {
            let s = truncate_runes(s, f.prec);
            pad(out, s, f);
        }
        'q' => {
            let s = truncate_runes(s, f.prec);
            if f.sharp && can_backquote(s) {
                let mut b = vec![b'`'];
                b.extend_from_slice(s);
                b.push(b'`');
                pad(out, &b, f);
            } else {
                pad(out, quote(s).as_bytes(), f);
            }
        }
        'x' | 'X' => {
            let s = match f.prec {
                Some(p) if p < s.len() => &s[..p],
                _ => s,
            };
            let mut h = String::new();
            for (k, b) in s.iter().enumerate() {
                if f.space && k > 0 {
                    h.push(' ');
                }
                if f.sharp && (f.space || k == 0) {
                    h.push_str(if verb == 'x' { "0x" } else { "0X" });
                }
                if verb == 'x' {
                    h.push_str(&format!("{b:02x}"));
                } else {
                    h.push_str(&format!("{b:02X}"));
                }
            }
            pad(out, h.as_bytes(), f);
        }
        _ => bad_verb(out, v, verb),
    }
}

fn truncate_runes(s: &[u8], prec: Option<usize>) -> &[u8] {
    let Some(p) = prec else { return s };
    let mut count = 0;
    let mut i = 0;
    while i < s.len() {
        if count == p {
            return &s[..i];
        }
        let (_, n) = decode_rune(&s[i..]);
        i += n;
        count += 1;
    }
    s
}

fn can_backquote(s: &[u8]) -> bool {
    match std::str::from_utf8(s) {
        Ok(t) => t
            .chars()
            .all(|c| c != '`' && c != '\u{FEFF}' && (c == '\t' || !c.is_control())),
        Err(_) => false,
    }
}

/// Go's `unicode.IsPrint`, approximated with Rust's character classes.
pub(crate) fn is_print(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    !matches!(c, '\u{AD}' | '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}' | '\u{E000}'..='\u{F8FF}' | '\u{F0000}'..)
}

/// Go's `strconv.Quote`.
pub(crate) fn quote(s: &[u8]) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    let mut i = 0;
    while i < s.len() {
        let (c, n) = decode_rune(&s[i..]);
        if c == '\u{FFFD}' && n == 1 && !s[i..].starts_with("\u{FFFD}".as_bytes()) {
            out.push_str(&format!("\\x{:02x}", s[i]));
            i += 1;
            continue;
        }
        i += n;
        push_escaped(&mut out, c, '"');
    }
    out.push('"');
    out
}

fn quote_rune(c: char) -> String {
    let mut out = String::from("'");
    push_escaped(&mut out, c, '\'');
    out.push('\'');
    out
}

fn push_escaped(out: &mut String, c: char, q: char) {
    if c == q || c == '\\' {
        out.push('\\');
        out.push(c);
        return;
    }
    if is_print(c) {
        out.push(c);
        return;
    }
    match c {
        '\x07' => out.push_str("\\a"),
        '\x08' => out.push_str("\\b"),
        '\x0c' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\x0b' => out.push_str("\\v"),
        c if (c as u32) < 0x20 || c == '\x7f' => out.push_str(&format!("\\x{:02x}", c as u32)),
        c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
        c => out.push_str(&format!("\\U{:08x}", c as u32)),
    }
}
