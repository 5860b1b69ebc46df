import re
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.forms.models import model_to_dict
from stdnum.eu import vat

from billing_platform.errors import FieldError, InvalidInput, invalid
from billing_platform.money import round_minor
from billing_platform.validation import (
    metadata_merge,
    postal_code_error,
    refused_character,
    validate_country,
    validate_currency,
    validate_language,
    validate_metadata,
    validate_timezone,
)
from customers.errors import CustomerCurrencyLocked, CustomerExternalIdTaken, CustomerNotFound, InvalidTaxId
from customers.models import Collection, Customer, Partner
from tenancy.actors import Actor
from tenancy.models import Tenant
from tenancy.services import audit_record

EXTERNAL_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,199}$")
EXTERNAL_ID_MESSAGE = "external_id must start with a letter or digit and use only letters, digits and . _ : @ -"
EDITABLE_FIELDS = (
    "name",
    "email",
    "currency",
    "timezone",
    "language",
    "country",
    "tax_id",
    "address_line1",
    "address_line2",
    "postal_code",
    "city",
    "billing_day",
    "partner",
    "metadata",
    "collection",
    "payment_terms_days",
)
AUDITED_FIELDS = ("external_id", *EDITABLE_FIELDS)
# The postal address's lines, by the path the API names them with (its country is ``country``).
ADDRESS_FIELDS = {
    "address_line1": "address.line1",
    "address_line2": "address.line2",
    "postal_code": "address.postal_code",
    "city": "address.city",
}
_SPACES = re.compile(r"\s+")


def _snapshot(customer: Customer) -> dict[str, Any]:
    snapshot = model_to_dict(customer, fields=[f for f in AUDITED_FIELDS if f != "partner"])
    # The partner by its code, as the API names it.
    snapshot["partner"] = customer.partner.code if customer.partner is not None else None
    return snapshot


def _clean_address(data: dict[str, Any]) -> None:
    """Address lines trimmed (None is blank); a postal code upper-cased with single spaces, as printed."""
    for field in ADDRESS_FIELDS:
        if field in data:
            value = (data[field] or "").strip()
            data[field] = _SPACES.sub(" ", value).upper() if field == "postal_code" else value


def _address_errors(data: dict[str, Any]) -> list[FieldError]:
    """The postal address of a whole customer (``data`` holds its four lines and its country): no
    line too long or holding a control character, a street line and a city once any line is given
    (an address without them cannot be printed on an invoice), and a postal code shaped as the
    country's (``billing_platform.validation.postal_code_error``)."""
    errors: list[FieldError] = []
    for field, path in ADDRESS_FIELDS.items():
        value = data[field]
        limit = getattr(Customer._meta.get_field(field), "max_length", None)
        if limit is not None and len(value) > limit:
            errors.append(FieldError(path, "too_long", "%s has at most %d characters." % (path, limit)))
            continue
        message = refused_character(value)
        if message is not None:
            errors.append(FieldError(path, "control_character", message))
    if any(data[field] for field in ADDRESS_FIELDS):
        for field in ("address_line1", "city"):
            if not data[field]:
                path = ADDRESS_FIELDS[field]
                errors.append(FieldError(path, "required", "%s is required once an address is given." % path))
    postal_code = data["postal_code"]
    if postal_code and not any(e.field == ADDRESS_FIELDS["postal_code"] for e in errors):
        message = postal_code_error(postal_code, data["country"])
        if message is not None:
            errors.append(FieldError(ADDRESS_FIELDS["postal_code"], "invalid_postal_code", message))
    return errors


def tax_id_errors(*, tax_id: str, country: str) -> list[FieldError]:
    """An EU customer's VAT number must pass its checksum: a typo here would put an invalid number
    on every invoice. ``tax_id`` may omit the country prefix ("40303265045" for FR)."""
    tax_id = tax_id.strip().replace(" ", "")
    if not tax_id or country.lower() not in vat.MEMBER_STATES:
        return []
    number = tax_id if tax_id[:2].isalpha() else country + tax_id
    if vat.is_valid(number):
        return []
    return [FieldError("tax_id", InvalidTaxId.code, f"{tax_id} is not a valid EU VAT number.")]


def _validate(data: dict[str, Any], *, address: dict[str, Any] | None = None) -> None:
    """Collects every field error so the caller sees them all at once; ``address`` is the whole
    postal address to check (its lines and country) when it is given or changes."""
    errors: list[FieldError] = []
    checks = (
        ("currency", validate_currency),
        ("timezone", validate_timezone),
        ("language", validate_language),
        ("country", validate_country),
    )
    for field, check in checks:
        if field in data:
            try:
                check(data[field], field=field)
            except InvalidInput as exc:
                errors.extend(exc.errors)
    if "collection" in data and data["collection"] not in Collection.values:
        errors.append(
            FieldError("collection", "invalid_choice", "collection is one of: %s." % ", ".join(Collection.values))
        )
    terms = data.get("payment_terms_days")
    if terms is not None and not 0 <= terms <= 365:
        errors.append(FieldError("payment_terms_days", "out_of_range", "payment_terms_days is between 0 and 365."))
    billing_day = data.get("billing_day")
    if billing_day is not None and not 1 <= billing_day <= 31:
        errors.append(FieldError("billing_day", "out_of_range", "billing_day must be between 1 and 31."))
    errors.extend(tax_id_errors(tax_id=data.get("tax_id") or "", country=data.get("country") or ""))
    if "metadata" in data:
        try:
            validate_metadata(data["metadata"])
        except InvalidInput as exc:
            errors.extend(exc.errors)
    if address is not None:
        errors.extend(_address_errors(address))
    if errors:
        raise InvalidInput("; ".join(f"{e.field}: {e.message}" for e in errors), errors=errors)


def customer_check(data: dict[str, Any]) -> list[FieldError]:
    """Every field error that ``customer_create`` would raise for ``data`` (the fields it holds, its
    postal address checked when ``data`` holds the address's four lines and its country), without
    writing: a form reports these with its own errors in one pass. The service still checks again."""
    data = dict(data)
    errors: list[FieldError] = []
    if "external_id" in data and not EXTERNAL_ID_RE.match(str(data.pop("external_id"))):
        errors.append(FieldError("external_id", "invalid_format", EXTERNAL_ID_MESSAGE))
    _clean_address(data)
    has_address = all(field in data for field in ADDRESS_FIELDS) and "country" in data
    try:
        _validate(data, address=data if has_address else None)
    except InvalidInput as exc:
        errors.extend(exc.errors)
    return errors


def customer_create(
    *,
    tenant: Tenant,
    actor: Actor,
    at: datetime,
    external_id: str,
    name: str,
    email: str,
    country: str,
    currency: str | None = None,
    timezone: str | None = None,
    language: str = "en",
    tax_id: str = "",
    address_line1: str = "",
    address_line2: str = "",
    postal_code: str = "",
    city: str = "",
    billing_day: int | None = None,
    partner: Partner | None = None,
    metadata: dict[str, str] | None = None,
    collection: str | None = None,
    payment_terms_days: int | None = None,
) -> Customer:
    """Create a customer; currency, time zone and collection default to the tenant's. Its postal address (the
    four lines, in ``country``) is optional, but a street line and a city come together."""
    if not EXTERNAL_ID_RE.match(external_id):
        raise invalid("external_id", "invalid_format", EXTERNAL_ID_MESSAGE)
    _partner_check(tenant, partner)
    data: dict[str, Any] = {
        "name": name.strip(),
        "email": email,
        "currency": (currency or tenant.default_currency).upper(),
        "timezone": timezone or tenant.timezone,
        "language": language,
        "country": country.upper(),
        "tax_id": tax_id.strip().replace(" ", ""),
        "address_line1": address_line1,
        "address_line2": address_line2,
        "postal_code": postal_code,
        "city": city,
        "billing_day": billing_day,
        "partner": partner,
        "metadata": metadata or {},
        "collection": collection or tenant.default_collection,
        "payment_terms_days": payment_terms_days,
    }
    _clean_address(data)
    _validate(data, address=data)
    try:
        with transaction.atomic():
            customer = Customer.objects.create(tenant=tenant, external_id=external_id, **data)
            audit_record(
                tenant=tenant,
                actor=actor,
                action="customer.created",
                object_type="customer",
                object_id=external_id,
                at=at,
                after=_snapshot(customer),
            )
    except IntegrityError:
        raise CustomerExternalIdTaken(
            f"A customer with external_id {external_id} already exists.",
            errors=[FieldError("external_id", "taken", "This external_id is already used.")],
        ) from None
    return customer


def _currency_change_check(customer: Customer, currency: str) -> None:
    """Refuse a new currency while the customer has a credit balance or open invoices: they are in
    the current currency, and a payment in the new one would be mixed with them."""
    # Invoicing sits above customers: its invoices are read through the reverse relation only.
    open_invoices = customer.invoices.filter(kind="invoice", status="finalized", amount_due__gt=0).exists()
    if customer.balance == 0 and not open_invoices:
        return
    owed = []
    if customer.balance != 0:
        owed.append("a credit balance of %s %s" % (round_minor(customer.balance, customer.currency), customer.currency))
    if open_invoices:
        owed.append("open invoices")
    message = "The currency cannot change from %s to %s while the customer has %s: settle them first." % (
        customer.currency,
        currency,
        " and ".join(owed),
    )
    raise CustomerCurrencyLocked(message, errors=[FieldError("currency", CustomerCurrencyLocked.code, message)])


def _partner_check(tenant: Tenant, partner: Partner | None) -> None:
    # The callers look the partner up in the tenant; this keeps another tenant's out whatever the caller.
    if partner is not None and partner.tenant_id != tenant.pk:
        raise invalid("partner", "not_found", "No partner with code %s." % partner.code)


def customer_update(
    *, tenant: Tenant, actor: Actor, at: datetime, external_id: str, changes: dict[str, Any]
) -> Customer:
    """Apply a partial update (PATCH). Unknown or non-editable fields are refused by the caller.
    ``partner`` is a ``Partner`` of the tenant, or None for a direct customer."""
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        field = sorted(unknown)[0]
        raise invalid(field, "not_editable", f"{field} cannot be changed.")
    _partner_check(tenant, changes.get("partner"))
    data = dict(changes)
    for key in ("currency", "country"):
        if key in data and data[key] is not None:
            data[key] = data[key].upper()
    if "tax_id" in data:
        data["tax_id"] = (data["tax_id"] or "").strip().replace(" ", "")
    _clean_address(data)
    with transaction.atomic():
        customer = Customer.objects.select_for_update().filter(tenant=tenant, external_id=external_id).first()
        if customer is None:
            raise CustomerNotFound(f"No customer with external_id {external_id}.")
        if "metadata" in data:
            data["metadata"] = metadata_merge(customer.metadata, data["metadata"])
        merged = {**_snapshot(customer), **data}
        # The address is checked whole, as it will be stored: a new postal code against the stored
        # country, a new country against the stored postal code.
        address_changes = "country" in data or any(field in data for field in ADDRESS_FIELDS)
        _validate(
            {**data, "country": merged["country"], "tax_id": merged["tax_id"]},
            address=merged if address_changes else None,
        )
        if data.get("currency") not in (None, customer.currency):
            _currency_change_check(customer, data["currency"])
        before = _snapshot(customer)
        for key, value in data.items():
            setattr(customer, key, value)
        customer.save()
        after = _snapshot(customer)
        changed_before = {k: v for k, v in before.items() if after[k] != v}
        if changed_before:
            audit_record(
                tenant=tenant,
                actor=actor,
                action="customer.updated",
                object_type="customer",
                object_id=external_id,
                at=at,
                before=changed_before,
                after={k: after[k] for k in changed_before},
            )
    return customer
