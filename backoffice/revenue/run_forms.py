"""The forms of the revenue runs and ERP export pages: a month, and a new ERP export target."""

import re
from datetime import date
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from revrec.models import ExportFormat

MONTH = re.compile(r"^(19|[2-9][0-9])[0-9]{2}-(0[1-9]|1[0-2])$")


class MonthField(forms.CharField):
    """``YYYY-MM`` (the value of ``<input type="month">``) as the first day of the month."""

    def to_python(self, value: Any) -> date | None:  # type: ignore[override]
        text = super().to_python(value)
        if not text:
            return None
        if len(text) > 7 or not MONTH.match(text):
            raise forms.ValidationError(_("Enter a month as YYYY-MM."), code="invalid")
        year, month = text.split("-")
        return date(int(year), int(month), 1)


class MonthForm(forms.Form):
    period = MonthField(
        label=_("Month"),
        widget=forms.TextInput(
            attrs={"type": "month", "placeholder": "YYYY-MM", "pattern": r"\d{4}-\d{2}", "maxlength": "7"}
        ),
    )


class ExportTargetForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=100, help_text=_("The ERP's name, unique in your organization."))
    format = forms.ChoiceField(label=_("Format"), choices=ExportFormat.choices)
