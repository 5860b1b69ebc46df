"""The tenant's brand on its customer portal: an accent colour and a logo (specs/portal.md: "It is the
tenant's portal, not Tripod's"). Writers change them from the back-office's settings; every change
is on the audit log.

The logo is kept in the tenant row and served by the portal itself (``/portal/brand/<slug>/logo``),
never fetched from elsewhere: PNG, JPEG or SVG, at most 200 KB, and the file's first bytes must say
the same as its declared type (a renamed file is refused)."""

import hashlib
import re
from datetime import datetime

from django.db import transaction

from billing_platform.errors import FieldError, InvalidInput
from tenancy.actors import Actor
from tenancy.models import Tenant
from tenancy.services import audit_record

HEX_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
LOGO_MAX_BYTES = 200 * 1024
LOGO_TYPES = ("image/png", "image/jpeg", "image/svg+xml")


def logo_type(content: bytes) -> str:
    """The logo's type from its first bytes; '' when it is none of PNG, JPEG, SVG."""
    if content.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if content.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    head = content[:1024].lstrip(b"\xef\xbb\xbf").lstrip().lower()
    if head.startswith((b"<svg", b"<?xml")) and b"<svg" in content[:4096].lower():
        return "image/svg+xml"
    return ""


def _fingerprint(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()[:12] if content else ""


def tenant_branding_update(
    *,
    tenant: Tenant,
    actor: Actor,
    at: datetime,
    brand_colour: str | None = None,
    logo: bytes | None = None,
    remove_logo: bool = False,
) -> Tenant:
    """Set the accent colour (``#rrggbb``; blank: the portal's default) and/or replace or remove the
    logo. None leaves a value as it is. Errors of both fields come together."""
    errors: list[FieldError] = []
    changes: dict[str, object] = {}
    if brand_colour is not None:
        colour = brand_colour.strip().lower()
        if colour and not HEX_COLOUR.match(colour):
            errors.append(FieldError("brand_colour", "invalid_format", "A colour is # and 6 hex digits, e.g. #0b7285."))
        elif colour != tenant.brand_colour:
            changes["brand_colour"] = colour
    if logo is not None:
        kind = logo_type(logo)
        if len(logo) > LOGO_MAX_BYTES:
            errors.append(
                FieldError("logo", "too_large", "A logo is at most 200 KB; this one is %d KB." % -(-len(logo) // 1024))
            )
        elif not kind:
            errors.append(FieldError("logo", "invalid_type", "A logo is a PNG, JPEG or SVG image."))
        else:
            changes["logo"], changes["logo_content_type"] = logo, kind
    elif remove_logo and tenant.logo:
        changes["logo"], changes["logo_content_type"] = b"", ""
    if errors:
        raise InvalidInput("; ".join(e.message for e in errors), errors=errors)
    if not changes:
        return tenant
    with transaction.atomic():
        locked = Tenant.objects.select_for_update().get(pk=tenant.pk)
        before = {"brand_colour": locked.brand_colour, "logo": _fingerprint(bytes(locked.logo or b""))}
        for field, value in changes.items():
            setattr(locked, field, value)
        locked.save(update_fields=list(changes))
        after = {"brand_colour": locked.brand_colour, "logo": _fingerprint(bytes(locked.logo or b""))}
        audit_record(
            tenant=locked,
            actor=actor,
            action="tenant.branding_updated",
            object_type="tenant",
            object_id=locked.slug,
            at=at,
            before={k: v for k, v in before.items() if v != after[k]},
            after={k: v for k, v in after.items() if v != before[k]},
        )
    for field, value in changes.items():
        setattr(tenant, field, value)
    return tenant
