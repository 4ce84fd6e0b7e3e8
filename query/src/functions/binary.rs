//! Binary functions (Trino `functions/binary.md`, `to_utf8` / `from_utf8` from
//! `functions/string.md`). Trino's `varbinary` is Arrow Binary; `X'0A1B'` literals are Binary.
//! `to_hex` and `md5` on varbinary follow Trino (upper-case hex; the digest as varbinary);
//! DataFusion's `to_hex(integer)` and `md5(varchar)` (lower-case hex text), which Trino does
//! not have, are kept. `sha256` is DataFusion's, which already returns varbinary.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, BinaryArray, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::config::ConfigOptions;
use datafusion::common::{Result, ScalarValue, exec_err};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF};

use super::{Call, Extended, Udf, is_binary, is_string};

pub(super) fn functions() -> Vec<ScalarUDF> {
    let one_binary = |t: &[DataType]| super::all_as(t, &[1], is_binary_only, DataType::Binary);
    vec![
        Extended::udf(
            Udf::new(
                "to_hex",
                "to_hex(varbinary)",
                one_binary,
                |_| Ok(DataType::Utf8),
                to_hex,
            ),
            datafusion::functions::string::to_hex(),
        ),
        Udf::new(
            "from_hex",
            "from_hex(varchar)",
            |t| super::all_as(t, &[1], is_string, DataType::Utf8),
            |_| Ok(DataType::Binary),
            from_hex,
        )
        .udf(),
        Extended::udf(
            Udf::new(
                "md5",
                "md5(varbinary)",
                one_binary,
                |_| Ok(DataType::Binary),
                md5,
            ),
            datafusion::functions::crypto::md5(),
        ),
        Udf::new(
            "to_utf8",
            "to_utf8(varchar)",
            |t| super::all_as(t, &[1], is_string, DataType::Utf8),
            |_| Ok(DataType::Binary),
            |call| Ok(cast(&call.args[0], &DataType::Binary)?),
        )
        .udf(),
        Udf::new(
            "from_utf8",
            "from_utf8(varbinary) | from_utf8(varbinary, varchar)",
            |t| match t {
                [b] if is_binary(b) => Some(vec![DataType::Binary]),
                [b, r] if is_binary(b) && is_string(r) => {
                    Some(vec![DataType::Binary, DataType::Utf8])
                }
                _ => None,
            },
            |_| Ok(DataType::Utf8),
            from_utf8,
        )
        .udf(),
    ]
}

/// Binary, not NULL: a NULL argument goes to DataFusion's function, whose type it takes.
fn is_binary_only(t: &DataType) -> bool {
    is_binary(t) && !t.is_null()
}

fn to_hex(call: &Call) -> Result<ArrayRef> {
    let bytes = call.args[0].as_binary::<i32>();
    let out: StringArray = bytes
        .iter()
        .map(|b| {
            b.map(|b| {
                b.iter()
                    .fold(String::with_capacity(b.len() * 2), |mut s, byte| {
                        s.push_str(&format!("{byte:02X}"));
                        s
                    })
            })
        })
        .collect();
    Ok(Arc::new(out))
}

fn from_hex(call: &Call) -> Result<ArrayRef> {
    let texts = call.args[0].as_string::<i32>();
    let mut out = Vec::with_capacity(call.rows);
    for t in texts.iter() {
        let Some(t) = t else {
            out.push(None);
            continue;
        };
        if t.len() % 2 != 0 {
            return exec_err!("invalid input length {}", t.len());
        }
        let digit = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        };
        let bytes = t
            .as_bytes()
            .chunks(2)
            .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
            .collect::<Option<Vec<u8>>>();
        match bytes {
            Some(b) => out.push(Some(b)),
            None => return exec_err!("invalid hex character in '{t}'"),
        }
    }
    Ok(Arc::new(BinaryArray::from_iter(out)))
}

/// The MD5 digest as varbinary, through DataFusion's `digest(x, 'md5')`.
fn md5(call: &Call) -> Result<ArrayRef> {
    let digest = datafusion::functions::crypto::digest();
    let out = digest.invoke_with_args(ScalarFunctionArgs {
        args: vec![
            ColumnarValue::Array(Arc::clone(&call.args[0])),
            ColumnarValue::Scalar(ScalarValue::Utf8(Some("md5".into()))),
        ],
        arg_fields: vec![
            Arc::new(Field::new("data", DataType::Binary, true)),
            Arc::new(Field::new("algorithm", DataType::Utf8, false)),
        ],
        number_rows: call.rows,
        return_field: Arc::new(Field::new("md5", DataType::Binary, true)),
        config_options: Arc::new(ConfigOptions::default()),
    })?;
    let out = out.to_array(call.rows)?;
    Ok(cast(&out, &DataType::Binary)?)
}

fn from_utf8(call: &Call) -> Result<ArrayRef> {
    let bytes = call.args[0].as_binary::<i32>();
    let replacements = call.args.get(1).map(|r| r.as_string::<i32>());
    let mut out = Vec::with_capacity(call.rows);
    for i in 0..call.rows {
        if super::null_at(&call.args, i) {
            out.push(None);
            continue;
        }
        let replacement = match replacements {
            None => "\u{FFFD}",
            Some(r) => {
                let r = r.value(i);
                if r.chars().count() > 1 {
                    return exec_err!(
                        "Replacement character string must empty or a single character"
                    );
                }
                r
            }
        };
        let mut text = String::new();
        for chunk in bytes.value(i).utf8_chunks() {
            text.push_str(chunk.valid());
            if !chunk.invalid().is_empty() {
                text.push_str(replacement);
            }
        }
        out.push(Some(text));
    }
    Ok(Arc::new(StringArray::from(out)))
}
