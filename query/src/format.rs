//! Rendering results as a terminal table, CSV or JSON.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, BinaryViewArray, LargeBinaryArray, MapArray,
    RecordBatch, StringArray, StructArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::arrow::util::pretty::pretty_format_batches;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    #[default]
    Table,
    Csv,
    Json,
}

/// Render `batches` (with `schema`, so empty results still show their header).
pub fn render(
    schema: &SchemaRef,
    batches: &[RecordBatch],
    format: OutputFormat,
) -> Result<String, ArrowError> {
    match format {
        // A statement without a result (DDL, PREPARE): nothing to draw.
        OutputFormat::Table if schema.fields().is_empty() => Ok(String::new()),
        OutputFormat::Table => {
            if batches.is_empty() {
                let empty = RecordBatch::new_empty(schema.clone());
                return Ok(pretty_format_batches(&[empty])?.to_string());
            }
            Ok(pretty_format_batches(batches)?.to_string())
        }
        OutputFormat::Csv => {
            let mut out = Vec::new();
            {
                let mut w = datafusion::arrow::csv::WriterBuilder::new()
                    .with_header(true)
                    .build(&mut out);
                if batches.is_empty() {
                    w.write(&RecordBatch::new_empty(flat_schema(schema)))?;
                }
                for b in batches {
                    w.write(&flatten(b)?)?;
                }
            }
            String::from_utf8(out).map_err(|e| ArrowError::ExternalError(Box::new(e)))
        }
        OutputFormat::Json => {
            let mut out = Vec::new();
            {
                let mut w = datafusion::arrow::json::ArrayWriter::new(&mut out);
                let refs: Vec<&RecordBatch> = batches.iter().collect();
                w.write_batches(&refs)?;
                w.finish()?;
            }
            let s = String::from_utf8(out).map_err(|e| ArrowError::ExternalError(Box::new(e)))?;
            Ok(if s.is_empty() { "[]".to_string() } else { s })
        }
    }
}

fn is_nested(t: &DataType) -> bool {
    matches!(
        t,
        DataType::List(_)
            | DataType::LargeList(_)
            | DataType::FixedSizeList(..)
            | DataType::ListView(_)
            | DataType::LargeListView(_)
            | DataType::Struct(_)
            | DataType::Map(..)
    )
}

/// `schema` with nested columns as text (CSV has no nested values).
fn flat_schema(schema: &SchemaRef) -> SchemaRef {
    Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| {
                if is_nested(f.data_type()) {
                    Arc::new(Field::new(f.name(), DataType::Utf8, true))
                } else {
                    Arc::clone(f)
                }
            })
            .collect::<Vec<_>>(),
    ))
}

/// `batch` with nested columns written as Athena writes them (`[1, 2]`, `{a=1}`).
fn flatten(batch: &RecordBatch) -> Result<RecordBatch, ArrowError> {
    if !batch
        .schema()
        .fields()
        .iter()
        .any(|f| is_nested(f.data_type()))
    {
        return Ok(batch.clone());
    }
    let columns: Vec<ArrayRef> = batch
        .columns()
        .iter()
        .map(|c| {
            if is_nested(c.data_type()) {
                let text: StringArray = (0..c.len()).map(|i| value_text(c.as_ref(), i)).collect();
                Arc::new(text) as ArrayRef
            } else {
                Arc::clone(c)
            }
        })
        .collect();
    RecordBatch::try_new(flat_schema(&batch.schema()), columns)
}

/// How scalar values are written: timestamps `2024-01-31 12:00:00.000`, as Athena.
fn options() -> FormatOptions<'static> {
    FormatOptions::default()
        .with_null("")
        .with_timestamp_format(Some("%Y-%m-%d %H:%M:%S%.3f"))
        .with_timestamp_tz_format(Some("%Y-%m-%d %H:%M:%S%.3f %Z"))
        .with_date_format(Some("%Y-%m-%d"))
}

/// The text of `array[row]` as Athena returns it; `None` for NULL.
pub fn value_text(array: &dyn Array, row: usize) -> Option<String> {
    if array.is_null(row) {
        return None;
    }
    Some(value(array, row))
}

fn hex_pairs(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A non-null value; nested values as Athena writes them (`[1, 2]`, `{a=1, b=x}`).
fn value(array: &dyn Array, row: usize) -> String {
    let nested = |a: &dyn Array, i: usize| -> String {
        if a.is_null(i) {
            "null".into()
        } else {
            value(a, i)
        }
    };
    match array.data_type() {
        DataType::List(_) => {
            let l = array.as_list::<i32>().value(row);
            let items: Vec<String> = (0..l.len()).map(|i| nested(l.as_ref(), i)).collect();
            format!("[{}]", items.join(", "))
        }
        DataType::LargeList(_) => {
            let l = array.as_list::<i64>().value(row);
            let items: Vec<String> = (0..l.len()).map(|i| nested(l.as_ref(), i)).collect();
            format!("[{}]", items.join(", "))
        }
        DataType::Struct(_) => {
            let s: &StructArray = array.as_struct();
            let parts: Vec<String> = s
                .fields()
                .iter()
                .zip(s.columns())
                .map(|(f, c)| format!("{}={}", f.name(), nested(c.as_ref(), row)))
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
        DataType::Map(_, _) => {
            let m: &MapArray = array.as_map();
            let entries = m.value(row);
            let (k, v) = (entries.column(0), entries.column(1));
            let parts: Vec<String> = (0..entries.len())
                .map(|i| format!("{}={}", nested(k.as_ref(), i), nested(v.as_ref(), i)))
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
        DataType::Binary => hex_pairs(
            array
                .as_any()
                .downcast_ref::<BinaryArray>()
                .map(|b| b.value(row))
                .unwrap_or_default(),
        ),
        DataType::LargeBinary => hex_pairs(
            array
                .as_any()
                .downcast_ref::<LargeBinaryArray>()
                .map(|b| b.value(row))
                .unwrap_or_default(),
        ),
        DataType::BinaryView => hex_pairs(
            array
                .as_any()
                .downcast_ref::<BinaryViewArray>()
                .map(|b| b.value(row))
                .unwrap_or_default(),
        ),
        DataType::Boolean => {
            if array.as_boolean().value(row) {
                "true".into()
            } else {
                "false".into()
            }
        }
        _ => {
            let opts = options();
            match ArrayFormatter::try_new(array, &opts) {
                Ok(f) => f.value(row).to_string(),
                Err(_) => String::new(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int32Array, ListArray};
    use datafusion::arrow::datatypes::Int32Type;

    #[test]
    fn csv_writes_nested_values_as_athena_does() {
        let list = ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
            Some(vec![Some(1), None, Some(3)]),
            None,
        ]);
        let ids = Int32Array::from(vec![1, 2]);
        let batch = RecordBatch::try_from_iter(vec![
            ("id", Arc::new(ids) as ArrayRef),
            ("xs", Arc::new(list) as ArrayRef),
        ])
        .unwrap();
        let csv = render(&batch.schema(), &[batch], OutputFormat::Csv).unwrap();
        assert_eq!(csv, "id,xs\n1,\"[1, null, 3]\"\n2,\n");
    }
}
