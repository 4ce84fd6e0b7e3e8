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
        .find(|w| w.starts_with("http://") || w.starts_with("https://"))
        .map(str::to_string);
    let serving = Serving {
        child,
        endpoint: endpoint.clone().unwrap_or_default(),
    };
    assert!(endpoint.is_some(), "no endpoint in {line:?}");
    serving
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
        .env(
            "QUARRY_SCRATCH",
            std::env::temp_dir().join(format!("quarry-serve-{}", std::process::id())),
        )
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
        let scratch = format!(
            "file://{}/",
            std::env::temp_dir()
                .join(format!("quarry-serve-{}", std::process::id()))
                .display()
        );
        let s = serve(
            &q,
            &[
                "--credentials",
                &creds.to_string_lossy(),
                "--write-root",
                &scratch,
            ],
        );
        let out = python_ok(&s.endpoint, &[&script]);
        assert!(out.contains("all client checks passed"), "{out}");
        // A query still running when the server dies is FAILED after the restart.
        let running = python_ok(
            &s.endpoint,
            &[
                "-c",
                "import boto3,os,time\n\
c=boto3.client('athena',endpoint_url=os.environ['QUARRY_ENDPOINT'])\n\
i=c.start_query_execution(QueryString='SELECT count(*) FROM range(100000000000)')['QueryExecutionId']\n\
time.sleep(0.3)\n\
print(i)",
            ],
        );
        std::fs::write(q.catalog.path().join("running"), running.trim()).expect("id");
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
    let running = std::fs::read_to_string(q.catalog.path().join("running")).expect("id");
    let out = python_ok(
        &s.endpoint,
        &[
            "-c",
            &format!(
                "import boto3,os\n\
c=boto3.client('athena',endpoint_url=os.environ['QUARRY_ENDPOINT'])\n\
s=c.get_query_execution(QueryExecutionId='{running}')['QueryExecution']['Status']\n\
print(s['State'], s['StateChangeReason'])"
            ),
        ],
    );
    assert!(out.starts_with("FAILED the server stopped"), "{out}");

    // Bad requests: 4xx with Athena's error shape, never a crash.
    let addr = s.endpoint.trim_start_matches("http://").to_string();
    assert!(!addr.starts_with("https"), "{addr}");
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

/// HTTPS with a self-signed certificate, a queue of one (QUEUED is real), and result files in
/// Athena's formats under an allowed OutputLocation (and a refusal outside it).
#[test]
fn https_a_real_queue_and_result_files() {
    let q = Quarry::new();
    let sample = sample_data();
    stdout(&q.run(
        Backend::Local,
        &["crawl", &sample.to_string_lossy(), "-d", "demo"],
    ));
    let dir = q.catalog.path();
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).expect("cert");
    std::fs::write(dir.join("cert.pem"), cert.cert.pem()).expect("cert");
    std::fs::write(dir.join("key.pem"), cert.signing_key.serialize_pem()).expect("key");
    let out_root = dir.join("out");
    std::fs::create_dir_all(&out_root).expect("out");
    let s = serve(
        &q,
        &[
            "--tls-cert",
            &dir.join("cert.pem").to_string_lossy(),
            "--tls-key",
            &dir.join("key.pem").to_string_lossy(),
            "--concurrency",
            "1",
            "--output-root",
            &out_root.to_string_lossy(),
        ],
    );
    let endpoint = s.endpoint.clone();
    assert!(endpoint.starts_with("https://"), "{endpoint}");
    let script = format!(
        r#"
import boto3, os, time
c = boto3.client('athena', endpoint_url=os.environ['QUARRY_ENDPOINT'], verify={cert:?})
def state(i): return c.get_query_execution(QueryExecutionId=i)['QueryExecution']
def wait(i):
    deadline = time.time() + 60
    while state(i)['Status']['State'] not in ('SUCCEEDED', 'FAILED', 'CANCELLED'):
        assert time.time() < deadline, state(i)['Status']
        time.sleep(0.05)
    return state(i)
slow = c.start_query_execution(QueryString='SELECT count(*) FROM range(100000000000)')['QueryExecutionId']
deadline = time.time() + 30
while state(slow)['Status']['State'] != 'RUNNING':
    assert time.time() < deadline, state(slow)['Status']
    time.sleep(0.02)
quick = c.start_query_execution(QueryString='SELECT 1')['QueryExecutionId']
time.sleep(0.3)
queued = state(quick)['Status']['State']
c.stop_query_execution(QueryExecutionId=slow)
assert wait(quick)['Status']['State'] == 'SUCCEEDED'
print('queued', queued)
out = 'file://' + {out:?} + '/q/'
i = c.start_query_execution(QueryString="SELECT region, amount FROM demo.sales WHERE region = 'us-east' ORDER BY amount",
                            ResultConfiguration={{'OutputLocation': out}})['QueryExecutionId']
e = wait(i)
print('csv', e['ResultConfiguration']['OutputLocation'])
i = c.start_query_execution(QueryString='SHOW TABLES IN demo', ResultConfiguration={{'OutputLocation': out}})['QueryExecutionId']
print('txt', wait(i)['ResultConfiguration']['OutputLocation'])
try:
    c.start_query_execution(QueryString='SELECT 1', ResultConfiguration={{'OutputLocation': 'file:///tmp/elsewhere/'}})
    print('outside accepted')
except c.exceptions.InvalidRequestException as err:
    print('outside refused')
"#,
        cert = dir.join("cert.pem").to_string_lossy(),
        out = out_root.to_string_lossy(),
    );
    let printed = python_ok(&endpoint, &["-c", &script]);
    assert!(printed.contains("queued QUEUED"), "{printed}");
    assert!(printed.contains("outside refused"), "{printed}");
    let file = |kind: &str| -> String {
        let url = printed
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{kind} ")))
            .unwrap_or_else(|| panic!("no {kind} in {printed}"));
        std::fs::read_to_string(url.trim_start_matches("file://")).expect("result file")
    };
    assert_eq!(
        file("csv"),
        "\"region\",\"amount\"\n\"us-east\",\"8.0\"\n\"us-east\",\"100.25\"\n"
    );
    assert_eq!(file("txt"), "events\nlogs\nmetrics\nsales\n");
}
