"""Device-cloud secrets are encrypted at rest: the jsonb column becomes text holding one Fernet
token per tenant (billing_platform.encryption, keys from TRIPOD_ENCRYPTION_KEYS), and the secrets
already stored are encrypted. Reversible: going back decrypts them into jsonb again."""

import json

from django.db import migrations

import billing_platform.encryption


def _rows(schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT id, device_cloud_secrets FROM tenancy_tenant")
        return cursor.fetchall()


def encrypt_secrets(apps, schema_editor):
    # After the AlterField the column holds the jsonb's text, e.g. '["whsec_…"]'; a token never
    # starts with "[", so a re-run leaves encrypted rows alone.
    updates = [
        (billing_platform.encryption.encrypt(json.dumps(json.loads(value), separators=(",", ":"))), pk)
        for pk, value in _rows(schema_editor)
        if value is not None and value.lstrip().startswith("[")
    ]
    with schema_editor.connection.cursor() as cursor:
        cursor.executemany("UPDATE tenancy_tenant SET device_cloud_secrets = %s WHERE id = %s", updates)


def decrypt_secrets(apps, schema_editor):
    updates = [
        (billing_platform.encryption.decrypt(value), pk)
        for pk, value in _rows(schema_editor)
        if value is not None and not value.lstrip().startswith("[")
    ]
    with schema_editor.connection.cursor() as cursor:
        cursor.executemany("UPDATE tenancy_tenant SET device_cloud_secrets = %s WHERE id = %s", updates)


class Migration(migrations.Migration):

    dependencies = [
        ('tenancy', '0004_payment_instructions'),
    ]

    operations = [
        migrations.AlterField(
            model_name='tenant',
            name='device_cloud_secrets',
            field=billing_platform.encryption.EncryptedJSONField(blank=True, default=list),
        ),
        migrations.RunPython(encrypt_secrets, decrypt_secrets),
    ]
