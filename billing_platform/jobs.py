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

No progress is not always a dead worker: at a month start the queue a job's pieces go to may hold a
backlog, its pieces waiting there. The watchdog leaves a job alone while that queue still holds
messages (re-queueing would only feed the backlog), and takes it up once the queue has drained and
still nothing moved. A job taken up ``JOB_MAX_RECOVERIES`` times in a row with no progress in between
is marked failed, with a note its page shows, instead of being re-queued forever.

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
    # What the watchdog did, oldest first: [{"at": ISO 8601, "pieces": re-queued pieces}], with
    # "unmoved": n when it was the n-th time in a row with no progress in between (n > 1), and
    # "gave_up": n when the job was marked failed after n recoveries in a row with no progress.
    recoveries = models.JSONField(default=list, blank=True)

    class Meta:
        abstract = True


@dataclass(frozen=True)
class Job:
    """A kind of long job. ``model`` is "app_label.Model" (a ``WatchedJob`` with ``created_at`` and
    ``status``); ``active`` the statuses of a job not finished; ``resume(row, at)`` re-queues (on
    commit) what is not done and returns how many pieces it re-queued. A job whose one task shows no
    progress until it ends (an export) waits at least ``min_stalled_seconds``, its hard time limit
    and a margin, so that a slow task is not doubled. ``queue`` is the Celery queue its pieces go to:
    while it holds messages, the job is waiting, not stalled."""

    key: str
    model: str
    active: tuple[str, ...]
    resume: Callable[[Any, datetime], int]
    min_stalled_seconds: float = 0
    queue: str = "default"
    failed: str = "failed"


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


def queue_backlog(queue: str) -> int:
    """How many messages wait in a Celery queue of the Redis broker: kombu keeps a queue as a list
    named after it, and one more per priority step ("billing", "billing\\x06\\x163"...). 0 when the
    broker cannot be asked (the watchdog then does as if the queue were empty)."""
    import redis
    from kombu.transport.redis import PRIORITY_STEPS, Channel

    keys = [queue] + [f"{queue}{Channel.sep}{step}" for step in PRIORITY_STEPS if step]
    try:
        client = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_timeout=1, socket_connect_timeout=1)
        with client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.llen(key)
            return int(sum(pipe.execute()))
    except redis.RedisError as exc:
        logger.warning("queue %s: its length could not be read: %s", queue, exc)
        return 0


def _unmoved(row: Any) -> int:
    """How many recoveries in a row the job has had with no progress since (0: it moved since the
    last one, or never was taken up)."""
    if not row.recoveries:
        return 0
    last = row.recoveries[-1]
    if row.progressed_at is None or row.progressed_at != datetime.fromisoformat(last["at"]):
        return 0
    return int(last.get("unmoved", 1))


def jobs_watchdog(*, at: datetime) -> dict[str, int]:
    """Take up again every stalled job of the current tenant (the caller's row-level security scope).
    Each job is locked (``SKIP LOCKED``: two watchdogs never take up the same job twice) and checked
    again under the lock. A job whose queue holds messages is left alone; one taken up
    ``JOB_MAX_RECOVERIES`` times in a row without progress is marked failed. Returns how many jobs of
    each kind were taken up again (or given up)."""
    taken: dict[str, int] = {}
    backlogs: dict[str, int] = {}
    for job in JOBS.values():
        for pk in list(jobs_stalled(job, at=at).values_list("pk", flat=True)[:100]):
            if job.queue not in backlogs:
                backlogs[job.queue] = queue_backlog(job.queue)
            if backlogs[job.queue]:
                logger.info(
                    "%s %s not taken up: %d message(s) wait in queue %s", job.key, pk, backlogs[job.queue], job.queue
                )
                continue
            with transaction.atomic():
                row = jobs_stalled(job, at=at).select_for_update(skip_locked=True).filter(pk=pk).first()
                if row is None:
                    continue  # it moved meanwhile, or another watchdog has it
                unmoved = _unmoved(row)
                if unmoved >= settings.JOB_MAX_RECOVERIES:
                    row.status = job.failed
                    row.finished_at = at
                    row.recoveries = [*row.recoveries, {"at": at.isoformat(), "pieces": 0, "gave_up": unmoved}]
                    row.save(update_fields=["status", "finished_at", "recoveries"])
                    logger.error(
                        "%s %s failed: no progress after being taken up again %d times",
                        job.key,
                        pk,
                        unmoved,
                        extra={"tenant_id": str(row.tenant_id)},
                    )
                    taken[job.key] = taken.get(job.key, 0) + 1
                    continue
                pieces = job.resume(row, at)
                recovery: dict[str, Any] = {"at": at.isoformat(), "pieces": pieces}
                if unmoved:
                    recovery["unmoved"] = unmoved + 1
                row.progressed_at = at
                row.recoveries = [*row.recoveries, recovery]
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
        if recovery.get("gave_up"):
            note = _(
                "It was stopped at %(at)s and marked failed: it made no progress after being taken up again "
                "%(count)d times in a row."
            ) % {"at": when, "count": int(recovery["gave_up"])}
        elif piece == "chunk" and count:
            note = ngettext(
                "%(count)d chunk was taken up again at %(at)s after its worker stopped answering.",
                "%(count)d chunks were taken up again at %(at)s after their worker stopped answering.",
                count,
            ) % {"count": count, "at": when}
        else:
            note = _("It was taken up again at %(at)s after its worker stopped answering.") % {"at": when}
        notes.append(note)
    return notes
