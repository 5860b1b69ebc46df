"""Usage test data shared by the usage, invoicing and back-office tests: plans that bill meters per
unit, Transports Dupont's fleet on the six-meter IoT plan, and event batches posted to the API."""

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import time_machine
from django.utils import timezone
from rest_framework.test import APIClient

from catalog.models import Plan
from catalog.services import meter_create, plan_create, product_create
from customers.tests.factories import dupont
from subscriptions.models import Subscription
from subscriptions.tests.factories import signed_subscription
from tenancy.actors import Actor
from tenancy.models import Tenant

ACTOR = Actor.system("tests")

# One meter of each aggregation, plus dimensions, time bands and a filter.
IOT_METERS: dict[str, dict[str, Any]] = {
    "data_mb": {
        "aggregation": "sum",
        "field": "mb",
        "dimensions": ["device_type", "region"],
        "time_bands": {"peak": ["08:00", "20:00"]},
    },
    "api_calls": {"aggregation": "count"},
    # A temperature may be below zero.
    "peak_temp": {"aggregation": "max", "field": "celsius", "accepts_negative": True},
    "active_sims": {"aggregation": "unique_count", "field": "iccid"},
    "odometer": {"aggregation": "latest", "field": "km"},
    "gps_fixes": {"aggregation": "count", "filters": {"quality": "good"}},
}


def metered_plan(tenant: Tenant, meters: Mapping[str, Mapping[str, Any]], *, unit_amount: str = "0.01") -> Plan:
    """Plan ``iot`` (EUR): each of ``meters`` (code -> the meter's fields) is made, with a usage
    product ``u-<code>``, and billed per unit at ``unit_amount``."""
    now = timezone.now()
    components: list[dict[str, Any]] = []
    for code, spec in meters.items():
        meter_create(tenant=tenant, actor=ACTOR, at=now, code=code, name=code, **spec)
        product_create(tenant=tenant, actor=ACTOR, at=now, code=f"u-{code}", name=code, kind="usage")
        components.append(
            {"product": f"u-{code}", "meter": code, "charge": {"model": "per_unit", "unit_amount": unit_amount}}
        )
    return plan_create(
        tenant=tenant, actor=ACTOR, at=now, code="iot", name="IoT", components=components, prices=[{"currency": "EUR"}]
    )


def build_fleet(tenant: Tenant, customer_id: str = "dupont", name: str = "Transports Dupont") -> Subscription:
    """A Paris customer (billing day 1) on a plan billing the six ``IOT_METERS`` at 0.01 per unit,
    subscription ``<customer_id>-fleet`` started on 1 January 2026, devices A, B, C."""
    plan = metered_plan(tenant, IOT_METERS)
    customer = dupont(tenant, external_id=customer_id, name=name)
    return signed_subscription(
        tenant,
        customer=customer,
        plan=plan,
        external_id=f"{customer_id}-fleet",
        devices=("A", "B", "C"),
        signed_at=timezone.now(),
    )


def post_events(client: APIClient, events: Sequence[Mapping[str, Any]], at: datetime) -> Any:
    """``POST /api/v1/events`` with ``events`` as a JSON batch, time frozen at ``at``: the response."""
    with time_machine.travel(at, tick=False):
        return client.post("/api/v1/events", data=json.dumps({"events": events}), content_type="application/json")


def events_poster(client: APIClient, now: datetime) -> Callable[..., dict[str, Any]]:
    """A function posting a batch (at ``now`` unless told) that must be taken whole, none rejected,
    and returning the response's body."""

    def post(events: Sequence[Mapping[str, Any]], now: datetime = now) -> dict[str, Any]:
        response = post_events(client, events, now)
        assert response.status_code == 202, response.content
        body: dict[str, Any] = response.json()
        assert body["rejected"] == 0, body
        return body

    return post
