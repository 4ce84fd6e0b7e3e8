//! Compaction: rewrite a table's small files into files of the target size.
//!
//! Each partition (or an unpartitioned table) is rewritten into a new hidden folder beside
//! its files (`<partition>/_compacted-<run>/`), then the catalog switches the partition's (or
//! table's) location to it in one commit that checks the version it read: a query sees the old
//! files or the new, never both or neither. The replaced files are deleted after a grace
//! period, so queries that listed them before the switch can finish reading them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::prelude::{SessionContext, col};
use futures::StreamExt;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};
use quarry_catalog::types::from_hive;
use quarry_catalog::{
    Catalog, CatalogWrite, Partition, PartitionFilter, PartitionWrite, SqliteCatalog, Table,
    TableWrite, keys,
};
use quarry_lake::format::{FileFormat, storage_for};
use quarry_lake::stats::Stats;
use quarry_lake::{ObjectStores, TableWriter, WriteCompression, folder_url};
use quarry_query::{EngineConfig, Meter, table_write_options};

use crate::error::{Error, Result};
use crate::run::{Progress, ProgressFn};

/// The hidden folder name compacted files go to.
pub const COMPACTED_PREFIX: &str = "_compacted-";

/// What to compact and how.
#[derive(Clone)]
pub struct CompactOptions {
    pub target_file_size: u64,
    /// Sort each partition's rows by these columns.
    pub sort: Vec<String>,
    /// Rewrite CSV / JSON tables as Parquet (every partition, one commit).
    pub convert: bool,
    /// A partition is compacted when it has at least this many files smaller than 75 % of
    /// the target size (Glue's optimizer uses the same 75 % rule).
    pub min_files: usize,
    /// Only partitions with these values.
    pub partition: BTreeMap<String, String>,
    /// How long replaced files stay for readers.
    pub grace: Duration,
    pub progress: Option<ProgressFn>,
}

impl Default for CompactOptions {
    fn default() -> Self {
        Self {
            target_file_size: 128 << 20,
            sort: Vec::new(),
            convert: false,
            min_files: 2,
            partition: BTreeMap::new(),
            grace: Duration::from_secs(3600),
            progress: None,
        }
    }
}

/// What a compaction did.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct CompactReport {
    pub table: String,
    pub partitions_compacted: u64,
    pub partitions_skipped: u64,
    pub files_before: u64,
    pub files_after: u64,
    pub bytes_before: u64,
    pub bytes_after: u64,
    pub rows: u64,
    /// Partitions left alone because a job's uncommitted write is in them.
    pub partitions_busy: u64,
    /// Files that landed in a compacted partition's old folder during the compaction: not part
    /// of the table (its partition now reads the new folder). Add them with INSERT, or move
    /// them into the new folder.
    pub late_files: Vec<String>,
    /// Replaced files deleted now (their grace period had passed).
    pub retired_deleted: u64,
}

impl std::fmt::Display for CompactReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{}: {} partition(s) compacted, {} left as they were",
            self.table, self.partitions_compacted, self.partitions_skipped
        )?;
        writeln!(
            f,
            "  files: {} -> {}   bytes: {} -> {}   rows: {}",
            self.files_before,
            self.files_after,
            quarry_query::billing::human_bytes(self.bytes_before),
            quarry_query::billing::human_bytes(self.bytes_after),
            self.rows
        )?;
        if self.partitions_busy > 0 {
            writeln!(
                f,
                "  {} partition(s) hold a job's uncommitted write and were left for later",
                self.partitions_busy
            )?;
        }
        if !self.late_files.is_empty() {
            writeln!(
                f,
                "  warning: {} file(s) landed in the old folders during the compaction and are not part of the table: {}",
                self.late_files.len(),
                self.late_files.join(", ")
            )?;
        }
        Ok(())
    }
}

/// One partition (or the whole unpartitioned table) to rewrite.
struct Unit {
    partition: Option<Partition>,
    location: String,
    files: Vec<ObjectMeta>,
}

/// The folder a partition's data lives in, before any compaction moved it into a
/// `_compacted-*` subfolder.
fn home_folder(location: &str) -> String {
    let folder = folder_url(location);
    let trimmed = folder.trim_end_matches('/');
    match trimmed.rsplit_once('/') {
        Some((parent, last)) if last.starts_with(COMPACTED_PREFIX) => format!("{parent}/"),
        _ => folder,
    }
}

/// Data files below `prefix` (the scan's rules), errors naming `url`.
async fn data_files(
    store: &Arc<dyn ObjectStore>,
    prefix: &Path,
    url: &str,
) -> Result<Vec<ObjectMeta>> {
    quarry_lake::list_data_files(store, prefix)
        .await
        .map_err(|source| {
            Error::Lake(quarry_lake::Error::Object {
                operation: "listing",
                url: url.to_string(),
                source,
            })
        })
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// Compact `table` (`db.table`). Replaced files are recorded in `store` and deleted once their
/// grace period passes (by this or a later compaction, or at once with a zero grace).
pub async fn compact(
    catalog: &Arc<dyn Catalog>,
    stores: &Arc<ObjectStores>,
    store: &Arc<SqliteCatalog>,
    config: &EngineConfig,
    table: &str,
    options: &CompactOptions,
    run_id: &str,
) -> Result<CompactReport> {
    let bad = |reason: String| Error::Compact {
        table: table.to_string(),
        reason,
    };
    let (db, name) = table
        .split_once('.')
        .ok_or_else(|| bad("name the table as database.table".into()))?;
    let t = catalog
        .get_table(db, name)
        .await?
        .ok_or_else(|| bad("no such table; `quarry tables` lists them".into()))?;
    let mut report = CompactReport {
        table: t.qualified_name(),
        ..Default::default()
    };
    // Rewritten files get new names: jobs reading the table through bookmarks would read
    // every row again.
    let readers = store.jobs_bookmarking(&t.qualified_name())?;
    if !readers.is_empty() {
        return Err(bad(format!(
            "jobs {} read this table through their bookmarks; compacting it would make them process every row again (compact the tables they write instead, or reset their bookmarks on purpose)",
            readers.join(", ")
        )));
    }
    // Files a job published but has not committed (it may have died): not part of the
    // table yet, so a partition holding one is left for a later compaction.
    let in_flight: std::collections::HashSet<String> = store
        .all_write_intents()?
        .into_iter()
        .flat_map(|i| i.published)
        .collect();
    report.retired_deleted = delete_due(stores, store).await?;
    let progress = |m: String| {
        if let Some(p) = &options.progress {
            p(Progress::Step(m));
        }
    };

    let current = table_write_options(&t, options.target_file_size)?;
    let converting = options.convert && !matches!(current.format, FileFormat::Parquet);
    if converting && !options.partition.is_empty() {
        return Err(bad(
            "--convert changes the whole table's format: it compacts every partition (drop the partition filter)"
                .into(),
        ));
    }
    let write_options = if converting {
        quarry_lake::WriteOptions::new(FileFormat::Parquet, WriteCompression::Snappy)
            .with_target_file_size(options.target_file_size)
    } else {
        current.clone()
    };

    // What to rewrite.
    let key_names: Vec<String> = t.partition_keys.iter().map(|k| k.name.clone()).collect();
    let mut units = Vec::new();
    if key_names.is_empty() {
        if !options.partition.is_empty() {
            return Err(bad("the table has no partitions to filter on".into()));
        }
        units.push(Unit {
            partition: None,
            location: t.storage.location.clone(),
            files: Vec::new(),
        });
    } else {
        let mut filter = PartitionFilter::all();
        for (k, v) in &options.partition {
            t.partition_key_index(k)?;
            filter = filter.eq(k, v);
        }
        for p in catalog.get_partitions(db, name, &filter).await? {
            units.push(Unit {
                location: p.location.clone(),
                partition: Some(p),
                files: Vec::new(),
            });
        }
    }
    let small = options.target_file_size.saturating_mul(3) / 4;
    let mut todo = Vec::new();
    for mut u in units {
        let (s, prefix) = stores.resolve(&folder_url(&u.location))?;
        u.files = data_files(&s, &prefix, &folder_url(&u.location)).await?;
        let folder = folder_url(&u.location);
        let busy = u.files.iter().any(|f| {
            let rel = f
                .location
                .as_ref()
                .strip_prefix(prefix.as_ref())
                .unwrap_or(f.location.as_ref())
                .trim_start_matches('/');
            in_flight.contains(&format!("{folder}{rel}"))
        });
        if busy {
            report.partitions_skipped += 1;
            report.partitions_busy += 1;
            continue;
        }
        let small_files = u.files.iter().filter(|f| f.size < small).count();
        if u.files.is_empty() || (!converting && small_files < options.min_files.max(2)) {
            report.partitions_skipped += 1;
            continue;
        }
        todo.push(u);
    }
    if todo.is_empty() {
        return Ok(report);
    }

    // Read through the engine (the table's own format, dialect and types).
    let engine = quarry_query::Engine::new(Arc::clone(catalog), Arc::clone(stores), config.clone());
    // A new folder on every call, whatever the run: a retried compaction must never write
    // over the folder it reads.
    let _ = run_id;
    let tag: String = uuid::Uuid::new_v4()
        .simple()
        .to_string()
        .chars()
        .take(12)
        .collect();
    let mut done: Vec<(Unit, String, Stats, Vec<String>)> = Vec::new();
    let mut first_error = None;
    let total = todo.len();
    for (i, u) in todo.into_iter().enumerate() {
        progress(format!(
            "partition {}/{total}: {} files at {}",
            i + 1,
            u.files.len(),
            u.location
        ));
        match rewrite(
            &engine,
            &t,
            &u,
            &key_names,
            &options.sort,
            &write_options,
            stores,
            &tag,
        )
        .await
        {
            Ok((new_location, stats, urls, read)) => {
                let mut u = u;
                // Exactly what the rewrite read is replaced (not what was listed before it).
                u.files = read;
                done.push((u, new_location, stats, urls))
            }
            Err(e) => {
                first_error = Some(e);
                break;
            }
        }
    }
    let cleanup = |done: &Vec<(Unit, String, Stats, Vec<String>)>| {
        let done: Vec<String> = done.iter().flat_map(|d| d.3.clone()).collect();
        async move {
            for url in done {
                if let Ok((s, p)) = stores.resolve(&url) {
                    let _ = s.delete(&p).await;
                }
            }
        }
    };
    if let Some(e) = first_error {
        cleanup(&done).await;
        return Err(e);
    }

    // One commit: every switched location checks the version it read.
    let now = Utc::now();
    let mut write = CatalogWrite::default();
    let mut table_after: Option<Table> = None;
    // The table's statistics follow its partitions': fewer, larger objects.
    let mut delta = Stats::default();
    for (u, new_location, stats, _) in &done {
        match &u.partition {
            Some(p) => {
                delta.add(stats);
                delta.sub(&Stats::read(&p.parameters));
                let mut p2 = p.clone();
                p2.location = new_location.clone();
                stats.write(&mut p2.parameters);
                p2.parameters.insert(
                    keys::COMPRESSION_TYPE.into(),
                    write_options.compression.as_str().into(),
                );
                p2.update_time = now;
                write.partitions.push(PartitionWrite {
                    database: t.database.clone(),
                    table: t.name.clone(),
                    partition: p2,
                    expected_version: Some(p.version),
                });
            }
            None => {
                let mut t2 = t.clone();
                t2.storage.location = new_location.clone();
                stats.write(&mut t2.parameters);
                table_after = Some(t2);
            }
        }
    }
    let keeps_stats = t.parameters.contains_key(keys::OBJECT_COUNT);
    if keeps_stats && table_after.is_none() {
        let mut t2 = t.clone();
        let mut s = Stats::read(&t2.parameters);
        s.add(&delta);
        s.write(&mut t2.parameters);
        table_after = Some(t2);
    }
    if converting || table_after.is_some() {
        let mut t2 = table_after.unwrap_or_else(|| t.clone());
        if converting {
            let (input, output, serde) = storage_for(FileFormat::Parquet, &mut t2.parameters);
            t2.storage.input_format = input.into();
            t2.storage.output_format = output.into();
            t2.storage.serde_info = serde;
            t2.storage.compressed = false;
            t2.parameters.remove(keys::SKIP_HEADER);
            t2.parameters.remove(keys::DELIMITER);
        }
        t2.parameters.insert(
            keys::COMPRESSION_TYPE.into(),
            write_options.compression.as_str().into(),
        );
        t2.update_time = now;
        write.tables.push(TableWrite {
            table: t2,
            expected_version: Some(t.version),
        });
    }
    write.forget_objects = done
        .iter()
        .flat_map(|(u, _, _, _)| {
            let folder = folder_url(&u.location);
            let key = quarry_lake::split_location(&folder)
                .map(|(k, _)| k)
                .unwrap_or_default();
            u.files
                .iter()
                .map(move |f| format!("{key}/{}", f.location))
                .collect::<Vec<_>>()
        })
        .collect();
    if let Err(e) = catalog.commit(write).await {
        cleanup(&done).await;
        return Err(match e {
            quarry_catalog::Error::Conflict { .. } => bad(format!(
                "{e}: another writer changed the table during the compaction; nothing was switched, run it again"
            )),
            other => Error::Catalog(other),
        });
    }

    // Switched. Files that landed in an old folder meanwhile move to the new one; the
    // replaced files go after the grace period.
    let mut retired = Vec::new();
    for (u, new_location, stats, urls) in &done {
        report.partitions_compacted += 1;
        report.files_before += u.files.len() as u64;
        report.bytes_before += u.files.iter().map(|f| f.size).sum::<u64>();
        report.files_after += urls.len() as u64;
        report.bytes_after += stats.bytes.max(0) as u64;
        report.rows += stats.rows.max(0) as u64;
        let (s, prefix) = stores.resolve(&folder_url(&u.location))?;
        let base = folder_url(&u.location);
        let old: std::collections::HashSet<&Path> = u.files.iter().map(|f| &f.location).collect();
        for f in &u.files {
            retired.push(format!(
                "{}{}",
                base,
                f.location
                    .as_ref()
                    .strip_prefix(prefix.as_ref())
                    .unwrap_or(f.location.as_ref())
                    .trim_start_matches('/')
            ));
        }
        for late in data_files(&s, &prefix, &base)
            .await?
            .into_iter()
            .filter(|f| !old.contains(&f.location))
        {
            let key = quarry_lake::split_location(&base)
                .map(|(k, _)| k)
                .unwrap_or_default();
            report.late_files.push(format!("{key}/{}", late.location));
        }
        let _ = new_location;
    }
    let due = chrono::Duration::from_std(options.grace)
        .ok()
        .and_then(|g| now.checked_add_signed(g))
        .unwrap_or(chrono::DateTime::<Utc>::MAX_UTC);
    store.retire_files(&retired, due)?;
    if options.grace.is_zero() {
        report.retired_deleted += delete_due(stores, store).await?;
    }
    Ok(report)
}

/// Rewrite one unit into `<home>/_compacted-<tag>/`; returns the new location, the written
/// statistics and the URLs of the new files (published, not yet in the catalog).
#[allow(clippy::too_many_arguments)]
async fn rewrite(
    engine: &quarry_query::Engine,
    t: &Table,
    u: &Unit,
    key_names: &[String],
    sort: &[String],
    options: &quarry_lake::WriteOptions,
    stores: &Arc<ObjectStores>,
    tag: &str,
) -> Result<(String, Stats, Vec<String>, Vec<ObjectMeta>)> {
    let table = t.qualified_name();
    let meter = Meter::new(None);
    let scans: quarry_query::provider::ScanLog = Arc::default();
    let ctx: SessionContext = engine
        .context(Some(&t.database), &meter, &scans)
        .await
        .map_err(|e| Error::Query(e.into()))?;
    let mut sql = format!(
        "SELECT {} FROM {}.{}",
        t.storage
            .columns
            .iter()
            .map(|c| quote(&c.name))
            .collect::<Vec<_>>()
            .join(", "),
        quote(&t.database),
        quote(&t.name)
    );
    if let Some(p) = &u.partition {
        let conds: Vec<String> = key_names
            .iter()
            .zip(&p.values)
            .map(|(k, v)| match v {
                None => format!("{} IS NULL", quote(k)),
                Some(v) => format!("{} = {}", quote(k), literal(v)),
            })
            .collect();
        sql.push_str(&format!(" WHERE {}", conds.join(" AND ")));
    }
    if !sort.is_empty() {
        sql.push_str(&format!(
            " ORDER BY {}",
            sort.iter().map(|c| quote(c)).collect::<Vec<_>>().join(", ")
        ));
    }
    let df = ctx.sql(&sql).await.map_err(|e| Error::Compact {
        table: table.clone(),
        reason: format!("reading {}: {e}", u.location),
    })?;
    // The catalog's types, whatever the reader produced (view types).
    let mut exprs = Vec::new();
    let mut fields = Vec::new();
    for c in &t.storage.columns {
        let ty = from_hive(&c.data_type)?;
        exprs.push(datafusion::logical_expr::cast(col(quote(&c.name)), ty.clone()).alias(&c.name));
        fields.push(Field::new(&c.name, ty, true));
    }
    let df = df.select(exprs).map_err(|e| Error::Compact {
        table: table.clone(),
        reason: e.to_string(),
    })?;
    let schema: SchemaRef = Arc::new(Schema::new(fields));
    let new_location = format!("{}{COMPACTED_PREFIX}{tag}/", home_folder(&u.location));
    if folder_url(&new_location) == folder_url(&u.location) {
        return Err(Error::Compact {
            table,
            reason: format!("the new folder {new_location} is the one being compacted"),
        });
    }
    let (store, root) = stores.resolve(&new_location)?;
    let (key, _) = quarry_lake::split_location(&new_location)?;
    let base = format!("{key}/");
    let mut writer = TableWriter::try_new(
        Arc::clone(&store),
        &base,
        root,
        &schema,
        Vec::new(),
        options.clone(),
        format!("compact-{tag}"),
    )?;
    let mut stream = df.execute_stream().await.map_err(|e| Error::Compact {
        table: table.clone(),
        reason: format!("reading {}: {e}", u.location),
    })?;
    while let Some(batch) = stream.next().await {
        let batch = match batch {
            Ok(b) => b,
            Err(e) => {
                writer.abort().await;
                return Err(Error::Compact {
                    table,
                    reason: format!("reading {}: {e}", u.location),
                });
            }
        };
        let batch = batch
            .with_schema(Arc::clone(&schema))
            .map_err(|e| Error::Compact {
                table: table.clone(),
                reason: e.to_string(),
            })?;
        if let Err(e) = writer.write(&batch).await {
            writer.abort().await;
            return Err(e.into());
        }
    }
    let staged = writer.finish().await?;
    staged.publish().await?;
    let mut stats = Stats::default();
    let mut urls = Vec::new();
    for f in &staged.files {
        stats.add(&Stats::of(f.bytes, Some(f.rows), 1));
        urls.push(staged.url(f));
    }
    let read: Vec<ObjectMeta> = scans
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .filter_map(|s| s.dry_run.as_ref())
        .flat_map(|d| d.files.clone())
        .collect();
    Ok((new_location, stats, urls, read))
}

/// Delete replaced files whose grace period has passed; returns how many.
pub async fn delete_due(stores: &Arc<ObjectStores>, store: &Arc<SqliteCatalog>) -> Result<u64> {
    let mut deleted = 0;
    loop {
        let due = store.due_retired_files(Utc::now(), 1000)?;
        if due.is_empty() {
            return Ok(deleted);
        }
        let mut gone = Vec::new();
        for url in due {
            let (s, p) = stores.resolve(&url)?;
            match s.delete(&p).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {
                    deleted += 1;
                    gone.push(url);
                }
                Err(source) => {
                    store.forget_retired_files(&gone)?;
                    return Err(Error::Lake(quarry_lake::Error::Object {
                        operation: "deleting a replaced file",
                        url,
                        source,
                    }));
                }
            }
        }
        store.forget_retired_files(&gone)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_compacted_partition_is_rewritten_beside_its_first_folder() {
        assert_eq!(home_folder("s3://b/t/dt=1/"), "s3://b/t/dt=1/");
        assert_eq!(home_folder("s3://b/t/dt=1"), "s3://b/t/dt=1/");
        assert_eq!(
            home_folder("s3://b/t/dt=1/_compacted-abc/"),
            "s3://b/t/dt=1/"
        );
        assert_eq!(home_folder("file:///l/t/_compacted-x"), "file:///l/t/");
    }
}
