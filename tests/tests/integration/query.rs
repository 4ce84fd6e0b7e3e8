use std::io::Write;
use std::sync::Arc;

use quarry_catalog::{Catalog, QueryState, SqliteCatalog};
use quarry_crawler::{CrawlConfig, Crawler};
use quarry_query::results::write_result;
use quarry_query::{
    Engine, EngineConfig, ObjectStores, OutputFormat, QueryOutput, QueryRequest, render,
};
use quarry_tests::recording::RecordingStore;
use quarry_tests::{BACKENDS, Backend, Lake};

struct Setup {
    lake: Lake,
    catalog: Arc<SqliteCatalog>,
    engine: Engine,
    stores: Arc<ObjectStores>,
    recorder: Arc<RecordingStore>,
}

fn gzip(text: &str) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(text.as_bytes()).expect("gzip");
    e.finish().expect("gzip")
}

/// The sample lake plus a gzip CSV table, crawled into a fresh catalog.
async fn setup(backend: Backend) -> Setup {
    let lake = Lake::sample(backend).await;
    for day in 1..=3 {
        let mut body = String::from("id,qty,price\n");
        for i in 0..50 {
            body.push_str(&format!("{},{},{}.25\n", day * 100 + i, i % 7, i));
        }
        lake.put(
            &format!("orders/dt=2024-02-0{day}/part-0.csv.gz"),
            gzip(&body),
        )
        .await;
    }
    let catalog = Arc::new(SqliteCatalog::open_in_memory().expect("catalog"));
    Crawler::new(catalog.clone(), CrawlConfig::new("demo"))
        .crawl(&lake.location)
        .await
        .expect("crawl");
    let recorder = Arc::new(RecordingStore::new(lake.location.store.clone()));
    let stores = Arc::new(ObjectStores::new());
    stores.register(&lake.location.base, recorder.clone());
    let engine = Engine::new(catalog.clone(), stores.clone(), EngineConfig::default())
        .with_history(catalog.clone());
    Setup {
        lake,
        catalog,
        engine,
        stores,
        recorder,
    }
}

impl Setup {
    /// Replace metrics' month=2 file with month=1's rows, without re-crawling: its bookmark
    /// (size and ETag / mtime) no longer matches.
    async fn rewrite_month_2_behind_the_catalog(&self) {
        let bytes = std::fs::read(
            quarry_tests::sample_data().join("metrics/year=2024/month=1/part-0.parquet"),
        )
        .expect("sample parquet");
        self.lake
            .put("metrics/year=2024/month=2/part-0.parquet", bytes)
            .await;
    }

    async fn run(&self, sql: &str) -> QueryOutput {
        self.engine
            .run(QueryRequest::new(sql).with_database(Some("demo".into())))
            .await
    }

    async fn csv(&self, sql: &str) -> String {
        let out = self.run(sql).await;
        assert!(out.succeeded(), "{sql}: {:?}", out.record.error);
        render(&out.schema, &out.batches, OutputFormat::Csv).expect("csv")
    }
}

#[tokio::test]
async fn every_format_and_partition_type_reads_back() {
    for backend in BACKENDS {
        let s = setup(backend).await;
        assert_eq!(
            s.csv("SELECT region, count(*) AS n, sum(amount) AS total FROM sales GROUP BY region ORDER BY region NULLS LAST").await,
            "region,n,total\neu west,2,19.5\nus-east,2,108.25\n,1,1.0\n"
        );
        // quoted delimiters and newlines survive
        assert_eq!(
            s.csv("SELECT note FROM sales WHERE order_id IN (1, 2) ORDER BY order_id")
                .await,
            "note\n\"rush order, gift wrap\"\n\"two\nlines\"\n"
        );
        // nested JSON, a column added on day 2 reads as NULL on day 1, date partitions
        assert_eq!(
            s.csv("SELECT dt, count(*) AS n, count(referrer) AS r, max(get_field(events.user, 'name')) AS u FROM events GROUP BY dt ORDER BY dt").await,
            "dt,n,r,u\n2024-01-01,3,0,bo\n2024-01-02,2,1,cy\n"
        );
        // Parquet schema drift: int32 -> bigint, float -> double, region missing in month 1
        assert_eq!(
            s.csv("SELECT month, sum(id) AS ids, sum(value) AS v, count(region) AS r FROM metrics GROUP BY month ORDER BY month").await,
            "month,ids,v,r\n1,6,4.5,0\n2,9,8.0,2\n"
        );
        // headerless TSV in plain, zstd and xz files under unnamed int partitions
        assert_eq!(
            s.csv("SELECT partition_1, partition_2, count(*) AS n, sum(col2) AS ms FROM logs GROUP BY 1, 2 ORDER BY 1, 2").await,
            "partition_1,partition_2,n,ms\n1,15,2,262\n1,16,2,1209\n2,1,1,7\n"
        );
        assert_eq!(
            s.csv("SELECT count(*) AS n FROM \"awsdatacatalog\".demo.orders WHERE dt = DATE '2024-02-02'").await,
            "n\n50\n"
        );
    }
}

#[tokio::test]
async fn partition_filters_list_and_read_only_the_selected_partitions() {
    for backend in BACKENDS {
        let s = setup(backend).await;
        s.recorder.take();
        let out = s
            .run("SELECT count(*) FROM sales WHERE region = 'eu west'")
            .await;
        assert!(out.succeeded(), "{:?}", out.record.error);
        let log = s.recorder.take();
        assert_eq!(log.listed.len(), 1, "{log:?}");
        assert!(log.listed[0].ends_with("sales/region=eu%20west"), "{log:?}");
        assert!(
            log.read.iter().all(|p| p.contains("region=eu%20west/")),
            "{log:?}"
        );
        assert_eq!(out.scans[0].partitions_total, Some(3));
        assert_eq!(out.scans[0].partitions_selected, 1);

        let out = s
            .run(
                "SELECT count(*) FROM logs WHERE partition_1 = 1 AND partition_2 BETWEEN 16 AND 20",
            )
            .await;
        let log = s.recorder.take();
        assert_eq!(out.scans[0].partitions_selected, 1);
        assert_eq!(log.listed.len(), 1, "{log:?}");
        assert!(log.listed[0].ends_with("logs/2024/01/16"), "{log:?}");

        let out = s.run("SELECT * FROM sales WHERE region IS NULL").await;
        assert_eq!(out.record.rows, 1);
        assert_eq!(out.scans[0].partitions_selected, 1);
        let out = s
            .run("SELECT * FROM orders WHERE dt IN (DATE '2024-02-01', DATE '2024-02-03')")
            .await;
        assert_eq!(
            (out.record.rows, out.scans[0].partitions_selected),
            (100, 2)
        );
        s.recorder.take();
        let out = s
            .run("SELECT * FROM orders WHERE dt > DATE '2030-01-01'")
            .await;
        assert!(out.succeeded());
        assert_eq!(out.record.rows, 0);
        assert!(
            s.recorder.take().listed.is_empty(),
            "no partition, no listing"
        );
    }
}

#[tokio::test]
async fn bytes_scanned_equal_the_body_bytes_served() {
    for backend in BACKENDS {
        let s = setup(backend).await;
        for sql in [
            "SELECT sum(value) FROM metrics",           // Parquet
            "SELECT sum(price) FROM orders",            // CSV.gz
            "SELECT count(*) FROM events",              // JSON lines, gzip
            "SELECT * FROM sales",                      // CSV + CSV.bz2
            "SELECT host FROM metrics WHERE month = 2", // Parquet, pruned
        ] {
            s.recorder.take();
            let out = s.run(sql).await;
            assert!(out.succeeded(), "{sql}: {:?}", out.record.error);
            let log = s.recorder.take();
            assert!(log.body_bytes > 0, "{sql}");
            assert_eq!(
                out.record.bytes_scanned, log.body_bytes,
                "{sql} on {backend:?}"
            );
            assert_eq!(out.record.billed_bytes, 10 << 20, "{sql}: 10 MB minimum");
        }
    }
}

#[tokio::test]
async fn concurrent_queries_are_metered_separately() {
    let s = setup(Backend::Local).await;
    let a = s
        .run("SELECT sum(price) FROM orders")
        .await
        .record
        .bytes_scanned;
    let b = s
        .run("SELECT count(*) FROM events")
        .await
        .record
        .bytes_scanned;
    let (x, y) = tokio::join!(
        s.run("SELECT sum(price) FROM orders"),
        s.run("SELECT count(*) FROM events")
    );
    assert_eq!((x.record.bytes_scanned, y.record.bytes_scanned), (a, b));
    assert_ne!(a, b);
}

#[tokio::test]
async fn max_bytes_scanned_cancels_and_bills_what_was_read() {
    let s = setup(Backend::Local).await;
    let request = QueryRequest {
        sql: "SELECT * FROM orders".into(),
        database: Some("demo".into()),
        max_bytes_scanned: Some(100),
        dry_run: false,
        query_id: None,
        ..Default::default()
    };
    let out = s.engine.run(request).await;
    assert_eq!(out.record.state, QueryState::Cancelled);
    let err = out.record.error.clone().unwrap_or_default();
    assert!(err.contains("limit of 100 bytes"), "{err}");
    assert!(out.record.bytes_scanned > 100);
    assert_eq!(out.record.billed_bytes, 10 << 20);
}

#[tokio::test]
async fn dry_runs_read_no_data_and_failures_are_free() {
    for backend in BACKENDS {
        let s = setup(backend).await;
        s.recorder.take();
        let request = QueryRequest {
            sql: "SELECT * FROM orders WHERE dt = DATE '2024-02-01'".into(),
            database: Some("demo".into()),
            max_bytes_scanned: None,
            dry_run: true,
            query_id: None,
            ..Default::default()
        };
        let out = s.engine.run(request).await;
        assert!(out.succeeded(), "{:?}", out.record.error);
        let log = s.recorder.take();
        assert_eq!(log.body_bytes, 0, "a dry run reads no data: {log:?}");
        let expected = s
            .catalog
            .get_partitions(
                "demo",
                "orders",
                &quarry_catalog::PartitionFilter::all().eq("dt", "2024-02-01"),
            )
            .await
            .expect("partition")[0]
            .stat("sizeKey");
        assert_eq!(out.dry_run_bytes, expected);
        assert_eq!((out.record.bytes_scanned, out.record.billed_bytes), (0, 0));

        let out = s.run("SELECT no_such_column FROM orders").await;
        assert_eq!(out.record.state, QueryState::Failed);
        assert!(
            out.record
                .error
                .as_deref()
                .unwrap_or("")
                .contains("no_such_column")
        );
        assert_eq!(out.record.billed_bytes, 0);
        for sql in [
            "SHOW PARTITIONS orders",
            "DESCRIBE orders",
            "EXPLAIN SELECT * FROM orders",
            "SHOW TABLES",
        ] {
            let out = s.run(sql).await;
            assert!(out.succeeded(), "{sql}: {:?}", out.record.error);
            assert_eq!(out.record.billed_bytes, 0, "{sql} is free");
        }
        let history = s.catalog.query_history(100).expect("history");
        assert_eq!(history.len(), 6);
        assert_eq!(history[4].state, QueryState::Failed);
        let out = s.run("SELECT state, count(*) AS n FROM system.query_history GROUP BY state ORDER BY state").await;
        assert_eq!(
            render(&out.schema, &out.batches, OutputFormat::Csv).expect("csv"),
            "state,n\nFAILED,1\nRUNNING,1\nSUCCEEDED,5\n"
        );
    }
}

#[tokio::test]
async fn results_are_written_like_athena() {
    for backend in BACKENDS {
        let s = setup(backend).await;
        let out = s
            .run("SELECT region, count(*) AS n FROM sales GROUP BY region ORDER BY n DESC, region")
            .await;
        let location = format!("{}results/", s.lake.location.root_url());
        let files = write_result(&s.stores, &location, &out)
            .await
            .expect("write");
        assert_eq!(files.csv, format!("{location}{}.csv", out.record.query_id));
        let key = object_store::path::Path::parse(
            files.csv.trim_start_matches(s.lake.location.base.as_str()),
        )
        .expect("path");
        let body = object_store::ObjectStoreExt::get(s.lake.location.store.as_ref(), &key)
            .await
            .expect("result object")
            .bytes()
            .await
            .expect("bytes");
        assert_eq!(
            std::str::from_utf8(&body).expect("utf-8"),
            "region,n\neu west,2\nus-east,2\n,1\n"
        );
        assert!(files.metadata.ends_with(".metadata.json"));
    }
}

#[tokio::test]
async fn explain_shows_partition_selection_and_analyze_shows_bytes_per_scan() {
    for backend in BACKENDS {
        let s = setup(backend).await;
        let plan = s
            .csv("EXPLAIN SELECT * FROM sales WHERE region = 'us-east'")
            .await;
        assert!(
            plan.contains("demo.sales: 1 of 3 partitions selected, 1 file(s), 129 B to read"),
            "{plan}"
        );
        let out = s.run("EXPLAIN SELECT * FROM sales").await;
        assert_eq!(
            (out.record.bytes_scanned, out.record.billed_bytes),
            (0, 0),
            "plain EXPLAIN reads nothing"
        );

        let out = s
            .run("EXPLAIN ANALYZE SELECT count(*) FROM orders o JOIN sales s ON o.id = s.order_id WHERE o.dt = DATE '2024-02-01'")
            .await;
        assert!(out.succeeded(), "{:?}", out.record.error);
        let per_scan: u64 = out.scans.iter().map(|s| s.bytes_scanned).sum();
        assert!(
            out.scans.iter().all(|s| s.bytes_scanned > 0),
            "{:?}",
            out.scans
        );
        assert_eq!(per_scan, out.record.bytes_scanned);
        let text = render(&out.schema, &out.batches, OutputFormat::Csv).expect("csv");
        assert!(
            text.contains("demo.orders: 1 of 3 partitions selected"),
            "{text}"
        );
        assert!(
            text.contains(&format!("({} bytes)", out.scans[0].bytes_scanned)),
            "{text}"
        );
        assert!(
            out.record.billed_bytes > 0,
            "EXPLAIN ANALYZE runs the query and is billed"
        );
    }
}

#[tokio::test]
async fn dry_run_bounds_what_the_query_then_reads() {
    for backend in BACKENDS {
        let s = setup(backend).await;
        let mut bounds = Vec::new();
        for sql in [
            "SELECT * FROM metrics",
            "SELECT * FROM metrics WHERE id > 100",
            "SELECT host FROM metrics WHERE id = 2",
            "SELECT * FROM metrics WHERE month = 2",
            "SELECT * FROM orders WHERE dt = DATE '2024-02-03'",
            "SELECT * FROM events",
        ] {
            let dry = s
                .engine
                .run(QueryRequest {
                    sql: sql.into(),
                    database: Some("demo".into()),
                    max_bytes_scanned: None,
                    dry_run: true,
                    query_id: None,
                    ..Default::default()
                })
                .await;
            let bound = dry.dry_run_bytes.expect("a dry run reports a bound");
            assert_eq!(dry.record.billed_bytes, 0, "dry runs are free");
            let real = s.run(sql).await;
            assert!(real.succeeded(), "{sql}: {:?}", real.record.error);
            assert!(
                bound >= real.record.bytes_scanned,
                "{sql}: bound {bound} < read {}",
                real.record.bytes_scanned
            );
            bounds.push(bound);
        }
        // Row-group statistics prune: no row group has id > 100, so only metadata remains.
        assert!(bounds[1] < bounds[0], "{bounds:?}");
    }
}

#[tokio::test]
async fn explain_cost_is_the_dry_run_in_sql() {
    let s = setup(Backend::Local).await;
    let out = s
        .run("explain  COST SELECT * FROM sales WHERE region = 'us-east'")
        .await;
    assert!(out.succeeded(), "{:?}", out.record.error);
    assert_eq!(out.dry_run_bytes, Some(129));
    assert_eq!((out.record.bytes_scanned, out.record.billed_bytes), (0, 0));
    let text = render(&out.schema, &out.batches, OutputFormat::Csv).expect("csv");
    assert!(
        text.starts_with("bytes_to_scan,billed_bytes,cost_usd\n129,10485760,"),
        "{text}"
    );
}

#[tokio::test]
async fn hidden_and_empty_objects_in_partitions_are_never_read() {
    for backend in BACKENDS {
        let s = setup(backend).await;
        s.lake
            .put("events/dt=2024-01-02/.part-1.crc", b"not json".to_vec())
            .await;
        s.lake
            .put(
                "events/dt=2024-01-02/_tmp/part-9.json",
                b"{\"event_id\": 99}\n".to_vec(),
            )
            .await;
        s.lake
            .put("events/dt=2024-01-02/empty.json", Vec::new())
            .await;
        s.recorder.take();
        assert_eq!(s.csv("SELECT count(*) AS n FROM events").await, "n\n5\n");
        let log = s.recorder.take();
        assert!(!log.read.is_empty());
        assert!(
            log.read.iter().all(|p| !p.contains("_SUCCESS")
                && !p.contains(".crc")
                && !p.contains("_tmp")
                && !p.contains("empty")),
            "{log:?}"
        );
    }
}

#[tokio::test]
async fn parquet_counts_come_from_verified_crawl_bookmarks_without_reading() {
    for backend in BACKENDS {
        let s = setup(backend).await;
        let out = s.run("SELECT count(*) AS n FROM metrics").await;
        assert!(out.succeeded(), "{:?}", out.record.error);
        assert_eq!(
            render(&out.schema, &out.batches, OutputFormat::Csv).expect("csv"),
            "n\n5\n"
        );
        assert_eq!(
            out.record.bytes_scanned, 0,
            "{backend:?}: answered from statistics"
        );
        // A filter makes the statistics inexact: the files are read.
        let filtered = s
            .run("SELECT count(*) AS n FROM metrics WHERE value >= 0")
            .await;
        assert!(filtered.record.bytes_scanned > 0);

        // A file rewritten since the crawl no longer matches its bookmark: counted by reading.
        let one = s
            .csv("SELECT count(*) AS n FROM metrics WHERE month = 1")
            .await;
        let month1: u64 = one
            .lines()
            .nth(1)
            .and_then(|n| n.parse().ok())
            .expect("count");
        s.rewrite_month_2_behind_the_catalog().await;
        let out = s.run("SELECT count(*) AS n FROM metrics").await;
        assert_eq!(
            render(&out.schema, &out.batches, OutputFormat::Csv).expect("csv"),
            format!("n\n{}\n", 2 * month1),
            "{backend:?}"
        );
        assert!(
            out.record.bytes_scanned > 0,
            "{backend:?}: stale bookmark not trusted"
        );
    }
}

/// Reads of `.parquet` objects that touch the 8-byte trailer (footer length + magic) at the end.
async fn trailer_reads(s: &Setup, log: &quarry_tests::recording::Log) -> Vec<String> {
    let mut touched = Vec::new();
    for (path, range) in &log.ranges {
        if !path.ends_with(".parquet") {
            continue;
        }
        let size = object_store::ObjectStoreExt::head(
            s.lake.location.store.as_ref(),
            &object_store::path::Path::from(path.as_str()),
        )
        .await
        .expect("head")
        .size;
        if range.end > size - 8 {
            touched.push(path.clone());
        }
    }
    touched
}

#[tokio::test]
async fn parquet_footers_kept_by_the_crawl_are_not_read_again() {
    for backend in BACKENDS {
        let s = setup(backend).await;
        s.recorder.take();
        let sql = "SELECT sum(value) AS v FROM metrics WHERE value >= 0";
        let out = s.run(sql).await;
        assert!(out.succeeded(), "{:?}", out.record.error);
        let log = s.recorder.take();
        assert!(
            log.ranges.iter().any(|(p, _)| p.ends_with(".parquet")),
            "{backend:?}: data pages are read: {log:?}"
        );
        assert_eq!(
            trailer_reads(&s, &log).await,
            Vec::<String>::new(),
            "{backend:?}: footers come from the crawl"
        );
        assert_eq!(out.record.bytes_scanned, log.body_bytes);

        // A metadata cache too small to hold them: no footer is decoded in vain, they are read.
        let small = Engine::new(
            s.catalog.clone(),
            s.stores.clone(),
            EngineConfig {
                metadata_cache_bytes: 1,
                ..EngineConfig::default()
            },
        );
        let tight = small
            .run(QueryRequest::new(sql).with_database(Some("demo".into())))
            .await;
        assert!(tight.succeeded(), "{:?}", tight.record.error);
        assert_eq!(tight.batches, out.batches);
        let log = s.recorder.take();
        assert!(
            !trailer_reads(&s, &log).await.is_empty(),
            "{backend:?}: footers read: {log:?}"
        );

        // An object rewritten since the crawl: its footer is read from storage, the others not.
        s.rewrite_month_2_behind_the_catalog().await;
        let out = s.run(sql).await;
        assert!(out.succeeded(), "{:?}", out.record.error);
        let log = s.recorder.take();
        let touched = trailer_reads(&s, &log).await;
        assert!(
            !touched.is_empty()
                && touched
                    .iter()
                    .all(|p| p.ends_with("month=2/part-0.parquet")),
            "{backend:?}: {touched:?}"
        );
    }
}

#[tokio::test]
async fn unfiltered_scans_list_the_table_once_and_read_only_catalogued_partitions() {
    for backend in BACKENDS {
        let s = setup(backend).await;
        let before = s
            .csv("SELECT count(*) AS n, sum(event_id) AS s FROM events")
            .await;
        // Not catalogued until the next crawl: a new partition folder and a stray object beside
        // the partitions (the sample also has `_SUCCESS` and `_$folder$` markers there).
        s.lake
            .put(
                "events/dt=2099-01-01/part-0.json",
                b"{\"event_id\": 1000}\n".to_vec(),
            )
            .await;
        s.lake
            .put("events/stray.json", b"{\"event_id\": 2000}\n".to_vec())
            .await;
        s.recorder.take();
        assert_eq!(
            s.csv("SELECT count(*) AS n, sum(event_id) AS s FROM events")
                .await,
            before,
            "{backend:?}"
        );
        let log = s.recorder.take();
        assert_eq!(log.listed.len(), 1, "{backend:?}: {log:?}");
        assert!(log.listed[0].ends_with("events"), "{log:?}");
        assert!(
            log.read
                .iter()
                .all(|p| p.contains("/dt=2024-01-0") && !p.contains("_SUCCESS")),
            "{backend:?}: {log:?}"
        );

        // Escaped values and the NULL partition: the same rows as listing each partition.
        let sql = "SELECT region, count(*) AS n, sum(amount) AS total FROM sales";
        let all = s
            .csv(&format!("{sql} GROUP BY 1 ORDER BY 1 NULLS LAST"))
            .await;
        assert_eq!(s.recorder.take().listed.len(), 1);
        let mut each = String::from("region,n,total\n");
        for filter in ["region = 'eu west'", "region = 'us-east'", "region IS NULL"] {
            let one = s.csv(&format!("{sql} WHERE {filter} GROUP BY 1")).await;
            let log = s.recorder.take();
            assert_eq!(log.listed.len(), 1, "{filter}: {log:?}");
            assert!(!log.listed[0].ends_with("sales"), "{filter}: {log:?}");
            each.push_str(one.lines().nth(1).expect("one row"));
            each.push('\n');
        }
        assert_eq!(all, each, "{backend:?}");
        assert_eq!(all.lines().count(), 4, "{all}");
    }
}

#[tokio::test]
async fn parquet_dry_runs_use_the_footers_the_crawl_kept() {
    for backend in BACKENDS {
        let s = setup(backend).await;
        let dry = |sql: &str| QueryRequest {
            sql: sql.into(),
            database: Some("demo".into()),
            max_bytes_scanned: None,
            dry_run: true,
            query_id: None,
            ..Default::default()
        };
        s.recorder.take();
        // No row group has id > 100, and the footers come from the catalog: nothing to read.
        let out = s
            .engine
            .run(dry("SELECT * FROM metrics WHERE id > 100"))
            .await;
        assert!(out.succeeded(), "{:?}", out.record.error);
        assert_eq!(out.dry_run_bytes, Some(0), "{backend:?}");
        assert!(s.recorder.take().read.is_empty(), "{backend:?}: no GET");

        // Rewritten behind the catalog's back: that file's footer is read, and its reads counted.
        s.rewrite_month_2_behind_the_catalog().await;
        s.recorder.take();
        let out = s
            .engine
            .run(dry("SELECT * FROM metrics WHERE id > 100"))
            .await;
        let read = s.recorder.take().read;
        assert!(out.dry_run_bytes.unwrap_or(0) > 0, "{backend:?}");
        assert!(
            !read.is_empty() && read.iter().all(|p| p.contains("month=2/")),
            "{backend:?}: {read:?}"
        );
    }
}

/// A Parquet file with an `id` column and a `status` column of the given values.
fn parquet_file(ids: &[i64], status: &[&str]) -> Vec<u8> {
    use datafusion::arrow::array::{ArrayRef, Int64Array, StringArray};
    use datafusion::arrow::record_batch::RecordBatch;
    let batch = RecordBatch::try_from_iter(vec![
        ("id", Arc::new(Int64Array::from(ids.to_vec())) as ArrayRef),
        (
            "status",
            Arc::new(StringArray::from(status.to_vec())) as ArrayRef,
        ),
    ])
    .expect("batch");
    parquet_bytes(&batch, None)
}

#[tokio::test]
async fn a_column_with_one_value_throughout_a_file_is_not_read_from_it() {
    for backend in BACKENDS {
        let s = setup(backend).await;
        let one = "shipments/month=1/part-0.parquet";
        let mixed = "shipments/month=2/part-0.parquet";
        s.lake
            .put(one, parquet_file(&[1, 2, 3], &["F", "F", "F"]))
            .await;
        s.lake
            .put(mixed, parquet_file(&[4, 5, 6], &["F", "O", "O"]))
            .await;
        let table = quarry_lake::Location {
            store: s.lake.location.store.clone(),
            base: s.lake.location.base.clone(),
            prefix: object_store::path::Path::from(format!("{}/shipments", s.lake.location.prefix)),
        };
        Crawler::new(s.catalog.clone(), CrawlConfig::new("demo"))
            .crawl(&table)
            .await
            .expect("crawl");
        s.recorder.take();
        assert_eq!(
            s.csv("SELECT status, count(*) AS n, sum(id) AS ids FROM shipments GROUP BY status ORDER BY status")
                .await,
            "status,n,ids\nF,4,10\nO,2,11\n",
            "{backend:?}"
        );
        let log = s.recorder.take();
        // Where each file's `status` column chunk lies, from its footer.
        let status_chunk = |path: &str| {
            let store = s.lake.location.store.clone();
            let meta_path = format!("{}/{path}", s.lake.location.prefix);
            async move {
                let meta = object_store::ObjectStoreExt::head(
                    store.as_ref(),
                    &object_store::path::Path::from(meta_path.as_str()),
                )
                .await
                .expect("head");
                let footer = quarry_lake::read_parquet_footer(&store, &meta)
                    .await
                    .expect("footer");
                let (start, len) = footer.metadata.row_group(0).column(1).byte_range();
                (meta_path, start..start + len)
            }
        };
        let overlaps = |(path, chunk): &(String, std::ops::Range<u64>)| {
            log.ranges
                .iter()
                .any(|(p, r)| p == path && r.start < chunk.end && chunk.start < r.end)
        };
        assert!(
            !overlaps(&status_chunk(one).await),
            "{backend:?}: constant column read: {log:?}"
        );
        assert!(overlaps(&status_chunk(mixed).await), "{backend:?}: {log:?}");

        // The constant file rewritten with mixed values: its old statistics must not be used.
        s.lake
            .put(one, parquet_file(&[1, 2, 3, 7], &["F", "O", "O", "O"]))
            .await;
        assert_eq!(
            s.csv("SELECT status, count(*) AS n, sum(id) AS ids FROM shipments GROUP BY status ORDER BY status")
                .await,
            "status,n,ids\nF,2,5\nO,5,23\n",
            "{backend:?}"
        );
    }
}

#[tokio::test]
async fn scans_start_with_the_biggest_files_whatever_their_paths() {
    for backend in BACKENDS {
        let s = setup(backend).await;
        // The newest partition of a growing table: the biggest file, and the last by path.
        let mut body = String::from("id,qty,price\n");
        for i in 0..5000 {
            body.push_str(&format!("{},{},{}.25\n", 400 + i, i % 7, i));
        }
        s.lake
            .put("orders/dt=2024-02-04/part-0.csv.gz", gzip(&body))
            .await;
        Crawler::new(s.catalog.clone(), CrawlConfig::new("demo"))
            .crawl(&s.lake.location)
            .await
            .expect("re-crawl");
        let plan = s.csv("EXPLAIN SELECT count(*) FROM orders").await;
        let (newest, oldest) = (
            plan.find("dt=2024-02-04").expect("newest file in the plan"),
            plan.find("dt=2024-02-01").expect("oldest file in the plan"),
        );
        assert!(newest < oldest, "{backend:?}: {plan}");
        assert_eq!(s.csv("SELECT count(*) AS n FROM orders").await, "n\n5150\n");
    }
}

/// The embedded catalog, counting the listings and table lookups a statement makes.
#[derive(Debug)]
struct CountingCatalog {
    inner: Arc<SqliteCatalog>,
    listed: std::sync::atomic::AtomicUsize,
    looked_up: std::sync::Mutex<Vec<String>>,
}

#[async_trait::async_trait]
impl Catalog for CountingCatalog {
    async fn list_databases(&self) -> quarry_catalog::Result<Vec<quarry_catalog::Database>> {
        self.listed
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.inner.list_databases().await
    }
    async fn get_database(
        &self,
        name: &str,
    ) -> quarry_catalog::Result<Option<quarry_catalog::Database>> {
        self.looked_up
            .lock()
            .expect("lock")
            .push(format!("database {name}"));
        self.inner.get_database(name).await
    }
    async fn list_tables(
        &self,
        database: &str,
    ) -> quarry_catalog::Result<Vec<quarry_catalog::Table>> {
        self.listed
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.inner.list_tables(database).await
    }
    async fn get_table(
        &self,
        database: &str,
        table: &str,
    ) -> quarry_catalog::Result<Option<quarry_catalog::Table>> {
        self.looked_up
            .lock()
            .expect("lock")
            .push(format!("{database}.{table}"));
        self.inner.get_table(database, table).await
    }
    async fn get_partitions(
        &self,
        database: &str,
        table: &str,
        filter: &quarry_catalog::PartitionFilter,
    ) -> quarry_catalog::Result<Vec<quarry_catalog::Partition>> {
        self.inner.get_partitions(database, table, filter).await
    }
    async fn count_partitions(&self, database: &str, table: &str) -> quarry_catalog::Result<u64> {
        self.inner.count_partitions(database, table).await
    }
    fn counts_partitions_cheaply(&self) -> bool {
        self.inner.counts_partitions_cheaply()
    }
    async fn seen_objects(
        &self,
        target: &str,
    ) -> quarry_catalog::Result<Vec<quarry_catalog::SeenObject>> {
        self.inner.seen_objects(target).await
    }
    async fn objects(
        &self,
        urls: &[String],
    ) -> quarry_catalog::Result<Vec<quarry_catalog::SeenObject>> {
        self.inner.objects(urls).await
    }
    async fn objects_with_footers(
        &self,
        urls: &[String],
    ) -> quarry_catalog::Result<Vec<quarry_catalog::SeenObject>> {
        self.inner.objects_with_footers(urls).await
    }
    async fn commit(&self, write: quarry_catalog::CatalogWrite) -> quarry_catalog::Result<()> {
        self.inner.commit(write).await
    }
    async fn column_statistics(
        &self,
        database: &str,
        table: &str,
        columns: &[String],
    ) -> quarry_catalog::Result<Vec<quarry_catalog::ColumnStatistics>> {
        self.inner.column_statistics(database, table, columns).await
    }
    async fn update_column_statistics(
        &self,
        database: &str,
        table: &str,
        statistics: &[quarry_catalog::ColumnStatistics],
    ) -> quarry_catalog::Result<()> {
        self.inner
            .update_column_statistics(database, table, statistics)
            .await
    }
}

#[tokio::test]
async fn a_statement_looks_up_only_the_tables_it_names() {
    let s = setup(Backend::Local).await;
    let counting = Arc::new(CountingCatalog {
        inner: s.catalog.clone(),
        listed: Default::default(),
        looked_up: Default::default(),
    });
    let engine = Engine::new(counting.clone(), s.stores.clone(), EngineConfig::default());
    let run = |sql: &'static str| {
        let engine = &engine;
        async move {
            let out = engine
                .run(QueryRequest::new(sql).with_database(Some("demo".into())))
                .await;
            (out.succeeded(), out.record.error, out.batches)
        }
    };
    let take = || std::mem::take(&mut *counting.looked_up.lock().expect("lock"));
    let listed = || counting.listed.load(std::sync::atomic::Ordering::Relaxed);

    let (ok, error, _) =
        run("SELECT count(*) FROM orders o JOIN demo.sales s ON o.id = s.order_id").await;
    assert!(ok, "{error:?}");
    let mut names = take();
    names.sort();
    // The -d database once (it must exist), then each table.
    assert_eq!(names, ["database demo", "demo.orders", "demo.sales"]);
    assert_eq!(
        listed(),
        0,
        "no table list for a query that names its tables"
    );

    // Each name once, also a missing one (the view check and planning share the lookup).
    let sorted = || {
        let mut names = take();
        names.sort();
        names
    };
    let (ok, error, _) = run("SELECT * FROM no_such_table").await;
    assert!(!ok);
    assert!(error.expect("error").contains("no_such_table"));
    assert_eq!(sorted(), ["database demo", "demo.no_such_table"]);
    // Another database named in the statement is looked up too.
    let (ok, _, _) = run("SELECT * FROM other_db.t").await;
    assert!(!ok);
    assert_eq!(
        sorted(),
        ["database demo", "database other_db", "other_db.t"]
    );

    // information_schema (and the SHOW statements DataFusion answers from it) lists every table.
    let (ok, error, batches) =
        run("SELECT table_name FROM information_schema.tables WHERE table_schema = 'demo'").await;
    assert!(ok, "{error:?}");
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    let tables = s.catalog.list_tables("demo").await.expect("tables").len();
    assert!(tables >= 4, "{tables}");
    assert_eq!(rows, tables);
    assert!(listed() > 0);
    let (ok, error, batches) = run("SHOW COLUMNS FROM orders").await;
    assert!(ok, "{error:?}");
    assert_eq!(
        batches.iter().map(|b| b.num_rows()).sum::<usize>(),
        4,
        "id, qty, price, dt"
    );
}

/// Athena's partition projection: partitions come from table properties and the filter, each
/// selected one is one listed prefix, registered partitions are ignored, and EXPLAIN says so.
#[tokio::test]
async fn projected_partitions_list_only_what_the_filter_selects() {
    for backend in BACKENDS {
        let s = setup(backend).await;
        let lake = s.lake.location.root_url();
        let create = format!(
            "CREATE EXTERNAL TABLE demo.plogs (ts timestamp, level string, code bigint, message string) \
             PARTITIONED BY (day string) ROW FORMAT DELIMITED FIELDS TERMINATED BY '\\t' \
             LOCATION '{lake}logs/' TBLPROPERTIES ('projection.enabled'='true', \
             'projection.day.type'='date', 'projection.day.format'='yyyy/MM/dd/HH', \
             'projection.day.range'='2019/01/01/00,2024/12/31/23', 'projection.day.interval'='1', \
             'projection.day.interval.unit'='HOURS', 'storage.location.template'='{lake}logs/${{day}}/')"
        );
        let out = s.run(&create).await;
        assert!(out.succeeded(), "{:?}", out.record.error);
        // Hourly over six years: one hour lists one prefix (empty here: zero rows, no error).
        s.recorder.take();
        let out = s
            .run("SELECT count(*) AS n FROM plogs WHERE day = '2024/01/15/10'")
            .await;
        assert!(out.succeeded(), "{:?}", out.record.error);
        let log = s.recorder.take();
        assert_eq!(log.listed.len(), 1, "{log:?}");
        assert!(log.listed[0].ends_with("logs/2024/01/15/10"), "{log:?}");
        assert_eq!(out.scans[0].partitions_total, Some(52_608));
        assert!(out.scans[0].projected);
        assert_eq!(
            render(&out.schema, &out.batches, OutputFormat::Csv).expect("csv"),
            "n\n0\n"
        );
        // A week lists 168 prefixes.
        let out = s
            .run(
                "SELECT count(*) FROM plogs WHERE day >= '2024/01/10/00' AND day < '2024/01/17/00'",
            )
            .await;
        assert!(out.succeeded(), "{:?}", out.record.error);
        assert_eq!(s.recorder.take().listed.len(), 168);

        // Daily projection over the real layout; registered partitions are ignored.
        let lake = s.lake.location.root_url();
        for sql in [
            "ALTER TABLE plogs SET TBLPROPERTIES ('projection.day.format'='yyyy/MM/dd', \
             'projection.day.range'='2024/01/01,2024/12/31', 'projection.day.interval.unit'='DAYS')"
                .to_string(),
            format!(
                "ALTER TABLE plogs ADD PARTITION (day = 'elsewhere') LOCATION '{lake}logs/2024/02/01/'"
            ),
        ] {
            let out = s.run(&sql).await;
            assert!(out.succeeded(), "{sql}: {:?}", out.record.error);
        }
        assert_eq!(
            s.csv("SELECT day, count(*) AS n, sum(code) AS c FROM plogs WHERE day BETWEEN '2024/01/01' AND '2024/02/29' GROUP BY day ORDER BY day").await,
            "day,n,c\n2024/01/15,2,262\n2024/01/16,2,1209\n2024/02/01,1,7\n"
        );
        let explain = s
            .csv("EXPLAIN SELECT count(*) FROM plogs WHERE day = '2024/01/16'")
            .await;
        assert!(
            explain.contains("demo.plogs: 1 of 366 projected partitions selected, 1 file(s)"),
            "{explain}"
        );
        // Projection off: the registered partition is what the table has.
        let out = s
            .run("ALTER TABLE plogs SET TBLPROPERTIES ('projection.enabled'='false')")
            .await;
        assert!(out.succeeded(), "{:?}", out.record.error);
        assert_eq!(
            s.csv("SELECT day, count(*) AS n FROM plogs GROUP BY day")
                .await,
            "day,n\nelsewhere,1\n"
        );
    }
}

/// A filter on a view prunes the base table's partitions, and the view bills the bytes the
/// query written out bills.
#[tokio::test]
async fn views_prune_and_bill_like_the_query_they_stand_for() {
    for backend in BACKENDS {
        let s = setup(backend).await;
        let out = s
            .run("CREATE VIEW demo.v AS SELECT order_id, amount, region FROM sales")
            .await;
        assert!(out.succeeded(), "{:?}", out.record.error);
        let via_view = s
            .run("SELECT sum(amount) FROM v WHERE region = 'eu west'")
            .await;
        let direct = s
            .run("SELECT sum(amount) FROM sales WHERE region = 'eu west'")
            .await;
        assert!(via_view.succeeded(), "{:?}", via_view.record.error);
        assert_eq!(via_view.scans.len(), 1);
        assert_eq!(via_view.scans[0].partitions_selected, 1);
        assert_eq!(via_view.scans[0].partitions_total, Some(3));
        assert_eq!(via_view.record.bytes_scanned, direct.record.bytes_scanned);
        assert!(via_view.record.bytes_scanned > 0);
        // Stored as Athena stores views.
        let t = s
            .catalog
            .get_table("demo", "v")
            .await
            .expect("catalog")
            .expect("view");
        assert_eq!(t.table_type, "VIRTUAL_VIEW");
        assert_eq!(t.parameters["presto_view"], "true");
        let def = quarry_query::view::definition(&t).expect("Presto view");
        assert_eq!(
            def.original_sql,
            "SELECT order_id, amount, region FROM sales"
        );
        let types: Vec<_> = def
            .columns
            .iter()
            .map(|c| format!("{} {}", c.name, c.data_type))
            .collect();
        assert_eq!(
            types,
            ["order_id bigint", "amount double", "region varchar"]
        );
    }
}

/// The planner gets the statistics DataFusion's own listing table gives it (issue 11), from
/// the footers the crawl kept: exact rows, sizes and per-column min / max / null counts, the
/// partition columns' from their values. A filtered scan keeps them as estimates, so joins are
/// planned on estimated sizes rather than on none.
#[tokio::test]
async fn parquet_scans_give_the_planner_footer_statistics() {
    use datafusion::common::stats::Precision;
    let s = setup(Backend::Local).await;
    let statistics = |sql| planned_statistics(&s, sql);
    let rows: usize = s
        .csv("SELECT count(*) AS n FROM metrics")
        .await
        .lines()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("a count");
    let whole = statistics("SELECT id, value, month FROM metrics").await;
    assert_eq!(whole.num_rows, Precision::Exact(rows), "{whole:?}");
    let id = &whole.column_statistics[0];
    assert!(
        matches!(id.min_value, Precision::Exact(_)) && matches!(id.max_value, Precision::Exact(_)),
        "{id:?}"
    );
    // The partition column: its values, from the folders.
    let month = &whole.column_statistics[2];
    assert!(matches!(month.min_value, Precision::Exact(_)), "{month:?}");
    // Filtered: estimates, not nothing.
    let filtered = statistics("SELECT id FROM metrics WHERE value > 0").await;
    assert!(
        matches!(filtered.num_rows, Precision::Inexact(n) if n <= rows),
        "{filtered:?}"
    );
}

/// The statistics the planner has for `sql`'s physical plan, in a session like a statement's.
async fn planned_statistics(s: &Setup, sql: &str) -> Arc<datafusion::common::Statistics> {
    use datafusion::physical_plan::statistics::{StatisticsArgs, StatisticsContext};
    let meter = s.engine.meter_for(&QueryRequest::new(""));
    let scans: quarry_query::provider::ScanLog = Default::default();
    let ctx = s
        .engine
        .context(Some("demo"), &meter, &scans)
        .await
        .expect("context");
    let plan = ctx
        .sql(sql)
        .await
        .expect("plan")
        .create_physical_plan()
        .await
        .expect("physical plan");
    StatisticsContext::new()
        .compute(plan.as_ref(), &StatisticsArgs::new())
        .expect("statistics")
}

/// `ANALYZE` (issue 11) keeps Glue-shaped column statistics in the catalog, and scans of a CSV
/// table then give the planner the rows, value ranges, null and distinct counts its files do
/// not carry. On local files and S3.
#[tokio::test]
async fn analyze_keeps_column_statistics_that_scans_plan_with() {
    use datafusion::common::ScalarValue;
    use datafusion::common::stats::Precision;
    use quarry_catalog::StatisticsData;
    for backend in BACKENDS {
        let s = setup(backend).await;
        let sql = "SELECT order_id, amount FROM sales";
        let before = planned_statistics(&s, sql).await;
        assert_eq!(before.num_rows, Precision::Absent, "{before:?}");

        let out = s.run("ANALYZE sales").await;
        assert!(out.succeeded(), "{:?}", out.record.error);
        assert!(out.record.bytes_scanned > 0, "billed like a query");
        let text = render(&out.schema, &out.batches, OutputFormat::Csv).expect("csv");
        for row in [
            "order_id,bigint,5,0,5,1,5,,",
            "note,string,5,1,4,,,21,11.0",
            "amount,double,5,0,5,1,100.25,,",
            "sold_on,date,5,0,5,2024-01-03,2024-01-07,,",
            "region,string,5,1,2,,,7,7.0",
        ] {
            assert!(text.contains(row), "{row} in\n{text}");
        }
        let names = ["amount".to_string(), "note".into(), "nope".into()];
        let kept = s
            .catalog
            .column_statistics("demo", "sales", &names)
            .await
            .expect("statistics");
        assert_eq!(kept.len(), 2, "{kept:?}");
        assert_eq!(
            kept[0].data,
            StatisticsData::Double {
                nulls: 0,
                distinct: 5,
                min: Some(1.0),
                max: Some(100.25)
            }
        );
        let table = s.catalog.get_table("demo", "sales").await.unwrap().unwrap();
        assert_eq!(
            table.parameters.get("recordCount").map(String::as_str),
            Some("5")
        );
        assert!(table.parameters.contains_key("quarry.analyzedAt"));

        // The planner now knows the rows (estimated from the files' bytes) and each column.
        let after = planned_statistics(&s, sql).await;
        assert!(
            matches!(after.num_rows, Precision::Inexact(n) if (1..=5).contains(&n)),
            "{after:?}"
        );
        let amount = &after.column_statistics[1];
        assert_eq!(amount.distinct_count, Precision::Inexact(5), "{amount:?}");
        assert_eq!(
            amount.max_value,
            Precision::Inexact(ScalarValue::Float64(Some(100.25))),
            "{amount:?}"
        );

        // Named columns only; a missing column or a view is refused, naming it.
        let out = s
            .csv("ANALYZE TABLE sales COMPUTE STATISTICS FOR COLUMNS customer")
            .await;
        assert_eq!(out.lines().count(), 2, "{out}");
        let out = s.run("ANALYZE sales FOR COLUMNS nope").await;
        let error = out.record.error.expect("an error").to_string();
        assert!(error.contains("no column nope"), "{error}");
        s.csv("CREATE VIEW big_sales AS SELECT * FROM sales WHERE amount > 10")
            .await;
        let out = s.run("ANALYZE big_sales").await;
        let error = out.record.error.expect("an error").to_string();
        assert!(error.contains("is a view"), "{error}");
    }
}

/// `SET datafusion.x = y` changes DataFusion's settings for the engine's later statements (the
/// datafusion-cli / DuckDB habit for tuning a session), `RESET` restores the starting value, and
/// bad names or values are refused naming them; an engine serving several clients refuses SET.
#[tokio::test]
async fn set_and_reset_change_later_statements_settings() {
    let s = setup(Backend::Local).await;
    let batch_size = "SELECT value FROM information_schema.df_settings \
                      WHERE name = 'datafusion.execution.batch_size'";
    let started = s.csv(batch_size).await;
    s.csv("SET datafusion.execution.batch_size = 1234").await;
    assert_eq!(s.csv(batch_size).await, "value\n1234\n");
    // The plan follows the setting too.
    s.csv("SET datafusion.optimizer.prefer_hash_join = false")
        .await;
    let plan = s
        .csv("EXPLAIN SELECT count(*) FROM orders a JOIN orders b ON a.id = b.id")
        .await;
    assert!(plan.contains("SortMergeJoin"), "{plan}");
    s.csv("RESET datafusion.execution.batch_size").await;
    assert_eq!(s.csv(batch_size).await, started);
    for (sql, says) in [
        (
            "SET datafusion.execution.no_such = 1",
            "unknown setting datafusion.execution.no_such",
        ),
        ("SET datafusion.execution.batch_size = 'many'", "many"),
        (
            "SET datafusion.runtime.memory_limit = '1G'",
            "--memory-limit",
        ),
    ] {
        let out = s.run(sql).await;
        let error = out.record.error.expect(sql).to_string();
        assert!(error.contains(says), "{sql}: {error}");
    }
    let shared = Engine::new(
        s.catalog.clone(),
        s.stores.clone(),
        EngineConfig {
            session_settings: false,
            ..EngineConfig::default()
        },
    );
    let out = shared
        .run(QueryRequest::new(
            "SET datafusion.execution.batch_size = 10",
        ))
        .await;
    let error = out.record.error.expect("refused").to_string();
    assert!(error.contains("DATAFUSION_"), "{error}");
}

/// `batch` as a Parquet file, with at most `rows_per_group` rows in each row group (the
/// writer's default when `None`).
fn parquet_bytes(
    batch: &datafusion::arrow::record_batch::RecordBatch,
    rows_per_group: Option<usize>,
) -> Vec<u8> {
    let mut props = parquet::file::properties::WriterProperties::builder();
    if let Some(rows) = rows_per_group {
        props = props.set_max_row_group_row_count(Some(rows));
    }
    let props = props.build();
    let mut bytes = Vec::new();
    let mut writer = parquet::arrow::ArrowWriter::try_new(&mut bytes, batch.schema(), Some(props))
        .expect("writer");
    writer.write(batch).expect("write");
    writer.close().expect("close");
    bytes
}

/// A Parquet scan on the probe side of a selective join decodes only the rows whose keys the
/// join's build side holds (issue 11: the reader decides per file, once the build side is done):
/// 3 of 20,000 rows here, spread over every row group so that row-group pruning alone would read
/// them all.
#[tokio::test]
async fn probe_side_parquet_scans_decode_only_rows_the_join_can_match() {
    use datafusion::arrow::array::{ArrayRef, Int64Array};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::arrow::record_batch::RecordBatch;

    let schema = Arc::new(Schema::new(vec![
        Field::new("k", DataType::Int64, true),
        Field::new("v", DataType::Int64, true),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from_iter_values(0..20_000)) as ArrayRef,
            Arc::new(Int64Array::from_iter_values((0..20_000).map(|k| k * 2))) as ArrayRef,
        ],
    )
    .expect("batch");
    let lake = Lake::empty(Backend::Local).await;
    lake.put("big/part-0.parquet", parquet_bytes(&batch, Some(5_000)))
        .await;
    lake.put("small/keys.csv", b"k,name\n5,a\n9999,b\n19998,c\n".to_vec())
        .await;
    let catalog = Arc::new(SqliteCatalog::open_in_memory().expect("catalog"));
    Crawler::new(catalog.clone(), CrawlConfig::new("demo"))
        .crawl(&lake.location)
        .await
        .expect("crawl");
    let stores = Arc::new(ObjectStores::new());
    stores.register(&lake.location.base, lake.location.store.clone());
    let engine = Engine::new(catalog, stores, EngineConfig::default());
    let run = |sql: &'static str| {
        let engine = &engine;
        async move {
            let out = engine
                .run(QueryRequest::new(sql).with_database(Some("demo".into())))
                .await;
            assert!(out.succeeded(), "{sql}: {:?}", out.record.error);
            render(&out.schema, &out.batches, OutputFormat::Csv).expect("csv")
        }
    };
    // The CSV table's rows are known once analyzed, so the join builds on it.
    run("ANALYZE small").await;
    let sql = "SELECT sum(b.v) AS total FROM big b JOIN small s ON b.k = s.k";
    assert_eq!(run(sql).await, "total\n60004\n");
    let plan =
        run("EXPLAIN ANALYZE SELECT sum(b.v) AS total FROM big b JOIN small s ON b.k = s.k").await;
    let scan = plan
        .lines()
        .find(|l| l.contains("big/part-0.parquet"))
        .unwrap_or_else(|| panic!("no scan of big in\n{plan}"));
    assert!(scan.contains("output_rows=3,"), "{scan}");
    assert!(!scan.contains("pushdown_rows_pruned=0,"), "{scan}");
}

/// A footer too large to keep in the bookmark (here ~0.5 MB: 300 columns in 20 row groups)
/// still gives the planner the file's rows and value ranges on the first statement of a
/// process: the crawl keeps its per-row-group statistics instead (issue 11).
#[tokio::test]
async fn large_footers_leave_statistics_for_the_planner() {
    use datafusion::arrow::array::{ArrayRef, Int64Array};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::arrow::record_batch::RecordBatch;
    use datafusion::common::stats::Precision;
    use datafusion::physical_plan::statistics::{StatisticsArgs, StatisticsContext};

    let columns = 300;
    let schema = Arc::new(Schema::new(
        (0..columns)
            .map(|c| Field::new(format!("c{c}"), DataType::Int64, true))
            .collect::<Vec<_>>(),
    ));
    let batch = RecordBatch::try_new(
        schema.clone(),
        (0..columns)
            .map(|c| {
                Arc::new(Int64Array::from_iter_values((0..200).map(|r| r * 10 + c))) as ArrayRef
            })
            .collect(),
    )
    .expect("batch");
    let bytes = parquet_bytes(&batch, Some(10));
    let footer_len = {
        let n = bytes.len();
        u32::from_le_bytes([bytes[n - 8], bytes[n - 7], bytes[n - 6], bytes[n - 5]]) as usize
    };
    assert!(footer_len > quarry_lake::KEPT_FOOTER_BYTES, "{footer_len}");

    let lake = Lake::empty(Backend::Local).await;
    lake.put("wide/part-0.parquet", bytes).await;
    let catalog = Arc::new(SqliteCatalog::open_in_memory().expect("catalog"));
    let wide = quarry_lake::Location::parse(&format!("{}/wide/", lake.url)).expect("location");
    Crawler::new(catalog.clone(), CrawlConfig::new("demo"))
        .crawl(&wide)
        .await
        .expect("crawl");
    let stores = Arc::new(ObjectStores::new());
    stores.register(&lake.location.base, lake.location.store.clone());
    // A fresh engine: no footer in its cache, as in a new process.
    let engine = Engine::new(catalog.clone(), stores, EngineConfig::default());
    let meter = engine.meter_for(&QueryRequest::new(""));
    let scans: quarry_query::provider::ScanLog = Default::default();
    let ctx = engine
        .context(Some("demo"), &meter, &scans)
        .await
        .expect("context");
    let plan = ctx
        .sql("SELECT c0, c7 FROM wide WHERE c7 > 1000")
        .await
        .expect("plan")
        .create_physical_plan()
        .await
        .expect("physical plan");
    let stats = StatisticsContext::new()
        .compute(plan.as_ref(), &StatisticsArgs::new())
        .expect("statistics");
    assert!(
        matches!(stats.num_rows, Precision::Inexact(n) if n > 0 && n < 200),
        "the filter's selectivity is estimated from the value range: {stats:?}"
    );
    let c7 = &stats.column_statistics[1];
    assert_eq!(
        c7.max_value,
        Precision::Inexact(datafusion::common::ScalarValue::Int64(Some(1997))),
        "{c7:?}"
    );
    // And the answer is right.
    let out = engine
        .run(
            QueryRequest::new("SELECT count(*) AS n, sum(c0) AS s FROM wide WHERE c7 > 1000")
                .with_database(Some("demo".into())),
        )
        .await;
    assert!(out.succeeded(), "{:?}", out.record.error);
    assert_eq!(
        render(&out.schema, &out.batches, OutputFormat::Csv).expect("csv"),
        "n,s\n100,149500\n"
    );
}
