"""Celery tasks of outbound webhooks: send a batch of one tenant's deliveries, and the beat sweep
(one sweep task per tenant, each under its tenant's row-level security)."""

from celery import shared_task
from django.utils import timezone

from billing_platform.tasks import TenantTask
from tenancy.dispatch import for_each_tenant


@shared_task(base=TenantTask, acks_late=True)
def webhook_deliveries_send_task(delivery_ids: list[str] | None = None, *, tenant_id: str) -> int:
    """Send a batch of the tenant's deliveries: these when given (those still due), else any due
    ones. Safe to run twice and in parallel: each delivery is claimed by one worker."""
    from webhooks.delivery import deliveries_send

    return deliveries_send(at=timezone.now(), delivery_ids=delivery_ids).tried


@shared_task(base=TenantTask)
def webhook_deliveries_sweep_tenant_task(*, tenant_id: str) -> int:
    """Queue what is due for one tenant: retries, and deliveries committed but never queued or left
    by a dead worker."""
    from webhooks.delivery import deliveries_due_enqueue

    return deliveries_due_enqueue(tenant_id=tenant_id, at=timezone.now())


@shared_task
def webhook_deliveries_sweep_task() -> int:
    """Beat: one sweep task per tenant. Returns how many tenants were queued."""
    return for_each_tenant(webhook_deliveries_sweep_tenant_task)
