"""API authentication: ``Authorization: Bearer <api key>`` resolves the key, hence the tenant."""

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from billing_platform.rls import tenant_activate
from tenancy.keys import hash_api_key
from tenancy.models import ApiKey, Tenant

TENANT_COLUMNS_NOT_READ = ("tenant__logo", "tenant__device_cloud_secrets")


class ApiKeyPrincipal:
    """``request.user`` for API requests: the key, acting for its tenant."""

    is_authenticated = True
    is_anonymous = False

    def __init__(self, api_key: ApiKey) -> None:
        self.api_key = api_key
        self.tenant: Tenant = api_key.tenant
        self.pk = api_key.pk

    def __str__(self) -> str:
        return str(self.api_key)


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[ApiKeyPrincipal, ApiKey] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        parts = header.split()
        if len(parts) != 2 or parts[0].lower() != self.keyword.lower():
            raise exceptions.AuthenticationFailed("Use the header `Authorization: Bearer <api key>`.")
        api_key = (
            ApiKey.objects.select_related("tenant")
            # Not the tenant's logo (its bytes) nor its device-cloud secrets (decrypted when read):
            # no API request but the device cloud's needs them, and that one reads them when it does.
            .defer(*TENANT_COLUMNS_NOT_READ)
            .filter(key_hash=hash_api_key(parts[1]), revoked_at__isnull=True)
            .first()
        )
        if api_key is None:
            raise exceptions.AuthenticationFailed("Unknown or revoked API key.")
        self._touch(api_key)
        # From here on the database's row-level security shows this tenant's rows only.
        tenant_activate(api_key.tenant_id)
        # On the Django request too, so middleware (request log) and helpers see the tenant.
        request._request.tenant = api_key.tenant  # type: ignore[attr-defined]
        return ApiKeyPrincipal(api_key), api_key

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'

    @staticmethod
    def _touch(api_key: ApiKey) -> None:
        # Written at most once a minute per key: a write on every request would serialise ingestion.
        now = timezone.now()
        interval = timedelta(seconds=settings.TRIPOD["API_KEY_TOUCH_INTERVAL"])
        if api_key.last_used_at is None or now - api_key.last_used_at > interval:
            ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
            api_key.last_used_at = now


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "tenancy.authentication.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer", "description": "A tenant API key (tpk_…)."}
