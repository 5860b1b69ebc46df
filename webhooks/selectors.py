"""Reading webhook endpoints and deliveries, always within one tenant."""

import uuid

from django.db.models import Count, QuerySet

from tenancy.models import Tenant
from webhooks.errors import WebhookDeliveryNotFound, WebhookEndpointNotFound
from webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def webhook_endpoint_list(*, tenant: Tenant) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.filter(tenant=tenant).order_by("-created_at", "-id")


def webhook_endpoint_get(*, tenant: Tenant, pk: str) -> WebhookEndpoint:
    key = _uuid(pk)
    endpoint = WebhookEndpoint.objects.filter(tenant=tenant, pk=key).first() if key else None
    if endpoint is None:
        raise WebhookEndpointNotFound("No such webhook endpoint.")
    return endpoint


def webhook_delivery_list(
    *, tenant: Tenant, endpoint: WebhookEndpoint, status: str | None = None
) -> QuerySet[WebhookDelivery]:
    """An endpoint's deliveries, newest first, with their event and their tries (two more queries
    for a whole page, whatever its size)."""
    qs = WebhookDelivery.objects.filter(tenant=tenant, endpoint=endpoint)
    if status:
        qs = qs.filter(status=status)
    return qs.select_related("event").prefetch_related("tries").order_by("-created_at", "-id")


def webhook_delivery_get(*, tenant: Tenant, pk: str) -> WebhookDelivery:
    key = _uuid(pk)
    delivery = (
        WebhookDelivery.objects.filter(tenant=tenant, pk=key).select_related("event", "endpoint").first()
        if key
        else None
    )
    if delivery is None:
        raise WebhookDeliveryNotFound("No such webhook delivery.")
    return delivery


def webhook_delivery_counts(*, tenant: Tenant, endpoint_ids: list[uuid.UUID]) -> dict[uuid.UUID, dict[str, int]]:
    """Deliveries by status for each endpoint, in one query."""
    counts: dict[uuid.UUID, dict[str, int]] = {pk: dict.fromkeys(DeliveryStatus.values, 0) for pk in endpoint_ids}
    rows = (
        WebhookDelivery.objects.filter(tenant=tenant, endpoint_id__in=endpoint_ids)
        .values("endpoint_id", "status")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in rows:
        counts[row["endpoint_id"]][row["status"]] = row["n"]
    return counts
