#!/usr/bin/env python3
"""Join planning with statistics: TPC-H SF1 lineitem x orders (one Parquet file per table,
tpchgen-cli), filtered joins where the build side decides the time. Quarry builds (one or two
binaries, e.g. before and after a change) and DataFusion-python on the same files, in one run.

    QUARRY=new/quarry QUARRY_BEFORE=old/quarry python benches/peers/join_stats.py TPCH_DIR [RUNS]

TPCH_DIR holds lineitem/lineitem.parquet and orders/orders.parquet
(`tpchgen-cli parquet -s 1 -T orders -o DIR/orders`, likewise lineitem). Quarry's time is each
statement's elapsed_us from `--stats json` after a warm-up; DataFusion's is in-process around
collect(). Prints the median per engine and query and the ratio to DataFusion.
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

tpch = os.path.abspath(sys.argv[1])
runs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
QUERIES = {
    "join_filtered_lineitem": "SELECT o_orderpriority, count(*) AS n FROM lineitem JOIN orders "
                              "ON l_orderkey = o_orderkey WHERE l_shipdate > DATE '1995-01-01' "
                              "GROUP BY o_orderpriority ORDER BY o_orderpriority",
    "join_filtered_orders": "SELECT count(*) AS n FROM orders JOIN lineitem ON o_orderkey = l_orderkey "
                            "WHERE o_orderdate >= DATE '1995-01-01' AND o_orderdate < DATE '1995-04-01' "
                            "AND l_commitdate < l_receiptdate",
}


def quarry(binary, label):
    work = tempfile.mkdtemp(prefix="quarry-join-")
    env = dict(os.environ, QUARRY_CATALOG=os.path.join(work, "c.db"))
    subprocess.run([binary, "crawl", tpch, "-d", "tpch"], env=env, check=True, capture_output=True)
    out = {}
    for name, sql in QUERIES.items():
        script = os.path.join(work, "q.sql")
        with open(script, "w") as f:
            f.write(";\n".join([sql] * (runs + 1)) + ";\n")
        p = subprocess.run([binary, "sql", "-d", "tpch", "-f", script, "--format", "csv", "--stats", "json"],
                           env=env, capture_output=True, text=True, check=True)
        stats = [json.loads(l) for l in p.stderr.splitlines() if l.startswith("{")]
        times = [s["elapsed_us"] / 1e6 for s in stats][1:]
        out[name] = statistics.median(times)
        print(json.dumps({"engine": label, "query": name, "median_s": out[name]}), flush=True)
    return out


def datafusion():
    from datafusion import SessionContext
    ctx = SessionContext()
    ctx.register_parquet("lineitem", os.path.join(tpch, "lineitem"))
    ctx.register_parquet("orders", os.path.join(tpch, "orders"))
    out = {}
    for name, sql in QUERIES.items():
        ctx.sql(sql).collect()
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            ctx.sql(sql).collect()
            times.append(time.perf_counter() - t)
        out[name] = statistics.median(times)
        print(json.dumps({"engine": "datafusion", "query": name, "median_s": out[name]}), flush=True)
    return out


results = {"datafusion": datafusion(), "quarry": quarry(os.environ.get("QUARRY", "target/release/quarry"), "quarry")}
if os.environ.get("QUARRY_BEFORE"):
    results["quarry-before"] = quarry(os.environ["QUARRY_BEFORE"], "quarry-before")
print()
for name in QUERIES:
    df = results["datafusion"][name]
    line = f"{name}: DataFusion {df:.3f} s"
    for engine in ("quarry-before", "quarry"):
        if engine in results:
            line += f", {engine} {results[engine][name]:.3f} s ({results[engine][name] / df:.2f}x)"
    print(line)
