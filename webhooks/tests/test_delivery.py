"""Deliveries to a real receiver on 127.0.0.1: signed as Standard Webhooks receivers verify them,
retried on the schedule when the receiver dies mid-delivery, replayed, batched."""

import json
from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from standardwebhooks import Webhook

from tenancy.models import Tenant
from webhooks.delivery import deliveries_due_enqueue, deliveries_send
from webhooks.models import DeliveryStatus, WebhookAttempt, WebhookDelivery
from webhooks.outbox import event_emit, events_emit
from webhooks.services import webhook_delivery_replay
from webhooks.tests.factories import ACTOR, T0, endpoint
from webhooks.tests.receiver import KILL, Receiver

pytestmark = pytest.mark.django_db

INVOICE = {"id": "inv-1", "number": "INV-2026-000001", "customer": "dupont", "currency": "EUR", "total": "181.09"}


def tries(delivery: WebhookDelivery) -> list[tuple[Any, ...]]:
    return [
        (t.attempted_at - T0, t.status_code, t.error.split(":")[0] if t.error else "")
        for t in WebhookAttempt.objects.filter(delivery=delivery).order_by("attempted_at", "id")
    ]


def test_a_delivery_is_signed_as_a_standard_webhooks_receiver_verifies_it(tenant: Tenant, receiver: Receiver) -> None:
    # given: an endpoint receiving invoice.finalized, and the event
    hook, secret = endpoint(tenant, receiver.url, events=["invoice.finalized"])
    event = event_emit(tenant=tenant, type="invoice.finalized", data=INVOICE, at=T0)
    # when
    with time_machine.travel(T0, tick=False):
        report = deliveries_send(at=T0)
        # then: the receiver verifies it with the reference library and the endpoint's secret
        [got] = receiver.received
        payload = Webhook(secret).verify(got.body, got.headers)
    assert (report.tried, report.delivered, report.failed) == (1, 1, 0)
    assert payload == {"type": "invoice.finalized", "timestamp": "2026-04-01T08:00:00Z", "data": INVOICE}
    assert got.headers["webhook-id"] == "msg_" + event.id.hex
    assert got.headers["webhook-timestamp"] == str(int(T0.timestamp())) == "1775030400"
    assert got.headers["content-type"] == "application/json"
    assert got.headers["webhook-signature"].startswith("v1,")
    assert " " not in got.headers["webhook-signature"]  # one secret, one signature
    assert got.path == "/tripod-webhooks"
    delivery = WebhookDelivery.objects.get(endpoint=hook)
    assert (delivery.status, delivery.attempts, delivery.delivered_at, delivery.next_attempt_at) == (
        DeliveryStatus.DELIVERED,
        1,
        T0,
        None,
    )
    [attempt] = delivery.tries.all()
    assert (attempt.status_code, attempt.response_excerpt, attempt.error) == (200, "ok", "")


def test_another_secret_or_a_changed_body_is_refused_by_the_receiver(tenant: Tenant, receiver: Receiver) -> None:
    _, secret = endpoint(tenant, receiver.url)
    event_emit(tenant=tenant, type="invoice.finalized", data=INVOICE, at=T0)
    with time_machine.travel(T0, tick=False):
        deliveries_send(at=T0)
        [got] = receiver.received
        with pytest.raises(Exception, match="No matching signature found"):
            Webhook("whsec_" + "A" * 44).verify(got.body, got.headers)
        with pytest.raises(Exception, match="No matching signature found"):
            Webhook(secret).verify(got.body.replace("181.09", "1.09"), got.headers)


def test_the_receiver_killed_mid_delivery_gets_the_retries_on_schedule_then_a_replay(
    tenant: Tenant, receiver: Receiver
) -> None:
    # given: the receiver dies while the first try is in flight (the connection drops, no answer)
    hook, secret = endpoint(tenant, receiver.url)
    event_emit(tenant=tenant, type="invoice.finalized", data=INVOICE, at=T0)
    delivery = WebhookDelivery.objects.get(endpoint=hook)
    receiver.answers = [KILL]

    # when: try 1 at T0
    deliveries_send(at=T0)
    receiver.stop()
    # then: failed without an answer; the next try is 5 s later
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("pending", 1, T0 + timedelta(seconds=5))

    # 4 s later nothing is due: nothing is sent
    assert deliveries_send(at=T0 + timedelta(seconds=4)).tried == 0
    # try 2 at T0 + 5 s: the receiver is down, the connection is refused; next 5 min later
    deliveries_send(at=T0 + timedelta(seconds=5))
    delivery.refresh_from_db()
    assert delivery.next_attempt_at == T0 + timedelta(seconds=5) + timedelta(minutes=5)

    # the receiver comes back, overloaded: try 3 at T0 + 5 min 5 s answers 503; next 30 min later
    receiver.start()
    receiver.answers = [503]
    deliveries_send(at=T0 + timedelta(minutes=5, seconds=5))
    delivery.refresh_from_db()
    assert delivery.next_attempt_at == T0 + timedelta(minutes=35, seconds=5)

    # try 4 at T0 + 35 min 5 s: 200, delivered
    deliveries_send(at=T0 + timedelta(minutes=35, seconds=5))
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.delivered_at) == (
        "delivered",
        4,
        T0 + timedelta(minutes=35, seconds=5),
    )
    assert tries(delivery) == [
        (timedelta(0), None, "ProtocolError"),
        (timedelta(seconds=5), None, "NewConnectionError"),
        (timedelta(minutes=5, seconds=5), 503, "HTTP 503"),
        (timedelta(minutes=35, seconds=5), 200, ""),
    ]
    refused = WebhookAttempt.objects.get(delivery=delivery, attempted_at=T0 + timedelta(seconds=5))
    assert "Connection refused" in refused.error
    assert WebhookAttempt.objects.get(delivery=delivery, status_code=503).response_excerpt == "receiver says no: 503"

    # when: staff replay it at T0 + 1 h (the ERP lost it): the same webhook-id and body, signed anew
    at = T0 + timedelta(hours=1)
    webhook_delivery_replay(delivery=delivery, actor=ACTOR, at=at)
    deliveries_send(at=at)
    # then: 5 tries in all, 4 of which reached the receiver (not the refused one), all the same message
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.delivered_at) == ("delivered", 5, at)
    assert tries(delivery)[-1] == (timedelta(hours=1), 200, "")
    assert len(receiver.received) == 4
    assert {r.headers["webhook-id"] for r in receiver.received} == {"msg_" + delivery.event_id.hex}
    assert len({r.body for r in receiver.received}) == 1
    replayed = receiver.received[-1]
    assert replayed.headers["webhook-timestamp"] == str(int(at.timestamp()))
    with time_machine.travel(at, tick=False):
        assert Webhook(secret).verify(replayed.body, replayed.headers)["data"] == INVOICE


def test_a_delivery_fails_after_8_tries_over_27_h_35_min_5_s(tenant: Tenant, receiver: Receiver) -> None:
    # given: a receiver that always answers 500
    hook, _ = endpoint(tenant, receiver.url)
    receiver.default = 500
    event_emit(tenant=tenant, type="invoice.finalized", data=INVOICE, at=T0)
    delivery = WebhookDelivery.objects.get(endpoint=hook)
    # when: each try at the instant the previous one scheduled
    at = T0
    for _ in range(8):
        assert deliveries_send(at=at).tried == 1
        delivery.refresh_from_db()
        at = delivery.next_attempt_at or at
    # then: the schedule 0, +5 s, +5 min, +30 min, +2 h, +5 h, +10 h, +10 h, then failed
    delays = [timedelta(0), timedelta(seconds=5), timedelta(minutes=5), timedelta(minutes=30)]
    delays += [timedelta(hours=2), timedelta(hours=5), timedelta(hours=10), timedelta(hours=10)]
    expected, elapsed = [], timedelta(0)
    for delay in delays:
        elapsed += delay
        expected.append((elapsed, 500, "HTTP 500"))
    assert tries(delivery) == expected
    assert expected[-1][0] == timedelta(hours=27, minutes=35, seconds=5)
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == (DeliveryStatus.FAILED, 8, None)
    assert deliveries_send(at=T0 + timedelta(days=2)).tried == 0


def test_a_redirect_is_a_failed_try_and_is_not_followed(tenant: Tenant, receiver: Receiver) -> None:
    other = Receiver().start()
    try:
        hook, _ = endpoint(tenant, receiver.url)
        receiver.answers, receiver.redirect_to = [302], other.url
        event_emit(tenant=tenant, type="invoice.finalized", data=INVOICE, at=T0)
        deliveries_send(at=T0)
        [attempt] = WebhookAttempt.objects.filter(delivery__endpoint=hook)
        assert (attempt.status_code, attempt.error) == (302, "Redirect to %s not followed." % other.url)
        assert other.received == []
        assert WebhookDelivery.objects.get(endpoint=hook).status == DeliveryStatus.PENDING
    finally:
        other.stop()


def test_the_sweep_sends_what_is_due_by_batches(tenant: Tenant, receiver: Receiver, eager_celery: None) -> None:
    # given: 250 events committed, whose queueing never happened (no on_commit callback ran)
    endpoint(tenant, receiver.url)
    events_emit(tenant=tenant, events=[("invoice.finalized", {"n": i}) for i in range(250)], at=T0)
    # when: the sweep runs; each task it queues takes a batch of 100
    with mock.patch("webhooks.tasks.webhook_deliveries_send_task.delay") as delay:
        assert deliveries_due_enqueue(tenant_id=str(tenant.pk), at=T0) == 3  # 100 + 100 + 50
    assert delay.call_count == 3
    for _ in range(3):
        deliveries_send(at=T0)
    # then: all 250 delivered, each once
    assert WebhookDelivery.objects.filter(status=DeliveryStatus.DELIVERED).count() == 250
    assert len(receiver.received) == 250
    assert sorted(json.loads(r.body)["data"]["n"] for r in receiver.received) == list(range(250))


def test_a_batch_costs_the_same_queries_for_10_deliveries_as_for_100(tenant: Tenant, receiver: Receiver) -> None:
    endpoint(tenant, receiver.url)

    def queries(count: int) -> int:
        events_emit(tenant=tenant, events=[("invoice.finalized", {"n": i}) for i in range(count)], at=T0)
        with CaptureQueriesContext(connection) as captured:
            assert deliveries_send(at=T0).delivered == count
        return len(captured.captured_queries)

    # claim, load, lock, tries, deliveries, endpoints' health (and the transaction's savepoint)
    assert queries(10) == queries(100) <= 8


def test_emitting_queues_one_task_per_batch_once_committed(
    tenant: Tenant, receiver: Receiver, django_capture_on_commit_callbacks: Any
) -> None:
    endpoint(tenant, receiver.url)
    with (
        mock.patch("webhooks.tasks.webhook_deliveries_send_task.apply_async") as apply_async,
        django_capture_on_commit_callbacks(execute=True),
    ):
        events_emit(tenant=tenant, events=[("invoice.finalized", {"n": i}) for i in range(250)], at=T0)
    assert [len(call.kwargs["args"][0]) for call in apply_async.call_args_list] == [100, 100, 50]
