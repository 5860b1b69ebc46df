"""The Stripe section of the settings page: keys saved encrypted, shown only by their ending,
audited without the keys, refused when malformed (in French too), written by owners and finance
admins only; and the webhook URL to give Stripe."""

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from payments.models import PaymentSettings
from tenancy.models import AuditLogEntry, Role, Tenant

pytestmark = pytest.mark.django_db

URL = "/app/settings/"
KEYS = {
    "stripe_secret_key": "sk_test_51Hsecretkey0000000000004242",
    "stripe_webhook_secret": "whsec_signingsecret00000000009876",
    "stripe_publishable_key": "pk_test_51Hpublishable000000001111",
}


def client_for(tenant: Tenant, make_staff: Callable[..., Any], role: str = Role.OWNER) -> Client:
    client = Client()
    client.force_login(make_staff(tenant, role))
    return client


def test_an_owner_sets_the_keys_which_are_never_shown_again(tenant: Tenant, make_staff: Callable[..., Any]) -> None:
    client = client_for(tenant, make_staff)
    page = client.get(URL).content.decode()
    assert "/api/v1/webhooks/stripe?tenant=%s" % tenant.slug in page
    assert "payment_intent.succeeded" in page
    # when
    response = client.post("/app/settings/stripe/", KEYS)
    # then: saved, and the page shows each key's last 4 characters only
    assert response.status_code == 302
    stored = PaymentSettings.objects.get(tenant=tenant)
    assert (stored.stripe_secret_key, stored.stripe_webhook_secret) == (
        KEYS["stripe_secret_key"],
        KEYS["stripe_webhook_secret"],
    )
    page = client.get(URL).content.decode()
    assert "…4242" in page
    assert "…9876" in page
    for key in KEYS.values():
        assert key not in page
    # encrypted at rest: the column does not hold the key
    with connection.cursor() as cursor:
        cursor.execute("SELECT stripe_secret_key FROM payments_paymentsettings WHERE tenant_id = %s", [tenant.pk])
        (raw,) = cursor.fetchone()
    assert "sk_test" not in raw
    # audited with the endings only
    entry = AuditLogEntry.objects.get(tenant=tenant, action="payment_settings.stripe_keys_updated")
    assert entry.after == {
        "stripe_secret_key": "4242",
        "stripe_webhook_secret": "9876",
        "stripe_publishable_key": "1111",
    }
    # a blank field keeps its key; a filled one replaces it
    client.post("/app/settings/stripe/", {"stripe_secret_key": "", "stripe_webhook_secret": "whsec_new00005555"})
    stored.refresh_from_db()
    assert (stored.stripe_secret_key, stored.stripe_webhook_secret) == (KEYS["stripe_secret_key"], "whsec_new00005555")


def test_a_malformed_key_is_refused_in_french(tenant: Tenant, make_staff: Callable[..., Any]) -> None:
    client = client_for(tenant, make_staff)
    response = client.post("/app/settings/stripe/", {"stripe_secret_key": "pk_test_wrong"}, HTTP_ACCEPT_LANGUAGE="fr")
    assert response.status_code == 200
    assert "Cette clé doit commencer par sk_ / rk_." in response.content.decode()
    assert not PaymentSettings.objects.filter(tenant=tenant).exclude(stripe_publishable_key="").exists()
    assert PaymentSettings.objects.get(tenant=tenant).stripe_secret_key == ""


@pytest.mark.parametrize("role", [Role.FINANCE_VIEWER, Role.SUPPORT_AGENT])
def test_other_roles_cannot_set_the_keys(tenant: Tenant, make_staff: Callable[..., Any], role: str) -> None:
    response = client_for(tenant, make_staff, role).post("/app/settings/stripe/", KEYS)
    assert response.status_code == 403
    assert not PaymentSettings.objects.filter(tenant=tenant).exists()
