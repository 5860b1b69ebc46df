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


# The migration under test, unapplied and applied again on its own. Django's own plan back to 0004
# would also unapply the 30 migrations (of every app) that come after it, and apply them again, each
# rendering the models of the whole project (about 40 s); none of them touches this column.
MIGRATION = ("tenancy", "0005_device_cloud_secrets_encrypted")


def _migrate(*, backwards: bool) -> Any:
    """Unapply (``backwards``) or apply the migration alone; the state of the models after it."""
    executor = MigrationExecutor(connection)
    migration = executor.loader.graph.nodes[MIGRATION]
    return executor.migrate([MIGRATION], plan=[(migration, backwards)])


@pytest.mark.django_db(transaction=True)
def test_the_migration_encrypts_the_secrets_stored_before_it() -> None:
    # given: the column as it was before encryption (jsonb), and a tenant whose secret is stored in
    # it in clear (written through the field as it was: the model as of 0004)
    Tenant.objects.create(slug="legacy", name="Legacy", default_currency="EUR", timezone="UTC")
    secret = generate_webhook_secret()
    try:
        _migrate(backwards=True)
        OldTenant = (
            MigrationExecutor(connection)
            .loader.project_state(("tenancy", "0004_payment_instructions"))
            .apps.get_model("tenancy", "Tenant")
        )
        assert OldTenant.objects.filter(slug="legacy").update(device_cloud_secrets=[secret]) == 1
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_typeof(device_cloud_secrets)::text, device_cloud_secrets::text FROM tenancy_tenant"
            )
            assert cursor.fetchone() == ("jsonb", '["%s"]' % secret)
        # when
        after = _migrate(backwards=False)
        # then (read through the model as it is at that migration: later ones add columns)
        NewTenant = after.apps.get_model("tenancy", "Tenant")
        legacy = NewTenant.objects.get(slug="legacy")
        assert stored(legacy).startswith("gAAAAA")
        assert secret not in stored(legacy)
        assert legacy.device_cloud_secrets == [secret]
        assert Tenant.objects.get(slug="legacy").device_cloud_secrets == [secret]
        # and back: migrating backwards decrypts into jsonb again
        _migrate(backwards=True)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_typeof(device_cloud_secrets)::text, device_cloud_secrets::text FROM tenancy_tenant"
            )
            assert cursor.fetchone() == ("jsonb", '["%s"]' % secret)
    finally:
        # Applied again (migrating to the leaf nodes would not: they are applied, and Django does
        # not look at what comes before them).
        if MIGRATION not in MigrationExecutor(connection).loader.applied_migrations:
            _migrate(backwards=False)
