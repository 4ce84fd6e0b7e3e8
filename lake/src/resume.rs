//! Listings that survive a connection cut part-way through a page.
//!
//! object_store retries a request that fails or answers 5xx, and resumes a GET whose body is
//! cut (from the byte it reached, same ETag). A LIST whose response body is cut is not retried:
//! the listing fails with `ListResponseBody`, and a crawl or query of a large prefix fails with
//! it. [`ResumingList`] restarts such a listing after the last key it yielded (S3 lists in key
//! order, so `list_with_offset` continues exactly where the cut one stopped), with the same
//! backoff as the store's own retries.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::client::{HttpError, HttpErrorKind};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions, Result,
};

/// A store whose listings resume after a cut response (see the module documentation).
#[derive(Debug)]
pub struct ResumingList {
    inner: Arc<dyn ObjectStore>,
    retry: object_store::RetryConfig,
}

impl ResumingList {
    pub fn new(inner: Arc<dyn ObjectStore>, retry: object_store::RetryConfig) -> Self {
        Self { inner, retry }
    }

    fn resuming(
        &self,
        prefix: Option<&Path>,
        offset: Option<&Path>,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        let state = Listing {
            inner: Arc::clone(&self.inner),
            prefix: prefix.cloned(),
            stream: match offset {
                Some(o) => self.inner.list_with_offset(prefix, o),
                None => self.inner.list(prefix),
            },
            last: offset.cloned(),
            retries: 0,
            retry: self.retry.clone(),
        };
        futures::stream::unfold(Some(state), |state| async move {
            let mut s = state?;
            loop {
                match s.stream.next().await {
                    None => return None,
                    Some(Ok(meta)) => {
                        s.last = Some(meta.location.clone());
                        return Some((Ok(meta), Some(s)));
                    }
                    Some(Err(e)) if cut(&e) && s.retries < s.retry.max_retries => {
                        tokio::time::sleep(backoff(&s.retry, s.retries)).await;
                        s.retries += 1;
                        s.stream = match &s.last {
                            Some(l) => s.inner.list_with_offset(s.prefix.as_ref(), l),
                            None => s.inner.list(s.prefix.as_ref()),
                        };
                    }
                    Some(Err(e)) => return Some((Err(e), None)),
                }
            }
        })
        .boxed()
    }
}

struct Listing {
    inner: Arc<dyn ObjectStore>,
    prefix: Option<Path>,
    stream: BoxStream<'static, Result<ObjectMeta>>,
    /// The last key yielded: a resumed listing starts after it.
    last: Option<Path>,
    retries: usize,
    retry: object_store::RetryConfig,
}

/// The store's backoff before retry `n` (0-based): the first wait, multiplied by `base` per
/// retry, capped; without jitter.
fn backoff(retry: &object_store::RetryConfig, n: usize) -> Duration {
    let b = &retry.backoff;
    let factor = b.base.powi(n.min(30) as i32);
    b.init_backoff.mul_f64(factor).min(b.max_backoff)
}

/// A response cut or a connection lost while reading it: worth listing again from where it
/// stopped. Errors the server answered (403, 404, a 5xx after the store's own retries) are not.
fn cut(e: &object_store::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(http) = err.downcast_ref::<HttpError>() {
            return matches!(
                http.kind(),
                HttpErrorKind::Interrupted
                    | HttpErrorKind::Connect
                    | HttpErrorKind::Request
                    | HttpErrorKind::Timeout
            );
        }
        source = err.source();
    }
    false
}

impl fmt::Display for ResumingList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner, f)
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl ObjectStore for ResumingList {
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
        self.resuming(prefix, None)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        self.resuming(prefix, Some(offset))
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        let mut retries = 0;
        loop {
            match self.inner.list_with_delimiter(prefix).await {
                Err(e) if cut(&e) && retries < self.retry.max_retries => {
                    tokio::time::sleep(backoff(&self.retry, retries)).await;
                    retries += 1;
                }
                other => return other,
            }
        }
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        self.inner.rename_opts(from, to, options).await
    }
}
