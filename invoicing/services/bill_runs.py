"""Bill runs: every customer due on a billing date invoiced, chunked by customer across Celery
workers (``bill_run_execute_task`` -> ``bill_run_plan`` -> ``bill_run_chunk`` per chunk)."""

import logging
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any, TypeVar

from celery import group as celery_group
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings as conf
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from billing_platform.errors import FieldError
from billing_platform.periods import clamp_day, local_date, local_midnight
from customers.models import Customer
from invoicing.composition import BillingContext, Composition, billing_context_load, compose
from invoicing.einvoice import einvoice_applies, einvoice_incomplete_detail, einvoice_missing
from invoicing.errors import BillingDateNotArrived
from invoicing.events import bill_run_completed_emit
from invoicing.models import (
    BillRun,
    BillRunCustomer,
    BillRunStatus,
    Invoice,
    InvoiceKind,
    InvoiceStatus,
    InvoicingSettings,
)
from invoicing.services.generation import invoice_dated, invoices_write
from subscriptions.models import SubscriptionStatus
from subscriptions.selectors import subscriptions_ended_billed_on
from tenancy.actors import Actor
from tenancy.models import Tenant
from tenancy.services import audit_record
from usage.errors import UsageArchived

logger = logging.getLogger(__name__)

CHUNK_SIZE = 200  # the default of settings.BILL_RUN_CHUNK_SIZE
FINISHED = (BillRunStatus.COMPLETED, BillRunStatus.COMPLETED_WITH_ERRORS)
WRITE_BATCH = 50

T = TypeVar("T")
# A customer's outcome in a run: (customer, "invoiced" | "existing" | "nothing" | "failed", its
# invoice, the reason it failed).
Outcome = tuple[Customer, str, Invoice | None, str]


def customers_due(*, tenant: Tenant, billing_date: date, at: datetime) -> list[Any]:
    """Customers whose billing day falls on ``billing_date`` (clamped in short months), who have a live
    subscription (or one that ended during the period closing on that date), and whose local midnight
    of that date has passed at ``at``."""
    days = [billing_date.day]
    if clamp_day(billing_date.year, billing_date.month, 31) == billing_date:
        days += list(range(billing_date.day + 1, 32))  # 29, 30, 31 fall on the 28th of February
    ended = subscriptions_ended_billed_on(tenant=tenant, billing_date=billing_date, billing_days=days)
    candidates = (
        Customer.objects.filter(tenant=tenant, billing_day__in=days)
        .filter(Q(subscriptions__status__in=SubscriptionStatus.LIVE) | Q(pk__in={s.customer_id for s in ended}))
        .distinct()
        .values_list("pk", "timezone")
    )
    return [pk for pk, tz in candidates if local_midnight(billing_date, tz) <= at]


def _billing_date_check(*, tenant: Tenant, billing_date: date, at: datetime) -> None:
    """Refuse a run for a date that has not arrived: it would find nobody due and complete with
    nothing billed. The date has arrived once it is that day in the tenant's time zone, or in the zone
    of one of its customers (a Paris tenant bills its Tokyo customers on their 1 April while it is
    still 31 March in Paris; the schedule starts runs for such dates)."""
    zones = {tenant.timezone} | set(
        Customer.objects.filter(tenant=tenant).order_by().values_list("timezone", flat=True).distinct()
    )
    dates = {tz: local_date(at, tz) for tz in zones}
    today = max(dates.values())
    if billing_date <= today:
        return
    zone = tenant.timezone if dates[tenant.timezone] == today else min(tz for tz in zones if dates[tz] == today)
    message = "The billing date %s has not arrived yet: it is %s in %s." % (billing_date, today, zone)
    raise BillingDateNotArrived(
        message,
        errors=[FieldError("billing_date", "not_arrived", message)],
        extra={"today": today.isoformat(), "time_zone": zone},
    )


def bill_run_create(*, tenant: Tenant, billing_date: date, actor: Actor, at: datetime) -> BillRun:
    """Start a run for ``billing_date`` (``BillingDateNotArrived``, 422, for a date still to come);
    its Celery task is queued once the run is committed."""
    _billing_date_check(tenant=tenant, billing_date=billing_date, at=at)
    with transaction.atomic():
        run = BillRun.objects.create(tenant=tenant, billing_date=billing_date)
        audit_record(
            tenant=tenant,
            actor=actor,
            action="bill_run.started",
            object_type="bill_run",
            object_id=str(run.pk),
            at=at,
            after={"billing_date": billing_date.isoformat()},
        )
        from invoicing.tasks import bill_run_execute_task

        pk, tenant_id = str(run.pk), str(tenant.pk)
        transaction.on_commit(lambda: bill_run_execute_task.delay(pk, tenant_id=tenant_id))
    return run


def bill_run_plan(*, run: BillRun, at: datetime) -> list[list[str]]:
    """Find the customers due, set the total, and split them into chunks for the workers. Only a
    pending run is planned, once: a run already planned, running or finished (its task delivered
    again, queued twice, or run in process by its caller before the queued task) plans nothing: its
    chunks, counters, times and completion event stay as they are (a running run whose chunks were
    lost is the watchdog's, ``bill_run_resume``)."""
    with transaction.atomic():
        if not BillRun.objects.select_for_update().filter(pk=run.pk, status=BillRunStatus.PENDING).exists():
            return []
        ids = [str(pk) for pk in customers_due(tenant=run.tenant, billing_date=run.billing_date, at=at)]
        BillRun.objects.filter(pk=run.pk).update(
            status=BillRunStatus.RUNNING, total=len(ids), started_at=at, progressed_at=timezone.now()
        )
        if not ids:
            _maybe_finish(run.pk, at)
    return _chunked(ids)


def _chunked(ids: list[str]) -> list[list[str]]:
    size = conf.BILL_RUN_CHUNK_SIZE
    return [ids[i : i + size] for i in range(0, len(ids), size)]


def bill_run_resume(run: BillRun, at: datetime) -> int:
    """Take up again a run that stopped moving (``billing_platform.jobs``; the caller holds its row):
    a run never planned is planned again; a running one gets its customers not handled yet, the ones
    due when it was planned, queued again in chunks once the caller commits. With none left (its
    worker died between its last batch and the finish), the run is finished, on the customers it
    handled. Returns how many chunks were queued again."""
    from invoicing.tasks import bill_run_chunk_task, bill_run_execute_task

    pk, tenant_id = str(run.pk), str(run.tenant_id)
    if run.status == BillRunStatus.PENDING:
        transaction.on_commit(lambda: bill_run_execute_task.delay(pk, tenant_id=tenant_id))
        return 0
    due = customers_due(tenant=run.tenant, billing_date=run.billing_date, at=run.started_at or at)
    handled = set(BillRunCustomer.objects.filter(bill_run=run).values_list("customer_id", flat=True))
    # Bounded by the planned total: customers that became due since planning are not this run's (else
    # done + failed would pass the total and finish the run while its chunks still bill).
    ids = [str(customer) for customer in due if customer not in handled][: max(run.total - len(handled), 0)]
    if not ids:
        BillRun.objects.filter(pk=run.pk).update(total=F("done") + F("failed"))
        _maybe_finish(run.pk, at)
        return 0
    chunks = _chunked(ids)
    transaction.on_commit(
        lambda: celery_group(bill_run_chunk_task.s(pk, chunk, tenant_id=tenant_id) for chunk in chunks).apply_async()
    )
    return len(chunks)


def bill_run_chunk(*, run_id: str, customer_ids: Sequence[str], at: datetime) -> None:
    """Invoice a chunk of customers. What composing their invoices reads is loaded once for the
    chunk. Customers are then written by batches of ``WRITE_BATCH``, each in one transaction: the
    invoices, lines, taxes, ledger entries, outcome rows and the run's counters of the batch commit
    together (one statement per table), so a worker killed mid-chunk leaves nothing half done and a
    retry redoes only what did not commit. One customer's failure is recorded with its reason and
    does not stop the others (``BillRunChunk``); a customer already handled by this run (a retried
    chunk) is skipped."""
    run = BillRun.objects.select_related("tenant").get(pk=run_id)
    settings, _ = InvoicingSettings.objects.get_or_create(tenant=run.tenant)
    handled = set(
        BillRunCustomer.objects.filter(bill_run=run, customer_id__in=customer_ids).values_list("customer_id", flat=True)
    )
    customers = list(
        Customer.objects.filter(tenant=run.tenant, pk__in=customer_ids).exclude(pk__in=handled).order_by("pk")
    )
    for customer in customers:
        customer.tenant = run.tenant
    BillRunChunk(run=run, settings=settings, at=at).bill(customers)
    _maybe_finish(run.pk, at)


class BillRunChunk:
    """Bills a chunk of a run's customers: read together, written by batches, and one customer at a
    time where that fails.

    Both steps fall back the same way, one rung: a step that fails for a group of customers is done
    again for each of them alone. A batch that cannot be written whole (another worker invoiced one
    of its customers meanwhile) is written customer by customer; when one customer's data breaks the
    chunk's shared reads, each customer is read (and then written) alone. A customer that fails
    alone has failed: that is its outcome, recorded with the reason, and the others go on.
    """

    def __init__(self, *, run: BillRun, settings: InvoicingSettings, at: datetime) -> None:
        self.run = run
        self.settings = settings
        self.at = at
        self.einvoices = einvoice_applies(run.tenant, settings)

    def bill(self, customers: Sequence[Customer]) -> None:
        # Reads failing point at broken data (a warning); a write racing another worker is routine.
        read = self._each_alone_on_failure(customers, self._read, doing="read", level=logging.WARNING)
        for group, context in read:
            for i in range(0, len(group), WRITE_BATCH):
                write = partial(self._write, context=context)
                self._each_alone_on_failure(group[i : i + WRITE_BATCH], write, doing="written", level=logging.INFO)

    def _each_alone_on_failure(
        self, customers: Sequence[Customer], step: Callable[[list[Customer]], T], *, doing: str, level: int
    ) -> list[tuple[list[Customer], T]]:
        """``step`` for all the customers at once; if it fails, for each of them alone. Returns what
        each step that succeeded returned, with its customers."""
        done: list[tuple[list[Customer], T]] = []
        todo = [list(customers)]
        while todo:
            group = todo.pop(0)
            try:
                done.append((group, step(group)))
            except SoftTimeLimitExceeded:
                raise  # the task's time is up: the customers not written stay unhandled, for a retry
            except Exception as exc:  # a customer's failure is data for the run, not a crash of it
                if len(group) == 1:
                    self._failed_alone(group[0], exc)
                else:
                    logger.log(
                        level, "bill run %s: %d customers %s one at a time: %s", self.run.pk, len(group), doing, exc
                    )
                    todo[:0] = [[customer] for customer in group]
        return done

    def _read(self, customers: list[Customer]) -> BillingContext:
        return billing_context_load(
            tenant=self.run.tenant,
            customers=customers,
            billing_date=self.run.billing_date,
            bill_suspended=self.settings.bill_while_suspended,
        )

    def _write(self, customers: list[Customer], *, context: BillingContext) -> None:
        """Compose every customer (a failure is that customer's outcome), then write them all with
        their outcomes, in one transaction."""
        with transaction.atomic():
            outcomes: list[Outcome] = []
            compositions: list[Composition] = []
            for customer in customers:
                existing = context.existing.get(customer.pk)
                if existing is not None:
                    outcomes.append((customer, "existing", existing, ""))
                    continue
                try:
                    composition = compose(customer=customer, billing_date=self.run.billing_date, context=context)
                except SoftTimeLimitExceeded:
                    raise  # not the customer's failure: the batch rolls back and stays unhandled
                except Exception as exc:  # a customer's failure is data for the run, not a crash of it
                    outcomes.append((customer, "failed", None, self._failure(customer, exc)))
                    continue
                if not composition.lines:
                    outcomes.append((customer, "nothing", None, ""))
                    continue
                # An invoice finalized as it is written must be a valid e-invoice: else the
                # customer fails, with what is missing, and nothing is written for it.
                if self.settings.auto_finalize and self.einvoices:
                    missing = einvoice_missing(
                        tenant=self.run.tenant,
                        customer=customer,
                        vat_categories={x.vat_category for x in composition.lines},
                    )
                    if missing:
                        reason = einvoice_incomplete_detail(missing)
                        logger.warning("bill run %s: customer %s not invoiced: %s", self.run.pk, customer.pk, reason)
                        outcomes.append((customer, "failed", None, reason))
                        continue
                compositions.append(composition)
            finalize_with = self.settings if self.settings.auto_finalize else None
            invoices = invoices_write(compositions, bill_run=self.run, at=self.at, finalize_with=finalize_with)
            outcomes += [(invoice.customer, "invoiced", invoice, "") for invoice in invoices]
            self._record(outcomes)

    def _failed_alone(self, customer: Customer, exc: Exception) -> None:
        """The outcome of a customer whose step failed even alone."""
        if isinstance(exc, IntegrityError):
            # Another worker invoiced this customer first, or a concurrent retry of this chunk recorded
            # it: record what is there, unless the outcome already is.
            with transaction.atomic():
                if not BillRunCustomer.objects.filter(bill_run=self.run, customer=customer).exists():
                    invoice = invoice_dated(customer, self.run.billing_date)
                    self._record([(customer, "nothing" if invoice is None else "existing", invoice, "")])
            return
        error = self._failure(customer, exc)
        try:
            with transaction.atomic():
                self._record([(customer, "failed", None, error)])
        except IntegrityError:
            pass  # recorded by a concurrent retry of this chunk

    def _failure(self, customer: Customer, exc: Exception) -> str:
        logger.warning("bill run %s: customer %s failed: %s", self.run.pk, customer.pk, exc)
        months = exc.extra.get("archived_months") if isinstance(exc, UsageArchived) else None
        if months:
            # Re-billing an archived month (its invoice voided) needs its raw events for a
            # unique_count meter: say what the operator does about it.
            return _(
                "The raw usage events of %(months)s are archived and this invoice needs them: restore "
                "them (%(commands)s), then bill this customer again."
            ) % {
                "months": ", ".join(months),
                "commands": "; ".join("manage.py usage_restore %s" % month for month in months),
            }
        return str(getattr(exc, "detail", None) or str(exc) or exc.__class__.__name__)

    def _record(self, outcomes: Sequence[Outcome]) -> None:
        """The customers' outcome rows and the run's counters, in the caller's transaction (a row is
        unique per run and customer, so a customer is never counted twice)."""
        if not outcomes:
            return
        run = self.run
        BillRunCustomer.objects.bulk_create(
            [
                BillRunCustomer(
                    tenant=run.tenant,
                    bill_run=run,
                    customer=customer,
                    outcome=outcome,
                    invoice=invoice,
                    error=error[:2000],
                )
                for customer, outcome, invoice, error in outcomes
            ]
        )
        failed = sum(1 for _, outcome, _, _ in outcomes if outcome == "failed")
        BillRun.objects.filter(pk=run.pk).update(
            progressed_at=timezone.now(),  # the run's heartbeat, read by the jobs watchdog
            done=F("done") + (len(outcomes) - failed),
            failed=F("failed") + failed,
            created=F("created") + sum(1 for _, outcome, _, _ in outcomes if outcome == "invoiced"),
        )


def _maybe_finish(run_id: Any, at: datetime) -> None:
    with transaction.atomic():
        run = BillRun.objects.select_for_update(of=("self",)).select_related("tenant").get(pk=run_id)
        if run.status in FINISHED:
            return
        if run.done + run.failed >= run.total:
            run.status = BillRunStatus.COMPLETED_WITH_ERRORS if run.failed else BillRunStatus.COMPLETED
            run.finished_at = at
            run.save(update_fields=["status", "finished_at"])
            bill_run_completed_emit(run, at=at)


def bill_runs_start_due(*, tenant: Tenant, at: datetime) -> int:
    """The schedule, for one tenant (a task per tenant, ``bill_runs_scheduled_task``): for today's and
    yesterday's dates (UTC), a run when the tenant has customers due and not yet invoiced. Local
    midnights decide who is due, so east and west of UTC are billed on their own billing day, once
    (pitfall #1). Returns how many runs were started."""
    started = 0
    for billing_date in sorted({at.date(), (at - timedelta(days=1)).date()}):
        due = customers_due(tenant=tenant, billing_date=billing_date, at=at)
        invoiced = (
            Invoice.objects.filter(
                tenant=tenant,
                kind=InvoiceKind.INVOICE,
                issue_date=billing_date,
                customer_id__in=due,
                order__isnull=True,
            )
            .exclude(status=InvoiceStatus.VOID)
            .count()
        )
        if due and invoiced < len(due):
            bill_run_create(tenant=tenant, billing_date=billing_date, actor=Actor.system("schedule"), at=at)
            started += 1
    return started
