//! The Athena operations: each takes the request's JSON and answers JSON (awsJson1_1, shapes
//! from botocore's Athena model).

use std::sync::Arc;

use chrono::Utc;
use quarry_catalog::{Catalog, Table};
use serde_json::{Value, json};

use quarry_query::federated;

use crate::error::ApiError;

/// Athena's catalog type of a registered data catalog.
fn catalog_type(source: &federated::Source) -> &'static str {
    match source {
        federated::Source::Lambda { .. } => "LAMBDA",
        federated::Source::Connector { .. } => "FEDERATED",
    }
}

/// A catalog-store or registration error as the API reports it (the user's to fix).
fn query_error(e: quarry_query::Error) -> ApiError {
    ApiError::invalid(e.to_string())
}

use crate::service::{Execution, Service, Submission, epoch};

/// The one data catalog: the Quarry catalog, named as Athena names Glue's.
pub const DATA_CATALOG: &str = "AwsDataCatalog";
const WORKGROUP: &str = "workgroup";
const PREPARED: &str = "prepared_statement";
const PRIMARY: &str = "primary";

/// Server settings the operations need.
#[derive(Debug, Clone, Default)]
pub struct ApiConfig {
    /// Roots `OutputLocation`s must lie under; empty: output locations are accepted and
    /// ignored (results are managed by the server).
    pub output_roots: Vec<String>,
}

pub struct Api {
    pub service: Arc<Service>,
    pub config: ApiConfig,
}

fn field<'a>(v: &'a Value, name: &str) -> Option<&'a str> {
    v.get(name).and_then(Value::as_str)
}

fn required<'a>(v: &'a Value, name: &str) -> Result<&'a str, ApiError> {
    field(v, name)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::invalid(format!("{name} is required")))
}

/// `NextToken` as an offset (opaque to clients: they only send back what they got).
fn offset(v: &Value) -> Result<usize, ApiError> {
    match field(v, "NextToken") {
        None => Ok(0),
        Some(t) => t
            .parse()
            .map_err(|_| ApiError::invalid(format!("NextToken '{t}' is not one this server gave"))),
    }
}

fn max_results(v: &Value, max: u64, default: u64) -> Result<usize, ApiError> {
    match v.get("MaxResults") {
        None | Some(Value::Null) => Ok(default as usize),
        Some(n) => match n.as_u64() {
            Some(n) if n >= 1 && n <= max => Ok(n as usize),
            _ => Err(ApiError::invalid(format!(
                "MaxResults must be between 1 and {max}, got {n}"
            ))),
        },
    }
}

fn page<T: Clone>(items: &[T], from: usize, n: usize) -> (Vec<T>, Option<String>) {
    let to = from.saturating_add(n).min(items.len());
    let slice = items.get(from..to).unwrap_or_default().to_vec();
    let next = (to < items.len()).then(|| to.to_string());
    (slice, next)
}

fn check_catalog(v: &Value, key: &str) -> Result<(), ApiError> {
    match field(v, key) {
        None => Ok(()),
        Some(c) if c.eq_ignore_ascii_case(DATA_CATALOG) => Ok(()),
        Some(c) => Err(ApiError::metadata(format!(
            "data catalog '{c}' does not exist; this server has {DATA_CATALOG}"
        ))),
    }
}

fn execution_json(e: &Execution) -> Value {
    let mut status = json!({
        "State": e.state,
        "SubmissionDateTime": epoch(e.submitted),
    });
    if let Some(t) = e.completed {
        status["CompletionDateTime"] = json!(epoch(t));
    }
    if let Some(r) = &e.state_change_reason {
        status["StateChangeReason"] = json!(r);
    }
    if let Some(err) = &e.error {
        status["AthenaError"] = json!(err);
    }
    let total = e
        .completed
        .map(|c| (c - e.submitted).num_milliseconds().max(0) as u64)
        .unwrap_or(0);
    let mut context = json!({ "Catalog": e.catalog.to_ascii_lowercase() });
    if let Some(db) = &e.database {
        context["Database"] = json!(db);
    }
    let mut result_configuration = json!({});
    if let Some(o) = &e.output_location {
        result_configuration["OutputLocation"] = json!(o);
    }
    let mut v = json!({
        "QueryExecutionId": e.id,
        "Query": e.query,
        "StatementType": e.statement_type,
        "SubstatementType": e.substatement_type,
        "ResultConfiguration": result_configuration,
        "ManagedQueryResultsConfiguration": { "Enabled": e.output_location.is_none() },
        "QueryExecutionContext": context,
        "Status": status,
        "Statistics": {
            "EngineExecutionTimeInMillis": e.engine_ms,
            "DataScannedInBytes": e.data_scanned,
            "TotalExecutionTimeInMillis": total,
            "QueryQueueTimeInMillis": e.queue_ms,
            "QueryPlanningTimeInMillis": e.planning_ms,
            "ServiceProcessingTimeInMillis": total.saturating_sub(e.engine_ms + e.queue_ms),
            "ResultReuseInformation": { "ReusedPreviousResult": false },
        },
        "WorkGroup": e.workgroup,
        "EngineVersion": {
            "SelectedEngineVersion": "AUTO",
            "EffectiveEngineVersion": "Athena engine version 3",
        },
    });
    if !e.execution_parameters.is_empty() {
        v["ExecutionParameters"] = json!(e.execution_parameters);
    }
    v
}

fn workgroup_json(name: &str, body: &Value) -> Value {
    let mut w = body.clone();
    w["Name"] = json!(name);
    w
}

fn default_workgroup() -> Value {
    json!({
        "Name": PRIMARY,
        "State": "ENABLED",
        "Description": "The default workgroup",
        "CreationTime": epoch(Utc::now()),
        "Configuration": {
            "ResultConfiguration": {},
            "EnforceWorkGroupConfiguration": false,
            "PublishCloudWatchMetricsEnabled": false,
            "RequesterPaysEnabled": false,
            "EngineVersion": {
                "SelectedEngineVersion": "AUTO",
                "EffectiveEngineVersion": "Athena engine version 3",
            },
            "ManagedQueryResultsConfiguration": { "Enabled": true },
        },
    })
}

fn table_json(t: &Table) -> Value {
    let col = |c: &quarry_catalog::Column| {
        let mut v = json!({ "Name": c.name, "Type": c.data_type });
        if let Some(comment) = &c.comment {
            v["Comment"] = json!(comment);
        }
        v
    };
    let mut params = t.parameters.clone();
    params.insert("location".into(), t.storage.location.clone());
    params.insert("inputformat".into(), t.storage.input_format.clone());
    params.insert("outputformat".into(), t.storage.output_format.clone());
    params.insert(
        "serde.serialization.lib".into(),
        t.storage.serde_info.serialization_library.clone(),
    );
    for (k, v) in &t.storage.serde_info.parameters {
        params.insert(format!("serde.param.{k}"), v.clone());
    }
    json!({
        "Name": t.name,
        "CreateTime": epoch(t.create_time),
        "LastAccessTime": epoch(t.update_time),
        "TableType": t.table_type,
        "Columns": t.storage.columns.iter().map(col).collect::<Vec<_>>(),
        "PartitionKeys": t.partition_keys.iter().map(col).collect::<Vec<_>>(),
        "Parameters": params,
    })
}

impl Api {
    pub fn new(service: Arc<Service>, config: ApiConfig) -> Result<Self, ApiError> {
        let store = service.store();
        if store.named(WORKGROUP, PRIMARY)?.is_none() {
            store.put_named(WORKGROUP, PRIMARY, &default_workgroup().to_string())?;
        }
        Ok(Self { service, config })
    }

    fn catalog(&self) -> &Arc<dyn Catalog> {
        self.service.engine().catalog()
    }

    /// The lake's catalog, then the federated catalogs registered in the store.
    fn list_data_catalogs(&self) -> Result<Value, ApiError> {
        let mut summaries = vec![json!({ "CatalogName": DATA_CATALOG, "Type": "GLUE" })];
        for c in federated::list(self.service.store()).map_err(query_error)? {
            summaries.push(json!({ "CatalogName": c.name, "Type": catalog_type(&c.source) }));
        }
        Ok(json!({ "DataCatalogsSummary": summaries }))
    }

    fn get_data_catalog(&self, name: &str) -> Result<Value, ApiError> {
        if name.eq_ignore_ascii_case(DATA_CATALOG) {
            return Ok(json!({ "DataCatalog": {
                "Name": DATA_CATALOG, "Type": "GLUE",
                "Description": "The Quarry catalog", "Parameters": {}
            }}));
        }
        let c = federated::get(self.service.store(), name)
            .map_err(query_error)?
            .ok_or_else(|| ApiError::invalid(format!("data catalog '{name}' does not exist")))?;
        let parameters = match &c.source {
            federated::Source::Lambda { function } => json!({ "function": function }),
            // The URI as listings show it: never its password.
            federated::Source::Connector { connector, .. } => json!({
                "connector": connector,
                "uri": c.source.shown_uri().unwrap_or_default(),
            }),
        };
        Ok(json!({ "DataCatalog": {
            "Name": c.name, "Type": catalog_type(&c.source),
            "Description": c.description.unwrap_or_default(), "Parameters": parameters,
        }}))
    }

    /// Athena's `LAMBDA` catalogs (`function`, or `metadata-function` / `record-function` when
    /// both are one function); `FEDERATED` with `connector` and `uri` registers a connector
    /// linked into Quarry. Glue and Hive catalogs other than the lake's are not supported.
    fn create_data_catalog(&self, input: &Value) -> Result<Value, ApiError> {
        let name = required(input, "Name")?;
        let parameter = |key: &str| {
            input
                .get("Parameters")
                .and_then(|p| p.get(key))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let source = match required(input, "Type")? {
            "LAMBDA" => {
                let function = parameter("function")
                    .or_else(|| match (parameter("metadata-function"), parameter("record-function")) {
                        (Some(m), Some(r)) if m == r => Some(m),
                        (Some(_), Some(_)) => None,
                        (m, r) => m.or(r),
                    })
                    .ok_or_else(|| {
                        ApiError::invalid(
                            "a LAMBDA data catalog needs Parameters function=<function name or ARN> \
                             (separate metadata and record functions are not supported)",
                        )
                    })?;
                federated::Source::Lambda { function }
            }
            "FEDERATED" => federated::Source::Connector {
                connector: parameter("connector").ok_or_else(|| {
                    ApiError::invalid("a FEDERATED data catalog needs Parameters connector=postgres|dynamodb|redis")
                })?,
                uri: parameter("uri").unwrap_or_default(),
            },
            other => {
                return Err(ApiError::invalid(format!(
                    "data catalogs of type {other} are not supported: use LAMBDA (a connector function) or FEDERATED"
                )));
            }
        };
        let catalog = federated::DataCatalog {
            name: name.to_owned(),
            source,
            description: field(input, "Description").map(str::to_owned),
        };
        if federated::get(self.service.store(), name)
            .map_err(query_error)?
            .is_some()
        {
            return Err(ApiError::invalid(format!(
                "data catalog '{name}' already exists"
            )));
        }
        federated::add(self.service.store(), &catalog).map_err(query_error)?;
        Ok(json!({}))
    }

    fn workgroup(&self, name: &str) -> Result<Value, ApiError> {
        let body = self
            .service
            .store()
            .named(WORKGROUP, name)?
            .ok_or_else(|| ApiError::invalid(format!("WorkGroup {name} is not found.")))?;
        serde_json::from_str(&body)
            .map_err(|e| ApiError::internal(format!("workgroup {name} is damaged: {e}")))
    }

    /// Run one operation.
    pub async fn call(&self, operation: &str, input: Value) -> Result<Value, ApiError> {
        match operation {
            "StartQueryExecution" => self.start(input).await,
            "GetQueryExecution" => {
                let e = self.service.get(required(&input, "QueryExecutionId")?)?;
                Ok(json!({ "QueryExecution": execution_json(&e) }))
            }
            "BatchGetQueryExecution" => self.batch_get(&input),
            "ListQueryExecutions" => self.list_executions(&input),
            "StopQueryExecution" => {
                self.service.stop(required(&input, "QueryExecutionId")?)?;
                Ok(json!({}))
            }
            "GetQueryResults" => self.results(&input),
            "GetQueryRuntimeStatistics" => self.runtime_statistics(&input),
            "ListDataCatalogs" => self.list_data_catalogs(),
            "GetDataCatalog" => self.get_data_catalog(required(&input, "Name")?),
            "CreateDataCatalog" => self.create_data_catalog(&input),
            "DeleteDataCatalog" => {
                let name = required(&input, "Name")?;
                if !federated::remove(self.service.store(), name).map_err(query_error)? {
                    return Err(ApiError::invalid(format!(
                        "data catalog '{name}' does not exist"
                    )));
                }
                Ok(json!({}))
            }
            "ListDatabases" => self.list_databases(&input).await,
            "GetDatabase" => {
                check_catalog(&input, "CatalogName")?;
                let name = required(&input, "DatabaseName")?;
                let db =
                    self.catalog().get_database(name).await?.ok_or_else(|| {
                        ApiError::metadata(format!("Database {name} is not found."))
                    })?;
                Ok(json!({ "Database": {
                    "Name": db.name, "Description": db.description.unwrap_or_default(),
                    "Parameters": db.parameters,
                }}))
            }
            "ListTableMetadata" => self.list_tables(&input).await,
            "GetTableMetadata" => {
                check_catalog(&input, "CatalogName")?;
                let db = required(&input, "DatabaseName")?;
                let name = required(&input, "TableName")?;
                let t = self.catalog().get_table(db, name).await?.ok_or_else(|| {
                    ApiError::metadata(format!("Table {name} not found in database {db}."))
                })?;
                Ok(json!({ "TableMetadata": table_json(&t) }))
            }
            "CreateWorkGroup" => self.create_workgroup(&input),
            "GetWorkGroup" => {
                let name = required(&input, "WorkGroup")?;
                Ok(json!({ "WorkGroup": workgroup_json(name, &self.workgroup(name)?) }))
            }
            "ListWorkGroups" => {
                let all = self.service.store().list_named(WORKGROUP)?;
                let list: Vec<Value> = all
                    .iter()
                    .filter_map(|(n, b)| {
                        let w: Value = serde_json::from_str(b).ok()?;
                        Some(json!({
                            "Name": n, "State": w["State"], "Description": w["Description"],
                            "CreationTime": w["CreationTime"],
                            "EngineVersion": w["Configuration"]["EngineVersion"],
                        }))
                    })
                    .collect();
                Ok(json!({ "WorkGroups": list }))
            }
            "UpdateWorkGroup" => self.update_workgroup(&input),
            "DeleteWorkGroup" => {
                let name = required(&input, "WorkGroup")?;
                if name == PRIMARY {
                    return Err(ApiError::invalid("the primary workgroup cannot be deleted"));
                }
                if !self.service.store().delete_named(WORKGROUP, name)? {
                    return Err(ApiError::invalid(format!("WorkGroup {name} is not found.")));
                }
                Ok(json!({}))
            }
            "CreatePreparedStatement" => {
                let name = required(&input, "StatementName")?;
                let wg = required(&input, "WorkGroup")?;
                self.workgroup(wg)?;
                let body = json!({
                    "StatementName": name, "WorkGroupName": wg,
                    "QueryStatement": required(&input, "QueryStatement")?,
                    "Description": field(&input, "Description"),
                    "LastModifiedTime": epoch(Utc::now()),
                });
                if !self.service.store().create_named(
                    PREPARED,
                    &format!("{wg}/{name}"),
                    &body.to_string(),
                )? {
                    return Err(ApiError::invalid(format!(
                        "Prepared statement {name} already exists in workgroup {wg}"
                    )));
                }
                Ok(json!({}))
            }
            "UpdatePreparedStatement" => {
                let name = required(&input, "StatementName")?;
                let wg = required(&input, "WorkGroup")?;
                self.prepared(wg, name)?;
                let body = json!({
                    "StatementName": name, "WorkGroupName": wg,
                    "QueryStatement": required(&input, "QueryStatement")?,
                    "Description": field(&input, "Description"),
                    "LastModifiedTime": epoch(Utc::now()),
                });
                self.service.store().put_named(
                    PREPARED,
                    &format!("{wg}/{name}"),
                    &body.to_string(),
                )?;
                Ok(json!({}))
            }
            "GetPreparedStatement" => {
                let p = self.prepared(
                    required(&input, "WorkGroup")?,
                    required(&input, "StatementName")?,
                )?;
                Ok(json!({ "PreparedStatement": p }))
            }
            "ListPreparedStatements" => {
                let wg = required(&input, "WorkGroup")?;
                let prefix = format!("{wg}/");
                let list: Vec<Value> = self
                    .service
                    .store()
                    .list_named(PREPARED)?
                    .into_iter()
                    .filter(|(n, _)| n.starts_with(&prefix))
                    .filter_map(|(_, b)| serde_json::from_str::<Value>(&b).ok())
                    .map(|p| {
                        json!({
                            "StatementName": p["StatementName"],
                            "LastModifiedTime": p["LastModifiedTime"],
                        })
                    })
                    .collect();
                let (items, next) = page(&list, offset(&input)?, max_results(&input, 50, 50)?);
                Ok(json!({ "PreparedStatements": items, "NextToken": next }))
            }
            "DeletePreparedStatement" => {
                let wg = required(&input, "WorkGroup")?;
                let name = required(&input, "StatementName")?;
                if !self
                    .service
                    .store()
                    .delete_named(PREPARED, &format!("{wg}/{name}"))?
                {
                    return Err(ApiError::not_found(format!(
                        "Prepared statement {name} was not found in workgroup {wg}"
                    )));
                }
                Ok(json!({}))
            }
            other => Err(ApiError {
                kind: "UnknownOperationException",
                message: format!("operation {other} is not supported by this server"),
                code: None,
                status: 400,
            }),
        }
    }

    fn prepared(&self, wg: &str, name: &str) -> Result<Value, ApiError> {
        let body = self
            .service
            .store()
            .named(PREPARED, &format!("{wg}/{name}"))?
            .ok_or_else(|| {
                ApiError::not_found(format!(
                    "Prepared statement {name} was not found in workgroup {wg}"
                ))
            })?;
        serde_json::from_str(&body)
            .map_err(|e| ApiError::internal(format!("prepared statement {name} is damaged: {e}")))
    }

    fn output_allowed(&self, location: &str) -> Result<bool, ApiError> {
        if self.config.output_roots.is_empty() {
            return Ok(false);
        }
        quarry_lake::within_roots(location, &self.config.output_roots)
            .map(|()| true)
            .map_err(|e| ApiError::invalid(format!("OutputLocation {e}")))
    }

    async fn start(&self, input: Value) -> Result<Value, ApiError> {
        let sql = required(&input, "QueryString")?.to_string();
        if sql.len() > 262_144 {
            return Err(ApiError::invalid(
                "QueryString is longer than 262144 characters",
            ));
        }
        let wg_name = field(&input, "WorkGroup").unwrap_or(PRIMARY).to_string();
        let wg = self.workgroup(&wg_name)?;
        if wg["State"] == "DISABLED" {
            return Err(ApiError::invalid(format!(
                "WorkGroup {wg_name} is disabled"
            )));
        }
        let context = input
            .get("QueryExecutionContext")
            .cloned()
            .unwrap_or_default();
        check_catalog(&context, "Catalog")?;
        let params: Vec<String> = match input.get("ExecutionParameters") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    p.as_str().map(str::to_string).ok_or_else(|| {
                        ApiError::invalid(format!(
                            "ExecutionParameters[{i}] must be a string (SQL text such as '42' or \"'eu'\"), got {p}"
                        ))
                    })
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(ApiError::invalid("ExecutionParameters must be a list")),
        };
        let config = &wg["Configuration"];
        let enforce = config["EnforceWorkGroupConfiguration"]
            .as_bool()
            .unwrap_or(false);
        let requested = input["ResultConfiguration"]["OutputLocation"].as_str();
        let workgroup_location = config["ResultConfiguration"]["OutputLocation"].as_str();
        let location = if enforce {
            workgroup_location.or(requested)
        } else {
            requested.or(workgroup_location)
        };
        let output_location = match location {
            Some(l) if self.output_allowed(l)? => Some(l.to_string()),
            _ => None,
        };
        // A workgroup may lower the server's limit, never lift it.
        let server_cap = self.service.engine().config().max_bytes_scanned;
        let max_bytes_scanned = match (config["BytesScannedCutoffPerQuery"].as_u64(), server_cap) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };

        // PREPARE, EXECUTE and DEALLOCATE run in the engine, which keeps prepared statements in
        // the same store and binds parameter values as values. EXECUTE reports the statement
        // types of the statement it runs.
        let submitted = sql.clone();
        let typed = match quarry_query::statement::parse(&sql, "generic") {
            Ok(quarry_query::statement::Statement::Execute { name, .. }) => self
                .prepared(&wg_name, &name)?["QueryStatement"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            _ => sql.clone(),
        };
        let id = self
            .service
            .submit(Submission {
                sql,
                text: submitted,
                typed,
                parameters: params.clone(),
                database: field(&context, "Database").map(str::to_string),
                catalog: field(&context, "Catalog")
                    .unwrap_or("awsdatacatalog")
                    .to_string(),
                workgroup: wg_name,
                client_token: field(&input, "ClientRequestToken").map(str::to_string),
                execution_parameters: params,
                output_location,
                max_bytes_scanned,
            })
            .await?;
        Ok(json!({ "QueryExecutionId": id }))
    }

    fn batch_get(&self, input: &Value) -> Result<Value, ApiError> {
        let ids: Vec<&str> = input["QueryExecutionIds"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if ids.is_empty() || ids.len() > 50 {
            return Err(ApiError::invalid(
                "QueryExecutionIds must hold between 1 and 50 ids",
            ));
        }
        let mut found = Vec::new();
        let mut missing = Vec::new();
        for id in ids {
            match self.service.get(id) {
                Ok(e) => found.push(execution_json(&e)),
                Err(err) => missing.push(json!({
                    "QueryExecutionId": id, "ErrorCode": "INVALID_INPUT", "ErrorMessage": err.message,
                })),
            }
        }
        Ok(json!({ "QueryExecutions": found, "UnprocessedQueryExecutionIds": missing }))
    }

    fn list_executions(&self, input: &Value) -> Result<Value, ApiError> {
        let wg = field(input, "WorkGroup").unwrap_or(PRIMARY);
        self.workgroup(wg)?;
        let after = field(input, "NextToken");
        if let Some(t) = after
            && self.service.store().execution(t)?.is_none()
        {
            return Err(ApiError::invalid(format!(
                "NextToken '{t}' is not one this server gave"
            )));
        }
        let n = match input.get("MaxResults") {
            None | Some(Value::Null) => 50,
            Some(v) => match v.as_u64() {
                Some(0) => 50,
                Some(n) if n <= 50 => n as usize,
                _ => {
                    return Err(ApiError::invalid(format!(
                        "MaxResults must be between 0 and 50, got {v}"
                    )));
                }
            },
        };
        let mut ids = self.service.store().execution_ids(wg, after, n + 1)?;
        let more = ids.len() > n;
        ids.truncate(n);
        let next = if more { ids.last().cloned() } else { None };
        Ok(json!({ "QueryExecutionIds": ids, "NextToken": next }))
    }

    fn results(&self, input: &Value) -> Result<Value, ApiError> {
        let e = self.service.get(required(input, "QueryExecutionId")?)?;
        match e.state.as_str() {
            "SUCCEEDED" => {}
            "FAILED" | "CANCELLED" => {
                return Err(ApiError::invalid(format!(
                    "Query did not finish successfully. Final query state: {}{}",
                    e.state,
                    e.state_change_reason
                        .as_ref()
                        .map(|r| format!(" ({r})"))
                        .unwrap_or_default()
                )));
            }
            s => {
                return Err(ApiError::invalid(format!(
                    "Query has not yet finished. Current state: {s}"
                )));
            }
        }
        let max = max_results(input, 1000, 1000)?;
        let from = offset(input)?;
        let metadata = json!({ "ColumnInfo": e.columns });
        if let Some(n) = e.update_count {
            return Ok(json!({
                "UpdateCount": n,
                "ResultSet": { "Rows": [], "ResultSetMetadata": metadata },
            }));
        }
        if e.columns.is_empty() {
            return Ok(json!({
                "UpdateCount": 0,
                "ResultSet": { "Rows": [], "ResultSetMetadata": metadata },
            }));
        }
        // The first page (no NextToken) of a query's results starts with the column labels,
        // as Athena's; a token is always the offset of the next data row.
        let header = e.header && field(input, "NextToken").is_none();
        let want = max - usize::from(header);
        let page = self.service.result_rows(&e, from, want)?;
        let mut rows: Vec<Value> = Vec::with_capacity(page.len() + 1);
        if header {
            rows.push(json!({ "Data": e.columns.iter().map(|c| json!({"VarCharValue": c.name})).collect::<Vec<_>>() }));
        }
        let taken = page.len();
        for row in page {
            let data: Vec<Value> = row
                .into_iter()
                .map(|v| match v {
                    Some(v) => json!({ "VarCharValue": v }),
                    None => json!({}),
                })
                .collect();
            rows.push(json!({ "Data": data }));
        }
        let end = from.saturating_add(taken);
        let mut out = json!({
            "UpdateCount": 0,
            "ResultSet": { "Rows": rows, "ResultSetMetadata": metadata },
        });
        if (end as u64) < e.rows {
            out["NextToken"] = json!(end.to_string());
        }
        Ok(out)
    }

    fn runtime_statistics(&self, input: &Value) -> Result<Value, ApiError> {
        let e = self.service.get(required(input, "QueryExecutionId")?)?;
        let total = e
            .completed
            .map(|c| (c - e.submitted).num_milliseconds().max(0) as u64)
            .unwrap_or(0);
        Ok(json!({ "QueryRuntimeStatistics": {
            "Timeline": {
                "QueryQueueTimeInMillis": e.queue_ms,
                "QueryPlanningTimeInMillis": e.planning_ms,
                "EngineExecutionTimeInMillis": e.engine_ms,
                "ServiceProcessingTimeInMillis": total.saturating_sub(e.engine_ms + e.queue_ms),
                "TotalExecutionTimeInMillis": total,
            },
            "Rows": {
                "InputBytes": e.data_scanned,
                "OutputRows": e.update_count.unwrap_or(e.rows),
            },
        }}))
    }

    async fn list_databases(&self, input: &Value) -> Result<Value, ApiError> {
        check_catalog(input, "CatalogName")?;
        required(input, "CatalogName")?;
        let dbs: Vec<Value> = self
            .catalog()
            .list_databases()
            .await?
            .into_iter()
            .map(|d| {
                json!({
                    "Name": d.name, "Description": d.description.unwrap_or_default(),
                    "Parameters": d.parameters,
                })
            })
            .collect();
        let (items, next) = page(&dbs, offset(input)?, max_results(input, 50, 50)?);
        Ok(json!({ "DatabaseList": items, "NextToken": next }))
    }

    async fn list_tables(&self, input: &Value) -> Result<Value, ApiError> {
        check_catalog(input, "CatalogName")?;
        required(input, "CatalogName")?;
        let db = required(input, "DatabaseName")?;
        if self.catalog().get_database(db).await?.is_none() {
            return Err(ApiError::metadata(format!("Database {db} is not found.")));
        }
        let pattern = match field(input, "Expression") {
            None => None,
            Some(e) => Some(
                regex::Regex::new(&format!("^(?i:{e})$"))
                    .map_err(|err| ApiError::invalid(format!("Expression '{e}': {err}")))?,
            ),
        };
        let tables: Vec<Value> = self
            .catalog()
            .list_tables(db)
            .await?
            .iter()
            .filter(|t| pattern.as_ref().is_none_or(|p| p.is_match(&t.name)))
            .map(table_json)
            .collect();
        let (items, next) = page(&tables, offset(input)?, max_results(input, 50, 50)?);
        Ok(json!({ "TableMetadataList": items, "NextToken": next }))
    }

    fn create_workgroup(&self, input: &Value) -> Result<Value, ApiError> {
        let name = required(input, "Name")?;
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
            || name.len() > 128
        {
            return Err(ApiError::invalid(format!(
                "WorkGroup name '{name}' must be 1-128 letters, digits, '.', '_' or '-'"
            )));
        }
        let mut w = default_workgroup();
        w["Name"] = json!(name);
        w["Description"] = json!(field(input, "Description").unwrap_or(""));
        if let Some(c) = input.get("Configuration") {
            self.apply_configuration(&mut w, c, false)?;
        }
        if !self
            .service
            .store()
            .create_named(WORKGROUP, name, &w.to_string())?
        {
            return Err(ApiError::invalid(format!(
                "WorkGroup {name} already exists"
            )));
        }
        Ok(json!({}))
    }

    fn update_workgroup(&self, input: &Value) -> Result<Value, ApiError> {
        let name = required(input, "WorkGroup")?;
        let mut w = self.workgroup(name)?;
        if let Some(d) = field(input, "Description") {
            w["Description"] = json!(d);
        }
        if let Some(s) = field(input, "State") {
            if s != "ENABLED" && s != "DISABLED" {
                return Err(ApiError::invalid("State must be ENABLED or DISABLED"));
            }
            w["State"] = json!(s);
        }
        if let Some(c) = input.get("ConfigurationUpdates") {
            self.apply_configuration(&mut w, c, true)?;
        }
        self.service
            .store()
            .put_named(WORKGROUP, name, &w.to_string())?;
        Ok(json!({}))
    }

    /// `Configuration` (create) or `ConfigurationUpdates` (update) onto workgroup `w`.
    fn apply_configuration(&self, w: &mut Value, c: &Value, update: bool) -> Result<(), ApiError> {
        let rc_key = if update {
            "ResultConfigurationUpdates"
        } else {
            "ResultConfiguration"
        };
        if let Some(l) = c[rc_key]["OutputLocation"].as_str() {
            if !self.config.output_roots.is_empty() {
                self.output_allowed(l)?;
            }
            w["Configuration"]["ResultConfiguration"]["OutputLocation"] = json!(l);
        }
        if c[rc_key]["RemoveOutputLocation"].as_bool() == Some(true)
            && let Some(rc) = w["Configuration"]["ResultConfiguration"].as_object_mut()
        {
            rc.remove("OutputLocation");
        }
        if let Some(b) = c["EnforceWorkGroupConfiguration"].as_bool() {
            w["Configuration"]["EnforceWorkGroupConfiguration"] = json!(b);
        }
        if let Some(n) = c.get("BytesScannedCutoffPerQuery") {
            let n = n.as_u64().filter(|n| *n >= 10_000_000).ok_or_else(|| {
                ApiError::invalid("BytesScannedCutoffPerQuery must be at least 10000000")
            })?;
            w["Configuration"]["BytesScannedCutoffPerQuery"] = json!(n);
        }
        if c["RemoveBytesScannedCutoffPerQuery"].as_bool() == Some(true)
            && let Some(conf) = w["Configuration"].as_object_mut()
        {
            conf.remove("BytesScannedCutoffPerQuery");
        }
        Ok(())
    }
}
