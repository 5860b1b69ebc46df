"""The tenant's invoicing settings: read them, change them (audited).

A module of its own: a small settings object with its own page, which can change without touching
the bill-run code.
"""

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.db import transaction
from django.forms.models import model_to_dict

from billing_platform.errors import FieldError
from invoicing.models import InvoicingSettings
from tenancy.actors import Actor
from tenancy.errors import InvalidTenantSettings
from tenancy.models import Tenant
from tenancy.services import audited_update

INVOICING_SETTINGS_FIELDS = ("auto_finalize", "invoice_prefix", "credit_note_prefix", "facturx_outside_eu")
# The settings that are true or false.
BOOLEAN_FIELDS = ("auto_finalize", "facturx_outside_eu")
# A number is "<prefix>-<year>-<sequence>" (INV-2026-000001), at most 32 characters: the prefix has
# up to 8, starts with a letter or digit and adds no spaces that a customer would mistype.
PREFIX_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,7}$")


def invoicing_settings_get(*, tenant: Tenant) -> InvoicingSettings:
    """The tenant's settings, or the defaults (unsaved) while it has never changed them."""
    return InvoicingSettings.objects.filter(tenant=tenant).first() or InvoicingSettings(tenant=tenant)


def invoicing_settings_update(
    *, tenant: Tenant, actor: Actor, at: datetime, data: Mapping[str, Any]
) -> InvoicingSettings:
    """Change some of ``auto_finalize``, ``invoice_prefix``, ``credit_note_prefix`` and
    ``facturx_outside_eu`` (a seller outside the EU embeds Factur-X too).

    A new prefix applies to the documents finalized from now on; numbers already given stay, and
    the gapless sequence of the year goes on (INV-2026-000041, then FAC-2026-000042).
    """
    errors: list[FieldError] = []
    cleaned: dict[str, Any] = {}
    for field, value in data.items():
        if field not in INVOICING_SETTINGS_FIELDS:
            errors.append(FieldError(field, "not_editable", "%s is not an invoicing setting." % field))
        elif field in BOOLEAN_FIELDS:
            if isinstance(value, bool):
                cleaned[field] = value
            else:
                errors.append(FieldError(field, "invalid_type", "%s must be true or false." % field))
        elif isinstance(value, str):
            cleaned[field] = value.strip()
        else:
            errors.append(FieldError(field, "invalid_type", "%s must be a string." % field))
    with transaction.atomic():
        settings, _ = InvoicingSettings.objects.select_for_update().get_or_create(tenant=tenant)
        before = model_to_dict(settings, fields=INVOICING_SETTINGS_FIELDS)
        merged = {**before, **cleaned}
        for field in ("invoice_prefix", "credit_note_prefix"):
            if field in cleaned and not PREFIX_RE.match(cleaned[field]):
                errors.append(
                    FieldError(
                        field,
                        "invalid_format",
                        "A prefix has 1 to 8 letters, digits, - or _, and starts with a letter or digit.",
                    )
                )
        # Invoices and credit notes are numbered in two sequences: one prefix for both would give
        # two documents the same number.
        if merged["invoice_prefix"].upper() == merged["credit_note_prefix"].upper() and not errors:
            errors.append(
                FieldError(
                    "credit_note_prefix",
                    "same_prefix",
                    "Credit notes need a prefix other than the invoices' one (%s)." % merged["invoice_prefix"],
                )
            )
        if errors:
            raise InvalidTenantSettings("; ".join("%s: %s" % (e.field, e.message) for e in errors), errors=errors)
        settings.tenant = tenant  # known: the audit entry reads no row for it
        audited_update(
            obj=settings,
            changes=cleaned,
            actor=actor,
            at=at,
            action="invoicing_settings.updated",
            object_type="tenant",
            object_id=tenant.slug,
        )
    return settings
