"""The back-office's own rows: CSV exports too long to stream while the user waits, written in the
background (``backoffice.exports``) and kept for a few days for their requester to download."""

import uuid

from django.conf import settings
from django.db import models

from billing_platform.jobs import WatchedJob


class DataExportStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class DataExport(WatchedJob):
    """One CSV export of a list page as its filter stood when it was asked for (``params``), written
    by a Celery task. The file is kept in the row (``content``): the web process and the workers
    share the database, not a disk. Only its requester sees it, in its tenant, until ``expires_at``."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="+")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    # A key of ``backoffice.exports.kinds.KINDS`` ("customers", "invoice_lines"...).
    kind = models.CharField(max_length=32)
    # The list page's filter, as its query string held it: the same rows as the page.
    params = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=DataExportStatus.choices, default=DataExportStatus.QUEUED)
    rows = models.PositiveIntegerField(default=0)
    filename = models.CharField(max_length=200)
    content = models.BinaryField(null=True, blank=True, editable=False)
    error = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["tenant", "requested_by", "-created_at"], name="data_export_requester")]

    def __str__(self) -> str:
        return f"{self.kind} {self.status}"
