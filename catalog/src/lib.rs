//! The Quarry catalog: a model shaped like the AWS Glue Data Catalog (databases, tables with a
//! storage descriptor and partition keys, partitions), the [`Catalog`] trait every backend
//! implements, and [`SqliteCatalog`], the embedded transactional store on local disk.
//!
//! ```
//! # async fn demo() -> quarry_catalog::Result<()> {
//! use quarry_catalog::{Catalog, PartitionFilter, SqliteCatalog};
//! let catalog = SqliteCatalog::open_in_memory()?;
//! for table in catalog.list_tables("sales_db").await? {
//!     let eu = PartitionFilter::all().eq("region", "eu");
//!     println!("{}: {} eu partitions", table.name, catalog.get_partitions("sales_db", &table.name, &eu).await?.len());
//! }
//! # Ok(()) }
//! ```

mod error;
pub mod filter;
#[cfg(feature = "glue")]
pub mod glue;
pub mod history;
pub mod jobs;
pub mod model;
pub mod records;
mod sqlite;
pub mod statistics;
pub mod types;

use std::fmt::Debug;

pub use error::{Error, Result};
pub use filter::{KeyFilter, KeyPredicate, PartitionFilter, ValueOrder};
#[cfg(feature = "glue")]
pub use glue::{GlueCatalog, GlueOptions};
pub use history::{QueryRecord, QueryState};
pub use jobs::{
    BookmarkAdvance, BookmarkEntry, JobRun, JobRunState, JobSchedulerState, Lease, STATEMENT_JOB,
    WriteIntent,
};
pub use model::{
    Classification, Column, Database, Parameters, Partition, SeenObject, SerDeInfo,
    StorageDescriptor, Table, VIRTUAL_VIEW, ViewText, keys,
};
pub use sqlite::SqliteCatalog;
pub use statistics::{ColumnStatistics, DecimalValue, StatisticsData};

/// A table to create or replace. `expected_version` is the version the writer read
/// (`None`: the table must not exist yet); a mismatch fails the whole write with
/// [`Error::Conflict`] so that concurrent writers never lose each other's updates.
#[derive(Debug, Clone)]
pub struct TableWrite {
    pub table: Table,
    pub expected_version: Option<u64>,
}

/// A partition to create or replace, with the same optimistic check as [`TableWrite`].
#[derive(Debug, Clone)]
pub struct PartitionWrite {
    pub database: String,
    pub table: String,
    pub partition: Partition,
    pub expected_version: Option<u64>,
}

/// A table to delete, with its partitions. `expected_version`: `Some(v)` fails with
/// [`Error::Conflict`] unless the table is at version v; `None` deletes whatever version is there.
#[derive(Debug, Clone)]
pub struct TableDrop {
    pub database: String,
    pub table: String,
    pub expected_version: Option<u64>,
}

/// A partition to delete, by its values in key order.
#[derive(Debug, Clone)]
pub struct PartitionDrop {
    pub database: String,
    pub table: String,
    pub values: Vec<Option<String>>,
    pub expected_version: Option<u64>,
}

/// A database to delete; without `cascade` it must hold no tables
/// ([`Error::DatabaseNotEmpty`]); with `cascade` its tables and partitions go too.
#[derive(Debug, Clone)]
pub struct DatabaseDrop {
    pub name: String,
    pub cascade: bool,
}

/// One atomic change to the catalog: everything is applied, or nothing is.
///
/// Deletes come first (partitions, then tables, then databases), then creates and updates, so
/// one write can drop and re-create a table. Deleting something that does not exist fails the
/// write. Dropping a table, or a database with its tables, also forgets the crawl bookmarks
/// recorded for those tables, so that a re-crawl inspects their objects again.
#[derive(Debug, Clone, Default)]
pub struct CatalogWrite {
    pub drop_databases: Vec<DatabaseDrop>,
    pub drop_tables: Vec<TableDrop>,
    pub drop_partitions: Vec<PartitionDrop>,
    /// Databases to create when missing (existing ones are left as they are).
    pub databases: Vec<Database>,
    /// Databases to update: each must exist (after this write's drops and creates) and gets
    /// this description, location and parameters; its creation time is kept.
    pub update_databases: Vec<Database>,
    pub tables: Vec<TableWrite>,
    pub partitions: Vec<PartitionWrite>,
    /// Crawl bookmarks: the target whose objects are recorded below.
    pub crawl_target: Option<String>,
    pub seen: Vec<SeenObject>,
    pub unseen: Vec<String>,
    /// A job's bookmark, advanced with the output this write commits (catalogs whose
    /// [`Catalog::commits_job_state`] is true; others refuse the write).
    pub job_bookmark: Option<BookmarkAdvance>,
    /// Write intents ([`WriteIntent`]) this write completes.
    pub resolve_intents: Vec<String>,
    /// Object URLs whose crawl bookmarks go, whatever crawl recorded them (files a compaction
    /// replaced: a re-crawl must not subtract them from statistics that no longer count them).
    /// Glue keeps bookmarks per crawl target elsewhere and ignores this.
    pub forget_objects: Vec<String>,
}

impl CatalogWrite {
    pub fn is_empty(&self) -> bool {
        self.drop_databases.is_empty()
            && self.drop_tables.is_empty()
            && self.drop_partitions.is_empty()
            && self.databases.is_empty()
            && self.update_databases.is_empty()
            && self.tables.is_empty()
            && self.partitions.is_empty()
            && self.seen.is_empty()
            && self.unseen.is_empty()
            && self.job_bookmark.is_none()
            && self.resolve_intents.is_empty()
            && self.forget_objects.is_empty()
    }

    /// Whether the write carries job state ([`CatalogWrite::job_bookmark`], intents).
    pub fn has_job_parts(&self) -> bool {
        self.job_bookmark.is_some() || !self.resolve_intents.is_empty()
    }
}

/// A catalog backend. The embedded [`SqliteCatalog`] is the default; an AWS Glue backend
/// implements the same trait.
#[async_trait::async_trait]
pub trait Catalog: Send + Sync + Debug {
    async fn list_databases(&self) -> Result<Vec<Database>>;
    async fn get_database(&self, name: &str) -> Result<Option<Database>>;
    async fn list_tables(&self, database: &str) -> Result<Vec<Table>>;
    async fn get_table(&self, database: &str, table: &str) -> Result<Option<Table>>;
    /// Partitions matching `filter`, answered from an index: the cost follows the number of
    /// matching partitions, not the table's total.
    async fn get_partitions(
        &self,
        database: &str,
        table: &str,
        filter: &PartitionFilter,
    ) -> Result<Vec<Partition>>;
    async fn count_partitions(&self, database: &str, table: &str) -> Result<u64>;
    /// Whether [`Catalog::count_partitions`] is cheap enough to run for every query (an index
    /// count), or walks every partition (Glue has no count). Query planning skips it when not.
    fn counts_partitions_cheaply(&self) -> bool {
        true
    }
    /// Whether bookmarks keep Parquet footers ([`SeenObject::footer`]), so writers that just
    /// wrote Parquet files should record them (the embedded catalog does; Glue does not).
    fn keeps_footers(&self) -> bool {
        false
    }
    /// Whether [`Catalog::commit`] applies a write's job bookmark and write intents in the same
    /// transaction as its tables and partitions (the embedded catalog, whose file also keeps the
    /// jobs' state). Other backends refuse such writes; jobs commit their state separately.
    fn commits_job_state(&self) -> bool {
        false
    }
    /// URLs of objects that writes have published but not committed (their write intents are
    /// still open, or their process died before the commit): queries must not read them. Backends
    /// without write intents (Glue) return none.
    async fn uncommitted_objects(&self) -> Result<std::collections::HashSet<String>> {
        Ok(std::collections::HashSet::new())
    }
    /// Objects a previous crawl of `target` inspected.
    async fn seen_objects(&self, target: &str) -> Result<Vec<SeenObject>>;
    /// The crawl bookmarks of these object URLs, whatever crawl recorded them, for a caller that
    /// verifies them against a fresh listing (size and ETag) before trusting their row counts.
    /// Backends without an index by object return none, which is always correct.
    async fn objects(&self, _urls: &[String]) -> Result<Vec<SeenObject>> {
        Ok(Vec::new())
    }
    /// Like [`Catalog::objects`], with the Parquet footers the crawl kept (`footer`), for a
    /// caller that verifies each bookmark against a fresh listing before using its footer.
    async fn objects_with_footers(&self, _urls: &[String]) -> Result<Vec<SeenObject>> {
        Ok(Vec::new())
    }
    /// Apply `write` atomically.
    async fn commit(&self, write: CatalogWrite) -> Result<()>;
    /// The column statistics kept for these columns of a table (Glue's
    /// `GetColumnStatisticsForTable`); columns without any are left out.
    async fn column_statistics(
        &self,
        database: &str,
        table: &str,
        columns: &[String],
    ) -> Result<Vec<ColumnStatistics>>;
    /// Keep `statistics` for their columns of a table, replacing what was kept for those
    /// columns (Glue's `UpdateColumnStatisticsForTable`). The table must exist.
    async fn update_column_statistics(
        &self,
        database: &str,
        table: &str,
        statistics: &[ColumnStatistics],
    ) -> Result<()>;
}
