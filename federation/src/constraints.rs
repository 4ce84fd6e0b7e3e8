//! Constraints as typed domains: what the engine can say about a column, and what a connector
//! reads back, independent of the wire's blocks and markers.
//!
//! A [`Domain`] is Presto's `Domain`: a set of non-null values ([`Values`]) plus whether NULL is
//! allowed. On the wire it is a `SortedRangeSet` (ranges with markers, each marker value a one-row
//! block `col1`), an `EquatableValueSet` (an IN or NOT IN list in a block) or an
//! `AllOrNoneValueSet`.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BinaryArray, BooleanArray, Date32Array, Date64Array, Decimal128Array,
    Float32Array, Float64Array, Int8Array, Int16Array, Int32Array, Int64Array, StringArray,
    TimestampMicrosecondArray, TimestampMillisecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use arrow::record_batch::RecordBatch;
use indexmap::IndexMap;

use crate::ipc::Framing;
use crate::types::arrow_type;
use crate::wire::{self, Block, Bound, Marker, ValueSet};
use crate::{Error, Result};

/// One non-null value of a column.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Bool(bool),
    Int(i64),
    Float(f64),
    /// Unscaled value and scale.
    Decimal(i128, i8),
    Text(String),
    Binary(Vec<u8>),
    /// Days since the epoch.
    Date(i32),
    /// Microseconds since the epoch, UTC.
    Timestamp(i64),
}

impl Value {
    /// Orders two values of the same column (`None` across kinds, or for NaN).
    pub fn compare(&self, other: &Value) -> Option<std::cmp::Ordering> {
        use Value::*;
        match (self, other) {
            (Bool(a), Bool(b)) => a.partial_cmp(b),
            (Int(a), Int(b)) => a.partial_cmp(b),
            (Float(a), Float(b)) => a.partial_cmp(b),
            (Int(a), Float(b)) => (*a as f64).partial_cmp(b),
            (Float(a), Int(b)) => a.partial_cmp(&(*b as f64)),
            (Decimal(a, sa), Decimal(b, sb)) => {
                let (a, b) = align(*a, *sa, *b, *sb)?;
                a.partial_cmp(&b)
            }
            (Text(a), Text(b)) => a.partial_cmp(b),
            (Binary(a), Binary(b)) => a.partial_cmp(b),
            (Date(a), Date(b)) => a.partial_cmp(b),
            (Timestamp(a), Timestamp(b)) => a.partial_cmp(b),
            _ => None,
        }
    }
}

fn align(a: i128, sa: i8, b: i128, sb: i8) -> Option<(i128, i128)> {
    let up = |v: i128, by: i16| {
        10i128
            .checked_pow(u32::try_from(by).ok()?)
            .and_then(|f| v.checked_mul(f))
    };
    let (sa, sb) = (i16::from(sa), i16::from(sb));
    match sa.cmp(&sb) {
        std::cmp::Ordering::Equal => Some((a, b)),
        std::cmp::Ordering::Less => Some((up(a, sb - sa)?, b)),
        std::cmp::Ordering::Greater => Some((a, up(b, sa - sb)?)),
    }
}

/// One end of a range; `None` in a [`Range`] is unbounded.
#[derive(Clone, Debug, PartialEq)]
pub struct Endpoint {
    pub value: Value,
    pub inclusive: bool,
}

/// A range of values; both ends `None` is every non-null value.
#[derive(Clone, Debug, PartialEq)]
pub struct Range {
    pub low: Option<Endpoint>,
    pub high: Option<Endpoint>,
}

impl Range {
    /// Exactly one value.
    pub fn single(value: Value) -> Range {
        Range {
            low: Some(Endpoint {
                value: value.clone(),
                inclusive: true,
            }),
            high: Some(Endpoint {
                value,
                inclusive: true,
            }),
        }
    }

    /// Is `value` inside the range? `None` when the values cannot be compared.
    pub fn contains(&self, value: &Value) -> Option<bool> {
        if let Some(low) = &self.low {
            let ord = value.compare(&low.value)?;
            if ord.is_lt() || (ord.is_eq() && !low.inclusive) {
                return Some(false);
            }
        }
        if let Some(high) = &self.high {
            let ord = value.compare(&high.value)?;
            if ord.is_gt() || (ord.is_eq() && !high.inclusive) {
                return Some(false);
            }
        }
        Some(true)
    }
}

/// The non-null values a column may take.
#[derive(Clone, Debug, PartialEq)]
pub enum Values {
    /// Every value (`true`) or none.
    AllOrNone(bool),
    /// A union of ranges.
    Ranges(Vec<Range>),
    /// Values equal to one of these (white list) or to none of them (black list).
    Set {
        values: Vec<Value>,
        white_list: bool,
    },
}

/// What a query allows a column to be.
#[derive(Clone, Debug, PartialEq)]
pub struct Domain {
    /// The column's Arrow type, for the wire's blocks.
    pub data_type: DataType,
    pub values: Values,
    pub null_allowed: bool,
}

impl Domain {
    /// Does the domain admit this value (`None` is SQL NULL)? Unknown comparisons admit it, so
    /// a connector that filters with this never drops a row the engine would keep.
    pub fn admits(&self, value: Option<&Value>) -> bool {
        let Some(value) = value else {
            return self.null_allowed;
        };
        match &self.values {
            Values::AllOrNone(all) => *all,
            Values::Ranges(ranges) => ranges.iter().any(|r| r.contains(value).unwrap_or(true)),
            Values::Set { values, white_list } => {
                let found = values
                    .iter()
                    .any(|v| v.compare(value).is_some_and(|o| o.is_eq()));
                found == *white_list
            }
        }
    }

    /// The wire form, with blocks framed for the message's serde version.
    pub fn to_value_set(&self, framing: Framing) -> Result<ValueSet> {
        let arrow = arrow_type(&self.data_type).ok_or_else(|| Error::Protocol {
            what: "constraint".into(),
            message: format!("no wire name for type {}", self.data_type),
        })?;
        Ok(match &self.values {
            Values::AllOrNone(all) => ValueSet::AllOrNoneValueSet {
                arrow_type: arrow,
                all: *all,
                null_allowed: self.null_allowed,
            },
            Values::Set { values, white_list } => ValueSet::EquatableValueSet {
                value_block: Block::encode(&value_batch(&self.data_type, values)?, framing)?,
                white_list: *white_list,
                null_allowed: self.null_allowed,
            },
            Values::Ranges(ranges) => {
                let mut wire_ranges = Vec::with_capacity(ranges.len());
                for range in ranges {
                    wire_ranges.push(wire::Range {
                        low: marker(&self.data_type, range.low.as_ref(), true, framing)?,
                        high: marker(&self.data_type, range.high.as_ref(), false, framing)?,
                    });
                }
                ValueSet::SortedRangeSet {
                    arrow_type: arrow,
                    ranges: wire_ranges,
                    null_allowed: self.null_allowed,
                }
            }
        })
    }

    /// Reads a wire value set; its type is the one the set carries.
    pub fn from_value_set(column: &str, set: &ValueSet) -> Result<Domain> {
        let bad = |message: String| Error::Protocol {
            what: format!("constraint on {column}"),
            message,
        };
        let typed = |arrow: &wire::ArrowType| {
            crate::types::data_type(arrow)
                .ok_or_else(|| bad(format!("constraints on {arrow:?} values are not supported")))
        };
        Ok(match set {
            ValueSet::AllOrNoneValueSet {
                all,
                null_allowed,
                arrow_type,
            } => Domain {
                data_type: typed(arrow_type)?,
                values: Values::AllOrNone(*all),
                null_allowed: *null_allowed,
            },
            ValueSet::EquatableValueSet {
                value_block,
                white_list,
                null_allowed,
            } => {
                let batch = value_block.decode()?;
                if batch.num_columns() != 1 {
                    return Err(bad(format!(
                        "a value block with {} columns",
                        batch.num_columns()
                    )));
                }
                let mut values = Vec::with_capacity(batch.num_rows());
                for row in 0..batch.num_rows() {
                    if let Some(v) = value_at(batch.column(0), row).map_err(bad)? {
                        values.push(v);
                    }
                }
                let data_type = batch.schema().field(0).data_type().clone();
                Domain {
                    data_type,
                    values: Values::Set {
                        values,
                        white_list: *white_list,
                    },
                    null_allowed: *null_allowed,
                }
            }
            ValueSet::SortedRangeSet {
                ranges,
                null_allowed,
                arrow_type,
            } => {
                let mut out = Vec::with_capacity(ranges.len());
                for range in ranges {
                    out.push(Range {
                        low: endpoint(&range.low).map_err(&bad)?,
                        high: endpoint(&range.high).map_err(&bad)?,
                    });
                }
                Domain {
                    data_type: typed(arrow_type)?,
                    values: Values::Ranges(out),
                    null_allowed: *null_allowed,
                }
            }
        })
    }
}

/// The constraints' summary as domains, by column.
pub fn domains(summary: &IndexMap<String, ValueSet>) -> Result<Vec<(String, Domain)>> {
    summary
        .iter()
        .map(|(column, set)| Ok((column.clone(), Domain::from_value_set(column, set)?)))
        .collect()
}

fn marker(
    data_type: &DataType,
    end: Option<&Endpoint>,
    low: bool,
    framing: Framing,
) -> Result<Marker> {
    Ok(match end {
        None => Marker {
            value_block: Block::encode(&value_batch(data_type, &[])?, framing)?,
            bound: if low { Bound::Above } else { Bound::Below },
            null_value: true,
        },
        Some(end) => Marker {
            value_block: Block::encode(
                &value_batch(data_type, std::slice::from_ref(&end.value))?,
                framing,
            )?,
            bound: match (end.inclusive, low) {
                (true, _) => Bound::Exactly,
                (false, true) => Bound::Above,
                (false, false) => Bound::Below,
            },
            null_value: false,
        },
    })
}

fn endpoint(marker: &Marker) -> std::result::Result<Option<Endpoint>, String> {
    if marker.null_value {
        return Ok(None);
    }
    let batch = marker.value_block.decode().map_err(|e| e.to_string())?;
    if batch.num_rows() == 0 || batch.num_columns() == 0 {
        return Err("a bounded marker without a value".into());
    }
    let value = value_at(batch.column(0), 0)?.ok_or("a bounded marker whose value is NULL")?;
    Ok(Some(Endpoint {
        value,
        inclusive: marker.bound == Bound::Exactly,
    }))
}

/// A one-column (`col1`) batch of values, as markers and equatable sets carry them.
pub fn value_batch(data_type: &DataType, values: &[Value]) -> Result<RecordBatch> {
    let array = values_array(data_type, values)?;
    RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new(
            "col1",
            data_type.clone(),
            true,
        )])),
        vec![array],
    )
    .map_err(|source| Error::Arrow {
        what: "value block".into(),
        source,
    })
}

fn mismatch(data_type: &DataType, value: &Value) -> Error {
    Error::Protocol {
        what: "constraint value".into(),
        message: format!("{value:?} is not a {data_type} value"),
    }
}

fn values_array(data_type: &DataType, values: &[Value]) -> Result<ArrayRef> {
    macro_rules! build {
        ($array:ty, $pat:pat => $out:expr) => {{
            let mut out = Vec::with_capacity(values.len());
            for v in values {
                match v {
                    $pat => out.push($out),
                    other => return Err(mismatch(data_type, other)),
                }
            }
            Arc::new(<$array>::from(out)) as ArrayRef
        }};
    }
    let int = |v: &i64| *v;
    Ok(match data_type {
        DataType::Boolean => build!(BooleanArray, Value::Bool(b) => *b),
        DataType::Int8 => {
            build!(Int8Array, Value::Int(i) => i8::try_from(int(i)).map_err(|_| mismatch(data_type, &Value::Int(*i)))?)
        }
        DataType::Int16 => {
            build!(Int16Array, Value::Int(i) => i16::try_from(int(i)).map_err(|_| mismatch(data_type, &Value::Int(*i)))?)
        }
        DataType::Int32 => {
            build!(Int32Array, Value::Int(i) => i32::try_from(int(i)).map_err(|_| mismatch(data_type, &Value::Int(*i)))?)
        }
        DataType::Int64 => build!(Int64Array, Value::Int(i) => *i),
        DataType::Float32 => build!(Float32Array, Value::Float(f) => *f as f32),
        DataType::Float64 => build!(Float64Array, Value::Float(f) => *f),
        DataType::Utf8 => build!(StringArray, Value::Text(s) => s.as_str()),
        DataType::Binary => build!(BinaryArray, Value::Binary(b) => b.as_slice()),
        DataType::Date32 => build!(Date32Array, Value::Date(d) => *d),
        DataType::Date64 => build!(Date64Array, Value::Timestamp(us) => us.div_euclid(1000)),
        DataType::Timestamp(TimeUnit::Millisecond, tz) => {
            Arc::new(build_ts_ms(values, data_type)?.with_timezone_opt(tz.clone())) as ArrayRef
        }
        DataType::Timestamp(TimeUnit::Microsecond, tz) => {
            let mut out = Vec::with_capacity(values.len());
            for v in values {
                match v {
                    Value::Timestamp(us) => out.push(*us),
                    other => return Err(mismatch(data_type, other)),
                }
            }
            Arc::new(TimestampMicrosecondArray::from(out).with_timezone_opt(tz.clone())) as ArrayRef
        }
        DataType::Decimal128(p, s) => {
            let mut out = Vec::with_capacity(values.len());
            for v in values {
                match v {
                    Value::Decimal(unscaled, scale) => {
                        let (a, _) = align(*unscaled, *scale, 0, *s)
                            .ok_or_else(|| mismatch(data_type, v))?;
                        if *scale > *s {
                            return Err(mismatch(data_type, v));
                        }
                        out.push(a);
                    }
                    Value::Int(i) => out.push(
                        align(i128::from(*i), 0, 0, *s)
                            .ok_or_else(|| mismatch(data_type, v))?
                            .0,
                    ),
                    other => return Err(mismatch(data_type, other)),
                }
            }
            Arc::new(
                Decimal128Array::from(out)
                    .with_precision_and_scale(*p, *s)
                    .map_err(|source| Error::Arrow {
                        what: "decimal constraint".into(),
                        source,
                    })?,
            ) as ArrayRef
        }
        other => {
            return Err(Error::Protocol {
                what: "constraint".into(),
                message: format!("constraints on {other} columns are not supported"),
            });
        }
    })
}

fn build_ts_ms(values: &[Value], data_type: &DataType) -> Result<TimestampMillisecondArray> {
    let mut out = Vec::with_capacity(values.len());
    for v in values {
        match v {
            Value::Timestamp(us) => out.push(us.div_euclid(1000)),
            other => return Err(mismatch(data_type, other)),
        }
    }
    Ok(TimestampMillisecondArray::from(out))
}

/// The value at `row`, `None` when NULL.
pub fn value_at(array: &ArrayRef, row: usize) -> std::result::Result<Option<Value>, String> {
    if row >= array.len() {
        return Err(format!("row {row} of a {}-row block", array.len()));
    }
    if array.is_null(row) {
        return Ok(None);
    }
    macro_rules! get {
        ($t:ty) => {
            array
                .as_any()
                .downcast_ref::<$t>()
                .ok_or_else(|| format!("unexpected array for {}", array.data_type()))?
                .value(row)
        };
    }
    Ok(Some(match array.data_type() {
        DataType::Boolean => Value::Bool(get!(BooleanArray)),
        DataType::Int8 => Value::Int(i64::from(get!(Int8Array))),
        DataType::Int16 => Value::Int(i64::from(get!(Int16Array))),
        DataType::Int32 => Value::Int(i64::from(get!(Int32Array))),
        DataType::Int64 => Value::Int(get!(Int64Array)),
        DataType::Float32 => Value::Float(f64::from(get!(Float32Array))),
        DataType::Float64 => Value::Float(get!(Float64Array)),
        DataType::Utf8 => Value::Text(get!(StringArray).to_owned()),
        DataType::Binary => Value::Binary(get!(BinaryArray).to_vec()),
        DataType::Date32 => Value::Date(get!(Date32Array)),
        DataType::Date64 => Value::Timestamp(get!(Date64Array).saturating_mul(1000)),
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            Value::Timestamp(get!(TimestampMillisecondArray).saturating_mul(1000))
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            Value::Timestamp(get!(TimestampMicrosecondArray))
        }
        DataType::Decimal128(_, s) => Value::Decimal(get!(Decimal128Array), *s),
        other => {
            return Err(format!(
                "constraint values of type {other} are not supported"
            ));
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(domain: &Domain, framing: Framing) -> Domain {
        let set = domain.to_value_set(framing).expect("encode");
        let json = serde_json::to_string(&set).expect("json");
        let back: ValueSet = serde_json::from_str(&json).expect("parse");
        Domain::from_value_set("c", &back).expect("decode")
    }

    #[test]
    fn ranges_sets_and_all_or_none_survive_the_wire() {
        let ranges = Domain {
            data_type: DataType::Float64,
            values: Values::Ranges(vec![
                Range {
                    low: Some(Endpoint {
                        value: Value::Float(-10000.0),
                        inclusive: false,
                    }),
                    high: None,
                },
                Range::single(Value::Float(-20000.0)),
            ]),
            null_allowed: false,
        };
        let set = Domain {
            data_type: DataType::Utf8,
            values: Values::Set {
                values: vec![Value::Text("a'; DROP".into()), Value::Text("b".into())],
                white_list: false,
            },
            null_allowed: true,
        };
        let none = Domain {
            data_type: DataType::Int32,
            values: Values::AllOrNone(false),
            null_allowed: true,
        };
        let dec = Domain {
            data_type: DataType::Decimal128(10, 2),
            values: Values::Ranges(vec![Range {
                low: None,
                high: Some(Endpoint {
                    value: Value::Decimal(1234, 2),
                    inclusive: true,
                }),
            }]),
            null_allowed: false,
        };
        for framing in [Framing::Legacy, Framing::Continuation] {
            for d in [&ranges, &set, &none, &dec] {
                assert_eq!(&round_trip(d, framing), d);
            }
        }
    }

    #[test]
    fn markers_use_the_sdk_bounds() {
        let d = Domain {
            data_type: DataType::Int64,
            values: Values::Ranges(vec![Range {
                low: Some(Endpoint {
                    value: Value::Int(5),
                    inclusive: false,
                }),
                high: None,
            }]),
            null_allowed: false,
        };
        let ValueSet::SortedRangeSet { ranges, .. } =
            d.to_value_set(Framing::Continuation).expect("encode")
        else {
            panic!("not a range set")
        };
        assert_eq!(ranges[0].low.bound, Bound::Above);
        assert!(!ranges[0].low.null_value);
        assert_eq!(ranges[0].high.bound, Bound::Below);
        assert!(ranges[0].high.null_value);
        assert_eq!(ranges[0].high.value_block.records, "");
    }

    #[test]
    fn admits_follows_sql() {
        let d = Domain {
            data_type: DataType::Int64,
            values: Values::Ranges(vec![Range {
                low: Some(Endpoint {
                    value: Value::Int(5),
                    inclusive: false,
                }),
                high: None,
            }]),
            null_allowed: false,
        };
        assert!(!d.admits(Some(&Value::Int(5))));
        assert!(d.admits(Some(&Value::Int(6))));
        assert!(!d.admits(None));
        let not_in = Domain {
            data_type: DataType::Utf8,
            values: Values::Set {
                values: vec![Value::Text("x".into())],
                white_list: false,
            },
            null_allowed: false,
        };
        assert!(!not_in.admits(Some(&Value::Text("x".into()))));
        assert!(not_in.admits(Some(&Value::Text("y".into()))));
    }

    #[test]
    fn decimals_compare_across_scales() {
        assert_eq!(
            Value::Decimal(150, 2).compare(&Value::Decimal(15, 1)),
            Some(std::cmp::Ordering::Equal)
        );
        assert_eq!(
            Value::Decimal(151, 2).compare(&Value::Decimal(15, 1)),
            Some(std::cmp::Ordering::Greater)
        );
    }
}
