"""``manage.py usage_restore 2026-03 --from /backups/tripod/usage``: put an archived month's raw usage
events back (``usage.archive``; docs/operations.md)."""

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from billing_platform.errors import DomainError
from usage.archive import usage_month_restore
from usage.management.commands.usage_archive import month_argument


class Command(BaseCommand):
    help = (
        "Restore an archived month of raw usage events from its files: loaded, checked against the "
        "manifest (rows, SHA-256) and attached again as the month's partition, in one transaction."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("month", help="YYYY-MM")
        parser.add_argument("--from", dest="folder", required=True, type=Path, help="the folder of the archive files")

    def handle(self, *args: Any, **options: Any) -> None:
        month = month_argument(options["month"])
        try:
            rows = usage_month_restore(month=month, folder=options["folder"], at=timezone.now())
        except DomainError as exc:
            raise CommandError(exc.detail) from exc
        self.stdout.write("%s: %d events restored." % (month.strftime("%Y-%m"), rows))
