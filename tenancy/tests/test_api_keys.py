from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.utils import timezone
from rest_framework.test import APIClient

from tenancy.actors import Actor
from tenancy.errors import ApiKeyAlreadyRevoked
from tenancy.models import ApiKey, ApiKeyScope, AuditLogEntry, Tenant
from tenancy.services import api_key_create, api_key_revoke

pytestmark = pytest.mark.django_db


def _client(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def test_a_key_is_stored_hashed_and_shown_only_once(tenant: Tenant) -> None:
    row, key = api_key_create(
        tenant=tenant, name="ERP", scope=ApiKeyScope.READ, actor=Actor.system(), at=timezone.now()
    )
    stored = ApiKey.objects.filter(pk=row.pk).values().get()
    assert key not in [str(v) for v in stored.values()]
    assert key.startswith(row.prefix + "_")
    assert len(key) > 40


def test_revoked_key_gets_401_and_revocation_is_audited(tenant: Tenant) -> None:
    row, key = api_key_create(
        tenant=tenant, name="ERP", scope=ApiKeyScope.FULL, actor=Actor.system(), at=timezone.now()
    )
    assert _client(key).get("/api/v1/customers").status_code == 200
    api_key_revoke(tenant=tenant, key_id=str(row.pk), actor=Actor.system(), at=timezone.now())
    response = _client(key).get("/api/v1/customers")
    assert response.status_code == 401
    assert response.json()["detail"] == "Unknown or revoked API key."
    assert AuditLogEntry.objects.filter(tenant=tenant, action="api_key.revoked", object_id=str(row.pk)).count() == 1
    with pytest.raises(ApiKeyAlreadyRevoked, match="already revoked"):
        api_key_revoke(tenant=tenant, key_id=str(row.pk), actor=Actor.system(), at=timezone.now())


def test_another_tenant_cannot_revoke_a_key(tenant: Tenant, other_tenant: Tenant) -> None:
    row, key = api_key_create(
        tenant=tenant, name="ERP", scope=ApiKeyScope.FULL, actor=Actor.system(), at=timezone.now()
    )
    with pytest.raises(Exception, match="No such API key"):
        api_key_revoke(tenant=other_tenant, key_id=str(row.pk), actor=Actor.system(), at=timezone.now())
    assert ApiKey.objects.get(pk=row.pk).revoked_at is None


def test_last_used_time_is_recorded_at_most_once_a_minute(tenant: Tenant) -> None:
    row, key = api_key_create(
        tenant=tenant, name="ERP", scope=ApiKeyScope.FULL, actor=Actor.system(), at=timezone.now()
    )
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        _client(key).get("/api/v1/customers")
    row.refresh_from_db()
    assert row.last_used_at == start
    with time_machine.travel(start + timedelta(seconds=30), tick=False):
        _client(key).get("/api/v1/customers")
    row.refresh_from_db()
    assert row.last_used_at == start
    with time_machine.travel(start + timedelta(seconds=61), tick=False):
        _client(key).get("/api/v1/customers")
    row.refresh_from_db()
    assert row.last_used_at == start + timedelta(seconds=61)


def test_read_key_reads_but_cannot_write(make_client: Any, tenant: Tenant, customer_body: dict[str, Any]) -> None:
    reader = make_client(tenant, ApiKeyScope.READ)
    assert reader.get("/api/v1/customers").status_code == 200
    response = reader.post("/api/v1/customers", customer_body, format="json")
    assert response.status_code == 403
    assert response.json()["detail"] == "This API key's scope does not allow this operation."


@pytest.mark.parametrize("scope", [ApiKeyScope.INGEST, ApiKeyScope.DEVICE_CLOUD])
def test_ingest_and_device_cloud_keys_cannot_read_customers(make_client: Any, tenant: Tenant, scope: str) -> None:
    assert make_client(tenant, scope).get("/api/v1/customers").status_code == 403


@pytest.mark.parametrize("header", ["Token abc", "Bearer", "Bearer a b", "bearer tpk_nope_nope"])
def test_malformed_authorization_headers_get_401(header: str) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get("/api/v1/customers")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
