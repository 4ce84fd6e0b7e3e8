//! The engine side: sends protocol requests to a connector over a [`Transport`] and reads the
//! answers, in the order Athena makes its calls (Ping once, then metadata, layout, every page of
//! splits, and records per split, spilled blocks included).

use std::sync::Arc;
use std::time::Duration;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use indexmap::IndexMap;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use tokio::sync::OnceCell;

use crate::connector::Handler;
use crate::ipc::{self, Framing};
use crate::wire::*;
use crate::{Error, Result};

/// How requests reach a connector.
#[async_trait]
pub trait Transport: Send + Sync {
    /// What errors call the connector: a function name, or `postgres (in-process)`.
    fn describe(&self) -> String;

    /// Sends one JSON request and returns the JSON answer (or the function's error payload,
    /// which [`parse_response`] turns into [`Error::Connector`]).
    async fn invoke(&self, payload: Vec<u8>) -> Result<Vec<u8>>;

    /// The largest answer the transport carries inline (`maxInlineBlockSize`): a Lambda
    /// response is capped at 6 MB; a connector in the process has no such limit.
    fn max_inline_bytes(&self) -> i64 {
        MAX_INLINE_BLOCK_SIZE
    }
}

/// A connector linked into the process: the same JSON, no Lambda.
pub struct InProcess {
    name: String,
    handler: Handler,
}

impl InProcess {
    pub fn new(name: impl Into<String>, handler: Handler) -> InProcess {
        InProcess {
            name: name.into(),
            handler,
        }
    }
}

#[async_trait]
impl Transport for InProcess {
    fn describe(&self) -> String {
        format!("{} (in-process)", self.name)
    }

    fn max_inline_bytes(&self) -> i64 {
        i64::MAX
    }

    async fn invoke(&self, payload: Vec<u8>) -> Result<Vec<u8>> {
        match self.handler.handle(&payload).await {
            Ok(bytes) => Ok(bytes),
            // What a Lambda would have answered: the function error payload.
            Err(e) => to_wire(&FunctionError {
                error_message: error_chain(&e),
                error_type: Some("QuarryConnectorError".into()),
                stack_trace: Vec::new(),
            }),
        }
    }
}

/// An error and its sources, one line (`outer: inner: innermost`), leaving out a source whose
/// text the line already holds (many errors repeat their source in their own message).
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        let next = s.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = s.source();
    }
    text
}

/// Finds the object store of a spill bucket.
pub type SpillStores = Arc<dyn Fn(&str) -> Result<Arc<dyn ObjectStore>> + Send + Sync>;

/// A table as the connector described it.
#[derive(Clone, Debug)]
pub struct RemoteTable {
    pub name: TableName,
    /// The connector's schema, metadata included, partition columns included.
    pub schema: SchemaRef,
    pub partition_columns: Vec<String>,
}

/// The rows of one split and the Arrow bytes received for them (what a federated scan bills).
#[derive(Debug)]
pub struct Records {
    pub batches: Vec<RecordBatch>,
    pub bytes: u64,
}

/// One connector, as the engine talks to it.
pub struct Client {
    transport: Arc<dyn Transport>,
    catalog: String,
    identity: Identity,
    timeout: Duration,
    spill_stores: Option<SpillStores>,
    version: OnceCell<u32>,
    capabilities: OnceCell<IndexMap<String, Vec<OptimizationSubType>>>,
}

impl Client {
    /// A client for `catalog` (the name requests carry) over `transport`; each call is given
    /// `timeout` to answer.
    pub fn new(
        transport: Arc<dyn Transport>,
        catalog: impl Into<String>,
        timeout: Duration,
    ) -> Client {
        Client {
            transport,
            catalog: catalog.into(),
            identity: Identity::new(None, None),
            timeout,
            spill_stores: None,
            version: OnceCell::new(),
            capabilities: OnceCell::new(),
        }
    }

    /// Where spilled blocks are read from.
    pub fn with_spill_stores(mut self, stores: SpillStores) -> Client {
        self.spill_stores = Some(stores);
        self
    }

    /// The catalog name requests carry.
    pub fn catalog(&self) -> &str {
        &self.catalog
    }

    /// Who the connector is, for errors.
    pub fn describe(&self) -> String {
        format!(
            "catalog {} (connector {})",
            self.catalog,
            self.transport.describe()
        )
    }

    async fn call(&self, request: Request) -> Result<Response> {
        let kind = request.kind();
        let payload = to_wire(&request)?;
        let answer = tokio::time::timeout(self.timeout, self.transport.invoke(payload))
            .await
            .map_err(|_| Error::Transport {
                function: self.describe(),
                message: format!(
                    "{kind} did not answer within {} s",
                    self.timeout.as_secs_f64()
                ),
            })??;
        parse_response(&answer).map_err(|e| match e {
            Error::Connector {
                message,
                error_type,
            } => Error::Connector {
                message: format!(
                    "{} answered {kind} with an error: {message}",
                    self.describe()
                ),
                error_type,
            },
            Error::Protocol { message, .. } => Error::Protocol {
                what: format!("answer to {kind} from {}", self.describe()),
                message,
            },
            other => other,
        })
    }

    fn unexpected(&self, asked: &str, got: &Response) -> Error {
        let got = serde_json::to_value(got)
            .ok()
            .and_then(|v| v.get("@type").and_then(|t| t.as_str().map(str::to_owned)));
        Error::Protocol {
            what: format!("answer to {asked} from {}", self.describe()),
            message: format!("got {}", got.unwrap_or_else(|| "another message".into())),
        }
    }

    /// Pings once and returns the serde version requests are written at.
    pub async fn version(&self) -> Result<u32> {
        self.version
            .get_or_try_init(|| async {
                let request = Request::PingRequest(PingRequest {
                    identity: self.identity.clone(),
                    catalog_name: self.catalog.clone(),
                    query_id: uuid::Uuid::new_v4().to_string(),
                });
                match self.call(request).await? {
                    Response::PingResponse(p) if p.ser_de_version >= MIN_SERDE_VERSION => Ok(p.ser_de_version.min(SERDE_VERSION)),
                    Response::PingResponse(p) => Err(Error::Protocol {
                        what: format!("answer to PingRequest from {}", self.describe()),
                        message: format!(
                            "the connector speaks serde version {}; Quarry needs {MIN_SERDE_VERSION} or later (SDK 2020.17 or newer)",
                            p.ser_de_version
                        ),
                    }),
                    other => Err(self.unexpected("PingRequest", &other)),
                }
            })
            .await
            .copied()
    }

    /// The connector's declared pushdowns (none before serde 4).
    pub async fn capabilities(&self) -> Result<&IndexMap<String, Vec<OptimizationSubType>>> {
        let version = self.version().await?;
        self.capabilities
            .get_or_try_init(|| async {
                if version < 4 {
                    return Ok(IndexMap::new());
                }
                let request =
                    Request::GetDataSourceCapabilitiesRequest(GetDataSourceCapabilitiesRequest {
                        identity: self.identity.clone(),
                        query_id: uuid::Uuid::new_v4().to_string(),
                        catalog_name: self.catalog.clone(),
                    });
                match self.call(request).await? {
                    Response::GetDataSourceCapabilitiesResponse(r) => Ok(r.capabilities),
                    other => Err(self.unexpected("GetDataSourceCapabilitiesRequest", &other)),
                }
            })
            .await
    }

    /// Does the connector take a pushed LIMIT?
    pub async fn takes_limit(&self) -> Result<bool> {
        Ok(self
            .capabilities()
            .await?
            .contains_key("supports_limit_pushdown"))
    }

    /// The framing of Arrow payloads in requests.
    pub async fn framing(&self) -> Result<Framing> {
        Ok(Framing::of(self.version().await?))
    }

    pub async fn list_schemas(&self) -> Result<Vec<String>> {
        self.version().await?;
        let request = Request::ListSchemasRequest(ListSchemasRequest {
            identity: self.identity.clone(),
            query_id: uuid::Uuid::new_v4().to_string(),
            catalog_name: self.catalog.clone(),
        });
        match self.call(request).await? {
            Response::ListSchemasResponse(r) => Ok(r.schemas),
            other => Err(self.unexpected("ListSchemasRequest", &other)),
        }
    }

    /// Every table of a schema, all pages.
    pub async fn list_tables(&self, schema: &str) -> Result<Vec<TableName>> {
        self.version().await?;
        let mut tables = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..100_000 {
            let request = Request::ListTablesRequest(ListTablesRequest {
                identity: self.identity.clone(),
                query_id: uuid::Uuid::new_v4().to_string(),
                catalog_name: self.catalog.clone(),
                schema_name: Some(schema.to_owned()),
                next_token: token.take(),
                page_size: 1000,
            });
            match self.call(request).await? {
                Response::ListTablesResponse(r) => {
                    tables.extend(r.tables);
                    match r.next_token {
                        Some(next) => token = Some(next),
                        None => return Ok(tables),
                    }
                }
                other => return Err(self.unexpected("ListTablesRequest", &other)),
            }
        }
        Err(Error::Protocol {
            what: format!("ListTables from {}", self.describe()),
            message: "more than 100,000 pages".into(),
        })
    }

    pub async fn get_table(&self, table: &TableName) -> Result<RemoteTable> {
        let version = self.version().await?;
        let request = Request::GetTableRequest(GetTableRequest {
            identity: self.identity.clone(),
            query_id: uuid::Uuid::new_v4().to_string(),
            catalog_name: self.catalog.clone(),
            table_name: table.clone(),
            query_passthrough_arguments: None,
        })
        .at_version(version);
        match self.call(request).await? {
            Response::GetTableResponse(r) => Ok(RemoteTable {
                name: r.table_name,
                schema: ipc::decode_schema(&r.schema)?,
                partition_columns: r.partition_columns,
            }),
            other => Err(self.unexpected("GetTableRequest", &other)),
        }
    }

    /// Plans a scan: the table layout for `constraints`, then every page of splits.
    pub async fn splits(
        &self,
        query_id: &str,
        table: &RemoteTable,
        constraints: &Constraints,
    ) -> Result<Vec<Split>> {
        let version = self.version().await?;
        let framing = Framing::of(version);
        let request = Request::GetTableLayoutRequest(GetTableLayoutRequest {
            identity: self.identity.clone(),
            query_id: query_id.to_owned(),
            catalog_name: self.catalog.clone(),
            table_name: table.name.clone(),
            constraints: constraints.clone(),
            schema: ipc::encode_schema(&table.schema, framing)?,
            partition_columns: table.partition_columns.clone(),
        })
        .at_version(version);
        let partitions = match self.call(request).await? {
            Response::GetTableLayoutResponse(r) => r.partitions,
            other => return Err(self.unexpected("GetTableLayoutRequest", &other)),
        };
        // Re-frame the partitions block for this version (a connector may answer in another).
        let partitions = Block::encode(&partitions.decode()?, framing)?;
        let mut splits = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..1_000_000 {
            let request = Request::GetSplitsRequest(GetSplitsRequest {
                identity: self.identity.clone(),
                query_id: query_id.to_owned(),
                catalog_name: self.catalog.clone(),
                table_name: table.name.clone(),
                partitions: partitions.clone(),
                partition_columns: table.partition_columns.clone(),
                constraints: constraints.clone(),
                continuation_token: token.take(),
            })
            .at_version(version);
            match self.call(request).await? {
                Response::GetSplitsResponse(r) => {
                    splits.extend(r.splits);
                    match r.continuation_token {
                        Some(next) => token = Some(next),
                        None => return Ok(splits),
                    }
                }
                other => return Err(self.unexpected("GetSplitsRequest", &other)),
            }
        }
        Err(Error::Protocol {
            what: format!("GetSplits from {}", self.describe()),
            message: "more than 1,000,000 pages".into(),
        })
    }

    /// Reads one split for the columns of `schema` (the connector's types and metadata).
    pub async fn read(
        &self,
        query_id: &str,
        table: &TableName,
        schema: &SchemaRef,
        split: &Split,
        constraints: &Constraints,
    ) -> Result<Records> {
        let version = self.version().await?;
        let request = Request::ReadRecordsRequest(ReadRecordsRequest {
            identity: self.identity.clone(),
            query_id: query_id.to_owned(),
            catalog_name: self.catalog.clone(),
            table_name: table.clone(),
            schema: ipc::encode_schema(schema, Framing::of(version))?,
            split: split.clone(),
            constraints: constraints.clone(),
            max_block_size: MAX_BLOCK_SIZE,
            max_inline_block_size: self.transport.max_inline_bytes(),
        })
        .at_version(version);
        match self.call(request).await? {
            Response::ReadRecordsResponse(r) => {
                let bytes = base64_len(&r.records.records);
                let batch = r.records.decode()?;
                Ok(Records {
                    batches: vec![batch],
                    bytes,
                })
            }
            Response::RemoteReadRecordsResponse(r) => {
                let schema = ipc::decode_schema(&r.schema)?;
                let mut batches = Vec::with_capacity(r.remote_blocks.len());
                let mut bytes = 0u64;
                let SpillLocation::S3SpillLocation {
                    bucket: split_bucket,
                    key: split_key,
                    ..
                } = &split.spill_location;
                for block in &r.remote_blocks {
                    let SpillLocation::S3SpillLocation { bucket, key, .. } = block;
                    let url = format!("s3://{bucket}/{key}");
                    // Only the split's own spill location is read with Quarry's credentials.
                    if bucket != split_bucket || !key.starts_with(split_key.as_str()) {
                        return Err(Error::Protocol {
                            what: format!("answer to ReadRecordsRequest from {}", self.describe()),
                            message: format!(
                                "a spilled block at {url} is outside the split's spill location s3://{split_bucket}/{split_key}"
                            ),
                        });
                    }
                    let stores = self.spill_stores.as_ref().ok_or_else(|| Error::Protocol {
                        what: format!("answer to ReadRecordsRequest from {}", self.describe()),
                        message: format!(
                            "the connector spilled to {url}, and no store is configured to read it"
                        ),
                    })?;
                    let store = stores(bucket)?;
                    let data = store
                        .get(&Path::from(key.as_str()))
                        .await
                        .map_err(|source| Error::Spill {
                            location: url.clone(),
                            source,
                        })?
                        .bytes()
                        .await
                        .map_err(|source| Error::Spill {
                            location: url.clone(),
                            source,
                        })?;
                    bytes += data.len() as u64;
                    batches.push(ipc::open_spill(
                        &schema,
                        &data,
                        r.encryption_key.as_ref(),
                        &url,
                    )?);
                }
                Ok(Records { batches, bytes })
            }
            other => Err(self.unexpected("ReadRecordsRequest", &other)),
        }
    }
}

/// The decoded length of a base64 text, without decoding it.
fn base64_len(text: &str) -> u64 {
    let t = text.trim().as_bytes();
    let pad = t.iter().rev().take_while(|b| **b == b'=').count();
    ((t.len() / 4 * 3).saturating_sub(pad)) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A transport that answers every request with `answer` after `delay`.
    struct Fake {
        delay: Duration,
        answer: Vec<u8>,
    }

    #[async_trait]
    impl Transport for Fake {
        fn describe(&self) -> String {
            "lambda:fake-connector".into()
        }

        async fn invoke(&self, _payload: Vec<u8>) -> Result<Vec<u8>> {
            tokio::time::sleep(self.delay).await;
            Ok(self.answer.clone())
        }
    }

    fn client(delay: Duration, answer: &[u8]) -> Client {
        let fake = Fake {
            delay,
            answer: answer.to_vec(),
        };
        Client::new(Arc::new(fake), "slowcat", Duration::from_millis(200))
    }

    #[tokio::test]
    async fn a_slow_connector_times_out_naming_catalog_and_function() {
        let err = client(Duration::from_secs(5), b"{}")
            .version()
            .await
            .expect_err("timeout")
            .to_string();
        assert!(
            err.contains("slowcat")
                && err.contains("lambda:fake-connector")
                && err.contains("did not answer within"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn garbage_and_wrong_answers_are_named() {
        let err = client(Duration::ZERO, b"<html>502 Bad Gateway</html>")
            .version()
            .await
            .expect_err("garbage")
            .to_string();
        assert!(
            err.contains("PingRequest")
                && err.contains("slowcat")
                && err.contains("lambda:fake-connector"),
            "{err}"
        );
        let wrong = br#"{"@type":"ListSchemasResponse","catalogName":"c","schemas":[]}"#;
        let err = client(Duration::ZERO, wrong)
            .version()
            .await
            .expect_err("wrong type")
            .to_string();
        assert!(err.contains("got ListSchemasResponse"), "{err}");
        let old = br#"{"@type":"PingResponse","catalogName":"c","queryId":"q","sourceType":"t","capabilities":23}"#;
        let err = client(Duration::ZERO, old)
            .version()
            .await
            .expect_err("serde 1")
            .to_string();
        assert!(err.contains("serde version 1"), "{err}");
        let failed =
            br#"{"errorMessage":"boom: table x","errorType":"java.lang.RuntimeException"}"#;
        let err = client(Duration::ZERO, failed)
            .version()
            .await
            .expect_err("error")
            .to_string();
        assert!(
            err.contains("boom: table x") && err.contains("slowcat"),
            "{err}"
        );
    }
}
