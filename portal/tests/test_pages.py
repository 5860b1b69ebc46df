"""The portal's read pages through Django's test client, for Transports Dupont (portal/tests/
scenario.py): April 2026 is its open period, data billed at 0.02 EUR beyond 100 MB included per
device, devices P (probe, EU) and T (tracker, US). Each page shows the customer's own figures, in
French (the customer's language) unless the user chose English."""

import html as html_lib
import json
import re
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.test import Client
from rest_framework.test import APIClient

from billing_platform.formatting import money_text
from customers.models import Customer, PortalRole
from invoicing.models import Invoice
from invoicing.services.credit_notes import credit_note_create
from invoicing.tests.factories import ACTOR, issue, line
from portal.tests.conftest import PortalClientMaker
from portal.tests.scenario import NOW, portal_customer, send_usage
from tenancy.models import Tenant
from usage.partitions import forget_known_partitions

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_partitions() -> Iterator[None]:
    # Test databases are rolled back between tests: partitions created in one are gone in the next.
    forget_known_partitions()
    yield
    forget_known_partitions()


@pytest.fixture
def customer(tenant: Tenant, api: APIClient) -> Customer:
    customer = portal_customer(tenant)
    send_usage(api)
    return customer


@pytest.fixture
def march_invoice(customer: Customer) -> Invoice:
    """The invoice of 1 April: 120.00 of data, 20 % VAT 24.00, total 144.00, due 30 days later."""
    return issue(customer, [line("usage", "data", "120.00")], on=date(2026, 4, 1))


def text(response: Any) -> str:
    """The page's visible text, tags removed, entities decoded, whitespace collapsed."""
    body = response.content.decode()
    body = re.sub(r"<script\b[^>]*>.*?</script>", " ", body, flags=re.S)
    return re.sub(r"\s+", " ", html_lib.unescape(re.sub(r"<[^>]+>", " ", body))).strip()


def figure(response: Any, name: str) -> str:
    found = re.search(r'data-figure="%s"[^>]*>(.*?)<' % name, response.content.decode(), re.S)
    assert found, "no figure %s" % name
    return html_lib.unescape(found.group(1)).strip()


def chart(response: Any) -> dict[str, Any]:
    found = re.search(
        r'<script id="portal-chart-data" type="application/json">(.*?)</script>', response.content.decode(), re.S
    )
    assert found, "no chart data"
    data: dict[str, Any] = json.loads(found.group(1))
    return data


def get(client: Client, path: str) -> Any:
    with time_machine.travel(NOW, tick=False):
        return client.get(path)


def csv_text(response: Any) -> str:
    return b"".join(response.streaming_content).decode()


# --- Overview ----------------------------------------------------------------------------------


def test_overview_shows_what_is_due_and_the_projected_total_of_current_usage(
    customer: Customer, march_invoice: Invoice, api: APIClient, portal_client: PortalClientMaker
) -> None:
    # given: the 1 April invoice (144.00 due on 1 May) and April's usage so far
    client = portal_client(customer)
    # when
    response = get(client, "/portal/overview/")
    with time_machine.travel(NOW, tick=False):
        usage = api.get("/api/v1/customers/dupont/current_usage").json()
    # then: the projected total is the API's for the same instant: P 200 MB + T 30 MB = 230 MB,
    # 2 devices x 100 MB included = 200, 30 MB x 0.02 = 0.60, VAT 20 % 0.12, total 0.72
    assert response.status_code == 200
    assert usage["projected"]["total"] == "0.72"
    assert figure(response, "projected") == money_text(
        Decimal(usage["projected"]["total"]), currency="EUR", language="fr"
    )
    assert figure(response, "projected") == "0,72\xa0€"
    # 120.00 + 24.00 VAT, not yet due (1 April + 30 days)
    assert march_invoice.number
    assert figure(response, "due") == "144,00\xa0€"
    assert "1 mai 2026 (%s)" % march_invoice.number in text(response)
    assert figure(response, "devices") == "2"
    # the chart: used so far beside the allowance, and the same figures in the table
    assert chart(response) == {
        "labels": ["Data (MB)"],
        "datasets": [{"label": "Utilisé à ce jour", "data": [230]}, {"label": "Inclus", "data": [200]}],
    }
    assert "Data (MB) 115 % de l'inclus 1–30 avr. 2026 230 200 30 0,60 €" in text(response)
    assert 'src="/static/portal-charts.js"' in response.content.decode()


def test_overview_in_english_for_a_user_who_chose_it(
    customer: Customer, march_invoice: Invoice, portal_client: PortalClientMaker, make_portal_user: Any
) -> None:
    client = portal_client(customer, user=make_portal_user(customer, language="en"))
    response = get(client, "/portal/overview/")
    assert figure(response, "projected") == "€0.72"
    assert figure(response, "due") == "€144.00"
    assert "Next due date: 1 May 2026" in text(response)


def test_overview_of_a_customer_with_nothing_due(customer: Customer, portal_client: PortalClientMaker) -> None:
    response = get(portal_client(customer), "/portal/overview/")
    assert figure(response, "due") == "0,00\xa0€"
    assert "Rien à payer." in text(response)


# --- Devices -----------------------------------------------------------------------------------


def test_devices_show_status_type_region_and_usage_this_period(
    customer: Customer, portal_client: PortalClientMaker, django_assert_max_num_queries: Any
) -> None:
    client = portal_client(customer)
    response = get(client, "/portal/devices/")
    page = text(response)
    assert response.status_code == 200
    assert "Consommation de la période ouverte, 1–30 avr. 2026." in page
    # P: 150 + 50 MB in April; T: 30 MB in April (its 999 MB of 31 March belong to March)
    assert "P P Actif probe EU — 200" in page
    assert "T P Actif tracker US — 30" in page


def test_devices_usage_is_read_once_for_the_page_not_per_device(
    tenant: Tenant, customer: Customer, portal_client: PortalClientMaker
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = portal_client(customer)
    with CaptureQueriesContext(connection) as two:
        get(client, "/portal/devices/")
    # given: 10 more devices on the subscription
    from subscriptions.models import Device, Subscription

    subscription = Subscription.objects.get(tenant=tenant, external_id="s")
    Device.objects.bulk_create(
        [
            Device(tenant=tenant, subscription=subscription, device_id="X%d" % n, added_at=subscription.starts_at)
            for n in range(10)
        ]
    )
    with CaptureQueriesContext(connection) as twelve:
        response = get(client, "/portal/devices/")
    assert "X9" in text(response)
    assert len(twelve.captured_queries) == len(two.captured_queries)


# --- Usage -------------------------------------------------------------------------------------


def test_usage_defaults_to_the_open_period_split_by_device_type(
    customer: Customer, portal_client: PortalClientMaker
) -> None:
    response = get(portal_client(customer), "/portal/usage/?split=device_type")
    page = text(response)
    assert response.status_code == 200
    assert "Du 1 avr. 2026 au 30 avr. 2026, jours du fuseau Europe/Paris." in page
    # 10 April: P 150 (probe), T 30 (tracker); 11 April: P 50
    assert "10 avr. 2026 150 30 180" in page
    assert "11 avr. 2026 50 — 50" in page
    assert "Total 200 30 230" in page
    data = chart(response)
    assert len(data["labels"]) == 30
    assert data["labels"][9] == "2026-04-10"
    assert [d["label"] for d in data["datasets"]] == ["probe", "tracker"]
    assert data["datasets"][0]["data"][9:11] == [150, 50]
    assert data["datasets"][1]["data"][9:11] == [30, None]
    assert data["stacked"] is True


def test_usage_split_by_time_band(customer: Customer, portal_client: PortalClientMaker) -> None:
    response = get(portal_client(customer), "/portal/usage/?split=time_band")
    # 10 April: 150 + 30 MB at 10:00 and 11:00 (peak); 11 April: 50 MB at 22:00 (off-peak)
    assert "Jour Heures creuses peak Total" in text(response)
    assert "10 avr. 2026 — 180 180" in text(response)
    assert "11 avr. 2026 50 — 50" in text(response)
    assert "Total 50 180 230" in text(response)


def test_usage_csv_has_the_rows_of_the_page(customer: Customer, portal_client: PortalClientMaker) -> None:
    client = portal_client(customer)
    # split by time band: 10 April 10:00 and 11:00 are peak (150 + 30), 11 April 22:00 off-peak (50)
    response = get(client, "/portal/usage.csv?meter=mb&split=time_band&start=2026-04-01&end=2026-04-30")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="usage-mb-2026-04-01-2026-04-30.csv"'
    assert csv_text(response) == (
        "day,meter,time_band,quantity\r\n2026-04-10,mb,peak,180\r\n2026-04-11,mb,off_peak,50\r\n"
    )
    # the whole of March and April, not split: the 999 MB of 31 March are T's, in March
    response = get(client, "/portal/usage.csv?start=2026-03-01&end=2026-04-30")
    assert csv_text(response) == (
        "day,meter,quantity\r\n2026-03-31,mb,999\r\n2026-04-10,mb,180\r\n2026-04-11,mb,50\r\n"
    )


def test_usage_refuses_a_bad_range_with_a_form_error(customer: Customer, portal_client: PortalClientMaker) -> None:
    client = portal_client(customer)
    response = get(client, "/portal/usage/?start=2026-04-30&end=2026-04-01")
    assert response.status_code == 200
    assert "Le dernier jour précède le premier." in text(response)
    assert get(client, "/portal/usage/?meter=nope").status_code == 404
    assert get(client, "/portal/usage.csv?start=not-a-day").status_code == 404


# --- Invoices ----------------------------------------------------------------------------------


def test_invoices_list_finalized_documents_and_credit_notes_never_drafts(
    customer: Customer, march_invoice: Invoice, portal_client: PortalClientMaker
) -> None:
    # given: a draft of 2 April, and a credit note of the whole 1 April invoice
    draft = issue(customer, [line("usage", "data", "10.00")], on=date(2026, 4, 2), finalize=False)
    with time_machine.travel(NOW, tick=False):
        note = credit_note_create(invoice=march_invoice, actor=ACTOR, at=NOW, reason="Wrong meter")
    client = portal_client(customer)
    response = get(client, "/portal/invoices/")
    page = text(response)
    assert response.status_code == 200
    assert march_invoice.number in page
    assert "%s avoir de %s" % (note.number, march_invoice.number) in page
    assert str(draft.pk) not in response.content.decode()
    assert get(client, "/portal/invoices/%s/" % draft.pk).status_code == 404
    assert get(client, "/portal/invoices/%s/pdf" % draft.pk).status_code == 404
    # the invoice's page links its credit note, and the note its invoice
    detail = get(client, "/portal/invoices/%s/" % march_invoice.pk)
    assert "/portal/invoices/%s/" % note.pk in detail.content.decode()
    note_page = get(client, "/portal/invoices/%s/" % note.pk)
    assert "/portal/invoices/%s/" % march_invoice.pk in note_page.content.decode()


def test_an_invoice_shows_its_lines_totals_and_documents(
    customer: Customer, march_invoice: Invoice, portal_client: PortalClientMaker
) -> None:
    client = portal_client(customer)
    response = get(client, "/portal/invoices/%s/" % march_invoice.pk)
    page = text(response)
    assert response.status_code == 200
    # one line of 120.00, VAT 20 % of 120.00 = 24.00, total 144.00, all of it due
    assert "HT 120,00 €" in page
    assert "TVA 20 % sur 120,00 € 24,00 € Total TTC 144,00 €" in page
    assert figure(response, "due") == "144,00\xa0€"
    assert "1–30 avr. 2026" in page
    body = response.content.decode()
    assert 'href="/portal/invoices/%s/pdf"' % march_invoice.pk in body
    assert 'href="/portal/invoices/%s/facturx"' % march_invoice.pk in body
    pdf = get(client, "/portal/invoices/%s/pdf" % march_invoice.pk)
    assert pdf.status_code == 200
    assert pdf["Content-Type"] == "application/pdf"
    assert pdf["Content-Disposition"] == 'attachment; filename="%s.pdf"' % march_invoice.number
    assert pdf.content.startswith(b"%PDF")
    # a French seller's EUR invoice has its Factur-X (the API's rule): the same PDF/A-3 document
    facturx = get(client, "/portal/invoices/%s/facturx" % march_invoice.pk)
    assert facturx.status_code == 200
    assert facturx["Content-Disposition"] == 'attachment; filename="%s-facturx.pdf"' % march_invoice.number
    # a question about it opens the support form with this invoice; no payment page exists yet
    assert 'href="/portal/support/?invoice=%s"' % march_invoice.pk in body
    assert "/pay" not in body


def test_another_customers_invoice_and_documents_are_not_found(
    tenant: Tenant, customer: Customer, march_invoice: Invoice, portal_client: PortalClientMaker
) -> None:
    from invoicing.tests.factories import buyer

    other = buyer(tenant, "globex-buyer")
    other_invoice = issue(other, [line("usage", "data", "50.00")], on=date(2026, 4, 1))
    client = portal_client(customer)
    for path in ("/portal/invoices/%s/", "/portal/invoices/%s/pdf", "/portal/invoices/%s/facturx"):
        assert get(client, path % other_invoice.pk).status_code == 404
    assert other_invoice.number not in text(get(client, "/portal/invoices/"))
    # and the other customer's user does not see Dupont's
    other_client = portal_client(other)
    assert get(other_client, "/portal/invoices/%s/" % march_invoice.pk).status_code == 404


# --- Profile -----------------------------------------------------------------------------------


def test_a_viewer_reads_the_profile_and_cannot_change_it(customer: Customer, portal_client: PortalClientMaker) -> None:
    client = portal_client(customer, role=PortalRole.VIEWER)
    response = get(client, "/portal/profile/")
    assert response.status_code == 200
    [email_input] = re.findall(r'<input[^>]*name="email"[^>]*>', response.content.decode())
    assert "disabled" in email_input
    assert "Enregistrer" not in text(response)
    with time_machine.travel(NOW, tick=False):
        refused = client.post("/portal/profile/", {"email": "x@dupont.test", "language": "fr"})
    assert refused.status_code == 403
    customer.refresh_from_db()
    assert customer.email == "compta@dupont.test"


def profile_post(client: Client, **changes: str) -> Any:
    data = {
        "my_language": "",
        "language": "fr",
        "email": "compta@dupont.test",
        "address_line1": "8 avenue des Transporteurs",
        "address_line2": "",
        "postal_code": "94150",
        "city": "Rungis",
        "tax_id": "",
        **changes,
    }
    with time_machine.travel(NOW, tick=False):
        return client.post("/portal/profile/", data)


def test_a_billing_user_changes_the_billing_details_checked_as_the_api_checks_them(
    tenant: Tenant, customer: Customer, portal_client: PortalClientMaker
) -> None:
    from tenancy.models import AuditLogEntry

    client = portal_client(customer, role=PortalRole.BILLING)
    # a VAT number whose check digits are wrong, and a postal code that is not French: nothing saved
    refused = profile_post(client, tax_id="FR40303265046", postal_code="ABC", email="factures@dupont.test")
    assert refused.status_code == 200
    page = text(refused)
    assert "Ce n'est pas un numéro de TVA intracommunautaire valide" in page
    assert "Ce code postal ne correspond pas au pays du compte." in page
    customer.refresh_from_db()
    assert (customer.email, customer.tax_id) == ("compta@dupont.test", "")
    # a valid number (FR key 40 of SIREN 303265045), a new billing e-mail, invoices in English
    saved = profile_post(client, tax_id="FR 40 303265045", email="factures@dupont.test", language="en")
    assert saved.status_code == 302
    customer.refresh_from_db()
    assert (customer.email, customer.tax_id, customer.language) == ("factures@dupont.test", "FR40303265045", "en")
    entry = AuditLogEntry.objects.get(tenant=tenant, action="customer.updated")
    user = client.portal_user  # type: ignore[attr-defined]
    assert (entry.actor_type, entry.actor_id, entry.actor_label) == ("portal_user", str(user.pk), user.email)
    assert entry.after == {"email": "factures@dupont.test", "tax_id": "FR40303265045", "language": "en"}


def test_a_user_chooses_the_portals_language_for_themselves_only(
    tenant: Tenant, customer: Customer, portal_client: PortalClientMaker
) -> None:
    client = portal_client(customer, role=PortalRole.ADMIN)
    saved = profile_post(client, my_language="en")
    assert saved.status_code == 302
    user = client.portal_user  # type: ignore[attr-defined]
    user.refresh_from_db()
    customer.refresh_from_db()
    # the user's language changes; the account's (its invoices') stays French
    assert (user.language, customer.language) == ("en", "fr")
    page = text(get(client, "/portal/profile/"))
    assert "Your profile is saved." in page
    assert "Language of the portal for you" in page


def test_a_portal_link_session_changes_the_account_but_has_no_language_of_its_own(
    tenant: Tenant, customer: Customer
) -> None:
    from django.conf import settings
    from django.utils import timezone

    from customers.portal import portal_session_open
    from tenancy.models import AuditLogEntry

    opened = portal_session_open(customer=customer, user=None, at=timezone.now(), via="link")
    client = Client()
    client.cookies[settings.PORTAL_SESSION_COOKIE] = opened.token
    page = get(client, "/portal/profile/").content.decode()
    assert 'name="my_language"' not in page
    assert profile_post(client, city="Paris", postal_code="75008").status_code == 302
    customer.refresh_from_db()
    assert (customer.city, customer.postal_code) == ("Paris", "75008")
    entry = AuditLogEntry.objects.get(tenant=tenant, action="customer.updated")
    assert (entry.actor_type, entry.actor_label) == ("portal_user", "portal link")
