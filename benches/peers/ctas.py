#!/usr/bin/env python3
"""CTAS peer benchmark: the TPC-H lineitem CSV.gz lake (year=/month= folders, made by
../shared/bench/setup.sh) rewritten as Parquet zstd partitioned by year/month, by Quarry's
`CREATE TABLE .. AS SELECT` and by DuckDB's `COPY (SELECT ..) TO .. (PARTITION_BY ..)`, in one run.

    QUARRY=path/to/release/quarry python benches/peers/ctas.py LAKE_DIR [RUNS]

Prints one JSON line per run and engine: seconds (Quarry: the statement's elapsed_us from
--stats json, after the crawl; DuckDB: in-process time around COPY), peak RSS of the process
(/usr/bin/time for Quarry, ru_maxrss of a fresh Python process for DuckDB), rows, files and
bytes written. Engines alternate, so both see the same machine noise.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

lake = os.path.abspath(sys.argv[1])
runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
quarry = os.environ.get("QUARRY", "target/release/quarry")
src = os.path.join(lake, "csv", "lineitem")

DUCK = r"""
import duckdb, json, resource, sys, time
src, out = sys.argv[1], sys.argv[2]
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
t = time.perf_counter()
con.execute(f"COPY (SELECT * FROM read_csv('{src}/*/*/*.csv.gz', hive_partitioning=true, header=true, "
            f"types={{'l_returnflag': 'VARCHAR', 'l_linestatus': 'VARCHAR'}})) "
            f"TO '{out}' (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (year, month))")
s = time.perf_counter() - t
rows = con.execute(f"SELECT count(*) FROM read_parquet('{out}/*/*/*.parquet')").fetchone()[0]
print(json.dumps({"seconds": s, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "rows": rows}))
"""


def size_of(folder):
    files, total = 0, 0
    for root, _, names in os.walk(folder):
        for n in names:
            if not n.startswith(".") and not n.startswith("_"):
                files += 1
                total += os.path.getsize(os.path.join(root, n))
    return files, total


def run_quarry(work):
    env = dict(os.environ, QUARRY_CATALOG=os.path.join(work, "catalog.db"))
    subprocess.run([quarry, "crawl", src, "-d", "bench"], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    out = os.path.join(work, "quarry_out")
    sql = (f"CREATE TABLE bench.li_pq WITH (format = 'PARQUET', write_compression = 'ZSTD', "
           f"external_location = '{out}', partitioned_by = ARRAY['year', 'month']) "
           f"AS SELECT * FROM bench.lineitem")
    p = subprocess.run(["/usr/bin/time", "-f", "MAXRSS %M", quarry, "sql", "--stats", "json",
                        "--format", "csv", "-c", sql], env=env, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(p.stderr)
    stats = [json.loads(l) for l in p.stderr.splitlines() if l.startswith("{")][-1]
    rss = [int(l.split()[1]) for l in p.stderr.splitlines() if l.startswith("MAXRSS")][0]
    files, total = size_of(out)
    return {"engine": "quarry", "seconds": stats["elapsed_us"] / 1e6, "peak_rss_mb": rss / 1024,
            "rows": stats["rows_written"], "files": files, "bytes": total,
            "bytes_scanned": stats["bytes_scanned"]}


def run_duckdb(work):
    out = os.path.join(work, "duck_out")
    p = subprocess.run([sys.executable, "-c", DUCK, src, out], capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(p.stderr)
    r = json.loads(p.stdout.strip().splitlines()[-1])
    files, total = size_of(out)
    return dict(engine="duckdb", files=files, bytes=total, **r)


for i in range(runs):
    for engine in (run_quarry, run_duckdb) if i % 2 == 0 else (run_duckdb, run_quarry):
        work = tempfile.mkdtemp(prefix="ctas-bench-")
        try:
            print(json.dumps(dict(run=i, **engine(work))), flush=True)
        finally:
            shutil.rmtree(work, ignore_errors=True)
