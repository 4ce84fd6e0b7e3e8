//! CTAS, INSERT INTO and UNLOAD: a query's result written as files through the lake's staging
//! writer, published by rename, then catalogued in one atomic catalog write.
//!
//! Guarantees: nothing is visible to a query until the statement commits. Files are written
//! under a hidden staging folder; a failure before the commit (bad cast, byte limit, store
//! error, cancellation) deletes them. New tables and new partitions appear only with the
//! catalog write; a reader of an existing partition may see the new files of an INSERT once they
//! are renamed into place, never a partial file. If the catalog write fails, the published files
//! are deleted again.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::Utc;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::{DFSchemaRef, ScalarValue};
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, cast, lit};
use datafusion::physical_plan::execute_stream_partitioned;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast::{Query, Statement as SqlStatement};
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use quarry_catalog::types::{from_hive, to_hive};
use quarry_catalog::{
    Catalog, CatalogWrite, Column, Partition, PartitionFilter, PartitionWrite, SeenObject,
    StorageDescriptor, Table, TableWrite, keys,
};
use quarry_lake::format::{NULL_FORMAT, table_null_text};
use quarry_lake::stats::Stats;
use quarry_lake::{
    CsvDialect, FileFormat, KEPT_FOOTER_BYTES, StagedFiles, TableWriter, WriteCompression,
    WriteOptions, fingerprint, folder_url, is_hidden, location_url, read_parquet_footer,
    split_location, storage_for, table_file_format,
};

use crate::ddl::{Rows, existing_table, require_database, resolve, string_rows};
use crate::error::{Error, Result};
use crate::job::JobScope;
use crate::statement::{CreateTableAs, Insert, PropertyValue, Unload};

/// What a write statement wrote, for its output, `--stats json` and the history.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct WriteSummary {
    pub rows: u64,
    pub files: u64,
    pub bytes: u64,
    /// The table or UNLOAD location written.
    pub location: String,
    /// Partitions the statement created.
    pub partitions_added: u64,
}

impl WriteSummary {
    fn rows(&self) -> Rows {
        string_rows(&[
            ("rows", vec![self.rows.to_string()]),
            ("files", vec![self.files.to_string()]),
            ("bytes", vec![self.bytes.to_string()]),
            ("location", vec![self.location.clone()]),
        ])
    }
}

/// What a write statement needs from the engine for its query.
pub(crate) struct WriteContext<'a> {
    pub catalog: &'a Arc<dyn Catalog>,
    pub stores: &'a quarry_lake::ObjectStores,
    pub ctx: &'a SessionContext,
    pub default_db: Option<&'a str>,
    pub warehouse: Option<&'a str>,
    pub target_file_size: u64,
    pub query_id: &'a str,
    /// Set when publishing starts: from then on the statement is not cancelled.
    pub committing: &'a Arc<std::sync::atomic::AtomicBool>,
    /// The job run the statement belongs to: its intents and bookmark go with the commit.
    pub job: Option<&'a Arc<JobScope>>,
    /// Where writes may go ([`crate::EngineConfig::write_roots`]).
    pub write_roots: Option<&'a [String]>,
}

/// A property list as a map with lower-case keys; each key once.
fn properties(
    props: &[(String, PropertyValue)],
    allowed: &[&str],
    statement: &str,
) -> Result<BTreeMap<String, PropertyValue>> {
    let mut out = BTreeMap::new();
    for (k, v) in props {
        let key = k.to_ascii_lowercase();
        if key == "bucketed_by" || key == "bucket_count" {
            return Err(Error::user(format!(
                "{statement}: bucketed tables ({key}) are not supported yet; remove bucketed_by and bucket_count"
            )));
        }
        if !allowed.contains(&key.as_str()) {
            return Err(Error::user(format!(
                "{statement}: unknown property '{k}'; known: {}",
                allowed.join(", ")
            )));
        }
        if out.insert(key, v.clone()).is_some() {
            return Err(Error::user(format!(
                "{statement}: property '{k}' is given twice"
            )));
        }
    }
    Ok(out)
}

fn text(
    props: &BTreeMap<String, PropertyValue>,
    key: &str,
    statement: &str,
) -> Result<Option<String>> {
    match props.get(key) {
        None => Ok(None),
        Some(PropertyValue::Text(t)) => Ok(Some(t.clone())),
        Some(PropertyValue::List(_)) => Err(Error::user(format!(
            "{statement}: property {key} takes a single value, not an ARRAY"
        ))),
    }
}

fn list(
    props: &BTreeMap<String, PropertyValue>,
    key: &str,
    statement: &str,
) -> Result<Vec<String>> {
    match props.get(key) {
        None => Ok(Vec::new()),
        Some(PropertyValue::List(l)) => Ok(l.iter().map(|s| s.to_ascii_lowercase()).collect()),
        Some(PropertyValue::Text(_)) => Err(Error::user(format!(
            "{statement}: property {key} takes ARRAY['col', ...]"
        ))),
    }
}

/// `format`, `write_compression` / `compression`, `compression_level`, `field_delimiter` as
/// writer options. Athena's defaults: Parquet, GZIP, `\x01` between text fields.
fn write_options(
    props: &BTreeMap<String, PropertyValue>,
    compression_key: &str,
    default_format: Option<&str>,
    statement: &str,
    target_file_size: u64,
) -> Result<WriteOptions> {
    let format_name = match (text(props, "format", statement)?, default_format) {
        (Some(f), _) => f,
        (None, Some(d)) => d.to_string(),
        (None, None) => {
            return Err(Error::user(format!(
                "{statement}: the format property is required, e.g. WITH (format = 'PARQUET')"
            )));
        }
    };
    let delimiter = match text(props, "field_delimiter", statement)? {
        None => b'\x01',
        Some(d) => match unescape_delimiter(&d) {
            Some(b) => b,
            None => {
                return Err(Error::user(format!(
                    "{statement}: field_delimiter must be one character, got '{d}'"
                )));
            }
        },
    };
    let format = match format_name.to_ascii_uppercase().as_str() {
        "PARQUET" => FileFormat::Parquet,
        "JSON" => FileFormat::Json,
        "TEXTFILE" | "CSV" => FileFormat::Csv(CsvDialect {
            delimiter,
            quote: b'"',
            header: false,
        }),
        "ORC" | "AVRO" | "ION" => {
            return Err(Error::user(format!(
                "{statement}: format {format_name} is not supported; use PARQUET, JSON or TEXTFILE"
            )));
        }
        other => {
            return Err(Error::user(format!(
                "{statement}: unknown format '{other}'; use PARQUET, JSON or TEXTFILE"
            )));
        }
    };
    if props.contains_key("field_delimiter") && !matches!(format, FileFormat::Csv(_)) {
        return Err(Error::user(format!(
            "{statement}: field_delimiter applies to TEXTFILE only"
        )));
    }
    let level = match text(props, "compression_level", statement)? {
        None => None,
        Some(l) => Some(l.parse::<i32>().map_err(|_| {
            Error::user(format!(
                "{statement}: compression_level must be a number, got '{l}'"
            ))
        })?),
    };
    let name = text(props, compression_key, statement)?.unwrap_or_else(|| "GZIP".into());
    let compression = WriteCompression::parse(&name, &format, level)
        .map_err(|e| Error::user(format!("{statement}: {e}")))?;
    Ok(WriteOptions::new(format, compression).with_target_file_size(target_file_size))
}

fn unescape_delimiter(d: &str) -> Option<u8> {
    match d {
        "\\t" => Some(b'\t'),
        "\\001" | "\\u0001" => Some(1),
        _ if d.len() == 1 => d.bytes().next(),
        _ => None,
    }
}

/// Plan `query` in `ctx` (the catalog already registered for it).
async fn plan_query(w: &WriteContext<'_>, query: Query) -> Result<LogicalPlan> {
    Ok(w.ctx.state().statement_to_plan(as_statement(query)).await?)
}

/// A write statement's query as DataFusion's statement.
fn as_statement(query: Query) -> DFStatement {
    DFStatement::Statement(Box::new(SqlStatement::Query(Box::new(query))))
}

/// The statement's query wrapped as DataFusion's statement, so the engine can register the
/// tables it names.
pub(crate) fn query_statement(query: &Query) -> DFStatement {
    as_statement(query.clone())
}

/// Project `plan` onto `columns` (name, Hive type), position by position, with casts that fail
/// on values that do not fit (no silent NULLs).
fn conform(plan: LogicalPlan, columns: &[(String, String)], what: &str) -> Result<LogicalPlan> {
    let schema: DFSchemaRef = Arc::clone(plan.schema());
    if schema.fields().len() != columns.len() {
        return Err(Error::user(format!(
            "{what}: the query has {} columns but {} are expected ({})",
            schema.fields().len(),
            columns.len(),
            columns
                .iter()
                .map(|c| c.0.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let mut exprs = Vec::with_capacity(columns.len());
    for (i, (name, hive)) in columns.iter().enumerate() {
        let target = from_hive(hive)?;
        let (qualifier, field) = schema.qualified_field(i);
        let source = Expr::Column(datafusion::common::Column::new(
            qualifier.cloned(),
            field.name(),
        ));
        if let Some(why) = lossy(field.data_type(), &target) {
            return Err(Error::user(format!(
                "{what}: column {name} is {hive} but the query gives {} ({why}); CAST it in the query if that is meant",
                to_hive(field.data_type())
            )));
        }
        let e = if field.data_type() == &target {
            source
        } else if matches!(field.data_type(), DataType::Null) {
            lit(ScalarValue::try_from(&target)?)
        } else {
            cast(source, target)
        };
        exprs.push(e.alias(name));
    }
    Ok(LogicalPlanBuilder::from(plan).project(exprs)?.build()?)
}

/// Why casting `from` to `to` would silently change values, if it would: Trino refuses these
/// implicit coercions in INSERT, and a silently truncated value is worse than an error. Casts
/// that fail loudly on values that do not fit (text to number, wide to narrow integers) pass.
fn lossy(from: &DataType, to: &DataType) -> Option<&'static str> {
    use DataType as D;
    let float = |t: &D| matches!(t, D::Float16 | D::Float32 | D::Float64);
    let integer = |t: &D| t.is_integer();
    let scale = |t: &D| match t {
        D::Decimal32(_, s) | D::Decimal64(_, s) | D::Decimal128(_, s) | D::Decimal256(_, s) => {
            Some(*s)
        }
        _ => None,
    };
    match (from, to) {
        (f, t) if float(f) && (integer(t) || scale(t).is_some()) => {
            Some("the fraction or precision would be dropped")
        }
        (f, t) if scale(f).is_some_and(|s| s > 0) && integer(t) => {
            Some("the fraction would be dropped")
        }
        (f, t) if matches!((scale(f), scale(t)), (Some(a), Some(b)) if b < a) => {
            Some("digits after the point would be rounded away")
        }
        (D::Timestamp(..), D::Date32 | D::Date64) => Some("the time of day would be dropped"),
        _ => None,
    }
}

/// The writer tasks of a statement. Dropped before they finish (the statement was cancelled),
/// they are aborted, and a background task waits until they are gone, so that the cleanups
/// their writers start on drop are tracked too ([`quarry_lake::writer::finish_cleanups`]).
struct Writers(tokio::task::JoinSet<Result<Option<StagedFiles>>>);

impl Drop for Writers {
    fn drop(&mut self) {
        if self.0.is_empty() {
            return;
        }
        let mut tasks = std::mem::take(&mut self.0);
        tasks.abort_all();
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            quarry_lake::writer::track_cleanup(
                handle.spawn(async move { while tasks.join_next().await.is_some() {} }),
            );
        }
    }
}

/// Run `plan` and write its batches: one writer per output partition of the plan, each in a
/// task of its own, so encoding and compression use every core. On any failure (or a
/// cancellation, which aborts the tasks and so drops their writers) the staged files are
/// deleted.
async fn write_plan(
    w: &WriteContext<'_>,
    plan: LogicalPlan,
    store: Arc<dyn ObjectStore>,
    base: &str,
    root: Path,
    keys: Vec<String>,
    options: WriteOptions,
) -> Result<StagedFiles> {
    // A server's allow-list: nothing is staged outside it.
    if let Some(roots) = w.write_roots {
        quarry_lake::within_roots(&format!("{base}{root}"), roots).map_err(Error::user)?;
    }
    // A job's write is recorded before anything is staged: if the process dies before the
    // commit, the job's next run removes what this one left.
    if let Some(job) = w.job {
        job.writing(w.query_id, &format!("{base}{root}"))?;
    }
    let physical = w.ctx.state().create_physical_plan(&plan).await?;
    let schema: SchemaRef = physical.schema();
    let streams = execute_stream_partitioned(physical, w.ctx.task_ctx())?;
    let single = streams.len() == 1;
    // The writers share the statement's memory budget. Each may see every partition, so each
    // keeps the full number of open files (their memory is within the budget).
    let options = {
        let share = options.memory_limit / streams.len().max(1);
        options.with_memory_limit(share)
    };
    // The first failure tells the other writers to stop and delete what they staged.
    let (stop, _) = tokio::sync::watch::channel(false);
    let mut tasks = Writers(tokio::task::JoinSet::new());
    for (i, mut stream) in streams.into_iter().enumerate() {
        let id = if single {
            w.query_id.to_string()
        } else {
            format!("{}-{i}", w.query_id)
        };
        let mut writer = TableWriter::try_new(
            Arc::clone(&store),
            base,
            root.clone(),
            &schema,
            keys.clone(),
            options.clone(),
            id,
        )?;
        let mut stopped = stop.subscribe();
        tasks.0.spawn(async move {
            loop {
                let stop = async {
                    let _ = stopped.wait_for(|s| *s).await;
                };
                let next = tokio::select! {
                    b = stream.next() => Some(b),
                    () = stop => None,
                };
                let Some(batch) = next else {
                    writer.abort().await;
                    return Ok(None);
                };
                let Some(batch) = batch else { break };
                let written = match batch {
                    Ok(b) => writer.write(&b).await.map_err(Error::from),
                    Err(e) => Err(Error::from(e)),
                };
                if let Err(e) = written {
                    writer.abort().await;
                    return Err(e);
                }
            }
            writer.finish().await.map(Some).map_err(Error::from)
        });
    }
    let mut parts = Vec::new();
    let mut failure = None;
    while let Some(joined) = tasks.0.join_next().await {
        let result = joined
            .map_err(|e| Error::internal(format!("a writer task failed: {e}")))
            .and_then(|r| r);
        match result {
            Ok(Some(staged)) => parts.push(staged),
            Ok(None) => {}
            Err(e) => {
                stop.send_replace(true);
                failure.get_or_insert(e);
            }
        }
    }
    if let Some(e) = failure {
        for p in &parts {
            p.discard().await;
        }
        return Err(e);
    }
    match StagedFiles::merge(parts) {
        Some(staged) => Ok(staged),
        // A plan with no output partitions writes nothing (and stages nothing).
        None => Ok(
            TableWriter::try_new(store, base, root, &schema, keys, options, w.query_id)?
                .finish()
                .await?,
        ),
    }
}

/// A new table or UNLOAD location must hold no data (Athena never overwrites).
async fn require_empty(
    store: &Arc<dyn ObjectStore>,
    root: &Path,
    url: &str,
    what: &str,
) -> Result<()> {
    let skip = root.parts().count();
    let mut listing = store.list(Some(root));
    while let Some(meta) = listing.try_next().await.map_err(|source| {
        Error::Lake(quarry_lake::Error::Object {
            operation: "listing",
            url: url.to_string(),
            source,
        })
    })? {
        let parts: Vec<String> = meta
            .location
            .parts()
            .skip(skip)
            .map(|p| p.as_ref().to_string())
            .collect();
        if !is_hidden(&parts) {
            return Err(Error::user(format!(
                "{what} location {url} is not empty (it holds {}); write to an empty location",
                parts.join("/")
            )));
        }
    }
    Ok(())
}

fn valid_column_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Catalog statistics per written partition (and for the whole write).
fn written_stats(staged: &StagedFiles) -> (BTreeMap<Vec<Option<String>>, Stats>, Stats) {
    let mut per: BTreeMap<Vec<Option<String>>, Stats> = BTreeMap::new();
    let mut total = Stats::default();
    for f in &staged.files {
        let s = Stats::of(f.bytes, Some(f.rows), 1);
        per.entry(f.partition.clone()).or_default().add(&s);
        total.add(&s);
    }
    (per, total)
}

/// A partition this statement creates under the table's `location`, with the statistics and
/// the compression of what it wrote there.
fn written_partition(
    location: &str,
    key_names: &[String],
    values: &[Option<String>],
    stats: &Stats,
    codec: &str,
) -> Partition {
    let folder = quarry_lake::hive::partition_path(key_names, values);
    let mut p = Partition::new(values.to_vec(), format!("{location}{folder}"));
    stats.write(&mut p.parameters);
    p.parameters
        .insert(keys::COMPRESSION_TYPE.into(), codec.into());
    p
}

/// Add `delta` to the statistics in `parameters`, where there are any: a table or partition
/// catalogued without them (DDL, MSCK REPAIR, another tool) stays without, rather than
/// claiming the new rows are all it holds.
fn add_stats(parameters: &mut quarry_catalog::Parameters, delta: &Stats) {
    if !parameters.contains_key(keys::OBJECT_COUNT) {
        return;
    }
    let mut s = Stats::read(parameters);
    s.add(delta);
    s.write(parameters);
}

fn summary(staged: &StagedFiles, location: String, partitions_added: u64) -> WriteSummary {
    WriteSummary {
        rows: staged.rows(),
        files: staged.files.len() as u64,
        bytes: staged.bytes(),
        location,
        partitions_added,
    }
}

/// What a write statement commits to the catalog.
enum Commit {
    /// Nothing (UNLOAD).
    Nothing,
    /// This write (a CTAS: a new table, whose name a concurrent writer may take first).
    Fixed(CatalogWrite),
    /// An INSERT's additions, re-applied to the current catalog when another writer commits
    /// first.
    Insert(InsertCommit),
}

/// Attempts at an INSERT's commit when other writers keep committing first.
const COMMIT_ATTEMPTS: usize = 8;

/// Publish the staged files, then commit; on a failed commit the files go again. This runs to
/// its end as a task of its own, so a cancellation cannot stop it half-way. With `bookmarks`
/// (the table's location and `db.table`), Parquet files are recorded as a crawl of the table
/// would record them, footers included, so queries need not read the footers again and a
/// later crawl of the location knows them.
async fn publish_and_commit(
    w: &WriteContext<'_>,
    staged: &StagedFiles,
    commit: Commit,
    bookmarks: Option<(String, String)>,
) -> Result<()> {
    w.committing
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let catalog = Arc::clone(w.catalog);
    let staged = staged.clone();
    let job = w.job.cloned();
    let id = w.query_id.to_string();
    let task = tokio::spawn(async move {
        quarry_lake::failpoint("write.staged");
        if let Some(job) = &job {
            job.publishing(&id, staged.files.iter().map(|f| staged.url(f)).collect())?;
        }
        staged.publish().await?;
        quarry_lake::failpoint("write.published");
        let in_commit = catalog.commits_job_state();
        let mut separately = false;
        let result = async {
            let seen = match &bookmarks {
                Some((_, table)) if !matches!(commit, Commit::Nothing) => {
                    written_bookmarks(&staged, table).await?
                }
                _ => Vec::new(),
            };
            let mut attempt = 1;
            loop {
                let mut write = match &commit {
                    // Files only; a job's intent and bookmark still need their commit.
                    Commit::Nothing if job.is_none() => return Ok(()),
                    Commit::Nothing => CatalogWrite::default(),
                    Commit::Fixed(write) => write.clone(),
                    Commit::Insert(insert) => insert.build(&catalog).await?,
                };
                if let Some((target, _)) = &bookmarks {
                    write.seen = seen.clone();
                    write.crawl_target = Some(target.clone());
                }
                if let Some(job) = &job {
                    separately = job.amend(&mut write, &id, in_commit);
                }
                match catalog.commit(write).await {
                    Err(quarry_catalog::Error::Conflict { .. })
                        if matches!(commit, Commit::Insert(_)) && attempt < COMMIT_ATTEMPTS =>
                    {
                        attempt += 1;
                    }
                    other => return other.map_err(Error::from),
                }
            }
        }
        .await;
        if result.is_err() {
            staged.unpublish().await;
            return result;
        }
        quarry_lake::failpoint("write.committed");
        if let Some(job) = &job {
            if separately {
                // The output is committed; a catalog that cannot carry the bookmark (Glue)
                // gets it right after. A failure here leaves the objects to the next run.
                job.commit_advance()?;
            } else {
                job.committed(in_commit);
            }
        }
        result
    });
    task.await
        .map_err(|e| Error::internal(format!("the commit task failed: {e}")))?
}

/// Bookmarks of published Parquet files: size, fingerprint (as listed now), rows and footer.
async fn written_bookmarks(staged: &StagedFiles, table: &str) -> Result<Vec<SeenObject>> {
    let store = staged.store();
    let mut seen = Vec::with_capacity(staged.files.len());
    for f in &staged.files {
        let url = staged.url(f);
        let meta = store.head(&f.path).await.map_err(|source| {
            Error::Lake(quarry_lake::Error::Object {
                operation: "reading the metadata of",
                url: url.clone(),
                source,
            })
        })?;
        let footer = read_parquet_footer(store, &meta).await.map_err(|reason| {
            Error::Lake(quarry_lake::Error::Write {
                url: url.clone(),
                reason,
            })
        })?;
        seen.push(SeenObject {
            path: url,
            size: meta.size,
            fingerprint: fingerprint(&meta),
            table: Some(table.to_string()),
            rows: Some(f.rows),
            footer: if footer.raw.len() <= KEPT_FOOTER_BYTES {
                Some(footer.raw.to_vec())
            } else {
                // Too large to keep: its statistics, for the planner.
                let file = footer.metadata.file_metadata();
                parquet::arrow::parquet_to_arrow_schema(
                    file.schema_descr(),
                    file.key_value_metadata(),
                )
                .ok()
                .and_then(|schema| quarry_lake::footer::statistics_blob(&footer.metadata, &schema))
                .map(|b| b.to_vec())
            },
        });
    }
    Ok(seen)
}

/// Where written Parquet files are bookmarked: only where the catalog keeps footers.
fn bookmark_target(
    catalog: &Arc<dyn Catalog>,
    format: &FileFormat,
    location: &str,
    table: &str,
) -> Option<(String, String)> {
    (catalog.keeps_footers() && matches!(format, FileFormat::Parquet))
        .then(|| (location.to_string(), table.to_string()))
}

/// CREATE TABLE .. WITH (..) AS SELECT ..
pub(crate) async fn ctas(w: &WriteContext<'_>, c: CreateTableAs) -> Result<(Rows, WriteSummary)> {
    const WHAT: &str = "CREATE TABLE AS";
    let (db, name) = resolve(&c.name, w.default_db)?;
    require_database(w.catalog, &db).await?;
    if w.catalog.get_table(&db, &name).await?.is_some() {
        if c.if_not_exists {
            let s = WriteSummary::default();
            return Ok((s.rows(), s));
        }
        return Err(Error::user(format!("table {db}.{name} already exists")));
    }
    let props = properties(
        &c.properties,
        &[
            "format",
            "write_compression",
            "parquet_compression",
            "compression_level",
            "external_location",
            "partitioned_by",
            "field_delimiter",
            "is_external",
            "table_type",
        ],
        WHAT,
    )?;
    if let Some(t) = text(&props, "table_type", WHAT)?
        && !t.eq_ignore_ascii_case("HIVE")
    {
        return Err(Error::user(format!(
            "{WHAT}: table_type '{t}' is not supported; Quarry writes Hive tables"
        )));
    }
    let compression_key = if props.contains_key("parquet_compression") {
        "parquet_compression"
    } else {
        "write_compression"
    };
    let options = write_options(
        &props,
        compression_key,
        Some("PARQUET"),
        WHAT,
        w.target_file_size,
    )?;
    let keys = list(&props, "partitioned_by", WHAT)?;
    let location = match (text(&props, "external_location", WHAT)?, w.warehouse) {
        (Some(l), _) => location_url(&l)?,
        (None, Some(wh)) => format!("{}{db}/{name}/", location_url(wh)?),
        (None, None) => {
            return Err(Error::user(format!(
                "{WHAT}: give the table a place: WITH (external_location = 's3://bucket/path/'), or set QUARRY_WAREHOUSE / --warehouse"
            )));
        }
    };
    let plan = plan_query(w, c.query).await?;
    // Column names and Hive types from the query; partition columns last, in order.
    let fields = plan.schema().fields().clone();
    let mut columns = Vec::with_capacity(fields.len());
    let mut seen = BTreeSet::new();
    for f in fields.iter() {
        let n = f.name().to_ascii_lowercase();
        if !valid_column_name(&n) {
            return Err(Error::user(format!(
                "{WHAT}: column '{}' needs a plain name (letters, digits, _): add AS name",
                f.name()
            )));
        }
        if !seen.insert(n.clone()) {
            return Err(Error::user(format!("{WHAT}: column '{n}' appears twice")));
        }
        columns.push((n, to_hive(f.data_type())));
    }
    for k in &keys {
        if !seen.contains(k) {
            return Err(Error::user(format!(
                "{WHAT}: partitioned_by column '{k}' is not a column of the query"
            )));
        }
    }
    let n_data = columns.len().saturating_sub(keys.len());
    if columns[n_data..].iter().map(|c| &c.0).ne(keys.iter()) {
        return Err(Error::user(format!(
            "{WHAT}: partition columns ({}) must be the last columns of the SELECT, in that order",
            keys.join(", ")
        )));
    }
    let plan = conform(plan, &columns, WHAT)?;
    let (store, root) = w.stores.resolve(&location)?;
    let (key, _) = split_location(&location)?;
    let base = format!("{key}/");
    require_empty(&store, &root, &location, WHAT).await?;

    let mut parameters = quarry_catalog::Parameters::new();
    let (input, output, mut serde) = storage_for(options.format, &mut parameters);
    // NULL is an empty field, and the table says so, so that Athena reads the files as Quarry
    // does. (Quarry's CSV reader, DataFusion's, reads every empty field as NULL and has no
    // `\N`: an empty string in a text table reads back as NULL, in both engines.)
    if matches!(options.format, FileFormat::Csv(_)) {
        serde.parameters.insert(NULL_FORMAT.into(), String::new());
    }
    parameters.insert("EXTERNAL".into(), "TRUE".into());
    parameters.insert(
        keys::COMPRESSION_TYPE.into(),
        options.compression.as_str().into(),
    );
    let staged = if c.with_data {
        write_plan(w, plan, store, &base, root, keys.clone(), options.clone()).await?
    } else {
        TableWriter::try_new(
            store,
            &base,
            root,
            &Arc::new(plan.schema().as_arrow().clone()),
            keys.clone(),
            options.clone(),
            w.query_id,
        )?
        .finish()
        .await?
    };
    let (per_partition, total) = written_stats(&staged);
    total.write(&mut parameters);
    let now = Utc::now();
    let to_column = |(n, t): &(String, String)| Column::new(n.clone(), t.clone());
    let table = Table {
        database: db.clone(),
        name: name.clone(),
        description: None,
        table_type: "EXTERNAL_TABLE".into(),
        view: None,
        storage: StorageDescriptor {
            location: location.clone(),
            columns: columns[..n_data].iter().map(to_column).collect(),
            input_format: input.into(),
            output_format: output.into(),
            serde_info: serde,
            compressed: options.compression != WriteCompression::None,
            parameters: Default::default(),
        },
        partition_keys: columns[n_data..].iter().map(to_column).collect(),
        parameters,
        create_time: now,
        update_time: now,
        version: 0,
    };
    let mut partitions = Vec::new();
    if !keys.is_empty() {
        for (values, stats) in &per_partition {
            let p = written_partition(
                &location,
                &keys,
                values,
                stats,
                options.compression.as_str(),
            );
            partitions.push(PartitionWrite {
                database: db.clone(),
                table: name.clone(),
                partition: p,
                expected_version: None,
            });
        }
    }
    let added = partitions.len() as u64;
    let write = CatalogWrite {
        tables: vec![TableWrite {
            table,
            expected_version: None,
        }],
        partitions,
        ..Default::default()
    };
    let bookmarks = bookmark_target(
        w.catalog,
        &options.format,
        &location,
        &format!("{db}.{name}"),
    );
    publish_and_commit(w, &staged, Commit::Fixed(write), bookmarks).await?;
    let s = summary(&staged, location, added);
    Ok((s.rows(), s))
}

/// INSERT INTO t [(cols)] SELECT .. | VALUES ..
/// How files are written into existing table `t`: its format, its compression (Athena's
/// table properties first, `write_compression`, `parquet.compression`, then the compression its
/// files have), its NULL text, files of `target_file_size`.
pub fn table_write_options(t: &Table, target_file_size: u64) -> Result<WriteOptions> {
    let format = table_file_format(t).ok_or_else(|| {
        Error::user(format!(
            "the format of {} is unknown (SerDe {}); Quarry writes Parquet, CSV/TSV and JSON tables",
            t.qualified_name(),
            t.storage.serde_info.serialization_library
        ))
    })?;
    let compression_name = [
        "write_compression",
        "parquet.compression",
        keys::COMPRESSION_TYPE,
    ]
    .iter()
    .find_map(|k| t.parameters.get(*k))
    .cloned()
    .unwrap_or_else(|| match format {
        FileFormat::Parquet => "GZIP".into(),
        _ => "NONE".into(),
    });
    let compression =
        WriteCompression::parse(&compression_name, &format, None).unwrap_or(match format {
            FileFormat::Parquet => WriteCompression::Gzip,
            _ => WriteCompression::None,
        });
    Ok(WriteOptions::new(format, compression)
        .with_target_file_size(target_file_size)
        .with_null_text(table_null_text(t).map(str::to_string)))
}

pub(crate) async fn insert(w: &WriteContext<'_>, i: Insert) -> Result<(Rows, WriteSummary)> {
    let t = existing_table(w.catalog, &i.table, w.default_db).await?;
    let what = format!("INSERT INTO {}", t.qualified_name());
    let options = table_write_options(&t, w.target_file_size).map_err(|e| match e {
        Error::User { message } => Error::user(format!("{what}: {message}")),
        other => other,
    })?;
    let format = options.format;
    let all: Vec<&Column> = t.storage.columns.iter().chain(&t.partition_keys).collect();
    let plan = plan_query(w, i.query).await?;
    let target: Vec<(String, String)> = all
        .iter()
        .map(|c| (c.name.clone(), c.data_type.clone()))
        .collect();
    let plan = if i.columns.is_empty() {
        conform(plan, &target, &what)?
    } else {
        // Named columns take the query's columns in order; the others are NULL.
        let schema = Arc::clone(plan.schema());
        if schema.fields().len() != i.columns.len() {
            return Err(Error::user(format!(
                "{what}: {} columns named but the query has {}",
                i.columns.len(),
                schema.fields().len()
            )));
        }
        let mut exprs = Vec::with_capacity(all.len());
        for c in &all {
            let pos = i
                .columns
                .iter()
                .position(|n| n.eq_ignore_ascii_case(&c.name));
            let e = match pos {
                Some(p) => {
                    let (q, f) = schema.qualified_field(p);
                    Expr::Column(datafusion::common::Column::new(q.cloned(), f.name()))
                }
                None => lit(ScalarValue::Null),
            };
            exprs.push(e.alias(&c.name));
        }
        for n in &i.columns {
            if !all.iter().any(|c| c.name.eq_ignore_ascii_case(n)) {
                return Err(Error::user(format!(
                    "{what}: the table has no column '{n}'; its columns: {}",
                    all.iter()
                        .map(|c| c.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
        let named = LogicalPlanBuilder::from(plan).project(exprs)?.build()?;
        conform(named, &target, &what)?
    };
    let location = folder_url(&t.storage.location);
    let (store, root) = w.stores.resolve(&location)?;
    let (key, _) = split_location(&location)?;
    let base = format!("{key}/");
    let keys: Vec<String> = t.partition_keys.iter().map(|k| k.name.clone()).collect();
    // Read before writing, so nothing after the write can fail on the catalog but the commit.
    let existing: BTreeMap<Vec<Option<String>>, Partition> = if keys.is_empty() {
        BTreeMap::new()
    } else {
        w.catalog
            .get_partitions(&t.database, &t.name, &PartitionFilter::all())
            .await?
            .into_iter()
            .map(|p| (p.values.clone(), p))
            .collect()
    };
    let written_codec = options.compression.as_str();
    let mut staged = write_plan(w, plan, store, &base, root, keys.clone(), options).await?;
    let (per_partition, total) = written_stats(&staged);
    let mut added = 0;
    for values in per_partition.keys().filter(|_| !keys.is_empty()) {
        // An existing partition may live anywhere: its files go to its own folder.
        let Some(p) = existing.get(values) else {
            added += 1;
            continue;
        };
        let p_root = match split_location(&folder_url(&p.location)) {
            Ok((p_key, p_root)) if p_key == key => p_root,
            other => {
                staged.discard().await;
                let reason = match other {
                    Err(e) => e.to_string(),
                    Ok(_) => "it is in another store; INSERT writes to the table's store only"
                        .to_string(),
                };
                return Err(Error::user(format!(
                    "{what}: cannot write to partition {} at {}: {reason}",
                    quarry_lake::hive::partition_label(&keys, values),
                    p.location
                )));
            }
        };
        for f in staged.files.iter_mut().filter(|f| &f.partition == values) {
            if let Some(name) = f.path.filename() {
                f.path = p_root.clone().join(name);
            }
        }
    }
    // Where each partition's files went: the commit checks that the partition still lives
    // there (a compaction may have moved it meanwhile, and files left behind would be lost).
    let written_to = per_partition
        .keys()
        .filter(|_| !keys.is_empty())
        .map(|values| {
            let at = match existing.get(values) {
                Some(p) => folder_url(&p.location),
                None => {
                    written_partition(&location, &keys, values, &Stats::default(), written_codec)
                        .location
                }
            };
            (values.clone(), folder_url(&at))
        })
        .collect();
    let commit = InsertCommit {
        database: t.database.clone(),
        table: t.name.clone(),
        written_to,
        keys,
        location: location.clone(),
        per_partition,
        total,
        text: !matches!(format, FileFormat::Parquet),
        codec: written_codec.to_string(),
    };
    let bookmarks = bookmark_target(w.catalog, &format, &location, &t.qualified_name());
    publish_and_commit(w, &staged, Commit::Insert(commit), bookmarks).await?;
    let s = summary(&staged, location, added);
    Ok((s.rows(), s))
}

/// What an INSERT adds to the catalog, applied to the catalog as it is at commit time: a
/// concurrent INSERT, crawl or ALTER that committed first is re-read and added to, not lost or
/// failed on.
#[derive(Debug, Clone)]
struct InsertCommit {
    database: String,
    table: String,
    /// The folder each partition's files were written to.
    written_to: BTreeMap<Vec<Option<String>>, String>,
    keys: Vec<String>,
    location: String,
    per_partition: BTreeMap<Vec<Option<String>>, Stats>,
    total: Stats,
    text: bool,
    codec: String,
}

impl InsertCommit {
    async fn build(&self, catalog: &Arc<dyn Catalog>) -> Result<CatalogWrite> {
        let t = catalog
            .get_table(&self.database, &self.table)
            .await?
            .ok_or_else(|| {
                Error::user(format!(
                    "table {}.{} was dropped while the INSERT ran",
                    self.database, self.table
                ))
            })?;
        let now = Utc::now();
        let table_codec = t.parameters.get(keys::COMPRESSION_TYPE).cloned();
        let mut partitions = Vec::new();
        if !self.keys.is_empty() {
            let mut filter = PartitionFilter::all();
            // One lookup for one partition; the whole list otherwise.
            if self.per_partition.len() == 1
                && let Some(values) = self.per_partition.keys().next()
            {
                for (k, v) in self.keys.iter().zip(values) {
                    if let Some(v) = v {
                        filter = filter.eq(k, v);
                    }
                }
            }
            let existing: BTreeMap<Vec<Option<String>>, Partition> = catalog
                .get_partitions(&t.database, &t.name, &filter)
                .await?
                .into_iter()
                .map(|p| (p.values.clone(), p))
                .collect();
            for (values, stats) in &self.per_partition {
                if let (Some(p), Some(at)) = (existing.get(values), self.written_to.get(values))
                    && folder_url(&p.location) != *at
                {
                    return Err(Error::user(format!(
                        "partition {} of {}.{} moved to {} while the INSERT ran (a compaction?); its files were written to {at}: run the INSERT again",
                        quarry_lake::hive::partition_label(&self.keys, values),
                        self.database,
                        self.table,
                        p.location
                    )));
                }
                let (mut p, expected) = match existing.get(values) {
                    Some(p) => (p.clone(), Some(p.version)),
                    None => {
                        let p = written_partition(
                            &self.location,
                            &self.keys,
                            values,
                            &Stats::default(),
                            &self.codec,
                        );
                        (p, None)
                    }
                };
                add_stats(&mut p.parameters, stats);
                // Text files are read with the compression the partition declares: when the
                // new files differ from it, the partition's files are sniffed one by one.
                let declared = p
                    .parameters
                    .get(keys::COMPRESSION_TYPE)
                    .or(table_codec.as_ref())
                    .cloned();
                if self.text && declared.as_deref() != Some(self.codec.as_str()) {
                    p.parameters
                        .insert(keys::COMPRESSION_TYPE.into(), "mixed".into());
                }
                p.update_time = now;
                partitions.push(PartitionWrite {
                    database: t.database.clone(),
                    table: t.name.clone(),
                    partition: p,
                    expected_version: expected,
                });
            }
        }
        if self.keys.is_empty() && folder_url(&t.storage.location) != self.location {
            return Err(Error::user(format!(
                "table {}.{} moved to {} while the INSERT ran (a compaction?); its files were written to {}: run the INSERT again",
                self.database, self.table, t.storage.location, self.location
            )));
        }
        let mut table = t.clone();
        add_stats(&mut table.parameters, &self.total);
        if self.text && self.keys.is_empty() && table_codec.as_deref() != Some(self.codec.as_str())
        {
            table
                .parameters
                .insert(keys::COMPRESSION_TYPE.into(), "mixed".into());
        }
        table.update_time = now;
        Ok(CatalogWrite {
            tables: vec![TableWrite {
                expected_version: Some(t.version),
                table,
            }],
            partitions,
            ..Default::default()
        })
    }
}

/// UNLOAD (SELECT ..) TO 'url' WITH (..): files only, nothing catalogued.
pub(crate) async fn unload(w: &WriteContext<'_>, u: Unload) -> Result<(Rows, WriteSummary)> {
    const WHAT: &str = "UNLOAD";
    let props = properties(
        &u.properties,
        &[
            "format",
            "compression",
            "compression_level",
            "partitioned_by",
            "field_delimiter",
        ],
        WHAT,
    )?;
    let options = write_options(&props, "compression", None, WHAT, w.target_file_size)?;
    let keys = list(&props, "partitioned_by", WHAT)?;
    let location = location_url(&u.to)?;
    let plan = plan_query(w, u.query).await?;
    let names: Vec<String> = plan
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().to_ascii_lowercase())
        .collect();
    let n_data = names.len().saturating_sub(keys.len());
    if names[n_data..].iter().ne(keys.iter()) {
        return Err(Error::user(format!(
            "{WHAT}: partition columns ({}) must be the last columns of the SELECT, in that order",
            keys.join(", ")
        )));
    }
    let (store, root) = w.stores.resolve(&location)?;
    let (key, _) = split_location(&location)?;
    require_empty(&store, &root, &location, WHAT).await?;
    let staged = write_plan(w, plan, store, &format!("{key}/"), root, keys, options).await?;
    publish_and_commit(w, &staged, Commit::Nothing, None).await?;
    let s = summary(&staged, location, 0);
    Ok((s.rows(), s))
}
