//! SQL behaviour over the sample lake, as sqllogictest files in `tests/slt/`.
//! Each file runs against a fresh catalog of the sample lake, on the local filesystem and on S3.
//!
//!     cargo test -p quarry-tests --test sqllogictests               # run
//!     cargo test -p quarry-tests --test sqllogictests -- --complete # rewrite expected output
//!
//! In the SQL, `${LAKE}` is the sample lake's URL (`file:///tmp/../lake/` or `s3://bucket/lake/`)
//! and `${OUT}` an empty folder beside it, in the same store, for tables and UNLOADs to write
//! to; the engine's warehouse is `${OUT}warehouse/`.

// A test harness with its own `main`: its report is its output.
#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use quarry_catalog::SqliteCatalog;
use quarry_crawler::{CrawlConfig, Crawler};
use quarry_query::{Engine, EngineConfig, ObjectStores, QueryRequest};
use quarry_tests::{BACKENDS, Backend, Lake};
use sqllogictest::{DBOutput, DefaultColumnType};

#[derive(Debug)]
struct SqlError(String);

impl std::fmt::Display for SqlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SqlError {}

struct QuarryDb {
    engine: Engine,
    lake_url: String,
    out_url: String,
    _lake: Arc<Lake>,
}

fn column_type(t: &DataType) -> DefaultColumnType {
    match t {
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64 => DefaultColumnType::Integer,
        DataType::Float16 | DataType::Float32 | DataType::Float64 | DataType::Decimal128(..) => {
            DefaultColumnType::FloatingPoint
        }
        _ => DefaultColumnType::Text,
    }
}

#[async_trait::async_trait]
impl sqllogictest::AsyncDB for QuarryDb {
    type Error = SqlError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, SqlError> {
        let sql = sql
            .replace("${LAKE}", &self.lake_url)
            .replace("${OUT}", &self.out_url);
        let out = self
            .engine
            .run(QueryRequest::new(sql).with_database(Some("demo".into())))
            .await;
        if !out.succeeded() {
            return Err(SqlError(out.record.error.unwrap_or_default()));
        }
        let types = out
            .schema
            .fields()
            .iter()
            .map(|f| column_type(f.data_type()))
            .collect();
        let options = FormatOptions::default().with_null("NULL");
        let mut rows = Vec::new();
        for batch in &out.batches {
            let formatters = batch
                .columns()
                .iter()
                .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| SqlError(e.to_string()))?;
            for row in 0..batch.num_rows() {
                let values: Vec<String> = formatters
                    .iter()
                    .map(|f| {
                        // Locations print as the placeholders they were written with.
                        let v = f
                            .value(row)
                            .to_string()
                            .replace(&self.out_url, "${OUT}")
                            .replace(&self.lake_url, "${LAKE}");
                        if v.is_empty() {
                            "(empty)".to_string()
                        } else {
                            v
                        }
                    })
                    .collect();
                // A one-column multi-line text (SHOW CREATE TABLE) is one row per line, as the
                // file shows it.
                match values.as_slice() {
                    [text] if text.contains('\n') => {
                        rows.extend(text.lines().map(|l| vec![l.to_string()]));
                    }
                    _ => rows.push(values),
                }
            }
        }
        Ok(DBOutput::Rows { types, rows })
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "quarry"
    }
}

async fn connect(backend: Backend) -> QuarryDb {
    let lake = Lake::sample(backend).await;
    let catalog = Arc::new(SqliteCatalog::open_in_memory().expect("catalog"));
    Crawler::new(catalog.clone(), CrawlConfig::new("demo"))
        .crawl(&lake.location)
        .await
        .expect("crawl");
    let stores = Arc::new(ObjectStores::new());
    stores.register(&lake.location.base, lake.location.store.clone());
    let lake_url = lake.location.root_url();
    let out_url = format!(
        "{}out/",
        lake_url.trim_end_matches('/').trim_end_matches("lake")
    );
    let config = EngineConfig {
        warehouse: Some(format!("{out_url}warehouse/")),
        ..EngineConfig::default()
    };
    QuarryDb {
        engine: Engine::new(catalog.clone(), stores, config).with_history(catalog),
        lake_url,
        out_url,
        _lake: Arc::new(lake),
    }
}

fn main() -> ExitCode {
    let complete = std::env::args().any(|a| a == "--complete");
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("slt");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/slt")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .filter(|p| {
            filter
                .as_ref()
                .is_none_or(|f| p.to_string_lossy().contains(f.as_str()))
        })
        .collect();
    files.sort();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (mut passed, mut failed) = (0, 0);
    rt.block_on(async {
        for file in &files {
            let backends: &[Backend] = if complete {
                &[Backend::Local]
            } else {
                &BACKENDS
            };
            for &backend in backends {
                let db = connect(backend).await;
                let db = std::sync::Mutex::new(Some(db));
                let mut runner = sqllogictest::Runner::new(|| {
                    let db = db.lock().expect("db").take();
                    async move {
                        match db {
                            Some(db) => Ok(db),
                            None => Err(SqlError("one connection per file".into())),
                        }
                    }
                });
                let name = file
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let result = if complete {
                    runner
                        .update_test_file(
                            file,
                            " ",
                            sqllogictest::default_validator,
                            sqllogictest::default_normalizer,
                            sqllogictest::default_column_validator,
                        )
                        .await
                        .map_err(|e| e.to_string())
                } else {
                    runner
                        .run_file_async(file)
                        .await
                        .map_err(|e| e.display(true).to_string())
                };
                match result {
                    Ok(()) => {
                        passed += 1;
                        println!("test {name} ({backend:?}) ... ok");
                    }
                    Err(e) => {
                        failed += 1;
                        println!("test {name} ({backend:?}) ... FAILED\n{e}");
                    }
                }
            }
        }
    });
    println!(
        "\ntest result: {}. {passed} passed; {failed} failed",
        if failed == 0 { "ok" } else { "FAILED" }
    );
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
