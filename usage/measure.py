"""The quantity of a meter over a subscription's period, as current usage and invoices measure it.

Quantities come from the rollups (15-minute buckets whose edges include every local midnight, so
summing the buckets of ``[period.start, period.end)`` is exact); ``unique_count``, which rollups
cannot give, and any window not on a bucket edge are read from the raw events with
``usage.aggregation.aggregate``, the function invoicing uses. Both read the same deduplicated,
filtered events, so what the customer sees is what the invoice bills (pitfall #8). For a matrix
charge, the quantity of each group of its dimensions (and time band) is measured too.
"""

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Context, Decimal, localcontext

from billing_platform.periods import Period
from catalog.charge_models.allowance import not_negative
from catalog.charge_models.base import Usage
from catalog.models import Aggregation, Meter
from subscriptions.models import Subscription
from usage.aggregation import AggregateRow, aggregate
from usage.selectors import RollupGroup

TIME_BAND = "time_band"


def quantity_plain(value: Decimal) -> Decimal:
    """Without trailing zeros (numeric(38, 10) reads back as 5000.0000000000), never rounded."""
    with localcontext(Context(prec=80)):
        normal = value.normalize()
        # 2E+2 would make 200 x 0.003 read "0.6": integers keep exponent 0
        exponent = normal.as_tuple().exponent
        return normal.quantize(Decimal(1)) if isinstance(exponent, int) and exponent > 0 else normal


def rollups_combine(aggregation: str, groups: Sequence[RollupGroup]) -> tuple[Decimal, int]:
    """The quantity and event count of rollup groups taken together, for one aggregation."""
    count = sum(g.event_count for g in groups)
    if aggregation == Aggregation.COUNT:
        return Decimal(count), count
    if aggregation == Aggregation.SUM:
        return sum((g.value_sum for g in groups), Decimal(0)), count
    if aggregation == Aggregation.MAX:
        return max((g.value_max for g in groups if g.value_max is not None), default=Decimal(0)), count
    if aggregation == Aggregation.LATEST:
        dated = [(g.latest_at, g.latest_value) for g in groups if g.latest_at is not None]
        latest = max(dated, key=lambda pair: pair[0], default=None)
        return (latest[1] if latest is not None and latest[1] is not None else Decimal(0)), count
    raise ValueError("rollups cannot aggregate %s" % aggregation)


def _group_key(dimensions: Mapping[str, str], band: str, names: Sequence[str]) -> tuple[str, ...]:
    return tuple(band if name == TIME_BAND else str(dimensions.get(name, "")) for name in names)


@dataclass(frozen=True)
class Measured:
    """A usage component's period as measured: the meter's quantity and event count, and for a
    matrix charge the same split by the matrix's dimensions (time band included)."""

    quantity: Decimal
    event_count: int
    groups: dict[tuple[str, ...], Usage]  # by the matrix's dimensions, when the charge is a matrix


def _group_usage(quantity: Decimal, event_count: int) -> Usage:
    """A matrix group as its cell prices it: a group that a meter accepting negative values measured
    below zero bills nothing (``not_negative``)."""
    return Usage(quantity=quantity_plain(not_negative(quantity)), event_count=event_count)


def usage_measured_from_rows(
    *, total: AggregateRow, groups: Sequence[AggregateRow] | None, matrix_dimensions: Sequence[str] | None
) -> Measured:
    """What ``usage_measure`` gives from the raw events, from rows read already: ``total``, the
    period's ungrouped row, and ``groups``, its rows grouped by the matrix's dimensions and time
    band (``usage.aggregation.aggregate`` or ``aggregate_many``)."""
    split: dict[tuple[str, ...], Usage] = {}
    if matrix_dimensions is not None:
        for row in groups or ():
            split[_group_key(row.dimensions, row.time_band, matrix_dimensions)] = _group_usage(
                row.quantity, row.event_count
            )
    return Measured(quantity_plain(total.quantity), total.event_count, split)


def matrix_grouping(matrix_dimensions: Sequence[str]) -> tuple[list[str], bool]:
    """What groups the raw events of a matrix charge: its event properties, and whether its time band is one."""
    return [d for d in matrix_dimensions if d != TIME_BAND], TIME_BAND in matrix_dimensions


def usage_measure(
    *,
    subscription: Subscription,
    meter: Meter,
    period: Period,
    rollups: Sequence[RollupGroup] | None,
    matrix_dimensions: Sequence[str] | None,
) -> Measured:
    """The period's quantity of ``meter``: from the rollups when given, else from the raw events."""
    groups: dict[tuple[str, ...], Usage] = {}
    if rollups is not None:
        quantity, count = rollups_combine(meter.aggregation, rollups)
        if matrix_dimensions is not None:
            split: dict[tuple[str, ...], list[RollupGroup]] = defaultdict(list)
            for g in rollups:
                split[_group_key(g.dimensions, g.time_band, matrix_dimensions)].append(g)
            for key, items in sorted(split.items()):
                groups[key] = _group_usage(*rollups_combine(meter.aggregation, items))
        return Measured(quantity_plain(quantity), count, groups)
    [total] = aggregate(subscription_ids=[subscription.pk], meter=meter, period=period)
    rows = None
    if matrix_dimensions is not None:
        names, by_band = matrix_grouping(matrix_dimensions)
        rows = aggregate(
            subscription_ids=[subscription.pk],
            meter=meter,
            period=period,
            group_by_dimensions=names,
            by_time_band=by_band,
        )
    return usage_measured_from_rows(total=total, groups=rows, matrix_dimensions=matrix_dimensions)
