"""The worked example of specs/partners.md: partner AlpNet (hardware 5 %, service 20 %, usage 10 %)
sold the Smart Fleet deal of billing.md to Dupont. The invoices are the scenario's own, billed
through the API; payments go through the payments ledger, the credit note through its service."""

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from djmoney.money import Money
from rest_framework.test import APIClient

from customers.models import Customer, Partner
from invoicing.models import Invoice
from invoicing.services.credit_notes import credit_note_create
from invoicing.tests.billing_api import eager_celery, ok, paris
from partners.models import CommissionStatement
from partners.statements import statement_approve, statement_lines, statements_build
from payments.ledger import payment_record
from tenancy.actors import Actor
from tenancy.models import Tenant
from tests.scenarios.test_smart_fleet import bill, fleet, send_usage

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_celery")]
__all__ = ["eager_celery", "fleet"]

ACTOR = Actor.system("tests")
APRIL, MAY, JUNE, JULY = date(2026, 4, 1), date(2026, 5, 1), date(2026, 6, 1), date(2026, 7, 1)
ALPNET_PLAN = {"hardware": "5", "service": "20", "usage": "10", "fee": "0"}


@pytest.fixture
def smart_fleet(
    fleet: dict[str, Any], api: APIClient, tenant: Tenant, django_capture_on_commit_callbacks: Any
) -> dict[str, Any]:
    """The invoices of 1 April (total 181.09) and 1 May (308.57), finalized, Dupont sold by AlpNet
    (its partner when they are finalized: AlpNet earns on them)."""
    partner = Partner.objects.create(
        tenant=tenant, code="alpnet", name="AlpNet", currency="EUR", language="fr", commission_plan=ALPNET_PLAN
    )
    customer = Customer.objects.get(tenant=tenant, external_id="dupont")
    customer.partner = partner
    customer.save(update_fields=["partner"])
    address = {"line1": "8 avenue des Transporteurs", "postal_code": "94150", "city": "Rungis", "country": "FR"}
    ok(api.patch("/api/v1/customers/dupont", {"address": address}, format="json"))
    send_usage(
        fleet["ingest"],
        paris(2026, 3, 31, 12),
        [("a-0001", "A", paris(2026, 3, 16, 11), 800), ("b-0001", "B", paris(2026, 3, 25, 11), 3000)],
    )
    april = bill(api, paris(2026, 4, 1, 0, 30), "2026-04-01", django_capture_on_commit_callbacks)
    with time_machine.travel(paris(2026, 4, 1, 1), tick=False), django_capture_on_commit_callbacks(execute=True):
        ok(api.post(f"/api/v1/invoices/{april['id']}/finalize", {}, format="json"))
    send_usage(
        fleet["ingest"],
        paris(2026, 4, 30, 12),
        [
            ("a-0002", "A", paris(2026, 4, 1, 0, 30), 5000),
            ("b-0002", "B", paris(2026, 4, 18, 9), 7000),
            ("c-0002", "C", paris(2026, 4, 20, 9), 2000),
        ],
    )
    may = bill(api, paris(2026, 5, 1, 0, 30), "2026-05-01", django_capture_on_commit_callbacks)
    with time_machine.travel(paris(2026, 5, 1, 1), tick=False), django_capture_on_commit_callbacks(execute=True):
        ok(api.post(f"/api/v1/invoices/{may['id']}/finalize", {}, format="json"))
    april_invoice = Invoice.objects.get(pk=april["id"])
    may_invoice = Invoice.objects.get(pk=may["id"])
    assert (april_invoice.net_total.amount, april_invoice.total.amount) == (Decimal("150.91"), Decimal("181.09"))
    assert (may_invoice.net_total.amount, may_invoice.total.amount) == (Decimal("257.14"), Decimal("308.57"))
    return {"tenant": tenant, "partner": partner, "customer": customer, "april": april_invoice, "may": may_invoice}


def pay(fx: dict[str, Any], invoice: Invoice, amount: str, at: datetime, capture: Any) -> None:
    with time_machine.travel(at, tick=False), capture(execute=True):
        payment_record(
            customer=fx["customer"],
            amount=Money(amount, "EUR"),
            method="bank_transfer",
            received_at=at,
            actor=ACTOR,
            at=at,
            invoice=invoice,
        )


def build(fx: dict[str, Any], month: date) -> CommissionStatement | None:
    """The month's statement, built early on the 1st of the next month (Paris)."""
    after = month.replace(year=month.year + month.month // 12, month=month.month % 12 + 1)
    [*statements] = statements_build(
        tenant=fx["tenant"], month=month, actor=ACTOR, at=paris(after.year, after.month, 1, 2)
    )
    assert len(statements) <= 1
    return statements[0] if statements else None


def legs(statement: CommissionStatement) -> list[tuple[str, str, str]]:
    return [(x.invoice, x.leg, str(x.amount.quantize(Decimal("0.01")))) for x in statement_lines(statement)]


def test_april_june_and_the_july_clawback(smart_fleet: dict[str, Any], django_capture_on_commit_callbacks: Any) -> None:
    fx = smart_fleet
    april, may = fx["april"].number, fx["may"].number
    pay(fx, fx["april"], "181.09", paris(2026, 4, 20, 10), django_capture_on_commit_callbacks)
    statement = build(fx, APRIL)
    assert statement is not None
    # 60.00 x 5 % = 3.00; 73.39 x 20 % = 14.678 -> 14.68; 17.52 x 10 % = 1.752 -> 1.75
    assert legs(statement) == [(april, "hardware", "3.00"), (april, "service", "14.68"), (april, "usage", "1.75")]
    assert statement.total == Decimal("19.43")
    statement_approve(statement=statement, actor=ACTOR, at=paris(2026, 5, 2, 9))

    pay(fx, fx["may"], "100.00", paris(2026, 6, 2, 10), django_capture_on_commit_callbacks)
    pay(fx, fx["may"], "208.57", paris(2026, 6, 23, 10), django_capture_on_commit_callbacks)
    assert build(fx, MAY) is None  # nothing collected in May
    june = build(fx, JUNE)
    assert june is not None
    # 60.00 x 5 % = 3.00; 92.50 x 20 % = 18.50; 104.64 x 10 % = 10.464 -> 10.46
    assert legs(june) == [(may, "hardware", "3.00"), (may, "service", "18.50"), (may, "usage", "10.46")]
    assert june.total == Decimal("31.96")
    assert [str(x.net_collected.quantize(Decimal("0.01"))) for x in statement_lines(june)] == [
        "60.00",
        "92.50",
        "104.64",
    ]
    statement_approve(statement=june, actor=ACTOR, at=paris(2026, 7, 2, 9))

    # 25.00 net on the May service line of 75.00, on 5 July: (92.50 - 25.00) x 20 % = 13.50, less
    # the 18.50 taken in June = -5.00. The note (30.00 with VAT) on a paid invoice does not lower
    # the share collected: min(1, 308.57 / (308.57 - 30.00)) = 1.
    service = fx["may"].lines.get(type="service", amount=Decimal("75.00"))
    with time_machine.travel(paris(2026, 7, 5, 11), tick=False), django_capture_on_commit_callbacks(execute=True):
        credit_note_create(
            invoice=fx["may"],
            actor=ACTOR,
            at=paris(2026, 7, 5, 11),
            lines=[{"line": service.pk, "amount": "25.00"}],
            reason="Service outage",
        )
    july = build(fx, JULY)
    assert july is not None
    assert legs(july) == [(may, "service", "-5.00")]
    assert july.total == Decimal("-5.00")
    [line] = statement_lines(july)
    assert line.net_collected == Decimal("-25.00")


def test_partial_payment_by_the_end_of_june(
    smart_fleet: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    fx = smart_fleet
    may = fx["may"].number
    pay(fx, fx["april"], "181.09", paris(2026, 4, 20, 10), django_capture_on_commit_callbacks)
    pay(fx, fx["may"], "100.00", paris(2026, 6, 2, 10), django_capture_on_commit_callbacks)
    build(fx, APRIL)
    june = build(fx, JUNE)
    assert june is not None
    # 3.00 x 100 / 308.57 = 0.972 -> 0.97; 18.50 x 100 / 308.57 = 5.995 -> 6.00;
    # 10.464 x 100 / 308.57 = 3.391 -> 3.39
    assert legs(june) == [(may, "hardware", "0.97"), (may, "service", "6.00"), (may, "usage", "3.39")]
    assert june.total == Decimal("10.36")

    pay(fx, fx["may"], "208.57", paris(2026, 7, 10, 10), django_capture_on_commit_callbacks)
    july = build(fx, JULY)
    assert july is not None
    # 3.00 - 0.97 = 2.03; 18.50 - 6.00 = 12.50; 10.46 - 3.39 = 7.07
    assert legs(july) == [(may, "hardware", "2.03"), (may, "service", "12.50"), (may, "usage", "7.07")]
    assert july.total == Decimal("21.60")
    assert june.total + july.total == Decimal("31.96")
