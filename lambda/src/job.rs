//! The job function: runs one job of the jobs folder (`QUARRY_JOBS`, default `/var/task/jobs`,
//! where `cargo lambda build --output-format zip --include jobs:DIR` puts the job files of DIR)
//! per invocation. Events:
//!
//! - `{"job": "NAME"}`: what an EventBridge Scheduler schedule or rule target with
//!   `Input: '{"job": "NAME"}'` delivers (`quarry job sam` prints one schedule per job);
//! - an EventBridge "Scheduled Event" envelope whose `detail` is `{"job": "NAME"}`;
//! - `{"job": "NAME", "no_bookmark": true}`, for manual invocations: read every object of the
//!   bookmarked tables and leave the bookmark as it is (Glue's `job-bookmark-disable`).
//!
//! The answer is the run ([`JobRun`]: `run_id`, `state`, `rows`, `bytes_scanned`,
//! `bytes_written`, ...). A run that ends FAILED, TIMEOUT or STOPPED fails the invocation
//! (`Quarry.Fatal.JobFailed|JobTimeout|JobStopped`, with the run's error), so that Lambda's
//! retries, destinations and dead-letter queue see it. A run refused because another run of the
//! job holds its lease fails as `Quarry.Retryable.JobAlreadyRunning`.
//!
//! **The Lambda deadline.** The run is stopped a little before the invocation's deadline (a
//! tenth of the time left, between 1 and 30 seconds, at most half of it), so that it is recorded
//! as STOPPED, its staged files removed and its lease released, instead of vanishing with the
//! frozen sandbox. A deadline already past when the invocation starts is no deadline (the
//! `cargo lambda watch` emulator sends a fixed one); the run then goes on to its end.
//!
//! **The job store** (runs, bookmarks, leases; a SQLite file):
//!
//! - with the embedded catalog (`QUARRY_CATALOG` = a path), the catalog file itself, so that a
//!   bookmark commits in the same transaction as the job's output; `QUARRY_JOB_STORE`, if set,
//!   must name the same file;
//! - with Glue, `QUARRY_JOB_STORE`, by default `quarry-jobs.db` in the temporary directory
//!   (`/tmp/quarry-jobs.db` on Lambda).
//!
//! A store under the temporary directory does not survive a cold start, and each execution
//! environment has its own: after a cold start a bookmarked job would read its whole input
//! again and write it a second time. So a bookmarked job is refused there
//! (`Quarry.Fatal.Configuration`) unless `QUARRY_ALLOW_EPHEMERAL_BOOKMARKS=true` says that this is
//! wanted, or the invocation asks for `"no_bookmark": true`. Give bookmarked jobs a persistent
//! store: `QUARRY_JOB_STORE` (or the embedded catalog) on an EFS mount, e.g.
//! `/mnt/quarry/jobs.db`.
//!
//! Leases keep one run of a job at a time only among the execution environments that share the
//! store, and SQLite's WAL mode, which the store uses, expects the processes that share a file to
//! be on one host: with an ephemeral store, and with one on EFS, reserve a concurrency of 1 for
//! the function (the SAM template's `JobConcurrency`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use lambda_runtime::tracing;
use quarry_catalog::{JobRun, JobRunState, SqliteCatalog};
use quarry_jobs::{Job, JobRuntime, RunOptions};
use quarry_query::EngineConfig;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{OnceCell, watch};

use crate::{FunctionError, Resources, env};

/// The job function's settings (`QUARRY_JOBS`, `QUARRY_JOB_STORE`,
/// `QUARRY_ALLOW_EPHEMERAL_BOOKMARKS`).
#[derive(Debug, Clone, PartialEq)]
pub struct JobConfig {
    pub jobs_dir: PathBuf,
    /// The job store with Glue; with the embedded catalog, the catalog file if set.
    pub store: Option<PathBuf>,
    /// Run bookmarked jobs even when the store does not outlive the execution environment.
    pub allow_ephemeral_bookmarks: bool,
}

impl Default for JobConfig {
    fn default() -> Self {
        Self {
            jobs_dir: PathBuf::from("/var/task/jobs"),
            store: None,
            allow_ephemeral_bookmarks: false,
        }
    }
}

impl JobConfig {
    pub fn from_env() -> Result<Self, FunctionError> {
        let allow = match env("QUARRY_ALLOW_EPHEMERAL_BOOKMARKS") {
            None => false,
            Some(v) => match v.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => true,
                "false" | "0" | "no" => false,
                _ => {
                    return Err(FunctionError::Config(format!(
                        "QUARRY_ALLOW_EPHEMERAL_BOOKMARKS={v}: use true or false"
                    )));
                }
            },
        };
        let default = Self::default();
        Ok(Self {
            jobs_dir: env("QUARRY_JOBS").map_or(default.jobs_dir, PathBuf::from),
            store: env("QUARRY_JOB_STORE").map(PathBuf::from),
            allow_ephemeral_bookmarks: allow,
        })
    }
}

/// What an invocation asks for.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobRequest {
    pub job: String,
    #[serde(default)]
    pub no_bookmark: bool,
}

const EXPECTED: &str = "expected {\"job\": \"NAME\"} (an EventBridge schedule's Input), an \
     EventBridge Scheduled Event whose detail is {\"job\": \"NAME\"}, or {\"job\": \"NAME\", \
     \"no_bookmark\": true}";

/// Read `event` as a [`JobRequest`].
pub fn parse(event: Value) -> Result<JobRequest, FunctionError> {
    let (request, what) = if event.get("detail-type").is_some() {
        let detail = event.get("detail").cloned().unwrap_or(json!({}));
        if detail.get("job").is_none() {
            return Err(FunctionError::BadEvent(format!(
                "the EventBridge event's detail names no job ({detail}); give the rule target \
                 Input '{{\"job\": \"NAME\"}}' (`quarry job sam` prints one schedule per job)"
            )));
        }
        (
            serde_json::from_value::<JobRequest>(detail),
            "EventBridge detail: ",
        )
    } else {
        (serde_json::from_value::<JobRequest>(event), "")
    };
    let request = request.map_err(|e| FunctionError::BadEvent(format!("{what}{e}; {EXPECTED}")))?;
    if request.job.trim().is_empty() {
        return Err(FunctionError::BadEvent(format!(
            "the job name is empty; {EXPECTED}"
        )));
    }
    Ok(request)
}

/// When to stop a run that must end before `deadline`: after the time left minus a margin of a
/// tenth of it (between 1 and 30 s, at most half of it). Returns (wait, margin); `None` when the
/// deadline is not after `now`, which no real invocation has (the emulator sends a fixed one).
pub fn stop_after(deadline: SystemTime, now: SystemTime) -> Option<(Duration, Duration)> {
    let left = deadline.duration_since(now).ok().filter(|d| !d.is_zero())?;
    let margin = (left / 10)
        .clamp(Duration::from_secs(1), Duration::from_secs(30))
        .min(left / 2);
    Some((left - margin, margin))
}

/// Whether `path` lies in the temporary directory, which on Lambda is the execution
/// environment's own `/tmp`, gone with it.
fn is_ephemeral(path: &Path) -> bool {
    let canon = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
    canon(path).starts_with(canon(&std::env::temp_dir()))
}

fn same_file(a: &Path, b: &Path) -> bool {
    let canon = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
    canon(a) == canon(b)
}

/// Who runs jobs here, in leases and runs: the execution environment (its log stream is unique
/// to it; host names and pids repeat across Lambda sandboxes), else `host:pid`.
fn owner() -> String {
    match (
        env("AWS_LAMBDA_FUNCTION_NAME"),
        env("AWS_LAMBDA_LOG_STREAM_NAME"),
    ) {
        (Some(f), Some(stream)) => format!("lambda {f} {stream}"),
        _ => quarry_jobs::run::process_owner(),
    }
}

/// The job function's state, set up on its first invocation: the job store and the runtime.
pub struct JobFunction {
    runtime: JobRuntime,
    config: JobConfig,
    /// The store's file, for messages (`None`: in memory).
    store_path: Option<PathBuf>,
    /// Whether the store is lost with the execution environment.
    ephemeral: bool,
    /// Whether the store is the embedded catalog.
    embedded: bool,
}

impl std::fmt::Debug for JobFunction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobFunction")
            .field("config", &self.config)
            .field("store_path", &self.store_path)
            .field("ephemeral", &self.ephemeral)
            .field("embedded", &self.embedded)
            .finish()
    }
}

impl JobFunction {
    /// Open the job store `res` and its settings call for (see the [module](self) docs).
    pub fn new(res: &Resources) -> Result<Self, FunctionError> {
        let config = res.settings.jobs.clone();
        let (store, store_path) = match &res.embedded {
            Some(catalog) => {
                let path = catalog.path().map(Path::to_path_buf);
                if let Some(wanted) = &config.store
                    && !path.as_deref().is_some_and(|p| same_file(wanted, p))
                {
                    return Err(FunctionError::Config(format!(
                        "QUARRY_JOB_STORE={} with the embedded catalog {}: job runs and \
                         bookmarks live in the catalog file, so that a bookmark commits with \
                         the job's output; unset QUARRY_JOB_STORE",
                        wanted.display(),
                        path.as_deref()
                            .map_or("(in memory)".into(), |p| p.display().to_string())
                    )));
                }
                (Arc::clone(catalog), path)
            }
            None if res.catalog.commits_job_state() => {
                return Err(FunctionError::Config(
                    "the embedded catalog must be given as Resources::new_embedded, so that \
                     jobs keep their state in its file"
                        .into(),
                ));
            }
            None => {
                let path = config
                    .store
                    .clone()
                    .unwrap_or_else(|| std::env::temp_dir().join("quarry-jobs.db"));
                (Arc::new(SqliteCatalog::open(&path)?), Some(path))
            }
        };
        let ephemeral = store_path.as_deref().is_none_or(is_ephemeral);
        if ephemeral {
            tracing::warn!(
                store = %store_path.as_deref().map_or("(in memory)".into(), |p| p.display().to_string()),
                "the job store is lost with this execution environment: bookmarked jobs are \
                 refused unless QUARRY_ALLOW_EPHEMERAL_BOOKMARKS=true; set QUARRY_JOB_STORE to \
                 a file on an EFS mount"
            );
        }
        let engine = EngineConfig {
            max_bytes_scanned: res.settings.max_bytes_scanned,
            // A warm function serves many runs.
            session_settings: false,
            ..Default::default()
        };
        let mut runtime = JobRuntime::new(
            Arc::clone(&res.catalog),
            store,
            Arc::clone(&res.stores),
            engine,
        );
        runtime.owner = owner();
        Ok(Self {
            runtime,
            config,
            store_path,
            ephemeral,
            embedded: res.embedded.is_some(),
        })
    }

    fn store_name(&self) -> String {
        self.store_path
            .as_deref()
            .map_or("(in memory)".into(), |p| p.display().to_string())
    }

    /// The job named `name`, read from the jobs folder now (a bad file fails the invocation,
    /// named).
    pub fn find(&self, name: &str) -> Result<Job, FunctionError> {
        let dir = &self.config.jobs_dir;
        if !dir.is_dir() {
            return Err(FunctionError::Config(format!(
                "jobs folder {} (QUARRY_JOBS) does not exist: ship the job files with the \
                 function (`cargo lambda build --output-format zip --include jobs:DIR` puts \
                 DIR's files in /var/task/jobs) or point QUARRY_JOBS at them",
                dir.display()
            )));
        }
        let mut jobs = quarry_jobs::load_dir(dir)?;
        jobs.remove(name).ok_or_else(|| FunctionError::UnknownJob {
            job: name.to_string(),
            dir: dir.display().to_string(),
            known: if jobs.is_empty() {
                "it holds no job files (*.toml)".into()
            } else {
                format!(
                    "its jobs are: {}",
                    jobs.keys().cloned().collect::<Vec<_>>().join(", ")
                )
            },
        })
    }

    /// Run the job `request` names to its end, stopping it before `deadline`. The run is
    /// returned whatever its state; see [`outcome`].
    pub async fn run(
        &self,
        request: &JobRequest,
        deadline: Option<SystemTime>,
    ) -> Result<JobRun, FunctionError> {
        let job = self.find(&request.job)?;
        let bookmarked = !job.spec.bookmark.is_empty() && !request.no_bookmark;
        if bookmarked && self.ephemeral && !self.config.allow_ephemeral_bookmarks {
            let remedy = if self.embedded {
                "put the embedded catalog (QUARRY_CATALOG), which holds the job store, on an EFS \
                 mount"
            } else {
                "set QUARRY_JOB_STORE to a file on an EFS mount"
            };
            return Err(FunctionError::Config(format!(
                "job '{}' reads {} through its bookmark, but the job store {} is lost on a cold \
                 start (and each execution environment has its own), after which the job would \
                 process its whole input again: {remedy}, or set \
                 QUARRY_ALLOW_EPHEMERAL_BOOKMARKS=true to accept that, or invoke with \
                 \"no_bookmark\": true",
                job.name(),
                job.spec.bookmark.join(", "),
                self.store_name()
            )));
        }

        let (stop_tx, stop_rx) = watch::channel(false);
        let plan = deadline.and_then(|d| {
            let plan = stop_after(d, SystemTime::now());
            if plan.is_none() {
                tracing::warn!(
                    "the invocation's deadline has already passed (an emulator?): the run is \
                     not stopped before it"
                );
            }
            plan
        });
        let watchdog = plan.map(|(wait, _)| {
            let stop_tx = stop_tx.clone();
            tokio::spawn(async move {
                tokio::time::sleep(wait).await;
                stop_tx.send_replace(true);
            })
        });
        let options = RunOptions {
            trigger: "lambda".into(),
            no_bookmark: request.no_bookmark,
            progress: None,
        };
        let result = self.runtime.run(&job, options, stop_rx).await;
        if let Some(w) = watchdog {
            w.abort();
        }
        // Staged files of a cancelled write are deleted in the background: finish before the
        // sandbox is frozen, within what is left of the invocation.
        let left = deadline
            .and_then(|d| d.duration_since(SystemTime::now()).ok())
            .filter(|_| plan.is_some())
            .map_or(Duration::from_secs(60), |l| {
                l.saturating_sub(Duration::from_millis(500))
            });
        let _ = tokio::time::timeout(left, quarry_lake::writer::finish_cleanups()).await;

        let mut run = result?;
        // Only the deadline watchdog stops runs here.
        if run.state == JobRunState::Stopped
            && *stop_tx.borrow()
            && let Some((_, margin)) = plan
        {
            let margin = if margin >= Duration::from_secs(1) {
                format!("{} s", margin.as_secs())
            } else {
                format!("{} ms", margin.as_millis())
            };
            let why = format!(
                "stopped {margin} before the Lambda invocation's deadline: raise the function's \
                 Timeout (at most 900 s), or run the job where it has more time (`quarry job \
                 run`, `quarry scheduler`)"
            );
            run.error = Some(match run.error.take() {
                Some(e) => format!("{why}; {e}"),
                None => why,
            });
            self.runtime.store.record_job_run(&run)?;
        }
        Ok(run)
    }
}

/// The invocation's answer for an ended run: the run as JSON when it succeeded, else an error
/// carrying its state and error.
pub fn outcome(run: JobRun) -> Result<Value, FunctionError> {
    if run.state == JobRunState::Succeeded {
        return Ok(serde_json::to_value(&run)
            .unwrap_or_else(|_| json!({"run_id": run.run_id, "state": run.state.as_str()})));
    }
    Err(FunctionError::JobRun {
        error: run
            .error
            .unwrap_or_else(|| format!("the run ended {}", run.state.as_str())),
        job: run.job,
        run_id: run.run_id,
        state: run.state,
    })
}

/// The job function's handler: [`JobFunction`] set up on the first invocation (again on the
/// next one when that fails), then one run per event.
#[derive(Debug, Default)]
pub struct JobHandler {
    function: OnceCell<JobFunction>,
}

impl JobHandler {
    pub async fn handle(
        &self,
        res: &Resources,
        event: Value,
        context: &lambda_runtime::Context,
    ) -> Result<Value, FunctionError> {
        let request = parse(event)?;
        let function = self
            .function
            .get_or_try_init(|| async { JobFunction::new(res) })
            .await?;
        let deadline = (context.deadline > 0).then(|| context.deadline());
        outcome(function.run(&request, deadline).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Settings;
    use quarry_query::ObjectStores;

    /// Resources over an embedded catalog in memory, with `jobs` (name, TOML) in a jobs folder.
    fn resources(jobs: &[(&str, &str)], dir: &Path) -> Resources {
        for (name, toml) in jobs {
            std::fs::write(dir.join(format!("{name}.toml")), toml).expect("write job");
        }
        let settings = Settings {
            jobs: JobConfig {
                jobs_dir: dir.to_path_buf(),
                ..Default::default()
            },
            ..Default::default()
        };
        Resources::new_embedded(
            Arc::new(SqliteCatalog::open_in_memory().expect("catalog")),
            Arc::new(ObjectStores::new()),
            settings,
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_run_is_stopped_before_the_invocation_deadline_and_says_so() {
        let dir = tempfile::tempdir().expect("dir");
        // Ten billion rows: far longer than the test waits.
        let slow = "name = \"slow\"\nkind = \"sql\"\n\
                    sql = \"SELECT sum(value % 7) AS s FROM range(100000000000)\"\n";
        let res = resources(&[("slow", slow)], dir.path());
        let function = JobFunction::new(&res).expect("function");
        let request = parse(json!({"job": "slow"})).expect("event");
        let started = std::time::Instant::now();
        let deadline = SystemTime::now() + Duration::from_secs(3);
        let run = tokio::time::timeout(
            Duration::from_secs(20),
            function.run(&request, Some(deadline)),
        )
        .await
        .expect("the run was stopped")
        .expect("an ended run");
        let took = started.elapsed();
        assert_eq!(run.state, JobRunState::Stopped, "{run:?}");
        // Stopped a second (a tenth of 3 s, at least 1 s) before the deadline, and ended in it.
        assert!(
            took >= Duration::from_millis(1900) && took < Duration::from_secs(3),
            "{took:?}"
        );
        let error = run.error.clone().unwrap_or_default();
        assert!(
            error.starts_with("stopped 1 s before the Lambda invocation's deadline"),
            "{error}"
        );
        // The store has the reason too.
        let stored = function
            .runtime
            .store
            .job_run(&run.run_id)
            .expect("store")
            .expect("recorded");
        assert_eq!(stored.error, run.error);
        // The lease is free for the next invocation, which has less time: stopped at half of it.
        let next = function
            .run(
                &request,
                Some(SystemTime::now() + Duration::from_millis(1200)),
            )
            .await
            .expect("not refused as already running");
        assert_eq!(next.state, JobRunState::Stopped, "{next:?}");
        assert!(
            next.error
                .as_deref()
                .is_some_and(|e| e.starts_with("stopped 5") || e.starts_with("stopped 600 ms")),
            "{next:?}"
        );
        let d: lambda_runtime::Diagnostic = outcome(run).expect_err("fails").into();
        assert_eq!(d.error_type, "Quarry.Fatal.JobStopped");
        assert!(d.error_message.contains("deadline"), "{}", d.error_message);
    }

    #[test]
    fn with_the_embedded_catalog_the_store_is_its_file() {
        let dir = tempfile::tempdir().expect("dir");
        let mut res = resources(&[], dir.path());
        res.settings.jobs.store = Some(dir.path().join("elsewhere.db"));
        let e = JobFunction::new(&res).expect_err("refused");
        assert!(
            matches!(e, FunctionError::Config(_))
                && e.to_string().contains("unset QUARRY_JOB_STORE"),
            "{e}"
        );
        // A catalog given as a plain `dyn Catalog` is not mistaken for Glue.
        let catalog: Arc<dyn quarry_catalog::Catalog> =
            Arc::new(SqliteCatalog::open_in_memory().expect("catalog"));
        let plain = Resources::new(catalog, Arc::new(ObjectStores::new()), Settings::default());
        assert!(matches!(
            JobFunction::new(&plain),
            Err(FunctionError::Config(_))
        ));
    }

    #[tokio::test]
    async fn bookmarked_jobs_are_refused_on_a_store_lost_with_the_sandbox() {
        let dir = tempfile::tempdir().expect("dir");
        let job = "name = \"j\"\nkind = \"sql\"\nbookmark = [\"raw.t\"]\n\
                   sql = \"INSERT INTO c.t SELECT * FROM raw.t\"\n";
        let res = resources(&[("j", job)], dir.path());
        let function = JobFunction::new(&res).expect("function");
        let request = parse(json!({"job": "j"})).expect("event");
        let e = function.run(&request, None).await.expect_err("refused");
        assert!(matches!(e, FunctionError::Config(_)), "{e:?}");
        assert!(
            e.to_string()
                .contains("put the embedded catalog (QUARRY_CATALOG), which holds the job store"),
            "{e}"
        );
        let e = function
            .run(&parse(json!({"job": "k"})).expect("event"), None)
            .await
            .expect_err("unknown");
        assert_eq!(
            e.to_string(),
            format!(
                "no job named 'k' in {} (QUARRY_JOBS); its jobs are: j",
                dir.path().display()
            )
        );
    }

    fn schedule(detail: Value) -> Value {
        let mut e: Value =
            serde_json::from_str(include_str!("../events/crawl-schedule.json")).expect("json");
        e["detail"] = detail;
        e
    }

    #[test]
    fn the_three_event_shapes() {
        let plain = JobRequest {
            job: "sales_to_parquet".into(),
            no_bookmark: false,
        };
        assert_eq!(
            parse(json!({"job": "sales_to_parquet"})).expect("input"),
            plain
        );
        assert_eq!(
            parse(schedule(json!({"job": "sales_to_parquet"}))).expect("envelope"),
            plain
        );
        assert_eq!(
            parse(json!({"job": "sales_to_parquet", "no_bookmark": true})).expect("manual"),
            JobRequest {
                no_bookmark: true,
                ..plain
            }
        );
    }

    #[test]
    fn events_that_name_no_job_are_refused_with_the_shapes_expected() {
        let bad = |e: Value| match parse(e) {
            Err(e @ FunctionError::BadEvent(_)) => {
                assert!(!e.retryable());
                e.to_string()
            }
            other => panic!("{other:?}"),
        };
        assert!(bad(schedule(json!({}))).contains("Input '{\"job\": \"NAME\"}'"));
        assert!(bad(json!({"jobs": "x"})).contains("unknown field `jobs`"));
        assert!(bad(json!({"job": "x", "no_bookmarks": true})).contains("no_bookmarks"));
        assert!(bad(schedule(json!({"job": 3}))).contains("EventBridge detail"));
        assert!(bad(json!({"job": " "})).contains("empty"));
        assert!(bad(json!("sales")).contains("expected {\"job\": \"NAME\"}"));
    }

    #[test]
    fn runs_stop_a_tenth_of_the_time_left_before_the_deadline() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let at = |s: u64| now + Duration::from_secs(s);
        let secs = |p: Option<(Duration, Duration)>| p.map(|(w, m)| (w.as_secs(), m.as_secs()));
        assert_eq!(secs(stop_after(at(900), now)), Some((870, 30)));
        assert_eq!(secs(stop_after(at(60), now)), Some((54, 6)));
        assert_eq!(secs(stop_after(at(3), now)), Some((2, 1)));
        let (wait, margin) = stop_after(now + Duration::from_millis(800), now).expect("plan");
        assert_eq!((wait.as_millis(), margin.as_millis()), (400, 400));
        assert_eq!(stop_after(now, now), None);
        // What `cargo lambda watch` sends: 600,000 ms after the epoch.
        assert_eq!(
            stop_after(SystemTime::UNIX_EPOCH + Duration::from_secs(600), now),
            None
        );
    }

    #[test]
    fn ended_runs_answer_or_fail_by_state() {
        let run = |state: JobRunState, error: Option<&str>| {
            let mut run: JobRun = serde_json::from_value(json!({
                "run_id": "jr_1", "job": "j", "trigger": "lambda", "state": "RUNNING",
                "attempt": 1, "owner": "me", "started_at": "2026-11-23T14:00:00Z", "rows": 7,
                "bytes_scanned": 0, "bytes_written": 0, "files_written": 0, "cost_usd": 0.0
            }))
            .expect("a run");
            run.state = state;
            run.error = error.map(str::to_string);
            run
        };
        let ok = outcome(run(JobRunState::Succeeded, None)).expect("answer");
        assert_eq!(
            (ok["state"].as_str(), ok["rows"].as_u64()),
            (Some("SUCCEEDED"), Some(7))
        );
        for (state, kind) in [
            (JobRunState::Failed, "Quarry.Fatal.JobFailed"),
            (JobRunState::Timeout, "Quarry.Fatal.JobTimeout"),
            (JobRunState::Stopped, "Quarry.Fatal.JobStopped"),
        ] {
            let e = outcome(run(state, Some("boom"))).expect_err("fails");
            let d: lambda_runtime::Diagnostic = e.into();
            assert_eq!(d.error_type, kind);
            assert!(
                d.error_message.contains("jr_1") && d.error_message.contains("boom"),
                "{}",
                d.error_message
            );
        }
        let busy: lambda_runtime::Diagnostic =
            FunctionError::Job(quarry_jobs::Error::AlreadyRunning {
                job: "j".into(),
                owner: "o".into(),
                run_id: "jr_0".into(),
            })
            .into();
        assert_eq!(busy.error_type, "Quarry.Retryable.JobAlreadyRunning");
    }
}
