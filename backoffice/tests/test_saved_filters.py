"""Saved filters of the back-office lists: save the current filter under a name, list them on the
list's page, apply one (validated again by the list's form), delete one; each user's own, per tenant."""

import pytest
from django.test import Client

from backoffice.tests.test_invoicing_pages import StaffMaker, follow, html, logged_in, run_bill_run, text
from subscriptions.tests.factories import monthly_fee_customers
from tenancy.models import Role, SavedFilter, Tenant

pytestmark = pytest.mark.django_db

SAVE = "/app/saved-filters/"


def test_save_list_apply_and_delete_an_invoice_filter(client: Client, tenant: Tenant, make_staff: StaffMaker) -> None:
    logged_in(client, make_staff(tenant))

    # when: the drafts of April are saved (the page number and unknown parameters are dropped)
    query = "?status=draft&date_from=2026-04-01&date_to=2026-04-30&page=3&evil=1"
    response = client.post(SAVE, {"list": "invoices", "name": "  April   drafts ", "query": query})

    # then: back on the list with that filter, the filter in the menu
    assert response["Location"] == "/app/billing/invoices/?status=draft&date_from=2026-04-01&date_to=2026-04-30"
    page = follow(client, response)
    assert "Filter “April drafts” saved." in page
    assert "Saved filters (1) April drafts" in page
    saved = SavedFilter.objects.get(tenant=tenant)
    assert (saved.list, saved.name, saved.query) == (
        "invoices",
        "April drafts",
        "status=draft&date_from=2026-04-01&date_to=2026-04-30",
    )
    assert f'href="/app/saved-filters/{saved.pk}/"' in html(client.get("/app/billing/invoices/"))

    # saving under the same name replaces it
    client.post(SAVE, {"list": "invoices", "name": "April drafts", "query": "status=finalized"})
    assert list(SavedFilter.objects.values_list("name", "query")) == [("April drafts", "status=finalized")]

    # applying it opens the list filtered
    applied = client.get(f"/app/saved-filters/{saved.pk}/")
    assert applied["Location"] == "/app/billing/invoices/?status=finalized"

    # deleting it
    page = follow(client, client.post(f"/app/saved-filters/{saved.pk}/delete/", {"query": "status=finalized"}))
    assert "Saved filter “April drafts” deleted." in page
    assert not SavedFilter.objects.exists()
    assert client.get(f"/app/saved-filters/{saved.pk}/").status_code == 404


def test_an_invalid_filter_is_not_saved_and_one_no_longer_valid_is_not_applied(
    client: Client, tenant: Tenant, make_staff: StaffMaker
) -> None:
    logged_in(client, make_staff(tenant))

    page = follow(client, client.post(SAVE, {"list": "invoices", "name": "Bad", "query": "status=lost"}))
    assert "Not saved: Status: Select a valid choice. lost is not one of the available choices." in page
    page = follow(client, client.post(SAVE, {"list": "invoices", "name": "Nothing", "query": "page=2"}))
    assert "Choose a filter first: there is nothing to save." in page
    page = follow(client, client.post(SAVE, {"list": "invoices", "name": " ", "query": "status=draft"}))
    assert "Not saved: give the filter a name." in page
    assert not SavedFilter.objects.exists()
    assert client.post(SAVE, {"list": "nothing", "name": "x", "query": "q=1"}).status_code == 404

    # a filter saved on a bill run that is gone since
    monthly_fee_customers(tenant)
    run = run_bill_run(tenant)
    client.post(SAVE, {"list": "invoices", "name": "The run", "query": f"run={run.pk}"})
    saved = SavedFilter.objects.get(name="The run")
    run.invoices.all().delete()
    run.delete()
    response = client.get(f"/app/saved-filters/{saved.pk}/")
    assert response["Location"] == "/app/billing/invoices/"
    assert "The saved filter “The run” no longer applies: Bill run: it no longer exists." in follow(client, response)


@pytest.mark.parametrize(
    ("list_name", "path", "query"),
    [
        ("subscriptions", "/app/subscriptions/", "status=active&q=s1"),
        ("customers", "/app/customers/", "q=Customer"),
        ("payments", "/app/payments/", "method=bank_transfer&date_from=2026-04-01"),
    ],
)
def test_the_other_lists_save_their_filters(
    client: Client, tenant: Tenant, make_staff: StaffMaker, list_name: str, path: str, query: str
) -> None:
    logged_in(client, make_staff(tenant))
    response = client.post(SAVE, {"list": list_name, "name": "Mine", "query": query})
    assert response["Location"] == f"{path}?{query}"
    page = follow(client, response)
    assert "Saved filters (1) Mine" in page
    saved = SavedFilter.objects.get(list=list_name)
    assert client.get(f"/app/saved-filters/{saved.pk}/")["Location"] == f"{path}?{query}"
    # the list's own form refuses a value it does not take
    bad_query = query.split("=")[0] + "=" + "x" * 300
    bad = follow(client, client.post(SAVE, {"list": list_name, "name": "Bad", "query": bad_query}))
    assert "Not saved:" in bad


def test_saved_filters_are_each_users_own_in_each_tenant(
    client: Client, tenant: Tenant, other_tenant: Tenant, make_staff: StaffMaker
) -> None:
    # given: an owner's filter in Acme
    owner = make_staff(tenant, email="owner@acme.test")
    logged_in(client, owner)
    client.post(SAVE, {"list": "invoices", "name": "Mine", "query": "status=draft"})
    mine = SavedFilter.objects.get()

    # then: a colleague in the same tenant neither sees, applies nor deletes it
    colleague = Client()
    logged_in(colleague, make_staff(tenant, role=Role.FINANCE_VIEWER, email="viewer@acme.test"))
    assert "Mine" not in text(colleague.get("/app/billing/invoices/"))
    assert colleague.get(f"/app/saved-filters/{mine.pk}/").status_code == 404
    assert colleague.post(f"/app/saved-filters/{mine.pk}/delete/").status_code == 404
    # and the owner, in another tenant, does not see it there
    make_staff(other_tenant, email="owner@acme.test")
    assert "Switched to Globex Devices." in follow(
        client, client.post("/app/tenant/switch/", {"tenant_id": str(other_tenant.pk)})
    )
    assert "Saved filters (" not in text(client.get("/app/billing/invoices/"))
    assert client.get(f"/app/saved-filters/{mine.pk}/").status_code == 404
    assert SavedFilter.objects.filter(pk=mine.pk).exists()


def test_a_support_agent_cannot_save_a_payments_filter(client: Client, tenant: Tenant, make_staff: StaffMaker) -> None:
    logged_in(client, make_staff(tenant, role=Role.SUPPORT_AGENT, email="agent@acme.test"))
    assert client.post(SAVE, {"list": "payments", "name": "x", "query": "method=cash"}).status_code == 404
    assert client.post(SAVE, {"list": "customers", "name": "x", "query": "q=a"}).status_code == 302


def test_saved_filters_in_french(client: Client, tenant: Tenant, make_staff: StaffMaker) -> None:
    logged_in(client, make_staff(tenant))
    body = {"list": "invoices", "name": "Brouillons", "query": "status=draft"}
    response = client.post(SAVE, body, HTTP_ACCEPT_LANGUAGE="fr")
    page = text(client.get(response["Location"], HTTP_ACCEPT_LANGUAGE="fr"))
    assert "Filtre « Brouillons » enregistré." in page.replace("\xa0", " ")
    assert "Filtres enregistrés (1) Brouillons" in page
