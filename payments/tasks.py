"""Celery tasks of payments: the hourly dunning pass; sending an attempt, charging a batch of
invoices, applying a Stripe event, and the beat sweep of Stripe events left unapplied. Tenant work
runs one task per tenant under its row-level security."""

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.utils import timezone

from billing_platform.tasks import LONG_TASK_LIMITS, TenantTask
from tenancy.dispatch import for_each_tenant


@shared_task(base=TenantTask, **LONG_TASK_LIMITS)
def dunning_run_task(*, tenant_id: str) -> dict[str, int]:
    """One tenant's dunning pass now; safe to repeat (each step once)."""
    from payments.dunning import dunning_run

    return dunning_run(tenant_id=tenant_id, at=timezone.now()).counts()


@shared_task
def dunning_runs_task() -> int:
    """Beat: one dunning pass per tenant. Returns how many tenants were queued."""
    return for_each_tenant(dunning_run_task)


@shared_task(base=TenantTask, acks_late=True)
def attempt_send_task(attempt_id: str, *, tenant_id: str) -> str:
    from payments.charging import attempt_send

    return str(attempt_send(attempt_id=attempt_id, at=timezone.now()).status)


@shared_task(base=TenantTask, acks_late=True, **LONG_TASK_LIMITS)
def invoices_charge_task(invoice_ids: list[str], *, trigger: str, tenant_id: str) -> dict[str, int]:
    from payments.charging import invoices_charge

    return invoices_charge(invoice_ids, trigger=trigger, at=timezone.now())


@shared_task(base=TenantTask, acks_late=True, autoretry_for=(Exception,), max_retries=5, retry_backoff=True)
def gateway_event_apply_task(event_pk: int, *, tenant_id: str) -> None:
    from payments.stripe_webhooks import gateway_event_apply

    gateway_event_apply(event_pk=event_pk, at=timezone.now())


@shared_task(base=TenantTask)
def gateway_events_sweep_tenant_task(*, tenant_id: str) -> int:
    """Apply the tenant's stored events that no task applied (a lost task, a worker that died)."""
    from payments.stripe_webhooks import gateway_event_apply, gateway_events_pending

    applied = 0
    for pk in gateway_events_pending(tenant_id=tenant_id, at=timezone.now()):
        try:
            gateway_event_apply(event_pk=pk, at=timezone.now())
        except SoftTimeLimitExceeded:
            raise
        except Exception:  # kept in the event's error; the next sweep tries again
            continue
        applied += 1
    return applied


@shared_task
def gateway_events_sweep_task() -> int:
    """Beat: one sweep per tenant."""
    return for_each_tenant(gateway_events_sweep_tenant_task)
