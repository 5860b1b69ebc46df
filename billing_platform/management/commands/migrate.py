"""``migrate`` as the login role of DATABASE_URL, which owns the tables, rather than the application
role every other connection switches to (``billing_platform.rls``)."""

from typing import Any

from django.core.management.commands import migrate
from django.db import DEFAULT_DB_ALIAS

from billing_platform.rls import schema_changes


class Command(migrate.Command):
    def handle(self, *args: Any, **options: Any) -> None:
        with schema_changes(using=options.get("database") or DEFAULT_DB_ALIAS):
            super().handle(*args, **options)
