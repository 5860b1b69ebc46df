"""A customer's current usage (``GET /customers/{id}/current_usage``, the portal's overview), cached
per customer in Redis and exact by construction: an entry is served only when a fresh computation
would give the same answer.

What the projection reads, and what makes an entry of it stale:

- the rows: usage events and rollups (the customer's generation, bumped by ingestion for the
  customers of each batch), and everything else it reads, the customer and its partner, the
  tenant's tax settings, the catalog, prices, price books, overrides and locks, tax rates,
  subscriptions, devices and slots, changes, the service-charge ledger (one-time fees billed,
  moved by bill runs), invoicing settings (the tenant's generation, bumped on every write to those
  tables by whatever code path: ``billing_platform.generations``); writes made with no tenant set
  bump the global generation. An entry holds the generations read *before* the rows were read;
  any change bumps one of them after it commits, so the entry is never served again.
- the clock: the projection compares ``at`` with instants it read (a period's end, a device's
  activation, deactivation or removal, a subscription's start, trial end or end, a one-time fee's
  trigger) and takes the local date of ``at``. ``usage_context_load`` gives the first of those
  instants after ``at`` (``valid_until``); the entry is served for an ``at`` in
  ``[computed at, valid_until)`` only, where every such comparison gives what it gave.
- ``at`` itself, part of the answer: the entry is the answer without it; ``at`` is put in per request.

Redis unreachable: computed afresh every time, never an error.
"""

import logging
import pickle
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis

from billing_platform.generations import (
    ENTRY_TTL,
    GLOBAL,
    PREFIX,
    client,
    customer_key,
    generations_read,
    tenant_key,
)
from customers.selectors import customer_get
from invoicing.upcoming import CurrentUsage, invoice_upcoming
from tenancy.models import Tenant
from usage.usage_context import usage_context_load

logger = logging.getLogger(__name__)

ENTRY = PREFIX + "current_usage:%s:%s"


@dataclass(frozen=True)
class Entry:
    generations: list[bytes | None]
    computed_at: datetime
    valid_until: datetime
    data: dict[str, Any]  # the serialized answer, ``at`` left out


def serialized(usage: CurrentUsage) -> dict[str, Any]:
    from invoicing.api.views import CurrentUsageSerializer

    return dict(CurrentUsageSerializer(usage).data)


def _at(at: datetime) -> Any:
    from invoicing.api.views import CurrentUsageSerializer

    return CurrentUsageSerializer().fields["at"].to_representation(at)


def current_usage_fresh(*, tenant: Tenant, external_id: str, at: datetime) -> tuple[CurrentUsage, datetime]:
    """The projection computed from the database, and until when the clock leaves it as it is."""
    customer = customer_get(tenant=tenant, external_id=external_id)
    context = usage_context_load(tenant=tenant, customers_at=[(customer, at)])
    return invoice_upcoming(customer=customer, at=at, context=context), context.valid_until[customer.pk]


def current_usage_data(*, tenant: Tenant, external_id: str, at: datetime) -> dict[str, Any]:
    """The serialized current usage of the tenant's customer ``external_id`` at ``at``, from the
    cache when its entry is valid (no query), else computed and stored. ``CustomerNotFound`` (404)."""
    key = ENTRY % (tenant.pk, external_id)
    values = generations_read([GLOBAL, tenant_key(tenant.pk), customer_key(tenant.pk, external_id)], [key])
    generations = values[:3] if values is not None else None
    if values is not None and values[3] is not None:
        entry = pickle.loads(values[3])  # noqa: S301 - written by this module only
        if entry.generations == generations and entry.computed_at <= at < entry.valid_until:
            return {**entry.data, "at": _at(at)}
    usage, until = current_usage_fresh(tenant=tenant, external_id=external_id, at=at)
    data = serialized(usage)
    if generations is not None:
        entry = Entry(generations=generations, computed_at=at, valid_until=until, data=data)
        try:
            client().set(key, pickle.dumps(entry, protocol=pickle.HIGHEST_PROTOCOL), ex=ENTRY_TTL)
        except redis.RedisError as exc:
            logger.warning("current usage not cached: %s", exc)
    return data
