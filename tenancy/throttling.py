"""The API's rate limits per API key and per tenant (DRF's ``DEFAULT_THROTTLE_CLASSES``).

A view chooses its scope with ``rate_limit_scope`` (``api`` unless it says otherwise: usage events
are ``ingest``, device-cloud webhooks ``webhooks``); the rates of each scope are
``settings.TRIPOD_RATE_LIMITS[scope]["key"]`` and ``["tenant"]``, either of which may be absent.
Counting and the 429 are ``billing_platform.ratelimit``'s. Throttles run after authentication and
permissions, so a request without a valid key never reaches them.
"""

from typing import Any

from django.conf import settings
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from billing_platform.ratelimit import Limit, parse_rate, rate_limit
from tenancy.models import ApiKey

DEFAULT_SCOPE = "api"


class ApiRateThrottle(BaseThrottle):
    def allow_request(self, request: Request, view: Any) -> bool:
        """Counts the request, or raises ``RateLimited`` (429 problem+json with ``Retry-After``)."""
        scope = getattr(view, "rate_limit_scope", DEFAULT_SCOPE)
        rates: dict[str, str] = settings.TRIPOD_RATE_LIMITS.get(scope, {})
        api_key = request.auth if isinstance(request.auth, ApiKey) else None
        limits = []
        if api_key is not None and rates.get("key"):
            limits.append(Limit("%s:key:%s" % (scope, api_key.pk), parse_rate(rates["key"]), "this API key"))
        tenant = self.tenant_ident(request, api_key)
        if tenant and rates.get("tenant"):
            limits.append(Limit("%s:tenant:%s" % (scope, tenant), parse_rate(rates["tenant"]), "this tenant"))
        rate_limit(request._request, limits)
        return True

    def tenant_ident(self, request: Request, api_key: ApiKey | None) -> str:
        """Whose tenant limit the request counts against: its key's tenant."""
        return str(api_key.tenant_id) if api_key is not None else ""
