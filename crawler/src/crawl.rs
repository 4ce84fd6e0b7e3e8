//! The crawl: list, skip what was seen, inspect what is new, group, plan the catalog change
//! against the current catalog, and write it in one transaction (re-planned on conflict).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use arrow_schema::Field;
use chrono::Utc;
use futures::{StreamExt, TryStreamExt, stream};
use globset::{Glob, GlobSet, GlobSetBuilder};
use object_store::{ObjectMeta, ObjectStore};
use quarry_catalog::types::{from_hive, to_hive};
use quarry_catalog::{
    Catalog, CatalogWrite, Column, Database, KeyPredicate, Partition, PartitionFilter,
    PartitionWrite, SeenObject, SerDeInfo, StorageDescriptor, Table, TableWrite, keys,
};

use crate::group::{Candidate, group_around};
use crate::inspect::{InspectError, Inspected, inspect};
use crate::report::{
    CrawlReport, SkipReason, Skipped, TableAction, TableReport, Warning, WidenedColumn,
};
use crate::schema::merge_fields;
use crate::{Error, Result};
use quarry_lake::format::{LAZY_SIMPLE_SERDE, OPEN_CSV_SERDE};
use quarry_lake::hive::{HIVE_DEFAULT_PARTITION, Segment, infer_type};
use quarry_lake::stats::Stats;
use quarry_lake::{
    FileFormat, Location, fingerprint, folder_url, is_hidden, storage_for, table_file_format,
    table_format_label,
};

/// What to do when a re-crawl finds a table's columns changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SchemaPolicy {
    /// Add new columns and widen types (the default, like Glue's UPDATE_IN_DATABASE).
    #[default]
    Update,
    /// Report the change but leave the table's columns as they are (Glue's LOG).
    Log,
    /// Fail the crawl and write nothing.
    Fail,
}

/// Progress callbacks, e.g. for a progress bar.
pub trait Progress: Send + Sync {
    fn listed(&self, _objects: usize) {}
    fn inspecting(&self, _total: usize) {}
    fn inspected(&self, _url: &str) {}
    fn finished(&self) {}
}

#[derive(Clone)]
pub struct CrawlConfig {
    pub database: String,
    /// Glob patterns relative to the crawl target (`**/*.tmp`, `scratch/**`).
    pub exclude: Vec<String>,
    /// Fail, writing nothing, when any object cannot be read.
    pub strict: bool,
    pub schema_policy: SchemaPolicy,
    /// Concurrent list and read requests.
    pub concurrency: usize,
    pub progress: Option<Arc<dyn Progress>>,
}

impl CrawlConfig {
    pub fn new(database: impl Into<String>) -> Self {
        Self {
            database: database.into(),
            exclude: Vec::new(),
            strict: false,
            schema_policy: SchemaPolicy::Update,
            concurrency: 32,
            progress: None,
        }
    }
}

impl std::fmt::Debug for CrawlConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CrawlConfig")
            .field("database", &self.database)
            .field("exclude", &self.exclude)
            .field("strict", &self.strict)
            .field("schema_policy", &self.schema_policy)
            .field("concurrency", &self.concurrency)
            .finish()
    }
}

/// Crawls targets into a catalog.
#[derive(Debug, Clone)]
pub struct Crawler {
    catalog: Arc<dyn Catalog>,
    config: CrawlConfig,
}

/// A new or changed object that was read successfully.
#[derive(Debug, Clone)]
struct NewFile {
    meta: ObjectMeta,
    url: String,
    /// Folder names between the crawl root and the file.
    dirs: Vec<String>,
    inspected: Inspected,
}

const MAX_ATTEMPTS: usize = 8;

impl Crawler {
    pub fn new(catalog: Arc<dyn Catalog>, config: CrawlConfig) -> Self {
        Self { catalog, config }
    }

    pub async fn crawl(&self, location: &Location) -> Result<CrawlReport> {
        self.crawl_scoped(location, None).await
    }

    /// Crawl only `folders` (below `location`, e.g. the partitions that S3 `ObjectCreated`
    /// events named), with `location` as the root that tables and partitions are relative to:
    /// Glue's S3-event crawl mode. Objects elsewhere under the target are neither listed nor
    /// considered removed.
    pub async fn crawl_folders(
        &self,
        location: &Location,
        folders: &[object_store::path::Path],
    ) -> Result<CrawlReport> {
        self.crawl_scoped(location, Some(folders)).await
    }

    async fn crawl_scoped(
        &self,
        location: &Location,
        scope: Option<&[object_store::path::Path]>,
    ) -> Result<CrawlReport> {
        let started = Instant::now();
        let root_url = location.root_url();
        let excludes = self.exclude_set()?;
        let mut report = CrawlReport {
            target: root_url.clone(),
            database: self.config.database.clone(),
            ..Default::default()
        };

        let listed = match scope {
            None => self.list(location).await?,
            Some(folders) => self.list_folders(location, folders).await?,
        };
        report.objects_listed = listed.len();
        if let Some(p) = &self.config.progress {
            p.listed(listed.len());
        }

        let scope_urls: Option<Vec<String>> = scope.map(|folders| {
            folders
                .iter()
                .map(|f| format!("{}/", location.url(f).trim_end_matches('/')))
                .collect()
        });
        let seen: HashMap<String, SeenObject> = self
            .catalog
            .seen_objects(&root_url)
            .await?
            .into_iter()
            .filter(|o| {
                scope_urls
                    .as_ref()
                    .is_none_or(|urls| urls.iter().any(|u| o.path.starts_with(u.as_str())))
            })
            .map(|o| (o.path.clone(), o))
            .collect();

        let mut present = HashSet::new();
        let mut todo = Vec::new();
        for meta in listed {
            let url = location.url(&meta.location);
            let rel: Vec<String> = meta
                .location
                .prefix_match(&location.prefix)
                .map(|parts| parts.map(|p| p.as_ref().to_string()).collect())
                .unwrap_or_default();
            let skip = |reason, detail: &str| Skipped {
                url: url.clone(),
                reason,
                detail: detail.to_string(),
            };
            if is_hidden(&rel) {
                report.skipped.push(skip(SkipReason::Hidden, ""));
                continue;
            }
            if excludes.is_match(rel.join("/")) {
                report.skipped.push(skip(SkipReason::Excluded, ""));
                continue;
            }
            if meta.size == 0 {
                report.skipped.push(skip(SkipReason::Empty, "zero bytes"));
                continue;
            }
            present.insert(url.clone());
            match seen.get(&url) {
                Some(s) if s.size == meta.size && s.fingerprint == fingerprint(&meta) => {
                    report.objects_unchanged += 1;
                }
                _ => {
                    let mut dirs = rel;
                    dirs.pop();
                    todo.push((meta, url, dirs));
                }
            }
        }
        // Objects recorded before that are gone, changed, or now hidden/excluded.
        let mut gone: Vec<SeenObject> = seen
            .values()
            .filter(|s| !present.contains(&s.path) || todo.iter().any(|(_, u, _)| u == &s.path))
            .cloned()
            .collect();
        gone.sort_by(|a, b| a.path.cmp(&b.path));
        report.removed = gone
            .iter()
            .filter(|g| !present.contains(&g.path))
            .map(|g| g.path.clone())
            .collect();

        report.objects_inspected = todo.len();
        let files = self.inspect_all(location, todo, &mut report).await;
        if self.config.strict {
            let bad: Vec<&Skipped> = report
                .skipped
                .iter()
                .filter(|s| s.reason == SkipReason::Unreadable)
                .collect();
            if let Some(first) = bad.first() {
                return Err(Error::Strict {
                    count: bad.len(),
                    first: format!("{}: {}", first.url, first.detail),
                });
            }
        }

        let mut attempt = 0;
        loop {
            attempt += 1;
            let (write, tables, skipped) = if files.is_empty() && gone.is_empty() {
                (CatalogWrite::default(), Vec::new(), Vec::new())
            } else {
                self.plan(&root_url, &files, &gone).await?
            };
            if write.is_empty() {
                report.tables = tables;
                report.skipped.extend(skipped);
                break;
            }
            match self.catalog.commit(write).await {
                Ok(()) => {
                    report.tables = tables;
                    report.skipped.extend(skipped);
                    report.catalog_written = true;
                    break;
                }
                Err(quarry_catalog::Error::Conflict { .. }) if attempt < MAX_ATTEMPTS => continue,
                Err(quarry_catalog::Error::Conflict { .. }) => {
                    return Err(Error::TooManyConflicts { attempts: attempt });
                }
                Err(e) => return Err(e.into()),
            }
        }
        if let Some(p) = &self.config.progress {
            p.finished();
        }
        report.elapsed_ms = started.elapsed().as_millis() as u64;
        Ok(report)
    }

    fn exclude_set(&self) -> Result<GlobSet> {
        let mut b = GlobSetBuilder::new();
        for pattern in &self.config.exclude {
            let glob = Glob::new(pattern).map_err(|source| Error::Exclude {
                pattern: pattern.clone(),
                source,
            })?;
            b.add(glob);
        }
        b.build().map_err(|source| Error::Exclude {
            pattern: self.config.exclude.join(" "),
            source,
        })
    }

    /// List everything under the target: the first level with a delimiter, then each
    /// sub-folder concurrently.
    async fn list(&self, location: &Location) -> Result<Vec<ObjectMeta>> {
        let store = &location.store;
        let list_err = |source| Error::List {
            url: location.root_url(),
            source,
        };
        let prefix = (!location.prefix.as_ref().is_empty()).then_some(&location.prefix);
        let top = store.list_with_delimiter(prefix).await.map_err(list_err)?;
        let mut objects = top.objects;
        objects.extend(
            self.list_prefixes(store, top.common_prefixes)
                .await
                .map_err(list_err)?,
        );
        objects.sort_by(|a, b| a.location.cmp(&b.location));
        Ok(objects)
    }

    /// Everything under each of `prefixes`, listed concurrently.
    async fn list_prefixes(
        &self,
        store: &Arc<dyn ObjectStore>,
        prefixes: Vec<object_store::path::Path>,
    ) -> std::result::Result<Vec<ObjectMeta>, object_store::Error> {
        let nested: Vec<Vec<ObjectMeta>> = stream::iter(prefixes)
            .map(|p| {
                let store = Arc::clone(store);
                async move { store.list(Some(&p)).try_collect::<Vec<_>>().await }
            })
            .buffer_unordered(self.config.concurrency.max(1))
            .try_collect()
            .await?;
        Ok(nested.into_iter().flatten().collect())
    }

    /// List each of `folders` (which must lie below the target) recursively.
    async fn list_folders(
        &self,
        location: &Location,
        folders: &[object_store::path::Path],
    ) -> Result<Vec<ObjectMeta>> {
        for f in folders {
            if f.prefix_match(&location.prefix).is_none() {
                return Err(Error::Target {
                    target: location.url(f),
                    reason: format!("not below the crawl target {}", location.root_url()),
                });
            }
        }
        let mut objects = self
            .list_prefixes(&location.store, folders.to_vec())
            .await
            .map_err(|source| Error::List {
                url: location.root_url(),
                source,
            })?;
        objects.sort_by(|a, b| a.location.cmp(&b.location));
        objects.dedup_by(|a, b| a.location == b.location);
        Ok(objects)
    }

    async fn inspect_all(
        &self,
        location: &Location,
        todo: Vec<(ObjectMeta, String, Vec<String>)>,
        report: &mut CrawlReport,
    ) -> Vec<NewFile> {
        if let Some(p) = &self.config.progress {
            p.inspecting(todo.len());
        }
        let progress = self.config.progress.clone();
        let results: Vec<_> = stream::iter(todo)
            .map(|(meta, url, dirs)| {
                let store = Arc::clone(&location.store);
                let progress = progress.clone();
                async move {
                    let r = inspect(&store, &meta).await;
                    if let Some(p) = &progress {
                        p.inspected(&url);
                    }
                    (meta, url, dirs, r)
                }
            })
            .buffered(self.config.concurrency.max(1))
            .collect()
            .await;
        let mut files = Vec::new();
        for (meta, url, dirs, r) in results {
            match r {
                Ok(inspected) => {
                    let warnings = [
                        inspected.invalid_utf8.map(|i| i.to_string()),
                        inspected.expansion.map(|e| e.to_string()),
                    ];
                    for detail in warnings.into_iter().flatten() {
                        report.warnings.push(Warning {
                            url: url.clone(),
                            detail,
                        });
                    }
                    files.push(NewFile {
                        meta,
                        url,
                        dirs,
                        inspected,
                    })
                }
                Err(InspectError::Empty) => report.skipped.push(Skipped {
                    url,
                    reason: SkipReason::Empty,
                    detail: "no data after decompression".into(),
                }),
                Err(InspectError::Unreadable(detail)) => report.skipped.push(Skipped {
                    url,
                    reason: SkipReason::Unreadable,
                    detail,
                }),
            }
        }
        files
    }

    /// Compute the catalog change for `files` (new or changed objects) and `gone` (objects
    /// that were catalogued and are removed or changed), against the catalog as it is now.
    async fn plan(
        &self,
        root_url: &str,
        files: &[NewFile],
        gone: &[SeenObject],
    ) -> Result<(CatalogWrite, Vec<TableReport>, Vec<Skipped>)> {
        let db = &self.config.database;
        let existing = match self.catalog.get_database(db).await? {
            Some(_) => self.catalog.list_tables(db).await?,
            None => Vec::new(),
        };
        // Read after the tables: a concurrent crawl that recorded some of these objects since
        // this one listed them has also changed the tables, so either this plan sees its
        // bookmarks (and leaves those objects out) or the commit fails on table versions.
        let seen_now: HashMap<String, SeenObject> = self
            .catalog
            .seen_objects(root_url)
            .await?
            .into_iter()
            .map(|o| (o.path.clone(), o))
            .collect();
        let files: Vec<NewFile> = files
            .iter()
            .filter(|f| {
                !seen_now
                    .get(&f.url)
                    .is_some_and(|s| s.size == f.meta.size && s.fingerprint == fingerprint(&f.meta))
            })
            .cloned()
            .collect();
        let files = &files[..];
        let gone: Vec<SeenObject> = gone
            .iter()
            .filter(|g| seen_now.get(&g.path) == Some(*g))
            .cloned()
            .collect();
        let gone = &gone[..];
        let mut skipped = Vec::new();
        let mut plans: Vec<TablePlan> = Vec::new();

        // 1. Files under an existing table's location belong to it, if they fit.
        let mut unassigned = Vec::new();
        for (i, f) in files.iter().enumerate() {
            let owner = existing
                .iter()
                .filter(|t| f.url.starts_with(&folder_url(&t.storage.location)))
                .max_by_key(|t| t.storage.location.len());
            let Some(table) = owner else {
                unassigned.push(i);
                continue;
            };
            let dirs = relative_dirs(&table.storage.location, &f.url);
            match fits(table, &f.inspected.format, &dirs) {
                Ok(()) => {
                    let plan = match plans.iter_mut().position(|p| p.table.name == table.name) {
                        Some(p) => &mut plans[p],
                        None => {
                            plans.push(TablePlan::existing(table.clone()));
                            let n = plans.len() - 1;
                            &mut plans[n]
                        }
                    };
                    plan.files.push((i, dirs));
                }
                Err(why) => skipped.push(Skipped {
                    url: f.url.clone(),
                    reason: SkipReason::Inconsistent,
                    detail: format!("does not fit table {}: {why}", table.qualified_name()),
                }),
            }
        }

        // 2. Everything else is grouped into new tables.
        let candidates: Vec<Candidate> = unassigned
            .iter()
            .map(|&i| Candidate {
                dirs: files[i].dirs.clone(),
                format: files[i].inspected.format,
                columns: files[i]
                    .inspected
                    .fields
                    .iter()
                    .map(|f| f.name().clone())
                    .collect(),
            })
            .collect();
        // Roots of the tables already catalogued under this target (a re-crawl's new folders
        // become tables beside them, never one table around them).
        let table_roots: Vec<Vec<String>> = existing
            .iter()
            .map(|t| folder_url(&t.storage.location))
            .filter(|location| location.starts_with(root_url))
            .map(|location| relative_dirs(root_url, &location))
            .collect();
        let (groups, misfits) = group_around(&candidates, &table_roots);
        for m in misfits {
            skipped.push(Skipped {
                url: files[unassigned[m.file]].url.clone(),
                reason: SkipReason::Inconsistent,
                detail: m.detail,
            });
        }
        let mut taken: HashSet<String> = existing.iter().map(|t| t.name.clone()).collect();
        for g in groups {
            let base = table_name(g.dirs.last().map(String::as_str).unwrap_or_else(|| {
                root_url
                    .trim_end_matches('/')
                    .rsplit('/')
                    .next()
                    .unwrap_or("table")
            }));
            let mut name = base.clone();
            let mut n = 2;
            while !taken.insert(name.clone()) {
                name = format!("{base}_{n}");
                n += 1;
            }
            let location = format!(
                "{root_url}{}",
                g.dirs.iter().map(|d| format!("{d}/")).collect::<String>()
            );
            let depth = g.dirs.len();
            let members: Vec<(usize, Vec<String>)> = g
                .files
                .iter()
                .map(|&c| {
                    let i = unassigned[c];
                    (i, files[i].dirs[depth..].to_vec())
                })
                .collect();
            plans.push(TablePlan::new(
                db, &name, &location, files, &members, g.decision,
            ));
        }

        // 3. Each table's change.
        let now = Utc::now();
        let mut write = CatalogWrite {
            crawl_target: Some(root_url.to_string()),
            ..Default::default()
        };
        let mut reports = Vec::new();
        let gone_by_table = group_gone(gone);
        let mut touched: HashSet<String> = HashSet::new();
        for mut plan in plans {
            let qualified = plan.table.qualified_name();
            touched.insert(qualified.clone());
            let removed = gone_by_table.get(&qualified).cloned().unwrap_or_default();
            let (tw, pws, mut rep) = self.plan_table(&mut plan, files, &removed, now).await?;
            for (i, _) in &plan.files {
                let f = &files[*i];
                write.seen.push(SeenObject {
                    path: f.url.clone(),
                    size: f.meta.size,
                    fingerprint: fingerprint(&f.meta),
                    table: Some(qualified.clone()),
                    rows: f.inspected.rows,
                    footer: f.inspected.footer.as_ref().map(|b| b.to_vec()),
                });
            }
            rep.files_added = plan.files.len();
            write.tables.push(tw);
            write.partitions.extend(pws);
            reports.push(rep);
        }
        // Tables that only lost objects.
        for (qualified, removed) in &gone_by_table {
            if touched.contains(qualified) {
                continue;
            }
            let Some(table) = existing.iter().find(|t| &t.qualified_name() == qualified) else {
                continue;
            };
            let mut plan = TablePlan::existing(table.clone());
            let (tw, pws, rep) = self.plan_table(&mut plan, files, removed, now).await?;
            write.tables.push(tw);
            write.partitions.extend(pws);
            reports.push(rep);
        }
        write.unseen = gone.iter().map(|g| g.path.clone()).collect();
        if write.tables.is_empty() && write.unseen.is_empty() {
            return Ok((CatalogWrite::default(), reports, skipped));
        }
        if write.databases.is_empty() && self.catalog.get_database(db).await?.is_none() {
            write.databases.push(Database::new(db));
        }
        Ok((write, reports, skipped))
    }

    async fn plan_table(
        &self,
        plan: &mut TablePlan,
        files: &[NewFile],
        removed: &[SeenObject],
        now: chrono::DateTime<Utc>,
    ) -> Result<(TableWrite, Vec<PartitionWrite>, TableReport)> {
        let table = &mut plan.table;
        let mut rep = TableReport {
            table: table.qualified_name(),
            action: if plan.is_new {
                TableAction::Created
            } else {
                TableAction::Updated
            },
            location: table.storage.location.clone(),
            format: String::new(),
            decision: plan.decision.clone(),
            files_added: 0,
            partitions_added: Vec::new(),
            partitions_updated: 0,
            columns_added: Vec::new(),
            columns_widened: Vec::new(),
            changes_not_applied: Vec::new(),
        };

        // Columns: merge every new file into the table's columns.
        let mut current: Vec<Field> = table
            .storage
            .columns
            .iter()
            .map(|c| Ok(Field::new(&c.name, from_hive(&c.data_type)?, true)))
            .collect::<Result<_, quarry_catalog::Error>>()?;
        let mut merged = current.clone();
        for (i, _) in &plan.files {
            merged = merge_fields(&merged.into(), &files[*i].inspected.fields.clone().into());
        }
        let mut changes = Vec::new();
        for f in &merged {
            match current.iter().find(|c| c.name() == f.name()) {
                None if !plan.is_new => {
                    rep.columns_added.push(f.name().clone());
                    changes.push(format!(
                        "column {} {} added",
                        f.name(),
                        to_hive(f.data_type())
                    ));
                }
                Some(c) if c.data_type() != f.data_type() => {
                    let (from, to) = (to_hive(c.data_type()), to_hive(f.data_type()));
                    if from != to {
                        changes.push(format!("column {} widened {from} -> {to}", f.name()));
                        rep.columns_widened.push(WidenedColumn {
                            column: f.name().clone(),
                            from,
                            to,
                        });
                    }
                }
                _ => {}
            }
        }

        // Quoted CSV: OpenCSVSerde, as Glue's crawler writes it (LazySimpleSerDe ignores quotes in
        // Athena and Spark). A table only ever moves to it, when a quoted file arrives.
        let quoted = plan.files.iter().any(|(i, _)| files[*i].inspected.quoted);
        if quoted && table.storage.serde_info.serialization_library == LAZY_SIMPLE_SERDE {
            let p = &table.storage.serde_info.parameters;
            let delim = p.get("field.delim").cloned().unwrap_or_else(|| ",".into());
            let quote = p.get("quoteChar").cloned().unwrap_or_else(|| "\"".into());
            table.storage.serde_info = SerDeInfo {
                serialization_library: OPEN_CSV_SERDE.into(),
                parameters: [
                    ("separatorChar".to_string(), delim),
                    ("quoteChar".to_string(), quote),
                    ("escapeChar".to_string(), "\\".to_string()),
                ]
                .into(),
            };
            table
                .parameters
                .insert("areColumnsQuoted".into(), "true".into());
        }

        // Partition keys: names from the layout, types widened to fit every new value.
        let mut key_types: Vec<String> = table
            .partition_keys
            .iter()
            .map(|k| k.data_type.clone())
            .collect();
        for (_, dirs) in &plan.files {
            for ((k, d), key) in key_types.iter_mut().zip(dirs).zip(&table.partition_keys) {
                let fitted = widen_key(k, Segment::parse(d).value());
                if &fitted != k {
                    if !plan.is_new {
                        changes.push(format!(
                            "partition key {} widened {k} -> {fitted}",
                            key.name
                        ));
                    }
                    *k = fitted;
                }
            }
        }
        let schema_changed = !plan.is_new && !changes.is_empty();
        if schema_changed {
            match self.config.schema_policy {
                SchemaPolicy::Fail => {
                    return Err(Error::SchemaChanged {
                        table: table.qualified_name(),
                        change: changes.join("; "),
                    });
                }
                SchemaPolicy::Log => {
                    rep.changes_not_applied = changes;
                    rep.columns_added.clear();
                    rep.columns_widened.clear();
                    merged = current.clone();
                    key_types = table
                        .partition_keys
                        .iter()
                        .map(|k| k.data_type.clone())
                        .collect();
                }
                SchemaPolicy::Update => {}
            }
        }
        current = merged;
        table.storage.columns = current
            .iter()
            .map(|f| Column::new(f.name(), to_hive(f.data_type())))
            .collect();
        for (k, t) in table.partition_keys.iter_mut().zip(&key_types) {
            k.data_type = t.clone();
        }

        // Partitions and statistics.
        let mut stats: BTreeMap<Vec<Option<String>>, (Vec<String>, Stats)> = BTreeMap::new();
        let mut compression: HashMap<Vec<Option<String>>, String> = HashMap::new();
        let mut table_delta = Stats::default();
        for (i, dirs) in &plan.files {
            let f = &files[*i];
            let s = Stats::of(f.meta.size, f.inspected.rows, 1);
            table_delta.add(&s);
            if !table.partition_keys.is_empty() {
                let values: Vec<Option<String>> = dirs
                    .iter()
                    .map(|d| Segment::parse(d).value().map(str::to_string))
                    .collect();
                let c = &f.inspected.compression;
                compression
                    .entry(values.clone())
                    .and_modify(|v| {
                        if v != c {
                            *v = "mixed".into()
                        }
                    })
                    .or_insert_with(|| c.clone());
                let e = stats
                    .entry(values)
                    .or_insert_with(|| (dirs.clone(), Stats::default()));
                e.1.add(&s);
            }
        }
        for r in removed {
            let s = Stats::of(r.size, r.rows, 1);
            table_delta.sub(&s);
            if !table.partition_keys.is_empty() {
                let dirs = relative_dirs(&table.storage.location, &r.path);
                if dirs.len() == table.partition_keys.len() {
                    let values = dirs
                        .iter()
                        .map(|d| Segment::parse(d).value().map(str::to_string))
                        .collect();
                    let e = stats
                        .entry(values)
                        .or_insert_with(|| (dirs.clone(), Stats::default()));
                    e.1.sub(&s);
                }
            }
        }
        let mut pws = Vec::new();
        for (values, (dirs, delta)) in stats {
            let existing = if plan.is_new {
                None
            } else {
                self.lookup_partition(table, &values).await?
            };
            let label = table
                .partition_keys
                .iter()
                .zip(&values)
                .map(|(k, v)| {
                    format!(
                        "{}={}",
                        k.name,
                        v.as_deref().unwrap_or(HIVE_DEFAULT_PARTITION)
                    )
                })
                .collect::<Vec<_>>()
                .join("/");
            let (mut p, expected) = match existing {
                Some(p) => {
                    let v = p.version;
                    rep.partitions_updated += 1;
                    (p, Some(v))
                }
                None if delta.objects <= 0 => continue,
                None => {
                    rep.partitions_added.push(label);
                    let location = format!(
                        "{}{}",
                        folder_url(&table.storage.location),
                        dirs.iter().map(|d| format!("{d}/")).collect::<String>()
                    );
                    (
                        Partition {
                            values: values.clone(),
                            location,
                            parameters: Default::default(),
                            create_time: now,
                            update_time: now,
                            version: 0,
                        },
                        None,
                    )
                }
            };
            let mut s = Stats::read(&p.parameters);
            s.add(&delta);
            s.write(&mut p.parameters);
            if let Some(c) = compression.get(&values) {
                let merged = match p.parameters.get(keys::COMPRESSION_TYPE) {
                    Some(old) if old != c => "mixed".to_string(),
                    _ => c.clone(),
                };
                p.parameters.insert(keys::COMPRESSION_TYPE.into(), merged);
            }
            p.update_time = now;
            pws.push(PartitionWrite {
                database: table.database.clone(),
                table: table.name.clone(),
                partition: p,
                expected_version: expected,
            });
        }
        let mut s = Stats::read(&table.parameters);
        s.add(&table_delta);
        s.write(&mut table.parameters);
        table.update_time = now;
        table
            .parameters
            .insert(keys::CRAWLER_UPDATED.into(), now.to_rfc3339());
        // Compression: the files' own, "mixed" once they disagree.
        if let Some(c) = plan
            .files
            .first()
            .map(|(i, _)| files[*i].inspected.compression.clone())
        {
            let all_same = plan
                .files
                .iter()
                .all(|(i, _)| files[*i].inspected.compression == c);
            let prev = table.parameters.get(keys::COMPRESSION_TYPE).cloned();
            let value = match prev {
                Some(p) if p != c || !all_same => "mixed".to_string(),
                _ if !all_same => "mixed".to_string(),
                _ => c,
            };
            table
                .parameters
                .insert(keys::COMPRESSION_TYPE.into(), value.clone());
            table.storage.compressed = value != "none";
        }
        rep.format = table_format_label(table);
        let expected = (!plan.is_new).then_some(table.version);
        Ok((
            TableWrite {
                table: table.clone(),
                expected_version: expected,
            },
            pws,
            rep,
        ))
    }

    async fn lookup_partition(
        &self,
        table: &Table,
        values: &[Option<String>],
    ) -> Result<Option<Partition>> {
        let mut filter = PartitionFilter::all();
        for (k, v) in table.partition_keys.iter().zip(values) {
            filter = filter.and(
                k.name.clone(),
                match v {
                    Some(v) => KeyPredicate::Eq(v.clone()),
                    None => KeyPredicate::IsNull,
                },
            );
        }
        // Lookups by the stored key types; a value that no longer parses (key widened in this
        // crawl) cannot match an existing partition.
        match self
            .catalog
            .get_partitions(&table.database, &table.name, &filter)
            .await
        {
            Ok(ps) => Ok(ps.into_iter().find(|p| p.values == values)),
            Err(quarry_catalog::Error::BadPartitionValue { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

fn group_gone(gone: &[SeenObject]) -> BTreeMap<String, Vec<SeenObject>> {
    let mut m: BTreeMap<String, Vec<SeenObject>> = BTreeMap::new();
    for g in gone {
        if let Some(t) = &g.table {
            m.entry(t.clone()).or_default().push(g.clone());
        }
    }
    m
}

/// Folder names between a table location and an object URL.
fn relative_dirs(table_location: &str, url: &str) -> Vec<String> {
    let root = folder_url(table_location);
    let rest = url.strip_prefix(&root).unwrap_or(url);
    let mut parts: Vec<String> = rest.split('/').map(str::to_string).collect();
    parts.pop();
    parts
}

/// Whether a new file with `format` at `dirs` below `table`'s root belongs to it.
fn fits(table: &Table, format: &FileFormat, dirs: &[String]) -> Result<(), String> {
    let table_format = table_file_format(table);
    if table_format.as_ref() != Some(format) {
        return Err(format!(
            "format {} differs from the table's {}",
            format.describe(),
            table_format.map_or_else(|| "unknown format".into(), |f| f.describe())
        ));
    }
    if dirs.len() != table.partition_keys.len() {
        return Err(format!(
            "it is {} folder(s) deep but the table has {} partition key(s)",
            dirs.len(),
            table.partition_keys.len()
        ));
    }
    for (i, (d, k)) in dirs.iter().zip(&table.partition_keys).enumerate() {
        let key = Segment::parse(d).key(i);
        if key != k.name {
            return Err(format!("folder '{d}' is not partition key {}", k.name));
        }
    }
    Ok(())
}

/// Widen a partition key type so that it also holds `value`.
fn widen_key(current: &str, value: Option<&str>) -> String {
    let Some(v) = value else {
        return current.to_string();
    };
    let fits = match current {
        "int" => v.parse::<i32>().is_ok(),
        "bigint" => v.parse::<i64>().is_ok(),
        "date" => infer_type([Some(v)]) == "date",
        _ => true,
    };
    if fits {
        return current.to_string();
    }
    match (current, infer_type([Some(v)])) {
        ("int", "bigint") => "bigint".into(),
        _ => "string".into(),
    }
}

/// A table this crawl creates or changes.
struct TablePlan {
    table: Table,
    is_new: bool,
    decision: String,
    /// (index into the new files, folders below the table root)
    files: Vec<(usize, Vec<String>)>,
}

impl TablePlan {
    fn existing(table: Table) -> Self {
        Self {
            decision: format!(
                "new objects under the existing table's location {}",
                table.storage.location
            ),
            table,
            is_new: false,
            files: Vec::new(),
        }
    }

    fn new(
        database: &str,
        name: &str,
        location: &str,
        files: &[NewFile],
        members: &[(usize, Vec<String>)],
        decision: String,
    ) -> Self {
        let first = &files[members[0].0];
        let format = first.inspected.format;
        let levels = members[0].1.len();
        let partition_keys = (0..levels)
            .map(|l| {
                let name = Segment::parse(&members[0].1[l]).key(l);
                let values: Vec<Option<String>> = members
                    .iter()
                    .map(|(_, dirs)| Segment::parse(&dirs[l]).value().map(str::to_string))
                    .collect();
                let t = infer_type(values.iter().map(|v| v.as_deref()));
                Column::new(name, t)
            })
            .collect();
        let now = Utc::now();
        let mut parameters = quarry_catalog::Parameters::new();
        parameters.insert(keys::TYPE_OF_DATA.into(), "file".into());
        parameters.insert("UPDATED_BY_CRAWLER".into(), "quarry".into());
        let (input_format, output_format, serde_info) = storage_for(format, &mut parameters);
        Self {
            table: Table {
                database: database.into(),
                name: name.into(),
                description: None,
                table_type: "EXTERNAL_TABLE".into(),
                view: None,
                storage: StorageDescriptor {
                    location: location.into(),
                    columns: Vec::new(),
                    input_format: input_format.into(),
                    output_format: output_format.into(),
                    serde_info,
                    compressed: false,
                    parameters: Default::default(),
                },
                partition_keys,
                parameters,
                create_time: now,
                update_time: now,
                version: 0,
            },
            is_new: true,
            decision,
            files: members.to_vec(),
        }
    }
}

/// A catalog-safe table name from a folder name: lower case, `[a-z0-9_]`.
pub fn table_name(folder: &str) -> String {
    let decoded = percent_encoding::percent_decode_str(folder).decode_utf8_lossy();
    let mut name: String = decoded
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        name.insert_str(0, "t_");
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn crawls_an_in_memory_store() {
        use object_store::ObjectStoreExt;
        use object_store::path::Path;
        let location = Location::parse("memory:///lake/t").unwrap();
        for (key, body) in [
            ("lake/t/k=1/a.csv", "a,b\n1,x\n"),
            ("lake/t/k=2/a.csv", "a,b\n2,y\n"),
            ("lake/t/_SUCCESS", ""),
        ] {
            location
                .store
                .put(&Path::from(key), body.as_bytes().to_vec().into())
                .await
                .unwrap();
        }
        let catalog = Arc::new(quarry_catalog::SqliteCatalog::open_in_memory().unwrap());
        let crawler = Crawler::new(catalog.clone(), CrawlConfig::new("db"));
        let report = crawler.crawl(&location).await.unwrap();
        assert_eq!(report.tables.len(), 1, "{report}");
        assert_eq!(report.skipped_for(SkipReason::Hidden), 1);
        let t = catalog.get_table("db", "t").await.unwrap().unwrap();
        assert_eq!(t.storage.location, "memory:///lake/t/");
        assert_eq!(t.partition_keys, vec![Column::new("k", "int")]);
        assert_eq!(catalog.count_partitions("db", "t").await.unwrap(), 2);
    }

    #[test]
    fn table_names_are_safe() {
        assert_eq!(table_name("Sales-2024"), "sales_2024");
        assert_eq!(table_name("2024"), "t_2024");
        assert_eq!(table_name("my%20data"), "my_data");
    }

    #[test]
    fn partition_keys_widen_to_fit() {
        assert_eq!(widen_key("int", Some("7")), "int");
        assert_eq!(widen_key("int", Some("9999999999")), "bigint");
        assert_eq!(widen_key("date", Some("2024-13-01")), "string");
        assert_eq!(widen_key("int", None), "int");
    }
}
