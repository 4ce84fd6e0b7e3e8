//! The Athena Query Federation protocol, in Rust.
//!
//! Athena reads a federated table, `"lambda:<function>".schema.table`, by invoking a connector
//! Lambda with JSON requests (the open-source Athena Query Federation SDK,
//! awslabs/aws-athena-query-federation): Ping, ListSchemas, ListTables, GetTable,
//! GetTableLayout, GetSplits, ReadRecords and GetDataSourceCapabilities. This crate has both
//! sides of that protocol, wire-compatible with the SDK's serde versions 2 to 6:
//!
//! - [`wire`]: the messages, with the SDK's field order; [`ipc`]: Arrow in them, both framings,
//!   and AES-GCM spilled blocks;
//! - [`constraints`]: the value sets (`SortedRangeSet`, `EquatableValueSet`,
//!   `AllOrNoneValueSet`) as typed [`constraints::Domain`]s, both ways;
//! - [`connector`]: the [`connector::Connector`] trait a source implements and the handler that
//!   answers protocol requests with it (what a connector Lambda runs);
//! - [`client`]: the engine side, over a [`client::Transport`] (in-process, or a Lambda invoke);
//! - connectors: [`postgres`] (feature `postgres`), `dynamodb` (feature `dynamodb`), `redis` (feature `redis`); the Lambda transport: `lambda` (feature
//!   `lambda`).

pub mod client;
pub mod connector;
pub mod constraints;
pub mod decimal;
#[cfg(feature = "dynamodb")]
pub mod dynamodb;
pub mod ipc;
#[cfg(feature = "lambda")]
pub mod lambda;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "redis")]
pub mod redis;
pub mod text;
pub mod types;
pub mod wire;

/// What went wrong talking to, or inside, a connector.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A message that is not what the protocol says.
    #[error("federation protocol: bad {what}: {message}")]
    Protocol { what: String, message: String },

    /// The connector answered with an error (a Lambda function error).
    #[error("the connector failed: {message}")]
    Connector {
        message: String,
        error_type: Option<String>,
    },

    /// The transport failed: the function could not be invoked, or timed out.
    #[error("cannot reach connector {function}: {message}")]
    Transport { function: String, message: String },

    /// An Arrow payload that does not decode or encode.
    #[error("Arrow {what}")]
    Arrow {
        what: String,
        source: arrow::error::ArrowError,
    },

    /// A column whose type the protocol or the source cannot carry.
    #[error("column {column} of {table}: type {data_type} is not supported{hint}")]
    UnsupportedType {
        table: String,
        column: String,
        data_type: String,
        hint: String,
    },

    /// A value the connector cannot convert into its column's type.
    #[error("{table} column {column} ({data_type}): {message}")]
    Value {
        table: String,
        column: String,
        data_type: String,
        message: String,
    },

    /// The source system refused or failed (a database error, a missing table).
    #[error("{source_name}: {message}")]
    Source {
        source_name: String,
        message: String,
    },

    /// Reading a spilled block failed.
    #[error("spilled block {location}")]
    Spill {
        location: String,
        source: object_store::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A batch of `rows` rows from finished columns (zero columns allowed: a `COUNT(*)` reads none).
pub(crate) fn batch(
    schema: &arrow::datatypes::SchemaRef,
    columns: Vec<arrow::array::ArrayRef>,
    rows: usize,
    what: &str,
) -> Result<arrow::record_batch::RecordBatch> {
    let options = arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(rows));
    arrow::record_batch::RecordBatch::try_new_with_options(
        std::sync::Arc::clone(schema),
        columns,
        &options,
    )
    .map_err(|source| Error::Arrow {
        what: what.to_owned(),
        source,
    })
}

/// The AWS SDK configuration of the standard environment (region, credentials chain,
/// `AWS_ENDPOINT_URL[_<SERVICE>]`), over rustls with ring like the rest of Quarry;
/// `endpoint` overrides the endpoint.
#[cfg(any(feature = "lambda", feature = "dynamodb"))]
pub(crate) async fn aws_config(endpoint: Option<&str>) -> aws_config::SdkConfig {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(http);
    if let Some(endpoint) = endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    loader.load().await
}
