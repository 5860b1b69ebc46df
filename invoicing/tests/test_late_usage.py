"""Pitfalls #11 and #12: late usage is billed as an adjustment on the next invoice, once, and the
allowance is applied once to the whole period."""

from collections.abc import Iterator
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from catalog.services import meter_create, plan_create, product_create, tax_rate_set
from customers.tests.factories import dupont
from invoicing.services import invoice_generate
from subscriptions.tests.factories import signed_subscription
from tenancy.actors import Actor
from tenancy.models import Tenant
from usage.ingest import events_ingest
from usage.partitions import forget_known_partitions

pytestmark = pytest.mark.django_db
PARIS = ZoneInfo("Europe/Paris")
ACTOR = Actor.system("tests")


@pytest.fixture(autouse=True)
def partitions() -> Iterator[None]:
    forget_known_partitions()
    yield
    forget_known_partitions()


@pytest.fixture
def pooled() -> bool:
    return True


@pytest.fixture
def customer(tenant: Tenant, pooled: bool) -> Any:
    now = timezone.now()
    product_create(tenant=tenant, actor=ACTOR, at=now, code="data", name="Data", kind="usage")
    meter_create(tenant=tenant, actor=ACTOR, at=now, code="mb", name="MB", aggregation="sum", field="mb")
    tax_rate_set(tenant=tenant, actor=ACTOR, at=now, country="FR", tax_category="standard", rate="20")
    plan = plan_create(
        tenant=tenant,
        actor=ACTOR,
        at=now,
        code="p",
        name="P",
        prices=[{"currency": "EUR"}],
        components=[
            {
                "product": "data",
                "meter": "mb",
                "included_per_device": 100,
                "pooled": pooled,
                "charge": {"model": "per_unit", "unit_amount": "0.01"},
            }
        ],
    )
    customer = dupont(tenant)
    signed_subscription(
        tenant,
        customer=customer,
        plan=plan,
        external_id="s",
        devices=("A", "B"),
        signed_at=datetime(2026, 3, 1, 9, tzinfo=PARIS),
        starts_on=date(2026, 3, 1),
    )
    return customer


def send(tenant: Tenant, received: datetime, *events: tuple[str, datetime, int], device: str = "A") -> None:
    result = events_ingest(
        tenant=tenant,
        received_at=received,
        events=[
            {
                "transaction_id": tid,
                "code": "mb",
                "device_id": device,
                "timestamp": ts.isoformat(),
                "properties": {"mb": mb},
            }
            for tid, ts, mb in events
        ],
    )
    assert result.count("accepted") == len(events)


def usage_lines(invoice: Any) -> list[tuple[str, bool]]:
    return [(str(line.amount), line.adjustment) for line in invoice.lines.filter(type="usage").order_by("position")]


def test_late_march_usage_is_an_adjustment_on_the_may_invoice(tenant: Tenant, customer: Any) -> None:
    # March: 500 MB - 2 x 100 allowance = 300 x 0.01 = 3.00 on the 1 April invoice
    send(tenant, datetime(2026, 3, 31, 12, tzinfo=PARIS), ("m1", datetime(2026, 3, 20, 9, tzinfo=PARIS), 500))
    april = invoice_generate(customer=customer, billing_date=date(2026, 4, 1), at=datetime(2026, 4, 1, 1, tzinfo=PARIS))
    assert april is not None
    assert usage_lines(april) == [("3.0000", False)]
    # 200 MB of March arrive on 10 April: late, kept
    send(tenant, datetime(2026, 4, 10, 12, tzinfo=PARIS), ("m2", datetime(2026, 3, 28, 9, tzinfo=PARIS), 200))
    send(tenant, datetime(2026, 4, 30, 12, tzinfo=PARIS), ("a1", datetime(2026, 4, 20, 9, tzinfo=PARIS), 150))
    may = invoice_generate(customer=customer, billing_date=date(2026, 5, 1), at=datetime(2026, 5, 1, 1, tzinfo=PARIS))
    assert may is not None
    # April: 150 MB is within the 200 MB allowance: 0.00. March re-measured: 700 - 200 = 500 x 0.01 = 5.00,
    # 3.00 already billed: the adjustment is 2.00 (the allowance is not deducted a second time)
    assert usage_lines(may) == [("0.0000", False), ("2.0000", True)]
    adjustment = may.lines.get(adjustment=True)
    assert adjustment.detail == {"metered_quantity": "700", "billed_quantity": "500", "previously_billed": "3.00"}
    # generating again changes nothing; the June invoice does not bill March again
    assert (
        invoice_generate(customer=customer, billing_date=date(2026, 5, 1), at=datetime(2026, 5, 1, 2, tzinfo=PARIS))
        == may
    )
    june = invoice_generate(customer=customer, billing_date=date(2026, 6, 1), at=datetime(2026, 6, 1, 1, tzinfo=PARIS))
    assert june is not None
    assert usage_lines(june) == [("0.0000", False)]


def test_usage_arriving_two_periods_late_is_still_billed_once(tenant: Tenant, customer: Any) -> None:
    # March: 500 MB, billed 3.00 on 1 April; 200 MB of March arrive in April: a 2.00 adjustment on 1 May
    send(tenant, datetime(2026, 3, 31, 12, tzinfo=PARIS), ("m1", datetime(2026, 3, 20, 9, tzinfo=PARIS), 500))
    invoice_generate(customer=customer, billing_date=date(2026, 4, 1), at=datetime(2026, 4, 1, 1, tzinfo=PARIS))
    send(tenant, datetime(2026, 4, 10, 12, tzinfo=PARIS), ("m2", datetime(2026, 3, 28, 9, tzinfo=PARIS), 200))
    may = invoice_generate(customer=customer, billing_date=date(2026, 5, 1), at=datetime(2026, 5, 1, 1, tzinfo=PARIS))
    assert may is not None
    assert usage_lines(may) == [("0.0000", False), ("2.0000", True)]
    # 200 more MB of March arrive on 15 May (46 days old: within the 62-day limit)
    send(tenant, datetime(2026, 5, 15, 12, tzinfo=PARIS), ("m3", datetime(2026, 3, 30, 9, tzinfo=PARIS), 200))
    june = invoice_generate(customer=customer, billing_date=date(2026, 6, 1), at=datetime(2026, 6, 1, 1, tzinfo=PARIS))
    assert june is not None
    # March re-measured: 900 - 200 = 700 x 0.01 = 7.00; 3.00 + 2.00 billed so far: 2.00 more
    assert usage_lines(june) == [("0.0000", False), ("2.0000", True)]
    adjustment = june.lines.get(adjustment=True)
    assert adjustment.detail == {"metered_quantity": "900", "billed_quantity": "700", "previously_billed": "5.00"}
    assert adjustment.period_start == datetime(2026, 3, 1, tzinfo=PARIS)
    # nothing is left to bill for March in July
    july = invoice_generate(customer=customer, billing_date=date(2026, 7, 1), at=datetime(2026, 7, 1, 1, tzinfo=PARIS))
    assert july is not None
    assert usage_lines(july) == [("0.0000", False)]


@pytest.mark.parametrize("pooled", [False])
def test_late_usage_of_a_per_device_component_is_billed_per_device(tenant: Tenant, customer: Any) -> None:
    # March, each device with its own 100 MB: A 500 -> 400 x 0.01 = 4.00, B 50 -> 0.00
    send(tenant, datetime(2026, 3, 31, 12, tzinfo=PARIS), ("a1", datetime(2026, 3, 20, 9, tzinfo=PARIS), 500))
    send(
        tenant, datetime(2026, 3, 31, 12, tzinfo=PARIS), ("b1", datetime(2026, 3, 21, 9, tzinfo=PARIS), 50), device="B"
    )
    april = invoice_generate(customer=customer, billing_date=date(2026, 4, 1), at=datetime(2026, 4, 1, 1, tzinfo=PARIS))
    assert april is not None
    assert usage_lines(april) == [("4.0000", False)]
    # 200 MB of B's March arrive in April: B 250 -> 150 x 0.01 = 1.50 (B's allowance, not A's, absorbs the first 100)
    send(
        tenant, datetime(2026, 4, 10, 12, tzinfo=PARIS), ("b2", datetime(2026, 3, 28, 9, tzinfo=PARIS), 200), device="B"
    )
    may = invoice_generate(customer=customer, billing_date=date(2026, 5, 1), at=datetime(2026, 5, 1, 1, tzinfo=PARIS))
    assert may is not None
    assert usage_lines(may) == [("0.0000", False), ("1.5000", True)]
    adjustment = may.lines.get(adjustment=True)
    assert adjustment.detail == {"metered_quantity": "750", "billed_quantity": "550", "previously_billed": "4.00"}


def test_a_period_without_late_events_is_not_measured_again(tenant: Tenant, customer: Any, monkeypatch: Any) -> None:
    from invoicing import composition

    send(tenant, datetime(2026, 3, 31, 12, tzinfo=PARIS), ("m1", datetime(2026, 3, 20, 9, tzinfo=PARIS), 500))
    invoice_generate(customer=customer, billing_date=date(2026, 4, 1), at=datetime(2026, 4, 1, 1, tzinfo=PARIS))
    # April usage arrives on time; nothing more for March
    send(tenant, datetime(2026, 4, 20, 12, tzinfo=PARIS), ("a1", datetime(2026, 4, 20, 9, tzinfo=PARIS), 400))
    measured: list[Any] = []
    real = composition.aggregate_many

    def recorded(**kwargs: Any) -> Any:
        measured.append(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(composition, "aggregate_many", recorded)
    may = invoice_generate(customer=customer, billing_date=date(2026, 5, 1), at=datetime(2026, 5, 1, 1, tzinfo=PARIS))
    assert may is not None
    # April: 400 - 200 = 200 x 0.01 = 2.00; March is not scanned again and gets no adjustment
    assert usage_lines(may) == [("2.0000", False)]
    assert measured == []
