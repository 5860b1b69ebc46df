"""Monthly partitions of ``usage_event``, created when an event of a new month arrives."""

from collections.abc import Iterable
from datetime import date

from django.db import connection, transaction

_known: set[date] = set()


def partition_name(month: date) -> str:
    return "usage_event_%04d_%02d" % (month.year, month.month)


def ensure_partitions(months: Iterable[date]) -> None:
    """Create the partitions of these months (first days, UTC) if they do not exist yet. Runs inside
    the caller's transaction; an advisory lock keeps two writers from racing on the same month."""
    missing = sorted({date(m.year, m.month, 1) for m in months} - _known)
    if not missing:
        return
    with connection.cursor() as cursor:
        for month in missing:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [partition_name(month)])
            following = date(month.year + (month.month == 12), month.month % 12 + 1, 1)
            cursor.execute(
                "CREATE TABLE IF NOT EXISTS \"%s\" PARTITION OF usage_event FOR VALUES FROM ('%s') TO ('%s')"
                % (partition_name(month), month.isoformat() + " 00:00+00", following.isoformat() + " 00:00+00")
            )
    # Remembered only for this process: after a rollback the next call simply checks again.
    transaction.on_commit(lambda: _known.update(missing))


def forget_known_partitions() -> None:
    """For tests, whose databases are created and dropped: forget what this process has seen."""
    _known.clear()
