//! Local folders as an object store: object_store's [`LocalFileSystem`] with a cheaper listing.
//!
//! `LocalFileSystem::list` walks with `walkdir` following links, which costs three `stat`s of
//! the full path per file (walkdir's link check, a broken-link check, `is_file`) plus the
//! metadata call, each resolving the path from `/` again. Every query lists its table, so on a
//! lake of small partitions the listing was most of a metadata-only query (2.1 ms of 3.3 ms for
//! 84 files). Here each directory is read once and each file is `stat`ed once, relative to its
//! directory; the objects listed (names, sizes, times, ETags) are exactly `LocalFileSystem`'s,
//! which a test checks, so catalogue bookmarks taken through either stay valid. Every other
//! operation is `LocalFileSystem`'s own.

use std::fmt;
use std::fs::{self, Metadata};
use std::io::ErrorKind;
use std::ops::Range;
use std::path::PathBuf;
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions, Result,
};

/// Objects sent from the blocking walk to the stream at a time, as `LocalFileSystem` does.
const CHUNK: usize = 1024;

/// The local filesystem from `/`, as [`LocalFileSystem::new`], with a faster [`ObjectStore::list`].
#[derive(Debug, Default)]
pub struct LocalStore {
    inner: LocalFileSystem,
}

impl LocalStore {
    pub fn new() -> Self {
        Self::default()
    }
}

impl fmt::Display for LocalStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

fn walk_error(path: &std::path::Path, source: std::io::Error) -> object_store::Error {
    object_store::Error::Generic {
        store: "LocalFileSystem",
        source: format!("listing {}: {source}", path.display()).into(),
    }
}

/// `LocalFileSystem`'s rule: `name#123` is one of its unfinished uploads, not an object.
fn is_valid_file_path(path: &Path) -> bool {
    match path.filename().and_then(|n| n.split_once('#')) {
        Some((_, suffix)) if !suffix.is_empty() => !suffix.bytes().all(|b| b.is_ascii_digit()),
        _ => path.filename().is_some(),
    }
}

/// The object `LocalFileSystem` lists for a file at `path` with `meta` (of the link's target
/// for a symbolic link); `None` for what it does not list.
fn object(path: &std::path::Path, meta: &Metadata) -> Option<Result<ObjectMeta>> {
    if !meta.is_file() {
        return None;
    }
    let location = match Path::from_absolute_path(path) {
        Ok(l) => l,
        Err(e) => return Some(Err(e.into())),
    };
    if !is_valid_file_path(&location) {
        return None;
    }
    let modified = match meta.modified() {
        Ok(m) => m,
        Err(e) => return Some(Err(walk_error(path, e))),
    };
    let mtime = modified
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_micros();
    let inode = std::os::unix::fs::MetadataExt::ino(meta);
    let size = meta.len();
    Some(Ok(ObjectMeta {
        location,
        last_modified: modified.into(),
        size,
        e_tag: Some(format!("{inode:x}-{mtime:x}-{size:x}")),
        version: None,
    }))
}

/// Every object below `top`, passed to `emit` until it returns false. Files are `stat`ed
/// relative to their directory's descriptor (std's `DirEntry::metadata`). Objects vanishing
/// mid-walk are skipped, broken links too, as `LocalFileSystem` does; a linked directory is
/// walked by `walkdir` following links, which also catches link cycles.
fn walk(top: PathBuf, emit: &mut dyn FnMut(Result<ObjectMeta>) -> bool) {
    let mut dirs = vec![top];
    let mut at_top = true;
    while let Some(dir) = dirs.pop() {
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            // Listing a file's own path lists nothing, as `LocalFileSystem` does.
            Err(e) if at_top && e.kind() == ErrorKind::NotADirectory => return,
            Err(e) => {
                emit(Err(walk_error(&dir, e)));
                return;
            }
        };
        at_top = false;
        for entry in entries {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    emit(Err(walk_error(&dir, e)));
                    return;
                }
            };
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let path = entry.path();
            let meta = if kind.is_dir() {
                dirs.push(path);
                continue;
            } else if kind.is_symlink() {
                match fs::metadata(&path) {
                    Ok(m) if m.is_dir() => {
                        if !walk_linked(&path, emit) {
                            return;
                        }
                        continue;
                    }
                    Ok(m) => m,
                    Err(e) if e.kind() == ErrorKind::NotFound => continue,
                    Err(e) => {
                        emit(Err(walk_error(&path, e)));
                        return;
                    }
                }
            } else if kind.is_file() {
                match entry.metadata() {
                    Ok(m) => m,
                    Err(e) if e.kind() == ErrorKind::NotFound => continue,
                    Err(e) => {
                        emit(Err(walk_error(&path, e)));
                        return;
                    }
                }
            } else {
                continue;
            };
            if let Some(item) = object(&path, &meta)
                && !emit(item)
            {
                return;
            }
        }
    }
}

/// The objects below a linked directory, the way `LocalFileSystem` walks everything; false
/// when the walk should stop.
fn walk_linked(dir: &std::path::Path, emit: &mut dyn FnMut(Result<ObjectMeta>) -> bool) -> bool {
    for entry in walkdir::WalkDir::new(dir).min_depth(1).follow_links(true) {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) if e.io_error().map(|e| e.kind()) == Some(ErrorKind::NotFound) => continue,
            Err(e) => {
                let path = e.path().unwrap_or(dir).to_path_buf();
                emit(Err(walk_error(&path, e.into())));
                return false;
            }
        };
        let meta = match fs::metadata(entry.path()) {
            Ok(m) => m,
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => {
                emit(Err(walk_error(entry.path(), e)));
                return false;
            }
        };
        if let Some(item) = object(entry.path(), &meta)
            && !emit(item)
        {
            return false;
        }
    }
    true
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl ObjectStore for LocalStore {
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
        // `LocalFileSystem` maps each part of the prefix to one folder name, verbatim.
        let mut top = PathBuf::from("/");
        top.extend(
            prefix
                .into_iter()
                .flat_map(|p| p.parts())
                .map(|p| p.as_ref().to_string()),
        );
        if tokio::runtime::Handle::try_current().is_err() {
            let mut all = Vec::new();
            walk(top, &mut |item| {
                all.push(item);
                true
            });
            return futures::stream::iter(all).boxed();
        }
        // The walk runs on the blocking pool and hands over chunks; dropping the stream stops it.
        let (tx, rx) = tokio::sync::mpsc::channel::<Vec<Result<ObjectMeta>>>(2);
        tokio::task::spawn_blocking(move || {
            let mut chunk = Vec::with_capacity(CHUNK);
            let mut open = true;
            walk(top, &mut |item| {
                chunk.push(item);
                if chunk.len() >= CHUNK {
                    open = tx.blocking_send(std::mem::take(&mut chunk)).is_ok();
                }
                open
            });
            if open && !chunk.is_empty() {
                let _ = tx.blocking_send(chunk);
            }
        });
        futures::stream::unfold(rx, |mut rx| async move {
            rx.recv()
                .await
                .map(|chunk| (futures::stream::iter(chunk), rx))
        })
        .flatten()
        .boxed()
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
    use futures::TryStreamExt;

    use super::*;

    async fn sorted(
        s: BoxStream<'static, Result<ObjectMeta>>,
    ) -> std::result::Result<Vec<ObjectMeta>, String> {
        let mut v: Vec<ObjectMeta> = s.try_collect().await.map_err(|e| e.to_string())?;
        v.sort_by(|a, b| a.location.cmp(&b.location));
        Ok(v)
    }

    /// The listing is `LocalFileSystem`'s, object for object: awkward names, hidden and empty
    /// files, unfinished uploads, nested and linked folders, links to files, broken links.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn lists_exactly_what_local_file_system_lists() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().canonicalize().expect("canonical");
        let lake = root.join("lake");
        for (name, body) in [
            ("t/year=2024/month=1/part-0.parquet", &b"PAR1"[..]),
            ("t/year=2024/month=1/.hidden", b"x"),
            ("t/year=2024/month=1/_SUCCESS", b""),
            ("t/year=2024/month=2/a file with spaces.csv", b"a\n1\n"),
            ("t/region=eu%20west/caf\u{e9} #1.json", b"{}\n"),
            ("t/region=eu%20west/upload#12", b"partial"),
            ("t/region=eu%20west/percent%25.csv", b"a\n"),
            ("t/deep/er/and/deeper/x.csv.gz", b"gz"),
            ("other/y.json", b"{}"),
        ] {
            let p = lake.join(name);
            fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            fs::write(&p, body).expect("write");
        }
        fs::create_dir_all(lake.join("t/empty_dir")).expect("mkdir");
        std::os::unix::fs::symlink(lake.join("other"), lake.join("t/linked_dir")).expect("link");
        std::os::unix::fs::symlink(lake.join("other/y.json"), lake.join("t/linked.json"))
            .expect("link");
        std::os::unix::fs::symlink(lake.join("gone"), lake.join("t/broken")).expect("link");

        let ours = LocalStore::new();
        let theirs = LocalFileSystem::new();
        let t = Path::from_absolute_path(lake.join("t")).expect("path");
        let expected = sorted(theirs.list(Some(&t))).await.expect("list");
        assert_eq!(expected.len(), 9, "{expected:#?}");
        assert_eq!(sorted(ours.list(Some(&t))).await, Ok(expected));
        for prefix in [
            Path::from_absolute_path(&lake).expect("path"),
            Path::from_absolute_path(lake.join("t/year=2024/month=1")).expect("path"),
            Path::from_absolute_path(lake.join("t/empty_dir")).expect("path"),
            Path::from_absolute_path(lake.join("missing")).expect("path"),
            Path::from_absolute_path(lake.join("other/y.json")).expect("path"),
        ] {
            let expected = sorted(theirs.list(Some(&prefix))).await;
            assert_eq!(sorted(ours.list(Some(&prefix))).await, expected, "{prefix}");
        }
        // Outside a runtime too (object_store lists inline there).
        let expected = futures::executor::block_on(sorted(theirs.list(Some(&t))));
        let listed = std::thread::spawn(move || {
            futures::executor::block_on(sorted(LocalStore::new().list(Some(&t))))
        })
        .join()
        .expect("thread");
        assert_eq!(listed, expected);
    }

    /// A listing larger than one chunk arrives whole; a linked cycle is an error, as in
    /// `LocalFileSystem`, not an endless walk.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn lists_many_files_and_reports_link_cycles() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().canonicalize().expect("canonical");
        for i in 0..(CHUNK * 2 + 7) {
            let p = root.join(format!("t/p={}/f{i}.csv", i % 13));
            fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            fs::write(&p, b"a\n").expect("write");
        }
        let t = Path::from_absolute_path(root.join("t")).expect("path");
        let listed = sorted(LocalStore::new().list(Some(&t)))
            .await
            .expect("list");
        assert_eq!(listed.len(), CHUNK * 2 + 7);
        assert_eq!(
            Ok(listed),
            sorted(LocalFileSystem::new().list(Some(&t))).await
        );

        std::os::unix::fs::symlink(root.join("t"), root.join("t/p=0/loop")).expect("link");
        let err = sorted(LocalStore::new().list(Some(&t)))
            .await
            .expect_err("cycle");
        assert!(err.contains("loop"), "{err}");
        assert!(sorted(LocalFileSystem::new().list(Some(&t))).await.is_err());
    }
}
