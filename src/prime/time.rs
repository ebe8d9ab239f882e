//! Timestamps from the API, without a date-time dependency.
//!
//! The API sends RFC 3339 text (`2026-10-14T12:00:00Z`, `2026-10-14T12:00:00.123456+00:00`).
//! The CLI only needs "how long until this", so [`parse_rfc3339`] turns the text into a
//! [`SystemTime`]. [`parse_http_date`] reads the IMF-fixdate form of a `Retry-After` header.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds in a day.
const DAY: i64 = 86_400;

/// Longest input quoted back in a [`TimestampError`].
const MAX_QUOTED: usize = 64;

/// A timestamp that could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid timestamp {input:?}: {reason}")]
pub struct TimestampError {
    input: String,
    reason: &'static str,
}

impl TimestampError {
    fn new(input: &str, reason: &'static str) -> Self {
        TimestampError {
            input: input.chars().take(MAX_QUOTED).collect(),
            reason,
        }
    }
}

/// Parses an RFC 3339 timestamp into a [`SystemTime`].
///
/// Accepts `YYYY-MM-DDThh:mm:ss`, a `T`, `t` or space between date and time, an optional
/// fraction of any length (digits past nanoseconds are ignored), and `Z`, `z`, `±hh:mm` or
/// `±hhmm` as the offset. A timestamp without an offset is read as UTC, which is what a Python
/// backend's naive `isoformat()` means. Dates are checked (month lengths, leap years); a leap
/// second (`:60`) is accepted and lands on the next second.
pub(crate) fn parse_rfc3339(input: &str) -> Result<SystemTime, TimestampError> {
    let err = |reason| TimestampError::new(input, reason);
    let mut c = Cursor::new(input.trim());

    let year = c.digits(4).ok_or_else(|| err("expected a 4-digit year"))?;
    c.expect(b'-')
        .ok_or_else(|| err("expected '-' after the year"))?;
    let month = c.digits(2).ok_or_else(|| err("expected a 2-digit month"))?;
    c.expect(b'-')
        .ok_or_else(|| err("expected '-' after the month"))?;
    let day = c.digits(2).ok_or_else(|| err("expected a 2-digit day"))?;
    if !(1..=12).contains(&month) {
        return Err(err("month out of range"));
    }
    if day < 1 || day > days_in_month(year, month) {
        return Err(err("day out of range"));
    }
    match c.next() {
        Some(b'T' | b't' | b' ') => {}
        _ => return Err(err("expected 'T' between date and time")),
    }
    let hour = c.digits(2).ok_or_else(|| err("expected a 2-digit hour"))?;
    c.expect(b':')
        .ok_or_else(|| err("expected ':' after the hour"))?;
    let minute = c.digits(2).ok_or_else(|| err("expected 2-digit minutes"))?;
    c.expect(b':')
        .ok_or_else(|| err("expected ':' after the minutes"))?;
    let second = c.digits(2).ok_or_else(|| err("expected 2-digit seconds"))?;
    if hour > 23 || minute > 59 || second > 60 {
        return Err(err("time of day out of range"));
    }

    let mut nanos: u32 = 0;
    if c.peek() == Some(b'.') || c.peek() == Some(b',') {
        c.next();
        let mut count = 0;
        while let Some(d) = c.peek().filter(u8::is_ascii_digit) {
            c.next();
            if count < 9 {
                nanos = nanos * 10 + u32::from(d - b'0');
            }
            count += 1;
        }
        if count == 0 {
            return Err(err("expected digits after the decimal point"));
        }
        for _ in count..9 {
            nanos *= 10;
        }
    }

    let offset_secs: i64 = match c.next() {
        None => 0,
        Some(b'Z' | b'z') => 0,
        Some(sign @ (b'+' | b'-')) => {
            let oh = c
                .digits(2)
                .ok_or_else(|| err("expected a 2-digit offset hour"))?;
            if c.peek() == Some(b':') {
                c.next();
            }
            let om = c
                .digits(2)
                .ok_or_else(|| err("expected 2-digit offset minutes"))?;
            if oh > 23 || om > 59 {
                return Err(err("offset out of range"));
            }
            let secs = i64::from(oh) * 3600 + i64::from(om) * 60;
            if sign == b'+' {
                secs
            } else {
                -secs
            }
        }
        Some(_) => return Err(err("expected 'Z' or an offset after the time")),
    };
    if !c.at_end() {
        return Err(err("unexpected text after the timestamp"));
    }

    let secs = days_from_civil(year, month, day) * DAY
        + i64::from(hour) * 3600
        + i64::from(minute) * 60
        + i64::from(second)
        - offset_secs;
    from_unix(secs, nanos).ok_or_else(|| err("out of the range this system can represent"))
}

/// Parses an HTTP date in the IMF-fixdate form (`Sun, 06 Nov 1994 08:49:37 GMT`), the form a
/// `Retry-After` header uses when it is not a number of seconds. Returns `None` otherwise.
pub(crate) fn parse_http_date(input: &str) -> Option<SystemTime> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let s = input.trim();
    let (_weekday, rest) = s.split_once(", ")?;
    let mut parts = rest.split(' ');
    let day = parse_fixed(parts.next()?, 2)?;
    let month_name = parts.next()?;
    let month = MONTHS.iter().position(|m| *m == month_name)? as u32 + 1;
    let year = parse_fixed(parts.next()?, 4)?;
    let mut hms = parts.next()?.split(':');
    let hour = parse_fixed(hms.next()?, 2)?;
    let minute = parse_fixed(hms.next()?, 2)?;
    let second = parse_fixed(hms.next()?, 2)?;
    if hms.next().is_some() || parts.next()? != "GMT" || parts.next().is_some() {
        return None;
    }
    if day < 1 || day > days_in_month(year, month) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let secs = days_from_civil(year, month, day) * DAY
        + i64::from(hour) * 3600
        + i64::from(minute) * 60
        + i64::from(second);
    from_unix(secs, 0)
}

/// How long from `now` until `deadline`; zero when it has passed.
pub(crate) fn until(deadline: SystemTime, now: SystemTime) -> Duration {
    deadline.duration_since(now).unwrap_or(Duration::ZERO)
}

/// `len` ASCII digits and nothing else, as a number.
fn parse_fixed(s: &str, len: usize) -> Option<u32> {
    if s.len() != len || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Unix seconds plus nanoseconds as a [`SystemTime`], if representable.
fn from_unix(secs: i64, nanos: u32) -> Option<SystemTime> {
    let base = if secs >= 0 {
        UNIX_EPOCH.checked_add(Duration::from_secs(secs.unsigned_abs()))?
    } else {
        UNIX_EPOCH.checked_sub(Duration::from_secs(secs.unsigned_abs()))?
    };
    base.checked_add(Duration::from_nanos(u64::from(nanos)))
}

fn is_leap(year: u32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (the well-known era-based algorithm:
/// shift the year to start in March so the leap day is last, then count 400-year eras).
fn days_from_civil(year: u32, month: u32, day: u32) -> i64 {
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400; // 0..=399
    let m = i64::from(month);
    let mp = if m > 2 { m - 3 } else { m + 9 }; // March = 0
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1; // 0..=365
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // 0..=146096
    era * 146_097 + doe - 719_468
}

/// A byte cursor over ASCII text.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(s: &'a str) -> Self {
        Cursor {
            bytes: s.as_bytes(),
            pos: 0,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        Some(b)
    }

    fn at_end(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    fn expect(&mut self, want: u8) -> Option<()> {
        (self.next()? == want).then_some(())
    }

    /// Exactly `n` ASCII digits as a number.
    fn digits(&mut self, n: usize) -> Option<u32> {
        let mut v = 0u32;
        for _ in 0..n {
            let b = self.next().filter(u8::is_ascii_digit)?;
            v = v * 10 + u32::from(b - b'0');
        }
        Some(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn rfc3339_forms() {
        let at = |s: u64| UNIX_EPOCH + Duration::from_secs(s);
        let t = 1_791_979_200; // 2026-10-14T12:00:00Z
        assert_eq!(parse_rfc3339("2026-10-14T12:00:00Z").unwrap(), at(t));
        assert_eq!(parse_rfc3339("2026-10-14t12:00:00z").unwrap(), at(t));
        assert_eq!(parse_rfc3339("2026-10-14 12:00:00+00:00").unwrap(), at(t));
        assert_eq!(parse_rfc3339("2026-10-14T14:30:00+02:30").unwrap(), at(t));
        assert_eq!(parse_rfc3339("2026-10-14T07:00:00-0500").unwrap(), at(t));
        assert_eq!(
            parse_rfc3339("2026-10-14T12:00:00").unwrap(),
            at(t),
            "naive is UTC"
        );
        assert_eq!(
            parse_rfc3339("2026-10-14T12:00:00.5Z").unwrap(),
            at(t) + Duration::from_millis(500)
        );
        assert_eq!(
            parse_rfc3339("2026-10-14T12:00:00.123456789123+00:00").unwrap(),
            at(t) + Duration::from_nanos(123_456_789)
        );
        assert_eq!(
            parse_rfc3339("2024-02-29T23:59:59Z").unwrap(),
            at(1_709_251_199)
        );
        assert_eq!(
            parse_rfc3339("1969-12-31T23:00:00Z").unwrap(),
            UNIX_EPOCH - Duration::from_secs(3600)
        );
        for bad in [
            "",
            "2026-10-14",
            "2026-13-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2026-04-31T00:00:00Z",
            "2026-10-14T24:00:00Z",
            "2026-10-14T12:00:00.Z",
            "2026-10-14T12:00:00+25:00",
            "2026-10-14T12:00:00Zjunk",
            "26-10-14T12:00:00Z",
            "2026-10-14T12:00:00\u{1b}",
            "２０２６-10-14T12:00:00Z",
        ] {
            assert!(parse_rfc3339(bad).is_err(), "{bad:?}");
        }
        let err = parse_rfc3339("2026-13-01T00:00:00Z").unwrap_err();
        assert!(err.to_string().contains("month"), "{err}");
    }

    #[test]
    fn http_dates_for_retry_after() {
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(UNIX_EPOCH + Duration::from_secs(784_111_777))
        );
        assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), None);
        assert_eq!(parse_http_date("120"), None);
    }

    /// Days since 1970-01-01 to a civil date (test-only inverse of the parser's arithmetic).
    fn civil_from_days(z: i64) -> (i64, u32, u32) {
        let z = z + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        (yoe + era * 400 + i64::from(m <= 2), m, d)
    }

    proptest::proptest! {
        #[test]
        fn rfc3339_round_trips(secs in 0i64..253_402_300_800, nanos in 0u32..1_000_000_000, off_min in -1439i32..1440) {
            let local = secs + i64::from(off_min) * 60;
            proptest::prop_assume!((0..253_402_300_800).contains(&local));
            let (y, mo, d) = civil_from_days(local.div_euclid(86_400));
            let sod = local.rem_euclid(86_400);
            let sign = if off_min < 0 { '-' } else { '+' };
            let text = format!(
                "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}{sign}{:02}:{:02}",
                sod / 3600, sod / 60 % 60, sod % 60, off_min.abs() / 60, off_min.abs() % 60
            );
            let expected = UNIX_EPOCH + Duration::new(secs as u64, nanos);
            proptest::prop_assert_eq!(parse_rfc3339(&text).unwrap(), expected);
        }

        #[test]
        fn rfc3339_never_panics(s in "\\PC{0,40}") {
            let _ = parse_rfc3339(&s);
            let _ = parse_http_date(&s);
        }
    }
}
