"""The tenant's Stripe account: a client per tenant, Stripe customers made when first needed, the
default payment method, and amounts in the currency's minor unit (specs/payments.md, "Stripe")."""

from datetime import datetime
from decimal import Decimal

import stripe
from django.conf import settings
from django.db import IntegrityError, transaction
from djmoney.money import Money

from billing_platform.errors import DomainError, FieldError, InvalidInput
from billing_platform.money import minor_unit_exponent, round_minor
from customers.models import Customer
from payments.gateway_errors import (
    PaymentMethodInvalid,
    StripeKeysInvalid,
    StripeNotConfigured,
    StripeRequestConflict,
    StripeUnavailable,
)
from payments.models import Gateway, GatewayCustomer, PaymentSettings
from tenancy.actors import Actor
from tenancy.models import Tenant


def to_minor_units(amount: Money) -> int:
    """What Stripe's ``amount`` takes: 12.34 EUR -> 1234, 1,234 JPY -> 1234, 1.234 KWD -> 1234."""
    code = amount.currency.code
    return int(round_minor(amount.amount, code).scaleb(minor_unit_exponent(code)))


def from_minor_units(value: int, currency: str) -> Money:
    """Stripe's ``amount`` back as Money: 1234 EUR -> 12.34, 1234 JPY -> 1234, 1234 KWD -> 1.234."""
    code = currency.upper()
    return Money(Decimal(value).scaleb(-minor_unit_exponent(code)), code)


def stripe_problem(exc: stripe.StripeError, doing: str) -> DomainError:
    """What the API answers when Stripe refused or failed ``doing`` ("attach the card"): the
    tenant's keys refused (422 ``stripe_keys_invalid``), a repeated request that differs from the
    first (409 ``stripe_request_conflict``), anything else 502 ``stripe_unavailable``. Never a 500."""
    detail = exc.user_message or str(exc) or exc.__class__.__name__
    if isinstance(exc, stripe.AuthenticationError | stripe.PermissionError):
        return StripeKeysInvalid(
            "The tenant's Stripe keys are refused, so Stripe could not %s: check the secret key in Settings, "
            "Payments (%s)." % (doing, detail)
        )
    if isinstance(exc, stripe.IdempotencyError):
        return StripeRequestConflict("Stripe refused to %s again differently: %s" % (doing, detail))
    return StripeUnavailable("Stripe could not %s now (%s): try again." % (doing, exc.__class__.__name__))


def payment_settings_get(*, tenant: Tenant) -> PaymentSettings:
    found, _ = PaymentSettings.objects.get_or_create(tenant=tenant)
    return found


def stripe_configured(*, tenant: Tenant) -> bool:
    found = PaymentSettings.objects.filter(tenant=tenant).first()
    return found is not None and bool(found.stripe_secret_key)


def stripe_client(*, tenant: Tenant) -> stripe.StripeClient:
    """A client on the tenant's own Stripe account. No automatic network retry: a call that times
    out leaves its attempt ``unknown``, to be reconciled before anything is tried again."""
    secret_key = payment_settings_get(tenant=tenant).stripe_secret_key
    if not secret_key:
        raise StripeNotConfigured("Stripe is not connected: add the account's secret key in Settings, Payments.")
    base_addresses: dict[str, str] = {"api": settings.STRIPE_API_BASE} if settings.STRIPE_API_BASE else {}
    return stripe.StripeClient(
        secret_key,
        base_addresses=base_addresses,  # type: ignore[arg-type]  # a TypedDict with optional keys
        max_network_retries=0,
        http_client=stripe.new_default_http_client(timeout=settings.STRIPE_TIMEOUT_SECONDS),
    )


def gateway_customer_ensure(*, customer: Customer, client: stripe.StripeClient | None = None) -> GatewayCustomer:
    """The customer's Stripe customer, created at Stripe the first time it is needed."""
    existing = GatewayCustomer.objects.filter(customer=customer).first()
    if existing is not None:
        return existing
    client = client or stripe_client(tenant=customer.tenant)
    try:
        created = client.v1.customers.create(
            params={
                "name": customer.name,
                "email": customer.email,
                "metadata": {"tripod_customer": customer.external_id, "tenant": customer.tenant.slug},
            },
            options={"idempotency_key": "customer:%s" % customer.pk},
        )
    except stripe.StripeError as exc:
        raise stripe_problem(exc, "create the customer") from exc
    try:
        with transaction.atomic():
            return GatewayCustomer.objects.create(
                tenant=customer.tenant, customer=customer, gateway=Gateway.STRIPE, gateway_customer_id=created.id
            )
    except IntegrityError:  # another path made it meanwhile: keep theirs
        return GatewayCustomer.objects.get(customer=customer)


def _summary(method: stripe.PaymentMethod) -> str:
    card = getattr(method, "card", None)
    if card is None:
        return str(method.type)
    return "%s •••• %s" % (card.brand, card.last4)


def payment_method_attach(*, customer: Customer, payment_method: str) -> GatewayCustomer:
    """Attach ``pm_…`` to the customer at Stripe and make it the one charged off-session."""
    client = stripe_client(tenant=customer.tenant)
    gateway_customer = gateway_customer_ensure(customer=customer, client=client)
    try:
        method = client.v1.payment_methods.retrieve(payment_method)
        if getattr(method, "customer", None) != gateway_customer.gateway_customer_id:
            method = client.v1.payment_methods.attach(
                payment_method, params={"customer": gateway_customer.gateway_customer_id}
            )
        client.v1.customers.update(
            gateway_customer.gateway_customer_id,
            params={"invoice_settings": {"default_payment_method": method.id}},
        )
    except stripe.CardError as exc:
        raise PaymentMethodInvalid(exc.user_message or "The card was refused.") from exc
    except stripe.InvalidRequestError as exc:
        raise PaymentMethodInvalid("Stripe refused the payment method: %s" % (exc.user_message or exc)) from exc
    except stripe.StripeError as exc:
        raise stripe_problem(exc, "attach the payment method") from exc
    gateway_customer.default_payment_method = method.id
    gateway_customer.payment_method_summary = _summary(method)[:100]
    gateway_customer.save(update_fields=["default_payment_method", "payment_method_summary"])
    return gateway_customer


# What each key looks like: a secret (or restricted) key, a webhook signing secret, a publishable key.
STRIPE_KEY_PREFIXES = {
    "stripe_secret_key": ("sk_", "rk_"),
    "stripe_webhook_secret": ("whsec_",),
    "stripe_publishable_key": ("pk_",),
}


def key_ending(value: str) -> str:
    """What may be shown of a stored key: its last 4 characters, or "" when none is set."""
    return value[-4:] if value else ""


def stripe_keys_summary(*, tenant: Tenant) -> dict[str, str]:
    """The ending of each key set (``"4242"``), "" for a key not set. Never the keys."""
    found = payment_settings_get(tenant=tenant)
    return {field: key_ending(getattr(found, field)) for field in STRIPE_KEY_PREFIXES}


def stripe_keys_update(*, tenant: Tenant, actor: Actor, at: datetime, keys: dict[str, str]) -> PaymentSettings:
    """Replace the keys given (a blank one is kept as it is), encrypted at rest; audited with their
    endings only."""
    from tenancy.services import audit_record

    given = {field: (keys.get(field) or "").strip() for field in STRIPE_KEY_PREFIXES}
    errors = [
        FieldError(field, "invalid_format", "A %s starts with %s." % (field.replace("_", " "), " or ".join(prefixes)))
        for field, prefixes in STRIPE_KEY_PREFIXES.items()
        if given[field] and (not given[field].startswith(prefixes) or len(given[field]) > 255 or " " in given[field])
    ]
    if errors:
        raise InvalidInput(errors[0].message, errors=errors)
    with transaction.atomic():
        found = PaymentSettings.objects.select_for_update().get(pk=payment_settings_get(tenant=tenant).pk)
        before = {field: key_ending(getattr(found, field)) for field in STRIPE_KEY_PREFIXES}
        changed = [field for field, value in given.items() if value and value != getattr(found, field)]
        for field in changed:
            setattr(found, field, given[field])
        if changed:
            found.save(update_fields=[*changed, "updated_at"])
            audit_record(
                tenant=tenant,
                actor=actor,
                action="payment_settings.stripe_keys_updated",
                object_type="tenant",
                object_id=str(tenant.pk),
                at=at,
                before={f: before[f] for f in changed},
                after={f: key_ending(given[f]) for f in changed},
            )
    return found
