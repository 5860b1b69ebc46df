"""The overview's cost does not grow with the customer's subscriptions and devices: its projection
comes from the current-usage cache (``invoicing.usage_cache``), its active devices are counted by
the database, and a customer with 12 subscriptions costs the queries of one with 2."""

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from catalog.models import Plan
from customers.models import Customer
from invoicing.tests.factories import ACTOR
from portal.tests.conftest import PortalClientMaker
from portal.tests.scenario import NOW, PARIS, portal_customer
from subscriptions.services import subscription_create
from tenancy.models import Tenant
from usage.partitions import forget_known_partitions

pytestmark = pytest.mark.django_db

# The portal session with its tenant, then its customer with its user, the tenant set (and put back
# at the end), what is owed, the next due invoice, the meters' names, the active devices counted; the
# projection from the cache. (Outside a test's transaction, two of the switches are known to change
# nothing and make no statement: tests/test_row_level_security.py.)
CACHED = 9
# Computed: the same, plus the projection's own reads (the customer, subscriptions with their plans
# and components, devices, rollups, prices, tax rates, the one-time fees billed).
COMPUTED = 19


@pytest.fixture(autouse=True)
def fresh_partitions() -> Iterator[None]:
    forget_known_partitions()
    yield
    forget_known_partitions()


def with_subscriptions(tenant: Tenant, count: int) -> Customer:
    """Dupont with ``count`` subscriptions to plan ``p``, each with two devices."""
    customer = portal_customer(tenant)
    plan = Plan.objects.get(tenant=tenant, code="p")
    for i in range(1, count):
        subscription_create(
            tenant=tenant,
            actor=ACTOR,
            at=NOW,
            external_id="s%d" % i,
            customer=customer,
            plan=plan,
            signed_at=datetime(2026, 3, 1, 9, tzinfo=PARIS),
            devices=[{"device_id": "d%d-a" % i}, {"device_id": "d%d-b" % i}],
        )
    return customer


def overview_queries(client: Any) -> tuple[int, int]:
    """Queries of the overview computed (first view), then from the cache (second view)."""
    with time_machine.travel(NOW, tick=False):
        with CaptureQueriesContext(connection) as computed:
            assert client.get("/portal/overview/").status_code == 200
        with CaptureQueriesContext(connection) as cached:
            response = client.get("/portal/overview/")
    assert response.status_code == 200
    return len(computed), len(cached)


@pytest.mark.parametrize("subscriptions", [2, 12])
def test_the_overview_costs_the_same_with_2_or_12_subscriptions(
    tenant: Tenant, portal_client: PortalClientMaker, subscriptions: int
) -> None:
    customer = with_subscriptions(tenant, subscriptions)
    client = portal_client(customer)
    assert overview_queries(client) == (COMPUTED, CACHED)
