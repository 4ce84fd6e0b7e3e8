//! Arrow types on the wire: the `@type` form used in constraints, and the SDK's conventions.
//!
//! The SDK supports BIT, DATEDAY, DATEMILLI, TIMESTAMPMILLITZ / MICROTZ, FLOAT4 / 8, TINYINT to
//! BIGINT, VARBINARY, DECIMAL, VARCHAR, STRUCT, LIST and MAP (`SupportedTypes`); Athena reads its
//! `timestamp` as DATEMILLI (Arrow `Date64`). [`to_wire_schema`] brings a connector's schema into
//! that set, and [`to_engine_schema`] brings what a connector sends into the types Quarry's
//! engine uses (`Date64` becomes `Timestamp(ms)`, column names lower case).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Date64Array, TimestampMillisecondArray};
use arrow::datatypes::{
    DataType, Field, FieldRef, Fields, IntervalUnit, Schema, SchemaRef, TimeUnit,
};
use arrow::record_batch::RecordBatch;

use crate::wire::ArrowType;
use crate::{Error, Result};

fn unit_name(unit: TimeUnit) -> &'static str {
    match unit {
        TimeUnit::Second => "SECOND",
        TimeUnit::Millisecond => "MILLISECOND",
        TimeUnit::Microsecond => "MICROSECOND",
        TimeUnit::Nanosecond => "NANOSECOND",
    }
}

fn unit_of(name: &str) -> Option<TimeUnit> {
    Some(match name {
        "SECOND" => TimeUnit::Second,
        "MILLISECOND" => TimeUnit::Millisecond,
        "MICROSECOND" => TimeUnit::Microsecond,
        "NANOSECOND" => TimeUnit::Nanosecond,
        _ => return None,
    })
}

/// The `@type` form of an Arrow type, or `None` for types the protocol has no name for.
pub fn arrow_type(data_type: &DataType) -> Option<ArrowType> {
    Some(match data_type {
        DataType::Null => ArrowType::Null,
        DataType::Boolean => ArrowType::Bool,
        DataType::Int8 => ArrowType::Int {
            bit_width: 8,
            is_signed: true,
        },
        DataType::Int16 => ArrowType::Int {
            bit_width: 16,
            is_signed: true,
        },
        DataType::Int32 => ArrowType::Int {
            bit_width: 32,
            is_signed: true,
        },
        DataType::Int64 => ArrowType::Int {
            bit_width: 64,
            is_signed: true,
        },
        DataType::UInt8 => ArrowType::Int {
            bit_width: 8,
            is_signed: false,
        },
        DataType::UInt16 => ArrowType::Int {
            bit_width: 16,
            is_signed: false,
        },
        DataType::UInt32 => ArrowType::Int {
            bit_width: 32,
            is_signed: false,
        },
        DataType::UInt64 => ArrowType::Int {
            bit_width: 64,
            is_signed: false,
        },
        DataType::Float16 => ArrowType::FloatingPoint {
            precision: "HALF".into(),
        },
        DataType::Float32 => ArrowType::FloatingPoint {
            precision: "SINGLE".into(),
        },
        DataType::Float64 => ArrowType::FloatingPoint {
            precision: "DOUBLE".into(),
        },
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => ArrowType::Utf8,
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => ArrowType::Binary,
        DataType::FixedSizeBinary(width) => ArrowType::FixedSizeBinary { byte_width: *width },
        DataType::Decimal128(p, s) => ArrowType::Decimal {
            precision: i32::from(*p),
            scale: i32::from(*s),
        },
        DataType::Date32 => ArrowType::Date { unit: "DAY".into() },
        DataType::Date64 => ArrowType::Date {
            unit: "MILLISECOND".into(),
        },
        DataType::Time32(unit) => ArrowType::Time {
            unit: unit_name(*unit).into(),
            bit_width: 32,
        },
        DataType::Time64(unit) => ArrowType::Time {
            unit: unit_name(*unit).into(),
            bit_width: 64,
        },
        DataType::Timestamp(unit, tz) => ArrowType::Timestamp {
            unit: unit_name(*unit).into(),
            timezone: tz.as_ref().map(|t| t.to_string()),
        },
        DataType::Interval(unit) => ArrowType::Interval {
            unit: match unit {
                IntervalUnit::YearMonth => "YEAR_MONTH",
                IntervalUnit::DayTime => "DAY_TIME",
                IntervalUnit::MonthDayNano => "MONTH_DAY_NANO",
            }
            .into(),
        },
        DataType::List(_) | DataType::LargeList(_) => ArrowType::List,
        DataType::FixedSizeList(_, size) => ArrowType::FixedSizeList { list_size: *size },
        DataType::Struct(_) => ArrowType::Struct,
        DataType::Map(_, _) => ArrowType::Map,
        _ => return None,
    })
}

/// The Arrow type of an `@type` form, for scalar types (nested ones need their children, which
/// only schemas carry).
pub fn data_type(arrow_type: &ArrowType) -> Option<DataType> {
    Some(match arrow_type {
        ArrowType::Null => DataType::Null,
        ArrowType::Bool => DataType::Boolean,
        ArrowType::Int {
            bit_width,
            is_signed,
        } => match (bit_width, is_signed) {
            (8, true) => DataType::Int8,
            (16, true) => DataType::Int16,
            (32, true) => DataType::Int32,
            (64, true) => DataType::Int64,
            (8, false) => DataType::UInt8,
            (16, false) => DataType::UInt16,
            (32, false) => DataType::UInt32,
            (64, false) => DataType::UInt64,
            _ => return None,
        },
        ArrowType::FloatingPoint { precision } => match precision.as_str() {
            "HALF" => DataType::Float16,
            "SINGLE" => DataType::Float32,
            "DOUBLE" => DataType::Float64,
            _ => return None,
        },
        ArrowType::Utf8 => DataType::Utf8,
        ArrowType::Binary => DataType::Binary,
        ArrowType::FixedSizeBinary { byte_width } => DataType::FixedSizeBinary(*byte_width),
        ArrowType::Decimal { precision, scale } => {
            DataType::Decimal128(u8::try_from(*precision).ok()?, i8::try_from(*scale).ok()?)
        }
        ArrowType::Date { unit } => match unit.as_str() {
            "DAY" => DataType::Date32,
            "MILLISECOND" => DataType::Date64,
            _ => return None,
        },
        ArrowType::Time { unit, bit_width } => {
            let unit = unit_of(unit)?;
            if *bit_width == 32 {
                DataType::Time32(unit)
            } else {
                DataType::Time64(unit)
            }
        }
        ArrowType::Timestamp { unit, timezone } => DataType::Timestamp(
            unit_of(unit)?,
            timezone.as_ref().map(|t| Arc::from(t.as_str())),
        ),
        ArrowType::Interval { unit } => DataType::Interval(match unit.as_str() {
            "YEAR_MONTH" => IntervalUnit::YearMonth,
            "DAY_TIME" => IntervalUnit::DayTime,
            "MONTH_DAY_NANO" => IntervalUnit::MonthDayNano,
            _ => return None,
        }),
        ArrowType::Struct
        | ArrowType::List
        | ArrowType::Map
        | ArrowType::FixedSizeList { .. }
        | ArrowType::Union { .. } => {
            return None;
        }
    })
}

/// The engine's view of a connector's column type: Athena's `timestamp` (`Date64`) is a
/// millisecond timestamp, recursively through nested types.
fn engine_type(data_type: &DataType) -> DataType {
    match data_type {
        DataType::Date64 => DataType::Timestamp(TimeUnit::Millisecond, None),
        DataType::List(item) => DataType::List(engine_field(item)),
        DataType::Struct(fields) => {
            DataType::Struct(fields.iter().map(engine_field).collect::<Fields>())
        }
        DataType::Map(entries, sorted) => DataType::Map(engine_field(entries), *sorted),
        other => other.clone(),
    }
}

fn engine_field(field: &FieldRef) -> FieldRef {
    Arc::new(
        field
            .as_ref()
            .clone()
            .with_data_type(engine_type(field.data_type())),
    )
}

/// The schema the engine plans with for a connector's table schema: lower-case names, engine
/// types. The metadata stays, since it must travel back to the connector.
pub fn to_engine_schema(schema: &Schema) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| {
            f.as_ref()
                .clone()
                .with_name(f.name().to_lowercase())
                .with_data_type(engine_type(f.data_type()))
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// Converts a batch a connector sent into `schema` (from [`to_engine_schema`]): `Date64`
/// columns become millisecond timestamps, names follow the engine schema.
pub fn to_engine_batch(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    if batch.num_columns() != schema.fields().len() {
        return Err(Error::Protocol {
            what: "records".into(),
            message: format!(
                "{} columns received where {} were asked for",
                batch.num_columns(),
                schema.fields().len()
            ),
        });
    }
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(batch.num_columns());
    for (column, field) in batch.columns().iter().zip(schema.fields()) {
        columns.push(engine_array(column, field.data_type(), field.name())?);
    }
    crate::batch(schema, columns, batch.num_rows(), "records")
}

fn engine_array(array: &ArrayRef, target: &DataType, column: &str) -> Result<ArrayRef> {
    if array.data_type() == target {
        return Ok(Arc::clone(array));
    }
    if let (DataType::Date64, DataType::Timestamp(TimeUnit::Millisecond, None)) =
        (array.data_type(), target)
        && let Some(dates) = array.as_any().downcast_ref::<Date64Array>()
    {
        let values = TimestampMillisecondArray::new(dates.values().clone(), dates.nulls().cloned());
        return Ok(Arc::new(values));
    }
    arrow::compute::cast(array, target).map_err(|source| Error::Arrow {
        what: format!(
            "column {column}: {} received where {target} was expected",
            array.data_type()
        ),
        source,
    })
}

/// A connector-side check that every column is one the SDK can carry, naming the first that is
/// not, and converting those with a supported near type (`Timestamp` without zone becomes
/// `Date64`, as Athena's `timestamp`; large and view strings become `Utf8`).
pub fn to_wire_schema(table: &str, schema: &Schema) -> Result<SchemaRef> {
    let mut fields = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        let data_type = wire_type(field.data_type()).ok_or_else(|| Error::UnsupportedType {
            table: table.to_owned(),
            column: field.name().clone(),
            data_type: field.data_type().to_string(),
            hint: "; cast it to a supported type in a view".into(),
        })?;
        fields.push(
            field
                .as_ref()
                .clone()
                .with_name(field.name().to_lowercase())
                .with_data_type(data_type),
        );
    }
    Ok(Arc::new(Schema::new_with_metadata(
        fields,
        schema.metadata().clone(),
    )))
}

fn wire_type(data_type: &DataType) -> Option<DataType> {
    Some(match data_type {
        DataType::Boolean
        | DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::Float32
        | DataType::Float64
        | DataType::Utf8
        | DataType::Binary
        | DataType::Decimal128(_, _)
        | DataType::Date32
        | DataType::Date64 => data_type.clone(),
        DataType::LargeUtf8 | DataType::Utf8View => DataType::Utf8,
        DataType::LargeBinary | DataType::BinaryView => DataType::Binary,
        DataType::Timestamp(_, None) => DataType::Date64,
        DataType::Timestamp(TimeUnit::Millisecond | TimeUnit::Microsecond, Some(_)) => {
            data_type.clone()
        }
        DataType::List(item) => DataType::List(Arc::new(
            item.as_ref()
                .clone()
                .with_data_type(wire_type(item.data_type())?),
        )),
        DataType::Struct(fields) => DataType::Struct(
            fields
                .iter()
                .map(|f| {
                    Some(Arc::new(
                        f.as_ref().clone().with_data_type(wire_type(f.data_type())?),
                    ))
                })
                .collect::<Option<Fields>>()?,
        ),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalar_types_round_trip_through_their_wire_names() {
        for t in [
            DataType::Boolean,
            DataType::Int8,
            DataType::Int64,
            DataType::Float64,
            DataType::Utf8,
            DataType::Binary,
            DataType::Decimal128(38, 9),
            DataType::Date32,
            DataType::Date64,
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        ] {
            let wire = arrow_type(&t).expect("named");
            assert_eq!(data_type(&wire), Some(t));
        }
    }

    #[test]
    fn athena_timestamps_become_engine_timestamps() {
        let schema = Schema::new(vec![Field::new("At", DataType::Date64, true)]);
        let engine = to_engine_schema(&schema);
        assert_eq!(engine.field(0).name(), "at");
        assert_eq!(
            engine.field(0).data_type(),
            &DataType::Timestamp(TimeUnit::Millisecond, None)
        );
        let batch = RecordBatch::try_new(
            Arc::new(schema),
            vec![Arc::new(Date64Array::from(vec![Some(86_400_000), None]))],
        )
        .expect("batch");
        let out = to_engine_batch(&batch, &engine).expect("convert");
        let ts = out
            .column(0)
            .as_any()
            .downcast_ref::<TimestampMillisecondArray>()
            .expect("ts");
        assert_eq!(ts.value(0), 86_400_000);
        assert!(ts.is_null(1));
    }

    #[test]
    fn unsupported_columns_are_named() {
        let schema = Schema::new(vec![Field::new(
            "span",
            DataType::Interval(IntervalUnit::DayTime),
            true,
        )]);
        let err = to_wire_schema("public.t", &schema)
            .expect_err("interval")
            .to_string();
        assert!(
            err.contains("column span of public.t") && err.contains("Interval"),
            "{err}"
        );
    }
}
