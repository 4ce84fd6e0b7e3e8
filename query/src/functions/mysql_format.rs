//! The MySQL-style format strings of `date_format` and `date_parse`, as Trino reads them
//! (Trino `functions/datetime.md`, "MySQL date functions"): Trino builds a Joda formatter from
//! the string, so printing and parsing follow Joda's rules. `%D %U %u %V %w %X` are not
//! supported (an error, as in Trino), `%x` for any other `x` is the literal `x`, and a lone
//! trailing `%` is ignored.

use chrono::{Datelike, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Timelike, Weekday};

/// One element of a compiled format.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Item {
    Literal(char),
    /// `%a` Sun..Sat
    WeekdayShort,
    /// `%W` Sunday..Saturday
    WeekdayLong,
    /// `%b` Jan..Dec
    MonthShort,
    /// `%M` January..December
    MonthLong,
    /// `%c` (1 digit min) and `%m` (2)
    Month(usize),
    /// `%e` (1) and `%d` (2)
    Day(usize),
    /// `%f`: six digits printed (milliseconds, then `000`), 1 to 9 parsed
    Fraction,
    /// `%k` (1) and `%H` (2)
    Hour24(usize),
    /// `%l` (1) and `%h` / `%I` (2)
    Hour12(usize),
    /// `%i` (2 digits; Joda's `m` 1)
    Minute(usize),
    /// `%s` / `%S` (2 digits; Joda's `s` 1)
    Second(usize),
    /// `%j` (3 digits; Joda's `D` 1)
    DayOfYear(usize),
    /// Joda's `S...`: that many digits of the fraction of a second (milliseconds, then zeros)
    FractionDigits(usize),
    /// Joda's `Z` (`+0100`) and `ZZ` (`+01:00`, the flag)
    ZoneOffset(bool),
    /// Joda's `ZZZ`: the zone id
    ZoneId,
    /// Joda's `z`: the zone's short name
    ZoneName,
    /// `%p`
    HalfDay,
    /// `%Y`
    Year,
    /// `%y`: two digits, parsed into 1970..2069
    TwoDigitYear,
    /// `%x`: the ISO week-year
    WeekYear,
    /// `%v`: the ISO week
    Week,
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
const WEEKDAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// Compiles `format`; the error is Trino's message for an unsupported specifier.
pub(crate) fn compile(format: &str) -> Result<Vec<Item>, String> {
    let mut items = Vec::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            items.push(Item::Literal(c));
            continue;
        }
        let Some(spec) = chars.next() else { break };
        let expanded: &[Item] = match spec {
            'a' => &[Item::WeekdayShort],
            'b' => &[Item::MonthShort],
            'c' => &[Item::Month(1)],
            'd' => &[Item::Day(2)],
            'e' => &[Item::Day(1)],
            'f' => &[Item::Fraction],
            'H' => &[Item::Hour24(2)],
            'h' | 'I' => &[Item::Hour12(2)],
            'i' => &[Item::Minute(2)],
            'j' => &[Item::DayOfYear(3)],
            'k' => &[Item::Hour24(1)],
            'l' => &[Item::Hour12(1)],
            'M' => &[Item::MonthLong],
            'm' => &[Item::Month(2)],
            'p' => &[Item::HalfDay],
            'r' => &[
                Item::Hour12(2),
                Item::Literal(':'),
                Item::Minute(2),
                Item::Literal(':'),
                Item::Second(2),
                Item::Literal(' '),
                Item::HalfDay,
            ],
            'S' | 's' => &[Item::Second(2)],
            'T' => &[
                Item::Hour24(2),
                Item::Literal(':'),
                Item::Minute(2),
                Item::Literal(':'),
                Item::Second(2),
            ],
            'v' => &[Item::Week],
            'x' => &[Item::WeekYear],
            'W' => &[Item::WeekdayLong],
            'Y' => &[Item::Year],
            'y' => &[Item::TwoDigitYear],
            'w' | 'U' | 'u' | 'V' | 'X' | 'D' => {
                return Err(format!("%{spec} not supported in date format string"));
            }
            other => {
                items.push(Item::Literal(other));
                continue;
            }
        };
        items.extend_from_slice(expanded);
    }
    Ok(items)
}

/// The zone a wall-clock time is printed in: its offset at that time, its id and short name.
pub(crate) struct ZoneAt {
    pub offset: FixedOffset,
    pub id: String,
    pub short_name: String,
}

impl ZoneAt {
    pub fn utc() -> Self {
        Self {
            offset: FixedOffset::east_opt(0).expect("zero offset"),
            id: "UTC".into(),
            short_name: "UTC".into(),
        }
    }
}

/// Prints `t` (wall-clock time; truncated to milliseconds, as Trino does).
pub(crate) fn format(items: &[Item], t: &NaiveDateTime) -> String {
    format_zoned(items, t, &ZoneAt::utc())
}

/// Prints `t`, a wall-clock time in `zone`.
pub(crate) fn format_zoned(items: &[Item], t: &NaiveDateTime, zone: &ZoneAt) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let hour12 = match t.hour() % 12 {
        0 => 12,
        h => h,
    };
    for item in items {
        // Writing to a String cannot fail.
        let _ = match item {
            Item::Literal(c) => {
                out.push(*c);
                Ok(())
            }
            Item::WeekdayShort => {
                write!(
                    out,
                    "{}",
                    &WEEKDAYS[t.weekday().num_days_from_monday() as usize][..3]
                )
            }
            Item::WeekdayLong => {
                write!(
                    out,
                    "{}",
                    WEEKDAYS[t.weekday().num_days_from_monday() as usize]
                )
            }
            Item::MonthShort => write!(out, "{}", &MONTHS[t.month0() as usize][..3]),
            Item::MonthLong => write!(out, "{}", MONTHS[t.month0() as usize]),
            Item::Month(w) => write!(out, "{:0w$}", t.month()),
            Item::Day(w) => write!(out, "{:0w$}", t.day()),
            Item::Fraction => write!(out, "{:03}000", t.nanosecond() % 1_000_000_000 / 1_000_000),
            Item::Hour24(w) => write!(out, "{:0w$}", t.hour()),
            Item::Hour12(w) => write!(out, "{hour12:0w$}"),
            Item::Minute(w) => write!(out, "{:0w$}", t.minute()),
            Item::Second(w) => write!(out, "{:0w$}", t.second()),
            Item::DayOfYear(w) => write!(out, "{:0w$}", t.ordinal()),
            Item::FractionDigits(n) => {
                let ms = format!("{:03}", t.nanosecond() % 1_000_000_000 / 1_000_000);
                let digits: String = ms.chars().chain(std::iter::repeat('0')).take(*n).collect();
                write!(out, "{digits}")
            }
            Item::ZoneOffset(colon) => {
                let secs = zone.offset.local_minus_utc();
                let sign = if secs < 0 { '-' } else { '+' };
                let (h, m) = (secs.abs() / 3600, secs.abs() % 3600 / 60);
                let sep = if *colon { ":" } else { "" };
                write!(out, "{sign}{h:02}{sep}{m:02}")
            }
            Item::ZoneId => write!(out, "{}", zone.id),
            Item::ZoneName => write!(out, "{}", zone.short_name),
            Item::HalfDay => write!(out, "{}", if t.hour() < 12 { "AM" } else { "PM" }),
            Item::Year => write_year(&mut out, t.year()),
            Item::TwoDigitYear => write!(out, "{:02}", t.year().rem_euclid(100)),
            Item::WeekYear => write_year(&mut out, t.iso_week().year()),
            Item::Week => write!(out, "{:02}", t.iso_week().week()),
        };
    }
    out
}

fn write_year(out: &mut String, year: i32) -> std::fmt::Result {
    use std::fmt::Write;
    if year < 0 {
        write!(out, "-{:04}", -(year as i64))
    } else {
        write!(out, "{year:04}")
    }
}

/// Fields read by [`parse`]; unset ones take their value from 1970-01-01 00:00:00.000.
#[derive(Default)]
struct Fields {
    year: Option<i64>,
    month: Option<i64>,
    day: Option<i64>,
    day_of_year: Option<i64>,
    week_year: Option<i64>,
    week: Option<i64>,
    hour24: Option<i64>,
    hour12: Option<i64>,
    pm: Option<bool>,
    minute: Option<i64>,
    second: Option<i64>,
    millis: Option<i64>,
    zone: Option<ParsedZone>,
}

/// A zone read by [`parse_zoned`]: an offset or a zone id.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ParsedZone {
    Offset(FixedOffset),
    Id(String),
}

/// Parses `text` with the whole format (Joda's rules: numbers take up to their field's width,
/// names match in their own, lower or upper case, literals match ignoring case, and the whole
/// text must be used). The error is Trino's message.
pub(crate) fn parse(items: &[Item], text: &str) -> Result<NaiveDateTime, String> {
    parse_zoned(items, text).map(|(t, _)| t)
}

/// [`parse`], also returning the zone the text names, if the format reads one.
pub(crate) fn parse_zoned(
    items: &[Item],
    text: &str,
) -> Result<(NaiveDateTime, Option<ParsedZone>), String> {
    let mut f = Fields::default();
    let mut pos = 0;
    let malformed = |pos: usize| {
        if pos >= text.len() {
            format!("Invalid format: \"{text}\" is too short")
        } else {
            format!(
                "Invalid format: \"{text}\" is malformed at \"{}\"",
                &text[pos..]
            )
        }
    };
    for item in items {
        let rest = &text[pos..];
        let (value, used) = match item {
            Item::Literal(c) => {
                let Some(got) = rest.chars().next() else {
                    return Err(malformed(pos));
                };
                if got != *c && !got.to_lowercase().eq(c.to_lowercase()) {
                    return Err(malformed(pos));
                }
                pos += got.len_utf8();
                continue;
            }
            Item::WeekdayShort | Item::WeekdayLong => {
                let (i, used) = name(rest, &WEEKDAYS).ok_or_else(|| malformed(pos))?;
                (i as i64, used)
            }
            Item::MonthShort | Item::MonthLong => {
                let (i, used) = name(rest, &MONTHS).ok_or_else(|| malformed(pos))?;
                f.month = Some(i as i64 + 1);
                pos += used;
                continue;
            }
            Item::HalfDay => {
                let (i, used) = name(rest, &["AM", "PM"]).ok_or_else(|| malformed(pos))?;
                f.pm = Some(i == 1);
                pos += used;
                continue;
            }
            Item::Fraction => {
                let digits = rest.bytes().take(9).take_while(u8::is_ascii_digit).count();
                if digits == 0 {
                    return Err(malformed(pos));
                }
                // Milliseconds: the first three digits, padded (".5" is 500 ms).
                let ms: String = rest[..digits]
                    .chars()
                    .chain("000".chars())
                    .take(3)
                    .collect();
                (ms.parse::<i64>().map_err(|_| malformed(pos))?, digits)
            }
            Item::ZoneOffset(_) => {
                let (offset, used) = zone_offset(rest).ok_or_else(|| malformed(pos))?;
                f.zone = Some(ParsedZone::Offset(offset));
                pos += used;
                continue;
            }
            Item::ZoneId | Item::ZoneName => {
                let (id, used) = zone_id(rest).ok_or_else(|| malformed(pos))?;
                f.zone = Some(ParsedZone::Id(id));
                pos += used;
                continue;
            }
            Item::FractionDigits(n) => {
                let digits = rest.bytes().take(*n).take_while(u8::is_ascii_digit).count();
                if digits == 0 {
                    return Err(malformed(pos));
                }
                let ms: String = rest[..digits]
                    .chars()
                    .chain("000".chars())
                    .take(3)
                    .collect();
                (ms.parse::<i64>().map_err(|_| malformed(pos))?, digits)
            }
            Item::Year | Item::WeekYear => signed(rest, 4).ok_or_else(|| malformed(pos))?,
            Item::TwoDigitYear => {
                let b = rest.as_bytes();
                if b.len() < 2 || !b[0].is_ascii_digit() || !b[1].is_ascii_digit() {
                    return Err(malformed(pos));
                }
                let yy = i64::from(b[0] - b'0') * 10 + i64::from(b[1] - b'0');
                (if yy >= 70 { 1900 + yy } else { 2000 + yy }, 2)
            }
            Item::DayOfYear(_) => unsigned(rest, 3).ok_or_else(|| malformed(pos))?,
            _ => unsigned(rest, 2).ok_or_else(|| malformed(pos))?,
        };
        match item {
            Item::Month(_) => f.month = Some(value),
            Item::Day(_) => f.day = Some(value),
            Item::Fraction | Item::FractionDigits(_) => f.millis = Some(value),
            Item::Hour24(_) => f.hour24 = Some(value),
            Item::Hour12(_) => f.hour12 = Some(value),
            Item::Minute(_) => f.minute = Some(value),
            Item::Second(_) => f.second = Some(value),
            Item::DayOfYear(_) => f.day_of_year = Some(value),
            Item::Year | Item::TwoDigitYear => f.year = Some(value),
            Item::WeekYear => f.week_year = Some(value),
            Item::Week => f.week = Some(value),
            // The day of the week is read and checked but, as in Trino, does not move the date.
            _ => {}
        }
        pos += used;
    }
    if pos < text.len() {
        return Err(malformed(pos));
    }
    let t = resolve(&f).map_err(|e| format!("Cannot parse \"{text}\": {e}"))?;
    Ok((t, f.zone))
}

/// Joda's offset parser: `Z`, `+hh`, `+hhmm` or `+hh:mm`.
fn zone_offset(text: &str) -> Option<(FixedOffset, usize)> {
    if text.starts_with(['Z', 'z']) {
        return Some((FixedOffset::east_opt(0)?, 1));
    }
    let sign = match text.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let b = text.as_bytes();
    let two = |i: usize| -> Option<i32> {
        let (x, y) = (*b.get(i)?, *b.get(i + 1)?);
        (x.is_ascii_digit() && y.is_ascii_digit())
            .then(|| i32::from(x - b'0') * 10 + i32::from(y - b'0'))
    };
    let h = two(1)?;
    let (m, used) = if b.get(3) == Some(&b':') {
        (two(4)?, 6)
    } else {
        two(3).map_or((0, 3), |m| (m, 5))
    };
    if h > 23 || m > 59 {
        return None;
    }
    Some((FixedOffset::east_opt(sign * (h * 3600 + m * 60))?, used))
}

/// The longest zone id (or one of Joda's default short names) at the start of `text`.
fn zone_id(text: &str) -> Option<(String, usize)> {
    let n = text
        .bytes()
        .take_while(|c| c.is_ascii_alphanumeric() || b"_/+-".contains(c))
        .count();
    (1..=n).rev().find_map(|len| {
        let id = &text[..len];
        let known = match id {
            "UT" | "UTC" | "GMT" => Some("UTC"),
            "EST" | "EDT" => Some("America/New_York"),
            "CST" | "CDT" => Some("America/Chicago"),
            "MST" | "MDT" => Some("America/Denver"),
            "PST" | "PDT" => Some("America/Los_Angeles"),
            _ => None,
        };
        match known {
            Some(k) => Some((k.to_string(), len)),
            None => id
                .contains('/')
                .then(|| id.parse::<chrono_tz::Tz>().ok())
                .flatten()
                .map(|_| (id.to_string(), len)),
        }
    })
}

/// Matches one of `names` (full or three-letter, as written, lower or upper case), longest
/// first; returns its index and the bytes used.
fn name(text: &str, names: &[&str]) -> Option<(usize, usize)> {
    let mut best: Option<(usize, usize)> = None;
    for (i, full) in names.iter().enumerate() {
        let short = &full[..full.len().min(3)];
        for form in [*full, short] {
            let n = form.len();
            let Some(head) = text.get(..n) else { continue };
            let matches =
                head == form || head == form.to_lowercase() || head == form.to_uppercase();
            if matches && best.is_none_or(|(_, used)| n > used) {
                best = Some((i, n));
            }
        }
    }
    best
}

/// Up to `max` digits (at least one).
fn unsigned(text: &str, max: usize) -> Option<(i64, usize)> {
    let n = text
        .bytes()
        .take(max)
        .take_while(u8::is_ascii_digit)
        .count();
    if n == 0 {
        return None;
    }
    Some((text[..n].parse().ok()?, n))
}

/// An optional sign, then up to `max` digits.
fn signed(text: &str, max: usize) -> Option<(i64, usize)> {
    match text.as_bytes().first() {
        Some(b'-') => unsigned(&text[1..], max).map(|(v, n)| (-v, n + 1)),
        Some(b'+') => unsigned(&text[1..], max).map(|(v, n)| (v, n + 1)),
        _ => unsigned(text, max),
    }
}

fn range(field: &str, value: i64, lo: i64, hi: i64) -> Result<u32, String> {
    if value < lo || value > hi {
        return Err(format!(
            "Value {value} for {field} must be in the range [{lo},{hi}]"
        ));
    }
    u32::try_from(value).map_err(|_| format!("Value {value} for {field} is out of range"))
}

/// Applies the fields in Joda's order (years, months, weeks, days, half-days, hours, ...) to
/// 1970-01-01 00:00:00, checking each against the date built so far.
fn resolve(f: &Fields) -> Result<NaiveDateTime, String> {
    let year =
        i32::try_from(f.year.unwrap_or(1970)).map_err(|_| "year out of range".to_string())?;
    let mut date = if f.week_year.is_some() || f.week.is_some() {
        let wy = i32::try_from(f.week_year.unwrap_or(1970))
            .map_err(|_| "week year out of range".to_string())?;
        let last_week = NaiveDate::from_ymd_opt(wy, 12, 28)
            .map(|d| d.iso_week().week())
            .ok_or_else(|| format!("Value {wy} for weekyear is out of range"))?;
        let week = range(
            "weekOfWeekyear",
            f.week.unwrap_or(1),
            1,
            i64::from(last_week),
        )?;
        NaiveDate::from_isoywd_opt(wy, week, Weekday::Thu)
            .ok_or_else(|| format!("Value {week} for weekOfWeekyear is out of range"))?
    } else {
        NaiveDate::from_ymd_opt(year, 1, 1)
            .ok_or_else(|| format!("Value {year} for year is out of range"))?
    };
    if let Some(m) = f.month {
        let m = range("monthOfYear", m, 1, 12)?;
        date = NaiveDate::from_ymd_opt(date.year(), m, 1)
            .ok_or_else(|| format!("Value {m} for monthOfYear is out of range"))?;
    }
    if let Some(doy) = f.day_of_year {
        let days = if date.leap_year() { 366 } else { 365 };
        let doy = range("dayOfYear", doy, 1, days)?;
        date = date
            .with_ordinal(doy)
            .ok_or_else(|| format!("Value {doy} for dayOfYear is out of range"))?;
    }
    if let Some(d) = f.day {
        let last = last_day_of_month(date);
        let d = range("dayOfMonth", d, 1, i64::from(last))?;
        date = date
            .with_day(d)
            .ok_or_else(|| format!("Value {d} for dayOfMonth is out of range"))?;
    }
    let hour = match (f.hour24, f.hour12) {
        (Some(h), _) => range("hourOfDay", h, 0, 23)?,
        (None, Some(h)) => {
            let h = range("clockhourOfHalfday", h, 1, 12)? % 12;
            if f.pm == Some(true) { h + 12 } else { h }
        }
        (None, None) => {
            if f.pm == Some(true) {
                12
            } else {
                0
            }
        }
    };
    let minute = range("minuteOfHour", f.minute.unwrap_or(0), 0, 59)?;
    let second = range("secondOfMinute", f.second.unwrap_or(0), 0, 59)?;
    let millis = range("millisOfSecond", f.millis.unwrap_or(0), 0, 999)?;
    let time = NaiveTime::from_hms_milli_opt(hour, minute, second, millis)
        .ok_or_else(|| "time out of range".to_string())?;
    Ok(date.and_time(time))
}

pub(crate) fn last_day_of_month(date: NaiveDate) -> u32 {
    let (y, m) = if date.month() == 12 {
        (date.year() + 1, 1)
    } else {
        (date.year(), date.month() + 1)
    };
    NaiveDate::from_ymd_opt(y, m, 1)
        .and_then(|d| d.pred_opt())
        .map_or(28, |d| d.day())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap()
    }

    #[test]
    fn formats_every_specifier() {
        let items =
            compile("%Y %y %m %c %d %e %H %k %h %l %i %s %f %p %j %a %W %b %M %T %r %% %x %v %q")
                .unwrap();
        assert_eq!(
            format(&items, &ts("2022-01-02 15:04:05.321")),
            "2022 22 01 1 02 2 15 15 03 3 04 05 321000 PM 002 Sun Sunday Jan January 15:04:05 03:04:05 PM % 2021 52 q"
        );
        assert!(compile("%D").unwrap_err().contains("%D not supported"));
    }

    #[test]
    fn parses_like_joda() {
        let p = |f: &str, s: &str| parse(&compile(f).unwrap(), s);
        assert_eq!(
            p("%Y/%m/%d/%H", "2022/10/20/05").unwrap(),
            ts("2022-10-20 05:00:00")
        );
        assert_eq!(p("%Y%m%d", "20221020").unwrap(), ts("2022-10-20 00:00:00"));
        assert_eq!(
            p("%h:%i %p", "12:30 am").unwrap(),
            ts("1970-01-01 00:30:00")
        );
        assert_eq!(
            p("%d-%b-%y %T.%f", "5-JAN-69 01:02:03.4567").unwrap(),
            ts("2069-01-05 01:02:03.456")
        );
        assert!(
            p("%Y-%m-%d", "2022-02-30")
                .unwrap_err()
                .contains("dayOfMonth")
        );
        assert!(
            p("%Y-%m-%d", "2022-10-20x")
                .unwrap_err()
                .contains("malformed at \"x\"")
        );
        assert!(p("%Y-%m-%d", "2022-10").unwrap_err().contains("too short"));
    }
}
