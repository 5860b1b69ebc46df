"""Old months of raw events out of PostgreSQL and back: ``manage.py usage_archive`` and
``usage_restore`` (docs/operations.md, docs/scaling.md).

``usage_event`` is partitioned by UTC month (``usage.partitions``). Billing and current usage read
the rollups, which stay; raw events are read again only for a period that received late events
(bill runs), for ``unique_count`` meters and windows off a 15-minute edge, the usage statistics and
the raw-event export. A month may be archived once none of them can need it for billing:

- every tenant's maximum event age has passed since the month's end (no event of it can still be
  accepted, so no late event can make a bill run re-measure it), and at least ``MIN_AGE``;
- every subscription with usage in the month has had all of it invoiced: the usage lines of its
  finalized (or paid) invoices cover the span of its rollups in the month, and no draft invoice has
  a line in the month.

Archiving a month detaches its partition (``DETACH PARTITION ... CONCURRENTLY`` by default: readers
and ingestion of the other months are not blocked), exports it with ``COPY ... TO STDOUT`` as CSV
into ``usage_event_YYYY_MM.csv.gz`` with a manifest (``usage_event_YYYY_MM.manifest.json``: rows,
SHA-256 of the uncompressed CSV, columns, bounds), makes the file, the manifest and their folder
durable (``fsync``), reads the file back from disk to check its SHA-256 and row count against the
manifest and the table, and only then drops the table. Each run holds a PostgreSQL advisory lock on
the month, so a second run of the same month is refused while the first one works. The
``UsageArchive`` row records it; a run stopped halfway picks up where it stopped. Restoring loads
the file into a new table in one transaction, checks the checksum and the row count against the
manifest, puts the table behind row-level security and attaches it as the month's partition.

An archived month's raw events are gone from the database, so a raw-event reader asked for it
raises ``UsageArchived`` (409) rather than answer 0: ``raw_events_check``. Ingestion never creates
its partition again (``usage.partitions.ensure_partitions``).
"""

import csv
import gzip
import hashlib
import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from billing_platform import rls
from billing_platform.errors import Conflict
from tenancy.models import Tenant
from usage.errors import ArchiveCorrupt, MonthNotArchivable, UsageArchived
from usage.models import UsageArchive, UsageArchiveState, UsageSettings
from usage.partitions import partition_name

logger = logging.getLogger(__name__)

COLUMNS = (
    "id",
    "tenant_id",
    "transaction_id",
    "meter_id",
    "subscription_id",
    "device_id",
    "timestamp",
    "value",
    "properties",
    "time_band",
    "received_at",
    "late",
)
# No month that ended less than this long ago is ever archived, so the raw-event readers look for
# archived months only for periods that start before it: current usage and bill runs never do.
MIN_AGE = timedelta(days=62)
DEFAULT_MAX_EVENT_AGE_DAYS = 62  # a tenant without usage settings has the model's default
CHUNK = 1 << 20


@dataclass(frozen=True)
class ArchivedMonth:
    month: date
    rows: int
    sha256: str
    path: Path


def month_first(value: date) -> date:
    return date(value.year, value.month, 1)


def _next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def month_bounds(month: date) -> tuple[datetime, datetime]:
    """The partition's bounds: UTC midnights of the month's first day and of the next month's."""
    start = datetime(month.year, month.month, 1, tzinfo=UTC)
    end = _next_month(month)
    return start, datetime(end.year, end.month, 1, tzinfo=UTC)


def file_paths(folder: Path, month: date) -> tuple[Path, Path]:
    """The archive's data file and manifest in ``folder``."""
    name = partition_name(month)
    return folder / f"{name}.csv.gz", folder / f"{name}.manifest.json"


# --- Which months ----------------------------------------------------------------------------------


def partition_months() -> dict[date, bool]:
    """The months with a partition, attached or being detached (True: a detach left pending)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, i.inhdetachpending FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'usage_event'::regclass"
        )
        rows = cursor.fetchall()
    months = {}
    for name, pending in rows:
        year, month = name.removeprefix("usage_event_").split("_")
        months[date(int(year), int(month), 1)] = bool(pending)
    return months


def months_before(*, retention_months: int, at: datetime) -> list[date]:
    """The months with a partition that ended more than ``retention_months`` whole months before the
    month of ``at`` (UTC): retention 12 in June 2027 gives May 2026 and older."""
    today = at.astimezone(UTC).date()
    index = today.year * 12 + today.month - 1 - retention_months
    limit = date(index // 12, index % 12 + 1, 1)
    return sorted(m for m in partition_months() if m < limit)


UNBILLED_SQL = """
WITH used AS (
    SELECT subscription_id, min(bucket) AS first, max(bucket) + interval '15 minutes' AS last
    FROM usage_usagerollup
    WHERE tenant_id = %(tenant)s AND bucket >= %(start)s AND bucket < %(end)s
    GROUP BY subscription_id
), billed AS (
    SELECT l.subscription_id, range_agg(tstzrange(l.period_start, l.period_end)) AS periods
    FROM invoicing_invoiceline l JOIN invoicing_invoice i ON i.id = l.invoice_id
    WHERE l.tenant_id = %(tenant)s AND l.type = 'usage' AND i.kind = 'invoice' AND i.status IN ('finalized', 'paid')
      AND l.subscription_id IN (SELECT subscription_id FROM used)
      AND l.period_start < %(end)s AND l.period_end > %(start)s
    GROUP BY l.subscription_id
)
SELECT count(*) FROM used u LEFT JOIN billed b USING (subscription_id)
WHERE b.periods IS NULL OR NOT b.periods @> tstzrange(u.first, u.last)
"""
# Late events billed as adjustments by a bill run after they arrived: one stored after the last
# finalized invoice with usage of its subscription is still to bill.
LATE_UNBILLED_SQL = """
SELECT count(DISTINCT e.subscription_id) FROM usage_event e
WHERE e.late AND e.tenant_id = %(tenant)s AND e."timestamp" >= %(start)s AND e."timestamp" < %(end)s
  AND NOT EXISTS (
    SELECT FROM invoicing_invoiceline l JOIN invoicing_invoice i ON i.id = l.invoice_id
    WHERE l.subscription_id = e.subscription_id AND l.type = 'usage' AND i.kind = 'invoice'
      AND i.status IN ('finalized', 'paid') AND i.finalized_at >= e.received_at
  )
"""
DRAFTS_SQL = """
SELECT count(DISTINCT i.id) FROM invoicing_invoice i JOIN invoicing_invoiceline l ON l.invoice_id = i.id
WHERE i.tenant_id = %(tenant)s AND i.status = 'draft' AND l.period_start < %(end)s AND l.period_end > %(start)s
"""


def month_refusals(*, month: date, at: datetime) -> list[str]:
    """Why ``month`` may not be archived at ``at`` (empty: it may). Reads each tenant's rows under
    its row-level security."""
    start, end = month_bounds(month)
    reasons = []
    if end > at - MIN_AGE:
        reasons.append("it ended less than %d days ago" % MIN_AGE.days)
    for tenant in Tenant.objects.order_by("slug"):
        with rls.tenant_context(tenant):
            settings = UsageSettings.objects.filter(tenant=tenant).first()
            days = settings.max_event_age_days if settings else DEFAULT_MAX_EVENT_AGE_DAYS
            params: dict[str, Any] = {"tenant": tenant.pk, "start": start, "end": end}
            with connection.cursor() as cursor:
                cursor.execute(UNBILLED_SQL, params)
                unbilled = cursor.fetchone()[0]
                cursor.execute(LATE_UNBILLED_SQL, params)
                unbilled += cursor.fetchone()[0]
                cursor.execute(DRAFTS_SQL, params)
                drafts = cursor.fetchone()[0]
        if end + timedelta(days=days) > at:
            reasons.append("%s still accepts its events (maximum event age %d days)" % (tenant.slug, days))
        if unbilled:
            reasons.append("%s: %d subscription(s) with usage not yet on a finalized invoice" % (tenant.slug, unbilled))
        if drafts:
            reasons.append("%s: %d draft invoice(s) with lines in the month" % (tenant.slug, drafts))
    return reasons


# --- Archiving -------------------------------------------------------------------------------------


def _execute(sql: str, params: Any = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _table_exists(name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
        return bool(cursor.fetchone()[0])


# The first key of the month's advisory lock (the second is the month): "uarc".
LOCK_CLASS = 0x75617263


@contextmanager
def _month_lock(month: date) -> Iterator[None]:
    """Hold the session-level advisory lock of ``month`` for the block; refused at once
    (``MonthNotArchivable``) while another session holds it: two runs of a month would both take
    the other's half-done state for their own."""
    key = [LOCK_CLASS, month.year * 12 + month.month - 1]
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", key)
        if not cursor.fetchone()[0]:
            raise MonthNotArchivable(
                "Another archive or restore of %s is running: try again once it has finished." % month.strftime("%Y-%m")
            )
    try:
        yield
    finally:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", key)
        except DatabaseError:
            # A broken connection has let go of its locks; an aborted transaction must not hide the
            # error that aborted it (the lock goes with the session).
            logger.warning("usage month %s: advisory lock not released", month)


def _fsync_dir(folder: Path) -> None:
    """Make the folder's entries (a file renamed into it) durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _temp_path(path: Path) -> Path:
    """A name of this process's own next to ``path``: a run never writes over another's file."""
    return path.with_name("%s.%d.part" % (path.name, os.getpid()))


def _export(table: str, data_path: Path) -> tuple[int, str]:
    """``COPY`` the table as CSV into the gzip file, written under a temporary name, synced to disk
    and renamed into place; the table's row count and the SHA-256 of the CSV as streamed."""
    digest = hashlib.sha256()
    tmp = _temp_path(data_path)
    columns = ", ".join('"%s"' % c for c in COLUMNS)
    try:
        with connection.cursor() as cursor, open(tmp, "wb") as raw:
            with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6) as out:
                with cursor.cursor.copy(f'COPY "{table}" ({columns}) TO STDOUT (FORMAT csv, HEADER)') as copy:
                    for block in copy:
                        digest.update(block)
                        out.write(block)
            raw.flush()
            os.fsync(raw.fileno())
            cursor.execute(f'SELECT count(*) FROM "{table}"')
            rows = int(cursor.fetchone()[0])
        tmp.replace(data_path)
    finally:
        tmp.unlink(missing_ok=True)
    return rows, digest.hexdigest()


def _write_durably(path: Path, text: str) -> None:
    tmp = _temp_path(path)
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def _file_contents(data_path: Path) -> tuple[int, str]:
    """The rows of an archive file as read back from disk, parsed as CSV (a JSON property may hold
    a line break), and the SHA-256 of its uncompressed CSV."""
    digest = hashlib.sha256()
    for block in _chunks(data_path):
        digest.update(block)
    with gzip.open(data_path, "rt", encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        next(reader, None)
        rows = sum(1 for _ in reader)
    return rows, digest.hexdigest()


def _verify(*, data_path: Path, manifest_path: Path, table_rows: int) -> None:
    """The file and the manifest on disk agree with each other and with the table, or
    ``ArchiveCorrupt``: the table is not dropped."""
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    rows, sha256 = _file_contents(data_path)
    if rows != table_rows or int(manifest["rows"]) != table_rows or sha256 != manifest["sha256"]:
        raise ArchiveCorrupt(
            "%s holds %d rows (SHA-256 %s), its manifest %d rows (SHA-256 %s), the table %d rows: not dropped; "
            "run the archive again to export it again."
            % (data_path, rows, sha256, int(manifest["rows"]), manifest["sha256"], table_rows)
        )


def usage_month_archive(*, month: date, folder: Path, at: datetime, concurrently: bool = True) -> ArchivedMonth:
    """Archive ``month``'s raw events into ``folder`` and drop them from the database (see the
    module's docstring). Refused (``MonthNotArchivable``) while any condition is not met. Run it
    outside a transaction when ``concurrently``; each step is its own transaction, and running it
    again after a failure finishes the job. Refused while another run holds the month."""
    month = month_first(month)
    with _month_lock(month):
        return _archive(month=month, folder=folder, at=at, concurrently=concurrently)


def _archive(*, month: date, folder: Path, at: datetime, concurrently: bool) -> ArchivedMonth:
    record = UsageArchive.objects.filter(month=month).first()
    if record is not None and record.state == UsageArchiveState.ARCHIVED:
        raise MonthNotArchivable("%s is archived already (%s)." % (month.strftime("%Y-%m"), record.file))
    table = partition_name(month)
    pending = partition_months()
    resuming = record is not None and record.state == UsageArchiveState.ARCHIVING
    if month not in pending and not resuming:
        raise MonthNotArchivable("%s has no partition of raw events." % month.strftime("%Y-%m"))
    if not resuming:
        reasons = month_refusals(month=month, at=at)
        if reasons:
            raise MonthNotArchivable(
                "%s cannot be archived: %s." % (month.strftime("%Y-%m"), "; ".join(reasons)),
                extra={"reasons": reasons},
            )
    data_path, manifest_path = file_paths(folder, month)
    folder.mkdir(parents=True, exist_ok=True)
    # From here on, ingestion creates no partition for the month (``ensure_partitions``).
    UsageArchive.objects.update_or_create(
        month=month, defaults={"state": UsageArchiveState.ARCHIVING, "file": str(data_path), "restored_at": None}
    )
    start, end = month_bounds(month)
    with rls.schema_changes():
        if month in pending:
            if pending[month]:
                _execute(f'ALTER TABLE usage_event DETACH PARTITION "{table}" FINALIZE')
            elif concurrently:
                _execute(f'ALTER TABLE usage_event DETACH PARTITION "{table}" CONCURRENTLY')
            else:
                _execute(f'ALTER TABLE usage_event DETACH PARTITION "{table}"')
        if _table_exists(table):
            # Detached, the table is the owner's alone: the forced policy would hide its rows from it.
            _execute(f'ALTER TABLE "{table}" NO FORCE ROW LEVEL SECURITY')
            rows, sha256 = _export(table, data_path)
            manifest: dict[str, Any] = {
                "table": "usage_event",
                "partition": table,
                "month": month.isoformat(),
                "from": start.isoformat(),
                "to": end.isoformat(),
                "rows": rows,
                "sha256": sha256,
                "format": "csv with header, gzip",
                "columns": list(COLUMNS),
                "archived_at": at.isoformat(),
            }
            _write_durably(manifest_path, json.dumps(manifest, indent=2) + "\n")
            _fsync_dir(folder)
            _verify(data_path=data_path, manifest_path=manifest_path, table_rows=rows)
            _execute(f'DROP TABLE "{table}"')
        else:
            manifest = json.loads(manifest_path.read_text())  # dropped by the run that stopped after it
    rows, sha256 = int(manifest["rows"]), str(manifest["sha256"])
    UsageArchive.objects.filter(month=month).update(
        state=UsageArchiveState.ARCHIVED, rows=rows, sha256=sha256, file=str(data_path), archived_at=at
    )
    logger.info("usage month %s archived: %d rows in %s", month, rows, data_path)
    return ArchivedMonth(month, rows, sha256, data_path)


# --- Restoring -------------------------------------------------------------------------------------


def _chunks(data_path: Path) -> Iterator[bytes]:
    with gzip.open(data_path, "rb") as handle:
        while block := handle.read(CHUNK):
            yield block


def usage_month_restore(*, month: date, folder: Path, at: datetime) -> int:
    """Put an archived month's raw events back from ``folder``: loaded into a new table, checked
    against the manifest (rows and SHA-256; nothing changes otherwise), behind row-level security,
    attached as the month's partition; all in one transaction. The number of rows restored.
    Refused while another run holds the month."""
    month = month_first(month)
    with _month_lock(month):
        return _restore(month=month, folder=folder, at=at)


def _restore(*, month: date, folder: Path, at: datetime) -> int:
    data_path, manifest_path = file_paths(folder, month)
    if not manifest_path.exists() or not data_path.exists():
        raise ArchiveCorrupt("No archive of %s in %s." % (month.strftime("%Y-%m"), folder))
    manifest = json.loads(manifest_path.read_text())
    if month in partition_months():
        raise Conflict("%s has a partition of raw events: nothing to restore." % month.strftime("%Y-%m"))
    table = partition_name(month)
    start, end = month_bounds(month)
    digest = hashlib.sha256()
    columns = ", ".join('"%s"' % c for c in manifest["columns"])
    with rls.schema_changes(), transaction.atomic():
        _execute(f'CREATE TABLE "{table}" (LIKE usage_event INCLUDING DEFAULTS)')
        with connection.cursor() as cursor:
            with cursor.cursor.copy(f'COPY "{table}" ({columns}) FROM STDIN (FORMAT csv, HEADER)') as copy:
                for block in _chunks(data_path):
                    digest.update(block)
                    copy.write(block)
            cursor.execute(f'SELECT count(*) FROM "{table}"')
            rows = int(cursor.fetchone()[0])
        if digest.hexdigest() != manifest["sha256"] or rows != int(manifest["rows"]):
            raise ArchiveCorrupt(
                "%s does not match its manifest (%d rows for %d, or another checksum): nothing restored."
                % (data_path, rows, int(manifest["rows"]))
            )
        # The constraint lets ATTACH skip scanning the rows for their range.
        bounds = f"'{start.isoformat()}'", f"'{end.isoformat()}'"  # our own UTC midnights
        _execute(
            f'ALTER TABLE "{table}" ADD CONSTRAINT "{table}_range" '
            f'CHECK ("timestamp" >= {bounds[0]} AND "timestamp" < {bounds[1]})'
        )
        _execute(f'ALTER TABLE usage_event ATTACH PARTITION "{table}" FOR VALUES FROM ({bounds[0]}) TO ({bounds[1]})')
        _execute(f'ALTER TABLE "{table}" DROP CONSTRAINT "{table}_range"')
        for statement in rls.enable_sql(table):
            _execute(statement)
        UsageArchive.objects.filter(month=month).update(state=UsageArchiveState.RESTORED, restored_at=at)
    logger.info("usage month %s restored: %d rows from %s", month, rows, data_path)
    return rows


# --- Readers of raw events -------------------------------------------------------------------------


def archived_months() -> list[date]:
    return list(UsageArchive.objects.exclude(state=UsageArchiveState.RESTORED).values_list("month", flat=True))


def archived_overlap(*, start: datetime, end: datetime) -> list[date]:
    """The archived months that ``[start, end)`` reaches into. Free for a span that starts within
    ``MIN_AGE`` of now (no month that recent is ever archived): one small query otherwise."""
    if start >= timezone.now() - MIN_AGE:
        return []
    return sorted(m for m in archived_months() if month_bounds(m)[0] < end and month_bounds(m)[1] > start)


def raw_events_check(*, start: datetime, end: datetime) -> None:
    """Raise ``UsageArchived`` when ``[start, end)`` reaches into a month whose raw events are
    archived: a reader would find none there and answer 0."""
    hit = archived_overlap(start=start, end=end)
    if hit:
        names = ", ".join(m.strftime("%Y-%m") for m in hit)
        raise UsageArchived(
            _(
                "The raw usage events of %(months)s are archived: what is computed from them (unique "
                "counts, top devices, anomalies, event exports) is not available for those months, "
                "while their rollups and invoices are. An operator can restore a month."
            )
            % {"months": names},
            extra={"archived_months": [m.strftime("%Y-%m") for m in hit]},
        )


def csv_rows(data_path: Path) -> Iterator[dict[str, str]]:
    """The rows of an archive file as dicts by column (for audits of an archived month)."""
    with gzip.open(data_path, "rt", encoding="utf-8", newline="") as handle:
        yield from csv.DictReader(handle)
