import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Model
from django.utils.crypto import get_random_string
from stdnum import bic, iban
from stdnum.eu import at_02, vat
from stdnum.exceptions import InvalidChecksum, InvalidLength
from stdnum.exceptions import ValidationError as NumberError
from stdnum.fr import siren, siret

from billing_platform.errors import FieldError, InvalidInput, invalid
from billing_platform.money import is_known_currency
from billing_platform.rls import tenant_context
from billing_platform.validation import refused_character, validate_country, validate_timezone
from tenancy.actors import Actor
from tenancy.errors import (
    ApiKeyAlreadyRevoked,
    ApiKeyNotFound,
    DeviceCloudSecretNotFound,
    InvalidTenantSettings,
    LastDeviceCloudSecret,
    TenantSlugTaken,
    TooManyDeviceCloudSecrets,
)
from tenancy.keys import generate_api_key, generate_webhook_secret, webhook_secret_fingerprint
from tenancy.models import ApiKey, ApiKeyScope, AuditLogEntry, Membership, RegistrationScheme, Role, Tenant

logger = logging.getLogger(__name__)


def audit_entry(
    *,
    tenant: Tenant,
    actor: Actor,
    action: str,
    object_type: str,
    object_id: str,
    at: datetime,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditLogEntry:
    """An audit-log entry, not saved yet: for writes that record many at once (``bulk_create``)."""
    return AuditLogEntry(
        tenant=tenant,
        at=at,
        actor_type=actor.type,
        actor_id=actor.id,
        actor_label=actor.label,
        action=action,
        object_type=object_type,
        object_id=object_id,
        before=before,
        after=after,
    )


def audit_record(
    *,
    tenant: Tenant,
    actor: Actor,
    action: str,
    object_type: str,
    object_id: str,
    at: datetime,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditLogEntry:
    """Append one entry to the tenant's audit log. Call it inside the write's transaction."""
    entry = audit_entry(
        tenant=tenant,
        actor=actor,
        action=action,
        object_type=object_type,
        object_id=object_id,
        at=at,
        before=before,
        after=after,
    )
    entry.save(force_insert=True)
    return entry


def _json_value(value: Any) -> Any:
    """A value as the audit log's JSON holds it: an amount as its string ("40.00"), a day in ISO."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def audited_update(
    *,
    obj: Model,
    changes: Mapping[str, Any],
    actor: Actor,
    at: datetime,
    action: str,
    object_type: str,
    object_id: str,
) -> dict[str, Any]:
    """Change a settings row and record it: the one way to do so. ``obj`` is a row the caller holds
    locked (``select_for_update``) and ``changes`` are values it has validated, by field.

    Only the fields whose value differs are set and saved (``update_fields``), and one audit entry
    records them before and after; when none differs, nothing is written. Returns the fields that
    changed, with their new values. The entry's tenant is ``obj`` itself or ``obj.tenant``.
    """
    before = {field: getattr(obj, field) for field in changes}
    changed = {field: value for field, value in changes.items() if before[field] != value}
    if changed:
        for field, value in changed.items():
            setattr(obj, field, value)
        obj.save(update_fields=list(changed))
        audit_record(
            tenant=obj if isinstance(obj, Tenant) else obj.tenant,  # type: ignore[attr-defined]
            actor=actor,
            action=action,
            object_type=object_type,
            object_id=object_id,
            at=at,
            before={field: _json_value(before[field]) for field in changed},
            after={field: _json_value(value) for field, value in changed.items()},
        )
    return changed


@dataclass(frozen=True)
class TenantCreated:
    tenant: Tenant
    api_key: str
    device_cloud_secret: str
    admin_password: str | None


def tenant_create(
    *, name: str, slug: str, currency: str, timezone: str, admin_email: str, at: datetime
) -> TenantCreated:
    """Create a tenant, its owner login, a full-scope API key and a device-cloud webhook secret.

    The admin user is created with a random password (returned once) unless that email already has
    a login, in which case the existing user simply becomes owner of the new tenant too.
    """
    if not is_known_currency(currency):
        raise invalid("currency", "unknown_currency", f"Unknown ISO 4217 currency: {currency}.")
    validate_timezone(timezone, field="timezone")
    secret = generate_webhook_secret()
    user_model = get_user_model()
    password: str | None = None
    with transaction.atomic():
        try:
            with transaction.atomic():
                tenant = Tenant.objects.create(
                    name=name,
                    slug=slug,
                    default_currency=currency,
                    timezone=timezone,
                    device_cloud_secrets=[secret],
                )
        except IntegrityError:
            raise TenantSlugTaken(f"A tenant with slug {slug} already exists.") from None
        user = user_model.objects.filter(email__iexact=admin_email).first()
        if user is None:
            password = get_random_string(16)
            user = user_model.objects.create_user(username=admin_email, email=admin_email, password=password)
        Membership.objects.create(tenant=tenant, user=user, role=Role.OWNER)
        actor = Actor.system("create_tenant")
        with tenant_context(tenant):  # the new tenant's rows, behind row-level security
            audit_record(
                tenant=tenant,
                actor=actor,
                action="tenant.created",
                object_type="tenant",
                object_id=tenant.slug,
                at=at,
                after={"name": name, "currency": currency, "timezone": timezone, "owner": admin_email},
            )
            _, key = api_key_create(
                tenant=tenant, name="Initial full-access key", scope=ApiKeyScope.FULL, actor=actor, at=at
            )
    logger.info("tenant created", extra={"tenant_id": str(tenant.pk), "tenant_slug": slug})
    return TenantCreated(tenant=tenant, api_key=key, device_cloud_secret=secret, admin_password=password)


def api_key_create(
    *,
    tenant: Tenant,
    name: str,
    scope: str,
    actor: Actor,
    at: datetime,
    created_by: Any = None,
    partner: Any = None,
) -> tuple[ApiKey, str]:
    """Create a key; returns the row and the key itself, which is never stored and never shown again.
    A key of scope ``partner`` belongs to one of the tenant's partners (``customers.Partner``), and
    only such a key does."""
    if scope not in ApiKeyScope.values:
        raise invalid("scope", "invalid_choice", "Scope must be one of: {}.".format(", ".join(ApiKeyScope.values)))
    if scope == ApiKeyScope.PARTNER and (partner is None or partner.tenant_id != tenant.pk):
        raise invalid("partner", "required", "A partner key is created for one of the partners, from its page.")
    if scope != ApiKeyScope.PARTNER and partner is not None:
        raise invalid("scope", "invalid_choice", "A partner's key has the scope partner.")
    name = name.strip()
    if not name:
        raise invalid("name", "required", "Give the key a name, e.g. the system that will use it.")
    key, prefix, key_hash = generate_api_key()
    with transaction.atomic():
        api_key = ApiKey.objects.create(
            tenant=tenant,
            name=name[:100],
            scope=scope,
            prefix=prefix,
            key_hash=key_hash,
            created_by=created_by,
            partner=partner,
        )
        after = {"name": api_key.name, "scope": scope, "prefix": prefix}
        if partner is not None:
            after["partner"] = partner.code
        audit_record(
            tenant=tenant,
            actor=actor,
            action="api_key.created",
            object_type="api_key",
            object_id=str(api_key.pk),
            at=at,
            after=after,
        )
    return api_key, key


def api_key_revoke(*, tenant: Tenant, key_id: str, actor: Actor, at: datetime) -> ApiKey:
    with transaction.atomic():
        api_key = ApiKey.objects.select_for_update().filter(tenant=tenant, pk=key_id).first()
        if api_key is None:
            raise ApiKeyNotFound("No such API key.")
        if api_key.revoked_at is not None:
            raise ApiKeyAlreadyRevoked("This API key was already revoked.")
        api_key.revoked_at = at
        api_key.save(update_fields=["revoked_at"])
        audit_record(
            tenant=tenant,
            actor=actor,
            action="api_key.revoked",
            object_type="api_key",
            object_id=str(api_key.pk),
            at=at,
            before={"revoked_at": None},
            after={"revoked_at": at.isoformat()},
        )
    return api_key


# --- the seller identity ---------------------------------------------------------------------------

SELLER_FIELDS = (
    "legal_name",
    "vat_number",
    "legal_registration_id",
    "legal_registration_scheme",
    "address_line1",
    "address_line2",
    "postal_code",
    "city",
    "country",
    "billing_email",
)
ADDRESS_FIELDS = ("address_line1", "address_line2", "postal_code", "city")
# EN 16931 allows up to 13 characters after the prefix (the longest, NL and GB, have 12 or 13).
VAT_NUMBER_RE = re.compile(r"^[A-Z]{2}[A-Z0-9]{2,13}$")
# VAT prefixes that are not ISO 3166 codes: Greece (EL), Northern Ireland (XI) and the non-Union
# OSS scheme (EU).
VAT_ONLY_PREFIXES = frozenset({"EL", "XI", "EU"})
REGISTRATION_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9./-]*$")
# People type VAT and register numbers the way they are printed: "FR 40 303 265 045", "732.829.320".
_SEPARATORS = re.compile(r"[\s.\-]")


def _seller_snapshot(tenant: Tenant) -> dict[str, str]:
    return {field: getattr(tenant, field) for field in SELLER_FIELDS}


def _clean_seller(data: Mapping[str, Any]) -> tuple[dict[str, str], list[FieldError]]:
    """Strings trimmed (None is blank), numbers without their separators, codes upper-cased."""
    cleaned: dict[str, str] = {}
    errors: list[FieldError] = []
    for field, value in data.items():
        if field not in SELLER_FIELDS:
            errors.append(FieldError(field, "not_editable", "%s is not a seller field." % field))
            continue
        if value is None:
            value = ""
        if not isinstance(value, str):
            errors.append(FieldError(field, "invalid_type", "%s must be a string." % field))
            continue
        value = value.replace("\x00", "").strip()  # PostgreSQL refuses NUL characters
        if field == "vat_number":
            value = _SEPARATORS.sub("", value).upper()
        elif field == "legal_registration_id":
            value = re.sub(r"\s", "", value)
        elif field == "country":
            value = value.upper()
        cleaned[field] = value
    return cleaned, errors


def _validate_seller(seller: Mapping[str, str]) -> list[FieldError]:
    """Every problem of a whole seller identity at once, so that a form can show them all."""
    errors: list[FieldError] = []
    for field in SELLER_FIELDS:
        if field == "vat_number":
            continue  # its format says how long it may be
        limit = getattr(Tenant._meta.get_field(field), "max_length", None)
        if limit is not None and len(seller[field]) > limit:
            errors.append(FieldError(field, "too_long", "%s has at most %d characters." % (field, limit)))
    if seller["country"]:
        try:
            validate_country(seller["country"], field="country")
        except InvalidInput as exc:
            errors.extend(exc.errors)
    errors.extend(_vat_number_errors(seller["vat_number"]))
    errors.extend(_registration_errors(seller["legal_registration_id"], seller["legal_registration_scheme"]))
    # A street line without a city (or the reverse) cannot be printed as an address.
    if any(seller[field] for field in ADDRESS_FIELDS):
        for field, name in (("address_line1", "Address line 1"), ("city", "City")):
            if not seller[field]:
                errors.append(FieldError(field, "required", "%s is required once an address is given." % name))
    if seller["billing_email"]:
        try:
            validate_email(seller["billing_email"])
        except ValidationError:
            errors.append(
                FieldError("billing_email", "invalid_email", "%s is not an e-mail address." % seller["billing_email"])
            )
    return errors


def _vat_number_errors(number: str) -> list[FieldError]:
    if not number:
        return []
    if not VAT_NUMBER_RE.match(number):
        return [
            FieldError(
                "vat_number",
                "invalid_format",
                "A VAT number is a 2-letter country prefix and 2 to 13 letters or digits, e.g. FR40303265045.",
            )
        ]
    prefix = number[:2]
    try:
        if prefix not in VAT_ONLY_PREFIXES:
            validate_country(prefix, field="vat_number")
    except InvalidInput:
        return [FieldError("vat_number", "unknown_prefix", "%s is not a country's VAT prefix." % prefix)]
    # EU numbers carry check digits: a typo here would be printed on every invoice of the tenant.
    if (prefix.lower() in vat.MEMBER_STATES or prefix == "EL") and not vat.is_valid(number):
        return [FieldError("vat_number", "invalid_checksum", "%s is not a valid EU VAT number." % number)]
    return []


def _registration_errors(number: str, scheme: str) -> list[FieldError]:
    if scheme and scheme not in RegistrationScheme.values:
        return [
            FieldError(
                "legal_registration_scheme",
                "invalid_choice",
                "The registration scheme must be one of: %s." % ", ".join(RegistrationScheme.values),
            )
        ]
    if not number:
        if scheme:
            return [FieldError("legal_registration_id", "required", "Give the registration number of this scheme.")]
        return []
    if not REGISTRATION_ID_RE.match(number):
        return [
            FieldError(
                "legal_registration_id",
                "invalid_format",
                "A registration number has only letters, digits and . / -",
            )
        ]
    if scheme == RegistrationScheme.SIREN and not siren.is_valid(number):
        return [FieldError("legal_registration_id", "invalid_siren", "A SIREN is 9 digits with a valid check digit.")]
    if scheme == RegistrationScheme.SIRET and not siret.is_valid(number):
        return [FieldError("legal_registration_id", "invalid_siret", "A SIRET is 14 digits with a valid check digit.")]
    return []


def tenant_seller_update(*, tenant: Tenant, actor: Actor, at: datetime, data: Mapping[str, Any]) -> Tenant:
    """Change the tenant's seller identity (EN 16931 BG-4), the party every invoice is issued by.

    ``data`` holds the fields to change (see ``SELLER_FIELDS``); a blank value clears one. The whole
    identity is checked after the change, so that a registration scheme cannot lose its number.
    Invoices already finalized keep the PDF rendered at the time.
    """
    cleaned, errors = _clean_seller(data)
    return _tenant_fields_update(
        tenant=tenant,
        actor=actor,
        at=at,
        cleaned=cleaned,
        errors=errors,
        snapshot=_seller_snapshot,
        validate=_validate_seller,
        action="tenant.seller_updated",
    )


# --- payment instructions and legal mentions ------------------------------------------------------

PAYMENT_FIELDS = (
    "iban",
    "bic",
    "sepa_creditor_id",
    "payment_terms_days",
    "late_payment_penalty",
    "recovery_indemnity",
    "early_payment_discount",
)
MENTION_FIELDS = ("late_payment_penalty", "early_payment_discount")
PAYMENT_TERMS_DAYS_MAX = 365
# The recovery indemnity's column: numeric(9, 2).
RECOVERY_INDEMNITY_MAX = Decimal("9999999.99")
# A SEPA creditor identifier: country, 2 check digits, a 3-character business code (ZZZ when none),
# then the national identifier (at most 28 characters).
SEPA_CREDITOR_ID_RE = re.compile(r"^[A-Z]{2}[0-9]{2}[A-Z0-9]{3}[A-Z0-9]{1,28}$")
# People type account numbers the way they are printed: "FR76 3000 6000 0112 3456 7890 189".
_ACCOUNT_SEPARATORS = re.compile(r"[\s.\-]")


def _payment_errors(field: str, value: str) -> list[FieldError]:
    """The format and check digits of an IBAN (ISO 13616: mod 97), a BIC (ISO 9362) or a SEPA creditor
    identifier (its country, and ISO 7064 mod 97-10 check digits), with python-stdnum."""
    if not value:
        return []
    if field == "iban":
        try:
            iban.validate(value)
        except InvalidChecksum:
            return [FieldError(field, "invalid_checksum", "%s is not a valid IBAN: check its digits." % value)]
        except InvalidLength:
            return [FieldError(field, "invalid_length", "%s has not the length of an IBAN of its country." % value)]
        except NumberError:
            return [
                FieldError(field, "invalid_format", "An IBAN is a country code, 2 check digits and the account number.")
            ]
    elif field == "bic":
        try:
            bic.validate(value)
        except NumberError:
            return [
                FieldError(
                    field,
                    "invalid_format",
                    "A BIC has 8 or 11 characters: 4 letters for the bank, its country, 2 for the place and an "
                    "optional branch, e.g. BNPAFRPPXXX.",
                )
            ]
    elif field == "sepa_creditor_id":
        message = "A SEPA creditor identifier is a country code, 2 check digits, 3 characters and a national number."
        if not SEPA_CREDITOR_ID_RE.match(value):
            return [FieldError(field, "invalid_format", message)]
        try:
            validate_country(value[:2], field=field)
        except InvalidInput:
            return [FieldError(field, "unknown_prefix", "%s is not a country code." % value[:2])]
        if not at_02.is_valid(value):
            return [
                FieldError(
                    field, "invalid_checksum", "%s is not a valid SEPA creditor identifier: check its digits." % value
                )
            ]
    return []


def _clean_payment(data: Mapping[str, Any]) -> tuple[dict[str, Any], list[FieldError]]:
    """Each field parsed: account codes upper-cased without their separators, texts trimmed (None is
    blank), the payment terms a whole number of days, the indemnity an amount in euros."""
    cleaned: dict[str, Any] = {}
    errors: list[FieldError] = []
    for field, value in data.items():
        if field not in PAYMENT_FIELDS:
            errors.append(FieldError(field, "not_editable", "%s is not a payment setting." % field))
        elif field == "payment_terms_days":
            if isinstance(value, bool) or not isinstance(value, int):
                errors.append(FieldError(field, "invalid_type", "payment_terms_days must be a whole number of days."))
            elif not 0 <= value <= PAYMENT_TERMS_DAYS_MAX:
                errors.append(
                    FieldError(field, "out_of_range", "Payment terms are 0 to %d days." % PAYMENT_TERMS_DAYS_MAX)
                )
            else:
                cleaned[field] = value
        elif field == "recovery_indemnity":
            try:
                amount = Decimal(str(value)) if not isinstance(value, bool | float) and value is not None else None
            except InvalidOperation:
                amount = None
            if amount is None or not amount.is_finite():
                errors.append(FieldError(field, "invalid_type", "recovery_indemnity must be an amount, e.g. 40.00."))
            elif not Decimal(0) <= amount <= RECOVERY_INDEMNITY_MAX or amount != amount.quantize(Decimal("0.01")):
                errors.append(
                    FieldError(field, "out_of_range", "The recovery indemnity is 0.00 to 9999999.99 euros, in cents.")
                )
            else:
                cleaned[field] = amount.quantize(Decimal("0.01"))
        elif value is not None and not isinstance(value, str):
            errors.append(FieldError(field, "invalid_type", "%s must be a string." % field))
        else:
            text = (value or "").replace("\x00", "").strip()
            if field not in MENTION_FIELDS:
                text = _ACCOUNT_SEPARATORS.sub("", text).upper()
            cleaned[field] = text
    return cleaned, errors


def _validate_payment(payment: Mapping[str, Any]) -> list[FieldError]:
    """Every problem of the tenant's payment settings at once, so that a form can show them all."""
    errors: list[FieldError] = []
    for field in ("iban", "bic", "sepa_creditor_id", *MENTION_FIELDS):
        value = payment[field]
        limit = getattr(Tenant._meta.get_field(field), "max_length", None)
        if limit is not None and len(value) > limit:
            errors.append(FieldError(field, "too_long", "%s has at most %d characters." % (field, limit)))
            continue
        message = refused_character(value)
        if message is not None:
            errors.append(FieldError(field, "control_character", message))
            continue
        errors.extend(_payment_errors(field, value))
    # A BIC names the bank of an account: alone, it says nowhere to pay.
    if payment["bic"] and not payment["iban"]:
        errors.append(FieldError("iban", "required", "Give the IBAN of the account this BIC belongs to."))
    return errors


def tenant_payment_update(*, tenant: Tenant, actor: Actor, at: datetime, data: Mapping[str, Any]) -> Tenant:
    """Change the tenant's payment instructions and legal mentions (see ``PAYMENT_FIELDS``), printed
    on its invoices and carried in their XML: the IBAN and BIC customers pay by transfer into, the
    SEPA creditor identifier of its direct debits, the payment terms (0 to 365 days), and the
    late-payment penalty, recovery indemnity and early-payment discount texts (blank: the seller's
    country's default, ``tenancy.legal_mentions``). Audited; finalized invoices keep their PDF.
    """
    cleaned, errors = _clean_payment(data)
    return _tenant_fields_update(
        tenant=tenant,
        actor=actor,
        at=at,
        cleaned=cleaned,
        errors=errors,
        snapshot=lambda locked: {field: getattr(locked, field) for field in PAYMENT_FIELDS},
        validate=_validate_payment,
        action="tenant.payment_updated",
    )


def _tenant_fields_update(
    *,
    tenant: Tenant,
    actor: Actor,
    at: datetime,
    cleaned: dict[str, Any],
    errors: list[FieldError],
    snapshot: Callable[[Tenant], Mapping[str, Any]],
    validate: Callable[[Mapping[str, Any]], list[FieldError]],
    action: str,
) -> Tenant:
    """A group of the tenant's own fields changed at once: the row locked, the group validated as it
    will be stored (the stored values with the changes), every error raised together, then the
    change and its audit entry (``audited_update``)."""
    with transaction.atomic():
        locked = Tenant.objects.select_for_update().get(pk=tenant.pk)
        errors = errors + validate({**snapshot(locked), **cleaned})
        if errors:
            raise InvalidTenantSettings("; ".join("%s: %s" % (e.field, e.message) for e in errors), errors=errors)
        audited_update(
            obj=locked,
            changes=cleaned,
            actor=actor,
            at=at,
            action=action,
            object_type="tenant",
            object_id=locked.slug,
        )
    return locked


# --- device-cloud webhook secrets ------------------------------------------------------------------

# Rotation needs two at once (the old one until the sender switches); more are a forgotten cleanup.
MAX_DEVICE_CLOUD_SECRETS = 5


def device_cloud_secret_add(*, tenant: Tenant, actor: Actor, at: datetime) -> str:
    """Add a new device-cloud webhook secret next to the others, and return it: it is shown once.

    Webhooks signed with any of the tenant's secrets are accepted, so the device cloud can switch to
    the new one whenever it is ready; remove the old one afterwards."""
    secret = generate_webhook_secret()
    with transaction.atomic():
        locked = Tenant.objects.select_for_update().get(pk=tenant.pk)
        secrets = list(locked.device_cloud_secrets or [])
        if len(secrets) >= MAX_DEVICE_CLOUD_SECRETS:
            raise TooManyDeviceCloudSecrets(
                "A tenant has at most %d device-cloud secrets: remove one that is no longer used first."
                % MAX_DEVICE_CLOUD_SECRETS
            )
        locked.device_cloud_secrets = [*secrets, secret]
        locked.save(update_fields=["device_cloud_secrets"])
        audit_record(
            tenant=locked,
            actor=actor,
            action="device_cloud_secret.added",
            object_type="tenant",
            object_id=locked.slug,
            at=at,
            # The fingerprint only: the audit log is readable by finance viewers, the secret is not.
            after={"fingerprint": webhook_secret_fingerprint(secret), "secrets": len(secrets) + 1},
        )
    logger.info("device-cloud secret added", extra={"tenant_id": str(tenant.pk)})
    return secret


def device_cloud_secret_remove(*, tenant: Tenant, actor: Actor, at: datetime, fingerprint: str) -> None:
    """Remove the secret with this fingerprint; the last one stays, or no webhook could be verified."""
    with transaction.atomic():
        locked = Tenant.objects.select_for_update().get(pk=tenant.pk)
        secrets = list(locked.device_cloud_secrets or [])
        kept = [s for s in secrets if webhook_secret_fingerprint(s) != fingerprint]
        if len(kept) == len(secrets):
            raise DeviceCloudSecretNotFound("No device-cloud secret with fingerprint %s." % fingerprint)
        if not kept:
            raise LastDeviceCloudSecret(
                "This is the tenant's only device-cloud secret: add a new one before removing it."
            )
        locked.device_cloud_secrets = kept
        locked.save(update_fields=["device_cloud_secrets"])
        audit_record(
            tenant=locked,
            actor=actor,
            action="device_cloud_secret.removed",
            object_type="tenant",
            object_id=locked.slug,
            at=at,
            before={"fingerprint": fingerprint, "secrets": len(secrets)},
            after={"secrets": len(kept)},
        )
    logger.info("device-cloud secret removed", extra={"tenant_id": str(tenant.pk)})
