from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from catalog.models import Product, ProductSsp
from revrec.contracts import contract_from_subscription
from revrec.models import Contract
from subscriptions.models import Subscription
from subscriptions.tests.factories import smart_fleet, smart_fleet_activate
from tenancy.models import Tenant

PARIS = ZoneInfo("Europe/Paris")
# After the March activations of A and B, before C's (10 April).
END_OF_MARCH = datetime(2026, 3, 31, 12, 0, tzinfo=PARIS)


def ssp_set(tenant: Tenant, code: str, amount: str, currency: str = "EUR") -> None:
    product = Product.objects.get(tenant=tenant, code=code)
    ProductSsp.objects.update_or_create(
        tenant=tenant, product=product, currency=currency, defaults={"amount": Decimal(amount)}
    )


@pytest.fixture
def fleet(tenant: Tenant) -> Subscription:
    """revrec.md's Smart Fleet: the subscription of billing.md with SSP eld-200 300.00 and
    fleet-platform 30.00 EUR per device-month, devices A and B activated in March, C not yet."""
    subscription = smart_fleet(tenant)
    ssp_set(tenant, "eld-200", "300.00")
    ssp_set(tenant, "fleet-platform", "30.00")
    smart_fleet_activate(tenant, ("A", "B"))
    subscription.refresh_from_db()
    return subscription


@pytest.fixture
def fleet_contract(fleet: Subscription) -> Contract:
    return contract_from_subscription(subscription=fleet, at=END_OF_MARCH)
