//! The streaming, partitioned table writer with atomic staging.
//!
//! Batches go in with their partition columns last; rows are split by partition values and
//! written to one open file per partition, under a hidden staging folder of the destination
//! (`<root>/.quarry-staging-<id>/k=v/...`), which no reader lists (the hidden-file rule).
//! Files roll at a target size. Memory stays bounded whatever the number of partitions: at most
//! `max_open_files` files are open (the least recently used is finished first), and when the
//! Parquet row groups being built exceed `memory_limit`, the largest is flushed.
//!
//! [`TableWriter::finish`] closes every file and returns the [`StagedFiles`]; the caller then
//! [`StagedFiles::publish`]es them (a rename: copy and delete on S3) to their final names, commits
//! the catalog, and [`StagedFiles::unpublish`]es them if that commit fails. A failed or abandoned
//! write is removed with [`TableWriter::abort`] / [`StagedFiles::discard`]; anything left behind
//! by a crash stays hidden from queries.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, RecordBatch, StringArray, UInt32Array};
use arrow::compute::{cast, take_record_batch};
use arrow::datatypes::{DataType, Schema, SchemaRef};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::buffered::BufWriter;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::AsyncArrowWriter;
use parquet::basic::{GzipLevel, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use tokio::io::AsyncWriteExt;

use crate::hive::partition_path;
use crate::{Error, FileFormat, Result};

/// The prefix of staging folders; hidden because it starts with `.`.
pub const STAGING_PREFIX: &str = ".quarry-staging-";

/// The compression of written files: the Parquet codec, or the whole-file compression of text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteCompression {
    None,
    /// Parquet only.
    Snappy,
    Gzip,
    /// With its level (1-22; 3 is the default, as in Athena).
    Zstd(i32),
    /// Text only.
    Bzip2,
}

impl WriteCompression {
    /// Parse Athena's `write_compression` / `compression` value (`ZSTD`, `SNAPPY`, `GZIP`,
    /// `NONE`, `BZIP2`), checked against the format.
    pub fn parse(name: &str, format: &FileFormat, level: Option<i32>) -> Result<Self, String> {
        let parquet = matches!(format, FileFormat::Parquet);
        let c = match name.to_ascii_uppercase().as_str() {
            "NONE" | "UNCOMPRESSED" => Self::None,
            "SNAPPY" if parquet => Self::Snappy,
            "GZIP" => Self::Gzip,
            "ZSTD" => Self::Zstd(level.unwrap_or(3)),
            "BZIP2" if !parquet => Self::Bzip2,
            other => {
                let allowed = if parquet {
                    "ZSTD, SNAPPY, GZIP or NONE"
                } else {
                    "GZIP, ZSTD, BZIP2 or NONE"
                };
                return Err(format!(
                    "compression '{other}' is not supported for {}; use {allowed}",
                    format.classification().as_str()
                ));
            }
        };
        if let Self::Zstd(l) = c
            && !(1..=22).contains(&l)
        {
            return Err(format!(
                "compression_level {l} is out of range; ZSTD takes 1 to 22"
            ));
        }
        Ok(c)
    }

    /// The name the catalog records (`compressionType`): `zstd`, `gzip`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Snappy => "snappy",
            Self::Gzip => "gzip",
            Self::Zstd(_) => "zstd",
            Self::Bzip2 => "bzip2",
        }
    }

    fn text_suffix(self) -> &'static str {
        match self {
            Self::None | Self::Snappy => "",
            Self::Gzip => ".gz",
            Self::Zstd(_) => ".zst",
            Self::Bzip2 => ".bz2",
        }
    }
}

/// How to write a table's files.
#[derive(Debug, Clone)]
pub struct WriteOptions {
    pub format: FileFormat,
    pub compression: WriteCompression,
    /// A file is finished and the next one started once it reaches this size (default 128 MiB).
    pub target_file_size: u64,
    /// Files open at once (one per partition being written); default 1,000. Past it the
    /// least recently written file is finished, and that partition's next rows start a new file.
    pub max_open_files: usize,
    /// Bytes held in memory across open files (row groups being built, upload buffers) before
    /// the largest is flushed or finished early (default 256 MiB).
    pub memory_limit: usize,
    /// How text files write NULL: Hive's `\N` (its `serialization.null.format`) or, when
    /// `None`, an empty field.
    pub null_text: Option<String>,
}

impl WriteOptions {
    pub fn new(format: FileFormat, compression: WriteCompression) -> Self {
        Self {
            format,
            compression,
            target_file_size: 128 << 20,
            max_open_files: 1_000,
            memory_limit: 256 << 20,
            null_text: None,
        }
    }

    pub fn with_null_text(mut self, null: Option<String>) -> Self {
        self.null_text = null;
        self
    }

    pub fn with_target_file_size(mut self, bytes: u64) -> Self {
        self.target_file_size = bytes.max(1);
        self
    }

    pub fn with_max_open_files(mut self, n: usize) -> Self {
        self.max_open_files = n.max(1);
        self
    }

    pub fn with_memory_limit(mut self, bytes: usize) -> Self {
        self.memory_limit = bytes;
        self
    }
}

/// One file written by a [`TableWriter`].
#[derive(Debug, Clone, PartialEq)]
pub struct WrittenFile {
    /// Partition values in key order (`None`: NULL); empty for unpartitioned tables.
    pub partition: Vec<Option<String>>,
    /// Where the file is while staged.
    pub staged: Path,
    /// Its final path, once published.
    pub path: Path,
    pub rows: u64,
    pub bytes: u64,
}

enum TextEncoder {
    None(Vec<u8>),
    Gzip(flate2::write::GzEncoder<Vec<u8>>),
    Zstd(zstd::stream::write::Encoder<'static, Vec<u8>>),
    Bzip2(bzip2::write::BzEncoder<Vec<u8>>),
}

impl TextEncoder {
    fn new(c: WriteCompression) -> std::io::Result<Self> {
        Ok(match c {
            WriteCompression::None | WriteCompression::Snappy => Self::None(Vec::new()),
            WriteCompression::Gzip => Self::Gzip(flate2::write::GzEncoder::new(
                Vec::new(),
                flate2::Compression::default(),
            )),
            WriteCompression::Zstd(l) => {
                Self::Zstd(zstd::stream::write::Encoder::new(Vec::new(), l)?)
            }
            WriteCompression::Bzip2 => Self::Bzip2(bzip2::write::BzEncoder::new(
                Vec::new(),
                bzip2::Compression::default(),
            )),
        })
    }

    fn write_all(&mut self, data: &[u8]) -> std::io::Result<()> {
        match self {
            Self::None(v) => Write::write_all(v, data),
            Self::Gzip(e) => Write::write_all(e, data),
            Self::Zstd(e) => Write::write_all(e, data),
            Self::Bzip2(e) => Write::write_all(e, data),
        }
    }

    /// Compressed bytes produced so far, taken out of the encoder.
    fn take(&mut self) -> Vec<u8> {
        std::mem::take(match self {
            Self::None(v) => v,
            Self::Gzip(e) => e.get_mut(),
            Self::Zstd(e) => e.get_mut(),
            Self::Bzip2(e) => e.get_mut(),
        })
    }

    fn finish(self) -> std::io::Result<Vec<u8>> {
        match self {
            Self::None(v) => Ok(v),
            Self::Gzip(e) => e.finish(),
            Self::Zstd(e) => e.finish(),
            Self::Bzip2(e) => e.finish(),
        }
    }
}

enum Sink {
    Parquet(Box<AsyncArrowWriter<BufWriter>>),
    Text(Box<TextSink>),
}

struct TextSink {
    encoder: TextEncoder,
    upload: BufWriter,
    written: u64,
    first: bool,
}

struct OpenFile {
    file: WrittenFile,
    sink: Sink,
    last_used: u64,
}

impl OpenFile {
    /// Bytes written so far, counting Parquet data still buffered.
    fn size(&self) -> u64 {
        match &self.sink {
            Sink::Parquet(w) => (w.bytes_written() + w.in_progress_size()) as u64,
            Sink::Text(t) => t.written,
        }
    }

    /// Bytes this file holds in memory: the Parquet row group being built, plus what the
    /// upload buffers (a whole small file, or up to one part of a multipart upload).
    fn buffered(&self) -> usize {
        let uploaded = match &self.sink {
            Sink::Parquet(w) => w.bytes_written(),
            Sink::Text(t) => t.written as usize,
        };
        self.row_group() + uploaded.min(UPLOAD_PART)
    }

    /// Memory of the Parquet row group being built (its encoders and buffered pages, which
    /// can be several times its anticipated encoded size).
    fn row_group(&self) -> usize {
        match &self.sink {
            Sink::Parquet(w) => w.memory_size(),
            Sink::Text(_) => 0,
        }
    }
}

/// Bytes an upload buffers before it becomes a multipart upload, and the size of each part
/// (S3 takes parts of 5 MiB and more, at most 10,000 of them).
const UPLOAD_PART: usize = 8 << 20;

/// Writes a stream of batches as a table's files, staged until published.
pub struct TableWriter {
    store: Arc<dyn ObjectStore>,
    /// `s3://bucket/`, `file:///`: object paths appended to it are URLs.
    base: String,
    root: Path,
    staging: Path,
    id: String,
    keys: Vec<String>,
    options: WriteOptions,
    /// The schema of the files: the input's without its partition columns.
    file_schema: SchemaRef,
    open: HashMap<Vec<Option<String>>, OpenFile>,
    done: Vec<WrittenFile>,
    files_started: usize,
    clock: u64,
    /// Until finished or aborted, dropping the writer (a cancelled statement) deletes the staged
    /// files in the background.
    armed: bool,
}

impl Drop for TableWriter {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let store = Arc::clone(&self.store);
            let staging = self.staging.clone();
            let base = self.base.clone();
            track_cleanup(
                handle.spawn(async move { delete_prefix(&store, &base, &staging).await }),
            );
        }
    }
}

/// Have [`finish_cleanups`] wait for `task` too: a background task that deletes (or leads to
/// the deletion of) what a cancelled write staged.
pub fn track_cleanup(task: tokio::task::JoinHandle<()>) {
    let mut pending = CLEANUPS.lock().unwrap_or_else(|p| p.into_inner());
    pending.retain(|t| !t.is_finished());
    pending.push(task);
}

/// Deletions of what dropped (cancelled) writers staged, still running in the background.
static CLEANUPS: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>> =
    std::sync::Mutex::new(Vec::new());

/// Wait until the staged files of cancelled writes are deleted. A program that may exit right
/// after cancelling a statement (Ctrl-C) calls this before it returns, so the deletions are not
/// cut short with the runtime (what they leave would be hidden from readers, but it is litter).
pub async fn finish_cleanups() {
    // A cleanup can start others (a task that drops writers), so until none is left.
    loop {
        let pending = std::mem::take(&mut *CLEANUPS.lock().unwrap_or_else(|p| p.into_inner()));
        if pending.is_empty() {
            return;
        }
        for task in pending {
            let _ = task.await;
        }
    }
}

impl std::fmt::Debug for TableWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableWriter")
            .field("root", &self.root)
            .field("staging", &self.staging)
            .field("open", &self.open.len())
            .field("done", &self.done.len())
            .finish()
    }
}

impl TableWriter {
    /// A writer of `schema`-shaped batches (partition columns `keys` last, in order) to the
    /// table folder `root` of `store`; `id` (the statement's id) names the staging folder and
    /// the files.
    pub fn try_new(
        store: Arc<dyn ObjectStore>,
        base: impl Into<String>,
        root: Path,
        schema: &SchemaRef,
        keys: Vec<String>,
        options: WriteOptions,
        id: impl Into<String>,
    ) -> Result<Self> {
        let id = id.into();
        let base = base.into();
        let n = schema.fields().len();
        let url = format!("{base}{root}");
        if keys.len() > n {
            return Err(Error::Invalid {
                url,
                reason: format!("{} partition columns but only {n} columns", keys.len()),
            });
        }
        for (k, f) in keys.iter().zip(&schema.fields()[n - keys.len()..]) {
            if !f.name().eq_ignore_ascii_case(k) {
                return Err(Error::Invalid {
                    url,
                    reason: format!(
                        "partition column '{k}' must be among the last columns of the query, in partition order (found '{}')",
                        f.name()
                    ),
                });
            }
        }
        if keys.len() == n && n > 0 {
            return Err(Error::Invalid {
                url,
                reason: "every column is a partition column; the files would have no columns"
                    .into(),
            });
        }
        let file_schema = Arc::new(Schema::new(schema.fields()[..n - keys.len()].to_vec()));
        let staging = root.clone().join(format!("{STAGING_PREFIX}{id}"));
        Ok(Self {
            store,
            base,
            root,
            staging,
            id,
            keys,
            options,
            file_schema,
            open: HashMap::new(),
            done: Vec::new(),
            files_started: 0,
            clock: 0,
            armed: true,
        })
    }

    /// Stage under `.quarry-staging-<id>-<suffix>` instead: for writers whose file names are
    /// deterministic (a retried event rewrites the same files), so that two runs of the same
    /// write never share, and clean up, one staging folder.
    pub fn with_staging_suffix(mut self, suffix: &str) -> Self {
        self.staging = self
            .root
            .clone()
            .join(format!("{STAGING_PREFIX}{}-{suffix}", self.id));
        self
    }

    fn url(&self, path: &Path) -> String {
        format!("{}{path}", self.base)
    }

    /// Rows written so far (files finished and open).
    pub fn rows(&self) -> u64 {
        self.done.iter().map(|f| f.rows).sum::<u64>()
            + self.open.values().map(|f| f.file.rows).sum::<u64>()
    }

    /// Write one batch (partition columns last).
    pub async fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.route(batch).await?;
        // Once per batch: summing the open files' memory costs one look at each.
        self.bound_memory().await
    }

    /// Split `batch` by partition and append each part to its partition's open file.
    async fn route(&mut self, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let n_data = self.file_schema.fields().len();
        let data = RecordBatch::try_new(
            Arc::clone(&self.file_schema),
            batch.columns()[..n_data].to_vec(),
        )
        .map_err(|e| self.data_error(&self.root.clone(), e))?;
        if self.keys.is_empty() {
            return self.write_part(Vec::new(), &data).await;
        }
        let mut values: Vec<StringArray> = Vec::with_capacity(self.keys.len());
        for col in &batch.columns()[n_data..] {
            values.push(partition_strings(col).map_err(|e| self.data_error(&self.root, e))?);
        }
        // Batches usually hold one partition (a scan of a partitioned table reads file by
        // file): checked without building a key per row.
        let same = |a: &StringArray| {
            let first = (!a.is_null(0)).then(|| a.value(0));
            (1..a.len()).all(|r| (!a.is_null(r)).then(|| a.value(r)) == first)
        };
        if values.iter().all(same) {
            let key = values
                .iter()
                .map(|a| (!a.is_null(0)).then(|| a.value(0).to_string()))
                .collect();
            return self.write_part(key, &data).await;
        }
        // Rows grouped by partition, in order of first appearance.
        let mut groups: HashMap<Vec<Option<&str>>, Vec<u32>> = HashMap::new();
        let mut order: Vec<Vec<Option<&str>>> = Vec::new();
        for row in 0..batch.num_rows() {
            let key: Vec<Option<&str>> = values
                .iter()
                .map(|a| (!a.is_null(row)).then(|| a.value(row)))
                .collect();
            match groups.get_mut(&key) {
                Some(rows) => rows.push(row as u32),
                None => {
                    order.push(key.clone());
                    groups.insert(key, vec![row as u32]);
                }
            }
        }
        let mut parts = Vec::with_capacity(order.len());
        for key in order {
            let rows = groups.remove(&key).unwrap_or_default();
            let indices = UInt32Array::from(rows);
            let part =
                take_record_batch(&data, &indices).map_err(|e| self.data_error(&self.root, e))?;
            parts.push((key.iter().map(|v| v.map(str::to_string)).collect(), part));
        }
        for (key, part) in parts {
            self.write_part(key, &part).await?;
        }
        Ok(())
    }

    fn data_error(&self, path: &Path, e: impl std::error::Error + Send + Sync + 'static) -> Error {
        Error::Data {
            url: self.url(path),
            reason: e.to_string(),
            source: Box::new(e),
        }
    }

    async fn write_part(&mut self, key: Vec<Option<String>>, batch: &RecordBatch) -> Result<()> {
        self.clock += 1;
        if !self.open.contains_key(&key) {
            if self.open.len() >= self.options.max_open_files
                && let Some(lru) = self
                    .open
                    .iter()
                    .min_by_key(|(_, f)| f.last_used)
                    .map(|(k, _)| k.clone())
            {
                self.close(&lru).await?;
            }
            let file = self.open_file(key.clone())?;
            self.open.insert(key.clone(), file);
        }
        let clock = self.clock;
        let Some(file) = self.open.get_mut(&key) else {
            return Ok(());
        };
        file.last_used = clock;
        file.file.rows += batch.num_rows() as u64;
        let url = format!("{}{}", self.base, file.file.staged);
        match &mut file.sink {
            Sink::Parquet(w) => w.write(batch).await.map_err(|e| Error::Write {
                url,
                reason: e.to_string(),
            })?,
            Sink::Text(sink) => {
                let TextSink {
                    encoder,
                    upload,
                    written,
                    first,
                } = sink.as_mut();
                let null = self.options.null_text.as_deref();
                let text = encode_text(&self.options.format, null, batch, *first).map_err(|e| {
                    Error::Data {
                        url: url.clone(),
                        reason: e.to_string(),
                        source: Box::new(e),
                    }
                })?;
                *first = false;
                encoder.write_all(&text).map_err(|e| Error::Write {
                    url: url.clone(),
                    reason: e.to_string(),
                })?;
                let out = encoder.take();
                *written += out.len() as u64;
                if !out.is_empty() {
                    upload
                        .put(Bytes::from(out))
                        .await
                        .map_err(|source| Error::Object {
                            operation: "uploading",
                            url,
                            source,
                        })?;
                }
            }
        }
        if file.size() >= self.options.target_file_size {
            self.close(&key).await?;
        }
        Ok(())
    }

    /// Keep the memory of open files under the limit. Past it, the files holding the most
    /// give memory back, largest first, until half the limit is free (so that this does not run
    /// again at the next batch): a file whose memory is mostly its row group flushes it, one
    /// whose memory is mostly upload buffer is finished early.
    async fn bound_memory(&mut self) -> Result<()> {
        let mut sizes: Vec<(usize, usize, Vec<Option<String>>)> = self
            .open
            .iter()
            .map(|(k, f)| (f.buffered(), f.row_group(), k.clone()))
            .collect();
        let total: usize = sizes.iter().map(|s| s.0).sum();
        if total <= self.options.memory_limit {
            return Ok(());
        }
        let mut excess = total - self.options.memory_limit / 2;
        sizes.sort_unstable_by_key(|s| std::cmp::Reverse(s.0));
        for (buffered, row_group, key) in sizes {
            if excess == 0 {
                break;
            }
            excess = excess.saturating_sub(buffered);
            let flush = row_group * 2 >= buffered;
            match self.open.get_mut(&key) {
                Some(file) if flush => {
                    if let Sink::Parquet(w) = &mut file.sink {
                        let url = format!("{}{}", self.base, file.file.staged);
                        w.flush().await.map_err(|e| Error::Write {
                            url,
                            reason: e.to_string(),
                        })?;
                    }
                }
                Some(_) => self.close(&key).await?,
                None => {}
            }
        }
        Ok(())
    }

    fn open_file(&mut self, key: Vec<Option<String>>) -> Result<OpenFile> {
        self.files_started += 1;
        let ext = match self.options.format {
            FileFormat::Parquet => ".parquet".to_string(),
            FileFormat::Csv(d) if d.delimiter == b'\t' => {
                format!(".tsv{}", self.options.compression.text_suffix())
            }
            FileFormat::Csv(_) => format!(".csv{}", self.options.compression.text_suffix()),
            FileFormat::Json => format!(".json{}", self.options.compression.text_suffix()),
        };
        let name = format!("{}_{:05}{ext}", self.id, self.files_started);
        let folder = partition_path(&self.keys, &key);
        let relative = format!("{folder}{name}");
        let join = |base: &Path| {
            Path::parse(format!("{base}/{relative}")).map_err(|e| Error::Write {
                url: self.url(base),
                reason: format!("bad file name {relative}: {e}"),
            })
        };
        let staged = join(&self.staging)?;
        let path = join(&self.root)?;
        let sink = match self.options.format {
            FileFormat::Parquet => {
                let props = parquet_properties(self.options.compression);
                let object =
                    BufWriter::with_capacity(Arc::clone(&self.store), staged.clone(), UPLOAD_PART);
                let w =
                    AsyncArrowWriter::try_new(object, Arc::clone(&self.file_schema), Some(props))
                        .map_err(|e| Error::Write {
                        url: self.url(&staged),
                        reason: e.to_string(),
                    })?;
                Sink::Parquet(Box::new(w))
            }
            _ => Sink::Text(Box::new(TextSink {
                encoder: TextEncoder::new(self.options.compression).map_err(|e| Error::Write {
                    url: self.url(&staged),
                    reason: e.to_string(),
                })?,
                upload: BufWriter::with_capacity(
                    Arc::clone(&self.store),
                    staged.clone(),
                    UPLOAD_PART,
                ),
                written: 0,
                first: true,
            })),
        };
        Ok(OpenFile {
            file: WrittenFile {
                partition: key,
                staged,
                path,
                rows: 0,
                bytes: 0,
            },
            sink,
            last_used: self.clock,
        })
    }

    async fn close(&mut self, key: &[Option<String>]) -> Result<()> {
        let Some(open) = self.open.remove(key) else {
            return Ok(());
        };
        let mut file = open.file;
        let url = self.url(&file.staged);
        let werr = |e: &dyn std::fmt::Display| Error::Write {
            url: url.clone(),
            reason: e.to_string(),
        };
        match open.sink {
            Sink::Parquet(w) => {
                let w = *w;
                let mut w = w;
                w.finish().await.map_err(|e| werr(&e))?;
                file.bytes = w.bytes_written() as u64;
            }
            Sink::Text(sink) => {
                let TextSink {
                    encoder,
                    mut upload,
                    written,
                    ..
                } = *sink;
                let rest = encoder.finish().map_err(|e| werr(&e))?;
                file.bytes = written + rest.len() as u64;
                if !rest.is_empty() {
                    upload
                        .put(Bytes::from(rest))
                        .await
                        .map_err(|source| Error::Object {
                            operation: "uploading",
                            url: url.clone(),
                            source,
                        })?;
                }
                upload.shutdown().await.map_err(|e| werr(&e))?;
            }
        }
        self.done.push(file);
        Ok(())
    }

    /// Finish every open file; the files stay staged until [`StagedFiles::publish`].
    pub async fn finish(mut self) -> Result<StagedFiles> {
        let keys: Vec<_> = self.open.keys().cloned().collect();
        for key in keys {
            if let Err(e) = self.close(&key).await {
                self.abort().await;
                return Err(e);
            }
        }
        self.armed = false;
        let mut files = std::mem::take(&mut self.done);
        files.sort_by(|a, b| a.path.as_ref().cmp(b.path.as_ref()));
        Ok(StagedFiles {
            store: Arc::clone(&self.store),
            base: self.base.clone(),
            staging: vec![self.staging.clone()],
            files,
        })
    }

    /// Give up: abort open uploads and delete everything staged (best effort; what remains is
    /// hidden from readers).
    pub async fn abort(mut self) {
        self.armed = false;
        // Unfinished uploads are aborted, so no multipart upload is left behind on S3.
        for (_, open) in self.open.drain() {
            let mut upload = match open.sink {
                Sink::Text(sink) => sink.upload,
                Sink::Parquet(w) => w.into_inner(),
            };
            let _ = upload.abort().await;
        }
        delete_prefix(&self.store, &self.base, &self.staging).await;
    }
}

/// Files written and staged, waiting to be published.
#[derive(Debug, Clone)]
pub struct StagedFiles {
    store: Arc<dyn ObjectStore>,
    base: String,
    staging: Vec<Path>,
    pub files: Vec<WrittenFile>,
}

impl StagedFiles {
    /// The files of several writers of one statement (parallel writers of the same
    /// destination), published and discarded together.
    pub fn merge(parts: Vec<StagedFiles>) -> Option<StagedFiles> {
        let mut parts = parts.into_iter();
        let mut all = parts.next()?;
        for p in parts {
            all.staging.extend(p.staging);
            all.files.extend(p.files);
        }
        all.files
            .sort_by(|a, b| a.path.as_ref().cmp(b.path.as_ref()));
        Some(all)
    }

    /// The store the files are written to.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    pub fn rows(&self) -> u64 {
        self.files.iter().map(|f| f.rows).sum()
    }

    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.bytes).sum()
    }

    /// The final URL of a file.
    pub fn url(&self, file: &WrittenFile) -> String {
        format!("{}{}", self.base, file.path)
    }

    /// Move every staged file to its final name. On failure the files already moved are
    /// deleted again, the staged ones too, and the error names the file.
    pub async fn publish(&self) -> Result<()> {
        for (i, f) in self.files.iter().enumerate() {
            if let Err(source) = self.store.rename(&f.staged, &f.path).await {
                let err = Error::Object {
                    operation: "publishing",
                    url: self.url(f),
                    source,
                };
                // On S3 a rename is a copy and a delete: the copy may have landed although the
                // rename failed, so the failed file's final name goes too.
                self.delete_published(&self.files[..=i]).await;
                self.discard().await;
                return Err(err);
            }
        }
        self.delete_staging().await;
        Ok(())
    }

    /// Delete the published files (the catalog commit that should have followed failed).
    pub async fn unpublish(&self) {
        self.delete_published(&self.files).await;
    }

    async fn delete_published(&self, files: &[WrittenFile]) {
        for f in files {
            let _ = self.store.delete(&f.path).await;
        }
    }

    /// Delete the staged files (the write is abandoned before publishing).
    pub async fn discard(&self) {
        self.delete_staging().await;
    }

    async fn delete_staging(&self) {
        for s in &self.staging {
            delete_prefix(&self.store, &self.base, s).await;
        }
    }
}

/// Delete everything under `prefix`, ignoring errors: used to clean up hidden staging folders.
/// On local disk (`base` is `file:///`) the emptied folders go too.
async fn delete_prefix(store: &Arc<dyn ObjectStore>, base: &str, prefix: &Path) {
    let paths = store.list(Some(prefix)).map_ok(|m| m.location).boxed();
    let _ = store.delete_stream(paths).try_collect::<Vec<_>>().await;
    if base == "file:///" {
        let _ = tokio::fs::remove_dir_all(format!("/{prefix}")).await;
    }
}

/// The folder-name value of every row of a partition column (`None` for NULL): dates as
/// `2024-01-31`, numbers as written, timestamps as `2024-01-31 12:00:00`.
fn partition_strings(col: &ArrayRef) -> std::result::Result<StringArray, arrow::error::ArrowError> {
    let text = match col.data_type() {
        DataType::Utf8 => Arc::clone(col),
        _ => cast(col, &DataType::Utf8)?,
    };
    let strings = text
        .as_any()
        .downcast_ref::<StringArray>()
        .cloned()
        .ok_or_else(|| arrow::error::ArrowError::CastError("partition value is not text".into()))?;
    let timestamp = matches!(col.data_type(), DataType::Timestamp(_, _));
    // Hive writes an empty value as its default (NULL) partition.
    Ok(strings
        .iter()
        .map(|v| match v {
            None | Some("") => None,
            Some(s) if timestamp => Some(s.replacen('T', " ", 1)),
            Some(s) => Some(s.to_string()),
        })
        .collect())
}

fn parquet_properties(c: WriteCompression) -> WriterProperties {
    let codec = match c {
        WriteCompression::None | WriteCompression::Bzip2 => {
            parquet::basic::Compression::UNCOMPRESSED
        }
        WriteCompression::Snappy => parquet::basic::Compression::SNAPPY,
        WriteCompression::Gzip => parquet::basic::Compression::GZIP(GzipLevel::default()),
        WriteCompression::Zstd(l) => {
            parquet::basic::Compression::ZSTD(ZstdLevel::try_new(l).unwrap_or_default())
        }
    };
    // Page statistics give both the column index (page index) and chunk statistics.
    WriterProperties::builder()
        .set_compression(codec)
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_created_by("quarry".into())
        .build()
}

/// Text for one batch: CSV/TSV (Hive's text layout: no quotes unless needed, `\N`-free empty
/// NULLs, timestamps `yyyy-MM-dd HH:mm:ss`) or JSON lines.
fn encode_text(
    format: &FileFormat,
    null: Option<&str>,
    batch: &RecordBatch,
    first: bool,
) -> std::result::Result<Vec<u8>, arrow::error::ArrowError> {
    let mut out = Vec::new();
    match format {
        FileFormat::Csv(d) => {
            let mut w = arrow::csv::WriterBuilder::new()
                .with_header(d.header && first)
                .with_delimiter(d.delimiter)
                .with_quote(d.quote)
                .with_null(null.unwrap_or_default().to_string())
                .with_timestamp_format("%Y-%m-%d %H:%M:%S%.f".into())
                .build(&mut out);
            w.write(batch)?;
        }
        _ => {
            let mut w = arrow::json::LineDelimitedWriter::new(&mut out);
            w.write(batch)?;
            w.finish()?;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CsvDialect;
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::Field;
    use object_store::memory::InMemory;

    fn batch(ids: &[i64], regions: &[Option<&str>]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("region", DataType::Utf8, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(ids.to_vec())),
                Arc::new(StringArray::from(regions.to_vec())),
            ],
        )
        .expect("batch")
    }

    async fn paths(store: &Arc<dyn ObjectStore>) -> Vec<String> {
        let mut v: Vec<String> = store
            .list(None)
            .map_ok(|m| m.location.to_string())
            .try_collect()
            .await
            .expect("list");
        v.sort();
        v
    }

    #[tokio::test]
    async fn stages_then_publishes_partitioned_files() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let b = batch(&[1, 2, 3], &[Some("eu west"), None, Some("eu west")]);
        let options = WriteOptions::new(FileFormat::Parquet, WriteCompression::Zstd(3));
        let mut w = TableWriter::try_new(
            Arc::clone(&store),
            "memory:///",
            Path::from("t"),
            &b.schema(),
            vec!["region".into()],
            options,
            "q1",
        )
        .expect("writer");
        w.write(&b).await.expect("write");
        let staged = w.finish().await.expect("finish");
        assert_eq!(staged.rows(), 3);
        let before = paths(&store).await;
        assert!(
            before
                .iter()
                .all(|p| p.starts_with("t/.quarry-staging-q1/")),
            "{before:?}"
        );
        staged.publish().await.expect("publish");
        assert_eq!(
            paths(&store).await,
            vec![
                "t/region=__HIVE_DEFAULT_PARTITION__/q1_00002.parquet",
                "t/region=eu%20west/q1_00001.parquet",
            ]
        );
        staged.unpublish().await;
        assert!(paths(&store).await.is_empty());
    }

    #[tokio::test]
    async fn rolls_files_and_bounds_open_writers() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let dialect = CsvDialect {
            delimiter: b',',
            quote: b'"',
            header: false,
        };
        let options = WriteOptions::new(FileFormat::Csv(dialect), WriteCompression::Gzip)
            .with_target_file_size(1)
            .with_max_open_files(1);
        let b = batch(&[1, 2], &[Some("a"), Some("b")]);
        let mut w = TableWriter::try_new(
            Arc::clone(&store),
            "memory:///",
            Path::from("t"),
            &b.schema(),
            vec!["region".into()],
            options,
            "q",
        )
        .expect("writer");
        for _ in 0..3 {
            w.write(&b).await.expect("write");
        }
        let staged = w.finish().await.expect("finish");
        assert_eq!(staged.files.len(), 6);
        assert!(staged.files.iter().all(|f| f.rows == 1 && f.bytes > 0));
        assert!(staged.files[0].path.as_ref().ends_with(".csv.gz"));
    }

    #[tokio::test]
    async fn partition_columns_must_come_last() {
        let b = batch(&[1], &[Some("a")]);
        let err = TableWriter::try_new(
            Arc::new(InMemory::new()),
            "memory:///",
            Path::from("t"),
            &b.schema(),
            vec!["id".into()],
            WriteOptions::new(FileFormat::Json, WriteCompression::None),
            "q",
        )
        .expect_err("id is not last");
        assert!(err.to_string().contains("partition column 'id'"), "{err}");
    }

    #[tokio::test]
    async fn abort_leaves_nothing() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let b = batch(&[1], &[Some("a")]);
        let mut w = TableWriter::try_new(
            Arc::clone(&store),
            "memory:///",
            Path::from("t"),
            &b.schema(),
            vec![],
            WriteOptions::new(FileFormat::Json, WriteCompression::Zstd(3)),
            "q",
        )
        .expect("writer");
        w.write(&b).await.expect("write");
        let staged = w.finish().await.expect("finish");
        staged.discard().await;
        assert!(paths(&store).await.is_empty());
    }
}
