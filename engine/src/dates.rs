//! Dates as people type them (td's `internal/dateparse`): `2026-03-01`, `today`, `tomorrow`,
//! `monday`…`sunday` (the next one, never today), `next-week`/`next week` (next Monday),
//! `next-month`/`next month` (the 1st), `+3d`, `+2w`, `+1m`. And the relative dates of TDQ
//! (`-7d`, `this_week`, …).
//!
//! Month arithmetic follows td exactly: like Go's `AddDate`, a day past the month's end rolls
//! into the next month (Jan 31 + 1 month is Mar 3, or Mar 2 in a leap year), where chrono's
//! `checked_add_months` would clamp to Feb 28. That rule, and td's handful of words, is why
//! this is written out here; chrono does the calendar.

use chrono::{Datelike, Duration, NaiveDate, Weekday};

use crate::error::{invalid, Result};

/// Adds months as Go's `time.AddDate(0, n, 0)` does: the day is kept and overflow rolls on.
pub fn add_months(d: NaiveDate, n: i64) -> NaiveDate {
    let total = d.year() as i64 * 12 + d.month0() as i64 + n;
    let (y, m0) = (total.div_euclid(12) as i32, total.rem_euclid(12) as u32);
    let first = NaiveDate::from_ymd_opt(y, m0 + 1, 1).unwrap_or(d);
    first + Duration::days(d.day() as i64 - 1)
}

fn weekday(s: &str) -> Option<Weekday> {
    Some(match s {
        "sunday" => Weekday::Sun,
        "monday" => Weekday::Mon,
        "tuesday" => Weekday::Tue,
        "wednesday" => Weekday::Wed,
        "thursday" => Weekday::Thu,
        "friday" => Weekday::Fri,
        "saturday" => Weekday::Sat,
        _ => return None,
    })
}

/// The next `day` after `today` (a week ahead when today is that day).
fn next_weekday(today: NaiveDate, day: Weekday) -> NaiveDate {
    let ahead = (day.num_days_from_sunday() as i64 - today.weekday().num_days_from_sunday() as i64)
        .rem_euclid(7);
    today + Duration::days(if ahead == 0 { 7 } else { ahead })
}

/// td's date input (`td defer <id> +7d`, `--due friday`) as `YYYY-MM-DD`, relative to `today`.
pub fn parse_date_from(input: &str, today: NaiveDate) -> Result<String> {
    let s = input.trim().to_lowercase();
    if s.is_empty() {
        return Err(invalid("empty date input"));
    }
    if let Ok(d) = NaiveDate::parse_from_str(&s, "%Y-%m-%d") {
        if s.len() == 10 {
            return Ok(d.format("%Y-%m-%d").to_string());
        }
    }
    let day = match s.as_str() {
        "today" => Some(today),
        "tomorrow" => Some(today + Duration::days(1)),
        "next-week" | "next week" => Some(next_weekday(today, Weekday::Mon)),
        "next-month" | "next month" => Some(add_months(today.with_day(1).unwrap_or(today), 1)),
        other => weekday(other).map(|w| next_weekday(today, w)),
    };
    if let Some(d) = day {
        return Ok(d.format("%Y-%m-%d").to_string());
    }
    if let Some(rest) = s.strip_prefix('+').filter(|r| r.len() >= 2) {
        let (num, unit) = rest.split_at(rest.len() - 1);
        if let Ok(n) = num.parse::<i64>() {
            if n > 36_500 {
                return Err(invalid(format!("{input} is too far ahead")));
            }
            let d = match unit {
                "d" => today + Duration::days(n),
                "w" => today + Duration::days(n * 7),
                "m" => add_months(today, n),
                u => {
                    return Err(invalid(format!(
                        "unknown relative unit \"{u}\" in \"{s}\" (use d, w, or m)"
                    )))
                }
            };
            return Ok(d.format("%Y-%m-%d").to_string());
        }
    }
    Err(invalid(format!(
        "unrecognized date format: \"{s}\" (use YYYY-MM-DD, today, tomorrow, a weekday, next-week, next-month, or +Nd/+Nw/+Nm)"
    )))
}

/// The local date today.
pub fn today() -> NaiveDate {
    chrono::Local::now().date_naive()
}

/// [`parse_date_from`] relative to the local date today.
pub fn parse_date(input: &str) -> Result<String> {
    parse_date_from(input, chrono::Local::now().date_naive())
}

/// A range of days: on or after `from`, before `until` (`YYYY-MM-DD`, either open).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DayRange {
    /// First day included.
    pub from: Option<String>,
    /// First day excluded.
    pub until: Option<String>,
}

/// One day of a `--created`/`--updated`/`--closed` range: `YYYY-MM-DD`, a natural date
/// (`today`, `monday`, `+3d`) or a TDQ-style offset into the past (`-7d`, `-2w`, `-1m`).
fn range_day(s: &str, today: NaiveDate) -> Result<NaiveDate> {
    let s = s.trim();
    if let Some(rest) = s.strip_prefix('-') {
        let (num, unit) = rest.split_at(rest.len().saturating_sub(1));
        if let Ok(n) = num.parse::<i64>() {
            let n = n.min(36_500);
            return match unit {
                "d" => Ok(today - Duration::days(n)),
                "w" => Ok(today - Duration::days(n * 7)),
                "m" => Ok(add_months(today, -n)),
                _ => Err(invalid(format!("invalid date '{s}': use d, w or m"))),
            };
        }
    }
    if s == "yesterday" {
        return Ok(today - Duration::days(1));
    }
    let d = parse_date_from(s, today)?;
    NaiveDate::parse_from_str(&d, "%Y-%m-%d").map_err(|_| invalid(format!("invalid date '{s}'")))
}

/// td's date filters for `td list --created/--updated/--closed`: `after:D`, `before:D`, `D..`,
/// `..D`, `D..E` (inclusive of both days), or a single day `D`.
pub fn parse_day_range(s: &str, today: NaiveDate) -> Result<DayRange> {
    let day = |d: NaiveDate| d.format("%Y-%m-%d").to_string();
    let next = |d: NaiveDate| day(d + Duration::days(1));
    let s = s.trim();
    let (from, until) = if let Some(d) = s.strip_prefix("after:") {
        (Some(day(range_day(d, today)?)), None)
    } else if let Some(d) = s.strip_prefix("before:") {
        (None, Some(day(range_day(d, today)?)))
    } else if let Some((a, b)) = s.split_once("..") {
        let from = (!a.trim().is_empty())
            .then(|| range_day(a, today).map(day))
            .transpose()?;
        let until = (!b.trim().is_empty())
            .then(|| range_day(b, today).map(next))
            .transpose()?;
        (from, until)
    } else {
        let d = range_day(s, today)?;
        (Some(day(d)), Some(next(d)))
    };
    Ok(DayRange { from, until })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    /// A fixed "today" and what each input means, month ends and leap days included (td's
    /// rules: Go's AddDate rolls a day past a month's end into the next month).
    #[test]
    fn natural_dates_table() {
        let cases: &[(&str, &str, &str)] = &[
            // (today, input, expected)
            ("2026-11-24", "2026-12-01", "2026-12-01"),
            ("2026-11-24", "today", "2026-11-24"),
            ("2026-11-24", "Tomorrow", "2026-11-25"),
            ("2026-11-24", "+7d", "2026-12-01"),
            ("2026-11-24", "+0d", "2026-11-24"),
            ("2026-11-24", "+2w", "2026-12-08"),
            ("2026-11-24", "+1m", "2026-12-24"),
            ("2026-11-24", "+2m", "2027-01-24"),
            // 2026-11-24 is a Tuesday.
            ("2026-11-24", "monday", "2026-11-30"),
            ("2026-11-24", "tuesday", "2026-12-01"),
            ("2026-11-24", "wednesday", "2026-11-25"),
            ("2026-11-24", "sunday", "2026-11-29"),
            ("2026-11-24", "next-week", "2026-11-30"),
            ("2026-11-24", "next week", "2026-11-30"),
            ("2026-11-30", "next-week", "2026-12-07"),
            ("2026-11-24", "next-month", "2026-12-01"),
            ("2026-12-31", "next-month", "2027-01-01"),
            // Month ends roll over as in Go.
            ("2026-01-31", "+1m", "2026-03-03"),
            ("2028-01-31", "+1m", "2028-03-02"),
            ("2026-03-31", "+1m", "2026-05-01"),
            ("2026-12-31", "+1d", "2027-01-01"),
            // Leap days.
            ("2028-02-28", "+1d", "2028-02-29"),
            ("2028-02-29", "+1d", "2028-03-01"),
            ("2027-02-28", "+1d", "2027-03-01"),
            ("2028-02-29", "+12m", "2029-03-01"),
            ("2028-02-29", "+1w", "2028-03-07"),
            ("2026-11-24", "2028-02-29", "2028-02-29"),
        ];
        for (today, input, want) in cases {
            assert_eq!(
                parse_date_from(input, d(today)).unwrap(),
                *want,
                "{input} from {today}"
            );
        }
        let r = |s: &str| parse_day_range(s, d("2026-11-24")).unwrap();
        let range = |a: Option<&str>, b: Option<&str>| DayRange {
            from: a.map(String::from),
            until: b.map(String::from),
        };
        assert_eq!(
            r("2026-11-01"),
            range(Some("2026-11-01"), Some("2026-11-02"))
        );
        assert_eq!(r("after:2026-11-01"), range(Some("2026-11-01"), None));
        assert_eq!(r("before:2026-11-01"), range(None, Some("2026-11-01")));
        assert_eq!(r("2026-11-01.."), range(Some("2026-11-01"), None));
        assert_eq!(r("..2026-11-01"), range(None, Some("2026-11-02")));
        assert_eq!(
            r("2026-10-30..2026-11-01"),
            range(Some("2026-10-30"), Some("2026-11-02"))
        );
        assert_eq!(r("-7d.."), range(Some("2026-11-17"), None));
        assert_eq!(r("today"), range(Some("2026-11-24"), Some("2026-11-25")));
        assert!(parse_day_range("after:soon", d("2026-11-24")).is_err());
        for bad in [
            "",
            "someday",
            "+3y",
            "2027-02-29",
            "2026-13-01",
            "+x",
            "next year",
            "+99999999d",
        ] {
            assert!(
                parse_date_from(bad, d("2026-11-24")).is_err(),
                "{bad:?} is refused"
            );
        }
    }
}
