//! The connector function: a federation connector as a Lambda, answering the Athena Query
//! Federation protocol. Athena itself can use it (register the function as a Lambda data
//! catalog), and so can Quarry (`"lambda:quarry-connector".schema.table`, or `quarry catalog add
//! NAME --lambda quarry-connector`).
//!
//! Configuration, by environment variable (the SDK's own names work too):
//!
//! | variable | meaning |
//! |---|---|
//! | `QUARRY_CONNECTOR` | the connector: `postgres`, `dynamodb` or `redis` (tables declared in `QUARRY_CATALOG`) |
//! | `QUARRY_CONNECTOR_URI` (or `default`) | PostgreSQL's connection URI, e.g. `postgresql://user:pw@host:5432/db` |
//! | `QUARRY_SPILL_BUCKET` (or `spill_bucket`) | where answers larger than the inline limit spill |
//! | `QUARRY_SPILL_PREFIX` (or `spill_prefix`) | key prefix of spilled blocks (default `athena-federation-spill`) |
//! | `QUARRY_SPLIT_BYTES` | PostgreSQL tables are split into key ranges of about this many bytes on disk (default 4 MiB, so answers fit a Lambda response), at most 20 |
//! | `QUARRY_SPILL_ENCRYPTION` | `false` to spill unencrypted (or the SDK's `disable_spill_encryption=true`) |
//!
//! The function's result is the protocol's JSON answer; a failure is a function error whose
//! message names the connector and what failed (which the SDK's callers read as
//! `errorMessage`).

use std::sync::Arc;

use quarry_federation::connector::{Connector, Handler, Spill};

use crate::FunctionError;

/// Bytes on disk per PostgreSQL split (`QUARRY_SPLIT_BYTES`): about what one Lambda answer
/// carries inline.
const SPLIT_BYTES: u64 = 4 << 20;

/// Reads the first of the variables that is set and not empty.
fn var(names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|n| std::env::var(n).ok().filter(|v| !v.trim().is_empty()))
}

/// The catalog that declares Redis tables: `QUARRY_CATALOG` (`glue`, the default, or an
/// embedded catalog's path).
async fn catalog_from_env() -> Result<Arc<dyn quarry_catalog::Catalog>, FunctionError> {
    Ok(match var(&["QUARRY_CATALOG"]).as_deref() {
        None | Some("glue") => Arc::new(quarry_catalog::GlueCatalog::from_env().await),
        Some(path) => Arc::new(quarry_catalog::SqliteCatalog::open(path)?),
    })
}

/// The protocol handler the environment describes.
pub async fn from_env() -> Result<Handler, FunctionError> {
    let kind = var(&["QUARRY_CONNECTOR"]).unwrap_or_else(|| "postgres".to_owned());
    let connector: Arc<dyn Connector> = match kind.as_str() {
        "postgres" => {
            let uri = var(&["QUARRY_CONNECTOR_URI", "default"]).ok_or_else(|| {
                FunctionError::Config(
                    "set QUARRY_CONNECTOR_URI to the database's postgresql:// URI".into(),
                )
            })?;
            // The SDK's JDBC connectors take `postgres://jdbc:postgresql://host/db?user=..`.
            let uri = uri
                .strip_prefix("postgres://jdbc:")
                .unwrap_or(&uri)
                .to_owned();
            // Splits small enough that an answer fits a Lambda response (no spill round trip).
            let split_bytes = var(&["QUARRY_SPLIT_BYTES"])
                .and_then(|v| v.parse().ok())
                .unwrap_or(SPLIT_BYTES);
            Arc::new(
                quarry_federation::postgres::Postgres::new(&uri)
                    .map_err(|e| FunctionError::Config(e.to_string()))?
                    .with_bytes_per_split(split_bytes),
            )
        }
        "dynamodb" => Arc::new(quarry_federation::dynamodb::DynamoDb::from_env().await),
        "redis" => Arc::new(quarry_federation::redis::Redis::new(
            catalog_from_env().await?,
        )),
        other => {
            return Err(FunctionError::Config(format!(
                "unknown QUARRY_CONNECTOR '{other}'; this function links in: postgres, dynamodb, redis"
            )));
        }
    };
    let spill = match var(&["QUARRY_SPILL_BUCKET", "spill_bucket"]) {
        None => None,
        Some(bucket) => {
            let location = quarry_lake::Location::parse(&format!("s3://{bucket}/"))
                .map_err(|e| FunctionError::Config(format!("spill bucket {bucket}: {e}")))?;
            let encrypt = !(var(&["QUARRY_SPILL_ENCRYPTION"])
                .is_some_and(|v| v.eq_ignore_ascii_case("false"))
                || var(&["disable_spill_encryption"])
                    .is_some_and(|v| v.eq_ignore_ascii_case("true")));
            Some(Spill {
                store: location.store,
                bucket,
                prefix: var(&["QUARRY_SPILL_PREFIX", "spill_prefix"])
                    .unwrap_or_else(|| "athena-federation-spill".into()),
                encrypt,
            })
        }
    };
    Ok(Handler::new(connector, spill))
}

/// Answers one protocol request.
pub async fn handle(
    handler: &Handler,
    event: serde_json::Value,
) -> Result<serde_json::Value, FunctionError> {
    let request = serde_json::to_vec(&event).map_err(|e| FunctionError::BadEvent(e.to_string()))?;
    let answer = handler.handle(&request).await.map_err(|e| match e {
        quarry_federation::Error::Protocol { .. } => FunctionError::BadEvent(e.to_string()),
        other => FunctionError::Connector(quarry_federation::client::error_chain(&other)),
    })?;
    serde_json::from_slice(&answer)
        .map_err(|e| FunctionError::Connector(format!("answer is not JSON: {e}")))
}
