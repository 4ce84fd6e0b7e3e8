#!/usr/bin/env python3
"""Unmodified Athena clients from PyPI against `quarry serve`: boto3, PyAthena (default, pandas
and arrow cursors) and the AWS CLI. Each runs a SELECT over the sample lake, a DDL statement, a
failing statement, a cancelled one and a paged result of 2,500 rows; boto3 also checks SigV4
refusals, prepared statements and workgroups.

    QUARRY_ENDPOINT=http://127.0.0.1:PORT AWS_ACCESS_KEY_ID=.. AWS_SECRET_ACCESS_KEY=.. \
        python3 tests/clients/athena_clients.py

Exits non-zero (with the failed check) on the first difference.
"""
import json
import os
import subprocess
import sys
import time

import boto3
import botocore
from botocore.config import Config

ENDPOINT = os.environ["QUARRY_ENDPOINT"]
REGION = "us-east-1"
KEY, SECRET = os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"]
LONG = "SELECT count(*) FROM range(100000000000)"
PAGED = "SELECT value AS n FROM range(2500) ORDER BY value"


def check(cond, what):
    if not cond:
        print(f"FAILED: {what}", file=sys.stderr)
        sys.exit(1)
    print(f"ok: {what}")


def client(**kw):
    return boto3.client("athena", endpoint_url=ENDPOINT, region_name=REGION, **kw)


def wait(c, qid, timeout=60):
    end = time.time() + timeout
    while time.time() < end:
        e = c.get_query_execution(QueryExecutionId=qid)["QueryExecution"]
        if e["Status"]["State"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
            return e
        time.sleep(0.05)
    raise TimeoutError(qid)


def error_code(fn):
    try:
        fn()
    except botocore.exceptions.ClientError as e:
        return e.response["Error"]["Code"]
    return None


def boto():
    c = client()
    qid = c.start_query_execution(
        QueryString="SELECT region, count(*) AS orders FROM sales GROUP BY region ORDER BY region",
        QueryExecutionContext={"Database": "demo"},
    )["QueryExecutionId"]
    e = wait(c, qid)
    check(e["Status"]["State"] == "SUCCEEDED", "boto3 SELECT succeeds")
    check(e["Statistics"]["DataScannedInBytes"] > 0, "boto3 SELECT reports bytes scanned")
    r = c.get_query_results(QueryExecutionId=qid)
    rows = [[d.get("VarCharValue") for d in row["Data"]] for row in r["ResultSet"]["Rows"]]
    check(rows[0] == ["region", "orders"], "the header row comes first")
    check(["eu west", "2"] in rows and [None, "1"] in rows, f"rows, NULL as no VarCharValue: {rows}")
    info = r["ResultSet"]["ResultSetMetadata"]["ColumnInfo"]
    check(info[1]["Type"] == "bigint" and info[1]["Precision"] == 19, "ColumnInfo types")

    # Paged: 2,500 rows through the paginator, header once.
    qid = c.start_query_execution(QueryString=PAGED)["QueryExecutionId"]
    wait(c, qid)
    pages = list(c.get_paginator("get_query_results").paginate(QueryExecutionId=qid))
    values = [row["Data"][0].get("VarCharValue") for p in pages for row in p["ResultSet"]["Rows"]]
    check(len(pages) == 3, f"2,501 rows in 3 pages ({len(pages)})")
    check(values[0] == "n" and values[1:] == [str(i) for i in range(2500)], "every row once, in order")
    # One row per page: the header alone on the first page, then each row once.
    qid = c.start_query_execution(QueryString="SELECT value FROM range(3)")["QueryExecutionId"]
    wait(c, qid)
    pages = list(c.get_paginator("get_query_results").paginate(
        QueryExecutionId=qid, PaginationConfig={"PageSize": 1}))
    values = [row["Data"][0].get("VarCharValue") for p in pages for row in p["ResultSet"]["Rows"]]
    check(values == ["value", "0", "1", "2"], f"pages of one row: {values}")

    # CTAS: no rows, UpdateCount.
    scratch = os.environ["QUARRY_SCRATCH"]
    qid = c.start_query_execution(
        QueryString=f"CREATE TABLE demo.sales_copy WITH (format = 'PARQUET', external_location = 'file://{scratch}/sales_copy/') AS SELECT * FROM demo.sales"
    )["QueryExecutionId"]
    e = wait(c, qid)
    check(e["Status"]["State"] == "SUCCEEDED" and e["SubstatementType"] == "CREATE_TABLE_AS_SELECT",
          f"CTAS: {e['Status']}")
    r = c.get_query_results(QueryExecutionId=qid)
    check(r["UpdateCount"] == 5 and r["ResultSet"]["Rows"] == [], "CTAS: UpdateCount 5, no rows")
    # Writes go only under the server's --write-root: not elsewhere, not via '..'.
    for where in ["file:///tmp/quarry-not-allowed/", f"file://{scratch}/../escaped/"]:
        qid = c.start_query_execution(
            QueryString=f"CREATE TABLE demo.outside WITH (format = 'PARQUET', external_location = '{where}') AS SELECT 1 AS x"
        )["QueryExecutionId"]
        e = wait(c, qid)
        reason = e["Status"].get("StateChangeReason", "")
        check(e["Status"]["State"] == "FAILED" and ("outside" in reason or ".." in reason),
              f"a write outside the roots is refused: {where}: {reason}")
        check(not os.path.exists("/tmp/quarry-not-allowed"), "nothing was written outside the roots")

    # DDL.
    qid = c.start_query_execution(QueryString="CREATE DATABASE IF NOT EXISTS scratch_boto")["QueryExecutionId"]
    e = wait(c, qid)
    check(e["Status"]["State"] == "SUCCEEDED" and e["StatementType"] == "DDL", "boto3 DDL")
    qid = c.start_query_execution(QueryString="SHOW TABLES IN demo")["QueryExecutionId"]
    wait(c, qid)
    rows = c.get_query_results(QueryExecutionId=qid)["ResultSet"]["Rows"]
    check([r["Data"][0]["VarCharValue"] for r in rows] == ["events", "logs", "metrics", "sales", "sales_copy"],
          "SHOW TABLES: no header row")

    # Failing.
    qid = c.start_query_execution(QueryString="SELECT * FROM demo.no_such_table")["QueryExecutionId"]
    e = wait(c, qid)
    check(e["Status"]["State"] == "FAILED" and "no_such_table" in e["Status"]["StateChangeReason"],
          "a failing statement: FAILED with its reason")
    check(e["Status"]["AthenaError"]["ErrorCategory"] == 2, "AthenaError: a user error")
    check(error_code(lambda: c.get_query_results(QueryExecutionId=qid)) == "InvalidRequestException",
          "results of a failed query: InvalidRequestException")

    # Cancelled.
    qid = c.start_query_execution(QueryString=LONG)["QueryExecutionId"]
    time.sleep(0.3)
    c.stop_query_execution(QueryExecutionId=qid)
    e = wait(c, qid)
    check(e["Status"]["State"] == "CANCELLED", f"StopQueryExecution cancels ({e['Status']['State']})")

    # Idempotency, listing, batch get.
    a = c.start_query_execution(QueryString="SELECT 1", ClientRequestToken="t" * 40)["QueryExecutionId"]
    b = c.start_query_execution(QueryString="SELECT 1", ClientRequestToken="t" * 40)["QueryExecutionId"]
    check(a == b, "the same ClientRequestToken gives the same execution")
    check(error_code(lambda: c.start_query_execution(QueryString="SELECT 2", ClientRequestToken="t" * 40))
          == "InvalidRequestException", "a reused token with another query is refused")
    ids = c.list_query_executions(MaxResults=5)["QueryExecutionIds"]
    check(len(ids) == 5 and ids[0] == a, "ListQueryExecutions: newest first")
    got = c.batch_get_query_execution(QueryExecutionIds=[a, "nope"])
    check(len(got["QueryExecutions"]) == 1 and got["UnprocessedQueryExecutionIds"][0]["QueryExecutionId"] == "nope",
          "BatchGetQueryExecution")

    # Parameters and prepared statements.
    qid = c.start_query_execution(QueryString="SELECT count(*) FROM demo.sales WHERE region = ?",
                                  ExecutionParameters=["'eu west'"])["QueryExecutionId"]
    wait(c, qid)
    rows = c.get_query_results(QueryExecutionId=qid)["ResultSet"]["Rows"]
    check(rows[1]["Data"][0]["VarCharValue"] == "2", "ExecutionParameters")
    c.create_prepared_statement(StatementName="by_region", WorkGroup="primary",
                                QueryStatement="SELECT count(*) FROM demo.sales WHERE region = ?")
    check(c.get_prepared_statement(StatementName="by_region", WorkGroup="primary")
          ["PreparedStatement"]["QueryStatement"].endswith("= ?"), "GetPreparedStatement")
    qid = c.start_query_execution(QueryString="EXECUTE by_region USING 'us-east'")["QueryExecutionId"]
    wait(c, qid)
    rows = c.get_query_results(QueryExecutionId=qid)["ResultSet"]["Rows"]
    check(rows[1]["Data"][0]["VarCharValue"] == "2", "EXECUTE .. USING")
    # PREPARE in SQL: visible to the API, executed with a quote-laden value that stays a value.
    qid = c.start_query_execution(
        QueryString="PREPARE sql_prepared FROM SELECT count(*) FROM demo.sales WHERE region = ?")["QueryExecutionId"]
    wait(c, qid)
    check(c.get_prepared_statement(StatementName="sql_prepared", WorkGroup="primary")
          ["PreparedStatement"]["QueryStatement"].endswith("region = ?"), "PREPARE in SQL")
    qid = c.start_query_execution(QueryString="EXECUTE sql_prepared USING 'eu west'' OR ''1''=''1'")["QueryExecutionId"]
    wait(c, qid)
    e = c.get_query_execution(QueryExecutionId=qid)["QueryExecution"]
    check(e["StatementType"] == "DML" and e["SubstatementType"] == "SELECT", "EXECUTE reports its statement's types")
    rows = c.get_query_results(QueryExecutionId=qid)["ResultSet"]["Rows"]
    check(rows[1]["Data"][0]["VarCharValue"] == "0", "a parameter is bound as a value, not spliced")
    qid = c.start_query_execution(QueryString="DEALLOCATE PREPARE sql_prepared")["QueryExecutionId"]
    wait(c, qid)
    c.delete_prepared_statement(StatementName="by_region", WorkGroup="primary")
    check(c.list_prepared_statements(WorkGroup="primary")["PreparedStatements"] == [], "DeletePreparedStatement")

    # Workgroups with a byte limit.
    c.create_work_group(Name="small", Configuration={"BytesScannedCutoffPerQuery": 10_000_000})
    check("small" in [w["Name"] for w in c.list_work_groups()["WorkGroups"]], "CreateWorkGroup")
    c.update_work_group(WorkGroup="small", State="DISABLED")
    check(error_code(lambda: c.start_query_execution(QueryString="SELECT 1", WorkGroup="small"))
          == "InvalidRequestException", "a disabled workgroup refuses queries")
    c.delete_work_group(WorkGroup="small")
    check(error_code(lambda: c.get_work_group(WorkGroup="small")) == "InvalidRequestException", "DeleteWorkGroup")

    # Catalog.
    t = c.get_table_metadata(CatalogName="AwsDataCatalog", DatabaseName="demo", TableName="sales")["TableMetadata"]
    check([k["Name"] for k in t["PartitionKeys"]] == ["region"], "GetTableMetadata")
    check(error_code(lambda: c.get_table_metadata(CatalogName="AwsDataCatalog", DatabaseName="demo", TableName="x"))
          == "MetadataException", "a missing table: MetadataException")

    # Data catalogs: the lake's, and federated ones (a connector Lambda; a linked-in connector
    # whose URI password never comes back).
    c.create_data_catalog(Name="ddbfn", Type="LAMBDA", Parameters={"function": "athena-dynamodb-connector"})
    c.create_data_catalog(Name="pgcat", Type="FEDERATED", Description="shop database",
                          Parameters={"connector": "postgres", "uri": "postgresql://app:s3cr3t@db:5432/shop"})
    names = {d["CatalogName"]: d["Type"] for d in c.list_data_catalogs()["DataCatalogsSummary"]}
    check(names == {"AwsDataCatalog": "GLUE", "ddbfn": "LAMBDA", "pgcat": "FEDERATED"}, f"ListDataCatalogs: {names}")
    ddb = c.get_data_catalog(Name="ddbfn")["DataCatalog"]
    check(ddb["Parameters"] == {"function": "athena-dynamodb-connector"}, f"GetDataCatalog: {ddb}")
    pg = c.get_data_catalog(Name="pgcat")["DataCatalog"]
    check(pg["Description"] == "shop database" and "s3cr3t" not in str(pg), f"GetDataCatalog hides the password: {pg}")
    check(error_code(lambda: c.create_data_catalog(Name="pgcat", Type="LAMBDA", Parameters={"function": "f"}))
          == "InvalidRequestException", "a catalog that exists is refused")
    check(error_code(lambda: c.create_data_catalog(Name="hive1", Type="HIVE", Parameters={"metadata-function": "f"}))
          == "InvalidRequestException", "HIVE catalogs are refused")
    c.delete_data_catalog(Name="ddbfn")
    c.delete_data_catalog(Name="pgcat")
    check([d["CatalogName"] for d in c.list_data_catalogs()["DataCatalogsSummary"]] == ["AwsDataCatalog"], "DeleteDataCatalog")

    # Signatures.
    bad_key = client(aws_access_key_id="AKIDUNKNOWN", aws_secret_access_key=SECRET)
    check(error_code(lambda: bad_key.list_work_groups()) == "UnrecognizedClientException", "an unknown key is refused")
    bad_secret = client(aws_access_key_id=KEY, aws_secret_access_key="wrong")
    check(error_code(lambda: bad_secret.list_work_groups()) == "InvalidSignatureException", "a wrong signature is refused")
    unsigned = client(config=Config(signature_version=botocore.UNSIGNED))
    check(error_code(lambda: unsigned.list_work_groups()) == "MissingAuthenticationTokenException",
          "an unsigned request is refused")


def pyathena_cursors():
    import pyathena
    from pyathena.arrow.cursor import ArrowCursor
    from pyathena.pandas.cursor import PandasCursor

    conn = pyathena.connect(endpoint_url=ENDPOINT, region_name=REGION, work_group="primary",
                            schema_name="demo", poll_interval=0.05)
    cur = conn.cursor()
    cur.execute("SELECT region, count(*) AS orders FROM sales GROUP BY region ORDER BY region")
    rows = cur.fetchall()
    check(("eu west", 2) in rows and (None, 1) in rows, f"PyAthena SELECT, typed values: {rows}")
    check([d[0] for d in cur.description] == ["region", "orders"], "PyAthena description")
    cur.execute(PAGED)
    check([r[0] for r in cur.fetchall()] == list(range(2500)), "PyAthena pages 2,500 rows")
    cur.execute("CREATE DATABASE IF NOT EXISTS scratch_pyathena")
    check(cur.fetchall() == [], "PyAthena DDL")
    try:
        cur.execute("SELECT * FROM no_such_table")
        check(False, "PyAthena raises on a failing statement")
    except pyathena.error.OperationalError as e:
        check("no_such_table" in str(e), "PyAthena raises OperationalError with the reason")
    cur.execute("SELECT count(*) FROM sales WHERE region = %(r)s", {"r": "eu west"})
    check(cur.fetchone() == (2,), "PyAthena parameters")
    # Cancel a running query from another thread.
    import threading
    c2 = conn.cursor()
    t = threading.Thread(target=lambda: (time.sleep(0.5), c2.cancel()))
    t.start()
    try:
        c2.execute(LONG)
        state = c2.state
    except pyathena.error.OperationalError as e:
        state = "CANCELLED" if "cancel" in str(e).lower() else f"error: {e}"
    t.join()
    check(state == "CANCELLED", f"PyAthena cancel ({state})")
    cur.execute("INSERT INTO sales_copy SELECT * FROM sales WHERE region = 'eu west'")
    check(cur.rowcount == 2, f"PyAthena rowcount of an INSERT ({cur.rowcount})")

    pc = pyathena.connect(endpoint_url=ENDPOINT, region_name=REGION, work_group="primary",
                          schema_name="demo", poll_interval=0.05, cursor_class=PandasCursor).cursor()
    df = pc.execute(PAGED).as_pandas()
    check(len(df) == 2500 and int(df["n"].sum()) == sum(range(2500)), "PyAthena PandasCursor pages 2,500 rows")
    df = pc.execute("SELECT region, count(*) AS orders FROM sales GROUP BY region ORDER BY region").as_pandas()
    check(list(df["orders"]) == [2, 2, 1], f"PandasCursor SELECT: {df.to_dict('list')}")
    pc.execute("CREATE DATABASE IF NOT EXISTS scratch_pandas")
    check(pc.fetchall() == [], "PandasCursor DDL")
    try:
        pc.execute("SELECT * FROM no_such_table")
        check(False, "PandasCursor raises on a failing statement")
    except pyathena.error.OperationalError as e:
        check("no_such_table" in str(e), "PandasCursor raises OperationalError with the reason")
    pc2 = pyathena.connect(endpoint_url=ENDPOINT, region_name=REGION, work_group="primary",
                           schema_name="demo", poll_interval=0.05, cursor_class=PandasCursor).cursor()
    t = threading.Thread(target=lambda: (time.sleep(0.5), pc2.cancel()))
    t.start()
    try:
        pc2.execute(LONG)
        state = pc2.state
    except pyathena.error.OperationalError as e:
        state = "CANCELLED" if "cancel" in str(e).lower() else f"error: {e}"
    t.join()
    check(state == "CANCELLED", f"PandasCursor cancel ({state})")
    ac = pyathena.connect(endpoint_url=ENDPOINT, region_name=REGION, work_group="primary",
                          schema_name="demo", poll_interval=0.05, cursor_class=ArrowCursor).cursor()
    table = ac.execute("SELECT region, amount FROM sales").as_arrow()
    check(table.num_rows == 5, f"PyAthena ArrowCursor ({table.num_rows} rows)")


def aws_cli():
    env = dict(os.environ, AWS_DEFAULT_REGION=REGION, AWS_ENDPOINT_URL_ATHENA=ENDPOINT)

    def aws(*args):
        out = subprocess.run(["aws", "athena", *args, "--output", "json"], env=env,
                             capture_output=True, text=True)
        return out.returncode, (json.loads(out.stdout) if out.stdout.strip() else {}), out.stderr

    def run(sql):
        code, out, err = aws("start-query-execution", "--query-string", sql,
                             "--query-execution-context", "Database=demo")
        check(code == 0, f"aws athena start-query-execution {sql!r}: {err}")
        qid = out["QueryExecutionId"]
        for _ in range(600):
            _, e, _ = aws("get-query-execution", "--query-execution-id", qid)
            if e["QueryExecution"]["Status"]["State"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
                return qid, e["QueryExecution"]
            time.sleep(0.05)
        raise TimeoutError(sql)

    qid, e = run("SELECT region FROM sales WHERE region = 'eu west'")
    _, r, _ = aws("get-query-results", "--query-execution-id", qid)
    check(len(r["ResultSet"]["Rows"]) == 3, "aws CLI SELECT: header and 2 rows")
    qid, e = run(PAGED)
    code, r, _ = aws("get-query-results", "--query-execution-id", qid)
    check(code == 0 and len(r["ResultSet"]["Rows"]) == 2501, "aws CLI pages 2,500 rows itself")
    _, e = run("CREATE DATABASE IF NOT EXISTS scratch_cli")
    check(e["Status"]["State"] == "SUCCEEDED", "aws CLI DDL")
    _, e = run("SELECT nope FROM sales")
    check(e["Status"]["State"] == "FAILED", "aws CLI failing statement")
    code, out, _ = aws("start-query-execution", "--query-string", LONG)
    qid = out["QueryExecutionId"]
    time.sleep(0.3)
    aws("stop-query-execution", "--query-execution-id", qid)
    for _ in range(200):
        _, e, _ = aws("get-query-execution", "--query-execution-id", qid)
        if e["QueryExecution"]["Status"]["State"] != "RUNNING":
            break
        time.sleep(0.05)
    check(e["QueryExecution"]["Status"]["State"] == "CANCELLED", "aws CLI stop-query-execution")
    code, _, err = aws("get-query-results", "--query-execution-id", "no-such-id")
    check(code != 0 and "InvalidRequestException" in err, "aws CLI: Athena's error shape")


if __name__ == "__main__":
    which = sys.argv[1:] or ["boto3", "pyathena", "awscli"]
    if "boto3" in which:
        boto()
    if "pyathena" in which:
        pyathena_cursors()
    if "awscli" in which:
        aws_cli()
    print("all client checks passed")
