"""What an invoice allows (``invoice_actions``) and the lifecycle services' checks."""

from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from rest_framework.test import APIClient

from billing_platform.errors import InvalidInput
from catalog.services import plan_create, product_create, tax_rate_set
from customers.services import customer_create
from customers.tests.factories import with_address
from invoicing.errors import InvalidInvoiceTransition
from invoicing.models import Invoice, InvoiceKind, InvoiceStatus
from invoicing.policies import invoice_actions
from invoicing.services import credit_note_create, invoice_finalize, invoice_generate, invoice_void
from subscriptions.services import subscription_create
from tenancy.actors import Actor
from tenancy.models import Tenant

PARIS = ZoneInfo("Europe/Paris")
ACTOR = Actor.system("tests")
RUN_AT = datetime(2026, 4, 1, 6, 0, tzinfo=PARIS)


def finalized_invoice(tenant: Tenant) -> Invoice:
    """The 1 April invoice of one customer in France, finalized: a platform fee of 10.00 per device
    for April, 2 devices, 20.00 + 20 % VAT = 24.00."""
    product_create(tenant=tenant, actor=ACTOR, at=RUN_AT, code="platform", name="Platform", kind="service")
    charge = {"model": "flat", "amount": "10.00"}
    plan = plan_create(
        tenant=tenant,
        actor=ACTOR,
        at=RUN_AT,
        code="p",
        name="P",
        prices=[{"currency": "EUR"}],
        components=[{"product": "platform", "per_device": True, "starts_on": "subscription_start", "charge": charge}],
    )
    tax_rate_set(tenant=tenant, actor=ACTOR, at=RUN_AT, country="FR", tax_category="standard", rate="20")
    customer = customer_create(
        tenant=tenant,
        actor=ACTOR,
        at=RUN_AT,
        external_id="c0",
        name="C0",
        email="c0@x.test",
        country="FR",
        timezone="Europe/Paris",
        billing_day=1,
    )
    with_address(customer)
    subscription_create(
        tenant=tenant,
        actor=ACTOR,
        at=RUN_AT,
        external_id="s0",
        customer=customer,
        plan=plan,
        signed_at=datetime(2026, 3, 1, 9, tzinfo=PARIS),
        starts_on=date(2026, 3, 1),
        devices=[{"device_id": "c0-d0"}, {"device_id": "c0-d1"}],
    )
    invoice = invoice_generate(customer=customer, billing_date=date(2026, 4, 1), at=RUN_AT)
    assert invoice is not None
    return invoice_finalize(invoice=invoice, actor=ACTOR, at=RUN_AT)


@pytest.mark.parametrize(
    ("kind", "status", "actions"),
    [
        (InvoiceKind.INVOICE, InvoiceStatus.DRAFT, {"finalize", "void"}),
        (InvoiceKind.INVOICE, InvoiceStatus.FINALIZED, {"pay", "void", "credit"}),
        (InvoiceKind.INVOICE, InvoiceStatus.PAID, {"credit"}),
        (InvoiceKind.INVOICE, InvoiceStatus.VOID, set()),
        # a credit note is finalized and voided like an invoice, but never credited itself
        (InvoiceKind.CREDIT_NOTE, InvoiceStatus.DRAFT, {"finalize", "void"}),
        (InvoiceKind.CREDIT_NOTE, InvoiceStatus.FINALIZED, {"pay", "void"}),
        (InvoiceKind.CREDIT_NOTE, InvoiceStatus.PAID, set()),
    ],
)
def test_invoice_actions_follow_the_transitions_of_the_status(kind: str, status: str, actions: set[str]) -> None:
    invoice = Invoice(kind=kind, status=status, issue_date=date(2026, 4, 1), currency="EUR")
    assert invoice_actions(invoice) == frozenset(actions)


@pytest.mark.django_db
def test_a_reason_over_300_characters_is_refused_not_cut(tenant: Tenant) -> None:
    # given: a finalized invoice
    invoice = finalized_invoice(tenant)
    # when / then: 301 characters are refused on the reason's field, by both services
    with pytest.raises(InvalidInput, match="The reason has at most 300 characters.") as credit:
        credit_note_create(invoice=invoice, actor=ACTOR, at=RUN_AT, reason="x" * 301)
    with pytest.raises(InvalidInput, match="The reason has at most 300 characters.") as void:
        invoice_void(invoice=invoice, actor=ACTOR, at=RUN_AT, reason="x" * 301)
    assert [(e.field, e.code) for e in credit.value.errors + void.value.errors] == [("reason", "too_long")] * 2
    invoice.refresh_from_db()
    assert (invoice.status, invoice.credit_notes.count()) == ("finalized", 0)
    # and 300 are kept whole
    note = credit_note_create(invoice=invoice, actor=ACTOR, at=RUN_AT, reason="y" * 300)
    assert note.reason == "y" * 300


@pytest.mark.django_db
def test_a_credit_note_cannot_be_credited(tenant: Tenant) -> None:
    invoice = finalized_invoice(tenant)
    note = credit_note_create(invoice=invoice, actor=ACTOR, at=RUN_AT, reason="Devices returned")
    with pytest.raises(InvalidInvoiceTransition, match="Only a finalized or paid invoice can be credited."):
        credit_note_create(invoice=note, actor=ACTOR, at=RUN_AT)


@pytest.mark.django_db
def test_a_credit_note_is_dated_and_numbered_in_the_sellers_time_zone(tenant: Tenant, api: APIClient) -> None:
    # given: a Paris tenant's finalized invoice, INV-2026-000001
    invoice = finalized_invoice(tenant)
    # when: credited at 23:30 UTC on 31 December 2026, 00:30 on 1 January 2027 in Paris
    with time_machine.travel(datetime(2026, 12, 31, 23, 30, tzinfo=UTC), tick=False):
        response = api.post(f"/api/v1/invoices/{invoice.pk}/credit_notes", {"reason": "Returned"}, format="json")
    # then: the note is dated 1 January 2027 and is the first of the 2027 series
    assert response.status_code == 201, response.content
    note = Invoice.objects.get(pk=response.json()["id"])
    assert (note.issue_date, note.number, note.number_year) == (date(2027, 1, 1), "CN-2027-000001", 2027)
    assert response.json()["issue_date"] == "2027-01-01"


@pytest.mark.django_db
def test_a_credit_note_of_a_tenant_west_of_utc_keeps_the_old_year(make_tenant: Any) -> None:
    # given: a Los Angeles tenant's finalized invoice
    tenant = make_tenant("west", timezone="America/Los_Angeles")
    invoice = finalized_invoice(tenant)
    # when: credited at 03:00 UTC on 1 January 2027, 19:00 on 31 December 2026 in Los Angeles
    note = credit_note_create(invoice=invoice, actor=ACTOR, at=datetime(2027, 1, 1, 3, 0, tzinfo=UTC))
    # then: dated 31 December 2026, in the 2026 series
    assert (note.issue_date, note.number) == (date(2026, 12, 31), "CN-2026-000001")
