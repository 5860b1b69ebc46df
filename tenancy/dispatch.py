"""Scheduled work that concerns every tenant runs as one task per tenant, each under its tenant's
row-level security (``billing_platform.tasks.TenantTask``): the scheduler reads the tenant list
only, never another table across tenants."""

from typing import Any

from celery import group

from tenancy.models import Tenant


def for_each_tenant(task: Any, *, expires: float | None = None, **kwargs: Any) -> int:
    """Queue ``task`` (a ``TenantTask``) once per tenant with ``tenant_id`` and ``kwargs``: one query
    lists the tenants, one group sends the tasks; with ``expires`` (seconds), a task still queued
    after that is dropped. Returns how many were queued."""
    tenant_ids = [str(pk) for pk in Tenant.objects.order_by("pk").values_list("pk", flat=True)]
    if tenant_ids:
        options = {} if expires is None else {"expires": expires}
        group(task.s(tenant_id=tenant_id, **kwargs).set(**options) for tenant_id in tenant_ids).apply_async()
    return len(tenant_ids)
