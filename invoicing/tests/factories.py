"""Invoicing test data: Transports Dupont (Paris, billing day 1) subscribed since 1 March 2026 to a
plan of usage products, each billed from a meter, taxed at the French standard rate."""

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.utils import timezone
from djmoney.money import Money

from billing_platform.periods import Period
from catalog.services import meter_create, plan_create, product_create, tax_rate_set
from catalog.taxes import customer_tax_parties, document_taxes, tax_rate_table
from customers.models import Customer
from customers.tests.factories import dupont, with_address
from invoicing.composition import Composition
from invoicing.lines import DraftLine, LineType
from invoicing.models import Invoice
from invoicing.services import invoice_finalize
from invoicing.services.generation import invoices_write
from subscriptions.services import subscription_create
from tenancy.actors import Actor
from tenancy.models import Tenant

PARIS = ZoneInfo("Europe/Paris")
ACTOR = Actor.system("tests")
AT = datetime(2026, 4, 1, 6, tzinfo=UTC)  # 1 April 2026, 08:00 in Paris
APRIL_1 = date(2026, 4, 1)
PERIOD_APRIL = (datetime(2026, 3, 31, 22, tzinfo=UTC), datetime(2026, 4, 30, 22, tzinfo=UTC))  # April in Paris


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


# --- documents, as a bill run writes them ------------------------------------------------------


def buyer(tenant: Tenant, external_id: str, **fields: Any) -> Customer:
    """A customer with a postal address in its country."""
    address = fields.pop("address", {"address_line1": "1 Main Street", "postal_code": "10115", "city": "Berlin"})
    return with_address(dupont(tenant, external_id=external_id, address=False, **fields), **address)


def line(kind: str, product: str, amount: str, *, quantity: str = "1", tax_category: str = "standard") -> DraftLine:
    """A line of ``quantity`` × (``amount`` / ``quantity``); services bill April (in Paris)."""
    period = Period(*PERIOD_APRIL) if kind != "hardware" else None
    units = Decimal(quantity)
    return DraftLine(
        type=LineType(kind),
        product_code=product,
        product_name=product.replace("-", " ").title(),
        quantity=units,
        unit_amount=Decimal(amount) / units,
        amount=Decimal(amount),
        tax_category=tax_category,
        period=period,
    )


def issue(customer: Customer, lines: list[DraftLine], *, on: date = APRIL_1, finalize: bool = True) -> Invoice:
    """The invoice of ``lines`` to ``customer`` dated ``on``, taxed by the tax decision (at the
    rates in force on ``on``) and written as a bill run writes it, then finalized (which checks it is
    a valid e-invoice) unless ``finalize`` is False."""
    decided = document_taxes(
        parties=customer_tax_parties(customer),
        lines=lines,
        table=tax_rate_table(tenant=customer.tenant, countries=[customer.country]),
        on=on,
        currency=customer.currency,
        language=customer.language,
    )
    lines = [replace(x, vat_category=decided.vat_category(x)) for x in lines]
    net = sum((x.signed_amount for x in lines), Decimal(0))
    tax = sum((t.amount for t in decided.taxes), Decimal(0))
    currency = customer.currency
    composition = Composition(
        customer, on, lines, Money(net, currency), decided.taxes, Money(tax, currency), Money(net + tax, currency), []
    )
    [invoice] = invoices_write([composition], bill_run=None, at=AT)
    return invoice_finalize(invoice=invoice, actor=ACTOR, at=AT) if finalize else invoice
