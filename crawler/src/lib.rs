//! The Quarry crawler: walks an object-store prefix (S3, a local folder or memory), classifies
//! every object by content, infers and merges schemas, detects Hive (`key=value`) and unnamed
//! (`partition_0..n`) partitions, groups files into tables and writes the result to a
//! [`quarry_catalog::Catalog`] in one atomic change. Re-crawls only read objects they have not
//! seen and report what changed.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use quarry_catalog::SqliteCatalog;
//! use quarry_crawler::{CrawlConfig, Crawler};
//! use quarry_lake::Location;
//!
//! let catalog = Arc::new(SqliteCatalog::open("catalog.db")?);
//! let crawler = Crawler::new(catalog, CrawlConfig::new("lake"));
//! let report = crawler.crawl(&Location::parse("s3://bucket/raw/")?).await?;
//! println!("{report}");
//! # Ok(()) }
//! ```

mod crawl;
mod error;
pub mod group;
pub mod inspect;
mod report;
pub mod schema;

pub use crawl::{CrawlConfig, Crawler, Progress, SchemaPolicy, table_name};
pub use error::{Error, Result};
pub use inspect::Inspected;
pub use report::{
    CrawlReport, SkipReason, Skipped, TableAction, TableReport, Warning, WidenedColumn,
};
