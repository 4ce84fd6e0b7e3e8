//! `EXTRACT(field FROM x)` as Trino plans it: the field functions (`day_of_week` is ISO,
//! Monday = 1; every field a BIGINT). DataFusion's own planner turns EXTRACT into its
//! `date_part`, whose `dow` counts from Sunday = 0, so this planner goes first.

use std::sync::Arc;

use datafusion::common::{Result, ScalarValue};
use datafusion::execution::SessionStateBuilder;
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::planner::{ExprPlanner, PlannerResult};
use datafusion::logical_expr::{Expr, ScalarUDF};

#[derive(Debug)]
struct TrinoExtract {
    fields: Vec<ScalarUDF>,
}

/// Trino's EXTRACT field names and the function each means.
fn function_for(field: &str) -> Option<&'static str> {
    Some(match field.to_ascii_lowercase().as_str() {
        "year" => "year",
        "quarter" => "quarter",
        "month" => "month",
        "week" => "week",
        "day" | "day_of_month" => "day",
        "day_of_week" | "dow" => "day_of_week",
        "day_of_year" | "doy" => "day_of_year",
        "year_of_week" | "yow" => "year_of_week",
        "hour" => "hour",
        "minute" => "minute",
        "second" => "second",
        _ => return None,
    })
}

impl ExprPlanner for TrinoExtract {
    fn plan_extract(&self, args: Vec<Expr>) -> Result<PlannerResult<Vec<Expr>>> {
        let field = match args.first() {
            Some(Expr::Literal(ScalarValue::Utf8(Some(f)), _)) => f.clone(),
            _ => return Ok(PlannerResult::Original(args)),
        };
        let Some(name) = function_for(&field) else {
            return Ok(PlannerResult::Original(args));
        };
        let Some(udf) = self.fields.iter().find(|u| u.name() == name) else {
            return Ok(PlannerResult::Original(args));
        };
        let mut args = args;
        let value = args.remove(1);
        Ok(PlannerResult::Planned(Expr::ScalarFunction(
            ScalarFunction::new_udf(Arc::new(udf.clone()), vec![value]),
        )))
    }
}

/// Plan Trino's EXTRACT before DataFusion's (`builder` has DataFusion's default features).
pub fn add_trino_extract(builder: &mut SessionStateBuilder) {
    builder.expr_planners().get_or_insert_default().insert(
        0,
        Arc::new(TrinoExtract {
            fields: super::datetime::functions(),
        }),
    );
}
