"""Long jobs that survive their workers: bill runs, recognition runs, back-office exports.

Each such job is a row (a ``BillRun``, a ``RecognitionRun``, a ``DataExport``) with a status and a
heartbeat, ``progressed_at``, that its tasks move forward each time a piece of work commits. When a
worker dies while it holds a piece (SIGKILL, out of memory, a machine lost), Redis gives the piece's
message back only after the broker's visibility timeout; until then nothing moves. The watchdog
(``jobs_watchdog``, on beat every ``JOB_WATCHDOG_INTERVAL_SECONDS`` through one task per tenant) finds
the jobs whose heartbeat is older than ``JOB_STALLED_SECONDS`` and takes them up again: each job says
how (``Job.resume``: re-queue the pieces not done), and the row keeps a note of it in ``recoveries``,
which the back-office shows ("3 chunks were taken up again at 14:02 after their worker stopped
answering").

Taking a job up again is safe even when its worker was only slow, not dead: every job's pieces are
idempotent (a customer is invoiced once per date by a unique constraint; a recognition chunk holds the
run's row and moves a cursor; an export is written again whole). ``progressed_at`` is also set when
the job is taken up again, so a job is re-queued at most once per ``JOB_STALLED_SECONDS``.

An app declares its job once, in its ``AppConfig.ready`` (``job_register``): this module imports no app.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import models, transaction
from django.db.models.functions import Coalesce
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

logger = logging.getLogger(__name__)


class WatchedJob(models.Model):
    """The two columns the watchdog reads and writes on a job's row."""

    # The last time a piece of the job committed (or the watchdog took it up again).
    progressed_at = models.DateTimeField(null=True, blank=True)
    # What the watchdog did, oldest first: [{"at": ISO 8601, "pieces": re-queued pieces}].
    recoveries = models.JSONField(default=list, blank=True)

    class Meta:
        abstract = True


@dataclass(frozen=True)
class Job:
    """A kind of long job. ``model`` is "app_label.Model" (a ``WatchedJob`` with ``created_at`` and
    ``status``); ``active`` the statuses of a job not finished; ``resume(row, at)`` re-queues (on
    commit) what is not done and returns how many pieces it re-queued. A job whose one task shows no
    progress until it ends (an export) waits at least ``min_stalled_seconds``, its hard time limit
    and a margin, so that a slow task is not doubled."""

    key: str
    model: str
    active: tuple[str, ...]
    resume: Callable[[Any, datetime], int]
    min_stalled_seconds: float = 0


JOBS: dict[str, Job] = {}


def job_register(job: Job) -> None:
    JOBS[job.key] = job


def stalled_after(job: Job) -> timedelta:
    return timedelta(seconds=max(settings.JOB_STALLED_SECONDS, job.min_stalled_seconds))


def jobs_stalled(job: Job, *, at: datetime) -> "models.QuerySet[Any]":
    """The jobs of ``job``'s kind not finished and with no progress since ``JOB_STALLED_SECONDS``."""
    model = apps.get_model(job.model)
    return (
        model.objects.filter(status__in=job.active)
        .alias(last=Coalesce("progressed_at", "created_at"))
        .filter(last__lt=at - stalled_after(job))
        .order_by("last")
    )


def jobs_watchdog(*, at: datetime) -> dict[str, int]:
    """Take up again every stalled job of the current tenant (the caller's row-level security scope).
    Each job is locked (``SKIP LOCKED``: two watchdogs never take up the same job twice) and checked
    again under the lock. Returns how many jobs of each kind were taken up again."""
    taken: dict[str, int] = {}
    for job in JOBS.values():
        for pk in list(jobs_stalled(job, at=at).values_list("pk", flat=True)[:100]):
            with transaction.atomic():
                row = jobs_stalled(job, at=at).select_for_update(skip_locked=True).filter(pk=pk).first()
                if row is None:
                    continue  # it moved meanwhile, or another watchdog has it
                pieces = job.resume(row, at)
                row.progressed_at = at
                row.recoveries = [*row.recoveries, {"at": at.isoformat(), "pieces": pieces}]
                row.save(update_fields=["progressed_at", "recoveries"])
            logger.warning(
                "%s %s taken up again after no progress for %s: %d piece(s) queued again",
                job.key,
                pk,
                stalled_after(job),
                pieces,
                extra={"tenant_id": str(row.tenant_id)},
            )
            taken[job.key] = taken.get(job.key, 0) + 1
    return taken


def recovery_notes(recoveries: list[dict[str, Any]], *, piece: str, fmt: Callable[[datetime], str]) -> list[str]:
    """The watchdog's notes on a job, in words, for its page. ``piece`` names the job's pieces
    ("chunk" for bill runs, "run" for a job done by one task; a job taken up again with no piece
    left to queue, only finished, gets the plain note); ``fmt`` prints a time."""
    notes = []
    for recovery in recoveries:
        when = fmt(datetime.fromisoformat(recovery["at"]))
        count = int(recovery.get("pieces", 0))
        if piece == "chunk" and count:
            note = ngettext(
                "%(count)d chunk was taken up again at %(at)s after its worker stopped answering.",
                "%(count)d chunks were taken up again at %(at)s after their worker stopped answering.",
                count,
            ) % {"count": count, "at": when}
        else:
            note = _("It was taken up again at %(at)s after its worker stopped answering.") % {"at": when}
        notes.append(note)
    return notes
