//! Test support: lakes on the local filesystem and on a real S3 endpoint (`moto_server`).
//!
//! The S3 endpoint is `QUARRY_TEST_S3_ENDPOINT` when set (`scripts/test` starts one server for
//! the whole run); otherwise the first test that needs it starts `moto_server` on a free
//! loopback port, and a watchdog stops it when the test process exits.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use object_store::ObjectStoreExt;
use object_store::path::Path as ObjectPath;
use quarry_lake::Location;

/// The committed sample lake.
pub fn sample_data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../sample-data")
}

pub struct S3Server {
    pub endpoint: String,
    /// The watchdog shell that owns a server this process started (it stops the server when
    /// this process exits).
    _watchdog: Option<std::process::Child>,
}

static SERVER: OnceLock<S3Server> = OnceLock::new();
static BUCKETS: AtomicUsize = AtomicUsize::new(0);

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A shell that runs `start`, then waits for this test process to exit and runs `stop`: servers
/// a test process starts go when it goes, however it ends.
fn watchdog(start: &str, stop: &str) -> std::process::Child {
    let script = format!(
        "{start}; while kill -0 {pid} 2>/dev/null; do sleep 1; done; {stop}",
        pid = std::process::id()
    );
    Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .spawn()
        .expect("sh for a server's watchdog")
}

fn wait_for(addr: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(addr).is_err() {
        assert!(
            Instant::now() < deadline,
            "moto_server did not start on {addr} within 60 s; install it with: pip install 'moto[server]'"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The shared S3 endpoint for this test process.
pub fn s3() -> &'static S3Server {
    SERVER.get_or_init(|| {
        if let Ok(endpoint) = std::env::var("QUARRY_TEST_S3_ENDPOINT") {
            wait_for(endpoint.trim_start_matches("http://"));
            return S3Server {
                endpoint,
                _watchdog: None,
            };
        }
        let port = free_port();
        let watchdog = watchdog(
            &format!("moto_server -H 127.0.0.1 -p {port} >/dev/null 2>&1 & s=$!"),
            "kill $s",
        );
        let addr = format!("127.0.0.1:{port}");
        wait_for(&addr);
        S3Server {
            endpoint: format!("http://{addr}"),
            _watchdog: Some(watchdog),
        }
    })
}

impl S3Server {
    /// Environment a `quarry` process needs to reach this endpoint, as a user would set it.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ALLOW_HTTP", "true".into()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", "us-east-1".into()),
        ]
    }

    /// Create a fresh, uniquely named bucket and return its name.
    pub fn bucket(&self, hint: &str) -> String {
        let name = format!(
            "{}-{}-{}",
            hint.replace('_', "-"),
            std::process::id(),
            BUCKETS.fetch_add(1, Ordering::SeqCst)
        );
        let addr = self.endpoint.trim_start_matches("http://");
        let mut stream = TcpStream::connect(addr).expect("connect to the S3 endpoint");
        write!(
            stream,
            "PUT /{name} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .expect("send CreateBucket");
        let mut response = String::new();
        let _ = stream.read_to_string(&mut response);
        assert!(
            response.starts_with("HTTP/1.1 200"),
            "CreateBucket {name} failed: {response}"
        );
        name
    }

    /// This server's settings as object_store S3 options (`aws_endpoint_url`, ...).
    pub fn options(&self) -> Vec<(String, String)> {
        self.env()
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect()
    }

    /// A location in this server, configured exactly as the CLI would be from the environment.
    pub fn location(&self, url: &str) -> Location {
        Location::parse_with(url, self.options()).expect("an S3 location")
    }
}

/// A Glue catalog on the test endpoint (moto serves Glue beside S3), keeping crawl bookmarks in
/// a fresh bucket. Databases are shared by every test on the server: use [`unique_name`].
pub async fn glue() -> quarry_catalog::GlueCatalog {
    let server = s3();
    let catalog = quarry_catalog::GlueCatalog::connect(&quarry_catalog::GlueOptions {
        endpoint_url: Some(server.endpoint.clone()),
        region: Some("us-east-1".into()),
        credentials: Some(("testing".into(), "testing".into())),
        catalog_id: None,
    })
    .await;
    let state = server.location(&format!("s3://{}/state/", server.bucket("state")));
    catalog.with_bookmarks(state.store, state.prefix)
}

/// A database or table name no other test on the shared server uses.
pub fn unique_name(hint: &str) -> String {
    format!(
        "{hint}_{}_{}",
        std::process::id(),
        BUCKETS.fetch_add(1, Ordering::SeqCst)
    )
}

/// Where a test lake lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Local,
    S3,
}

pub const BACKENDS: [Backend; 2] = [Backend::Local, Backend::S3];

/// A writable copy of a lake, on the local filesystem or in a fresh S3 bucket.
pub struct Lake {
    pub backend: Backend,
    /// What to pass to `quarry crawl`.
    pub url: String,
    pub location: Location,
    _dir: Option<tempfile::TempDir>,
}

impl Lake {
    /// A copy of `sample-data/` on `backend`.
    pub async fn sample(backend: Backend) -> Self {
        let lake = Self::empty(backend).await;
        for (rel, bytes) in files_under(&sample_data()) {
            lake.put(&rel, bytes).await;
        }
        lake
    }

    pub async fn empty(backend: Backend) -> Self {
        match backend {
            Backend::Local => {
                let dir = tempfile::tempdir().expect("a temp dir");
                let root = dir.path().join("lake");
                std::fs::create_dir_all(&root).expect("create lake dir");
                let url = root.to_string_lossy().into_owned();
                Self {
                    backend,
                    location: Location::parse(&url).expect("a local location"),
                    url,
                    _dir: Some(dir),
                }
            }
            Backend::S3 => {
                let server = s3();
                let url = format!("s3://{}/lake/", server.bucket("quarry"));
                Self {
                    backend,
                    location: server.location(&url),
                    url,
                    _dir: None,
                }
            }
        }
    }

    /// Write an object (`rel` is relative to the lake root, e.g. `sales/region=eu/x.csv`).
    pub async fn put(&self, rel: &str, bytes: Vec<u8>) {
        match self.backend {
            // Plain files, as any other tool would write them (names are not re-encoded).
            Backend::Local => {
                let path = Path::new(&self.url).join(rel);
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).expect("create dirs");
                }
                std::fs::write(path, bytes).expect("write file");
            }
            Backend::S3 => {
                let key = ObjectPath::parse(format!("{}/{rel}", self.location.prefix))
                    .expect("a valid key");
                self.location
                    .store
                    .put(&key, bytes.into())
                    .await
                    .expect("PUT object");
            }
        }
    }

    /// The S3 bucket this lake lives in (`None` on the local filesystem).
    pub fn bucket(&self) -> Option<String> {
        self.url
            .strip_prefix("s3://")
            .and_then(|rest| rest.split('/').next())
            .map(str::to_string)
    }

    /// The URL of a table root in this lake, as the catalog records it.
    pub fn table_url(&self, table: &str) -> String {
        format!("{}{table}/", self.location.root_url())
    }
}

/// Every file below `dir`, as (relative path with `/`, bytes), sorted.
pub fn files_under(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path
                    .strip_prefix(dir)
                    .expect("below dir")
                    .to_string_lossy()
                    .replace('\\', "/");
                out.push((rel, std::fs::read(&path).expect("read file")));
            }
        }
    }
    out.sort();
    out
}

/// An object store wrapper that records what was listed and read, and how many body bytes it
/// served, so tests can assert request patterns and exact billing.
pub mod recording {
    use std::fmt;
    use std::ops::Range;
    use std::sync::{Arc, Mutex};

    use async_trait::async_trait;
    use bytes::Bytes;
    use futures::StreamExt;
    use futures::stream::BoxStream;
    use object_store::path::Path;
    use object_store::{
        CopyOptions, GetOptions, GetResult, GetResultPayload, ListResult, MultipartUpload,
        ObjectMeta, ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult,
        RenameOptions, Result,
    };

    #[derive(Debug, Default, Clone)]
    pub struct Log {
        pub listed: Vec<String>,
        pub read: Vec<String>,
        /// Each GET's or ranged read's object and byte range, in request order.
        pub ranges: Vec<(String, Range<u64>)>,
        pub body_bytes: u64,
    }

    #[derive(Debug)]
    pub struct RecordingStore {
        inner: Arc<dyn ObjectStore>,
        log: Arc<Mutex<Log>>,
    }

    impl RecordingStore {
        pub fn new(inner: Arc<dyn ObjectStore>) -> Self {
            Self {
                inner,
                log: Arc::default(),
            }
        }

        pub fn take(&self) -> Log {
            std::mem::take(&mut *self.log.lock().expect("log"))
        }
    }

    impl fmt::Display for RecordingStore {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "Recording({})", self.inner)
        }
    }

    #[async_trait]
    #[deny(clippy::missing_trait_methods)]
    impl ObjectStore for RecordingStore {
        async fn put_opts(&self, l: &Path, p: PutPayload, o: PutOptions) -> Result<PutResult> {
            self.inner.put_opts(l, p, o).await
        }
        async fn put_multipart_opts(
            &self,
            l: &Path,
            o: PutMultipartOptions,
        ) -> Result<Box<dyn MultipartUpload>> {
            self.inner.put_multipart_opts(l, o).await
        }
        async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
            let head = options.head;
            let r = self.inner.get_opts(location, options).await?;
            if head {
                return Ok(r);
            }
            {
                let mut log = self.log.lock().expect("log");
                log.read.push(location.to_string());
                log.ranges.push((location.to_string(), r.range.clone()));
            }
            let (meta, range, attributes) = (r.meta.clone(), r.range.clone(), r.attributes.clone());
            let log = Arc::clone(&self.log);
            let stream = r
                .into_stream()
                .map(move |c| {
                    if let Ok(b) = &c {
                        log.lock().expect("log").body_bytes += b.len() as u64;
                    }
                    c
                })
                .boxed();
            Ok(GetResult {
                payload: GetResultPayload::Stream(stream),
                meta,
                range,
                attributes,
            })
        }
        async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
            let parts = self.inner.get_ranges(location, ranges).await?;
            let mut log = self.log.lock().expect("log");
            log.read.push(location.to_string());
            log.ranges
                .extend(ranges.iter().map(|r| (location.to_string(), r.clone())));
            log.body_bytes += parts.iter().map(|b| b.len() as u64).sum::<u64>();
            Ok(parts)
        }
        fn delete_stream(
            &self,
            locations: BoxStream<'static, Result<Path>>,
        ) -> BoxStream<'static, Result<Path>> {
            self.inner.delete_stream(locations)
        }
        fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
            self.log
                .lock()
                .expect("log")
                .listed
                .push(prefix.map(|p| p.to_string()).unwrap_or_default());
            self.inner.list(prefix)
        }
        fn list_with_offset(
            &self,
            prefix: Option<&Path>,
            offset: &Path,
        ) -> BoxStream<'static, Result<ObjectMeta>> {
            self.log
                .lock()
                .expect("log")
                .listed
                .push(prefix.map(|p| p.to_string()).unwrap_or_default());
            self.inner.list_with_offset(prefix, offset)
        }
        async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
            self.log
                .lock()
                .expect("log")
                .listed
                .push(prefix.map(|p| p.to_string()).unwrap_or_default());
            self.inner.list_with_delimiter(prefix).await
        }
        async fn copy_opts(&self, from: &Path, to: &Path, o: CopyOptions) -> Result<()> {
            self.inner.copy_opts(from, to, o).await
        }
        async fn rename_opts(&self, from: &Path, to: &Path, o: RenameOptions) -> Result<()> {
            self.inner.rename_opts(from, to, o).await
        }
    }
}

/// An object store wrapper that fails the N-th write (PUT, multipart create / part / complete,
/// copy, rename) with a store error, for atomicity tests. Reads, listings and deletes pass.
pub mod failing {
    use std::fmt;
    use std::ops::Range;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;
    use bytes::Bytes;
    use futures::stream::BoxStream;
    use object_store::path::Path;
    use object_store::{
        CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
        PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions, Result, UploadPart,
    };

    #[derive(Debug)]
    struct Counter {
        writes: AtomicUsize,
        fail_at: AtomicUsize,
    }

    impl Counter {
        /// Count one write; an error if it is the one to fail.
        fn write(&self, what: &str, path: &Path) -> Result<()> {
            let n = self.writes.fetch_add(1, Ordering::SeqCst) + 1;
            if n == self.fail_at.load(Ordering::SeqCst) {
                return Err(object_store::Error::Generic {
                    store: "FailingStore",
                    source: format!("injected failure of write {n} ({what} {path})").into(),
                });
            }
            Ok(())
        }
    }

    #[derive(Debug)]
    pub struct FailingStore {
        inner: Arc<dyn ObjectStore>,
        counter: Arc<Counter>,
    }

    impl FailingStore {
        pub fn new(inner: Arc<dyn ObjectStore>) -> Self {
            Self {
                inner,
                counter: Arc::new(Counter {
                    writes: AtomicUsize::new(0),
                    fail_at: AtomicUsize::new(0),
                }),
            }
        }

        /// Fail the `n`-th write from now on (0: never), counting from zero again.
        pub fn fail_at(&self, n: usize) {
            self.counter.writes.store(0, Ordering::SeqCst);
            self.counter.fail_at.store(n, Ordering::SeqCst);
        }

        /// Writes since the last [`FailingStore::fail_at`].
        pub fn writes(&self) -> usize {
            self.counter.writes.load(Ordering::SeqCst)
        }
    }

    impl fmt::Display for FailingStore {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "Failing({})", self.inner)
        }
    }

    #[derive(Debug)]
    struct FailingUpload {
        inner: Box<dyn MultipartUpload>,
        counter: Arc<Counter>,
        path: Path,
    }

    #[async_trait]
    #[deny(clippy::missing_trait_methods)]
    impl MultipartUpload for FailingUpload {
        fn put_part(&mut self, data: PutPayload) -> UploadPart {
            let failed = self.counter.write("upload part", &self.path);
            let part = self.inner.put_part(data);
            Box::pin(async move {
                failed?;
                part.await
            })
        }
        async fn complete(&mut self) -> Result<PutResult> {
            self.counter.write("complete upload", &self.path)?;
            self.inner.complete().await
        }
        async fn abort(&mut self) -> Result<()> {
            self.inner.abort().await
        }
    }

    #[async_trait]
    #[deny(clippy::missing_trait_methods)]
    impl ObjectStore for FailingStore {
        async fn put_opts(&self, l: &Path, p: PutPayload, o: PutOptions) -> Result<PutResult> {
            self.counter.write("put", l)?;
            self.inner.put_opts(l, p, o).await
        }
        async fn put_multipart_opts(
            &self,
            l: &Path,
            o: PutMultipartOptions,
        ) -> Result<Box<dyn MultipartUpload>> {
            self.counter.write("create upload", l)?;
            let inner = self.inner.put_multipart_opts(l, o).await?;
            Ok(Box::new(FailingUpload {
                inner,
                counter: Arc::clone(&self.counter),
                path: l.clone(),
            }))
        }
        async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
            self.inner.get_opts(location, options).await
        }
        async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
            self.inner.get_ranges(location, ranges).await
        }
        fn delete_stream(
            &self,
            locations: BoxStream<'static, Result<Path>>,
        ) -> BoxStream<'static, Result<Path>> {
            self.inner.delete_stream(locations)
        }
        fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
            self.inner.list(prefix)
        }
        fn list_with_offset(
            &self,
            prefix: Option<&Path>,
            offset: &Path,
        ) -> BoxStream<'static, Result<ObjectMeta>> {
            self.inner.list_with_offset(prefix, offset)
        }
        async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
            self.inner.list_with_delimiter(prefix).await
        }
        async fn copy_opts(&self, from: &Path, to: &Path, o: CopyOptions) -> Result<()> {
            self.counter.write("copy", to)?;
            self.inner.copy_opts(from, to, o).await
        }
        async fn rename_opts(&self, from: &Path, to: &Path, o: RenameOptions) -> Result<()> {
            self.counter.write("rename", to)?;
            self.inner.rename_opts(from, to, o).await
        }
    }
}

/// A fault-injecting object store for reliability tests (issue 16): a seeded share of calls
/// fails the way S3 fails (HTTP 500 / 503 SlowDown, connection reset, timeout), returns a body
/// cut short of its Content-Length, or ends a listing with an error part-way. Writes pass
/// through unharmed unless `writes` is set. Every injected fault says `injected fault` and
/// names the object, so a test can tell an honest error from a wrong answer.
pub mod faults {
    use std::fmt;
    use std::ops::Range;
    use std::sync::Arc;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU64, Ordering};

    use async_trait::async_trait;
    use bytes::Bytes;
    use futures::StreamExt;
    use futures::stream::BoxStream;
    use object_store::path::Path;
    use object_store::{
        CopyOptions, GetOptions, GetResult, GetResultPayload, ListResult, MultipartUpload,
        ObjectMeta, ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult,
        RenameOptions, Result,
    };

    /// What went wrong on one call.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Fault {
        /// HTTP 500 InternalError.
        Internal,
        /// HTTP 503 SlowDown.
        SlowDown,
        /// The connection was reset.
        Reset,
        /// The request timed out.
        Timeout,
        /// The body ends early: fewer bytes than the range asked for.
        Truncated,
        /// A listing fails after its first entries.
        ListingCut,
        /// The object was rewritten since it was listed: a read that names the listed version
        /// (`If-Match`) fails with 412 Precondition Failed; one that does not gets the new,
        /// different bytes.
        Overwritten,
    }

    /// Counters of one store's life.
    #[derive(Debug, Default, Clone, PartialEq, Eq)]
    pub struct Figures {
        pub operations: u64,
        pub faults: u64,
        /// Overwritten objects read without naming the listed version (so read as changed).
        pub unpinned_overwrites: u64,
    }

    /// splitmix64: a seeded sequence, so a failing seed replays exactly.
    #[derive(Debug)]
    struct Dice(u64);

    impl Dice {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
    }

    #[derive(Debug)]
    pub struct FaultyStore {
        inner: Arc<dyn ObjectStore>,
        /// Faults per million calls.
        rate: u64,
        /// Fault exactly this call (1-based) instead, whatever the rate.
        nth: Option<u64>,
        dice: Mutex<Dice>,
        operations: AtomicU64,
        faults: AtomicU64,
        unpinned: AtomicU64,
        /// Fault writes too (PUT, multipart, copy, rename, delete).
        pub writes: bool,
    }

    impl FaultyStore {
        /// Faults on about `rate` (0.0 to 1.0) of the calls, in the order `seed` decides.
        pub fn new(inner: Arc<dyn ObjectStore>, rate: f64, seed: u64) -> Self {
            Self {
                inner,
                rate: (rate.clamp(0.0, 1.0) * 1_000_000.0) as u64,
                nth: None,
                dice: Mutex::new(Dice(seed)),
                operations: AtomicU64::new(0),
                faults: AtomicU64::new(0),
                unpinned: AtomicU64::new(0),
                writes: false,
            }
        }

        /// Faults on the `n`-th call only (1-based); `seed` picks the kind of fault.
        pub fn on_call(inner: Arc<dyn ObjectStore>, n: u64, seed: u64) -> Self {
            Self {
                nth: Some(n),
                ..Self::new(inner, 0.0, seed)
            }
        }

        pub fn figures(&self) -> Figures {
            Figures {
                operations: self.operations.load(Ordering::SeqCst),
                faults: self.faults.load(Ordering::SeqCst),
                unpinned_overwrites: self.unpinned.load(Ordering::SeqCst),
            }
        }

        /// Whether this call fails, and how (one of `kinds`).
        fn roll(&self, kinds: &[Fault]) -> Option<Fault> {
            let call = self.operations.fetch_add(1, Ordering::SeqCst) + 1;
            let mut dice = self.dice.lock().expect("dice");
            let hit = match self.nth {
                Some(n) => call == n,
                None => dice.next() % 1_000_000 < self.rate,
            };
            if !hit {
                return None;
            }
            self.faults.fetch_add(1, Ordering::SeqCst);
            Some(kinds[(dice.next() % kinds.len() as u64) as usize])
        }

        fn write_fault(&self, what: &str, path: &Path) -> Result<()> {
            if !self.writes {
                return Ok(());
            }
            match self.roll(&[
                Fault::Internal,
                Fault::SlowDown,
                Fault::Reset,
                Fault::Timeout,
            ]) {
                Some(f) => Err(error(f, &format!("{what} {path}"))),
                None => Ok(()),
            }
        }
    }

    /// The error a fault surfaces as.
    pub fn error(fault: Fault, what: &str) -> object_store::Error {
        let message = match fault {
            Fault::Internal => "HTTP status server error (500 Internal Server Error)",
            Fault::SlowDown => {
                "HTTP status server error (503 Slow Down): Please reduce your request rate"
            }
            Fault::Reset => "error sending request: connection reset by peer",
            Fault::Timeout => "error sending request: operation timed out",
            Fault::Truncated => "the body ended before its Content-Length",
            Fault::ListingCut => "the listing failed part-way: connection reset by peer",
            Fault::Overwritten => "412 Precondition Failed: the object was overwritten",
        };
        object_store::Error::Generic {
            store: "FaultyStore",
            source: format!("injected fault on {what}: {message}").into(),
        }
    }

    const REQUEST: [Fault; 4] = [
        Fault::Internal,
        Fault::SlowDown,
        Fault::Reset,
        Fault::Timeout,
    ];

    impl fmt::Display for FaultyStore {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "Faulty({})", self.inner)
        }
    }

    #[async_trait]
    #[deny(clippy::missing_trait_methods)]
    impl ObjectStore for FaultyStore {
        async fn put_opts(&self, l: &Path, p: PutPayload, o: PutOptions) -> Result<PutResult> {
            self.write_fault("PUT", l)?;
            self.inner.put_opts(l, p, o).await
        }
        async fn put_multipart_opts(
            &self,
            l: &Path,
            o: PutMultipartOptions,
        ) -> Result<Box<dyn MultipartUpload>> {
            self.write_fault("multipart upload", l)?;
            self.inner.put_multipart_opts(l, o).await
        }
        async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
            let kinds: &[Fault] = if options.head {
                &REQUEST
            } else {
                &[
                    Fault::Internal,
                    Fault::SlowDown,
                    Fault::Reset,
                    Fault::Timeout,
                    Fault::Truncated,
                    Fault::Overwritten,
                ]
            };
            let fault = self.roll(kinds);
            if fault == Some(Fault::Overwritten) && options.if_match.is_some() {
                return Err(object_store::Error::Precondition {
                    path: location.to_string(),
                    source: error(Fault::Overwritten, &format!("GET {location}")).into(),
                });
            }
            if let Some(f) = fault
                && f != Fault::Truncated
                && f != Fault::Overwritten
            {
                return Err(error(f, &format!("GET {location}")));
            }
            let r = self.inner.get_opts(location, options).await?;
            if fault.is_none() {
                return Ok(r);
            }
            if fault == Some(Fault::Overwritten) {
                self.unpinned.fetch_add(1, Ordering::SeqCst);
                // A reader that did not pin the version gets other bytes of the same length.
                let (meta, range, attributes) =
                    (r.meta.clone(), r.range.clone(), r.attributes.clone());
                let body: Bytes = r.bytes().await?.iter().map(|b| b ^ 0x01).collect();
                return Ok(GetResult {
                    payload: GetResultPayload::Stream(
                        futures::stream::once(async move { Ok(body) }).boxed(),
                    ),
                    meta,
                    range,
                    attributes,
                });
            }
            // Half the body, then a clean end, as a connection closed early looks.
            let (meta, range, attributes) = (r.meta.clone(), r.range.clone(), r.attributes.clone());
            let body = r.bytes().await?;
            let cut = body.slice(..body.len() / 2);
            Ok(GetResult {
                payload: GetResultPayload::Stream(
                    futures::stream::once(async move { Ok(cut) }).boxed(),
                ),
                meta,
                range,
                attributes,
            })
        }
        async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
            match self.roll(&[
                Fault::Internal,
                Fault::SlowDown,
                Fault::Reset,
                Fault::Timeout,
                Fault::Truncated,
            ]) {
                None => self.inner.get_ranges(location, ranges).await,
                Some(Fault::Truncated) => {
                    let mut parts = self.inner.get_ranges(location, ranges).await?;
                    if let Some(last) = parts.last_mut() {
                        *last = last.slice(..last.len() / 2);
                    }
                    Ok(parts)
                }
                Some(f) => Err(error(f, &format!("GET {location}"))),
            }
        }
        fn delete_stream(
            &self,
            locations: BoxStream<'static, Result<Path>>,
        ) -> BoxStream<'static, Result<Path>> {
            self.inner.delete_stream(locations)
        }
        fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
            let what = format!("LIST {}", prefix.map(|p| p.to_string()).unwrap_or_default());
            match self.roll(&[Fault::Internal, Fault::SlowDown, Fault::ListingCut]) {
                None => self.inner.list(prefix),
                Some(Fault::ListingCut) => self
                    .inner
                    .list(prefix)
                    .take(1)
                    .chain(futures::stream::once(async move {
                        Err(error(Fault::ListingCut, &what))
                    }))
                    .boxed(),
                Some(f) => futures::stream::once(async move { Err(error(f, &what)) }).boxed(),
            }
        }
        fn list_with_offset(
            &self,
            prefix: Option<&Path>,
            offset: &Path,
        ) -> BoxStream<'static, Result<ObjectMeta>> {
            self.inner.list_with_offset(prefix, offset)
        }
        async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
            if let Some(f) = self.roll(&REQUEST) {
                let what = format!("LIST {}", prefix.map(|p| p.to_string()).unwrap_or_default());
                return Err(error(f, &what));
            }
            self.inner.list_with_delimiter(prefix).await
        }
        async fn copy_opts(&self, from: &Path, to: &Path, o: CopyOptions) -> Result<()> {
            self.write_fault("COPY", from)?;
            self.inner.copy_opts(from, to, o).await
        }
        async fn rename_opts(&self, from: &Path, to: &Path, o: RenameOptions) -> Result<()> {
            self.write_fault("RENAME", from)?;
            self.inner.rename_opts(from, to, o).await
        }
    }

    /// An HTTP proxy in front of the S3 endpoint that fails a seeded share of requests on the
    /// wire, below object_store's client, so its retries meet them as they meet S3's: 500
    /// InternalError, 503 SlowDown, a connection closed before any answer, and an answer whose
    /// body stops half-way through its Content-Length. Each request gets its own connection
    /// (`Connection: close` both ways), so every request can fail.
    pub struct FlakyHttp {
        /// `http://127.0.0.1:PORT`, to use as the S3 endpoint.
        pub endpoint: String,
        faults: Arc<AtomicU64>,
        requests: Arc<AtomicU64>,
    }

    impl FlakyHttp {
        /// Proxy to `upstream` (`http://host:port`), failing `rate` of requests, seeded.
        pub fn start(upstream: &str, rate: f64, seed: u64) -> Self {
            let upstream = upstream.trim_start_matches("http://").to_string();
            let listener =
                std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port for the proxy");
            let endpoint = format!("http://{}", listener.local_addr().expect("proxy address"));
            let faults = Arc::new(AtomicU64::new(0));
            let requests = Arc::new(AtomicU64::new(0));
            let dice = Arc::new(Mutex::new(Dice(seed)));
            let (f, r) = (Arc::clone(&faults), Arc::clone(&requests));
            std::thread::spawn(move || {
                for client in listener.incoming().flatten() {
                    let roll = dice.lock().expect("dice").next();
                    let fault = ((roll >> 11) as f64 / (1u64 << 53) as f64) < rate;
                    let kind = [
                        Fault::Internal,
                        Fault::SlowDown,
                        Fault::Reset,
                        Fault::Truncated,
                    ][(roll % 4) as usize];
                    let (f, r, upstream) = (Arc::clone(&f), Arc::clone(&r), upstream.clone());
                    std::thread::spawn(move || {
                        r.fetch_add(1, Ordering::SeqCst);
                        let injected = relay(client, &upstream, fault.then_some(kind));
                        if injected {
                            f.fetch_add(1, Ordering::SeqCst);
                        }
                    });
                }
            });
            Self {
                endpoint,
                faults,
                requests,
            }
        }

        /// Requests seen and faults injected so far.
        pub fn figures(&self) -> (u64, u64) {
            (
                self.requests.load(Ordering::SeqCst),
                self.faults.load(Ordering::SeqCst),
            )
        }
    }

    /// Read an HTTP head (through the blank line) from `from`; `None` at end of stream.
    fn read_head(from: &mut impl std::io::Read) -> Option<Vec<u8>> {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            match from.read(&mut byte) {
                Ok(1) => head.push(byte[0]),
                _ => return None,
            }
        }
        Some(head)
    }

    /// `head` with any Connection header replaced by `Connection: close`, and its
    /// Content-Length (if any).
    fn closing(head: &[u8]) -> (Vec<u8>, Option<usize>) {
        let text = String::from_utf8_lossy(head);
        let mut lines: Vec<&str> = text.trim_end().split("\r\n").collect();
        let length = lines.iter().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        });
        lines.retain(|l| {
            !l.split_once(':')
                .is_some_and(|(k, _)| k.eq_ignore_ascii_case("connection"))
        });
        let mut out = lines.join("\r\n");
        out.push_str("\r\nConnection: close\r\n\r\n");
        (out.into_bytes(), length)
    }

    /// Serve one request of `client` through `upstream`, injecting `fault`; whether a fault
    /// reached the client.
    fn relay(mut client: std::net::TcpStream, upstream: &str, fault: Option<Fault>) -> bool {
        use std::io::{Read, Write};
        let Some(head) = read_head(&mut client) else {
            return false;
        };
        let (head, length) = closing(&head);
        let mut body = vec![0u8; length.unwrap_or(0)];
        if client.read_exact(&mut body).is_err() {
            return false;
        }
        let answer = |status: &str, code: &str| {
            let body =
                format!("<Error><Code>{code}</Code><Message>injected fault</Message></Error>");
            format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
        };
        match fault {
            Some(Fault::Internal) => {
                let _ = client
                    .write_all(answer("500 Internal Server Error", "InternalError").as_bytes());
                return true;
            }
            Some(Fault::SlowDown) => {
                let _ = client.write_all(answer("503 Slow Down", "SlowDown").as_bytes());
                return true;
            }
            Some(Fault::Reset) => {
                let _ = client.shutdown(std::net::Shutdown::Both);
                return true;
            }
            _ => {}
        }
        let Ok(mut server) = std::net::TcpStream::connect(upstream) else {
            return false;
        };
        if server.write_all(&head).is_err() || server.write_all(&body).is_err() {
            return false;
        }
        let Some(answer_head) = read_head(&mut server) else {
            return false;
        };
        let (answer_head, answer_length) = closing(&answer_head);
        let _ = client.write_all(&answer_head);
        let mut rest = Vec::new();
        let _ = server.read_to_end(&mut rest);
        // A body cut short: only bodies worth cutting (a GET's data), half of them.
        let cut = fault == Some(Fault::Truncated) && answer_length.is_some_and(|n| n > 1);
        let send = if cut {
            &rest[..rest.len() / 2]
        } else {
            &rest[..]
        };
        let _ = client.write_all(send);
        let _ = client.shutdown(std::net::Shutdown::Both);
        cut
    }
}

/// A throw-away PostgreSQL cluster (`initdb` + `pg_ctl` on a free loopback port) for the
/// federation tests, logging every statement it receives so tests can see what was pushed down.
///
/// `QUARRY_TEST_PG_URI` and `QUARRY_TEST_PG_LOG` name one when set (`scripts/test` starts one for
/// the whole run); otherwise the first test that needs it starts one, and a watchdog stops it and
/// removes its folder when the test process exits. As root, the server runs as the `postgres`
/// user (PostgreSQL refuses to run as root).
pub struct PgServer {
    /// `postgresql://quarry@127.0.0.1:PORT/postgres`
    pub uri: String,
    /// The server's log, with every statement (`log_statement = all`).
    pub log: PathBuf,
    pub port: u16,
    _watchdog: Option<std::process::Child>,
}

static PG: OnceLock<PgServer> = OnceLock::new();

/// The folder of PostgreSQL's server programs (`initdb`, `pg_ctl`).
fn pg_bindir() -> PathBuf {
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("initdb").exists() {
            return dir;
        }
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| d.flatten().map(|e| e.path().join("bin")).collect())
        .unwrap_or_default();
    versions.sort();
    versions.pop().filter(|d| d.join("initdb").exists()).expect(
        "PostgreSQL server programs (initdb, pg_ctl); install them: apt-get install postgresql",
    )
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// The shared PostgreSQL server of this test process.
pub fn postgres() -> &'static PgServer {
    PG.get_or_init(|| {
        if let (Ok(uri), Ok(log)) = (
            std::env::var("QUARRY_TEST_PG_URI"),
            std::env::var("QUARRY_TEST_PG_LOG"),
        ) {
            let port = uri
                .rsplit_once(':')
                .and_then(|(_, rest)| rest.split('/').next()?.parse().ok())
                .unwrap_or(5432);
            return PgServer {
                uri,
                log: PathBuf::from(log),
                port,
                _watchdog: None,
            };
        }
        let bin = pg_bindir();
        let dir = std::env::temp_dir().join(format!("quarry-pg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("pg folder");
        let root = is_root();
        if root {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir)
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "chown of {} to postgres failed", dir.display());
        }
        let as_owner = |program: &str| {
            let mut c = if root {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(bin.join(program));
                c
            } else {
                Command::new(bin.join(program))
            };
            c.stdin(Stdio::null());
            c
        };
        let data = dir.join("data");
        let out = as_owner("initdb")
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "quarry",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
                "--no-instructions",
            ])
            .output()
            .expect("initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_port();
        let log = dir.join("server.log");
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c log_statement=all -c fsync=off \
             -c full_page_writes=off -c synchronous_commit=off",
            dir.display()
        );
        let out = as_owner("pg_ctl")
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(&log)
            .args(["-o", &options, "-w", "-t", "60", "start"])
            .output()
            .expect("pg_ctl");
        assert!(
            out.status.success(),
            "pg_ctl start failed: {}{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        let stop = format!(
            "{runas}{pg_ctl} -D {data} -m immediate stop >/dev/null 2>&1; rm -rf {dir}",
            runas = if root { "runuser -u postgres -- " } else { "" },
            pg_ctl = bin.join("pg_ctl").display(),
            data = data.display(),
            dir = dir.display(),
        );
        let watchdog = watchdog(":", &stop);
        PgServer {
            uri: format!("postgresql://quarry@127.0.0.1:{port}/postgres"),
            log,
            port,
            _watchdog: Some(watchdog),
        }
    })
}

impl PgServer {
    /// Runs SQL through `psql` (stopping at the first error).
    pub fn exec(&self, sql: &str) {
        let mut child = Command::new("psql")
            .args([
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                &self.uri,
                "-f",
                "-",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("psql");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(sql.as_bytes())
            .expect("psql stdin");
        let out = child.wait_with_output().expect("psql");
        assert!(
            out.status.success(),
            "psql failed: {}\n{sql}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The statements the server logged since `from` (a byte offset of its log).
    pub fn statements_since(&self, from: u64) -> String {
        let text = std::fs::read(&self.log).unwrap_or_default();
        String::from_utf8_lossy(text.get(from as usize..).unwrap_or_default()).into_owned()
    }

    /// The current end of the server log, for [`PgServer::statements_since`].
    pub fn log_mark(&self) -> u64 {
        std::fs::metadata(&self.log).map(|m| m.len()).unwrap_or(0)
    }
}

/// A DynamoDB client for the shared moto server (tables, items), as a test sets them up.
pub fn dynamodb() -> aws_sdk_dynamodb::Client {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .endpoint_url(s3().endpoint.clone())
        .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "testing",
            "testing",
            None,
            None,
            "quarry-tests",
        ))
        .http_client(http)
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

/// Creates a DynamoDB table on the moto server, keyed by the string attribute `hash`, holding
/// `items` (JSON: strings are `S`, numbers `N`, booleans `BOOL`, arrays of strings `SS`, other
/// arrays `L`, objects `M`).
pub async fn dynamodb_table(name: &str, hash: &str, items: &[serde_json::Value]) {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
        ScalarAttributeType,
    };
    fn attribute(v: &serde_json::Value) -> AttributeValue {
        match v {
            serde_json::Value::String(s) => AttributeValue::S(s.clone()),
            serde_json::Value::Number(n) => AttributeValue::N(n.to_string()),
            serde_json::Value::Bool(b) => AttributeValue::Bool(*b),
            serde_json::Value::Null => AttributeValue::Null(true),
            serde_json::Value::Array(a) if a.iter().all(|x| x.is_string()) && !a.is_empty() => {
                AttributeValue::Ss(
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_owned))
                        .collect(),
                )
            }
            serde_json::Value::Array(a) => AttributeValue::L(a.iter().map(attribute).collect()),
            serde_json::Value::Object(o) => {
                AttributeValue::M(o.iter().map(|(k, v)| (k.clone(), attribute(v))).collect())
            }
        }
    }
    let ddb = dynamodb();
    ddb.create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(hash)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("attribute"),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name(hash)
                .key_type(KeyType::Hash)
                .build()
                .expect("key"),
        )
        .send()
        .await
        .expect("create table");
    for item in items {
        let map = item
            .as_object()
            .expect("an item is a JSON object")
            .iter()
            .map(|(k, v)| (k.clone(), attribute(v)))
            .collect();
        ddb.put_item()
            .table_name(name)
            .set_item(Some(map))
            .send()
            .await
            .expect("put item");
    }
}

/// A throw-away `redis-server` on a free loopback port (no persistence) for the federation
/// tests; `QUARRY_TEST_REDIS_PORT` names one when set. A watchdog stops it when the test process
/// exits.
pub struct RedisServer {
    pub port: u16,
    _watchdog: Option<std::process::Child>,
}

static REDIS: OnceLock<RedisServer> = OnceLock::new();

/// The shared Redis server of this test process.
pub fn redis() -> &'static RedisServer {
    REDIS.get_or_init(|| {
        if let Some(port) = std::env::var("QUARRY_TEST_REDIS_PORT")
            .ok()
            .and_then(|p| p.parse().ok())
        {
            return RedisServer {
                port,
                _watchdog: None,
            };
        }
        let port = free_port();
        let watchdog = watchdog(
            &format!(
                "redis-server --port {port} --bind 127.0.0.1 --save '' --appendonly no >/dev/null 2>&1 & s=$!"
            ),
            "kill $s",
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not start on {port}; install it: apt-get install redis-server"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        RedisServer {
            port,
            _watchdog: Some(watchdog),
        }
    })
}

impl RedisServer {
    /// Runs one command through `redis-cli`.
    pub fn cmd(&self, args: &[&str]) {
        let out = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && !text.starts_with("ERR"),
            "redis-cli {args:?}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A catalog table declaring a Redis table, as Athena's Redis connector reads them from Glue.
pub fn redis_table(
    database: &str,
    name: &str,
    columns: &[(&str, &str)],
    properties: &[(&str, String)],
) -> quarry_catalog::Table {
    quarry_catalog::Table {
        database: database.into(),
        name: name.into(),
        description: None,
        table_type: "EXTERNAL_TABLE".into(),
        view: None,
        storage: quarry_catalog::StorageDescriptor {
            location: String::new(),
            columns: columns
                .iter()
                .map(|(n, t)| quarry_catalog::Column::new(*n, *t))
                .collect(),
            ..Default::default()
        },
        partition_keys: Vec::new(),
        parameters: properties
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
        create_time: chrono::Utc::now(),
        update_time: chrono::Utc::now(),
        version: 0,
    }
}
