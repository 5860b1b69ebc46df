"""Partners are created and changed by ``partners.services``: their commission plan is checked and
stored normalized, customers are assigned to them, and each change is audited."""

from decimal import Decimal

import pytest
from django.utils import timezone

from billing_platform.errors import InvalidInput
from customers.errors import PartnerNotFound
from customers.models import Partner
from customers.partners import partner_get
from customers.services import customer_create, customer_update
from partners.errors import PartnerCodeTaken
from partners.plans import commission_plan_parse
from partners.services import partner_create, partner_update
from tenancy.actors import Actor
from tenancy.models import AuditLogEntry, Tenant

ACTOR = Actor.system("tests")


def _alpnet(tenant: Tenant, **fields: object) -> Partner:
    args: dict[str, object] = {
        "code": "alpnet",
        "name": "AlpNet",
        "email": "channel@alpnet.test",
        "country": "fr",
        "commission_plan": {"hardware": "5", "service": "20", "usage": "10"},
    }
    args.update(fields)
    return partner_create(tenant=tenant, actor=ACTOR, at=timezone.now(), **args)  # type: ignore[arg-type]


@pytest.mark.django_db
def test_a_partner_is_created_with_its_plan_normalized_and_audited(tenant: Tenant) -> None:
    partner = _alpnet(tenant)
    assert (partner.currency, partner.country, partner.status) == ("EUR", "FR", "active")
    # The fee leg, left out, earns nothing: stored as "0" so that the plan reads whole.
    assert partner.commission_plan == {"hardware": "5", "service": "20", "usage": "10", "fee": "0"}
    entry = AuditLogEntry.objects.get(tenant=tenant, action="partner.created")
    assert entry.object_id == "alpnet"


@pytest.mark.django_db
def test_a_code_is_unique_per_tenant_only(tenant: Tenant, other_tenant: Tenant) -> None:
    _alpnet(tenant)
    with pytest.raises(PartnerCodeTaken):
        _alpnet(tenant, name="AlpNet again")
    assert _alpnet(other_tenant).tenant_id == other_tenant.pk


@pytest.mark.django_db
def test_every_wrong_field_is_named(tenant: Tenant) -> None:
    with pytest.raises(InvalidInput) as raised:
        _alpnet(
            tenant,
            currency="XXY",
            price_book="Wholesale Book",
            commission_plan={"service": "120", "cloud": "5", "usage": {"tiers": [{"up_to": None, "rate": "x"}]}},
        )
    assert sorted(e.field for e in raised.value.errors) == [
        "commission_plan.cloud",
        "commission_plan.service",
        "commission_plan.usage.tiers[0].rate",
        "currency",
        "price_book",
    ]


def test_graduated_tiers_are_marginal() -> None:
    plan = commission_plan_parse(
        {"service": {"tiers": [{"up_to": "10000.00", "rate": "20"}, {"up_to": None, "rate": "25"}]}}
    )
    leg = plan.leg("service")
    assert leg is not None
    # 9,000.00 already collected this month, 2,000.00 more: 1,000.00 × 20 % + 1,000.00 × 25 % = 450.00.
    assert leg.commission(before=Decimal("9000"), amount=Decimal("2000")) == Decimal("450.00")
    # Past the bound: all at 25 %. 500.00 × 25 % = 125.00.
    assert leg.commission(before=Decimal("12000"), amount=Decimal("500")) == Decimal("125.00")
    assert leg.rate_at(Decimal("10000")) == Decimal("20")
    assert leg.rate_at(Decimal("10000.01")) == Decimal("25")
    with pytest.raises(InvalidInput):
        commission_plan_parse({"service": {"tiers": [{"up_to": "100", "rate": "5"}, {"up_to": "50", "rate": "5"}]}})
    with pytest.raises(InvalidInput):
        commission_plan_parse({"service": {"tiers": [{"up_to": "100", "rate": "5"}]}})


@pytest.mark.django_db
def test_update_and_customers_assigned(tenant: Tenant, other_tenant: Tenant) -> None:
    partner = _alpnet(tenant)
    partner = partner_update(
        tenant=tenant,
        actor=ACTOR,
        at=timezone.now(),
        code="alpnet",
        changes={"price_book": "wholesale", "name": "AlpNet SAS"},
    )
    assert (partner.name, partner.price_book) == ("AlpNet SAS", "wholesale")
    customer = customer_create(
        tenant=tenant,
        actor=ACTOR,
        at=timezone.now(),
        external_id="dupont",
        name="Transports Dupont",
        email="billing@dupont.test",
        country="FR",
        partner=partner,
    )
    assert customer.partner == partner
    created = AuditLogEntry.objects.get(tenant=tenant, action="customer.created")
    assert created.after is not None
    assert created.after["partner"] == "alpnet"
    customer_update(tenant=tenant, actor=ACTOR, at=timezone.now(), external_id="dupont", changes={"partner": None})
    updated = AuditLogEntry.objects.get(tenant=tenant, action="customer.updated")
    assert (updated.before, updated.after) == ({"partner": "alpnet"}, {"partner": None})
    foreign = _alpnet(other_tenant)
    with pytest.raises(InvalidInput):
        customer_update(
            tenant=tenant, actor=ACTOR, at=timezone.now(), external_id="dupont", changes={"partner": foreign}
        )
    with pytest.raises(PartnerNotFound):
        partner_get(tenant=tenant, code="nope")


@pytest.mark.django_db
def test_a_rate_has_at_most_4_decimals_and_a_bound_at_most_2(tenant: Tenant) -> None:
    # A statement line stores its rate with 4 decimals: 12.34567 % would be paid as 12.3457 % on one
    # line and re-priced on the next (1,000.00 × 12.34567 % = 123.4567 → 123.46 once, 123.45 in thirds).
    with pytest.raises(InvalidInput) as raised:
        _alpnet(
            tenant,
            commission_plan={
                "service": "12.34567",
                "usage": {"tiers": [{"up_to": "1000.001", "rate": "10"}, {"up_to": None, "rate": "20.00001"}]},
            },
        )
    assert raised.value.status == 422
    assert sorted((e.field, e.code) for e in raised.value.errors) == [
        ("commission_plan.service", "invalid_rate"),
        ("commission_plan.usage.tiers[0].up_to", "invalid_up_to"),
    ]
    with pytest.raises(InvalidInput) as raised:
        commission_plan_parse(
            {"usage": {"tiers": [{"up_to": "1000.00", "rate": "10"}, {"up_to": None, "rate": "20.00001"}]}}
        )
    assert [e.field for e in raised.value.errors] == ["commission_plan.usage.tiers[1].rate"]
    # 4 decimals and 2 are fine (trailing zeros do not count).
    plan = commission_plan_parse(
        {
            "service": "12.3457",
            "usage": {"tiers": [{"up_to": "1000.500", "rate": "10.10000"}, {"up_to": None, "rate": "20"}]},
        }
    )
    service, usage = plan.leg("service"), plan.leg("usage")
    assert service is not None
    assert service.tiers[0].rate == Decimal("12.3457")
    assert usage is not None
    assert usage.tiers[0].up_to == Decimal("1000.5")
