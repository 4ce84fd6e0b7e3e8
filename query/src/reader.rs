//! How a scan reads its files, beyond DataFusion's own sources:
//! - every error a file's read raises names the object (DataFusion's Parquet, CSV and JSON
//!   decoders report what went wrong, not in which file);
//! - text (CSV, TSV, JSON lines) is read as Athena reads it: bytes that are not UTF-8 become
//!   U+FFFD (the replacement character) instead of failing the query or dropping the file.
//!
//! The wrapper sits between DataFusion's scan and the format's own [`FileSource`]: each file is
//! planned by the format's morselizer, and each stream it yields maps its errors to name the
//! file. For text, the format reads through [`TextStore`], which decompresses and repairs the
//! bytes; the format itself is told they are uncompressed.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DataFusionError, Result};
use datafusion::config::ConfigOptions;
use datafusion::datasource::file_format::file_compression_type::FileCompressionType;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::ParquetSource;
use datafusion::datasource::physical_plan::{
    FileOpenFuture, FileOpener, FileScanConfig, FileScanConfigBuilder, FileSource,
};
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::table_schema::TableSchema;
use datafusion::physical_expr::expressions::DynamicFilterPhysicalExpr;
use datafusion::physical_expr::projection::ProjectionExprs;
use datafusion::physical_expr::split_conjunction;
use datafusion::physical_expr::{EquivalenceProperties, LexOrdering};
use datafusion::physical_expr::{PhysicalExpr, PhysicalSortExpr};
use datafusion::physical_plan::filter_pushdown::FilterPushdownPropagation;
use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
use datafusion::physical_plan::sort_pushdown::SortOrderPushdownResult;
use datafusion::physical_plan::{DisplayFormatType, ExecutionPlan};
use datafusion_datasource::morsel::{Morsel, MorselPlan, MorselPlanner, Morselizer};
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, GetResultPayload, ListResult, MultipartUpload, ObjectMeta,
    ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions,
};

/// Wrap the file scan of `plan` (a `DataSourceExec` over files, as a format's
/// `create_physical_plan` returns it) so its errors name the object, and, for `text`, so
/// invalid UTF-8 reads as U+FFFD. `base` is the store's key (`s3://bucket`, `file://`): messages
/// name objects as `base/path`, as crawl bookmarks do.
/// Any other plan is returned as it is.
pub(crate) fn read_as_athena(
    plan: Arc<dyn ExecutionPlan>,
    base: &str,
    text: bool,
) -> Arc<dyn ExecutionPlan> {
    let Some(exec) = plan.downcast_ref::<DataSourceExec>() else {
        return plan;
    };
    let Some(config) = exec.data_source().downcast_ref::<FileScanConfig>() else {
        return plan;
    };
    let source = ObjectSource {
        inner: Arc::clone(config.file_source()),
        base: Arc::from(base),
        text,
    };
    let config = FileScanConfigBuilder::from(config.clone())
        .with_source(Arc::new(source))
        .build();
    DataSourceExec::from_data_source(config)
}

/// The most of a file's key range a join's keys may cover for the file to be read with row
/// filtering.
const SELECTIVE_KEYS: f64 = 0.01;

/// For a Parquet scan filtered only by dynamic filters (a hash join's build-side keys pushed to
/// its probe side, or a TopK bound): the same source applying its predicate to rows as it
/// decodes (late materialisation), and the dynamic filters, for [`SelectiveMorselizer`] to
/// choose per file. `None` for any other scan, for one already filtering rows, and with
/// `QUARRY_ROW_FILTER_DYNAMIC=false` (kept for measuring).
fn row_filtering(source: &Arc<dyn FileSource>) -> Option<RowFiltering> {
    static ENABLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let enabled = *ENABLED
        .get_or_init(|| std::env::var("QUARRY_ROW_FILTER_DYNAMIC").as_deref() != Ok("false"));
    let parquet = source.downcast_ref::<ParquetSource>()?;
    if !enabled || parquet.table_parquet_options().global.pushdown_filters {
        return None;
    }
    let predicate = parquet.filter()?;
    let conjuncts = split_conjunction(&predicate);
    if !conjuncts
        .iter()
        .all(|e| e.downcast_ref::<DynamicFilterPhysicalExpr>().is_some())
    {
        return None;
    }
    Some(RowFiltering {
        source: Arc::new(parquet.clone().with_pushdown_filters(true)),
        dynamic: conjuncts.into_iter().map(Arc::clone).collect(),
    })
}

/// A scan's source with row filtering on, and its dynamic filters.
struct RowFiltering {
    source: Arc<dyn FileSource>,
    dynamic: Vec<Arc<dyn PhysicalExpr>>,
}

/// Reads each file with row filtering when, as the file is opened, a join that feeds one of its
/// dynamic filters has finished building and holds few keys for the file: an `IN` list (which
/// DataFusion builds for up to `hash_join_inlist_pushdown_max_distinct_values` keys) covering at
/// most [`SELECTIVE_KEYS`] of the file's key range (its footer's min..max). Otherwise the file is
/// decoded whole and filtered after, as DataFusion does by default.
///
/// Why per file, at open time: measured on TPC-H SF1, row filtering speeds scans that keep very
/// few rows (Q18 keeps 399 of 6 M lineitem rows: -19%) and slows scans that keep a scattered few
/// percent (Q11 keeps 4% of partsupp: +60%, decoding a scattered selection costs more than
/// decoding everything). Only the finished build side knows which; the planner's estimates of
/// it are off by orders of magnitude.
#[derive(Debug)]
struct SelectiveMorselizer {
    plain: Box<dyn Morselizer>,
    filtering: Box<dyn Morselizer>,
    dynamic: Vec<Arc<dyn PhysicalExpr>>,
}

impl Morselizer for SelectiveMorselizer {
    fn plan_file(&self, file: PartitionedFile) -> Result<Box<dyn MorselPlanner>> {
        // The filters are ANDed: one that keeps few rows is enough.
        let few = self.dynamic.iter().any(|d| {
            d.downcast_ref::<DynamicFilterPhysicalExpr>()
                .and_then(|d| d.current().ok())
                .is_some_and(|current| keeps_few_rows(&current, &file))
        });
        if few {
            self.filtering.plan_file(file)
        } else {
            self.plain.plan_file(file)
        }
    }
}

/// Whether a dynamic filter's current expression lists its keys (`IN`, never a hash-table
/// lookup) and they cover at most [`SELECTIVE_KEYS`] of `file`'s range of that column.
fn keeps_few_rows(filter: &Arc<dyn PhysicalExpr>, file: &PartitionedFile) -> bool {
    use datafusion::common::tree_node::TreeNode;
    use datafusion::physical_expr::expressions::{Column, InListExpr};
    let mut keys = 0usize;
    let mut column = None;
    let mut listed = true;
    let walked = filter.apply(|e| {
        if let Some(list) = e.downcast_ref::<InListExpr>() {
            match list.expr().downcast_ref::<Column>() {
                Some(c) if !list.negated() && column.is_none_or(|i| i == c.index()) => {
                    column = Some(c.index());
                    keys += list.len();
                }
                _ => listed = false,
            }
        } else if e
            .downcast_ref::<datafusion::physical_plan::joins::HashTableLookupExpr>()
            .is_some()
        {
            listed = false;
        }
        Ok(TreeNodeRecursion::Continue)
    });
    let (true, Ok(_), Some(column)) = (listed, walked, column) else {
        return false;
    };
    let Some(stats) = file
        .statistics
        .as_ref()
        .and_then(|s| s.column_statistics.get(column))
    else {
        return false;
    };
    let int = |v: Option<&datafusion::common::ScalarValue>| match v?
        .cast_to(&datafusion::arrow::datatypes::DataType::Int64)
    {
        Ok(datafusion::common::ScalarValue::Int64(Some(i))) => Some(i),
        _ => None,
    };
    let (Some(min), Some(max)) = (
        int(stats.min_value.get_value()),
        int(stats.max_value.get_value()),
    ) else {
        return false;
    };
    let range = max.saturating_sub(min).saturating_add(1) as f64;
    (keys as f64) <= range * SELECTIVE_KEYS
}

/// A format's [`FileSource`] whose reads name their object and, for text, repair UTF-8.
#[derive(Clone)]
struct ObjectSource {
    inner: Arc<dyn FileSource>,
    base: Arc<str>,
    text: bool,
}

impl ObjectSource {
    fn wrap(&self, inner: Arc<dyn FileSource>) -> Arc<dyn FileSource> {
        Arc::new(Self {
            inner,
            ..self.clone()
        })
    }

    /// The store and scan configuration the format reads with: for text, bytes arrive
    /// decompressed and repaired, so the format is told they are plain.
    fn reading(
        &self,
        store: Arc<dyn ObjectStore>,
        config: &FileScanConfig,
    ) -> (Arc<dyn ObjectStore>, Option<FileScanConfig>) {
        if !self.text {
            return (store, None);
        }
        let store = Arc::new(TextStore {
            inner: store,
            compression: config.file_compression_type,
        });
        let mut plain = config.clone();
        plain.file_compression_type = FileCompressionType::UNCOMPRESSED;
        (store, Some(plain))
    }
}

impl FileSource for ObjectSource {
    fn create_file_opener(
        &self,
        object_store: Arc<dyn ObjectStore>,
        base_config: &FileScanConfig,
        partition: usize,
    ) -> Result<Arc<dyn FileOpener>> {
        let (store, plain) = self.reading(object_store, base_config);
        let config = plain.as_ref().unwrap_or(base_config);
        Ok(Arc::new(NamedOpener {
            inner: self.inner.create_file_opener(store, config, partition)?,
            base: Arc::clone(&self.base),
        }))
    }

    fn create_morselizer(
        &self,
        object_store: Arc<dyn ObjectStore>,
        base_config: &FileScanConfig,
        partition: usize,
    ) -> Result<Box<dyn Morselizer>> {
        let (store, plain) = self.reading(object_store, base_config);
        let config = plain.as_ref().unwrap_or(base_config);
        let mut inner = self
            .inner
            .create_morselizer(Arc::clone(&store), config, partition)?;
        if let Some(rows) = row_filtering(&self.inner) {
            inner = Box::new(SelectiveMorselizer {
                plain: inner,
                filtering: rows.source.create_morselizer(store, config, partition)?,
                dynamic: rows.dynamic,
            });
        }
        Ok(Box::new(NamedMorselizer {
            inner,
            base: Arc::clone(&self.base),
        }))
    }

    fn table_schema(&self) -> &TableSchema {
        self.inner.table_schema()
    }

    fn with_batch_size(&self, batch_size: usize) -> Arc<dyn FileSource> {
        self.wrap(self.inner.with_batch_size(batch_size))
    }

    fn filter(&self) -> Option<Arc<dyn PhysicalExpr>> {
        self.inner.filter()
    }

    fn projection(&self) -> Option<&ProjectionExprs> {
        self.inner.projection()
    }

    fn metrics(&self) -> &ExecutionPlanMetricsSet {
        self.inner.metrics()
    }

    fn file_type(&self) -> &str {
        self.inner.file_type()
    }

    fn fmt_extra(&self, t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        self.inner.fmt_extra(t, f)
    }

    /// Text is read whole: repairing UTF-8 changes byte offsets, which byte-range splits of
    /// one file rely on. (CSV with quoted newlines is never split anyway.)
    fn supports_repartitioning(&self) -> bool {
        !self.text && self.inner.supports_repartitioning()
    }

    fn repartitioned(
        &self,
        target_partitions: usize,
        repartition_file_min_size: usize,
        output_ordering: Option<LexOrdering>,
        config: &FileScanConfig,
    ) -> Result<Option<FileScanConfig>> {
        if self.text {
            return Ok(None);
        }
        self.inner.repartitioned(
            target_partitions,
            repartition_file_min_size,
            output_ordering,
            config,
        )
    }

    fn try_pushdown_filters(
        &self,
        filters: Vec<Arc<dyn PhysicalExpr>>,
        config: &ConfigOptions,
    ) -> Result<FilterPushdownPropagation<Arc<dyn FileSource>>> {
        let mut result = self.inner.try_pushdown_filters(filters, config)?;
        result.updated_node = result.updated_node.map(|n| self.wrap(n));
        Ok(result)
    }

    fn try_pushdown_sort(
        &self,
        order: &[PhysicalSortExpr],
        eq_properties: &EquivalenceProperties,
    ) -> Result<SortOrderPushdownResult<Arc<dyn FileSource>>> {
        Ok(match self.inner.try_pushdown_sort(order, eq_properties)? {
            SortOrderPushdownResult::Exact { inner } => SortOrderPushdownResult::Exact {
                inner: self.wrap(inner),
            },
            SortOrderPushdownResult::Inexact { inner } => SortOrderPushdownResult::Inexact {
                inner: self.wrap(inner),
            },
            SortOrderPushdownResult::Unsupported => SortOrderPushdownResult::Unsupported,
        })
    }

    fn reorder_files(&self, files: Vec<PartitionedFile>) -> Vec<PartitionedFile> {
        self.inner.reorder_files(files)
    }

    fn try_pushdown_projection(
        &self,
        projection: &ProjectionExprs,
    ) -> Result<Option<Arc<dyn FileSource>>> {
        Ok(self
            .inner
            .try_pushdown_projection(projection)?
            .map(|n| self.wrap(n)))
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        self.inner.apply_expressions(f)
    }
}

/// The object one file's reads come from, to name it in their errors.
#[derive(Debug, Clone)]
struct Names {
    /// `base/location`, as messages name an object.
    object: Arc<str>,
    /// The location inside its store, as errors that already name it spell it.
    path: Arc<str>,
}

impl Names {
    fn of(base: &str, file: &PartitionedFile) -> Self {
        Self {
            object: Arc::from(format!("{base}/{}", file.object_meta.location)),
            path: Arc::from(file.object_meta.location.as_ref()),
        }
    }

    /// `e`, saying which object it came from, unless it already does, or is a limit or a
    /// cancellation (those are about the statement, not the file).
    fn name(&self, e: DataFusionError) -> DataFusionError {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        while let Some(err) = source {
            if err.downcast_ref::<crate::meter::LimitExceeded>().is_some()
                || err.downcast_ref::<crate::engine::Cancelled>().is_some()
            {
                return e;
            }
            source = err.source();
        }
        if e.to_string().contains(self.path.as_ref()) {
            return e;
        }
        DataFusionError::Context(format!("reading {}", self.object), Box::new(e))
    }

    fn stream(
        self,
        stream: BoxStream<'static, Result<datafusion::arrow::record_batch::RecordBatch>>,
    ) -> BoxStream<'static, Result<datafusion::arrow::record_batch::RecordBatch>> {
        stream.map_err(move |e| self.name(e)).boxed()
    }

    fn planner(&self, inner: Box<dyn MorselPlanner>) -> Box<dyn MorselPlanner> {
        Box::new(NamedPlanner {
            inner,
            names: self.clone(),
        })
    }
}

struct NamedOpener {
    inner: Arc<dyn FileOpener>,
    base: Arc<str>,
}

impl FileOpener for NamedOpener {
    fn open(&self, file: PartitionedFile) -> Result<FileOpenFuture> {
        let names = Names::of(&self.base, &file);
        let opening = self.inner.open(file).map_err(|e| names.name(e))?;
        Ok(async move {
            match opening.await {
                Ok(stream) => Ok(names.stream(stream)),
                Err(e) => Err(names.name(e)),
            }
        }
        .boxed())
    }
}

#[derive(Debug)]
struct NamedMorselizer {
    inner: Box<dyn Morselizer>,
    base: Arc<str>,
}

impl Morselizer for NamedMorselizer {
    fn plan_file(&self, file: PartitionedFile) -> Result<Box<dyn MorselPlanner>> {
        let names = Names::of(&self.base, &file);
        let inner = self.inner.plan_file(file).map_err(|e| names.name(e))?;
        Ok(names.planner(inner))
    }
}

#[derive(Debug)]
struct NamedPlanner {
    inner: Box<dyn MorselPlanner>,
    names: Names,
}

impl MorselPlanner for NamedPlanner {
    fn plan(self: Box<Self>) -> Result<Option<MorselPlan>> {
        let names = self.names;
        let Some(mut plan) = self.inner.plan().map_err(|e| names.name(e))? else {
            return Ok(None);
        };
        let morsels = plan
            .take_morsels()
            .into_iter()
            .map(|inner| {
                Box::new(NamedMorsel {
                    inner,
                    names: names.clone(),
                }) as Box<dyn Morsel>
            })
            .collect();
        let planners = plan
            .take_ready_planners()
            .into_iter()
            .map(|p| names.planner(p))
            .collect();
        let mut named = MorselPlan::new()
            .with_morsels(morsels)
            .with_planners(planners);
        if let Some(pending) = plan.take_pending_planner() {
            named.set_pending_planner(async move {
                match pending.await {
                    Ok(p) => Ok(names.planner(p)),
                    Err(e) => Err(names.name(e)),
                }
            });
        }
        Ok(Some(named))
    }
}

#[derive(Debug)]
struct NamedMorsel {
    inner: Box<dyn Morsel>,
    names: Names,
}

impl Morsel for NamedMorsel {
    fn into_stream(
        self: Box<Self>,
    ) -> BoxStream<'static, Result<datafusion::arrow::record_batch::RecordBatch>> {
        self.names.stream(self.inner.into_stream())
    }
}

/// The store a text format reads through: a whole-object GET answers with the decompressed
/// content, invalid UTF-8 replaced by U+FFFD. Everything else goes to the store beneath.
#[derive(Debug)]
struct TextStore {
    inner: Arc<dyn ObjectStore>,
    compression: FileCompressionType,
}

impl fmt::Display for TextStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Text({})", self.inner)
    }
}

fn store_error(e: DataFusionError) -> object_store::Error {
    match e {
        DataFusionError::ObjectStore(e) => *e,
        e => object_store::Error::Generic {
            store: "text",
            source: Box::new(e),
        },
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl ObjectStore for TextStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        let whole = options.range.is_none() && !options.head;
        let result = self.inner.get_opts(location, options).await?;
        if !whole {
            return Ok(result);
        }
        let (meta, range, attributes) = (
            result.meta.clone(),
            result.range.clone(),
            result.attributes.clone(),
        );
        let body = result.into_stream().map_err(DataFusionError::from).boxed();
        let text = self.compression.convert_stream(body).map_err(store_error)?;
        Ok(GetResult {
            payload: GetResultPayload::Stream(repair_utf8(text).map_err(store_error).boxed()),
            meta,
            range,
            attributes,
        })
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(
        &self,
        from: &Path,
        to: &Path,
        options: RenameOptions,
    ) -> object_store::Result<()> {
        self.inner.rename_opts(from, to, options).await
    }
}

/// Length of the UTF-8 sequence `bytes` ends with when it is cut short (the rest may arrive in
/// the next chunk): 0 when `bytes` ends on a character boundary or with bytes that can never
/// start a character.
fn cut_sequence(bytes: &[u8]) -> usize {
    for back in 1..=bytes.len().min(3) {
        let b = bytes[bytes.len() - back];
        if b & 0xC0 == 0x80 {
            continue; // a continuation byte: look further back for the lead
        }
        let needed = match b {
            0xC2..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF4 => 4,
            _ => return 0,
        };
        return if needed > back { back } else { 0 };
    }
    0
}

/// `chunks` with every invalid UTF-8 sequence replaced by U+FFFD (as `String::from_utf8_lossy`
/// replaces them), whatever chunk boundaries cut through characters. Valid chunks pass
/// through without a copy.
pub(crate) fn repair_utf8(
    chunks: BoxStream<'static, Result<Bytes>>,
) -> BoxStream<'static, Result<Bytes>> {
    let state = (chunks, Vec::<u8>::new(), false);
    futures::stream::unfold(state, |(mut chunks, mut carry, done)| async move {
        if done {
            return None;
        }
        loop {
            match chunks.next().await {
                Some(Err(e)) => return Some((Err(e), (chunks, carry, true))),
                None if carry.is_empty() => return None,
                None => {
                    let rest = Bytes::from(String::from_utf8_lossy(&carry).into_owned());
                    return Some((Ok(rest), (chunks, Vec::new(), true)));
                }
                Some(Ok(chunk)) => {
                    if carry.is_empty() && std::str::from_utf8(&chunk).is_ok() {
                        return Some((Ok(chunk), (chunks, carry, false)));
                    }
                    carry.extend_from_slice(&chunk);
                    let keep = cut_sequence(&carry);
                    let tail = carry.split_off(carry.len() - keep);
                    let body = std::mem::replace(&mut carry, tail);
                    if body.is_empty() {
                        continue;
                    }
                    let text = match String::from_utf8(body) {
                        Ok(s) => s,
                        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
                    };
                    return Some((Ok(Bytes::from(text)), (chunks, carry, false)));
                }
            }
        }
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn repaired(chunks: &[&[u8]]) -> String {
        let owned: Vec<Result<Bytes>> = chunks
            .iter()
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let out: Vec<Bytes> = repair_utf8(futures::stream::iter(owned).boxed())
            .try_collect()
            .await
            .unwrap();
        String::from_utf8(out.concat()).expect("the output is UTF-8")
    }

    #[tokio::test]
    async fn invalid_bytes_become_replacement_characters_wherever_chunks_are_cut() {
        let text = "id,name\n1,caf\u{e9}\n2,\u{1F600}\n".as_bytes();
        let mut bad = text.to_vec();
        bad.extend_from_slice(b"3,x\xFFy\xC3\n4,\xE2\x82\n");
        let want = String::from_utf8_lossy(&bad).into_owned();
        assert!(want.contains("x\u{FFFD}y\u{FFFD}\n4,\u{FFFD}\n"));
        // Every way of cutting the input into two and three chunks.
        for i in 0..=bad.len() {
            assert_eq!(repaired(&[&bad[..i], &bad[i..]]).await, want, "cut at {i}");
            for j in i..=bad.len() {
                assert_eq!(
                    repaired(&[&bad[..i], &bad[i..j], &bad[j..]]).await,
                    want,
                    "cut at {i}, {j}"
                );
            }
        }
        // A sequence cut at the very end of the input.
        assert_eq!(repaired(&[b"a\xF0\x9F"]).await, "a\u{FFFD}");
    }

    #[test]
    fn a_cut_sequence_is_told_from_an_invalid_one() {
        assert_eq!(cut_sequence(b"abc"), 0);
        assert_eq!(cut_sequence(b"a\xC3"), 1);
        assert_eq!(cut_sequence(b"a\xE2\x82"), 2);
        assert_eq!(cut_sequence(b"a\xF0\x9F\x98"), 3);
        assert_eq!(cut_sequence("a\u{1F600}".as_bytes()), 0);
        assert_eq!(cut_sequence(b"a\xFF"), 0);
        assert_eq!(cut_sequence(b"\x80\x80\x80"), 0);
    }

    #[test]
    fn errors_name_the_object_once() {
        let names = Names {
            object: "s3://b/t/f.csv".into(),
            path: "t/f.csv".into(),
        };
        let e = names.name(DataFusionError::Execution("bad row".into()));
        assert_eq!(
            e.to_string(),
            "reading s3://b/t/f.csv\ncaused by\nExecution error: bad row"
        );
        let already = DataFusionError::Execution("t/f.csv changed while the query read it".into());
        let e = names.name(already);
        assert!(!e.to_string().starts_with("reading"));
    }
}
