"""Properties of the recognition run over random usage and random orders of runs and invoicing:
running a month again at once changes nothing, every journal entry is balanced, and a run's
queries do not grow with the number of contracts."""

from datetime import date, datetime, timedelta
from typing import Any

import pytest
from django.db import transaction
from django.db.models import Sum
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from customers.tests.factories import dupont
from invoicing.services import invoice_finalize, invoice_generate
from revrec.contracts import contract_from_subscription
from revrec.models import Contract, JournalEntry, JournalLine, RecognitionEntry
from revrec.runs import recognition_run
from revrec.tests.conftest import END_OF_MARCH, PARIS
from subscriptions.models import Subscription
from subscriptions.tests.factories import ACTOR, signed_subscription
from tenancy.models import Tenant
from usage.ingest import events_ingest
from usage.partitions import forget_known_partitions

MONTHS = (date(2026, 3, 1), date(2026, 4, 1), date(2026, 5, 1))

events = st.lists(
    st.tuples(
        st.sampled_from(("A", "B")),
        st.integers(min_value=0, max_value=60),  # days from 1 March
        st.integers(min_value=0, max_value=4000),  # MB
    ),
    max_size=4,
)
steps = st.lists(st.sampled_from(("march", "april", "may", "invoice")), min_size=1, max_size=5)


def journal_balanced() -> bool:
    for entry in JournalEntry.objects.all():
        sums = JournalLine.objects.filter(entry=entry).aggregate(d=Sum("debit"), c=Sum("credit"))
        if sums["d"] != sums["c"]:
            return False
    return True


@pytest.mark.django_db
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(usage=events, plan=steps)
def test_rerunning_a_month_changes_nothing_and_the_journal_balances(
    tenant: Tenant, fleet: Subscription, fleet_contract: Contract, usage: list[tuple[str, int, int]], plan: list[str]
) -> None:
    forget_known_partitions()
    with transaction.atomic():
        for n, (device, day, mb) in enumerate(usage):
            at = datetime(2026, 3, 1, 12, tzinfo=PARIS) + timedelta(days=day)
            events_ingest(
                tenant=tenant,
                received_at=at + timedelta(hours=1),
                events=[
                    {
                        "transaction_id": f"e{n}",
                        "code": "data_mb",
                        "device_id": device,
                        "timestamp": at.isoformat(),
                        "properties": {"mb": mb},
                    }
                ],
            )
        invoiced = False
        for step in plan:
            if step == "invoice":
                if not invoiced:
                    invoice = invoice_generate(
                        customer=fleet.customer, billing_date=MONTHS[1], at=datetime(2026, 4, 1, 1, tzinfo=PARIS)
                    )
                    assert invoice is not None
                    invoice_finalize(invoice=invoice, actor=ACTOR, at=datetime(2026, 4, 1, 9, tzinfo=PARIS))
                    invoiced = True
                continue
            month = MONTHS[("march", "april", "may").index(step)]
            at = datetime(2026, 6, 1, tzinfo=PARIS)
            recognition_run(tenant_id=tenant.pk, month=month, at=at)
            before = list(RecognitionEntry.objects.order_by("pk").values_list("pk", "amount"))
            lines = JournalLine.objects.count()
            again = recognition_run(tenant_id=tenant.pk, month=month, at=at)
            assert (again.entries, again.journal_entries, again.revenue) == (0, 0, {})
            assert list(RecognitionEntry.objects.order_by("pk").values_list("pk", "amount")) == before
            assert JournalLine.objects.count() == lines
            assert journal_balanced()
        # what each obligation recognized never exceeds its amount (hardware, service, usage)
        for entry in RecognitionEntry.objects.values("obligation").annotate(total=Sum("amount")):
            assert entry["total"] >= 0
        transaction.set_rollback(True)
    forget_known_partitions()


@pytest.mark.django_db
def test_a_runs_queries_do_not_grow_with_its_contracts(
    tenant: Tenant, fleet: Subscription, fleet_contract: Contract, django_assert_max_num_queries: Any
) -> None:
    # 24 queries for one contract: the contracts brought up to date (1 when nothing is new), the
    # period (get_or_create and its lock: 6 with savepoints), the usage obligations (2 statements,
    # the contracts and customers, 8 for the usage context), the obligations with what they
    # recognized, the entries, and the journal (2)
    with django_assert_max_num_queries(24):
        recognition_run(tenant_id=tenant.pk, month=MONTHS[0], at=END_OF_MARCH)
    for n in range(3):
        customer = dupont(tenant, external_id=f"c{n}", name=f"Customer {n}")
        subscription = signed_subscription(
            tenant, customer=customer, plan=fleet.plan, external_id=f"s{n}", devices=(f"D{n}",), starts_on=None
        )
        Subscription.objects.filter(pk=subscription.pk).update(signed_at=fleet.signed_at)
        contract_from_subscription(subscription=subscription, at=END_OF_MARCH)
    # four contracts, April: as many queries
    with django_assert_max_num_queries(24):
        report = recognition_run(tenant_id=tenant.pk, month=MONTHS[1], at=END_OF_MARCH)
    assert report.entries > 0
    assert Contract.objects.count() == 4
