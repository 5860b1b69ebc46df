"""The webhook endpoint form. It parses what a person types; ``webhooks.services`` validates the
URL (https, public addresses) and the event types, and its field errors come back in the reader's
language."""

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from backoffice.forms import DomainErrorFormMixin, InputRulesMixin
from billing_platform.errors import FieldError
from webhooks.events import ALL_EVENTS, EVENT_TYPES

SERVICE_ERRORS: dict[str, Any] = {
    "https_required": _("The URL must start with https://."),
    "private_address": _("This address is private, loopback or link-local: Tripod only calls public addresses."),
    "unresolvable_host": _("This host name does not resolve: check the URL."),
    "credentials_in_url": _("Put no user or password in the URL: the signature authenticates Tripod."),
    "invalid_url": _("This is not a valid URL."),
    "too_long": _("This value is too long."),
    "unknown_event_type": _("Unknown event type."),
    "required": _("Choose at least one event type, or all of them."),
    "all_and_some": _("“All events” already includes every type: choose it alone."),
}


def event_choices() -> list[tuple[str, Any]]:
    return [(ALL_EVENTS, _("All events, present and future"))] + [(t, t) for t in EVENT_TYPES]


class EndpointForm(InputRulesMixin, DomainErrorFormMixin, forms.Form):
    url = forms.CharField(
        label=_("URL"),
        max_length=2000,
        widget=forms.URLInput(attrs={"placeholder": "https://erp.example.com/tripod-webhooks"}),
        help_text=_("https only. Tripod signs every message (Standard Webhooks): verify it with the secret."),
    )
    events = forms.MultipleChoiceField(
        label=_("Events"),
        choices=event_choices,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": _("Choose at least one event type, or all of them.")},
    )
    description = forms.CharField(
        label=pgettext_lazy("webhook endpoint", "Description"),
        max_length=300,
        required=False,
        help_text=_("What receives them, e.g. 'ERP (production)'."),
    )

    def error_message(self, error: FieldError) -> Any:
        return SERVICE_ERRORS.get(error.code) or error.message

    def error_field(self, path: str) -> str:
        return "events" if path.startswith("events") else path
