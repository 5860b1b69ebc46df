"""contracts_sync: contracts made without anyone asking, dated as devices are activated, and a sync
with nothing new that changes nothing in one query."""

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest
import time_machine

from catalog.errors import NoPriceForCurrency
from catalog.tests.factories import platform_plan
from customers.tests.factories import dupont
from revrec import contracts
from revrec.contracts import SyncReport, contracts_sync
from revrec.models import Contract, ContractModification, PerformanceObligation
from revrec.tests.conftest import PARIS, ssp_set
from subscriptions.changes import subscription_change
from subscriptions.models import Subscription
from subscriptions.tests.factories import ACTOR, signed_subscription, smart_fleet_activate
from tenancy.models import Tenant

pytestmark = pytest.mark.django_db
AT = datetime(2026, 6, 30, 12, 0, tzinfo=PARIS)


def state() -> tuple[Any, ...]:
    return (
        sorted(Contract.objects.values_list("pk", "plan_id", "transaction_price")),
        sorted(
            PerformanceObligation.objects.values_list(
                "pk", "product_code", "device_id", "allocated", "starts_on", "ends_on", "recognized_on"
            )
        ),
        ContractModification.objects.count(),
    )


def test_every_subscription_gets_its_contract_and_those_that_cannot_are_counted(
    tenant: Tenant, fleet: Subscription
) -> None:
    # given: Smart Fleet (SSPs set, A and B activated), a 12-month plan whose product has no SSP,
    # and a plan with no committed term
    with time_machine.travel(datetime(2026, 3, 1, 9, tzinfo=PARIS), tick=False):
        customer = fleet.customer
        signed_subscription(
            tenant,
            customer=customer,
            plan=platform_plan(tenant, "no-ssp", "10.00", commitment_months=12),
            external_id="no-ssp",
            devices=("X",),
        )
        signed_subscription(
            tenant,
            customer=customer,
            plan=platform_plan(tenant, "free", "10.00"),
            external_id="free",
            devices=("Y",),
        )
    # when
    report = contracts_sync(tenant_id=tenant.pk, at=AT)
    # then: Smart Fleet's contract is made (1,620.00, as contract_from_subscription makes it), the
    # two others are skipped, each with its reason, and do not stop it
    assert report == SyncReport(built=1, skipped={"no_committed_term": 1, "no_standalone_selling_price": 1}, dated=0)
    contract = Contract.objects.get()
    assert (contract.subscription_id, contract.transaction_price.amount) == (fleet.pk, Decimal("1620.00"))
    assert PerformanceObligation.objects.filter(contract=contract).count() == 6
    # and once the SSP exists, the next sync makes the other one
    ssp_set(tenant, "platform", "12.00")
    again = contracts_sync(tenant_id=tenant.pk, at=AT)
    assert (again.built, again.skipped) == (1, {"no_committed_term": 1})


def test_a_device_activated_since_is_dated_by_the_next_sync(
    tenant: Tenant, fleet: Subscription, fleet_contract: Contract
) -> None:
    # given: C activated on 10 April, after the contract was made
    smart_fleet_activate(tenant, ("C",))
    # when
    report = contracts_sync(tenant_id=tenant.pk, at=AT)
    # then: its hardware and its service (12 months from 10 April, Paris) are dated, in one UPDATE
    assert report.dated == 2
    c = {o.kind: o for o in PerformanceObligation.objects.filter(contract=fleet_contract, device_id="C")}
    assert c["hardware"].recognized_on == date(2026, 4, 10)
    assert (c["service"].starts_on, c["service"].ends_on) == (date(2026, 4, 10), date(2027, 4, 10))


def test_a_second_sync_changes_nothing_in_one_query(
    tenant: Tenant, fleet: Subscription, django_assert_num_queries: Any
) -> None:
    # given: a contract made on 31 March, then dated and modified (D added on 1 June) by a sync
    contracts_sync(tenant_id=tenant.pk, at=datetime(2026, 3, 31, 12, tzinfo=PARIS))
    smart_fleet_activate(tenant, ("C",))
    with time_machine.travel(datetime(2026, 6, 1, 10, tzinfo=PARIS), tick=False):
        subscription_change(
            subscription=fleet,
            action="add_devices",
            params={"devices": [{"device_id": "D"}]},
            actor=ACTOR,
            at=datetime(2026, 6, 1, 10, tzinfo=PARIS),
        )
    first = contracts_sync(tenant_id=tenant.pk, at=AT)
    assert (first.built, first.dated, first.modifications) == (0, 2, {"added_devices": 1})
    before = state()
    # when: the sync runs again with nothing new
    with django_assert_num_queries(1):
        again = contracts_sync(tenant_id=tenant.pk, at=AT)
    # then
    assert again == SyncReport()
    assert state() == before


def test_a_subscription_that_cannot_be_priced_does_not_stop_the_others(
    tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: two committed subscriptions; the catalog finds no price for the second one's (as for a
    # customer whose currency the plan was never priced in)
    with time_machine.travel(datetime(2026, 2, 1, 9, tzinfo=PARIS), tick=False):
        plan = platform_plan(tenant, "committed", "25.00", commitment_months=12)
        customer = dupont(tenant)
        signed_subscription(tenant, customer=customer, plan=plan, external_id="one")
        signed_subscription(tenant, customer=customer, plan=plan, external_id="two", devices=("T",))
    ssp_set(tenant, "platform", "30.00")
    priced = contracts.plan_lines

    def plan_lines(**kwargs: Any) -> Any:
        if kwargs["subscription"].external_id == "two":
            raise NoPriceForCurrency("Plan committed has no price in EUR.", extra={"plan": "committed"})
        return priced(**kwargs)

    monkeypatch.setattr(contracts, "plan_lines", plan_lines)
    # when
    report = contracts_sync(tenant_id=tenant.pk, at=AT)
    # then: the first has its contract, the other is counted with the catalog's reason
    assert (report.built, report.skipped) == (1, {"no_price_for_currency": 1})
    assert list(Contract.objects.values_list("subscription__external_id", flat=True)) == ["one"]
