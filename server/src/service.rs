//! The execution service: statements submitted, queued (bounded concurrency), run by the
//! engine, their results kept as Arrow IPC files, and everything recorded in the catalog store
//! so executions and results survive a restart.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::ipc::reader::FileReader;
use datafusion::arrow::ipc::writer::FileWriter;
use quarry_catalog::SqliteCatalog;
use quarry_query::statement::Statement;
use quarry_query::{Engine, ErrorCategory, QueryRequest, StatementKind};
use serde::{Deserialize, Serialize};
use tokio::sync::{Semaphore, watch};

use crate::error::ApiError;
use crate::values::ColumnInfo;

/// Seconds since the epoch, as Athena's JSON timestamps.
pub fn epoch(t: DateTime<Utc>) -> f64 {
    t.timestamp_millis() as f64 / 1000.0
}

/// `AthenaError` of a failed execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AthenaError {
    /// 1 system, 2 user, 3 other.
    pub error_category: u8,
    pub error_type: u32,
    pub retryable: bool,
    pub error_message: String,
}

/// One execution, as stored and as `GetQueryExecution` reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Execution {
    pub id: String,
    pub query: String,
    pub database: Option<String>,
    pub catalog: String,
    pub workgroup: String,
    /// The output file (`<location>/<id>.csv` / `.txt`), when one was written.
    pub output_location: Option<String>,
    pub client_token: Option<String>,
    pub execution_parameters: Vec<String>,
    pub state: String,
    pub state_change_reason: Option<String>,
    pub error: Option<AthenaError>,
    pub submitted: DateTime<Utc>,
    pub started: Option<DateTime<Utc>>,
    pub completed: Option<DateTime<Utc>>,
    pub statement_type: String,
    pub substatement_type: String,
    pub data_scanned: u64,
    pub planning_ms: u64,
    pub engine_ms: u64,
    pub queue_ms: u64,
    pub columns: Vec<ColumnInfo>,
    pub update_count: Option<u64>,
    pub rows: u64,
    /// A SELECT-like result: its first page starts with the column labels.
    pub header: bool,
    /// Rows of each batch of the stored result, so a page reads only its batches.
    #[serde(default)]
    pub batch_rows: Vec<u64>,
}

impl Execution {
    pub fn is_final(&self) -> bool {
        matches!(self.state.as_str(), "SUCCEEDED" | "FAILED" | "CANCELLED")
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Submission {
    /// The SQL to run, as submitted (`?` parameters and EXECUTE resolved by the engine).
    pub sql: String,
    /// The SQL whose statement types the execution reports (for EXECUTE, the prepared one).
    pub typed: String,
    /// Values for the `?` parameters (ExecutionParameters), each SQL text.
    pub parameters: Vec<String>,
    /// The QueryString as submitted (what GetQueryExecution shows, and what an idempotency
    /// token is checked against).
    pub text: String,
    pub database: Option<String>,
    pub catalog: String,
    pub workgroup: String,
    pub client_token: Option<String>,
    pub execution_parameters: Vec<String>,
    /// Where to write `<id>.csv` (checked against the allow-list by the caller).
    pub output_location: Option<String>,
    pub max_bytes_scanned: Option<u64>,
}

/// Runs executions.
pub struct Service {
    engine: Engine,
    stores: Arc<quarry_lake::ObjectStores>,
    store: Arc<SqliteCatalog>,
    results: PathBuf,
    permits: Arc<Semaphore>,
    /// Stop signals of queued and running executions.
    live: Mutex<HashMap<String, watch::Sender<bool>>>,
    /// Serialises idempotency-token lookups with the submissions they guard.
    tokens: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("results", &self.results)
            .finish()
    }
}

const TOKEN_KIND: &str = "client_token";

/// The `SubstatementType` of a statement, as Athena names them.
fn substatement(sql: &str) -> String {
    let s = match quarry_query::statement::parse(sql, "generic") {
        Ok(Statement::CreateTableAs(_)) => "CREATE_TABLE_AS_SELECT",
        Ok(Statement::Insert(_)) => "INSERT",
        Ok(Statement::Unload(_)) => "UNLOAD",
        Ok(Statement::CreateDatabase { .. }) => "CREATE_DATABASE",
        Ok(Statement::DropDatabase { .. }) => "DROP_DATABASE",
        Ok(Statement::CreateExternalTable(_)) => "CREATE_TABLE",
        Ok(Statement::DropTable { .. }) => "DROP_TABLE",
        Ok(Statement::MsckRepair { .. }) => "REPAIR_TABLE",
        Ok(Statement::ShowDatabases { .. }) => "SHOW_DATABASES",
        Ok(Statement::ShowTables { .. }) => "SHOW_TABLES",
        Ok(Statement::ShowPartitions { .. }) => "SHOW_PARTITIONS",
        Ok(Statement::ShowCreateTable { .. }) => "SHOW_CREATE_TABLE",
        Ok(Statement::ShowTableProperties { .. }) => "SHOW_TBLPROPERTIES",
        Ok(Statement::Describe { .. }) => "DESCRIBE_TABLE",
        Ok(Statement::ExplainCost(_)) => "EXPLAIN",
        Ok(Statement::Prepare { .. }) => "PREPARE",
        Ok(Statement::Deallocate { .. }) => "DEALLOCATE",
        Ok(Statement::Execute { .. }) => "EXECUTE",
        Ok(Statement::DescribeInput { .. }) => "DESCRIBE_INPUT",
        Ok(Statement::DescribeOutput { .. }) => "DESCRIBE_OUTPUT",
        Ok(Statement::CreateView(_)) => "CREATE_VIEW",
        Ok(Statement::DropView { .. }) => "DROP_VIEW",
        Ok(Statement::ShowViews { .. }) => "SHOW_VIEWS",
        Ok(Statement::ShowCreateView { .. }) => "SHOW_CREATE_VIEW",
        Ok(Statement::Query(_)) => {
            let first = sql
                .trim_start()
                .split(|c: char| !c.is_ascii_alphabetic())
                .next()
                .unwrap_or("")
                .to_ascii_uppercase();
            return match first.as_str() {
                "SELECT" | "WITH" | "VALUES" | "TABLE" | "" => "SELECT".into(),
                other => other.to_string(),
            };
        }
        Ok(_) => "ALTER_TABLE",
        Err(_) => "UNKNOWN",
    };
    s.into()
}

/// `StatementType` and `SubstatementType` of a statement, known before it runs.
fn statement_types(sql: &str) -> (String, String) {
    let sub = substatement(sql);
    let kind = match sub.as_str() {
        "SELECT" | "INSERT" | "CREATE_TABLE_AS_SELECT" | "UNLOAD" => "DML",
        s if s.starts_with("SHOW")
            || s.starts_with("DESCRIBE")
            || matches!(s, "EXPLAIN" | "PREPARE" | "DEALLOCATE") =>
        {
            "UTILITY"
        }
        _ => "DDL",
    };
    (kind.to_string(), sub)
}

/// Athena's error type numbers for the categories Quarry has.
fn athena_error(category: ErrorCategory, message: &str) -> AthenaError {
    let (cat, ty, retryable) = match category {
        ErrorCategory::User => (2, 1006, false),
        ErrorCategory::LimitExceeded => (2, 1002, false),
        ErrorCategory::Cancelled => (2, 1002, false),
        ErrorCategory::Retryable => (1, 401, true),
        ErrorCategory::Internal => (1, 400, false),
    };
    AthenaError {
        error_category: cat,
        error_type: ty,
        retryable,
        error_message: message.to_string(),
    }
}

impl Service {
    /// A service running at most `concurrency` executions at once, keeping results in
    /// `results` and records in `store`. Executions a previous server left unfinished are
    /// recorded as FAILED.
    pub fn new(
        engine: Engine,
        stores: Arc<quarry_lake::ObjectStores>,
        store: Arc<SqliteCatalog>,
        results: PathBuf,
        concurrency: usize,
    ) -> Result<Arc<Self>, ApiError> {
        std::fs::create_dir_all(&results).map_err(|e| {
            ApiError::internal(format!(
                "cannot create the results folder {}: {e}",
                results.display()
            ))
        })?;
        let service = Arc::new(Self {
            engine,
            stores,
            store,
            results,
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            live: Mutex::default(),
            tokens: tokio::sync::Mutex::new(()),
        });
        for needle in ["\"state\":\"QUEUED\"", "\"state\":\"RUNNING\""] {
            for body in service.store.executions_containing(needle)? {
                let Ok(mut e) = serde_json::from_str::<Execution>(&body) else {
                    continue;
                };
                if e.is_final() {
                    continue;
                }
                e.state = "FAILED".into();
                e.completed = Some(Utc::now());
                let reason = "the server stopped before the query finished; run it again";
                e.state_change_reason = Some(reason.into());
                e.error = Some(athena_error(ErrorCategory::Retryable, reason));
                service.save(&e)?;
            }
        }
        Ok(service)
    }

    /// Forget executions older than `retention` (Athena keeps 45 days): their records, tokens
    /// and result files. Returns how many went.
    pub fn prune(&self, retention: std::time::Duration) -> Result<usize, ApiError> {
        let Some(before) = chrono::Duration::from_std(retention)
            .ok()
            .and_then(|r| Utc::now().checked_sub_signed(r))
        else {
            return Ok(0);
        };
        let ids = self.store.prune_executions(before, TOKEN_KIND)?;
        for id in &ids {
            let _ = std::fs::remove_file(self.result_path(id));
        }
        // Half-written result files of a server that died.
        if let Ok(dir) = std::fs::read_dir(&self.results) {
            for entry in dir.flatten() {
                let name = entry.file_name();
                let stale = entry.metadata().and_then(|m| m.modified()).is_ok_and(|t| {
                    t.elapsed()
                        .is_ok_and(|a| a > std::time::Duration::from_secs(3600))
                });
                if name.to_string_lossy().ends_with(".tmp") && stale {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        Ok(ids.len())
    }

    pub fn store(&self) -> &Arc<SqliteCatalog> {
        &self.store
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    fn save(&self, e: &Execution) -> Result<(), ApiError> {
        let body = serde_json::to_string(e)
            .map_err(|err| ApiError::internal(format!("encoding execution {}: {err}", e.id)))?;
        self.store
            .put_execution(&e.id, &e.workgroup, e.submitted, &body)?;
        Ok(())
    }

    pub fn get(&self, id: &str) -> Result<Execution, ApiError> {
        let body = self
            .store
            .execution(id)?
            .ok_or_else(|| ApiError::invalid(format!("QueryExecution {id} was not found")))?;
        serde_json::from_str(&body)
            .map_err(|e| ApiError::internal(format!("execution {id} is damaged: {e}")))
    }

    /// Submit; returns the execution id at once. The same `client_token` with the same
    /// query returns the first submission's id.
    pub async fn submit(self: &Arc<Self>, s: Submission) -> Result<String, ApiError> {
        let _guard = self.tokens.lock().await;
        if let Some(token) = &s.client_token
            && let Some(id) = self.store.named(TOKEN_KIND, token)?
        {
            let e = self.get(&id)?;
            if e.query != s.text {
                return Err(ApiError::invalid(format!(
                    "ClientRequestToken {token} was used for execution {id} with a different QueryString; use a new token"
                )));
            }
            return Ok(id);
        }
        let id = uuid::Uuid::new_v4().to_string();
        let (statement_type, substatement_type) = statement_types(&s.typed);
        let e = Execution {
            id: id.clone(),
            query: s.text.clone(),
            database: s.database.clone(),
            catalog: s.catalog.clone(),
            workgroup: s.workgroup.clone(),
            output_location: None,
            client_token: s.client_token.clone(),
            execution_parameters: s.execution_parameters.clone(),
            state: "QUEUED".into(),
            state_change_reason: None,
            error: None,
            submitted: Utc::now(),
            started: None,
            completed: None,
            statement_type,
            substatement_type,
            data_scanned: 0,
            planning_ms: 0,
            engine_ms: 0,
            queue_ms: 0,
            columns: Vec::new(),
            update_count: None,
            rows: 0,
            header: false,
            batch_rows: Vec::new(),
        };
        self.save(&e)?;
        if let Some(token) = &s.client_token {
            self.store.put_named(TOKEN_KIND, token, &id)?;
        }
        let (stop, stopped) = watch::channel(false);
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.clone(), stop);
        let service = Arc::clone(self);
        let run = tokio::spawn({
            let service = Arc::clone(&service);
            async move { service.execute(e, s, stopped).await }
        });
        // A panic inside the engine must not leave the execution RUNNING forever.
        let watched = id.clone();
        tokio::spawn(async move {
            if let Err(err) = run.await
                && let Ok(mut e) = service.get(&watched)
                && !e.is_final()
            {
                let reason = format!("internal error while running the query: {err}");
                e.state = "FAILED".into();
                e.completed = Some(Utc::now());
                e.error = Some(athena_error(ErrorCategory::Internal, &reason));
                e.state_change_reason = Some(reason);
                service.finish(&e);
            }
        });
        Ok(id)
    }

    /// Stop an execution: a queued one is cancelled at once, a running one as soon as the
    /// engine notices. Stopping a finished execution does nothing, as in Athena.
    pub fn stop(&self, id: &str) -> Result<(), ApiError> {
        self.get(id)?;
        if let Some(s) = self.live.lock().unwrap_or_else(|p| p.into_inner()).get(id) {
            s.send_replace(true);
        }
        Ok(())
    }

    async fn execute(
        self: Arc<Self>,
        mut e: Execution,
        s: Submission,
        stopped: watch::Receiver<bool>,
    ) {
        let mut wait = stopped.clone();
        let permit = tokio::select! {
            p = Arc::clone(&self.permits).acquire_owned() => p.ok(),
            _ = wait.wait_for(|s| *s) => None,
        };
        let now = Utc::now();
        e.queue_ms = (now - e.submitted).num_milliseconds().max(0) as u64;
        if permit.is_none() {
            e.state = "CANCELLED".into();
            e.completed = Some(now);
            e.state_change_reason = Some("Query cancelled by user".into());
            self.finish(&e);
            return;
        }
        e.state = "RUNNING".into();
        e.started = Some(now);
        let _ = self.save(&e);

        let request = QueryRequest {
            sql: s.sql.clone(),
            database: s.database.clone(),
            max_bytes_scanned: s.max_bytes_scanned,
            dry_run: false,
            query_id: Some(e.id.clone()),
            workgroup: Some(s.workgroup.clone()),
            parameters: s.parameters.clone(),
        };
        let meter = self.engine.meter_for(&request);
        let mut cancel = stopped.clone();
        let out = self
            .engine
            .run_with(request, meter, async move {
                let _ = cancel.wait_for(|s| *s).await;
            })
            .await;
        let r = &out.record;
        e.completed = Some(Utc::now());
        e.data_scanned = r.bytes_scanned;
        e.planning_ms = r.planning_ms;
        e.engine_ms = r.planning_ms + r.execution_ms;
        e.statement_type = r.statement_type.clone().unwrap_or_else(|| "DML".into());
        if out.succeeded() {
            let written = out.written.is_some();
            e.columns = if written {
                vec![ColumnInfo::new(
                    "rows",
                    &datafusion::arrow::datatypes::DataType::Int64,
                )]
            } else {
                out.schema
                    .fields()
                    .iter()
                    .map(|f| ColumnInfo::new(f.name(), f.data_type()))
                    .collect()
            };
            e.update_count = out.written.as_ref().map(|w| w.rows);
            e.header = !written && matches!(out.kind, StatementKind::Query);
            e.rows = if written {
                0
            } else {
                out.batches.iter().map(|b| b.num_rows() as u64).sum()
            };
            e.batch_rows = out.batches.iter().map(|b| b.num_rows() as u64).collect();
            let stored = if written {
                Ok(())
            } else {
                self.write_results(&e.id, &out.schema, &out.batches)
            };
            match stored {
                Ok(()) => e.state = "SUCCEEDED".into(),
                Err(err) => {
                    e.state = "FAILED".into();
                    e.state_change_reason = Some(err.to_string());
                    e.error = Some(athena_error(ErrorCategory::Internal, &err.to_string()));
                }
            }
            if e.state == "SUCCEEDED"
                && let Some(location) = &s.output_location
            {
                match crate::output::write(&self.stores, location, &e, &out.schema, &out.batches)
                    .await
                {
                    Ok(file) => e.output_location = Some(file),
                    Err(err) => {
                        e.state = "FAILED".into();
                        e.state_change_reason = Some(err.clone());
                        e.error = Some(athena_error(ErrorCategory::User, &err));
                    }
                }
            }
        } else {
            let category = out.error_category.unwrap_or(ErrorCategory::Internal);
            let message = r.error.clone().unwrap_or_default();
            if category == ErrorCategory::Cancelled && *stopped.borrow() {
                e.state = "CANCELLED".into();
                e.state_change_reason = Some("Query cancelled by user".into());
            } else if category == ErrorCategory::LimitExceeded {
                // Athena cancels a query that passes the workgroup's data limit.
                e.state = "CANCELLED".into();
                e.state_change_reason = Some(message.clone());
                e.error = Some(athena_error(category, &message));
            } else {
                e.state = "FAILED".into();
                e.state_change_reason = Some(message.clone());
                e.error = Some(athena_error(category, &message));
            }
        }
        drop(permit);
        self.finish(&e);
    }

    fn finish(&self, e: &Execution) {
        if let Err(err) = self.save(e) {
            eprintln!("warning: could not record execution {}: {err}", e.id);
        }
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&e.id);
    }

    fn result_path(&self, id: &str) -> PathBuf {
        self.results.join(format!("{id}.arrow"))
    }

    fn write_results(
        &self,
        id: &str,
        schema: &SchemaRef,
        batches: &[RecordBatch],
    ) -> Result<(), ApiError> {
        let path = self.result_path(id);
        let tmp = self.results.join(format!(".{id}.arrow.tmp"));
        let write = || -> Result<(), Box<dyn std::error::Error>> {
            let file = std::fs::File::create(&tmp)?;
            let mut w = FileWriter::try_new(file, schema)?;
            for b in batches {
                w.write(b)?;
            }
            w.finish()?;
            std::fs::rename(&tmp, &path)?;
            Ok(())
        };
        write().map_err(|err| {
            let _ = std::fs::remove_file(&tmp);
            ApiError::internal(format!("storing the results of {id}: {err}"))
        })
    }

    /// Rows `from..from + n` of a SUCCEEDED execution's result, as text: only the batches that
    /// hold them are read from the result file.
    pub fn result_rows(
        &self,
        e: &Execution,
        from: usize,
        n: usize,
    ) -> Result<Vec<Vec<Option<String>>>, ApiError> {
        let path = self.result_path(&e.id);
        let file = std::fs::File::open(&path).map_err(|err| {
            ApiError::invalid(format!(
                "the results of {} are no longer available ({err}); run the query again",
                e.id
            ))
        })?;
        let mut reader = FileReader::try_new(std::io::BufReader::new(file), None)
            .map_err(|err| ApiError::internal(format!("reading results of {}: {err}", e.id)))?;
        // The batch holding row `from`, and the rows before it.
        let (mut batch, mut skip) = (0usize, from as u64);
        for rows in &e.batch_rows {
            if skip < *rows {
                break;
            }
            skip -= rows;
            batch += 1;
        }
        if batch >= reader.num_batches() {
            return Ok(Vec::new());
        }
        reader
            .set_index(batch)
            .map_err(|err| ApiError::internal(format!("reading results of {}: {err}", e.id)))?;
        let mut out = Vec::with_capacity(n.min(1000));
        let mut skip = skip as usize;
        for b in reader {
            if out.len() >= n {
                break;
            }
            let b =
                b.map_err(|err| ApiError::internal(format!("reading results of {}: {err}", e.id)))?;
            let to = skip.saturating_add(n - out.len()).min(b.num_rows());
            if skip < to {
                out.extend(crate::values::rows(b.columns(), skip, to));
            }
            skip = 0;
        }
        Ok(out)
    }
}
