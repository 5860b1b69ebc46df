"""Usage test data shared by the usage and back-office tests: plans that bill meters per unit, and
Transports Dupont's fleet on the six-meter IoT plan."""

from collections.abc import Mapping
from typing import Any

from django.utils import timezone

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
