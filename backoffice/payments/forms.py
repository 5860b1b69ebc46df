"""Forms of the payments pages: the list's filters, recording a payment received outside the
gateway, a refund, and the day of the receivables report."""

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django import forms
from django.db.models import Q, QuerySet
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from backoffice.forms import DomainErrorFormMixin, InputRulesMixin
from backoffice.pages import clean_text
from billing_platform.money import is_known_currency, minor_unit_exponent
from billing_platform.periods import local_midnight
from customers.models import Customer
from invoicing.models import Invoice
from payments.models import Payment, PaymentMethod, PaymentStatus
from tenancy.models import Tenant

# What staff record by hand: card and SEPA debits come through the gateway.
MANUAL_METHODS = [
    (m.value, m.label)
    for m in (PaymentMethod.BANK_TRANSFER, PaymentMethod.CHEQUE, PaymentMethod.CASH, PaymentMethod.OTHER)
]
MAX_AMOUNT = Decimal("999999999999.99")


def _date_field(label: Any, *, required: bool = False, **attrs: str) -> forms.DateField:
    return forms.DateField(
        label=label,
        required=required,
        input_formats=["%Y-%m-%d"],
        widget=forms.DateInput(attrs={"type": "date", **attrs}, format="%Y-%m-%d"),
    )


class PaymentFilterForm(InputRulesMixin, forms.Form):
    customer = forms.CharField(
        label=gettext_lazy("Customer"),
        required=False,
        max_length=200,
        widget=forms.TextInput(attrs={"type": "search", "placeholder": gettext_lazy("Name or external ID")}),
    )
    method = forms.ChoiceField(
        label=gettext_lazy("Method"), required=False, choices=[("", gettext_lazy("Any method")), *PaymentMethod.choices]
    )
    status = forms.ChoiceField(
        label=gettext_lazy("Status"), required=False, choices=[("", gettext_lazy("Any status")), *PaymentStatus.choices]
    )
    date_from = _date_field(gettext_lazy("Received from"))
    date_to = _date_field(gettext_lazy("Received until"))

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        first, last = data.get("date_from"), data.get("date_to")
        if first and last and last < first:
            self.add_error("date_to", _("The last day is before the first day."))
        return data

    def payments(self, tenant: Tenant) -> QuerySet[Payment]:
        """The tenant's payments this filter selects, newest first (after ``is_valid``: a field in
        error is left out): a part of the customer's name or its exact external ID, the method, the
        status, and the days received in the tenant's time zone. The list and its CSV read it."""
        data = self.cleaned_data
        qs = Payment.objects.filter(tenant=tenant)
        text = clean_text(data.get("customer") or "")
        if text:
            qs = qs.filter(Q(customer__external_id=text) | Q(customer__name__icontains=text))
        if data.get("method"):
            qs = qs.filter(method=data["method"])
        if data.get("status"):
            qs = qs.filter(status=data["status"])
        if data.get("date_from"):
            qs = qs.filter(received_at__gte=local_midnight(data["date_from"], tenant.timezone))
        if data.get("date_to"):
            qs = qs.filter(received_at__lt=local_midnight(data["date_to"] + timedelta(days=1), tenant.timezone))
        return qs.order_by("-received_at", "-created_at", "-id")


def _amount_check(form: forms.Form, amount: Decimal | None, currency: str) -> None:
    """An amount above zero with no more decimals than the currency has (2 for EUR, 0 for JPY)."""
    if amount is None:
        return
    if amount <= 0:
        form.add_error("amount", _("Enter an amount above zero."))
        return
    places = minor_unit_exponent(currency) if is_known_currency(currency) else 2
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > places:
        form.add_error(
            "amount",
            _("%(currency)s amounts have at most %(places)s decimals.") % {"currency": currency, "places": places},
        )


class PaymentRecordForm(InputRulesMixin, DomainErrorFormMixin, forms.Form):
    """A payment of ``customer``, optionally for one of its open invoices in the same currency."""

    invoice = forms.ModelChoiceField(
        label=gettext_lazy("Invoice"),
        required=False,
        queryset=Invoice.objects.none(),
        empty_label=gettext_lazy("None: the oldest open invoices first, the rest to the balance"),
    )
    amount = forms.DecimalField(
        label=gettext_lazy("Amount"),
        max_digits=16,
        decimal_places=4,
        max_value=MAX_AMOUNT,
        localize=True,
        widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"}),
    )
    currency = forms.CharField(label=gettext_lazy("Currency"), min_length=3, max_length=3)
    method = forms.ChoiceField(label=gettext_lazy("Method"), choices=MANUAL_METHODS)
    received_on = _date_field(gettext_lazy("Received on"), required=True)
    reference = forms.CharField(
        label=gettext_lazy("Reference"),
        required=False,
        max_length=200,
        help_text=gettext_lazy("The bank transfer's reference or the cheque number."),
    )

    def __init__(self, *args: Any, customer: Customer, today: date, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.customer, self.today = customer, today
        open_invoices: Any = Invoice.objects.filter(
            tenant_id=customer.tenant_id,
            customer=customer,
            kind="invoice",
            status="finalized",
            payment_status__in=["unpaid", "partially_paid"],
            currency=customer.currency,
        ).order_by("due_date", "issue_date", "number")
        invoice_field: Any = self.fields["invoice"]
        invoice_field.queryset = open_invoices
        invoice_field.label_from_instance = self._invoice_label

    @staticmethod
    def _invoice_label(invoice: Invoice) -> str:
        from backoffice.formatting import day, money

        return _("%(number)s, due %(due)s: %(amount)s") % {
            "number": invoice.number,
            "due": day(invoice.due_date),
            "amount": money(invoice.amount_due),
        }

    def clean_currency(self) -> str:
        currency = str(self.cleaned_data["currency"]).upper()
        if not is_known_currency(currency):
            raise forms.ValidationError(_("Not a currency code (ISO 4217, e.g. EUR)."))
        return currency

    def clean_received_on(self) -> date:
        received: date = self.cleaned_data["received_on"]
        if received > self.today:
            raise forms.ValidationError(_("The day the money was received cannot be in the future."))
        return received

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        currency, invoice = data.get("currency"), data.get("invoice")
        if currency:
            _amount_check(self, data.get("amount"), currency)
            if invoice is not None and invoice.currency != currency:
                self.add_error(
                    "currency",
                    _("Invoice %(number)s is in %(invoice)s: a payment in %(currency)s cannot settle it.")
                    % {"number": invoice.number, "invoice": invoice.currency, "currency": currency},
                )
            elif currency != self.customer.currency:
                self.add_error(
                    "currency",
                    _("%(name)s is billed in %(customer)s: a payment in %(currency)s cannot settle its invoices.")
                    % {"name": self.customer.name, "customer": self.customer.currency, "currency": currency},
                )
        return data


class RefundForm(InputRulesMixin, DomainErrorFormMixin, forms.Form):
    amount = forms.DecimalField(
        label=gettext_lazy("Amount"),
        max_digits=16,
        decimal_places=4,
        max_value=MAX_AMOUNT,
        localize=True,
        widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"}),
    )
    reason = forms.CharField(label=gettext_lazy("Reason"), max_length=300)

    def __init__(self, *args: Any, currency: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.currency = currency

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        _amount_check(self, data.get("amount"), self.currency)
        return data


class AsOfForm(InputRulesMixin, forms.Form):
    as_of = _date_field(gettext_lazy("As of"), required=True)


class DaysField(forms.CharField):
    """Whole numbers of days separated by commas ("-3, 7"), as a list; the policy's own checks
    (range, order) are ``payments.policies.policy_validate``'s."""

    def to_python(self, value: Any) -> list[int]:  # type: ignore[override]
        text = str(super().to_python(value) or "")
        days = []
        for part in (p.strip() for p in text.split(",")):
            if not part:
                continue
            try:
                days.append(int(part))
            except ValueError:
                raise forms.ValidationError(_("Enter whole numbers of days separated by commas, e.g. -3, 7.")) from None
        return days

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return ", ".join(str(d) for d in value)
        return value


# The policy's rules in the reader's language, by the code of ``policy_validate``'s field errors.
POLICY_ERRORS = {
    "invalid": gettext_lazy("Enter whole numbers of days."),
    "out_of_range": gettext_lazy("A day out of range: reminders from -60 to 365, the other days from 0 to 365."),
    "not_sorted": gettext_lazy("List the days in increasing order, each once."),
    "before_suspension": gettext_lazy("An invoice is written off no sooner than its subscriptions are suspended."),
    "suspend_too_soon": gettext_lazy(
        "Suspend 1 to 365 days past due: subscriptions are not suspended on the due date itself."
    ),
}


class DunningPolicyForm(InputRulesMixin, DomainErrorFormMixin, forms.Form):
    reminder_days = DaysField(
        label=gettext_lazy("Reminder days"),
        required=False,
        help_text=gettext_lazy("Days from the due date, comma-separated; negative before it (e.g. -3, 7)."),
    )
    retry_days = DaysField(
        label=gettext_lazy("Retry days"),
        required=False,
        help_text=gettext_lazy(
            "Days past due on which customers charged automatically are charged again (e.g. 3, 5, 7)."
        ),
    )
    suspend_after_days = forms.IntegerField(
        label=gettext_lazy("Suspend after (days past due)"),
        required=False,
        help_text=gettext_lazy("Empty: never suspend."),
        widget=forms.NumberInput(attrs={"inputmode": "numeric"}),
    )
    uncollectible_after_days = forms.IntegerField(
        label=gettext_lazy("Write off after (days past due)"),
        required=False,
        help_text=gettext_lazy("Empty: never write off."),
        widget=forms.NumberInput(attrs={"inputmode": "numeric"}),
    )
    bill_while_suspended = forms.BooleanField(
        label=gettext_lazy("Keep billing suspended subscriptions"), required=False
    )
    pay_url = forms.URLField(
        label=gettext_lazy("Pay link"),
        required=False,
        max_length=500,
        assume_scheme="https",
        help_text=gettext_lazy("The page where customers pay, linked from reminder e-mails."),
    )

    def error_message(self, error: Any) -> Any:
        return POLICY_ERRORS.get(error.code, error.message)

    def policy_values(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "retry_days": data["retry_days"],
            "reminder_days": data["reminder_days"],
            "suspend_after_days": data["suspend_after_days"],
            "uncollectible_after_days": data["uncollectible_after_days"],
        }
