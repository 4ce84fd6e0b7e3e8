//! `system.query_history` and `system.job_runs`: the query history and the jobs' runs as tables.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{
    ArrayRef, Float64Array, RecordBatch, StringArray, TimestampMicrosecondArray, UInt64Array,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::catalog::{SchemaProvider, TableProvider};
use datafusion::common::{DataFusionError, Result};
use datafusion::datasource::MemTable;
use quarry_catalog::SqliteCatalog;

/// How many recent queries `system.query_history` exposes (and runs `system.job_runs`).
pub const HISTORY_ROWS: usize = 10_000;

const TABLES: [&str; 2] = ["job_runs", "query_history"];

#[derive(Debug)]
pub struct SystemSchema {
    history: Arc<SqliteCatalog>,
}

impl SystemSchema {
    pub fn new(history: Arc<SqliteCatalog>) -> Self {
        Self { history }
    }
}

fn micros(t: Option<chrono::DateTime<chrono::Utc>>) -> Option<i64> {
    t.map(|t| t.timestamp_micros())
}

#[async_trait]
impl SchemaProvider for SystemSchema {
    fn table_names(&self) -> Vec<String> {
        TABLES.iter().map(|t| t.to_string()).collect()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        match name {
            "query_history" => {}
            "job_runs" => return self.job_runs().map(Some),
            _ => return Ok(None),
        }
        let rows = self
            .history
            .query_history(HISTORY_ROWS)
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let ts = || DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
        let schema = Arc::new(Schema::new(vec![
            Field::new("query_id", DataType::Utf8, false),
            Field::new("sql", DataType::Utf8, false),
            Field::new("database", DataType::Utf8, true),
            Field::new("state", DataType::Utf8, false),
            Field::new("submitted_at", ts(), false),
            Field::new("started_at", ts(), true),
            Field::new("ended_at", ts(), true),
            Field::new("planning_ms", DataType::UInt64, false),
            Field::new("execution_ms", DataType::UInt64, false),
            Field::new("bytes_scanned", DataType::UInt64, false),
            Field::new("billed_bytes", DataType::UInt64, false),
            Field::new("cost_usd", DataType::Float64, false),
            Field::new("rows", DataType::UInt64, false),
            Field::new("error", DataType::Utf8, true),
            Field::new("error_category", DataType::Utf8, true),
            Field::new("statement_type", DataType::Utf8, true),
            Field::new("files_written", DataType::UInt64, false),
            Field::new("bytes_written", DataType::UInt64, false),
        ]));
        let s = |f: fn(&quarry_catalog::QueryRecord) -> Option<String>| -> ArrayRef {
            Arc::new(StringArray::from(rows.iter().map(f).collect::<Vec<_>>()))
        };
        let t = |f: fn(&quarry_catalog::QueryRecord) -> Option<i64>| -> ArrayRef {
            Arc::new(
                TimestampMicrosecondArray::from(rows.iter().map(f).collect::<Vec<_>>())
                    .with_timezone("UTC"),
            )
        };
        let n = |f: fn(&quarry_catalog::QueryRecord) -> u64| -> ArrayRef {
            Arc::new(UInt64Array::from(rows.iter().map(f).collect::<Vec<_>>()))
        };
        let columns: Vec<ArrayRef> = vec![
            s(|r| Some(r.query_id.clone())),
            s(|r| Some(r.sql.clone())),
            s(|r| r.database.clone()),
            s(|r| Some(r.state.as_str().to_string())),
            t(|r| Some(r.submitted_at.timestamp_micros())),
            t(|r| micros(r.started_at)),
            t(|r| micros(r.ended_at)),
            n(|r| r.planning_ms),
            n(|r| r.execution_ms),
            n(|r| r.bytes_scanned),
            n(|r| r.billed_bytes),
            Arc::new(Float64Array::from(
                rows.iter().map(|r| r.cost_usd).collect::<Vec<_>>(),
            )),
            n(|r| r.rows),
            s(|r| r.error.clone()),
            s(|r| r.error_category.clone()),
            s(|r| r.statement_type.clone()),
            n(|r| r.files_written),
            n(|r| r.bytes_written),
        ];
        let batch = RecordBatch::try_new(Arc::clone(&schema), columns)?;
        Ok(Some(Arc::new(MemTable::try_new(
            schema,
            vec![vec![batch]],
        )?)))
    }

    fn table_exist(&self, name: &str) -> bool {
        TABLES.contains(&name)
    }
}

impl SystemSchema {
    fn job_runs(&self) -> Result<Arc<dyn TableProvider>> {
        let rows = self
            .history
            .job_runs(None, HISTORY_ROWS)
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let ts = || DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
        let schema = Arc::new(Schema::new(vec![
            Field::new("run_id", DataType::Utf8, false),
            Field::new("job", DataType::Utf8, false),
            Field::new("state", DataType::Utf8, false),
            Field::new("trigger", DataType::Utf8, false),
            Field::new("attempt", DataType::UInt64, false),
            Field::new("owner", DataType::Utf8, false),
            Field::new("started_at", ts(), false),
            Field::new("ended_at", ts(), true),
            Field::new("rows", DataType::UInt64, false),
            Field::new("bytes_scanned", DataType::UInt64, false),
            Field::new("bytes_written", DataType::UInt64, false),
            Field::new("files_written", DataType::UInt64, false),
            Field::new("cost_usd", DataType::Float64, false),
            Field::new("objects_processed", DataType::UInt64, false),
            Field::new("error", DataType::Utf8, true),
        ]));
        type Run = quarry_catalog::JobRun;
        let s = |f: fn(&Run) -> Option<String>| -> ArrayRef {
            Arc::new(StringArray::from(rows.iter().map(f).collect::<Vec<_>>()))
        };
        let t = |f: fn(&Run) -> Option<i64>| -> ArrayRef {
            Arc::new(
                TimestampMicrosecondArray::from(rows.iter().map(f).collect::<Vec<_>>())
                    .with_timezone("UTC"),
            )
        };
        let n = |f: fn(&Run) -> u64| -> ArrayRef {
            Arc::new(UInt64Array::from(rows.iter().map(f).collect::<Vec<_>>()))
        };
        let columns: Vec<ArrayRef> = vec![
            s(|r| Some(r.run_id.clone())),
            s(|r| Some(r.job.clone())),
            s(|r| Some(r.state.as_str().to_string())),
            s(|r| Some(r.trigger.clone())),
            n(|r| u64::from(r.attempt)),
            s(|r| Some(r.owner.clone())),
            t(|r| Some(r.started_at.timestamp_micros())),
            t(|r| micros(r.ended_at)),
            n(|r| r.rows),
            n(|r| r.bytes_scanned),
            n(|r| r.bytes_written),
            n(|r| r.files_written),
            Arc::new(Float64Array::from(
                rows.iter().map(|r| r.cost_usd).collect::<Vec<_>>(),
            )),
            n(|r| r.objects_processed),
            s(|r| r.error.clone()),
        ];
        let batch = RecordBatch::try_new(Arc::clone(&schema), columns)?;
        Ok(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))
    }
}
