"""Invoicing test data: Transports Dupont (Paris, billing day 1) subscribed since 1 March 2026 to a
plan of usage products, each billed from a meter, taxed at the French standard rate."""

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.utils import timezone

from catalog.services import meter_create, plan_create, product_create, tax_rate_set
from customers.models import Customer
from customers.tests.factories import dupont
from subscriptions.services import subscription_create
from tenancy.actors import Actor
from tenancy.models import Tenant

PARIS = ZoneInfo("Europe/Paris")
ACTOR = Actor.system("tests")


def usage_customer(
    tenant: Tenant,
    *,
    products: Mapping[str, str],
    meters: Mapping[str, Mapping[str, Any]],
    components: Sequence[Mapping[str, Any]],
    devices: Sequence[str | Mapping[str, Any]],
) -> Customer:
    """Dupont (Paris, billing day 1) with subscription ``s`` to plan ``p`` (EUR), signed on 1 March
    2026 (09:00 Paris) and started that day, with ``devices`` (ids, or a device's fields). The plan
    bills ``components`` of the usage products ``products`` (code -> name) from the meters
    ``meters`` (code -> the meter's fields); 20 % standard VAT in France."""
    now = timezone.now()
    for code, name in products.items():
        product_create(tenant=tenant, actor=ACTOR, at=now, code=code, name=name, kind="usage")
    for code, fields in meters.items():
        meter_create(tenant=tenant, actor=ACTOR, at=now, code=code, **fields)
    tax_rate_set(tenant=tenant, actor=ACTOR, at=now, country="FR", tax_category="standard", rate="20")
    plan = plan_create(
        tenant=tenant,
        actor=ACTOR,
        at=now,
        code="p",
        name="P",
        prices=[{"currency": "EUR"}],
        components=[dict(c) for c in components],
    )
    customer = dupont(tenant)
    subscription_create(
        tenant=tenant,
        actor=ACTOR,
        at=now,
        external_id="s",
        customer=customer,
        plan=plan,
        signed_at=datetime(2026, 3, 1, 9, tzinfo=PARIS),
        starts_on=date(2026, 3, 1),
        devices=[{"device_id": d} if isinstance(d, str) else dict(d) for d in devices],
    )
    return customer
