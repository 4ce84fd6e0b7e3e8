//! Predicates on partition keys that a catalog answers from its index, without reading every
//! partition: `=`, `IN`, ranges and `IS NULL`, combined with AND.

use std::ops::Bound;

use serde::{Deserialize, Serialize};

/// How partition values of a key compare: numerically for integer keys, as text otherwise
/// (ISO dates and timestamps sort correctly as text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueOrder {
    Numeric,
    Text,
}

impl ValueOrder {
    pub fn for_hive_type(t: &str) -> Self {
        match t.to_ascii_lowercase().as_str() {
            "tinyint" | "smallint" | "int" | "integer" | "bigint" | "float" | "double" => {
                Self::Numeric
            }
            _ => Self::Text,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum KeyPredicate {
    /// `key = value`
    Eq(String),
    /// `key IN (values...)`
    In(Vec<String>),
    /// `low <= key <= high` with either side open or exclusive.
    Range {
        low: Bound<String>,
        high: Bound<String>,
    },
    /// `key IS NULL` (the default partition)
    IsNull,
    /// `key IS NOT NULL`
    IsNotNull,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyFilter {
    pub key: String,
    pub predicate: KeyPredicate,
}

/// A conjunction of key predicates; the empty filter selects every partition.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PartitionFilter {
    pub filters: Vec<KeyFilter>,
}

impl PartitionFilter {
    pub fn all() -> Self {
        Self::default()
    }

    pub fn and(mut self, key: impl Into<String>, predicate: KeyPredicate) -> Self {
        self.filters.push(KeyFilter {
            key: key.into(),
            predicate,
        });
        self
    }

    pub fn eq(self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.and(key, KeyPredicate::Eq(value.into()))
    }

    pub fn is_all(&self) -> bool {
        self.filters.is_empty()
    }
}

impl PartitionFilter {
    /// Whether a partition with `values` (one per key of `keys`, `None` = NULL) passes every
    /// predicate, with the same semantics as the embedded catalog's index: integer keys compare
    /// numerically, others as text, NULL matches only `IS NULL`. A predicate on a key the table
    /// does not have, or a non-numeric literal for a numeric key, is an error.
    pub fn matches(
        &self,
        table: &str,
        keys: &[crate::Column],
        values: &[Option<String>],
    ) -> crate::Result<bool> {
        for f in &self.filters {
            let idx = key_index(table, keys, &f.key)?;
            let order = ValueOrder::for_hive_type(&keys[idx].data_type);
            let value = values.get(idx).and_then(Option::as_deref);
            let cmp = |literal: &str| -> crate::Result<Option<std::cmp::Ordering>> {
                let Some(v) = value else { return Ok(None) };
                Ok(match order {
                    ValueOrder::Text => Some(v.cmp(literal)),
                    ValueOrder::Numeric => {
                        let lit =
                            number(literal).ok_or_else(|| crate::Error::BadPartitionValue {
                                table: table.to_string(),
                                key: keys[idx].name.clone(),
                                value: literal.to_string(),
                            })?;
                        // A stored value that is not a number never matches a comparison.
                        number(v).and_then(|n| n.partial_cmp(&lit))
                    }
                })
            };
            use std::cmp::Ordering::*;
            let ok = match &f.predicate {
                KeyPredicate::IsNull => value.is_none(),
                KeyPredicate::IsNotNull => value.is_some(),
                KeyPredicate::Eq(lit) => cmp(lit)? == Some(Equal),
                KeyPredicate::In(lits) => {
                    let mut any = false;
                    for lit in lits {
                        any |= cmp(lit)? == Some(Equal);
                    }
                    any
                }
                KeyPredicate::Range { low, high } => {
                    let low_ok = match low {
                        Bound::Unbounded => value.is_some(),
                        Bound::Included(l) => matches!(cmp(l)?, Some(Greater | Equal)),
                        Bound::Excluded(l) => cmp(l)? == Some(Greater),
                    };
                    let high_ok = match high {
                        Bound::Unbounded => value.is_some(),
                        Bound::Included(h) => matches!(cmp(h)?, Some(Less | Equal)),
                        Bound::Excluded(h) => cmp(h)? == Some(Less),
                    };
                    low_ok && high_ok
                }
            };
            if !ok {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// The position of `key` among `keys` (case-insensitive), or an error naming the keys there are.
pub fn key_index(table: &str, keys: &[crate::Column], key: &str) -> crate::Result<usize> {
    keys.iter()
        .position(|k| k.name.eq_ignore_ascii_case(key))
        .ok_or_else(|| crate::Error::UnknownPartitionKey {
            table: table.to_string(),
            key: key.to_string(),
            keys: keys
                .iter()
                .map(|k| k.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

fn number(s: &str) -> Option<f64> {
    s.parse::<f64>().ok().filter(|f| f.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Column;

    fn keys() -> Vec<Column> {
        vec![Column::new("dt", "string"), Column::new("hr", "int")]
    }

    fn m(f: &PartitionFilter, dt: Option<&str>, hr: Option<&str>) -> bool {
        f.matches("t", &keys(), &[dt.map(Into::into), hr.map(Into::into)])
            .expect("valid filter")
    }

    #[test]
    fn numeric_keys_compare_as_numbers_and_null_only_matches_is_null() {
        let gt2 = PartitionFilter::all().and(
            "hr",
            KeyPredicate::Range {
                low: Bound::Excluded("2".into()),
                high: Bound::Unbounded,
            },
        );
        assert!(m(&gt2, Some("a"), Some("10")));
        assert!(!m(&gt2, Some("a"), Some("2")));
        assert!(!m(&gt2, Some("a"), None));
        let null = PartitionFilter::all().and("HR", KeyPredicate::IsNull);
        assert!(m(&null, Some("a"), None));
        assert!(!m(&null, Some("a"), Some("1")));
        let text = PartitionFilter::all()
            .and("dt", KeyPredicate::In(vec!["b".into(), "c".into()]))
            .eq("hr", "01");
        assert!(m(&text, Some("c"), Some("1")), "01 = 1 numerically");
        assert!(!m(&text, Some("a"), Some("1")));
    }

    #[test]
    fn unknown_key_and_bad_literal_are_errors() {
        let f = PartitionFilter::all().eq("nope", "1");
        assert!(f.matches("t", &keys(), &[None, None]).is_err());
        let f = PartitionFilter::all().eq("hr", "ten");
        assert!(f.matches("t", &keys(), &[None, Some("1".into())]).is_err());
    }
}
