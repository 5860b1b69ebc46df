"""Device-cloud secrets are encrypted at rest (billing_platform.encryption.EncryptedJSONField): the
column holds a Fernet token, the model reads the list back, keys rotate, and the migration
encrypted the secrets stored before it."""

import json
from io import StringIO
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import FieldError
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from billing_platform.encryption import InvalidToken, decrypt
from tenancy.keys import generate_webhook_secret
from tenancy.models import Tenant

OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()


def stored(tenant: Tenant) -> str:
    """The column as the database holds it."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT device_cloud_secrets FROM tenancy_tenant WHERE id = %s", [tenant.pk])
        return str(cursor.fetchone()[0])


@pytest.mark.django_db
def test_the_column_holds_ciphertext_and_the_model_the_secrets(tenant: Tenant, settings: Any) -> None:
    # given
    settings.TRIPOD_ENCRYPTION_KEYS = [OLD]
    secrets = [generate_webhook_secret(), generate_webhook_secret()]
    # when
    tenant.device_cloud_secrets = secrets
    tenant.save()
    # then: the row holds one token, not the secrets, and the token is their JSON list
    raw = stored(tenant)
    assert raw.startswith("gAAAAA")
    assert not any(s in raw or s.removeprefix("whsec_") in raw for s in secrets)
    assert json.loads(decrypt(raw)) == secrets
    assert Tenant.objects.get(pk=tenant.pk).device_cloud_secrets == secrets
    # an encrypted column cannot be searched: only isnull is allowed
    with pytest.raises(FieldError, match="Unsupported lookup"):
        Tenant.objects.filter(device_cloud_secrets__contains=secrets[0]).exists()
    assert Tenant.objects.filter(device_cloud_secrets__isnull=False, pk=tenant.pk).count() == 1


@pytest.mark.django_db
def test_rotation_reencrypts_every_secret_under_the_new_key(
    tenant: Tenant, other_tenant: Tenant, settings: Any
) -> None:
    # given: two tenants' secrets stored under the old key
    settings.TRIPOD_ENCRYPTION_KEYS = [OLD]
    secrets = {t.pk: [generate_webhook_secret()] for t in (tenant, other_tenant)}
    for t in (tenant, other_tenant):
        t.device_cloud_secrets = secrets[t.pk]
        t.save()
    before = {t.pk: stored(t) for t in (tenant, other_tenant)}
    # when: the new key is put first and the command re-encrypts
    settings.TRIPOD_ENCRYPTION_KEYS = [NEW, OLD]
    out = StringIO()
    call_command("encryption_rotate", stdout=out)
    # then: every row changed, and reads with the new key alone
    assert "tenancy_tenant.device_cloud_secrets: 2 value(s) encrypted under the newest key" in out.getvalue()
    settings.TRIPOD_ENCRYPTION_KEYS = [NEW]
    for t in (tenant, other_tenant):
        assert stored(t) != before[t.pk]
        assert Tenant.objects.get(pk=t.pk).device_cloud_secrets == secrets[t.pk]
        with pytest.raises(InvalidToken):  # the old token needed the old key
            decrypt(before[t.pk])


@pytest.mark.django_db(transaction=True)
def test_the_migration_encrypts_the_secrets_stored_before_it() -> None:
    # given: the schema before encryption, and a tenant whose secret is stored in clear (jsonb)
    before, after = (
        [("tenancy", "0004_payment_instructions")],
        [("tenancy", "0005_device_cloud_secrets_encrypted")],
    )
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old_state = executor.loader.project_state(before[0])
    OldTenant = old_state.apps.get_model("tenancy", "Tenant")
    secret = generate_webhook_secret()
    OldTenant.objects.create(
        slug="legacy", name="Legacy", default_currency="EUR", timezone="UTC", device_cloud_secrets=[secret]
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT device_cloud_secrets::text FROM tenancy_tenant WHERE slug = 'legacy'")
        assert cursor.fetchone()[0] == '["%s"]' % secret
    try:
        # when
        executor = MigrationExecutor(connection)
        executor.migrate(after)
        # then (read through the model as it is at that migration: later ones add columns)
        NewTenant = executor.loader.project_state(after[0]).apps.get_model("tenancy", "Tenant")
        legacy = NewTenant.objects.get(slug="legacy")
        assert stored(legacy).startswith("gAAAAA")
        assert secret not in stored(legacy)
        assert legacy.device_cloud_secrets == [secret]
        # and back: migrating backwards decrypts into jsonb again
        executor = MigrationExecutor(connection)
        executor.migrate(before)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_typeof(device_cloud_secrets)::text, device_cloud_secrets::text FROM tenancy_tenant"
            )
            assert cursor.fetchone() == ("jsonb", '["%s"]' % secret)
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
