"""Outbound webhook benchmark: events written to the outbox and delivered to a local receiver,
batched as Tripod does it against one by one, measured in the same run.

    .venv/bin/python bench/webhook_delivery.py [--events 2000] [--baseline-events 300] [--endpoints 1]
        [--latency-ms 0] [--database-url postgres://postgres@127.0.0.1:5432/tripod_webhooks_bench]
        [--redis-url redis://127.0.0.1:6379/9]

(Its name is not ``webhooks.py``: a script run from ``bench/`` puts that folder first on the import
path, where ``webhooks`` must be the app.)

Everything happens in a scratch database that the script creates, migrates and drops at the end
(its name must contain "bench"). Writing an event queues its deliveries to Celery once committed,
as in production: the broker is a dedicated Redis database (``--redis-url``, not db 0), flushed
before and after, where no worker listens (this script sends the deliveries itself).

The receiver is another process (``--serve``, started by the script): an HTTP/1.1 server on
127.0.0.1 that answers 200 to every POST after ``--latency-ms`` (a remote receiver's round trip),
counts the distinct ``webhook-id``s it got, and keeps the last message, which the script verifies
with the reference ``standardwebhooks`` library.

Two rounds, each timed and its SQL counted (``CaptureQueriesContext``), in this process:

- **one by one** (the baseline): ``--baseline-events`` events, each written by ``event_emit`` in
  its own transaction (a change that emits one event), then each delivery sent alone
  (``deliveries_send(limit=1)``: what one Celery task per event would do, without Celery's own cost
  of a few milliseconds per task);
- **batched** (Tripod): ``--events`` events written by ``events_emit`` 100 per statement (a bill
  run's batch), then sent by ``deliveries_send`` 100 per call (a ``webhook_deliveries_send_task``),
  its requests 10 at a time.

Printed: events/s and queries per event written, deliveries/s and queries per delivery sent, for
both rounds, and the ratios. Timings are printed, never asserted; the exit status is 1 only when a
delivery is missing or the last message does not verify.
"""

import argparse
import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from scratchdb import create_database, drop_database, production_settings  # bench/scratchdb.py

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PY = sys.executable
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/tripod_webhooks_bench"
DEFAULT_REDIS = "redis://127.0.0.1:6379/9"
BATCH = 100


def log(message: str) -> None:
    print(message, flush=True)


# --- the receiver (another process) ---------------------------------------------------------------


def serve(port: int, latency: float) -> None:
    """Answer 200 to every POST (after ``latency`` seconds); GET /stats gives the count of distinct
    webhook-ids and the last message."""
    ids: set[str] = set()
    last: dict[str, Any] = {}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: the sender reuses its connections

        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if latency:
                time.sleep(latency)
            with lock:
                ids.add(self.headers.get("webhook-id", ""))
                last.update(body=body.decode(), headers={k.lower(): v for k, v in self.headers.items()})
            self.reply(b"ok")

        def do_GET(self) -> None:  # noqa: N802
            with lock:
                self.reply(json.dumps({"received": len(ids), "last": last}).encode())

        def reply(self, data: bytes) -> None:
            # One write for the status line, headers and body: two small writes would wait on the
            # client's delayed ACK (Nagle), 40 ms a message.
            head = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % len(data)
            self.wfile.write(head.encode() + data)
            self.wfile.flush()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    server.serve_forever()


class Receiver:
    def __init__(self, latency_ms: float) -> None:
        self.process = subprocess.Popen(
            [PY, __file__, "--serve", "--latency-ms", str(latency_ms)], stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None
        self.port = int(self.process.stdout.readline())
        self.url = "http://127.0.0.1:%d/tripod" % self.port

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen("http://127.0.0.1:%d/stats" % self.port, timeout=10) as response:
            data: dict[str, Any] = json.loads(response.read())
            return data

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


# --- the rounds -----------------------------------------------------------------------------------


def measured(step: Callable[[], int]) -> tuple[int, float, int]:
    """(what ``step`` returned, seconds, SQL queries)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        done = step()
        seconds = time.perf_counter() - started
    return done, seconds, len(queries.captured_queries)


def emit_one_by_one(tenant: Any, count: int, at: Any) -> int:
    from django.db import transaction

    from webhooks.outbox import event_emit

    for i in range(count):
        with transaction.atomic():
            event_emit(tenant=tenant, type="invoice.finalized", data=payload(i), at=at)
    return count


def emit_batched(tenant: Any, count: int, at: Any) -> int:
    from django.db import transaction

    from webhooks.outbox import events_emit

    for start in range(0, count, BATCH):
        with transaction.atomic():
            events_emit(
                tenant=tenant,
                events=[("invoice.finalized", payload(i)) for i in range(start, min(count, start + BATCH))],
                at=at,
            )
    return count


def send_all(limit: int, at: Any) -> int:
    from webhooks.delivery import deliveries_send

    sent = 0
    while True:
        report = deliveries_send(at=at, limit=limit)
        if not report.tried:
            return sent
        assert report.delivered == report.tried, report
        sent += report.tried


def payload(i: int) -> dict[str, Any]:
    """An invoice.finalized payload of a realistic size (about 450 bytes)."""
    return {
        "id": "00000000-0000-4000-8000-%012d" % i,
        "number": "INV-2026-%06d" % (i + 1),
        "status": "finalized",
        "customer": "c%05d" % i,
        "subscriptions": ["s%05d" % i],
        "issue_date": "2026-04-01",
        "currency": "EUR",
        "net_total": "150.91",
        "tax_total": "30.18",
        "total": "181.09",
        "amount_due": "181.09",
        "bill_run": "11111111-2222-4333-8444-555555555555",
        "finalized_at": "2026-04-01T04:00:00Z",
    }


def run_round(name: str, tenant: Any, events: int, endpoints: int, *, batched: bool) -> dict[str, float]:
    from django.utils import timezone

    at = timezone.now()
    emit = emit_batched if batched else emit_one_by_one
    _, emit_s, emit_q = measured(lambda: emit(tenant, events, at))
    sent, send_s, send_q = measured(lambda: send_all(BATCH if batched else 1, at))
    if sent != events * endpoints:
        raise SystemExit("%s: %d deliveries sent, %d expected" % (name, sent, events * endpoints))
    result = {
        "emit_per_s": events / emit_s,
        "emit_queries": emit_q / events,
        "send_per_s": sent / send_s,
        "send_queries": send_q / sent,
    }
    log(
        "%-11s %6d events written in %6.2f s: %8.0f events/s, %5.2f queries/event; "
        "%6d deliveries sent in %6.2f s: %7.0f deliveries/s, %5.2f queries/delivery"
        % (
            name,
            events,
            emit_s,
            result["emit_per_s"],
            result["emit_queries"],
            sent,
            send_s,
            result["send_per_s"],
            result["send_queries"],
        )
    )
    return result


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Outbound webhook delivery throughput to a local receiver.")
    parser.add_argument("--events", type=int, default=2000, help="events of the batched round (default %(default)s)")
    parser.add_argument("--baseline-events", type=int, default=300, help="events of the one-by-one round")
    parser.add_argument("--endpoints", type=int, default=1, help="endpoints receiving every event")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="the receiver's time per message")
    parser.add_argument("--database-url", default=DEFAULT_DB)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS, help="a dedicated Redis database, flushed")
    parser.add_argument("--keep-database", action="store_true")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.serve and "bench" not in args.database_url.rsplit("/", 1)[-1]:
        parser.error("the scratch database's name must contain 'bench': it is dropped and created")
    if urllib.parse.urlsplit(args.redis_url).path.strip("/") in ("", "0"):
        parser.error("--redis-url must name a dedicated Redis database other than 0 (it is flushed)")
    return args


def flush_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


def main() -> int:
    args = parse_args()
    if args.serve:
        serve(0, args.latency_ms / 1000)
        return 0
    # Production settings (DEBUG off: no query log), with a throwaway secret and encryption key.
    env = dict(os.environ, DATABASE_URL=args.database_url, REDIS_URL=args.redis_url, LOG_LEVEL="WARNING")
    env.update(production_settings())
    env.pop("CELERY_TASK_ALWAYS_EAGER", None)
    env["WEBHOOKS_ALLOW_PRIVATE_TARGETS"] = "true"  # the receiver is on 127.0.0.1, over http
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing_platform.settings")
    create_database(args.database_url)
    flush_redis(args.redis_url)
    receiver = Receiver(args.latency_ms)
    ok = True
    try:
        started = time.perf_counter()
        subprocess.run([PY, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env, check=True, capture_output=True)
        log(
            "scratch database migrated in %.1f s; receiver on %s (%.0f ms a message)"
            % (time.perf_counter() - started, receiver.url, args.latency_ms)
        )
        import django

        django.setup()
        from django.utils import timezone
        from standardwebhooks import Webhook

        from billing_platform import rls

        # This process creates the tenant as the login role; what it measures runs under the
        # tenant's row-level security, as the API and the workers do.
        rls.set_role_on_connect = False

        from tenancy.actors import Actor
        from tenancy.models import Tenant
        from webhooks.services import webhook_endpoint_create

        tenant = Tenant.objects.create(slug="bench-webhooks", name="Bench", default_currency="EUR", timezone="UTC")
        with rls.tenant_context(tenant):
            secrets = [
                webhook_endpoint_create(
                    tenant=tenant, actor=Actor.system("bench"), at=timezone.now(), url=receiver.url, events=["*"]
                )[1]
                for _ in range(args.endpoints)
            ]
            log(
                "%d endpoint(s), every event to each; deliveries sent %d at a time by the batched round"
                % (args.endpoints, BATCH)
            )
            base = run_round("one by one", tenant, args.baseline_events, args.endpoints, batched=False)
            batch = run_round("batched", tenant, args.events, args.endpoints, batched=True)
            log(
                "ratios, batched / one by one: writing %.1fx the events/s with %.2fx the queries per event; "
                "sending %.1fx the deliveries/s with %.3fx the queries per delivery"
                % (
                    batch["emit_per_s"] / base["emit_per_s"],
                    batch["emit_queries"] / base["emit_queries"],
                    batch["send_per_s"] / base["send_per_s"],
                    batch["send_queries"] / base["send_queries"],
                )
            )
            stats = receiver.stats()
            # every endpoint shares the receiver and a message's webhook-id: distinct ids = events
            expected = args.events + args.baseline_events
            log("receiver: %d distinct webhook-ids (%d expected)" % (stats["received"], expected))
            ok = stats["received"] == expected
            last = stats["last"]
            try:
                verified = any(Webhook(s).verify(last["body"], last["headers"]) for s in secrets)
            except Exception as exc:
                verified = False
                log("the last message does not verify: %s" % exc)
            log("the last message verifies with the endpoint's secret (standardwebhooks): %s" % bool(verified))
            ok = ok and bool(verified)
    finally:
        receiver.stop()
        from django.db import connections

        connections.close_all()
        flush_redis(args.redis_url)
        if args.keep_database:
            log("scratch database kept: %s" % args.database_url)
        else:
            drop_database(args.database_url)
            log("scratch database dropped")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
