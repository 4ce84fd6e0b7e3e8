//! The AWS Glue Data Catalog as a [`Catalog`] backend (feature `glue`).
//!
//! Databases, tables and partitions map 1:1 onto Glue's (the model was shaped after it): a NULL
//! partition value is stored as Hive's `__HIVE_DEFAULT_PARTITION__`, a table's `version` is
//! Glue's `VersionId`, partitions carry the table's storage descriptor with their own location,
//! as Glue's crawler writes them. Partition lookups send the pruning predicate to Glue as a
//! `GetPartitions` `Expression` and re-check every returned partition locally, so results are
//! the same as the embedded catalog's.
//!
//! Glue has no place for crawl bookmarks and no multi-object transactions. Bookmarks live in one
//! JSON object per crawl target under a state location ([`GlueCatalog::with_bookmarks`]);
//! a commit writes databases, then tables (`UpdateTable` with the expected `VersionId`), then
//! partitions, then the bookmarks, so a failure part-way leaves every applied step valid and the
//! next crawl redoes the rest.
//!
//! Deletes are checked first, all of them (existence, versions, empty databases), before
//! anything is changed. Then the bookmarks of dropped tables are forgotten, before the tables
//! go: should a delete fail after that, the table is still there and retrying the drop
//! completes it (the other order could leave bookmarks that make every re-crawl skip the
//! objects of a table that no longer exists). Then `BatchDeletePartition`, `DeleteTable` and
//! `DeleteDatabase` run, and the creates and updates follow. Glue's `DeleteTable` takes no
//! version, so a table's version is checked by reading it just before; Glue partitions have no
//! version (they read as 0). Without a bookmark store ([`GlueCatalog::with_bookmarks`]) drops
//! still work and no bookmarks are forgotten: this process cannot see any.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::ops::Bound;
use std::sync::Arc;

use aws_sdk_glue::Client;
use aws_sdk_glue::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_glue::types as glue;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutPayload, UpdateVersion};
use serde::{Deserialize, Serialize};

use crate::error::partition_spec;
use crate::{
    Catalog, CatalogWrite, Column, ColumnStatistics, Database, DatabaseDrop, DecimalValue, Error,
    KeyPredicate, Partition, PartitionDrop, PartitionFilter, PartitionWrite, Result, SeenObject,
    SerDeInfo, StatisticsData, StorageDescriptor, Table, TableDrop, TableWrite, ValueOrder,
    ViewText,
};

/// Hive's name for the partition holding NULL keys; Glue stores NULL partition values this way.
pub const HIVE_DEFAULT_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

/// Glue accepts at most this many partitions per `BatchCreatePartition` call.
const BATCH: usize = 100;
/// ... per `BatchDeletePartition` call.
const DELETE_BATCH: usize = 25;
/// ... per `BatchGetPartition` call.
const GET_BATCH: usize = 1000;
/// How often `BatchGetPartition` is asked again for the keys it left unprocessed.
const GET_ATTEMPTS: usize = 5;
/// How often forgetting a dropped table's bookmarks re-reads a file another writer changed.
const FORGET_ATTEMPTS: usize = 5;
/// How many of a non-empty database's tables an error names.
const TABLES_NAMED: usize = 5;

/// Connection settings that override the standard AWS environment; `None` keeps the default.
#[derive(Debug, Clone, Default)]
pub struct GlueOptions {
    pub endpoint_url: Option<String>,
    pub region: Option<String>,
    /// Static access key id and secret.
    pub credentials: Option<(String, String)>,
    /// Another account's Data Catalog.
    pub catalog_id: Option<String>,
}

/// A [`Catalog`] over the AWS Glue Data Catalog.
#[derive(Clone)]
pub struct GlueCatalog {
    client: Client,
    catalog_id: Option<String>,
    bookmarks: Option<Bookmarks>,
}

impl fmt::Debug for GlueCatalog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GlueCatalog")
            .field("catalog_id", &self.catalog_id)
            .field("bookmarks", &self.bookmarks)
            .finish_non_exhaustive()
    }
}

impl GlueCatalog {
    /// A client configured like the AWS CLI: region, credentials chain (env vars, profiles, SSO,
    /// container and instance roles) and `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_GLUE` from the
    /// standard environment. `GLUE_CATALOG_ID` selects another account's catalog.
    pub async fn from_env() -> Self {
        Self::connect(&GlueOptions::default()).await
    }

    /// Like [`GlueCatalog::from_env`], with the settings in `options` taking precedence.
    pub async fn connect(options: &GlueOptions) -> Self {
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let mut loader =
            aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(http);
        if let Some(endpoint) = &options.endpoint_url {
            loader = loader.endpoint_url(endpoint);
        }
        if let Some(region) = &options.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        if let Some((key, secret)) = &options.credentials {
            loader = loader.credentials_provider(aws_sdk_glue::config::Credentials::new(
                key, secret, None, None, "quarry",
            ));
        }
        let config = loader.load().await;
        let mut catalog = Self::new(Client::new(&config));
        catalog.catalog_id = options
            .catalog_id
            .clone()
            .or_else(|| std::env::var("GLUE_CATALOG_ID").ok())
            .filter(|s| !s.is_empty());
        catalog
    }

    pub fn new(client: Client) -> Self {
        Self {
            client,
            catalog_id: None,
            bookmarks: None,
        }
    }

    /// Keep crawl bookmarks as JSON objects under `prefix` of `store` (for example
    /// `s3://bucket/quarry-state/`). Without a bookmark store, crawls are refused.
    pub fn with_bookmarks(mut self, store: Arc<dyn ObjectStore>, prefix: ObjectPath) -> Self {
        self.bookmarks = Some(Bookmarks { store, prefix });
        self
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    fn bookmarks(&self) -> Result<&Bookmarks> {
        self.bookmarks.as_ref().ok_or(Error::NoBookmarkStore)
    }

    async fn raw_table(&self, database: &str, name: &str) -> Result<Option<glue::Table>> {
        match self
            .client
            .get_table()
            .set_catalog_id(self.catalog_id.clone())
            .database_name(database)
            .name(name)
            .send()
            .await
        {
            Ok(out) => Ok(out.table),
            Err(e) if e.code() == Some("EntityNotFoundException") => Ok(None),
            Err(e) => Err(remote(&format!("reading table {database}.{name}"), &e)),
        }
    }

    async fn table_or_missing(&self, database: &str, name: &str) -> Result<Table> {
        let t = self
            .raw_table(database, name)
            .await?
            .ok_or_else(|| Error::TableNotFound {
                database: database.into(),
                table: name.into(),
            })?;
        Ok(table_from_glue(database, &t))
    }

    /// Every partition of a table matching `expression` (all of them for `None`), page by page.
    async fn fetch_partitions(
        &self,
        database: &str,
        table: &str,
        expression: Option<String>,
    ) -> std::result::Result<Vec<glue::Partition>, aws_sdk_glue::Error> {
        let mut out = Vec::new();
        let mut pages = self
            .client
            .get_partitions()
            .set_catalog_id(self.catalog_id.clone())
            .database_name(database)
            .table_name(table)
            .set_expression(expression)
            .exclude_column_schema(true)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            out.extend(
                page.map_err(aws_sdk_glue::Error::from)?
                    .partitions
                    .unwrap_or_default(),
            );
        }
        Ok(out)
    }

    async fn ensure_database(&self, db: &Database) -> Result<()> {
        if self.get_database(&db.name).await?.is_some() {
            return Ok(());
        }
        let input = database_input(db)?;
        match self
            .client
            .create_database()
            .set_catalog_id(self.catalog_id.clone())
            .database_input(input)
            .send()
            .await
        {
            // Created by someone else in between: it exists, which is what we wanted.
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("AlreadyExistsException") => Ok(()),
            Err(e) => Err(remote(&format!("creating database {}", db.name), &e)),
        }
    }

    async fn write_table(&self, w: &TableWrite) -> Result<()> {
        let t = &w.table;
        let what = format!("table {}", t.qualified_name());
        let input = table_input(t)?;
        match w.expected_version {
            None => match self
                .client
                .create_table()
                .set_catalog_id(self.catalog_id.clone())
                .database_name(&t.database)
                .table_input(input)
                .send()
                .await
            {
                Ok(_) => Ok(()),
                Err(e) if e.code() == Some("AlreadyExistsException") => Err(Error::Conflict {
                    what,
                    expected: None,
                    found: Some(0),
                }),
                Err(e) => Err(remote(&format!("creating {what}"), &e)),
            },
            Some(expected) => {
                // Glue checks VersionId itself; the read first gives a clear error on services
                // (and emulators) that do not.
                let found = self
                    .raw_table(&t.database, &t.name)
                    .await?
                    .map(|g| version(g.version_id()));
                if found != Some(expected) {
                    return Err(Error::Conflict {
                        what,
                        expected: Some(expected),
                        found,
                    });
                }
                match self
                    .client
                    .update_table()
                    .set_catalog_id(self.catalog_id.clone())
                    .database_name(&t.database)
                    .table_input(input)
                    .version_id(expected.to_string())
                    .send()
                    .await
                {
                    Ok(_) => Ok(()),
                    Err(e) if e.code() == Some("ConcurrentModificationException") => {
                        Err(Error::Conflict {
                            what,
                            expected: Some(expected),
                            found: None,
                        })
                    }
                    Err(e) => Err(remote(&format!("updating {what}"), &e)),
                }
            }
        }
    }

    async fn write_partitions(&self, table: &Table, writes: &[&PartitionWrite]) -> Result<()> {
        let what = format!("partitions of {}", table.qualified_name());
        let (new, existing): (Vec<&PartitionWrite>, Vec<&PartitionWrite>) = writes
            .iter()
            .copied()
            .partition(|w| w.expected_version.is_none());
        for chunk in new.chunks(BATCH) {
            let inputs = chunk
                .iter()
                .map(|w| partition_input(table, &w.partition))
                .collect::<Result<Vec<_>>>()?;
            let out = self
                .client
                .batch_create_partition()
                .set_catalog_id(self.catalog_id.clone())
                .database_name(&table.database)
                .table_name(&table.name)
                .set_partition_input_list(Some(inputs))
                .send()
                .await
                .map_err(|e| remote(&format!("creating {what}"), &e))?;
            if let Some(err) = out.errors().first() {
                return Err(partition_error(
                    "creating",
                    table,
                    err.partition_values(),
                    err.error_detail(),
                ));
            }
        }
        // Glue partitions have no version to check against; updates overwrite.
        for chunk in existing.chunks(BATCH) {
            let entries = chunk
                .iter()
                .map(|w| {
                    glue::BatchUpdatePartitionRequestEntry::builder()
                        .set_partition_value_list(Some(glue_values(&w.partition.values)))
                        .partition_input(partition_input(table, &w.partition)?)
                        .build()
                        .map_err(|e| invalid("partition update", &e))
                })
                .collect::<Result<Vec<_>>>()?;
            let out = self
                .client
                .batch_update_partition()
                .set_catalog_id(self.catalog_id.clone())
                .database_name(&table.database)
                .table_name(&table.name)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| remote(&format!("updating {what}"), &e))?;
            if let Some(err) = out.errors().first() {
                return Err(partition_error(
                    "updating",
                    table,
                    err.partition_value_list(),
                    err.error_detail(),
                ));
            }
        }
        Ok(())
    }
}

/// The deletes of one write, checked against Glue before anything changes.
#[derive(Default)]
struct Drops<'a> {
    /// Partition deletes by table, leaving out tables the write drops anyway.
    partitions: Vec<(Table, Vec<&'a PartitionDrop>)>,
    tables: Vec<&'a TableDrop>,
    databases: Vec<&'a DatabaseDrop>,
    /// Every table gone after the deletes, as `db.table`, its database's included.
    tables_gone: HashSet<String>,
    databases_gone: BTreeSet<String>,
}

impl Drops<'_> {
    fn is_gone(&self, database: &str, table: &str) -> bool {
        self.tables_gone.contains(&format!("{database}.{table}"))
    }
}

impl GlueCatalog {
    /// Check every delete of `write` as the embedded catalog applies them (partitions, then
    /// tables, then databases, each seeing the ones before), without changing anything.
    async fn check_drops<'a>(&self, write: &'a CatalogWrite) -> Result<Drops<'a>> {
        let mut drops = Drops::default();
        let mut by_table: BTreeMap<(&str, &str), Vec<&PartitionDrop>> = BTreeMap::new();
        for d in &write.drop_partitions {
            by_table
                .entry((d.database.as_str(), d.table.as_str()))
                .or_default()
                .push(d);
        }
        for ((db, name), ds) in by_table {
            let table = self.table_or_missing(db, name).await?;
            for d in &ds {
                if d.values.len() != table.partition_keys.len() {
                    return Err(Error::PartitionArity {
                        table: table.qualified_name(),
                        expected: table.partition_keys.len(),
                        found: d.values.len(),
                    });
                }
            }
            let mut existing = self.existing_partitions(&table, &ds).await?;
            for d in &ds {
                // Each partition once: a second drop of it in the same write finds nothing.
                if !existing.remove(&glue_values(&d.values)) {
                    return Err(Error::PartitionNotFound {
                        table: table.qualified_name(),
                        partition: partition_spec(&table.partition_keys, &d.values),
                    });
                }
                if let Some(expected) = d.expected_version
                    && expected != 0
                {
                    return Err(Error::Conflict {
                        what: format!(
                            "partition {} of {}",
                            partition_spec(&table.partition_keys, &d.values),
                            table.qualified_name()
                        ),
                        expected: Some(expected),
                        found: Some(0),
                    });
                }
            }
            drops.partitions.push((table, ds));
        }
        for d in &write.drop_tables {
            let qualified = format!("{}.{}", d.database, d.table);
            let found = if drops.tables_gone.contains(&qualified) {
                None
            } else {
                self.raw_table(&d.database, &d.table)
                    .await?
                    .map(|t| version(t.version_id()))
            };
            let Some(found) = found else {
                return Err(Error::TableNotFound {
                    database: d.database.clone(),
                    table: d.table.clone(),
                });
            };
            if let Some(expected) = d.expected_version
                && expected != found
            {
                return Err(Error::Conflict {
                    what: format!("table {qualified}"),
                    expected: Some(expected),
                    found: Some(found),
                });
            }
            drops.tables_gone.insert(qualified);
            drops.tables.push(d);
        }
        for d in &write.drop_databases {
            if drops.databases_gone.contains(&d.name) || self.get_database(&d.name).await?.is_none()
            {
                return Err(Error::DatabaseNotFound {
                    database: d.name.clone(),
                });
            }
            let remaining: Vec<String> = self
                .list_tables(&d.name)
                .await?
                .into_iter()
                .map(|t| t.name)
                .filter(|name| !drops.is_gone(&d.name, name))
                .collect();
            if !remaining.is_empty() && !d.cascade {
                return Err(Error::DatabaseNotEmpty {
                    database: d.name.clone(),
                    tables: remaining.iter().take(TABLES_NAMED).cloned().collect(),
                    count: remaining.len(),
                });
            }
            drops
                .tables_gone
                .extend(remaining.iter().map(|name| format!("{}.{name}", d.name)));
            drops.databases_gone.insert(d.name.clone());
            drops.databases.push(d);
        }
        let gone = &drops.tables_gone;
        drops
            .partitions
            .retain(|(t, _)| !gone.contains(&t.qualified_name()));
        Ok(drops)
    }

    /// Which of the partitions `drops` names exist, as Glue values (`BatchGetPartition`).
    async fn existing_partitions(
        &self,
        table: &Table,
        drops: &[&PartitionDrop],
    ) -> Result<HashSet<Vec<String>>> {
        let what = format!("reading partitions of {}", table.qualified_name());
        let mut found = HashSet::new();
        let keys = drops
            .iter()
            .map(|d| value_list(&d.values))
            .collect::<Result<Vec<_>>>()?;
        for chunk in keys.chunks(GET_BATCH) {
            let mut todo = chunk.to_vec();
            let mut attempt = 0;
            while !todo.is_empty() {
                attempt += 1;
                if attempt > GET_ATTEMPTS {
                    return Err(Error::Remote {
                        action: what,
                        message: format!(
                            "Glue left {} partitions unprocessed {GET_ATTEMPTS} times; retry later",
                            todo.len()
                        ),
                    });
                }
                let out = self
                    .client
                    .batch_get_partition()
                    .set_catalog_id(self.catalog_id.clone())
                    .database_name(&table.database)
                    .table_name(&table.name)
                    .set_partitions_to_get(Some(todo))
                    .send()
                    .await
                    .map_err(|e| remote(&what, &e))?;
                found.extend(out.partitions().iter().map(|p| p.values().to_vec()));
                todo = out.unprocessed_keys().to_vec();
            }
        }
        Ok(found)
    }

    async fn delete_partitions(&self, table: &Table, drops: &[&PartitionDrop]) -> Result<()> {
        let what = format!("partitions of {}", table.qualified_name());
        for chunk in drops.chunks(DELETE_BATCH) {
            let keys = chunk
                .iter()
                .map(|d| value_list(&d.values))
                .collect::<Result<Vec<_>>>()?;
            let out = self
                .client
                .batch_delete_partition()
                .set_catalog_id(self.catalog_id.clone())
                .database_name(&table.database)
                .table_name(&table.name)
                .set_partitions_to_delete(Some(keys))
                .send()
                .await
                .map_err(|e| remote(&format!("deleting {what}"), &e))?;
            if let Some(err) = out.errors().first() {
                let detail = err.error_detail();
                // Checked just before: another writer deleted it in between.
                if detail.and_then(|d| d.error_code()) == Some("EntityNotFoundException") {
                    let values: Vec<Option<String>> = err
                        .partition_values()
                        .iter()
                        .map(|v| (v != HIVE_DEFAULT_PARTITION).then(|| v.clone()))
                        .collect();
                    return Err(Error::PartitionNotFound {
                        table: table.qualified_name(),
                        partition: partition_spec(&table.partition_keys, &values),
                    });
                }
                return Err(partition_error(
                    "deleting",
                    table,
                    err.partition_values(),
                    detail,
                ));
            }
        }
        Ok(())
    }

    async fn delete_table(&self, d: &TableDrop) -> Result<()> {
        match self
            .client
            .delete_table()
            .set_catalog_id(self.catalog_id.clone())
            .database_name(&d.database)
            .name(&d.table)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("EntityNotFoundException") => Err(Error::TableNotFound {
                database: d.database.clone(),
                table: d.table.clone(),
            }),
            Err(e) if e.code() == Some("ConcurrentModificationException") => Err(Error::Conflict {
                what: format!("table {}.{}", d.database, d.table),
                expected: d.expected_version,
                found: None,
            }),
            Err(e) => Err(remote(
                &format!("deleting table {}.{}", d.database, d.table),
                &e,
            )),
        }
    }

    /// `DeleteDatabase`; Glue deletes the tables (and their partitions) of a database with it.
    async fn delete_database(&self, d: &DatabaseDrop) -> Result<()> {
        match self
            .client
            .delete_database()
            .set_catalog_id(self.catalog_id.clone())
            .name(&d.name)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("EntityNotFoundException") => Err(Error::DatabaseNotFound {
                database: d.name.clone(),
            }),
            Err(e) => Err(remote(&format!("deleting database {}", d.name), &e)),
        }
    }

    async fn update_database(&self, db: &Database) -> Result<()> {
        match self
            .client
            .update_database()
            .set_catalog_id(self.catalog_id.clone())
            .name(&db.name)
            .database_input(database_input(db)?)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("EntityNotFoundException") => Err(Error::DatabaseNotFound {
                database: db.name.clone(),
            }),
            Err(e) => Err(remote(&format!("updating database {}", db.name), &e)),
        }
    }
}

#[async_trait::async_trait]
impl Catalog for GlueCatalog {
    async fn list_databases(&self) -> Result<Vec<Database>> {
        let mut out = Vec::new();
        let mut pages = self
            .client
            .get_databases()
            .set_catalog_id(self.catalog_id.clone())
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| remote("listing databases", &e))?;
            out.extend(page.database_list().iter().map(database_from_glue));
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    async fn get_database(&self, name: &str) -> Result<Option<Database>> {
        match self
            .client
            .get_database()
            .set_catalog_id(self.catalog_id.clone())
            .name(name)
            .send()
            .await
        {
            Ok(out) => Ok(out.database().map(database_from_glue)),
            Err(e) if e.code() == Some("EntityNotFoundException") => Ok(None),
            Err(e) => Err(remote(&format!("reading database {name}"), &e)),
        }
    }

    async fn list_tables(&self, database: &str) -> Result<Vec<Table>> {
        let mut out = Vec::new();
        let mut pages = self
            .client
            .get_tables()
            .set_catalog_id(self.catalog_id.clone())
            .database_name(database)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = match page {
                Ok(p) => p,
                Err(e) if e.code() == Some("EntityNotFoundException") => {
                    return Err(Error::DatabaseNotFound {
                        database: database.into(),
                    });
                }
                Err(e) => return Err(remote(&format!("listing tables of {database}"), &e)),
            };
            out.extend(
                page.table_list()
                    .iter()
                    .map(|t| table_from_glue(database, t)),
            );
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    async fn get_table(&self, database: &str, table: &str) -> Result<Option<Table>> {
        Ok(self
            .raw_table(database, table)
            .await?
            .map(|t| table_from_glue(database, &t)))
    }

    async fn get_partitions(
        &self,
        database: &str,
        table: &str,
        filter: &PartitionFilter,
    ) -> Result<Vec<Partition>> {
        let t = self.table_or_missing(database, table).await?;
        // Validates keys and literals before anything is sent.
        let expression = expression(&t, filter)?;
        let raw = match self
            .fetch_partitions(database, table, expression.clone())
            .await
        {
            Ok(raw) => raw,
            // Glue refuses an expression it cannot evaluate on some stored value (a numeric key
            // holding the default partition, say): fetch all and filter here.
            Err(e)
                if expression.is_some()
                    && matches!(
                        e.code(),
                        Some("InvalidInputException" | "InvalidStateException")
                    ) =>
            {
                self.fetch_partitions(database, table, None)
                    .await
                    .map_err(|e| remote(&format!("listing partitions of {database}.{table}"), &e))?
            }
            Err(e) => {
                return Err(remote(
                    &format!("listing partitions of {database}.{table}"),
                    &e,
                ));
            }
        };
        let mut out = Vec::with_capacity(raw.len());
        for p in &raw {
            let p = partition_from_glue(p);
            if filter.matches(&t.qualified_name(), &t.partition_keys, &p.values)? {
                out.push(p);
            }
        }
        out.sort_by_cached_key(|p| sort_key(&t, &p.values));
        Ok(out)
    }

    fn counts_partitions_cheaply(&self) -> bool {
        false
    }

    async fn count_partitions(&self, database: &str, table: &str) -> Result<u64> {
        self.table_or_missing(database, table).await?;
        let raw = self
            .fetch_partitions(database, table, None)
            .await
            .map_err(|e| remote(&format!("counting partitions of {database}.{table}"), &e))?;
        Ok(raw.len() as u64)
    }

    async fn seen_objects(&self, target: &str) -> Result<Vec<SeenObject>> {
        Ok(self
            .bookmarks()?
            .load(target)
            .await?
            .0
            .into_values()
            .collect())
    }

    async fn column_statistics(
        &self,
        database: &str,
        table: &str,
        columns: &[String],
    ) -> Result<Vec<ColumnStatistics>> {
        let mut out = Vec::new();
        // Glue takes at most 100 names per call.
        for names in columns.chunks(100) {
            let response = self
                .client
                .get_column_statistics_for_table()
                .set_catalog_id(self.catalog_id.clone())
                .database_name(database)
                .table_name(table)
                .set_column_names(Some(names.to_vec()))
                .send()
                .await
                .map_err(|e| {
                    remote(
                        &format!("reading column statistics of {database}.{table}"),
                        &e,
                    )
                })?;
            out.extend(
                response
                    .column_statistics_list()
                    .iter()
                    .filter_map(statistics_from_glue),
            );
        }
        Ok(out)
    }

    async fn update_column_statistics(
        &self,
        database: &str,
        table: &str,
        statistics: &[ColumnStatistics],
    ) -> Result<()> {
        let action = format!("storing column statistics of {database}.{table}");
        // Glue takes at most 25 columns per call.
        for batch in statistics.chunks(25) {
            let list = batch
                .iter()
                .map(statistics_to_glue)
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| Error::Remote {
                    action: action.clone(),
                    message: e.to_string(),
                })?;
            let response = self
                .client
                .update_column_statistics_for_table()
                .set_catalog_id(self.catalog_id.clone())
                .database_name(database)
                .table_name(table)
                .set_column_statistics_list(Some(list))
                .send()
                .await
                .map_err(|e| remote(&action, &e))?;
            if let Some(failed) = response.errors().first() {
                let column = failed
                    .column_statistics()
                    .map(|c| c.column_name())
                    .unwrap_or_default();
                let message = failed
                    .error()
                    .and_then(|e| e.error_message())
                    .unwrap_or("refused");
                return Err(Error::Remote {
                    action: format!("{action}, column {column}"),
                    message: message.to_string(),
                });
            }
        }
        Ok(())
    }

    async fn commit(&self, write: CatalogWrite) -> Result<()> {
        if write.is_empty() {
            return Ok(());
        }
        if write.has_job_parts() {
            return Err(Error::JobStateUnsupported);
        }
        let has_bookmarks = !write.seen.is_empty() || !write.unseen.is_empty();
        if has_bookmarks {
            self.bookmarks()?;
        }
        let drops = self.check_drops(&write).await?;
        let created = |db: &str| write.databases.iter().any(|d| d.name == db);
        for db in &write.update_databases {
            let exists = created(&db.name)
                || (!drops.databases_gone.contains(&db.name)
                    && self.get_database(&db.name).await?.is_some());
            if !exists {
                return Err(Error::DatabaseNotFound {
                    database: db.name.clone(),
                });
            }
        }
        for tw in &write.tables {
            let t = &tw.table;
            if drops.databases_gone.contains(&t.database) && !created(&t.database) {
                return Err(Error::DatabaseNotFound {
                    database: t.database.clone(),
                });
            }
            if drops.is_gone(&t.database, &t.name) && tw.expected_version.is_some() {
                return Err(Error::Conflict {
                    what: format!("table {}", t.qualified_name()),
                    expected: tw.expected_version,
                    found: None,
                });
            }
        }
        // Every partition's table, checked before anything is written.
        let mut by_table: BTreeMap<(&str, &str), Vec<&PartitionWrite>> = BTreeMap::new();
        for p in &write.partitions {
            by_table
                .entry((p.database.as_str(), p.table.as_str()))
                .or_default()
                .push(p);
        }
        let mut partition_writes = Vec::with_capacity(by_table.len());
        for ((db, name), writes) in by_table {
            let gone = drops.is_gone(db, name);
            let table = match write
                .tables
                .iter()
                .find(|t| t.table.database == db && t.table.name == name)
            {
                Some(t) => t.table.clone(),
                None if gone => {
                    return Err(Error::TableNotFound {
                        database: db.into(),
                        table: name.into(),
                    });
                }
                None => self.table_or_missing(db, name).await?,
            };
            for w in &writes {
                if w.partition.values.len() != table.partition_keys.len() {
                    return Err(Error::PartitionArity {
                        table: table.qualified_name(),
                        expected: table.partition_keys.len(),
                        found: w.partition.values.len(),
                    });
                }
                if gone && w.expected_version.is_some() {
                    return Err(Error::Conflict {
                        what: format!(
                            "partition {} of {}",
                            partition_spec(&table.partition_keys, &w.partition.values),
                            table.qualified_name()
                        ),
                        expected: w.expected_version,
                        found: None,
                    });
                }
            }
            partition_writes.push((table, writes));
        }

        if let Some(bookmarks) = &self.bookmarks
            && (!drops.tables_gone.is_empty() || !drops.databases_gone.is_empty())
        {
            bookmarks
                .forget(|qualified| {
                    drops.tables_gone.contains(qualified)
                        || drops.databases_gone.iter().any(|db| {
                            qualified
                                .strip_prefix(db.as_str())
                                .is_some_and(|rest| rest.starts_with('.'))
                        })
                })
                .await?;
        }
        for (table, ds) in &drops.partitions {
            self.delete_partitions(table, ds).await?;
        }
        for d in &drops.tables {
            self.delete_table(d).await?;
        }
        for d in &drops.databases {
            self.delete_database(d).await?;
        }
        for db in &write.databases {
            self.ensure_database(db).await?;
        }
        for db in &write.update_databases {
            self.update_database(db).await?;
        }
        for t in &write.tables {
            self.write_table(t).await?;
        }
        for (table, writes) in &partition_writes {
            self.write_partitions(table, writes).await?;
        }
        if has_bookmarks {
            let target = write.crawl_target.as_deref().unwrap_or_default();
            self.bookmarks()?
                .update(target, &write.seen, &write.unseen)
                .await?;
        }
        Ok(())
    }
}

/// Crawl bookmarks, one JSON object per crawl target.
#[derive(Clone)]
struct Bookmarks {
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
}

impl fmt::Debug for Bookmarks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bookmarks({} under {})", self.store, self.prefix)
    }
}

#[derive(Default, Serialize, Deserialize)]
struct BookmarkFile {
    target: String,
    objects: Vec<SeenObject>,
}

impl Bookmarks {
    /// Where every bookmark file lives.
    fn folder(&self) -> ObjectPath {
        self.prefix.clone().join("crawl-bookmarks")
    }

    fn path(&self, target: &str) -> ObjectPath {
        let name =
            percent_encoding::utf8_percent_encode(target, percent_encoding::NON_ALPHANUMERIC)
                .to_string();
        self.folder().join(format!("{name}.json"))
    }

    async fn load(
        &self,
        target: &str,
    ) -> Result<(BTreeMap<String, SeenObject>, Option<UpdateVersion>)> {
        let (file, version) = self.read(&self.path(target)).await?;
        let map = file
            .objects
            .into_iter()
            .map(|o| (o.path.clone(), o))
            .collect();
        Ok((map, version))
    }

    /// One bookmark file and the version to update it at (`None`: it does not exist).
    async fn read(&self, path: &ObjectPath) -> Result<(BookmarkFile, Option<UpdateVersion>)> {
        let got = match self.store.get(path).await {
            Ok(g) => g,
            Err(object_store::Error::NotFound { .. }) => {
                return Ok((BookmarkFile::default(), None));
            }
            Err(e) => return Err(state_error(path, &e)),
        };
        let version = UpdateVersion {
            e_tag: got.meta.e_tag.clone(),
            version: got.meta.version.clone(),
        };
        let bytes = got.bytes().await.map_err(|e| state_error(path, &e))?;
        let file: BookmarkFile =
            serde_json::from_slice(&bytes).map_err(|source| Error::Corrupt {
                what: format!("crawl bookmarks {path}"),
                source,
            })?;
        Ok((file, Some(version)))
    }

    /// Merge `seen` and drop `unseen`; a concurrent update of the same file is a conflict.
    async fn update(&self, target: &str, seen: &[SeenObject], unseen: &[String]) -> Result<()> {
        let (mut objects, version) = self.load(target).await?;
        for o in seen {
            objects.insert(o.path.clone(), o.clone());
        }
        for u in unseen {
            objects.remove(u);
        }
        let file = BookmarkFile {
            target: target.into(),
            objects: objects.into_values().collect(),
        };
        self.write(&self.path(target), &file, version).await
    }

    /// Forget, in every bookmark file, the objects recorded for a table `gone` says is dropped
    /// (given its `db.table` name), so that a re-crawl inspects them again.
    async fn forget(&self, gone: impl Fn(&str) -> bool) -> Result<()> {
        let folder = self.folder();
        let files: Vec<object_store::ObjectMeta> = self
            .store
            .list(Some(&folder))
            .try_collect()
            .await
            .map_err(|e| state_error(&folder, &e))?;
        for meta in files {
            // Forgetting is idempotent: on a concurrent update, re-read and forget again.
            let mut attempt = 0;
            loop {
                attempt += 1;
                let (mut file, version) = self.read(&meta.location).await?;
                let before = file.objects.len();
                file.objects
                    .retain(|o| !o.table.as_deref().is_some_and(&gone));
                if file.objects.len() == before {
                    break;
                }
                match self.write(&meta.location, &file, version).await {
                    Err(Error::Conflict { .. }) if attempt < FORGET_ATTEMPTS => continue,
                    other => break other?,
                }
            }
        }
        Ok(())
    }

    /// Write `file` at `path` if it is still at `version` (`None`: if it does not exist yet).
    async fn write(
        &self,
        path: &ObjectPath,
        file: &BookmarkFile,
        version: Option<UpdateVersion>,
    ) -> Result<()> {
        let body = serde_json::to_vec(file).map_err(|source| Error::Corrupt {
            what: "crawl bookmarks".into(),
            source,
        })?;
        let mode = match version {
            None => PutMode::Create,
            Some(v) => PutMode::Update(v),
        };
        let payload = PutPayload::from(body);
        let result = match self
            .store
            .put_opts(path, payload.clone(), mode.into())
            .await
        {
            // Stores without conditional writes (local files for updates) overwrite; a single
            // PUT of the whole file is still atomic.
            Err(object_store::Error::NotImplemented { .. }) => {
                self.store.put(path, payload).await.map(|_| ())
            }
            other => other.map(|_| ()),
        };
        match result {
            Ok(()) => Ok(()),
            Err(
                object_store::Error::Precondition { .. }
                | object_store::Error::AlreadyExists { .. },
            ) => Err(Error::Conflict {
                what: format!("crawl bookmarks {path}"),
                expected: None,
                found: None,
            }),
            Err(e) => Err(state_error(path, &e)),
        }
    }
}

fn state_error(path: &ObjectPath, e: &object_store::Error) -> Error {
    Error::Remote {
        action: format!("accessing crawl bookmarks {path}"),
        message: e.to_string(),
    }
}

fn remote<E>(action: &str, e: &E) -> Error
where
    E: std::error::Error + ProvideErrorMetadata,
{
    let code = e.code().unwrap_or("error");
    let hint = match code {
        "AccessDeniedException" => "; check the credentials' Glue permissions",
        "EntityNotFoundException" => "; check the database and table names",
        "UnrecognizedClientException" | "InvalidSignatureException" => {
            "; check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or the profile"
        }
        _ => "",
    };
    Error::Remote {
        action: action.to_string(),
        message: format!("{code}: {}{hint}", DisplayErrorContext(e)),
    }
}

/// The first failure a batch partition call reported: a partition that already exists is a
/// conflict (someone else created it; the crawler retries), anything else a service error.
fn partition_error(
    action: &str,
    table: &Table,
    values: &[String],
    detail: Option<&glue::ErrorDetail>,
) -> Error {
    let code = detail.and_then(|d| d.error_code()).unwrap_or("error");
    let values = values.join("/");
    if code == "AlreadyExistsException" {
        return Error::Conflict {
            what: format!("partition {values} of {}", table.qualified_name()),
            expected: None,
            found: Some(0),
        };
    }
    Error::Remote {
        action: format!("{action} partition {values} of {}", table.qualified_name()),
        message: format!(
            "{code}: {}",
            detail
                .and_then(|d| d.error_message())
                .unwrap_or("no message")
        ),
    }
}

fn invalid(what: &str, e: &impl fmt::Display) -> Error {
    Error::Remote {
        action: format!("building the Glue {what} input"),
        message: e.to_string(),
    }
}

fn hash(p: &BTreeMap<String, String>) -> HashMap<String, String> {
    p.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn sorted(p: Option<&HashMap<String, String>>) -> BTreeMap<String, String> {
    p.map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

fn time(t: Option<&aws_sdk_glue::primitives::DateTime>) -> DateTime<Utc> {
    t.and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
        .unwrap_or_default()
}

/// Glue's shape of `s`.
fn statistics_to_glue(
    s: &ColumnStatistics,
) -> std::result::Result<glue::ColumnStatistics, aws_sdk_glue::error::BuildError> {
    let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    let day = |d: &chrono::NaiveDate| {
        aws_sdk_glue::primitives::DateTime::from_secs(
            d.and_hms_opt(0, 0, 0)
                .unwrap_or_default()
                .and_utc()
                .timestamp(),
        )
    };
    let decimal = |d: &DecimalValue| {
        glue::DecimalNumber::builder()
            .unscaled_value(aws_sdk_glue::primitives::Blob::new(
                d.unscaled.to_be_bytes().to_vec(),
            ))
            .scale(d.scale)
            .build()
    };
    let data = glue::ColumnStatisticsData::builder();
    let data = match &s.data {
        StatisticsData::Boolean {
            nulls,
            trues,
            falses,
        } => data
            .r#type(glue::ColumnStatisticsType::Boolean)
            .boolean_column_statistics_data(
                glue::BooleanColumnStatisticsData::builder()
                    .number_of_nulls(count(*nulls))
                    .number_of_trues(count(*trues))
                    .number_of_falses(count(*falses))
                    .build(),
            ),
        StatisticsData::Date {
            nulls,
            distinct,
            min,
            max,
        } => data
            .r#type(glue::ColumnStatisticsType::Date)
            .date_column_statistics_data(
                glue::DateColumnStatisticsData::builder()
                    .number_of_nulls(count(*nulls))
                    .number_of_distinct_values(count(*distinct))
                    .set_minimum_value(min.as_ref().map(day))
                    .set_maximum_value(max.as_ref().map(day))
                    .build(),
            ),
        StatisticsData::Decimal {
            nulls,
            distinct,
            min,
            max,
        } => data
            .r#type(glue::ColumnStatisticsType::Decimal)
            .decimal_column_statistics_data(
                glue::DecimalColumnStatisticsData::builder()
                    .number_of_nulls(count(*nulls))
                    .number_of_distinct_values(count(*distinct))
                    .set_minimum_value(min.as_ref().map(decimal).transpose()?)
                    .set_maximum_value(max.as_ref().map(decimal).transpose()?)
                    .build(),
            ),
        StatisticsData::Double {
            nulls,
            distinct,
            min,
            max,
        } => data
            .r#type(glue::ColumnStatisticsType::Double)
            .double_column_statistics_data(
                glue::DoubleColumnStatisticsData::builder()
                    .number_of_nulls(count(*nulls))
                    .number_of_distinct_values(count(*distinct))
                    .set_minimum_value(*min)
                    .set_maximum_value(*max)
                    .build(),
            ),
        StatisticsData::Long {
            nulls,
            distinct,
            min,
            max,
        } => data
            .r#type(glue::ColumnStatisticsType::Long)
            .long_column_statistics_data(
                glue::LongColumnStatisticsData::builder()
                    .number_of_nulls(count(*nulls))
                    .number_of_distinct_values(count(*distinct))
                    .set_minimum_value(*min)
                    .set_maximum_value(*max)
                    .build(),
            ),
        StatisticsData::String {
            nulls,
            distinct,
            max_length,
            average_length,
        } => data
            .r#type(glue::ColumnStatisticsType::String)
            .string_column_statistics_data(
                glue::StringColumnStatisticsData::builder()
                    .number_of_nulls(count(*nulls))
                    .number_of_distinct_values(count(*distinct))
                    .maximum_length(count(*max_length))
                    .average_length(*average_length)
                    .build(),
            ),
        StatisticsData::Binary {
            nulls,
            max_length,
            average_length,
        } => data
            .r#type(glue::ColumnStatisticsType::Binary)
            .binary_column_statistics_data(
                glue::BinaryColumnStatisticsData::builder()
                    .number_of_nulls(count(*nulls))
                    .maximum_length(count(*max_length))
                    .average_length(*average_length)
                    .build(),
            ),
    };
    glue::ColumnStatistics::builder()
        .column_name(&s.column)
        .column_type(&s.data_type)
        .analyzed_time(aws_sdk_glue::primitives::DateTime::from_millis(
            s.analyzed_time.timestamp_millis(),
        ))
        .statistics_data(data.build()?)
        .build()
}

/// Quarry's shape of Glue's column statistics; `None` for a type it does not know.
fn statistics_from_glue(s: &glue::ColumnStatistics) -> Option<ColumnStatistics> {
    let count = |n: i64| u64::try_from(n).unwrap_or(0);
    let day = |t: Option<&aws_sdk_glue::primitives::DateTime>| {
        t.and_then(|t| DateTime::from_timestamp(t.secs(), 0))
            .map(|t| t.date_naive())
    };
    let decimal = |d: Option<&glue::DecimalNumber>| {
        let d = d?;
        let bytes = d.unscaled_value().as_ref();
        if bytes.is_empty() || bytes.len() > 16 {
            return None;
        }
        // Big-endian two's complement, sign-extended to 16 bytes.
        let fill = if bytes[0] & 0x80 != 0 { 0xff } else { 0 };
        let mut wide = [fill; 16];
        wide[16 - bytes.len()..].copy_from_slice(bytes);
        Some(DecimalValue {
            unscaled: i128::from_be_bytes(wide),
            scale: d.scale(),
        })
    };
    let d = s.statistics_data()?;
    let data = match d.r#type() {
        glue::ColumnStatisticsType::Boolean => {
            let b = d.boolean_column_statistics_data()?;
            StatisticsData::Boolean {
                nulls: count(b.number_of_nulls()),
                trues: count(b.number_of_trues()),
                falses: count(b.number_of_falses()),
            }
        }
        glue::ColumnStatisticsType::Date => {
            let v = d.date_column_statistics_data()?;
            StatisticsData::Date {
                nulls: count(v.number_of_nulls()),
                distinct: count(v.number_of_distinct_values()),
                min: day(v.minimum_value()),
                max: day(v.maximum_value()),
            }
        }
        glue::ColumnStatisticsType::Decimal => {
            let v = d.decimal_column_statistics_data()?;
            StatisticsData::Decimal {
                nulls: count(v.number_of_nulls()),
                distinct: count(v.number_of_distinct_values()),
                min: decimal(v.minimum_value()),
                max: decimal(v.maximum_value()),
            }
        }
        glue::ColumnStatisticsType::Double => {
            let v = d.double_column_statistics_data()?;
            StatisticsData::Double {
                nulls: count(v.number_of_nulls()),
                distinct: count(v.number_of_distinct_values()),
                min: Some(v.minimum_value()),
                max: Some(v.maximum_value()),
            }
        }
        glue::ColumnStatisticsType::Long => {
            let v = d.long_column_statistics_data()?;
            StatisticsData::Long {
                nulls: count(v.number_of_nulls()),
                distinct: count(v.number_of_distinct_values()),
                min: Some(v.minimum_value()),
                max: Some(v.maximum_value()),
            }
        }
        glue::ColumnStatisticsType::String => {
            let v = d.string_column_statistics_data()?;
            StatisticsData::String {
                nulls: count(v.number_of_nulls()),
                distinct: count(v.number_of_distinct_values()),
                max_length: count(v.maximum_length()),
                average_length: v.average_length(),
            }
        }
        glue::ColumnStatisticsType::Binary => {
            let v = d.binary_column_statistics_data()?;
            StatisticsData::Binary {
                nulls: count(v.number_of_nulls()),
                max_length: count(v.maximum_length()),
                average_length: v.average_length(),
            }
        }
        _ => return None,
    };
    Some(ColumnStatistics {
        column: s.column_name().to_string(),
        data_type: s.column_type().to_string(),
        analyzed_time: time(Some(s.analyzed_time())),
        data,
    })
}

fn version(v: Option<&str>) -> u64 {
    v.and_then(|v| v.parse().ok()).unwrap_or(0)
}

fn glue_values(values: &[Option<String>]) -> Vec<String> {
    values
        .iter()
        .map(|v| v.clone().unwrap_or_else(|| HIVE_DEFAULT_PARTITION.into()))
        .collect()
}

fn columns(cols: &[Column]) -> Result<Vec<glue::Column>> {
    cols.iter()
        .map(|c| {
            glue::Column::builder()
                .name(&c.name)
                .r#type(&c.data_type)
                .set_comment(c.comment.clone())
                .build()
                .map_err(|e| invalid("column", &e))
        })
        .collect()
}

fn columns_from_glue(cols: &[glue::Column]) -> Vec<Column> {
    cols.iter()
        .map(|c| Column {
            name: c.name().to_string(),
            data_type: c.r#type().unwrap_or("string").to_string(),
            comment: c.comment().map(str::to_string),
        })
        .collect()
}

fn storage_descriptor(sd: &StorageDescriptor, location: &str) -> Result<glue::StorageDescriptor> {
    Ok(glue::StorageDescriptor::builder()
        .set_columns(Some(columns(&sd.columns)?))
        .location(location)
        .input_format(&sd.input_format)
        .output_format(&sd.output_format)
        .compressed(sd.compressed)
        .serde_info(
            glue::SerDeInfo::builder()
                .serialization_library(&sd.serde_info.serialization_library)
                .set_parameters(Some(hash(&sd.serde_info.parameters)))
                .build(),
        )
        .set_parameters(Some(hash(&sd.parameters)))
        .build())
}

fn database_input(db: &Database) -> Result<glue::DatabaseInput> {
    glue::DatabaseInput::builder()
        .name(&db.name)
        .set_description(db.description.clone())
        .set_location_uri(db.location.clone())
        .set_parameters(Some(hash(&db.parameters)))
        .build()
        .map_err(|e| invalid("database", &e))
}

fn value_list(values: &[Option<String>]) -> Result<glue::PartitionValueList> {
    glue::PartitionValueList::builder()
        .set_values(Some(glue_values(values)))
        .build()
        .map_err(|e| invalid("partition values", &e))
}

fn table_input(t: &Table) -> Result<glue::TableInput> {
    glue::TableInput::builder()
        .name(&t.name)
        .set_description(t.description.clone())
        .table_type(&t.table_type)
        .set_view_original_text(t.view.as_ref().map(|v| v.original.clone()))
        .set_view_expanded_text(t.view.as_ref().map(|v| v.expanded.clone()))
        .storage_descriptor(storage_descriptor(&t.storage, &t.storage.location)?)
        .set_partition_keys(Some(columns(&t.partition_keys)?))
        .set_parameters(Some(hash(&t.parameters)))
        .build()
        .map_err(|e| invalid("table", &e))
}

fn partition_input(table: &Table, p: &Partition) -> Result<glue::PartitionInput> {
    // Like Glue's crawler: the table's storage descriptor, with the partition's location.
    Ok(glue::PartitionInput::builder()
        .set_values(Some(glue_values(&p.values)))
        .storage_descriptor(storage_descriptor(&table.storage, &p.location)?)
        .set_parameters(Some(hash(&p.parameters)))
        .build())
}

fn database_from_glue(d: &glue::Database) -> Database {
    Database {
        name: d.name().to_string(),
        description: d.description().map(str::to_string),
        location: d.location_uri().map(str::to_string),
        parameters: sorted(d.parameters()),
        create_time: time(d.create_time()),
    }
}

fn table_from_glue(database: &str, t: &glue::Table) -> Table {
    let sd = t.storage_descriptor();
    let serde = sd.and_then(|s| s.serde_info());
    Table {
        database: database.to_string(),
        name: t.name().to_string(),
        description: t.description().map(str::to_string),
        table_type: t.table_type().unwrap_or("EXTERNAL_TABLE").to_string(),
        view: t.view_original_text().map(|original| ViewText {
            original: original.to_string(),
            expanded: t.view_expanded_text().unwrap_or_default().to_string(),
        }),
        storage: StorageDescriptor {
            location: sd
                .and_then(|s| s.location())
                .unwrap_or_default()
                .to_string(),
            columns: columns_from_glue(sd.map(|s| s.columns()).unwrap_or_default()),
            input_format: sd.and_then(|s| s.input_format()).unwrap_or_default().into(),
            output_format: sd
                .and_then(|s| s.output_format())
                .unwrap_or_default()
                .into(),
            serde_info: SerDeInfo {
                serialization_library: serde
                    .and_then(|s| s.serialization_library())
                    .unwrap_or_default()
                    .into(),
                parameters: sorted(serde.and_then(|s| s.parameters())),
            },
            compressed: sd.is_some_and(|s| s.compressed()),
            parameters: sorted(sd.and_then(|s| s.parameters())),
        },
        partition_keys: columns_from_glue(t.partition_keys()),
        parameters: sorted(t.parameters()),
        create_time: time(t.create_time()),
        update_time: time(t.update_time().or(t.create_time())),
        version: version(t.version_id()),
    }
}

fn partition_from_glue(p: &glue::Partition) -> Partition {
    Partition {
        values: p
            .values()
            .iter()
            .map(|v| (v != HIVE_DEFAULT_PARTITION).then(|| v.clone()))
            .collect(),
        location: p
            .storage_descriptor()
            .and_then(|s| s.location())
            .unwrap_or_default()
            .to_string(),
        parameters: sorted(p.parameters()),
        create_time: time(p.creation_time()),
        update_time: time(p.last_analyzed_time().or(p.creation_time())),
        version: 0,
    }
}

/// Order partitions like the embedded catalog: by key values, numerically for numeric keys.
fn sort_key(t: &Table, values: &[Option<String>]) -> Vec<(u8, i128, String)> {
    values
        .iter()
        .zip(&t.partition_keys)
        .map(
            |(v, k)| match (v, ValueOrder::for_hive_type(&k.data_type)) {
                (None, _) => (0, 0, String::new()),
                (Some(v), ValueOrder::Numeric) => match v.parse::<f64>() {
                    Ok(n) => (1, (n * 1e6) as i128, String::new()),
                    Err(_) => (2, 0, v.clone()),
                },
                (Some(v), ValueOrder::Text) => (1, 0, v.clone()),
            },
        )
        .collect()
}

/// A Glue `Expression` for the predicates it can evaluate exactly; the rest (NULL tests,
/// literals that would need quoting rules) are left to the local re-check.
pub fn expression(t: &Table, filter: &PartitionFilter) -> Result<Option<String>> {
    let mut parts = Vec::new();
    for f in &filter.filters {
        let key = &t.partition_keys[t.partition_key_index(&f.key)?];
        let numeric = ValueOrder::for_hive_type(&key.data_type) == ValueOrder::Numeric;
        let lit = |v: &str| -> Result<Option<String>> {
            if numeric {
                return if v.parse::<f64>().is_ok_and(f64::is_finite) {
                    Ok(Some(v.to_string()))
                } else {
                    Err(Error::BadPartitionValue {
                        table: t.qualified_name(),
                        key: key.name.clone(),
                        value: v.to_string(),
                    })
                };
            }
            let plain = v
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || " -_:.+/".contains(c));
            Ok(plain.then(|| format!("'{v}'")))
        };
        let name = &key.name;
        let part = match &f.predicate {
            KeyPredicate::Eq(v) => lit(v)?.map(|l| format!("{name} = {l}")),
            KeyPredicate::In(vs) if vs.is_empty() => None,
            KeyPredicate::In(vs) => vs
                .iter()
                .map(|v| lit(v))
                .collect::<Result<Option<Vec<_>>>>()?
                .map(|ls| format!("{name} IN ({})", ls.join(", "))),
            KeyPredicate::Range { low, high } => {
                let mut r = Vec::new();
                for (bound, inc, exc) in [(low, ">=", ">"), (high, "<=", "<")] {
                    match bound {
                        Bound::Included(v) => {
                            if let Some(l) = lit(v)? {
                                r.push(format!("{name} {inc} {l}"));
                            }
                        }
                        Bound::Excluded(v) => {
                            if let Some(l) = lit(v)? {
                                r.push(format!("{name} {exc} {l}"));
                            }
                        }
                        Bound::Unbounded => {}
                    }
                }
                (!r.is_empty()).then(|| r.join(" AND "))
            }
            KeyPredicate::IsNull | KeyPredicate::IsNotNull => None,
        };
        parts.extend(part);
    }
    Ok((!parts.is_empty()).then(|| parts.join(" AND ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every statistics type goes to Glue's shape and back unchanged (decimals as big-endian
    /// two's complement, dates as midnight UTC).
    #[test]
    fn column_statistics_survive_glues_shape() {
        let at = DateTime::from_timestamp_millis(1_764_500_000_123).unwrap();
        let day = |d| chrono::NaiveDate::from_ymd_opt(2024, 2, d);
        let all = [
            StatisticsData::Boolean {
                nulls: 1,
                trues: 2,
                falses: 3,
            },
            StatisticsData::Date {
                nulls: 0,
                distinct: 29,
                min: day(1),
                max: day(29),
            },
            StatisticsData::Decimal {
                nulls: 4,
                distinct: 9,
                min: Some(DecimalValue {
                    unscaled: -12_345,
                    scale: 2,
                }),
                max: Some(DecimalValue {
                    unscaled: i128::MAX,
                    scale: 2,
                }),
            },
            StatisticsData::Double {
                nulls: 0,
                distinct: 3,
                min: Some(-0.5),
                max: Some(1e300),
            },
            StatisticsData::Long {
                nulls: 7,
                distinct: 100,
                min: Some(i64::MIN),
                max: Some(42),
            },
            StatisticsData::String {
                nulls: 2,
                distinct: 5,
                max_length: 44,
                average_length: 12.5,
            },
            StatisticsData::Binary {
                nulls: 0,
                max_length: 8,
                average_length: 8.0,
            },
        ];
        for data in all {
            let stats = ColumnStatistics {
                column: "c".into(),
                data_type: "t".into(),
                analyzed_time: at,
                data,
            };
            let glue = statistics_to_glue(&stats).unwrap();
            assert_eq!(statistics_from_glue(&glue), Some(stats));
        }
    }

    fn table() -> Table {
        Table {
            database: "db".into(),
            name: "t".into(),
            description: None,
            table_type: "EXTERNAL_TABLE".into(),
            view: None,
            storage: StorageDescriptor::default(),
            partition_keys: vec![Column::new("dt", "date"), Column::new("hr", "int")],
            parameters: Default::default(),
            create_time: Utc::now(),
            update_time: Utc::now(),
            version: 0,
        }
    }

    #[test]
    fn expressions_quote_text_leave_numbers_bare_and_skip_null_tests() {
        let f = PartitionFilter::all()
            .eq("DT", "2024-01-02")
            .and(
                "hr",
                KeyPredicate::Range {
                    low: Bound::Excluded("3".into()),
                    high: Bound::Included("10".into()),
                },
            )
            .and("dt", KeyPredicate::IsNotNull);
        assert_eq!(
            expression(&table(), &f).expect("valid").as_deref(),
            Some("dt = '2024-01-02' AND hr > 3 AND hr <= 10")
        );
        let f = PartitionFilter::all().and("dt", KeyPredicate::In(vec!["a'b".into()]));
        assert_eq!(expression(&table(), &f).expect("valid"), None);
        assert!(expression(&table(), &PartitionFilter::all().eq("hr", "x")).is_err());
        assert!(expression(&table(), &PartitionFilter::all().eq("nope", "1")).is_err());
    }
}
