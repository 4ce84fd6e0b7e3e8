//! A query that selects one partition out of 100,000 catalogued `dt=/hr=` partitions (tiny CSV
//! files on the local filesystem): planning plus execution, end to end through the engine.
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

criterion_group!(benches, one_partition_of_100k);
criterion_main!(benches);
