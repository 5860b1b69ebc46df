"""Portal fixtures: ``make_portal_user`` and ``portal_client`` (a test client logged into the
portal as a new portal user of a customer, through a real portal session cookie)."""

from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from customers.models import Customer, PortalRole, PortalUser
from customers.portal import portal_session_open

PortalUserMaker = Callable[..., PortalUser]
PortalClientMaker = Callable[..., Client]


@pytest.fixture
def make_portal_user(db: Any) -> PortalUserMaker:
    counter = {"n": 0}

    def make(customer: Customer, role: str = PortalRole.ADMIN, email: str | None = None, **fields: Any) -> PortalUser:
        counter["n"] += 1
        return PortalUser.objects.create(
            tenant_id=customer.tenant_id,
            customer=customer,
            email=email or f"user{counter['n']}@{customer.external_id}.test",
            name=fields.pop("name", "Portal User %d" % counter["n"]),
            role=role,
            **fields,
        )

    return make


@pytest.fixture
def portal_client(make_portal_user: PortalUserMaker) -> PortalClientMaker:
    def make(customer: Customer, role: str = PortalRole.ADMIN, user: PortalUser | None = None) -> Client:
        user = user or make_portal_user(customer, role=role)
        opened = portal_session_open(customer=customer, user=user, at=timezone.now())
        client = Client()
        client.cookies[settings.PORTAL_SESSION_COOKIE] = opened.token
        client.portal_user = user  # type: ignore[attr-defined]
        return client

    return make
