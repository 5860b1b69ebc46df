"""The settings page of the back-office: the seller identity printed on invoices, the payment
instructions and legal mentions, the invoicing and usage settings, and the device-cloud webhook
secrets.

Finance roles read it; owners and finance admins change it. Views stay thin: each form goes to one
service (``tenant_seller_update``, ``tenant_payment_update``, ``invoicing_settings_update``,
``usage_settings_update``, ``device_cloud_secret_add`` / ``_remove``), which validates and writes
the audit entry.
"""

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from backoffice.access import FINANCE, WRITERS, can_write, current_actor, current_tenant, is_owner, staff_view
from backoffice.settings.forms import (
    InvoicingSettingsForm,
    PaymentForm,
    SellerForm,
    SettingsFormMixin,
    UsageSettingsForm,
)
from backoffice.settings.stripe import StripeKeysForm, stripe_section
from backoffice.team.forms import TwoFactorRequirementForm
from billing_platform.errors import DomainError
from invoicing.services import invoicing_settings_get, invoicing_settings_update
from tenancy.errors import DeviceCloudSecretNotFound, LastDeviceCloudSecret, TooManyDeviceCloudSecrets
from tenancy.legal_mentions import (
    default_early_payment_discount,
    default_late_payment_penalty,
    legal_mentions,
    seller_country,
)
from tenancy.models import Tenant
from tenancy.selectors import audit_log_list, device_cloud_secret_fingerprints
from tenancy.services import (
    MAX_DEVICE_CLOUD_SECRETS,
    PAYMENT_FIELDS,
    SELLER_FIELDS,
    device_cloud_secret_add,
    device_cloud_secret_remove,
    tenant_payment_update,
    tenant_seller_update,
)
from usage.services import USAGE_SETTINGS_LIMITS, usage_settings_get, usage_settings_update

HISTORY_SIZE = 10


def _mention_defaults(tenant: Tenant) -> dict[str, str]:
    """What each blank mention prints, in the reader's language (a French seller's defaults)."""
    country, language = seller_country(tenant), get_language()
    return {
        "late_payment_penalty": default_late_payment_penalty(country, language=language),
        "early_payment_discount": default_early_payment_discount(country, language=language),
    }


def _settings_page(
    request: HttpRequest,
    *,
    seller_form: SellerForm | None = None,
    payment_form: PaymentForm | None = None,
    invoicing_form: InvoicingSettingsForm | None = None,
    usage_form: UsageSettingsForm | None = None,
    stripe_form: StripeKeysForm | None = None,
    new_secret: str = "",
) -> HttpResponse:
    tenant = current_tenant(request)
    writer = can_write(request)
    invoicing = invoicing_settings_get(tenant=tenant)
    usage = usage_settings_get(tenant=tenant)
    # Unbound forms show what is stored; a form that failed to save keeps what was typed.
    seller_form = seller_form or SellerForm(initial={f: getattr(tenant, f) for f in SELLER_FIELDS})
    payment_form = payment_form or PaymentForm(
        initial={f: getattr(tenant, f) for f in PAYMENT_FIELDS}, defaults=_mention_defaults(tenant)
    )
    invoicing_form = invoicing_form or InvoicingSettingsForm(
        initial={f: getattr(invoicing, f) for f in InvoicingSettingsForm.base_fields}
    )
    usage_form = usage_form or UsageSettingsForm(initial={f: getattr(usage, f) for f in USAGE_SETTINGS_LIMITS})
    if not writer:
        for form in (seller_form, payment_form, invoicing_form, usage_form):
            form.make_read_only()
    fingerprints = device_cloud_secret_fingerprints(tenant=tenant)
    context = {
        "tenant": tenant,
        "can_write": writer,
        "seller_form": seller_form,
        "payment_form": payment_form,
        # What a business buyer's invoice prints, in the reader's language.
        "mentions": legal_mentions(tenant, language=get_language()),
        "invoicing_form": invoicing_form,
        "usage_form": usage_form,
        # EN 16931 asks for the seller's VAT identifier on any invoice with a standard-rated line.
        "missing_vat_number": not tenant.vat_number,
        "secrets": [{"fingerprint": f, "newest": i == len(fingerprints) - 1} for i, f in enumerate(fingerprints)],
        "can_add_secret": len(fingerprints) < MAX_DEVICE_CLOUD_SECRETS,
        "new_secret": new_secret,
        "history": audit_log_list(tenant=tenant, object_type="tenant")[:HISTORY_SIZE],
        # Security: the two-factor requirement, which owners set (backoffice.team).
        "two_factor_form": TwoFactorRequirementForm(initial={"two_factor_required": tenant.two_factor_required}),
        "can_manage_security": is_owner(request),
        # Stripe: the tenant's own keys (endings only) and the webhook URL to give Stripe.
        **stripe_section(request, stripe_form),
    }
    response = render(request, "backoffice/settings.html", context)
    if new_secret:
        add_never_cache_headers(response)  # the secret is shown this once: no cache may keep the page
    return response


@staff_view(FINANCE)
def settings_page(request: HttpRequest) -> HttpResponse:
    return _settings_page(request)


def settings_page_with(request: HttpRequest, *, stripe_form: StripeKeysForm) -> HttpResponse:
    """The page again with the Stripe form as it was sent (its errors)."""
    return _settings_page(request, stripe_form=stripe_form)


def _save(
    request: HttpRequest,
    form: SettingsFormMixin,
    update: Any,
    data: dict[str, Any],
    success: str,
) -> HttpResponse | None:
    """Call ``update`` with the form's data; None (and the errors on the form) when it refuses."""
    try:
        update(tenant=current_tenant(request), actor=current_actor(request), at=timezone.now(), data=data)
    except DomainError as exc:
        form.apply_domain_errors(exc)
        return None
    messages.success(request, success)
    return redirect("backoffice:settings")


def _update(
    request: HttpRequest,
    form: SellerForm | PaymentForm | InvoicingSettingsForm | UsageSettingsForm,
    update: Any,
    data: Callable[[dict[str, Any]], dict[str, Any]],
    success: str,
    form_name: str,
) -> HttpResponse:
    """The settings page's answer to one of its forms: ``update`` called with ``data`` of the valid
    form's cleaned data, or the page again with the form (``form_name``) and its errors."""
    if form.is_valid():
        done = _save(request, form, update, data(form.cleaned_data), success)
        if done:
            return done
    page_forms: dict[str, Any] = {form_name: form}
    return _settings_page(request, **page_forms)


@staff_view(WRITERS)
@require_POST
def seller_update_view(request: HttpRequest) -> HttpResponse:
    def data(cleaned: dict[str, Any]) -> dict[str, Any]:
        return {field: value or "" for field, value in cleaned.items()}

    form = SellerForm(request.POST)
    return _update(request, form, tenant_seller_update, data, _("Seller identity saved."), "seller_form")


@staff_view(WRITERS)
@require_POST
def payment_update_view(request: HttpRequest) -> HttpResponse:
    def data(cleaned: dict[str, Any]) -> dict[str, Any]:
        return {field: "" if value is None else value for field, value in cleaned.items()}

    form = PaymentForm(request.POST, defaults=_mention_defaults(current_tenant(request)))
    return _update(
        request,
        form,
        tenant_payment_update,
        data,
        _("Payment instructions and legal mentions saved."),
        "payment_form",
    )


@staff_view(WRITERS)
@require_POST
def invoicing_settings_update_view(request: HttpRequest) -> HttpResponse:
    form = InvoicingSettingsForm(request.POST)
    return _update(request, form, invoicing_settings_update, dict, _("Invoicing settings saved."), "invoicing_form")


@staff_view(WRITERS)
@require_POST
def usage_settings_update_view(request: HttpRequest) -> HttpResponse:
    form = UsageSettingsForm(request.POST)
    return _update(request, form, usage_settings_update, dict, _("Usage settings saved."), "usage_form")


@staff_view(WRITERS)
@require_POST
def device_cloud_secret_add_view(request: HttpRequest) -> HttpResponse:
    try:
        secret = device_cloud_secret_add(
            tenant=current_tenant(request), actor=current_actor(request), at=timezone.now()
        )
    except TooManyDeviceCloudSecrets:
        messages.error(
            request,
            _("At most %(count)s device-cloud secrets at once: remove one that is no longer used first.")
            % {"count": MAX_DEVICE_CLOUD_SECRETS},
        )
        return redirect("backoffice:settings")
    # Rendered, not redirected to: the secret is stored only in the tenant row and shown this once.
    request.tenant.refresh_from_db(fields=["device_cloud_secrets"])  # type: ignore[attr-defined]
    return _settings_page(request, new_secret=secret)


@staff_view(WRITERS)
@require_POST
def device_cloud_secret_remove_view(request: HttpRequest, fingerprint: str) -> HttpResponse:
    try:
        device_cloud_secret_remove(
            tenant=current_tenant(request), actor=current_actor(request), at=timezone.now(), fingerprint=fingerprint
        )
    except LastDeviceCloudSecret:
        messages.error(request, _("This is the only device-cloud secret: add a new one before removing it."))
    except DeviceCloudSecretNotFound:
        messages.error(request, _("No such device-cloud secret."))
    else:
        messages.success(
            request,
            _("Secret %(fingerprint)s removed: webhooks signed with it are now refused.")
            % {"fingerprint": fingerprint},
        )
    return redirect("backoffice:settings")
