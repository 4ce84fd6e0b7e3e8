//! `quarry serve` with unmodified Athena clients from PyPI (boto3, PyAthena, the AWS CLI;
//! `tests/clients/athena_clients.py`), SigV4 on, executions surviving a restart, and bad
//! requests answered with 4xx.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use crate::{Quarry, stdout};
use quarry_tests::{Backend, sample_data};

const KEY: &str = "AKIDQUARRYTEST";
const SECRET: &str = "quarry-test-secret";

/// The Python that has boto3, awscli, pyathena, pandas and pyarrow (scripts/test makes a venv
/// and sets QUARRY_CLIENTS_PYTHON).
fn python() -> PathBuf {
    std::env::var_os("QUARRY_CLIENTS_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("python3"))
}

struct Serving {
    child: Child,
    endpoint: String,
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(q: &Quarry, extra: &[&str]) -> Serving {
    let mut child = Command::new(env!("CARGO_BIN_EXE_quarry"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(extra)
        .env("QUARRY_CATALOG", q.catalog.path().join("catalog.db"))
        .stderr(Stdio::piped())
        .spawn()
        .expect("start quarry serve");
    let mut line = String::new();
    BufReader::new(child.stderr.as_mut().expect("stderr"))
        .read_line(&mut line)
        .expect("first line");
    let endpoint = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no endpoint in {line:?}"))
        .to_string();
    Serving { child, endpoint }
}

fn clients_env(cmd: &mut Command, endpoint: &str) {
    let py = python();
    let mut path = std::env::var_os("PATH").unwrap_or_default();
    if let Some(bin) = py.parent().filter(|p| !p.as_os_str().is_empty()) {
        let mut p = bin.as_os_str().to_owned();
        p.push(":");
        p.push(&path);
        path = p;
    }
    cmd.env("QUARRY_ENDPOINT", endpoint)
        .env("AWS_ACCESS_KEY_ID", KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("PATH", path)
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_PROFILE");
}

fn python_ok(endpoint: &str, args: &[&str]) -> String {
    let mut cmd = Command::new(python());
    cmd.args(args);
    clients_env(&mut cmd, endpoint);
    let out = cmd.output().expect("run python");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn boto3_pyathena_and_the_aws_cli_work_unchanged() {
    let q = Quarry::new();
    let sample = sample_data();
    stdout(&q.run(
        Backend::Local,
        &["crawl", &sample.to_string_lossy(), "-d", "demo"],
    ));
    let creds = q.catalog.path().join("credentials");
    std::fs::write(
        &creds,
        format!("[test]\naws_access_key_id = {KEY}\naws_secret_access_key = {SECRET}\n"),
    )
    .expect("credentials");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/clients/athena_clients.py")
        .to_string_lossy()
        .into_owned();
    let id = {
        let s = serve(&q, &["--credentials", &creds.to_string_lossy()]);
        let out = python_ok(&s.endpoint, &[&script]);
        assert!(out.contains("all client checks passed"), "{out}");
        // One more, to read back after a restart.
        python_ok(
            &s.endpoint,
            &[
                "-c",
                "import boto3,os,time\n\
c=boto3.client('athena',endpoint_url=os.environ['QUARRY_ENDPOINT'])\n\
i=c.start_query_execution(QueryString='SELECT 40 + 2 AS answer')['QueryExecutionId']\n\
while c.get_query_execution(QueryExecutionId=i)['QueryExecution']['Status']['State']!='SUCCEEDED': time.sleep(0.05)\n\
print(i)",
            ],
        )
        .trim()
        .to_string()
    };
    // Restarted (now without credentials, loopback): the execution and its results are there.
    let s = serve(&q, &[]);
    let out = python_ok(
        &s.endpoint,
        &[
            "-c",
            &format!(
                "import boto3,os\n\
c=boto3.client('athena',endpoint_url=os.environ['QUARRY_ENDPOINT'])\n\
e=c.get_query_execution(QueryExecutionId='{id}')['QueryExecution']\n\
r=c.get_query_results(QueryExecutionId='{id}')['ResultSet']['Rows']\n\
print(e['Status']['State'], r[1]['Data'][0]['VarCharValue'])"
            ),
        ],
    );
    assert_eq!(out.trim(), "SUCCEEDED 42");

    // Bad requests: 4xx with Athena's error shape, never a crash.
    let addr = s.endpoint.trim_start_matches("http://").to_string();
    let raw = |body: &[u8], target: &str| -> String {
        let mut conn = std::net::TcpStream::connect(&addr).expect("connect");
        let head = format!(
            "POST / HTTP/1.1\r\nHost: {addr}\r\nX-Amz-Target: {target}\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        conn.write_all(head.as_bytes()).expect("write");
        let _ = conn.write_all(body);
        let mut reply = String::new();
        let _ = conn.read_to_string(&mut reply);
        reply
    };
    let r = raw(b"{not json", "AmazonAthena.GetQueryExecution");
    assert!(
        r.starts_with("HTTP/1.1 400") && r.contains("SerializationException"),
        "{r}"
    );
    let r = raw(b"{}", "AmazonAthena.GetQueryExecution");
    assert!(
        r.starts_with("HTTP/1.1 400") && r.contains("QueryExecutionId is required"),
        "{r}"
    );
    let r = raw(b"{}", "AmazonAthena.DropEverything");
    assert!(
        r.starts_with("HTTP/1.1 400") && r.contains("UnknownOperationException"),
        "{r}"
    );
    let big = vec![b' '; 2 << 20];
    let r = raw(&big, "AmazonAthena.ListWorkGroups");
    assert!(r.starts_with("HTTP/1.1 413"), "{}", &r[..r.len().min(200)]);
    let r = raw(b"{}", "AmazonAthena.ListWorkGroups");
    assert!(
        r.starts_with("HTTP/1.1 200"),
        "the server still answers: {r}"
    );
}

#[test]
fn serving_beyond_loopback_needs_credentials() {
    let q = Quarry::new();
    let out = q.run(Backend::Local, &["serve", "--listen", "0.0.0.0:0"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--credentials"), "{err}");
}
