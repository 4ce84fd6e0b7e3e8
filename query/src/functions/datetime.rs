//! Date and time functions (Trino `functions/datetime.md`).
//!
//! Values are read as wall-clock times: a timestamp without a zone as it is (Athena's session
//! zone is UTC), one with a zone in that zone, a date at midnight. Field extraction, formatting
//! and calendar arithmetic (days and longer) work on those; arithmetic in hours and shorter
//! units works on the instant, as Joda's zoned chronology does.

use std::sync::Arc;

use chrono::{
    DateTime, Datelike, Months, NaiveDate, NaiveDateTime, Offset, TimeDelta, TimeZone, Timelike,
};
use datafusion::arrow::array::timezone::Tz;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Date32Array, Float64Array, Int64Array, StringArray, make_array,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Float64Type, Int64Type, TimeUnit};
use datafusion::common::{DataFusionError, Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::type_coercion::binary::comparison_coercion;
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};

use super::mysql_format::{self, Item, last_day_of_month};
use super::{
    Call, Extended, Udf, is_integer, is_numeric, is_string, iso8601, joda_format, row_wise,
    wrong_arguments,
};

/// Trino's `timestamp(3)`.
const TIMESTAMP_MS: DataType = DataType::Timestamp(TimeUnit::Millisecond, None);

pub(super) fn functions() -> Vec<ScalarUDF> {
    let fields: &[(&'static str, &[&str])] = &[
        ("year", &[]),
        ("quarter", &[]),
        ("month", &[]),
        ("week", &["week_of_year"]),
        ("day", &["day_of_month"]),
        ("day_of_week", &["dow"]),
        ("day_of_year", &["doy"]),
        ("year_of_week", &["yow"]),
        ("hour", &[]),
        ("minute", &[]),
        ("second", &[]),
        ("millisecond", &[]),
    ];
    let mut all: Vec<ScalarUDF> = fields
        .iter()
        .map(|(name, aliases)| {
            Udf::new(
                name,
                format!("{name}(timestamp) | {name}(date)"),
                one_temporal,
                |_| Ok(DataType::Int64),
                extract_field,
            )
            .with_aliases(aliases)
            .udf()
        })
        .collect();
    all.extend([
        Udf::new(
            "date_format",
            "date_format(timestamp, varchar)",
            |t| match t {
                [ts, f] if is_string(f) => Some(vec![temporal(ts)?, DataType::Utf8]),
                _ => None,
            },
            |_| Ok(DataType::Utf8),
            date_format,
        )
        .udf(),
        Udf::new(
            "format_datetime",
            "format_datetime(timestamp, varchar)",
            |t| match t {
                [ts, f] if is_string(f) => Some(vec![temporal(ts)?, DataType::Utf8]),
                _ => None,
            },
            |_| Ok(DataType::Utf8),
            format_datetime,
        )
        .udf(),
        Udf::new(
            "parse_datetime",
            "parse_datetime(varchar, varchar)",
            |t| super::all_as(t, &[2], is_string, DataType::Utf8),
            |_| {
                Ok(DataType::Timestamp(
                    TimeUnit::Millisecond,
                    Some("UTC".into()),
                ))
            },
            parse_datetime,
        )
        .udf(),
        Udf::new(
            "date_parse",
            "date_parse(varchar, varchar)",
            |t| super::all_as(t, &[2], is_string, DataType::Utf8),
            |_| Ok(TIMESTAMP_MS),
            date_parse,
        )
        .udf(),
        // DataFusion's to_unixtime(varchar[, format]) (no Trino form) stays DataFusion's.
        Extended::udf(
            Udf::new(
                "to_unixtime",
                "to_unixtime(timestamp)",
                one_temporal,
                |_| Ok(DataType::Float64),
                to_unixtime,
            ),
            datafusion::functions::datetime::to_unixtime(),
        ),
        Udf::new(
            "date_add",
            "date_add(varchar, bigint, timestamp) | date_add(varchar, bigint, date)",
            |t| match t {
                [u, n, x] if is_string(u) && is_integer(n) => {
                    Some(vec![DataType::Utf8, DataType::Int64, temporal(x)?])
                }
                _ => None,
            },
            |t| Ok(t[2].clone()),
            date_add,
        )
        .udf(),
        Udf::new(
            "date_diff",
            "date_diff(varchar, timestamp, timestamp) | date_diff(varchar, date, date)",
            |t| match t {
                [u, a, b] if is_string(u) => {
                    let (a, b) = (temporal(a)?, temporal(b)?);
                    let common = if a == b {
                        a
                    } else {
                        comparison_coercion(&a, &b)?
                    };
                    Some(vec![DataType::Utf8, common.clone(), common])
                }
                _ => None,
            },
            |_| Ok(DataType::Int64),
            date_diff,
        )
        .udf(),
        Udf::new(
            "from_iso8601_date",
            "from_iso8601_date(varchar)",
            |t| super::all_as(t, &[1], is_string, DataType::Utf8),
            |_| Ok(DataType::Date32),
            from_iso8601_date,
        )
        .udf(),
        Udf::new(
            "to_iso8601",
            "to_iso8601(timestamp) | to_iso8601(date)",
            one_temporal,
            |_| Ok(DataType::Utf8),
            to_iso8601,
        )
        .udf(),
        Udf::new(
            "last_day_of_month",
            "last_day_of_month(timestamp) | last_day_of_month(date)",
            one_temporal,
            |_| Ok(DataType::Date32),
            last_day,
        )
        .udf(),
        ScalarUDF::new_from_impl(FromUnixtime {
            signature: Signature::user_defined(Volatility::Immutable),
        }),
        ScalarUDF::new_from_impl(FromIso8601Timestamp {
            signature: Signature::user_defined(Volatility::Immutable),
        }),
    ]);
    all
}

/// The type a date/time argument is read as: timestamps as they are, dates as `Date32`.
fn temporal(t: &DataType) -> Option<DataType> {
    match t {
        DataType::Timestamp(..) | DataType::Date32 => Some(t.clone()),
        DataType::Date64 => Some(DataType::Date32),
        DataType::Null => Some(TIMESTAMP_MS),
        _ => None,
    }
}

fn one_temporal(t: &[DataType]) -> Option<Vec<DataType>> {
    match t {
        [x] => Some(vec![temporal(x)?]),
        _ => None,
    }
}

pub(crate) fn parse_zone(name: &str) -> Result<Tz> {
    name.parse::<Tz>()
        .map_err(|_| DataFusionError::Execution(format!("Time zone not supported: {name}")))
}

fn per_second(unit: &TimeUnit) -> i64 {
    match unit {
        TimeUnit::Second => 1,
        TimeUnit::Millisecond => 1_000,
        TimeUnit::Microsecond => 1_000_000,
        TimeUnit::Nanosecond => 1_000_000_000,
    }
}

/// The UTC time of an epoch value in `unit`.
pub(crate) fn utc_of(v: i64, unit: &TimeUnit) -> Option<NaiveDateTime> {
    let per = per_second(unit);
    let nanos = v.rem_euclid(per) * (1_000_000_000 / per);
    DateTime::from_timestamp(v.div_euclid(per), u32::try_from(nanos).ok()?).map(|d| d.naive_utc())
}

/// The epoch value in `unit` of a UTC time (sub-unit digits truncated).
pub(crate) fn epoch_of(t: &NaiveDateTime, unit: &TimeUnit) -> Option<i64> {
    let t = t.and_utc();
    let per = per_second(unit);
    let sub = i64::from(t.timestamp_subsec_nanos()) / (1_000_000_000 / per);
    t.timestamp().checked_mul(per)?.checked_add(sub)
}

/// A date/time column as instants (UTC) and the zone its wall-clock times are in.
pub(crate) struct Times {
    pub utc: Vec<Option<NaiveDateTime>>,
    pub zone: Option<Tz>,
    pub is_date: bool,
}

impl Times {
    pub fn read(a: &ArrayRef) -> Result<Self> {
        let (utc, zone, is_date) = match a.data_type() {
            DataType::Date32 => {
                let days = a.as_primitive::<datafusion::arrow::datatypes::Date32Type>();
                let utc = days
                    .iter()
                    .map(|d| {
                        d.and_then(date_of_days)
                            .map(|d| d.and_time(Default::default()))
                    })
                    .collect();
                (utc, None, true)
            }
            DataType::Timestamp(unit, zone) => {
                let zone = zone.as_deref().map(parse_zone).transpose()?;
                let raw = cast(a, &DataType::Int64)?;
                let utc = raw
                    .as_primitive::<Int64Type>()
                    .iter()
                    .map(|v| v.and_then(|v| utc_of(v, unit)))
                    .collect();
                (utc, zone, false)
            }
            DataType::Null => (vec![None; a.len()], None, false),
            other => return exec_err!("expected a date or timestamp, got {other}"),
        };
        Ok(Self { utc, zone, is_date })
    }

    pub fn local(&self, row: usize) -> Option<NaiveDateTime> {
        self.utc[row].map(|t| self.to_local(t))
    }

    fn to_local(&self, utc: NaiveDateTime) -> NaiveDateTime {
        match &self.zone {
            Some(z) => {
                utc + TimeDelta::seconds(
                    z.offset_from_utc_datetime(&utc)
                        .fix()
                        .local_minus_utc()
                        .into(),
                )
            }
            None => utc,
        }
    }

    pub fn to_utc(&self, local: NaiveDateTime) -> NaiveDateTime {
        match &self.zone {
            Some(z) => {
                // In a gap (clocks moved forward) the time is moved forward by the gap, as Joda
                // does; in an overlap the earlier instant is used.
                let offset = z
                    .offset_from_local_datetime(&local)
                    .earliest()
                    .or_else(|| {
                        z.offset_from_local_datetime(&(local + TimeDelta::hours(1)))
                            .earliest()
                    })
                    .map_or(0, |o| o.fix().local_minus_utc());
                local - TimeDelta::seconds(offset.into())
            }
            None => local,
        }
    }
}

pub(crate) fn date_of_days(days: i32) -> Option<NaiveDate> {
    NaiveDate::from_num_days_from_ce_opt(days.checked_add(719_163)?)
}

pub(crate) fn days_of_date(d: &NaiveDate) -> i32 {
    d.num_days_from_ce() - 719_163
}

/// Builds a column of type `like` (a date or a timestamp) from UTC times.
pub(crate) fn build(utc: Vec<Option<NaiveDateTime>>, like: &DataType) -> Result<ArrayRef> {
    match like {
        DataType::Date32 => Ok(Arc::new(Date32Array::from(
            utc.iter()
                .map(|t| t.map(|t| days_of_date(&t.date())))
                .collect::<Vec<_>>(),
        ))),
        DataType::Timestamp(unit, _) => {
            let values = utc
                .iter()
                .map(|t| match t {
                    Some(t) => epoch_of(t, unit).map(Some).ok_or_else(|| {
                        DataFusionError::Execution(format!("timestamp out of range: {t}"))
                    }),
                    None => Ok(None),
                })
                .collect::<Result<Int64Array>>()?;
            let data = values
                .into_data()
                .into_builder()
                .data_type(like.clone())
                .build()?;
            Ok(make_array(data))
        }
        other => exec_err!("cannot build {other} from timestamps"),
    }
}

fn extract_field(call: &Call) -> Result<ArrayRef> {
    let times = Times::read(&call.args[0])?;
    let field: fn(&NaiveDateTime) -> i64 = match call.name {
        "year" => |t| t.year().into(),
        "quarter" => |t| (t.month0() / 3 + 1).into(),
        "month" => |t| t.month().into(),
        "week" => |t| t.iso_week().week().into(),
        "day" => |t| t.day().into(),
        "day_of_week" => |t| t.weekday().number_from_monday().into(),
        "day_of_year" => |t| t.ordinal().into(),
        "year_of_week" => |t| t.iso_week().year().into(),
        "hour" => |t| t.hour().into(),
        "minute" => |t| t.minute().into(),
        "second" => |t| t.second().into(),
        "millisecond" => |t| (t.nanosecond() % 1_000_000_000 / 1_000_000).into(),
        other => return exec_err!("unknown date field {other}"),
    };
    Ok(Arc::new(
        (0..call.rows)
            .map(|i| times.local(i).map(|t| field(&t)))
            .collect::<Int64Array>(),
    ))
}

/// Compiles each distinct format once per batch.
struct Formats {
    compile: fn(&str) -> Result<Vec<Item>, String>,
    last: Option<(String, Result<Vec<Item>, String>)>,
}

impl Formats {
    fn new(compile: fn(&str) -> Result<Vec<Item>, String>) -> Self {
        Self {
            compile,
            last: None,
        }
    }

    fn get(&mut self, format: &str) -> Result<&[Item]> {
        if self.last.as_ref().is_none_or(|(f, _)| f != format) {
            self.last = Some((format.to_string(), (self.compile)(format)));
        }
        match &self.last {
            Some((_, Ok(items))) => Ok(items),
            Some((_, Err(e))) => exec_err!("{e}"),
            None => exec_err!("no format"),
        }
    }
}

fn date_format(call: &Call) -> Result<ArrayRef> {
    let times = Times::read(&call.args[0])?;
    let formats = call.args[1].as_string::<i32>();
    let mut cache = Formats::new(mysql_format::compile);
    let mut out = Vec::with_capacity(call.rows);
    for i in 0..call.rows {
        out.push(match (times.local(i), formats.is_valid(i)) {
            (Some(t), true) => Some(mysql_format::format(cache.get(formats.value(i))?, &t)),
            _ => None,
        });
    }
    Ok(Arc::new(StringArray::from(out)))
}

fn date_parse(call: &Call) -> Result<ArrayRef> {
    let texts = call.args[0].as_string::<i32>();
    let formats = call.args[1].as_string::<i32>();
    let mut cache = Formats::new(mysql_format::compile);
    let mut out = Vec::with_capacity(call.rows);
    for i in 0..call.rows {
        if texts.is_null(i) || formats.is_null(i) {
            out.push(None);
            continue;
        }
        let t = mysql_format::parse(cache.get(formats.value(i))?, texts.value(i))
            .map_err(DataFusionError::Execution)?;
        out.push(Some(t));
    }
    build(out, &TIMESTAMP_MS)
}

/// `format_datetime(timestamp, format)`: the wall-clock time in the value's zone (UTC for a
/// timestamp without one), printed with a Joda pattern.
fn format_datetime(call: &Call) -> Result<ArrayRef> {
    let times = Times::read(&call.args[0])?;
    let id = match call.args[0].data_type() {
        DataType::Timestamp(_, Some(z)) => z.to_string(),
        _ => "UTC".to_string(),
    };
    let named = id.parse::<chrono_tz::Tz>().ok();
    let formats = call.args[1].as_string::<i32>();
    let mut cache = Formats::new(joda_format::compile);
    let mut out = Vec::with_capacity(call.rows);
    for i in 0..call.rows {
        let (Some(utc), true) = (times.utc[i], formats.is_valid(i)) else {
            out.push(None);
            continue;
        };
        let offset = times.zone.as_ref().map_or(0, |z| {
            z.offset_from_utc_datetime(&utc).fix().local_minus_utc()
        });
        let offset = chrono::FixedOffset::east_opt(offset)
            .unwrap_or(chrono::FixedOffset::east_opt(0).expect("zero"));
        let short_name = match named {
            Some(tz) => {
                use chrono_tz::OffsetName;
                tz.offset_from_utc_datetime(&utc)
                    .abbreviation()
                    .unwrap_or(&id)
                    .to_string()
            }
            None => offset.to_string(),
        };
        let zone = mysql_format::ZoneAt {
            offset,
            id: id.clone(),
            short_name,
        };
        let items = cache.get(formats.value(i))?;
        out.push(Some(mysql_format::format_zoned(
            items,
            &times.to_local(utc),
            &zone,
        )));
    }
    Ok(Arc::new(StringArray::from(out)))
}

/// `parse_datetime(string, format)`: a `timestamp(3) with time zone`. The instant is the text's
/// time in the zone it names (UTC if none); the column's zone is UTC, since Arrow keeps one zone
/// per column.
fn parse_datetime(call: &Call) -> Result<ArrayRef> {
    let texts = call.args[0].as_string::<i32>();
    let formats = call.args[1].as_string::<i32>();
    let mut cache = Formats::new(joda_format::compile);
    let mut out = Vec::with_capacity(call.rows);
    for i in 0..call.rows {
        if texts.is_null(i) || formats.is_null(i) {
            out.push(None);
            continue;
        }
        let (local, zone) = mysql_format::parse_zoned(cache.get(formats.value(i))?, texts.value(i))
            .map_err(DataFusionError::Execution)?;
        let utc = match zone {
            None => local,
            Some(mysql_format::ParsedZone::Offset(o)) => {
                local - TimeDelta::seconds(o.local_minus_utc().into())
            }
            Some(mysql_format::ParsedZone::Id(id)) => Times {
                utc: Vec::new(),
                zone: Some(parse_zone(&id)?),
                is_date: false,
            }
            .to_utc(local),
        };
        out.push(Some(utc));
    }
    build(
        out,
        &DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
    )
}

fn to_unixtime(call: &Call) -> Result<ArrayRef> {
    let a = &call.args[0];
    let seconds: Float64Array = match a.data_type() {
        DataType::Timestamp(unit, _) => {
            let per = per_second(unit);
            let raw = cast(a, &DataType::Int64)?;
            raw.as_primitive::<Int64Type>()
                .iter()
                .map(|v| {
                    v.map(|v| v.div_euclid(per) as f64 + v.rem_euclid(per) as f64 / per as f64)
                })
                .collect()
        }
        _ => {
            let times = Times::read(a)?;
            times
                .utc
                .iter()
                .map(|t| t.map(|t| t.and_utc().timestamp() as f64))
                .collect()
        }
    };
    Ok(Arc::new(seconds))
}

/// Trino's interval units (`datetime.md`, "Interval functions").
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Unit {
    Millisecond,
    Second,
    Minute,
    Hour,
    Day,
    Week,
    Month,
    Quarter,
    Year,
}

impl Unit {
    fn parse(s: &str, is_date: bool) -> Result<Self> {
        let unit = match s.to_ascii_lowercase().as_str() {
            "millisecond" => Unit::Millisecond,
            "second" => Unit::Second,
            "minute" => Unit::Minute,
            "hour" => Unit::Hour,
            "day" => Unit::Day,
            "week" => Unit::Week,
            "month" => Unit::Month,
            "quarter" => Unit::Quarter,
            "year" => Unit::Year,
            _ => return exec_err!("'{s}' is not a valid Timestamp field"),
        };
        if is_date && unit < Unit::Day {
            return exec_err!("'{s}' is not a valid DATE field");
        }
        Ok(unit)
    }

    /// The length of a unit up to weeks, in milliseconds.
    fn millis(self) -> i64 {
        match self {
            Unit::Millisecond => 1,
            Unit::Second => 1_000,
            Unit::Minute => 60_000,
            Unit::Hour => 3_600_000,
            Unit::Day => 86_400_000,
            _ => 604_800_000,
        }
    }
}

fn units<'a>(call: &'a Call) -> impl Fn(usize, bool) -> Result<Option<Unit>> + 'a {
    let names = call.args[0].as_string::<i32>();
    move |i, is_date| {
        if names.is_null(i) {
            Ok(None)
        } else {
            Unit::parse(names.value(i), is_date).map(Some)
        }
    }
}

fn date_add(call: &Call) -> Result<ArrayRef> {
    let unit_at = units(call);
    let amounts = call.args[1].as_primitive::<Int64Type>();
    let times = Times::read(&call.args[2])?;
    let overflow = || DataFusionError::Execution("date_add: result out of range".into());
    let mut out = Vec::with_capacity(call.rows);
    for i in 0..call.rows {
        let (Some(unit), Some(utc)) = (unit_at(i, times.is_date)?, times.utc[i]) else {
            out.push(None);
            continue;
        };
        if amounts.is_null(i) {
            out.push(None);
            continue;
        }
        let n = amounts.value(i);
        let result = if unit <= Unit::Hour {
            let delta = n
                .checked_mul(unit.millis())
                .and_then(TimeDelta::try_milliseconds)
                .ok_or_else(overflow)?;
            utc.checked_add_signed(delta).ok_or_else(overflow)?
        } else {
            let local = times.to_local(utc);
            let moved = match unit {
                Unit::Day | Unit::Week => n
                    .checked_mul(unit.millis() / 86_400_000)
                    .and_then(TimeDelta::try_days)
                    .and_then(|d| local.checked_add_signed(d)),
                _ => {
                    let months = n.checked_mul(match unit {
                        Unit::Quarter => 3,
                        Unit::Year => 12,
                        _ => 1,
                    });
                    months.and_then(|m| {
                        let abs = Months::new(u32::try_from(m.unsigned_abs()).ok()?);
                        if m >= 0 {
                            local.checked_add_months(abs)
                        } else {
                            local.checked_sub_months(abs)
                        }
                    })
                }
            };
            times.to_utc(moved.ok_or_else(overflow)?)
        };
        out.push(Some(result));
    }
    build(out, call.return_type)
}

fn date_diff(call: &Call) -> Result<ArrayRef> {
    let unit_at = units(call);
    let a = Times::read(&call.args[1])?;
    let b = Times::read(&call.args[2])?;
    let mut out = Vec::with_capacity(call.rows);
    for i in 0..call.rows {
        let (Some(unit), Some(ta), Some(tb)) = (unit_at(i, a.is_date)?, a.utc[i], b.utc[i]) else {
            out.push(None);
            continue;
        };
        let millis = |t: NaiveDateTime| t.and_utc().timestamp_millis();
        out.push(Some(match unit {
            Unit::Millisecond | Unit::Second | Unit::Minute | Unit::Hour => {
                (millis(tb) - millis(ta)) / unit.millis()
            }
            Unit::Day | Unit::Week => {
                (millis(b.to_local(tb)) - millis(a.to_local(ta))) / unit.millis()
            }
            Unit::Month => month_difference(b.to_local(tb), a.to_local(ta)),
            Unit::Quarter => month_difference(b.to_local(tb), a.to_local(ta)) / 3,
            Unit::Year => year_difference(b.to_local(tb), a.to_local(ta)),
        }));
    }
    Ok(Arc::new(Int64Array::from(out)))
}

fn start_of_month(t: &NaiveDateTime) -> NaiveDateTime {
    t.date()
        .with_day(1)
        .unwrap_or(t.date())
        .and_time(Default::default())
}

/// Joda's `BasicMonthOfYearDateTimeField.getDifferenceAsLong`: whole months from `sub` to
/// `min`, where the last day of a month counts as reaching any later day of the month.
fn month_difference(min: NaiveDateTime, sub: NaiveDateTime) -> i64 {
    if min < sub {
        return -month_difference(sub, min);
    }
    let mut diff =
        i64::from(min.year() - sub.year()) * 12 + i64::from(min.month()) - i64::from(sub.month());
    let mut sub = sub;
    if min.day() == last_day_of_month(min.date()) && sub.day() > min.day() {
        sub = sub.with_day(min.day()).unwrap_or(sub);
    }
    if min - start_of_month(&min) < sub - start_of_month(&sub) {
        diff -= 1;
    }
    diff
}

/// Joda's `BasicGJChronology.getYearDifference`, which balances a February 29 on one side.
fn year_difference(min: NaiveDateTime, sub: NaiveDateTime) -> i64 {
    if min < sub {
        return -year_difference(sub, min);
    }
    let start = |t: &NaiveDateTime| {
        NaiveDate::from_yo_opt(t.year(), 1).map_or(*t, |d| d.and_time(Default::default()))
    };
    let mut min_rem = min - start(&min);
    let mut sub_rem = sub - start(&sub);
    let feb29 = TimeDelta::days(31 + 29 - 1);
    if sub_rem >= feb29 {
        if sub.date().leap_year() {
            if !min.date().leap_year() {
                sub_rem -= TimeDelta::days(1);
            }
        } else if min_rem >= feb29 && min.date().leap_year() {
            min_rem -= TimeDelta::days(1);
        }
    }
    let mut diff = i64::from(min.year() - sub.year());
    if min_rem < sub_rem {
        diff -= 1;
    }
    diff
}

fn from_iso8601_date(call: &Call) -> Result<ArrayRef> {
    let texts = call.args[0].as_string::<i32>();
    let out = texts
        .iter()
        .map(|t| {
            t.map(|t| {
                iso8601::parse_date(t)
                    .map(|d| days_of_date(&d))
                    .map_err(DataFusionError::Execution)
            })
            .transpose()
        })
        .collect::<Result<Date32Array>>()?;
    Ok(Arc::new(out))
}

fn to_iso8601(call: &Call) -> Result<ArrayRef> {
    let times = Times::read(&call.args[0])?;
    let (digits, max) = match call.args[0].data_type() {
        DataType::Timestamp(TimeUnit::Second, _) => (0, 0),
        DataType::Timestamp(TimeUnit::Millisecond, _) => (3, 3),
        DataType::Timestamp(TimeUnit::Microsecond, _) => (3, 6),
        _ => (3, 9),
    };
    let out: StringArray = (0..call.rows)
        .map(|i| {
            let utc = times.utc[i]?;
            let local = times.to_local(utc);
            Some(if times.is_date {
                iso8601::format_date(&local.date())
            } else {
                let offset = times
                    .zone
                    .as_ref()
                    .map(|z| z.offset_from_utc_datetime(&utc).fix());
                iso8601::format_timestamp(&local, digits, max, offset)
            })
        })
        .collect();
    Ok(Arc::new(out))
}

fn last_day(call: &Call) -> Result<ArrayRef> {
    let times = Times::read(&call.args[0])?;
    let out: Date32Array = (0..call.rows)
        .map(|i| {
            let d = times.local(i)?.date();
            d.with_day(last_day_of_month(d)).map(|d| days_of_date(&d))
        })
        .collect();
    Ok(Arc::new(out))
}

/// `from_unixtime(unixtime[, zone])`, `from_unixtime(unixtime, hours, minutes)`: a
/// `timestamp(3) with time zone`, UTC unless a zone is given. Arrow keeps one zone per column,
/// so the zone must be a constant.
#[derive(Debug, PartialEq, Eq, Hash)]
struct FromUnixtime {
    signature: Signature,
}

const FROM_UNIXTIME_USAGE: &str = "from_unixtime(double) | from_unixtime(double, varchar) | \
                                   from_unixtime(double, bigint, bigint)";

impl ScalarUDFImpl for FromUnixtime {
    fn name(&self) -> &str {
        "from_unixtime"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [x] if is_numeric(x) => Ok(vec![DataType::Float64]),
            [x, z] if is_numeric(x) && is_string(z) => Ok(vec![DataType::Float64, z.clone()]),
            [x, h, m] if is_numeric(x) && is_integer(h) && is_integer(m) => {
                Ok(vec![DataType::Float64, DataType::Int64, DataType::Int64])
            }
            _ => Err(wrong_arguments(FROM_UNIXTIME_USAGE, arg_types)),
        }
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Timestamp(
            TimeUnit::Millisecond,
            Some("UTC".into()),
        ))
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let constant = |i: usize| args.scalar_arguments.get(i).copied().flatten();
        let zone: Arc<str> = match args.arg_fields.len() {
            1 => "UTC".into(),
            2 => match constant(1) {
                // NULL: the result is NULL, in whatever zone.
                Some(z) if z.is_null() => "UTC".into(),
                Some(z) => match z.try_as_str().flatten() {
                    Some(z) => {
                        parse_zone(z)?;
                        z.into()
                    }
                    None => return plan_err!("from_unixtime: the time zone must be a string"),
                },
                None => return plan_err!("from_unixtime: the time zone must be a constant"),
            },
            _ => {
                let int = |i| match constant(i).map(|v| v.cast_to(&DataType::Int64)) {
                    Some(Ok(ScalarValue::Int64(v))) => Ok(v.unwrap_or(0)),
                    _ => plan_err!("from_unixtime: the offset hours and minutes must be constants"),
                };
                let (h, m) = (int(1)?, int(2)?);
                if !(-14..=14).contains(&h) || !(-59..=59).contains(&m) {
                    return plan_err!("Invalid offset minutes {}", h * 60 + m);
                }
                let total = h * 60 + m;
                let sign = if total < 0 { '-' } else { '+' };
                format!("{sign}{:02}:{:02}", total.abs() / 60, total.abs() % 60).into()
            }
        };
        Ok(Arc::new(Field::new(
            self.name(),
            DataType::Timestamp(TimeUnit::Millisecond, Some(zone)),
            true,
        )))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let return_type = args.return_field.data_type().clone();
        row_wise(&args.args, args.number_rows, |arrays, rows| {
            let seconds = arrays[0].as_primitive::<Float64Type>();
            // A NULL zone or offset makes the result NULL.
            let millis = (0..rows)
                .map(|i| (!super::null_at(&arrays, i)).then(|| seconds.value(i)))
                .map(|s| {
                    s.map(|s| {
                        let ms = (s * 1000.0).round();
                        if ms.is_finite() && ms.abs() < 9.2e18 {
                            Ok(ms as i64)
                        } else {
                            exec_err!("from_unixtime: {s:?} seconds is out of range")
                        }
                    })
                    .transpose()
                })
                .collect::<Result<Int64Array>>()?;
            let data = millis
                .into_data()
                .into_builder()
                .data_type(return_type)
                .build()?;
            Ok(make_array(data))
        })
    }
}

/// `from_iso8601_timestamp(string)`: a `timestamp(3) with time zone`. The zone is the offset
/// written in a constant argument; for a column it is UTC (the instants are exact, the
/// wall-clock fields are UTC's), since Arrow keeps one zone per column.
#[derive(Debug, PartialEq, Eq, Hash)]
struct FromIso8601Timestamp {
    signature: Signature,
}

impl ScalarUDFImpl for FromIso8601Timestamp {
    fn name(&self) -> &str {
        "from_iso8601_timestamp"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [s] if is_string(s) => Ok(vec![s.clone()]),
            _ => Err(wrong_arguments(
                "from_iso8601_timestamp(varchar)",
                arg_types,
            )),
        }
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Timestamp(
            TimeUnit::Millisecond,
            Some("UTC".into()),
        ))
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let constant = args
            .scalar_arguments
            .first()
            .copied()
            .flatten()
            .and_then(ScalarValue::try_as_str)
            .flatten();
        let zone: Arc<str> = match constant.map(iso8601::parse_timestamp) {
            Some(Ok(iso8601::Parsed {
                offset: Some(off), ..
            })) if off.local_minus_utc() != 0 => off.to_string().into(),
            _ => "UTC".into(),
        };
        Ok(Arc::new(Field::new(
            self.name(),
            DataType::Timestamp(TimeUnit::Millisecond, Some(zone)),
            true,
        )))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let return_type = args.return_field.data_type().clone();
        row_wise(&args.args, args.number_rows, |arrays, _| {
            let texts = cast(&arrays[0], &DataType::Utf8)?;
            let utc = texts
                .as_string::<i32>()
                .iter()
                .map(|t| {
                    t.map(|t| {
                        let p = iso8601::parse_timestamp(t).map_err(DataFusionError::Execution)?;
                        let offset = p.offset.map_or(0, |o| o.local_minus_utc());
                        Ok(p.local - TimeDelta::seconds(offset.into()))
                    })
                    .transpose()
                })
                .collect::<Result<Vec<_>>>()?;
            build(utc, &return_type)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    #[test]
    fn calendar_differences_follow_joda() {
        assert_eq!(
            month_difference(t("2020-02-29 00:00:00"), t("2020-01-31 00:00:00")),
            1
        );
        assert_eq!(
            month_difference(t("2020-02-28 00:00:00"), t("2020-01-31 00:00:00")),
            0
        );
        assert_eq!(
            month_difference(t("2020-01-31 00:00:00"), t("2020-03-01 00:00:00")),
            -1
        );
        assert_eq!(
            year_difference(t("2021-02-28 00:00:00"), t("2020-02-29 00:00:00")),
            1
        );
        assert_eq!(
            year_difference(t("2021-02-27 00:00:00"), t("2020-02-29 00:00:00")),
            0
        );
    }
}
