"""Forms of the customer pages; ``customer_create`` and ``customer_update`` validate the rules.

Every error is reported in one pass: the form's own field checks and the service's rules
(``customer_check``: VAT number, postal code, address, external ID) are collected together, each
on its field, so nobody fixes a form in rounds."""

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from backoffice.forms import (
    CountryField,
    CurrencyField,
    DomainErrorFormMixin,
    InputRulesMixin,
    TimeZoneField,
    tenant_currencies,
)
from billing_platform.errors import FieldError
from customers.models import Customer, Language, Partner
from customers.partners import partner_list
from customers.services import ADDRESS_FIELDS, customer_check
from tenancy.models import Tenant

# The services name the address's errors as the API does (``address.postal_code``).
ADDRESS_ERROR_FIELDS = {path: field for field, path in ADDRESS_FIELDS.items()} | {"address.country": "country"}
# The services' errors said in the reader's language, by (field, code); the others keep their English.
SERVICE_ERRORS = {
    ("address.line1", "required"): _("Address line 1 is required once an address is given."),
    ("address.city", "required"): _("The city is required once an address is given."),
    ("external_id", "taken"): _("Another customer already has this external ID."),
    ("external_id", "invalid_format"): _(
        "Start with a letter or digit and use only letters, digits and . _ : @ - (no spaces)."
    ),
    ("tax_id", "invalid_tax_id"): _("This is not a valid EU VAT number for the country chosen."),
}


class CustomerForm(InputRulesMixin, DomainErrorFormMixin, forms.Form):
    external_id = forms.CharField(label=_("External ID"), max_length=200)
    name = forms.CharField(label=_("Name"), max_length=200)
    email = forms.EmailField(label=_("Billing email"))
    country = CountryField(label=_("Country"))
    currency = CurrencyField(label=_("Currency"))
    timezone = TimeZoneField(label=_("Time zone"))
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

    partner = forms.ChoiceField(
        label=_("Sold through partner"),
        required=False,
        help_text=_("The partner earns commission on what the customer pays."),
    )

    def __init__(self, *args: Any, tenant: Tenant | None = None, customer: Customer | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.tenant = tenant
        self.customer = customer
        self.partners: dict[str, Partner] = {}
        if tenant is not None:
            self.partners = {p.code: p for p in partner_list(tenant=tenant)}
        self.fields["partner"].choices = [  # type: ignore[attr-defined]
            ("", _("No partner (a direct customer)")),
            *((code, "%s (%s)" % (p.name, code)) for code, p in self.partners.items()),
        ]
        if tenant is not None:
            self.fields["currency"].set_first(tenant_currencies(tenant))  # type: ignore[attr-defined]
        self.fields["timezone"].keep(self.initial.get("timezone"))  # type: ignore[attr-defined]

    def error_field(self, path: str) -> str:
        return ADDRESS_ERROR_FIELDS.get(path, path)

    def error_message(self, error: FieldError) -> Any:
        return SERVICE_ERRORS.get((error.field, error.code), error.message)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        # The service's rules on what the fields read, at once with the fields' own errors: a rule
        # about a field that already has an error, or that needs one that has, waits for it.
        data = {
            name: ("" if value is None else value)
            for name, value in cleaned.items()
            if name in self.fields and name != "partner"
        }
        if "billing_day" in data and data["billing_day"] == "":
            data["billing_day"] = None
        if self.customer is not None:
            data.pop("external_id", None)
        address = [*ADDRESS_FIELDS, "country"]
        if any(name in self.errors for name in address):
            for name in address:
                data.pop(name, None)
        if "country" not in data:
            data.pop("tax_id", None)
        for error in customer_check(data):
            name = self.error_field(error.field)
            if name in self.fields and name not in self.errors:
                self.add_error(name, self.error_message(error))
        external_id = cleaned.get("external_id")
        if self.tenant is not None and self.customer is None and external_id and "external_id" not in self.errors:
            if Customer.objects.filter(tenant=self.tenant, external_id=external_id).exists():
                self.add_error("external_id", SERVICE_ERRORS[("external_id", "taken")])
        return cleaned

    def clean_partner(self) -> Partner | None:
        """The chosen partner of the tenant; none: a direct customer."""
        code = self.cleaned_data.get("partner") or ""
        return self.partners.get(code)


class CustomerEditForm(CustomerForm):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["external_id"].disabled = True
