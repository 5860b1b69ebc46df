"""A subscription's metadata: given when it is signed, changed by PATCH."""

from typing import Any

import pytest
from rest_framework.test import APIClient

from catalog.tests.factories import smart_fleet_catalog
from customers.tests.factories import dupont
from subscriptions.models import Subscription
from subscriptions.tests.factories import SMART_FLEET_SUBSCRIPTION
from tenancy.models import AuditLogEntry, Tenant

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalog(tenant: Tenant) -> None:
    smart_fleet_catalog(tenant)
    dupont(tenant)


def test_metadata_given_at_signature_is_returned(api: APIClient, tenant: Tenant, catalog: None) -> None:
    body: dict[str, Any] = {**SMART_FLEET_SUBSCRIPTION, "metadata": {"crm_deal": "OPP-7781"}}
    response = api.post("/api/v1/subscriptions", body, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["metadata"] == {"crm_deal": "OPP-7781"}
    assert api.get("/api/v1/subscriptions").json()["results"][0]["metadata"] == {"crm_deal": "OPP-7781"}
    # when: one key added, one removed
    response = api.patch(
        "/api/v1/subscriptions/dupont-fleet", {"metadata": {"crm_deal": None, "po": "PO-1"}}, format="json"
    )
    # then
    assert response.status_code == 200, response.content
    assert response.json()["metadata"] == {"po": "PO-1"}
    assert Subscription.objects.get(tenant=tenant, external_id="dupont-fleet").metadata == {"po": "PO-1"}
    entry = AuditLogEntry.objects.get(tenant=tenant, action="subscription.updated")
    assert (entry.before, entry.after) == ({"metadata": {"crm_deal": "OPP-7781"}}, {"metadata": {"po": "PO-1"}})


def test_bad_metadata_is_refused_with_the_other_errors(api: APIClient, catalog: None) -> None:
    body = {**SMART_FLEET_SUBSCRIPTION, "metadata": {"crm_deal": 7}, "auto_renew": "yes"}
    response = api.post("/api/v1/subscriptions", body, format="json")
    assert response.status_code == 422
    assert {e["field"]: e["code"] for e in response.json()["errors"]} == {
        "metadata.crm_deal": "invalid_value",
        "auto_renew": "invalid_type",
    }


def test_a_patch_changes_nothing_but_metadata(api: APIClient, catalog: None) -> None:
    assert api.post("/api/v1/subscriptions", SMART_FLEET_SUBSCRIPTION, format="json").status_code == 201
    response = api.patch("/api/v1/subscriptions/dupont-fleet", {"plan": "other"}, format="json")
    assert response.status_code == 422
    assert {e["field"]: e["code"] for e in response.json()["errors"]} == {
        "plan": "unknown_field",
        "metadata": "required",
    }
    assert api.patch("/api/v1/subscriptions/nope", {"metadata": {}}, format="json").status_code == 404
