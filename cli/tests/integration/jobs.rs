//! `quarry job` and `quarry scheduler` as users run them: the issue's job file as written (local
//! files and S3), runs killed with SIGKILL and run again, two schedulers on one catalog, and a
//! clean shutdown on SIGTERM.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use quarry_catalog::{JobRunState, JobSchedulerState, SqliteCatalog};
use quarry_tests::{BACKENDS, Backend, Lake, s3};

use crate::{Quarry, stdout, timed};

const SALES_JOB: &str = r#"name = "sales_to_parquet"
kind = "sql"
schedule = "cron(0 * * * ? *)"
database = "raw"
bookmark = ["raw.sales"]
sql = "INSERT INTO curated.sales SELECT order_id, amount, region FROM raw.sales"
"#;

fn csv(from: usize, n: usize) -> Vec<u8> {
    let mut s = String::from("order_id,amount\n");
    for i in from..from + n {
        s.push_str(&format!("{i},{}.5\n", i % 1000));
    }
    s.into_bytes()
}

/// The raw lake crawled into `raw`, the Parquet table `curated.sales` in it, a jobs folder
/// holding the issue's job file.
async fn setup(q: &Quarry, backend: Backend, lake: &Lake, jobs: &Path) {
    lake.put("other/o.csv", b"x,y\n1,2\n".to_vec()).await;
    stdout(&q.run(backend, &["crawl", &lake.url, "-d", "raw"]));
    let curated = format!("{}curated/sales/", lake.location.root_url());
    stdout(&q.run(
        backend,
        &[
            "sql",
            "-c",
            &format!(
                "CREATE DATABASE curated; CREATE EXTERNAL TABLE curated.sales (order_id bigint, amount double, region string) STORED AS PARQUET LOCATION '{curated}'"
            ),
        ],
    ));
    std::fs::create_dir_all(jobs).expect("jobs dir");
    std::fs::write(jobs.join("sales_to_parquet.toml"), SALES_JOB).expect("job file");
}

fn counts(q: &Quarry, backend: Backend) -> String {
    stdout(&q.run(
        backend,
        &[
            "sql",
            "--format",
            "csv",
            "-c",
            "SELECT count(*), count(DISTINCT order_id) FROM curated.sales",
        ],
    ))
}

#[tokio::test]
async fn the_issue_job_file_works_as_written() {
    for backend in BACKENDS {
        let lake = Lake::empty(backend).await;
        lake.put("sales/region=eu/a.csv", csv(0, 3)).await;
        lake.put("sales/region=us/b.csv", csv(3, 2)).await;
        let q = Quarry::new();
        let jobs = q.catalog.path().join("jobs");
        setup(&q, backend, &lake, &jobs).await;
        let dir = jobs.to_string_lossy().into_owned();
        let run = |q: &Quarry| {
            stdout(&q.run(backend, &["job", "run", "sales_to_parquet", "--jobs", &dir]))
        };

        let first = run(&q);
        assert!(
            first.contains("SUCCEEDED") && first.contains("5 rows"),
            "{first}"
        );
        assert_eq!(
            counts(&q, backend),
            "count(*),count(DISTINCT curated.sales.order_id)\n5,5\n"
        );
        let again = run(&q);
        assert!(again.contains("0 rows"), "{again}");
        lake.put("sales/region=us/c.csv", csv(5, 4)).await;
        let third = run(&q);
        assert!(
            third.contains("4 rows") && third.contains("1 new object"),
            "{third}"
        );
        assert!(counts(&q, backend).ends_with("\n9,9\n"));

        let list = stdout(&q.run(backend, &["job", "list", "--jobs", &dir]));
        assert!(
            list.contains("cron(0 * * * ? *) UTC") && list.contains("SUCCEEDED"),
            "{list}"
        );
        let runs: serde_json::Value = serde_json::from_str(&stdout(&q.run(
            backend,
            &[
                "job",
                "runs",
                "sales_to_parquet",
                "--jobs",
                &dir,
                "--format",
                "json",
            ],
        )))
        .expect("JSON runs");
        let rows: Vec<u64> = runs
            .as_array()
            .expect("array")
            .iter()
            .filter_map(|r| r["rows"].as_u64())
            .collect();
        assert_eq!(rows, [4, 0, 5]);
        let sql = stdout(&q.run(
            backend,
            &[
                "sql",
                "--format",
                "csv",
                "-c",
                "SELECT state, sum(rows) FROM system.job_runs GROUP BY state",
            ],
        ));
        assert_eq!(sql, "state,sum(system.job_runs.rows)\nSUCCEEDED,9\n");
        let show = stdout(&q.run(
            backend,
            &["job", "show", "sales_to_parquet", "--jobs", &dir],
        ));
        assert!(
            show.contains("bookmark:  raw.sales: 3 object(s) processed"),
            "{show}"
        );
        let sam = stdout(&q.run(backend, &["job", "sam", "--jobs", &dir]));
        assert!(
            sam.contains("ScheduleExpression: \"cron(0 * * * ? *)\"")
                && sam.contains(r#"Input: '{"job": "sales_to_parquet"}'"#),
            "{sam}"
        );
        let reset = stdout(&q.run(
            backend,
            &["job", "reset-bookmark", "sales_to_parquet", "--jobs", &dir],
        ));
        assert!(reset.contains("3 object(s) forgotten"), "{reset}");

        let created = stdout(&q.run(
            backend,
            &[
                "job",
                "create",
                "nightly_crawl",
                "--jobs",
                &dir,
                "--kind",
                "crawl",
                "--target",
                &lake.url,
                "-d",
                "raw",
                "--schedule",
                "cron(0 3 ? * MON-FRI *)",
            ],
        ));
        assert!(created.contains("nightly_crawl.toml"), "{created}");
        let ran = stdout(&q.run(backend, &["job", "run", "nightly_crawl", "--jobs", &dir]));
        assert!(ran.contains("SUCCEEDED"), "{ran}");
        let bad = q.run(
            backend,
            &[
                "job",
                "create",
                "bad",
                "--jobs",
                &dir,
                "--kind",
                "sql",
                "--sql",
                "SELECT 1",
                "--schedule",
                "cron(0 3 * * * *)",
            ],
        );
        assert!(!bad.status.success());
        let err = String::from_utf8_lossy(&bad.stderr);
        assert!(err.contains("'?'"), "{err}");
        assert!(!jobs.join("bad.toml").exists());

        let unknown = q.run(backend, &["job", "run", "nope", "--jobs", &dir]);
        assert!(!unknown.status.success());
        let err = String::from_utf8_lossy(&unknown.stderr);
        assert!(err.contains("no job named 'nope'"), "{err}");
    }
}

fn spawn(q: &Quarry, backend: Backend, args: &[&str]) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_quarry"));
    cmd.args(args)
        .env("QUARRY_CATALOG", q.catalog.path().join("catalog.db"))
        .env_remove("AWS_ENDPOINT_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if backend == Backend::S3 {
        cmd.envs(s3().env());
    }
    cmd.spawn().expect("start quarry")
}

/// SIGKILL at seeded random points of a run, again and again; then a run to the end: the
/// table holds every input row exactly once.
#[tokio::test]
// The guard serialises whole tests, each on its own thread and runtime: nothing in this
// test's runtime waits for it.
#[allow(clippy::await_holding_lock)]
async fn a_job_killed_mid_run_and_run_again_inserts_each_row_once() {
    let _timed = timed();
    for backend in BACKENDS {
        let lake = Lake::empty(backend).await;
        let (files, per_file) = (24, 4000);
        for f in 0..files {
            let region = ["eu", "us", "apac"][f % 3];
            lake.put(
                &format!("sales/region={region}/part-{f:02}.csv"),
                csv(f * per_file, per_file),
            )
            .await;
        }
        let q = Quarry::new();
        let jobs = q.catalog.path().join("jobs");
        setup(&q, backend, &lake, &jobs).await;
        let dir = jobs.to_string_lossy().into_owned();
        let args = ["job", "run", "sales_to_parquet", "--jobs", dir.as_str()];

        // How long a whole run takes here, on a copy of the catalog that is thrown away.
        let started = Instant::now();
        let probe = Quarry::new();
        std::fs::copy(
            q.catalog.path().join("catalog.db"),
            probe.catalog.path().join("catalog.db"),
        )
        .expect("copy catalog");
        let probe_run = spawn(&probe, backend, &args)
            .wait_with_output()
            .expect("probe");
        assert!(probe_run.status.success());
        let full = started.elapsed();
        // The probe wrote into the same lake: remove its files again.
        let curated = format!("{}curated/sales/", lake.location.root_url());
        remove_all(&lake, &curated).await;

        let mut seed: u64 = 0x5eed_0b5e;
        let mut killed_mid_run = 0;
        for _ in 0..6 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let at = full.mul_f64((seed >> 33) as f64 / (1u64 << 31) as f64);
            let mut child = spawn(&q, backend, &args);
            std::thread::sleep(at);
            if child.try_wait().expect("poll").is_none() {
                killed_mid_run += 1;
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        assert!(
            killed_mid_run >= 3,
            "only {killed_mid_run} kills landed mid-run"
        );
        let last = stdout(&q.run(backend, &args));
        assert!(last.contains("SUCCEEDED"), "{last}");
        let total = files * per_file;
        assert_eq!(
            counts(&q, backend),
            format!("count(*),count(DISTINCT curated.sales.order_id)\n{total},{total}\n"),
            "after {killed_mid_run} kills"
        );
        // Nothing new: nothing more.
        let again = stdout(&q.run(backend, &args));
        assert!(again.contains(" 0 rows"), "{again}");
        // Runs that were killed are FAILED once a later run took over their lease (a process
        // killed before it recorded its run, or after it recorded success, leaves none): no
        // run is left STARTING or RUNNING.
        let store = SqliteCatalog::open(q.catalog.path().join("catalog.db")).expect("catalog");
        let runs = store.job_runs(Some("sales_to_parquet"), 50).expect("runs");
        assert!(runs.iter().all(|r| r.state.is_final()), "{runs:?}");
        assert!(
            runs.iter().any(|r| r.state == JobRunState::Failed),
            "{runs:?}"
        );
    }
}

async fn remove_all(lake: &Lake, url: &str) {
    use futures::TryStreamExt;
    use object_store::ObjectStoreExt;
    let (_, prefix) = quarry_lake::split_location(url).expect("url");
    let paths: Vec<object_store::path::Path> = lake
        .location
        .store
        .list(Some(&prefix))
        .map_ok(|m| m.location)
        .try_collect()
        .await
        .expect("list");
    for p in paths {
        lake.location.store.delete(&p).await.expect("delete");
    }
}

/// Two schedulers on one catalog, a fire time due when they start: one run. SIGTERM: both
/// stop cleanly, a job still running after the grace period is recorded as STOPPED.
#[tokio::test]
async fn two_schedulers_run_a_due_job_once_and_stop_cleanly() {
    let q = Quarry::new();
    let jobs = q.catalog.path().join("jobs");
    std::fs::create_dir_all(&jobs).expect("jobs dir");
    std::fs::write(
        jobs.join("tick.toml"),
        "name = \"tick\"\nkind = \"sql\"\nschedule = \"rate(1 minute)\"\nsql = \"SELECT 1\"\n",
    )
    .expect("job");
    std::fs::write(
        jobs.join("endless.toml"),
        "name = \"endless\"\nkind = \"sql\"\nschedule = \"rate(1 minute)\"\nsql = \"SELECT count(*) FROM range(100000000000)\"\n",
    )
    .expect("job");
    let store = SqliteCatalog::open(q.catalog.path().join("catalog.db")).expect("catalog");
    // Both were first seen 5 minutes and 5 seconds ago: a fire time passed 5 s ago, the next
    // is 55 s away.
    let seen = Utc::now() - chrono::Duration::seconds(305);
    for name in ["tick", "endless"] {
        store
            .set_job_scheduler_state(
                name,
                &JobSchedulerState {
                    first_seen: seen,
                    last_fire: None,
                    last_trigger: None,
                },
            )
            .expect("state");
    }
    let dir = jobs.to_string_lossy().into_owned();
    let args = [
        "scheduler",
        "--jobs",
        &dir,
        "--poll",
        "500ms",
        "--grace",
        "1s",
    ];
    let a = spawn(&q, Backend::Local, &args);
    let b = spawn(&q, Backend::Local, &args);
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let runs = store.job_runs(None, 10).expect("runs");
        let tick_done = runs
            .iter()
            .any(|r| r.job == "tick" && r.state == JobRunState::Succeeded);
        let endless_running = runs
            .iter()
            .any(|r| r.job == "endless" && r.state == JobRunState::Running);
        if tick_done && endless_running {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the schedulers never ran the jobs: {runs:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(2));
    for child in [&a, &b] {
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }
    for child in [a, b] {
        let out = child.wait_with_output().expect("wait");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{err}");
        assert!(err.contains("scheduler stopped"), "{err}");
    }
    let runs = store.job_runs(None, 10).expect("runs");
    let of = |job: &str| runs.iter().filter(|r| r.job == job).collect::<Vec<_>>();
    assert_eq!(of("tick").len(), 1, "{runs:?}");
    let endless = of("endless");
    assert_eq!(endless.len(), 1, "{runs:?}");
    assert_eq!(endless[0].state, JobRunState::Stopped, "{runs:?}");
}

/// A crash at each point of a job's write (after staging, after publishing, after the commit,
/// after the whole run): the next run leaves the table with every input row exactly once, and
/// nothing the dead run published stays visible.
#[tokio::test]
async fn a_crash_at_every_point_of_a_write_is_recovered_exactly() {
    for backend in BACKENDS {
        let lake = Lake::empty(backend).await;
        lake.put("sales/region=eu/a.csv", csv(0, 300)).await;
        lake.put("sales/region=us/b.csv", csv(300, 200)).await;
        let q = Quarry::new();
        let jobs = q.catalog.path().join("jobs");
        setup(&q, backend, &lake, &jobs).await;
        let dir = jobs.to_string_lossy().into_owned();
        let args = ["job", "run", "sales_to_parquet", "--jobs", dir.as_str()];
        let mut expected = 500;
        for (i, point) in [
            "write.staged",
            "write.published",
            "write.committed",
            "job.finished",
        ]
        .iter()
        .enumerate()
        {
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_quarry"));
            cmd.args(args)
                .env("QUARRY_CATALOG", q.catalog.path().join("catalog.db"))
                .env("QUARRY_FAILPOINT", point)
                .env_remove("AWS_ENDPOINT_URL");
            if backend == Backend::S3 {
                cmd.envs(s3().env());
            }
            let crashed = cmd.output().expect("run");
            assert!(
                !crashed.status.success(),
                "{point}: the run should have crashed"
            );
            assert!(
                String::from_utf8_lossy(&crashed.stderr).contains("QUARRY_FAILPOINT"),
                "{point}"
            );
            if i < 2 {
                // Published but not committed files are visible until the next run removes them.
                let before = counts(&q, backend);
                assert!(!before.is_empty());
            }
            let ok = stdout(&q.run(backend, &args));
            assert!(ok.contains("SUCCEEDED"), "{point}: {ok}");
            assert_eq!(
                counts(&q, backend),
                format!("count(*),count(DISTINCT curated.sales.order_id)\n{expected},{expected}\n"),
                "after a crash at {point}"
            );
            // New input for the next crash.
            let from = 1000 + i * 100;
            lake.put(&format!("sales/region=eu/n{i}.csv"), csv(from, 100))
                .await;
            expected += 100;
        }
        let last = stdout(&q.run(backend, &args));
        assert!(last.contains("100 rows"), "{last}");
    }
}
