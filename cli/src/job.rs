//! `quarry job ...`, `quarry scheduler` and `quarry compact`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use chrono::Utc;
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use quarry_catalog::{Catalog, JobRun, JobRunState, SqliteCatalog};
use quarry_jobs::compact::{CompactOptions, compact};
use quarry_jobs::run::{Progress, ProgressFn};
use quarry_jobs::scheduler::{SchedulerOptions, describe, run_scheduler};
use quarry_jobs::spec::{JobKind, JobSpec, parse_duration};
use quarry_jobs::{Job, JobRuntime, RunOptions, load_dir};
use quarry_query::billing::human_bytes;
use quarry_query::{EngineConfig, ObjectStores};
use tokio::sync::watch;

use crate::{Format, emit, grid, print_json};

const JOB_HELP: &str = "\
A job is a TOML file in the jobs folder (--jobs DIR, QUARRY_JOBS, default ./jobs):

  name = \"sales_to_parquet\"
  kind = \"sql\"                          # sql | crawl | compact
  schedule = \"cron(0 * * * ? *)\"        # AWS syntax (EventBridge / Glue): cron(..) or rate(5 minutes)
  database = \"raw\"
  bookmark = [\"raw.sales\"]              # each run reads only objects no earlier run processed
  sql = \"INSERT INTO curated.sales SELECT order_id, amount, region FROM raw.sales\"

More keys: timezone, after = [\"job\"] (run when those succeed), missed = \"run-once\"|\"skip\",
max_retries, retry_delay = \"30s\", timeout = \"1h\", max_bytes_scanned = \"10GB\", warehouse;
crawl: targets, exclude, schema_change; compact: table, partition = { dt = \"..\" },
target_file_size, sort, convert, min_files, grace.

Examples:
  quarry job list
  quarry job run sales_to_parquet             run now (progress on a terminal)
  quarry job runs sales_to_parquet            its runs: state, rows, bytes, cost
  quarry job reset-bookmark sales_to_parquet  the next run reads everything again
  quarry scheduler                            run jobs on their schedules (foreground)
  quarry job sam > jobs.yaml                  one EventBridge schedule per job, for template.yaml";

#[derive(clap::Args)]
pub struct JobsDir {
    /// The jobs folder: one TOML file per job
    #[arg(
        long,
        env = "QUARRY_JOBS",
        default_value = "jobs",
        value_name = "DIR",
        global = true
    )]
    pub jobs: PathBuf,
}

#[derive(Subcommand)]
pub enum JobCommand {
    /// List the jobs: kind, schedule, next run, last run.
    List {
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Show one job: its definition, next fire times, bookmark and recent runs.
    Show { name: String },
    /// A job's runs, newest first (all jobs' without NAME; also `system.job_runs`).
    Runs {
        name: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Run a job now and wait for it (Ctrl-C stops it; recorded as STOPPED).
    Run {
        name: String,
        /// Read every object of the bookmarked tables and leave the bookmark as it is
        #[arg(long)]
        no_bookmark: bool,
        /// Print the run as JSON
        #[arg(long, value_enum)]
        format: Option<Format>,
        /// How long the job's lease lasts without renewal
        #[arg(long, default_value = "60s", value_parser = duration, hide = true)]
        lease: Duration,
    },
    /// Write a new job file into the jobs folder (checked first).
    Create {
        name: String,
        #[arg(long, value_parser = ["sql", "crawl", "compact"])]
        kind: String,
        #[arg(long)]
        sql: Option<String>,
        /// cron(..) or rate(..)
        #[arg(long)]
        schedule: Option<String>,
        #[arg(long, short = 'd')]
        database: Option<String>,
        /// Bookmarked input table (repeatable)
        #[arg(long)]
        bookmark: Vec<String>,
        /// Crawl target (repeatable)
        #[arg(long)]
        target: Vec<String>,
        /// Table to compact
        #[arg(long)]
        table: Option<String>,
        /// Replace an existing file
        #[arg(long)]
        force: bool,
    },
    /// Forget what a job processed: its next run reads every object of its bookmarked tables.
    ResetBookmark { name: String },
    /// Print AWS SAM resources: the quarry-job function with one schedule per job.
    Sam,
}

/// The statement a progress bar follows, and its meter.
type Watched = (String, Arc<quarry_query::Meter>);

fn duration(s: &str) -> std::result::Result<Duration, String> {
    parse_duration(s)
}

pub fn after_help() -> &'static str {
    JOB_HELP
}

fn load(dir: &Path) -> Result<std::collections::BTreeMap<String, Job>> {
    if !dir.is_dir() {
        bail!(
            "jobs folder {} does not exist; create it or pass --jobs DIR (QUARRY_JOBS)",
            dir.display()
        );
    }
    Ok(load_dir(dir)?)
}

fn find(dir: &Path, name: &str) -> Result<Job> {
    let mut jobs = load(dir)?;
    jobs.remove(name).ok_or_else(|| {
        anyhow::Error::new(quarry_jobs::Error::UnknownJob {
            name: name.to_string(),
            dir: dir.display().to_string(),
        })
    })
}

fn runtime(catalog: Arc<dyn Catalog>, store: Arc<SqliteCatalog>) -> JobRuntime {
    JobRuntime::new(
        catalog,
        store,
        Arc::new(ObjectStores::new()),
        EngineConfig::default(),
    )
}

fn when(t: Option<chrono::DateTime<Utc>>) -> String {
    t.map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

fn run_row(r: &JobRun) -> Vec<String> {
    let secs = r
        .ended_at
        .map(|e| {
            format!(
                "{:.1}",
                (e - r.started_at).num_milliseconds() as f64 / 1000.0
            )
        })
        .unwrap_or_default();
    let mut error = r.error.clone().unwrap_or_default().replace('\n', " ");
    if error.len() > 80 {
        error = format!("{}…", &error[..error.floor_char_boundary(79)]);
    }
    vec![
        r.run_id.clone(),
        r.job.clone(),
        r.state.as_str().to_string(),
        r.trigger.clone(),
        when(Some(r.started_at)),
        secs,
        r.attempt.to_string(),
        r.rows.to_string(),
        human_bytes(r.bytes_scanned),
        human_bytes(r.bytes_written),
        format!("${:.5}", r.cost_usd),
        error,
    ]
}

const RUN_HEADER: [&str; 12] = [
    "run_id", "job", "state", "trigger", "started", "s", "attempt", "rows", "scanned", "written",
    "cost", "error",
];

/// The next `n` fire times of a scheduled job.
fn next_fires(store: &SqliteCatalog, job: &Job, n: usize) -> Vec<chrono::DateTime<Utc>> {
    let Some(s) = &job.schedule else {
        return Vec::new();
    };
    let anchor = store
        .job_scheduler_state(job.name())
        .ok()
        .flatten()
        .map(|st| st.first_seen)
        .unwrap_or_else(Utc::now);
    let mut out = Vec::new();
    let mut t = Utc::now();
    while out.len() < n {
        match s.next_after(t, job.timezone, anchor) {
            Some(next) => {
                out.push(next);
                t = next;
            }
            None => break,
        }
    }
    out
}

pub async fn job(
    command: JobCommand,
    dir: &Path,
    catalog: Arc<dyn Catalog>,
    store: Arc<SqliteCatalog>,
) -> Result<bool> {
    match command {
        JobCommand::List { format } => {
            let jobs = load(dir)?;
            let mut rows = Vec::new();
            for j in jobs.values() {
                let last = store.job_runs(Some(j.name()), 1)?.into_iter().next();
                rows.push((j, next_fires(&store, j, 1).into_iter().next(), last));
            }
            if format == Format::Json {
                let v: Vec<serde_json::Value> = rows
                    .iter()
                    .map(|(j, next, last)| {
                        serde_json::json!({
                            "name": j.name(),
                            "kind": j.spec.kind.as_str(),
                            "trigger": describe(j),
                            "next_run": next,
                            "last_run": last,
                        })
                    })
                    .collect();
                print_json(&v)?;
                return Ok(true);
            }
            let mut g = grid(&[
                "job",
                "kind",
                "trigger",
                "next run (UTC)",
                "last run",
                "state",
            ]);
            for (j, next, last) in &rows {
                g.add_row(vec![
                    j.name().to_string(),
                    j.spec.kind.as_str().to_string(),
                    describe(j),
                    when(*next),
                    when(last.as_ref().map(|r| r.started_at)),
                    last.as_ref()
                        .map(|r| r.state.as_str().to_string())
                        .unwrap_or_default(),
                ]);
            }
            emit(&g)?;
            emit(format!("{} job(s) in {}", rows.len(), dir.display()))?;
        }
        JobCommand::Show { name } => {
            let j = find(dir, &name)?;
            emit(format!(
                "# {}",
                j.spec
                    .path
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            ))?;
            emit(j.to_toml()?.trim_end())?;
            emit("")?;
            emit(format!("trigger:   {}", describe(&j)))?;
            for t in next_fires(&store, &j, 3) {
                emit(format!("next:      {} UTC", t.format("%Y-%m-%d %H:%M:%S")))?;
            }
            for (source, n) in store.job_bookmark_sizes(j.name())? {
                emit(format!("bookmark:  {source}: {n} object(s) processed"))?;
            }
            let runs = store.job_runs(Some(j.name()), 5)?;
            if !runs.is_empty() {
                let mut g = grid(&RUN_HEADER);
                for r in &runs {
                    g.add_row(run_row(r));
                }
                emit(&g)?;
            }
        }
        JobCommand::Runs {
            name,
            limit,
            format,
        } => {
            let runs = store.job_runs(name.as_deref(), limit)?;
            if format == Format::Json {
                print_json(&runs)?;
                return Ok(true);
            }
            let mut g = grid(&RUN_HEADER);
            for r in &runs {
                g.add_row(run_row(r));
            }
            emit(&g)?;
        }
        JobCommand::Run {
            name,
            no_bookmark,
            format,
            lease,
        } => {
            let j = find(dir, &name)?;
            let mut rt = runtime(catalog, store);
            rt.lease = lease;
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {elapsed} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            let meter: Arc<std::sync::Mutex<Option<Watched>>> = Arc::default();
            let progress: ProgressFn = {
                let (bar, meter) = (bar.clone(), Arc::clone(&meter));
                Arc::new(move |p| match p {
                    Progress::Attempt { attempt, of } if of > 1 => {
                        bar.println(format!("attempt {attempt} of {of}"));
                    }
                    Progress::Attempt { .. } => {}
                    Progress::Statement {
                        index,
                        total,
                        sql,
                        meter: m,
                    } => {
                        let mut line = sql.replace('\n', " ");
                        if line.len() > 60 {
                            line = format!("{}…", &line[..line.floor_char_boundary(59)]);
                        }
                        *meter.lock().unwrap_or_else(|p| p.into_inner()) =
                            Some((format!("statement {index}/{total}: {line}"), m));
                    }
                    Progress::Step(s) => {
                        *meter.lock().unwrap_or_else(|p| p.into_inner()) = None;
                        bar.set_message(s);
                    }
                })
            };
            let ticker = {
                let (bar, meter) = (bar.clone(), Arc::clone(&meter));
                tokio::spawn(async move {
                    loop {
                        if let Some((text, m)) =
                            meter.lock().unwrap_or_else(|p| p.into_inner()).as_ref()
                        {
                            bar.set_message(format!("{text} ({} scanned)", human_bytes(m.bytes())));
                        }
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                })
            };
            let (stop_tx, stop_rx) = watch::channel(false);
            let ctrl_c = tokio::spawn(async move {
                if tokio::signal::ctrl_c().await.is_ok() {
                    eprintln!("stopping the run (Ctrl-C)...");
                    stop_tx.send_replace(true);
                }
            });
            let options = RunOptions {
                trigger: "manual".into(),
                no_bookmark,
                progress: Some(progress),
            };
            let result = rt.run(&j, options, stop_rx).await;
            ticker.abort();
            ctrl_c.abort();
            bar.finish_and_clear();
            quarry_lake::writer::finish_cleanups().await;
            let run = result?;
            if format == Some(Format::Json) {
                print_json(&run)?;
            } else {
                let took = run
                    .ended_at
                    .map(|e| (e - run.started_at).num_milliseconds() as f64 / 1000.0)
                    .unwrap_or(0.0);
                emit(format!(
                    "job {} run {}: {} in {took:.1}s (attempt {})",
                    run.job,
                    run.run_id,
                    run.state.as_str(),
                    run.attempt
                ))?;
                emit(format!(
                    "  {} rows, {} scanned (${:.5}), {} file(s) / {} written{}",
                    run.rows,
                    human_bytes(run.bytes_scanned),
                    run.cost_usd,
                    run.files_written,
                    human_bytes(run.bytes_written),
                    if j.spec.bookmark.is_empty() || no_bookmark {
                        String::new()
                    } else {
                        format!(", {} new object(s) processed", run.objects_processed)
                    }
                ))?;
                if let Some(e) = &run.error {
                    eprintln!("error: {e}");
                }
            }
            return Ok(run.state == JobRunState::Succeeded);
        }
        JobCommand::Create {
            name,
            kind,
            sql,
            schedule,
            database,
            bookmark,
            target,
            table,
            force,
        } => {
            let spec = JobSpec {
                name: name.clone(),
                kind: match kind.as_str() {
                    "crawl" => JobKind::Crawl,
                    "compact" => JobKind::Compact,
                    _ => JobKind::Sql,
                },
                sql,
                schedule,
                database,
                bookmark,
                targets: target,
                table,
                ..toml::from_str::<JobSpec>(&format!("name = \"{name}\"\nkind = \"{kind}\""))
                    .context("building the job")?
            };
            let j = Job::from_spec(spec, &name)?;
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating the jobs folder {}", dir.display()))?;
            let path = dir.join(format!("{name}.toml"));
            if path.exists() && !force {
                bail!("{} exists; pass --force to replace it", path.display());
            }
            // Written whole, then renamed: a scheduler never reads half a file.
            let tmp = dir.join(format!(".{name}.toml.tmp"));
            std::fs::write(&tmp, j.to_toml()?)
                .with_context(|| format!("writing {}", tmp.display()))?;
            std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
            emit(format!("created {} ({})", path.display(), describe(&j)))?;
        }
        JobCommand::ResetBookmark { name } => {
            let j = find(dir, &name)?;
            let n = store.reset_job_bookmark(j.name())?;
            emit(format!(
                "job {}: bookmark reset ({n} object(s) forgotten); its next run reads every object of {}",
                j.name(),
                j.spec.bookmark.join(", ")
            ))?;
        }
        JobCommand::Sam => {
            let jobs = load(dir)?;
            emit(sam(&jobs))?;
        }
    }
    Ok(true)
}

/// SAM resources for the `quarry-job` function: one EventBridge schedule per scheduled job,
/// passing the job's name; the job files go with the function (`QUARRY_JOBS`).
fn sam(jobs: &std::collections::BTreeMap<String, Job>) -> String {
    let mut out = String::from(
        "# Paste under `Resources:` in template.yaml (generated by `quarry job sam`).\n\
  JobFunction:\n\
    Type: AWS::Serverless::Function\n\
    Metadata:\n\
      BuildMethod: rust-cargolambda\n\
      BuildProperties:\n\
        Binary: quarry-job\n\
    Properties:\n\
      CodeUri: .\n\
      Handler: bootstrap\n\
      Runtime: provided.al2023\n\
      Architectures: [x86_64]\n\
      MemorySize: 3008\n\
      Timeout: 900\n\
      Environment:\n\
        Variables:\n\
          QUARRY_JOBS: /var/task/jobs\n\
          QUARRY_CATALOG: glue\n\
          # Runs and bookmarks: a persistent SQLite file (an EFS mount); /tmp does not\n\
          # survive cold starts, so bookmarked jobs are refused there.\n\
          QUARRY_JOB_STORE: /mnt/quarry/jobs.db\n\
      Policies:\n\
        - AWSGlueServiceRole\n\
        - S3CrudPolicy:\n\
            BucketName: !Ref LakeBucket\n\
      Events:\n",
    );
    for j in jobs.values() {
        let Some(s) = &j.schedule else { continue };
        let id: String = j
            .name()
            .split(|c: char| !c.is_ascii_alphanumeric())
            .map(|w| {
                let mut c = w.chars();
                c.next()
                    .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                    .unwrap_or_default()
            })
            .collect();
        out.push_str(&format!(
            "        {id}Schedule:\n          Type: ScheduleV2\n          Properties:\n            ScheduleExpression: \"{s}\"\n            ScheduleExpressionTimezone: \"{}\"\n            Input: '{{\"job\": \"{}\"}}'\n",
            j.timezone,
            j.name()
        ));
    }
    out
}

#[derive(clap::Args)]
pub struct SchedulerArgs {
    /// Runs at once, over all jobs
    #[arg(long, default_value_t = 2)]
    concurrency: usize,
    /// On shutdown (SIGTERM, Ctrl-C), how long running jobs may take before they are stopped
    #[arg(long, default_value = "30s", value_parser = duration)]
    grace: Duration,
    /// How often the jobs folder is re-read and `after` conditions checked
    #[arg(long, default_value = "5s", value_parser = duration)]
    poll: Duration,
    /// How long a job's lease lasts without renewal (a dead scheduler's runs are failed after it)
    #[arg(long, default_value = "60s", value_parser = duration)]
    lease: Duration,
}

pub async fn scheduler(
    args: SchedulerArgs,
    dir: &Path,
    catalog: Arc<dyn Catalog>,
    store: Arc<SqliteCatalog>,
) -> Result<bool> {
    load(dir)?;
    let mut rt = runtime(catalog, store);
    rt.lease = args.lease;
    let options = SchedulerOptions {
        concurrency: args.concurrency,
        grace: args.grace,
        poll: args.poll,
        ..Default::default()
    };
    let shutdown = crate::shutdown_signal();
    run_scheduler(rt, dir.to_path_buf(), options, shutdown).await?;
    quarry_lake::writer::finish_cleanups().await;
    Ok(true)
}

#[derive(clap::Args)]
pub struct CompactArgs {
    /// DATABASE.TABLE
    table: String,
    /// Size of the files written
    #[arg(long, default_value = "128MB", value_parser = crate::sql::parse_bytes)]
    target_file_size: u64,
    /// Sort each partition's rows by this column (repeatable)
    #[arg(long)]
    sort: Vec<String>,
    /// Rewrite a CSV / JSON table as Parquet (every partition; the table's format changes)
    #[arg(long)]
    convert: bool,
    /// Only the partition with these values (repeatable: --partition dt=2024-01-01)
    #[arg(long, value_name = "KEY=VALUE")]
    partition: Vec<String>,
    /// Compact a partition with at least this many files under 75% of the target size
    #[arg(long, default_value_t = 2)]
    min_files: usize,
    /// Keep the replaced files this long for queries still reading them
    #[arg(long, default_value = "1h", value_parser = duration)]
    grace: Duration,
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
}

pub async fn compact_table(
    args: CompactArgs,
    catalog: Arc<dyn Catalog>,
    store: Arc<SqliteCatalog>,
) -> Result<bool> {
    let mut partition = std::collections::BTreeMap::new();
    for p in &args.partition {
        let Some((k, v)) = p.split_once('=') else {
            bail!("--partition {p}: write KEY=VALUE, e.g. --partition dt=2024-01-01");
        };
        partition.insert(k.to_string(), v.to_string());
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    bar.enable_steady_tick(Duration::from_millis(120));
    let progress: ProgressFn = {
        let bar = bar.clone();
        Arc::new(move |p| {
            if let Progress::Step(s) = p {
                bar.set_message(s);
            }
        })
    };
    let options = CompactOptions {
        target_file_size: args.target_file_size,
        sort: args.sort,
        convert: args.convert,
        min_files: args.min_files,
        partition,
        grace: args.grace,
        progress: Some(progress),
    };
    let stores = Arc::new(ObjectStores::new());
    let id = format!("c{}", &uuid_tag());
    let result = compact(
        &catalog,
        &stores,
        &store,
        &EngineConfig::default(),
        &args.table,
        &options,
        &id,
    )
    .await;
    bar.finish_and_clear();
    let report = result?;
    if args.format == Format::Json {
        print_json(&report)?;
    } else {
        emit(format!("{report}").trim_end())?;
    }
    Ok(true)
}

fn uuid_tag() -> String {
    format!(
        "{:x}",
        Utc::now().timestamp_nanos_opt().unwrap_or_default() as u64 ^ u64::from(std::process::id())
    )
}
