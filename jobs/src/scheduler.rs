//! The scheduler: runs due jobs in the foreground until told to stop.
//!
//! Each job's fire times come from its `cron(..)` / `rate(..)` schedule; `after` jobs run when
//! the jobs they follow succeed. A fire time is claimed in the catalog store (a compare-and-set
//! in one transaction) before its run starts, and each run holds the job's lease, so several
//! schedulers on one catalog never run a job twice. Fire times that passed while no scheduler
//! ran follow the job's `missed` policy. On shutdown, running jobs get a grace period to
//! finish, then are stopped and recorded as STOPPED.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use quarry_catalog::JobRunState;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::error::Error;
use crate::run::{JobRuntime, RunOptions};
use crate::spec::{AfterLogic, Job, MissedPolicy, load_dir};

/// How the scheduler behaves.
#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    /// Runs at once, over all jobs.
    pub concurrency: usize,
    /// On shutdown, how long running jobs may take to finish before they are stopped.
    pub grace: Duration,
    /// How often the jobs folder is re-read and `after` conditions are checked.
    pub poll: Duration,
    /// A fire time found later than this is "missed" (the scheduler was not running).
    pub late: Duration,
}

impl Default for SchedulerOptions {
    fn default() -> Self {
        Self {
            concurrency: 2,
            grace: Duration::from_secs(30),
            poll: Duration::from_secs(5),
            late: Duration::from_secs(60),
        }
    }
}

fn log(message: impl AsRef<str>) {
    eprintln!(
        "{} {}",
        Utc::now().format("%Y-%m-%dT%H:%M:%SZ"),
        message.as_ref()
    );
}

/// What the scheduler decided for one job at one tick.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Run { trigger: String },
    Skip { fire: DateTime<Utc> },
    Wait,
}

/// Whether a scheduled job is due at `now`, claiming the fire time when it is.
pub fn scheduled(
    rt: &JobRuntime,
    job: &Job,
    now: DateTime<Utc>,
    late: Duration,
) -> crate::Result<Decision> {
    let Some(schedule) = &job.schedule else {
        return Ok(Decision::Wait);
    };
    let mut decision = Decision::Wait;
    rt.store
        .update_job_scheduler_state(job.name(), now, |st| {
            let since = st.last_fire.unwrap_or(st.first_seen);
            let Some(fire) = schedule.last_between(since, now, job.timezone, st.first_seen) else {
                return false;
            };
            let on_time = (now - fire).to_std().map(|d| d <= late).unwrap_or(true);
            decision = match (on_time, job.spec.missed) {
                (true, _) => Decision::Run {
                    trigger: "schedule".into(),
                },
                (false, MissedPolicy::RunOnce) => Decision::Run {
                    trigger: "missed".into(),
                },
                (false, MissedPolicy::Skip) => Decision::Skip { fire },
            };
            st.last_fire = Some(fire);
            true
        })
        .map_err(Error::from)?;
    Ok(decision)
}

/// Whether an `after` job's upstream jobs succeeded since it last ran for them, claiming
/// those successes when they did.
pub fn triggered(rt: &JobRuntime, job: &Job, now: DateTime<Utc>) -> crate::Result<Decision> {
    if job.spec.after.is_empty() {
        return Ok(Decision::Wait);
    }
    let mut successes: Vec<(String, Option<DateTime<Utc>>)> = Vec::new();
    for up in &job.spec.after {
        let ended = rt
            .store
            .job_runs(Some(up), 50)?
            .into_iter()
            .find(|r| r.state == JobRunState::Succeeded)
            .and_then(|r| r.ended_at);
        successes.push((up.clone(), ended));
    }
    let mut decision = Decision::Wait;
    rt.store.update_job_scheduler_state(job.name(), now, |st| {
        let mark = st.last_trigger.unwrap_or(st.first_seen);
        let newer: Vec<&(String, Option<DateTime<Utc>>)> = successes
            .iter()
            .filter(|(_, e)| e.is_some_and(|e| e > mark))
            .collect();
        let fire = match job.spec.after_logic {
            AfterLogic::All => newer.len() == successes.len(),
            AfterLogic::Any => !newer.is_empty(),
        };
        if !fire {
            return false;
        }
        st.last_trigger = newer.iter().filter_map(|(_, e)| *e).max();
        decision = Decision::Run {
            trigger: format!(
                "after {}",
                newer
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        true
    })?;
    Ok(decision)
}

/// Run the scheduler over the jobs in `dir` until `shutdown` completes.
pub async fn run_scheduler(
    rt: JobRuntime,
    dir: PathBuf,
    options: SchedulerOptions,
    shutdown: impl std::future::Future<Output = ()>,
) -> crate::Result<()> {
    let mut jobs: BTreeMap<String, Job> = load_dir(&dir)?;
    log(format!(
        "scheduler {} started: {} job(s) in {}, at most {} at once",
        rt.owner,
        jobs.len(),
        dir.display(),
        options.concurrency
    ));
    for j in jobs.values() {
        log(format!("  {}: {}", j.name(), describe(j)));
    }
    let permits = Arc::new(Semaphore::new(options.concurrency.max(1)));
    let running: Arc<Mutex<HashSet<String>>> = Arc::default();
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks: JoinSet<()> = JoinSet::new();
    tokio::pin!(shutdown);
    let mut last_retired = std::time::Instant::now();
    loop {
        // Reap runs whose scheduler died.
        match rt.store.reap_expired_job_leases(Utc::now()) {
            Ok(failed) => {
                for r in failed {
                    log(format!(
                        "job {} run {} marked FAILED: its runner stopped renewing the lease",
                        r.job, r.run_id
                    ));
                }
            }
            Err(e) => log(format!("warning: checking leases: {e}")),
        }
        if last_retired.elapsed() > Duration::from_secs(60) {
            last_retired = std::time::Instant::now();
            if let Err(e) = crate::compact::delete_due(&rt.stores, &rt.store).await {
                log(format!("warning: deleting replaced files: {e}"));
            }
        }
        let now = Utc::now();
        for job in jobs.values().filter(|j| j.spec.enabled) {
            if running
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains(job.name())
            {
                continue;
            }
            let mut decisions = vec![scheduled(&rt, job, now, options.late)];
            decisions.push(triggered(&rt, job, now));
            for d in decisions {
                match d {
                    Err(e) => log(format!("warning: job {}: {e}", job.name())),
                    Ok(Decision::Wait) => {}
                    Ok(Decision::Skip { fire }) => log(format!(
                        "job {}: skipped the run due at {} (missed = \"skip\")",
                        job.name(),
                        fire.format("%Y-%m-%dT%H:%M:%SZ")
                    )),
                    Ok(Decision::Run { trigger }) => {
                        running
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .insert(job.name().to_string());
                        let (rt, job, permits, running, stop) = (
                            rt.clone(),
                            job.clone(),
                            Arc::clone(&permits),
                            Arc::clone(&running),
                            stop_rx.clone(),
                        );
                        tasks.spawn(async move {
                            let _permit = permits.acquire_owned().await;
                            // Waiting for a permit through a shutdown: do not start.
                            if !*stop.borrow() {
                                launch(&rt, &job, trigger, stop).await;
                            }
                            running
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .remove(job.name());
                        });
                        break;
                    }
                }
            }
        }
        // Sleep until the next fire time or the next poll, whichever is first.
        let next = jobs
            .values()
            .filter_map(|j| {
                let st = rt.store.job_scheduler_state(j.name()).ok().flatten()?;
                j.schedule.as_ref()?.next_after(
                    st.last_fire.unwrap_or(st.first_seen).max(now),
                    j.timezone,
                    st.first_seen,
                )
            })
            .min();
        let mut wait = options.poll;
        if let Some(n) = next
            && let Ok(d) = (n - Utc::now()).to_std()
        {
            wait = wait.min(d + Duration::from_millis(50));
        }
        tokio::select! {
            () = &mut shutdown => break,
            () = tokio::time::sleep(wait) => {}
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
        match load_dir(&dir) {
            Ok(j) => jobs = j,
            Err(e) => log(format!("warning: keeping the jobs loaded before: {e}")),
        }
    }

    let active = running.lock().unwrap_or_else(|p| p.into_inner()).len();
    log(format!(
        "shutting down: {active} run(s) in progress get {} to finish",
        crate::run::human_duration(options.grace)
    ));
    let finished = tokio::time::timeout(options.grace, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if finished.is_err() {
        log("grace period over: stopping the runs still going (recorded as STOPPED)");
        stop_tx.send_replace(true);
        while tasks.join_next().await.is_some() {}
    }
    log("scheduler stopped");
    Ok(())
}

async fn launch(rt: &JobRuntime, job: &Job, trigger: String, stop: watch::Receiver<bool>) {
    log(format!("job {} starting ({trigger})", job.name()));
    let options = RunOptions {
        trigger,
        no_bookmark: false,
        progress: None,
    };
    match rt.run(job, options, stop).await {
        Ok(run) => {
            let took = run
                .ended_at
                .map(|e| (e - run.started_at).num_milliseconds() as f64 / 1000.0)
                .unwrap_or(0.0);
            let mut line = format!(
                "job {} run {} {} in {took:.1}s (attempt {}): {} rows, {} scanned, {} written",
                job.name(),
                run.run_id,
                run.state.as_str(),
                run.attempt,
                run.rows,
                quarry_query::billing::human_bytes(run.bytes_scanned),
                quarry_query::billing::human_bytes(run.bytes_written),
            );
            if let Some(e) = &run.error {
                line.push_str(&format!(": {e}"));
            }
            log(line);
        }
        Err(Error::AlreadyRunning { owner, run_id, .. }) => log(format!(
            "job {}: not started, run {run_id} by {owner} is still going",
            job.name()
        )),
        Err(e) => log(format!("job {}: could not run: {e}", job.name())),
    }
}

/// One line about a job's trigger: "cron(0 * * * ? *) UTC", "after a, b", "on demand".
pub fn describe(job: &Job) -> String {
    let mut parts = Vec::new();
    if let Some(s) = &job.schedule {
        parts.push(format!("{s} {}", job.timezone));
    }
    if !job.spec.after.is_empty() {
        let logic = match job.spec.after_logic {
            AfterLogic::All => " (all)",
            AfterLogic::Any => " (any)",
        };
        parts.push(format!("after {}{logic}", job.spec.after.join(", ")));
    }
    if parts.is_empty() {
        parts.push("on demand".into());
    }
    if !job.spec.enabled {
        parts.push("disabled".into());
    }
    parts.join("; ")
}
