import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils.crypto import get_random_string

from billing_platform.errors import invalid
from billing_platform.money import is_known_currency
from billing_platform.validation import validate_timezone
from tenancy.actors import Actor
from tenancy.errors import ApiKeyAlreadyRevoked, ApiKeyNotFound, TenantSlugTaken
from tenancy.keys import generate_api_key, generate_webhook_secret
from tenancy.models import ApiKey, ApiKeyScope, AuditLogEntry, Membership, Role, Tenant

logger = logging.getLogger(__name__)


def audit_entry(
    *,
    tenant: Tenant,
    actor: Actor,
    action: str,
    object_type: str,
    object_id: str,
    at: datetime,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditLogEntry:
    """An audit-log entry, not saved yet: for writes that record many at once (``bulk_create``)."""
    return AuditLogEntry(
        tenant=tenant,
        at=at,
        actor_type=actor.type,
        actor_id=actor.id,
        actor_label=actor.label,
        action=action,
        object_type=object_type,
        object_id=object_id,
        before=before,
        after=after,
    )


def audit_record(
    *,
    tenant: Tenant,
    actor: Actor,
    action: str,
    object_type: str,
    object_id: str,
    at: datetime,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditLogEntry:
    """Append one entry to the tenant's audit log. Call it inside the write's transaction."""
    entry = audit_entry(
        tenant=tenant,
        actor=actor,
        action=action,
        object_type=object_type,
        object_id=object_id,
        at=at,
        before=before,
        after=after,
    )
    entry.save(force_insert=True)
    return entry


@dataclass(frozen=True)
class TenantCreated:
    tenant: Tenant
    api_key: str
    device_cloud_secret: str
    admin_password: str | None


def tenant_create(
    *, name: str, slug: str, currency: str, timezone: str, admin_email: str, at: datetime
) -> TenantCreated:
    """Create a tenant, its owner login, a full-scope API key and a device-cloud webhook secret.

    The admin user is created with a random password (returned once) unless that email already has
    a login, in which case the existing user simply becomes owner of the new tenant too.
    """
    if not is_known_currency(currency):
        raise invalid("currency", "unknown_currency", f"Unknown ISO 4217 currency: {currency}.")
    validate_timezone(timezone, field="timezone")
    secret = generate_webhook_secret()
    user_model = get_user_model()
    password: str | None = None
    with transaction.atomic():
        try:
            with transaction.atomic():
                tenant = Tenant.objects.create(
                    name=name,
                    slug=slug,
                    default_currency=currency,
                    timezone=timezone,
                    device_cloud_secrets=[secret],
                )
        except IntegrityError:
            raise TenantSlugTaken(f"A tenant with slug {slug} already exists.") from None
        user = user_model.objects.filter(email__iexact=admin_email).first()
        if user is None:
            password = get_random_string(16)
            user = user_model.objects.create_user(username=admin_email, email=admin_email, password=password)
        Membership.objects.create(tenant=tenant, user=user, role=Role.OWNER)
        actor = Actor.system("create_tenant")
        audit_record(
            tenant=tenant,
            actor=actor,
            action="tenant.created",
            object_type="tenant",
            object_id=tenant.slug,
            at=at,
            after={"name": name, "currency": currency, "timezone": timezone, "owner": admin_email},
        )
        _, key = api_key_create(
            tenant=tenant, name="Initial full-access key", scope=ApiKeyScope.FULL, actor=actor, at=at
        )
    logger.info("tenant created", extra={"tenant_id": str(tenant.pk), "tenant_slug": slug})
    return TenantCreated(tenant=tenant, api_key=key, device_cloud_secret=secret, admin_password=password)


def api_key_create(
    *,
    tenant: Tenant,
    name: str,
    scope: str,
    actor: Actor,
    at: datetime,
    created_by: Any = None,
) -> tuple[ApiKey, str]:
    """Create a key; returns the row and the key itself, which is never stored and never shown again."""
    if scope not in ApiKeyScope.values:
        raise invalid("scope", "invalid_choice", "Scope must be one of: {}.".format(", ".join(ApiKeyScope.values)))
    name = name.strip()
    if not name:
        raise invalid("name", "required", "Give the key a name, e.g. the system that will use it.")
    key, prefix, key_hash = generate_api_key()
    with transaction.atomic():
        api_key = ApiKey.objects.create(
            tenant=tenant,
            name=name[:100],
            scope=scope,
            prefix=prefix,
            key_hash=key_hash,
            created_by=created_by,
        )
        audit_record(
            tenant=tenant,
            actor=actor,
            action="api_key.created",
            object_type="api_key",
            object_id=str(api_key.pk),
            at=at,
            after={"name": api_key.name, "scope": scope, "prefix": prefix},
        )
    return api_key, key


def api_key_revoke(*, tenant: Tenant, key_id: str, actor: Actor, at: datetime) -> ApiKey:
    with transaction.atomic():
        api_key = ApiKey.objects.select_for_update().filter(tenant=tenant, pk=key_id).first()
        if api_key is None:
            raise ApiKeyNotFound("No such API key.")
        if api_key.revoked_at is not None:
            raise ApiKeyAlreadyRevoked("This API key was already revoked.")
        api_key.revoked_at = at
        api_key.save(update_fields=["revoked_at"])
        audit_record(
            tenant=tenant,
            actor=actor,
            action="api_key.revoked",
            object_type="api_key",
            object_id=str(api_key.pk),
            at=at,
            before={"revoked_at": None},
            after={"revoked_at": at.isoformat()},
        )
    return api_key
