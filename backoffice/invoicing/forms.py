"""Forms of the invoicing pages: the date of a bill run, the filters of the invoices list, and the
amounts typed per line of a credit note."""

import re
from typing import Any

from django import forms
from django.db.models import QuerySet
from django.http import QueryDict
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from backoffice.forms import InputRulesMixin, year_validator
from backoffice.invoicing.presenters import PAYMENT_FILTERS, invoices_by_payment
from backoffice.pages import clean_text
from billing_platform.periods import local_date
from invoicing.models import BillRun, Invoice, InvoiceKind, InvoiceStatus
from invoicing.selectors import invoice_search
from tenancy.models import Tenant

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

    def invoices(self, tenant: Tenant, run: BillRun | None) -> QuerySet[Invoice]:
        """The tenant's invoices this filter selects (after ``is_valid``: a field in error is left
        out), narrowed to ``run``'s: what the list shows, its bulk actions take and its CSV holds."""
        data = self.cleaned_data
        qs = invoice_search(
            tenant=tenant,
            text=clean_text(data.get("q") or ""),
            bill_run=run,
            status=data.get("status") or None,
            kind=data.get("kind") or None,
            date_from=data.get("date_from"),
            date_to=data.get("date_to"),
            customer=clean_text(data.get("customer") or "") or None,
        )
        if data.get("payment"):
            qs = invoices_by_payment(qs, data["payment"], today=local_date(timezone.now(), tenant.timezone))
        return qs


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


LINE_ERROR = re.compile(r"^lines\[(\d+)\]\.(\w+)$")


class CreditNoteEntry:
    """What was typed in the credit-note form (the amount per line, the reason) and its errors, each
    on the line it is about, so that the page comes back with every error at once and nothing lost."""

    def __init__(self, data: QueryDict) -> None:
        self.full = data.get("mode") == "full"
        self.reason = clean_text(data.get("reason", ""))
        self.typed: dict[int, str] = {}
        for key in data:
            match = AMOUNT_FIELD.match(key)
            if match:
                self.typed[int(match.group(1))] = data.get(key, "")[:40]
        self.lines = None if self.full else credit_lines(data)
        self.line_errors: dict[int, str] = {}
        self.reason_error = ""
        self.errors: list[str] = []

    def check(self, *, max_reason: int = 300) -> None:
        """The form's own rules: an amount on some line (or in full), a reason of at most 300 characters."""
        if self.lines == []:
            self.errors.append(_("Enter the amount to credit on at least one line, or credit the invoice in full."))
        if len(self.reason) > max_reason:
            self.reason_error = _("The reason is longer than 300 characters.")

    def apply_service_errors(self, errors: list[Any], detail: str) -> None:
        """The service names a line by its place in ``lines``; each error goes back to that line."""
        placed = False
        for error in errors:
            match = LINE_ERROR.match(error.field)
            if match and self.lines is not None and int(match.group(1)) < len(self.lines):
                line = self.lines[int(match.group(1))]["line"]
                self.line_errors.setdefault(line, error.message)
                placed = True
            elif error.field == "reason":
                self.reason_error = error.message
                placed = True
        if not placed:
            self.errors.append(detail)

    def has_errors(self) -> bool:
        return bool(self.errors or self.line_errors or self.reason_error)

    def summary(self, labels: dict[int, str]) -> list[dict[str, Any]]:
        """The errors for the summary above the form, each linking to its line's amount."""
        rows: list[dict[str, Any]] = [{"label": "", "anchor": "", "message": e} for e in self.errors]
        for line, message in sorted(self.line_errors.items()):
            rows.append({"label": labels.get(line, str(line)), "anchor": "credit-amount-%d" % line, "message": message})
        if self.reason_error:
            rows.append({"label": _("Reason"), "anchor": "credit-reason", "message": self.reason_error})
        return rows
