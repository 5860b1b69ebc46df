"""invoicing_settings_update: auto-finalize and the number prefixes, validated and audited."""

from datetime import UTC, datetime

import pytest

from invoicing.models import InvoicingSettings
from invoicing.services import invoicing_settings_get, invoicing_settings_update
from tenancy.actors import Actor
from tenancy.errors import InvalidTenantSettings
from tenancy.models import AuditLogEntry, Tenant

pytestmark = pytest.mark.django_db

AT = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)
ACTOR = Actor.system("tests")


def test_defaults_are_read_without_writing_anything(tenant: Tenant) -> None:
    settings = invoicing_settings_get(tenant=tenant)
    assert (settings.auto_finalize, settings.invoice_prefix, settings.credit_note_prefix) == (False, "INV", "CN")
    assert not InvoicingSettings.objects.exists()


def test_settings_are_created_on_first_change_and_each_change_is_audited(tenant: Tenant, other_tenant: Tenant) -> None:
    # when
    invoicing_settings_update(
        tenant=tenant,
        actor=ACTOR,
        at=AT,
        data={"auto_finalize": True, "invoice_prefix": " FAC ", "credit_note_prefix": "CN"},
    )
    # then: trimmed; the unchanged credit-note prefix is not in the audit entry
    settings = InvoicingSettings.objects.get(tenant=tenant)
    assert (settings.auto_finalize, settings.invoice_prefix, settings.credit_note_prefix) == (True, "FAC", "CN")
    entry = AuditLogEntry.objects.get(tenant=tenant, action="invoicing_settings.updated")
    assert (entry.object_type, entry.object_id) == ("tenant", "acme")
    assert (entry.before, entry.after) == (
        {"auto_finalize": False, "invoice_prefix": "INV"},
        {"auto_finalize": True, "invoice_prefix": "FAC"},
    )
    # saving the same values again records nothing; the other tenant keeps its defaults
    invoicing_settings_update(tenant=tenant, actor=ACTOR, at=AT, data={"auto_finalize": True})
    assert AuditLogEntry.objects.filter(action="invoicing_settings.updated").count() == 1
    assert invoicing_settings_get(tenant=other_tenant).invoice_prefix == "INV"


@pytest.mark.parametrize("prefix", ["", "TOO-LONG-1", "-INV", "F A", "FAC/"])
def test_a_bad_prefix_is_refused(tenant: Tenant, prefix: str) -> None:
    with pytest.raises(InvalidTenantSettings, match="A prefix has 1 to 8 letters, digits, - or _") as raised:
        invoicing_settings_update(tenant=tenant, actor=ACTOR, at=AT, data={"invoice_prefix": prefix})
    assert [(e.field, e.code) for e in raised.value.errors] == [("invoice_prefix", "invalid_format")]
    assert not InvoicingSettings.objects.exists()  # nothing half-written


def test_credit_notes_and_invoices_cannot_share_a_prefix(tenant: Tenant) -> None:
    # invoices and credit notes have their own sequences: one prefix would give two documents one number
    with pytest.raises(
        InvalidTenantSettings, match="Credit notes need a prefix other than the invoices' one"
    ) as raised:
        invoicing_settings_update(tenant=tenant, actor=ACTOR, at=AT, data={"credit_note_prefix": "inv"})
    assert [(e.field, e.code) for e in raised.value.errors] == [("credit_note_prefix", "same_prefix")]


def test_wrong_types_and_unknown_fields_are_refused(tenant: Tenant) -> None:
    with pytest.raises(InvalidTenantSettings) as raised:
        invoicing_settings_update(
            tenant=tenant, actor=ACTOR, at=AT, data={"auto_finalize": "yes", "invoice_prefix": 7, "currency": "EUR"}
        )
    assert [(e.field, e.code) for e in raised.value.errors] == [
        ("auto_finalize", "invalid_type"),
        ("invoice_prefix", "invalid_type"),
        ("currency", "not_editable"),
    ]
