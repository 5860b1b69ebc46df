"""Forms of the catalog pages. They only parse what a person types (JSON, comma-separated lists,
"key=value" pairs, a local date and time) into the shapes the catalog services take; the services
validate the catalog rules, and their field errors are put back on the form."""

from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django import forms
from django.utils.translation import gettext_lazy as _
from djmoney.money import Money

from backoffice.forms import (
    DATETIME_INPUT_FORMATS,
    DATETIME_LOCAL_FORMAT,
    CountryField,
    CurrencyField,
    DomainErrorFormMixin,
    InputRulesMixin,
    LocalTimeMixin,
    country_choices,
    field_root,
    tenant_currencies,
)
from billing_platform.errors import DomainError, FieldError
from billing_platform.json_input import JsonTooDeep, json_load, max_json_depth
from billing_platform.validation import find_refused_character, json_strings
from catalog.errors import TaxRatePeriodOverlap
from catalog.models import Aggregation, ProductKind, RevenueTreatment, TaxCategory

MAX_USAGE_ROWS = 50


def _parse_json(value: str, *, empty: Any, multiline: frozenset[str] = frozenset()) -> Any:
    """The JSON typed in a text box, read as the API reads a body (``json_load``: nested at most
    ``JSON_MAX_DEPTH`` levels), and holding no text the API would refuse: no control characters,
    except tab and line breaks in the strings at the paths named in ``multiline``."""
    if not value.strip():
        return empty
    try:
        data = json_load(value)
    except JsonTooDeep:
        raise forms.ValidationError(
            _("The JSON is nested more than %(levels)s levels deep."),
            code="json_too_deep",
            params={"levels": max_json_depth()},
        ) from None
    except ValueError as exc:
        raise forms.ValidationError(
            _("Not valid JSON (line %(line)s, column %(column)s): %(error)s"),
            code="invalid_json",
            params={"line": getattr(exc, "lineno", "?"), "column": getattr(exc, "colno", "?"), "error": exc},
        ) from None
    for path, text in json_strings(data):
        found = find_refused_character(text, multiline=path in multiline)
        if found is not None:
            raise forms.ValidationError(
                _("Remove the invisible character %(character)s from %(path)s: it cannot be printed or stored."),
                code="control_character",
                params={"character": "U+%04X" % ord(found.group()), "path": path or "JSON"},
            )
    return data


def _comma_list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


# --- products -------------------------------------------------------------------------------


class SspFieldsMixin:
    cleaned_data: dict[str, Any]

    def error_field(self, path: str) -> str:
        # The service names SSP errors "ssp[0].currency"; these forms have one pair of SSP fields.
        return "ssp_" + path.rsplit(".", 1)[-1] if path.startswith("ssp[") else path

    def clean_ssp_currency(self) -> str:
        return str(self.cleaned_data.get("ssp_currency") or "").strip().upper()

    def clean(self) -> dict[str, Any]:
        # An amount needs its currency.
        form: Any = self
        cleaned: dict[str, Any] = super().clean() or {}  # type: ignore[misc]
        if self.cleaned_data.get("ssp_amount") is not None and not self.cleaned_data.get("ssp_currency"):
            form.add_error("ssp_currency", _("Give the currency of the standalone selling price."))
        return cleaned


class ProductForm(InputRulesMixin, SspFieldsMixin, DomainErrorFormMixin, forms.Form):
    code = forms.CharField(
        label=_("Code"),
        max_length=100,
        help_text=_("Letters, digits, '.', '_' or '-'. It cannot change later: invoices refer to it."),
    )
    name = forms.CharField(label=_("Name"), max_length=200)
    kind = forms.ChoiceField(label=_("Kind"), choices=ProductKind.choices)
    tax_category = forms.ChoiceField(label=_("Tax category"), choices=TaxCategory.choices)
    revenue_treatment = forms.ChoiceField(
        label=_("Revenue treatment"),
        choices=[("", _("Default for the kind")), *RevenueTreatment.choices],
        required=False,
        help_text=_("Hardware and fees: point in time; services: ratable; usage: as consumed."),
    )
    ssp_currency = CurrencyField(label=_("SSP currency"), required=False)
    ssp_amount = forms.DecimalField(
        label=_("Standalone selling price"),
        required=False,
        min_value=Decimal(0),
        max_digits=19,
        decimal_places=4,
        help_text=_("Optional; the basis of revenue allocation (ASC 606)."),
    )

    def service_kwargs(self) -> dict[str, Any]:
        data = self.cleaned_data
        ssp = []
        if data.get("ssp_amount") is not None:
            ssp.append({"currency": data["ssp_currency"], "amount": str(data["ssp_amount"])})
        return {
            "code": data["code"].strip(),
            "name": data["name"],
            "kind": data["kind"],
            "tax_category": data["tax_category"],
            "revenue_treatment": data.get("revenue_treatment") or None,
            "ssp": ssp,
        }


class ProductEditForm(InputRulesMixin, SspFieldsMixin, DomainErrorFormMixin, forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200)
    tax_category = forms.ChoiceField(label=_("Tax category"), choices=TaxCategory.choices)
    revenue_treatment = forms.ChoiceField(label=_("Revenue treatment"), choices=RevenueTreatment.choices)
    ssp_currency = CurrencyField(label=_("SSP currency"), required=False)
    ssp_amount = forms.DecimalField(
        label=_("Standalone selling price"),
        required=False,
        min_value=Decimal(0),
        max_digits=19,
        decimal_places=4,
        help_text=_("Sets the SSP in this currency; SSPs in other currencies are kept. Empty: removes it."),
    )

    def changes(self, current_ssp: list[Money]) -> dict[str, Any]:
        """The ``changes`` for ``product_update``; its ``ssp`` replaces the whole list, so the SSPs
        in other currencies are carried over unchanged."""
        data = self.cleaned_data
        currency = data.get("ssp_currency") or ""
        ssp = [
            {"currency": m.currency.code, "amount": str(m.amount)} for m in current_ssp if m.currency.code != currency
        ]
        if currency and data.get("ssp_amount") is not None:
            ssp.append({"currency": currency, "amount": str(data["ssp_amount"])})
        return {
            "name": data["name"],
            "tax_category": data["tax_category"],
            "revenue_treatment": data["revenue_treatment"],
            "ssp": sorted(ssp, key=lambda s: s["currency"]),
        }


# --- meters ---------------------------------------------------------------------------------


ACCEPTS_NEGATIVE_HELP = _(
    "Sum, max and latest meters only. Unticked, an event whose field is negative is rejected, so that a "
    "client's mistake cannot lower a bill; tick it for a net quantity or a temperature."
)


class MeterForm(InputRulesMixin, DomainErrorFormMixin, forms.Form):
    code = forms.CharField(
        label=_("Code"),
        max_length=100,
        help_text=_("The code events are sent with, e.g. data_mb. It cannot change later."),
    )
    name = forms.CharField(label=_("Name"), max_length=200)
    aggregation = forms.ChoiceField(label=_("Aggregation"), choices=Aggregation.choices)
    field = forms.CharField(
        label=_("Field"),
        max_length=100,
        required=False,
        help_text=_("The event property to aggregate, e.g. mb. Empty for a count."),
    )
    dimensions = forms.CharField(
        label=_("Dimensions"),
        required=False,
        widget=forms.TextInput(attrs={"placeholder": "device_type, region"}),
        help_text=_("Event properties that prices may depend on, separated by commas."),
    )
    filters = forms.CharField(
        label=_("Filters (JSON)"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": '{"direction": "uplink"}', "class": "tp-code"}),
        help_text=_("Only events whose properties equal these values count."),
    )
    time_bands = forms.CharField(
        label=_("Time bands (JSON)"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": '{"peak": ["08:00", "20:00"]}', "class": "tp-code"}),
        help_text=_("In the customer's time zone; any time outside every band is off_peak."),
    )
    accepts_negative = forms.BooleanField(
        label=_("Accepts negative values"),
        required=False,
        help_text=ACCEPTS_NEGATIVE_HELP,
    )

    def clean_dimensions(self) -> list[str]:
        return _comma_list(self.cleaned_data.get("dimensions") or "")

    def clean_filters(self) -> Any:
        return _parse_json(self.cleaned_data.get("filters") or "", empty={})

    def clean_time_bands(self) -> Any:
        return _parse_json(self.cleaned_data.get("time_bands") or "", empty={})

    def service_kwargs(self) -> dict[str, Any]:
        data = dict(self.cleaned_data)
        data["code"] = data["code"].strip()
        data["field"] = data["field"].strip()
        return data


class MeterEditForm(InputRulesMixin, DomainErrorFormMixin, forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200)
    accepts_negative = forms.BooleanField(
        label=_("Accepts negative values"),
        required=False,
        help_text=ACCEPTS_NEGATIVE_HELP,
    )


# --- tax rates ------------------------------------------------------------------------------


class TaxRateForm(InputRulesMixin, DomainErrorFormMixin, forms.Form):
    country = CountryField(label=_("Country"))
    tax_category = forms.ChoiceField(label=_("Tax category"), choices=TaxCategory.choices)
    rate = forms.DecimalField(
        label=_("Rate (%)"), min_value=Decimal(0), max_value=Decimal(100), max_digits=7, decimal_places=4
    )
    valid_from = forms.DateField(
        label=_("Valid from"),
        required=False,
        help_text=_("The first day the rate applies; empty: the rate's only period (or since always)."),
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    valid_to = forms.DateField(
        label=_("Valid until"),
        required=False,
        help_text=_("The last day the rate applies (included); empty: open-ended."),
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )

    def error_message(self, error: FieldError) -> Any:
        messages = {
            ("valid_from", "overlap"): _(
                "This period shares days with another period of this country and category: end that period "
                "first (its first day with a last day), or choose other days."
            ),
            ("valid_from", "required"): _("This rate has several periods: give the first day of the one to change."),
            ("valid_to", "before_valid_from"): _("The last day comes on or after the first day."),
        }
        return messages.get((error.field, error.code), error.message)

    def apply_domain_errors(self, exc: DomainError) -> None:
        if not isinstance(exc, TaxRatePeriodOverlap):
            super().apply_domain_errors(exc)
            return
        # The translated field errors say it all; the detail would add the same in English.
        overlapping = exc.extra.get("overlapping") or {}
        for error in exc.errors:
            self.add_error("valid_from", self.error_message(error))
        values = {
            "rate": format(Decimal(str(overlapping.get("rate", "0"))).normalize(), "f"),
            "start": overlapping.get("valid_from", ""),
            "end": overlapping.get("valid_to") or "",
        }
        if values["end"]:
            message = _("It overlaps the rate of %(rate)s %% valid from %(start)s to %(end)s.") % values
        else:
            message = _("It overlaps the rate of %(rate)s %% valid from %(start)s, with no end.") % values
        self.add_error("valid_from", message)


# --- plans and price versions ---------------------------------------------------------------

PLAN_FIELDS = frozenset(
    {
        "code",
        "name",
        "description",
        "interval",
        "trial_days",
        "commitment_months",
        "self_service",
        "partner_visible",
        "components",
        "prices",
    }
)


class PlanJsonForm(InputRulesMixin, forms.Form):
    definition = forms.CharField(
        label=_("Plan (JSON)"),
        widget=forms.Textarea(attrs={"rows": 28, "class": "tp-code", "spellcheck": "false"}),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Errors with the path of the JSON field they are about, as the API reports them.
        self.path_errors: list[tuple[str, str]] = []

    def clean_definition(self) -> dict[str, Any]:
        data = _parse_json(self.cleaned_data["definition"], empty=None, multiline=frozenset({"description"}))
        if not isinstance(data, dict):
            raise forms.ValidationError(_("The plan is a JSON object."), code="invalid")
        return data

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        data = cleaned.get("definition")
        if not isinstance(data, dict):
            return cleaned
        for name in sorted(set(data) - PLAN_FIELDS):
            self.add_path_error(name, _("Unknown field."))
        for name in ("code", "name"):
            if not isinstance(data.get(name), str) or not data[name].strip():
                self.add_path_error(name, _("Required: a string."))
        for name in ("description", "interval"):
            if name in data and not isinstance(data[name], str):
                self.add_path_error(name, _("Must be a string."))
        for name, top in (("trial_days", 3650), ("commitment_months", 240)):
            value = data.get(name, 0)
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= top:
                self.add_path_error(name, _("A whole number from 0 to %(max)s.") % {"max": top})
        for name in ("self_service", "partner_visible"):
            if name in data and not isinstance(data[name], bool):
                self.add_path_error(name, _("Must be true or false."))
        if "components" not in data:
            self.add_path_error("components", _("A plan needs at least one component."))
        components = data.get("components")
        for i, component in enumerate(components if isinstance(components, list) else []):
            # Codes are looked up by value: only strings can name a product or a meter.
            for name in ("product", "meter"):
                if isinstance(component, dict) and name in component and not isinstance(component[name], str):
                    self.add_path_error("components[%d].%s" % (i, name), _("Must be a code (a string)."))
        if self.path_errors:
            raise forms.ValidationError(_("The plan has errors; see the list."), code="invalid")
        return cleaned

    def add_path_error(self, path: str, message: object) -> None:
        self.path_errors.append((path, str(message)))

    def apply_domain_errors(self, exc: DomainError) -> None:
        for error in exc.errors:
            self.add_path_error(error.field, error.message)
        self.add_error(None, exc.detail)

    def service_kwargs(self) -> dict[str, Any]:
        data = dict(self.cleaned_data["definition"])
        data["code"] = data["code"].strip()
        return data


class PriceVersionForm(InputRulesMixin, LocalTimeMixin, DomainErrorFormMixin, forms.Form):
    """The version's own fields; its component prices are rows of ``backoffice.catalog.price_change``."""

    currency = CurrencyField(label=_("Currency"))
    price_book = forms.CharField(
        label=_("Partner price book"),
        required=False,
        max_length=64,
        help_text=_(
            "Empty: the tenant's own prices. A code (e.g. wholesale): the prices of the customers of partners "
            "with this price book."
        ),
    )
    regions = forms.MultipleChoiceField(
        label=_("Regions"),
        required=False,
        choices=country_choices,
        widget=forms.SelectMultiple(attrs={"size": 6}),
        help_text=_("The countries of a regional price book; none for the default price book of the currency."),
    )
    effective_from = forms.DateTimeField(
        label=_("Effective from"),
        input_formats=DATETIME_INPUT_FORMATS,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=DATETIME_LOCAL_FORMAT),
    )
    confirm_past = forms.BooleanField(
        label=_("I understand: this version takes effect in the past."),
        required=False,
    )

    def __init__(self, *args: Any, tz: ZoneInfo, tenant: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tz = tz
        self.fields["effective_from"].help_text = _(
            "Every billing period that starts at or after this instant uses the new prices. "
            "Time in the tenant's time zone (%(tz)s)."
        ) % {"tz": tz.key}
        self.fields["regions"].error_messages["invalid_choice"] = _(
            "Choose countries from the list (%(value)s is not an ISO 3166 country code)."
        )
        if tenant is not None:
            self.fields["currency"].set_first(tenant_currencies(tenant))  # type: ignore[attr-defined]

    def clean_regions(self) -> list[str] | None:
        return sorted(self.cleaned_data.get("regions") or []) or None

    def clean_price_book(self) -> str:
        return str(self.cleaned_data.get("price_book") or "").strip()

    def apply_domain_errors_list(self, errors: list[FieldError]) -> None:
        for error in errors:
            name = field_root(error.field)
            if name in self.fields and name not in self.errors:
                self.add_error(name, error.message if name == error.field else "%s: %s" % (error.field, error.message))
            elif name not in self.fields:
                self.add_error(None, "%s: %s" % (error.field, error.message) if error.field else error.message)


def parse_json(value: str, *, empty: Any) -> Any:
    """A JSON text box read as the API reads a body (see ``_parse_json``)."""
    return _parse_json(value, empty=empty)


# --- price calculator -----------------------------------------------------------------------


class CalculatorForm(InputRulesMixin, forms.Form):
    plan = forms.ChoiceField(label=_("Plan"))
    currency = CurrencyField(label=_("Currency"))
    region = CountryField(
        label=_("Region (country)"),
        required=False,
        help_text=_("Picks the regional price book and the tax rates."),
    )
    devices = forms.IntegerField(label=_("Devices"), min_value=0, max_value=10_000_000)
    customer = forms.CharField(
        label=_("Customer (external ID)"),
        max_length=200,
        required=False,
        help_text=_("Optional: applies the customer's negotiated prices."),
    )

    def __init__(self, *args: Any, plans: list[tuple[str, str]], tenant: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["plan"].choices = plans  # type: ignore[attr-defined]
        if tenant is not None:
            self.fields["currency"].set_first(tenant_currencies(tenant))  # type: ignore[attr-defined]

    def clean_region(self) -> str | None:
        return str(self.cleaned_data.get("region") or "").strip().upper() or None

    def clean_customer(self) -> str | None:
        return str(self.cleaned_data.get("customer") or "").strip() or None


class UsageRowForm(InputRulesMixin, forms.Form):
    meter = forms.ChoiceField(label=_("Meter"), required=False)
    quantity = forms.DecimalField(
        label=_("Quantity"), required=False, min_value=Decimal(0), max_digits=28, decimal_places=10
    )
    dimensions = forms.CharField(
        label=_("Dimensions"),
        required=False,
        max_length=500,
        widget=forms.TextInput(attrs={"placeholder": "device_type=tracker, region=EU"}),
    )
    events = forms.IntegerField(label=_("Events"), required=False, min_value=0, max_value=10**12)

    def __init__(self, *args: Any, meters: list[tuple[str, str]] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["meter"].choices = [("", "—"), *(meters or [])]  # type: ignore[attr-defined]
        # A row's fields sit under the table's column heads, not beside a label: each names itself.
        for field in self.fields.values():
            field.widget.attrs.setdefault("aria-label", str(field.label))

    def clean_dimensions(self) -> dict[str, str]:
        pairs: dict[str, str] = {}
        for item in _comma_list(self.cleaned_data.get("dimensions") or ""):
            key, sep, value = item.partition("=")
            if not sep or not key.strip() or not value.strip():
                raise forms.ValidationError(
                    _("Write key=value pairs separated by commas, e.g. device_type=tracker, region=EU."),
                    code="invalid",
                )
            pairs[key.strip()] = value.strip()
        return pairs

    def is_used(self) -> bool:
        """A row counts once it names a meter and a quantity; half-filled rows are ignored."""
        return bool(self.cleaned_data.get("meter")) and self.cleaned_data.get("quantity") is not None


UsageFormSet = forms.formset_factory(
    UsageRowForm, extra=0, max_num=MAX_USAGE_ROWS, absolute_max=MAX_USAGE_ROWS, validate_max=True
)
