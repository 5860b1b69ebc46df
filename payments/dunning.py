"""Dunning: reminders, retries, suspension, reactivation and write-off, each step once."""

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID


def customers_reactivate_if_clear(*, tenant_id: UUID, customer_ids: Sequence[UUID], at: datetime) -> None:
    """Reactivate the suspended subscriptions of these customers that have nothing overdue any more."""
    raise NotImplementedError
