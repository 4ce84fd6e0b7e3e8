//! The PostgreSQL connector: tokio-postgres over rustls, in the shape of the SDK's JDBC
//! connector.
//!
//! - Schemas are PostgreSQL schemas; tables are tables, views and materialized views.
//! - Types: `bool`, `int2/4/8`, `float4/8`, `numeric(p,s)` → `decimal(p,s)` (unconstrained
//!   `numeric` → `decimal(38,18)`, rounded half-even beyond 18 places), text types, `uuid`,
//!   `json(b)`, `xml`, `inet`, enums and other string-like types → `varchar`, `bytea` →
//!   `varbinary`, `date`, `timestamp` / `timestamptz` → Athena's `timestamp` (milliseconds, UTC),
//!   one-dimensional arrays of those → `array`. Any other type is an error naming the column.
//! - Partitions: one per child table (`pg_inherits`), as the pseudo-columns
//!   `partition_schema_name` and `partition_name`; a table without children is one partition
//!   `*`, split into ranges of its integer primary key when it is large.
//! - Pushdown: every value set becomes SQL with **bound parameters** and quoted identifiers,
//!   never text spliced from a request; text compares in the `C` collation (byte order, as the
//!   engine compares); LIMIT is pushed only when every constraint was.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{
    ArrayBuilder, ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Date64Builder,
    Decimal128Builder, Float32Builder, Float64Builder, Int16Builder, Int32Builder, Int64Builder,
    ListBuilder, StringBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use futures::{StreamExt, pin_mut};
use indexmap::IndexMap;
use tokio::sync::Mutex;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Row};

use crate::connector::{
    Connector, Pushdown, SplitPage, TableLayout, filter_and_limit_capabilities,
};
use crate::constraints::{Domain, Value, Values};
use crate::decimal::{parse as parse_numeric, text as decimal_text};
use crate::wire::{OptimizationSubType, TableName};
use crate::{Error, Result};

/// The pseudo-columns of the partitions block, as the SDK's PostgreSQL connector names them.
pub const PARTITION_SCHEMA: &str = "partition_schema_name";
pub const PARTITION_NAME: &str = "partition_name";
/// Rows per Arrow batch read from PostgreSQL.
const BATCH_ROWS: usize = 8192;
/// Splits per GetSplits page, as the SDK's connectors page.
const SPLITS_PER_PAGE: usize = 1000;
/// A table without partitions is cut into primary-key ranges of about this many rows, at most
/// [`MAX_RANGES`] of them (the SDK's DEFAULT_NUM_SPLITS).
const ROWS_PER_RANGE: f64 = 250_000.0;
const MAX_RANGES: i64 = 20;
/// Idle connections kept per connector.
const IDLE_CONNECTIONS: usize = 4;

/// A PostgreSQL database behind the federation protocol.
pub struct Postgres {
    config: tokio_postgres::Config,
    /// The URI without its password, for messages.
    display: String,
    idle: Mutex<Vec<Client>>,
    /// A table without partitions is cut into primary-key ranges of about this many rows.
    rows_per_range: f64,
    /// ..and of about this many bytes on disk, when set (a Lambda's answers fit inline then).
    bytes_per_range: Option<f64>,
}

impl std::fmt::Debug for Postgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Postgres({})", self.display)
    }
}

/// A connection URI as messages and listings show it: user, hosts, ports and database only,
/// rebuilt from the parsed settings, so no password (in the user info, a `password=` option or
/// a key/value string) can show.
pub fn redact(uri: &str) -> String {
    match tokio_postgres::Config::from_str(uri) {
        Ok(config) => display(&config),
        Err(_) => "(a connection string that does not parse; not shown)".to_owned(),
    }
}

fn display(config: &tokio_postgres::Config) -> String {
    use tokio_postgres::config::Host;
    let user = config.get_user().unwrap_or("");
    let secret = if config.get_password().is_some() {
        ":***"
    } else {
        ""
    };
    let ports = config.get_ports();
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let host = match h {
                // An '@' here is the rest of a password that itself held an '@'.
                Host::Tcp(name) if name.contains('@') => "(host not shown)".to_owned(),
                Host::Tcp(name) => name.clone(),
                Host::Unix(path) => path.display().to_string(),
            };
            match ports.get(i).or(ports.first()) {
                Some(port) => format!("{host}:{port}"),
                None => host,
            }
        })
        .collect();
    format!(
        "postgresql://{user}{secret}@{}/{}",
        hosts.join(","),
        config.get_dbname().unwrap_or("")
    )
}

/// TLS as libpq does it: `sslmode=prefer` / `require` encrypt without verifying the server's
/// certificate (RDS and self-signed servers connect, as with psql); with `PGSSLROOTCERT` set
/// (libpq's variable) to a PEM file of CA certificates, or to `system` for the system's, the
/// certificate and host name are verified against them.
fn tls_config() -> Result<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Source {
            source_name: "postgres".into(),
            message: format!("TLS set-up: {e}"),
        })?;
    let root = std::env::var("PGSSLROOTCERT")
        .ok()
        .filter(|v| !v.trim().is_empty());
    let Some(root) = root else {
        return Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(EncryptOnly(provider)))
            .with_no_client_auth());
    };
    let mut roots = rustls::RootCertStore::empty();
    if root == "system" {
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(cert);
        }
    } else {
        use rustls::pki_types::pem::PemObject;
        let certs =
            rustls::pki_types::CertificateDer::pem_file_iter(&root).map_err(|e| Error::Source {
                source_name: "postgres".into(),
                message: format!("PGSSLROOTCERT {root}: {e}"),
            })?;
        for cert in certs {
            let cert = cert.map_err(|e| Error::Source {
                source_name: "postgres".into(),
                message: format!("PGSSLROOTCERT {root}: {e}"),
            })?;
            roots.add(cert).map_err(|e| Error::Source {
                source_name: "postgres".into(),
                message: format!("PGSSLROOTCERT {root}: {e}"),
            })?;
        }
    }
    Ok(builder.with_root_certificates(roots).with_no_client_auth())
}

/// libpq's `sslmode=require`: the connection is encrypted and the handshake's signatures are
/// checked, but the certificate chain is not.
#[derive(Debug)]
struct EncryptOnly(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> std::result::Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

impl Postgres {
    /// A connector for a `postgresql://user[:password]@host[:port]/db[?sslmode=..]` URI (or a
    /// libpq key/value string). `sslmode=prefer` (the default) falls back to plain text when
    /// the server has no TLS, as libpq does. Certificates are checked only with `PGSSLROOTCERT`
    /// (a CA file, or `system`), as libpq's `sslmode=require` does not check them.
    pub fn new(uri: &str) -> Result<Postgres> {
        let mut config = tokio_postgres::Config::from_str(uri).map_err(|e| Error::Source {
            source_name: "postgres".into(),
            message: format!(
                "not a connection URI ({e}); write postgresql://user@host:5432/database"
            ),
        })?;
        let display = display(&config);
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        config.application_name("quarry");
        Ok(Postgres {
            config,
            display,
            idle: Mutex::new(Vec::new()),
            rows_per_range: ROWS_PER_RANGE,
            bytes_per_range: None,
        })
    }

    /// Cut tables without partitions into key ranges of about `rows` rows (by PostgreSQL's
    /// estimate), at most 20 (default 250,000).
    pub fn with_rows_per_split(mut self, rows: u64) -> Postgres {
        self.rows_per_range = (rows.max(1)) as f64;
        self
    }

    /// Also cut tables into key ranges of about `bytes` on disk (by PostgreSQL's page count):
    /// a connector Lambda sets this so that a split's answer fits in a Lambda response instead
    /// of spilling to S3.
    pub fn with_bytes_per_split(mut self, bytes: u64) -> Postgres {
        self.bytes_per_range = Some(bytes.max(1) as f64);
        self
    }

    fn source(&self) -> String {
        format!("postgres {}", self.display)
    }

    fn db_error(&self, what: &str, e: tokio_postgres::Error) -> Error {
        let detail = match e.as_db_error() {
            Some(db) => format!("{} ({})", db.message(), db.code().code()),
            None => crate::client::error_chain(&e),
        };
        Error::Source {
            source_name: self.source(),
            message: format!("{what}: {detail}"),
        }
    }

    async fn connect(&self) -> Result<Client> {
        if let Some(client) = self.idle.lock().await.pop()
            && !client.is_closed()
        {
            return Ok(client);
        }
        let tls_config = tls_config()?;
        let tls = tokio_postgres_rustls::MakeRustlsConnect::new(tls_config);
        let (client, connection) = self
            .config
            .connect(tls)
            .await
            .map_err(|e| self.db_error("cannot connect", e))?;
        tokio::spawn(async move {
            // The connection ends when the client is dropped; its errors surface on the client.
            let _ = connection.await;
        });
        Ok(client)
    }

    async fn release(&self, client: Client) {
        let mut idle = self.idle.lock().await;
        if idle.len() < IDLE_CONNECTIONS && !client.is_closed() {
            idle.push(client);
        }
    }

    async fn query(
        &self,
        what: &str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>> {
        let client = self.connect().await?;
        let rows = client
            .query(sql, params)
            .await
            .map_err(|e| self.db_error(what, e));
        self.release(client).await;
        rows
    }

    /// The table's real schema and name (names are matched exactly, then ignoring case).
    async fn resolve(&self, table: &TableName) -> Result<(String, String)> {
        let rows = self
            .query(
                &format!("looking up {table}"),
                "SELECT n.nspname::text, c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE lower(n.nspname) = lower($1) AND lower(c.relname) = lower($2) AND c.relkind IN ('r','v','m','p','f') \
                 ORDER BY (n.nspname = $1 AND c.relname = $2) DESC",
                &[&table.schema_name, &table.table_name],
            )
            .await?;
        let first = rows.first().ok_or_else(|| Error::Source {
            source_name: self.source(),
            message: format!("table {table} does not exist (or the user cannot see it)"),
        })?;
        Ok((first.get(0), first.get(1)))
    }

    async fn columns(&self, schema: &str, table: &str) -> Result<Vec<Column>> {
        let rows = self
            .query(
                &format!("reading the columns of {schema}.{table}"),
                "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), t.typname::text, t.typtype::text, \
                        t.typcategory::text, coalesce(et.typname::text, ''), coalesce(et.typtype::text, ''), \
                        coalesce(et.typcategory::text, ''), a.atttypmod, a.attndims \
                 FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
                 JOIN pg_type t ON t.oid = a.atttypid LEFT JOIN pg_type et ON et.oid = t.typelem AND t.typcategory = 'A' \
                 WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
                &[&schema, &table],
            )
            .await?;
        let mut columns = Vec::with_capacity(rows.len());
        for row in rows {
            let name: String = row.get(0);
            let formatted: String = row.get(1);
            let typname: String = row.get(2);
            let typtype: String = row.get(3);
            let category: String = row.get(4);
            let elem: String = row.get(5);
            let elem_type: String = row.get(6);
            let elem_category: String = row.get(7);
            let typmod: i32 = row.get(8);
            let kind = if category == "A" {
                scalar_kind(&elem, &elem_type, &elem_category, -1).map(|k| Kind::List(Box::new(k)))
            } else {
                scalar_kind(&typname, &typtype, &category, typmod)
            };
            let kind = kind.ok_or_else(|| Error::UnsupportedType {
                table: format!("{schema}.{table}"),
                column: name.clone(),
                data_type: formatted.clone(),
                hint: format!(
                    "; create a view that casts it (e.g. {}::text) and query the view",
                    quote(&name)
                ),
            })?;
            // Unconstrained `numeric` is read at 18 places: PostgreSQL rounds it, so that what the
            // engine sees and what a pushed comparison compares are the same value.
            let rounded = typname == "numeric" && typmod < 4;
            columns.push(Column {
                name,
                pg_type: formatted,
                kind,
                rounded,
            });
        }
        Ok(columns)
    }
}

/// How a PostgreSQL column is read and what Arrow type it becomes.
#[derive(Clone, Debug, PartialEq)]
enum Kind {
    Bool,
    I16,
    I32,
    I64,
    F32,
    F64,
    /// Read as text, kept at this precision and scale.
    Numeric(u8, i8),
    /// Text, or any type read through its text form (`col::text`).
    Text {
        cast: bool,
    },
    Bytes,
    Date,
    Timestamp,
    TimestampTz,
    List(Box<Kind>),
}

fn scalar_kind(typname: &str, typtype: &str, category: &str, typmod: i32) -> Option<Kind> {
    Some(match typname {
        "bool" => Kind::Bool,
        "int2" => Kind::I16,
        "int4" => Kind::I32,
        "int8" => Kind::I64,
        "float4" => Kind::F32,
        "float8" => Kind::F64,
        "numeric" => {
            if typmod < 4 {
                Kind::Numeric(38, 18)
            } else {
                let precision = ((typmod - 4) >> 16) & 0xffff;
                let scale = (typmod - 4) & 0xffff;
                let scale = i8::try_from(scale).ok().filter(|s| *s <= 38)?;
                Kind::Numeric(u8::try_from(precision.min(38)).ok()?, scale)
            }
        }
        "text" | "varchar" | "bpchar" | "name" | "char" | "citext" => Kind::Text {
            cast: typname != "text" && typname != "varchar",
        },
        "uuid" | "json" | "jsonb" | "xml" | "inet" | "cidr" | "macaddr" | "macaddr8" | "money"
        | "interval" | "time" | "timetz" | "bit" | "varbit" | "tsvector" | "oid" => {
            Kind::Text { cast: true }
        }
        "bytea" => Kind::Bytes,
        "date" => Kind::Date,
        "timestamp" => Kind::Timestamp,
        "timestamptz" => Kind::TimestampTz,
        _ if typtype == "e" => Kind::Text { cast: true },
        _ if category == "S" => Kind::Text { cast: true },
        _ => return None,
    })
}

impl Kind {
    fn data_type(&self) -> DataType {
        match self {
            Kind::Bool => DataType::Boolean,
            Kind::I16 => DataType::Int16,
            Kind::I32 => DataType::Int32,
            Kind::I64 => DataType::Int64,
            Kind::F32 => DataType::Float32,
            Kind::F64 => DataType::Float64,
            Kind::Numeric(p, s) => DataType::Decimal128(*p, *s),
            Kind::Text { .. } => DataType::Utf8,
            Kind::Bytes => DataType::Binary,
            Kind::Date => DataType::Date32,
            Kind::Timestamp | Kind::TimestampTz => DataType::Date64,
            Kind::List(item) => {
                DataType::List(Arc::new(Field::new("item", item.data_type(), true)))
            }
        }
    }

    /// The SELECT expression for a column of this kind.
    fn select(&self, column: &str) -> String {
        let q = quote(column);
        match self {
            Kind::Numeric(..) => format!("{q}::text"),
            Kind::Text { cast: true } => format!("{q}::text"),
            Kind::List(item) => match item.as_ref() {
                Kind::Numeric(..) | Kind::Text { .. } => format!("{q}::text[]"),
                _ => q,
            },
            _ => q,
        }
    }
}

#[derive(Clone, Debug)]
struct Column {
    name: String,
    pg_type: String,
    kind: Kind,
    /// An unconstrained `numeric`, read and compared as `round(col, 18)`.
    rounded: bool,
}

impl Column {
    /// The SELECT expression of the column.
    fn select(&self) -> String {
        if self.rounded {
            return format!("round({}, 18)::text", quote(&self.name));
        }
        self.kind.select(&self.name)
    }
}

/// A quoted identifier: `"` doubled inside, as PostgreSQL requires.
pub fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

type Param = Box<dyn ToSql + Sync + Send>;

/// SQL over bound parameters, built up clause by clause.
#[derive(Default)]
struct Sql {
    params: Vec<Param>,
}

impl Sql {
    fn bind(&mut self, value: Param, cast: &str) -> String {
        self.params.push(value);
        format!("${}::{cast}", self.params.len())
    }

    /// A parameter comparable with a column of `kind` (as the column expression `lhs` shows
    /// it), or `None` when the value cannot be compared there (the clause is then not pushed).
    fn value(&mut self, kind: &Kind, value: &Value) -> Option<String> {
        Some(match (kind, value) {
            (Kind::Bool, Value::Bool(b)) => self.bind(Box::new(*b), "bool"),
            (
                Kind::I16 | Kind::I32 | Kind::I64 | Kind::F32 | Kind::F64 | Kind::Numeric(..),
                Value::Int(i),
            ) => self.bind(Box::new(*i), "int8"),
            (
                Kind::I16 | Kind::I32 | Kind::I64 | Kind::F32 | Kind::F64 | Kind::Numeric(..),
                Value::Float(f),
            ) if f.is_finite() => self.bind(Box::new(*f), "float8"),
            (
                Kind::I16 | Kind::I32 | Kind::I64 | Kind::F32 | Kind::F64 | Kind::Numeric(..),
                Value::Decimal(v, s),
            ) => {
                format!(
                    "({})::numeric",
                    self.bind(Box::new(decimal_text(*v, *s)), "text")
                )
            }
            (Kind::Text { .. }, Value::Text(t)) => {
                format!("{} COLLATE \"C\"", self.bind(Box::new(t.clone()), "text"))
            }
            (Kind::Bytes, Value::Binary(b)) => self.bind(Box::new(b.clone()), "bytea"),
            (Kind::Date, Value::Date(d)) => {
                let date = NaiveDate::from_num_days_from_ce_opt(d.checked_add(719_163)?)?;
                self.bind(Box::new(date), "date")
            }
            (Kind::Timestamp, Value::Timestamp(us)) => {
                let ts = DateTime::<Utc>::from_timestamp_micros(*us)?.naive_utc();
                self.bind(Box::new(ts), "timestamp")
            }
            (Kind::TimestampTz, Value::Timestamp(us)) => {
                let ts = DateTime::<Utc>::from_timestamp_micros(*us)?;
                self.bind(Box::new(ts), "timestamptz")
            }
            _ => return None,
        })
    }

    /// The WHERE clause of one column's domain, or `None` when it cannot be pushed (and then
    /// no parameter of it stays bound).
    fn domain(&mut self, column: &Column, domain: &Domain) -> Option<String> {
        let mark = self.params.len();
        let clause = match &column.kind {
            Kind::Timestamp | Kind::TimestampTz => {
                millisecond_ranges(domain).and_then(|d| self.domain_clause(column, &d))
            }
            _ => self.domain_clause(column, domain),
        };
        if clause.is_none() {
            self.params.truncate(mark);
        }
        clause
    }

    fn domain_clause(&mut self, column: &Column, domain: &Domain) -> Option<String> {
        let q = quote(&column.name);
        let lhs = match &column.kind {
            Kind::Text { .. } => format!("{q}::text COLLATE \"C\""),
            Kind::List(_) => return None,
            _ if column.rounded => format!("round({q}, 18)"),
            _ => q.clone(),
        };
        let nulls = if domain.null_allowed {
            format!(" OR {q} IS NULL")
        } else {
            String::new()
        };
        let clause = match &domain.values {
            Values::AllOrNone(true) if domain.null_allowed => return Some("TRUE".into()),
            Values::AllOrNone(true) => format!("{q} IS NOT NULL"),
            Values::AllOrNone(false) if domain.null_allowed => format!("{q} IS NULL"),
            Values::AllOrNone(false) => "FALSE".into(),
            Values::Set { values, white_list } => {
                let mut items = Vec::with_capacity(values.len());
                for v in values {
                    items.push(self.value(&column.kind, v)?);
                }
                match (items.is_empty(), white_list) {
                    (true, true) => format!("(FALSE{nulls})"),
                    (true, false) => format!("({q} IS NOT NULL{nulls})"),
                    (false, true) => format!("({lhs} IN ({}){nulls})", items.join(", ")),
                    (false, false) => format!("({lhs} NOT IN ({}){nulls})", items.join(", ")),
                }
            }
            Values::Ranges(ranges) => {
                let mut parts = Vec::with_capacity(ranges.len());
                for range in ranges {
                    match (&range.low, &range.high) {
                        (Some(low), Some(high))
                            if low.inclusive && high.inclusive && low.value == high.value =>
                        {
                            parts
                                .push(format!("{lhs} = {}", self.value(&column.kind, &low.value)?));
                        }
                        (low, high) => {
                            let mut bounds = Vec::new();
                            if let Some(low) = low {
                                let op = if low.inclusive { ">=" } else { ">" };
                                bounds.push(format!(
                                    "{lhs} {op} {}",
                                    self.value(&column.kind, &low.value)?
                                ));
                            }
                            if let Some(high) = high {
                                let op = if high.inclusive { "<=" } else { "<" };
                                bounds.push(format!(
                                    "{lhs} {op} {}",
                                    self.value(&column.kind, &high.value)?
                                ));
                            }
                            if bounds.is_empty() {
                                bounds.push(format!("{q} IS NOT NULL"));
                            }
                            parts.push(format!("({})", bounds.join(" AND ")));
                        }
                    }
                }
                if parts.is_empty() {
                    format!("(FALSE{nulls})")
                } else {
                    format!("({}{nulls})", parts.join(" OR "))
                }
            }
        };
        Some(clause)
    }
}

#[async_trait]
impl Connector for Postgres {
    fn source_type(&self) -> &'static str {
        "postgres"
    }

    fn capabilities(&self) -> IndexMap<String, Vec<OptimizationSubType>> {
        filter_and_limit_capabilities()
    }

    async fn list_schemas(&self) -> Result<Vec<String>> {
        let rows = self
            .query(
                "listing schemas",
                "SELECT nspname::text FROM pg_namespace WHERE nspname NOT IN ('pg_catalog', 'information_schema') \
                 AND nspname NOT LIKE 'pg\\_toast%' AND nspname NOT LIKE 'pg\\_temp%' ORDER BY 1",
                &[],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| r.get::<_, String>(0).to_lowercase())
            .collect())
    }

    async fn list_tables(
        &self,
        schema: Option<&str>,
        token: Option<&str>,
        page_size: Option<usize>,
    ) -> Result<(Vec<TableName>, Option<String>)> {
        let limit = page_size.map_or(i64::MAX, |n| i64::try_from(n).unwrap_or(i64::MAX));
        // The token is the last "schema.table" of the previous page (both parts quoted).
        let after = token.unwrap_or("");
        let rows = self
            .query(
                "listing tables",
                "SELECT n.nspname::text, c.relname::text, quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS k \
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE c.relkind IN ('r','v','m','p','f') AND NOT c.relispartition \
                   AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' \
                   AND ($1::text IS NULL OR lower(n.nspname) = lower($1::text)) \
                   AND quote_ident(n.nspname) || '.' || quote_ident(c.relname) > $2::text \
                 ORDER BY k LIMIT $3::int8",
                &[&schema, &after, &limit.saturating_add(1)],
            )
            .await?;
        let more = i64::try_from(rows.len()).unwrap_or(i64::MAX) > limit;
        let page: Vec<&Row> = rows
            .iter()
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .collect();
        let next = if more {
            page.last().map(|r| r.get::<_, String>(2))
        } else {
            None
        };
        Ok((
            page.iter()
                .map(|r| {
                    TableName::new(
                        r.get::<_, String>(0).to_lowercase(),
                        r.get::<_, String>(1).to_lowercase(),
                    )
                })
                .collect(),
            next,
        ))
    }

    async fn get_table(&self, table: &TableName) -> Result<TableLayout> {
        let (schema, name) = self.resolve(table).await?;
        let columns = self.columns(&schema, &name).await?;
        let mut fields: Vec<Field> = columns
            .iter()
            .map(|c| Field::new(c.name.to_lowercase(), c.kind.data_type(), true))
            .collect();
        fields.push(Field::new(PARTITION_SCHEMA, DataType::Utf8, true));
        fields.push(Field::new(PARTITION_NAME, DataType::Utf8, true));
        Ok(TableLayout {
            schema: Arc::new(Schema::new(fields)),
            partition_columns: vec![PARTITION_SCHEMA.to_owned(), PARTITION_NAME.to_owned()],
        })
    }

    async fn partitions(
        &self,
        table: &TableName,
        _layout: &TableLayout,
        _pushdown: &Pushdown,
    ) -> Result<RecordBatch> {
        let (schema, name) = self.resolve(table).await?;
        let rows = self
            .query(
                &format!("listing the partitions of {table}"),
                "SELECT cn.nspname::text, c.relname::text FROM pg_inherits i \
                 JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_namespace cn ON cn.oid = c.relnamespace \
                 JOIN pg_class p ON p.oid = i.inhparent JOIN pg_namespace pn ON pn.oid = p.relnamespace \
                 WHERE pn.nspname = $1 AND p.relname = $2 AND c.relkind IN ('r','m','f','p') ORDER BY 1, 2",
                &[&schema, &name],
            )
            .await?;
        let (schemas, names): (Vec<String>, Vec<String>) = if rows.is_empty() {
            (vec!["*".into()], vec!["*".into()])
        } else {
            rows.iter()
                .map(|r| (r.get::<_, String>(0), r.get::<_, String>(1)))
                .unzip()
        };
        let schema_ref = Arc::new(Schema::new(vec![
            Field::new(PARTITION_SCHEMA, DataType::Utf8, true),
            Field::new(PARTITION_NAME, DataType::Utf8, true),
        ]));
        RecordBatch::try_new(
            schema_ref,
            vec![
                Arc::new(arrow::array::StringArray::from(schemas)) as ArrayRef,
                Arc::new(arrow::array::StringArray::from(names)) as ArrayRef,
            ],
        )
        .map_err(|source| Error::Arrow {
            what: "partitions".into(),
            source,
        })
    }

    async fn splits(
        &self,
        table: &TableName,
        partitions: &RecordBatch,
        _pushdown: &Pushdown,
        token: Option<&str>,
    ) -> Result<SplitPage> {
        let column = |name: &str| -> Result<Vec<String>> {
            let index = partitions
                .schema()
                .index_of(name)
                .map_err(|_| Error::Protocol {
                    what: "GetSplits partitions".into(),
                    message: format!("no {name} column"),
                })?;
            let array = partitions.column(index);
            (0..partitions.num_rows())
                .map(|row| {
                    crate::constraints::value_at(array, row)
                        .map_err(|message| Error::Protocol {
                            what: "GetSplits partitions".into(),
                            message,
                        })
                        .map(|v| match v {
                            Some(Value::Text(t)) => t,
                            _ => String::new(),
                        })
                })
                .collect()
        };
        let schemas = column(PARTITION_SCHEMA)?;
        let names = column(PARTITION_NAME)?;
        let start: usize = token.and_then(|t| t.parse().ok()).unwrap_or(0);
        let mut splits = Vec::new();
        if schemas.len() == 1 && names[0] == "*" {
            if start == 0 {
                splits = self.range_splits(table).await?;
            }
            return Ok(SplitPage {
                splits,
                continuation: None,
            });
        }
        for (s, n) in schemas.iter().zip(&names).skip(start).take(SPLITS_PER_PAGE) {
            splits.push(IndexMap::from([
                (PARTITION_SCHEMA.to_owned(), s.clone()),
                (PARTITION_NAME.to_owned(), n.clone()),
            ]));
        }
        let next = start + splits.len();
        Ok(SplitPage {
            splits,
            continuation: (next < schemas.len()).then(|| next.to_string()),
        })
    }

    async fn read(
        &self,
        table: &TableName,
        schema: &SchemaRef,
        split: &IndexMap<String, String>,
        pushdown: &Pushdown,
    ) -> Result<Vec<RecordBatch>> {
        let (table_schema, table_name) = self.resolve(table).await?;
        let columns = self.columns(&table_schema, &table_name).await?;
        let by_name = |name: &str| columns.iter().find(|c| c.name.to_lowercase() == name);
        // What to select, per output column: a table column, or a partition pseudo-column.
        let mut selected: Vec<Option<&Column>> = Vec::with_capacity(schema.fields().len());
        for field in schema.fields() {
            match by_name(field.name()) {
                Some(c) => selected.push(Some(c)),
                None if field.name() == PARTITION_SCHEMA || field.name() == PARTITION_NAME => {
                    selected.push(None)
                }
                None => {
                    return Err(Error::Source {
                        source_name: self.source(),
                        message: format!("{table} has no column {}", field.name()),
                    });
                }
            }
        }
        let mut sql = Sql::default();
        let mut clauses = Vec::new();
        let mut every_constraint_pushed = true;
        for (name, domain) in &pushdown.domains {
            match by_name(name).and_then(|c| sql.domain(c, domain)) {
                Some(clause) => clauses.push(clause),
                None => every_constraint_pushed = false,
            }
        }
        let from = match (split.get(PARTITION_SCHEMA), split.get(PARTITION_NAME)) {
            (Some(s), Some(n)) if n != "*" => format!("{}.{}", quote(s), quote(n)),
            _ => format!("{}.{}", quote(&table_schema), quote(&table_name)),
        };
        if let Some(pk) = split.get("pk_column") {
            // A split of a key range whose key is gone would read the whole table, once per split.
            if by_name(&pk.to_lowercase()).is_none() {
                return Err(Error::Source {
                    source_name: self.source(),
                    message: format!(
                        "{table} no longer has its key column {pk}; run the query again"
                    ),
                });
            }
            let parse = |key: &str| -> Result<Option<i64>> {
                split
                    .get(key)
                    .map(|v| {
                        v.parse::<i64>().map_err(|_| Error::Protocol {
                            what: "split".into(),
                            message: format!("{key} is not an integer"),
                        })
                    })
                    .transpose()
            };
            if let Some(from_value) = parse("pk_from")? {
                clauses.push(format!(
                    "{} >= {}",
                    quote(pk),
                    sql.bind(Box::new(from_value), "int8")
                ));
            }
            if let Some(to_value) = parse("pk_to")? {
                clauses.push(format!(
                    "{} < {}",
                    quote(pk),
                    sql.bind(Box::new(to_value), "int8")
                ));
            }
        }
        let select_list: Vec<String> = selected.iter().flatten().map(|c| c.select()).collect();
        let mut text = format!(
            "SELECT {} FROM {from}",
            if select_list.is_empty() {
                "NULL".to_owned()
            } else {
                select_list.join(", ")
            }
        );
        if !clauses.is_empty() {
            text.push_str(" WHERE ");
            text.push_str(&clauses.join(" AND "));
        }
        if let (Some(limit), true) = (pushdown.limit, every_constraint_pushed) {
            text.push_str(&format!(" LIMIT {limit}"));
        }
        let client = self.connect().await?;
        let result = self
            .stream_rows(&client, &text, sql.params, schema, &selected, split, table)
            .await;
        self.release(client).await;
        result
    }
}

impl Postgres {
    /// Cuts a table without partitions into ranges of its single-column integer primary key
    /// when it is large enough to pay; otherwise one split.
    async fn range_splits(&self, table: &TableName) -> Result<Vec<IndexMap<String, String>>> {
        let whole = || {
            vec![IndexMap::from([
                (PARTITION_SCHEMA.to_owned(), "*".to_owned()),
                (PARTITION_NAME.to_owned(), "*".to_owned()),
            ])]
        };
        let (schema, name) = self.resolve(table).await?;
        let rows = self
            .query(
                &format!("finding the primary key of {table}"),
                "SELECT a.attname::text, c.reltuples::float8, c.relpages::float8 * 8192 FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid \
                 JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = i.indkey[0] \
                 WHERE n.nspname = $1 AND c.relname = $2 AND i.indisprimary AND i.indnatts = 1 \
                   AND a.atttypid IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype)",
                &[&schema, &name],
            )
            .await?;
        let Some(row) = rows.first() else {
            return Ok(whole());
        };
        let pk: String = row.get(0);
        let estimate: f64 = row.get(1);
        let on_disk: f64 = row.get(2);
        let by_rows = (estimate / self.rows_per_range).ceil();
        let by_bytes = self.bytes_per_range.map_or(0.0, |b| (on_disk / b).ceil());
        let ranges = (by_rows.max(by_bytes) as i64).clamp(1, MAX_RANGES);
        if ranges < 2 {
            return Ok(whole());
        }
        let bounds = self
            .query(
                &format!("reading the key range of {table}"),
                &format!(
                    "SELECT min({0})::int8, max({0})::int8 FROM {1}.{2}",
                    quote(&pk),
                    quote(&schema),
                    quote(&name)
                ),
                &[],
            )
            .await?;
        let (Some(low), Some(high)) = (
            bounds[0].get::<_, Option<i64>>(0),
            bounds[0].get::<_, Option<i64>>(1),
        ) else {
            return Ok(whole());
        };
        let width = ((i128::from(high) - i128::from(low)) / i128::from(ranges)).max(1);
        let mut splits = Vec::new();
        for i in 0..ranges {
            let mut properties = whole().remove(0);
            properties.insert("pk_column".into(), pk.clone());
            if i > 0 {
                properties.insert(
                    "pk_from".into(),
                    (i128::from(low) + width * i128::from(i)).to_string(),
                );
            }
            if i < ranges - 1 {
                properties.insert(
                    "pk_to".into(),
                    (i128::from(low) + width * i128::from(i + 1)).to_string(),
                );
            }
            splits.push(properties);
        }
        Ok(splits)
    }

    #[allow(clippy::too_many_arguments)]
    async fn stream_rows(
        &self,
        client: &Client,
        sql: &str,
        params: Vec<Param>,
        schema: &SchemaRef,
        selected: &[Option<&Column>],
        split: &IndexMap<String, String>,
        table: &TableName,
    ) -> Result<Vec<RecordBatch>> {
        let refs: Vec<&(dyn ToSql + Sync)> = params
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect();
        let stream = client
            .query_raw(sql, refs)
            .await
            .map_err(|e| self.db_error(&format!("reading {table}"), e))?;
        pin_mut!(stream);
        let mut batches = Vec::new();
        let mut builders = new_builders(selected);
        let mut rows = 0usize;
        let mut row_number = 0u64;
        while let Some(row) = stream.next().await {
            let row = row.map_err(|e| self.db_error(&format!("reading {table}"), e))?;
            row_number += 1;
            let mut index = 0;
            for (builder, column) in builders.iter_mut().zip(selected) {
                if let Some(column) = column {
                    append(builder, &column.kind, &row, index).map_err(|message| Error::Value {
                        table: table.to_string(),
                        column: column.name.clone(),
                        data_type: column.pg_type.clone(),
                        message: format!("row {row_number}: {message}"),
                    })?;
                    index += 1;
                }
            }
            rows += 1;
            if rows == BATCH_ROWS {
                batches.push(finish(schema, &mut builders, selected, split, rows)?);
                rows = 0;
            }
        }
        if rows > 0 || batches.is_empty() {
            batches.push(finish(schema, &mut builders, selected, split, rows)?);
        }
        Ok(batches)
    }
}

fn new_builders(selected: &[Option<&Column>]) -> Vec<Box<dyn ArrayBuilder>> {
    selected
        .iter()
        .map(|c| match c {
            Some(c) => builder(&c.kind),
            None => Box::new(StringBuilder::new()) as Box<dyn ArrayBuilder>,
        })
        .collect()
}

fn builder(kind: &Kind) -> Box<dyn ArrayBuilder> {
    match kind {
        Kind::Bool => Box::new(BooleanBuilder::new()),
        Kind::I16 => Box::new(Int16Builder::new()),
        Kind::I32 => Box::new(Int32Builder::new()),
        Kind::I64 => Box::new(Int64Builder::new()),
        Kind::F32 => Box::new(Float32Builder::new()),
        Kind::F64 => Box::new(Float64Builder::new()),
        Kind::Numeric(p, s) => {
            Box::new(Decimal128Builder::new().with_data_type(DataType::Decimal128(*p, *s)))
        }
        Kind::Text { .. } => Box::new(StringBuilder::new()),
        Kind::Bytes => Box::new(BinaryBuilder::new()),
        Kind::Date => Box::new(Date32Builder::new()),
        Kind::Timestamp | Kind::TimestampTz => Box::new(Date64Builder::new()),
        Kind::List(item) => match item.as_ref() {
            Kind::Bool => Box::new(ListBuilder::new(BooleanBuilder::new())),
            Kind::I16 => Box::new(ListBuilder::new(Int16Builder::new())),
            Kind::I32 => Box::new(ListBuilder::new(Int32Builder::new())),
            Kind::I64 => Box::new(ListBuilder::new(Int64Builder::new())),
            Kind::F32 => Box::new(ListBuilder::new(Float32Builder::new())),
            Kind::F64 => Box::new(ListBuilder::new(Float64Builder::new())),
            Kind::Numeric(p, s) => Box::new(ListBuilder::new(
                Decimal128Builder::new().with_data_type(DataType::Decimal128(*p, *s)),
            )),
            Kind::Date => Box::new(ListBuilder::new(Date32Builder::new())),
            Kind::Timestamp | Kind::TimestampTz => Box::new(ListBuilder::new(Date64Builder::new())),
            Kind::Bytes => Box::new(ListBuilder::new(BinaryBuilder::new())),
            _ => Box::new(ListBuilder::new(StringBuilder::new())),
        },
    }
}

fn downcast<T: 'static>(
    builder: &mut Box<dyn ArrayBuilder>,
) -> std::result::Result<&mut T, String> {
    builder
        .as_any_mut()
        .downcast_mut::<T>()
        .ok_or_else(|| "internal: builder of another type".to_owned())
}

fn get<'a, T: tokio_postgres::types::FromSql<'a>>(
    row: &'a Row,
    index: usize,
) -> std::result::Result<Option<T>, String> {
    row.try_get::<_, Option<T>>(index)
        .map_err(|e| crate::client::error_chain(&e))
}

/// A timestamp domain as bounds on the column itself (so an index serves them): the engine sees
/// timestamps cut to milliseconds, and `trunc_ms(col) >= v` is `col >= ceil_ms(v)`, `> v` is
/// `col >= floor_ms(v) + 1 ms`, `<= v` is `col < floor_ms(v) + 1 ms`, `< v` is `col < ceil_ms(v)`.
/// Every bound becomes `>=` or `<`. `None` for value sets this cannot express (a black list).
fn millisecond_ranges(domain: &Domain) -> Option<Domain> {
    use crate::constraints::{Endpoint, Range};
    let ranges: Vec<Range> = match &domain.values {
        Values::Ranges(r) => r.clone(),
        Values::Set {
            values,
            white_list: true,
        } => values.iter().cloned().map(Range::single).collect(),
        Values::Set {
            white_list: false, ..
        } => return None,
        Values::AllOrNone(_) => return Some(domain.clone()),
    };
    let floor = |us: i64| us.div_euclid(1000).checked_mul(1000);
    let ceil = |us: i64| us.checked_add(999).map(|v| v.div_euclid(1000) * 1000);
    let micros = |v: &Value| match v {
        Value::Timestamp(us) => Some(*us),
        _ => None,
    };
    let mut out = Vec::with_capacity(ranges.len());
    for range in ranges {
        let low = match &range.low {
            None => None,
            Some(e) => {
                let us = micros(&e.value)?;
                let bound = if e.inclusive {
                    ceil(us)?
                } else {
                    floor(us)?.checked_add(1000)?
                };
                Some(Endpoint {
                    value: Value::Timestamp(bound),
                    inclusive: true,
                })
            }
        };
        let high = match &range.high {
            None => None,
            Some(e) => {
                let us = micros(&e.value)?;
                let bound = if e.inclusive {
                    floor(us)?.checked_add(1000)?
                } else {
                    ceil(us)?
                };
                Some(Endpoint {
                    value: Value::Timestamp(bound),
                    inclusive: false,
                })
            }
        };
        out.push(Range { low, high });
    }
    Some(Domain {
        data_type: domain.data_type.clone(),
        values: Values::Ranges(out),
        null_allowed: domain.null_allowed,
    })
}

fn ok<T>(value: T) -> std::result::Result<T, String> {
    Ok(value)
}

fn date_days(date: NaiveDate) -> i32 {
    date.signed_duration_since(NaiveDate::default()).num_days() as i32
}

fn append(
    builder: &mut Box<dyn ArrayBuilder>,
    kind: &Kind,
    row: &Row,
    i: usize,
) -> std::result::Result<(), String> {
    macro_rules! simple {
        ($b:ty, $t:ty) => {
            downcast::<$b>(builder)?.append_option(get::<$t>(row, i)?)
        };
    }
    macro_rules! list {
        ($b:ty, $t:ty, $map:expr) => {{
            let value: Option<Vec<Option<$t>>> = get(row, i)?;
            let list = downcast::<ListBuilder<$b>>(builder)?;
            match value {
                Some(items) => {
                    for item in items {
                        let mapped = match item {
                            Some(v) => Some($map(v)?),
                            None => None,
                        };
                        list.values().append_option(mapped);
                    }
                    list.append(true);
                }
                None => list.append(false),
            }
        }};
    }
    match kind {
        Kind::Bool => simple!(BooleanBuilder, bool),
        Kind::I16 => simple!(Int16Builder, i16),
        Kind::I32 => simple!(Int32Builder, i32),
        Kind::I64 => simple!(Int64Builder, i64),
        Kind::F32 => simple!(Float32Builder, f32),
        Kind::F64 => simple!(Float64Builder, f64),
        Kind::Numeric(_, s) => {
            let text: Option<String> = get(row, i)?;
            let value = text
                .map(|t| {
                    parse_numeric(&t, *s).ok_or_else(|| format!("{t} does not fit decimal(38,{s})"))
                })
                .transpose()?;
            downcast::<Decimal128Builder>(builder)?.append_option(value);
        }
        Kind::Text { .. } => {
            let value: Option<String> = get(row, i)?;
            downcast::<StringBuilder>(builder)?.append_option(value);
        }
        Kind::Bytes => {
            let value: Option<Vec<u8>> = get(row, i)?;
            downcast::<BinaryBuilder>(builder)?.append_option(value);
        }
        Kind::Date => {
            let value: Option<NaiveDate> = get(row, i)?;
            downcast::<Date32Builder>(builder)?.append_option(value.map(date_days));
        }
        Kind::Timestamp => {
            let value: Option<NaiveDateTime> = get(row, i)?;
            downcast::<Date64Builder>(builder)?
                .append_option(value.map(|t| t.and_utc().timestamp_millis()));
        }
        Kind::TimestampTz => {
            let value: Option<DateTime<Utc>> = get(row, i)?;
            downcast::<Date64Builder>(builder)?.append_option(value.map(|t| t.timestamp_millis()));
        }
        Kind::List(item) => match item.as_ref() {
            Kind::Bool => list!(BooleanBuilder, bool, ok),
            Kind::I16 => list!(Int16Builder, i16, ok),
            Kind::I32 => list!(Int32Builder, i32, ok),
            Kind::I64 => list!(Int64Builder, i64, ok),
            Kind::F32 => list!(Float32Builder, f32, ok),
            Kind::F64 => list!(Float64Builder, f64, ok),
            Kind::Numeric(_, s) => {
                list!(Decimal128Builder, String, |t: String| parse_numeric(&t, *s)
                    .ok_or_else(|| format!("{t} does not fit decimal(38,{s})")))
            }
            Kind::Date => list!(Date32Builder, NaiveDate, |d| ok(date_days(d))),
            Kind::Timestamp => list!(Date64Builder, NaiveDateTime, |t: NaiveDateTime| ok(t
                .and_utc()
                .timestamp_millis())),
            Kind::TimestampTz => list!(Date64Builder, DateTime<Utc>, |t: DateTime<Utc>| ok(
                t.timestamp_millis()
            )),
            Kind::Bytes => list!(BinaryBuilder, Vec<u8>, ok),
            _ => list!(StringBuilder, String, ok),
        },
    }
    Ok(())
}

fn finish(
    schema: &SchemaRef,
    builders: &mut [Box<dyn ArrayBuilder>],
    selected: &[Option<&Column>],
    split: &IndexMap<String, String>,
    rows: usize,
) -> Result<RecordBatch> {
    let mut columns = Vec::with_capacity(builders.len());
    for ((builder, column), field) in builders.iter_mut().zip(selected).zip(schema.fields()) {
        let array = match column {
            Some(_) => builder.finish(),
            None => {
                let value = split
                    .get(field.name())
                    .cloned()
                    .unwrap_or_else(|| "*".into());
                Arc::new(arrow::array::StringArray::from(vec![value; rows])) as ArrayRef
            }
        };
        // A list's item field may be named differently from the schema's; adopt the schema's.
        let array = if array.data_type() == field.data_type() {
            array
        } else {
            arrow::compute::cast(&array, field.data_type()).map_err(|source| Error::Arrow {
                what: format!("column {}", field.name()),
                source,
            })?
        };
        columns.push(array);
    }
    crate::batch(schema, columns, rows, "rows")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::constraints::{Endpoint, Range};

    #[test]
    fn identifiers_are_quoted_and_values_bound() {
        assert_eq!(quote("we\"ird"), "\"we\"\"ird\"");
        let column = Column {
            name: "na\"me".into(),
            pg_type: "text".into(),
            kind: Kind::Text { cast: false },
            rounded: false,
        };
        let domain = Domain {
            data_type: DataType::Utf8,
            values: Values::Set {
                values: vec![Value::Text("x'); DROP TABLE t; --".into())],
                white_list: true,
            },
            null_allowed: false,
        };
        let mut sql = Sql::default();
        let clause = sql.domain(&column, &domain).expect("pushed");
        assert_eq!(
            clause,
            "(\"na\"\"me\"::text COLLATE \"C\" IN ($1::text COLLATE \"C\"))"
        );
        assert_eq!(sql.params.len(), 1);
        assert!(!clause.contains("DROP"));
    }

    #[test]
    fn ranges_become_comparisons() {
        let column = Column {
            name: "n".into(),
            pg_type: "integer".into(),
            kind: Kind::I32,
            rounded: false,
        };
        let domain = Domain {
            data_type: DataType::Int32,
            values: Values::Ranges(vec![
                Range {
                    low: Some(Endpoint {
                        value: Value::Int(3),
                        inclusive: false,
                    }),
                    high: None,
                },
                Range::single(Value::Int(1)),
            ]),
            null_allowed: true,
        };
        let mut sql = Sql::default();
        assert_eq!(
            sql.domain(&column, &domain).expect("pushed"),
            "((\"n\" > $1::int8) OR \"n\" = $2::int8 OR \"n\" IS NULL)"
        );
        // A value of another kind is not pushed at all.
        let text = Domain {
            data_type: DataType::Utf8,
            values: Values::Set {
                values: vec![Value::Text("a".into())],
                white_list: true,
            },
            null_allowed: false,
        };
        assert!(Sql::default().domain(&column, &text).is_none());
    }

    #[test]
    fn timestamps_compare_on_the_column_itself_at_millisecond_grain() {
        use crate::constraints::{Endpoint, Range};
        let column = Column {
            name: "at".into(),
            pg_type: "timestamp".into(),
            kind: Kind::Timestamp,
            rounded: false,
        };
        let at = |us: i64, inclusive: bool| {
            Some(Endpoint {
                value: Value::Timestamp(us),
                inclusive,
            })
        };
        // = 1.000 s: [1.000, 1.001); > 1.0005 s: >= 1.001; <= 2.0004 s: < 2.001.
        let domain = Domain {
            data_type: DataType::Date64,
            values: Values::Ranges(vec![
                Range::single(Value::Timestamp(1_000_000)),
                Range {
                    low: at(1_000_500, false),
                    high: at(2_000_400, true),
                },
            ]),
            null_allowed: false,
        };
        let mut sql = Sql::default();
        let clause = sql.domain(&column, &domain).expect("pushed");
        assert_eq!(
            clause,
            "((\"at\" >= $1::timestamp AND \"at\" < $2::timestamp) OR (\"at\" >= $3::timestamp AND \"at\" < $4::timestamp))"
        );
        let bounds = millisecond_ranges(&domain).expect("ranges");
        let Values::Ranges(r) = bounds.values else {
            panic!("ranges")
        };
        let v = |e: &Option<Endpoint>| match e {
            Some(Endpoint {
                value: Value::Timestamp(us),
                ..
            }) => *us,
            _ => -1,
        };
        assert_eq!((v(&r[0].low), v(&r[0].high)), (1_000_000, 1_001_000));
        assert_eq!((v(&r[1].low), v(&r[1].high)), (1_001_000, 2_001_000));
    }

    #[test]
    fn a_failed_clause_leaves_no_parameters_behind() {
        let column = Column {
            name: "x".into(),
            pg_type: "double precision".into(),
            kind: Kind::F64,
            rounded: false,
        };
        let domain = Domain {
            data_type: DataType::Float64,
            values: Values::Set {
                values: vec![Value::Float(1.0), Value::Float(f64::NAN)],
                white_list: true,
            },
            null_allowed: false,
        };
        let mut sql = Sql::default();
        assert!(sql.domain(&column, &domain).is_none());
        assert!(sql.params.is_empty());
        let rounded = Column {
            name: "n".into(),
            pg_type: "numeric".into(),
            kind: Kind::Numeric(38, 18),
            rounded: true,
        };
        assert_eq!(rounded.select(), "round(\"n\", 18)::text");
        let eq = Domain {
            data_type: DataType::Decimal128(38, 18),
            values: Values::Ranges(vec![crate::constraints::Range::single(Value::Int(1))]),
            null_allowed: false,
        };
        assert_eq!(
            Sql::default().domain(&rounded, &eq).expect("pushed"),
            "(round(\"n\", 18) = $1::int8)"
        );
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("postgresql://bob:s3cret@db:5432/x"),
            "postgresql://bob:***@db:5432/x"
        );
        assert_eq!(
            redact("postgresql://bob@db/x"),
            "postgresql://bob@db:5432/x"
        );
        for secret in [
            "host=db user=bob password=s3cret dbname=x",
            "postgresql://db/x?user=bob&password=s3cret",
            "postgresql://bob:s3@cret@db/x",
            "postgresql://bob:s3cret@db:notaport/x",
        ] {
            let shown = redact(secret);
            assert!(
                !shown.contains("s3cret") && !shown.contains("cret"),
                "{secret} -> {shown}"
            );
        }
    }
}
