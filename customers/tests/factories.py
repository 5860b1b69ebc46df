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


# Dupont's postal address, which its invoices are sent to (EN 16931 BG-8).
DUPONT_ADDRESS: dict[str, str] = {
    "address_line1": "8 avenue des Transporteurs",
    "postal_code": "94150",
    "city": "Rungis",
}


def dupont(tenant: Tenant, *, at: datetime | None = None, address: bool = True, **changes: Any) -> Customer:
    """Transports Dupont: FR, Europe/Paris, EUR, French, billing day 1, with its postal address
    (``address=False``: none yet). A change to None leaves the field to its default
    (``billing_day=None``: the first subscription's start sets it)."""
    fields = {name: value for name, value in {**DUPONT, **changes}.items() if value is not None}
    customer = customer_create(tenant=tenant, actor=ACTOR, at=at or timezone.now(), **fields)
    return with_address(customer) if address else customer


def with_address(customer: Customer, **address: str) -> Customer:
    """Give ``customer`` a postal address (Dupont's, or ``address``), written on the row."""
    for field, value in {**DUPONT_ADDRESS, **address}.items():
        setattr(customer, field, value)
    customer.save(update_fields=[*DUPONT_ADDRESS, *address])
    return customer
