"""The staff partners API: partners with their commission plan, their users, their API keys."""

from typing import Any

import pytest
from django.core import mail
from rest_framework.test import APIClient

from customers.models import Partner
from customers.tests.factories import dupont
from partners.models import PartnerUser
from tenancy.models import ApiKey, AuditLogEntry, Tenant

pytestmark = pytest.mark.django_db

ALPNET: dict[str, Any] = {
    "code": "alpnet",
    "name": "AlpNet",
    "email": "channel@alpnet.test",
    "country": "fr",
    "currency": "eur",
    "language": "fr",
    "commission_plan": {
        "hardware": "5",
        "service": {"tiers": [{"up_to": "10000.00", "rate": "20"}, {"up_to": None, "rate": "25"}]},
        "usage": "10",
    },
    "price_book": "alpnet-2026",
}


def _create(api: APIClient, **body: Any) -> dict[str, Any]:
    response = api.post("/api/v1/partners", {**ALPNET, **body}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_a_partner_is_created_with_every_leg_of_its_plan(api: APIClient, tenant: Tenant) -> None:
    body = _create(api)
    assert {k: v for k, v in body.items() if k not in ("created_at", "updated_at")} == {
        "code": "alpnet",
        "name": "AlpNet",
        "email": "channel@alpnet.test",
        "country": "FR",
        "currency": "EUR",
        "language": "fr",
        # the fee leg, left out, earns nothing
        "commission_plan": {
            "hardware": "5",
            "service": {"tiers": [{"up_to": "10000.00", "rate": "20"}, {"up_to": None, "rate": "25"}]},
            "usage": "10",
            "fee": "0",
        },
        "price_book": "alpnet-2026",
        "status": "active",
        "customers_count": 0,
    }
    assert AuditLogEntry.objects.get(tenant=tenant, action="partner.created").object_id == "alpnet"
    # the same code again is a conflict
    again = api.post("/api/v1/partners", ALPNET, format="json")
    assert again.status_code == 409
    assert again.json()["code"] == "partner_code_taken"


def test_a_wrong_plan_names_each_wrong_leg(api: APIClient) -> None:
    response = api.post(
        "/api/v1/partners",
        {**ALPNET, "commission_plan": {"service": "120", "cloud": "5"}},
        format="json",
    )
    assert response.status_code == 422
    fields = sorted(e["field"] for e in response.json()["errors"])
    assert fields == ["commission_plan.cloud", "commission_plan.service"]


def test_partners_are_listed_by_status_read_and_changed(api: APIClient, tenant: Tenant) -> None:
    _create(api)
    _create(api, code="geosat", name="Geo Sat", price_book="")
    dupont(tenant, partner=None)
    assert api.patch("/api/v1/partners/geosat", {"status": "inactive"}, format="json").status_code == 200
    listed = api.get("/api/v1/partners").json()
    # newest first
    assert [p["code"] for p in listed["results"]] == ["geosat", "alpnet"]
    assert listed["next"] is None
    active = api.get("/api/v1/partners?status=active").json()
    assert [p["code"] for p in active["results"]] == ["alpnet"]
    assert api.get("/api/v1/partners?status=gone").status_code == 422
    changed = api.patch(
        "/api/v1/partners/alpnet", {"name": "AlpNet SAS", "commission_plan": {"service": "22.5"}}, format="json"
    ).json()
    assert changed["name"] == "AlpNet SAS"
    assert changed["commission_plan"] == {"hardware": "0", "service": "22.5", "usage": "0", "fee": "0"}
    assert api.patch("/api/v1/partners/alpnet", {"code": "alp"}, format="json").status_code == 422
    assert api.get("/api/v1/partners/nobody").status_code == 404


def test_a_partners_customers_are_counted(api: APIClient, tenant: Tenant) -> None:
    _create(api)
    response = api.post(
        "/api/v1/customers",
        {
            "external_id": "dupont",
            "name": "Transports Dupont",
            "email": "a@dupont.test",
            "country": "FR",
            "partner": "alpnet",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    assert api.get("/api/v1/partners/alpnet").json()["customers_count"] == 1


def test_partner_users_are_invited_changed_and_removed(
    api: APIClient, tenant: Tenant, django_capture_on_commit_callbacks: Any
) -> None:
    _create(api)
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            "/api/v1/partners/alpnet/users",
            {"email": "Lea@AlpNet.test", "name": "Léa", "role": "admin"},
            format="json",
            HTTP_IDEMPOTENCY_KEY="invite-lea",
        )
    assert response.status_code == 201, response.content
    user = response.json()
    assert (user["partner"], user["email"], user["role"], user["language"], user["is_active"]) == (
        "alpnet",
        "lea@alpnet.test",
        "admin",
        "",
        True,
    )
    # in the partner's language: French
    [message] = mail.outbox
    assert message.subject == "Votre accès au tableau de bord partenaire de Acme Telematics"
    assert "http://testserver/partners/acme/invitation/" in message.body
    taken = api.post("/api/v1/partners/alpnet/users", {"email": "LEA@alpnet.test"}, format="json")
    assert taken.status_code == 409
    assert taken.json()["code"] == "partner_user_email_taken"
    listed = api.get("/api/v1/partners/alpnet/users").json()["results"]
    assert [u["email"] for u in listed] == ["lea@alpnet.test"]
    url = "/api/v1/partners/alpnet/users/%s" % user["id"]
    changed = api.patch(url, {"role": "sales", "language": "en"}, format="json").json()
    assert (changed["role"], changed["language"]) == ("sales", "en")
    assert api.delete(url).status_code == 204
    assert PartnerUser.objects.get().is_active is False
    assert api.patch("/api/v1/partners/alpnet/users/not-a-user", {"name": "x"}, format="json").status_code == 404


@pytest.mark.parametrize("user_id", ["-" * 32, "-" * 36, "g" * 32, "1b4e28ba-2fa1-11d2-883f-0016d3cca427"])
def test_a_user_id_that_is_no_known_uuid_is_a_404_problem(api: APIClient, user_id: str) -> None:
    _create(api)
    response = api.patch("/api/v1/partners/alpnet/users/" + user_id, {"role": "admin"}, format="json")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "partner_user_not_found"
    assert api.delete("/api/v1/partners/alpnet/users/" + user_id).status_code == 404


def test_a_partner_api_key_is_shown_once_and_revoked(api: APIClient, tenant: Tenant) -> None:
    _create(api)
    response = api.post(
        "/api/v1/partners/alpnet/api_keys", {"name": "AlpNet shop"}, format="json", HTTP_IDEMPOTENCY_KEY="k1"
    )
    assert response.status_code == 201, response.content
    created = response.json()
    assert (created["partner"], created["name"], created["scope"]) == ("alpnet", "AlpNet shop", "partner")
    assert created["key"].startswith(created["prefix"])
    key = ApiKey.objects.get(pk=created["id"])
    assert (key.scope, key.partner_id) == ("partner", Partner.objects.get(code="alpnet").pk)
    # a replay does not show the key again
    replay = api.post(
        "/api/v1/partners/alpnet/api_keys", {"name": "AlpNet shop"}, format="json", HTTP_IDEMPOTENCY_KEY="k1"
    )
    assert (replay.status_code, replay.json()["key"], replay.json()["id"]) == (201, None, created["id"])
    listed = api.get("/api/v1/partners/alpnet/api_keys").json()["results"]
    assert [(k["id"], "key" in k) for k in listed] == [(created["id"], False)]
    url = "/api/v1/partners/alpnet/api_keys/%s" % created["id"]
    assert api.delete(url).status_code == 204
    assert api.delete(url).status_code == 409
    # another partner's key, or the tenant's own, is not found here
    _create(api, code="geosat", name="Geo Sat")
    assert api.delete("/api/v1/partners/geosat/api_keys/%s" % created["id"]).status_code == 404
    staff_key = ApiKey.objects.filter(tenant=tenant, partner=None).first()
    assert staff_key is not None
    assert api.delete("/api/v1/partners/alpnet/api_keys/%s" % staff_key.pk).status_code == 404
