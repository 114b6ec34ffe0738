//! The `Retry-After` header (RFC 9110 §10.2.3): either delta-seconds (`120`) or an HTTP-date
//! (`Sun, 06 Nov 1994 08:49:37 GMT`), turned into a delay from `now`.
//!
//! [`RetryAfter::parse`] reads the header value; [`RetryAfter::delay`] turns it into a wait. HTTP dates are wall
//! clock, so `delay` reads `now` as microseconds since the unix epoch, which is the origin every Switchboard driver
//! uses (PROTOCOL appendix, "Timestamps"). A date in the past means "now": the delay is zero, never negative.
//!
//! All three date forms of RFC 9110 §5.6.7 are accepted:
//!
//! | form | example |
//! |---|---|
//! | IMF-fixdate (the one senders must use) | `Sun, 06 Nov 1994 08:49:37 GMT` |
//! | obsolete RFC 850 | `Sunday, 06-Nov-94 08:49:37 GMT` |
//! | obsolete ANSI C `asctime()` | `Sun Nov  6 08:49:37 1994` |
//!
//! Leniencies, each on purpose: surrounding spaces and tabs are ignored; day and month names and `GMT` match
//! ASCII case-insensitively (as RFC 9111 §4.2 lets caches do); the day name is checked to be a day name but not
//! checked against the date (the date is what counts); an asctime day may be `" 6"` or `"06"`; second `60` (a leap
//! second) is accepted and lands on the next minute's first second. Delta-seconds too large for a `u64` saturate.
//! Anything else — fractions, signs, other time zones, impossible dates like `31 Apr` — is refused.

use core::fmt;
use core::str::FromStr;
use core::time::Duration;

use crate::time::{Timestamp, civil_from_days, days_from_civil};

/// A parsed `Retry-After` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RetryAfter {
    /// `delta-seconds`: wait this long after the response arrived.
    Delay(Duration),
    /// `HTTP-date`: wait until then.
    Date(HttpDate),
}

impl RetryAfter {
    /// Parses a `Retry-After` header value (see the [module docs](self) for exactly what is accepted).
    ///
    /// ```
    /// use core::time::Duration;
    /// use switchboard_protocol::http_client::RetryAfter;
    /// use switchboard_protocol::time::Timestamp;
    ///
    /// assert_eq!(RetryAfter::parse(" 120 "), Ok(RetryAfter::Delay(Duration::from_secs(120))));
    /// let date = RetryAfter::parse("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
    /// // `now` is read as unix time: 784111777 s is that date, so 7 s before it the delay is 7 s.
    /// assert_eq!(date.delay(Timestamp::from_millis(784_111_770_000)), Duration::from_secs(7));
    /// ```
    pub fn parse(value: &str) -> Result<Self, RetryAfterError> {
        let value = value.trim_matches([' ', '\t']);
        if value.is_empty() {
            return Err(RetryAfterError::Empty);
        }
        if value.bytes().all(|b| b.is_ascii_digit()) {
            let secs = value.bytes().fold(0u64, |acc, b| {
                acc.saturating_mul(10).saturating_add(u64::from(b - b'0'))
            });
            return Ok(RetryAfter::Delay(Duration::from_secs(secs)));
        }
        HttpDate::parse(value).map(RetryAfter::Date)
    }

    /// How long to wait from `now`, read as microseconds since the unix epoch. A delay is returned as is; a date is
    /// the time left until it, zero when it has passed.
    pub fn delay(&self, now: Timestamp) -> Duration {
        match self {
            RetryAfter::Delay(d) => *d,
            RetryAfter::Date(date) => {
                let at_micros = i128::from(date.unix_seconds(now)) * 1_000_000;
                let left = at_micros - i128::from(now.as_micros());
                u64::try_from(left).map_or(Duration::ZERO, Duration::from_micros)
            }
        }
    }
}

impl FromStr for RetryAfter {
    type Err = RetryAfterError;

    /// [`RetryAfter::parse`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RetryAfter::parse(s)
    }
}

/// Why a `Retry-After` value (or an HTTP-date) was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RetryAfterError {
    /// The value is empty or only whitespace.
    #[error("empty Retry-After value")]
    Empty,
    /// Neither delta-seconds nor any of the three HTTP-date forms.
    #[error("Retry-After is neither delta-seconds nor an HTTP-date")]
    Malformed,
    /// The shape is an HTTP-date but a field is out of range: month day past the month's end, hour over 23,
    /// minute over 59 or second over 60.
    #[error("HTTP-date field out of range")]
    OutOfRange,
}

/// Which of the three HTTP-date forms a date was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DateForm {
    /// `Sun, 06 Nov 1994 08:49:37 GMT`: the preferred form.
    ImfFixdate,
    /// `Sunday, 06-Nov-94 08:49:37 GMT`: obsolete, with a two-digit year.
    Rfc850,
    /// `Sun Nov  6 08:49:37 1994`: obsolete ANSI C `asctime()` format.
    Asctime,
}

/// An HTTP-date (RFC 9110 §5.6.7), as written: civil UTC fields plus the form. Dates before 1970 are kept (they
/// are simply in the past).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HttpDate {
    /// Four-digit year, or for [`DateForm::Rfc850`] the two digits as written (0 to 99).
    year: u16,
    month: u8,
    day: u8,
    hour: u8,
    minute: u8,
    second: u8,
    /// The day name as read, Monday = 0 … Sunday = 6 (not checked against the date; printed back as read).
    weekday: u8,
    form: DateForm,
}

const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const LONG_DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

impl HttpDate {
    /// Parses one of the three forms (see the [module docs](self) for the leniencies).
    pub fn parse(s: &str) -> Result<Self, RetryAfterError> {
        let date =
            Self::parse_shape(s.trim_matches([' ', '\t'])).ok_or(RetryAfterError::Malformed)?;
        date.check_ranges()?;
        Ok(date)
    }

    /// The form the date was written in.
    pub fn form(&self) -> DateForm {
        self.form
    }

    /// The date as seconds since the unix epoch (negative before 1970).
    ///
    /// `now` (unix microseconds) only matters for [`DateForm::Rfc850`], whose two-digit year is read as RFC 9110
    /// requires: the year with those last two digits in `now`'s century, unless that would be more than 50 years
    /// after `now`, in which case the century before.
    pub fn unix_seconds(&self, now: Timestamp) -> i64 {
        let year = match self.form {
            DateForm::Rfc850 => self.resolve_two_digit_year(now),
            DateForm::ImfFixdate | DateForm::Asctime => i64::from(self.year),
        };
        let days = days_from_civil(year, u32::from(self.month), u32::from(self.day));
        days * 86_400
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
    }

    fn resolve_two_digit_year(&self, now: Timestamp) -> i64 {
        let secs = now.as_micros() / 1_000_000;
        let (now_year, now_month, now_day) = civil_from_days(secs / 86_400);
        let sod = secs % 86_400;
        let now_year = now_year as i64;
        let candidate = now_year - now_year.rem_euclid(100) + i64::from(self.year);
        // "More than 50 years in the future": compare the full date with the same instant 50 years after now.
        let limit = (
            now_year + 50,
            now_month as u8,
            now_day as u8,
            (sod / 3600) as u8,
            ((sod % 3600) / 60) as u8,
            (sod % 60) as u8,
        );
        let this = (
            candidate,
            self.month,
            self.day,
            self.hour,
            self.minute,
            self.second,
        );
        if this > limit {
            candidate - 100
        } else {
            candidate
        }
    }

    fn parse_shape(s: &str) -> Option<Self> {
        let mut c = Cursor(s.as_bytes());
        let day_name = c.alpha_word();
        if c.eat(b',') {
            c.expect(b' ')?;
            let day = c.digits(2)?;
            if c.eat(b' ') {
                // IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`
                let weekday = name_index(&DAYS, day_name)?;
                let month = c.month()?;
                c.expect(b' ')?;
                let year = c.digits(4)?;
                c.expect(b' ')?;
                let (hour, minute, second) = c.time_of_day()?;
                c.expect(b' ')?;
                c.gmt()?;
                c.end()?;
                Some(Self::new(
                    year,
                    month,
                    day,
                    (hour, minute, second),
                    weekday,
                    DateForm::ImfFixdate,
                ))
            } else {
                // RFC 850: `Sunday, 06-Nov-94 08:49:37 GMT`
                let weekday = name_index(&LONG_DAYS, day_name)?;
                c.expect(b'-')?;
                let month = c.month()?;
                c.expect(b'-')?;
                let year = c.digits(2)?;
                c.expect(b' ')?;
                let (hour, minute, second) = c.time_of_day()?;
                c.expect(b' ')?;
                c.gmt()?;
                c.end()?;
                Some(Self::new(
                    year,
                    month,
                    day,
                    (hour, minute, second),
                    weekday,
                    DateForm::Rfc850,
                ))
            }
        } else {
            // asctime: `Sun Nov  6 08:49:37 1994`
            let weekday = name_index(&DAYS, day_name)?;
            c.expect(b' ')?;
            let month = c.month()?;
            c.expect(b' ')?;
            let day = if c.eat(b' ') {
                c.digits(1)?
            } else {
                c.digits(2)?
            };
            c.expect(b' ')?;
            let (hour, minute, second) = c.time_of_day()?;
            c.expect(b' ')?;
            let year = c.digits(4)?;
            c.end()?;
            Some(Self::new(
                year,
                month,
                day,
                (hour, minute, second),
                weekday,
                DateForm::Asctime,
            ))
        }
    }

    fn new(
        year: u16,
        month: u8,
        day: u16,
        (hour, minute, second): (u16, u16, u16),
        weekday: usize,
        form: DateForm,
    ) -> Self {
        // Every field but the year has at most two digits, and weekday < 7, so the narrowing is lossless.
        HttpDate {
            year,
            month,
            day: day as u8,
            hour: hour as u8,
            minute: minute as u8,
            second: second as u8,
            weekday: weekday as u8,
            form,
        }
    }

    fn check_ranges(&self) -> Result<(), RetryAfterError> {
        let days_in_month = match self.month {
            4 | 6 | 9 | 11 => 30,
            2 => match self.form {
                // A two-digit year's century is only known given `now`; 00 is a leap year in 2000 and not in
                // 1900 or 2100, so allow the 29th whenever the two digits are a multiple of 4.
                DateForm::Rfc850 if self.year.is_multiple_of(4) => 29,
                DateForm::Rfc850 => 28,
                _ if is_leap(self.year) => 29,
                _ => 28,
            },
            _ => 31,
        };
        let ok = (1..=days_in_month).contains(&self.day)
            && self.hour <= 23
            && self.minute <= 59
            && self.second <= 60;
        if ok {
            Ok(())
        } else {
            Err(RetryAfterError::OutOfRange)
        }
    }
}

impl FromStr for HttpDate {
    type Err = RetryAfterError;

    /// [`HttpDate::parse`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        HttpDate::parse(s)
    }
}

impl fmt::Display for HttpDate {
    /// Writes the date back in the form it was read in, with the day name it was read with.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let month = MONTHS[usize::from(self.month - 1)];
        let weekday = usize::from(self.weekday);
        let (h, mi, s) = (self.hour, self.minute, self.second);
        match self.form {
            DateForm::ImfFixdate => write!(
                f,
                "{}, {:02} {month} {:04} {h:02}:{mi:02}:{s:02} GMT",
                DAYS[weekday], self.day, self.year
            ),
            DateForm::Rfc850 => write!(
                f,
                "{}, {:02}-{month}-{:02} {h:02}:{mi:02}:{s:02} GMT",
                LONG_DAYS[weekday], self.day, self.year
            ),
            DateForm::Asctime => write!(
                f,
                "{} {month} {:>2} {h:02}:{mi:02}:{s:02} {:04}",
                DAYS[weekday], self.day, self.year
            ),
        }
    }
}

fn is_leap(year: u16) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

fn name_index(names: &[&str], word: &[u8]) -> Option<usize> {
    names
        .iter()
        .position(|n| n.as_bytes().eq_ignore_ascii_case(word))
}

/// A byte cursor over the date text; every method returns `None` on a mismatch.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn eat(&mut self, b: u8) -> bool {
        match self.0.split_first() {
            Some((&first, rest)) if first == b => {
                self.0 = rest;
                true
            }
            _ => false,
        }
    }

    fn expect(&mut self, b: u8) -> Option<()> {
        self.eat(b).then_some(())
    }

    fn alpha_word(&mut self) -> &'a [u8] {
        let n = self
            .0
            .iter()
            .take_while(|b| b.is_ascii_alphabetic())
            .count();
        let (word, rest) = self.0.split_at(n);
        self.0 = rest;
        word
    }

    /// Exactly `n` ASCII digits.
    fn digits(&mut self, n: usize) -> Option<u16> {
        if self.0.len() < n || !self.0[..n].iter().all(u8::is_ascii_digit) {
            return None;
        }
        let (digits, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(
            digits
                .iter()
                .fold(0u16, |acc, &d| acc * 10 + u16::from(d - b'0')),
        )
    }

    /// A three-letter month name → 1 to 12.
    fn month(&mut self) -> Option<u8> {
        if self.0.len() < 3 {
            return None;
        }
        let (word, rest) = self.0.split_at(3);
        let index = name_index(&MONTHS, word)?;
        self.0 = rest;
        Some(index as u8 + 1)
    }

    /// `HH:MM:SS`, ranges unchecked.
    fn time_of_day(&mut self) -> Option<(u16, u16, u16)> {
        let hour = self.digits(2)?;
        self.expect(b':')?;
        let minute = self.digits(2)?;
        self.expect(b':')?;
        let second = self.digits(2)?;
        Some((hour, minute, second))
    }

    fn gmt(&mut self) -> Option<()> {
        let word = self.alpha_word();
        word.eq_ignore_ascii_case(b"GMT").then_some(())
    }

    fn end(&self) -> Option<()> {
        self.0.is_empty().then_some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    /// Unix seconds → a `now` on the unix-epoch scale.
    fn unix(secs: u64) -> Timestamp {
        Timestamp::from_micros(secs * 1_000_000)
    }

    fn date_secs(s: &str, now_secs: u64) -> i64 {
        HttpDate::parse(s).unwrap().unix_seconds(unix(now_secs))
    }

    const NOW_2024: u64 = 1_717_200_000; // 2024-06-01T00:00:00Z

    /// Known answers from Python: `calendar.timegm(email.utils.parsedate_tz(s)[:9])`.
    #[test]
    fn the_three_forms_known_answers() {
        let cases: &[(&str, i64, DateForm)] = &[
            (
                "Sun, 06 Nov 1994 08:49:37 GMT",
                784_111_777,
                DateForm::ImfFixdate,
            ),
            (
                "Sunday, 06-Nov-94 08:49:37 GMT",
                784_111_777,
                DateForm::Rfc850,
            ),
            ("Sun Nov  6 08:49:37 1994", 784_111_777, DateForm::Asctime),
            ("Thu, 01 Jan 1970 00:00:00 GMT", 0, DateForm::ImfFixdate),
            (
                "Mon, 01 Jan 2024 12:00:00 GMT",
                1_704_110_400,
                DateForm::ImfFixdate,
            ),
            (
                "Thu, 29 Feb 2024 23:59:59 GMT",
                1_709_251_199,
                DateForm::ImfFixdate,
            ),
            (
                "Tue, 19 Jan 2038 03:14:08 GMT",
                2_147_483_648,
                DateForm::ImfFixdate,
            ),
            (
                "Wed, 01 Mar 2100 00:00:00 GMT",
                4_107_542_400,
                DateForm::ImfFixdate,
            ),
            (
                "Fri, 31 Dec 9999 23:59:59 GMT",
                253_402_300_799,
                DateForm::ImfFixdate,
            ),
            ("Tue Feb 29 00:00:00 2000", 951_782_400, DateForm::Asctime),
            ("Wed Oct 21 07:28:00 2015", 1_445_412_480, DateForm::Asctime),
            (
                "Wed, 31 Dec 1969 00:00:00 GMT",
                -86_400,
                DateForm::ImfFixdate,
            ),
        ];
        for &(s, want, form) in cases {
            let date = HttpDate::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(date.form(), form, "{s}");
            assert_eq!(date.unix_seconds(unix(NOW_2024)), want, "{s}");
        }
    }

    #[test]
    fn dates_print_back_as_read() {
        for s in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
            "Wed Oct 21 07:28:00 2015",
            "Thu, 29 Feb 2024 23:59:59 GMT",
        ] {
            assert_eq!(HttpDate::parse(s).unwrap().to_string(), s);
        }
        // The day name is echoed, not checked: a wrong one reads as the date and prints as read.
        let wrong = HttpDate::parse("Mon, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(wrong.to_string(), "Mon, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(wrong.unix_seconds(Timestamp::ZERO), 784_111_777);
    }

    /// RFC 9110 §5.6.7: a two-digit year more than 50 years ahead of `now` belongs to the previous century.
    #[test]
    fn rfc850_two_digit_years_pivot_fifty_years_ahead() {
        // now = 2024-06-01T00:00:00Z, so the pivot is 2074-06-01T00:00:00Z.
        assert_eq!(
            date_secs("Sunday, 06-Nov-94 08:49:37 GMT", NOW_2024),
            784_111_777
        ); // 1994
        assert_eq!(
            date_secs("Friday, 31-May-74 23:59:59 GMT", NOW_2024),
            3_295_036_799 // 2074-05-31T23:59:59Z: just under 50 years ahead
        );
        assert_eq!(
            date_secs("Friday, 01-Jun-74 00:00:00 GMT", NOW_2024),
            3_295_036_800 // exactly 50 years ahead: not *more than* 50
        );
        assert_eq!(
            date_secs("Saturday, 01-Jun-74 00:00:01 GMT", NOW_2024),
            139_276_801 // one second past the pivot: 1974
        );
        // 70 seen from mid-2024 is 2070 (under 50 years ahead), not 1970.
        assert_eq!(
            date_secs("Wednesday, 01-Jan-70 00:00:00 GMT", NOW_2024),
            3_155_760_000
        );
        // ... but seen from 1980 it is 1970.
        assert_eq!(
            date_secs("Thursday, 01-Jan-70 00:00:00 GMT", 315_532_800),
            0
        );
        // The same 94 read in 1990 is 1994 as well (4 years ahead), and read in 2044 still 1994 (50 years back).
        assert_eq!(
            date_secs("Sunday, 06-Nov-94 08:49:37 GMT", 631_152_000),
            784_111_777
        );
        // Seen from 2050-01-01, 94 means 2094 (44 years ahead): 784111777 + 100 years of days.
        let year_2050 = 2_524_608_000;
        let days_1994_to_2094 = 36_525;
        assert_eq!(
            date_secs("Saturday, 06-Nov-94 08:49:37 GMT", year_2050),
            784_111_777 + days_1994_to_2094 * 86_400
        );
    }

    #[test]
    fn delta_seconds() {
        let d = |s| RetryAfter::parse(s);
        assert_eq!(d("0"), Ok(RetryAfter::Delay(Duration::ZERO)));
        assert_eq!(d("120"), Ok(RetryAfter::Delay(Duration::from_secs(120))));
        assert_eq!(d("\t 7 \t"), Ok(RetryAfter::Delay(Duration::from_secs(7))));
        assert_eq!(d("007"), Ok(RetryAfter::Delay(Duration::from_secs(7))));
        assert_eq!(
            d("99999999999999999999999"),
            Ok(RetryAfter::Delay(Duration::from_secs(u64::MAX)))
        );
        assert_eq!(
            "18446744073709551615".parse::<RetryAfter>(),
            Ok(RetryAfter::Delay(Duration::from_secs(u64::MAX)))
        );
        // A delay is relative to the response: `now` does not change it.
        let r = d("30").unwrap();
        assert_eq!(r.delay(Timestamp::ZERO), Duration::from_secs(30));
        assert_eq!(r.delay(unix(NOW_2024)), Duration::from_secs(30));
    }

    #[test]
    fn date_delays_count_from_now_and_never_go_negative() {
        let r = RetryAfter::parse("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(r.delay(unix(784_111_777 - 90)), Duration::from_secs(90));
        // Sub-second `now`: 0.25 s before the date leaves 0.25 s.
        assert_eq!(
            r.delay(Timestamp::from_micros(784_111_776_750_000)),
            Duration::from_millis(250)
        );
        assert_eq!(r.delay(unix(784_111_777)), Duration::ZERO);
        assert_eq!(r.delay(unix(NOW_2024)), Duration::ZERO);
        let before_1970 = RetryAfter::parse("Wed, 31 Dec 1969 00:00:00 GMT").unwrap();
        assert_eq!(before_1970.delay(Timestamp::ZERO), Duration::ZERO);
        // Far future: no overflow.
        let far = RetryAfter::parse("Fri, 31 Dec 9999 23:59:59 GMT").unwrap();
        assert_eq!(
            far.delay(Timestamp::ZERO),
            Duration::from_secs(253_402_300_799)
        );
        assert_eq!(far.delay(Timestamp::MAX), Duration::ZERO);
    }

    #[test]
    fn leniencies() {
        let want = 784_111_777;
        for s in [
            "  Sun, 06 Nov 1994 08:49:37 GMT\t",
            "sun, 06 nov 1994 08:49:37 gmt",
            "SUNDAY, 06-NOV-94 08:49:37 GMT",
            "Sun Nov 06 08:49:37 1994",
            "Wed, 06 Nov 1994 08:49:37 GMT", // wrong weekday: the date wins
        ] {
            assert_eq!(date_secs(s, NOW_2024), want, "{s}");
        }
        // Second 60 rolls into the next minute.
        assert_eq!(
            date_secs("Sun, 06 Nov 1994 08:49:60 GMT", NOW_2024),
            want + 23
        );
    }

    #[test]
    fn malformed_values_are_refused() {
        use RetryAfterError::*;
        let cases: &[(&str, RetryAfterError)] = &[
            ("", Empty),
            (" \t ", Empty),
            ("-5", Malformed),
            ("+5", Malformed),
            ("1.5", Malformed),
            ("5 s", Malformed),
            ("soon", Malformed),
            ("Sun, 06 Nov 1994 08:49:37 UTC", Malformed),
            ("Sun, 06 Nov 1994 08:49:37 GMT+1", Malformed),
            ("Sun, 06 Nov 1994 08:49:37", Malformed),
            ("Sun, 6 Nov 1994 08:49:37 GMT", Malformed),
            ("Sun, 06 Nov 94 08:49:37 GMT", Malformed),
            ("Sun,  06 Nov 1994 08:49:37 GMT", Malformed),
            ("Sun, 06 Nov 1994 8:49:37 GMT", Malformed),
            ("Sun, 06 Foo 1994 08:49:37 GMT", Malformed),
            ("Sunday, 06 Nov 1994 08:49:37 GMT", Malformed),
            ("Sun, 06-Nov-94 08:49:37 GMT", Malformed),
            ("Sunday, 06-Nov-1994 08:49:37 GMT", Malformed),
            ("Sun Nov  6 08:49:37 94", Malformed),
            ("Sun Nov   6 08:49:37 1994", Malformed),
            ("Sunday Nov  6 08:49:37 1994", Malformed),
            ("Xyz, 06 Nov 1994 08:49:37 GMT", Malformed),
            ("Sun, 06 Nov 1994 08:49:37 GMT x", Malformed),
            ("Sun, 06 No", Malformed),
            ("Sun, 31 Apr 1994 08:49:37 GMT", OutOfRange),
            ("Sun, 00 Nov 1994 08:49:37 GMT", OutOfRange),
            ("Tue, 29 Feb 2100 00:00:00 GMT", OutOfRange),
            ("Sun, 06 Nov 1994 24:00:00 GMT", OutOfRange),
            ("Sun, 06 Nov 1994 08:60:00 GMT", OutOfRange),
            ("Sun, 06 Nov 1994 08:49:61 GMT", OutOfRange),
            ("Sunday, 29-Feb-95 08:49:37 GMT", OutOfRange),
            ("Sun Nov 31 08:49:37 1994", OutOfRange),
        ];
        for &(s, want) in cases {
            assert_eq!(RetryAfter::parse(s), Err(want), "{s:?}");
        }
        // 29 Feb of a two-digit year divisible by 4 is allowed (2000 was leap, so "00" may be).
        assert!(HttpDate::parse("Tuesday, 29-Feb-00 00:00:00 GMT").is_ok());
        assert!("Sun Nov  6 08:49:37 1994".parse::<HttpDate>().is_ok());
    }

    /// An HTTP-date for an instant between 1970 and 9999 in one of the three forms, as text; in one case of five one
    /// character is replaced by an arbitrary one (which mostly breaks it).
    fn date_text() -> impl proptest::strategy::Strategy<Value = alloc::string::String> {
        use proptest::prelude::*;
        (
            0u64..=253_402_300_799,
            0usize..3,
            proptest::option::weighted(0.2, (any::<proptest::sample::Index>(), any::<char>())),
        )
            .prop_map(|(secs, form, mutation)| {
                let (y, m, d) = civil_from_days(secs / 86_400);
                let sod = secs % 86_400;
                let weekday = (secs / 86_400 + 3) as usize % 7; // 1970-01-01 was a Thursday
                let date = HttpDate::new(
                    y as u16,
                    m as u8,
                    d as u16,
                    (
                        (sod / 3600) as u16,
                        (sod % 3600 / 60) as u16,
                        (sod % 60) as u16,
                    ),
                    weekday,
                    DateForm::ImfFixdate,
                );
                let text = match form {
                    0 => date.to_string(),
                    1 => HttpDate {
                        form: DateForm::Asctime,
                        ..date
                    }
                    .to_string(),
                    _ => HttpDate {
                        form: DateForm::Rfc850,
                        year: date.year % 100,
                        ..date
                    }
                    .to_string(),
                };
                match mutation {
                    None => text,
                    Some((at, c)) => {
                        let at = at.index(text.chars().count());
                        text.chars()
                            .enumerate()
                            .map(|(i, old)| if i == at { c } else { old })
                            .collect()
                    }
                }
            })
    }

    /// Date-shaped text reaches the round-trip check of `parse_never_panics_and_round_trips` in at least half the
    /// cases (counted, so a strategy that drifts to garbage fails here), and whatever parses as a date there formats
    /// and re-parses to itself.
    #[test]
    fn dates_round_trip() {
        let cases = core::cell::Cell::new(0u32);
        let dates = core::cell::Cell::new(0u32);
        proptest::test_runner::TestRunner::default()
            .run(&date_text(), |s| {
                cases.set(cases.get() + 1);
                if let Ok(RetryAfter::Date(date)) = RetryAfter::parse(&s) {
                    dates.set(dates.get() + 1);
                    let again = HttpDate::parse(&date.to_string());
                    proptest::prop_assert_eq!(
                        again.map(|d| d.unix_seconds(unix(NOW_2024))),
                        Ok(date.unix_seconds(unix(NOW_2024)))
                    );
                }
                Ok(())
            })
            .unwrap();
        assert!(
            dates.get() * 2 >= cases.get(),
            "only {} of {} date-shaped inputs parsed as dates",
            dates.get(),
            cases.get()
        );
    }

    proptest::proptest! {
        /// Whatever the bytes, parsing never panics, and whatever parses as a date formats and re-parses to itself
        /// (arbitrary text almost never is a date: `dates_round_trip` reaches that check on purpose).
        #[test]
        fn parse_never_panics_and_round_trips(s in "\\PC{0,40}") {
            if let Ok(RetryAfter::Date(date)) = RetryAfter::parse(&s) {
                let again = HttpDate::parse(&date.to_string());
                proptest::prop_assert_eq!(again.map(|d| d.unix_seconds(unix(NOW_2024))),
                    Ok(date.unix_seconds(unix(NOW_2024))));
            }
        }

        /// Every IMF-fixdate we print for an instant between 1970 and 9999 reads back as that instant.
        #[test]
        fn imf_fixdate_round_trips_every_instant(secs in 0u64..=253_402_300_799) {
            let (y, m, d) = civil_from_days(secs / 86_400);
            let sod = secs % 86_400;
            let weekday = (secs / 86_400 + 3) as usize % 7; // 1970-01-01 was a Thursday
            let date = HttpDate::new(y as u16, m as u8, d as u16,
                ((sod / 3600) as u16, (sod % 3600 / 60) as u16, (sod % 60) as u16), weekday, DateForm::ImfFixdate);
            let text = date.to_string();
            let parsed = HttpDate::parse(&text).unwrap();
            proptest::prop_assert_eq!(parsed.unix_seconds(Timestamp::ZERO), secs as i64, "{}", text);
            let asctime = HttpDate { form: DateForm::Asctime, ..date }.to_string();
            proptest::prop_assert_eq!(HttpDate::parse(&asctime).unwrap().unix_seconds(Timestamp::ZERO), secs as i64);
        }
    }
}
