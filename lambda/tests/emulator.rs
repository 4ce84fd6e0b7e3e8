//! End to end under the real Lambda tooling: `cargo lambda watch` serves the Lambda runtime API,
//! the four function binaries this test build made run against it as they would in AWS, and
//! `cargo lambda invoke` sends them the sample events. Storage and catalog are the S3 and Glue
//! APIs moto_server serves (and, for jobs, also a local folder with the embedded catalog).
//! Crawl -> query -> transform a new object -> query sees it; a bookmarked job on a schedule's
//! events inserts each object once.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use quarry_tests::{BACKENDS, Backend, Lake, s3, unique_name};
use serde_json::{Value, json};

mod common;
use common::{event, object_created};

/// Kills the processes it owns when the test ends, however it ends.
struct Processes(Vec<Child>);

impl Drop for Processes {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn cargo_lambda() -> Command {
    let mut c = Command::new("cargo");
    c.arg("lambda");
    c
}

fn wait_for_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not listen on {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

struct Emulator {
    port: u16,
    dir: tempfile::TempDir,
    _procs: Processes,
}

impl Emulator {
    /// `cargo lambda invoke FUNCTION --data-file EVENT`.
    fn run_invoke(&self, function: &str, event: &Value) -> std::process::Output {
        let file: PathBuf = self
            .dir
            .path()
            .join(format!("{}.json", unique_name("event")));
        std::fs::write(&file, event.to_string()).expect("write event");
        cargo_lambda()
            .args(["invoke", function, "--invoke-port"])
            .arg(self.port.to_string())
            .arg("--data-file")
            .arg(&file)
            .output()
            .expect("cargo lambda invoke")
    }

    /// `cargo lambda invoke FUNCTION --data-file EVENT`, parsed.
    fn invoke(&self, function: &str, event: &Value) -> Value {
        let out = self.run_invoke(function, event);
        assert!(
            out.status.success(),
            "{function} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{function} answered non-JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// The error report of an invocation that must fail.
    fn invoke_error(&self, function: &str, event: &Value) -> String {
        let out = self.run_invoke(function, event);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.status.success(), "{function} succeeded: {text}");
        text
    }
}

fn start(env: &[(String, String)]) -> Emulator {
    start_functions(
        env,
        &[
            ("quarry-query", env!("CARGO_BIN_EXE_quarry-query")),
            ("quarry-crawl", env!("CARGO_BIN_EXE_quarry-crawl")),
            ("quarry-transform", env!("CARGO_BIN_EXE_quarry-transform")),
            ("quarry-job", env!("CARGO_BIN_EXE_quarry-job")),
        ],
    )
}

/// The emulator with `functions` (name, binary) running against it.
fn start_functions(env: &[(String, String)], functions: &[(&str, &str)]) -> Emulator {
    start_functions_on(free_port(), env, functions)
}

/// [`start_functions`] on a given port (for functions that must know it beforehand).
fn start_functions_on(port: u16, env: &[(String, String)], functions: &[(&str, &str)]) -> Emulator {
    let with: Vec<Function> = functions.iter().map(|&(n, e)| (n, e, Vec::new())).collect();
    start_with(port, env, &with)
}

/// A function to run under the emulator: name, binary, its own extra environment.
type Function<'a> = (&'a str, &'a str, Vec<(String, String)>);

/// The emulator with `functions` running against it.
fn start_with(port: u16, env: &[(String, String)], functions: &[Function]) -> Emulator {
    let version = cargo_lambda().arg("--version").output();
    assert!(
        version.is_ok_and(|o| o.status.success()),
        "cargo-lambda is missing; install it with: pip install cargo-lambda"
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let mut procs = Processes(Vec::new());
    procs.0.push(
        cargo_lambda()
            .args(["watch", "--only-lambda-apis", "--ignore-changes", "-P"])
            .arg(port.to_string())
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cargo lambda watch"),
    );
    wait_for_port(port, "cargo lambda watch");
    for (name, exe, own) in functions {
        let log = std::fs::File::create(dir.path().join(format!("{name}.log"))).expect("log");
        procs.0.push(
            Command::new(exe)
                .env_clear()
                .env("PATH", std::env::var("PATH").unwrap_or_default())
                .env(
                    "AWS_LAMBDA_RUNTIME_API",
                    format!("http://127.0.0.1:{port}/.rt/{name}"),
                )
                .env("AWS_LAMBDA_FUNCTION_NAME", name)
                .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
                .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")
                .envs(env.iter().cloned())
                .envs(own.iter().cloned())
                .stdout(log.try_clone().expect("log"))
                .stderr(log)
                .spawn()
                .expect("start function"),
        );
    }
    Emulator {
        port,
        dir,
        _procs: procs,
    }
}

#[tokio::test]
async fn crawl_query_transform_query_under_the_lambda_emulator() {
    let lake = Lake::sample(quarry_tests::Backend::S3).await;
    let server = s3();
    let bucket = lake.bucket().expect("an S3 lake");
    let state = format!("s3://{}/state/", server.bucket("state"));
    let results = format!("s3://{}/results/", server.bucket("results"));
    let lake_db = unique_name("emu_lake");
    let curated_db = unique_name("emu_curated");
    let mut env: Vec<(String, String)> = server
        .env()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    env.extend([
        ("QUARRY_CATALOG".into(), "glue".into()),
        ("QUARRY_STATE_LOCATION".into(), state),
        ("QUARRY_RESULTS_LOCATION".into(), results),
        (
            "QUARRY_TRANSFORM".into(),
            json!({
                "target": format!("s3://{bucket}/curated/"),
                "database": curated_db,
                "table": "events",
                "sql": "SELECT event_id, kind, CAST(CAST(ts AS TIMESTAMP) AS DATE) AS dt FROM input",
                "partition_by": ["dt"],
                "sources": [format!("s3://{bucket}/raw/")]
            })
            .to_string(),
        ),
    ]);
    let emu = start(&env);

    // Crawl the lake into Glue.
    let report = emu.invoke(
        "quarry-crawl",
        &json!({"target": lake.url, "database": lake_db}),
    );
    assert_eq!(report["reports"][0]["catalog_written"], true, "{report}");

    // Query it.
    let mut q = event("query.json");
    q["database"] = json!(lake_db);
    let r = emu.invoke("quarry-query", &q);
    assert_eq!(r["state"], "SUCCEEDED", "{r}");
    assert_eq!(r["row_count"], 3, "{r}");
    assert!(
        r["result_location"]["csv"]
            .as_str()
            .is_some_and(|u| u.starts_with("s3://")),
        "{r}"
    );

    // A raw object arrives; the transform function turns it into a new partition.
    let raw = lake.location.store.clone();
    let key =
        object_store::path::Path::parse("raw/events/2026/11/23/events-0001.json").expect("key");
    let body = "{\"event_id\":1,\"kind\":\"click\",\"ts\":\"2026-11-23T10:00:00Z\"}\n\
                {\"event_id\":2,\"kind\":\"view\",\"ts\":\"2026-11-23T11:00:00Z\"}\n";
    // The lake's store is rooted at the bucket; write outside the lake prefix.
    object_store::ObjectStoreExt::put(raw.as_ref(), &key, body.as_bytes().to_vec().into())
        .await
        .expect("put raw");
    let s3_event = object_created(&bucket, "raw/events/2026/11/23/events-0001.json");
    let t = emu.invoke("quarry-transform", &s3_event);
    assert_eq!(t["objects"][0]["rows"], 2, "{t}");
    assert_eq!(t["catalog"]["catalog_written"], true, "{t}");

    // The query function sees the new table and partition.
    let r = emu.invoke(
        "quarry-query",
        &json!({"sql": "SELECT dt, count(*) AS n FROM events GROUP BY dt", "database": curated_db}),
    );
    assert_eq!(r["state"], "SUCCEEDED", "{r}");
    assert_eq!(r["rows"], json!([{"dt": "2026-11-23", "n": 2}]), "{r}");

    // A bad event is a Lambda error, marked not retryable.
    let file = emu.dir.path().join("bad.json");
    std::fs::write(&file, "{\"hello\": 1}").expect("write");
    let out = cargo_lambda()
        .args(["invoke", "quarry-query", "--invoke-port"])
        .arg(emu.port.to_string())
        .arg("--data-file")
        .arg(&file)
        .output()
        .expect("invoke");
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("Quarry.Fatal.BadEvent"), "{text}");
}

/// Where one job scenario keeps its files: the embedded catalog or the Glue job store, the jobs
/// folder, and the functions' temporary directory (`TMPDIR`, Lambda's `/tmp`), kept apart so
/// that the store is not in it.
struct JobFolders {
    root: tempfile::TempDir,
}

impl JobFolders {
    fn new() -> Self {
        let root = tempfile::tempdir().expect("temp dir");
        for d in ["jobs", "tmp", "store"] {
            std::fs::create_dir_all(root.path().join(d)).expect("create dir");
        }
        Self { root }
    }

    fn path(&self, rel: &str) -> String {
        self.root.path().join(rel).to_string_lossy().into_owned()
    }

    fn write_job(&self, name: &str, toml: &str) {
        std::fs::write(
            self.root.path().join("jobs").join(format!("{name}.toml")),
            toml,
        )
        .expect("write job");
    }
}

/// Whether an error report mentions `needle`, however `cargo lambda` wrapped its lines.
fn mentions(report: &str, needle: &str) -> bool {
    let squash = |s: &str| -> String {
        s.chars()
            .filter(|c| !c.is_whitespace() && *c != '│')
            .collect()
    };
    squash(report).contains(&squash(needle))
}

/// A query through the query function; its rows.
fn rows(emu: &Emulator, sql: &str) -> Value {
    let r = emu.invoke("quarry-query", &json!({ "sql": sql }));
    assert_eq!(r["state"], "SUCCEEDED", "{sql}: {r}");
    r["rows"].clone()
}

#[tokio::test]
async fn a_bookmarked_job_on_a_schedule_under_the_lambda_emulator() {
    for backend in BACKENDS {
        let lake = Lake::empty(backend).await;
        lake.put(
            "sales/part-0.csv",
            b"order_id,amount,region\n1,10.5,eu\n2,20.0,us\n3,30.25,eu\n".to_vec(),
        )
        .await;
        // A second table in another format, so that the crawler sees two tables, not partitions.
        lake.put(
            "regions/regions.json",
            b"{\"code\":\"eu\",\"name\":\"Europe\"}\n".to_vec(),
        )
        .await;
        let out = Lake::empty(backend).await;
        let folders = JobFolders::new();
        let (raw, curated) = match backend {
            Backend::Local => ("raw".to_string(), "curated".to_string()),
            // Glue databases are shared by every test on the server.
            Backend::S3 => (unique_name("raw"), unique_name("curated")),
        };
        let mut env: Vec<(String, String)> = vec![
            ("QUARRY_JOBS".into(), folders.path("jobs")),
            ("TMPDIR".into(), folders.path("tmp")),
        ];
        match backend {
            Backend::Local => env.push(("QUARRY_CATALOG".into(), folders.path("catalog.db"))),
            Backend::S3 => {
                let server = s3();
                env.extend(server.env().into_iter().map(|(k, v)| (k.to_string(), v)));
                env.extend([
                    ("QUARRY_CATALOG".into(), "glue".into()),
                    (
                        "QUARRY_STATE_LOCATION".into(),
                        format!("s3://{}/state/", server.bucket("state")),
                    ),
                    ("QUARRY_JOB_STORE".into(), folders.path("store/jobs.db")),
                ]);
            }
        }
        let emu = start(&env);

        // The raw CSV table, and an empty Parquet table for the job to fill.
        let report = emu.invoke(
            "quarry-crawl",
            &json!({"target": lake.url, "database": raw}),
        );
        assert_eq!(report["reports"][0]["catalog_written"], true, "{report}");
        let tables = report["reports"][0]["tables"].to_string();
        assert!(tables.contains(&format!("{raw}.sales")), "{report}");
        rows(&emu, &format!("CREATE DATABASE IF NOT EXISTS {curated}"));
        rows(
            &emu,
            &format!(
                "CREATE EXTERNAL TABLE {curated}.sales (order_id bigint, amount double, region string) \
                 STORED AS PARQUET LOCATION '{}'",
                out.table_url("sales")
            ),
        );
        folders.write_job(
            "sales_to_parquet",
            &format!(
                "name = \"sales_to_parquet\"\nkind = \"sql\"\nschedule = \"cron(0 * * * ? *)\"\n\
                 database = \"{raw}\"\nbookmark = [\"{raw}.sales\"]\n\
                 sql = \"INSERT INTO {curated}.sales SELECT order_id, amount, region FROM {raw}.sales\"\n"
            ),
        );
        folders.write_job(
            "broken",
            &format!(
                "name = \"broken\"\nkind = \"sql\"\n\
                 sql = \"INSERT INTO {curated}.sales SELECT * FROM {raw}.missing\"\n"
            ),
        );

        // What an EventBridge Scheduler schedule with Input '{"job": ...}' delivers.
        let scheduler = json!({"job": "sales_to_parquet"});
        let run = emu.invoke("quarry-job", &scheduler);
        assert_eq!(run["state"], "SUCCEEDED", "{backend:?}: {run}");
        assert_eq!(run["rows"], 3, "{run}");
        assert_eq!(run["trigger"], "lambda", "{run}");
        assert!(run["bytes_written"].as_u64() > Some(0), "{run}");
        assert!(
            run["run_id"].as_str().is_some_and(|id| !id.is_empty()),
            "{run}"
        );

        // A rule's Scheduled Event, the job in its detail: nothing new, nothing inserted.
        let mut rule = event("crawl-schedule.json");
        rule["detail"] = json!({"job": "sales_to_parquet"});
        let run = emu.invoke("quarry-job", &rule);
        assert_eq!(run["state"], "SUCCEEDED", "{run}");
        assert_eq!(run["rows"], 0, "{run}");

        // A new object: the next run inserts exactly its rows.
        lake.put(
            "sales/part-1.csv",
            b"order_id,amount,region\n4,40.0,us\n5,50.5,eu\n".to_vec(),
        )
        .await;
        let run = emu.invoke("quarry-job", &scheduler);
        assert_eq!(run["state"], "SUCCEEDED", "{run}");
        assert_eq!(run["rows"], 2, "{run}");
        let total = format!(
            "SELECT count(*) AS n, count(DISTINCT order_id) AS ids, sum(amount) AS amount \
             FROM {curated}.sales"
        );
        assert_eq!(
            rows(&emu, &total),
            json!([{"n": 5, "ids": 5, "amount": 151.25}]),
            "{backend:?}"
        );

        // Unknown jobs and runs that fail are Lambda errors, with what to fix.
        let text = emu.invoke_error("quarry-job", &json!({"job": "nope"}));
        assert!(text.contains("Quarry.Fatal.UnknownJob"), "{text}");
        assert!(
            mentions(&text, "no job named 'nope'")
                && mentions(&text, &folders.path("jobs"))
                && mentions(&text, "(QUARRY_JOBS)")
                && mentions(&text, "its jobs are: broken, sales_to_parquet"),
            "{text}"
        );
        let text = emu.invoke_error("quarry-job", &json!({"hello": 1}));
        assert!(text.contains("Quarry.Fatal.BadEvent"), "{text}");
        let text = emu.invoke_error("quarry-job", &json!({"job": "broken"}));
        assert!(text.contains("Quarry.Fatal.JobFailed"), "{text}");
        assert!(
            mentions(&text, "job 'broken' run jr_") && mentions(&text, "missing"),
            "{text}"
        );

        // A manual run without the bookmark reads everything; the bookmark stays where it was.
        let manual = json!({"job": "sales_to_parquet", "no_bookmark": true});
        let run = emu.invoke("quarry-job", &manual);
        assert_eq!(run["rows"], 5, "{run}");
        let run = emu.invoke("quarry-job", &scheduler);
        assert_eq!(run["rows"], 0, "{run}");

        if backend == Backend::S3 {
            // Glue without QUARRY_JOB_STORE: the store would be in /tmp, lost on cold starts.
            // Bookmarked jobs are refused; a run without the bookmark is not.
            let ephemeral: Vec<(String, String)> = env
                .iter()
                .filter(|(k, _)| k != "QUARRY_JOB_STORE")
                .cloned()
                .collect();
            drop(emu);
            let emu = start(&ephemeral);
            let text = emu.invoke_error("quarry-job", &scheduler);
            assert!(text.contains("Quarry.Fatal.Configuration"), "{text}");
            assert!(
                mentions(&text, &folders.path("tmp/quarry-jobs.db"))
                    && mentions(&text, "set QUARRY_JOB_STORE to a file on an EFS mount")
                    && mentions(&text, "QUARRY_ALLOW_EPHEMERAL_BOOKMARKS=true"),
                "{text}"
            );
            let run = emu.invoke("quarry-job", &manual);
            assert_eq!(run["state"], "SUCCEEDED", "{run}");
        }
    }
}

/// A PostgreSQL connector deployed as a Lambda: the real tooling invokes it with a protocol
/// request, and Quarry's query function queries `"lambda:quarry-connector".schema.table` through
/// the Lambda API, including an answer too large to return inline (spilled to S3, encrypted).
#[tokio::test]
async fn a_connector_lambda_answers_the_protocol_and_the_query_function_reads_through_it() {
    let pg = quarry_tests::postgres();
    let schema = unique_name("emu_pg");
    // About 9 MB of rows: more than a Lambda answer may carry inline, so the connector spills.
    pg.exec(&format!(
        "CREATE SCHEMA {schema};
         CREATE TABLE {schema}.wide (id int PRIMARY KEY, note text);
         INSERT INTO {schema}.wide SELECT g, repeat(md5(g::text), 2) FROM generate_series(1, 120000) g;
         CREATE TABLE {schema}.small (id int, kind text);
         INSERT INTO {schema}.small VALUES (1, 'a'), (2, 'b'), (3, 'a');"
    ));
    let server = s3();
    let spill = server.bucket("spill");
    let catalog_dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let mut env: Vec<(String, String)> = server
        .env()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    env.extend([
        ("QUARRY_CONNECTOR".into(), "postgres".into()),
        ("QUARRY_CONNECTOR_URI".into(), pg.uri.clone()),
        ("QUARRY_SPILL_BUCKET".into(), spill.clone()),
        (
            "QUARRY_CATALOG".into(),
            catalog_dir.path().join("catalog.db").display().to_string(),
        ),
        // The query function invokes the connector through the emulator's Lambda API.
        (
            "AWS_ENDPOINT_URL_LAMBDA".into(),
            format!("http://127.0.0.1:{port}"),
        ),
    ]);
    // The same function binary as a DynamoDB and a Redis connector (Redis tables are declared
    // in the catalog both the connector and the query function open).
    let ddb_table = unique_name("emu_ddb");
    quarry_tests::dynamodb_table(
        &ddb_table,
        "name",
        &[
            json!({"name": "a", "n": 1}),
            json!({"name": "b", "n": 2}),
            json!({"name": "c", "n": 3}),
        ],
    )
    .await;
    let redis = quarry_tests::redis();
    let prefix = unique_name("emu_r");
    redis.cmd(&["HSET", &format!("{prefix}:1"), "name", "x", "score", "5"]);
    redis.cmd(&["HSET", &format!("{prefix}:2"), "name", "y", "score", "7"]);
    {
        use quarry_catalog::Catalog;
        let catalog = quarry_catalog::SqliteCatalog::open(catalog_dir.path().join("catalog.db"))
            .expect("catalog");
        let table = quarry_tests::redis_table(
            "cache",
            "scores",
            &[("name", "string"), ("score", "int")],
            &[
                ("redis-endpoint", format!("127.0.0.1:{}", redis.port)),
                ("redis-value-type", "hash".to_owned()),
                ("redis-key-prefix", format!("{prefix}:")),
            ],
        );
        catalog
            .commit(quarry_catalog::CatalogWrite {
                databases: vec![quarry_catalog::Database::new("cache")],
                tables: vec![quarry_catalog::TableWrite {
                    table,
                    expected_version: None,
                }],
                ..Default::default()
            })
            .await
            .expect("declare the redis table");
    }
    let connector = env!("CARGO_BIN_EXE_quarry-connector");
    let query = env!("CARGO_BIN_EXE_quarry-query");
    let emu = start_with(
        port,
        &env,
        &[
            ("quarry-connector", connector, Vec::new()),
            ("quarry-query", query, Vec::new()),
        ],
    );

    // The protocol, through `cargo lambda invoke`.
    let ping = json!({"@type": "PingRequest", "identity": {"id": "UNKNOWN", "principal": "UNKNOWN",
        "account": "123456789012", "arn": "arn:aws:iam::123456789012:user/a", "tags": {}, "groups": []},
        "catalogName": "lambda:quarry-connector", "queryId": "q-1"});
    let pong = emu.invoke("quarry-connector", &ping);
    assert_eq!(pong["@type"], "PingResponse", "{pong}");
    assert_eq!(pong["serDeVersion"], 4, "{pong}");
    assert_eq!(pong["sourceType"], "postgres", "{pong}");
    let tables = emu.invoke(
        "quarry-connector",
        &json!({"@type": "ListTablesRequest", "identity": ping["identity"], "queryId": "q-2",
                "catalogName": "lambda:quarry-connector", "schemaName": schema, "nextToken": null, "pageSize": 10}),
    );
    assert_eq!(
        tables["tables"].as_array().map(Vec::len),
        Some(2),
        "{tables}"
    );

    // SQL through the query function, which invokes the connector.
    let catalog = format!("\"lambda:quarry-connector\".{schema}");
    let r = emu.invoke(
        "quarry-query",
        &json!({"sql": format!("SELECT kind, count(*) AS n FROM {catalog}.small WHERE id >= 2 GROUP BY kind ORDER BY kind")}),
    );
    assert_eq!(r["state"], "SUCCEEDED", "{r}");
    assert_eq!(
        r["rows"],
        json!([{"kind": "a", "n": 1}, {"kind": "b", "n": 1}]),
        "{r}"
    );
    // Spilled: the answer did not fit inline, so it came back from S3, decrypted.
    let r = emu.invoke(
        "quarry-query",
        &json!({"sql": format!("SELECT count(*) AS n, count(DISTINCT note) AS d, max(id) AS m FROM {catalog}.wide")}),
    );
    assert_eq!(r["state"], "SUCCEEDED", "{r}");
    assert_eq!(
        r["rows"],
        json!([{"n": 120000, "d": 120000, "m": 120000}]),
        "{r}"
    );
    let spilled = server.location(&format!("s3://{spill}/"));
    let objects: Vec<_> = futures::TryStreamExt::try_collect::<Vec<_>>(
        object_store::ObjectStore::list(spilled.store.as_ref(), None),
    )
    .await
    .expect("list spill");
    assert!(
        !objects.is_empty(),
        "the connector spilled to s3://{spill}/"
    );

    // DynamoDB and Redis through the same function binary (the emulator serves the project's
    // binary names only, so each runs in an emulator of its own as `quarry-connector`).
    for (kind, sql, expected) in [
        (
            "dynamodb",
            format!(
                "SELECT sum(n) AS s, count(*) AS c FROM \"lambda:quarry-connector\".default.{ddb_table} WHERE name <> 'b'"
            ),
            json!([{"s": 4.0, "c": 2}]),
        ),
        (
            "redis",
            "SELECT name, score FROM \"lambda:quarry-connector\".cache.scores ORDER BY name"
                .to_owned(),
            json!([{"name": "x", "score": 5}, {"name": "y", "score": 7}]),
        ),
    ] {
        let port = free_port();
        let mut env = env.clone();
        env.retain(|(k, _)| k != "AWS_ENDPOINT_URL_LAMBDA");
        env.push((
            "AWS_ENDPOINT_URL_LAMBDA".into(),
            format!("http://127.0.0.1:{port}"),
        ));
        let own = vec![("QUARRY_CONNECTOR".to_owned(), kind.to_owned())];
        let emu = start_with(
            port,
            &env,
            &[
                ("quarry-connector", connector, own),
                ("quarry-query", query, Vec::new()),
            ],
        );
        let r = emu.invoke("quarry-query", &json!({ "sql": sql }));
        assert_eq!(r["state"], "SUCCEEDED", "{kind}: {r}");
        assert_eq!(r["rows"], expected, "{kind}: {r}");
    }

    // A connector error reaches the caller naming the catalog and what failed.
    let r = emu.invoke(
        "quarry-query",
        &json!({"sql": format!("SELECT * FROM {catalog}.missing")}),
    );
    assert_eq!(r["state"], "FAILED", "{r}");
    let error = r["error"].to_string();
    assert!(
        error.contains("lambda:quarry-connector") && error.contains("does not exist"),
        "{r}"
    );
}
