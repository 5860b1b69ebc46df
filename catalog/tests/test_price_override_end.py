"""Ending a customer override: an end row from an instant, after which the books price the
component again; the periods before it keep the negotiated price, and the history stays."""

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from billing_platform.errors import InvalidInput
from catalog.errors import PriceOverrideExists
from catalog.models import Plan
from catalog.services import price_override_create, price_override_end
from catalog.tests.factories import smart_fleet_catalog
from catalog.versions import component_prices_as_of
from customers.services import customer_create
from tenancy.actors import Actor
from tenancy.models import Tenant

pytestmark = pytest.mark.django_db

ACTOR = Actor.system("tests")
AT = datetime(2026, 1, 1, tzinfo=UTC)
DEC_1 = datetime(2026, 11, 30, 23, 0, tzinfo=UTC)  # 1 December 00:00 Paris
JAN_1 = datetime(2026, 12, 31, 23, 0, tzinfo=UTC)  # 1 January 00:00 Paris


def _platform(tenant: Tenant, customer_id: object, at: datetime) -> tuple[str, Decimal]:
    plan = Plan.objects.get(tenant=tenant, code="smart-fleet")
    [price] = [
        p
        for p in component_prices_as_of(plan=plan, currency="EUR", country="FR", at=at, customer_id=customer_id)
        if p.component.product.code == "fleet-platform"
    ]
    assert price.charge is not None
    return price.source, Decimal(price.charge["amount"])


def test_an_ended_override_gives_the_books_price_back_from_its_end(tenant: Tenant, api: Any) -> None:
    # given: the platform fee at 25.00 in the book, 20.00 negotiated from 1 December
    plan = smart_fleet_catalog(tenant, at=AT)
    paris = customer_create(
        tenant=tenant, actor=ACTOR, at=AT, external_id="paris", name="Paris", email="p@x.test", country="FR"
    )
    price_override_create(
        tenant=tenant,
        actor=ACTOR,
        at=AT,
        customer=paris,
        plan=plan,
        data={"product": "fleet-platform", "charge": {"model": "flat", "amount": "20.00"}, "effective_from": DEC_1},
    )

    # when: it ends on 1 January
    ended = price_override_end(
        tenant=tenant, actor=ACTOR, at=AT, customer=paris, plan=plan, product="fleet-platform", effective_from=JAN_1
    )

    # then
    assert (ended.price, ended.charge, ended.effective_from) == (None, None, JAN_1)
    assert _platform(tenant, paris.pk, datetime(2026, 11, 15, tzinfo=UTC)) == ("default", Decimal("25.00"))
    assert _platform(tenant, paris.pk, datetime(2026, 12, 15, tzinfo=UTC)) == ("override", Decimal("20.00"))
    assert _platform(tenant, paris.pk, datetime(2027, 1, 15, tzinfo=UTC)) == ("default", Decimal("25.00"))
    # the API lists both rows, the end one marked as such
    listed = api.get("/api/v1/plans/smart-fleet/price_overrides").json()
    rows = listed["results"]
    assert sorted((r["effective_from"], r["ended"], r["charge"] is None) for r in rows) == [
        ("2026-11-30T23:00:00Z", False, False),
        ("2026-12-31T23:00:00Z", True, True),
    ]
    # ending twice from the same instant is refused; from a later one, there is nothing left to end
    with pytest.raises(PriceOverrideExists, match="already has an override for this component from that date"):
        price_override_end(
            tenant=tenant, actor=ACTOR, at=AT, customer=paris, plan=plan, product="fleet-platform", effective_from=JAN_1
        )
    with pytest.raises(InvalidInput, match="No negotiated price of fleet-platform is in effect before that instant."):
        price_override_end(
            tenant=tenant,
            actor=ACTOR,
            at=AT,
            customer=paris,
            plan=plan,
            product="fleet-platform",
            effective_from=datetime(2027, 2, 1, tzinfo=UTC),
        )


def test_an_override_from_the_beginning_ends_even_before_the_day_it_was_made(tenant: Tenant) -> None:
    # given: 20.00 negotiated "from the beginning" (no date), made on 20 December; the book says 25.00
    plan = smart_fleet_catalog(tenant, at=AT)
    lyon = customer_create(
        tenant=tenant, actor=ACTOR, at=AT, external_id="lyon", name="Lyon", email="l@x.test", country="FR"
    )
    made = datetime(2026, 12, 20, tzinfo=UTC)
    price_override_create(
        tenant=tenant,
        actor=ACTOR,
        at=made,
        customer=lyon,
        plan=plan,
        data={"product": "fleet-platform", "charge": {"model": "flat", "amount": "20.00"}},
    )
    assert _platform(tenant, lyon.pk, datetime(2026, 11, 15, tzinfo=UTC)) == ("override", Decimal("20.00"))

    # when: it is ended from 1 December, a date before the day it was made
    price_override_end(
        tenant=tenant, actor=ACTOR, at=made, customer=lyon, plan=plan, product="fleet-platform", effective_from=DEC_1
    )

    # then: November keeps 20.00; from December the book's 25.00, as an override from the beginning
    # ranks before every dated row (as a version from the beginning does), whatever its creation
    assert _platform(tenant, lyon.pk, datetime(2026, 11, 15, tzinfo=UTC)) == ("override", Decimal("20.00"))
    assert _platform(tenant, lyon.pk, datetime(2026, 12, 15, tzinfo=UTC)) == ("default", Decimal("25.00"))
    assert _platform(tenant, lyon.pk, datetime(2027, 1, 15, tzinfo=UTC)) == ("default", Decimal("25.00"))
