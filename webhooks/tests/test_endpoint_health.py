"""An endpoint failing for 5 days is disabled and its tenant e-mailed; secret rotation keeps the
old secret valid for 24 hours."""

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.core import mail
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from tenancy.models import Role, Tenant
from webhooks.delivery import deliveries_send
from webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from webhooks.outbox import event_emit
from webhooks.services import webhook_endpoint_enable, webhook_endpoint_rotate_secret
from webhooks.tests.factories import ACTOR, T0, endpoint
from webhooks.tests.receiver import Receiver

pytestmark = pytest.mark.django_db


def emit_and_send(tenant: Tenant, at: Any, number: str) -> WebhookDelivery:
    event = event_emit(tenant=tenant, type="invoice.finalized", data={"number": number}, at=at)
    deliveries_send(at=at)
    return WebhookDelivery.objects.get(event=event)


def test_an_endpoint_failing_for_5_days_is_disabled_and_the_tenant_emailed(
    tenant: Tenant, receiver: Receiver, make_staff: Any, django_capture_on_commit_callbacks: Any
) -> None:
    # given: the tenant's billing contact and owner, a finance admin (not told), and a dead receiver
    tenant.billing_email = "billing@acme.test"
    tenant.save()
    make_staff(tenant, Role.OWNER, email="owner@acme.test")
    make_staff(tenant, Role.FINANCE_ADMIN, email="admin@acme.test")
    hook, _ = endpoint(tenant, receiver.url)
    receiver.default = 500
    # when: tries fail from 1 April 08:00 on
    first = emit_and_send(tenant, T0, "INV-1")
    hook.refresh_from_db()
    assert hook.failing_since == T0
    # 4 days 23 hours later: still failing, still enabled
    second = emit_and_send(tenant, T0 + timedelta(days=4, hours=23), "INV-2")
    hook.refresh_from_db()
    assert (hook.enabled, hook.failing_since) == (True, T0)
    # 5 days later, another failed try: disabled, and the e-mail goes once that commits
    with django_capture_on_commit_callbacks(execute=True):
        third = emit_and_send(tenant, T0 + timedelta(days=5), "INV-3")
    # then
    hook.refresh_from_db()
    assert hook.disabled_at == T0 + timedelta(days=5)
    assert hook.disabled_reason == (
        "No successful delivery since 2026-04-01T08:00:00Z: disabled after 5 days of failures."
    )
    # the three deliveries, each retried whenever it was due (INV-1 at T0, 4 d 23 h and 5 d; INV-2
    # at 4 d 23 h and 5 d; INV-3 at 5 d), were still being retried: they are failed now
    for delivery, attempts in ((first, 3), (second, 2), (third, 1)):
        delivery.refresh_from_db()
        assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == (DeliveryStatus.FAILED, attempts, None)
        assert delivery.last_error == "The endpoint was disabled."
    [message] = mail.outbox
    assert message.to == ["billing@acme.test", "owner@acme.test"]
    assert message.subject == "Acme Telematics: a webhook endpoint was disabled"
    assert receiver.url in message.body
    assert "since 2026-04-01 08:00 (UTC)" in message.body
    assert "The last try failed with: HTTP 500" in message.body
    assert "3 deliveries that were still being retried are now marked failed." in message.body
    # and nothing more is sent to it
    receiver.received.clear()
    assert (
        event_emit(tenant=tenant, type="invoice.finalized", data={}, at=T0 + timedelta(days=6)).deliveries.count() == 0
    )
    assert deliveries_send(at=T0 + timedelta(days=6)).tried == 0


def test_a_success_in_between_starts_the_5_days_again(tenant: Tenant, receiver: Receiver) -> None:
    hook, _ = endpoint(tenant, receiver.url)
    receiver.default = 500
    emit_and_send(tenant, T0, "INV-1")  # fails: failing since T0
    receiver.default = 200
    emit_and_send(tenant, T0 + timedelta(days=3), "INV-2")  # answered (INV-1's retry too): healthy again
    hook.refresh_from_db()
    assert (hook.failing_since, hook.last_success_at) == (None, T0 + timedelta(days=3))
    receiver.default = 500
    emit_and_send(tenant, T0 + timedelta(days=4), "INV-3")  # fails: failing since day 4
    emit_and_send(tenant, T0 + timedelta(days=5, hours=1), "INV-4")  # 1 day 1 hour of failures only
    hook.refresh_from_db()
    assert (hook.enabled, hook.failing_since) == (True, T0 + timedelta(days=4))


def test_enabling_an_endpoint_again_starts_afresh(tenant: Tenant, receiver: Receiver) -> None:
    hook, _ = endpoint(tenant, receiver.url)
    WebhookEndpoint.objects.filter(pk=hook.pk).update(
        disabled_at=T0, disabled_reason="No successful delivery...", failing_since=T0 - timedelta(days=5)
    )
    webhook_endpoint_enable(endpoint=hook, actor=ACTOR, at=T0 + timedelta(hours=1))
    hook.refresh_from_db()
    assert (hook.enabled, hook.disabled_reason, hook.failing_since) == (True, "", None)
    assert emit_and_send(tenant, T0 + timedelta(hours=2), "INV-5").status == DeliveryStatus.DELIVERED


def test_after_a_rotation_both_secrets_sign_for_24_hours_then_only_the_new_one(
    tenant: Tenant, receiver: Receiver
) -> None:
    # given: an endpoint whose secret is rotated at T0
    hook, old = endpoint(tenant, receiver.url)
    hook, new = webhook_endpoint_rotate_secret(endpoint=hook, actor=ACTOR, at=T0)
    assert new != old
    assert new.startswith("whsec_")
    assert (hook.previous_signing_secret, hook.previous_signing_secret_expires_at) == (old, T0 + timedelta(hours=24))

    # when: a message 23 h 59 min later
    at = T0 + timedelta(hours=23, minutes=59)
    emit_and_send(tenant, at, "INV-1")
    got = receiver.received[-1]
    # then: two signatures; a receiver with either secret verifies it
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    with time_machine.travel(at, tick=False):
        assert Webhook(old).verify(got.body, got.headers)["data"] == {"number": "INV-1"}
        assert Webhook(new).verify(got.body, got.headers)["data"] == {"number": "INV-1"}

    # when: a message 24 hours after the rotation
    at = T0 + timedelta(hours=24)
    emit_and_send(tenant, at, "INV-2")
    got = receiver.received[-1]
    # then: the new secret alone signs it
    assert len(got.headers["webhook-signature"].split(" ")) == 1
    with time_machine.travel(at, tick=False):
        assert Webhook(new).verify(got.body, got.headers)["data"] == {"number": "INV-2"}
        with pytest.raises(WebhookVerificationError, match="No matching signature found"):
            Webhook(old).verify(got.body, got.headers)
