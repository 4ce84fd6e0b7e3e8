//! The object-store registry: one store per `s3://bucket`, `file://` or `memory://`, created
//! on first use from the standard AWS environment and shared by every reader and writer.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use object_store::ObjectStore;
use object_store::path::Path;
use url::Url;

use crate::{Error, Location, Result};

/// `s3://bucket`, `file://` or `memory://`: the part of a URL that names a store.
pub fn store_key(url: &Url) -> String {
    format!("{}://{}", url.scheme(), url.host_str().unwrap_or(""))
}

/// Split a catalog location (`s3://b/lake/t/region=eu%20west/`) into its store key and the
/// object path inside the store. Names are taken verbatim, as the crawler recorded them.
pub fn split_location(location: &str) -> Result<(String, Path)> {
    let bad = |reason: String| Error::BadLocation {
        location: location.to_string(),
        reason,
    };
    let (scheme, rest) = location
        .split_once("://")
        .ok_or_else(|| bad("expected scheme://bucket/path".into()))?;
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let path = Path::parse(path).map_err(|e| bad(format!("bad path: {e}")))?;
    Ok((format!("{scheme}://{host}"), path))
}

/// Stores by key, created on first use from the standard AWS environment (plus overrides).
#[derive(Debug, Default)]
pub struct ObjectStores {
    stores: RwLock<HashMap<String, Arc<dyn ObjectStore>>>,
    s3_options: Vec<(String, String)>,
}

impl ObjectStores {
    pub fn new() -> Self {
        Self::default()
    }

    /// S3 settings (`aws_endpoint`, ...) applied over the environment's.
    pub fn with_s3_options(mut self, options: Vec<(String, String)>) -> Self {
        self.s3_options = options;
        self
    }

    /// The S3 settings applied over the environment's.
    pub fn s3_options(&self) -> &[(String, String)] {
        &self.s3_options
    }

    /// Use `store` for every URL under `url` (`s3://bucket`, `file://`, `memory://`, or any
    /// URL inside them).
    pub fn register(&self, url: &str, store: Arc<dyn ObjectStore>) {
        let key = Url::parse(url).map_or_else(|_| url.to_string(), |u| store_key(&u));
        self.stores
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, store);
    }

    pub fn get(&self, key: &str) -> Result<Arc<dyn ObjectStore>> {
        if let Some(s) = self
            .stores
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
        {
            return Ok(Arc::clone(s));
        }
        let location = Location::parse_with(&format!("{key}/"), self.s3_options.clone())?;
        self.register(key, Arc::clone(&location.store));
        Ok(location.store)
    }

    /// The store of a location URL and the path inside it.
    pub fn resolve(&self, url: &str) -> Result<(Arc<dyn ObjectStore>, Path)> {
        let (key, path) = split_location(url)?;
        Ok((self.get(&key)?, path))
    }
}
