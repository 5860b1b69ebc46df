"""Creating and changing partners (specs/partners.md, "Model"): ``code, name, email, country,
currency, commission_plan, price_book?, status``. The row is ``customers.Partner``, which customers
and price resolution read; its commission plan is checked and normalized here (``partners.plans``)."""

import re
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.forms.models import model_to_dict

from billing_platform.errors import FieldError, InvalidInput, invalid
from billing_platform.validation import validate_country, validate_currency, validate_language
from customers.models import Partner, PartnerStatus
from customers.partners import partner_get
from partners.errors import PartnerCodeTaken
from partners.plans import commission_plan_normalize
from tenancy.actors import Actor
from tenancy.models import Tenant
from tenancy.services import audit_record

CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
CODE_MESSAGE = "code must start with a letter or digit and use only letters, digits and . _ -"
PRICE_BOOK_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
EDITABLE_FIELDS = ("name", "email", "country", "currency", "language", "commission_plan", "price_book", "status")
AUDITED_FIELDS = ("code", *EDITABLE_FIELDS)


def _snapshot(partner: Partner) -> dict[str, Any]:
    return model_to_dict(partner, fields=AUDITED_FIELDS)


def _clean(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` checked and normalized: every wrong field named in one 422."""
    errors: list[FieldError] = []
    out = dict(data)
    if "name" in out:
        out["name"] = (out["name"] or "").strip()
        if not out["name"]:
            errors.append(FieldError("name", "required", "name is required."))
        elif len(out["name"]) > 200:
            errors.append(FieldError("name", "too_long", "name has at most 200 characters."))
    if "email" in out:
        out["email"] = (out["email"] or "").strip()
    for key, check in (("country", validate_country), ("currency", validate_currency), ("language", validate_language)):
        if key in out and out[key] is not None:
            out[key] = out[key].upper() if key != "language" else out[key]
            if key == "country" and out[key] == "":
                continue
            try:
                check(out[key], field=key)
            except InvalidInput as exc:
                errors.extend(exc.errors)
    if "price_book" in out:
        out["price_book"] = (out["price_book"] or "").strip()
        if out["price_book"] and not PRICE_BOOK_RE.match(out["price_book"]):
            errors.append(
                FieldError(
                    "price_book",
                    "invalid_format",
                    "A price book's code uses lower-case letters, digits, _ and -, up to 64 characters.",
                )
            )
    if "status" in out and out["status"] not in PartnerStatus.values:
        errors.append(FieldError("status", "invalid_choice", "status is one of: %s." % ", ".join(PartnerStatus.values)))
    if "commission_plan" in out:
        try:
            out["commission_plan"] = commission_plan_normalize(out["commission_plan"])
        except InvalidInput as exc:
            errors.extend(exc.errors)
    if errors:
        raise InvalidInput(errors[0].message if len(errors) == 1 else "Some fields are not valid.", errors=errors)
    return out


def partner_create(
    *,
    tenant: Tenant,
    actor: Actor,
    at: datetime,
    code: str,
    name: str,
    currency: str | None = None,
    email: str = "",
    country: str = "",
    language: str = "en",
    commission_plan: Any = None,
    price_book: str = "",
) -> Partner:
    """A new active partner; its currency defaults to the tenant's. A leg left out of the
    commission plan earns nothing ("0")."""
    if not CODE_RE.match(code or ""):
        raise invalid("code", "invalid_format", CODE_MESSAGE)
    data = _clean(
        {
            "name": name,
            "email": email,
            "country": country,
            "currency": currency or tenant.default_currency,
            "language": language,
            "commission_plan": commission_plan or {},
            "price_book": price_book,
        }
    )
    try:
        with transaction.atomic():
            partner = Partner.objects.create(tenant=tenant, code=code, **data)
            audit_record(
                tenant=tenant,
                actor=actor,
                action="partner.created",
                object_type="partner",
                object_id=code,
                at=at,
                after=_snapshot(partner),
            )
    except IntegrityError:
        raise PartnerCodeTaken(
            "A partner with code %s already exists." % code,
            errors=[FieldError("code", "taken", "This code is already used.")],
        ) from None
    return partner


def partner_update(*, tenant: Tenant, actor: Actor, at: datetime, code: str, changes: dict[str, Any]) -> Partner:
    """A partial update (PATCH). Its currency changes only while no statement exists: statements
    and commission are in the partner's currency."""
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        field = sorted(unknown)[0]
        raise invalid(field, "not_editable", "%s cannot be changed." % field)
    data = _clean(changes)
    with transaction.atomic():
        partner = partner_get(tenant=tenant, code=code)
        partner = Partner.objects.select_for_update().get(pk=partner.pk)
        if data.get("currency") not in (None, partner.currency) and partner.statements.exists():
            raise invalid(
                "currency", "currency_locked", "The currency cannot change once the partner has commission statements."
            )
        before = _snapshot(partner)
        for key, value in data.items():
            setattr(partner, key, value)
        partner.save()
        after = _snapshot(partner)
        changed = {k: v for k, v in before.items() if after[k] != v}
        if changed:
            audit_record(
                tenant=tenant,
                actor=actor,
                action="partner.updated",
                object_type="partner",
                object_id=code,
                at=at,
                before=changed,
                after={k: after[k] for k in changed},
            )
    return partner
