//! `if` and `typeof` (Trino `functions/conditional.md`, `functions/conversion.md`).

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, StringArray, new_null_array};
use datafusion::arrow::compute::kernels::zip::zip;
use datafusion::arrow::datatypes::{DataType, IntervalUnit, TimeUnit};
use datafusion::common::cast::as_boolean_array;
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::expr::Case;
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::type_coercion::binary::type_union_resolution;
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use super::{Call, Udf, row_wise, wrong_arguments};

pub(super) fn functions() -> Vec<ScalarUDF> {
    vec![
        ScalarUDF::new_from_impl(If {
            signature: Signature::user_defined(Volatility::Immutable),
        }),
        Udf::new(
            "typeof",
            "typeof(any)",
            |t| (t.len() == 1).then(|| t.to_vec()),
            |_| Ok(DataType::Utf8),
            type_of,
        )
        .udf(),
    ]
}

/// `if(condition, true_value[, false_value])`: planned as `CASE`, so only the chosen branch is
/// evaluated (`if(x = 0, NULL, 1 / x)` does not divide by zero), as in Trino.
#[derive(Debug, PartialEq, Eq, Hash)]
struct If {
    signature: Signature,
}

impl ScalarUDFImpl for If {
    fn name(&self) -> &str {
        "if"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let usage = "if(boolean, T) | if(boolean, T, T)";
        let [cond, values @ ..] = arg_types else {
            return Err(wrong_arguments(usage, arg_types));
        };
        if !matches!(cond, DataType::Boolean | DataType::Null) || !matches!(values.len(), 1 | 2) {
            return Err(wrong_arguments(usage, arg_types));
        }
        let common =
            type_union_resolution(values).ok_or_else(|| wrong_arguments(usage, arg_types))?;
        let mut out = vec![DataType::Boolean];
        out.extend(values.iter().map(|_| common.clone()));
        Ok(out)
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok(arg_types.get(1).cloned().unwrap_or(DataType::Null))
    }

    fn simplify(&self, args: Vec<Expr>, _info: &SimplifyContext) -> Result<ExprSimplifyResult> {
        let mut args = args.into_iter();
        let (Some(cond), Some(then)) = (args.next(), args.next()) else {
            return exec_err!("if() needs a condition and a value");
        };
        let otherwise = args.next().map(Box::new);
        Ok(ExprSimplifyResult::Simplified(Expr::Case(Case::new(
            None,
            vec![(Box::new(cond), Box::new(then))],
            otherwise,
        ))))
    }

    // Only reached when the optimizer did not run; evaluates both branches.
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        row_wise(&args.args, args.number_rows, |arrays, rows| {
            let cond = as_boolean_array(&arrays[0])?;
            // NULL conditions pick the false branch, as CASE does.
            let mask = if cond.null_count() > 0 {
                datafusion::arrow::compute::prep_null_mask_filter(cond)
            } else {
                cond.clone()
            };
            let otherwise = match arrays.get(2) {
                Some(a) => Arc::clone(a),
                None => new_null_array(arrays[1].data_type(), rows),
            };
            Ok(zip(&mask, &arrays[1], &otherwise)?)
        })
    }
}

fn type_of(call: &Call) -> Result<ArrayRef> {
    let name = trino_type_name(call.args[0].data_type());
    Ok(Arc::new(StringArray::from(vec![name; call.rows])))
}

/// The Trino name of an Arrow type, as `typeof` prints it.
pub(crate) fn trino_type_name(t: &DataType) -> String {
    let precision = |u: &TimeUnit| match u {
        TimeUnit::Second => 0,
        TimeUnit::Millisecond => 3,
        TimeUnit::Microsecond => 6,
        TimeUnit::Nanosecond => 9,
    };
    match t {
        DataType::Null => "unknown".into(),
        DataType::Boolean => "boolean".into(),
        DataType::Int8 => "tinyint".into(),
        DataType::Int16 | DataType::UInt8 => "smallint".into(),
        DataType::Int32 | DataType::UInt16 => "integer".into(),
        DataType::Int64 | DataType::UInt32 => "bigint".into(),
        DataType::UInt64 => "decimal(20,0)".into(),
        DataType::Float16 | DataType::Float32 => "real".into(),
        DataType::Float64 => "double".into(),
        DataType::Decimal32(p, s)
        | DataType::Decimal64(p, s)
        | DataType::Decimal128(p, s)
        | DataType::Decimal256(p, s) => format!("decimal({p},{s})"),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "varchar".into(),
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => "varbinary".into(),
        DataType::Date32 | DataType::Date64 => "date".into(),
        DataType::Time32(u) | DataType::Time64(u) => format!("time({})", precision(u)),
        DataType::Timestamp(u, None) => format!("timestamp({})", precision(u)),
        DataType::Timestamp(u, Some(_)) => {
            format!("timestamp({}) with time zone", precision(u))
        }
        DataType::Interval(IntervalUnit::YearMonth) => "interval year to month".into(),
        DataType::Interval(_) | DataType::Duration(_) => "interval day to second".into(),
        DataType::List(f)
        | DataType::LargeList(f)
        | DataType::ListView(f)
        | DataType::LargeListView(f)
        | DataType::FixedSizeList(f, _) => format!("array({})", trino_type_name(f.data_type())),
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => format!(
                "map({}, {})",
                trino_type_name(kv[0].data_type()),
                trino_type_name(kv[1].data_type())
            ),
            other => format!("map({other})"),
        },
        DataType::Struct(fields) => {
            let fields: Vec<String> = fields
                .iter()
                .map(|f| format!("{} {}", f.name(), trino_type_name(f.data_type())))
                .collect();
            format!("row({})", fields.join(", "))
        }
        DataType::Dictionary(_, v) => trino_type_name(v),
        DataType::RunEndEncoded(_, v) => trino_type_name(v.data_type()),
        other => other.to_string().to_lowercase(),
    }
}
