"""Refunding a payment the way it came: a manual payment's refund is money the tenant sent back
itself, recorded at once; a Stripe payment is refunded at Stripe, inside the ledger's checks
(specs/payments.md)."""

import hashlib
import uuid
from datetime import datetime

import stripe
from djmoney.money import Money

from invoicing.models import Invoice
from payments import ledger
from payments.gateway import from_minor_units, stripe_client, stripe_problem, to_minor_units
from payments.gateway_errors import StripeRequestConflict, StripeUnavailable
from payments.models import Gateway, Payment, Refund
from tenancy.actors import Actor


class _RecordedAlready(Exception):
    """The refund a retried request made at Stripe is in the ledger already (its ``charge.refunded``
    event recorded it): the retry answers with it and records nothing."""

    def __init__(self, refund: Refund) -> None:
        super().__init__(refund.pk)
        self.refund = refund


def _request_token(payment: Payment, request_key: str) -> str:
    """What names one refund request at Stripe (``metadata.request``): the same for every retry of
    a request with an Idempotency-Key, new for a request without one."""
    if not request_key:
        return uuid.uuid4().hex
    return hashlib.sha256(("%s:%s:%s" % (payment.tenant_id, payment.pk, request_key)).encode()).hexdigest()[:32]


def _made_by_request(client: stripe.StripeClient, payment: Payment, token: str) -> dict[str, object] | None:
    """The refund of ``payment``'s PaymentIntent that the request named ``token`` made, if any."""
    listed = client.v1.refunds.list(params={"payment_intent": payment.gateway_id, "limit": 100})
    for listed_refund in listed.auto_paging_iter():
        found = listed_refund.to_dict()
        if (found.get("metadata") or {}).get("request") == token and found.get("status") in ("succeeded", "pending"):
            return dict(found)
    return None


def payment_refund(
    *,
    payment: Payment,
    amount: Money,
    reason: str,
    actor: Actor,
    at: datetime,
    invoice: Invoice | None = None,
    request_key: str = "",
) -> Refund:
    """Give back ``amount`` of ``payment`` (from ``invoice``'s share only, when given). For a Stripe
    payment the ledger calls Stripe once its checks pass; the ledger records the Stripe refund's
    id, which a later ``charge.refunded`` event recognises.

    ``request_key`` is the caller's Idempotency-Key. A Stripe refund carries a token derived from
    it in ``metadata.request`` and as its idempotency key, so that a retry of a request whose call
    timed out (Stripe may have refunded) first looks for that refund at Stripe and records it, or
    answers with it when its ``charge.refunded`` event recorded it meanwhile: never a second refund."""
    gateway_refund = None
    if payment.gateway == Gateway.STRIPE and payment.gateway_id:
        client = stripe_client(tenant=payment.tenant)
        token = _request_token(payment, request_key)
        made = None
        if request_key:
            try:
                made = _made_by_request(client, payment, token)
            except stripe.StripeError as exc:
                raise stripe_problem(exc, "look for this request's refund") from exc
            if made is not None:
                recorded = Refund.objects.filter(tenant_id=payment.tenant_id, gateway_id=made["id"]).first()
                if recorded is not None:
                    return recorded
                if made.get("amount") != to_minor_units(amount):
                    done = from_minor_units(int(str(made["amount"])), str(made["currency"]))
                    raise StripeRequestConflict(
                        "This request already refunded %s at Stripe (%s), not %s." % (done, made["id"], amount)
                    )

        def gateway_refund(refund: Refund) -> str:
            if made is not None:
                # Recorded by its event between the look-up and the payment's lock, which the event
                # takes too: answered with that refund (the ledger's transaction rolls back).
                recorded = Refund.objects.filter(tenant_id=payment.tenant_id, gateway_id=made["id"]).first()
                if recorded is not None:
                    raise _RecordedAlready(recorded)
                return str(made["id"])
            try:
                created = client.v1.refunds.create(
                    params={
                        "payment_intent": payment.gateway_id,
                        "amount": to_minor_units(amount),
                        "metadata": {"payment_id": str(payment.pk), "reason": reason[:300], "request": token},
                    },
                    options={"idempotency_key": "refund:%s:%s" % (payment.pk, token)},
                )
            except stripe.InvalidRequestError as exc:
                raise StripeUnavailable("Stripe refused the refund: %s" % (exc.user_message or exc)) from exc
            except stripe.StripeError as exc:
                raise stripe_problem(exc, "refund the payment") from exc
            return str(created.id)

    try:
        return ledger.refund_record(
            payment=payment,
            amount=amount,
            reason=reason,
            actor=actor,
            at=at,
            invoice=invoice,
            gateway_refund=gateway_refund,
        )
    except _RecordedAlready as already:
        return already.refund
