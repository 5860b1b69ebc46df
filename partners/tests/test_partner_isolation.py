"""A partner sees its own customers and nothing else (specs/partners.md: "every partner URL ... with
another partner's or a direct customer's object answers 404").

Every route of the ``partners`` namespace is walked, so a new page cannot slip through: a route with
path parameters must say below how to make the victim's object for it, and then answers 404 (GET
and POST) to a partner of the same tenant and to a partner of another tenant, for another partner's
object and for a direct customer's; a route without parameters shows none of the victims' objects.
Staff logins, portal sessions and partner sessions open nothing of each other's."""

import re
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from catalog.tests.factories import platform_plan
from customers.models import Customer
from customers.portal import portal_session_open
from customers.tests.factories import dupont
from partners.models import CommissionStatement, PartnerUser
from partners.tests.dashboard import make_partner, make_partner_user, partner_client, partner_customer
from subscriptions.models import Device, Subscription
from subscriptions.tests.factories import signed_subscription
from tenancy.models import Tenant

pytestmark = pytest.mark.django_db

# The doors: a tenant's public login page and an invitation's token.
PUBLIC = {"login", "invitation"}


def partner_routes() -> list[tuple[str, str, tuple[str, ...]]]:
    """(url name, route, parameter names) of every partner dashboard URL."""
    found = []

    def walk(patterns: list[Any], prefix: str) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern) and pattern.name:
                route = prefix + str(pattern.pattern)
                found.append((pattern.name, route, tuple(re.findall(r"<(?:\w+:)?(\w+)>", route))))

    for pattern in get_resolver().url_patterns:
        if isinstance(pattern, URLResolver) and getattr(pattern, "namespace", None) == "partners":
            walk(pattern.url_patterns, "/" + str(pattern.pattern))
    return found


def _path(route: str, values: dict[str, str]) -> str:
    return re.sub(r"<(?:\w+:)?(\w+)>", lambda m: values[m.group(1)], route)


class Victim:
    """A customer, its subscription (device VICTIM-DEVICE and an empty slot) and, for a partner's
    customer, that partner's admin user."""

    def __init__(self, tenant: Tenant, customer: Customer, user: PartnerUser | None, prefix: str) -> None:
        self.customer = customer
        self.user = user
        # The partner's statement for April 2026 (none for a direct customer).
        self.statement = (
            CommissionStatement.objects.create(
                tenant=tenant,
                partner=user.partner,
                month=date(2026, 4, 1),
                currency="EUR",
                total=Decimal("19.43"),
                built_at=timezone.now(),
            )
            if user is not None
            else None
        )
        plan = platform_plan(tenant, "%s-plan" % prefix, "10.00")
        self.subscription: Subscription = signed_subscription(
            tenant, customer=customer, plan=plan, external_id="%s-sub" % prefix, devices=("%s-DEVICE" % prefix,)
        )
        self.slot = Device.objects.create(
            tenant=tenant, subscription=self.subscription, device_id="", added_at=self.subscription.starts_at
        )
        self.secrets = [customer.name, customer.external_id, "%s-sub" % prefix, "%s-DEVICE" % prefix]
        if user is not None:
            self.secrets.append(user.email)

    def params(self, name: str) -> dict[str, str] | None:
        """The path parameters of route ``name`` for this victim's object; None: it has none."""
        makers: dict[str, Callable[[], dict[str, str] | None]] = {
            "customer": lambda: {"external_id": self.customer.external_id},
            "customer-subscribe": lambda: {"external_id": self.customer.external_id},
            "slot-bind": lambda: {"external_id": self.subscription.external_id, "slot_id": str(self.slot.pk)},
            "users-role": lambda: {"user_id": str(self.user.pk)} if self.user else None,
            "users-remove": lambda: {"user_id": str(self.user.pk)} if self.user else None,
            "statement-pdf": lambda: {"pk": str(self.statement.pk)} if self.statement else None,
            "statement-csv": lambda: {"pk": str(self.statement.pk)} if self.statement else None,
        }
        return makers[name]() if name in makers else None


# route name -> covered by Victim.params
COVERED = {
    "customer",
    "customer-subscribe",
    "slot-bind",
    "users-role",
    "users-remove",
    "statement-pdf",
    "statement-csv",
}


@pytest.fixture
def victims(tenant: Tenant) -> dict[str, Victim]:
    rival = make_partner(tenant, code="rival", name="Rival Net")
    rival_admin = make_partner_user(rival, email="victim@rival.test", role="admin")
    rival_customer = partner_customer(tenant, rival, "victim-cust", "VICTIM CUSTOMER")
    direct = dupont(tenant, external_id="direct-cust", name="DIRECT CUSTOMER")
    return {
        "another partner's": Victim(tenant, rival_customer, rival_admin, "VICTIM"),
        "a direct customer's": Victim(tenant, direct, None, "DIRECT"),
    }


@pytest.fixture
def intruders(tenant: Tenant, other_tenant: Tenant) -> dict[str, Client]:
    ours = make_partner(tenant, code="alpnet", name="AlpNet")
    partner_customer(tenant, ours, "own-cust", "Own Customer")
    theirs = make_partner(other_tenant, code="alpnet", name="AlpNet Globex")
    return {
        "same tenant": partner_client(make_partner_user(ours, email="admin@alpnet.test", role="admin")),
        "other tenant": partner_client(make_partner_user(theirs, email="admin@globex-alpnet.test", role="admin")),
    }


def test_every_partner_route_with_a_parameter_is_covered() -> None:
    missing = [name for name, _, params in partner_routes() if params and name not in COVERED | PUBLIC]
    assert not missing, "say in Victim.params how to make the victim's object for: %s" % ", ".join(missing)


def test_another_partners_or_a_direct_customers_objects_are_not_found(
    victims: dict[str, Victim], intruders: dict[str, Client]
) -> None:
    owner = partner_client(victims["another partner's"].user)  # type: ignore[arg-type]
    checked = 0
    for name, route, params in partner_routes():
        if not params or name in PUBLIC:
            continue
        for whose, victim in victims.items():
            values = victim.params(name)
            if values is None:
                continue
            path = _path(route, values)
            if victim.user is not None:
                # the owner reaches it (so the 404 below is about the partner, not a broken path)
                assert owner.get(path).status_code in (200, 302), path
            for who, client in intruders.items():
                assert client.get(path).status_code == 404, "%s GET %s (%s)" % (who, path, whose)
                posted = client.post(path, {"device_id": "X", "role": "sales", "plan": "x", "quantity": "1"})
                assert posted.status_code in (404, 405), "%s POST %s (%s)" % (who, path, whose)
            checked += 1
    assert checked >= 10


def test_pages_without_parameters_show_only_the_partners_own_customers(
    victims: dict[str, Victim], intruders: dict[str, Client]
) -> None:
    pages = [route for name, route, params in partner_routes() if not params and name not in ("logout",)]
    assert len(pages) >= 5
    secrets = [s for v in victims.values() for s in v.secrets]
    for who, client in intruders.items():
        for path in pages:
            response: Any = client.get(path, follow=True)
            assert response.status_code == 200, "%s %s" % (who, path)
            content = b"".join(response.streaming_content) if response.streaming else response.content
            leaked = [s for s in secrets if s in content.decode()]
            assert not leaked, "%s %s shows %s" % (who, path, leaked)


def test_staff_and_portal_sessions_open_no_partner_page_and_a_partner_session_nothing_else(
    tenant: Tenant, victims: dict[str, Victim], make_staff: Any
) -> None:
    staff = Client()
    staff.force_login(make_staff(tenant))
    portal = Client()
    direct = victims["a direct customer's"].customer
    portal.cookies[settings.PORTAL_SESSION_COOKIE] = portal_session_open(
        customer=direct, user=None, at=timezone.now()
    ).token
    for name, route, params in partner_routes():
        if name in PUBLIC or name in ("signed-out", "logout"):
            continue
        values = victims["another partner's"].params(name) or {}
        path = _path(route, values) if params else route
        for who, client in (("staff", staff), ("portal", portal)):
            response = client.get(path)
            assert response.status_code == 302, "%s %s" % (who, path)
            assert response["Location"] == "/partners/signed-out/", "%s %s" % (who, path)
    partner = partner_client(victims["another partner's"].user)  # type: ignore[arg-type]
    for path in ("/app/", "/app/customers/", "/app/billing/invoices/"):
        response = partner.get(path)
        assert response.status_code == 302, path
        assert response["Location"].startswith("/app/login/"), path
    for path in ("/portal/overview/", "/portal/devices/", "/portal/invoices/"):
        response = partner.get(path)
        assert response.status_code == 302, path
        assert response["Location"] == "/portal/signed-out/", path
    assert partner.get("/api/v1/customers").status_code == 401
    assert settings.PARTNER_SESSION_COOKIE not in (settings.SESSION_COOKIE_NAME, settings.PORTAL_SESSION_COOKIE)
