"""Bill-time aggregation: exact quantities computed in SQL over the RAW events of a period.

Invoicing reads usage through this module (the rollups serve live usage, ``usage.measure``; both
must agree: pitfall #8). Every query

- is one statement, with every value bound as a parameter (dimension and field names included);
- selects on the half-open period ``[period.start, period.end)`` on ``"timestamp"``, the partition
  key of ``usage_event``, so PostgreSQL prunes the monthly partitions outside the period. The
  period's bounds are the customer's local midnights (``billing_platform.periods``), so a period
  is cut in the customer's time zone, DST included (pitfall #2);
- applies the meter's ``filters`` (``properties @> filters``), as ingestion does for the rollups.

Aggregations: ``count`` → number of events; ``sum`` → Σ value; ``max`` → max value; ``unique_count``
→ number of distinct ``properties ->> field``; ``latest`` → the value of the latest event by
timestamp (ties: the event stored last). A period without events aggregates to 0.
"""

import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from typing import Any

from django.db import connection

from billing_platform.periods import Period
from catalog.models import Aggregation, Meter
from usage.archive import raw_events_check

# The quantity expression of each aggregation over ``usage_event e``; ``{field}`` is the placeholder
# of the meter's field (unique_count), filled with a bound parameter, never with the field's text.
QUANTITY_SQL: dict[str, str] = {
    Aggregation.COUNT: "count(*)",
    Aggregation.SUM: "coalesce(sum(e.value), 0)",
    Aggregation.MAX: "coalesce(max(e.value), 0)",
    Aggregation.UNIQUE_COUNT: "count(DISTINCT e.properties ->> {field})",
    Aggregation.LATEST: 'coalesce((array_agg(e.value ORDER BY e."timestamp" DESC, e.id DESC))[1], 0)',
}


@dataclass(frozen=True)
class AggregateRow:
    """One group of a period's events: its dimension values (only the properties the events carry),
    its time band ("" when not grouped by band), the aggregated quantity and the number of events.
    ``device_id`` is set only when grouped by device."""

    dimensions: dict[str, str]
    time_band: str
    quantity: Decimal
    event_count: int
    device_id: str = field(default="")


def _uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def _dimension_names(meter: Meter, group_by_dimensions: bool | Sequence[str]) -> list[str]:
    if group_by_dimensions is True:
        return [str(d) for d in meter.dimensions]
    if group_by_dimensions is False:
        return []
    return [str(d) for d in group_by_dimensions]


def aggregate(
    *,
    subscription_ids: Sequence[Any],
    meter: Meter,
    period: Period,
    group_by_dimensions: bool | Sequence[str] = False,
    by_time_band: bool = False,
    group_by_device: bool = False,
) -> list[AggregateRow]:
    """The meter's quantity over the subscriptions' events of ``period``, pooled across them.

    Not grouped: exactly one row (quantity 0 when there is no event). Grouped by the meter's
    dimensions (``True``, or an explicit list of property names), by time band and/or by device:
    one row per group that has events, ordered by group. Dimension values are the properties'
    text (``properties ->> 'region'``); a property an event lacks is left out of its row's
    ``dimensions``, as in the rollups. One SQL statement.
    """
    dims = _dimension_names(meter, group_by_dimensions)
    params: dict[str, Any] = {
        "tenant": meter.tenant_id,
        "meter": meter.pk,
        "subscriptions": [str(_uuid(s)) for s in subscription_ids],
        "start": period.start,
        "end": period.end,
        "field": meter.field,
    }
    columns: list[str] = []
    for i, name in enumerate(dims):
        params[f"dim{i}"] = name
        columns.append(f"e.properties ->> %(dim{i})s")
    columns.append("e.time_band" if by_time_band else "''")
    columns.append("e.device_id" if group_by_device else "''")
    quantity = QUANTITY_SQL[meter.aggregation].format(field="%(field)s")
    where = [
        "e.tenant_id = %(tenant)s",
        "e.meter_id = %(meter)s",
        "e.subscription_id = ANY(%(subscriptions)s::uuid[])",
        'e."timestamp" >= %(start)s',
        'e."timestamp" < %(end)s',
    ]
    if meter.filters:
        params["filters"] = json.dumps(meter.filters)
        where.append("e.properties @> %(filters)s::jsonb")
    grouped = bool(dims) or by_time_band or group_by_device
    # Grouped by position: the same bound parameter twice would be two different expressions.
    positions = ", ".join(str(i) for i in range(1, len(columns) + 1))
    sql = "SELECT {columns}, {quantity}, count(*) FROM usage_event e WHERE {where}{group}".format(
        columns=", ".join(columns),
        quantity=quantity,
        where=" AND ".join(where),
        group=f" GROUP BY {positions}" if grouped else "",
    )
    if not params["subscriptions"]:
        return [] if grouped else [AggregateRow({}, "", Decimal(0), 0)]
    raw_events_check(start=period.start, end=period.end)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    n = len(dims)
    result = [
        AggregateRow(
            dimensions={name: value for name, value in zip(dims, row[:n], strict=True) if value is not None},
            time_band=row[n],
            quantity=Decimal(row[n + 2]),
            event_count=int(row[n + 3]),
            device_id=row[n + 1],
        )
        for row in rows
    ]
    return sorted(result, key=lambda r: _order(dims, r))


def _order(dims: Sequence[str], row: AggregateRow) -> tuple[Any, ...]:
    """Groups in a stable order, the same whichever query made them: by each dimension's value
    (a missing one last), then time band, then device; by code point, not the database's collation."""
    values = tuple((name not in row.dimensions, row.dimensions.get(name, "")) for name in dims)
    return (*values, row.time_band, row.device_id)


# All meters of one aggregation kind in one statement: each meter's filters, dimensions and field
# come from an unnested parameter list joined to the events.
MANY_SQL = """
WITH m AS (
    SELECT * FROM unnest(%(meters)s::uuid[], %(filters)s::jsonb[], %(dims)s::jsonb[], %(fields)s::text[])
        AS m(meter_id, filters, dims, field)
)
SELECT e.subscription_id, e.meter_id, {dimensions}, {band}, {device}, {quantity}, count(*)
FROM usage_event e JOIN m ON m.meter_id = e.meter_id
WHERE e.subscription_id = ANY(%(subscriptions)s::uuid[])
  AND e."timestamp" >= %(start)s AND e."timestamp" < %(end)s
  AND e.properties @> m.filters
GROUP BY 1, 2, 3, 4, 5
"""
DIMENSIONS_SQL = (
    "(SELECT coalesce(jsonb_object_agg(d.name, e.properties ->> d.name), '{}'::jsonb) "
    "FROM jsonb_array_elements_text(m.dims) AS d(name) WHERE e.properties ->> d.name IS NOT NULL)"
)

AggregateKey = tuple[uuid.UUID, uuid.UUID]  # (subscription id, meter id)


def aggregate_many(
    *,
    subscription_ids: Sequence[Any],
    meters: Iterable[Meter],
    period: Period,
    group_by_dimensions: bool | Sequence[str] = False,
    by_time_band: bool = False,
    group_by_device: bool = False,
) -> dict[AggregateKey, list[AggregateRow]]:
    """``aggregate`` for every subscription × meter of a bill run's period, keyed by
    ``(subscription id, meter id)``: one SQL statement per aggregation kind present among the
    meters (at most five), whatever the number of subscriptions and meters.

    Every pair has an entry. Not grouped, it is one row (quantity 0 without events); grouped by
    each meter's own dimensions (``True``) or by the same explicit property names for every meter
    (a matrix charge's), time band and/or device, one row per group with events (possibly none).
    """
    subscriptions = sorted({_uuid(s) for s in subscription_ids})
    by_kind: dict[str, list[Meter]] = {}
    for meter in meters:
        by_kind.setdefault(meter.aggregation, []).append(meter)
    grouped = bool(group_by_dimensions) or by_time_band or group_by_device
    result: dict[AggregateKey, list[AggregateRow]] = {
        (s, _uuid(m.pk)): [] for s in subscriptions for kind_meters in by_kind.values() for m in kind_meters
    }
    if not subscriptions:
        return result
    if by_kind:
        raw_events_check(start=period.start, end=period.end)
    for kind, kind_meters in by_kind.items():
        sql = MANY_SQL.format(
            dimensions=DIMENSIONS_SQL if group_by_dimensions else "'{}'::jsonb",
            band="e.time_band" if by_time_band else "''",
            device="e.device_id" if group_by_device else "''",
            quantity=QUANTITY_SQL[kind].format(field="m.field"),
        )
        params: dict[str, Any] = {
            "meters": [str(m.pk) for m in kind_meters],
            "filters": [json.dumps(m.filters or {}) for m in kind_meters],
            "dims": [json.dumps(_dimension_names(m, group_by_dimensions)) for m in kind_meters],
            "fields": [m.field for m in kind_meters],
            "subscriptions": [str(s) for s in subscriptions],
            "start": period.start,
            "end": period.end,
        }
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        for subscription_id, meter_id, dimensions, band, device_id, quantity, count in rows:
            dims = json.loads(dimensions) if isinstance(dimensions, str) else dimensions
            result[(_uuid(subscription_id), _uuid(meter_id))].append(
                AggregateRow(dict(dims), band, Decimal(quantity), int(count), device_id)
            )
    dims_of = {_uuid(m.pk): _dimension_names(m, group_by_dimensions) for ms in by_kind.values() for m in ms}
    for (_, meter_id), rows_of_key in result.items():
        if not grouped and not rows_of_key:
            rows_of_key.append(AggregateRow({}, "", Decimal(0), 0))
        rows_of_key.sort(key=partial(_order, dims_of[meter_id]))
    return result


LATE_SQL = """
SELECT DISTINCT e.subscription_id, e.meter_id FROM usage_event e
WHERE e.late AND e.subscription_id = ANY(%(subscriptions)s::uuid[]) AND e.meter_id = ANY(%(meters)s::uuid[])
  AND e."timestamp" >= %(start)s AND e."timestamp" < %(end)s
"""


def with_late_events(*, subscription_ids: Sequence[Any], meter_ids: Sequence[Any], period: Period) -> set[AggregateKey]:
    """The (subscription, meter) pairs that received late events in ``period``: events stored after
    the period had closed, which its invoice may not have counted. One statement on a partial
    index of the late events; the others need no re-measuring. A month is archived only once no
    event of it can be accepted and its late events are invoiced (``usage.archive``): finding none
    there is the right answer, so it is not checked here."""
    if not subscription_ids or not meter_ids:
        return set()
    params: dict[str, Any] = {
        "subscriptions": [str(_uuid(s)) for s in subscription_ids],
        "meters": [str(_uuid(m)) for m in meter_ids],
        "start": period.start,
        "end": period.end,
    }
    with connection.cursor() as cursor:
        cursor.execute(LATE_SQL, params)
        return {(_uuid(s), _uuid(m)) for s, m in cursor.fetchall()}
