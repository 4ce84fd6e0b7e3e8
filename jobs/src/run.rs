//! Running a job once: the lease that keeps it to one run at a time, the clean-up of what a
//! dead run left, attempts with retries and backoff, the timeout, and the run's record.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use quarry_catalog::{Catalog, JobRun, JobRunState, Lease, SqliteCatalog};
use quarry_crawler::{CrawlConfig, Crawler, SchemaPolicy};
use quarry_lake::{Location, ObjectStores};
use quarry_query::statement::Statement;
use quarry_query::{Engine, EngineConfig, JobScope, Meter, QueryRequest, split_statements};
use tokio::sync::watch;

use crate::compact::{CompactOptions, compact};
use crate::error::{Error, Result};
use crate::spec::{Job, JobKind};

/// Why a run is being stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// Not stopped.
    None,
    /// Its timeout passed.
    Timeout,
    /// The scheduler is shutting down (or the user pressed Ctrl-C).
    Stopped,
    /// Another process took the job's lease (this one stopped renewing it in time).
    LeaseLost,
}

/// What a run reports while it works (for progress bars).
#[derive(Debug, Clone)]
pub enum Progress {
    Attempt {
        attempt: u32,
        of: u32,
    },
    Statement {
        index: usize,
        total: usize,
        sql: String,
        meter: Arc<Meter>,
    },
    Step(String),
}

pub type ProgressFn = Arc<dyn Fn(Progress) + Send + Sync>;

/// How to run a job this time.
#[derive(Clone, Default)]
pub struct RunOptions {
    /// What started it (`manual`, `schedule`, `missed`, `after <job>`, `lambda`).
    pub trigger: String,
    /// Read every object of bookmarked tables and leave the bookmark as it is (Glue's
    /// `job-bookmark-disable`).
    pub no_bookmark: bool,
    pub progress: Option<ProgressFn>,
}

/// Everything runs need: the data catalog, the job store (the embedded catalog file: runs,
/// bookmarks, leases), object stores and the engine's settings. When the data catalog is the
/// embedded one, `store` must be the same file, so that bookmarks commit with the output.
#[derive(Clone)]
pub struct JobRuntime {
    pub catalog: Arc<dyn Catalog>,
    pub store: Arc<SqliteCatalog>,
    pub stores: Arc<ObjectStores>,
    pub config: EngineConfig,
    /// Who runs jobs here: `host:pid` by default.
    pub owner: String,
    /// How long a lease lasts without renewal; renewed every third of it.
    pub lease: Duration,
}

impl std::fmt::Debug for JobRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobRuntime")
            .field("owner", &self.owner)
            .finish()
    }
}

/// `host:pid`, naming this process in leases and runs.
pub fn process_owner() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    format!("{host}:{}", std::process::id())
}

/// Whether `owner` (`host:pid`) is a process of this machine that no longer exists: its lease
/// need not be waited for.
fn dead_local_owner(owner: &str) -> bool {
    let mine = process_owner();
    let (Some((host, pid)), Some((my_host, _))) = (owner.rsplit_once(':'), mine.rsplit_once(':'))
    else {
        return false;
    };
    host == my_host
        && pid.parse::<u32>().is_ok()
        && std::path::Path::new("/proc/self").exists()
        && !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// One attempt's failure.
struct AttemptError {
    message: String,
    stop: StopReason,
}

impl JobRuntime {
    pub fn new(
        catalog: Arc<dyn Catalog>,
        store: Arc<SqliteCatalog>,
        stores: Arc<ObjectStores>,
        config: EngineConfig,
    ) -> Self {
        Self {
            catalog,
            store,
            stores,
            config,
            owner: process_owner(),
            lease: Duration::from_secs(60),
        }
    }

    fn lease_until(&self) -> chrono::DateTime<Utc> {
        let now = Utc::now();
        chrono::Duration::from_std(self.lease)
            .ok()
            .and_then(|d| now.checked_add_signed(d))
            .unwrap_or(chrono::DateTime::<Utc>::MAX_UTC)
    }

    /// Run `job` now, to its end: SUCCEEDED, FAILED (after its retries), TIMEOUT or STOPPED
    /// (when `stop` turns true). Fails without running when another run of the job holds its
    /// lease ([`Error::AlreadyRunning`]).
    pub async fn run(
        &self,
        job: &Job,
        options: RunOptions,
        mut stop: watch::Receiver<bool>,
    ) -> Result<JobRun> {
        let name = job.name().to_string();
        let run_id = format!(
            "jr_{}",
            uuid::Uuid::new_v4()
                .simple()
                .to_string()
                .get(..20)
                .unwrap_or("0")
        );
        let now = Utc::now();
        let mut lease =
            self.store
                .acquire_job_lease(&name, &self.owner, &run_id, now, self.lease_until())?;
        if let Lease::Held { owner, .. } = &lease
            && dead_local_owner(owner)
        {
            // The holder was a process of this machine that is gone (killed): take over now
            // rather than waiting for its lease to run out.
            lease = self.store.acquire_job_lease(
                &name,
                &self.owner,
                &run_id,
                chrono::DateTime::<Utc>::MAX_UTC,
                self.lease_until(),
            )?;
        }
        if let Lease::Held { owner, run_id } = lease {
            return Err(Error::AlreadyRunning {
                job: name,
                owner,
                run_id,
            });
        }
        let mut run = JobRun {
            run_id: run_id.clone(),
            job: name.clone(),
            trigger: if options.trigger.is_empty() {
                "manual".into()
            } else {
                options.trigger.clone()
            },
            state: JobRunState::Starting,
            attempt: 0,
            owner: self.owner.clone(),
            started_at: now,
            ended_at: None,
            rows: 0,
            bytes_scanned: 0,
            bytes_written: 0,
            files_written: 0,
            cost_usd: 0.0,
            queries: Vec::new(),
            objects_processed: 0,
            error: None,
        };
        self.store.record_job_run(&run)?;

        // Renew the lease while the run lasts; losing it stops the run.
        let (reason_tx, reason_rx) = watch::channel(StopReason::None);
        let reason_tx = Arc::new(reason_tx);
        let renew = {
            let store = Arc::clone(&self.store);
            let (job_name, owner, id) = (name.clone(), self.owner.clone(), run_id.clone());
            let every = self.lease / 3;
            let lease = self.lease;
            let reason = Arc::clone(&reason_tx);
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    let now = Utc::now();
                    let until = chrono::Duration::from_std(lease)
                        .ok()
                        .and_then(|d| now.checked_add_signed(d))
                        .unwrap_or(chrono::DateTime::<Utc>::MAX_UTC);
                    match store.renew_job_lease(&job_name, &owner, &id, until) {
                        Ok(true) => {}
                        Ok(false) => {
                            reason.send_replace(StopReason::LeaseLost);
                            return;
                        }
                        // A busy store: try again at the next beat.
                        Err(_) => {}
                    }
                }
            })
        };
        let forward = {
            let reason = Arc::clone(&reason_tx);
            tokio::spawn(async move {
                if stop.wait_for(|s| *s).await.is_ok() {
                    reason.send_if_modified(|r| {
                        if *r == StopReason::None {
                            *r = StopReason::Stopped;
                            true
                        } else {
                            false
                        }
                    });
                }
            })
        };

        let result = self
            .attempts(job, &options, &mut run, &reason_tx, reason_rx)
            .await;
        renew.abort();
        forward.abort();
        quarry_lake::failpoint("job.finished");
        run.ended_at = Some(Utc::now());
        match result {
            Ok(()) => {
                run.state = JobRunState::Succeeded;
                run.error = None;
            }
            Err(e) => {
                run.state = match e.stop {
                    StopReason::Timeout => JobRunState::Timeout,
                    StopReason::Stopped => JobRunState::Stopped,
                    StopReason::LeaseLost | StopReason::None => JobRunState::Failed,
                };
                run.error = Some(e.message);
            }
        }
        self.store.record_job_run(&run)?;
        self.store.release_job_lease(&name, &self.owner, &run_id)?;
        Ok(run)
    }

    async fn attempts(
        &self,
        job: &Job,
        options: &RunOptions,
        run: &mut JobRun,
        reason_tx: &Arc<watch::Sender<StopReason>>,
        reason: watch::Receiver<StopReason>,
    ) -> std::result::Result<(), AttemptError> {
        let total = job.spec.max_retries.saturating_add(1);
        let mut delay = job.retry_delay;
        for attempt in 1..=total {
            run.attempt = attempt;
            run.state = JobRunState::Running;
            let _ = self.store.record_job_run(run);
            if let Some(p) = &options.progress {
                p(Progress::Attempt { attempt, of: total });
            }
            // A timeout per attempt.
            let timer = job.timeout.map(|t| {
                let reason = Arc::clone(reason_tx);
                tokio::spawn(async move {
                    tokio::time::sleep(t).await;
                    reason.send_if_modified(|r| {
                        if *r == StopReason::None {
                            *r = StopReason::Timeout;
                            true
                        } else {
                            false
                        }
                    });
                })
            });
            let result = self.attempt(job, options, run, reason.clone()).await;
            if let Some(t) = timer {
                t.abort();
            }
            let err = match result {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            let stopped = *reason.borrow();
            if stopped != StopReason::None || attempt == total {
                return Err(AttemptError {
                    stop: stopped,
                    message: match stopped {
                        StopReason::Timeout => format!(
                            "timed out after {} (timeout = \"{}\"): {}",
                            human_duration(job.timeout.unwrap_or_default()),
                            job.spec.timeout.as_deref().unwrap_or(""),
                            err.message
                        ),
                        _ => err.message,
                    },
                });
            }
            run.error = Some(format!("attempt {attempt} failed: {}", err.message));
            let _ = self.store.record_job_run(run);
            let mut wait = reason.clone();
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                _ = wait.wait_for(|r| *r != StopReason::None) => {
                    return Err(AttemptError { stop: *reason.borrow(), message: err.message });
                }
            }
            delay = delay.saturating_mul(2);
        }
        Err(AttemptError {
            message: "no attempt ran".into(),
            stop: StopReason::None,
        })
    }

    /// Remove what earlier runs of `job` staged or published but never committed. Returns the
    /// number of writes cleaned up.
    pub async fn recover(&self, job: &str) -> Result<usize> {
        let intents = self.store.write_intents(job)?;
        for intent in &intents {
            quarry_query::job::undo_write(&self.stores, intent).await?;
            self.store.remove_write_intent(&intent.id)?;
        }
        Ok(intents.len())
    }

    async fn attempt(
        &self,
        job: &Job,
        options: &RunOptions,
        run: &mut JobRun,
        reason: watch::Receiver<StopReason>,
    ) -> std::result::Result<(), AttemptError> {
        let fail = |e: Error| AttemptError {
            // With its causes: a run's error must say what failed underneath (the storage
            // fault behind "listing .. failed").
            message: quarry_query::error_chain(&e),
            stop: StopReason::None,
        };
        self.recover(job.name()).await.map_err(fail)?;
        match job.spec.kind {
            JobKind::Sql => self.attempt_sql(job, options, run, reason).await,
            JobKind::Crawl => self.attempt_crawl(job, options).await.map_err(fail),
            JobKind::Compact => {
                let spec = &job.spec;
                let table = spec.table.clone().unwrap_or_default();
                let opts = CompactOptions {
                    target_file_size: spec
                        .target_file_size
                        .map(|b| b.0)
                        .unwrap_or(self.config.target_file_size),
                    sort: spec.sort.clone(),
                    convert: spec.convert,
                    min_files: spec.min_files.unwrap_or(2),
                    partition: spec.partition.clone(),
                    grace: job.grace,
                    progress: options.progress.clone(),
                };
                let report = compact(
                    &self.catalog,
                    &self.stores,
                    &self.store,
                    &self.config,
                    &table,
                    &opts,
                    &run.run_id,
                )
                .await
                .map_err(fail)?;
                run.rows = report.rows;
                run.bytes_scanned = report.bytes_before;
                run.bytes_written = report.bytes_after;
                run.files_written = report.files_after;
                Ok(())
            }
        }
    }

    async fn attempt_crawl(&self, job: &Job, options: &RunOptions) -> Result<()> {
        let spec = &job.spec;
        let mut config = CrawlConfig::new(spec.database.clone().unwrap_or_default());
        config.exclude = spec.exclude.clone();
        config.schema_policy = match spec.schema_change.as_deref() {
            Some("log") => SchemaPolicy::Log,
            Some("fail") => SchemaPolicy::Fail,
            _ => SchemaPolicy::Update,
        };
        for target in &spec.targets {
            if let Some(p) = &options.progress {
                p(Progress::Step(format!("crawling {target}")));
            }
            let location = Location::parse_with(target, self.stores.s3_options().to_vec())?;
            Crawler::new(Arc::clone(&self.catalog), config.clone())
                .crawl(&location)
                .await
                .map_err(|e| Error::Spec {
                    origin: job.name().to_string(),
                    reason: format!("crawling {target}: {e}"),
                })?;
        }
        Ok(())
    }

    async fn attempt_sql(
        &self,
        job: &Job,
        options: &RunOptions,
        run: &mut JobRun,
        reason: watch::Receiver<StopReason>,
    ) -> std::result::Result<(), AttemptError> {
        let spec = &job.spec;
        let plain = |message: String| AttemptError {
            message,
            stop: StopReason::None,
        };
        let statements = split_statements(spec.sql.as_deref().unwrap_or(""))
            .map_err(|e| plain(format!("job {}: {e}", job.name())))?;
        // The job's last write statement carries the bookmark into its commit.
        let last_write = statements.iter().rposition(|s| {
            matches!(
                quarry_query::statement::parse(s, "generic"),
                Ok(Statement::Insert(_) | Statement::CreateTableAs(_) | Statement::Unload(_))
            )
        });
        // Every run of a sql job has a scope: its writes record intents (so a run that dies
        // after publishing has its files removed by the next run), and bookmarked tables are
        // read through it.
        let mut sources = Vec::new();
        if !options.no_bookmark {
            for b in &spec.bookmark {
                let (db, t) = b.split_once('.').unwrap_or(("", b));
                let exists = self
                    .catalog
                    .get_table(db, t)
                    .await
                    .map_err(|e| plain(e.to_string()))?
                    .is_some();
                if !exists {
                    return Err(plain(format!(
                        "bookmark: table {b} does not exist; crawl it or create it first"
                    )));
                }
                let processed: HashMap<String, String> = self
                    .store
                    .job_bookmark(job.name(), &b.to_ascii_lowercase())
                    .map_err(|e| {
                        plain(format!("reading the bookmark of job {}: {e}", job.name()))
                    })?;
                sources.push((b.clone(), processed));
            }
        }
        let bookmarked = !sources.is_empty();
        let scope = Some(Arc::new(JobScope::new(
            job.name(),
            run.run_id.clone(),
            Arc::clone(&self.store),
            sources,
            self.catalog.commits_job_state(),
        )));
        let mut config = self.config.clone();
        if let Some(w) = &spec.warehouse {
            config.warehouse = Some(w.clone());
        }
        let mut engine = Engine::new(Arc::clone(&self.catalog), Arc::clone(&self.stores), config)
            .with_history(Arc::clone(&self.store));
        if let Some(s) = &scope {
            engine = engine.with_job(Arc::clone(s));
        }
        run.queries.clear();
        let total = statements.len();
        for (i, sql) in statements.iter().enumerate() {
            if let Some(s) = &scope {
                s.carry_bookmark(Some(i) == last_write);
            }
            let mut request = QueryRequest::new(sql.clone()).with_database(spec.database.clone());
            request.max_bytes_scanned = spec.max_bytes_scanned.map(|b| b.0);
            let meter = engine.meter_for(&request);
            if let Some(p) = &options.progress {
                p(Progress::Statement {
                    index: i + 1,
                    total,
                    sql: sql.clone(),
                    meter: Arc::clone(&meter),
                });
            }
            let mut cancel = reason.clone();
            let out = engine
                .run_with(request, meter, async move {
                    let _ = cancel.wait_for(|r| *r != StopReason::None).await;
                })
                .await;
            let r = &out.record;
            run.queries.push(r.query_id.clone());
            run.rows += r.rows;
            run.bytes_scanned += r.bytes_scanned;
            run.bytes_written += r.bytes_written;
            run.files_written += r.files_written;
            run.cost_usd += r.cost_usd;
            if let Some(s) = scope.as_ref().filter(|_| bookmarked) {
                run.objects_processed = s.objects_read();
            }
            let _ = self.store.record_job_run(run);
            if !out.succeeded() {
                return Err(AttemptError {
                    message: format!(
                        "statement {} of {total} ({}): {}",
                        i + 1,
                        r.query_id,
                        r.error.clone().unwrap_or_default()
                    ),
                    stop: *reason.borrow(),
                });
            }
        }
        if let Some(s) = &scope
            && bookmarked
            && !s.advanced()
        {
            s.commit_advance().map_err(|e| {
                plain(format!(
                    "committing the bookmark of job {}: {e}",
                    job.name()
                ))
            })?;
        }
        Ok(())
    }
}

pub(crate) fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}
