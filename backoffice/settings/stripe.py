"""The settings page's Stripe section: the tenant's own Stripe keys, encrypted at rest and never
shown again (only their last 4 characters), and the webhook URL to give Stripe. Owners and
finance admins replace them (``payments.gateway.stripe_keys_update``, audited)."""

from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from backoffice.access import WRITERS, current_actor, current_tenant, staff_view
from billing_platform.errors import InvalidInput
from payments.gateway import STRIPE_KEY_PREFIXES, stripe_keys_summary, stripe_keys_update
from payments.stripe_webhooks import HANDLED_TYPES


class StripeKeysForm(forms.Form):
    """Each field replaces its key when filled; left blank, the stored key stays."""

    stripe_secret_key = forms.CharField(
        label=gettext_lazy("Secret key"),
        required=False,
        max_length=255,
        widget=forms.PasswordInput(attrs={"autocomplete": "off", "placeholder": "sk_live_…"}),
    )
    stripe_webhook_secret = forms.CharField(
        label=gettext_lazy("Webhook signing secret"),
        required=False,
        max_length=255,
        widget=forms.PasswordInput(attrs={"autocomplete": "off", "placeholder": "whsec_…"}),
    )
    stripe_publishable_key = forms.CharField(
        label=gettext_lazy("Publishable key"),
        required=False,
        max_length=255,
        widget=forms.TextInput(attrs={"autocomplete": "off", "placeholder": "pk_live_…"}),
    )


def stripe_section(request: HttpRequest, form: StripeKeysForm | None = None) -> dict[str, Any]:
    """The section's context: the form, what is set (endings only), the webhook URL and events."""
    tenant = current_tenant(request)
    endings = stripe_keys_summary(tenant=tenant)
    webhook_url = request.build_absolute_uri(reverse("webhooks-stripe")) + "?tenant=" + tenant.slug
    return {
        "stripe_form": form or StripeKeysForm(),
        "stripe_keys": [
            {"field": field, "label": StripeKeysForm.base_fields[field].label, "ending": endings[field]}
            for field in STRIPE_KEY_PREFIXES
        ],
        "stripe_webhook_url": webhook_url,
        "stripe_events": HANDLED_TYPES,
    }


@staff_view(WRITERS)
@require_POST
def stripe_keys_update_view(request: HttpRequest) -> HttpResponse:
    from backoffice.settings.views import settings_page_with

    form = StripeKeysForm(request.POST)
    if form.is_valid():
        try:
            stripe_keys_update(
                tenant=current_tenant(request), actor=current_actor(request), at=timezone.now(), keys=form.cleaned_data
            )
        except InvalidInput as exc:
            for error in exc.errors:
                prefixes = " / ".join(STRIPE_KEY_PREFIXES.get(error.field, ()))
                form.add_error(error.field, _("This key should start with %(prefixes)s.") % {"prefixes": prefixes})
        else:
            messages.success(request, _("Stripe keys saved."))
            return redirect("backoffice:settings")
    return settings_page_with(request, stripe_form=form)
