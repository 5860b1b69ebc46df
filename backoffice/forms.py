"""Forms of the back-office's own pages (API keys) and what every domain's forms share: the
input rules (no control characters, no date outside 1900-9999), the service errors put back on the
form, datetime-local fields read in the tenant's time zone, and the year-range check."""

import re
from collections.abc import Callable, Iterable
from datetime import date
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

import pycountry
from babel import Locale
from babel.numbers import get_currency_name
from django import forms
from django.utils import timezone, translation
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from billing_platform.errors import DomainError, FieldError, InvalidInput
from billing_platform.money import is_known_currency, iso_currency_codes
from billing_platform.validation import (
    EARLIEST_YEAR,
    LATEST_YEAR,
    date_in_range,
    find_refused_character,
    is_country,
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


# --- countries, currencies and time zones as choices ----------------------------------------
# Typed as free text, "France" in a two-letter box became "Fr": these are selects, their names in
# the reader's language (Babel's CLDR data), and the server still refuses any code not listed.


def _babel_locale() -> Any:
    return Locale.parse(translation.to_locale(translation.get_language() or "en"))


def country_choices() -> list[tuple[str, str]]:
    """ISO 3166-1 alpha-2 countries (the codes ``validate_country`` accepts), by their name in the
    reader's language: ("FR", "France — FR")."""
    names = _babel_locale().territories
    codes = sorted(c.alpha_2 for c in pycountry.countries if is_country(c.alpha_2))
    rows = [(code, "%s — %s" % (names.get(code, code), code)) for code in codes]
    return sorted(rows, key=lambda row: row[1].casefold())


def currency_choices(first: Iterable[str] = ()) -> list[Any]:
    """ISO 4217 currencies by their name in the reader's language; the codes in ``first`` (the
    tenant's own currencies) come first in their own group."""
    locale = _babel_locale()

    def label(code: str) -> str:
        return "%s — %s" % (code, get_currency_name(code, locale=locale))

    preferred = [c for c in dict.fromkeys(first) if is_known_currency(c)]
    others = [(c, label(c)) for c in iso_currency_codes() if c not in preferred]
    if not preferred:
        return others
    return [(_("Your currencies"), [(c, label(c)) for c in preferred]), (_("All currencies"), others)]


@cache
def _timezone_names() -> frozenset[str]:
    return frozenset(available_timezones())


def timezone_choices() -> list[Any]:
    """IANA time zones grouped by their area (Africa, America, Europe…), sorted; UTC on its own."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for name in sorted(_timezone_names()):
        area, sep, rest = name.partition("/")
        if not sep or area in ("Etc", "SystemV", "US", "Canada", "Mexico", "Brazil", "Chile"):
            continue  # aliases and legacy names: each place has its Area/City name
        groups.setdefault(area, []).append((name, rest.replace("_", " ")))
    return [("UTC", "UTC"), *((area, zones) for area, zones in sorted(groups.items()))]


class CodeChoiceField(forms.ChoiceField):
    """A select whose value is a code; what is posted is read without surrounding spaces and in
    the code's case, so "fr" is "FR", but a name ("France") is still refused."""

    upper = True

    def to_python(self, value: Any) -> str:
        text = super().to_python(value).strip()
        # Only a code changes case: a name typed instead ("France") is refused as it was typed.
        return text.upper() if self.upper and len(text) <= 3 else text


class CountryField(CodeChoiceField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=lambda: [("", "—"), *country_choices()], **kwargs)
        self.error_messages["invalid_choice"] = _(
            "Choose a country from the list (%(value)s is not an ISO 3166 country code)."
        )


class CurrencyField(CodeChoiceField):
    def __init__(self, *, first: Iterable[str] = (), **kwargs: Any) -> None:
        first = tuple(first)
        super().__init__(choices=lambda: [("", "—"), *currency_choices(first)], **kwargs)
        self.error_messages["invalid_choice"] = _(
            "Choose a currency from the list (%(value)s is not an ISO 4217 currency code)."
        )

    def set_first(self, first: Iterable[str]) -> None:
        """Puts the tenant's own currencies first (known once the form knows its tenant)."""
        first = tuple(first)
        self.choices = lambda: [("", "—"), *currency_choices(first)]


class TimeZoneField(CodeChoiceField):
    upper = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=lambda: [("", "—"), *timezone_choices()], **kwargs)
        self.error_messages["invalid_choice"] = _("Choose a time zone from the list (%(value)s is not one).")

    def valid_value(self, value: Any) -> bool:
        # Every IANA name is accepted (links such as US/Eastern too), even those the list leaves out.
        return str(value) in _timezone_names()

    def keep(self, current: str | None) -> None:
        """Lists ``current`` (a stored legacy name such as US/Eastern the list leaves out) so that
        editing a record does not silently change it."""
        if current and current in _timezone_names() and current not in _listed_timezones():
            self.choices = lambda: [("", "—"), (current, current), *timezone_choices()]


@cache
def _listed_timezones() -> frozenset[str]:
    return frozenset(name for group in timezone_choices()[1:] for name, _label in group[1]) | {"UTC"}


def tenant_currencies(tenant: Any) -> list[str]:
    """The tenant's currencies: its default one, then those its customers and price books use."""
    from catalog.models import PriceVersion  # noqa: PLC0415 (catalog models load after the app registry)

    used = PriceVersion.objects.filter(tenant=tenant).values_list("currency", flat=True).distinct()
    return [tenant.default_currency, *sorted(set(used) - {tenant.default_currency})]


def error_summary(*forms_: Any) -> list[dict[str, Any]]:
    """The errors of one or more bound forms as the summary at the top of a page lists them: each
    with its field's label and the id of its input (a link to it), form-wide errors first."""
    rows: list[dict[str, Any]] = []
    for form in forms_:
        if form is None or not form.is_bound:
            continue
        rows.extend({"label": "", "anchor": "", "message": e} for e in form.non_field_errors())
        for name, field in form.fields.items():
            bound = form[name]
            for message in bound.errors:
                rows.append({"label": field.label, "anchor": bound.auto_id, "message": message})
    return rows
