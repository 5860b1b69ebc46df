"""Forms of the settings page. They parse what a person types; the tenancy, invoicing and usage
settings services validate the rules, and their field errors are put back on the form in the
reader's language (the services speak English, for the API)."""

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from backoffice.forms import CountryField, DomainErrorFormMixin, InputRulesMixin
from billing_platform.errors import FieldError
from tenancy.models import RegistrationScheme
from usage.services import USAGE_SETTINGS_LIMITS

# The services' errors by (field, code), then by code alone; an error missing here keeps its
# English message.
SERVICE_ERRORS: dict[tuple[str, str] | str, Any] = {
    ("vat_number", "invalid_format"): _(
        "A VAT number is a 2-letter country prefix and 2 to 13 letters or digits, e.g. FR40303265045."
    ),
    ("vat_number", "unknown_prefix"): _("The country prefix of this VAT number is unknown."),
    ("vat_number", "invalid_checksum"): _("This is not a valid EU VAT number: check its digits."),
    ("legal_registration_id", "required"): _("Give the registration number of this register."),
    ("legal_registration_id", "invalid_format"): _("A registration number has only letters, digits and . / -"),
    ("legal_registration_id", "invalid_siren"): _("A SIREN is 9 digits with a valid check digit."),
    ("legal_registration_id", "invalid_siret"): _("A SIRET is 14 digits with a valid check digit."),
    ("address_line1", "required"): _("Address line 1 is required once an address is given."),
    ("iban", "invalid_checksum"): _("This is not a valid IBAN: check its digits."),
    ("iban", "invalid_length"): _("This IBAN does not have the length of its country's IBANs."),
    ("iban", "invalid_format"): _("An IBAN is a country code, 2 check digits and the account number."),
    ("iban", "required"): _("Give the IBAN of the account this BIC belongs to."),
    ("bic", "invalid_format"): _("A BIC has 8 or 11 letters and digits, e.g. BNPAFRPPXXX."),
    ("sepa_creditor_id", "invalid_format"): _(
        "A SEPA creditor identifier is a country code, 2 check digits, 3 characters and a national number, "
        "e.g. FR72ZZZ123456."
    ),
    ("sepa_creditor_id", "unknown_prefix"): _("A SEPA creditor identifier starts with a country code."),
    ("sepa_creditor_id", "invalid_checksum"): _("This is not a valid SEPA creditor identifier: check its digits."),
    ("city", "required"): _("The city is required once an address is given."),
    "unknown_country": _("Unknown country: give its ISO 3166-1 alpha-2 code, e.g. FR."),
    "invalid_email": _("Enter a valid email address."),
    "too_long": _("This value is too long."),
    "out_of_range": _("This value is out of range."),
    "invalid_format": _("A prefix has 1 to 8 letters, digits, - or _, and starts with a letter or digit."),
    "same_prefix": _("Credit notes need a prefix other than the invoices' one."),
}


class SettingsFormMixin(DomainErrorFormMixin):
    def error_message(self, error: FieldError) -> Any:
        return SERVICE_ERRORS.get((error.field, error.code)) or SERVICE_ERRORS.get(error.code) or error.message

    def make_read_only(self) -> None:
        for field in self.fields.values():
            field.disabled = True


class SellerForm(InputRulesMixin, SettingsFormMixin, forms.Form):
    legal_name = forms.CharField(
        label=_("Legal name"),
        max_length=200,
        required=False,
        help_text=_("As registered, e.g. 'Smart Fleet Telematics SAS'. Blank: the organization's name."),
    )
    vat_number = forms.CharField(
        label=_("VAT number"),
        max_length=32,  # typed with spaces; the service keeps 15 characters at most
        required=False,
        help_text=_("With its country prefix, e.g. FR40303265045."),
    )
    legal_registration_scheme = forms.ChoiceField(
        label=_("Company register"),
        choices=[("", _("None or other"))] + list(RegistrationScheme.choices),
        required=False,
    )
    legal_registration_id = forms.CharField(
        label=_("Registration number"),
        max_length=40,
        required=False,
        help_text=_("E.g. the SIREN of a French company."),
    )
    address_line1 = forms.CharField(label=_("Address line 1"), max_length=200, required=False)
    address_line2 = forms.CharField(label=_("Address line 2"), max_length=200, required=False)
    postal_code = forms.CharField(label=_("Postal code"), max_length=16, required=False)
    city = forms.CharField(label=_("City"), max_length=100, required=False)
    country = CountryField(
        label=_("Country"),
        required=False,
        help_text=_("Blank: the platform's default seller country."),
    )
    billing_email = forms.EmailField(
        label=_("Billing contact email"),
        required=False,
        help_text=_("Printed on invoices, for customers' questions about them."),
    )


class PaymentForm(InputRulesMixin, SettingsFormMixin, forms.Form):
    """The payment instructions and legal mentions; ``defaults`` are the texts a blank mention prints
    (``tenancy.legal_mentions``), shown beside their fields."""

    iban = forms.CharField(
        label=_("IBAN"),
        max_length=50,  # typed with spaces; the service keeps 34 characters at most
        required=False,
        help_text=_("The account customers pay by transfer into, e.g. FR76 3000 6000 0112 3456 7890 189."),
    )
    bic = forms.CharField(
        label=_("BIC"), max_length=14, required=False, help_text=_("Its bank's code, e.g. BNPAFRPPXXX.")
    )
    sepa_creditor_id = forms.CharField(
        label=_("SEPA creditor identifier"),
        max_length=45,
        required=False,
        help_text=_("Under which you collect SEPA direct debits, e.g. FR72ZZZ123456."),
    )
    payment_terms_days = forms.IntegerField(
        label=_("Payment terms (days)"),
        min_value=0,
        max_value=365,
        help_text=_("Days between an invoice's issue date and its due date."),
    )
    late_payment_penalty = forms.CharField(label=_("Late-payment penalty"), max_length=300, required=False)
    recovery_indemnity = forms.DecimalField(
        label=_("Recovery indemnity (EUR)"),
        min_value=0,
        max_digits=9,
        decimal_places=2,
        localize=True,  # 40,00 in French
        help_text=_("The fixed indemnity a business buyer owes for recovery costs when paying late (France: 40)."),
    )
    early_payment_discount = forms.CharField(label=_("Early-payment discount"), max_length=300, required=False)

    def __init__(self, *args: Any, defaults: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for field, default in (defaults or {}).items():
            if default:
                self.fields[field].widget.attrs["placeholder"] = default
                self.fields[field].help_text = _("Blank: “%(default)s”, in each invoice's language.") % {
                    "default": default
                }
            else:
                self.fields[field].help_text = _("Blank: nothing is printed.")


class InvoicingSettingsForm(InputRulesMixin, SettingsFormMixin, forms.Form):
    auto_finalize = forms.BooleanField(
        label=_("Finalize invoices automatically"),
        required=False,
        help_text=_("Number, render and send each invoice as soon as a bill run creates it, without review."),
    )
    invoice_prefix = forms.CharField(
        label=_("Invoice number prefix"), max_length=8, help_text=_("INV gives INV-2026-000001.")
    )
    credit_note_prefix = forms.CharField(
        label=_("Credit note number prefix"), max_length=8, help_text=_("CN gives CN-2026-000001.")
    )
    facturx_outside_eu = forms.BooleanField(
        label=_("Embed Factur-X outside the EU"),
        required=False,
        help_text=_(
            "A seller established in the EU always embeds the EN 16931 e-invoice (Factur-X) in its PDFs. "
            "Established elsewhere, turn this on to embed it too: its documents must then be complete e-invoices."
        ),
    )


class UsageSettingsForm(InputRulesMixin, SettingsFormMixin, forms.Form):
    max_event_age_days = forms.IntegerField(
        label=_("Oldest usage accepted (days)"),
        min_value=USAGE_SETTINGS_LIMITS["max_event_age_days"][0],
        max_value=USAGE_SETTINGS_LIMITS["max_event_age_days"][1],
        help_text=_("Events older than this are refused as too late to bill."),
    )
    rate_limit_per_second = forms.IntegerField(
        label=_("Usage requests per second per API key"),
        min_value=USAGE_SETTINGS_LIMITS["rate_limit_per_second"][0],
        max_value=USAGE_SETTINGS_LIMITS["rate_limit_per_second"][1],
        help_text=_("Requests above it get 429 and retry after a second."),
    )
