"""Read-path load benchmark: an open-loop load (constant arrival rate) on the API's and the pages'
reads through gunicorn, per endpoint p50 / p99 / max latency and errors at each rate, next to
``GET /healthz`` measured in the same run at the same rates (the framework's floor).

    .venv/bin/python bench/api_reads.py [--rates 100,200,400] [--duration 10] [--clients 2]
        [--workers 3] [--worker-class sync|gthread] [--only customer,invoices,...] [--quick]
        [--database-url postgres://postgres@127.0.0.1:5432/tripod_bench_reads]

    .venv/bin/python bench/api_reads.py --quick      # rates 100 and 200, 3 s each (about a minute)
    .venv/bin/python bench/api_reads.py --only customer,subscription --rates 200

Endpoints (names for ``--only``; healthz is always measured):

    healthz         GET /healthz
    customer        GET /api/v1/customers/{id}
    invoices        GET /api/v1/invoices?customer={id}
    subscription    GET /api/v1/subscriptions/{id}              (50 devices)
    current_usage   GET /api/v1/customers/{id}/current_usage
    portal          GET /portal/overview/                       (a portal user's session cookie)
    partner         GET /partners/                              (a partner user's session cookie)

Everything happens in a scratch database that the script creates, migrates (``manage.py migrate``)
and drops at the end, also on Ctrl-C or an error; its name must contain "bench" and an existing one
is dropped first. Redis is ``$REDIS_URL`` (default 127.0.0.1:6379), as for the product.

Seeding uses the product's services: a tenant with billing.md's Smart Fleet offer (a platform fee
per device from the subscription's start and a metered ``data_mb`` usage component), 20 customers
(``--customers``) with one subscription of 50 devices (``--devices``) each, signed three months ago;
their invoices of the last three billing dates generated and finalized (``invoice_generate``,
``invoice_finalize``); 20,000 usage events (``--events``) in the current month through
``events_ingest``; a partner who brought a third of the customers, with a partner user; a portal
user per customer. The sessions are opened with the product's session services, as the portal's
and the dashboard's tests do. The API rate limits are raised out of the way (the throttle still runs
on every request): the bench measures the reads, not the 429s.

The load is open-loop: for each endpoint and rate, requests are scheduled at fixed intervals for
``--duration`` seconds, whatever the earlier ones have become; ``--clients`` processes each send
their share of the schedule (asyncio, raw HTTP/1.1, a new connection whenever the server closed the
last one, as gunicorn's sync workers do after every response). A request's latency is counted from
its scheduled send time, so time spent queueing (in the client or in the server's listen backlog)
shows. The ids are spread over the customers (request i goes to customer i mod N). Before each
endpoint one untimed second at the lowest rate warms the workers. After each step the line says
the rate the client achieved (requests sent / seconds) and how late it sent them (p99 of send time
minus scheduled time): when that lag is large the client, not the server, was the limit.

Each step also prints the CPU that gunicorn and PostgreSQL used per request answered (from /proc):
on a shared machine that is the steadier measure of what a request costs.

Timings are printed, never asserted. The exit status is 1 when any request got no 2xx answer
(an error status, a broken connection or no answer within ``--timeout`` seconds), 0 otherwise.
The machine is shared: the CPU line after each step says what else used it.
"""

import argparse
import asyncio
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from procs import Gunicorn, machine_cpu, postmaster_pid, tree_cpu  # bench/procs.py
from scratchdb import admin_url, production_settings, scratch_database  # bench/scratchdb.py

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing_platform.settings")

PY = sys.executable
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/tripod_bench_reads"
TZ_NAME = "Europe/Paris"
PARIS = ZoneInfo(TZ_NAME)
DEVICE_TYPES = ("tracker", "sensor", "gateway")
REGIONS = ("EU", "US", "APAC", "LATAM")
MASK64 = (1 << 64) - 1
ENDPOINTS = ("healthz", "customer", "invoices", "subscription", "current_usage", "portal", "partner")
LABELS = {
    "healthz": "GET /healthz",
    "customer": "GET /api/v1/customers/{id}",
    "invoices": "GET /api/v1/invoices?customer={id}",
    "subscription": "GET /api/v1/subscriptions/{id}",
    "current_usage": "GET /api/v1/customers/{id}/current_usage",
    "portal": "GET /portal/overview/",
    "partner": "GET /partners/",
}


def log(message: str) -> None:
    print(message, flush=True)


def mix(i: int) -> int:
    # splitmix64: a deterministic pseudo-random function of i
    x = (i * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) & MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK64
    return x ^ (x >> 31)


def customer_ref(i: int) -> str:
    return "c%03d" % i


def subscription_ref(i: int) -> str:
    return "s%03d" % i


def device_ref(i: int, j: int) -> str:
    return "d%03d-%03d" % (i, j)


# --- the tenant ------------------------------------------------------------------------------------


@dataclass
class Seed:
    api_key: str
    customers: list[str]
    subscriptions: list[str]
    portal_tokens: list[str]  # one session per customer, in the order of customers
    partner_token: str
    invoices: int
    events: int
    partner_customers: int


SELLER = {  # made-up numbers whose check digits pass (SIREN Luhn, FR VAT key)
    "legal_name": "Bench Telematics SAS",
    "vat_number": "FR74852379890",
    "legal_registration_id": "852379890",
    "legal_registration_scheme": "0002",
    "address_line1": "12 rue de la Boétie",
    "postal_code": "75008",
    "city": "Paris",
    "country": "FR",
    "billing_email": "factures@bench.test",
}


def first_of_month(day: date, back: int) -> date:
    """The first of the month ``back`` months before ``day``'s."""
    month = day.year * 12 + day.month - 1 - back
    return date(month // 12, month % 12 + 1, 1)


def seed(*, customers: int, devices: int, events: int, now: datetime) -> Seed:
    """The bench tenant, made with the product's services (django.setup() has run)."""
    from catalog.tests.factories import smart_fleet_catalog
    from customers.models import PortalRole, PortalUser
    from customers.portal import portal_session_open
    from customers.services import customer_create
    from invoicing.services.generation import invoice_generate
    from invoicing.services.lifecycle import invoice_finalize
    from partners.models import PartnerRole, PartnerUser
    from partners.services import partner_create
    from partners.sessions import partner_session_open
    from subscriptions.services import subscription_create
    from tenancy.actors import Actor
    from tenancy.services import tenant_create
    from usage.ingest import events_ingest
    from usage.models import UsageSettings

    actor = Actor.system("bench")
    created = tenant_create(
        name="Bench Reads Telematics",
        slug="bench-reads",
        currency="EUR",
        timezone=TZ_NAME,
        admin_email="reads@tripod.test",
        at=now,
    )
    tenant = created.tenant
    # a complete French seller, so that the invoices can be finalized (valid EN 16931 e-invoices)
    for name, value in SELLER.items():
        setattr(tenant, name, value)
    tenant.save(update_fields=list(SELLER))
    # billing.md's offer: the platform fee per device from the subscription's start, data metered
    plan = smart_fleet_catalog(tenant, at=now, fee_starts_on="subscription_start")
    partner = partner_create(
        tenant=tenant,
        actor=actor,
        at=now,
        code="alpnet",
        name="AlpNet",
        language="en",
        commission_plan={"hardware": "5", "service": "20", "usage": "10", "fee": "0"},
    )
    today = now.astimezone(PARIS).date()
    start = first_of_month(today, 3)
    signed = datetime(start.year, start.month, start.day, 9, tzinfo=PARIS)
    customer_rows = []
    subscription_ids = []
    for i in range(customers):
        customer = customer_create(
            tenant=tenant,
            actor=actor,
            at=now,
            external_id=customer_ref(i),
            name="Fleet customer %d" % i,
            email="billing@c%03d.test" % i,
            country="FR",
            timezone=TZ_NAME,
            address_line1="%d rue de la Paix" % (i + 1),
            postal_code="75002",
            city="Paris",
            billing_day=1,
            partner=partner if i % 3 == 0 else None,
        )
        subscription_create(
            tenant=tenant,
            actor=actor,
            at=now,
            external_id=subscription_ref(i),
            customer=customer,
            plan=plan,
            signed_at=signed,
            starts_on=start,
            devices=[
                {
                    "device_id": device_ref(i, j),
                    "device_type": DEVICE_TYPES[mix(i * 64 + j) % 3],
                    "region": REGIONS[(mix(i * 64 + j) >> 8) % 4],
                }
                for j in range(devices)
            ],
        )
        customer_rows.append(customer)
        subscription_ids.append(subscription_ref(i))
    invoices = 0
    for customer in customer_rows:
        for back in (2, 1, 0):
            invoice = invoice_generate(customer=customer, billing_date=first_of_month(today, back), at=now)
            if invoice is not None:
                invoice_finalize(invoice=invoice, actor=actor, at=now)
                invoices += 1
    # The month's usage, spread over the devices and from the first of the month to a minute ago.
    settings, _ = UsageSettings.objects.get_or_create(tenant=tenant)
    month_start = datetime(today.year, today.month, 1, tzinfo=PARIS)
    span = max(int((now - timedelta(minutes=1) - month_start).total_seconds()), 60)
    accepted = 0
    batch: list[dict[str, Any]] = []
    for n in range(events):
        h = mix(n)
        i, j = (h >> 8) % customers, (h >> 20) % devices
        batch.append(
            {
                "transaction_id": "ev-%07d" % n,
                "code": "data_mb",
                "device_id": device_ref(i, j),
                "timestamp": (month_start + timedelta(seconds=h % span)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "properties": {"mb": 1 + (h >> 32) % 500, "device_type": DEVICE_TYPES[j % 3], "region": REGIONS[i % 4]},
            }
        )
        if len(batch) == 1000 or n == events - 1:
            result = events_ingest(tenant=tenant, events=batch, received_at=now, settings=settings)
            accepted += result.count("accepted")
            batch = []
    portal_tokens = []
    for i, customer in enumerate(customer_rows):
        user = PortalUser.objects.create(
            tenant_id=tenant.pk,
            customer=customer,
            email="admin@c%03d.test" % i,
            name="Portal admin %d" % i,
            role=PortalRole.ADMIN,
        )
        portal_tokens.append(portal_session_open(customer=customer, user=user, at=now).token)
    partner_user = PartnerUser.objects.create(
        tenant_id=tenant.pk, partner=partner, email="admin@alpnet.test", name="AlpNet admin", role=PartnerRole.ADMIN
    )
    partner_token = partner_session_open(user=partner_user, at=now).token
    return Seed(
        api_key=created.api_key,
        customers=[customer_ref(i) for i in range(customers)],
        subscriptions=subscription_ids,
        portal_tokens=portal_tokens,
        partner_token=partner_token,
        invoices=invoices,
        events=accepted,
        partner_customers=len(range(0, customers, 3)),
    )


def requests_for(name: str, seeded: Seed) -> list[bytes]:
    """The raw HTTP/1.1 requests of an endpoint, one per customer (request i uses number i mod N)."""
    from django.conf import settings

    api = "Authorization: Bearer %s\r\nAccept: application/json\r\n" % seeded.api_key
    rows: list[tuple[str, str]]
    if name == "healthz":
        rows = [("/healthz", "")]
    elif name == "customer":
        rows = [("/api/v1/customers/%s" % c, api) for c in seeded.customers]
    elif name == "invoices":
        rows = [("/api/v1/invoices?customer=%s" % c, api) for c in seeded.customers]
    elif name == "subscription":
        rows = [("/api/v1/subscriptions/%s" % s, api) for s in seeded.subscriptions]
    elif name == "current_usage":
        rows = [("/api/v1/customers/%s/current_usage" % c, api) for c in seeded.customers]
    elif name == "portal":
        cookie = settings.PORTAL_SESSION_COOKIE
        rows = [("/portal/overview/", "Cookie: %s=%s\r\n" % (cookie, t)) for t in seeded.portal_tokens]
    elif name == "partner":
        rows = [("/partners/", "Cookie: %s=%s\r\n" % (settings.PARTNER_SESSION_COOKIE, seeded.partner_token))]
    else:
        raise ValueError(name)
    return [("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n" % (path, headers)).encode() for path, headers in rows]


# --- the open-loop client --------------------------------------------------------------------------


@dataclass
class Share:
    """What one client process sends: requests number ``index``, ``index + clients``, ... of a
    schedule of ``rate`` requests/s over ``duration`` seconds from ``t0`` (time.monotonic, which is
    the same clock in every process)."""

    index: int
    clients: int
    rate: float
    duration: float
    t0: float
    requests: list[bytes]
    port: int
    timeout: float


@dataclass
class Outcome:
    latencies: list[float] = field(default_factory=list)  # seconds from the scheduled send time, 2xx only
    lags: list[float] = field(default_factory=list)  # seconds the send started after its scheduled time
    statuses: dict[int, int] = field(default_factory=dict)  # status (0: no answer) -> count, non-2xx only
    first_error: str = ""
    sent: int = 0
    first_sent: float = 0.0
    last_sent: float = 0.0
    cpu: float = 0.0


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """Status, body, and whether the connection stays open (HTTP/1.1 keep-alive)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length = -1
    chunked = False
    keep = True
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
        elif name == b"connection" and value.strip().lower() == b"close":
            keep = False
    if chunked:
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            data = await reader.readexactly(size + 2)
            if size == 0:
                break
            parts.append(data[:-2])
        body = b"".join(parts)
    elif length >= 0:
        body = await reader.readexactly(length)
    else:
        body = await reader.read()
        keep = False
    return status, body, keep


async def _send_all(share: Share) -> Outcome:
    out = Outcome()
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    loop = asyncio.get_running_loop()
    total = int(share.rate * share.duration)
    interval = 1.0 / share.rate
    tasks = []

    async def one(n: int, scheduled: float) -> None:
        request = share.requests[n % len(share.requests)]
        try:
            async with asyncio.timeout(share.timeout):
                if idle:
                    reader, writer = idle.pop()
                else:
                    reader, writer = await asyncio.open_connection("127.0.0.1", share.port)
                writer.write(request)
                status, body, keep = await _read_response(reader)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, TimeoutError) as exc:
            out.statuses[0] = out.statuses.get(0, 0) + 1
            out.first_error = out.first_error or "no answer: %r" % exc
            return
        finished = time.monotonic()
        if keep:
            idle.append((reader, writer))
        else:
            writer.close()
        if 200 <= status < 300:
            out.latencies.append(finished - scheduled)
        else:
            out.statuses[status] = out.statuses.get(status, 0) + 1
            out.first_error = out.first_error or "%d %s" % (status, body[:300].decode(errors="replace"))

    cpu = time.process_time()
    for n in range(share.index, total, share.clients):
        scheduled = share.t0 + n * interval
        delay = scheduled - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        now = time.monotonic()
        out.lags.append(now - scheduled)
        out.first_sent = out.first_sent or now
        out.last_sent = now
        out.sent += 1
        tasks.append(loop.create_task(one(n, scheduled)))
    if tasks:
        await asyncio.gather(*tasks)
    for _, writer in idle:
        writer.close()
    out.cpu = time.process_time() - cpu
    return out


def _client(share: Share, results: Any) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's: it stops the clients
    results.put(asyncio.run(_send_all(share)))


@dataclass
class Step:
    rate: float
    outcome: Outcome
    seconds: float  # first send to last send, over every client
    cpu: dict[str, float]

    @property
    def achieved(self) -> float:
        return (self.outcome.sent - 1) / self.seconds if self.seconds > 0 else 0.0

    @property
    def errors(self) -> int:
        return sum(self.outcome.statuses.values())


def run_step(
    *, requests: list[bytes], rate: float, duration: float, clients: int, port: int, timeout: float
) -> Outcome:
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    t0 = time.monotonic() + 0.3  # every client has started by then
    procs = [
        ctx.Process(
            target=_client,
            args=(Share(i, clients, rate, duration, t0, requests, port, timeout), results),
            daemon=True,
        )
        for i in range(clients)
    ]
    for proc in procs:
        proc.start()
    try:
        parts: list[Outcome] = [results.get() for _ in procs]
        for proc in procs:
            proc.join()
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
    merged = Outcome()
    for part in parts:
        merged.latencies += part.latencies
        merged.lags += part.lags
        for status, count in part.statuses.items():
            merged.statuses[status] = merged.statuses.get(status, 0) + count
        merged.first_error = merged.first_error or part.first_error
        merged.sent += part.sent
        merged.cpu += part.cpu
    sent = [p for p in parts if p.sent]
    merged.first_sent = min((p.first_sent for p in sent), default=0.0)
    merged.last_sent = max((p.last_sent for p in sent), default=0.0)
    return merged


def quantile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# --- where the CPU goes ----------------------------------------------------------------------------


class CpuMeter:
    def __init__(self, gunicorn_pid: int, postmaster: int) -> None:
        self.pids = (gunicorn_pid, postmaster)

    def sample(self) -> tuple[float, float, float, float]:
        busy, idle = machine_cpu()
        return tree_cpu(self.pids[0]), tree_cpu(self.pids[1]) if self.pids[1] else 0.0, busy, idle

    def between(self, a: tuple[float, ...], b: tuple[float, ...]) -> dict[str, float]:
        keys = ("gunicorn", "postgres", "busy", "idle")
        return {k: b[i] - a[i] for i, k in enumerate(keys)}


# --- gunicorn --------------------------------------------------------------------------------------


# --- main ------------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", default="100,200,400", help="requests/s, comma-separated (%(default)s)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per endpoint and rate (%(default)s)")
    names = ", ".join(ENDPOINTS[1:])
    parser.add_argument("--only", default="", help="endpoints to measure, comma-separated, from: " + names)
    parser.add_argument("--quick", action="store_true", help="rates 100,200 and 3 s per step, unless given")
    parser.add_argument("--customers", type=int, default=20, help="customers (%(default)s)")
    parser.add_argument("--devices", type=int, default=50, help="devices per customer's subscription (%(default)s)")
    parser.add_argument("--events", type=int, default=20_000, help="usage events this month (%(default)s)")
    parser.add_argument("--clients", type=int, default=2, help="client processes (%(default)s)")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn workers (%(default)s)")
    parser.add_argument("--worker-class", choices=("sync", "gthread"), default="sync", help="(%(default)s)")
    parser.add_argument("--threads", type=int, default=2, help="threads per gthread worker (%(default)s)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds before a request counts as failed")
    parser.add_argument("--port", type=int, default=8766, help="gunicorn's port on 127.0.0.1 (%(default)s)")
    parser.add_argument("--database-url", default=DEFAULT_DB, help="scratch database (%(default)s)")
    parser.add_argument("--keep-database", action="store_true", help="do not drop the scratch database at the end")
    argv = sys.argv[1:]
    args = parser.parse_args(argv)
    if args.quick:
        if not any(a.startswith("--rates") for a in argv):
            args.rates = "100,200"
        if not any(a.startswith("--duration") for a in argv):
            args.duration = 3.0
    try:
        args.rate_list = [float(r) for r in args.rates.split(",") if r.strip()]
    except ValueError:
        parser.error("--rates is a comma-separated list of numbers")
    if not args.rate_list or min(args.rate_list) <= 0:
        parser.error("--rates needs positive rates")
    chosen = [e.strip() for e in args.only.split(",") if e.strip()] or list(ENDPOINTS[1:])
    unknown = [e for e in chosen if e not in ENDPOINTS]
    if unknown:
        parser.error("unknown endpoint(s) %s; choose from %s" % (", ".join(unknown), ", ".join(ENDPOINTS[1:])))
    args.endpoints = ["healthz"] + [e for e in ENDPOINTS[1:] if e in chosen]
    if "bench" not in admin_url(args.database_url)[1]:
        parser.error("the scratch database's name must contain 'bench': it is dropped and created")
    return args


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f}"


def main() -> int:
    args = parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    url = args.database_url
    # The API's rate limits are raised out of the way: the throttle still counts every request.
    production = production_settings() | {
        "TRIPOD_RATE_LIMIT_API_KEY": "10000000/min",
        "TRIPOD_RATE_LIMIT_API_TENANT": "10000000/min",
    }
    env = dict(os.environ, DATABASE_URL=url, LOG_LEVEL="WARNING", **production)
    os.environ.update(DATABASE_URL=url, LOG_LEVEL="WARNING", **production)
    log(
        f"scratch database {url}; {args.customers} customers x {args.devices} devices, {args.events:,} events;"
        f" rates {args.rates} req/s, {args.duration:g} s each, {args.clients} client processes"
    )
    failed = 0
    with scratch_database(url, args.keep_database, log), tempfile.TemporaryDirectory(prefix="bench-reads-") as tmp:
        started = time.perf_counter()
        subprocess.run([PY, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env, check=True, capture_output=True)
        import django

        django.setup()
        from django.db import connections

        from billing_platform import rls

        rls.set_role_on_connect = False  # this process seeds as the login role, as the tests do
        seeded = seed(customers=args.customers, devices=args.devices, events=args.events, now=datetime.now(UTC))
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM (ANALYZE)")
        connections.close_all()  # before the client processes fork
        log(
            f"migrated and seeded in {time.perf_counter() - started:.1f} s: {args.customers} customers,"
            f" {args.customers * args.devices:,} devices, {seeded.invoices} finalized invoices,"
            f" {seeded.events:,} events accepted this month, a partner with {seeded.partner_customers} of the customers"
        )
        postmaster = postmaster_pid(url)
        srv = Gunicorn(
            backlog=4096,
            env=env,
            port=args.port,
            workers=args.workers,
            worker_class=args.worker_class,
            threads=args.threads,
            log=Path(tmp) / "gunicorn.log",
        )
        results: dict[str, dict[float, Step]] = {}
        try:
            srv.start()
            assert srv.proc is not None
            meter = CpuMeter(srv.proc.pid, postmaster)
            log(f"{srv.describe()} on 127.0.0.1:{args.port} (DJANGO_DEBUG=false)")
            for name in args.endpoints:
                requests = requests_for(name, seeded)
                warm = run_step(
                    requests=requests,
                    rate=min(args.rate_list),
                    duration=1.0,
                    clients=args.clients,
                    port=args.port,
                    timeout=args.timeout,
                )
                if warm.statuses:
                    log(f"{LABELS[name]}: the warm-up failed: {warm.statuses} {warm.first_error}")
                results[name] = {}
                for rate in args.rate_list:
                    before = meter.sample()
                    outcome = run_step(
                        requests=requests,
                        rate=rate,
                        duration=args.duration,
                        clients=args.clients,
                        port=args.port,
                        timeout=args.timeout,
                    )
                    cpu = meter.between(before, meter.sample())
                    step = Step(rate, outcome, outcome.last_sent - outcome.first_sent, cpu)
                    results[name][rate] = step
                    failed += step.errors
                    print_step(name, step)
                    time.sleep(0.5)  # what a saturated step left queued has drained
            errors = srv.errors()
            if errors:
                log("gunicorn log (errors):\n" + errors)
        finally:
            srv.stop()
        print_table(results, args.rate_list)
    log(f"{failed} request(s) without a 2xx answer" if failed else "every request answered 2xx")
    return 1 if failed else 0


def print_step(name: str, step: Step) -> None:
    o = step.outcome
    lat = o.latencies
    total = step.cpu["busy"] + step.cpu["idle"]
    other = step.cpu["busy"] - step.cpu["gunicorn"] - step.cpu["postgres"] - o.cpu
    errors = ""
    if step.errors:
        errors = f" ERRORS {step.errors} {dict(sorted(o.statuses.items()))}: {o.first_error[:200]}"
    log(
        f"{LABELS[name]} at {step.rate:g} req/s: p50 {ms(quantile(lat, 0.5))} ms, p99 {ms(quantile(lat, 0.99))} ms,"
        f" max {ms(max(lat, default=0.0))} ms; {o.sent} sent, achieved {step.achieved:,.0f} req/s"
        f" (send lag p99 {ms(quantile(o.lags, 0.99))} ms); CPU: gunicorn {step.cpu['gunicorn']:.1f} s"
        f" ({cpu_per_request(step, 'gunicorn')} ms/request), PostgreSQL {step.cpu['postgres']:.1f} s"
        f" ({cpu_per_request(step, 'postgres')} ms/request), clients {o.cpu:.1f} s, other {other:.1f} s,"
        f" idle {step.cpu['idle']:.1f} s of {total:.1f}" + errors
    )
    if total and other / total > 0.25:
        log("  (something else used the CPU during this step: the latencies above are not this code's alone)")


def cpu_per_request(step: Step, part: str) -> str:
    """CPU milliseconds per request answered: what a request costs, less sensitive than latency to
    the rest of the machine (the PostgreSQL figure counts the whole server's backends)."""
    answered = len(step.outcome.latencies) + step.errors
    return f"{step.cpu[part] / answered * 1000:.1f}" if answered else "-"


def print_table(results: dict[str, dict[float, Step]], rates: list[float]) -> None:
    if not results:
        return
    floor = results.get("healthz", {})
    log("")
    header = "| endpoint | " + " | ".join(
        f"{r:g} req/s p50 / p99 / max ms (errors) | p99 / healthz p99 | gunicorn CPU ms/req" for r in rates
    )
    log(header + " |")
    log("|---|" + "---|---|---|" * len(rates))
    for name, steps in results.items():
        cells = []
        for rate in rates:
            step = steps.get(rate)
            if step is None:
                cells += ["", "", ""]
                continue
            lat = step.outcome.latencies
            p99 = quantile(lat, 0.99)
            base = floor.get(rate)
            base99 = quantile(base.outcome.latencies, 0.99) if base else 0.0
            cells.append(
                f"{ms(quantile(lat, 0.5))} / {ms(p99)} / {ms(max(lat, default=0.0))} ({step.errors})"
                + ("" if step.achieved >= 0.95 * rate else f" [sent {step.achieved:,.0f}/s]")
            )
            cells.append(f"{p99 / base99:,.1f}x" if base99 else "")
            cells.append(cpu_per_request(step, "gunicorn"))
        log(f"| `{LABELS[name]}` | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        log("interrupted")
        sys.exit(130)
