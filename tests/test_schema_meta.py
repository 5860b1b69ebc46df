"""Meta-tests on the schema: every tenant-owned table has a non-null tenant column."""

from django.apps import apps
from django.db import models

from tenancy.models import Tenant

PROJECT_APPS = {"billing_platform", "tenancy", "customers", "catalog", "subscriptions", "backoffice"}
# Tables that are not tenant-owned, with the reason.
GLOBAL_MODELS = {
    "tenancy.Tenant",  # the tenant itself
}


def test_every_tenant_owned_table_has_a_non_null_tenant_column() -> None:
    missing = []
    checked = 0
    for model in apps.get_models():
        label = f"{model._meta.app_label}.{model.__name__}"
        if model._meta.app_label not in PROJECT_APPS or label in GLOBAL_MODELS or not model._meta.managed:
            continue
        checked += 1
        try:
            field = model._meta.get_field("tenant")
        except Exception:
            missing.append(label)
            continue
        if not isinstance(field, models.ForeignKey) or field.related_model is not Tenant or field.null:
            missing.append(label)
    assert checked >= 4
    assert not missing, f"tenant-owned tables without a non-null tenant FK: {missing}"
