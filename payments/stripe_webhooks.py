"""Events from the tenant's Stripe account: verified with the Stripe library and the tenant's
signing secret, stored first (once per event id), acknowledged, then applied by a Celery task that
is safe to run twice. A beat sweep applies again what a lost task left unapplied."""

import logging
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import stripe
from django.db import transaction

from payments import ledger
from payments.charging import ACTOR, intent_apply, intent_payment_record
from payments.gateway import from_minor_units, payment_method_attach, stripe_client
from payments.gateway_errors import WebhookSignatureInvalid
from payments.models import Gateway, GatewayCustomer, GatewayEvent, Payment, PaymentAttempt, PaymentSettings, Refund
from tenancy.models import Tenant

logger = logging.getLogger(__name__)

HANDLED_TYPES = (
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "payment_intent.processing",
    "payment_intent.canceled",
    "charge.refunded",
    "checkout.session.completed",
)
SIGNATURE_REJECTED = "Stripe signature rejected."


def stripe_event_receive(*, tenant: Tenant, payload: bytes, signature: str) -> tuple[GatewayEvent, bool]:
    """Verify, then store. Returns (event, created); a repeated event id returns the stored one and
    queues nothing. The apply task is queued on commit."""
    secret = PaymentSettings.objects.filter(tenant=tenant).values_list("stripe_webhook_secret", flat=True).first()
    if not secret:
        logger.info("stripe webhook refused: no signing secret", extra={"tenant_id": str(tenant.pk)})
        raise WebhookSignatureInvalid(SIGNATURE_REJECTED)
    try:
        event = stripe.Webhook.construct_event(payload, signature, secret)
    except (stripe.SignatureVerificationError, ValueError) as exc:
        logger.info("stripe webhook refused: %s", exc.__class__.__name__, extra={"tenant_id": str(tenant.pk)})
        raise WebhookSignatureInvalid(SIGNATURE_REJECTED) from exc
    body = event.to_dict()
    event_id, event_type = str(body.get("id", ""))[:255], str(body.get("type", ""))[:100]
    stored, created = GatewayEvent.objects.get_or_create(
        tenant=tenant,
        gateway=Gateway.STRIPE,
        event_id=event_id,
        defaults={"type": event_type, "payload": body},
    )
    if created:
        pk, tenant_id = stored.pk, str(tenant.pk)

        def enqueue() -> None:
            from payments.tasks import gateway_event_apply_task

            gateway_event_apply_task.delay(pk, tenant_id=tenant_id)

        transaction.on_commit(enqueue)
    return stored, created


def _attempt_for(tenant: Tenant, intent: dict[str, Any]) -> PaymentAttempt | None:
    """The tenant's attempt of ``intent``, locked after its customer and invoice (the ledger's lock
    order: customer, invoices, attempts, payment): found without a lock first, to know which
    invoice to lock."""
    attempts = PaymentAttempt.objects.filter(tenant=tenant)
    attempt_id = (intent.get("metadata") or {}).get("attempt_id")
    found = None
    if attempt_id:
        try:
            found = attempts.filter(pk=UUID(str(attempt_id))).only("id", "invoice_id").first()
        except ValueError:
            found = None
    if found is None:
        found = attempts.filter(gateway=Gateway.STRIPE, gateway_id=intent["id"]).only("id", "invoice_id").first()
    if found is None:
        return None
    ledger.invoice_lock(found.invoice_id)
    return (
        PaymentAttempt.objects.select_for_update(of=("self",))
        .select_related("invoice__customer", "tenant")
        .get(pk=found.pk)
    )


def _customer_for(tenant: Tenant, stripe_customer: str | None) -> GatewayCustomer | None:
    if not stripe_customer:
        return None
    return (
        GatewayCustomer.objects.select_related("customer__tenant")
        .filter(tenant=tenant, gateway_customer_id=stripe_customer)
        .first()
    )


def _payment_intent(tenant: Tenant, intent: dict[str, Any], at: datetime) -> None:
    attempt = _attempt_for(tenant, intent)
    if attempt is not None:
        intent_apply(attempt, intent, at=at)
        return
    # Money taken outside an attempt (Stripe Checkout in payment mode): the invoice in its metadata.
    if intent.get("status") != "succeeded":
        return
    _payment_for_invoice(tenant, intent, (intent.get("metadata") or {}).get("invoice_id"), at)


def _payment_for_invoice(tenant: Tenant, intent: dict[str, Any], invoice_id: str | None, at: datetime) -> None:
    from invoicing.models import Invoice

    gateway_customer = _customer_for(tenant, intent.get("customer"))
    invoice = None
    if invoice_id:
        try:
            invoice = (
                Invoice.objects.select_related("customer__tenant")
                .filter(tenant=tenant, pk=UUID(str(invoice_id)))
                .first()
            )
        except ValueError:
            invoice = None
    customer = invoice.customer if invoice is not None else (gateway_customer.customer if gateway_customer else None)
    if customer is None:
        logger.info("stripe payment %s names no known customer or invoice", intent["id"])
        return
    intent_payment_record(intent, customer=customer, invoice=invoice, at=at)


def _charge_refunded(tenant: Tenant, charge: dict[str, Any], at: datetime) -> None:
    """Refunds made at Stripe (its dashboard), each recorded once by its ``re_…`` id. The money is
    back with the customer already: the ledger records it as a fact and never refuses it."""
    payment = Payment.objects.filter(
        tenant=tenant, gateway=Gateway.STRIPE, gateway_id=charge.get("payment_intent") or ""
    ).first()
    if payment is None:
        return
    refunds = (charge.get("refunds") or {}).get("data")
    if refunds is None:
        listed = stripe_client(tenant=tenant).v1.refunds.list(params={"charge": charge["id"], "limit": 100})
        refunds = [r.to_dict() for r in listed.auto_paging_iter()]
    known = set(Refund.objects.filter(tenant=tenant, payment=payment).values_list("gateway_id", flat=True))
    for refund in sorted(refunds, key=lambda r: r.get("created") or 0):
        if refund["id"] in known or refund.get("status") not in ("succeeded", "pending"):
            continue
        ledger.refund_record(
            payment=payment,
            amount=from_minor_units(refund["amount"], refund["currency"]),
            reason=str(refund.get("reason") or "Refunded at Stripe")[:300],
            actor=ACTOR,
            at=at,
            gateway_id=refund["id"],
            fact=True,
        )


def _checkout_completed(tenant: Tenant, session: dict[str, Any], at: datetime) -> None:
    client = stripe_client(tenant=tenant)
    if session.get("mode") == "setup" and session.get("setup_intent"):
        gateway_customer = _customer_for(tenant, session.get("customer"))
        if gateway_customer is None:
            return
        setup_intent = client.v1.setup_intents.retrieve(str(session["setup_intent"])).to_dict()
        method = setup_intent.get("payment_method")
        if method:
            payment_method_attach(customer=gateway_customer.customer, payment_method=str(method))
    elif session.get("mode") == "payment" and session.get("payment_intent"):
        intent = client.v1.payment_intents.retrieve(str(session["payment_intent"])).to_dict()
        if intent.get("status") == "succeeded":
            _payment_for_invoice(tenant, intent, (session.get("metadata") or {}).get("invoice_id"), at)


def gateway_event_apply(*, event_pk: int, at: datetime) -> GatewayEvent:
    """Apply a stored event once: an applied one is left alone, and each handler is idempotent
    (payments and refunds are unique by their Stripe ids). A failure rolls back what the event did,
    then is kept in ``error`` in a transaction of its own, and raised, so that Celery, then the
    sweep, try again."""
    try:
        with transaction.atomic():
            event = GatewayEvent.objects.select_for_update().select_related("tenant").get(pk=event_pk)
            if event.processed_at is not None:
                return event
            obj: dict[str, Any] = ((event.payload or {}).get("data") or {}).get("object") or {}
            if event.type.startswith("payment_intent.") and event.type in HANDLED_TYPES:
                _payment_intent(event.tenant, obj, at)
            elif event.type == "charge.refunded":
                _charge_refunded(event.tenant, obj, at)
            elif event.type == "checkout.session.completed":
                _checkout_completed(event.tenant, obj, at)
            event.processed_at = at
            event.error = ""
            event.save(update_fields=["processed_at", "error"])
    except Exception as exc:
        # After the rollback: written inside the failed transaction, the error would be lost with it.
        with transaction.atomic():
            GatewayEvent.objects.filter(pk=event_pk, processed_at__isnull=True).update(
                error=("%s: %s" % (exc.__class__.__name__, exc))[:2000]
            )
        raise
    return event


def gateway_events_pending(*, tenant_id: str, at: datetime) -> list[int]:
    """Stored events not applied yet, received over a minute ago (a fresh one still has its task)."""
    return list(
        GatewayEvent.objects.filter(
            tenant_id=tenant_id, processed_at__isnull=True, received_at__lt=at - timedelta(minutes=1)
        )
        .order_by("received_at")
        .values_list("pk", flat=True)[:500]
    )
