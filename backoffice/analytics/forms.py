"""Forms of the analytics pages: a range of months, the usage filters, one exchange rate, a CSV file
of rates."""

from datetime import date
from typing import Any

from django import forms
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from backoffice.forms import DomainErrorFormMixin, InputRulesMixin
from revrec.rates import parse_month

# The largest CSV file of rates accepted: far above ten years of a hundred currencies.
MAX_CSV_BYTES = 2 * 1024 * 1024


class MonthField(forms.Field):
    """``YYYY-MM`` (an ``<input type="month">``) as the month's first day."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("widget", forms.TextInput(attrs={"type": "month", "placeholder": "YYYY-MM", "maxlength": 7}))
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> date | None:
        text = str(value or "").strip()
        if not text:
            return None
        month = parse_month(text)
        if month is None:
            raise forms.ValidationError(_("A month is YYYY-MM."))
        return month


class MonthRangeForm(InputRulesMixin, forms.Form):
    start = MonthField(label=gettext_lazy("From"), required=False)
    end = MonthField(label=gettext_lazy("To"), required=False)


class UsageFilterForm(MonthRangeForm):
    meter = forms.ChoiceField(label=gettext_lazy("Meter"), required=False)
    group_by = forms.ChoiceField(
        label=gettext_lazy("Group by"),
        required=False,
        choices=[
            ("", gettext_lazy("No group")),
            ("device_type", gettext_lazy("Device type")),
            ("region", gettext_lazy("Region")),
            ("time_band", gettext_lazy("Time band")),
            ("customer", gettext_lazy("Customer")),
        ],
    )

    def __init__(self, *args: Any, meters: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["meter"].choices = [("", _("All meters")), *meters]  # type: ignore[attr-defined]


class ExchangeRateForm(InputRulesMixin, DomainErrorFormMixin, forms.Form):
    month = MonthField(label=gettext_lazy("Month"))
    currency = forms.CharField(
        label=gettext_lazy("Currency"), max_length=3, widget=forms.TextInput(attrs={"placeholder": "USD", "size": 4})
    )
    rate = forms.CharField(
        label=gettext_lazy("Rate"),
        max_length=40,
        help_text=gettext_lazy("One unit of the currency in the reporting currency."),
        widget=forms.TextInput(attrs={"inputmode": "decimal", "placeholder": "0.92"}),
    )

    def error_field(self, path: str) -> str:
        # the service names rows (rates[0].rate); this form holds one
        return path.split(".", 1)[1] if path.startswith("rates[0].") else path


class RatesCsvForm(forms.Form):
    file = forms.FileField(
        label=gettext_lazy("CSV file"), help_text=gettext_lazy("Header month,currency,rate; one rate per line.")
    )

    def clean_file(self) -> str:
        upload = self.cleaned_data["file"]
        if upload.size > MAX_CSV_BYTES:
            raise forms.ValidationError(_("The file is larger than 2 MB."))
        try:
            text: str = upload.read().decode("utf-8")
        except UnicodeDecodeError:
            raise forms.ValidationError(_("The file is not UTF-8 text.")) from None
        return text
