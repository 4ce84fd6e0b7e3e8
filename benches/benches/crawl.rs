//! Crawl a generated lake of 10,000 objects in 1,000 partitions on the local filesystem:
//! a full crawl into a fresh catalog, and a re-crawl that finds nothing new.
//!
//!     cargo bench -p quarry-benches --bench crawl

use std::sync::Arc;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use quarry_catalog::{Catalog, SqliteCatalog};
use quarry_crawler::{CrawlConfig, Crawler};
use quarry_lake::Location;

const PARTITIONS: usize = 1_000;
const FILES_PER_PARTITION: usize = 10;

fn crawl_benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let lake = tempfile::tempdir().expect("temp dir");
    quarry_benches::write_partitioned_csv_lake(lake.path(), PARTITIONS, FILES_PER_PARTITION)
        .expect("generate lake");
    let root = lake.path().join("events");
    let location = Location::parse(root.to_str().expect("utf-8 path")).expect("location");
    let work = tempfile::tempdir().expect("temp dir");

    let mut group = c.benchmark_group("crawl_10k_objects_1k_partitions");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(30));

    let mut n = 0;
    group.bench_function("full_crawl", |b| {
        b.iter_batched(
            || {
                n += 1;
                Arc::new(
                    SqliteCatalog::open(work.path().join(format!("full-{n}.db"))).expect("catalog"),
                )
            },
            |catalog| {
                rt.block_on(async {
                    let report = Crawler::new(catalog.clone(), CrawlConfig::new("bench"))
                        .crawl(&location)
                        .await
                        .expect("crawl");
                    assert_eq!(report.objects_inspected, PARTITIONS * FILES_PER_PARTITION);
                    assert_eq!(report.partitions_added(), PARTITIONS);
                    assert_eq!(
                        catalog
                            .count_partitions("bench", "events")
                            .await
                            .expect("count"),
                        PARTITIONS as u64
                    );
                })
            },
            BatchSize::PerIteration,
        )
    });

    let catalog = Arc::new(SqliteCatalog::open(work.path().join("recrawl.db")).expect("catalog"));
    let crawler = Crawler::new(catalog, CrawlConfig::new("bench"));
    rt.block_on(crawler.crawl(&location)).expect("first crawl");
    group.bench_function("recrawl_no_change", |b| {
        b.iter(|| {
            let report = rt.block_on(crawler.crawl(&location)).expect("crawl");
            assert!(!report.catalog_written);
            assert_eq!(report.objects_unchanged, PARTITIONS * FILES_PER_PARTITION);
        })
    });
    group.finish();
}

criterion_group!(benches, crawl_benches);
criterion_main!(benches);
