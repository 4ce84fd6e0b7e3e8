use std::path::PathBuf;

/// Errors from a catalog backend.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("cannot open catalog {}: {source}; check that the directory is writable or pass --catalog", path.display())]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },

    #[error("catalog store error while {action}")]
    Store {
        action: String,
        source: rusqlite::Error,
    },

    #[error("catalog entry {what} is not valid JSON; the catalog file may be damaged")]
    Corrupt {
        what: String,
        source: serde_json::Error,
    },

    #[error(
        "database '{database}' does not exist; crawl into it first (quarry crawl URL --database {database})"
    )]
    DatabaseNotFound { database: String },

    #[error(
        "table '{database}.{table}' does not exist; list tables with `quarry tables {database}`"
    )]
    TableNotFound { database: String, table: String },

    #[error(
        "partition {partition} of table '{table}' does not exist; list them with SHOW PARTITIONS {table}"
    )]
    PartitionNotFound {
        /// `db.table`.
        table: String,
        /// `(k='v', ...)` when the table's keys are known, else the values.
        partition: String,
    },

    #[error(
        "database '{database}' is not empty: it holds {}; drop those tables first or use DROP DATABASE {database} CASCADE",
        some_tables(.tables, .count)
    )]
    DatabaseNotEmpty {
        database: String,
        /// The first few tables, by name.
        tables: Vec<String>,
        /// How many tables it holds.
        count: usize,
    },

    #[error(
        "{what} was changed by another writer (expected version {expected:?}, found {found:?}); re-read and retry"
    )]
    Conflict {
        what: String,
        expected: Option<u64>,
        found: Option<u64>,
    },

    #[error("table '{table}' has no partition key '{key}'; its keys are: {keys}")]
    UnknownPartitionKey {
        table: String,
        key: String,
        keys: String,
    },

    #[error("partition key '{key}' of '{table}' is numeric; '{value}' is not a number")]
    BadPartitionValue {
        table: String,
        key: String,
        value: String,
    },

    #[error("catalog service error while {action}: {message}")]
    Remote { action: String, message: String },

    #[error(
        "crawling into the Glue catalog needs a place for crawl bookmarks; set QUARRY_STATE_LOCATION (e.g. s3://bucket/quarry-state/)"
    )]
    NoBookmarkStore,

    #[error(
        "this catalog cannot commit a job's bookmark with its output; commit it to the job store (SqliteCatalog::commit_job_parts) after the output"
    )]
    JobStateUnsupported,

    #[error(
        "run {run_id} of job '{job}' no longer holds the job's lease (another run took over): its output was not committed"
    )]
    JobLeaseLost { job: String, run_id: String },

    #[error("invalid type '{type_string}': {reason}")]
    InvalidType { type_string: String, reason: String },

    #[error(
        "partition of '{table}' has {found} values but the table has {expected} partition keys"
    )]
    PartitionArity {
        table: String,
        expected: usize,
        found: usize,
    },
}

/// "3 tables (a, b, c)" or "12 tables (a, b, c, ...)".
fn some_tables(tables: &[String], count: &usize) -> String {
    let count = *count;
    let noun = if count == 1 { "table" } else { "tables" };
    let more = if count > tables.len() { ", ..." } else { "" };
    format!("{count} {noun} ({}{more})", tables.join(", "))
}

/// A partition as `(k='v', k2=NULL)` when `keys` fit `values`, else its values alone
/// (`('v', NULL)`), for messages.
pub(crate) fn partition_spec(keys: &[crate::Column], values: &[Option<String>]) -> String {
    let value = |v: &Option<String>| match v {
        Some(v) => format!("'{}'", v.replace('\'', "''")),
        None => "NULL".to_string(),
    };
    let parts: Vec<String> = if keys.len() == values.len() {
        keys.iter()
            .zip(values)
            .map(|(k, v)| format!("{}={}", k.name, value(v)))
            .collect()
    } else {
        values.iter().map(value).collect()
    };
    format!("({})", parts.join(", "))
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) trait StoreContext<T> {
    fn ctx(self, action: &str) -> Result<T>;
}

impl<T> StoreContext<T> for std::result::Result<T, rusqlite::Error> {
    fn ctx(self, action: &str) -> Result<T> {
        self.map_err(|source| Error::Store {
            action: action.to_string(),
            source,
        })
    }
}
