//! Query history: one record per statement, kept in the embedded catalog file.

use chrono::{DateTime, Utc};
use rusqlite::params;
use serde::{Deserialize, Serialize};

use crate::error::StoreContext;
use crate::{Error, Result, SqliteCatalog};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum QueryState {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl QueryState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "QUEUED",
            Self::Running => "RUNNING",
            Self::Succeeded => "SUCCEEDED",
            Self::Failed => "FAILED",
            Self::Cancelled => "CANCELLED",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryRecord {
    pub query_id: String,
    pub sql: String,
    pub database: Option<String>,
    pub state: QueryState,
    pub submitted_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub planning_ms: u64,
    pub execution_ms: u64,
    pub bytes_scanned: u64,
    pub billed_bytes: u64,
    pub cost_usd: f64,
    /// Rows returned, or for CTAS / INSERT / UNLOAD rows written (Athena's `UpdateCount`).
    pub rows: u64,
    pub error: Option<String>,
    /// Athena's error category of a failed statement (`USER`, `INTERNAL`, `RETRYABLE`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_category: Option<String>,
    /// `DML` (queries and writes), `DDL` or `UTILITY` (SHOW, DESCRIBE, EXPLAIN), as Athena.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statement_type: Option<String>,
    /// Files and bytes a CTAS / INSERT / UNLOAD wrote.
    #[serde(default)]
    pub files_written: u64,
    #[serde(default)]
    pub bytes_written: u64,
}

pub(crate) const HISTORY_SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS query_history (
    query_id     TEXT PRIMARY KEY,
    submitted_at TEXT NOT NULL,
    body         TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS query_history_time ON query_history (submitted_at);
"#;

impl SqliteCatalog {
    /// Insert or update a query's record.
    pub fn record_query(&self, q: &QueryRecord) -> Result<()> {
        let body = serde_json::to_string(q).map_err(|source| Error::Corrupt {
            what: "query record".into(),
            source,
        })?;
        self.with_conn(|conn| {
            conn.execute(
                "INSERT INTO query_history (query_id, submitted_at, body) VALUES (?1, ?2, ?3)
                 ON CONFLICT(query_id) DO UPDATE SET body = excluded.body",
                params![q.query_id, q.submitted_at.to_rfc3339(), body],
            )
            .ctx("recording query history")?;
            Ok(())
        })
    }

    /// The most recent `limit` queries, newest first.
    pub fn query_history(&self, limit: usize) -> Result<Vec<QueryRecord>> {
        self.with_conn(|conn| {
            let mut stmt = conn
                .prepare(
                    "SELECT body FROM query_history ORDER BY submitted_at DESC, rowid DESC LIMIT ?1",
                )
                .ctx("reading query history")?;
            let bodies = stmt
                .query_map(params![limit as i64], |r| r.get::<_, String>(0))
                .ctx("reading query history")?
                .collect::<rusqlite::Result<Vec<_>>>()
                .ctx("reading query history")?;
            bodies
                .iter()
                .map(|b| {
                    serde_json::from_str(b).map_err(|source| Error::Corrupt {
                        what: "query record".into(),
                        source,
                    })
                })
                .collect()
        })
    }
}
