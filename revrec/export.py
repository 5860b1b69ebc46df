"""The journal's export to an ERP (specs/revrec.md, "Reports"): targets, each taking every journal
entry once.

- An **export target** is a system that takes the journal (a name unique per tenant, a format: CSV
  or JSON).
- An **export** of a month to a target takes the month's journal entries that the target has not
  taken yet, in one ``INSERT ... SELECT`` (``ExportedEntry``, unique per target and entry): a second
  export of the same month holds only the entries posted since, possibly none.
- Two exports to the same target at once never take the same entry: each locks the target's row
  first, so the second waits for the first to commit and then sees what it took (and the unique
  constraint is the last word).
- The file is written when downloaded, one row per journal line, streamed: ``export_rows``.
"""

import csv
import datetime as dt
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from django.db import IntegrityError, connection, transaction
from django.db.models import QuerySet

from billing_platform.money import round_minor
from revrec.errors import ExportTargetNameTaken, ExportTargetNotFound, JournalExportNotFound
from revrec.models import ExportedEntry, ExportFormat, ExportTarget, JournalExport, JournalLine
from revrec.periods import month_label
from tenancy.actors import Actor
from tenancy.models import Tenant
from tenancy.services import audit_record

# The columns of an export, in order: one row per journal line.
COLUMNS = (
    "entry_id",
    "date",
    "period",
    "source_type",
    "source_id",
    "contract",
    "account",
    "currency",
    "debit",
    "credit",
)
CONTENT_TYPES = {ExportFormat.CSV: "text/csv; charset=utf-8", ExportFormat.JSON: "application/json"}
# Lines read from the database at a time while a file streams.
STREAM_BATCH = 2000

_CLAIM = """
INSERT INTO revrec_exportedentry (tenant_id, target_id, export_id, entry_id)
SELECT e.tenant_id, %(target)s, %(export)s, e.id
FROM revrec_journalentry e
WHERE e.tenant_id = %(tenant)s AND e.period = %(period)s
  AND NOT EXISTS (SELECT 1 FROM revrec_exportedentry x WHERE x.target_id = %(target)s AND x.entry_id = e.id)
ORDER BY e.id
ON CONFLICT (target_id, entry_id) DO NOTHING
RETURNING entry_id
"""


def export_target_create(*, tenant: Tenant, name: str, format: str, actor: Actor, at: datetime) -> ExportTarget:
    """A new target (``ExportTargetNameTaken``, 409, when the tenant has one of that name)."""
    try:
        with transaction.atomic():
            target = ExportTarget.objects.create(tenant=tenant, name=name, format=format, created_at=at)
            audit_record(
                tenant=tenant,
                actor=actor,
                action="export_target.created",
                object_type="export_target",
                object_id=str(target.pk),
                at=at,
                after={"name": name, "format": format},
            )
    except IntegrityError:
        raise ExportTargetNameTaken("An export target named %s exists already." % name) from None
    return target


def export_target_list(*, tenant: Tenant) -> QuerySet[ExportTarget]:
    return ExportTarget.objects.filter(tenant=tenant)


def export_target_get(*, tenant: Tenant, pk: str) -> ExportTarget:
    try:
        return ExportTarget.objects.get(tenant=tenant, pk=UUID(pk))
    except (ValueError, ExportTarget.DoesNotExist):
        raise ExportTargetNotFound("No export target with this id.") from None


def journal_export_create(*, target: ExportTarget, period: date, actor: Actor, at: datetime) -> JournalExport:
    """Export to ``target`` the journal entries of ``period`` (its first day) that it has not taken
    yet; an export that finds none is recorded too, empty (the ERP learns there was nothing new)."""
    with transaction.atomic():
        # The target's row is the lock: two exports to one target take their entries one after the other.
        ExportTarget.objects.select_for_update().get(pk=target.pk)
        export = JournalExport.objects.create(
            tenant_id=target.tenant_id, target=target, period=period, requested_by=actor.label[:200], created_at=at
        )
        with connection.cursor() as cursor:
            cursor.execute(
                _CLAIM, {"tenant": target.tenant_id, "target": target.pk, "export": export.pk, "period": period}
            )
            entries = [row[0] for row in cursor.fetchall()]
        export.entries = len(entries)
        export.lines = JournalLine.objects.filter(entry_id__in=entries).count() if entries else 0
        export.save(update_fields=["entries", "lines"])
        audit_record(
            tenant=target.tenant,
            actor=actor,
            action="journal_export.created",
            object_type="journal_export",
            object_id=str(export.pk),
            at=at,
            after={"target": target.name, "period": month_label(period), "entries": export.entries},
        )
    return export


def journal_export_list(*, target: ExportTarget) -> QuerySet[JournalExport]:
    return JournalExport.objects.filter(target=target)


def journal_export_get(*, target: ExportTarget, pk: str) -> JournalExport:
    try:
        return JournalExport.objects.select_related("target").get(target=target, pk=UUID(pk))
    except (ValueError, JournalExport.DoesNotExist):
        raise JournalExportNotFound("No export with this id for this target.") from None


@dataclass(frozen=True)
class ExportRow:
    entry_id: int
    date: dt.date
    period: dt.date
    source_type: str
    source_id: str
    contract: UUID | None
    account: str
    currency: str
    debit: Decimal
    credit: Decimal

    def as_dict(self) -> dict[str, Any]:
        return {
            "entry_id": self.entry_id,
            "date": self.date.isoformat(),
            "period": month_label(self.period),
            "source_type": self.source_type,
            "source_id": self.source_id,
            "contract": str(self.contract) if self.contract else None,
            "account": self.account,
            "currency": self.currency,
            "debit": str(round_minor(self.debit, self.currency)),
            "credit": str(round_minor(self.credit, self.currency)),
        }


def export_rows(*, export: JournalExport) -> Iterator[ExportRow]:
    """The export's journal lines, by entry then line, read ``STREAM_BATCH`` at a time (one query
    per batch, keyed on the line's id)."""
    lines = (
        JournalLine.objects.filter(entry__in=ExportedEntry.objects.filter(export=export).values("entry_id"))
        .order_by("entry_id", "id")
        .values_list(
            "id",
            "entry_id",
            "entry__date",
            "entry__period",
            "entry__source_type",
            "entry__source_id",
            "entry__contract_id",
            "account",
            "currency",
            "debit",
            "credit",
        )
    )
    after: tuple[int, int] = (0, 0)
    while True:
        entry_id, line_id = after
        batch = list(lines.filter(entry_id__gte=entry_id).exclude(entry_id=entry_id, id__lte=line_id)[:STREAM_BATCH])
        for pk, entry, day, period, source_type, source_id, contract, account, currency, debit, credit in batch:
            yield ExportRow(entry, day, period, source_type, source_id, contract, account, currency, debit, credit)
            after = (entry, pk)
        if len(batch) < STREAM_BATCH:
            return


def export_csv(rows: Iterator[ExportRow]) -> Iterator[str]:
    """CSV (RFC 4180, a header row, comma separated, amounts with a dot) a chunk of text at a time."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for n, row in enumerate(rows, start=1):
        values = row.as_dict()
        writer.writerow(["" if values[c] is None else values[c] for c in COLUMNS])
        if n % 500 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def export_json(export: JournalExport, rows: Iterator[ExportRow]) -> Iterator[str]:
    """``{"export", "target", "period", "created_at", "lines": [...]}``, a line at a time."""
    head = {
        "export": str(export.pk),
        "target": export.target.name,
        "period": month_label(export.period),
        "created_at": export.created_at.isoformat().replace("+00:00", "Z"),
    }
    yield json.dumps(head)[:-1] + ', "lines": ['
    for n, row in enumerate(rows):
        yield ("," if n else "") + json.dumps(row.as_dict())
    yield "]}"


def export_file(*, export: JournalExport) -> tuple[Iterator[str], str, str]:
    """The export's file as chunks of text, its content type and its file name."""
    rows = export_rows(export=export)
    fmt = export.target.format
    name = "journal-%s-%s.%s" % (month_label(export.period), str(export.pk)[:8], fmt)
    chunks = export_csv(rows) if fmt == ExportFormat.CSV else export_json(export, rows)
    return chunks, CONTENT_TYPES[ExportFormat(fmt)], name
