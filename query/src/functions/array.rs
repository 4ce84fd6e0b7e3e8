//! Array and map functions (Trino `functions/array.md`, `functions/map.md`): `element_at`,
//! `contains`, `array_position`, `array_remove`, `slice`, `cardinality`, `sequence`.
//! `array_join`, `array_distinct`, `array_sort`, `arrays_overlap`, `flatten`, ... are
//! DataFusion's, which behave as Trino's.

use std::sync::Arc;

use chrono::{Months, NaiveDateTime, TimeDelta};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Int64Array, Int64Builder, ListArray, MapArray,
    UInt64Array, make_comparator, new_empty_array,
};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::compute::{SortOptions, concat, take};
use datafusion::arrow::datatypes::{
    DataType, Field, FieldRef, Int64Type, IntervalMonthDayNanoType, IntervalUnit,
};
use datafusion::common::{DataFusionError, Result, exec_err};
use datafusion::logical_expr::ScalarUDF;
use datafusion::logical_expr::type_coercion::binary::comparison_coercion;

use super::datetime::Times;
use super::{Call, Udf, is_integer, is_null, is_string};

/// Trino's limit on `sequence` results.
const MAX_SEQUENCE: i64 = 10_000;

pub(super) fn functions() -> Vec<ScalarUDF> {
    vec![
        Udf::new(
            "element_at",
            "element_at(array(E), bigint) | element_at(map(K, V), K)",
            |t| match t {
                [DataType::Map(entries, sorted), k] => {
                    let key = map_fields(entries)?.0.data_type().clone();
                    let common = comparison_coercion(&key, k)?;
                    (common == key).then(|| vec![DataType::Map(Arc::clone(entries), *sorted), key])
                }
                [a, i] if is_integer(i) => Some(vec![list_type(a)?, DataType::Int64]),
                _ => None,
            },
            |t| match &t[0] {
                DataType::List(f) => Ok(f.data_type().clone()),
                DataType::Map(entries, _) => map_fields(entries)
                    .map(|(_, v)| v.data_type().clone())
                    .ok_or_else(|| DataFusionError::Plan("element_at: malformed map".into())),
                other => exec_err!("element_at: unexpected {other}"),
            },
            element_at,
        )
        .udf(),
        Udf::new(
            "contains",
            "contains(array(T), T)",
            |t| match t {
                // Trino has no string form; DataFusion's substring test is kept for it.
                [s, sub] if is_string(s) && is_string(sub) && !s.is_null() => {
                    Some(vec![DataType::Utf8, DataType::Utf8])
                }
                _ => array_and_element(t),
            },
            |_| Ok(DataType::Boolean),
            contains,
        )
        .udf(),
        Udf::new(
            "array_position",
            "array_position(array(T), T)",
            array_and_element,
            |_| Ok(DataType::Int64),
            array_position,
        )
        .udf(),
        Udf::new(
            "array_remove",
            "array_remove(array(T), T)",
            array_and_element,
            |t| Ok(t[0].clone()),
            array_remove,
        )
        .udf(),
        Udf::new(
            "slice",
            "slice(array(E), bigint, bigint)",
            |t| match t {
                [a, s, l] if is_integer(s) && is_integer(l) => {
                    Some(vec![list_type(a)?, DataType::Int64, DataType::Int64])
                }
                _ => None,
            },
            |t| Ok(t[0].clone()),
            slice,
        )
        .udf(),
        Udf::new(
            "cardinality",
            "cardinality(array(E)) | cardinality(map(K, V))",
            |t| match t {
                [m @ DataType::Map(..)] => Some(vec![m.clone()]),
                [a] => Some(vec![list_type(a)?]),
                _ => None,
            },
            |_| Ok(DataType::Int64),
            cardinality,
        )
        .udf(),
        Udf::new(
            "sequence",
            "sequence(bigint, bigint[, bigint]) | sequence(date, date[, interval]) | \
             sequence(timestamp, timestamp, interval)",
            sequence_types,
            |t| {
                Ok(DataType::List(Arc::new(Field::new_list_field(
                    t[0].clone(),
                    true,
                ))))
            },
            sequence,
        )
        .udf(),
    ]
}

/// Any list type as a `List` (DataFusion casts large and fixed-size lists); NULL as a list of
/// NULLs.
fn list_type(t: &DataType) -> Option<DataType> {
    match t {
        DataType::List(_) => Some(t.clone()),
        DataType::LargeList(f) | DataType::FixedSizeList(f, _) | DataType::ListView(f) => {
            Some(DataType::List(Arc::clone(f)))
        }
        DataType::Null => Some(DataType::List(Arc::new(Field::new_list_field(
            DataType::Null,
            true,
        )))),
        _ => None,
    }
}

fn map_fields(entries: &FieldRef) -> Option<(&FieldRef, &FieldRef)> {
    match entries.data_type() {
        DataType::Struct(kv) if kv.len() == 2 => Some((&kv[0], &kv[1])),
        _ => None,
    }
}

/// `(array(T), T)` with one element type both sides can be compared in.
fn array_and_element(t: &[DataType]) -> Option<Vec<DataType>> {
    let [a, x] = t else { return None };
    let DataType::List(field) = list_type(a)? else {
        return None;
    };
    let element = field.data_type();
    let common = match (element, x) {
        (DataType::Null, x) => x.clone(),
        (e, DataType::Null) => e.clone(),
        (e, x) if e == x => e.clone(),
        (e, x) => comparison_coercion(e, x)?,
    };
    let field = Field::new(field.name(), common.clone(), true);
    Some(vec![DataType::List(Arc::new(field)), common])
}

/// Equality of list elements with the needle of each row, as Trino's `=` (both non-NULL).
struct Matcher {
    cmp: Box<dyn Fn(usize, usize) -> std::cmp::Ordering + Send + Sync>,
    values: ArrayRef,
    needles: ArrayRef,
}

impl Matcher {
    fn new(values: &ArrayRef, needles: &ArrayRef) -> Result<Self> {
        Ok(Self {
            cmp: make_comparator(values.as_ref(), needles.as_ref(), SortOptions::default())?,
            values: Arc::clone(values),
            needles: Arc::clone(needles),
        })
    }

    fn equal(&self, value: usize, row: usize) -> bool {
        !is_null(self.values.as_ref(), value)
            && !is_null(self.needles.as_ref(), row)
            && (self.cmp)(value, row).is_eq()
    }
}

fn element_at(call: &Call) -> Result<ArrayRef> {
    match call.args[0].data_type() {
        DataType::Map(..) => map_element_at(call),
        _ => array_element_at(call),
    }
}

fn array_element_at(call: &Call) -> Result<ArrayRef> {
    let list = call.args[0].as_list::<i32>();
    let index = call.args[1].as_primitive::<Int64Type>();
    let offsets = list.value_offsets();
    let mut picks = Int64Builder::with_capacity(call.rows);
    for row in 0..call.rows {
        if list.is_null(row) || index.is_null(row) {
            picks.append_null();
            continue;
        }
        let (start, end) = (i64::from(offsets[row]), i64::from(offsets[row + 1]));
        let i = index.value(row);
        let pick = match i {
            0 => return exec_err!("SQL array indices start at 1"),
            i if i > 0 && i <= end - start => Some(start + i - 1),
            i if i < 0 && i >= start - end => Some(end + i),
            _ => None,
        };
        picks.append_option(pick);
    }
    Ok(take(list.values().as_ref(), &picks.finish(), None)?)
}

fn map_element_at(call: &Call) -> Result<ArrayRef> {
    let map: &MapArray = call.args[0].as_map();
    let matcher = Matcher::new(map.keys(), &call.args[1])?;
    let offsets = map.value_offsets();
    let mut picks = Int64Builder::with_capacity(call.rows);
    for row in 0..call.rows {
        let found = (!map.is_null(row))
            .then(|| {
                (offsets[row]..offsets[row + 1])
                    .map(|o| o as usize)
                    .find(|&k| matcher.equal(k, row))
            })
            .flatten();
        picks.append_option(found.map(|k| k as i64));
    }
    Ok(take(map.values().as_ref(), &picks.finish(), None)?)
}

fn contains(call: &Call) -> Result<ArrayRef> {
    if call.args[0].data_type() == &DataType::Utf8 {
        let s = call.args[0].as_string::<i32>();
        let sub = call.args[1].as_string::<i32>();
        let out: BooleanArray = (0..call.rows)
            .map(|i| (s.is_valid(i) && sub.is_valid(i)).then(|| s.value(i).contains(sub.value(i))))
            .collect();
        return Ok(Arc::new(out));
    }
    let list = call.args[0].as_list::<i32>();
    let matcher = Matcher::new(list.values(), &call.args[1])?;
    let offsets = list.value_offsets();
    let out: BooleanArray = (0..call.rows)
        .map(|row| {
            if list.is_null(row) || is_null(call.args[1].as_ref(), row) {
                return None;
            }
            let range = offsets[row] as usize..offsets[row + 1] as usize;
            let values = list.values();
            if range.clone().any(|v| matcher.equal(v, row)) {
                Some(true)
            } else if range.clone().any(|v| is_null(values.as_ref(), v)) {
                // An unknown element might be the one: Trino answers NULL.
                None
            } else {
                Some(false)
            }
        })
        .collect();
    Ok(Arc::new(out))
}

fn array_position(call: &Call) -> Result<ArrayRef> {
    let list = call.args[0].as_list::<i32>();
    let matcher = Matcher::new(list.values(), &call.args[1])?;
    let offsets = list.value_offsets();
    let out: Int64Array = (0..call.rows)
        .map(|row| {
            if list.is_null(row) || is_null(call.args[1].as_ref(), row) {
                return None;
            }
            let (start, end) = (offsets[row] as usize, offsets[row + 1] as usize);
            Some(
                (start..end)
                    .find(|&v| matcher.equal(v, row))
                    .map_or(0, |v| (v - start + 1) as i64),
            )
        })
        .collect();
    Ok(Arc::new(out))
}

/// Rebuilds a list column from each row's kept child positions.
fn rebuild(list: &ListArray, kept: Vec<Option<Vec<u64>>>) -> Result<ArrayRef> {
    let mut indices = Vec::new();
    let mut lengths = Vec::with_capacity(kept.len());
    let mut valid = Vec::with_capacity(kept.len());
    for row in kept {
        valid.push(row.is_some());
        let row = row.unwrap_or_default();
        lengths.push(row.len());
        indices.extend(row);
    }
    let values = take(list.values().as_ref(), &UInt64Array::from(indices), None)?;
    let field = match list.data_type() {
        DataType::List(f) => Arc::clone(f),
        other => return exec_err!("expected a list, got {other}"),
    };
    Ok(Arc::new(ListArray::try_new(
        field,
        OffsetBuffer::from_lengths(lengths),
        values,
        Some(valid.into()),
    )?))
}

fn array_remove(call: &Call) -> Result<ArrayRef> {
    let list = call.args[0].as_list::<i32>();
    let matcher = Matcher::new(list.values(), &call.args[1])?;
    let offsets = list.value_offsets();
    let kept = (0..call.rows)
        .map(|row| {
            if list.is_null(row) || is_null(call.args[1].as_ref(), row) {
                return None;
            }
            // NULL elements are kept: they are not equal to anything.
            Some(
                (offsets[row] as u64..offsets[row + 1] as u64)
                    .filter(|&v| !matcher.equal(v as usize, row))
                    .collect(),
            )
        })
        .collect();
    rebuild(list, kept)
}

fn slice(call: &Call) -> Result<ArrayRef> {
    let list = call.args[0].as_list::<i32>();
    let from = call.args[1].as_primitive::<Int64Type>();
    let length = call.args[2].as_primitive::<Int64Type>();
    let offsets = list.value_offsets();
    let mut kept = Vec::with_capacity(call.rows);
    for row in 0..call.rows {
        if list.is_null(row) || from.is_null(row) || length.is_null(row) {
            kept.push(None);
            continue;
        }
        let (start, end) = (i64::from(offsets[row]), i64::from(offsets[row + 1]));
        let size = end - start;
        let (mut first, length) = (from.value(row), length.value(row));
        if length < 0 {
            return exec_err!("length must be greater than or equal to 0");
        }
        if first == 0 {
            return exec_err!("SQL array indices start at 1");
        }
        if first < 0 {
            first += size + 1;
        }
        let last = first.saturating_add(length).min(size + 1);
        let range = if first <= 0 || first > size || first >= last {
            0..0
        } else {
            (start + first - 1) as u64..(start + last - 1) as u64
        };
        kept.push(Some(range.collect()));
    }
    rebuild(list, kept)
}

fn cardinality(call: &Call) -> Result<ArrayRef> {
    let (offsets, nulls) = match call.args[0].data_type() {
        DataType::Map(..) => {
            let m = call.args[0].as_map();
            (m.value_offsets().to_vec(), m.logical_nulls())
        }
        _ => {
            let l = call.args[0].as_list::<i32>();
            (l.value_offsets().to_vec(), l.logical_nulls())
        }
    };
    let out: Int64Array = (0..call.rows)
        .map(|i| {
            let valid = nulls.as_ref().is_none_or(|n| n.is_valid(i));
            valid.then(|| i64::from(offsets[i + 1] - offsets[i]))
        })
        .collect();
    Ok(Arc::new(out))
}

fn sequence_types(t: &[DataType]) -> Option<Vec<DataType>> {
    let interval = DataType::Interval(IntervalUnit::MonthDayNano);
    let is_interval = |t: &DataType| matches!(t, DataType::Interval(_) | DataType::Null);
    let temporal = |t: &DataType| {
        matches!(
            t,
            DataType::Date32 | DataType::Date64 | DataType::Timestamp(..) | DataType::Null
        )
    };
    match t {
        [a, b, rest @ ..] if rest.len() <= 1 && is_integer(a) && is_integer(b) => rest
            .iter()
            .all(is_integer)
            .then(|| vec![DataType::Int64; t.len()]),
        [a, b, rest @ ..] if rest.len() <= 1 && temporal(a) && temporal(b) => {
            if !rest.iter().all(is_interval) {
                return None;
            }
            let common = match (a, b) {
                (DataType::Null, DataType::Null) => DataType::Date32,
                (DataType::Null, x) | (x, DataType::Null) => x.clone(),
                (x, y) if x == y => x.clone(),
                (x, y) => comparison_coercion(x, y)?,
            };
            let common = if common == DataType::Date64 {
                DataType::Date32
            } else {
                common
            };
            // Timestamps need a step; dates default to one day.
            if rest.is_empty() && common != DataType::Date32 {
                return None;
            }
            let mut out = vec![common.clone(), common];
            out.extend(rest.iter().map(|_| interval.clone()));
            Some(out)
        }
        _ => None,
    }
}

fn sequence_error(count: i64) -> Result<()> {
    if count > MAX_SEQUENCE {
        return exec_err!("result of sequence function must not have more than 10000 entries");
    }
    Ok(())
}

fn direction_error() -> DataFusionError {
    DataFusionError::Execution(
        "sequence stop value should be greater than or equal to start value if step is greater \
         than zero otherwise stop should be less than or equal to start"
            .into(),
    )
}

fn sequence(call: &Call) -> Result<ArrayRef> {
    let element = call.args[0].data_type().clone();
    let mut parts: Vec<ArrayRef> = Vec::with_capacity(call.rows);
    let mut lengths = Vec::with_capacity(call.rows);
    let mut valid = Vec::with_capacity(call.rows);
    if element == DataType::Int64 {
        let a = call.args[0].as_primitive::<Int64Type>();
        let b = call.args[1].as_primitive::<Int64Type>();
        let step = call.args.get(2).map(|s| s.as_primitive::<Int64Type>());
        for row in 0..call.rows {
            if super::null_at(&call.args, row) {
                valid.push(false);
                lengths.push(0);
                continue;
            }
            let (start, stop) = (a.value(row), b.value(row));
            let step = step.map_or(if start <= stop { 1 } else { -1 }, |s| s.value(row));
            if step == 0 {
                return exec_err!("step must not be zero");
            }
            if (step > 0 && start > stop) || (step < 0 && start < stop) {
                return Err(direction_error());
            }
            let count = (i128::from(stop) - i128::from(start)) / i128::from(step) + 1;
            sequence_error(i64::try_from(count).unwrap_or(i64::MAX))?;
            let values: Int64Array = (0..count as i64).map(|k| start + k * step).collect();
            lengths.push(values.len());
            valid.push(true);
            parts.push(Arc::new(values));
        }
    } else {
        let a = Times::read(&call.args[0])?;
        let b = Times::read(&call.args[1])?;
        let steps = call
            .args
            .get(2)
            .map(|s| s.as_primitive::<IntervalMonthDayNanoType>());
        for row in 0..call.rows {
            let (Some(start), Some(stop)) = (a.utc[row], b.utc[row]) else {
                valid.push(false);
                lengths.push(0);
                continue;
            };
            let (months, nanos) = match steps {
                None => (0, if start <= stop { 1 } else { -1 } * 86_400_000_000_000),
                Some(s) if s.is_null(row) => {
                    valid.push(false);
                    lengths.push(0);
                    continue;
                }
                Some(s) => {
                    let v = s.value(row);
                    let nanos = i64::from(v.days)
                        .checked_mul(86_400_000_000_000)
                        .and_then(|d| d.checked_add(v.nanoseconds))
                        .ok_or_else(direction_error)?;
                    if v.months != 0 && nanos != 0 {
                        return exec_err!(
                            "sequence step must be a year-month or a day-to-second interval"
                        );
                    }
                    (v.months, nanos)
                }
            };
            if a.is_date && nanos % 86_400_000_000_000 != 0 {
                return exec_err!(
                    "sequence step must be a day interval if start and end values are dates"
                );
            }
            let values = temporal_steps(start, stop, months, nanos)?;
            lengths.push(values.len());
            valid.push(true);
            parts.push(times_array(values, &element)?);
        }
    }
    let values = if parts.is_empty() {
        new_empty_array(&element)
    } else {
        let refs: Vec<&dyn Array> = parts.iter().map(|p| p.as_ref()).collect();
        concat(&refs)?
    };
    Ok(Arc::new(ListArray::try_new(
        Arc::new(Field::new_list_field(element, true)),
        OffsetBuffer::from_lengths(lengths),
        values,
        Some(valid.into()),
    )?))
}

/// `start, start + step, ...` up to `stop` inclusive; month steps count from `start`, so the
/// day of the month does not drift after a short month.
fn temporal_steps(
    start: NaiveDateTime,
    stop: NaiveDateTime,
    months: i32,
    nanos: i64,
) -> Result<Vec<NaiveDateTime>> {
    if months == 0 && nanos == 0 {
        return exec_err!("step must not be zero");
    }
    let forward = months > 0 || nanos > 0;
    if (forward && start > stop) || (!forward && start < stop) {
        return Err(direction_error());
    }
    let mut out = Vec::new();
    for k in 0..=MAX_SEQUENCE {
        let value = if months != 0 {
            let m = i64::from(months) * k;
            let abs = Months::new(u32::try_from(m.unsigned_abs()).map_err(|_| direction_error())?);
            if m >= 0 {
                start.checked_add_months(abs)
            } else {
                start.checked_sub_months(abs)
            }
        } else {
            nanos
                .checked_mul(k)
                .map(TimeDelta::nanoseconds)
                .and_then(|d| start.checked_add_signed(d))
        };
        let Some(value) = value else { break };
        if (forward && value > stop) || (!forward && value < stop) {
            break;
        }
        out.push(value);
    }
    sequence_error(out.len() as i64)?;
    Ok(out)
}

/// A column of `element` (a date or timestamp type) from UTC times.
fn times_array(values: Vec<NaiveDateTime>, element: &DataType) -> Result<ArrayRef> {
    super::datetime::build(values.into_iter().map(Some).collect(), element)
}
