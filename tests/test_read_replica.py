"""Reports on a read replica (``billing_platform.db_router``).

The test settings add a ``replica`` alias: a second connection to the test database, so a test can
see which connection served a query (``CaptureQueriesContext``) and what each connection's session
settings are. The tests that read through it turn ``REPORTS_DATABASE`` to it; the others keep the
primary. Two connections see each other's rows only once committed, hence ``transaction=True``."""

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import DEFAULT_DB_ALIAS, connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from backoffice.exports.kinds import KINDS
from backoffice.exports.services import export_content
from billing_platform import rls
from billing_platform.db_router import REPLICA, ReplicaRouter, reads_alias, replica_reads, replica_rows
from customers.models import Customer
from customers.services import customer_create
from invoicing.models import Invoice
from partners.statements import commission_report
from payments.reports import receivables_aging
from revrec.metrics import mrr_report
from revrec.reports import revenue_report
from revrec.usage_stats import usage_statistics
from tenancy.actors import Actor
from tenancy.models import ApiKeyScope, Tenant

pytestmark = pytest.mark.django_db(transaction=True, databases=[DEFAULT_DB_ALIAS, REPLICA])

ACTOR = Actor.system("tests")
AS_OF = date(2026, 6, 30)


@pytest.fixture
def on_replica(settings: Any) -> None:
    settings.REPORTS_DATABASE = REPLICA


@pytest.fixture
def captured() -> Iterator[dict[str, CaptureQueriesContext]]:
    """The queries each connection runs during the test's block."""
    contexts = {alias: CaptureQueriesContext(connections[alias]) for alias in (DEFAULT_DB_ALIAS, REPLICA)}
    for context in contexts.values():
        context.__enter__()
    try:
        yield contexts
    finally:
        for context in contexts.values():
            context.__exit__(None, None, None)


def customer(tenant: Tenant, external_id: str) -> Customer:
    return customer_create(
        tenant=tenant,
        actor=ACTOR,
        at=timezone.now(),
        external_id=external_id,
        name=external_id.title(),
        email=f"{external_id}@x.test",
        country="FR",
        currency="EUR",
        timezone="Europe/Paris",
        address_line1="1 rue de la Paix",
        postal_code="75002",
        city="Paris",
    )


def invoice(c: Customer, total: str, *, number: str, due: date) -> Invoice:
    issued = due - timedelta(days=30)
    return Invoice.objects.create(
        tenant=c.tenant,
        customer=c,
        issue_date=issued,
        currency="EUR",
        net_total=Decimal(total),
        total=Decimal(total),
        amount_due=Decimal(total),
        status="finalized",
        number=number,
        number_year=issued.year,
        number_sequence=int(number[-4:]),
        finalized_at=datetime(issued.year, issued.month, issued.day, 8, tzinfo=UTC),
        due_date=due,
        payment_status="unpaid",
    )


@pytest.fixture
def two_tenants(tenant: Tenant, other_tenant: Tenant) -> tuple[Tenant, Tenant]:
    """Acme: two customers owing 100.00 (due 06-15) and 250.00 (due 05-01); Globex: one owing 40.00."""
    invoice(customer(tenant, "alpha"), "100", number="F-0001", due=date(2026, 6, 15))
    invoice(customer(tenant, "bravo"), "250", number="F-0002", due=date(2026, 5, 1))
    invoice(customer(other_tenant, "zulu"), "40", number="G-0001", due=date(2026, 6, 1))
    return tenant, other_tenant


def session_settings(alias: str) -> tuple[str, str]:
    with connections[alias].cursor() as cursor:
        cursor.execute(f"SELECT current_setting('role'), COALESCE(current_setting('{rls.TENANT_SETTING}', true), '')")
        role, tenant = cursor.fetchone()
    return role, tenant


def test_without_a_replica_reports_read_the_primary(two_tenants: tuple[Tenant, Tenant], captured: Any) -> None:
    acme, _ = two_tenants
    with replica_reads(tenant=acme) as alias:
        assert alias == DEFAULT_DB_ALIAS
    report = receivables_aging(tenant_id=acme.pk, as_of=AS_OF)
    assert report.currencies[0].total.total.amount == Decimal("350.00")
    assert len(captured[REPLICA].captured_queries) == 0
    assert len(captured[DEFAULT_DB_ALIAS].captured_queries) == 3  # time zone, aging, rates


def test_a_report_reads_the_replica_only(on_replica: None, two_tenants: tuple[Tenant, Tenant], captured: Any) -> None:
    acme, _ = two_tenants
    report = receivables_aging(tenant_id=acme.pk, as_of=AS_OF)
    # 100.00 is 15 days late (1-30), 250.00 is 60 days late (31-60): 350.00 in all, Acme's only
    eur = report.currencies[0]
    assert (eur.total.days_1_30.amount, eur.total.days_31_60.amount) == (Decimal("100.00"), Decimal("250.00"))
    assert eur.total.total.amount == Decimal("350.00")
    assert [c.external_id for c in eur.customers] == ["alpha", "bravo"]
    assert len(captured[DEFAULT_DB_ALIAS].captured_queries) == 0
    # the tenant and role set, the 3 queries of the report, then the settings put back
    assert len(captured[REPLICA].captured_queries) == 5


def test_every_report_reads_the_replica(on_replica: None, tenant: Tenant, captured: Any) -> None:
    at = datetime(2026, 6, 30, 12, tzinfo=UTC)
    revenue_report(tenant_id=tenant.pk, start=date(2026, 1, 1), end=date(2026, 6, 1))
    mrr_report(tenant_id=tenant.pk, start=date(2026, 1, 1), end=date(2026, 6, 1))
    usage_statistics(tenant=tenant, start=date(2026, 1, 1), end=date(2026, 6, 1))
    commission_report(tenant=tenant, month=date(2026, 6, 1), at=at)
    receivables_aging(tenant_id=tenant.pk, as_of=AS_OF)
    assert len(captured[DEFAULT_DB_ALIAS].captured_queries) == 0
    assert len(captured[REPLICA].captured_queries) > 5


def test_the_replica_connection_gets_the_tenant_and_the_role(on_replica: None, two_tenants: Any) -> None:
    acme, globex = two_tenants
    assert session_settings(REPLICA) == ("none", "")  # the tests' session user, no tenant
    with replica_reads(tenant=acme):
        assert reads_alias() == REPLICA
        assert session_settings(REPLICA) == (rls.app_role(), str(acme.pk))
        # no filter: the policy alone keeps Globex's rows out
        assert sorted(Customer.objects.values_list("external_id", flat=True)) == ["alpha", "bravo"]
        with connections[REPLICA].cursor() as cursor:
            cursor.execute("SELECT count(*), sum(total) FROM invoicing_invoice")
            assert cursor.fetchone() == (2, Decimal("350.0000"))
        with replica_reads(tenant=globex):
            assert list(Customer.objects.values_list("external_id", flat=True)) == ["zulu"]
        assert session_settings(REPLICA) == (rls.app_role(), str(acme.pk))
    assert reads_alias() == DEFAULT_DB_ALIAS
    assert session_settings(REPLICA) == ("none", "")
    with replica_reads(tenant=None):
        assert Customer.objects.count() == 0  # no tenant, no row


def test_writes_in_a_replica_block_go_to_the_primary(on_replica: None, tenant: Tenant, captured: Any) -> None:
    with replica_reads(tenant=tenant):
        created = customer(tenant, "charlie")
    assert created._state.db == DEFAULT_DB_ALIAS
    assert Customer.objects.filter(tenant=tenant, external_id="charlie").count() == 1
    writes = [q["sql"] for q in captured[REPLICA].captured_queries if q["sql"].startswith(("INSERT", "UPDATE"))]
    assert writes == []
    router = ReplicaRouter()
    assert router.db_for_write(Customer) == DEFAULT_DB_ALIAS
    assert (router.allow_migrate(DEFAULT_DB_ALIAS, "customers"), router.allow_migrate(REPLICA, "customers")) == (
        True,
        False,
    )


def test_an_export_reads_the_replica(on_replica: None, two_tenants: Any, captured: Any) -> None:
    acme, _ = two_tenants
    data, rows = export_content(tenant=acme, kind=KINDS["customers"], params={})
    assert rows == 2
    assert [line.split(",")[0] for line in data.decode().splitlines()[1:]] == ["alpha", "bravo"]
    assert len(captured[DEFAULT_DB_ALIAS].captured_queries) == 0
    # a streamed download reads its rows as they are sent, on the replica too
    streamed = list(replica_rows(KINDS["customers"].rows(acme, {}), tenant=acme))
    assert [row[0] for row in streamed] == ["alpha", "bravo"]
    assert len(captured[DEFAULT_DB_ALIAS].captured_queries) == 0


def test_the_report_api_reads_the_replica(
    on_replica: None, two_tenants: Any, make_client: Callable[..., Any], captured: Any
) -> None:
    acme, _ = two_tenants
    api = make_client(acme, ApiKeyScope.READ)
    before = len(captured[REPLICA].captured_queries)
    response = api.get("/api/v1/reports/receivables?as_of=2026-06-30")
    assert response.status_code == 200, response.content
    assert response.json()["currencies"][0]["total"]["total"] == "350.00"
    replica_sql = [q["sql"] for q in captured[REPLICA].captured_queries[before:]]
    assert any("invoicing_invoice" in sql for sql in replica_sql)
    assert not any("invoicing_invoice" in q["sql"] for q in captured[DEFAULT_DB_ALIAS].captured_queries)


def test_a_relation_followed_after_the_block_reads_the_primary(
    on_replica: None, two_tenants: Any, captured: Any
) -> None:
    acme, _ = two_tenants
    with replica_reads(tenant=acme):
        read = Invoice.objects.get(number="F-0002")
        alpha = Customer.objects.get(external_id="alpha")
    assert read._state.db == REPLICA
    replica_queries = len(captured[REPLICA].captured_queries)
    # after the block the replica's tenant is put back (it would see no row): both relations read the primary
    assert read.customer.external_id == "bravo"
    assert [i.number for i in Invoice.objects.filter(customer=alpha)] == ["F-0001"]
    assert list(alpha.invoices.values_list("number", flat=True)) == ["F-0001"]
    assert len(captured[REPLICA].captured_queries) == replica_queries
    assert ReplicaRouter().db_for_read(Customer, instance=read) == DEFAULT_DB_ALIAS
