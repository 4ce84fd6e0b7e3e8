//! ISO 8601 text as Trino reads and writes it (`from_iso8601_timestamp`, `from_iso8601_date`,
//! `to_iso8601`): Trino uses Joda's `ISODateTimeFormat.dateTimeParser()` and
//! `dateElementParser()`, whose grammar is
//!
//! ```text
//! datetime     = time | date ['T' [time-element] [offset]]
//! time         = 'T' time-element [offset]
//! date         = yyyy ['-' MM ['-' dd]] | yyyy '-' DDD | xxxx '-W' ww ['-' e]
//! time-element = HH [fraction] | HH ':' mm [fraction] | HH ':' mm ':' ss [fraction]
//! fraction     = ('.' | ',') digit+
//! offset       = 'Z' | ('+' | '-') HH [[':'] mm]
//! ```

use chrono::{Datelike, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Timelike, Weekday};

/// A parsed timestamp: its wall-clock time and the offset written after it, if any.
#[derive(Debug, PartialEq)]
pub(crate) struct Parsed {
    pub local: NaiveDateTime,
    pub offset: Option<FixedOffset>,
}

struct Cursor<'a> {
    text: &'a str,
    pos: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek().is_some_and(|p| p.eq_ignore_ascii_case(&c)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Up to `max` digits, at least one.
    fn digits(&mut self, max: usize) -> Option<(i64, usize)> {
        let rest = &self.text.as_bytes()[self.pos..];
        let n = rest
            .iter()
            .take(max)
            .take_while(|b| b.is_ascii_digit())
            .count();
        if n == 0 {
            return None;
        }
        let v = self.text[self.pos..self.pos + n].parse().ok()?;
        self.pos += n;
        Some((v, n))
    }

    fn error(&self) -> String {
        if self.pos >= self.text.len() {
            format!("Invalid format: \"{}\" is too short", self.text)
        } else {
            format!(
                "Invalid format: \"{}\" is malformed at \"{}\"",
                self.text,
                &self.text[self.pos..]
            )
        }
    }
}

/// `from_iso8601_date`: a calendar, ordinal or week date, nothing else.
pub(crate) fn parse_date(text: &str) -> Result<NaiveDate, String> {
    let mut c = Cursor { text, pos: 0 };
    let date = date_element(&mut c)?;
    if c.pos != text.len() {
        return Err(c.error());
    }
    Ok(date)
}

/// `from_iso8601_timestamp`: a date with optional time and offset, or a time alone.
pub(crate) fn parse_timestamp(text: &str) -> Result<Parsed, String> {
    let mut c = Cursor { text, pos: 0 };
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).ok_or("epoch")?;
    let (date, time_follows) = if c.eat(b'T') {
        (epoch, true)
    } else {
        let date = date_element(&mut c)?;
        (date, c.eat(b'T'))
    };
    let mut time = NaiveTime::MIN;
    if time_follows && c.peek().is_some_and(|b| b.is_ascii_digit()) {
        time = time_element(&mut c)?;
    }
    let offset = if time_follows && c.peek().is_some() {
        offset(&mut c)?
    } else {
        None
    };
    if c.pos != text.len() {
        return Err(c.error());
    }
    Ok(Parsed {
        local: date.and_time(time),
        offset,
    })
}

fn date_element(c: &mut Cursor) -> Result<NaiveDate, String> {
    let negative = c.eat(b'-');
    if !negative {
        c.eat(b'+');
    }
    let (year, _) = c.digits(9).ok_or_else(|| c.error())?;
    let year = i32::try_from(if negative { -year } else { year }).map_err(|_| c.error())?;
    let bad = |what: &str, v: i64| format!("Cannot parse: value {v} for {what} is out of range");
    if !c.eat(b'-') {
        return NaiveDate::from_ymd_opt(year, 1, 1).ok_or_else(|| bad("year", year.into()));
    }
    if c.eat(b'W') {
        let (week, _) = c.digits(2).ok_or_else(|| c.error())?;
        let mut weekday = 1;
        if c.eat(b'-') {
            weekday = c.digits(1).ok_or_else(|| c.error())?.0;
        }
        let day = match weekday {
            1 => Weekday::Mon,
            2 => Weekday::Tue,
            3 => Weekday::Wed,
            4 => Weekday::Thu,
            5 => Weekday::Fri,
            6 => Weekday::Sat,
            7 => Weekday::Sun,
            v => return Err(bad("dayOfWeek", v)),
        };
        let week = u32::try_from(week).map_err(|_| bad("weekOfWeekyear", week))?;
        return NaiveDate::from_isoywd_opt(year, week, day)
            .ok_or_else(|| bad("weekOfWeekyear", week.into()));
    }
    let start = c.pos;
    let (value, n) = c.digits(3).ok_or_else(|| c.error())?;
    if n == 3 {
        let ordinal = u32::try_from(value).map_err(|_| bad("dayOfYear", value))?;
        return NaiveDate::from_yo_opt(year, ordinal).ok_or_else(|| bad("dayOfYear", value));
    }
    // A month has at most two digits; give back what was read beyond them.
    c.pos = start;
    let (month, _) = c.digits(2).ok_or_else(|| c.error())?;
    let month = u32::try_from(month).map_err(|_| bad("monthOfYear", month))?;
    let mut day = 1;
    if c.eat(b'-') {
        day = c.digits(2).ok_or_else(|| c.error())?.0;
    }
    let day = u32::try_from(day).map_err(|_| bad("dayOfMonth", day))?;
    if !(1..=12).contains(&month) {
        return Err(bad("monthOfYear", month.into()));
    }
    NaiveDate::from_ymd_opt(year, month, day).ok_or_else(|| bad("dayOfMonth", day.into()))
}

fn time_element(c: &mut Cursor) -> Result<NaiveTime, String> {
    const NANOS_PER_HOUR: i64 = 3_600_000_000_000;
    let (hour, _) = c.digits(2).ok_or_else(|| c.error())?;
    let mut nanos = hour * NANOS_PER_HOUR;
    let mut unit = NANOS_PER_HOUR;
    for _ in 0..2 {
        if !c.eat(b':') {
            break;
        }
        let (v, _) = c.digits(2).ok_or_else(|| c.error())?;
        unit /= 60;
        if v >= 60 {
            return Err(format!(
                "Cannot parse \"{}\": value {v} is out of range",
                c.text
            ));
        }
        nanos += v * unit;
    }
    if c.eat(b'.') || c.eat(b',') {
        let start = c.pos;
        while c.peek().is_some_and(|b| b.is_ascii_digit()) {
            c.pos += 1;
        }
        if c.pos == start {
            return Err(c.error());
        }
        let digits = &c.text[start..c.pos];
        // The fraction of the last unit written, to nanosecond precision.
        let mut frac = 0i128;
        let mut scale = 1i128;
        for d in digits.bytes().take(18) {
            frac = frac * 10 + i128::from(d - b'0');
            scale *= 10;
        }
        nanos += i64::try_from(frac * i128::from(unit) / scale).unwrap_or(0);
    }
    if hour >= 24 {
        return Err(format!(
            "Cannot parse \"{}\": value {hour} for hourOfDay must be in the range [0,23]",
            c.text
        ));
    }
    let secs = u32::try_from(nanos / 1_000_000_000).map_err(|_| c.error())?;
    let sub = u32::try_from(nanos % 1_000_000_000).map_err(|_| c.error())?;
    NaiveTime::from_num_seconds_from_midnight_opt(secs, sub).ok_or_else(|| c.error())
}

fn offset(c: &mut Cursor) -> Result<Option<FixedOffset>, String> {
    if c.eat(b'Z') {
        return Ok(FixedOffset::east_opt(0));
    }
    let sign = if c.eat(b'+') {
        1
    } else if c.eat(b'-') {
        -1
    } else {
        return Err(c.error());
    };
    let (hours, n) = c.digits(2).ok_or_else(|| c.error())?;
    if n != 2 || hours > 23 {
        return Err(c.error());
    }
    let mut minutes = 0;
    let colon = c.eat(b':');
    if colon || c.peek().is_some_and(|b| b.is_ascii_digit()) {
        let (m, n) = c.digits(2).ok_or_else(|| c.error())?;
        if n != 2 || m > 59 {
            return Err(c.error());
        }
        minutes = m;
    }
    let secs = i32::try_from(sign * (hours * 3600 + minutes * 60)).map_err(|_| c.error())?;
    FixedOffset::east_opt(secs)
        .map(Some)
        .ok_or_else(|| c.error())
}

/// `to_iso8601(date)`.
pub(crate) fn format_date(d: &NaiveDate) -> String {
    format!("{}-{:02}-{:02}", year(d.year()), d.month(), d.day())
}

/// `to_iso8601(timestamp)`: `digits` fraction digits at least (0, or 3 for Trino's
/// `timestamp(3)`), more when the value has them; then the offset (`Z` for UTC) when the
/// timestamp has a zone.
pub(crate) fn format_timestamp(
    local: &NaiveDateTime,
    digits: usize,
    max_digits: usize,
    offset: Option<FixedOffset>,
) -> String {
    let mut out = format!(
        "{}T{:02}:{:02}:{:02}",
        format_date(&local.date()),
        local.hour(),
        local.minute(),
        local.second()
    );
    let nanos = local.nanosecond() % 1_000_000_000;
    let mut width = digits;
    while width < max_digits && !nanos.is_multiple_of(10u32.pow(9 - width as u32)) {
        width += 3;
    }
    if width > 0 {
        let frac = format!("{nanos:09}");
        out.push('.');
        out.push_str(&frac[..width.min(9)]);
    }
    if let Some(off) = offset {
        let secs = off.local_minus_utc();
        if secs == 0 {
            out.push('Z');
        } else {
            let sign = if secs < 0 { '-' } else { '+' };
            let secs = secs.abs();
            out.push_str(&format!("{sign}{:02}:{:02}", secs / 3600, secs % 3600 / 60));
        }
    }
    out
}

fn year(y: i32) -> String {
    if (0..=9999).contains(&y) {
        format!("{y:04}")
    } else if y < 0 {
        format!("-{:04}", -(y as i64))
    } else {
        format!("+{y}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_trino_examples() {
        let d = |s: &str| parse_date(s).unwrap().to_string();
        assert_eq!(d("2020-05-11"), "2020-05-11");
        assert_eq!(d("2020-W10"), "2020-03-02");
        assert_eq!(d("2020-123"), "2020-05-02");
        assert!(parse_date("2020-05-11T10:00").is_err());
        let t = parse_timestamp("2020-05-11T11:15:05.055+01:00").unwrap();
        assert_eq!(t.local.to_string(), "2020-05-11 11:15:05.055");
        assert_eq!(t.offset, FixedOffset::east_opt(3600));
        let t = parse_timestamp("2020-05-11").unwrap();
        assert_eq!(
            (t.local.to_string(), t.offset),
            ("2020-05-11 00:00:00".into(), None)
        );
        assert_eq!(
            parse_timestamp("T10:30Z").unwrap().local.to_string(),
            "1970-01-01 10:30:00"
        );
        assert!(parse_timestamp("2020-05-11 11:15").is_err());
        assert!(parse_timestamp("2020-13-01").is_err());
    }

    #[test]
    fn formats_fractions_and_offsets() {
        let t = parse_timestamp("2020-05-11T11:15:05.055").unwrap().local;
        assert_eq!(format_timestamp(&t, 3, 9, None), "2020-05-11T11:15:05.055");
        assert_eq!(
            format_timestamp(&t, 0, 0, FixedOffset::east_opt(0)),
            "2020-05-11T11:15:05Z"
        );
        let t = parse_timestamp("2020-05-11T11:15:05.0551").unwrap().local;
        assert_eq!(
            format_timestamp(&t, 3, 9, FixedOffset::east_opt(-5400)),
            "2020-05-11T11:15:05.055100-01:30"
        );
    }
}
