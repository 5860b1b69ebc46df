"""Webhook endpoints: created with a secret shown once, changed, disabled and enabled, their secret
rotated (the old one keeps signing for 24 hours), deleted; and a delivery replayed. Every write is
in the audit log, where a secret appears by its fingerprint only."""

import base64
import binascii
import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction

from billing_platform.errors import FieldError
from tenancy.actors import Actor
from tenancy.keys import generate_webhook_secret, webhook_secret_fingerprint
from tenancy.models import Tenant
from tenancy.services import audit_record
from webhooks.delivery import FAILING_DISABLE_AFTER
from webhooks.errors import InvalidWebhookEndpoint, TooManyWebhookEndpoints, WebhookEndpointDisabled
from webhooks.events import ALL_EVENTS, EVENT_TYPES
from webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from webhooks.outbox import deliveries_enqueue_on_commit, instant
from webhooks.targets import url_check

logger = logging.getLogger(__name__)

# After a rotation the previous secret keeps signing this long, beside the new one.
SECRET_OVERLAP = timedelta(hours=24)
# Endpoints per tenant: enough for a device cloud, an ERP and a few more; beyond is a forgotten cleanup.
MAX_ENDPOINTS = 20
DESCRIPTION_MAX_LENGTH = 300
REASON_MAX_LENGTH = 300
# A secret given by the integrator: "whsec_" + base64 of 24 to 64 random bytes.
SECRET_PREFIX = "whsec_"
SECRET_BYTES = (24, 64)
EDITABLE_FIELDS = ("url", "events", "description", "enabled")


def _invalid(field: str, code: str, message: str) -> InvalidWebhookEndpoint:
    return InvalidWebhookEndpoint(message, errors=[FieldError(field, code, message)])


def events_check(events: Any) -> list[str]:
    """The event types an endpoint subscribes to: ``["*"]``, or known types (each once, in the
    order given). Raises ``InvalidWebhookEndpoint`` naming every unknown type."""
    if not isinstance(events, list | tuple) or not events:
        raise _invalid("events", "required", 'List the event types to receive, or ["*"] for all of them.')
    errors = []
    wanted: list[str] = []
    for i, event_type in enumerate(events):
        if not isinstance(event_type, str) or (event_type not in EVENT_TYPES and event_type != ALL_EVENTS):
            errors.append(FieldError("events[%d]" % i, "unknown_event_type", "Unknown event type %s." % event_type))
        elif event_type not in wanted:
            wanted.append(event_type)
    if errors:
        raise InvalidWebhookEndpoint("; ".join(e.message for e in errors), errors=errors)
    if ALL_EVENTS in wanted and len(wanted) > 1:
        raise _invalid("events", "all_and_some", '"*" already means every event type: give it alone.')
    return wanted


def _description_check(description: Any) -> str:
    if not isinstance(description, str):
        raise _invalid("description", "invalid_type", "The description is text.")
    description = description.strip()
    if len(description) > DESCRIPTION_MAX_LENGTH:
        raise _invalid("description", "too_long", "At most %d characters." % DESCRIPTION_MAX_LENGTH)
    return description


def _secret_check(secret: str) -> str:
    """A secret the integrator chose: Standard Webhooks form, with enough randomness to sign."""
    message = "A secret is whsec_ followed by the base64 of 24 to 64 random bytes."
    if not secret.startswith(SECRET_PREFIX):
        raise _invalid("secret", "invalid_secret", message)
    try:
        raw = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise _invalid("secret", "invalid_secret", message) from None
    if not SECRET_BYTES[0] <= len(raw) <= SECRET_BYTES[1]:
        raise _invalid("secret", "invalid_secret", message)
    return secret


def _snapshot(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return {
        "url": endpoint.url,
        "events": list(endpoint.events),
        "description": endpoint.description,
        "enabled": endpoint.enabled,
    }


def _audit(endpoint: WebhookEndpoint, action: str, actor: Actor, at: datetime, **changes: Any) -> None:
    audit_record(
        tenant=endpoint.tenant,
        actor=actor,
        action=action,
        object_type="webhook_endpoint",
        object_id=str(endpoint.pk),
        at=at,
        before=changes.get("before"),
        after=changes.get("after"),
    )


def webhook_endpoint_create(
    *,
    tenant: Tenant,
    actor: Actor,
    at: datetime,
    url: str,
    events: Sequence[str],
    description: str = "",
    secret: str | None = None,
) -> tuple[WebhookEndpoint, str]:
    """A new endpoint, enabled; returns it with its secret (generated unless given), which is shown
    this once. Its URL must be ``https`` and resolve to public addresses (``webhooks.targets``)."""
    errors: list[FieldError] = []
    checked: dict[str, Any] = {}
    checks: list[tuple[str, Callable[[Any], Any], Any]] = [
        ("url", url_check, url),
        ("events", events_check, events),
        ("description", _description_check, description),
    ]
    if secret is not None:
        checks.append(("secret", _secret_check, secret))
    for field, check, value in checks:
        try:
            checked[field] = check(value)
        except InvalidWebhookEndpoint as exc:
            errors.extend(exc.errors)
    if errors:
        raise InvalidWebhookEndpoint("; ".join("%s: %s" % (e.field, e.message) for e in errors), errors=errors)
    secret = checked.get("secret") or generate_webhook_secret()
    with transaction.atomic():
        # Counted under the tenant's lock: two creations at once cannot both pass the limit.
        Tenant.objects.select_for_update().filter(pk=tenant.pk).first()
        if WebhookEndpoint.objects.filter(tenant=tenant).count() >= MAX_ENDPOINTS:
            raise TooManyWebhookEndpoints(
                "A tenant has at most %d webhook endpoints: delete one that is no longer used." % MAX_ENDPOINTS
            )
        endpoint = WebhookEndpoint.objects.create(
            tenant=tenant,
            url=checked["url"],
            events=checked["events"],
            description=checked.get("description", ""),
            signing_secret=secret,
        )
        _audit(
            endpoint,
            "webhook_endpoint.created",
            actor,
            at,
            after={**_snapshot(endpoint), "secret": webhook_secret_fingerprint(secret)},
        )
    logger.info("webhook endpoint created", extra={"tenant_id": str(tenant.pk), "endpoint_id": str(endpoint.pk)})
    return endpoint, secret


def _locked(endpoint: WebhookEndpoint) -> WebhookEndpoint:
    locked = WebhookEndpoint.objects.select_for_update().select_related("tenant").get(pk=endpoint.pk)
    return locked


def _disable(endpoint: WebhookEndpoint, *, at: datetime, reason: str) -> int:
    """Disable a locked endpoint: it gets no new deliveries, and its pending ones fail (a replay
    sends one again once it is enabled). Returns how many failed."""
    endpoint.disabled_at, endpoint.disabled_reason = at, reason[:REASON_MAX_LENGTH]
    endpoint.save(update_fields=["disabled_at", "disabled_reason", "updated_at"])
    return WebhookDelivery.objects.filter(endpoint=endpoint, status=DeliveryStatus.PENDING).update(
        status=DeliveryStatus.FAILED, next_attempt_at=None, last_error="The endpoint was disabled."
    )


def _enable(endpoint: WebhookEndpoint) -> None:
    endpoint.disabled_at, endpoint.disabled_reason, endpoint.failing_since = None, "", None
    endpoint.save(update_fields=["disabled_at", "disabled_reason", "failing_since", "updated_at"])


def webhook_endpoint_update(
    *, endpoint: WebhookEndpoint, actor: Actor, at: datetime, changes: Mapping[str, Any]
) -> WebhookEndpoint:
    """Change an endpoint's ``url``, ``events``, ``description``, or ``enabled`` (false disables it
    with the actor as reason, true enables it again). Only what differs is written and audited."""
    unknown = [field for field in changes if field not in EDITABLE_FIELDS]
    if unknown:
        raise _invalid(unknown[0], "not_editable", "%s cannot be changed." % unknown[0])
    checked: dict[str, Any] = {}
    errors: list[FieldError] = []
    for field, check in (("url", url_check), ("events", events_check), ("description", _description_check)):
        if field in changes:
            try:
                checked[field] = check(changes[field])
            except InvalidWebhookEndpoint as exc:
                errors.extend(exc.errors)
    if "enabled" in changes and not isinstance(changes["enabled"], bool):
        errors.append(FieldError("enabled", "invalid_type", "enabled is true or false."))
    if errors:
        raise InvalidWebhookEndpoint("; ".join("%s: %s" % (e.field, e.message) for e in errors), errors=errors)
    with transaction.atomic():
        locked = _locked(endpoint)
        before = _snapshot(locked)
        for field, value in checked.items():
            setattr(locked, field, value)
        locked.save(update_fields=[*checked, "updated_at"])
        if changes.get("enabled") is False and locked.enabled:
            _disable(locked, at=at, reason="Disabled by %s." % (actor.label or actor.type))
        elif changes.get("enabled") is True and not locked.enabled:
            _enable(locked)
        after = _snapshot(locked)
        changed = [field for field in after if after[field] != before[field]]
        if changed:
            _audit(
                locked,
                "webhook_endpoint.updated",
                actor,
                at,
                before={f: before[f] for f in changed},
                after={f: after[f] for f in changed},
            )
    return locked


def webhook_endpoint_disable(
    *, endpoint: WebhookEndpoint, actor: Actor, at: datetime, reason: str = ""
) -> WebhookEndpoint:
    """Stop sending to the endpoint; its pending deliveries fail. Disabling a disabled one changes nothing."""
    with transaction.atomic():
        locked = _locked(endpoint)
        if locked.enabled:
            failed = _disable(locked, at=at, reason=reason or "Disabled by %s." % (actor.label or actor.type))
            _audit(
                locked,
                "webhook_endpoint.disabled",
                actor,
                at,
                after={"reason": locked.disabled_reason, "failed": failed},
            )
    return locked


def webhook_endpoint_enable(*, endpoint: WebhookEndpoint, actor: Actor, at: datetime) -> WebhookEndpoint:
    """Send to the endpoint again, from the next event on (failed deliveries are replayed one by one)."""
    with transaction.atomic():
        locked = _locked(endpoint)
        if not locked.enabled:
            _enable(locked)
            _audit(locked, "webhook_endpoint.enabled", actor, at, after={"enabled": True})
    return locked


def webhook_endpoint_rotate_secret(
    *, endpoint: WebhookEndpoint, actor: Actor, at: datetime
) -> tuple[WebhookEndpoint, str]:
    """A new secret, returned once. For 24 hours messages are signed with both the new and the old
    secret (two signatures in ``webhook-signature``), so the receiver can switch to the new one
    without losing a message; after that, with the new one only. Rotating again within the 24
    hours drops the oldest secret at once."""
    secret = generate_webhook_secret()
    with transaction.atomic():
        locked = _locked(endpoint)
        old = locked.signing_secret
        locked.previous_signing_secret = old
        locked.previous_signing_secret_expires_at = at + SECRET_OVERLAP
        locked.signing_secret = secret
        locked.save(
            update_fields=[
                "signing_secret",
                "previous_signing_secret",
                "previous_signing_secret_expires_at",
                "updated_at",
            ]
        )
        _audit(
            locked,
            "webhook_endpoint.secret_rotated",
            actor,
            at,
            before={"secret": webhook_secret_fingerprint(old)},
            after={
                "secret": webhook_secret_fingerprint(secret),
                "previous_secret_valid_until": instant(at + SECRET_OVERLAP),
            },
        )
    logger.info("webhook secret rotated", extra={"tenant_id": str(locked.tenant_id), "endpoint_id": str(locked.pk)})
    return locked, secret


def webhook_endpoint_delete(*, endpoint: WebhookEndpoint, actor: Actor, at: datetime) -> None:
    """Delete the endpoint with its deliveries and their tries; the events stay for the other endpoints."""
    with transaction.atomic():
        locked = _locked(endpoint)
        _audit(locked, "webhook_endpoint.deleted", actor, at, before=_snapshot(locked))
        locked.delete()


def webhook_delivery_replay(*, delivery: WebhookDelivery, actor: Actor, at: datetime) -> WebhookDelivery:
    """Send a delivery again, now, whatever its state, with the same ``webhook-id`` and body: a new
    round of tries on the retry schedule. The endpoint must be enabled (``WebhookEndpointDisabled``)."""
    with transaction.atomic():
        locked = WebhookDelivery.objects.select_for_update().select_related("endpoint", "event").get(pk=delivery.pk)
        if not locked.endpoint.enabled:
            raise WebhookEndpointDisabled("The endpoint is disabled: enable it before replaying its deliveries.")
        locked.status, locked.round_attempts, locked.next_attempt_at = DeliveryStatus.PENDING, 0, at
        locked.save(update_fields=["status", "round_attempts", "next_attempt_at"])
        audit_record(
            tenant=locked.endpoint.tenant,
            actor=actor,
            action="webhook_delivery.replayed",
            object_type="webhook_delivery",
            object_id=str(locked.pk),
            at=at,
            after={"event": locked.event.webhook_id, "type": locked.event.type, "endpoint": str(locked.endpoint_id)},
        )
        deliveries_enqueue_on_commit([str(locked.pk)], tenant_id=str(locked.tenant_id))
    return locked


def _mail_on_commit(endpoint_id: str, failed: int) -> None:
    """The e-mail goes once the disabling commits (robust: a mail server down undoes nothing)."""
    from webhooks.mail import endpoint_disabled_send

    def send() -> None:
        endpoint_disabled_send(endpoint_id=endpoint_id, failed=failed)

    transaction.on_commit(send, robust=True)


def webhook_endpoints_disable_failing(*, endpoint_ids: Collection[Any], at: datetime) -> list[WebhookEndpoint]:
    """Disable those of ``endpoint_ids`` that have had no 2xx for 5 days (``FAILING_DISABLE_AFTER``)
    and e-mail their tenant once the caller's transaction commits."""
    disabled = []
    failing = (
        WebhookEndpoint.objects.select_for_update()
        .select_related("tenant")
        .filter(pk__in=list(endpoint_ids), disabled_at__isnull=True, failing_since__lte=at - FAILING_DISABLE_AFTER)
        .order_by("pk")
    )
    for endpoint in failing:
        since = endpoint.failing_since
        assert since is not None  # filtered on it
        reason = "No successful delivery since %s: disabled after 5 days of failures." % instant(since)
        failed = _disable(endpoint, at=at, reason=reason)
        _audit(
            endpoint,
            "webhook_endpoint.disabled",
            Actor.system("webhooks"),
            at,
            after={"reason": reason, "failed": failed},
        )
        _mail_on_commit(str(endpoint.pk), failed)
        logger.warning(
            "webhook endpoint disabled after 5 days of failures",
            extra={"tenant_id": str(endpoint.tenant_id), "endpoint_id": str(endpoint.pk)},
        )
        disabled.append(endpoint)
    return disabled
