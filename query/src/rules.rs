//! Optimizer rules Quarry adds to DataFusion's: a logical one after DataFusion's own, a
//! physical one before its join selection, and (from [`crate::decimal`] and [`crate::groups`])
//! two physical ones last, before its sanity check.

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::stats::Precision;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::common::{DFSchema, JoinType, Result, ScalarValue};
use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::execution::SessionStateBuilder;
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::utils::merge_schema;
use datafusion::logical_expr::{BinaryExpr, Expr, ExprSchemable, LogicalPlan, Operator};
use datafusion::optimizer::optimizer::ApplyOrder;
use datafusion::optimizer::{OptimizerConfig, OptimizerRule};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_optimizer::optimizer::PhysicalOptimizer;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::aggregates::AggregateExec;
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::joins::{HashJoinExec, PartitionMode};
use datafusion::physical_plan::limit::{GlobalLimitExec, LocalLimitExec};
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::sorts::sort_preserving_merge::SortPreservingMergeExec;
use datafusion::physical_plan::union::UnionExec;

/// Gives decimal literals in `+` / `-` the scale of the decimal they meet, so Arrow adds or
/// subtracts the stored integers directly.
///
/// `1 - l_discount` becomes `CAST(1 AS DECIMAL(20,0)) - l_discount(15,2)` after type coercion;
/// with different scales Arrow rescales both operands of every row with two checked 128-bit
/// multiplications (the literal's factor is recomputed per row). `1.00 AS DECIMAL(22,2)` has the
/// same value and gives the same result type (scale `max(s1, s2)`, integer digits
/// `max(p1 - s1, p2 - s2)`), so the rewrite changes neither results nor schema; on TPC-H Q1 it
/// removed ~15% of the CPU time.
#[derive(Debug, Default)]
pub struct RescaleDecimalLiterals;

impl OptimizerRule for RescaleDecimalLiterals {
    fn name(&self) -> &str {
        "quarry_rescale_decimal_literals"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::BottomUp)
    }

    fn supports_rewrite(&self) -> bool {
        true
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        let inputs = plan.inputs();
        if inputs.is_empty() {
            return Ok(Transformed::no(plan));
        }
        let schema = merge_schema(&inputs);
        let names = NamePreserver::new(&plan);
        plan.map_expressions(|expr| {
            let name = names.save(&expr);
            let rewritten = expr.transform_up(|e| rescale(e, &schema))?;
            Ok(if rewritten.transformed {
                rewritten.update_data(|e| name.restore(e))
            } else {
                rewritten
            })
        })
    }
}

/// `lit op x` or `x op lit` with the literal at x's scale, when that is exact and the type of
/// the whole expression stays the same.
fn rescale(expr: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    let Expr::BinaryExpr(BinaryExpr { left, op, right }) = &expr else {
        return Ok(Transformed::no(expr));
    };
    if !matches!(op, Operator::Plus | Operator::Minus) {
        return Ok(Transformed::no(expr));
    }
    let scale_of = |e: &Expr| match e.get_type(schema) {
        Ok(datafusion::arrow::datatypes::DataType::Decimal128(_, s)) => Some(s),
        _ => None,
    };
    let (new_left, new_right) = match (left.as_ref(), right.as_ref()) {
        (Expr::Literal(v, meta), other) => match scale_of(other).and_then(|s| widen(v, s)) {
            Some(v) => (Expr::Literal(v, meta.clone()), other.clone()),
            None => return Ok(Transformed::no(expr)),
        },
        (other, Expr::Literal(v, meta)) => match scale_of(other).and_then(|s| widen(v, s)) {
            Some(v) => (other.clone(), Expr::Literal(v, meta.clone())),
            None => return Ok(Transformed::no(expr)),
        },
        _ => return Ok(Transformed::no(expr)),
    };
    let rewritten = Expr::BinaryExpr(BinaryExpr::new(
        Box::new(new_left),
        *op,
        Box::new(new_right),
    ));
    match (expr.get_type(schema), rewritten.get_type(schema)) {
        (Ok(before), Ok(after)) if before == after => Ok(Transformed::yes(rewritten)),
        _ => Ok(Transformed::no(expr)),
    }
}

/// A decimal literal of a smaller scale, re-expressed exactly at `scale`.
fn widen(value: &ScalarValue, scale: i8) -> Option<ScalarValue> {
    let ScalarValue::Decimal128(Some(v), p, s) = value else {
        return None;
    };
    if *s >= scale {
        return None;
    }
    let by = (scale - s) as u32;
    let precision = p.checked_add(by as u8).filter(|p| *p <= 38)?;
    let v = v.checked_mul(10i128.checked_pow(by)?)?;
    Some(ScalarValue::Decimal128(Some(v), precision, scale))
}

/// Turns a null-aware anti join (`x NOT IN (SELECT y ..)`) into a plain one when the files prove
/// that neither key can be NULL.
///
/// Quarry catalogs every column as nullable, as Glue and Hive do, so DataFusion plans every
/// `NOT IN` subquery as a null-aware `LeftAnti` join: it must keep its build side on the left and
/// collect it whole (TPC-H Q16 builds on 118,300 rows where a plain anti join builds on 4). The
/// null count of every file's footer is exact, so when it is 0 for the key column of every file
/// a side reads (and no partition value is NULL), and the key passes unchanged through
/// projections, filters, inner joins and group-bys on the way up, neither side holds a NULL and
/// `NOT IN` means `NOT EXISTS`. The join then goes to DataFusion's join selection as any other
/// anti join, which may swap it. Runs before `join_selection`; sees the plan as the physical
/// planner made it.
#[derive(Debug, Default)]
pub struct PlainAntiJoins;

impl PhysicalOptimizerRule for PlainAntiJoins {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let partitioned = config.execution.target_partitions > 1
            && config.optimizer.repartition_joins
            && config.optimizer.prefer_hash_join;
        plan.transform_up(|node| {
            let Some(join) = node.downcast_ref::<HashJoinExec>() else {
                return Ok(Transformed::no(node));
            };
            let keys_never_null = join
                .on()
                .iter()
                .all(|(l, r)| key_never_null(join.left(), l) && key_never_null(join.right(), r));
            if !join.null_aware || !keys_never_null {
                return Ok(Transformed::no(node));
            }
            // As the physical planner plans an anti join that is not null-aware.
            let mode = if partitioned {
                PartitionMode::Auto
            } else {
                PartitionMode::CollectLeft
            };
            let plain = join
                .builder()
                .with_null_aware(false)
                .with_partition_mode(mode)
                .build_exec()?;
            Ok(Transformed::yes(plain))
        })
        .data()
    }

    fn name(&self) -> &str {
        "quarry_plain_anti_joins"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// `builder` with DataFusion's physical optimizer rules and Quarry's: [`PlainAntiJoins`] just
/// before DataFusion's join selection; narrow decimal products and tiny-key grouping last, as
/// no later rule knows their nodes.
pub fn with_physical_rules(builder: SessionStateBuilder) -> SessionStateBuilder {
    let mut rules = PhysicalOptimizer::new().rules;
    let at = rules
        .iter()
        .position(|r| r.name() == "join_selection")
        .unwrap_or(0);
    rules.insert(at, Arc::new(PlainAntiJoins));
    let at = rules
        .iter()
        .position(|r| r.name() == "SanityCheckPlan")
        .unwrap_or(rules.len());
    rules.insert(at, Arc::new(crate::groups::TinyKeyGroups));
    rules.insert(at, Arc::new(crate::decimal::NarrowDecimalProducts));
    builder.with_physical_optimizer_rules(rules)
}

fn key_never_null(plan: &Arc<dyn ExecutionPlan>, key: &Arc<dyn PhysicalExpr>) -> bool {
    key.downcast_ref::<Column>()
        .is_some_and(|c| never_null(plan, c.index()))
}

/// Whether output column `index` of `plan` provably holds no NULL: it comes unchanged from
/// file scans whose every file has an exact null count of 0 for it (or a non-NULL partition
/// value).
fn never_null(plan: &Arc<dyn ExecutionPlan>, index: usize) -> bool {
    let mut scans = Vec::new();
    origins(plan, index, &mut scans)
        && scans.iter().all(|(scan, column)| {
            scan.downcast_ref::<DataSourceExec>()
                .and_then(|s| s.data_source().downcast_ref::<FileScanConfig>())
                .is_some_and(|config| scan_never_null(config, *column))
        })
}

/// The file scans (and their table column) output column `index` of `plan` comes from
/// unchanged, through projections, filters, repartitions, sorts, limits, unions, group-by keys
/// and joins; `false` when it cannot be traced (computed, or an operator not listed). A column
/// an outer join may fill with NULLs does not count as unchanged.
fn origins(
    plan: &Arc<dyn ExecutionPlan>,
    index: usize,
    out: &mut Vec<(Arc<dyn ExecutionPlan>, usize)>,
) -> bool {
    let any = plan;
    if let Some(p) = any.downcast_ref::<ProjectionExec>() {
        return p
            .expr()
            .get(index)
            .and_then(|e| e.expr.downcast_ref::<Column>())
            .is_some_and(|c| origins(p.input(), c.index(), out));
    }
    if let Some(f) = any.downcast_ref::<FilterExec>() {
        let index = match f.projection() {
            Some(p) => match p.get(index) {
                Some(i) => *i,
                None => return false,
            },
            None => index,
        };
        return origins(f.input(), index, out);
    }
    if any.is::<RepartitionExec>()
        || any.is::<CoalescePartitionsExec>()
        || any.is::<SortExec>()
        || any.is::<SortPreservingMergeExec>()
        || any.is::<GlobalLimitExec>()
        || any.is::<LocalLimitExec>()
    {
        return plan
            .children()
            .first()
            .is_some_and(|c| origins(c, index, out));
    }
    if any.is::<UnionExec>() {
        return plan.children().iter().all(|c| origins(c, index, out));
    }
    if let Some(a) = any.downcast_ref::<AggregateExec>() {
        let groups = a.group_expr();
        return groups.is_single()
            && groups
                .expr()
                .get(index)
                .and_then(|(e, _)| e.downcast_ref::<Column>())
                .is_some_and(|c| origins(a.input(), c.index(), out));
    }
    if let Some(j) = any.downcast_ref::<HashJoinExec>() {
        let index = match &j.projection {
            Some(p) => match p.get(index) {
                Some(i) => *i,
                None => return false,
            },
            None => index,
        };
        let left_width = j.left().schema().fields().len();
        // Which input the column comes from, for the join types that keep it as it is there.
        return match j.join_type() {
            JoinType::Inner if index < left_width => origins(j.left(), index, out),
            JoinType::Inner => origins(j.right(), index - left_width, out),
            JoinType::Left | JoinType::LeftSemi | JoinType::LeftAnti if index < left_width => {
                origins(j.left(), index, out)
            }
            JoinType::RightSemi | JoinType::RightAnti => origins(j.right(), index, out),
            JoinType::Right if index >= left_width => origins(j.right(), index - left_width, out),
            _ => false,
        };
    }
    if let Some(source) = any.downcast_ref::<DataSourceExec>() {
        let Some(scan) = source.data_source().downcast_ref::<FileScanConfig>() else {
            return false;
        };
        let column = match scan.file_source.projection() {
            Some(projection) => match projection
                .as_ref()
                .get(index)
                .and_then(|e| e.expr.downcast_ref::<Column>())
            {
                Some(c) => c.index(),
                None => return false,
            },
            None => index,
        };
        out.push((Arc::clone(plan), column));
        return true;
    }
    false
}

/// Table column `column` of a file scan: every file's footer counts exactly 0 NULLs in it, or
/// for a partition column, no file has a NULL value.
fn scan_never_null(scan: &FileScanConfig, column: usize) -> bool {
    let file_columns = scan.file_schema().fields().len();
    scan.file_groups
        .iter()
        .flat_map(|group| group.iter())
        .all(|file| match column.checked_sub(file_columns) {
            Some(partition) => file
                .partition_values
                .get(partition)
                .is_some_and(|v| !v.is_null()),
            None => file.statistics.as_ref().is_some_and(|s| {
                s.column_statistics
                    .get(column)
                    .is_some_and(|c| c.null_count == Precision::Exact(0))
            }),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{ArrayRef, Decimal128Array};
    use datafusion::arrow::datatypes::DataType;
    use datafusion::arrow::record_batch::RecordBatch;
    use datafusion::prelude::SessionContext;
    use std::sync::Arc;

    async fn run(ctx: &SessionContext, sql: &str) -> (Vec<RecordBatch>, String) {
        let df = ctx.sql(sql).await.unwrap();
        let plan = format!(
            "{}",
            df.clone().into_optimized_plan().unwrap().display_indent()
        );
        (df.collect().await.unwrap(), plan)
    }

    #[tokio::test]
    async fn same_results_and_schema_with_the_literal_at_the_column_scale() {
        let values: ArrayRef = Arc::new(
            Decimal128Array::from(vec![Some(5), Some(7), None, Some(-1_000), Some(99_999)])
                .with_precision_and_scale(15, 2)
                .unwrap(),
        );
        let batch = RecordBatch::try_from_iter(vec![("d", values)]).unwrap();
        let sql = "SELECT d, 1 - d AS a, d + 2 AS b, d - CAST(0.5 AS DECIMAL(2,1)) AS c, \
                   CAST(3.125 AS DECIMAL(4,3)) + d AS e, sum(d * (1 - d)) OVER () AS f, \
                   1 - d * 1, d * 2 AS g FROM t ORDER BY d";

        let plain = SessionContext::new();
        plain.register_batch("t", batch.clone()).unwrap();
        let (expected, plain_plan) = run(&plain, sql).await;

        let ctx = SessionContext::new();
        ctx.add_optimizer_rule(Arc::new(RescaleDecimalLiterals));
        ctx.register_batch("t", batch).unwrap();
        let (actual, plan) = run(&ctx, sql).await;

        assert_eq!(actual, expected, "plan:\n{plan}");
        assert_eq!(actual[0].schema(), expected[0].schema());
        // The integer literals now sit at scale 2, 0.5 too; 3.125 (scale 3) and the factor of a
        // multiplication are left alone.
        assert!(
            plain_plan.contains("Decimal128(1,20,0) - t.d AS a"),
            "{plain_plan}"
        );
        assert!(plan.contains("Decimal128(1.00,22,2) - t.d AS a"), "{plan}");
        assert!(plan.contains("t.d + Decimal128(2.00,22,2) AS b"), "{plan}");
        assert!(plan.contains("t.d - Decimal128(0.50,3,2) AS c"), "{plan}");
        assert!(plan.contains("Decimal128(3.125,4,3) + t.d AS e"), "{plan}");
        assert!(plan.contains("(Decimal128(1.00,22,2) - t.d)"), "{plan}");
        assert!(plan.contains("t.d * Decimal128(2,20,0) AS g"), "{plan}");
        let a = actual[0].column_by_name("a").unwrap();
        assert_eq!(a.data_type(), &DataType::Decimal128(23, 2));
    }

    #[test]
    fn widening_is_exact_or_refused() {
        let lit = ScalarValue::Decimal128(Some(7), 20, 0);
        assert_eq!(
            widen(&lit, 2),
            Some(ScalarValue::Decimal128(Some(700), 22, 2))
        );
        assert_eq!(widen(&lit, 0), None);
        assert_eq!(widen(&ScalarValue::Decimal128(Some(7), 37, 0), 2), None);
        assert_eq!(widen(&ScalarValue::Decimal128(None, 20, 0), 2), None);
        assert_eq!(widen(&ScalarValue::Int64(Some(7)), 2), None);
    }

    /// Hash joins of `sql`'s physical plan: (join type, null-aware).
    async fn hash_joins(ctx: &SessionContext, sql: &str) -> Vec<(JoinType, bool)> {
        let plan = ctx
            .sql(sql)
            .await
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap();
        let mut joins = Vec::new();
        plan.apply(|node| {
            if let Some(j) = node.downcast_ref::<HashJoinExec>() {
                joins.push((*j.join_type(), j.null_aware));
            }
            Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
        })
        .unwrap();
        joins
    }

    async fn count(ctx: &SessionContext, sql: &str) -> i64 {
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        let column = batches[0].column(0);
        column
            .as_any()
            .downcast_ref::<datafusion::arrow::array::Int64Array>()
            .unwrap()
            .value(0)
    }

    #[tokio::test]
    async fn not_in_plans_a_plain_anti_join_only_when_footers_prove_no_nulls() {
        let dir = tempfile::tempdir().unwrap();
        let state = SessionStateBuilder::new()
            .with_config(datafusion::prelude::SessionConfig::new().with_target_partitions(2))
            .with_default_features();
        let ctx = SessionContext::new_with_state(with_physical_rules(state).build());
        // Every column is nullable, as in Quarry's catalog; only some files hold NULLs.
        let tables = [
            (
                "big",
                "SELECT CAST(value AS BIGINT) AS k FROM generate_series(1, 5000)",
            ),
            (
                "big_null",
                "SELECT CAST(NULLIF(value, 7) AS BIGINT) AS k FROM generate_series(1, 5000)",
            ),
            (
                "small",
                "SELECT CAST(column1 AS BIGINT) AS k FROM (VALUES (3), (5))",
            ),
            (
                "small_null",
                "SELECT CAST(column1 AS BIGINT) AS k FROM (VALUES (3), (NULL))",
            ),
        ];
        for (name, query) in tables {
            let path = dir.path().join(name);
            ctx.sql(&format!(
                "COPY ({query}) TO '{}/' STORED AS PARQUET",
                path.display()
            ))
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
            ctx.register_parquet(name, path.to_str().unwrap(), Default::default())
                .await
                .unwrap();
        }
        let not_in = |left: &str, right: &str| {
            format!("SELECT count(*) FROM {left} WHERE k NOT IN (SELECT k FROM {right})")
        };

        // No NULL on either side: a plain anti join, which join selection may swap to build on
        // the 2-row side; the key is traced through the filter and the projection.
        let sql = "SELECT count(*) FROM big WHERE k NOT IN \
                   (SELECT s.k FROM small s JOIN big b ON s.k = b.k WHERE s.k < 100)";
        let joins = hash_joins(&ctx, sql).await;
        assert!(joins.contains(&(JoinType::RightAnti, false)), "{joins:?}");
        assert!(
            !joins.iter().any(|(t, _)| *t == JoinType::LeftAnti),
            "{joins:?}"
        );
        assert_eq!(count(&ctx, sql).await, 4998);

        // A NULL in the subquery: NOT IN is never true, and the join stays null-aware.
        let sql = not_in("big", "small_null");
        assert_eq!(
            hash_joins(&ctx, &sql).await,
            vec![(JoinType::LeftAnti, true)]
        );
        assert_eq!(count(&ctx, &sql).await, 0);

        // A NULL on the outer side: that row is not returned, and the join stays null-aware.
        let sql = not_in("big_null", "small");
        assert_eq!(
            hash_joins(&ctx, &sql).await,
            vec![(JoinType::LeftAnti, true)]
        );
        assert_eq!(count(&ctx, &sql).await, 4997);
    }
}
