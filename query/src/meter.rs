//! Bytes-scanned metering: an [`ObjectStore`] wrapper that counts the body bytes a query
//! consumes from GET responses and `get_ranges` results. HEAD and LIST are not billed. One
//! [`Meter`] per query, never a process-wide counter.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, GetResultPayload, ListResult, MultipartUpload, ObjectMeta,
    ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions, Result,
};

/// The running byte count of one query (or of one scan within it), with an optional limit.
#[derive(Debug, Default)]
pub struct Meter {
    bytes: AtomicU64,
    limit: Option<u64>,
    /// The query's meter, when this one counts a single scan.
    parent: Option<Arc<Meter>>,
}

impl Meter {
    pub fn new(limit: Option<u64>) -> Arc<Self> {
        Arc::new(Self {
            bytes: AtomicU64::new(0),
            limit,
            parent: None,
        })
    }

    /// A meter for one scan: its bytes also count (and are limited) in `parent`.
    pub fn child(parent: &Arc<Meter>) -> Arc<Self> {
        Arc::new(Self {
            bytes: AtomicU64::new(0),
            limit: None,
            parent: Some(Arc::clone(parent)),
        })
    }

    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    pub fn limit(&self) -> Option<u64> {
        self.limit
    }

    /// Counts `n` bytes read other than through an object store (a federated connector's
    /// answer); an error once the running total passes the limit.
    pub fn charge(&self, n: u64) -> Result<()> {
        self.add(n)
    }

    /// Add `n` bytes; an error once the running total passes the limit.
    fn add(&self, n: u64) -> Result<()> {
        let total = self.bytes.fetch_add(n, Ordering::Relaxed) + n;
        if let Some(parent) = &self.parent {
            parent.add(n)?;
        }
        match self.limit {
            Some(limit) if total > limit => Err(object_store::Error::Generic {
                store: "quarry",
                source: Box::new(LimitExceeded { read: total, limit }),
            }),
            _ => Ok(()),
        }
    }
}

/// The query read more than `--max-bytes-scanned` allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitExceeded {
    pub read: u64,
    pub limit: u64,
}

impl fmt::Display for LimitExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "query cancelled: it read {} bytes, more than the --max-bytes-scanned limit of {} bytes; \
             narrow it with partition filters or raise the limit",
            self.read, self.limit
        )
    }
}

impl std::error::Error for LimitExceeded {}

/// Chunks of a local file as a stream. object_store's own conversion reads 8 KiB at a time on
/// the blocking pool, which made newline-delimited readers (CSV, JSON) several times slower than
/// reading the file. Reads here are 1 MiB, into uninitialised buffers, and done inline like
/// DataFusion's own reader of local files (a `BufReader` polled on the worker): a hand-off to the
/// blocking pool per chunk cost more in thread wake-ups than the read, which the page cache
/// usually serves.
fn file_stream(
    file: std::fs::File,
    path: std::path::PathBuf,
    range: Range<u64>,
) -> BoxStream<'static, Result<Bytes>> {
    use std::io::{Read, Seek, SeekFrom};
    const CHUNK: u64 = 1 << 20;
    // The last bytes of a range are read in small steps: DataFusion's readers of CSV / JSON
    // byte-range partitions fetch 16 KiB past their range and stop at the first line end there,
    // and bytes a reader never takes are not billed.
    const TAIL: u64 = 32 << 10;
    const TAIL_STEP: u64 = 1 << 10;
    let generic = move |e: std::io::Error| object_store::Error::Generic {
        store: "LocalFileSystem",
        source: format!("reading {}: {e}", path.display()).into(),
    };
    let mut file = Some(file);
    let mut pos = range.start;
    futures::stream::poll_fn(move |_| {
        let Some(f) = file.as_mut() else {
            return std::task::Poll::Ready(None);
        };
        if pos >= range.end {
            file = None;
            return std::task::Poll::Ready(None);
        }
        let remaining = range.end - pos;
        let len = if remaining > TAIL {
            (remaining - TAIL).min(CHUNK)
        } else {
            remaining.min(TAIL_STEP)
        };
        let mut buf = Vec::with_capacity(len as usize);
        let read = (|| {
            if pos == range.start {
                f.seek(SeekFrom::Start(pos))?;
            }
            f.take(len).read_to_end(&mut buf)?;
            if (buf.len() as u64) < len {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!(
                        "the file ends at byte {}, before the end of the range read ({})",
                        pos + buf.len() as u64,
                        range.end
                    ),
                ));
            }
            Ok(())
        })();
        std::task::Poll::Ready(Some(match read {
            Ok(()) => {
                pos += len;
                Ok(Bytes::from(buf))
            }
            Err(e) => {
                file = None;
                Err(generic(e))
            }
        }))
    })
    .boxed()
}

/// The object versions one scan listed (see [`crate::provider::ScanInfo::versions`]).
#[derive(Debug, Clone)]
pub struct Pins {
    pub log: crate::provider::ScanLog,
    pub scan: usize,
}

impl Pins {
    fn version(&self, location: &Path) -> Option<String> {
        let log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        log.get(self.scan)?.versions.get(location).cloned()
    }
}

/// An object store that meters body bytes into a [`Meter`] and, for a table scan, reads the
/// object versions the scan listed (`If-Match`), so a query never mixes two versions of a file.
#[derive(Debug)]
pub struct MeteredStore {
    inner: Arc<dyn ObjectStore>,
    meter: Arc<Meter>,
    pins: Option<Pins>,
}

impl MeteredStore {
    pub fn new(inner: Arc<dyn ObjectStore>, meter: Arc<Meter>) -> Self {
        Self {
            inner,
            meter,
            pins: None,
        }
    }

    pub fn with_pins(mut self, pins: Pins) -> Self {
        self.pins = Some(pins);
        self
    }

    fn pinned(&self, location: &Path) -> Option<String> {
        self.pins.as_ref()?.version(location)
    }
}

/// The error of an object whose version changed since the scan listed it.
fn changed(location: &Path, source: object_store::Error) -> object_store::Error {
    match source {
        object_store::Error::Precondition { .. } => object_store::Error::Generic {
            store: "Quarry",
            source: format!(
                "{location} changed while the query read it (its ETag is no longer the one \
                 listed); run the query again: {source}"
            )
            .into(),
        },
        other => other,
    }
}

impl fmt::Display for MeteredStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Metered({})", self.inner)
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl ObjectStore for MeteredStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, mut options: GetOptions) -> Result<GetResult> {
        let head = options.head;
        if options.if_match.is_none() {
            options.if_match = self.pinned(location);
        }
        let result = self
            .inner
            .get_opts(location, options)
            .await
            .map_err(|e| changed(location, e))?;
        if head {
            return Ok(result);
        }
        let (meta, range, attributes) = (
            result.meta.clone(),
            result.range.clone(),
            result.attributes.clone(),
        );
        let meter = Arc::clone(&self.meter);
        // Count bytes as the reader consumes them: a cancelled query is billed for what it read.
        let body = match result.payload {
            GetResultPayload::File(file, path) => file_stream(file, path, range.clone()),
            GetResultPayload::Stream(s) => s,
        };
        let received = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&received);
        // A body that ends before the range it answers (a connection closed early) is an error
        // naming the object, never a shorter file read as if it were whole.
        let expected = range.end.saturating_sub(range.start);
        let object = location.to_string();
        let tail = futures::stream::once(async move {
            let got = received.load(Ordering::SeqCst);
            (got < expected).then(|| Err(quarry_lake::short_body(&object, got, expected)))
        })
        .filter_map(|e| async move { e });
        let stream = body
            .map(move |chunk| {
                let chunk = chunk?;
                counted.fetch_add(chunk.len() as u64, Ordering::SeqCst);
                meter.add(chunk.len() as u64)?;
                Ok(chunk)
            })
            .chain(tail)
            .boxed();
        Ok(GetResult {
            payload: GetResultPayload::Stream(stream),
            meta,
            range,
            attributes,
        })
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        let parts = match self.pinned(location) {
            None => self.inner.get_ranges(location, ranges).await?,
            // Each (coalesced) range asks for the listed version.
            Some(version) => {
                let inner = &self.inner;
                object_store::coalesce_ranges(
                    ranges,
                    |range| {
                        let expected = range.end.saturating_sub(range.start);
                        let options = GetOptions {
                            range: Some(range.into()),
                            if_match: Some(version.clone()),
                            ..Default::default()
                        };
                        async move {
                            let body = inner
                                .get_opts(location, options)
                                .await
                                .map_err(|e| changed(location, e))?
                                .bytes()
                                .await?;
                            // Checked before the ranges are cut out of it.
                            if (body.len() as u64) < expected {
                                return Err(quarry_lake::short_body(
                                    location.as_ref(),
                                    body.len() as u64,
                                    expected,
                                ));
                            }
                            Ok(body)
                        }
                    },
                    object_store::OBJECT_STORE_COALESCE_DEFAULT,
                )
                .await?
            }
        };
        self.meter.add(parts.iter().map(|b| b.len() as u64).sum())?;
        for (part, range) in parts.iter().zip(ranges) {
            let expected = range.end.saturating_sub(range.start);
            if (part.len() as u64) < expected {
                return Err(quarry_lake::short_body(
                    location.as_ref(),
                    part.len() as u64,
                    expected,
                ));
            }
        }
        Ok(parts)
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

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        self.inner.rename_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    use object_store::ObjectStoreExt;
    use object_store::memory::InMemory;

    use super::*;

    /// A metered local folder holding `f.bin` with `body`.
    fn local_file(body: &[u8]) -> (tempfile::TempDir, MeteredStore, Arc<Meter>) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f.bin"), body).unwrap();
        let inner: Arc<dyn ObjectStore> =
            Arc::new(object_store::local::LocalFileSystem::new_with_prefix(dir.path()).unwrap());
        let meter = Meter::new(None);
        (dir, MeteredStore::new(inner, meter.clone()), meter)
    }

    async fn store() -> (Arc<dyn ObjectStore>, Path) {
        let inner: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let p = Path::from("a/b.bin");
        inner.put(&p, vec![7u8; 1000].into()).await.unwrap();
        (inner, p)
    }

    #[tokio::test]
    async fn counts_get_bodies_and_ranges_but_not_head_or_list() {
        let (inner, p) = store().await;
        let meter = Meter::new(None);
        let s = MeteredStore::new(inner, meter.clone());
        s.head(&p).await.unwrap();
        let _ = futures::TryStreamExt::try_collect::<Vec<_>>(s.list(None))
            .await
            .unwrap();
        assert_eq!(meter.bytes(), 0);
        s.get_range(&p, 10..110).await.unwrap();
        assert_eq!(meter.bytes(), 100);
        s.get_ranges(&p, &[0..5, 900..1000]).await.unwrap();
        assert_eq!(meter.bytes(), 205);
        s.get(&p).await.unwrap().bytes().await.unwrap();
        assert_eq!(meter.bytes(), 1205);
    }

    #[tokio::test]
    async fn unread_bodies_are_not_billed_and_meters_are_separate() {
        let (inner, p) = store().await;
        let (m1, m2) = (Meter::new(None), Meter::new(None));
        let (s1, s2) = (
            MeteredStore::new(inner.clone(), m1.clone()),
            MeteredStore::new(inner, m2.clone()),
        );
        let _unread = s1.get(&p).await.unwrap();
        s2.get_range(&p, 0..10).await.unwrap();
        assert_eq!((m1.bytes(), m2.bytes()), (0, 10));
    }

    #[tokio::test]
    async fn local_files_are_streamed_and_metered_in_full() {
        let body: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let (_dir, s, meter) = local_file(&body);
        let p = Path::from("f.bin");
        let got = s.get(&p).await.unwrap().bytes().await.unwrap();
        assert_eq!(got.as_ref(), body.as_slice());
        assert_eq!(meter.bytes(), body.len() as u64);
        let part = s.get_range(&p, 1_500_000..2_600_001).await.unwrap();
        assert_eq!(part.as_ref(), &body[1_500_000..2_600_001]);
        assert_eq!(meter.bytes(), body.len() as u64 + 1_100_001);
    }

    #[tokio::test]
    async fn a_reader_stopping_near_the_end_of_a_range_is_billed_for_what_it_took() {
        let (_dir, s, meter) = local_file(&[1u8; 200_000]);
        let options = GetOptions {
            range: Some((10_000..150_000).into()),
            ..Default::default()
        };
        let mut body = s
            .get_opts(&Path::from("f.bin"), options)
            .await
            .unwrap()
            .into_stream();
        // Like a line reader that finds its line end 2,000 bytes into the last 32 KiB.
        let mut taken = 0;
        while taken < 140_000 - (32 << 10) + 2_000 {
            taken += body.next().await.unwrap().unwrap().len();
        }
        drop(body);
        assert_eq!(meter.bytes(), taken as u64);
        assert!(taken <= 140_000 - (32 << 10) + 3_024, "{taken}");
    }

    #[tokio::test]
    async fn a_local_file_cut_short_while_read_is_an_error_naming_it() {
        let (dir, s, meter) = local_file(&vec![1u8; 3_000_000]);
        let body = s.get(&Path::from("f.bin")).await.unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(dir.path().join("f.bin"))
            .unwrap()
            .set_len(1_500_000)
            .unwrap();
        let err = body.bytes().await.unwrap_err().to_string();
        assert!(
            err.contains("f.bin") && err.contains("ends at byte 1500000"),
            "{err}"
        );
        assert_eq!(
            meter.bytes(),
            1 << 20,
            "the first chunk was read and billed"
        );
    }

    #[tokio::test]
    async fn the_limit_stops_reading() {
        let (inner, p) = store().await;
        let s = MeteredStore::new(inner, Meter::new(Some(500)));
        s.get_range(&p, 0..400).await.unwrap();
        let err = s.get_range(&p, 0..400).await.unwrap_err().to_string();
        assert!(err.contains("800 bytes") && err.contains("500"), "{err}");
    }
}
