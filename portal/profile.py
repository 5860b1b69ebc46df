"""The portal's profile: the customer's billing details (invoice language, billing e-mail, postal
address, VAT number), changed through ``customer_update`` with the same checks as the API's
``PATCH /api/v1/customers/{id}`` (a VAT number must pass its checksum, a postal code must fit the
country) and written to the audit log as the portal user's change; and the portal user's own
language. Admins and billing users change them; viewers read them."""

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseBase
from django.shortcuts import redirect, render
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from billing_platform.errors import DomainError, FieldError
from billing_platform.formatting import country_name
from customers.models import Customer, Language
from customers.portal_language import portal_user_language_set
from customers.services import ADDRESS_FIELDS, customer_update
from portal.access import BILLING, current_portal, portal_actor, portal_view

ACCOUNT_FIELDS = ("language", "email", "address_line1", "address_line2", "postal_code", "city", "tax_id")
# The services name address errors by their API path ("address.postal_code").
FIELD_OF_PATH = {path: field for field, path in ADDRESS_FIELDS.items()}
# The services' messages are English: the portal says the common ones in the reader's language.
MESSAGES = {
    "invalid_tax_id": gettext_lazy("This is not a valid EU VAT number: check its digits and its country prefix."),
    "invalid_postal_code": gettext_lazy("This postal code does not fit the country of the account."),
    "required": gettext_lazy("Required once an address is given."),
    "too_long": gettext_lazy("This is too long."),
    "control_character": gettext_lazy("Remove the invisible characters from this field."),
}


class ProfileForm(forms.Form):
    my_language = forms.ChoiceField(
        label=gettext_lazy("Language of the portal for you"),
        required=False,
        choices=[("", gettext_lazy("Same as the account")), *Language.choices],
    )
    language = forms.ChoiceField(label=gettext_lazy("Language of invoices and e-mails"), choices=Language.choices)
    email = forms.EmailField(label=gettext_lazy("Billing e-mail"), max_length=254)
    address_line1 = forms.CharField(label=gettext_lazy("Address line 1"), max_length=200, required=False)
    address_line2 = forms.CharField(label=gettext_lazy("Address line 2"), max_length=200, required=False)
    postal_code = forms.CharField(label=gettext_lazy("Postal code"), max_length=16, required=False)
    city = forms.CharField(label=gettext_lazy("City"), max_length=100, required=False)
    tax_id = forms.CharField(label=gettext_lazy("VAT number"), max_length=32, required=False)

    def __init__(self, *args: Any, has_user: bool, read_only: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not has_user:  # a session opened by a portal link: nobody's own language to set
            del self.fields["my_language"]
        self.fields["email"].widget.attrs["autocomplete"] = "email"
        self.fields["address_line1"].widget.attrs["autocomplete"] = "address-line1"
        self.fields["address_line2"].widget.attrs["autocomplete"] = "address-line2"
        self.fields["postal_code"].widget.attrs["autocomplete"] = "postal-code"
        self.fields["city"].widget.attrs["autocomplete"] = "address-level2"
        if read_only:
            for field in self.fields.values():
                field.disabled = True

    def apply_errors(self, errors: list[FieldError], detail: str) -> None:
        if not errors:
            self.add_error(None, detail)
        for error in errors:
            name = FIELD_OF_PATH.get(error.field, error.field)
            message = MESSAGES.get(error.code, error.message)
            self.add_error(name if name in self.fields else None, message)


def _account_values(customer: Customer) -> dict[str, Any]:
    return {name: getattr(customer, name) for name in ACCOUNT_FIELDS}


@portal_view()
def profile(request: HttpRequest) -> HttpResponseBase:
    portal = current_portal(request)
    customer, user = portal.customer, portal.user
    can_edit = portal.role in BILLING
    if request.method == "POST" and not can_edit:
        raise PermissionDenied("Your role does not allow this: ask an admin of your account.")
    initial = {**_account_values(customer), "my_language": user.language if user is not None else ""}
    form = ProfileForm(
        request.POST if request.method == "POST" else None,
        initial=initial,
        has_user=user is not None,
        read_only=not can_edit,
    )
    if request.method == "POST" and form.is_valid():
        now = timezone.now()
        actor = portal_actor(request)
        current = _account_values(customer)
        changes = {k: form.cleaned_data[k] for k in ACCOUNT_FIELDS if form.cleaned_data[k] != current[k]}
        try:
            if changes:
                customer = customer_update(
                    tenant=portal.tenant, actor=actor, at=now, external_id=customer.external_id, changes=changes
                )
            if user is not None:
                user = portal_user_language_set(
                    user=user, language=form.cleaned_data["my_language"], actor=actor, at=now
                )
        except DomainError as exc:
            form.apply_errors(list(exc.errors), exc.detail)
        else:
            language = (user.language if user is not None else "") or customer.language
            translation.activate(language)
            messages.success(request, _("Your profile is saved."))
            response = redirect("portal:profile")
            # The portal speaks the chosen language from the next page on, whatever was picked before.
            response.set_cookie(
                settings.LANGUAGE_COOKIE_NAME,
                language,
                max_age=settings.LANGUAGE_COOKIE_AGE,
                path=settings.LANGUAGE_COOKIE_PATH,
                samesite=settings.LANGUAGE_COOKIE_SAMESITE,
                secure=settings.LANGUAGE_COOKIE_SECURE,
                httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
            )
            return response
    context = {
        "form": form,
        "can_edit": can_edit,
        "country": country_name(customer.country, language=translation.get_language()),
        "customer": customer,
    }
    return render(request, "portal/profile/profile.html", context)
