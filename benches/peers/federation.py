#!/usr/bin/env python3
"""Federated scans of a 1,000,000-row PostgreSQL table, against the server's own export.

    [INSTANCES=4] python3 benches/peers/federation.py QUARRY CONNECTOR [ROWS] [REPEATS]

QUARRY is a release `quarry` binary, CONNECTOR a release `quarry-connector` binary (both from
`cargo build --release -p quarry-cli -p quarry-lambda --bin quarry --bin quarry-connector`).
The script starts a throw-away PostgreSQL cluster (initdb + pg_ctl on a free port; as root it runs
as `postgres`), moto_server (S3, for spilled answers) and `cargo lambda watch` (the Lambda
emulator), loads the table, and times, median of REPEATS after one warm-up:

- `psql -c "COPY (SELECT ..) TO STDOUT" > /dev/null`: the server's own export, the practical limit;
- Quarry in process (`quarry catalog add pg --connector postgres`): the full scan and a 1% filter;
- Quarry through the connector Lambda under the emulator (`"lambda:quarry-connector"`, INSTANCES
  function processes polling it, as Lambda runs concurrent invocations in separate instances),
  where answers over 5 MiB spill to S3, encrypted.

Quarry's times are the statement's `elapsed_us` (`--stats json`); COPY's is psql's wall time.
"""

import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

QUARRY, CONNECTOR = sys.argv[1], sys.argv[2]
ROWS = int(sys.argv[3]) if len(sys.argv) > 3 else 1_000_000
REPEATS = int(sys.argv[4]) if len(sys.argv) > 4 else 3
INSTANCES = int(os.environ.get("INSTANCES", "4"))
COLUMNS = "id, k, v, s, d, ts"
FULL = "SELECT sum(id) AS a, sum(k) AS b, sum(v) AS c, max(s) AS e, max(d) AS f, max(ts) AS g FROM {t}"
SELECTIVE = "SELECT count(*) AS n, sum(v) AS c, max(s) AS e FROM {t} WHERE k = 7"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, what, seconds=60):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"{what} did not listen on {port}")


def pg_bindir():
    for v in sorted(os.listdir("/usr/lib/postgresql"), reverse=True):
        d = f"/usr/lib/postgresql/{v}/bin"
        if os.path.exists(f"{d}/initdb"):
            return d
    sys.exit("PostgreSQL's server programs are missing: apt-get install postgresql")


def run(cmd, env=None, stdout=subprocess.PIPE):
    out = subprocess.run(cmd, env=env, stdout=stdout, stderr=subprocess.PIPE, text=True)
    if out.returncode != 0:
        sys.exit(f"{cmd[0]} failed: {out.stderr}")
    return out


def main():
    procs = []
    work = tempfile.mkdtemp(prefix="quarry-fed-bench-")
    os.chmod(work, 0o777)
    try:
        # PostgreSQL
        bindir = pg_bindir()
        root = os.geteuid() == 0
        owner = ["runuser", "-u", "postgres", "--"] if root else []
        data = f"{work}/pg"
        run(owner + [f"{bindir}/initdb", "-D", data, "-U", "quarry", "--auth=trust", "--no-sync", "-E", "UTF8"])
        port = free_port()
        opts = f"-p {port} -k {work} -c listen_addresses=127.0.0.1 -c fsync=off -c shared_buffers=512MB"
        run(owner + [f"{bindir}/pg_ctl", "-D", data, "-l", f"{work}/pg.log", "-o", opts, "-w", "start"])
        uri = f"postgresql://quarry@127.0.0.1:{port}/postgres"
        psql = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", uri]
        run(psql + ["-c", f"""
            CREATE TABLE bench (id bigint PRIMARY KEY, k int, v double precision, s text, d date, ts timestamp);
            INSERT INTO bench SELECT g, g % 100, g * 0.5, md5(g::text), DATE '2020-01-01' + (g % 1000),
                   TIMESTAMP '2020-01-01' + g * INTERVAL '1 second' FROM generate_series(1, {ROWS}) g;"""])
        run(psql + ["-c", "VACUUM ANALYZE bench"])

        # moto (S3 for spills) and the Lambda emulator with the connector
        moto_port = free_port()
        moto = shutil.which("moto_server") or os.path.expanduser("~/.local/bin/moto_server")
        procs.append(subprocess.Popen([moto, "-H", "127.0.0.1", "-p", str(moto_port)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_port(moto_port, "moto_server")
        aws = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{moto_port}", "AWS_ALLOW_HTTP": "true",
               "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}
        import urllib.request
        urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{moto_port}/spill", method="PUT")).read()
        emu_port = free_port()
        procs.append(subprocess.Popen(["cargo", "lambda", "watch", "--only-lambda-apis", "--ignore-changes",
                                       "-P", str(emu_port)],
                                      cwd=os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../lambda"),
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_port(emu_port, "cargo lambda watch")
        fn_env = {"PATH": os.environ["PATH"], **aws,
                  "AWS_LAMBDA_RUNTIME_API": f"http://127.0.0.1:{emu_port}/.rt/quarry-connector",
                  "AWS_LAMBDA_FUNCTION_NAME": "quarry-connector", "AWS_LAMBDA_FUNCTION_VERSION": "1",
                  "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "3008", "QUARRY_CONNECTOR": "postgres",
                  "QUARRY_CONNECTOR_URI": uri, "QUARRY_SPILL_BUCKET": "spill"}
        # Lambda runs concurrent invocations in separate instances: INSTANCES runtime clients poll
        # the emulator for the one function.
        for _ in range(INSTANCES):
            procs.append(subprocess.Popen([CONNECTOR], env=fn_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

        env = {**os.environ, **aws, "QUARRY_CATALOG": f"{work}/catalog.db",
               "AWS_ENDPOINT_URL_LAMBDA": f"http://127.0.0.1:{emu_port}"}
        run([QUARRY, "catalog", "add", "pg", "--connector", "postgres", "--uri", uri], env=env)

        def quarry(sql):
            out = run([QUARRY, "sql", "--format", "csv", "--stats", "json", "-c", sql], env=env)
            stats = json.loads(out.stderr.strip().splitlines()[-1])
            return stats["elapsed_us"] / 1e6, stats["bytes_scanned"], out.stdout

        def copy():
            t = time.perf_counter()
            run(psql + ["-c", f"COPY (SELECT {COLUMNS} FROM bench) TO STDOUT"], stdout=subprocess.DEVNULL)
            return time.perf_counter() - t, 0, ""

        cases = [
            ("psql COPY .. TO STDOUT (full export)", copy),
            ("in process, full scan", lambda: quarry(FULL.format(t="pg.public.bench"))),
            ("in process, 1% filter (k = 7)", lambda: quarry(SELECTIVE.format(t="pg.public.bench"))),
            ("Lambda (emulator), full scan", lambda: quarry(FULL.format(t='"lambda:quarry-connector".public.bench'))),
            ("Lambda (emulator), 1% filter", lambda: quarry(SELECTIVE.format(t='"lambda:quarry-connector".public.bench'))),
        ]
        results = {}
        answers = {}
        for name, case in cases:
            case()
            times, scanned = [], 0
            for _ in range(REPEATS):
                t, b, out = case()
                times.append(t)
                scanned = b
                answers[name] = out
            results[name] = (statistics.median(times), scanned)
        full_in, full_lambda = answers["in process, full scan"], answers["Lambda (emulator), full scan"]
        assert full_in == full_lambda, f"answers differ:\n{full_in}\n{full_lambda}"
        copy_t = results["psql COPY .. TO STDOUT (full export)"][0]
        print(f"{ROWS:,} rows, median of {REPEATS}, {INSTANCES} connector instance(s)")
        print("| case | time | bytes scanned | COPY time / this time |")
        print("|---|---|---|---|")
        for name, (t, b) in results.items():
            print(f"| {name} | {t:.3f} s | {b:,} | {copy_t / t:.2f} |")
        full_b = results["in process, full scan"][1]
        sel_b = results["in process, 1% filter (k = 7)"][1]
        print(f"\n1% filter reads {100 * sel_b / full_b:.2f}% of the full scan's bytes (in process)")
    finally:
        for p in procs:
            p.kill()
        if 'data' in locals():
            subprocess.run((["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else [])
                           + [f"{pg_bindir()}/pg_ctl", "-D", f"{work}/pg", "-m", "immediate", "stop"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
