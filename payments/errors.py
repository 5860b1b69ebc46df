"""Payments' domain errors with stable codes (problem+json through billing_platform.errors)."""

from billing_platform.errors import Conflict, InvalidInput, NotFound


class PaymentNotFound(NotFound):
    code = "payment_not_found"


class PaymentCurrencyMismatch(InvalidInput):
    """A payment in another currency than the customer's or the invoice's: it never settles an
    invoice in another currency (specs/payments.md)."""

    code = "payment_currency_mismatch"


class InvalidPayment(InvalidInput):
    code = "invalid_payment"


class RefundExceedsPayment(InvalidInput):
    """More than the payment still holds (its amount less what was refunded already)."""

    code = "refund_exceeds_payment"


class RefundNotPossible(Conflict):
    """The payment is not in a state that can be refunded, or what it holds is no longer where it
    was put (its credit balance share applied to later invoices)."""

    code = "refund_not_possible"
