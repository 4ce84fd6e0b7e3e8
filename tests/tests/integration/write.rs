//! CTAS, INSERT INTO and DDL end to end: atomic under injected store failures (local files and
//! S3), on the Glue catalog (moto), and round trips through SHOW CREATE TABLE.

use std::sync::Arc;

use futures::TryStreamExt;
use quarry_catalog::{Catalog, GlueCatalog, PartitionFilter, SqliteCatalog};
use quarry_crawler::{CrawlConfig, Crawler};
use quarry_query::{Engine, EngineConfig, ObjectStores, QueryOutput, QueryRequest};
use quarry_tests::failing::FailingStore;
use quarry_tests::{BACKENDS, Backend, Lake, glue, unique_name};

/// An engine over the crawled sample lake, reading and writing through `wrap(store)`, with a
/// warehouse in an empty folder beside the lake. Returns the engine and the warehouse URL.
async fn engine(
    lake: &Lake,
    catalog: Arc<dyn Catalog>,
    db: &str,
    store: Arc<dyn object_store::ObjectStore>,
) -> (Engine, String) {
    Crawler::new(Arc::clone(&catalog), CrawlConfig::new(db))
        .crawl(&lake.location)
        .await
        .expect("crawl");
    let stores = Arc::new(ObjectStores::new());
    stores.register(&lake.location.base, store);
    let root = lake.location.root_url();
    let out = format!(
        "{}out-{}/",
        root.trim_end_matches('/').trim_end_matches("lake"),
        unique_name("w")
    );
    let config = EngineConfig {
        warehouse: Some(out.clone()),
        ..EngineConfig::default()
    };
    (Engine::new(catalog, stores, config), out)
}

/// The sample lake crawled into a fresh embedded catalog as `demo`, and an engine over it.
async fn sample_engine(backend: Backend) -> (Lake, Arc<SqliteCatalog>, Engine, String) {
    let lake = Lake::sample(backend).await;
    let catalog = Arc::new(SqliteCatalog::open_in_memory().expect("catalog"));
    let store = Arc::clone(&lake.location.store);
    let (engine, out) = engine(&lake, catalog.clone(), "demo", store).await;
    (lake, catalog, engine, out)
}

async fn run(engine: &Engine, db: &str, sql: &str) -> QueryOutput {
    engine
        .run(QueryRequest::new(sql).with_database(Some(db.into())))
        .await
}

async fn ok(engine: &Engine, db: &str, sql: &str) -> QueryOutput {
    let out = run(engine, db, sql).await;
    assert!(out.succeeded(), "{sql}: {:?}", out.record.error);
    out
}

/// The first column of the first row, as text.
async fn scalar(engine: &Engine, db: &str, sql: &str) -> String {
    let out = ok(engine, db, sql).await;
    let b = &out.batches[0];
    datafusion::arrow::util::display::array_value_to_string(b.column(0), 0).expect("value")
}

async fn objects(lake: &Lake, url: &str) -> Vec<String> {
    let (_, prefix) = quarry_lake::split_location(url).expect("url");
    let mut v: Vec<String> = lake
        .location
        .store
        .list(Some(&prefix))
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .expect("list");
    v.sort();
    v
}

#[tokio::test]
async fn ctas_and_insert_leave_nothing_when_any_write_fails() {
    for backend in BACKENDS {
        let lake = Lake::sample(backend).await;
        let catalog = Arc::new(SqliteCatalog::open_in_memory().expect("catalog"));
        let failing = Arc::new(FailingStore::new(Arc::clone(&lake.location.store)));
        let (engine, out) = engine(&lake, catalog.clone(), "demo", failing.clone()).await;
        let ctas = "CREATE TABLE t WITH (format = 'PARQUET', partitioned_by = ARRAY['region']) AS SELECT * FROM sales";
        let mut failures = 0;
        for n in 1.. {
            failing.fail_at(n);
            let r = run(&engine, "demo", ctas).await;
            if r.succeeded() {
                break;
            }
            failures += 1;
            let error = r.record.error.unwrap_or_default();
            assert!(
                error.contains("injected failure"),
                "{backend:?} write {n}: {error}"
            );
            assert!(catalog.get_table("demo", "t").await.expect("get").is_none());
            assert_eq!(
                objects(&lake, &out).await,
                Vec::<String>::new(),
                "{backend:?} write {n}"
            );
            assert!(n < 100, "CTAS never succeeded");
        }
        // At least three files written as one multipart upload each, then as many renames.
        assert!(failures >= 6, "{backend:?}: only {failures} failure points");
        failing.fail_at(0);
        let before = objects(&lake, &out).await;
        assert!(before.len() >= 3, "{before:?}");
        let insert = "INSERT INTO t VALUES (9, 'x', NULL, 1, DATE '2024-05-01', 'new'), (10, 'y', NULL, 2, DATE '2024-05-01', 'eu west')";
        for n in 1.. {
            failing.fail_at(n);
            let r = run(&engine, "demo", insert).await;
            if r.succeeded() {
                break;
            }
            failing.fail_at(0);
            assert_eq!(objects(&lake, &out).await, before, "{backend:?} write {n}");
            assert_eq!(scalar(&engine, "demo", "SELECT count(*) FROM t").await, "5");
            assert_eq!(
                catalog.count_partitions("demo", "t").await.expect("count"),
                3,
                "{backend:?} write {n}"
            );
            assert!(n < 100, "INSERT never succeeded");
        }
        failing.fail_at(0);
        assert_eq!(scalar(&engine, "demo", "SELECT count(*) FROM t").await, "7");
        assert_eq!(
            catalog.count_partitions("demo", "t").await.expect("count"),
            4
        );
    }
}

#[tokio::test]
async fn ctas_of_every_sample_table_reads_back_equal_and_show_create_table_recreates_it() {
    for backend in BACKENDS {
        let (_lake, catalog, engine, _) = sample_engine(backend).await;
        for table in catalog.list_tables("demo").await.expect("tables") {
            let name = table.name.clone();
            let keys: Vec<String> = table
                .partition_keys
                .iter()
                .map(|k| format!("'{}'", k.name))
                .collect();
            ok(
                &engine,
                "demo",
                &format!(
                    "CREATE TABLE {name}_pq WITH (format = 'PARQUET', write_compression = 'SNAPPY', partitioned_by = ARRAY[{}]) AS SELECT * FROM {name}",
                    keys.join(", ")
                ),
            )
            .await;
            for (a, b) in [
                (name.clone(), format!("{name}_pq")),
                (format!("{name}_pq"), name.clone()),
            ] {
                let diff = scalar(
                    &engine,
                    "demo",
                    &format!("SELECT count(*) FROM (SELECT * FROM {a} EXCEPT SELECT * FROM {b})"),
                )
                .await;
                assert_eq!(diff, "0", "{backend:?}: {a} minus {b}");
            }
            let count = |t: String| {
                let engine = &engine;
                async move { scalar(engine, "demo", &format!("SELECT count(*) FROM {t}")).await }
            };
            assert_eq!(count(name.clone()).await, count(format!("{name}_pq")).await);

            // SHOW CREATE TABLE, run under another name, declares an equivalent table.
            let ddl = scalar(&engine, "demo", &format!("SHOW CREATE TABLE {name}")).await;
            let copy = ddl.replacen(
                &format!("`demo`.`{name}`"),
                &format!("`demo`.`{name}_copy`"),
                1,
            );
            ok(&engine, "demo", &copy).await;
            let original = catalog
                .get_table("demo", &name)
                .await
                .expect("get")
                .expect("table");
            let recreated = catalog
                .get_table("demo", &format!("{name}_copy"))
                .await
                .expect("get")
                .expect("table");
            assert_eq!(original.storage.columns, recreated.storage.columns);
            assert_eq!(original.partition_keys, recreated.partition_keys);
            assert_eq!(original.storage.serde_info, recreated.storage.serde_info);
            assert_eq!(original.storage.location, recreated.storage.location);
            assert_eq!(
                quarry_lake::table_file_format(&original),
                quarry_lake::table_file_format(&recreated)
            );
            // Its partitions added by hand (unnamed folders are not key=value) read the same rows.
            let parts = catalog
                .get_partitions("demo", &name, &PartitionFilter::all())
                .await
                .expect("partitions");
            for p in &parts {
                let spec: Vec<String> = original
                    .partition_keys
                    .iter()
                    .zip(&p.values)
                    .map(|(k, v)| {
                        format!(
                            "{}='{}'",
                            k.name,
                            v.as_deref().unwrap_or(quarry_lake::HIVE_DEFAULT_PARTITION)
                        )
                    })
                    .collect();
                ok(
                    &engine,
                    "demo",
                    &format!(
                        "ALTER TABLE {name}_copy ADD PARTITION ({}) LOCATION '{}'",
                        spec.join(", "),
                        p.location
                    ),
                )
                .await;
            }
            let diff = scalar(
                &engine,
                "demo",
                &format!(
                    "SELECT count(*) FROM (SELECT * FROM {name} EXCEPT SELECT * FROM {name}_copy)"
                ),
            )
            .await;
            assert_eq!(diff, "0", "{backend:?}: {name} minus its copy");
            assert_eq!(
                count(name.clone()).await,
                count(format!("{name}_copy")).await
            );
        }
    }
}

#[tokio::test]
async fn ddl_ctas_and_insert_on_the_glue_catalog() {
    let lake = Lake::sample(Backend::S3).await;
    let glue: Arc<GlueCatalog> = Arc::new(glue().await);
    let db = unique_name("glue_write");
    let (engine, out) = engine(&lake, glue.clone(), &db, Arc::clone(&lake.location.store)).await;
    ok(
        &engine,
        &db,
        "CREATE TABLE sales_pq WITH (format = 'PARQUET', partitioned_by = ARRAY['region']) AS SELECT * FROM sales",
    )
    .await;
    let t = glue
        .get_table(&db, "sales_pq")
        .await
        .expect("get")
        .expect("table");
    assert_eq!(t.storage.location, format!("{out}{db}/sales_pq/"));
    assert_eq!(t.stat("recordCount"), Some(5));
    assert_eq!(
        glue.get_partitions(&db, "sales_pq", &PartitionFilter::all())
            .await
            .expect("parts")
            .len(),
        3
    );
    assert_eq!(
        scalar(
            &engine,
            &db,
            "SELECT count(*) FROM sales_pq WHERE region = 'eu west'"
        )
        .await,
        "2"
    );

    ok(
        &engine,
        &db,
        "INSERT INTO sales_pq VALUES (9, 'x', NULL, 1, DATE '2024-05-01', 'new')",
    )
    .await;
    assert_eq!(
        scalar(&engine, &db, "SELECT count(*) FROM sales_pq").await,
        "6"
    );
    let parts = glue
        .get_partitions(&db, "sales_pq", &PartitionFilter::all())
        .await
        .expect("parts");
    assert_eq!(parts.len(), 4);
    let t = glue
        .get_table(&db, "sales_pq")
        .await
        .expect("get")
        .expect("table");
    assert_eq!(t.stat("recordCount"), Some(6));

    // An external table over the same files, its partitions found by MSCK REPAIR.
    ok(
        &engine,
        &db,
        &format!(
            "CREATE EXTERNAL TABLE again (order_id bigint, customer string, note string, amount double, sold_on date) PARTITIONED BY (region string) STORED AS PARQUET LOCATION '{out}{db}/sales_pq/'"
        ),
    )
    .await;
    ok(&engine, &db, "MSCK REPAIR TABLE again").await;
    assert_eq!(
        scalar(&engine, &db, "SELECT count(*) FROM again").await,
        "6"
    );
    ok(
        &engine,
        &db,
        "ALTER TABLE again DROP PARTITION (region = 'new')",
    )
    .await;
    assert_eq!(
        scalar(&engine, &db, "SELECT count(*) FROM again").await,
        "5"
    );
    ok(
        &engine,
        &db,
        "ALTER TABLE again ADD PARTITION (region = 'new')",
    )
    .await;
    assert_eq!(
        scalar(&engine, &db, "SELECT count(*) FROM again").await,
        "6"
    );
    ok(
        &engine,
        &db,
        "ALTER TABLE again SET TBLPROPERTIES ('owner' = 'me')",
    )
    .await;
    let t = glue
        .get_table(&db, "again")
        .await
        .expect("get")
        .expect("table");
    assert_eq!(t.parameters.get("owner").map(String::as_str), Some("me"));

    ok(&engine, &db, "DROP TABLE again").await;
    assert!(glue.get_table(&db, "again").await.expect("get").is_none());
    // The files stay: the CTAS table still reads them.
    assert_eq!(
        scalar(&engine, &db, "SELECT count(*) FROM sales_pq").await,
        "6"
    );
    let failed = run(&engine, &db, &format!("DROP DATABASE {db}")).await;
    assert!(
        failed
            .record
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("CASCADE"),
        "{:?}",
        failed.record.error
    );
    ok(&engine, &db, &format!("DROP DATABASE {db} CASCADE")).await;
    assert!(glue.get_database(&db).await.expect("get").is_none());
}

#[tokio::test]
async fn ctas_writes_a_thousand_partitions_with_a_hundred_files_open() {
    let lake = Lake::empty(Backend::Local).await;
    let catalog = Arc::new(SqliteCatalog::open_in_memory().expect("catalog"));
    catalog
        .commit(quarry_catalog::CatalogWrite {
            databases: vec![quarry_catalog::Database::new("demo")],
            ..Default::default()
        })
        .await
        .expect("database");
    let stores = Arc::new(ObjectStores::new());
    let out = format!("{}wide/", lake.location.root_url());
    let engine = Engine::new(catalog.clone(), stores, EngineConfig::default());
    // Rows arrive with partitions interleaved, so files are closed and reopened (LRU) as the
    // writer keeps at most 100 open: more files than partitions, every row kept.
    let sql = format!(
        "CREATE TABLE wide WITH (external_location = '{out}', partitioned_by = ARRAY['p']) AS \
         SELECT value AS v, value % 1000 AS p FROM generate_series(1, 20000) AS t(value)"
    );
    let r = ok(&engine, "demo", &sql).await;
    let written = r.written.expect("written");
    assert_eq!(written.rows, 20000);
    assert_eq!(written.partitions_added, 1000);
    assert!(written.files >= 1000, "{written:?}");
    assert_eq!(
        catalog
            .count_partitions("demo", "wide")
            .await
            .expect("count"),
        1000
    );
    assert_eq!(
        scalar(&engine, "demo", "SELECT count(*) FROM wide WHERE p = 7").await,
        "20"
    );
    assert_eq!(
        scalar(&engine, "demo", "SELECT sum(v) FROM wide").await,
        "200010000"
    );
}

#[tokio::test]
async fn msck_repair_adds_ten_thousand_partitions_in_one_write() {
    let lake = Lake::empty(Backend::Local).await;
    let root = std::path::PathBuf::from(&lake.url).join("events");
    for d in 0..100 {
        for h in 0..100 {
            let dir = root.join(format!("day={d}/hour={h}"));
            std::fs::create_dir_all(&dir).expect("dir");
            std::fs::write(dir.join("part.csv"), format!("{d},{h}\n")).expect("file");
        }
    }
    std::fs::create_dir_all(root.join("stray")).expect("dir");
    std::fs::write(root.join("stray/x.csv"), "1,2\n").expect("file");
    // A value that is not an int would fail every query of the table: reported, not added.
    std::fs::create_dir_all(root.join("day=latest/hour=1")).expect("dir");
    std::fs::write(root.join("day=latest/hour=1/x.csv"), "1,2\n").expect("file");
    let catalog = Arc::new(SqliteCatalog::open_in_memory().expect("catalog"));
    let engine = Engine::new(
        catalog.clone(),
        Arc::new(ObjectStores::new()),
        EngineConfig::default(),
    );
    ok(&engine, "default", "CREATE DATABASE logs").await;
    ok(
        &engine,
        "logs",
        &format!(
            "CREATE EXTERNAL TABLE events (a int, b int) PARTITIONED BY (day int, hour int) ROW FORMAT DELIMITED FIELDS TERMINATED BY ',' LOCATION '{}/'",
            root.display()
        ),
    )
    .await;
    let started = std::time::Instant::now();
    let r = ok(&engine, "logs", "MSCK REPAIR TABLE events").await;
    eprintln!(
        "MSCK REPAIR TABLE, 10,000 partitions: {:?}",
        started.elapsed()
    );
    assert_eq!(r.record.rows, 10_002, "10,000 added, two folders reported");
    let reasons = quarry_query::render(&r.schema, &r.batches, quarry_query::OutputFormat::Csv)
        .expect("render");
    assert!(
        reasons.contains("skipped: 'latest' is not of type int,day=latest/hour=1"),
        "{reasons}"
    );
    assert!(
        reasons.contains("\"skipped: not partition keys (day, hour)\",stray"),
        "{reasons}"
    );
    assert_eq!(
        catalog
            .count_partitions("logs", "events")
            .await
            .expect("count"),
        10_000
    );
    assert_eq!(
        scalar(
            &engine,
            "logs",
            "SELECT sum(a * 1000 + b) FROM events WHERE day = 42"
        )
        .await,
        "4204950"
    );
    // A second run finds nothing new.
    let again = ok(&engine, "logs", "MSCK REPAIR TABLE events").await;
    assert_eq!(again.record.rows, 2);
}

#[tokio::test]
async fn written_parquet_files_are_bookmarked_with_their_footers_like_a_crawl() {
    for backend in BACKENDS {
        let (lake, catalog, engine, out) = sample_engine(backend).await;
        ok(
            &engine,
            "demo",
            "CREATE TABLE m WITH (partitioned_by = ARRAY['year', 'month']) AS SELECT * FROM metrics",
        )
        .await;
        ok(
            &engine,
            "demo",
            "INSERT INTO m SELECT id, host, value, region, year, 3 FROM metrics",
        )
        .await;
        let files: Vec<String> = objects(&lake, &out)
            .await
            .into_iter()
            .map(|p| format!("{}{p}", lake.location.base))
            .collect();
        // Three partitions, a file or more each (one per writer that saw the partition).
        assert!(files.len() >= 3, "{files:?}");
        let kept = catalog
            .objects_with_footers(&files)
            .await
            .expect("bookmarks");
        assert_eq!(kept.len(), files.len());
        assert!(
            kept.iter()
                .all(|o| o.footer.is_some() && o.table.as_deref() == Some("demo.m"))
        );
        // A crawl of the table's location finds nothing new to read.
        let report = Crawler::new(catalog.clone(), CrawlConfig::new("demo"))
            .crawl(&lake_location(&lake, &format!("{out}demo/m/")))
            .await
            .expect("crawl");
        assert_eq!(
            (report.objects_inspected, report.objects_unchanged),
            (0, files.len()),
            "{report}"
        );
        assert_eq!(
            scalar(&engine, "demo", "SELECT count(*) FROM m").await,
            "10"
        );
    }
}

fn lake_location(lake: &Lake, url: &str) -> quarry_lake::Location {
    let (_, prefix) = quarry_lake::split_location(url).expect("url");
    quarry_lake::Location::new(
        Arc::clone(&lake.location.store),
        lake.location.base.clone(),
        prefix,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_during_inserts_never_see_a_partial_file() {
    for backend in BACKENDS {
        let (_lake, _catalog, engine, _) = sample_engine(backend).await;
        ok(
            &engine,
            "demo",
            "CREATE TABLE t WITH (partitioned_by = ARRAY['p']) AS \
             SELECT value AS v, value % 3 AS p FROM generate_series(1, 30000) AS s(value)",
        )
        .await;
        let inserts = 5;
        let writer = {
            let engine = engine.clone();
            tokio::spawn(async move {
                for _ in 0..inserts {
                    // 30,000 rows into the same three partitions, each time.
                    ok(
                        &engine,
                        "demo",
                        "INSERT INTO t SELECT value, value % 3 FROM generate_series(1, 30000) AS s(value)",
                    )
                    .await;
                }
            })
        };
        let mut seen = Vec::new();
        while !writer.is_finished() {
            // Every read succeeds (a partial Parquet file would fail it) and sees whole files.
            // Read every value, not statistics: `v > 0` holds for every row.
            let n: u64 = scalar(&engine, "demo", "SELECT count(*) FROM t WHERE v > 0")
                .await
                .parse()
                .expect("count");
            assert!(
                n >= 30_000 && n <= 30_000 * (inserts + 1),
                "{backend:?}: {n}"
            );
            seen.push(n);
        }
        writer.await.expect("inserts");
        assert_eq!(
            scalar(&engine, "demo", "SELECT count(*) FROM t").await,
            (30_000 * (inserts + 1)).to_string()
        );
        assert!(!seen.is_empty());
        assert!(
            seen.windows(2).all(|w| w[0] <= w[1]),
            "{backend:?}: {seen:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_inserts_all_commit_and_keep_the_statistics_right() {
    let (_lake, catalog, engine, _) = sample_engine(Backend::Local).await;
    ok(
        &engine,
        "demo",
        "CREATE TABLE t WITH (partitioned_by = ARRAY['p']) AS \
         SELECT value AS v, value % 2 AS p FROM generate_series(1, 1000) AS s(value)",
    )
    .await;
    let writers: Vec<_> = (0..4)
        .map(|i| {
            let engine = engine.clone();
            tokio::spawn(async move {
                // Each adds 1,000 rows to the two existing partitions and one of its own.
                ok(
                    &engine,
                    "demo",
                    &format!(
                        "INSERT INTO t SELECT value, CASE WHEN value <= 10 THEN {} ELSE value % 2 END \
                         FROM generate_series(1, 1000) AS s(value)",
                        10 + i
                    ),
                )
                .await;
            })
        })
        .collect();
    for w in writers {
        w.await.expect("insert");
    }
    assert_eq!(
        scalar(&engine, "demo", "SELECT count(*) FROM t WHERE v > 0").await,
        "5000"
    );
    let t = catalog
        .get_table("demo", "t")
        .await
        .expect("get")
        .expect("table");
    assert_eq!(t.stat("recordCount"), Some(5000));
    let parts = catalog
        .get_partitions("demo", "t", &PartitionFilter::all())
        .await
        .expect("partitions");
    assert_eq!(parts.len(), 6);
    let rows: u64 = parts.iter().filter_map(|p| p.stat("recordCount")).sum();
    assert_eq!(rows, 5000);
    let objects: u64 = parts.iter().filter_map(|p| p.stat("objectCount")).sum();
    assert_eq!(Some(objects), t.stat("objectCount"));
}
