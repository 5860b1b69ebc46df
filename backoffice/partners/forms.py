"""Forms of the partner pages: the list's filters, a partner's details with its commission plan, and
a partner user's invitation. ``partners.services`` checks the rules, as for the API.

The commission plan is typed as one text per leg: ``20`` for a flat 20 %, or ``20 up to 10000;
25`` for tiers graduated by the partner's net collected on the leg in the month (20 % of the first
10,000.00, 25 % above); an empty leg earns nothing. The text is read into the API's JSON
(``{"tiers": [{"up_to": "10000", "rate": "20"}, {"up_to": null, "rate": "25"}]}``) and written
back from it, so the page and the API store the same plan."""

import re
from typing import Any

from django import forms
from django.db.models import Count, Q, QuerySet
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from backoffice.forms import (
    ApiKeyForm,
    CountryField,
    CurrencyField,
    DomainErrorFormMixin,
    InputRulesMixin,
    tenant_currencies,
)
from backoffice.pages import clean_text
from billing_platform.errors import FieldError, InvalidInput
from catalog.models import PriceVersion
from customers.models import Language, Partner, PartnerStatus
from customers.partners import partner_list
from partners.models import PartnerRole
from partners.plans import LEGS, commission_plan_parse
from partners.services import CODE_RE
from tenancy.models import Tenant

LEG_LABELS = {
    "hardware": _("Hardware commission"),
    "service": _("Service commission"),
    "usage": _("Usage commission"),
    "fee": _("Fees commission"),
}
# "up to" as typed in either language; "jusqu'à" with a straight or a curly apostrophe.
UP_TO = re.compile(r"\s+(?:up\s+to|jusqu['’]?\s*à|jusqu['’]?\s*a)\s+", re.IGNORECASE)
# The services' field errors, as the pages say them.
MESSAGES = {
    ("code", "invalid_format"): _("Start with a letter or digit and use only letters, digits and . _ - (no spaces)."),
    ("code", "taken"): _("Another partner already has this code."),
    ("currency", "currency_locked"): _("The currency cannot change once the partner has commission statements."),
    ("price_book", "invalid_format"): _(
        "A price book's code uses lower-case letters, digits, _ and -, up to 64 characters."
    ),
}
PLAN_MESSAGES = {
    "invalid_rate": _("A rate is a percentage from 0 to 100."),
    "invalid_up_to": _("Each tier's upper bound is a positive amount above the one before; the last tier has none."),
    "invalid_tiers": _("Write a rate, or tiers such as: 20 up to 10000; 25."),
    "invalid_tier": _("Write a rate, or tiers such as: 20 up to 10000; 25."),
}


class LegTextError(ValueError):
    pass


def _number(text: str) -> str:
    """A rate or an amount as typed: a comma is read as the decimal point, a % sign and spaces are
    left out ("20 %", "12,5"). What is left is checked by ``partners.plans``."""
    value = text.replace("%", "").replace("\u00a0", "").replace(" ", "").replace(",", ".")
    if not value:
        raise LegTextError(text)
    return value


def leg_from_text(text: str) -> Any:
    """The plan's JSON of one leg from its text: ``"20"``, or ``{"tiers": [...]}`` for ``20 up to
    10000; 25``; ``"0"`` for an empty text. ``LegTextError`` when the text is not one of these."""
    text = text.strip().rstrip(";").strip()
    if not text:
        return "0"
    parts = [p.strip() for p in text.split(";")]
    if len(parts) == 1 and not UP_TO.search(" %s " % parts[0]):
        return _number(parts[0])
    tiers: list[dict[str, str | None]] = []
    for index, part in enumerate(parts):
        pieces = UP_TO.split(" %s " % part)
        if len(pieces) == 2:
            tiers.append({"up_to": _number(pieces[1]), "rate": _number(pieces[0])})
        elif len(pieces) == 1 and index == len(parts) - 1:
            tiers.append({"up_to": None, "rate": _number(part)})
        else:
            raise LegTextError(text)
    if tiers[-1]["up_to"] is not None:
        raise LegTextError(text)  # "20 up to 10000" alone: nothing said above 10,000.00
    return {"tiers": tiers}


def leg_to_text(value: Any) -> str:
    """A leg of a stored plan as the form shows it, in the reader's language ("20 up to 10000.00; 25")."""
    if isinstance(value, dict):
        parts = []
        for tier in value.get("tiers", []):
            if tier.get("up_to") is None:
                parts.append(str(tier.get("rate", "")))
            else:
                parts.append("%s %s %s" % (tier.get("rate", ""), gettext("up to"), tier["up_to"]))
        return "; ".join(parts)
    return "" if value in (None, "") else str(value)


def plan_initial(plan: dict[str, Any]) -> dict[str, str]:
    return {"commission_%s" % leg: leg_to_text(plan.get(leg)) for leg in LEGS}


def price_books(tenant: Tenant) -> list[str]:
    """The partner price books the tenant's price versions name (catalog.PriceVersion.price_book)."""
    used = PriceVersion.objects.filter(tenant=tenant).exclude(price_book="").values_list("price_book", flat=True)
    return sorted(set(used))


class PartnerFilterForm(InputRulesMixin, forms.Form):
    q = forms.CharField(
        label=_("Search"),
        required=False,
        max_length=200,
        widget=forms.TextInput(attrs={"type": "search", "placeholder": _("Name, code or e-mail")}),
    )
    status = forms.ChoiceField(
        label=_("Status"), required=False, choices=[("", _("Any status")), *PartnerStatus.choices]
    )

    def __init__(self, *args: Any, tenant: Tenant, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tenant = tenant

    def partners(self) -> QuerySet[Partner]:
        """The partners the filters select (after ``is_valid``), by name, with their customers counted."""
        data = self.cleaned_data
        qs = partner_list(tenant=self.tenant, status=data.get("status") or None)
        text = clean_text(data.get("q") or "")
        if text:
            qs = qs.filter(Q(code__iexact=text) | Q(name__icontains=text) | Q(email__icontains=text))
        return qs.annotate(customer_count=Count("customers"))


class PartnerForm(InputRulesMixin, DomainErrorFormMixin, forms.Form):
    code = forms.CharField(
        label=_("Code"),
        max_length=100,
        help_text=_("The partner's identifier in the API (/partners/{code}); it cannot change."),
    )
    name = forms.CharField(label=_("Name"), max_length=200)
    email = forms.EmailField(label=_("E-mail address"), max_length=254, required=False)
    country = CountryField(label=_("Country"), required=False)
    currency = CurrencyField(
        label=_("Currency"), help_text=_("The currency of its statements; it cannot change once it has one.")
    )
    language = forms.ChoiceField(
        label=_("Language"), choices=Language.choices, help_text=_("The language of its statements.")
    )
    price_book = forms.CharField(
        label=_("Price book"),
        max_length=64,
        required=False,
        help_text=_("The code of the price book its customers are priced from; empty: the tenant's prices."),
    )
    status = forms.ChoiceField(label=_("Status"), choices=PartnerStatus.choices)
    commission_hardware = forms.CharField(label=LEG_LABELS["hardware"], max_length=200, required=False)
    commission_service = forms.CharField(label=LEG_LABELS["service"], max_length=200, required=False)
    commission_usage = forms.CharField(label=LEG_LABELS["usage"], max_length=200, required=False)
    commission_fee = forms.CharField(label=LEG_LABELS["fee"], max_length=200, required=False)

    PLAN_FIELDS = tuple("commission_%s" % leg for leg in LEGS)
    DETAIL_FIELDS = ("code", "name", "email", "country", "currency", "language", "price_book", "status")

    def __init__(self, *args: Any, tenant: Tenant, partner: Partner | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tenant, self.partner = tenant, partner
        self.fields["currency"].set_first(tenant_currencies(tenant))  # type: ignore[attr-defined]
        for name in self.PLAN_FIELDS:
            self.fields[name].help_text = _("A percentage such as 20, or tiers such as: 20 up to 10000; 25.")
        books = price_books(tenant)
        if books:
            self.fields["price_book"].help_text = _(
                "The code of the price book its customers are priced from; empty: the tenant's prices. "
                "Books of your price versions: %(books)s."
            ) % {"books": ", ".join(books)}
        if partner is not None:
            self.fields["code"].disabled = True
        else:
            del self.fields["status"]  # a new partner is active

    def error_field(self, path: str) -> str:
        parts = path.split(".")
        if parts[0] == "commission_plan" and len(parts) > 1:
            leg = re.split(r"[\[.]", parts[1], maxsplit=1)[0]
            return "commission_%s" % leg if leg in LEGS else "commission_hardware"
        return path

    def error_message(self, error: FieldError) -> Any:
        if error.field.startswith("commission_plan"):
            return PLAN_MESSAGES.get(error.code, error.message)
        return MESSAGES.get((error.field, error.code), error.message)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        plan: dict[str, Any] = {}
        for leg in LEGS:
            name = "commission_%s" % leg
            if name in self.errors:
                continue
            try:
                plan[leg] = leg_from_text(cleaned.get(name) or "")
            except LegTextError:
                self.add_error(name, PLAN_MESSAGES["invalid_tiers"])
        cleaned["commission_plan"] = plan
        # The plan's own check (``partners.plans``), in the same pass: each leg's error on its field.
        try:
            commission_plan_parse(plan)
        except InvalidInput as exc:
            for error in exc.errors:
                name = self.error_field(error.field)
                if name not in self.errors:
                    self.add_error(name, self.error_message(error))
        code = cleaned.get("code")
        if self.partner is None and code and "code" not in self.errors:
            if not CODE_RE.match(code):
                self.add_error("code", MESSAGES[("code", "invalid_format")])
            elif Partner.objects.filter(tenant=self.tenant, code=code).exists():
                self.add_error("code", MESSAGES[("code", "taken")])
        return cleaned

    def details(self) -> dict[str, Any]:
        """What the services take, from the cleaned form (``code`` aside)."""
        data = self.cleaned_data
        out = {name: data.get(name) or "" for name in self.DETAIL_FIELDS if name in self.fields and name != "code"}
        out["commission_plan"] = data["commission_plan"]
        return out


class PartnerUserInviteForm(InputRulesMixin, forms.Form):
    email = forms.EmailField(label=_("E-mail address"), max_length=254)
    name = forms.CharField(label=_("Name"), max_length=200, required=False)
    role = forms.ChoiceField(label=_("Role"), choices=PartnerRole.choices, initial=PartnerRole.SALES)


class PartnerKeyForm(ApiKeyForm):
    """A partner's key has one scope, ``partner``: only its name is asked."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        del self.fields["scope"]
        self.fields["name"].help_text = _("What will use this key, e.g. the partner's CRM.")
