//! Jobs end to end on local files and S3 (moto): bookmarks that process each object once and
//! advance only with the output's commit, clean-up after a dead run, retries and timeouts,
//! schedule claims shared by two schedulers, `after` triggers, and compaction under a reader.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::Utc;
use futures::TryStreamExt;
use quarry_catalog::{Catalog, JobRunState, SqliteCatalog, WriteIntent};
use quarry_crawler::{CrawlConfig, Crawler};
use quarry_jobs::compact::{CompactOptions, compact};
use quarry_jobs::run::JobRuntime;
use quarry_jobs::scheduler::{Decision, scheduled, triggered};
use quarry_jobs::spec::{Job, JobSpec};
use quarry_jobs::{Error, RunOptions};
use quarry_query::{Engine, EngineConfig, ObjectStores, QueryRequest};
use quarry_tests::failing::FailingStore;
use quarry_tests::{BACKENDS, Backend, Lake};
use tokio::sync::watch;

/// A raw CSV table `raw.sales` (partitioned by region) crawled from `lake`, an empty Parquet
/// table `curated.sales` beside it, and a runtime over them reading through `store`.
pub(crate) async fn setup(lake: &Lake, store: Arc<dyn object_store::ObjectStore>) -> JobRuntime {
    lake.put(
        "sales/region=eu/a.csv",
        b"order_id,amount\n1,10.5\n2,20\n".to_vec(),
    )
    .await;
    lake.put("sales/region=us/b.csv", b"order_id,amount\n3,30\n".to_vec())
        .await;
    // A second dataset, so that the crawl makes `sales` a table of its own.
    lake.put("other/o.csv", b"x,y\n1,2\n".to_vec()).await;
    let catalog = Arc::new(SqliteCatalog::open_in_memory().expect("catalog"));
    let sales = lake.location.clone();
    Crawler::new(catalog.clone(), CrawlConfig::new("raw"))
        .crawl(&sales)
        .await
        .expect("crawl");
    let stores = Arc::new(ObjectStores::new());
    stores.register(&lake.location.base, store);
    let rt = JobRuntime::new(
        catalog.clone(),
        catalog.clone(),
        stores,
        EngineConfig::default(),
    );
    let curated = format!("{}curated/sales/", lake.location.root_url());
    ok(
        &rt,
        &format!(
            "CREATE DATABASE curated; CREATE EXTERNAL TABLE curated.sales (order_id bigint, amount double, region string) STORED AS PARQUET LOCATION '{curated}'"
        ),
    )
    .await;
    rt
}

async fn ok(rt: &JobRuntime, sql: &str) -> Vec<datafusion::arrow::array::RecordBatch> {
    let engine = Engine::new(
        Arc::clone(&rt.catalog),
        Arc::clone(&rt.stores),
        EngineConfig::default(),
    );
    let mut batches = Vec::new();
    for s in quarry_query::split_statements(sql).expect("split") {
        let out = engine.run(QueryRequest::new(s.clone())).await;
        assert!(out.succeeded(), "{s}: {:?}", out.record.error);
        batches = out.batches;
    }
    batches
}

/// `count(*)`, `count(DISTINCT order_id)` and `sum(order_id)` of curated.sales.
pub(crate) async fn curated(rt: &JobRuntime) -> (i64, i64, i64) {
    let b = ok(
        rt,
        "SELECT count(*), count(DISTINCT order_id), coalesce(sum(order_id), 0) FROM curated.sales",
    )
    .await;
    let v = |i: usize| {
        datafusion::arrow::util::display::array_value_to_string(b[0].column(i), 0)
            .expect("value")
            .parse::<i64>()
            .expect("number")
    };
    (v(0), v(1), v(2))
}

pub(crate) fn job(toml: &str) -> Job {
    let spec: JobSpec = toml::from_str(toml).expect("job TOML");
    Job::from_spec(spec, "test").expect("valid job")
}

pub(crate) const SALES_JOB: &str = r#"
name = "sales_to_parquet"
kind = "sql"
schedule = "cron(0 * * * ? *)"
database = "raw"
bookmark = ["raw.sales"]
sql = "INSERT INTO curated.sales SELECT order_id, amount, region FROM raw.sales"
"#;

fn never() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    std::mem::forget(tx);
    rx
}

pub(crate) async fn run(rt: &JobRuntime, j: &Job) -> quarry_catalog::JobRun {
    rt.run(j, RunOptions::default(), never())
        .await
        .expect("the run starts")
}

#[tokio::test]
async fn a_bookmarked_job_inserts_each_object_once() {
    for backend in BACKENDS {
        let lake = Lake::empty(backend).await;
        let rt = setup(&lake, Arc::clone(&lake.location.store)).await;
        let j = job(SALES_JOB);

        let first = run(&rt, &j).await;
        assert_eq!(first.state, JobRunState::Succeeded, "{first:?}");
        assert_eq!((first.rows, first.objects_processed), (3, 2));
        assert_eq!(curated(&rt).await, (3, 3, 6));

        let again = run(&rt, &j).await;
        assert_eq!(again.state, JobRunState::Succeeded);
        assert_eq!((again.rows, again.objects_processed), (0, 0));
        assert_eq!(
            curated(&rt).await,
            (3, 3, 6),
            "nothing new: nothing inserted"
        );

        // A new object lands in an existing partition; no re-crawl.
        lake.put(
            "sales/region=us/c.csv",
            b"order_id,amount\n4,40\n5,50\n".to_vec(),
        )
        .await;
        let third = run(&rt, &j).await;
        assert_eq!((third.rows, third.objects_processed), (2, 1), "{third:?}");
        assert_eq!(curated(&rt).await, (5, 5, 15));

        // --no-bookmark reads everything and leaves the bookmark alone.
        let all = rt
            .run(
                &j,
                RunOptions {
                    no_bookmark: true,
                    ..Default::default()
                },
                never(),
            )
            .await
            .expect("run");
        assert_eq!(all.rows, 5);
        assert_eq!(curated(&rt).await, (10, 5, 30));
        assert_eq!(run(&rt, &j).await.rows, 0, "the bookmark did not move");

        // A rewritten object is read again (its ETag / mtime changed).
        tokio::time::sleep(Duration::from_millis(1100)).await;
        lake.put("sales/region=eu/a.csv", b"order_id,amount\n6,60\n".to_vec())
            .await;
        let rewritten = run(&rt, &j).await;
        assert_eq!((rewritten.rows, rewritten.objects_processed), (1, 1));

        // After a reset, everything again.
        let store = &rt.store;
        assert_eq!(
            store.reset_job_bookmark("sales_to_parquet").expect("reset"),
            3
        );
        assert_eq!(run(&rt, &j).await.rows, 4);
        let runs = store.job_runs(Some("sales_to_parquet"), 10).expect("runs");
        assert_eq!(runs.len(), 7);
        assert!(runs.iter().all(|r| r.state == JobRunState::Succeeded));
    }
}

#[tokio::test]
async fn a_failed_commit_leaves_the_bookmark_where_it_was() {
    for backend in BACKENDS {
        let lake = Lake::empty(backend).await;
        let failing = Arc::new(FailingStore::new(Arc::clone(&lake.location.store)));
        let rt = setup(&lake, failing.clone()).await;
        let j = job(SALES_JOB);
        // Fail each write in turn (staging, publishing) until the run gets through.
        let mut n = 1;
        loop {
            failing.fail_at(n);
            let r = run(&rt, &j).await;
            if r.state == JobRunState::Succeeded {
                break;
            }
            assert_eq!(r.state, JobRunState::Failed);
            assert!(
                r.error.as_deref().unwrap_or("").contains("injected"),
                "{r:?}"
            );
            assert_eq!(
                curated(&rt).await.0,
                0,
                "write {n} failed: nothing may be visible"
            );
            assert!(
                rt.store
                    .job_bookmark("sales_to_parquet", "raw.sales")
                    .expect("bookmark")
                    .is_empty(),
                "write {n} failed: the bookmark must not move"
            );
            n += 1;
            assert!(n < 50, "the run never got through");
        }
        assert!(n > 2, "failures were injected ({n})");
        assert_eq!(curated(&rt).await, (3, 3, 6));
    }
}

#[tokio::test]
async fn what_a_dead_run_published_is_removed_by_the_next_run() {
    for backend in BACKENDS {
        let lake = Lake::empty(backend).await;
        let rt = setup(&lake, Arc::clone(&lake.location.store)).await;
        let j = job(SALES_JOB);
        // A run that died after publishing a file and staging another, before its commit.
        let root = format!("{}curated/sales/", lake.location.root_url());
        lake.put(
            "curated/sales/dead_00001.parquet",
            parquet_rows(&[100, 101]),
        )
        .await;
        lake.put(
            "curated/sales/.quarry-staging-q-dead-0/x.parquet",
            parquet_rows(&[102]),
        )
        .await;
        assert_eq!(curated(&rt).await.0, 2, "the dead run's file is visible");
        rt.store
            .record_write_intent(&WriteIntent {
                id: "q-dead".into(),
                job: "sales_to_parquet".into(),
                run_id: "jr_dead".into(),
                created_at: Utc::now(),
                root: root.clone(),
                published: vec![format!("{root}dead_00001.parquet")],
            })
            .expect("intent");
        let r = run(&rt, &j).await;
        assert_eq!(r.state, JobRunState::Succeeded, "{r:?}");
        assert_eq!(curated(&rt).await, (3, 3, 6), "exactly the input, once");
        let (_, prefix) = quarry_lake::split_location(&root).expect("root");
        let left: Vec<String> = lake
            .location
            .store
            .list(Some(&prefix))
            .map_ok(|m| m.location.to_string())
            .try_collect()
            .await
            .expect("list");
        assert!(
            left.iter()
                .all(|p| !p.contains("dead") && !p.contains(".quarry-staging")),
            "{left:?}"
        );
        assert!(
            rt.store
                .write_intents("sales_to_parquet")
                .expect("intents")
                .is_empty()
        );
    }
}

/// A Parquet file with an `order_id bigint, amount double, region string` row per id.
fn parquet_rows(ids: &[i64]) -> Vec<u8> {
    use datafusion::arrow::array::{Float64Array, Int64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    let schema = Arc::new(Schema::new(vec![
        Field::new("order_id", DataType::Int64, true),
        Field::new("amount", DataType::Float64, true),
        Field::new("region", DataType::Utf8, true),
    ]));
    let batch = datafusion::arrow::array::RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from(ids.to_vec())),
            Arc::new(Float64Array::from(vec![1.0; ids.len()])),
            Arc::new(StringArray::from(vec!["x"; ids.len()])),
        ],
    )
    .expect("batch");
    let mut out = Vec::new();
    let mut w = parquet::arrow::ArrowWriter::try_new(&mut out, schema, None).expect("writer");
    w.write(&batch).expect("write");
    w.close().expect("close");
    out
}

#[tokio::test]
async fn failures_retry_with_backoff_and_a_timeout_stops_the_run() {
    let lake = Lake::empty(Backend::Local).await;
    let rt = setup(&lake, Arc::clone(&lake.location.store)).await;
    let failing = job(r#"
name = "broken"
kind = "sql"
max_retries = 2
retry_delay = "50ms"
sql = "INSERT INTO curated.sales SELECT * FROM raw.missing"
"#);
    let started = std::time::Instant::now();
    let r = run(&rt, &failing).await;
    assert_eq!((r.state, r.attempt), (JobRunState::Failed, 3), "{r:?}");
    assert!(
        r.error.as_deref().unwrap_or("").contains("missing"),
        "{r:?}"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "backoff: 50 ms then 100 ms"
    );

    let slow = job(r#"
name = "slow"
kind = "sql"
timeout = "1s"
max_retries = 3
sql = "SELECT count(*) FROM range(10000000000)"
"#);
    let r = run(&rt, &slow).await;
    assert_eq!(r.state, JobRunState::Timeout, "{r:?}");
    assert_eq!(r.attempt, 1, "a timeout is not retried");
    assert!(
        r.error.as_deref().unwrap_or("").contains("timed out"),
        "{r:?}"
    );

    // Stopped from outside (the scheduler shutting down, Ctrl-C).
    let (tx, rx) = watch::channel(false);
    let stopper = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        tx.send_replace(true);
        tx
    });
    let unlimited = job(r#"
name = "endless"
kind = "sql"
sql = "SELECT count(*) FROM range(10000000000)"
"#);
    let r = rt
        .run(&unlimited, RunOptions::default(), rx)
        .await
        .expect("run");
    let _ = stopper.await;
    assert_eq!(r.state, JobRunState::Stopped, "{r:?}");
}

#[tokio::test]
async fn one_run_per_job_at_a_time_and_one_claim_per_fire_time() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("catalog.db");
    // Two schedulers: two processes' worth of connections to one catalog file.
    let runtime = |owner: &str| {
        let c = Arc::new(SqliteCatalog::open(&path).expect("catalog"));
        let mut rt = JobRuntime::new(
            c.clone(),
            c,
            Arc::new(ObjectStores::new()),
            EngineConfig::default(),
        );
        rt.owner = owner.to_string();
        rt
    };
    let (a, b) = (runtime("host-a:1"), runtime("host-b:2"));
    let j = job(r#"
name = "hourly"
kind = "sql"
schedule = "cron(0 * * * ? *)"
sql = "SELECT 1"
"#);
    let t0 = "2026-01-01T10:30:00Z"
        .parse::<chrono::DateTime<Utc>>()
        .expect("time");
    // First seen at 10:30: nothing due until 11:00.
    assert_eq!(
        scheduled(&a, &j, t0, Duration::from_secs(60)).expect("a"),
        Decision::Wait
    );
    let t1 = "2026-01-01T11:00:02Z".parse().expect("time");
    let decisions = [
        scheduled(&a, &j, t1, Duration::from_secs(60)).expect("a"),
        scheduled(&b, &j, t1, Duration::from_secs(60)).expect("b"),
    ];
    assert_eq!(
        decisions
            .iter()
            .filter(|d| matches!(d, Decision::Run { .. }))
            .count(),
        1,
        "{decisions:?}"
    );
    // Down from 11:00 to 14:10: one catch-up run (run-once), or none with skip.
    let t2 = "2026-01-01T14:10:00Z".parse().expect("time");
    assert_eq!(
        scheduled(&b, &j, t2, Duration::from_secs(60)).expect("b"),
        Decision::Run {
            trigger: "missed".into()
        }
    );
    assert_eq!(
        scheduled(&a, &j, t2, Duration::from_secs(60)).expect("a"),
        Decision::Wait
    );
    let skipping = job(r#"
name = "hourly"
kind = "sql"
schedule = "cron(0 * * * ? *)"
missed = "skip"
sql = "SELECT 1"
"#);
    let t3 = "2026-01-01T17:30:00Z".parse().expect("time");
    assert!(matches!(
        scheduled(&a, &skipping, t3, Duration::from_secs(60)).expect("a"),
        Decision::Skip { .. }
    ));

    // The lease: while one run holds it, the other scheduler cannot start the job.
    let slow = job(r#"
name = "slow"
kind = "sql"
sql = "SELECT count(*) FROM range(10000000000)"
"#);
    let (stop, stopped) = watch::channel(false);
    let (a2, slow2) = (a.clone(), slow.clone());
    let first = tokio::spawn(async move { a2.run(&slow2, RunOptions::default(), stopped).await });
    for _ in 0..500 {
        let runs = a.store.job_runs(Some("slow"), 1).expect("runs");
        if runs
            .first()
            .is_some_and(|r| r.state == JobRunState::Running)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    match b.run(&slow, RunOptions::default(), never()).await {
        Err(Error::AlreadyRunning { owner, .. }) => assert_eq!(owner, "host-a:1"),
        other => panic!("two runs of one job at once: {other:?}"),
    }
    stop.send_replace(true);
    let r = first.await.expect("join").expect("run");
    assert_eq!(r.state, JobRunState::Stopped);
    let quick = job(r#"
name = "slow"
kind = "sql"
sql = "SELECT 1"
"#);

    // A holder that stops renewing (killed) loses the job after the lease; its run fails.
    let store = Arc::clone(&a.store);
    store
        .record_job_run(&quarry_catalog::JobRun {
            run_id: "jr_ghost".into(),
            job: "slow".into(),
            trigger: "schedule".into(),
            state: JobRunState::Running,
            attempt: 1,
            owner: "host-c:3".into(),
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
        })
        .expect("run");
    store
        .acquire_job_lease(
            "slow",
            "host-c:3",
            "jr_ghost",
            Utc::now(),
            Utc::now() + chrono::Duration::seconds(3),
        )
        .expect("lease");
    // Another job is not held up by it.
    assert!(b.run(&j, RunOptions::default(), never()).await.is_ok());
    assert!(matches!(
        b.run(&quick, RunOptions::default(), never()).await,
        Err(Error::AlreadyRunning { .. })
    ));
    tokio::time::sleep(Duration::from_millis(3200)).await;
    let r = b
        .run(&quick, RunOptions::default(), never())
        .await
        .expect("run");
    assert_eq!(r.state, JobRunState::Succeeded);
    let ghost = store.job_run("jr_ghost").expect("read").expect("kept");
    assert_eq!(ghost.state, JobRunState::Failed);
}

#[tokio::test]
async fn an_after_job_runs_once_per_upstream_success() {
    let lake = Lake::empty(Backend::Local).await;
    let rt = setup(&lake, Arc::clone(&lake.location.store)).await;
    let up = job(SALES_JOB);
    let down = job(r#"
name = "report"
kind = "sql"
after = ["sales_to_parquet"]
sql = "SELECT count(*) FROM curated.sales"
"#);
    let now = Utc::now();
    assert_eq!(triggered(&rt, &down, now).expect("t"), Decision::Wait);
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(run(&rt, &up).await.state, JobRunState::Succeeded);
    assert_eq!(
        triggered(&rt, &down, Utc::now()).expect("t"),
        Decision::Run {
            trigger: "after sales_to_parquet".into()
        }
    );
    assert_eq!(
        triggered(&rt, &down, Utc::now()).expect("t"),
        Decision::Wait,
        "one success, one run"
    );
}

/// `n` small Parquet files per partition of `events` (x = 0..), crawled as `lake_db.events`.
async fn small_files(lake: &Lake, partitions: usize, n: usize) -> JobRuntime {
    let mut id = 0;
    for p in 0..partitions {
        for f in 0..n {
            let ids: Vec<i64> = (id..id + 10).collect();
            id += 10;
            lake.put(
                &format!("events/dt=2024-01-0{}/part-{f:03}.parquet", p + 1),
                parquet_rows(&ids),
            )
            .await;
        }
    }
    lake.put("other/o.csv", b"x,y\n1,2\n".to_vec()).await;
    let catalog = Arc::new(SqliteCatalog::open_in_memory().expect("catalog"));
    Crawler::new(catalog.clone(), CrawlConfig::new("lake_db"))
        .crawl(&lake.location)
        .await
        .expect("crawl");
    let stores = Arc::new(ObjectStores::new());
    stores.register(&lake.location.base, Arc::clone(&lake.location.store));
    JobRuntime::new(catalog.clone(), catalog, stores, EngineConfig::default())
}

async fn events(rt: &JobRuntime) -> (String, String) {
    let b = ok(rt, "SELECT count(*), sum(order_id) FROM lake_db.events").await;
    let v = |i: usize| {
        datafusion::arrow::util::display::array_value_to_string(b[0].column(i), 0).expect("v")
    };
    (v(0), v(1))
}

#[tokio::test]
async fn compaction_switches_partitions_atomically_under_a_reader() {
    for backend in BACKENDS {
        let lake = Lake::empty(backend).await;
        let rt = small_files(&lake, 2, 30).await;
        let expected = events(&rt).await;
        assert_eq!(expected.0, "600");
        let stop = Arc::new(AtomicBool::new(false));
        let reader = {
            let (rt, stop, expected) = (rt.clone(), Arc::clone(&stop), expected.clone());
            tokio::spawn(async move {
                let mut reads = 0;
                while !stop.load(Ordering::SeqCst) || reads == 0 {
                    assert_eq!(events(&rt).await, expected, "a reader saw a mix");
                    reads += 1;
                }
                reads
            })
        };
        let options = CompactOptions {
            target_file_size: 1 << 20,
            sort: vec!["order_id".into()],
            ..Default::default()
        };
        let report = compact(
            &rt.catalog,
            &rt.stores,
            &rt.store,
            &EngineConfig::default(),
            "lake_db.events",
            &options,
            "jr_c1",
        )
        .await
        .expect("compact");
        stop.store(true, Ordering::SeqCst);
        let reads = reader.await.expect("reader");
        assert!(reads >= 1);
        assert_eq!(
            (
                report.partitions_compacted,
                report.files_before,
                report.files_after,
                report.rows
            ),
            (2, 60, 2, 600),
            "{report:?}"
        );
        assert_eq!(events(&rt).await, expected);
        let parts = rt
            .catalog
            .get_partitions("lake_db", "events", &quarry_catalog::PartitionFilter::all())
            .await
            .expect("partitions");
        assert!(
            parts.iter().all(|p| p.location.contains("/_compacted-")),
            "{parts:?}"
        );
        // The replaced files stay for the grace period, then go.
        let due_now = rt.store.due_retired_files(Utc::now(), 1000).expect("due");
        assert!(due_now.is_empty());
        let due_later = rt
            .store
            .due_retired_files(Utc::now() + chrono::Duration::hours(2), 1000)
            .expect("due");
        assert_eq!(due_later.len(), 60);

        // Compacting again: one file per partition is not a small-files problem.
        let again = compact(
            &rt.catalog,
            &rt.stores,
            &rt.store,
            &EngineConfig::default(),
            "lake_db.events",
            &options,
            "jr_c2",
        )
        .await
        .expect("compact");
        assert_eq!(
            (again.partitions_compacted, again.partitions_skipped),
            (0, 2)
        );
        assert_eq!(events(&rt).await, expected);
    }
}

#[tokio::test]
async fn compaction_converts_csv_to_parquet_and_an_insert_follows_the_new_location() {
    let lake = Lake::empty(Backend::Local).await;
    for i in 0..5 {
        lake.put(
            &format!("logs/day=1/f{i}.csv"),
            format!("id,msg\n{i},hello {i}\n").into_bytes(),
        )
        .await;
    }
    lake.put("other/o.csv", b"x,y\n1,2\n".to_vec()).await;
    let catalog = Arc::new(SqliteCatalog::open_in_memory().expect("catalog"));
    Crawler::new(catalog.clone(), CrawlConfig::new("l"))
        .crawl(&lake.location)
        .await
        .expect("crawl");
    let stores = Arc::new(ObjectStores::new());
    stores.register(&lake.location.base, Arc::clone(&lake.location.store));
    let rt = JobRuntime::new(
        catalog.clone(),
        catalog.clone(),
        stores,
        EngineConfig::default(),
    );
    let before = ok(&rt, "SELECT string_agg(msg, ',' ORDER BY id) FROM l.logs").await;
    // In its own format first: still a CSV table, the same rows, one file.
    let same = compact(
        &rt.catalog,
        &rt.stores,
        &rt.store,
        &EngineConfig::default(),
        "l.logs",
        &CompactOptions {
            grace: Duration::ZERO,
            ..Default::default()
        },
        "jr_csv",
    )
    .await
    .expect("compact");
    assert_eq!(
        (same.files_before, same.files_after, same.rows),
        (5, 1, 5),
        "{same:?}"
    );
    let t = catalog
        .get_table("l", "logs")
        .await
        .expect("get")
        .expect("table");
    assert!(quarry_lake::table_format_label(&t).starts_with("csv"));
    assert_eq!(
        format!("{before:?}"),
        format!(
            "{:?}",
            ok(&rt, "SELECT string_agg(msg, ',' ORDER BY id) FROM l.logs").await
        )
    );
    // Then converted to Parquet (every partition, whatever its files).
    let j = job(r#"
name = "compact_logs"
kind = "compact"
table = "l.logs"
convert = true
grace = "0s"
"#);
    let r = run(&rt, &j).await;
    assert_eq!(r.state, JobRunState::Succeeded, "{r:?}");
    let t = catalog
        .get_table("l", "logs")
        .await
        .expect("get")
        .expect("table");
    assert!(
        quarry_lake::table_format_label(&t).starts_with("parquet"),
        "{}",
        quarry_lake::table_format_label(&t)
    );
    let after = ok(&rt, "SELECT string_agg(msg, ',' ORDER BY id) FROM l.logs").await;
    assert_eq!(format!("{before:?}"), format!("{after:?}"));
    // The CSV files are gone (zero grace), an INSERT lands in the compacted folder.
    ok(&rt, "INSERT INTO l.logs VALUES (9, 'late', 1)").await;
    let n = ok(&rt, "SELECT count(*) FROM l.logs").await;
    assert_eq!(
        datafusion::arrow::util::display::array_value_to_string(n[0].column(0), 0).expect("v"),
        "6"
    );
}

#[tokio::test]
async fn a_crawl_job_catalogs_new_data() {
    let lake = Lake::empty(Backend::Local).await;
    lake.put("clicks/day=1/a.json", b"{\"id\": 1}\n".to_vec())
        .await;
    lake.put("views/v.csv", b"url,n\nx,2\n".to_vec()).await;
    let catalog = Arc::new(SqliteCatalog::open_in_memory().expect("catalog"));
    let rt = JobRuntime::new(
        catalog.clone(),
        catalog.clone(),
        Arc::new(ObjectStores::new()),
        EngineConfig::default(),
    );
    let j = job(&format!(
        "name = \"crawl_raw\"\nkind = \"crawl\"\ndatabase = \"raw\"\ntargets = [\"{}\"]\n",
        lake.url
    ));
    let r = run(&rt, &j).await;
    assert_eq!(r.state, JobRunState::Succeeded, "{r:?}");
    let names: Vec<String> = catalog
        .list_tables("raw")
        .await
        .expect("tables")
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, ["clicks", "views"]);
    lake.put("clicks/day=2/b.json", b"{\"id\": 3}\n".to_vec())
        .await;
    assert_eq!(run(&rt, &j).await.state, JobRunState::Succeeded);
    assert_eq!(
        catalog
            .count_partitions("raw", "clicks")
            .await
            .expect("count"),
        2
    );
    let bad = job(
        "name = \"crawl_bad\"\nkind = \"crawl\"\ndatabase = \"raw\"\ntargets = [\"ftp://nowhere/\"]\n",
    );
    let r = run(&rt, &bad).await;
    assert_eq!(r.state, JobRunState::Failed);
    assert!(
        r.error.as_deref().unwrap_or("").contains("ftp://nowhere/"),
        "{r:?}"
    );
}
