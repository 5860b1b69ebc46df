"""Scopes: ``full`` reads and writes, ``read`` only reads, ``ingest`` and ``device_cloud`` only reach
the endpoints that declare them (usage events, device-cloud webhooks)."""

from typing import Any

from rest_framework import permissions
from rest_framework.request import Request

from tenancy.models import ApiKey, ApiKeyScope

READ_SCOPES = frozenset({ApiKeyScope.FULL, ApiKeyScope.READ})
WRITE_SCOPES = frozenset({ApiKeyScope.FULL})


class HasTenantScope(permissions.BasePermission):
    message = "This API key's scope does not allow this operation."

    def has_permission(self, request: Request, view: Any) -> bool:
        api_key = request.auth
        if not isinstance(api_key, ApiKey):
            return False
        if request.method in permissions.SAFE_METHODS:
            allowed = getattr(view, "read_scopes", READ_SCOPES)
        else:
            allowed = getattr(view, "write_scopes", WRITE_SCOPES)
        return api_key.scope in allowed
