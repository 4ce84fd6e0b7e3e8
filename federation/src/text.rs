//! Text values (Redis strings, hash fields) into Arrow builders of a column's type.

use arrow::array::{
    ArrayBuilder, BinaryBuilder, BooleanBuilder, Date32Builder, Date64Builder, Decimal128Builder,
    Float32Builder, Float64Builder, Int8Builder, Int16Builder, Int32Builder, Int64Builder,
    StringBuilder,
};
use arrow::datatypes::DataType;

fn downcast<T: 'static>(builder: &mut dyn ArrayBuilder) -> Result<&mut T, String> {
    builder
        .as_any_mut()
        .downcast_mut::<T>()
        .ok_or_else(|| "internal: builder of another type".to_owned())
}

/// Appends `text` (`None`: NULL) as a value of `data_type`; an error says why it is not one.
pub fn append(
    builder: &mut dyn ArrayBuilder,
    data_type: &DataType,
    text: Option<&str>,
) -> Result<(), String> {
    macro_rules! parsed {
        ($b:ty, $t:ty) => {{
            let value = match text {
                None => None,
                Some(t) => Some(
                    t.trim()
                        .parse::<$t>()
                        .map_err(|_| format!("{t:?} is not a {data_type}"))?,
                ),
            };
            downcast::<$b>(builder)?.append_option(value);
        }};
    }
    match data_type {
        DataType::Utf8 => downcast::<StringBuilder>(builder)?.append_option(text),
        DataType::Binary => {
            downcast::<BinaryBuilder>(builder)?.append_option(text.map(str::as_bytes))
        }
        DataType::Int8 => parsed!(Int8Builder, i8),
        DataType::Int16 => parsed!(Int16Builder, i16),
        DataType::Int32 => parsed!(Int32Builder, i32),
        DataType::Int64 => parsed!(Int64Builder, i64),
        DataType::Float32 => parsed!(Float32Builder, f32),
        DataType::Float64 => parsed!(Float64Builder, f64),
        DataType::Boolean => {
            let value = match text.map(|t| t.trim().to_ascii_lowercase()) {
                None => None,
                Some(t) if t == "true" || t == "1" => Some(true),
                Some(t) if t == "false" || t == "0" => Some(false),
                Some(t) => return Err(format!("{t:?} is not a boolean")),
            };
            downcast::<BooleanBuilder>(builder)?.append_option(value);
        }
        DataType::Decimal128(_, s) => {
            let value = match text {
                None => None,
                Some(t) => Some(
                    crate::decimal::parse(t, *s)
                        .ok_or_else(|| format!("{t:?} is not a {data_type}"))?,
                ),
            };
            downcast::<Decimal128Builder>(builder)?.append_option(value);
        }
        DataType::Date32 => {
            let value = match text {
                None => None,
                Some(t) => {
                    let d = chrono::NaiveDate::parse_from_str(t.trim(), "%Y-%m-%d")
                        .map_err(|_| format!("{t:?} is not a date (YYYY-MM-DD)"))?;
                    Some(
                        d.signed_duration_since(chrono::NaiveDate::default())
                            .num_days() as i32,
                    )
                }
            };
            downcast::<Date32Builder>(builder)?.append_option(value);
        }
        DataType::Date64 => {
            let value = match text {
                None => None,
                Some(t) => {
                    let t = t.trim();
                    let millis = chrono::DateTime::parse_from_rfc3339(t)
                        .map(|v| v.timestamp_millis())
                        .or_else(|_| {
                            chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S%.f")
                                .map(|v| v.and_utc().timestamp_millis())
                        })
                        .map_err(|_| format!("{t:?} is not a timestamp"))?;
                    Some(millis)
                }
            };
            downcast::<Date64Builder>(builder)?.append_option(value);
        }
        other => return Err(format!("columns of type {other} are not supported here")),
    }
    Ok(())
}
