"""``migrate`` as the login role of DATABASE_URL, which owns the tables, rather than the application
role every other connection switches to (``billing_platform.rls``). The system checks that run
before it are inside too: some read the server's features over a connection, and on a new database
the application role does not exist until this command creates it."""

from typing import Any

from django.core.management.commands import migrate
from django.db import DEFAULT_DB_ALIAS

from billing_platform.rls import schema_changes


class Command(migrate.Command):
    def execute(self, *args: Any, **options: Any) -> str | None:
        with schema_changes(using=options.get("database") or DEFAULT_DB_ALIAS):
            return super().execute(*args, **options)
