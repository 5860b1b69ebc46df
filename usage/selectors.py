"""Read-side queries of usage: the rollups of open periods (live usage)."""

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import Count, Q, QuerySet

from billing_platform.periods import Period, local_midnight
from catalog.models import Aggregation, Meter
from customers.models import Customer
from subscriptions.models import Subscription
from tenancy.models import Tenant
from usage.models import RejectedEvent, UsageRollup

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


# Each window is read as its whole UTC days from the daily rollups and its ragged ends from the
# 15-minute ones (``_pieces``). Every piece is a LATERAL subquery that OFFSET 0 keeps from being
# flattened: one index scan per piece, never a scan of the tenant's rollups, whatever the
# statistics say. The pieces cover disjoint times, so the latest value of a group is that of its
# piece with the latest ``latest_at``, as it would be from the 15-minute rows alone.
_PIECE = """
SELECT q.* FROM unnest(%({level}_subscriptions)s::uuid[], %({level}_starts)s::timestamptz[],
                       %({level}_ends)s::timestamptz[]) AS w(subscription_id, starts, ends)
CROSS JOIN LATERAL (
    SELECT subscription_id, meter_id, dimensions, time_band, event_count, value_sum, value_max, latest_at,
           latest_value
    FROM {table}
    WHERE subscription_id = w.subscription_id AND meter_id = ANY(%(meters)s::uuid[]) AND tenant_id = %(tenant)s
      AND {bucket} >= w.starts AND {bucket} < w.ends
    OFFSET 0
) q"""

ROLLUP_SQL = """
SELECT r.subscription_id, r.meter_id, r.dimensions, r.time_band,
       sum(r.event_count), sum(r.value_sum), max(r.value_max), max(r.latest_at),
       (array_agg(r.latest_value ORDER BY r.latest_at DESC NULLS LAST))[1]
FROM ({days}
    UNION ALL{quarters}
) r
GROUP BY 1, 2, 3, 4
ORDER BY 1, 2, 3, 4
""".format(
    days=_PIECE.format(level="day", table="usage_usagedailyrollup", bucket="day"),
    quarters=_PIECE.format(level="quarter", table="usage_usagerollup", bucket="bucket"),
)

DAY = timedelta(days=1)


def _pieces(start: datetime, end: datetime) -> tuple[list[tuple[datetime, datetime]], tuple[datetime, datetime] | None]:
    """``[start, end)`` as 15-minute ranges at its ends and the whole UTC days between them (None
    when no whole day fits). The 15-minute buckets that start in ``[start, end)`` are exactly those
    of the ranges and of the days, aligned bounds or not, so the sums do not change."""
    first_midnight = start.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if first_midnight < start:
        first_midnight += DAY
    last_midnight = end.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if first_midnight >= last_midnight:
        return [(start, end)], None
    edges = [(a, b) for a, b in ((start, first_midnight), (last_midnight, end)) if a < b]
    return edges, (first_midnight, last_midnight)


def rollup_groups(
    *, tenant: Tenant, windows: Sequence[tuple[Any, Period]], meter_ids: Sequence[Any]
) -> list[RollupGroup]:
    """Each subscription's rollups whose bucket is in its window ``[start, end)``, per meter,
    dimension values and time band: one statement for every subscription and meter. The whole UTC
    days of a window are read from the daily rollups, the rest from the 15-minute ones."""
    if not windows or not meter_ids:
        return []
    days: list[tuple[str, datetime, datetime]] = []
    quarters: list[tuple[str, datetime, datetime]] = []
    for subscription, period in windows:
        edges, whole_days = _pieces(period.start, period.end)
        quarters += [(str(subscription), a, b) for a, b in edges]
        if whole_days is not None:
            days.append((str(subscription), *whole_days))
    params: dict[str, Any] = {"tenant": tenant.pk, "meters": [str(m) for m in meter_ids]}
    for level, pieces in (("day", days), ("quarter", quarters)):
        params[level + "_subscriptions"] = [s for s, _, _ in pieces]
        params[level + "_starts"] = [a for _, a, _ in pieces]
        params[level + "_ends"] = [b for _, _, b in pieces]
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


# --- the usage explorer's reads (back-office) --------------------------------------------------

# The quantity of a day for each aggregation, over the rollup rows of that day and series.
DAILY_QUANTITY_SQL: dict[str, str] = {
    Aggregation.COUNT: "sum(r.event_count)",
    # Distinct values are counted at billing time, over the whole period: here, the events.
    Aggregation.UNIQUE_COUNT: "sum(r.event_count)",
    Aggregation.SUM: "sum(r.value_sum)",
    Aggregation.MAX: "max(r.value_max)",
    Aggregation.LATEST: "(array_agg(r.latest_value ORDER BY r.latest_at DESC NULLS LAST))[1]",
}
DAILY_USAGE_SQL = """
SELECT (r.bucket AT TIME ZONE %s)::date AS day, {series} AS series, {quantity} AS quantity,
       max(r.latest_at) AS latest_at
FROM {rollups} r
WHERE r.tenant_id = %s AND r.meter_id = %s
  AND r.subscription_id IN (SELECT s.id FROM {subscriptions} s WHERE s.tenant_id = %s AND s.customer_id = %s)
  AND r.bucket >= %s AND r.bucket < %s
GROUP BY 1, 2
ORDER BY 1, 2
"""


@dataclass(frozen=True)
class DailyUsage:
    """A customer's usage of a meter on one local day, for one series (a dimension value, a time
    band, or "" when not split): its quantity for the meter's aggregation, and when it was last
    measured (which decides a ``latest`` meter's quantity over several days)."""

    day: date
    series: str
    quantity: Decimal | None
    latest_at: datetime | None


def usage_daily_series(
    *,
    tenant: Tenant,
    customer: Customer,
    meter: Meter,
    start: date,
    end: date,
    dimension: str | None = None,
    by_time_band: bool = False,
) -> list[DailyUsage]:
    """The customer's usage of ``meter`` per local day from ``start`` to ``end`` (both included),
    split by the values of ``dimension`` or by time band, ordered by day and series.

    It reads the 15-minute rollups, never raw events, grouped in one query by the day in the
    customer's time zone, ``(bucket AT TIME ZONE tz)::date``: local midnights of every zone fall on
    a 15-minute edge, so a bucket never straddles two days (2026-03-31T22:30Z is 1 April in Paris)."""
    params: list[Any] = [customer.timezone]
    if by_time_band:
        series = "r.time_band"
    elif dimension:
        series = "coalesce(r.dimensions ->> %s, '')"
        params.append(dimension)
    else:
        series = "''"
    sql = DAILY_USAGE_SQL.format(
        series=series,
        quantity=DAILY_QUANTITY_SQL.get(meter.aggregation, "sum(r.event_count)"),
        rollups=UsageRollup._meta.db_table,
        subscriptions=Subscription._meta.db_table,
    )
    params += [
        tenant.pk,
        meter.pk,
        tenant.pk,
        customer.pk,
        local_midnight(start, customer.timezone),
        local_midnight(end + DAY, customer.timezone),
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return [DailyUsage(day=day, series=str(s), quantity=quantity, latest_at=at) for day, s, quantity, at in rows]


def rejected_event_list(
    *, tenant: Tenant, search: str | None = None, reason: str | None = None
) -> QuerySet[RejectedEvent]:
    """The events refused at ingestion; ``search`` finds a part of the transaction ID or the meter code."""
    qs = RejectedEvent.objects.filter(tenant=tenant)
    if search:
        qs = qs.filter(Q(transaction_id__icontains=search) | Q(code__icontains=search))
    if reason:
        qs = qs.filter(reason=reason)
    return qs


def rejected_event_reason_counts(*, tenant: Tenant, search: str | None = None) -> dict[str, int]:
    """How many of the events ``rejected_event_list`` finds were refused for each reason."""
    qs = rejected_event_list(tenant=tenant, search=search)
    return dict(qs.order_by().values_list("reason").annotate(n=Count("pk")))
