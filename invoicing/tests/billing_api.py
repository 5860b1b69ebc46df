"""Billing through the public API, as a tenant's integrator does it, with time frozen at each step:
products, plans and customers posted, subscriptions signed, bill runs started with ``POST
/bill_runs`` (its Celery tasks run eagerly once the request's transaction commits) and the invoices
read back from ``GET /invoices``."""

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from rest_framework.test import APIClient

from billing_platform.celery import app as celery_app
from usage.partitions import forget_known_partitions

PARIS = ZoneInfo("Europe/Paris")
Capture = Callable[..., AbstractContextManager[Any]]


def paris(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=PARIS)


@pytest.fixture
def eager_celery() -> Iterator[None]:
    forget_known_partitions()
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False
    forget_known_partitions()


def ok(response: Any) -> Any:
    assert response.status_code in (200, 201, 202), response.content
    return response.json()


def post(api: APIClient, at: datetime, path: str, body: dict[str, Any]) -> Any:
    with time_machine.travel(at, tick=False):
        return ok(api.post(f"/api/v1/{path}", body, format="json"))


def send_data_mb(client: APIClient, at: datetime, events: list[tuple[str, str, datetime, int]]) -> dict[str, Any]:
    """Post ``events`` (transaction id, device, time, MB) of meter ``data_mb`` at ``at``; the
    response's body."""
    body = {
        "events": [
            {
                "transaction_id": tid,
                "code": "data_mb",
                "device_id": device,
                "timestamp": ts.isoformat(),
                "properties": {"mb": mb},
            }
            for tid, device, ts, mb in events
        ]
    }
    result: dict[str, Any] = post(client, at, "events", body)
    return result


def get(api: APIClient, at: datetime, path: str) -> Any:
    with time_machine.travel(at, tick=False):
        return ok(api.get(f"/api/v1/{path}"))


def bill(api: APIClient, at: datetime, billing_date: str, capture: Capture, customer: str = "c1") -> dict[str, Any]:
    """Run the bill run of ``billing_date`` at ``at`` (``POST /bill_runs``), check it completed, and
    return ``customer``'s invoice of that date (not void), or ``{}`` when it has none."""
    with time_machine.travel(at, tick=False), capture(execute=True):
        run = ok(api.post("/api/v1/bill_runs", {"billing_date": billing_date}, format="json"))
    run = get(api, at, f"bill_runs/{run['id']}")
    assert run["status"] == "completed", run
    found = get(api, at, f"invoices?customer={customer}&date_from={billing_date}&date_to={billing_date}")["results"]
    live = [dict(i) for i in found if i["status"] != "void"]
    assert len(live) <= 1, live
    return live[0] if live else {}


def summary(invoice: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """Each line as (type, product, its devices, amount)."""
    return [(line["type"], line["product"], ",".join(line["devices"]), line["amount"]) for line in invoice["lines"]]


def taxes(invoice: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Each tax as (category, base, amount)."""
    return [(t["category"], t["base"], t["amount"]) for t in invoice["taxes"]]


def projected(api: APIClient, at: datetime, customer: str = "c1") -> list[tuple[str, str, str, str]]:
    """The lines of the projected invoice of ``GET /customers/{customer}/current_usage`` at ``at``."""
    usage = get(api, at, f"customers/{customer}/current_usage")
    return [
        (line["type"], line["product"], ",".join(line["devices"]), line["amount"])
        for line in usage["projected"]["lines"]
    ]
