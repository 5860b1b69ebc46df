"""Celery tasks of dunning: the hourly beat pass, one task per tenant under its row-level security."""

from celery import shared_task
from django.utils import timezone

from billing_platform.tasks import TenantTask
from tenancy.dispatch import for_each_tenant


@shared_task(base=TenantTask)
def dunning_run_task(*, tenant_id: str) -> dict[str, int]:
    """One tenant's dunning pass now; safe to repeat (each step once)."""
    from payments.dunning import dunning_run

    return dunning_run(tenant_id=tenant_id, at=timezone.now()).counts()


@shared_task
def dunning_runs_task() -> int:
    """Beat: one dunning pass per tenant. Returns how many tenants were queued."""
    return for_each_tenant(dunning_run_task)
