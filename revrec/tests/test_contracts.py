from datetime import date
from decimal import Decimal

import pytest

from revrec.contracts import contract_from_subscription
from revrec.errors import NoStandaloneSellingPrice
from revrec.models import Contract, ControlTransfer, RevrecSettings
from revrec.tests.conftest import END_OF_MARCH, ssp_set
from subscriptions.models import Subscription
from subscriptions.tests.factories import SMART_FLEET_ACTIVATIONS, smart_fleet, smart_fleet_activate
from tenancy.models import Tenant


def lines(contract: Contract) -> dict[tuple[str, str], tuple[Decimal, str, date | None, date | None, date | None]]:
    return {
        (o.kind, o.device_id): (o.allocated.amount, o.pattern, o.recognized_on, o.starts_on, o.ends_on)
        for o in contract.obligations.all()
    }


@pytest.mark.django_db
def test_the_smart_fleet_contract_is_allocated_by_ssp_per_device(fleet_contract: Contract) -> None:
    # Fixed consideration: hardware 3 x 240.00 = 720.00 + service 3 x 12 x 25.00 = 900.00 = 1,620.00.
    assert (fleet_contract.currency, fleet_contract.transaction_price.amount) == ("EUR", Decimal("1620.00"))
    # SSP weights 3 x 300 = 900 and 3 x 12 x 30 = 1,080 (1,980): hardware 1620 x 900/1980 =
    # 736.3636... -> 736.36, split 245.45, 245.45, 245.46; service 883.6363... -> 883.64, split
    # 294.54, 294.54, 294.56. Hardware at activation (Paris days); service over 12 months from it;
    # C, not activated yet, has no dates.
    assert lines(fleet_contract) == {
        ("hardware", "A"): (Decimal("245.45"), "point_in_time", date(2026, 3, 15), None, None),
        ("hardware", "B"): (Decimal("245.45"), "point_in_time", date(2026, 3, 20), None, None),
        ("hardware", "C"): (Decimal("245.46"), "point_in_time", None, None, None),
        ("service", "A"): (Decimal("294.54"), "ratable", None, date(2026, 3, 15), date(2027, 3, 15)),
        ("service", "B"): (Decimal("294.54"), "ratable", None, date(2026, 3, 20), date(2027, 3, 20)),
        ("service", "C"): (Decimal("294.56"), "ratable", None, None, None),
    }
    hardware = sum(o.allocated.amount for o in fleet_contract.obligations.filter(kind="hardware"))
    service = sum(o.allocated.amount for o in fleet_contract.obligations.filter(kind="service"))
    assert (hardware, service) == (Decimal("736.36"), Decimal("883.64"))


@pytest.mark.django_db
def test_building_the_contract_again_dates_the_devices_activated_since(
    tenant: Tenant, fleet: Subscription, fleet_contract: Contract
) -> None:
    smart_fleet_activate(tenant, ("C",))
    again = contract_from_subscription(subscription=fleet, at=SMART_FLEET_ACTIVATIONS["C"])
    assert again.pk == fleet_contract.pk
    got = lines(again)
    # Same allocation, C now dated from its activation on 10 April.
    assert got[("hardware", "C")] == (Decimal("245.46"), "point_in_time", date(2026, 4, 10), None, None)
    assert got[("service", "C")] == (Decimal("294.56"), "ratable", None, date(2026, 4, 10), date(2027, 4, 10))
    assert got[("service", "A")] == (Decimal("294.54"), "ratable", None, date(2026, 3, 15), date(2027, 3, 15))


@pytest.mark.django_db
def test_hardware_can_be_recognized_at_shipment(tenant: Tenant) -> None:
    RevrecSettings.objects.create(tenant=tenant, hardware_control_transfer=ControlTransfer.SHIPMENT)
    subscription = smart_fleet(tenant)
    ssp_set(tenant, "eld-200", "300.00")
    ssp_set(tenant, "fleet-platform", "30.00")
    smart_fleet_activate(tenant, ("A",))
    contract = contract_from_subscription(subscription=subscription, at=END_OF_MARCH)
    # Activated but never shipped: control has not passed, the hardware waits; the service runs.
    got = lines(contract)
    assert got[("hardware", "A")][2] is None
    assert got[("service", "A")][3] == date(2026, 3, 15)


@pytest.mark.django_db
def test_a_product_without_ssp_in_the_currency_is_refused(tenant: Tenant) -> None:
    subscription = smart_fleet(tenant)  # eld-200 has an SSP in EUR, fleet-platform none
    with pytest.raises(NoStandaloneSellingPrice) as error:
        contract_from_subscription(subscription=subscription, at=END_OF_MARCH)
    assert error.value.extra == {"product": "fleet-platform", "currency": "EUR"}
    assert not Contract.objects.exists()
