"""The audit log in words (``backoffice.audit``): a sentence for every action the code records, the
changes field by field ("Billing email: a@x.fr → b@x.fr") in English and French, amounts and dates
formatted, secrets never shown, and no Python dict on the audit page of the seeded demo."""

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import Client
from django.utils import translation

from backoffice.audit import HIDDEN, SENTENCES, changes, sentence
from billing_platform.rls import tenant_context
from subscriptions.models import ChangeAction
from tenancy.actors import Actor
from tenancy.models import AuditLogEntry, Membership, Tenant
from tenancy.services import audit_record

pytestmark = pytest.mark.django_db

AT = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
APPS = (
    "tenancy",
    "webhooks",
    "customers",
    "catalog",
    "subscriptions",
    "usage",
    "invoicing",
    "payments",
    "revrec",
    "support",
)
# An action as the code writes it: a literal "object.verb" handed to the audit helpers.
LITERAL = re.compile(
    r"""(?:action=|audit\(\s*(?:[\w.]+,\s*){3}|_audit\(\s*\w+,\s*|_authenticator\()\s*"([a-z_]+\.[a-z_]+)\"""",
)


@pytest.fixture(autouse=True)
def english() -> Iterator[None]:
    with translation.override("en"):
        yield


def entry(action: str, *, before: Any = None, after: Any = None, object_id: str = "dupont") -> AuditLogEntry:
    return AuditLogEntry(
        action=action,
        object_type=action.split(".")[0],
        object_id=object_id,
        at=AT,
        actor_type="user",
        before=before,
        after=after,
    )


def actions_in_code() -> set[str]:
    """Every action name the code records: the literals at the audit call sites, and the
    subscription changes' ``f"subscription.{action}"``, one per change action."""
    found = set()
    root = Path(settings.BASE_DIR)
    for app in (*APPS, "backoffice"):
        for path in (root / app).rglob("*.py"):
            if "tests" in path.parts or "migrations" in path.parts:
                continue
            found.update(LITERAL.findall(path.read_text()))
    found.update("subscription.%s" % action for action in ChangeAction.values)
    return found


def test_every_action_the_code_records_has_its_sentence() -> None:
    found = actions_in_code()
    # the scan finds the call sites (a sample of each kind of them)
    sample = {"customer.updated", "price_version.created", "webhook_endpoint.deleted", "user.second_factor_added"}
    assert sample <= found
    assert sorted(found - set(SENTENCES)) == []
    for action in sorted(found):
        said = sentence(entry(action, after={"name": "Key", "currency": "EUR", "effective_from": "2026-05-01"}))
        assert said
        assert "." not in said.replace("…", "")  # never the raw "object.verb"


def test_a_change_reads_old_to_new_with_labels() -> None:
    e = entry(
        "customer.updated",
        before={"email": "a@x.fr", "status": "active", "billing_day": 1},
        after={"email": "b@x.fr", "status": "suspended", "billing_day": 15},
    )
    assert sentence(e) == "Customer dupont updated"
    assert changes(e) == ["Billing email: a@x.fr → b@x.fr", "Status: active → suspended", "Billing day: 1 → 15"]
    with translation.override("fr"):
        assert sentence(e) == "Client dupont modifié"
        assert changes(e)[0] == "E-mail de facturation : a@x.fr → b@x.fr"


def test_an_entry_without_its_old_values_reads_set_to() -> None:
    e = entry("tenant.seller_updated", after={"legal_name": "Acme SAS", "city": "Paris"}, object_id="acme")
    assert sentence(e) == "Seller identity updated"
    assert changes(e) == ["Legal name: set to Acme SAS", "City: set to Paris"]
    with translation.override("fr"):
        assert changes(e) == ["Raison sociale : désormais Acme SAS", "Ville : désormais Paris"]


def test_money_and_dates_are_formatted_in_the_readers_language() -> None:
    version = entry(
        "price_version.created",
        after={"currency": "EUR", "effective_from": "2026-05-01T00:00:00+00:00"},
        object_id="smart-fleet",
    )
    assert sentence(version) == "Price version created for plan smart-fleet (EUR), effective 1 May 2026"
    payment = entry("payment.recorded", after={"amount": "1234.5", "currency": "EUR"})
    assert changes(payment)[0] == "Amount: set to €1,234.50"
    with translation.override("fr"):
        assert changes(payment)[0] == "Montant : désormais 1\u202f234,50\xa0€"
        assert sentence(version) == "Version de prix créée pour l'offre smart-fleet (EUR), en vigueur : 1 mai 2026"


def test_choices_read_as_their_labels() -> None:
    e = entry("membership.role_changed", before={"role": "finance_viewer"}, after={"role": "finance_admin"})
    assert changes(e) == ["Role: Finance viewer → Finance admin"]
    with translation.override("fr"):
        assert changes(e) == [
            "Rôle : %s → %s" % (translation.gettext("Finance viewer"), translation.gettext("Finance admin"))
        ]


def test_nested_values_keep_their_codes_and_their_amounts() -> None:
    payment = entry("payment.recorded", after={"currency": "EUR", "left": "28.8400", "allocated": {"INV-7": "121.16"}})
    assert changes(payment)[1:] == ["Left as credit: set to €28.84", "Allocated to invoices: set to INV-7: €121.16"]
    version = entry(
        "price_version.created",
        after={"currency": "EUR", "effective_from": None, "prices": {"eld-200": {"unit_amount": "0.005"}}},
        object_id="smart-fleet",
    )
    assert sentence(version) == "Price version created for plan smart-fleet (EUR), effective from the start"
    assert changes(version)[2] == "Prices: set to eld-200: Unit amount: €0.005"


def test_secrets_are_never_shown() -> None:
    e = entry(
        "payment_settings.stripe_keys_updated",
        before={"stripe_secret_key": "…4242", "stripe_publishable_key": "…1111"},
        after={"stripe_secret_key": "…9999", "stripe_publishable_key": "…2222"},
    )
    lines = changes(e)
    assert lines == ["Stripe secret key: changed", "Stripe publishable key: …1111 → …2222"]
    created = entry("webhook_endpoint.created", after={"url": "https://erp.test/hook", "signing_secret": "whsec_abc"})
    assert "whsec_abc" not in " ".join(changes(created))
    assert "Signing secret: set to %s" % HIDDEN in changes(created)


def test_the_audit_page_of_the_seeded_demo_shows_no_python_dict(client: Client, make_staff: Callable[..., Any]) -> None:
    with tenant_context(None):
        call_command("seed_demo", stdout=StringIO())
    tenant = Tenant.objects.get(slug="smart-fleet")
    user = Membership.objects.filter(tenant=tenant).select_related("user").first().user  # type: ignore[union-attr]
    audit_record(
        tenant=tenant,
        actor=Actor.system("tests"),
        action="customer.updated",
        object_type="customer",
        object_id="dupont",
        at=AT,
        before={"email": "a@x.fr"},
        after={"email": "b@x.fr"},
    )
    client.force_login(user)
    for language in ("en", "fr"):
        page = client.get("/app/audit-log/", HTTP_ACCEPT_LANGUAGE=language).content.decode()
        assert "{&#x27;" not in page
        assert "{'" not in page
        assert "{&quot;" not in page
    page = client.get("/app/audit-log/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Billing email: a@x.fr → b@x.fr" in page
