//! The Glue Data Catalog backend against the Glue API that moto_server serves beside S3.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use aws_sdk_glue::types as g;
use chrono::Utc;
use quarry_catalog::{
    Catalog, CatalogWrite, Column, Database, DatabaseDrop, Error, GlueCatalog, KeyPredicate,
    Partition, PartitionDrop, PartitionFilter, PartitionWrite, SeenObject, SqliteCatalog,
    StorageDescriptor, Table, TableDrop, TableWrite,
};
use quarry_crawler::{CrawlConfig, Crawler};
use quarry_query::{Engine, EngineConfig, ObjectStores, OutputFormat, QueryRequest, render};
use quarry_tests::{Backend, Lake, glue, unique_name};

/// A catalog entry without the fields that differ between any two writes (times, versions,
/// the crawl's own timestamp).
fn normal_table(t: &Table) -> String {
    let mut t = t.clone();
    t.create_time = Default::default();
    t.update_time = Default::default();
    t.version = 0;
    t.database = String::new();
    t.parameters.retain(|k, _| !k.contains("UpdatedAt"));
    serde_json::to_string_pretty(&t).expect("json")
}

type NormalPartition = (Vec<Option<String>>, String, BTreeMap<String, String>);

fn normal_partitions(parts: &[Partition]) -> Vec<NormalPartition> {
    let mut v: Vec<_> = parts
        .iter()
        .map(|p| {
            let mut params = p.parameters.clone();
            params.retain(|k, _| !k.contains("UpdatedAt"));
            (p.values.clone(), p.location.clone(), params)
        })
        .collect();
    v.sort();
    v
}

async fn crawl(catalog: Arc<dyn Catalog>, lake: &Lake, db: &str) -> quarry_crawler::CrawlReport {
    Crawler::new(catalog, CrawlConfig::new(db))
        .crawl(&lake.location)
        .await
        .expect("crawl")
}

#[tokio::test]
async fn a_crawl_into_glue_matches_the_embedded_catalog_and_recrawls_incrementally() {
    let lake = Lake::sample(Backend::S3).await;
    let db = unique_name("glue_crawl");
    let glue: Arc<GlueCatalog> = Arc::new(glue().await);
    let sqlite = Arc::new(SqliteCatalog::open_in_memory().expect("catalog"));
    let first = crawl(glue.clone(), &lake, &db).await;
    crawl(sqlite.clone(), &lake, &db).await;
    assert_eq!(first.partitions_added(), 10, "{first}");

    let from_glue = glue.list_tables(&db).await.expect("glue tables");
    let from_sqlite = sqlite.list_tables(&db).await.expect("sqlite tables");
    assert_eq!(from_glue.len(), 4);
    for (a, b) in from_glue.iter().zip(&from_sqlite) {
        assert_eq!(normal_table(a), normal_table(b));
        let pa = glue
            .get_partitions(&db, &a.name, &PartitionFilter::all())
            .await
            .expect("glue partitions");
        let pb = sqlite
            .get_partitions(&db, &b.name, &PartitionFilter::all())
            .await
            .expect("sqlite partitions");
        assert_eq!(normal_partitions(&pa), normal_partitions(&pb), "{}", a.name);
    }
    assert!(glue.get_database(&db).await.expect("db").is_some());

    // Bookmarks survive in the state bucket: nothing is read or written again.
    let second = crawl(glue.clone(), &lake, &db).await;
    assert!(!second.catalog_written, "{second}");
    assert_eq!(second.objects_inspected, 0);
    assert_eq!(glue.list_tables(&db).await.expect("tables"), from_glue);

    // A new partition is added, and only it.
    let csv = b"order_id,region_code,amount\n9,xx,1.5\n".to_vec();
    lake.put("sales/region=apac/part-0.csv", csv).await;
    let third = crawl(glue.clone(), &lake, &db).await;
    assert_eq!(third.partitions_added(), 1, "{third}");
    assert_eq!(third.objects_inspected, 1);
    let apac = glue
        .get_partitions(&db, "sales", &PartitionFilter::all().eq("region", "apac"))
        .await
        .expect("partitions");
    assert_eq!(apac.len(), 1);
    assert!(
        apac[0].location.ends_with("/sales/region=apac/"),
        "{}",
        apac[0].location
    );

    // A second file in an existing partition updates that partition's statistics in place.
    let before = glue
        .get_partitions(&db, "sales", &PartitionFilter::all().eq("region", "apac"))
        .await
        .expect("partitions");
    lake.put(
        "sales/region=apac/part-1.csv",
        b"order_id,region_code,amount\n10,yy,2.5\n".to_vec(),
    )
    .await;
    let fourth = crawl(glue.clone(), &lake, &db).await;
    assert_eq!(fourth.partitions_added(), 0, "{fourth}");
    let after = glue
        .get_partitions(&db, "sales", &PartitionFilter::all().eq("region", "apac"))
        .await
        .expect("partitions");
    assert_eq!(before[0].stat(quarry_catalog::keys::OBJECT_COUNT), Some(1));
    assert_eq!(
        after[0].stat(quarry_catalog::keys::OBJECT_COUNT),
        Some(2),
        "{fourth}"
    );
}

fn table(db: &str, name: &str) -> Table {
    Table {
        database: db.into(),
        name: name.into(),
        description: None,
        table_type: "EXTERNAL_TABLE".into(),
        view: None,
        storage: StorageDescriptor {
            location: format!("s3://lake/{name}/"),
            columns: vec![Column::new("x", "bigint")],
            ..Default::default()
        },
        partition_keys: vec![Column::new("dt", "string"), Column::new("hr", "int")],
        parameters: [("classification".to_string(), "csv".to_string())].into(),
        create_time: Utc::now(),
        update_time: Utc::now(),
        version: 0,
    }
}

fn partition(name: &str, dt: &str, hr: Option<&str>) -> Partition {
    Partition {
        values: vec![Some(dt.into()), hr.map(Into::into)],
        location: format!(
            "s3://lake/{name}/dt={dt}/hr={}/",
            hr.unwrap_or("__HIVE_DEFAULT_PARTITION__")
        ),
        parameters: Default::default(),
        create_time: Utc::now(),
        update_time: Utc::now(),
        version: 0,
    }
}

async fn seed(catalog: &dyn Catalog, db: &str, name: &str) {
    let mut write = CatalogWrite {
        databases: vec![Database::new(db)],
        tables: vec![TableWrite {
            table: table(db, name),
            expected_version: None,
        }],
        ..Default::default()
    };
    for dt in ["2024-01-01", "2024-01-02", "2024-01-03"] {
        for hr in [Some("2"), Some("10"), None] {
            write.partitions.push(PartitionWrite {
                database: db.into(),
                table: name.into(),
                partition: partition(name, dt, hr),
                expected_version: None,
            });
        }
    }
    catalog.commit(write).await.expect("seed");
}

#[tokio::test]
async fn partition_filters_give_the_same_partitions_as_the_embedded_catalog() {
    let db = unique_name("glue_filters");
    let glue = glue().await;
    let sqlite = SqliteCatalog::open_in_memory().expect("catalog");
    seed(&glue, &db, "t").await;
    seed(&sqlite, &db, "t").await;
    let range = |low: Bound<&str>, high: Bound<&str>| KeyPredicate::Range {
        low: low.map(String::from),
        high: high.map(String::from),
    };
    let filters = [
        PartitionFilter::all(),
        PartitionFilter::all().eq("dt", "2024-01-02"),
        // A numeric comparison on a key that holds the default partition: Glue cannot evaluate
        // it on every stored value, so the backend falls back to a local filter.
        PartitionFilter::all().and("hr", range(Bound::Excluded("2"), Bound::Unbounded)),
        PartitionFilter::all()
            .and("dt", range(Bound::Included("2024-01-02"), Bound::Unbounded))
            .eq("hr", "10"),
        PartitionFilter::all().and("hr", KeyPredicate::IsNull),
        PartitionFilter::all()
            .and(
                "dt",
                KeyPredicate::In(vec!["2024-01-01".into(), "2024-01-03".into()]),
            )
            .and("hr", KeyPredicate::IsNotNull),
        PartitionFilter::all().and("dt", KeyPredicate::In(vec![])),
    ];
    for f in &filters {
        let a = glue.get_partitions(&db, "t", f).await.expect("glue");
        let b = sqlite.get_partitions(&db, "t", f).await.expect("sqlite");
        assert_eq!(normal_partitions(&a), normal_partitions(&b), "{f:?}");
    }
    assert_eq!(glue.count_partitions(&db, "t").await.expect("count"), 9);
    let bad = glue
        .get_partitions(&db, "t", &PartitionFilter::all().eq("nope", "1"))
        .await;
    assert!(
        matches!(bad, Err(Error::UnknownPartitionKey { .. })),
        "{bad:?}"
    );
    let missing = glue
        .get_partitions(&db, "absent", &PartitionFilter::all())
        .await;
    assert!(
        matches!(missing, Err(Error::TableNotFound { .. })),
        "{missing:?}"
    );
}

#[tokio::test]
async fn stale_and_duplicate_writes_are_conflicts() {
    let db = unique_name("glue_conflict");
    let glue = glue().await;
    seed(&glue, &db, "t").await;
    let current = glue
        .get_table(&db, "t")
        .await
        .expect("get")
        .expect("exists");

    let create_again = CatalogWrite {
        tables: vec![TableWrite {
            table: table(&db, "t"),
            expected_version: None,
        }],
        ..Default::default()
    };
    let e = glue.commit(create_again).await;
    assert!(matches!(e, Err(Error::Conflict { .. })), "{e:?}");

    let mut changed = current.clone();
    changed.storage.columns.push(Column::new("y", "string"));
    let update = |v| CatalogWrite {
        tables: vec![TableWrite {
            table: changed.clone(),
            expected_version: Some(v),
        }],
        ..Default::default()
    };
    glue.commit(update(current.version))
        .await
        .expect("update at the read version");
    let e = glue.commit(update(current.version)).await;
    assert!(
        matches!(e, Err(Error::Conflict { .. })),
        "stale version: {e:?}"
    );
    let now = glue
        .get_table(&db, "t")
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(now.storage.columns.len(), 2);

    let duplicate = CatalogWrite {
        partitions: vec![PartitionWrite {
            database: db.clone(),
            table: "t".into(),
            partition: partition("t", "2024-01-01", Some("2")),
            expected_version: None,
        }],
        ..Default::default()
    };
    let e = glue.commit(duplicate).await;
    assert!(matches!(e, Err(Error::Conflict { .. })), "{e:?}");
}

#[tokio::test]
async fn drops_are_checked_before_anything_changes_and_forget_the_tables_bookmarks() {
    let db = unique_name("glue_drop");
    let glue = glue().await;
    seed(&glue, &db, "t").await;
    seed(&glue, &db, "u").await;
    let bookmark = |name: &str, table: Option<&str>| SeenObject {
        path: format!("s3://lake/{name}"),
        size: 10,
        fingerprint: "e1".into(),
        table: table.map(|t| format!("{db}.{t}")),
        rows: Some(1),
        footer: None,
    };
    glue.commit(CatalogWrite {
        crawl_target: Some("s3://lake/".into()),
        seen: vec![
            bookmark("t/a.csv", Some("t")),
            bookmark("u/a.csv", Some("u")),
            bookmark("notes.txt", None),
        ],
        ..Default::default()
    })
    .await
    .expect("bookmarks");
    let bookmarked = || async {
        let mut paths: Vec<String> = glue
            .seen_objects("s3://lake/")
            .await
            .expect("bookmarks")
            .into_iter()
            .map(|o| o.path.trim_start_matches("s3://lake/").to_string())
            .collect();
        paths.sort();
        paths
    };
    let count = |name: &'static str| {
        let (glue, db) = (&glue, &db);
        async move { glue.count_partitions(db, name).await.expect("count") }
    };
    let t = glue.get_table(&db, "t").await.expect("get").expect("t");
    let drop_table = |name: &str, expected_version| TableDrop {
        database: db.clone(),
        table: name.into(),
        expected_version,
    };
    let drop_partition = |dt: &str, hr: Option<&str>, expected_version| PartitionDrop {
        database: db.clone(),
        table: "t".into(),
        values: vec![Some(dt.into()), hr.map(Into::into)],
        expected_version,
    };

    // One stale version, one missing partition: nothing is deleted.
    let stale = CatalogWrite {
        drop_partitions: vec![drop_partition("2024-01-01", Some("2"), None)],
        drop_tables: vec![
            drop_table("t", Some(t.version)),
            drop_table("u", Some(t.version + 7)),
        ],
        ..Default::default()
    };
    let e = glue.commit(stale).await;
    assert!(matches!(e, Err(Error::Conflict { .. })), "{e:?}");
    let missing = CatalogWrite {
        drop_partitions: vec![
            drop_partition("2024-01-01", Some("2"), None),
            drop_partition("2024-01-09", None, None),
        ],
        ..Default::default()
    };
    let e = glue.commit(missing).await.expect_err("no such partition");
    assert!(matches!(e, Error::PartitionNotFound { .. }), "{e:?}");
    assert!(e.to_string().contains("(dt='2024-01-09', hr=NULL)"), "{e}");
    assert_eq!((count("t").await, count("u").await), (9, 9));
    assert_eq!(bookmarked().await, ["notes.txt", "t/a.csv", "u/a.csv"]);

    // A partition, including the NULL (default) one.
    glue.commit(CatalogWrite {
        drop_partitions: vec![
            drop_partition("2024-01-01", Some("2"), Some(0)),
            drop_partition("2024-01-01", None, None),
        ],
        ..Default::default()
    })
    .await
    .expect("drop partitions");
    let left = glue
        .get_partitions(&db, "t", &PartitionFilter::all().eq("dt", "2024-01-01"))
        .await
        .expect("partitions");
    let hours: Vec<_> = left.iter().map(|p| p.values[1].as_deref()).collect();
    assert_eq!(hours, [Some("10")]);
    assert_eq!(count("t").await, 7);

    // Not empty without CASCADE.
    let drop_db = |cascade| CatalogWrite {
        drop_databases: vec![DatabaseDrop {
            name: db.clone(),
            cascade,
        }],
        ..Default::default()
    };
    let e = glue.commit(drop_db(false)).await.expect_err("not empty");
    assert!(matches!(e, Error::DatabaseNotEmpty { .. }), "{e:?}");
    assert!(e.to_string().contains("2 tables (t, u)"), "{e}");
    assert!(e.to_string().contains("CASCADE"), "{e}");

    // Dropped and re-created in one write: its partitions and bookmarks are gone.
    let mut recreated = table(&db, "t");
    recreated.partition_keys.truncate(1);
    glue.commit(CatalogWrite {
        drop_tables: vec![drop_table("t", Some(t.version))],
        tables: vec![TableWrite {
            table: recreated,
            expected_version: None,
        }],
        partitions: vec![PartitionWrite {
            database: db.clone(),
            table: "t".into(),
            partition: Partition {
                values: vec![Some("2025-01-01".into())],
                location: "s3://lake/t/dt=2025-01-01/".into(),
                ..partition("t", "2025-01-01", None)
            },
            expected_version: None,
        }],
        ..Default::default()
    })
    .await
    .expect("drop and re-create");
    let t2 = glue.get_table(&db, "t").await.expect("get").expect("t");
    assert_eq!(t2.partition_keys.len(), 1);
    assert_eq!(count("t").await, 1);
    assert_eq!(bookmarked().await, ["notes.txt", "u/a.csv"]);

    // The database, its tables and their bookmarks; the skipped object's stays.
    glue.commit(drop_db(true)).await.expect("drop database");
    assert_eq!(glue.get_database(&db).await.expect("get"), None);
    assert_eq!(bookmarked().await, ["notes.txt"]);
    let e = glue.commit(drop_db(true)).await;
    assert!(matches!(e, Err(Error::DatabaseNotFound { .. })), "{e:?}");
    let e = glue
        .commit(CatalogWrite {
            drop_tables: vec![drop_table("u", None)],
            ..Default::default()
        })
        .await;
    assert!(matches!(e, Err(Error::TableNotFound { .. })), "{e:?}");

    // Created when missing, updated on request.
    let mut described = Database::new(&db);
    described.description = Some("sales".into());
    described.location = Some("s3://lake/".into());
    glue.commit(CatalogWrite {
        databases: vec![Database::new(&db)],
        update_databases: vec![described],
        ..Default::default()
    })
    .await
    .expect("create and update");
    let d = glue.get_database(&db).await.expect("get").expect("db");
    assert_eq!(d.description.as_deref(), Some("sales"));
    assert_eq!(d.location.as_deref(), Some("s3://lake/"));
}

async fn engine_csv(catalog: Arc<dyn Catalog>, lake: &Lake, db: &str, sql: &str) -> (String, u64) {
    let stores = Arc::new(ObjectStores::new());
    stores.register(&lake.location.base, lake.location.store.clone());
    let engine = Engine::new(catalog, stores, EngineConfig::default());
    let out = engine
        .run(QueryRequest::new(sql).with_database(Some(db.into())))
        .await;
    assert!(out.succeeded(), "{sql}: {:?}", out.record.error);
    (
        render(&out.schema, &out.batches, OutputFormat::Csv).expect("csv"),
        out.record.bytes_scanned,
    )
}

#[tokio::test]
async fn queries_over_glue_prune_and_read_like_the_embedded_catalog() {
    let lake = Lake::sample(Backend::S3).await;
    let db = unique_name("glue_query");
    let glue: Arc<dyn Catalog> = Arc::new(glue().await);
    let sqlite: Arc<dyn Catalog> = Arc::new(SqliteCatalog::open_in_memory().expect("catalog"));
    crawl(glue.clone(), &lake, &db).await;
    crawl(sqlite.clone(), &lake, &db).await;
    for sql in [
        "SELECT region, count(*) AS n, sum(amount) AS total FROM sales GROUP BY region ORDER BY region NULLS LAST",
        "SELECT count(*) FROM sales WHERE region = 'us-east'",
        "SELECT count(*), sum(amount) FROM events WHERE dt = DATE '2024-01-02'",
        "SELECT * FROM metrics ORDER BY 1, 2",
        "SELECT count(*) FROM logs",
    ] {
        let a = engine_csv(glue.clone(), &lake, &db, sql).await;
        let b = engine_csv(sqlite.clone(), &lake, &db, sql).await;
        if sql.contains("metrics") {
            // Parquet: the embedded catalog keeps the footers the crawl read; Glue has nowhere
            // to, so queries over it read them again.
            assert_eq!(a.0, b.0, "{sql}");
            assert!(a.1 > b.1, "{sql}: {a:?} {b:?}");
        } else {
            assert_eq!(a, b, "{sql}");
        }
    }
    // Pruned through GetPartitions; the table's total is not counted per query on Glue (it
    // would read every partition).
    let stores = Arc::new(ObjectStores::new());
    stores.register(&lake.location.base, lake.location.store.clone());
    let out = Engine::new(glue, stores, EngineConfig::default())
        .run(
            QueryRequest::new("SELECT count(*) FROM sales WHERE region = 'us-east'")
                .with_database(Some(db.clone())),
        )
        .await;
    assert!(out.succeeded(), "{:?}", out.record.error);
    assert_eq!(out.scans[0].partitions_selected, 1);
    assert_eq!(out.scans[0].partitions_total, None);
    assert_eq!(out.scans[0].files, 1);
}

/// Tables as AWS Glue's own crawler writes them: no `quarry.*` parameters, OpenCSVSerde for
/// quoted CSV, the OpenX JSON SerDe, and Parquet identified by its SerDe alone.
/// `ANALYZE` on the Glue catalog goes through Glue's column-statistics API. moto does not
/// implement it (it answers 500), so there the statement must fail naming the table and what it
/// was doing, leave the table unmarked (queries do not look statistics up), and queries still
/// answer; against an endpoint that has it, the statistics must read back.
#[tokio::test]
async fn analyze_on_glue_stores_statistics_through_glues_api_or_says_why_not() {
    let lake = Lake::sample(Backend::S3).await;
    let db = unique_name("glue_analyze");
    let glue: Arc<dyn Catalog> = Arc::new(glue().await);
    crawl(glue.clone(), &lake, &db).await;
    let stores = Arc::new(ObjectStores::new());
    stores.register(&lake.location.base, lake.location.store.clone());
    let engine = Engine::new(glue.clone(), stores, EngineConfig::default());
    let out = engine
        .run(QueryRequest::new("ANALYZE sales FOR COLUMNS amount").with_database(Some(db.clone())))
        .await;
    let table = glue.get_table(&db, "sales").await.unwrap().unwrap();
    match &out.record.error {
        None => {
            let kept = glue
                .column_statistics(&db, "sales", &["amount".into()])
                .await
                .expect("statistics");
            assert_eq!(kept.len(), 1, "{kept:?}");
            assert!(table.parameters.contains_key("quarry.analyzedAt"));
        }
        Some(e) => {
            let e = e.to_string();
            assert!(
                e.contains(&format!("storing column statistics of {db}.sales")),
                "{e}"
            );
            assert!(!table.parameters.contains_key("quarry.analyzedAt"));
        }
    }
    engine_csv(
        glue,
        &lake,
        &db,
        "SELECT count(*) FROM sales WHERE amount > 1",
    )
    .await;
}

#[tokio::test]
async fn tables_written_by_glues_crawler_are_readable() {
    let lake = Lake::empty(Backend::S3).await;
    lake.put(
        "people/year=2024/people.csv",
        b"\"id\",\"name\",\"city\"\n\"1\",\"Ada, Countess\",\"London\"\n\"2\",\"Alan\",\"Wilmslow\"\n".to_vec(),
    )
    .await;
    lake.put(
        "clicks/dt=2024-05-01/part-0.json",
        b"{\"user\":\"u1\",\"n\":3}\n{\"user\":\"u2\",\"n\":4}\n".to_vec(),
    )
    .await;
    for month in [1, 2] {
        let rel = format!("metrics/year=2024/month={month}/part-0.parquet");
        let bytes = std::fs::read(quarry_tests::sample_data().join(&rel)).expect("sample parquet");
        lake.put(&rel, bytes).await;
    }
    let db = unique_name("glue_native");
    let glue = glue().await;
    let client = glue.client().clone();
    client
        .create_database()
        .database_input(g::DatabaseInput::builder().name(&db).build().expect("db"))
        .send()
        .await
        .expect("create database");

    let col = |n: &str, t: &str| {
        g::Column::builder()
            .name(n)
            .r#type(t)
            .build()
            .expect("column")
    };
    let root = lake.location.root_url();
    let people = g::TableInput::builder()
        .name("people")
        .table_type("EXTERNAL_TABLE")
        .parameters("classification", "csv")
        .parameters("skip.header.line.count", "1")
        .parameters("areColumnsQuoted", "true")
        .parameters("columnsOrdered", "true")
        .parameters("compressionType", "none")
        .parameters("delimiter", ",")
        .parameters("typeOfData", "file")
        .partition_keys(col("year", "string"))
        .storage_descriptor(
            g::StorageDescriptor::builder()
                .columns(col("id", "bigint"))
                .columns(col("name", "string"))
                .columns(col("city", "string"))
                .location(format!("{root}people/"))
                .input_format("org.apache.hadoop.mapred.TextInputFormat")
                .output_format("org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat")
                .serde_info(
                    g::SerDeInfo::builder()
                        .serialization_library("org.apache.hadoop.hive.serde2.OpenCSVSerde")
                        .parameters("separatorChar", ",")
                        .parameters("quoteChar", "\"")
                        .build(),
                )
                .build(),
        )
        .build()
        .expect("table");
    let clicks = g::TableInput::builder()
        .name("clicks")
        .table_type("EXTERNAL_TABLE")
        .partition_keys(col("dt", "string"))
        .storage_descriptor(
            g::StorageDescriptor::builder()
                .columns(col("user", "string"))
                .columns(col("n", "int"))
                .location(format!("{root}clicks/"))
                .input_format("org.apache.hadoop.mapred.TextInputFormat")
                .output_format("org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat")
                .serde_info(
                    g::SerDeInfo::builder()
                        .serialization_library("org.openx.data.jsonserde.JsonSerDe")
                        .parameters("paths", "n,user")
                        .build(),
                )
                .build(),
        )
        .build()
        .expect("table");
    let metrics = g::TableInput::builder()
        .name("metrics")
        .table_type("EXTERNAL_TABLE")
        .partition_keys(col("year", "int"))
        .partition_keys(col("month", "int"))
        .storage_descriptor(
            g::StorageDescriptor::builder()
                .columns(col("id", "bigint"))
                .columns(col("host", "string"))
                .columns(col("value", "double"))
                .columns(col("region", "string"))
                .location(format!("{root}metrics/"))
                .input_format("org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat")
                .output_format("org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat")
                .serde_info(
                    g::SerDeInfo::builder()
                        .serialization_library(
                            "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
                        )
                        .parameters("serialization.format", "1")
                        .build(),
                )
                .build(),
        )
        .build()
        .expect("table");
    for t in [people, clicks, metrics] {
        client
            .create_table()
            .database_name(&db)
            .table_input(t)
            .send()
            .await
            .expect("create table");
    }
    for (table, values, folder) in [
        ("people", vec!["2024"], "people/year=2024/"),
        ("clicks", vec!["2024-05-01"], "clicks/dt=2024-05-01/"),
        ("metrics", vec!["2024", "1"], "metrics/year=2024/month=1/"),
        ("metrics", vec!["2024", "2"], "metrics/year=2024/month=2/"),
    ] {
        client
            .create_partition()
            .database_name(&db)
            .table_name(table)
            .partition_input(
                g::PartitionInput::builder()
                    .set_values(Some(values.iter().map(|v| v.to_string()).collect()))
                    .storage_descriptor(
                        g::StorageDescriptor::builder()
                            .location(format!("{root}{folder}"))
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await
            .expect("create partition");
    }
    let glue: Arc<dyn Catalog> = Arc::new(glue);
    let (csv, _) = engine_csv(
        glue.clone(),
        &lake,
        &db,
        "SELECT id, name, city, year FROM people ORDER BY id",
    )
    .await;
    assert_eq!(
        csv,
        "id,name,city,year\n1,\"Ada, Countess\",London,2024\n2,Alan,Wilmslow,2024\n"
    );
    let (json, _) = engine_csv(
        glue.clone(),
        &lake,
        &db,
        "SELECT sum(n) AS n, max(\"user\") AS u FROM clicks WHERE dt = '2024-05-01'",
    )
    .await;
    assert_eq!(json, "n,u\n7,u2\n");
    let (parquet, _) = engine_csv(
        glue.clone(),
        &lake,
        &db,
        "SELECT month, count(*) AS n FROM metrics WHERE year = 2024 GROUP BY month ORDER BY month",
    )
    .await;
    let total: u64 = parquet
        .lines()
        .skip(1)
        .map(|l| {
            l.split(',')
                .nth(1)
                .and_then(|n| n.parse::<u64>().ok())
                .expect("count")
        })
        .sum();
    assert!(parquet.starts_with("month,n\n1,"), "{parquet}");
    assert_eq!(total, 5, "{parquet}");
}

/// A table Athena created with partition projection (its properties in Glue, no partition
/// registered) reads through Quarry with the partitions the projection defines.
#[tokio::test]
async fn athena_projected_tables_in_glue_are_readable() {
    let lake = Lake::empty(Backend::S3).await;
    for month in [1, 2] {
        let rel = format!("metrics/year=2024/month={month}/part-0.parquet");
        let bytes = std::fs::read(quarry_tests::sample_data().join(&rel)).expect("sample parquet");
        lake.put(&rel, bytes).await;
    }
    let db = unique_name("glue_projected");
    let glue = glue().await;
    let client = glue.client().clone();
    client
        .create_database()
        .database_input(g::DatabaseInput::builder().name(&db).build().expect("db"))
        .send()
        .await
        .expect("create database");
    let col = |n: &str, t: &str| {
        g::Column::builder()
            .name(n)
            .r#type(t)
            .build()
            .expect("column")
    };
    let root = lake.location.root_url();
    let table = g::TableInput::builder()
        .name("metrics")
        .table_type("EXTERNAL_TABLE")
        .parameters("projection.enabled", "true")
        .parameters("projection.year.type", "integer")
        .parameters("projection.year.range", "2000,2100")
        .parameters("projection.month.type", "integer")
        .parameters("projection.month.range", "1,12")
        .parameters(
            "storage.location.template",
            format!("{root}metrics/year=${{year}}/month=${{month}}"),
        )
        .partition_keys(col("year", "int"))
        .partition_keys(col("month", "int"))
        .storage_descriptor(
            g::StorageDescriptor::builder()
                .columns(col("id", "bigint"))
                .columns(col("value", "double"))
                .location(format!("{root}metrics/"))
                .input_format("org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat")
                .output_format("org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat")
                .serde_info(
                    g::SerDeInfo::builder()
                        .serialization_library(
                            "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
                        )
                        .build(),
                )
                .build(),
        )
        .build()
        .expect("table");
    client
        .create_table()
        .database_name(&db)
        .table_input(table)
        .send()
        .await
        .expect("create table");
    let glue: Arc<dyn Catalog> = Arc::new(glue);
    let (csv, _) = engine_csv(
        glue,
        &lake,
        &db,
        "SELECT year, month, count(*) AS n FROM metrics WHERE year = 2024 AND month <= 6 GROUP BY 1, 2 ORDER BY 2",
    )
    .await;
    assert_eq!(csv, "year,month,n\n2024,1,3\n2024,2,2\n");
}

/// Views in Glue, both ways: one Athena wrote (base64 Presto view) reads in Quarry, and one
/// Quarry writes has the fields Athena reads.
#[tokio::test]
async fn views_in_glue_are_athenas_format_both_ways() {
    let lake = Lake::sample(Backend::S3).await;
    let db = unique_name("glue_views");
    let glue = glue().await;
    let client = glue.client().clone();
    let catalog: Arc<dyn Catalog> = Arc::new(glue);
    crawl(catalog.clone(), &lake, &db).await;
    // As Athena writes a view.
    use base64::Engine as _;
    let definition = serde_json::json!({
        "originalSql": format!("SELECT region, count(*) AS n FROM \"{db}\".\"sales\" GROUP BY region"),
        "catalog": "awsdatacatalog", "schema": db,
        "columns": [{"name": "region", "type": "varchar"}, {"name": "n", "type": "bigint"}],
        "owner": "arn:aws:iam::123456789012:user/analyst", "runAsInvoker": false, "properties": {}
    });
    let text = format!(
        "/* Presto View: {} */",
        base64::engine::general_purpose::STANDARD.encode(definition.to_string())
    );
    let col = |n: &str, t: &str| {
        g::Column::builder()
            .name(n)
            .r#type(t)
            .build()
            .expect("column")
    };
    client
        .create_table()
        .database_name(&db)
        .table_input(
            g::TableInput::builder()
                .name("by_region")
                .table_type("VIRTUAL_VIEW")
                .parameters("presto_view", "true")
                .parameters("comment", "Presto View")
                .view_original_text(text)
                .view_expanded_text("/* Presto View */")
                .set_partition_keys(Some(Vec::new()))
                .storage_descriptor(
                    g::StorageDescriptor::builder()
                        .columns(col("region", "string"))
                        .columns(col("n", "bigint"))
                        .build(),
                )
                .build()
                .expect("view"),
        )
        .send()
        .await
        .expect("create view");
    let (csv, _) = engine_csv(
        catalog.clone(),
        &lake,
        &db,
        "SELECT region, n FROM by_region WHERE region IS NOT NULL ORDER BY region",
    )
    .await;
    assert_eq!(csv, "region,n\neu west,2\nus-east,2\n");
    // As Quarry writes one.
    let (_, _) = engine_csv(
        catalog.clone(),
        &lake,
        &db,
        "CREATE VIEW eu AS SELECT order_id FROM sales WHERE region = 'eu west'",
    )
    .await;
    let got = client
        .get_table()
        .database_name(&db)
        .name("eu")
        .send()
        .await
        .expect("get view");
    let t = got.table().expect("table");
    assert_eq!(t.table_type(), Some("VIRTUAL_VIEW"));
    assert_eq!(t.view_expanded_text(), Some("/* Presto View */"));
    let original = t.view_original_text().expect("original text");
    let def = quarry_query::view::PrestoView::decode(original).expect("Presto view");
    assert_eq!(
        def.original_sql,
        "SELECT order_id FROM sales WHERE region = 'eu west'"
    );
    assert_eq!(def.schema.as_deref(), Some(db.as_str()));
    assert_eq!(
        t.parameters()
            .and_then(|p| p.get("presto_view"))
            .map(String::as_str),
        Some("true")
    );
    let (csv, _) = engine_csv(catalog, &lake, &db, "SELECT count(*) AS n FROM eu").await;
    assert_eq!(csv, "n\n2\n");
}
