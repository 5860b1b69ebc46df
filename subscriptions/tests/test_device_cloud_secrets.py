"""Rotating the device-cloud webhook secrets: add one (returned once), remove an old one, never the last."""

import base64
import json
import time
from datetime import UTC, datetime
from io import StringIO
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from standardwebhooks import Webhook

from subscriptions.errors import WebhookSignatureInvalid
from subscriptions.webhooks import verify_signature
from tenancy.actors import Actor
from tenancy.errors import DeviceCloudSecretNotFound, LastDeviceCloudSecret, TooManyDeviceCloudSecrets
from tenancy.keys import generate_webhook_secret, webhook_secret_fingerprint
from tenancy.models import AuditLogEntry, Tenant
from tenancy.selectors import device_cloud_secret_fingerprints
from tenancy.services import MAX_DEVICE_CLOUD_SECRETS, device_cloud_secret_add, device_cloud_secret_remove

pytestmark = pytest.mark.django_db

AT = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)
ACTOR = Actor.system("tests")
BODY = json.dumps({"type": "device.shipped", "data": {"device_id": "A"}}).encode()


@pytest.fixture
def old_secret(tenant: Tenant) -> str:
    secret = generate_webhook_secret()
    tenant.device_cloud_secrets = [secret]
    tenant.save()
    return secret


def signed_headers(secret: str) -> dict[str, str]:
    now = datetime.fromtimestamp(time.time(), tz=UTC)
    signature = Webhook(secret).sign("msg_1", now, BODY.decode())
    return {"webhook-id": "msg_1", "webhook-timestamp": str(int(now.timestamp())), "webhook-signature": signature}


def test_a_new_secret_is_returned_once_and_verifies_signatures_next_to_the_old_one(
    tenant: Tenant, old_secret: str
) -> None:
    # when
    new_secret = device_cloud_secret_add(tenant=tenant, actor=ACTOR, at=AT)
    # then: a Standard Webhooks secret, "whsec_" + base64 of 32 bytes, kept after the old one
    assert new_secret.startswith("whsec_")
    assert len(base64.b64decode(new_secret.removeprefix("whsec_"))) == 32
    tenant.refresh_from_db()
    assert tenant.device_cloud_secrets == [old_secret, new_secret]
    verify_signature(tenant=tenant, body=BODY, headers=signed_headers(new_secret))
    verify_signature(tenant=tenant, body=BODY, headers=signed_headers(old_secret))
    # the audit log names it by fingerprint, never by the secret itself
    entry = AuditLogEntry.objects.get(tenant=tenant, action="device_cloud_secret.added")
    assert entry.after == {"fingerprint": webhook_secret_fingerprint(new_secret), "secrets": 2}
    assert new_secret not in json.dumps([entry.before, entry.after])


def test_a_removed_secret_no_longer_verifies_and_the_last_one_cannot_be_removed(
    tenant: Tenant, old_secret: str
) -> None:
    # given
    new_secret = device_cloud_secret_add(tenant=tenant, actor=ACTOR, at=AT)
    # when
    device_cloud_secret_remove(tenant=tenant, actor=ACTOR, at=AT, fingerprint=webhook_secret_fingerprint(old_secret))
    # then
    tenant.refresh_from_db()
    assert tenant.device_cloud_secrets == [new_secret]
    assert device_cloud_secret_fingerprints(tenant=tenant) == [webhook_secret_fingerprint(new_secret)]
    verify_signature(tenant=tenant, body=BODY, headers=signed_headers(new_secret))
    with pytest.raises(WebhookSignatureInvalid):
        verify_signature(tenant=tenant, body=BODY, headers=signed_headers(old_secret))
    entry = AuditLogEntry.objects.get(tenant=tenant, action="device_cloud_secret.removed")
    assert (entry.before, entry.after) == (
        {"fingerprint": webhook_secret_fingerprint(old_secret), "secrets": 2},
        {"secrets": 1},
    )
    # the last secret stays
    with pytest.raises(LastDeviceCloudSecret, match="This is the tenant's only device-cloud secret: add a new one"):
        device_cloud_secret_remove(
            tenant=tenant, actor=ACTOR, at=AT, fingerprint=webhook_secret_fingerprint(new_secret)
        )
    tenant.refresh_from_db()
    assert tenant.device_cloud_secrets == [new_secret]
    assert AuditLogEntry.objects.filter(action="device_cloud_secret.removed").count() == 1


def test_an_unknown_fingerprint_and_a_sixth_secret_are_refused(tenant: Tenant, old_secret: str) -> None:
    with pytest.raises(DeviceCloudSecretNotFound, match="No device-cloud secret with fingerprint 000000000000."):
        device_cloud_secret_remove(tenant=tenant, actor=ACTOR, at=AT, fingerprint="000000000000")
    for _ in range(MAX_DEVICE_CLOUD_SECRETS - 1):
        device_cloud_secret_add(tenant=tenant, actor=ACTOR, at=AT)
    with pytest.raises(TooManyDeviceCloudSecrets, match="at most 5 device-cloud secrets"):
        device_cloud_secret_add(tenant=tenant, actor=ACTOR, at=AT)
    tenant.refresh_from_db()
    assert len(tenant.device_cloud_secrets) == MAX_DEVICE_CLOUD_SECRETS


def test_another_tenants_secret_cannot_be_removed_by_its_fingerprint(
    tenant: Tenant, other_tenant: Tenant, old_secret: str
) -> None:
    other_tenant.device_cloud_secrets = [generate_webhook_secret(), generate_webhook_secret()]
    other_tenant.save()
    fingerprint = webhook_secret_fingerprint(other_tenant.device_cloud_secrets[0])
    with pytest.raises(DeviceCloudSecretNotFound):
        device_cloud_secret_remove(tenant=tenant, actor=ACTOR, at=AT, fingerprint=fingerprint)
    other_tenant.refresh_from_db()
    assert len(other_tenant.device_cloud_secrets) == 2


def test_webhooks_verify_across_an_encryption_key_rotation(tenant: Tenant, old_secret: str, settings: Any) -> None:
    # given: the secret stored under the key in force; then a new key put first and rotated to
    new_key = Fernet.generate_key().decode()
    settings.TRIPOD_ENCRYPTION_KEYS = [new_key, *settings.TRIPOD_ENCRYPTION_KEYS]
    call_command("encryption_rotate", stdout=StringIO())
    # when: the old key is dropped
    settings.TRIPOD_ENCRYPTION_KEYS = [new_key]
    # then: the stored secret still verifies the device cloud's signatures
    tenant = Tenant.objects.get(pk=tenant.pk)
    verify_signature(tenant=tenant, body=BODY, headers=signed_headers(old_secret))
