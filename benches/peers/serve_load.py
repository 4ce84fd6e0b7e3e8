#!/usr/bin/env python3
"""Load and latency of `quarry serve` through boto3 (the Athena client, unmodified).

    QUARRY=path/to/release/quarry python benches/peers/serve_load.py [CLIENTS] [QUERIES]

Starts a server over the crawled sample lake, then:
1. latency: one client runs 200 small queries one after another (StartQueryExecution, polling
   GetQueryExecution every 2 ms, GetQueryResults) and reports p50 / p99 of the whole round trip;
2. load: CLIENTS threads (default 50), each with its own boto3 client, run QUERIES queries each
   (default 20), recording every state each execution was seen in; checks that no execution is
   lost or duplicated (ids unique, all SUCCEEDED, all in ListQueryExecutions), that states only
   move forward (QUEUED -> RUNNING -> SUCCEEDED), and samples the server's RSS every 50 ms.
Prints JSON lines and a summary. Python needs boto3 (the venv scripts/test makes has it).
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

import boto3

quarry = os.environ.get("QUARRY", "target/release/quarry")
clients = int(sys.argv[1]) if len(sys.argv) > 1 else 50
per_client = int(sys.argv[2]) if len(sys.argv) > 2 else 20
repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SQL = "SELECT region, count(*) AS n, sum(amount) AS total FROM demo.sales GROUP BY region"
ORDER = {"QUEUED": 0, "RUNNING": 1, "SUCCEEDED": 2, "FAILED": 2, "CANCELLED": 2}

work = tempfile.mkdtemp(prefix="quarry-serve-load-")
env = dict(os.environ, QUARRY_CATALOG=os.path.join(work, "catalog.db"))
subprocess.run([quarry, "crawl", os.path.join(repo, "sample-data"), "-d", "demo"], env=env,
               check=True, capture_output=True)
s = socket.socket()
s.bind(("127.0.0.1", 0))
port = s.getsockname()[1]
s.close()
server = subprocess.Popen([quarry, "serve", "--listen", f"127.0.0.1:{port}", "--concurrency", "4"],
                          env=env, stderr=subprocess.PIPE, text=True)
server.stderr.readline()
endpoint = f"http://127.0.0.1:{port}"


def client():
    return boto3.client("athena", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="x", aws_secret_access_key="y")


def one(c, seen=None):
    t = time.perf_counter()
    qid = c.start_query_execution(QueryString=SQL)["QueryExecutionId"]
    while True:
        st = c.get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Status"]["State"]
        if seen is not None:
            seen.append(st)
        if st in ("SUCCEEDED", "FAILED", "CANCELLED"):
            break
        time.sleep(0.002)
    rows = c.get_query_results(QueryExecutionId=qid)["ResultSet"]["Rows"]
    assert len(rows) == 4, rows
    return qid, st, time.perf_counter() - t


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


try:
    c = client()
    for _ in range(10):
        one(c)
    lat = [one(c)[2] for _ in range(200)]
    single = {"p50_ms": pct(lat, 50) * 1000, "p99_ms": pct(lat, 99) * 1000}
    print(json.dumps({"phase": "latency", **single}))

    rss = []
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            with open(f"/proc/{server.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS"):
                        rss.append(int(line.split()[1]) / 1024)
            time.sleep(0.05)

    results, errors = [], []
    lock = threading.Lock()

    def worker():
        c = client()
        for _ in range(per_client):
            seen = []
            try:
                qid, st, dt = one(c, seen)
                with lock:
                    results.append((qid, st, dt, seen))
            except Exception as e:  # noqa: BLE001
                with lock:
                    errors.append(repr(e))

    sampler = threading.Thread(target=sample)
    sampler.start()
    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    stop.set()
    sampler.join()
    ids = [r[0] for r in results]
    forward = all(all(ORDER[a] <= ORDER[b] for a, b in zip(r[3], r[3][1:])) for r in results)
    listed = set()
    token = None
    while True:
        kw = {"MaxResults": 50}
        if token:
            kw["NextToken"] = token
        page = c.list_query_executions(**kw)
        listed.update(page["QueryExecutionIds"])
        token = page.get("NextToken")
        if not token:
            break
    load = {
        "phase": "load", "clients": clients, "queries": clients * per_client,
        "succeeded": sum(1 for r in results if r[1] == "SUCCEEDED"), "errors": len(errors),
        "unique_ids": len(set(ids)), "all_listed": set(ids) <= listed,
        "states_forward": forward,
        "queued_seen": sum(1 for r in results if "QUEUED" in r[3]),
        "wall_s": wall, "queries_per_s": len(results) / wall,
        "p50_ms": pct([r[2] for r in results], 50) * 1000,
        "p99_ms": pct([r[2] for r in results], 99) * 1000,
        "server_peak_rss_mb": max(rss) if rss else None,
        "server_rss_start_mb": rss[0] if rss else None,
    }
    print(json.dumps(load))
    if errors:
        print("errors:", errors[:5], file=sys.stderr)
    ok = (load["succeeded"] == load["queries"] and load["unique_ids"] == load["queries"]
          and load["all_listed"] and forward and not errors)
    print(f"\nsingle client: p50 {single['p50_ms']:.1f} ms, p99 {single['p99_ms']:.1f} ms")
    print(f"{clients} clients x {per_client}: {load['queries_per_s']:.0f} queries/s, "
          f"p50 {load['p50_ms']:.0f} ms, p99 {load['p99_ms']:.0f} ms, "
          f"server RSS {load['server_rss_start_mb']:.0f} -> {load['server_peak_rss_mb']:.0f} MB; "
          f"{'no execution lost or duplicated, states in order' if ok else 'CHECKS FAILED'}")
    sys.exit(0 if ok else 1)
finally:
    server.terminate()
    server.wait()
    shutil.rmtree(work, ignore_errors=True)
