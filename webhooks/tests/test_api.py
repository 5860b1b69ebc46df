"""The webhook endpoints API: create (the secret shown once), list, read, change, disable, rotate,
delete; an endpoint's deliveries with their tries; replay."""

from datetime import UTC, datetime
from typing import Any

import pytest
import time_machine
from rest_framework.test import APIClient

from tenancy.models import ApiKeyScope, AuditLogEntry, Tenant
from webhooks.delivery import deliveries_send
from webhooks.models import WebhookDelivery, WebhookEndpoint
from webhooks.outbox import event_emit
from webhooks.tests.factories import T0
from webhooks.tests.receiver import Receiver

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 4, 1, 8, 0, tzinfo=UTC)
URL = "https://erp.acme.test/tripod"


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    return body


@time_machine.travel(NOW, tick=False)
def test_create_shows_the_secret_once(api: APIClient, tenant: Tenant) -> None:
    # when
    response = api.post(
        "/api/v1/webhook_endpoints",
        {"url": URL, "events": ["invoice.finalized", "credit_note.created"], "description": "ERP"},
        format="json",
    )
    # then
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["secret"].startswith("whsec_")
    assert {k: v for k, v in body.items() if k not in ("id", "secret")} == {
        "url": URL,
        "events": ["invoice.finalized", "credit_note.created"],
        "event_types": ["invoice.finalized", "credit_note.created"],
        "description": "ERP",
        "enabled": True,
        "disabled_at": None,
        "disabled_reason": "",
        "failing_since": None,
        "last_success_at": None,
        "previous_secret_expires_at": None,
        "created_at": "2026-04-01T08:00:00Z",
        "updated_at": "2026-04-01T08:00:00Z",
    }
    # never again: reading the endpoint does not show it, nor does the audit log
    again = api.get("/api/v1/webhook_endpoints/%s" % body["id"]).json()
    assert "secret" not in again
    assert body["secret"] not in str(list(AuditLogEntry.objects.values("before", "after")))


def test_a_replay_with_the_same_idempotency_key_returns_the_endpoint_without_its_secret(api: APIClient) -> None:
    payload = {"url": URL, "event_types": ["*"]}
    first = api.post("/api/v1/webhook_endpoints", payload, format="json", HTTP_IDEMPOTENCY_KEY="ep-1")
    replay = api.post("/api/v1/webhook_endpoints", payload, format="json", HTTP_IDEMPOTENCY_KEY="ep-1")
    assert (first.status_code, replay.status_code) == (201, 201)
    assert replay["Idempotent-Replayed"] == "true"
    assert replay.json()["id"] == first.json()["id"]
    assert first.json()["secret"].startswith("whsec_")
    assert replay.json()["secret"] is None
    assert WebhookEndpoint.objects.count() == 1
    assert replay.json()["events"] == ["*"]


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"url": URL, "events": ["invoice.finalized", "invoice.exploded"]}, "events[1]", "unknown_event_type"),
        ({"url": URL, "events": ["*", "invoice.finalized"]}, "events", "all_and_some"),
        ({"url": URL, "events": []}, "events", "required"),
        ({"url": URL}, "events", "required"),
        ({"url": URL, "events": ["*"], "event_types": ["invoice.voided"]}, "event_types", "conflict"),
        ({"url": "not a url", "events": ["*"]}, "url", "invalid_url"),
        ({"url": "https://erp.acme.test/#frag", "events": ["*"]}, "url", "invalid_url"),
        ({"url": URL, "events": ["*"], "secret": "whsec_c2hvcnQ="}, "secret", "invalid_secret"),
        ({"url": URL, "events": ["*"], "colour": "red"}, "colour", "unknown_field"),
    ],
)
def test_bad_input_is_a_422_problem(api: APIClient, body: dict[str, Any], field: str, code: str) -> None:
    errors = problem(api.post("/api/v1/webhook_endpoints", body, format="json"), 422)["errors"]
    assert (field, code) in [(e["field"], e["code"]) for e in errors]
    assert WebhookEndpoint.objects.count() == 0


def test_plain_http_is_refused_in_production(api: APIClient, settings: Any) -> None:
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = False
    body = problem(
        api.post("/api/v1/webhook_endpoints", {"url": "http://erp.acme.test/", "events": ["*"]}, format="json"), 422
    )
    assert body["errors"] == [
        {"field": "url", "code": "https_required", "message": "The URL must start with https://."}
    ]


def test_an_endpoint_with_its_own_secret(api: APIClient) -> None:
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # 24 bytes, base64
    response = api.post("/api/v1/webhook_endpoints", {"url": URL, "events": ["*"], "secret": secret}, format="json")
    assert response.json()["secret"] == secret
    assert WebhookEndpoint.objects.get().signing_secret == secret


def test_list_change_disable_enable_and_delete(api: APIClient, tenant: Tenant) -> None:
    created = api.post("/api/v1/webhook_endpoints", {"url": URL, "events": ["*"]}, format="json").json()
    path = "/api/v1/webhook_endpoints/%s" % created["id"]
    # list
    listed = api.get("/api/v1/webhook_endpoints").json()
    assert ([e["id"] for e in listed["results"]], listed["next"]) == ([created["id"]], None)
    # change its events and description
    changed = api.patch(path, {"events": ["subscription.cancelled"], "description": "Device cloud"}, format="json")
    assert changed.status_code == 200, changed.content
    assert (changed.json()["events"], changed.json()["description"]) == (["subscription.cancelled"], "Device cloud")
    # disable, then enable
    with time_machine.travel(NOW, tick=False):
        disabled = api.patch(path, {"enabled": False}, format="json").json()
    assert (disabled["enabled"], disabled["disabled_at"]) == (False, "2026-04-01T08:00:00Z")
    assert disabled["disabled_reason"].startswith("Disabled by test full")
    assert api.patch(path, {"enabled": True}, format="json").json()["enabled"] is True
    # a bad change
    errors = problem(api.patch(path, {"events": ["nope"]}, format="json"), 422)["errors"]
    assert errors[0]["code"] == "unknown_event_type"
    # delete
    assert api.delete(path).status_code == 204
    assert problem(api.get(path), 404)["code"] == "webhook_endpoint_not_found"
    actions = list(
        AuditLogEntry.objects.filter(object_type="webhook_endpoint").order_by("id").values_list("action", flat=True)
    )
    assert actions == [
        "webhook_endpoint.created",
        "webhook_endpoint.updated",
        "webhook_endpoint.updated",
        "webhook_endpoint.updated",
        "webhook_endpoint.deleted",
    ]


def test_rotate_secret(api: APIClient) -> None:
    created = api.post("/api/v1/webhook_endpoints", {"url": URL, "events": ["*"]}, format="json").json()
    with time_machine.travel(NOW, tick=False):
        rotated = api.post("/api/v1/webhook_endpoints/%s/rotate_secret" % created["id"])
    assert rotated.status_code == 200, rotated.content
    body = rotated.json()
    assert body["secret"].startswith("whsec_")
    assert body["secret"] != created["secret"]
    assert body["previous_secret_expires_at"] == "2026-04-02T08:00:00Z"  # 24 hours later


def test_deliveries_with_their_tries_and_replay(api: APIClient, tenant: Tenant, receiver: Receiver) -> None:
    # given: a delivery that failed once (500), then was delivered
    created = api.post("/api/v1/webhook_endpoints", {"url": receiver.url, "events": ["*"]}, format="json").json()
    event = event_emit(tenant=tenant, type="invoice.voided", data={"number": "INV-2026-000007"}, at=T0)
    receiver.answers = [500]
    deliveries_send(at=T0)
    deliveries_send(at=datetime(2026, 4, 1, 8, 0, 5, tzinfo=UTC))
    # when
    response = api.get("/api/v1/webhook_endpoints/%s/deliveries" % created["id"])
    # then
    assert response.status_code == 200, response.content
    [delivery] = response.json()["results"]
    assert delivery["event"] == {
        "id": "msg_" + event.id.hex,
        "type": "invoice.voided",
        "timestamp": "2026-04-01T08:00:00Z",
        "data": {"number": "INV-2026-000007"},
    }
    assert (delivery["status"], delivery["attempts"], delivery["last_status_code"]) == ("delivered", 2, 200)
    assert [(t["attempted_at"], t["status_code"], t["error"]) for t in delivery["tries"]] == [
        ("2026-04-01T08:00:00Z", 500, "HTTP 500"),
        ("2026-04-01T08:00:05Z", 200, ""),
    ]
    assert delivery["tries"][0]["response_excerpt"] == "receiver says no: 500"
    assert api.get("/api/v1/webhook_endpoints/%s/deliveries?status=failed" % created["id"]).json()["results"] == []
    assert problem(api.get("/api/v1/webhook_endpoints/%s/deliveries?status=lost" % created["id"]), 422)

    # when: replayed
    with time_machine.travel(NOW, tick=False):
        replayed = api.post("/api/v1/webhook_deliveries/%s/replay" % delivery["id"])
    # then: pending again, due now
    assert replayed.status_code == 202, replayed.content
    assert (replayed.json()["status"], replayed.json()["next_attempt_at"]) == ("pending", "2026-04-01T08:00:00Z")

    # a disabled endpoint's deliveries are not replayed
    api.patch("/api/v1/webhook_endpoints/%s" % created["id"], {"enabled": False}, format="json")
    body = problem(api.post("/api/v1/webhook_deliveries/%s/replay" % delivery["id"]), 409)
    assert body["code"] == "webhook_endpoint_disabled"
    assert WebhookDelivery.objects.get().status == "failed"  # failed by the disabling


def test_a_read_key_reads_and_cannot_write(make_client: Any, tenant: Tenant) -> None:
    reader = make_client(tenant, ApiKeyScope.READ)
    assert reader.get("/api/v1/webhook_endpoints").status_code == 200
    assert problem(reader.post("/api/v1/webhook_endpoints", {"url": URL, "events": ["*"]}, format="json"), 403)
