//! The catalog model, shaped like the AWS Glue Data Catalog so every object maps 1:1 to Glue.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Free-form `key -> value` parameters, as Glue keeps them on databases, tables and partitions.
pub type Parameters = BTreeMap<String, String>;

/// Well-known parameter keys (the ones Glue's own crawler writes).
pub mod keys {
    pub const CLASSIFICATION: &str = "classification";
    pub const COMPRESSION_TYPE: &str = "compressionType";
    pub const RECORD_COUNT: &str = "recordCount";
    pub const SIZE_KEY: &str = "sizeKey";
    pub const OBJECT_COUNT: &str = "objectCount";
    pub const AVERAGE_RECORD_SIZE: &str = "averageRecordSize";
    pub const TYPE_OF_DATA: &str = "typeOfData";
    pub const DELIMITER: &str = "delimiter";
    pub const SKIP_HEADER: &str = "skip.header.line.count";
    pub const CRAWLER_UPDATED: &str = "quarry.crawlerUpdatedAt";
    /// When `ANALYZE` last stored column statistics for the table (RFC 3339): readers look
    /// statistics up only for tables that have it.
    pub const ANALYZED: &str = "quarry.analyzedAt";
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Database {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default)]
    pub parameters: Parameters,
    pub create_time: DateTime<Utc>,
}

impl Database {
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            description: None,
            location: None,
            parameters: Parameters::new(),
            create_time: Utc::now(),
        }
    }
}

/// A column: a name and a Hive type string (`bigint`, `array<string>`, `struct<a:int>`), as in Glue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    #[serde(rename = "type")]
    pub data_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

impl Column {
    pub fn new(name: impl Into<String>, data_type: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            data_type: data_type.into(),
            comment: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SerDeInfo {
    pub serialization_library: String,
    #[serde(default)]
    pub parameters: Parameters,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct StorageDescriptor {
    /// Table root, e.g. `s3://bucket/sales/` or `file:///data/sales/`.
    pub location: String,
    pub columns: Vec<Column>,
    pub input_format: String,
    pub output_format: String,
    pub serde_info: SerDeInfo,
    pub compressed: bool,
    #[serde(default)]
    pub parameters: Parameters,
}

/// The data formats Quarry reads; stored as the table's `classification` parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Classification {
    Parquet,
    Csv,
    Json,
}

impl Classification {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Parquet => "parquet",
            Self::Csv => "csv",
            Self::Json => "json",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "parquet" => Some(Self::Parquet),
            "csv" => Some(Self::Csv),
            "json" => Some(Self::Json),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Table {
    pub database: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub table_type: String,
    /// A view's text (`TableType` `VIRTUAL_VIEW`), as Glue keeps it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub view: Option<ViewText>,
    pub storage: StorageDescriptor,
    pub partition_keys: Vec<Column>,
    pub parameters: Parameters,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
    /// Optimistic-concurrency version, like Glue's `VersionId`: bumped by every write.
    #[serde(default)]
    pub version: u64,
}

/// Glue's `ViewOriginalText` and `ViewExpandedText` (Athena writes `/* Presto View: <base64
/// JSON> */` and `/* Presto View */`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewText {
    pub original: String,
    pub expanded: String,
}

/// Glue's table type of a view.
pub const VIRTUAL_VIEW: &str = "VIRTUAL_VIEW";

impl Table {
    /// Whether this is a view (`TableType` `VIRTUAL_VIEW`).
    pub fn is_view(&self) -> bool {
        self.table_type.eq_ignore_ascii_case(VIRTUAL_VIEW)
    }

    pub fn classification(&self) -> Option<Classification> {
        self.parameters
            .get(keys::CLASSIFICATION)
            .and_then(|c| Classification::parse(c))
    }

    pub fn qualified_name(&self) -> String {
        format!("{}.{}", self.database, self.name)
    }

    /// A numeric table parameter such as `recordCount`, if present and valid.
    pub fn stat(&self, key: &str) -> Option<u64> {
        self.parameters.get(key).and_then(|v| v.parse().ok())
    }

    /// The position of partition key `key` (case-insensitive), or an error naming the keys.
    pub fn partition_key_index(&self, key: &str) -> crate::Result<usize> {
        crate::filter::key_index(&self.qualified_name(), &self.partition_keys, key)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Partition {
    /// One value per partition key, in key order; `None` is SQL NULL (Hive's
    /// `__HIVE_DEFAULT_PARTITION__`).
    pub values: Vec<Option<String>>,
    /// Where the partition's files live (may be anywhere, not only under the table).
    pub location: String,
    pub parameters: Parameters,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
    #[serde(default)]
    pub version: u64,
}

impl Partition {
    /// A new partition (version 0, no parameters yet) at `location`.
    pub fn new(values: Vec<Option<String>>, location: impl Into<String>) -> Self {
        let now = Utc::now();
        Self {
            values,
            location: location.into(),
            parameters: Parameters::new(),
            create_time: now,
            update_time: now,
            version: 0,
        }
    }

    pub fn stat(&self, key: &str) -> Option<u64> {
        self.parameters.get(key).and_then(|v| v.parse().ok())
    }
}

/// An object the crawler has already inspected, so a re-crawl can skip it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeenObject {
    pub path: String,
    pub size: u64,
    /// ETag where the store has one, otherwise the modification time.
    pub fingerprint: String,
    /// `db.table` it was assigned to, or `None` when it was skipped.
    pub table: Option<String>,
    /// Rows, where the crawl knew them exactly.
    pub rows: Option<u64>,
    /// A Parquet object's footer (the thrift `FileMetaData`, without the 8-byte trailer) as the
    /// crawl read it, so queries need not read it again while the object is unchanged. Only the
    /// embedded catalog keeps it, and only [`crate::Catalog::objects`] returns it.
    #[serde(skip)]
    pub footer: Option<Vec<u8>>,
}
