"""Celery tasks of outbound webhooks: send a batch of deliveries, and the beat sweep."""

from celery import shared_task
from django.utils import timezone


@shared_task(acks_late=True)
def webhook_deliveries_send_task(delivery_ids: list[str] | None = None) -> int:
    """Send a batch: these deliveries when given (those still due), else any due ones. Safe to run
    twice and in parallel: each delivery is claimed by one worker."""
    from webhooks.delivery import deliveries_send

    return deliveries_send(at=timezone.now(), delivery_ids=delivery_ids).tried


@shared_task
def webhook_deliveries_sweep_task() -> int:
    """Queue what is due: retries, and deliveries committed but never queued or left by a dead worker."""
    from webhooks.delivery import deliveries_due_enqueue

    return deliveries_due_enqueue(at=timezone.now())
