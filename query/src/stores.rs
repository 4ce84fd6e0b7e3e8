//! Object stores for table locations, shared across queries, and the per-query registry that
//! hands DataFusion metered views of them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use datafusion::common::DataFusionError;
use datafusion::execution::object_store::ObjectStoreRegistry;
use object_store::ObjectStore;
use object_store::path::Path;
use url::Url;

use crate::meter::{Meter, MeteredStore, Pins};
use crate::provider::ScanLog;

pub use quarry_lake::{ObjectStores, store_key};

/// [`quarry_lake::split_location`] for the engine: a catalog location that is not a URL is a
/// planning error naming the table's location.
pub fn split_location(location: &str) -> Result<(String, Path), DataFusionError> {
    quarry_lake::split_location(location)
        .map_err(|e| DataFusionError::Plan(format!("{e}; fix the table's location")))
}

/// The URL a table scan reads through: the store's URL with the scan's number in the scheme
/// (`s3+scan2://bucket`), so that the registry can meter each scan on its own.
pub fn scan_url(store_key: &str, scan: usize) -> String {
    match store_key.split_once("://") {
        Some((scheme, rest)) => format!("{scheme}+scan{scan}://{rest}"),
        None => store_key.to_string(),
    }
}

/// `s3+scan2://bucket` -> (`s3://bucket`, Some(2)); other URLs -> (their key, None).
fn parse_scan_url(url: &Url) -> (String, Option<usize>) {
    let host = url.host_str().unwrap_or("");
    match url.scheme().split_once("+scan") {
        Some((scheme, n)) => (format!("{scheme}://{host}"), n.parse().ok()),
        None => (store_key(url), None),
    }
}

/// DataFusion's view of the stores during one query: every store wrapped in that query's meter
/// (and, for table scans, in the scan's own meter that feeds it).
#[derive(Debug)]
pub struct MeteredRegistry {
    stores: Arc<ObjectStores>,
    meter: Arc<Meter>,
    /// The statement's scans: each pins the versions of the objects it listed.
    log: ScanLog,
    wrapped: Mutex<HashMap<String, Arc<dyn ObjectStore>>>,
    scans: Mutex<HashMap<usize, Arc<Meter>>>,
}

impl MeteredRegistry {
    pub fn new(stores: Arc<ObjectStores>, meter: Arc<Meter>, log: ScanLog) -> Self {
        Self {
            stores,
            meter,
            log,
            wrapped: Mutex::new(HashMap::new()),
            scans: Mutex::new(HashMap::new()),
        }
    }

    /// Bytes read so far by scan number `scan`.
    /// The meter of scan `scan`, for scans that do not read through an object store.
    pub fn scan_meter(&self, scan: usize) -> Arc<Meter> {
        Arc::clone(
            self.scans
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(scan)
                .or_insert_with(|| Meter::child(&self.meter)),
        )
    }

    pub fn scan_bytes(&self, scan: usize) -> u64 {
        self.scans
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&scan)
            .map_or(0, |m| m.bytes())
    }
}

impl ObjectStoreRegistry for MeteredRegistry {
    fn register_store(
        &self,
        url: &Url,
        store: Arc<dyn ObjectStore>,
    ) -> Option<Arc<dyn ObjectStore>> {
        let (key, scan) = parse_scan_url(url);
        let metered: Arc<dyn ObjectStore> =
            Arc::new(MeteredStore::new(store, Arc::clone(&self.meter)));
        self.wrapped
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(format!("{key}#{scan:?}"), metered)
    }

    fn get_store(&self, url: &Url) -> datafusion::common::Result<Arc<dyn ObjectStore>> {
        let (key, scan) = parse_scan_url(url);
        let cache_key = format!("{key}#{scan:?}");
        let mut wrapped = self.wrapped.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = wrapped.get(&cache_key) {
            return Ok(Arc::clone(s));
        }
        let inner = self
            .stores
            .get(&key)
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let meter = match scan {
            Some(n) => Arc::clone(
                self.scans
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .entry(n)
                    .or_insert_with(|| Meter::child(&self.meter)),
            ),
            None => Arc::clone(&self.meter),
        };
        let mut store = MeteredStore::new(inner, meter);
        if let Some(n) = scan {
            store = store.with_pins(Pins {
                log: Arc::clone(&self.log),
                scan: n,
            });
        }
        let metered: Arc<dyn ObjectStore> = Arc::new(store);
        wrapped.insert(cache_key, Arc::clone(&metered));
        Ok(metered)
    }

    fn deregister_store(&self, url: &Url) -> datafusion::common::Result<Arc<dyn ObjectStore>> {
        let (key, scan) = parse_scan_url(url);
        self.wrapped
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&format!("{key}#{scan:?}"))
            .ok_or_else(|| DataFusionError::Plan(format!("no object store registered for {key}")))
    }
}

#[cfg(test)]
mod tests {
    use datafusion::execution::object_store::ObjectStoreUrl;

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

    #[test]
    fn scan_urls_round_trip() {
        for (key, n) in [("s3://bucket", 3), ("file://", 0), ("memory://", 12)] {
            let url = Url::parse(&scan_url(key, n)).unwrap();
            assert_eq!(parse_scan_url(&url), (key.to_string(), Some(n)));
            assert!(ObjectStoreUrl::parse(url.as_str()).is_ok(), "{url}");
        }
    }
}
