#!/usr/bin/env python3
"""Partition projection benchmark (issue 12): five years of hourly partitions (43,800 folders
`logs/YYYY/MM/DD/HH/`, one tiny CSV each, generated once into LAKE_DIR), read as a table with
Athena's partition projection (`date` key `dh`, format `yyyy/MM/dd/HH`, one-hour interval,
`storage.location.template`) and, in the same run, as the crawled table (unnamed partitions
`partition_0..3`, 43,800 catalogued partitions) for comparison.

    QUARRY=path/to/release/quarry python benches/peers/projection.py LAKE_DIR [QUERY_RUNS]

One `quarry sql -f` process runs each query QUERY_RUNS times after one warm-up; reported per
query: the median planning_ms and elapsed_us from `--stats json`, the partitions selected and
the projected / total counts. Asserts one listed prefix for the hour, 168 for the week, and the
same answers from both tables.
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile

lake = os.path.abspath(sys.argv[1])
runs = int(sys.argv[2]) if len(sys.argv) > 2 else 10
quarry = os.environ.get("QUARRY", "target/release/quarry")
HOURS = 43_800


def generate():
    import datetime

    done = os.path.join(lake, ".generated")
    if os.path.exists(done):
        return
    t = datetime.datetime(2020, 1, 1)
    for i in range(HOURS):
        d = os.path.join(lake, "logs", t.strftime("%Y/%m/%d/%H"))
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "part-0.csv"), "w") as f:
            f.write("id,amount\n")
            for r in range(3):
                f.write(f"{i * 3 + r},{r}.5\n")
        t += datetime.timedelta(hours=1)
    open(done, "w").close()


def sql(catalog, statements, stats=True):
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
        f.write(";\n".join(statements) + ";\n")
    args = [quarry, "sql", "-d", "bench", "-f", f.name, "--format", "csv"]
    if stats:
        args += ["--stats", "json"]
    p = subprocess.run(args, capture_output=True, text=True,
                       env={**os.environ, "QUARRY_CATALOG": catalog})
    if p.returncode != 0:
        sys.exit(f"quarry sql failed: {p.stderr}")
    return p, [json.loads(l) for l in p.stderr.splitlines() if l.startswith("{")]


def main():
    generate()
    work = tempfile.mkdtemp()
    catalog = os.path.join(work, "catalog.db")
    env = {**os.environ, "QUARRY_CATALOG": catalog}
    subprocess.run([quarry, "crawl", os.path.join(lake, "logs"), "-d", "bench", "--json"],
                   check=True, env=env, capture_output=True)
    root = "file://" + os.path.join(lake, "logs")
    end = "2024/12/29/23"  # the 43,800th hour from 2020/01/01/00
    sql(catalog, [
        "CREATE EXTERNAL TABLE bench.projected (id bigint, amount double) PARTITIONED BY (dh string) "
        "ROW FORMAT DELIMITED FIELDS TERMINATED BY ',' "
        f"LOCATION '{root}/' TBLPROPERTIES ('skip.header.line.count'='1', "
        "'projection.enabled'='true', 'projection.dh.type'='date', "
        "'projection.dh.format'='yyyy/MM/dd/HH', "
        f"'projection.dh.range'='2020/01/01/00,{end}', 'projection.dh.interval'='1', "
        "'projection.dh.interval.unit'='HOURS', "
        f"'storage.location.template'='{root}/${{dh}}/')"
    ], stats=False)
    queries = {
        "projected_hour": "SELECT count(*), sum(amount) FROM projected WHERE dh = '2022/03/04/05'",
        "catalogued_hour": "SELECT count(*), sum(amount) FROM logs WHERE partition_0 = 2022 "
                           "AND partition_1 = 3 AND partition_2 = 4 AND partition_3 = 5",
        "projected_week": "SELECT count(*), sum(amount) FROM projected "
                          "WHERE dh >= '2022/03/01/00' AND dh < '2022/03/08/00'",
        "catalogued_week": "SELECT count(*), sum(amount) FROM logs WHERE partition_0 = 2022 "
                           "AND partition_1 = 3 AND partition_2 BETWEEN 1 AND 7",
    }
    results = {}
    for name, q in queries.items():
        p, stats = sql(catalog, [q] * (runs + 1))
        stats = stats[1:]
        scan = stats[0]["scans"][0]
        results[name] = {
            "planning_ms": statistics.median(s["planning_ms"] for s in stats),
            "elapsed_ms": statistics.median(s["elapsed_us"] for s in stats) / 1000,
            "partitions_selected": scan["partitions_selected"],
            "partitions_total": scan["partitions_total"],
            "projected": scan.get("projected"),
            "answer": p.stdout.splitlines()[1],
        }
        print(json.dumps({"query": name, **results[name]}))
    assert results["projected_hour"]["partitions_selected"] == 1
    assert results["projected_week"]["partitions_selected"] == 168
    assert results["projected_hour"]["answer"] == results["catalogued_hour"]["answer"]
    assert results["projected_week"]["answer"] == results["catalogued_week"]["answer"]


main()
