"""Usage statistics (analytics.md): quantities per meter, calendar month and group; the top
customers and devices; anomalies. Read-only, set-based SQL, a fixed number of statements whatever
the number of meters, months or devices.

- **Months** are calendar months in the tenant's time zone, as in the MRR report.
- **Quantities** come from the usage rollups, the figures the usage explorer and current usage
  show: a month is read as its whole UTC days from the daily rollups and its ragged ends (a local
  midnight is rarely a UTC one) from the 15-minute rollups, so the cut is exact. A meter's
  aggregation applies: ``count`` counts events, ``sum`` adds values, ``max`` takes the largest,
  ``latest`` adds each subscription's latest value of the month. Rollups keep no distinct values,
  so ``unique_count`` meters are counted from the events themselves (the same statement shape,
  pruned to the months' partitions).
- **Groups**: ``device_type`` and ``region`` are the event's dimensions of those names (ingestion
  fills them from the device's attributes when the meter declares them, pricing.md); a meter
  without that dimension reports one group ``""``. ``time_band`` is the meter's band of each event
  (its ``time_bands``, evaluated in the customer's time zone at ingestion: ``peak``,
  ``off_peak``...); a meter without bands reports ``""``. ``customer`` is the customer's external id.
- **Top customers** (from the rollups) and **top devices** (from the events: rollups do not keep
  the device) over the whole range, ``TOP`` of each per meter, largest first.
- **Anomalies**: a device's day (the customer's local day) whose quantity exceeds 3 × the median of
  its own daily quantities over the 30 days before, counting only the days it reported usage and
  only when it reported on at least ``ANOMALY_MIN_DAYS`` of them (fewer make no baseline). The
  median is exact (the middle value, or the mean of the two middle values), in decimals.
"""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from uuid import UUID

from billing_platform.db_router import reads_connection, replica_report
from billing_platform.periods import add_months, local_midnight
from catalog.models import Aggregation, Meter
from customers.models import Customer
from tenancy.models import Tenant
from usage.archive import archived_overlap, month_bounds, raw_events_check

GROUP_BY = ("device_type", "region", "time_band", "customer")
TOP = 10
ANOMALY_FACTOR = 3
ANOMALY_WINDOW_DAYS = 30
ANOMALY_MIN_DAYS = 7
MAX_ANOMALIES = 100

# The group column of a rollup row ``r`` joined to its subscription ``s``, and of an event ``e``.
_ROLLUP_GROUP = {
    None: "''",
    "device_type": "coalesce(r.dimensions ->> 'device_type', '')",
    "region": "coalesce(r.dimensions ->> 'region', '')",
    "time_band": "r.time_band",
    "customer": "s.customer_id::text",
}
_EVENT_GROUP = {
    None: "''",
    "device_type": "coalesce(e.properties ->> 'device_type', '')",
    "region": "coalesce(e.properties ->> 'region', '')",
    "time_band": "e.time_band",
    "customer": "s.customer_id::text",
}
# A meter's quantity over raw events ``e`` of meter ``m``, whatever its aggregation (usage.aggregation's rules).
_EVENT_QUANTITY = """CASE m.aggregation
    WHEN 'count' THEN count(*)
    WHEN 'sum' THEN coalesce(sum(e.value), 0)
    WHEN 'max' THEN coalesce(max(e.value), 0)
    WHEN 'unique_count' THEN count(DISTINCT e.properties ->> m.field)
    ELSE coalesce((array_agg(e.value ORDER BY e."timestamp" DESC, e.id DESC))[1], 0) END"""
DAY = timedelta(days=1)


@dataclass(frozen=True)
class UsageGroup:
    group: str
    name: str  # the customer's name when grouped by customer
    quantity: Decimal


@dataclass(frozen=True)
class UsageMonth:
    month: date
    quantity: Decimal  # every group, the meter's aggregation applied over the month
    groups: list[UsageGroup]


@dataclass(frozen=True)
class TopCustomer:
    customer: str
    name: str
    quantity: Decimal


@dataclass(frozen=True)
class TopDevice:
    device_id: str
    customer: str
    quantity: Decimal


@dataclass(frozen=True)
class Anomaly:
    device_id: str
    customer: str
    day: date
    quantity: Decimal
    median: Decimal
    ratio: Decimal  # quantity ÷ median, 2 places


@dataclass(frozen=True)
class MeterUsage:
    meter: str
    name: str
    aggregation: str
    months: list[UsageMonth]
    top_customers: list[TopCustomer]
    top_devices: list[TopDevice]
    anomalies: list[Anomaly]


@dataclass(frozen=True)
class _Window:
    month: date
    start: datetime
    end: datetime


def _windows(start: date, end: date, tz: str) -> list[_Window]:
    windows, (year, month) = [], (start.year, start.month)
    while (year, month) <= (end.year, end.month):
        following = add_months(year, month, 1)
        first, after = date(year, month, 1), date(*following, 1)
        windows.append(_Window(first, local_midnight(first, tz), local_midnight(after, tz)))
        year, month = following
    return windows


def _utc_floor(instant: datetime) -> datetime:
    utc = instant.astimezone(UTC)
    return datetime(utc.year, utc.month, utc.day, tzinfo=UTC)


def _pieces(windows: Sequence[_Window]) -> dict[str, list[Any]]:
    """Each window as its whole UTC days (``d``, read from the daily rollups) and its ragged ends
    (``q``, from the 15-minute rollups): April in Paris (UTC+2) is 31 March 22:00 to 1 April
    00:00 (q), 1 to 30 April 00:00 UTC (d) and 30 April 00:00 to 22:00 (q)."""
    months, kinds, los, his = [], [], [], []

    def add(month: date, kind: str, lo: datetime, hi: datetime) -> None:
        if lo < hi:
            months.append(month)
            kinds.append(kind)
            los.append(lo)
            his.append(hi)

    for w in windows:
        first_day = _utc_floor(w.start)
        if first_day < w.start:
            first_day += DAY
        last_day = _utc_floor(w.end)
        if first_day >= last_day:  # shorter than a whole UTC day: all from the 15-minute rollups
            add(w.month, "q", w.start, w.end)
            continue
        add(w.month, "q", w.start, first_day)
        add(w.month, "d", first_day, last_day)
        add(w.month, "q", last_day, w.end)
    return {"p_month": months, "p_kind": kinds, "p_lo": los, "p_hi": his}


ROLLUP_SQL = """
WITH pieces AS (
    SELECT * FROM unnest(%(p_month)s::date[], %(p_kind)s::text[], %(p_lo)s::timestamptz[], %(p_hi)s::timestamptz[])
        AS p(month, kind, lo, hi)
), picked AS (
    SELECT p.month, r.meter_id, r.subscription_id, r.dimensions, r.time_band, r.event_count, r.value_sum,
           r.value_max, r.latest_at, r.latest_value
    FROM pieces p JOIN usage_usagedailyrollup r ON p.kind = 'd' AND r.day >= p.lo AND r.day < p.hi
    WHERE r.tenant_id = %(tenant)s AND r.meter_id = ANY(%(meters)s::uuid[])
    UNION ALL
    SELECT p.month, r.meter_id, r.subscription_id, r.dimensions, r.time_band, r.event_count, r.value_sum,
           r.value_max, r.latest_at, r.latest_value
    FROM pieces p JOIN usage_usagerollup r ON p.kind = 'q' AND r.bucket >= p.lo AND r.bucket < p.hi
    WHERE r.tenant_id = %(tenant)s AND r.meter_id = ANY(%(meters)s::uuid[])
), per_subscription AS (
    SELECT r.month, r.meter_id, {group} AS grp, r.subscription_id, sum(r.event_count) AS n,
           sum(r.value_sum) AS total, max(r.value_max) AS highest,
           (array_agg(r.latest_value ORDER BY r.latest_at DESC NULLS LAST))[1] AS latest
    FROM picked r JOIN subscriptions_subscription s ON s.id = r.subscription_id
    GROUP BY 1, 2, 3, 4
)
SELECT p.month, p.meter_id, p.grp,
       CASE m.aggregation WHEN 'count' THEN sum(p.n) WHEN 'sum' THEN sum(p.total)
            WHEN 'max' THEN coalesce(max(p.highest), 0) ELSE coalesce(sum(p.latest), 0) END
FROM per_subscription p JOIN catalog_meter m ON m.id = p.meter_id
GROUP BY p.month, p.meter_id, p.grp, m.aggregation
"""

EVENT_SQL = """
WITH windows AS (
    SELECT * FROM unnest(%(w_month)s::date[], %(w_lo)s::timestamptz[], %(w_hi)s::timestamptz[]) AS w(month, lo, hi)
)
SELECT w.month, e.meter_id, {group} AS grp, {quantity}
FROM usage_event e
JOIN windows w ON e."timestamp" >= w.lo AND e."timestamp" < w.hi
JOIN catalog_meter m ON m.id = e.meter_id
JOIN subscriptions_subscription s ON s.id = e.subscription_id
WHERE e.tenant_id = %(tenant)s AND e.meter_id = ANY(%(meters)s::uuid[])
  AND e."timestamp" >= %(lo)s AND e."timestamp" < %(hi)s AND e.properties @> m.filters
GROUP BY 1, 2, 3, m.aggregation, m.field
"""

TOP_DEVICES_SQL = """
WITH per_device AS (
    SELECT e.meter_id, e.device_id, c.external_id AS customer, {quantity} AS quantity
    FROM usage_event e
    JOIN catalog_meter m ON m.id = e.meter_id
    JOIN subscriptions_subscription s ON s.id = e.subscription_id
    JOIN customers_customer c ON c.id = s.customer_id
    WHERE e.tenant_id = %(tenant)s AND e.meter_id = ANY(%(meters)s::uuid[])
      AND e."timestamp" >= %(lo)s AND e."timestamp" < %(hi)s AND e.device_id <> '' AND e.properties @> m.filters
    GROUP BY e.meter_id, m.aggregation, m.field, e.device_id, c.external_id
), ranked AS (
    SELECT *, row_number() OVER (PARTITION BY meter_id ORDER BY quantity DESC, device_id, customer) AS rank
    FROM per_device
)
SELECT meter_id, device_id, customer, quantity FROM ranked WHERE rank <= %(top)s ORDER BY meter_id, rank
"""

# Each device's quantity per local day of its customer, then, for each day of the report, the
# median of the same device's days in the 30 before (only days with usage). The median of a sorted
# array a of n values is (a[(n+1)/2] + a[(n+2)/2]) / 2 in integer division: the middle value, or the
# mean of the two middle ones; in numeric, never a float.
ANOMALIES_SQL = """
WITH daily AS MATERIALIZED (
    SELECT e.meter_id, e.device_id, c.external_id AS customer,
           (e."timestamp" AT TIME ZONE c.timezone)::date AS day, {quantity} AS quantity
    FROM usage_event e
    JOIN catalog_meter m ON m.id = e.meter_id
    JOIN subscriptions_subscription s ON s.id = e.subscription_id
    JOIN customers_customer c ON c.id = s.customer_id
    WHERE e.tenant_id = %(tenant)s AND e.meter_id = ANY(%(meters)s::uuid[])
      AND e."timestamp" >= %(history_lo)s AND e."timestamp" < %(hi)s AND e.device_id <> ''
      AND e.properties @> m.filters
    GROUP BY e.meter_id, m.aggregation, m.field, e.device_id, c.external_id, 4
), baseline AS (
    SELECT d.*, b.days, (b.sorted[(b.days + 1) / 2] + b.sorted[(b.days + 2) / 2]) / 2 AS median
    FROM daily d
    CROSS JOIN LATERAL (
        SELECT count(*)::int AS days, array_agg(h.quantity ORDER BY h.quantity) AS sorted
        FROM daily h
        WHERE h.meter_id = d.meter_id AND h.device_id = d.device_id AND h.customer = d.customer
          AND h.day >= d.day - %(window)s AND h.day < d.day
    ) b
    WHERE d.day >= %(first_day)s AND d.day <= %(last_day)s
)
SELECT meter_id, device_id, customer, day, quantity, median FROM baseline
WHERE days >= %(min_days)s AND median > 0 AND quantity > %(factor)s * median
ORDER BY meter_id, day DESC, quantity / median DESC, device_id
"""


def _run(sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    with reads_connection().cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


@replica_report
def usage_statistics(
    *, tenant: Tenant, start: date, end: date, meter_code: str | None = None, group_by: str | None = None
) -> list[MeterUsage]:
    """The statistics of the tenant's meters (or of ``meter_code`` alone) for the calendar months
    from ``start``'s to ``end``'s (tenant's time zone), grouped by ``group_by`` (one of
    ``GROUP_BY``, or None for no group). At most eight statements."""
    meters = list(Meter.objects.filter(tenant=tenant, **({"code": meter_code} if meter_code else {})))
    if not meters:
        return []
    windows = _windows(start, end, tenant.timezone)
    whole = [_Window(windows[0].month, windows[0].start, windows[-1].end)]
    lo, hi = whole[0].start, whole[0].end
    distinct = [str(m.pk) for m in meters if m.aggregation == Aggregation.UNIQUE_COUNT]
    rolled = [str(m.pk) for m in meters if m.aggregation != Aggregation.UNIQUE_COUNT]
    base = {"tenant": str(tenant.pk), "lo": lo, "hi": hi}

    def quantities(group: str | None, spans: Sequence[_Window]) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = []
        if rolled:
            sql = ROLLUP_SQL.format(group=_ROLLUP_GROUP[group])
            rows += _run(sql, {**base, "meters": rolled, **_pieces(spans)})
        if distinct:
            sql = EVENT_SQL.format(group=_EVENT_GROUP[group], quantity=_EVENT_QUANTITY)
            spans_params = {
                "w_month": [w.month for w in spans],
                "w_lo": [w.start for w in spans],
                "w_hi": [w.end for w in spans],
            }
            rows += _run(sql, {**base, "meters": distinct, **spans_params})
        return rows

    all_meters = [str(m.pk) for m in meters]
    # Top devices and anomalies read the raw events, from the anomalies' history on.
    raw_events_check(start=lo - timedelta(days=ANOMALY_WINDOW_DAYS + 1), end=hi)
    monthly = quantities(group_by, windows)
    totals = monthly if group_by is None else quantities(None, windows)
    by_customer = quantities("customer", whole)
    devices = _run(TOP_DEVICES_SQL.format(quantity=_EVENT_QUANTITY), {**base, "meters": all_meters, "top": TOP})
    anomalies = _run(
        ANOMALIES_SQL.format(quantity=_EVENT_QUANTITY),
        {
            **base,
            "meters": all_meters,
            # A day before the first local midnight covers every time zone's day.
            "history_lo": lo - timedelta(days=ANOMALY_WINDOW_DAYS + 1),
            "first_day": windows[0].month,
            "last_day": _last_local_day(windows[-1]),
            "window": ANOMALY_WINDOW_DAYS,
            "min_days": ANOMALY_MIN_DAYS,
            "factor": ANOMALY_FACTOR,
        },
    )
    customers = _customer_names(tenant, {str(row[2]) for row in by_customer} | _group_ids(group_by, monthly))
    return [
        _meter_usage(meter, windows, group_by, monthly, totals, by_customer, devices, anomalies, customers)
        for meter in sorted(meters, key=lambda m: m.code)
    ]


def _last_local_day(window: _Window) -> date:
    """The last day of the window's month."""
    year, month = add_months(window.month.year, window.month.month, 1)
    return date(year, month, 1) - DAY


def _group_ids(group_by: str | None, rows: Sequence[tuple[Any, ...]]) -> set[str]:
    return {str(row[2]) for row in rows} if group_by == "customer" else set()


def _customer_names(tenant: Tenant, ids: set[str]) -> dict[str, tuple[str, str]]:
    """Customer id -> (external id, name), in one query."""
    if not ids:
        return {}
    rows = Customer.objects.filter(tenant=tenant, pk__in=[UUID(i) for i in ids]).values_list(
        "pk", "external_id", "name"
    )
    return {str(pk): (external_id, name) for pk, external_id, name in rows}


def _meter_usage(
    meter: Meter,
    windows: Sequence[_Window],
    group_by: str | None,
    monthly: Sequence[tuple[Any, ...]],
    totals: Sequence[tuple[Any, ...]],
    by_customer: Sequence[tuple[Any, ...]],
    devices: Sequence[tuple[Any, ...]],
    anomalies: Sequence[tuple[Any, ...]],
    customers: dict[str, tuple[str, str]],
) -> MeterUsage:
    pk = meter.pk
    groups: dict[date, list[UsageGroup]] = defaultdict(list)
    for month, meter_id, group, quantity in monthly:
        if meter_id != pk or group_by is None:
            continue
        if group_by == "customer":
            external_id, name = customers.get(str(group), ("", ""))
            groups[month].append(UsageGroup(external_id, name, Decimal(quantity)))
        else:
            groups[month].append(UsageGroup(str(group), "", Decimal(quantity)))
    total = {month: Decimal(q) for month, meter_id, _, q in totals if meter_id == pk}
    months = [
        UsageMonth(
            month=w.month,
            quantity=total.get(w.month, Decimal(0)),
            groups=sorted(groups.get(w.month, []), key=lambda g: (-g.quantity, g.group)),
        )
        for w in windows
    ]
    top = sorted(
        (
            TopCustomer(*customers.get(str(group), ("", "")), quantity=Decimal(q))
            for _, meter_id, group, q in by_customer
            if meter_id == pk and Decimal(q) > 0
        ),
        key=lambda t: (-t.quantity, t.customer),
    )[:TOP]
    return MeterUsage(
        meter=meter.code,
        name=meter.name,
        aggregation=meter.aggregation,
        months=months,
        top_customers=top,
        top_devices=[TopDevice(d, c, Decimal(q)) for meter_id, d, c, q in devices if meter_id == pk],
        anomalies=[
            Anomaly(d, c, day, Decimal(q), Decimal(median), _ratio(Decimal(q), Decimal(median)))
            for meter_id, d, c, day, q, median in anomalies
            if meter_id == pk
        ][:MAX_ANOMALIES],
    )


def _ratio(quantity: Decimal, median: Decimal) -> Decimal:
    return (quantity / median).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class MeterMonths:
    """One meter's quantity in each month, the figures of the usage statistics' ``months``."""

    meter: str
    name: str
    aggregation: str
    months: list[UsageMonth]  # without groups


@replica_report
def usage_by_meter(*, tenant: Tenant, start: date, end: date) -> list[MeterMonths]:
    """Each meter's quantity per calendar month from ``start``'s to ``end``'s (tenant's time zone),
    as ``usage_statistics`` counts it (same statements, no group), without its top lists and
    anomalies; meters by code. At most three statements."""
    meters = list(Meter.objects.filter(tenant=tenant).order_by("code"))
    if not meters:
        return []
    windows = _windows(start, end, tenant.timezone)
    base = {"tenant": str(tenant.pk), "lo": windows[0].start, "hi": windows[-1].end}
    distinct = [str(m.pk) for m in meters if m.aggregation == Aggregation.UNIQUE_COUNT]
    rolled = [str(m.pk) for m in meters if m.aggregation != Aggregation.UNIQUE_COUNT]
    rows: list[tuple[Any, ...]] = []
    if rolled:
        rows += _run(ROLLUP_SQL.format(group=_ROLLUP_GROUP[None]), {**base, "meters": rolled, **_pieces(windows)})
    # Unique counts come from the raw events: a month whose raw events are archived has none here.
    archived = (
        [month_bounds(m) for m in archived_overlap(start=windows[0].start, end=windows[-1].end)] if distinct else []
    )
    online = [w for w in windows if not any(lo < w.end and hi > w.start for lo, hi in archived)]
    if distinct and online:
        spans = {
            "w_month": [w.month for w in online],
            "w_lo": [w.start for w in online],
            "w_hi": [w.end for w in online],
        }
        sql = EVENT_SQL.format(group=_EVENT_GROUP[None], quantity=_EVENT_QUANTITY)
        rows += _run(sql, {**base, "meters": distinct, **spans})
    totals = {(meter_id, month): Decimal(quantity) for month, meter_id, _, quantity in rows}
    return [
        MeterMonths(
            meter=m.code,
            name=m.name,
            aggregation=m.aggregation,
            months=[UsageMonth(w.month, totals.get((m.pk, w.month), Decimal(0)), []) for w in windows],
        )
        for m in meters
    ]


__all__ = [
    "ANOMALY_FACTOR",
    "GROUP_BY",
    "Anomaly",
    "MeterMonths",
    "MeterUsage",
    "TopCustomer",
    "TopDevice",
    "UsageGroup",
    "UsageMonth",
    "usage_by_meter",
    "usage_statistics",
]
