from typing import Any

from django.db.models import QuerySet

from tenancy.keys import webhook_secret_fingerprint
from tenancy.models import ApiKey, AuditLogEntry, Membership, Tenant


def membership_list_for_user(*, user: Any) -> QuerySet[Membership]:
    return Membership.objects.filter(user=user).select_related("tenant").order_by("tenant__name")


def membership_get(*, user: Any, tenant_id: str) -> Membership | None:
    return Membership.objects.filter(user=user, tenant_id=tenant_id).select_related("tenant").first()


def api_key_list(*, tenant: Tenant, active_only: bool = False) -> QuerySet[ApiKey]:
    qs = ApiKey.objects.filter(tenant=tenant)
    if active_only:
        qs = qs.filter(revoked_at__isnull=True)
    return qs.select_related("created_by").order_by("-created_at")


def audit_log_list(
    *, tenant: Tenant, object_type: str | None = None, object_id: str | None = None, action: str | None = None
) -> QuerySet[AuditLogEntry]:
    qs = AuditLogEntry.objects.filter(tenant=tenant)
    if object_type:
        qs = qs.filter(object_type=object_type)
    if object_id:
        qs = qs.filter(object_id=object_id)
    if action:
        qs = qs.filter(action=action)
    return qs.order_by("-at", "-id")


def device_cloud_secret_fingerprints(*, tenant: Tenant) -> list[str]:
    """The fingerprints of the tenant's device-cloud secrets, oldest first (the secrets stay hidden)."""
    return [webhook_secret_fingerprint(secret) for secret in tenant.device_cloud_secrets or []]


def tenant_for_slug(*, slug: str) -> Tenant | None:
    """The tenant a public page names in its address (the portal's login page, its brand)."""
    return Tenant.objects.filter(slug=slug).first()
