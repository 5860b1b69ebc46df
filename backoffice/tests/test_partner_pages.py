"""The back-office partner pages: the list with its search, status filter and customers counted, a
new partner with its commission plan typed per leg, a partner's page and its edit form, and who may
read and write them."""

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.test import Client
from django.utils import timezone
from djmoney.money import Money

from backoffice.partners.forms import LegTextError, leg_from_text, leg_to_text
from catalog.models import PriceVersion
from catalog.tests.factories import platform_plan
from customers.models import Customer, Partner
from customers.services import customer_create, customer_update
from invoicing.models import Invoice
from invoicing.tests.factories import issue, line
from partners import statements as partner_statements
from partners.models import CommissionLine, CommissionStatement, PartnerUser
from partners.services import partner_create
from partners.statements import statement_approve, statements_build
from payments.ledger import payment_record
from payments.tests.factories import payer
from support.tests.factories import customer_with_invoice
from tenancy.actors import Actor
from tenancy.models import ApiKey, AuditLogEntry, Role, Tenant

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system()
ALPNET_PLAN = {"hardware": "5", "service": "20", "usage": "10"}


def _login(client: Client, make_staff: Any, tenant: Tenant, role: str = Role.OWNER) -> Any:
    user = make_staff(tenant, role, "%s@acme.test" % role)
    client.force_login(user)
    return user


def _partner(tenant: Tenant, code: str = "alpnet", name: str = "AlpNet", **fields: Any) -> Partner:
    return partner_create(
        tenant=tenant,
        actor=SYSTEM,
        at=timezone.now(),
        code=code,
        name=name,
        email=fields.pop("email", "channel@%s.test" % code),
        country=fields.pop("country", "FR"),
        currency=fields.pop("currency", "EUR"),
        commission_plan=fields.pop("commission_plan", ALPNET_PLAN),
        **fields,
    )


def _customer(tenant: Tenant, external_id: str, partner: Partner | None = None) -> Customer:
    customer = customer_create(
        tenant=tenant,
        actor=SYSTEM,
        at=timezone.now(),
        external_id=external_id,
        name=external_id.title(),
        email="billing@%s.test" % external_id,
        country="FR",
    )
    if partner is not None:
        customer = customer_update(
            tenant=tenant, actor=SYSTEM, at=timezone.now(), external_id=external_id, changes={"partner": partner}
        )
    return customer


def _form(**changes: str) -> dict[str, str]:
    data = {
        "code": "alpnet",
        "name": "AlpNet",
        "email": "channel@alpnet.test",
        "country": "FR",
        "currency": "EUR",
        "language": "fr",
        "price_book": "",
        "commission_hardware": "5",
        "commission_service": "20",
        "commission_usage": "10",
        "commission_fee": "",
    }
    data.update(changes)
    return data


# --- the commission plan as text ------------------------------------------------------------------


def test_a_leg_is_read_from_a_rate_or_tiers_and_written_back() -> None:
    assert leg_from_text("20") == "20"
    assert leg_from_text(" 12,5 % ") == "12.5"
    assert leg_from_text("") == "0"
    assert leg_from_text("20 up to 10 000; 25") == {
        "tiers": [{"up_to": "10000", "rate": "20"}, {"up_to": None, "rate": "25"}]
    }
    assert leg_from_text("20 jusqu'à 10000 ; 22 up to 20000 ; 25") == {
        "tiers": [
            {"up_to": "10000", "rate": "20"},
            {"up_to": "20000", "rate": "22"},
            {"up_to": None, "rate": "25"},
        ]
    }
    # nothing said above the last bound, or a bound without its rate: refused
    for text in ("20 up to 10000", "up to 10000; 25", "20; 25"):
        with pytest.raises(LegTextError):
            leg_from_text(text)
    assert leg_to_text({"tiers": [{"up_to": "10000.00", "rate": "20"}, {"up_to": None, "rate": "25"}]}) == (
        "20 up to 10000.00; 25"
    )
    assert leg_to_text("5") == "5"


# --- the list -------------------------------------------------------------------------------------


def test_the_list_counts_customers_searches_and_filters_by_status(
    client: Client, make_staff: Any, tenant: Tenant, other_tenant: Tenant
) -> None:
    # given: AlpNet with 2 customers, Baltic Integrators inactive with 1, a direct customer, and
    # another tenant's partner of the same code
    alpnet = _partner(tenant)
    baltic = _partner(tenant, "baltic", "Baltic Integrators", country="SE")
    _partner(other_tenant, "alpnet", "Someone else's AlpNet")
    _customer(tenant, "dupont", alpnet)
    _customer(tenant, "martin", alpnet)
    _customer(tenant, "nordlog", baltic)
    _customer(tenant, "direct")
    Partner.objects.filter(pk=baltic.pk).update(status="inactive")
    _login(client, make_staff, tenant, Role.SUPPORT_AGENT)

    response = client.get("/app/partners/")

    assert response.status_code == 200
    rows = [(p.code, p.customer_count) for p in response.context["page"].object_list]
    assert rows == [("alpnet", 2), ("baltic", 1)]
    assert "Someone else" not in response.content.decode()
    # a support agent reads, but creates nothing
    assert "/app/partners/+new/" not in response.content.decode()
    assert [p.code for p in client.get("/app/partners/?status=inactive").context["page"].object_list] == ["baltic"]
    assert [p.code for p in client.get("/app/partners/?q=integr").context["page"].object_list] == ["baltic"]
    assert [p.code for p in client.get("/app/partners/?q=ALPNET").context["page"].object_list] == ["alpnet"]
    # the live search answers the rows only
    rows_only = client.get("/app/partners/?q=alp", headers={"HX-Request": "true"})
    assert "<table" in rows_only.content.decode()
    assert "<h1>" not in rows_only.content.decode()
    # a status that is not one is left out, not a 500
    assert client.get("/app/partners/?status=closed").status_code == 200


def test_the_lists_commission_is_computed_for_the_partners_of_the_page_only(
    client: Client, make_staff: Any, tenant: Tenant, monkeypatch: Any, django_assert_max_num_queries: Any
) -> None:
    # 51 partners: 50 on the first page (p00..p49), p50 alone on the second
    for n in range(51):
        _partner(tenant, "p%02d" % n, "Partner %02d" % n)
    computed: list[list[str]] = []
    compute = partner_statements.commission_lines_compute

    def spy(**kwargs: Any) -> Any:
        computed.append([p.code for p in kwargs["partners"]])
        return compute(**kwargs)

    monkeypatch.setattr(partner_statements, "commission_lines_compute", spy)
    _login(client, make_staff, tenant, Role.FINANCE_VIEWER)

    # 16 whatever the number of partners: the session, the staff user and their tenant, the count and
    # the page of partners, then the report's partners, statements and its 6 of the computation, the
    # months before without a statement yet and the computation of what they will take (no invoice
    # here: one query)
    with django_assert_max_num_queries(16):
        first = client.get("/app/partners/")
    assert len(first.context["page"].object_list) == 50
    page = ["p%02d" % n for n in range(50)]
    assert computed == [page, page]
    second = client.get("/app/partners/?page=2")
    assert [p.code for p in second.context["page"].object_list] == ["p50"]
    assert computed[2:] == [["p50"], ["p50"]]
    # the live search: the rows it shows, and only them
    client.get("/app/partners/?q=partner 07", headers={"HX-Request": "true"})
    assert computed[4:] == [["p07"], ["p07"]]


# --- a new partner --------------------------------------------------------------------------------


def test_an_owner_creates_a_partner_with_a_graduated_leg(client: Client, make_staff: Any, tenant: Tenant) -> None:
    _login(client, make_staff, tenant)
    assert client.get("/app/partners/+new/").status_code == 200

    response = client.post("/app/partners/+new/", _form(commission_service="20 up to 10000; 25"))

    assert response.status_code == 302
    assert response["Location"] == "/app/partners/alpnet/"
    partner = Partner.objects.get(tenant=tenant, code="alpnet")
    assert (partner.name, partner.country, partner.currency, partner.language, partner.status) == (
        "AlpNet",
        "FR",
        "EUR",
        "fr",
        "active",
    )
    # stored as the API takes it: every leg, rates as strings, the fee leg "0"
    assert partner.commission_plan == {
        "hardware": "5",
        "service": {"tiers": [{"up_to": "10000", "rate": "20"}, {"up_to": None, "rate": "25"}]},
        "usage": "10",
        "fee": "0",
    }
    entry = AuditLogEntry.objects.get(tenant=tenant, action="partner.created")
    assert entry.object_id == "alpnet"
    page = client.get("/app/partners/alpnet/").content.decode()
    assert "AlpNet" in page
    assert "20% up to €10,000.00" in page
    assert "25% above" in page


def test_every_error_of_the_form_is_said_at_once_on_its_field(client: Client, make_staff: Any, tenant: Tenant) -> None:
    _partner(tenant, "alpnet")
    _login(client, make_staff, tenant, Role.FINANCE_ADMIN)

    response = client.post(
        "/app/partners/+new/",
        _form(
            name="",
            commission_hardware="120",  # over 100 %
            commission_service="25 up to 10000; 20 up to 5000; 30",  # bounds going down
            commission_usage="ten",
            commission_fee="5 up to 1000",  # nothing above 1,000.00
        ),
    )

    assert response.status_code == 422
    errors = response.context["form"].errors
    # the code taken, the name missing and the fee's tiers from the form; the rates and bounds from the plan's check
    assert set(errors) == {
        "code",
        "name",
        "commission_fee",
        "commission_hardware",
        "commission_service",
        "commission_usage",
    }
    assert errors["code"] == ["Another partner already has this code."]
    assert errors["commission_hardware"] == ["A rate is a percentage from 0 to 100."]
    assert errors["commission_service"] == [
        "Each tier's upper bound is a positive amount above the one before; the last tier has none."
    ]
    assert errors["commission_fee"] == ["Write a rate, or tiers such as: 20 up to 10000; 25."]
    assert Partner.objects.filter(tenant=tenant).count() == 1
    # what was typed is kept
    assert "25 up to 10000; 20 up to 5000; 30" in response.content.decode()


def test_the_plans_check_waits_for_the_form_and_a_bad_code_is_said_on_its_field(
    client: Client, make_staff: Any, tenant: Tenant
) -> None:
    _login(client, make_staff, tenant)

    response = client.post("/app/partners/+new/", _form(code="alp net", commission_usage="150"))

    assert response.status_code == 422
    errors = response.context["form"].errors
    assert errors["code"] == ["Start with a letter or digit and use only letters, digits and . _ - (no spaces)."]
    assert errors["commission_usage"] == ["A rate is a percentage from 0 to 100."]
    assert not Partner.objects.filter(tenant=tenant).exists()


# --- a partner's page and its edit form ---------------------------------------------------------


def test_the_partner_page_shows_its_details_plan_and_customers(client: Client, make_staff: Any, tenant: Tenant) -> None:
    alpnet = _partner(tenant)
    _customer(tenant, "dupont", alpnet)
    _customer(tenant, "direct")
    _login(client, make_staff, tenant, Role.FINANCE_VIEWER)

    response = client.get("/app/partners/alpnet/")

    assert response.status_code == 200
    assert [c.external_id for c in response.context["customers"]] == ["dupont"]
    assert [(r["leg"], r["rate"]) for r in response.context["plan"]] == [
        ("hardware", "5"),
        ("service", "20"),
        ("usage", "10"),
        ("fee", "0"),
    ]
    page = response.content.decode()
    assert 'href="/app/customers/dupont/"' in page
    assert "channel@alpnet.test" in page
    # a finance viewer reads the statements, but edits nothing
    assert 'id="statements"' in page
    assert "/app/partners/alpnet/edit/" not in page
    assert client.get("/app/partners/alpnet/edit/").status_code == 403
    assert client.get("/app/partners/nobody/").status_code == 404


def test_a_support_agent_does_not_see_commission(client: Client, make_staff: Any, tenant: Tenant) -> None:
    _partner(tenant)
    _login(client, make_staff, tenant, Role.SUPPORT_AGENT)
    page = client.get("/app/partners/alpnet/").content.decode()
    assert 'id="statements"' not in page


def test_another_tenants_partner_is_not_found(
    client: Client, make_staff: Any, tenant: Tenant, other_tenant: Tenant
) -> None:
    _partner(other_tenant, "globex-partner", "Globex Partner")
    _login(client, make_staff, tenant)
    assert client.get("/app/partners/globex-partner/").status_code == 404
    assert client.get("/app/partners/globex-partner/edit/").status_code == 404
    assert client.post("/app/partners/globex-partner/edit/", _form(code="globex-partner")).status_code == 404


def test_editing_a_partner_changes_its_details_and_plan_audited(
    client: Client, make_staff: Any, tenant: Tenant
) -> None:
    _partner(tenant)
    _login(client, make_staff, tenant)
    form = client.get("/app/partners/alpnet/edit/")
    assert form.status_code == 200
    # the stored plan is shown as typed
    assert form.context["form"].initial["commission_service"] == "20"

    response = client.post(
        "/app/partners/alpnet/edit/",
        _form(
            code="ignored",  # the code cannot change
            name="AlpNet SAS",
            status="inactive",
            price_book="alpnet-2026",
            commission_service="20 up to 10000; 25",
            commission_fee="2.5",
        ),
    )

    assert response.status_code == 302
    partner = Partner.objects.get(tenant=tenant, code="alpnet")
    assert (partner.name, partner.status, partner.price_book) == ("AlpNet SAS", "inactive", "alpnet-2026")
    assert partner.commission_plan["service"] == {
        "tiers": [{"up_to": "10000", "rate": "20"}, {"up_to": None, "rate": "25"}]
    }
    assert partner.commission_plan["fee"] == "2.5"
    entry = AuditLogEntry.objects.get(tenant=tenant, action="partner.updated")
    # the language too: created in English, the form sends French
    assert set(entry.after or {}) == {"name", "status", "price_book", "commission_plan", "language"}
    assert not Partner.objects.filter(code="ignored").exists()
    # shown again as typed, in the reader's language
    again = client.get("/app/partners/alpnet/edit/")
    assert again.context["form"].initial["commission_service"] == "20 up to 10000; 25"


@pytest.mark.parametrize("role", [Role.FINANCE_VIEWER, Role.SUPPORT_AGENT])
def test_readers_create_and_change_nothing(client: Client, make_staff: Any, tenant: Tenant, role: str) -> None:
    _partner(tenant)
    _login(client, make_staff, tenant, role)
    assert client.get("/app/partners/+new/").status_code == 403
    assert client.post("/app/partners/+new/", _form(code="other")).status_code == 403
    assert client.post("/app/partners/alpnet/edit/", _form(name="Hacked")).status_code == 403
    assert Partner.objects.get(tenant=tenant, code="alpnet").name == "AlpNet"
    assert Partner.objects.filter(tenant=tenant).count() == 1


def test_the_customer_page_names_its_partner(client: Client, make_staff: Any, tenant: Tenant) -> None:
    alpnet = _partner(tenant)
    _customer(tenant, "dupont", alpnet)
    _customer(tenant, "direct")
    _login(client, make_staff, tenant, Role.SUPPORT_AGENT)

    page = client.get("/app/customers/dupont/").content.decode()
    assert '<a href="/app/partners/alpnet/" data-partner="alpnet">AlpNet</a>' in page
    assert "via AlpNet" in page
    direct = client.get("/app/customers/direct/").content.decode()
    assert "No partner (a direct customer)" in direct
    assert "data-partner=" not in direct


# --- its users ------------------------------------------------------------------------------------


def test_an_owner_invites_a_partner_user_changes_deactivates_and_reinvites(
    client: Client, make_staff: Any, tenant: Tenant, django_capture_on_commit_callbacks: Any
) -> None:
    alpnet = _partner(tenant)
    _login(client, make_staff, tenant)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/app/partners/alpnet/users/invite/",
            {"email": "Paul.Girard@alpnet.test", "name": "Paul Girard", "role": "admin"},
        )

    assert response.status_code == 302
    assert response["Location"] == "/app/partners/alpnet/#partner-users"
    user = PartnerUser.objects.get(tenant=tenant, partner=alpnet)
    assert (user.email, user.name, user.role, user.is_active) == (
        "paul.girard@alpnet.test",
        "Paul Girard",
        "admin",
        True,
    )
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["paul.girard@alpnet.test"]
    assert "/partners/acme/invitation/" in mail.outbox[0].body
    page = client.get("/app/partners/alpnet/").content.decode()
    assert 'data-partner-user="paul.girard@alpnet.test"' in page
    assert "/partners/acme/login/" in page

    # the same address again, in another case: said on the field
    again = client.post("/app/partners/alpnet/users/invite/", {"email": "PAUL.GIRARD@alpnet.test", "role": "sales"})
    assert again.status_code == 422
    assert again.context["partner_invite_form"].errors["email"] == [
        "This address is already a partner user (of this partner or another one)."
    ]

    base = "/app/partners/alpnet/users/%s/" % user.pk
    assert client.post(base, {"role": "sales"}).status_code == 302
    user.refresh_from_db()
    assert user.role == "sales"
    assert client.post(base, {"active": "0"}).status_code == 302
    user.refresh_from_db()
    assert user.is_active is False
    assert client.post(base, {"active": "1"}).status_code == 302
    user.refresh_from_db()
    assert user.is_active is True
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(base + "resend/").status_code == 302
    assert len(mail.outbox) == 2
    actions = list(
        AuditLogEntry.objects.filter(tenant=tenant, action__startswith="partner_user.")
        .order_by("at", "id")
        .values_list("action", flat=True)
    )
    assert actions == [
        "partner_user.invited",
        "partner_user.updated",
        "partner_user.removed",
        "partner_user.reactivated",
        "partner_user.invitation_resent",
    ]


def test_a_partner_users_address_is_checked_and_another_partners_user_is_not_found(
    client: Client, make_staff: Any, tenant: Tenant
) -> None:
    _partner(tenant)
    baltic = _partner(tenant, "baltic", "Baltic Integrators")
    other = PartnerUser.objects.create(tenant=tenant, partner=baltic, email="lena@baltic.test", role="admin")
    _login(client, make_staff, tenant)

    bad = client.post("/app/partners/alpnet/users/invite/", {"email": "not an address", "role": "boss"})
    assert bad.status_code == 422
    assert set(bad.context["partner_invite_form"].errors) == {"email", "role"}
    # Baltic's user through AlpNet's page: not found, and unchanged
    assert client.post("/app/partners/alpnet/users/%s/" % other.pk, {"active": "0"}).status_code == 404
    assert client.post("/app/partners/alpnet/users/not-a-uuid/", {"active": "0"}).status_code == 404
    # 32 dashes are no id either: not found, not a server error
    assert client.post("/app/partners/alpnet/users/%s/" % ("-" * 32), {"active": "0"}).status_code == 404
    assert client.post("/app/partners/alpnet/users/%s/resend/" % ("-" * 32)).status_code == 404
    other.refresh_from_db()
    assert other.is_active is True


@pytest.mark.parametrize("role", [Role.FINANCE_VIEWER, Role.SUPPORT_AGENT])
def test_readers_see_partner_users_but_change_none(client: Client, make_staff: Any, tenant: Tenant, role: str) -> None:
    alpnet = _partner(tenant)
    user = PartnerUser.objects.create(tenant=tenant, partner=alpnet, email="paul@alpnet.test", role="admin")
    _login(client, make_staff, tenant, role)

    page = client.get("/app/partners/alpnet/").content.decode()
    assert 'data-partner-user="paul@alpnet.test"' in page
    assert "/users/invite/" not in page
    # API keys are for owners and finance admins only, not even listed
    assert 'id="partner-keys"' not in page
    assert client.post("/app/partners/alpnet/users/invite/", {"email": "x@alpnet.test"}).status_code == 403
    assert client.post("/app/partners/alpnet/users/%s/" % user.pk, {"active": "0"}).status_code == 403
    assert client.post("/app/partners/alpnet/api-keys/", {"name": "CRM"}).status_code == 403
    user.refresh_from_db()
    assert user.is_active is True
    assert PartnerUser.objects.filter(tenant=tenant).count() == 1


# --- its API keys ---------------------------------------------------------------------------------


def test_a_partner_key_is_shown_once_and_revoked(client: Client, make_staff: Any, tenant: Tenant) -> None:
    alpnet = _partner(tenant)
    baltic = _partner(tenant, "baltic", "Baltic Integrators")
    _login(client, make_staff, tenant, Role.FINANCE_ADMIN)

    response = client.post("/app/partners/alpnet/api-keys/", {"name": "AlpNet CRM"})

    assert response.status_code == 200
    key = ApiKey.objects.get(tenant=tenant, partner=alpnet)
    assert (key.name, key.scope) == ("AlpNet CRM", "partner")
    shown = response.context["new_key"]
    assert shown.startswith(key.prefix)
    assert shown in response.content.decode()
    assert "no-cache" in response["Cache-Control"]
    # never again
    assert shown not in client.get("/app/partners/alpnet/").content.decode()
    # an empty name: said, nothing created
    assert client.post("/app/partners/alpnet/api-keys/", {"name": ""}).status_code == 422
    assert ApiKey.objects.filter(tenant=tenant, partner=alpnet).count() == 1
    # revoked through its partner's page only
    assert client.post("/app/partners/baltic/api-keys/%s/revoke/" % key.pk).status_code == 404
    assert client.post("/app/partners/alpnet/api-keys/nonsense/revoke/").status_code == 404
    key.refresh_from_db()
    assert key.revoked_at is None
    assert client.post("/app/partners/alpnet/api-keys/%s/revoke/" % key.pk).status_code == 302
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert not ApiKey.objects.filter(partner=baltic).exists()


def test_the_form_names_the_price_books_in_use(client: Client, make_staff: Any, tenant: Tenant) -> None:
    _login(client, make_staff, tenant)
    assert "Books of your price versions" not in client.get("/app/partners/+new/").content.decode()
    # two plans, each with one price version; one of them in the book "wholesale"
    platform_plan(tenant, "basic", "25.00")
    plan = platform_plan(tenant, "pro", "40.00")
    PriceVersion.objects.filter(tenant=tenant, plan=plan).update(price_book="wholesale")
    page = client.get("/app/partners/+new/").content.decode()
    assert "Books of your price versions: wholesale." in page


# --- commission statements and the report ---------------------------------------------------------


def _statement(
    tenant: Tenant, partner: Partner, month: date, lines: list[tuple[str, str, str, str]], **fields: Any
) -> CommissionStatement:
    """A statement of ``lines`` (leg, net collected, rate, amount) on one invoice of Dupont, AlpNet's
    customer: 100.00 net, 120.00 with tax."""
    invoice = Invoice.objects.filter(tenant=tenant, customer__external_id="dupont").first()
    if invoice is None:
        customer, invoice = customer_with_invoice(tenant)
    customer = invoice.customer
    customer_update(
        tenant=tenant, actor=SYSTEM, at=timezone.now(), external_id=customer.external_id, changes={"partner": partner}
    )
    statement = CommissionStatement.objects.create(
        tenant=tenant,
        partner=partner,
        month=month,
        currency="EUR",
        total=sum((Decimal(amount) for _leg, _net, _rate, amount in lines), Decimal(0)),
        built_at=timezone.now(),
        **fields,
    )
    for leg, net, rate, amount in lines:
        CommissionLine.objects.create(
            tenant=tenant,
            statement=statement,
            invoice=invoice,
            customer=customer,
            leg=leg,
            net_collected=Decimal(net),
            rate=Decimal(rate),
            amount=Decimal(amount),
        )
    return statement


def test_the_statement_queue_filters_and_a_statement_shows_its_lines(
    client: Client, make_staff: Any, tenant: Tenant, other_tenant: Tenant
) -> None:
    alpnet = _partner(tenant)
    # April: the worked example's three legs, 3.00 + 14.68 + 1.75 = 19.43
    april = _statement(
        tenant,
        alpnet,
        date(2026, 4, 1),
        [("hardware", "60.00", "5", "3.00"), ("service", "73.39", "20", "14.68"), ("usage", "17.52", "10", "1.75")],
    )
    _login(client, make_staff, tenant, Role.FINANCE_VIEWER)

    response = client.get("/app/commissions/statements/")
    assert response.status_code == 200
    assert [(s.month, s.total, s.line_count) for s in response.context["page"].object_list] == [
        (date(2026, 4, 1), Decimal("19.43"), 3)
    ]
    assert "€19.43" in response.content.decode()
    assert list(client.get("/app/commissions/statements/?month=2026-05").context["page"].object_list) == []
    assert (
        len(
            client.get("/app/commissions/statements/?month=2026-04&status=draft&partner=alpnet")
            .context["page"]
            .object_list
        )
        == 1
    )
    assert list(client.get("/app/commissions/statements/?status=paid").context["page"].object_list) == []
    bad = client.get("/app/commissions/statements/?month=April")
    assert bad.status_code == 200
    assert bad.context["form"].errors["month"] == ["Give a month as YYYY-MM, e.g. 2026-04."]

    page = client.get("/app/commissions/statements/%s/" % april.pk)
    assert page.status_code == 200
    assert [(item["line"].leg, item["leg"], item["line"].amount) for item in page.context["lines"]] == [
        ("hardware", "Hardware", Decimal("3.00")),
        ("service", "Service", Decimal("14.68")),
        ("usage", "Usage", Decimal("1.75")),
    ]
    body = page.content.decode()
    assert "€14.68" in body
    assert "20%" in body
    # another tenant's statement id, or no id at all: not found
    assert client.get("/app/commissions/statements/not-a-uuid/").status_code == 404
    other = _statement(other_tenant, _partner(other_tenant), date(2026, 4, 1), [("service", "10.00", "20", "2.00")])
    assert client.get("/app/commissions/statements/%s/" % other.pk).status_code == 404


def test_the_commission_report_sums_each_partners_month(client: Client, make_staff: Any, tenant: Tenant) -> None:
    alpnet = _partner(tenant)
    baltic = _partner(tenant, "baltic", "Baltic Integrators")
    _partner(tenant, "quiet", "Quiet Partner")
    # June: AlpNet 3.00 + 18.50 + 10.46 = 31.96 on 60.00 + 92.50 + 104.64 = 257.14 net; Baltic 2.00 on 10.00
    _statement(
        tenant,
        alpnet,
        date(2026, 6, 1),
        [("hardware", "60.00", "5", "3.00"), ("service", "92.50", "20", "18.50"), ("usage", "104.64", "10", "10.46")],
        status="approved",
    )
    _statement(tenant, baltic, date(2026, 6, 1), [("service", "10.00", "20", "2.00")])
    _login(client, make_staff, tenant)

    response = client.get("/app/commissions/report/?month=2026-06")

    assert response.status_code == 200
    rows = [
        (r["row"].partner.code, r["row"].lines, r["row"].net_collected, r["row"].total, r["status"])
        for r in response.context["rows"]
    ]
    assert rows == [
        ("alpnet", 3, Decimal("257.14"), Decimal("31.96"), "Approved"),
        ("baltic", 1, Decimal("10.00"), Decimal("2.00"), "Draft"),
    ]
    # EUR: 257.14 + 10.00 = 267.14 collected, 31.96 + 2.00 = 33.96 commission
    assert response.context["totals"] == [("EUR", {"net_collected": Decimal("267.14"), "commission": Decimal("33.96")})]
    assert response.context["partners_without"] == 1
    # May: nothing collected, nothing accrued
    assert client.get("/app/commissions/report/?month=2026-05").context["rows"] == []


def test_a_partner_coded_new_opens_and_the_form_has_its_own_address(
    client: Client, make_staff: Any, tenant: Tenant
) -> None:
    _login(client, make_staff, tenant)
    # no partner "new" yet: the form's earlier address leads to the form
    old = client.get("/app/partners/new/")
    assert (old.status_code, old["Location"]) == (302, "/app/partners/+new/")
    # made through the model, as a reseller's name turned into a partner could be
    Partner.objects.create(tenant=tenant, code="new", name="New Horizons", currency="EUR")
    page = client.get("/app/partners/new/")
    assert page.status_code == 200
    assert page.context["partner"].name == "New Horizons"
    assert client.get("/app/partners/+new/").status_code == 200
    assert client.get("/app/partners/new/edit/").status_code == 200


@time_machine.travel(datetime(2026, 7, 10, 9, 0, tzinfo=UTC), tick=False)
@pytest.mark.parametrize("month", ["9999-12", "0001-01", "1999-12", "3000-01"])
def test_a_month_out_of_range_on_the_commission_report_is_said_on_the_form(
    client: Client, make_staff: Any, tenant: Tenant, month: str
) -> None:
    _partner(tenant)
    _login(client, make_staff, tenant)

    response = client.get("/app/commissions/report/?month=" + month)

    assert response.status_code == 200
    assert response.context["form"].errors["month"] == ["Give a month as YYYY-MM, e.g. 2026-04."]
    # the page falls back to last month: June 2026
    assert response.context["month"] == date(2026, 6, 1)


def test_support_agents_see_no_commission_pages(client: Client, make_staff: Any, tenant: Tenant) -> None:
    _login(client, make_staff, tenant, Role.SUPPORT_AGENT)
    assert client.get("/app/commissions/statements/").status_code == 403
    assert client.get("/app/commissions/report/").status_code == 403


def test_a_statement_is_approved_in_month_order_then_marked_paid(
    client: Client, make_staff: Any, tenant: Tenant
) -> None:
    alpnet = _partner(tenant)
    april = _statement(tenant, alpnet, date(2026, 4, 1), [("hardware", "60.00", "5", "3.00")])
    june = _statement(tenant, alpnet, date(2026, 6, 1), [("service", "92.50", "20", "18.50")])
    _login(client, make_staff, tenant, Role.FINANCE_ADMIN)
    page = client.get("/app/commissions/statements/%s/" % june.pk).content.decode()
    assert "/approve/" in page
    assert 'id="mark-paid"' not in page

    # June waits for April, still a draft
    refused = client.post("/app/commissions/statements/%s/approve/" % june.pk, follow=True)
    assert "The statement of 2026-04 is still a draft: approve it first." in refused.content.decode()
    june.refresh_from_db()
    assert june.status == "draft"

    assert client.post("/app/commissions/statements/%s/approve/" % april.pk).status_code == 302
    april.refresh_from_db()
    assert april.status == "approved"
    assert april.approved_by != ""
    # approved twice: said, not a 500
    again = client.post("/app/commissions/statements/%s/approve/" % april.pk, follow=True)
    assert "Only a draft is approved: this statement is approved." in again.content.decode()

    # marked paid with the transfer's reference; an empty one is said on its field
    empty = client.post("/app/commissions/statements/%s/paid/" % april.pk, {"reference": "  "})
    assert empty.status_code == 422
    assert empty.context["paid_form"].errors["reference"]
    paid = client.post("/app/commissions/statements/%s/paid/" % april.pk, {"reference": "VIR-2026-05-17"})
    assert paid.status_code == 302
    april.refresh_from_db()
    assert (april.status, april.paid_reference) == ("paid", "VIR-2026-05-17")
    actions = list(
        AuditLogEntry.objects.filter(tenant=tenant, action__startswith="commission_statement.")
        .order_by("at", "id")
        .values_list("action", flat=True)
    )
    assert actions == ["commission_statement.approved", "commission_statement.paid"]
    assert "VIR-2026-05-17" in client.get("/app/commissions/statements/?status=paid").content.decode()


def test_a_statement_downloads_as_pdf_and_csv(client: Client, make_staff: Any, tenant: Tenant) -> None:
    alpnet = _partner(tenant)
    april = _statement(
        tenant,
        alpnet,
        date(2026, 4, 1),
        [("hardware", "60.00", "5", "3.00"), ("service", "73.39", "20", "14.68"), ("usage", "17.52", "10", "1.75")],
    )
    _login(client, make_staff, tenant, Role.FINANCE_VIEWER)

    pdf = client.get("/app/commissions/statements/%s/pdf/" % april.pk)
    assert pdf.status_code == 200
    assert pdf["Content-Type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    assert "attachment" in pdf["Content-Disposition"]
    csv = client.get("/app/commissions/statements/%s/lines.csv" % april.pk)
    assert csv.status_code == 200
    rows = csv.content.decode().strip().splitlines()
    # a header and the three legs
    assert len(rows) == 4
    assert rows[1].endswith("3.00")
    assert rows[2].endswith("14.68")
    assert rows[3].endswith("1.75")


@pytest.mark.parametrize("role", [Role.FINANCE_VIEWER, Role.SUPPORT_AGENT])
def test_readers_neither_approve_nor_mark_paid(client: Client, make_staff: Any, tenant: Tenant, role: str) -> None:
    statement = _statement(tenant, _partner(tenant), date(2026, 4, 1), [("hardware", "60.00", "5", "3.00")])
    _login(client, make_staff, tenant, role)
    assert client.post("/app/commissions/statements/%s/approve/" % statement.pk).status_code == 403
    assert client.post("/app/commissions/statements/%s/paid/" % statement.pk, {"reference": "X"}).status_code == 403
    statement.refresh_from_db()
    assert statement.status == "draft"


def _pay(invoice: Invoice, at: datetime, capture: Any) -> None:
    with time_machine.travel(at, tick=False), capture(execute=True):
        payment_record(
            customer=invoice.customer,
            amount=Money(invoice.total.amount, "EUR"),
            method="bank_transfer",
            received_at=at,
            actor=SYSTEM,
            at=at,
            invoice=invoice,
        )


def test_the_partner_page_lists_its_months_and_the_list_this_months_commission(
    client: Client, make_staff: Any, tenant: Tenant, django_capture_on_commit_callbacks: Any
) -> None:
    # given: Dupont, AlpNet's customer, pays in June its invoice of 100.00 net on the service leg
    # (120.00 with VAT): June's statement, built and approved, takes 100.00 x 20 % = 20.00; in July
    # it pays a second one of 50.00 net (60.00): 50.00 x 20 % = 10.00 accrues so far
    # (Dupont is AlpNet's when its invoices are finalized: AlpNet earns on them)
    alpnet = _partner(tenant)
    customer = payer(tenant)
    customer_update(
        tenant=tenant, actor=SYSTEM, at=timezone.now(), external_id=customer.external_id, changes={"partner": alpnet}
    )
    first = issue(customer, [line("service", "fleet-platform", "100.00")])
    _pay(first, datetime(2026, 6, 12, 10, 0, tzinfo=UTC), django_capture_on_commit_callbacks)
    [june] = statements_build(
        tenant=tenant, month=date(2026, 6, 1), actor=SYSTEM, at=datetime(2026, 7, 1, 6, 0, tzinfo=UTC)
    )
    statement_approve(statement=june, actor=SYSTEM, at=datetime(2026, 7, 2, 9, 0, tzinfo=UTC))
    second = issue(customer, [line("service", "fleet-platform", "50.00")], on=date(2026, 7, 1))
    _pay(second, datetime(2026, 7, 3, 10, 0, tzinfo=UTC), django_capture_on_commit_callbacks)
    assert (first.total.amount, second.total.amount, june.total) == (
        Decimal("120.00"),
        Decimal("60.00"),
        Decimal("20.00"),
    )
    _login(client, make_staff, tenant, Role.FINANCE_VIEWER)

    with time_machine.travel(datetime(2026, 7, 10, 9, 0, tzinfo=UTC), tick=False):
        page = client.get("/app/partners/alpnet/")
        listing = client.get("/app/partners/")

    # July so far, then June's statement
    assert [(m["row"].month, m["row"].total, m["status"]) for m in page.context["months"]] == [
        (date(2026, 7, 1), Decimal("10.00"), "Accruing"),
        (date(2026, 6, 1), Decimal("20.00"), "Approved"),
    ]
    assert 'href="/app/commissions/statements/%s/"' % june.pk in page.content.decode()
    [row] = listing.context["page"].object_list
    assert [(c.currency, c.total) for c in row.accrued] == [("EUR", Decimal("10.00"))]
    assert "€10.00" in listing.content.decode()
