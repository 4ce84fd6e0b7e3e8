//! The `quarry` binary as a user runs it, on a local folder and on S3 (moto_server), with the
//! AWS settings passed the standard way: environment variables.

use std::process::{Command, Output};

mod crash;
mod federation;
mod jobs;
mod repl;
mod serve;

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

/// Tests that time `quarry` processes and kill them part-way take this lock, so that they do not
/// run beside each other: one's processes would slow the other's and move its kill points.
static TIMED: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn timed() -> std::sync::MutexGuard<'static, ()> {
    TIMED.lock().unwrap_or_else(|p| p.into_inner())
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

#[tokio::test]
async fn sql_one_shot_formats_stats_files_and_history() {
    for backend in BACKENDS {
        let lake = Lake::sample(backend).await;
        let q = Quarry::new();
        stdout(&q.run(backend, &["crawl", &lake.url, "-d", "demo"]));

        let csv = q.run(backend, &["sql", "-d", "demo", "--format", "csv", "--stats", "json", "-c",
            "SELECT region, count(*) AS n FROM sales GROUP BY region ORDER BY region NULLS LAST"]);
        assert_eq!(stdout(&csv), "region,n\neu west,2\nus-east,2\n,1\n");
        let stats: serde_json::Value = serde_json::from_str(
            String::from_utf8_lossy(&csv.stderr)
                .lines()
                .find(|l| l.starts_with('{'))
                .expect("stats line"),
        )
        .expect("JSON stats");
        for key in [
            "query_id",
            "state",
            "elapsed_ms",
            "rows",
            "bytes_scanned",
            "billed_bytes",
            "cost_usd",
        ] {
            assert!(stats.get(key).is_some(), "stats lack {key}: {stats}");
        }
        assert_eq!(stats["state"], "SUCCEEDED");
        assert_eq!(stats["rows"], 3);
        assert_eq!(stats["billed_bytes"], 10 << 20);
        // Microseconds agree with the whole milliseconds (each part truncated).
        let (ms, us) = (
            stats["elapsed_ms"].as_u64().expect("ms"),
            stats["elapsed_us"].as_u64().expect("us"),
        );
        assert!(us > 0 && ms <= us / 1000 && us / 1000 <= ms + 50, "{stats}");

        let json = stdout(&q.run(
            backend,
            &[
                "sql",
                "-d",
                "demo",
                "--format",
                "json",
                "-c",
                "SELECT order_id FROM sales WHERE region = 'eu west' ORDER BY order_id",
            ],
        ));
        assert_eq!(json.trim(), r#"[{"order_id":1},{"order_id":2}]"#);

        // -f runs statements in turn and stops at the first failure, exiting non-zero.
        let dir = tempfile::tempdir().expect("dir");
        let script = dir.path().join("q.sql");
        std::fs::write(
            &script,
            "SELECT 1 AS a;\nSELECT nope FROM sales;\nSELECT 3 AS c;\n",
        )
        .expect("write");
        let o = q.run(
            backend,
            &[
                "sql",
                "-d",
                "demo",
                "--format",
                "csv",
                "--stats",
                "json",
                "-f",
                script.to_str().expect("utf-8"),
            ],
        );
        assert!(!o.status.success());
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(
            err.lines().filter(|l| l.starts_with('{')).count(),
            2,
            "{err}"
        );
        assert!(err.contains("nope"), "{err}");
        assert!(!String::from_utf8_lossy(&o.stdout).contains("c\n3"));

        let o = q.run(
            backend,
            &[
                "sql",
                "-d",
                "demo",
                "--max-bytes-scanned",
                "100",
                "-c",
                "SELECT * FROM metrics",
            ],
        );
        assert!(!o.status.success());
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("limit of 100 bytes") && err.contains("CANCELLED"),
            "{err}"
        );

        let results = dir.path().join("results");
        let o = q.run(
            backend,
            &[
                "sql",
                "-d",
                "demo",
                "--output",
                results.to_str().expect("utf-8"),
                "-c",
                "SELECT count(*) AS n FROM logs",
            ],
        );
        stdout(&o);
        let files: Vec<String> = std::fs::read_dir(&results)
            .expect("results dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(files.len(), 2, "{files:?}");
        let csv_file = files
            .iter()
            .find(|f| f.ends_with(".csv"))
            .expect("csv file");
        assert_eq!(
            std::fs::read_to_string(results.join(csv_file)).expect("read"),
            "n\n5\n"
        );

        let history: serde_json::Value =
            serde_json::from_str(&stdout(&q.run(backend, &["history", "--format", "json"])))
                .expect("history");
        let states: Vec<&str> = history
            .as_array()
            .expect("array")
            .iter()
            .filter_map(|r| r["state"].as_str())
            .collect();
        assert_eq!(states.len(), 6, "{states:?}");
        assert!(
            states.contains(&"FAILED") && states.contains(&"CANCELLED"),
            "{states:?}"
        );
    }
}

/// `--catalog glue` against the Glue API moto serves, configured only by the standard AWS
/// environment: crawl, re-crawl from bookmarks, list, query with pruning.
#[tokio::test]
async fn the_glue_catalog_is_selected_with_catalog_glue() {
    let lake = Lake::sample(Backend::S3).await;
    let q = Quarry::new();
    let db = quarry_tests::unique_name("cli_glue");
    let state = format!("s3://{}/state/", s3().bucket("state"));
    let glue = |args: &[&str]| {
        let mut all = vec!["--catalog", "glue", "--state-location", &state];
        all.extend_from_slice(args);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_quarry"));
        cmd.args(&all)
            .envs(s3().env())
            .env("XDG_DATA_HOME", q.catalog.path());
        cmd.output().expect("run quarry")
    };
    let report: serde_json::Value =
        serde_json::from_str(&stdout(&glue(&["crawl", &lake.url, "-d", &db, "--json"])))
            .expect("JSON report");
    assert_eq!(report["catalog_written"], true, "{report}");
    let again = stdout(&glue(&["crawl", &lake.url, "-d", &db]));
    assert!(again.contains("Nothing changed"), "{again}");
    let tables = stdout(&glue(&["tables", &db]));
    assert!(
        tables.contains("sales") && tables.contains("metrics"),
        "{tables}"
    );
    // Counting partitions would page through all of them: not done for a table list.
    assert!(tables.contains("partitions: not counted"), "{tables}");
    let out = glue(&[
        "sql",
        "-d",
        &db,
        "--format",
        "csv",
        "--stats",
        "json",
        "-c",
        "SELECT count(*) AS n FROM sales WHERE region = 'us-east'",
    ]);
    assert_eq!(stdout(&out), "n\n2\n");
    let stats: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stderr).trim()).expect("stats line");
    assert_eq!(stats["state"], "SUCCEEDED");
    assert!(
        stats["bytes_scanned"].as_u64().is_some_and(|b| b > 0),
        "{stats}"
    );
    // The history stays in the local file.
    let history = stdout(&glue(&["history", "--format", "json"]));
    assert!(history.contains("us-east"), "{history}");
}

#[tokio::test]
async fn a_script_of_ddl_ctas_and_insert_runs_as_written() {
    for backend in BACKENDS {
        let lake = Lake::sample(backend).await;
        let q = Quarry::new();
        stdout(&q.run(backend, &["crawl", &lake.url, "-d", "demo"]));
        let root = lake.location.root_url();
        let out = format!(
            "{}out/",
            root.trim_end_matches('/').trim_end_matches("lake")
        );
        let script = format!(
            "CREATE DATABASE curated;\n\
             -- Athena DDL sqlparser alone does not parse: map<..> and a table COMMENT\n\
             CREATE EXTERNAL TABLE curated.events (event_id bigint, attrs map<string,string>) COMMENT 'x;y'\n\
               PARTITIONED BY (dt date) ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe' LOCATION '{root}events/';\n\
             MSCK REPAIR TABLE curated.events;\n\
             CREATE TABLE curated.sales WITH (partitioned_by = ARRAY['region']) AS SELECT * FROM demo.sales;\n\
             INSERT INTO curated.sales SELECT * FROM demo.sales WHERE region = 'eu west';\n\
             SELECT count(*) AS n FROM curated.sales;\n\
             SELECT count(*) AS e FROM curated.events"
        );
        let o = q.run(
            backend,
            &[
                "sql",
                "--warehouse",
                &out,
                "--format",
                "csv",
                "--stats",
                "json",
                "-c",
                &script,
            ],
        );
        let text = stdout(&o);
        assert!(text.contains("n\n7\n"), "{text}");
        assert!(text.contains("e\n5\n"), "{text}");
        let stats: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stderr)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        assert_eq!(stats.len(), 7, "{stats:?}");
        assert_eq!(stats[3]["rows_written"], 5);
        assert_eq!(stats[3]["files_written"], 3);
        assert_eq!(stats[4]["rows_written"], 2);
        assert_eq!(stats[0]["billed_bytes"], 0);
        // A CTAS is billed for what its SELECT read, at least Athena's 10 MB.
        assert!(
            stats[3]["bytes_scanned"].as_u64().is_some_and(|b| b > 0),
            "{}",
            stats[3]
        );
        assert_eq!(stats[3]["billed_bytes"], 10 << 20, "{}", stats[3]);
        let history: serde_json::Value = serde_json::from_str(&stdout(
            &q.run(backend, &["history", "--limit", "7", "--format", "json"]),
        ))
        .expect("history JSON");
        let kinds: Vec<&str> = history
            .as_array()
            .expect("records")
            .iter()
            .rev()
            .map(|r| r["statement_type"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(
            kinds,
            ["DDL", "DDL", "DDL", "DML", "DML", "DML", "DML"],
            "{history}"
        );
        let insert = &history[2];
        assert_eq!(insert["rows"], 2, "{insert}");
        assert_eq!(insert["files_written"], 1, "{insert}");
        assert!(
            insert["bytes_written"].as_u64().is_some_and(|b| b > 0),
            "{insert}"
        );
    }
}

#[test]
fn ctrl_c_during_a_ctas_leaves_no_table_and_no_file() {
    let q = Quarry::new();
    let out = tempfile::tempdir().expect("temp dir");
    let warehouse = out.path().to_string_lossy().into_owned();
    stdout(&q.run(Backend::Local, &["sql", "-c", "CREATE DATABASE d"]));
    let child = Command::new(env!("CARGO_BIN_EXE_quarry"))
        .args([
            "sql",
            "-d",
            "d",
            "--warehouse",
            &warehouse,
            // Small files, so finished ones are staged soon after it starts.
            "--target-file-size",
            "1MB",
            "-c",
            "CREATE TABLE big WITH (partitioned_by = ARRAY['p']) AS \
             SELECT value AS v, value % 10 AS p FROM generate_series(1, 500000000) AS t(value)",
        ])
        .env("QUARRY_CATALOG", q.catalog.path().join("catalog.db"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start quarry");
    // Wait until it is writing (its staging folder exists), then press Ctrl-C.
    let table = out.path().join("d").join("big");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let staging = || {
        std::fs::read_dir(&table).is_ok_and(|mut d| {
            d.any(|e| {
                e.is_ok_and(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .starts_with(".quarry-staging")
                })
            })
        })
    };
    while !staging() {
        assert!(
            std::time::Instant::now() < deadline,
            "the CTAS never started writing"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    let interrupted = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(interrupted.success());
    let done = child.wait_with_output().expect("quarry exits");
    assert!(!done.status.success());
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(stderr.contains("cancelled"), "{stderr}");
    let left: Vec<_> = walk(out.path());
    assert!(left.is_empty(), "files left behind: {left:?}");
    let tables = stdout(&q.run(Backend::Local, &["sql", "-c", "SHOW TABLES IN d"]));
    assert!(!tables.contains("big"), "{tables}");
}

/// Every file below `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            files.extend(walk(&p));
        } else {
            files.push(p);
        }
    }
    files
}

#[tokio::test]
async fn crawl_proposes_and_applies_partition_projection() {
    for backend in BACKENDS {
        let lake = Lake::sample(backend).await;
        let q = Quarry::new();
        let text = stdout(&q.run(backend, &["crawl", &lake.url, "-d", "demo", "--projection"]));
        assert!(
            text.contains("projection for demo.metrics: proposed (run again with --apply"),
            "{text}"
        );
        assert!(text.contains("'projection.month.range' = '1,2'"), "{text}");
        let out: serde_json::Value = serde_json::from_str(&stdout(&q.run(
            backend,
            &[
                "crawl",
                &lake.url,
                "-d",
                "demo",
                "--projection",
                "--apply",
                "--json",
            ],
        )))
        .expect("JSON");
        let by_table = |name: &str| -> serde_json::Value {
            out["projection"]
                .as_array()
                .expect("proposals")
                .iter()
                .find(|p| p["table"] == name)
                .cloned()
                .unwrap_or_else(|| panic!("no proposal for {name}: {out}"))
        };
        let events = by_table("demo.events");
        assert_eq!(
            events["properties"]["projection.dt.type"], "date",
            "{events}"
        );
        assert_eq!(events["properties"]["projection.dt.format"], "yyyy-MM-dd");
        // Sparse days (1, 15, 16 of a month) and a NULL region are refused, with the reason.
        let logs = by_table("demo.logs");
        assert!(logs["properties"].is_null(), "{logs}");
        assert!(
            logs["reasons"][0]
                .as_str()
                .unwrap_or("")
                .contains("missing"),
            "{logs}"
        );
        assert!(by_table("demo.sales")["properties"].is_null());
        // Applied: the tables read through the projection, with the same answers.
        let rows = stdout(&q.run(
            backend,
            &[
                "sql",
                "-d",
                "demo",
                "--format",
                "csv",
                "-c",
                "SELECT dt, count(*) AS n FROM events GROUP BY dt ORDER BY dt",
            ],
        ));
        assert_eq!(rows, "dt,n\n2024-01-01,3\n2024-01-02,2\n");
        let plan = stdout(&q.run(
            backend,
            &[
                "sql",
                "-d",
                "demo",
                "-c",
                "EXPLAIN SELECT sum(value) FROM metrics WHERE month = 2",
            ],
        ));
        assert!(plan.contains("projected partitions selected"), "{plan}");
    }
}

#[tokio::test]
async fn prepared_statements_persist_between_runs() {
    let lake = Lake::sample(Backend::Local).await;
    let q = Quarry::new();
    stdout(&q.run(Backend::Local, &["crawl", &lake.url, "-d", "demo"]));
    stdout(&q.run(
        Backend::Local,
        &[
            "sql",
            "-d",
            "demo",
            "-c",
            "PREPARE n FROM SELECT count(*) AS n FROM sales WHERE region = ?",
        ],
    ));
    // A later run executes it, and describes its parameter.
    let out = stdout(&q.run(
        Backend::Local,
        &[
            "sql",
            "-d",
            "demo",
            "--format",
            "csv",
            "-c",
            "EXECUTE n USING 'eu west'",
        ],
    ));
    assert_eq!(out, "n\n2\n");
    let out = stdout(&q.run(
        Backend::Local,
        &[
            "sql",
            "-d",
            "demo",
            "--format",
            "csv",
            "-c",
            "DESCRIBE INPUT n",
        ],
    ));
    assert_eq!(out, "Position,Type\n0,varchar\n");
    stdout(&q.run(
        Backend::Local,
        &["sql", "-d", "demo", "-c", "DEALLOCATE PREPARE n"],
    ));
    let o = q.run(
        Backend::Local,
        &["sql", "-d", "demo", "-c", "EXECUTE n USING 'eu west'"],
    );
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("prepared statement n does not exist"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// No credential leaks (issue 16): recognisable secrets in the standard AWS variables never
/// appear in any output, error, history row, `--stats json`, results metadata (`--output`) or
/// the catalog file.
#[tokio::test]
async fn credentials_never_appear_in_output_history_or_catalog() {
    const SECRET: &str = "QuarrySecretKey0123456789abcdefXYZ";
    const TOKEN: &str = "QuarrySessionToken9876543210zyxwvuTSR";
    let lake = Lake::sample(Backend::S3).await;
    let q = Quarry::new();
    let run = |args: &[&str]| -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_quarry"));
        cmd.args(args)
            .env("QUARRY_CATALOG", q.catalog.path().join("catalog.db"))
            .envs(s3().env())
            .env("AWS_SECRET_ACCESS_KEY", SECRET)
            .env("AWS_SESSION_TOKEN", TOKEN)
            .env("RUST_BACKTRACE", "1");
        cmd.output().expect("run quarry")
    };
    let bad_bucket = "s3://no-such-bucket-for-quarry-secrets/x/";
    let results = q.catalog.path().join("results-out");
    let outputs = [
        run(&["crawl", &lake.url, "-d", "demo", "--json"]),
        run(&["crawl", bad_bucket, "-d", "demo"]),
        run(&[
            "sql",
            "-d",
            "demo",
            "--stats",
            "json",
            "--format",
            "json",
            "-c",
            "SELECT region, count(*) FROM sales GROUP BY region",
        ]),
        run(&[
            "sql",
            "-d",
            "demo",
            "--stats",
            "json",
            "-c",
            "SELECT * FROM nope",
        ]),
        run(&[
            "sql",
            "-d",
            "demo",
            "-c",
            &format!("CREATE EXTERNAL TABLE t (a string) LOCATION '{bad_bucket}'"),
        ]),
        run(&["sql", "-d", "demo", "-c", "SELECT * FROM t"]),
        run(&[
            "sql",
            "-d",
            "demo",
            "--output",
            &results.to_string_lossy(),
            "-c",
            "SELECT region FROM sales",
        ]),
        run(&["history", "--format", "json"]),
        run(&["tables", "demo", "--format", "json"]),
    ];
    let mut seen_failure = false;
    for o in &outputs {
        seen_failure |= !o.status.success();
        for text in [&o.stdout, &o.stderr] {
            let text = String::from_utf8_lossy(text);
            assert!(!text.contains(SECRET), "secret key in output: {text}");
            assert!(!text.contains(TOKEN), "session token in output: {text}");
        }
    }
    assert!(
        seen_failure,
        "the failing commands must fail, so their errors are checked too"
    );
    // The catalog and everything beside it (SQLite's WAL, results and their metadata).
    let mut files = 0;
    let mut metadata = 0;
    let mut folders = vec![q.catalog.path().to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).expect("folder") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                folders.push(path);
                continue;
            }
            files += 1;
            metadata += usize::from(path.to_string_lossy().ends_with(".metadata.json"));
            let bytes = std::fs::read(&path).expect("file");
            for secret in [SECRET, TOKEN] {
                assert!(
                    !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                    "{secret} stored in {}",
                    path.display()
                );
            }
        }
    }
    assert!(files > 0);
    assert!(metadata > 0, "no results metadata was written to check");
}

/// Two `quarry crawl` processes on one catalog and one target (issue 16): both finish, or the
/// loser says it lost to another writer; a re-crawl then converges to what one crawl writes.
#[tokio::test]
async fn two_crawl_processes_race_without_losing_an_update() {
    let lake = Lake::sample(Backend::Local).await;
    let reference = Quarry::new();
    stdout(&reference.run(Backend::Local, &["crawl", &lake.url, "-d", "demo"]));
    let want = crash::shape(&reference);
    for round in 0..6 {
        let q = Quarry::new();
        let spawn = || {
            Command::new(env!("CARGO_BIN_EXE_quarry"))
                .args(["crawl", &lake.url, "-d", "demo"])
                .env("QUARRY_CATALOG", q.catalog.path().join("catalog.db"))
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn quarry")
        };
        let (a, b) = (spawn(), spawn());
        for out in [a.wait_with_output(), b.wait_with_output()] {
            let out = out.expect("crawl process");
            if !out.status.success() {
                let err = String::from_utf8_lossy(&out.stderr);
                eprintln!("round {round}: one crawl lost the race: {}", err.trim());
                assert!(
                    err.contains("changed")
                        || err.contains("conflict")
                        || err.contains("busy")
                        || err.contains("locked"),
                    "round {round}: a failed crawl must say it lost a race: {err}"
                );
            }
        }
        stdout(&q.run(Backend::Local, &["crawl", &lake.url, "-d", "demo"]));
        assert_eq!(crash::shape(&q), want, "round {round}");
    }
}

/// `--memory-limit` (issue 11): a sort larger than the limit spills to temporary files and
/// answers right; a hash join that cannot spill fails with an error saying memory ran out.
#[test]
fn memory_limit_spills_or_fails_saying_so() {
    let q = Quarry::new();
    let window = "SELECT max(r) AS r, min(v) AS v FROM (SELECT v, row_number() OVER (ORDER BY v DESC) AS r \
                  FROM generate_series(1, 5000000) AS t(v))";
    let sql = |limit: &str, sql: &str| {
        q.run(
            Backend::Local,
            &["sql", "--memory-limit", limit, "--format", "csv", "-c", sql],
        )
    };
    // 5,000,000 bigints to sort (40 MB) under 32 MB.
    assert_eq!(stdout(&sql("32MB", window)), "r,v\n5000000,1\n");
    let plan = stdout(&sql("32MB", &format!("EXPLAIN ANALYZE {window}")));
    let spills: u64 = plan
        .split("spill_count=")
        .skip(1)
        .filter_map(|s| {
            s.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum();
    assert!(spills > 0, "the sort did not spill: {plan}");
    let out = sql(
        "256KB",
        "SELECT count(*) AS n FROM generate_series(1, 300000) a(x) JOIN generate_series(1, 300000) b(y) ON x = y",
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Resources exhausted") && err.contains("256.0 KB"),
        "{err}"
    );
}
