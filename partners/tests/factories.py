"""Partner test data: partners, their customers and their API keys, a plan offered to partners."""

from typing import Any

from django.utils import timezone
from rest_framework.test import APIClient

from catalog.models import Plan
from catalog.tests.factories import platform_plan
from customers.models import Customer, Partner
from customers.services import customer_create
from tenancy.actors import Actor
from tenancy.models import ApiKeyScope, Tenant
from tenancy.services import api_key_create

ACTOR = Actor.system("tests")


def partner(tenant: Tenant, code: str = "alpnet", name: str = "AlpNet", **fields: Any) -> Partner:
    return Partner.objects.create(tenant=tenant, code=code, name=name, currency="EUR", **fields)


def partner_client(tenant: Tenant, of: Partner) -> APIClient:
    """An API client with a key of scope ``partner`` for ``of``."""
    _, key = api_key_create(
        tenant=tenant, name="%s key" % of.code, scope=ApiKeyScope.PARTNER, actor=ACTOR, at=timezone.now(), partner=of
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def customer_of(tenant: Tenant, external_id: str, of: Partner | None) -> Customer:
    return customer_create(
        tenant=tenant,
        actor=ACTOR,
        at=timezone.now(),
        external_id=external_id,
        name=external_id.title(),
        email="%s@example.test" % external_id,
        country="FR",
        partner=of,
    )


def partner_plan(
    tenant: Tenant, code: str = "partner-fleet", amount: str = "20.00", visible: bool = True, **fields: Any
) -> Plan:
    """A monthly plan of one per-device fee of ``amount`` (EUR), offered to partners if ``visible``."""
    return platform_plan(tenant, code, amount, partner_visible=visible, **fields)
