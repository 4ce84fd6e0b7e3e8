//! The handlers called directly with the sample events in `lambda/events/`, against a local
//! folder with the embedded catalog and against S3 + Glue served by moto_server.

use std::sync::Arc;

use quarry_catalog::{Catalog, PartitionFilter, SqliteCatalog};
use quarry_lambda::crawl::CrawlTarget;
use quarry_lambda::firehose::{FirehoseConfig, LineFormat};
use quarry_lambda::transform::TransformConfig;
use quarry_lambda::{FunctionError, Resources, Settings};
use quarry_query::{ObjectStores, OutputFormat, QueryRequest, render};
use quarry_tests::{BACKENDS, Backend, Lake, glue, s3, unique_name};
use serde_json::{Value, json};

mod common;
use common::{event, object_created, set};

struct Env {
    lake: Lake,
    database: String,
    resources: Resources,
}

async fn env(backend: Backend, settings: Settings) -> Env {
    let lake = Lake::sample(backend).await;
    let (catalog, stores): (Arc<dyn Catalog>, ObjectStores) = match backend {
        Backend::Local => (
            Arc::new(SqliteCatalog::open_in_memory().expect("catalog")),
            ObjectStores::new(),
        ),
        Backend::S3 => (
            Arc::new(glue().await),
            ObjectStores::new().with_s3_options(s3().options()),
        ),
    };
    Env {
        lake,
        database: unique_name("lambda"),
        resources: Resources::new(catalog, Arc::new(stores), settings),
    }
}

impl Env {
    async fn crawl(&self) -> Value {
        let mut e = event("crawl.json");
        set(&mut e, "/target", json!(self.lake.url));
        set(&mut e, "/database", json!(self.database));
        quarry_lambda::crawl::handle(&self.resources, e)
            .await
            .expect("crawl")
    }

    async fn csv(&self, sql: &str) -> String {
        let out = self
            .resources
            .engine
            .run(QueryRequest::new(sql).with_database(Some(self.database.clone())))
            .await;
        assert!(out.succeeded(), "{sql}: {:?}", out.record.error);
        render(&out.schema, &out.batches, OutputFormat::Csv).expect("csv")
    }
}

#[tokio::test]
async fn query_answers_direct_and_http_invocations() {
    for backend in BACKENDS {
        let results = tempfile::tempdir().expect("dir");
        let settings = Settings {
            inline_rows: 2,
            results_location: Some(match backend {
                Backend::Local => results.path().to_string_lossy().into_owned(),
                Backend::S3 => format!("s3://{}/results/", s3().bucket("results")),
            }),
            ..Default::default()
        };
        let env = env(backend, settings).await;
        let report = env.crawl().await;
        assert_eq!(report["reports"][0]["catalog_written"], true, "{report}");

        let mut e = event("query.json");
        set(&mut e, "/database", json!(env.database));
        let r = quarry_lambda::query::handle(&env.resources, e)
            .await
            .expect("query");
        assert_eq!(r["state"], "SUCCEEDED", "{r}");
        assert_eq!(r["row_count"], 3);
        assert_eq!(r["truncated"], true, "2 of 3 rows inline");
        assert_eq!(
            r["rows"],
            json!([
                {"region": "eu west", "orders": 2, "revenue": 19.5},
                {"region": "us-east", "orders": 2, "revenue": 108.25}
            ])
        );
        assert!(r["bytes_scanned"].as_u64().is_some_and(|b| b > 0), "{r}");
        assert_eq!(r["billed_bytes"], 10 * 1024 * 1024);
        let csv = r["result_location"]["csv"].as_str().expect("result file");
        assert!(csv.ends_with(&format!("{}.csv", r["query_id"].as_str().expect("id"))));

        // The same request through API Gateway (payload 2.0) or a function URL.
        let mut e = event("query-http-api.json");
        let body = json!({"sql": "SELECT count(*) AS n FROM sales WHERE region = 'us-east'", "database": env.database});
        set(&mut e, "/body", json!(body.to_string()));
        let r = quarry_lambda::query::handle(&env.resources, e)
            .await
            .expect("http");
        assert_eq!(r["statusCode"], 200, "{r}");
        let body: Value = serde_json::from_str(r["body"].as_str().expect("body")).expect("json");
        assert_eq!(body["rows"], json!([{"n": 2}]));

        // A failing statement is an answer (400 over HTTP, FAILED directly), not a crash.
        let mut e = event("query-http-api.json");
        set(
            &mut e,
            "/body",
            json!(json!({"sql": "SELECT nope FROM sales", "database": env.database}).to_string()),
        );
        let r = quarry_lambda::query::handle(&env.resources, e)
            .await
            .expect("http");
        assert_eq!(r["statusCode"], 400, "{r}");
        assert!(
            r["body"].as_str().is_some_and(|b| b.contains("nope")),
            "{r}"
        );
        let r = quarry_lambda::query::handle(
            &env.resources,
            json!({"sql": "SELECT * FROM sales", "database": env.database, "max_bytes_scanned": 10}),
        )
        .await
        .expect("limited");
        assert_eq!(r["state"], "CANCELLED", "{r}");
        assert_eq!(r["error_category"], "LIMIT_EXCEEDED", "{r}");
        assert_eq!(r["result_location"], Value::Null);

        let bad = quarry_lambda::query::handle(&env.resources, json!({"query": "SELECT 1"})).await;
        match bad {
            Err(e @ FunctionError::BadEvent(_)) => {
                assert!(!e.retryable());
                assert!(e.to_string().contains("\"sql\""), "{e}");
            }
            other => panic!("expected a bad-event error, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn crawl_runs_on_schedule_and_on_s3_events_for_only_the_new_folders() {
    let mut env = env(Backend::S3, Settings::default()).await;
    let target = CrawlTarget {
        target: env.lake.url.clone(),
        database: env.database.clone(),
        exclude: Vec::new(),
    };
    env.resources.settings.crawl_targets = vec![target];
    let r = quarry_lambda::crawl::handle(&env.resources, event("crawl-schedule.json"))
        .await
        .expect("scheduled crawl");
    assert_eq!(r["reports"][0]["catalog_written"], true, "{r}");

    // A new object in a new partition, announced by S3 (keys arrive URL-encoded).
    let key = "sales/region=ap south/part-0.csv";
    env.lake
        .put(
            key,
            b"order_id,customer,note,amount,sold_on\n42,kim,,3.5,2024-04-01\n".to_vec(),
        )
        .await;
    let bucket = env.lake.bucket().expect("an S3 lake");
    let mut e = object_created(&bucket, "lake/sales/region%3Dap+south/part-0.csv");
    let mut stray = e["Records"][0].clone();
    set(&mut stray, "/s3/object/key", json!("elsewhere/x.csv"));
    e["Records"].as_array_mut().expect("records").push(stray);
    let r = quarry_lambda::crawl::handle(&env.resources, e)
        .await
        .expect("event crawl");
    let report = &r["reports"][0];
    assert_eq!(report["objects_listed"], 1, "{r}");
    assert_eq!(
        r["ignored"],
        json!([format!("s3://{bucket}/elsewhere/x.csv")])
    );
    let parts = env
        .resources
        .catalog
        .get_partitions(
            &env.database,
            "sales",
            &PartitionFilter::all().eq("region", "ap south"),
        )
        .await
        .expect("partitions");
    assert_eq!(parts.len(), 1, "{r}");
    assert_eq!(
        env.csv("SELECT sum(amount) AS s FROM sales WHERE region = 'ap south'")
            .await,
        "s\n3.5\n"
    );

    let none = quarry_lambda::crawl::handle(&env.resources, json!({"hello": 1})).await;
    assert!(matches!(none, Err(FunctionError::BadEvent(_))), "{none:?}");
}

#[tokio::test]
async fn transform_writes_partitioned_parquet_registers_partitions_and_is_idempotent() {
    let settings = Settings::default();
    let mut env = env(Backend::S3, settings).await;
    let bucket = env.lake.bucket().expect("an S3 lake");
    env.resources.settings.transform = Some(TransformConfig {
        target: format!("s3://{bucket}/curated/"),
        database: env.database.clone(),
        table: "events".into(),
        sql: Some(
            "SELECT event_id, kind, \"user\"['id'] AS user_id, CAST(CAST(ts AS TIMESTAMP) AS DATE) AS dt FROM input"
                .into(),
        ),
        partition_by: vec!["dt".into()],
        sources: vec![format!("s3://{bucket}/raw/")],
    });
    let raw = "{\"event_id\":1,\"kind\":\"click\",\"user\":{\"id\":7},\"ts\":\"2026-11-22T23:59:00Z\"}\n\
               {\"event_id\":2,\"kind\":\"view\",\"user\":{\"id\":8},\"ts\":\"2026-11-23T00:01:00Z\"}\n\
               {\"event_id\":3,\"kind\":\"view\",\"user\":{\"id\":7},\"ts\":\"2026-11-23T08:00:00Z\"}\n";
    let store = s3().location(&format!("s3://{bucket}/")).store;
    let put = |key: &'static str, body: Vec<u8>| {
        let store = Arc::clone(&store);
        async move {
            object_store::ObjectStoreExt::put(
                store.as_ref(),
                &object_store::path::Path::from(key),
                body.into(),
            )
            .await
            .expect("put raw object");
        }
    };
    put(
        "raw/events/2026/11/23/events-0001.json",
        raw.as_bytes().to_vec(),
    )
    .await;
    let e = object_created(&bucket, "raw/events/2026/11/23/events-0001.json");
    let r = quarry_lambda::transform::handle(&env.resources, e.clone())
        .await
        .expect("transform");
    assert_eq!(r["objects"][0]["rows"], 3, "{r}");
    assert_eq!(
        r["objects"][0]["files"].as_array().map(Vec::len),
        Some(2),
        "{r}"
    );
    assert_eq!(r["catalog"]["catalog_written"], true, "{r}");
    let files: Vec<String> = r["objects"][0]["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| f["url"].as_str().expect("url").to_string())
        .collect();
    assert!(
        files[0].contains("/curated/events/dt=2026-11-22/events-"),
        "{files:?}"
    );
    assert!(files.iter().all(|f| f.ends_with(".parquet")));
    assert_eq!(
        env.csv("SELECT dt, count(*) AS n, sum(user_id) AS u FROM events GROUP BY dt ORDER BY dt")
            .await,
        "dt,n,u\n2026-11-22,1,7\n2026-11-23,2,15\n"
    );
    let table = env
        .resources
        .catalog
        .get_table(&env.database, "events")
        .await
        .expect("get")
        .expect("events");
    assert_eq!(table.parameters["classification"], "parquet");
    // zstd-compressed Parquet, as the issue asks.
    let (_, path) = quarry_query::stores::split_location(&files[0]).expect("url");
    let bytes = object_store::ObjectStoreExt::get(store.as_ref(), &path)
        .await
        .expect("get output")
        .bytes()
        .await
        .expect("bytes");
    let reader = parquet::file::reader::SerializedFileReader::new(bytes).expect("parquet");
    let meta = parquet::file::reader::FileReader::metadata(&reader);
    assert!(matches!(
        meta.row_group(0).column(0).compression(),
        parquet::basic::Compression::ZSTD(_)
    ));

    // The same event again (S3 delivers at least once): same files, same rows.
    let again = quarry_lambda::transform::handle(&env.resources, e.clone())
        .await
        .expect("retry");
    assert_eq!(again["objects"][0]["files"], r["objects"][0]["files"]);
    assert_eq!(env.csv("SELECT count(*) AS n FROM events").await, "n\n3\n");

    // A new object on a new day adds that partition.
    put(
        "raw/events/2026/11/24/events-0002.json",
        b"{\"event_id\":4,\"kind\":\"click\",\"user\":{\"id\":9},\"ts\":\"2026-11-24T10:00:00Z\"}\n".to_vec(),
    )
    .await;
    let e2 = object_created(&bucket, "raw/events/2026/11/24/events-0002.json");
    quarry_lambda::transform::handle(&env.resources, e2)
        .await
        .expect("second object");
    assert_eq!(
        env.resources
            .catalog
            .count_partitions(&env.database, "events")
            .await
            .expect("count"),
        3
    );

    // Bad data is reported per object and not retried; the event still succeeds.
    put(
        "raw/events/2026/11/25/broken.json",
        b"{\"event_id\": 5, \"kind\": \n".to_vec(),
    )
    .await;
    let bad = object_created(&bucket, "raw/events/2026/11/25/broken.json");
    let r = quarry_lambda::transform::handle(&env.resources, bad)
        .await
        .expect("reported");
    let err = r["objects"][0]["error"].as_str().expect("error");
    assert!(err.contains("broken.json"), "{err}");
}

#[tokio::test]
async fn firehose_records_come_back_ok_dropped_or_failed_with_their_ids() {
    let config = FirehoseConfig {
        sql: "SELECT event_id, \"user\"['id'] AS user_id, kind FROM records WHERE kind <> 'debug'"
            .into(),
        output: LineFormat::Json,
    };
    let settings = Settings {
        firehose: Some(config.clone()),
        ..Default::default()
    };
    let resources = Resources::new(
        Arc::new(SqliteCatalog::open_in_memory().expect("catalog")),
        Arc::new(ObjectStores::new()),
        settings,
    );
    let input = event("firehose.json");
    let r = quarry_lambda::transform::handle(&resources, input.clone())
        .await
        .expect("firehose");
    let records = r["records"].as_array().expect("records");
    assert_eq!(records.len(), 4);
    for (out, inp) in records.iter().zip(input["records"].as_array().expect("in")) {
        assert_eq!(out["recordId"], inp["recordId"]);
    }
    let results: Vec<&str> = records
        .iter()
        .map(|r| r["result"].as_str().expect("result"))
        .collect();
    assert_eq!(results, ["Ok", "Dropped", "ProcessingFailed", "Ok"]);
    let decode = |v: &Value| -> String {
        let data: aws_lambda_events::encodings::Base64Data =
            serde_json::from_value(v["data"].clone()).expect("base64");
        String::from_utf8(data.to_vec()).expect("utf8")
    };
    assert_eq!(
        decode(&records[0]),
        "{\"event_id\":1,\"user_id\":7,\"kind\":\"click\"}\n"
    );
    assert_eq!(
        decode(&records[2]),
        "not json {",
        "failed records keep their data"
    );

    let csv = FirehoseConfig {
        output: LineFormat::Csv,
        ..config
    };
    let event: aws_lambda_events::event::firehose::KinesisFirehoseEvent =
        serde_json::from_value(input).expect("event");
    let r = quarry_lambda::firehose::transform(&csv, event)
        .await
        .expect("csv");
    assert_eq!(&r.records[3].data[..], b"3,7,view\n");
}
