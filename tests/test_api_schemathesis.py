"""The published schema tells the truth: schemathesis runs every check it has (all of them are on
unless named otherwise, which ``--checks all`` would also override for the few per-operation
exceptions of the configuration file:
no server error, status codes, content types, headers and bodies conforming to the schema, schema-
invalid data refused, missing required headers refused, unsupported methods answered 405...) on every
operation of ``/api/v1/schema/``, against the running app, with a fixed seed and a bounded budget.

The server is Django's live test server (a real HTTP server on the test database) whose threads keep
their database connections (``pooled_live_server``); the tenant is the demo one (``seed_demo``), with
a subscription signed so that lists and details have rows to conform. Schemathesis runs in its own
process (its CLI, as CI would run it), configured by ``tests/schemathesis.toml``, which also says what
is left out and why.
"""

import os
import queue
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import date
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.contrib.staticfiles.handlers import StaticFilesHandler
from django.core.management import call_command
from django.core.servers.basehttp import WSGIServer
from django.db import connections
from django.test.testcases import LiveServerThread
from django.utils import timezone

from catalog.models import Plan
from customers.models import Customer
from invoicing.models import BillRun
from invoicing.services import invoice_generate, invoice_metadata_update
from subscriptions.models import DeviceCloudWebhook, WebhookStatus
from subscriptions.services import subscription_create
from subscriptions.tests.factories import SMART_FLEET_SIGNED_AT
from tenancy.actors import Actor
from tenancy.models import ApiKeyScope, Tenant
from tenancy.services import api_key_create

CONFIG = Path(__file__).with_name("schemathesis.toml")
SEED = 20261206
# Examples per operation in the fuzzing and stateful phases; the coverage phase (every boundary and
# every kind of invalid value of each parameter, about 2,300 requests) does not depend on it. The
# whole test took 3 min 18 s on a 2-core machine shared with other work (load average about 2), on
# pytest-django's ``live_server``; about 1 min on the server below.
MAX_EXAMPLES = 5
TIMEOUT_SECONDS = 900
# The server's threads. Schemathesis runs with one worker, so its requests come in a fixed order:
# ``--workers 2`` was no faster on 2 cores shared with other work (77 s against 60 s), and one of its
# two runs failed, two operations then changing the same rows in an order that varies.
SERVER_THREADS = 2


class PooledWSGIServer(WSGIServer):
    """The live server's WSGI server with a fixed set of threads that keep their database connection
    from one request to the next (CONN_MAX_AGE), as a production worker does. pytest-django's
    ``live_server`` starts a thread per request, which opens a connection of its own and closes it
    at its end: for the thousands of requests of this test, that was about a third of the server's
    time."""

    def __init__(self, *args: Any, connections_override: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.requests: queue.Queue[tuple[socket.socket, Any] | None] = queue.Queue()
        self.workers = [threading.Thread(target=self.work, daemon=True) for _ in range(SERVER_THREADS)]
        for worker in self.workers:
            worker.start()

    def process_request(self, request: Any, client_address: Any) -> None:
        self.requests.put((request, client_address))

    def work(self) -> None:
        try:
            while (item := self.requests.get()) is not None:
                request, client_address = item
                try:
                    self.finish_request(request, client_address)
                except Exception:
                    self.handle_error(request, client_address)
                finally:
                    self.shutdown_request(request)
        finally:
            connections.close_all()

    def server_close(self) -> None:
        super().server_close()
        for _ in self.workers:
            self.requests.put(None)
        for worker in self.workers:  # a worker stuck on a connection must not hang the run
            worker.join(timeout=30)


class PooledLiveServerThread(LiveServerThread):
    server_class = PooledWSGIServer  # type: ignore[assignment]  # a WSGIServer, as ThreadedWSGIServer is


@pytest.fixture
def pooled_live_server(settings: Any) -> Iterator[str]:
    """The URL of a live server (as pytest-django's ``live_server``) answering on ``SERVER_THREADS`` threads."""
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "127.0.0.1"]
    thread = PooledLiveServerThread("127.0.0.1", static_handler=StaticFilesHandler)
    thread.daemon = True
    thread.start()
    thread.is_ready.wait()
    if thread.error:
        raise thread.error
    yield "http://127.0.0.1:%d" % thread.port
    thread.terminate()


def seeded_api_key() -> str:
    """The demo tenant (with its billing history: subscriptions, invoices, payments, a suspension),
    plus a subscription with metadata, a draft invoice, a bill run and a refused webhook, and a
    full-scope key of it."""
    call_command("seed_demo", stdout=StringIO())
    tenant = Tenant.objects.get(slug="smart-fleet")
    actor = Actor.system("schemathesis")
    now = timezone.now()
    dupont = Customer.objects.get(tenant=tenant, external_id="dupont")
    subscription_create(
        tenant=tenant,
        actor=actor,
        at=now,
        external_id="schemathesis-fleet",
        customer=dupont,
        plan=Plan.objects.get(tenant=tenant, code="smart-fleet"),
        signed_at=SMART_FLEET_SIGNED_AT,
        devices=[{"device_id": "S1", "device_type": "eld"}, {"device_id": "S2", "device_type": "eld"}],
        metadata={"crm_id": "OPP-1"},
    )
    invoice = invoice_generate(customer=dupont, billing_date=date(2026, 4, 1), at=now)
    assert invoice is not None
    invoice_metadata_update(tenant=tenant, actor=actor, at=now, invoice_id=str(invoice.pk), metadata={"erp": "F-1"})
    BillRun.objects.create(tenant=tenant, billing_date=date(2026, 4, 1))
    DeviceCloudWebhook.objects.create(
        tenant=tenant,
        webhook_id="msg_1",
        received_at=now,
        content_type="application/json",
        body="{}",
        status=WebhookStatus.REJECTED,
        outcome="Unknown event type ''.",
    )
    _, key = api_key_create(tenant=tenant, name="schemathesis", scope=ApiKeyScope.FULL, actor=actor, at=now)
    return key


@pytest.mark.django_db(transaction=True)
def test_every_operation_conforms_to_the_published_schema(
    pooled_live_server: str, tmp_path: Path, settings: Any
) -> None:
    # Thousands of requests in a few minutes from one key: the API's rate limits (tests/test_rate_limits.py)
    # would answer 429 and schemathesis wait out each Retry-After; this run is about the schema.
    settings.TRIPOD_RATE_LIMITS = {
        scope: dict.fromkeys(limits, "1000000/min") for scope, limits in settings.TRIPOD_RATE_LIMITS.items()
    }
    key = seeded_api_key()
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--no-color",
        "--config-file",
        str(CONFIG),
        "run",
        pooled_live_server + "/api/v1/schema/",
        "--seed",
        str(SEED),
        "--max-examples",
        str(MAX_EXAMPLES),
        "--generation-database",
        "none",
        "--workers",
        "1",
        "--header",
        "Authorization: Bearer " + key,
        # One connection per request: Django's development server (live_server) can leave a refused
        # request's unread body on a kept-alive connection, and the next request then waits forever.
        "--header",
        "Connection: close",
        "--report",
        "junit",
        "--report-junit-path",
        str(tmp_path / "schemathesis.xml"),
    ]
    env = {**os.environ, "NO_COLOR": "1", "SCHEMATHESIS_HOOKS": ""}
    done = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-20000:]
