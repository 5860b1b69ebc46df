"""Refunding a payment: through Stripe for a card payment, then in the ledger (specs/payments.md)."""

from datetime import datetime

import stripe
from djmoney.money import Money

from payments import ledger
from payments.gateway import stripe_client, to_minor_units
from payments.gateway_errors import StripeUnavailable
from payments.models import Gateway, Payment, Refund
from tenancy.actors import Actor


def payment_refund(*, payment: Payment, amount: Money, reason: str, actor: Actor, at: datetime) -> Refund:
    """Give back ``amount`` of ``payment``. A Stripe payment is refunded at Stripe first (with an
    idempotency key per payment and amount refunded so far, so a retried request refunds once);
    the ledger then records it with the Stripe refund's id, which a ``charge.refunded`` event
    recognises."""
    gateway_id = ""
    if payment.gateway == Gateway.STRIPE and payment.gateway_id:
        client = stripe_client(tenant=payment.tenant)
        key = "refund:%s:%s:%s" % (payment.pk, payment.amount_refunded.amount, amount.amount)
        try:
            refund = client.v1.refunds.create(
                params={
                    "payment_intent": payment.gateway_id,
                    "amount": to_minor_units(amount),
                    "metadata": {"payment_id": str(payment.pk), "reason": reason[:300]},
                },
                options={"idempotency_key": key},
            )
        except (stripe.APIConnectionError, stripe.APIError, stripe.RateLimitError) as exc:
            raise StripeUnavailable("Stripe could not refund now (%s): try again." % exc.__class__.__name__) from exc
        except stripe.InvalidRequestError as exc:
            raise StripeUnavailable("Stripe refused the refund: %s" % (exc.user_message or exc)) from exc
        gateway_id = refund.id
    return ledger.refund_record(
        payment=payment, amount=amount, reason=reason, actor=actor, at=at, gateway_id=gateway_id
    )
