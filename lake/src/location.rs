//! Crawl targets: a URL (or local path) resolved to an object store and a prefix in it.

use std::sync::Arc;

use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;

use crate::ResumingList;
use object_store::memory::InMemory;
use object_store::path::Path;

use crate::{Error, LocalStore, Result};

/// An object store plus the prefix of a crawl target within it.
#[derive(Debug, Clone)]
pub struct Location {
    pub store: Arc<dyn ObjectStore>,
    /// `s3://bucket/`, `file:///` or `memory:///`: prepended to object paths to form URLs.
    pub base: String,
    pub prefix: Path,
}

impl Location {
    /// Resolve `target`: `s3://bucket/prefix`, `file:///abs/path`, `memory:///prefix` (a fresh
    /// in-memory store) or a local path. S3 is configured from the standard AWS environment
    /// (`AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`,
    /// `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`, ...).
    pub fn parse(target: &str) -> Result<Self> {
        Self::parse_with(target, std::iter::empty::<(&str, &str)>())
    }

    /// Like [`Location::parse`], with S3 settings (`aws_endpoint`, `aws_allow_http`, ...: the
    /// keys of `AmazonS3ConfigKey`) applied over those from the environment.
    pub fn parse_with<K: AsRef<str>, V: Into<String>>(
        target: &str,
        s3_options: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self> {
        let bad = |reason: String| Error::Target {
            target: target.to_string(),
            reason,
        };
        if let Some(rest) = target
            .strip_prefix("s3://")
            .or_else(|| target.strip_prefix("s3a://"))
        {
            let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(bad("no bucket name; use s3://BUCKET/PREFIX".into()));
            }
            let mut builder = AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .with_retry(s3_retry());
            for (k, v) in s3_options {
                let key =
                    k.as_ref()
                        .to_ascii_lowercase()
                        .parse()
                        .map_err(|source| Error::Store {
                            target: target.to_string(),
                            source,
                        })?;
                builder = builder.with_config(key, v);
            }
            let store = builder.build().map_err(|source| Error::Store {
                target: target.to_string(),
                source,
            })?;
            let prefix = Path::parse(key).map_err(|e| bad(e.to_string()))?;
            // Listings resume after a response cut part-way (object_store does not retry those).
            let store = ResumingList::new(Arc::new(store), s3_retry());
            return Ok(Self::new(
                Arc::new(store),
                format!("s3://{bucket}/"),
                prefix,
            ));
        }
        if let Some(rest) = target.strip_prefix("memory://") {
            let prefix = Path::parse(rest).map_err(|e| bad(e.to_string()))?;
            return Ok(Self::new(
                Arc::new(InMemory::new()),
                "memory:///".into(),
                prefix,
            ));
        }
        let local = match target.strip_prefix("file://") {
            Some(p) => p,
            None if target.contains("://") => {
                return Err(bad(
                    "unsupported scheme; use s3://, file:// or a local path".into(),
                ));
            }
            None => target,
        };
        let meta = std::fs::metadata(local).map_err(|e| bad(format!("{e}; check the path")))?;
        if !meta.is_dir() {
            return Err(bad(
                "not a directory; crawl the folder that holds the data".into()
            ));
        }
        let prefix = Path::from_filesystem_path(local).map_err(|e| bad(e.to_string()))?;
        Ok(Self::new(
            Arc::new(LocalStore::new()),
            "file:///".into(),
            prefix,
        ))
    }

    pub fn new(store: Arc<dyn ObjectStore>, base: String, prefix: Path) -> Self {
        Self {
            store,
            base,
            prefix,
        }
    }

    /// The URL of an object or folder path in this store.
    pub fn url(&self, path: &Path) -> String {
        format!("{}{}", self.base, path)
    }

    /// The URL of the crawl target itself, ending in `/`.
    pub fn root_url(&self) -> String {
        folder_url(&self.url(&self.prefix))
    }
}

/// Whether `url` lies within one of `roots` (folder URLs, as [`folder_url`] writes them): the
/// check a server makes before it writes where a client asks. `.` and `..` segments (also
/// percent-encoded) are refused outright, so a path cannot climb out of a root; the error says
/// which roots are allowed.
pub fn within_roots(url: &str, roots: &[String]) -> std::result::Result<(), String> {
    let folder = folder_url(&location_url(url).map_err(|e| e.to_string())?);
    let after_scheme = folder.split_once("://").map_or(folder.as_str(), |(_, r)| r);
    if after_scheme.split('/').any(|seg| {
        let seg = seg.to_ascii_lowercase().replace("%2e", ".");
        seg == "." || seg == ".."
    }) {
        return Err(format!(
            "{url} has '.' or '..' segments; give the folder plainly"
        ));
    }
    if roots.iter().any(|r| folder.starts_with(r.as_str())) {
        Ok(())
    } else if roots.is_empty() {
        Err(format!(
            "{url}: this server writes nowhere (no root is configured)"
        ))
    } else {
        Err(format!(
            "{url} is outside the locations this server writes to ({})",
            roots.join(", ")
        ))
    }
}

/// `url` with exactly one trailing `/`.
pub fn folder_url(url: &str) -> String {
    format!("{}/", url.trim_end_matches('/'))
}

/// A table, partition or output location as the catalog records it: a URL kept as written
/// (`s3://bucket/path/`), a local path made absolute as `file:///abs/path/`; always ending in
/// `/`. The folder need not exist yet.
pub fn location_url(location: &str) -> Result<String> {
    let bad = |reason: String| Error::Target {
        target: location.to_string(),
        reason,
    };
    if location.trim().is_empty() {
        return Err(bad("empty location".into()));
    }
    if location.contains("://") {
        return Ok(folder_url(location));
    }
    let abs = std::path::absolute(location).map_err(|e| bad(e.to_string()))?;
    let text = abs
        .to_str()
        .ok_or_else(|| bad("the path is not valid UTF-8".into()))?;
    Ok(folder_url(&format!("file://{text}")))
}

/// How S3 requests are retried, chosen rather than inherited: S3 answers 500 InternalError and
/// 503 SlowDown under load and drops connections, and a query should ride those out. A failed
/// request (5xx, a timeout, a reset connection) is retried up to 10 times with exponential
/// backoff from 100 ms, doubling up to 15 s between tries, for at most 3 minutes from the first
/// try: within a Lambda invocation's 15 minutes, and short enough that signed requests stay
/// valid. 4xx answers other than throttling are not retried. Request timeouts are object_store's
/// client options (30 s per request, 5 s to connect), settable with `AWS_`-prefixed options.
pub fn s3_retry() -> object_store::RetryConfig {
    object_store::RetryConfig {
        backoff: object_store::BackoffConfig {
            init_backoff: std::time::Duration::from_millis(100),
            max_backoff: std::time::Duration::from_secs(15),
            base: 2.0,
        },
        max_retries: 10,
        retry_timeout: std::time::Duration::from_secs(180),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_stay_within_the_roots() {
        let roots = vec!["s3://b/data/".to_string(), "file:///srv/out/".to_string()];
        assert!(within_roots("s3://b/data/t/", &roots).is_ok());
        assert!(within_roots("s3://b/data", &roots).is_ok());
        assert!(within_roots("/srv/out/x", &roots).is_ok());
        // A sibling that shares the prefix, another bucket, climbing out.
        assert!(within_roots("s3://b/data-other/t/", &roots).is_err());
        assert!(within_roots("s3://c/data/t/", &roots).is_err());
        for climb in [
            "s3://b/data/../secrets/",
            "s3://b/data/%2E%2E/secrets/",
            "s3://b/data/./t",
        ] {
            assert!(within_roots(climb, &roots).is_err(), "{climb}");
        }
        assert!(
            within_roots("s3://b/data/t/", &[])
                .unwrap_err()
                .contains("no root")
        );
    }

    #[test]
    fn locations_become_folder_urls() {
        assert_eq!(location_url("s3://b/t").expect("url"), "s3://b/t/");
        assert_eq!(location_url("/data/t/").expect("url"), "file:///data/t/");
        let cwd = std::env::current_dir().expect("cwd");
        assert_eq!(
            location_url("t").expect("url"),
            format!("file://{}/t/", cwd.display())
        );
        assert!(location_url(" ").is_err());
    }
}
