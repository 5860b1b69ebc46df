"""A subscription that has ended is billed once more, by the invoice that closes the period during
which it ended: its usage in arrears and the credits and fees of its end, never a fee for a period
after it (billing.md). A cancellation at once, and a commitment not renewed that ends inside a
period billed in advance."""

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from djmoney.money import Money

from catalog.services import tax_rate_set
from catalog.tests.factories import platform_plan
from customers.tests.factories import dupont
from invoicing.services import invoice_generate
from subscriptions.changes import subscription_change, subscription_ends_apply_due
from subscriptions.models import ServiceCharge
from subscriptions.tests.factories import signed_subscription
from tenancy.actors import Actor
from tenancy.models import Tenant

pytestmark = pytest.mark.django_db
PARIS = ZoneInfo("Europe/Paris")
ACTOR = Actor.system("tests")


def paris(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=PARIS)


def test_a_subscription_cancelled_at_once_has_its_credits_and_fee_on_the_invoice_closing_its_period(
    tenant: Tenant,
) -> None:
    # given: committed to 1 April 2027 with the remaining fees due on early termination; April 2026
    # billed in advance (2 x 25.00)
    tax_rate_set(tenant=tenant, actor=ACTOR, at=paris(2026, 1, 1), country="FR", tax_category="standard", rate="20")
    plan = platform_plan(tenant, "committed", "25.00", commitment_months=15, early_termination="remaining_fees")
    subscription = signed_subscription(tenant, customer=dupont(tenant), plan=plan, devices=("A", "B"))
    customer = subscription.customer
    assert invoice_generate(customer=customer, billing_date=date(2026, 4, 1), at=paris(2026, 4, 1, 6)) is not None
    # when: cancelled at once on 16 April
    subscription_change(
        subscription=subscription,
        action="cancel",
        params={"at_period_end": False},
        actor=ACTOR,
        at=paris(2026, 4, 16, 10),
    )
    # then: the invoice of 1 May, which closes April, bills the credit of 16-30 April (2 x 25.00 x
    # 15/30 = 25.00) and the fee of the 11 committed months left after April (May 2026 to March 2027:
    # 11 x 2 x 25.00 = 550.00), and no fee for May
    may = invoice_generate(customer=customer, billing_date=date(2026, 5, 1), at=paris(2026, 5, 1, 6))
    assert may is not None
    assert [(line.type, line.amount) for line in may.lines.all()] == [
        ("credit", Decimal("25.00")),
        ("fee", Decimal("550.00")),
    ]
    assert may.net_total == Money("525.00", "EUR")
    # and nothing after
    assert invoice_generate(customer=customer, billing_date=date(2026, 6, 1), at=paris(2026, 6, 1, 6)) is None


def test_a_commitment_that_ends_inside_a_billed_period_credits_the_rest_of_it(tenant: Tenant) -> None:
    # given: started on 15 January with billing day 1, 3 months: the commitment ends on 15 April,
    # inside April, which the invoice of 1 April bills in advance (2 x 25.00 = 50.00)
    tax_rate_set(tenant=tenant, actor=ACTOR, at=paris(2026, 1, 1), country="FR", tax_category="standard", rate="20")
    plan = platform_plan(tenant, "committed", "25.00", commitment_months=3)
    subscription = signed_subscription(
        tenant,
        customer=dupont(tenant),
        plan=plan,
        devices=("A", "B"),
        starts_on=date(2026, 1, 15),
        auto_renew=False,
    )
    assert subscription.commitment_ends_at == paris(2026, 4, 15)
    customer = subscription.customer
    april = invoice_generate(customer=customer, billing_date=date(2026, 4, 1), at=paris(2026, 4, 1, 6))
    assert april is not None
    assert [(line.type, line.amount, line.period_start) for line in april.lines.all()] == [
        ("service", Decimal("50.00"), paris(2026, 4, 1))
    ]
    # when: the schedule passes on 15 April
    assert subscription_ends_apply_due(tenant=tenant, at=paris(2026, 4, 15, 0, 10)) == 1
    # then: the unused part is credited per device, 15-30 April: 25.00 x 16/30 = 13.333... -> 13.33
    subscription.refresh_from_db()
    assert (subscription.status, subscription.ended_at) == ("ended", paris(2026, 4, 15))
    credits = ServiceCharge.objects.filter(subscription=subscription, kind="credit")
    assert sorted((c.device.device_id, c.amount, c.covered_start) for c in credits if c.device) == [
        ("A", Decimal("13.33"), paris(2026, 4, 15)),
        ("B", Decimal("13.33"), paris(2026, 4, 15)),
    ]
    [change] = subscription.changes.all()
    assert (change.action, change.status, change.effective_at) == ("cancel", "applied", paris(2026, 4, 15))
    # and the invoice of 1 May bills that credit and no fee for May: -26.66, VAT -5.33
    may = invoice_generate(customer=customer, billing_date=date(2026, 5, 1), at=paris(2026, 5, 1, 6))
    assert may is not None
    assert [(line.type, line.amount, line.devices) for line in may.lines.all()] == [
        ("credit", Decimal("26.66"), ["A", "B"])
    ]
    assert (may.net_total, may.tax_total, may.total) == (
        Money("-26.66", "EUR"),
        Money("-5.33", "EUR"),
        Money("-31.99", "EUR"),
    )
    # and nothing on 1 June
    assert invoice_generate(customer=customer, billing_date=date(2026, 6, 1), at=paris(2026, 6, 1, 6)) is None
