//! The messages of the Athena Query Federation protocol, as JSON.
//!
//! The SDK's Java deserializers (serde versions 2 to 6) are hand-written streaming parsers that
//! expect every field **in a fixed order**, with the `@type` discriminator first; unknown fields
//! are only tolerated at the end of an object. So each struct here declares its fields in the Java
//! order (serde serializes in declaration order), fields that a version does not know are left out
//! when writing at that version ([`Request::at_version`]), and `null`s that Java writes are written
//! too. Reading accepts any order.
//!
//! Arrow schemas and record batches travel as base64 IPC messages ([`crate::ipc`]); the messages
//! here keep them as text, and [`Block`] converts.

use indexmap::IndexMap;
use serde::{Deserialize, Deserializer, Serialize};

use crate::ipc::{self, Framing};
use crate::{Error, Result};

/// The newest serde version Quarry reads and writes (the SDK's own at the time of writing).
pub const SERDE_VERSION: u32 = 6;
/// The oldest serde version Quarry speaks: version 1 was a reflection mapper with other shapes.
pub const MIN_SERDE_VERSION: u32 = 2;
/// The version Quarry's own connectors answer a Ping with: everything up to and including
/// `GetDataSourceCapabilities`, limit and ORDER BY in constraints; no query passthrough or
/// Substrait plans, which would then have to be honoured.
pub const CONNECTOR_SERDE_VERSION: u32 = 4;
/// The `capabilities` of a PingResponse: 24 is "versioned serde", as the SDK answers.
pub const CAPABILITIES: i32 = 24;
/// The largest inline block the SDK's own client asks for (Lambda answers are capped at 6 MB).
pub const MAX_INLINE_BLOCK_SIZE: i64 = 5_242_880;
/// The largest block the SDK's own client asks for.
pub const MAX_BLOCK_SIZE: i64 = 16_000_000;

/// Who is asking. Athena fills it from the caller; Quarry sends its own account when it knows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    #[serde(default = "unknown")]
    pub id: String,
    #[serde(default = "unknown")]
    pub principal: String,
    #[serde(default)]
    pub account: Option<String>,
    #[serde(default)]
    pub arn: Option<String>,
    #[serde(default)]
    pub tags: IndexMap<String, String>,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub config_options: IndexMap<String, String>,
}

fn unknown() -> String {
    "UNKNOWN".to_owned()
}

impl Identity {
    /// The identity Quarry sends: the account and ARN when known, `UNKNOWN` ids as Athena sends.
    pub fn new(account: Option<String>, arn: Option<String>) -> Identity {
        Identity {
            id: unknown(),
            principal: unknown(),
            account,
            arn,
            tags: IndexMap::new(),
            groups: Vec::new(),
            config_options: IndexMap::new(),
        }
    }
}

/// A table inside a connector's catalog.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TableName {
    pub schema_name: String,
    pub table_name: String,
}

impl TableName {
    pub fn new(schema: impl Into<String>, table: impl Into<String>) -> TableName {
        TableName {
            schema_name: schema.into(),
            table_name: table.into(),
        }
    }
}

impl std::fmt::Display for TableName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.schema_name, self.table_name)
    }
}

/// Rows of Arrow data: one IPC schema message and one IPC record batch message, base64;
/// `records` is empty when the block has no rows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Block {
    /// The allocator id of the Java side; any text does.
    #[serde(rename = "aId")]
    pub a_id: String,
    pub schema: String,
    pub records: String,
}

impl Block {
    /// A block holding `batch`, framed for the serde version of the message it travels in.
    pub fn encode(batch: &arrow::record_batch::RecordBatch, framing: Framing) -> Result<Block> {
        Ok(Block {
            a_id: uuid::Uuid::new_v4().to_string(),
            schema: ipc::encode_schema(batch.schema_ref(), framing)?,
            records: if batch.num_rows() == 0 {
                String::new()
            } else {
                ipc::encode_batch(batch, framing)?
            },
        })
    }

    /// The block's rows (either framing).
    pub fn decode(&self) -> Result<arrow::record_batch::RecordBatch> {
        ipc::decode_block(&self.schema, &self.records)
    }
}

/// The `@type` of an Arrow type inside constraints and expressions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "@type")]
pub enum ArrowType {
    Null,
    Struct,
    List,
    Map,
    FixedSizeList {
        #[serde(rename = "listSize")]
        list_size: i32,
    },
    Union {
        mode: String,
        #[serde(rename = "typeIds")]
        type_ids: Vec<i32>,
    },
    Int {
        #[serde(rename = "bitWidth")]
        bit_width: i32,
        #[serde(rename = "isSigned")]
        is_signed: bool,
    },
    FloatingPoint {
        precision: String,
    },
    Utf8,
    Binary,
    Bool,
    FixedSizeBinary {
        #[serde(rename = "byteWidth")]
        byte_width: i32,
    },
    Decimal {
        precision: i32,
        scale: i32,
    },
    Date {
        unit: String,
    },
    Time {
        unit: String,
        #[serde(rename = "bitWidth")]
        bit_width: i32,
    },
    Timestamp {
        unit: String,
        timezone: Option<String>,
    },
    Interval {
        unit: String,
    },
}

/// The set of values a column may take, Presto's `Domain`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "@type")]
pub enum ValueSet {
    /// Values equal to (white list) or different from (black list) those of a one-column block.
    EquatableValueSet {
        #[serde(rename = "valueBlock")]
        value_block: Block,
        #[serde(rename = "whiteList")]
        white_list: bool,
        #[serde(rename = "nullAllowed")]
        null_allowed: bool,
    },
    /// A union of disjoint ranges.
    SortedRangeSet {
        #[serde(rename = "type")]
        arrow_type: ArrowType,
        ranges: Vec<Range>,
        #[serde(rename = "nullAllowed")]
        null_allowed: bool,
    },
    /// Every value or none, plus NULL or not.
    AllOrNoneValueSet {
        #[serde(rename = "type")]
        arrow_type: ArrowType,
        all: bool,
        #[serde(rename = "nullAllowed")]
        null_allowed: bool,
    },
}

/// One range of a [`ValueSet::SortedRangeSet`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Range {
    pub low: Marker,
    pub high: Marker,
}

/// One end of a range. An unbounded end has `nullValue: true` and an empty block (`ABOVE` when
/// low, `BELOW` when high).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Marker {
    pub value_block: Block,
    pub bound: Bound,
    pub null_value: bool,
}

/// Where a marker sits relative to its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Bound {
    Below,
    Exactly,
    Above,
}

/// A pushed-down expression (serde 4 and later).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "@type")]
pub enum Expression {
    ConstantExpression {
        #[serde(rename = "valueBlock")]
        value_block: Block,
        #[serde(rename = "type")]
        arrow_type: ArrowType,
    },
    FunctionCallExpression {
        #[serde(rename = "type")]
        arrow_type: ArrowType,
        #[serde(rename = "functionName")]
        function_name: FunctionName,
        arguments: Vec<Expression>,
    },
    VariableExpression {
        #[serde(rename = "columnName")]
        column_name: String,
        #[serde(rename = "type")]
        arrow_type: ArrowType,
    },
}

/// The name of a standard function, e.g. `$greater_than`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionName {
    pub function_name: String,
}

/// One key of a pushed-down ORDER BY.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderByField {
    pub column_name: String,
    pub direction: String,
}

/// A Substrait plan (serde 6).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryPlan {
    pub substrait_version: String,
    pub substrait_plan: String,
}

/// What the query asks of a table: per-column value sets, and from serde 4 expressions, ORDER BY
/// and LIMIT; query passthrough from 5; a Substrait plan from 6.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Constraints {
    pub summary: IndexMap<String, ValueSet>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expression: Option<Vec<Expression>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_by_clause: Option<Vec<OrderByField>>,
    /// -1 when there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_passthrough_arguments: Option<IndexMap<String, String>>,
    /// Absent before serde 6; `null` in 6 when there is no plan.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub query_plan: Option<Option<QueryPlan>>,
}

impl Constraints {
    /// The row limit, if one was pushed (`-1` and absent mean none).
    pub fn row_limit(&self) -> Option<u64> {
        self.limit.and_then(|l| u64::try_from(l).ok())
    }

    /// The fields `version` knows, and all of them (with their empty values) where it does.
    fn at_version(&mut self, version: u32) {
        if version >= 4 {
            self.expression.get_or_insert_with(Vec::new);
            self.order_by_clause.get_or_insert_with(Vec::new);
            self.limit.get_or_insert(-1);
        } else {
            self.expression = None;
            self.order_by_clause = None;
            self.limit = None;
        }
        if version >= 5 {
            self.query_passthrough_arguments
                .get_or_insert_with(IndexMap::new);
        } else {
            self.query_passthrough_arguments = None;
        }
        if version >= 6 {
            self.query_plan.get_or_insert(None);
        } else {
            self.query_plan = None;
        }
    }

    fn version(&self) -> u32 {
        if self.query_plan.is_some() {
            6
        } else if self.query_passthrough_arguments.is_some() {
            5
        } else if self.expression.is_some() || self.limit.is_some() {
            4
        } else {
            MIN_SERDE_VERSION
        }
    }
}

/// Tells a present `null` (`Some(None)`) from an absent field (`None`).
fn present<'de, D, T>(deserializer: D) -> std::result::Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// Where a split spills its blocks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "@type")]
pub enum SpillLocation {
    S3SpillLocation {
        bucket: String,
        key: String,
        directory: bool,
    },
}

/// The AES-256-GCM key and nonce of spilled blocks, base64.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EncryptionKey {
    pub key: String,
    pub nonce: String,
}

/// One unit of reading work.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Split {
    pub spill_location: SpillLocation,
    pub encryption_key: Option<EncryptionKey>,
    pub properties: IndexMap<String, String>,
}

/// The sizes Java writes as strings.
mod as_string {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(value: &i64, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&value.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Text(String),
            Number(i64),
        }
        match Either::deserialize(deserializer)? {
            Either::Number(n) => Ok(n),
            Either::Text(t) => t
                .parse()
                .map_err(|_| D::Error::custom(format!("not a number: {t:?}"))),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PingRequest {
    pub identity: Identity,
    pub catalog_name: String,
    pub query_id: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PingResponse {
    pub catalog_name: String,
    pub query_id: String,
    pub source_type: String,
    pub capabilities: i32,
    /// Absent from serde-1 connectors.
    #[serde(default = "serde_one")]
    pub ser_de_version: u32,
}

fn serde_one() -> u32 {
    1
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListSchemasRequest {
    pub identity: Identity,
    pub query_id: String,
    pub catalog_name: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListSchemasResponse {
    pub catalog_name: String,
    pub schemas: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListTablesRequest {
    pub identity: Identity,
    pub query_id: String,
    pub catalog_name: String,
    pub schema_name: Option<String>,
    #[serde(default)]
    pub next_token: Option<String>,
    /// -1 for no limit.
    #[serde(default = "unlimited")]
    pub page_size: i32,
}

fn unlimited() -> i32 {
    -1
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListTablesResponse {
    pub tables: Vec<TableName>,
    pub catalog_name: String,
    #[serde(default)]
    pub next_token: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetTableRequest {
    pub identity: Identity,
    pub query_id: String,
    pub catalog_name: String,
    pub table_name: TableName,
    /// Serde 5 and later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_passthrough_arguments: Option<IndexMap<String, String>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetTableResponse {
    pub catalog_name: String,
    pub table_name: TableName,
    /// A base64 IPC schema message; its custom metadata must be sent back unchanged.
    pub schema: String,
    pub partition_columns: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetTableLayoutRequest {
    pub identity: Identity,
    pub query_id: String,
    pub catalog_name: String,
    pub table_name: TableName,
    pub constraints: Constraints,
    pub schema: String,
    pub partition_columns: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetTableLayoutResponse {
    pub catalog_name: String,
    pub table_name: TableName,
    pub partitions: Block,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetSplitsRequest {
    pub identity: Identity,
    pub query_id: String,
    pub catalog_name: String,
    pub table_name: TableName,
    pub partitions: Block,
    pub partition_columns: Vec<String>,
    pub constraints: Constraints,
    pub continuation_token: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetSplitsResponse {
    pub catalog_name: String,
    pub splits: Vec<Split>,
    pub continuation_token: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadRecordsRequest {
    pub identity: Identity,
    pub query_id: String,
    pub catalog_name: String,
    pub table_name: TableName,
    /// The columns to read: a base64 IPC schema message.
    pub schema: String,
    pub split: Split,
    pub constraints: Constraints,
    #[serde(with = "as_string")]
    pub max_block_size: i64,
    #[serde(with = "as_string")]
    pub max_inline_block_size: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadRecordsResponse {
    pub catalog_name: String,
    pub records: Block,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemoteReadRecordsResponse {
    pub catalog_name: String,
    pub schema: String,
    pub remote_blocks: Vec<SpillLocation>,
    pub encryption_key: Option<EncryptionKey>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetDataSourceCapabilitiesRequest {
    pub identity: Identity,
    pub query_id: String,
    pub catalog_name: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetDataSourceCapabilitiesResponse {
    pub catalog_name: String,
    pub capabilities: IndexMap<String, Vec<OptimizationSubType>>,
}

/// One sub-type of a declared optimisation, e.g. `supports_filter_pushdown: sorted_range_set`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OptimizationSubType {
    pub sub_type: String,
    pub properties: Vec<String>,
}

/// Every request an engine sends a connector.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "@type")]
#[allow(clippy::large_enum_variant)]
pub enum Request {
    PingRequest(PingRequest),
    ListSchemasRequest(ListSchemasRequest),
    ListTablesRequest(ListTablesRequest),
    GetTableRequest(GetTableRequest),
    GetTableLayoutRequest(GetTableLayoutRequest),
    GetSplitsRequest(GetSplitsRequest),
    ReadRecordsRequest(ReadRecordsRequest),
    GetDataSourceCapabilitiesRequest(GetDataSourceCapabilitiesRequest),
}

/// Every answer a connector gives.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "@type")]
#[allow(clippy::large_enum_variant)]
pub enum Response {
    PingResponse(PingResponse),
    ListSchemasResponse(ListSchemasResponse),
    ListTablesResponse(ListTablesResponse),
    GetTableResponse(GetTableResponse),
    GetTableLayoutResponse(GetTableLayoutResponse),
    GetSplitsResponse(GetSplitsResponse),
    ReadRecordsResponse(ReadRecordsResponse),
    RemoteReadRecordsResponse(RemoteReadRecordsResponse),
    GetDataSourceCapabilitiesResponse(GetDataSourceCapabilitiesResponse),
}

/// The error payload of a failed Lambda invocation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionError {
    pub error_message: String,
    #[serde(default)]
    pub error_type: Option<String>,
    #[serde(default)]
    pub stack_trace: Vec<String>,
}

impl Request {
    /// The `@type` of the request, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Request::PingRequest(_) => "PingRequest",
            Request::ListSchemasRequest(_) => "ListSchemasRequest",
            Request::ListTablesRequest(_) => "ListTablesRequest",
            Request::GetTableRequest(_) => "GetTableRequest",
            Request::GetTableLayoutRequest(_) => "GetTableLayoutRequest",
            Request::GetSplitsRequest(_) => "GetSplitsRequest",
            Request::ReadRecordsRequest(_) => "ReadRecordsRequest",
            Request::GetDataSourceCapabilitiesRequest(_) => "GetDataSourceCapabilitiesRequest",
        }
    }

    /// The catalog the request names.
    pub fn catalog_name(&self) -> &str {
        match self {
            Request::PingRequest(r) => &r.catalog_name,
            Request::ListSchemasRequest(r) => &r.catalog_name,
            Request::ListTablesRequest(r) => &r.catalog_name,
            Request::GetTableRequest(r) => &r.catalog_name,
            Request::GetTableLayoutRequest(r) => &r.catalog_name,
            Request::GetSplitsRequest(r) => &r.catalog_name,
            Request::ReadRecordsRequest(r) => &r.catalog_name,
            Request::GetDataSourceCapabilitiesRequest(r) => &r.catalog_name,
        }
    }

    /// The request as a connector speaking serde `version` expects it: fields that version
    /// does not know dropped, those it requires present (as their empty value when unset).
    /// Arrow payloads are not re-framed; build them with [`Framing::of`] the same version.
    pub fn at_version(mut self, version: u32) -> Request {
        match &mut self {
            Request::GetTableRequest(r) => {
                if version >= 5 {
                    r.query_passthrough_arguments
                        .get_or_insert_with(IndexMap::new);
                } else {
                    r.query_passthrough_arguments = None;
                }
            }
            Request::GetTableLayoutRequest(r) => r.constraints.at_version(version),
            Request::GetSplitsRequest(r) => r.constraints.at_version(version),
            Request::ReadRecordsRequest(r) => r.constraints.at_version(version),
            _ => {}
        }
        self
    }

    /// The serde version a request was written at, as far as its shape tells: the newest
    /// field it carries, then the framing of its Arrow messages (legacy is version 2).
    pub fn version(&self) -> u32 {
        let (constraints, arrow) = match self {
            Request::GetTableRequest(r) => {
                return if r.query_passthrough_arguments.is_some() {
                    5
                } else {
                    MIN_SERDE_VERSION
                };
            }
            Request::GetTableLayoutRequest(r) => (&r.constraints, Some(&r.schema)),
            Request::GetSplitsRequest(r) => (&r.constraints, Some(&r.partitions.schema)),
            Request::ReadRecordsRequest(r) => (&r.constraints, Some(&r.schema)),
            Request::GetDataSourceCapabilitiesRequest(_) => return 4,
            _ => return MIN_SERDE_VERSION,
        };
        let by_fields = constraints.version();
        if by_fields > MIN_SERDE_VERSION {
            return by_fields;
        }
        match arrow.map(|schema| ipc::framing_of(schema)) {
            Some(Ok(Framing::Continuation)) => 3,
            _ => MIN_SERDE_VERSION,
        }
    }
}

/// Parses a request, naming what is wrong when it is not one.
pub fn parse_request(bytes: &[u8]) -> Result<Request> {
    serde_json::from_slice(bytes).map_err(|source| Error::Protocol {
        what: "request".into(),
        message: source.to_string(),
    })
}

/// Parses a connector's answer, or its Lambda error payload.
pub fn parse_response(bytes: &[u8]) -> Result<Response> {
    match serde_json::from_slice::<Response>(bytes) {
        Ok(response) => Ok(response),
        Err(source) => {
            if let Ok(error) = serde_json::from_slice::<FunctionError>(bytes) {
                return Err(Error::Connector {
                    message: error.error_message,
                    error_type: error.error_type,
                });
            }
            Err(Error::Protocol {
                what: "response".into(),
                message: source.to_string(),
            })
        }
    }
}

/// Writes a message as the SDK's Jackson mapper does (`INDENT_OUTPUT`): two-space indentation,
/// `" : "`, `{ }` and `[ ]` when empty, array elements on the same line. This is the text of the
/// SDK's own golden files; the wire accepts any whitespace.
pub fn to_jackson_pretty<T: Serialize>(value: &T) -> Result<String> {
    let mut out = Vec::new();
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, JacksonPretty::default());
    value
        .serialize(&mut serializer)
        .map_err(|source| Error::Protocol {
            what: "message".into(),
            message: source.to_string(),
        })?;
    String::from_utf8(out).map_err(|e| Error::Protocol {
        what: "message".into(),
        message: e.to_string(),
    })
}

/// Jackson's `DefaultPrettyPrinter`: objects break lines, arrays do not.
#[derive(Default)]
struct JacksonPretty {
    indent: usize,
    /// Per open container: is it an object, and has it any entries yet.
    stack: Vec<(bool, bool)>,
}

impl serde_json::ser::Formatter for JacksonPretty {
    fn begin_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.stack.push((false, false));
        w.write_all(b"[")
    }
    fn end_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.stack.pop();
        w.write_all(b" ]")
    }
    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if let Some(top) = self.stack.last_mut() {
            top.1 = true;
        }
        w.write_all(if first { b" " } else { b", " })
    }
    fn end_array_value<W: ?Sized + std::io::Write>(&mut self, _w: &mut W) -> std::io::Result<()> {
        Ok(())
    }
    fn begin_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.stack.push((true, false));
        self.indent += 1;
        w.write_all(b"{")
    }
    fn end_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.indent -= 1;
        let had_entries = self.stack.pop().is_some_and(|(_, any)| any);
        if had_entries {
            w.write_all(b"\n")?;
            w.write_all("  ".repeat(self.indent).as_bytes())?;
            w.write_all(b"}")
        } else {
            w.write_all(b" }")
        }
    }
    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if let Some(top) = self.stack.last_mut() {
            top.1 = true;
        }
        w.write_all(if first { b"\n" } else { b",\n" })?;
        w.write_all("  ".repeat(self.indent).as_bytes())
    }
    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        w.write_all(b" : ")
    }
}

/// Serializes a message compactly for the wire.
pub fn to_wire<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|source| Error::Protocol {
        what: "message".into(),
        message: source.to_string(),
    })
}
