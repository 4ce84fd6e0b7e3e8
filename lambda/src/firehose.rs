//! The Kinesis Data Firehose data-transformation contract: records with `recordId` and base64
//! `data` in; every record out with the same `recordId`, a `result` (`Ok`, `Dropped`,
//! `ProcessingFailed`) and base64 `data`.
//!
//! Each record is a JSON document. A configured SQL `SELECT` over the table `records` (one row
//! per record; nested objects are structs, so `"user"['id']` reaches into them) turns it into
//! zero or more output lines, JSON lines or CSV:
//! a record the `WHERE` clause filters out is `Dropped`, one that is not a JSON object or that
//! the SQL cannot evaluate is `ProcessingFailed` with its data unchanged, as Firehose expects.

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_lambda_events::event::firehose::{
    KinesisFirehoseEvent, KinesisFirehoseResponse, KinesisFirehoseResponseRecord,
};
use datafusion::arrow::array::{Array, RecordBatch, UInt64Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::json::reader::{ReaderBuilder, infer_json_schema_from_iterator};
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::{Expr, Ident, SelectItem, SetExpr, Statement};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::FunctionError;

/// The column that carries each row's record number through the SQL.
const RECORD: &str = "__quarry_record";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FirehoseConfig {
    /// A `SELECT ... FROM records [WHERE ...]`, one output line per result row.
    pub sql: String,
    #[serde(default)]
    pub output: LineFormat,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LineFormat {
    /// One JSON object per line.
    #[default]
    Json,
    /// One CSV line (no header) per row.
    Csv,
}

/// The configured SQL with the record number added as its first output column. Only a plain
/// `SELECT` (no `GROUP BY`, `UNION`, ...) keeps one output row tied to one record.
fn rewrite(sql: &str) -> Result<String, FunctionError> {
    let bad = |why: &str| {
        FunctionError::Config(format!(
            "QUARRY_FIREHOSE sql must be one SELECT ... FROM records [WHERE ...]: {why}"
        ))
    };
    let mut statements =
        Parser::parse_sql(&GenericDialect {}, sql).map_err(|e| bad(&e.to_string()))?;
    if statements.len() != 1 {
        return Err(bad("found several statements"));
    }
    let Statement::Query(query) = &mut statements[0] else {
        return Err(bad("not a query"));
    };
    let SetExpr::Select(select) = query.body.as_mut() else {
        return Err(bad("UNION / VALUES are not per-record"));
    };
    if !matches!(
        &select.group_by,
        datafusion::sql::sqlparser::ast::GroupByExpr::Expressions(e, _) if e.is_empty()
    ) || select.having.is_some()
    {
        return Err(bad("GROUP BY / HAVING combine records"));
    }
    select.projection.insert(
        0,
        SelectItem::UnnamedExpr(Expr::Identifier(Ident::new(RECORD))),
    );
    Ok(statements[0].to_string())
}

fn reply(id: &Option<String>, result: &str, data: Vec<u8>) -> KinesisFirehoseResponseRecord {
    let mut r = KinesisFirehoseResponseRecord::default();
    r.record_id = id.clone();
    r.result = Some(result.to_string());
    *r.data = data;
    r
}

/// Lines for `batch` (without its first column), one per row.
fn lines(batch: &RecordBatch, format: LineFormat) -> Result<Vec<Vec<u8>>, String> {
    let data = batch
        .project(&(1..batch.num_columns()).collect::<Vec<_>>())
        .map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(data.num_rows());
    for row in 0..data.num_rows() {
        let one = data.slice(row, 1);
        let mut buf = Vec::new();
        match format {
            LineFormat::Json => {
                let mut w = datafusion::arrow::json::LineDelimitedWriter::new(&mut buf);
                w.write(&one).map_err(|e| e.to_string())?;
                w.finish().map_err(|e| e.to_string())?;
            }
            LineFormat::Csv => {
                let mut w = datafusion::arrow::csv::WriterBuilder::new()
                    .with_header(false)
                    .build(&mut buf);
                w.write(&one).map_err(|e| e.to_string())?;
            }
        }
        out.push(buf);
    }
    Ok(out)
}

/// Evaluate the SQL over `docs` (record number, JSON object); lines per record number.
async fn evaluate(
    sql: &str,
    docs: &[(usize, Value)],
    format: LineFormat,
) -> Result<BTreeMap<usize, Vec<u8>>, String> {
    let schema = infer_json_schema_from_iterator(docs.iter().map(|(_, v)| Ok(v.clone())))
        .map_err(|e| e.to_string())?;
    let schema = Arc::new(schema);
    let mut decoder = ReaderBuilder::new(Arc::clone(&schema))
        .build_decoder()
        .map_err(|e| e.to_string())?;
    let values: Vec<&Value> = docs.iter().map(|(_, v)| v).collect();
    decoder.serialize(&values).map_err(|e| e.to_string())?;
    let batch = decoder
        .flush()
        .map_err(|e| e.to_string())?
        .unwrap_or_else(|| RecordBatch::new_empty(Arc::clone(&schema)));
    let ctx = SessionContext::new();
    let table = MemTable::try_new(schema, vec![vec![batch]]).map_err(|e| e.to_string())?;
    ctx.register_table("records", Arc::new(table))
        .map_err(|e| e.to_string())?;
    let batches = ctx
        .sql(sql)
        .await
        .map_err(|e| e.to_string())?
        .collect()
        .await
        .map_err(|e| e.to_string())?;
    let mut out: BTreeMap<usize, Vec<u8>> = BTreeMap::new();
    for b in &batches {
        let ids = cast(b.column(0), &DataType::UInt64).map_err(|e| e.to_string())?;
        let ids = ids
            .as_any()
            .downcast_ref::<UInt64Array>()
            .ok_or("record numbers are not integers")?
            .clone();
        for (row, line) in lines(b, format)?.into_iter().enumerate() {
            if ids.is_null(row) {
                continue;
            }
            out.entry(ids.value(row) as usize).or_default().extend(line);
        }
    }
    Ok(out)
}

/// Apply `config` to a Firehose event.
pub async fn transform(
    config: &FirehoseConfig,
    event: KinesisFirehoseEvent,
) -> Result<KinesisFirehoseResponse, FunctionError> {
    let sql = rewrite(&config.sql)?;
    let mut docs = Vec::new();
    let mut failed = vec![false; event.records.len()];
    for (i, r) in event.records.iter().enumerate() {
        match serde_json::from_slice::<Value>(&r.data.0) {
            Ok(Value::Object(mut o)) => {
                o.insert(RECORD.into(), Value::from(i as u64));
                docs.push((i, Value::Object(o)));
            }
            _ => failed[i] = true,
        }
    }
    // All records together; when one record spoils the batch (a type clash), each on its own
    // so only that record fails.
    let mut lines: BTreeMap<usize, Vec<u8>> = BTreeMap::new();
    if !docs.is_empty() {
        match evaluate(&sql, &docs, config.output).await {
            Ok(l) => lines = l,
            Err(batch_error) => {
                let mut any_ok = false;
                for d in &docs {
                    match evaluate(&sql, std::slice::from_ref(d), config.output).await {
                        Ok(l) => {
                            any_ok = true;
                            lines.extend(l);
                        }
                        Err(_) => failed[d.0] = true,
                    }
                }
                // The SQL itself is wrong: that is configuration, not data.
                if !any_ok && docs.len() > 1 {
                    return Err(FunctionError::Config(format!(
                        "QUARRY_FIREHOSE sql fails on every record: {batch_error}"
                    )));
                }
            }
        }
    }
    let mut response = KinesisFirehoseResponse::default();
    for (i, r) in event.records.iter().enumerate() {
        response.records.push(if failed[i] {
            reply(&r.record_id, "ProcessingFailed", r.data.0.clone())
        } else {
            match lines.remove(&i) {
                Some(data) => reply(&r.record_id, "Ok", data),
                None => reply(&r.record_id, "Dropped", Vec::new()),
            }
        });
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_number_is_added_and_aggregates_are_refused() {
        let sql = rewrite("SELECT \"user\"['id'] AS uid FROM records WHERE kind = 'click'")
            .expect("rewrite");
        assert!(sql.starts_with("SELECT __quarry_record, "), "{sql}");
        assert!(rewrite("SELECT count(*) FROM records GROUP BY kind").is_err());
        assert!(rewrite("SELECT 1; SELECT 2").is_err());
        assert!(rewrite("DELETE FROM records").is_err());
    }
}
