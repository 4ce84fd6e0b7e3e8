//! Lake conventions and I/O shared by every Quarry producer and consumer (the crawler, the
//! query engine, the Lambda functions): locations and the object-store registry, table formats
//! and compressions and their catalog (SerDe) descriptions, the one hidden-file rule, the Hive
//! path codec, Parquet footers, and the streaming writer that stages files under hidden names
//! and publishes them at commit.
//!
//! ```
//! use quarry_lake::{hive, is_hidden};
//! let folder = hive::partition_path(&["region", "dt"], &[Some("eu west".into()), None]);
//! assert_eq!(folder, "region=eu%20west/dt=__HIVE_DEFAULT_PARTITION__/");
//! assert!(is_hidden(&["t", "_SUCCESS"]));
//! ```

mod error;
pub mod footer;
pub mod format;
pub mod hive;
mod local;
mod location;
mod resume;
pub mod stats;
mod stores;
pub mod writer;

use object_store::ObjectMeta;

pub use error::{Error, Result};
pub use footer::{KEPT_FOOTER_BYTES, ParquetFooter, read_parquet_footer};
pub use format::{
    Compression, CsvDialect, FileFormat, storage_for, table_file_format, table_format_label,
};
pub use hive::HIVE_DEFAULT_PARTITION;
pub use local::LocalStore;
pub use location::{Location, folder_url, location_url, within_roots};
pub use resume::ResumingList;
pub use stores::{ObjectStores, split_location, store_key};
pub use writer::{StagedFiles, TableWriter, WriteCompression, WriteOptions, WrittenFile};

/// Crash tests: abort the process at the named point when `QUARRY_FAILPOINT` names it
/// (`write.staged`, `write.published`, `write.committed`, `job.finished`), as `kill -9` there
/// would. One environment lookup when unset.
pub fn failpoint(name: &str) {
    if std::env::var_os("QUARRY_FAILPOINT").is_some_and(|v| v == name) {
        eprintln!("QUARRY_FAILPOINT={name}: aborting the process");
        std::process::abort();
    }
}

/// The error of a response body shorter than the byte range it answers (a connection closed
/// early, or an object rewritten while it was read): it names the object, so a short body is
/// never read as if it were the whole range.
pub fn short_body(object: &str, got: u64, expected: u64) -> object_store::Error {
    object_store::Error::Generic {
        store: "Quarry",
        source: format!(
            "{object}: the response ended after {got} of {expected} bytes (cut off in transit, \
             or the object changed while it was read); try again"
        )
        .into(),
    }
}

/// Reads `range` of the version of `meta` that was listed (`If-Match` its ETag, where the store
/// has one): an object rewritten since is an error, never a mix of two versions. A body shorter
/// than `range` is an error too ([`short_body`]).
pub async fn read_range(
    store: &std::sync::Arc<dyn object_store::ObjectStore>,
    meta: &ObjectMeta,
    range: std::ops::Range<u64>,
) -> object_store::Result<bytes::Bytes> {
    let location = &meta.location;
    let expected = range.end.saturating_sub(range.start);
    let options = object_store::GetOptions {
        range: Some(range.into()),
        if_match: meta.e_tag.clone(),
        ..Default::default()
    };
    let body = match store.get_opts(location, options).await {
        Ok(r) => r.bytes().await?,
        Err(object_store::Error::Precondition { path, source }) => {
            return Err(object_store::Error::Generic {
                store: "Quarry",
                source: format!(
                    "{path} changed since it was listed (its ETag is no longer the one listed); \
                     try again: {source}"
                )
                .into(),
            });
        }
        Err(e) => return Err(e),
    };
    if (body.len() as u64) < expected {
        return Err(short_body(location.as_ref(), body.len() as u64, expected));
    }
    Ok(body)
}

/// What a crawl bookmark records to recognise an unchanged object: its ETag where the store has
/// one, else its modification time (with the size, compared separately).
pub fn fingerprint(meta: &ObjectMeta) -> String {
    meta.e_tag
        .clone()
        .unwrap_or_else(|| meta.last_modified.to_rfc3339())
}

/// Whether the object at `below` (its path under a table or partition folder) is data: no
/// hidden name on the way ([`is_hidden`]), not empty. The crawler's rule, and every reader's.
pub fn is_data_file(meta: &ObjectMeta, below: &str) -> bool {
    meta.size > 0 && !is_hidden(&below.split('/').collect::<Vec<_>>())
}

/// Every data file below `prefix` ([`is_data_file`]), sorted by path.
pub async fn list_data_files(
    store: &std::sync::Arc<dyn object_store::ObjectStore>,
    prefix: &object_store::path::Path,
) -> object_store::Result<Vec<ObjectMeta>> {
    use futures::TryStreamExt;
    let mut files: Vec<ObjectMeta> = store
        .list(Some(prefix))
        .try_filter(|m| {
            let rel = m
                .location
                .as_ref()
                .strip_prefix(prefix.as_ref())
                .unwrap_or(m.location.as_ref())
                .trim_start_matches('/')
                .to_string();
            futures::future::ready(is_data_file(m, &rel))
        })
        .try_collect()
        .await?;
    files.sort_by(|a, b| a.location.cmp(&b.location));
    Ok(files)
}

/// Spark/Hadoop markers and hidden files, never data: any path segment (folders included)
/// starting with `_` or `.`, or a `$folder$` marker. The query engine applies the same rule.
pub fn is_hidden<S: AsRef<str>>(parts: &[S]) -> bool {
    parts
        .iter()
        .map(AsRef::as_ref)
        .any(|p: &str| p.starts_with('_') || p.starts_with('.') || p.ends_with("$folder$"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_paths() {
        let p = |s: &str| s.split('/').map(str::to_string).collect::<Vec<_>>();
        assert!(is_hidden(&p("t/_SUCCESS")));
        assert!(is_hidden(&p("t/_temporary/0/x.csv")));
        assert!(is_hidden(&p("t/.part.crc")));
        assert!(is_hidden(&p("t/dt=1_$folder$")));
        assert!(!is_hidden(&p("t/dt=1/part-0.csv")));
    }
}
