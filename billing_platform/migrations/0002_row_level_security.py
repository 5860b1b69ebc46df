"""Row-level security on every tenant-owned table (``billing_platform.rls``), after every app's
tables exist: a row is seen and written only under its tenant (the session setting
``tripod.tenant_id``), and with no tenant set nothing is. The application role
(``DATABASE_APP_ROLE``, ``tripod_app``) is created when missing and the login role may create it,
and is granted the rows of every table, now and of tables created later by the same owner, but owns
nothing, so the policies bind it. Partitions of ``usage_event``, which the ingestion adds month by
month, are created by ``usage_event_partition_create``: the owner's function, behind the same wall.

Tables left outside, each read before a tenant is known: tenancy's tenants, API keys and
memberships (``rls.TABLES_OUTSIDE_RLS``), and Django's and Celery beat's own tables."""

from django.conf import settings
from django.db import migrations

from billing_platform import rls

TENANT_TABLES = [
    "billing_platform_idempotencyrecord",
    "tenancy_auditlogentry",
    "customers_customer",
    "catalog_product",
    "catalog_productssp",
    "catalog_meter",
    "catalog_taxrate",
    "catalog_plan",
    "catalog_plancomponent",
    "catalog_priceversion",
    "catalog_componentprice",
    "catalog_priceoverride",
    "subscriptions_subscription",
    "subscriptions_device",
    "subscriptions_subscriptionevent",
    "subscriptions_devicecloudwebhook",
    "subscriptions_servicecharge",
    "subscriptions_subscriptionchange",
    "usage_event",  # partitioned: the policy of the parent applies to every read and write through it
    "usage_event_key",
    "usage_usagerollup",
    "usage_usagedailyrollup",
    "usage_rejectedevent",
    "usage_usagesettings",
    "invoicing_invoice",
    "invoicing_invoiceline",
    "invoicing_invoicetax",
    "invoicing_invoicenumbersequence",
    "invoicing_invoicingsettings",
    "invoicing_billrun",
    "invoicing_billruncustomer",
]

PARTITION_FUNCTION = """
CREATE OR REPLACE FUNCTION {schema}.usage_event_partition_create(month date) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    first_day date := date_trunc('month', month)::date;
    part_name text := 'usage_event_' || to_char(first_day, 'YYYY_MM');
    part text := format('%I.%I', {schema_literal}, part_name);
    tenant_rule text := {tenant_rule};
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext(part_name));
    IF to_regclass(part) IS NOT NULL THEN
        RETURN;
    END IF;
    EXECUTE format(
        'CREATE TABLE %s PARTITION OF %I.usage_event FOR VALUES FROM (%L) TO (%L)',
        part, {schema_literal}, first_day::text || ' 00:00+00', (first_day + interval '1 month')::date::text || ' 00:00+00'
    );
    -- Read through usage_event, the parent's policy applies; read directly, the partition's own.
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY', part);
    EXECUTE format('CREATE POLICY {policy} ON %s USING (%s) WITH CHECK (%s)', part, tenant_rule, tenant_rule);
END
$fn$
"""

CREATE_ROLE = """
DO $do$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {role_literal}) THEN
        BEGIN
            CREATE ROLE {role} NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;  -- created meanwhile by a migration of another database of the same server
        END;
    END IF;
    -- The login role switches to the application role on every connection (SET ROLE).
    IF NOT pg_has_role(session_user, {role_literal}, 'MEMBER') THEN
        EXECUTE format('GRANT %I TO %I', {role_literal}, session_user);
    END IF;
END
$do$
"""


def _quote(value: str) -> str:
    return '"%s"' % value.replace('"', '""')


def _literal(value: str) -> str:
    return "'%s'" % value.replace("'", "''")


def _partitions(cursor) -> list[str]:
    cursor.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'usage_event'::regclass ORDER BY c.relname"
    )
    return [name for (name,) in cursor.fetchall()]


def forwards(apps, schema_editor):
    role = rls.app_role()
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT current_schema()")
        schema_name = cursor.fetchone()[0]
        partitions = _partitions(cursor)
    schema = _quote(schema_name)
    for table in TENANT_TABLES + partitions:
        for statement in rls.enable_sql(table):
            schema_editor.execute(statement, None)
    function = PARTITION_FUNCTION.format(
        schema=schema,
        schema_literal=_literal(schema_name),
        tenant_rule=_literal(f"tenant_id = {rls.CURRENT_TENANT}"),
        policy=rls.POLICY,
    )
    schema_editor.execute(function, None)
    schema_editor.execute("REVOKE ALL ON FUNCTION usage_event_partition_create(date) FROM PUBLIC", None)
    if not role:
        return  # the login role runs the application as it is (docs/operations.md)
    r = _quote(role)
    for statement in (
        CREATE_ROLE.format(role=r, role_literal=_literal(role)),
        f"GRANT USAGE ON SCHEMA {schema} TO {r}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {r}",
        f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA {schema} TO {r}",
        # Tables and sequences that this owner creates later (new apps' migrations) are granted too.
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {r}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO {r}",
        f"GRANT EXECUTE ON FUNCTION usage_event_partition_create(date) TO {r}",
    ):
        schema_editor.execute(statement, None)


def backwards(apps, schema_editor):
    role = rls.app_role()
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT current_schema()")
        schema = _quote(cursor.fetchone()[0])
        partitions = _partitions(cursor)
    schema_editor.execute("DROP FUNCTION IF EXISTS usage_event_partition_create(date)", None)
    for table in TENANT_TABLES + partitions:
        for statement in rls.disable_sql(table):
            schema_editor.execute(statement, None)
    if not role:
        return
    r = _quote(role)
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
        if cursor.fetchone() is None:
            return
    # The role itself stays: other databases of the server may use it.
    for statement in (
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} REVOKE ALL ON TABLES FROM {r}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} REVOKE ALL ON SEQUENCES FROM {r}",
        f"REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM {r}",
        f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {schema} FROM {r}",
        f"REVOKE USAGE ON SCHEMA {schema} FROM {r}",
    ):
        schema_editor.execute(statement, None)


class Migration(migrations.Migration):
    dependencies = [
        ("billing_platform", "0001_initial"),
        ("tenancy", "0003_audit_object_id_holds_a_webhook_id"),
        ("customers", "0001_initial"),
        ("catalog", "0005_ssp_and_override_amounts_as_money"),
        ("subscriptions", "0006_device_history_index"),
        ("usage", "0004_late_event_index"),
        ("invoicing", "0004_invoice_totals_as_money"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
