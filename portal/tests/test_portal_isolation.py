"""A portal user sees only its own customer's data (specs/portal.md, "Who logs in").

Every portal route of the URLconf is walked, so a new page cannot slip through: a route with path
parameters must say below how to make the victim's object for it, and then answers 404 (GET and
POST) to another customer of the same tenant and to a customer of another tenant; a route without
parameters answers its own customer's page, which names none of the victim's objects. Staff and
portal sessions grant nothing to each other."""

import re
from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from catalog.tests.factories import platform_plan
from customers.models import Customer, PortalUser
from customers.tests.factories import dupont
from portal.tests.conftest import PortalClientMaker, PortalUserMaker
from subscriptions.tests.factories import signed_subscription
from support.models import SupportAttachment
from support.services import case_open
from support.tests.factories import customer_with_invoice
from tenancy.actors import Actor
from tenancy.models import Tenant

pytestmark = pytest.mark.django_db

ACTOR = Actor.system("tests")
# Routes that are not a customer's: the doors (a link's token, a tenant's public login page and
# brand) and pages that take no path parameter.
PUBLIC = {"link", "brand-css", "logo", "login", "login-code", "login-password", "login-totp", "invitation"}


def portal_routes() -> list[tuple[str, str, tuple[str, ...]]]:
    """(url name, route, parameter names) of every portal URL."""
    found = []

    def walk(patterns: list[Any], prefix: str) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern) and pattern.name:
                route = prefix + str(pattern.pattern)
                found.append((pattern.name, route, tuple(re.findall(r"<(?:\w+:)?(\w+)>", route))))

    for pattern in get_resolver().url_patterns:
        if isinstance(pattern, URLResolver) and getattr(pattern, "namespace", None) == "portal":
            walk(pattern.url_patterns, "/" + str(pattern.pattern))
    return found


def _path(route: str, values: dict[str, str]) -> str:
    return re.sub(r"<(?:\w+:)?(\w+)>", lambda m: values[m.group(1)], route)


class Victim:
    """Dupont, whose objects the others look for: an invoice (120.00), a support case about it, a
    subscription with device VICTIM-DEVICE, a portal user."""

    def __init__(self, tenant: Tenant, make_portal_user: PortalUserMaker) -> None:
        self.customer, self.invoice = customer_with_invoice(tenant)
        self.case = case_open(
            customer=self.customer,
            subject="VICTIM-SUBJECT",
            body="This line is wrong",
            actor=ACTOR,
            author_type="customer",
            at=timezone.now(),
            invoice=self.invoice,
        )
        plan = platform_plan(tenant, "victim-plan", "10.00")
        self.subscription = signed_subscription(
            tenant, customer=self.customer, plan=plan, external_id="victim-sub", devices=("VICTIM-DEVICE",)
        )
        self.user: PortalUser = make_portal_user(self.customer, email="victim@dupont.test")
        self.attachment = SupportAttachment.objects.create(
            tenant=tenant,
            message=self.case.messages.get(),
            name="victim.txt",
            content_type="text/plain",
            size=6,
            data=b"secret",
            created_at=timezone.now(),
        )

    @property
    def secrets(self) -> list[str]:
        """What no other customer's page may show."""
        return [self.invoice.number, "VICTIM-SUBJECT", "VICTIM-DEVICE", "victim-sub", "victim@dupont.test"]


# route name -> the path parameters that address the victim's object
MAKERS: dict[str, Callable[[Victim], dict[str, str]]] = {
    "invoice": lambda v: {"pk": str(v.invoice.pk)},
    "invoice-pdf": lambda v: {"pk": str(v.invoice.pk)},
    "invoice-facturx": lambda v: {"pk": str(v.invoice.pk)},
    "invoice-pay": lambda v: {"pk": str(v.invoice.pk)},
    "support-case": lambda v: {"pk": str(v.case.pk)},
    "support-attachment": lambda v: {"pk": str(v.attachment.pk)},
    "plan-change": lambda v: {"external_id": v.subscription.external_id, "action": "cancel"},
    "users-role": lambda v: {"user_id": str(v.user.pk)},
    "users-remove": lambda v: {"user_id": str(v.user.pk)},
}


@pytest.fixture
def victim(tenant: Tenant, make_portal_user: PortalUserMaker) -> Victim:
    return Victim(tenant, make_portal_user)


def _intruders(tenant: Tenant, other_tenant: Tenant, portal_client: PortalClientMaker) -> dict[str, Client]:
    neighbour = Customer.objects.create(
        tenant=tenant,
        external_id="neighbour",
        name="Neighbour SA",
        email="billing@neighbour.test",
        currency="EUR",
        timezone="Europe/Paris",
        country="FR",
    )
    stranger = dupont(other_tenant)
    return {"same tenant": portal_client(neighbour), "other tenant": portal_client(stranger)}


def test_every_portal_route_with_a_parameter_is_covered() -> None:
    missing = [name for name, _, params in portal_routes() if params and name not in MAKERS and name not in PUBLIC]
    assert not missing, "say in MAKERS how to make the victim's object for: %s" % ", ".join(missing)


def test_another_customers_objects_are_not_found_on_any_portal_url(
    tenant: Tenant, other_tenant: Tenant, victim: Victim, portal_client: PortalClientMaker
) -> None:
    intruders = _intruders(tenant, other_tenant, portal_client)
    owner = portal_client(victim.customer, user=victim.user)
    checked = 0
    for name, route, params in portal_routes():
        if not params or name in PUBLIC:
            continue
        path = _path(route, MAKERS[name](victim))
        # the owner reaches it (so the 404 below is about the customer, not a broken path)
        assert owner.get(path).status_code in (200, 302), path
        for who, client in intruders.items():
            assert client.get(path).status_code == 404, "%s GET %s" % (who, path)
            assert client.post(path, {"step": "confirm", "body": "x"}).status_code in (404, 405), "%s POST %s" % (
                who,
                path,
            )
        checked += 1
    assert checked >= len(MAKERS)


def test_pages_without_parameters_show_only_their_own_customer(
    tenant: Tenant, other_tenant: Tenant, victim: Victim, portal_client: PortalClientMaker
) -> None:
    intruders = _intruders(tenant, other_tenant, portal_client)
    pages = [route for name, route, params in portal_routes() if not params and name not in ("logout",)]
    assert len(pages) >= 8
    for who, client in intruders.items():
        for path in pages:
            response = client.get(path, follow=True)
            # the usage file of a customer with no meter is not found: there is nothing to download
            assert response.status_code == 200 or (path.endswith(".csv") and response.status_code == 404), "%s %s" % (
                who,
                path,
            )
            content = response.content.decode()
            leaked = [secret for secret in victim.secrets if secret and secret in content]
            assert not leaked, "%s %s shows %s" % (who, path, leaked)


def test_a_staff_login_opens_no_portal_page_and_a_portal_session_no_back_office_page(
    tenant: Tenant, victim: Victim, make_staff: Any, portal_client: PortalClientMaker
) -> None:
    staff = Client()
    staff.force_login(make_staff(tenant))
    for name, route, params in portal_routes():
        if name in PUBLIC or name in ("signed-out", "logout"):
            continue
        path = _path(route, MAKERS[name](victim)) if params else route
        response = staff.get(path)
        assert response.status_code == 302, path
        location = response["Location"]
        assert location == "/portal/signed-out/" or re.match(r"^/portal/[\w-]+/login/", location), path
    portal = portal_client(victim.customer, user=victim.user)
    for path in ("/app/", "/app/customers/", "/app/billing/invoices/", "/app/support/"):
        response = portal.get(path)
        assert response.status_code == 302, path
        assert response["Location"].startswith("/app/login/"), path
    assert portal.get("/api/v1/customers").status_code == 401
    assert settings.PORTAL_SESSION_COOKIE != settings.SESSION_COOKIE_NAME
