//! The Redis connector, in the shape of the SDK's Redis connector: Redis has no schema, so
//! tables are declared in a catalog (Glue or Quarry's own) with table properties:
//!
//! | property | meaning |
//! |---|---|
//! | `redis-endpoint` | `host:port` or `host:port:password` (required) |
//! | `redis-value-type` | `literal` (GET: the value is the first column), `hash` (HGETALL: fields are columns, matched ignoring case) or `zset` (one row per member, the member is the first column) |
//! | `redis-key-prefix` | comma-separated key patterns (`accounts-*`; a pattern without `*` is a prefix) |
//! | `redis-keys-zset` | instead of a prefix: comma-separated sorted sets (or patterns of them) whose members are the keys |
//! | `redis-db-number` | the logical database (default 0) |
//!
//! Every table gets a `_key_` column, the row's key. Splits are one per key pattern (read with
//! `SCAN MATCH .. COUNT 100`), or one per index range of each key set (at most 10 per set, read
//! with `ZRANGE`). Redis cannot filter values, so no constraint is pushed: the engine filters.
//! `redis-ssl-flag` and `redis-cluster-flag` are refused with a clear error.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{ArrayBuilder, ArrayRef, make_builder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use indexmap::IndexMap;
use quarry_catalog::{Catalog, Table};

use crate::connector::{Connector, Pushdown, SplitPage, TableLayout};
use crate::wire::TableName;
use crate::{Error, Result};

/// The key column every table gets.
pub const KEY_COLUMN: &str = "_key_";
/// The most splits one key set is cut into, as the SDK's connector does.
const MAX_SPLITS_PER_SET: u64 = 10;
/// Keys fetched per SCAN step.
const SCAN_COUNT: u64 = 100;
const BATCH_ROWS: usize = 8192;

/// Redis tables declared in `catalog`.
pub struct Redis {
    catalog: Arc<dyn Catalog>,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Redis")
    }
}

/// What a table's properties say.
struct Declared {
    table: Table,
    host: String,
    port: u16,
    password: Option<String>,
    db: i64,
    value_type: ValueType,
    keys: Keys,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ValueType {
    Literal,
    Hash,
    Zset,
}

enum Keys {
    Patterns(Vec<String>),
    Zsets(Vec<String>),
}

fn list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

impl Declared {
    fn of(table: Table) -> Result<Declared> {
        let name = table.qualified_name();
        let bad = |message: String| Error::Source {
            source_name: format!("redis table {name}"),
            message,
        };
        let p = &table.parameters;
        for flag in ["redis-ssl-flag", "redis-cluster-flag"] {
            if p.get(flag).is_some_and(|v| v.eq_ignore_ascii_case("true")) {
                return Err(bad(format!(
                    "{flag}=true is not supported yet; use a plain, single-node endpoint"
                )));
            }
        }
        let endpoint = p
            .get("redis-endpoint")
            .ok_or_else(|| bad("has no redis-endpoint property".into()))?;
        let mut parts = endpoint.splitn(3, ':');
        let host = parts.next().unwrap_or_default().to_owned();
        let port = parts
            .next()
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| bad("redis-endpoint must be host:port or host:port:password".into()))?;
        let password = parts.next().map(str::to_owned).filter(|p| !p.is_empty());
        let value_type = match p
            .get("redis-value-type")
            .map(|v| v.to_ascii_lowercase())
            .as_deref()
        {
            Some("literal") | None => ValueType::Literal,
            Some("hash") => ValueType::Hash,
            Some("zset") => ValueType::Zset,
            Some(other) => {
                return Err(bad(format!(
                    "redis-value-type '{other}' is not literal, hash or zset"
                )));
            }
        };
        let keys = match (p.get("redis-key-prefix"), p.get("redis-keys-zset")) {
            (Some(prefixes), None) => Keys::Patterns(
                list(prefixes)
                    .into_iter()
                    .map(|k| if k.contains('*') { k } else { format!("{k}*") })
                    .collect(),
            ),
            (None, Some(zsets)) => Keys::Zsets(list(zsets)),
            _ => {
                return Err(bad(
                    "needs exactly one of redis-key-prefix and redis-keys-zset".into(),
                ));
            }
        };
        let db = p.get("redis-db-number").map_or(Ok(0), |d| {
            d.parse()
                .map_err(|_| bad(format!("redis-db-number '{d}' is not a number")))
        })?;
        Ok(Declared {
            table,
            host,
            port,
            password,
            db,
            value_type,
            keys,
        })
    }

    fn endpoint(&self) -> String {
        format!("{}:{} (db {})", self.host, self.port, self.db)
    }

    /// The columns: the declared ones, then `_key_`.
    fn schema(&self) -> Result<SchemaRef> {
        let mut fields = Vec::with_capacity(self.table.storage.columns.len() + 1);
        for column in &self.table.storage.columns {
            let data_type = quarry_catalog::types::from_hive(&column.data_type).map_err(|_| {
                Error::UnsupportedType {
                    table: self.table.qualified_name(),
                    column: column.name.clone(),
                    data_type: column.data_type.clone(),
                    hint: String::new(),
                }
            })?;
            fields.push(Field::new(column.name.to_lowercase(), data_type, true));
        }
        fields.push(Field::new(KEY_COLUMN, DataType::Utf8, true));
        crate::types::to_wire_schema(&self.table.qualified_name(), &Schema::new(fields))
    }

    async fn connect(&self) -> Result<redis::aio::MultiplexedConnection> {
        use redis::IntoConnectionInfo;
        let mut settings = redis::RedisConnectionInfo::default().set_db(self.db);
        if let Some(password) = &self.password {
            settings = settings.set_password(password);
        }
        let info = redis::ConnectionAddr::Tcp(self.host.clone(), self.port)
            .into_connection_info()
            .map_err(|e| self.error("bad endpoint", &e))?
            .set_redis_settings(settings);
        let client = redis::Client::open(info).map_err(|e| self.error("cannot connect", &e))?;
        client
            .get_multiplexed_async_connection()
            .await
            .map_err(|e| self.error("cannot connect", &e))
    }

    fn error(&self, what: &str, e: &redis::RedisError) -> Error {
        Error::Source {
            source_name: format!("redis {}", self.endpoint()),
            message: format!("{what}: {e}"),
        }
    }
}

impl Redis {
    pub fn new(catalog: Arc<dyn Catalog>) -> Redis {
        Redis { catalog }
    }

    fn catalog_error(e: quarry_catalog::Error) -> Error {
        Error::Source {
            source_name: "redis table definitions".into(),
            message: e.to_string(),
        }
    }

    /// The tables of `database` that declare a Redis endpoint.
    async fn redis_tables(&self, database: &str) -> Result<Vec<Table>> {
        Ok(self
            .catalog
            .list_tables(database)
            .await
            .map_err(Self::catalog_error)?
            .into_iter()
            .filter(|t| t.parameters.contains_key("redis-endpoint"))
            .collect())
    }

    async fn declared(&self, table: &TableName) -> Result<Declared> {
        let found = self
            .catalog
            .get_table(&table.schema_name, &table.table_name)
            .await
            .map_err(Self::catalog_error)?
            .filter(|t| t.parameters.contains_key("redis-endpoint"))
            .ok_or_else(|| Error::Source {
                source_name: "redis".into(),
                message: format!("table {table} does not exist, or has no redis-endpoint property"),
            })?;
        Declared::of(found)
    }
}

/// Runs a Redis command, naming the key when it fails.
async fn run<T: redis::FromRedisValue>(
    declared: &Declared,
    con: &mut redis::aio::MultiplexedConnection,
    cmd: &redis::Cmd,
    what: &str,
) -> Result<T> {
    cmd.query_async(con)
        .await
        .map_err(|e| declared.error(what, &e))
}

#[async_trait]
impl Connector for Redis {
    fn source_type(&self) -> &'static str {
        "redis"
    }

    async fn list_schemas(&self) -> Result<Vec<String>> {
        let mut schemas = Vec::new();
        for db in self
            .catalog
            .list_databases()
            .await
            .map_err(Self::catalog_error)?
        {
            if !self.redis_tables(&db.name).await?.is_empty() {
                schemas.push(db.name);
            }
        }
        Ok(schemas)
    }

    async fn list_tables(
        &self,
        schema: Option<&str>,
        token: Option<&str>,
        page_size: Option<usize>,
    ) -> Result<(Vec<TableName>, Option<String>)> {
        let schemas = match schema {
            Some(s) => vec![s.to_owned()],
            None => self.list_schemas().await?,
        };
        let mut names = Vec::new();
        for s in schemas {
            for t in self.redis_tables(&s).await? {
                names.push(TableName::new(s.clone(), t.name));
            }
        }
        names.sort_by(|a, b| (&a.schema_name, &a.table_name).cmp(&(&b.schema_name, &b.table_name)));
        let start = token
            .and_then(|t| t.parse::<usize>().ok())
            .unwrap_or(0)
            .min(names.len());
        let end = page_size.map_or(names.len(), |p| (start + p).min(names.len()));
        let next = (end < names.len()).then(|| end.to_string());
        Ok((names[start..end].to_vec(), next))
    }

    async fn get_table(&self, table: &TableName) -> Result<TableLayout> {
        let declared = self.declared(table).await?;
        Ok(TableLayout {
            schema: declared.schema()?,
            partition_columns: Vec::new(),
        })
    }

    async fn splits(
        &self,
        table: &TableName,
        _partitions: &RecordBatch,
        _pushdown: &Pushdown,
        token: Option<&str>,
    ) -> Result<SplitPage> {
        if token.is_some() {
            return Ok(SplitPage::default());
        }
        let declared = self.declared(table).await?;
        let mut splits = Vec::new();
        match &declared.keys {
            Keys::Patterns(patterns) => {
                for pattern in patterns {
                    splits.push(IndexMap::from([("pattern".to_owned(), pattern.clone())]));
                }
            }
            Keys::Zsets(sets) => {
                let mut con = declared.connect().await?;
                for set_pattern in sets {
                    for set in scan_keys(&declared, &mut con, set_pattern).await? {
                        let size: u64 = run(
                            &declared,
                            &mut con,
                            redis::cmd("ZCARD").arg(&set),
                            &format!("ZCARD {set}"),
                        )
                        .await?;
                        if size == 0 {
                            continue;
                        }
                        let parts = size.min(MAX_SPLITS_PER_SET);
                        let width = size.div_ceil(parts);
                        let mut start = 0;
                        while start < size {
                            let end = (start + width).min(size) - 1;
                            splits.push(IndexMap::from([
                                ("zset".to_owned(), set.clone()),
                                ("start".to_owned(), start.to_string()),
                                ("end".to_owned(), end.to_string()),
                            ]));
                            start = end + 1;
                        }
                    }
                }
            }
        }
        Ok(SplitPage {
            splits,
            continuation: None,
        })
    }

    async fn read(
        &self,
        table: &TableName,
        schema: &SchemaRef,
        split: &IndexMap<String, String>,
        _pushdown: &Pushdown,
    ) -> Result<Vec<RecordBatch>> {
        let declared = self.declared(table).await?;
        let mut con = declared.connect().await?;
        let keys = if let Some(pattern) = split.get("pattern") {
            scan_keys(&declared, &mut con, pattern).await?
        } else if let Some(set) = split.get("zset") {
            let number = |k: &str| {
                split
                    .get(k)
                    .and_then(|v| v.parse::<i64>().ok())
                    .ok_or_else(|| Error::Protocol {
                        what: "split".into(),
                        message: format!("{k} is not a number"),
                    })
            };
            let (start, end) = (number("start")?, number("end")?);
            run(
                &declared,
                &mut con,
                redis::cmd("ZRANGE").arg(set).arg(start).arg(end),
                &format!("ZRANGE {set}"),
            )
            .await?
        } else {
            return Err(Error::Protocol {
                what: "split".into(),
                message: "neither a key pattern nor a key set".into(),
            });
        };
        // The declared value column (literal and zset): the first column other than `_key_`.
        let table_schema = declared.schema()?;
        let value_column = table_schema
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .find(|n| n != KEY_COLUMN);
        let mut rows = Rows::new(schema);
        for key in keys {
            match declared.value_type {
                ValueType::Literal => {
                    let value: Option<Vec<u8>> = run(
                        &declared,
                        &mut con,
                        redis::cmd("GET").arg(&key),
                        &format!("GET {key}"),
                    )
                    .await?;
                    let Some(value) = value else { continue };
                    let mut fields = HashMap::new();
                    if let Some(column) = &value_column {
                        fields.insert(column.clone(), value);
                    }
                    rows.push(&key, &fields, &declared)?;
                }
                ValueType::Hash => {
                    let hash: Vec<(Vec<u8>, Vec<u8>)> = run(
                        &declared,
                        &mut con,
                        redis::cmd("HGETALL").arg(&key),
                        &format!("HGETALL {key}"),
                    )
                    .await?;
                    if hash.is_empty() {
                        continue;
                    }
                    let fields: HashMap<String, Vec<u8>> = hash
                        .into_iter()
                        .map(|(f, v)| (String::from_utf8_lossy(&f).to_lowercase(), v))
                        .collect();
                    rows.push(&key, &fields, &declared)?;
                }
                ValueType::Zset => {
                    let members: Vec<Vec<u8>> = run(
                        &declared,
                        &mut con,
                        redis::cmd("ZRANGE").arg(&key).arg(0).arg(-1),
                        &format!("ZRANGE {key}"),
                    )
                    .await?;
                    for member in members {
                        let mut fields = HashMap::new();
                        if let Some(column) = &value_column {
                            fields.insert(column.clone(), member);
                        }
                        rows.push(&key, &fields, &declared)?;
                    }
                }
            }
        }
        rows.finish()
    }
}

/// Every key matching `pattern`, by SCAN (never KEYS, which blocks the server).
async fn scan_keys(
    declared: &Declared,
    con: &mut redis::aio::MultiplexedConnection,
    pattern: &str,
) -> Result<Vec<String>> {
    let mut keys = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, batch): (u64, Vec<String>) = run(
            declared,
            con,
            redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(SCAN_COUNT),
            &format!("SCAN MATCH {pattern}"),
        )
        .await?;
        keys.extend(batch);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    keys.sort();
    keys.dedup();
    Ok(keys)
}

/// Rows being built: text from Redis converted to each column's type.
struct Rows {
    schema: SchemaRef,
    builders: Vec<Box<dyn ArrayBuilder>>,
    batches: Vec<RecordBatch>,
    rows: usize,
}

impl Rows {
    fn new(schema: &SchemaRef) -> Rows {
        Rows {
            schema: Arc::clone(schema),
            builders: schema
                .fields()
                .iter()
                .map(|f| make_builder(f.data_type(), BATCH_ROWS))
                .collect(),
            batches: Vec::new(),
            rows: 0,
        }
    }

    fn push(
        &mut self,
        key: &str,
        fields: &HashMap<String, Vec<u8>>,
        declared: &Declared,
    ) -> Result<()> {
        for (builder, field) in self.builders.iter_mut().zip(self.schema.fields()) {
            let text = if field.name() == KEY_COLUMN {
                Some(key.to_owned())
            } else {
                fields
                    .get(field.name())
                    .map(|v| String::from_utf8_lossy(v).into_owned())
            };
            crate::text::append(builder.as_mut(), field.data_type(), text.as_deref()).map_err(
                |message| Error::Value {
                    table: declared.table.qualified_name(),
                    column: field.name().clone(),
                    data_type: field.data_type().to_string(),
                    message: format!("key {key}: {message}"),
                },
            )?;
        }
        self.rows += 1;
        if self.rows == BATCH_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        let columns: Vec<ArrayRef> = self.builders.iter_mut().map(|b| b.finish()).collect();
        self.batches
            .push(crate::batch(&self.schema, columns, self.rows, "rows")?);
        self.rows = 0;
        Ok(())
    }

    fn finish(mut self) -> Result<Vec<RecordBatch>> {
        if self.rows > 0 || self.batches.is_empty() {
            self.flush()?;
        }
        Ok(self.batches)
    }
}
