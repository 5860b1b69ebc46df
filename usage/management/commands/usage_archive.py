"""``manage.py usage_archive --retention-months 13 --to /backups/tripod/usage``: archive the raw usage
events of every month older than the retention (``usage.archive``; docs/operations.md)."""

from datetime import date
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from billing_platform.errors import DomainError
from usage.archive import month_refusals, months_before, usage_month_archive


def month_argument(value: str) -> date:
    try:
        year, month = value.split("-")
        return date(int(year), int(month), 1)
    except ValueError as exc:
        raise CommandError("A month is written YYYY-MM, not %r." % value) from exc


class Command(BaseCommand):
    help = (
        "Archive the raw usage events of the months older than --retention-months (or of --month): "
        "each month's partition is detached, written to DIR as CSV (gzip) with a manifest, and dropped. "
        "A month not yet fully invoiced, or whose events can still arrive, is refused."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--retention-months", type=int, help="keep this many whole months before the current one")
        which.add_argument("--month", help="one month, YYYY-MM")
        parser.add_argument("--to", required=True, type=Path, help="the folder the archive files go to")
        parser.add_argument(
            "--no-concurrently",
            action="store_true",
            help="detach with a lock that blocks ingestion for a moment, instead of DETACH ... CONCURRENTLY",
        )
        parser.add_argument("--dry-run", action="store_true", help="say what would be archived or refused, and why")

    def handle(self, *args: Any, **options: Any) -> None:
        at = timezone.now()
        if options["month"]:
            months = [month_argument(options["month"])]
        else:
            if options["retention_months"] < 1:
                raise CommandError("--retention-months is at least 1.")
            months = months_before(retention_months=options["retention_months"], at=at)
        if not months:
            self.stdout.write("No month to archive.")
            return
        failed = 0
        for month in months:
            label = month.strftime("%Y-%m")
            if options["dry_run"]:
                reasons = month_refusals(month=month, at=at)
                self.stdout.write(
                    "%s: %s" % (label, "refused: " + "; ".join(reasons) if reasons else "would be archived")
                )
                continue
            try:
                archived = usage_month_archive(
                    month=month, folder=options["to"], at=at, concurrently=not options["no_concurrently"]
                )
            except DomainError as exc:
                failed += 1
                self.stderr.write("%s: %s" % (label, exc.detail))
                continue
            self.stdout.write(
                "%s: %d events archived to %s (sha256 %s)" % (label, archived.rows, archived.path, archived.sha256)
            )
        if failed:
            raise CommandError("%d month(s) not archived." % failed)
