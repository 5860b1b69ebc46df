"""Contract modifications, prospective (specs/revrec.md): devices added mid-term, a change of plan
and an early termination, applied by the sync that opens every recognition run."""

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest
import time_machine

from catalog.tests.factories import platform_plan
from customers.tests.factories import dupont
from revrec.contracts import contracts_sync
from revrec.models import Contract, ContractModification, PerformanceObligation, RecognitionEntry
from revrec.runs import recognition_run
from revrec.tests.conftest import PARIS, ssp_set
from subscriptions.changes import subscription_change
from subscriptions.models import Subscription
from subscriptions.services import device_event_apply
from subscriptions.tests.factories import ACTOR, signed_subscription, smart_fleet_activate
from tenancy.models import Tenant

pytestmark = pytest.mark.django_db
Lines = dict[tuple[str, str, date | None], tuple[Decimal, date | None, date | None]]


def paris(year: int, month: int, day: int, hour: int = 0) -> datetime:
    return datetime(year, month, day, hour, 0, tzinfo=PARIS)


def month_run(tenant: Tenant, month: date) -> None:
    """The month's run, on the 1st of the next month at 06:00 Paris."""
    year, number = (month.year + 1, 1) if month.month == 12 else (month.year, month.month + 1)
    recognition_run(tenant_id=tenant.pk, month=month, at=paris(year, number, 1, 6))


def activate(tenant: Tenant, device_id: str, at: datetime) -> None:
    with time_machine.travel(at, tick=False):
        device_event_apply(
            tenant=tenant, device_id=device_id, event_type="device.activated", occurred_at=at, actor=ACTOR
        )


def change(subscription: Subscription, action: str, params: dict[str, Any], at: datetime) -> None:
    with time_machine.travel(at, tick=False):
        subscription_change(subscription=subscription, action=action, params=params, actor=ACTOR, at=at)


def obligations(contract: Contract) -> Lines:
    """(kind, device, first day) -> (allocated, term start, term end)."""
    return {
        (o.kind, o.device_id, o.starts_on or o.recognized_on): (o.allocated.amount, o.starts_on, o.ends_on)
        for o in PerformanceObligation.objects.filter(contract=contract)
    }


def recognized(month: date) -> dict[tuple[str, str], Decimal]:
    out: dict[tuple[str, str], Decimal] = {}
    for e in RecognitionEntry.objects.filter(period=month).select_related("obligation"):
        key = (e.obligation.kind, e.obligation.device_id)
        out[key] = out.get(key, Decimal(0)) + e.amount.amount
    return out


def allocated_total(contract: Contract) -> Decimal:
    return sum((o.allocated.amount for o in PerformanceObligation.objects.filter(contract=contract)), Decimal(0))


def test_two_devices_added_mid_term_re_allocate_what_remains_with_their_price(
    tenant: Tenant, fleet: Subscription, fleet_contract: Contract
) -> None:
    # given: Smart Fleet, A (15 Mar), B (20 Mar) and C (10 Apr) activated, March to May recognized
    smart_fleet_activate(tenant, ("C",))
    for month in (date(2026, 3, 1), date(2026, 4, 1), date(2026, 5, 1)):
        month_run(tenant, month)
    # when: D and E are added on 1 June, D activated on 5 June; June is run on 1 July
    change(fleet, "add_devices", {"devices": [{"device_id": "D"}, {"device_id": "E"}]}, paris(2026, 6, 1, 10))
    activate(tenant, "D", paris(2026, 6, 5, 9))
    month_run(tenant, date(2026, 6, 1))
    # then: the new consideration is D and E's hardware 2 x 240.00 + service 2 x 12 x 25.00 = 1,080.00:
    # the transaction price goes from 1,620.00 to 2,700.00
    fleet_contract.refresh_from_db()
    [modification] = ContractModification.objects.filter(contract=fleet_contract)
    assert (modification.kind, modification.effective_on) == ("added_devices", date(2026, 6, 1))
    assert (modification.transaction_price_before.amount, modification.transaction_price_after.amount) == (
        Decimal("1620.00"),
        Decimal("2700.00"),
    )
    assert modification.details == {"devices": ["D", "E"], "consideration": "1080.00"}
    assert fleet_contract.transaction_price.amount == Decimal("2700.00") == allocated_total(fleet_contract)
    # The services running on 1 June keep what they recognized until then:
    #   A 294.54 x 78/365 (15 Mar - 1 Jun of 15 Mar 2026 - 15 Mar 2027) = 62.9428... -> 62.94, leaves 231.60
    #   B 294.54 x 73/365 (20 Mar - 1 Jun)                                = 58.908     -> 58.91, leaves 235.63
    #   C 294.56 x 52/365 (10 Apr - 1 Jun)                                = 41.9647... -> 41.96, leaves 252.60
    # Pool 231.60 + 235.63 + 252.60 = 719.83, plus 1,080.00 new: 1,799.83 to allocate by SSP weight over
    #   A from 1 Jun: 30 x 12 x 287/365 = 283.0684...   B: 360 x 292/365 = 288   C: 360 x 313/365 = 308.7123...
    #   hardware D, E: 300 each                           service D, E (a whole term): 360 each
    # = 2,199.7808...; exact parts 231.6026..., 235.6375..., 252.5841..., 245.4558... x 2, 294.5469... x 2;
    # rounded down they sum to 1,799.79, the 4 cents left go to the largest remainders: B (.0075...),
    # service D and E (.0069...), hardware D (.0058...).
    assert obligations(fleet_contract) == {
        ("hardware", "A", date(2026, 3, 15)): (Decimal("245.45"), None, None),
        ("hardware", "B", date(2026, 3, 20)): (Decimal("245.45"), None, None),
        ("hardware", "C", date(2026, 4, 10)): (Decimal("245.46"), None, None),
        ("hardware", "D", date(2026, 6, 5)): (Decimal("245.46"), None, None),
        ("hardware", "E", None): (Decimal("245.45"), None, None),
        ("service", "A", date(2026, 3, 15)): (Decimal("62.94"), date(2026, 3, 15), date(2026, 6, 1)),
        ("service", "A", date(2026, 6, 1)): (Decimal("231.60"), date(2026, 6, 1), date(2027, 3, 15)),
        ("service", "B", date(2026, 3, 20)): (Decimal("58.91"), date(2026, 3, 20), date(2026, 6, 1)),
        ("service", "B", date(2026, 6, 1)): (Decimal("235.64"), date(2026, 6, 1), date(2027, 3, 20)),
        ("service", "C", date(2026, 4, 10)): (Decimal("41.96"), date(2026, 4, 10), date(2026, 6, 1)),
        ("service", "C", date(2026, 6, 1)): (Decimal("252.58"), date(2026, 6, 1), date(2027, 4, 10)),
        # D commits 12 months from its own activation; E waits for its own.
        ("service", "D", date(2026, 6, 5)): (Decimal("294.55"), date(2026, 6, 5), date(2027, 6, 5)),
        ("service", "E", None): (Decimal("294.55"), None, None),
    }
    # June: A 231.60 x 30/287 = 24.2090... -> 24.21; B 235.64 x 30/292 = 24.2095... -> 24.21;
    # C 252.58 x 30/313 = 24.2089... -> 24.21; D's hardware 245.46 on 5 June and its service
    # 294.55 x 26/365 = 20.9816... -> 20.98. The old rows had recognized 62.94, 58.91 and 41.96 by May.
    assert recognized(date(2026, 6, 1)) == {
        ("service", "A"): Decimal("24.21"),
        ("service", "B"): Decimal("24.21"),
        ("service", "C"): Decimal("24.21"),
        ("hardware", "D"): Decimal("245.46"),
        ("service", "D"): Decimal("20.98"),
    }
    # July: A 231.60 x 61/287 = 49.2250... -> 49.23, less June's 24.21 = 25.02.
    month_run(tenant, date(2026, 7, 1))
    assert recognized(date(2026, 7, 1))[("service", "A")] == Decimal("25.02")
    # and the modification is applied once
    assert contracts_sync(tenant_id=tenant.pk, at=paris(2026, 8, 1)).modifications == {}
    assert ContractModification.objects.count() == 1


@pytest.fixture
def committed(tenant: Tenant) -> Subscription:
    """Two devices at 25.00 each a month from 1 January 2026, committed 15 months (to 1 April 2027),
    with the remaining fees due on early termination; SSP 30.00 a device-month."""
    with time_machine.travel(paris(2026, 1, 1, 9), tick=False):
        plan = platform_plan(tenant, "committed", "25.00", commitment_months=15, early_termination="remaining_fees")
        subscription = signed_subscription(tenant, customer=dupont(tenant), plan=plan, devices=("A", "B"))
    ssp_set(tenant, "platform", "30.00")
    return subscription


def test_an_early_termination_stops_the_services_and_recognizes_its_fee_that_day(
    tenant: Tenant, committed: Subscription
) -> None:
    # given: 2 x 15 x 25.00 = 750.00 on one line, 375.00 a device over 1 Jan 2026 - 1 Apr 2027
    # (455 days); January to March recognized 375.00 x 90/455 = 74.1758... -> 74.18 a device
    contracts_sync(tenant_id=tenant.pk, at=paris(2026, 1, 2))
    contract = Contract.objects.get(subscription=committed)
    assert contract.transaction_price.amount == Decimal("750.00")
    month_run(tenant, date(2026, 3, 1))
    assert recognized(date(2026, 3, 1)) == {("service", "A"): Decimal("74.18"), ("service", "B"): Decimal("74.18")}
    # when: cancelled at once on 16 April: the fee is the 11 committed months left after April,
    # 11 x 2 x 25.00 = 550.00 (subscriptions.changes)
    change(committed, "cancel", {"at_period_end": False}, paris(2026, 4, 16, 10))
    month_run(tenant, date(2026, 4, 1))
    # then: each service stops on 16 April and keeps 375.00 x 105/455 = 86.5384... -> 86.54; the
    # 288.46 a device it will not recognize leaves the price: 750.00 - 2 x 288.46 + 550.00 = 723.08
    contract.refresh_from_db()
    assert contract.transaction_price.amount == Decimal("723.08") == allocated_total(contract)
    assert obligations(contract) == {
        ("service", "A", date(2026, 1, 1)): (Decimal("86.54"), date(2026, 1, 1), date(2026, 4, 16)),
        ("service", "B", date(2026, 1, 1)): (Decimal("86.54"), date(2026, 1, 1), date(2026, 4, 16)),
        ("fee", "", date(2026, 4, 16)): (Decimal("550.00"), None, None),
    }
    [modification] = ContractModification.objects.filter(contract=contract)
    assert (modification.kind, modification.effective_on) == ("termination", date(2026, 4, 16))
    assert modification.details == {"devices": "all", "released": "576.92", "fee": "550.00"}
    # April: 86.54 - 74.18 = 12.36 a device, and the fee: all of the price is recognized by then
    assert recognized(date(2026, 4, 1)) == {
        ("service", "A"): Decimal("12.36"),
        ("service", "B"): Decimal("12.36"),
        ("fee", ""): Decimal("550.00"),
    }
    assert sum((e.amount.amount for e in RecognitionEntry.objects.all()), Decimal(0)) == Decimal("723.08")
    month_run(tenant, date(2026, 5, 1))
    assert recognized(date(2026, 5, 1)) == {}


def test_a_plan_change_re_allocates_the_rest_of_the_term_at_the_new_fee(
    tenant: Tenant, committed: Subscription
) -> None:
    # given: the committed subscription's contract (375.00 a device), January to March recognized
    with time_machine.travel(paris(2026, 1, 1, 9), tick=False):
        platform_plan(tenant, "premium", "35.00", commitment_months=15)
    contracts_sync(tenant_id=tenant.pk, at=paris(2026, 1, 2))
    contract = Contract.objects.get(subscription=committed)
    month_run(tenant, date(2026, 3, 1))
    # when: upgraded on 1 April to 35.00 a device-month (same product, same SSP)
    change(committed, "change_plan", {"plan": "premium"}, paris(2026, 4, 1, 10))
    month_run(tenant, date(2026, 4, 1))
    # then: each service keeps 375.00 x 90/455 = 74.18 up to 1 April and leaves 300.82; the rest
    # of each term (365 of 455 days) brings (35.00 - 25.00) x 15 x 365/455 = 120.3296... a device,
    # 240.6593... -> 240.66 in all: the price goes from 750.00 to 990.66, and 2 x 300.82 + 240.66 =
    # 842.30 is split equally (equal weights 30 x 15 x 365/455): 421.15 a device from 1 April.
    contract.refresh_from_db()
    assert contract.transaction_price.amount == Decimal("990.66") == allocated_total(contract)
    assert contract.plan is not None
    assert contract.plan.code == "premium"
    assert obligations(contract) == {
        ("service", "A", date(2026, 1, 1)): (Decimal("74.18"), date(2026, 1, 1), date(2026, 4, 1)),
        ("service", "B", date(2026, 1, 1)): (Decimal("74.18"), date(2026, 1, 1), date(2026, 4, 1)),
        ("service", "A", date(2026, 4, 1)): (Decimal("421.15"), date(2026, 4, 1), date(2027, 4, 1)),
        ("service", "B", date(2026, 4, 1)): (Decimal("421.15"), date(2026, 4, 1), date(2027, 4, 1)),
    }
    # April: 421.15 x 30/365 = 34.6150... -> 34.62 a device
    assert recognized(date(2026, 4, 1)) == {("service", "A"): Decimal("34.62"), ("service", "B"): Decimal("34.62")}
