//! The jobs' state in the embedded catalog file: runs, bookmarks, leases and write intents.
//!
//! Job bookmarks and write intents take part in catalog commits ([`crate::CatalogWrite`]'s
//! `job_bookmark` and `resolve_intents`), so a job's output, the bookmark that says which input
//! it came from, and the end of its intent are one SQLite transaction.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, TransactionBehavior, params};
use serde::{Deserialize, Serialize};

use crate::error::StoreContext;
use crate::sqlite::{from_json, to_json};
use crate::{Error, Result, SqliteCatalog};

/// A job run's state, as Glue names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum JobRunState {
    Starting,
    Running,
    Succeeded,
    Failed,
    Timeout,
    Stopped,
}

impl JobRunState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Starting => "STARTING",
            Self::Running => "RUNNING",
            Self::Succeeded => "SUCCEEDED",
            Self::Failed => "FAILED",
            Self::Timeout => "TIMEOUT",
            Self::Stopped => "STOPPED",
        }
    }

    /// Whether the run has ended.
    pub fn is_final(self) -> bool {
        !matches!(self, Self::Starting | Self::Running)
    }
}

/// One run of a job (all its attempts).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRun {
    pub run_id: String,
    pub job: String,
    /// What started it: `schedule`, `manual`, `missed` (a run the scheduler caught up on),
    /// `after <job>` (a conditional trigger) or `lambda`.
    pub trigger: String,
    pub state: JobRunState,
    /// Attempts made so far (1 for a run that did not retry).
    pub attempt: u32,
    /// Who ran it: the scheduler or process (`host:pid`).
    pub owner: String,
    pub started_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<DateTime<Utc>>,
    /// Rows written (or returned), summed over the run's statements.
    pub rows: u64,
    pub bytes_scanned: u64,
    pub bytes_written: u64,
    pub files_written: u64,
    pub cost_usd: f64,
    /// The query ids of the statements of the last attempt (see `system.query_history`).
    #[serde(default)]
    pub queries: Vec<String>,
    /// Objects of bookmarked tables this run processed.
    #[serde(default)]
    pub objects_processed: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// An object of a bookmarked source table that a job has processed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookmarkEntry {
    /// `db.table`.
    pub source: String,
    /// The object's URL.
    pub path: String,
    /// ETag, or the modification time where the store has none (the crawl's fingerprint).
    pub fingerprint: String,
}

/// A bookmark advance committed with a job's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookmarkAdvance {
    pub job: String,
    pub run_id: String,
    pub entries: Vec<BookmarkEntry>,
}

/// A write a job has started: its staging folder and, once known, the files it publishes. The
/// commit that registers them ends the intent in the same transaction; an intent still present
/// when the job runs again belongs to a run that died before committing, and its files go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteIntent {
    /// The statement's query id (it names the staging folder).
    pub id: String,
    pub job: String,
    pub run_id: String,
    pub created_at: DateTime<Utc>,
    /// The destination folder (table or UNLOAD location) whose `.quarry-staging-<id>*`
    /// folders are this write's.
    pub root: String,
    /// The URLs the files are published to.
    #[serde(default)]
    pub published: Vec<String>,
}

/// The scheduler's memory of a job: the last schedule time it handled, and when it first saw
/// the job (the anchor of `rate(..)` schedules).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSchedulerState {
    pub first_seen: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_fire: Option<DateTime<Utc>>,
    /// The end time of the newest upstream success an `after` trigger has acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_trigger: Option<DateTime<Utc>>,
}

pub(crate) const JOBS_SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS job_runs (
    run_id     TEXT PRIMARY KEY,
    job        TEXT NOT NULL,
    started_at TEXT NOT NULL,
    body       TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS job_runs_by_job ON job_runs (job, started_at);
CREATE TABLE IF NOT EXISTS job_bookmarks (
    job         TEXT NOT NULL,
    source      TEXT NOT NULL,
    path        TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    run_id      TEXT NOT NULL,
    PRIMARY KEY (job, source, path)
);
CREATE TABLE IF NOT EXISTS job_leases (
    job        TEXT PRIMARY KEY,
    owner      TEXT NOT NULL,
    run_id     TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS job_intents (
    id   TEXT PRIMARY KEY,
    job  TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS retired_files (
    url    TEXT PRIMARY KEY,
    due_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS retired_files_due ON retired_files (due_at);
CREATE TABLE IF NOT EXISTS job_state (
    job  TEXT PRIMARY KEY,
    body TEXT NOT NULL
);
"#;

fn write_run(conn: &rusqlite::Connection, run: &JobRun) -> Result<()> {
    conn.execute(
        "INSERT INTO job_runs (run_id, job, started_at, body) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(run_id) DO UPDATE SET body = excluded.body",
        params![
            run.run_id,
            run.job,
            run.started_at.to_rfc3339(),
            to_json("job run", run)?
        ],
    )
    .ctx("recording a job run")?;
    Ok(())
}

fn read_run(conn: &rusqlite::Connection, run_id: &str) -> Result<Option<JobRun>> {
    let body: Option<String> = conn
        .query_row(
            "SELECT body FROM job_runs WHERE run_id = ?1",
            params![run_id],
            |r| r.get(0),
        )
        .optional()
        .ctx("reading a job run")?;
    body.map(|b| from_json("job run", &b)).transpose()
}

/// Apply the job parts of a catalog write inside its transaction.
/// The pseudo-job whose write intents belong to statements outside job runs (no lease, no
/// bookmark): see `quarry_query::job::statement_scope`.
pub const STATEMENT_JOB: &str = "__statement__";

pub(crate) fn apply_job_parts(
    tx: &rusqlite::Transaction<'_>,
    bookmark: Option<&BookmarkAdvance>,
    resolve: &[String],
) -> Result<()> {
    // Only the run holding the job's lease may commit: one that lost it (paused, cut off from
    // the store, taken over by a scheduler that thought it dead) must not advance the bookmark
    // or end an intent whose files the new holder may be removing.
    let holds = |job: &str, run_id: &str| -> Result<()> {
        let expires: Option<String> = tx
            .query_row(
                "SELECT expires_at FROM job_leases WHERE job = ?1 AND run_id = ?2",
                params![job, run_id],
                |r| r.get(0),
            )
            .optional()
            .ctx("checking a job lease")?;
        let live = expires
            .and_then(|e| DateTime::parse_from_rfc3339(&e).ok())
            .is_some_and(|e| e.with_timezone(&Utc) > Utc::now());
        if live {
            Ok(())
        } else {
            Err(Error::JobLeaseLost {
                job: job.to_string(),
                run_id: run_id.to_string(),
            })
        }
    };
    for id in resolve {
        let body: Option<String> = tx
            .query_row(
                "SELECT body FROM job_intents WHERE id = ?1",
                params![id],
                |r| r.get(0),
            )
            .optional()
            .ctx("reading a write intent")?;
        let Some(body) = body else {
            return Err(Error::JobLeaseLost {
                job: String::new(),
                run_id: format!("of write {id}"),
            });
        };
        let intent: WriteIntent = from_json("write intent", &body)?;
        // A statement outside a job run has no lease: its intent still being here (not undone
        // by a process that found its writer dead) is what lets it commit.
        if intent.job != STATEMENT_JOB {
            holds(&intent.job, &intent.run_id)?;
        }
        tx.execute("DELETE FROM job_intents WHERE id = ?1", params![id])
            .ctx("ending a write intent")?;
    }
    if let Some(b) = bookmark {
        holds(&b.job, &b.run_id)?;
        let mut upsert = tx
            .prepare_cached(
                "INSERT INTO job_bookmarks (job, source, path, fingerprint, run_id)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(job, source, path) DO UPDATE SET
                     fingerprint = excluded.fingerprint, run_id = excluded.run_id",
            )
            .ctx("advancing a job bookmark")?;
        for e in &b.entries {
            upsert
                .execute(params![b.job, e.source, e.path, e.fingerprint, b.run_id])
                .ctx("advancing a job bookmark")?;
        }
    }
    Ok(())
}

/// What [`SqliteCatalog::acquire_job_lease`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum Lease {
    /// The lease is ours until the given time. `orphaned` is the run of a holder whose lease
    /// expired (it died or hung): it has been marked FAILED.
    Acquired { orphaned: Option<JobRun> },
    /// Someone else holds it.
    Held { owner: String, run_id: String },
}

impl SqliteCatalog {
    /// Insert or update a run.
    pub fn record_job_run(&self, run: &JobRun) -> Result<()> {
        self.with_conn(|conn| write_run(conn, run))
    }

    pub fn job_run(&self, run_id: &str) -> Result<Option<JobRun>> {
        self.with_conn(|conn| read_run(conn, run_id))
    }

    /// The most recent `limit` runs, of one job or of all, newest first.
    pub fn job_runs(&self, job: Option<&str>, limit: usize) -> Result<Vec<JobRun>> {
        self.with_conn(|conn| {
            let mut stmt = conn
                .prepare(
                    "SELECT body FROM job_runs WHERE (?1 IS NULL OR job = ?1)
                     ORDER BY started_at DESC, rowid DESC LIMIT ?2",
                )
                .ctx("reading job runs")?;
            let bodies = stmt
                .query_map(params![job, limit as i64], |r| r.get::<_, String>(0))
                .ctx("reading job runs")?
                .collect::<rusqlite::Result<Vec<String>>>()
                .ctx("reading job runs")?;
            bodies.iter().map(|b| from_json("job run", b)).collect()
        })
    }

    /// The objects of `source` (`db.table`) that `job` has processed: URL -> fingerprint.
    pub fn job_bookmark(&self, job: &str, source: &str) -> Result<HashMap<String, String>> {
        self.with_conn(|conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT path, fingerprint FROM job_bookmarks WHERE job = ?1 AND source = ?2",
                )
                .ctx("reading a job bookmark")?;
            stmt.query_map(params![job, source], |r| Ok((r.get(0)?, r.get(1)?)))
                .ctx("reading a job bookmark")?
                .collect::<rusqlite::Result<HashMap<String, String>>>()
                .ctx("reading a job bookmark")
        })
    }

    /// Per source table of `job`: objects processed.
    pub fn job_bookmark_sizes(&self, job: &str) -> Result<Vec<(String, u64)>> {
        self.with_conn(|conn| {
            let mut stmt = conn
                .prepare(
                    "SELECT source, count(*) FROM job_bookmarks WHERE job = ?1
                     GROUP BY source ORDER BY source",
                )
                .ctx("reading a job bookmark")?;
            stmt.query_map(params![job], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
            })
            .ctx("reading a job bookmark")?
            .collect::<rusqlite::Result<Vec<_>>>()
            .ctx("reading a job bookmark")
        })
    }

    /// Forget what `job` processed (Glue's `ResetJobBookmark`): its next run reads everything.
    /// Returns the number of objects forgotten.
    pub fn reset_job_bookmark(&self, job: &str) -> Result<u64> {
        self.with_conn(|conn| {
            let n = conn
                .execute("DELETE FROM job_bookmarks WHERE job = ?1", params![job])
                .ctx("resetting a job bookmark")?;
            Ok(n as u64)
        })
    }

    /// Commit a bookmark advance (and end write intents) on its own: for catalogs whose
    /// commits cannot carry it (Glue), right after the output's commit.
    pub fn commit_job_parts(
        &self,
        bookmark: Option<&BookmarkAdvance>,
        resolve: &[String],
    ) -> Result<()> {
        self.with_conn(|conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .ctx("starting a catalog transaction")?;
            apply_job_parts(&tx, bookmark, resolve)?;
            tx.commit().ctx("committing a job bookmark")
        })
    }

    /// Take `job`'s lease for `owner` and `run_id` until `expires_at`, unless another owner
    /// holds an unexpired one. A lease left by a holder that stopped renewing it is taken
    /// over, and that holder's run, if still STARTING or RUNNING, is marked FAILED.
    pub fn acquire_job_lease(
        &self,
        job: &str,
        owner: &str,
        run_id: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<Lease> {
        self.with_conn(|conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .ctx("starting a catalog transaction")?;
            let current: Option<(String, String, String)> = tx
                .query_row(
                    "SELECT owner, run_id, expires_at FROM job_leases WHERE job = ?1",
                    params![job],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()
                .ctx("reading a job lease")?;
            let mut orphaned = None;
            if let Some((holder, held_run, expires)) = current {
                let live = DateTime::parse_from_rfc3339(&expires)
                    .map(|t| t.with_timezone(&Utc) > now)
                    .unwrap_or(false);
                if live && holder != owner {
                    return Ok(Lease::Held {
                        owner: holder,
                        run_id: held_run,
                    });
                }
                if let Some(mut run) = read_run(&tx, &held_run)?
                    && !run.state.is_final()
                    && held_run != run_id
                {
                    run.state = JobRunState::Failed;
                    run.ended_at = Some(Utc::now());
                    run.error = Some(format!(
                        "{holder} stopped renewing its lease on the job (it died or hung); the run was abandoned"
                    ));
                    write_run(&tx, &run)?;
                    orphaned = Some(run);
                }
            }
            tx.execute(
                "INSERT INTO job_leases (job, owner, run_id, expires_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(job) DO UPDATE SET owner = excluded.owner, run_id = excluded.run_id,
                     expires_at = excluded.expires_at",
                params![job, owner, run_id, expires_at.to_rfc3339()],
            )
            .ctx("taking a job lease")?;
            tx.commit().ctx("taking a job lease")?;
            Ok(Lease::Acquired { orphaned })
        })
    }

    /// Extend a lease `owner` holds; false when it lost it (it expired and was taken).
    pub fn renew_job_lease(
        &self,
        job: &str,
        owner: &str,
        run_id: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<bool> {
        self.with_conn(|conn| {
            let n = conn
                .execute(
                    "UPDATE job_leases SET expires_at = ?4
                     WHERE job = ?1 AND owner = ?2 AND run_id = ?3",
                    params![job, owner, run_id, expires_at.to_rfc3339()],
                )
                .ctx("renewing a job lease")?;
            Ok(n == 1)
        })
    }

    pub fn release_job_lease(&self, job: &str, owner: &str, run_id: &str) -> Result<()> {
        self.with_conn(|conn| {
            conn.execute(
                "DELETE FROM job_leases WHERE job = ?1 AND owner = ?2 AND run_id = ?3",
                params![job, owner, run_id],
            )
            .ctx("releasing a job lease")?;
            Ok(())
        })
    }

    /// Record (or update) a write intent.
    pub fn record_write_intent(&self, intent: &WriteIntent) -> Result<()> {
        self.with_conn(|conn| {
            conn.execute(
                "INSERT INTO job_intents (id, job, body) VALUES (?1, ?2, ?3)
                 ON CONFLICT(id) DO UPDATE SET body = excluded.body",
                params![intent.id, intent.job, to_json("write intent", intent)?],
            )
            .ctx("recording a write intent")?;
            Ok(())
        })
    }

    /// The intents `job` left behind (writes that never committed).
    pub fn write_intents(&self, job: &str) -> Result<Vec<WriteIntent>> {
        self.with_conn(|conn| {
            let mut stmt = conn
                .prepare("SELECT body FROM job_intents WHERE job = ?1 ORDER BY id")
                .ctx("reading write intents")?;
            let bodies = stmt
                .query_map(params![job], |r| r.get::<_, String>(0))
                .ctx("reading write intents")?
                .collect::<rusqlite::Result<Vec<String>>>()
                .ctx("reading write intents")?;
            bodies
                .iter()
                .map(|b| from_json("write intent", b))
                .collect()
        })
    }

    /// Forget an intent whose files recovery has removed.
    pub fn remove_write_intent(&self, id: &str) -> Result<()> {
        self.with_conn(|conn| {
            conn.execute("DELETE FROM job_intents WHERE id = ?1", params![id])
                .ctx("forgetting a write intent")?;
            Ok(())
        })
    }

    /// Every open intent, of every job: files published but not committed (compaction must
    /// leave them alone).
    pub fn all_write_intents(&self) -> Result<Vec<WriteIntent>> {
        self.with_conn(|conn| {
            let mut stmt = conn
                .prepare("SELECT body FROM job_intents ORDER BY id")
                .ctx("reading write intents")?;
            let bodies = stmt
                .query_map([], |r| r.get::<_, String>(0))
                .ctx("reading write intents")?
                .collect::<rusqlite::Result<Vec<String>>>()
                .ctx("reading write intents")?;
            bodies
                .iter()
                .map(|b| from_json("write intent", b))
                .collect()
        })
    }

    /// Jobs whose bookmarks read `source` (`db.table`).
    pub fn jobs_bookmarking(&self, source: &str) -> Result<Vec<String>> {
        self.with_conn(|conn| {
            let mut stmt = conn
                .prepare("SELECT DISTINCT job FROM job_bookmarks WHERE source = ?1 ORDER BY job")
                .ctx("reading job bookmarks")?;
            stmt.query_map(params![source.to_ascii_lowercase()], |r| r.get(0))
                .ctx("reading job bookmarks")?
                .collect::<rusqlite::Result<Vec<String>>>()
                .ctx("reading job bookmarks")
        })
    }

    /// Files a compaction replaced, to delete at `due` (readers that listed them before the
    /// switch may still be reading them until then).
    pub fn retire_files(&self, urls: &[String], due: DateTime<Utc>) -> Result<()> {
        self.with_conn(|conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .ctx("starting a catalog transaction")?;
            {
                let mut insert = tx
                    .prepare_cached(
                        "INSERT INTO retired_files (url, due_at) VALUES (?1, ?2)
                         ON CONFLICT(url) DO UPDATE SET due_at = excluded.due_at",
                    )
                    .ctx("recording replaced files")?;
                for u in urls {
                    insert
                        .execute(params![u, due.to_rfc3339()])
                        .ctx("recording replaced files")?;
                }
            }
            tx.commit().ctx("recording replaced files")
        })
    }

    /// Replaced files whose grace period has passed.
    pub fn due_retired_files(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<String>> {
        self.with_conn(|conn| {
            let mut stmt = conn
                .prepare(
                    "SELECT url FROM retired_files WHERE due_at <= ?1 ORDER BY due_at LIMIT ?2",
                )
                .ctx("reading replaced files")?;
            stmt.query_map(params![now.to_rfc3339(), limit as i64], |r| r.get(0))
                .ctx("reading replaced files")?
                .collect::<rusqlite::Result<Vec<String>>>()
                .ctx("reading replaced files")
        })
    }

    pub fn forget_retired_files(&self, urls: &[String]) -> Result<()> {
        self.with_conn(|conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .ctx("starting a catalog transaction")?;
            for u in urls {
                tx.execute("DELETE FROM retired_files WHERE url = ?1", params![u])
                    .ctx("forgetting replaced files")?;
            }
            tx.commit().ctx("forgetting replaced files")
        })
    }

    /// Read `job`'s scheduler state (created with `first_seen = now` when missing) and let
    /// `change` update it, in one transaction: two schedulers deciding on the same fire time
    /// see each other's claim, and only one `change` returns true for it. Returns the state
    /// and whether `change` changed it.
    pub fn update_job_scheduler_state(
        &self,
        job: &str,
        now: DateTime<Utc>,
        change: impl FnOnce(&mut JobSchedulerState) -> bool,
    ) -> Result<(JobSchedulerState, bool)> {
        self.with_conn(|conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .ctx("starting a catalog transaction")?;
            let body: Option<String> = tx
                .query_row(
                    "SELECT body FROM job_state WHERE job = ?1",
                    params![job],
                    |r| r.get(0),
                )
                .optional()
                .ctx("reading a job's schedule state")?;
            let (mut state, fresh) = match body {
                Some(b) => (from_json::<JobSchedulerState>("job state", &b)?, false),
                None => (
                    JobSchedulerState {
                        first_seen: now,
                        last_fire: None,
                        last_trigger: None,
                    },
                    true,
                ),
            };
            let changed = change(&mut state);
            if changed || fresh {
                tx.execute(
                    "INSERT INTO job_state (job, body) VALUES (?1, ?2)
                     ON CONFLICT(job) DO UPDATE SET body = excluded.body",
                    params![job, to_json("job state", &state)?],
                )
                .ctx("recording a job's schedule state")?;
            }
            tx.commit().ctx("recording a job's schedule state")?;
            Ok((state, changed))
        })
    }

    /// Leases that expired before `now` (their holder died or hung): removed, and their runs,
    /// if still STARTING or RUNNING, marked FAILED. Returns those runs.
    pub fn reap_expired_job_leases(&self, now: DateTime<Utc>) -> Result<Vec<JobRun>> {
        self.with_conn(|conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .ctx("starting a catalog transaction")?;
            let expired: Vec<(String, String, String, String)> = {
                let mut stmt = tx
                    .prepare("SELECT job, owner, run_id, expires_at FROM job_leases")
                    .ctx("reading job leases")?;
                stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                    .ctx("reading job leases")?
                    .collect::<rusqlite::Result<Vec<_>>>()
                    .ctx("reading job leases")?
            };
            let mut failed = Vec::new();
            for (job, owner, run_id, expires) in expired {
                let live = DateTime::parse_from_rfc3339(&expires)
                    .map(|t| t.with_timezone(&Utc) > now)
                    .unwrap_or(false);
                if live {
                    continue;
                }
                tx.execute(
                    "DELETE FROM job_leases WHERE job = ?1 AND run_id = ?2",
                    params![job, run_id],
                )
                .ctx("removing an expired job lease")?;
                if let Some(mut run) = read_run(&tx, &run_id)?
                    && !run.state.is_final()
                {
                    run.state = JobRunState::Failed;
                    run.ended_at = Some(Utc::now());
                    run.error = Some(format!(
                        "{owner} stopped renewing its lease on the job (it died or hung); the run was abandoned"
                    ));
                    write_run(&tx, &run)?;
                    failed.push(run);
                }
            }
            tx.commit().ctx("removing expired job leases")?;
            Ok(failed)
        })
    }

    pub fn job_scheduler_state(&self, job: &str) -> Result<Option<JobSchedulerState>> {
        self.with_conn(|conn| {
            let body: Option<String> = conn
                .query_row(
                    "SELECT body FROM job_state WHERE job = ?1",
                    params![job],
                    |r| r.get(0),
                )
                .optional()
                .ctx("reading a job's schedule state")?;
            body.map(|b| from_json("job state", &b)).transpose()
        })
    }

    pub fn set_job_scheduler_state(&self, job: &str, state: &JobSchedulerState) -> Result<()> {
        self.with_conn(|conn| {
            conn.execute(
                "INSERT INTO job_state (job, body) VALUES (?1, ?2)
                 ON CONFLICT(job) DO UPDATE SET body = excluded.body",
                params![job, to_json("job state", state)?],
            )
            .ctx("recording a job's schedule state")?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;
    use crate::{Catalog, CatalogWrite, Database};

    fn run(id: &str, job: &str, state: JobRunState) -> JobRun {
        JobRun {
            run_id: id.into(),
            job: job.into(),
            trigger: "manual".into(),
            state,
            attempt: 1,
            owner: "a".into(),
            started_at: Utc::now(),
            ended_at: None,
            rows: 0,
            bytes_scanned: 0,
            bytes_written: 0,
            files_written: 0,
            cost_usd: 0.0,
            queries: Vec::new(),
            objects_processed: 0,
            error: None,
        }
    }

    #[test]
    fn one_holder_at_a_time_and_a_dead_holders_run_fails() {
        let c = SqliteCatalog::open_in_memory().unwrap();
        let now = Utc::now();
        c.record_job_run(&run("r1", "j", JobRunState::Running))
            .unwrap();
        let first = c
            .acquire_job_lease("j", "a", "r1", now, now + Duration::seconds(30))
            .unwrap();
        assert_eq!(first, Lease::Acquired { orphaned: None });
        let second = c
            .acquire_job_lease("j", "b", "r2", now, now + Duration::seconds(30))
            .unwrap();
        assert_eq!(
            second,
            Lease::Held {
                owner: "a".into(),
                run_id: "r1".into()
            }
        );
        // a stops renewing; after expiry b takes over and a's run is failed.
        let later = now + Duration::seconds(31);
        assert!(!c.renew_job_lease("j", "b", "r2", later).unwrap());
        match c
            .acquire_job_lease("j", "b", "r2", later, later + Duration::seconds(30))
            .unwrap()
        {
            Lease::Acquired { orphaned: Some(r) } => assert_eq!(r.run_id, "r1"),
            other => panic!("{other:?}"),
        }
        let r1 = c.job_run("r1").unwrap().unwrap();
        assert_eq!(r1.state, JobRunState::Failed);
        assert!(r1.error.unwrap().contains("stopped renewing"));
        assert!(!c.renew_job_lease("j", "a", "r1", later).unwrap());
        c.release_job_lease("j", "b", "r2").unwrap();
        assert!(matches!(
            c.acquire_job_lease("j", "a", "r3", later, later + Duration::seconds(1))
                .unwrap(),
            Lease::Acquired { orphaned: None }
        ));
    }

    #[tokio::test]
    async fn bookmarks_advance_only_with_the_commit_that_carries_them() {
        let c = SqliteCatalog::open_in_memory().unwrap();
        let intent = WriteIntent {
            id: "q1".into(),
            job: "j".into(),
            run_id: "r1".into(),
            created_at: Utc::now(),
            root: "file:///t/".into(),
            published: vec!["file:///t/a.parquet".into()],
        };
        c.record_write_intent(&intent).unwrap();
        let advance = BookmarkAdvance {
            job: "j".into(),
            run_id: "r1".into(),
            entries: vec![BookmarkEntry {
                source: "raw.s".into(),
                path: "file:///raw/s/1.csv".into(),
                fingerprint: "e1".into(),
            }],
        };
        // A write that fails (its database is missing) advances nothing and keeps the intent.
        let failing = CatalogWrite {
            tables: vec![crate::TableWrite {
                table: crate::Table {
                    database: "missing".into(),
                    name: "t".into(),
                    description: None,
                    table_type: "EXTERNAL_TABLE".into(),
                    view: None,
                    storage: Default::default(),
                    partition_keys: Vec::new(),
                    parameters: Default::default(),
                    create_time: Utc::now(),
                    update_time: Utc::now(),
                    version: 0,
                },
                expected_version: None,
            }],
            job_bookmark: Some(advance.clone()),
            resolve_intents: vec!["q1".into()],
            ..Default::default()
        };
        assert!(c.commit(failing).await.is_err());
        assert!(c.job_bookmark("j", "raw.s").unwrap().is_empty());
        assert_eq!(c.write_intents("j").unwrap(), vec![intent]);

        let ok = CatalogWrite {
            databases: vec![Database::new("d")],
            job_bookmark: Some(advance),
            resolve_intents: vec!["q1".into()],
            ..Default::default()
        };
        // Without the job's lease, the run may not commit.
        match c.commit(ok.clone()).await {
            Err(Error::JobLeaseLost { .. }) => {}
            other => panic!("{other:?}"),
        }
        assert!(c.get_database("d").await.unwrap().is_none());
        let now = Utc::now();
        c.acquire_job_lease("j", "a", "r1", now, now + chrono::Duration::seconds(30))
            .unwrap();
        c.commit(ok).await.unwrap();
        let b = c.job_bookmark("j", "raw.s").unwrap();
        assert_eq!(b.get("file:///raw/s/1.csv").map(String::as_str), Some("e1"));
        assert!(c.write_intents("j").unwrap().is_empty());
        assert_eq!(
            c.job_bookmark_sizes("j").unwrap(),
            vec![("raw.s".to_string(), 1)]
        );
        assert_eq!(c.reset_job_bookmark("j").unwrap(), 1);
        assert!(c.job_bookmark("j", "raw.s").unwrap().is_empty());
    }
}
