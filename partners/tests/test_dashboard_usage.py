"""The usage of the partner's fleet: each meter's quantity per day of the month, over every
subscription of the partner's customers (and no one else's), in the tenant's days; the same rows as
a CSV file."""

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.test import Client

from catalog.models import Meter
from catalog.tests.factories import platform_plan
from customers.models import Partner
from customers.tests.factories import dupont
from partners.models import PartnerUser
from partners.tests.dashboard import make_partner, make_partner_user, partner_client, partner_customer
from subscriptions.models import Subscription
from subscriptions.tests.factories import signed_subscription
from tenancy.models import Tenant
from usage.models import UsageRollup

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 6, 20, 9, 0, tzinfo=UTC)


def _rollup(tenant: Tenant, sub: Subscription, meter: Meter, bucket: datetime, events: int, total: str) -> None:
    UsageRollup.objects.create(
        tenant=tenant, subscription=sub, meter=meter, bucket=bucket, event_count=events, value_sum=Decimal(total)
    )


@time_machine.travel(NOW, tick=False)
def test_daily_usage_of_the_fleet_per_meter(tenant: Tenant) -> None:
    # given: the partner's two customers and a direct customer, a "km" sum meter and a "pings" count meter
    partner: Partner = make_partner(tenant)
    user: PartnerUser = make_partner_user(partner)
    plan = platform_plan(tenant, "fleet-10", "10.00")
    km = Meter.objects.create(tenant=tenant, code="km", name="Distance", aggregation="sum", field="km")
    pings = Meter.objects.create(tenant=tenant, code="pings", name="Pings", aggregation="count")
    a = signed_subscription(
        tenant, customer=partner_customer(tenant, partner, "a", "A"), plan=plan, external_id="a", devices=("A",)
    )
    b = signed_subscription(
        tenant, customer=partner_customer(tenant, partner, "b", "B"), plan=plan, external_id="b", devices=("B",)
    )
    direct = signed_subscription(tenant, customer=dupont(tenant), plan=plan, external_id="d", devices=("D",))
    # 3 June in Paris: 12.5 + 7.5 km; 22:15 UTC on 3 June is already 4 June in Paris
    _rollup(tenant, a, km, datetime(2026, 6, 3, 8, 0, tzinfo=UTC), 4, "12.5")
    _rollup(tenant, b, km, datetime(2026, 6, 3, 9, 0, tzinfo=UTC), 2, "7.5")
    _rollup(tenant, b, pings, datetime(2026, 6, 3, 22, 15, tzinfo=UTC), 6, "0")
    _rollup(tenant, direct, km, datetime(2026, 6, 3, 8, 0, tzinfo=UTC), 1, "1000")
    # a May bucket is not in June
    _rollup(tenant, a, km, datetime(2026, 5, 31, 21, 45, tzinfo=UTC), 1, "5")
    client = partner_client(user)
    # when
    page = client.get("/partners/usage/").content.decode()
    # then: 3 June: 20 km and no ping; 4 June: 6 pings
    assert "June 2026" in page
    assert "1,000" not in page
    rows = re.findall(r"<tr>\s*<th scope=\"row\"[^>]*>([^<]+)</th>(.*?)</tr>", page, re.S)
    cells = {day: re.findall(r'<td class="num">([^<]*)</td>', rest) for day, rest in rows}
    assert len(cells) == 30
    # columns: Distance, Pings (by name)
    assert cells["3 Jun 2026"] == ["20", "—"]
    assert cells["4 Jun 2026"] == ["—", "6"]
    assert cells["5 Jun 2026"] == ["—", "—"]
    assert _csv(client, "/partners/usage.csv") == ["day,meter,quantity", "2026-06-03,km,20", "2026-06-04,pings,6"]
    # May: 5 km on 31 May (21:45 UTC is 23:45 in Paris)
    assert _csv(client, "/partners/usage.csv?month=2026-05")[1:] == ["2026-05-31,km,5"]


def _csv(client: Client, url: str) -> list[str]:
    response: Any = client.get(url)
    assert response.status_code == 200
    return b"".join(response.streaming_content).decode().splitlines()
