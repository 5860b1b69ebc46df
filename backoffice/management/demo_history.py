"""The demo's billing history, made by the product's own services at the instants they would have run,
relative to the day the demo is seeded: subscriptions signed and devices activated, usage sent each
period, a bill run on every billing date with its drafts finalized, payments received, and a dunning
pass now. Nothing here writes a billing row itself, so the history follows the rules as they change.

Devices are activated by the device cloud's signed webhooks, received and applied as the endpoint
would (Billing → Device webhooks shows them), and the recognition runs of the past months are run
as Finance → Revenue runs starts them.

- Transports Dupont (billing day 1, 30 days to pay): billing.md's Smart Fleet subscription signed three
  months ago (devices A, B, C), three invoices: the oldest paid by transfer, the next in part, the
  latest open. Its own dunning policy reminds it and never suspends it.
- Nordic Logistics (billing day 15): a subscription whose first invoice, unpaid, is 22 to 53 days past
  due now (past the default suspension at 21 days, short of the write-off at 60): the pass reminds it,
  announces it overdue and suspends the subscription. Its latest invoice is a draft, left for review.
- Pacific Haulage (USD, last day of the month): a subscription signed two months ago, its invoices paid
  by cheque but the latest, paid by a transfer rounded up to the next 50 dollars: the rest is kept on
  its credit balance.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from djmoney.money import Money
from standardwebhooks import Webhook

from billing_platform.periods import (
    add_months,
    billing_date_on_or_before,
    clamp_day,
    local_date,
    local_midnight,
    next_billing_date,
)
from catalog.models import Plan, PriceVersion
from catalog.services import price_version_create
from customers.models import Customer
from invoicing.models import Invoice, InvoiceKind, InvoiceStatus
from invoicing.services import bill_run_chunk, bill_run_create, bill_run_drafts_finalize, bill_run_plan
from payments.dunning import DunningReport, dunning_run
from payments.ledger import payment_record
from payments.policies import customer_policy_set
from subscriptions.models import Subscription
from subscriptions.services import subscription_create
from subscriptions.webhooks import webhook_apply, webhook_receive
from tenancy.actors import Actor
from tenancy.models import Tenant
from usage.ingest import events_ingest

# The Smart Fleet plan's prices for customers paying in US dollars.
USD_PRICES = {
    "currency": "USD",
    "components": [
        {"product": "eld-200", "price": "260.00"},
        {"product": "fleet-platform", "charge": {"model": "flat", "amount": "29.00"}},
        {
            "product": "data-overage",
            "charge": {
                "model": "graduated",
                "tiers": [{"up_to": 10000, "unit_amount": "0.012"}, {"up_to": None, "unit_amount": "0.006"}],
            },
        },
    ],
}

# MB of data_mb per device and billing period, oldest first; the last entry repeats for later ones.
# Dupont's first two are billing.md's March and April: its first invoices are the spec's.
USAGE = {
    "dupont": [{"A": 800, "B": 3000}, {"A": 5000, "B": 7000, "C": 2000}, {"A": 4200, "B": 6100, "C": 3900}],
    "nordlog": [{"N1": 1800, "N2": 2500}, {"N1": 2400, "N2": 3100}],
    "pacific-haul": [{"P1": 900, "P2": 1400}, {"P1": 1600, "P2": 2100}],
}
# What each device has sent so far in the period still open, shown as current usage.
CURRENT_USAGE = {"dupont": {"A": 600, "B": 900, "C": 450}, "nordlog": {"N1": 300}, "pacific-haul": {"P1": 250}}

# Dupont is reminded but never cut off: a long-standing customer that pays late.
DUPONT_POLICY = {
    "retry_days": [],
    "reminder_days": [-3, 7, 15],
    "suspend_after_days": None,
    "uncollectible_after_days": None,
}
# Where a bill run falls in the day, after the customers' local midnight; its drafts are finalized
# once reviewed, a little later.
RUN_HOUR = timedelta(hours=6)
REVIEWED_AFTER = timedelta(hours=3)
# The order of steps that share an instant.
SIGN, ACTIVATE, INGEST, BILL, PAY, DUN = range(6)
NON_SENDING_EMAIL_BACKENDS = frozenset(
    "django.core.mail.backends.%s.EmailBackend" % name for name in ("console", "locmem", "filebased", "dummy")
)


@dataclass
class History:
    """What seeding the history did."""

    invoices: int = 0
    drafts: int = 0
    payments: int = 0
    dunning: DunningReport = field(default_factory=DunningReport)


@dataclass(order=True)
class _Step:
    at: datetime
    kind: int
    run: Callable[[], None] = field(compare=False)


@dataclass
class _Timeline:
    now: datetime
    steps: list[_Step] = field(default_factory=list)

    def add(self, at: datetime, kind: int, run: Callable[[], None]) -> None:
        self.steps.append(_Step(min(at, self.now), kind, run))


def _at(day: date, hour: int, tz: str) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=ZoneInfo(tz))


def _months_before(day: date, months: int) -> date:
    year, month = add_months(day.year, day.month, -months)
    return clamp_day(year, month, day.day)


def _billing_day(customer: Customer) -> int:
    if customer.billing_day is None:  # every demo customer is created with its billing day
        raise ValueError("demo customer %s has no billing day" % customer.external_id)
    return customer.billing_day


def _billing_dates(customer: Customer, *, after: date, now: datetime) -> list[date]:
    """The customer's billing dates after ``after`` whose local midnight has passed at ``now``."""
    billing_day = _billing_day(customer)
    dates, day = [], next_billing_date(after, billing_day)
    while local_midnight(day, customer.timezone) <= now:
        dates.append(day)
        day = next_billing_date(day, billing_day)
    return dates


def billing_history_seed(*, tenant: Tenant, actor: Actor, now: datetime) -> History | None:
    """Seed the history once: None, doing nothing, when the tenant already has a subscription (the
    history is there, or someone else's subscriptions would be billed by its runs)."""
    if Subscription.objects.filter(tenant=tenant).exists():
        return None
    customers = {c.external_id: c for c in Customer.objects.filter(tenant=tenant)}
    plan = Plan.objects.get(tenant=tenant, code="smart-fleet")
    if not PriceVersion.objects.filter(tenant=tenant, plan=plan, currency="USD").exists():
        price_version_create(tenant=tenant, actor=actor, at=now, plan=plan, data=USD_PRICES)
    seed = _Seed(tenant=tenant, actor=actor, plan=plan, timeline=_Timeline(now))

    dupont = customers["dupont"]
    today = local_date(now, dupont.timezone)
    signed = _months_before(today, 3)
    dates = _billing_dates(dupont, after=signed, now=now)
    activations = {
        "A": _at(signed + timedelta(days=5), 9, dupont.timezone),
        "B": _at(signed + timedelta(days=10), 14, dupont.timezone),
        "C": _at(dates[0] + timedelta(days=9), 8, dupont.timezone),
    }
    seed.subscription(
        dupont, "dupont-fleet", _at(signed, 10, dupont.timezone), activations, dates, policy=DUPONT_POLICY
    )
    seed.payment(dupont, dates[0], _at(dates[0] + timedelta(days=20), 11, dupont.timezone), "bank_transfer")
    seed.payment(
        dupont,
        dates[1],
        _at(dates[1] + timedelta(days=25), 11, dupont.timezone),
        "bank_transfer",
        amount=Decimal("100.00"),
    )

    # Nordic's first billing date is the latest 15th at least 52 days ago: 30 days to pay, then 22 to
    # 53 days past due.
    nordlog = customers["nordlog"]
    first = billing_date_on_or_before(local_date(now, nordlog.timezone) - timedelta(days=52), _billing_day(nordlog))
    signed = first - timedelta(days=20)
    dates = [first, *_billing_dates(nordlog, after=first, now=now)]
    activation = _at(signed + timedelta(days=3), 9, nordlog.timezone)
    seed.subscription(
        nordlog, "nordlog-fleet", _at(signed, 10, nordlog.timezone), dict.fromkeys(("N1", "N2"), activation), dates
    )
    # Its latest bill run finished, and its draft is left for review (Billing → Invoices, Drafts).
    seed.for_review.add(dates[-1])

    pacific = customers["pacific-haul"]
    signed = _months_before(local_date(now, pacific.timezone), 2)
    dates = _billing_dates(pacific, after=signed, now=now)
    activation = _at(signed + timedelta(days=1), 9, pacific.timezone)
    seed.subscription(
        pacific, "pacific-fleet", _at(signed, 10, pacific.timezone), dict.fromkeys(("P1", "P2"), activation), dates
    )
    for day in dates[:-1]:
        seed.payment(pacific, day, _at(day + timedelta(days=12), 10, pacific.timezone), "cheque")
    seed.payment(
        pacific, dates[-1], _at(dates[-1] + timedelta(days=10), 10, pacific.timezone), "bank_transfer", round_up_to=50
    )

    history = History()
    seed.timeline.add(now, DUN, lambda: setattr(history, "dunning", dunning_run(tenant_id=tenant.pk, at=now)))
    for step in sorted(seed.timeline.steps):
        step.run()
    history.invoices = seed.invoices
    history.drafts = seed.drafts
    history.payments = seed.payments
    return history


@dataclass
class _Seed:
    tenant: Tenant
    actor: Actor
    plan: Plan
    timeline: _Timeline
    runs: dict[date, list[str]] = field(default_factory=dict)  # billing date -> the zones billed on it
    for_review: set[date] = field(default_factory=set)  # the runs whose drafts are left as they are
    invoices: int = 0
    drafts: int = 0
    payments: int = 0

    def subscription(
        self,
        customer: Customer,
        external_id: str,
        signed_at: datetime,
        activations: dict[str, datetime],
        dates: list[date],
        *,
        policy: dict[str, Any] | None = None,
    ) -> None:
        """Sign it with its devices, activate them, send each period's usage before its billing date
        and the open period's until now, and bill every date."""
        tenant, actor, now = self.tenant, self.actor, self.timeline.now

        def sign() -> None:
            subscription_create(
                tenant=tenant,
                actor=actor,
                at=signed_at,
                external_id=external_id,
                customer=customer,
                plan=self.plan,
                signed_at=signed_at,
                devices=[{"device_id": d, "device_type": "eld"} for d in activations],
            )
            if policy is not None:
                customer_policy_set(customer=customer, values=policy, actor=actor, at=signed_at)

        self.timeline.add(signed_at, SIGN, sign)
        for device, at in activations.items():
            self.timeline.add(at, ACTIVATE, _activation(tenant, device, at))
        starts = [local_midnight(local_date(signed_at, customer.timezone), customer.timezone)]
        starts += [local_midnight(day, customer.timezone) for day in dates]
        usage = USAGE[customer.external_id]
        for i, (start, end) in enumerate(zip(starts, starts[1:], strict=False)):
            mb = usage[min(i, len(usage) - 1)]
            events = _events(external_id, activations, mb, start, end, tag=dates[i].isoformat())
            self.timeline.add(end - timedelta(minutes=10), INGEST, _ingest(tenant, events, end - timedelta(minutes=10)))
        events = _events(external_id, activations, CURRENT_USAGE[customer.external_id], starts[-1], now, tag="open")
        self.timeline.add(now, INGEST, _ingest(tenant, events, now))
        for day in dates:
            if day not in self.runs:
                self.runs[day] = []
                self.timeline.add(local_midnight(day, customer.timezone) + RUN_HOUR, BILL, partial(self.bill, day))
            self.runs[day].append(customer.timezone)

    def bill(self, day: date) -> None:
        """The bill run of ``day`` at 06:00 in the latest of its customers' zones, run in process, and
        its drafts finalized after review (unless the run is left for review)."""
        now = self.timeline.now
        at = min(max(local_midnight(day, tz) for tz in self.runs[day]) + RUN_HOUR, now)
        run = bill_run_create(tenant=self.tenant, billing_date=day, actor=self.actor, at=at)
        for chunk in bill_run_plan(run=run, at=at):
            bill_run_chunk(run_id=str(run.pk), customer_ids=chunk, at=at)
        run.refresh_from_db()
        if day in self.for_review:
            self.drafts += Invoice.objects.filter(bill_run=run, status=InvoiceStatus.DRAFT).count()
            return
        done = bill_run_drafts_finalize(run=run, actor=self.actor, at=min(at + REVIEWED_AFTER, now))
        self.invoices += len(done.finalized)

    def payment(
        self,
        customer: Customer,
        billed_on: date,
        received_at: datetime,
        method: str,
        *,
        amount: Decimal | None = None,
        round_up_to: int | None = None,
    ) -> None:
        """A payment of the invoice of ``billed_on``: ``amount``, or what it owes (raised to the next
        multiple of ``round_up_to`` above it: the rest goes to the credit balance)."""

        def pay() -> None:
            invoice = Invoice.objects.get(
                tenant=self.tenant, customer=customer, kind=InvoiceKind.INVOICE, issue_date=billed_on
            )
            value = amount if amount is not None else invoice.amount_due.amount
            if round_up_to is not None:
                value = Decimal((value // round_up_to + 1) * round_up_to).quantize(Decimal("0.01"))
            payment_record(
                customer=customer,
                invoice=invoice,
                amount=Money(value, invoice.currency),
                method=method,
                received_at=at,
                actor=self.actor,
                at=at,
                reference="%s %s" % (customer.name.upper()[:20], invoice.number),
            )
            self.payments += 1

        at = min(received_at, self.timeline.now)
        self.timeline.add(at, PAY, pay)


def _activation(tenant: Tenant, device: str, at: datetime) -> Callable[[], None]:
    """The device cloud's ``device.activated`` webhook, signed with the tenant's secret as the device
    cloud signs it, received and applied as the endpoint and its task would (Device webhooks lists it)."""

    def activate() -> None:
        body = json.dumps(
            {"type": "device.activated", "data": {"device_id": device, "occurred_at": at.isoformat()}}
        ).encode()
        message_id = "msg_demo_%s_activated" % device
        signed_at = datetime.now(UTC)  # the signature's own instant: verified against the clock
        headers = {
            "webhook-id": message_id,
            "webhook-timestamp": str(int(signed_at.timestamp())),
            "webhook-signature": Webhook(tenant.device_cloud_secrets[0]).sign(message_id, signed_at, body.decode()),
        }
        webhook, _ = webhook_receive(tenant=tenant, body=body, headers=headers, content_type="application/json", at=at)
        webhook_apply(webhook_pk=str(webhook.pk), at=at)

    return activate


def _ingest(tenant: Tenant, events: list[dict[str, Any]], received_at: datetime) -> Callable[[], None]:
    def ingest() -> None:
        if events:
            result = events_ingest(tenant=tenant, events=events, received_at=received_at)
            refused = [r for r in result.results if r.status == "rejected"]
            if refused:
                raise ValueError("demo usage refused: %s" % refused)

    return ingest


def _events(
    subscription: str, activations: dict[str, datetime], mb: dict[str, int], start: datetime, end: datetime, *, tag: str
) -> list[dict[str, Any]]:
    """One data_mb event per device active before ``end``, half-way between its start in the period
    and ``end``."""
    events = []
    for device, value in mb.items():
        since = max(start, activations[device])
        if since >= end:
            continue
        events.append(
            {
                "transaction_id": "%s-%s-%s" % (subscription, device, tag),
                "code": "data_mb",
                "device_id": device,
                "timestamp": (since + (end - since) / 2).isoformat(),
                "properties": {"mb": value},
            }
        )
    return events
