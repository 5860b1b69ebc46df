"""Charging an invoice through the tenant's gateway: one open attempt per invoice (pitfall #6),
unknown outcomes reconciled before any new attempt (pitfall #7).

Charging has two steps, each in its own transaction:

1. ``attempt_open``: with the invoice row locked, reconcile any attempt whose outcome is unknown,
   check there is something to charge, and write the attempt (``created``). The partial unique
   index ``attempt_one_open_per_invoice`` refuses a second open attempt whatever path makes it.
2. ``attempt_send``: once the attempt is committed, create the off-session PaymentIntent with the
   attempt's idempotency key and its id in the metadata, then record the outcome. Stripe is never
   called from inside a transaction that could still roll back: the attempt that names the money
   must exist before the money moves, so that reconciliation can always find it.
"""

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import stripe
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max
from djmoney.money import Money

from billing_platform.errors import Conflict
from billing_platform.periods import local_date, local_midnight
from customers.models import Collection, Customer
from invoicing.models import Invoice, InvoiceKind, InvoicePaymentStatus, InvoiceStatus
from payments import ledger
from payments.charging_events import attempt_failed_events
from payments.gateway import from_minor_units, stripe_client, stripe_configured, to_minor_units
from payments.gateway_errors import AttemptInProgress, NothingToCharge, PaymentMethodMissing, StripeNotConfigured
from payments.models import (
    OPEN_ATTEMPT_STATUSES,
    AttemptStatus,
    Gateway,
    GatewayCustomer,
    Payment,
    PaymentAttempt,
    PaymentMethod,
)
from payments.policies import policies_load
from tenancy.actors import Actor

ACTOR = Actor.system("stripe")
# A ``created`` attempt is sent at once; one not sent by then is never sent (attempt_send refuses
# it), and after ``STALE_AFTER`` reconciliation may close it.
SEND_DEADLINE = timedelta(minutes=10)
STALE_AFTER = timedelta(minutes=15)
# PaymentIntent statuses that still take or may still take the customer's money.
_IN_FLIGHT = {"processing", "requires_action", "requires_confirmation", "requires_capture"}


class AttemptOutcomeUnknown(Conflict):
    code = "attempt_outcome_unknown"


def unknown_window() -> timedelta:
    """How long an ``unknown`` attempt that Stripe does not list stays ``unknown``.

    Not finding the PaymentIntent proves nothing at first: a request that timed out on our side may
    still be queued in a proxy, retried by the network or being processed at Stripe, and an intent
    shows in the customer's list only once created. Closing the attempt then and opening a new one
    could charge twice (pitfall #7). Past the window (settings.PAYMENT_ATTEMPT_UNKNOWN_WINDOW_SECONDS,
    an hour by default: far longer than any request can stay in flight, the client's own timeout
    being ``STRIPE_TIMEOUT_SECONDS``) a PaymentIntent still not found was never created."""
    return timedelta(seconds=settings.PAYMENT_ATTEMPT_UNKNOWN_WINDOW_SECONDS)


def next_retry_at(invoice: Invoice, *, at: datetime) -> datetime | None:
    """When dunning charges ``invoice`` again: local midnight, in its customer's time zone, of the
    first retry day of the customer's policy (or the tenant's) after the customer's today, days
    counting from the due date. None when the customer is not charged automatically, the invoice
    owes nothing any more or has no due date, or no retry day is left."""
    customer = invoice.customer
    if customer.collection != Collection.CHARGE_AUTOMATICALLY or invoice.due_date is None:
        return None
    if invoice.payment_status not in (InvoicePaymentStatus.UNPAID, InvoicePaymentStatus.PARTIALLY_PAID):
        return None
    tenant_policy, own = policies_load(tenant_id=invoice.tenant_id, customer_ids=[customer.pk])
    policy = own.get(customer.pk, tenant_policy)
    today = local_date(at, customer.timezone)
    for day in policy.retry_days:
        retry_on = invoice.due_date + timedelta(days=day)
        if retry_on > today:
            return local_midnight(retry_on, customer.timezone)
    return None


def _mark_failed(attempt: PaymentAttempt, *, code: str, message: str, at: datetime) -> None:
    """The attempt failed: no money was taken. Dunning's next retry, if any, is on it."""
    attempt.status = AttemptStatus.FAILED
    attempt.failure_code = code[:100]
    attempt.failure_message = message[:500]
    attempt.next_retry_at = next_retry_at(attempt.invoice, at=at)
    attempt.save(
        update_fields=["status", "failure_code", "failure_message", "gateway_id", "next_retry_at", "updated_at"]
    )
    attempt_failed_events(attempt, at=at)


def intent_payment_record(
    intent: Mapping[str, Any], *, customer: Customer, invoice: Invoice | None, at: datetime
) -> Payment:
    """The Payment of a succeeded PaymentIntent, recorded once by its id."""
    payment = Payment.objects.filter(tenant=customer.tenant, gateway=Gateway.STRIPE, gateway_id=intent["id"]).first()
    if payment is not None:
        return payment
    received = intent.get("amount_received") or intent["amount"]
    created = intent.get("created")
    return ledger.payment_record(
        customer=customer,
        amount=from_minor_units(received, intent["currency"]),
        method=PaymentMethod.CARD,
        received_at=datetime.fromtimestamp(created, tz=UTC) if created else at,
        actor=ACTOR,
        at=at,
        invoice=invoice,
        reference=intent["id"],
        gateway=Gateway.STRIPE,
        gateway_id=intent["id"],
    )


def _record_success(attempt: PaymentAttempt, intent: Mapping[str, Any], *, at: datetime) -> None:
    """The PaymentIntent took the money: one Payment, whichever path sees it first (the unique
    ``(tenant, gateway, gateway_id)`` of Payment and the ledger's idempotency)."""
    invoice = attempt.invoice
    payment = intent_payment_record(intent, customer=invoice.customer, invoice=invoice, at=at)
    attempt.status = AttemptStatus.SUCCEEDED
    attempt.payment = payment
    attempt.failure_code = attempt.failure_message = ""
    attempt.next_retry_at = None
    attempt.save(
        update_fields=[
            "status",
            "payment",
            "gateway_id",
            "failure_code",
            "failure_message",
            "next_retry_at",
            "updated_at",
        ]
    )


def intent_apply(attempt: PaymentAttempt, intent: Mapping[str, Any], *, at: datetime) -> PaymentAttempt:
    """Bring ``attempt`` (locked by the caller) in line with its PaymentIntent at Stripe. A final
    attempt is left alone, except that a success is always recorded."""
    attempt.gateway_id = intent["id"]
    status = intent.get("status")
    if status == "succeeded":
        if attempt.status != AttemptStatus.SUCCEEDED:
            _record_success(attempt, intent, at=at)
        return attempt
    if attempt.status in (AttemptStatus.SUCCEEDED, AttemptStatus.FAILED):
        return attempt
    if status in _IN_FLIGHT:
        attempt.status = AttemptStatus.PROCESSING
        attempt.save(update_fields=["status", "gateway_id", "updated_at"])
        return attempt
    # requires_payment_method (declined) or canceled: no money was taken.
    error = intent.get("last_payment_error") or {}
    code = error.get("decline_code") or error.get("code") or status
    message = error.get("message") or "The payment was %s." % status
    _mark_failed(attempt, code=str(code), message=str(message), at=at)
    return attempt


def _intent_find(client: stripe.StripeClient, attempt: PaymentAttempt) -> dict[str, Any] | None:
    """The attempt's PaymentIntent: by id when known, else among the customer's PaymentIntents by
    the attempt id in its metadata. Raises ``stripe.StripeError`` when Stripe cannot say."""
    if attempt.gateway_id:
        return client.v1.payment_intents.retrieve(attempt.gateway_id).to_dict()
    gateway_customer = GatewayCustomer.objects.filter(customer_id=attempt.invoice.customer_id).first()
    if gateway_customer is None:
        return None
    listed = client.v1.payment_intents.list(params={"customer": gateway_customer.gateway_customer_id, "limit": 100})
    for intent in listed.auto_paging_iter():
        found = intent.to_dict()
        if (found.get("metadata") or {}).get("attempt_id") == str(attempt.pk):
            return found
    return None


def attempt_reconcile(attempt: PaymentAttempt, *, at: datetime, client: stripe.StripeClient | None = None) -> None:
    """Ask Stripe what became of an open attempt (the caller holds the invoice's lock). A
    ``created`` attempt never sent that Stripe has no PaymentIntent for took no money and is closed
    as failed; an ``unknown`` one only once it is older than ``unknown_window()``, since until then
    its request may still be on its way. Raises ``AttemptOutcomeUnknown`` when Stripe cannot
    answer."""
    try:
        intent = _intent_find(client or stripe_client(tenant=attempt.tenant), attempt)
    except stripe.StripeError as exc:
        raise AttemptOutcomeUnknown(
            "The outcome of payment attempt %d is unknown and Stripe cannot be asked now (%s): nothing is "
            "charged until it is known." % (attempt.number, exc.__class__.__name__)
        ) from exc
    if intent is not None:
        intent_apply(attempt, intent, at=at)
    elif attempt.status == AttemptStatus.UNKNOWN and at - attempt.created_at > unknown_window():
        _mark_failed(attempt, code="not_created", message="Stripe never created this payment.", at=at)
    elif attempt.status == AttemptStatus.CREATED and at - attempt.created_at > STALE_AFTER:
        _mark_failed(attempt, code="not_sent", message="This attempt was never sent to Stripe.", at=at)


def attempt_open(*, invoice_id: UUID, trigger: str, at: datetime) -> PaymentAttempt:
    """Step 1, with the invoice locked: reconcile, check, then write the attempt. Returns the open
    attempt (``created``), or the reconciled one when it turns out to have paid the invoice."""
    with transaction.atomic():
        invoice = ledger.invoice_lock(invoice_id)
        client = stripe_client(tenant=invoice.tenant) if stripe_configured(tenant=invoice.tenant) else None
        for attempt in PaymentAttempt.objects.select_for_update(of=("self",)).filter(
            invoice=invoice, status__in=OPEN_ATTEMPT_STATUSES
        ):
            attempt.invoice = invoice
            stale = at - attempt.created_at > STALE_AFTER
            if client is not None and (attempt.status != AttemptStatus.CREATED or stale):
                attempt_reconcile(attempt, at=at, client=client)
            if attempt.status == AttemptStatus.SUCCEEDED:
                return attempt
            if attempt.status == AttemptStatus.UNKNOWN:
                raise AttemptOutcomeUnknown(
                    "The outcome of payment attempt %d is not known yet (Stripe does not show it): nothing "
                    "is charged until it is, or until %s when it is taken as never made."
                    % (attempt.number, (attempt.created_at + unknown_window()).isoformat(timespec="minutes"))
                )
            if attempt.status in OPEN_ATTEMPT_STATUSES:
                raise AttemptInProgress("A payment attempt is already in progress for this invoice.")
        invoice.refresh_from_db()
        if invoice.kind != InvoiceKind.INVOICE or invoice.status != InvoiceStatus.FINALIZED:
            raise NothingToCharge("Only a finalized invoice can be charged.")
        if invoice.payment_status not in (InvoicePaymentStatus.UNPAID, InvoicePaymentStatus.PARTIALLY_PAID):
            raise NothingToCharge("This invoice is %s: there is nothing to charge." % invoice.payment_status)
        if invoice.amount_due.amount <= 0:
            raise NothingToCharge("Nothing is due on this invoice.")
        if client is None:
            raise StripeNotConfigured("Stripe is not connected: add the account's secret key in Settings, Payments.")
        gateway_customer = GatewayCustomer.objects.filter(customer=invoice.customer).first()
        if gateway_customer is None or not gateway_customer.default_payment_method:
            raise PaymentMethodMissing("The customer has no default payment method to charge.")
        last = PaymentAttempt.objects.filter(invoice=invoice).aggregate(n=Max("number"))["n"] or 0
        try:
            with transaction.atomic():
                return PaymentAttempt.objects.create(
                    tenant=invoice.tenant,
                    invoice=invoice,
                    number=last + 1,
                    idempotency_key="%s:%s:%d" % (invoice.tenant_id, invoice.pk, last + 1),
                    status=AttemptStatus.CREATED,
                    currency=invoice.currency,
                    amount=Money(invoice.amount_due.amount, invoice.currency),
                    trigger=trigger[:16],
                    gateway=Gateway.STRIPE,
                    payment_method=gateway_customer.default_payment_method,
                )
        except IntegrityError as exc:  # another path opened one between our check and our insert
            raise AttemptInProgress("A payment attempt is already in progress for this invoice.") from exc


def _attempt_stale_close(attempt: PaymentAttempt, *, at: datetime) -> PaymentAttempt | None:
    """Pitfall #6: the attempt's amount was fixed when it was opened, and the invoice may have been
    paid since (a transfer recorded while the send waited in Celery). With the invoice locked, then
    the attempt (the ledger's lock order), an attempt whose invoice is no longer finalized and open
    with at least the attempt's amount due is closed as failed (``stale``) and never sent. Returns
    the closed (or no longer ``created``) attempt, or None when it may be sent."""
    with transaction.atomic():
        invoice = ledger.invoice_lock(attempt.invoice_id)
        locked = PaymentAttempt.objects.select_for_update(of=("self",)).select_related("tenant").get(pk=attempt.pk)
        locked.invoice = invoice
        if locked.status != AttemptStatus.CREATED:
            return locked
        still_due = (
            invoice.kind == InvoiceKind.INVOICE
            and invoice.status == InvoiceStatus.FINALIZED
            and invoice.payment_status in (InvoicePaymentStatus.UNPAID, InvoicePaymentStatus.PARTIALLY_PAID)
            and invoice.currency == locked.currency
            and invoice.amount_due.amount >= locked.amount.amount
        )
        if still_due:
            return None
        _mark_failed(
            locked,
            code="stale",
            message="The invoice changed before this payment was sent (%s, %s due): nothing was charged."
            % (invoice.payment_status, invoice.amount_due),
            at=at,
        )
        return locked


def attempt_send(*, attempt_id: UUID | str, at: datetime) -> PaymentAttempt:
    """Step 2: the PaymentIntent, then its outcome. Only a committed ``created`` attempt is sent,
    and only within ``SEND_DEADLINE`` of its creation."""
    attempt = PaymentAttempt.objects.select_related("invoice__customer", "tenant").get(pk=attempt_id)
    if attempt.status != AttemptStatus.CREATED or at - attempt.created_at > SEND_DEADLINE:
        return attempt
    stale = _attempt_stale_close(attempt, at=at)
    if stale is not None:
        return stale
    client = stripe_client(tenant=attempt.tenant)
    gateway_customer = GatewayCustomer.objects.get(customer_id=attempt.invoice.customer_id)
    intent: dict[str, Any] | None = None
    outcome: tuple[str, str, str] | None = None  # (status, failure code, message) when no intent came back
    try:
        created = client.v1.payment_intents.create(
            params={
                "amount": to_minor_units(attempt.amount),
                "currency": attempt.currency.lower(),
                "customer": gateway_customer.gateway_customer_id,
                "payment_method": attempt.payment_method,
                "off_session": True,
                "confirm": True,
                "metadata": {
                    "attempt_id": str(attempt.pk),
                    "invoice_id": str(attempt.invoice_id),
                    "invoice_number": attempt.invoice.number,
                    "tenant": attempt.tenant.slug,
                },
            },
            options={"idempotency_key": attempt.idempotency_key},
        )
        intent = created.to_dict()
    except stripe.CardError as exc:
        error = exc.error
        declined = error.payment_intent if error is not None else None
        if declined is not None:
            intent = declined.to_dict()  # declined: the PaymentIntent says why
        else:
            code = (error.decline_code or error.code) if error is not None else exc.code
            outcome = (AttemptStatus.FAILED, str(code or "card_declined"), exc.user_message or "The card was declined.")
    except (stripe.APIConnectionError, stripe.APIError) as exc:
        # A timeout, a dropped connection or Stripe's own error: the PaymentIntent may exist.
        outcome = (AttemptStatus.UNKNOWN, "", "Stripe did not answer (%s)." % exc.__class__.__name__)
    except (stripe.AuthenticationError, stripe.PermissionError):  # refused before anything was created
        message = "The tenant's Stripe keys are refused: check the secret key in Settings, Payments."
        outcome = (AttemptStatus.FAILED, "stripe_keys_invalid", message)
    except stripe.StripeError as exc:  # refused before anything was created (a bad request, too many requests)
        outcome = (AttemptStatus.FAILED, str(exc.code or exc.__class__.__name__), exc.user_message or str(exc))
    with transaction.atomic():
        ledger.invoice_lock(attempt.invoice_id)
        attempt = (
            PaymentAttempt.objects.select_for_update(of=("self",))
            .select_related("invoice__customer", "tenant")
            .get(pk=attempt.pk)
        )
        if intent is not None:
            return intent_apply(attempt, intent, at=at)
        if attempt.status != AttemptStatus.CREATED or outcome is None:
            return attempt  # a webhook or a reconciliation got there first
        status, code, message = outcome
        if status == AttemptStatus.FAILED:
            _mark_failed(attempt, code=code, message=message, at=at)
        else:
            attempt.status = AttemptStatus.UNKNOWN
            attempt.failure_message = message[:500]
            attempt.save(update_fields=["status", "failure_message", "updated_at"])
    return attempt


def invoice_charge(*, invoice_id: UUID, trigger: str, at: datetime) -> PaymentAttempt:
    """Charge what ``invoice_id`` still owes with the customer's default payment method, now.

    Outside a transaction the attempt is opened, committed and sent, and comes back with its
    outcome. Inside one (an API request) it is opened in it and sent by a Celery task once it
    commits: it comes back ``created``."""
    attempt = attempt_open(invoice_id=invoice_id, trigger=trigger, at=at)
    if attempt.status != AttemptStatus.CREATED:
        return attempt
    if transaction.get_connection().in_atomic_block:
        pk, tenant_id = str(attempt.pk), str(attempt.tenant_id)

        def send() -> None:
            from payments.tasks import attempt_send_task

            attempt_send_task.delay(pk, tenant_id=tenant_id)

        transaction.on_commit(send)
        return attempt
    return attempt_send(attempt_id=attempt.pk, at=at)


# Invoices per charging task: each charge may wait up to STRIPE_TIMEOUT_SECONDS (20 s) on Stripe, so
# a task of 10 stays within the tasks' time limit (270 s soft, settings.CELERY_TASK_SOFT_TIME_LIMIT).
CHARGE_BATCH = 10


def invoices_charge_enqueue(invoice_ids: Sequence[UUID], *, tenant_id: UUID, trigger: str) -> None:
    """Charge these invoices from Celery workers, ``CHARGE_BATCH`` per task, once the caller's
    transaction commits."""
    if not invoice_ids:
        return
    ids, tenant = [str(i) for i in invoice_ids], str(tenant_id)

    def enqueue() -> None:
        from payments.tasks import invoices_charge_task

        for start in range(0, len(ids), CHARGE_BATCH):
            invoices_charge_task.delay(ids[start : start + CHARGE_BATCH], trigger=trigger, tenant_id=tenant)

    transaction.on_commit(enqueue)


def invoices_charge(invoice_ids: Sequence[UUID | str], *, trigger: str, at: datetime) -> dict[str, int]:
    """Charge each invoice in turn (a Celery batch); one that cannot be charged is counted, not
    raised, so that the others still go."""
    from billing_platform.errors import DomainError

    counts = {"charged": 0, "refused": 0}
    for invoice_id in invoice_ids:
        try:
            invoice_charge(invoice_id=UUID(str(invoice_id)), trigger=trigger, at=at)
        except DomainError:
            counts["refused"] += 1
        else:
            counts["charged"] += 1
    return counts
