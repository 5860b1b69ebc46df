"""The settings page (/app/settings/) through Django's test client: the seller identity, invoicing
and usage settings and the device-cloud secrets; who may read and write, and tenant isolation."""

import json
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from django.test import Client
from standardwebhooks import Webhook

from invoicing.models import InvoicingSettings
from subscriptions.errors import WebhookSignatureInvalid
from subscriptions.webhooks import verify_signature
from tenancy.keys import generate_webhook_secret, webhook_secret_fingerprint
from tenancy.models import AuditLogEntry, Role, Tenant
from usage.models import UsageSettings

pytestmark = pytest.mark.django_db

StaffMaker = Callable[..., Any]
URL = "/app/settings/"
SELLER_FORM = {
    "legal_name": "Smart Fleet Telematics SAS",
    "vat_number": "FR 74 852379890",
    "legal_registration_scheme": "0002",
    "legal_registration_id": "852 379 890",
    "address_line1": "12 rue de la Boétie",
    "address_line2": "",
    "postal_code": "75008",
    "city": "Paris",
    "country": "fr",
    "billing_email": "facturation@smartfleet.test",
}
PAYMENT_FORM = {
    "iban": "FR14 2004 1010 0505 0001 3M02 606",
    "bic": "BNPAFRPPXXX",
    "sepa_creditor_id": "FR72ZZZ123456",
    "payment_terms_days": "45",
    "late_payment_penalty": "",
    "recovery_indemnity": "40.00",
    "early_payment_discount": "Escompte de 2 % pour paiement sous 10 jours",
}


def html(response: Any) -> str:
    return response.content.decode()


def text(response: Any) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html(response))).replace("&#x27;", "'")


@pytest.fixture
def tenant(make_tenant: Callable[..., Tenant]) -> Tenant:
    """A tenant that has not filled in its settings page yet."""
    return make_tenant("acme", name="Acme Telematics", seller=False)


@pytest.fixture
def secret(tenant: Tenant) -> str:
    value = generate_webhook_secret()
    tenant.device_cloud_secrets = [value]
    tenant.save()
    return value


def client_for(
    tenant: Tenant, make_staff: StaffMaker, role: str = Role.OWNER, email: str = "staff@acme.test"
) -> Client:
    client = Client()
    client.force_login(make_staff(tenant, role, email))
    return client


def test_owner_sees_the_page_linked_from_the_navigation(tenant: Tenant, make_staff: StaffMaker, secret: str) -> None:
    client = client_for(tenant, make_staff)
    home = client.get("/app/")
    assert f'href="{URL}"' in html(home)
    response = client.get(URL)
    assert response.status_code == 200
    page = text(response)
    for expected in ("Seller identity", "Invoicing", "Usage ingestion", "Device-cloud webhook secrets"):
        assert expected in page
    # the defaults of settings never saved, and the secret by its fingerprint only
    assert 'name="invoice_prefix" value="INV"' in html(response)
    assert 'name="max_event_age_days" value="62"' in html(response)
    assert webhook_secret_fingerprint(secret) in page
    assert secret not in html(response)
    assert "No VAT number yet" in page


def test_owner_updates_the_seller_identity(tenant: Tenant, make_staff: StaffMaker) -> None:
    client = client_for(tenant, make_staff)
    response = client.post("/app/settings/seller/", SELLER_FORM)
    assert response.status_code == 302
    page = client.get(response["Location"])
    assert "Seller identity saved." in text(page)
    assert 'value="Smart Fleet Telematics SAS"' in html(page)
    assert "No VAT number yet" not in text(page)
    tenant.refresh_from_db()
    assert (tenant.vat_number, tenant.legal_registration_id, tenant.country) == ("FR74852379890", "852379890", "FR")
    entry = AuditLogEntry.objects.get(tenant=tenant, action="tenant.seller_updated")
    assert entry.actor_label == "staff@acme.test"
    assert "tenant.seller_updated" in text(page)  # the page's recent changes


def test_service_errors_are_shown_on_their_fields_in_french(tenant: Tenant, make_staff: StaffMaker) -> None:
    client = client_for(tenant, make_staff)
    client.cookies["django_language"] = "fr"
    bad = {**SELLER_FORM, "vat_number": "FR00852379890", "legal_registration_id": "852379891", "city": ""}
    response = client.post("/app/settings/seller/", bad, HTTP_ACCEPT_LANGUAGE="fr")
    assert response.status_code == 200
    page = text(response)
    assert "Ce n'est pas un numéro de TVA intracommunautaire valide : vérifiez ses chiffres." in page
    assert "Un SIREN compte 9 chiffres dont une clé de contrôle valide." in page
    assert "La ville est obligatoire dès qu'une adresse est donnée." in page
    assert 'value="12 rue de la Boétie"' in html(response)  # what was typed is kept
    tenant.refresh_from_db()
    assert tenant.vat_number == ""


def test_invoicing_and_usage_settings_are_saved(tenant: Tenant, make_staff: StaffMaker) -> None:
    client = client_for(tenant, make_staff, Role.FINANCE_ADMIN)
    response = client.post(
        "/app/settings/invoicing/", {"auto_finalize": "on", "invoice_prefix": "FAC", "credit_note_prefix": "AV"}
    )
    assert response.status_code == 302
    settings = InvoicingSettings.objects.get(tenant=tenant)
    assert (settings.auto_finalize, settings.invoice_prefix, settings.credit_note_prefix) == (True, "FAC", "AV")
    response = client.post("/app/settings/usage/", {"max_event_age_days": "90", "rate_limit_per_second": "50"})
    assert response.status_code == 302
    usage = UsageSettings.objects.get(tenant=tenant)
    assert (usage.max_event_age_days, usage.rate_limit_per_second) == (90, 50)
    # a refused change shows the service's reason on the field
    response = client.post("/app/settings/invoicing/", {"invoice_prefix": "FAC", "credit_note_prefix": "fac"})
    assert "Credit notes need a prefix other than the invoices' one." in text(response)
    response = client.post("/app/settings/usage/", {"max_event_age_days": "0", "rate_limit_per_second": "50"})
    assert response.status_code == 200
    assert UsageSettings.objects.get(tenant=tenant).max_event_age_days == 90
    actions = set(AuditLogEntry.objects.filter(tenant=tenant).values_list("action", flat=True))
    assert {"invoicing_settings.updated", "usage_settings.updated"} <= actions


def test_a_finance_viewer_reads_but_cannot_post(tenant: Tenant, make_staff: StaffMaker, secret: str) -> None:
    client = client_for(tenant, make_staff, Role.FINANCE_VIEWER)
    response = client.get(URL)
    assert response.status_code == 200
    assert "Read only" in text(response)
    assert "Save seller identity" not in text(response)
    assert "Add a secret" not in text(response)
    assert re.search(r'<input[^>]*name="legal_name"[^>]*disabled', html(response))
    posts = [
        ("/app/settings/seller/", SELLER_FORM),
        ("/app/settings/payment/", PAYMENT_FORM),
        ("/app/settings/invoicing/", {"invoice_prefix": "X", "credit_note_prefix": "Y"}),
        ("/app/settings/usage/", {"max_event_age_days": "5", "rate_limit_per_second": "5"}),
        ("/app/settings/device-cloud-secrets/", {}),
        (f"/app/settings/device-cloud-secrets/{webhook_secret_fingerprint(secret)}/remove/", {}),
    ]
    for url, data in posts:
        assert client.post(url, data).status_code == 403, url
    tenant.refresh_from_db()
    assert (tenant.legal_name, tenant.device_cloud_secrets) == ("", [secret])
    assert not InvoicingSettings.objects.exists()
    assert not AuditLogEntry.objects.filter(tenant=tenant).exists()


def test_a_support_agent_gets_403(tenant: Tenant, make_staff: StaffMaker) -> None:
    client = client_for(tenant, make_staff, Role.SUPPORT_AGENT)
    assert client.get(URL).status_code == 403
    assert f'href="{URL}"' not in html(client.get("/app/"))


def test_another_tenants_settings_are_never_shown(
    tenant: Tenant, other_tenant: Tenant, make_staff: StaffMaker, secret: str
) -> None:
    # given: the other tenant has its own identity, settings and secret
    other_secret = generate_webhook_secret()
    Tenant.objects.filter(pk=other_tenant.pk).update(
        legal_name="Globex Devices GmbH", vat_number="DE136695976", city="Berlin", device_cloud_secrets=[other_secret]
    )
    InvoicingSettings.objects.create(tenant=other_tenant, invoice_prefix="GLX")
    UsageSettings.objects.create(tenant=other_tenant, max_event_age_days=7)
    client = client_for(tenant, make_staff)
    # when
    page = html(client.get(URL))
    # then
    for leaked in ("Globex", "DE136695976", "Berlin", "GLX", webhook_secret_fingerprint(other_secret)):
        assert leaked not in page
    assert 'name="max_event_age_days" value="62"' in page
    # and its secret cannot be removed from this tenant by fingerprint
    response = client.post(f"/app/settings/device-cloud-secrets/{webhook_secret_fingerprint(other_secret)}/remove/")
    assert "No such device-cloud secret." in text(client.get(response["Location"]))
    other_tenant.refresh_from_db()
    assert other_tenant.device_cloud_secrets == [other_secret]


def _headers(secret: str, body: bytes) -> dict[str, str]:
    now = datetime.fromtimestamp(time.time(), tz=UTC)
    signature = Webhook(secret).sign("msg_1", now, body.decode())
    return {"webhook-id": "msg_1", "webhook-timestamp": str(int(now.timestamp())), "webhook-signature": signature}


def test_secret_rotation_from_the_page(tenant: Tenant, make_staff: StaffMaker, secret: str) -> None:
    client = client_for(tenant, make_staff)
    body = json.dumps({"type": "device.shipped", "data": {"device_id": "A"}}).encode()
    # the only secret has no remove button
    assert "/remove/" not in html(client.get(URL))
    # when: a new secret is added, it is shown once, not cached
    response = client.post("/app/settings/device-cloud-secrets/")
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"].split(", ")
    [new_secret] = re.findall(r'id="new-secret">(whsec_[A-Za-z0-9+/=]+)<', html(response))
    assert new_secret not in html(client.get(URL))
    tenant.refresh_from_db()
    assert tenant.device_cloud_secrets == [secret, new_secret]
    verify_signature(tenant=tenant, body=body, headers=_headers(new_secret, body))
    # when: the old one is removed
    response = client.post(f"/app/settings/device-cloud-secrets/{webhook_secret_fingerprint(secret)}/remove/")
    assert "removed: webhooks signed with it are now refused" in text(client.get(response["Location"]))
    tenant.refresh_from_db()
    assert tenant.device_cloud_secrets == [new_secret]
    with pytest.raises(WebhookSignatureInvalid):
        verify_signature(tenant=tenant, body=body, headers=_headers(secret, body))
    # then: the last one cannot be removed, even by a crafted POST
    response = client.post(f"/app/settings/device-cloud-secrets/{webhook_secret_fingerprint(new_secret)}/remove/")
    assert "This is the only device-cloud secret: add a new one before removing it." in text(
        client.get(response["Location"])
    )
    tenant.refresh_from_db()
    assert tenant.device_cloud_secrets == [new_secret]
    actions = list(AuditLogEntry.objects.filter(tenant=tenant).order_by("id").values_list("action", flat=True))
    assert actions == ["device_cloud_secret.added", "device_cloud_secret.removed"]


# --- payment instructions and legal mentions ------------------------------------------------------


def test_blank_mentions_show_the_defaults_they_print_in_english_and_in_french(
    tenant: Tenant, make_staff: StaffMaker
) -> None:
    # given: a French seller that has not written its mentions
    tenant.country = "FR"
    tenant.save()
    client = client_for(tenant, make_staff)
    # when
    english, french = client.get(URL), client.get(URL, HTTP_ACCEPT_LANGUAGE="fr")
    # then: the form says what a blank text prints, and the page lists what an invoice prints
    assert 'name="payment_terms_days" value="30"' in html(english)
    assert 'name="recovery_indemnity" value="40.00"' in html(english)
    assert 'placeholder="Late-payment penalty: three times the French legal interest rate"' in html(english)
    assert "Blank: “No discount for early payment”, in each invoice's language." in text(english)
    assert (
        "What a business customer's invoice prints Late-payment penalty: three times the French legal interest "
        "rate default Fixed indemnity for recovery costs: €40 default No discount for early payment default"
    ) in text(english)
    assert 'placeholder="Pénalités de retard : trois fois le taux d\'intérêt légal"' in html(french).replace(
        "&#x27;", "'"
    )
    assert 'name="recovery_indemnity" value="40,00"' in html(french)
    assert (
        "Pénalités de retard : trois fois le taux d'intérêt légal par défaut "
        "Indemnité forfaitaire pour frais de recouvrement : 40 € par défaut "
        "Pas d'escompte pour paiement anticipé par défaut"
    ) in text(french)


def test_owner_saves_the_payment_instructions_and_mentions(tenant: Tenant, make_staff: StaffMaker) -> None:
    tenant.country = "FR"
    tenant.save()
    client = client_for(tenant, make_staff)

    response = client.post("/app/settings/payment/", PAYMENT_FORM)

    assert response.status_code == 302
    tenant.refresh_from_db()
    assert (tenant.iban, tenant.bic, tenant.sepa_creditor_id, tenant.payment_terms_days) == (
        "FR1420041010050500013M02606",
        "BNPAFRPPXXX",
        "FR72ZZZ123456",
        45,
    )
    assert tenant.early_payment_discount == "Escompte de 2 % pour paiement sous 10 jours"
    entry = AuditLogEntry.objects.get(tenant=tenant, action="tenant.payment_updated")
    assert entry.after is not None
    assert entry.after["iban"] == "FR1420041010050500013M02606"
    page = text(client.get(URL))
    assert "Payment instructions and legal mentions saved." in page
    # the discount is the tenant's own text now, printed as typed
    assert "Escompte de 2 % pour paiement sous 10 jours" in page.split("What a business customer's invoice prints")[1]


def test_payment_errors_are_shown_on_their_fields_in_french(tenant: Tenant, make_staff: StaffMaker) -> None:
    client = client_for(tenant, make_staff)
    bad = {
        **PAYMENT_FORM,
        "iban": "FR14 2004 1010 0505 0001 3M02 607",  # the last check digit is off by one
        "sepa_creditor_id": "FR72ZZZ123457",
        "payment_terms_days": "400",
    }

    response = client.post("/app/settings/payment/", bad, HTTP_ACCEPT_LANGUAGE="fr")

    assert response.status_code == 200
    form = response.context["payment_form"]
    # the form's own range check first, then the service's checks once the form is valid
    assert form.errors["payment_terms_days"] == ["Assurez-vous que cette valeur est inférieure ou égale à 365."]
    response = client.post("/app/settings/payment/", {**bad, "payment_terms_days": "30"}, HTTP_ACCEPT_LANGUAGE="fr")
    form = response.context["payment_form"]
    assert form.errors["iban"] == ["Ce n'est pas un IBAN valide : vérifiez ses chiffres."]
    assert form.errors["sepa_creditor_id"] == [
        "Ce n'est pas un identifiant créancier SEPA valide : vérifiez ses chiffres."
    ]
    tenant.refresh_from_db()
    assert (tenant.iban, tenant.payment_terms_days) == ("", 30)
    assert not AuditLogEntry.objects.filter(tenant=tenant, action="tenant.payment_updated").exists()
