"""Ingestion of usage events: validate a batch in bulk, map each event to its subscription, then
write the accepted ones with one COPY into a staging table and one statement that deduplicates on
(tenant, transaction_id), inserts the events and updates the rollups. No ORM save per event.

A batch reports one outcome per event: ``accepted``, ``duplicate`` (the transaction id was already
stored, in this batch or earlier) or ``rejected`` with a reason. Rejected events are kept in
``RejectedEvent`` and never block the accepted ones.
"""

import logging
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import partial
from typing import Any

import orjson
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

from billing_platform.generations import usage_changed_tenant
from billing_platform.json_input import json_depth_exceeds, max_json_depth
from catalog.models import Aggregation, Meter, PlanComponent, ProductKind
from catalog.time_bands import time_band_of
from customers.models import Customer
from subscriptions.models import Device, Subscription, SubscriptionStatus
from subscriptions.periods import subscription_open_period_start
from tenancy.models import Tenant
from usage.models import RejectedEvent, UsageSettings
from usage.partitions import ensure_partitions
from usage.services import usage_written

logger = logging.getLogger(__name__)

MAX_BATCH = 1000
FUTURE_TOLERANCE = timedelta(minutes=10)
# The attributes a device keeps, which an event's missing dimension of the same name takes (pricing.md).
DEVICE_ATTRIBUTES = ("device_type", "region")

# The largest value an event may carry, in absolute value (``value_out_of_range`` above it). Event
# values are summed into columns of fixed size, and a sum that overflows its column fails the whole
# statement, so the bound comes from those columns and from how many events can reach one sum:
#
# - ``usage_event.value`` and the rollups' ``value_sum``/``value_max``/``latest_value`` are
#   numeric(38, 10): below 10^28.
# - A batch is at most MAX_BATCH = 10^3 events: its sum stays below 10^3 x 10^12 = 10^15.
# - Rollup rows add up across batches. An API key sends at most 10^4 requests a second (the highest
#   rate limit a tenant can set, usage.services.USAGE_SETTINGS_LIMITS) of 10^3 events, so at most
#   8.64 x 10^11 events a day; a daily row (the larger of the two) then holds at most
#   8.64 x 10^11 x 10^12 < 10^24 per key, and it takes more than 10^4 keys sending nothing but
#   maximum values to one subscription's meter all day to reach 10^28.
# - Billing sums a period's events into ``invoice_line.quantity`` (numeric(28, 10): below 10^18) and
#   prices it into an amount (numeric(19, 4)): 10^6 events at the bound fill the quantity. No bound
#   on single events can cap a period's total, which grows with their number; a period that does
#   not fit fails that customer's bill with the reason, and the run goes on (invoicing's bill runs).
#
# 10^12 is far above any single reading a device sends (a terabyte counted in bytes).
MAX_EVENT_VALUE = Decimal(10) ** 12
MAX_EVENT_VALUE_INT = 10**12

# The staging table a batch is copied into (binary COPY): one row per valid event, without what
# is the same for the whole batch (tenant, receipt time: parameters of the statement). The JSON
# columns are text, cast once in SQL, so the rows carry the text orjson wrote.
STAGING_TABLE = """CREATE TEMP TABLE IF NOT EXISTS usage_event_staging (
    transaction_id varchar(255), meter_id uuid, subscription_id uuid, device_id varchar(200), ts timestamptz,
    value numeric(38, 10), properties text, time_band varchar(50), late boolean, dims text, counted boolean
) ON COMMIT DELETE ROWS"""
STAGING_COLUMNS = (
    ("transaction_id", "varchar"),
    ("meter_id", "uuid"),
    ("subscription_id", "uuid"),
    ("device_id", "varchar"),
    ("ts", "timestamptz"),
    ("value", "numeric"),
    ("properties", "text"),
    ("time_band", "varchar"),
    ("late", "bool"),
    ("dims", "text"),
    ("counted", "bool"),
)
# A staging row's subscription: its customers' cached current usage is retired when the batch commits.
STAGED_SUBSCRIPTION = [name for name, _ in STAGING_COLUMNS].index("subscription_id")

# Buckets are counted from this origin: 15-minute buckets and UTC days.
BUCKET_ORIGIN = "TIMESTAMPTZ '2000-01-01 00:00+00'"

# The batch's events are rolled up once per 15-minute bucket (``batch_rollups``), and those rows
# once more per UTC day, so that a daily row is always the sum of its day's 15-minute rows (the
# latest value included: ties on the timestamp are broken the same way at both levels). Both
# upserts take their rows in key order: concurrent batches lock the rows they share in the same
# order and cannot deadlock.
INSERT_SQL = (
    """
WITH new_keys AS (
    INSERT INTO usage_event_key (tenant_id, transaction_id)
    SELECT %(tenant)s, transaction_id FROM usage_event_staging
    ON CONFLICT DO NOTHING
    RETURNING transaction_id
), new_events AS (
    SELECT %(tenant)s::uuid AS tenant_id, s.transaction_id, s.meter_id, s.subscription_id, s.device_id, s.ts,
           s.value, s.properties::jsonb AS properties, s.time_band, %(received_at)s::timestamptz AS received_at,
           s.late, s.dims::jsonb AS dims, s.counted
    FROM usage_event_staging s JOIN new_keys k ON k.transaction_id = s.transaction_id
), inserted AS (
    INSERT INTO usage_event (tenant_id, transaction_id, meter_id, subscription_id, device_id, "timestamp", value,
                             properties, time_band, received_at, late)
    SELECT tenant_id, transaction_id, meter_id, subscription_id, device_id, ts, value, properties, time_band,
           received_at, late
    FROM new_events
), batch_rollups AS (
    SELECT tenant_id, subscription_id, meter_id, date_bin('15 minutes', ts, {origin}) AS bucket,
           dims, time_band, count(*) AS event_count, coalesce(sum(value), 0) AS value_sum, max(value) AS value_max,
           max(ts) AS latest_at, (array_agg(value ORDER BY ts DESC, value DESC NULLS LAST))[1] AS latest_value
    FROM new_events WHERE counted
    GROUP BY 1, 2, 3, 4, 5, 6
), rolled AS (
    INSERT INTO usage_usagerollup AS r (tenant_id, subscription_id, meter_id, bucket, dimensions, time_band,
                                        event_count, value_sum, value_max, latest_at, latest_value)
    SELECT tenant_id, subscription_id, meter_id, bucket, dims, time_band, event_count, value_sum, value_max,
           latest_at, latest_value
    FROM batch_rollups
    ORDER BY subscription_id, meter_id, bucket, dims, time_band
    ON CONFLICT (subscription_id, meter_id, bucket, dimensions, time_band) DO UPDATE SET {merge}
), rolled_daily AS (
    INSERT INTO usage_usagedailyrollup AS r (tenant_id, subscription_id, meter_id, day, dimensions, time_band,
                                             event_count, value_sum, value_max, latest_at, latest_value)
    SELECT tenant_id, subscription_id, meter_id, date_bin('1 day', bucket, {origin}) AS day, dims, time_band,
           sum(event_count), sum(value_sum), max(value_max), max(latest_at),
           (array_agg(latest_value ORDER BY latest_at DESC))[1]
    FROM batch_rollups
    GROUP BY 1, 2, 3, 4, 5, 6
    ORDER BY subscription_id, meter_id, day, dims, time_band
    ON CONFLICT (subscription_id, meter_id, day, dimensions, time_band) DO UPDATE SET {merge}
)
SELECT transaction_id FROM new_keys
"""
).format(
    origin=BUCKET_ORIGIN,
    # A row merged into a rollup: counts and sums add up, the later latest value wins (on a tie, the
    # batch that arrives last, as the raw aggregation's e.id DESC does).
    merge="""
        event_count = r.event_count + EXCLUDED.event_count,
        value_sum = r.value_sum + EXCLUDED.value_sum,
        value_max = GREATEST(r.value_max, EXCLUDED.value_max),
        latest_value = CASE WHEN r.latest_at IS NULL OR EXCLUDED.latest_at >= r.latest_at
                            THEN EXCLUDED.latest_value ELSE r.latest_value END,
        latest_at = GREATEST(r.latest_at, EXCLUDED.latest_at)""",
)

# The daily rollups recomputed from the 15-minute ones, from a UTC day on. The lock keeps every
# batch out meanwhile (a batch writes both tables in one statement, which locks both first).
REBUILD_DAILY_SQL = (
    "LOCK TABLE usage_usagerollup IN SHARE ROW EXCLUSIVE MODE",
    "DELETE FROM usage_usagedailyrollup WHERE tenant_id = %(tenant)s AND day >= %(since)s",
    f"""
INSERT INTO usage_usagedailyrollup (tenant_id, subscription_id, meter_id, day, dimensions, time_band,
                                    event_count, value_sum, value_max, latest_at, latest_value)
SELECT tenant_id, subscription_id, meter_id, date_bin('1 day', bucket, {BUCKET_ORIGIN}), dimensions, time_band,
       sum(event_count), sum(value_sum), max(value_max), max(latest_at),
       (array_agg(latest_value ORDER BY latest_at DESC NULLS LAST))[1]
FROM usage_usagerollup WHERE tenant_id = %(tenant)s AND bucket >= %(since)s
GROUP BY 1, 2, 3, 4, 5, 6
""",
)


@dataclass(frozen=True)
class Outcome:
    transaction_id: str
    status: str  # accepted | duplicate | rejected
    reason: str = ""
    detail: str = ""

    def as_dict(self) -> dict[str, str]:
        out = {"transaction_id": self.transaction_id, "status": self.status}
        if self.reason:
            out["reason"] = self.reason
            out["detail"] = self.detail
        return out


@dataclass
class IngestResult:
    results: list[Outcome] = field(default_factory=list)
    # The customers whose usage the batch changed (it stored at least one of their events).
    customer_ids: frozenset[Any] = frozenset()

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)


class Rejected(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason, self.detail = reason, detail


@dataclass(frozen=True)
class _DeviceVersion:
    """A device's attributes while it was on one subscription, from ``added_at`` until ``removed_at``:
    a device whose attributes change is removed and added again, so its rows are its history."""

    added_at: datetime
    removed_at: datetime | None
    attributes: dict[str, str]  # the attributes it has (an empty one is not set)


def _attributes_at(versions: Sequence[_DeviceVersion], at: datetime) -> dict[str, str]:
    """The device's attributes as they were at ``at`` (``versions`` by ``added_at``): those of the
    row it was on then; between a removal and the next addition, those of the last row before; before
    its first addition, those of its first row."""
    containing = [v for v in versions if v.added_at <= at and (v.removed_at is None or at < v.removed_at)]
    if containing:
        return containing[-1].attributes
    earlier = [v for v in versions if v.added_at <= at]
    return (earlier[-1] if earlier else versions[0]).attributes


@dataclass(frozen=True, slots=True)
class _MeterRule:
    """What validating an event of one meter needs, read once per batch from its ``Meter``."""

    pk: Any
    code: str
    field: str
    measured: bool  # sum, max, latest: the field is a number
    unique_count: bool
    accepts_negative: bool
    dimensions: tuple[str, ...]
    # Its dimensions that a device attribute fills when an event lacks them (pricing.md).
    device_dimensions: tuple[str, ...]
    filters: tuple[tuple[str, Any], ...]
    time_bands: Mapping[str, Sequence[str]]

    @classmethod
    def of(cls, meter: Meter) -> "_MeterRule":
        return cls(
            meter.pk,
            meter.code,
            meter.field,
            meter.aggregation in (Aggregation.SUM, Aggregation.MAX, Aggregation.LATEST),
            meter.aggregation == Aggregation.UNIQUE_COUNT,
            meter.accepts_negative,
            tuple(meter.dimensions),
            tuple(d for d in meter.dimensions if d in DEVICE_ATTRIBUTES),
            tuple(meter.filters.items()),
            meter.time_bands,
        )


@dataclass(frozen=True, slots=True)
class _Target:
    """A live subscription as events reach it: the meters its plan bills, its customer's time zone
    and customer id, and the start of its period open at receipt (earlier events are late)."""

    pk: Any
    external_id: str
    meter_ids: frozenset[Any]
    customer_id: Any
    timezone: str
    open_period_start: datetime


@dataclass
class _Context:
    """Everything a batch needs, loaded with a handful of set-based queries."""

    tenant: Tenant
    received_at: datetime
    max_age: timedelta
    meters: dict[str, _MeterRule]
    by_external_id: dict[str, Subscription]
    by_device: dict[str, tuple[Subscription, str]]
    by_customer: dict[str, list[Subscription]]
    plan_meters: dict[Any, frozenset[Any]]
    # The attribute history of the devices whose events lack a dimension their meter takes from
    # the device: by device id, ordered by the time each row was added.
    devices: dict[str, list[_DeviceVersion]] = field(default_factory=dict)
    targets: dict[Any, _Target] = field(default_factory=dict)

    def target(self, subscription: Subscription) -> _Target:
        """The subscription as events reach it, computed once per subscription and batch. Its open
        period is that of its own plan (a month, a quarter, a year)."""
        target = self.targets.get(subscription.pk)
        if target is None:
            customer: Customer = subscription.customer
            target = _Target(
                subscription.pk,
                subscription.external_id,
                self.plan_meters.get(subscription.plan_id, frozenset()),
                customer.pk,
                customer.timezone,
                subscription_open_period_start(subscription, at=self.received_at),
            )
            self.targets[subscription.pk] = target
        return target

    def with_device_dimensions(
        self, properties: Mapping[str, Any], *, meter: _MeterRule, device_id: str, at: datetime
    ) -> Mapping[str, Any]:
        """``properties`` with each dimension of ``meter`` the event lacks (or sends as null) taken
        from the device it names, as the device was at ``at`` (pricing.md): a device registered as
        a probe is priced as a probe without every event saying so. The stored event carries the
        value, so its rollups, current usage and the invoice all read the same."""
        missing = [d for d in meter.device_dimensions if properties.get(d) is None]
        versions = self.devices.get(device_id)
        if not missing or not versions:
            return properties
        attributes = _attributes_at(versions, at)
        filled = {d: attributes[d] for d in missing if d in attributes}
        return {**properties, **filled} if filled else properties


def _load_context(
    tenant: Tenant, events: Sequence[Any], received_at: datetime, settings: UsageSettings | None
) -> _Context:
    # The names the batch uses, gathered in one pass over it.
    codes: set[str] = set()
    external_ids: set[str] = set()
    device_ids: set[str] = set()
    customer_ids: set[str] = set()
    for e in events:
        if isinstance(e, Mapping):
            for key, names in (
                ("code", codes),
                ("external_subscription_id", external_ids),
                ("device_id", device_ids),
                ("external_customer_id", customer_ids),
            ):
                value = e.get(key)
                if isinstance(value, str):
                    names.add(value)
    if settings is None:
        settings, _ = UsageSettings.objects.get_or_create(tenant=tenant)
    meters = {m.code: _MeterRule.of(m) for m in Meter.objects.filter(tenant=tenant, code__in=codes)}
    # The customer and plan come in the same query: zone, billing day and interval give the open period.
    live = Subscription.objects.filter(tenant=tenant, status__in=SubscriptionStatus.LIVE).select_related(
        "customer", "plan"
    )
    by_external_id = {s.external_id: s for s in live.filter(external_id__in=external_ids)} if external_ids else {}
    # Devices come as (id, subscription) pairs; their few subscriptions are loaded once, not per device.
    device_rows = (
        list(
            Device.objects.filter(
                tenant=tenant,
                device_id__in=device_ids,
                removed_at__isnull=True,
                subscription__status__in=SubscriptionStatus.LIVE,
            )
            .exclude(device_id="")  # a slot (ordered, not shipped) is no device an event can name
            .values_list("device_id", "subscription_id")
        )
        if device_ids
        else []
    )
    subscriptions = {s.pk: s for s in live.filter(pk__in={sub_id for _, sub_id in device_rows})} if device_rows else {}
    by_device = {d: (subscriptions[s], d) for d, s in device_rows if s in subscriptions}
    by_customer: dict[str, list[Subscription]] = {}
    if customer_ids:
        for s in live.filter(customer__external_id__in=customer_ids):
            by_customer.setdefault(s.customer.external_id, []).append(s)
    plans = (
        {s.plan_id for s in by_external_id.values()}
        | {s.plan_id for s, _ in by_device.values()}
        | {s.plan_id for subs in by_customer.values() for s in subs}
    )
    plan_meter_sets: dict[Any, set[Any]] = {}
    for plan_id, meter_id in PlanComponent.objects.filter(plan_id__in=plans, kind=ProductKind.USAGE).values_list(
        "plan_id", "meter_id"
    ):
        plan_meter_sets.setdefault(plan_id, set()).add(meter_id)
    return _Context(
        tenant,
        received_at,
        timedelta(days=settings.max_event_age_days),
        meters,
        by_external_id,
        by_device,
        by_customer,
        {plan: frozenset(ids) for plan, ids in plan_meter_sets.items()},
        devices=_device_history(tenant, _devices_to_fill(events, meters), meters.values()),
    )


def _devices_to_fill(events: Sequence[Any], meters: Mapping[str, _MeterRule]) -> set[str]:
    """The devices named by events that lack (or send as null) a dimension their meter takes from
    the device: only their history is read. Events that carry their dimensions, nearly all of
    them, need none."""
    if not any(m.device_dimensions for m in meters.values()):
        return set()
    wanted: set[str] = set()
    for e in events:
        if not isinstance(e, Mapping) or not isinstance(device_id := e.get("device_id"), str):
            continue
        # Not validated yet: a code that is no string (a list, an object) is rejected later, alone.
        code = e.get("code")
        meter = meters.get(code) if isinstance(code, str) else None
        properties = e.get("properties", {})
        if meter is None or not isinstance(properties, Mapping):
            continue
        if any(properties.get(d) is None for d in meter.device_dimensions):
            wanted.add(device_id)
    return wanted


def _device_history(
    tenant: Tenant, device_ids: set[str], meters: Iterable[_MeterRule]
) -> dict[str, list[_DeviceVersion]]:
    """Every row, removed ones included, of the devices named, with the attributes the meters price
    on: one query, and none when no meter has a device attribute among its dimensions."""
    wanted = sorted({d for m in meters for d in m.device_dimensions})
    if not wanted or not device_ids:
        return {}
    history: dict[str, list[_DeviceVersion]] = {}
    rows = (
        Device.objects.filter(tenant=tenant, device_id__in=device_ids)
        .exclude(device_id="")
        .order_by("device_id", "added_at", "pk")
        .values_list("device_id", "added_at", "removed_at", *wanted)
    )
    for device_id, added_at, removed_at, *values in rows:
        attributes = {name: value for name, value in zip(wanted, values, strict=True) if value}
        history.setdefault(device_id, []).append(_DeviceVersion(added_at, removed_at, attributes))
    return history


# The fields of a usage event (``POST /events``); any other is refused with reason ``unknown_field``.
EVENT_FIELDS = frozenset(
    {
        "transaction_id",
        "code",
        "timestamp",
        "external_subscription_id",
        "device_id",
        "external_customer_id",
        "properties",
    }
)


def _parse_time(value: Any) -> datetime:
    if not isinstance(value, str):
        raise Rejected("bad_timestamp", "timestamp must be an ISO 8601 string with its offset.")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise Rejected("bad_timestamp", "timestamp %r is not ISO 8601." % value[:60]) from None
    if parsed.tzinfo is None:
        raise Rejected("bad_timestamp", "timestamp needs an offset (e.g. Z or +02:00).")
    return parsed


def _number(value: Any, field_name: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise Rejected("value_not_a_number", "properties.%s must be a number." % field_name)
    if type(value) is int and -MAX_EVENT_VALUE_INT <= value <= MAX_EVENT_VALUE_INT:
        return Decimal(value)  # the common case: an integer within the bound
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise Rejected(
            "value_not_a_number", "properties.%s must be a number, not %r." % (field_name, str(value)[:40])
        ) from None
    if not number.is_finite():
        raise Rejected("value_not_a_number", "properties.%s is not a finite number." % field_name)
    if abs(number) > MAX_EVENT_VALUE:
        raise Rejected(
            "value_out_of_range",
            "properties.%s is out of range: at most %s in absolute value."
            % (field_name, format(MAX_EVENT_VALUE, ",f")),
        )
    return number


def _json_text(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def _subscription_for(event: Mapping[str, Any], meter: _MeterRule, ctx: _Context) -> tuple[Subscription, str]:
    if isinstance(event.get("external_subscription_id"), str):
        sub = ctx.by_external_id.get(event["external_subscription_id"])
        if sub is None:
            raise Rejected("unknown_subscription", "No live subscription %s." % event["external_subscription_id"][:200])
        return sub, str(event.get("device_id") or "")[:200]
    if isinstance(event.get("device_id"), str):
        found = ctx.by_device.get(event["device_id"])
        if found is None:
            raise Rejected("unknown_device", "No live subscription holds device %s." % event["device_id"][:200])
        return found
    if isinstance(event.get("external_customer_id"), str):
        candidates = [
            s
            for s in ctx.by_customer.get(event["external_customer_id"], [])
            if meter.pk in ctx.plan_meters.get(s.plan_id, frozenset())
        ]
        if not candidates:
            raise Rejected(
                "unknown_customer",
                "Customer %s has no live subscription billing meter %s."
                % (event["external_customer_id"][:200], meter.code),
            )
        if len(candidates) > 1:
            raise Rejected(
                "ambiguous_customer",
                "Customer %s has several subscriptions billing %s: send "
                "external_subscription_id or device_id." % (event["external_customer_id"][:200], meter.code),
            )
        return candidates[0], ""
    raise Rejected("missing_field", "Give external_subscription_id, device_id or external_customer_id.")


# The JSON values that hold no other: an event made only of them and of objects of them is two levels deep.
_PLAIN = frozenset({str, int, float, bool, type(None)})


def _at_most_two_levels(event: Mapping[str, Any]) -> bool:
    """Whether the event is an object whose values are plain values or flat objects (its
    ``properties``): nearly every event, and far below any nesting limit, so the full walk of
    ``json_depth_exceeds`` (several microseconds an event) is left for the others. Types are
    compared exactly: anything but a plain dict or a plain value takes the full walk."""
    for value in event.values():
        kind = type(value)
        if kind is dict:
            for inner in value.values():
                if type(inner) not in _PLAIN:
                    return False
        elif kind not in _PLAIN:
            return False
    return True


def _stage(event: Any, ctx: _Context, depth_limit: int) -> tuple[tuple[Any, ...], str, Any]:
    """Validate one event; returns its staging row (``STAGING_COLUMNS``), its transaction id and its
    customer's id, or raises ``Rejected``. The checks run in a fixed order: the first that fails
    names the reason."""
    if not isinstance(event, Mapping):
        raise Rejected("missing_field", "An event is a JSON object.")
    if not EVENT_FIELDS.issuperset(event):
        unknown = sorted(str(key) for key in event if key not in EVENT_FIELDS)
        # A misspelt "device" would otherwise leave the event without its device: refused, named.
        raise Rejected("unknown_field", "Unknown field%s: %s." % ("s" if len(unknown) > 1 else "", ", ".join(unknown)))
    if (depth_limit < 2 or not _at_most_two_levels(event)) and json_depth_exceeds(event, depth_limit):
        raise Rejected("too_deep", "The event is nested deeper than %d levels." % depth_limit)
    transaction_id = event.get("transaction_id")
    if not isinstance(transaction_id, str) or not transaction_id.strip():
        raise Rejected("missing_field", "transaction_id is required.")
    if len(transaction_id) > 255:
        raise Rejected("missing_field", "transaction_id is at most 255 characters.")
    code = event.get("code")
    if not isinstance(code, str) or not code:
        raise Rejected("missing_field", "code (the meter) is required.")
    meter = ctx.meters.get(code)
    if meter is None:
        raise Rejected("unknown_meter", "No meter with code %s." % code[:100])
    timestamp = _parse_time(event.get("timestamp"))
    if timestamp < ctx.received_at - ctx.max_age:
        raise Rejected("too_old", "Events older than %d days are not accepted." % ctx.max_age.days)
    if timestamp > ctx.received_at + FUTURE_TOLERANCE:
        raise Rejected("bad_timestamp", "timestamp is in the future.")
    properties = event.get("properties", {})
    if not isinstance(properties, Mapping):
        raise Rejected("missing_field", "properties must be an object.")
    subscription, device_id = _subscription_for(event, meter, ctx)
    target = ctx.target(subscription)
    if meter.pk not in target.meter_ids:
        raise Rejected("meter_not_in_plan", "Subscription %s does not bill meter %s." % (target.external_id, code))
    if meter.device_dimensions:
        properties = ctx.with_device_dimensions(properties, meter=meter, device_id=device_id, at=timestamp)
    value = None
    if meter.measured:
        if meter.field not in properties:
            raise Rejected("missing_field", "properties.%s is required by meter %s." % (meter.field, code))
        value = _number(properties[meter.field], meter.field)
        if value < 0 and not meter.accepts_negative:
            # A negative volume would lower the bill: refused, unless the meter measures a net quantity.
            raise Rejected(
                "negative_value",
                "properties.%s is negative; meter %s does not accept negative values." % (meter.field, code),
            )
    elif meter.unique_count and properties.get(meter.field) in (None, ""):
        raise Rejected("missing_field", "properties.%s is required by meter %s." % (meter.field, code))
    band = time_band_of(timestamp, bands=meter.time_bands, tz=target.timezone) if meter.time_bands else ""
    # The same text as PostgreSQL's ``properties ->> 'dim'``, so rollups and raw aggregation agree.
    dims = {d: _json_text(properties[d]) for d in meter.dimensions if properties.get(d) is not None}
    row = (
        transaction_id,
        meter.pk,
        target.pk,
        device_id[:200],
        timestamp,
        value,
        orjson.dumps(properties).decode(),
        band,
        # Its period has closed: the invoice of that period may exist already, so it is billed as an adjustment.
        timestamp < target.open_period_start,
        orjson.dumps(dims).decode(),
        all(properties.get(k) == v for k, v in meter.filters),
    )
    return row, transaction_id, target.customer_id


def _payload_kept(event: Any) -> Any:
    """What a rejected event keeps of what was sent: all of it, but of an event nested too deep to
    store, only its fields that are neither objects nor lists."""
    payload = event if isinstance(event, Mapping) else {"event": event}
    if json_depth_exceeds(payload, max_json_depth()):
        return {k: v for k, v in payload.items() if not isinstance(v, Mapping | list)}
    return payload


def events_ingest(
    *, tenant: Tenant, events: Sequence[Any], received_at: datetime, settings: UsageSettings | None = None
) -> IngestResult:
    """Validate, deduplicate and store a batch (at most 1000 events); one outcome per event, in order."""
    ctx = _load_context(tenant, events, received_at, settings)
    depth_limit = max_json_depth()
    outcomes: list[Outcome | None] = [None] * len(events)
    rows: list[tuple[Any, ...]] = []
    row_index: dict[str, int] = {}
    customer_of: dict[str, Any] = {}
    rejected: list[RejectedEvent] = []
    for i, event in enumerate(events):
        try:
            row, transaction_id, customer_id = _stage(event, ctx, depth_limit)
        except Rejected as exc:
            tid = event.get("transaction_id") if isinstance(event, Mapping) else None
            tid_text = tid if isinstance(tid, str) else ""
            outcomes[i] = Outcome(tid_text[:255], "rejected", exc.reason, exc.detail)
            rejected.append(
                RejectedEvent(
                    tenant=tenant,
                    received_at=received_at,
                    transaction_id=tid_text[:255],
                    code=str(event.get("code", ""))[:64] if isinstance(event, Mapping) else "",
                    reason=exc.reason,
                    detail=exc.detail[:500],
                    payload=_payload_kept(event),
                )
            )
            continue
        if transaction_id in row_index:  # the same id twice in one batch counts once
            outcomes[i] = Outcome(transaction_id, "duplicate")
            continue
        row_index[transaction_id] = i
        customer_of[transaction_id] = customer_id
        rows.append(row)
    # The batch commits here, all at once: its events, their keys, their rollups and its rejected
    # events. ``customer_ids`` are the customers whose usage it changed.
    with transaction.atomic():
        stored = _write(rows, tenant=tenant, received_at=received_at) if rows else set()
        if stored:  # the batch's customers' cached current usage is out of date
            usage_written(tenant=tenant, subscription_ids={row[STAGED_SUBSCRIPTION] for row in rows})
        if rejected:
            RejectedEvent.objects.bulk_create(rejected)
        customer_ids = frozenset(customer_of[transaction_id] for transaction_id in stored)
    for transaction_id, i in row_index.items():
        outcomes[i] = Outcome(transaction_id, "accepted" if transaction_id in stored else "duplicate")
    return IngestResult([o for o in outcomes if o is not None], customer_ids=customer_ids)


def daily_rollups_rebuild(*, tenant: Tenant, since: datetime | None = None) -> None:
    """Make the tenant's daily rollups from ``since`` (floored to a UTC day; all of them without it)
    equal to the 15-minute rollups again, e.g. after a deploy that let an older process write only
    those. Batches wait until it commits. Run it under the tenant's row-level security, for each
    tenant: ``with tenant_context(tenant): daily_rollups_rebuild(tenant=tenant)``."""
    start = datetime(2000, 1, 1, tzinfo=UTC) if since is None else since.astimezone(UTC)
    params: dict[str, Any] = {"tenant": tenant.pk, "since": start.replace(hour=0, minute=0, second=0, microsecond=0)}
    with transaction.atomic(), connection.cursor() as cursor:
        for statement in REBUILD_DAILY_SQL:
            cursor.execute(statement, params)
        usage_changed_tenant(tenant=tenant)


# Connections whose staging table may still hold a batch of their open transaction.
_staging_filled: "weakref.WeakSet[BaseDatabaseWrapper]" = weakref.WeakSet()


def _write(rows: list[tuple[Any, ...]], *, tenant: Tenant, received_at: datetime) -> set[str]:
    """Store the batch's valid rows; returns the transaction ids stored (the others were already)."""
    ensure_partitions(r[4].astimezone(UTC).date() for r in rows)  # partitions are UTC months
    with connection.cursor() as cursor:
        cursor.execute(STAGING_TABLE)
        # The table empties when its transaction commits. A batch written earlier in the same
        # transaction (a script, a test) left its rows: they must not be written again, and under
        # row-level security another tenant's rows would be refused.
        wrapper = connections[DEFAULT_DB_ALIAS]
        if wrapper in _staging_filled:
            cursor.execute("TRUNCATE usage_event_staging")
        _staging_filled.add(wrapper)
        transaction.on_commit(partial(_staging_filled.discard, wrapper))
        raw = cursor.cursor  # psycopg's own cursor, for COPY
        columns = ", ".join(name for name, _ in STAGING_COLUMNS)
        # Binary: PostgreSQL reads uuids, instants and numbers without parsing their text.
        with raw.copy("COPY usage_event_staging (%s) FROM STDIN (FORMAT BINARY)" % columns) as copy:
            copy.set_types([kind for _, kind in STAGING_COLUMNS])
            for row in rows:
                copy.write_row(row)
        cursor.execute(INSERT_SQL, {"tenant": tenant.pk, "received_at": received_at})
        return {r[0] for r in cursor.fetchall()}
