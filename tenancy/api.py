"""Helpers for API views: the tenant and the actor of an authenticated request."""

from typing import cast

from rest_framework.request import Request

from tenancy.actors import Actor
from tenancy.models import ApiKey, Tenant


def request_tenant(request: Request) -> Tenant:
    api_key = cast(ApiKey, request.auth)
    return api_key.tenant


def request_actor(request: Request) -> Actor:
    return Actor.api_key(request.auth)
