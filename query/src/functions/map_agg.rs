//! `map_agg(key, value)` and `histogram(x)` (Trino `functions/aggregate.md`, Map aggregate
//! functions).
//!
//! As in Trino: rows with a NULL key (for `histogram`, a NULL value) are skipped, NULL values
//! are kept, no rows give NULL; when a key repeats, `map_agg` keeps one of its values (Trino:
//! an arbitrary one; here the first seen by the partition that saw it first). Trino's maps
//! have no order; these list their keys in ascending order so results are repeatable.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, MapArray, StructArray};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields};
use datafusion::common::{Result, ScalarValue, exec_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{Accumulator, AggregateUDFImpl, Signature, Volatility};

use super::{is_null, wrong_arguments};

/// `map_agg` or `histogram`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct MapAgg {
    /// `histogram`: the value is the count of the key.
    histogram: bool,
    signature: Signature,
}

impl MapAgg {
    pub fn pairs() -> Self {
        Self {
            histogram: false,
            signature: Signature::any(2, Volatility::Immutable),
        }
    }

    pub fn histogram() -> Self {
        Self {
            histogram: true,
            signature: Signature::any(1, Volatility::Immutable),
        }
    }

    fn value_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match (self.histogram, arg_types) {
            (true, [_]) => Ok(DataType::Int64),
            (false, [_, v]) => Ok(v.clone()),
            _ => Err(wrong_arguments(
                if self.histogram {
                    "histogram(T)"
                } else {
                    "map_agg(K, V)"
                },
                arg_types,
            )),
        }
    }
}

/// Arrow's map of `key` to `value`, as DataFusion's `map` builds it.
fn map_type(key: &DataType, value: &DataType) -> DataType {
    DataType::Map(
        Arc::new(Field::new(
            "entries",
            DataType::Struct(entry_fields(key, value)),
            false,
        )),
        false,
    )
}

fn entry_fields(key: &DataType, value: &DataType) -> Fields {
    Fields::from(vec![
        Field::new("key", key.clone(), false),
        Field::new("value", value.clone(), true),
    ])
}

impl AggregateUDFImpl for MapAgg {
    fn name(&self) -> &str {
        if self.histogram {
            "histogram"
        } else {
            "map_agg"
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        let key = arg_types.first().cloned().unwrap_or(DataType::Null);
        Ok(map_type(&key, &self.value_type(arg_types)?))
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let types: Vec<DataType> = args
            .expr_fields
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        Ok(Box::new(MapAccumulator {
            histogram: self.histogram,
            key_type: types.first().cloned().unwrap_or(DataType::Null),
            value_type: self.value_type(&types)?,
            index: HashMap::new(),
            entries: Vec::new(),
        }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let types: Vec<DataType> = args
            .input_fields
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        let key = types.first().cloned().unwrap_or(DataType::Null);
        let value = self.value_type(&types)?;
        Ok(vec![
            Arc::new(Field::new(
                format!("{}[keys]", args.name),
                DataType::new_list(key, true),
                true,
            )),
            Arc::new(Field::new(
                format!("{}[values]", args.name),
                DataType::new_list(value, true),
                true,
            )),
        ])
    }
}

#[derive(Debug)]
struct MapAccumulator {
    histogram: bool,
    key_type: DataType,
    value_type: DataType,
    /// Key to position in `entries`.
    index: HashMap<ScalarValue, usize>,
    entries: Vec<(ScalarValue, ScalarValue)>,
}

impl MapAccumulator {
    /// Adds one key's value (for `histogram`, a count to add).
    fn add(&mut self, key: ScalarValue, value: ScalarValue) -> Result<()> {
        match self.index.get(&key) {
            Some(&i) if self.histogram => {
                let (ScalarValue::Int64(Some(n)), ScalarValue::Int64(Some(m))) =
                    (&self.entries[i].1, &value)
                else {
                    return exec_err!("histogram: expected counts");
                };
                self.entries[i].1 = ScalarValue::Int64(Some(n + m));
            }
            Some(_) => {}
            None => {
                self.index.insert(key.clone(), self.entries.len());
                self.entries.push((key, value));
            }
        }
        Ok(())
    }

    fn add_rows(&mut self, keys: &ArrayRef, values: Option<&ArrayRef>) -> Result<()> {
        for row in 0..keys.len() {
            if is_null(keys.as_ref(), row) {
                continue;
            }
            let key = ScalarValue::try_from_array(keys, row)?;
            let value = match values {
                Some(v) => ScalarValue::try_from_array(v, row)?,
                None => ScalarValue::Int64(Some(1)),
            };
            self.add(key, value)?;
        }
        Ok(())
    }

    fn sorted(&self) -> Vec<(ScalarValue, ScalarValue)> {
        let mut entries = self.entries.clone();
        entries.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
        entries
    }
}

impl Accumulator for MapAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        match values {
            [x] if self.histogram => self.add_rows(x, None),
            [k, v] if !self.histogram => self.add_rows(k, Some(v)),
            _ => exec_err!("map_agg / histogram: unexpected arguments"),
        }
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let map = map_type(&self.key_type, &self.value_type);
        if self.entries.is_empty() {
            return ScalarValue::try_from(&map);
        }
        let (keys, values): (Vec<_>, Vec<_>) = self.sorted().into_iter().unzip();
        let keys = ScalarValue::iter_to_array(keys)?;
        let values = if values.iter().all(ScalarValue::is_null) {
            datafusion::arrow::array::new_null_array(&self.value_type, values.len())
        } else {
            ScalarValue::iter_to_array(values)?
        };
        let entries = StructArray::try_new(
            entry_fields(&self.key_type, &self.value_type),
            vec![keys, values],
            None,
        )?;
        let DataType::Map(field, sorted) = map else {
            return exec_err!("map_agg: expected a map type");
        };
        let array = MapArray::try_new(
            field,
            OffsetBuffer::from_lengths([entries.len()]),
            entries,
            None,
            sorted,
        )?;
        Ok(ScalarValue::Map(Arc::new(array)))
    }

    fn size(&self) -> usize {
        size_of_val(self)
            + self
                .entries
                .iter()
                .map(|(k, v)| 2 * k.size() + v.size())
                .sum::<usize>()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let (keys, values): (Vec<_>, Vec<_>) = self.entries.iter().cloned().unzip();
        Ok(vec![
            ScalarValue::List(ScalarValue::new_list_nullable(&keys, &self.key_type)),
            ScalarValue::List(ScalarValue::new_list_nullable(&values, &self.value_type)),
        ])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let [keys, values] = states else {
            return exec_err!("map_agg / histogram: expected two state columns");
        };
        let (keys, values) = (keys.as_list::<i32>(), values.as_list::<i32>());
        for row in 0..keys.len() {
            if keys.is_null(row) {
                continue;
            }
            let (k, v) = (keys.value(row), values.value(row));
            for i in 0..k.len() {
                self.add(
                    ScalarValue::try_from_array(&k, i)?,
                    ScalarValue::try_from_array(&v, i)?,
                )?;
            }
        }
        Ok(())
    }
}
