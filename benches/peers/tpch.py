#!/usr/bin/env python3
"""TPC-H, all 22 queries (benches/peers/tpch/qNN.sql, the specification's text with its validation
parameters), on the same Parquet files through DuckDB, DataFusion-python and Quarry in one run,
every answer checked against DuckDB's.

    QUARRY=target/release/quarry python benches/peers/tpch.py DATA_DIR [RUNS]

Environment: SF (default 1) is the scale factor generated when a table is missing;
MEMORY_LIMIT=4GB runs every engine under that memory limit (spilling where it can);
ENGINES=duckdb,datafusion,quarry selects the timed engines (DuckDB always answers, as the
reference); QUERIES=q01,q05 selects queries; TPCHGEN is the tpchgen-cli binary (default: on PATH
or beside this Python).

DATA_DIR holds one folder and one file per table, <table>/<table>.parquet; missing tables are
generated with `tpchgen-cli parquet -s SF -T <table> -o DATA_DIR/<table>` (existing files are used
whatever their scale). Quarry crawls DATA_DIR into a fresh embedded catalog (database tpch), then
runs each query RUNS + 1 times in one `quarry sql -f --stats json`; its time is each statement's
elapsed_us, the first (warm-up) dropped, and its answer is the CSV of the first run. DuckDB (views
over read_parquet) and DataFusion (register_parquet) are timed in process around the query up to an
Arrow result, after one warm-up run. Prints one JSON line per engine and query (median seconds,
rows, whether the answer matches DuckDB's), then a markdown table with the ratios and Quarry's peak
RSS. Exits non-zero if any answer differs from DuckDB's or any query fails.
"""
import csv
import datetime
import decimal
import io
import json
import math
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
# MEMORY_LIMIT=4GB: every engine runs under it (DuckDB's memory_limit, DataFusion's fair spill
# pool, Quarry's --memory-limit); bytes, or a size with KB / MB / GB.
MEMORY_LIMIT = (lambda v: int(float(v[:-2]) * {"KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30}[v[-2:].upper()])
                if v[-2:].upper() in ("KB", "MB", "GB") else int(v))(os.environ["MEMORY_LIMIT"]) \
    if os.environ.get("MEMORY_LIMIT") else None
TABLES = ("region", "nation", "supplier", "customer", "part", "partsupp", "orders", "lineitem")
ENGINE_NAMES = {"duckdb": "DuckDB", "datafusion": "DataFusion", "quarry": "Quarry"}

if len(sys.argv) < 2:
    sys.exit(__doc__)
data = os.path.abspath(sys.argv[1])
runs = max(1, int(sys.argv[2])) if len(sys.argv) > 2 else 3
engines = os.environ.get("ENGINES", "duckdb,datafusion,quarry").split(",")
names = os.environ.get("QUERIES", ",".join(f"q{i:02}" for i in range(1, 23))).split(",")
queries = {}
for name in names:
    with open(os.path.join(HERE, "tpch", f"{name}.sql")) as f:
        queries[name] = f.read().strip().rstrip(";")


def table_file(table):
    return os.path.join(data, table, f"{table}.parquet")


def generate():
    missing = [t for t in TABLES if not os.path.exists(table_file(t))]
    if not missing:
        return
    sf = os.environ.get("SF", "1")
    gen = os.environ.get("TPCHGEN") or shutil.which("tpchgen-cli") \
        or os.path.join(os.path.dirname(sys.executable), "tpchgen-cli")
    for table in missing:
        print(f"generating {table} at SF {sf} into {data}/{table}", file=sys.stderr, flush=True)
        subprocess.run([gen, "parquet", "-s", sf, "-T", table, "-o", os.path.join(data, table), "-q"],
                       check=True)


# ---- answers: normalise, then compare with DuckDB's ----

def norm(v):
    """A cell as a float (numbers), ISO text (dates), stripped text, or None (NULL, empty text)."""
    if v is None:
        return None
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, (int, float, decimal.Decimal)):
        return float(v)
    if isinstance(v, (datetime.date, datetime.datetime)):
        return v.isoformat()
    s = str(v).strip()
    return s if s else None


def coerce(rows, numeric):
    """Rows of another engine with the reference's numeric columns as floats (Quarry's CSV is text)."""
    out = []
    for row in rows:
        cells = []
        for i, v in enumerate(row):
            v = norm(v)
            if numeric[i] and isinstance(v, str):
                try:
                    v = float(v)
                except ValueError:
                    pass
            cells.append(v)
        out.append(tuple(cells))
    return out


def cell_eq(a, b):
    if isinstance(a, float) and isinstance(b, float):
        # decimal(.., 6) averages and quotients against DuckDB's doubles differ in the 7th decimal
        return math.isclose(a, b, rel_tol=1e-6, abs_tol=5e-6)
    return a == b


def sort_key(row):
    return tuple((0, "") if v is None else (1, round(v, 2), "") if isinstance(v, float) else (2, 0, v)
                 for v in row)


def order_keys(sql, columns):
    """Indexes of the outer ORDER BY's columns in the result, [] without one, None if not plain names."""
    text = re.sub(r"--[^\n]*", "", sql)
    found = list(re.finditer(r"\border\s+by\b", text, re.I))
    if not found:
        return []
    tail = re.sub(r"\blimit\s+\d+\s*$", "", text[found[-1].end():].strip(), flags=re.I)
    if tail.count(")") > tail.count("("):
        return []  # the last ORDER BY is inside a subquery
    lower = [c.lower() for c in columns]
    keys = []
    for item in tail.split(","):
        name = item.split()[0].lower() if item.split() else ""
        if name not in lower:
            return None
        keys.append(lower.index(name))
    return keys


def compare(ref, rows, keys):
    """None if rows match the reference answer, else what differs. With an ORDER BY, rows keep their
    order except within a run of equal sort keys (ties may come in any order)."""
    columns, expected = ref[0], [tuple(norm(v) for v in r) for r in ref[1]]
    if len(rows) != len(expected):
        return f"{len(rows)} rows, DuckDB has {len(expected)}"
    if any(len(r) != len(columns) for r in rows):
        return f"{len(rows[0])} columns, DuckDB has {len(columns)}"
    numeric = [any(isinstance(r[i], float) for r in expected) for i in range(len(columns))]
    got = coerce(rows, numeric)
    if keys is None:  # ORDER BY on expressions: strict order
        segments = [(i, i + 1) for i in range(len(expected))]
    elif not keys:  # no ORDER BY: any order
        segments = [(0, len(expected))]
    else:
        segments, start = [], 0
        for i in range(1, len(expected) + 1):
            if i == len(expected) or [expected[i][k] for k in keys] != [expected[start][k] for k in keys]:
                segments.append((start, i))
                start = i
    for lo, hi in segments:
        want = sorted(expected[lo:hi], key=sort_key)
        have = sorted(got[lo:hi], key=sort_key)
        for i, (w, h) in enumerate(zip(want, have)):
            if not all(cell_eq(a, b) for a, b in zip(w, h)):
                where = f"row {lo + 1}" if hi - lo == 1 else f"rows {lo + 1}..{hi} (in any order)"
                return f"{where}: got {h}, DuckDB {w}"
    return None


# ---- engines ----

def in_process(run):
    """Time run(sql), which returns an Arrow table, after a warm-up; the warm-up's answer is kept."""
    out = {}
    for name, sql in queries.items():
        try:
            answer = arrow_answer(run(sql))
            times = []
            for _ in range(runs):
                t = time.perf_counter()
                run(sql)
                times.append(time.perf_counter() - t)
            out[name] = {"median_s": statistics.median(times), "answer": answer}
        except Exception as e:  # a failed query is reported, the others still run
            out[name] = {"error": str(e).strip().splitlines()[0][:300]}
    return out


def arrow_answer(table):
    return table.column_names, [tuple(r) for r in zip(*(c.to_pylist() for c in table.columns))] \
        if table.num_columns else []


def duckdb_engine():
    import duckdb
    con = duckdb.connect()
    if MEMORY_LIMIT:
        con.execute(f"SET memory_limit = '{MEMORY_LIMIT}B'")
    for t in TABLES:
        con.execute(f"CREATE VIEW {t} AS SELECT * FROM read_parquet('{table_file(t)}')")

    def run(sql):
        rel = con.sql(sql)
        return rel.to_arrow_table() if hasattr(rel, "to_arrow_table") else rel.arrow()
    return in_process(run)


def datafusion_engine():
    import pyarrow
    from datafusion import RuntimeEnvBuilder, SessionConfig, SessionContext
    if MEMORY_LIMIT:
        runtime = RuntimeEnvBuilder().with_disk_manager_os().with_fair_spill_pool(MEMORY_LIMIT)
        ctx = SessionContext(SessionConfig(), runtime)
    else:
        ctx = SessionContext()
    for t in TABLES:
        ctx.register_parquet(t, os.path.join(data, t))

    def run(sql):
        df = ctx.sql(sql)
        return pyarrow.Table.from_batches(df.collect(), schema=df.schema())
    return in_process(run)


def quarry_engine():
    binary = os.environ.get("QUARRY", "target/release/quarry")
    work = tempfile.mkdtemp(prefix="quarry-tpch-")
    env = dict(os.environ, QUARRY_CATALOG=os.path.join(work, "catalog.db"))
    if MEMORY_LIMIT:
        env["QUARRY_MEMORY_LIMIT"] = str(MEMORY_LIMIT)

    def quarry(*args):
        p = subprocess.run([binary, *args], env=env, capture_output=True, text=True)
        if p.returncode != 0:
            sys.exit(f"quarry {' '.join(args)} failed: {p.stderr.strip()}")
        return p.stdout

    def tables():
        return sorted(quarry("sql", "-d", "tpch", "-c", "SHOW TABLES", "--format", "csv").split()[1:])

    quarry("crawl", data, "-d", "tpch")
    if tables() != sorted(TABLES):  # the parent did not give one table per folder: crawl each
        env["QUARRY_CATALOG"] = os.path.join(work, "catalog-per-table.db")
        for t in TABLES:
            quarry("crawl", os.path.join(data, t), "-d", "tpch")
        if tables() != sorted(TABLES):
            sys.exit(f"quarry crawl of {data} gave tables {tables()}, expected {sorted(TABLES)}")
    timer = ["/usr/bin/time", "-v"] if os.access("/usr/bin/time", os.X_OK) else []
    out = {}
    for name, sql in queries.items():
        script = os.path.join(work, f"{name}.sql")
        with open(script, "w") as f:
            f.write(";\n".join([sql] * (runs + 1)) + ";\n")
        p = subprocess.run(timer + [binary, "sql", "-d", "tpch", "-f", script, "--format", "csv",
                                    "--stats", "json"], env=env, capture_output=True, text=True)
        # /usr/bin/time appends its report to the command's stderr
        err, usage = (re.split(r"^(?=\tCommand being timed:|Command exited with non-zero status)",
                               p.stderr, maxsplit=1, flags=re.M) + [""])[:2]
        rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", usage)
        stats = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
        result = {"peak_rss_mb": int(rss.group(1)) / 1024 if rss else None}
        failed = [s for s in stats if s.get("state") != "SUCCEEDED"]
        if p.returncode != 0 or failed or len(stats) != runs + 1:
            message = failed[0].get("error") if failed and failed[0].get("error") else None
            lines = [line for line in err.splitlines() if line.strip() and not line.startswith("{")
                     and not re.match(r"^\d+ rows? ·", line)]
            result["error"] = (message or " | ".join(lines) or f"exit {p.returncode}")[:500]
        else:
            records = list(csv.reader(io.StringIO(p.stdout)))
            n = stats[0]["rows"]
            result["median_s"] = statistics.median(s["elapsed_us"] / 1e6 for s in stats[1:])
            result["answer"] = (records[0], [tuple(r) for r in records[1:1 + n]])
        out[name] = result
    shutil.rmtree(work, ignore_errors=True)
    return out


# ---- run, check, report ----

generate()
results = {"duckdb": duckdb_engine()}
for engine, run_engine in (("datafusion", datafusion_engine), ("quarry", quarry_engine)):
    if engine in engines:
        results[engine] = run_engine()

failures = 0
for engine in ("duckdb", "datafusion", "quarry"):
    if engine not in engines:
        continue
    for name, sql in queries.items():
        r = results[engine][name]
        ref = results["duckdb"][name].get("answer")
        line = {"engine": engine, "query": name, "median_s": r.get("median_s"),
                "rows": len(r["answer"][1]) if "answer" in r else None}
        if "error" in r:
            r["ok"] = False
            line["error"] = r["error"]
            print(f"ERROR {engine} {name}: {r['error']}", flush=True)
        elif engine == "duckdb":
            r["ok"] = True
        elif ref is None:
            r["ok"] = None  # DuckDB failed: nothing to check against
        else:
            diff = compare(ref, r["answer"][1], order_keys(sql, ref[0]))
            r["ok"] = diff is None
            if diff:
                print(f"MISMATCH {engine} {name}: {diff}", flush=True)
        line["ok"] = r["ok"]
        if engine == "quarry":
            line["peak_rss_mb"] = r.get("peak_rss_mb")
        failures += r["ok"] is not True
        print(json.dumps(line), flush=True)


def cell(engine, name):
    r = results[engine][name]
    if "error" in r:
        return "error"
    return f"{r['median_s']:.3f}" + ("" if r["ok"] else " (wrong)")


def ratio(a, b):
    return f"{a / b:.2f}x" if a is not None and b else ""


shown = [e for e in ("duckdb", "datafusion", "quarry") if e in engines]
peers = [e for e in ("duckdb", "datafusion") if e in shown] if "quarry" in shown else []
rss_column = ["Quarry peak RSS (MB)"] if "quarry" in shown else []
timed = [n for n in queries if all("median_s" in results[e][n] for e in shown)]


def row(cells):
    return "| " + " | ".join(cells) + " |"


print()
header = (["query"] + [ENGINE_NAMES[e] for e in shown] + [f"Quarry/{ENGINE_NAMES[e]}" for e in peers]
          + rss_column)
print(row(header))
print(row(["---"] * len(header)))
for name in queries:
    t = {e: results[e][name].get("median_s") for e in shown}
    rss = results["quarry"][name].get("peak_rss_mb") if rss_column else None
    print(row([name] + [cell(e, name) for e in shown] + [ratio(t["quarry"], t[e]) for e in peers]
              + ([f"{rss:.0f}" if rss else ""] if rss_column else [])))
totals = {e: sum(results[e][n]["median_s"] for n in timed) for e in shown}
label = "total" if len(timed) == len(queries) else f"total ({len(timed)} of {len(queries)}, run by all)"
print(row([label] + [f"{totals[e]:.3f}" for e in shown] + [ratio(totals["quarry"], totals[e]) for e in peers]
          + [""] * len(rss_column)))
if "quarry" in shown:
    peaks = [r["peak_rss_mb"] for r in results["quarry"].values() if r.get("peak_rss_mb")]
    peak = max(peaks) if peaks else resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"\nQuarry peak RSS: {peak:.0f} MB" + ("" if peaks else " (largest child process of this run)"))
if failures:
    print(f"\n{failures} answer(s) missing or different from DuckDB's", file=sys.stderr)
    sys.exit(1)
