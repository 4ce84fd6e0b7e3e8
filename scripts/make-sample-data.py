#!/usr/bin/env python3
"""Regenerate sample-data/: a tiny lake with the awkward cases real buckets have.

Needs pyarrow and zstandard (pip install pyarrow zstandard). Output is deterministic except for
compressor versions; the committed files are the reference, this script documents them.
"""
import bz2, gzip, io, json, lzma, os, shutil, sys
import pyarrow as pa, pyarrow.parquet as pq, zstandard

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "sample-data")
shutil.rmtree(root, ignore_errors=True)

def put(rel, data):
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)

def gz(b):  # fixed mtime so the bytes are reproducible
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as f:
        f.write(b)
    return buf.getvalue()

# events: gzip JSON lines, nested struct/list, a column added on day 2, ints then floats,
# _SUCCESS markers beside the partition folders, a $folder$ marker and a zero-byte object.
day1 = [
    {"event_id": 1, "kind": "view", "user": {"id": 7, "name": "ann"}, "tags": ["new"], "amount": 3},
    {"event_id": 2, "kind": "click", "user": {"id": 8, "name": "bo"}, "tags": [], "amount": 4},
    {"event_id": 3, "kind": "view", "user": {"id": 7, "name": "ann"}, "tags": ["a", "b"], "amount": None},
]
day2 = [
    {"event_id": 4, "kind": "buy", "user": {"id": 9, "name": "cy", "vip": True}, "tags": ["x"], "amount": 19.99, "referrer": "ads"},
    {"event_id": 5, "kind": "view", "user": {"id": 7, "name": "ann"}, "tags": [], "amount": 0.5, "referrer": None},
]
lines = lambda rows: "".join(json.dumps(r) + "\n" for r in rows).encode()
put("events/dt=2024-01-01/part-00000.json.gz", gz(lines(day1)))
put("events/dt=2024-01-02/part-00000.json.gz", gz(lines(day2)))
put("events/dt=2024-01-02/_SUCCESS", b"")
put("events/_SUCCESS", b"")
put("events/dt=2024-01-01_$folder$", b"")
put("events/dt=2024-01-03/part-00000.json", b"")

# sales: CSV with a header, quoted commas and newlines, URL-encoded and NULL partition values,
# one partition bzip2-compressed, and a hidden checksum file.
header = "order_id,customer,note,amount,sold_on\n"
put("sales/region=eu%20west/sales.csv", (header +
    '1,"Smith, Jane","rush order, gift wrap",12.50,2024-01-03\n'
    '2,Bo,"two\nlines",7,2024-01-04\n').encode())
put("sales/region=us-east/sales.csv.bz2", bz2.compress((header +
    '3,Cy,plain,100.25,2024-01-05\n'
    '4,"Dee ""D"" Doe",,8.00,2024-01-06\n').encode()))
put("sales/region=__HIVE_DEFAULT_PARTITION__/sales.csv", (header + "5,Eve,no region,1.00,2024-01-07\n").encode())
put("sales/.sales.csv.crc", b"crc\x00\x01")

# metrics: Parquet whose schema evolves: id int32 -> int64, value float -> double, region added.
pq.write_table(pa.table({
    "id": pa.array([1, 2, 3], pa.int32()),
    "host": ["a", "b", "c"],
    "value": pa.array([0.5, 1.5, 2.5], pa.float32()),
}), os.path.join(os.makedirs(os.path.join(root, "metrics/year=2024/month=1"), exist_ok=True) or root,
                 "metrics/year=2024/month=1/part-0.parquet"), compression="snappy")
pq.write_table(pa.table({
    "id": pa.array([4, 5], pa.int64()),
    "host": ["a", "d"],
    "value": pa.array([3.25, 4.75], pa.float64()),
    "region": ["eu", "us"],
}), os.path.join(os.makedirs(os.path.join(root, "metrics/year=2024/month=2"), exist_ok=True) or root,
                 "metrics/year=2024/month=2/part-0.parquet"), compression="snappy")

# logs: headerless TSV in unnamed year/month/day folders, plain, zstd and xz.
tsv = lambda rows: "".join("\t".join(r) + "\n" for r in rows).encode()
put("logs/2024/01/15/app.tsv", tsv([
    ("2024-01-15 10:00:00", "INFO", "12", "started"),
    ("2024-01-15 10:00:05", "WARN", "250", "slow request"),
]))
put("logs/2024/01/16/app.tsv.zst", zstandard.ZstdCompressor(level=3).compress(tsv([
    ("2024-01-16 08:30:00", "INFO", "9", "started"),
    ("2024-01-16 08:31:00", "ERROR", "1200", "upstream timeout"),
])))
put("logs/2024/02/01/app.tsv.xz", lzma.compress(tsv([
    ("2024-02-01 00:00:01", "INFO", "7", "rotated"),
])))
print("sample-data written to", os.path.normpath(root))
