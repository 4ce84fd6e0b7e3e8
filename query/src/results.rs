//! Athena-style result files: `<query_id>.csv` and `<query_id>.metadata.json` under a result
//! location (S3 or local).

use object_store::ObjectStoreExt;
use object_store::path::Path;

use crate::engine::QueryOutput;
use crate::format::{OutputFormat, render};
use crate::stores::{ObjectStores, split_location};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResultError {
    #[error("result location '{location}' is not usable: {reason}")]
    Location { location: String, reason: String },
    #[error("cannot write {url}; check the location exists and is writable")]
    Write {
        url: String,
        source: object_store::Error,
    },
    #[error("cannot encode the result")]
    Encode {
        source: datafusion::arrow::error::ArrowError,
    },
}

/// Where the result files of one query were written.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ResultFiles {
    pub csv: String,
    pub metadata: String,
}

/// Write `output` under `location` (`s3://bucket/results/`, `file:///tmp/results/`, or a local
/// folder path). Each object is written with one atomic PUT.
pub async fn write_result(
    stores: &ObjectStores,
    location: &str,
    output: &QueryOutput,
) -> Result<ResultFiles, ResultError> {
    let bad = |reason: String| ResultError::Location {
        location: location.to_string(),
        reason,
    };
    let url = if location.contains("://") {
        location.to_string()
    } else {
        std::fs::create_dir_all(location).map_err(|e| bad(e.to_string()))?;
        let abs = std::fs::canonicalize(location).map_err(|e| bad(e.to_string()))?;
        format!("file://{}", abs.display())
    };
    let base = format!("{}/", url.trim_end_matches('/'));
    let (key, prefix) = split_location(&base).map_err(|e| bad(e.to_string()))?;
    let store = stores.get(&key).map_err(|e| bad(e.to_string()))?;
    let id = &output.record.query_id;
    let csv = render(&output.schema, &output.batches, OutputFormat::Csv)
        .map_err(|source| ResultError::Encode { source })?;
    let columns: Vec<serde_json::Value> = output
        .schema
        .fields()
        .iter()
        .map(|f| {
            serde_json::json!({
                "name": f.name(),
                "type": quarry_catalog::types::to_hive(f.data_type()),
                "arrow_type": f.data_type().to_string(),
                "nullable": f.is_nullable(),
            })
        })
        .collect();
    let metadata = serde_json::json!({
        "query_id": id,
        "sql": output.record.sql,
        "state": output.record.state.as_str(),
        "rows": output.record.rows,
        "bytes_scanned": output.record.bytes_scanned,
        "columns": columns,
    });
    let mut written = Vec::new();
    for (name, body) in [
        (format!("{id}.csv"), csv.into_bytes()),
        (
            format!("{id}.metadata.json"),
            serde_json::to_vec_pretty(&metadata).unwrap_or_default(),
        ),
    ] {
        let path = Path::from_iter(prefix.parts().chain(std::iter::once(name.as_str().into())));
        let url = format!("{base}{name}");
        store
            .put(&path, body.into())
            .await
            .map_err(|source| ResultError::Write {
                url: url.clone(),
                source,
            })?;
        written.push(url);
    }
    Ok(ResultFiles {
        csv: written[0].clone(),
        metadata: written[1].clone(),
    })
}
