#!/usr/bin/env python3
"""Cold start and first-query latency of the Lambda functions under the local emulator.

Usage: scripts/lambda-bench.py [DIR_WITH_BOOTSTRAP_ZIPS] [RUNS]

DIR defaults to $CARGO_TARGET_DIR/lambda (or target/lambda), as `cargo lambda build
--output-format zip` leaves it: DIR/<function>/bootstrap.zip. Starts moto_server (S3 + Glue) and
`cargo lambda watch --only-lambda-apis`, uploads sample-data/ to a bucket, crawls it into Glue
with the crawl function, then RUNS times (default 10): start a fresh quarry-query process
(a cold start), invoke it with a small query over HTTP, invoke it again (warm). Prints the
zip sizes, the init time the function logs (`resources ready init_ms=...`), and the
spawn-to-first-answer and warm latencies (median, min, max), and a warm CPU-bound query that
reads no storage (what the build profile changes).
"""

import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS = ["quarry-query", "quarry-crawl", "quarry-transform"]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port):
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listens on {port}")


def invoke(port, function, payload):
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/2015-03-31/functions/{function}/invocations",
        data=json.dumps(payload).encode(),
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.loads(r.read())


def main():
    target = os.environ.get("CARGO_TARGET_DIR", str(ROOT / "target"))
    zips = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(target) / "lambda"
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    work = Path(tempfile.mkdtemp(prefix="quarry-lambda-bench-"))
    print("zip sizes:")
    for f in FUNCTIONS:
        z = zips / f / "bootstrap.zip"
        with zipfile.ZipFile(z) as zf:
            zf.extractall(work / f)
        os.chmod(work / f / "bootstrap", 0o755)
        unzipped = (work / f / "bootstrap").stat().st_size
        print(f"  {f}: {z.stat().st_size / 2**20:.1f} MiB zip, {unzipped / 2**20:.1f} MiB unzipped")

    procs = []
    try:
        moto_port = free_port()
        procs.append(subprocess.Popen(["moto_server", "-H", "127.0.0.1", "-p", str(moto_port)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_port(moto_port)
        endpoint = f"http://127.0.0.1:{moto_port}"
        aws = {
            "AWS_ENDPOINT_URL": endpoint, "AWS_ALLOW_HTTP": "true", "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        }
        import boto3  # moto[server] depends on it

        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
        s3.create_bucket(Bucket="bench")
        for p in sorted((ROOT / "sample-data").rglob("*")):
            if p.is_file():
                s3.put_object(Bucket="bench", Key="lake/" + p.relative_to(ROOT / "sample-data").as_posix(),
                              Body=p.read_bytes())

        rt_port = free_port()
        procs.append(subprocess.Popen(
            ["cargo", "lambda", "watch", "--only-lambda-apis", "--ignore-changes", "-P", str(rt_port)],
            cwd=ROOT / "lambda", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_port(rt_port)

        def spawn(f, log):
            env = {"PATH": os.environ["PATH"], **aws,
                   "AWS_LAMBDA_RUNTIME_API": f"http://127.0.0.1:{rt_port}/.rt/{f}",
                   "AWS_LAMBDA_FUNCTION_NAME": f, "AWS_LAMBDA_FUNCTION_VERSION": "1",
                   "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024", "QUARRY_CATALOG": "glue",
                   "QUARRY_STATE_LOCATION": "s3://bench/state/"}
            return subprocess.Popen([str(work / f / "bootstrap")], env=env,
                                    stdout=log, stderr=subprocess.STDOUT)

        with open(work / "crawl.log", "w") as log:
            crawl = spawn("quarry-crawl", log)
            procs.append(crawl)
            report = invoke(rt_port, "quarry-crawl", {"target": "s3://bench/lake/", "database": "demo"})
            assert report["reports"][0]["catalog_written"], report

        sql = {"sql": "SELECT region, count(*) AS n, sum(amount) AS total FROM sales "
                      "WHERE region = 'us-east' GROUP BY region", "database": "demo"}
        # CPU-bound and storage-free: what the build profile changes.
        compute = {"sql": "SELECT sum(value % 7) AS s FROM generate_series(1, 30000000)"}
        inits, firsts, warms, computes = [], [], [], []
        for i in range(runs):
            log_path = work / f"query-{i}.log"
            with open(log_path, "w") as log:
                t0 = time.perf_counter()
                p = spawn("quarry-query", log)
                r = invoke(rt_port, "quarry-query", sql)
                first = time.perf_counter() - t0
                assert r["state"] == "SUCCEEDED", r
                t1 = time.perf_counter()
                invoke(rt_port, "quarry-query", sql)
                warm = time.perf_counter() - t1
                t2 = time.perf_counter()
                c = invoke(rt_port, "quarry-query", compute)
                computes.append((time.perf_counter() - t2) * 1000)
                assert c["state"] == "SUCCEEDED", c
                p.kill()
                p.wait()
            m = re.search(r"init_ms=([0-9.]+)", log_path.read_text())
            inits.append(float(m.group(1)) if m else float("nan"))
            firsts.append(first * 1000)
            warms.append(warm * 1000)

        def show(name, xs):
            print(f"  {name}: median {statistics.median(xs):.1f} ms (min {min(xs):.1f}, max {max(xs):.1f})")

        print(f"quarry-query, {runs} cold starts under cargo lambda watch (moto S3 + Glue):")
        show("init (resources ready, logged by the function)", inits)
        show("process spawn -> first query answered", firsts)
        show("warm query", warms)
        show("warm CPU-bound query (sum over generate_series(1, 30M))", computes)
    finally:
        for p in procs:
            p.kill()


if __name__ == "__main__":
    main()
