//! Type inference for text values and schema merging with widening.
//!
//! Widening rules (the same for merging files of one table and for re-crawls):
//! - NULL (no value seen) takes the other side's type;
//! - integers widen to the wider integer (int32 -> int64), integers and floats to double;
//! - date and timestamp widen to timestamp, timestamps to the finer unit;
//! - structs merge field by field, lists merge their element types;
//! - anything else that disagrees (e.g. boolean vs bigint) becomes string.
//!
//! Every column is nullable: a column missing from some files reads as NULL there.

use std::sync::Arc;

use arrow_schema::{DataType, Field, Fields, TimeUnit};

/// The type of one CSV cell. Empty cells are NULL and do not vote.
pub fn infer_text(value: &str) -> DataType {
    let v = value.trim();
    if v.is_empty() {
        return DataType::Null;
    }
    if v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("false") {
        return DataType::Boolean;
    }
    if v.parse::<i64>().is_ok() {
        return DataType::Int64;
    }
    // Only plain decimal notation: "nan", "inf" or "1e5x" stay text.
    if v.bytes().any(|b| b.is_ascii_digit())
        && v.bytes()
            .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b))
        && v.parse::<f64>().is_ok()
    {
        return DataType::Float64;
    }
    if v.len() == 10 && chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d").is_ok() {
        return DataType::Date32;
    }
    if is_timestamp(v) {
        return DataType::Timestamp(TimeUnit::Microsecond, None);
    }
    DataType::Utf8
}

fn is_timestamp(v: &str) -> bool {
    if v.len() < 19 {
        return false;
    }
    const FORMATS: [&str; 2] = ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"];
    FORMATS
        .iter()
        .any(|f| chrono::NaiveDateTime::parse_from_str(v, f).is_ok())
        || chrono::DateTime::parse_from_rfc3339(v).is_ok()
}

fn int_rank(t: &DataType) -> Option<u8> {
    Some(match t {
        DataType::Int8 => 1,
        DataType::Int16 | DataType::UInt8 => 2,
        DataType::Int32 | DataType::UInt16 => 3,
        DataType::Int64 | DataType::UInt32 => 4,
        _ => return None,
    })
}

fn is_float(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Float16 | DataType::Float32 | DataType::Float64 | DataType::UInt64
    ) || matches!(t, DataType::Decimal128(..) | DataType::Decimal256(..))
}

fn is_string(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

fn is_temporal(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Date32 | DataType::Date64 | DataType::Timestamp(..)
    )
}

/// The narrowest type that holds values of both `a` and `b`.
pub fn widen(a: &DataType, b: &DataType) -> DataType {
    if a == b {
        return a.clone();
    }
    match (a, b) {
        (DataType::Null, x) | (x, DataType::Null) => x.clone(),
        _ if is_string(a) && is_string(b) => DataType::Utf8,
        _ => {
            match (int_rank(a), int_rank(b)) {
                (Some(x), Some(y)) => {
                    if x >= y {
                        a.clone()
                    } else {
                        b.clone()
                    }
                }
                _ if (int_rank(a).is_some() || is_float(a))
                    && (int_rank(b).is_some() || is_float(b)) =>
                {
                    DataType::Float64
                }
                _ if is_temporal(a) && is_temporal(b) => match (a, b) {
                    // The finer unit holds both, whichever file came first.
                    (DataType::Timestamp(ua, _), DataType::Timestamp(ub, _)) => {
                        let rank = |u: &TimeUnit| match u {
                            TimeUnit::Second => 0,
                            TimeUnit::Millisecond => 1,
                            TimeUnit::Microsecond => 2,
                            TimeUnit::Nanosecond => 3,
                        };
                        let unit = if rank(ua) >= rank(ub) { *ua } else { *ub };
                        DataType::Timestamp(unit, None)
                    }
                    (DataType::Timestamp(..), _) => a.clone(),
                    (_, DataType::Timestamp(..)) => b.clone(),
                    _ => DataType::Date32,
                },
                _ => match (a, b) {
                    (DataType::Struct(fa), DataType::Struct(fb)) => {
                        DataType::Struct(Fields::from(merge_fields(fa, fb)))
                    }
                    (DataType::List(ea), DataType::List(eb)) => DataType::List(Arc::new(
                        Field::new("item", widen(ea.data_type(), eb.data_type()), true),
                    )),
                    _ => DataType::Utf8,
                },
            }
        }
    }
}

/// Merge two field lists by name (case-sensitive), keeping `a`'s order and appending new names.
pub fn merge_fields(a: &Fields, b: &Fields) -> Vec<Field> {
    let mut out: Vec<Field> = a
        .iter()
        .map(|f| f.as_ref().clone().with_nullable(true))
        .collect();
    for fb in b.iter() {
        match out.iter_mut().find(|f| f.name() == fb.name()) {
            Some(f) => *f = Field::new(f.name(), widen(f.data_type(), fb.data_type()), true),
            None => out.push(fb.as_ref().clone().with_nullable(true)),
        }
    }
    out
}

/// Replace types no value was seen for (NULL) with string, recursively, as Glue does.
pub fn finalize(t: &DataType) -> DataType {
    match t {
        DataType::Null => DataType::Utf8,
        DataType::Struct(fields) => DataType::Struct(
            fields
                .iter()
                .map(|f| Field::new(f.name(), finalize(f.data_type()), true))
                .collect::<Vec<_>>()
                .into(),
        ),
        DataType::List(e) => {
            DataType::List(Arc::new(Field::new("item", finalize(e.data_type()), true)))
        }
        other => other.clone(),
    }
}

/// Share of column names two schemas have in common (intersection over union).
pub fn name_overlap(a: &[String], b: &[String]) -> f64 {
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    let common = a.iter().filter(|n| b.contains(n)).count();
    let union = a.len() + b.len() - common;
    common as f64 / union as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts() -> DataType {
        DataType::Timestamp(TimeUnit::Microsecond, None)
    }

    #[test]
    fn infers_cell_types() {
        assert_eq!(infer_text("42"), DataType::Int64);
        assert_eq!(infer_text("-4.5e3"), DataType::Float64);
        assert_eq!(infer_text("TRUE"), DataType::Boolean);
        assert_eq!(infer_text("2024-02-29"), DataType::Date32);
        assert_eq!(infer_text("2024-02-30"), DataType::Utf8);
        assert_eq!(infer_text("2024-02-29 10:11:12.5"), ts());
        assert_eq!(infer_text("2024-02-29T10:11:12Z"), ts());
        assert_eq!(infer_text("nan"), DataType::Utf8);
        assert_eq!(infer_text(""), DataType::Null);
        assert_eq!(infer_text("12 apples"), DataType::Utf8);
    }

    #[test]
    fn widens_as_documented() {
        use DataType::*;
        assert_eq!(widen(&Int32, &Int64), Int64);
        assert_eq!(widen(&Int64, &Int32), Int64);
        assert_eq!(widen(&Int64, &Float64), Float64);
        assert_eq!(widen(&Int32, &Float32), Float64);
        assert_eq!(widen(&Date32, &ts()), ts());
        assert_eq!(widen(&Boolean, &Int64), Utf8);
        assert_eq!(widen(&Date32, &Int64), Utf8);
        assert_eq!(widen(&Null, &Boolean), Boolean);
        assert_eq!(widen(&Utf8View, &Utf8), Utf8);
        let s1 = Struct(vec![Field::new("a", Int32, true)].into());
        let s2 = Struct(vec![Field::new("a", Int64, true), Field::new("b", Utf8, true)].into());
        assert_eq!(
            widen(&s1, &s2),
            Struct(vec![Field::new("a", Int64, true), Field::new("b", Utf8, true)].into())
        );
        let l1 = List(Arc::new(Field::new("item", Int64, true)));
        let l2 = List(Arc::new(Field::new("item", Float64, true)));
        assert_eq!(widen(&l1, &l2), l2);
        assert_eq!(widen(&l1, &Int64), Utf8);
    }

    #[test]
    fn merges_columns_missing_from_some_files_as_nullable() {
        let a = Fields::from(vec![Field::new("id", DataType::Int32, false)]);
        let b = Fields::from(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("extra", DataType::Utf8, false),
        ]);
        let m = merge_fields(&a, &b);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].data_type(), &DataType::Int64);
        assert!(m.iter().all(|f| f.is_nullable()));
    }
}
