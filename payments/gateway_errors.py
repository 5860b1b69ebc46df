"""Why a card payment cannot go ahead, as problem+json (billing_platform.errors)."""

from billing_platform.errors import Conflict, DomainError, GatewayError, InvalidInput, NotFound


class StripeNotConfigured(InvalidInput):
    code = "stripe_not_configured"


class PaymentMethodMissing(InvalidInput):
    code = "payment_method_missing"


class PaymentMethodInvalid(InvalidInput):
    code = "payment_method_invalid"


class PaymentMethodNotFound(NotFound):
    """Not one of the customer's saved payment methods at Stripe."""

    code = "payment_method_not_found"


class StripeKeysInvalid(InvalidInput):
    """Stripe refused the tenant's secret key (revoked, rolled, or a restricted key without the
    permission needed)."""

    code = "stripe_keys_invalid"


class NothingToCharge(Conflict):
    code = "nothing_to_charge"


class AttemptInProgress(Conflict):
    code = "attempt_in_progress"


class StripeUnavailable(GatewayError):
    code = "stripe_unavailable"


class StripeRequestConflict(Conflict):
    """Stripe refused a repeated request that differs from the first with the same idempotency key."""

    code = "stripe_request_conflict"


class WebhookSignatureInvalid(DomainError):
    status = 400
    code = "invalid_signature"
    title = "Invalid signature"
