"""Forms of the invoicing pages: the date of a bill run, the filters of the invoices list, and the
amounts typed per line of a credit note."""

import re
from typing import Any

from django import forms
from django.http import QueryDict
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from backoffice.forms import InputRulesMixin, year_validator
from backoffice.invoicing.presenters import PAYMENT_FILTERS
from backoffice.pages import clean_text
from invoicing.models import InvoiceKind, InvoiceStatus

# The years the API accepts for a bill run's date (invoicing.api.views.BillRunListCreateApi).
MIN_YEAR, MAX_YEAR = 1971, 2999
# The parameters of the invoices list's filter, as its links and saved filters keep them.
FILTER_NAMES = ("q", "customer", "status", "payment", "kind", "date_from", "date_to", "run")
AMOUNT_FIELD = re.compile(r"^amount-(\d{1,18})$")


class BillRunForm(InputRulesMixin, forms.Form):
    billing_date = forms.DateField(
        label=gettext_lazy("Billing date"),
        input_formats=["%Y-%m-%d"],
        widget=forms.DateInput(attrs={"type": "date", "id": "run-billing-date"}, format="%Y-%m-%d"),
        help_text=gettext_lazy(
            "Every customer whose billing day falls on this date is billed, once its local midnight of the date "
            "has passed."
        ),
        validators=[
            year_validator(
                lowest=MIN_YEAR, highest=MAX_YEAR, message=gettext_lazy("Use a year between %(min)s and %(max)s.")
            )
        ],
    )


class InvoiceFilterForm(InputRulesMixin, forms.Form):
    q = forms.CharField(
        label=gettext_lazy("Customer"),
        required=False,
        max_length=200,
        widget=forms.TextInput(
            attrs={
                "type": "search",
                "id": "invoice-q",
                "placeholder": gettext_lazy("Name, external ID or invoice number"),
            }
        ),
    )
    # One customer, by its exact external ID (the customer page's links): kept as the list is filtered.
    customer = forms.CharField(label=gettext_lazy("Customer"), required=False, max_length=200, widget=forms.HiddenInput)
    status = forms.ChoiceField(
        label=gettext_lazy("Status"),
        required=False,
        choices=[("", gettext_lazy("Any status")), *InvoiceStatus.choices],
    )
    payment = forms.ChoiceField(
        label=gettext_lazy("Payment"),
        required=False,
        choices=[("", gettext_lazy("Any payment status")), *PAYMENT_FILTERS],
    )
    kind = forms.ChoiceField(
        label=gettext_lazy("Kind"),
        required=False,
        choices=[("", gettext_lazy("Invoices and credit notes")), *InvoiceKind.choices],
    )
    date_from = forms.DateField(
        label=gettext_lazy("Issued from"),
        required=False,
        input_formats=["%Y-%m-%d"],
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    date_to = forms.DateField(
        label=gettext_lazy("Issued until"),
        required=False,
        input_formats=["%Y-%m-%d"],
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        first, last = data.get("date_from"), data.get("date_to")
        if first and last and last < first:
            self.add_error("date_to", _("The last day is before the first day."))
        return data


def credit_lines(data: QueryDict) -> list[dict[str, Any]]:
    """The amounts typed per line (``amount-<line id>``); empty inputs are left out. A decimal
    comma is read as a point; the service checks each amount and refuses what it cannot read."""
    lines = []
    for key in data:
        match = AMOUNT_FIELD.match(key)
        amount = clean_text(data.get(key, "")).replace(",", ".").replace(" ", "")
        if match and amount:
            lines.append({"line": int(match.group(1)), "amount": amount[:40]})
    return sorted(lines, key=lambda x: x["line"])
