"""CSV exports of the list pages: streamed at once while short, written in the background when long.

A list whose filter selects up to ``settings.DATA_EXPORT_STREAM_MAX_ROWS`` rows is streamed to the
browser as it is read. A longer one becomes a ``DataExport`` that a Celery task writes
(``data_export_run``) and that its requester downloads from the Exports page when it is done; both
paths write the same lines (``backoffice.csv_export.csv_lines``), so they give the same file.
"""

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet

from backoffice.csv_export import csv_lines
from backoffice.exports.kinds import KINDS, ExportKind
from backoffice.models import DataExport, DataExportStatus
from billing_platform.db_router import replica_report
from tenancy.models import Tenant

logger = logging.getLogger(__name__)

# Statuses of an export still being written: the Exports page polls while one is listed.
ACTIVE = (DataExportStatus.QUEUED, DataExportStatus.RUNNING)


def export_filename(kind: ExportKind, *, at: datetime) -> str:
    """``invoice_lines-2026-05-01.csv``: the kind and the day it was asked for (UTC)."""
    return "%s-%s.csv" % (kind.key, at.date().isoformat())


@replica_report
def export_content(*, tenant: Tenant, kind: ExportKind, params: dict[str, str]) -> tuple[bytes, int]:
    """The whole file of an export and its number of rows (without the header), UTF-8."""
    counted = {"rows": 0}

    def rows() -> Any:
        for row in kind.rows(tenant, params):
            counted["rows"] += 1
            yield row

    data = "".join(csv_lines(header=kind.columns, rows=rows())).encode("utf-8")
    return data, counted["rows"]


def data_export_create(
    *, tenant: Tenant, user: Any, kind: ExportKind, params: dict[str, str], at: datetime
) -> DataExport:
    """Queue an export of ``kind`` with the page's filter; its task starts once this is committed."""
    from backoffice.tasks import data_export_run_task

    export = DataExport.objects.create(
        tenant=tenant,
        requested_by=user,
        kind=kind.key,
        params=params,
        filename=export_filename(kind, at=at),
        created_at=at,
        expires_at=at + timedelta(days=settings.DATA_EXPORT_KEEP_DAYS),
    )
    transaction.on_commit(
        lambda: data_export_run_task.delay(str(export.pk), tenant_id=str(tenant.pk)),
    )
    return export


def data_export_run(*, export_id: str, at: datetime, finished: Any = None) -> DataExport:
    """Write an export's file. Safe to run twice: a finished export is left as it is, and one left
    running by a lost worker is written again from the start. ``finished`` gives the time it ends
    (the task passes ``timezone.now``)."""
    export = DataExport.objects.select_related("tenant").get(pk=export_id)
    if export.status in (DataExportStatus.DONE, DataExportStatus.FAILED):
        return export
    kind = KINDS.get(export.kind)
    export.status, export.started_at, export.progressed_at = DataExportStatus.RUNNING, at, at
    export.save(update_fields=["status", "started_at", "progressed_at"])
    if kind is None:
        return _fail(export, "Unknown export: %s." % export.kind, at)
    try:
        data, rows = export_content(tenant=export.tenant, kind=kind, params=dict(export.params))
    except Exception as exc:
        logger.exception("data export %s failed", export.pk, extra={"tenant_id": str(export.tenant_id)})
        return _fail(export, str(exc)[:500] or exc.__class__.__name__, finished() if finished else at)
    export.content, export.rows = data, rows
    export.status, export.finished_at = DataExportStatus.DONE, finished() if finished else at
    export.save(update_fields=["content", "rows", "status", "finished_at"])
    return export


def data_export_resume(export: DataExport, at: datetime) -> int:
    """Take up again an export that stopped moving (``billing_platform.jobs``): its task queued again
    once the caller commits; it writes the file again from the start. Returns 1, the task queued."""
    from backoffice.tasks import data_export_run_task

    pk, tenant_id = str(export.pk), str(export.tenant_id)
    transaction.on_commit(lambda: data_export_run_task.delay(pk, tenant_id=tenant_id))
    return 1


def _fail(export: DataExport, error: str, at: datetime) -> DataExport:
    export.status, export.error, export.finished_at = DataExportStatus.FAILED, error, at
    export.save(update_fields=["status", "error", "finished_at"])
    return export


def data_export_list(*, tenant: Tenant, user: Any, at: datetime) -> QuerySet[DataExport]:
    """The user's own exports in the tenant that have not expired, newest first, without their files."""
    return DataExport.objects.filter(tenant=tenant, requested_by=user, expires_at__gt=at).defer("content")


def data_export_get(*, tenant: Tenant, user: Any, pk: str, at: datetime) -> DataExport | None:
    """One of the user's exports in the tenant, unexpired; None for anyone else's, or none."""
    return data_export_list(tenant=tenant, user=user, at=at).filter(pk=pk).first()


def data_exports_purge(*, tenant: Tenant, at: datetime) -> int:
    """Delete the tenant's expired exports and their files. Returns how many."""
    deleted, _ = DataExport.objects.filter(tenant=tenant, expires_at__lte=at).delete()
    return deleted
