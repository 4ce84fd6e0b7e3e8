//! `at_timezone` and `with_timezone` (Trino `functions/datetime.md`); `x AT TIME ZONE zone` is
//! rewritten into `at_timezone(x, zone)` (see [`crate::syntax`]).
//!
//! `at_timezone` keeps the instant and changes the zone it is shown in; a timestamp without a
//! zone is read in the session zone, UTC, as in Athena. `with_timezone` keeps the wall-clock time
//! and gives it a zone. Arrow keeps one zone per column, so the zone must be a constant (Trino
//! also accepts a column there; Quarry refuses it with a plan error rather than pick a zone).

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, Int64Array, make_array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Int64Type, TimeUnit};
use datafusion::common::{DataFusionError, Result, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};

use super::datetime::{Times, epoch_of, parse_zone, utc_of};
use super::{is_null, is_string, row_wise, wrong_arguments};

pub(super) fn functions() -> Vec<ScalarUDF> {
    [("at_timezone", true), ("with_timezone", false)]
        .into_iter()
        .map(|(name, keep_instant)| {
            ScalarUDF::new_from_impl(ZoneChange {
                name,
                keep_instant,
                signature: Signature::user_defined(Volatility::Immutable),
            })
        })
        .collect()
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct ZoneChange {
    name: &'static str,
    /// `at_timezone`: the same instant in another zone; `with_timezone`: the same wall-clock
    /// time, in a zone.
    keep_instant: bool,
    signature: Signature,
}

impl ZoneChange {
    fn usage(&self) -> String {
        if self.keep_instant {
            format!(
                "{0}(timestamp, varchar) | {0}(timestamp with time zone, varchar)",
                self.name
            )
        } else {
            format!("{}(timestamp, varchar)", self.name)
        }
    }
}

impl ScalarUDFImpl for ZoneChange {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let timestamp = match arg_types {
            [DataType::Timestamp(_, None), z] if is_string(z) => arg_types[0].clone(),
            [DataType::Timestamp(_, Some(_)), z] if is_string(z) && self.keep_instant => {
                arg_types[0].clone()
            }
            [DataType::Date32 | DataType::Date64 | DataType::Null, z] if is_string(z) => {
                DataType::Timestamp(TimeUnit::Millisecond, None)
            }
            _ => return Err(wrong_arguments(&self.usage(), arg_types)),
        };
        // The zone keeps its type: a NULL cast to varchar would no longer be a constant.
        Ok(vec![timestamp, arg_types[1].clone()])
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types.first() {
            Some(DataType::Timestamp(unit, _)) => {
                Ok(DataType::Timestamp(*unit, Some("UTC".into())))
            }
            _ => Err(wrong_arguments(&self.usage(), arg_types)),
        }
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let Some(DataType::Timestamp(unit, _)) = args.arg_fields.first().map(|f| f.data_type())
        else {
            return plan_err!("{}: expected a timestamp", self.name);
        };
        let zone: Arc<str> = match args.scalar_arguments.get(1).copied().flatten() {
            // NULL: the result is NULL, in whatever zone.
            Some(z) if z.is_null() => "UTC".into(),
            Some(z) => match z.try_as_str().flatten() {
                Some(z) => {
                    parse_zone(z)?;
                    z.into()
                }
                None => return plan_err!("{}: the time zone must be a string", self.name),
            },
            None => {
                return plan_err!(
                    "{}: the time zone must be a constant such as 'America/New_York' or \
                     '+05:30' (Arrow keeps one zone per column)",
                    self.name
                );
            }
        };
        Ok(Arc::new(Field::new(
            self.name,
            DataType::Timestamp(*unit, Some(zone)),
            true,
        )))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let return_type = args.return_field.data_type().clone();
        let DataType::Timestamp(unit, Some(zone)) = &return_type else {
            return plan_err!("{}: expected a timestamp result", self.name);
        };
        let zone = parse_zone(zone)?;
        row_wise(&args.args, args.number_rows, |arrays, rows| {
            let raw = cast(&arrays[0], &DataType::Int64)?;
            let raw = raw.as_primitive::<Int64Type>();
            let zones = &arrays[1];
            let wall_clock = Times {
                utc: Vec::new(),
                zone: Some(zone),
                is_date: false,
            };
            let values = (0..rows)
                .map(|i| {
                    if raw.is_null(i) || is_null(zones.as_ref(), i) {
                        return Ok(None);
                    }
                    let v = raw.value(i);
                    if self.keep_instant {
                        return Ok(Some(v));
                    }
                    utc_of(v, unit)
                        .map(|local| wall_clock.to_utc(local))
                        .and_then(|utc| epoch_of(&utc, unit))
                        .map(Some)
                        .ok_or_else(|| {
                            DataFusionError::Execution(format!(
                                "{}: timestamp out of range",
                                self.name
                            ))
                        })
                })
                .collect::<Result<Int64Array>>()?;
            let data = values
                .into_data()
                .into_builder()
                .data_type(return_type.clone())
                .build()?;
            Ok(make_array(data))
        })
    }
}
