//! Job schedules in AWS's own syntax, so a job moves to an EventBridge rule or a Glue trigger
//! unchanged, and the fire times they give.
//!
//! Two forms are accepted, as AWS writes them:
//!
//! - `cron(Minutes Hours Day-of-month Month Day-of-week Year)`: six fields; day-of-week 1-7 is
//!   Sunday-Saturday; exactly one of day-of-month and day-of-week is `?`; `0/15` is start/step;
//!   `L`, `W` (day of month), `L`, `nL`, `n#k` (day of week); years 1970-2199.
//! - `rate(Value Unit)`: `rate(1 minute)`, `rate(5 minutes)`, `rate(1 hour)`, `rate(7 days)`; the
//!   unit is singular for a value of 1 and plural otherwise.
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use quarry_jobs::schedule::Schedule;
//!
//! let schedule = Schedule::parse("cron(0 18 ? * MON-FRI *)").expect("a valid AWS cron expression");
//! // Friday 2027-01-01 19:00 UTC: the next run is on Monday.
//! let after = Utc.with_ymd_and_hms(2027, 1, 1, 19, 0, 0).single().expect("a valid time");
//! let next = schedule.next_after(after, chrono_tz::UTC, after);
//! assert_eq!(next, Utc.with_ymd_and_hms(2027, 1, 4, 18, 0, 0).single());
//! ```
//!
//! Cron evaluation is croner's (4.x), driven with the options that make it read AWS fields:
//! seconds and year required (a `0` seconds field is prepended), Quartz weekdays (1 = Sunday)
//! and "sloppy" ranges (`0/15`). Everything croner would accept but AWS would not (`+` in
//! day-of-week, month names in the day-of-week field, years past 2199, `?` in both day fields...)
//! is rejected here first.
//!
//! Time zones: AWS evaluates cron in UTC (EventBridge Scheduler also takes a time zone); the
//! caller passes one, [`DEFAULT_TIME_ZONE`] being UTC. In a zone with daylight saving time a
//! fixed-time schedule (one minute of one hour, e.g. `cron(30 2 * * ? *)`) whose wall-clock time
//! falls in the spring-forward gap runs at the first instant after the gap (03:00 local), and
//! runs once, at the first of the two instants, when the clock falls back. A schedule with
//! several minutes or hours skips the times of the gap and runs at both instants of the overlap.
//! Rates are durations in absolute time and ignore the zone (`rate(1 day)` is 24 hours).

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::errors::CronError;
use croner::parser::{CronParser, Seconds, Year};

/// The zone a schedule is evaluated in when a job names none, as AWS does.
pub const DEFAULT_TIME_ZONE: Tz = chrono_tz::UTC;

/// The first year an AWS cron expression may name.
pub const FIRST_YEAR: u32 = 1970;
/// The last year an AWS cron expression may name.
pub const LAST_YEAR: u32 = 2199;

/// The most fire times [`Schedule::last_between`] steps through when it cannot jump straight to
/// the answer (which only happens when croner's backward and forward searches disagree, around
/// a daylight-saving change). Past the cap it returns the latest fire time found.
pub const LAST_BETWEEN_MAX_STEPS: usize = 4096;

const NANOS_PER_SECOND: i128 = 1_000_000_000;

/// A parsed AWS schedule expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    /// `cron(Minutes Hours Day-of-month Month Day-of-week Year)`.
    Cron {
        /// The expression, fields separated by one space: `cron(0 12 * * ? *)`.
        expression: String,
        /// The expression as croner evaluates it.
        pattern: CronPattern,
    },
    /// `rate(Value Unit)`: every `every`, counted from the job's anchor.
    Rate {
        /// The period: a whole number of minutes, hours or days.
        every: TimeDelta,
        /// The expression, normalised: `rate(5 minutes)`.
        text: String,
    },
}

/// A cron expression translated for croner and parsed; made only by [`Schedule::parse`].
#[derive(Clone, PartialEq, Eq)]
pub struct CronPattern {
    // Boxed: croner's pattern is several hundred bytes, a rate a few dozen.
    cron: Box<Cron>,
}

impl fmt::Debug for CronPattern {
    // croner's own Debug prints every bit of its 1-5000 year field.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CronPattern")
            .field(&self.cron.as_str())
            .finish()
    }
}

/// A field of an AWS cron expression, in the order they are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CronField {
    Minutes,
    Hours,
    DayOfMonth,
    Month,
    DayOfWeek,
    Year,
}

impl CronField {
    const ALL: [CronField; 6] = [
        CronField::Minutes,
        CronField::Hours,
        CronField::DayOfMonth,
        CronField::Month,
        CronField::DayOfWeek,
        CronField::Year,
    ];

    /// The field's name as AWS documents it.
    pub fn name(self) -> &'static str {
        match self {
            CronField::Minutes => "minutes",
            CronField::Hours => "hours",
            CronField::DayOfMonth => "day-of-month",
            CronField::Month => "month",
            CronField::DayOfWeek => "day-of-week",
            CronField::Year => "year",
        }
    }

    /// What AWS allows in the field.
    pub fn allowed(self) -> &'static str {
        match self {
            CronField::Minutes => "0-59 with , - * /",
            CronField::Hours => "0-23 with , - * /",
            CronField::DayOfMonth => "1-31 with , - * ? / L W",
            CronField::Month => "1-12 or JAN-DEC with , - * /",
            CronField::DayOfWeek => "1-7 (1 = Sunday) or SUN-SAT with , - * ? / L #",
            CronField::Year => "1970-2199 with , - * /",
        }
    }

    /// Characters other than digits and letters the field may hold (`?` is checked apart, as
    /// it must be the whole field).
    fn punctuation(self) -> &'static [char] {
        match self {
            CronField::DayOfWeek => &[',', '-', '*', '/', '#'],
            _ => &[',', '-', '*', '/'],
        }
    }

    /// A value croner accepts in this position, to test one field at a time.
    fn neutral(self) -> &'static str {
        match self {
            CronField::Minutes | CronField::Hours => "0",
            CronField::DayOfMonth | CronField::DayOfWeek => "?",
            CronField::Month => "1",
            CronField::Year => "2030",
        }
    }
}

impl fmt::Display for CronField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a schedule expression or a time zone name was rejected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScheduleError {
    #[error(
        "{text:?}: a schedule is cron(Minutes Hours Day-of-month Month Day-of-week Year) or \
         rate(Value Unit), e.g. cron(0 12 * * ? *) or rate(5 minutes)"
    )]
    Syntax { text: String },

    #[error(
        "{expression}: expected 6 fields (Minutes Hours Day-of-month Month Day-of-week Year), \
         found {found}"
    )]
    FieldCount { expression: String, found: usize },

    #[error("{expression}: invalid {field} '{value}'; allowed: {allowed}")]
    Field {
        expression: String,
        field: CronField,
        value: String,
        allowed: &'static str,
        /// croner's reason, when croner found the problem.
        source: Option<CronError>,
    },

    #[error("{expression}: use '?' in day-of-month or day-of-week (one of them must be '?')")]
    MissingQuestionMark { expression: String },

    #[error(
        "{expression}: '?' may be in only one of day-of-month and day-of-week; put '*' or a \
         value in the other"
    )]
    QuestionMarkInBoth { expression: String },

    /// croner rejected the expression although each field passes on its own.
    #[error("{expression}: not a valid cron expression")]
    Cron {
        expression: String,
        source: CronError,
    },

    #[error(
        "{expression}: the rate value '{value}' must be a whole number from 1 to 4294967295, \
         e.g. rate(5 minutes)"
    )]
    RateValue { expression: String, value: String },

    #[error("{expression}: unknown unit '{unit}'; use minute, minutes, hour, hours, day or days")]
    RateUnit { expression: String, unit: String },

    #[error("{expression}: a value of {value} takes the unit '{unit}': write rate({value} {unit})")]
    RateUnitNumber {
        expression: String,
        value: u32,
        unit: &'static str,
    },

    #[error("unknown time zone {name:?}; use an IANA name such as \"UTC\" or \"Europe/Paris\"")]
    TimeZone {
        name: String,
        source: chrono_tz::ParseError,
    },
}

/// Parses an IANA time zone name ("UTC", "Europe/Paris"), exactly as spelled in the tz database.
pub fn parse_time_zone(name: &str) -> Result<Tz, ScheduleError> {
    name.parse::<Tz>()
        .map_err(|source| ScheduleError::TimeZone {
            name: name.to_string(),
            source,
        })
}

impl Schedule {
    /// Parses `cron(...)` or `rate(...)`; whitespace around the expression and between fields
    /// is allowed.
    pub fn parse(text: &str) -> Result<Schedule, ScheduleError> {
        let trimmed = text.trim();
        if let Some(inner) = trimmed
            .strip_prefix("cron(")
            .and_then(|rest| rest.strip_suffix(')'))
        {
            parse_cron(inner)
        } else if let Some(inner) = trimmed
            .strip_prefix("rate(")
            .and_then(|rest| rest.strip_suffix(')'))
        {
            parse_rate(inner)
        } else {
            Err(ScheduleError::Syntax {
                text: trimmed.to_string(),
            })
        }
    }

    /// The expression in AWS syntax, as [`fmt::Display`] prints it.
    pub fn as_str(&self) -> &str {
        match self {
            Schedule::Cron { expression, .. } => expression,
            Schedule::Rate { text, .. } => text,
        }
    }

    /// The first fire time strictly after `after`, evaluated in `tz`, as UTC; `None` when the
    /// schedule never fires again (a cron expression's years are over).
    ///
    /// For `rate()` the fire times are `anchor + k * every` for k >= 1, `anchor` being the
    /// job's creation (or first-seen) time: the anchor itself is not a fire time. `tz` plays
    /// no part for a rate.
    pub fn next_after(
        &self,
        after: DateTime<Utc>,
        tz: Tz,
        anchor: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Cron { pattern, .. } => pattern.next_after(after, tz),
            Schedule::Rate { every, .. } => rate_next_after(*every, anchor, after),
        }
    }

    /// The most recent fire time `t` with `since < t <= at`, for missed-run detection.
    ///
    /// For cron this searches backwards from `at`, so it costs the same however far back
    /// `since` is; it then confirms the answer with the forward search [`Self::next_after`]
    /// uses, so both agree around daylight-saving changes. Only when they disagree does it
    /// walk forward, from a day before croner's answer, at most [`LAST_BETWEEN_MAX_STEPS`]
    /// fire times, returning the latest found.
    pub fn last_between(
        &self,
        since: DateTime<Utc>,
        at: DateTime<Utc>,
        tz: Tz,
        anchor: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        if at <= since {
            return None;
        }
        match self {
            Schedule::Cron { pattern, .. } => pattern.last_between(since, at, tz),
            Schedule::Rate { every, .. } => {
                rate_last_at_or_before(*every, anchor, at).filter(|fire| *fire > since)
            }
        }
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Schedule {
    type Err = ScheduleError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Schedule::parse(text)
    }
}

impl serde::Serialize for Schedule {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Schedule {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Schedule::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl CronPattern {
    fn next_after(&self, after: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        // croner answers strictly after its start; the loop only guards that promise, so a
        // caller never sees a fire time at or before `after`.
        let mut from = after.with_timezone(&tz);
        for _ in 0..4 {
            let next = self.cron.find_next_occurrence(&from, false).ok()?;
            let next_utc = next.with_timezone(&Utc);
            if next_utc > after {
                return Some(next_utc);
            }
            from = next;
        }
        None
    }

    fn last_between(
        &self,
        since: DateTime<Utc>,
        at: DateTime<Utc>,
        tz: Tz,
    ) -> Option<DateTime<Utc>> {
        let one_second = TimeDelta::seconds(1);
        let previous = self
            .cron
            .find_previous_occurrence(&at.with_timezone(&tz), true)
            .ok()
            .map(|fire| fire.with_timezone(&Utc));
        // Where the forward walk starts: just before croner's backward answer when the forward
        // search agrees with it (the walk then takes one or two steps), else further back.
        let start = match previous {
            Some(fire) if fire > since && fire <= at => {
                let before = fire - one_second;
                if self.next_after(before, tz) == Some(fire) {
                    before
                } else {
                    (fire - TimeDelta::days(1)).max(since)
                }
            }
            _ => since,
        };
        let mut latest = None;
        let mut cursor = start;
        for _ in 0..LAST_BETWEEN_MAX_STEPS {
            match self.next_after(cursor, tz) {
                Some(fire) if fire <= at => {
                    latest = Some(fire);
                    cursor = fire;
                }
                _ => break,
            }
        }
        latest
    }
}

/// The parser options that make croner read AWS fields (after a `0` seconds field).
fn aws_parser() -> CronParser {
    CronParser::builder()
        .seconds(Seconds::Required)
        .year(Year::Required)
        .alternative_weekdays(true)
        .sloppy_ranges(true)
        .build()
}

fn parse_cron(inner: &str) -> Result<Schedule, ScheduleError> {
    let fields: Vec<&str> = inner.split_whitespace().collect();
    let expression = format!("cron({})", fields.join(" "));
    let Ok(fields) = <[&str; 6]>::try_from(fields.as_slice()) else {
        return Err(ScheduleError::FieldCount {
            expression,
            found: fields.len(),
        });
    };
    let [_, _, day_of_month, _, day_of_week, _] = fields;
    for (field, value) in [
        (CronField::DayOfMonth, day_of_month),
        (CronField::DayOfWeek, day_of_week),
    ] {
        if value.contains('?') && value != "?" {
            return Err(field_error(&expression, field, value, None));
        }
    }
    match (day_of_month == "?", day_of_week == "?") {
        (true, true) => return Err(ScheduleError::QuestionMarkInBoth { expression }),
        (false, false) => return Err(ScheduleError::MissingQuestionMark { expression }),
        _ => {}
    }

    let mut translated: [String; 6] = Default::default();
    for ((field, value), slot) in CronField::ALL.into_iter().zip(fields).zip(&mut translated) {
        *slot = translate_field(&expression, field, value)?;
    }

    let parser = aws_parser();
    match parser.parse(&format!("0 {}", translated.join(" "))) {
        Ok(cron) => Ok(Schedule::Cron {
            expression,
            pattern: CronPattern {
                cron: Box::new(cron),
            },
        }),
        Err(whole) => {
            // croner does not say which field it stumbled on: try each alone.
            for (index, field) in CronField::ALL.into_iter().enumerate() {
                let mut probe = CronField::ALL.map(CronField::neutral);
                probe[index] = translated[index].as_str();
                if let Err(source) = parser.parse(&format!("0 {}", probe.join(" "))) {
                    return Err(field_error(&expression, field, fields[index], Some(source)));
                }
            }
            Err(ScheduleError::Cron {
                expression,
                source: whole,
            })
        }
    }
}

fn field_error(
    expression: &str,
    field: CronField,
    value: &str,
    source: Option<CronError>,
) -> ScheduleError {
    ScheduleError::Field {
        expression: expression.to_string(),
        field,
        value: value.to_string(),
        allowed: field.allowed(),
        source,
    }
}

/// Checks one field's characters and list structure and rewrites it for croner: month and
/// weekday names to numbers (each only in its own field: croner would replace them anywhere),
/// a lone `L` in day-of-week to 7 (Saturday, AWS's "last day of the week"; croner would match
/// no day), and the year field bounded to 1970-2199.
fn translate_field(
    expression: &str,
    field: CronField,
    value: &str,
) -> Result<String, ScheduleError> {
    let invalid = || field_error(expression, field, value, None);
    if value == "?" && matches!(field, CronField::DayOfMonth | CronField::DayOfWeek) {
        return Ok(value.to_string());
    }

    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_alphabetic() {
            let mut word = c.to_ascii_uppercase().to_string();
            while let Some(next) = chars.next_if(char::is_ascii_alphabetic) {
                word.push(next.to_ascii_uppercase());
            }
            out.push_str(&translate_word(field, &word).ok_or_else(invalid)?);
        } else if c.is_ascii_digit() || field.punctuation().contains(&c) {
            out.push(c);
        } else {
            return Err(invalid());
        }
    }

    let mut items = Vec::new();
    for item in out.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => (range, Some(step)),
            None => (item, None),
        };
        if range.is_empty()
            || step.is_some_and(|step| step.is_empty() || !step.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(invalid());
        }
        let item = match field {
            CronField::DayOfWeek if item == "L" => "7".to_string(),
            CronField::Year => bound_years(range, step).ok_or_else(invalid)?,
            _ => item.to_string(),
        };
        items.push(item);
    }
    Ok(items.join(","))
}

/// A word of letters inside a field, as croner should see it.
fn translate_word(field: CronField, word: &str) -> Option<String> {
    const MONTHS: [&str; 12] = [
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
    ];
    const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
    let position = |names: &[&str]| {
        names
            .iter()
            .position(|name| *name == word)
            .map(|index| (index + 1).to_string())
    };
    match field {
        CronField::Month => position(&MONTHS),
        CronField::DayOfWeek if word == "L" => Some(word.to_string()),
        CronField::DayOfWeek => position(&WEEKDAYS),
        CronField::DayOfMonth if matches!(word, "L" | "W" | "LW") => Some(word.to_string()),
        _ => None,
    }
}

/// Checks a year item (`*`, `2027`, `2027-2030`, with an optional step) against AWS's
/// 1970-2199 and writes it so croner stops at 2199 too (its own range is 1-5000).
fn bound_years(range: &str, step: Option<&str>) -> Option<String> {
    let year = |text: &str| {
        text.parse::<u32>()
            .ok()
            .filter(|year| (FIRST_YEAR..=LAST_YEAR).contains(year))
    };
    let bounded = if range == "*" {
        format!("{FIRST_YEAR}-{LAST_YEAR}")
    } else if let Some((start, end)) = range.split_once('-') {
        format!("{}-{}", year(start)?, year(end)?)
    } else if step.is_some() {
        format!("{}-{LAST_YEAR}", year(range)?)
    } else {
        year(range)?.to_string()
    };
    Some(match step {
        Some(step) => format!("{bounded}/{step}"),
        None => bounded,
    })
}

fn parse_rate(inner: &str) -> Result<Schedule, ScheduleError> {
    let parts: Vec<&str> = inner.split_whitespace().collect();
    let text = format!("rate({})", parts.join(" "));
    let [value_text, unit] = parts.as_slice() else {
        return Err(ScheduleError::Syntax { text });
    };
    let value = value_text
        .bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| value_text.parse::<u32>().ok())
        .flatten()
        .filter(|value| *value > 0)
        .ok_or_else(|| ScheduleError::RateValue {
            expression: text.clone(),
            value: value_text.to_string(),
        })?;
    let (singular, plural, unit_length) = match *unit {
        "minute" | "minutes" => ("minute", "minutes", TimeDelta::minutes(1)),
        "hour" | "hours" => ("hour", "hours", TimeDelta::hours(1)),
        "day" | "days" => ("day", "days", TimeDelta::days(1)),
        _ => {
            return Err(ScheduleError::RateUnit {
                expression: text,
                unit: unit.to_string(),
            });
        }
    };
    let expected = if value == 1 { singular } else { plural };
    if *unit != expected {
        return Err(ScheduleError::RateUnitNumber {
            expression: text,
            value,
            unit: expected,
        });
    }
    // At most 2^32 days: far inside TimeDelta's range, but checked rather than assumed.
    let every = delta_from_nanos(nanos(unit_length) * i128::from(value)).ok_or_else(|| {
        ScheduleError::RateValue {
            expression: text.clone(),
            value: value_text.to_string(),
        }
    })?;
    Ok(Schedule::Rate { every, text })
}

fn nanos(delta: TimeDelta) -> i128 {
    i128::from(delta.num_seconds()) * NANOS_PER_SECOND + i128::from(delta.subsec_nanos())
}

fn delta_from_nanos(total: i128) -> Option<TimeDelta> {
    let seconds = i64::try_from(total.div_euclid(NANOS_PER_SECOND)).ok()?;
    let nanos = u32::try_from(total.rem_euclid(NANOS_PER_SECOND)).ok()?;
    TimeDelta::new(seconds, nanos)
}

/// `anchor + k * every`, or `None` past the end of time.
fn rate_fire(every: TimeDelta, anchor: DateTime<Utc>, k: i128) -> Option<DateTime<Utc>> {
    anchor.checked_add_signed(delta_from_nanos(nanos(every).checked_mul(k)?)?)
}

fn rate_next_after(
    every: TimeDelta,
    anchor: DateTime<Utc>,
    after: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let every_nanos = nanos(every);
    if every_nanos <= 0 {
        return None;
    }
    let k = (nanos(after - anchor).div_euclid(every_nanos) + 1).max(1);
    rate_fire(every, anchor, k)
}

fn rate_last_at_or_before(
    every: TimeDelta,
    anchor: DateTime<Utc>,
    at: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let every_nanos = nanos(every);
    if every_nanos <= 0 {
        return None;
    }
    let k = nanos(at - anchor).div_euclid(every_nanos);
    if k < 1 {
        return None;
    }
    rate_fire(every, anchor, k)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use chrono_tz::Europe::Paris;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s)
            .single()
            .expect("a valid UTC time")
    }

    fn parse(text: &str) -> Schedule {
        Schedule::parse(text).unwrap_or_else(|e| panic!("{text} should parse: {e}"))
    }

    fn error(text: &str) -> ScheduleError {
        match Schedule::parse(text) {
            Ok(schedule) => panic!("{text} should be rejected, parsed as {schedule:?}"),
            Err(e) => e,
        }
    }

    /// The first `n` fire times after `after`, in UTC (a rate anchored at `after`).
    fn fires(schedule: &Schedule, after: DateTime<Utc>, tz: Tz, n: usize) -> Vec<DateTime<Utc>> {
        fires_anchored(schedule, after, tz, after, n)
    }

    fn fires_anchored(
        schedule: &Schedule,
        after: DateTime<Utc>,
        tz: Tz,
        anchor: DateTime<Utc>,
        n: usize,
    ) -> Vec<DateTime<Utc>> {
        let mut out = Vec::new();
        let mut cursor = after;
        while out.len() < n {
            match schedule.next_after(cursor, tz, anchor) {
                Some(fire) => {
                    out.push(fire);
                    cursor = fire;
                }
                None => break,
            }
        }
        out
    }

    /// The module example, kept compiling and true here.
    #[test]
    fn module_example() {
        let schedule =
            Schedule::parse("cron(0 18 ? * MON-FRI *)").expect("a valid AWS cron expression");
        let after = Utc
            .with_ymd_and_hms(2027, 1, 1, 19, 0, 0)
            .single()
            .expect("a valid time");
        let next = schedule.next_after(after, chrono_tz::UTC, after);
        assert_eq!(next, Utc.with_ymd_and_hms(2027, 1, 4, 18, 0, 0).single());
    }

    #[test]
    fn daily_at_noon_is_strictly_after() {
        let s = parse("cron(0 12 * * ? *)");
        let utc_tz = DEFAULT_TIME_ZONE;
        assert_eq!(
            s.next_after(utc(2027, 1, 1, 13, 0, 0), utc_tz, utc(2020, 1, 1, 0, 0, 0)),
            Some(utc(2027, 1, 2, 12, 0, 0))
        );
        // Exactly on a fire time: the next one, not the same.
        assert_eq!(
            s.next_after(utc(2027, 1, 2, 12, 0, 0), utc_tz, utc(2020, 1, 1, 0, 0, 0)),
            Some(utc(2027, 1, 3, 12, 0, 0))
        );
        // Sub-second precision on either side of the fire time.
        let just_before = utc(2027, 1, 2, 11, 59, 59) + TimeDelta::milliseconds(500);
        assert_eq!(
            s.next_after(just_before, utc_tz, just_before),
            Some(utc(2027, 1, 2, 12, 0, 0))
        );
        let just_after = utc(2027, 1, 2, 12, 0, 0) + TimeDelta::milliseconds(500);
        assert_eq!(
            s.next_after(just_after, utc_tz, just_after),
            Some(utc(2027, 1, 3, 12, 0, 0))
        );
        assert_eq!(s.to_string(), "cron(0 12 * * ? *)");
    }

    #[test]
    fn last_friday_of_each_month_in_2027_only() {
        let s = parse("cron(15 10 ? * 6L 2027)");
        let got = fires(&s, utc(2026, 6, 1, 0, 0, 0), DEFAULT_TIME_ZONE, 20);
        let last_fridays = [29, 26, 26, 30, 28, 25, 30, 27, 24, 29, 26, 31];
        let expected: Vec<_> = last_fridays
            .iter()
            .zip(1..)
            .map(|(day, month)| utc(2027, month, *day, 10, 15, 0))
            .collect();
        assert_eq!(got, expected, "12 fires, then none after 2027");
    }

    #[test]
    fn weekdays_at_six_pm() {
        let s = parse("cron(0 18 ? * MON-FRI *)");
        // 2027-01-01 is a Friday.
        let got = fires(&s, utc(2027, 1, 1, 17, 0, 0), DEFAULT_TIME_ZONE, 3);
        assert_eq!(
            got,
            vec![
                utc(2027, 1, 1, 18, 0, 0),
                utc(2027, 1, 4, 18, 0, 0),
                utc(2027, 1, 5, 18, 0, 0)
            ]
        );
        // Names are case-insensitive, as in AWS's own examples (`mon-sun`).
        assert_eq!(
            parse("cron(0 18 ? * mon-fri *)").next_after(
                utc(2027, 1, 1, 19, 0, 0),
                DEFAULT_TIME_ZONE,
                utc(2027, 1, 1, 0, 0, 0)
            ),
            Some(utc(2027, 1, 4, 18, 0, 0))
        );
    }

    #[test]
    fn start_slash_step_minutes() {
        let s = parse("cron(0/15 * * * ? *)");
        let got = fires(&s, utc(2027, 1, 1, 10, 7, 0), DEFAULT_TIME_ZONE, 4);
        assert_eq!(
            got,
            vec![
                utc(2027, 1, 1, 10, 15, 0),
                utc(2027, 1, 1, 10, 30, 0),
                utc(2027, 1, 1, 10, 45, 0),
                utc(2027, 1, 1, 11, 0, 0)
            ]
        );
        // A start other than 0: 10/20 is :10, :30, :50.
        let got = fires(
            &parse("cron(10/20 * * * ? *)"),
            utc(2027, 1, 1, 10, 50, 0),
            DEFAULT_TIME_ZONE,
            2,
        );
        assert_eq!(
            got,
            vec![utc(2027, 1, 1, 11, 10, 0), utc(2027, 1, 1, 11, 30, 0)]
        );
    }

    #[test]
    fn every_five_minutes_in_office_hours() {
        let s = parse("cron(0/5 8-17 ? * MON-FRI *)");
        assert_eq!(
            s.next_after(
                utc(2027, 1, 5, 9, 2, 0),
                DEFAULT_TIME_ZONE,
                utc(2027, 1, 1, 0, 0, 0)
            ),
            Some(utc(2027, 1, 5, 9, 5, 0))
        );
        // Friday 17:55 is the week's last; then Monday 08:00.
        let got = fires(&s, utc(2027, 1, 1, 17, 50, 0), DEFAULT_TIME_ZONE, 2);
        assert_eq!(
            got,
            vec![utc(2027, 1, 1, 17, 55, 0), utc(2027, 1, 4, 8, 0, 0)]
        );
    }

    #[test]
    fn weekday_numbers_start_on_sunday() {
        // 2 is Monday in AWS (croner's default would read Tuesday). 2027-01-06 is a Wednesday.
        let got = fires(
            &parse("cron(0 10 ? * 2 *)"),
            utc(2027, 1, 6, 0, 0, 0),
            DEFAULT_TIME_ZONE,
            2,
        );
        assert_eq!(
            got,
            vec![utc(2027, 1, 11, 10, 0, 0), utc(2027, 1, 18, 10, 0, 0)]
        );
        // 1 is Sunday, 7 Saturday.
        assert_eq!(
            fires(
                &parse("cron(0 10 ? * 1 *)"),
                utc(2027, 1, 6, 0, 0, 0),
                DEFAULT_TIME_ZONE,
                1
            ),
            vec![utc(2027, 1, 10, 10, 0, 0)]
        );
        assert_eq!(
            fires(
                &parse("cron(0 10 ? * 7 *)"),
                utc(2027, 1, 6, 0, 0, 0),
                DEFAULT_TIME_ZONE,
                1
            ),
            vec![utc(2027, 1, 9, 10, 0, 0)]
        );
        // A lone L is the last day of the week: Saturday.
        assert_eq!(
            fires(
                &parse("cron(0 10 ? * L *)"),
                utc(2027, 1, 6, 0, 0, 0),
                DEFAULT_TIME_ZONE,
                2
            ),
            vec![utc(2027, 1, 9, 10, 0, 0), utc(2027, 1, 16, 10, 0, 0)]
        );
    }

    #[test]
    fn last_day_of_month_including_leap_february() {
        let s = parse("cron(0 10 L * ? *)");
        let got = fires(&s, utc(2028, 1, 31, 10, 0, 0), DEFAULT_TIME_ZONE, 3);
        assert_eq!(
            got,
            vec![
                utc(2028, 2, 29, 10, 0, 0),
                utc(2028, 3, 31, 10, 0, 0),
                utc(2028, 4, 30, 10, 0, 0)
            ]
        );
        assert_eq!(
            s.next_after(
                utc(2027, 2, 1, 0, 0, 0),
                DEFAULT_TIME_ZONE,
                utc(2027, 1, 1, 0, 0, 0)
            ),
            Some(utc(2027, 2, 28, 10, 0, 0))
        );
    }

    #[test]
    fn nearest_weekday_to_the_fifteenth() {
        let s = parse("cron(0 10 15W * ? *)");
        // 2027-05-15 is a Saturday: Friday the 14th.
        assert_eq!(
            s.next_after(
                utc(2027, 5, 1, 0, 0, 0),
                DEFAULT_TIME_ZONE,
                utc(2027, 1, 1, 0, 0, 0)
            ),
            Some(utc(2027, 5, 14, 10, 0, 0))
        );
        // 2027-08-15 is a Sunday: Monday the 16th.
        assert_eq!(
            s.next_after(
                utc(2027, 8, 1, 0, 0, 0),
                DEFAULT_TIME_ZONE,
                utc(2027, 1, 1, 0, 0, 0)
            ),
            Some(utc(2027, 8, 16, 10, 0, 0))
        );
        // 2027-06-15 is a Tuesday: the 15th itself.
        assert_eq!(
            s.next_after(
                utc(2027, 6, 1, 0, 0, 0),
                DEFAULT_TIME_ZONE,
                utc(2027, 1, 1, 0, 0, 0)
            ),
            Some(utc(2027, 6, 15, 10, 0, 0))
        );
    }

    #[test]
    fn nearest_weekday_stays_in_the_month() {
        // 2027-05-01 is a Saturday: 1W is Monday the 3rd, not Friday April 30th.
        let first = parse("cron(0 10 1W * ? *)");
        let anchor = utc(2027, 1, 1, 0, 0, 0);
        assert_eq!(
            first.next_after(utc(2027, 4, 2, 0, 0, 0), DEFAULT_TIME_ZONE, anchor),
            Some(utc(2027, 5, 3, 10, 0, 0))
        );
        // 2027-07-31 is a Saturday: LW (last weekday) is Friday the 30th.
        let last = parse("cron(0 10 LW * ? *)");
        assert_eq!(
            last.next_after(utc(2027, 7, 1, 0, 0, 0), DEFAULT_TIME_ZONE, anchor),
            Some(utc(2027, 7, 30, 10, 0, 0))
        );
    }

    #[test]
    fn third_friday() {
        let got = fires(
            &parse("cron(0 10 ? * 6#3 *)"),
            utc(2027, 1, 1, 0, 0, 0),
            DEFAULT_TIME_ZONE,
            3,
        );
        assert_eq!(
            got,
            vec![
                utc(2027, 1, 15, 10, 0, 0),
                utc(2027, 2, 19, 10, 0, 0),
                utc(2027, 3, 19, 10, 0, 0)
            ]
        );
        assert_eq!(
            fires(
                &parse("cron(0 10 ? * FRI#3 *)"),
                utc(2027, 1, 1, 0, 0, 0),
                DEFAULT_TIME_ZONE,
                1
            ),
            vec![utc(2027, 1, 15, 10, 0, 0)]
        );
    }

    #[test]
    fn one_shot_year_then_never() {
        let s = parse("cron(0 8 1 JAN ? 2030)");
        let anchor = utc(2027, 1, 1, 0, 0, 0);
        assert_eq!(
            s.next_after(utc(2027, 6, 1, 0, 0, 0), DEFAULT_TIME_ZONE, anchor),
            Some(utc(2030, 1, 1, 8, 0, 0))
        );
        assert_eq!(
            s.next_after(utc(2030, 1, 1, 8, 0, 0), DEFAULT_TIME_ZONE, anchor),
            None
        );
        assert_eq!(
            s.last_between(
                utc(1970, 1, 1, 0, 0, 0),
                utc(2199, 12, 31, 0, 0, 0),
                DEFAULT_TIME_ZONE,
                anchor
            ),
            Some(utc(2030, 1, 1, 8, 0, 0))
        );
        assert_eq!(
            s.last_between(
                utc(1970, 1, 1, 0, 0, 0),
                utc(2029, 12, 31, 0, 0, 0),
                DEFAULT_TIME_ZONE,
                anchor
            ),
            None
        );
    }

    #[test]
    fn years_stop_at_2199() {
        // `*` in the year field means AWS's 1970-2199, not croner's 1-5000.
        let s = parse("cron(0 0 1 1 ? *)");
        let anchor = utc(2027, 1, 1, 0, 0, 0);
        assert_eq!(
            s.next_after(utc(2198, 6, 1, 0, 0, 0), DEFAULT_TIME_ZONE, anchor),
            Some(utc(2199, 1, 1, 0, 0, 0))
        );
        assert_eq!(
            s.next_after(utc(2199, 1, 1, 0, 0, 0), DEFAULT_TIME_ZONE, anchor),
            None
        );
        let every_other = parse("cron(0 0 1 1 ? 2027/2)");
        assert_eq!(
            fires(&every_other, utc(2026, 1, 1, 0, 0, 0), DEFAULT_TIME_ZONE, 2),
            vec![utc(2027, 1, 1, 0, 0, 0), utc(2029, 1, 1, 0, 0, 0)]
        );
    }

    fn field_of(e: &ScheduleError) -> (CronField, String, bool) {
        match e {
            ScheduleError::Field {
                field,
                value,
                source,
                ..
            } => (*field, value.clone(), source.is_some()),
            other => panic!("expected a field error, got {other:?}"),
        }
    }

    #[test]
    fn year_out_of_range() {
        let e = error("cron(0 8 1 1 ? 2200)");
        assert_eq!(
            e.to_string(),
            "cron(0 8 1 1 ? 2200): invalid year '2200'; allowed: 1970-2199 with , - * /"
        );
        assert_eq!(field_of(&error("cron(0 8 1 1 ? 1969)")).0, CronField::Year);
        assert_eq!(
            field_of(&error("cron(0 8 1 1 ? 2027-2300)")).0,
            CronField::Year
        );
        assert_eq!(
            field_of(&error("cron(0 8 1 1 ? 1950/5)")).0,
            CronField::Year
        );
    }

    #[test]
    fn question_mark_rule() {
        assert_eq!(
            error("cron(0 12 * * * *)").to_string(),
            "cron(0 12 * * * *): use '?' in day-of-month or day-of-week (one of them must be '?')"
        );
        assert!(matches!(
            error("cron(0 12 1 * 2 *)"),
            ScheduleError::MissingQuestionMark { .. }
        ));
        assert!(matches!(
            error("cron(0 12 ? * ? *)"),
            ScheduleError::QuestionMarkInBoth { .. }
        ));
        assert_eq!(
            field_of(&error("cron(0 12 1,? * ? *)")).0,
            CronField::DayOfMonth
        );
        // `?` elsewhere is a plain bad character.
        assert!(matches!(
            error("cron(? 12 1 * ? *)"),
            ScheduleError::Field {
                field: CronField::Minutes,
                ..
            }
        ));
    }

    #[test]
    fn six_fields_exactly() {
        let e = error("cron(0 12 * * ?)");
        assert_eq!(
            e.to_string(),
            "cron(0 12 * * ?): expected 6 fields (Minutes Hours Day-of-month Month Day-of-week Year), found 5"
        );
        assert!(matches!(
            error("cron(0 0 12 * * ? *)"),
            ScheduleError::FieldCount { found: 7, .. }
        ));
        assert!(matches!(
            error("cron()"),
            ScheduleError::FieldCount { found: 0, .. }
        ));
    }

    #[test]
    fn bad_names_and_values_name_their_field() {
        assert_eq!(
            error("cron(0 12 1 FOO ? *)").to_string(),
            "cron(0 12 1 FOO ? *): invalid month 'FOO'; allowed: 1-12 or JAN-DEC with , - * /"
        );
        // croner alone would turn MON into 2 anywhere, making this February.
        assert_eq!(field_of(&error("cron(0 12 1 MON ? *)")).0, CronField::Month);
        assert_eq!(
            field_of(&error("cron(0 12 ? * JAN *)")).0,
            CronField::DayOfWeek
        );
        // Values croner rejects keep croner's reason as the source.
        let e = error("cron(60 12 * * ? *)");
        assert_eq!(field_of(&e), (CronField::Minutes, "60".to_string(), true));
        assert!(std::error::Error::source(&e).is_some());
        assert_eq!(
            e.to_string(),
            "cron(60 12 * * ? *): invalid minutes '60'; allowed: 0-59 with , - * /"
        );
        assert_eq!(
            field_of(&error("cron(0 24 * * ? *)")),
            (CronField::Hours, "24".to_string(), true)
        );
        assert_eq!(
            field_of(&error("cron(0 12 32 * ? *)")),
            (CronField::DayOfMonth, "32".to_string(), true)
        );
        assert_eq!(
            field_of(&error("cron(0 12 1 13 ? *)")),
            (CronField::Month, "13".to_string(), true)
        );
        assert_eq!(
            field_of(&error("cron(0 12 ? * 0 *)")),
            (CronField::DayOfWeek, "0".to_string(), true)
        );
        assert_eq!(
            field_of(&error("cron(0 12 ? * 8 *)")),
            (CronField::DayOfWeek, "8".to_string(), true)
        );
        assert_eq!(
            field_of(&error("cron(0 12 ? * 6#6 *)")).0,
            CronField::DayOfWeek
        );
        assert_eq!(
            field_of(&error("cron(0/0 12 * * ? *)")).0,
            CronField::Minutes
        );
        // Syntax croner has and AWS does not.
        assert_eq!(
            field_of(&error("cron(0 12 ? * +2 *)")),
            (CronField::DayOfWeek, "+2".to_string(), false)
        );
        assert_eq!(
            field_of(&error("cron(/5 12 * * ? *)")).0,
            CronField::Minutes
        );
        assert_eq!(
            field_of(&error("cron(0 12 ? * 2W *)")).0,
            CronField::DayOfWeek
        );
        assert_eq!(
            field_of(&error("cron(0 12 1#2 * ? *)")).0,
            CronField::DayOfMonth
        );
        assert_eq!(
            field_of(&error("cron(1,,2 12 * * ? *)")).0,
            CronField::Minutes
        );
    }

    #[test]
    fn not_a_schedule() {
        for text in [
            "",
            "0 12 * * ? *",
            "cron(0 12 * * ? *",
            "CRON(0 12 * * ? *)",
            "at(2027-01-01T00:00:00)",
            "rate(5)",
        ] {
            assert!(
                matches!(error(text), ScheduleError::Syntax { .. }),
                "{text}"
            );
        }
    }

    #[test]
    fn surrounding_whitespace_and_display() {
        let s = parse("  cron(0  12 * *   ? *)\n");
        assert_eq!(s.to_string(), "cron(0 12 * * ? *)");
        assert_eq!(parse(" rate(5  minutes) ").to_string(), "rate(5 minutes)");
        assert_eq!(
            "rate(1 hour)".parse::<Schedule>().ok(),
            Some(parse("rate(1 hour)"))
        );
    }

    #[test]
    fn serde_round_trip_as_text() {
        let s = parse("cron(0/5 8-17 ? * MON-FRI *)");
        let json = serde_json::to_string(&s).expect("serialize");
        assert_eq!(json, "\"cron(0/5 8-17 ? * MON-FRI *)\"");
        let back: Schedule = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, s);
        let bad = serde_json::from_str::<Schedule>("\"rate(5 minute)\"").expect_err("rejected");
        assert!(bad.to_string().contains("write rate(5 minutes)"), "{bad}");
    }

    #[test]
    fn spring_forward_gap_in_paris() {
        // 2027-03-28: Paris clocks jump from 02:00 CET to 03:00 CEST; 02:30 does not exist.
        // croner runs a fixed-time schedule at the first instant after the gap, 03:00 CEST
        // (01:00 UTC), once, and is back to 02:30 CEST (00:30 UTC) the next day.
        let s = parse("cron(30 2 * * ? *)");
        let got = fires(&s, utc(2027, 3, 27, 0, 0, 0), Paris, 3);
        assert_eq!(
            got,
            vec![
                utc(2027, 3, 27, 1, 30, 0),
                utc(2027, 3, 28, 1, 0, 0),
                utc(2027, 3, 29, 0, 30, 0)
            ]
        );
        // A schedule with several times a day skips the times inside the gap: 02:00 and 02:30
        // do not exist, 01:30 CET (00:30 UTC) is followed by 03:00 CEST (01:00 UTC).
        let half_hourly = parse("cron(0/30 * * * ? *)");
        let got = fires(&half_hourly, utc(2027, 3, 28, 0, 15, 0), Paris, 3);
        assert_eq!(
            got,
            vec![
                utc(2027, 3, 28, 0, 30, 0),
                utc(2027, 3, 28, 1, 0, 0),
                utc(2027, 3, 28, 1, 30, 0)
            ]
        );
    }

    #[test]
    fn fall_back_overlap_in_paris() {
        // 2027-10-31: 02:00-03:00 happens twice (CEST, then CET). The fixed-time schedule
        // runs once, at the first 02:30 (00:30 UTC); the next run is 02:30 CET on Nov 1.
        let s = parse("cron(30 2 * * ? *)");
        let got = fires(&s, utc(2027, 10, 30, 12, 0, 0), Paris, 2);
        assert_eq!(
            got,
            vec![utc(2027, 10, 31, 0, 30, 0), utc(2027, 11, 1, 1, 30, 0)]
        );
        // A half-hourly schedule runs at both 02:00s and both 02:30s.
        let half_hourly = parse("cron(0/30 * * * ? *)");
        let got = fires(&half_hourly, utc(2027, 10, 30, 23, 45, 0), Paris, 5);
        assert_eq!(
            got,
            vec![
                utc(2027, 10, 31, 0, 0, 0),
                utc(2027, 10, 31, 0, 30, 0),
                utc(2027, 10, 31, 1, 0, 0),
                utc(2027, 10, 31, 1, 30, 0),
                utc(2027, 10, 31, 2, 0, 0)
            ]
        );
    }

    #[test]
    fn rates_parse() {
        for (text, minutes) in [
            ("rate(1 minute)", 1),
            ("rate(5 minutes)", 5),
            ("rate(1 hour)", 60),
            ("rate(2 hours)", 120),
            ("rate(1 day)", 1440),
            ("rate(7 days)", 7 * 1440),
        ] {
            match parse(text) {
                Schedule::Rate { every, text: shown } => {
                    assert_eq!(every, TimeDelta::minutes(minutes), "{text}");
                    assert_eq!(shown, text);
                }
                other => panic!("{text} parsed as {other:?}"),
            }
        }
    }

    #[test]
    fn rate_errors() {
        assert_eq!(
            error("rate(1 minutes)").to_string(),
            "rate(1 minutes): a value of 1 takes the unit 'minute': write rate(1 minute)"
        );
        assert_eq!(
            error("rate(5 minute)").to_string(),
            "rate(5 minute): a value of 5 takes the unit 'minutes': write rate(5 minutes)"
        );
        assert!(matches!(
            error("rate(1 days)"),
            ScheduleError::RateUnitNumber { unit: "day", .. }
        ));
        assert!(matches!(
            error("rate(2 hour)"),
            ScheduleError::RateUnitNumber { unit: "hours", .. }
        ));
        assert_eq!(
            error("rate(0 minutes)").to_string(),
            "rate(0 minutes): the rate value '0' must be a whole number from 1 to 4294967295, e.g. rate(5 minutes)"
        );
        for text in [
            "rate(-5 minutes)",
            "rate(+5 minutes)",
            "rate(1.5 hours)",
            "rate(4294967296 days)",
            "rate(five minutes)",
        ] {
            assert!(
                matches!(error(text), ScheduleError::RateValue { .. }),
                "{text}"
            );
        }
        assert!(matches!(
            error("rate(5 weeks)"),
            ScheduleError::RateUnit { .. }
        ));
        assert!(matches!(
            error("rate(5 Minutes)"),
            ScheduleError::RateUnit { .. }
        ));
    }

    #[test]
    fn rate_is_anchored() {
        let s = parse("rate(5 minutes)");
        let anchor = utc(2027, 1, 1, 0, 0, 30);
        let next = |after| s.next_after(after, Paris, anchor);
        // The anchor is not itself a fire time.
        assert_eq!(
            next(utc(2026, 12, 31, 0, 0, 0)),
            Some(utc(2027, 1, 1, 0, 5, 30))
        );
        assert_eq!(next(anchor), Some(utc(2027, 1, 1, 0, 5, 30)));
        assert_eq!(
            next(utc(2027, 1, 1, 0, 7, 0)),
            Some(utc(2027, 1, 1, 0, 10, 30))
        );
        assert_eq!(
            next(utc(2027, 1, 1, 0, 10, 30)),
            Some(utc(2027, 1, 1, 0, 15, 30))
        );
        assert_eq!(
            next(utc(2027, 1, 1, 0, 10, 30) - TimeDelta::nanoseconds(1)),
            Some(utc(2027, 1, 1, 0, 10, 30))
        );
        // Far from the anchor, still on its phase.
        assert_eq!(
            next(utc(2127, 1, 1, 0, 0, 0)),
            Some(utc(2127, 1, 1, 0, 0, 30))
        );
        // Days are 24 hours, whatever the zone's clocks do.
        let daily = parse("rate(1 day)");
        let anchor = utc(2027, 3, 27, 12, 0, 0);
        assert_eq!(
            daily.next_after(anchor, Paris, anchor),
            Some(utc(2027, 3, 28, 12, 0, 0))
        );
        // A period that runs past the end of representable time gives no fire time, no panic.
        let huge = parse("rate(4294967295 days)");
        assert_eq!(huge.next_after(anchor, DEFAULT_TIME_ZONE, anchor), None);
    }

    #[test]
    fn rate_last_between() {
        let s = parse("rate(5 minutes)");
        let anchor = utc(2027, 1, 1, 0, 0, 30);
        let last = |since, at| s.last_between(since, at, DEFAULT_TIME_ZONE, anchor);
        assert_eq!(
            last(utc(2027, 1, 1, 0, 0, 0), utc(2027, 1, 1, 0, 17, 0)),
            Some(utc(2027, 1, 1, 0, 15, 30))
        );
        assert_eq!(
            last(utc(2027, 1, 1, 0, 16, 0), utc(2027, 1, 1, 0, 17, 0)),
            None
        );
        // `at` is inclusive, `since` exclusive.
        assert_eq!(
            last(utc(2027, 1, 1, 0, 0, 0), utc(2027, 1, 1, 0, 15, 30)),
            Some(utc(2027, 1, 1, 0, 15, 30))
        );
        assert_eq!(
            last(utc(2027, 1, 1, 0, 15, 30), utc(2027, 1, 1, 0, 17, 0)),
            None
        );
        // Nothing at or before the anchor.
        assert_eq!(
            last(utc(2020, 1, 1, 0, 0, 0), utc(2027, 1, 1, 0, 5, 0)),
            None
        );
        // Far back `since`: constant time.
        assert_eq!(
            last(utc(1970, 1, 1, 0, 0, 0), utc(2127, 1, 1, 0, 2, 0)),
            Some(utc(2127, 1, 1, 0, 0, 30))
        );
    }

    #[test]
    fn cron_last_between() {
        let s = parse("cron(0 12 * * ? *)");
        let anchor = utc(2027, 1, 1, 0, 0, 0);
        let last = |since, at| s.last_between(since, at, DEFAULT_TIME_ZONE, anchor);
        assert_eq!(
            last(utc(1970, 1, 1, 0, 0, 0), utc(2027, 6, 15, 11, 0, 0)),
            Some(utc(2027, 6, 14, 12, 0, 0))
        );
        assert_eq!(
            last(utc(2027, 6, 14, 12, 0, 0), utc(2027, 6, 15, 11, 0, 0)),
            None
        );
        assert_eq!(
            last(utc(2027, 6, 14, 12, 0, 0), utc(2027, 6, 15, 12, 0, 0)),
            Some(utc(2027, 6, 15, 12, 0, 0))
        );
        assert_eq!(
            last(utc(2027, 6, 15, 12, 0, 0), utc(2027, 6, 15, 12, 0, 0)),
            None
        );
        // Every minute, since 1970: answered by the backward search, not by walking 57 years.
        let every_minute = parse("cron(* * * * ? *)");
        let at = utc(2027, 6, 15, 11, 0, 30);
        assert_eq!(
            every_minute.last_between(utc(1970, 1, 1, 0, 0, 0), at, DEFAULT_TIME_ZONE, anchor),
            Some(utc(2027, 6, 15, 11, 0, 0))
        );
        // Weekly, in Paris.
        let weekly = parse("cron(0 9 ? * MON *)");
        assert_eq!(
            weekly.last_between(
                utc(2027, 1, 1, 0, 0, 0),
                utc(2027, 1, 13, 0, 0, 0),
                Paris,
                anchor
            ),
            Some(utc(2027, 1, 11, 8, 0, 0))
        );
    }

    #[test]
    fn cron_last_between_across_dst() {
        let s = parse("cron(30 2 * * ? *)");
        let anchor = utc(2027, 1, 1, 0, 0, 0);
        // The run moved to 03:00 CEST by the gap is found looking back, as looking forward.
        assert_eq!(
            s.last_between(
                utc(2027, 3, 27, 12, 0, 0),
                utc(2027, 3, 28, 6, 0, 0),
                Paris,
                anchor
            ),
            Some(utc(2027, 3, 28, 1, 0, 0))
        );
        // In the overlap only the first 02:30 is a fire time.
        assert_eq!(
            s.last_between(
                utc(2027, 10, 30, 12, 0, 0),
                utc(2027, 10, 31, 6, 0, 0),
                Paris,
                anchor
            ),
            Some(utc(2027, 10, 31, 0, 30, 0))
        );
        assert_eq!(
            s.last_between(
                utc(2027, 10, 31, 0, 30, 0),
                utc(2027, 10, 31, 6, 0, 0),
                Paris,
                anchor
            ),
            None
        );
    }

    /// `last_between` and `next_after` agree fire by fire, in UTC and across both Paris changes.
    #[test]
    fn last_between_matches_next_after() {
        let anchor = utc(2027, 1, 1, 0, 0, 0);
        let windows = [utc(2027, 3, 27, 22, 0, 0), utc(2027, 10, 30, 22, 0, 0)];
        for text in [
            "cron(30 2 * * ? *)",
            "cron(0/30 * * * ? *)",
            "cron(0 1-3 * * ? *)",
            "cron(0 10 L * ? *)",
            "rate(45 minutes)",
        ] {
            let s = parse(text);
            for tz in [DEFAULT_TIME_ZONE, Paris] {
                for start in windows {
                    let got = fires_anchored(&s, start, tz, anchor, 12);
                    assert_eq!(got.len(), 12, "{text} {tz}");
                    for pair in got.windows(2) {
                        let (a, b) = (pair[0], pair[1]);
                        let one = TimeDelta::seconds(1);
                        assert_eq!(
                            s.last_between(start, b, tz, anchor),
                            Some(b),
                            "{text} {tz} at {b}"
                        );
                        assert_eq!(
                            s.last_between(start, b - one, tz, anchor),
                            Some(a),
                            "{text} {tz} before {b}"
                        );
                        assert_eq!(
                            s.last_between(a, b - one, tz, anchor),
                            None,
                            "{text} {tz} between {a} and {b}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn time_zones() {
        assert_eq!(parse_time_zone("UTC").ok(), Some(chrono_tz::UTC));
        assert_eq!(parse_time_zone("Europe/Paris").ok(), Some(Paris));
        let e = parse_time_zone("Europe/Pari").expect_err("no such zone");
        assert_eq!(
            e.to_string(),
            "unknown time zone \"Europe/Pari\"; use an IANA name such as \"UTC\" or \"Europe/Paris\""
        );
        assert!(std::error::Error::source(&e).is_some());
    }
}
