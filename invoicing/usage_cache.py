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

- Redis itself: an entry is stamped with the server's run id and served by that run only (a Redis
  restored from a snapshot brings old entries back with the old generations).
- the code: the key holds ``CODE``, a digest of the source of the apps the projection runs, so a
  deploy that changes them starts from an empty cache rather than serving the old code's answers.
  Entries are JSON; one that cannot be read is a miss, never an error.

Redis unreachable: computed afresh every time, never an error.
"""

import hashlib
import logging
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import redis
from django.conf import settings

from billing_platform.generations import (
    ENTRY_TTL,
    GLOBAL,
    PREFIX,
    cache_usable,
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

# Bumped by hand when the entry's layout changes.
FORMAT = 1
# The apps whose code computes the answer.
CODE_APPS = ("billing_platform", "catalog", "customers", "invoicing", "partners", "subscriptions", "tenancy", "usage")


def _code_digest() -> str:
    digest = hashlib.sha256(b"%d" % FORMAT)
    base = Path(settings.BASE_DIR)
    for app in CODE_APPS:
        for path in sorted((base / app).rglob("*.py")):
            if "tests" not in path.relative_to(base).parts and "migrations" not in path.parts:
                digest.update(path.relative_to(base).as_posix().encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


CODE = _code_digest()
ENTRY = PREFIX + "current_usage:" + CODE + ":%s:%s"


def _generation(value: bytes | None) -> str | None:
    return value.decode() if value is not None else None


def _entry_dump(*, run: str, generations: list[str | None], computed_at: datetime, until: datetime, data: Any) -> bytes:
    entry = {"run": run, "gen": generations, "from": computed_at, "until": until, "data": data}
    return orjson.dumps(entry, default=str)


def _entry_hit(raw: bytes, *, run: str, generations: list[str | None], at: datetime) -> dict[str, Any] | None:
    """The entry's answer when it is valid for ``run``, ``generations`` and ``at``; ``None`` when
    not, or when it cannot be read (written by other code, or damaged)."""
    try:
        entry = orjson.loads(raw)
        if entry["run"] != run or entry["gen"] != generations:
            return None
        if not datetime.fromisoformat(entry["from"]) <= at < datetime.fromisoformat(entry["until"]):
            return None
        data = entry["data"]
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        logger.warning("current usage entry unreadable: %s", exc)
        return None
    return data if isinstance(data, dict) else None


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
    cache when its entry is valid (no query), else computed and stored; inside a transaction always
    computed, never stored (``generations.cache_usable``). ``CustomerNotFound`` (404)."""
    if not cache_usable():
        usage, _ = current_usage_fresh(tenant=tenant, external_id=external_id, at=at)
        return serialized(usage)
    key = ENTRY % (tenant.pk, external_id)
    read = generations_read([GLOBAL, tenant_key(tenant.pk), customer_key(tenant.pk, external_id)], [key])
    if read is not None:
        run, values = read
        generations = [_generation(v) for v in values[:3]]
        if values[3] is not None:
            hit = _entry_hit(values[3], run=run, generations=generations, at=at)
            if hit is not None:
                return {**hit, "at": _at(at)}
    usage, until = current_usage_fresh(tenant=tenant, external_id=external_id, at=at)
    data = serialized(usage)
    if read is not None:
        raw = _entry_dump(run=run, generations=generations, computed_at=at, until=until, data=data)
        try:
            client().set(key, raw, ex=ENTRY_TTL)
        except redis.RedisError as exc:
            logger.warning("current usage not cached: %s", exc)
    return data
