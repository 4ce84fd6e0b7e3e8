//! The `quarry` binary as a user runs it, on a local folder and on S3 (moto_server), with the
//! AWS settings passed the standard way: environment variables.

use std::process::{Command, Output};

mod repl;

use quarry_tests::{BACKENDS, Backend, Lake, s3};

struct Quarry {
    catalog: tempfile::TempDir,
}

impl Quarry {
    fn new() -> Self {
        Self {
            catalog: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn run(&self, backend: Backend, args: &[&str]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_quarry"));
        cmd.args(args)
            .env("QUARRY_CATALOG", self.catalog.path().join("catalog.db"))
            .env_remove("AWS_ENDPOINT_URL");
        if backend == Backend::S3 {
            cmd.envs(s3().env());
        }
        cmd.output().expect("run quarry")
    }
}

fn stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "quarry failed: {}\n{}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[tokio::test]
async fn crawl_then_inspect_the_catalog() {
    for backend in BACKENDS {
        let lake = Lake::sample(backend).await;
        let q = Quarry::new();
        let report: serde_json::Value = serde_json::from_str(&stdout(
            &q.run(backend, &["crawl", &lake.url, "-d", "demo", "--json"]),
        ))
        .expect("JSON report");
        assert_eq!(
            report["tables"].as_array().map(Vec::len),
            Some(4),
            "{report}"
        );
        assert_eq!(report["catalog_written"], true);

        let tables: serde_json::Value = serde_json::from_str(&stdout(
            &q.run(backend, &["tables", "demo", "--format", "json"]),
        ))
        .expect("JSON tables");
        let names: Vec<&str> = tables
            .as_array()
            .expect("array")
            .iter()
            .filter_map(|t| t["name"].as_str())
            .collect();
        assert_eq!(names, ["events", "logs", "metrics", "sales"]);

        let text = stdout(&q.run(backend, &["describe", "demo.sales"]));
        assert!(
            text.contains("sold_on") && text.contains("partition key"),
            "{text}"
        );
        let parts = stdout(&q.run(backend, &["partitions", "demo.sales"]));
        assert!(
            parts.contains("eu west") && parts.contains("NULL"),
            "{parts}"
        );
        assert!(parts.contains("3 partition(s)"), "{parts}");

        let again = stdout(&q.run(backend, &["crawl", &lake.url, "-d", "demo"]));
        assert!(
            again.contains("Nothing changed; the catalog was not written."),
            "{again}"
        );
    }
}

#[test]
fn errors_name_the_problem_and_the_remedy() {
    let q = Quarry::new();
    let o = q.run(Backend::Local, &["crawl", "/no/such/folder", "-d", "x"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("/no/such/folder") && err.contains("check the path"),
        "{err}"
    );

    let o = q.run(Backend::Local, &["describe", "nope"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("DATABASE.TABLE"));

    let o = q.run(Backend::Local, &["tables", "missing_db"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("does not exist"));
}

#[test]
fn help_teaches_with_examples() {
    let q = Quarry::new();
    let top = stdout(&q.run(Backend::Local, &["--help"]));
    assert!(
        top.contains("quarry crawl sample-data --database demo"),
        "{top}"
    );
    let crawl = stdout(&q.run(Backend::Local, &["crawl", "--help"]));
    for needle in [
        "--exclude",
        "--strict",
        "--schema-change",
        "_SUCCESS",
        "AWS_ENDPOINT_URL",
    ] {
        assert!(crawl.contains(needle), "crawl --help lacks {needle}");
    }
}
