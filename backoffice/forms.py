from collections.abc import Callable
from datetime import date

from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from billing_platform.errors import InvalidInput
from billing_platform.validation import validate_year
from customers.models import Language
from tenancy.models import ApiKeyScope


class LoginForm(AuthenticationForm):
    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": _("Please enter a correct email and password. Both fields may be case-sensitive."),
    }
    username = forms.CharField(
        label=_("Email"), widget=forms.TextInput(attrs={"autofocus": True, "autocomplete": "email"})
    )


class CustomerForm(forms.Form):
    external_id = forms.CharField(label=_("External ID"), max_length=200)
    name = forms.CharField(label=_("Name"), max_length=200)
    email = forms.EmailField(label=_("Billing email"))
    country = forms.CharField(label=_("Country (ISO code)"), max_length=2, min_length=2)
    currency = forms.CharField(label=_("Currency"), max_length=3, min_length=3)
    timezone = forms.CharField(label=_("Time zone"), max_length=64)
    language = forms.ChoiceField(label=_("Invoice language"), choices=Language.choices)
    tax_id = forms.CharField(label=_("Tax ID (VAT number)"), max_length=32, required=False)
    billing_day = forms.IntegerField(
        label=_("Billing day"),
        min_value=1,
        max_value=31,
        required=False,
        help_text=_("1 to 31; a day past the month's end bills on its last day."),
    )

    def apply_domain_errors(self, exc: InvalidInput) -> None:
        for error in exc.errors:
            self.add_error(error.field if error.field in self.fields else None, error.message)
        if not exc.errors:
            self.add_error(None, exc.detail)


class CustomerEditForm(CustomerForm):
    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["external_id"].disabled = True


class ApiKeyForm(forms.Form):
    name = forms.CharField(
        label=_("Name"), max_length=100, help_text=_("What will use this key, e.g. 'Device cloud prod'.")
    )
    scope = forms.ChoiceField(label=_("Scope"), choices=ApiKeyScope.choices)


def year_validator(*, lowest: int, highest: int, message: str | Promise) -> Callable[[date | None], None]:
    """``validate_year`` as a form validator: a date whose year is outside ``lowest``..``highest`` is
    refused with ``message`` (with ``%(min)s`` and ``%(max)s``) in the reader's language."""

    def validate(value: date | None) -> None:
        if value is None:
            return
        try:
            validate_year(value, field="", lowest=lowest, highest=highest, message=str(message))
        except InvalidInput as exc:
            raise forms.ValidationError(exc.errors[0].message, code="out_of_range") from None

    return validate
