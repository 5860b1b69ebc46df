"""POST /api/v1/events with one CloudEvent in binary mode, as the CloudEvents SDKs send it by
default: ``ce-id`` the transaction id, ``ce-type`` the meter, ``ce-subject`` the device, ``ce-time``
the timestamp, and the event's properties as the JSON body. It used to be refused with a misleading
422 ('The body is {"events": [...]}')."""

from datetime import UTC, datetime
from typing import Any

import pytest
import time_machine
from cloudevents.core.bindings.http import to_binary_event
from cloudevents.core.v1.event import CloudEvent
from django.db import connection
from rest_framework.test import APIClient

from subscriptions.models import Subscription
from tenancy.models import ApiKeyScope, Tenant

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 4, 20, 12, 0, tzinfo=UTC)


@pytest.fixture
def client(make_client: Any, tenant: Tenant) -> APIClient:
    return make_client(tenant, ApiKeyScope.INGEST)


def post_binary(client: APIClient, attributes: dict[str, Any], data: Any, *, drop: str = "", **headers: str) -> Any:
    message = to_binary_event(CloudEvent(attributes=dict(attributes), data=data))
    sent = {k: v for k, v in message.headers.items() if k != drop} | headers
    content_type = sent.pop("content-type", "application/json")
    extra: dict[str, Any] = {"HTTP_" + name.upper().replace("-", "_"): value for name, value in sent.items()}
    with time_machine.travel(NOW, tick=False):
        return client.post("/api/v1/events", data=message.body, content_type=content_type, **extra)


DATA_MB = {
    "id": "bin-1",
    "source": "//fleet",
    "type": "data_mb",
    "subject": "B",
    "time": datetime(2026, 4, 16, 10, 0, tzinfo=UTC),
    "datacontenttype": "application/json",
}


def test_a_binary_cloud_event_is_ingested(fleet: Subscription, client: APIClient) -> None:
    # when: the SDK's binary message, 250 MB for device B
    response = post_binary(client, DATA_MB, {"mb": 250})
    # then
    assert response.status_code == 202, response.content
    assert response.json() == {
        "results": [{"transaction_id": "bin-1", "status": "accepted"}],
        "accepted": 1,
        "duplicates": 0,
        "rejected": 0,
    }
    with connection.cursor() as cursor:
        cursor.execute("SELECT transaction_id, device_id, value, timestamp FROM usage_event")
        assert cursor.fetchall() == [("bin-1", "B", 250, datetime(2026, 4, 16, 10, 0, tzinfo=UTC))]
    # and a replay of the same id is a duplicate, as in the other forms
    again = post_binary(client, DATA_MB, {"mb": 250})
    assert again.json()["results"] == [{"transaction_id": "bin-1", "status": "duplicate"}]


def test_a_binary_event_names_its_subscription_by_extension(fleet: Subscription, client: APIClient) -> None:
    attributes = {k: v for k, v in DATA_MB.items() if k != "subject"} | {"externalsubscriptionid": fleet.external_id}
    response = post_binary(client, attributes, None)  # no body: properties are empty, api_calls counts it
    assert response.json()["results"] == [
        {
            "transaction_id": "bin-1",
            "status": "rejected",
            "reason": "missing_field",
            "detail": "properties.mb is required by meter data_mb.",
        }
    ]
    counted = post_binary(client, attributes | {"id": "bin-2", "type": "api_calls"}, None)
    assert counted.json()["accepted"] == 1


@pytest.mark.parametrize(
    ("drop", "headers", "errors"),
    [
        ("ce-id", {}, [("ce-id", "required", "Binary mode requires the ce-id header.")]),
        ("ce-source", {}, [("ce-source", "required", "Binary mode requires the ce-source header.")]),
        ("", {"ce-specversion": "0.9"}, [("ce-specversion", "invalid", "Attribute 'specversion' must be '1.0'")]),
        (
            "",
            {"ce-time": "2026-04-16"},
            [("ce-time", "invalid", "ce-time is an RFC 3339 instant with its offset, e.g. 2026-03-16T10:00:00Z.")],
        ),
    ],
)
def test_a_binary_event_with_a_header_at_fault_is_a_422_naming_it(
    fleet: Subscription, client: APIClient, drop: str, headers: dict[str, str], errors: list[tuple[str, str, str]]
) -> None:
    response = post_binary(client, DATA_MB, {"mb": 250}, drop=drop, **headers)
    assert response.status_code == 422, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert [(e["field"], e["code"], e["message"]) for e in response.json()["errors"]] == errors


def test_a_stray_ce_header_on_a_batch_is_not_ignored(fleet: Subscription, client: APIClient) -> None:
    # any ce-* header means binary mode (as the SDK reads a request): a batch with one is refused
    with time_machine.travel(NOW, tick=False):
        response = client.post("/api/v1/events", {"events": []}, format="json", HTTP_CE_TIME="2026-04-16T10:00:00Z")
    assert response.status_code == 422
    assert {e["field"] for e in response.json()["errors"]} == {"ce-id", "ce-source", "ce-type", "ce-specversion"}


def test_a_binary_event_whose_data_is_not_json_is_refused(fleet: Subscription, client: APIClient) -> None:
    response = post_binary(client, DATA_MB | {"datacontenttype": "text/plain"}, "250 MB")
    assert response.status_code == 415
    assert response.json()["detail"] == "In binary mode the data of a usage event is JSON (application/json)."


def test_unknown_fields_of_a_batch_and_of_an_event_are_refused(fleet: Subscription, client: APIClient) -> None:
    event = {"transaction_id": "t1", "code": "data_mb", "device": "B", "timestamp": "2026-04-16T10:00:00Z"}
    with time_machine.travel(NOW, tick=False):
        batch = client.post("/api/v1/events", {"events": [event], "source": "x"}, format="json")
        one = client.post("/api/v1/events", {"events": [event]}, format="json")
    assert batch.status_code == 422
    assert batch.json()["errors"] == [{"field": "source", "code": "unknown_field", "message": "Unknown field."}]
    # a misspelt "device" would have left the event without its device: rejected, named
    assert one.json()["results"] == [
        {"transaction_id": "t1", "status": "rejected", "reason": "unknown_field", "detail": "Unknown field: device."}
    ]
