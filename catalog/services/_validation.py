"""What the catalog services share: codes, choices and amounts checked into a ``FieldErrors``, and
the audit entry of a creation."""

import re
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from billing_platform.errors import invalid
from billing_platform.money import UNIT_PRICE_PLACES
from billing_platform.validation import FieldErrors
from tenancy.actors import Actor
from tenancy.models import Tenant
from tenancy.services import audit_record

CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def decimal_field(value: Any, field: str, errors: FieldErrors, *, places: int = UNIT_PRICE_PLACES) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool):
        errors.add(field, "invalid", 'Must be a decimal number written as a string, e.g. "12.50".')
        return None
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        errors.add(field, "invalid", 'Must be a decimal number written as a string, e.g. "12.50".')
        return None
    if not amount.is_finite():
        errors.add(field, "invalid", "Must be a finite number.")
        return None
    if amount < 0:
        errors.add(field, "negative", "Must not be negative.")
        return None
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > places:
        errors.add(field, "too_many_decimals", "At most %d decimal places." % places)
        return None
    if amount.adjusted() >= 15:
        errors.add(field, "too_large", "Too large.")
        return None
    return amount


def check_code(code: str, field: str, errors: FieldErrors) -> None:
    if not CODE_RE.match(code or ""):
        errors.add(
            field, "invalid_format", "Use 1-100 letters, digits, '.', '_' or '-', starting with a letter or digit."
        )


def check_choice(value: str, choices: Sequence[str], field: str, errors: FieldErrors) -> None:
    if value not in choices:
        errors.add(field, "invalid_choice", "Must be one of: %s." % ", ".join(choices))


def audit(
    tenant: Tenant, actor: Actor, at: datetime, action: str, object_type: str, object_id: str, after: Any
) -> None:
    audit_record(
        tenant=tenant, actor=actor, action=action, object_type=object_type, object_id=object_id, at=at, after=after
    )


def require_valid(condition: bool, field: str, code: str, message: str) -> None:
    if not condition:
        raise invalid(field, code, message)
