"""Device-cloud webhooks: verified (Standard Webhooks), stored first, acknowledged at once, then
applied by a Celery task that is safe to run twice. Nothing received is ever dropped: a webhook
that cannot be applied is kept with its outcome and can be replayed by staff."""

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NoReturn

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils.dateparse import parse_datetime
from standardwebhooks import Webhook

from billing_platform.cloud_events import binary_event_read, cloud_event_headers
from billing_platform.errors import DomainError, invalid
from billing_platform.json_input import JsonTooDeep, json_load
from billing_platform.validation import date_in_range
from subscriptions.errors import WebhookSignatureInvalid
from subscriptions.models import DeviceCloudWebhook, WebhookStatus
from subscriptions.selectors import live_device_get
from subscriptions.services import DEVICE_EVENT_TYPES, device_event_apply
from tenancy.actors import Actor
from tenancy.keys import generate_webhook_secret
from tenancy.models import Tenant

logger = logging.getLogger(__name__)

CLOUDEVENTS_CONTENT_TYPE = "application/cloudevents+json"
ACTOR = Actor.system("device cloud")
# The longest ``webhook-id`` kept (the column's size). Standard Webhooks sets no length; the id is
# the replay key, so a longer one is refused rather than cut: two ids that differ after the cut
# would be taken for one webhook, and the second event lost as a replay.
WEBHOOK_ID_MAX_LENGTH = DeviceCloudWebhook._meta.get_field("webhook_id").max_length or 255


# The one answer to a webhook that cannot be verified, whatever the reason (bad or stale signature,
# missing headers, a tenant without secrets, an unknown tenant): the sender learns nothing else, in
# particular not which tenant slugs exist. The reason goes to the log.
SIGNATURE_REJECTED = "Webhook signature rejected."
# Checked for an unknown tenant, or one without a secret, so that refusing takes the work of a real
# verification. Random and never stored or shown: nothing can be signed with it.
_UNKNOWN_TENANT_SECRET = generate_webhook_secret()


def _verified(secrets: Sequence[str], body: bytes, headers: Mapping[str, str]) -> tuple[bool, str]:
    """Whether any of ``secrets`` signed the message, and otherwise why not (for the log only)."""
    wanted = {k.lower(): v for k, v in headers.items() if k.lower().startswith("webhook-")}
    reason = "no matching signature"
    for secret in secrets:
        try:
            Webhook(secret).verify(body, wanted, json_parse=False)
        except Exception as exc:  # the library raises its own error, KeyError or ValueError on bad headers
            reason = "%s: %s" % (exc.__class__.__name__, exc)
        else:
            return True, ""
    return False, reason


def verify_signature(*, tenant: Tenant, body: bytes, headers: Mapping[str, str]) -> None:
    """HMAC-SHA256 of ``id.timestamp.body`` with any of the tenant's secrets (rotation), and a
    timestamp within 5 minutes. Raises ``WebhookSignatureInvalid`` (401) otherwise."""
    secrets = list(tenant.device_cloud_secrets or [])
    ok, reason = _verified(secrets or [_UNKNOWN_TENANT_SECRET], body, headers)
    if ok and secrets:
        return
    logger.info(
        "device-cloud webhook refused: %s",
        reason if secrets else "the tenant has no secret",
        extra={"tenant_id": str(tenant.pk)},
    )
    raise WebhookSignatureInvalid(SIGNATURE_REJECTED)


def signature_refuse_unknown_tenant(*, body: bytes, headers: Mapping[str, str]) -> NoReturn:
    """A webhook for a tenant slug that does not exist: the same work and the same 401 as a known
    tenant's bad signature."""
    _verified([_UNKNOWN_TENANT_SECRET], body, headers)
    logger.info("device-cloud webhook refused: unknown tenant")
    raise WebhookSignatureInvalid(SIGNATURE_REJECTED)


def _storable(instant: datetime | None) -> bool:
    """An instant the webhook can keep: with its offset, between the years 1900 and 9999."""
    return instant is not None and instant.tzinfo is not None and date_in_range(instant)


@dataclass(frozen=True)
class ParsedEvent:
    event_type: str
    device_id: str
    occurred_at: datetime | None
    problem: str  # empty when the event is well formed


def parse_event(body: bytes, content_type: str, ce_headers: Mapping[str, str] | None = None) -> ParsedEvent:
    """``{type, data: {device_id, occurred_at}}``, or a CloudEvent with the same ``type``: structured
    (``application/cloudevents+json``), or in binary mode (``ce_headers``: its ``ce-*`` headers, the
    body its data). A CloudEvent's device id comes from ``data.device_id`` or ``subject``, its instant
    from ``data.occurred_at`` or ``time``."""
    if ce_headers:
        try:
            event = binary_event_read(ce_headers, body)
        except DomainError as exc:  # a header at fault, a body that is not JSON or is too deep
            return ParsedEvent("", "", None, exc.detail)
        if event.data is not None and not isinstance(event.data, dict):
            return ParsedEvent("", "", None, "The body (the event's data) must be a JSON object.")
        payload: dict[str, Any] = {**event.attributes, "data": event.data or {}}
        structured = True
    else:
        try:
            loaded = json_load(body)
        except JsonTooDeep as exc:
            return ParsedEvent("", "", None, exc.detail)
        except ValueError:  # UnicodeDecodeError included
            return ParsedEvent("", "", None, "The body is not JSON.")
        if not isinstance(loaded, dict):
            return ParsedEvent("", "", None, "The body must be a JSON object.")
        payload = loaded
        structured = content_type == CLOUDEVENTS_CONTENT_TYPE
    raw_data = payload.get("data")
    data: dict[str, Any] = raw_data if isinstance(raw_data, dict) else {}
    event_type = str(payload.get("type", ""))
    device_id = str(data.get("device_id") or payload.get("subject") or "")
    raw_time = data.get("occurred_at") or (payload.get("time") if structured else None)
    try:
        occurred_at = parse_datetime(raw_time) if isinstance(raw_time, str) else None
    except ValueError:  # well formed but not a date, e.g. 30 February
        occurred_at = None
    if event_type not in DEVICE_EVENT_TYPES:
        problem = "Unknown event type %r; expected one of %s." % (event_type, ", ".join(DEVICE_EVENT_TYPES))
    elif not device_id:
        problem = "data.device_id is required."
    elif occurred_at is None or occurred_at.tzinfo is None:
        problem = "data.occurred_at must be an ISO 8601 instant with its offset."
    elif not _storable(occurred_at):
        problem = "data.occurred_at must fall between the years 1900 and 9999."
    else:
        problem = ""
    return ParsedEvent(event_type, device_id, occurred_at, problem)


def webhook_receive(
    *, tenant: Tenant, body: bytes, headers: Mapping[str, str], content_type: str, at: datetime
) -> tuple[DeviceCloudWebhook, bool]:
    """Verify, then store before anything else. Returns (webhook, created). A replay of the same
    ``webhook-id`` returns the stored webhook untouched. The apply task is queued on commit."""
    verify_signature(tenant=tenant, body=body, headers=headers)
    webhook_id = {k.lower(): v for k, v in headers.items()}["webhook-id"]
    if len(webhook_id) > WEBHOOK_ID_MAX_LENGTH:
        raise invalid("webhook-id", "too_long", "webhook-id is at most %d characters." % WEBHOOK_ID_MAX_LENGTH)
    ce_headers = cloud_event_headers(headers) if content_type != CLOUDEVENTS_CONTENT_TYPE else {}
    parsed = parse_event(body, content_type, ce_headers)
    status, outcome = WebhookStatus.RECEIVED, ""
    if parsed.problem:
        status, outcome = WebhookStatus.REJECTED, parsed.problem
    elif live_device_get(tenant=tenant, device_id=parsed.device_id) is None:
        status, outcome = WebhookStatus.REJECTED, "Unknown device %s: no live subscription holds it." % parsed.device_id
    try:
        with transaction.atomic():
            webhook = DeviceCloudWebhook.objects.create(
                tenant=tenant,
                webhook_id=webhook_id,
                received_at=at,
                content_type=content_type[:100],
                body=body.decode("utf-8", errors="replace"),
                cloud_event_headers=ce_headers,
                event_type=parsed.event_type[:64],
                device_id=parsed.device_id[:200],
                occurred_at=parsed.occurred_at if _storable(parsed.occurred_at) else None,
                status=status,
                outcome=outcome,
            )
    except IntegrityError:
        return DeviceCloudWebhook.objects.get(tenant=tenant, webhook_id=webhook_id), False
    if status == WebhookStatus.RECEIVED:
        _enqueue(webhook)
    logger.info("device-cloud webhook %s stored as %s", webhook_id, status, extra={"tenant_id": str(tenant.pk)})
    return webhook, True


def _enqueue(webhook: DeviceCloudWebhook) -> None:
    from subscriptions.tasks import webhook_apply_task

    pk, tenant_id = str(webhook.pk), str(webhook.tenant_id)
    transaction.on_commit(lambda: webhook_apply_task.delay(pk, tenant_id=tenant_id))


def webhook_apply(*, webhook_pk: str, at: datetime) -> DeviceCloudWebhook:
    """Apply a stored webhook. Safe to run twice: an applied webhook is left alone, and the device
    update itself is idempotent. A domain refusal is recorded as ``rejected``; anything else is
    recorded as ``failed`` and raised so that Celery retries."""
    with transaction.atomic():
        webhook = DeviceCloudWebhook.objects.select_for_update().get(pk=webhook_pk)
        if webhook.status in (WebhookStatus.APPLIED, WebhookStatus.IGNORED):
            return webhook
        webhook.attempts += 1
        parsed = parse_event(webhook.body.encode(), webhook.content_type, webhook.cloud_event_headers)
        try:
            with transaction.atomic():
                if parsed.problem:
                    raise DomainError(parsed.problem)
                assert parsed.occurred_at is not None
                changed = device_event_apply(
                    tenant=webhook.tenant,
                    device_id=parsed.device_id,
                    event_type=parsed.event_type,
                    occurred_at=parsed.occurred_at,
                    actor=ACTOR,
                )
        except DomainError as exc:
            webhook.status, webhook.outcome = WebhookStatus.REJECTED, exc.detail
        else:
            webhook.status = WebhookStatus.APPLIED if changed else WebhookStatus.IGNORED
            webhook.outcome = "" if changed else "Already known: nothing changed."
            webhook.applied_at = at
        webhook.save(update_fields=["status", "outcome", "attempts", "applied_at"])
    return webhook


# What staff and the API see of an apply that failed on our side; the error itself is in the log.
APPLY_FAILED_OUTCOME = "Applying failed on our side; it is retried automatically."


def webhook_mark_failed(*, webhook_pk: str) -> None:
    DeviceCloudWebhook.objects.filter(pk=webhook_pk).exclude(
        status__in=(WebhookStatus.APPLIED, WebhookStatus.IGNORED)
    ).update(status=WebhookStatus.FAILED, outcome=APPLY_FAILED_OUTCOME, attempts=F("attempts") + 1)


def webhook_replay(*, tenant: Tenant, webhook: DeviceCloudWebhook, actor: Actor, at: datetime) -> DeviceCloudWebhook:
    """Staff re-run a stored webhook (e.g. after adding the unknown device). Applying is idempotent,
    so replaying an applied webhook changes nothing."""
    from tenancy.services import audit_record

    with transaction.atomic():
        if webhook.status not in (WebhookStatus.APPLIED, WebhookStatus.IGNORED):
            webhook.status, webhook.outcome = WebhookStatus.RECEIVED, ""
            webhook.save(update_fields=["status", "outcome"])
        audit_record(
            tenant=tenant,
            actor=actor,
            action="webhook.replayed",
            object_type="device_cloud_webhook",
            object_id=webhook.webhook_id,
            at=at,
        )
        _enqueue(webhook)
    return webhook


def webhook_summary(webhook: DeviceCloudWebhook) -> dict[str, Any]:
    return {
        "id": str(webhook.pk),
        "webhook_id": webhook.webhook_id,
        "type": webhook.event_type,
        "device_id": webhook.device_id,
        "status": webhook.status,
        "outcome": webhook.outcome,
    }
