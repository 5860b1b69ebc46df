"""The outbox: an event and its deliveries are written with the change, in its transaction. What
rolls back is never sent; what commits is never lost, even when queueing it fails."""

from typing import Any
from unittest import mock

import pytest
from django.db import connection, transaction

from tenancy.models import Tenant
from webhooks.delivery import deliveries_due_enqueue, deliveries_send
from webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint, WebhookEvent
from webhooks.outbox import event_emit, events_emit
from webhooks.services import webhook_endpoint_disable, webhook_endpoint_rotate_secret
from webhooks.tests.factories import ACTOR, T0, endpoint
from webhooks.tests.receiver import Receiver


@pytest.mark.django_db
def test_an_event_gets_one_delivery_per_enabled_endpoint_subscribed_to_its_type(
    tenant: Tenant, other_tenant: Tenant
) -> None:
    # given: 5 endpoints; 2 want invoice.finalized (one by "*"), 1 wants something else, 1 is
    # disabled, and 1 belongs to another tenant
    everything, _ = endpoint(tenant, "https://erp.acme.test/all")
    invoices, _ = endpoint(tenant, "https://erp.acme.test/invoices", events=["invoice.finalized", "invoice.voided"])
    endpoint(tenant, "https://cloud.acme.test/subs", events=["subscription.created"])
    disabled, _ = endpoint(tenant, "https://old.acme.test/")
    webhook_endpoint_disable(endpoint=disabled, actor=ACTOR, at=T0)
    endpoint(other_tenant, "https://globex.test/all")
    # when
    event = event_emit(tenant=tenant, type="invoice.finalized", data={"number": "INV-2026-000001"}, at=T0)
    # then: one event row, two deliveries, due now
    assert WebhookEvent.objects.count() == 1
    deliveries = WebhookDelivery.objects.filter(event=event)
    assert {d.endpoint_id for d in deliveries} == {everything.pk, invoices.pk}
    assert {(d.status, d.next_attempt_at, d.attempts, d.tenant_id) for d in deliveries} == {
        (DeliveryStatus.PENDING, T0, 0, tenant.pk)
    }
    assert event.body == (
        '{"type": "invoice.finalized", "timestamp": "2026-04-01T08:00:00Z", "data": {"number": "INV-2026-000001"}}'
    )


@pytest.mark.django_db
def test_an_event_nobody_subscribes_to_is_kept_without_delivery(tenant: Tenant) -> None:
    endpoint(tenant, "https://cloud.acme.test/subs", events=["subscription.created"])
    events_emit(tenant=tenant, events=[("bill_run.completed", {}), ("invoice.voided", {})], at=T0)
    assert WebhookEvent.objects.count() == 2
    assert WebhookDelivery.objects.count() == 0


@pytest.mark.django_db
def test_an_unknown_event_type_is_a_programming_error(tenant: Tenant) -> None:
    with pytest.raises(ValueError, match="Unknown webhook event type 'invoice.exploded'"):
        event_emit(tenant=tenant, type="invoice.exploded", data={}, at=T0)


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_change_sends_nothing_and_a_committed_one_is_sent(tenant: Tenant, receiver: Receiver) -> None:
    # given: an endpoint, and Celery queueing recorded instead of sent to a broker
    endpoint(tenant, receiver.url)
    with mock.patch("webhooks.tasks.webhook_deliveries_send_task.apply_async") as queued:
        # when: a change emits its event, then fails: its transaction rolls back
        def failing_change() -> None:
            with transaction.atomic():
                event_emit(tenant=tenant, type="invoice.finalized", data={"number": "INV-2026-000001"}, at=T0)
                raise RuntimeError("the change failed")

        with pytest.raises(RuntimeError, match="the change failed"):
            failing_change()
        # then: no event, no delivery, nothing queued
        assert (WebhookEvent.objects.count(), WebhookDelivery.objects.count(), queued.call_count) == (0, 0, 0)

        # when: the same change commits
        with transaction.atomic():
            event = event_emit(tenant=tenant, type="invoice.finalized", data={"number": "INV-2026-000002"}, at=T0)
            # not queued before the commit: a worker must never look for rows it cannot see yet
            assert queued.call_count == 0
        # then: queued once committed, with its delivery
        delivery = WebhookDelivery.objects.get(event=event)
        assert queued.call_args.kwargs["args"] == [[str(delivery.pk)]]
        assert queued.call_args.kwargs["kwargs"] == {"tenant_id": str(tenant.pk)}  # the task runs under it
    # and the task sends it
    deliveries_send(at=T0, delivery_ids=[str(delivery.pk)])
    assert [r.headers["webhook-id"] for r in receiver.received] == ["msg_" + event.id.hex]
    assert "INV-2026-000002" in receiver.received[0].body


@pytest.mark.django_db(transaction=True)
def test_a_committed_event_whose_queueing_failed_is_sent_by_the_sweep(
    tenant: Tenant, receiver: Receiver, caplog: Any
) -> None:
    # given: the broker is down when the change commits
    endpoint(tenant, receiver.url)
    broker_down = ConnectionRefusedError("broker down")
    with mock.patch("webhooks.tasks.webhook_deliveries_send_task.apply_async", side_effect=broker_down):
        with transaction.atomic():
            event = event_emit(tenant=tenant, type="invoice.finalized", data={"number": "INV-2026-000003"}, at=T0)
    # then: the change is committed anyway (the queueing error is logged, not raised)
    assert WebhookDelivery.objects.get(event=event).status == DeliveryStatus.PENDING
    assert "broker down" in caplog.text
    # when: the sweep runs on beat, the broker back
    with mock.patch("webhooks.tasks.webhook_deliveries_send_task.delay") as delay:
        assert deliveries_due_enqueue(tenant_id=str(tenant.pk), at=T0) == 1
    delay.assert_called_once_with(None, tenant_id=str(tenant.pk))
    deliveries_send(at=T0)  # what that task does
    # then: delivered, once
    assert [r.headers["webhook-id"] for r in receiver.received] == ["msg_" + event.id.hex]
    assert WebhookDelivery.objects.get(event=event).status == DeliveryStatus.DELIVERED


@pytest.mark.django_db
def test_a_delivery_held_by_a_dead_worker_is_due_again_after_its_lease(tenant: Tenant, receiver: Receiver) -> None:
    from datetime import timedelta

    from webhooks.delivery import LEASE

    endpoint(tenant, receiver.url)
    event = event_emit(tenant=tenant, type="invoice.finalized", data={}, at=T0)
    # a worker claims the delivery, then dies before sending it
    with mock.patch("webhooks.delivery.Sender.post_all", side_effect=SystemExit("killed")), pytest.raises(SystemExit):
        deliveries_send(at=T0)
    delivery = WebhookDelivery.objects.get(event=event)
    assert (delivery.next_attempt_at, delivery.attempts) == (T0 + LEASE, 0)
    # nobody else takes it while the lease runs; after 5 minutes the sweep's task does
    assert deliveries_send(at=T0 + LEASE - timedelta(seconds=1)).tried == 0
    assert deliveries_send(at=T0 + LEASE).delivered == 1
    assert len(receiver.received) == 1


@pytest.mark.django_db
def test_signing_secrets_are_encrypted_at_rest(tenant: Tenant) -> None:
    # given: an endpoint, then a rotation (the old secret kept for 24 h)
    made, first = endpoint(tenant, "https://hooks.acme.test/tripod")
    second = webhook_endpoint_rotate_secret(endpoint=made, actor=ACTOR, at=T0)[1]
    # then: the columns hold Fernet tokens, never the secrets; the model reads them back in clear
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT signing_secret, previous_signing_secret FROM webhooks_webhookendpoint WHERE id = %s", [made.pk]
        )
        stored_current, stored_previous = cursor.fetchone()
    assert stored_current.startswith("gAAAAA")
    assert second not in stored_current
    assert stored_previous.startswith("gAAAAA")
    assert first not in stored_previous
    reread = WebhookEndpoint.objects.get(pk=made.pk)
    assert (reread.signing_secret, reread.previous_signing_secret) == (second, first)
