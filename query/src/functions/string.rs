//! String functions (Trino `functions/string.md`) that DataFusion lacks or answers differently:
//! `split`, `split_part` (DataFusion returns `''` past the last field and counts negative
//! indexes from the end; Trino returns NULL and rejects indexes below 1),
//! `levenshtein_distance`, `hamming_distance`.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, AsArray, Int64Array, ListBuilder, StringArray, StringBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Int64Type};
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::ScalarUDF;

use super::{Call, Udf, is_integer, is_string};

pub(super) fn functions() -> Vec<ScalarUDF> {
    vec![
        Udf::new(
            "split",
            "split(varchar, varchar) | split(varchar, varchar, bigint)",
            |t| match t {
                [s, d] if is_string(s) && is_string(d) => Some(vec![DataType::Utf8; 2]),
                [s, d, l] if is_string(s) && is_string(d) && is_integer(l) => {
                    Some(vec![DataType::Utf8, DataType::Utf8, DataType::Int64])
                }
                _ => None,
            },
            |_| {
                Ok(DataType::List(Arc::new(Field::new_list_field(
                    DataType::Utf8,
                    true,
                ))))
            },
            split,
        )
        .udf(),
        Udf::new(
            "split_part",
            "split_part(varchar, varchar, bigint)",
            |t| match t {
                [s, d, i] if is_string(s) && is_string(d) && is_integer(i) => {
                    Some(vec![DataType::Utf8, DataType::Utf8, DataType::Int64])
                }
                _ => None,
            },
            |_| Ok(DataType::Utf8),
            split_part,
        )
        .udf(),
        Udf::new(
            "levenshtein_distance",
            "levenshtein_distance(varchar, varchar)",
            |t| super::all_as(t, &[2], is_string, DataType::Utf8),
            |_| Ok(DataType::Int64),
            levenshtein_distance,
        )
        .udf(),
        Udf::new(
            "hamming_distance",
            "hamming_distance(varchar, varchar)",
            |t| super::all_as(t, &[2], is_string, DataType::Utf8),
            |_| Ok(DataType::Int64),
            hamming_distance,
        )
        .udf(),
    ]
}

fn split(call: &Call) -> Result<ArrayRef> {
    let s = call.args[0].as_string::<i32>();
    let d = call.args[1].as_string::<i32>();
    let limit = call.args.get(2).map(|l| l.as_primitive::<Int64Type>());
    let mut out = ListBuilder::new(StringBuilder::new());
    for i in 0..call.rows {
        if super::null_at(&call.args, i) {
            out.append_null();
            continue;
        }
        let delimiter = d.value(i);
        if delimiter.is_empty() {
            return exec_err!("The delimiter may not be the empty string");
        }
        let limit = match limit.map(|l| l.value(i)) {
            None => usize::MAX,
            Some(l) if l <= 0 => return exec_err!("Limit must be positive"),
            Some(l) if l > i64::from(i32::MAX) => return exec_err!("Limit is too large"),
            Some(l) => l as usize,
        };
        for part in s.value(i).splitn(limit, delimiter) {
            out.values().append_value(part);
        }
        out.append(true);
    }
    Ok(Arc::new(out.finish()))
}

fn split_part(call: &Call) -> Result<ArrayRef> {
    let s = call.args[0].as_string::<i32>();
    let d = call.args[1].as_string::<i32>();
    let index = call.args[2].as_primitive::<Int64Type>();
    let mut out = Vec::with_capacity(call.rows);
    for i in 0..call.rows {
        if super::null_at(&call.args, i) {
            out.push(None);
            continue;
        }
        let n = index.value(i);
        if n <= 0 {
            return exec_err!("Index must be greater than zero");
        }
        let nth = usize::try_from(n - 1).unwrap_or(usize::MAX);
        let (text, delimiter) = (s.value(i), d.value(i));
        // An empty delimiter splits between characters.
        out.push(if delimiter.is_empty() {
            text.chars().nth(nth).map(String::from)
        } else {
            text.split(delimiter).nth(nth).map(String::from)
        });
    }
    Ok(Arc::new(StringArray::from(out)))
}

fn levenshtein_distance(call: &Call) -> Result<ArrayRef> {
    let a = call.args[0].as_string::<i32>();
    let b = call.args[1].as_string::<i32>();
    let mut out = Vec::with_capacity(call.rows);
    for i in 0..call.rows {
        if super::null_at(&call.args, i) {
            out.push(None);
            continue;
        }
        let mut x: Vec<char> = a.value(i).chars().collect();
        let mut y: Vec<char> = b.value(i).chars().collect();
        if x.len() > y.len() {
            std::mem::swap(&mut x, &mut y);
        }
        if x.is_empty() {
            out.push(Some(y.len() as i64));
            continue;
        }
        if (x.len() as u64) * (y.len() as u64 - 1) > 1_000_000 {
            return exec_err!("The combined inputs for Levenshtein distance are too large");
        }
        let mut row: Vec<usize> = (0..=x.len()).collect();
        for (j, cy) in y.iter().enumerate() {
            let mut diagonal = row[0];
            row[0] = j + 1;
            for (k, cx) in x.iter().enumerate() {
                let substitute = diagonal + usize::from(cx != cy);
                diagonal = row[k + 1];
                row[k + 1] = substitute.min(row[k] + 1).min(row[k + 1] + 1);
            }
        }
        out.push(Some(row[x.len()] as i64));
    }
    Ok(Arc::new(Int64Array::from(out)))
}

fn hamming_distance(call: &Call) -> Result<ArrayRef> {
    let a = call.args[0].as_string::<i32>();
    let b = call.args[1].as_string::<i32>();
    let mut out = Vec::with_capacity(call.rows);
    for i in 0..call.rows {
        if super::null_at(&call.args, i) {
            out.push(None);
            continue;
        }
        let (x, y) = (a.value(i), b.value(i));
        if x.chars().count() != y.chars().count() {
            return exec_err!(
                "The input strings to hamming_distance function must have the same length"
            );
        }
        out.push(Some(
            x.chars().zip(y.chars()).filter(|(p, q)| p != q).count() as i64,
        ));
    }
    Ok(Arc::new(Int64Array::from(out)))
}
