//! Federated catalogs: tables served by connectors over the Athena Query Federation protocol.
//!
//! A statement may name `"lambda:<function>".schema.table` (a connector Lambda, Athena's syntax)
//! or `<catalog>.schema.table` for a data catalog registered in the catalog store (`quarry
//! catalog add`): a Lambda function, or a connector linked into Quarry (PostgreSQL). Each is
//! one [`Client`]; a scan asks it for splits with the filters it can express as constraints and
//! reads the splits concurrently (at most [`CONCURRENT_SPLITS`] at a time).
//!
//! Every filter on a federated table is applied by the scan itself after the rows arrive, so
//! DataFusion is told they are exact whatever the connector does with the constraints; a LIMIT
//! is pushed to a connector only when it declares limit pushdown and every filter became a
//! constraint. The bytes billed are the Arrow bytes received (inline and spilled).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion::catalog::{CatalogProvider, SchemaProvider, Session, TableProvider};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DFSchema, DataFusionError, Result as DFResult, ScalarValue};
use datafusion::datasource::TableType;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{BinaryExpr, Expr, Operator, TableProviderFilterPushDown};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
};
use futures::StreamExt;
use quarry_catalog::SqliteCatalog;
use quarry_federation::client::{Client, InProcess, RemoteTable, Transport};
use quarry_federation::connector::Handler;
use quarry_federation::constraints::{Domain, Endpoint, Range, Value, Values};
use quarry_federation::wire::{Constraints, Split, TableName};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use crate::error::Error;
use crate::meter::Meter;
use crate::provider::{ScanInfo, ScanLog};
use crate::stores::MeteredRegistry;

/// The named-object kind data catalogs are stored under.
pub const KIND: &str = "data_catalog";
/// Splits of one scan read at the same time.
pub const CONCURRENT_SPLITS: usize = 8;
/// How long one protocol call may take by default (a Lambda may run for 15 minutes); set
/// `EngineConfig::connector_timeout` or `QUARRY_CONNECTOR_TIMEOUT` (seconds) for less.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(900);

/// The call timeout the environment asks for (`QUARRY_CONNECTOR_TIMEOUT`, seconds), else
/// [`CALL_TIMEOUT`].
pub fn timeout_from_env() -> Duration {
    std::env::var("QUARRY_CONNECTOR_TIMEOUT")
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .map_or(CALL_TIMEOUT, Duration::from_secs_f64)
}
/// The catalog name prefix of a connector Lambda, as Athena writes it.
pub const LAMBDA_PREFIX: &str = "lambda:";

/// Where a data catalog's tables come from.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "Type")]
pub enum Source {
    /// A connector Lambda function (a name, ARN or alias), Athena's `LAMBDA` catalog type.
    #[serde(rename = "LAMBDA")]
    Lambda {
        #[serde(rename = "Function")]
        function: String,
    },
    /// A connector linked into Quarry.
    #[serde(rename = "FEDERATED")]
    Connector {
        #[serde(rename = "Connector")]
        connector: String,
        /// `postgresql://..` for PostgreSQL; for DynamoDB empty, or `dynamodb://DATABASE`
        /// naming the catalog database whose tables declare DynamoDB tables' columns.
        #[serde(rename = "Uri", default)]
        uri: String,
    },
}

/// Debug output is the listing's text: a connection URI's password never shows in logs.
impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Source {
    /// The source as listings show it: a connection URI's password is never shown.
    pub fn describe(&self) -> String {
        match self {
            Source::Lambda { function } => format!("lambda {function}"),
            Source::Connector { connector, .. } => match self.shown_uri() {
                Some(uri) => format!("{connector} {uri}"),
                None => connector.clone(),
            },
        }
    }

    /// A connector's URI without its password (`None` for none, or for a Lambda).
    pub fn shown_uri(&self) -> Option<String> {
        match self {
            Source::Connector { uri, .. } if !uri.trim().is_empty() => {
                Some(quarry_federation::postgres::redact(uri))
            }
            _ => None,
        }
    }
}

/// A registered data catalog.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataCatalog {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(flatten)]
    pub source: Source,
    #[serde(rename = "Description", default)]
    pub description: Option<String>,
}

/// The connectors Quarry links in.
pub const CONNECTORS: &[&str] = &["postgres", "dynamodb", "redis"];

/// The catalog database a DynamoDB catalog's URI names (`dynamodb://DATABASE`), if any.
fn dynamodb_schema_database(uri: &str) -> Result<Option<String>, Error> {
    if uri.trim().is_empty() {
        return Ok(None);
    }
    match uri.strip_prefix("dynamodb://") {
        Some(db) if !db.is_empty() && !db.contains('/') => Ok(Some(db.to_owned())),
        Some("") => Ok(None),
        _ => Err(Error::user(format!(
            "'{uri}' is not a DynamoDB catalog URI: leave it out, or give dynamodb://DATABASE to take \
             table columns from that catalog database's tables of the same names"
        ))),
    }
}

fn check_name(name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if !ok {
        return Err(Error::user(format!(
            "'{name}' is not a data catalog name: use lower-case letters, digits, '_' and '-'"
        )));
    }
    if name == crate::provider::DEFAULT_CATALOG || name.starts_with(LAMBDA_PREFIX) {
        return Err(Error::user(format!(
            "'{name}' is reserved; choose another catalog name"
        )));
    }
    Ok(())
}

/// Registers (or replaces) a data catalog, after checking the connector can be built from it.
pub fn add(store: &SqliteCatalog, catalog: &DataCatalog) -> Result<(), Error> {
    check_name(&catalog.name)?;
    if let Source::Connector { connector, uri } = &catalog.source {
        if !CONNECTORS.contains(&connector.as_str()) {
            return Err(Error::user(format!(
                "unknown connector '{connector}'; Quarry links in: {}",
                CONNECTORS.join(", ")
            )));
        }
        match connector.as_str() {
            "postgres" => {
                quarry_federation::postgres::Postgres::new(uri)
                    .map_err(|e| Error::user(e.to_string()))?;
            }
            "redis" if !uri.trim().is_empty() => {
                return Err(Error::user(
                    "a redis catalog takes no --uri: its tables are declared in the catalog with \
                     the table property redis-endpoint (host:port)",
                ));
            }
            "redis" => {}
            _ => {
                dynamodb_schema_database(uri)?;
            }
        }
    }
    let body = serde_json::to_string(catalog).map_err(|e| Error::internal(e.to_string()))?;
    store.put_named(KIND, &catalog.name, &body)?;
    Ok(())
}

/// Every registered data catalog, by name.
pub fn list(store: &SqliteCatalog) -> Result<Vec<DataCatalog>, Error> {
    let mut out = Vec::new();
    for (name, body) in store.list_named(KIND)? {
        let catalog: DataCatalog = serde_json::from_str(&body)
            .map_err(|e| Error::internal(format!("data catalog {name} is damaged: {e}")))?;
        out.push(catalog);
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// One registered data catalog.
pub fn get(store: &SqliteCatalog, name: &str) -> Result<Option<DataCatalog>, Error> {
    match store.named(KIND, name)? {
        None => Ok(None),
        Some(body) => serde_json::from_str(&body)
            .map(Some)
            .map_err(|e| Error::internal(format!("data catalog {name} is damaged: {e}"))),
    }
}

/// Removes a data catalog; false when there was none.
pub fn remove(store: &SqliteCatalog, name: &str) -> Result<bool, Error> {
    Ok(store.delete_named(KIND, name)?)
}

/// The connectors an engine talks to, one client each, kept across statements (so each is
/// pinged once).
pub struct Federation {
    clients: tokio::sync::Mutex<HashMap<String, (Source, Arc<Client>)>>,
    /// Where Lambda `Invoke` goes instead of the standard AWS endpoint (a local emulator).
    lambda_endpoint: Option<String>,
    /// How long one protocol call may take.
    timeout: Duration,
}

impl fmt::Debug for Federation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Federation")
    }
}

impl Federation {
    /// Connectors invoked through `lambda_endpoint` when set, else the standard AWS
    /// environment (`AWS_ENDPOINT_URL_LAMBDA`, `AWS_ENDPOINT_URL`, region, credentials).
    pub fn new(lambda_endpoint: Option<String>, timeout: Duration) -> Federation {
        Federation {
            clients: tokio::sync::Mutex::default(),
            lambda_endpoint,
            timeout,
        }
    }

    /// The client of catalog `name` (`lambda:<function>` or a registered name), or `None` when
    /// `name` is neither.
    pub async fn client(
        &self,
        name: &str,
        catalog: &Arc<dyn quarry_catalog::Catalog>,
        store: Option<&SqliteCatalog>,
        stores: &Arc<crate::stores::ObjectStores>,
    ) -> Result<Option<Arc<Client>>, Error> {
        let source = if let Some(function) = name.strip_prefix(LAMBDA_PREFIX) {
            Source::Lambda {
                function: function.to_owned(),
            }
        } else {
            match store.map(|s| get(s, name)).transpose()?.flatten() {
                Some(c) => c.source,
                None => return Ok(None),
            }
        };
        let mut clients = self.clients.lock().await;
        if let Some((known, client)) = clients.get(name)
            && known == &source
        {
            return Ok(Some(Arc::clone(client)));
        }
        let transport: Arc<dyn Transport> = match &source {
            Source::Lambda { function } => Arc::new(
                quarry_federation::lambda::LambdaTransport::from_env(
                    function,
                    self.lambda_endpoint.as_deref(),
                )
                .await,
            ),
            Source::Connector { connector, uri } => match connector.as_str() {
                "postgres" => {
                    let pg = quarry_federation::postgres::Postgres::new(uri)
                        .map_err(|e| Error::user(e.to_string()))?;
                    Arc::new(InProcess::new(
                        connector.clone(),
                        Handler::new(Arc::new(pg), None),
                    ))
                }
                "redis" => {
                    let redis = quarry_federation::redis::Redis::new(Arc::clone(catalog));
                    Arc::new(InProcess::new(
                        connector.clone(),
                        Handler::new(Arc::new(redis), None),
                    ))
                }
                "dynamodb" => {
                    let mut ddb = quarry_federation::dynamodb::DynamoDb::from_env().await;
                    if let Some(database) = dynamodb_schema_database(uri)? {
                        ddb = ddb.with_schemas(quarry_federation::dynamodb::SchemaSource {
                            catalog: Arc::clone(catalog),
                            database,
                        });
                    }
                    Arc::new(InProcess::new(
                        connector.clone(),
                        Handler::new(Arc::new(ddb), None),
                    ))
                }
                other => {
                    return Err(Error::user(format!(
                        "unknown connector '{other}' in data catalog {name}"
                    )));
                }
            },
        };
        let spill_stores = Arc::clone(stores);
        let client = Client::new(transport, name, self.timeout).with_spill_stores(Arc::new(
            move |bucket: &str| {
                spill_stores.get(&format!("s3://{bucket}")).map_err(|e| {
                    quarry_federation::Error::Protocol {
                        what: format!("spill bucket {bucket}"),
                        message: e.to_string(),
                    }
                })
            },
        ));
        let client = Arc::new(client);
        clients.insert(name.to_owned(), (source, Arc::clone(&client)));
        Ok(Some(client))
    }
}

/// A protocol error as DataFusion carries it.
fn external(e: quarry_federation::Error) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

/// What every federated scan of one statement shares.
#[derive(Clone)]
pub struct ScanContext {
    pub registry: Arc<MeteredRegistry>,
    pub scans: ScanLog,
    pub query_id: String,
}

impl fmt::Debug for ScanContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ScanContext({})", self.query_id)
    }
}

/// A federated catalog as DataFusion sees it during one statement.
#[derive(Debug)]
pub struct FederatedCatalog {
    client: Arc<ClientRef>,
    schemas: Vec<String>,
    context: ScanContext,
}

/// A client with a Debug impl for DataFusion's providers.
pub struct ClientRef(pub Arc<Client>);

impl fmt::Debug for ClientRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.describe())
    }
}

impl FederatedCatalog {
    /// The catalog with its schemas listed (one ListSchemas call).
    pub async fn load(client: Arc<Client>, context: ScanContext) -> DFResult<FederatedCatalog> {
        let schemas = client.list_schemas().await.map_err(external)?;
        Ok(FederatedCatalog {
            client: Arc::new(ClientRef(client)),
            schemas,
            context,
        })
    }
}

impl CatalogProvider for FederatedCatalog {
    fn schema_names(&self) -> Vec<String> {
        self.schemas.clone()
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        let found = self.schemas.iter().find(|s| s.eq_ignore_ascii_case(name))?;
        Some(Arc::new(FederatedSchema {
            client: Arc::clone(&self.client),
            schema: found.clone(),
            context: self.context.clone(),
        }))
    }
}

#[derive(Debug)]
struct FederatedSchema {
    client: Arc<ClientRef>,
    schema: String,
    context: ScanContext,
}

#[async_trait]
impl SchemaProvider for FederatedSchema {
    /// Not listed up front (`SHOW TABLES IN catalog.schema` asks the connector).
    fn table_names(&self) -> Vec<String> {
        Vec::new()
    }

    async fn table(&self, name: &str) -> DFResult<Option<Arc<dyn TableProvider>>> {
        let remote = self
            .client
            .0
            .get_table(&TableName::new(&self.schema, name))
            .await
            .map_err(external)?;
        Ok(Some(Arc::new(FederatedTable::new(
            Arc::clone(&self.client),
            remote,
            self.context.clone(),
        ))))
    }

    fn table_exist(&self, _name: &str) -> bool {
        false
    }
}

/// One federated table in one statement.
#[derive(Debug)]
pub struct FederatedTable {
    client: Arc<ClientRef>,
    remote: RemoteTable,
    /// The columns users see: engine types, partition pseudo-columns hidden.
    schema: SchemaRef,
    context: ScanContext,
}

impl FederatedTable {
    fn new(client: Arc<ClientRef>, remote: RemoteTable, context: ScanContext) -> FederatedTable {
        let engine = quarry_federation::types::to_engine_schema(&remote.schema);
        let visible: Vec<Field> = engine
            .fields()
            .iter()
            .filter(|f| {
                !remote
                    .partition_columns
                    .iter()
                    .any(|p| p.eq_ignore_ascii_case(f.name()))
            })
            .map(|f| f.as_ref().clone())
            .collect();
        FederatedTable {
            client,
            remote,
            schema: Arc::new(Schema::new(visible)),
            context,
        }
    }

    /// The connector's field of a visible column.
    fn remote_field(&self, name: &str) -> Option<&Field> {
        self.remote
            .schema
            .fields()
            .iter()
            .find(|f| f.name().eq_ignore_ascii_case(name))
            .map(|f| f.as_ref())
    }
}

/// The columns an expression reads.
fn columns_of(expr: &Expr) -> Vec<String> {
    expr.column_refs()
        .into_iter()
        .map(|c| c.name.clone())
        .collect()
}

#[async_trait]
impl TableProvider for FederatedTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DFResult<Vec<TableProviderFilterPushDown>> {
        // Every deterministic filter over this table's columns is applied by the scan itself.
        Ok(filters
            .iter()
            .map(|f| {
                let own = columns_of(f)
                    .iter()
                    .all(|c| self.schema.field_with_name(c).is_ok());
                if own && !f.is_volatile() {
                    TableProviderFilterPushDown::Exact
                } else {
                    TableProviderFilterPushDown::Unsupported
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        let client = &self.client.0;
        // The columns to ask for: the projection, then those only the filters read.
        let mut names: Vec<String> = match projection {
            Some(p) => p
                .iter()
                .map(|i| self.schema.field(*i).name().clone())
                .collect(),
            None => self
                .schema
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect(),
        };
        let output_len = names.len();
        for filter in filters {
            for c in columns_of(filter) {
                if !names.contains(&c) {
                    names.push(c);
                }
            }
        }
        let mut read_fields = Vec::with_capacity(names.len());
        for name in &names {
            let field = self.remote_field(name).ok_or_else(|| {
                DataFusionError::Plan(format!("{} has no column {name}", self.remote.name))
            })?;
            read_fields.push(field.clone());
        }
        let read_schema = Arc::new(Schema::new_with_metadata(
            read_fields,
            self.remote.schema.metadata().clone(),
        ));
        let engine_read_schema = quarry_federation::types::to_engine_schema(&read_schema);

        // Filters as constraints: each conjunct that is exactly a value set on one column.
        let framing = client.framing().await.map_err(external)?;
        // A connector that compares text in another collation (Athena's
        // `non_default_collate` hint) gets no text constraints: it could drop rows the engine
        // keeps, or return more than a pushed LIMIT allows for.
        let byte_order_text = !client
            .capabilities()
            .await
            .map_err(external)?
            .get("data_source_hints")
            .is_some_and(|hints| hints.iter().any(|h| h.sub_type == "non_default_collate"));
        let Pushdown {
            domains,
            mut all_exact,
            mut pushed,
        } = self.domains(filters, byte_order_text);
        let mut constraints = Constraints::default();
        for (column, domain) in &domains {
            // A value the wire cannot carry for this type: that constraint is not sent (the
            // scan still applies the filter).
            match domain.to_value_set(framing) {
                Ok(set) => {
                    constraints.summary.insert(column.clone(), set);
                }
                Err(_) => {
                    all_exact = false;
                    pushed.retain(|(c, _)| c != column);
                }
            }
        }
        let pushed: Vec<String> = pushed.into_iter().map(|(_, text)| text).collect();
        let pushed_limit = match limit {
            Some(n) if all_exact && client.takes_limit().await.map_err(external)? => Some(n),
            _ => None,
        };
        constraints.limit = pushed_limit.map(|n| i64::try_from(n).unwrap_or(i64::MAX));
        let splits = client
            .splits(&self.context.query_id, &self.remote, &constraints)
            .await
            .map_err(external)?;

        let residual = match conjunction(filters.iter().cloned()) {
            Some(expr) => {
                let df_schema = DFSchema::try_from(engine_read_schema.as_ref().clone())?;
                Some(state.create_physical_expr(expr, &df_schema)?)
            }
            None => None,
        };
        let output_schema = Arc::new(Schema::new(
            engine_read_schema.fields()[..output_len].to_vec(),
        ));

        let scan_id = {
            let mut log = self.context.scans.lock().unwrap_or_else(|p| p.into_inner());
            let mut description = format!(
                "federated scan through {}, {} split(s)",
                client.describe(),
                splits.len()
            );
            if !pushed.is_empty() {
                description.push_str(&format!(", constraints pushed: {}", pushed.join(" AND ")));
            }
            if let Some(n) = pushed_limit {
                description.push_str(&format!(", LIMIT {n} pushed"));
            }
            log.push(ScanInfo {
                table: format!("{}.{}", client.catalog(), self.remote.name),
                partitions_selected: splits.len() as u64,
                federated: Some(description),
                ..ScanInfo::default()
            });
            log.len() - 1
        };
        let meter = self.context.registry.scan_meter(scan_id);
        let partitions = splits.len().max(1);
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(&output_schema)),
            Partitioning::UnknownPartitioning(partitions),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        Ok(Arc::new(FederatedScanExec {
            client: Arc::clone(&self.client),
            table: self.remote.name.clone(),
            read_schema,
            engine_read_schema,
            output_schema,
            constraints,
            splits,
            residual,
            limit,
            meter,
            query_id: self.context.query_id.clone(),
            permits: Arc::new(Semaphore::new(CONCURRENT_SPLITS)),
            properties,
            pushed,
        }))
    }
}

impl FederatedTable {
    /// The filters that are value sets on one column, merged per column and keyed by the
    /// connector's column name; whether every filter became one exactly; and the pushed filters
    /// as text, for EXPLAIN. With `text` false, constraints on string columns are not made (a
    /// connector whose collation is not byte order would compare them otherwise).
    fn domains(&self, filters: &[Expr], text: bool) -> Pushdown {
        let mut out: Vec<(String, Domain)> = Vec::new();
        let mut all_exact = true;
        let mut pushed = Vec::new();
        for filter in filters {
            let Some((column, domain)) = self.domain_of(filter) else {
                all_exact = false;
                continue;
            };
            if !text && domain.data_type == DataType::Utf8 {
                all_exact = false;
                continue;
            }
            match out.iter_mut().find(|(c, _)| c == &column) {
                None => out.push((column.clone(), domain)),
                Some((_, existing)) => match intersect(existing, &domain) {
                    Some(merged) => *existing = merged,
                    None => {
                        all_exact = false;
                        continue;
                    }
                },
            }
            pushed.push((column, filter.to_string()));
        }
        Pushdown {
            domains: out,
            all_exact,
            pushed,
        }
    }

    /// One filter as a value set: always a sorted range set (what every connector reads; the
    /// SDK's JDBC connectors read nothing else), NULL allowed or not.
    fn domain_of(&self, filter: &Expr) -> Option<(String, Domain)> {
        let column_of = |e: &Expr| match e {
            Expr::Column(c) => self.remote_field(&c.name),
            _ => None,
        };
        let (field, ranges, null_allowed) = match filter {
            Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
                let (field, literal, op) = match (left.as_ref(), right.as_ref()) {
                    (c @ Expr::Column(_), Expr::Literal(v, _)) => (column_of(c)?, v, *op),
                    (Expr::Literal(v, _), c @ Expr::Column(_)) => (column_of(c)?, v, op.swap()?),
                    _ => return None,
                };
                let value = value_of(literal, field.data_type())?;
                let at = |inclusive| {
                    Some(Endpoint {
                        value: value.clone(),
                        inclusive,
                    })
                };
                let ranges = match op {
                    Operator::Eq => vec![Range::single(value.clone())],
                    Operator::NotEq => vec![
                        Range {
                            low: None,
                            high: at(false),
                        },
                        Range {
                            low: at(false),
                            high: None,
                        },
                    ],
                    Operator::Lt => vec![Range {
                        low: None,
                        high: at(false),
                    }],
                    Operator::LtEq => vec![Range {
                        low: None,
                        high: at(true),
                    }],
                    Operator::Gt => vec![Range {
                        low: at(false),
                        high: None,
                    }],
                    Operator::GtEq => vec![Range {
                        low: at(true),
                        high: None,
                    }],
                    _ => return None,
                };
                (field, ranges, false)
            }
            Expr::Between(b) if !b.negated => {
                let field = column_of(&b.expr)?;
                let (Expr::Literal(low, _), Expr::Literal(high, _)) =
                    (b.low.as_ref(), b.high.as_ref())
                else {
                    return None;
                };
                let range = Range {
                    low: Some(Endpoint {
                        value: value_of(low, field.data_type())?,
                        inclusive: true,
                    }),
                    high: Some(Endpoint {
                        value: value_of(high, field.data_type())?,
                        inclusive: true,
                    }),
                };
                (field, vec![range], false)
            }
            Expr::InList(list) => {
                let field = column_of(&list.expr)?;
                let mut values = Vec::with_capacity(list.list.len());
                for item in &list.list {
                    let Expr::Literal(v, _) = item else {
                        return None;
                    };
                    values.push(value_of(v, field.data_type())?);
                }
                values.sort_by(|a, b| a.compare(b).unwrap_or(std::cmp::Ordering::Equal));
                values.dedup_by(|a, b| a.compare(b).is_some_and(|o| o.is_eq()));
                let ranges = if list.negated {
                    // The gaps between the values.
                    let mut ranges = Vec::with_capacity(values.len() + 1);
                    let mut low: Option<Endpoint> = None;
                    for v in values {
                        ranges.push(Range {
                            low: low.take(),
                            high: Some(Endpoint {
                                value: v.clone(),
                                inclusive: false,
                            }),
                        });
                        low = Some(Endpoint {
                            value: v,
                            inclusive: false,
                        });
                    }
                    ranges.push(Range { low, high: None });
                    ranges
                } else {
                    values.into_iter().map(Range::single).collect()
                };
                (field, ranges, false)
            }
            Expr::IsNull(inner) => (column_of(inner)?, Vec::new(), true),
            Expr::IsNotNull(inner) => (
                column_of(inner)?,
                vec![Range {
                    low: None,
                    high: None,
                }],
                false,
            ),
            _ => return None,
        };
        let ranges = ranges.into_iter().filter(|r| !is_empty(r)).collect();
        Some((
            field.name().clone(),
            domain(field, Values::Ranges(ranges), null_allowed),
        ))
    }
}

/// What a scan's filters became: per-column domains (by the connector's column name), whether
/// every filter became one exactly, and each pushed filter's text (with its column) for EXPLAIN.
struct Pushdown {
    domains: Vec<(String, Domain)>,
    all_exact: bool,
    pushed: Vec<(String, String)>,
}

fn domain(field: &Field, values: Values, null_allowed: bool) -> Domain {
    Domain {
        data_type: field.data_type().clone(),
        values,
        null_allowed,
    }
}

/// A range that holds no value (`BETWEEN 10 AND 1`, `> 5 AND < 3`): the SDK's `Range` refuses
/// these, so they are dropped (no ranges is no value).
fn is_empty(range: &Range) -> bool {
    match (&range.low, &range.high) {
        (Some(low), Some(high)) => match low.value.compare(&high.value) {
            Some(std::cmp::Ordering::Greater) => true,
            Some(std::cmp::Ordering::Equal) => !(low.inclusive && high.inclusive),
            _ => false,
        },
        _ => false,
    }
}

/// Two domains of one column as one: the pairwise intersections of their ranges.
fn intersect(a: &Domain, b: &Domain) -> Option<Domain> {
    let (Values::Ranges(ra), Values::Ranges(rb)) = (&a.values, &b.values) else {
        return None;
    };
    let tighter =
        |p: &Option<Endpoint>, q: &Option<Endpoint>, low: bool| -> Option<Option<Endpoint>> {
            Some(match (p, q) {
                (None, e) | (e, None) => e.clone(),
                (Some(p), Some(q)) => {
                    let ord = p.value.compare(&q.value)?;
                    let pick_p = if ord.is_eq() {
                        !p.inclusive
                    } else if low {
                        ord.is_gt()
                    } else {
                        ord.is_lt()
                    };
                    Some(if pick_p { p.clone() } else { q.clone() })
                }
            })
        };
    let mut ranges = Vec::new();
    for x in ra {
        for y in rb {
            let range = Range {
                low: tighter(&x.low, &y.low, true)?,
                high: tighter(&x.high, &y.high, false)?,
            };
            if !is_empty(&range) {
                ranges.push(range);
            }
        }
    }
    Some(Domain {
        data_type: a.data_type.clone(),
        values: Values::Ranges(ranges),
        null_allowed: a.null_allowed && b.null_allowed,
    })
}

/// A literal as a constraint value for a column of the connector's type `to`, when it is one
/// exactly (never rounded: a rounded bound could drop rows).
fn value_of(literal: &ScalarValue, to: &DataType) -> Option<Value> {
    use ScalarValue as S;
    let int = |v: i64| match to {
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => Some(Value::Int(v)),
        DataType::Float32 | DataType::Float64 => Some(Value::Float(v as f64)),
        DataType::Decimal128(..) => Some(Value::Decimal(i128::from(v), 0)),
        _ => None,
    };
    let micros = |v: i64, unit: TimeUnit| -> Option<i64> {
        match unit {
            TimeUnit::Second => v.checked_mul(1_000_000),
            TimeUnit::Millisecond => v.checked_mul(1000),
            TimeUnit::Microsecond => Some(v),
            TimeUnit::Nanosecond => (v % 1000 == 0).then_some(v / 1000),
        }
    };
    let timestamp = |v: i64, unit: TimeUnit| match to {
        DataType::Date64 | DataType::Timestamp(..) => micros(v, unit).map(Value::Timestamp),
        _ => None,
    };
    match literal {
        S::Int8(Some(v)) => int(i64::from(*v)),
        S::Int16(Some(v)) => int(i64::from(*v)),
        S::Int32(Some(v)) => int(i64::from(*v)),
        S::Int64(Some(v)) => int(*v),
        S::UInt8(Some(v)) => int(i64::from(*v)),
        S::UInt16(Some(v)) => int(i64::from(*v)),
        S::UInt32(Some(v)) => int(i64::from(*v)),
        S::UInt64(Some(v)) => int(i64::try_from(*v).ok()?),
        S::Float64(Some(v))
            if matches!(to, DataType::Float32 | DataType::Float64) && v.is_finite() =>
        {
            Some(Value::Float(*v))
        }
        S::Float32(Some(v))
            if matches!(to, DataType::Float32 | DataType::Float64) && v.is_finite() =>
        {
            Some(Value::Float(f64::from(*v)))
        }
        S::Decimal128(Some(v), _, s) if matches!(to, DataType::Decimal128(..)) => {
            Some(Value::Decimal(*v, *s))
        }
        S::Utf8(Some(s)) | S::LargeUtf8(Some(s)) | S::Utf8View(Some(s))
            if matches!(to, DataType::Utf8) =>
        {
            Some(Value::Text(s.clone()))
        }
        S::Boolean(Some(b)) if matches!(to, DataType::Boolean) => Some(Value::Bool(*b)),
        S::Date32(Some(d)) if matches!(to, DataType::Date32) => Some(Value::Date(*d)),
        S::TimestampSecond(Some(v), _) => timestamp(*v, TimeUnit::Second),
        S::TimestampMillisecond(Some(v), _) => timestamp(*v, TimeUnit::Millisecond),
        S::TimestampMicrosecond(Some(v), _) => timestamp(*v, TimeUnit::Microsecond),
        S::TimestampNanosecond(Some(v), _) => timestamp(*v, TimeUnit::Nanosecond),
        S::Binary(Some(b)) | S::LargeBinary(Some(b)) if matches!(to, DataType::Binary) => {
            Some(Value::Binary(b.clone()))
        }
        _ => None,
    }
}

/// Reads the splits of one federated scan, one DataFusion partition per split.
struct FederatedScanExec {
    client: Arc<ClientRef>,
    table: TableName,
    /// The columns asked of the connector, in its types and with its metadata.
    read_schema: SchemaRef,
    engine_read_schema: SchemaRef,
    /// The first columns of the read schema: what the scan returns.
    output_schema: SchemaRef,
    constraints: Constraints,
    splits: Vec<Split>,
    /// Every filter DataFusion handed the scan, applied to what arrives.
    residual: Option<Arc<dyn PhysicalExpr>>,
    limit: Option<usize>,
    meter: Arc<Meter>,
    query_id: String,
    permits: Arc<Semaphore>,
    properties: Arc<PlanProperties>,
    pushed: Vec<String>,
}

impl fmt::Debug for FederatedScanExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "FederatedScanExec({}.{})",
            self.client.0.catalog(),
            self.table
        )
    }
}

impl DisplayAs for FederatedScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "FederatedScanExec: {}.{}, splits={}, constraints=[{}]",
            self.client.0.catalog(),
            self.table,
            self.splits.len(),
            self.pushed.join(", ")
        )?;
        if let Some(limit) = self.constraints.row_limit() {
            write!(f, ", limit={limit}")?;
        }
        Ok(())
    }
}

impl ExecutionPlan for FederatedScanExec {
    fn name(&self) -> &str {
        "FederatedScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DFResult<TreeNodeRecursion>,
    ) -> DFResult<TreeNodeRecursion> {
        // The residual filter is the scan's own business, not a node expression to rewrite.
        Ok(TreeNodeRecursion::Continue)
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        if children.is_empty() {
            Ok(self)
        } else {
            Err(DataFusionError::Internal(
                "FederatedScanExec has no children".into(),
            ))
        }
    }

    fn execute(
        &self,
        partition: usize,
        _context: Arc<TaskContext>,
    ) -> DFResult<SendableRecordBatchStream> {
        let schema = Arc::clone(&self.output_schema);
        let Some(split) = self.splits.get(partition).cloned() else {
            // A table with no splits: one empty partition.
            return Ok(Box::pin(RecordBatchStreamAdapter::new(
                schema,
                futures::stream::empty(),
            )));
        };
        let client = Arc::clone(&self.client);
        let table = self.table.clone();
        let read_schema = Arc::clone(&self.read_schema);
        let engine_schema = Arc::clone(&self.engine_read_schema);
        let constraints = self.constraints.clone();
        let residual = self.residual.clone();
        let limit = self.limit;
        let meter = Arc::clone(&self.meter);
        let query_id = self.query_id.clone();
        let permits = Arc::clone(&self.permits);
        let output = Arc::clone(&schema);
        let batches = async move {
            let _permit = permits
                .acquire_owned()
                .await
                .map_err(|e| DataFusionError::Internal(e.to_string()))?;
            let records = client
                .0
                .read(&query_id, &table, &read_schema, &split, &constraints)
                .await
                .map_err(external)?;
            meter
                .charge(records.bytes)
                .map_err(|e| DataFusionError::External(Box::new(e)))?;
            let mut out = Vec::with_capacity(records.batches.len());
            let mut rows = 0usize;
            for batch in records.batches {
                let batch = quarry_federation::types::to_engine_batch(&batch, &engine_schema)
                    .map_err(external)?;
                let batch = match &residual {
                    Some(predicate) => {
                        let mask = predicate.evaluate(&batch)?.into_array(batch.num_rows())?;
                        let mask = datafusion::arrow::array::AsArray::as_boolean_opt(mask.as_ref())
                            .ok_or_else(|| {
                                DataFusionError::Internal("a filter that is not boolean".into())
                            })?
                            .clone();
                        datafusion::arrow::compute::filter_record_batch(&batch, &mask)?
                    }
                    None => batch,
                };
                let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
                let columns = batch.columns()[..output.fields().len()].to_vec();
                let batch =
                    RecordBatch::try_new_with_options(Arc::clone(&output), columns, &options)?;
                let batch = match limit {
                    Some(n) if rows + batch.num_rows() > n => batch.slice(0, n - rows),
                    _ => batch,
                };
                rows += batch.num_rows();
                out.push(batch);
                if limit.is_some_and(|n| rows >= n) {
                    break;
                }
            }
            Ok::<_, DataFusionError>(out)
        };
        let stream = futures::stream::once(batches).flat_map(|result| match result {
            Ok(batches) => futures::stream::iter(batches.into_iter().map(Ok).collect::<Vec<_>>()),
            Err(e) => futures::stream::iter(vec![Err(e)]),
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, stream)))
    }
}
