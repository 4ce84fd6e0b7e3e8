//! The DynamoDB connector: aws-sdk-dynamodb, in the shape of the SDK's DynamoDB connector.
//!
//! - One schema, `default`; its tables are the account's DynamoDB tables (names lower-cased,
//!   matched ignoring case).
//! - A table's columns come from a catalog table of the same name when one exists (in the
//!   configured database, e.g. a Glue table describing it), else they are inferred from a
//!   sample of items: `S` → `varchar`, `N` → `decimal(38,9)`, `B` → `varbinary`, `BOOL` →
//!   `boolean`, string / number / binary sets and lists of one scalar type → `array`, maps and
//!   mixed lists → `varchar` (their JSON text). An attribute that holds different types in
//!   different items is `varchar`. The key attributes are always columns, first.
//! - Equality or IN on the hash key becomes one `Query` split per value (a range-key
//!   constraint joins the key condition); otherwise the table is read by parallel `Scan`
//!   segments. Other constraints become a `FilterExpression` with placeholder names and values.
//!   DynamoDB's `Limit` counts items before the filter, so a pushed LIMIT only stops reading
//!   once enough filtered items have arrived.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{
    ArrayBuilder, ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Date64Builder,
    Decimal128Builder, Float32Builder, Float64Builder, Int8Builder, Int16Builder, Int32Builder,
    Int64Builder, ListBuilder, StringBuilder, make_builder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use indexmap::IndexMap;

use crate::connector::{
    Connector, Pushdown, SplitPage, TableLayout, filter_and_limit_capabilities,
};
use crate::constraints::{Domain, Value, Values};
use crate::wire::{OptimizationSubType, TableName};
use crate::{Error, Result};

/// The one schema, as the SDK's connector names it.
pub const SCHEMA: &str = "default";
/// Items sampled to infer a schema.
const SAMPLE_ITEMS: i32 = 100;
/// The type of numbers whose precision is unknown, as the SDK's connector maps `N`.
const NUMBER: DataType = DataType::Decimal128(38, 9);
/// Splits per GetSplits page.
const SPLITS_PER_PAGE: usize = 1000;
/// Rows per Arrow batch.
const BATCH_ROWS: usize = 8192;
/// A table is scanned in segments of about this many bytes (at most [`MAX_SEGMENTS`]).
const BYTES_PER_SEGMENT: i64 = 256 << 20;
const MAX_SEGMENTS: i64 = 64;

/// Where table schemas may be declared: a catalog database whose tables describe DynamoDB
/// tables of the same name.
pub struct SchemaSource {
    pub catalog: Arc<dyn quarry_catalog::Catalog>,
    pub database: String,
}

/// DynamoDB behind the federation protocol.
pub struct DynamoDb {
    client: aws_sdk_dynamodb::Client,
    schemas: Option<SchemaSource>,
    /// Scan segments to use whatever the table's size (tests, tuning); `None`: by size.
    segments: Option<i32>,
}

impl std::fmt::Debug for DynamoDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DynamoDb")
    }
}

impl DynamoDb {
    /// A connector configured like the AWS CLI (region, credentials, `AWS_ENDPOINT_URL` or
    /// `AWS_ENDPOINT_URL_DYNAMODB`).
    pub async fn from_env() -> DynamoDb {
        DynamoDb::new(aws_sdk_dynamodb::Client::new(
            &crate::aws_config(None).await,
        ))
    }

    pub fn new(client: aws_sdk_dynamodb::Client) -> DynamoDb {
        DynamoDb {
            client,
            schemas: None,
            segments: None,
        }
    }

    /// Take declared schemas from `source` when it has a table of the same name.
    pub fn with_schemas(mut self, source: SchemaSource) -> DynamoDb {
        self.schemas = Some(source);
        self
    }

    /// Always scan in `n` parallel segments.
    pub fn with_segments(mut self, n: i32) -> DynamoDb {
        self.segments = Some(n.max(1));
        self
    }

    fn error(&self, what: &str, e: impl std::error::Error + 'static) -> Error {
        Error::Source {
            source_name: "dynamodb".into(),
            message: format!("{what}: {}", crate::client::error_chain(&e)),
        }
    }

    /// The real name of a table (names are listed lower case; DynamoDB's are case-sensitive).
    async fn resolve(&self, table: &TableName) -> Result<String> {
        if !table.schema_name.eq_ignore_ascii_case(SCHEMA) {
            return Err(Error::Source {
                source_name: "dynamodb".into(),
                message: format!(
                    "no schema {}: DynamoDB tables are in schema {SCHEMA}",
                    table.schema_name
                ),
            });
        }
        let names = self.table_names().await?;
        names
            .iter()
            .find(|n| **n == table.table_name)
            .or_else(|| {
                names
                    .iter()
                    .find(|n| n.eq_ignore_ascii_case(&table.table_name))
            })
            .cloned()
            .ok_or_else(|| Error::Source {
                source_name: "dynamodb".into(),
                message: format!(
                    "table {} does not exist (or the credentials cannot list it)",
                    table.table_name
                ),
            })
    }

    async fn table_names(&self) -> Result<Vec<String>> {
        let mut names = Vec::new();
        let mut start: Option<String> = None;
        loop {
            let out = self
                .client
                .list_tables()
                .set_exclusive_start_table_name(start.take())
                .send()
                .await
                .map_err(|e| self.error("listing tables", e))?;
            names.extend(out.table_names.unwrap_or_default());
            match out.last_evaluated_table_name {
                Some(last) => start = Some(last),
                None => return Ok(names),
            }
        }
    }

    /// The key attributes (hash, then range) with their DynamoDB types, and the table's size.
    async fn keys(&self, name: &str) -> Result<(Vec<(String, String)>, i64)> {
        let out = self
            .client
            .describe_table()
            .table_name(name)
            .send()
            .await
            .map_err(|e| self.error(&format!("describing {name}"), e))?;
        let table = out.table.ok_or_else(|| Error::Source {
            source_name: "dynamodb".into(),
            message: format!("{name} has no description"),
        })?;
        let types: HashMap<String, String> = table
            .attribute_definitions()
            .iter()
            .map(|d| {
                (
                    d.attribute_name().to_owned(),
                    d.attribute_type().as_str().to_owned(),
                )
            })
            .collect();
        let mut keys: Vec<(String, String, bool)> = table
            .key_schema()
            .iter()
            .map(|k| {
                let name = k.attribute_name().to_owned();
                let kind = types.get(&name).cloned().unwrap_or_else(|| "S".into());
                (name, kind, k.key_type().as_str() == "HASH")
            })
            .collect();
        keys.sort_by_key(|(_, _, hash)| !*hash);
        Ok((
            keys.into_iter().map(|(n, t, _)| (n, t)).collect(),
            table.table_size_bytes.unwrap_or(0),
        ))
    }

    /// The attribute name of each lower-case column: from a sample, as the columns are.
    async fn attribute_names(&self, name: &str) -> Result<HashMap<String, String>> {
        let (keys, _) = self.keys(name).await?;
        let mut names: HashMap<String, String> = keys
            .into_iter()
            .map(|(k, _)| (k.to_lowercase(), k))
            .collect();
        for item in self.sample(name).await? {
            for attribute in item.keys() {
                names
                    .entry(attribute.to_lowercase())
                    .or_insert_with(|| attribute.clone());
            }
        }
        Ok(names)
    }

    async fn sample(&self, name: &str) -> Result<Vec<HashMap<String, AttributeValue>>> {
        let out = self
            .client
            .scan()
            .table_name(name)
            .limit(SAMPLE_ITEMS)
            .send()
            .await
            .map_err(|e| self.error(&format!("sampling {name}"), e))?;
        Ok(out.items.unwrap_or_default())
    }
}

/// The Arrow type of one attribute value (`None` for NULL).
fn infer(value: &AttributeValue) -> Option<DataType> {
    let list = |item: DataType| DataType::List(Arc::new(Field::new("item", item, true)));
    Some(match value {
        AttributeValue::S(_) => DataType::Utf8,
        AttributeValue::N(_) => NUMBER,
        AttributeValue::B(_) => DataType::Binary,
        AttributeValue::Bool(_) => DataType::Boolean,
        AttributeValue::Null(_) => return None,
        AttributeValue::Ss(_) => list(DataType::Utf8),
        AttributeValue::Ns(_) => list(NUMBER),
        AttributeValue::Bs(_) => list(DataType::Binary),
        AttributeValue::L(items) => {
            let mut types = items.iter().filter_map(infer);
            match types.next() {
                Some(first) if !matches!(first, DataType::List(_)) && types.all(|t| t == first) => {
                    list(first)
                }
                _ => DataType::Utf8,
            }
        }
        _ => DataType::Utf8,
    })
}

fn key_type(kind: &str) -> DataType {
    match kind {
        "N" => NUMBER,
        "B" => DataType::Binary,
        _ => DataType::Utf8,
    }
}

/// A value as JSON text, for columns that hold maps, mixed lists or mixed types.
fn json_text(value: &AttributeValue) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        AttributeValue::S(s) => J::String(s.clone()),
        AttributeValue::N(n) => serde_json::from_str::<serde_json::Number>(n)
            .map(J::Number)
            .unwrap_or_else(|_| J::String(n.clone())),
        AttributeValue::B(b) => J::String(STANDARD.encode(b.as_ref())),
        AttributeValue::Bool(b) => J::Bool(*b),
        AttributeValue::Null(_) => J::Null,
        AttributeValue::Ss(v) => J::Array(v.iter().cloned().map(J::String).collect()),
        AttributeValue::Ns(v) => J::Array(
            v.iter()
                .map(|n| json_text(&AttributeValue::N(n.clone())))
                .collect(),
        ),
        AttributeValue::Bs(v) => J::Array(
            v.iter()
                .map(|b| J::String(STANDARD.encode(b.as_ref())))
                .collect(),
        ),
        AttributeValue::L(v) => J::Array(v.iter().map(json_text).collect()),
        AttributeValue::M(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            J::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), json_text(&m[k])))
                    .collect(),
            )
        }
        _ => J::Null,
    }
}

/// A constraint value as an attribute value for a column of Arrow type `column`, when DynamoDB
/// compares them the way the engine does.
fn attribute_of(column: &DataType, value: &Value) -> Option<AttributeValue> {
    Some(match (column, value) {
        (DataType::Utf8, Value::Text(s)) => AttributeValue::S(s.clone()),
        (DataType::Boolean, Value::Bool(b)) => AttributeValue::Bool(*b),
        (DataType::Binary, Value::Binary(b)) => AttributeValue::B(Blob::new(b.clone())),
        (c, Value::Int(i)) if number_column(c) => AttributeValue::N(i.to_string()),
        (c, Value::Decimal(v, s)) if number_column(c) => {
            AttributeValue::N(crate::decimal::text(*v, *s))
        }
        (DataType::Decimal128(..) | DataType::Float64 | DataType::Float32, Value::Float(f))
            if f.is_finite() =>
        {
            AttributeValue::N(format!("{f:?}"))
        }
        // ISO dates kept as strings sort like dates.
        (DataType::Date32, Value::Date(d)) => {
            let date = chrono::NaiveDate::from_num_days_from_ce_opt(d.checked_add(719_163)?)?;
            AttributeValue::S(date.format("%Y-%m-%d").to_string())
        }
        _ => return None,
    })
}

/// Column types whose constraint values DynamoDB compares as numbers (`N`).
fn number_column(column: &DataType) -> bool {
    matches!(
        column,
        DataType::Decimal128(..)
            | DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::Float64
            | DataType::Float32
    )
}

/// Builds DynamoDB expressions with placeholder names (`#n0`) and values (`:v0`).
#[derive(Default)]
struct Expressions {
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Expressions {
    fn name(&mut self, attribute: &str) -> String {
        if let Some((placeholder, _)) = self.names.iter().find(|(_, a)| *a == attribute) {
            return placeholder.clone();
        }
        let placeholder = format!("#n{}", self.names.len());
        self.names.insert(placeholder.clone(), attribute.to_owned());
        placeholder
    }

    fn value(&mut self, value: AttributeValue) -> String {
        let placeholder = format!(":v{}", self.values.len());
        self.values.insert(placeholder.clone(), value);
        placeholder
    }

    /// The condition of one column's domain, or `None` when it cannot be expressed.
    fn domain(&mut self, attribute: &str, column: &DataType, domain: &Domain) -> Option<String> {
        let n = self.name(attribute);
        let is_null = |e: &mut Self| {
            let null = e.value(AttributeValue::S("NULL".into()));
            format!("(attribute_not_exists({n}) OR attribute_type({n}, {null}))")
        };
        let or_null = |e: &mut Self, clause: String| {
            if domain.null_allowed {
                format!("({clause} OR {})", is_null(e))
            } else {
                clause
            }
        };
        Some(match &domain.values {
            Values::AllOrNone(true) if domain.null_allowed => return None,
            Values::AllOrNone(true) => format!("(attribute_exists({n}) AND NOT {})", is_null(self)),
            Values::AllOrNone(false) if domain.null_allowed => is_null(self),
            Values::AllOrNone(false) => {
                let v = self.value(AttributeValue::Bool(true));
                let w = self.value(AttributeValue::Bool(false));
                format!("{v} = {w}")
            }
            Values::Set { values, white_list } => {
                // DynamoDB's IN takes at most 100 operands.
                if values.is_empty() || values.len() > 100 {
                    return None;
                }
                let mut items = Vec::with_capacity(values.len());
                for v in values {
                    let a = attribute_of(column, v)?;
                    items.push(self.value(a));
                }
                let clause = format!("{n} IN ({})", items.join(", "));
                if *white_list {
                    or_null(self, clause)
                } else {
                    let null = is_null(self);
                    or_null(
                        self,
                        format!("(attribute_exists({n}) AND NOT {null} AND NOT ({clause}))"),
                    )
                }
            }
            Values::Ranges(ranges) => {
                if ranges.is_empty() {
                    return None;
                }
                let mut parts = Vec::with_capacity(ranges.len());
                for range in ranges {
                    parts.push(self.range(&n, column, range)?);
                }
                or_null(self, format!("({})", parts.join(" OR ")))
            }
        })
    }

    fn range(
        &mut self,
        n: &str,
        column: &DataType,
        range: &crate::constraints::Range,
    ) -> Option<String> {
        Some(match (&range.low, &range.high) {
            (Some(low), Some(high)) if low.inclusive && high.inclusive => {
                let a = attribute_of(column, &low.value)?;
                if low.value == high.value {
                    format!("{n} = {}", self.value(a))
                } else {
                    let b = attribute_of(column, &high.value)?;
                    let (a, b) = (self.value(a), self.value(b));
                    format!("{n} BETWEEN {a} AND {b}")
                }
            }
            (low, high) => {
                let mut bounds = Vec::new();
                if let Some(low) = low {
                    let a = attribute_of(column, &low.value)?;
                    bounds.push(format!(
                        "{n} {} {}",
                        if low.inclusive { ">=" } else { ">" },
                        self.value(a)
                    ));
                }
                if let Some(high) = high {
                    let b = attribute_of(column, &high.value)?;
                    bounds.push(format!(
                        "{n} {} {}",
                        if high.inclusive { "<=" } else { "<" },
                        self.value(b)
                    ));
                }
                if bounds.is_empty() {
                    format!("attribute_exists({n})")
                } else {
                    format!("({})", bounds.join(" AND "))
                }
            }
        })
    }
}

/// An attribute value as the JSON a split property carries.
fn encode_key(value: &AttributeValue) -> Option<String> {
    let json = match value {
        AttributeValue::S(s) => serde_json::json!({"S": s}),
        AttributeValue::N(n) => serde_json::json!({"N": n}),
        AttributeValue::B(b) => serde_json::json!({"B": STANDARD.encode(b.as_ref())}),
        _ => return None,
    };
    Some(json.to_string())
}

fn decode_key(text: &str) -> Result<AttributeValue> {
    let bad = || Error::Protocol {
        what: "split".into(),
        message: format!("not a key value: {text}"),
    };
    let json: serde_json::Value = serde_json::from_str(text).map_err(|_| bad())?;
    if let Some(s) = json.get("S").and_then(|v| v.as_str()) {
        return Ok(AttributeValue::S(s.to_owned()));
    }
    if let Some(n) = json.get("N").and_then(|v| v.as_str()) {
        return Ok(AttributeValue::N(n.to_owned()));
    }
    if let Some(b) = json.get("B").and_then(|v| v.as_str()) {
        return Ok(AttributeValue::B(Blob::new(
            STANDARD.decode(b).map_err(|_| bad())?,
        )));
    }
    Err(bad())
}

/// The single values of a hash-key domain (equalities and IN lists), if that is all it is.
fn point_values(domain: &Domain) -> Option<Vec<Value>> {
    if domain.null_allowed {
        return None;
    }
    match &domain.values {
        Values::Set {
            values,
            white_list: true,
        } => Some(values.clone()),
        Values::Ranges(ranges) => ranges
            .iter()
            .map(|r| match (&r.low, &r.high) {
                (Some(l), Some(h)) if l.inclusive && h.inclusive && l.value == h.value => {
                    Some(l.value.clone())
                }
                _ => None,
            })
            .collect(),
        Values::AllOrNone(_)
        | Values::Set {
            white_list: false, ..
        } => None,
    }
}

#[async_trait]
impl Connector for DynamoDb {
    fn source_type(&self) -> &'static str {
        "dynamodb"
    }

    fn capabilities(&self) -> IndexMap<String, Vec<OptimizationSubType>> {
        filter_and_limit_capabilities()
    }

    async fn list_schemas(&self) -> Result<Vec<String>> {
        Ok(vec![SCHEMA.to_owned()])
    }

    async fn list_tables(
        &self,
        schema: Option<&str>,
        token: Option<&str>,
        page_size: Option<usize>,
    ) -> Result<(Vec<TableName>, Option<String>)> {
        if schema.is_some_and(|s| !s.eq_ignore_ascii_case(SCHEMA)) {
            return Ok((Vec::new(), None));
        }
        let mut names: Vec<String> = self
            .table_names()
            .await?
            .into_iter()
            .map(|n| n.to_lowercase())
            .collect();
        names.sort();
        names.dedup();
        let start = token.map_or(0, |t| names.partition_point(|n| n.as_str() <= t));
        let end = page_size.map_or(names.len(), |p| (start + p).min(names.len()));
        let page: Vec<TableName> = names[start..end]
            .iter()
            .map(|n| TableName::new(SCHEMA, n))
            .collect();
        let next = (end < names.len()).then(|| names[end - 1].clone());
        Ok((page, next))
    }

    async fn get_table(&self, table: &TableName) -> Result<TableLayout> {
        let name = self.resolve(table).await?;
        if let Some(source) = &self.schemas
            && let Some(declared) = source
                .catalog
                .get_table(&source.database, &table.table_name.to_lowercase())
                .await
                .ok()
                .flatten()
        {
            let mut fields = Vec::new();
            for column in &declared.storage.columns {
                let data_type =
                    quarry_catalog::types::from_hive(&column.data_type).map_err(|_| {
                        Error::UnsupportedType {
                            table: name.clone(),
                            column: column.name.clone(),
                            data_type: column.data_type.clone(),
                            hint: String::new(),
                        }
                    })?;
                fields.push(Field::new(column.name.to_lowercase(), data_type, true));
            }
            let schema = crate::types::to_wire_schema(&name, &Schema::new(fields))?;
            return Ok(TableLayout {
                schema,
                partition_columns: Vec::new(),
            });
        }
        let (keys, _) = self.keys(&name).await?;
        let mut types: IndexMap<String, Option<DataType>> = IndexMap::new();
        for (key, kind) in &keys {
            types.insert(key.to_lowercase(), Some(key_type(kind)));
        }
        let mut others: IndexMap<String, Option<DataType>> = IndexMap::new();
        for item in self.sample(&name).await? {
            let mut attributes: Vec<(&String, &AttributeValue)> = item.iter().collect();
            attributes.sort_by(|a, b| a.0.cmp(b.0));
            for (attribute, value) in attributes {
                let column = attribute.to_lowercase();
                if types.contains_key(&column) {
                    continue;
                }
                let inferred = infer(value);
                let slot = others.entry(column).or_insert(None);
                *slot = match (slot.take(), inferred) {
                    (None, t) | (t, None) => t,
                    (Some(a), Some(b)) if a == b => Some(a),
                    _ => Some(DataType::Utf8),
                };
            }
        }
        others.sort_keys();
        let fields: Vec<Field> = types
            .into_iter()
            .chain(others)
            .map(|(name, t)| Field::new(name, t.unwrap_or(DataType::Utf8), true))
            .collect();
        Ok(TableLayout {
            schema: Arc::new(Schema::new(fields)),
            partition_columns: Vec::new(),
        })
    }

    async fn splits(
        &self,
        table: &TableName,
        _partitions: &RecordBatch,
        pushdown: &Pushdown,
        token: Option<&str>,
    ) -> Result<SplitPage> {
        let name = self.resolve(table).await?;
        let (keys, size) = self.keys(&name).await?;
        let hash = keys.first().map(|(k, kind)| (k.clone(), key_type(kind)));
        let start: usize = token.and_then(|t| t.parse().ok()).unwrap_or(0);
        // Equality / IN on the hash key: one Query per value.
        if let Some((hash, hash_type)) = &hash
            && let Some((_, domain)) = pushdown
                .domains
                .iter()
                .find(|(c, _)| c.eq_ignore_ascii_case(hash))
            && let Some(values) = point_values(domain)
            && let Some(encoded) = values
                .iter()
                .map(|v| attribute_of(hash_type, v).and_then(|a| encode_key(&a)))
                .collect::<Option<Vec<_>>>()
        {
            let page: Vec<IndexMap<String, String>> = encoded
                .iter()
                .skip(start)
                .take(SPLITS_PER_PAGE)
                .map(|key| {
                    IndexMap::from([
                        ("kind".to_owned(), "query".to_owned()),
                        ("hash".to_owned(), key.clone()),
                    ])
                })
                .collect();
            let next = start + page.len();
            return Ok(SplitPage {
                continuation: (next < encoded.len()).then(|| next.to_string()),
                splits: page,
            });
        }
        let segments = self
            .segments
            .map(i64::from)
            .unwrap_or_else(|| (size / BYTES_PER_SEGMENT + 1).clamp(1, MAX_SEGMENTS));
        let page: Vec<IndexMap<String, String>> = (0..segments)
            .skip(start)
            .take(SPLITS_PER_PAGE)
            .map(|i| {
                IndexMap::from([
                    ("kind".to_owned(), "scan".to_owned()),
                    ("segment".to_owned(), i.to_string()),
                    ("segments".to_owned(), segments.to_string()),
                ])
            })
            .collect();
        let next = start + page.len();
        Ok(SplitPage {
            continuation: (next < segments as usize).then(|| next.to_string()),
            splits: page,
        })
    }

    async fn read(
        &self,
        table: &TableName,
        schema: &SchemaRef,
        split: &IndexMap<String, String>,
        pushdown: &Pushdown,
    ) -> Result<Vec<RecordBatch>> {
        let name = self.resolve(table).await?;
        let (keys, _) = self.keys(&name).await?;
        let attributes = self.attribute_names(&name).await?;
        let attribute = |column: &str| {
            attributes
                .get(column)
                .cloned()
                .unwrap_or_else(|| column.to_owned())
        };
        let hash = keys.first().map(|(k, _)| k.clone());
        let range = keys.get(1).cloned();
        let query = split.get("kind").map(String::as_str) == Some("query");

        let mut e = Expressions::default();
        let mut key_condition = None;
        if query {
            let value = decode_key(split.get("hash").ok_or_else(|| Error::Protocol {
                what: "split".into(),
                message: "a query split without its hash key".into(),
            })?)?;
            let hk = e.name(hash.as_deref().unwrap_or_default());
            let hv = e.value(value);
            key_condition = Some(format!("{hk} = {hv}"));
        }
        let mut filters = Vec::new();
        let mut every_constraint_pushed = true;
        for (column, domain) in &pushdown.domains {
            let attr = attribute(column);
            let is_hash = hash.as_deref() == Some(attr.as_str());
            let is_range = range.as_ref().is_some_and(|(r, _)| *r == attr);
            if query && is_hash {
                // The split's key condition applies it.
                continue;
            }
            let column_type = schema
                .field_with_name(column)
                .map(|f| f.data_type().clone())
                .unwrap_or_else(|_| domain.data_type.clone());
            if query && is_range {
                // A Query may not filter on its keys: a single range joins the key condition.
                let single = match &domain.values {
                    Values::Ranges(r) if r.len() == 1 && !domain.null_allowed => Some(&r[0]),
                    _ => None,
                };
                let placeholder = e.name(&attr);
                match single.and_then(|r| e.range(&placeholder, &column_type, r)) {
                    Some(condition) => {
                        key_condition = key_condition.map(|k| format!("{k} AND {condition}"));
                    }
                    None => every_constraint_pushed = false,
                }
                continue;
            }
            match e.domain(&attr, &column_type, domain) {
                Some(clause) => filters.push(clause),
                None => every_constraint_pushed = false,
            }
        }
        // Only the columns asked for (plus nothing: a COUNT(*) reads the hash key alone).
        let wanted: Vec<String> = schema
            .fields()
            .iter()
            .map(|f| attribute(f.name()))
            .collect();
        let projection: Vec<String> = if wanted.is_empty() {
            hash.iter().map(|h| e.name(h)).collect()
        } else {
            wanted.iter().map(|a| e.name(a)).collect()
        };
        let filter = (!filters.is_empty()).then(|| filters.join(" AND "));
        let limit = pushdown
            .limit
            .filter(|_| every_constraint_pushed)
            .and_then(|l| usize::try_from(l).ok());

        let mut builders: Vec<Box<dyn ArrayBuilder>> = schema
            .fields()
            .iter()
            .map(|f| make_builder(f.data_type(), BATCH_ROWS))
            .collect();
        let mut batches = Vec::new();
        let mut rows = 0usize;
        let mut total = 0usize;
        let mut start_key: Option<HashMap<String, AttributeValue>> = None;
        let names = (!e.names.is_empty()).then(|| e.names.clone());
        let values = (!e.values.is_empty()).then(|| e.values.clone());
        'pages: loop {
            let (items, last) = if query {
                let out = self
                    .client
                    .query()
                    .table_name(&name)
                    .set_key_condition_expression(key_condition.clone())
                    .set_filter_expression(filter.clone())
                    .projection_expression(projection.join(", "))
                    .set_expression_attribute_names(names.clone())
                    .set_expression_attribute_values(values.clone())
                    .set_exclusive_start_key(start_key.take())
                    .send()
                    .await
                    .map_err(|err| self.error(&format!("querying {name}"), err))?;
                (out.items.unwrap_or_default(), out.last_evaluated_key)
            } else {
                let segment = split
                    .get("segment")
                    .and_then(|s| s.parse::<i32>().ok())
                    .unwrap_or(0);
                let segments = split
                    .get("segments")
                    .and_then(|s| s.parse::<i32>().ok())
                    .unwrap_or(1);
                let mut request = self
                    .client
                    .scan()
                    .table_name(&name)
                    .set_filter_expression(filter.clone())
                    .projection_expression(projection.join(", "))
                    .set_expression_attribute_names(names.clone())
                    .set_expression_attribute_values(values.clone())
                    .set_exclusive_start_key(start_key.take());
                if segments > 1 {
                    request = request.segment(segment).total_segments(segments);
                }
                let out = request
                    .send()
                    .await
                    .map_err(|err| self.error(&format!("scanning {name}"), err))?;
                (out.items.unwrap_or_default(), out.last_evaluated_key)
            };
            for item in items {
                for ((builder, field), attr) in
                    builders.iter_mut().zip(schema.fields()).zip(&wanted)
                {
                    append(builder.as_mut(), field.data_type(), item.get(attr)).map_err(
                        |message| Error::Value {
                            table: name.clone(),
                            column: field.name().clone(),
                            data_type: field.data_type().to_string(),
                            message,
                        },
                    )?;
                }
                rows += 1;
                total += 1;
                if rows == BATCH_ROWS {
                    batches.push(finish(schema, &mut builders, rows)?);
                    rows = 0;
                }
                if limit.is_some_and(|l| total >= l) {
                    break 'pages;
                }
            }
            match last {
                Some(key) if !key.is_empty() => start_key = Some(key),
                _ => break,
            }
        }
        if rows > 0 || batches.is_empty() {
            batches.push(finish(schema, &mut builders, rows)?);
        }
        Ok(batches)
    }
}

fn finish(
    schema: &SchemaRef,
    builders: &mut [Box<dyn ArrayBuilder>],
    rows: usize,
) -> Result<RecordBatch> {
    let columns: Vec<ArrayRef> = builders.iter_mut().map(|b| b.finish()).collect();
    crate::batch(schema, columns, rows, "items")
}

fn downcast<T: 'static>(builder: &mut dyn ArrayBuilder) -> std::result::Result<&mut T, String> {
    builder
        .as_any_mut()
        .downcast_mut::<T>()
        .ok_or_else(|| "internal: builder of another type".to_owned())
}

fn number(value: &AttributeValue) -> std::result::Result<&str, String> {
    match value {
        AttributeValue::N(n) => Ok(n),
        other => Err(format!("expected a number, found {}", kind(other))),
    }
}

fn kind(value: &AttributeValue) -> &'static str {
    match value {
        AttributeValue::S(_) => "a string (S)",
        AttributeValue::N(_) => "a number (N)",
        AttributeValue::B(_) => "binary (B)",
        AttributeValue::Bool(_) => "a boolean (BOOL)",
        AttributeValue::Null(_) => "NULL",
        AttributeValue::Ss(_) => "a string set (SS)",
        AttributeValue::Ns(_) => "a number set (NS)",
        AttributeValue::Bs(_) => "a binary set (BS)",
        AttributeValue::L(_) => "a list (L)",
        AttributeValue::M(_) => "a map (M)",
        _ => "an unknown type",
    }
}

fn append_value(
    builder: &mut dyn ArrayBuilder,
    data_type: &DataType,
    value: &AttributeValue,
) -> std::result::Result<(), String> {
    macro_rules! int {
        ($b:ty, $t:ty) => {{
            let n = number(value)?;
            let v: $t = n.parse().map_err(|_| format!("{n} is not a {data_type}"))?;
            downcast::<$b>(builder)?.append_value(v);
        }};
    }
    match data_type {
        DataType::Utf8 => {
            let text = match value {
                AttributeValue::S(s) => s.clone(),
                AttributeValue::N(n) => n.clone(),
                other => json_text(other).to_string(),
            };
            downcast::<StringBuilder>(builder)?.append_value(text);
        }
        DataType::Decimal128(_, s) => {
            let n = number(value)?;
            let v = crate::decimal::parse(n, *s)
                .ok_or_else(|| format!("{n} does not fit {data_type}"))?;
            downcast::<Decimal128Builder>(builder)?.append_value(v);
        }
        DataType::Int8 => int!(Int8Builder, i8),
        DataType::Int16 => int!(Int16Builder, i16),
        DataType::Int32 => int!(Int32Builder, i32),
        DataType::Int64 => int!(Int64Builder, i64),
        DataType::Float32 => int!(Float32Builder, f32),
        DataType::Float64 => int!(Float64Builder, f64),
        DataType::Boolean => match value {
            AttributeValue::Bool(b) => downcast::<BooleanBuilder>(builder)?.append_value(*b),
            other => return Err(format!("expected a boolean, found {}", kind(other))),
        },
        DataType::Binary => match value {
            AttributeValue::B(b) => downcast::<BinaryBuilder>(builder)?.append_value(b.as_ref()),
            other => return Err(format!("expected binary, found {}", kind(other))),
        },
        DataType::Date32 => match value {
            AttributeValue::S(s) => {
                let d = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
                    .map_err(|_| format!("{s:?} is not a date (YYYY-MM-DD)"))?;
                downcast::<Date32Builder>(builder)?.append_value(
                    d.signed_duration_since(chrono::NaiveDate::default())
                        .num_days() as i32,
                );
            }
            other => return Err(format!("expected a date string, found {}", kind(other))),
        },
        DataType::Date64 => {
            let millis = match value {
                AttributeValue::S(s) => chrono::DateTime::parse_from_rfc3339(s)
                    .map(|t| t.timestamp_millis())
                    .or_else(|_| {
                        chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f")
                            .map(|t| t.and_utc().timestamp_millis())
                    })
                    .map_err(|_| format!("{s:?} is not a timestamp (RFC 3339)"))?,
                AttributeValue::N(n) => n
                    .parse::<i64>()
                    .map_err(|_| format!("{n} is not epoch milliseconds"))?,
                other => return Err(format!("expected a timestamp, found {}", kind(other))),
            };
            downcast::<Date64Builder>(builder)?.append_value(millis);
        }
        DataType::List(item) => {
            let items: Vec<AttributeValue> = match value {
                AttributeValue::L(v) => v.clone(),
                AttributeValue::Ss(v) => v.iter().cloned().map(AttributeValue::S).collect(),
                AttributeValue::Ns(v) => v.iter().cloned().map(AttributeValue::N).collect(),
                AttributeValue::Bs(v) => v.iter().cloned().map(AttributeValue::B).collect(),
                other => return Err(format!("expected a list or set, found {}", kind(other))),
            };
            let list = downcast::<ListBuilder<Box<dyn ArrayBuilder>>>(builder)?;
            for item_value in &items {
                append(list.values().as_mut(), item.data_type(), Some(item_value))?;
            }
            list.append(true);
        }
        other => return Err(format!("columns of type {other} are not supported")),
    }
    Ok(())
}

fn append(
    builder: &mut dyn ArrayBuilder,
    data_type: &DataType,
    value: Option<&AttributeValue>,
) -> std::result::Result<(), String> {
    match value {
        None | Some(AttributeValue::Null(_)) => append_null(builder, data_type),
        Some(v) => append_value(builder, data_type, v),
    }
}

fn append_null(
    builder: &mut dyn ArrayBuilder,
    data_type: &DataType,
) -> std::result::Result<(), String> {
    match data_type {
        DataType::Utf8 => downcast::<StringBuilder>(builder)?.append_null(),
        DataType::Decimal128(..) => downcast::<Decimal128Builder>(builder)?.append_null(),
        DataType::Int8 => downcast::<Int8Builder>(builder)?.append_null(),
        DataType::Int16 => downcast::<Int16Builder>(builder)?.append_null(),
        DataType::Int32 => downcast::<Int32Builder>(builder)?.append_null(),
        DataType::Int64 => downcast::<Int64Builder>(builder)?.append_null(),
        DataType::Float32 => downcast::<Float32Builder>(builder)?.append_null(),
        DataType::Float64 => downcast::<Float64Builder>(builder)?.append_null(),
        DataType::Boolean => downcast::<BooleanBuilder>(builder)?.append_null(),
        DataType::Binary => downcast::<BinaryBuilder>(builder)?.append_null(),
        DataType::Date32 => downcast::<Date32Builder>(builder)?.append_null(),
        DataType::Date64 => downcast::<Date64Builder>(builder)?.append_null(),
        DataType::List(_) => downcast::<ListBuilder<Box<dyn ArrayBuilder>>>(builder)?.append(false),
        other => return Err(format!("columns of type {other} are not supported")),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::constraints::{Endpoint, Range};

    #[test]
    fn types_are_inferred_as_the_sdk_maps_them() {
        assert_eq!(infer(&AttributeValue::S("x".into())), Some(DataType::Utf8));
        assert_eq!(infer(&AttributeValue::N("1.5".into())), Some(NUMBER));
        assert_eq!(infer(&AttributeValue::Null(true)), None);
        let list = infer(&AttributeValue::L(vec![
            AttributeValue::N("1".into()),
            AttributeValue::N("2".into()),
        ]));
        assert!(matches!(list, Some(DataType::List(f)) if f.data_type() == &NUMBER));
        let mixed = infer(&AttributeValue::L(vec![
            AttributeValue::N("1".into()),
            AttributeValue::S("a".into()),
        ]));
        assert_eq!(mixed, Some(DataType::Utf8));
        assert_eq!(
            infer(&AttributeValue::M(HashMap::new())),
            Some(DataType::Utf8)
        );
    }

    #[test]
    fn constraints_become_placeholder_expressions() {
        let mut e = Expressions::default();
        let domain = Domain {
            data_type: DataType::Utf8,
            values: Values::Set {
                values: vec![Value::Text("a) OR (1=1".into()), Value::Text("b".into())],
                white_list: true,
            },
            null_allowed: false,
        };
        let clause = e.domain("na me", &DataType::Utf8, &domain).expect("pushed");
        assert_eq!(clause, "#n0 IN (:v0, :v1)");
        assert_eq!(e.names["#n0"], "na me");
        assert_eq!(e.values[":v0"], AttributeValue::S("a) OR (1=1".into()));
        let range = Domain {
            data_type: NUMBER,
            values: Values::Ranges(vec![Range {
                low: Some(Endpoint {
                    value: Value::Int(5),
                    inclusive: false,
                }),
                high: None,
            }]),
            null_allowed: true,
        };
        let clause = e.domain("n", &NUMBER, &range).expect("pushed");
        assert!(
            clause.starts_with("(((#n1 > :v2)) OR (attribute_not_exists(#n1)"),
            "{clause}"
        );
        // A text value against a number column is not pushed.
        let text = Domain {
            data_type: DataType::Utf8,
            values: Values::Set {
                values: vec![Value::Text("5".into())],
                white_list: true,
            },
            null_allowed: false,
        };
        assert!(e.domain("n", &NUMBER, &text).is_none());
    }

    #[test]
    fn keys_survive_a_split() {
        for v in [
            AttributeValue::S("a\"b".into()),
            AttributeValue::N("-1.5".into()),
            AttributeValue::B(Blob::new(vec![0, 255])),
        ] {
            assert_eq!(
                decode_key(&encode_key(&v).expect("key")).expect("decode"),
                v
            );
        }
        assert!(decode_key("{\"X\": 1}").is_err());
    }
}
