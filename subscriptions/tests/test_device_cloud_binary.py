"""Device-cloud webhooks sent as CloudEvents in binary mode, as the CloudEvents SDKs send them by
default: the attributes in ``ce-*`` headers, the data as the body, signed per Standard Webhooks."""

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import time_machine
from cloudevents.core.bindings.http import to_binary_event
from cloudevents.core.v1.event import CloudEvent
from django.utils import timezone
from rest_framework.test import APIClient
from standardwebhooks import Webhook

from billing_platform.celery import app as celery_app
from subscriptions.models import Device, DeviceCloudWebhook, Subscription
from tenancy.models import ApiKeyScope, Tenant

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 4, 10, 7, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def eager_celery() -> Iterator[None]:
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


Sender = Callable[..., Any]


@pytest.fixture
def send(
    make_client: Callable[..., APIClient], tenant: Tenant, secret: str, django_capture_on_commit_callbacks: Any
) -> Sender:
    """POSTs a CloudEvent in binary mode (made by the CloudEvents SDK), signed with the secret."""
    client = make_client(tenant, ApiKeyScope.DEVICE_CLOUD)

    def post(attributes: dict[str, Any], data: Any, *, webhook_id: str = "msg_1", drop: str = "") -> Any:
        message = to_binary_event(CloudEvent(attributes=dict(attributes), data=data))
        headers = {k: v for k, v in message.headers.items() if k != drop}
        content_type = headers.pop("content-type", "application/json")
        signature = Webhook(secret).sign(webhook_id, timezone.now(), message.body.decode())
        extra: dict[str, Any] = {"HTTP_" + name.upper().replace("-", "_"): value for name, value in headers.items()}
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(
                "/api/v1/webhooks/device-cloud",
                data=message.body,
                content_type=content_type,
                HTTP_WEBHOOK_ID=webhook_id,
                HTTP_WEBHOOK_TIMESTAMP=str(int(timezone.now().timestamp())),
                HTTP_WEBHOOK_SIGNATURE=signature,
                **extra,
            )

    return post


ACTIVATED = {
    "id": "evt-1",
    "source": "https://devices.example/fleet",
    "type": "device.activated",
    "datacontenttype": "application/json",
}


@time_machine.travel(NOW, tick=False)
def test_a_binary_cloud_event_activates_the_device(smart_fleet: Subscription, send: Sender) -> None:
    # given: the SDK puts type, id, source, specversion and time in ce-* headers, the data in the body
    attributes = {**ACTIVATED, "time": datetime(2026, 3, 15, 8, 0, tzinfo=UTC)}
    # when
    response = send(attributes, {"device_id": "A"})
    # then: stored, applied, the instant taken from ce-time (09:00 in Paris = 08:00 UTC)
    assert response.status_code == 202, response.content
    body = response.json()
    assert (body["type"], body["device_id"], body["occurred_at"]) == ("device.activated", "A", "2026-03-15T08:00:00Z")
    webhook = DeviceCloudWebhook.objects.get(webhook_id="msg_1")
    assert webhook.status == "applied"
    assert webhook.cloud_event_headers["ce-type"] == "device.activated"
    assert webhook.cloud_event_headers["ce-specversion"] == "1.0"
    device = Device.objects.get(subscription=smart_fleet, device_id="A")
    assert device.activated_at == datetime(2026, 3, 15, 8, 0, tzinfo=UTC)


@time_machine.travel(NOW, tick=False)
def test_a_binary_cloud_event_takes_the_device_from_ce_subject(smart_fleet: Subscription, send: Sender) -> None:
    attributes = {**ACTIVATED, "subject": "B", "time": datetime(2026, 3, 20, 13, 0, tzinfo=UTC)}
    response = send(attributes, None)  # no data at all: the subject and time say everything
    assert response.status_code == 202, response.content
    assert Device.objects.get(subscription=smart_fleet, device_id="B").activated_at == datetime(
        2026, 3, 20, 13, 0, tzinfo=UTC
    )


@time_machine.travel(NOW, tick=False)
def test_a_binary_cloud_event_without_ce_source_is_refused_by_name(smart_fleet: Subscription, send: Sender) -> None:
    attributes = {**ACTIVATED, "time": datetime(2026, 3, 15, 8, 0, tzinfo=UTC)}
    response = send(attributes, {"device_id": "A"}, drop="ce-source")
    # kept with its outcome (staff can see and replay it) and answered 422, not a misleading message
    assert response.status_code == 422, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["detail"] == "ce-source: Binary mode requires the ce-source header."
    webhook = DeviceCloudWebhook.objects.get(webhook_id="msg_1")
    assert (webhook.status, webhook.outcome) == ("rejected", "ce-source: Binary mode requires the ce-source header.")


@time_machine.travel(NOW, tick=False)
def test_a_replayed_binary_webhook_reads_its_stored_headers(
    smart_fleet: Subscription, send: Sender, api: APIClient, django_capture_on_commit_callbacks: Any
) -> None:
    # given: device C is not on the subscription yet, so the event is refused at first
    attributes = {**ACTIVATED, "subject": "C", "time": datetime(2026, 4, 10, 6, 0, tzinfo=UTC)}
    Device.objects.filter(subscription=smart_fleet, device_id="C").delete()
    response = send(attributes, None)
    assert response.status_code == 422
    webhook = DeviceCloudWebhook.objects.get(webhook_id="msg_1")
    # when: the device is added, then staff replay the stored webhook
    Device.objects.create(tenant=smart_fleet.tenant, subscription=smart_fleet, device_id="C", added_at=NOW)
    with django_capture_on_commit_callbacks(execute=True):
        replayed = api.post(f"/api/v1/device_cloud_webhooks/{webhook.pk}/replay")
    # then: read again from the stored ce-* headers (the body alone is empty)
    assert replayed.status_code == 202, replayed.content
    webhook.refresh_from_db()
    assert webhook.status == "applied"
    assert Device.objects.get(subscription=smart_fleet, device_id="C").activated_at == datetime(
        2026, 4, 10, 6, 0, tzinfo=UTC
    )


@time_machine.travel(NOW, tick=False)
def test_a_structured_cloud_event_still_works(
    smart_fleet: Subscription, send: Sender, secret: str, tenant: Tenant
) -> None:
    # the structured form (application/cloudevents+json) is read as before, ce-* headers ignored
    payload = json.dumps(
        {
            "specversion": "1.0",
            **{k: v for k, v in ACTIVATED.items() if k != "datacontenttype"},
            "subject": "A",
            "time": "2026-03-15T09:00:00+01:00",
        }
    )
    client = APIClient()
    signature = Webhook(secret).sign("msg_9", timezone.now(), payload)
    response = client.post(
        "/api/v1/webhooks/device-cloud?tenant=" + tenant.slug,
        data=payload,
        content_type="application/cloudevents+json",
        HTTP_WEBHOOK_ID="msg_9",
        HTTP_WEBHOOK_TIMESTAMP=str(int(timezone.now().timestamp())),
        HTTP_WEBHOOK_SIGNATURE=signature,
    )
    assert response.status_code == 202, response.content
    assert response.json()["occurred_at"] == "2026-03-15T08:00:00Z"
