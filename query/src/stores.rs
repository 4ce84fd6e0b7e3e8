//! Object stores for table locations, shared across queries, and the per-query registry that
//! hands DataFusion metered views of them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use datafusion::common::DataFusionError;
use datafusion::execution::object_store::ObjectStoreRegistry;
use object_store::ObjectStore;
use object_store::path::Path;
use quarry_crawler::Location;
use url::Url;

use crate::meter::{Meter, MeteredStore};

/// `s3://bucket`, `file://` or `memory://`: the part of a URL that names a store.
pub fn store_key(url: &Url) -> String {
    format!("{}://{}", url.scheme(), url.host_str().unwrap_or(""))
}

/// Split a catalog location (`s3://b/lake/t/region=eu%20west/`) into its store key and the
/// object path inside the store. Names are taken verbatim, as the crawler recorded them.
pub fn split_location(location: &str) -> Result<(String, Path), DataFusionError> {
    let bad = || {
        DataFusionError::Plan(format!(
            "catalog location '{location}' is not a URL; re-crawl the table"
        ))
    };
    let (scheme, rest) = location.split_once("://").ok_or_else(bad)?;
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let path = Path::parse(path).map_err(|e| {
        DataFusionError::Plan(format!("catalog location '{location}' has a bad path: {e}"))
    })?;
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

    /// Use `store` for every URL under `url` (`s3://bucket`, `file://`, `memory://`, or any
    /// URL inside them).
    pub fn register(&self, url: &str, store: Arc<dyn ObjectStore>) {
        let key = Url::parse(url).map_or_else(|_| url.to_string(), |u| store_key(&u));
        self.stores
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, store);
    }

    pub fn get(&self, key: &str) -> Result<Arc<dyn ObjectStore>, DataFusionError> {
        if let Some(s) = self
            .stores
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
        {
            return Ok(Arc::clone(s));
        }
        let location = Location::parse_with(&format!("{key}/"), self.s3_options.clone())
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        self.register(key, Arc::clone(&location.store));
        Ok(location.store)
    }
}

/// DataFusion's view of the stores during one query: every store wrapped in that query's meter.
#[derive(Debug)]
pub struct MeteredRegistry {
    stores: Arc<ObjectStores>,
    meter: Arc<Meter>,
    wrapped: Mutex<HashMap<String, Arc<dyn ObjectStore>>>,
}

impl MeteredRegistry {
    pub fn new(stores: Arc<ObjectStores>, meter: Arc<Meter>) -> Self {
        Self {
            stores,
            meter,
            wrapped: Mutex::new(HashMap::new()),
        }
    }
}

impl ObjectStoreRegistry for MeteredRegistry {
    fn register_store(
        &self,
        url: &Url,
        store: Arc<dyn ObjectStore>,
    ) -> Option<Arc<dyn ObjectStore>> {
        let key = store_key(url);
        let metered: Arc<dyn ObjectStore> =
            Arc::new(MeteredStore::new(store, Arc::clone(&self.meter)));
        self.wrapped
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, metered)
    }

    fn get_store(&self, url: &Url) -> datafusion::common::Result<Arc<dyn ObjectStore>> {
        let key = store_key(url);
        let mut wrapped = self.wrapped.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = wrapped.get(&key) {
            return Ok(Arc::clone(s));
        }
        let inner = self.stores.get(&key)?;
        let metered: Arc<dyn ObjectStore> =
            Arc::new(MeteredStore::new(inner, Arc::clone(&self.meter)));
        wrapped.insert(key, Arc::clone(&metered));
        Ok(metered)
    }

    fn deregister_store(&self, url: &Url) -> datafusion::common::Result<Arc<dyn ObjectStore>> {
        let key = store_key(url);
        self.wrapped
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&key)
            .ok_or_else(|| DataFusionError::Plan(format!("no object store registered for {key}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_locations_verbatim() {
        let (k, p) = split_location("s3://b/lake/t/region=eu%20west/").unwrap();
        assert_eq!(k, "s3://b");
        assert_eq!(p.as_ref(), "lake/t/region=eu%20west");
        let (k, p) = split_location("file:///data/t/").unwrap();
        assert_eq!((k.as_str(), p.as_ref()), ("file://", "data/t"));
        assert!(split_location("not a url").is_err());
    }
}
