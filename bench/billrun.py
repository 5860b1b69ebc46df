"""Bill-run benchmark: a real bill run (``bill_run_create`` -> Celery ``bill_run_execute_task`` ->
chunks of ``CHUNK_SIZE`` customers -> ``bill_run_chunk``) over many customers, on Celery workers,
timed end to end; then what one invoice costs in SQL queries and where its time goes.

    .venv/bin/python bench/billrun.py [--customers 10000] [--devices 5] [--events-per-device 5]
        [--workers 1] [--concurrency 2] [--sample 50]
        [--database-url postgres://postgres@127.0.0.1:5432/tripod_billrun_bench]
        [--redis-url redis://127.0.0.1:6379/9]

    .venv/bin/python bench/billrun.py --customers 1000      # a quick check (about a minute)

Everything happens in a scratch database that the script creates, migrates (``manage.py migrate``)
and drops at the end, also on Ctrl-C or an error; its name must contain "bench" and an existing one
is dropped first. The Celery broker is a dedicated Redis database (``--redis-url``, not db 0),
flushed before and after.

Seed: a tenant (EUR, Europe/Paris), the meter ``data_mb`` (sum of ``mb``, dimensions device_type and
region), the tax rate FR standard 20 %, and a Smart-Fleet-like plan: hardware 240.00 in 12
instalments billed at signature, a service of 25.00 per device per month from the subscription's
start, and pooled usage of ``data_mb`` with 1024 MB included per device and graduated tiers
(0.010 up to 10,000 MB, then 0.005). Customer 0 is made with the product's services
(``customer_create``, ``subscription_create``, ``device_event_apply``); the others copy its values
with ``bulk_create`` (the services take tens of milliseconds a customer), and the copies are
checked field by field against it. Every customer is in FR, billing day 1, with a subscription
that started on the first of last month (signed that day at 09:00) and ``--devices`` devices
(added at signature, activated a day later). Then ``--events-per-device`` usage events per device
spread over last month, ingested by ``usage.ingest.events_ingest`` in batches of 1,000 (so the
rollups are the product's own), and their count and sum are checked.

Measured, in this process, before the run and rolled back (nothing is left behind):
``bill_run_chunk`` over ``--sample`` customers (a chunk: what a bill run really spends per
customer) inside ``CaptureQueriesContext`` (queries and milliseconds per invoice), the same with
every query attributed to its call site, ``invoice_generate`` one customer at a time (the path of
a single invoice), and a cProfile of ``bill_run_chunk`` over ``--profile-customers`` customers.

The run: ``--workers`` ``celery -A billing_platform worker -c CONCURRENCY --pool prefork``
processes, started in their own sessions and pinged until they answer; ``bill_run_create`` for the
first of this month (Europe/Paris), then the BillRun row is polled until it is completed. Printed:
the wall time from ``bill_run_create`` to completion, invoices/s, invoices created, failures (and
the first errors), and where the CPU went meanwhile (workers, PostgreSQL, the rest) from /proc.
Timings are printed, never asserted; the exit status is 1 only when the run does not complete,
has failures, or the seeded data is not what was asked.
"""

import argparse
import cProfile
import os
import pstats
import re
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.parse
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from procs import CLOCK_TICK, machine_cpu, postmaster_pid, proc_stat, tree_cpu  # bench/procs.py
from scratchdb import admin_url, create_database, drop_database, production_settings  # bench/scratchdb.py

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing_platform.settings")

PY = sys.executable
CELERY = str(Path(PY).parent / "celery")
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/tripod_billrun_bench"
DEFAULT_REDIS = "redis://127.0.0.1:6379/9"
TZ_NAME = "Europe/Paris"
PARIS = ZoneInfo(TZ_NAME)
DEVICE_TYPES = ("tracker", "sensor", "gateway")
REGIONS = ("EU", "US", "APAC", "LATAM")
MASK64 = (1 << 64) - 1
BATCH = 1000
TARGET_SECONDS = 60.0
TARGET_QUERIES = 10.0


def log(message: str) -> None:
    print(message, flush=True)


def mix(i: int) -> int:
    """splitmix64: a deterministic pseudo-random function of i."""
    x = (i * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) & MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK64
    return x ^ (x >> 31)


def customer_ref(i: int) -> str:
    return "c%05d" % i


def device_ref(i: int, j: int) -> str:
    return "c%05d-d%d" % (i, j)


# --- the scratch database, Redis -------------------------------------------------------------------


def redis_db(url: str) -> int:
    path = urllib.parse.urlsplit(url).path.strip("/")
    return int(path) if path.isdigit() else 0


def flush_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


@contextmanager
def scratch(url: str, redis_url: str, keep: bool) -> Iterator[None]:
    create_database(url)
    flush_redis(redis_url)
    try:
        yield
    finally:
        from django.apps import apps

        if apps.ready:
            from django.db import connections

            connections.close_all()
        try:
            flush_redis(redis_url)
        except Exception as exc:  # the database must still be dropped
            log(f"could not flush {redis_url}: {exc!r}")
        if keep:
            log(f"scratch database kept: {url}")
        else:
            drop_database(url)
            log("scratch database dropped")


@contextmanager
def rolled_back() -> Iterator[None]:
    """A transaction that is always rolled back: measurements leave nothing behind."""
    from django.db import transaction

    with transaction.atomic():
        yield
        transaction.set_rollback(True)


# --- the seed --------------------------------------------------------------------------------------


@dataclass
class Seed:
    tenant: Any
    plan: Any
    meter: Any
    billing_date: date
    usage_start: datetime  # last month, local midnights
    usage_end: datetime
    customer_ids: list[Any]  # in the order of their index: customer_ids[i] is c%05d
    service_seconds: float  # the reference customer made with the services


def months(now: datetime) -> tuple[date, date]:
    """The first of last month and the first of this month, in Paris."""
    this = now.astimezone(PARIS).date().replace(day=1)
    last = (this - timedelta(days=1)).replace(day=1)
    return last, this


def seed_catalog(now: datetime) -> tuple[Any, Any, Any]:
    from catalog.models import Meter
    from catalog.tests.factories import smart_fleet_catalog
    from tenancy.services import tenant_create

    tenant = tenant_create(
        name="Bench Fleet Billing",
        slug="bench-billrun",
        currency="EUR",
        timezone=TZ_NAME,
        admin_email="billrun@tripod.test",
        at=now,
    ).tenant
    # billing.md's offer, the platform fee charged from each subscription's start
    plan = smart_fleet_catalog(tenant, at=now, fee_starts_on="subscription_start")
    meter = Meter.objects.get(tenant=tenant, code="data_mb")
    return tenant, plan, meter


def device_fields(i: int, j: int) -> tuple[str, str]:
    h = mix(i * 64 + j)
    return DEVICE_TYPES[h % 3], REGIONS[(h >> 8) % 4]


def seed_reference(tenant: Any, plan: Any, now: datetime, devices: int, signed: datetime) -> float:
    """Customer 0, made the way the API makes it; returns the seconds it took."""
    from customers.services import customer_create
    from subscriptions.services import device_event_apply, subscription_create
    from tenancy.actors import Actor

    actor = Actor.system("bench")
    started = time.perf_counter()
    customer = customer_create(
        tenant=tenant,
        actor=actor,
        at=now,
        external_id=customer_ref(0),
        name="Fleet customer 0",
        email="c00000@fleet.test",
        country="FR",
        timezone=TZ_NAME,
        billing_day=1,
    )
    subscription_create(
        tenant=tenant,
        actor=actor,
        at=now,
        external_id="s00000",
        customer=customer,
        plan=plan,
        signed_at=signed,
        starts_on=signed.astimezone(PARIS).date(),
        devices=[
            {"device_id": device_ref(0, j), "device_type": device_fields(0, j)[0], "region": device_fields(0, j)[1]}
            for j in range(devices)
        ],
    )
    for j in range(devices):
        device_event_apply(
            tenant=tenant,
            device_id=device_ref(0, j),
            event_type="device.activated",
            occurred_at=signed + timedelta(days=1),
            actor=actor,
        )
    return time.perf_counter() - started


CUSTOMER_FIELDS = ("currency", "timezone", "language", "country", "tax_id", "billing_day", "partner_id")
SUBSCRIPTION_FIELDS = (
    "plan_id",
    "status",
    "signed_at",
    "starts_at",
    "trial_ends_at",
    "commitment_ends_at",
    "auto_renew",
    "price_locked",
    "locked_price_version_id",
    "cancel_at",
    "cancelled_at",
    "ended_at",
)
DEVICE_FIELDS = ("device_type", "region", "added_at", "shipped_at", "activated_at", "deactivated_at", "removed_at")
EVENT_FIELDS = ("at", "type", "device_id", "from_status", "to_status", "actor_type", "actor_label", "data")


def seed_bulk(tenant: Any, customers: int) -> None:
    """Customers 1..N-1: copies of customer 0's rows (customer, subscription, devices, timeline)."""
    from customers.models import Customer
    from subscriptions.models import Device, Subscription, SubscriptionEvent

    ref_customer = Customer.objects.get(tenant=tenant, external_id=customer_ref(0))
    ref_subscription = Subscription.objects.get(customer=ref_customer)
    ref_devices = list(Device.objects.filter(subscription=ref_subscription).order_by("device_id"))
    ref_events = list(SubscriptionEvent.objects.filter(subscription=ref_subscription).order_by("at", "id"))

    def rename(value: Any, i: int) -> Any:
        if isinstance(value, str):
            return value.replace(customer_ref(0) + "-", customer_ref(i) + "-")
        if isinstance(value, list):
            return [rename(v, i) for v in value]
        if isinstance(value, dict):
            return {k: rename(v, i) for k, v in value.items()}
        return value

    step = 2000
    for first in range(1, customers, step):
        indexes = range(first, min(first + step, customers))
        new_customers = [
            Customer(
                tenant=tenant,
                external_id=customer_ref(i),
                name=f"Fleet customer {i}",
                email=f"{customer_ref(i)}@fleet.test",
                **{f: getattr(ref_customer, f) for f in CUSTOMER_FIELDS},
            )
            for i in indexes
        ]
        Customer.objects.bulk_create(new_customers)
        subscriptions = [
            Subscription(
                tenant=tenant,
                external_id="s%05d" % i,
                customer=c,
                **{f: getattr(ref_subscription, f) for f in SUBSCRIPTION_FIELDS},
            )
            for i, c in zip(indexes, new_customers, strict=True)
        ]
        Subscription.objects.bulk_create(subscriptions)
        Device.objects.bulk_create(
            [
                Device(
                    tenant=tenant,
                    subscription=s,
                    device_id=device_ref(i, j),
                    **{
                        **{f: getattr(d, f) for f in DEVICE_FIELDS},
                        "device_type": device_fields(i, j)[0],
                        "region": device_fields(i, j)[1],
                    },
                )
                for i, s in zip(indexes, subscriptions, strict=True)
                for j, d in enumerate(ref_devices)
            ]
        )
        SubscriptionEvent.objects.bulk_create(
            [
                SubscriptionEvent(tenant=tenant, subscription=s, **{f: rename(getattr(e, f), i) for f in EVENT_FIELDS})
                for i, s in zip(indexes, subscriptions, strict=True)
                for e in ref_events
            ]
        )


def check_copies(tenant: Any, customers: int) -> list[str]:
    """Customer 0 (the services') against the last bulk copy: the same values wherever billing reads."""
    from customers.models import Customer
    from subscriptions.models import Device, Subscription, SubscriptionEvent

    if customers < 2:
        return []
    mismatches = []
    pair = [Customer.objects.get(tenant=tenant, external_id=customer_ref(i)) for i in (0, customers - 1)]
    subs = [Subscription.objects.get(customer=c) for c in pair]
    devices = [list(Device.objects.filter(subscription=s).order_by("device_id")) for s in subs]
    events = [list(SubscriptionEvent.objects.filter(subscription=s).order_by("at", "id")) for s in subs]
    for name, fields, a, b in [
        ("customer", CUSTOMER_FIELDS, pair[0], pair[1]),
        ("subscription", SUBSCRIPTION_FIELDS, subs[0], subs[1]),
    ]:
        mismatches += [
            f"{name}.{f}: {getattr(a, f)!r} != {getattr(b, f)!r}" for f in fields if getattr(a, f) != getattr(b, f)
        ]
    if len(devices[0]) != len(devices[1]):
        mismatches.append(f"devices: {len(devices[0])} != {len(devices[1])}")
    for a, b in zip(*devices, strict=False):
        for f in DEVICE_FIELDS:
            if f not in ("device_type", "region") and getattr(a, f) != getattr(b, f):
                mismatches.append(f"device.{f}: {getattr(a, f)!r} != {getattr(b, f)!r}")
    if [e.type for e in events[0]] != [e.type for e in events[1]]:
        mismatches.append("timeline: %s != %s" % ([e.type for e in events[0]], [e.type for e in events[1]]))
    return mismatches


def event_batches(customers: int, devices: int, per_device: int, start: datetime, span: int) -> Iterator[list[Any]]:
    batch: list[dict[str, Any]] = []
    for i in range(customers):
        for j in range(devices):
            device_type, region = device_fields(i, j)
            for k in range(per_device):
                n = (i * devices + j) * per_device + k
                h = mix(n)
                when = start + timedelta(seconds=h % span)
                batch.append(
                    {
                        "transaction_id": "ev-%s-%d" % (device_ref(i, j), k),
                        "code": "data_mb",
                        "device_id": device_ref(i, j),
                        "timestamp": when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                        "properties": {"mb": 1 + (h >> 32) % 2000, "device_type": device_type, "region": region},
                    }
                )
                if len(batch) == BATCH:
                    yield batch
                    batch = []
    if batch:
        yield batch


def ingest_usage(
    tenant: Any, customers: int, devices: int, per_device: int, start: datetime, end: datetime, now: datetime
) -> tuple[int, int, float]:
    """Last month's events through events_ingest; returns (accepted, not accepted, seconds)."""
    from usage.ingest import events_ingest
    from usage.models import UsageSettings

    settings, _ = UsageSettings.objects.get_or_create(tenant=tenant)
    span = int((end - start).total_seconds())
    accepted = other = 0
    first_problem = ""
    started = time.perf_counter()
    for batch in event_batches(customers, devices, per_device, start, span):
        result = events_ingest(tenant=tenant, events=batch, received_at=now, settings=settings)
        accepted += result.count("accepted")
        for outcome in result.results:
            if outcome.status != "accepted":
                other += 1
                first_problem = first_problem or f"{outcome.status} {outcome.reason} {outcome.detail}"
    if first_problem:
        log("  first event not accepted: " + first_problem)
    return accepted, other, time.perf_counter() - started


def expected_usage(customers: int, devices: int, per_device: int) -> int:
    return sum(1 + (mix(n) >> 32) % 2000 for n in range(customers * devices * per_device))


def seed(args: argparse.Namespace, now: datetime, url: str) -> tuple[Seed, bool]:
    from customers.models import Customer

    last, this = months(now)
    usage_start = datetime(last.year, last.month, 1, tzinfo=PARIS)
    usage_end = datetime(this.year, this.month, 1, tzinfo=PARIS)
    signed = datetime(last.year, last.month, 1, 9, tzinfo=PARIS)
    started = time.perf_counter()
    tenant, plan, meter = seed_catalog(now)
    service_seconds = seed_reference(tenant, plan, now, args.devices, signed)
    seed_bulk(tenant, args.customers)
    ids = dict(Customer.objects.filter(tenant=tenant).values_list("external_id", "pk"))
    customer_ids = [ids[customer_ref(i)] for i in range(args.customers)]
    log(
        f"seeded {args.customers:,} customers x {args.devices} devices in {time.perf_counter() - started:.1f} s"
        f" (customer 0 with the services: {service_seconds * 1000:.0f} ms, so the services alone would take"
        f" about {service_seconds * args.customers:,.0f} s; the others with bulk_create)"
    )
    ok = True
    mismatches = check_copies(tenant, args.customers)
    if mismatches:
        ok = False
        log("  bulk copies differ from the services' customer: " + "; ".join(mismatches))
    else:
        log("  bulk copies match the services' customer 0 (customer, subscription, devices, timeline): OK")
    accepted, other, seconds = ingest_usage(
        tenant, args.customers, args.devices, args.events_per_device, usage_start, usage_end, now
    )
    total = args.customers * args.devices * args.events_per_device
    log(
        f"ingested {accepted:,} of {total:,} events of {usage_start:%B %Y} through events_ingest in {seconds:.1f} s"
        f" ({accepted / seconds if seconds else 0:,.0f} events/s, batches of {BATCH}; {other} not accepted)"
    )
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*), coalesce(sum(value), 0) FROM usage_event").fetchone()
        rollups = conn.execute("SELECT count(*), coalesce(sum(value_sum), 0) FROM usage_usagerollup").fetchone()
        conn.execute("VACUUM (ANALYZE)")
    count, mb = row if row else (0, 0)
    rcount, rmb = rollups if rollups else (0, 0)
    want = expected_usage(args.customers, args.devices, args.events_per_device)
    good = count == total and mb == want and rmb == want
    ok = ok and good
    log(
        f"  usage_event: {count:,} rows, {mb:,.0f} MB; rollups: {rcount:,} rows, {rmb:,.0f} MB"
        f" (expected {total:,} and {want:,} MB): {'OK' if good else 'MISMATCH'}"
    )
    return Seed(tenant, plan, meter, this, usage_start, usage_end, customer_ids, service_seconds), ok


# --- queries and time per invoice ------------------------------------------------------------------

TABLE_RE = re.compile(r'(?:FROM|INTO|UPDATE|JOIN)\s+"?(\w+)"?', re.IGNORECASE)


def sql_shape(sql: str) -> str:
    words = sql.split(None, 1)
    verb = words[0].upper() if words else "?"
    if verb in ("SAVEPOINT", "RELEASE", "ROLLBACK"):
        return "SAVEPOINT/RELEASE"
    tables = TABLE_RE.findall(sql)
    return f"{verb} {tables[0] if tables else '?'}"


def call_site() -> str:
    """The innermost frames of the project's code (not Django's, not this script's) that ran a query."""
    frames = [
        f
        for f in traceback.extract_stack()
        if f.filename.startswith(str(ROOT)) and "/.venv/" not in f.filename and f.filename != __file__
    ]
    if not frames:
        return "?"
    inner = frames[-1]
    site = f"{Path(inner.filename).relative_to(ROOT)}:{inner.lineno} {inner.name}"
    if len(frames) > 1:
        site += f" (from {frames[-2].name})"
    return site


class Attribution:
    """An execute wrapper: each query's call site, shape and duration."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, float]] = []

    def __call__(self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.rows.append((call_site(), sql_shape(sql), time.perf_counter() - started))


def customers_for(seed: Seed, indexes: Sequence[int]) -> list[Any]:
    from customers.models import Customer

    by_pk = {c.pk: c for c in Customer.objects.filter(pk__in=[seed.customer_ids[i] for i in indexes])}
    return [by_pk[seed.customer_ids[i]] for i in indexes]


def measure_queries(seed: Seed, sample: int, profile_customers: int, now: datetime) -> float:
    """Queries and time per invoice, in this process, rolled back: first ``bill_run_chunk`` over
    ``sample`` customers (what a bill run spends per customer; the headline), then
    ``invoice_generate`` one customer at a time (the path of a single invoice). Returns the bill
    run's queries per invoice."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from invoicing.models import BillRun
    from invoicing.services import bill_run_chunk, invoice_generate

    n = len(seed.customer_ids)
    indexes = list(range(1, min(n, sample + 1))) or [0]
    warm = customers_for(seed, [0])[0]
    with rolled_back():  # first calls: imports, content types, prepared caches
        invoice_generate(customer=warm, billing_date=seed.billing_date, at=now)
    customers = customers_for(seed, indexes)
    ids = [str(c.pk) for c in customers]

    def chunk() -> None:
        run = BillRun.objects.create(tenant=seed.tenant, billing_date=seed.billing_date)
        bill_run_chunk(run_id=str(run.pk), customer_ids=ids, at=now)

    with rolled_back(), CaptureQueriesContext(connection) as captured:
        started = time.perf_counter()
        chunk()
        seconds = time.perf_counter() - started
    per_invoice = (len(captured.captured_queries) - 1) / len(customers)  # not the BillRun insert
    db_ms = sum(float(q["time"]) for q in captured.captured_queries) * 1000 / len(customers)
    log(
        f"bill_run_chunk over {len(customers)} customers in this process (rolled back):"
        f" {per_invoice:.1f} queries per invoice, {seconds * 1000 / len(customers):.1f} ms per invoice"
        f" of which {db_ms:.1f} ms in execute (= {len(customers) / seconds:,.0f} invoices/s per busy core;"
        f" target <= {TARGET_QUERIES:.0f} queries: {'reached' if per_invoice <= TARGET_QUERIES else 'not reached'})"
    )
    attribution = Attribution()
    with rolled_back(), connection.execute_wrapper(attribution):
        chunk()
    by_site: dict[str, list[float]] = defaultdict(list)
    shapes: dict[str, Counter[str]] = defaultdict(Counter)
    for site, shape, duration in attribution.rows:
        by_site[site].append(duration)
        shapes[site][shape] += 1
    log("  queries per invoice by call site (count, ms, statements; per chunk when the count is below 1):")
    for site, durations in sorted(by_site.items(), key=lambda kv: -len(kv[1])):
        kinds = ", ".join(f"{shape} x{count / len(customers):g}" for shape, count in shapes[site].most_common(3))
        log(
            f"    {len(durations) / len(customers):6.2f}  {sum(durations) * 1000 / len(customers):5.2f} ms"
            f"  {site}: {kinds}"
        )

    single = customers[: min(len(customers), 20)]
    with rolled_back(), CaptureQueriesContext(connection) as one_by_one:
        started = time.perf_counter()
        for c in single:
            invoice_generate(customer=c, billing_date=seed.billing_date, at=now)
        seconds = time.perf_counter() - started
    log(
        f"invoice_generate one customer at a time, {len(single)} customers (rolled back):"
        f" {len(one_by_one.captured_queries) / len(single):.1f} queries, {seconds * 1000 / len(single):.1f} ms"
        " per invoice"
    )

    profiled = customers_for(seed, list(range(min(n, sample + 1), min(n, sample + 1 + profile_customers))) or [0])
    profiled_ids = [str(c.pk) for c in profiled]
    profiler = cProfile.Profile()
    with rolled_back():
        run = BillRun.objects.create(tenant=seed.tenant, billing_date=seed.billing_date)
        profiler.enable()
        bill_run_chunk(run_id=str(run.pk), customer_ids=profiled_ids, at=now)
        profiler.disable()
    print_profile(profiler, len(profiled))
    return per_invoice


def area(filename: str) -> str:
    if "/psycopg" in filename:
        return "psycopg (sending queries, waiting for PostgreSQL, reading rows)"
    if "/django/db/models/sql/" in filename:
        return "Django ORM: SQL compilation"
    if "/django/db/models/" in filename:
        return "Django ORM: querysets, model instances"
    if "/django/db/" in filename:
        return "Django db: connection, cursor wrappers, transactions"
    if "/django/" in filename:
        return "Django, other"
    if filename.startswith(str(ROOT)) and "/.venv/" not in filename:
        return "Tripod code"
    if filename.startswith("~") or "/python3" in filename and "site-packages" not in filename:
        return "Python stdlib and builtins (decimal, datetime, zoneinfo...)"
    return "other libraries"


def print_profile(profiler: cProfile.Profile, invoices: int) -> None:
    stats = pstats.Stats(profiler)
    raw: dict[tuple[str, int, str], tuple[int, int, float, float, Any]] = stats.stats  # type: ignore[attr-defined]
    total = sum(tt for _, _, tt, _, _ in raw.values())
    log(f"cProfile of bill_run_chunk for {invoices} customer(s): {total * 1000 / invoices:.1f} ms per invoice")
    by_area: dict[str, float] = defaultdict(float)
    for (filename, _, _), (_, _, tt, _, _) in raw.items():
        by_area[area(filename)] += tt
    log("  own time by area:")
    for name, tt in sorted(by_area.items(), key=lambda kv: -kv[1]):
        log(f"    {tt * 1000 / invoices:6.1f} ms ({tt / total:4.0%})  {name}")
    project = [
        (ct, nc, tt, f"{Path(filename).relative_to(ROOT)}:{line} {func}")
        for (filename, line, func), (_, nc, tt, ct, _) in raw.items()
        if filename.startswith(str(ROOT)) and "/.venv/" not in filename
    ]
    log("  Tripod functions by cumulative time (ms per invoice, calls per invoice):")
    for ct, nc, _, name in sorted(project, reverse=True)[:22]:
        log(f"    {ct * 1000 / invoices:6.1f} ms  {nc / invoices:6.1f} calls  {name}")


# --- the workers and the run -----------------------------------------------------------------------


class OwnBackends:
    """CPU of the PostgreSQL backends connected to the scratch database (the workers'; Celery's
    Django fixup closes the connection after every task, so each chunk has its own backend):
    sampled from /proc while the run goes on, each backend from 0 when it started during the run.
    A backend's last fraction of a second before it exits is missed: a lower bound."""

    def __init__(self, url: str) -> None:
        self.url, self.name = url, admin_url(url)[1]
        self.base: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self.since = datetime.now(UTC)

    def sample(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pid, backend_start FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (self.name,),
            ).fetchall()
        for pid, backend_start in rows:
            fields = proc_stat(pid)
            if not fields:
                continue
            cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICK
            if pid not in self.base:
                self.base[pid] = cpu if backend_start < self.since else 0.0
            self.last[pid] = cpu

    def used(self) -> float:
        return sum(cpu - self.base[pid] for pid, cpu in self.last.items())


class Workers:
    """Celery workers, each in its own session so that Ctrl-C reaches this script only."""

    def __init__(self, *, count: int, concurrency: int, env: dict[str, str], logdir: Path) -> None:
        self.count, self.concurrency, self.env, self.logdir = count, concurrency, env, logdir
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        for i in range(self.count):
            args = [CELERY, "-A", "billing_platform", "worker", "-c", str(self.concurrency), "--pool", "prefork"]
            args += ["-l", "warning", "-n", f"billrun-bench{i}@%h", "--without-gossip", "--without-mingle"]
            with (self.logdir / f"worker{i}.log").open("ab") as out:
                self.procs.append(
                    subprocess.Popen(
                        args, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
                    )
                )

    def wait_ready(self, timeout: float = 90) -> None:
        from billing_platform.celery import app

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            dead = [p for p in self.procs if p.poll() is not None]
            if dead:
                raise RuntimeError("a Celery worker exited; its log:\n" + self.log_tail())
            replies = app.control.ping(timeout=1.0)
            if len(replies) >= self.count:
                return
        raise RuntimeError("the Celery workers did not answer a ping; their log:\n" + self.log_tail())

    def cpu(self) -> float:
        return sum(tree_cpu(p.pid) for p in self.procs if p.poll() is None)

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)  # warm shutdown of the worker and its pool
        for p in self.procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)  # its own session: the group id is its pid
                p.wait()
        self.procs = []

    def log_tail(self, errors_only: bool = False) -> str:
        text = "\n".join(f.read_text(errors="replace") for f in sorted(self.logdir.glob("worker*.log")))
        if errors_only:
            text = "\n".join(line for line in text.splitlines() if ERROR_RE.search(line))
        return text[-3000:]


ERROR_RE = re.compile(r"\b(ERROR|CRITICAL)\b|Traceback|^\w+(Error|Exception):")
FINISHED = ("completed", "completed_with_errors", "failed")


def bill_run(seed: Seed, workers: Workers, url: str, timeout: float) -> bool:
    from django.db import connections

    from invoicing.models import BillRun, BillRunCustomer, Invoice
    from invoicing.services import CHUNK_SIZE, bill_run_create
    from tenancy.actors import Actor

    postmaster = postmaster_pid(url)
    connections.close_all()
    workers.start()
    workers.wait_ready()
    log(
        f"{workers.count} Celery worker(s) x {workers.concurrency} prefork processes ready;"
        f" bill run for {seed.billing_date} ({len(seed.customer_ids):,} customers, chunks of {CHUNK_SIZE})"
    )
    cpu_workers, cpu_pg, machine = workers.cpu(), tree_cpu(postmaster) if postmaster else 0.0, machine_cpu()
    backends = OwnBackends(url)
    backends.sample()
    started = time.perf_counter()
    run = bill_run_create(tenant=seed.tenant, billing_date=seed.billing_date, actor=Actor.system("bench"), at=now_utc())
    planned_at = None
    next_report = started + 10
    next_sample = started
    status = run.status
    while True:
        row = BillRun.objects.filter(pk=run.pk).values("status", "total", "done", "failed", "created").get()
        status = row["status"]
        now = time.perf_counter()
        if planned_at is None and status != "pending":
            planned_at = now
        if status in FINISHED:
            break
        if now - started > timeout:
            log(f"  not finished after {timeout:.0f} s: {row}")
            break
        if now >= next_sample:
            backends.sample()
            next_sample = now + 0.3
        if now >= next_report:
            log(
                f"  {now - started:5.1f} s: {status}, {row['done'] + row['failed']:,} of {row['total']:,} customers"
                f" ({row['created']:,} invoices)"
            )
            next_report += 10
        time.sleep(0.1)
    seconds = time.perf_counter() - started
    busy, idle = machine_cpu()
    used_workers = workers.cpu() - cpu_workers
    used_pg = (tree_cpu(postmaster) - cpu_pg) if postmaster else 0.0
    backends.sample()
    used_own = backends.used()
    busy, idle = busy - machine[0], idle - machine[1]
    run.refresh_from_db()
    invoices = Invoice.objects.filter(bill_run=run).count()
    rate = run.created / seconds if seconds else 0.0
    log(
        f"bill run {run.status} in {seconds:.1f} s: {run.created:,} invoices created ({invoices:,} rows),"
        f" {run.done:,} done, {run.failed:,} failed of {run.total:,}; {rate:,.0f} invoices/s"
        f" (planned after {(planned_at or seconds + started) - started:.1f} s;"
        f" target {len(seed.customer_ids):,} in <= {TARGET_SECONDS:.0f} s:"
        f" {'reached' if run.status in FINISHED and seconds <= TARGET_SECONDS else 'not reached'})"
    )
    total = busy + idle
    other = busy - used_workers - used_pg

    def part(value: float) -> str:
        return f"{value:.1f} s ({value / total:.0%})" if total else f"{value:.1f} s"

    log(
        f"  CPU over the run ({total:.1f} CPU-seconds on {os.cpu_count()} cores): Celery workers {part(used_workers)},"
        f" PostgreSQL {part(used_pg)}, other (this script, kernel, other programs) {part(other)}, idle {part(idle)};"
        f" per invoice: workers {used_workers / max(run.created, 1) * 1000:.1f} ms,"
        f" PostgreSQL {used_pg / max(run.created, 1) * 1000:.1f} ms"
    )
    per_invoice = (used_workers + used_own) / max(run.created, 1)
    cores = os.cpu_count() or 1
    log(
        f"  of PostgreSQL's time, the backends connected to the scratch database (the workers'): >= {used_own:.1f} s"
        f" = {used_own / max(run.created, 1) * 1000:.1f} ms per invoice (the rest is other databases' work,"
        f" autovacuum, checkpoints); so this code needs {per_invoice * 1000:.1f}"
        f" CPU-ms per invoice: at most {cores / max(per_invoice, 1e-9):,.0f} invoices/s on {cores} idle cores"
    )
    if total and other / total > 0.25:
        log("  (something else used the CPU during the run: the rate above is lower than this code can do)")
    for failure in BillRunCustomer.objects.filter(bill_run=run, outcome="failed").order_by("id")[:5]:
        log(f"  failed: customer {failure.customer_id}: {failure.error[:300]}")
    errors = workers.log_tail(errors_only=True)
    if errors:
        log("  worker log (errors):\n" + errors)
    check_invoices(seed, run)
    return run.status == "completed" and run.failed == 0 and run.done == run.total == len(seed.customer_ids)


def check_invoices(seed: Seed, run: Any) -> None:
    """Customer 0's invoice, and whether a bulk customer's fixed lines are the same."""
    from invoicing.lines import line_description
    from invoicing.models import Invoice, InvoiceLine

    n = len(seed.customer_ids)
    mine = {
        inv.customer_id: inv
        for inv in Invoice.objects.filter(bill_run=run, customer_id__in=[seed.customer_ids[0], seed.customer_ids[-1]])
    }
    ref = mine.get(seed.customer_ids[0])
    if ref is None:
        log("  customer 0 has no invoice")
        return
    lines = list(InvoiceLine.objects.filter(invoice=ref).order_by("position"))
    log(
        f"  customer 0's invoice: net {ref.net_total.amount}, tax {ref.tax_total.amount}, "
        f"total {ref.total.amount} EUR; "
        + "; ".join(
            f"{x.type} {line_description(x.description, x.qualifiers, language='en')} "
            f"x{x.quantity.normalize():f} = {x.amount}"
            for x in lines
        )
    )
    other = mine.get(seed.customer_ids[-1])
    if n > 1 and other is not None:

        def fixed(invoice: Any) -> list[tuple[Any, ...]]:
            return [
                (x.type, x.product, x.description, x.qualifiers, x.quantity, x.amount, x.period_start, x.period_end)
                for x in InvoiceLine.objects.filter(invoice=invoice).exclude(type="usage").order_by("position")
            ]

        same = fixed(ref) == fixed(other)
        log(f"  hardware and service lines of customer {n - 1} (bulk) = customer 0's: {'OK' if same else 'DIFFERENT'}")
    totals = Invoice.objects.filter(bill_run=run).values_list("total", flat=True)
    log(f"  sum of the run's invoice totals: {sum(totals, Decimal(0)):,} EUR")


def now_utc() -> datetime:
    return datetime.now(UTC)


# --- main ------------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=10_000, help="customers billed (default: %(default)s)")
    parser.add_argument("--devices", type=int, default=5, help="devices per customer (%(default)s)")
    parser.add_argument("--events-per-device", type=int, default=5, help="usage events per device (%(default)s)")
    parser.add_argument("--workers", type=int, default=1, help="Celery worker processes (%(default)s)")
    parser.add_argument("--concurrency", type=int, default=2, help="prefork processes per worker (%(default)s)")
    parser.add_argument("--sample", type=int, default=200, help="customers for the query count (%(default)s)")
    parser.add_argument("--profile-customers", type=int, default=200, help="customers profiled (%(default)s)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds to wait for the run (%(default)s)")
    parser.add_argument("--skip-run", action="store_true", help="seed and measure queries only, no bill run")
    parser.add_argument("--database-url", default=DEFAULT_DB, help="scratch database (%(default)s)")
    parser.add_argument("--redis-url", default=DEFAULT_REDIS, help="broker, a dedicated db, flushed (%(default)s)")
    parser.add_argument("--keep-database", action="store_true", help="do not drop the scratch database at the end")
    args = parser.parse_args()
    if args.customers < 1 or args.devices < 1 or args.events_per_device < 0 or args.workers < 1:
        parser.error("--customers, --devices and --workers are at least 1")
    if "bench" not in admin_url(args.database_url)[1]:
        parser.error("the scratch database's name must contain 'bench': it is dropped and created")
    if redis_db(args.redis_url) == 0:
        parser.error("--redis-url must name a dedicated Redis database other than 0 (it is flushed)")
    return args


def main() -> int:
    args = parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    url = args.database_url
    production = production_settings()
    env = dict(os.environ, DATABASE_URL=url, REDIS_URL=args.redis_url, LOG_LEVEL="WARNING", **production)
    env.pop("CELERY_TASK_ALWAYS_EAGER", None)
    os.environ.update(DATABASE_URL=url, REDIS_URL=args.redis_url, LOG_LEVEL="WARNING", **production)
    os.environ.pop("CELERY_TASK_ALWAYS_EAGER", None)
    log(
        f"scratch database {url}, broker {args.redis_url}; {args.customers:,} customers x {args.devices} devices,"
        f" {args.events_per_device} events per device"
    )
    ok = True
    with scratch(url, args.redis_url, args.keep_database), tempfile.TemporaryDirectory(prefix="bench-billrun-") as tmp:
        started = time.perf_counter()
        subprocess.run([PY, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env, check=True, capture_output=True)
        log(f"migrated in {time.perf_counter() - started:.1f} s")
        import django

        django.setup()
        from billing_platform import rls

        # This process seeds as the login role, as the tests do; what it measures runs under the
        # tenant's row-level security (tenant_context), and the workers as in production.
        rls.set_role_on_connect = False
        now = now_utc()
        seeded, ok = seed(args, now, url)
        with rls.tenant_context(seeded.tenant):
            measure_queries(seeded, args.sample, args.profile_customers, now)
        if not args.skip_run:
            workers = Workers(count=args.workers, concurrency=args.concurrency, env=env, logdir=Path(tmp))
            try:
                ok = bill_run(seeded, workers, url, args.timeout) and ok
            finally:
                workers.stop()
                log("workers stopped")
    return 0 if ok else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        log("interrupted")
        sys.exit(130)
