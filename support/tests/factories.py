"""Support test data: Transports Dupont (Paris, EUR) with one finalized invoice of 100.00 + 20 % VAT,
and the actors of both sides of a conversation."""

from datetime import UTC, datetime

from django.utils import timezone

from catalog.services import tax_rate_set
from customers.models import Customer
from customers.tests.factories import dupont
from invoicing.models import Invoice
from invoicing.tests.factories import issue, line
from tenancy.actors import Actor
from tenancy.models import Tenant

OPENED = datetime(2026, 6, 1, 9, tzinfo=UTC)
CUSTOMER_ACTOR = Actor("portal_user", "42", "Marie Dupont")
STAFF_ACTOR = Actor.system("tests")


def customer_with_invoice(tenant: Tenant) -> tuple[Customer, Invoice]:
    """Dupont and its invoice of 100.00 net, 120.00 with 20 % VAT."""
    tax_rate_set(tenant=tenant, actor=STAFF_ACTOR, at=timezone.now(), country="FR", tax_category="standard", rate="20")
    customer = dupont(tenant)
    return customer, issue(customer, [line("service", "fleet-platform", "100.00")])
