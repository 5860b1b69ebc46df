"""Forms of the customer pages; ``customer_create`` and ``customer_update`` validate the rules."""

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from backoffice.forms import DomainErrorFormMixin, InputRulesMixin
from billing_platform.errors import FieldError
from customers.models import Language
from customers.services import ADDRESS_FIELDS

# The services name the address's errors as the API does (``address.postal_code``).
ADDRESS_ERROR_FIELDS = {path: field for field, path in ADDRESS_FIELDS.items()} | {"address.country": "country"}
# The services' errors said in the reader's language, by (field, code); the others keep their English.
SERVICE_ERRORS = {
    ("address.line1", "required"): _("Address line 1 is required once an address is given."),
    ("address.city", "required"): _("The city is required once an address is given."),
}


class CustomerForm(InputRulesMixin, DomainErrorFormMixin, forms.Form):
    external_id = forms.CharField(label=_("External ID"), max_length=200)
    name = forms.CharField(label=_("Name"), max_length=200)
    email = forms.EmailField(label=_("Billing email"))
    country = forms.CharField(label=_("Country (ISO code)"), max_length=2, min_length=2)
    currency = forms.CharField(label=_("Currency"), max_length=3, min_length=3)
    timezone = forms.CharField(label=_("Time zone"), max_length=64)
    language = forms.ChoiceField(label=_("Invoice language"), choices=Language.choices)
    tax_id = forms.CharField(label=_("Tax ID (VAT number)"), max_length=32, required=False)
    address_line1 = forms.CharField(label=_("Address line 1"), max_length=200, required=False)
    address_line2 = forms.CharField(label=_("Address line 2"), max_length=200, required=False)
    postal_code = forms.CharField(label=_("Postal code"), max_length=16, required=False)
    city = forms.CharField(
        label=_("City"),
        max_length=100,
        required=False,
        help_text=_("The postal address printed on invoices, in the country above."),
    )
    billing_day = forms.IntegerField(
        label=_("Billing day"),
        min_value=1,
        max_value=31,
        required=False,
        help_text=_("1 to 31; a day past the month's end bills on its last day."),
    )

    def error_field(self, path: str) -> str:
        return ADDRESS_ERROR_FIELDS.get(path, path)

    def error_message(self, error: FieldError) -> Any:
        return SERVICE_ERRORS.get((error.field, error.code), error.message)


class CustomerEditForm(CustomerForm):
    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["external_id"].disabled = True
