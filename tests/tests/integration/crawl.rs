use std::sync::Arc;

use quarry_catalog::{Catalog, PartitionFilter, SqliteCatalog, keys};
use quarry_crawler::{
    CrawlConfig, CrawlReport, Crawler, Error, SchemaPolicy, SkipReason, TableAction,
};
use quarry_tests::{BACKENDS, Backend, Lake, sample_data};

fn catalog() -> Arc<SqliteCatalog> {
    Arc::new(SqliteCatalog::open_in_memory().expect("catalog"))
}

async fn crawl(catalog: &Arc<SqliteCatalog>, lake: &Lake) -> CrawlReport {
    crawl_with(catalog, lake, CrawlConfig::new("demo"))
        .await
        .unwrap_or_else(|e| panic!("{:?}: crawl failed: {e}", lake.backend))
}

async fn crawl_with(
    catalog: &Arc<SqliteCatalog>,
    lake: &Lake,
    config: CrawlConfig,
) -> quarry_crawler::Result<CrawlReport> {
    Crawler::new(catalog.clone(), config)
        .crawl(&lake.location)
        .await
}

/// (table, [(column, type)], [(key, type)], sorted partition values)
type Golden = (
    &'static str,
    Vec<(&'static str, &'static str)>,
    Vec<(&'static str, &'static str)>,
    Vec<Vec<Option<&'static str>>>,
);

fn golden() -> Vec<Golden> {
    vec![
        (
            "events",
            vec![
                ("event_id", "bigint"),
                ("kind", "string"),
                ("user", "struct<id:bigint,name:string,vip:boolean>"),
                ("tags", "array<string>"),
                ("amount", "double"),
                ("referrer", "string"),
            ],
            vec![("dt", "date")],
            vec![vec![Some("2024-01-01")], vec![Some("2024-01-02")]],
        ),
        (
            "logs",
            vec![
                ("col0", "timestamp"),
                ("col1", "string"),
                ("col2", "bigint"),
                ("col3", "string"),
            ],
            vec![
                ("partition_0", "int"),
                ("partition_1", "int"),
                ("partition_2", "int"),
            ],
            vec![
                vec![Some("2024"), Some("01"), Some("15")],
                vec![Some("2024"), Some("01"), Some("16")],
                vec![Some("2024"), Some("02"), Some("01")],
            ],
        ),
        (
            "metrics",
            vec![
                ("id", "bigint"),
                ("host", "string"),
                ("value", "double"),
                ("region", "string"),
            ],
            vec![("year", "int"), ("month", "int")],
            vec![vec![Some("2024"), Some("1")], vec![Some("2024"), Some("2")]],
        ),
        (
            "sales",
            vec![
                ("order_id", "bigint"),
                ("customer", "string"),
                ("note", "string"),
                ("amount", "double"),
                ("sold_on", "date"),
            ],
            vec![("region", "string")],
            vec![vec![None], vec![Some("eu west")], vec![Some("us-east")]],
        ),
    ]
}

async fn assert_golden(catalog: &SqliteCatalog, lake: &Lake) {
    let tables = catalog.list_tables("demo").await.expect("tables");
    let names: Vec<&str> = tables.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        ["events", "logs", "metrics", "sales"],
        "{:?}",
        lake.backend
    );
    for (name, columns, pkeys, values) in golden() {
        let t = tables.iter().find(|t| t.name == name).expect("table");
        let got: Vec<(&str, &str)> = t
            .storage
            .columns
            .iter()
            .map(|c| (c.name.as_str(), c.data_type.as_str()))
            .collect();
        assert_eq!(got, columns, "{name} columns on {:?}", lake.backend);
        let got: Vec<(&str, &str)> = t
            .partition_keys
            .iter()
            .map(|c| (c.name.as_str(), c.data_type.as_str()))
            .collect();
        assert_eq!(got, pkeys, "{name} partition keys");
        assert_eq!(t.storage.location, lake.table_url(name));
        let mut parts = catalog
            .get_partitions("demo", name, &PartitionFilter::all())
            .await
            .expect("partitions");
        parts.sort_by(|a, b| a.values.cmp(&b.values));
        let got: Vec<Vec<Option<&str>>> = parts
            .iter()
            .map(|p| p.values.iter().map(|v| v.as_deref()).collect())
            .collect();
        assert_eq!(got, values, "{name} partitions");
        for p in &parts {
            assert!(
                p.location.starts_with(&lake.table_url(name)),
                "{}",
                p.location
            );
            assert!(p.stat(keys::OBJECT_COUNT).is_some_and(|n| n >= 1));
        }
        assert_eq!(t.stat(keys::RECORD_COUNT), Some(5), "{name} rows");
    }
    let sales = tables.iter().find(|t| t.name == "sales").expect("sales");
    assert_eq!(sales.parameters[keys::SKIP_HEADER], "1");
    // Quoted fields: OpenCSVSerde, as Glue's crawler writes it, so Athena honours the quotes.
    assert_eq!(
        sales.storage.serde_info.serialization_library,
        "org.apache.hadoop.hive.serde2.OpenCSVSerde"
    );
    assert_eq!(sales.storage.serde_info.parameters["separatorChar"], ",");
    assert_eq!(sales.storage.serde_info.parameters["quoteChar"], "\"");
    assert_eq!(sales.parameters["areColumnsQuoted"], "true");
    // The bzip2 partition is catalogued, not dropped for its extension.
    let us = catalog
        .get_partitions(
            "demo",
            "sales",
            &PartitionFilter::all().eq("region", "us-east"),
        )
        .await
        .expect("partition");
    assert_eq!(us[0].parameters[keys::COMPRESSION_TYPE], "bzip2");
    let logs = tables.iter().find(|t| t.name == "logs").expect("logs");
    assert_eq!(logs.storage.serde_info.parameters["field.delim"], "\t");
    assert_eq!(
        logs.storage.serde_info.serialization_library,
        "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe"
    );
    assert!(!logs.parameters.contains_key(keys::SKIP_HEADER));
    let events = tables.iter().find(|t| t.name == "events").expect("events");
    assert_eq!(events.parameters[keys::COMPRESSION_TYPE], "gzip");
    assert_eq!(events.parameters[keys::CLASSIFICATION], "json");
}

#[tokio::test]
async fn crawling_the_sample_lake_yields_the_golden_catalog() {
    for backend in BACKENDS {
        let lake = Lake::sample(backend).await;
        let catalog = catalog();
        let report = crawl(&catalog, &lake).await;
        assert_golden(&catalog, &lake).await;
        assert_eq!(report.tables_with(TableAction::Created), 4);
        assert_eq!(report.partitions_added(), 10);
        assert_eq!(report.skipped_for(SkipReason::Hidden), 4, "{report}");
        assert_eq!(report.skipped_for(SkipReason::Empty), 1, "{report}");
        assert_eq!(report.skipped_for(SkipReason::Unreadable), 0, "{report}");
        assert!(report.catalog_written);
        assert!(report.tables.iter().all(|t| !t.decision.is_empty()));
    }
}

#[tokio::test]
async fn a_second_crawl_without_changes_writes_nothing() {
    for backend in BACKENDS {
        let lake = Lake::sample(backend).await;
        let catalog = catalog();
        crawl(&catalog, &lake).await;
        let before = catalog.list_tables("demo").await.expect("tables");
        let report = crawl(&catalog, &lake).await;
        assert!(!report.catalog_written, "{report}");
        assert_eq!(report.objects_inspected, 0);
        assert_eq!(report.objects_unchanged, 10);
        assert!(report.tables.is_empty());
        assert_eq!(catalog.list_tables("demo").await.expect("tables"), before);
    }
}

#[tokio::test]
async fn a_new_folder_on_a_recrawl_becomes_a_table_beside_the_others() {
    for backend in BACKENDS {
        let lake = Lake::sample(backend).await;
        let catalog = catalog();
        crawl(&catalog, &lake).await;
        lake.put(
            "shipments/month=1/part-0.csv",
            b"id,status\n1,F\n2,O\n".to_vec(),
        )
        .await;
        let report = crawl(&catalog, &lake).await;
        assert_eq!(report.tables.len(), 1, "{report}");
        let t = &report.tables[0];
        assert_eq!(
            (t.table.as_str(), t.action),
            ("demo.shipments", TableAction::Created),
            "{backend:?}: {report}"
        );
        assert_eq!(t.location, lake.table_url("shipments"));
        assert_eq!(t.partitions_added, ["month=1"]);
    }
}

#[tokio::test]
async fn adding_a_partition_then_recrawling_adds_exactly_it() {
    for backend in BACKENDS {
        let lake = Lake::sample(backend).await;
        let catalog = catalog();
        crawl(&catalog, &lake).await;
        lake.put(
            "sales/region=apac/part-0.csv",
            b"order_id,customer,note,amount,sold_on\n6,Fay,new,3.50,2024-01-08\n".to_vec(),
        )
        .await;
        let report = crawl(&catalog, &lake).await;
        assert_eq!(report.objects_inspected, 1, "{report}");
        assert_eq!(report.tables.len(), 1);
        let t = &report.tables[0];
        assert_eq!(
            (t.table.as_str(), t.action),
            ("demo.sales", TableAction::Updated)
        );
        assert_eq!(t.partitions_added, ["region=apac"]);
        assert!(t.columns_added.is_empty() && t.columns_widened.is_empty());
        assert_eq!(
            catalog
                .count_partitions("demo", "sales")
                .await
                .expect("count"),
            4
        );
        let sales = catalog
            .get_table("demo", "sales")
            .await
            .expect("get")
            .expect("sales");
        assert_eq!(sales.stat(keys::OBJECT_COUNT), Some(4));
        assert_eq!(sales.stat(keys::RECORD_COUNT), Some(6));
        for other in ["events", "logs", "metrics"] {
            assert_eq!(
                catalog
                    .get_table("demo", other)
                    .await
                    .expect("get")
                    .expect("t")
                    .version,
                1,
                "{other} was rewritten"
            );
        }
    }
}

const NEW_EVENTS: &[u8] = b"{\"event_id\": 6.5, \"kind\": \"view\", \"coupon\": \"X1\"}\n";

#[tokio::test]
async fn schema_changes_follow_the_policy() {
    for backend in BACKENDS {
        let lake = Lake::sample(backend).await;
        let catalog = catalog();
        crawl(&catalog, &lake).await;
        lake.put("events/dt=2024-01-04/part-0.json", NEW_EVENTS.to_vec())
            .await;
        let before = catalog.get_table("demo", "events").await.expect("get");

        let mut fail = CrawlConfig::new("demo");
        fail.schema_policy = SchemaPolicy::Fail;
        let err = crawl_with(&catalog, &lake, fail)
            .await
            .expect_err("policy fail");
        assert!(matches!(err, Error::SchemaChanged { .. }), "{err}");
        assert!(err.to_string().contains("coupon"), "{err}");
        assert_eq!(
            catalog.get_table("demo", "events").await.expect("get"),
            before
        );

        let mut log = CrawlConfig::new("demo");
        log.schema_policy = SchemaPolicy::Log;
        let lake2 = Lake::sample(backend).await;
        let catalog2 = catalog_with_crawl(&lake2).await;
        lake2
            .put("events/dt=2024-01-04/part-0.json", NEW_EVENTS.to_vec())
            .await;
        let report = crawl_with(&catalog2, &lake2, log).await.expect("log crawl");
        assert_eq!(report.tables[0].changes_not_applied.len(), 2, "{report}");
        let events = catalog2
            .get_table("demo", "events")
            .await
            .expect("get")
            .expect("events");
        assert_eq!(events.storage.columns.len(), 6);
        assert_eq!(report.tables[0].partitions_added, ["dt=2024-01-04"]);

        let report = crawl(&catalog, &lake).await;
        let t = &report.tables[0];
        assert_eq!(t.columns_added, ["coupon"], "{report}");
        assert_eq!(t.columns_widened.len(), 1);
        assert_eq!(
            (
                t.columns_widened[0].column.as_str(),
                t.columns_widened[0].from.as_str(),
                t.columns_widened[0].to.as_str()
            ),
            ("event_id", "bigint", "double")
        );
        let events = catalog
            .get_table("demo", "events")
            .await
            .expect("get")
            .expect("events");
        assert_eq!(
            events.storage.columns.last().map(|c| c.name.as_str()),
            Some("coupon")
        );
    }
}

async fn catalog_with_crawl(lake: &Lake) -> Arc<SqliteCatalog> {
    let c = catalog();
    crawl(&c, lake).await;
    c
}

fn truncated_parquet() -> Vec<u8> {
    let bytes = std::fs::read(sample_data().join("metrics/year=2024/month=1/part-0.parquet"))
        .expect("sample parquet");
    bytes[..bytes.len() / 2].to_vec()
}

#[tokio::test]
async fn corrupt_files_are_reported_and_strict_writes_nothing() {
    for backend in BACKENDS {
        let lake = Lake::sample(backend).await;
        lake.put(
            "metrics/year=2024/month=3/part-0.parquet",
            truncated_parquet(),
        )
        .await;
        lake.put(
            "sales/region=eu%20west/broken.csv.gz",
            b"\x1f\x8b\x08\x00garbage".to_vec(),
        )
        .await;
        let catalog = catalog();
        let report = crawl(&catalog, &lake).await;
        let bad: Vec<_> = report
            .skipped
            .iter()
            .filter(|s| s.reason == SkipReason::Unreadable)
            .collect();
        assert_eq!(bad.len(), 2, "{report}");
        assert!(
            bad[0].url.ends_with("month=3/part-0.parquet"),
            "{}",
            bad[0].url
        );
        assert!(
            bad[0].detail.contains("not a valid Parquet file"),
            "{}",
            bad[0].detail
        );
        assert!(bad[1].url.ends_with("broken.csv.gz"));
        assert!(bad[1].detail.contains("gzip"), "{}", bad[1].detail);
        // The rest of the lake is catalogued as usual.
        assert_golden(&catalog, &lake).await;

        let strict_catalog = self::catalog();
        let mut strict = CrawlConfig::new("demo");
        strict.strict = true;
        let err = crawl_with(&strict_catalog, &lake, strict)
            .await
            .expect_err("strict");
        assert!(matches!(err, Error::Strict { count: 2, .. }), "{err}");
        assert!(err.to_string().contains("part-0.parquet"), "{err}");
        assert!(
            strict_catalog
                .list_databases()
                .await
                .expect("dbs")
                .is_empty()
        );
    }
}

#[tokio::test]
async fn exclusions_and_misplaced_files_are_reported() {
    for backend in BACKENDS {
        let lake = Lake::sample(backend).await;
        let catalog = catalog();
        let mut config = CrawlConfig::new("demo");
        config.exclude = vec!["logs/**".into()];
        let report = crawl_with(&catalog, &lake, config.clone())
            .await
            .expect("crawl");
        assert_eq!(report.skipped_for(SkipReason::Excluded), 3, "{report}");
        assert!(
            catalog
                .get_table("demo", "logs")
                .await
                .expect("get")
                .is_none()
        );

        lake.put(
            "sales/loose.csv",
            b"order_id,customer,note,amount,sold_on\n9,Gus,x,1.0,2024-01-09\n".to_vec(),
        )
        .await;
        let report = crawl_with(&catalog, &lake, config).await.expect("crawl");
        let misfit = report
            .skipped
            .iter()
            .find(|s| s.reason == SkipReason::Inconsistent)
            .expect("the loose file is reported");
        assert!(misfit.url.ends_with("sales/loose.csv"));
        assert!(misfit.detail.contains("demo.sales"), "{}", misfit.detail);
        assert!(misfit.detail.contains("partition key"), "{}", misfit.detail);
    }
}

#[tokio::test]
async fn concurrent_crawls_into_one_catalog_file_lose_no_update() {
    for backend in BACKENDS {
        let lake = Lake::sample(backend).await;
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("catalog.db");
        let a = Arc::new(SqliteCatalog::open(&path).expect("open"));
        let b = Arc::new(SqliteCatalog::open(&path).expect("open"));
        let (ra, rb) = tokio::join!(crawl(&a, &lake), crawl(&b, &lake));
        assert!(ra.catalog_written || rb.catalog_written);
        assert_golden(&a, &lake).await;
        // Whichever crawl lost the race re-planned on top of the winner: nothing doubled.
        for t in a.list_tables("demo").await.expect("tables") {
            let objects = a
                .get_partitions("demo", &t.name, &PartitionFilter::all())
                .await
                .expect("parts")
                .iter()
                .map(|p| p.stat(keys::OBJECT_COUNT).unwrap_or(0))
                .sum::<u64>();
            assert_eq!(t.stat(keys::OBJECT_COUNT), Some(objects), "{}", t.name);
        }
    }
}

#[tokio::test]
async fn s3_and_local_crawls_agree() {
    let local = Lake::sample(Backend::Local).await;
    let s3 = Lake::sample(Backend::S3).await;
    let (cl, cs) = (catalog(), catalog());
    crawl(&cl, &local).await;
    crawl(&cs, &s3).await;
    let strip = |ts: Vec<quarry_catalog::Table>, root: &str| {
        ts.into_iter()
            .map(|t| {
                (
                    t.name,
                    t.storage.columns,
                    t.partition_keys,
                    t.storage.location.replace(root, ""),
                    t.parameters.get(keys::SIZE_KEY).cloned(),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        strip(
            cl.list_tables("demo").await.expect("l"),
            &local.location.root_url()
        ),
        strip(
            cs.list_tables("demo").await.expect("s"),
            &s3.location.root_url()
        )
    );
}

#[tokio::test]
async fn crawling_only_event_folders_adds_their_partitions_and_removes_nothing() {
    for backend in BACKENDS {
        let lake = Lake::sample(backend).await;
        let catalog = catalog();
        crawl(&catalog, &lake).await;
        lake.put(
            "sales/region=apac/part-0.csv",
            b"order_id,customer,note,amount,sold_on\n9,zed,,1.5,2024-03-01\n".to_vec(),
        )
        .await;
        let folder = lake
            .location
            .prefix
            .clone()
            .join("sales")
            .join("region=apac");
        let report = Crawler::new(catalog.clone(), CrawlConfig::new("demo"))
            .crawl_folders(&lake.location, &[folder])
            .await
            .expect("scoped crawl");
        assert_eq!(report.objects_listed, 1, "{report}");
        assert_eq!(report.partitions_added(), 1, "{report}");
        assert!(report.removed.is_empty(), "{report}");
        let sales = catalog
            .get_table("demo", "sales")
            .await
            .expect("get")
            .expect("sales");
        assert_eq!(sales.stat(keys::RECORD_COUNT), Some(6), "{backend:?}");
        assert_eq!(
            catalog
                .count_partitions("demo", "events")
                .await
                .expect("count"),
            2,
            "other tables untouched"
        );
        // A folder outside the target is refused, naming it.
        let outside = object_store::path::Path::from("elsewhere");
        let err = Crawler::new(catalog.clone(), CrawlConfig::new("demo"))
            .crawl_folders(&lake.location, &[outside])
            .await;
        if !lake.location.prefix.as_ref().is_empty() {
            let e = err.expect_err("outside the target");
            assert!(e.to_string().contains("elsewhere"), "{e}");
        }
    }
}
