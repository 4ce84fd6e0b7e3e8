#!/usr/bin/env bash
# Usage: benches/peers/pinning.sh QUARRY_BIN -> the median elapsed_us (ms) of three queries over TPC-H SF1
# lineitem and orders in /tmp/qb/tpch1 (tpchgen-cli parquet -s 1), 5 runs after a warm-up.
set -euo pipefail
q=$1
export QUARRY_CATALOG=/tmp/qb/pincat/c.db
mkdir -p /tmp/qb/pincat
[ -f $QUARRY_CATALOG ] || $q crawl /tmp/qb/tpch1 -d tpch >/dev/null
for sql in "SELECT l_returnflag, l_linestatus, sum(l_quantity), sum(l_extendedprice * (1 - l_discount)), count(*) FROM lineitem WHERE l_shipdate <= DATE '1998-09-02' GROUP BY 1, 2 ORDER BY 1, 2" "SELECT sum(l_extendedprice) FROM lineitem WHERE l_shipdate > DATE '1995-01-01'" "SELECT count(*) FROM orders WHERE o_orderdate < DATE '1993-01-01'"; do
  f=$(mktemp --suffix .sql); for i in 1 2 3 4 5 6; do echo "$sql;" >> $f; done
  $q sql -d tpch -f $f --format csv --stats json 2>&1 >/dev/null | grep '^{' | tail -5 | python3 -c "
import sys, json, statistics
v=[json.loads(l)['elapsed_us'] for l in sys.stdin]
print(round(statistics.median(v)/1000,1), 'ms')"
done
