//! Turn DataFusion filters on partition columns into a catalog [`PartitionFilter`], so the
//! catalog's index picks the partitions before anything is listed. The translation is sound
//! (it never drops a matching partition); filters it cannot express are left to DataFusion.

use std::ops::Bound;

use datafusion::common::ScalarValue;
use datafusion::logical_expr::{Between, BinaryExpr, Expr, Operator};
use quarry_catalog::{KeyPredicate, PartitionFilter};

/// The partition-key filter implied by `filters` (ANDed), for the given key names.
pub fn partition_filter(filters: &[Expr], keys: &[String]) -> PartitionFilter {
    let mut out = PartitionFilter::all();
    for f in filters {
        collect(f, keys, &mut out);
    }
    out
}

fn collect(expr: &Expr, keys: &[String], out: &mut PartitionFilter) {
    match expr {
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::And,
            right,
        }) => {
            collect(left, keys, out);
            collect(right, keys, out);
        }
        Expr::BinaryExpr(BinaryExpr {
            op: Operator::Or, ..
        }) => {
            // `k = a OR k = b OR k IN (c)` (DataFusion rewrites short IN lists this way).
            let mut key = None;
            let mut values = Vec::new();
            if or_values(expr, keys, &mut key, &mut values)
                && let Some(k) = key
            {
                *out = std::mem::take(out).and(k, KeyPredicate::In(values));
            }
        }
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            let (col, lit, op) = match (key_of(left, keys), literal(right)) {
                (Some(c), Some(l)) => (c, l, *op),
                _ => match (literal(left), key_of(right, keys)) {
                    (Some(l), Some(c)) => match op.swap() {
                        Some(swapped) => (c, l, swapped),
                        None => return,
                    },
                    _ => return,
                },
            };
            let Some(v) = lit else {
                return; // `= NULL` matches nothing, but is not ours to decide
            };
            let predicate = match op {
                Operator::Eq => KeyPredicate::Eq(v),
                Operator::Lt => KeyPredicate::Range {
                    low: Bound::Unbounded,
                    high: Bound::Excluded(v),
                },
                Operator::LtEq => KeyPredicate::Range {
                    low: Bound::Unbounded,
                    high: Bound::Included(v),
                },
                Operator::Gt => KeyPredicate::Range {
                    low: Bound::Excluded(v),
                    high: Bound::Unbounded,
                },
                Operator::GtEq => KeyPredicate::Range {
                    low: Bound::Included(v),
                    high: Bound::Unbounded,
                },
                _ => return,
            };
            *out = std::mem::take(out).and(col, predicate);
        }
        Expr::InList(list) if !list.negated => {
            let Some(col) = key_of(&list.expr, keys) else {
                return;
            };
            let values: Option<Vec<Option<String>>> = list.list.iter().map(literal).collect();
            if let Some(values) = values {
                let values = values.into_iter().flatten().collect();
                *out = std::mem::take(out).and(col, KeyPredicate::In(values));
            }
        }
        Expr::Between(Between {
            expr,
            negated: false,
            low,
            high,
        }) => {
            if let (Some(col), Some(Some(lo)), Some(Some(hi))) =
                (key_of(expr, keys), literal(low), literal(high))
            {
                *out = std::mem::take(out).and(
                    col,
                    KeyPredicate::Range {
                        low: Bound::Included(lo),
                        high: Bound::Included(hi),
                    },
                );
            }
        }
        Expr::IsNull(e) => {
            if let Some(col) = key_of(e, keys) {
                *out = std::mem::take(out).and(col, KeyPredicate::IsNull);
            }
        }
        Expr::IsNotNull(e) => {
            if let Some(col) = key_of(e, keys) {
                *out = std::mem::take(out).and(col, KeyPredicate::IsNotNull);
            }
        }
        _ => {}
    }
}

/// Collect the values of an OR of equalities on one key; false if it is anything else.
fn or_values(
    expr: &Expr,
    keys: &[String],
    key: &mut Option<String>,
    values: &mut Vec<String>,
) -> bool {
    let mut same_key = |k: String| match key {
        Some(existing) => *existing == k,
        None => {
            *key = Some(k);
            true
        }
    };
    match expr {
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::Or,
            right,
        }) => or_values(left, keys, key, values) && or_values(right, keys, key, values),
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::Eq,
            right,
        }) => {
            let (k, v) = match (key_of(left, keys), literal(right)) {
                (Some(k), Some(Some(v))) => (k, v),
                _ => match (literal(left), key_of(right, keys)) {
                    (Some(Some(v)), Some(k)) => (k, v),
                    _ => return false,
                },
            };
            values.push(v);
            same_key(k)
        }
        Expr::InList(list) if !list.negated => {
            let Some(k) = key_of(&list.expr, keys) else {
                return false;
            };
            for item in &list.list {
                match literal(item) {
                    Some(Some(v)) => values.push(v),
                    _ => return false,
                }
            }
            same_key(k)
        }
        _ => false,
    }
}

fn key_of(expr: &Expr, keys: &[String]) -> Option<String> {
    match expr {
        Expr::Column(c) if keys.iter().any(|k| k == &c.name) => Some(c.name.clone()),
        _ => None,
    }
}

/// A literal as the text a partition value is stored as; `Some(None)` for NULL.
fn literal(expr: &Expr) -> Option<Option<String>> {
    let Expr::Literal(v, _) = expr else {
        return None;
    };
    if v.is_null() {
        return Some(None);
    }
    Some(Some(match v {
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => s.clone(),
        ScalarValue::Int8(Some(_))
        | ScalarValue::Int16(Some(_))
        | ScalarValue::Int32(Some(_))
        | ScalarValue::Int64(Some(_))
        | ScalarValue::UInt8(Some(_))
        | ScalarValue::UInt16(Some(_))
        | ScalarValue::UInt32(Some(_))
        | ScalarValue::UInt64(Some(_))
        | ScalarValue::Date32(Some(_)) => v.to_string(),
        _ => return None,
    }))
}

#[cfg(test)]
mod tests {
    use datafusion::prelude::{col, lit};

    use super::*;

    fn keys() -> Vec<String> {
        vec!["dt".into(), "hr".into()]
    }

    #[test]
    fn translates_simple_predicates() {
        let f = partition_filter(
            &[col("dt").eq(lit("2024-01-01")).and(col("hr").gt_eq(lit(3)))],
            &keys(),
        );
        assert_eq!(f.filters.len(), 2);
        assert_eq!(
            f.filters[0].predicate,
            KeyPredicate::Eq("2024-01-01".into())
        );
        assert_eq!(
            f.filters[1].predicate,
            KeyPredicate::Range {
                low: Bound::Included("3".into()),
                high: Bound::Unbounded
            }
        );
        let f = partition_filter(&[lit(5).gt(col("hr"))], &keys());
        assert_eq!(
            f.filters[0].predicate,
            KeyPredicate::Range {
                low: Bound::Unbounded,
                high: Bound::Excluded("5".into())
            }
        );
        let f = partition_filter(&[col("hr").in_list(vec![lit(1), lit(2)], false)], &keys());
        assert_eq!(
            f.filters[0].predicate,
            KeyPredicate::In(vec!["1".into(), "2".into()])
        );
        let f = partition_filter(&[col("dt").is_null()], &keys());
        assert_eq!(f.filters[0].predicate, KeyPredicate::IsNull);
    }

    #[test]
    fn ors_of_equalities_on_one_key_are_in_lists() {
        let f = partition_filter(
            &[col("dt").eq(lit("a")).or(col("dt").eq(lit("b")))],
            &keys(),
        );
        assert_eq!(
            f.filters[0].predicate,
            KeyPredicate::In(vec!["a".into(), "b".into()])
        );
    }

    #[test]
    fn leaves_what_it_cannot_express() {
        let f = partition_filter(
            &[
                col("dt").eq(lit("a")).or(col("hr").eq(lit(1))),
                col("dt").eq(lit("a")).or(col("x").eq(lit(1))),
                col("x").eq(lit(1)),
                col("hr").not_eq(lit(1)),
                col("hr").in_list(vec![lit(1)], true),
            ],
            &keys(),
        );
        assert!(f.is_all());
    }
}
