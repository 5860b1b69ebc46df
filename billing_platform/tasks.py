"""The base classes of Tripod's Celery tasks: each runs in a row-level security scope
(``billing_platform.rls``), as a request does. ``ScopedTask`` is every task's default (the Celery
app's ``task_cls``): the application role with no tenant set, so a task that reads tenant data
without saying whose reads nothing. ``TenantTask`` runs under the tenant of its ``tenant_id``
keyword argument; the work of one tenant is always such a task, and a scheduled job that concerns
every tenant queues one per tenant (``tenancy.dispatch.for_each_tenant``)."""

from typing import Any

from celery import Task

from billing_platform.rls import tenant_context

# The limits of the tasks that may rightly run long on a big tenant (an export, a dunning pass, the
# due subscription changes and ends, the partner statements, a batch of card charges), instead of the
# default 270 s / 300 s (settings). The broker's visibility timeout counts on 600 s as the longest.
LONG_TASK_LIMITS: dict[str, Any] = {"soft_time_limit": 570, "time_limit": 600}


class ScopedTask(Task):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with tenant_context(None):
            return self.run(*args, **kwargs)


class TenantTask(ScopedTask):
    """Called with ``tenant_id=`` (a keyword, kept by retries), which the task also receives."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        tenant_id = kwargs.get("tenant_id")
        if not tenant_id:
            raise TypeError(f"{self.name} works for one tenant: call it with tenant_id=<the tenant's id>.")
        with tenant_context(tenant_id):
            return self.run(*args, **kwargs)
