"""The database's row-level security (``billing_platform.rls``), the second wall behind the
application's tenant filter: each test forgets the filter on purpose and shows that the database
keeps to the current tenant, and to nothing when no tenant is set.

Data is created as the test's session user, which the policies do not bind; what is checked runs as
the application role (the ``app_role`` fixture, a request, a task or a ``tenant_context`` block).
"""

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import ProgrammingError, connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from billing_platform import rls
from billing_platform.celery import app as celery_app
from billing_platform.rls import current_tenant_id, tenant_context
from billing_platform.tasks import TenantTask
from customers.models import Customer
from customers.tests.factories import dupont
from tenancy.models import Role, Tenant

pytestmark = pytest.mark.django_db
UNKNOWN = "00000000-0000-0000-0000-000000000000"


@pytest.fixture
def customers(tenant: Tenant, other_tenant: Tenant) -> dict[str, Customer]:
    # given: Acme has 2 customers, Globex 1, each with the external id "dupont" for one of them
    return {
        "acme": dupont(tenant),
        "acme-durand": dupont(tenant, external_id="durand", name="Transports Durand"),
        "globex": dupont(other_tenant),
    }


@pytest.fixture
def eager() -> Iterator[None]:
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


def external_ids() -> list[str]:
    return sorted(Customer.objects.values_list("external_id", flat=True))  # no tenant filter, on purpose


def count_sql(table: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {table}")  # no tenant filter, on purpose
        row = cursor.fetchone()
    assert row is not None
    return int(row[0])


# --- Reads --------------------------------------------------------------------------------------


def test_a_query_that_forgets_its_tenant_filter_sees_the_current_tenant_only(
    tenant: Tenant, other_tenant: Tenant, customers: dict[str, Customer], app_role: None
) -> None:
    # with no tenant set: nothing, although the table holds 3 rows
    assert external_ids() == []
    assert not Customer.objects.exists()
    # then each tenant sees its own: Acme 2, Globex 1
    with tenant_context(tenant):
        assert external_ids() == ["dupont", "durand"]
        assert {c.tenant_id for c in Customer.objects.all()} == {tenant.pk}
        # a primary key of another tenant's row finds nothing either
        assert not Customer.objects.filter(pk=customers["globex"].pk).exists()
    with tenant_context(other_tenant):
        assert external_ids() == ["dupont"]
        assert Customer.objects.get().pk == customers["globex"].pk
    # an unknown tenant sees nothing; after the blocks, no tenant again
    with tenant_context(UNKNOWN):
        assert external_ids() == []
    assert external_ids() == []


def test_raw_sql_is_filtered_as_well(
    tenant: Tenant, other_tenant: Tenant, customers: dict[str, Customer], app_role: None
) -> None:
    assert count_sql("customers_customer") == 0
    with tenant_context(tenant):
        assert count_sql("customers_customer") == 2
        # a join through a table outside the wall (tenants) still finds Acme's rows only
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT t.slug, count(*) FROM customers_customer c JOIN tenancy_tenant t ON t.id = c.tenant_id "
                "GROUP BY t.slug"
            )
            assert cursor.fetchall() == [("acme", 2)]
    with tenant_context(other_tenant):
        assert count_sql("customers_customer") == 1


def test_blocks_nest_and_put_back_what_was_set(tenant: Tenant, other_tenant: Tenant, app_role: None) -> None:
    with tenant_context(tenant):
        assert current_tenant_id() == str(tenant.pk)
        with tenant_context(other_tenant):
            assert current_tenant_id() == str(other_tenant.pk)
        assert current_tenant_id() == str(tenant.pk)
    assert current_tenant_id() == ""


# --- Writes -------------------------------------------------------------------------------------


def test_a_row_of_another_tenant_can_be_neither_written_nor_changed(
    tenant: Tenant, other_tenant: Tenant, customers: dict[str, Customer], app_role: None
) -> None:
    with tenant_context(tenant):
        # an insert for Globex under Acme is refused (the policy's WITH CHECK)
        with pytest.raises(ProgrammingError, match="row-level security"), transaction.atomic():
            Customer.objects.create(tenant=other_tenant, external_id="intruder", name="Intruder", currency="EUR")
        # moving Acme's row to Globex is refused too
        with pytest.raises(ProgrammingError, match="row-level security"), transaction.atomic():
            Customer.objects.filter(pk=customers["acme"].pk).update(tenant=other_tenant)
        # Globex's row can be neither updated nor deleted: it is not there
        assert Customer.objects.filter(pk=customers["globex"].pk).update(name="Renamed") == 0
        assert Customer.objects.filter(pk=customers["globex"].pk).delete()[0] == 0
    # with no tenant set, nothing can be written at all
    with pytest.raises(ProgrammingError, match="row-level security"), transaction.atomic():
        Customer.objects.create(tenant=tenant, external_id="nobody", name="Nobody", currency="EUR")
    with tenant_context(other_tenant):
        assert Customer.objects.get().name == "Transports Dupont"


def test_a_block_left_by_an_error_in_a_transaction_leaves_no_tenant_behind(
    tenant: Tenant, other_tenant: Tenant, customers: dict[str, Customer], app_role: None
) -> None:
    # when: the block fails in a transaction, which can run no statement until it is rolled back
    with pytest.raises(ProgrammingError, match="row-level security"), transaction.atomic():
        with tenant_context(tenant):
            Customer.objects.create(tenant=other_tenant, external_id="intruder", name="Intruder", currency="EUR")
    # then: the original error was raised (not one from putting the setting back), and the rollback
    # put back what was set before the block: no tenant
    assert current_tenant_id() == ""
    assert external_ids() == []


# --- Usage events: partitioned, written in raw SQL -------------------------------------------------


def insert_event(tenant: Tenant, transaction_id: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT usage_event_partition_create('2026-03-01')")
        cursor.execute(
            "INSERT INTO usage_event (tenant_id, transaction_id, meter_id, subscription_id, timestamp, received_at)"
            " VALUES (%s, %s, %s, %s, '2026-03-15 12:00+00', now())",
            [tenant.pk, transaction_id, UNKNOWN, UNKNOWN],
        )


def test_usage_events_and_their_partitions_are_behind_the_wall(
    tenant: Tenant, other_tenant: Tenant, app_role: None
) -> None:
    # given: one event of each tenant in March 2026, written as the application would
    with tenant_context(tenant):
        insert_event(tenant, "acme-1")
    with tenant_context(other_tenant):
        insert_event(other_tenant, "globex-1")
        # an event for Acme under Globex is refused
        with pytest.raises(ProgrammingError, match="row-level security"), transaction.atomic():
            insert_event(tenant, "acme-2")
    # then: through the partitioned table and through the month's partition alike
    with tenant_context(tenant):
        assert (count_sql("usage_event"), count_sql("usage_event_2026_03")) == (1, 1)
    assert (count_sql("usage_event"), count_sql("usage_event_2026_03")) == (0, 0)


# --- Requests -----------------------------------------------------------------------------------


def test_an_api_request_sees_its_keys_tenant_only_even_without_a_filter(
    api: APIClient, customers: dict[str, Customer], monkeypatch: Any
) -> None:
    # given: the customer list forgets its tenant filter
    from customers.api import views

    monkeypatch.setattr(views, "customer_list", lambda **kwargs: Customer.objects.all())
    # when: Acme's key lists customers
    body = api.get("/api/v1/customers").json()
    # then: Acme's 2, not Globex's
    assert sorted(c["external_id"] for c in body["results"]) == ["dupont", "durand"]


def test_a_back_office_page_sees_the_staff_tenant_only_even_without_a_filter(
    client: Client, tenant: Tenant, make_staff: Any, customers: dict[str, Customer], monkeypatch: Any
) -> None:
    from backoffice.customers import views

    monkeypatch.setattr(views, "customer_list", lambda **kwargs: Customer.objects.all())
    client.force_login(make_staff(tenant, role=Role.FINANCE_VIEWER))
    page = client.get("/app/customers/").content.decode()
    assert "Transports Durand" in page
    assert str(customers["globex"].pk) not in page
    assert page.count("Transports Dupont") == 1  # Acme's, not Globex's as well


def test_a_request_leaves_the_connection_as_it_found_it(
    api: APIClient, tenant: Tenant, customers: dict[str, Customer], app_role: None
) -> None:
    with tenant_context(tenant):
        assert api.get("/api/v1/customers").status_code == 200
        assert current_tenant_id() == str(tenant.pk)
    assert api.get("/api/v1/customers").status_code == 200
    assert current_tenant_id() == ""


def test_a_request_without_a_tenant_sees_nothing(client: Client, customers: dict[str, Customer]) -> None:
    # an anonymous request is refused before any tenant data is read; had it read, it would see none
    response = client.get("/api/v1/customers")
    assert response.status_code == 401
    assert current_tenant_id() == ""


# --- Switches that change nothing ---------------------------------------------------------------


def _switches(queries: CaptureQueriesContext) -> int:
    return sum("set_config('role'" in q["sql"] for q in queries.captured_queries)


@pytest.mark.django_db(transaction=True)
def test_a_switch_to_what_the_connection_holds_makes_no_statement(
    make_client: Any, tenant: Tenant, other_tenant: Tenant, customers: dict[str, Customer], monkeypatch: Any
) -> None:
    # given: the customer list forgets its tenant filter; requests outside any transaction, on a
    # connection that holds the application role and no tenant (as every request's end leaves it)
    from customers.api import views

    monkeypatch.setattr(views, "customer_list", lambda **kwargs: Customer.objects.all())
    acme, globex = make_client(tenant), make_client(other_tenant)
    with tenant_context(None):
        for client, expected in ((acme, ["dupont", "durand"]), (globex, ["dupont"]), (acme, ["dupont", "durand"])):
            with CaptureQueriesContext(connection) as queries:
                body = client.get("/api/v1/customers").json()
            # then: each sees its own tenant's rows, with 2 switches: to its key's tenant, and back to
            # none at its end; the switch before its first query would set what is there already
            assert sorted(c["external_id"] for c in body["results"]) == expected
            assert _switches(queries) == 2
            assert current_tenant_id() == ""


@pytest.mark.django_db(transaction=True)
def test_a_kept_connection_holds_the_application_role_between_requests(
    make_client: Any, tenant: Tenant, customers: dict[str, Customer], monkeypatch: Any
) -> None:
    # given: production's connections, switched to the application role as they open; the customer
    # list forgets its tenant filter
    from customers.api import views

    monkeypatch.setattr(views, "customer_list", lambda **kwargs: Customer.objects.all())
    acme = make_client(tenant)
    made: list[tuple[str, str]] = []
    remember = rls._remember

    def counted(c: Any, raw: Any, role: str, t: str) -> None:
        made.append((role, t))
        remember(c, raw, role, t)

    monkeypatch.setattr(rls, "_remember", counted)
    role, acme_id = rls.app_role(), str(tenant.pk)
    connection.close()
    rls.set_role_on_connect = True
    try:
        for first in (True, False):
            made.clear()
            body = acme.get("/api/v1/customers").json()
            assert sorted(c["external_id"] for c in body["results"]) == ["dupont", "durand"]
            # then: the statements that switched: the connection's role as it opened (the first
            # request's), the key's tenant, none again at the end; never the login role
            opened = [(role, "")] if first else []
            assert made == [*opened, (role, acme_id), (role, "")]
            with connection.cursor() as cursor:
                cursor.execute("SELECT current_user, current_setting('tripod.tenant_id', true)")
                assert cursor.fetchone() == (role, "")
    finally:
        connection.close()  # the test database is emptied by the login role
        rls.set_role_on_connect = False


def _activate_then_fail(tenant: Tenant) -> None:
    rls.tenant_activate(tenant)
    raise RuntimeError("rolled back")


@pytest.mark.django_db(transaction=True)
def test_a_switch_made_in_a_transaction_is_not_trusted_after_it(
    tenant: Tenant, other_tenant: Tenant, customers: dict[str, Customer], app_role: None
) -> None:
    with tenant_context(tenant):
        # a transaction switches to Globex and commits: Globex it is
        with transaction.atomic():
            rls.tenant_activate(other_tenant)
        assert current_tenant_id() == str(other_tenant.pk)
        rls.tenant_activate(tenant)
        assert external_ids() == ["dupont", "durand"]
        # a transaction switches to Globex and rolls back: still Acme, and switching to Globex now
        # is made, not taken for done
        with pytest.raises(RuntimeError), transaction.atomic():
            _activate_then_fail(other_tenant)
        assert current_tenant_id() == str(tenant.pk)
        rls.tenant_activate(other_tenant)
        assert external_ids() == ["dupont"]
        with CaptureQueriesContext(connection) as queries:
            rls.tenant_activate(other_tenant)  # committed and idle since: known, no statement
        assert _switches(queries) == 0
    assert current_tenant_id() == ""
    assert external_ids() == []


# --- Tasks --------------------------------------------------------------------------------------


@celery_app.task(base=TenantTask, name="tests.rls.count_customers_of_tenant")
def count_customers_of_tenant(*, tenant_id: str) -> int:
    return Customer.objects.count()  # no tenant filter, on purpose


@celery_app.task(name="tests.rls.count_customers")
def count_customers() -> int:
    return Customer.objects.count()  # no tenant filter, on purpose


def test_a_task_runs_under_the_tenant_it_is_given(
    eager: None, tenant: Tenant, other_tenant: Tenant, customers: dict[str, Customer]
) -> None:
    assert count_customers_of_tenant.delay(tenant_id=str(tenant.pk)).get() == 2
    assert count_customers_of_tenant.delay(tenant_id=str(other_tenant.pk)).get() == 1
    # a task that is not given a tenant sees none
    assert count_customers.delay().get() == 0
    # and a tenant task called without its tenant refuses to run
    with pytest.raises(TypeError, match="call it with tenant_id="):
        count_customers_of_tenant.apply(kwargs={}, throw=True)


def test_the_schedule_queues_one_task_per_tenant_each_under_its_tenant(
    eager: None, tenant: Tenant, other_tenant: Tenant, customers: dict[str, Customer], monkeypatch: Any
) -> None:
    from invoicing import services
    from invoicing.tasks import bill_runs_scheduled_task

    seen: list[tuple[str, str, int]] = []

    def start_due(*, tenant: Tenant, at: Any) -> int:
        seen.append((tenant.slug, current_tenant_id(), Customer.objects.count()))
        return 0

    monkeypatch.setattr(services, "bill_runs_start_due", start_due)
    # when: beat runs the schedule
    assert bill_runs_scheduled_task.delay().get() == 2
    # then: one task per tenant, each seeing its own customers (Acme 2, Globex 1)
    assert sorted(seen) == sorted([("acme", str(tenant.pk), 2), ("globex", str(other_tenant.pk), 1)])


# --- The roles ----------------------------------------------------------------------------------


def test_the_application_role_is_bound_by_the_policies_and_owns_nothing() -> None:
    role = rls.app_role()
    assert role == "tripod_app"
    with connection.cursor() as cursor:
        cursor.execute("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = %s", [role])
        assert cursor.fetchone() == (False, False)
        cursor.execute(
            "SELECT count(*) FROM pg_class WHERE relowner = (SELECT oid FROM pg_roles WHERE rolname = %s)", [role]
        )
        assert cursor.fetchone() == (0,)


def test_the_system_check_refuses_a_role_that_bypasses_the_policies(settings: Any) -> None:
    from billing_platform.checks import app_role_bound_by_row_level_security as check

    assert check(None, databases=["default"]) == []
    # with no switch, the application would run as the suite's login role, a superuser
    settings.DATABASE_APP_ROLE = ""
    [error] = check(None, databases=["default"])
    assert error.id == "tripod.E001"
    assert "is a superuser: row-level security does not bind it" in error.msg
    settings.DATABASE_APP_ROLE = "tripod_not_created_yet"
    [warning] = check(None, databases=["default"])
    assert (warning.id, warning.msg) == (
        "tripod.W001",
        "The database role 'tripod_not_created_yet' (DATABASE_APP_ROLE) does not exist yet.",
    )
