"""Usage at the largest value an event may carry (usage.ingest.MAX_EVENT_VALUE), summed many times:
stored, rolled up and billed without overflowing a column."""

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db.models import Sum
from django.utils import timezone
from djmoney.money import Money

from catalog.services import meter_create, plan_create, product_create, tax_rate_set
from customers.tests.factories import dupont
from invoicing.services import invoice_generate
from subscriptions.tests.factories import signed_subscription
from tenancy.actors import Actor
from tenancy.models import Tenant
from usage.ingest import MAX_BATCH, MAX_EVENT_VALUE, events_ingest
from usage.models import UsageDailyRollup, UsageRollup
from usage.partitions import forget_known_partitions

pytestmark = pytest.mark.django_db
PARIS = ZoneInfo("Europe/Paris")
ACTOR = Actor.system("tests")


@pytest.fixture(autouse=True)
def partitions() -> Iterator[None]:
    forget_known_partitions()
    yield
    forget_known_partitions()


def test_full_batches_at_the_bound_are_stored_rolled_up_and_billed(tenant: Tenant) -> None:
    # given: data billed per unit at 0.0001 EUR, no allowance, a Paris customer signed on 1 March
    now = timezone.now()
    product_create(tenant=tenant, actor=ACTOR, at=now, code="data", name="Data", kind="usage")
    meter_create(tenant=tenant, actor=ACTOR, at=now, code="bytes", name="Bytes", aggregation="sum", field="n")
    tax_rate_set(tenant=tenant, actor=ACTOR, at=now, country="FR", tax_category="standard", rate="20")
    plan = plan_create(
        tenant=tenant,
        actor=ACTOR,
        at=now,
        code="p",
        name="P",
        prices=[{"currency": "EUR"}],
        components=[{"product": "data", "meter": "bytes", "charge": {"model": "per_unit", "unit_amount": "0.0001"}}],
    )
    customer = dupont(tenant)
    signed_subscription(
        tenant,
        customer=customer,
        plan=plan,
        external_id="s",
        devices=("A",),
        signed_at=datetime(2026, 3, 1, 9, tzinfo=PARIS),
        starts_on=date(2026, 3, 1),
    )
    # when: two full batches of events at the bound, in March (several per 15-minute bucket)
    first = datetime(2026, 3, 2, tzinfo=PARIS)
    for batch in range(2):
        events = [
            {
                "transaction_id": "e%d-%d" % (batch, i),
                "code": "bytes",
                "device_id": "A",
                "timestamp": (first + timedelta(minutes=i)).isoformat(),
                "properties": {"n": str(MAX_EVENT_VALUE)},
            }
            for i in range(MAX_BATCH)
        ]
        result = events_ingest(tenant=tenant, events=events, received_at=datetime(2026, 3, 31, 12, tzinfo=PARIS))
        assert result.count("accepted") == MAX_BATCH
    # then: 2,000 x 10^12 = 2 x 10^15 at both rollup levels
    total = Decimal(2 * MAX_BATCH) * MAX_EVENT_VALUE
    assert UsageRollup.objects.filter(tenant=tenant).aggregate(s=Sum("value_sum"))["s"] == total
    assert UsageDailyRollup.objects.filter(tenant=tenant).aggregate(s=Sum("value_sum"))["s"] == total
    # and the 1 April invoice bills them: 2 x 10^15 x 0.0001 = 200,000,000,000.00 EUR, VAT 20% on top
    invoice = invoice_generate(
        customer=customer, billing_date=date(2026, 4, 1), at=datetime(2026, 4, 1, 1, tzinfo=PARIS)
    )
    assert invoice is not None
    [line] = invoice.lines.filter(type="usage")
    assert (line.quantity, line.amount) == (total, Decimal("200000000000.00"))
    assert (invoice.net_total, invoice.total) == (Money("200000000000.00", "EUR"), Money("240000000000.00", "EUR"))
