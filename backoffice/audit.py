"""The audit log in words: what each entry did, in a sentence, and what it changed, one line per field
("Billing email: a@x.fr → b@x.fr"), in the reader's language.

Every action the services record has its sentence in ``SENTENCES`` (a test checks each action written
in the code has one). The changes come from the entry's ``before`` and ``after``: a field with both
reads "old → new", one with only ``after`` (a creation, or an entry written before the old values
were kept) reads "set to new", one with only ``before`` "removed (was old)". Field names are labels,
amounts are formatted in the entry's currency, days and instants are localized, and secrets are never
shown, whatever an entry holds.
"""

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from backoffice.formatting import day, moment, money, unit_price
from customers.models import Collection
from payments.models import PaymentMethod
from tenancy.models import ApiKeyScope, AuditLogEntry, Role

# What each action did; %(object)s is the entry's object, the other names come from its values.
SENTENCES: dict[str, Promise] = {
    "tenant.created": gettext_lazy("Organization %(object)s created"),
    "tenant.seller_updated": gettext_lazy("Seller identity updated"),
    "tenant.payment_updated": gettext_lazy("Payment instructions updated"),
    "tenant.two_factor_updated": gettext_lazy("Two-factor requirement changed"),
    "tenant.branding_updated": gettext_lazy("Portal branding updated"),
    "api_key.created": gettext_lazy("API key %(name)s created"),
    "api_key.revoked": gettext_lazy("API key %(object)s revoked"),
    "device_cloud_secret.added": gettext_lazy("Device-cloud secret added"),
    "device_cloud_secret.removed": gettext_lazy("Device-cloud secret removed"),
    "invitation.created": gettext_lazy("Invitation sent"),
    "invitation.revoked": gettext_lazy("Invitation revoked"),
    "membership.created": gettext_lazy("Team member added"),
    "membership.role_changed": gettext_lazy("Team member's role changed"),
    "membership.removed": gettext_lazy("Team member removed"),
    "user.password_changed": gettext_lazy("Password changed"),
    "user.password_reset": gettext_lazy("Password reset"),
    "user.second_factor_added": gettext_lazy("Second factor added"),
    "user.second_factor_removed": gettext_lazy("Second factor removed"),
    "user.second_factor_renewed": gettext_lazy("Recovery codes renewed"),
    "customer.created": gettext_lazy("Customer %(object)s created"),
    "customer.updated": gettext_lazy("Customer %(object)s updated"),
    "partner.created": gettext_lazy("Partner %(object)s created"),
    "partner.updated": gettext_lazy("Partner %(object)s updated"),
    "partner_user.invited": gettext_lazy("%(email)s invited to partner %(object)s's dashboard"),
    "partner_user.invitation_resent": gettext_lazy("Partner dashboard invitation sent again to %(email)s"),
    "partner_user.updated": gettext_lazy("Partner user %(email)s changed"),
    "partner_user.deactivated": gettext_lazy("Partner user %(email)s deactivated"),
    "partner_user.reactivated": gettext_lazy("Partner user %(email)s reactivated"),
    "partner_user.removed": gettext_lazy("Partner user %(email)s removed from partner %(object)s"),
    "customer.dunning_policy_updated": gettext_lazy("Dunning policy of customer %(object)s updated"),
    "customer.dunning_policy_removed": gettext_lazy("Dunning policy of customer %(object)s removed"),
    "portal_link.created": gettext_lazy("Portal link made for customer %(object)s"),
    "portal.login": gettext_lazy("Portal login to customer %(object)s's account"),
    "portal.login_code_sent": gettext_lazy("Portal login code e-mailed to %(email)s"),
    "portal.login_refused": gettext_lazy("Portal login refused for %(email)s"),
    "portal_user.invited": gettext_lazy("%(email)s invited to customer %(object)s's portal"),
    "portal_user.invitation_resent": gettext_lazy("Portal invitation sent again to %(email)s"),
    "portal_user.invitation_accepted": gettext_lazy("%(email)s accepted the invitation to the portal"),
    "portal_user.updated": gettext_lazy("Portal user %(email)s changed"),
    "portal_user.deactivated": gettext_lazy("Portal user %(email)s deactivated"),
    "portal_user.reactivated": gettext_lazy("Portal user %(email)s reactivated"),
    "portal_user.removed": gettext_lazy("Portal user removed from customer %(object)s's portal"),
    "portal_user.password_set": gettext_lazy("Portal user %(email)s set a password"),
    "portal_user.password_changed": gettext_lazy("Portal user %(email)s changed their password"),
    "portal_user.second_factor_added": gettext_lazy("Portal user %(email)s turned on two-factor authentication"),
    "portal_user.second_factor_removed": gettext_lazy("Portal user %(email)s turned off two-factor authentication"),
    "partner.login": gettext_lazy("Partner dashboard login of %(email)s (partner %(object)s)"),
    "partner.login_code_sent": gettext_lazy("Partner dashboard login code e-mailed to %(email)s"),
    "partner.login_refused": gettext_lazy("Partner dashboard login refused for %(email)s"),
    "partner_user.invitation_accepted": gettext_lazy("%(email)s accepted the invitation to the partner dashboard"),
    "partner_user.password_set": gettext_lazy("Partner user %(email)s set a password"),
    "partner_user.password_changed": gettext_lazy("Partner user %(email)s changed their password"),
    "partner_user.second_factor_added": gettext_lazy("Partner user %(email)s turned on two-factor authentication"),
    "partner_user.second_factor_removed": gettext_lazy("Partner user %(email)s turned off two-factor authentication"),
    "product.created": gettext_lazy("Product %(object)s created"),
    "product.updated": gettext_lazy("Product %(object)s updated"),
    "meter.created": gettext_lazy("Meter %(object)s created"),
    "meter.updated": gettext_lazy("Meter %(object)s updated"),
    "plan.created": gettext_lazy("Plan %(object)s created"),
    "plan.updated": gettext_lazy("Plan %(object)s updated"),
    "order.placed": gettext_lazy("Order %(object)s placed"),
    "order.fulfilled": gettext_lazy("Order %(object)s fulfilled"),
    "device.bound": gettext_lazy("Device bound to a slot of subscription %(object)s"),
    "price_version.created": gettext_lazy(
        "Price version created for plan %(object)s (%(currency)s), effective %(effective_from)s"
    ),
    "price_override.created": gettext_lazy("Negotiated price for customer %(object)s created"),
    "price_override.ended": gettext_lazy("Negotiated price for customer %(object)s ended"),
    "tax_rate.set": gettext_lazy("Tax rate set"),
    "subscription.created": gettext_lazy("Subscription %(object)s created"),
    "subscription.updated": gettext_lazy("Subscription %(object)s updated"),
    "subscription.add_devices": gettext_lazy("Devices added to subscription %(object)s"),
    "subscription.remove_devices": gettext_lazy("Devices removed from subscription %(object)s"),
    "subscription.change_plan": gettext_lazy("Plan of subscription %(object)s changed"),
    "subscription.cancel": gettext_lazy("Subscription %(object)s cancelled"),
    "subscription.change_scheduled": gettext_lazy("Change of subscription %(object)s scheduled"),
    "webhook.replayed": gettext_lazy("Device-cloud webhook %(object)s replayed"),
    "usage_settings.updated": gettext_lazy("Usage settings updated"),
    "invoicing_settings.updated": gettext_lazy("Invoicing settings updated"),
    "bill_run.started": gettext_lazy("Bill run started"),
    "invoice.finalized": gettext_lazy("Invoice %(object)s finalized"),
    "invoice.voided": gettext_lazy("Invoice %(object)s voided"),
    "invoice.sent_again": gettext_lazy("Invoice %(object)s e-mailed again"),
    "invoice.metadata_updated": gettext_lazy("Metadata of invoice %(object)s updated"),
    "invoice.written_off": gettext_lazy("Invoice %(object)s written off"),
    "invoice.pay_with_saved_card": gettext_lazy("Invoice %(object)s paid with the saved card from the portal"),
    "customer.payment_method_default_set": gettext_lazy("Default payment method of customer %(object)s chosen"),
    "customer.payment_method_removed": gettext_lazy("A payment method of customer %(object)s removed"),
    "payment.recorded": gettext_lazy("Payment recorded"),
    "payment.refunded": gettext_lazy("Payment refunded"),
    "payment.refund_taken_back": gettext_lazy("Refund taken back"),
    "payment_settings.stripe_keys_updated": gettext_lazy("Stripe keys updated"),
    "dunning_policy.updated": gettext_lazy("Dunning policy updated"),
    "webhook_endpoint.created": gettext_lazy("Webhook endpoint created"),
    "webhook_endpoint.updated": gettext_lazy("Webhook endpoint updated"),
    "webhook_endpoint.enabled": gettext_lazy("Webhook endpoint enabled"),
    "webhook_endpoint.disabled": gettext_lazy("Webhook endpoint disabled"),
    "webhook_endpoint.deleted": gettext_lazy("Webhook endpoint deleted"),
    "webhook_endpoint.secret_rotated": gettext_lazy("Webhook endpoint's signing secret rotated"),
    "webhook_delivery.replayed": gettext_lazy("Webhook delivery replayed"),
    "export_target.created": gettext_lazy("ERP export target created"),
    "journal_export.created": gettext_lazy("Journal exported to the ERP"),
    "recognition_run.started": gettext_lazy("Revenue recognition run started"),
    "revenue_period.closed": gettext_lazy("Revenue period closed"),
    "support_case.opened": gettext_lazy("Support case %(subject)s opened"),
    "support_case.message_added": gettext_lazy("Message added to support case %(subject)s"),
    "support_case.assigned": gettext_lazy("Support case assigned"),
    "support_case.resolved": gettext_lazy("Support case resolved"),
    "support_case.status_changed": gettext_lazy("Support case status changed"),
    "support_case.credit_note_issued": gettext_lazy("Credit note %(number)s issued from a support case"),
    "support_settings.updated": gettext_lazy("First-response target updated"),
    "commission_statement.built": gettext_lazy("Commission statement of %(partner)s for %(month)s built"),
    "commission_statement.rebuilt": gettext_lazy("Commission statement of %(partner)s for %(month)s built again"),
    "commission_statement.approved": gettext_lazy("Commission statement of %(partner)s for %(month)s approved"),
    "commission_statement.paid": gettext_lazy("Commission statement of %(partner)s for %(month)s marked paid"),
}

# Field names as the reader reads them; a field not listed reads as its name, spaced ("Due date").
LABELS: dict[str, Promise] = {
    "email": gettext_lazy("Billing email"),
    "billing_email": gettext_lazy("Billing email"),
    "name": gettext_lazy("Name"),
    "legal_name": gettext_lazy("Legal name"),
    "status": gettext_lazy("Status"),
    "currency": gettext_lazy("Currency"),
    "country": gettext_lazy("Country"),
    "timezone": gettext_lazy("Time zone"),
    "language": gettext_lazy("Language"),
    "amount": gettext_lazy("Amount"),
    "reason": gettext_lazy("Reason"),
    "role": gettext_lazy("Role"),
    "scope": gettext_lazy("Scope"),
    "prefix": gettext_lazy("Key prefix"),
    "effective_from": gettext_lazy("Effective from"),
    "billing_day": gettext_lazy("Billing day"),
    "vat_number": gettext_lazy("VAT number"),
    "tax_id": gettext_lazy("Tax ID"),
    "address_line1": gettext_lazy("Address line 1"),
    "address_line2": gettext_lazy("Address line 2"),
    "postal_code": gettext_lazy("Postal code"),
    "city": gettext_lazy("City"),
    "method": gettext_lazy("Method"),
    "reference": gettext_lazy("Reference"),
    "revoked_at": gettext_lazy("Revoked"),
    "enabled": gettext_lazy("Enabled"),
    "url": gettext_lazy("URL"),
    "events": gettext_lazy("Events"),
    "description": gettext_lazy("Description"),
    "devices": gettext_lazy("Devices"),
    "plan": gettext_lazy("Plan"),
    "product": gettext_lazy("Product"),
    "rate": gettext_lazy("Rate"),
    "payment_terms_days": gettext_lazy("Payment terms (days)"),
    "auto_finalize": gettext_lazy("Finalize automatically"),
    "collection": gettext_lazy("Collection"),
    "customer": gettext_lazy("Customer"),
    "left": gettext_lazy("Left as credit"),
    "allocated": gettext_lazy("Allocated to invoices"),
    "prices": gettext_lazy("Prices"),
    "regions": gettext_lazy("Regions"),
    "components": gettext_lazy("Components"),
    "valid_from": gettext_lazy("Valid from"),
    "valid_to": gettext_lazy("Valid to"),
    "code": gettext_lazy("Code"),
    "field": gettext_lazy("Field"),
    "filters": gettext_lazy("Filters"),
    "dimensions": gettext_lazy("Dimensions"),
    "time_bands": gettext_lazy("Time bands"),
    "aggregation": gettext_lazy("Aggregation"),
    "accepts_negative": gettext_lazy("Accepts negative values"),
    "charge": gettext_lazy("Charge"),
    "model": gettext_lazy("Model"),
    "tiers": gettext_lazy("Tiers"),
    "up_to": gettext_lazy("Up to"),
    "flat_amount": gettext_lazy("Flat amount"),
    "unit_amount": gettext_lazy("Unit amount"),
    "min_amount": gettext_lazy("Minimum amount"),
    "max_amount": gettext_lazy("Maximum amount"),
    "metadata": gettext_lazy("Metadata"),
    "secrets": gettext_lazy("Secrets"),
    "fingerprint": gettext_lazy("Fingerprint"),
    "kind": gettext_lazy("Kind"),
    "subject": gettext_lazy("Subject"),
    "assignee": gettext_lazy("Assigned to"),
    "opened_by": gettext_lazy("Opened by"),
    "author": gettext_lazy("From"),
    "first_response_hours": gettext_lazy("First-response target (hours)"),
}
# Field names are lower-case words joined by "_"; other keys of a nested value (a product code, an
# invoice's id) are data, shown as they are.
FIELD_NAME = re.compile(r"^[a-z][a-z_]*$")

# Fields whose values are choices: their label in the reader's language ("finance_viewer" -> "Finance viewer").
CHOICES: dict[str, Any] = {
    "role": Role,
    "scope": ApiKeyScope,
    "method": PaymentMethod,
    "collection": Collection,
}

# A field whose name holds one of these is a secret: never shown, only said to have changed.
SECRET_WORDS = ("secret", "password", "token", "_key", "signing")
# Fields that hold an amount, formatted in the entry's currency when it has one.
AMOUNT_FIELDS = {
    "amount",
    "balance",
    "total",
    "net_total",
    "price",
    "per_unit",
    "left",
    "allocated",
    "credited",
    "refunded",
}
# Catalog prices keep their own places, finer than the currency's.
UNIT_PRICE_FIELDS = {"unit_amount", "price", "per_unit"}
HIDDEN = "••••••"


@dataclass(frozen=True)
class AuditLine:
    """One entry as the page shows it: its sentence and its changes, one per field."""

    entry: AuditLogEntry
    sentence: str
    changes: list[str]


def is_secret(field: str) -> bool:
    name = field.lower()
    return any(word in name for word in SECRET_WORDS) and "publishable" not in name


def label(field: str) -> str:
    name = field.split(".")[-1]
    known = LABELS.get(name)
    if known is not None:
        return str(known)
    return name.replace("_", " ").capitalize() if FIELD_NAME.match(name) else name


def value_text(field: str, value: Any, currency: str = "", tz: str = "UTC") -> str:
    """A value in words: a secret hidden, an amount with its currency, a day or an instant in the
    reader's language, a yes or no, a list joined, nothing as a dash."""
    if is_secret(field):
        return HIDDEN
    if value is None or value == "" or value == [] or value == {}:
        return "—"
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, list):
        return ", ".join(value_text(field, v, currency, tz) for v in value)
    if isinstance(value, dict):
        # A key that is data (a product code, an invoice) keeps the field its values belong to.
        return "; ".join(
            "%s: %s" % (label(k), value_text(k if FIELD_NAME.match(k) else field, v, currency, tz))
            for k, v in value.items()
        )
    name = field.split(".")[-1]
    if name in CHOICES and isinstance(value, str):
        labels = dict(CHOICES[name].choices)
        return str(labels.get(value, value))
    if currency and name in UNIT_PRICE_FIELDS:
        return unit_price(value, currency)  # with the places it was set with (0.005)
    if currency and (name in AMOUNT_FIELDS or name.endswith("_amount")):
        return money(value, currency)
    if isinstance(value, str):
        parsed = _when(value)
        if isinstance(parsed, datetime):
            local = parsed.astimezone(ZoneInfo(tz))
            # A local midnight is a day (a price effective from 1 May), any other instant a moment.
            return day(local.date()) if local.time() == time(0) else moment(parsed, tz)
        if isinstance(parsed, date):
            return day(parsed)
    return str(value)


def _when(text: str) -> date | datetime | None:
    """A day ("2026-05-01") or an instant ("2026-05-01T00:00:00+02:00") written as ISO text."""
    if len(text) < 10 or text[4:5] != "-" or text[7:8] != "-":
        return None
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _fields(before: Mapping[str, Any], after: Mapping[str, Any]) -> Iterator[str]:
    seen: list[str] = []
    for name in [*before, *after]:
        if name not in seen:
            seen.append(name)
            yield name


def changes(entry: AuditLogEntry, tz: str = "UTC") -> list[str]:
    """One line per field the entry records, in words."""
    before = entry.before if isinstance(entry.before, dict) else {}
    after = entry.after if isinstance(entry.after, dict) else {}
    currency = str(after.get("currency") or before.get("currency") or "")
    lines = []
    for field in _fields(before, after):
        old, new = before.get(field), after.get(field)
        if field in before and field in after:
            if is_secret(field):
                lines.append(_("%(field)s: changed") % {"field": label(field)})
                continue
            lines.append(
                _("%(field)s: %(old)s → %(new)s")
                % {
                    "field": label(field),
                    "old": value_text(field, old, currency, tz),
                    "new": value_text(field, new, currency, tz),
                }
            )
        elif field in after:
            lines.append(
                _("%(field)s: set to %(value)s")
                % {"field": label(field), "value": value_text(field, new, currency, tz)}
            )
        else:
            lines.append(
                _("%(field)s: removed (was %(value)s)")
                % {"field": label(field), "value": value_text(field, old, currency, tz)}
            )
    return lines


class _Values(dict[str, str]):
    """The sentence's names: a name the entry does not hold reads as a dash."""

    def __missing__(self, key: str) -> str:
        return "—"


def sentence(entry: AuditLogEntry, tz: str = "UTC") -> str:
    """What the entry did, in a sentence; an action without one (never expected) reads as its words."""
    template = SENTENCES.get(entry.action)
    if template is None:
        return entry.action.replace(".", " ").replace("_", " ").capitalize()
    after = entry.after if isinstance(entry.after, dict) else {}
    values = _Values(object=entry.object_id)
    currency = str(after.get("currency") or "")
    for field, value in after.items():
        if not isinstance(value, dict | list):
            values[field] = value_text(field, value, currency, tz)
    if "effective_from" in after and not after["effective_from"]:
        values["effective_from"] = _("from the start")
    return str(template) % values


def audit_lines(entries: Any, tz: str = "UTC") -> list[AuditLine]:
    return [AuditLine(entry=e, sentence=sentence(e, tz), changes=changes(e, tz)) for e in entries]
