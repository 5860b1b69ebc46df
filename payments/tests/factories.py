"""Payments test data: Transports Dupont (EUR, Paris, sends invoices) and its invoices of one
service line taxed at 20 %, finalized as a bill run finalizes them."""

from datetime import UTC, date, datetime
from typing import Any

from django.utils import timezone
from djmoney.money import Money

from catalog.services import tax_rate_set
from customers.models import Customer
from customers.tests.factories import dupont
from invoicing.models import Invoice
from invoicing.tests.factories import issue, line
from payments.ledger import payment_record
from payments.models import Payment
from tenancy.actors import Actor
from tenancy.models import Tenant

ACTOR = Actor.system("tests")
AT = datetime(2026, 6, 23, 10, tzinfo=UTC)


def payer(tenant: Tenant, **changes: Any) -> Customer:
    """Dupont, with the French standard rate (20 %) its invoices are taxed at."""
    tax_rate_set(tenant=tenant, actor=ACTOR, at=timezone.now(), country="FR", tax_category="standard", rate="20")
    return dupont(tenant, **changes)


def invoice_of(customer: Customer, net: str, *, on: date, finalize: bool = True) -> Invoice:
    """A finalized invoice of one service line of ``net`` + 20 % VAT, issued ``on`` (due 30 days
    later: the tenant's terms)."""
    invoice = issue(customer, [line("service", "fleet-platform", net)], on=on, finalize=finalize)
    invoice.refresh_from_db()
    return invoice


def pay(customer: Customer, amount: str, *, invoice: Invoice | None = None, **fields: Any) -> Payment:
    """A bank transfer of ``amount`` in the customer's currency, received at ``AT``."""
    return payment_record(
        customer=customer,
        amount=Money(amount, fields.pop("currency", customer.currency)),
        method=fields.pop("method", "bank_transfer"),
        received_at=fields.pop("received_at", AT),
        actor=ACTOR,
        at=fields.pop("at", AT),
        invoice=invoice,
        **fields,
    )
