"""What raw usage events cost to keep and to aggregate, in PostgreSQL and (when it is installed) in
ClickHouse embedded (chdb): the figures behind "beyond one PostgreSQL" in docs/scaling.md.

    .venv/bin/python bench/events_store.py [--events 1000000 5000000] [--subscriptions 100] [--meters 2]
        [--database-url postgres://postgres@127.0.0.1:5432/tripod_events_bench] [--chdb-path /tmp/chdb]

For each size, in a scratch database that the script creates, migrates (``manage.py migrate``) and
drops at the end (its name must contain "bench"):

1. Generate the events of one month (UTC) in PostgreSQL itself (``INSERT ... SELECT`` over
   ``generate_series``): distinct transaction ids (32 hex digits, as random as a client's UUIDs),
   ``--subscriptions`` subscriptions of one tenant, ``--meters`` meters, 5 devices per
   subscription, timestamps spread evenly over the month, properties {mb, device_type, region}
   as the ingestion benchmark sends them; their keys into
   ``usage_event_key``; the 15-minute and daily rollups built from them as ingestion keeps them.
   Foreign keys are not checked while loading (``session_replication_role = replica``): the
   subscriptions and meters the rows name do not exist in the scratch database.
2. Sizes: ``pg_total_relation_size`` (heap, TOAST and indexes) of the month's partition, of the key
   table and of each rollup table, per event.
3. The month's aggregation by subscription and meter (count, sum), best of 3 after VACUUM
   (ANALYZE): from the raw events, from the 15-minute rollups, from the daily rollups.
4. With chdb importable (``--chdb-path``, e.g. after ``pip install --target /tmp/chdb chdb``; never
   in the project's requirements): the same events in a ReplacingMergeTree ordered by (tenant_id,
   subscription_id, meter_id, timestamp, transaction_id), its bytes on disk per event, the same
   aggregation from the raw table (plain and ``FINAL``) and from a SummingMergeTree fed by a
   materialized view. Without chdb that part is skipped with a message.

Timings are printed, never asserted. The machine is shared: say what else was running.
"""

import argparse
import functools
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scratchdb import create_database, drop_database  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
MONTH_START = "2026-03-01 00:00+00"
MONTH_END = "2026-04-01 00:00+00"
TENANT = "11111111-1111-1111-1111-111111111111"


def log(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def best_of(runs: int, work: Callable[[], Any]) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(runs):
        started = time.perf_counter()
        result = work()
        best = min(best, time.perf_counter() - started)
    return best, result


def migrate(url: str) -> None:
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_DEBUG": "true"}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)


# The ids are generated from the row number, so a size's rows are the same on every run.
LOAD_EVENTS = """
INSERT INTO usage_event (tenant_id, transaction_id, meter_id, subscription_id, device_id, "timestamp", value,
                         properties, time_band, received_at, late)
SELECT %(tenant)s::uuid, md5(i::text),
       ('00000000-0000-4000-9000-' || lpad(to_hex(i %% %(meters)s), 12, '0'))::uuid,
       ('00000000-0000-4000-8000-' || lpad(to_hex((i / %(meters)s) %% %(subscriptions)s), 12, '0'))::uuid,
       'dev-' || ((i / %(meters)s) %% %(subscriptions)s) || '-' || (i %% 5),
       %(start)s::timestamptz + (%(span)s::float8 * i / %(events)s) * interval '1 second',
       (i %% 997) / 10.0,
       jsonb_build_object('mb', (i %% 997) / 10.0,
                          'device_type', CASE WHEN i %% 3 = 0 THEN 'gateway' ELSE 'tracker' END,
                          'region', CASE WHEN i %% 2 = 0 THEN 'eu' ELSE 'us' END),
       '', %(start)s::timestamptz + (%(span)s::float8 * i / %(events)s) * interval '1 second', false
FROM generate_series(0, %(events)s - 1) AS i
"""
LOAD_KEYS = "INSERT INTO usage_event_key (tenant_id, transaction_id) SELECT tenant_id, transaction_id FROM usage_event"
# As the ingestion keeps them: per subscription, meter, dimension values, time band and bucket.
LOAD_ROLLUPS = """
INSERT INTO usage_usagerollup (tenant_id, subscription_id, meter_id, bucket, dimensions, time_band,
                               event_count, value_sum, value_max, latest_at, latest_value)
SELECT tenant_id, subscription_id, meter_id, date_bin('15 minutes', "timestamp", TIMESTAMPTZ '2000-01-01 00:00+00'),
       jsonb_build_object('device_type', properties ->> 'device_type', 'region', properties ->> 'region'), '',
       count(*), sum(value), max(value), max("timestamp"), (array_agg(value ORDER BY "timestamp" DESC))[1]
FROM usage_event GROUP BY 1, 2, 3, 4, 5
"""
LOAD_DAILY = """
INSERT INTO usage_usagedailyrollup (tenant_id, subscription_id, meter_id, day, dimensions, time_band,
                                    event_count, value_sum, value_max, latest_at, latest_value)
SELECT tenant_id, subscription_id, meter_id, date_bin('1 day', bucket, TIMESTAMPTZ '2000-01-01 00:00+00'),
       dimensions, time_band, sum(event_count), sum(value_sum), max(value_max), max(latest_at),
       (array_agg(latest_value ORDER BY latest_at DESC NULLS LAST))[1]
FROM usage_usagerollup GROUP BY 1, 2, 3, 4, 5, 6
"""
MONTH_RAW = """
SELECT subscription_id, meter_id, count(*), sum(value) FROM usage_event
WHERE tenant_id = %(tenant)s AND "timestamp" >= %(start)s AND "timestamp" < %(end)s GROUP BY 1, 2
"""
MONTH_ROLLUP = """
SELECT subscription_id, meter_id, sum(event_count), sum(value_sum) FROM usage_usagerollup
WHERE tenant_id = %(tenant)s AND bucket >= %(start)s AND bucket < %(end)s GROUP BY 1, 2
"""
MONTH_DAILY = """
SELECT subscription_id, meter_id, sum(event_count), sum(value_sum) FROM usage_usagedailyrollup
WHERE tenant_id = %(tenant)s AND day >= %(start)s AND day < %(end)s GROUP BY 1, 2
"""
USAGE_TABLES = "usage_event, usage_event_key, usage_usagerollup, usage_usagedailyrollup"


def fetch_all(conn: psycopg.Connection[Any], sql: str, params: dict[str, Any]) -> list[Any]:
    return conn.execute(sql, params).fetchall()


def csv_query(sess: Any, sql: str) -> str:
    return str(sess.query(sql, "CSV"))


def size(conn: psycopg.Connection[Any], table: str) -> int:
    row = conn.execute("SELECT pg_total_relation_size(%s::regclass)", [table]).fetchone()
    assert row is not None
    return int(row[0])


def postgres_run(conn: psycopg.Connection[Any], *, events: int, subscriptions: int, meters: int) -> None:
    conn.execute(f"TRUNCATE {USAGE_TABLES}")
    conn.execute("SELECT usage_event_partition_create(%s)", [MONTH_START[:10]])
    params = {
        "tenant": TENANT,
        "events": events,
        "subscriptions": subscriptions,
        "meters": meters,
        "start": MONTH_START,
        "end": MONTH_END,
        "span": 31 * 86400,
    }
    conn.execute("SET session_replication_role = replica")
    started = time.perf_counter()
    conn.execute(LOAD_EVENTS, params)
    loaded = time.perf_counter() - started
    conn.execute(LOAD_KEYS)
    conn.execute(LOAD_ROLLUPS)
    conn.execute(LOAD_DAILY)
    conn.execute("SET session_replication_role = DEFAULT")
    conn.execute("VACUUM (ANALYZE) usage_event_2026_03, usage_event_key, usage_usagerollup, usage_usagedailyrollup")
    counts = {
        table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # type: ignore[index]
        for table in ("usage_event", "usage_usagerollup", "usage_usagedailyrollup")
    }
    log(
        f"PostgreSQL, {events:,} events ({subscriptions} subscriptions x {meters} meters, one month): "
        f"generated in {loaded:.1f} s (INSERT ... SELECT, no index maintenance saved); "
        f"rollups: {counts['usage_usagerollup']:,} 15-minute rows, {counts['usage_usagedailyrollup']:,} daily rows"
    )
    assert counts["usage_event"] == events
    for table, rows in (
        ("usage_event_2026_03", events),
        ("usage_event_key", events),
        ("usage_usagerollup", counts["usage_usagerollup"]),
        ("usage_usagedailyrollup", counts["usage_usagedailyrollup"]),
    ):
        total = size(conn, table)
        log(
            f"  {table}: {total / 2**20:,.0f} MB with indexes, {total / events:,.0f} bytes per event"
            + (f" ({total / rows:,.0f} per row)" if rows != events else "")
        )
    for name, sql in (("raw events", MONTH_RAW), ("15-minute rollups", MONTH_ROLLUP), ("daily rollups", MONTH_DAILY)):
        seconds, rows = best_of(3, functools.partial(fetch_all, conn, sql, params))
        total = sum(int(r[2]) for r in rows)
        assert total == events, (name, total)
        log(f"  month by subscription and meter from {name}: {seconds * 1000:,.0f} ms ({len(rows)} groups)")


CH_TABLE = """
CREATE TABLE bench.usage_event (
    tenant_id UUID, transaction_id String, meter_id UUID, subscription_id UUID, device_id String,
    timestamp DateTime64(6, 'UTC'), value Decimal(38, 10), properties String, time_band LowCardinality(String),
    received_at DateTime64(6, 'UTC')
) ENGINE = ReplacingMergeTree(received_at)
PARTITION BY toYYYYMM(timestamp)
ORDER BY (tenant_id, subscription_id, meter_id, timestamp, transaction_id)
"""
CH_ROLLUP = """
CREATE TABLE bench.usage_daily (
    tenant_id UUID, subscription_id UUID, meter_id UUID, day Date, event_count UInt64, value_sum Decimal(38, 10)
) ENGINE = SummingMergeTree PARTITION BY toYYYYMM(day) ORDER BY (tenant_id, subscription_id, meter_id, day)
"""
CH_VIEW = """
CREATE MATERIALIZED VIEW bench.usage_daily_mv TO bench.usage_daily AS
SELECT tenant_id, subscription_id, meter_id, toDate(timestamp) AS day, count() AS event_count,
       sum(value) AS value_sum
FROM bench.usage_event GROUP BY tenant_id, subscription_id, meter_id, day
"""
CH_LOAD = """
INSERT INTO bench.usage_event
SELECT toUUID('{tenant}'), lower(hex(MD5(toString(number)))),
       toUUID(concat('00000000-0000-4000-9000-', leftPad(lower(hex(number % {meters})), 12, '0'))),
       toUUID(concat('00000000-0000-4000-8000-',
                     leftPad(lower(hex(intDiv(number, {meters}) % {subscriptions})), 12, '0'))),
       concat('dev-', toString(intDiv(number, {meters}) % {subscriptions}), '-', toString(number % 5)),
       toDateTime64('2026-03-01 00:00:00', 6, 'UTC') + toIntervalMicrosecond(intDiv(number * {span}, {events})),
       toDecimal128((number % 997) / 10, 10),
       concat('{{"mb": ', toString((number % 997) / 10), ', "device_type": "',
              if(number % 3 = 0, 'gateway', 'tracker'), '", "region": "', if(number % 2 = 0, 'eu', 'us'), '"}}'),
       '', now64(6, 'UTC')
FROM numbers({events})
"""
CH_MONTH = """
SELECT subscription_id, meter_id, count(), sum(value) FROM bench.usage_event {final}
WHERE tenant_id = toUUID('{tenant}') AND timestamp >= toDateTime64('2026-03-01 00:00:00', 6, 'UTC')
  AND timestamp < toDateTime64('2026-04-01 00:00:00', 6, 'UTC') GROUP BY subscription_id, meter_id
"""
CH_MONTH_ROLLUP = """
SELECT subscription_id, meter_id, sum(event_count), sum(value_sum) FROM bench.usage_daily
WHERE tenant_id = toUUID('{tenant}') AND day >= '2026-03-01' AND day < '2026-04-01' GROUP BY subscription_id, meter_id
"""


def chdb_run(chdb: Any, *, events: int, subscriptions: int, meters: int) -> None:
    from chdb import session as chs  # type: ignore[import-not-found]

    folder = tempfile.mkdtemp(prefix="events_store_chdb_")
    try:
        sess = chs.Session(folder)
        sess.query("CREATE DATABASE bench")
        for statement in (CH_TABLE, CH_ROLLUP, CH_VIEW):
            sess.query(statement)
        fmt = {"tenant": TENANT, "events": events, "subscriptions": subscriptions, "meters": meters}
        started = time.perf_counter()
        sess.query(CH_LOAD.format(**fmt, span=31 * 86400 * 1_000_000))
        loaded = time.perf_counter() - started
        sess.query("OPTIMIZE TABLE bench.usage_event FINAL")
        sess.query("OPTIMIZE TABLE bench.usage_daily FINAL")
        on_disk = int(
            str(
                sess.query(
                    "SELECT sum(bytes_on_disk) FROM system.parts WHERE database = 'bench' AND table = 'usage_event' "
                    "AND active",
                    "CSV",
                )
            ).strip()
        )
        daily_rows = str(sess.query("SELECT count() FROM bench.usage_daily", "CSV")).strip()
        log(
            f"chdb {chdb.__version__}, {events:,} events: inserted in {loaded:.1f} s; usage_event "
            f"{on_disk / 2**20:,.0f} MB on disk, {on_disk / events:,.1f} bytes per event; "
            f"daily rollup by materialized view: {daily_rows} rows"
        )
        for name, sql in (
            ("raw events", CH_MONTH.format(final="", tenant=TENANT)),
            ("raw events FINAL (deduplicated at read)", CH_MONTH.format(final="FINAL", tenant=TENANT)),
            ("the materialized view's daily rollup", CH_MONTH_ROLLUP.format(tenant=TENANT)),
        ):
            seconds, result = best_of(3, functools.partial(csv_query, sess, sql))
            groups = [line for line in result.splitlines() if line]
            total = sum(int(line.split(",")[2]) for line in groups)
            assert total == events, (name, total)
            log(f"  month by subscription and meter from {name}: {seconds * 1000:,.0f} ms ({len(groups)} groups)")
        sess.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument("--subscriptions", type=int, default=100)
    parser.add_argument("--meters", type=int, default=2)
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/tripod_events_bench")
    parser.add_argument("--chdb-path", default="/tmp/chdb", help="a folder holding the chdb package, if any")
    args = parser.parse_args()
    if "bench" not in args.database_url.rsplit("/", 1)[-1]:
        parser.error("the scratch database's name must contain 'bench': it is dropped at the end")
    if args.chdb_path and os.path.isdir(args.chdb_path):
        sys.path.append(args.chdb_path)
    try:
        import chdb
    except ImportError:
        chdb = None
    create_database(args.database_url)
    try:
        migrate(args.database_url)
        with psycopg.connect(args.database_url, autocommit=True) as conn:
            row = conn.execute("SELECT version()").fetchone()
            log(f"{row[0].split(',')[0] if row else 'PostgreSQL'}; {os.cpu_count()} cores; load {os.getloadavg()}")
            for events in args.events:
                postgres_run(conn, events=events, subscriptions=args.subscriptions, meters=args.meters)
    finally:
        drop_database(args.database_url)
    if chdb is None:
        log("chdb is not installed: the ClickHouse part is skipped (pip install --target /tmp/chdb chdb)")
        return 0
    for events in args.events:
        chdb_run(chdb, events=events, subscriptions=args.subscriptions, meters=args.meters)
    return 0


if __name__ == "__main__":
    sys.exit(main())
