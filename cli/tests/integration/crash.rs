//! `kill -9` at seeded random points (issue 16): a crawl and a CTAS are killed part-way, then the
//! catalog must open and hold the old or the new state, nothing half-written may be visible, and
//! running the statement again must converge to what one uninterrupted run writes.
//!
//!     QUARRY_KILL_TRIALS=40 cargo test -p quarry-cli --test integration crash -- --nocapture

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{Quarry, stdout, timed};
use quarry_tests::Backend;

fn trials() -> u64 {
    std::env::var("QUARRY_KILL_TRIALS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4)
}

/// The CSV of partition `p`: 20 rows.
fn partition_csv(p: usize) -> String {
    let mut body = String::from("id,amount,kind\n");
    for r in 0..20 {
        body.push_str(&format!("{},{}.5,k{}\n", p * 20 + r, r, r % 3));
    }
    body
}

/// A lake of `n` partitions of one small CSV each.
fn lake(n: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for p in 0..n {
        let folder = dir.path().join(format!("events/part={p:04}"));
        std::fs::create_dir_all(&folder).expect("folder");
        std::fs::write(folder.join("data.csv"), partition_csv(p)).expect("file");
    }
    dir
}

/// The same lake in a fresh S3 bucket (moto).
fn s3_lake(n: usize) -> quarry_tests::Lake {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let lake = quarry_tests::Lake::empty(Backend::S3).await;
        for p in 0..n {
            lake.put(
                &format!("events/part={p:04}/data.csv"),
                partition_csv(p).into_bytes(),
            )
            .await;
        }
        lake
    })
}

/// The CSV answer of `sql` in database `demo` (local files); the statement must succeed.
fn csv_answer(q: &Quarry, sql: &str) -> String {
    stdout(&q.run(
        Backend::Local,
        &["sql", "-d", "demo", "--format", "csv", "-c", sql],
    ))
}

/// Seeded fractions in [0, 1).
fn fraction(seed: u64) -> f64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ((z ^ (z >> 31)) % 10_000) as f64 / 10_000.0
}

/// Runs `args` and kills it with SIGKILL after `after` (if it is still running).
fn run_and_kill(q: &Quarry, args: &[&str], after: Duration) -> bool {
    run_and_kill_on(q, Backend::Local, args, after)
}

/// [`run_and_kill`] with the AWS environment of `backend` (the S3 endpoint for S3 lakes).
fn run_and_kill_on(q: &Quarry, backend: Backend, args: &[&str], after: Duration) -> bool {
    let mut command = Command::new(env!("CARGO_BIN_EXE_quarry"));
    command
        .args(args)
        .env("QUARRY_CATALOG", q.catalog.path().join("catalog.db"))
        .env_remove("AWS_ENDPOINT_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if backend == Backend::S3 {
        command.envs(quarry_tests::s3().env());
    }
    let mut child = command.spawn().expect("spawn quarry");
    let start = Instant::now();
    while start.elapsed() < after {
        if child.try_wait().expect("wait").is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let killed = child.try_wait().expect("wait").is_none();
    let _ = child.kill();
    let _ = child.wait();
    killed
}

/// The tables of `demo` without times and versions (empty when there is no such database):
/// what a crawl wrote, to compare with another crawl's.
pub(crate) fn shape(q: &Quarry) -> Vec<String> {
    let out = q.run(Backend::Local, &["tables", "demo", "--format", "json"]);
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("does not exist"),
            "the catalog does not open: {err}"
        );
        return Vec::new();
    }
    let tables: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    tables
        .as_array()
        .expect("array")
        .iter()
        .map(|t| {
            let p = &t["parameters"];
            format!(
                "{} {} {} {} {} {}",
                t["name"],
                t["storage"]["columns"],
                t["partition_keys"],
                p["recordCount"],
                p["objectCount"],
                p["sizeKey"]
            )
        })
        .collect()
}

#[test]
fn killed_crawls_leave_the_old_or_the_new_catalog() {
    let _timed = timed();
    let data = lake(300);
    let url = data.path().join("events").to_string_lossy().into_owned();
    crawl_trials(Backend::Local, &url);
}

/// The same trials on a lake in S3 (moto): the crawl's reads and listings go over HTTP when it
/// is killed.
#[test]
fn killed_crawls_of_an_s3_lake_leave_the_old_or_the_new_catalog() {
    let _timed = timed();
    let lake = s3_lake(120);
    crawl_trials(Backend::S3, &format!("{}events/", lake.location.root_url()));
}

/// Crawls into the Glue Data Catalog (moto) killed at seeded points. Glue has no transactions:
/// a crawl writes the table, then its partitions in batches of 100, then its bookmarks, one
/// call after another, so a kill between them can leave a table with part of its partitions.
/// What must hold: Glue is never left unusable, and a re-crawl converges on the whole table.
/// The trial counts the partial states it saw (BENCHMARKS.md records them).
#[test]
fn killed_crawls_into_glue_converge_when_run_again() {
    let _timed = timed();
    let lake = s3_lake(150);
    let url = format!("{}events/", lake.location.root_url());
    let q = Quarry::new();
    // Each trial: its own database and bookmark location.
    fn glue<'a>(db: &'a str, state: &'a str, args: &[&'a str]) -> Vec<&'a str> {
        let mut all = vec!["--catalog", "glue", "--state-location", state];
        all.extend_from_slice(args);
        all.extend_from_slice(&["-d", db]);
        all
    }
    let count = |db: &str, state: &str| -> Option<String> {
        let sql = "SELECT count(*) AS n, count(DISTINCT part) AS p FROM events";
        let out = q.run(
            Backend::S3,
            &glue(db, state, &["sql", "--format", "csv", "-c", sql]),
        );
        if out.status.success() {
            return Some(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("not found") || err.contains("does not exist"),
            "Glue is unusable after a kill: {err}"
        );
        None
    };
    let reference = quarry_tests::unique_name("glue_ref");
    let ref_state = format!("s3://{}/state/", quarry_tests::s3().bucket("state"));
    let start = Instant::now();
    stdout(&q.run(Backend::S3, &glue(&reference, &ref_state, &["crawl", &url])));
    let took = start.elapsed();
    let want = count(&reference, &ref_state).expect("the reference table");
    let (mut killed, mut partial) = (0, 0);
    for seed in 0..trials() {
        let db = quarry_tests::unique_name("glue_kill");
        let state = format!("s3://{}/state/", quarry_tests::s3().bucket("state"));
        let args = glue(&db, &state, &["crawl", &url]);
        killed += u64::from(run_and_kill_on(
            &q,
            Backend::S3,
            &args,
            took.mul_f64(fraction(seed + 2000)),
        ));
        match count(&db, &state) {
            Some(got) if got != want => {
                partial += 1;
                eprintln!("seed {seed}: after the kill, part of the crawl is visible: {got:?}");
            }
            _ => {}
        }
        stdout(&q.run(Backend::S3, &args));
        assert_eq!(
            count(&db, &state).as_deref(),
            Some(want.as_str()),
            "seed {seed}: the re-crawl did not converge"
        );
    }
    eprintln!(
        "{} Glue crawl trials, {killed} killed part-way, {partial} left part of the crawl visible, all converged",
        trials()
    );
}

/// Crawls of `url` killed at seeded points: the catalog holds the old state or the whole new
/// one, and a re-crawl converges on what an uninterrupted crawl writes.
fn crawl_trials(backend: Backend, url: &str) {
    let crawl = ["crawl", url, "-d", "demo"];
    let reference = Quarry::new();
    let start = Instant::now();
    stdout(&reference.run(backend, &crawl));
    let took = start.elapsed();
    let want = shape(&reference);
    assert_eq!(want.len(), 1);
    let mut killed = 0;
    for seed in 0..trials() {
        let q = Quarry::new();
        let after = took.mul_f64(fraction(seed));
        killed += u64::from(run_and_kill_on(&q, backend, &crawl, after));
        let got = shape(&q);
        assert!(
            got.is_empty() || got == want,
            "seed {seed}: half a crawl is visible: {got:?}"
        );
        stdout(&q.run(backend, &crawl));
        assert_eq!(
            shape(&q),
            want,
            "seed {seed}: the re-crawl did not converge"
        );
    }
    eprintln!(
        "{} {backend:?} crawl trials, {killed} killed part-way",
        trials()
    );
}

#[test]
fn killed_ctas_leaves_no_table_or_the_whole_one() {
    let _timed = timed();
    ctas_trials(false);
}

/// A CTAS killed after it published its files but before its catalog commit leaves those files
/// in the table's folder; its write intent (recorded in the embedded catalog, ended by the
/// commit) lets the next write statement remove them, so running it again converges.
#[test]
fn killed_ctas_converges_when_run_again() {
    let _timed = timed();
    ctas_trials(true);
}

fn ctas_trials(rerun: bool) {
    let data = lake(120);
    let url = data.path().join("events").to_string_lossy().into_owned();
    let warehouse = tempfile::tempdir().expect("warehouse");
    let wh = warehouse.path().to_string_lossy().into_owned();
    let ctas = "CREATE TABLE copy WITH (format = 'PARQUET', partitioned_by = ARRAY['part']) \
                AS SELECT id, amount, kind, part FROM events";
    let count = |q: &Quarry| -> Option<String> {
        let out = q.run(
            Backend::Local,
            &[
                "sql",
                "-d",
                "demo",
                "--format",
                "csv",
                "-c",
                "SELECT count(*) AS n, sum(id) AS s FROM copy",
            ],
        );
        if out.status.success() {
            Some(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains("not found") || err.contains("does not exist"),
                "{err}"
            );
            None
        }
    };
    let reference = Quarry::new();
    stdout(&reference.run(Backend::Local, &["crawl", &url, "-d", "demo"]));
    let start = Instant::now();
    stdout(&reference.run(
        Backend::Local,
        &[
            "sql",
            "-d",
            "demo",
            "--warehouse",
            &format!("{wh}/reference"),
            "-c",
            ctas,
        ],
    ));
    let took = start.elapsed();
    let want = count(&reference).expect("the reference table");
    let mut killed = 0;
    for seed in 0..trials() {
        let q = Quarry::new();
        stdout(&q.run(Backend::Local, &["crawl", &url, "-d", "demo"]));
        let target = format!("{wh}/trial-{seed}");
        let args = ["sql", "-d", "demo", "--warehouse", &target, "-c", ctas];
        killed += u64::from(run_and_kill(&q, &args, took.mul_f64(fraction(seed + 1000))));
        match count(&q) {
            Some(got) => assert_eq!(got, want, "seed {seed}: a partial table is visible"),
            None if rerun => {
                // Absent: running it again must succeed and give the whole table.
                stdout(&q.run(Backend::Local, &args));
                assert_eq!(count(&q).as_deref(), Some(want.as_str()), "seed {seed}");
            }
            None => {}
        }
    }
    eprintln!("{} CTAS trials, {killed} killed part-way", trials());
}

/// `INSERT INTO` killed at seeded points (the embedded catalog, local files): the table holds
/// the rows before the INSERT or all of them after it, never part; when the kill came first,
/// running the INSERT again adds every row once.
#[test]
fn killed_inserts_add_all_rows_or_none() {
    let _timed = timed();
    let data = lake(120);
    let url = data.path().join("events").to_string_lossy().into_owned();
    let warehouse = tempfile::tempdir().expect("warehouse");
    let wh = warehouse.path().to_string_lossy().into_owned();
    let ctas = "CREATE TABLE copy WITH (format = 'PARQUET', partitioned_by = ARRAY['part']) \
                AS SELECT id, amount, kind, part FROM events WHERE part < '0010'";
    let insert = "INSERT INTO copy SELECT id, amount, kind, part FROM events";
    let count = |q: &Quarry| csv_answer(q, "SELECT count(*) AS n FROM copy");
    let prepare = |q: &Quarry, seed: &str| {
        stdout(&q.run(Backend::Local, &["crawl", &url, "-d", "demo"]));
        let target = format!("{wh}/{seed}");
        stdout(&q.run(
            Backend::Local,
            &["sql", "-d", "demo", "--warehouse", &target, "-c", ctas],
        ));
    };
    let reference = Quarry::new();
    prepare(&reference, "reference");
    let before = count(&reference);
    let start = Instant::now();
    stdout(&reference.run(Backend::Local, &["sql", "-d", "demo", "-c", insert]));
    let took = start.elapsed();
    let after = count(&reference);
    assert_ne!(before, after);
    let (mut killed, mut landed) = (0, 0);
    for seed in 0..trials() {
        let q = Quarry::new();
        prepare(&q, &format!("trial-{seed}"));
        let args = ["sql", "-d", "demo", "-c", insert];
        killed += u64::from(run_and_kill(&q, &args, took.mul_f64(fraction(seed + 3000))));
        let got = count(&q);
        if got == after {
            landed += 1;
            continue;
        }
        assert_eq!(got, before, "seed {seed}: part of the INSERT is visible");
        stdout(&q.run(Backend::Local, &args));
        assert_eq!(count(&q), after, "seed {seed}: the INSERT run again");
    }
    eprintln!(
        "{} INSERT trials, {killed} killed part-way, {landed} had committed",
        trials()
    );
}

/// A crawl racing an INSERT on the same table (issue 16): both finish, or the one that lost says
/// so and a retry succeeds; afterwards no row is lost or counted twice, also after a re-crawl.
#[test]
fn a_crawl_racing_an_insert_loses_no_update() {
    let _timed = timed();
    let data = lake(150);
    let url = data.path().join("events").to_string_lossy().into_owned();
    let total = |q: &Quarry| csv_answer(q, "SELECT count(*) AS n FROM events");
    // New rows in new partitions and in an existing one.
    let insert = "INSERT INTO events SELECT id + 100000, amount, kind, \
                  CASE WHEN id % 2 = 0 THEN part + 1000 ELSE part END FROM events WHERE part < 10";
    for round in 0..4 {
        let q = Quarry::new();
        stdout(&q.run(Backend::Local, &["crawl", &url, "-d", "demo"]));
        let before: u64 = total(&q)
            .lines()
            .nth(1)
            .and_then(|l| l.parse().ok())
            .expect("n");
        // The lake keeps earlier rounds' rows: the INSERT copies what is in parts 0..9 now.
        let copied: u64 = stdout(&q.run(
            Backend::Local,
            &[
                "sql",
                "-d",
                "demo",
                "--format",
                "csv",
                "-c",
                "SELECT count(*) AS n FROM events WHERE part < 10",
            ],
        ))
        .lines()
        .nth(1)
        .and_then(|l| l.parse().ok())
        .expect("n");
        let spawn = |args: &[&str]| {
            Command::new(env!("CARGO_BIN_EXE_quarry"))
                .args(args)
                .env("QUARRY_CATALOG", q.catalog.path().join("catalog.db"))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn quarry")
        };
        let crawl = spawn(&["crawl", &url, "-d", "demo"]);
        let ins = spawn(&["sql", "-d", "demo", "-c", insert]);
        let (crawl, ins) = (
            crawl.wait_with_output().expect("crawl"),
            ins.wait_with_output().expect("insert"),
        );
        let lost = |o: &std::process::Output, what: &str| {
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(
                ["changed", "conflict", "busy", "locked"]
                    .iter()
                    .any(|w| err.contains(w)),
                "round {round}: a failed {what} must say it lost a race: {err}"
            );
            eprintln!("round {round}: the {what} lost the race: {}", err.trim());
        };
        if !crawl.status.success() {
            lost(&crawl, "crawl");
        }
        if !ins.status.success() {
            lost(&ins, "INSERT");
            stdout(&q.run(Backend::Local, &["sql", "-d", "demo", "-c", insert]));
        }
        let want = format!("n\n{}\n", before + copied);
        assert_eq!(total(&q), want, "round {round}: rows lost or doubled");
        stdout(&q.run(Backend::Local, &["crawl", &url, "-d", "demo"]));
        assert_eq!(total(&q), want, "round {round}: after a re-crawl");
    }
}
