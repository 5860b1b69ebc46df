"""A tenant's revenue periods (calendar months): the recognition run of a month on Celery, and the
close that freezes it (specs/revrec.md, "Runs").

- **Runs.** ``recognition_run_create`` records a queued run (one queued or running run per tenant and
  month, a unique index) and queues its task on commit; ``recognition_run_execute`` goes through the
  tenant's contracts by chunks of ``CHUNK_SIZE``, each chunk posting with ``revrec.runs.recognition_run``
  in its own transaction with the run's progress, so the progress a person watches is what has
  committed. A task delivered twice, or a worker killed mid-run, resumes after the last committed
  chunk (``cursor``); and whatever happens, a posting is unique per obligation and period, so a run
  started again posts only what is still due. A failure stops the run as ``failed`` with its reason;
  the chunks committed before it stay posted.
- **Schedule.** Beat passes hourly; each tenant's previous month is run once, in the first pass
  after the tenant's local midnight of the 1st, unless it is closed or already has a run
  (``recognition_runs_start_scheduled``).
- **Close.** ``period_close`` closes a month that has ended (in the tenant's time zone), whose latest
  run succeeded, and whose earlier months are closed or never had a journal entry (months close in
  order, as a ledger does; an earlier month without any entry is no obstacle). A closed month never
  changes: runs refuse it, every posting dated in it goes to the next open month
  (``posting_period``), and the database refuses any insert, update or delete of a recognition or
  journal row dated in it (triggers of migration 0003). Closing emits ``revenue.period_closed`` in
  the same transaction.
"""

import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from celery.exceptions import SoftTimeLimitExceeded
from django.db import IntegrityError, transaction
from django.db.models import Count, QuerySet, Sum
from django.utils import timezone

from billing_platform.errors import FieldError
from billing_platform.money import round_minor
from billing_platform.periods import add_months, local_date
from revrec.contracts import contracts_sync
from revrec.errors import (
    EarlierPeriodOpen,
    PeriodClosed,
    PeriodNotEnded,
    PeriodNotFound,
    PeriodNotRecognized,
    RecognitionRunNotFound,
    RunInProgress,
)
from revrec.journal import posting_period as journal_posting_period
from revrec.models import (
    ACTIVE_RUN_STATUSES,
    Account,
    Contract,
    JournalEntry,
    JournalLine,
    RecognitionRun,
    RecognitionRunStatus,
    RevenuePeriod,
)
from revrec.runs import recognition_run
from revrec.schedules import next_month
from tenancy.actors import Actor
from tenancy.models import Tenant
from tenancy.services import audit_record
from webhooks.outbox import event_emit, instant

logger = logging.getLogger(__name__)

# Contracts per chunk: each chunk is one transaction and one step of the progress.
CHUNK_SIZE = 500
FINISHED_RUN_STATUSES = (RecognitionRunStatus.SUCCEEDED, RecognitionRunStatus.FAILED)
# Revenue accounts and the stream each one reports.
REVENUE_STREAMS: dict[str, str] = {
    Account.REVENUE_HARDWARE: "hardware",
    Account.REVENUE_SERVICE: "service",
    Account.REVENUE_USAGE: "usage",
    Account.REVENUE_FEES: "fee",
}


def month_label(month: date) -> str:
    return "%04d-%02d" % (month.year, month.month)


def previous_month(month: date) -> date:
    year, number = add_months(month.year, month.month, -1)
    return date(year, number, 1)


def current_month(*, tenant: Tenant, at: datetime) -> date:
    """The month ``at`` falls in, in the tenant's time zone."""
    today = local_date(at, tenant.timezone)
    return date(today.year, today.month, 1)


def revenue_rows(totals: dict[tuple[str, str], Decimal]) -> list[dict[str, str]]:
    """``{(currency, stream): amount}`` as the API and the run store it: a row per currency and
    stream, sorted, amounts as strings."""
    return [
        {"currency": currency, "stream": stream, "amount": str(round_minor(amount, currency))}
        for (currency, stream), amount in sorted(totals.items())
    ]


# --- runs -------------------------------------------------------------------------------------


def _period_locked(*, tenant_id: Any, month: date) -> RevenuePeriod:
    """The month's period row, created if need be, locked until the transaction ends: a run's start,
    its chunks and a close of the same month wait for each other."""
    RevenuePeriod.objects.get_or_create(tenant_id=tenant_id, month=month)
    return RevenuePeriod.objects.select_for_update().get(tenant_id=tenant_id, month=month)


def _closed(month: date) -> PeriodClosed:
    return PeriodClosed(
        "The revenue period %s is closed: corrections post in the open period." % month_label(month),
        extra={"period": month_label(month)},
    )


def recognition_run_create(*, tenant: Tenant, month: date, actor: Actor, at: datetime) -> RecognitionRun:
    """Queue the recognition run of ``month`` (its first day). Refused: a month that has not begun
    in the tenant's time zone (``PeriodNotEnded``, 422), a closed month (``PeriodClosed``, 409), a
    month with a run queued or running (``RunInProgress``, 409). The task is queued on commit."""
    if month.day != 1:
        raise ValueError("a revenue period is named by the first day of its month")
    if month > current_month(tenant=tenant, at=at):
        message = "The month %s has not begun in %s: nothing is due in it yet." % (month_label(month), tenant.timezone)
        raise PeriodNotEnded(message, errors=[FieldError("period", "not_begun", message)])
    with transaction.atomic():
        period = _period_locked(tenant_id=tenant.pk, month=month)
        if period.closed_at is not None:
            raise _closed(month)
        try:
            with transaction.atomic():
                run = RecognitionRun.objects.create(
                    tenant=tenant, month=month, requested_by=actor.label[:200], created_at=at
                )
        except IntegrityError:
            active = RecognitionRun.objects.filter(tenant=tenant, month=month, status__in=ACTIVE_RUN_STATUSES).first()
            raise RunInProgress(
                "A recognition run of %s is already %s." % (month_label(month), active.status if active else "active"),
                extra={"period": month_label(month), "run": str(active.pk) if active else None},
            ) from None
        audit_record(
            tenant=tenant,
            actor=actor,
            action="recognition_run.started",
            object_type="recognition_run",
            object_id=str(run.pk),
            at=at,
            after={"period": month_label(month)},
        )
        from revrec.tasks import recognition_run_execute_task

        pk, tenant_id = str(run.pk), str(tenant.pk)
        transaction.on_commit(lambda: recognition_run_execute_task.delay(pk, tenant_id=tenant_id))
    return run


def _merged(stored: list[dict[str, str]], added: dict[tuple[str, str], Decimal]) -> list[dict[str, str]]:
    totals: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for row in stored:
        totals[(row["currency"], row["stream"])] += Decimal(row["amount"])
    for key, amount in added.items():
        totals[key] += amount
    return revenue_rows(totals)


def recognition_run_execute(*, run_id: Any, at: datetime, until: float | None = None) -> RecognitionRun:
    """Do the run: every contract of the tenant, by chunks of ``CHUNK_SIZE`` in the order of their
    ids, each chunk posted and counted in one transaction that holds the run's row, so two deliveries
    of the task never count a chunk twice. A run already finished does nothing; a run found running
    (its task delivered again, or taken up again by the jobs watchdog) resumes after its last
    committed chunk. With ``until`` (a ``time.monotonic()`` deadline), it stops after the chunk that
    passes it, the run still running, for its task to queue the rest. Any failure ends the run as
    ``failed`` with its reason, and is not raised: it is the run's outcome."""
    with transaction.atomic():
        run = RecognitionRun.objects.select_for_update().get(pk=run_id)
        if run.status == RecognitionRunStatus.QUEUED:
            # Contracts built, dated and modified once for all the chunks (each chunk runs with
            # ``contract_ids``, which skips it).
            contracts_sync(tenant_id=run.tenant_id, at=at)
            run.status = RecognitionRunStatus.RUNNING
            run.started_at = at
            run.total = Contract.objects.filter(tenant_id=run.tenant_id).count()
            run.progressed_at = timezone.now()
            run.save(update_fields=["status", "started_at", "total", "progressed_at"])
    try:
        while run.status == RecognitionRunStatus.RUNNING and (until is None or time.monotonic() < until):
            with transaction.atomic():
                run = RecognitionRun.objects.select_for_update().get(pk=run_id)
                if run.status == RecognitionRunStatus.RUNNING:
                    _chunk(run, at=at)
    except SoftTimeLimitExceeded:
        raise  # the time is up, not the run failed: the run stays running and is taken up again
    except Exception as exc:  # the run's outcome, shown to whoever started it
        logger.warning("recognition run %s failed: %s", run_id, exc, extra={"tenant_id": run.tenant_id})
        RecognitionRun.objects.filter(pk=run_id, status=RecognitionRunStatus.RUNNING).update(
            status=RecognitionRunStatus.FAILED,
            finished_at=at,
            error=(str(getattr(exc, "detail", "") or exc) or exc.__class__.__name__)[:2000],
        )
    run.refresh_from_db()
    return run


def _chunk(run: RecognitionRun, *, at: datetime) -> None:
    """The next chunk of ``run`` (locked by the caller's transaction) posted and counted; with no
    contract left, the run succeeded."""
    contracts = Contract.objects.filter(tenant_id=run.tenant_id).order_by("pk")
    if run.cursor:
        contracts = contracts.filter(pk__gt=UUID(run.cursor))
    chunk = list(contracts.values_list("pk", flat=True)[:CHUNK_SIZE])
    if not chunk:
        # A month without contracts gets its period too: it is listed, and can be closed.
        if _period_locked(tenant_id=run.tenant_id, month=run.month).closed_at is not None:
            raise _closed(run.month)
        run.status = RecognitionRunStatus.SUCCEEDED
        run.finished_at = at
        run.save(update_fields=["status", "finished_at"])
        return
    report = recognition_run(tenant_id=run.tenant_id, month=run.month, at=at, contract_ids=chunk)
    run.done += len(chunk)
    run.entries += report.entries
    run.journal_entries += report.journal_entries
    run.revenue = _merged(run.revenue, report.revenue)
    run.cursor = str(chunk[-1])
    run.progressed_at = timezone.now()  # the run's heartbeat, read by the jobs watchdog
    run.save(update_fields=["done", "entries", "journal_entries", "revenue", "cursor", "progressed_at"])
    logger.info(
        "recognition run %s: %d of %d contracts", run.pk, run.done, run.total, extra={"tenant_id": run.tenant_id}
    )


def recognition_run_resume(run: RecognitionRun, at: datetime) -> int:
    """Take up again a run that stopped moving (``billing_platform.jobs``): its task queued again
    once the caller commits; it resumes after the run's cursor. Returns 1, the task queued."""
    from revrec.tasks import recognition_run_execute_task

    pk, tenant_id = str(run.pk), str(run.tenant_id)
    transaction.on_commit(lambda: recognition_run_execute_task.delay(pk, tenant_id=tenant_id))
    return 1


def recognition_run_get(*, tenant: Tenant, pk: str) -> RecognitionRun:
    try:
        return RecognitionRun.objects.get(tenant=tenant, pk=UUID(pk))
    except (ValueError, RecognitionRun.DoesNotExist):
        raise RecognitionRunNotFound("No recognition run with this id.") from None


def recognition_run_list(*, tenant: Tenant, month: date | None = None) -> QuerySet[RecognitionRun]:
    runs = RecognitionRun.objects.filter(tenant=tenant)
    return runs.filter(month=month) if month is not None else runs


def recognition_runs_start_scheduled(*, tenant: Tenant, at: datetime) -> RecognitionRun | None:
    """The schedule, for one tenant (hourly): the run of the month before ``at`` in the tenant's time
    zone, so early on the 1st, local time. Once: not when that month already has a run (a failed
    one included: a person reads why, and starts it again) or is closed. Returns the run started."""
    month = previous_month(current_month(tenant=tenant, at=at))
    if RecognitionRun.objects.filter(tenant=tenant, month=month).exists():
        return None
    if RevenuePeriod.objects.filter(tenant=tenant, month=month, closed_at__isnull=False).exists():
        return None
    try:
        return recognition_run_create(tenant=tenant, month=month, actor=Actor.system("schedule"), at=at)
    except (RunInProgress, PeriodClosed):  # a person started or closed it meanwhile
        return None


# --- periods ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PeriodRow:
    """A month of the tenant's books: open or closed, what its journal recognized as revenue (by
    currency and stream), and its latest recognition run."""

    month: date
    closed_at: datetime | None
    revenue: list[dict[str, str]] = field(default_factory=list)
    run: RecognitionRun | None = None

    @property
    def period(self) -> str:
        return month_label(self.month)

    @property
    def status(self) -> str:
        return "open" if self.closed_at is None else "closed"


def period_revenue(*, tenant_id: Any, months: list[date] | None = None) -> dict[date, dict[tuple[str, str], Decimal]]:
    """Revenue the journal posted per month, currency and stream (credits less debits of the revenue
    accounts), in one query."""
    lines = JournalLine.objects.filter(tenant_id=tenant_id, account__in=list(REVENUE_STREAMS))
    if months is not None:
        lines = lines.filter(entry__period__in=months)
    out: dict[date, dict[tuple[str, str], Decimal]] = defaultdict(dict)
    for row in (
        lines.values("entry__period", "currency", "account")
        .annotate(debit=Sum("debit"), credit=Sum("credit"))
        .order_by("entry__period", "currency", "account")
    ):
        out[row["entry__period"]][(row["currency"], REVENUE_STREAMS[row["account"]])] = row["credit"] - row["debit"]
    return out


def period_journal_totals(*, tenant_id: Any, month: date) -> list[dict[str, Any]]:
    """The month's journal per currency: entries, total debits and total credits (equal: every entry
    is balanced)."""
    entries = dict(
        JournalEntry.objects.filter(tenant_id=tenant_id, period=month)
        .values("currency")
        .annotate(n=Count("id"))
        .order_by()
        .values_list("currency", "n")
    )
    sums = (
        JournalLine.objects.filter(tenant_id=tenant_id, entry__period=month)
        .values("currency")
        .annotate(debit=Sum("debit"), credit=Sum("credit"))
        .order_by("currency")
    )
    return [
        {
            "currency": row["currency"],
            "entries": entries.get(row["currency"], 0),
            "debit": str(round_minor(row["debit"], row["currency"])),
            "credit": str(round_minor(row["credit"], row["currency"])),
        }
        for row in sums
    ]


def period_list(*, tenant: Tenant) -> list[PeriodRow]:
    """Every month with a period row (a run touched it) or a journal entry, newest first, in three
    queries whatever their number."""
    closed = dict(RevenuePeriod.objects.filter(tenant=tenant).values_list("month", "closed_at"))
    months = set(closed) | set(
        JournalEntry.objects.filter(tenant=tenant).order_by().values_list("period", flat=True).distinct()
    )
    latest: dict[date, RecognitionRun] = {}
    for run in RecognitionRun.objects.filter(tenant=tenant).order_by("month", "-created_at", "-id").distinct("month"):
        latest[run.month] = run
    revenue = period_revenue(tenant_id=tenant.pk)
    return [
        PeriodRow(month, closed.get(month), revenue_rows(revenue.get(month, {})), latest.get(month))
        for month in sorted(months, reverse=True)
    ]


def period_get(*, tenant: Tenant, month: date) -> PeriodRow:
    period = RevenuePeriod.objects.filter(tenant=tenant, month=month).first()
    if period is None and not JournalEntry.objects.filter(tenant=tenant, period=month).exists():
        raise PeriodNotFound("No recognition run or journal entry in %s." % month_label(month))
    run = RecognitionRun.objects.filter(tenant=tenant, month=month).first()
    revenue = period_revenue(tenant_id=tenant.pk, months=[month]).get(month, {})
    return PeriodRow(month, period.closed_at if period else None, revenue_rows(revenue), run)


def period_close(*, tenant: Tenant, month: date, actor: Actor, at: datetime) -> PeriodRow:
    """Close ``month`` for good (see the module's docstring for when it may close). Refusals:
    ``PeriodNotEnded`` (422) before the month's end in the tenant's time zone, ``PeriodNotFound``
    (404) for a month no run touched, ``PeriodClosed`` (409) once closed, ``PeriodNotRecognized``
    (409) when its latest run did not succeed (or is still going), ``EarlierPeriodOpen`` (409) when an
    earlier month with journal entries is open. Emits ``revenue.period_closed`` in the transaction."""
    if next_month(month) > current_month(tenant=tenant, at=at):
        message = "The month %s has not ended in %s." % (month_label(month), tenant.timezone)
        raise PeriodNotEnded(message, errors=[FieldError("period", "not_ended", message)])
    label = month_label(month)
    with transaction.atomic():
        period = RevenuePeriod.objects.select_for_update().filter(tenant=tenant, month=month).first()
        if period is None:
            raise PeriodNotFound("No recognition run of %s: run it before closing it." % label)
        if period.closed_at is not None:
            raise _closed(month)
        run = RecognitionRun.objects.filter(tenant=tenant, month=month).first()
        if run is None or run.status != RecognitionRunStatus.SUCCEEDED:
            state = "has no recognition run" if run is None else "its latest recognition run is %s" % run.status
            raise PeriodNotRecognized(
                "%s cannot be closed: %s. Run it, then close it once the run has succeeded." % (label, state),
                extra={"period": label, "run": str(run.pk) if run else None},
            )
        closed_months = RevenuePeriod.objects.filter(tenant=tenant, closed_at__isnull=False).values("month")
        earlier = (
            JournalEntry.objects.filter(tenant=tenant, period__lt=month)
            .exclude(period__in=closed_months)
            .order_by("period")
            .values_list("period", flat=True)
            .first()
        )
        if earlier is not None:
            raise EarlierPeriodOpen(
                "%s cannot be closed before %s, which has journal entries and is open." % (label, month_label(earlier)),
                extra={"period": label, "open_period": month_label(earlier)},
            )
        period.closed_at = at
        period.save(update_fields=["closed_at"])
        revenue = period_revenue(tenant_id=tenant.pk, months=[month]).get(month, {})
        audit_record(
            tenant=tenant,
            actor=actor,
            action="revenue_period.closed",
            object_type="revenue_period",
            object_id=label,
            at=at,
            after={"closed_at": instant(at)},
        )
        event_emit(
            tenant=tenant,
            type="revenue.period_closed",
            data={
                "period": label,
                "closed_at": instant(at),
                "revenue": revenue_rows(revenue),
                "journal": period_journal_totals(tenant_id=tenant.pk, month=month),
            },
            at=at,
        )
    return PeriodRow(month, at, revenue_rows(revenue), run)


def posting_period(*, tenant_id: Any, day: date) -> date:
    """The period a posting dated ``day`` goes to: its month while open, else the first open month
    after it (a closed period never changes: corrections post in the open period). The rule is the
    journal's (``revrec.journal.posting_period``), with the tenant's closed months read here."""
    closed = set(
        RevenuePeriod.objects.filter(
            tenant_id=tenant_id, month__gte=day.replace(day=1), closed_at__isnull=False
        ).values_list("month", flat=True)
    )
    return journal_posting_period(day, closed=closed)
