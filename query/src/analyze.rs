//! `ANALYZE`: column statistics for the planner, computed by one scan of the table and kept in
//! the catalog the Glue way (`UpdateColumnStatisticsForTable`, or the embedded catalog's same
//! model). Per column: NULLs, an approximate distinct count (HyperLogLog, as Athena's
//! `approx_distinct`), min / max of numbers and dates, lengths of strings and binaries. The table
//! also gets its row count (`recordCount`) and average row size (`averageRecordSize`), and
//! `quarry.analyzedAt`, which tells readers to look the statistics up.
//!
//! Scans then give the planner these as estimates wherever the files give nothing: CSV and JSON
//! tables get rows, value ranges and null counts, and every table gets distinct counts.

use std::sync::Arc;

use chrono::{NaiveDate, Utc};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef};
use datafusion::common::ScalarValue;
use datafusion::common::stats::{ColumnStatistics as PlanColumn, Precision};
use quarry_catalog::{
    Catalog, CatalogWrite, ColumnStatistics, DecimalValue, StatisticsData, Table, TableWrite, keys,
};

use crate::error::Error;
use crate::statement::{TableName, quoted};

type Result<T, E = Error> = std::result::Result<T, E>;

/// What Glue keeps for a column, by its catalog type.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Boolean,
    Date,
    Decimal,
    Double,
    Long,
    String,
    Binary,
}

fn kind_of(data_type: &str) -> Option<Kind> {
    let t = data_type.trim().to_ascii_lowercase();
    let base = t.split(['(', '<']).next().unwrap_or_default().trim();
    Some(match base {
        "boolean" => Kind::Boolean,
        "date" => Kind::Date,
        "decimal" => Kind::Decimal,
        "float" | "double" | "real" => Kind::Double,
        "tinyint" | "smallint" | "int" | "integer" | "bigint" => Kind::Long,
        "string" | "varchar" | "char" => Kind::String,
        "binary" | "varbinary" => Kind::Binary,
        _ => return None,
    })
}

/// One column `ANALYZE` computes.
#[derive(Debug, Clone)]
struct Target {
    name: String,
    data_type: String,
    kind: Kind,
}

/// A table to analyze: the query that computes its statistics, and what to do with the answer.
#[derive(Debug)]
pub(crate) struct Analysis {
    table: Table,
    columns: Vec<Target>,
}

/// The table `name` and its columns to analyze (all that Glue keeps statistics for when
/// `columns` is `None`), and the one aggregate query that computes them.
pub(crate) async fn plan(
    catalog: &Arc<dyn Catalog>,
    name: &TableName,
    columns: Option<Vec<String>>,
    default_db: Option<&str>,
) -> Result<(String, Analysis)> {
    let table = crate::ddl::existing_table(catalog, name, default_db).await?;
    if table.view.is_some() {
        return Err(Error::user(format!(
            "{} is a view: ANALYZE the tables it reads",
            table.qualified_name()
        )));
    }
    let all = table
        .storage
        .columns
        .iter()
        .chain(&table.partition_keys)
        .collect::<Vec<_>>();
    let targets = match columns {
        None => all
            .iter()
            .filter_map(|c| {
                kind_of(&c.data_type).map(|kind| Target {
                    name: c.name.clone(),
                    data_type: c.data_type.clone(),
                    kind,
                })
            })
            .collect::<Vec<_>>(),
        Some(named) => {
            let mut targets = Vec::new();
            for n in named {
                let Some(c) = all.iter().find(|c| c.name.eq_ignore_ascii_case(&n)) else {
                    return Err(Error::user(format!(
                        "table {} has no column {n}; DESCRIBE {} lists them",
                        table.qualified_name(),
                        table.qualified_name()
                    )));
                };
                let Some(kind) = kind_of(&c.data_type) else {
                    return Err(Error::user(format!(
                        "column {} is {}: statistics are kept for boolean, numeric, decimal, \
                         date, string and binary columns (as in Glue)",
                        c.name, c.data_type
                    )));
                };
                targets.push(Target {
                    name: c.name.clone(),
                    data_type: c.data_type.clone(),
                    kind,
                });
            }
            targets
        }
    };
    let mut select = vec!["count(*)".to_string()];
    for t in &targets {
        let c = quoted(&t.name);
        select.push(format!("count({c})"));
        match t.kind {
            Kind::Boolean => {
                select.push(format!("sum(CASE WHEN {c} THEN 1 ELSE 0 END)"));
            }
            Kind::Date | Kind::Decimal | Kind::Double | Kind::Long => {
                // DataFusion's HyperLogLog takes integers, dates and strings.
                if matches!(t.kind, Kind::Decimal | Kind::Double) {
                    select.push(format!("approx_distinct(CAST({c} AS VARCHAR))"));
                } else {
                    select.push(format!("approx_distinct({c})"));
                }
                select.push(format!("min({c})"));
                select.push(format!("max({c})"));
            }
            Kind::String => {
                select.push(format!("approx_distinct({c})"));
                select.push(format!("max(character_length({c}))"));
                select.push(format!("avg(CAST(character_length({c}) AS DOUBLE))"));
            }
            Kind::Binary => {
                select.push(format!("max(octet_length({c}))"));
                select.push(format!("avg(CAST(octet_length({c}) AS DOUBLE))"));
            }
        }
    }
    let sql = format!(
        "SELECT {} FROM {}.{}",
        select.join(", "),
        quoted(&table.database),
        quoted(&table.name)
    );
    Ok((
        sql,
        Analysis {
            table,
            columns: targets,
        },
    ))
}

/// Reads the answer's values in order.
struct Values<'a> {
    batch: &'a RecordBatch,
    next: usize,
}

impl Values<'_> {
    fn scalar(&mut self) -> Result<ScalarValue> {
        let i = self.next;
        self.next += 1;
        let column =
            self.batch.columns().get(i).ok_or_else(|| {
                Error::user("ANALYZE's query returned fewer values than it asked")
            })?;
        Ok(ScalarValue::try_from_array(column.as_ref(), 0)?)
    }

    fn count(&mut self) -> Result<u64> {
        Ok(match self.scalar()?.cast_to(&DataType::UInt64)? {
            ScalarValue::UInt64(Some(n)) => n,
            _ => 0,
        })
    }

    fn float(&mut self) -> Result<Option<f64>> {
        Ok(match self.scalar()?.cast_to(&DataType::Float64)? {
            ScalarValue::Float64(v) => v,
            _ => None,
        })
    }

    fn long(&mut self) -> Result<Option<i64>> {
        Ok(match self.scalar()?.cast_to(&DataType::Int64)? {
            ScalarValue::Int64(v) => v,
            _ => None,
        })
    }

    fn date(&mut self) -> Result<Option<NaiveDate>> {
        Ok(match self.scalar()?.cast_to(&DataType::Date32)? {
            ScalarValue::Date32(Some(days)) => NaiveDate::from_epoch_days(days),
            _ => None,
        })
    }

    fn decimal(&mut self) -> Result<Option<DecimalValue>> {
        Ok(match self.scalar()? {
            ScalarValue::Decimal128(Some(v), _, s) => Some(DecimalValue {
                unscaled: v,
                scale: i32::from(s),
            }),
            ScalarValue::Decimal64(Some(v), _, s) => Some(DecimalValue {
                unscaled: i128::from(v),
                scale: i32::from(s),
            }),
            ScalarValue::Decimal32(Some(v), _, s) => Some(DecimalValue {
                unscaled: i128::from(v),
                scale: i32::from(s),
            }),
            _ => None,
        })
    }
}

/// Keep the statistics in `batches` (the answer of [`plan`]'s query, which read `bytes` of
/// files) in the catalog, and describe them, one row per column.
pub(crate) async fn store(
    catalog: &Arc<dyn Catalog>,
    analysis: Analysis,
    batches: &[RecordBatch],
    bytes: u64,
) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let batch = batches
        .iter()
        .find(|b| b.num_rows() > 0)
        .ok_or_else(|| Error::user("ANALYZE's query returned no row"))?;
    let mut values = Values { batch, next: 0 };
    let rows = values.count()?;
    let now = Utc::now();
    let mut statistics = Vec::new();
    for t in &analysis.columns {
        let nulls = rows.saturating_sub(values.count()?);
        let data = match t.kind {
            Kind::Boolean => {
                let trues = values.count()?;
                StatisticsData::Boolean {
                    nulls,
                    trues,
                    falses: rows - nulls - trues.min(rows - nulls),
                }
            }
            Kind::Date => StatisticsData::Date {
                nulls,
                distinct: values.count()?,
                min: values.date()?,
                max: values.date()?,
            },
            Kind::Decimal => StatisticsData::Decimal {
                nulls,
                distinct: values.count()?,
                min: values.decimal()?,
                max: values.decimal()?,
            },
            Kind::Double => StatisticsData::Double {
                nulls,
                distinct: values.count()?,
                min: values.float()?,
                max: values.float()?,
            },
            Kind::Long => StatisticsData::Long {
                nulls,
                distinct: values.count()?,
                min: values.long()?,
                max: values.long()?,
            },
            Kind::String => StatisticsData::String {
                nulls,
                distinct: values.count()?,
                max_length: values.count()?,
                average_length: values.float()?.unwrap_or(0.0),
            },
            Kind::Binary => StatisticsData::Binary {
                nulls,
                max_length: values.count()?,
                average_length: values.float()?.unwrap_or(0.0),
            },
        };
        statistics.push(ColumnStatistics {
            column: t.name.clone(),
            data_type: t.data_type.clone(),
            analyzed_time: now,
            data,
        });
    }
    let table = analysis.table;
    catalog
        .update_column_statistics(&table.database, &table.name, &statistics)
        .await?;
    // Then the marker that readers look for: statistics without it are not read.
    let mut updated = table.clone();
    updated
        .parameters
        .insert(keys::RECORD_COUNT.into(), rows.to_string());
    if let Some(size) = bytes.checked_div(rows) {
        updated
            .parameters
            .insert(keys::AVERAGE_RECORD_SIZE.into(), size.to_string());
    }
    updated
        .parameters
        .insert(keys::ANALYZED.into(), now.to_rfc3339());
    updated.update_time = now;
    catalog
        .commit(CatalogWrite {
            tables: vec![TableWrite {
                expected_version: Some(table.version),
                table: updated,
            }],
            ..Default::default()
        })
        .await
        .map_err(|e| match e {
            quarry_catalog::Error::Conflict { .. } => Error::user(format!(
                "table {} changed while it was analyzed; run ANALYZE again",
                table.qualified_name()
            )),
            e => e.into(),
        })?;
    Ok(describe(rows, &statistics))
}

/// One row per column: its statistics as text.
fn describe(rows: u64, statistics: &[ColumnStatistics]) -> (SchemaRef, Vec<RecordBatch>) {
    let text = |v: Option<String>| v.unwrap_or_default();
    let mut cells: [Vec<String>; 9] = Default::default();
    for s in statistics {
        let (min, max, max_length, avg_length) = match &s.data {
            StatisticsData::Boolean { trues, falses, .. } => (
                Some(format!("{falses} false")),
                Some(format!("{trues} true")),
                None,
                None,
            ),
            StatisticsData::Date { min, max, .. } => (
                min.map(|d| d.to_string()),
                max.map(|d| d.to_string()),
                None,
                None,
            ),
            StatisticsData::Decimal { min, max, .. } => (
                min.as_ref().map(|d| d.to_string()),
                max.as_ref().map(|d| d.to_string()),
                None,
                None,
            ),
            StatisticsData::Double { min, max, .. } => (
                min.map(|v| v.to_string()),
                max.map(|v| v.to_string()),
                None,
                None,
            ),
            StatisticsData::Long { min, max, .. } => (
                min.map(|v| v.to_string()),
                max.map(|v| v.to_string()),
                None,
                None,
            ),
            StatisticsData::String {
                max_length,
                average_length,
                ..
            }
            | StatisticsData::Binary {
                max_length,
                average_length,
                ..
            } => (
                None,
                None,
                Some(max_length.to_string()),
                Some(format!("{average_length:.1}")),
            ),
        };
        let row = [
            s.column.clone(),
            s.data_type.clone(),
            rows.to_string(),
            s.data.nulls().to_string(),
            text(s.data.distinct().map(|d| d.to_string())),
            text(min),
            text(max),
            text(max_length),
            text(avg_length),
        ];
        for (cell, value) in cells.iter_mut().zip(row) {
            cell.push(value);
        }
    }
    let names = [
        "column_name",
        "data_type",
        "rows",
        "nulls",
        "distinct_values",
        "min",
        "max",
        "max_length",
        "avg_length",
    ];
    let columns: Vec<(&str, Vec<String>)> = names.into_iter().zip(cells).collect();
    crate::ddl::string_rows(&columns)
}

/// The planner's statistics for `schema`'s columns from what `ANALYZE` kept (`None` where it
/// kept nothing, or the column's type has changed since): estimates, as the table may have
/// changed since.
pub(crate) fn planner_columns(
    table: &Table,
    schema: &Schema,
    kept: &[ColumnStatistics],
) -> Vec<Option<PlanColumn>> {
    let declared = |name: &str| {
        table
            .storage
            .columns
            .iter()
            .chain(&table.partition_keys)
            .find(|c| c.name == name)
            .map(|c| c.data_type.as_str())
    };
    schema
        .fields()
        .iter()
        .map(|field| {
            let s = kept.iter().find(|s| s.column == *field.name())?;
            if !declared(field.name()).is_some_and(|t| t.eq_ignore_ascii_case(&s.data_type)) {
                return None;
            }
            let value =
                |v: Option<ScalarValue>| match v.and_then(|v| v.cast_to(field.data_type()).ok()) {
                    Some(v) => Precision::Inexact(v),
                    None => Precision::Absent,
                };
            let (min, max) = match &s.data {
                StatisticsData::Long { min, max, .. } => (
                    value(min.map(|v| ScalarValue::Int64(Some(v)))),
                    value(max.map(|v| ScalarValue::Int64(Some(v)))),
                ),
                StatisticsData::Double { min, max, .. } => (
                    value(min.map(|v| ScalarValue::Float64(Some(v)))),
                    value(max.map(|v| ScalarValue::Float64(Some(v)))),
                ),
                StatisticsData::Date { min, max, .. } => {
                    let day = |d: &NaiveDate| ScalarValue::Date32(Some(d.to_epoch_days()));
                    (value(min.as_ref().map(day)), value(max.as_ref().map(day)))
                }
                StatisticsData::Decimal { min, max, .. } => match field.data_type() {
                    DataType::Decimal128(p, s) => {
                        let at = |d: &DecimalValue| {
                            (d.scale == i32::from(*s))
                                .then(|| ScalarValue::Decimal128(Some(d.unscaled), *p, *s))
                        };
                        (
                            value(min.as_ref().and_then(at)),
                            value(max.as_ref().and_then(at)),
                        )
                    }
                    _ => (Precision::Absent, Precision::Absent),
                },
                _ => (Precision::Absent, Precision::Absent),
            };
            Some(PlanColumn {
                null_count: Precision::Inexact(s.data.nulls() as usize),
                max_value: max,
                min_value: min,
                sum_value: Precision::Absent,
                distinct_count: s
                    .data
                    .distinct()
                    .map_or(Precision::Absent, |d| Precision::Inexact(d as usize)),
                byte_size: Precision::Absent,
            })
        })
        .collect()
}

/// Fill what `column` lacks from `kept` (what `ANALYZE` kept for the same column).
pub(crate) fn fill(column: &mut PlanColumn, kept: &PlanColumn) {
    if column.null_count == Precision::Absent {
        column.null_count = kept.null_count;
    }
    if column.min_value == Precision::Absent {
        column.min_value = kept.min_value.clone();
    }
    if column.max_value == Precision::Absent {
        column.max_value = kept.max_value.clone();
    }
    if column.distinct_count == Precision::Absent {
        column.distinct_count = kept.distinct_count;
    }
}
