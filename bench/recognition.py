"""Revenue recognition benchmark: monthly recognition runs (``revrec.runs.recognition_run``, what the
monthly beat runs for a tenant) over many contracts, timed, with their SQL queries counted; and the
same runs over a tenth of the contracts measured in the same run, so the ratio of the time per
contract says whether a run scales linearly.

    .venv/bin/python bench/recognition.py [--contracts 10000] [--devices 5]
        [--database-url postgres://postgres@127.0.0.1:5432/tripod_revrec_bench]
        [--redis-url redis://127.0.0.1:6379/9] [--profile]

Everything happens in a scratch database that the script creates, migrates (``manage.py migrate``)
and drops at the end, also on Ctrl-C or an error; its name must contain "bench" and an existing one
is dropped first. Redis (``--redis-url``, not db 0) is flushed before and after.

Seed, per tenant (EUR, Europe/Paris): billing.md's Smart Fleet offer with revrec.md's standalone
selling prices (eld-200 300.00, fleet-platform 30.00 per device-month, 12 months committed); one
customer per contract, each with a subscription of ``--devices`` devices (the rows the product's
services write, bulk-inserted), signed on 2026-01-05 and activated on one of the days of January and
February 2026 (spread by customer and device), so each contract has a hardware obligation and a
12-month service term per device.

Measured per tenant:
1. the contracts: ``revrec.contracts.contracts_sync`` builds every contract (allocation by SSP, one
   obligation per line and device) — once per subscription in a tenant's life;
2. the run of March 2026: the first run, which catches up January and February (hardware of every
   device, two or three months of service) — the heaviest run a tenant sees;
3. the run of April 2026: a steady month (a month of service per device);
4. the run of April again: nothing to post (idempotent), the cost of finding that out.

Between 1 and 2 the new tables are analyzed, as autovacuum does soon after a bulk change: without
statistics the planner takes the new obligations for one row and its plan is 30 times slower.

Printed per step: seconds, contracts per second, queries in all and per contract, entries and
revenue posted; then the ratio of the time per contract at the full size to that of the baseline
(near 1: linear). Timings are printed, never asserted.
"""

import argparse
import cProfile
import functools
import os
import pstats
import signal
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from scratchdb import create_database, drop_database, production_settings  # bench/scratchdb.py

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing_platform.settings")

PY = sys.executable
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/tripod_revrec_bench"
DEFAULT_REDIS = "redis://127.0.0.1:6379/9"
TZ_NAME = "Europe/Paris"
BASELINE_SHARE = 10
BATCH = 2000
SIGNED = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
MARCH = date(2026, 3, 1)
APRIL = date(2026, 4, 1)


def log(message: str) -> None:
    print(message, flush=True)


def flush_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


@contextmanager
def scratch(url: str, redis_url: str, keep: bool = False) -> Iterator[None]:
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


# --- the seed --------------------------------------------------------------------------------------


def seed(slug: str, contracts: int, devices: int) -> Any:
    """A tenant with ``contracts`` subscriptions of ``devices`` activated devices (module docstring)."""
    from catalog.models import Product, ProductSsp
    from catalog.tests.factories import smart_fleet_catalog
    from customers.models import Customer
    from subscriptions.models import Device, Subscription, SubscriptionStatus
    from tenancy.services import tenant_create

    started = time.perf_counter()
    created = SIGNED - timedelta(days=30)
    tenant = tenant_create(
        name=f"Bench revenue {slug}",
        slug=f"bench-revenue-{slug}",
        currency="EUR",
        timezone=TZ_NAME,
        admin_email=f"{slug}@revenue.test",
        at=created,
    ).tenant
    plan = smart_fleet_catalog(tenant, at=created)
    for code, amount in (("eld-200", "300.00"), ("fleet-platform", "30.00")):
        ProductSsp.objects.update_or_create(
            tenant=tenant,
            product=Product.objects.get(tenant=tenant, code=code),
            currency="EUR",
            defaults={"amount": Decimal(amount)},
        )
    for first in range(0, contracts, BATCH):
        indexes = range(first, min(first + BATCH, contracts))
        new_customers = Customer.objects.bulk_create(
            [
                Customer(
                    tenant=tenant,
                    external_id="c%05d" % i,
                    name="Fleet customer %d" % i,
                    email="c%05d@fleet.test" % i,
                    currency="EUR",
                    timezone=TZ_NAME,
                    language="fr",
                    country="FR",
                    billing_day=1,
                )
                for i in indexes
            ]
        )
        subscriptions = Subscription.objects.bulk_create(
            [
                Subscription(
                    tenant=tenant,
                    external_id="s%05d" % i,
                    customer=c,
                    plan=plan,
                    status=SubscriptionStatus.ACTIVE,
                    signed_at=SIGNED,
                    starts_at=SIGNED,
                )
                for i, c in zip(indexes, new_customers, strict=True)
            ]
        )
        Device.objects.bulk_create(
            [
                Device(
                    tenant=tenant,
                    subscription=s,
                    device_id="c%05d-d%d" % (i, j),
                    device_type="eld",
                    added_at=SIGNED,
                    shipped_at=SIGNED + timedelta(days=2),
                    # Spread over 6 January - 25 February.
                    activated_at=SIGNED + timedelta(days=1 + (i * devices + j) % 51),
                )
                for i, s in zip(indexes, subscriptions, strict=True)
                for j in range(devices)
            ]
        )
    log(f"seeded {slug}: {contracts:,} subscriptions x {devices} devices in {time.perf_counter() - started:.1f} s")
    return tenant


# --- the runs --------------------------------------------------------------------------------------


class QueryCounter:
    """Counts the queries of a step and times each, to name the slowest."""

    def __init__(self) -> None:
        self.count = 0
        self.timings: list[tuple[float, str]] = []

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        self.count += 1
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.timings.append((time.perf_counter() - started, " ".join(sql.split())[:160]))


def measure(tenant: Any, contracts: int, label: str, step: Callable[[], Any], profile: bool = False) -> float:
    """Runs ``step`` under the tenant's row-level security; prints its figures and returns seconds
    per contract."""
    from django.db import connection

    from billing_platform import rls

    counter = QueryCounter()
    with rls.tenant_context(tenant), connection.execute_wrapper(counter):
        profiler = cProfile.Profile() if profile else None
        started = time.perf_counter()
        if profiler:
            profiler.enable()
        result = step()
        elapsed = time.perf_counter() - started
        if profiler:
            profiler.disable()
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
    log(
        f"  {label}: {elapsed:.2f} s, {contracts / elapsed:,.0f} contracts/s, "
        f"{counter.count} queries ({counter.count / contracts:.4f} per contract)"
    )
    if result is not None:
        log(f"    {result}")
    if profile:
        for seconds, sql in sorted(counter.timings, reverse=True)[:6]:
            log(f"    {seconds * 1000:8.1f} ms  {sql}")
    return elapsed / contracts


def measure_tenant(tenant: Any, contracts: int, profile: bool) -> dict[str, float]:
    from revrec.contracts import contracts_sync
    from revrec.models import PerformanceObligation, RecognitionEntry

    log(f"{contracts:,} contracts:")
    at = datetime(2026, 4, 1, 5, 0, tzinfo=UTC)
    per: dict[str, float] = {}
    per["contracts"] = measure(tenant, contracts, "contracts built", lambda: contracts_sync(tenant_id=tenant.pk, at=at))
    from django.db import connection

    from billing_platform import rls

    with rls.tenant_context(tenant):
        log(f"    obligations: {PerformanceObligation.objects.filter(tenant=tenant).count():,}")
    # Autovacuum analyzes a table soon after a bulk change; without statistics on the new
    # obligations the planner guesses one row and joins their entries by a nested loop.
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE revrec_contract, revrec_performanceobligation")
    for label, month in (("run of March (catch-up)", MARCH), ("run of April", APRIL), ("April again", APRIL)):
        per[label] = measure(
            tenant,
            contracts,
            label,
            functools.partial(_run, tenant.pk, month, at),
            profile=profile and label == "run of April",
        )
    with rls.tenant_context(tenant):
        log(f"    recognition entries: {RecognitionEntry.objects.filter(tenant=tenant).count():,}")
    return per


def _run(tenant_id: Any, month: date, at: datetime) -> str:
    from revrec.runs import recognition_run

    return _summary(recognition_run(tenant_id=tenant_id, month=month, at=at))


def _summary(report: Any) -> str:
    revenue = ", ".join(
        f"{kind} {amount:,.2f} {currency}" for (currency, kind), amount in sorted(report.revenue.items())
    )
    return f"entries {report.entries:,}, journal entries {report.journal_entries:,}; {revenue or 'nothing posted'}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contracts", type=int, default=10_000)
    parser.add_argument("--devices", type=int, default=5)
    parser.add_argument("--database-url", default=DEFAULT_DB)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS)
    parser.add_argument("--profile", action="store_true", help="print a cProfile of the full-size April run")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database, to study its plans")
    args = parser.parse_args()
    if "bench" not in urllib.parse.urlsplit(args.database_url).path:
        parser.error("the scratch database's name must contain 'bench': it is dropped and created")
    if urllib.parse.urlsplit(args.redis_url).path.strip("/") in ("", "0"):
        parser.error("--redis-url must name a dedicated Redis database other than 0 (it is flushed)")
    if args.contracts < BASELINE_SHARE:
        parser.error(f"--contracts is at least {BASELINE_SHARE}")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    environ = {"DATABASE_URL": args.database_url, "REDIS_URL": args.redis_url, "LOG_LEVEL": "WARNING"}
    os.environ.update({**environ, **production_settings()})
    os.environ.pop("CELERY_TASK_ALWAYS_EAGER", None)
    baseline = args.contracts // BASELINE_SHARE
    with scratch(args.database_url, args.redis_url, keep=args.keep):
        started = time.perf_counter()
        subprocess.run([PY, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=dict(os.environ), check=True)
        log(f"migrated in {time.perf_counter() - started:.1f} s")
        import django

        django.setup()
        from billing_platform import rls

        rls.set_role_on_connect = False
        small = seed("baseline", baseline, args.devices)
        large = seed("full", args.contracts, args.devices)
        # A database in use has its planner statistics; freshly bulk-loaded tables have none yet.
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        per_small = measure_tenant(small, baseline, profile=False)
        per_large = measure_tenant(large, args.contracts, profile=args.profile)
        log(f"time per contract at {args.contracts:,} / at {baseline:,} (near 1: linear):")
        for label, value in per_large.items():
            small = per_small[label]
            log(f"  {label}: {value * 1000:.3f} ms / {small * 1000:.3f} ms, ratio {value / small:.2f}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        log("interrupted")
        sys.exit(130)
