"""Row-level security: PostgreSQL's own tenant filter, a second wall behind the application's.

Every tenant-owned table carries the policy ``tenant_isolation``: a row is seen, and may be written,
only when its ``tenant_id`` is the tenant named by the session setting ``tripod.tenant_id``. With no
tenant set, no row is seen and none can be written. The application runs as a role that the policy
binds (``settings.DATABASE_APP_ROLE``, ``tripod_app``: no superuser, no BYPASSRLS, owner of nothing),
so a query that forgets its tenant filter returns the current tenant's rows, or none.

The tenant is set
- per request: ``TenantScopeMiddleware`` opens a scope with no tenant for the whole request, and the
  code that learns the tenant sets it with ``tenant_activate`` (the API key's authentication, the
  device-cloud webhook's slug, the back-office's membership);
- per task: ``billing_platform.tasks.TenantTask`` runs under its ``tenant_id`` argument;
- anywhere else (a management command, a shell, a data migration): ``with tenant_context(tenant):``.

The tables read before a tenant is known stay outside the wall (``TABLES_OUTSIDE_RLS``), and so do
Django's and Celery beat's own tables, which hold no tenant data.

The settings are session settings (``set_config(..., false)``), set at the start of each scope and
restored at its end: a connection that Django reuses (``CONN_MAX_AGE``) starts every request and
every task from a known state. They are transactional like any setting: a rolled-back transaction
also rolls back what was set inside it. A transaction-mode pooler (PgBouncer ``pool_mode =
transaction``) would hand the settings of one request to another; use session mode, or none.

A switch to what the connection already holds costs no round trip. After a switch that committed
(the connection idle, outside any transaction, so no rollback can undo it) the connection remembers
what it set (``tripod_switched``, with the driver's connection it was set on); a later switch to the
same role and tenant, again outside any transaction, is then known to change nothing. Inside a
transaction every switch is made, and forgets what was remembered. So a request's first query no
longer sets the role and the empty tenant that the previous request's end put back, and a view that
activates the tenant its session already set makes no second statement.
"""

import re
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import NO_DB_ALIAS, BaseDatabaseWrapper
from django.db.migrations.operations import RunSQL
from psycopg.pq import TransactionStatus

TENANT_SETTING = "tripod.tenant_id"
POLICY = "tenant_isolation"
# The current tenant as the policies read it: NULL when none is set (an unset setting, or '' once
# reset), and a NULL matches no row. As a scalar subquery it is computed once per statement (an
# InitPlan), not once per row, and compared like a parameter: the (tenant_id, ...) indexes serve it,
# and next to the query's own ``tenant_id = X`` it is a single one-time check.
CURRENT_TENANT = f"(SELECT NULLIF(current_setting('{TENANT_SETTING}', true), '')::uuid)"

# Tables with a tenant column that stay outside the wall, and why: each is read to find the tenant.
TABLES_OUTSIDE_RLS = {
    "tenancy_apikey": "an API request's key is looked up by its hash, before its tenant is known",
    "tenancy_membership": "a staff user's memberships are read at login, before a tenant is chosen",
    "tenancy_invitation": "an invitation is looked up by its token's hash when its link is opened, before any tenant",
    "customers_portallink": "a portal link is looked up by its token's hash when it is followed, before any tenant",
    "customers_portalsession": "a portal request's session is found by its cookie's hash, before its tenant is known",
    "partners_partnersession": "a partner request's session is found by its cookie's hash, before its tenant is known",
}

ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

# Connections switch to the application role as they open. The test suite turns this off: test
# bodies run as the session user (a superuser) and create data for several tenants, while requests,
# tasks and ``tenant_context`` blocks inside them still switch to the application role.
set_role_on_connect = True
# Set while ``manage.py migrate`` runs: its connections keep the login role, which owns the tables.
_schema_changes = False


def app_role() -> str:
    """The role the application runs as; '' when the connection's login role is used as it is."""
    role: str = settings.DATABASE_APP_ROLE
    if role and not ROLE_NAME.match(role):
        raise ValueError(f"DATABASE_APP_ROLE must be a lower-case PostgreSQL identifier, not {role!r}.")
    return role


def tenant_id_text(tenant: Any) -> str:
    """The setting's value for a tenant, its primary key or its id as text ('' for none)."""
    if tenant is None:
        return ""
    value = getattr(tenant, "pk", tenant)
    return str(value if isinstance(value, uuid.UUID) else uuid.UUID(str(value)))


# Sets the role (NULL keeps it; 'none' is the login role) and the tenant in one statement, and
# returns the previous ones: the subquery reads them before anything is set.
SWITCH_SQL = (
    "SELECT previous.role, previous.tenant,"
    " set_config('role', COALESCE(%s, previous.role), false),"
    f" set_config('{TENANT_SETTING}', %s, false)"
    " FROM (SELECT current_setting('role') AS role,"
    f" COALESCE(current_setting('{TENANT_SETTING}', true), '') AS tenant OFFSET 0) AS previous"
)


def _idle(raw: Any) -> bool:
    """Whether the driver's connection is outside any transaction (what it set has committed)."""
    return raw is not None and raw.info.transaction_status == TransactionStatus.IDLE


def _known(connection: BaseDatabaseWrapper) -> tuple[str, str] | None:
    """The role and tenant the connection is known to hold now: set by a switch that committed, on
    this very driver connection, with no transaction open since. ``None`` when not known."""
    known = getattr(connection, "tripod_switched", None)
    raw = connection.connection
    if known is None or known[0] is not raw or not _idle(raw):
        return None
    return known[1], known[2]


def _remember(connection: BaseDatabaseWrapper, raw: Any, role: str, tenant: str) -> None:
    """Remember what a switch set if it committed (the connection idle after it), else forget."""
    connection.tripod_switched = (raw, role, tenant) if _idle(raw) else None  # type: ignore[attr-defined]


def _switch(connection: BaseDatabaseWrapper, *, role: str | None, tenant: str) -> tuple[str, str]:
    """Set the role (``None`` keeps it) and the tenant; return the previous role and tenant."""
    known = _known(connection)
    if known is not None and known == (role or known[0], tenant):
        _record_tenant(connection, tenant, previous=known[1])
        return known
    with connection.cursor() as cursor:
        cursor.execute(SWITCH_SQL, [role, tenant])
        row = cursor.fetchone()
    assert row is not None
    _remember(connection, connection.connection, role or row[0], tenant)
    _record_tenant(connection, tenant, previous=row[1])
    return row[0], row[1]


def _record_tenant(connection: BaseDatabaseWrapper, tenant: str, *, previous: str) -> None:
    """Remember on the connection which tenants its setting may hold now (``tripod_tenants``), for
    ``billing_platform.generations``: the one just set, and, inside a transaction, the ones before
    too (a rollback puts the earlier setting back without telling Python)."""
    if connection.in_atomic_block:
        known = getattr(connection, "tripod_tenants", None) or {previous}
        connection.tripod_tenants = {*known, tenant}  # type: ignore[attr-defined]
    else:
        connection.tripod_tenants = {tenant}  # type: ignore[attr-defined]


def _restorable(connection: BaseDatabaseWrapper) -> bool:
    """Whether the settings can be put back now. Not in a failed transaction: no statement runs there,
    and the rollback that must follow puts back the settings of before the block anyway (a block
    opened inside a transaction or savepoint is left before it ends, so it started after it)."""
    if connection.in_atomic_block and connection.needs_rollback:
        return False
    raw = connection.connection
    return raw is None or raw.info.transaction_status != TransactionStatus.INERROR


@contextmanager
def _scope(role: str | None, tenant: str, using: str) -> Iterator[None]:
    connection = connections[using]
    previous_role, previous_tenant = _switch(connection, role=role, tenant=tenant)
    try:
        yield
    finally:
        if connection.connection is not None and _restorable(connection):
            _switch(connection, role=previous_role, tenant=previous_tenant)


def tenant_context(tenant: Any, *, using: str = DEFAULT_DB_ALIAS) -> AbstractContextManager[None]:
    """Run the block as the application role for ``tenant`` (a ``Tenant``, its id, or ``None`` for no
    tenant: tenant-owned tables then read empty and refuse writes). What was set before is put back
    at the end, so blocks nest."""
    return _scope(app_role() or None, tenant_id_text(tenant), using)


class _FirstQuerySwitch:
    """An execute wrapper that switches the role and tenant just before the connection's first
    query in the block, and remembers what was there before."""

    def __init__(self, role: str | None, tenant: str) -> None:
        self.role, self.tenant = role, tenant
        self.previous: tuple[str, str] | None = None

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: dict[str, Any]) -> Any:
        if self.previous is None:
            connection = context["connection"]
            known = _known(connection)
            if known is not None and known == (self.role or known[0], self.tenant):
                self.previous = known  # already so: the previous request's end put it back
            else:
                raw = context["cursor"].cursor  # the driver's cursor: not through this wrapper again
                raw.execute(SWITCH_SQL, [self.role, self.tenant])
                row = raw.fetchone()
                self.previous = (row[0], row[1])
                _remember(connection, connection.connection, self.role or row[0], self.tenant)
            _record_tenant(connection, self.tenant, previous=self.previous[1])
        return execute(sql, params, many, context)


@contextmanager
def request_scope(*, using: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """``tenant_context(None)`` for a request, switched at its first query rather than at once: a
    request that reads nothing (a static page, the API schema) costs no query and opens no
    connection."""
    connection = connections[using]
    switch = _FirstQuerySwitch(app_role() or None, "")
    try:
        with connection.execute_wrapper(switch):
            yield
    finally:
        if switch.previous is not None and connection.connection is not None and _restorable(connection):
            _switch(connection, role=switch.previous[0], tenant=switch.previous[1])


def tenant_activate(tenant: Any, *, using: str = DEFAULT_DB_ALIAS) -> None:
    """Set the tenant (and the application role) for the rest of the current scope: a request, from
    the moment its tenant is known. The scope puts back what was there before when it ends."""
    _switch(connections[using], role=app_role() or None, tenant=tenant_id_text(tenant))


def current_tenant_id(*, using: str = DEFAULT_DB_ALIAS) -> str:
    """The tenant the connection's policies see now, '' for none."""
    with connections[using].cursor() as cursor:
        cursor.execute(f"SELECT COALESCE(current_setting('{TENANT_SETTING}', true), '')")
        row = cursor.fetchone()
    assert row is not None
    return str(row[0])


@contextmanager
def schema_changes(*, using: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """Run the block as the connection's login role, which owns the tables: ``manage.py migrate``.
    Connections opened meanwhile keep the login role too."""
    global _schema_changes
    before = _schema_changes
    _schema_changes = True
    try:
        with _scope("none", "", using):
            yield
    finally:
        _schema_changes = before


def connection_created(sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    """A new connection switches to the application role at once (``connection_created``), so that
    nothing runs with the login role's rights by accident. A role that cannot be taken stops the
    connection: running on as the login role would leave the wall down.

    The statement goes to the driver's connection, past the execute wrappers: a connection opened by
    a request's first query would otherwise pass it through that request's first-query switch,
    which would then take the login role for what to put back at the request's end, and leave the
    kept connection as the login role between requests. Made in autocommit, it is remembered: the
    request's own switch to the application role and no tenant then makes no statement."""
    connection.tripod_switched = None  # type: ignore[attr-defined]  # a new session: nothing known yet
    role = app_role()
    if not role or not set_role_on_connect or _schema_changes:
        return
    if connection.vendor != "postgresql" or connection.alias == NO_DB_ALIAS:
        return
    raw = connection.connection
    try:
        raw.execute("SELECT set_config('role', %s, false)", [role])
        _remember(connection, raw, role, "")
    except Exception as exc:
        connection.close()
        raise RuntimeError(
            f"Cannot switch to the database role {role!r} (DATABASE_APP_ROLE): {exc}. `manage.py migrate` "
            "creates it when the login role may create roles; see docs/operations.md."
        ) from exc


# SQL for migrations ---------------------------------------------------------------------------------


def _table(name: str) -> str:
    if not re.match(r"^[a-z_][a-z0-9_]*$", name):
        raise ValueError(f"Not a plain table name: {name!r}")
    return f'"{name}"'


def enable_sql(table: str) -> list[str]:
    """Put ``table`` (with a ``tenant_id`` column) behind the wall. FORCE binds its owner too."""
    t = _table(table)
    condition = f"tenant_id = {CURRENT_TENANT}"
    return [
        f"ALTER TABLE {t} ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY",
        f"CREATE POLICY {POLICY} ON {t} USING ({condition}) WITH CHECK ({condition})",
    ]


def disable_sql(table: str) -> list[str]:
    t = _table(table)
    return [
        f"DROP POLICY IF EXISTS {POLICY} ON {t}",
        f"ALTER TABLE {t} NO FORCE ROW LEVEL SECURITY, DISABLE ROW LEVEL SECURITY",
    ]


class TenantRowLevelSecurity(RunSQL):
    """The migration operation that puts a new tenant-owned table behind the wall, placed after the
    operation that creates it: ``TenantRowLevelSecurity("payments_payment")``. Reversible."""

    def __init__(self, table: str) -> None:
        self.table = table
        super().__init__(tuple(enable_sql(table)), tuple(disable_sql(table)))

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        return (self.__class__.__qualname__, [self.table], {})

    def describe(self) -> str:
        return f"Row-level security on {self.table}"
