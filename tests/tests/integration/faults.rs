//! Storage faults (issue 16): the query, crawl, write and job suites over a store that fails a seeded share
//! of calls as S3 does (500, 503 SlowDown, resets, timeouts, bodies cut short, listings that
//! fail part-way). Every run must end with the right answer or an error that names the fault
//! and the object; never a wrong answer, a panic, or a half-written catalog.
//!
//!     QUARRY_FAULT_SEEDS=500 cargo test -p quarry-tests --test integration faults -- --nocapture

use std::sync::Arc;

use quarry_catalog::{Catalog, SqliteCatalog};
use quarry_crawler::{CrawlConfig, Crawler};
use quarry_lake::Location;
use quarry_query::{Engine, EngineConfig, ObjectStores, OutputFormat, QueryRequest, render};
use quarry_tests::faults::{FaultyStore, FlakyHttp};
use quarry_tests::{BACKENDS, Lake};

/// Seeds per backend: a short run in `scripts/test`, more on demand.
fn seeds() -> u64 {
    std::env::var("QUARRY_FAULT_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8)
}

/// Queries over every format and compression of the sample lake.
const QUERIES: [&str; 6] = [
    "SELECT region, count(*) AS n, sum(amount) AS total FROM sales GROUP BY region ORDER BY region NULLS LAST",
    "SELECT note FROM sales WHERE order_id IN (1, 2) ORDER BY order_id",
    "SELECT dt, count(*) AS n, count(referrer) AS r FROM events GROUP BY dt ORDER BY dt",
    "SELECT month, sum(id) AS ids, sum(value) AS v FROM metrics GROUP BY month ORDER BY month",
    "SELECT partition_1, partition_2, count(*) AS n, sum(col2) AS ms FROM logs GROUP BY 1, 2 ORDER BY 1, 2",
    "SELECT count(*) AS n FROM metrics",
];

/// An error that says what failed: the injected fault itself, or Quarry's check of a body cut
/// short (which names the object).
fn names_the_fault(e: &str) -> bool {
    e.contains("injected fault") || e.contains("the response ended after")
}

#[derive(Debug, Default)]
struct Tally {
    runs: u64,
    correct: u64,
    named_errors: u64,
    wrong: Vec<String>,
}

fn engine(catalog: Arc<SqliteCatalog>, lake: &Lake, store: Arc<FaultyStore>) -> Engine {
    let stores = Arc::new(ObjectStores::new());
    stores.register(&lake.location.base, store);
    Engine::new(catalog, stores, EngineConfig::default())
}

async fn answer(engine: &Engine, sql: &str) -> Result<String, String> {
    let out = engine
        .run(QueryRequest::new(sql).with_database(Some("demo".into())))
        .await;
    if out.succeeded() {
        Ok(render(&out.schema, &out.batches, OutputFormat::Csv).expect("csv"))
    } else {
        Err(out.record.error.unwrap_or_default())
    }
}

/// `lake` crawled into a fresh catalog, and the answers to [`QUERIES`] without faults.
async fn fault_free(lake: &Lake) -> (Arc<SqliteCatalog>, Vec<String>) {
    let catalog = Arc::new(SqliteCatalog::open_in_memory().expect("catalog"));
    Crawler::new(catalog.clone(), CrawlConfig::new("demo"))
        .crawl(&lake.location)
        .await
        .expect("crawl");
    let clean = engine(
        catalog.clone(),
        lake,
        Arc::new(FaultyStore::new(lake.location.store.clone(), 0.0, 0)),
    );
    let mut expected = Vec::new();
    for q in QUERIES {
        expected.push(answer(&clean, q).await.expect("fault-free answer"));
    }
    (catalog, expected)
}

#[tokio::test]
async fn queries_under_storage_faults_answer_right_or_name_the_fault() {
    for backend in BACKENDS {
        let lake = Lake::sample(backend).await;
        let (catalog, expected) = fault_free(&lake).await;
        let mut tally = Tally::default();
        let (mut operations, mut faults) = (0, 0);
        for seed in 0..seeds() {
            let store = Arc::new(FaultyStore::new(lake.location.store.clone(), 0.15, seed));
            let e = engine(catalog.clone(), &lake, store.clone());
            for (q, want) in QUERIES.iter().zip(&expected) {
                tally.runs += 1;
                match answer(&e, q).await {
                    Ok(got) if &got == want => tally.correct += 1,
                    Ok(got) => tally.wrong.push(format!("seed {seed}: {q}\n{got}")),
                    Err(e) if names_the_fault(&e) => tally.named_errors += 1,
                    Err(e) => tally
                        .wrong
                        .push(format!("seed {seed}: {q}: unnamed error {e}")),
                }
            }
            let f = store.figures();
            operations += f.operations;
            faults += f.faults;
            assert_eq!(
                f.unpinned_overwrites, 0,
                "seed {seed}: a query read an object without naming the version it listed"
            );
        }
        eprintln!(
            "{backend:?}: {} statements, {operations} store calls, {faults} faults injected: \
             {} right, {} named errors, {} wrong",
            tally.runs,
            tally.correct,
            tally.named_errors,
            tally.wrong.len()
        );
        assert!(faults > 0, "the run injected no fault");
        assert!(tally.wrong.is_empty(), "{:#?}", tally.wrong);
    }
}

/// A fault at each store call of each query in turn (the N-th call, N = 1, 2, .. up to the
/// calls a fault-free run makes): every run answers right or names the fault.
#[tokio::test]
async fn a_fault_at_each_call_of_a_query_is_answered_right_or_named() {
    for backend in BACKENDS {
        let lake = Lake::sample(backend).await;
        let (catalog, expected) = fault_free(&lake).await;
        let (mut runs, mut named) = (0, 0);
        for (q, want) in QUERIES.iter().zip(&expected) {
            let counting = Arc::new(FaultyStore::new(lake.location.store.clone(), 0.0, 0));
            answer(&engine(catalog.clone(), &lake, counting.clone()), q)
                .await
                .expect("fault-free answer");
            let calls = counting.figures().operations;
            assert!(calls > 0, "{q}: no store call to fault");
            for n in 1..=calls {
                let store = Arc::new(FaultyStore::on_call(lake.location.store.clone(), n, n));
                runs += 1;
                match answer(&engine(catalog.clone(), &lake, store.clone()), q).await {
                    Ok(got) => assert_eq!(&got, want, "{backend:?} call {n}: {q}"),
                    Err(e) => {
                        assert!(names_the_fault(&e), "{backend:?} call {n}: {q}: {e}");
                        named += 1;
                    }
                }
                assert_eq!(store.figures().faults, 1, "{backend:?} call {n}: {q}");
            }
        }
        eprintln!(
            "{backend:?}: {runs} runs with one fault each, {named} named errors, the rest right"
        );
        assert!(named > 0);
    }
}

#[tokio::test]
async fn crawls_under_storage_faults_commit_all_or_nothing() {
    for backend in BACKENDS {
        let lake = Lake::sample(backend).await;
        let reference = Arc::new(SqliteCatalog::open_in_memory().expect("catalog"));
        let mut config = CrawlConfig::new("demo");
        config.strict = true;
        Crawler::new(reference.clone(), config.clone())
            .crawl(&lake.location)
            .await
            .expect("fault-free crawl");
        let shape = |tables: Vec<quarry_catalog::Table>| -> Vec<String> {
            tables
                .into_iter()
                .map(|t| {
                    format!(
                        "{} {:?} {:?} {:?}",
                        t.name,
                        t.storage.columns,
                        t.partition_keys,
                        t.parameters.get("recordCount")
                    )
                })
                .collect()
        };
        let want = shape(reference.list_tables("demo").await.expect("tables"));
        let (mut committed, mut refused, mut faults) = (0, 0, 0);
        for seed in 0..seeds() {
            let store = Arc::new(FaultyStore::new(lake.location.store.clone(), 0.1, seed));
            let location = Location::new(
                store.clone(),
                lake.location.base.clone(),
                lake.location.prefix.clone(),
            );
            let catalog = Arc::new(SqliteCatalog::open_in_memory().expect("catalog"));
            match Crawler::new(catalog.clone(), config.clone())
                .crawl(&location)
                .await
            {
                Ok(_) => {
                    committed += 1;
                    let got = shape(catalog.list_tables("demo").await.expect("tables"));
                    assert_eq!(got, want, "seed {seed}: a crawl that succeeded differs");
                }
                Err(e) => {
                    refused += 1;
                    let mut text = e.to_string();
                    let mut source = std::error::Error::source(&e);
                    while let Some(s) = source {
                        text.push_str(&format!(": {s}"));
                        source = s.source();
                    }
                    assert!(names_the_fault(&text), "seed {seed}: {text}");
                    let dbs = catalog.list_databases().await.expect("databases");
                    for d in dbs {
                        let tables = catalog.list_tables(&d.name).await.expect("tables");
                        assert!(
                            tables.is_empty(),
                            "seed {seed}: half a crawl committed: {tables:?}"
                        );
                    }
                }
            }
            let f = store.figures();
            faults += f.faults;
            assert_eq!(
                f.unpinned_overwrites, 0,
                "seed {seed}: the crawl read an object without naming the version it listed"
            );
        }
        eprintln!(
            "{backend:?}: {} crawls, {faults} faults injected: {committed} committed whole, \
             {refused} refused with the fault named, 0 half-written",
            seeds()
        );
        assert!(faults > 0);
    }
}

/// CTAS and INSERT over a store whose writes fail too (PUT, multipart, copy, rename): each
/// statement either commits whole or fails leaving the table as it was (no table after a failed
/// CTAS, the old rows after a failed INSERT); no partial file is ever visible to queries.
#[tokio::test]
async fn writes_under_storage_faults_commit_all_or_nothing() {
    for backend in BACKENDS {
        let lake = Lake::sample(backend).await;
        let catalog = Arc::new(SqliteCatalog::open_in_memory().expect("catalog"));
        Crawler::new(catalog.clone(), CrawlConfig::new("demo"))
            .crawl(&lake.location)
            .await
            .expect("crawl");
        let clean = engine(
            catalog.clone(),
            &lake,
            Arc::new(FaultyStore::new(lake.location.store.clone(), 0.0, 0)),
        );
        let count = |table: String| {
            let clean = &clean;
            async move {
                answer(
                    clean,
                    &format!("SELECT count(*) AS n, sum(order_id) AS s FROM {table}"),
                )
                .await
            }
        };
        let base = count("sales".into()).await.expect("sales");
        let (mut committed, mut refused, mut faults) = (0, 0, 0);
        for seed in 0..seeds() {
            let mut store = FaultyStore::new(lake.location.store.clone(), 0.1, seed);
            store.writes = true;
            let store = Arc::new(store);
            let e = engine(catalog.clone(), &lake, store.clone());
            let table = format!("copy_{seed}");
            let location = format!("{}out/{table}/", lake.location.root_url());
            let ctas = format!(
                "CREATE TABLE {table} WITH (format = 'PARQUET', external_location = '{location}', \
                 partitioned_by = ARRAY['region']) AS SELECT order_id, amount, region FROM sales"
            );
            match answer(&e, &ctas).await {
                Ok(_) => {
                    committed += 1;
                    assert_eq!(count(table.clone()).await, Ok(base.clone()), "seed {seed}");
                }
                Err(err) => {
                    refused += 1;
                    assert!(names_the_fault(&err), "seed {seed}: {err}");
                    let gone = count(table.clone()).await.unwrap_err();
                    assert!(gone.contains("not found"), "seed {seed}: {gone}");
                    // Nothing of it is visible: a crawl of its folder finds no data.
                    let files = quarry_lake::list_data_files(
                        &lake.location.store,
                        &object_store::path::Path::from(format!(
                            "{}/out/{table}",
                            lake.location.prefix
                        )),
                    )
                    .await
                    .unwrap_or_default();
                    assert!(
                        files.is_empty(),
                        "seed {seed}: files left behind: {files:?}"
                    );
                    faults += store.figures().faults;
                    continue;
                }
            }
            // INSERT under faults: all the rows or none.
            let before = count(table.clone()).await.expect("table");
            match answer(
                &e,
                &format!("INSERT INTO {table} SELECT order_id, amount, region FROM sales"),
            )
            .await
            {
                Ok(_) => {
                    committed += 1;
                    let after = count(table.clone()).await.expect("table");
                    assert_ne!(after, before, "seed {seed}: the INSERT added nothing");
                }
                Err(err) => {
                    refused += 1;
                    assert!(names_the_fault(&err), "seed {seed}: {err}");
                    assert_eq!(
                        count(table.clone()).await,
                        Ok(before),
                        "seed {seed}: half an INSERT"
                    );
                }
            }
            faults += store.figures().faults;
        }
        eprintln!(
            "{backend:?}: {} CTAS + INSERT pairs, {faults} faults injected: {committed} committed whole, {refused} refused with the fault named, 0 partial",
            seeds()
        );
        assert!(faults > 0);
    }
}

/// A bookmarked job (INSERT INTO curated SELECT .. FROM raw) over a store whose reads and
/// writes fail: each run succeeds whole or fails naming the fault with the output and the
/// bookmark as they were; a clean run afterwards converges on every object inserted exactly once.
#[tokio::test]
async fn jobs_under_storage_faults_insert_each_object_once() {
    use quarry_catalog::JobRunState;
    for backend in BACKENDS {
        let (mut succeeded, mut failed, mut faults) = (0, 0, 0);
        for seed in 0..seeds() {
            let lake = Lake::empty(backend).await;
            let rt = crate::jobs::setup(&lake, Arc::clone(&lake.location.store)).await;
            let j = crate::jobs::job(crate::jobs::SALES_JOB);
            let mut store = FaultyStore::new(lake.location.store.clone(), 0.1, seed);
            store.writes = true;
            let store = Arc::new(store);
            rt.stores.register(&lake.location.base, store.clone());
            let mut done = false;
            for attempt in 0..3 {
                // The output is read through a clean store: only the run sees faults.
                rt.stores
                    .register(&lake.location.base, lake.location.store.clone());
                let before = crate::jobs::curated(&rt).await;
                rt.stores.register(&lake.location.base, store.clone());
                let r = crate::jobs::run(&rt, &j).await;
                rt.stores
                    .register(&lake.location.base, lake.location.store.clone());
                let after = crate::jobs::curated(&rt).await;
                match r.state {
                    JobRunState::Succeeded => {
                        succeeded += 1;
                        let expected = if done { before } else { (3, 3, 6) };
                        assert_eq!(after, expected, "seed {seed} attempt {attempt}: {r:?}");
                        done = true;
                    }
                    _ => {
                        failed += 1;
                        let err = r.error.clone().unwrap_or_default();
                        assert!(
                            names_the_fault(&err),
                            "seed {seed} attempt {attempt}: {err}"
                        );
                        assert_eq!(after, before, "seed {seed} attempt {attempt}: half a run");
                    }
                }
            }
            faults += store.figures().faults;
            // A clean run converges: every object inserted exactly once.
            rt.stores
                .register(&lake.location.base, lake.location.store.clone());
            let clean = crate::jobs::run(&rt, &j).await;
            assert_eq!(
                clean.state,
                JobRunState::Succeeded,
                "seed {seed}: {clean:?}"
            );
            assert_eq!(crate::jobs::curated(&rt).await, (3, 3, 6), "seed {seed}");
        }
        eprintln!(
            "{backend:?}: {} seeds x 3 job runs, {faults} faults injected: {succeeded} runs succeeded whole, {failed} failed naming the fault, 0 partial; every seed converged",
            seeds()
        );
        assert!(faults > 0);
    }
}

/// Faults on the wire, below object_store's client (issue 16): a proxy in front of the S3
/// endpoint answers a seeded 20% of requests with 500 or 503 SlowDown, closes the connection
/// before answering, or cuts a body half-way. The S3 store's retries (`s3_retry`: 10 tries,
/// backoff from 100 ms) must ride them out: every crawl commits the whole lake and every query
/// answers exactly as without faults.
#[tokio::test]
async fn s3_retries_ride_out_faults_on_the_wire() {
    let lake = Lake::sample(quarry_tests::Backend::S3).await;
    let (_, expected) = fault_free(&lake).await;
    let (mut requests, mut faults, mut statements) = (0, 0, 0);
    let rounds = seeds().div_ceil(4);
    for seed in 0..rounds {
        let proxy = FlakyHttp::start(&quarry_tests::s3().endpoint, 0.2, seed);
        let options = quarry_tests::s3().options().into_iter().map(|(k, v)| {
            let v = if k == "aws_endpoint_url" {
                proxy.endpoint.clone()
            } else {
                v
            };
            (k, v)
        });
        let flaky = Location::parse_with(&lake.url, options).expect("location");
        let catalog = Arc::new(SqliteCatalog::open_in_memory().expect("catalog"));
        let report = Crawler::new(catalog.clone(), CrawlConfig::new("demo"))
            .crawl(&flaky)
            .await
            .unwrap_or_else(|e| panic!("seed {seed}: the crawl did not ride out the faults: {e}"));
        assert!(
            report
                .skipped
                .iter()
                .all(|s| !s.detail.contains("injected")),
            "seed {seed}: {report}"
        );
        let stores = Arc::new(ObjectStores::new());
        stores.register(&flaky.base, flaky.store.clone());
        let e = Engine::new(catalog, stores, EngineConfig::default());
        for (q, want) in QUERIES.iter().zip(&expected) {
            statements += 1;
            match answer(&e, q).await {
                Ok(got) => assert_eq!(&got, want, "seed {seed}: {q}"),
                Err(err) => panic!("seed {seed}: {q}: not retried: {err}"),
            }
        }
        let (r, f) = proxy.figures();
        requests += r;
        faults += f;
    }
    eprintln!(
        "S3 through a flaky proxy: {rounds} crawls + {statements} statements, {requests} HTTP requests, \
         {faults} faults injected, all answers right"
    );
    assert!(faults > 0, "the run injected no fault");
}
