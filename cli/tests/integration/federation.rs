//! `quarry catalog` and `quarry connector` against a real PostgreSQL server.

use std::io::Write;
use std::process::{Command, Stdio};

use quarry_tests::{Backend, postgres, unique_name};

use crate::{Quarry, stdout};

#[test]
fn register_query_and_remove_a_postgres_catalog() {
    let pg = postgres();
    let schema = unique_name("cli_fed");
    pg.exec(&format!(
        "CREATE SCHEMA {schema}; CREATE TABLE {schema}.orders (id int, total numeric(8,2));
         INSERT INTO {schema}.orders VALUES (1, 9.50), (2, 0.50), (3, NULL);"
    ));
    let q = Quarry::new();
    // A password in the URI is kept, and never shown.
    let uri = pg.uri.replacen("quarry@", "quarry:s3cr3t-pw@", 1);
    let added = q.run(
        Backend::Local,
        &[
            "catalog",
            "add",
            "pg",
            "--connector",
            "postgres",
            "--uri",
            &uri,
        ],
    );
    stdout(&added);
    assert!(!String::from_utf8_lossy(&added.stderr).contains("s3cr3t-pw"));
    let listed = stdout(&q.run(Backend::Local, &["catalog", "list", "--format", "json"]));
    assert!(
        listed.contains("\"pg\"") && listed.contains("FEDERATED") && !listed.contains("s3cr3t-pw"),
        "{listed}"
    );

    let sql = format!("SELECT count(*) AS n, sum(total) AS t FROM pg.{schema}.orders");
    assert_eq!(
        stdout(&q.run(Backend::Local, &["sql", "--format", "csv", "-c", &sql])),
        "n,t\n3,10.00\n"
    );
    let tables = stdout(&q.run(
        Backend::Local,
        &[
            "sql",
            "--format",
            "csv",
            "-c",
            &format!("SHOW TABLES IN pg.{schema}"),
        ],
    ));
    assert_eq!(tables, "tab_name\norders\n");

    // One protocol request, answered as the SDK writes JSON.
    let mut child = Command::new(env!("CARGO_BIN_EXE_quarry"))
        .args([
            "connector",
            "invoke",
            "--connector",
            "postgres",
            "--uri",
            &pg.uri,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("quarry");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(
            br#"{"@type":"PingRequest","identity":{"id":"UNKNOWN","principal":"UNKNOWN","account":"1","arn":"a","tags":{},"groups":[]},"catalogName":"pg","queryId":"q1"}"#,
        )
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    let answer = stdout(&out);
    assert!(
        answer.starts_with("{\n  \"@type\" : \"PingResponse\",\n  \"catalogName\" : \"pg\""),
        "{answer}"
    );
    assert!(answer.contains("\"serDeVersion\" : 4"), "{answer}");

    stdout(&q.run(Backend::Local, &["catalog", "remove", "pg"]));
    let gone = q.run(Backend::Local, &["sql", "-c", &sql]);
    assert!(!gone.status.success());
    let err = String::from_utf8_lossy(&gone.stderr);
    assert!(
        err.contains("catalog pg does not exist") && err.contains("quarry catalog add"),
        "{err}"
    );
    let again = q.run(Backend::Local, &["catalog", "remove", "pg"]);
    assert!(
        !again.status.success()
            && String::from_utf8_lossy(&again.stderr).contains("no data catalog named pg")
    );
}

#[tokio::test]
async fn sql_joins_the_lake_with_dynamodb() {
    let table = unique_name("cli_ddb");
    quarry_tests::dynamodb_table(
        &table,
        "name",
        &[
            serde_json::json!({"name": "Bo", "tier": "silver", "visits": 3}),
            serde_json::json!({"name": "Eve", "tier": "gold", "visits": 12.5, "tags": ["vip"]}),
            serde_json::json!({"name": "Smith, Jane", "tier": "gold"}),
        ],
    )
    .await;
    let q = Quarry::new();
    let lake = quarry_tests::sample_data();
    stdout(&q.run(
        Backend::S3,
        &["crawl", lake.to_str().expect("path"), "-d", "demo"],
    ));
    stdout(&q.run(
        Backend::S3,
        &["catalog", "add", "ddb", "--connector", "dynamodb"],
    ));
    let sql = format!(
        "SELECT s.customer, d.tier, d.visits, sum(s.amount) AS spent FROM demo.sales s \
         JOIN ddb.default.{table} d ON d.name = s.customer WHERE d.tier = 'gold' \
         GROUP BY 1, 2, 3 ORDER BY 1"
    );
    assert_eq!(
        stdout(&q.run(Backend::S3, &["sql", "--format", "csv", "-c", &sql])),
        "customer,tier,visits,spent\nEve,gold,12.500000000,1.0\n\"Smith, Jane\",gold,,12.5\n"
    );
    let explain = stdout(&q.run(
        Backend::S3,
        &[
            "sql",
            "--format",
            "csv",
            "-c",
            &format!("EXPLAIN SELECT * FROM ddb.default.{table} WHERE name = 'Bo'"),
        ],
    ));
    assert!(
        explain.contains("federated scan through catalog ddb") && explain.contains("1 split(s)"),
        "{explain}"
    );
}
