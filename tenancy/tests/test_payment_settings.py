"""tenant_payment_update: the payment instructions and legal mentions printed on invoices, validated
(python-stdnum for the IBAN, the BIC and the SEPA creditor identifier) and audited."""

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from billing_platform.errors import InvalidInput
from tenancy.actors import Actor
from tenancy.errors import InvalidTenantSettings
from tenancy.models import AuditLogEntry, Tenant
from tenancy.services import tenant_payment_update

pytestmark = pytest.mark.django_db

AT = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)
ACTOR = Actor.system("tests")


def update(tenant: Tenant, **data: Any) -> Tenant:
    return tenant_payment_update(tenant=tenant, actor=ACTOR, at=AT, data=data)


def field_errors(exc: InvalidInput) -> list[tuple[str, str]]:
    return [(e.field, e.code) for e in exc.errors]


def test_payment_instructions_are_stored_compact_and_audited(tenant: Tenant) -> None:
    # given: a tenant with the defaults (30 days, 40 EUR, blank texts)
    assert (tenant.payment_terms_days, tenant.recovery_indemnity) == (30, Decimal(40))
    # when: typed the way they are printed
    update(
        tenant,
        iban="fr14 2004 1010 0505 0001 3m02 606",
        bic="bnpa fr pp xxx",
        sepa_creditor_id="FR72 ZZZ 123456",
        payment_terms_days=45,
        late_payment_penalty="  Pénalités de retard : 10 % par an  ",
        recovery_indemnity="40.00",
    )
    # then
    tenant.refresh_from_db()
    assert (tenant.iban, tenant.bic, tenant.sepa_creditor_id) == (
        "FR1420041010050500013M02606",
        "BNPAFRPPXXX",
        "FR72ZZZ123456",
    )
    assert tenant.payment_terms_days == 45
    assert tenant.late_payment_penalty == "Pénalités de retard : 10 % par an"
    entry = AuditLogEntry.objects.get(tenant=tenant, action="tenant.payment_updated")
    # the indemnity did not change (40.00 = 40): it is not recorded
    assert entry.before == {
        "iban": "",
        "bic": "",
        "sepa_creditor_id": "",
        "payment_terms_days": 30,
        "late_payment_penalty": "",
    }
    assert entry.after == {
        "iban": "FR1420041010050500013M02606",
        "bic": "BNPAFRPPXXX",
        "sepa_creditor_id": "FR72ZZZ123456",
        "payment_terms_days": 45,
        "late_payment_penalty": "Pénalités de retard : 10 % par an",
    }


def test_an_amount_is_audited_as_its_string(tenant: Tenant) -> None:
    update(tenant, recovery_indemnity=Decimal("50"))
    entry = AuditLogEntry.objects.get(tenant=tenant, action="tenant.payment_updated")
    assert (entry.before, entry.after) == ({"recovery_indemnity": "40.00"}, {"recovery_indemnity": "50.00"})
    tenant.refresh_from_db()
    assert tenant.recovery_indemnity == Decimal("50.00")


@pytest.mark.parametrize(
    ("data", "errors"),
    [
        # the last digit of a valid IBAN changed: the mod-97 check fails
        ({"iban": "FR1420041010050500013M02607"}, [("iban", "invalid_checksum")]),
        ({"iban": "DE8937040044053201300"}, [("iban", "invalid_checksum")]),
        ({"iban": "FR14 2004 !!"}, [("iban", "invalid_format")]),
        ({"bic": "BNP1FRPP", "iban": "DE89370400440532013000"}, [("bic", "invalid_format")]),
        ({"bic": "BNPAFRP", "iban": "DE89370400440532013000"}, [("bic", "invalid_format")]),
        # a BIC alone says nowhere to pay
        ({"bic": "BNPAFRPPXXX"}, [("iban", "required")]),
        ({"sepa_creditor_id": "FR72ZZZ123457"}, [("sepa_creditor_id", "invalid_checksum")]),
        ({"sepa_creditor_id": "72ZZZ123456"}, [("sepa_creditor_id", "invalid_format")]),
        ({"sepa_creditor_id": "XX72ZZZ123456"}, [("sepa_creditor_id", "unknown_prefix")]),
        ({"payment_terms_days": 366}, [("payment_terms_days", "out_of_range")]),
        ({"payment_terms_days": -1}, [("payment_terms_days", "out_of_range")]),
        ({"payment_terms_days": "30"}, [("payment_terms_days", "invalid_type")]),
        ({"recovery_indemnity": "-1"}, [("recovery_indemnity", "out_of_range")]),
        ({"recovery_indemnity": "40.005"}, [("recovery_indemnity", "out_of_range")]),
        ({"recovery_indemnity": "forty"}, [("recovery_indemnity", "invalid_type")]),
        ({"late_payment_penalty": "x" * 301}, [("late_payment_penalty", "too_long")]),
        ({"early_payment_discount": "Net\n2 %"}, [("early_payment_discount", "control_character")]),
        ({"vat_number": "FR74852379890"}, [("vat_number", "not_editable")]),
    ],
)
def test_bad_payment_settings_are_refused_and_nothing_changes(
    tenant: Tenant, data: dict[str, Any], errors: list[tuple[str, str]]
) -> None:
    with pytest.raises(InvalidTenantSettings) as caught:
        update(tenant, **data)
    assert field_errors(caught.value) == errors
    tenant.refresh_from_db()
    assert (tenant.iban, tenant.bic, tenant.sepa_creditor_id, tenant.payment_terms_days) == ("", "", "", 30)
    assert not AuditLogEntry.objects.filter(tenant=tenant, action="tenant.payment_updated").exists()


def test_errors_are_named_with_a_message(tenant: Tenant) -> None:
    with pytest.raises(InvalidTenantSettings) as caught:
        update(tenant, iban="FR1420041010050500013M02607", payment_terms_days=400)
    assert [(e.field, e.message) for e in caught.value.errors] == [
        ("payment_terms_days", "Payment terms are 0 to 365 days."),
        ("iban", "FR1420041010050500013M02607 is not a valid IBAN: check its digits."),
    ]


def test_blank_values_clear_and_zero_days_is_payment_on_receipt(tenant: Tenant) -> None:
    update(tenant, iban="DE89370400440532013000", bic="COBADEFFXXX", payment_terms_days=0)
    update(tenant, iban="", bic=None, early_payment_discount=None)
    tenant.refresh_from_db()
    assert (tenant.iban, tenant.bic, tenant.payment_terms_days, tenant.early_payment_discount) == ("", "", 0, "")
