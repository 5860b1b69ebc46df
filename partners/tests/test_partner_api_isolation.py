"""Partner API keys reach only the partner's routes and customers (specs/partners.md, "API"):

- every ``/api/v1/partner/`` route with another partner's object, or a direct customer's, answers
  404, exactly as for an unknown one, and its lists hold only the partner's own;
- a partner's key gets 403 on every other route of the API (the staff's);
- a staff key (full scope) gets 403 on every partner route.

The routes are found by walking the URLconf (tests/api_routes.py): a new route is covered, or this
test fails until it says how to reach it."""

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from customers.models import Partner
from partners.models import CommissionStatement
from partners.tests.factories import ACTOR, customer_of, partner, partner_client, partner_plan
from subscriptions.models import Device, Subscription
from subscriptions.orders import order_place
from subscriptions.tests.shop import ADDRESS
from tenancy.models import Tenant
from tests.api_routes import ApiRoute, api_routes

pytestmark = pytest.mark.django_db
PARIS = ZoneInfo("Europe/Paris")
PARTNER_PREFIX = "api/v1/partner/"
# The routes a partner key reaches with an object in the path, and what the path names: the
# customer's external_id, the subscription's and its slot's, or a commission statement's id.
OBJECT_ROUTES = {
    "partner-customer-detail": "customer",
    "partner-customer-current-usage": "customer",
    "partner-subscription-detail": "subscription",
    "partner-subscription-device-bind": "slot",
    "partner-own-statement": "statement",
    "partner-own-statement-pdf": "statement",
    "partner-own-statement-csv": "statement",
}
BODIES: dict[str, dict[str, Any]] = {
    "partner-subscription-device-bind": {"device_id": "ELD-9"},
}


def partner_routes() -> list[ApiRoute]:
    return [r for r in api_routes() if r.route.startswith(PARTNER_PREFIX)]


def _owned(tenant: Tenant, external_id: str, of: Partner | None) -> Subscription:
    """A customer of ``of`` (None: a direct customer) with a shop order: a subscription and a slot."""
    order = order_place(
        customer=customer_of(tenant, external_id, of),
        plan=partner_plan(tenant, code="fleet-%s" % external_id, self_service=True),
        quantity=1,
        shipping_address=ADDRESS,
        actor=ACTOR,
        at=datetime(2026, 3, 10, 10, 0, tzinfo=PARIS),
    )
    assert order.subscription is not None
    return order.subscription


def _statement(of: Partner) -> CommissionStatement:
    """``of``'s statement of April 2026 (a draft, as built on 1 May)."""
    return CommissionStatement.objects.create(
        tenant=of.tenant, partner=of, month=date(2026, 4, 1), currency="EUR", total=0, built_at=timezone.now()
    )


def _path(route: ApiRoute, subscription: Subscription) -> str:
    kind = OBJECT_ROUTES[route.name]
    if kind == "statement":
        partner = subscription.customer.partner
        assert partner is not None
        return route.path(pk=str(CommissionStatement.objects.get(partner=partner).pk))
    if kind == "customer":
        return route.path(external_id=subscription.customer.external_id)
    slot = Device.objects.get(subscription=subscription)
    return route.path(external_id=subscription.external_id, device=str(slot.pk))


def test_every_partner_route_is_known_here() -> None:
    with_objects = {r.name for r in partner_routes() if r.params}
    assert with_objects == set(OBJECT_ROUTES)


def test_another_partners_or_a_direct_customers_object_is_not_found(tenant: Tenant) -> None:
    alpnet, geosat = partner(tenant), partner(tenant, code="geosat", name="Geo Sat")
    own = _owned(tenant, "own", alpnet)
    others = {"another partner's": _owned(tenant, "geo", geosat), "a direct customer's": _owned(tenant, "direct", None)}
    _statement(alpnet)
    geosats = _statement(geosat)
    client = partner_client(tenant, alpnet)
    checked = 0
    for route in partner_routes():
        if not route.params:
            continue
        for method in route.methods:
            body = BODIES.get(route.name, {})
            # its own object is reached (the check below cannot pass by a wrong path)
            if method == "get":
                assert getattr(client, method)(_path(route, own)).status_code == 200, route.name
            for whose, subscription in others.items():
                if OBJECT_ROUTES[route.name] == "statement" and subscription.customer.partner is None:
                    continue  # a statement is a partner's: no direct customer's
                response = getattr(client, method)(_path(route, subscription), body, format="json")
                assert response.status_code == 404, (route.name, method, whose, response.content)
                unknown = getattr(client, method)(
                    _path(route, subscription)
                    .replace(subscription.external_id, "nobody")
                    .replace(subscription.customer.external_id, "nobody")
                    .replace(str(geosats.pk), "00000000-0000-0000-0000-000000000000"),
                    body,
                    format="json",
                )
                # the same answer as an unknown id, but for the id itself
                assert response.json()["code"] == unknown.json()["code"], route.name
                checked += 1
    # 4 routes x 2 others, 3 statement routes x 1 (another partner's)
    assert checked == 11
    # nothing was bound to another's slot
    assert set(Device.objects.exclude(device_id="").values_list("device_id", flat=True)) == set()
    # the lists hold its own only
    listed = client.get("/api/v1/partner/customers").json()["results"]
    assert [c["external_id"] for c in listed] == ["own"]
    statements = client.get("/api/v1/partner/statements").json()["results"]
    assert [s["partner"] for s in statements] == ["alpnet"]


def test_a_partner_key_reaches_no_staff_route(tenant: Tenant) -> None:
    client = partner_client(tenant, partner(tenant))
    refused = 0
    for route in api_routes():
        if route.route.startswith(PARTNER_PREFIX):
            continue
        path = route.path(**dict.fromkeys(route.params, "x"))
        for method in route.methods:
            response = getattr(client, method)(path, {}, format="json")
            assert response.status_code in (401, 403), (route.route, method, response.status_code)
            refused += 1
    assert refused > 100


def test_a_staff_key_reaches_no_partner_route(tenant: Tenant, api: APIClient) -> None:
    customer_of(tenant, "dupont", partner(tenant))
    for route in partner_routes():
        path = route.path(**dict.fromkeys(route.params, "x"))
        for method in route.methods:
            response = getattr(api, method)(path, {}, format="json")
            assert response.status_code == 403, (route.route, method, response.status_code)
