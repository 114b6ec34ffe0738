//! Time as the driver gives it: [`Timestamp`] is an opaque count of microseconds since an origin the driver picks.
//!
//! The core never reads a clock. Every input and command takes `now: Timestamp`, and every deadline the core asks
//! for is a `Timestamp` on the same scale. Wall-clock formatting for the wire ([`format_iso8601_millis`]) works on a
//! unix-millisecond value the driver passes in separately.

use alloc::string::String;
use core::fmt;
use core::ops::{Add, AddAssign, Sub};
use core::time::Duration;

/// A point in time: microseconds since an origin chosen by the driver (process start, the unix epoch, a simulation's
/// zero). Only differences and comparisons between timestamps from the same driver mean anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The origin.
    pub const ZERO: Timestamp = Timestamp(0);
    /// The far future: a deadline that never comes.
    pub const MAX: Timestamp = Timestamp(u64::MAX);

    /// A timestamp `micros` microseconds after the origin.
    pub const fn from_micros(micros: u64) -> Self {
        Timestamp(micros)
    }

    /// A timestamp `millis` milliseconds after the origin (saturating).
    pub const fn from_millis(millis: u64) -> Self {
        Timestamp(millis.saturating_mul(1000))
    }

    /// Microseconds since the origin.
    pub const fn as_micros(self) -> u64 {
        self.0
    }

    /// Whole milliseconds since the origin.
    pub const fn as_millis(self) -> u64 {
        self.0 / 1000
    }

    /// `self - earlier`, or zero when `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Timestamp) -> Duration {
        Duration::from_micros(self.0.saturating_sub(earlier.0))
    }

    /// `self + d`, saturating at [`Timestamp::MAX`].
    pub fn saturating_add(self, d: Duration) -> Timestamp {
        let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        Timestamp(self.0.saturating_add(micros))
    }

    /// `self - d`, saturating at [`Timestamp::ZERO`].
    pub fn saturating_sub(self, d: Duration) -> Timestamp {
        let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        Timestamp(self.0.saturating_sub(micros))
    }
}

impl Add<Duration> for Timestamp {
    type Output = Timestamp;
    /// Saturating: a deadline past the end of time is [`Timestamp::MAX`].
    fn add(self, rhs: Duration) -> Timestamp {
        self.saturating_add(rhs)
    }
}

impl AddAssign<Duration> for Timestamp {
    fn add_assign(&mut self, rhs: Duration) {
        *self = self.saturating_add(rhs);
    }
}

impl Sub<Timestamp> for Timestamp {
    type Output = Duration;
    /// Saturating: zero when `rhs` is later than `self`.
    fn sub(self, rhs: Timestamp) -> Duration {
        self.saturating_duration_since(rhs)
    }
}

impl Sub<Duration> for Timestamp {
    type Output = Timestamp;
    fn sub(self, rhs: Duration) -> Timestamp {
        self.saturating_sub(rhs)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:06}s", self.0 / 1_000_000, self.0 % 1_000_000)
    }
}

/// Milliseconds since 1970-01-01T00:00:00Z of the last millisecond of 9999-12-31, the last instant
/// [`format_iso8601_millis`] formats.
pub const MAX_ISO8601_UNIX_MILLIS: u64 = 253_402_300_799_999;

/// Formats unix milliseconds as ISO-8601 UTC with milliseconds, e.g. `2024-01-01T12:00:00.000Z`.
///
/// Correct for every instant from 1970 to the end of 9999; later values are clamped to
/// [`MAX_ISO8601_UNIX_MILLIS`] so the output always has a four-digit year.
pub fn format_iso8601_millis(unix_millis: u64) -> String {
    let mut out = String::with_capacity(24);
    write_iso8601_millis(&mut out, unix_millis).expect("writing to a String cannot fail");
    out
}

/// [`format_iso8601_millis`] into any [`fmt::Write`].
pub fn write_iso8601_millis(out: &mut impl fmt::Write, unix_millis: u64) -> fmt::Result {
    let ms = unix_millis.min(MAX_ISO8601_UNIX_MILLIS);
    let millis = ms % 1000;
    let secs = ms / 1000;
    let days = secs / 86_400;
    let sod = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    write!(
        out,
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        sod / 3600,
        (sod % 3600) / 60,
        sod % 60
    )
}

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian calendar (Howard Hinnant's algorithm,
/// restricted to non-negative day counts).
pub(crate) fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// (year, month, day) in the proleptic Gregorian calendar → days since 1970-01-01 (negative before it); the inverse
/// of [`civil_from_days`] (Howard Hinnant's `days_from_civil`). `month` is 1 to 12 and `day` 1 to 31; the caller
/// checks that the day exists in the month. Used to read HTTP dates (`http_client::retry_after`).
pub(crate) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400); // [0, 399]
    let mp = i64::from((month + 9) % 12); // March = 0 … February = 11
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe - 719_468
}

/// Unix seconds as a float (`1700000000.123`), the timestamp shape of the channel-payload dialect's errors.
pub fn unix_seconds_f64(unix_millis: u64) -> f64 {
    unix_millis as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso8601_known_values() {
        let cases: &[(u64, &str)] = &[
            (0, "1970-01-01T00:00:00.000Z"),
            (1, "1970-01-01T00:00:00.001Z"),
            (951_782_400_000, "2000-02-29T00:00:00.000Z"),
            (951_868_799_999, "2000-02-29T23:59:59.999Z"),
            (1_704_110_400_000, "2024-01-01T12:00:00.000Z"),
            (1_709_164_800_000, "2024-02-29T00:00:00.000Z"),
            (4_107_542_400_000, "2100-03-01T00:00:00.000Z"),
            (4_107_456_000_000, "2100-02-28T00:00:00.000Z"),
            (2_147_483_647_000, "2038-01-19T03:14:07.000Z"),
            (MAX_ISO8601_UNIX_MILLIS, "9999-12-31T23:59:59.999Z"),
            (u64::MAX, "9999-12-31T23:59:59.999Z"),
        ];
        for &(ms, want) in cases {
            assert_eq!(format_iso8601_millis(ms), want, "{ms}");
        }
    }

    /// Every day from 1970 to 9999 follows the previous one by exactly one calendar day.
    #[test]
    fn iso8601_days_are_contiguous() {
        let mut prev = civil_from_days(0);
        assert_eq!(prev, (1970, 1, 1));
        for day in 1..=(MAX_ISO8601_UNIX_MILLIS / 86_400_000) {
            let (y, m, d) = civil_from_days(day);
            // ... and `days_from_civil` takes every one of them back to its day number.
            assert_eq!(
                days_from_civil(y as i64, m as u32, d as u32),
                day as i64,
                "{y}-{m}-{d}"
            );
            let (py, pm, pd) = prev;
            let month_len = match pm {
                1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
                4 | 6 | 9 | 11 => 30,
                _ if (py % 4 == 0 && py % 100 != 0) || py % 400 == 0 => 29,
                _ => 28,
            };
            let expected = if pd < month_len {
                (py, pm, pd + 1)
            } else if pm < 12 {
                (py, pm + 1, 1)
            } else {
                (py + 1, 1, 1)
            };
            assert_eq!((y, m, d), expected, "day {day}");
            prev = (y, m, d);
        }
        assert_eq!(prev, (9999, 12, 31));
    }

    /// Known answers from Python's `calendar.timegm(...) // 86400`, including days before 1970.
    #[test]
    fn days_from_civil_known_values() {
        let cases: &[((i64, u32, u32), i64)] = &[
            ((1970, 1, 1), 0),
            ((1969, 12, 31), -1),
            ((1600, 1, 1), -135_140),
            ((1994, 11, 6), 9_075),
            ((2000, 2, 29), 11_016),
            ((2000, 3, 1), 11_017),
            ((2038, 1, 19), 24_855),
            ((9999, 12, 31), 2_932_896),
        ];
        for &((y, m, d), want) in cases {
            assert_eq!(days_from_civil(y, m, d), want, "{y}-{m}-{d}");
        }
    }

    #[test]
    fn timestamp_arithmetic_saturates() {
        let t = Timestamp::from_millis(1500);
        assert_eq!(t.as_micros(), 1_500_000);
        assert_eq!(t + Duration::from_millis(500), Timestamp::from_millis(2000));
        assert_eq!(Timestamp::MAX + Duration::from_secs(1), Timestamp::MAX);
        assert_eq!(t - Timestamp::from_millis(2000), Duration::ZERO);
        assert_eq!(Timestamp::from_millis(2000) - t, Duration::from_millis(500));
        assert_eq!(t - Duration::from_secs(10), Timestamp::ZERO);
    }
}
