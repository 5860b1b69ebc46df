"""What each list page exports: its columns (the CSV's header, stable machine names an ERP or a
spreadsheet can map once), the rows its filter selects, and how many there are.

A kind reads the page's own query-string parameters and applies the same filter as the page, through
the same selectors, so a download holds exactly the rows the page lists, on every page of it. Rows
come from the database in chunks (``iterator(chunk_size=...)``, or ``fetchmany`` for the usage SQL)
with what each row shows joined in the same query: the number of queries does not grow with the
number of rows.
"""

import json
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, timedelta
from typing import Any

from django.db.models import Count, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.utils import timezone, translation
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from backoffice.access import EVERYONE, FINANCE
from backoffice.audit import changes as audit_changes
from backoffice.audit import sentence as audit_sentence
from backoffice.catalog.presenters import plan_books, product_ssps
from backoffice.invoicing.forms import InvoiceFilterForm
from backoffice.pages import clean_text
from backoffice.payments.forms import AsOfForm, PaymentFilterForm
from backoffice.usage.presenters import REASON_LABELS
from billing_platform.db_router import reads_connection
from billing_platform.money import round_minor
from billing_platform.periods import local_date, local_midnight
from catalog.models import TAX_RATE_SINCE_ALWAYS, Aggregation, Meter, Plan, PriceVersion, Product, TaxRate
from catalog.selectors import meter_list, plan_list, product_list, tax_rate_list
from customers.models import Customer
from customers.selectors import customer_list
from invoicing.lines import line_description
from invoicing.models import BillRun, Invoice, InvoiceLine, InvoiceTax
from invoicing.selectors import bill_run_list, bill_runs_totals
from payments.dunning import Step, dunning_queue, open_invoices_load
from payments.models import DunningActionKind, Payment, Refund
from payments.reports import BUCKETS, CustomerAging, receivables_aging
from subscriptions.models import Device, DeviceCloudWebhook, Subscription, SubscriptionStatus, WebhookStatus
from subscriptions.selectors import subscription_list, webhook_list
from tenancy.models import AuditLogEntry, Tenant
from tenancy.selectors import audit_log_list
from usage.archive import raw_events_check
from usage.models import RejectedEvent, UsageEvent, UsageRollup
from usage.selectors import rejected_event_list

# Rows fetched from the database at a time.
CHUNK = 2000

Params = Mapping[str, str]


@dataclass(frozen=True)
class ExportKind:
    key: str
    label: Promise
    # The roles that may export it: those that may open its page.
    roles: frozenset[str]
    columns: tuple[str, ...]
    # The page's query-string parameters that make its filter (the rest, like ``page``, is dropped).
    params: tuple[str, ...]
    count: Callable[[Tenant, Params], int]
    rows: Callable[[Tenant, Params], Iterator[list[Any]]]

    def filter_of(self, query: Mapping[str, Any]) -> dict[str, str]:
        """The filter parameters of a query string (a ``QueryDict`` or a stored dict), cleaned."""
        return {name: clean_text(str(query.get(name) or ""))[:200] for name in self.params if query.get(name)}


def _moment(value: Any) -> str:
    """An instant as ISO 8601 in UTC ("2026-05-01T22:00:00+00:00"), empty when there is none."""
    return value.astimezone(UTC).isoformat() if value else ""


# --- customers ------------------------------------------------------------------------------------

CUSTOMER_COLUMNS = (
    "external_id",
    "name",
    "email",
    "country",
    "currency",
    "timezone",
    "language",
    "tax_id",
    "address_line1",
    "address_line2",
    "postal_code",
    "city",
    "billing_day",
    "collection",
    "payment_terms_days",
    "balance",
    "created_at",
)


def _customers(tenant: Tenant, params: Params) -> QuerySet[Customer]:
    # The customers page: its search box (``q``), by name.
    return customer_list(tenant=tenant, search=params.get("q") or None).order_by("name", "id")


def _customer_rows(tenant: Tenant, params: Params) -> Iterator[list[Any]]:
    for c in _customers(tenant, params).iterator(chunk_size=CHUNK):
        yield [
            c.external_id,
            c.name,
            c.email,
            c.country,
            c.currency,
            c.timezone,
            c.language,
            c.tax_id,
            c.address_line1,
            c.address_line2,
            c.postal_code,
            c.city,
            c.billing_day,
            c.collection,
            c.payment_terms_days,
            round_minor(c.balance, c.currency),
            _moment(c.created_at),
        ]


# --- subscriptions and devices --------------------------------------------------------------------

SUBSCRIPTION_COLUMNS = (
    "external_id",
    "customer_external_id",
    "customer_name",
    "plan_code",
    "plan_name",
    "status",
    "signed_at",
    "starts_at",
    "trial_ends_at",
    "commitment_ends_at",
    "auto_renew",
    "cancel_at",
    "cancelled_at",
    "ended_at",
    "devices",
    "created_at",
)


def _subscriptions(tenant: Tenant, params: Params) -> QuerySet[Subscription]:
    # The subscriptions page: its status tab and search box.
    status = params.get("status", "")
    return subscription_list(
        tenant=tenant,
        status=status if status in SubscriptionStatus.values else None,
        search=params.get("q") or None,
        customer=params.get("customer") or None,
    ).order_by("-created_at", "external_id")


def _subscription_rows(tenant: Tenant, params: Params) -> Iterator[list[Any]]:
    # The devices on the subscription, not yet removed: counted in the same query.
    qs = (
        _subscriptions(tenant, params)
        .prefetch_related(None)
        .annotate(device_count=Count("devices", filter=Q(devices__removed_at__isnull=True)))
    )
    for s in qs.iterator(chunk_size=CHUNK):
        yield [
            s.external_id,
            s.customer.external_id,
            s.customer.name,
            s.plan.code,
            s.plan.name,
            s.status,
            _moment(s.signed_at),
            _moment(s.starts_at),
            _moment(s.trial_ends_at),
            _moment(s.commitment_ends_at),
            "yes" if s.auto_renew else "no",
            _moment(s.cancel_at),
            _moment(s.cancelled_at),
            _moment(s.ended_at),
            s.device_count,
            _moment(s.created_at),
        ]


DEVICE_COLUMNS = (
    "device_id",
    "subscription_external_id",
    "subscription_status",
    "customer_external_id",
    "customer_name",
    "plan_code",
    "device_type",
    "region",
    "added_at",
    "shipped_at",
    "activated_at",
    "deactivated_at",
    "removed_at",
)


def _devices(tenant: Tenant, params: Params) -> QuerySet[Device]:
    # The devices of the subscriptions the subscriptions page lists with the same filter.
    subscriptions = _subscriptions(tenant, params).order_by().values("pk")
    return (
        Device.objects.filter(tenant=tenant, subscription__in=subscriptions)
        .select_related("subscription__customer", "subscription__plan")
        .order_by("subscription__external_id", "added_at", "device_id")
    )


def _device_rows(tenant: Tenant, params: Params) -> Iterator[list[Any]]:
    for d in _devices(tenant, params).iterator(chunk_size=CHUNK):
        s = d.subscription
        yield [
            d.device_id,
            s.external_id,
            s.status,
            s.customer.external_id,
            s.customer.name,
            s.plan.code,
            d.device_type,
            d.region,
            _moment(d.added_at),
            _moment(d.shipped_at),
            _moment(d.activated_at),
            _moment(d.deactivated_at),
            _moment(d.removed_at),
        ]


# --- invoices and their lines ---------------------------------------------------------------------

INVOICE_PARAMS = ("q", "status", "payment", "kind", "date_from", "date_to", "run")

INVOICE_COLUMNS = (
    "number",
    "issue_date",
    "kind",
    "status",
    "payment_status",
    "customer_external_id",
    "customer_name",
    "currency",
    "net_total",
    "tax_total",
    "total",
    "amount_paid",
    "amount_due",
    "due_date",
    "credited_invoice",
    "finalized_at",
)

INVOICE_LINE_COLUMNS = (
    "invoice_number",
    "issue_date",
    "invoice_kind",
    "invoice_status",
    "customer_external_id",
    "customer_name",
    "currency",
    "line",
    "leg",
    "product",
    "description",
    "subscription_external_id",
    "period_start",
    "period_end",
    "quantity",
    "unit_price",
    "amount",
    "tax_category",
    "tax_rate",
)


def _invoices(tenant: Tenant, params: Params) -> QuerySet[Invoice]:
    """The invoices page's filter: its form (an invalid value is left out, as the page does) and its
    bill run, read as ``backoffice.invoicing.views.invoices`` reads them."""
    form = InvoiceFilterForm(dict(params))
    form.is_valid()
    run_id = params.get("run", "")
    run = BillRun.objects.filter(tenant=tenant, pk=run_id).first() if _is_uuid(run_id) else None
    qs = form.invoices(tenant, run)
    if run_id and run is None:
        qs = qs.none()
    return qs.order_by("-issue_date", "-created_at", "-id")


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _invoice_rows(tenant: Tenant, params: Params) -> Iterator[list[Any]]:
    qs = _invoices(tenant, params).select_related("customer", "credited_invoice").defer("pdf", "credited_invoice__pdf")
    for i in qs.iterator(chunk_size=CHUNK):
        yield [
            i.number,
            i.issue_date,
            i.kind,
            i.status,
            i.payment_status,
            i.customer.external_id,
            i.customer.name,
            i.currency,
            i.net_total,
            i.tax_total,
            i.total,
            i.amount_paid,
            i.amount_due,
            i.due_date,
            i.credited_invoice.number if i.credited_invoice else "",
            _moment(i.finalized_at),
        ]


def _leg(line: InvoiceLine) -> str:
    # As the invoice page groups its lines (backoffice.invoicing.presenters).
    if line.adjustment:
        return "adjustments"
    if line.type in ("hardware", "service", "usage"):
        return line.type
    return "fees"


def _lines(tenant: Tenant, params: Params) -> QuerySet[InvoiceLine]:
    invoices = _invoices(tenant, params)
    # The rate of the line's tax category on its invoice, in the same query.
    rate = InvoiceTax.objects.filter(invoice=OuterRef("invoice"), category=OuterRef("tax_category")).values("rate")[:1]
    return (
        InvoiceLine.objects.filter(tenant=tenant, invoice__in=invoices.order_by().values("pk"))
        .select_related("invoice__customer", "subscription")
        .defer("invoice__pdf")  # never the documents' bytes, once per line
        .annotate(tax_rate=Subquery(rate))
        .order_by("-invoice__issue_date", "-invoice__created_at", "-invoice__id", "position", "id")
    )


def _line_rows(tenant: Tenant, params: Params) -> Iterator[list[Any]]:
    for line in _lines(tenant, params).iterator(chunk_size=CHUNK):
        i = line.invoice
        language = i.language or "en"
        yield [
            i.number,
            i.issue_date,
            i.kind,
            i.status,
            i.customer.external_id,
            i.customer.name,
            i.currency,
            line.position,
            _leg(line),
            line.product,
            line_description(line.description, line.qualifiers, language=language),
            line.subscription.external_id if line.subscription else "",
            _moment(line.period_start),
            _moment(line.period_end),
            _plain(line.quantity),
            _plain(line.unit_amount),
            round_minor(line.amount, i.currency),
            line.tax_category,
            line.tax_rate,  # type: ignore[attr-defined]
        ]


# --- payments and refunds -------------------------------------------------------------------------

PAYMENT_PARAMS = ("customer", "method", "status", "date_from", "date_to")

PAYMENT_COLUMNS = (
    "payment_id",
    "received_at",
    "customer_external_id",
    "customer_name",
    "method",
    "status",
    "currency",
    "amount",
    "amount_refunded",
    "reference",
    "gateway",
    "gateway_id",
)

REFUND_COLUMNS = (
    "refund_id",
    "created_at",
    "payment_id",
    "payment_reference",
    "customer_external_id",
    "customer_name",
    "method",
    "status",
    "currency",
    "amount",
    "reason",
)


def _payments(tenant: Tenant, params: Params) -> QuerySet[Payment]:
    """The payments page's filter (``backoffice.payments.views.payments``): a part of the customer's
    name or its exact external ID, the method, the status, and the days received in the tenant's
    time zone."""
    form = PaymentFilterForm(dict(params))
    form.is_valid()
    return form.payments(tenant)


def _payment_rows(tenant: Tenant, params: Params) -> Iterator[list[Any]]:
    for p in _payments(tenant, params).select_related("customer").iterator(chunk_size=CHUNK):
        yield [
            str(p.pk),
            _moment(p.received_at),
            p.customer.external_id,
            p.customer.name,
            p.method,
            p.status,
            p.currency,
            p.amount,
            p.amount_refunded,
            p.reference,
            p.gateway,
            p.gateway_id,
        ]


def _refunds(tenant: Tenant, params: Params) -> QuerySet[Refund]:
    # The refunds of the payments the page lists.
    payments = _payments(tenant, params).order_by().values("pk")
    return (
        Refund.objects.filter(tenant=tenant, payment__in=payments)
        .select_related("payment__customer")
        .order_by("-created_at", "-id")
    )


def _refund_rows(tenant: Tenant, params: Params) -> Iterator[list[Any]]:
    for r in _refunds(tenant, params).iterator(chunk_size=CHUNK):
        p = r.payment
        yield [
            str(r.pk),
            _moment(r.created_at),
            str(p.pk),
            p.reference,
            p.customer.external_id,
            p.customer.name,
            p.method,
            r.status,
            r.currency,
            r.amount,
            r.reason,
        ]


# --- usage ----------------------------------------------------------------------------------------

USAGE_PARAMS = ("customer", "meter", "start", "end")

USAGE_COLUMNS = ("customer_external_id", "customer_name", "meter", "aggregation", "day", "quantity", "events")

USAGE_EVENT_COLUMNS = (
    "transaction_id",
    "timestamp",
    "customer_external_id",
    "subscription_external_id",
    "meter",
    "device_id",
    "value",
    "time_band",
    "properties",
    "received_at",
    "late",
)

# Per customer, meter and day in the customer's time zone, from the 15-minute rollups, as the usage
# explorer reads them (``usage.selectors.usage_daily_series``): local midnights fall on 15-minute
# edges, so a bucket never straddles two days. Every aggregation's figure is computed; the row keeps
# the meter's own (``USAGE_QUANTITY``).
USAGE_SQL = """
SELECT c.external_id, c.name, m.code, m.aggregation, (r.bucket AT TIME ZONE c.timezone)::date AS day,
       sum(r.event_count), sum(r.value_sum), max(r.value_max),
       (array_agg(r.latest_value ORDER BY r.latest_at DESC NULLS LAST))[1]
FROM {rollups} r
JOIN {subscriptions} s ON s.id = r.subscription_id
JOIN {customers} c ON c.id = s.customer_id
JOIN {meters} m ON m.id = r.meter_id
WHERE r.tenant_id = %s {narrow}
  AND r.bucket >= ((%s::date)::timestamp AT TIME ZONE c.timezone)
  AND r.bucket < (((%s::date) + 1)::timestamp AT TIME ZONE c.timezone)
GROUP BY c.external_id, c.name, m.code, m.aggregation, day
ORDER BY c.external_id, m.code, day
"""
USAGE_QUANTITY = {Aggregation.SUM: 6, Aggregation.MAX: 7, Aggregation.LATEST: 8}  # else the count (5)


def _usage_range(tenant: Tenant, params: Params) -> tuple[date, date]:
    """The days asked for, both included; the current month in the tenant's time zone by default,
    as the explorer opens."""

    def day(name: str) -> date | None:
        try:
            value = date.fromisoformat(params.get(name, ""))
        except ValueError:
            return None
        # Days the explorer can show: a year 1 or 9999 would overflow the month's end or midnight.
        return value if date(1971, 1, 1) <= value <= date(2999, 12, 31) else None

    today = local_date(timezone.now(), tenant.timezone)
    start = day("start") or today.replace(day=1)
    end = day("end") or (start.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    return (start, end) if start <= end else (end, start)


def _usage_query(tenant: Tenant, params: Params) -> tuple[str, list[Any]]:
    start, end = _usage_range(tenant, params)
    narrow, args = "", [str(tenant.pk)]
    if params.get("customer"):
        narrow += " AND c.external_id = %s"
        args.append(params["customer"])
    if params.get("meter"):
        narrow += " AND m.code = %s"
        args.append(params["meter"])
    sql = USAGE_SQL.format(
        rollups=UsageRollup._meta.db_table,
        subscriptions=Subscription._meta.db_table,
        customers=Customer._meta.db_table,
        meters=Meter._meta.db_table,
        narrow=narrow,
    )
    return sql, [*args, start, end]


def _usage_count(tenant: Tenant, params: Params) -> int:
    sql, args = _usage_query(tenant, params)
    with reads_connection().cursor() as cursor:
        cursor.execute("SELECT count(*) FROM (%s) AS rows" % sql, args)
        row = cursor.fetchone()
    return int(row[0]) if row else 0


def _usage_rows(tenant: Tenant, params: Params) -> Iterator[list[Any]]:
    sql, args = _usage_query(tenant, params)
    with reads_connection().cursor() as cursor:
        cursor.execute(sql, args)
        while batch := cursor.fetchmany(CHUNK):
            for row in batch:
                quantity = row[USAGE_QUANTITY.get(row[3], 5)]
                yield [row[0], row[1], row[2], row[3], row[4], _plain(quantity), row[5]]


def _plain(value: Any) -> Any:
    """A measured quantity without the column's trailing zeros: 1250.5000000000 -> 1250.5."""
    if value is None:
        return ""
    normal = value.normalize()
    return normal.quantize(1) if normal == normal.to_integral() else normal


def _usage_events(tenant: Tenant, params: Params) -> QuerySet[UsageEvent]:
    start, end = _usage_range(tenant, params)
    customer = Customer.objects.filter(tenant=tenant, external_id=params.get("customer", "")).first()
    tz = customer.timezone if customer is not None else tenant.timezone
    lo, hi = local_midnight(start, tz), local_midnight(end + timedelta(days=1), tz)
    raw_events_check(start=lo, end=hi)  # an archived month's events are in its archive file only
    qs = UsageEvent.objects.filter(tenant=tenant, timestamp__gte=lo, timestamp__lt=hi)
    if params.get("customer"):
        qs = qs.filter(subscription__customer=customer) if customer is not None else qs.none()
    if params.get("meter"):
        qs = qs.filter(meter__tenant=tenant, meter__code=params["meter"])
    return qs.order_by("timestamp", "id")


def _usage_event_rows(tenant: Tenant, params: Params) -> Iterator[list[Any]]:
    qs = _usage_events(tenant, params).select_related("subscription__customer", "meter")
    for e in qs.iterator(chunk_size=CHUNK):
        yield [
            e.transaction_id,
            _moment(e.timestamp),
            e.subscription.customer.external_id,
            e.subscription.external_id,
            e.meter.code,
            e.device_id,
            _plain(e.value),
            e.time_band,
            json.dumps(e.properties, sort_keys=True, ensure_ascii=False) if e.properties else "",
            _moment(e.received_at),
            "yes" if e.late else "no",
        ]


# --- bill runs ------------------------------------------------------------------------------------

BILL_RUN_COLUMNS = (
    "billing_date",
    "status",
    "customers",
    "customers_done",
    "customers_failed",
    "invoices_created",
    "started_at",
    "finished_at",
    "currency",
    "invoices",
    "drafts",
    "net_total",
    "tax_total",
    "total",
)


def _bill_runs(tenant: Tenant, params: Params) -> QuerySet[BillRun]:
    # The bill runs page: every run, the latest first; it has no filter.
    return bill_run_list(tenant=tenant).order_by("-created_at", "-id")


def _bill_run_rows(tenant: Tenant, params: Params) -> Iterator[list[Any]]:
    """One row per run and currency of its invoices, with the totals the page shows
    (``invoicing.selectors.bill_runs_totals``, two grouped queries per chunk of runs); a run with no
    invoice yet has one row, its currency and totals empty."""
    for runs in _batches(_bill_runs(tenant, params).iterator(chunk_size=CHUNK), CHUNK):
        totals = bill_runs_totals(runs)
        for run in runs:
            facts = [
                run.billing_date,
                run.status,
                run.total,
                run.done,
                run.failed,
                run.created,
                _moment(run.started_at),
                _moment(run.finished_at),
            ]
            for t in totals[run.pk]:
                yield [*facts, t.currency, t.count, t.drafts, t.net, t.tax, t.total]
            if not totals[run.pk]:
                yield [*facts, "", 0, 0, "", "", ""]


def _bill_run_count(tenant: Tenant, params: Params) -> int:
    return sum(1 for _row in _bill_run_rows(tenant, params))


def _batches(items: Iterator[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


# --- receivables and dunning ----------------------------------------------------------------------

RECEIVABLES_COLUMNS = (
    "as_of",
    "customer_external_id",
    "customer_name",
    "currency",
    "invoices",
    *BUCKETS,
    "total",
)


def _as_of(tenant: Tenant, params: Params) -> date:
    # The receivables page's day: its "as of" when valid, else today in the tenant's time zone.
    form = AsOfForm(dict(params))
    if "as_of" in params and form.is_valid():
        value: date = form.cleaned_data["as_of"]
        return value
    return local_date(timezone.now(), tenant.timezone)


def _receivables(tenant: Tenant, params: Params) -> Iterator[tuple[date, str, CustomerAging]]:
    as_of = _as_of(tenant, params)
    report = receivables_aging(tenant_id=tenant.pk, as_of=as_of)
    for c in report.currencies:
        for customer in c.customers:
            yield as_of, c.currency, customer


def _receivables_count(tenant: Tenant, params: Params) -> int:
    return sum(1 for _row in _receivables(tenant, params))


def _receivables_rows(tenant: Tenant, params: Params) -> Iterator[list[Any]]:
    # Per currency, then per customer, as the page's tables list them.
    for as_of, currency, c in _receivables(tenant, params):
        yield [as_of, c.external_id, c.name, currency, c.invoices, *c.aging.buckets(), c.aging.total]


DUNNING_COLUMNS = (
    "customer_external_id",
    "customer_name",
    "invoice_number",
    "currency",
    "amount_due",
    "due_date",
    "days_past_due",
    "next_steps",
    "next_step_on",
)
# Every open invoice: the page lists the first 200 of the same queue.
DUNNING_ALL = 10**9


def _dunning_count(tenant: Tenant, params: Params) -> int:
    return len(open_invoices_load(tenant_id=tenant.pk, at=timezone.now(), every_due_date=True))


def _steps_text(steps: tuple[Step, ...]) -> str:
    """ "reminder (day -3), retry (day 7)": the steps' machine names, with the day of those an invoice
    has several of."""
    return ", ".join(
        "%s (day %s)" % (s.kind, s.day) if s.kind in (DunningActionKind.REMINDER, DunningActionKind.RETRY) else s.kind
        for s in steps
    )


def _dunning_rows(tenant: Tenant, params: Params) -> Iterator[list[Any]]:
    # The queue as the dunning page orders it (``payments.dunning.dunning_queue``: five queries).
    for e in dunning_queue(tenant_id=tenant.pk, as_of=timezone.now(), limit=DUNNING_ALL):
        yield [
            e.customer_external_id,
            e.customer_name,
            e.number,
            e.amount_due.currency.code,
            e.amount_due,
            e.due_date,
            e.days_past_due,
            _steps_text(e.steps),
            e.on or "",
        ]


# --- audit log ------------------------------------------------------------------------------------

AUDIT_COLUMNS = (
    "at",
    "actor_type",
    "actor_id",
    "actor",
    "action",
    "object_type",
    "object_id",
    "description",
    "changes",
)


def _audit_entries(tenant: Tenant, params: Params) -> QuerySet[AuditLogEntry]:
    # The audit log page's object type menu.
    return audit_log_list(tenant=tenant, object_type=params.get("object_type") or None)


def _audit_rows(tenant: Tenant, params: Params) -> Iterator[list[Any]]:
    """The page's sentence and changes (``backoffice.audit``), in English whoever downloads, instants
    in UTC as the page shows them; the changes one per line in their cell."""
    for e in _audit_entries(tenant, params).iterator(chunk_size=CHUNK):
        with translation.override("en"):
            described, changed = audit_sentence(e), "\n".join(audit_changes(e))
        yield [
            _moment(e.at),
            e.actor_type,
            e.actor_id,
            e.actor_label,
            e.action,
            e.object_type,
            e.object_id,
            described,
            changed,
        ]


# --- device webhooks and rejected usage events ----------------------------------------------------

WEBHOOK_COLUMNS = (
    "received_at",
    "webhook_id",
    "event_type",
    "device_id",
    "subscription_external_id",
    "occurred_at",
    "status",
    "error",
    "attempts",
    "applied_at",
)


def _webhooks(tenant: Tenant, params: Params) -> QuerySet[DeviceCloudWebhook]:
    # The device webhooks page: its status tab.
    status = params.get("status", "")
    return webhook_list(tenant=tenant, status=status if status in WebhookStatus.values else None).order_by(
        "-received_at", "-id"
    )


def _webhook_rows(tenant: Tenant, params: Params) -> Iterator[list[Any]]:
    # The subscription the device belongs to (its latest, should it have moved), in the same query;
    # never the bodies.
    subscription = (
        Device.objects.filter(tenant=tenant, device_id=OuterRef("device_id"))
        .order_by("-added_at", "-id")
        .values("subscription__external_id")[:1]
    )
    qs = _webhooks(tenant, params).defer("body", "cloud_event_headers").annotate(subscription=Subquery(subscription))
    for w in qs.iterator(chunk_size=CHUNK):
        failed = w.status in (WebhookStatus.REJECTED, WebhookStatus.FAILED)
        yield [
            _moment(w.received_at),
            w.webhook_id,
            w.event_type,
            w.device_id,
            w.subscription or "",
            _moment(w.occurred_at),
            w.status,
            w.outcome if failed else "",
            w.attempts,
            _moment(w.applied_at),
        ]


REJECTED_COLUMNS = ("received_at", "transaction_id", "meter", "reason", "detail", "payload")


def _rejected(tenant: Tenant, params: Params) -> QuerySet[RejectedEvent]:
    """The rejected events page: its search box (a part of the transaction ID or the meter code) and
    its reason tab, a reason the page does not know and no event has reads as every reason."""
    search = params.get("q") or None
    reason = params.get("reason", "")
    if reason and reason not in REASON_LABELS and not rejected_event_list(tenant=tenant, reason=reason).exists():
        reason = ""
    return rejected_event_list(tenant=tenant, search=search, reason=reason or None).order_by("-received_at", "-id")


def _rejected_rows(tenant: Tenant, params: Params) -> Iterator[list[Any]]:
    for e in _rejected(tenant, params).iterator(chunk_size=CHUNK):
        yield [
            _moment(e.received_at),
            e.transaction_id,
            e.code,
            e.reason,
            e.detail,
            json.dumps(e.payload, sort_keys=True, ensure_ascii=False),
        ]


# --- the catalog ----------------------------------------------------------------------------------
# The catalog pages have no filter: every product, meter, plan and tax rate, in the pages' order.

PRODUCT_COLUMNS = (
    "code",
    "name",
    "kind",
    "tax_category",
    "revenue_treatment",
    "requires_shipment",
    "requires_activation",
    "standalone_selling_prices",
    "created_at",
)


def _products(tenant: Tenant, params: Params) -> QuerySet[Product]:
    return product_list(tenant=tenant).order_by("code", "id")


def _product_rows(tenant: Tenant, params: Params) -> Iterator[list[Any]]:
    # The selling prices are prefetched per chunk: two queries per chunk of products.
    for p in _products(tenant, params).iterator(chunk_size=CHUNK):
        yield [
            p.code,
            p.name,
            p.kind,
            p.tax_category,
            p.revenue_treatment,
            _yes(p.requires_shipment),
            _yes(p.requires_activation),
            "; ".join("%s %s" % (m.currency.code, _plain(m.amount)) for m in product_ssps(p)),
            _moment(p.created_at),
        ]


def _yes(value: bool) -> str:
    return "yes" if value else "no"


METER_COLUMNS = (
    "code",
    "name",
    "aggregation",
    "field",
    "dimensions",
    "filters",
    "time_bands",
    "accepts_negative",
    "created_at",
)


def _meters(tenant: Tenant, params: Params) -> QuerySet[Meter]:
    return meter_list(tenant=tenant).order_by("code", "id")


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False) if value else ""


def _meter_rows(tenant: Tenant, params: Params) -> Iterator[list[Any]]:
    for m in _meters(tenant, params).iterator(chunk_size=CHUNK):
        yield [
            m.code,
            m.name,
            m.aggregation,
            m.field,
            ", ".join(m.dimensions or []),
            _json(m.filters),
            _json(m.time_bands),
            _yes(m.accepts_negative),
            _moment(m.created_at),
        ]


PLAN_COLUMNS = (
    "code",
    "name",
    "interval",
    "commitment_months",
    "trial_days",
    "components",
    "price_books",
    "created_at",
)


def _plans(tenant: Tenant, params: Params) -> QuerySet[Plan]:
    # The plans page's list, without its prefetches (the rows prefetch what they show).
    return plan_list(tenant=tenant).prefetch_related(None).order_by("code", "id")


def _plan_rows(tenant: Tenant, params: Params) -> Iterator[list[Any]]:
    """The plans page's columns: its components counted in the same query, its price books (currency,
    partner price book and regions: "EUR", "EUR DE,AT", "EUR book wholesale") prefetched per chunk
    without their prices."""
    versions = PriceVersion.objects.only("plan_id", "currency", "price_book", "regions_key").order_by(
        "currency", "price_book", "regions_key", "effective_from"
    )
    qs = (
        _plans(tenant, params)
        .annotate(component_count=Count("components"))
        .prefetch_related(Prefetch("price_versions", queryset=versions))
    )
    for p in qs.iterator(chunk_size=CHUNK):
        yield [
            p.code,
            p.name,
            p.interval,
            p.commitment_months,
            p.trial_days,
            p.component_count,
            "; ".join(
                " ".join(filter(None, (currency, f"book {book}" if book else "", regions)))
                for currency, book, regions in plan_books(p)
            ),
            _moment(p.created_at),
        ]


TAX_RATE_COLUMNS = ("country", "tax_category", "rate", "valid_from", "valid_to", "updated_at")


def _tax_rates(tenant: Tenant, params: Params) -> QuerySet[TaxRate]:
    return tax_rate_list(tenant=tenant).order_by("country", "tax_category", "valid_from", "id")


def _tax_rate_rows(tenant: Tenant, params: Params) -> Iterator[list[Any]]:
    # ``valid_from`` empty: in force since always; ``valid_to`` empty: open-ended.
    for r in _tax_rates(tenant, params).iterator(chunk_size=CHUNK):
        yield [
            r.country,
            r.tax_category,
            r.rate,
            "" if r.valid_from == TAX_RATE_SINCE_ALWAYS else r.valid_from,
            r.valid_to or "",
            _moment(r.updated_at),
        ]


def _count(queryset: Callable[[Tenant, Params], QuerySet[Any]]) -> Callable[[Tenant, Params], int]:
    return lambda tenant, params: queryset(tenant, params).count()


KINDS: dict[str, ExportKind] = {
    k.key: k
    for k in (
        ExportKind("customers", _("Customers"), EVERYONE, CUSTOMER_COLUMNS, ("q",), _count(_customers), _customer_rows),
        ExportKind(
            "subscriptions",
            _("Subscriptions"),
            EVERYONE,
            SUBSCRIPTION_COLUMNS,
            ("status", "q"),
            _count(_subscriptions),
            _subscription_rows,
        ),
        ExportKind("devices", _("Devices"), EVERYONE, DEVICE_COLUMNS, ("status", "q"), _count(_devices), _device_rows),
        ExportKind(
            "invoices", _("Invoices"), EVERYONE, INVOICE_COLUMNS, INVOICE_PARAMS, _count(_invoices), _invoice_rows
        ),
        ExportKind(
            "invoice_lines",
            _("Invoice lines"),
            EVERYONE,
            INVOICE_LINE_COLUMNS,
            INVOICE_PARAMS,
            _count(_lines),
            _line_rows,
        ),
        ExportKind(
            "payments", _("Payments"), FINANCE, PAYMENT_COLUMNS, PAYMENT_PARAMS, _count(_payments), _payment_rows
        ),
        ExportKind("refunds", _("Refunds"), FINANCE, REFUND_COLUMNS, PAYMENT_PARAMS, _count(_refunds), _refund_rows),
        ExportKind("usage", _("Daily usage"), EVERYONE, USAGE_COLUMNS, USAGE_PARAMS, _usage_count, _usage_rows),
        ExportKind(
            "usage_events",
            _("Usage events"),
            EVERYONE,
            USAGE_EVENT_COLUMNS,
            USAGE_PARAMS,
            _count(_usage_events),
            _usage_event_rows,
        ),
        ExportKind("bill_runs", _("Bill runs"), EVERYONE, BILL_RUN_COLUMNS, (), _bill_run_count, _bill_run_rows),
        ExportKind(
            "receivables",
            _("Receivables"),
            FINANCE,
            RECEIVABLES_COLUMNS,
            ("as_of",),
            _receivables_count,
            _receivables_rows,
        ),
        ExportKind("dunning", _("Dunning queue"), FINANCE, DUNNING_COLUMNS, (), _dunning_count, _dunning_rows),
        ExportKind(
            "audit_log", _("Audit log"), FINANCE, AUDIT_COLUMNS, ("object_type",), _count(_audit_entries), _audit_rows
        ),
        ExportKind(
            "webhooks", _("Device webhooks"), EVERYONE, WEBHOOK_COLUMNS, ("status",), _count(_webhooks), _webhook_rows
        ),
        ExportKind(
            "rejected_events",
            _("Rejected events"),
            EVERYONE,
            REJECTED_COLUMNS,
            ("reason", "q"),
            _count(_rejected),
            _rejected_rows,
        ),
        ExportKind("products", _("Products"), EVERYONE, PRODUCT_COLUMNS, (), _count(_products), _product_rows),
        ExportKind("meters", _("Meters"), EVERYONE, METER_COLUMNS, (), _count(_meters), _meter_rows),
        ExportKind("plans", _("Plans"), EVERYONE, PLAN_COLUMNS, (), _count(_plans), _plan_rows),
        ExportKind("tax_rates", _("Tax rates"), EVERYONE, TAX_RATE_COLUMNS, (), _count(_tax_rates), _tax_rate_rows),
    )
}
