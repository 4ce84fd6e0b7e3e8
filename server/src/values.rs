//! Arrow results as Athena shows them: Trino type names with precision and scale
//! (`ColumnInfo`), and each value as the text `GetQueryResults` returns (`VarCharValue`).

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use serde::{Deserialize, Serialize};

/// One column of `ResultSetMetadata.ColumnInfo`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ColumnInfo {
    pub catalog_name: String,
    pub schema_name: String,
    pub table_name: String,
    pub name: String,
    pub label: String,
    #[serde(rename = "Type")]
    pub data_type: String,
    pub precision: i64,
    pub scale: i64,
    pub nullable: String,
    pub case_sensitive: bool,
}

impl ColumnInfo {
    pub fn new(name: &str, data_type: &DataType) -> Self {
        let (t, precision, scale) = athena_type(data_type);
        Self {
            catalog_name: "hive".into(),
            schema_name: String::new(),
            table_name: String::new(),
            name: name.into(),
            label: name.into(),
            case_sensitive: t == "varchar" || t == "char",
            data_type: t,
            precision,
            scale,
            nullable: "UNKNOWN".into(),
        }
    }
}

/// Athena's (Trino's) name for an Arrow type, with its precision and scale as Athena reports
/// them (varchar 2147483647, integer 10, bigint 19, decimal p and s).
pub fn athena_type(t: &DataType) -> (String, i64, i64) {
    let (name, p, s): (&str, i64, i64) = match t {
        DataType::Boolean => ("boolean", 0, 0),
        DataType::Int8 => ("tinyint", 3, 0),
        DataType::Int16 | DataType::UInt8 => ("smallint", 5, 0),
        DataType::Int32 | DataType::UInt16 => ("integer", 10, 0),
        DataType::Int64 | DataType::UInt32 => ("bigint", 19, 0),
        DataType::UInt64 => ("decimal", 20, 0),
        DataType::Float16 | DataType::Float32 => ("real", 17, 0),
        DataType::Float64 => ("double", 17, 0),
        DataType::Decimal32(p, s)
        | DataType::Decimal64(p, s)
        | DataType::Decimal128(p, s)
        | DataType::Decimal256(p, s) => {
            return ("decimal".into(), i64::from(*p), i64::from(*s));
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => ("varchar", 2_147_483_647, 0),
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => ("varbinary", 1_073_741_824, 0),
        DataType::Date32 | DataType::Date64 => ("date", 0, 0),
        DataType::Timestamp(unit, tz) => {
            let p = match unit {
                TimeUnit::Second => 0,
                TimeUnit::Millisecond => 3,
                TimeUnit::Microsecond => 6,
                TimeUnit::Nanosecond => 9,
            };
            let name = if tz.is_some() {
                "timestamp with time zone"
            } else {
                "timestamp"
            };
            (name, p, 0)
        }
        DataType::Time32(_) | DataType::Time64(_) => ("time", 3, 0),
        DataType::Interval(_) | DataType::Duration(_) => ("interval day to second", 0, 0),
        DataType::List(_)
        | DataType::LargeList(_)
        | DataType::ListView(_)
        | DataType::LargeListView(_)
        | DataType::FixedSizeList(_, _) => ("array", 0, 0),
        DataType::Map(_, _) => ("map", 0, 0),
        DataType::Struct(_) => ("row", 0, 0),
        DataType::Dictionary(_, v) => return athena_type(v),
        DataType::Null => ("unknown", 0, 0),
        _ => ("varchar", 2_147_483_647, 0),
    };
    (name.into(), p, s)
}

/// The text of `array[row]` as Athena returns it; `None` for NULL.
pub use quarry_query::format::value_text as text;

/// The columns of a result as rows of text (NULL as `None`), rows `from..to`.
pub fn rows(columns: &[ArrayRef], from: usize, to: usize) -> Vec<Vec<Option<String>>> {
    (from..to)
        .map(|r| columns.iter().map(|c| text(c.as_ref(), r)).collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{
        BinaryArray, Date32Array, Decimal128Array, Int32Array, ListArray, StringArray, StructArray,
        TimestampMillisecondArray,
    };
    use datafusion::arrow::datatypes::{Field, Int32Type};

    use super::*;

    #[test]
    fn types_and_values_read_as_athena_writes_them() {
        assert_eq!(athena_type(&DataType::Int32), ("integer".into(), 10, 0));
        assert_eq!(
            athena_type(&DataType::Decimal128(12, 2)),
            ("decimal".into(), 12, 2)
        );
        assert_eq!(athena_type(&DataType::Utf8View).0, "varchar");
        let ts = TimestampMillisecondArray::from(vec![Some(1_704_067_200_123), None]);
        assert_eq!(text(&ts, 0).as_deref(), Some("2024-01-01 00:00:00.123"));
        assert_eq!(text(&ts, 1), None);
        let d = Date32Array::from(vec![19_723]);
        assert_eq!(text(&d, 0).as_deref(), Some("2024-01-01"));
        let dec = Decimal128Array::from(vec![1234])
            .with_precision_and_scale(10, 2)
            .unwrap();
        assert_eq!(text(&dec, 0).as_deref(), Some("12.34"));
        let s = StringArray::from(vec![Some(""), None]);
        assert_eq!(text(&s, 0).as_deref(), Some(""), "empty is not NULL");
        assert_eq!(text(&s, 1), None);
        let l = ListArray::from_iter_primitive::<Int32Type, _, _>(vec![Some(vec![
            Some(1),
            None,
            Some(3),
        ])]);
        assert_eq!(text(&l, 0).as_deref(), Some("[1, null, 3]"));
        let st = StructArray::from(vec![
            (
                Arc::new(Field::new("a", DataType::Int32, true)),
                Arc::new(Int32Array::from(vec![1])) as ArrayRef,
            ),
            (
                Arc::new(Field::new("b", DataType::Utf8, true)),
                Arc::new(StringArray::from(vec!["x"])) as ArrayRef,
            ),
        ]);
        assert_eq!(text(&st, 0).as_deref(), Some("{a=1, b=x}"));
        let b = BinaryArray::from(vec![&[0u8, 1, 255][..]]);
        assert_eq!(text(&b, 0).as_deref(), Some("00 01 ff"));
    }
}
