//! `try(expression)` (Trino `functions/conditional.md`, TRY): NULL in the rows where evaluating
//! `expression` raises one of the errors Trino's `try` handles, the error otherwise.
//!
//! DataFusion evaluates a function's arguments before calling it, so a `try` function alone
//! would only ever see the error. [`TryRule`], an analyzer rule that runs after type coercion,
//! therefore replaces each `try(e)` with a call of [`TryEval`] on the columns `e` reads;
//! `TryEval` carries `e` itself, evaluates it over the batch, and when that fails evaluates it row
//! by row, giving NULL for each row that fails. This is Trino's semantics for any scalar
//! expression: `coalesce(try(1 / 0), 5)` is 5 and `try(coalesce(1 / 0, 5))` is NULL.
//!
//! Handled, as in Trino: division by zero, invalid casts, invalid function arguments (the
//! execution errors functions raise on their input: `date_parse`, `from_hex`, JSON functions,
//! ..), numeric values out of range that DataFusion reports (decimal overflow, casts out of
//! range). Other errors (I/O, resources, internal ones) still raise. Limits:
//! - DataFusion's integer `+`, `-` and `*` wrap around on overflow instead of raising, inside
//!   `try` or not, so `try(9223372036854775807 + 1)` is not NULL as in Trino.
//! - `e` may not contain a subquery (a plan error says so); aggregates and window functions in
//!   `e` are computed before it, outside `try`, as DataFusion plans them below the projection.
//!
//! Inside a lambda (`transform(a, x -> try(10 / x))`) the lambda's parameters are passed to
//! `TryEval` like columns.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, RecordBatchOptions};
use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::arrow::error::ArrowError;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{
    Column, DFSchema, DFSchemaRef, DataFusionError, Result, ScalarValue, exec_err, plan_err,
};
use datafusion::execution::context::ExecutionProps;
use datafusion::logical_expr::expr::{LambdaVariable, ScalarFunction};
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ExprSchemable, LogicalPlan, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature, Volatility,
};
use datafusion::optimizer::AnalyzerRule;
use datafusion::optimizer::simplify_expressions::ExprSimplifier;
use datafusion::physical_expr::{PhysicalExpr, create_physical_expr};

use super::wrong_arguments;

pub(super) fn function() -> ScalarUDF {
    ScalarUDF::new_from_impl(Try {
        signature: Signature::any(1, Volatility::Immutable),
    })
}

/// `try(expression)` as the SQL planner resolves it; [`TryRule`] replaces every call.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Try {
    signature: Signature,
}

impl ScalarUDFImpl for Try {
    fn name(&self) -> &str {
        "try"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types {
            [t] => Ok(t.clone()),
            _ => Err(wrong_arguments("try(T)", arg_types)),
        }
    }

    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        exec_err!("try() was not rewritten: the session lacks Quarry's try analyzer rule")
    }
}

/// Replaces `try(e)` with `TryEval{e}(columns of e)`, keeping the names of the plan's
/// expressions.
#[derive(Debug, Default)]
pub struct TryRule;

impl AnalyzerRule for TryRule {
    fn name(&self) -> &str {
        "quarry_try"
    }

    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|plan| {
            let mut found = false;
            plan.apply_expressions(|e| {
                found |= e.exists(|e| Ok(is_try(e)))?;
                Ok(if found {
                    TreeNodeRecursion::Stop
                } else {
                    TreeNodeRecursion::Continue
                })
            })?;
            if !found {
                return Ok(Transformed::no(plan));
            }
            let inputs: Vec<DFSchemaRef> = plan
                .inputs()
                .iter()
                .map(|p| Arc::clone(p.schema()))
                .collect();
            let names = NamePreserver::new(&plan);
            let plan = plan.map_expressions(|expr| {
                let name = names.save(&expr);
                expr.transform_up(|e| rewrite(e, &inputs))?
                    .map_data(|e| Ok(name.restore(e)))
            })?;
            if plan.transformed {
                plan.map_data(LogicalPlan::recompute_schema)
            } else {
                Ok(plan)
            }
        })
        .map(|t| t.data)
    }
}

fn is_try(e: &Expr) -> bool {
    matches!(e, Expr::ScalarFunction(f) if f.func.inner().is::<Try>())
}

fn rewrite(e: Expr, inputs: &[DFSchemaRef]) -> Result<Transformed<Expr>> {
    if !is_try(&e) {
        return Ok(Transformed::no(e));
    }
    let Expr::ScalarFunction(ScalarFunction { args, .. }) = e else {
        return Ok(Transformed::no(e));
    };
    let Ok([inner]) = <[Expr; 1]>::try_from(args) else {
        return plan_err!("try takes one argument: try(expression)");
    };
    if inner.exists(|e| {
        Ok(matches!(
            e,
            Expr::ScalarSubquery(_)
                | Expr::Exists(_)
                | Expr::InSubquery(_)
                | Expr::SetComparison(_)
                | Expr::OuterReferenceColumn(..)
                | Expr::Placeholder(_)
        ))
    })? {
        return plan_err!(
            "try: subqueries and parameters inside try(..) are not supported; compute them \
             outside (in a CTE or join) and pass the column to try"
        );
    }
    let mut columns: Vec<Column> = inner.column_refs().into_iter().cloned().collect();
    columns.sort_by_key(|c| c.flat_name());
    let mut fields = Vec::with_capacity(columns.len());
    for c in &columns {
        let field = inputs
            .iter()
            .find_map(|s| s.qualified_field_from_column(c).ok())
            .ok_or_else(|| DataFusionError::Plan(format!("try: no column {c} in scope")))?;
        fields.push((field.0.cloned(), Arc::clone(field.1)));
    }
    let mut args: Vec<Expr> = columns.into_iter().map(Expr::Column).collect();
    // Inside a lambda, the lambda's parameters are arguments too, read as columns by `inner`;
    // the parameters of lambdas inside `inner` stay as they are.
    let mut bound: Vec<String> = Vec::new();
    let mut free: Vec<LambdaVariable> = Vec::new();
    inner.apply(|e| {
        match e {
            Expr::Lambda(l) => bound.extend(l.params.iter().cloned()),
            Expr::LambdaVariable(v) if !free.iter().any(|f| f.name == v.name) => {
                free.push(v.clone())
            }
            _ => {}
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    free.retain(|v| !bound.contains(&v.name));
    let parameter = |name: &str| format!("__quarry_lambda_{name}");
    for v in &free {
        let Some(field) = &v.field else {
            return plan_err!(
                "try: the type of the lambda parameter {} is not known here",
                v.name
            );
        };
        let name = parameter(&v.name);
        fields.push((None, Arc::new(field.as_ref().clone().with_name(name))));
        args.push(Expr::LambdaVariable(v.clone()));
    }
    let inner = if free.is_empty() {
        inner
    } else {
        inner
            .transform(|e| match e {
                Expr::LambdaVariable(v) if free.iter().any(|f| f.name == v.name) => Ok(
                    Transformed::yes(Expr::Column(Column::new_unqualified(parameter(&v.name)))),
                ),
                e => Ok(Transformed::no(e)),
            })?
            .data
    };
    let schema = Arc::new(DFSchema::new_with_metadata(fields, Default::default())?);
    let return_type = inner.get_type(&schema)?;
    let volatility = if inner.is_volatile() {
        Volatility::Volatile
    } else {
        Volatility::Immutable
    };
    let eval = TryEval {
        signature: if args.is_empty() {
            Signature::nullary(volatility)
        } else {
            Signature::any(args.len(), volatility)
        },
        expr: inner,
        schema,
        return_type,
        simplified: false,
    };
    Ok(Transformed::yes(Expr::ScalarFunction(
        ScalarFunction::new_udf(Arc::new(ScalarUDF::new_from_impl(eval)), args),
    )))
}

/// Evaluates `expr` over its columns (the arguments, in the order of `schema`), NULL in each row
/// where it raises an error `try` handles.
#[derive(Debug)]
struct TryEval {
    signature: Signature,
    expr: Expr,
    schema: DFSchemaRef,
    return_type: DataType,
    /// `expr` has been through the simplifier (so `now()` and the like can run).
    simplified: bool,
}

impl PartialEq for TryEval {
    fn eq(&self, other: &Self) -> bool {
        self.expr == other.expr && self.schema == other.schema
    }
}

impl Eq for TryEval {}

impl Hash for TryEval {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.expr.hash(state);
    }
}

impl ScalarUDFImpl for TryEval {
    fn name(&self) -> &str {
        "try"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(self.return_type.clone())
    }

    // The optimizer simplifies `expr` here, since it cannot see inside. A failure (a constant
    // that cannot be cast, say) leaves it as it is, to fail, and become NULL, when evaluated.
    fn simplify(&self, args: Vec<Expr>, info: &SimplifyContext) -> Result<ExprSimplifyResult> {
        if self.simplified {
            return Ok(ExprSimplifyResult::Original(args));
        }
        let context = SimplifyContext::builder()
            .with_schema(Arc::clone(&self.schema))
            .with_config_options(Arc::clone(info.config_options()))
            .with_query_execution_start_time(info.query_execution_start_time())
            .build();
        let expr = ExprSimplifier::new(context)
            .simplify(self.expr.clone())
            .unwrap_or_else(|_| self.expr.clone());
        let eval = TryEval {
            signature: self.signature.clone(),
            expr,
            schema: Arc::clone(&self.schema),
            return_type: self.return_type.clone(),
            simplified: true,
        };
        Ok(ExprSimplifyResult::Simplified(Expr::ScalarFunction(
            ScalarFunction::new_udf(Arc::new(ScalarUDF::new_from_impl(eval)), args),
        )))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let columns = args
            .args
            .iter()
            .map(|a| a.to_array(rows))
            .collect::<Result<Vec<ArrayRef>>>()?;
        let schema = Arc::new(Schema::new(self.schema.as_arrow().fields().clone()));
        let batch = RecordBatch::try_new_with_options(
            schema,
            columns,
            &RecordBatchOptions::new().with_row_count(Some(rows)),
        )?;
        let mut props = ExecutionProps::new();
        props.mark_start_execution(Arc::clone(&args.config_options));
        let expr = create_physical_expr(
            &self.expr,
            &self.schema,
            &props,
            &PhysicalPlanningContext::default(),
        )?;
        match evaluate(&expr, &batch) {
            Err(e) if handled(&e) => {}
            other => return other.map(ColumnarValue::Array),
        }
        let mut values = Vec::with_capacity(rows);
        for row in 0..rows {
            values.push(match evaluate(&expr, &batch.slice(row, 1)) {
                Ok(v) => ScalarValue::try_from_array(&v, 0)?,
                Err(e) if handled(&e) => ScalarValue::try_from(&self.return_type)?,
                Err(e) => return Err(e),
            });
        }
        Ok(ColumnarValue::Array(ScalarValue::iter_to_array(values)?))
    }
}

fn evaluate(expr: &Arc<dyn PhysicalExpr>, batch: &RecordBatch) -> Result<ArrayRef> {
    expr.evaluate(batch)?.into_array(batch.num_rows())
}

/// The errors Trino's `try` turns into NULL: division by zero, invalid casts and function
/// arguments, values out of range.
fn handled(e: &DataFusionError) -> bool {
    match e.find_root() {
        DataFusionError::Execution(_) => true,
        DataFusionError::ArrowError(e, _) => matches!(
            e.as_ref(),
            ArrowError::DivideByZero
                | ArrowError::CastError(_)
                | ArrowError::ParseError(_)
                | ArrowError::ComputeError(_)
                | ArrowError::InvalidArgumentError(_)
                | ArrowError::ArithmeticOverflow(_)
        ),
        _ => false,
    }
}
