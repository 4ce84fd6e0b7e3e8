//! The connector side: a source implements [`Connector`], and [`Handler`] answers protocol
//! requests with it, as the SDK's `CompositeHandler` does in a connector Lambda.
//!
//! The handler owns everything protocol-shaped (versions, blocks, spill locations, encryption,
//! spilling, paging), so a connector only lists, describes, plans splits and reads rows.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use indexmap::IndexMap;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

use crate::constraints::{Domain, domains};
use crate::ipc::{self, Framing};
use crate::wire::*;
use crate::{Error, Result};

/// A table as a connector describes it.
#[derive(Clone, Debug)]
pub struct TableLayout {
    /// Every column the engine may read, partition columns included, with the metadata the
    /// connector wants back in later requests.
    pub schema: SchemaRef,
    /// Pseudo-columns that only exist in the partitions block (e.g. PostgreSQL child tables).
    pub partition_columns: Vec<String>,
}

/// What the engine pushed down for one table.
#[derive(Clone, Debug, Default)]
pub struct Pushdown {
    /// Per-column value sets; a connector may apply any of them and must not drop a row that
    /// satisfies all of them.
    pub domains: Vec<(String, Domain)>,
    /// At most this many rows are wanted (after the domains are applied).
    pub limit: Option<u64>,
}

impl Pushdown {
    fn of(constraints: &Constraints) -> Result<Pushdown> {
        Ok(Pushdown {
            domains: domains(&constraints.summary)?,
            limit: constraints.row_limit(),
        })
    }
}

/// One page of splits: each split is a set of properties the connector reads back.
#[derive(Clone, Debug, Default)]
pub struct SplitPage {
    pub splits: Vec<IndexMap<String, String>>,
    pub continuation: Option<String>,
}

/// A data source behind the protocol.
#[async_trait]
pub trait Connector: Send + Sync + 'static {
    /// The source's kind, as a PingResponse reports it (`postgres`, `dynamodb`, `redis`).
    fn source_type(&self) -> &'static str;

    /// The pushdowns the connector honours, as GetDataSourceCapabilities declares them.
    fn capabilities(&self) -> IndexMap<String, Vec<OptimizationSubType>> {
        IndexMap::new()
    }

    /// The schemas (databases) of the source.
    async fn list_schemas(&self) -> Result<Vec<String>>;

    /// Tables of a schema (of every schema when `None`), one page: at most `page_size` when set,
    /// starting after `token`; returns the next page's token.
    async fn list_tables(
        &self,
        schema: Option<&str>,
        token: Option<&str>,
        page_size: Option<usize>,
    ) -> Result<(Vec<TableName>, Option<String>)>;

    /// A table's columns.
    async fn get_table(&self, table: &TableName) -> Result<TableLayout>;

    /// The partitions to read, as rows of the partition columns. The default is one partition.
    async fn partitions(
        &self,
        _table: &TableName,
        _layout: &TableLayout,
        _pushdown: &Pushdown,
    ) -> Result<RecordBatch> {
        one_partition()
    }

    /// The splits of the partitions, one page.
    async fn splits(
        &self,
        table: &TableName,
        partitions: &RecordBatch,
        pushdown: &Pushdown,
        token: Option<&str>,
    ) -> Result<SplitPage>;

    /// The rows of one split, for the columns of `schema`.
    async fn read(
        &self,
        table: &TableName,
        schema: &SchemaRef,
        split: &IndexMap<String, String>,
        pushdown: &Pushdown,
    ) -> Result<Vec<RecordBatch>>;
}

/// The partitions block of a table without partitions: one row, `partitionId = 1`, as the SDK's
/// default.
pub fn one_partition() -> Result<RecordBatch> {
    let schema = Arc::new(Schema::new(vec![Field::new(
        "partitionId",
        DataType::Int32,
        true,
    )]));
    RecordBatch::try_new(
        schema,
        vec![Arc::new(arrow::array::Int32Array::from(vec![1]))],
    )
    .map_err(|source| Error::Arrow {
        what: "partitions".into(),
        source,
    })
}

/// Where a connector spills results too large to return inline (Lambda answers are capped at
/// 6 MB): an S3 bucket and prefix, and whether to encrypt (the SDK's default, AES-256-GCM).
#[derive(Clone)]
pub struct Spill {
    pub store: Arc<dyn ObjectStore>,
    pub bucket: String,
    pub prefix: String,
    pub encrypt: bool,
}

impl std::fmt::Debug for Spill {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Spill(s3://{}/{}, encrypt: {})",
            self.bucket, self.prefix, self.encrypt
        )
    }
}

/// Answers protocol requests with a connector.
pub struct Handler {
    connector: Arc<dyn Connector>,
    spill: Option<Spill>,
}

impl Handler {
    pub fn new(connector: Arc<dyn Connector>, spill: Option<Spill>) -> Handler {
        Handler { connector, spill }
    }

    /// Answers one JSON request with one JSON response, as a connector Lambda does.
    pub async fn handle(&self, payload: &[u8]) -> Result<Vec<u8>> {
        let request = parse_request(payload)?;
        let response = self.answer(request).await?;
        to_wire(&response)
    }

    /// Answers one request.
    pub async fn answer(&self, request: Request) -> Result<Response> {
        // Java's CompositeHandler answers with the newest mapper the request parses with, and
        // version 3 and later share a shape with 2, so answers always use the current framing.
        let framing = Framing::Continuation;
        let c = &self.connector;
        Ok(match request {
            Request::PingRequest(r) => Response::PingResponse(PingResponse {
                catalog_name: r.catalog_name,
                query_id: r.query_id,
                source_type: c.source_type().to_owned(),
                capabilities: CAPABILITIES,
                ser_de_version: CONNECTOR_SERDE_VERSION,
            }),
            Request::GetDataSourceCapabilitiesRequest(r) => {
                Response::GetDataSourceCapabilitiesResponse(GetDataSourceCapabilitiesResponse {
                    catalog_name: r.catalog_name,
                    capabilities: c.capabilities(),
                })
            }
            Request::ListSchemasRequest(r) => Response::ListSchemasResponse(ListSchemasResponse {
                catalog_name: r.catalog_name,
                schemas: c.list_schemas().await?,
            }),
            Request::ListTablesRequest(r) => {
                let page_size = usize::try_from(r.page_size).ok().filter(|n| *n > 0);
                let (tables, next_token) = c
                    .list_tables(r.schema_name.as_deref(), r.next_token.as_deref(), page_size)
                    .await?;
                Response::ListTablesResponse(ListTablesResponse {
                    tables,
                    catalog_name: r.catalog_name,
                    next_token,
                })
            }
            Request::GetTableRequest(r) => {
                let layout = c.get_table(&r.table_name).await?;
                Response::GetTableResponse(GetTableResponse {
                    catalog_name: r.catalog_name,
                    schema: ipc::encode_schema(&layout.schema, framing)?,
                    table_name: r.table_name,
                    partition_columns: layout.partition_columns,
                })
            }
            Request::GetTableLayoutRequest(r) => {
                let layout = TableLayout {
                    schema: ipc::decode_schema(&r.schema)?,
                    partition_columns: r.partition_columns,
                };
                let pushdown = Pushdown::of(&r.constraints)?;
                let partitions = c.partitions(&r.table_name, &layout, &pushdown).await?;
                Response::GetTableLayoutResponse(GetTableLayoutResponse {
                    catalog_name: r.catalog_name,
                    table_name: r.table_name,
                    partitions: Block::encode(&partitions, framing)?,
                })
            }
            Request::GetSplitsRequest(r) => {
                let partitions = r.partitions.decode()?;
                let pushdown = Pushdown::of(&r.constraints)?;
                let page = c
                    .splits(
                        &r.table_name,
                        &partitions,
                        &pushdown,
                        r.continuation_token.as_deref(),
                    )
                    .await?;
                let splits = page
                    .splits
                    .into_iter()
                    .map(|properties| self.split(&r.query_id, properties))
                    .collect();
                Response::GetSplitsResponse(GetSplitsResponse {
                    catalog_name: r.catalog_name,
                    splits,
                    continuation_token: page.continuation,
                })
            }
            Request::ReadRecordsRequest(r) => self.read(r, framing).await?,
        })
    }

    /// A split with its spill location and key, as `MetadataHandler.makeSpillLocation` makes them.
    fn split(&self, query_id: &str, properties: IndexMap<String, String>) -> Split {
        let (bucket, prefix, encrypt) = match &self.spill {
            Some(s) => (s.bucket.clone(), s.prefix.clone(), s.encrypt),
            None => (String::new(), "athena-federation-spill".to_owned(), false),
        };
        Split {
            spill_location: SpillLocation::S3SpillLocation {
                bucket,
                key: format!(
                    "{}/{}/{}",
                    prefix.trim_end_matches('/'),
                    query_id,
                    uuid::Uuid::new_v4()
                ),
                directory: true,
            },
            encryption_key: encrypt.then(ipc::new_key),
            properties,
        }
    }

    async fn read(&self, r: ReadRecordsRequest, framing: Framing) -> Result<Response> {
        let schema = ipc::decode_schema(&r.schema)?;
        let pushdown = Pushdown::of(&r.constraints)?;
        let batches = self
            .connector
            .read(&r.table_name, &schema, &r.split.properties, &pushdown)
            .await?;
        let batch =
            arrow::compute::concat_batches(&schema, &batches).map_err(|source| Error::Arrow {
                what: format!("rows of {}", r.table_name),
                source,
            })?;
        let size = batch.get_array_memory_size();
        let inline_limit = usize::try_from(r.max_inline_block_size).unwrap_or(usize::MAX);
        if size <= inline_limit || batch.num_rows() <= 1 {
            return Ok(Response::ReadRecordsResponse(ReadRecordsResponse {
                catalog_name: r.catalog_name,
                records: Block::encode(&batch, framing)?,
            }));
        }
        let Some(spill) = &self.spill else {
            return Err(Error::Source {
                source_name: format!("{} split of {}", self.connector.source_type(), r.table_name),
                message: format!(
                    "{size} bytes of rows exceed the inline limit of {inline_limit} bytes and no spill bucket is configured; \
                     set a spill bucket for the connector (QUARRY_SPILL_BUCKET)"
                ),
            });
        };
        let SpillLocation::S3SpillLocation { key, .. } = &r.split.spill_location;
        let block_limit = usize::try_from(r.max_block_size)
            .unwrap_or(usize::MAX)
            .clamp(1, inline_limit.max(1) * 4);
        let rows_per_block = (batch.num_rows() * block_limit / size.max(1)).max(1);
        let mut remote_blocks = Vec::new();
        let mut offset = 0;
        while offset < batch.num_rows() {
            let len = rows_per_block.min(batch.num_rows() - offset);
            let part = batch.slice(offset, len);
            let sealed = ipc::seal_spill(&part, r.split.encryption_key.as_ref())?;
            let object = format!("{}.{}", key, remote_blocks.len());
            let location = Path::from(object.as_str());
            spill
                .store
                .put(&location, sealed.into())
                .await
                .map_err(|source| Error::Spill {
                    location: format!("s3://{}/{}", spill.bucket, object),
                    source,
                })?;
            remote_blocks.push(SpillLocation::S3SpillLocation {
                bucket: spill.bucket.clone(),
                key: object,
                directory: false,
            });
            offset += len;
        }
        Ok(Response::RemoteReadRecordsResponse(
            RemoteReadRecordsResponse {
                catalog_name: r.catalog_name,
                schema: ipc::encode_schema(&schema, framing)?,
                remote_blocks,
                encryption_key: r.split.encryption_key,
            },
        ))
    }
}

/// The capabilities of a connector that applies every `summary` value set exactly and honours a
/// pushed LIMIT, as the SDK's JDBC connectors declare them.
pub fn filter_and_limit_capabilities() -> IndexMap<String, Vec<OptimizationSubType>> {
    let sub = |sub_type: &str, properties: &[&str]| OptimizationSubType {
        sub_type: sub_type.to_owned(),
        properties: properties.iter().map(|p| (*p).to_owned()).collect(),
    };
    IndexMap::from([
        (
            "supports_filter_pushdown".to_owned(),
            vec![
                sub("sorted_range_set", &[]),
                sub("equatable_range_set", &[]),
                sub("all_or_none_value_set", &[]),
                sub("nullable_comparison", &[]),
            ],
        ),
        (
            "supports_limit_pushdown".to_owned(),
            vec![sub("integer_constant", &[])],
        ),
    ])
}
