"""Monthly partitions of ``usage_event``, created when an event of a new month arrives."""

from collections.abc import Iterable
from datetime import date

from django.db import connection, transaction

from usage.errors import UsageArchived

_known: set[date] = set()


def partition_name(month: date) -> str:
    return "usage_event_%04d_%02d" % (month.year, month.month)


def ensure_partitions(months: Iterable[date]) -> None:
    """Create the partitions of these months (first days, UTC) if they do not exist yet. Runs inside
    the caller's transaction. Only the owner of ``usage_event`` may add a partition to it, and the
    application runs as a role that owns nothing: the database function
    ``usage_event_partition_create`` (``SECURITY DEFINER``, migration ``billing_platform.0002``)
    creates the month's partition for it, behind row-level security like its parent, under an
    advisory lock that keeps two writers from racing on the same month."""
    missing = sorted({date(m.year, m.month, 1) for m in months} - _known)
    if not missing:
        return
    with connection.cursor() as cursor:
        # An archived month's partition is gone on purpose (``usage.archive``): never made again
        # empty, which would hide the archive from its readers and block its restore.
        cursor.execute("SELECT month FROM usage_usagearchive WHERE month = ANY(%s) AND state <> 'restored'", [missing])
        archived = [m for (m,) in cursor.fetchall()]
        if archived:
            raise UsageArchived(
                "Events of %s cannot be stored: the month is archived."
                % ", ".join(m.strftime("%Y-%m") for m in archived)
            )
        for month in missing:
            cursor.execute("SELECT usage_event_partition_create(%s)", [month])
    # Remembered only for this process: after a rollback the next call simply checks again.
    transaction.on_commit(lambda: _known.update(missing))


def forget_known_partitions() -> None:
    """For tests, whose databases are created and dropped: forget what this process has seen."""
    _known.clear()
