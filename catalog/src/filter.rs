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
