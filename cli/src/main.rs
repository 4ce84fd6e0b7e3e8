//! `quarry`: crawl a bucket or folder into a catalog, query it with SQL, inspect the catalog.

mod federation;
mod job;
mod serve;
mod sql;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use comfy_table::{Table as Grid, presets::UTF8_FULL_CONDENSED};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use quarry_catalog::{Catalog, GlueCatalog, PartitionFilter, SqliteCatalog, Table, keys};
use quarry_crawler::{CrawlConfig, Crawler, Progress, SchemaPolicy};
use quarry_lake::Location;
use quarry_query::{Engine, EngineConfig, ObjectStores, OutputFormat};

const AFTER_HELP: &str = "\
Examples:
  quarry crawl sample-data --database demo        crawl a local folder
  quarry crawl s3://my-bucket/raw/ --database raw  crawl S3 (standard AWS env vars, AWS_ENDPOINT_URL)
  quarry tables demo                              list what the crawl catalogued
  quarry describe demo.sales                      columns, partition keys, format, statistics
  quarry partitions demo.sales --format json      partitions with their locations, for scripts
  quarry sql -d demo -c \"SELECT region, sum(amount) FROM sales GROUP BY 1\"
  quarry sql -d demo                              interactive SQL (history, completion, Ctrl-C)
  quarry history                                  past queries: state, time, bytes scanned, cost
  quarry job run sales_to_parquet --jobs ./jobs   run a declared job now (bookmarks, retries)
  quarry scheduler --jobs ./jobs                  run jobs on their AWS cron / rate schedules
  quarry compact curated.sales                    rewrite small files into large ones, atomically
  quarry serve                                    the Athena API for boto3, aws athena, PyAthena
  quarry catalog add pg --connector postgres --uri postgresql://app@db/shop
                                                  query PostgreSQL as pg.schema.table

The catalog is a single SQLite file: --catalog PATH, or QUARRY_CATALOG, or
$XDG_DATA_HOME/quarry/catalog.db (~/.local/share/quarry/catalog.db).
--catalog glue uses the AWS Glue Data Catalog instead (AWS_REGION, AWS_PROFILE or keys,
AWS_ENDPOINT_URL; crawl bookmarks under --state-location / QUARRY_STATE_LOCATION).";

#[derive(Parser)]
#[command(
    name = "quarry",
    version,
    about = "Quarry: crawl a data lake into a Glue-shaped catalog, query and write it with SQL, run scheduled jobs, serve the Athena API",
    long_about = "Quarry crawls object-store prefixes (S3 or local folders) of CSV/TSV, JSON lines and \
Parquet files, possibly gzip/bzip2/xz/zstd-compressed, infers their schemas and Hive partitions, \
and records databases, tables and partitions in a catalog. It queries and writes them with SQL \
(Athena's DDL, CTAS, INSERT INTO, UNLOAD), runs declared jobs on AWS schedules with Glue-style \
bookmarks, compacts small files, and serves the Athena API.",
    after_help = AFTER_HELP
)]
struct Cli {
    /// Catalog: a SQLite file path, or `glue` for the AWS Glue Data Catalog (region,
    /// credentials and AWS_ENDPOINT_URL from the standard AWS environment)
    /// [default: $XDG_DATA_HOME/quarry/catalog.db]
    #[arg(long, global = true, env = "QUARRY_CATALOG", value_name = "PATH|glue")]
    catalog: Option<String>,

    /// With `--catalog glue`: where crawl bookmarks are kept (S3 URL or folder)
    /// [default: $XDG_DATA_HOME/quarry/glue-state]
    #[arg(long, global = true, env = "QUARRY_STATE_LOCATION", value_name = "URL")]
    state_location: Option<String>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub(crate) enum Format {
    Table,
    Json,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum ResultFormat {
    Table,
    Csv,
    Json,
}

impl From<ResultFormat> for OutputFormat {
    fn from(f: ResultFormat) -> Self {
        match f {
            ResultFormat::Table => OutputFormat::Table,
            ResultFormat::Csv => OutputFormat::Csv,
            ResultFormat::Json => OutputFormat::Json,
        }
    }
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum StatsFormat {
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum Policy {
    Update,
    Log,
    Fail,
}

#[derive(Subcommand)]
enum Command {
    /// Crawl a prefix and write what it holds into the catalog.
    ///
    /// Every object is classified by content (Parquet, CSV/TSV, JSON lines; gzip, bzip2, xz,
    /// zstd). Objects named `_*` or `.*` (e.g. `_SUCCESS`, `.crc`) and `$folder$` markers are
    /// ignored, zero-byte objects are skipped; all skips are reported. A folder holding one
    /// dataset becomes one table named after it; `key=value` folders become partition keys and
    /// other folders between the table and its files `partition_0..n`. A re-crawl reads only new
    /// or changed objects and writes nothing when nothing changed.
    #[command(
        after_help = "Examples:\n  quarry crawl sample-data --database demo\n  \
quarry crawl s3://bucket/raw/ --database raw --exclude '**/*.tmp' --json\n  \
AWS_ENDPOINT_URL=http://127.0.0.1:5000 AWS_ALLOW_HTTP=true quarry crawl s3://test/lake -d lake"
    )]
    Crawl {
        /// What to crawl: s3://bucket/prefix, file:///abs/path or a local folder
        url: String,
        /// Database to write the tables into (created if missing)
        #[arg(long, short = 'd')]
        database: String,
        /// Skip objects whose path below URL matches this glob (repeatable), e.g. '**/*.tmp'
        #[arg(long, value_name = "GLOB")]
        exclude: Vec<String>,
        /// Print the crawl report as JSON on stdout
        #[arg(long)]
        json: bool,
        /// Fail, writing nothing, if any object cannot be read
        #[arg(long)]
        strict: bool,
        /// What a re-crawl does with changed columns: update (add and widen), log (report
        /// only) or fail (abort, write nothing)
        #[arg(long, value_enum, default_value = "update")]
        schema_change: Policy,
        /// Concurrent list and read requests
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        /// After the crawl, propose Athena partition projection for each partitioned table
        /// (dates and contiguous integers, with NOW-ended ranges for growing tables) and say
        /// why; the tables are left as they are unless --apply is given
        #[arg(long)]
        projection: bool,
        /// With --projection: set the proposed properties on the tables, so new partitions
        /// are queryable without another crawl
        #[arg(long, requires = "projection")]
        apply: bool,
    },
    /// Run SQL over the catalog: -c, -f, standard input, or an interactive REPL.
    ///
    /// Tables are `db.table` (or just `table` with -d; `"awsdatacatalog".db.table` works too);
    /// federated tables are `catalog.schema.table` (`quarry catalog add`, or a connector Lambda
    /// as `"lambda:FUNCTION".schema.table`), and join lake tables in one statement.
    /// Filters on partition keys select partitions in the catalog before anything is listed.
    /// Every statement is metered: bytes scanned are the bytes actually read from storage,
    /// billed like Athena (rounded up to the MB, 10 MB minimum, $5 per TB); metadata
    /// statements, plain EXPLAIN and failed queries are free. SHOW DATABASES, SHOW TABLES [IN db],
    /// SHOW PARTITIONS t and DESCRIBE t work as in Athena.
    ///
    /// Writing: CREATE TABLE db.t WITH (format = 'PARQUET', partitioned_by = ARRAY['dt']) AS
    /// SELECT .., INSERT INTO db.t SELECT .. | VALUES .., UNLOAD (SELECT ..) TO 'url' WITH
    /// (format = 'JSON'), and Athena's DDL: CREATE DATABASE, CREATE EXTERNAL TABLE, DROP TABLE,
    /// ALTER TABLE .. ADD / DROP PARTITION, MSCK REPAIR TABLE, SHOW CREATE TABLE. Writes are
    /// atomic: a failed statement leaves no table, partition or file behind.
    ///
    /// Athena's views (CREATE [OR REPLACE] VIEW, SHOW VIEWS, SHOW CREATE VIEW, DROP VIEW) and
    /// prepared statements (PREPARE q FROM .. WHERE a = ?, EXECUTE q USING 'x', DESCRIBE INPUT q,
    /// DESCRIBE OUTPUT q, DEALLOCATE PREPARE q) are kept in the catalog store, so a later run
    /// uses them; `?` values are bound as values, never pasted into the SQL.
    ///
    /// ANALYZE db.t [FOR COLUMNS a, b] computes column statistics the planner uses (see
    /// `quarry analyze`). SET datafusion.execution.batch_size = 16384 changes a DataFusion
    /// setting for the statements after it; RESET name restores it.
    #[command(
        after_help = "Examples:\n  quarry sql -d demo -c \"SELECT count(*) FROM sales WHERE region = 'eu west'\"\n  \
quarry sql -d demo -f report.sql --format csv --stats json\n  \
quarry sql -d demo --dry-run -c \"SELECT * FROM events\"        bytes it would scan, and the price\n  \
quarry sql -d demo --max-bytes-scanned 1GB -c \"SELECT ...\"   cancel past 1 GB\n  \
quarry sql -d demo --output s3://bucket/results/ -c \"SELECT ...\"  Athena-style result files\n  \
quarry sql --warehouse ./warehouse -c \"CREATE TABLE demo.eu WITH (format = 'PARQUET') AS SELECT * FROM demo.sales WHERE region = 'eu'\""
    )]
    Sql {
        /// Default database for unqualified table names
        #[arg(long, short = 'd')]
        database: Option<String>,
        /// Run this SQL (several statements separated by ';' run in turn)
        #[arg(long, short = 'c', value_name = "SQL", conflicts_with = "file")]
        command: Option<String>,
        /// Run the statements in this file, in turn, stopping at the first failure
        #[arg(long, short = 'f', value_name = "FILE")]
        file: Option<PathBuf>,
        /// Result format
        #[arg(long, value_enum, default_value = "table")]
        format: ResultFormat,
        /// Also write each result as <query_id>.csv and <query_id>.metadata.json under this
        /// location (s3://bucket/prefix/ or a local folder)
        #[arg(long, value_name = "URL")]
        output: Option<String>,
        /// Cancel a statement once it has read more than this (e.g. 500MB, 2GB)
        #[arg(long, env = "QUARRY_MAX_BYTES_SCANNED", value_name = "SIZE", value_parser = sql::parse_bytes)]
        max_bytes_scanned: Option<u64>,
        /// Memory the statements may hold (e.g. 4GB): past it, joins, sorts and aggregations
        /// spill to temporary files, and a statement that still does not fit fails saying so.
        /// Default: no limit
        #[arg(long, env = "QUARRY_MEMORY_LIMIT", value_name = "SIZE", value_parser = sql::parse_bytes)]
        memory_limit: Option<u64>,
        /// Plan only: report the most bytes each statement would scan after partition pruning,
        /// and its price, without reading data
        #[arg(long)]
        dry_run: bool,
        /// Print per-statement statistics on stderr, one JSON object per line
        #[arg(long, value_enum, value_name = "FORMAT")]
        stats: Option<StatsFormat>,
        /// Price per TB scanned, in USD
        #[arg(long, default_value_t = 5.0, value_name = "USD")]
        price_per_tb: f64,
        /// Where CREATE TABLE .. AS SELECT puts a table without external_location:
        /// <warehouse>/<db>/<table>/ (an s3:// URL or a local folder; Athena's workgroup location)
        #[arg(long, env = "QUARRY_WAREHOUSE", value_name = "URL")]
        warehouse: Option<String>,
        /// Files written by CTAS / INSERT / UNLOAD roll at this size (e.g. 128MB)
        #[arg(long, default_value = "128MB", value_name = "SIZE", value_parser = sql::parse_bytes)]
        target_file_size: u64,
    },
    /// Declared jobs (TOML files in --jobs DIR): list, show, run now, runs, bookmarks.
    ///
    /// A job is `sql` (INSERT INTO / CTAS / UNLOAD / DDL), `crawl` or `compact`, optionally on an
    /// AWS schedule (`cron(0 * * * ? *)`, `rate(5 minutes)`) or after other jobs. A `bookmark`
    /// makes each run read only the objects of its input tables that no earlier successful run
    /// processed; the bookmark advances in the same catalog commit as the output.
    #[command(after_help = job::after_help())]
    Job {
        #[command(flatten)]
        dir: job::JobsDir,
        #[command(subcommand)]
        command: job::JobCommand,
    },
    /// Run the jobs of --jobs DIR on their schedules, in the foreground, until SIGTERM / Ctrl-C.
    ///
    /// Logs to stderr. At most one run per job at a time, even with several schedulers on one
    /// catalog (a lease in the catalog; a dead scheduler's run is marked FAILED once its lease
    /// expires). Missed fire times follow each job's `missed` policy; failed runs retry with
    /// backoff up to `max_retries`; `timeout` stops a run as TIMEOUT. On shutdown running jobs
    /// get --grace to finish, then are stopped (STOPPED).
    #[command(after_help = "Examples:\n  quarry scheduler --jobs ./jobs\n  \
QUARRY_JOBS=/etc/quarry/jobs quarry --catalog /var/lib/quarry/catalog.db scheduler --concurrency 4")]
    Scheduler {
        #[command(flatten)]
        dir: job::JobsDir,
        #[command(flatten)]
        args: job::SchedulerArgs,
    },
    /// Rewrite a table's small files into files of the target size, atomically.
    ///
    /// Each partition with at least --min-files files under 75% of the target size is
    /// rewritten (in its format and compression, or as Parquet with --convert) into a hidden
    /// folder beside it, and the catalog switches the partition to it in one commit: queries
    /// see the old files or the new, never both. Replaced files are deleted after --grace.
    #[command(after_help = "Examples:\n  quarry compact curated.sales\n  \
quarry compact curated.sales --partition dt=2024-01-01 --sort order_id --target-file-size 256MB\n  \
quarry compact raw.events --convert --grace 0s")]
    Compact(job::CompactArgs),
    /// Serve the Athena API (boto3, the AWS CLI, PyAthena, ... unchanged) on a local endpoint.
    ///
    /// StartQueryExecution, GetQueryExecution, GetQueryResults (paged, the header row first as
    /// Athena), StopQueryExecution, ListQueryExecutions, BatchGetQueryExecution,
    /// GetQueryRuntimeStatistics, the catalog operations (ListDatabases, GetTableMetadata, ...),
    /// workgroups and prepared statements. Executions queue and run in the background; they and
    /// their results survive a restart.
    #[command(after_help = serve::AFTER_HELP)]
    Serve(serve::ServeArgs),
    /// Federated data catalogs: tables in PostgreSQL (or any Athena connector Lambda) that SQL
    /// joins with the lake as catalog.schema.table.
    #[command(subcommand, after_help = federation::CATALOG_HELP)]
    Catalog(federation::CatalogCommand),
    /// Talk to a federation connector directly (debugging, protocol checks).
    #[command(subcommand)]
    Connector(federation::ConnectorCommand),
    /// Show recent queries: state, timing, bytes scanned and cost (also `system.query_history`).
    History {
        /// How many of the most recent queries
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// List databases, or the tables of one database.
    Tables {
        /// Database to list; all databases when omitted
        database: Option<String>,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Show a table's columns, partition keys, storage and statistics.
    Describe {
        /// DATABASE.TABLE
        table: String,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// List a table's partitions with their locations and statistics.
    Partitions {
        /// DATABASE.TABLE
        table: String,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Compute a table's column statistics for the query planner (`ANALYZE db.t` in SQL).
    ///
    /// One scan of the table (metered and billed like a query) counts rows and, per column,
    /// NULLs, distinct values (approximate, HyperLogLog), min / max of numbers and dates, and
    /// string lengths. They are kept the way Glue keeps them (its column-statistics API on the
    /// Glue catalog), and queries then plan with them: CSV and JSON tables get row counts and
    /// value ranges their files do not carry, and every table distinct counts for join order.
    /// Run it again after large changes; stale statistics only make plans worse, never answers.
    #[command(after_help = "Examples:\n  quarry analyze demo.sales\n  \
quarry analyze demo.sales --columns region,amount --format json")]
    Analyze {
        /// DATABASE.TABLE
        table: String,
        /// Only these columns (comma-separated); default: every column Glue keeps statistics
        /// for (boolean, numbers, decimal, date, string, binary)
        #[arg(long, value_delimiter = ',', value_name = "COLUMNS")]
        columns: Vec<String>,
        #[arg(long, value_enum, default_value = "table")]
        format: ResultFormat,
    },
}

/// Null count, distinct estimate and value range (or lengths) of a column's statistics.
fn statistics_cells(data: &quarry_catalog::StatisticsData) -> Vec<String> {
    use quarry_catalog::StatisticsData as D;
    let range = |min: Option<String>, max: Option<String>| match (min, max) {
        (Some(a), Some(b)) => format!("{a} .. {b}"),
        _ => String::new(),
    };
    let values = match data {
        D::Boolean { trues, falses, .. } => format!("{trues} true, {falses} false"),
        D::Date { min, max, .. } => range(min.map(|d| d.to_string()), max.map(|d| d.to_string())),
        D::Decimal { min, max, .. } => range(
            min.as_ref().map(|d| d.to_string()),
            max.as_ref().map(|d| d.to_string()),
        ),
        D::Double { min, max, .. } => range(min.map(|v| v.to_string()), max.map(|v| v.to_string())),
        D::Long { min, max, .. } => range(min.map(|v| v.to_string()), max.map(|v| v.to_string())),
        D::String {
            max_length,
            average_length,
            ..
        }
        | D::Binary {
            max_length,
            average_length,
            ..
        } => {
            format!("length <= {max_length}, avg {average_length:.1}")
        }
    };
    vec![
        data.nulls().to_string(),
        data.distinct().map(|d| d.to_string()).unwrap_or_default(),
        values,
    ]
}

fn default_data_dir() -> PathBuf {
    std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."))
        .join("quarry")
}

fn default_catalog() -> PathBuf {
    default_data_dir().join("catalog.db")
}

/// A failure already reported on stderr: exit non-zero without printing it again.
#[derive(Debug)]
struct Reported;

impl std::fmt::Display for Reported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("statement failed")
    }
}

impl std::error::Error for Reported {}

fn split_name(name: &str) -> Result<(&str, &str)> {
    match name.split_once('.') {
        Some((db, t)) if !db.is_empty() && !t.is_empty() => Ok((db, t)),
        _ => bail!("expected DATABASE.TABLE, got '{name}' (see `quarry tables`)"),
    }
}

async fn get_table(catalog: &dyn Catalog, name: &str) -> Result<Table> {
    let (db, t) = split_name(name)?;
    match catalog.get_table(db, t).await? {
        Some(t) => Ok(t),
        None => bail!("table '{name}' does not exist; list tables with `quarry tables {db}`"),
    }
}

/// A progress bar on stderr, drawn only when stderr is a terminal.
struct Bar(ProgressBar);

impl Progress for Bar {
    fn listed(&self, objects: usize) {
        self.0.set_message(format!("listed {objects} objects"));
    }
    fn inspecting(&self, total: usize) {
        self.0.set_length(total as u64);
        self.0.set_position(0);
        self.0.set_style(
            ProgressStyle::with_template(
                "{spinner} inspecting {pos}/{len} objects {wide_bar} {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
    }
    fn inspected(&self, _url: &str) {
        self.0.inc(1);
    }
    fn finished(&self) {
        self.0.finish_and_clear();
    }
}

/// Write to stdout; a closed pipe (`quarry tables | head`) ends output quietly.
/// SIGTERM (systemd, containers) or Ctrl-C: what ends a foreground service.
pub(crate) async fn shutdown_signal() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

pub(crate) fn emit(text: impl std::fmt::Display) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        other => Ok(other?),
    }
}

pub(crate) fn print_json(value: &impl serde::Serialize) -> Result<()> {
    emit(serde_json::to_string_pretty(value)?)
}

pub(crate) fn grid(header: &[&str]) -> Grid {
    let mut g = Grid::new();
    g.load_preset(UTF8_FULL_CONDENSED)
        .set_header(header.to_vec());
    g
}

async fn run(cli: Cli) -> Result<()> {
    let glue = cli.catalog.as_deref() == Some("glue");
    // With Glue, the local file still keeps the query history.
    let path = match cli.catalog {
        Some(p) if !glue => PathBuf::from(p),
        _ => default_catalog(),
    };
    let sqlite = Arc::new(
        SqliteCatalog::open(&path)
            .with_context(|| format!("opening catalog {}", path.display()))?,
    );
    let catalog: Arc<dyn Catalog> = if glue {
        let state = cli.state_location.unwrap_or_else(|| {
            default_data_dir()
                .join("glue-state")
                .to_string_lossy()
                .into_owned()
        });
        if !state.contains("://") {
            std::fs::create_dir_all(&state)
                .with_context(|| format!("creating the crawl state folder {state}"))?;
        }
        let state = Location::parse(&state)
            .with_context(|| format!("opening the crawl state location {state}"))?;
        Arc::new(
            GlueCatalog::from_env()
                .await
                .with_bookmarks(state.store, state.prefix),
        )
    } else {
        sqlite.clone()
    };
    match cli.command {
        Command::Sql {
            database,
            command,
            file,
            format,
            output,
            max_bytes_scanned,
            memory_limit,
            dry_run,
            stats,
            price_per_tb,
            warehouse,
            target_file_size,
        } => {
            let stores = Arc::new(ObjectStores::new());
            let mut config = EngineConfig {
                memory_limit: memory_limit.map(|m| m as usize),
                ..EngineConfig::default()
            };
            config.billing.usd_per_tib = price_per_tb;
            config.target_file_size = target_file_size;
            config.warehouse = warehouse
                .as_deref()
                .map(quarry_lake::location_url)
                .transpose()
                .context("--warehouse / QUARRY_WAREHOUSE")?;
            let engine = Engine::new(catalog, stores.clone(), config).with_history(sqlite);
            let options = sql::SqlOptions {
                database,
                format: format.into(),
                output,
                max_bytes_scanned,
                dry_run,
                stats_json: stats == Some(StatsFormat::Json),
            };
            let history = default_data_dir().join("sql_history");
            let ran = sql::run(engine, stores, options, command, file, history).await;
            quarry_lake::writer::finish_cleanups().await;
            if !ran? {
                return Err(anyhow::Error::new(Reported));
            }
        }
        Command::Analyze {
            table,
            columns,
            format,
        } => {
            let t = get_table(catalog.as_ref(), &table).await?;
            use quarry_query::statement::quoted;
            let mut statement = format!("ANALYZE {}.{}", quoted(&t.database), quoted(&t.name));
            if !columns.is_empty() {
                let names: Vec<String> = columns.iter().map(|c| quoted(c.trim())).collect();
                statement.push_str(&format!(" FOR COLUMNS {}", names.join(", ")));
            }
            let stores = Arc::new(ObjectStores::new());
            let engine =
                Engine::new(catalog, stores.clone(), EngineConfig::default()).with_history(sqlite);
            let options = sql::SqlOptions {
                database: None,
                format: format.into(),
                output: None,
                max_bytes_scanned: None,
                dry_run: false,
                stats_json: false,
            };
            let history = default_data_dir().join("sql_history");
            if !sql::run(engine, stores, options, Some(statement), None, history).await? {
                return Err(anyhow::Error::new(Reported));
            }
        }
        Command::Job { dir, command } => {
            if !job::job(command, &dir.jobs, catalog, sqlite).await? {
                return Err(anyhow::Error::new(Reported));
            }
        }
        Command::Scheduler { dir, args } => {
            job::scheduler(args, &dir.jobs, catalog, sqlite).await?;
        }
        Command::Catalog(command) => federation::catalog(command, &sqlite)?,
        Command::Connector(command) => federation::connector(command, catalog.clone()).await?,
        Command::Serve(args) => {
            serve::serve(args, catalog, sqlite, path.clone()).await?;
        }
        Command::Compact(args) => {
            job::compact_table(args, catalog, sqlite).await?;
        }
        Command::History { limit, format } => {
            let rows = sqlite.query_history(limit)?;
            if format == Format::Json {
                return print_json(&rows);
            }
            let mut g = grid(&[
                "query_id",
                "state",
                "submitted",
                "ms",
                "rows",
                "scanned",
                "cost",
                "sql",
            ]);
            for r in &rows {
                let mut sql = r.sql.replace('\n', " ");
                if sql.len() > 60 {
                    sql = format!("{}…", &sql[..sql.floor_char_boundary(59)]);
                }
                g.add_row(vec![
                    r.query_id.clone(),
                    r.state.as_str().to_string(),
                    r.submitted_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                    (r.planning_ms + r.execution_ms).to_string(),
                    r.rows.to_string(),
                    quarry_query::billing::human_bytes(r.bytes_scanned),
                    format!("${:.5}", r.cost_usd),
                    sql,
                ]);
            }
            emit(&g)?;
        }
        Command::Crawl {
            url,
            database,
            exclude,
            json,
            strict,
            schema_change,
            concurrency,
            projection,
            apply,
        } => {
            let location = Location::parse(&url)?;
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.enable_steady_tick(Duration::from_millis(120));
            bar.set_message("listing");
            let mut config = CrawlConfig::new(database);
            config.exclude = exclude;
            config.strict = strict;
            config.concurrency = concurrency;
            config.schema_policy = match schema_change {
                Policy::Update => SchemaPolicy::Update,
                Policy::Log => SchemaPolicy::Log,
                Policy::Fail => SchemaPolicy::Fail,
            };
            config.progress = Some(Arc::new(Bar(bar.clone())));
            let result = Crawler::new(catalog.clone(), config).crawl(&location).await;
            bar.finish_and_clear();
            let report = result?;
            let proposals = if projection {
                propose_projections(catalog.as_ref(), &report, apply).await?
            } else {
                Vec::new()
            };
            if json && projection {
                print_json(&serde_json::json!({ "crawl": report, "projection": proposals }))?;
            } else if json {
                print_json(&report)?;
            } else {
                emit(format!("{report}").trim_end())?;
                for p in &proposals {
                    emit(format_proposal(p, apply))?;
                }
            }
        }
        Command::Tables { database, format } => match database {
            None => {
                let dbs = catalog.list_databases().await?;
                if format == Format::Json {
                    return print_json(&dbs);
                }
                let mut g = grid(&["database", "tables", "created"]);
                for d in &dbs {
                    let n = catalog.list_tables(&d.name).await?.len();
                    g.add_row(vec![
                        d.name.clone(),
                        n.to_string(),
                        d.create_time.to_rfc3339(),
                    ]);
                }
                emit(&g)?;
            }
            Some(db) => {
                if catalog.get_database(&db).await?.is_none() {
                    bail!("database '{db}' does not exist; `quarry tables` lists databases");
                }
                let tables = catalog.list_tables(&db).await?;
                if format == Format::Json {
                    return print_json(&tables);
                }
                let mut g = grid(&[
                    "table",
                    "format",
                    "partition keys",
                    "partitions",
                    "objects",
                    "bytes",
                    "rows",
                    "location",
                ]);
                // Glue has no partition count: counting would page through every partition
                // of every table.
                let count = catalog.counts_partitions_cheaply();
                for t in &tables {
                    let parts = if count {
                        catalog.count_partitions(&db, &t.name).await?.to_string()
                    } else {
                        "-".to_string()
                    };
                    g.add_row(vec![
                        t.name.clone(),
                        quarry_lake::table_format_label(t),
                        t.partition_keys
                            .iter()
                            .map(|k| k.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                        parts,
                        param(t, keys::OBJECT_COUNT),
                        param(t, keys::SIZE_KEY),
                        param(t, keys::RECORD_COUNT),
                        t.storage.location.clone(),
                    ]);
                }
                emit(&g)?;
                if !count {
                    emit(
                        "partitions: not counted (Glue has no count; `quarry partitions db.table` lists them)",
                    )?;
                }
            }
        },
        Command::Describe { table, format } => {
            let t = get_table(catalog.as_ref(), &table).await?;
            if format == Format::Json {
                return print_json(&t);
            }
            // What ANALYZE kept, beside each column (same type as when analyzed).
            let names: Vec<String> = t
                .storage
                .columns
                .iter()
                .chain(&t.partition_keys)
                .map(|c| c.name.clone())
                .collect();
            let kept = match t.parameters.contains_key(quarry_catalog::keys::ANALYZED) {
                true => catalog
                    .column_statistics(&t.database, &t.name, &names)
                    .await
                    .unwrap_or_default(),
                false => Vec::new(),
            };
            let mut header = vec!["column", "type", ""];
            if !kept.is_empty() {
                header.extend(["nulls", "distinct", "values (ANALYZE)"]);
            }
            let mut g = grid(&header);
            let columns = t.storage.columns.iter().map(|c| (c, ""));
            let keys = t.partition_keys.iter().map(|k| (k, "partition key"));
            for (c, note) in columns.chain(keys) {
                let mut row = vec![c.name.clone(), c.data_type.clone(), note.to_string()];
                if !kept.is_empty() {
                    let s = kept
                        .iter()
                        .find(|s| s.column == c.name && s.data_type == c.data_type);
                    row.extend(match s {
                        Some(s) => statistics_cells(&s.data),
                        None => vec![String::new(); 3],
                    });
                }
                g.add_row(row);
            }
            emit(&g)?;
            emit(format!("location:    {}", t.storage.location))?;
            emit(format!(
                "format:      {}",
                quarry_lake::table_format_label(&t)
            ))?;
            emit(format!(
                "serde:       {} {:?}",
                t.storage.serde_info.serialization_library, t.storage.serde_info.parameters
            ))?;
            emit(format!("input:       {}", t.storage.input_format))?;
            for (k, v) in &t.parameters {
                emit(format!("param:       {k} = {v}"))?;
            }
            emit(format!(
                "updated:     {} (version {})",
                t.update_time.to_rfc3339(),
                t.version
            ))?;
        }
        Command::Partitions { table, format } => {
            let t = get_table(catalog.as_ref(), &table).await?;
            let parts = catalog
                .get_partitions(&t.database, &t.name, &PartitionFilter::all())
                .await?;
            if format == Format::Json {
                return print_json(&parts);
            }
            let mut header: Vec<&str> = t.partition_keys.iter().map(|k| k.name.as_str()).collect();
            header.extend(["objects", "bytes", "rows", "location"]);
            let mut g = grid(&header);
            for p in &parts {
                let mut row: Vec<String> = p
                    .values
                    .iter()
                    .map(|v| v.clone().unwrap_or_else(|| "NULL".into()))
                    .collect();
                let stat = |k: &str| p.parameters.get(k).cloned().unwrap_or_default();
                row.extend([
                    stat(keys::OBJECT_COUNT),
                    stat(keys::SIZE_KEY),
                    stat(keys::RECORD_COUNT),
                    p.location.clone(),
                ]);
                g.add_row(row);
            }
            emit(&g)?;
            emit(format!("{} partition(s)", parts.len()))?;
        }
    }
    Ok(())
}

fn param(t: &Table, key: &str) -> String {
    t.parameters.get(key).cloned().unwrap_or_default()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.downcast_ref::<Reported>().is_some() => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}

/// The projection proposals for the partitioned tables under a crawl's target (set with
/// `apply`).
async fn propose_projections(
    catalog: &dyn Catalog,
    report: &quarry_crawler::CrawlReport,
    apply: bool,
) -> Result<Vec<quarry_query::projection::Proposal>> {
    let mut out = Vec::new();
    // Every partitioned table under the crawl target, also those this crawl found unchanged.
    let db = report.database.as_str();
    for table in catalog.list_tables(db).await? {
        if table.partition_keys.is_empty() || !table.storage.location.starts_with(&report.target) {
            continue;
        }
        let name = table.name.as_str();
        let parts = catalog
            .get_partitions(db, name, &PartitionFilter::all())
            .await?;
        let proposal = quarry_query::projection::propose(&table, &parts, chrono::Utc::now());
        if apply && let Some(props) = &proposal.properties {
            let mut updated = table.clone();
            updated.parameters.extend(props.clone());
            updated.update_time = chrono::Utc::now();
            catalog
                .commit(quarry_catalog::CatalogWrite {
                    tables: vec![quarry_catalog::TableWrite {
                        expected_version: Some(table.version),
                        table: updated,
                    }],
                    ..Default::default()
                })
                .await
                .with_context(|| format!("setting the projection of {}", table.qualified_name()))?;
        }
        out.push(proposal);
    }
    Ok(out)
}

fn format_proposal(p: &quarry_query::projection::Proposal, applied: bool) -> String {
    let mut s = match &p.properties {
        None => format!("projection for {}: none fits", p.table),
        Some(_) if applied => format!("projection for {}: set", p.table),
        Some(_) => format!(
            "projection for {}: proposed (run again with --apply to set it)",
            p.table
        ),
    };
    for r in &p.reasons {
        s.push_str(&format!("\n  {r}"));
    }
    if let Some(props) = &p.properties {
        for (k, v) in props {
            s.push_str(&format!("\n  '{k}' = '{v}'"));
        }
    }
    s
}
