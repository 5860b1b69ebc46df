"""Customer test data: billing.md's customer, Transports Dupont."""

from datetime import datetime
from typing import Any

from django.utils import timezone

from customers.models import Customer
from customers.services import customer_create
from tenancy.actors import Actor
from tenancy.models import Tenant

ACTOR = Actor.system("tests")

# The body of POST /api/v1/customers.
DUPONT: dict[str, Any] = {
    "external_id": "dupont",
    "name": "Transports Dupont",
    "email": "compta@dupont.test",
    "currency": "EUR",
    "timezone": "Europe/Paris",
    "language": "fr",
    "country": "FR",
    "billing_day": 1,
}


def dupont(tenant: Tenant, *, at: datetime | None = None, **changes: Any) -> Customer:
    """Transports Dupont: FR, Europe/Paris, EUR, French, billing day 1. A change to None leaves the
    field to its default (``billing_day=None``: the first subscription's start sets it)."""
    fields = {name: value for name, value in {**DUPONT, **changes}.items() if value is not None}
    return customer_create(tenant=tenant, actor=ACTOR, at=at or timezone.now(), **fields)
