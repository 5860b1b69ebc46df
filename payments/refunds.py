"""Refunding a payment the way it came: a manual payment's refund is money the tenant sent back
itself, recorded at once; a Stripe payment is refunded at Stripe, inside the ledger's checks
(specs/payments.md)."""

from datetime import datetime

import stripe
from djmoney.money import Money

from invoicing.models import Invoice
from payments import ledger
from payments.gateway import stripe_client, to_minor_units
from payments.gateway_errors import StripeUnavailable
from payments.models import Gateway, Payment, Refund
from tenancy.actors import Actor


def payment_refund(
    *, payment: Payment, amount: Money, reason: str, actor: Actor, at: datetime, invoice: Invoice | None = None
) -> Refund:
    """Give back ``amount`` of ``payment`` (from ``invoice``'s share only, when given). For a Stripe
    payment the ledger calls Stripe once its checks pass, with an idempotency key per payment and
    amount refunded so far, so a retried request refunds once; the ledger records the Stripe
    refund's id, which a later ``charge.refunded`` event recognises."""
    gateway_refund = None
    if payment.gateway == Gateway.STRIPE and payment.gateway_id:

        def gateway_refund(refund: Refund) -> str:
            client = stripe_client(tenant=payment.tenant)
            key = "refund:%s:%s:%s" % (payment.pk, payment.amount_refunded.amount, amount.amount)
            try:
                made = client.v1.refunds.create(
                    params={
                        "payment_intent": payment.gateway_id,
                        "amount": to_minor_units(amount),
                        "metadata": {
                            "payment_id": str(payment.pk),
                            "refund_id": str(refund.pk),
                            "reason": reason[:300],
                        },
                    },
                    options={"idempotency_key": key},
                )
            except (stripe.APIConnectionError, stripe.APIError, stripe.RateLimitError) as exc:
                raise StripeUnavailable(
                    "Stripe could not refund now (%s): try again." % exc.__class__.__name__
                ) from exc
            except stripe.InvalidRequestError as exc:
                raise StripeUnavailable("Stripe refused the refund: %s" % (exc.user_message or exc)) from exc
            return str(made.id)

    return ledger.refund_record(
        payment=payment,
        amount=amount,
        reason=reason,
        actor=actor,
        at=at,
        invoice=invoice,
        gateway_refund=gateway_refund,
    )
