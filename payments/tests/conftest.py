"""Payments test data: Dupont's Smart Fleet (devices A, B and C active) and its open invoices, written
as the ledger leaves them; charging is recorded instead of reaching a gateway. The ledger's tests
record, rather than run, the charging and reactivation it hands over to (``charges``,
``reactivations``): those have their own tests."""

from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from djmoney.money import Money

from invoicing.lines import LineType
from invoicing.models import Invoice, InvoiceKind, InvoiceLine, InvoicePaymentStatus, InvoiceStatus
from payments import charging
from subscriptions.models import Subscription, SubscriptionStatus
from subscriptions.tests.factories import smart_fleet, smart_fleet_activate
from tenancy.models import Tenant

PDF = b"%PDF-1.7 invoice"


def open_invoice(
    subscription: Subscription,
    *,
    number: str,
    issue_date: date,
    due_date: date,
    total: str,
    amount_due: str | None = None,
) -> Invoice:
    """A finalized invoice of the subscription's customer billing it, unpaid (partly paid when
    ``amount_due`` is below ``total``), with its PDF."""
    due = Decimal(amount_due or total)
    invoice = Invoice.objects.create(
        tenant_id=subscription.tenant_id,
        customer=subscription.customer,
        kind=InvoiceKind.INVOICE,
        status=InvoiceStatus.FINALIZED,
        number=number,
        issue_date=issue_date,
        currency="EUR",
        language="fr",
        net_total=Money(total, "EUR"),
        total=Money(total, "EUR"),
        amount_due=Money(due, "EUR"),
        amount_paid=Money(Decimal(total) - due, "EUR"),
        payment_status=InvoicePaymentStatus.UNPAID if due == Decimal(total) else InvoicePaymentStatus.PARTIALLY_PAID,
        due_date=due_date,
        pdf=PDF,
        finalized_at=datetime(issue_date.year, issue_date.month, issue_date.day, 6, 0).astimezone(),
    )
    InvoiceLine.objects.create(
        tenant_id=subscription.tenant_id,
        invoice=invoice,
        type=LineType.FEE,
        product="fleet-fee",
        description="Smart Fleet",
        quantity=Decimal(1),
        amount=Decimal(total),
        tax_category="standard",
        subscription=subscription,
    )
    return invoice


@pytest.fixture
def fleet(tenant: Tenant) -> Subscription:
    """Dupont's Smart Fleet with devices A, B and C active (billing.md)."""
    subscription = smart_fleet(tenant)
    smart_fleet_activate(tenant)
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.ACTIVE
    return subscription


@pytest.fixture
def charged(monkeypatch: pytest.MonkeyPatch) -> list[tuple[list[UUID], dict[str, Any]]]:
    """The calls to ``invoices_charge_enqueue``: (invoice ids, keyword arguments)."""
    calls: list[tuple[list[UUID], dict[str, Any]]] = []

    def enqueue(invoice_ids: Sequence[UUID], **kwargs: Any) -> None:
        calls.append((list(invoice_ids), kwargs))

    monkeypatch.setattr(charging, "invoices_charge_enqueue", enqueue)
    return calls


@pytest.fixture
def charges(monkeypatch: Any) -> list[dict[str, Any]]:
    """Calls of ``payments.charging.invoices_charge_enqueue``."""
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(
        charging,
        "invoices_charge_enqueue",
        lambda ids, *, tenant_id, trigger: calls.append({"ids": list(ids), "tenant_id": tenant_id, "trigger": trigger}),
    )
    return calls


@pytest.fixture
def reactivations(monkeypatch: Any) -> list[dict[str, Any]]:
    """Calls of ``payments.dunning.customers_reactivate_if_clear``."""
    from payments import dunning

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(
        dunning,
        "customers_reactivate_if_clear",
        lambda *, tenant_id, customer_ids, at: calls.append(
            {"tenant_id": tenant_id, "customer_ids": list(customer_ids), "at": at}
        ),
    )
    return calls
