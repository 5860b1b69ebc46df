"""Meta-tests on the schema: every tenant-owned table has a non-null tenant column."""

from pathlib import Path

from django.apps import AppConfig, apps
from django.conf import settings
from django.core.exceptions import FieldDoesNotExist
from django.db import models

from tenancy.models import Tenant

# Tables that are not tenant-owned, with the reason.
GLOBAL_MODELS = {
    "tenancy.Tenant",  # the tenant itself
}


def project_app_configs() -> list[AppConfig]:
    """The project's own apps: a package at the repository's root (beside manage.py), so that a new
    app is checked the day it is installed. Django's and third-party apps live elsewhere."""
    root = Path(settings.BASE_DIR).resolve()
    return [config for config in apps.get_app_configs() if Path(config.path).resolve().parent == root]


def test_every_tenant_owned_table_has_a_non_null_tenant_column() -> None:
    configs = project_app_configs()
    missing = []
    checked = 0
    for config in configs:
        # Unmanaged models count too: usage_event is created by a migration, partitioned, in raw SQL.
        for model in config.get_models():
            if model._meta.label in GLOBAL_MODELS:
                continue
            checked += 1
            try:
                field = model._meta.get_field("tenant")
            except FieldDoesNotExist:
                missing.append(model._meta.label)
                continue
            if not isinstance(field, models.ForeignKey) or field.related_model is not Tenant or field.null:
                missing.append(model._meta.label)
    assert {"tenancy", "customers", "catalog", "subscriptions", "usage", "invoicing"} <= {c.label for c in configs}
    assert checked >= 30
    assert not missing, f"tenant-owned tables without a non-null tenant FK: {missing}"
