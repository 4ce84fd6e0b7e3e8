#!/usr/bin/env python3
"""What scanning 1 TB would cost on AWS Lambda with Quarry, from its measured scan throughput,
beside Athena's $5 per TB scanned; per format of the lake benchmark.

    QUARRY=target/release/quarry python benches/peers/lambda_cost.py LAKE_DIR [RUNS]

LAKE_DIR is ../shared/bench's lake (`setup.sh`: TPC-H lineitem as a Hive lake in parquet/,
csv/ (gzip) and json/). Each format is crawled into a fresh embedded catalog, then TPC-H Q1
over the whole table (7 of 16 columns, every row) runs RUNS times after a warm-up in one
`quarry sql -f --stats json`, with DataFusion's threads set to 1 and to the machine's cores.
Throughput is the statement's billed-basis bytes (`bytes_scanned`: the compressed bytes read
from storage, what Athena bills) over its elapsed time, the median of RUNS.

Lambda gives a function CPU in proportion to its memory: 1,769 MB is one full vCPU, 10,240 MB
six. The 1,769 MB figure uses the 1-thread throughput; the 10,240 MB figure scales the measured
multi-thread throughput per core to six cores, which assumes linear scaling past the cores this
machine has (the run prints the scaling it measured). Price: $0.0000166667 per GB-second (x86,
us-east-1), GB = MB / 1024; request charges ($0.20 per million) are left out. Files are read
from local disk here; on Lambda they come from S3, whose per-function bandwidth can be the limit
for the faster formats, so these are lower bounds on time and cost.
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile

PRICE_GB_S = 0.0000166667
ATHENA_PER_TB = 5.0
TB = 10**12
Q1 = """SELECT l_returnflag, l_linestatus, sum(l_quantity) AS sum_qty,
    sum(l_extendedprice) AS sum_base_price, sum(l_extendedprice*(1-l_discount)) AS sum_disc_price,
    avg(l_quantity) AS avg_qty, avg(l_discount) AS avg_disc, count(*) AS count_order
    FROM lineitem WHERE l_shipdate <= DATE '1998-09-02'
    GROUP BY l_returnflag, l_linestatus ORDER BY l_returnflag, l_linestatus"""

if len(sys.argv) < 2:
    sys.exit(__doc__)
lake = os.path.abspath(sys.argv[1])
runs = max(1, int(sys.argv[2])) if len(sys.argv) > 2 else 3
exe = os.environ.get("QUARRY", "quarry")
cores = os.cpu_count() or 1


def throughput(fmt, threads):
    """(median bytes/s, bytes scanned, median seconds) of Q1 over LAKE/fmt with `threads`."""
    catalog = os.path.join(tempfile.mkdtemp(), "catalog.db")
    env = dict(os.environ, QUARRY_CATALOG=catalog, DATAFUSION_EXECUTION_TARGET_PARTITIONS=str(threads))
    subprocess.run([exe, "crawl", f"{lake}/{fmt}/lineitem", "--database", "bench"], env=env,
                   check=True, stdout=subprocess.DEVNULL)
    script = os.path.join(os.path.dirname(catalog), "q.sql")
    with open(script, "w") as f:
        f.write((Q1 + ";\n") * (runs + 1))
    p = subprocess.run([exe, "sql", "-d", "bench", "-f", script, "--format", "csv", "--stats", "json"],
                       env=env, capture_output=True, text=True)
    stats = [json.loads(line) for line in p.stderr.splitlines() if line.startswith("{")]
    if p.returncode != 0 or len(stats) != runs + 1:
        sys.exit(f"{fmt}: quarry failed: {p.stderr[-500:]}")
    timed = stats[1:]
    seconds = statistics.median(s["elapsed_us"] / 1e6 for s in timed)
    scanned = timed[0]["bytes_scanned"]
    return scanned / seconds, scanned, seconds


rows = []
for fmt in ("parquet", "csv", "json"):
    if not os.path.isdir(f"{lake}/{fmt}/lineitem"):
        continue
    one, scanned, s1 = throughput(fmt, 1)
    many, _, sn = throughput(fmt, cores)
    per_core = many / cores
    scaling = many / one
    small = TB / one * (1769 / 1024) * PRICE_GB_S
    big = TB / (per_core * 6) * (10240 / 1024) * PRICE_GB_S
    row = {"format": fmt, "bytes_scanned": scanned, "s_1_thread": round(s1, 4),
           f"s_{cores}_threads": round(sn, 4), "MBps_1_thread": round(one / 1e6, 1),
           f"MBps_{cores}_threads": round(many / 1e6, 1), "scaling": round(scaling, 2),
           "usd_per_TB_1769MB": round(small, 3), "usd_per_TB_10240MB": round(big, 3)}
    rows.append(row)
    print(json.dumps(row), flush=True)

print()
print(f"| format | scanned (Q1, SF of the lake) | MB/s, 1 thread | MB/s, {cores} threads (scaling) "
      "| $ per TB, 1,769 MB Lambda | $ per TB, 10,240 MB Lambda | Athena |")
print("|---|---|---|---|---|---|---|")
for r in rows:
    print(f"| {r['format']} | {r['bytes_scanned'] / 1e6:.1f} MB | {r['MBps_1_thread']} "
          f"| {r[f'MBps_{cores}_threads']} ({r['scaling']}x) | ${r['usd_per_TB_1769MB']:.2f} "
          f"| ${r['usd_per_TB_10240MB']:.2f} | ${ATHENA_PER_TB:.2f} |")
