"""Revenue contracts of orders from the portal's shop: a contract names each device's obligations,
so a subscription whose slots wait for their device gets its contract once every slot has one."""

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from revrec.contracts import SyncReport, contracts_sync
from revrec.models import Contract, PerformanceObligation
from revrec.tests.conftest import ssp_set
from subscriptions.models import Device
from subscriptions.orders import order_place, slot_bind
from subscriptions.tests.shop import ACTOR, ADDRESS, shop_catalog, shop_customer
from tenancy.models import Tenant

pytestmark = pytest.mark.django_db
PARIS = ZoneInfo("Europe/Paris")
AT = datetime(2026, 3, 10, 10, 0, tzinfo=PARIS)


def test_the_contract_waits_for_every_slot_to_have_its_device(tenant: Tenant) -> None:
    # given: 2 devices ordered on a 12-month plan, the products' SSPs set
    plan = shop_catalog(tenant, commitment_months=12)
    ssp_set(tenant, "eld-200", "300.00")
    ssp_set(tenant, "fleet-platform", "30.00")
    order = order_place(
        customer=shop_customer(tenant), plan=plan, quantity=2, shipping_address=ADDRESS, actor=ACTOR, at=AT
    )
    first, second = Device.objects.filter(subscription=order.subscription).order_by("pk")
    # when/then: no contract while a slot has no device
    assert contracts_sync(tenant_id=tenant.pk, at=AT) == SyncReport(skipped={"devices_not_shipped": 1})
    slot_bind(tenant=tenant, subscription=order.subscription, slot_id=first.pk, device_id="A", actor=ACTOR, at=AT)
    assert contracts_sync(tenant_id=tenant.pk, at=AT).skipped == {"devices_not_shipped": 1}
    # when: the second slot has its device
    slot_bind(tenant=tenant, subscription=order.subscription, slot_id=second.pk, device_id="B", actor=ACTOR, at=AT)
    report = contracts_sync(tenant_id=tenant.pk, at=AT)
    # then: the contract, hardware 2 x 240.00 + service 2 x 12 x 25.00 = 480.00 + 600.00 = 1,080.00,
    # with a hardware and a service obligation for each of A and B
    assert report.built == 1
    contract = Contract.objects.get(subscription=order.subscription)
    assert contract.transaction_price.amount == Decimal("1080.00")
    assert sorted(PerformanceObligation.objects.filter(contract=contract).values_list("kind", "device_id")) == [
        ("hardware", "A"),
        ("hardware", "B"),
        ("service", "A"),
        ("service", "B"),
    ]
