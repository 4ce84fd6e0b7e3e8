//! Quarry's query engine: Apache DataFusion over the Quarry catalog.
//!
//! Every statement gets a fresh DataFusion context whose object stores are wrapped in that
//! statement's [`Meter`], so bytes scanned are exact and per query. Tables resolve through the
//! catalog (`db.table`, `"awsdatacatalog".db.table`); predicates on partition keys select
//! partitions through the catalog's index before anything is listed.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use quarry_catalog::SqliteCatalog;
//! use quarry_query::{Engine, EngineConfig, ObjectStores, QueryRequest};
//!
//! let catalog = Arc::new(SqliteCatalog::open("catalog.db")?);
//! let engine = Engine::new(catalog.clone(), Arc::new(ObjectStores::new()), EngineConfig::default())
//!     .with_history(catalog);
//! let out = engine
//!     .run(QueryRequest::new("SELECT count(*) FROM sales WHERE region = 'eu'").with_database(Some("demo".into())))
//!     .await;
//! println!("{} rows, {} bytes scanned, ${:.6}", out.record.rows, out.record.bytes_scanned, out.record.cost_usd);
//! # Ok(()) }
//! ```

mod analyze;
pub mod billing;
mod ddl;
pub mod decimal;
pub mod dryrun;
mod engine;
mod error;
pub mod federated;
pub mod format;
pub mod functions;
pub mod groups;
pub mod job;
pub mod meter;
pub mod prepared;
pub mod projection;
pub mod provider;
pub mod prune;
mod reader;
pub mod results;
pub mod rules;
pub mod statement;
pub mod stores;
pub mod syntax;
pub mod system;
pub mod unnest;
pub mod view;
mod write;

pub use billing::BillingPolicy;
pub use engine::{Engine, EngineConfig, QueryOutput, QueryRequest, StatementKind};
pub use error::{Error, ErrorCategory, Result};
pub use format::{OutputFormat, render};
pub use job::JobScope;
pub use meter::{Meter, MeteredStore};
pub use provider::{DEFAULT_CATALOG, ScanInfo};
/// An error and its causes, one line.
pub use quarry_federation::client::error_chain;
pub use statement::split_statements;
pub use stores::ObjectStores;
pub use write::{WriteSummary, table_write_options};
