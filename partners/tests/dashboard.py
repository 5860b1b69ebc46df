"""Partner dashboard test data: partners, their users and a test client logged into the dashboard
through a real session cookie."""

from typing import Any

from django.conf import settings
from django.test import Client
from django.utils import timezone

from customers.models import Customer, Partner
from customers.tests.factories import dupont
from partners.models import PartnerRole, PartnerUser
from partners.services import partner_create
from partners.sessions import partner_session_open
from tenancy.actors import Actor
from tenancy.models import Tenant

ACTOR = Actor.system("tests")
PLAN = {"hardware": "5", "service": "20", "usage": "10", "fee": "0"}


def make_partner(tenant: Tenant, code: str = "alpnet", name: str = "AlpNet", **fields: Any) -> Partner:
    fields.setdefault("language", "en")
    return partner_create(
        tenant=tenant, actor=ACTOR, at=timezone.now(), code=code, name=name, commission_plan=PLAN, **fields
    )


def make_partner_user(
    partner: Partner, email: str | None = None, role: str = PartnerRole.ADMIN, **fields: Any
) -> PartnerUser:
    return PartnerUser.objects.create(
        tenant_id=partner.tenant_id,
        partner=partner,
        email=email or "%s@%s.test" % (role, partner.code),
        name=fields.pop("name", "%s user" % partner.name),
        role=role,
        **fields,
    )


def partner_client(user: PartnerUser) -> Client:
    opened = partner_session_open(user=user, at=timezone.now())
    client = Client()
    client.cookies[settings.PARTNER_SESSION_COOKIE] = opened.token
    return client


def partner_customer(tenant: Tenant, partner: Partner | None, external_id: str, name: str, **changes: Any) -> Customer:
    """Dupont's details (FR, EUR, Paris) under another id and name, brought by ``partner``."""
    return dupont(tenant, external_id=external_id, name=name, partner=partner, **changes)
