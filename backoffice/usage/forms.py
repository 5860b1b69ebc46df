"""The date range of the usage explorer."""

import calendar
from datetime import date
from typing import Any

from django import forms
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from backoffice.forms import InputRulesMixin, year_validator

# A bar per day: a year is the most a chart can show legibly.
MAX_DAYS = 366
MIN_YEAR, MAX_YEAR = 2000, 2999


def month_of(day: date) -> tuple[date, date]:
    """The first and last days of the month of ``day``."""
    return day.replace(day=1), day.replace(day=calendar.monthrange(day.year, day.month)[1])


class RangeForm(InputRulesMixin, forms.Form):
    """The first and last local days shown (both included); empty means the current month."""

    start = forms.DateField(
        label=gettext_lazy("First day"),
        required=False,
        input_formats=["%Y-%m-%d"],
        widget=forms.DateInput(attrs={"type": "date", "id": "usage-start"}, format="%Y-%m-%d"),
    )
    end = forms.DateField(
        label=gettext_lazy("Last day"),
        required=False,
        input_formats=["%Y-%m-%d"],
        widget=forms.DateInput(attrs={"type": "date", "id": "usage-end"}, format="%Y-%m-%d"),
    )

    def __init__(self, *args: Any, today: date, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.today = today

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        in_range = year_validator(
            lowest=MIN_YEAR, highest=MAX_YEAR, message=gettext_lazy("Enter a date between %(min)s and %(max)s.")
        )
        for name in ("start", "end"):
            try:
                in_range(data.get(name))
            except forms.ValidationError as error:
                self.add_error(name, error)
        if self.errors:
            return data
        start = data.get("start") or month_of(self.today)[0]
        end = data.get("end") or month_of(start)[1]
        if end < start:
            self.add_error("end", _("The last day is before the first day."))
        elif (end - start).days + 1 > MAX_DAYS:
            self.add_error("end", _("Show at most %(days)s days at once.") % {"days": MAX_DAYS})
        data["start"], data["end"] = start, end
        return data
