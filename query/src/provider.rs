//! DataFusion catalog, schema and table providers over the Quarry catalog.
//!
//! A scan asks the catalog for the partitions matching the query's partition-key filters (an
//! indexed lookup), lists only those partitions' prefixes, and reads each table with the format
//! and options the catalog records (never guessed from file names).

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{CatalogProvider, SchemaProvider, Session, TableProvider};
use datafusion::common::config::TableParquetOptions;
use datafusion::common::stats::Precision;
use datafusion::common::{
    ColumnStatistics, DFSchema, DataFusionError, Result, ScalarValue, Statistics, plan_err,
};
use datafusion::datasource::TableType;
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::file_format::csv::CsvFormat;
use datafusion::datasource::file_format::file_compression_type::FileCompressionType;
use datafusion::datasource::file_format::json::JsonFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::parquet::metadata::{
    CachedParquetMetaData, DFParquetMetadata,
};
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder};
use datafusion::datasource::table_schema::TableSchema;
use datafusion::execution::cache::cache_manager::CachedFileMetadataEntry;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::parquet::file::metadata::ParquetMetaDataReader;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::union::UnionExec;
use datafusion_datasource::compute_all_files_statistics;
use futures::{StreamExt, TryStreamExt, stream};
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};
use quarry_catalog::types::from_hive;
use quarry_catalog::{Catalog, Partition, SeenObject, Table, keys};
use quarry_lake::{Compression, FileFormat as CrawledFormat, fingerprint, table_file_format};

use crate::dryrun::{DryRunInput, cached_footer};
use crate::job::JobScope;
use crate::projection::Projection;
use crate::prune::partition_filter;
use crate::stores::{scan_url, split_location};

/// Athena's name for the default catalog.
pub const DEFAULT_CATALOG: &str = "awsdatacatalog";

/// What one table scan selected, for EXPLAIN, dry runs and tests.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ScanInfo {
    pub table: String,
    /// Partitions of the table; `None` where the catalog cannot count them cheaply (Glue).
    pub partitions_total: Option<u64>,
    pub partitions_selected: u64,
    /// Partitions came from the table's partition projection (`partitions_total` is the number
    /// the projection defines), not from the catalog.
    pub projected: bool,
    /// Prefixes listed to find the files (one per selected partition).
    pub listed_prefixes: Vec<String>,
    pub files: u64,
    /// Size of the files to read (an upper bound on what the scan reads).
    pub bytes: u64,
    /// What the scan actually read (filled in after execution).
    pub bytes_scanned: u64,
    /// A federated scan: how it was read (connector, splits, what was pushed down).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub federated: Option<String>,
    #[serde(skip)]
    pub scan_id: usize,
    /// What a dry run needs to refine `bytes` with Parquet row-group statistics.
    #[serde(skip)]
    pub dry_run: Option<Arc<DryRunInput>>,
    /// The version (ETag) of each object the scan listed, by path: reads ask for exactly that
    /// version, so an object rewritten during the query is an error, not a mix of versions.
    #[serde(skip)]
    pub versions: Arc<HashMap<Path, String>>,
}

/// Scans planned during one query.
pub type ScanLog = Arc<Mutex<Vec<ScanInfo>>>;

fn external(e: impl std::error::Error + Send + Sync + 'static) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

/// Per-file statistics computed from Parquet footers, kept across statements so a table's
/// statistics are derived once per object version, not on every statement.
#[derive(Debug, Default)]
pub struct FileStatsCache {
    entries: Mutex<HashMap<FileStatsKey, Arc<Statistics>>>,
}

/// Table (name, version, view types: its schema) and object (path, size, modification time).
type FileStatsKey = (String, u64, bool, Path, u64, chrono::DateTime<chrono::Utc>);

impl FileStatsCache {
    /// Entries kept before the cache starts over (each holds a few values per column).
    const MAX_ENTRIES: usize = 200_000;

    fn get_or_compute(
        &self,
        key: FileStatsKey,
        compute: impl FnOnce() -> Option<Statistics>,
    ) -> Option<Arc<Statistics>> {
        if let Some(s) = self.lock().get(&key) {
            return Some(Arc::clone(s));
        }
        let stats = Arc::new(compute()?);
        let mut entries = self.lock();
        if entries.len() >= Self::MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(key, Arc::clone(&stats));
        Some(stats)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<FileStatsKey, Arc<Statistics>>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

/// The Quarry catalog as DataFusion sees it during one query: databases are schemas.
#[derive(Debug)]
pub struct QuarryCatalogProvider {
    schemas: HashMap<String, Arc<QuarrySchemaProvider>>,
    extra: HashMap<String, Arc<dyn SchemaProvider>>,
}

impl QuarryCatalogProvider {
    /// The catalog's databases for one query. With `view_types`, string and binary columns are
    /// read as Arrow's view types (DataFusion's `schema_force_view_types`): no copy out of
    /// Parquet pages, and short values compare inline when grouping and joining.
    ///
    /// With `databases`, only those are looked up (except `existing`, which the caller has
    /// just found), and their tables one by one as the statement names them (one `get_table`
    /// each, one Glue `GetTable`). Without, for statements that read `information_schema`
    /// (`SHOW COLUMNS`, ...), every table of every database is listed. Listing them all for
    /// every statement cost 7 ms a statement with 1,000 tables in the embedded catalog, and
    /// paged `GetDatabases` and `GetTables` calls on Glue.
    pub async fn load(
        catalog: Arc<dyn Catalog>,
        scans: ScanLog,
        view_types: bool,
        file_stats: Arc<FileStatsCache>,
        databases: Option<&BTreeSet<String>>,
        existing: Option<&str>,
        job: Option<Arc<JobScope>>,
    ) -> Result<Self> {
        let mut found = Vec::new();
        match databases {
            None => {
                for db in catalog.list_databases().await.map_err(external)? {
                    let tables = catalog.list_tables(&db.name).await.map_err(external)?;
                    let tables = tables.into_iter().map(|t| (t.name.clone(), t)).collect();
                    found.push((db.name, Some(tables)));
                }
            }
            Some(names) => {
                for name in names {
                    let exists = existing == Some(name.as_str())
                        || catalog
                            .get_database(name)
                            .await
                            .map_err(external)?
                            .is_some();
                    if exists {
                        found.push((name.clone(), None));
                    }
                }
            }
        }
        let schemas = found
            .into_iter()
            .map(|(database, tables)| {
                let schema = QuarrySchemaProvider {
                    catalog: Arc::clone(&catalog),
                    database: database.clone(),
                    tables,
                    scans: Arc::clone(&scans),
                    view_types,
                    file_stats: Arc::clone(&file_stats),
                    job: job.clone(),
                    known: HashMap::new(),
                };
                (database, Arc::new(schema))
            })
            .collect();
        Ok(Self {
            schemas,
            extra: HashMap::new(),
        })
    }
}

impl QuarryCatalogProvider {
    /// Tables the statement already looked up (`db`, `table`): answered without another lookup.
    pub fn with_known(mut self, known: &HashMap<(String, String), Option<Table>>) -> Self {
        for ((db, name), table) in known {
            if let Some(schema) = self.schemas.get_mut(db).and_then(Arc::get_mut) {
                schema.known.insert(name.clone(), table.clone());
            }
        }
        self
    }

    /// Add a schema that is not a catalog database (e.g. `system`).
    pub fn add_schema(&mut self, name: &str, schema: Arc<dyn SchemaProvider>) {
        self.extra.insert(name.to_string(), schema);
    }
}

impl CatalogProvider for QuarryCatalogProvider {
    fn schema_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .schemas
            .keys()
            .chain(self.extra.keys())
            .cloned()
            .collect();
        names.sort();
        names.dedup();
        names
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        self.schemas
            .get(name)
            .map(|s| Arc::clone(s) as Arc<dyn SchemaProvider>)
            .or_else(|| self.extra.get(name).cloned())
    }
}

#[derive(Debug)]
pub struct QuarrySchemaProvider {
    catalog: Arc<dyn Catalog>,
    database: String,
    /// Every table of the database, when the statement lists them; `None`: looked up by name.
    tables: Option<HashMap<String, Table>>,
    scans: ScanLog,
    view_types: bool,
    file_stats: Arc<FileStatsCache>,
    job: Option<Arc<JobScope>>,
    /// Tables this statement already looked up (while finding the views it reads).
    known: HashMap<String, Option<Table>>,
}

#[async_trait]
impl SchemaProvider for QuarrySchemaProvider {
    /// Only statements that read `information_schema` list tables (see
    /// [`QuarryCatalogProvider::load`]); for the others this is empty.
    fn table_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.tables.iter().flat_map(|t| t.keys().cloned()).collect();
        names.sort();
        names
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let table = match &self.tables {
            Some(tables) => tables.get(name).cloned(),
            None if self.known.contains_key(name) => self.known.get(name).cloned().flatten(),
            None => self
                .catalog
                .get_table(&self.database, name)
                .await
                .map_err(external)?,
        };
        match table {
            None => Ok(None),
            Some(t) => Ok(Some(Arc::new(
                QuarryTable::try_new(
                    Arc::clone(&self.catalog),
                    t,
                    Arc::clone(&self.scans),
                    self.view_types,
                )?
                .with_file_stats(Arc::clone(&self.file_stats))
                .with_job(self.job.clone()),
            ))),
        }
    }

    /// Known without a lookup only when the tables were listed; DataFusion asks this for DDL,
    /// which Quarry does not run.
    fn table_exist(&self, name: &str) -> bool {
        self.tables.as_ref().is_some_and(|t| t.contains_key(name))
    }
}

/// One catalogued table.
pub struct QuarryTable {
    catalog: Arc<dyn Catalog>,
    table: Table,
    schema: SchemaRef,
    file_schema: SchemaRef,
    partition_fields: Vec<FieldRef>,
    scans: ScanLog,
    view_types: bool,
    file_stats: Arc<FileStatsCache>,
    /// A job run reading this table through its bookmark: objects processed by earlier runs
    /// are not listed.
    job: Option<Arc<JobScope>>,
}

impl fmt::Debug for QuarryTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QuarryTable")
            .field("table", &self.table.qualified_name())
            .finish()
    }
}

impl QuarryTable {
    pub fn try_new(
        catalog: Arc<dyn Catalog>,
        table: Table,
        scans: ScanLog,
        view_types: bool,
    ) -> Result<Self> {
        let field = |c: &quarry_catalog::Column| -> Result<FieldRef> {
            Ok(Arc::new(Field::new(
                &c.name,
                from_hive(&c.data_type).map_err(external)?,
                true,
            )))
        };
        // Data columns only: partition values are per-file constants.
        let file_field = |c: &quarry_catalog::Column| -> Result<FieldRef> {
            let f = field(c)?;
            Ok(match f.data_type() {
                DataType::Utf8 if view_types => {
                    Arc::new(f.as_ref().clone().with_data_type(DataType::Utf8View))
                }
                DataType::Binary if view_types => {
                    Arc::new(f.as_ref().clone().with_data_type(DataType::BinaryView))
                }
                _ => f,
            })
        };
        let file_fields = table
            .storage
            .columns
            .iter()
            .map(file_field)
            .collect::<Result<Vec<_>>>()?;
        let partition_fields = table
            .partition_keys
            .iter()
            .map(field)
            .collect::<Result<Vec<_>>>()?;
        let file_schema = Arc::new(Schema::new(file_fields.clone()));
        let schema = Arc::new(Schema::new(
            file_fields
                .into_iter()
                .chain(partition_fields.iter().cloned())
                .collect::<Vec<_>>(),
        ));
        Ok(Self {
            catalog,
            table,
            schema,
            file_schema,
            partition_fields,
            scans,
            view_types,
            file_stats: Arc::default(),
            job: None,
        })
    }

    /// Read through a job run's bookmark when the run bookmarks this table.
    pub fn with_job(mut self, job: Option<Arc<JobScope>>) -> Self {
        self.job = job.filter(|j| j.is_bookmarked(&self.table.qualified_name()));
        self
    }

    /// Share per-file statistics with other statements (the engine's cache).
    pub fn with_file_stats(mut self, file_stats: Arc<FileStatsCache>) -> Self {
        self.file_stats = file_stats;
        self
    }

    /// Crawl bookmarks of `files` that still match the listed object (size and ETag / mtime),
    /// by the object's location.
    async fn verified_bookmarks(
        &self,
        store_key: &str,
        files: &[&ObjectMeta],
        footers: bool,
    ) -> Result<HashMap<Path, SeenObject>> {
        if files.is_empty() {
            return Ok(HashMap::new());
        }
        let urls: Vec<String> = files
            .iter()
            .map(|m| format!("{store_key}/{}", m.location))
            .collect();
        let seen = if footers {
            self.catalog.objects_with_footers(&urls).await
        } else {
            self.catalog.objects(&urls).await
        }
        .map_err(external)?;
        let mut by_url: HashMap<String, SeenObject> =
            seen.into_iter().map(|o| (o.path.clone(), o)).collect();
        Ok(urls
            .iter()
            .zip(files)
            .filter_map(|(url, meta)| {
                let o = by_url.remove(url)?;
                (o.size == meta.size && o.fingerprint == fingerprint(meta))
                    .then(|| (meta.location.clone(), o))
            })
            .collect())
    }

    /// The total rows of `files` if crawl bookmarks know every one of them exactly and each
    /// bookmark still matches the listed object; otherwise `None`.
    async fn exact_rows(&self, store_key: &str, files: &[ObjectMeta]) -> Result<Option<u64>> {
        if files.is_empty() {
            return Ok(None);
        }
        let all: Vec<&ObjectMeta> = files.iter().collect();
        let known = self.verified_bookmarks(store_key, &all, false).await?;
        let mut total = 0;
        for meta in files {
            match known.get(&meta.location).and_then(|o| o.rows) {
                Some(r) => total += r,
                None => return Ok(None),
            }
        }
        Ok(Some(total))
    }

    /// Per-file statistics (row count, min / max / null count per column) from footers in the
    /// metadata cache, as DataFusion computes them when it registers a table. With them the
    /// scan skips files whose statistics rule out the predicate before opening them, and reads
    /// a column that holds one value throughout a file (`l_linestatus = 'F'` in old months) as
    /// a constant instead of reading its pages.
    fn attach_file_statistics(
        &self,
        state: &dyn Session,
        groups: &mut [(FileCompressionType, Vec<PartitionedFile>)],
        blobs: &HashMap<Path, RecordBatch>,
    ) {
        let cache = state.runtime_env().cache_manager.get_file_metadata_cache();
        for file in groups.iter_mut().flat_map(|(_, files)| files.iter_mut()) {
            let meta = &file.object_meta;
            let Some(md) = cached_footer(cache.as_ref(), meta) else {
                // No footer at hand: the statistics a large footer left in its bookmark
                // (estimates only: the file is not read to plan).
                if let Some(stats) = blobs
                    .get(&meta.location)
                    .and_then(|groups| statistics_from_groups(groups, &self.file_schema))
                {
                    *file = file.clone().with_statistics(Arc::new(stats));
                }
                continue;
            };
            let key = (
                self.table.qualified_name(),
                self.table.version,
                self.view_types,
                meta.location.clone(),
                meta.size,
                meta.last_modified,
            );
            // Statistics that cannot be derived are simply left out: the scan reads the file.
            // Partition columns get theirs from the file's partition values.
            if let Some(stats) = self.file_stats.get_or_compute(key, || {
                DFParquetMetadata::statistics_from_parquet_metadata(&md, &self.file_schema).ok()
            }) {
                *file = file.clone().with_statistics(stats);
            }
        }
    }

    /// Put the Parquet footers the crawl kept into DataFusion's metadata cache for listed files
    /// it does not hold yet, so the scan does not read them from storage again. Only footers of
    /// objects unchanged since the crawl (size and ETag / mtime) are used; the cache checks size
    /// and modification time again when the scan opens each file.
    async fn seed_footers(
        &self,
        state: &dyn Session,
        store_key: &str,
        files: &[ObjectMeta],
    ) -> Result<HashMap<Path, RecordBatch>> {
        let cache = state.runtime_env().cache_manager.get_file_metadata_cache();
        let missing: Vec<&ObjectMeta> = files
            .iter()
            .filter(|m| cached_footer(cache.as_ref(), m).is_none())
            .collect();
        let known = self.verified_bookmarks(store_key, &missing, true).await?;
        // Seeding more than the cache holds would only evict what was just decoded (and the
        // scan would read those footers anyway): stop at half the cache.
        let budget = cache.cache_limit() / 2;
        let mut seeded = 0;
        let mut blobs = HashMap::new();
        for meta in missing {
            let Some(raw) = known.get(&meta.location).and_then(|o| o.footer.as_ref()) else {
                continue;
            };
            // A footer too large to keep left its statistics instead.
            if let Some(groups) = quarry_lake::footer::read_statistics_blob(raw) {
                blobs.insert(meta.location.clone(), groups);
                continue;
            }
            // A footer that no longer decodes is simply read from the file instead.
            let Ok(md) = ParquetMetaDataReader::decode_metadata(raw) else {
                continue;
            };
            seeded += md.memory_size();
            if seeded > budget {
                break;
            }
            cache.put(
                &meta.location,
                CachedFileMetadataEntry::new(
                    meta.clone(),
                    Arc::new(CachedParquetMetaData::new(Arc::new(md))),
                ),
            );
        }
        Ok(blobs)
    }

    fn format(
        &self,
        state: &dyn Session,
        compression: FileCompressionType,
    ) -> Result<Arc<dyn FileFormat>> {
        let t = &self.table;
        Ok(match table_file_format(t) {
            // The session's Parquet settings (metadata size hint, pushdown, page index...).
            Some(CrawledFormat::Parquet) => {
                Arc::new(ParquetFormat::default().with_options(TableParquetOptions {
                    global: state.config_options().execution.parquet.clone(),
                    ..Default::default()
                }))
            }
            Some(CrawledFormat::Json) => {
                Arc::new(JsonFormat::default().with_file_compression_type(compression))
            }
            Some(CrawledFormat::Csv(d)) => Arc::new(
                CsvFormat::default()
                    .with_delimiter(d.delimiter)
                    .with_quote(d.quote)
                    .with_has_header(d.header)
                    .with_newlines_in_values(true)
                    // Hive's text SerDes read missing trailing fields as NULL (columns added
                    // with ALTER TABLE .. ADD COLUMNS after the files were written).
                    .with_truncated_rows(true)
                    .with_file_compression_type(compression),
            ),
            None => {
                return plan_err!(
                    "table {} has no known format ({:?}); re-crawl it",
                    t.qualified_name(),
                    t.parameters.get(keys::CLASSIFICATION)
                );
            }
        })
    }

    fn partition_values(&self, p: &Partition) -> Result<Vec<ScalarValue>> {
        self.partition_fields
            .iter()
            .zip(&p.values)
            .map(|(f, v)| match v {
                None => ScalarValue::try_from(f.data_type()),
                Some(v) => ScalarValue::try_from_string(v.clone(), f.data_type()).map_err(|e| {
                    DataFusionError::Plan(format!(
                        "partition value {}='{v}' of {} is not a {}: {e}",
                        f.name(),
                        self.table.qualified_name(),
                        f.data_type()
                    ))
                }),
            })
            .collect()
    }
}

/// Every data file below `prefix` (the crawler's rules: no hidden names, no empty objects).
async fn list_files(store: &Arc<dyn ObjectStore>, prefix: &Path) -> Result<Vec<ObjectMeta>> {
    quarry_lake::list_data_files(store, prefix)
        .await
        .map_err(|e| DataFusionError::ObjectStore(Box::new(e)))
}

/// Partitions listed at once by the per-partition listing.
const LIST_CONCURRENCY: usize = 16;

/// Whether one listing of the table beats one per partition: S3 returns 1,000 keys per LIST
/// page, pages of one listing come one after another, and per-partition listings run
/// [`LIST_CONCURRENCY`] at a time. Many small partitions (the usual `dt=/hr=` layout) list far
/// faster at once; a few partitions with thousands of objects each list faster in parallel.
/// Decided from the crawl's per-partition `objectCount`; without it, per partition.
fn list_once(partitions: &[Partition]) -> bool {
    let objects: Option<u64> = partitions.iter().map(|p| p.stat(keys::OBJECT_COUNT)).sum();
    let Some(objects) = objects else {
        return false;
    };
    let pages_at_once = objects.div_ceil(1000).max(1);
    let rounds_per_partition = (partitions.len() as u64).div_ceil(LIST_CONCURRENCY as u64);
    partitions.len() >= 2 && pages_at_once <= rounds_per_partition
}

/// The table's prefix and each partition's, when every partition lies below the table's
/// location in the same store (the usual Hive layout) and one listing is the faster way to
/// find their objects; `None` otherwise.
fn under_one_root(
    table_location: &str,
    partitions: &[Partition],
) -> Result<Option<(Path, Vec<Path>)>> {
    if !list_once(partitions) {
        return Ok(None);
    }
    let (store, root) = split_location(table_location)?;
    let below = |prefix: &Path| {
        root.as_ref().is_empty() || prefix.as_ref().starts_with(&format!("{}/", root.as_ref()))
    };
    let mut prefixes = Vec::with_capacity(partitions.len());
    for p in partitions {
        let (key, prefix) = split_location(&p.location)?;
        if key != store || !below(&prefix) {
            return Ok(None);
        }
        prefixes.push(prefix);
    }
    Ok(Some((root, prefixes)))
}

/// The data files of `partitions` from one recursive listing of `root`, which holds all of
/// them: one LIST (paged) instead of one per partition, far fewer requests on S3 and one walk
/// of a local folder. Each object belongs to the nearest enclosing partition folder, with the
/// crawler's rules below it (no hidden names, no empty objects); objects in no catalogued
/// partition are not part of the table, as a per-partition listing would never see them.
async fn list_under_root(
    store: &Arc<dyn ObjectStore>,
    root: &Path,
    partitions: Vec<Partition>,
    prefixes: &[Path],
) -> Result<Vec<(Partition, Vec<ObjectMeta>)>> {
    let index: HashMap<&str, usize> = prefixes
        .iter()
        .enumerate()
        .map(|(i, p)| (p.as_ref(), i))
        .collect();
    let mut files: Vec<Vec<ObjectMeta>> = vec![Vec::new(); partitions.len()];
    let mut listing = store.list(Some(root));
    while let Some(meta) = listing
        .try_next()
        .await
        .map_err(|e| DataFusionError::ObjectStore(Box::new(e)))?
    {
        let location = meta.location.as_ref();
        let mut end = location.len();
        while let Some(slash) = location[..end].rfind('/') {
            if let Some(&i) = index.get(&location[..slash]) {
                if quarry_lake::is_data_file(&meta, &location[slash + 1..]) {
                    files[i].push(meta);
                }
                break;
            }
            end = slash;
        }
    }
    Ok(partitions
        .into_iter()
        .zip(files)
        .map(|(p, mut f)| {
            f.sort_by(|a, b| a.location.cmp(&b.location));
            (p, f)
        })
        .collect())
}

/// `files` in at most `n` groups (one per thread), largest files first, cut where each group
/// has about an equal share of the bytes. DataFusion lets idle threads take the next unopened
/// file of any group, in group order, so the order is what balances the threads: a big file
/// met last (the newest partition of a growing table, in path order) kept one thread reading
/// while the others idled. Compressed files and CSV with line breaks in values cannot be split
/// into byte ranges, so a file is the smallest piece of work. Where files are not shared
/// (work stealing turned off), equal byte shares still balance the groups.
/// A file's statistics from the per-row-group statistics a large footer left in its bookmark
/// (see `quarry_lake::footer::statistics_blob`): exact rows and null counts, min / max as
/// estimates (value ranges are for planning; pruning reads the footer). Columns are matched to
/// `file_schema` by name and cast to its types; one without statistics is unknown.
fn statistics_from_groups(groups: &RecordBatch, file_schema: &Schema) -> Option<Statistics> {
    use datafusion::arrow::array::{Array, UInt64Array};
    let counts = |name: &str| -> Option<Vec<u64>> {
        let a = groups.column_by_name(name)?;
        let a = a.as_any().downcast_ref::<UInt64Array>()?;
        (a.null_count() == 0).then(|| a.values().to_vec())
    };
    let rows: u64 = counts("rows")?.iter().sum();
    let bound = |name: String, keep: std::cmp::Ordering| -> Precision<ScalarValue> {
        let Some(a) = groups.column_by_name(&name) else {
            return Precision::Absent;
        };
        let mut best: Option<ScalarValue> = None;
        for i in 0..a.len() {
            // A row group without a bound leaves the file without one.
            if a.is_null(i) {
                return Precision::Absent;
            }
            let Ok(v) = ScalarValue::try_from_array(a, i) else {
                return Precision::Absent;
            };
            best = match best {
                Some(b) if v.partial_cmp(&b) != Some(keep) => Some(b),
                _ => Some(v),
            };
        }
        best.map_or(Precision::Absent, Precision::Inexact)
    };
    let column_statistics = file_schema
        .fields()
        .iter()
        .map(|f| {
            let name = f.name();
            let cast = |p: Precision<ScalarValue>| match p {
                Precision::Inexact(v) => v
                    .cast_to(f.data_type())
                    .map_or(Precision::Absent, Precision::Inexact),
                _ => Precision::Absent,
            };
            ColumnStatistics {
                null_count: counts(&format!("nulls:{name}")).map_or(Precision::Absent, |n| {
                    Precision::Exact(n.iter().sum::<u64>() as usize)
                }),
                min_value: cast(bound(format!("min:{name}"), std::cmp::Ordering::Less)),
                max_value: cast(bound(format!("max:{name}"), std::cmp::Ordering::Greater)),
                ..ColumnStatistics::new_unknown()
            }
        })
        .collect();
    Some(Statistics {
        num_rows: Precision::Exact(rows as usize),
        total_byte_size: Precision::Absent,
        column_statistics,
    })
}

fn balanced_groups(mut files: Vec<PartitionedFile>, n: usize) -> Vec<Vec<PartitionedFile>> {
    files.sort_by(|a, b| {
        b.object_meta
            .size
            .cmp(&a.object_meta.size)
            .then_with(|| a.object_meta.location.cmp(&b.object_meta.location))
    });
    let n = n.max(1).min(files.len());
    let total: u64 = files.iter().map(|f| f.object_meta.size).sum();
    let mut groups: Vec<Vec<PartitionedFile>> = Vec::with_capacity(n);
    let (mut bytes, mut left) = (0u64, files.len());
    for f in files {
        // A new group when the middle of this file lies past the bytes of the groups so far,
        // or when every group still to fill needs one of the files left.
        let share = (total as u128 * groups.len() as u128 / n as u128) as u64;
        let middle = bytes + f.object_meta.size / 2;
        if groups.is_empty() || (groups.len() < n && (middle > share || left <= n - groups.len())) {
            groups.push(Vec::new());
        }
        bytes += f.object_meta.size;
        left -= 1;
        if let Some(g) = groups.last_mut() {
            g.push(f);
        }
    }
    groups
}

fn compression_type(c: &str) -> Option<FileCompressionType> {
    Some(match c {
        "none" => FileCompressionType::UNCOMPRESSED,
        "gzip" => FileCompressionType::GZIP,
        "bzip2" => FileCompressionType::BZIP2,
        "xz" => FileCompressionType::XZ,
        "zstd" => FileCompressionType::ZSTD,
        _ => return None,
    })
}

/// The compression of one object by its magic bytes (for partitions of mixed compression).
async fn sniff(store: &Arc<dyn ObjectStore>, meta: &ObjectMeta) -> Result<FileCompressionType> {
    let head = store
        .get_range(&meta.location, 0..meta.size.min(6))
        .await
        .map_err(|e| DataFusionError::ObjectStore(Box::new(e)))?;
    Ok(match Compression::detect(&head) {
        Compression::None => FileCompressionType::UNCOMPRESSED,
        Compression::Gzip => FileCompressionType::GZIP,
        Compression::Bzip2 => FileCompressionType::BZIP2,
        Compression::Xz => FileCompressionType::XZ,
        Compression::Zstd => FileCompressionType::ZSTD,
    })
}

#[async_trait]
impl TableProvider for QuarryTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        // Partition filters select partitions in the catalog; DataFusion still re-checks every
        // filter (partition values are constants per file, so that costs next to nothing), and
        // pushes the others into the file scan (Parquet row-group and page pruning).
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let t = &self.table;
        // Each scan reads through its own URL so that its bytes are metered on their own.
        let scan_id = {
            let mut log = self.scans.lock().unwrap_or_else(|p| p.into_inner());
            log.push(ScanInfo::default());
            log.len() - 1
        };
        let (store_key, _) = split_location(&t.storage.location)?;
        let url = ObjectStoreUrl::parse(scan_url(&store_key, scan_id))?;
        let store = state.runtime_env().object_store(&url)?;

        let keys: Vec<String> = t.partition_keys.iter().map(|k| k.name.clone()).collect();
        // Every partition of a partitioned table (no filter on its keys).
        let mut whole_table = false;
        let mut projected = false;
        let (partitions, total) = if keys.is_empty() {
            let whole = Partition {
                values: Vec::new(),
                location: t.storage.location.clone(),
                parameters: t.parameters.clone(),
                create_time: t.create_time,
                update_time: t.update_time,
                version: 0,
            };
            (vec![whole], Some(1))
        } else if let Some(projection) = Projection::of(t, chrono::Utc::now())
            .map_err(|e| DataFusionError::Plan(e.to_string()))?
        {
            // Athena's partition projection: partitions from the table's properties and the
            // filter; the catalog's registered partitions are not read.
            let filter = partition_filter(filters, &keys);
            let selection = projection
                .partitions(&filter)
                .map_err(|e| DataFusionError::Plan(e.to_string()))?;
            projected = true;
            for p in &selection.partitions {
                let (key, _) = split_location(&p.location)?;
                if key != store_key {
                    return plan_err!(
                        "table {}: projected partition {} is not in the store of the table's \
                         LOCATION {}; keep storage.location.template in the same bucket",
                        t.qualified_name(),
                        p.location,
                        t.storage.location
                    );
                }
            }
            (selection.partitions, Some(selection.considered))
        } else {
            let filter = partition_filter(filters, &keys);
            let selected = self
                .catalog
                .get_partitions(&t.database, &t.name, &filter)
                .await
                .map_err(external)?;
            whole_table = filter.is_all();
            let total = if filter.is_all() {
                Some(selected.len() as u64)
            } else if self.catalog.counts_partitions_cheaply() {
                Some(
                    self.catalog
                        .count_partitions(&t.database, &t.name)
                        .await
                        .map_err(external)?,
                )
            } else {
                // Counting would read every partition of the table (Glue): not per query.
                None
            };
            (selected, total)
        };

        let one_root = if whole_table {
            under_one_root(&t.storage.location, &partitions)?
        } else {
            None
        };
        let listed = match one_root {
            Some((root, prefixes)) => list_under_root(&store, &root, partitions, &prefixes).await?,
            None => {
                stream::iter(partitions)
                    .map(|p| {
                        let store = Arc::clone(&store);
                        async move {
                            let (_, prefix) = split_location(&p.location)?;
                            let files = list_files(&store, &prefix).await?;
                            Ok::<_, DataFusionError>((p, files))
                        }
                    })
                    .buffered(LIST_CONCURRENCY)
                    .try_collect()
                    .await?
            }
        };

        // A job's bookmark: only objects no earlier successful run processed.
        let listed: Vec<(Partition, Vec<ObjectMeta>)> = match &self.job {
            None => listed,
            Some(job) => {
                let name = t.qualified_name();
                listed
                    .into_iter()
                    .map(|(p, files)| {
                        let files = files
                            .into_iter()
                            .filter(|m| {
                                let url = format!("{store_key}/{}", m.location);
                                job.reads(&name, &url, &fingerprint(m))
                            })
                            .collect();
                        (p, files)
                    })
                    .collect()
            }
        };
        // Files a write published but has not committed (its intent is open, or its process died
        // before the commit) are not part of the table yet. The intents are read after the
        // listing: a listed file's intent was recorded before the file was published, so it is
        // still open here unless the write has committed since (then the file is the table's).
        let uncommitted = self.catalog.uncommitted_objects().await.map_err(external)?;
        let listed: Vec<(Partition, Vec<ObjectMeta>)> = if uncommitted.is_empty() {
            listed
        } else {
            listed
                .into_iter()
                .map(|(p, files)| {
                    let files = files
                        .into_iter()
                        .filter(|m| !uncommitted.contains(&format!("{store_key}/{}", m.location)))
                        .collect();
                    (p, files)
                })
                .collect()
        };
        let parquet = matches!(table_file_format(t), Some(CrawledFormat::Parquet));
        let mut info = ScanInfo {
            table: t.qualified_name(),
            partitions_total: total,
            partitions_selected: listed.len() as u64,
            projected,
            ..Default::default()
        };
        let mut by_compression: Vec<(FileCompressionType, Vec<PartitionedFile>)> = Vec::new();
        let mut all_files = Vec::new();
        for (p, files) in listed {
            info.listed_prefixes.push(p.location.clone());
            let values = self.partition_values(&p)?;
            let declared = p
                .parameters
                .get(keys::COMPRESSION_TYPE)
                .or_else(|| t.parameters.get(keys::COMPRESSION_TYPE))
                .and_then(|c| compression_type(c));
            for meta in files {
                info.files += 1;
                info.bytes += meta.size;
                let compression = match (parquet, declared) {
                    (true, _) => FileCompressionType::UNCOMPRESSED,
                    (false, Some(c)) => c,
                    (false, None) => sniff(&store, &meta).await?,
                };
                all_files.push(meta.clone());
                let file =
                    PartitionedFile::new_from_meta(meta).with_partition_values(values.clone());
                match by_compression.iter_mut().find(|(c, _)| *c == compression) {
                    Some((_, v)) => v.push(file),
                    None => by_compression.push((compression, vec![file])),
                }
            }
        }
        info.scan_id = scan_id;
        // Parquet row counts recorded by the crawl (from footers), trusted only for files whose
        // size and ETag / mtime still match: with every file's count known, DataFusion answers
        // COUNT(*) from statistics without reading anything. Any filter makes the counts
        // inexact, so filtered scans skip the lookup.
        let exact_rows = if parquet && filters.is_empty() {
            self.exact_rows(&store_key, &all_files).await?
        } else {
            None
        };
        // A scan that projects no column and whose row count is exact is answered from
        // statistics (COUNT(*)) and opens no file: its footers are not needed.
        let from_statistics = exact_rows.is_some() && projection.is_some_and(|p| p.is_empty());
        if parquet && !from_statistics {
            let blobs = self.seed_footers(state, &store_key, &all_files).await?;
            self.attach_file_statistics(state, &mut by_compression, &blobs);
        }

        let predicate = match conjunction(filters.to_vec()) {
            Some(expr) => {
                let df_schema = DFSchema::try_from(self.schema.as_ref().clone())?;
                state.create_physical_expr(expr, &df_schema).ok()
            }
            None => None,
        };
        info.versions = Arc::new(
            all_files
                .iter()
                .filter_map(|m| Some((m.location.clone(), m.e_tag.clone()?)))
                .collect(),
        );
        info.dry_run = Some(Arc::new(DryRunInput {
            store: Arc::clone(&store),
            files: all_files,
            parquet,
            predicate,
            table_schema: Arc::clone(&self.schema),
            metadata_size_hint: state
                .config_options()
                .execution
                .parquet
                .metadata_size_hint
                .map(|h| h as u64),
            metadata_cache: state.runtime_env().cache_manager.get_file_metadata_cache(),
        }));
        self.scans.lock().unwrap_or_else(|p| p.into_inner())[scan_id] = info;

        // What ANALYZE kept, for what the files do not tell (CSV / JSON rows and value ranges,
        // distinct counts): estimates. Looked up only for analyzed tables; statistics that
        // cannot be read only make the plan less informed.
        let analyzed = match t.parameters.contains_key(keys::ANALYZED) {
            true => {
                let names: Vec<String> = self
                    .schema
                    .fields()
                    .iter()
                    .map(|f| f.name().clone())
                    .collect();
                self.catalog
                    .column_statistics(&t.database, &t.name, &names)
                    .await
                    .ok()
                    .map(|kept| crate::analyze::planner_columns(t, &self.schema, &kept))
            }
            false => None,
        };
        let row_size = t
            .parameters
            .get(keys::AVERAGE_RECORD_SIZE)
            .and_then(|s| s.parse::<u64>().ok())
            .filter(|s| *s > 0);
        let target = state.config_options().execution.target_partitions.max(1);
        let mut plans: Vec<Arc<dyn ExecutionPlan>> = Vec::new();
        for (compression, files) in by_compression {
            let bytes: u64 = files.iter().map(|f| f.object_meta.size).sum();
            let format = self.format(state, compression)?;
            let table_schema = TableSchema::builder(Arc::clone(&self.file_schema))
                .with_table_partition_cols(self.partition_fields.clone())
                .build();
            let full_schema = Arc::clone(table_schema.table_schema());
            let groups: Vec<FileGroup> = balanced_groups(files, target)
                .into_iter()
                .map(FileGroup::new)
                .collect();
            // The planner's statistics, as DataFusion's listing table gives them: merged from
            // every file's footer statistics (rows, sizes, min / max / null counts per column,
            // partition columns from their values). A filtered scan reports them inexact. When
            // a file has none (its footer is not at hand), the crawl's exact row count, if any.
            let with_footers = groups
                .iter()
                .all(|g| g.iter().all(|f| f.statistics.is_some()));
            let (groups, statistics) = if parquet && with_footers && !from_statistics {
                let (groups, stats) =
                    compute_all_files_statistics(groups, Arc::clone(&full_schema), true, false)?;
                (groups, Some(stats))
            } else {
                let exact = exact_rows.map(|rows| Statistics {
                    num_rows: Precision::Exact(rows as usize),
                    total_byte_size: Precision::Absent,
                    column_statistics: Statistics::unknown_column(&full_schema),
                });
                (groups, exact)
            };
            let statistics = match &analyzed {
                None => statistics,
                Some(kept) => {
                    let mut s = statistics.unwrap_or_else(|| Statistics::new_unknown(&full_schema));
                    if s.num_rows == Precision::Absent
                        && let Some(size) = row_size
                    {
                        s.num_rows = Precision::Inexact((bytes / size) as usize);
                    }
                    for (column, kept) in s.column_statistics.iter_mut().zip(kept) {
                        if let Some(kept) = kept {
                            crate::analyze::fill(column, kept);
                        }
                    }
                    Some(s)
                }
            };
            let mut builder =
                FileScanConfigBuilder::new(url.clone(), format.file_source(table_schema))
                    .with_file_groups(groups)
                    .with_projection_indices(projection.cloned())?
                    .with_limit(limit);
            if let Some(statistics) = statistics {
                builder = builder.with_statistics(statistics);
            }
            let config = builder.build();
            let plan = format.create_physical_plan(state, config).await?;
            plans.push(crate::reader::read_as_athena(plan, &store_key, !parquet));
        }
        match plans.len() {
            0 => {
                let projected = match projection {
                    Some(p) => Arc::new(self.schema.project(p)?),
                    None => Arc::clone(&self.schema),
                };
                Ok(Arc::new(EmptyExec::new(projected)))
            }
            1 => Ok(plans.remove(0)),
            _ => UnionExec::try_new(plans),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partitions(n: usize, objects: Option<u64>) -> Vec<Partition> {
        (0..n)
            .map(|i| Partition {
                values: vec![Some(i.to_string())],
                location: format!("s3://b/t/k={i}/"),
                parameters: objects
                    .map(|o| (keys::OBJECT_COUNT.to_string(), o.to_string()))
                    .into_iter()
                    .collect(),
                create_time: chrono::Utc::now(),
                update_time: chrono::Utc::now(),
                version: 1,
            })
            .collect()
    }

    #[test]
    fn file_statistics_are_derived_once_per_table_version_and_object_version() {
        let cache = FileStatsCache::default();
        let t = chrono::Utc::now();
        let key = |version: u64, size: u64| {
            (
                "db.t".to_string(),
                version,
                true,
                Path::from("t/k=1/a.parquet"),
                size,
                t,
            )
        };
        let computed = std::cell::Cell::new(0);
        let compute = || {
            computed.set(computed.get() + 1);
            Some(Statistics::new_unknown(&Schema::empty()))
        };
        assert!(cache.get_or_compute(key(1, 10), compute).is_some());
        assert!(cache.get_or_compute(key(1, 10), compute).is_some());
        assert_eq!(computed.get(), 1, "the second statement reuses them");
        cache.get_or_compute(key(1, 11), compute);
        cache.get_or_compute(key(2, 10), compute);
        assert_eq!(
            computed.get(),
            3,
            "a rewritten object or a changed table: derived again"
        );
        assert!(cache.get_or_compute(key(3, 10), || None).is_none());
        assert_eq!(cache.len(), 3, "failures are not kept");
    }

    /// Files largest first, whatever their paths, in groups of equal byte shares; every file in
    /// exactly one group, and never more groups than files.
    #[test]
    fn file_groups_put_big_files_first_and_share_bytes() {
        let file = |name: &str, size: u64| {
            PartitionedFile::new_from_meta(ObjectMeta {
                location: Path::from(name),
                last_modified: chrono::Utc::now(),
                size,
                e_tag: None,
                version: None,
            })
        };
        let sizes = |groups: &[Vec<PartitionedFile>]| -> Vec<Vec<u64>> {
            groups
                .iter()
                .map(|g| g.iter().map(|f| f.object_meta.size).collect())
                .collect()
        };
        // The newest partition of a growing table is the biggest and comes last by path.
        let mut files: Vec<PartitionedFile> = (1..=20)
            .map(|i| file(&format!("t/day={i:02}/f.csv.gz"), 50))
            .collect();
        files.push(file("t/day=21/f.csv.gz", 1000));
        let groups = balanced_groups(files.clone(), 2);
        assert_eq!(sizes(&groups), vec![vec![1000], vec![50; 20]]);
        assert_eq!(
            groups[1][0].object_meta.location.as_ref(),
            "t/day=01/f.csv.gz"
        );

        let uneven: Vec<PartitionedFile> = [70, 10, 30, 20, 40, 50, 60]
            .iter()
            .enumerate()
            .map(|(i, s)| file(&format!("t/p={i}/f"), *s))
            .collect();
        assert_eq!(
            sizes(&balanced_groups(uneven.clone(), 2)),
            vec![vec![70, 60], vec![50, 40, 30, 20, 10]]
        );
        assert_eq!(
            sizes(&balanced_groups(uneven.clone(), 3)),
            vec![vec![70], vec![60, 50], vec![40, 30, 20, 10]]
        );
        // As many groups as files at most, each with a file; no files, no group.
        assert_eq!(
            sizes(&balanced_groups(uneven[..2].to_vec(), 4)),
            vec![vec![70], vec![10]]
        );
        assert_eq!(sizes(&balanced_groups(uneven.clone(), 7)).len(), 7);
        assert!(balanced_groups(Vec::new(), 4).is_empty());
        assert_eq!(balanced_groups(files, 0).len(), 1);
    }

    #[test]
    fn one_listing_for_many_small_partitions_parallel_listings_for_big_ones() {
        // 84 one-file partitions: 1 page at once against 6 rounds of 16.
        assert!(list_once(&partitions(84, Some(1))));
        // 100,000 one-file partitions: 100 pages against 6,250 rounds.
        assert!(list_once(&partitions(100_000, Some(1))));
        // 100 partitions of 10,000 objects: 1,000 pages against 7 rounds.
        assert!(!list_once(&partitions(100, Some(10_000))));
        // Unknown counts (tables from DDL), or a single partition: per partition.
        assert!(!list_once(&partitions(84, None)));
        assert!(!list_once(&partitions(1, Some(1))));
        let roots = under_one_root("s3://b/t/", &partitions(3, Some(2))).unwrap();
        assert_eq!(
            roots.map(|(r, p)| (r.to_string(), p.len())),
            Some(("t".to_string(), 3))
        );
        assert_eq!(
            under_one_root("s3://b/other/", &partitions(3, Some(2))).unwrap(),
            None,
            "a partition outside the table's location"
        );
    }
}
