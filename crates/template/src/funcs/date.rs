//! sprig's date functions (`date.go`) on Go's `time.Time`.

use std::sync::OnceLock;
use std::time::Instant;

use super::{Ctx, FnResult, Func, table, text};
use crate::gotime::{self, GoTime, Loc};
use crate::value::Value;

pub(super) static FUNCS: &[(&str, Func)] = table! {
    "now" => () => now;
    "date" => (Str, Any) => date;
    "dateInZone" => (Str, Any, Str) => date_in_zone;
    "date_in_zone" => (Str, Any, Str) => date_in_zone;
    "htmlDate" => (Any) => html_date;
    "htmlDateInZone" => (Any, Str) => html_date_in_zone;
    "dateModify" => (Str, Time) => date_modify;
    "date_modify" => (Str, Time) => date_modify;
    "mustDateModify" => (Str, Time) => must_date_modify;
    "must_date_modify" => (Str, Time) => must_date_modify;
    "ago" => (Any) => ago;
    "duration" => (Any) => duration;
    "durationRound" => (Any) => duration_round;
    "toDate" => (Str, Str) => to_date;
    "mustToDate" => (Str, Str) => must_to_date;
    "unixEpoch" => (Time) => unix_epoch;
};

fn now_time(ctx: &Ctx) -> GoTime {
    static START: OnceLock<Instant> = OnceLock::new();
    let mono = if ctx.now.is_some() {
        None
    } else {
        // Go's monotonic reading counts from process start; this counts from the first use.
        Some(START.get_or_init(Instant::now).elapsed().as_nanos() as i64 + 1)
    };
    GoTime {
        nanos: ctx.now_nanos(),
        loc: Loc::Local,
        mono,
    }
}

fn now(ctx: &mut Ctx, _: Vec<Value>) -> FnResult {
    Ok(Value::Time(now_time(ctx)))
}

/// The `date interface{}` argument of `dateInZone`: a time, an `int`/`int64` of Unix
/// seconds, anything else is the current time.
fn time_arg(ctx: &Ctx, v: &Value) -> GoTime {
    match v {
        Value::Time(t) => t.clone(),
        Value::Int(i) | Value::Int64(i) => GoTime::unix(*i),
        _ => now_time(ctx),
    }
}

fn in_zone(ctx: &Ctx, fmt: &str, d: &Value, zone: &str) -> FnResult {
    let t = time_arg(ctx, d);
    let loc = gotime::load_location(zone).unwrap_or(Loc::Utc);
    Ok(Value::str(t.in_loc(loc).format(fmt)))
}

fn date(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    in_zone(ctx, &text(&a[0]), &a[1], "Local")
}

fn date_in_zone(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    in_zone(ctx, &text(&a[0]), &a[1], &text(&a[2]))
}

fn html_date(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    in_zone(ctx, "2006-01-02", &a[0], "Local")
}

fn html_date_in_zone(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    in_zone(ctx, "2006-01-02", &a[0], &text(&a[1]))
}

fn time_of(v: &Value) -> GoTime {
    match v {
        Value::Time(t) => t.clone(),
        _ => GoTime::zero(),
    }
}

fn date_modify(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let t = time_of(&a[1]);
    Ok(Value::Time(match gotime::parse_duration(&text(&a[0])) {
        Ok(d) => t.add(d),
        Err(_) => t,
    }))
}

fn must_date_modify(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    let d = gotime::parse_duration(&text(&a[0]))?;
    Ok(Value::Time(time_of(&a[1]).add(d)))
}

/// `time.Since(t)` as a Go `Duration` (saturating).
fn since(ctx: &Ctx, t: &GoTime) -> i64 {
    let d = ctx.now_nanos() - t.nanos;
    d.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

fn ago(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let t = match &a[0] {
        Value::Time(t) => t.clone(),
        Value::Int(i) | Value::Int64(i) => GoTime::unix(*i),
        _ => now_time(ctx),
    };
    let d = gotime::duration_round(since(ctx, &t), 1_000_000_000);
    Ok(Value::str(gotime::duration_string(d)))
}

/// `strconv.ParseInt(s, 10, 64)` with the value Go returns on error (0, or the bound on
/// overflow).
fn parse_int10(s: &str) -> i64 {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    if body.is_empty() || !body.bytes().all(|c| c.is_ascii_digit()) {
        return 0;
    }
    match s.parse::<i64>() {
        Ok(v) => v,
        Err(_) if s.starts_with('-') => i64::MIN,
        Err(_) => i64::MAX,
    }
}

fn duration(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    // sprig: a string of seconds or an int64; anything else (a template `int` too) is 0.
    let n = match &a[0] {
        Value::Str(_) => parse_int10(&text(&a[0])),
        Value::Int64(i) => *i,
        _ => 0,
    };
    Ok(Value::str(gotime::duration_string(
        n.wrapping_mul(1_000_000_000),
    )))
}

fn duration_round(ctx: &mut Ctx, a: Vec<Value>) -> FnResult {
    let d: i64 = match &a[0] {
        Value::Str(_) => gotime::parse_duration(&text(&a[0])).unwrap_or(0),
        Value::Int64(i) => *i,
        Value::Time(t) => since(ctx, t),
        _ => 0,
    };
    let u = d.unsigned_abs();
    const SECOND: u64 = 1_000_000_000;
    const MINUTE: u64 = 60 * SECOND;
    const HOUR: u64 = 60 * MINUTE;
    const DAY: u64 = 24 * HOUR;
    const MONTH: u64 = 30 * DAY;
    const YEAR: u64 = 365 * DAY;
    let s = if u > YEAR {
        format!("{}y", u / YEAR)
    } else if u > MONTH {
        format!("{}mo", u / MONTH)
    } else if u > DAY {
        format!("{}d", u / DAY)
    } else if u > HOUR {
        format!("{}h", u / HOUR)
    } else if u > MINUTE {
        format!("{}m", u / MINUTE)
    } else if u > SECOND {
        format!("{}s", u / SECOND)
    } else {
        "0s".into()
    };
    Ok(Value::str(s))
}

fn to_date(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::Time(
        gotime::parse(&text(&a[0]), &text(&a[1])).unwrap_or_else(|_| GoTime::zero()),
    ))
}

fn must_to_date(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::Time(gotime::parse(&text(&a[0]), &text(&a[1]))?))
}

fn unix_epoch(_: &mut Ctx, a: Vec<Value>) -> FnResult {
    Ok(Value::str(time_of(&a[0]).unix_secs().to_string()))
}
