"""Meters: how usage events are aggregated into the quantities that usage components bill."""

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction

from billing_platform.errors import FieldError
from billing_platform.validation import FieldErrors
from catalog.errors import CodeTaken
from catalog.models import Aggregation, Meter
from catalog.services._validation import audit, check_choice, check_code
from tenancy.actors import Actor
from tenancy.models import Tenant
from tenancy.services import audit_record

TIME_RE = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
OFF_PEAK = "off_peak"


# The aggregations that read a number from each event: only their events can carry a negative one.
VALUED_AGGREGATIONS = (Aggregation.SUM, Aggregation.MAX, Aggregation.LATEST)


def _validate_accepts_negative(*, aggregation: str, accepts_negative: Any, errors: FieldErrors) -> None:
    if not isinstance(accepts_negative, bool):
        errors.add("accepts_negative", "invalid", "accepts_negative is true or false.")
    elif accepts_negative and aggregation in Aggregation.values and aggregation not in VALUED_AGGREGATIONS:
        errors.add(
            "accepts_negative",
            "not_allowed",
            "A %s meter reads no number from its events; only sum, max and latest meters can accept negative "
            "values." % aggregation,
        )


def _validate_meter_fields(
    *, aggregation: str, field: str, filters: Any, dimensions: Any, time_bands: Any, errors: FieldErrors
) -> None:
    check_choice(aggregation, Aggregation.values, "aggregation", errors)
    if aggregation == Aggregation.COUNT and field:
        errors.add("field", "not_allowed", "A count meter counts events; it has no field.")
    if aggregation in Aggregation.values and aggregation != Aggregation.COUNT and not field:
        errors.add("field", "required", "A %s meter needs the event property to aggregate." % aggregation)
    if not isinstance(filters, dict) or not all(
        isinstance(k, str) and isinstance(v, str | int | float | bool) for k, v in filters.items()
    ):
        errors.add("filters", "invalid", 'Filters are {"property": "value"} pairs.')
    if not isinstance(dimensions, list) or not all(isinstance(d, str) and d for d in dimensions):
        errors.add("dimensions", "invalid", "Dimensions are a list of event property names.")
    elif len(set(dimensions)) != len(dimensions):
        errors.add("dimensions", "duplicate", "Each dimension once.")
    elif "time_band" in dimensions:
        errors.add("dimensions", "reserved", "time_band is derived from time_bands; do not list it.")
    if not isinstance(time_bands, dict):
        errors.add("time_bands", "invalid", 'Time bands are {"peak": ["08:00", "20:00"]}.')
        return
    for name, band in time_bands.items():
        if name == OFF_PEAK:
            errors.add(f"time_bands.{name}", "reserved", "off_peak is every time outside the bands.")
        elif not (
            isinstance(band, list) and len(band) == 2 and all(isinstance(t, str) and TIME_RE.match(t) for t in band)
        ):
            errors.add(f"time_bands.{name}", "invalid", 'A band is ["HH:MM", "HH:MM"], start included, end excluded.')
        elif band[0] == band[1]:
            errors.add(f"time_bands.{name}", "empty", "A band's start and end differ.")


def meter_create(
    *,
    tenant: Tenant,
    actor: Actor,
    at: datetime,
    code: str,
    name: str,
    aggregation: str,
    field: str = "",
    filters: Any = None,
    dimensions: Any = None,
    time_bands: Any = None,
    accepts_negative: Any = False,
) -> Meter:
    """A meter; its events' negative values are refused at ingestion unless ``accepts_negative``."""
    filters = {} if filters is None else filters
    dimensions = [] if dimensions is None else dimensions
    time_bands = {} if time_bands is None else time_bands
    errors = FieldErrors()
    check_code(code, "code", errors)
    _validate_meter_fields(
        aggregation=aggregation,
        field=field,
        filters=filters,
        dimensions=dimensions,
        time_bands=time_bands,
        errors=errors,
    )
    _validate_accepts_negative(aggregation=aggregation, accepts_negative=accepts_negative, errors=errors)
    errors.raise_if_any()
    try:
        with transaction.atomic():
            meter = Meter.objects.create(
                tenant=tenant,
                code=code,
                name=name.strip(),
                aggregation=aggregation,
                field=field,
                filters=filters,
                dimensions=dimensions,
                time_bands=time_bands,
                accepts_negative=accepts_negative,
            )
            audit(tenant, actor, at, "meter.created", "meter", code, meter_snapshot(meter))
    except IntegrityError:
        raise CodeTaken(
            "A meter with code %s already exists." % code, errors=[FieldError("code", "taken", "Taken.")]
        ) from None
    return meter


def meter_snapshot(meter: Meter) -> dict[str, Any]:
    return {
        "code": meter.code,
        "name": meter.name,
        "aggregation": meter.aggregation,
        "field": meter.field,
        "filters": meter.filters,
        "dimensions": meter.dimensions,
        "time_bands": meter.time_bands,
        "accepts_negative": meter.accepts_negative,
    }


def meter_update(*, tenant: Tenant, actor: Actor, at: datetime, code: str, changes: Mapping[str, Any]) -> Meter:
    """Only the name and ``accepts_negative`` can change: the aggregation, field, filters and
    dimensions define quantities that invoices were built from, and a different measure is a new
    meter. Whether negative values are accepted only decides which events ingestion refuses from
    now on; the events already stored stay as they are."""
    from catalog.selectors import meter_get

    errors = FieldErrors()
    for field in sorted(set(changes) - {"name", "accepts_negative"}):
        errors.add(field, "not_editable", "%s cannot be changed; create a new meter." % field)
    errors.raise_if_any()
    with transaction.atomic():
        meter = meter_get(tenant=tenant, code=code)
        before = meter_snapshot(meter)
        if "accepts_negative" in changes:
            _validate_accepts_negative(
                aggregation=meter.aggregation, accepts_negative=changes["accepts_negative"], errors=errors
            )
            errors.raise_if_any()
            meter.accepts_negative = changes["accepts_negative"]
        meter.name = str(changes.get("name", meter.name)).strip()
        meter.save()
        audit_record(
            tenant=tenant,
            actor=actor,
            action="meter.updated",
            object_type="meter",
            object_id=code,
            at=at,
            before=before,
            after=meter_snapshot(meter),
        )
    return meter
