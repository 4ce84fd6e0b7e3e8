//! The transform function: raw CSV / JSON objects in (S3 `ObjectCreated` notifications),
//! zstd Parquet out under a catalogued table's Hive layout, new partitions registered.
//!
//! Each object is classified exactly as the crawler would (format, compression, delimiter,
//! header, schema), then the configured SQL runs over it as the table `input`
//! (default `SELECT * FROM input`). The result goes through the lake's writer, the one CTAS and
//! INSERT use: split by the `partition_by` columns (values Hive-escaped, NULL as
//! `__HIVE_DEFAULT_PARTITION__`), staged under a hidden folder, then renamed into place as
//! `<target>/<table>/<key>=<value>/<source name>-<hash>_<n>.parquet`. The name derives from the
//! source URL and ETag, so a retried event rewrites the same files instead of duplicating rows. Finally the written partition folders are crawled into the catalog (the table is created
//! on first use), exactly like an S3-event crawl.
//!
//! Each object is read whole into memory (twice its size at most, plus the SQL's working set):
//! give the function memory for the largest raw object it will see.
//!
//! The same function also serves Kinesis Data Firehose transformation events ([`crate::firehose`]).

use std::sync::Arc;

use aws_lambda_events::event::firehose::KinesisFirehoseEvent;
use aws_lambda_events::event::s3::S3Event;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::Schema;
use object_store::memory::InMemory;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use quarry_catalog::SqliteCatalog;
use quarry_crawler::{CrawlConfig, Crawler, SkipReason, table_name};
use quarry_lake::hive::partition_path;
use quarry_lake::{FileFormat, Location, TableWriter, WriteCompression, WriteOptions};
use quarry_query::stores::split_location;
use quarry_query::{Engine, EngineConfig, ObjectStores, QueryRequest};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::{FunctionError, Resources, chain, object_url};

/// Where and how raw objects become a Parquet table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransformConfig {
    /// The folder that holds the output table's folder, e.g. `s3://bucket/curated/`.
    pub target: String,
    pub database: String,
    /// The output table; also its folder name under `target`.
    pub table: String,
    /// SQL over the raw object as `input`; default `SELECT * FROM input`.
    #[serde(default)]
    pub sql: Option<String>,
    /// Result columns that become Hive partition folders, in order.
    #[serde(default)]
    pub partition_by: Vec<String>,
    /// Only objects under these URL prefixes are transformed (default: every object).
    #[serde(default)]
    pub sources: Vec<String>,
}

impl TransformConfig {
    fn validate(&self) -> Result<(), FunctionError> {
        if table_name(&self.table) != self.table {
            return Err(FunctionError::Config(format!(
                "transform table '{}' is not a catalog name; use '{}'",
                self.table,
                table_name(&self.table)
            )));
        }
        Ok(())
    }

    fn table_url(&self) -> String {
        format!("{}/{}/", self.target.trim_end_matches('/'), self.table)
    }
}

/// One source object's outcome.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ObjectReport {
    pub source: String,
    pub rows: u64,
    pub files: Vec<WrittenFile>,
    /// Why the object was not transformed (bad data, SQL error); such objects are not retried.
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WrittenFile {
    pub url: String,
    pub rows: u64,
    pub bytes: u64,
}

/// A stable short hash (FNV-1a, 64 bit) naming output files after their source version.
fn fnv(parts: &[&str]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain([0]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

fn object_error(object: &str, reason: impl Into<String>, retryable: bool) -> FunctionError {
    FunctionError::Object {
        object: object.to_string(),
        reason: reason.into(),
        retryable,
    }
}

/// Read `url` and produce the configured SQL's result over it.
async fn evaluate(
    res: &Resources,
    config: &TransformConfig,
    url: &str,
) -> Result<(Vec<RecordBatch>, Arc<Schema>, String), FunctionError> {
    let (key, path) = split_location(url).map_err(|e| object_error(url, e.to_string(), false))?;
    let store = res
        .stores
        .get(&key)
        .map_err(|e| object_error(url, e.to_string(), false))?;
    let got = match store.get(&path).await {
        Ok(g) => g,
        Err(e @ object_store::Error::NotFound { .. }) => {
            return Err(object_error(
                url,
                format!("{e}; it was removed after the event"),
                false,
            ));
        }
        Err(e) => return Err(object_error(url, chain(&e), true)),
    };
    let version = got.meta.e_tag.clone().unwrap_or_default();
    let bytes = got
        .bytes()
        .await
        .map_err(|e| object_error(url, chain(&e), true))?;

    // The object alone, in memory, classified and read exactly as a crawled table would be.
    let name = path.filename().unwrap_or("object").to_string();
    let memory: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    memory
        .put(
            &ObjectPath::from_iter(["input", name.as_str()]),
            PutPayload::from(bytes),
        )
        .await
        .map_err(|e| object_error(url, chain(&e), false))?;
    let scratch = Arc::new(SqliteCatalog::open_in_memory()?);
    let report = Crawler::new(scratch.clone(), CrawlConfig::new("raw"))
        .crawl(&Location::new(
            Arc::clone(&memory),
            "memory:///".into(),
            ObjectPath::from("input"),
        ))
        .await?;
    if let Some(bad) = report
        .skipped
        .iter()
        .find(|s| s.reason == SkipReason::Unreadable)
    {
        return Err(object_error(url, bad.detail.clone(), false));
    }
    let stores = Arc::new(ObjectStores::new());
    stores.register("memory:///", memory);
    let engine = Engine::new(scratch, stores, EngineConfig::default());
    let sql = config
        .sql
        .clone()
        .unwrap_or_else(|| "SELECT * FROM input".into());
    let out = engine
        .run(QueryRequest::new(&sql).with_database(Some("raw".into())))
        .await;
    if !out.succeeded() {
        return Err(object_error(
            url,
            format!(
                "the transform SQL failed on it: {}",
                out.record.error.unwrap_or_default()
            ),
            false,
        ));
    }
    Ok((out.batches, Arc::new(out.schema.as_ref().clone()), version))
}

/// `batches` with the partition columns moved last, in `keys` order, as the lake writer takes
/// them.
fn keys_last(
    batches: Vec<RecordBatch>,
    schema: &Schema,
    keys: &[String],
    url: &str,
) -> Result<(Vec<RecordBatch>, Arc<Schema>), FunctionError> {
    let key_idx = keys
        .iter()
        .map(|k| {
            schema.index_of(k).map_err(|_| {
                FunctionError::Config(format!(
                    "partition column '{k}' is not in the transform SQL's result (columns: {})",
                    schema
                        .fields()
                        .iter()
                        .map(|f| f.name().as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })
        })
        .collect::<Result<Vec<usize>, _>>()?;
    let order: Vec<usize> = (0..schema.fields().len())
        .filter(|i| !key_idx.contains(i))
        .chain(key_idx.iter().copied())
        .collect();
    let projected = Arc::new(
        schema
            .project(&order)
            .map_err(|e| object_error(url, e.to_string(), false))?,
    );
    let batches = batches
        .iter()
        .map(|b| b.project(&order))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| object_error(url, e.to_string(), false))?;
    Ok((batches, projected))
}

/// Distinct for every run in this process and across processes: duplicate deliveries of one
/// event stage apart.
fn invocation_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static RUNS: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{}-{nanos}-{}",
        std::process::id(),
        RUNS.fetch_add(1, Ordering::Relaxed)
    )
}

/// A lake write error as the function reports it: store trouble is worth a retry, bad data is
/// not.
fn write_error(url: &str, e: quarry_lake::Error) -> FunctionError {
    let retryable = matches!(
        e,
        quarry_lake::Error::Object { .. } | quarry_lake::Error::Write { .. }
    );
    object_error(url, chain(&e), retryable)
}

/// Transform one object; returns what was written and the partition folders (URLs).
async fn transform_object(
    res: &Resources,
    config: &TransformConfig,
    url: &str,
) -> Result<(ObjectReport, Vec<String>), FunctionError> {
    let (batches, schema, version) = evaluate(res, config, url).await?;
    let (batches, schema) = keys_last(batches, &schema, &config.partition_by, url)?;
    let stem = url
        .rsplit('/')
        .next()
        .unwrap_or("object")
        .split('.')
        .next()
        .unwrap_or("object")
        .to_string();
    // Files are named after the source version, so a retried event rewrites the same files.
    let id = format!("{stem}-{}", fnv(&[url, &version]));
    let table_url = config.table_url();
    let (key, root) =
        split_location(&table_url).map_err(|e| FunctionError::Config(e.to_string()))?;
    let out_store = res
        .stores
        .get(&key)
        .map_err(|e| FunctionError::Config(e.to_string()))?;
    let options = WriteOptions::new(FileFormat::Parquet, WriteCompression::Zstd(3));
    let mut writer = TableWriter::try_new(
        out_store,
        format!("{key}/"),
        root,
        &schema,
        config.partition_by.clone(),
        options,
        id,
    )
    .map_err(|e| FunctionError::Config(e.to_string()))?
    .with_staging_suffix(&invocation_suffix());
    for b in &batches {
        if let Err(e) = writer.write(b).await {
            writer.abort().await;
            return Err(write_error(url, e));
        }
    }
    let staged = writer.finish().await.map_err(|e| write_error(url, e))?;
    staged.publish().await.map_err(|e| write_error(url, e))?;
    let mut report = ObjectReport {
        source: url.to_string(),
        rows: staged.rows(),
        files: Vec::new(),
        error: None,
    };
    let mut folders = Vec::new();
    for f in &staged.files {
        let folder = format!(
            "{table_url}{}",
            partition_path(&config.partition_by, &f.partition)
        );
        report.files.push(WrittenFile {
            url: staged.url(f),
            rows: f.rows,
            bytes: f.bytes,
        });
        if !folders.contains(&folder) {
            folders.push(folder);
        }
    }
    Ok((report, folders))
}

/// Transform the objects an S3 notification names, then register their partitions.
pub async fn run_s3(
    res: &Resources,
    config: &TransformConfig,
    event: S3Event,
) -> Result<Value, FunctionError> {
    config.validate()?;
    let mut reports = Vec::new();
    let mut ignored = Vec::new();
    let mut folders: Vec<String> = Vec::new();
    for r in &event.records {
        let Some(url) = object_url(r) else {
            continue;
        };
        let wanted = r
            .event_name
            .as_deref()
            .is_none_or(|n| n.starts_with("ObjectCreated"))
            && (config.sources.is_empty() || config.sources.iter().any(|s| url.starts_with(s)))
            && !url.starts_with(&config.table_url());
        if !wanted {
            ignored.push(url);
            continue;
        }
        match transform_object(res, config, &url).await {
            Ok((report, f)) => {
                for f in f {
                    if !folders.contains(&f) {
                        folders.push(f);
                    }
                }
                reports.push(report);
            }
            // Bad data or SQL: report it and go on; retrying the event would not help.
            Err(e) if !e.retryable() && !matches!(e, FunctionError::Config(_)) => {
                reports.push(ObjectReport {
                    source: url,
                    rows: 0,
                    files: Vec::new(),
                    error: Some(e.to_string()),
                });
            }
            Err(e) => return Err(e),
        }
    }
    let crawl = if folders.is_empty() {
        None
    } else {
        // The table's own folder as the crawl root, so the table is named after it.
        let target = crate::crawl::CrawlTarget {
            target: config.table_url(),
            database: config.database.clone(),
            exclude: Vec::new(),
        };
        let request = crate::crawl::CrawlRequest::Folders {
            folders: vec![(target, folders)],
            ignored: Vec::new(),
        };
        Some(crate::crawl::run(res, request).await?)
    };
    Ok(json!({
        "objects": reports,
        "ignored": ignored,
        "catalog": crawl.and_then(|c| c.get("reports").and_then(|r| r.get(0)).cloned()),
    }))
}

pub async fn handle(res: &Resources, event: Value) -> Result<Value, FunctionError> {
    if event.get("records").is_some() && event.get("invocationId").is_some() {
        let config = res.settings.firehose.as_ref().ok_or_else(|| {
            FunctionError::Config("a Firehose event needs QUARRY_FIREHOSE (the record SQL)".into())
        })?;
        let event: KinesisFirehoseEvent = serde_json::from_value(event)
            .map_err(|e| FunctionError::BadEvent(format!("Firehose event: {e}")))?;
        let response = crate::firehose::transform(config, event).await?;
        return serde_json::to_value(response).map_err(|e| FunctionError::BadEvent(e.to_string()));
    }
    if event.get("Records").is_some() {
        let config = res.settings.transform.as_ref().ok_or_else(|| {
            FunctionError::Config(
                "an S3 event needs QUARRY_TRANSFORM (target, database, table)".into(),
            )
        })?;
        let event: S3Event = serde_json::from_value(event)
            .map_err(|e| FunctionError::BadEvent(format!("S3 notification: {e}")))?;
        return run_s3(res, config, event).await;
    }
    Err(FunctionError::BadEvent(
        "expected an S3 notification or a Kinesis Data Firehose transformation event".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_names_follow_the_source_version() {
        assert_eq!(fnv(&["s3://b/k", "e1"]), fnv(&["s3://b/k", "e1"]));
        assert_ne!(fnv(&["s3://b/k", "e1"]), fnv(&["s3://b/k", "e2"]));
        assert_ne!(fnv(&["s3://b/k", "e1"]), fnv(&["s3://b/ke", "1"]));
    }
}
