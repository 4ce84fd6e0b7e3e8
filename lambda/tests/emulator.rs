//! End to end under the real Lambda tooling: `cargo lambda watch` serves the Lambda runtime API,
//! the three function binaries this test build made run against it as they would in AWS, and
//! `cargo lambda invoke` sends them the sample events. Storage and catalog are the S3 and Glue
//! APIs moto_server serves. Crawl -> query -> transform a new object -> query sees it.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use quarry_tests::{Lake, s3, unique_name};
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
    /// `cargo lambda invoke FUNCTION --data-file EVENT`, parsed.
    fn invoke(&self, function: &str, event: &Value) -> Value {
        let file: PathBuf = self
            .dir
            .path()
            .join(format!("{}.json", unique_name("event")));
        std::fs::write(&file, event.to_string()).expect("write event");
        let out = cargo_lambda()
            .args(["invoke", function, "--invoke-port"])
            .arg(self.port.to_string())
            .arg("--data-file")
            .arg(&file)
            .output()
            .expect("cargo lambda invoke");
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
}

fn start(env: &[(String, String)]) -> Emulator {
    let version = cargo_lambda().arg("--version").output();
    assert!(
        version.is_ok_and(|o| o.status.success()),
        "cargo-lambda is missing; install it with: pip install cargo-lambda"
    );
    let port = free_port();
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
    for (name, exe) in [
        ("quarry-query", env!("CARGO_BIN_EXE_quarry-query")),
        ("quarry-crawl", env!("CARGO_BIN_EXE_quarry-crawl")),
        ("quarry-transform", env!("CARGO_BIN_EXE_quarry-transform")),
    ] {
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
