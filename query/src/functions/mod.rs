//! Athena's (Trino's) everyday functions, with Trino's semantics, in every DataFusion session.
//!
//! Queries written for Athena must give Athena's answers. DataFusion has several functions under
//! the same names with other meanings (`date_format` takes chrono codes, `regexp_replace`
//! replaces the first match, `element_at` reads maps only, `to_unixtime` returns an integer,
//! `array_remove` removes one element, `array_position` and `split_part` return NULL / `''`
//! where Trino returns 0 / NULL); a silently different answer is worse than an error, so
//! [`register`] replaces those and adds the missing ones. Where Trino has no signature for an
//! input DataFusion accepts (`contains` and `md5` on strings, `to_hex` on integers,
//! `to_unixtime` on strings, `regexp_count` with a start or flags) the DataFusion behaviour is
//! kept: Trino would raise an error there, so no Athena query changes meaning.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> datafusion::error::Result<()> {
//! use datafusion::arrow::util::pretty::pretty_format_batches;
//! use datafusion::prelude::SessionContext;
//!
//! let ctx = SessionContext::new();
//! quarry_query::functions::register(&ctx);
//! let sql = "SELECT date_format(TIMESTAMP '2022-10-20 05:10:00', '%m-%d-%Y %H') AS d";
//! let batches = ctx.sql(sql).await?.collect().await?;
//! assert!(pretty_format_batches(&batches)?.to_string().contains("10-20-2022 05"));
//! # Ok(()) }
//! ```
//!
//! Besides scalar functions by topic (`datetime`, `regexp`, `array`, `json`, `string`, `binary`,
//! `url`, `conditional`), the module has: `timezone` (`at_timezone`, `with_timezone`),
//! `aggregate`, `percentile` and `map_agg` (`count_if`, `max_by`, `min_by`, `arbitrary`,
//! `approx_percentile` with or without weights and with one or several percentages, `map_agg`,
//! `histogram`), `reduce` (a higher-order function; `transform`, `filter`, `any_match`,
//! `all_match` and `none_match` are DataFusion's, reached through [`crate::syntax`]), `cast`
//! (casts to Trino's row, array, map and JSON types) and `try_expr` (`try`).
//!
//! Some Trino syntax reaches these functions through the rewrites of [`crate::syntax`]:
//! `x AT TIME ZONE z` is `at_timezone(x, z)`; `CAST(x AS ROW(..) | ARRAY(..) | MAP(..) | JSON)`
//! is a call of the cast in `cast`; `JSON '..'` is `json_parse('..')`. `try(expr)` is planned by
//! an analyzer rule that [`register`] adds (see `try_expr`), since a function never sees its
//! argument's errors.
//!
//! Not implemented (an unknown-function error): `zip_with`, `transform_keys`,
//! `transform_values`, `map_filter`, `array_sort` with a comparator, `reduce_agg`,
//! `map_union`, `multimap_agg`. Integer `+`, `-` and `*` wrap around on overflow (DataFusion's
//! arithmetic) where Trino raises, so `try` cannot make those NULL.
//!
//! Types: Trino's `json` is text (Utf8), `varbinary` is Binary, `timestamp(3)` is
//! `Timestamp(Millisecond)` and `timestamp(3) with time zone` is `Timestamp(Millisecond, zone)`
//! (one zone per column, as Arrow stores it). Regular expressions use Rust's `regex` syntax,
//! which lacks Java's look-around and back-references; such patterns fail with the parser's
//! message rather than matching differently.

mod aggregate;
mod array;
mod binary;
mod cast;
mod conditional;
mod datetime;
mod extract;
mod iso8601;
pub(crate) mod joda_format;
mod json;
mod map_agg;
pub(crate) mod mysql_format;
mod percentile;
mod reduce;
mod regexp;
mod string;
mod timezone;
mod try_expr;
mod url;

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef};
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::{DataFusionError, Result, ScalarValue};
use datafusion::logical_expr::type_coercion::functions::fields_with_udf;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;

pub use extract::add_trino_extract;

/// Registers every function of this module in `ctx`, replacing DataFusion's functions of the
/// same name.
pub fn register(ctx: &SessionContext) {
    for udf in scalar_functions() {
        ctx.register_udf(udf);
    }
    for udaf in aggregate::functions() {
        ctx.register_udaf(udaf);
    }
    ctx.register_higher_order_function(Arc::new(reduce::function()));
    ctx.add_analyzer_rule(Arc::new(try_expr::TryRule));
}

/// The scalar functions [`register`] adds, each with its aliases.
pub fn scalar_functions() -> Vec<ScalarUDF> {
    let mut all = Vec::new();
    all.extend(datetime::functions());
    all.extend(regexp::functions());
    all.extend(array::functions());
    all.extend(json::functions());
    all.extend(string::functions());
    all.extend(binary::functions());
    all.extend(url::functions());
    all.extend(conditional::functions());
    all.extend(timezone::functions());
    all.extend(cast::functions());
    all.push(try_expr::function());
    all
}

/// The function `CAST(x AS t)` (or `TRY_CAST`) becomes when `t` is a Trino row, array, map or
/// JSON type (see [`crate::syntax::rewrite_casts`]).
pub fn cast_function_name(lenient: bool) -> &'static str {
    if lenient { cast::TRY_CAST } else { cast::CAST }
}

/// Picks the argument types a function is called with (DataFusion casts the arguments to them)
/// or explains which forms exist.
type CoerceFn = fn(&[DataType]) -> Option<Vec<DataType>>;
/// The result type for the coerced argument types.
type ReturnFn = fn(&[DataType]) -> Result<DataType>;
/// Computes the result from the arguments as arrays of one length.
type InvokeFn = fn(&Call) -> Result<ArrayRef>;

/// One evaluation of a row-wise function: the arguments (scalars expanded to `rows` rows) and
/// the result type.
pub(crate) struct Call<'a> {
    pub args: Vec<ArrayRef>,
    pub rows: usize,
    pub return_type: &'a DataType,
    pub name: &'a str,
}

/// A scalar function defined by three plain functions; most of this module is made of these.
pub(crate) struct Udf {
    name: &'static str,
    aliases: Vec<String>,
    usage: String,
    signature: Signature,
    coerce: CoerceFn,
    returns: ReturnFn,
    invoke: InvokeFn,
}

impl Udf {
    /// `usage` lists the accepted forms for the error message on other arguments, e.g.
    /// `"date_format(timestamp, varchar)"`.
    pub fn new(
        name: &'static str,
        usage: impl Into<String>,
        coerce: CoerceFn,
        returns: ReturnFn,
        invoke: InvokeFn,
    ) -> Self {
        Self {
            name,
            aliases: Vec::new(),
            usage: usage.into(),
            signature: Signature::user_defined(Volatility::Immutable),
            coerce,
            returns,
            invoke,
        }
    }

    pub fn with_aliases(mut self, aliases: &[&str]) -> Self {
        self.aliases = aliases.iter().map(|a| a.to_string()).collect();
        self
    }

    pub fn udf(self) -> ScalarUDF {
        ScalarUDF::new_from_impl(self)
    }
}

impl std::fmt::Debug for Udf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Udf").field("name", &self.name).finish()
    }
}

// Names are unique in a session, so they identify the function.
impl PartialEq for Udf {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for Udf {}

impl Hash for Udf {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl ScalarUDFImpl for Udf {
    fn name(&self) -> &str {
        self.name
    }

    fn aliases(&self) -> &[String] {
        &self.aliases
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        (self.coerce)(arg_types).ok_or_else(|| wrong_arguments(&self.usage, arg_types))
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        (self.returns)(arg_types)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let return_type = args.return_field.data_type().clone();
        let invoke = self.invoke;
        row_wise(&args.args, args.number_rows, |arrays, rows| {
            invoke(&Call {
                args: arrays,
                rows,
                return_type: &return_type,
                name: self.name,
            })
        })
    }
}

/// Trino's semantics for the argument types Trino accepts, DataFusion's function of the same
/// name for the others (where Trino has no such signature and raises an error, so keeping
/// DataFusion's answer changes no Athena query).
#[derive(Debug)]
pub(crate) struct Extended {
    trino: Udf,
    datafusion: Arc<ScalarUDF>,
}

impl Extended {
    pub fn udf(trino: Udf, datafusion: Arc<ScalarUDF>) -> ScalarUDF {
        ScalarUDF::new_from_impl(Self { trino, datafusion })
    }

    /// The (coerced) argument types are a Trino form.
    fn is_trino(&self, arg_types: &[DataType]) -> bool {
        (self.trino.coerce)(arg_types).is_some_and(|t| t == arg_types)
    }
}

impl PartialEq for Extended {
    fn eq(&self, other: &Self) -> bool {
        self.trino == other.trino
    }
}

impl Eq for Extended {}

impl Hash for Extended {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.trino.hash(state);
    }
}

impl ScalarUDFImpl for Extended {
    fn name(&self) -> &str {
        self.trino.name
    }

    fn signature(&self) -> &Signature {
        &self.trino.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match (self.trino.coerce)(arg_types) {
            Some(types) => Ok(types),
            None => {
                let fields: Vec<_> = arg_types
                    .iter()
                    .map(|t| Arc::new(Field::new("arg", t.clone(), true)))
                    .collect();
                fields_with_udf(&fields, self.datafusion.as_ref())
                    .map(|f| f.iter().map(|f| f.data_type().clone()).collect())
                    .map_err(|_| wrong_arguments(&self.trino.usage, arg_types))
            }
        }
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        if self.is_trino(arg_types) {
            (self.trino.returns)(arg_types)
        } else {
            self.datafusion.return_type(arg_types)
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let types: Vec<DataType> = args
            .arg_fields
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        if self.is_trino(&types) {
            self.trino.invoke_with_args(args)
        } else {
            self.datafusion.invoke_with_args(args)
        }
    }
}

/// Runs `f` over the arguments as arrays; when every argument is a scalar, on one row, and the
/// result is a scalar too.
pub(crate) fn row_wise(
    args: &[ColumnarValue],
    number_rows: usize,
    f: impl FnOnce(Vec<ArrayRef>, usize) -> Result<ArrayRef>,
) -> Result<ColumnarValue> {
    let scalar = args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)));
    let rows = if scalar { 1 } else { number_rows };
    let arrays = args
        .iter()
        .map(|a| a.to_array(rows))
        .collect::<Result<Vec<_>>>()?;
    let out = f(arrays, rows)?;
    if out.len() != rows {
        return Err(DataFusionError::Internal(format!(
            "function returned {} rows for {rows}",
            out.len()
        )));
    }
    if scalar {
        Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?))
    } else {
        Ok(ColumnarValue::Array(out))
    }
}

/// Trino's message for a call with no matching signature.
pub(crate) fn wrong_arguments(usage: &str, arg_types: &[DataType]) -> DataFusionError {
    let got: Vec<String> = arg_types.iter().map(conditional::trino_type_name).collect();
    DataFusionError::Plan(format!(
        "Unexpected parameters ({}) for function {}. Expected: {usage}",
        got.join(", "),
        usage.split('(').next().unwrap_or(usage),
    ))
}

/// Argument classes shared by the coercion functions.
pub(crate) fn is_string(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null
    ) || matches!(t, DataType::Dictionary(_, v) if is_string(v))
}

pub(crate) fn is_integer(t: &DataType) -> bool {
    t.is_integer() || matches!(t, DataType::Null)
}

pub(crate) fn is_numeric(t: &DataType) -> bool {
    t.is_numeric() || matches!(t, DataType::Null)
}

pub(crate) fn is_binary(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Binary
            | DataType::LargeBinary
            | DataType::BinaryView
            | DataType::FixedSizeBinary(_)
            | DataType::Null
    )
}

/// `Some(types)` when every argument passes `check`, each coerced to `to`.
pub(crate) fn all_as(
    arg_types: &[DataType],
    counts: &[usize],
    check: fn(&DataType) -> bool,
    to: DataType,
) -> Option<Vec<DataType>> {
    (counts.contains(&arg_types.len()) && arg_types.iter().all(check))
        .then(|| vec![to; arg_types.len()])
}

/// Some argument is NULL in this row.
pub(crate) fn null_at(args: &[ArrayRef], row: usize) -> bool {
    args.iter().any(|a| is_null(a.as_ref(), row))
}

/// Row `i` of `a` is NULL, also in an array of type Null (which has no validity bitmap, so
/// `Array::is_null` says false).
pub(crate) fn is_null(a: &dyn Array, i: usize) -> bool {
    a.data_type().is_null() || a.is_null(i)
}
