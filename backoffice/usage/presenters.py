"""What the usage pages show: the days of the range, the series, the totals and the chart data of
the explorer, computed from the daily quantities the usage selector reads; and the labels and
payloads of the events refused at ingestion."""

import json
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext

from backoffice.formatting import quantity_display, query_string
from catalog.models import Aggregation, Meter
from usage.selectors import DailyUsage

TIME_BAND = "time_band"
# Meters whose daily quantities add up: their bars stack and their totals are sums.
ADDITIVE = frozenset({Aggregation.COUNT, Aggregation.SUM, Aggregation.UNIQUE_COUNT})

# The reasons of usage.ingest, in the order a device-cloud engineer meets them (too_deep comes
# first in ingestion, but is the rarest).
REASON_LABELS = {
    "missing_field": gettext_lazy("Missing field"),
    "unknown_meter": gettext_lazy("Unknown meter"),
    "bad_timestamp": gettext_lazy("Bad timestamp"),
    "too_old": gettext_lazy("Too old"),
    "unknown_subscription": gettext_lazy("Unknown subscription"),
    "unknown_device": gettext_lazy("Unknown device"),
    "unknown_customer": gettext_lazy("Unknown customer"),
    "ambiguous_customer": gettext_lazy("Ambiguous customer"),
    "meter_not_in_plan": gettext_lazy("Meter not in plan"),
    "value_not_a_number": gettext_lazy("Value not a number"),
    "value_out_of_range": gettext_lazy("Value out of range"),
    "too_deep": gettext_lazy("Nested too deep"),
}


def split_choices(meter: Meter | None) -> list[tuple[str, str]]:
    """What a meter's usage can be split by: its dimensions, and its time bands when it has some."""
    if meter is None:
        return []
    choices = [(str(d), str(d)) for d in meter.dimensions or []]
    if meter.time_bands:
        choices.append((TIME_BAND, _("Time band")))
    return choices


def _json_number(value: Decimal | None) -> int | float | None:
    if value is None:
        return None
    return int(value) if value == value.to_integral_value() else float(value)


def _combine(values: Sequence[tuple[Decimal | None, datetime | None]], aggregation: str) -> Decimal | None:
    """Several quantities as one: their sum, their maximum, or the one measured last."""
    present = [(v, at) for v, at in values if v is not None]
    if not present:
        return None
    if aggregation == Aggregation.MAX:
        return max(v for v, _at in present)
    if aggregation == Aggregation.LATEST:
        dated = [(v, at) for v, at in present if at is not None]
        return max(dated, key=lambda p: p[1])[0] if dated else present[-1][0]
    return sum((v for v, _at in present), Decimal(0))


def quantity_note(meter: Meter) -> str:
    """What the quantity of a day is, for this meter's aggregation."""
    field = "properties.%s" % meter.field
    if meter.aggregation == Aggregation.SUM:
        return _("Quantity: the sum of %(field)s.") % {"field": field}
    if meter.aggregation == Aggregation.MAX:
        return _("Quantity: the highest %(field)s of the day.") % {"field": field}
    if meter.aggregation == Aggregation.LATEST:
        return _("Quantity: the last %(field)s reported in the day.") % {"field": field}
    if meter.aggregation == Aggregation.UNIQUE_COUNT:
        return _("Quantity: the number of events.")
    if meter.filters:
        return _("Quantity: the number of events that match the meter's filters.")
    return _("Quantity: the number of events.")


def usage_panel(rows: Sequence[DailyUsage], *, meter: Meter, split: str, start: date, end: date) -> dict[str, Any]:
    """The chart data and the table (day x series, with totals) of the explorer, from the daily
    quantities of the range."""
    aggregation = meter.aggregation
    keys = sorted({r.series for r in rows}, key=lambda s: (s == "", s))
    cells = {(r.day, r.series): (r.quantity, r.latest_at) for r in rows}
    days = [start + timedelta(days=n) for n in range((end - start).days + 1)]
    labels = [(k or _("(not set)")) if split else meter.name for k in keys]
    if aggregation == Aggregation.MAX:
        total_label = _("Highest")
    elif aggregation == Aggregation.LATEST:
        total_label = _("Latest")
    else:
        total_label = pgettext("usage quantity", "Total")

    table_rows = []
    for day in days:
        values = [cells.get((day, k), (None, None)) for k in keys]
        table_rows.append(
            {
                "day": day,
                "cells": [quantity_display(v) for v, _at in values],
                "total": quantity_display(_combine(values, aggregation)),
            }
        )
    columns = [[cells.get((day, k), (None, None)) for day in days] for k in keys]
    totals = [quantity_display(_combine(column, aggregation)) for column in columns]
    grand = quantity_display(_combine([(r.quantity, r.latest_at) for r in rows], aggregation))
    chart = {
        "labels": [d.isoformat() for d in days],
        "datasets": [
            {"label": str(label), "data": [_json_number(v) for v, _at in column]}
            for label, column in zip(labels, columns, strict=True)
        ],
        "stacked": aggregation in ADDITIVE,
    }
    return {
        "has_usage": bool(rows),
        "chart": chart,
        "columns": labels if split else [_("Quantity")],
        "total_label": total_label,
        "quantity_note": quantity_note(meter),
        "rows": table_rows,
        "totals": totals,
        "grand": grand,
    }


def reason_tabs(counts: dict[str, int], *, reason: str, search: str) -> list[dict[str, Any]]:
    """The tabs above the refused events: all, then each reason with events (and the one chosen),
    the known reasons first, each keeping the search."""
    tabs = [{"reason": "", "label": _("All"), "count": sum(counts.values()), "query": query_string(q=search)}]
    known = list(REASON_LABELS) + sorted(set(counts) - set(REASON_LABELS))
    tabs += [
        {
            "reason": r,
            "label": REASON_LABELS.get(r, r),
            "count": counts.get(r, 0),
            "query": query_string(reason=r, q=search),
        }
        for r in known
        if counts.get(r) or r == reason
    ]
    return tabs


def pretty_payload(payload: Any) -> str:
    return json.dumps(payload, indent=2, ensure_ascii=False, sort_keys=True)
