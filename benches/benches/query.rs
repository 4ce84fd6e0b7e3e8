//! A query that selects one partition out of 100,000 catalogued `dt=/hr=` partitions (tiny CSV
//! files on the local filesystem): planning plus execution, end to end through the engine.
//! Then the same hourly layout over five years (43,800 partitions) as a catalogued table and as
//! a table with Athena's partition projection, queried for one hour and for one week.
//!
//!     cargo bench -p quarry-benches --bench query

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use quarry_catalog::SqliteCatalog;
use quarry_crawler::{CrawlConfig, Crawler};
use quarry_lake::Location;
use quarry_query::{Engine, EngineConfig, ObjectStores, QueryRequest};

/// 100,000 under `cargo bench`; a small smoke run under `cargo test --benches`.
fn partitions() -> usize {
    if std::env::args().any(|a| a == "--bench") {
        100_000
    } else {
        2_000
    }
}

fn one_partition_of_100k(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let total = partitions();
    let lake = tempfile::tempdir().expect("temp dir");
    quarry_benches::write_many_partitions(lake.path(), total).expect("generate lake");
    let catalog = Arc::new(SqliteCatalog::open(lake.path().join("catalog.db")).expect("catalog"));
    let root = lake.path().join("events");
    let location = Location::parse(root.to_str().expect("utf-8")).expect("location");
    let report = rt
        .block_on(Crawler::new(catalog.clone(), CrawlConfig::new("bench")).crawl(&location))
        .expect("crawl");
    assert_eq!(report.partitions_added(), total);
    let engine = Engine::new(
        catalog.clone(),
        Arc::new(ObjectStores::new()),
        EngineConfig::default(),
    );
    let target = total / 2 + 321;
    let sql = format!(
        "SELECT count(*), sum(amount) FROM events WHERE dt = DATE '{}' AND hr = {}",
        quarry_benches::partition_date(target),
        target % 24
    );

    let mut group = c.benchmark_group("query_100k_partitions");
    group
        .sample_size(50)
        .measurement_time(Duration::from_secs(10));
    group.bench_function("select_one_partition", |b| {
        b.iter(|| {
            let out = rt
                .block_on(engine.run(QueryRequest::new(&sql).with_database(Some("bench".into()))));
            assert!(out.succeeded(), "{:?}", out.record.error);
            assert_eq!(out.scans[0].partitions_selected, 1);
            assert_eq!(out.scans[0].partitions_total, Some(total as u64));
            assert_eq!(out.batches[0].num_rows(), 1);
        })
    });
    group.finish();
}

/// 43,800 hourly partitions (five years) under `cargo bench`; a smoke run otherwise.
fn hours() -> usize {
    if std::env::args().any(|a| a == "--bench") {
        43_800
    } else {
        24 * 30
    }
}

fn projected_hour_of_five_years(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let total = hours();
    let lake = tempfile::tempdir().expect("temp dir");
    quarry_benches::write_many_partitions(lake.path(), total).expect("generate lake");
    let catalog = Arc::new(SqliteCatalog::open(lake.path().join("catalog.db")).expect("catalog"));
    let root = lake.path().join("events");
    let location = Location::parse(root.to_str().expect("utf-8")).expect("location");
    rt.block_on(Crawler::new(catalog.clone(), CrawlConfig::new("bench")).crawl(&location))
        .expect("crawl");
    let engine = Engine::new(
        catalog.clone(),
        Arc::new(ObjectStores::new()),
        EngineConfig::default(),
    );
    let run = |sql: &str| {
        let out =
            rt.block_on(engine.run(QueryRequest::new(sql).with_database(Some("bench".into()))));
        assert!(out.succeeded(), "{sql}: {:?}", out.record.error);
        out
    };
    let days = total / 24;
    run(&format!(
        "CREATE EXTERNAL TABLE bench.projected (id bigint, amount double) \
         PARTITIONED BY (dt date, hr int) \
         ROW FORMAT DELIMITED FIELDS TERMINATED BY ',' LOCATION '{}/' \
         TBLPROPERTIES ('skip.header.line.count'='1', 'projection.enabled'='true', \
         'projection.dt.type'='date', 'projection.dt.format'='yyyy-MM-dd', \
         'projection.dt.range'='2000-01-01,{}', 'projection.hr.type'='integer', \
         'projection.hr.range'='0,23', 'projection.hr.digits'='2')",
        location.root_url().trim_end_matches('/'),
        quarry_benches::partition_date(total - 1)
    ));
    let target = total / 2 + 321;
    let hour = |table: &str| {
        format!(
            "SELECT count(*), sum(amount) FROM {table} WHERE dt = DATE '{}' AND hr = {}",
            quarry_benches::partition_date(target),
            target % 24
        )
    };
    let week = format!(
        "SELECT count(*) FROM projected WHERE dt >= DATE '{}' AND dt < DATE '{}'",
        quarry_benches::partition_date(24 * (days / 2)),
        quarry_benches::partition_date(24 * (days / 2 + 7))
    );

    let mut group = c.benchmark_group("hourly_partitions_5_years");
    group
        .sample_size(30)
        .measurement_time(Duration::from_secs(8));
    group.bench_function("catalogued_one_hour", |b| {
        let sql = hour("events");
        b.iter(|| {
            let out = run(&sql);
            assert_eq!(out.scans[0].partitions_selected, 1);
            assert_eq!(out.scans[0].partitions_total, Some(total as u64));
        })
    });
    group.bench_function("projected_one_hour", |b| {
        let sql = hour("projected");
        b.iter(|| {
            let out = run(&sql);
            assert_eq!(out.scans[0].partitions_selected, 1);
            assert_eq!(out.scans[0].listed_prefixes.len(), 1);
            assert_eq!(out.scans[0].partitions_total, Some((days * 24) as u64));
            assert_eq!(out.scans[0].files, 1);
        })
    });
    group.bench_function("projected_one_hour_plan_only", |b| {
        let sql = format!("EXPLAIN {}", hour("projected"));
        b.iter(|| run(&sql))
    });
    group.bench_function("projected_one_week", |b| {
        b.iter(|| {
            let out = run(&week);
            assert_eq!(out.scans[0].listed_prefixes.len(), 168);
        })
    });
    group.finish();
}

criterion_group!(benches, one_partition_of_100k, projected_hour_of_five_years);
criterion_main!(benches);
