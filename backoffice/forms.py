"""Forms of the back-office's own pages (API keys) and what every domain's forms share: the
input rules (no control characters, no date outside 1900-9999), the service errors put back on the
form, datetime-local fields read in the tenant's time zone, and the year-range check."""

import re
from collections.abc import Callable
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from django import forms
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from billing_platform.errors import DomainError, FieldError, InvalidInput
from billing_platform.validation import (
    EARLIEST_YEAR,
    LATEST_YEAR,
    date_in_range,
    find_refused_character,
    validate_year,
)
from tenancy.models import ApiKeyScope

DATETIME_LOCAL_FORMAT = "%Y-%m-%dT%H:%M"
DATETIME_INPUT_FORMATS = [DATETIME_LOCAL_FORMAT, "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"]


def field_root(path: str) -> str:
    """``components[0].product`` -> ``components``; ``time_bands.peak`` -> ``time_bands``."""
    return re.split(r"[.\[]", path, maxsplit=1)[0]


def text_validator(*, multiline: bool) -> Callable[[Any], None]:
    """Refuses a text holding a character no text may hold (``refused_character``: control
    characters, NUL, unpaired surrogates); a multi-line text keeps tab and line breaks."""

    def validate(value: Any) -> None:
        found = find_refused_character(value, multiline=multiline) if isinstance(value, str) else None
        if found is not None:
            raise forms.ValidationError(
                _("Remove the invisible character %(character)s: it cannot be printed or stored."),
                code="control_character",
                params={"character": "U+%04X" % ord(found.group())},
            )

    return validate


def date_range_validator(value: Any) -> None:
    if value is not None and not date_in_range(value):
        raise forms.ValidationError(
            _("Use a date between the years %(min)s and %(max)s."),
            code="out_of_range",
            params={"min": EARLIEST_YEAR, "max": LATEST_YEAR},
        )


class InputRulesMixin:
    """The input rules of every back-office form, the API's own (``billing_platform.validation``): no
    text field holds a control character (a multi-line text box keeps tab and line breaks), and no
    date or instant falls outside the years 1900 to 9999. Put it first among a form's bases."""

    fields: dict[str, forms.Field]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            if isinstance(field, forms.CharField):
                field.validators.append(text_validator(multiline=isinstance(field.widget, forms.Textarea)))
            elif isinstance(field, forms.DateField | forms.DateTimeField):
                if not any(getattr(v, "checks_year", False) for v in field.validators):  # a narrower range
                    field.validators.append(date_range_validator)


class DomainErrorFormMixin:
    """Puts a service's field errors on the matching form field (by the root of their path); the
    others, and errors without fields, become form-wide errors that keep their full path."""

    fields: dict[str, forms.Field]

    def error_field(self, path: str) -> str:
        """The form's name for a service field path (a hook for forms that rename fields)."""
        return path

    def error_message(self, error: FieldError) -> Any:
        """What the form says for a service error (a hook for forms that translate the services' English)."""
        return error.message

    def apply_domain_errors(self, exc: DomainError) -> None:
        form: Any = self
        for error in exc.errors:
            message = self.error_message(error)
            path = self.error_field(error.field)
            root = field_root(path)
            if root in self.fields and root == path:
                form.add_error(root, message)
            elif root in self.fields:
                form.add_error(root, "%s: %s" % (error.field, message))
            else:
                form.add_error(None, "%s: %s" % (error.field, message) if error.field else message)
        if not exc.errors or not isinstance(exc, InvalidInput):
            # A conflict ("code taken") says more in its detail than in its one-word field error.
            form.add_error(None, exc.detail)


class LocalTimeMixin:
    """datetime-local values have no offset: they are read in the tenant's time zone, not the server's."""

    tz: ZoneInfo

    def full_clean(self) -> None:
        with timezone.override(self.tz):
            super().full_clean()  # type: ignore[misc]


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

    validate.checks_year = True  # type: ignore[attr-defined]
    return validate


# Without the input rules: it stores nothing, and a password is a secret, not a text.
class ApiKeyForm(InputRulesMixin, forms.Form):
    name = forms.CharField(
        label=_("Name"), max_length=100, help_text=_("What will use this key, e.g. 'Device cloud prod'.")
    )
    scope = forms.ChoiceField(label=_("Scope"), choices=ApiKeyScope.choices)
