//! `reduce(array, initialState, (s, x) -> .., s -> ..)` (Trino `functions/array.md`), a
//! DataFusion higher-order function.
//!
//! The input function runs once per element, in order, for all rows at once: step `k` evaluates
//! it on the rows whose array has a `k`-th element, with their states so far; then the output
//! function runs on the final states. As in Trino: a NULL array gives NULL, an empty array gives
//! the output function of the initial state, NULL elements and states are passed to the
//! lambdas as they are. The input function must return the state's type (the type of the
//! initial state; cast it to widen it, as in Trino's `BIGINT '0'` example).

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, UInt32Array, new_null_array};
use datafusion::arrow::compute::{interleave, take};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{Result, exec_err, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, HigherOrderFunctionArgs, HigherOrderReturnFieldArgs, HigherOrderSignature,
    HigherOrderUDF, HigherOrderUDFImpl, LambdaParametersProgress, ValueOrLambda, Volatility,
};

const USAGE: &str = "reduce(array(T), S, function(S, T, S), function(S, R))";

pub(super) fn function() -> HigherOrderUDF {
    HigherOrderUDF::new_from_impl(Reduce {
        signature: HigherOrderSignature::exact(
            vec![
                ValueOrLambda::Value(()),
                ValueOrLambda::Value(()),
                ValueOrLambda::Lambda(()),
                ValueOrLambda::Lambda(()),
            ],
            Volatility::Immutable,
        ),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Reduce {
    signature: HigherOrderSignature,
}

impl HigherOrderUDFImpl for Reduce {
    fn name(&self) -> &str {
        "reduce"
    }

    fn signature(&self) -> &HigherOrderSignature {
        &self.signature
    }

    fn coerce_value_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [DataType::List(_), s] => Ok(vec![arg_types[0].clone(), s.clone()]),
            [
                DataType::LargeList(f) | DataType::FixedSizeList(f, _) | DataType::ListView(f),
                s,
            ] => Ok(vec![DataType::List(Arc::clone(f)), s.clone()]),
            [DataType::Null, s] => Ok(vec![DataType::new_list(DataType::Null, true), s.clone()]),
            _ => plan_err!(
                "reduce: expected an array and an initial state, got {arg_types:?}; usage: {USAGE}"
            ),
        }
    }

    fn lambda_parameters(
        &self,
        _step: usize,
        fields: &[ValueOrLambda<FieldRef, Option<FieldRef>>],
    ) -> Result<LambdaParametersProgress> {
        let [
            ValueOrLambda::Value(list),
            ValueOrLambda::Value(state),
            ValueOrLambda::Lambda(_),
            ValueOrLambda::Lambda(_),
        ] = fields
        else {
            return plan_err!("reduce takes an array, a state and two lambdas: {USAGE}");
        };
        let DataType::List(element) = list.data_type() else {
            return plan_err!("reduce: expected an array, got {}", list.data_type());
        };
        let state = Arc::new(Field::new("s", state.data_type().clone(), true));
        let element = Arc::new(Field::new("x", element.data_type().clone(), true));
        Ok(LambdaParametersProgress::Complete(vec![
            vec![Arc::clone(&state), element],
            vec![state],
        ]))
    }

    fn return_field_from_args(&self, args: HigherOrderReturnFieldArgs) -> Result<FieldRef> {
        let [
            _,
            ValueOrLambda::Value(state),
            ValueOrLambda::Lambda(input),
            ValueOrLambda::Lambda(output),
        ] = args.arg_fields
        else {
            return plan_err!("reduce takes an array, a state and two lambdas: {USAGE}");
        };
        if input.data_type() != state.data_type() && !input.data_type().is_null() {
            return plan_err!(
                "reduce: the input function returns {}, not the state's type {}; cast the \
                 initial state to the type the function returns",
                input.data_type(),
                state.data_type()
            );
        }
        Ok(Arc::new(Field::new(
            "reduce",
            output.data_type().clone(),
            true,
        )))
    }

    fn invoke_with_args(&self, args: HigherOrderFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let [
            ValueOrLambda::Value(list),
            ValueOrLambda::Value(initial),
            ValueOrLambda::Lambda(input),
            ValueOrLambda::Lambda(output),
        ] = args.args.as_slice()
        else {
            return exec_err!("reduce takes an array, a state and two lambdas: {USAGE}");
        };
        let list = list.to_array(rows)?;
        let Some(list) = list.as_list_opt::<i32>() else {
            return exec_err!("reduce: expected an array, got {}", list.data_type());
        };
        let mut state = initial.to_array(rows)?;
        let offsets = list.value_offsets();
        let length = |r: usize| (offsets[r + 1] - offsets[r]) as usize;
        let longest = (0..rows)
            .filter(|&r| list.is_valid(r))
            .map(length)
            .max()
            .unwrap_or(0);
        for k in 0..longest {
            // The rows that have a k-th element, and where it is in the values.
            let active: Vec<u32> = (0..rows)
                .filter(|&r| list.is_valid(r) && length(r) > k)
                .map(|r| r as u32)
                .collect();
            let positions: Vec<u32> = active
                .iter()
                .map(|&r| offsets[r as usize] as u32 + k as u32)
                .collect();
            let active = UInt32Array::from(active);
            let states = take(&state, &active, None)?;
            let elements = take(list.values(), &UInt32Array::from(positions), None)?;
            let next = input
                .evaluate(
                    &[&|| Ok(Arc::clone(&states)), &|| Ok(Arc::clone(&elements))],
                    |c| {
                        c.iter()
                            .map(|c| Ok(take(c, &active, None)?))
                            .collect::<Result<Vec<_>>>()
                    },
                )?
                .into_array(active.len())?;
            let next = if next.data_type() == state.data_type() {
                next
            } else if next.data_type().is_null() {
                new_null_array(state.data_type(), next.len())
            } else {
                return exec_err!(
                    "reduce: the input function returned {}, not the state's type {}",
                    next.data_type(),
                    state.data_type()
                );
            };
            // Each active row takes its new state, the others keep theirs.
            let mut picks: Vec<(usize, usize)> = (0..rows).map(|r| (0, r)).collect();
            for (j, &r) in active.values().iter().enumerate() {
                picks[r as usize] = (1, j);
            }
            state = interleave(&[state.as_ref(), next.as_ref()], &picks)?;
        }
        let result = output
            .evaluate(&[&|| Ok(Arc::clone(&state))], |c| Ok(c.to_vec()))?
            .into_array(rows)?;
        // A NULL array gives NULL.
        match list.logical_nulls() {
            Some(nulls) if nulls.null_count() > 0 => {
                let null = new_null_array(result.data_type(), 1);
                let picks: Vec<(usize, usize)> = (0..rows)
                    .map(|r| if nulls.is_valid(r) { (0, r) } else { (1, 0) })
                    .collect();
                Ok(ColumnarValue::Array(interleave(
                    &[result.as_ref(), null.as_ref()],
                    &picks,
                )?))
            }
            _ => Ok(ColumnarValue::Array(result)),
        }
    }
}
