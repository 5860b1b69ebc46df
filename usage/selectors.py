"""Read-side queries of usage: the rollups of open periods (live usage) and a customer's current usage."""

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.db import connection

from billing_platform.periods import Period
from customers.selectors import customer_get
from tenancy.models import Tenant

if TYPE_CHECKING:
    from usage.current import CurrentUsage

# 15-minute buckets (``usage.ingest``): a window whose bounds are on a bucket edge is summed exactly.
BUCKET_SECONDS = 15 * 60


def bucket_aligned(period: Period) -> bool:
    """True when both bounds fall on a 15-minute bucket edge, as local midnights of every zone do."""
    return all(int(b.timestamp()) % BUCKET_SECONDS == 0 and b.microsecond == 0 for b in (period.start, period.end))


@dataclass(frozen=True)
class RollupGroup:
    """The rollups of one subscription, meter, dimension values and time band over a window."""

    subscription_id: uuid.UUID
    meter_id: uuid.UUID
    dimensions: dict[str, str]
    time_band: str
    event_count: int
    value_sum: Decimal
    value_max: Decimal | None
    latest_at: datetime | None
    latest_value: Decimal | None


ROLLUP_SQL = """
SELECT r.subscription_id, r.meter_id, r.dimensions, r.time_band,
       sum(r.event_count), sum(r.value_sum), max(r.value_max), max(r.latest_at),
       (array_agg(r.latest_value ORDER BY r.latest_at DESC NULLS LAST))[1]
FROM usage_usagerollup r
JOIN unnest(%(subscriptions)s::uuid[], %(starts)s::timestamptz[], %(ends)s::timestamptz[])
    AS w(subscription_id, starts, ends) ON w.subscription_id = r.subscription_id
WHERE r.tenant_id = %(tenant)s
  AND r.meter_id = ANY(%(meters)s::uuid[])
  AND r.bucket >= w.starts AND r.bucket < w.ends
GROUP BY 1, 2, 3, 4
ORDER BY 1, 2, 3, 4
"""


def rollup_groups(
    *, tenant: Tenant, windows: Sequence[tuple[Any, Period]], meter_ids: Sequence[Any]
) -> list[RollupGroup]:
    """Each subscription's rollups whose bucket is in its window ``[start, end)``, per meter,
    dimension values and time band: one statement for every subscription and meter."""
    if not windows or not meter_ids:
        return []
    params: dict[str, Any] = {
        "tenant": tenant.pk,
        "subscriptions": [str(s) for s, _ in windows],
        "starts": [p.start for _, p in windows],
        "ends": [p.end for _, p in windows],
        "meters": [str(m) for m in meter_ids],
    }
    with connection.cursor() as cursor:
        cursor.execute(ROLLUP_SQL, params)
        rows = cursor.fetchall()
    return [
        RollupGroup(
            subscription_id=sub if isinstance(sub, uuid.UUID) else uuid.UUID(str(sub)),
            meter_id=meter if isinstance(meter, uuid.UUID) else uuid.UUID(str(meter)),
            dimensions=dict(json.loads(dims) if isinstance(dims, str) else dims or {}),
            time_band=band,
            event_count=int(count),
            value_sum=Decimal(value_sum),
            value_max=value_max,
            latest_at=latest_at,
            latest_value=latest_value,
        )
        for sub, meter, dims, band, count, value_sum, value_max, latest_at, latest_value in rows
    ]


def customer_current_usage(*, tenant: Tenant, external_id: str, at: datetime) -> "CurrentUsage":
    """The current usage of the tenant's customer ``external_id``; ``CustomerNotFound`` (404) for an
    unknown customer or another tenant's."""
    from usage.current import current_usage

    return current_usage(customer=customer_get(tenant=tenant, external_id=external_id), at=at)
