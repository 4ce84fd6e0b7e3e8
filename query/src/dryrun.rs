//! Dry runs: the most bytes a statement would scan, after partition pruning (catalog) and, for
//! Parquet, row-group pruning from footer statistics. Only footers are read, never data pages.

use std::collections::HashSet;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, BooleanArray};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::pruning::PruningStatistics;
use datafusion::common::{Column, DataFusionError, Result, ScalarValue};
use datafusion::datasource::physical_plan::parquet::metadata::CachedParquetMetaData;
use datafusion::execution::cache::cache_manager::FileMetadataCache;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_optimizer::pruning::PruningPredicateBuilder;
use object_store::{ObjectMeta, ObjectStore};
use parquet::arrow::arrow_reader::statistics::StatisticsConverter;
use parquet::arrow::parquet_to_arrow_schema;
use parquet::file::metadata::ParquetMetaData;
use quarry_lake::read_parquet_footer;

/// What a dry run needs to re-examine one scan.
#[derive(Debug)]
pub struct DryRunInput {
    pub store: Arc<dyn ObjectStore>,
    pub files: Vec<ObjectMeta>,
    pub parquet: bool,
    /// The scan's filters as one physical predicate over the table schema.
    pub predicate: Option<Arc<dyn PhysicalExpr>>,
    pub table_schema: SchemaRef,
    /// DataFusion's `parquet.metadata_size_hint`: the suffix it reads to find the footer.
    pub metadata_size_hint: Option<u64>,
    /// The engine's Parquet metadata cache: footers found there (kept by the crawl, or read by
    /// an earlier statement) are neither read by the dry run nor by the query.
    pub metadata_cache: Arc<FileMetadataCache>,
}

/// The cached Parquet metadata of `file`, if the cache holds it for this size and modification
/// time.
pub(crate) fn cached_footer(
    cache: &FileMetadataCache,
    file: &ObjectMeta,
) -> Option<Arc<ParquetMetaData>> {
    let entry = cache.get(&file.location).filter(|e| e.is_valid_for(file))?;
    let md = entry
        .file_metadata
        .as_any()
        .downcast_ref::<CachedParquetMetaData>()?;
    Some(Arc::clone(md.parquet_metadata()))
}

struct RowGroupStatistics<'a> {
    md: &'a ParquetMetaData,
    arrow: datafusion::arrow::datatypes::Schema,
}

impl RowGroupStatistics<'_> {
    fn converter(&self, column: &Column) -> Option<StatisticsConverter<'_>> {
        StatisticsConverter::try_new(
            &column.name,
            &self.arrow,
            self.md.file_metadata().schema_descr(),
        )
        .ok()
    }
}

impl PruningStatistics for RowGroupStatistics<'_> {
    fn min_values(&self, column: &Column) -> Option<ArrayRef> {
        self.converter(column)?
            .row_group_mins(self.md.row_groups().iter())
            .ok()
    }

    fn max_values(&self, column: &Column) -> Option<ArrayRef> {
        self.converter(column)?
            .row_group_maxes(self.md.row_groups().iter())
            .ok()
    }

    fn num_containers(&self) -> usize {
        self.md.num_row_groups()
    }

    fn null_counts(&self, column: &Column) -> Option<ArrayRef> {
        let counts = self
            .converter(column)?
            .row_group_null_counts(self.md.row_groups().iter())
            .ok()?;
        Some(Arc::new(counts))
    }

    fn row_counts(&self) -> Option<ArrayRef> {
        let counts: Vec<u64> = self
            .md
            .row_groups()
            .iter()
            .map(|rg| rg.num_rows().max(0) as u64)
            .collect();
        Some(Arc::new(datafusion::arrow::array::UInt64Array::from(
            counts,
        )))
    }

    fn contained(&self, _column: &Column, _values: &HashSet<ScalarValue>) -> Option<BooleanArray> {
        None
    }
}

/// The most bytes the scan would read: whole text files; for Parquet, the metadata reads
/// (footer suffix, page indexes, bloom filters) plus the row groups whose statistics may match
/// the predicate.
pub async fn upper_bound(input: &DryRunInput) -> Result<u64> {
    if !input.parquet {
        return Ok(input.files.iter().map(|f| f.size).sum());
    }
    let pruning = match &input.predicate {
        Some(p) => PruningPredicateBuilder::new()
            .with_file_schema(Arc::clone(&input.table_schema))
            .try_build(Arc::clone(p))
            .ok(),
        None => None,
    };
    let mut total = 0;
    for file in &input.files {
        let (md, footer_reads) = match cached_footer(input.metadata_cache.as_ref(), file) {
            Some(md) => (md, 0),
            None => {
                let footer = read_parquet_footer(&input.store, file)
                    .await
                    .map_err(|why| {
                        DataFusionError::Execution(format!("{}: {why}", file.location))
                    })?;
                // What DataFusion reads to find the footer: a suffix of `metadata_size_hint`
                // bytes (plus the footer again when it is larger); without a hint, the 8-byte
                // trailer, then the footer.
                let footer_len = footer.len_at_end();
                let suffix = input
                    .metadata_size_hint
                    .map_or(footer_len + 8, |h| file.size.min(h.max(8)));
                let reads = if footer_len > suffix {
                    suffix + footer_len
                } else {
                    suffix
                };
                (Arc::new(footer.metadata), reads)
            }
        };
        let keep: Vec<bool> = match &pruning {
            Some(p) => {
                let file_meta = md.file_metadata();
                let arrow = parquet_to_arrow_schema(
                    file_meta.schema_descr(),
                    file_meta.key_value_metadata(),
                )
                .map_err(|e| DataFusionError::External(Box::new(e)))?;
                let stats = RowGroupStatistics { md: &md, arrow };
                p.prune(&stats)
                    .unwrap_or_else(|_| vec![true; md.num_row_groups()])
            }
            None => vec![true; md.num_row_groups()],
        };
        // Besides data pages: the footer reads, page indexes and bloom filters.
        total += footer_reads;
        for rg in md.row_groups() {
            for c in rg.columns() {
                total += c.column_index_length().unwrap_or(0).max(0) as u64;
                total += c.offset_index_length().unwrap_or(0).max(0) as u64;
                total += c.bloom_filter_length().unwrap_or(0).max(0) as u64;
            }
        }
        total += md
            .row_groups()
            .iter()
            .zip(keep)
            .filter(|(_, k)| *k)
            .map(|(rg, _)| rg.compressed_size().max(0) as u64)
            .sum::<u64>();
    }
    Ok(total)
}
