//! Aggregate functions (Trino `functions/aggregate.md`): `count_if`, `max_by`, `min_by`,
//! `approx_percentile` (in `percentile`), `map_agg` and `histogram` (in `map_agg`), and
//! `arbitrary` as another name of DataFusion's `any_value`. `approx_distinct` is DataFusion's.

use std::cmp::Ordering;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, make_comparator};
use datafusion::arrow::compute::SortOptions;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{Result, ScalarValue, exec_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Signature, Volatility,
};

use super::wrong_arguments;

pub(super) fn functions() -> Vec<AggregateUDF> {
    vec![
        AggregateUDF::new_from_impl(CountIf {
            signature: Signature::user_defined(Volatility::Immutable),
        }),
        AggregateUDF::new_from_impl(By::new("max_by", Ordering::Greater)),
        AggregateUDF::new_from_impl(By::new("min_by", Ordering::Less)),
        AggregateUDF::new_from_impl(super::percentile::ApproxPercentile::new()),
        AggregateUDF::new_from_impl(super::map_agg::MapAgg::pairs()),
        AggregateUDF::new_from_impl(super::map_agg::MapAgg::histogram()),
        datafusion::functions_aggregate::any_value::any_value_udaf()
            .as_ref()
            .clone()
            .with_aliases(["arbitrary"]),
    ]
}

/// `count_if(boolean)`: the number of TRUE values (0 for no rows).
#[derive(Debug, PartialEq, Eq, Hash)]
struct CountIf {
    signature: Signature,
}

impl AggregateUDFImpl for CountIf {
    fn name(&self) -> &str {
        "count_if"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [DataType::Boolean | DataType::Null] => Ok(vec![DataType::Boolean]),
            _ => Err(wrong_arguments("count_if(boolean)", arg_types)),
        }
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }

    fn is_nullable(&self) -> bool {
        false
    }

    fn accumulator(&self, _args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(CountIfAccumulator(0)))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(
            format!("{}[count]", args.name),
            DataType::Int64,
            false,
        ))])
    }

    fn default_value(&self, _data_type: &DataType) -> Result<ScalarValue> {
        Ok(ScalarValue::Int64(Some(0)))
    }
}

#[derive(Debug)]
struct CountIfAccumulator(i64);

impl Accumulator for CountIfAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let Some(v) = values.first() else {
            return exec_err!("count_if: no argument");
        };
        let v = v.as_boolean();
        // TRUE and not NULL.
        let trues = match v.nulls() {
            Some(nulls) => (v.values() & nulls.inner()).count_set_bits(),
            None => v.values().count_set_bits(),
        };
        self.0 += trues as i64;
        Ok(())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Int64(Some(self.0)))
    }

    fn size(&self) -> usize {
        size_of_val(self)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![ScalarValue::Int64(Some(self.0))])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let Some(counts) = states.first() else {
            return exec_err!("count_if: no state");
        };
        let counts = counts.as_primitive::<datafusion::arrow::datatypes::Int64Type>();
        self.0 += counts.iter().flatten().sum::<i64>();
        Ok(())
    }
}

/// `max_by(x, y)` / `min_by(x, y)`: the `x` of the row with the largest / smallest `y`;
/// rows whose `y` is NULL are ignored.
#[derive(Debug, PartialEq, Eq, Hash)]
struct By {
    name: &'static str,
    wanted: Ordering,
    signature: Signature,
}

impl By {
    fn new(name: &'static str, wanted: Ordering) -> Self {
        Self {
            name,
            wanted,
            signature: Signature::any(2, Volatility::Immutable),
        }
    }
}

impl AggregateUDFImpl for By {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok(arg_types[0].clone())
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let [x, y] = args.expr_fields else {
            return exec_err!("{} takes two arguments", self.name);
        };
        Ok(Box::new(ByAccumulator {
            wanted: self.wanted,
            x: ScalarValue::try_from(x.data_type())?,
            y: ScalarValue::try_from(y.data_type())?,
        }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let [x, y] = args.input_fields else {
            return exec_err!("{} takes two arguments", self.name);
        };
        Ok(vec![
            Arc::new(Field::new(
                format!("{}[x]", args.name),
                x.data_type().clone(),
                true,
            )),
            Arc::new(Field::new(
                format!("{}[y]", args.name),
                y.data_type().clone(),
                true,
            )),
        ])
    }
}

#[derive(Debug)]
struct ByAccumulator {
    wanted: Ordering,
    x: ScalarValue,
    /// NULL until a row with a non-NULL `y` is seen.
    y: ScalarValue,
}

impl Accumulator for ByAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let [xs, ys] = values else {
            return exec_err!("max_by / min_by: expected two arguments");
        };
        let cmp = make_comparator(ys.as_ref(), ys.as_ref(), SortOptions::default())?;
        let mut best: Option<usize> = None;
        for i in 0..ys.len() {
            if super::is_null(ys.as_ref(), i) {
                continue;
            }
            if best.is_none_or(|b| cmp(i, b) == self.wanted) {
                best = Some(i);
            }
        }
        let Some(best) = best else { return Ok(()) };
        let y = ScalarValue::try_from_array(ys, best)?;
        let better = self.y.is_null() || y.partial_cmp(&self.y) == Some(self.wanted);
        if better {
            self.x = ScalarValue::try_from_array(xs, best)?;
            self.y = y;
        }
        Ok(())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(self.x.clone())
    }

    fn size(&self) -> usize {
        size_of_val(self) + self.x.size() + self.y.size()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![self.x.clone(), self.y.clone()])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.update_batch(states)
    }
}
