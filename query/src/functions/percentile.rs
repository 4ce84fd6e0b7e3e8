//! `approx_percentile(x, percentage)` and `approx_percentile(x, ARRAY[percentage, ..])` (Trino
//! `functions/aggregate.md`, Approximate aggregate functions), over DataFusion's t-digest.
//!
//! As in Trino: the result has the type of `x` (`bigint` rounded from the digest's estimate,
//! `real`, `double`; smaller integers are read as `bigint`, decimals as `double`), NULL values
//! are skipped, no rows give NULL, the percentages must be constants between 0 and 1. The
//! t-digest is DataFusion's, not Airlift's, so on large inputs the approximations differ from
//! Athena's within the digests' error. The weighted forms `approx_percentile(x, w, ..)` weigh
//! each value by `w` (finite and at least 1, else Trino's error); rows with a NULL value or
//! weight are skipped. Trino also accepts a percentage that varies by row (it uses the last
//! one); Quarry requires a constant.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::compute::kernels::boolean::and;
use datafusion::arrow::compute::{cast, filter, is_not_null, sort};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Float64Type};
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::functions_aggregate::approx_percentile_cont::ApproxPercentileCont;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{Accumulator, AggregateUDFImpl, Signature, Volatility};
use datafusion::physical_expr::expressions::Literal;
use datafusion_functions_aggregate_common::tdigest::{Centroid, TDigest};

use super::{is_numeric, wrong_arguments};

const USAGE: &str = "approx_percentile(bigint | double | real, double) | \
                     approx_percentile(bigint | double | real, array(double)) | \
                     approx_percentile(bigint | double | real, double, double) | \
                     approx_percentile(bigint | double | real, double, array(double))";

/// Trino's default compression of the digest.
const DIGEST_SIZE: usize = 100;

#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct ApproxPercentile {
    signature: Signature,
    /// Borrowed for its state layout (the digest's).
    datafusion: ApproxPercentileCont,
}

impl ApproxPercentile {
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
            datafusion: ApproxPercentileCont::new(),
        }
    }
}

/// The type `x` is read as.
fn value_type(t: &DataType) -> Option<DataType> {
    match t {
        DataType::Float32 => Some(DataType::Float32),
        DataType::Float64 | DataType::Float16 => Some(DataType::Float64),
        t if t.is_integer() || t.is_null() => Some(DataType::Int64),
        t if t.is_numeric() => Some(DataType::Float64),
        _ => None,
    }
}

impl AggregateUDFImpl for ApproxPercentile {
    fn name(&self) -> &str {
        "approx_percentile"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let (x, weight, p) = match arg_types {
            [x, p] => (x, None, p),
            [x, w, p] if is_numeric(w) => (x, Some(DataType::Float64), p),
            _ => return Err(wrong_arguments(USAGE, arg_types)),
        };
        let p = match p {
            p if is_numeric(p) => Some(DataType::Float64),
            DataType::List(p) if is_numeric(p.data_type()) => Some(DataType::List(Arc::new(
                Field::new_list_field(DataType::Float64, true),
            ))),
            _ => None,
        };
        let coerced = match (value_type(x), p) {
            (Some(x), Some(p)) => Some([Some(x), weight, Some(p)].into_iter().flatten().collect()),
            _ => None,
        };
        coerced.ok_or_else(|| wrong_arguments(USAGE, arg_types))
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types {
            [x, DataType::List(_)] | [x, _, DataType::List(_)] => {
                Ok(DataType::new_list(x.clone(), true))
            }
            [x, _] | [x, _, _] => Ok(x.clone()),
            _ => Err(wrong_arguments(USAGE, arg_types)),
        }
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let (percentages, weighted) = match args.exprs {
            [_, p] => (p, false),
            [_, _, p] => (p, true),
            _ => return exec_err!("approx_percentile takes two or three arguments"),
        };
        let Some(literal) = percentages.downcast_ref::<Literal>() else {
            return plan_err!(
                "approx_percentile: the percentage must be a constant, such as 0.5 or \
                 ARRAY[0.25, 0.75]"
            );
        };
        let percentages = match literal.value() {
            ScalarValue::List(list) => {
                if list.is_null(0) {
                    None
                } else {
                    let values = list.value(0);
                    let values = values.as_primitive::<Float64Type>();
                    if values.null_count() > 0 {
                        return exec_err!("All percentiles should be non-null values");
                    }
                    Some(values.values().to_vec())
                }
            }
            p => match p.cast_to(&DataType::Float64)? {
                ScalarValue::Float64(p) => p.map(|p| vec![p]),
                _ => None,
            },
        };
        Ok(Box::new(PercentileAccumulator {
            weighted,
            percentages,
            return_type: args.return_field.data_type().clone(),
            digest: TDigest::new(DIGEST_SIZE),
        }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        self.datafusion.state_fields(args)
    }
}

#[derive(Debug)]
struct PercentileAccumulator {
    /// `approx_percentile(x, w, p)`.
    weighted: bool,
    /// `None` when the percentage is NULL (the result is NULL, as Trino skips such rows).
    percentages: Option<Vec<f64>>,
    return_type: DataType,
    digest: TDigest,
}

impl Accumulator for PercentileAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let Some(x) = values.first() else {
            return exec_err!("approx_percentile: no argument");
        };
        if self.weighted {
            let Some(w) = values.get(1) else {
                return exec_err!("approx_percentile: no weight");
            };
            let keep = and(&is_not_null(x)?, &is_not_null(w)?)?;
            let x = cast(&filter(x, &keep)?, &DataType::Float64)?;
            let w = cast(&filter(w, &keep)?, &DataType::Float64)?;
            let mut digests = vec![self.digest.clone()];
            for (x, w) in x
                .as_primitive::<Float64Type>()
                .values()
                .iter()
                .zip(w.as_primitive::<Float64Type>().values())
            {
                if !w.is_finite() {
                    return exec_err!(
                        "weight must be finite, was {}",
                        super::cast::java_double(*w)
                    );
                }
                if *w < 1.0 {
                    return exec_err!("weight must be >= 1, was {}", super::cast::java_double(*w));
                }
                digests.push(TDigest::new_with_centroid(
                    DIGEST_SIZE,
                    Centroid::new(*x, *w),
                ));
            }
            self.digest = TDigest::merge_digests(&digests);
            return Ok(());
        }
        let x = filter(x, &is_not_null(x)?)?;
        let x = sort(&cast(&x, &DataType::Float64)?, None)?;
        self.digest = self
            .digest
            .merge_sorted_f64(x.as_primitive::<Float64Type>().values());
        Ok(())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let Some(percentages) = &self.percentages else {
            return ScalarValue::try_from(&self.return_type);
        };
        if self.digest.count() == 0.0 {
            return ScalarValue::try_from(&self.return_type);
        }
        let (element, is_array) = match &self.return_type {
            DataType::List(f) => (f.data_type().clone(), true),
            t => (t.clone(), false),
        };
        let values = percentages
            .iter()
            .map(|&p| {
                if !(0.0..=1.0).contains(&p) {
                    return exec_err!("Percentile must be between 0 and 1");
                }
                let q = self.digest.estimate_quantile(p);
                Ok(match element {
                    DataType::Int64 => ScalarValue::Int64(Some(q.round() as i64)),
                    DataType::Float32 => ScalarValue::Float32(Some(q as f32)),
                    _ => ScalarValue::Float64(Some(q)),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        if is_array {
            Ok(ScalarValue::List(ScalarValue::new_list_nullable(
                &values, &element,
            )))
        } else {
            values
                .into_iter()
                .next()
                .map_or_else(|| ScalarValue::try_from(&element), Ok)
        }
    }

    fn size(&self) -> usize {
        size_of_val(self) + self.digest.size() - size_of_val(&self.digest)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(self.digest.to_scalar_state())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let Some(first) = states.first() else {
            return Ok(());
        };
        let mut digests = vec![self.digest.clone()];
        for row in 0..first.len() {
            let state = states
                .iter()
                .map(|a| ScalarValue::try_from_array(a, row))
                .collect::<Result<Vec<_>>>()?;
            digests.push(TDigest::from_scalar_state(&state));
        }
        self.digest = TDigest::merge_digests(&digests);
        Ok(())
    }
}
