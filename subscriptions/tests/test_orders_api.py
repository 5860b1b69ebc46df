"""The orders API: staff list and read the shop's orders, and bind a shipped device's id to a slot
(``POST /api/v1/subscriptions/{external_id}/devices/{device}/bind``), as the device cloud may; a
plan is offered in the shop by ``PATCH /api/v1/plans/{code}``."""

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from rest_framework.test import APIClient

from subscriptions.models import Device, Order
from subscriptions.orders import order_place
from subscriptions.tests.shop import ACTOR, ADDRESS, shop_catalog, shop_customer
from tenancy.models import ApiKeyScope, Tenant

pytestmark = pytest.mark.django_db
PARIS = ZoneInfo("Europe/Paris")
AT = datetime(2026, 3, 10, 10, 0, tzinfo=PARIS)


def place(tenant: Tenant, quantity: int = 2) -> Order:
    return order_place(
        customer=shop_customer(tenant),
        plan=shop_catalog(tenant),
        quantity=quantity,
        shipping_address=ADDRESS,
        actor=ACTOR,
        at=AT,
    )


def slots(order: Order) -> list[Device]:
    return list(Device.objects.filter(subscription=order.subscription).order_by("added_at", "pk"))


def test_staff_list_and_read_orders_with_their_slots(tenant: Tenant, api: APIClient) -> None:
    order = place(tenant, quantity=2)
    # when
    listed = api.get("/api/v1/orders?status=placed")
    detail = api.get("/api/v1/orders/%s" % order.pk)
    # then
    assert listed.status_code == 200
    assert [o["number"] for o in listed.json()["results"]] == ["ORD-000001"]
    assert detail.status_code == 200
    body: dict[str, Any] = detail.json()
    assert {k: body[k] for k in ("number", "status", "customer", "subscription", "plan", "quantity")} == {
        "number": "ORD-000001",
        "status": "placed",
        "customer": "dupont",
        "subscription": "ORD-000001",
        "plan": "fleet-shop",
        "quantity": 2,
    }
    assert body["shipping_address"] == ADDRESS
    assert body["placed_at"] == "2026-03-10T09:00:00Z"
    assert [(s["id"], s["device_id"]) for s in body["slots"]] == [(str(d.pk), "") for d in slots(order)]
    assert api.get("/api/v1/orders?status=fulfilled").json()["results"] == []


def test_a_bad_status_filter_or_unknown_order_is_a_problem(api: APIClient) -> None:
    bad = api.get("/api/v1/orders?status=shipped")
    assert bad.status_code == 422
    assert bad["Content-Type"] == "application/problem+json"
    assert bad.json()["errors"][0]["field"] == "status"
    for pk in ("not-a-uuid", "6f1c3a52-2b7e-4c1e-9d7a-1f2e3d4c5b6a"):
        missing = api.get("/api/v1/orders/%s" % pk)
        assert missing.status_code == 404
        assert missing["Content-Type"] == "application/problem+json"


def test_the_device_cloud_binds_a_slot_then_the_order_is_fulfilled(
    tenant: Tenant, make_client: Any, api: APIClient
) -> None:
    order = place(tenant, quantity=1)
    [slot] = slots(order)
    cloud = make_client(tenant, ApiKeyScope.DEVICE_CLOUD)
    # when
    response = cloud.post(
        "/api/v1/subscriptions/ORD-000001/devices/%s/bind" % slot.pk,
        {"device_id": "ELD-0042", "device_type": "eld", "shipped_at": "2026-03-12T16:00:00+01:00"},
        format="json",
    )
    # then
    assert response.status_code == 200, response.content
    assert {k: response.json()[k] for k in ("id", "device_id", "device_type", "shipped_at", "activated_at")} == {
        "id": str(slot.pk),
        "device_id": "ELD-0042",
        "device_type": "eld",
        "shipped_at": "2026-03-12T15:00:00Z",
        "activated_at": None,
    }
    assert api.get("/api/v1/orders/%s" % order.pk).json()["status"] == "fulfilled"
    # a second binding of the same slot is a conflict
    again = cloud.post(
        "/api/v1/subscriptions/ORD-000001/devices/%s/bind" % slot.pk, {"device_id": "ELD-0043"}, format="json"
    )
    assert again.status_code == 409
    assert again.json()["code"] == "slot_already_bound"


def test_binding_refuses_bad_input_with_a_problem(tenant: Tenant, api: APIClient) -> None:
    order = place(tenant, quantity=1)
    [slot] = slots(order)
    path = "/api/v1/subscriptions/ORD-000001/devices/%s/bind" % slot.pk
    missing = api.post(path, {}, format="json")
    assert missing.status_code in (400, 422)
    assert missing["Content-Type"] == "application/problem+json"
    assert missing.json()["errors"][0]["field"] == "device_id"
    assert api.post(path, {"device_id": "x" * 201}, format="json").status_code in (400, 422)
    unknown = api.post("/api/v1/subscriptions/ORD-000001/devices/nope/bind", {"device_id": "A"}, format="json")
    assert unknown.status_code == 404
    assert unknown.json()["code"] == "slot_not_found"
    slot.refresh_from_db()
    assert slot.device_id == ""


def test_a_plan_is_offered_in_the_shop_by_patch(tenant: Tenant, api: APIClient) -> None:
    shop_catalog(tenant, self_service=False)
    assert api.get("/api/v1/plans/fleet-shop").json()["self_service"] is False
    response = api.patch("/api/v1/plans/fleet-shop", {"self_service": True}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["self_service"] is True
    bad = api.patch("/api/v1/plans/fleet-shop", {"name": "Renamed"}, format="json")
    assert bad.status_code in (400, 422)
    assert bad["Content-Type"] == "application/problem+json"
