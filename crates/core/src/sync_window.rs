//! `spec.syncWindows`: cron-scheduled windows (UTC) that allow or deny periodic refreshes.
//!
//! Upstream parses schedules with robfig/cron v3's five-field parser plus descriptors; this
//! module accepts the same language: minute hour day-of-month month day-of-week, each `*` or
//! `?`, values, lists, ranges and `/steps` (`a/n` runs from `a` to the maximum), month names
//! `jan`-`dec` and weekday names `sun`-`sat` in any case (`MON-FRI`), weekdays 0-6; or a
//! descriptor (`@yearly`/`@annually`, `@monthly`, `@weekly`, `@daily`/`@midnight`, `@hourly`).
//! No cron crate speaks exactly that (the `cron` crate wants a seconds field, `croner` also
//! accepts `L`, `W` and `#`), hence this small parser. A window opens at each time the
//! schedule fires and stays open for `duration`, both ends included, as upstream's. As
//! upstream, schedules that do not parse are ignored; `@every` has no fixed start and is
//! ignored too.

use std::time::Duration;

use eso_api::{SyncWindowKind, SyncWindows};
use k8s_openapi::jiff::Timestamp;
use k8s_openapi::jiff::tz::TimeZone;

/// A parsed 5-field cron schedule: the allowed values of each field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    minutes: Vec<bool>,
    hours: Vec<bool>,
    days: Vec<bool>,
    months: Vec<bool>,
    weekdays: Vec<bool>,
    /// Cron's rule: when both day fields are restricted, either may match.
    days_restricted: bool,
    weekdays_restricted: bool,
}

const MONTHS: &[&str] = &[
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const WEEKDAYS: &[&str] = &["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

/// One value of a field: a number, or a name from `names` (whose first entry is `min`).
fn value(token: &str, min: u32, names: &[&str]) -> Option<u32> {
    if let Ok(v) = token.parse::<u32>() {
        return Some(v);
    }
    let lower = token.to_ascii_lowercase();
    names
        .iter()
        .position(|n| *n == lower)
        .map(|i| min + i as u32)
}

fn parse_field(field: &str, min: u32, max: u32, names: &[&str]) -> Option<(Vec<bool>, bool)> {
    let mut allowed = vec![false; (max + 1) as usize];
    let restricted = field != "*" && field != "?";
    for part in field.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (r, s.parse::<u32>().ok().filter(|s| *s > 0)?),
            None => (part, 1),
        };
        let (lo, hi) = if range == "*" || range == "?" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a, min, names)?, value(b, min, names)?)
        } else {
            let v = value(range, min, names)?;
            (v, if part.contains('/') { max } else { v })
        };
        if lo < min || hi > max || lo > hi {
            return None;
        }
        let mut v = lo;
        while v <= hi {
            allowed[v as usize] = true;
            v += step;
        }
    }
    Some((allowed, restricted))
}

impl Cron {
    /// Parses a schedule; `None` when it is not one this module understands.
    #[must_use]
    pub fn parse(schedule: &str) -> Option<Self> {
        let expr = match schedule.trim() {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            other => other,
        };
        let fields: Vec<&str> = expr.split_whitespace().collect();
        let [m, h, dom, mon, dow] = fields.as_slice() else {
            return None;
        };
        let (minutes, _) = parse_field(m, 0, 59, &[])?;
        let (hours, _) = parse_field(h, 0, 23, &[])?;
        let (days, days_restricted) = parse_field(dom, 1, 31, &[])?;
        let (months, _) = parse_field(mon, 1, 12, MONTHS)?;
        // robfig's weekdays are 0-6 (Sunday is 0 only).
        let (weekdays, weekdays_restricted) = parse_field(dow, 0, 6, WEEKDAYS)?;
        Some(Self {
            minutes,
            hours,
            days,
            months,
            weekdays,
            days_restricted,
            weekdays_restricted,
        })
    }

    /// Whether the schedule fires at the minute containing `t` (UTC).
    #[must_use]
    pub fn fires_at(&self, t: Timestamp) -> bool {
        let dt = t.to_zoned(TimeZone::UTC);
        let day_ok = self.days[dt.day() as usize];
        let weekday_ok = self.weekdays[dt.weekday().to_sunday_zero_offset() as usize];
        let day_match = match (self.days_restricted, self.weekdays_restricted) {
            (true, true) => day_ok || weekday_ok,
            _ => day_ok && weekday_ok,
        };
        self.minutes[dt.minute() as usize]
            && self.hours[dt.hour() as usize]
            && self.months[dt.month() as usize]
            && day_match
    }

    /// Whether a window opened by this schedule, lasting `duration`, contains `now`.
    #[must_use]
    pub fn window_contains(&self, duration: Duration, now: Timestamp) -> bool {
        // Windows open on whole minutes; look back over every minute the window could have
        // started in (bounded to one year of minutes).
        let minutes = (duration.as_secs().div_ceil(60)).min(366 * 24 * 60);
        let now_minute = now.as_second() - now.as_second().rem_euclid(60);
        (0..=minutes as i64).any(|back| {
            let start = now_minute - back * 60;
            Timestamp::from_second(start).is_ok_and(|t| {
                self.fires_at(t) && now.as_second() <= start + duration.as_secs() as i64
            })
        })
    }
}

/// Whether sync windows allow a periodic refresh at `now`. No windows: allowed. As upstream,
/// a window whose schedule does not parse never opens: an allow list of only such windows
/// blocks, a deny list of only such windows permits.
#[must_use]
pub fn allows(windows: Option<&SyncWindows>, now: Timestamp) -> bool {
    let Some(windows) = windows.filter(|w| !w.windows.is_empty()) else {
        return true;
    };
    let parsed: Vec<(Cron, Duration)> = windows
        .windows
        .iter()
        .filter_map(|w| {
            let cron = Cron::parse(&w.schedule)?;
            let duration = eso_api::duration::parse_go_duration(&w.duration).ok()?;
            Some((cron, duration))
        })
        .collect();
    let inside = parsed.iter().any(|(cron, d)| cron.window_contains(*d, now));
    match windows.kind {
        SyncWindowKind::Allow => inside,
        SyncWindowKind::Deny => !inside,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eso_api::SyncWindow;

    fn utc(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn parses_fields_lists_ranges_and_steps() {
        let c = Cron::parse("*/15 9-17 * * 1-5").unwrap();
        assert!(c.fires_at(utc("2026-11-27T09:30:00Z"))); // a Friday
        assert!(!c.fires_at(utc("2026-11-27T09:31:00Z")));
        assert!(!c.fires_at(utc("2026-11-28T09:30:00Z"))); // Saturday
        assert!(!c.fires_at(utc("2026-11-27T18:00:00Z")));
        assert!(
            Cron::parse("@daily")
                .unwrap()
                .fires_at(utc("2026-01-05T00:00:30Z"))
        );
        // Names, as robfig's parser reads them: any case, in ranges and lists.
        let weekdays = Cron::parse("0 9 * * MON-FRI").unwrap();
        assert!(weekdays.fires_at(utc("2026-11-27T09:00:00Z"))); // a Friday
        assert!(!weekdays.fires_at(utc("2026-11-28T09:00:00Z"))); // Saturday
        let months = Cron::parse("0 0 1 jan,Jul ?").unwrap();
        assert!(months.fires_at(utc("2026-07-01T00:00:00Z")));
        assert!(!months.fires_at(utc("2026-08-01T00:00:00Z")));
        assert!(
            Cron::parse("0 0 * * sun")
                .unwrap()
                .fires_at(utc("2026-11-29T00:00:00Z"))
        );
        // `a/n` runs from a to the end of the range.
        let from_ten = Cron::parse("10/20 * * * *").unwrap();
        assert!(from_ten.fires_at(utc("2026-11-27T09:50:00Z")));
        assert!(!from_ten.fires_at(utc("2026-11-27T09:00:00Z")));
        for bad in [
            "",
            "* * * *",
            "61 * * * *",
            "a b c d e",
            "@every 5m",
            "*/0 * * * *",
            // robfig's weekdays stop at 6, and it has no L, W or #.
            "0 0 * * 7",
            "0 0 L * *",
            "0 0 * * 1#2",
            "0 0 * * FRIDAY",
        ] {
            assert!(Cron::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn day_of_month_or_day_of_week_when_both_are_set() {
        let c = Cron::parse("0 0 1 * 1").unwrap();
        assert!(c.fires_at(utc("2026-12-01T00:00:00Z"))); // the 1st (a Tuesday)
        assert!(c.fires_at(utc("2026-11-30T00:00:00Z"))); // a Monday
        assert!(!c.fires_at(utc("2026-12-02T00:00:00Z")));
    }

    fn windows(kind: SyncWindowKind, schedule: &str, duration: &str) -> SyncWindows {
        SyncWindows {
            kind,
            windows: vec![SyncWindow {
                schedule: schedule.into(),
                duration: duration.into(),
            }],
        }
    }

    #[test]
    fn allow_and_deny_windows() {
        let allow = windows(SyncWindowKind::Allow, "0 2 * * *", "1h");
        assert!(allows(Some(&allow), utc("2026-11-27T02:00:00Z")));
        assert!(allows(Some(&allow), utc("2026-11-27T02:59:59Z")));
        // Both ends are inside, as upstream's windows.
        assert!(allows(Some(&allow), utc("2026-11-27T03:00:00Z")));
        assert!(!allows(Some(&allow), utc("2026-11-27T03:00:01Z")));
        assert!(!allows(Some(&allow), utc("2026-11-27T01:59:00Z")));
        let deny = windows(SyncWindowKind::Deny, "0 2 * * *", "1h");
        assert!(!allows(Some(&deny), utc("2026-11-27T02:30:00Z")));
        assert!(allows(Some(&deny), utc("2026-11-27T04:00:00Z")));
        // A window crossing midnight.
        let late = windows(SyncWindowKind::Allow, "30 23 * * *", "1h");
        assert!(allows(Some(&late), utc("2026-11-28T00:15:00Z")));
        assert!(allows(None, utc("2026-11-27T00:00:00Z")));
        // A window whose schedule does not parse never opens, as upstream's.
        assert!(!allows(
            Some(&windows(SyncWindowKind::Allow, "nonsense", "1h")),
            utc("2026-11-27T05:00:00Z")
        ));
        assert!(allows(
            Some(&windows(SyncWindowKind::Deny, "nonsense", "1h")),
            utc("2026-11-27T05:00:00Z")
        ));
        let no_windows = SyncWindows {
            kind: SyncWindowKind::Allow,
            windows: Vec::new(),
        };
        assert!(allows(Some(&no_windows), utc("2026-11-27T05:00:00Z")));
        // Day names in a deny window.
        let weekdays = windows(SyncWindowKind::Deny, "0 8 * * Mon-Fri", "10h");
        assert!(!allows(Some(&weekdays), utc("2026-11-27T12:00:00Z"))); // a Friday
        assert!(allows(Some(&weekdays), utc("2026-11-28T12:00:00Z"))); // Saturday
    }
}
