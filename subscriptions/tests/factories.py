"""Subscription test data: billing.md's Smart Fleet subscription, and customers on a per-device
platform fee. Built through the services, as the API builds them."""

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import time_machine
from django.utils import timezone

from catalog.models import Plan
from catalog.services import tax_rate_set
from catalog.tests.factories import platform_plan, smart_fleet_catalog
from customers.models import Customer
from customers.services import customer_create
from customers.tests.factories import dupont, with_address
from subscriptions.models import Subscription
from subscriptions.services import device_event_apply, subscription_create
from tenancy.actors import Actor
from tenancy.models import Tenant

ACTOR = Actor.system("tests")
PARIS = ZoneInfo("Europe/Paris")

SMART_FLEET_CATALOG_AT = datetime(2026, 3, 1, 9, 0, tzinfo=PARIS)
SMART_FLEET_SIGNED_AT = datetime(2026, 3, 10, 10, 0, tzinfo=PARIS)
# billing.md's activations, Paris time.
SMART_FLEET_ACTIVATIONS = {
    "A": datetime(2026, 3, 15, 9, 0, tzinfo=PARIS),
    "B": datetime(2026, 3, 20, 14, 0, tzinfo=PARIS),
    "C": datetime(2026, 4, 10, 8, 0, tzinfo=PARIS),
}
# The body of POST /api/v1/subscriptions in api.md.
SMART_FLEET_SUBSCRIPTION: dict[str, Any] = {
    "external_id": "dupont-fleet",
    "customer": "dupont",
    "plan": "smart-fleet",
    "signed_at": "2026-03-10T10:00:00+01:00",
    "devices": [{"device_id": d, "device_type": "eld"} for d in ("A", "B", "C")],
}


def smart_fleet(tenant: Tenant, **catalog: Any) -> Subscription:
    """billing.md's Smart Fleet, with time frozen as it happened: the offer
    (``smart_fleet_catalog(tenant, **catalog)``) and Transports Dupont (``dupont``) on 1 March 2026,
    09:00 Paris; the ``dupont-fleet`` subscription signed on 10 March, 10:00, with ELD devices A, B
    and C, none activated yet (``smart_fleet_activate``)."""
    with time_machine.travel(SMART_FLEET_CATALOG_AT, tick=False):
        plan = smart_fleet_catalog(tenant, **catalog)
        customer = dupont(tenant)
    with time_machine.travel(SMART_FLEET_SIGNED_AT, tick=False):
        return signed_subscription(
            tenant,
            customer=customer,
            plan=plan,
            external_id="dupont-fleet",
            devices=("A", "B", "C"),
            device_type="eld",
            signed_at=SMART_FLEET_SIGNED_AT,
            starts_on=None,
        )


def smart_fleet_activate(tenant: Tenant, devices: Iterable[str] = ("A", "B", "C")) -> None:
    """The device cloud's activations of billing.md, each applied with time frozen at its instant."""
    for device in devices:
        at = SMART_FLEET_ACTIVATIONS[device]
        with time_machine.travel(at, tick=False):
            device_event_apply(
                tenant=tenant, device_id=device, event_type="device.activated", occurred_at=at, actor=ACTOR
            )


def signed_subscription(
    tenant: Tenant,
    *,
    customer: Customer,
    plan: Plan,
    external_id: str = "sub",
    devices: Sequence[str] = ("A",),
    device_type: str | None = None,
    signed_at: datetime = datetime(2026, 1, 1, 9, 0, tzinfo=PARIS),
    starts_on: date | None = date(2026, 1, 1),
    auto_renew: bool = True,
) -> Subscription:
    """Subscription ``external_id`` of ``customer`` to ``plan``, signed on 1 January 2026 (09:00
    Paris) and started that day unless told otherwise (``starts_on=None``: the day of signature),
    with ``devices`` (ids, all of ``device_type`` if given); renewed at the end of its commitment
    unless ``auto_renew=False``."""
    extra = {} if device_type is None else {"device_type": device_type}
    return subscription_create(
        tenant=tenant,
        actor=ACTOR,
        at=timezone.now(),
        external_id=external_id,
        customer=customer,
        plan=plan,
        signed_at=signed_at,
        devices=[{"device_id": d, **extra} for d in devices],
        starts_on=starts_on,
        auto_renew=auto_renew,
    )


def monthly_fee_customers(tenant: Tenant, count: int = 1, *, countries: Sequence[str] = ("FR",)) -> list[Customer]:
    """``count`` customers c0, c1... named "Customer 0", "Customer 1"... (countries taken in turn), in
    Paris with billing day 1, each with a subscription s0, s1... signed on 1 March 2026 to plan
    ``p``: 10.00 per device and month from the subscription's start, 2 devices (c0-d0, c0-d1).
    VAT is 20 % in France only. The 1 April invoice bills April in advance: 2 x 10.00 = 20.00,
    VAT 4.00, total 24.00."""
    now = timezone.now()
    plan = platform_plan(tenant, "p", "10.00", at=now)
    tax_rate_set(tenant=tenant, actor=ACTOR, at=now, country="FR", tax_category="standard", rate="20")
    customers = []
    for i in range(count):
        customer = customer_create(
            tenant=tenant,
            actor=ACTOR,
            at=now,
            external_id=f"c{i}",
            name=f"Customer {i}",
            email=f"c{i}@x.test",
            country=countries[i % len(countries)],
            timezone="Europe/Paris",
            billing_day=1,
        )
        with_address(customer)
        signed_subscription(
            tenant=tenant,
            customer=customer,
            plan=plan,
            external_id=f"s{i}",
            devices=[f"c{i}-d{j}" for j in range(2)],
            signed_at=datetime(2026, 3, 1, 9, 0, tzinfo=PARIS),
            starts_on=date(2026, 3, 1),
        )
        customers.append(customer)
    return customers
