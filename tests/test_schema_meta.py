"""Meta-tests on the schema: every tenant-owned table has a non-null tenant column, and is behind
row-level security (``billing_platform.rls``) unless it is one of the few read to find the tenant."""

from pathlib import Path

import pytest
from django.apps import AppConfig, apps
from django.conf import settings
from django.core.exceptions import FieldDoesNotExist
from django.db import connection, models

from billing_platform import rls
from tenancy.models import Tenant

# Tables that are not tenant-owned, with the reason.
GLOBAL_MODELS = {
    "tenancy.Tenant",  # the tenant itself
    "usage.UsageArchive",  # a month of raw events archived: a partition holds every tenant's events
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


def tenant_tables() -> dict[str, tuple[bool, bool, str | None, str | None]]:
    """Every table (partitions included) of the schema with a ``tenant_id`` column: whether row-level
    security is enabled and forced, and the tenant policy's USING and WITH CHECK expressions."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
                   pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid)
            FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = current_schema()
            JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
            LEFT JOIN pg_policy p ON p.polrelid = c.oid AND p.polname = %s AND p.polcmd = '*' AND p.polpermissive
            WHERE c.relkind IN ('r', 'p')
            """,
            [rls.POLICY],
        )
        return {name: (enabled, forced, using, check) for name, enabled, forced, using, check in cursor.fetchall()}


@pytest.mark.django_db
def test_every_table_with_a_tenant_column_is_behind_row_level_security() -> None:
    tables = tenant_tables()
    # as PostgreSQL prints the policy's expression back
    rule = (
        "(tenant_id = ( SELECT (NULLIF(current_setting('tripod.tenant_id'::text, true), ''::text))::uuid"
        ' AS "nullif"))'
    )
    behind = {name: state for name, state in tables.items() if name not in rls.TABLES_OUTSIDE_RLS}
    assert len(behind) >= 31
    unprotected = sorted(name for name, state in behind.items() if state != (True, True, rule, rule))
    assert not unprotected, (
        f"tables with a tenant_id but without the tenant policy: {unprotected}; add "
        "billing_platform.rls.TenantRowLevelSecurity(<table>) to the migration that creates them"
    )
    # the tables left outside are the few read before a tenant is known, and nothing else
    assert {name: tables[name][:2] for name in rls.TABLES_OUTSIDE_RLS} == {
        "tenancy_apikey": (False, False),
        "tenancy_membership": (False, False),
        "tenancy_invitation": (False, False),
        "customers_portallink": (False, False),
        "customers_portalsession": (False, False),
        "partners_partnersession": (False, False),
    }


@pytest.mark.django_db
def test_every_model_with_a_tenant_is_behind_row_level_security() -> None:
    tables = tenant_tables()
    missing = []
    checked = 0
    for config in project_app_configs():
        for model in config.get_models():
            if model._meta.label in GLOBAL_MODELS or model._meta.db_table in rls.TABLES_OUTSIDE_RLS:
                continue
            checked += 1
            if tables.get(model._meta.db_table, (False, False))[:2] != (True, True):
                missing.append(model._meta.label)
    assert checked >= 30
    assert not missing, f"tenant-owned models whose table is not behind row-level security: {missing}"


@pytest.mark.django_db
def test_the_migration_operation_puts_a_new_table_behind_the_wall_and_takes_it_out_again() -> None:
    operation = rls.TenantRowLevelSecurity("rls_probe")
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE rls_probe (id bigint PRIMARY KEY, tenant_id uuid NOT NULL)")
        for statement in rls.enable_sql("rls_probe"):
            cursor.execute(statement)
        assert tenant_tables()["rls_probe"][:2] == (True, True)
        for statement in rls.disable_sql("rls_probe"):
            cursor.execute(statement)
        assert tenant_tables()["rls_probe"] == (False, False, None, None)
    assert (operation.sql, operation.reverse_sql) == (
        tuple(rls.enable_sql("rls_probe")),
        tuple(rls.disable_sql("rls_probe")),
    )
    assert operation.deconstruct() == ("TenantRowLevelSecurity", ["rls_probe"], {})
