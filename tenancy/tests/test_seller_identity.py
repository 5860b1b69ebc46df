"""tenant_seller_update: the seller identity printed on invoices, validated and audited."""

from datetime import UTC, datetime
from typing import Any

import pytest

from billing_platform.errors import InvalidInput
from tenancy.actors import Actor
from tenancy.errors import InvalidTenantSettings
from tenancy.models import AuditLogEntry, Tenant
from tenancy.services import tenant_seller_update

pytestmark = pytest.mark.django_db

AT = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)
ACTOR = Actor.system("tests")
SMART_FLEET = {
    "legal_name": "Smart Fleet Telematics SAS",
    "vat_number": "FR74852379890",
    "legal_registration_id": "852379890",
    "legal_registration_scheme": "0002",
    "address_line1": "12 rue de la Boétie",
    "address_line2": "",
    "postal_code": "75008",
    "city": "Paris",
    "country": "FR",
    "billing_email": "facturation@smartfleet.test",
}


def update(tenant: Tenant, **data: Any) -> Tenant:
    return tenant_seller_update(tenant=tenant, actor=ACTOR, at=AT, data=data)


def field_errors(exc: InvalidInput) -> list[tuple[str, str]]:
    return [(e.field, e.code) for e in exc.errors]


def test_the_seller_identity_is_saved_and_audited_with_only_what_changed(tenant: Tenant) -> None:
    # when
    updated = update(tenant, **SMART_FLEET)
    # then
    tenant.refresh_from_db()
    assert {field: getattr(tenant, field) for field in SMART_FLEET} == SMART_FLEET
    assert updated.seller_name == tenant.seller_name == "Smart Fleet Telematics SAS"
    entry = AuditLogEntry.objects.get(tenant=tenant, action="tenant.seller_updated")
    assert (entry.object_type, entry.object_id, entry.at) == ("tenant", "acme", AT)
    assert entry.before == {field: "" for field in SMART_FLEET if SMART_FLEET[field]}
    assert entry.after == {field: value for field, value in SMART_FLEET.items() if value}
    # a partial update records that field only; saving the same values records nothing
    update(tenant, city="Lyon", postal_code="69002")
    update(tenant, city="Lyon")
    entries = AuditLogEntry.objects.filter(tenant=tenant, action="tenant.seller_updated").order_by("id")
    assert [(e.before, e.after) for e in entries[1:]] == [
        ({"postal_code": "75008", "city": "Paris"}, {"postal_code": "69002", "city": "Lyon"})
    ]


def test_numbers_are_trimmed_and_upper_cased_and_a_blank_legal_name_falls_back_to_the_name(tenant: Tenant) -> None:
    update(tenant, vat_number="  fr 74 852.379-890 ", legal_registration_id=" 852 379 890 ", country="fr")
    tenant.refresh_from_db()
    assert (tenant.vat_number, tenant.legal_registration_id, tenant.country) == ("FR74852379890", "852379890", "FR")
    assert tenant.legal_name == ""
    assert tenant.seller_name == "Acme Telematics"


@pytest.mark.parametrize(
    ("vat_number", "code", "message"),
    [
        ("F1234", "invalid_format", "A VAT number is a 2-letter country prefix and 2 to 13 letters or digits"),
        ("FR1", "invalid_format", "2 to 13 letters or digits"),
        ("FR12345678901234", "invalid_format", "2 to 13 letters or digits"),
        ("FR7485237989_", "invalid_format", "2 to 13 letters or digits"),
        ("QQ123456789", "unknown_prefix", "QQ is not a country's VAT prefix."),
        ("FR00852379890", "invalid_checksum", "FR00852379890 is not a valid EU VAT number."),
    ],
)
def test_a_bad_vat_number_is_refused_with_a_precise_error(
    tenant: Tenant, vat_number: str, code: str, message: str
) -> None:
    with pytest.raises(InvalidTenantSettings, match=message) as raised:
        update(tenant, vat_number=vat_number)
    assert raised.value.code == "invalid_tenant_settings"
    assert raised.value.status == 422
    assert field_errors(raised.value) == [("vat_number", code)]
    assert not AuditLogEntry.objects.filter(action="tenant.seller_updated").exists()


@pytest.mark.parametrize("vat_number", ["CHE123456789", "GB123456789", "EL094259216", "NO123456789MVA"])
def test_vat_numbers_outside_the_eu_only_need_a_sane_format(tenant: Tenant, vat_number: str) -> None:
    # CHE is not a prefix plus digits: only CH is the country, "E123456789" the rest
    update(tenant, vat_number=vat_number)
    tenant.refresh_from_db()
    assert tenant.vat_number == vat_number


def test_every_error_is_reported_at_once(tenant: Tenant) -> None:
    with pytest.raises(InvalidTenantSettings) as raised:
        update(
            tenant,
            country="XX",
            address_line2="Bâtiment B",
            legal_registration_scheme="0002",
            billing_email="not-an-email",
            legal_name="x" * 201,
        )
    assert field_errors(raised.value) == [
        ("legal_name", "too_long"),
        ("country", "unknown_country"),
        ("legal_registration_id", "required"),
        ("address_line1", "required"),
        ("city", "required"),
        ("billing_email", "invalid_email"),
    ]
    assert str(raised.value).startswith("legal_name: legal_name has at most 200 characters.; country: Unknown ISO")


@pytest.mark.parametrize(
    ("scheme", "number", "code", "message"),
    [
        ("0002", "852379891", "invalid_siren", "A SIREN is 9 digits with a valid check digit."),
        ("0002", "85237989", "invalid_siren", "A SIREN is 9 digits"),
        ("0009", "852379890", "invalid_siret", "A SIRET is 14 digits with a valid check digit."),
        ("", "852 379 890!", "invalid_format", "A registration number has only letters, digits and . / -"),
    ],
)
def test_a_bad_registration_number_is_refused(
    tenant: Tenant, scheme: str, number: str, code: str, message: str
) -> None:
    with pytest.raises(InvalidTenantSettings, match=message) as raised:
        update(tenant, legal_registration_scheme=scheme, legal_registration_id=number)
    assert field_errors(raised.value) == [("legal_registration_id", code)]


def test_an_unknown_scheme_and_an_unknown_field_are_refused(tenant: Tenant) -> None:
    with pytest.raises(InvalidTenantSettings, match="The registration scheme must be one of: 0002, 0009") as raised:
        update(tenant, legal_registration_scheme="9999", legal_registration_id="123")
    assert field_errors(raised.value) == [("legal_registration_scheme", "invalid_choice")]
    with pytest.raises(InvalidTenantSettings, match="name: name is not a seller field.") as raised:
        update(tenant, name="Renamed")
    assert field_errors(raised.value) == [("name", "not_editable")]


def test_the_whole_identity_is_checked_so_a_scheme_cannot_lose_its_number(tenant: Tenant) -> None:
    update(tenant, legal_registration_scheme="0009", legal_registration_id="85237989000019")
    with pytest.raises(InvalidTenantSettings, match="Give the registration number of this scheme."):
        update(tenant, legal_registration_id="")
    # clearing both is fine
    update(tenant, legal_registration_scheme="", legal_registration_id=None)
    tenant.refresh_from_db()
    assert (tenant.legal_registration_scheme, tenant.legal_registration_id) == ("", "")


def test_another_tenant_is_never_touched(tenant: Tenant, other_tenant: Tenant) -> None:
    update(tenant, **SMART_FLEET)
    other_tenant.refresh_from_db()
    assert (other_tenant.vat_number, other_tenant.city) == ("", "")
    assert not AuditLogEntry.objects.filter(tenant=other_tenant).exists()
