"""Forms of the customer pages; ``customer_create`` and ``customer_update`` validate the rules."""

from django import forms
from django.utils.translation import gettext_lazy as _

from backoffice.forms import DomainErrorFormMixin, InputRulesMixin
from customers.models import Language


class CustomerForm(InputRulesMixin, DomainErrorFormMixin, forms.Form):
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


class CustomerEditForm(CustomerForm):
    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["external_id"].disabled = True
