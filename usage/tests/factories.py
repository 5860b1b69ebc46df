"""Usage test data shared by the usage and back-office tests."""

from datetime import date
from typing import Any

from django.utils import timezone

from catalog.services import meter_create, plan_create, product_create
from customers.services import customer_create
from subscriptions.models import Subscription
from subscriptions.services import subscription_create
from tenancy.actors import Actor
from tenancy.models import Tenant

ACTOR = Actor.system("tests")


def build_fleet(tenant: Tenant, customer_id: str = "dupont", name: str = "Transports Dupont") -> Subscription:
    """A Paris customer (billing day 1) on a plan billing six
    meters, devices A, B, C."""
    now = timezone.now()
    meters: dict[str, dict[str, Any]] = {
        "data_mb": {
            "aggregation": "sum",
            "field": "mb",
            "dimensions": ["device_type", "region"],
            "time_bands": {"peak": ["08:00", "20:00"]},
        },
        "api_calls": {"aggregation": "count"},
        "peak_temp": {"aggregation": "max", "field": "celsius"},
        "active_sims": {"aggregation": "unique_count", "field": "iccid"},
        "odometer": {"aggregation": "latest", "field": "km"},
        "gps_fixes": {"aggregation": "count", "filters": {"quality": "good"}},
    }
    components: list[dict[str, Any]] = []
    for code, spec in meters.items():
        meter_create(tenant=tenant, actor=ACTOR, at=now, code=code, name=code, **spec)
        product_create(tenant=tenant, actor=ACTOR, at=now, code=f"u-{code}", name=code, kind="usage")
        components.append(
            {"product": f"u-{code}", "meter": code, "charge": {"model": "per_unit", "unit_amount": "0.01"}}
        )
    plan = plan_create(
        tenant=tenant, actor=ACTOR, at=now, code="iot", name="IoT", components=components, prices=[{"currency": "EUR"}]
    )
    customer = customer_create(
        tenant=tenant,
        actor=ACTOR,
        at=now,
        external_id=customer_id,
        name=name,
        email="a@dupont.test",
        country="FR",
        timezone="Europe/Paris",
        billing_day=1,
    )
    return subscription_create(
        tenant=tenant,
        actor=ACTOR,
        at=now,
        external_id=f"{customer_id}-fleet",
        customer=customer,
        plan=plan,
        signed_at=now,
        starts_on=date(2026, 1, 1),
        devices=[{"device_id": d} for d in ("A", "B", "C")],
    )
