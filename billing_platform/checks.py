"""A system check of the row-level security wall (``billing_platform.rls``): the role the
application runs as must be one that PostgreSQL's policies bind. Run by ``manage.py migrate`` and
``manage.py check --database default``."""

from collections.abc import Sequence
from typing import Any

from django.core.checks import CheckMessage, Error, Tags, register
from django.core.checks import Warning as CheckWarning
from django.db import DEFAULT_DB_ALIAS, connections

from billing_platform.rls import app_role, schema_changes


@register(Tags.database)
def app_role_bound_by_row_level_security(
    app_configs: Any, databases: Sequence[str] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    if not databases or DEFAULT_DB_ALIAS not in databases:
        return []
    role = app_role()
    connection = connections[DEFAULT_DB_ALIAS]
    # Read as the login role: before the first `migrate` (which creates it) the application role
    # does not exist, and a connection could not switch to it. A connection opened here never took
    # the application role: it is closed after, so that the next one opens as it.
    opened_here = connection.connection is None
    try:
        with schema_changes(), connection.cursor() as cursor:
            cursor.execute(
                "SELECT rolname, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = COALESCE(%s, session_user)",
                [role or None],
            )
            row = cursor.fetchone()
    finally:
        if opened_here:
            connection.close()
    if row is None:
        return [
            CheckWarning(
                f"The database role {role!r} (DATABASE_APP_ROLE) does not exist yet.",
                hint="`manage.py migrate` creates it when the login role may create roles; see docs/operations.md.",
                id="tripod.W001",
            )
        ]
    name, superuser, bypasses = row
    if superuser or bypasses:
        return [
            Error(
                f"The application runs as the database role {name!r}, which "
                + ("is a superuser" if superuser else "has BYPASSRLS")
                + ": row-level security does not bind it, so a query that forgets its tenant filter "
                "reads every tenant's rows.",
                hint="Set DATABASE_APP_ROLE to a role without those attributes (tripod_app); see docs/operations.md.",
                id="tripod.E001",
            )
        ]
    return []
