//! Trino's casts to and from `ROW(..)`, `ARRAY(..)`, `MAP(..)` and `JSON` (Trino
//! `language/types.md`, `functions/json.md` Cast to JSON / Cast from JSON).
//!
//! sqlparser cannot parse Trino's spelling of these types (`ARRAY(INTEGER)`,
//! `ROW(a DECIMAL(10, 2))`), so [`crate::syntax::rewrite_casts`] turns
//! `CAST(x AS <such a type>)` into `__quarry_cast(x, '<the type as written>')` (and `TRY_CAST`
//! into `__quarry_try_cast`) before parsing; this module parses the type and casts as Trino
//! does:
//! - a row to a row by position (DataFusion matches struct fields by name), arrays and maps
//!   element by element;
//! - text (Trino's `json` is text here) to an array, map or row by reading it as JSON: a JSON
//!   array or object (by field name, case-insensitively) for a row, JSON `null` as NULL;
//! - anything to `JSON`: numbers and booleans as JSON, text as a JSON string, arrays, maps (keys
//!   in ascending order) and rows (objects with the field names) as JSON, SQL NULL as NULL at the
//!   top and `null` inside.
//!
//! Since `json` and `varchar` are the same type here, a `json` value cast to `JSON` is quoted
//! like text (Trino keeps it), and `CAST(json AS VARCHAR)` is DataFusion's (it does not unquote
//! a JSON string nor reject an array, as Trino does).

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, ListArray, MapArray, StringArray, StructArray, new_null_array,
};
use datafusion::arrow::compute::{CastOptions, cast_with_options};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields, TimeUnit};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::common::scalar::ScalarStructBuilder;
use datafusion::common::{DataFusionError, Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};
use serde_json::Value as Json;

use super::{is_string, row_wise};

pub(super) fn functions() -> Vec<ScalarUDF> {
    [false, true]
        .into_iter()
        .map(|lenient| {
            ScalarUDF::new_from_impl(TrinoCast {
                lenient,
                signature: Signature::any(2, Volatility::Immutable),
            })
        })
        .collect()
}

/// The name `CAST(x AS t)` is rewritten to.
pub const CAST: &str = "__quarry_cast";
/// The name `TRY_CAST(x AS t)` is rewritten to.
pub const TRY_CAST: &str = "__quarry_try_cast";

/// A Trino type, as far as the cast needs it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TrinoType {
    Scalar(DataType, String),
    Json,
    Array(Box<TrinoType>),
    Map(Box<TrinoType>, Box<TrinoType>),
    Row(Vec<(String, TrinoType)>),
}

impl TrinoType {
    fn arrow(&self) -> DataType {
        match self {
            TrinoType::Scalar(t, _) => t.clone(),
            TrinoType::Json => DataType::Utf8,
            TrinoType::Array(e) => DataType::new_list(e.arrow(), true),
            TrinoType::Map(k, v) => map_type(&k.arrow(), &v.arrow()),
            TrinoType::Row(fields) => DataType::Struct(row_fields(fields)),
        }
    }

    fn name(&self) -> String {
        match self {
            TrinoType::Scalar(_, name) => name.clone(),
            TrinoType::Json => "json".into(),
            TrinoType::Array(e) => format!("array({})", e.name()),
            TrinoType::Map(k, v) => format!("map({}, {})", k.name(), v.name()),
            TrinoType::Row(fields) => {
                let f: Vec<String> = fields
                    .iter()
                    .map(|(n, t)| format!("{n} {}", t.name()))
                    .collect();
                format!("row({})", f.join(", "))
            }
        }
    }
}

fn row_fields(fields: &[(String, TrinoType)]) -> Fields {
    fields
        .iter()
        .map(|(n, t)| Field::new(n, t.arrow(), true))
        .collect()
}

fn map_type(key: &DataType, value: &DataType) -> DataType {
    DataType::Map(
        Arc::new(Field::new(
            "entries",
            DataType::Struct(Fields::from(vec![
                Field::new("key", key.clone(), false),
                Field::new("value", value.clone(), true),
            ])),
            false,
        )),
        false,
    )
}

/// Parses a Trino type (`row(a bigint, b array(varchar))`, `decimal(10, 2)`, `json`, ..).
pub(crate) fn parse_type(text: &str) -> Result<TrinoType> {
    let tokens = type_tokens(text);
    let mut p = TypeParser { tokens, at: 0 };
    let t = p
        .parse()
        .map_err(|e| DataFusionError::Plan(format!("Unknown type '{text}': {e}")))?;
    if p.at != p.tokens.len() {
        return plan_err!("Unknown type '{text}': unexpected '{}'", p.tokens[p.at]);
    }
    Ok(t)
}

fn type_tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '"' {
            // A quoted field name.
            let mut name = String::from("\"");
            for c in chars.by_ref() {
                if c == '"' {
                    break;
                }
                name.push(c);
            }
            out.push(name);
        } else if c.is_alphanumeric() || c == '_' {
            word.push(c);
            if !chars
                .peek()
                .is_some_and(|n| n.is_alphanumeric() || *n == '_')
            {
                out.push(std::mem::take(&mut word));
            }
        } else if !c.is_whitespace() {
            out.push(c.to_string());
        }
    }
    out
}

struct TypeParser {
    tokens: Vec<String>,
    at: usize,
}

impl TypeParser {
    fn peek(&self) -> Option<String> {
        self.tokens.get(self.at).map(|t| t.to_ascii_lowercase())
    }

    fn next(&mut self) -> std::result::Result<String, String> {
        let t = self.peek().ok_or("unexpected end")?;
        self.at += 1;
        Ok(t)
    }

    fn expect(&mut self, s: &str) -> std::result::Result<(), String> {
        match self.next()? {
            t if t == s => Ok(()),
            t => Err(format!("expected '{s}', found '{t}'")),
        }
    }

    fn eat(&mut self, s: &str) -> bool {
        let yes = self.peek().as_deref() == Some(s);
        if yes {
            self.at += 1;
        }
        yes
    }

    /// `(n)` or `(n, m)` after a type name.
    fn numbers(&mut self) -> std::result::Result<Vec<u32>, String> {
        let mut out = Vec::new();
        if self.eat("(") {
            loop {
                let n = self.next()?;
                out.push(
                    n.parse()
                        .map_err(|_| format!("expected a number, found '{n}'"))?,
                );
                if self.eat(")") {
                    break;
                }
                self.expect(",")?;
            }
        }
        Ok(out)
    }

    fn parse(&mut self) -> std::result::Result<TrinoType, String> {
        let word = self.next()?;
        let scalar = |t: DataType, name: &str| Ok(TrinoType::Scalar(t, name.to_string()));
        match word.as_str() {
            "array" => {
                self.expect("(")?;
                let e = self.parse()?;
                self.expect(")")?;
                Ok(TrinoType::Array(Box::new(e)))
            }
            "map" => {
                self.expect("(")?;
                let k = self.parse()?;
                self.expect(",")?;
                let v = self.parse()?;
                self.expect(")")?;
                Ok(TrinoType::Map(Box::new(k), Box::new(v)))
            }
            "row" => {
                self.expect("(")?;
                let mut fields = Vec::new();
                loop {
                    // `name type` or an anonymous `type`: a name is followed by a type word.
                    let named = self
                        .tokens
                        .get(self.at + 1)
                        .is_some_and(|t| t.chars().next().is_some_and(|c| c.is_alphabetic()))
                        && !matches!(
                            self.peek().as_deref(),
                            Some("double" | "timestamp" | "time")
                        );
                    let name = if named {
                        let n = self.tokens[self.at].trim_start_matches('"').to_string();
                        self.at += 1;
                        n
                    } else {
                        format!("c{}", fields.len())
                    };
                    fields.push((name, self.parse()?));
                    if self.eat(")") {
                        break;
                    }
                    self.expect(",")?;
                }
                Ok(TrinoType::Row(fields))
            }
            "json" => Ok(TrinoType::Json),
            "boolean" => scalar(DataType::Boolean, "boolean"),
            "tinyint" => scalar(DataType::Int8, "tinyint"),
            "smallint" => scalar(DataType::Int16, "smallint"),
            "integer" | "int" => scalar(DataType::Int32, "integer"),
            "bigint" => scalar(DataType::Int64, "bigint"),
            "real" | "float" => scalar(DataType::Float32, "real"),
            "double" => {
                self.eat("precision");
                scalar(DataType::Float64, "double")
            }
            "decimal" | "numeric" => {
                let n = self.numbers()?;
                let (p, s) = (
                    n.first().copied().unwrap_or(38),
                    n.get(1).copied().unwrap_or(0),
                );
                if !(1..=38).contains(&p) || s > p {
                    return Err(format!("decimal({p}, {s}) is out of range"));
                }
                scalar(
                    DataType::Decimal128(p as u8, s as i8),
                    &format!("decimal({p},{s})"),
                )
            }
            "varchar" | "char" | "string" => {
                self.numbers()?;
                scalar(DataType::Utf8, "varchar")
            }
            "varbinary" => scalar(DataType::Binary, "varbinary"),
            "date" => scalar(DataType::Date32, "date"),
            "timestamp" => {
                let p = self.numbers()?.first().copied().unwrap_or(3);
                let unit = match p {
                    0 => TimeUnit::Second,
                    1..=3 => TimeUnit::Millisecond,
                    4..=6 => TimeUnit::Microsecond,
                    _ => TimeUnit::Nanosecond,
                };
                if self.eat("with") {
                    self.expect("time")?;
                    self.expect("zone")?;
                    scalar(
                        DataType::Timestamp(unit, Some("UTC".into())),
                        &format!("timestamp({p}) with time zone"),
                    )
                } else {
                    scalar(DataType::Timestamp(unit, None), &format!("timestamp({p})"))
                }
            }
            other => Err(format!("unknown type name '{other}'")),
        }
    }
}

/// `__quarry_cast(x, 'type')` / `__quarry_try_cast(x, 'type')`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct TrinoCast {
    /// `TRY_CAST`: NULL where the cast fails.
    lenient: bool,
    signature: Signature,
}

impl TrinoCast {
    fn target(&self, args: &[Option<&ScalarValue>]) -> Result<TrinoType> {
        match args
            .get(1)
            .copied()
            .flatten()
            .and_then(|v| v.try_as_str().flatten())
        {
            Some(t) => parse_type(t),
            None => plan_err!("{}: the target type must be a string constant", self.name()),
        }
    }
}

impl ScalarUDFImpl for TrinoCast {
    fn name(&self) -> &str {
        if self.lenient { TRY_CAST } else { CAST }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        plan_err!("{}: needs its constant type argument", self.name())
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let target = self.target(args.scalar_arguments)?;
        Ok(Arc::new(Field::new(self.name(), target.arrow(), true)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let ColumnarValue::Scalar(t) = &args.args[1] else {
            return exec_err!("{}: the target type must be a constant", self.name());
        };
        let target = self.target(&[None, Some(t)])?;
        let lenient = self.lenient;
        row_wise(&args.args[..1], args.number_rows, |arrays, rows| {
            let value = &arrays[0];
            match cast(value, &target) {
                Ok(a) => Ok(a),
                Err(_) if lenient => {
                    // Row by row, NULL where the cast fails.
                    let mut out = Vec::with_capacity(rows);
                    for i in 0..rows {
                        out.push(match cast(&value.slice(i, 1), &target) {
                            Ok(a) => ScalarValue::try_from_array(&a, 0)?,
                            Err(_) => ScalarValue::try_from(target.arrow())?,
                        });
                    }
                    if out.is_empty() {
                        Ok(new_null_array(&target.arrow(), 0))
                    } else {
                        ScalarValue::iter_to_array(out)
                    }
                }
                Err(e) => Err(e),
            }
        })
    }
}

fn cannot_cast(from: &DataType, to: &TrinoType) -> DataFusionError {
    DataFusionError::Execution(format!(
        "Cannot cast {} to {}",
        super::conditional::trino_type_name(from),
        to.name()
    ))
}

/// Casts `a` to `to` with Trino's rules.
pub(crate) fn cast(a: &ArrayRef, to: &TrinoType) -> Result<ArrayRef> {
    let from = a.data_type();
    if from.is_null() {
        return Ok(new_null_array(&to.arrow(), a.len()));
    }
    match to {
        TrinoType::Json => to_json(a),
        TrinoType::Scalar(t, _) => Ok(cast_with_options(
            a,
            t,
            &CastOptions {
                safe: false,
                ..Default::default()
            },
        )?),
        _ if is_string(from) => from_json(a, to),
        TrinoType::Array(e) => match from {
            DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(..) => {
                let list = cast_with_options(
                    a,
                    &DataType::new_list(list_item(from), true),
                    &CastOptions::default(),
                )?;
                let list = list.as_list::<i32>();
                let values = cast(list.values(), e)?;
                Ok(Arc::new(ListArray::try_new(
                    Arc::new(Field::new_list_field(e.arrow(), true)),
                    list.offsets().clone(),
                    values,
                    list.nulls().cloned(),
                )?))
            }
            _ => Err(cannot_cast(from, to)),
        },
        TrinoType::Map(k, v) => match from {
            DataType::Map(..) => {
                let map = a.as_map();
                let keys = cast(map.keys(), k)?;
                let values = cast(map.values(), v)?;
                let DataType::Map(field, sorted) = to.arrow() else {
                    return exec_err!("expected a map type");
                };
                let DataType::Struct(fields) = field.data_type() else {
                    return exec_err!("expected map entries");
                };
                let entries = StructArray::try_new(fields.clone(), vec![keys, values], None)?;
                Ok(Arc::new(MapArray::try_new(
                    field,
                    map.offsets().clone(),
                    entries,
                    map.nulls().cloned(),
                    sorted,
                )?))
            }
            _ => Err(cannot_cast(from, to)),
        },
        TrinoType::Row(fields) => match from {
            DataType::Struct(from_fields) => {
                if from_fields.len() != fields.len() {
                    return exec_err!(
                        "Cannot cast {} to {}: the rows have {} and {} fields",
                        super::conditional::trino_type_name(from),
                        to.name(),
                        from_fields.len(),
                        fields.len()
                    );
                }
                let s = a.as_struct();
                let columns = s
                    .columns()
                    .iter()
                    .zip(fields)
                    .map(|(c, (_, t))| cast(c, t))
                    .collect::<Result<Vec<_>>>()?;
                Ok(Arc::new(StructArray::try_new(
                    row_fields(fields),
                    columns,
                    s.nulls().cloned(),
                )?))
            }
            _ => Err(cannot_cast(from, to)),
        },
    }
}

fn list_item(t: &DataType) -> DataType {
    match t {
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
            f.data_type().clone()
        }
        _ => DataType::Null,
    }
}

/// Text read as JSON, to an array, map or row.
fn from_json(a: &ArrayRef, to: &TrinoType) -> Result<ArrayRef> {
    let texts = cast_with_options(a, &DataType::Utf8, &CastOptions::default())?;
    let values = texts
        .as_string::<i32>()
        .iter()
        .map(|t| match t {
            None => ScalarValue::try_from(to.arrow()),
            Some(t) => {
                let v: Json = serde_json::from_str(t).map_err(|e| {
                    DataFusionError::Execution(format!("Cannot cast to {}. {e}\n{t}", to.name()))
                })?;
                json_value(&v, to).map_err(|e| {
                    DataFusionError::Execution(format!("Cannot cast to {}. {e}\n{t}", to.name()))
                })
            }
        })
        .collect::<Result<Vec<_>>>()?;
    if values.is_empty() {
        return Ok(new_null_array(&to.arrow(), 0));
    }
    ScalarValue::iter_to_array(values)
}

/// One JSON value as a value of type `t`.
fn json_value(v: &Json, t: &TrinoType) -> std::result::Result<ScalarValue, String> {
    let null = || ScalarValue::try_from(t.arrow()).map_err(|e| e.to_string());
    if v.is_null() {
        return null();
    }
    let mismatch = |what: &str| Err(format!("Expected a json {what}, but got {v}"));
    match t {
        TrinoType::Json => Ok(ScalarValue::Utf8(Some(v.to_string()))),
        TrinoType::Scalar(dt, _) => {
            let text = match v {
                Json::String(s) => ScalarValue::Utf8(Some(s.clone())),
                Json::Bool(b) if dt == &DataType::Boolean => ScalarValue::Boolean(Some(*b)),
                Json::Bool(b) => ScalarValue::Utf8(Some(b.to_string())),
                Json::Number(n) if dt == &DataType::Boolean => {
                    ScalarValue::Boolean(Some(n.as_f64() != Some(0.0)))
                }
                Json::Number(n) => match n.as_i64() {
                    Some(i) if dt.is_integer() => ScalarValue::Int64(Some(i)),
                    _ => match n.as_f64() {
                        Some(f) if dt.is_floating() => ScalarValue::Float64(Some(f)),
                        _ => ScalarValue::Utf8(Some(n.to_string())),
                    },
                },
                _ => return mismatch("scalar"),
            };
            text.cast_to(dt).map_err(|e| e.to_string())
        }
        TrinoType::Array(e) => {
            let Json::Array(items) = v else {
                return mismatch("array");
            };
            let items = items
                .iter()
                .map(|i| json_value(i, e))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            Ok(ScalarValue::List(ScalarValue::new_list_nullable(
                &items,
                &e.arrow(),
            )))
        }
        TrinoType::Map(k, value) => {
            let Json::Object(entries) = v else {
                return mismatch("object");
            };
            let keys = entries
                .keys()
                .map(|key| ScalarValue::Utf8(Some(key.clone())).cast_to(&k.arrow()))
                .collect::<Result<Vec<_>>>()
                .map_err(|e| e.to_string())?;
            let values = entries
                .values()
                .map(|i| json_value(i, value))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            let array = |items: Vec<ScalarValue>, t: &DataType| {
                if items.is_empty() {
                    Ok(new_null_array(t, 0))
                } else {
                    ScalarValue::iter_to_array(items)
                }
            };
            let (keys, values) = (
                array(keys, &k.arrow()).map_err(|e| e.to_string())?,
                array(values, &value.arrow()).map_err(|e| e.to_string())?,
            );
            let DataType::Map(field, sorted) = t.arrow() else {
                return Err("expected a map type".into());
            };
            let DataType::Struct(fields) = field.data_type() else {
                return Err("expected map entries".into());
            };
            let len = keys.len();
            let entries = StructArray::try_new(fields.clone(), vec![keys, values], None)
                .map_err(|e| e.to_string())?;
            let map = MapArray::try_new(
                field,
                datafusion::arrow::buffer::OffsetBuffer::from_lengths([len]),
                entries,
                None,
                sorted,
            )
            .map_err(|e| e.to_string())?;
            Ok(ScalarValue::Map(Arc::new(map)))
        }
        TrinoType::Row(fields) => {
            let values: Vec<ScalarValue> = match v {
                Json::Array(items) if items.len() == fields.len() => items
                    .iter()
                    .zip(fields)
                    .map(|(i, (_, t))| json_value(i, t))
                    .collect::<std::result::Result<_, _>>()?,
                Json::Array(items) => {
                    return Err(format!(
                        "Expected a json array of {} values, but got {}",
                        fields.len(),
                        items.len()
                    ));
                }
                Json::Object(o) => fields
                    .iter()
                    .map(
                        |(name, t)| match o.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)) {
                            Some((_, i)) => json_value(i, t),
                            None => ScalarValue::try_from(t.arrow()).map_err(|e| e.to_string()),
                        },
                    )
                    .collect::<std::result::Result<_, _>>()?,
                _ => return mismatch("array or object"),
            };
            let mut builder = ScalarStructBuilder::new();
            for ((name, t), value) in fields.iter().zip(values) {
                builder = builder.with_scalar(Field::new(name, t.arrow(), true), value);
            }
            builder.build().map_err(|e| e.to_string())
        }
    }
}

/// Values as JSON text (SQL NULL stays NULL).
fn to_json(a: &ArrayRef) -> Result<ArrayRef> {
    let out = (0..a.len())
        .map(|i| {
            if a.is_null(i) {
                Ok(None)
            } else {
                let mut s = String::new();
                write_json(&mut s, a, i)?;
                Ok(Some(s))
            }
        })
        .collect::<Result<StringArray>>()?;
    Ok(Arc::new(out))
}

fn write_json(out: &mut String, a: &ArrayRef, i: usize) -> Result<()> {
    if a.is_null(i) {
        out.push_str("null");
        return Ok(());
    }
    match a.data_type() {
        DataType::Boolean => out.push_str(&a.as_boolean().value(i).to_string()),
        DataType::Float32 | DataType::Float64 => {
            let f = ScalarValue::try_from_array(a, i)?;
            let f = match f.cast_to(&DataType::Float64)? {
                ScalarValue::Float64(Some(f)) => f,
                _ => f64::NAN,
            };
            out.push_str(&java_double(f));
        }
        t if t.is_integer() || matches!(t, DataType::Decimal128(..) | DataType::Decimal256(..)) => {
            out.push_str(&ScalarValue::try_from_array(a, i)?.to_string());
        }
        t if is_string(t) => {
            let s = cast_with_options(&a.slice(i, 1), &DataType::Utf8, &CastOptions::default())?;
            let s = s.as_string::<i32>().value(0).to_string();
            out.push_str(&Json::String(s).to_string());
        }
        DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(..) => {
            let list = cast_with_options(
                &a.slice(i, 1),
                &DataType::new_list(list_item(a.data_type()), true),
                &CastOptions::default(),
            )?;
            let values = list.as_list::<i32>().value(0);
            out.push('[');
            for j in 0..values.len() {
                if j > 0 {
                    out.push(',');
                }
                write_json(out, &values, j)?;
            }
            out.push(']');
        }
        DataType::Map(..) => {
            let entries = a.as_map().value(i);
            let keys = to_text(entries.column(0))?;
            let mut order: Vec<usize> = (0..entries.len()).collect();
            order.sort_by(|x, y| keys[*x].cmp(&keys[*y]));
            out.push('{');
            for (n, j) in order.into_iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                out.push_str(&Json::String(keys[j].clone()).to_string());
                out.push(':');
                write_json(out, entries.column(1), j)?;
            }
            out.push('}');
        }
        DataType::Struct(fields) => {
            let s = a.as_struct();
            out.push('{');
            for (n, (f, c)) in fields.iter().zip(s.columns()).enumerate() {
                if n > 0 {
                    out.push(',');
                }
                out.push_str(&Json::String(f.name().clone()).to_string());
                out.push(':');
                write_json(out, c, i)?;
            }
            out.push('}');
        }
        _ => {
            // Dates, timestamps and the like: their text, as a JSON string.
            let text = to_text(&a.slice(i, 1))?;
            out.push_str(&Json::String(text[0].clone()).to_string());
        }
    }
    Ok(())
}

fn to_text(a: &ArrayRef) -> Result<Vec<String>> {
    let f = ArrayFormatter::try_new(a.as_ref(), &FormatOptions::default())?;
    Ok((0..a.len()).map(|i| f.value(i).to_string()).collect())
}

/// A double as Java's `Double.toString` writes it (Trino's JSON numbers): `1.234`, `1.0E7`.
pub(crate) fn java_double(f: f64) -> String {
    if !f.is_finite() {
        return if f.is_nan() {
            "NaN".into()
        } else if f > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        };
    }
    let a = f.abs();
    if a == 0.0 || (1e-3..1e7).contains(&a) {
        let s = f.to_string();
        if s.contains('.') { s } else { format!("{s}.0") }
    } else {
        let s = format!("{f:E}");
        match s.split_once('E') {
            Some((m, e)) if !m.contains('.') => format!("{m}.0E{e}"),
            _ => s,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trino_types_parse() {
        assert_eq!(
            parse_type("ROW(v1 BIGINT, v2 ARRAY(DECIMAL(10, 2)), v3 MAP(VARCHAR, JSON))")
                .unwrap()
                .name(),
            "row(v1 bigint, v2 array(decimal(10,2)), v3 map(varchar, json))"
        );
        assert_eq!(
            parse_type("row(integer, double precision)").unwrap().name(),
            "row(c0 integer, c1 double)"
        );
        assert!(parse_type("ARRAY(").is_err());
        assert!(parse_type("blob").is_err());
    }

    #[test]
    fn doubles_as_java_writes_them() {
        assert_eq!(java_double(1.234), "1.234");
        assert_eq!(java_double(1e7), "1.0E7");
        assert_eq!(java_double(-0.00012), "-1.2E-4");
        assert_eq!(java_double(2.0), "2.0");
    }
}
