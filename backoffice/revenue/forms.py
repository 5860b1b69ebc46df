"""The revenue pages' filters: a range of months and a journal period, as ``YYYY-MM`` (a month
input where the browser has one, text with a pattern elsewhere)."""

from datetime import date
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy, pgettext_lazy

from backoffice.forms import InputRulesMixin
from revrec.api.views import MAX_MONTHS
from revrec.models import JournalSource


def month_input() -> forms.TextInput:
    return forms.TextInput(attrs={"type": "month", "pattern": "[0-9]{4}-[0-9]{2}", "placeholder": "YYYY-MM"})


class MonthField(forms.Field):
    """A calendar month, ``YYYY-MM`` between 1900 and 9999, cleaned to its first day (anything else,
    control characters included, is refused)."""

    default_error_messages = {"invalid": gettext_lazy("Enter a month as YYYY-MM.")}

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("widget", month_input())
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> date | None:
        text = str(value or "").strip()
        if not text:
            return None
        year, _, month = text.partition("-")
        if len(year) == 4 and len(month) == 2 and year.isdigit() and month.isdigit() and year.isascii():
            if 1900 <= int(year) <= 9999 and 1 <= int(month) <= 12:
                return date(int(year), int(month), 1)
        raise forms.ValidationError(self.error_messages["invalid"], code="invalid")

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, date):
            return "%04d-%02d" % (value.year, value.month)
        return value


class MonthRangeForm(InputRulesMixin, forms.Form):
    start = MonthField(label=pgettext_lazy("first month", "From"))
    end = MonthField(label=pgettext_lazy("last month", "To"))

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("start"), data.get("end")
        if start is not None and end is not None:
            span = (end.year - start.year) * 12 + end.month - start.month + 1
            if span < 1:
                self.add_error("start", gettext_lazy("The first month comes after the last."))
            elif span > MAX_MONTHS:
                self.add_error("start", gettext_lazy("At most %(n)d months.") % {"n": MAX_MONTHS})
        return data


class JournalFilterForm(InputRulesMixin, forms.Form):
    period = MonthField(label=gettext_lazy("Period"))
    source_type = forms.ChoiceField(
        label=gettext_lazy("Source"),
        required=False,
        choices=[
            ("", pgettext_lazy("journal source", "All")),
            (JournalSource.INVOICE, pgettext_lazy("journal source", "Invoice")),
            (JournalSource.RECOGNITION, pgettext_lazy("journal source", "Recognition")),
            (JournalSource.PAYMENT, pgettext_lazy("journal source", "Payment")),
        ],
    )
