"""A subscription that has ended is billed once more, by the invoice that closes the period during
which it ended: its usage in arrears and the credits and fees of its end, never a fee for a period
after it (billing.md)."""

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from catalog.services import tax_rate_set
from catalog.tests.factories import platform_plan
from customers.tests.factories import dupont
from invoicing.services import invoice_generate
from subscriptions.changes import subscription_change
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
    assert may.net_total == Decimal("525.00")
    # and nothing after
    assert invoice_generate(customer=customer, billing_date=date(2026, 6, 1), at=paris(2026, 6, 1, 6)) is None
