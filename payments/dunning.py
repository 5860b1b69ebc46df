"""Dunning: reminders, retries, overdue events, suspension, reactivation and write-off, each step once
(specs/payments.md, "Collection and dunning").

One pass (``dunning_run``) reads a tenant's open invoices with their customers' time zones and
policies in a few queries, decides every step in memory, and records the steps due in one
``INSERT … ON CONFLICT DO NOTHING RETURNING``: a step is taken only when its row was inserted by
this pass, so a repeated or overlapping pass takes none twice (``dunning_step_once``). An
invoice's days past due are its customer's local date of ``at`` minus its due date.

Steps of an invoice, by days past due ``n``:

- reminder day ``d`` when ``n >= d``: one e-mail; when several are due at once (dunning turned on
  late) only the latest is sent, the earlier ones are recorded as skipped;
- ``invoice.overdue`` once, the first day past due (``n >= 1``);
- retry day ``d`` when ``n >= d``, for customers charged automatically: the invoice is charged
  again (``payments.charging.invoices_charge_enqueue``), once per pass however many days were missed;
- suspension when ``n >= suspend_after_days`` (1 at the least), once per invoice: the pass that
  records the invoice's suspension step suspends the subscriptions it bills (its lines'), if active
  or past due; later passes do not, for that invoice;
- write-off when ``n >= uncollectible_after_days``: ``uncollectible``, audited.

One rule decides both ways, "overdue enough": an open invoice at least its customer's
``suspend_after_days`` past due (``suspension_due``). A subscription suspended for non-payment is
active again once no open invoice billing it is overdue enough (``customers_reactivate_if_clear``,
called by the ledger when money settles invoices; every pass does it too), so the pass never
reactivates what it has just suspended. Once reactivated, it is suspended again only for an invoice
whose suspension step has not been taken: a new invoice crossing the threshold.
"""

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID

from django.db import connection, transaction
from django.db.models import OuterRef, Subquery
from djmoney.money import Money

from billing_platform.periods import local_date
from customers.models import Collection, Customer
from invoicing.events import invoice_event_data
from invoicing.models import Invoice, InvoiceKind, InvoiceLine, InvoicePaymentStatus, InvoiceStatus
from payments import charging
from payments.mail import reminder_message, reminders_send
from payments.models import DunningAction, DunningPolicy
from payments.models import DunningActionKind as K
from payments.policies import Policy, policies_load
from subscriptions.models import Subscription, SubscriptionEvent, SubscriptionStatus
from subscriptions.services import SUSPENDABLE, subscriptions_reactivate, subscriptions_suspend
from tenancy.actors import Actor
from tenancy.models import Tenant
from tenancy.services import audit_entry
from webhooks.outbox import events_emit

logger = logging.getLogger(__name__)

OPEN = (InvoicePaymentStatus.UNPAID, InvoicePaymentStatus.PARTIALLY_PAID)
OVERDUE_DAY = 1
NON_PAYMENT = "non_payment"
MAIL_BATCH = 200
# The furthest a customer's local date runs ahead of UTC (UTC+14, Kiribati).
MAX_AHEAD = timedelta(hours=14)
_ACTION_TABLE = DunningAction._meta.db_table


@dataclass
class DunningReport:
    """What one pass did: the invoices reminded, charged again, announced overdue and written off,
    and the subscriptions suspended and reactivated."""

    reminders: list[UUID] = field(default_factory=list)
    retries: list[UUID] = field(default_factory=list)
    overdue: list[UUID] = field(default_factory=list)
    suspensions: list[UUID] = field(default_factory=list)
    reactivations: list[UUID] = field(default_factory=list)
    write_offs: list[UUID] = field(default_factory=list)

    KINDS = ("reminders", "retries", "overdue", "suspensions", "reactivations", "write_offs")

    def counts(self) -> dict[str, int]:
        return {kind: len(getattr(self, kind)) for kind in self.KINDS}

    def as_dict(self) -> dict[str, Any]:
        """The API's report: the counts and ids of every kind, and ``attempts`` (payments.md's name
        for the charges a pass makes) beside ``retries``, the same invoices."""
        ids = {kind: [str(pk) for pk in getattr(self, kind)] for kind in self.KINDS}
        return {**self.counts(), "attempts": len(self.retries), "ids": {**ids, "attempts": ids["retries"]}}


@dataclass(frozen=True, slots=True)
class OpenInvoice:
    id: UUID
    number: str
    customer_id: UUID
    due_date: date
    today: date  # the customer's local date
    charged_automatically: bool
    policy: Policy

    @property
    def days_past_due(self) -> int:
        return (self.today - self.due_date).days


@dataclass(frozen=True, slots=True)
class Step:
    kind: str
    day: int
    detail: dict[str, Any]


def suspension_due(days_past_due: int, policy: Policy) -> bool:
    """Whether an open invoice this many days past due is overdue enough for its subscriptions to be
    (or stay) suspended under ``policy``: the one rule of suspension and reactivation."""
    return policy.suspend_after_days is not None and days_past_due >= policy.suspend_after_days


def invoice_steps(invoice: OpenInvoice, done: set[tuple[str, int]]) -> list[Step]:
    """The steps of ``invoice`` due by its customer's today and not taken yet."""
    n, policy = invoice.days_past_due, invoice.policy
    steps: list[Step] = []
    reminders = [d for d in policy.reminder_days if d <= n and (K.REMINDER, d) not in done]
    steps += [Step(K.REMINDER, d, {"sent": d == reminders[-1]}) for d in reminders]
    if n >= OVERDUE_DAY and (K.OVERDUE, OVERDUE_DAY) not in done:
        steps.append(Step(K.OVERDUE, OVERDUE_DAY, {}))
    if invoice.charged_automatically:
        retries = [d for d in policy.retry_days if d <= n and (K.RETRY, d) not in done]
        steps += [Step(K.RETRY, d, {"charged": d == retries[-1]}) for d in retries]
    # One suspension per invoice, whatever day the policy said when it was taken: once its
    # subscriptions were suspended for it, neither a later pass nor a policy changed since suspends
    # them again for it (a subscription reactivated by hand stays active).
    suspend = policy.suspend_after_days
    if suspend is not None and suspension_due(n, policy) and not any(kind == K.SUSPENSION for kind, _ in done):
        steps.append(Step(K.SUSPENSION, suspend, {}))
    write_off = policy.uncollectible_after_days
    if write_off is not None and n >= write_off and (K.UNCOLLECTIBLE, write_off) not in done:
        steps.append(Step(K.UNCOLLECTIBLE, write_off, {}))
    return steps


def open_invoices_load(
    *, tenant_id: Any, at: datetime, ahead_days: int | None = None, every_due_date: bool = False
) -> list[OpenInvoice]:
    """The tenant's open invoices (finalized, unpaid or partly paid, something due) with their
    customer's local date of ``at`` and policy: two queries. With ``ahead_days``, only those due by
    then (the earliest reminder day of every policy otherwise); with ``every_due_date``, all of them
    (the dunning queue: what happens next, however far ahead)."""
    tenant_policy, own = policies_load(tenant_id=tenant_id)
    if ahead_days is None:
        ahead_days = max(0, *(-min(p.reminder_days, default=0) for p in [tenant_policy, *own.values()]))
    invoices_open = Invoice.objects.filter(
        tenant_id=tenant_id,
        status=InvoiceStatus.FINALIZED,
        kind=InvoiceKind.INVOICE,
        payment_status__in=OPEN,
        due_date__isnull=False,
        amount_due__gt=0,
    )
    if not every_due_date:
        invoices_open = invoices_open.filter(due_date__lte=(at + MAX_AHEAD).date() + timedelta(days=ahead_days))
    rows = invoices_open.order_by("due_date", "pk").values_list(
        "pk", "number", "customer_id", "due_date", "customer__timezone", "customer__collection"
    )
    todays: dict[str, date] = {}
    invoices = []
    for pk, number, customer_id, due_date, tz, collection in rows:
        if due_date is None:  # excluded by the filter; for the type checker
            continue
        today = todays.get(tz) or todays.setdefault(tz, local_date(at, tz))
        invoices.append(
            OpenInvoice(
                id=pk,
                number=number,
                customer_id=customer_id,
                due_date=due_date,
                today=today,
                charged_automatically=collection == Collection.CHARGE_AUTOMATICALLY,
                policy=own.get(customer_id, tenant_policy),
            )
        )
    return invoices


def steps_done(invoice_ids: Sequence[UUID]) -> dict[UUID, set[tuple[str, int]]]:
    """The steps already taken for these invoices: one query."""
    done: dict[UUID, set[tuple[str, int]]] = defaultdict(set)
    if invoice_ids:
        for invoice_id, kind, day in DunningAction.objects.filter(invoice_id__in=list(invoice_ids)).values_list(
            "invoice_id", "kind", "day"
        ):
            done[invoice_id].add((kind, day))
    return done


def _steps_insert(
    *, tenant_id: Any, rows: Sequence[tuple[UUID, Step, date]], at: datetime
) -> set[tuple[UUID, str, int]]:
    """Insert these steps in one statement; a step another pass recorded first is left alone.
    Returns the (invoice, kind, day) inserted here: the steps this pass takes."""
    if not rows:
        return set()
    import json

    sql = f"""
        INSERT INTO {_ACTION_TABLE} (tenant_id, invoice_id, kind, day, "on", at, detail)
        SELECT %s, step.invoice_id, step.kind, step.day, step.local_day, %s, step.detail::jsonb
        FROM unnest(%s::uuid[], %s::text[], %s::int[], %s::date[], %s::text[])
            AS step(invoice_id, kind, day, local_day, detail)
        ON CONFLICT DO NOTHING
        RETURNING invoice_id, kind, day
    """
    params = [
        tenant_id,
        at,
        [invoice_id for invoice_id, _, _ in rows],
        [step.kind for _, step, _ in rows],
        [step.day for _, step, _ in rows],
        [on for _, _, on in rows],
        [json.dumps(step.detail) for _, step, _ in rows],
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {(invoice_id, kind, day) for invoice_id, kind, day in cursor.fetchall()}


def subscriptions_billed(invoice_ids: Iterable[UUID]) -> dict[UUID, set[UUID]]:
    """The subscriptions each invoice bills (its lines'): one query."""
    billed: dict[UUID, set[UUID]] = defaultdict(set)
    ids = list(invoice_ids)
    if ids:
        for invoice_id, subscription_id in (
            InvoiceLine.objects.filter(invoice_id__in=ids, subscription__isnull=False)
            .values_list("invoice_id", "subscription_id")
            .distinct()
        ):
            billed[invoice_id].add(subscription_id)
    return billed


def _overdue_emit(tenant: Tenant, invoice_ids: Sequence[UUID], billed: dict[UUID, set[UUID]], at: datetime) -> None:
    """``invoice.overdue`` for each invoice, with its days past due: one statement for all."""
    if not invoice_ids:
        return
    invoices = list(Invoice.objects.filter(pk__in=list(invoice_ids)).select_related("customer").defer("pdf"))
    external = dict(
        Subscription.objects.filter(pk__in={s for i in invoices for s in billed.get(i.pk, ())}).values_list(
            "pk", "external_id"
        )
    )
    events = []
    for invoice in invoices:
        data = invoice_event_data(invoice, sorted(external[s] for s in billed.get(invoice.pk, ())))
        data.update(
            payment_status=invoice.payment_status, due_date=invoice.due_date.isoformat() if invoice.due_date else None
        )
        events.append(("invoice.overdue", data))
    events_emit(tenant=tenant, events=events, at=at)


def _write_off(tenant: Tenant, invoice_ids: Sequence[UUID], at: datetime) -> list[UUID]:
    """Mark these invoices uncollectible (those still open), audited: one update, one insert."""
    if not invoice_ids:
        return []
    written = list(
        Invoice.objects.filter(pk__in=list(invoice_ids), payment_status__in=OPEN).values_list("pk", "payment_status")
    )
    Invoice.objects.filter(pk__in=[pk for pk, _ in written]).update(payment_status=InvoicePaymentStatus.UNCOLLECTIBLE)
    actor = Actor.system("dunning")
    from tenancy.models import AuditLogEntry

    AuditLogEntry.objects.bulk_create(
        [
            audit_entry(
                tenant=tenant,
                actor=actor,
                action="invoice.written_off",
                object_type="invoice",
                object_id=str(pk),
                at=at,
                before={"payment_status": status},
                after={"payment_status": InvoicePaymentStatus.UNCOLLECTIBLE},
            )
            for pk, status in written
        ]
    )
    return [pk for pk, _ in written]


def _suspend(
    tenant: Tenant, invoices: Sequence[OpenInvoice], billed: dict[UUID, set[UUID]], at: datetime
) -> list[UUID]:
    """Suspend the active (or past due) subscriptions billed on these invoices, with the invoices that
    caused it on their timeline and event; one ``suspension`` action per subscription."""
    causes: dict[UUID, list[str]] = defaultdict(list)
    for invoice in invoices:
        for subscription_id in billed.get(invoice.id, ()):
            causes[subscription_id].append(invoice.number)
    if not causes:
        return []
    suspendable = list(
        Subscription.objects.filter(pk__in=list(causes), status__in=sorted(SUSPENDABLE)).values_list("pk", flat=True)
    )
    if not suspendable:
        return []
    detail = {pk: {"invoices": sorted(causes[pk])} for pk in suspendable}
    suspended = subscriptions_suspend(
        tenant=tenant, subscription_ids=suspendable, at=at, reason=NON_PAYMENT, detail=detail
    )
    DunningAction.objects.bulk_create(
        [
            DunningAction(
                tenant=tenant,
                subscription=s,
                kind=K.SUSPENSION,
                on=local_date(at, s.customer.timezone),
                at=at,
                detail=detail[s.pk],
            )
            for s in suspended
        ]
    )
    return [s.pk for s in suspended]


def _reactivate(*, tenant: Tenant, customer_ids: Sequence[UUID] | None, at: datetime) -> list[UUID]:
    """Reactivate the subscriptions suspended for non-payment (their latest suspension or
    reactivation action is a suspension) of these customers (all with None) that no overdue invoice
    bills any more: "when nothing is overdue any more (paid, credited or written off)" (payments.md).
    A younger invoice past due but under the suspension threshold keeps them suspended; it never
    suspends them again by itself before it reaches the threshold, so nothing flaps. Four queries,
    then the reactivation's writes."""
    last_action = (
        DunningAction.objects.filter(subscription=OuterRef("pk"), kind__in=[K.SUSPENSION, K.REACTIVATION])
        .order_by("-at", "-id")
        .values("kind")[:1]
    )
    candidates = Subscription.objects.filter(tenant=tenant, status=SubscriptionStatus.SUSPENDED)
    if customer_ids is not None:
        candidates = candidates.filter(customer_id__in=list(customer_ids))
    suspended = dict(
        candidates.annotate(last=Subquery(last_action))
        .filter(last=K.SUSPENSION)
        .values_list("pk", "customer__timezone")
    )
    if not suspended:
        return []
    billing = list(
        InvoiceLine.objects.filter(
            subscription_id__in=list(suspended),
            invoice__status=InvoiceStatus.FINALIZED,
            invoice__kind=InvoiceKind.INVOICE,
            invoice__payment_status__in=OPEN,
            invoice__amount_due__gt=0,
            invoice__due_date__isnull=False,
        )
        .values_list("subscription_id", "invoice__due_date", "invoice__customer_id", "invoice__customer__timezone")
        .distinct()
    )
    blocked = set()
    if billing:
        tenant_policy, own = policies_load(tenant_id=tenant.pk, customer_ids={row[2] for row in billing})
        todays: dict[str, date] = {}
        for subscription_id, due_date, customer_id, tz in billing:
            today = todays.get(tz) or todays.setdefault(tz, local_date(at, tz))
            if due_date is None:
                continue
            # Overdue in the customer's day, or due enough to suspend (a policy stored with 0 days
            # suspends on the due date itself: it must not be undone by the same pass).
            days = (today - due_date).days
            if days >= 1 or suspension_due(days, own.get(customer_id, tenant_policy)):
                blocked.add(subscription_id)
    clear = [pk for pk in suspended if pk not in blocked]
    if not clear:
        return []
    reactivated = subscriptions_reactivate(tenant=tenant, subscription_ids=clear, at=at, reason="paid")
    DunningAction.objects.bulk_create(
        [
            DunningAction(
                tenant=tenant, subscription=s, kind=K.REACTIVATION, on=local_date(at, s.customer.timezone), at=at
            )
            for s in reactivated
        ]
    )
    return [s.pk for s in reactivated]


def customers_reactivate_if_clear(*, tenant_id: UUID, customer_ids: Sequence[UUID], at: datetime) -> None:
    """Reactivate the suspended subscriptions of these customers that have nothing overdue any more,
    in the caller's transaction (the ledger calls it when a payment or credit settles invoices)."""
    if not customer_ids:
        return
    tenant = Tenant.objects.get(pk=tenant_id)
    with transaction.atomic():
        _reactivate(tenant=tenant, customer_ids=customer_ids, at=at)


def dunning_run(*, tenant_id: Any, at: datetime) -> DunningReport:
    """One dunning pass over the tenant's open invoices at ``at`` (module docstring). The steps'
    writes and events commit together; the reminder e-mails go out after. Running it again the same
    day does nothing more."""
    tenant = Tenant.objects.get(pk=tenant_id)
    report = DunningReport()
    reminders: list[tuple[UUID, int]] = []
    with transaction.atomic():
        invoices = open_invoices_load(tenant_id=tenant.pk, at=at)
        by_id = {i.id: i for i in invoices}
        done = steps_done(list(by_id))
        rows = [(i.id, step, i.today) for i in invoices for step in invoice_steps(i, done[i.id])]
        taken = _steps_insert(tenant_id=tenant.pk, rows=rows, at=at)
        chosen = {(pk, s.kind, s.day) for pk, s, _ in rows if s.detail.get("sent") or s.detail.get("charged")}

        report.write_offs = _write_off(tenant, sorted({pk for pk, kind, _ in taken if kind == K.UNCOLLECTIBLE}), at)
        written_off = set(report.write_offs)
        # Only the invoices whose suspension step this pass recorded: the step is taken once.
        suspending = [by_id[pk] for pk in sorted({pk for pk, kind, _ in taken if kind == K.SUSPENSION} - written_off)]
        overdue = sorted({pk for pk, kind, _ in taken if kind == K.OVERDUE})
        billed = subscriptions_billed({i.id for i in suspending} | set(overdue))
        _overdue_emit(tenant, overdue, billed, at)
        report.overdue = overdue
        report.retries = sorted(
            {pk for pk, kind, day in taken if kind == K.RETRY and (pk, kind, day) in chosen} - written_off
        )
        if report.retries:
            charging.invoices_charge_enqueue(report.retries, tenant_id=tenant.pk, trigger="dunning")
        report.suspensions = _suspend(tenant, suspending, billed, at)
        report.reactivations = _reactivate(tenant=tenant, customer_ids=None, at=at)
        reminders = sorted(
            (pk, by_id[pk].days_past_due)
            for pk, kind, day in taken
            if kind == K.REMINDER and (pk, kind, day) in chosen and pk not in written_off
        )
    report.reminders = [pk for pk, _ in reminders]
    _reminders_send(tenant, reminders)
    logger.info("dunning pass", extra={"tenant_id": str(tenant.pk), **report.counts()})
    return report


def _reminders_send(tenant: Tenant, reminders: Sequence[tuple[UUID, int]]) -> None:
    pay_url = (
        DunningPolicy.objects.filter(tenant=tenant, customer__isnull=True).values_list("pay_url", flat=True).first()
        or ""
    )
    for start in range(0, len(reminders), MAIL_BATCH):
        batch = dict(reminders[start : start + MAIL_BATCH])
        invoices = Invoice.objects.filter(pk__in=list(batch)).select_related("customer").order_by("number")
        messages = []
        for invoice in invoices:
            invoice.tenant = tenant
            messages.append(
                (invoice, reminder_message(invoice=invoice, days_past_due=batch[invoice.pk], pay_url=pay_url))
            )
        reminders_send(messages)


# --- the queue: what happens next, to whom, and when ------------------------------------------------


@dataclass(frozen=True, slots=True)
class QueueEntry:
    """An open invoice and its next dunning steps: those the pass of the customer's local day ``on``
    takes (several when they fall on one day, e.g. the reminder and the retry of day 7); ``on`` is the
    customer's today when steps are already due (dunning turned on late), else the due date plus the
    step's day. No steps (and no day) when the policy plans nothing more for it."""

    invoice_id: UUID
    number: str
    customer_id: UUID
    customer_name: str
    customer_external_id: str
    amount_due: Money
    due_date: date
    days_past_due: int
    steps: tuple[Step, ...]
    on: date | None

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(step.kind for step in self.steps)


@dataclass(frozen=True, slots=True)
class SuspendedSubscription:
    subscription_id: UUID
    external_id: str
    customer_id: UUID
    customer_name: str
    customer_external_id: str
    since: datetime | None


def _step_days(invoice: OpenInvoice) -> list[int]:
    """Every day past due on which ``invoice`` may take a step under its policy, in order."""
    policy = invoice.policy
    days = {*policy.reminder_days, OVERDUE_DAY}
    if invoice.charged_automatically:
        days.update(policy.retry_days)
    days.update(d for d in (policy.suspend_after_days, policy.uncollectible_after_days) if d is not None)
    return sorted(days)


def invoice_next_steps(invoice: OpenInvoice, done: set[tuple[str, int]]) -> tuple[date | None, list[Step]]:
    """The local day of ``invoice``'s next steps and those steps, asking ``invoice_steps`` (what the pass
    takes) on each day a step may fall: the queue and the pass cannot disagree. Steps due and not
    taken are due today; otherwise on the first step day after today with a step not taken."""
    steps = invoice_steps(invoice, done)
    if steps:
        return invoice.today, steps
    for day in _step_days(invoice):
        if day > invoice.days_past_due:
            on = invoice.due_date + timedelta(days=day)
            steps = invoice_steps(replace(invoice, today=on), done)
            if steps:
                return on, steps
    return None, []


def dunning_queue(*, tenant_id: Any, as_of: datetime, limit: int = 200) -> list[QueueEntry]:
    """The tenant's open invoices with their next dunning steps as of ``as_of``, by the day they
    happen (invoices with nothing planned last), then customer name and invoice number; the first
    ``limit``. Five queries: policies, open invoices, steps taken, customer names, the entries'
    amounts."""
    invoices = open_invoices_load(tenant_id=tenant_id, at=as_of, every_due_date=True)
    done = steps_done([i.id for i in invoices])
    names = (
        dict(Customer.objects.filter(pk__in={i.customer_id for i in invoices}).values_list("pk", "name"))
        if invoices
        else {}
    )
    planned = []
    for invoice in invoices:
        on, steps = invoice_next_steps(invoice, done[invoice.id])
        planned.append((on or date.max, names.get(invoice.customer_id, ""), invoice.number, on, invoice, steps))
    planned.sort(key=lambda p: p[:3])
    planned = planned[:limit]
    details = (
        {
            pk: (Money(amount, currency), external_id)
            for pk, amount, currency, external_id in Invoice.objects.filter(
                pk__in=[p[4].id for p in planned]
            ).values_list("pk", "amount_due", "currency", "customer__external_id")
        }
        if planned
        else {}
    )
    return [
        QueueEntry(
            invoice_id=invoice.id,
            number=invoice.number,
            customer_id=invoice.customer_id,
            customer_name=name,
            customer_external_id=details[invoice.id][1],
            amount_due=details[invoice.id][0],
            due_date=invoice.due_date,
            days_past_due=invoice.days_past_due,
            steps=tuple(steps),
            on=on,
        )
        for _, name, _, on, invoice, steps in planned
    ]


def suspended_subscriptions(*, tenant_id: Any) -> list[SuspendedSubscription]:
    """The tenant's subscriptions suspended now, with the instant of their latest suspension (from the
    timeline), by customer name: one query."""
    since = (
        SubscriptionEvent.objects.filter(subscription=OuterRef("pk"), to_status=SubscriptionStatus.SUSPENDED)
        .order_by("-at", "-id")
        .values("at")[:1]
    )
    rows = (
        Subscription.objects.filter(tenant_id=tenant_id, status=SubscriptionStatus.SUSPENDED)
        .annotate(since=Subquery(since))
        .order_by("customer__name", "external_id")
        .values_list("pk", "external_id", "customer_id", "customer__name", "customer__external_id", "since")
    )
    return [
        SuspendedSubscription(
            subscription_id=pk,
            external_id=external_id,
            customer_id=customer_id,
            customer_name=name,
            customer_external_id=customer_external_id,
            since=since_at,
        )
        for pk, external_id, customer_id, name, customer_external_id, since_at in rows
    ]
