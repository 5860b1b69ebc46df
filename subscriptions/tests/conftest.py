"""Fixtures of the device-cloud webhook tests: the tenant's webhook secret, and Dupont's Smart Fleet
subscription signed through the API with devices A, B and C not yet active."""

import pytest
from rest_framework.test import APIClient

from catalog.tests.factories import smart_fleet_catalog
from customers.tests.factories import dupont
from subscriptions.models import Subscription
from subscriptions.tests.factories import SMART_FLEET_SUBSCRIPTION
from tenancy.keys import generate_webhook_secret
from tenancy.models import Tenant


@pytest.fixture
def secret(tenant: Tenant) -> str:
    value = generate_webhook_secret()
    tenant.device_cloud_secrets = [value]
    tenant.save()
    return value


@pytest.fixture
def smart_fleet(tenant: Tenant, api: APIClient) -> Subscription:
    # no billing day yet: signing sets it
    smart_fleet_catalog(tenant)
    dupont(tenant, billing_day=None)
    response = api.post("/api/v1/subscriptions", SMART_FLEET_SUBSCRIPTION, format="json")
    assert response.status_code == 201, response.content
    return Subscription.objects.get(tenant=tenant, external_id="dupont-fleet")
