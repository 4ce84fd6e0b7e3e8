//! Dry runs: the most bytes a statement would scan, after partition pruning (catalog) and, for
//! Parquet, row-group pruning from footer statistics. Only footers are read, never data pages.

use std::collections::HashSet;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, BooleanArray};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::pruning::PruningStatistics;
use datafusion::common::{Column, DataFusionError, Result, ScalarValue};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_optimizer::pruning::PruningPredicateBuilder;
use object_store::{ObjectMeta, ObjectStore};
use parquet::arrow::arrow_reader::statistics::StatisticsConverter;
use parquet::arrow::parquet_to_arrow_schema;
use parquet::file::metadata::ParquetMetaData;
use quarry_crawler::inspect::read_parquet_footer;

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
        let footer = read_parquet_footer(&input.store, file)
            .await
            .map_err(|why| DataFusionError::Execution(format!("{}: {why}", file.location)))?;
        let footer_len = footer.len_at_end();
        let md = footer.metadata;
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
        // What DataFusion reads besides data pages: a suffix of `metadata_size_hint` bytes
        // (plus the footer again when it is larger), page indexes and bloom filters.
        // (without a hint: the 8-byte trailer, then the footer)
        let suffix = input
            .metadata_size_hint
            .map_or(footer_len + 8, |h| file.size.min(h.max(8)));
        total += if footer_len > suffix {
            suffix + footer_len
        } else {
            suffix
        };
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
