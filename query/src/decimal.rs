//! Decimal multiplication in 64-bit integers where the operands allow it.
//!
//! Arrow multiplies `Decimal128` values as `i128` with an overflow check per row, a call into
//! the compiler's 128-bit multiplication helper each time. Prices, quantities and rates are far
//! smaller: when every value of both operands of a batch fits in 31 bits (plus sign), their
//! product fits in 63 bits, cannot overflow, and a plain `i64` multiplication gives the same
//! integer. [`NarrowDecimalProducts`] wraps every decimal `*` of a plan in [`NarrowDecimalMul`],
//! which checks the operands' range per batch and otherwise hands the batch to Arrow's kernel.
//! The result type, its scale (the sum of the operands' scales) and NULLs are Arrow's.

use std::fmt;
use std::hash::Hash;
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, Decimal128Array};
use datafusion::arrow::compute::kernels::arity::binary;
use datafusion::arrow::datatypes::{DataType, Decimal128Type, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::Result;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::logical_expr::sort_properties::ExprProperties;
use datafusion::logical_expr::{ColumnarValue, Operator};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::BinaryExpr;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateInputMode};
use datafusion::physical_plan::projection::{ProjectionExec, ProjectionExpr};

/// Operand values below this magnitude multiply without overflow in an `i64`.
const NARROW: i128 = 1 << 31;

/// The physical rule putting [`NarrowDecimalMul`] in place of every `Decimal128 * Decimal128`
/// whose result scale is the operands' sum (always, unless DataFusion capped it at 38), in
/// projections and aggregate arguments. `QUARRY_NARROW_DECIMALS=false` turns it off (kept for
/// measuring).
#[derive(Debug, Default)]
pub struct NarrowDecimalProducts;

impl PhysicalOptimizerRule for NarrowDecimalProducts {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        static ENABLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        if !*ENABLED
            .get_or_init(|| std::env::var("QUARRY_NARROW_DECIMALS").as_deref() != Ok("false"))
        {
            return Ok(plan);
        }
        plan.transform_up(|node| {
            if let Some(p) = node.downcast_ref::<ProjectionExec>() {
                let schema = p.input().schema();
                let mut changed = false;
                let exprs = p
                    .expr()
                    .iter()
                    .map(|pe| {
                        let t = wrap(&pe.expr, &schema)?;
                        changed |= t.transformed;
                        Ok(ProjectionExpr {
                            expr: t.data,
                            alias: pe.alias.clone(),
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                if changed {
                    let p = ProjectionExec::try_new(exprs, Arc::clone(p.input()))?;
                    return Ok(Transformed::yes(Arc::new(p) as Arc<dyn ExecutionPlan>));
                }
            } else if let Some(a) = node.downcast_ref::<AggregateExec>()
                && a.mode().input_mode() == AggregateInputMode::Raw
            {
                let schema = a.input_schema();
                let mut changed = false;
                let aggregates = a
                    .aggr_expr()
                    .iter()
                    .map(|f| {
                        let all = f.all_expressions();
                        let mut wrapped = false;
                        let args = all
                            .args
                            .iter()
                            .map(|e| {
                                let t = wrap(e, &schema)?;
                                wrapped |= t.transformed;
                                Ok(t.data)
                            })
                            .collect::<Result<Vec<_>>>()?;
                        let new = wrapped
                            .then(|| f.with_new_expressions(args, all.order_by_exprs))
                            .flatten();
                        changed |= new.is_some();
                        Ok(new.map_or_else(|| Arc::clone(f), Arc::new))
                    })
                    .collect::<Result<Vec<_>>>()?;
                if changed {
                    let a = a.with_new_aggr_exprs(aggregates);
                    return Ok(Transformed::yes(Arc::new(a) as Arc<dyn ExecutionPlan>));
                }
            }
            Ok(Transformed::no(node))
        })
        .data()
    }

    fn name(&self) -> &str {
        "narrow_decimal_products"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// `expr` with its decimal products wrapped.
fn wrap(
    expr: &Arc<dyn PhysicalExpr>,
    schema: &Schema,
) -> Result<Transformed<Arc<dyn PhysicalExpr>>> {
    Arc::clone(expr).transform_up(|e| match narrow(&e, schema)? {
        Some(wrapped) => Ok(Transformed::yes(wrapped)),
        None => Ok(Transformed::no(e)),
    })
}

fn narrow(expr: &Arc<dyn PhysicalExpr>, schema: &Schema) -> Result<Option<Arc<dyn PhysicalExpr>>> {
    let Some(b) = expr.downcast_ref::<BinaryExpr>() else {
        return Ok(None);
    };
    if *b.op() != Operator::Multiply {
        return Ok(None);
    }
    let (DataType::Decimal128(_, s1), DataType::Decimal128(_, s2), DataType::Decimal128(_, s)) = (
        b.left().data_type(schema)?,
        b.right().data_type(schema)?,
        expr.data_type(schema)?,
    ) else {
        return Ok(None);
    };
    if i16::from(s1) + i16::from(s2) != i16::from(s) {
        return Ok(None);
    }
    Ok(Some(Arc::new(NarrowDecimalMul {
        inner: Arc::clone(expr),
    })))
}

/// A `Decimal128 * Decimal128` computed in `i64` for batches whose operands are all under
/// 2^31 in magnitude, by Arrow otherwise (see the module's documentation).
#[derive(Debug, Eq)]
pub struct NarrowDecimalMul {
    /// The `BinaryExpr` replaced: its operands, type and display.
    inner: Arc<dyn PhysicalExpr>,
}

impl PartialEq for NarrowDecimalMul {
    fn eq(&self, other: &Self) -> bool {
        self.inner.as_ref() == other.inner.as_ref()
    }
}

impl Hash for NarrowDecimalMul {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.inner.as_ref().hash(state);
    }
}

impl NarrowDecimalMul {
    fn operands(&self) -> (&Arc<dyn PhysicalExpr>, &Arc<dyn PhysicalExpr>) {
        let b = self
            .inner
            .downcast_ref::<BinaryExpr>()
            .expect("NarrowDecimalMul wraps a BinaryExpr");
        (b.left(), b.right())
    }
}

impl fmt::Display for NarrowDecimalMul {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

/// Whether every non-NULL value is under [`NARROW`] in magnitude (NULL slots may hold anything).
fn is_narrow(a: &Decimal128Array) -> bool {
    let values = a.values();
    match a.nulls() {
        None => values.iter().all(|v| v.unsigned_abs() < NARROW as u128),
        Some(n) => values
            .iter()
            .enumerate()
            .all(|(i, v)| n.is_null(i) || v.unsigned_abs() < NARROW as u128),
    }
}

impl PhysicalExpr for NarrowDecimalMul {
    fn data_type(&self, input_schema: &Schema) -> Result<DataType> {
        self.inner.data_type(input_schema)
    }

    fn nullable(&self, input_schema: &Schema) -> Result<bool> {
        self.inner.nullable(input_schema)
    }

    fn evaluate(&self, batch: &RecordBatch) -> Result<ColumnarValue> {
        let (left, right) = self.operands();
        let (ColumnarValue::Array(l), ColumnarValue::Array(r)) =
            (left.evaluate(batch)?, right.evaluate(batch)?)
        else {
            return self.inner.evaluate(batch);
        };
        let (Some(l), Some(r)) = (
            l.as_primitive_opt::<Decimal128Type>(),
            r.as_primitive_opt::<Decimal128Type>(),
        ) else {
            return self.inner.evaluate(batch);
        };
        if !(is_narrow(l) && is_narrow(r)) {
            return self.inner.evaluate(batch);
        }
        let DataType::Decimal128(precision, scale) = self.inner.data_type(&batch.schema())? else {
            return self.inner.evaluate(batch);
        };
        #[cfg(test)]
        tests::NARROW_BATCHES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // NULL slots may hold wide values: wrapping keeps them harmless, their result is NULL.
        let product: Decimal128Array = binary(l, r, |a: i128, b: i128| {
            i128::from((a as i64).wrapping_mul(b as i64))
        })?;
        Ok(ColumnarValue::Array(Arc::new(
            product.with_precision_and_scale(precision, scale)?,
        )))
    }

    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        let (left, right) = self.operands();
        vec![left, right]
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn PhysicalExpr>>,
    ) -> Result<Arc<dyn PhysicalExpr>> {
        let inner = Arc::clone(&self.inner).with_new_children(children)?;
        Ok(Arc::new(Self { inner }))
    }

    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt_sql(f)
    }

    fn get_properties(&self, children: &[ExprProperties]) -> Result<ExprProperties> {
        self.inner.get_properties(children)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::util::pretty::pretty_format_batches;
    use datafusion::common::tree_node::TreeNodeRecursion;
    use datafusion::execution::SessionStateBuilder;
    use datafusion::physical_plan::collect;
    use datafusion::prelude::{SessionConfig, SessionContext};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Batches multiplied in `i64`.
    pub(super) static NARROW_BATCHES: AtomicUsize = AtomicUsize::new(0);

    /// Prices (15,2), rates (15,2) and a wide column whose values pass 2^31 from row 3,000 on;
    /// every seventh price NULL. Batches of 500 rows, so some batches are narrow and some not.
    const TABLE: &str = "SELECT \
        CASE WHEN value % 7 = 0 THEN NULL \
        ELSE CAST(CAST(value * 37 % 10000000 AS DECIMAL(15,0)) / 100 AS DECIMAL(15,2)) END AS price, \
        CAST(CAST(value % 11 AS DECIMAL(15,0)) / 100 AS DECIMAL(15,2)) AS rate, \
        CAST(value AS DECIMAL(20,0)) * CAST(CASE WHEN value > 3000 THEN 10000000 ELSE 1 END \
        AS DECIMAL(20,0)) AS wide, \
        CAST(value AS DECIMAL(38,0)) * CAST(1e30 AS DECIMAL(38,0)) AS huge \
        FROM generate_series(1, 5000)";

    async fn context(rule: bool) -> SessionContext {
        let config = SessionConfig::new()
            .with_target_partitions(2)
            .with_batch_size(500);
        let mut state = SessionStateBuilder::new()
            .with_config(config)
            .with_default_features();
        if rule {
            state = state.with_physical_optimizer_rule(Arc::new(NarrowDecimalProducts));
        }
        let ctx = SessionContext::new_with_state(state.build());
        let batches = ctx.sql(TABLE).await.unwrap().collect().await.unwrap();
        let table =
            datafusion::datasource::MemTable::try_new(batches[0].schema(), vec![batches]).unwrap();
        ctx.register_table("t", Arc::new(table)).unwrap();
        ctx
    }

    /// The answer, or the error, and how many products were wrapped.
    async fn run(ctx: &SessionContext, sql: &str) -> (String, usize) {
        let plan = ctx
            .sql(sql)
            .await
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap();
        let mut wrapped = 0;
        let mut nodes = vec![Arc::clone(&plan)];
        while let Some(node) = nodes.pop() {
            node.apply_expressions(&mut |e| {
                e.apply(|e| {
                    wrapped += usize::from(e.downcast_ref::<NarrowDecimalMul>().is_some());
                    Ok(TreeNodeRecursion::Continue)
                })
            })
            .unwrap();
            nodes.extend(node.children().into_iter().cloned());
        }
        let answer = match collect(plan, ctx.task_ctx()).await {
            Ok(batches) => pretty_format_batches(&batches).unwrap().to_string(),
            Err(e) => format!("error: {e}"),
        };
        (answer, wrapped)
    }

    #[tokio::test]
    async fn products_match_arrows_whether_or_not_the_operands_are_narrow() {
        let plain = context(false).await;
        let ctx = context(true).await;
        let cases = [
            // TPC-H Q1's shape: a product in a projection and one in an aggregate argument.
            (
                "SELECT sum(price * (1 - rate)), sum(price * (1 - rate) * (1 + rate)), \
              count(*) FROM t",
                (2, 0),
            ),
            // Narrow batches in i64, the wide ones (from row 3,000) by Arrow.
            (
                "SELECT wide * rate AS p, price * wide AS q FROM t ORDER BY wide",
                (2, 1),
            ),
            // A literal operand is not an array: Arrow's kernel.
            (
                "SELECT price * CAST(3 AS DECIMAL(5,0)) FROM t ORDER BY price LIMIT 5",
                (1, 2),
            ),
        ];
        for (sql, products) in cases {
            let (expected, _) = run(&plain, sql).await;
            let before = NARROW_BATCHES.load(Ordering::Relaxed);
            let (actual, wrapped) = run(&ctx, sql).await;
            let narrow = NARROW_BATCHES.load(Ordering::Relaxed) - before;
            // 10 batches, 2 products: every batch narrow in Q1's shape, the 6 up to row 3,000 beside
            // `wide`, none with a literal.
            let expect = [20, 12, 0][products.1];
            assert_eq!(narrow, expect, "{sql}");
            assert_eq!(actual, expected, "{sql}");
            assert!(wrapped >= products.0, "{sql}: {wrapped} wrapped");
            assert!(!actual.starts_with("error"), "{actual}");
        }
        // Overflow is still Arrow's error.
        let sql = "SELECT huge * huge FROM t";
        let (expected, _) = run(&plain, sql).await;
        let (actual, wrapped) = run(&ctx, sql).await;
        assert_eq!(wrapped, 1);
        assert!(
            expected.starts_with("error") && actual == expected,
            "{actual}"
        );
    }

    #[test]
    fn narrow_means_under_two_to_the_31_ignoring_null_slots() {
        let narrow = Decimal128Array::from(vec![Some(-(NARROW - 1)), None, Some(NARROW - 1)]);
        assert!(is_narrow(&narrow));
        assert!(!is_narrow(&Decimal128Array::from(vec![Some(NARROW)])));
        assert!(!is_narrow(&Decimal128Array::from(vec![Some(-NARROW)])));
        // A wide value hidden under a NULL does not count.
        let hidden =
            Decimal128Array::new(vec![1, i128::MAX].into(), Some(vec![true, false].into()));
        assert!(is_narrow(&hidden));
    }
}
