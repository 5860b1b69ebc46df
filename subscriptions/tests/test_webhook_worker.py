"""End to end with a real Celery worker on Redis: the webhook is acknowledged at once and the
worker applies it from the queue."""

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from celery.contrib.testing.worker import start_worker
from django.utils import timezone
from rest_framework.test import APIClient
from standardwebhooks import Webhook

from billing_platform.celery import app as celery_app
from subscriptions.models import Device, DeviceCloudWebhook
from subscriptions.tests.factories import smart_fleet
from tenancy.keys import generate_webhook_secret
from tenancy.models import ApiKeyScope, Tenant


@pytest.fixture
def worker(transactional_db: Any) -> Iterator[None]:
    celery_app.conf.task_always_eager = False
    celery_app.control.purge()  # nothing left over from another run
    with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        yield


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_applies_the_activation(tenant: Tenant, make_client: Any, worker: None) -> None:
    now = timezone.now()
    secret = generate_webhook_secret()
    tenant.device_cloud_secrets = [secret]
    tenant.save()
    smart_fleet(tenant)
    payload = json.dumps({"type": "device.activated", "data": {"device_id": "A", "occurred_at": now.isoformat()}})
    client: APIClient = make_client(tenant, ApiKeyScope.DEVICE_CLOUD)
    response = client.post(
        "/api/v1/webhooks/device-cloud",
        data=payload,
        content_type="application/json",
        HTTP_WEBHOOK_ID="msg_worker",
        HTTP_WEBHOOK_TIMESTAMP=str(int(now.timestamp())),
        HTTP_WEBHOOK_SIGNATURE=Webhook(secret).sign("msg_worker", now, payload),
    )
    assert response.status_code == 202
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if DeviceCloudWebhook.objects.get(webhook_id="msg_worker").status == "applied":
            break
        time.sleep(0.1)
    assert DeviceCloudWebhook.objects.get(webhook_id="msg_worker").status == "applied"
    assert Device.objects.get(device_id="A").activated_at is not None
