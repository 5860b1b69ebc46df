"""The device-cloud webhook and activation, through the API, with the Smart Fleet numbers."""

import json
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.utils import timezone
from rest_framework.test import APIClient
from standardwebhooks import Webhook

from billing_platform.celery import app as celery_app
from billing_platform.periods import monthly_period_starting
from subscriptions.models import Device, DeviceCloudWebhook, Subscription, SubscriptionEvent
from subscriptions.proration import DeviceActivity, activation_prorations
from tenancy.keys import generate_webhook_secret
from tenancy.models import ApiKeyScope, AuditLogEntry, Tenant

pytestmark = pytest.mark.django_db
PARIS = "Europe/Paris"
NOW = datetime(2026, 4, 10, 7, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def eager_celery() -> Iterator[None]:
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False
    celery_app.conf.task_eager_propagates = False


Poster = Callable[..., Any]


@pytest.fixture
def post_webhook(
    make_client: Callable[..., APIClient], tenant: Tenant, secret: str, django_capture_on_commit_callbacks: Any
) -> Poster:
    client = make_client(tenant, ApiKeyScope.DEVICE_CLOUD)
    counter = {"n": 0}

    def post(
        event_type: str,
        device_id: str,
        occurred_at: str,
        *,
        webhook_id: str | None = None,
        sign_with: str | None = None,
        sent_at: datetime | None = None,
        content_type: str = "application/json",
        body: dict[str, Any] | None = None,
        raw: str | None = None,
    ) -> Any:
        counter["n"] += 1
        webhook_id = webhook_id or f"msg_{counter['n']}"
        payload = raw or json.dumps(
            body or {"type": event_type, "data": {"device_id": device_id, "occurred_at": occurred_at}}
        )
        sent_at = sent_at or timezone.now()
        signature = Webhook(sign_with or secret).sign(webhook_id, sent_at, payload)
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(
                "/api/v1/webhooks/device-cloud",
                data=payload,
                content_type=content_type,
                HTTP_WEBHOOK_ID=webhook_id,
                HTTP_WEBHOOK_TIMESTAMP=str(int(sent_at.timestamp())),
                HTTP_WEBHOOK_SIGNATURE=signature,
            )

    return post


def devices(subscription: Subscription) -> dict[str, Device]:
    return {d.device_id: d for d in Device.objects.filter(subscription=subscription)}


@time_machine.travel(NOW, tick=False)
def test_subscription_waits_for_activation_and_sets_the_billing_day(smart_fleet: Subscription) -> None:
    assert smart_fleet.status == "pending_activation"
    assert smart_fleet.starts_at == datetime(2026, 3, 9, 23, 0, tzinfo=UTC)  # 10 March, Paris midnight
    assert smart_fleet.commitment_ends_at == datetime(2027, 3, 9, 23, 0, tzinfo=UTC)
    assert smart_fleet.customer.billing_day == 10  # unset before: the day the subscription starts
    assert [e.type for e in SubscriptionEvent.objects.filter(subscription=smart_fleet)] == ["subscription.signed"]


@time_machine.travel(NOW, tick=False)
def test_smart_fleet_activations_give_the_spec_prorations(smart_fleet: Subscription, post_webhook: Poster) -> None:
    # given: activations in Paris time, as billing.md says
    for device_id, at in (
        ("A", "2026-03-15T09:00:00+01:00"),
        ("B", "2026-03-20T14:00:00+01:00"),
        ("C", "2026-04-10T08:00:00+02:00"),
    ):
        response = post_webhook("device.activated", device_id, at)
        assert response.status_code == 202, response.content
        assert response.json()["status"] == "received"
    # then: applied by the task, timeline and status updated
    assert {w.status for w in DeviceCloudWebhook.objects.all()} == {"applied"}
    smart_fleet.refresh_from_db()
    assert smart_fleet.status == "active"
    state = devices(smart_fleet)
    assert state["A"].activated_at == datetime(2026, 3, 15, 8, 0, tzinfo=UTC)
    assert [e.type for e in SubscriptionEvent.objects.filter(subscription=smart_fleet)] == [
        "subscription.signed",
        "device.activated",
        "subscription.status_changed",
        "device.activated",
        "device.activated",
    ]
    # and the proration module, fed with these activations, gives the spec's lines
    march = monthly_period_starting(date(2026, 3, 1), billing_day=1, tz=PARIS)
    april = monthly_period_starting(date(2026, 4, 1), billing_day=1, tz=PARIS)
    activity = [DeviceActivity(d.device_id, d.activated_at) for d in state.values() if d.activated_at]
    march_lines = activation_prorations(
        devices=activity, period=march, unit_amount=Decimal("25.00"), currency="EUR", tz=PARIS
    )
    # A: 25.00 x 17/31 = 13.709... -> 13.71 ; B: 25.00 x 12/31 = 9.677... -> 9.68
    assert [(line.devices, line.days, line.days_in_period, str(line.amount)) for line in march_lines] == [
        (("A",), 17, 31, "13.71"),
        (("B",), 12, 31, "9.68"),
    ]
    assert march_lines[0].period_start == datetime(2026, 3, 14, 23, 0, tzinfo=UTC)
    assert march_lines[0].period_end == march.end
    [c_line] = activation_prorations(
        devices=activity, period=april, unit_amount=Decimal("25.00"), currency="EUR", tz=PARIS
    )
    # C: 25.00 x 21/30 = 17.50
    assert (c_line.devices, c_line.days, c_line.days_in_period, str(c_line.amount)) == (("C",), 21, 30, "17.50")


@time_machine.travel(NOW, tick=False)
def test_a_replayed_webhook_changes_nothing(smart_fleet: Subscription, post_webhook: Poster) -> None:
    first = post_webhook("device.activated", "A", "2026-03-15T09:00:00+01:00", webhook_id="msg_same")
    events_before = SubscriptionEvent.objects.count()
    replay = post_webhook("device.activated", "A", "2026-03-15T09:00:00+01:00", webhook_id="msg_same")
    assert (first.status_code, replay.status_code) == (202, 200)
    assert replay.json()["id"] == first.json()["id"]
    assert replay.json()["status"] == "applied"
    # the same activation under another id is recognised as already known
    again = post_webhook("device.activated", "A", "2026-03-15T09:00:00+01:00", webhook_id="msg_other")
    assert again.status_code == 202
    assert DeviceCloudWebhook.objects.get(webhook_id="msg_other").status == "ignored"
    assert SubscriptionEvent.objects.count() == events_before
    assert DeviceCloudWebhook.objects.count() == 2


@time_machine.travel(NOW, tick=False)
def test_bad_signature_and_stale_timestamp_are_401_and_store_nothing(
    smart_fleet: Subscription, post_webhook: Poster
) -> None:
    bad = post_webhook("device.activated", "A", "2026-03-15T09:00:00+01:00", sign_with=generate_webhook_secret())
    stale = post_webhook("device.activated", "A", "2026-03-15T09:00:00+01:00", sent_at=NOW - timedelta(minutes=6))
    future = post_webhook("device.activated", "A", "2026-03-15T09:00:00+01:00", sent_at=NOW + timedelta(minutes=6))
    for response in (bad, stale, future):
        assert response.status_code == 401
        assert response.json()["code"] == "invalid_signature"
    assert not DeviceCloudWebhook.objects.exists()
    assert devices(smart_fleet)["A"].activated_at is None
    fresh = post_webhook("device.activated", "A", "2026-03-15T09:00:00+01:00", sent_at=NOW - timedelta(minutes=4))
    assert fresh.status_code == 202


@time_machine.travel(NOW, tick=False)
def test_secrets_can_be_rotated(tenant: Tenant, smart_fleet: Subscription, post_webhook: Poster, secret: str) -> None:
    new_secret = generate_webhook_secret()
    tenant.device_cloud_secrets = [secret, new_secret]
    tenant.save()
    assert post_webhook("device.shipped", "A", "2026-03-12T09:00:00+01:00", sign_with=secret).status_code == 202
    assert post_webhook("device.shipped", "B", "2026-03-12T09:00:00+01:00", sign_with=new_secret).status_code == 202


@time_machine.travel(NOW, tick=False)
def test_unknown_device_is_stored_with_a_clear_422_and_can_be_replayed(
    smart_fleet: Subscription, post_webhook: Poster, api: APIClient, django_capture_on_commit_callbacks: Any
) -> None:
    response = post_webhook("device.activated", "Z", "2026-03-15T09:00:00+01:00", webhook_id="msg_z")
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "unknown_device"
    assert body["detail"] == "Unknown device Z: no live subscription holds it."
    stored = DeviceCloudWebhook.objects.get(webhook_id="msg_z")
    assert (stored.status, stored.device_id) == ("rejected", "Z")
    # staff add the device, then replay the stored webhook
    Device.objects.create(tenant=smart_fleet.tenant, subscription=smart_fleet, device_id="Z", added_at=NOW)
    with django_capture_on_commit_callbacks(execute=True):
        replay = api.post(f"/api/v1/device_cloud_webhooks/{stored.pk}/replay")
    assert replay.status_code == 202
    stored.refresh_from_db()
    assert stored.status == "applied"
    assert devices(smart_fleet)["Z"].activated_at == datetime(2026, 3, 15, 8, 0, tzinfo=UTC)


@time_machine.travel(NOW, tick=False)
def test_a_shipped_after_activated_does_not_undo_the_activation(
    smart_fleet: Subscription, post_webhook: Poster
) -> None:
    post_webhook("device.activated", "A", "2026-03-15T09:00:00+01:00")
    post_webhook("device.shipped", "A", "2026-03-12T09:00:00+01:00")
    a = devices(smart_fleet)["A"]
    assert a.activated_at == datetime(2026, 3, 15, 8, 0, tzinfo=UTC)
    assert a.shipped_at == datetime(2026, 3, 12, 8, 0, tzinfo=UTC)
    # a later duplicate activation does not move the activation forward
    post_webhook("device.activated", "A", "2026-03-16T09:00:00+01:00")
    assert devices(smart_fleet)["A"].activated_at == datetime(2026, 3, 15, 8, 0, tzinfo=UTC)


@time_machine.travel(NOW, tick=False)
def test_deactivation_then_late_activation_is_refused_and_kept(smart_fleet: Subscription, post_webhook: Poster) -> None:
    post_webhook("device.activated", "A", "2026-03-15T09:00:00+01:00")
    post_webhook("device.deactivated", "A", "2026-03-25T09:00:00+01:00")
    post_webhook("device.activated", "A", "2026-03-28T09:00:00+01:00", webhook_id="msg_late")
    late = DeviceCloudWebhook.objects.get(webhook_id="msg_late")
    assert late.status == "rejected"
    assert late.outcome.startswith("Device A was deactivated on 2026-03-25T08:00:00+00:00")
    assert devices(smart_fleet)["A"].deactivated_at == datetime(2026, 3, 25, 8, 0, tzinfo=UTC)


@time_machine.travel(NOW, tick=False)
def test_cloudevents_structured_mode_is_accepted(smart_fleet: Subscription, post_webhook: Poster) -> None:
    event = {
        "specversion": "1.0",
        "id": "ce-1",
        "source": "//devices.example",
        "type": "device.activated",
        "subject": "B",
        "time": "2026-03-20T14:00:00+01:00",
        "datacontenttype": "application/json",
        "data": {},
    }
    response = post_webhook("", "", "", body=event, content_type="application/cloudevents+json")
    assert response.status_code == 202, response.content
    assert devices(smart_fleet)["B"].activated_at == datetime(2026, 3, 20, 13, 0, tzinfo=UTC)


@time_machine.travel(NOW, tick=False)
@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (
            {"type": "device.exploded", "data": {"device_id": "A", "occurred_at": "2026-03-15T09:00:00+01:00"}},
            "Unknown event type 'device.exploded'",
        ),
        (
            {"type": "device.activated", "data": {"occurred_at": "2026-03-15T09:00:00+01:00"}},
            "data.device_id is required.",
        ),
        (
            {"type": "device.activated", "data": {"device_id": "A", "occurred_at": "2026-03-15T09:00:00"}},
            "data.occurred_at must be an ISO 8601 instant with its offset.",
        ),
    ],
)
def test_malformed_events_are_stored_and_answered_422(
    smart_fleet: Subscription, post_webhook: Poster, body: dict[str, Any], detail: str
) -> None:
    response = post_webhook("", "", "", body=body, webhook_id="msg_bad")
    assert response.status_code == 422
    assert response.json()["detail"].startswith(detail)
    assert DeviceCloudWebhook.objects.get(webhook_id="msg_bad").status == "rejected"


@time_machine.travel(NOW, tick=False)
def test_tenant_by_slug_without_a_key(
    tenant: Tenant, smart_fleet: Subscription, secret: str, django_capture_on_commit_callbacks: Any
) -> None:
    payload = json.dumps(
        {"type": "device.activated", "data": {"device_id": "A", "occurred_at": "2026-03-15T09:00:00Z"}}
    )
    headers: dict[str, Any] = {
        "HTTP_WEBHOOK_ID": "msg_slug",
        "HTTP_WEBHOOK_TIMESTAMP": str(int(NOW.timestamp())),
        "HTTP_WEBHOOK_SIGNATURE": Webhook(secret).sign("msg_slug", NOW, payload),
    }
    with django_capture_on_commit_callbacks(execute=True):
        ok = APIClient().post(
            f"/api/v1/webhooks/device-cloud?tenant={tenant.slug}",
            data=payload,
            content_type="application/json",
            **headers,
        )
    assert ok.status_code == 202
    unknown = APIClient().post(
        "/api/v1/webhooks/device-cloud?tenant=nope", data=payload, content_type="application/json", **headers
    )
    assert unknown.status_code == 401


def test_a_failing_apply_is_kept_as_failed_and_retried(
    smart_fleet: Subscription, post_webhook: Poster, monkeypatch: Any
) -> None:
    from subscriptions import webhooks

    calls = {"n": 0}
    real = webhooks.device_event_apply

    def flaky(**kwargs: Any) -> bool:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("database went away")
        return real(**kwargs)

    monkeypatch.setattr(webhooks, "device_event_apply", flaky)
    celery_app.conf.task_eager_propagates = False
    with time_machine.travel(NOW, tick=False):
        response = post_webhook("device.activated", "A", "2026-03-15T09:00:00+01:00")
    assert response.status_code == 202  # acknowledged whatever happens next
    webhook = DeviceCloudWebhook.objects.get()
    # eager Celery runs the retry at once: the second attempt applies it
    assert (webhook.status, webhook.attempts, calls["n"]) == ("applied", 2, 2)
    # in between it was "failed" with an outcome that says nothing of the error (that is logged)
    webhooks.webhook_mark_failed(webhook_pk=str(webhook.pk))
    webhook.refresh_from_db()
    assert webhook.status == "applied"  # an applied webhook stays applied
    DeviceCloudWebhook.objects.filter(pk=webhook.pk).update(status="received")
    webhooks.webhook_mark_failed(webhook_pk=str(webhook.pk))
    webhook.refresh_from_db()
    assert (webhook.status, webhook.outcome) == ("failed", "Applying failed on our side; it is retried automatically.")
    assert "database went away" not in webhook.outcome
    assert devices(smart_fleet)["A"].activated_at is not None


@time_machine.travel(NOW, tick=False)
def test_a_body_nested_too_deep_is_kept_as_rejected_with_a_clear_422(
    smart_fleet: Subscription, post_webhook: Poster
) -> None:
    # given: a signed body nested 1,000 levels deep, which failed the JSON decoder (500)
    deep = "[" * 1000 + "]" * 1000
    raw = '{"type": "device.activated", "data": {"device_id": "A", "occurred_at": "2026-03-15T09:00:00Z", "x": %s}}'
    # when
    response = post_webhook("", "", "", raw=raw % deep, webhook_id="msg_deep")
    # then: refused as every body that cannot be read, and kept for staff to see
    assert response.status_code == 422, response.content
    assert (response.json()["code"], response.json()["detail"]) == (
        "invalid_event",
        "JSON nested deeper than 32 levels is not accepted.",
    )
    assert DeviceCloudWebhook.objects.get(webhook_id="msg_deep").status == "rejected"
    assert devices(smart_fleet)["A"].activated_at is None


@time_machine.travel(NOW, tick=False)
def test_an_instant_outside_1900_to_9999_is_refused_and_the_list_still_answers(
    smart_fleet: Subscription, post_webhook: Poster, api: APIClient
) -> None:
    # 1 January of year 1 at +14:00 is year 0 in UTC: stored, it made the list of webhooks fail
    response = post_webhook("device.activated", "A", "0001-01-01T00:00:00+14:00", webhook_id="msg_year_0")
    assert response.status_code == 422, response.content
    assert response.json()["detail"] == "data.occurred_at must fall between the years 1900 and 9999."
    stored = DeviceCloudWebhook.objects.get(webhook_id="msg_year_0")
    assert (stored.status, stored.occurred_at) == ("rejected", None)
    assert api.get("/api/v1/device_cloud_webhooks").status_code == 200


@time_machine.travel(NOW, tick=False)
def test_a_webhook_id_of_255_characters_is_kept_whole_and_can_be_replayed(
    smart_fleet: Subscription, post_webhook: Poster, api: APIClient, tenant: Tenant
) -> None:
    # given: a refused webhook whose id is longer than the 200 characters the audit log held
    webhook_id = "evt_" + "7" * 251
    assert post_webhook("device.activated", "Z", "2026-03-15T09:00:00Z", webhook_id=webhook_id).status_code == 422
    stored = DeviceCloudWebhook.objects.get(webhook_id=webhook_id)
    # when: staff replay it (this answered 500: the audit entry could not hold the id)
    replay = api.post(f"/api/v1/device_cloud_webhooks/{stored.pk}/replay")
    # then
    assert replay.status_code == 202, replay.content
    entry = AuditLogEntry.objects.get(tenant=tenant, action="webhook.replayed")
    assert entry.object_id == webhook_id


@time_machine.travel(NOW, tick=False)
def test_a_webhook_id_longer_than_255_characters_is_refused_not_cut(
    smart_fleet: Subscription, post_webhook: Poster
) -> None:
    # two ids that differ only after 255 characters were cut to one: the second event was lost as a replay
    webhook_id = "evt_" + "7" * 251 + "-first"
    response = post_webhook("device.activated", "A", "2026-03-15T09:00:00Z", webhook_id=webhook_id)
    assert response.status_code == 422, response.content
    assert response.json()["errors"] == [
        {"field": "webhook-id", "code": "too_long", "message": "webhook-id is at most 255 characters."}
    ]
    assert not DeviceCloudWebhook.objects.exists()
    assert devices(smart_fleet)["A"].activated_at is None


@time_machine.travel(NOW, tick=False)
def test_an_unknown_tenant_is_answered_as_a_known_one_with_a_bad_signature(
    tenant: Tenant, smart_fleet: Subscription, secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: a webhook signed with a secret that is not the tenant's
    payload = json.dumps(
        {"type": "device.activated", "data": {"device_id": "A", "occurred_at": "2026-03-15T09:00:00Z"}}
    )
    headers: dict[str, Any] = {
        "HTTP_WEBHOOK_ID": "msg_probe",
        "HTTP_WEBHOOK_TIMESTAMP": str(int(NOW.timestamp())),
        "HTTP_WEBHOOK_SIGNATURE": Webhook(generate_webhook_secret()).sign("msg_probe", NOW, payload),
    }
    verified: list[str] = []
    real_verify = Webhook.verify

    def counting_verify(self: Webhook, *args: Any, **kwargs: Any) -> Any:
        verified.append("checked")
        return real_verify(self, *args, **kwargs)

    monkeypatch.setattr(Webhook, "verify", counting_verify)

    def post(slug: str, **extra: Any) -> Any:
        url = "/api/v1/webhooks/device-cloud?tenant=%s" % slug
        return APIClient().post(url, data=payload, content_type="application/json", **{**headers, **extra})

    # when: sent to the real tenant, to a slug no tenant has, and without its signature headers
    known = post(tenant.slug)
    checks_for_known = len(verified)
    unknown = post("no-such-tenant")
    checks_for_unknown = len(verified) - checks_for_known
    unsigned = post(tenant.slug, HTTP_WEBHOOK_SIGNATURE="", HTTP_WEBHOOK_ID="")

    # then: one answer, word for word, with nothing of Python or of the tenant in it
    expected = {
        "type": "https://tripod.dev/problems/invalid_signature",
        "title": "Unauthenticated",
        "status": 401,
        "detail": "Webhook signature rejected.",
        "code": "invalid_signature",
    }
    for response in (known, unknown, unsigned):
        assert response.status_code == 401
        assert response["Content-Type"] == "application/problem+json"
        assert response.json() == expected
    # the unknown slug took the same work as the known tenant's one secret: a signature check
    assert (checks_for_known, checks_for_unknown) == (1, 1)
    assert not DeviceCloudWebhook.objects.exists()


@time_machine.travel(NOW, tick=False)
def test_a_tenant_without_secrets_is_answered_as_any_bad_signature(tenant: Tenant, smart_fleet: Subscription) -> None:
    tenant.device_cloud_secrets = []
    tenant.save()
    payload = "{}"
    response = APIClient().post(
        "/api/v1/webhooks/device-cloud?tenant=%s" % tenant.slug,
        data=payload,
        content_type="application/json",
        HTTP_WEBHOOK_ID="msg_1",
        HTTP_WEBHOOK_TIMESTAMP=str(int(NOW.timestamp())),
        HTTP_WEBHOOK_SIGNATURE=Webhook(generate_webhook_secret()).sign("msg_1", NOW, payload),
    )
    assert (response.status_code, response.json()["detail"]) == (401, "Webhook signature rejected.")
