"""The transactional outbox: an event is written in the transaction of the change it reports,
with one delivery per enabled endpoint that subscribes to its type; the deliveries are queued
to Celery once that transaction commits.

So a change that rolls back leaves no event and sends nothing, and a change that commits has its
deliveries in the database whatever happens next: if queueing them fails (a broker down, a
process killed between the commit and the queueing), the sweep (``deliveries_due_enqueue``, on
Celery beat) finds them due and sends them.
"""

import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from django.db import connection, transaction

from tenancy.models import Tenant
from webhooks.events import event_type_check
from webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint, WebhookEvent

# Deliveries per Celery task: a task sends a batch, never one event alone when many are due.
BATCH_SIZE = 100

_EVENT_TABLE = WebhookEvent._meta.db_table
_DELIVERY_TABLE = WebhookDelivery._meta.db_table
_ENDPOINT_TABLE = WebhookEndpoint._meta.db_table


def instant(value: datetime) -> str:
    """An instant as payloads write it: UTC, ISO 8601, "Z" (``2026-04-01T00:00:00Z``)."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def event_body(event_type: str, data: Mapping[str, Any], at: datetime) -> str:
    """The JSON every endpoint receives for the event: ``{"type", "timestamp", "data"}``."""
    return json.dumps({"type": event_type, "timestamp": instant(at), "data": data}, ensure_ascii=False)


def event_emit(*, tenant: Tenant, type: str, data: Mapping[str, Any], at: datetime) -> WebhookEvent:
    """Record one event of ``tenant`` that happened at ``at``, in the caller's transaction; see
    ``events_emit``."""
    [event] = events_emit(tenant=tenant, events=[(type, data)], at=at)
    return event


def events_emit(*, tenant: Tenant, events: Sequence[tuple[str, Mapping[str, Any]]], at: datetime) -> list[WebhookEvent]:
    """Record events ``(type, data)`` of ``tenant`` that happened at ``at``, in the caller's
    transaction: the events and their deliveries (one per enabled endpoint subscribed to the type)
    in one statement, however many events and endpoints. Once the transaction commits, the new
    deliveries are queued to Celery by batches of ``BATCH_SIZE``; if it rolls back, nothing was
    recorded and nothing is queued."""
    if not events:
        return []
    rows = []
    for event_type, data in events:
        event_type_check(event_type)
        rows.append(WebhookEvent(id=uuid.uuid4(), tenant=tenant, type=event_type, body="", created_at=at))
        rows[-1].body = event_body(event_type, data, at)
    values = ", ".join(["(%s, %s, %s, %s, %s)"] * len(rows))
    params: list[Any] = []
    for row in rows:
        params += [row.id, tenant.pk, row.type, row.body, at]
    sql = f"""
        WITH event AS (
            INSERT INTO {_EVENT_TABLE} (id, tenant_id, type, body, created_at) VALUES {values}
            RETURNING id, tenant_id, type
        )
        INSERT INTO {_DELIVERY_TABLE} (
            id, tenant_id, endpoint_id, event_id, status, attempts, round_attempts, next_attempt_at,
            last_error, created_at
        )
        SELECT gen_random_uuid(), event.tenant_id, endpoint.id, event.id, %s, 0, 0, %s, '', %s
        FROM event
        JOIN {_ENDPOINT_TABLE} endpoint ON endpoint.tenant_id = event.tenant_id
            AND endpoint.disabled_at IS NULL
            AND (endpoint.events @> '["*"]'::jsonb OR endpoint.events @> jsonb_build_array(event.type))
        RETURNING id
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, DeliveryStatus.PENDING, at, at])
        delivery_ids = [str(pk) for (pk,) in cursor.fetchall()]
    if delivery_ids:
        deliveries_enqueue_on_commit(delivery_ids, tenant_id=str(tenant.pk))
    return rows


def deliveries_enqueue_on_commit(
    delivery_ids: Sequence[str], countdown: float | None = None, *, tenant_id: str
) -> None:
    """Queue the deliveries once the caller's transaction commits (at once outside one). Robust: a
    broker down must not fail a change already committed; its error is logged and the sweep sends
    the deliveries later."""

    def enqueue() -> None:
        deliveries_enqueue(delivery_ids, countdown, tenant_id=tenant_id)

    transaction.on_commit(enqueue, robust=True)


def deliveries_enqueue(delivery_ids: Sequence[str], countdown: float | None = None, *, tenant_id: str) -> int:
    """Queue the deliveries of one tenant to Celery, ``BATCH_SIZE`` per task, each task running under
    that tenant (row-level security). Returns the number of tasks."""
    from webhooks.tasks import webhook_deliveries_send_task

    ids = list(delivery_ids)
    batches = [ids[i : i + BATCH_SIZE] for i in range(0, len(ids), BATCH_SIZE)]
    for batch in batches:
        webhook_deliveries_send_task.apply_async(args=[batch], kwargs={"tenant_id": tenant_id}, countdown=countdown)
    return len(batches)
