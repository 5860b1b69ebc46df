"""Dunning benchmark: one dunning pass (``payments.dunning.dunning_run``, what the hourly beat runs for
a tenant) over many overdue invoices, timed, with its SQL queries counted; and the same pass over a
tenth of them measured in the same run, so the ratio of the time per invoice says whether the pass
scales linearly.

    .venv/bin/python bench/dunning.py [--invoices 10000]
        [--database-url postgres://postgres@127.0.0.1:5432/tripod_dunning_bench]
        [--redis-url redis://127.0.0.1:6379/9]

Everything happens in a scratch database that the script creates, migrates (``manage.py migrate``)
and drops at the end, also on Ctrl-C or an error; its name must contain "bench" and an existing one
is dropped first. Redis (``--redis-url``, not db 0) is flushed before and after.

Seed, per tenant (EUR, Europe/Paris, the default dunning policy: reminders 3 days before and 7 after
the due date, retries 3, 5, 7, suspension at 21 days, write-off at 60): billing.md's Smart Fleet
offer; one customer per 5 invoices, each with a subscription of 2 active devices (the rows the
product's services write, bulk-inserted); a quarter of the customers charged automatically. Each
customer's 5 invoices are finalized, unpaid, 100.00 EUR, with a PDF and a line billing the
subscription, and due at 5 of the days past due of ``PAST_DUE`` (so the pass sends reminders, charges
again, announces invoices overdue, suspends subscriptions and writes invoices off). No step was taken
before: the pass takes every step due.

The pass runs under the tenant's row-level security, e-mails go to Django's locmem backend and
``payments.charging.invoices_charge_enqueue`` is recorded instead of queuing charges. Printed per
tenant: seconds, invoices per second, queries in all and per invoice, steps by kind (the report's
counts and the DunningAction rows written), e-mails; then the ratio of the time per invoice at the
full size to that of the baseline (near 1: linear). Timings are printed, never asserted.
"""

import argparse
import cProfile
import os
import pstats
import signal
import subprocess
import sys
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from scratchdb import create_database, drop_database, production_settings  # bench/scratchdb.py

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing_platform.settings")

PY = sys.executable
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/tripod_dunning_bench"
DEFAULT_REDIS = "redis://127.0.0.1:6379/9"
TZ_NAME = "Europe/Paris"
INVOICES_PER_CUSTOMER = 5
DEVICES = 2
BASELINE_SHARE = 10
# Days past due at the pass, by (customer index x 5 + invoice index) mod 10: before the due date (the
# reminder of day -3), overdue, retried, reminded on day 7, suspended, written off.
PAST_DUE = (-3, 1, 3, 5, 7, 14, 21, 30, 60, 90)
PDF = b"%PDF-1.7 bench invoice"
BATCH = 2000


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
def scratch(url: str, redis_url: str) -> Iterator[None]:
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
        drop_database(url)
        log("scratch database dropped")


# --- the seed --------------------------------------------------------------------------------------


def seed(slug: str, invoices: int, at: datetime) -> Any:
    """A tenant with ``invoices`` open invoices over ``invoices / 5`` customers (module docstring)."""
    from catalog.tests.factories import smart_fleet_catalog
    from customers.models import Collection, Customer
    from invoicing.lines import LineType
    from invoicing.models import Invoice, InvoiceKind, InvoiceLine, InvoicePaymentStatus, InvoiceStatus
    from subscriptions.models import Device, Subscription, SubscriptionStatus
    from tenancy.services import tenant_create

    started = time.perf_counter()
    tenant = tenant_create(
        name=f"Bench dunning {slug}",
        slug=f"bench-dunning-{slug}",
        currency="EUR",
        timezone=TZ_NAME,
        admin_email=f"{slug}@dunning.test",
        at=at - timedelta(days=400),
    ).tenant
    plan = smart_fleet_catalog(tenant, at=at - timedelta(days=400))
    customers = invoices // INVOICES_PER_CUSTOMER
    today = at.astimezone(UTC).date()  # 06:00 UTC: the same day in Paris
    signed = at - timedelta(days=365)
    for first in range(0, customers, BATCH):
        indexes = range(first, min(first + BATCH, customers))
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
                    collection=Collection.CHARGE_AUTOMATICALLY if i % 4 == 0 else Collection.SEND_INVOICE,
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
                    signed_at=signed,
                    starts_at=signed,
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
                    added_at=signed,
                    activated_at=signed + timedelta(days=1),
                )
                for i, s in zip(indexes, subscriptions, strict=True)
                for j in range(DEVICES)
            ]
        )
        new_invoices = []
        for i, c in zip(indexes, new_customers, strict=True):
            for k in range(INVOICES_PER_CUSTOMER):
                n = i * INVOICES_PER_CUSTOMER + k
                due = today - timedelta(days=PAST_DUE[n % len(PAST_DUE)])
                new_invoices.append(
                    Invoice(
                        tenant=tenant,
                        customer=c,
                        kind=InvoiceKind.INVOICE,
                        status=InvoiceStatus.FINALIZED,
                        number="INV-%07d" % n,
                        number_year=2000,
                        number_sequence=n + 1,
                        issue_date=due - timedelta(days=30),
                        currency="EUR",
                        language="fr",
                        net_total=100,
                        total=100,
                        amount_due=100,
                        payment_status=InvoicePaymentStatus.UNPAID,
                        due_date=due,
                        pdf=PDF,
                        finalized_at=datetime.combine(due - timedelta(days=30), datetime.min.time(), UTC),
                    )
                )
        Invoice.objects.bulk_create(new_invoices)
        subscription_of = {s.customer_id: s for s in subscriptions}
        InvoiceLine.objects.bulk_create(
            [
                InvoiceLine(
                    tenant=tenant,
                    invoice=inv,
                    type=LineType.FEE,
                    product="fleet-fee",
                    description="Smart Fleet",
                    quantity=1,
                    amount=100,
                    tax_category="standard",
                    subscription=subscription_of[inv.customer_id],
                )
                for inv in new_invoices
            ]
        )
    log(f"seeded {slug}: {invoices:,} invoices, {customers:,} customers in {time.perf_counter() - started:.1f} s")
    return tenant


# --- the pass --------------------------------------------------------------------------------------


class QueryCounter:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        self.count += 1
        return execute(sql, params, many, context)


def measure(tenant: Any, invoices: int, at: datetime, profile: bool = False) -> float:
    """One pass over ``tenant``; prints its figures and returns seconds per invoice."""
    from django.core import mail
    from django.db import connection

    from billing_platform import rls
    from payments.dunning import dunning_run
    from payments.models import DunningAction

    mail.outbox = []
    counter = QueryCounter()
    with rls.tenant_context(tenant), connection.execute_wrapper(counter):
        profiler = cProfile.Profile() if profile else None
        started = time.perf_counter()
        if profiler:
            profiler.enable()
        report = dunning_run(tenant_id=tenant.pk, at=at)
        elapsed = time.perf_counter() - started
        if profiler:
            profiler.disable()
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
    rows = Counter(DunningAction.objects.filter(tenant=tenant).values_list("kind", flat=True))
    log(
        f"{invoices:,} invoices: {elapsed:.2f} s, {invoices / elapsed:,.0f} invoices/s, "
        f"{counter.count} queries ({counter.count / invoices:.3f} per invoice)"
    )
    log("  steps: " + ", ".join(f"{kind} {n:,}" for kind, n in report.counts().items()))
    log("  DunningAction rows: " + ", ".join(f"{kind} {n:,}" for kind, n in sorted(rows.items())))
    log(f"  e-mails {len(mail.outbox):,}, charges queued {sum(len(ids) for ids in CHARGED):,}")
    CHARGED.clear()
    return elapsed / invoices


CHARGED: list[list[Any]] = []


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--invoices", type=int, default=10_000)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", DEFAULT_DB))
    parser.add_argument("--redis-url", default=DEFAULT_REDIS)
    parser.add_argument("--profile", action="store_true", help="print a cProfile of the full-size pass")
    args = parser.parse_args()
    if "bench" not in urllib.parse.urlsplit(args.database_url).path:
        parser.error("the scratch database's name must contain 'bench': it is dropped and created")
    if urllib.parse.urlsplit(args.redis_url).path.strip("/") in ("", "0"):
        parser.error("--redis-url must name a dedicated Redis database other than 0 (it is flushed)")
    if args.invoices < BASELINE_SHARE * INVOICES_PER_CUSTOMER:
        parser.error(f"--invoices is at least {BASELINE_SHARE * INVOICES_PER_CUSTOMER}")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    production = production_settings()
    environ = {"DATABASE_URL": args.database_url, "REDIS_URL": args.redis_url, "LOG_LEVEL": "WARNING", **production}
    os.environ.update(environ)
    os.environ.pop("CELERY_TASK_ALWAYS_EAGER", None)
    baseline = args.invoices // BASELINE_SHARE
    with scratch(args.database_url, args.redis_url):
        started = time.perf_counter()
        subprocess.run([PY, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=dict(os.environ), check=True)
        log(f"migrated in {time.perf_counter() - started:.1f} s")
        import django
        from django.conf import settings

        django.setup()
        settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
        from billing_platform import rls
        from payments import charging

        rls.set_role_on_connect = False
        charging.invoices_charge_enqueue = lambda ids, **kwargs: CHARGED.append(list(ids))
        # The pass of 08:00 in Paris (06:00 UTC in summer), a Tuesday.
        at = datetime(2026, 6, 16, 6, 0, tzinfo=UTC)
        small = seed("baseline", baseline, at)
        large = seed("full", args.invoices, at)
        # A database in use has its planner statistics; freshly bulk-loaded tables have none yet.
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        per_small = measure(small, baseline, at)
        per_large = measure(large, args.invoices, at, profile=args.profile)
        log(
            f"time per invoice: {per_large * 1000:.3f} ms at {args.invoices:,}, {per_small * 1000:.3f} ms at "
            f"{baseline:,}; ratio {per_large / per_small:.2f} (near 1: linear)"
        )
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        log("interrupted")
        sys.exit(130)
