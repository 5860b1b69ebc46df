"""Bulk actions of the invoices list (/app/billing/invoices/bulk/): finalize and send the selected
drafts with gapless numbers, the confirmation's count and total, partial failure reported with links,
a second submit finalizing nothing twice, "every document matching the filter", e-mailing finalized
documents again, roles and tenant isolation.

Every customer of ``monthly_fee_customers`` has a 1 April draft of 2 x 10.00 = 20.00 + 20 % VAT
4.00 = 24.00 EUR."""

import uuid
from typing import Any

import pytest
from django.test import Client

from backoffice.tests.test_invoicing_pages import (
    ACTOR,
    RUN_AT,
    StaffMaker,
    follow,
    logged_in,
    run_bill_run,
    text,
    the_invoice,
)
from customers.tests.factories import with_address
from invoicing.models import Invoice
from invoicing.services import invoice_finalize, invoices_drafts_finalize
from invoicing.tests.billing_api import eager_celery
from subscriptions.tests.factories import monthly_fee_customers
from tenancy.models import AuditLogEntry, Role, Tenant

pytestmark = pytest.mark.django_db
__all__ = ["eager_celery"]  # a fixture of the billing API tests, used here too

BULK = "/app/billing/invoices/bulk/"


def drafts_of(tenant: Tenant, *customers: str) -> list[Invoice]:
    return [the_invoice(tenant, c) for c in customers]


def numbers(tenant: Tenant) -> dict[str, str]:
    return dict(Invoice.objects.filter(tenant=tenant).values_list("customer__external_id", "number"))


def without_address(invoice: Invoice) -> None:
    customer = invoice.customer
    customer.address_line1 = ""
    customer.save(update_fields=["address_line1"])


def test_bulk_finalize_numbers_the_drafts_without_a_gap_and_reports_the_one_that_failed(
    client: Client, tenant: Tenant, make_staff: StaffMaker
) -> None:
    # given: five drafts of 24.00; c0's is finalized alone first (INV-2026-000001); c2 has no address
    monthly_fee_customers(tenant, 5)
    run_bill_run(tenant)
    invoice_finalize(invoice=the_invoice(tenant, "c0"), actor=ACTOR, at=RUN_AT)
    without_address(the_invoice(tenant, "c2"))
    selected = [str(i.pk) for i in drafts_of(tenant, "c1", "c2", "c3", "c4")]
    logged_in(client, make_staff(tenant, role=Role.FINANCE_ADMIN, email="admin@acme.test"))

    # when: the four are selected on the list
    confirm = client.post(BULK, {"action": "finalize", "invoice": selected, "status": "draft"})

    # then: the confirmation names the count and the total (4 x 24.00 = 96.00) and finalizes nothing yet
    assert confirm.status_code == 200
    page = text(confirm)
    assert "Finalize and send 4 invoices totalling €96.00?" in page
    assert "EUR 4 €80.00 €16.00 €96.00" in page  # net 4 x 20.00, tax 4 x 4.00
    assert Invoice.objects.filter(tenant=tenant, status="draft").count() == 4
    assert 'href="/app/billing/invoices/?status=draft"' in confirm.content.decode()  # cancel keeps the filter

    # when: confirmed
    response = client.post(BULK, {"action": "finalize", "ids": " ".join(selected), "confirm": "yes"})

    # then: c1, c3, c4 take 000002..000004 in a row, c2 stays a draft without a number
    assert response.status_code == 302
    assert sorted(n for c, n in numbers(tenant).items() if c != "c0") == [
        "",
        "INV-2026-000002",
        "INV-2026-000003",
        "INV-2026-000004",
    ]
    assert numbers(tenant)["c2"] == ""
    page = follow(client, response)
    assert "3 finalized and sent, 1 not finalized" in page
    assert "Customer 2, draft of 1 Apr 2026 : missing the customer's postal address" in page
    assert (
        f'href="/app/billing/invoices/{the_invoice(tenant, "c2").pk}/"'
        in client.get(response["Location"]).content.decode()
    )
    assert AuditLogEntry.objects.filter(tenant=tenant, action="invoice.finalized").count() == 4

    # when: the same confirmation is submitted again (a double click, a reload)
    again = follow(client, client.post(BULK, {"action": "finalize", "ids": " ".join(selected), "confirm": "yes"}))

    # then: nothing is finalized twice and no number is taken
    assert "0 finalized and sent, 1 not finalized" in again
    assert "3 selected invoices were no longer drafts and were left as they are." in again
    assert AuditLogEntry.objects.filter(tenant=tenant, action="invoice.finalized").count() == 4

    # when: c2's address is given and it is finalized: it takes the next number, 000005 (no gap)
    with_address(the_invoice(tenant, "c2").customer)
    client.post(BULK, {"action": "finalize", "ids": selected[1], "confirm": "yes"})
    assert numbers(tenant)["c2"] == "INV-2026-000005"


def test_every_draft_matching_the_filter(client: Client, tenant: Tenant, make_staff: StaffMaker) -> None:
    # given: three drafts, one finalized; the list filtered on drafts
    monthly_fee_customers(tenant, 4)
    run_bill_run(tenant)
    invoice_finalize(invoice=the_invoice(tenant, "c3"), actor=ACTOR, at=RUN_AT)
    logged_in(client, make_staff(tenant))

    listing = text(client.get("/app/billing/invoices/?status=draft"))
    assert "Every document matching the filter, not only the ticked rows (3 drafts, 0 finalized)" in listing

    # when: "every document matching the filter" with nothing ticked
    confirm = client.post(BULK, {"action": "finalize", "scope": "filter", "status": "draft"})

    # then: the three drafts, 3 x 24.00 = 72.00
    assert "Finalize and send 3 invoices totalling €72.00?" in text(confirm)
    ids = confirm.context["ids"]
    follow(client, client.post(BULK, {"action": "finalize", "ids": ids, "confirm": "yes"}))
    assert sorted(numbers(tenant).values()) == [
        "INV-2026-000001",
        "INV-2026-000002",
        "INV-2026-000003",
        "INV-2026-000004",
    ]


def test_nothing_to_finalize_or_no_action_is_a_message(client: Client, tenant: Tenant, make_staff: StaffMaker) -> None:
    monthly_fee_customers(tenant)
    run_bill_run(tenant)
    final = invoice_finalize(invoice=the_invoice(tenant), actor=ACTOR, at=RUN_AT)
    logged_in(client, make_staff(tenant))

    page = follow(client, client.post(BULK, {"action": "finalize", "invoice": [str(final.pk)]}))
    assert "None of the selected invoices is a draft: there is nothing to finalize." in page
    page = follow(client, client.post(BULK, {"invoice": [str(final.pk)]}))
    assert "Choose an action for the selected invoices." in page
    page = follow(client, client.post(BULK, {"action": "finalize", "invoice": ["not-a-uuid"]}))
    assert "nothing to finalize" in page
    # more than 1,000 at once is refused before anything is read (a bill run finalizes its own)
    many = " ".join(str(uuid.uuid4()) for _ in range(1001))
    page = follow(client, client.post(BULK, {"action": "finalize", "ids": many, "confirm": "yes"}))
    assert "Select at most 1000 invoices at once: narrow the filter, by issue date for instance." in page


@pytest.mark.usefixtures("eager_celery")
def test_e_mail_finalized_documents_again(
    client: Client,
    tenant: Tenant,
    make_staff: StaffMaker,
    mailoutbox: list[Any],
    django_capture_on_commit_callbacks: Any,
) -> None:
    # given: one finalized invoice (24.00) and one draft, both selected
    monthly_fee_customers(tenant, 2)
    run_bill_run(tenant)
    final = invoice_finalize(invoice=the_invoice(tenant, "c0"), actor=ACTOR, at=RUN_AT)
    draft = the_invoice(tenant, "c1")
    logged_in(client, make_staff(tenant))

    confirm = client.post(BULK, {"action": "send", "invoice": [str(final.pk), str(draft.pk)]})
    page = text(confirm)
    assert "E-mail 1 document totalling €24.00 to its customer again?" in page
    assert "1 selected document is left out: it is not in a state this action takes." in page

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(BULK, {"action": "send", "ids": confirm.context["ids"], "confirm": "yes"})

    assert "1 document queued to be e-mailed again" in follow(client, response)
    assert [m.to for m in mailoutbox] == [["c0@x.test"]]
    assert mailoutbox[0].attachments[0][0] == "INV-2026-000001.pdf"
    assert AuditLogEntry.objects.filter(tenant=tenant, action="invoice.sent_again").count() == 1


def test_only_writers_act_in_bulk(client: Client, tenant: Tenant, make_staff: StaffMaker) -> None:
    monthly_fee_customers(tenant)
    run_bill_run(tenant)
    draft = the_invoice(tenant)
    for role, email in ((Role.FINANCE_VIEWER, "viewer@acme.test"), (Role.SUPPORT_AGENT, "agent@acme.test")):
        logged_in(client, make_staff(tenant, role=role, email=email))
        listing = client.get("/app/billing/invoices/").content.decode()
        assert "/bulk/" not in listing
        assert 'name="invoice"' not in listing
        assert client.post(BULK, {"action": "finalize", "ids": str(draft.pk), "confirm": "yes"}).status_code == 403
        assert client.get(BULK + "result/").status_code == 403
    assert Invoice.objects.get(pk=draft.pk).status == "draft"
    assert client.get(BULK).status_code == 403  # the role is checked first, then the method


def test_another_tenants_invoice_ids_are_ignored(
    client: Client, tenant: Tenant, other_tenant: Tenant, make_staff: StaffMaker
) -> None:
    monthly_fee_customers(tenant)
    monthly_fee_customers(other_tenant)
    run_bill_run(tenant)
    run_bill_run(other_tenant)
    mine, theirs = the_invoice(tenant), the_invoice(other_tenant)
    logged_in(client, make_staff(tenant))

    confirm = client.post(BULK, {"action": "finalize", "invoice": [str(mine.pk), str(theirs.pk)]})
    assert "Finalize and send 1 invoice totalling €24.00?" in text(confirm)
    assert str(theirs.pk) not in confirm.content.decode()
    page = follow(client, client.post(BULK, {"action": "finalize", "ids": f"{mine.pk} {theirs.pk}", "confirm": "yes"}))
    assert "1 invoice finalized and sent" in page
    assert Invoice.objects.get(pk=theirs.pk).status == "draft"
    assert (mine.tenant_id, Invoice.objects.get(pk=mine.pk).number) == (tenant.pk, "INV-2026-000001")
    # the other tenant's own numbering has not moved
    assert invoice_finalize(invoice=theirs, actor=ACTOR, at=RUN_AT).number == "INV-2026-000001"


def test_the_service_finalizes_by_chunks_in_issue_date_order(tenant: Tenant) -> None:
    # given: three drafts; chunks of 2 drafts (2 transactions)
    monthly_fee_customers(tenant, 3)
    run_bill_run(tenant)
    drafts = drafts_of(tenant, "c0", "c1", "c2")

    result = invoices_drafts_finalize(
        tenant=tenant, invoice_ids=[d.pk for d in drafts], actor=ACTOR, at=RUN_AT, chunk=2
    )

    # then: 000001..000003 in (issue date, created, id) order
    ordered = sorted(drafts, key=lambda d: (d.issue_date, d.created_at, d.pk))
    assert [i.number for i in result.finalized] == ["INV-2026-000001", "INV-2026-000002", "INV-2026-000003"]
    assert [i.pk for i in result.finalized] == [d.pk for d in ordered]
    assert (result.incomplete, result.skipped) == ([], 0)


def test_bulk_pages_in_french(client: Client, tenant: Tenant, make_staff: StaffMaker) -> None:
    monthly_fee_customers(tenant, 2)
    run_bill_run(tenant)
    logged_in(client, make_staff(tenant))
    ids = [str(i.pk) for i in drafts_of(tenant, "c0", "c1")]
    confirm = client.post(BULK, {"action": "finalize", "invoice": ids}, HTTP_ACCEPT_LANGUAGE="fr")
    assert "Finaliser et envoyer 2 factures pour un total de 48,00 € ?" in text(confirm).replace("\xa0", " ")
    response = client.post(
        BULK, {"action": "finalize", "ids": " ".join(ids), "confirm": "yes"}, HTTP_ACCEPT_LANGUAGE="fr"
    )
    result = text(client.get(response["Location"], HTTP_ACCEPT_LANGUAGE="fr"))
    assert "2 factures finalisées et envoyées" in result


# --- bill-run totals ----------------------------------------------------------------------------


def test_bill_run_totals_on_the_list_and_the_detail(
    client: Client, tenant: Tenant, make_staff: StaffMaker, django_assert_max_num_queries: Any
) -> None:
    # given: c0 and c2 in France are invoiced 24.00 each; c1 in Germany fails (no tax rate there)
    monthly_fee_customers(tenant, 3, countries=("FR", "DE", "FR"))
    run = run_bill_run(tenant)
    logged_in(client, make_staff(tenant))

    # then: 2 invoices, net 2 x 20.00 = 40.00, tax 2 x 4.00 = 8.00, total 48.00; 1 failure
    detail = text(client.get(f"/app/billing/runs/{run.pk}/"))
    assert "Failed 1" in detail
    assert "Currency Invoices Drafts Net Tax Total EUR 2 2 €40.00 €8.00 €48.00" in detail
    assert "1 Apr 2026 Completed with errors 2 / 3 1 2 €48.00" in text(client.get("/app/billing/runs/"))

    # a second run for the same date finds the two invoices: the same totals, never counted twice
    second = run_bill_run(tenant)
    assert "EUR 2 2 €40.00 €8.00 €48.00" in text(client.get(f"/app/billing/runs/{second.pk}/"))

    # once c0's is finalized, it is no longer a draft; a voided invoice is left out
    invoice_finalize(invoice=the_invoice(tenant, "c0"), actor=ACTOR, at=RUN_AT)
    assert "EUR 2 1 €40.00 €8.00 €48.00" in text(client.get(f"/app/billing/runs/{run.pk}/"))
    draft = the_invoice(tenant, "c2")
    draft.status = "void"
    draft.save(update_fields=["status"])
    assert "EUR 1 0 €20.00 €4.00 €24.00" in text(client.get(f"/app/billing/runs/{run.pk}/"))

    # the list adds the totals up in two queries whatever the number of runs
    with django_assert_max_num_queries(30) as two_runs:
        client.get("/app/billing/runs/")
    for _ in range(3):
        run_bill_run(tenant)
    with django_assert_max_num_queries(len(two_runs.captured_queries)):
        assert client.get("/app/billing/runs/").status_code == 200


def test_a_chunk_the_database_refuses_is_rolled_back_and_reported(tenant: Tenant, monkeypatch: Any) -> None:
    # given: three drafts, chunks of 1; the second chunk's finalization hits a deadlock
    from django.db import OperationalError

    from invoicing.services import lifecycle

    monthly_fee_customers(tenant, 3)
    run_bill_run(tenant)
    drafts = sorted(drafts_of(tenant, "c0", "c1", "c2"), key=lambda d: (d.issue_date, d.created_at, d.pk))
    real, calls = lifecycle.invoices_finalize_locked, []

    def deadlocks_once(invoices: Any, **kwargs: Any) -> None:
        calls.append(1)
        real(invoices, **kwargs)  # numbers taken, then refused: the rollback must give them back
        if len(calls) == 2:
            raise OperationalError("deadlock detected")

    monkeypatch.setattr(lifecycle, "invoices_finalize_locked", deadlocks_once)

    result = invoices_drafts_finalize(
        tenant=tenant, invoice_ids=[d.pk for d in drafts], actor=ACTOR, at=RUN_AT, chunk=1
    )

    # then: the first and third are 000001 and 000002 (the second's number was given back), the
    # second is still a draft without a number, reported as interrupted, not skipped
    assert [i.number for i in result.finalized] == ["INV-2026-000001", "INV-2026-000002"]
    assert [i.pk for i in result.finalized] == [drafts[0].pk, drafts[2].pk]
    assert result.interrupted == [drafts[1].pk]
    assert result.skipped == 0
    drafts[1].refresh_from_db()
    assert (drafts[1].status, drafts[1].number) == ("draft", "")
