"""Catalog test data: billing.md's Smart Fleet offer and a plan of one per-device platform fee.

The offer is kept once, as the bodies api.md's integrator sends (``SMART_FLEET_PRODUCTS``,
``SMART_FLEET_METER``, ``SMART_FLEET_TAX_RATE``, ``SMART_FLEET_PLAN``): API tests post them,
the builders below give them to the services the API calls. Tests still state every number
they assert on.
"""

import copy
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.utils import timezone
from rest_framework.test import APIClient

from catalog.models import Plan, Product
from catalog.services import meter_create, plan_create, product_create, tax_rate_set
from tenancy.actors import Actor
from tenancy.models import Tenant

ACTOR = Actor.system("tests")

SMART_FLEET_PRODUCTS: list[dict[str, Any]] = [
    {
        "code": "eld-200",
        "name": "ELD-200 tracker",
        "kind": "hardware",
        "ssp": [{"currency": "EUR", "amount": "240.00"}],
    },
    {"code": "fleet-platform", "name": "Fleet platform", "kind": "service"},
    {"code": "data-overage", "name": "Data overage", "kind": "usage"},
]
SMART_FLEET_METER: dict[str, Any] = {
    "code": "data_mb",
    "name": "Data (MB)",
    "aggregation": "sum",
    "field": "mb",
    "dimensions": ["device_type", "region"],
}
SMART_FLEET_TAX_RATE: dict[str, Any] = {"country": "FR", "tax_category": "standard", "rate": "20"}
# Hardware 240.00 in 12 instalments billed from signature, 25.00 per device and month from its
# activation, data pooled over 1024 MB per device then 0.010 per MB up to 10000, 0.005 beyond.
SMART_FLEET_PLAN: dict[str, Any] = {
    "code": "smart-fleet",
    "name": "Smart Fleet",
    "interval": "month",
    "commitment_months": 12,
    "components": [
        {"product": "eld-200", "kind": "hardware", "price": "240.00", "instalments": 12, "bill_on": "signature"},
        {
            "product": "fleet-platform",
            "kind": "service",
            "per_device": True,
            "starts_on": "activation",
            "charge": {"model": "flat", "amount": "25.00"},
        },
        {
            "product": "data-overage",
            "kind": "usage",
            "meter": "data_mb",
            "pooled": True,
            "included_per_device": 1024,
            "charge": {
                "model": "graduated",
                "tiers": [{"up_to": 10000, "unit_amount": "0.010"}, {"up_to": None, "unit_amount": "0.005"}],
            },
        },
    ],
    "prices": [{"currency": "EUR"}],
}


def smart_fleet_plan_body(*, fee_starts_on: str = "activation") -> dict[str, Any]:
    """A copy of ``SMART_FLEET_PLAN``, its platform fee starting on ``fee_starts_on``."""
    body = copy.deepcopy(SMART_FLEET_PLAN)
    body["components"][1]["starts_on"] = fee_starts_on
    return body


def smart_fleet_products(
    tenant: Tenant,
    *,
    at: datetime | None = None,
    names: Mapping[str, str] | None = None,
    meter: Mapping[str, Any] | None = None,
) -> None:
    """The Smart Fleet offer without its plan: the three products, the ``data_mb`` meter and VAT
    20 % in France. ``names`` renames products by code; ``meter`` changes fields of the meter."""
    at = at or timezone.now()
    for product in SMART_FLEET_PRODUCTS:
        fields = {**product, "name": (names or {}).get(product["code"], product["name"])}
        product_create(tenant=tenant, actor=ACTOR, at=at, **fields)
    meter_create(tenant=tenant, actor=ACTOR, at=at, **{**SMART_FLEET_METER, **(meter or {})})
    tax_rate_set(tenant=tenant, actor=ACTOR, at=at, **SMART_FLEET_TAX_RATE)


def smart_fleet_catalog(
    tenant: Tenant,
    *,
    at: datetime | None = None,
    names: Mapping[str, str] | None = None,
    meter: Mapping[str, Any] | None = None,
    fee_starts_on: str = "activation",
) -> Plan:
    """The whole Smart Fleet offer (``smart_fleet_products``, then the ``smart-fleet`` plan)."""
    at = at or timezone.now()
    smart_fleet_products(tenant, at=at, names=names, meter=meter)
    return plan_create(tenant=tenant, actor=ACTOR, at=at, **smart_fleet_plan_body(fee_starts_on=fee_starts_on))


def smart_fleet_catalog_posted(api: APIClient) -> dict[str, Any]:
    """The whole Smart Fleet offer sent through the API, as api.md's integrator does; returns the plan."""
    bodies = [
        *(("/api/v1/products", product) for product in SMART_FLEET_PRODUCTS),
        ("/api/v1/meters", SMART_FLEET_METER),
        ("/api/v1/tax_rates", SMART_FLEET_TAX_RATE),
        ("/api/v1/plans", SMART_FLEET_PLAN),
    ]
    for path, body in bodies:
        response = api.post(path, body, format="json")
        assert response.status_code in (200, 201), response.content
    plan: dict[str, Any] = response.json()
    return plan


def platform_plan(
    tenant: Tenant,
    code: str,
    amount: str,
    *,
    at: datetime | None = None,
    interval: str = "month",
    starts_on: str = "subscription_start",
    **fields: Any,
) -> Plan:
    """Plan ``code`` (named ``code.title()``, priced in EUR): one per-device fee of ``amount`` per
    ``interval`` on the ``platform`` service product (made with the first such plan), from the
    subscription's start or from each device's activation."""
    at = at or timezone.now()
    if not Product.objects.filter(tenant=tenant, code="platform").exists():
        product_create(tenant=tenant, actor=ACTOR, at=at, code="platform", name="Platform", kind="service")
    return plan_create(
        tenant=tenant,
        actor=ACTOR,
        at=at,
        code=code,
        name=code.title(),
        interval=interval,
        components=[
            {
                "product": "platform",
                "per_device": True,
                "starts_on": starts_on,
                "charge": {"model": "flat", "amount": amount},
            }
        ],
        prices=[{"currency": "EUR"}],
        **fields,
    )
