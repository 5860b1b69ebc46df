import logging

from celery import Task, shared_task
from django.utils import timezone

from billing_platform.tasks import LONG_TASK_LIMITS, TenantTask
from subscriptions.models import DeviceCloudWebhook
from subscriptions.webhooks import webhook_apply, webhook_mark_failed
from tenancy.dispatch import for_each_tenant
from tenancy.models import Tenant

logger = logging.getLogger(__name__)


@shared_task(base=TenantTask, bind=True, max_retries=8, acks_late=True)
def webhook_apply_task(self: Task, webhook_pk: str, *, tenant_id: str) -> str:
    """Apply one stored device-cloud webhook; retried with backoff when the database step fails."""
    try:
        return str(webhook_apply(webhook_pk=webhook_pk, at=timezone.now()).status)
    except DeviceCloudWebhook.DoesNotExist:
        logger.warning("webhook %s no longer exists; nothing to apply", webhook_pk)
        return "missing"
    except Exception as exc:
        logger.warning("applying webhook %s failed", webhook_pk, exc_info=True)
        webhook_mark_failed(webhook_pk=webhook_pk)
        raise self.retry(exc=exc, countdown=min(2**self.request.retries * 5, 600)) from exc


@shared_task
def subscription_changes_apply_due_task() -> int:
    """Scheduled by beat: one task per tenant applies its downgrades and cancellations whose period
    has ended. Returns how many tenants were queued."""
    return for_each_tenant(subscription_changes_apply_due_tenant_task)


@shared_task(base=TenantTask, **LONG_TASK_LIMITS)
def subscription_changes_apply_due_tenant_task(*, tenant_id: str) -> int:
    from subscriptions.changes import subscription_changes_apply_due

    return subscription_changes_apply_due(tenant=Tenant.objects.get(pk=tenant_id), at=timezone.now())


@shared_task
def subscription_ends_apply_due_task() -> int:
    """Scheduled by beat: one task per tenant ends its subscriptions that do not renew once their
    commitment is over. Returns how many tenants were queued."""
    return for_each_tenant(subscription_ends_apply_due_tenant_task)


@shared_task(base=TenantTask, **LONG_TASK_LIMITS)
def subscription_ends_apply_due_tenant_task(*, tenant_id: str) -> int:
    from subscriptions.changes import subscription_ends_apply_due

    return subscription_ends_apply_due(tenant=Tenant.objects.get(pk=tenant_id), at=timezone.now())
