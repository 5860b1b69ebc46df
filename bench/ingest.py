"""Ingestion benchmark: events/s through ``POST /api/v1/events`` (gunicorn, concurrent keep-alive
clients, batches of 1,000), against a raw COPY of the same rows measured in the same run, then the
bill-time aggregation of what was stored.

    .venv/bin/python bench/ingest.py [--events 1000000] [--devices 1000] [--clients 4] [--workers 3]
        [--worker-class auto|sync|gthread] [--database-url postgres://postgres@127.0.0.1:5432/tripod_bench]

    .venv/bin/python bench/ingest.py --events 100000      # a quick check (about half a minute)

Everything happens in a scratch database that the script creates, migrates (``manage.py migrate``)
and drops at the end, also on Ctrl-C or an error; its name must contain "bench" and an existing one
is dropped first. Redis is ``$REDIS_URL`` (default 127.0.0.1:6379), as for the product.

Steps: seed with the product's services (a tenant, a plan billing a ``sum`` meter ``data_mb`` on
field ``mb`` with dimensions device_type and region, a customer in Europe/Paris, a subscription
with ``--devices`` devices, an ingest-scope API key; the tenant's rate limit raised out of the
way); start gunicorn (DJANGO_DEBUG=false, LOG_LEVEL=WARNING) and wait for /healthz; with
``--worker-class auto`` run a short trial with sync and with gthread workers and keep the faster;
post ``--events`` events (distinct transaction ids, devices among the subscription's, timestamps
spread over the current month, properties {mb, device_type, region}) from ``--clients`` processes,
their JSON bodies built with orjson before the clock starts; check that usage_event holds exactly
that many rows and the right sum; time the month's aggregation (SQL on usage_event, on the rollups,
``usage.selectors.rollup_groups`` (daily and 15-minute rollups), ``usage.aggregation.aggregate`` and
``GET /api/v1/customers/{id}/current_usage`` when they exist);
stop gunicorn and time one COPY of the same rows into the emptied usage_event (psycopg
``cursor.copy``), then the ratio API / COPY. Timings are printed, never asserted; the exit status
is 1 only when the stored rows are not the events sent.

The API line is followed by where the CPU went during the run (from /proc: gunicorn's processes,
PostgreSQL's, the clients', the rest), in CPU-seconds and microseconds per event: on a 2-core
machine the server is CPU-bound, so these say what to make cheaper. The machine is shared: when
"other" is large, something else was running and the rate is low; run again.

``--spread hour`` puts the timestamps in the last hour instead of the month: live telemetry, where
every batch updates the same few 15-minute rollup rows (with the month spread nearly every event
of a batch updates its own rollup row, the expensive case for the rollups).

Where an event's time goes (profiled December 2026, batches of 1,000 month-spread events of the
bench tenant, on the shared 2-core machine):

- PostgreSQL, EXPLAIN (ANALYZE, BUFFERS) of the batch's one statement with ~70,000 events stored:
  37-50 ms per batch. The key insert (ON CONFLICT DO NOTHING on the unique (tenant_id,
  transaction_id) index) takes 9.5 ms; the insert into the month partition (3 indexes, row-level
  security checked once per statement through its InitPlan) 14 ms; the 15-minute rollup upsert
  22 ms, because 929 of the 1,000 events each update their own row (the month spread) and only
  about half of those updates stay on their page (HOT), the others write every index of the table
  (five then, four now: the index on subscription alone repeated the unique index's first column;
  a lower fillfactor did not raise the share of HOT updates under this write rate);
  the daily upsert (84 rows) and the batch's grouping 6 and 3 ms. The staging COPY is 1-2 ms.
  The rollups are thus more than half of PostgreSQL's share, a write per event that a plain COPY
  does not do; with ``--spread hour`` a batch updates a few dozen rows and PostgreSQL's share halves.
- Python, cProfile over Django's test client with DEBUG off: the request cost 53-54 µs of CPU per
  event. Loading the batch's context was 40-60 µs per event of wall time
  (each device's history read for the 630 devices a batch names, though every event carried its
  dimensions; queries with 630 literal parameters), validation about 30 µs (model attributes,
  the JSON depth setting read per event, a generator per event in the nesting check), the text
  COPY's per-row formatting 5-10 µs. Since then: device history is read only for events that lack
  a device dimension, each meter and subscription becomes a plain rule once per batch, the nesting
  check compares types, and the staging COPY is binary without the per-row tenant and receipt time:
  29-33 µs of CPU per event in the same measurement.
- Why 35 % of COPY is out of reach here: COPY into ``usage_event`` with its keys costs 5-6 µs of
  CPU per row. 35 % of it is about 15 µs of wall time per event on 2 cores, 30 µs of CPU for
  gunicorn, PostgreSQL and the clients together, while PostgreSQL alone spends 37-47 µs of CPU per
  event (its backend's CPU over 30 batches in process, before and after alike), most of it in the
  statement above. Beyond that floor, the remaining cost is what the product promises at
  write time: deduplication by transaction id in the same statement, and rollups exact at every
  commit, so that current usage never reads raw events.
"""

import argparse
import functools
import http.client
import importlib
import importlib.util
import inspect
import multiprocessing
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import psycopg
from procs import CLOCK_TICK, Gunicorn, machine_cpu, proc_stat, tree_cpu  # bench/procs.py
from scratchdb import admin_url, production_settings, scratch_database  # bench/scratchdb.py

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing_platform.settings")

PY = sys.executable
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/tripod_bench"
PARIS = ZoneInfo("Europe/Paris")
CUSTOMER = "bench-fleet-co"
SUBSCRIPTION = "bench-fleet"
DEVICE_TYPES = ("tracker", "sensor", "gateway")
REGIONS = ("EU", "US", "APAC", "LATAM")
EVENT_COLUMNS = (
    "tenant_id",
    "transaction_id",
    "meter_id",
    "subscription_id",
    "device_id",
    '"timestamp"',
    "value",
    "properties",
    "time_band",
    "received_at",
    "late",
)
MASK64 = (1 << 64) - 1


def log(message: str) -> None:
    print(message, flush=True)


# --- the events ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    """How event ``i`` looks; the same in the client processes and in the COPY."""

    prefix: str
    devices: int
    start: int  # epoch seconds of the first possible timestamp
    span: int  # seconds

    @staticmethod
    def _mix(i: int) -> int:
        # splitmix64: every attribute of event i is a deterministic pseudo-random function of i.
        x = (i * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) & MASK64
        x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK64
        return x ^ (x >> 31)

    def attributes(self, i: int) -> tuple[str, str, int, int, str, str]:
        h = self._mix(i)
        return (
            "%s-%09d" % (self.prefix, i),
            "dev-%05d" % ((h >> 20) % self.devices),
            self.start + h % self.span,
            1 + (h >> 40) % 500,
            DEVICE_TYPES[(h >> 50) % 3],
            REGIONS[(h >> 54) % 4],
        )

    def event(self, i: int) -> dict[str, Any]:
        tid, device, ts, mb, device_type, region = self.attributes(i)
        return {
            "transaction_id": tid,
            "code": "data_mb",
            "device_id": device,
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts)),
            "properties": {"mb": mb, "device_type": device_type, "region": region},
        }

    def mb_total(self, n: int) -> int:
        return sum(1 + (self._mix(i) >> 40) % 500 for i in range(n))


def time_spread(now: datetime, spread: str = "month") -> tuple[int, int, str]:
    """Timestamps from the first of this month (UTC, the partitions' month) to a minute ago, or
    over the last hour (live telemetry: every batch hits the same few rollup rows)."""
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = now - timedelta(minutes=1)
    if spread == "hour" or end - start < timedelta(hours=1):  # or the month has just begun
        start = end - timedelta(hours=1)
    return int(start.timestamp()), int((end - start).total_seconds()), f"{start:%Y-%m-%d %H:%M} to {end:%H:%M} UTC"


# --- the clients -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    api_key: str


def _client(
    index: int,
    clients: int,
    total: int,
    batch: int,
    spec: Spec,
    target: Target,
    barrier: Any,
    results: Any,
) -> None:
    """One client process: builds its share of the request bodies, waits for the others, then posts
    them one after the other on one keep-alive connection (reopened when the server closes it)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's: it stops the clients
    starts = range(index * batch, total, clients * batch)
    bodies = [orjson.dumps({"events": [spec.event(i) for i in range(s, min(s + batch, total))]}) for s in starts]
    headers = {"Authorization": "Bearer " + target.api_key, "Content-Type": "application/json"}
    conn = http.client.HTTPConnection(target.host, target.port, timeout=300)
    accepted = duplicates = rejected = errors = 0
    first_error = ""
    latencies: list[float] = []
    barrier.wait()
    began = time.monotonic()
    cpu = time.process_time()
    for body in bodies:
        for attempt in range(3):
            sent = time.monotonic()
            try:
                conn.request("POST", "/api/v1/events", body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
            except (ConnectionError, http.client.HTTPException, TimeoutError) as exc:
                conn.close()
                if attempt == 2:
                    errors += 1
                    first_error = first_error or repr(exc)
                continue  # a replayed batch is harmless: the ingestion deduplicates
            latencies.append(time.monotonic() - sent)
            if response.status == 202:
                outcome = orjson.loads(data)
                accepted += outcome["accepted"]
                duplicates += outcome["duplicates"]
                rejected += outcome["rejected"]
            else:
                errors += 1
                first_error = first_error or "%d %s" % (response.status, data[:300].decode(errors="replace"))
            break
    ended = time.monotonic()
    cpu = time.process_time() - cpu
    conn.close()
    results.put(
        {
            "cpu": cpu,
            "began": began,
            "ended": ended,
            "accepted": accepted,
            "duplicates": duplicates,
            "rejected": rejected,
            "errors": errors,
            "first_error": first_error,
            "latencies": latencies,
        }
    )


@dataclass
class Run:
    events: int
    seconds: float
    accepted: int
    duplicates: int
    rejected: int
    errors: int
    first_error: str
    latencies: list[float]
    client_cpu: float

    @property
    def rate(self) -> float:
        return self.accepted / self.seconds if self.seconds else 0.0


def post_events(*, total: int, clients: int, batch: int, spec: Spec, target: Target) -> Run:
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(clients + 1)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_client, args=(i, clients, total, batch, spec, target, barrier, results), daemon=True)
        for i in range(clients)
    ]
    for proc in procs:
        proc.start()
    try:
        barrier.wait()  # every body is built: the clock starts now
        reports = [results.get() for _ in procs]
        for proc in procs:
            proc.join()
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
    began = min(r["began"] for r in reports)
    ended = max(r["ended"] for r in reports)
    return Run(
        events=total,
        seconds=ended - began,
        accepted=sum(r["accepted"] for r in reports),
        duplicates=sum(r["duplicates"] for r in reports),
        rejected=sum(r["rejected"] for r in reports),
        errors=sum(r["errors"] for r in reports),
        first_error=next((r["first_error"] for r in reports if r["first_error"]), ""),
        latencies=[x for r in reports for x in r["latencies"]],
        client_cpu=sum(r["cpu"] for r in reports),
    )


def print_run(label: str, run: Run) -> None:
    lat = sorted(run.latencies) or [0.0]
    log(
        f"{label}: {run.accepted:,} accepted in {run.seconds:.1f} s = {run.rate:,.0f} events/s"
        f" (batch latency p50 {lat[len(lat) // 2] * 1000:.0f} ms, p95 {lat[int(len(lat) * 0.95)] * 1000:.0f} ms;"
        f" duplicates {run.duplicates}, rejected {run.rejected}, failed requests {run.errors})"
    )
    if run.first_error:
        log("  first failure: " + run.first_error)


# --- where the CPU goes ----------------------------------------------------------------------------


class CpuMeter:
    """CPU seconds of gunicorn (master and workers) and of the whole PostgreSQL server (postmaster
    and every backend, autovacuum included: other users of the server count too) over a stretch
    of time, from /proc; the rest of the machine's busy time is the clients, this script and
    whatever else runs on the machine. On a server shared with other work, the backends of the
    scratch database alone are sampled too (every 0.2 s; a backend that exits between two samples
    loses at most its last 0.2 s)."""

    def __init__(self, url: str, gunicorn_pid: int) -> None:
        self.url = url
        self.gunicorn_pid = gunicorn_pid
        with psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute("SELECT pg_backend_pid()").fetchone()
        backend = proc_stat(row[0]) if row else []
        self.postmaster = int(backend[1]) if backend else 0  # /proc is readable: PostgreSQL runs here
        self.backends: dict[int, tuple[float, float]] = {}  # pid -> (CPU at start or 0, CPU last seen)
        self.sampling = threading.Event()
        self.sampler: threading.Thread | None = None

    def _backend_cpu(self, pid: int) -> float | None:
        fields = proc_stat(pid)
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICK if fields else None

    def _sample(self, conn: psycopg.Connection[Any], first: bool) -> None:
        for (pid,) in conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall():
            seen = self._backend_cpu(pid)
            if seen is None:
                continue
            start = self.backends[pid][0] if pid in self.backends else (seen if first else 0.0)
            self.backends[pid] = (start, seen)

    def _run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            self._sample(conn, first=True)
            while not self.sampling.wait(0.2):
                self._sample(conn, first=False)
            self._sample(conn, first=False)

    def start(self) -> None:
        self.gunicorn = tree_cpu(self.gunicorn_pid)
        self.postgres = tree_cpu(self.postmaster) if self.postmaster else 0.0
        self.machine = machine_cpu()
        if self.postmaster:
            self.sampler = threading.Thread(target=self._run, daemon=True)
            self.sampler.start()

    def stop(self) -> dict[str, float]:
        busy, idle = machine_cpu()
        if self.sampler is not None:
            self.sampling.set()
            self.sampler.join()
        return {
            "gunicorn": tree_cpu(self.gunicorn_pid) - self.gunicorn,
            "postgres": (tree_cpu(self.postmaster) - self.postgres) if self.postmaster else 0.0,
            "database": sum(last - first for first, last in self.backends.values()),
            "busy": busy - self.machine[0],
            "idle": idle - self.machine[1],
        }


def print_cpu(cpu: dict[str, float], run: "Run") -> None:
    total = cpu["busy"] + cpu["idle"]
    other = cpu["busy"] - cpu["gunicorn"] - cpu["postgres"] - run.client_cpu

    def part(seconds: float) -> str:
        return f"{seconds:.1f} s ({seconds / total:.0%})" if total else f"{seconds:.1f} s"

    log(
        f"  CPU over the run ({total:.1f} CPU-seconds on {os.cpu_count()} cores):"
        f" gunicorn {part(cpu['gunicorn'])}, PostgreSQL {part(cpu['postgres'])},"
        f" clients {part(run.client_cpu)}, other (kernel, this script, other programs) {part(other)},"
        f" idle {part(cpu['idle'])}; per event: gunicorn {cpu['gunicorn'] / max(run.accepted, 1) * 1e6:.0f} us,"
        f" PostgreSQL {cpu['postgres'] / max(run.accepted, 1) * 1e6:.0f} us (the scratch database's backends:"
        f" {cpu['database']:.1f} s, {cpu['database'] / max(run.accepted, 1) * 1e6:.0f} us)"
    )
    if total and other / total > 0.25:
        log("  (something else used the CPU during the run: the rate above is lower than this code can do)")


# --- the scratch database and the server ---------------------------------------------------------


@dataclass
class Seed:
    tenant_id: Any
    meter_id: Any
    subscription_id: Any
    ingest_key: str
    full_key: str


def seed(devices: int, now: datetime) -> Seed:
    """The bench tenant, made with the product's services (django.setup() has run)."""
    from catalog.services import meter_create, plan_create, product_create
    from customers.services import customer_create
    from subscriptions.services import subscription_create
    from tenancy.actors import Actor
    from tenancy.models import ApiKeyScope
    from tenancy.services import api_key_create, tenant_create
    from usage.models import UsageSettings

    actor = Actor.system("bench")
    created = tenant_create(
        name="Bench Telematics",
        slug="bench",
        currency="EUR",
        timezone="Europe/Paris",
        admin_email="bench@tripod.test",
        at=now,
    )
    tenant = created.tenant
    UsageSettings.objects.update_or_create(tenant=tenant, defaults={"rate_limit_per_second": 1_000_000})
    meter = meter_create(
        tenant=tenant,
        actor=actor,
        at=now,
        code="data_mb",
        name="Data (MB)",
        aggregation="sum",
        field="mb",
        dimensions=["device_type", "region"],
    )
    product_create(tenant=tenant, actor=actor, at=now, code="u-data", name="Data", kind="usage")
    plan = plan_create(
        tenant=tenant,
        actor=actor,
        at=now,
        code="iot-bench",
        name="IoT bench",
        components=[{"product": "u-data", "meter": "data_mb", "charge": {"model": "per_unit", "unit_amount": "0.01"}}],
        prices=[{"currency": "EUR"}],
    )
    customer = customer_create(
        tenant=tenant,
        actor=actor,
        at=now,
        external_id=CUSTOMER,
        name="Bench Fleet Co",
        email="billing@fleet.test",
        country="FR",
        timezone="Europe/Paris",
        billing_day=1,
    )
    month = now.astimezone(PARIS).date().replace(day=1)
    subscription = subscription_create(
        tenant=tenant,
        actor=actor,
        at=now,
        external_id=SUBSCRIPTION,
        customer=customer,
        plan=plan,
        signed_at=now,
        starts_on=(month - timedelta(days=1)).replace(day=1),  # last month, so the whole month is covered
        devices=[{"device_id": "dev-%05d" % d} for d in range(devices)],
    )
    _, ingest_key = api_key_create(tenant=tenant, name="bench ingest", scope=ApiKeyScope.INGEST, actor=actor, at=now)
    return Seed(tenant.pk, meter.pk, subscription.pk, ingest_key, created.api_key)


USAGE_TABLES = ("usage_event", "usage_event_key", "usage_usagerollup", "usage_usagedailyrollup", "usage_rejectedevent")


def empty_usage_tables(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        # Those of them that exist: the script also measures older versions of the schema.
        found = conn.execute("SELECT relname FROM pg_class WHERE relname = ANY(%s)", [list(USAGE_TABLES)]).fetchall()
        conn.execute("TRUNCATE " + ", ".join(name for (name,) in found))


# --- after the ingestion ---------------------------------------------------------------------------


def median_ms(func: Callable[[], Any], runs: int) -> tuple[float, Any]:
    result: Any = None
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000, result


def paris_month(now: datetime) -> tuple[datetime, datetime]:
    local = now.astimezone(PARIS)
    first = datetime(local.year, local.month, 1, tzinfo=PARIS)
    following = datetime(local.year + (local.month == 12), local.month % 12 + 1, 1, tzinfo=PARIS)
    return first, following


AGGREGATE_SQL = """
SELECT subscription_id, meter_id, count(*), sum(value) FROM usage_event
WHERE tenant_id = %s AND "timestamp" >= %s AND "timestamp" < %s GROUP BY 1, 2
"""
ROLLUP_SQL = """
SELECT subscription_id, meter_id, sum(event_count), sum(value_sum) FROM usage_usagerollup
WHERE tenant_id = %s AND bucket >= %s AND bucket < %s GROUP BY 1, 2
"""


def time_aggregations(url: str, seed: Seed, now: datetime, runs: int) -> None:
    start, end = paris_month(now)
    with psycopg.connect(url, autocommit=True) as conn:
        params = (seed.tenant_id, start, end)
        ms, rows = median_ms(lambda: conn.execute(AGGREGATE_SQL, params).fetchall(), runs)
        log(f"bill-time aggregation, SQL sum by subscription and meter on usage_event: {ms:,.0f} ms {_rows(rows)}")
        conn.execute("VACUUM (ANALYZE) usage_event")
        ms, rows = median_ms(lambda: conn.execute(AGGREGATE_SQL, params).fetchall(), runs)
        log(f"  the same after VACUUM (ANALYZE) usage_event: {ms:,.0f} ms")
        ms, rows = median_ms(lambda: conn.execute(ROLLUP_SQL, params).fetchall(), runs)
        log(f"  the same from the 15-minute rollups (usage_usagerollup): {ms:,.1f} ms {_rows(rows)}")
    from billing_platform.rls import tenant_context

    with tenant_context(seed.tenant_id):  # as the product reads them: under the tenant's row-level security
        time_rollup_groups(seed, start, end, runs)
        time_aggregate_function(seed, now, start, end, runs)


def time_rollup_groups(seed: Seed, start: datetime, end: datetime, runs: int) -> None:
    """``usage.selectors.rollup_groups`` over the month (what the current usage reads: whole UTC days
    from the daily rollups, the ragged ends from the 15-minute ones), checked against the events."""
    from billing_platform.periods import Period
    from tenancy.models import Tenant
    from usage.selectors import rollup_groups

    tenant = Tenant.objects.get(pk=seed.tenant_id)
    windows = [(seed.subscription_id, Period(start, end))]
    ms, groups = median_ms(
        functools.partial(rollup_groups, tenant=tenant, windows=windows, meter_ids=[seed.meter_id]), runs
    )
    events = sum(g.event_count for g in groups)
    total = sum(g.value_sum for g in groups)
    log(f"usage.selectors.rollup_groups (the month, {len(groups)} groups): {ms:,.1f} ms")
    log(f"  ({events:,} events, sum {total:,.0f})")


def _rows(rows: list[tuple[Any, ...]]) -> str:
    return "(%s)" % "; ".join(f"{r[2]:,} events, sum {r[3]:,.0f}" for r in rows)


def time_aggregate_function(seed: Seed, now: datetime, start: datetime, end: datetime, runs: int) -> None:
    """``usage.aggregation.aggregate`` (and ``aggregate_many``) when they exist: their arguments are
    matched by name, so that a change of signature skips them with a message instead of failing."""
    if importlib.util.find_spec("usage.aggregation") is None:
        log("usage.aggregation.aggregate: skipped, usage/aggregation.py does not exist")
        return
    module = importlib.import_module("usage.aggregation")
    from billing_platform.periods import Period
    from catalog.models import Meter
    from subscriptions.models import Subscription

    subscription = Subscription.objects.select_related("customer", "tenant").get(pk=seed.subscription_id)
    meter = Meter.objects.get(pk=seed.meter_id)
    known: dict[str, Any] = {
        "tenant": subscription.tenant,
        "subscription": subscription,
        "subscriptions": [subscription],
        "subscription_ids": [subscription.pk],
        "customer": subscription.customer,
        "meter": meter,
        "meters": [meter],
        "period": Period(start, end),
        "start": start,
        "end": end,
    }
    variants: list[tuple[str, dict[str, Any]]] = [
        ("aggregate", {}),
        ("aggregate", {"group_by_dimensions": True}),
        ("aggregate_many", {}),
        ("aggregate_many", {"group_by_dimensions": True}),
    ]
    for name, extra in variants:
        func = getattr(module, name, None)
        if func is None:
            log(f"usage.aggregation.{name}: skipped, it does not exist")
            continue
        signature = inspect.signature(func)
        kwargs: dict[str, Any] = {}
        missing = ""
        for pname, param in signature.parameters.items():
            if pname in extra:
                kwargs[pname] = extra[pname]
            elif pname in known:
                kwargs[pname] = known[pname]
            elif param.default is inspect.Parameter.empty and param.kind not in (
                param.VAR_POSITIONAL,
                param.VAR_KEYWORD,
            ):
                missing = pname
        if missing or any(k not in signature.parameters for k in extra):
            log(f"usage.aggregation.{name}{signature}: skipped, cannot call it with {missing or extra}")
            continue
        shown = ", ".join(f"{k}={v!r}" if k in extra else k for k, v in kwargs.items())
        try:
            ms, result = median_ms(functools.partial(func, **kwargs), runs)
        except Exception as exc:
            log(f"usage.aggregation.{name}({shown}): failed with {exc!r}")
            continue
        log(f"usage.aggregation.{name}({shown}): {ms:,.0f} ms ({_describe(result)})")


def _describe(result: Any) -> str:
    rows = list(result.values()) if isinstance(result, dict) else [result]
    flat = [r for group in rows for r in (group if isinstance(group, list) else [group])]
    quantity = sum(getattr(r, "quantity", 0) for r in flat)
    events = sum(getattr(r, "event_count", 0) for r in flat)
    return f"{len(flat)} rows, {events:,} events, quantity {quantity:,.0f}"


def time_current_usage(port: int, api_key: str, runs: int) -> None:
    from django.urls import Resolver404, resolve

    path = f"/api/v1/customers/{CUSTOMER}/current_usage"
    try:
        resolve(path)
    except Resolver404:
        log("GET /api/v1/customers/{external_id}/current_usage: skipped, the route does not exist (yet)")
        return
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    headers = {"Authorization": "Bearer " + api_key, "Accept": "application/json"}
    status: list[int] = []
    body: list[bytes] = []

    def get() -> None:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        body.append(response.read())
        status.append(response.status)

    get()  # once untimed: the worker's first request of this route
    ms, _ = median_ms(get, runs)
    conn.close()
    log(f"GET {path}: {ms:,.0f} ms median of {runs} (status {status[-1]}; {body[-1][:160].decode(errors='replace')})")


def copy_rows(url: str, seed: Seed, spec: Spec, total: int, received_at: datetime) -> tuple[float, float]:
    """One COPY of the rows the API stored into the emptied usage_event (same partitions and
    indexes), then the same plus their keys into usage_event_key. Returns both rates, rows/s."""
    rows = []
    for i in range(total):
        tid, device, ts, mb, device_type, region = spec.attributes(i)
        properties = orjson.dumps({"mb": mb, "device_type": device_type, "region": region}).decode()
        when = datetime.fromtimestamp(ts, UTC)
        rows.append(
            (seed.tenant_id, tid, seed.meter_id, seed.subscription_id, device, when, Decimal(mb), properties, "")
            + (received_at, False)
        )
    statement = "COPY usage_event (%s) FROM STDIN" % ", ".join(EVENT_COLUMNS)
    rates = []
    with psycopg.connect(url, autocommit=True) as conn:
        for with_keys in (False, True):
            conn.execute("TRUNCATE usage_event, usage_event_key")
            conn.execute("CHECKPOINT")
            started = time.perf_counter()
            with conn.transaction(), conn.cursor() as cursor:
                with cursor.copy(statement) as copy:
                    for row in rows:
                        copy.write_row(row)
                if with_keys:
                    with cursor.copy("COPY usage_event_key (tenant_id, transaction_id) FROM STDIN") as copy:
                        for row in rows:
                            copy.write_row((row[0], row[1]))
            rates.append(total / (time.perf_counter() - started))
        stored = conn.execute("SELECT count(*) FROM usage_event").fetchone()
    if stored is None or stored[0] != total:
        log(f"COPY stored {stored} rows, not {total}")
    return rates[0], rates[1]


# --- main ------------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000, help="events to post (default: %(default)s)")
    parser.add_argument("--batch", type=int, default=1000, help="events per request, at most 1000 (%(default)s)")
    parser.add_argument("--devices", type=int, default=1000, help="devices on the subscription (%(default)s)")
    parser.add_argument("--clients", type=int, default=4, help="concurrent client processes (%(default)s)")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn workers (%(default)s)")
    parser.add_argument("--threads", type=int, default=2, help="threads per gthread worker (%(default)s)")
    parser.add_argument(
        "--worker-class",
        choices=("auto", "sync", "gthread"),
        default="auto",
        help="auto: a short trial of each, the faster one runs the benchmark (default)",
    )
    parser.add_argument(
        "--spread",
        choices=("month", "hour"),
        default="month",
        help="event timestamps over the current month (default) or the last hour",
    )
    parser.add_argument("--trial-events", type=int, default=0, help="events per trial (default: events/10, 20k-50k)")
    parser.add_argument("--port", type=int, default=8765, help="gunicorn's port on 127.0.0.1 (%(default)s)")
    parser.add_argument("--runs", type=int, default=5, help="runs of each timed read; the median is printed")
    parser.add_argument("--database-url", default=DEFAULT_DB, help="scratch database (%(default)s)")
    parser.add_argument("--keep-database", action="store_true", help="do not drop the scratch database at the end")
    args = parser.parse_args()
    if not 1 <= args.batch <= 1000:
        parser.error("--batch is 1 to 1000")
    if "bench" not in admin_url(args.database_url)[1]:
        parser.error("the scratch database's name must contain 'bench': it is dropped and created")
    return args


def main() -> int:
    args = parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    url = args.database_url
    # The tenant's rate limit is lifted too, as the key's is (bench_tenant): the bench measures ingestion.
    production = production_settings() | {"TRIPOD_RATE_LIMIT_INGEST_TENANT": "1000000/s"}
    env = dict(os.environ, DATABASE_URL=url, LOG_LEVEL="WARNING", **production)
    os.environ.update(DATABASE_URL=url, LOG_LEVEL="WARNING", **production)
    log(f"scratch database {url}; {args.events:,} events, batches of {args.batch}, {args.clients} clients")
    with scratch_database(url, args.keep_database, log), tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        started = time.perf_counter()
        subprocess.run([PY, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env, check=True, capture_output=True)
        import django

        django.setup()
        from django.db import connections

        from billing_platform import rls

        # This process seeds as the login role, as the tests do; what it measures runs under the
        # tenant's row-level security (tenant_context), and gunicorn as in production.
        rls.set_role_on_connect = False
        now = datetime.now(UTC)
        seeded = seed(args.devices, now)
        connections.close_all()  # before the client processes fork
        log(f"migrated and seeded ({args.devices:,} devices) in {time.perf_counter() - started:.1f} s")
        start, span, spread = time_spread(now, args.spread)
        log(f"event timestamps spread over {spread}")
        target = Target("127.0.0.1", args.port, seeded.ingest_key)

        def server(worker_class: str) -> Gunicorn:
            return Gunicorn(
                timeout=300,
                env=env,
                port=args.port,
                workers=args.workers,
                worker_class=worker_class,
                threads=args.threads,
                log=Path(tmp) / f"gunicorn-{worker_class}.log",
            )

        chosen = args.worker_class
        if chosen == "auto":
            trial = args.trial_events or min(50_000, max(20_000, args.events // 10))
            rates: dict[str, float] = {}
            for worker_class in ("sync", "gthread"):
                srv = server(worker_class)
                try:
                    srv.start()
                    warm = Spec(f"warm-{worker_class}", args.devices, start, span)  # untimed: first requests
                    post_events(
                        total=args.clients * args.batch * 2,
                        clients=args.clients,
                        batch=args.batch,
                        spec=warm,
                        target=target,
                    )
                    spec = Spec(f"trial-{worker_class}", args.devices, start, span)
                    run = post_events(total=trial, clients=args.clients, batch=args.batch, spec=spec, target=target)
                finally:
                    srv.stop()
                print_run(f"trial {srv.describe()}", run)
                rates[worker_class] = run.rate
            chosen = max(rates, key=lambda k: rates[k])
            empty_usage_tables(url)
        srv = server(chosen)
        log(f"benchmark with {srv.describe()}" + (" (the faster in the trial)" if args.worker_class == "auto" else ""))
        spec = Spec("bench", args.devices, start, span)
        ok = True
        try:
            srv.start()
            assert srv.proc is not None
            meter = CpuMeter(url, srv.proc.pid)
            meter.start()
            run = post_events(total=args.events, clients=args.clients, batch=args.batch, spec=spec, target=target)
            cpu = meter.stop()
            print_run("API", run)
            print_cpu(cpu, run)
            errors = srv.errors()
            if errors:
                log("gunicorn log (errors):\n" + errors)
            with psycopg.connect(url, autocommit=True) as conn:
                counted = conn.execute("SELECT count(*), coalesce(sum(value), 0) FROM usage_event").fetchone()
            count, total = counted if counted else (0, 0)
            expected = spec.mb_total(args.events)
            ok = count == args.events and total == expected
            verdict = "OK" if ok else "MISMATCH"
            log(
                f"stored: {count:,} rows in usage_event, sum of mb {total:,.0f}"
                f" (expected {args.events:,} and {expected:,}): {verdict}"
            )
            time_aggregations(url, seeded, now, args.runs)
            time_current_usage(args.port, seeded.full_key, args.runs)
        finally:
            srv.stop()
        from django.db import connections as conns

        conns.close_all()
        copy_rate, copy_keys_rate = copy_rows(url, seeded, spec, args.events, now)
        log(f"raw COPY of the same {args.events:,} rows into usage_event: {copy_rate:,.0f} rows/s")
        log(f"  the same rows + their keys into usage_event_key (one transaction): {copy_keys_rate:,.0f} rows/s")
        log(
            f"API / COPY: {run.rate / copy_rate:.1%} (API {run.rate:,.0f} events/s vs {copy_rate:,.0f} rows/s;"
            f" vs COPY+keys {run.rate / copy_keys_rate:.1%}; target >= 30,000 events/s, "
            f"{'reached' if run.rate >= 30_000 else 'not reached'})"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        log("interrupted")
        sys.exit(130)
