"""CSV exports of the list pages (/app/exports/...): each kind's header and a row with its numbers,
the page's filter, formula-safe cells, the background path (Celery, eager here) giving the same file
as the streamed one, downloads scoped to their requester and tenant, and a number of queries that
does not grow with the number of rows."""

import csv
import io
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from djmoney.money import Money

from backoffice.exports.kinds import KINDS
from backoffice.models import DataExport, DataExportStatus
from backoffice.tests.test_payment_pages import aging_data
from billing_platform.celery import app as celery_app
from billing_platform.rls import tenant_context
from catalog.services import meter_create, plan_create, product_create, tax_rate_set
from catalog.tests.factories import ACTOR, smart_fleet_catalog, smart_fleet_plan_body
from customers.models import Customer
from customers.tests.factories import dupont
from invoicing.models import BillRun, Invoice, InvoiceLine, InvoiceTax
from payments.models import Payment, Refund
from payments.tests.conftest import fleet, open_invoice
from subscriptions.models import DeviceCloudWebhook, Subscription
from subscriptions.tests.factories import monthly_fee_customers, signed_subscription, smart_fleet
from tenancy.models import ApiKeyScope, AuditLogEntry, Role, Tenant
from usage.models import RejectedEvent, UsageRollup

pytestmark = pytest.mark.django_db
__all__ = ["fleet"]

StaffMaker = Callable[..., Any]


@pytest.fixture
def eager_celery() -> Iterator[None]:
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


def logged_in(client: Client, user: Any) -> Client:
    client.force_login(user)
    return client


def body(response: Any) -> str:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content).decode()
    return response.content.decode()


def table(response: Any) -> list[list[str]]:
    assert response.status_code == 200, response
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    return list(csv.reader(io.StringIO(body(response))))


def download(client: Client, kind: str, **params: str) -> Any:
    return client.get(reverse("backoffice:csv-download", args=[kind]), params)


def invoice(
    tenant: Tenant,
    customer: Customer,
    number: str,
    *,
    status: str = "finalized",
    lines: int = 2,
    day: date = date(2026, 4, 1),
) -> Invoice:
    """A finalized EUR invoice of 2026-04-01: a hardware instalment 3 x 100.00 = 300.00 and a service
    line 3 x 12.50 = 37.50 (then more service lines of 10.00), VAT 20 %."""
    inv = Invoice.objects.create(
        tenant=tenant,
        customer=customer,
        status=status,
        number=number,
        issue_date=day,
        currency="EUR",
        language="en",
        net_total=Money("337.50", "EUR"),
        tax_total=Money("67.50", "EUR"),
        total=Money("405.00", "EUR"),
        amount_due=Money("405.00", "EUR"),
    )
    InvoiceTax.objects.create(
        tenant=tenant,
        invoice=inv,
        category="standard",
        rate=Decimal("20.0000"),
        base=Decimal("337.50"),
        amount=Decimal("67.50"),
    )
    InvoiceLine.objects.create(
        tenant=tenant,
        invoice=inv,
        position=1,
        type="hardware",
        product="eld-200",
        description="ELD-200",
        qualifiers={"instalment": 2, "of": 12},
        quantity=Decimal("3"),
        unit_amount=Decimal("100.0000000000"),
        amount=Decimal("300.0000"),
        tax_category="standard",
    )
    for position in range(2, lines + 1):
        InvoiceLine.objects.create(
            tenant=tenant,
            invoice=inv,
            position=position,
            type="service",
            product="fleet",
            description="=cmd|' /C calc'!A0" if position == 2 else "Fleet tracking",
            quantity=Decimal("3"),
            unit_amount=Decimal("12.5000000000") if position == 2 else Decimal("10"),
            amount=Decimal("37.5000") if position == 2 else Decimal("30.0000"),
            tax_category="standard",
        )
    return inv


# --- each kind: its header and a row --------------------------------------------------------------


def test_customers_export_has_its_columns_and_the_customers_values(
    client: Client, tenant: Tenant, make_staff: StaffMaker
) -> None:
    # given: Dupont (FR, EUR, Paris, billing day 1, in Rungis) with a balance of 12.5 EUR of credit
    customer = dupont(tenant)
    Customer.objects.filter(pk=customer.pk).update(balance=Decimal("12.5000"))
    logged_in(client, make_staff(tenant))
    # when
    header, *rows = table(download(client, "customers"))
    # then
    assert header == [
        "external_id", "name", "email", "country", "currency", "timezone", "language", "tax_id",
        "address_line1", "address_line2", "postal_code", "city", "billing_day", "collection",
        "payment_terms_days", "balance", "created_at",
    ]  # fmt: skip
    [row] = rows
    assert row[:13] == [
        "dupont", "Transports Dupont", "compta@dupont.test", "FR", "EUR", "Europe/Paris", "fr", "",
        "8 avenue des Transporteurs", "", "94150", "Rungis", "1",
    ]  # fmt: skip
    assert row[15] == "12.50"  # the balance at the currency's 2 decimals


def test_the_customers_search_is_the_exports_filter_and_formulas_are_neutralised(
    client: Client, tenant: Tenant, make_staff: StaffMaker
) -> None:
    dupont(tenant)
    dupont(tenant, external_id="evil", name='=HYPERLINK("http://x")', email="evil@x.test")
    logged_in(client, make_staff(tenant))
    # the page's search "evil" lists one customer: so does the export
    _, *rows = table(download(client, "customers", q="evil", page="3"))
    assert [r[0] for r in rows] == ["evil"]
    # a name starting with = is written with a leading apostrophe, as text
    assert rows[0][1] == '\'=HYPERLINK("http://x")'
    # the other filter of the page
    _, *rows = table(download(client, "customers", q="Dupont"))
    assert [r[0] for r in rows] == ["dupont"]


def test_invoices_and_invoice_lines_exports(client: Client, tenant: Tenant, make_staff: StaffMaker) -> None:
    customer = dupont(tenant)
    invoice(tenant, customer, "INV-2026-000001")
    invoice(tenant, customer, "", status="draft", day=date(2026, 5, 1))
    logged_in(client, make_staff(tenant))

    header, *rows = table(download(client, "invoices", status="finalized"))
    assert header == [
        "number", "issue_date", "kind", "status", "payment_status", "customer_external_id", "customer_name",
        "currency", "net_total", "tax_total", "total", "amount_paid", "amount_due", "due_date",
        "credited_invoice", "finalized_at",
    ]  # fmt: skip
    [row] = rows  # the draft is filtered out, as on the page
    assert row[:14] == [
        "INV-2026-000001", "2026-04-01", "invoice", "finalized", "unpaid", "dupont", "Transports Dupont",
        "EUR", "337.50", "67.50", "405.00", "0.00", "405.00", "",
    ]  # fmt: skip

    header, *rows = table(download(client, "invoice_lines", status="finalized"))
    assert header == [
        "invoice_number", "issue_date", "invoice_kind", "invoice_status", "customer_external_id",
        "customer_name", "currency", "line", "leg", "product", "description", "subscription_external_id",
        "period_start", "period_end", "quantity", "unit_price", "amount", "tax_category", "tax_rate",
    ]  # fmt: skip
    assert len(rows) == 2  # one row per line of the one finalized invoice
    # 3 x 100.00 = 300.00, the second of 12 instalments, VAT 20 %
    assert rows[0] == [
        "INV-2026-000001", "2026-04-01", "invoice", "finalized", "dupont", "Transports Dupont", "EUR",
        "1", "hardware", "eld-200", "ELD-200, instalment 2/12", "", "", "", "3", "100", "300.00",
        "standard", "20.0000",
    ]  # fmt: skip
    # 3 x 12.50 = 37.50; the description starting with "=" is neutralised
    assert rows[1][8:17] == ["service", "fleet", "'=cmd|' /C calc'!A0", "", "", "", "3", "12.5", "37.50"]


def test_payments_and_refunds_exports(client: Client, tenant: Tenant, make_staff: StaffMaker) -> None:
    customer = dupont(tenant)
    received = datetime(2026, 4, 10, 8, 30, tzinfo=UTC)
    card = Payment.objects.create(
        tenant=tenant,
        customer=customer,
        currency="EUR",
        amount=Money("405.00", "EUR"),
        amount_refunded=Money("37.50", "EUR"),
        method="card",
        received_at=received,
        reference="-ref 42",
    )
    Payment.objects.create(
        tenant=tenant,
        customer=customer,
        currency="EUR",
        amount=Money("10", "EUR"),
        method="bank_transfer",
        received_at=received,
    )
    Refund.objects.create(tenant=tenant, payment=card, currency="EUR", amount=Money("37.50", "EUR"), reason="One line")
    logged_in(client, make_staff(tenant, role=Role.FINANCE_VIEWER))

    header, *rows = table(download(client, "payments", method="card"))
    assert header == [
        "payment_id", "received_at", "customer_external_id", "customer_name", "method", "status", "currency",
        "amount", "amount_refunded", "reference", "gateway", "gateway_id",
    ]  # fmt: skip
    assert rows == [
        [str(card.pk), "2026-04-10T08:30:00+00:00", "dupont", "Transports Dupont", "card", "succeeded", "EUR",
         "405.00", "37.50", "'-ref 42", "manual", ""],
    ]  # fmt: skip

    header, *rows = table(download(client, "refunds", method="card"))
    assert header == [
        "refund_id", "created_at", "payment_id", "payment_reference", "customer_external_id", "customer_name",
        "method", "status", "currency", "amount", "reason",
    ]  # fmt: skip
    [row] = rows
    assert row[2:] == [
        str(card.pk), "'-ref 42", "dupont", "Transports Dupont", "card", "succeeded", "EUR", "37.50", "One line",
    ]  # fmt: skip
    _, *rows = table(download(client, "refunds", method="bank_transfer"))
    assert rows == []


def test_payments_are_not_exported_to_a_support_agent(client: Client, tenant: Tenant, make_staff: StaffMaker) -> None:
    logged_in(client, make_staff(tenant, role=Role.SUPPORT_AGENT))
    assert download(client, "payments").status_code == 404
    assert download(client, "nothing").status_code == 404
    assert download(client, "customers").status_code == 200


def test_subscriptions_devices_and_usage_exports(client: Client, tenant: Tenant, make_staff: StaffMaker) -> None:
    # given: Smart Fleet's dupont-fleet with devices A, B and C, signed on 10 March 2026
    subscription = smart_fleet(tenant)
    logged_in(client, make_staff(tenant))

    header, *rows = table(download(client, "subscriptions", q="fleet"))
    assert header == [
        "external_id", "customer_external_id", "customer_name", "plan_code", "plan_name", "status", "signed_at",
        "starts_at", "trial_ends_at", "commitment_ends_at", "auto_renew", "cancel_at", "cancelled_at", "ended_at",
        "devices", "created_at",
    ]  # fmt: skip
    [row] = rows
    assert row[0:3] == ["dupont-fleet", "dupont", "Transports Dupont"]
    assert row[5:7] == [subscription.status, "2026-03-10T09:00:00+00:00"]  # 10:00 in Paris
    assert row[14] == "3"
    assert table(download(client, "subscriptions", q="nobody"))[1:] == []

    header, *rows = table(download(client, "devices"))
    assert header == [
        "device_id", "subscription_external_id", "subscription_status", "customer_external_id", "customer_name",
        "plan_code", "device_type", "region", "added_at", "shipped_at", "activated_at", "deactivated_at", "removed_at",
    ]  # fmt: skip
    assert [(r[0], r[1], r[6]) for r in rows] == [
        ("A", "dupont-fleet", "eld"), ("B", "dupont-fleet", "eld"), ("C", "dupont-fleet", "eld"),
    ]  # fmt: skip

    # usage: two 15-minute rollups of the same Paris day (1 April, 00:00 and 23:45 local) and one of the next
    component = subscription.plan.components.exclude(meter=None).select_related("meter").first()
    assert component is not None
    assert component.meter is not None
    meter = component.meter
    for bucket, count, value in (
        (datetime(2026, 3, 31, 22, 0, tzinfo=UTC), 2, "1000.5"),
        (datetime(2026, 4, 1, 21, 45, tzinfo=UTC), 1, "250"),
        (datetime(2026, 4, 1, 22, 0, tzinfo=UTC), 4, "7"),
    ):
        UsageRollup.objects.create(
            tenant=tenant, subscription=subscription, meter=meter, bucket=bucket, event_count=count,
            value_sum=Decimal(value), value_max=Decimal(value),
        )  # fmt: skip
    header, *rows = table(download(client, "usage", customer="dupont", start="2026-04-01", end="2026-04-30"))
    assert header == ["customer_external_id", "customer_name", "meter", "aggregation", "day", "quantity", "events"]
    # 1 April: sum 1000.5 + 250 = 1250.5 over 2 + 1 = 3 events; 2 April: 7 over 4 events
    expected = {"sum": ["1250.5", "7"], "count": ["3", "4"], "max": ["1000.5", "7"]}.get(meter.aggregation)
    assert [r[4] for r in rows] == ["2026-04-01", "2026-04-02"]
    assert [r[6] for r in rows] == ["3", "4"]
    if expected:
        assert [r[5] for r in rows] == expected
    # the range is the filter: 2 April alone
    assert [r[4] for r in table(download(client, "usage", start="2026-04-02", end="2026-04-02"))[1:]] == ["2026-04-02"]


# --- large exports: in the background, downloaded when ready -------------------------------------


def test_a_long_export_is_written_by_celery_and_gives_the_same_file_as_the_streamed_one(
    client: Client,
    tenant: Tenant,
    make_staff: StaffMaker,
    settings: Any,
    eager_celery: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    customer = dupont(tenant)
    invoice(tenant, customer, "INV-2026-000001", lines=3)
    invoice(tenant, customer, "INV-2026-000002", lines=2, day=date(2026, 5, 1))
    logged_in(client, make_staff(tenant))
    streamed = body(download(client, "invoice_lines"))
    assert streamed.count("\r\n") == 1 + 5  # header + 3 + 2 lines

    # when: above the threshold (4 rows here), the click queues an export and shows the Exports page
    settings.DATA_EXPORT_STREAM_MAX_ROWS = 4
    with django_capture_on_commit_callbacks(execute=True):
        response = download(client, "invoice_lines")
    assert response.status_code == 302
    assert response["Location"] == reverse("backoffice:csv-jobs")
    [export] = DataExport.objects.all()
    assert (export.kind, export.status, export.rows) == ("invoice_lines", DataExportStatus.DONE, 5)

    page = client.get(reverse("backoffice:csv-jobs")).content.decode()
    assert "Invoice lines" in page
    assert reverse("backoffice:csv-job-file", args=[export.pk]) in page
    assert "hx-trigger" not in page  # nothing is running: no polling

    # then: the same bytes as the streamed download
    file = client.get(reverse("backoffice:csv-job-file", args=[export.pk]))
    assert file.status_code == 200
    assert file.content.decode() == streamed
    assert file["Content-Disposition"] == 'attachment; filename="%s"' % export.filename


def test_a_queued_export_is_polled_and_only_its_requester_downloads_it(
    client: Client, tenant: Tenant, other_tenant: Tenant, make_staff: StaffMaker, settings: Any
) -> None:
    dupont(tenant)
    owner = make_staff(tenant)
    settings.DATA_EXPORT_STREAM_MAX_ROWS = 0
    logged_in(client, owner)
    assert download(client, "customers").status_code == 302  # queued; the task runs on commit (none here)
    [export] = DataExport.objects.all()
    assert export.status == DataExportStatus.QUEUED
    assert 'hx-trigger="every 2s"' in client.get(reverse("backoffice:csv-jobs")).content.decode()
    url = reverse("backoffice:csv-job-file", args=[export.pk])
    assert client.get(url).status_code == 404  # not written yet

    from backoffice.exports.services import data_export_run

    data_export_run(export_id=str(export.pk), at=datetime(2026, 5, 1, tzinfo=UTC))
    assert client.get(url).status_code == 200

    # a colleague of the same tenant, and a user of another tenant, do not see it
    colleague = Client()
    logged_in(colleague, make_staff(tenant, email="colleague@acme.test"))
    assert colleague.get(url).status_code == 404
    assert str(export.pk) not in colleague.get(reverse("backoffice:csv-jobs")).content.decode()
    stranger = Client()
    logged_in(stranger, make_staff(other_tenant, email="someone@globex.test"))
    assert stranger.get(url).status_code == 404
    assert client.get(reverse("backoffice:csv-job-file", args=["not-a-uuid"])).status_code == 404


# --- queries --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["invoices", "invoice_lines", "customers", "payments", "refunds"])
def test_the_number_of_queries_does_not_grow_with_the_rows(
    client: Client, tenant: Tenant, make_staff: StaffMaker, kind: str
) -> None:
    logged_in(client, make_staff(tenant))

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            response = download(client, kind)
            body(response)
        return len(captured)

    customer = dupont(tenant)
    invoice(tenant, customer, "INV-2026-000001")
    payment = Payment.objects.create(
        tenant=tenant, customer=customer, currency="EUR", amount=Money("1", "EUR"), method="card",
        received_at=datetime(2026, 4, 1, tzinfo=UTC),
    )  # fmt: skip
    Refund.objects.create(tenant=tenant, payment=payment, currency="EUR", amount=Money("1", "EUR"))
    few = queries()
    for n in range(2, 8):
        other = dupont(tenant, external_id="c%d" % n)
        invoice(tenant, other, "INV-2026-00000%d" % n, lines=4)
        p = Payment.objects.create(
            tenant=tenant, customer=other, currency="EUR", amount=Money("1", "EUR"), method="card",
            received_at=datetime(2026, 4, 1, tzinfo=UTC),
        )  # fmt: skip
        Refund.objects.create(tenant=tenant, payment=p, currency="EUR", amount=Money("1", "EUR"))
    assert queries() == few


@pytest.mark.parametrize("kind", ["devices", "subscriptions"])
def test_the_number_of_queries_does_not_grow_with_the_subscriptions_and_devices(
    client: Client, tenant: Tenant, make_staff: StaffMaker, kind: str
) -> None:
    logged_in(client, make_staff(tenant))

    def exported() -> tuple[int, int]:
        with CaptureQueriesContext(connection) as captured:
            rows = table(download(client, kind))[1:]
        return len(captured), len(rows)

    # given: c0 with s0 and its 2 devices, then c1..c6 with 2 devices each: 1 then 7 subscriptions,
    # 2 then 14 devices, and the same number of queries
    [first] = monthly_fee_customers(tenant, 1)
    plan = Subscription.objects.get(customer=first).plan
    few, shown = exported()
    assert shown == {"devices": 2, "subscriptions": 1}[kind]
    for n in range(1, 7):
        customer = dupont(tenant, external_id="c%d" % n)
        signed_subscription(
            tenant, customer=customer, plan=plan, external_id="s%d" % n, devices=["d%d-a" % n, "d%d-b" % n]
        )
    many, shown = exported()
    assert shown == {"devices": 14, "subscriptions": 7}[kind]
    assert many == few


def test_every_kind_is_listed_once_with_unique_columns() -> None:
    assert set(KINDS) == {
        "customers", "subscriptions", "devices", "invoices", "invoice_lines", "payments", "refunds", "usage",
        "usage_events", "bill_runs", "receivables", "dunning", "audit_log", "webhooks", "rejected_events",
        "products", "meters", "plans", "tax_rates",
    }  # fmt: skip
    for kind in KINDS.values():
        assert len(set(kind.columns)) == len(kind.columns)


def test_usage_events_export_has_its_columns(
    client: Client, tenant: Tenant, make_staff: StaffMaker, make_client: Any
) -> None:
    # given: Dupont's fleet and one data event of 100.5 MB from device A on 2 April, 12:00 in Paris,
    # received at 12:00 UTC on 20 April (late: after its day)
    from usage.tests.factories import build_fleet, events_poster

    build_fleet(tenant)
    events_poster(make_client(tenant, ApiKeyScope.INGEST), datetime(2026, 4, 20, 12, 0, tzinfo=UTC))(
        [
            {
                "transaction_id": "t-1",
                "code": "data_mb",
                "external_subscription_id": "dupont-fleet",
                "timestamp": "2026-04-02T10:00:00Z",
                "device_id": "A",
                "properties": {"mb": 100.5},
            }
        ]
    )
    logged_in(client, make_staff(tenant))
    header, *rows = table(download(client, "usage_events", customer="dupont", start="2026-04-01", end="2026-04-30"))
    assert header == [
        "transaction_id", "timestamp", "customer_external_id", "subscription_external_id", "meter", "device_id",
        "value", "time_band", "properties", "received_at", "late",
    ]  # fmt: skip
    [row] = rows
    assert row[:7] == ["t-1", "2026-04-02T10:00:00+00:00", "dupont", "dupont-fleet", "data_mb", "A", "100.5"]
    assert row[9] == "2026-04-20T12:00:00+00:00"
    assert '"mb": 100.5' in row[8]
    # another customer's filter, or a range without the event, exports the header alone
    assert table(download(client, "usage_events", customer="nobody", start="2026-04-01", end="2026-04-30"))[1:] == []
    assert table(download(client, "usage_events", customer="dupont", start="2026-05-01", end="2026-05-31"))[1:] == []


def test_an_export_that_fails_says_why_and_expired_ones_are_deleted(
    client: Client, tenant: Tenant, other_tenant: Tenant, make_staff: StaffMaker
) -> None:
    from backoffice.exports.services import data_export_run, data_exports_purge

    owner = make_staff(tenant)
    at = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
    # an export of a kind that no longer exists fails with its reason, shown on the Exports page
    gone = DataExport.objects.create(
        tenant=tenant,
        requested_by=owner,
        kind="gone",
        filename="gone.csv",
        created_at=at,
        expires_at=datetime(2099, 1, 1, tzinfo=UTC),
    )
    assert data_export_run(export_id=str(gone.pk), at=at).status == DataExportStatus.FAILED
    logged_in(client, owner)
    assert "Unknown export: gone." in client.get(reverse("backoffice:csv-jobs")).content.decode()
    # expired on 8 May (7 days): deleted by the purge of 9 May, and only the tenant's own
    expired = DataExport.objects.create(
        tenant=tenant,
        requested_by=owner,
        kind="customers",
        filename="c.csv",
        created_at=at,
        expires_at=datetime(2026, 5, 8, 8, 0, tzinfo=UTC),
    )
    assert data_exports_purge(tenant=other_tenant, at=datetime(2026, 5, 9, tzinfo=UTC)) == 0
    assert data_exports_purge(tenant=tenant, at=datetime(2026, 5, 9, tzinfo=UTC)) == 1
    assert not DataExport.objects.filter(pk=expired.pk).exists()
    assert DataExport.objects.filter(pk=gone.pk).exists()


def test_the_exports_page_in_french(client: Client, tenant: Tenant, make_staff: StaffMaker) -> None:
    logged_in(client, make_staff(tenant))
    page = client.get(reverse("backoffice:csv-jobs"), HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert "Aucun export pour l'instant." in page
    assert "Jusqu'à 5000 lignes" in page
    listing = client.get("/app/customers/", HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert "Télécharger en CSV" in listing


def test_a_streamed_export_reads_under_the_tenants_row_level_security(
    client: Client, tenant: Tenant, make_staff: StaffMaker, app_role: None
) -> None:
    # given: the request runs as the application role, as in production; the file is read after the
    # view has returned (streamed), when the request's own scope is over
    with tenant_context(tenant):
        dupont(tenant)
    user = make_staff(tenant)
    logged_in(client, user)
    # then: the rows are still the tenant's
    _, *rows = table(download(client, "customers"))
    assert [r[0] for r in rows] == ["dupont"]


def test_the_revenue_runs_csv_reads_under_the_tenants_row_level_security(
    client: Client, tenant: Tenant, make_staff: StaffMaker, app_role: None
) -> None:
    # the same writer serves the revenue pages' downloads, whose rows are read lazily too
    from revrec.models import RecognitionRun

    with tenant_context(tenant):
        RecognitionRun.objects.create(
            tenant=tenant, month=date(2026, 3, 1), status="succeeded", requested_by="Ann", created_at=datetime.now(UTC)
        )
    logged_in(client, make_staff(tenant))
    _, *rows = table(client.get(reverse("backoffice:revenue-runs-csv")))
    assert [(r[1], r[2]) for r in rows] == [("2026-03", "succeeded")]


# --- bill runs, receivables, dunning, audit log, webhooks, rejected events ------------------------


def test_bill_runs_export_has_a_row_per_run_and_currency(
    client: Client, tenant: Tenant, make_staff: StaffMaker
) -> None:
    # given: the run of 1 April made two invoices, one finalized (405.00 = 337.50 + 67.50 VAT) and one
    # draft of the same amounts; the run of 1 May is queued and has none yet
    run = BillRun.objects.create(
        tenant=tenant,
        billing_date=date(2026, 4, 1),
        status="completed",
        total=3,
        done=2,
        failed=1,
        created=2,
        started_at=datetime(2026, 4, 1, 2, 0, tzinfo=UTC),
        finished_at=datetime(2026, 4, 1, 2, 5, 30, tzinfo=UTC),
    )
    customer = dupont(tenant)
    Invoice.objects.filter(pk=invoice(tenant, customer, "F-2026-0001").pk).update(bill_run=run)
    Invoice.objects.filter(pk=invoice(tenant, customer, "", status="draft", day=date(2026, 4, 2)).pk).update(
        bill_run=run
    )
    BillRun.objects.create(tenant=tenant, billing_date=date(2026, 5, 1))
    logged_in(client, make_staff(tenant, role=Role.SUPPORT_AGENT))  # the page is everyone's
    # when
    header, *rows = table(download(client, "bill_runs"))
    # then: the latest run first
    assert header == [
        "billing_date", "status", "customers", "customers_done", "customers_failed", "invoices_created",
        "started_at", "finished_at", "currency", "invoices", "drafts", "net_total", "tax_total", "total",
    ]  # fmt: skip
    assert rows == [
        ["2026-05-01", "pending", "0", "0", "0", "0", "", "", "", "0", "0", "", "", ""],
        # 2 invoices, 1 draft: 2 x 337.50 = 675.00 net, 2 x 67.50 = 135.00 tax, 2 x 405.00 = 810.00
        ["2026-04-01", "completed", "3", "2", "1", "2", "2026-04-01T02:00:00+00:00", "2026-04-01T02:05:30+00:00",
         "EUR", "2", "1", "675.00", "135.00", "810.00"],
    ]  # fmt: skip


def test_receivables_export_has_the_pages_figures_for_its_day(
    client: Client, tenant: Tenant, make_staff: StaffMaker
) -> None:
    # given: the receivables of test_payment_pages (as of 2026-06-30)
    aging_data(tenant)
    logged_in(client, make_staff(tenant, role=Role.FINANCE_VIEWER))
    # when
    header, *rows = table(download(client, "receivables", as_of="2026-06-30"))
    # then: per currency, then per customer, one column per bucket
    assert header == [
        "as_of", "customer_external_id", "customer_name", "currency", "invoices", "current", "days_1_30",
        "days_31_60", "days_61_90", "over_90", "total",
    ]  # fmt: skip
    assert rows == [
        # 100 not yet due, 200 (15 days), 300 (60 days), 400 (90 days), 500 (121 days): 1500.00
        ["2026-06-30", "acme", "Acme", "EUR", "5", "100.00", "200.00", "300.00", "400.00", "500.00", "1500.00"],
        # 50.00 less 20.00 paid on 10 June, 10 days past due
        ["2026-06-30", "zeta", "Zeta", "EUR", "1", "0.00", "30.00", "0.00", "0.00", "0.00", "30.00"],
        # 70.00 (29 days, paid only on 2 July) and 80.00 (149 days)
        ["2026-06-30", "yankee", "Yankee", "USD", "2", "0.00", "70.00", "0.00", "0.00", "80.00", "150.00"],
    ]  # fmt: skip
    # As of 1 June, the same invoices age otherwise: 100 (due 30 June) and 200 (due 15 June) are not yet
    # due = 300.00; 300 is 31 days late, 400 61 days, 500 92 days
    _, acme, *_ = table(download(client, "receivables", as_of="2026-06-01"))
    assert acme == ["2026-06-01", "acme", "Acme", "EUR", "5", "300.00", "0.00", "300.00", "400.00", "500.00", "1500.00"]
    # Not to a support agent, as the page.
    logged_in(client, make_staff(tenant, role=Role.SUPPORT_AGENT, email="agent@acme.test"))
    assert download(client, "receivables").status_code == 404


def test_dunning_export_lists_the_whole_queue(
    client: Client, tenant: Tenant, fleet: Subscription, make_staff: StaffMaker
) -> None:
    # given: on 21 June 2026 (Paris), INV-SOON due 30 June (9 days before its due date: the reminder
    # of day -3 on 27 June) and INV-NEW due 20 June (1 day past due: reminder and overdue today)
    with time_machine.travel(datetime(2026, 6, 21, 6, 0, tzinfo=UTC), tick=True):
        open_invoice(fleet, number="INV-SOON", issue_date=date(2026, 6, 1), due_date=date(2026, 6, 30), total="10.00")
        open_invoice(fleet, number="INV-NEW", issue_date=date(2026, 5, 21), due_date=date(2026, 6, 20), total="20.00")
        logged_in(client, make_staff(tenant, role=Role.FINANCE_VIEWER))
        # when
        header, *rows = table(download(client, "dunning"))
        agent = make_staff(tenant, role=Role.SUPPORT_AGENT, email="agent@acme.test")
        refused = logged_in(client, agent).get(reverse("backoffice:csv-download", args=["dunning"]))
    # then: by the day of the next step, as the page
    assert header == [
        "customer_external_id", "customer_name", "invoice_number", "currency", "amount_due", "due_date",
        "days_past_due", "next_steps", "next_step_on",
    ]  # fmt: skip
    assert rows == [
        ["dupont", "Transports Dupont", "INV-NEW", "EUR", "20.00", "2026-06-20", "1",
         "reminder (day -3), overdue", "2026-06-21"],
        ["dupont", "Transports Dupont", "INV-SOON", "EUR", "10.00", "2026-06-30", "-9", "reminder (day -3)",
         "2026-06-27"],
    ]  # fmt: skip
    assert refused.status_code == 404


def test_audit_log_export_has_the_sentences_and_the_object_type_filter(
    client: Client, tenant: Tenant, make_staff: StaffMaker
) -> None:
    at = datetime(2026, 4, 2, 9, 15, tzinfo=UTC)
    AuditLogEntry.objects.create(
        tenant=tenant,
        at=at,
        actor_type="user",
        actor_id="7",
        actor_label="anna@acme.test",
        action="customer.updated",
        object_type="customer",
        object_id="dupont",
        before={"billing_day": 1},
        after={"billing_day": 15},
    )
    AuditLogEntry.objects.create(
        tenant=tenant, at=at, actor_type="user", action="tenant.updated", object_type="tenant", object_id="acme"
    )
    client.cookies["django_language"] = "fr"  # the sentences are in English whoever downloads
    logged_in(client, make_staff(tenant, role=Role.FINANCE_VIEWER))
    header, *rows = table(download(client, "audit_log", object_type="customer"))
    assert header == [
        "at", "actor_type", "actor_id", "actor", "action", "object_type", "object_id", "description", "changes",
    ]  # fmt: skip
    assert rows == [
        ["2026-04-02T09:15:00+00:00", "user", "7", "anna@acme.test", "customer.updated", "customer", "dupont",
         "Customer dupont updated", "Billing day: 1 → 15"],
    ]  # fmt: skip
    _, *rows = table(download(client, "audit_log"))
    assert len(rows) == 2
    logged_in(client, make_staff(tenant, role=Role.SUPPORT_AGENT, email="agent@acme.test"))
    assert download(client, "audit_log").status_code == 404


def test_webhooks_export_has_the_devices_subscription_and_the_status_tab(
    client: Client, tenant: Tenant, make_staff: StaffMaker
) -> None:
    subscription = smart_fleet(tenant)  # devices A, B and C
    received = datetime(2026, 3, 12, 7, 0, tzinfo=UTC)
    DeviceCloudWebhook.objects.create(
        tenant=tenant,
        webhook_id="wh-1",
        received_at=received,
        content_type="application/json",
        body="{}",
        event_type="device.activated",
        device_id="A",
        occurred_at=datetime(2026, 3, 12, 6, 59, tzinfo=UTC),
        status="applied",
        outcome="Device A activated",
        attempts=1,
        applied_at=received,
    )
    DeviceCloudWebhook.objects.create(
        tenant=tenant,
        webhook_id="wh-2",
        received_at=received,
        content_type="application/json",
        body="{}",
        event_type="device.activated",
        device_id="Z",
        status="rejected",
        outcome="Unknown device Z",
        attempts=1,
    )
    logged_in(client, make_staff(tenant, role=Role.SUPPORT_AGENT))
    header, *rows = table(download(client, "webhooks", status="rejected"))
    assert header == [
        "received_at", "webhook_id", "event_type", "device_id", "subscription_external_id", "occurred_at", "status",
        "error", "attempts", "applied_at",
    ]  # fmt: skip
    assert rows == [
        ["2026-03-12T07:00:00+00:00", "wh-2", "device.activated", "Z", "", "", "rejected", "Unknown device Z", "1", ""],
    ]  # fmt: skip
    _, *rows = table(download(client, "webhooks", status="applied"))
    assert rows == [
        ["2026-03-12T07:00:00+00:00", "wh-1", "device.activated", "A", subscription.external_id,
         "2026-03-12T06:59:00+00:00", "applied", "", "1", "2026-03-12T07:00:00+00:00"],
    ]  # fmt: skip
    _, *rows = table(download(client, "webhooks", status="nonsense"))  # every status, as the page
    assert len(rows) == 2


def test_rejected_events_export_follows_the_search_and_the_reason(
    client: Client, tenant: Tenant, make_staff: StaffMaker
) -> None:
    received = datetime(2026, 4, 3, 10, 0, tzinfo=UTC)
    RejectedEvent.objects.create(
        tenant=tenant,
        received_at=received,
        transaction_id="tx-1",
        code="gps",
        reason="unknown_meter",
        detail="No meter gps",
        payload={"meter": "gps", "value": 3},
    )
    RejectedEvent.objects.create(
        tenant=tenant,
        received_at=received,
        transaction_id="tx-2",
        code="",
        reason="missing_field",
        detail="x",
        payload={},
    )
    logged_in(client, make_staff(tenant))
    header, *rows = table(download(client, "rejected_events", reason="unknown_meter", q="tx"))
    assert header == ["received_at", "transaction_id", "meter", "reason", "detail", "payload"]
    assert rows == [
        ["2026-04-03T10:00:00+00:00", "tx-1", "gps", "unknown_meter", "No meter gps", '{"meter": "gps", "value": 3}'],
    ]
    _, *rows = table(download(client, "rejected_events", q="tx-2"))
    assert [r[1] for r in rows] == ["tx-2"]
    _, *rows = table(download(client, "rejected_events", reason="no_such_reason"))  # every reason, as the page
    assert len(rows) == 2


def test_catalog_exports(client: Client, tenant: Tenant, make_staff: StaffMaker) -> None:
    # given: billing.md's Smart Fleet offer, created on 1 March 2026 at 08:00 UTC
    with time_machine.travel(datetime(2026, 3, 1, 8, 0, tzinfo=UTC), tick=False):
        smart_fleet_catalog(tenant)
    logged_in(client, make_staff(tenant, role=Role.SUPPORT_AGENT))  # the catalog pages are everyone's
    created = "2026-03-01T08:00:00+00:00"

    header, *rows = table(download(client, "products"))
    assert header == [
        "code", "name", "kind", "tax_category", "revenue_treatment", "requires_shipment", "requires_activation",
        "standalone_selling_prices", "created_at",
    ]  # fmt: skip
    assert [r[0] for r in rows] == ["data-overage", "eld-200", "fleet-platform"]  # by code, as the page
    # hardware is recognised when delivered; its selling price 240.00 EUR without trailing zeros
    assert rows[1] == [
        "eld-200", "ELD-200 tracker", "hardware", "standard", "point_in_time", "yes", "yes", "EUR 240", created,
    ]  # fmt: skip

    header, *rows = table(download(client, "meters"))
    assert header == [
        "code", "name", "aggregation", "field", "dimensions", "filters", "time_bands", "accepts_negative", "created_at",
    ]  # fmt: skip
    assert rows == [["data_mb", "Data (MB)", "sum", "mb", "device_type, region", "", "", "no", created]]

    header, *rows = table(download(client, "plans"))
    assert header == [
        "code", "name", "interval", "commitment_months", "trial_days", "components", "price_books", "created_at",
    ]  # fmt: skip
    # three components (the tracker, the platform fee, the data overage), one EUR price book
    assert rows == [["smart-fleet", "Smart Fleet", "month", "12", "0", "3", "EUR", created]]

    header, *rows = table(download(client, "tax_rates"))
    assert header == ["country", "tax_category", "rate", "valid_from", "valid_to", "updated_at"]
    # VAT 20 % in France since always (empty valid_from), open-ended (empty valid_to)
    assert rows == [["FR", "standard", "20.0000", "", "", created]]


@pytest.mark.parametrize(
    "kind", ["bill_runs", "audit_log", "webhooks", "rejected_events", "products", "meters", "plans", "tax_rates"]
)
def test_the_number_of_queries_does_not_grow_with_the_runs_entries_and_catalog(
    client: Client, tenant: Tenant, make_staff: StaffMaker, kind: str
) -> None:
    logged_in(client, make_staff(tenant))
    customer = dupont(tenant)
    at = datetime(2026, 4, 1, tzinfo=UTC)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            body(download(client, kind))
        return len(captured)

    def add(n: int) -> None:
        run = BillRun.objects.create(tenant=tenant, billing_date=date(2026, 1, n))
        made = invoice(tenant, customer, "INV-%d" % n, day=date(2026, 1, n))
        Invoice.objects.filter(pk=made.pk).update(bill_run=run)
        AuditLogEntry.objects.create(
            tenant=tenant, at=at, actor_type="user", action="customer.updated", object_type="customer",
            object_id="c%d" % n, before={"name": "A"}, after={"name": "B"},
        )  # fmt: skip
        DeviceCloudWebhook.objects.create(
            tenant=tenant, webhook_id="wh-%d" % n, received_at=at, content_type="application/json", body="{}",
            device_id="A", status="applied",
        )  # fmt: skip
        RejectedEvent.objects.create(tenant=tenant, received_at=at, reason="missing_field", detail="x", payload={})
        product_create(
            tenant=tenant, actor=ACTOR, at=at, code="p%d" % n, name="P", kind="hardware",
            ssp=[{"currency": "EUR", "amount": "1"}, {"currency": "USD", "amount": "2"}],
        )  # fmt: skip
        meter_create(tenant=tenant, actor=ACTOR, at=at, code="m%d" % n, name="M", aggregation="count")
        country = ("DE", "ES", "IT", "BE", "NL")[n - 1]
        tax_rate_set(tenant=tenant, actor=ACTOR, at=at, country=country, tax_category="standard", rate="20")
        if n == 1:
            smart_fleet_catalog(tenant, at=at)
        else:
            plan_create(tenant=tenant, actor=ACTOR, at=at, **{**smart_fleet_plan_body(), "code": "plan-%d" % n})

    add(1)
    few = queries()
    for n in range(2, 6):
        add(n)
    assert queries() == few
