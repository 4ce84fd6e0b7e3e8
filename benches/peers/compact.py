#!/usr/bin/env python3
"""Compaction peer benchmark: a lake of 10,000 Parquet objects of ~10 KB in 100 partitions
(`events/dt=2024-01-01 .. dt=2024-04-09`, 100 files of 480 rows each, snappy; generated with a
fixed seed into LAKE_DIR on the first run, reused after), compacted by `quarry compact` and by
DuckDB's `COPY (SELECT * FROM read_parquet(..)) TO .. (PARTITION_BY (dt))`, in one run; and the
same queries timed over the small files and over the compacted ones.

    QUARRY=path/to/release/quarry python benches/peers/compact.py LAKE_DIR [RUNS]

Each run and engine starts from the original files: Quarry crawls a fresh copy of the lake
(copytree, outside the timing) into a fresh catalog, runs the queries, `quarry compact lake.events
--grace 0s --format json`, and the queries again; DuckDB (a fresh Python process) copies the
original files into a new folder (first, so its peak RSS is the COPY's), then runs the queries
over the original files and over its copy. Engines alternate between runs.

Timings: Quarry's queries are the statements' elapsed_us from `--stats json` (one `quarry sql -f`
process running every query QUERY_RUNS times after a warm-up process per query; median), its
compaction the wall clock around the `quarry compact` process (process start, catalog, listing,
rewrite, commit and deleting the replaced files: `--grace 0s`). DuckDB's are in-process around
`execute` / `COPY` (warm-up, then median of QUERY_RUNS). Prints one JSON line per run and engine,
then a summary of medians over the runs. Asserts the rows written and that every query's result
is the same before and after compaction, and the same in both engines.
"""
import csv
import io
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

lake = os.path.abspath(sys.argv[1])
runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
quarry = os.environ.get("QUARRY", "target/release/quarry")
QUERY_RUNS = int(os.environ.get("QUERY_RUNS", "3"))

PARTITIONS, FILES, ROWS = 100, 100, 480
TOTAL_ROWS = PARTITIONS * FILES * ROWS
KINDS = ["click", "view", "buy", "refund", "signup"]

QUERIES = {
    "count_sum": "SELECT count(*), sum(amount) FROM events",
    "group_kind": "SELECT kind, count(*), avg(amount) FROM events GROUP BY kind ORDER BY kind",
    "one_partition": "SELECT count(*), sum(amount) FROM events WHERE dt = '2024-02-15'",
    "point_user": "SELECT count(*), max(amount) FROM events WHERE user_id = 4242",
}


def generate():
    """The lake, once: seeded, so every machine gets the same bytes."""
    import datetime

    import pyarrow as pa
    import pyarrow.parquet as pq

    done = os.path.join(lake, ".generated")
    if os.path.exists(done):
        return
    shutil.rmtree(lake, ignore_errors=True)
    rng = random.Random(20240101)
    next_id = 0
    day = datetime.date(2024, 1, 1)
    for p in range(PARTITIONS):
        folder = os.path.join(lake, "events", f"dt={day + datetime.timedelta(days=p)}")
        os.makedirs(folder)
        for f in range(FILES):
            t = pa.table({
                "id": pa.array(range(next_id, next_id + ROWS), pa.int64()),
                "user_id": pa.array([rng.randrange(100_000) for _ in range(ROWS)], pa.int64()),
                "amount": pa.array([round(rng.uniform(0, 500), 2) for _ in range(ROWS)],
                                   pa.float64()),
                "kind": pa.array([rng.choice(KINDS) for _ in range(ROWS)], pa.string()),
            })
            next_id += ROWS
            pq.write_table(t, os.path.join(folder, f"part-{f:05}.parquet"), compression="snappy")
    # A second dataset beside it, so the crawl names `events` a table of its own.
    os.makedirs(os.path.join(lake, "other"))
    with open(os.path.join(lake, "other", "x.csv"), "w") as f:
        f.write("a,b\n1,x\n2,y\n")
    open(done, "w").close()


def size_of(folder, suffix=".parquet"):
    files, total = 0, 0
    for root, _, names in os.walk(folder):
        for n in names:
            if n.endswith(suffix):
                files += 1
                total += os.path.getsize(os.path.join(root, n))
    return files, total


def same(a, b):
    """Two result tables equal, floats to 1e-9 relative (sums depend on the order of rows)."""
    if len(a) != len(b):
        return False
    for ra, rb in zip(a, b):
        if len(ra) != len(rb):
            return False
        for x, y in zip(ra, rb):
            try:
                fx, fy = float(x), float(y)
            except (TypeError, ValueError):
                if str(x) != str(y):
                    return False
                continue
            if abs(fx - fy) > 1e-9 * max(1.0, abs(fx), abs(fy)):
                return False
    return True


# --- Quarry -------------------------------------------------------------------------------

def quarry_queries(env):
    """Each query once in its own process (warm-up; its result kept), then one `quarry sql -f`
    running every query QUERY_RUNS times; median elapsed_us per query."""
    out = {}
    for name, q in QUERIES.items():
        p = subprocess.run([quarry, "sql", "-d", "lake", "--format", "csv", "--stats", "json",
                            "-c", q], env=env, capture_output=True, text=True)
        if p.returncode != 0:
            raise SystemExit(f"quarry sql {q!r}: {p.stderr}")
        stats = [json.loads(l) for l in p.stderr.splitlines() if l.startswith("{")][-1]
        rows = list(csv.reader(io.StringIO(p.stdout)))[1:]
        out[name] = {"result": rows, "first_s": stats["elapsed_us"] / 1e6,
                     "scan": stats["scans"][0] if stats["scans"] else None}
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
        for name, q in QUERIES.items():
            for _ in range(QUERY_RUNS):
                f.write(q + ";\n")
    p = subprocess.run([quarry, "sql", "-d", "lake", "-f", f.name, "--format", "csv", "--stats",
                        "json"], env=env, capture_output=True, text=True)
    os.unlink(f.name)
    stats = [json.loads(l) for l in p.stderr.splitlines() if l.startswith("{")]
    if p.returncode != 0 or len(stats) != QUERY_RUNS * len(QUERIES):
        raise SystemExit(f"quarry sql -f: {p.stderr[-2000:]}")
    for i, name in enumerate(QUERIES):
        rs = stats[i * QUERY_RUNS:(i + 1) * QUERY_RUNS]
        out[name]["seconds"] = statistics.median(r["elapsed_us"] for r in rs) / 1e6
        out[name]["planning_ms"] = statistics.median(r["planning_ms"] for r in rs)
    return out


def run_quarry(work):
    root = os.path.join(work, "lake")
    shutil.copytree(lake, root, ignore=shutil.ignore_patterns(".generated"))
    env = dict(os.environ, QUARRY_CATALOG=os.path.join(work, "catalog.db"))
    t = time.perf_counter()
    subprocess.run([quarry, "crawl", root, "-d", "lake"], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    crawl_s = time.perf_counter() - t
    before = quarry_queries(env)
    t = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-f", "MAXRSS %M %U %S", quarry, "compact", "lake.events",
                        "--grace", "0s", "--format", "json"],
                       env=env, capture_output=True, text=True)
    compact_s = time.perf_counter() - t
    if p.returncode != 0:
        raise SystemExit(f"quarry compact: exit {p.returncode}\n{p.stdout}\n{p.stderr}")
    report = json.loads(p.stdout)
    rss, user, system = [l.split()[1:] for l in p.stderr.splitlines() if l.startswith("MAXRSS")][0]
    assert report["rows"] == TOTAL_ROWS, report
    after = quarry_queries(env)
    for name in QUERIES:
        assert same(before[name]["result"], after[name]["result"]), \
            (name, before[name]["result"], after[name]["result"])
    files, total = size_of(os.path.join(root, "events"))
    return {
        "engine": "quarry", "crawl_s": crawl_s, "compact_s": compact_s,
        "compact_cpu_s": float(user) + float(system), "peak_rss_mb": int(rss) / 1024,
        "rows": report["rows"], "partitions_compacted": report["partitions_compacted"],
        "files_before": report["files_before"], "files_after": report["files_after"],
        "bytes_before": report["bytes_before"], "bytes_after": report["bytes_after"],
        "retired_deleted": report["retired_deleted"], "files_left_on_disk": files,
        "bytes_left_on_disk": total,
        "query_before_s": {n: before[n]["seconds"] for n in QUERIES},
        "query_after_s": {n: after[n]["seconds"] for n in QUERIES},
        "query_first_before_s": {n: before[n]["first_s"] for n in QUERIES},
        "query_first_after_s": {n: after[n]["first_s"] for n in QUERIES},
        "planning_ms_before": {n: before[n]["planning_ms"] for n in QUERIES},
        "planning_ms_after": {n: after[n]["planning_ms"] for n in QUERIES},
        "scan_before": {n: before[n]["scan"] for n in QUERIES},
        "scan_after": {n: after[n]["scan"] for n in QUERIES},
        "results": {n: after[n]["result"] for n in QUERIES},
    }


# --- DuckDB -------------------------------------------------------------------------------

DUCK = r"""
import duckdb, json, resource, statistics, sys, time
src, out, queries, n = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), int(sys.argv[4])
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")

def timed(view):
    con.execute(f"CREATE OR REPLACE VIEW events AS SELECT * FROM {view}")
    res = {}
    for name, q in queries.items():
        rows = con.execute(q).fetchall()
        times = []
        for _ in range(n):
            t = time.perf_counter()
            con.execute(q).fetchall()
            times.append(time.perf_counter() - t)
        res[name] = {"seconds": statistics.median(times),
                     "result": [[str(v) for v in r] for r in rows]}
    return res

small = f"read_parquet('{src}/events/*/*.parquet', hive_partitioning=true)"
# COPY first, in the fresh process, so the peak RSS is the COPY's (the source files are not
# changed by it, so the order does not matter to the queries).
t, c = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
con.execute(f"COPY (SELECT * FROM {small}) TO '{out}' (FORMAT parquet, PARTITION_BY (dt))")
s = time.perf_counter() - t
c2 = resource.getrusage(resource.RUSAGE_SELF)
cpu = c2.ru_utime + c2.ru_stime - c.ru_utime - c.ru_stime
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
before = timed(small)
after = timed(f"read_parquet('{out}/*/*.parquet', hive_partitioning=true)")
rows = con.execute("SELECT count(*) FROM events").fetchone()[0]
print(json.dumps({"seconds": s, "cpu_s": cpu, "peak_rss_mb": rss, "rows": rows,
                  "before": before, "after": after}))
"""


def run_duckdb(work):
    out = os.path.join(work, "duck_out")
    p = subprocess.run([sys.executable, "-c", DUCK, lake, out, json.dumps(QUERIES),
                        str(QUERY_RUNS)], capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"duckdb: {p.stderr}")
    r = json.loads(p.stdout.strip().splitlines()[-1])
    assert r["rows"] == TOTAL_ROWS, r["rows"]
    for name in QUERIES:
        assert same(r["before"][name]["result"], r["after"][name]["result"]), name
    files, total = size_of(out)
    return {
        "engine": "duckdb", "compact_s": r["seconds"], "compact_cpu_s": r["cpu_s"],
        "peak_rss_mb": r["peak_rss_mb"],
        "rows": r["rows"], "files_before": PARTITIONS * FILES, "files_after": files,
        "bytes_after": total,
        "query_before_s": {n: r["before"][n]["seconds"] for n in QUERIES},
        "query_after_s": {n: r["after"][n]["seconds"] for n in QUERIES},
        "results": {n: r["after"][n]["result"] for n in QUERIES},
    }


# --- main ---------------------------------------------------------------------------------

generate()
results = {"quarry": [], "duckdb": []}
for i in range(runs):
    for engine in (run_quarry, run_duckdb) if i % 2 == 0 else (run_duckdb, run_quarry):
        work = tempfile.mkdtemp(prefix="compact-bench-")
        try:
            r = engine(work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        results[r["engine"]].append(r)
        print(json.dumps(dict(run=i, **r)), flush=True)

q, d = results["quarry"], results["duckdb"]
for name in QUERIES:
    assert same(q[0]["results"][name], d[0]["results"][name]), \
        (name, q[0]["results"][name], d[0]["results"][name])


def med(rs, *path):
    vals = []
    for r in rs:
        v = r
        for k in path:
            v = v[k]
        vals.append(v)
    return statistics.median(vals)


summary = {"runs": runs, "rows": q[0]["rows"], "files_before": q[0]["files_before"],
           "quarry_files_after": q[0]["files_after"], "duckdb_files_after": d[0]["files_after"],
           "quarry_bytes_before": q[0]["bytes_before"], "quarry_bytes_after": q[0]["bytes_after"],
           "duckdb_bytes_after": d[0]["bytes_after"],
           "quarry_compact_s": med(q, "compact_s"), "duckdb_copy_s": med(d, "compact_s"),
           "quarry_compact_s_range": [min(r["compact_s"] for r in q),
                                      max(r["compact_s"] for r in q)],
           "duckdb_copy_s_range": [min(r["compact_s"] for r in d), max(r["compact_s"] for r in d)],
           "quarry_compact_cpu_s": med(q, "compact_cpu_s"),
           "duckdb_copy_cpu_s": med(d, "compact_cpu_s"),
           "quarry_peak_rss_mb": med(q, "peak_rss_mb"), "duckdb_peak_rss_mb": med(d, "peak_rss_mb"),
           "queries": {}}
summary["compact_ratio_quarry_over_duckdb"] = summary["quarry_compact_s"] / summary["duckdb_copy_s"]
for name in QUERIES:
    qb, qa = med(q, "query_before_s", name), med(q, "query_after_s", name)
    db, da = med(d, "query_before_s", name), med(d, "query_after_s", name)
    summary["queries"][name] = {
        "quarry_before_s": qb, "quarry_after_s": qa, "quarry_after_over_before": qa / qb,
        "duckdb_before_s": db, "duckdb_after_s": da, "duckdb_after_over_before": da / db,
        "quarry_over_duckdb_before": qb / db, "quarry_over_duckdb_after": qa / da,
    }
print(json.dumps({"summary": summary}, indent=1))
