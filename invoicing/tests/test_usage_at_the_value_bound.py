"""Usage at the largest value an event may carry (usage.ingest.MAX_EVENT_VALUE), summed many times:
stored, rolled up and billed without overflowing a column."""

from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db.models import Sum
from djmoney.money import Money

from invoicing.services import invoice_generate
from invoicing.tests.factories import usage_customer
from tenancy.actors import Actor
from tenancy.models import Tenant
from usage.ingest import MAX_BATCH, MAX_EVENT_VALUE, events_ingest
from usage.models import UsageDailyRollup, UsageRollup

pytestmark = pytest.mark.django_db
PARIS = ZoneInfo("Europe/Paris")
ACTOR = Actor.system("tests")


def test_full_batches_at_the_bound_are_stored_rolled_up_and_billed(tenant: Tenant) -> None:
    # given: data billed per unit at 0.0001 EUR, no allowance, a Paris customer signed on 1 March
    customer = usage_customer(
        tenant,
        products={"data": "Data"},
        meters={"bytes": {"name": "Bytes", "aggregation": "sum", "field": "n"}},
        components=[{"product": "data", "meter": "bytes", "charge": {"model": "per_unit", "unit_amount": "0.0001"}}],
        devices=("A",),
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
