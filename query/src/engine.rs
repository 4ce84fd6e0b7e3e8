//! Running statements: one fresh DataFusion context and one byte meter per statement, billing,
//! and a history record for every statement.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::Utc;
use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef};
use datafusion::common::DataFusionError;
use datafusion::execution::cache::cache_manager::{CacheManagerConfig, FileMetadataCache};
use datafusion::execution::cache::default_cache::DefaultCache;
use datafusion::execution::memory_pool::{FairSpillPool, MemoryPool, TrackConsumersPool};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::session_state::{SessionState, SessionStateBuilder};
use datafusion::logical_expr::{LogicalPlan, Statement as PlanStatement};
use datafusion::physical_plan::collect;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::parser::Statement as DFStatement;
use quarry_catalog::{
    Catalog, CatalogWrite, PartitionFilter, QueryRecord, QueryState, SqliteCatalog, TableWrite,
};

use crate::billing::{BillingPolicy, human_bytes};
use crate::ddl::string_rows;
use crate::error::{Error, ErrorCategory};
use crate::job::JobScope;
use crate::meter::{LimitExceeded, Meter};
use crate::provider::{DEFAULT_CATALOG, FileStatsCache, QuarryCatalogProvider, ScanInfo, ScanLog};
use crate::rules::RescaleDecimalLiterals;
use crate::statement::Statement;
use crate::stores::{MeteredRegistry, ObjectStores};
use crate::system::SystemSchema;
use crate::write::WriteSummary;

/// Engine-wide settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub billing: BillingPolicy,
    /// Default per-query limit on bytes scanned.
    pub max_bytes_scanned: Option<u64>,
    /// DataFusion's parallelism; defaults to the number of cores.
    pub target_partitions: Option<usize>,
    /// Bytes read from the end of a Parquet file to find its footer in one request; `None`
    /// reads the trailer and then exactly the footer (two small requests, fewest bytes).
    pub parquet_metadata_size_hint: Option<usize>,
    /// Memory for cached Parquet footers and page indexes, shared by all statements.
    pub metadata_cache_bytes: usize,
    /// Where CTAS tables without `external_location` (and CREATE TABLE without LOCATION) go:
    /// `<warehouse>/<db>/<table>/`, an S3 URL or a folder (Athena's workgroup location).
    pub warehouse: Option<String>,
    /// Files written by CTAS / INSERT / UNLOAD roll at this size.
    pub target_file_size: u64,
    /// Where statements may write data (folder URLs), when Quarry serves other users: CTAS,
    /// INSERT and UNLOAD outside them are refused. `None`: anywhere the credentials reach.
    pub write_roots: Option<Vec<String>>,
    /// Where federated `lambda:` catalogs invoke their functions instead of the standard AWS
    /// Lambda endpoint (a local emulator such as `cargo lambda watch`).
    pub lambda_endpoint: Option<String>,
    /// How long one call to a federation connector may take before the statement fails with an
    /// error naming the catalog and connector (default `QUARRY_CONNECTOR_TIMEOUT` seconds, else
    /// 900, a Lambda's limit).
    pub connector_timeout: std::time::Duration,
    /// Memory that running statements may hold together (hash tables, sorts, aggregations);
    /// past it, operators that can spill write to temporary files, and the others fail with an
    /// error naming what ran out. `None`: unbounded, as DataFusion's default.
    pub memory_limit: Option<usize>,
    /// Whether `SET datafusion.name = value` / `RESET datafusion.name` change DataFusion
    /// settings for this engine's later statements (one user's process, as the CLI). An engine
    /// that serves several clients (`quarry serve`, Lambda) refuses them: one client would
    /// change every other's plans. Either way `DATAFUSION_*` environment variables apply.
    pub session_settings: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            billing: BillingPolicy::default(),
            max_bytes_scanned: None,
            target_partitions: None,
            parquet_metadata_size_hint: None,
            metadata_cache_bytes: 64 << 20,
            warehouse: None,
            target_file_size: 128 << 20,
            write_roots: None,
            lambda_endpoint: None,
            connector_timeout: crate::federated::timeout_from_env(),
            memory_limit: None,
            session_settings: true,
        }
    }
}

/// One statement to run.
#[derive(Debug, Clone, Default)]
pub struct QueryRequest {
    pub sql: String,
    pub database: Option<String>,
    /// Overrides the engine's limit.
    pub max_bytes_scanned: Option<u64>,
    /// Plan (partition pruning included) but read no data.
    pub dry_run: bool,
    /// The statement's id (a new UUID when `None`): front ends that hand out the id before
    /// the statement runs (the Athena API) pass theirs.
    pub query_id: Option<String>,
    /// The workgroup whose prepared statements PREPARE / EXECUTE use (`primary` when `None`).
    pub workgroup: Option<String>,
    /// Values for the statement's `?` parameters, each one SQL expression (`'eu'`, `42`):
    /// Athena's `ExecutionParameters`. Bound as values, never spliced into the SQL text.
    pub parameters: Vec<String>,
}

impl QueryRequest {
    pub fn new(sql: impl Into<String>) -> Self {
        Self {
            sql: sql.into(),
            ..Default::default()
        }
    }

    pub fn with_database(mut self, db: Option<String>) -> Self {
        self.database = db;
        self
    }
}

/// What a statement is, for billing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StatementKind {
    /// Reads data: billed.
    Query,
    /// Metadata, plain EXPLAIN, SHOW, DESCRIBE, DDL: free.
    Metadata,
    /// CTAS, INSERT INTO, UNLOAD: billed for what their query reads.
    Write,
}

/// The outcome of one statement. Errors are part of the outcome (state FAILED / CANCELLED).
#[derive(Debug, Clone)]
pub struct QueryOutput {
    pub record: QueryRecord,
    pub kind: StatementKind,
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
    pub scans: Vec<ScanInfo>,
    /// For dry runs: the most bytes the statement would read.
    pub dry_run_bytes: Option<u64>,
    /// Planning plus execution in microseconds (`elapsed_ms` truncates each part to whole ms,
    /// too coarse for statements answered from metadata).
    pub elapsed_us: u64,
    /// What a CTAS / INSERT / UNLOAD wrote.
    pub written: Option<WriteSummary>,
    /// Athena's category of the error, when the statement failed.
    pub error_category: Option<ErrorCategory>,
}

impl QueryOutput {
    pub fn succeeded(&self) -> bool {
        self.record.state == QueryState::Succeeded
    }

    /// Elapsed wall time (planning + execution).
    pub fn elapsed_ms(&self) -> u64 {
        self.record.planning_ms + self.record.execution_ms
    }

    /// The one-line JSON that `--stats json` prints.
    pub fn stats_json(&self) -> serde_json::Value {
        let r = &self.record;
        serde_json::json!({
            "query_id": r.query_id,
            "state": r.state.as_str(),
            "elapsed_ms": self.elapsed_ms(),
            "elapsed_us": self.elapsed_us,
            "planning_ms": r.planning_ms,
            "execution_ms": r.execution_ms,
            "rows": r.rows,
            "bytes_scanned": r.bytes_scanned,
            "billed_bytes": r.billed_bytes,
            "cost_usd": r.cost_usd,
            "error": r.error,
            "dry_run_bytes": self.dry_run_bytes,
            "error_category": self.error_category.map(ErrorCategory::as_str),
            "rows_written": self.written.as_ref().map(|w| w.rows),
            "files_written": self.written.as_ref().map(|w| w.files),
            "bytes_written": self.written.as_ref().map(|w| w.bytes),
            "scans": self.scans.iter().map(|s| serde_json::json!({
                "table": s.table,
                "partitions_total": s.partitions_total,
                "partitions_selected": s.partitions_selected,
                "projected": s.projected,
                "files": s.files,
                "bytes": s.bytes,
            })).collect::<Vec<_>>(),
        })
    }
}

/// Runs SQL over a Quarry catalog.
#[derive(Clone)]
pub struct Engine {
    catalog: Arc<dyn Catalog>,
    history: Option<Arc<SqliteCatalog>>,
    /// The memory every statement draws from, under `EngineConfig::memory_limit`.
    memory_pool: Option<Arc<dyn MemoryPool>>,
    stores: Arc<ObjectStores>,
    /// Connectors of federated catalogs, kept across statements.
    federation: Arc<crate::federated::Federation>,
    config: EngineConfig,
    metadata_cache: Arc<FileMetadataCache>,
    /// Per-file Parquet statistics derived from footers, shared across statements.
    file_stats: Arc<FileStatsCache>,
    /// DataFusion settings, including any `DATAFUSION_*` environment variables.
    base_config: SessionConfig,
    /// Settings changed by `SET name = value` since ([`EngineConfig::session_settings`]),
    /// applied to every later statement.
    settings: Arc<std::sync::Mutex<Vec<(String, String)>>>,
    /// The job run these statements belong to (bookmarked scans, write intents).
    job: Option<Arc<JobScope>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("catalog", &self.catalog)
            .field("config", &self.config)
            .finish()
    }
}

fn root_message(e: &DataFusionError) -> String {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(limit) = err.downcast_ref::<LimitExceeded>() {
            return limit.to_string();
        }
        source = err.source();
    }
    e.to_string()
}

/// The user cancelled the statement (Ctrl-C).
#[derive(Debug, Clone, Copy)]
pub struct Cancelled;

impl std::fmt::Display for Cancelled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("query cancelled")
    }
}

impl std::error::Error for Cancelled {}

/// The message a user reads: the limit's own words for a byte limit, else the error and the
/// causes its text does not already include.
fn error_message(e: &Error) -> String {
    if let Error::DataFusion(e) = e {
        return root_message(e);
    }
    crate::error_chain(e)
}

/// The databases `statement` names, or `None` when it reads `information_schema` (directly,
/// or through `SHOW COLUMNS` and the other `SHOW` statements DataFusion rewrites into it),
/// which lists every database and table. References that do not resolve name nothing:
/// planning reports them.
fn named_databases(state: &SessionState, statement: &DFStatement) -> Option<BTreeSet<String>> {
    let options = state.config_options();
    let Ok(references) = state.resolve_table_references(statement) else {
        return Some(BTreeSet::new());
    };
    let (catalog, schema) = (
        &options.catalog.default_catalog,
        &options.catalog.default_schema,
    );
    let mut names = BTreeSet::new();
    for r in references {
        let resolved = r.resolve(catalog, schema);
        if &*resolved.catalog != catalog.as_str() {
            continue;
        }
        if &*resolved.schema == "information_schema" {
            return None;
        }
        names.insert(resolved.schema.to_string());
    }
    Some(names)
}

/// The catalogs other than the lake's that a statement names (`pg.schema.t`,
/// `"lambda:fn".schema.t`).
fn named_catalogs(state: &SessionState, statement: &DFStatement) -> BTreeSet<String> {
    let options = state.config_options();
    let Ok(references) = state.resolve_table_references(statement) else {
        return BTreeSet::new();
    };
    let (catalog, schema) = (
        &options.catalog.default_catalog,
        &options.catalog.default_schema,
    );
    references
        .into_iter()
        .map(|r| r.resolve(catalog, schema).catalog.to_string())
        .filter(|c| c != catalog)
        .collect()
}

/// The table each output column of a query reads directly (through an alias), if any.
fn column_origins(plan: &LogicalPlan) -> Vec<Option<datafusion::common::TableReference>> {
    let mut p = plan;
    loop {
        match p {
            LogicalPlan::Sort(s) => p = s.input.as_ref(),
            LogicalPlan::Limit(l) => p = l.input.as_ref(),
            LogicalPlan::Projection(proj) => {
                return proj
                    .expr
                    .iter()
                    .map(|e| match e {
                        datafusion::logical_expr::Expr::Alias(a) => match a.expr.as_ref() {
                            datafusion::logical_expr::Expr::Column(c) => c.relation.clone(),
                            _ => None,
                        },
                        _ => None,
                    })
                    .collect();
            }
            _ => return Vec::new(),
        }
    }
}

/// DESCRIBE INPUT's rows: each parameter's position (from 0) and Trino type.
fn describe_input(
    count: usize,
    types: &std::collections::HashMap<String, Option<DataType>>,
) -> (SchemaRef, Vec<RecordBatch>) {
    let mut positions = Vec::new();
    let mut names = Vec::new();
    for i in 0..count {
        positions.push(i.to_string());
        names.push(
            types
                .get(&format!("${}", i + 1))
                .and_then(Option::as_ref)
                .map_or_else(|| "unknown".to_string(), crate::view::trino_type),
        );
    }
    string_rows(&[("Position", positions), ("Type", names)])
}

/// One DESCRIBE OUTPUT column: name, type, the (database, table) it reads, aliased.
type OutputColumn = (String, DataType, Option<(String, String)>, bool);

/// DESCRIBE OUTPUT's rows, as Trino prints them: name, catalog, schema, table, type, the
/// type's fixed size in bytes (0 when variable) and whether the column was aliased.
fn describe_output(columns: &[OutputColumn]) -> (SchemaRef, Vec<RecordBatch>) {
    let mut cols: [Vec<String>; 7] = Default::default();
    for (name, t, table, aliased) in columns {
        cols[0].push(name.clone());
        let (catalog, schema, table) = match table {
            Some((s, t)) => (
                crate::provider::DEFAULT_CATALOG.to_string(),
                s.clone(),
                t.clone(),
            ),
            None => Default::default(),
        };
        cols[1].push(catalog);
        cols[2].push(schema);
        cols[3].push(table);
        cols[4].push(crate::view::trino_type(t));
        let size = match t {
            DataType::Boolean | DataType::Int8 => 1,
            DataType::Int16 => 2,
            DataType::Int32 | DataType::Float32 | DataType::Date32 => 4,
            DataType::Int64 | DataType::Float64 | DataType::Timestamp(_, _) => 8,
            DataType::Decimal128(p, _) if *p <= 18 => 8,
            DataType::Decimal128(_, _) => 16,
            _ => 0,
        };
        cols[5].push(size.to_string());
        cols[6].push(aliased.to_string());
    }
    let [a, b, c, d, e, f, g] = cols;
    string_rows(&[
        ("Column Name", a),
        ("Catalog", b),
        ("Schema", c),
        ("Table", d),
        ("Type", e),
        ("Type Size", f),
        ("Aliased", g),
    ])
}

/// The `quarry_scans` row EXPLAIN adds: partitions total vs selected, files and bytes to
/// read, and (EXPLAIN ANALYZE) bytes scanned, per table scan.
fn scan_explain_batch(
    schema: &SchemaRef,
    scans: &[ScanInfo],
    analyze: bool,
) -> Result<RecordBatch, DataFusionError> {
    let lines: Vec<String> = scans
        .iter()
        .map(|s| {
            let of = s
                .partitions_total
                .map_or_else(String::new, |t| format!(" of {t}"));
            let kind = if s.projected { " projected" } else { "" };
            let mut line = match &s.federated {
                Some(how) => format!("{}: {how}", s.table),
                None => format!(
                    "{}: {}{of}{kind} partitions selected, {} file(s), {} to read",
                    s.table,
                    s.partitions_selected,
                    s.files,
                    human_bytes(s.bytes)
                ),
            };
            if analyze {
                line.push_str(&format!(
                    ", {} scanned ({} bytes)",
                    human_bytes(s.bytes_scanned),
                    s.bytes_scanned
                ));
            }
            line
        })
        .collect();
    let columns = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let text: ArrayRef = Arc::new(StringArray::from(vec![if i == 0 {
                "quarry_scans".to_string()
            } else {
                lines.join("\n")
            }]));
            datafusion::arrow::compute::cast(&text, f.data_type())
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RecordBatch::try_new(Arc::clone(schema), columns)?)
}

impl Engine {
    pub fn new(catalog: Arc<dyn Catalog>, stores: Arc<ObjectStores>, config: EngineConfig) -> Self {
        let metadata_cache: Arc<FileMetadataCache> = Arc::new(
            DefaultCache::new(config.metadata_cache_bytes).with_name("QuarryParquetMetadata"),
        );
        // DataFusion's own settings can be tuned with its environment variables, e.g.
        // DATAFUSION_EXECUTION_PARQUET_PUSHDOWN_FILTERS=true.
        let base_config = SessionConfig::from_env().unwrap_or_else(|e| {
            eprintln!("warning: ignoring DATAFUSION_* environment settings: {e}");
            SessionConfig::new()
        });
        // One pool for every statement of the engine, shared fairly among the operators that
        // can spill; the five largest consumers are named when it runs out.
        let memory_pool = config.memory_limit.map(|limit| {
            Arc::new(TrackConsumersPool::new(
                FairSpillPool::new(limit),
                std::num::NonZeroUsize::new(5).expect("five"),
            )) as Arc<dyn MemoryPool>
        });
        Self {
            catalog,
            history: None,
            memory_pool,
            federation: Arc::new(crate::federated::Federation::new(
                config.lambda_endpoint.clone(),
                config.connector_timeout,
            )),
            stores,
            config,
            metadata_cache,
            file_stats: Arc::default(),
            base_config,
            settings: Default::default(),
            job: None,
        }
    }

    /// Run statements as part of a job run: bookmarked tables are read through `job`, and
    /// writes record intents and carry its bookmark into their commits.
    pub fn with_job(mut self, job: Arc<JobScope>) -> Self {
        self.job = Some(job);
        self
    }

    /// Keep a history record of every statement in this store (and expose it as
    /// `system.query_history`).
    pub fn with_history(mut self, history: Arc<SqliteCatalog>) -> Self {
        self.history = Some(history);
        self
    }

    pub fn catalog(&self) -> &Arc<dyn Catalog> {
        &self.catalog
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Run one statement.
    pub async fn run(&self, request: QueryRequest) -> QueryOutput {
        let meter = self.meter_for(&request);
        self.run_with(request, meter, std::future::pending()).await
    }

    /// A meter with the limit that applies to `request`.
    pub fn meter_for(&self, request: &QueryRequest) -> Arc<Meter> {
        Meter::new(request.max_bytes_scanned.or(self.config.max_bytes_scanned))
    }

    /// Run one statement reading through `meter` (the caller can watch it for progress);
    /// when `cancel` completes first, the statement stops and is recorded as CANCELLED,
    /// billed for what it read.
    pub async fn run_with(
        &self,
        request: QueryRequest,
        meter: Arc<Meter>,
        cancel: impl std::future::Future<Output = ()>,
    ) -> QueryOutput {
        let submitted = Utc::now();
        let mut record = QueryRecord {
            query_id: request
                .query_id
                .clone()
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            sql: request.sql.trim().to_string(),
            database: request.database.clone(),
            state: QueryState::Running,
            submitted_at: submitted,
            started_at: Some(submitted),
            ended_at: None,
            planning_ms: 0,
            execution_ms: 0,
            bytes_scanned: 0,
            billed_bytes: 0,
            cost_usd: 0.0,
            rows: 0,
            error: None,
            error_category: None,
            statement_type: None,
            files_written: 0,
            bytes_written: 0,
        };
        self.save(&record);
        let scans: ScanLog = Arc::new(Mutex::new(Vec::new()));
        let started = Instant::now();
        // Once a write starts publishing and committing it runs to its end: a cancellation
        // then is too late, and the statement reports what really happened.
        let committing = Arc::new(AtomicBool::new(false));
        let cancel = async {
            cancel.await;
            if committing.load(Ordering::SeqCst) {
                std::future::pending::<()>().await;
            }
        };
        let result = tokio::select! {
            r = self.execute(&request, &meter, &scans, &mut record, &committing) => r,
            () = cancel => Err(Error::from(DataFusionError::External(Box::new(Cancelled)))),
        };
        let elapsed_us = started.elapsed().as_micros() as u64;
        let scans = scans.lock().unwrap_or_else(|p| p.into_inner()).clone();
        record.bytes_scanned = meter.bytes();
        record.ended_at = Some(Utc::now());
        let mut error_category = None;
        let (kind, schema, batches, dry, written) = match result {
            Ok(Outcome {
                kind,
                schema,
                batches,
                dry_run,
                written,
            }) => {
                record.state = QueryState::Succeeded;
                (kind, schema, batches, dry_run, written)
            }
            Err(e) => {
                let category = e.category();
                error_category = Some(category);
                record.state = match category {
                    ErrorCategory::LimitExceeded | ErrorCategory::Cancelled => {
                        QueryState::Cancelled
                    }
                    _ => QueryState::Failed,
                };
                record.error = Some(error_message(&e));
                (
                    StatementKind::Query,
                    Arc::new(Schema::empty()),
                    Vec::new(),
                    None,
                    None,
                )
            }
        };
        // Athena's rules: queries that read data are billed (at least the minimum), cancelled
        // ones for what they read; failed queries, metadata and dry runs are free.
        // A statement that read no catalogued table (constants, system.query_history) scans
        // no storage and is free.
        let billable = matches!(kind, StatementKind::Query | StatementKind::Write)
            && !scans.is_empty()
            && dry.is_none()
            && !request.dry_run
            && matches!(record.state, QueryState::Succeeded | QueryState::Cancelled);
        if billable {
            record.billed_bytes = self.config.billing.billed_bytes(record.bytes_scanned);
            record.cost_usd = self.config.billing.cost_usd(record.billed_bytes);
        }
        record.rows = match &written {
            Some(w) => w.rows,
            None => batches.iter().map(|b| b.num_rows() as u64).sum(),
        };
        if let Some(w) = &written {
            record.files_written = w.files;
            record.bytes_written = w.bytes;
        }
        record.error_category = error_category.map(|c| c.as_str().to_string());

        self.save(&record);
        QueryOutput {
            record,
            kind,
            schema,
            batches,
            scans,
            dry_run_bytes: dry,
            elapsed_us,
            written,
            error_category,
        }
    }

    fn save(&self, record: &QueryRecord) {
        if let Some(h) = &self.history {
            // History is a convenience: a failure to record must not fail the query.
            if let Err(e) = h.record_query(record) {
                eprintln!("warning: could not record query history: {e}");
            }
        }
    }

    /// A fresh context for one statement, reading through `meter`.
    pub async fn context(
        &self,
        database: Option<&str>,
        meter: &Arc<Meter>,
        scans: &ScanLog,
    ) -> Result<SessionContext, DataFusionError> {
        let (ctx, registry) = self.session(database, meter, scans).await?;
        self.register_catalog(
            &ctx,
            &registry,
            database,
            scans,
            None,
            &crate::view::Known::new(),
        )
        .await?;
        Ok(ctx)
    }

    /// A fresh session reading through `meter`, with no catalog yet.
    async fn session(
        &self,
        database: Option<&str>,
        meter: &Arc<Meter>,
        scans: &ScanLog,
    ) -> Result<(SessionContext, Arc<MeteredRegistry>), DataFusionError> {
        if let Some(db) = database
            && self
                .catalog
                .get_database(db)
                .await
                .map_err(|e| DataFusionError::External(Box::new(e)))?
                .is_none()
        {
            return Err(DataFusionError::Plan(format!(
                "database '{db}' does not exist; SHOW DATABASES lists them"
            )));
        }
        let registry = Arc::new(MeteredRegistry::new(
            Arc::clone(&self.stores),
            Arc::clone(meter),
            Arc::clone(scans),
        ));
        // Parquet footers and page indexes stay cached across statements (keyed by path, checked
        // against size and modification time), so repeated queries do not re-read them.
        // The limit is set again here: building the cache manager resets the shared cache's
        // limit to the configured one (DataFusion's default otherwise).
        let caches = CacheManagerConfig::default()
            .with_file_metadata_cache(Some(Arc::clone(&self.metadata_cache)))
            .with_metadata_cache_limit(self.config.metadata_cache_bytes)
            .with_list_files_cache(None);
        let mut runtime = RuntimeEnvBuilder::new()
            .with_object_store_registry(Arc::clone(&registry) as _)
            .with_cache_manager(caches);
        if let Some(pool) = &self.memory_pool {
            runtime = runtime.with_memory_pool(Arc::clone(pool));
        }
        let runtime = runtime.build_arc()?;
        let mut config = self
            .base_config
            .clone()
            .with_information_schema(true)
            .with_create_default_catalog_and_schema(false)
            .with_default_catalog_and_schema(DEFAULT_CATALOG, database.unwrap_or("default"));
        if let Some(n) = self.config.target_partitions {
            config = config.with_target_partitions(n);
        }
        // Read exactly the footer (8-byte trailer, then the footer) rather than a 512 KiB
        // suffix: footers are a few KiB, and every byte read is billed.
        if std::env::var_os("DATAFUSION_EXECUTION_PARQUET_METADATA_SIZE_HINT").is_none() {
            config.options_mut().execution.parquet.metadata_size_hint =
                self.config.parquet_metadata_size_hint;
        }
        // `SET` statements last: they override everything above (each was checked when set).
        for (name, value) in self
            .settings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            config.options_mut().set(name, value)?;
        }
        let mut state = crate::rules::with_physical_rules(
            SessionStateBuilder::new()
                .with_config(config)
                .with_runtime_env(runtime)
                .with_default_features(),
        );
        crate::functions::add_trino_extract(&mut state);
        let ctx = SessionContext::new_with_state(state.build());
        crate::functions::register(&ctx);
        ctx.register_udf(crate::unnest::udf());
        ctx.add_optimizer_rule(Arc::new(RescaleDecimalLiterals));
        Ok((ctx, registry))
    }

    /// The catalog as `ctx` sees it, for `statement` (for any statement when `None`): only a
    /// statement that reads `information_schema` needs every database and table listed; the
    /// others look up the databases and tables they name. `database` (the `-d` one) has been
    /// found by [`Engine::session`].
    async fn register_catalog(
        &self,
        ctx: &SessionContext,
        registry: &Arc<MeteredRegistry>,
        database: Option<&str>,
        scans: &ScanLog,
        statement: Option<&DFStatement>,
        known: &crate::view::Known,
    ) -> Result<(), DataFusionError> {
        let state = ctx.state();
        let view_types = state
            .config_options()
            .execution
            .parquet
            .schema_force_view_types;
        let databases = statement.and_then(|s| named_databases(&state, s));
        let mut provider = QuarryCatalogProvider::load(
            Arc::clone(&self.catalog),
            Arc::clone(scans),
            view_types,
            Arc::clone(&self.file_stats),
            databases.as_ref(),
            database,
            self.job.clone(),
        )
        .await?
        .with_known(known);
        if let Some(h) = &self.history {
            provider.add_schema("system", Arc::new(SystemSchema::new(Arc::clone(h))));
        }
        ctx.register_catalog(DEFAULT_CATALOG, Arc::new(provider));
        if let Some(statement) = statement {
            let context = crate::federated::ScanContext {
                registry: Arc::clone(registry),
                scans: Arc::clone(scans),
                query_id: uuid::Uuid::new_v4().to_string(),
            };
            for name in named_catalogs(&state, statement) {
                let client = self
                    .federated_client(&name)
                    .await
                    .map_err(|e| DataFusionError::External(Box::new(e)))?;
                let catalog =
                    crate::federated::FederatedCatalog::load(client, context.clone()).await?;
                ctx.register_catalog(&name, Arc::new(catalog));
            }
        }
        Ok(())
    }

    async fn execute(
        &self,
        request: &QueryRequest,
        meter: &Arc<Meter>,
        scans: &ScanLog,
        record: &mut QueryRecord,
        committing: &Arc<AtomicBool>,
    ) -> Result<Outcome, Error> {
        let planning = Instant::now();
        let dialect = self.base_config.options().sql_parser.dialect.to_string();
        // Parsed once, into a typed statement: DDL and writes are Quarry's, queries DataFusion's.
        let statement = crate::statement::parse(&request.sql, &dialect)?;
        // `EXPLAIN COST <statement>`: the dry run in SQL.
        let (statement, dry_run) = match statement {
            Statement::ExplainCost(inner) => (*inner, true),
            s => (s, request.dry_run),
        };
        let request = &QueryRequest {
            dry_run,
            ..request.clone()
        };
        let database = request.database.as_deref();
        // Prepared statements: managed here; EXECUTE runs the stored statement with its values.
        let mut statement = match statement {
            Statement::Prepare { .. }
            | Statement::Deallocate { .. }
            | Statement::DescribeInput { .. }
            | Statement::DescribeOutput { .. } => {
                record.statement_type = Some(statement_type(&statement).to_string());
                let (schema, batches) = self
                    .prepared_statement(statement, request, &dialect, meter, scans)
                    .await?;
                record.planning_ms = planning.elapsed().as_millis() as u64;
                return Ok(Outcome::new(StatementKind::Metadata, schema, batches));
            }
            Statement::Execute { name, values } => {
                let sql = crate::prepared::load(self.store()?, self.workgroup(request), &name)?;
                let mut inner = crate::statement::parse(&sql, &dialect)?;
                let values = match (values.is_empty(), request.parameters.is_empty()) {
                    (_, true) => values,
                    (true, false) => crate::prepared::parse_values(&request.parameters, &dialect)?,
                    (false, false) => {
                        return Err(Error::user(
                            "give parameter values either with EXECUTE .. USING or as execution \
                             parameters, not both",
                        ));
                    }
                };
                crate::prepared::bind(&mut inner, &values)?;
                inner
            }
            mut other => {
                let values = crate::prepared::parse_values(&request.parameters, &dialect)?;
                crate::prepared::bind(&mut other, &values)?;
                other
            }
        };
        record.statement_type = Some(statement_type(&statement).to_string());
        // ANALYZE runs as the one aggregate query that computes its statistics, then keeps them.
        let mut analysis = None;
        if let Statement::Analyze { table, columns } = statement {
            let (sql, planned) =
                crate::analyze::plan(&self.catalog, &table, columns, database).await?;
            analysis = Some(planned);
            statement = crate::statement::parse(&sql, &dialect)?;
        }
        // Views read as the subqueries they stand for (so their base tables prune and bill).
        let mut known = crate::view::Known::new();
        crate::view::inline_views(
            &self.catalog,
            &mut statement,
            database,
            &dialect,
            &mut known,
        )
        .await?;
        let statement = match statement {
            Statement::Query(s) => s,
            Statement::CreateView(v) => {
                if request.dry_run {
                    return Err(Error::user(
                        "--dry-run estimates the bytes a query reads; CREATE VIEW reads none",
                    ));
                }
                let (schema, batches) =
                    self.create_view(*v, database, meter, scans, &known).await?;
                record.planning_ms = planning.elapsed().as_millis() as u64;
                return Ok(Outcome::new(StatementKind::Metadata, schema, batches));
            }
            Statement::CreateTableAs(_) | Statement::Insert(_) | Statement::Unload(_) => {
                return self
                    .execute_write(statement, request, meter, scans, record, committing, &known)
                    .await;
            }
            Statement::ShowDatabases { .. }
            | Statement::ShowTables { .. }
            | Statement::ShowPartitions { .. }
            | Statement::Describe { .. } => {
                let (schema, batches) = self.metadata_statement(statement, request).await?;
                record.planning_ms = planning.elapsed().as_millis() as u64;
                return Ok(Outcome::new(StatementKind::Metadata, schema, batches));
            }
            ddl => {
                if request.dry_run {
                    return Err(Error::user(
                        "--dry-run estimates the bytes a query reads; DDL reads none",
                    ));
                }
                let (schema, batches) = crate::ddl::run(
                    &self.catalog,
                    &self.stores,
                    ddl,
                    database,
                    self.config.warehouse.as_deref(),
                )
                .await?;
                record.planning_ms = planning.elapsed().as_millis() as u64;
                return Ok(Outcome::new(StatementKind::Metadata, schema, batches));
            }
        };
        let (ctx, registry) = self.session(database, meter, scans).await?;
        // The tables it names decide what the catalog looks up, then it is planned.
        self.register_catalog(&ctx, &registry, database, scans, Some(&statement), &known)
            .await?;
        let state = ctx.state();
        let plan = state.statement_to_plan(statement).await?;
        if let LogicalPlan::Statement(
            change @ (PlanStatement::SetVariable(_) | PlanStatement::ResetVariable(_)),
        ) = &plan
        {
            if request.dry_run {
                return Err(Error::user(
                    "--dry-run estimates the bytes a query reads; SET reads none",
                ));
            }
            self.change_setting(change)?;
            record.planning_ms = planning.elapsed().as_millis() as u64;
            let (schema, batches) = string_rows(&[]);
            return Ok(Outcome::new(StatementKind::Metadata, schema, batches));
        }
        let explain = match &plan {
            LogicalPlan::Explain(_) => Some(false),
            LogicalPlan::Analyze(_) => Some(true),
            _ => None,
        };
        let kind = match &plan {
            LogicalPlan::Explain(_) | LogicalPlan::DescribeTable(_) | LogicalPlan::Statement(_) => {
                StatementKind::Metadata
            }
            LogicalPlan::Ddl(_) | LogicalPlan::Dml(_) | LogicalPlan::Copy(_) => {
                return Err(Error::user(
                    "this statement is not supported; Quarry writes with CREATE TABLE .. AS SELECT, INSERT INTO, UNLOAD and Athena's DDL (CREATE EXTERNAL TABLE, ALTER TABLE .. ADD PARTITION, MSCK REPAIR TABLE, DROP TABLE)",
                ));
            }
            _ => StatementKind::Query,
        };
        let physical = state.create_physical_plan(&plan).await?;
        record.planning_ms = planning.elapsed().as_millis() as u64;
        if request.dry_run {
            let planned: Vec<ScanInfo> = scans.lock().unwrap_or_else(|p| p.into_inner()).clone();
            let mut bytes = 0;
            for s in &planned {
                bytes += match &s.dry_run {
                    Some(input) => crate::dryrun::upper_bound(input).await?,
                    None => s.bytes,
                };
            }
            let price = self
                .config
                .billing
                .cost_usd(self.config.billing.billed_bytes(bytes));
            let (schema, batches) = string_rows(&[
                ("bytes_to_scan", vec![bytes.to_string()]),
                (
                    "billed_bytes",
                    vec![self.config.billing.billed_bytes(bytes).to_string()],
                ),
                ("cost_usd", vec![format!("{price:.8}")]),
            ]);
            let mut out = Outcome::new(kind, schema, batches);
            out.dry_run = Some(bytes);
            return Ok(out);
        }
        let execution = Instant::now();
        let schema = physical.schema();
        let batches = collect(physical, ctx.task_ctx()).await;
        record.execution_ms = execution.elapsed().as_millis() as u64;
        let mut batches = batches?;
        {
            let mut log = scans.lock().unwrap_or_else(|p| p.into_inner());
            for s in log.iter_mut() {
                s.bytes_scanned = registry.scan_bytes(s.scan_id);
            }
            if let Some(analyze) = explain
                && !log.is_empty()
            {
                batches.push(scan_explain_batch(&schema, &log, analyze)?);
            }
        }
        if let Some(analysis) = analysis {
            let bytes = scans
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .map(|s| s.bytes)
                .sum();
            let (schema, batches) =
                crate::analyze::store(&self.catalog, analysis, &batches, bytes).await?;
            return Ok(Outcome::new(kind, schema, batches));
        }
        Ok(Outcome::new(kind, schema, batches))
    }

    /// `SET name = value` / `RESET name`: checked against DataFusion's settings now, applied to
    /// every later statement of this engine.
    fn change_setting(&self, change: &PlanStatement) -> Result<(), Error> {
        if !self.config.session_settings {
            return Err(Error::user(
                "SET and RESET are not available here: this engine serves several clients, and \
                 a setting would change every client's statements; start it with DATAFUSION_* \
                 environment variables (e.g. DATAFUSION_EXECUTION_BATCH_SIZE=16384) instead",
            ));
        }
        let (name, value) = match change {
            PlanStatement::SetVariable(s) => (s.variable.to_ascii_lowercase(), Some(&s.value)),
            PlanStatement::ResetVariable(r) => (r.variable.to_ascii_lowercase(), None),
            _ => return Ok(()),
        };
        if name.starts_with("datafusion.runtime.") {
            return Err(Error::user(format!(
                "{name} cannot be changed by SET in Quarry: the runtime (memory pool, spill \
                 files, caches) is the process's; use --memory-limit or QUARRY_MEMORY_LIMIT"
            )));
        }
        let known = self
            .base_config
            .options()
            .entries()
            .iter()
            .any(|e| e.key == name);
        if !known {
            return Err(Error::user(format!(
                "unknown setting {name}; SELECT name FROM information_schema.df_settings lists \
                 them"
            )));
        }
        // RESET goes back to what the process started with (DataFusion's default or a
        // DATAFUSION_* variable).
        let mut settings = self.settings.lock().unwrap_or_else(|p| p.into_inner());
        settings.retain(|(n, _)| *n != name);
        if let Some(value) = value {
            let mut check = self.base_config.clone();
            check.options_mut().set(&name, value)?;
            settings.push((name, value.clone()));
        }
        Ok(())
    }

    /// CTAS, INSERT INTO, UNLOAD: the query runs in a metered session like any other, its
    /// result goes through the lake's staging writer.
    // The statement's per-run state (meter, scans, record, commit flag, looked-up tables)
    // travels as arguments, like `execute`'s; a struct for one private call would only rename it.
    #[allow(clippy::too_many_arguments)]
    async fn execute_write(
        &self,
        statement: Statement,
        request: &QueryRequest,
        meter: &Arc<Meter>,
        scans: &ScanLog,
        record: &mut QueryRecord,
        committing: &Arc<AtomicBool>,
        known: &crate::view::Known,
    ) -> Result<Outcome, Error> {
        // Parsing took microseconds; planning starts here.
        let planning = Instant::now();
        if request.dry_run {
            return Err(Error::user(
                "--dry-run applies to queries: run the statement's SELECT with --dry-run to see what it would read",
            ));
        }
        let database = request.database.as_deref();
        let (ctx, registry) = self.session(database, meter, scans).await?;
        let query = match &statement {
            Statement::CreateTableAs(c) => &c.query,
            Statement::Insert(i) => &i.query,
            Statement::Unload(u) => &u.query,
            _ => return Err(Error::internal("not a write statement")),
        };
        let query_statement = crate::write::query_statement(query);
        self.register_catalog(
            &ctx,
            &registry,
            database,
            scans,
            Some(&query_statement),
            known,
        )
        .await?;
        record.planning_ms = planning.elapsed().as_millis() as u64;
        let execution = Instant::now();
        // Outside a job run, a write statement still records its intent in the embedded
        // catalog (in the same transaction as its commit), and first undoes what statements of
        // dead processes published: a statement killed part-way converges when run again.
        let statement_scope = match (&self.job, &self.history) {
            // Only when the history store is the data catalog itself: the intent must end in
            // the same transaction as the write's commit.
            (None, Some(store))
                if self.catalog.commits_job_state()
                    && std::ptr::eq(
                        Arc::as_ptr(&self.catalog).cast::<u8>(),
                        Arc::as_ptr(store).cast::<u8>(),
                    ) =>
            {
                crate::job::recover_dead_statements(store, &self.stores).await?;
                Some(Arc::new(crate::job::statement_scope(Arc::clone(store))))
            }
            _ => None,
        };
        let w = crate::write::WriteContext {
            catalog: &self.catalog,
            stores: &self.stores,
            ctx: &ctx,
            default_db: database,
            warehouse: self.config.warehouse.as_deref(),
            target_file_size: self.config.target_file_size,
            query_id: &record.query_id,
            committing,
            job: self.job.as_ref().or(statement_scope.as_ref()),
            write_roots: self.config.write_roots.as_deref(),
        };
        let result = match statement {
            Statement::CreateTableAs(c) => crate::write::ctas(&w, *c).await,
            Statement::Insert(i) => crate::write::insert(&w, *i).await,
            Statement::Unload(u) => crate::write::unload(&w, *u).await,
            _ => Err(Error::internal("not a write statement")),
        };
        record.execution_ms = execution.elapsed().as_millis() as u64;
        {
            let mut log = scans.lock().unwrap_or_else(|p| p.into_inner());
            for s in log.iter_mut() {
                s.bytes_scanned = registry.scan_bytes(s.scan_id);
            }
        }
        // A failed statement cleaned up after itself: its intent has nothing left to undo.
        if result.is_err()
            && statement_scope.is_some()
            && let Some(store) = &self.history
        {
            let _ = store.remove_write_intent(&record.query_id);
        }
        let ((schema, batches), summary) = result?;
        let mut out = Outcome::new(StatementKind::Write, schema, batches);
        out.written = Some(summary);
        Ok(out)
    }

    /// The catalog store prepared statements live in.
    fn store(&self) -> Result<&SqliteCatalog, Error> {
        self.history.as_deref().ok_or_else(|| {
            Error::user("prepared statements need the embedded catalog store for history")
        })
    }

    fn workgroup<'a>(&self, request: &'a QueryRequest) -> &'a str {
        request
            .workgroup
            .as_deref()
            .unwrap_or(crate::prepared::DEFAULT_WORKGROUP)
    }

    /// PREPARE, DEALLOCATE PREPARE, DESCRIBE INPUT and DESCRIBE OUTPUT.
    async fn prepared_statement(
        &self,
        statement: Statement,
        request: &QueryRequest,
        dialect: &str,
        meter: &Arc<Meter>,
        scans: &ScanLog,
    ) -> Result<(SchemaRef, Vec<RecordBatch>), Error> {
        let wg = self.workgroup(request);
        let database = request.database.as_deref();
        let (name, input) = match statement {
            Statement::Prepare { name, sql } => {
                crate::prepared::put(self.store()?, wg, &name, &sql)?;
                return Ok((Arc::new(Schema::empty()), Vec::new()));
            }
            Statement::Deallocate { name } => {
                crate::prepared::delete(self.store()?, wg, &name)?;
                return Ok((Arc::new(Schema::empty()), Vec::new()));
            }
            Statement::DescribeInput { name } => (name, true),
            Statement::DescribeOutput { name } => (name, false),
            _ => return Err(Error::internal("not a prepared-statement statement")),
        };
        let sql = crate::prepared::load(self.store()?, wg, &name)?;
        let mut inner = crate::statement::parse(&sql, dialect)?;
        let count = crate::prepared::number_parameters(&mut inner)?;
        let mut known = crate::view::Known::new();
        crate::view::inline_views(&self.catalog, &mut inner, database, dialect, &mut known).await?;
        let Some(query) = crate::prepared::query_of(&inner) else {
            if input {
                return Ok(describe_input(count, &Default::default()));
            }
            // Statements without a result set (DDL) describe as Trino's `rows` count.
            return Ok(describe_output(&[(
                "rows".into(),
                DataType::Int64,
                None,
                false,
            )]));
        };
        let aliased = crate::prepared::aliased_columns(&query);
        let writes = !matches!(inner, Statement::Query(_));
        let (ctx, registry) = self.session(database, meter, scans).await?;
        let statement = crate::write::query_statement(&query);
        self.register_catalog(&ctx, &registry, database, scans, Some(&statement), &known)
            .await?;
        let plan = ctx.state().statement_to_plan(statement).await?;
        if input {
            let types = plan.get_parameter_types()?;
            return Ok(describe_input(count, &types));
        }
        if writes {
            return Ok(describe_output(&[(
                "rows".into(),
                DataType::Int64,
                None,
                false,
            )]));
        }
        let schema = plan.schema();
        let origins = column_origins(&plan);
        let columns: Vec<_> = (0..schema.fields().len())
            .map(|i| {
                let (qualifier, field) = schema.qualified_field(i);
                // An aliased column still comes from its table, as Trino reports it.
                let qualifier = qualifier.or(origins.get(i).and_then(Option::as_ref));
                let table = qualifier.map(|q| match (q.schema(), database) {
                    (Some(db), _) => (db.to_string(), q.table().to_string()),
                    (None, Some(db)) => (db.to_string(), q.table().to_string()),
                    (None, None) => (String::new(), q.table().to_string()),
                });
                (
                    field.name().clone(),
                    field.data_type().clone(),
                    table,
                    aliased.get(i).copied().unwrap_or(false),
                )
            })
            .collect();
        Ok(describe_output(&columns))
    }

    /// `CREATE [OR REPLACE] VIEW`: plans the query (so a broken view is refused, as Athena
    /// does), then stores it in Athena's format with the columns the plan gives.
    async fn create_view(
        &self,
        v: crate::statement::CreateView,
        database: Option<&str>,
        meter: &Arc<Meter>,
        scans: &ScanLog,
        known: &crate::view::Known,
    ) -> Result<(SchemaRef, Vec<RecordBatch>), Error> {
        let (db, name) = crate::ddl::resolve(&v.name, database)?;
        if self.catalog.get_database(&db).await?.is_none() {
            return Err(Error::user(format!(
                "database {db} does not exist; CREATE DATABASE {db} first"
            )));
        }
        let existing = self.catalog.get_table(&db, &name).await?;
        match &existing {
            Some(t) if !t.is_view() => {
                return Err(Error::user(format!(
                    "{db}.{name} is a table; a view cannot replace it (DROP TABLE it first)"
                )));
            }
            Some(_) if !v.or_replace => {
                return Err(Error::user(format!(
                    "view {db}.{name} already exists; use CREATE OR REPLACE VIEW"
                )));
            }
            _ => {}
        }
        let (ctx, registry) = self.session(database, meter, scans).await?;
        let statement = crate::write::query_statement(&v.query);
        self.register_catalog(&ctx, &registry, database, scans, Some(&statement), known)
            .await?;
        let plan = ctx.state().statement_to_plan(statement).await?;
        let schema = plan.schema().as_arrow().clone();
        let mut table = crate::view::view_table(&db, &name, &v.sql, &schema, v.comment, database);
        if let Some(old) = &existing {
            table.create_time = old.create_time;
        }
        self.catalog
            .commit(CatalogWrite {
                tables: vec![TableWrite {
                    table,
                    expected_version: existing.map(|t| t.version),
                }],
                ..Default::default()
            })
            .await?;
        Ok((Arc::new(Schema::empty()), Vec::new()))
    }

    /// The client of a federated catalog, or an error that says how to register one.
    async fn federated_client(
        &self,
        name: &str,
    ) -> Result<Arc<quarry_federation::client::Client>, Error> {
        self.federation
            .client(name, &self.catalog, self.history.as_deref(), &self.stores)
            .await?
            .ok_or_else(|| {
                Error::user(format!(
                    "catalog {name} does not exist; register it with `quarry catalog add {name} \
                     --connector postgres --uri ..` (or --lambda FUNCTION), or name a connector \
                     Lambda as \"lambda:FUNCTION\""
                ))
            })
    }

    /// SHOW DATABASES, SHOW TABLES [IN db], SHOW PARTITIONS t, DESCRIBE t: answered from the
    /// catalog.
    async fn metadata_statement(
        &self,
        statement: Statement,
        request: &QueryRequest,
    ) -> Result<(SchemaRef, Vec<RecordBatch>), Error> {
        let database = request.database.as_deref();
        match statement {
            Statement::ShowDatabases {
                catalog: Some(catalog),
                like,
            } if catalog != DEFAULT_CATALOG => {
                let client = self.federated_client(&catalog).await?;
                let names = client
                    .list_schemas()
                    .await
                    .map_err(|e| Error::user(e.to_string()))?
                    .into_iter()
                    .filter(|n| like.as_deref().is_none_or(|p| athena_like(p, n)))
                    .collect();
                Ok(string_rows(&[("database_name", names)]))
            }
            Statement::ShowTables {
                catalog: Some(catalog),
                database: db,
                like,
            } if catalog != DEFAULT_CATALOG => {
                let client = self.federated_client(&catalog).await?;
                let db = db.ok_or_else(|| {
                    Error::user(format!("name the schema: SHOW TABLES IN {catalog}.schema"))
                })?;
                let names = client
                    .list_tables(&db)
                    .await
                    .map_err(|e| Error::user(e.to_string()))?
                    .into_iter()
                    .map(|t| t.table_name)
                    .filter(|n| like.as_deref().is_none_or(|p| athena_like(p, n)))
                    .collect();
                Ok(string_rows(&[("tab_name", names)]))
            }
            Statement::Describe { table }
                if table
                    .catalog
                    .as_deref()
                    .is_some_and(|c| c != DEFAULT_CATALOG) =>
            {
                let catalog = table.catalog.clone().unwrap_or_default();
                let client = self.federated_client(&catalog).await?;
                let db = table
                    .database
                    .clone()
                    .ok_or_else(|| Error::user("name the schema: DESCRIBE catalog.schema.table"))?;
                let remote = client
                    .get_table(&quarry_federation::wire::TableName::new(db, &table.table))
                    .await
                    .map_err(|e| Error::user(e.to_string()))?;
                let engine = quarry_federation::types::to_engine_schema(&remote.schema);
                let mut rows = (Vec::new(), Vec::new(), Vec::new());
                for f in engine.fields() {
                    if remote
                        .partition_columns
                        .iter()
                        .any(|p| p.eq_ignore_ascii_case(f.name()))
                    {
                        continue;
                    }
                    rows.0.push(f.name().clone());
                    rows.1.push(crate::view::trino_type(f.data_type()));
                    rows.2.push(String::new());
                }
                Ok(string_rows(&[
                    ("col_name", rows.0),
                    ("data_type", rows.1),
                    ("comment", rows.2),
                ]))
            }
            Statement::ShowDatabases { like, .. } => {
                let names = self
                    .catalog
                    .list_databases()
                    .await?
                    .into_iter()
                    .map(|d| d.name)
                    .filter(|n| like.as_deref().is_none_or(|p| athena_like(p, n)))
                    .collect();
                Ok(string_rows(&[("database_name", names)]))
            }
            Statement::ShowTables {
                database: db, like, ..
            } => {
                let db = match db.or_else(|| request.database.clone()) {
                    Some(db) => db,
                    None => {
                        return Err(Error::user(
                            "no database selected: use SHOW TABLES IN db or -d db",
                        ));
                    }
                };
                let names = self
                    .catalog
                    .list_tables(&db)
                    .await?
                    .into_iter()
                    .map(|t| t.name)
                    .filter(|n| like.as_deref().is_none_or(|p| athena_like(p, n)))
                    .collect();
                Ok(string_rows(&[("tab_name", names)]))
            }
            Statement::ShowPartitions { table } => {
                let t = crate::ddl::existing_table(&self.catalog, &table, database).await?;
                let parts = self
                    .catalog
                    .get_partitions(&t.database, &t.name, &PartitionFilter::all())
                    .await?;
                let keys: Vec<&str> = t.partition_keys.iter().map(|k| k.name.as_str()).collect();
                let names: Vec<String> = parts
                    .iter()
                    .map(|p| quarry_lake::hive::partition_label(&keys, &p.values))
                    .collect();
                // Athena's shape: one `partition` column (`quarry partitions` shows statistics).
                Ok(string_rows(&[("partition", names)]))
            }
            // Athena's DESCRIBE: the catalog's (Hive) types, partition keys marked.
            Statement::Describe { table } => {
                let t = crate::ddl::existing_table(&self.catalog, &table, database).await?;
                let mut rows = (Vec::new(), Vec::new(), Vec::new());
                let columns = t.storage.columns.iter().map(|c| (c, None));
                let keys = t.partition_keys.iter().map(|k| (k, Some("partition key")));
                for (c, key) in columns.chain(keys) {
                    rows.0.push(c.name.clone());
                    rows.1.push(c.data_type.clone());
                    let comment = c.comment.as_deref().into_iter().chain(key);
                    rows.2.push(comment.collect::<Vec<_>>().join("; "));
                }
                Ok(string_rows(&[
                    ("col_name", rows.0),
                    ("data_type", rows.1),
                    ("comment", rows.2),
                ]))
            }
            other => Err(Error::internal(format!(
                "not a metadata statement: {other:?}"
            ))),
        }
    }
}

/// Athena's `SHOW TABLES 'pattern'` / `LIKE 'pattern'`: `*` matches any run of characters and
/// `|` separates alternatives, case-insensitively.
pub(crate) fn athena_like(pattern: &str, name: &str) -> bool {
    fn glob(p: &[u8], n: &[u8]) -> bool {
        match p.split_first() {
            None => n.is_empty(),
            Some((b'*', rest)) => (0..=n.len()).any(|i| glob(rest, &n[i..])),
            Some((c, rest)) => n
                .split_first()
                .is_some_and(|(d, nrest)| c.eq_ignore_ascii_case(d) && glob(rest, nrest)),
        }
    }
    pattern
        .split('|')
        .any(|alt| glob(alt.trim().as_bytes(), name.as_bytes()))
}

/// Athena's `StatementType`: `DML` for queries and writes, `UTILITY` for SHOW, DESCRIBE and
/// EXPLAIN, `DDL` for the rest.
fn statement_type(statement: &Statement) -> &'static str {
    use datafusion::sql::sqlparser::ast::Statement as Sql;
    match statement {
        Statement::Query(DFStatement::Explain(_)) => "UTILITY",
        Statement::Query(DFStatement::Statement(s)) => match s.as_ref() {
            Sql::Query(_) | Sql::Insert(_) => "DML",
            Sql::ShowColumns { .. }
            | Sql::ShowTables { .. }
            | Sql::ShowVariable { .. }
            | Sql::ShowFunctions { .. }
            | Sql::ExplainTable { .. }
            | Sql::Explain { .. } => "UTILITY",
            _ => "DDL",
        },
        Statement::Query(_) => "DDL",
        Statement::CreateTableAs(_) | Statement::Insert(_) | Statement::Unload(_) => "DML",
        Statement::ShowDatabases { .. }
        | Statement::ShowTables { .. }
        | Statement::ShowPartitions { .. }
        | Statement::ShowCreateTable { .. }
        | Statement::ShowTableProperties { .. }
        | Statement::ShowViews { .. }
        | Statement::ShowCreateView { .. }
        | Statement::DescribeInput { .. }
        | Statement::DescribeOutput { .. }
        | Statement::Describe { .. } => "UTILITY",
        Statement::Prepare { .. } | Statement::Deallocate { .. } => "UTILITY",
        _ => "DDL",
    }
}

/// What a statement produced.
struct Outcome {
    kind: StatementKind,
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
    dry_run: Option<u64>,
    written: Option<WriteSummary>,
}

impl Outcome {
    fn new(kind: StatementKind, schema: SchemaRef, batches: Vec<RecordBatch>) -> Self {
        Self {
            kind,
            schema,
            batches,
            dry_run: None,
            written: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::athena_like;

    #[test]
    fn athena_patterns() {
        assert!(athena_like("sales*", "sales_2024"));
        assert!(athena_like("*2024|orders", "orders"));
        assert!(!athena_like("sales", "sales_2024"));
        assert!(athena_like("S*", "sales"));
    }
}
