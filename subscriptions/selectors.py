from django.db.models import Prefetch, QuerySet

from subscriptions.errors import SubscriptionNotFound, WebhookNotFound
from subscriptions.models import Device, DeviceCloudWebhook, Subscription, SubscriptionEvent
from tenancy.models import Tenant


def subscription_list(
    *, tenant: Tenant, status: str | None = None, customer: str | None = None, plan: str | None = None
) -> QuerySet[Subscription]:
    qs = Subscription.objects.filter(tenant=tenant).select_related("customer", "plan")
    if status:
        qs = qs.filter(status=status)
    if customer:
        qs = qs.filter(customer__external_id=customer)
    if plan:
        qs = qs.filter(plan__code=plan)
    return qs.prefetch_related(Prefetch("devices", queryset=Device.objects.order_by("device_id")))


def subscription_get(*, tenant: Tenant, external_id: str) -> Subscription:
    subscription = (
        Subscription.objects.filter(tenant=tenant, external_id=external_id)
        .select_related("customer", "plan")
        .prefetch_related(
            Prefetch("devices", queryset=Device.objects.order_by("device_id")),
            Prefetch("events", queryset=SubscriptionEvent.objects.order_by("at", "id")),
        )
        .first()
    )
    if subscription is None:
        raise SubscriptionNotFound("No subscription with external_id %s." % external_id)
    return subscription


def live_device_get(*, tenant: Tenant, device_id: str) -> Device | None:
    return (
        Device.objects.filter(tenant=tenant, device_id=device_id, removed_at__isnull=True)
        .select_related("subscription__customer", "subscription__plan")
        .first()
    )


def webhook_list(*, tenant: Tenant, status: str | None = None) -> QuerySet[DeviceCloudWebhook]:
    qs = DeviceCloudWebhook.objects.filter(tenant=tenant)
    if status:
        qs = qs.filter(status=status)
    return qs


def webhook_get(*, tenant: Tenant, pk: str) -> DeviceCloudWebhook:
    try:
        webhook = DeviceCloudWebhook.objects.filter(tenant=tenant, pk=pk).first()
    except Exception:  # not a UUID
        webhook = None
    if webhook is None:
        raise WebhookNotFound("No such webhook.")
    return webhook
