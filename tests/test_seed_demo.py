from datetime import date, datetime, timedelta
from decimal import Decimal
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.contrib.auth.hashers import check_password
from django.core.management import call_command
from django.db.models import Sum
from django.utils import timezone
from djmoney.money import Money

from billing_platform.rls import tenant_context
from catalog.models import Plan, PriceVersion, Product
from catalog.quotes import UsageInput, price_quote
from customers.models import Customer, Partner
from invoicing.models import BillRun, Invoice, InvoiceKind, InvoiceLine
from partners.models import CommissionStatement, PartnerUser
from payments.models import BalanceTransaction, DunningAction, DunningPolicy, Payment, PaymentAllocation
from revrec.metrics import mrr_in_reporting_currency, mrr_report
from revrec.models import ExchangeRate, JournalEntry, RecognitionEntry, RecognitionRun
from revrec.rates import RateTable
from subscriptions.models import Device, DeviceCloudWebhook, Subscription
from tenancy.models import ApiKey, AuditLogEntry, Membership, Tenant
from usage.models import UsageEvent
from webhooks.models import WebhookEvent

pytestmark = pytest.mark.django_db


def test_seed_demo_is_idempotent_and_its_catalog_prices_the_smart_fleet_offer() -> None:
    first, second = StringIO(), StringIO()
    # as in production: the command runs as the application role, under row-level security
    with tenant_context(None):
        call_command("seed_demo", stdout=first)
        call_command("seed_demo", stdout=second)
    assert "Back-office login: demo@smartfleet.test / smartfleet-demo" in second.getvalue()
    assert "Demo API key" in first.getvalue()
    assert "Demo API key" not in second.getvalue()
    tenant = Tenant.objects.get(slug="smart-fleet")
    assert Membership.objects.filter(tenant=tenant).count() == 1
    assert Customer.objects.filter(tenant=tenant).count() == 3
    assert Product.objects.filter(tenant=tenant).count() == 4
    # EUR, and USD for Pacific Haulage
    assert PriceVersion.objects.filter(tenant=tenant).count() == 2
    assert ApiKey.objects.filter(tenant=tenant).count() == 1
    # the seller identity of its invoices, filled once, through the audited service
    assert (tenant.seller_name, tenant.vat_number, tenant.legal_registration_id) == (
        "Smart Fleet Telematics SAS",
        "FR74852379890",
        "852379890",
    )
    assert (tenant.postal_code, tenant.city, tenant.country) == ("75008", "Paris", "FR")
    assert AuditLogEntry.objects.filter(tenant=tenant, action="tenant.seller_updated").count() == 1
    # the partner AlpNet, which sold to Transports Dupont, once, with its admin's dashboard login
    alpnet = Partner.objects.get(tenant=tenant, code="alpnet")
    assert (alpnet.name, alpnet.country, alpnet.currency) == ("AlpNet", "FR", "EUR")
    assert alpnet.commission_plan == {"hardware": "5", "service": "20", "usage": "10", "fee": "0"}
    assert list(Customer.objects.filter(tenant=tenant, partner=alpnet).values_list("external_id", flat=True)) == [
        "dupont"
    ]
    assert Customer.objects.filter(tenant=tenant, partner__isnull=True).count() == 2
    assert AuditLogEntry.objects.filter(tenant=tenant, action="partner.created").count() == 1
    partner_user = PartnerUser.objects.get(tenant=tenant)
    assert (partner_user.email, partner_user.partner_id, partner_user.role) == (
        "paul.girard@alpnet.test",
        alpnet.pk,
        "admin",
    )
    assert check_password("alpnet-partner-demo", partner_user.password)
    # the plan it sells: offered to partners
    assert Plan.objects.get(tenant=tenant, code="smart-fleet").partner_visible is True
    # its statements, built once: one per month of the history that had Dupont's money, the oldest
    # paid, the others approved, the last one a draft
    statements = list(CommissionStatement.objects.filter(tenant=tenant, partner=alpnet).order_by("month"))
    assert len(statements) >= 2
    assert statements[0].status == "paid"
    assert [s.status for s in statements[1:-1]] == ["approved"] * (len(statements) - 2)
    assert statements[-1].status == "draft"
    assert all(s.total > 0 for s in statements)
    assert "AlpNet's commission statements built for %d months" % len(statements) in first.getvalue()
    assert "commission statements built" not in second.getvalue()
    assert (
        "Partner dashboard: /partners/smart-fleet/login/ as paul.girard@alpnet.test (AlpNet, French), "
        "password alpnet-partner-demo"
    ) in second.getvalue()
    dupont = Customer.objects.get(tenant=tenant, external_id="dupont")
    quote = price_quote(
        tenant=tenant,
        plan=Plan.objects.get(tenant=tenant, code="smart-fleet"),
        currency="EUR",
        devices=2,
        usage=[UsageInput("data_mb", Decimal("3800"))],
        at=timezone.now(),
        customer=dupont,
    )
    # 2 x 20.00 + 2 x 25.00 + (3800 - 2048) x 0.010 = 40.00 + 50.00 + 17.52 = 107.52; VAT 20 % = 21.50
    assert [str(line.amount) for line in quote.lines] == ["40.00", "50.00", "17.52"]
    assert (str(quote.net_total.amount), str(quote.total.amount)) == ("107.52", "129.02")


PARIS = ZoneInfo("Europe/Paris")
# Seeded on 10 June 2026, 10:00 Paris: Dupont signed on 10 March, 10:00, as in billing.md.
SEEDED_AT = datetime(2026, 6, 10, 10, 0, tzinfo=PARIS)
HISTORY_TABLES = (
    Subscription,
    RecognitionEntry,
    JournalEntry,
    Device,
    UsageEvent,
    BillRun,
    Invoice,
    InvoiceLine,
    Payment,
    PaymentAllocation,
    DeviceCloudWebhook,
    RecognitionRun,
    BalanceTransaction,
    DunningAction,
    DunningPolicy,
    AuditLogEntry,
    WebhookEvent,
)


def seed(at: datetime) -> str:
    out = StringIO()
    with time_machine.travel(at, tick=False), tenant_context(None):
        call_command("seed_demo", stdout=out)
    return out.getvalue()


def invoices_of(customer: str) -> list[Invoice]:
    return list(
        Invoice.objects.filter(customer__external_id=customer, kind=InvoiceKind.INVOICE)
        .order_by("issue_date")
        .prefetch_related("lines")
    )


def test_the_demo_has_a_billing_history_made_by_the_services() -> None:
    output = seed(SEEDED_AT)
    # 3 Dupont + 1 Nordic + 2 Pacific invoices finalized, Nordic's 15 May draft left for review;
    # Dupont 2 payments, Pacific 2; reminders: Dupont's 1 May invoice (due 31 May, 10 days late: day 7)
    # and Nordic's 15 April one (due 15 May, 26 days late)
    assert (
        "Billing history: 6 invoices finalized, 1 draft to review (Billing → Invoices), 4 payments; "
        "dunning now: 2 reminders, 2 overdue, 1 subscriptions suspended"
    ) in output
    # last, the device cloud's secret, the one that verifies its webhooks
    tenant = Tenant.objects.get(slug="smart-fleet")
    assert output.splitlines()[-1] == (
        "Device-cloud secret (signs the device cloud's activation webhooks; Tripod verifies them with it): "
        + tenant.device_cloud_secrets[0]
    )
    assert tenant.device_cloud_secrets[0].startswith("whsec_")
    # Pacific Haulage's dollars convert: a USD rate for each month from the first signature (Dupont,
    # March) to June, so the dashboard and the MRR report flag no month as missing
    assert "Exchange rates entered for 4 months (Analytics → Exchange rates)" in output
    with tenant_context(tenant):
        rates = list(
            ExchangeRate.objects.filter(tenant=tenant).order_by("month").values_list("month", "currency", "rate")
        )
        assert rates == [
            (date(2026, 3, 1), "USD", Decimal("0.9245")),
            (date(2026, 4, 1), "USD", Decimal("0.9161")),
            (date(2026, 5, 1), "USD", Decimal("0.8874")),
            (date(2026, 6, 1), "USD", Decimal("0.8731")),
        ]
        months = mrr_report(tenant_id=tenant.pk, start=date(2026, 3, 1), end=date(2026, 6, 1))
        table = RateTable.load(
            tenant=tenant,
            months=[m.month for m in months],
            currencies={c.currency for m in months for c in m.currencies},
        )
        converted = mrr_in_reporting_currency(tenant=tenant, months=months, rates=table)
        assert converted.missing_rates == []
    dupont, nordlog, pacific = invoices_of("dupont"), invoices_of("nordlog"), invoices_of("pacific-haul")
    assert [i.issue_date for i in dupont] == [date(2026, 4, 1), date(2026, 5, 1), date(2026, 6, 1)]
    assert [i.issue_date for i in nordlog] == [date(2026, 4, 15), date(2026, 5, 15)]
    assert [i.issue_date for i in pacific] == [date(2026, 4, 30), date(2026, 5, 31)]
    # numbered in the order they were finalized; the draft has no number yet
    finalized = [i for i in dupont + nordlog + pacific if i.status != "draft"]
    assert [i.number for i in sorted(finalized, key=lambda i: i.issue_date)] == [
        "INV-2026-00000%d" % n for n in range(1, 7)
    ]
    assert [i.payment_status for i in dupont] == ["paid", "partially_paid", "unpaid"]
    assert [(i.status, i.number) for i in nordlog] == [("finalized", "INV-2026-000002"), ("draft", "")]
    assert nordlog[0].payment_status == "unpaid"
    # a bill run on each of the 7 billing dates, all finished; the one of 15 May left its draft
    runs = BillRun.objects.order_by("billing_date")
    assert len(runs) == 7
    assert {run.status for run in runs} == {"completed"}
    assert nordlog[1].bill_run is not None
    assert nordlog[1].bill_run.billing_date == date(2026, 5, 15)
    # the 7 devices activated by the device cloud's signed webhooks, each applied once
    assert sorted(DeviceCloudWebhook.objects.values_list("device_id", "status")) == [
        (device, "applied") for device in ("A", "B", "C", "N1", "N2", "P1", "P2")
    ]
    assert [i.payment_status for i in pacific] == ["paid", "paid"]

    # billing.md's invoice of 1 April: 60.00 + 13.71 + 9.68 + 50.00 + 17.52 = 150.91, VAT 30.18
    first = dupont[0]
    assert [(x.type, str(x.amount)) for x in first.lines.all()] == [
        ("hardware", "60.0000"),
        ("service", "13.7100"),
        ("service", "9.6800"),
        ("service", "50.0000"),
        ("usage", "17.5200"),
    ]
    assert (first.total, first.amount_paid, first.amount_due) == (
        Money("181.09", "EUR"),
        Money("181.09", "EUR"),
        Money(0, "EUR"),
    )
    # billing.md's invoice of 1 May (308.57), 100.00 received by transfer: 208.57 due
    assert (dupont[1].total, dupont[1].amount_due) == (Money("308.57", "EUR"), Money("208.57", "EUR"))
    # 1 June: instalment 3/12 60.00 + June 3 x 25.00 + May's 4200 + 6100 + 3900 = 14200 MB - 3 x 1024
    # = 11128: 10000 x 0.010 + 1128 x 0.005 = 105.64; net 240.64, VAT 48.128 -> 48.13, total 288.77
    assert dupont[2].total == Money("288.77", "EUR")
    payments = Payment.objects.filter(customer__external_id="dupont").order_by("received_at")
    assert [(p.method, str(p.amount.amount)) for p in payments] == [
        ("bank_transfer", "181.0900"),
        ("bank_transfer", "100.0000"),
    ]

    # Nordic's 15 April invoice, due 15 May, is 26 days past due (suspension at 21): suspended
    subscriptions = dict(Subscription.objects.values_list("external_id", "status"))
    assert subscriptions == {"dupont-fleet": "active", "nordlog-fleet": "suspended", "pacific-fleet": "active"}
    assert DunningAction.objects.filter(kind="suspension", subscription__external_id="nordlog-fleet").count() == 1
    # reverse-charged services and intra-community hardware: 40.00 + 27.42 + 50.00 + 22.52, no VAT
    assert (nordlog[0].net_total, nordlog[0].total) == (Money("139.94", "EUR"), Money("139.94", "EUR"))

    # Pacific's 31 May invoice: instalment 2 x 21.67 = 43.34 + June 2 x 29.00 + May's 1600 + 2100 =
    # 3700 MB - 2048 = 1652 x 0.012 = 19.82: 121.16, exported (no VAT); paid 150.00: 28.84 kept
    assert pacific[1].total == Money("121.16", "USD")
    paid = Payment.objects.filter(customer__external_id="pacific-haul").order_by("received_at")
    assert [(p.method, p.amount) for p in paid] == [
        ("cheque", Money("141.09", "USD")),
        ("bank_transfer", Money("150.00", "USD")),
    ]
    assert Customer.objects.get(external_id="pacific-haul").balance == Decimal("28.84")

    # Revenue recognized from March to May (the months before 10 June), left open. Dupont's contract
    # (SSP = price, so 240.00 a tracker and 300.00 of service a device) recognizes in March A and B's
    # trackers 480.00, A's service 300.00 x 17/365 = 13.97, B's 300.00 x 12/365 = 9.86 and March's
    # usage 17.52: 521.35. Every journal entry balances.
    assert "Revenue recognized for 3 months" in output
    # by the recognition runs of March, April and May, finished
    assert sorted((run.month, run.status) for run in RecognitionRun.objects.all()) == [
        (date(2026, month, 1), "succeeded") for month in (3, 4, 5)
    ]
    march = RecognitionEntry.objects.filter(
        obligation__contract__subscription__external_id="dupont-fleet", period=date(2026, 3, 1)
    ).aggregate(total=Sum("amount"))["total"]
    assert march == Decimal("521.35")
    for entry in JournalEntry.objects.prefetch_related("lines"):
        lines = entry.lines.all()
        assert sum(line.debit.amount for line in lines) == sum(line.credit.amount for line in lines), entry

    # a second run, the next day, creates nothing
    counts = {model.__name__: model.objects.count() for model in HISTORY_TABLES}
    again = seed(SEEDED_AT + timedelta(days=1))
    assert "Billing history: already there" in again
    assert {model.__name__: model.objects.count() for model in HISTORY_TABLES} == counts


@pytest.mark.parametrize(
    "at",
    [
        datetime(2026, 3, 1, 0, 30, tzinfo=PARIS),  # Dupont billed 1 March, half an hour ago
        datetime(2026, 7, 31, 23, 0, tzinfo=PARIS),  # Pacific's billing day, Dupont signed on 30 April
        datetime(2027, 2, 28, 12, 0, tzinfo=PARIS),  # a short month
    ],
)
def test_the_history_tells_the_same_story_whatever_the_day(at: datetime) -> None:
    seed(at)
    assert [i.payment_status for i in invoices_of("dupont")] == ["paid", "partially_paid", "unpaid"]
    # Nordic's latest invoice is the one draft
    assert [i.status for i in Invoice.objects.filter(status="draft")] == ["draft"]
    assert invoices_of("nordlog")[-1].status == "draft"
    # Nordic: its first invoice is 22 to 53 days past due, never written off (60 days)
    assert Subscription.objects.get(external_id="nordlog-fleet").status == "suspended"
    assert not Invoice.objects.filter(payment_status="uncollectible").exists()
    pacific = invoices_of("pacific-haul")
    assert {i.payment_status for i in pacific} == {"paid"}
    assert Customer.objects.get(external_id="pacific-haul").balance > 0
