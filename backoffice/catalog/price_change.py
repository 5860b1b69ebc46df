"""The structured price change of a plan page: one row of fields per component (a price, or a
charge model with its amounts and its tiers as rows), instead of a JSON box.

The catalog service stays the only judge of a price: the form only reads what was typed (amounts
as text, tiers as rows) into the body the API takes, and ``price_version_create`` is run inside a
transaction that is rolled back (``service_errors``) to collect every error it finds, put back next
to its field with the form's own, in one pass. The same rolled-back run gives the preview of the
subscriptions whose price changes (``affected``).
"""

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django import forms
from django.db import transaction
from django.http import QueryDict
from django.utils.translation import gettext_lazy as _

from backoffice.catalog.forms import PriceVersionForm, parse_json
from backoffice.formatting import currency_places, decimal_plain
from backoffice.forms import error_summary
from billing_platform.errors import DomainError, FieldError
from catalog.charge_models.base import decimal_str
from catalog.models import ComponentPrice, Plan, PlanComponent, PriceOverride, PriceVersion, ProductKind
from catalog.versions import PriceBook, ResolvedPrice, customer_price_book
from subscriptions.models import Subscription, SubscriptionStatus
from tenancy.models import Tenant

MAX_TIERS = 20
# The subscriptions listed in the preview; the count covers them all.
PREVIEW_ROWS = 20
# Beyond this many live subscriptions on the plan and currency, the preview counts a sample.
PREVIEW_SCAN = 2000
ADVANCED = "advanced"
TIERED = ("graduated", "volume")
MODEL_PARAMS = {
    "flat": ("amount",),
    "per_unit": ("unit_amount",),
    "package": ("package_size", "package_amount"),
    "percentage": ("rate", "fixed_per_event"),
    "graduated": (),
    "volume": (),
    ADVANCED: (),
}
MODEL_CHOICES = [
    ("flat", _("Flat amount")),
    ("per_unit", _("Per unit")),
    ("graduated", _("Graduated tiers")),
    ("volume", _("Volume tiers")),
    ("package", _("Per package")),
    ("percentage", _("Percentage")),
    (ADVANCED, _("Advanced (JSON, e.g. a matrix)")),
]
_PATH = re.compile(r"^components\[(\d+)\](?:\.(.*))?$")
_TIER = re.compile(r"^tiers\[(\d+)\]\.(\w+)$")


def _amount_field(label: Any, **kwargs: Any) -> forms.CharField:
    # Text, not a DecimalField: the service reads and refuses amounts as the API does, so every
    # amount's error comes in the same pass as the others.
    return forms.CharField(
        label=label,
        required=False,
        max_length=40,
        widget=forms.TextInput(attrs={"inputmode": "decimal", "class": "tp-amount", "autocomplete": "off"}),
        **kwargs,
    )


def _number(value: Any) -> str:
    return str(value or "").strip().replace(",", ".").replace(" ", "")


class TierForm(forms.Form):
    up_to = _amount_field(_("Up to"), help_text=_("Empty on the last tier: no upper bound."))
    unit_amount = _amount_field(_("Unit price"))
    flat_amount = _amount_field(_("Flat amount"))

    def is_blank(self) -> bool:
        data = getattr(self, "cleaned_data", {})
        return not any(_number(data.get(name)) for name in ("up_to", "unit_amount", "flat_amount"))

    def tier(self) -> dict[str, Any]:
        data = self.cleaned_data
        tier: dict[str, Any] = {
            "up_to": _number(data.get("up_to")) or None,
            "unit_amount": _number(data["unit_amount"]),
        }
        if _number(data.get("flat_amount")):
            tier["flat_amount"] = _number(data["flat_amount"])
        return tier


TierFormSet = forms.formset_factory(TierForm, extra=0, max_num=MAX_TIERS, absolute_max=MAX_TIERS, validate_max=True)


class ComponentPriceForm(forms.Form):
    """A component's price in the new version: a price per device (hardware, one-time fees), or a
    charge (services, usage) with a minimum and a maximum for usage."""

    price = _amount_field(_("Price"))
    model = forms.ChoiceField(label=_("Charge model"), choices=MODEL_CHOICES, required=False)
    amount = _amount_field(_("Amount"))
    unit_amount = _amount_field(_("Unit price"))
    package_size = _amount_field(_("Package size"))
    package_amount = _amount_field(_("Package price"))
    rate = _amount_field(_("Rate (%)"))
    fixed_per_event = _amount_field(_("Fixed amount per event"))
    min_amount = _amount_field(_("Minimum per period"))
    max_amount = _amount_field(_("Maximum per period"))
    charge_json = forms.CharField(
        label=_("Charge (JSON)"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 6, "class": "tp-code", "spellcheck": "false"}),
    )

    def __init__(self, *, component: PlanComponent, data: Any = None, prefix: str, **kwargs: Any) -> None:
        super().__init__(data, prefix=prefix, **kwargs)
        self.component = component
        tiers_prefix = "%s-tiers" % prefix
        if data is not None and "%s-TOTAL_FORMS" % tiers_prefix in data:
            self.tiers = TierFormSet(data, prefix=tiers_prefix)
        else:
            # Not posted (a row just switched to a tiered model): two empty tiers to fill in.
            initial_tiers = kwargs.get("initial", {}).get("tiers")
            self.tiers = TierFormSet(prefix=tiers_prefix, initial=initial_tiers)
            self.tiers.extra = 0 if initial_tiers else 2
        if self.component.kind != ProductKind.USAGE:
            for name in ("min_amount", "max_amount"):
                del self.fields[name]
        if self.has_price:
            for name in list(self.fields):
                if name != "price":
                    del self.fields[name]
        else:
            del self.fields["price"]

    @property
    def has_price(self) -> bool:
        return self.component.kind in (ProductKind.HARDWARE, ProductKind.FEE)

    @property
    def current_model(self) -> str:
        if self.has_price:
            return ""
        value = self["model"].value()
        return value if value in MODEL_PARAMS else "flat"

    def param_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in MODEL_PARAMS.get(self.current_model, ())]

    def bound_fields(self) -> list[forms.BoundField]:
        """The inputs this row shows: the price, or the charge model's own parameters."""
        if self.has_price:
            return [self["price"]]
        return self.param_fields()

    def is_tiered(self) -> bool:
        return self.current_model in TIERED

    def is_advanced(self) -> bool:
        return self.current_model == ADVANCED

    def is_valid(self) -> bool:
        valid = super().is_valid()
        return valid and (not self.is_tiered() or not self.tiers.is_bound or self.tiers.is_valid())

    def entry(self) -> dict[str, Any]:
        """The component's item of the service's ``components``, as the API takes it."""
        data = self.cleaned_data
        entry: dict[str, Any] = {"product": self.component.product.code}
        if self.has_price:
            entry["price"] = _number(data.get("price")) or None
            return entry
        model = self.current_model
        if model == ADVANCED:
            try:
                entry["charge"] = parse_json(data.get("charge_json") or "", empty=None)
            except forms.ValidationError as exc:
                self.add_error("charge_json", exc)
                entry["charge"] = None
        elif model in TIERED:
            tiers = [f.tier() for f in self.tiers.forms if f.is_bound and f.is_valid() and not f.is_blank()]
            entry["charge"] = {"model": model, "tiers": tiers}
        else:
            entry["charge"] = {"model": model, **{p: _number(data.get(p)) or None for p in MODEL_PARAMS[model]}}
            entry["charge"] = {k: v for k, v in entry["charge"].items() if v is not None or k == "model"}
        for name in ("min_amount", "max_amount"):
            if name in self.fields and _number(data.get(name)):
                entry[name] = _number(data[name])
        return entry

    def put_error(self, path: str, message: str) -> None:
        """A service error about this component (``path`` after ``components[i].``) on its input."""
        tiered = _TIER.match(path.removeprefix("charge."))
        if tiered and self.is_tiered():
            index, name = int(tiered.group(1)), tiered.group(2)
            used = [f for f in self.tiers.forms if f.is_valid() and not f.is_blank()]
            if index < len(used) and name in used[index].fields:
                used[index].add_error(name, message)
                return
        if self.is_advanced() and path.startswith("charge"):
            self.add_error("charge_json", "%s: %s" % (path, message) if path != "charge" else message)
            return
        name = path.removeprefix("charge.")
        if name in self.fields and name not in ("model", "charge_json") and name in self.visible_names():
            self.add_error(name, message)
        elif path in ("charge", "charge.model") and "model" in self.fields:
            self.add_error("model", message)
        else:
            self.add_error(None, message)

    def visible_names(self) -> set[str]:
        return {f.name for f in self.bound_fields()} | {"min_amount", "max_amount"}


def _initial_row(price: Any, currency: str) -> dict[str, Any]:
    """A row's starting values from a component's price in the latest version."""
    places = currency_places(currency)

    def plain(value: Any, at_least: int = 0) -> str:
        if value is None or value == "":
            return ""
        if isinstance(value, str):
            return value  # a charge's amount as the service stored it ("0.010")
        return decimal_str(decimal_plain(Decimal(str(value)), at_least))

    if price is None:
        return {"model": "flat"}
    if price.price is not None:
        return {"price": plain(price.price, places)}
    charge = dict(price.charge or {})
    model = charge.get("model")
    row: dict[str, Any] = {}
    for name in ("min_amount", "max_amount"):
        row[name] = plain(getattr(price, name), places)
    if model in TIERED and isinstance(charge.get("tiers"), list):
        row["model"] = model
        row["tiers"] = [
            {
                "up_to": plain(t.get("up_to")),
                "unit_amount": plain(t.get("unit_amount")),
                "flat_amount": plain(t.get("flat_amount")) if Decimal(str(t.get("flat_amount") or 0)) else "",
            }
            for t in charge["tiers"]
        ]
    elif model in MODEL_PARAMS and model != ADVANCED:
        row["model"] = model
        for param in MODEL_PARAMS[model]:
            row[param] = plain(charge.get(param), places if param.endswith("amount") else 0)
    else:
        row["model"] = ADVANCED
        row["charge_json"] = json.dumps(charge, indent=2)
    return row


@dataclass
class PriceChange:
    """The whole price-change form: the version's currency, regions and date, and one row per component."""

    form: PriceVersionForm
    rows: list[ComponentPriceForm]

    @classmethod
    def build(
        cls,
        *,
        plan: Plan,
        tenant: Tenant,
        components: list[PlanComponent],
        tz: ZoneInfo,
        data: QueryDict | None = None,
    ) -> "PriceChange":
        initial: dict[str, Any] = {}
        rows_initial: dict[Any, dict[str, Any]] = {}
        if data is None:
            versions = list(plan.price_versions.all())
            preferred = [
                v for v in versions if v.currency == tenant.default_currency and not v.regions and not v.price_book
            ] or versions
            latest = max(
                preferred, key=lambda v: (v.effective_from is not None, v.effective_from or v.created_at), default=None
            )
            currency = latest.currency if latest else tenant.default_currency
            by_component = {p.component_id: p for p in latest.prices.all()} if latest else {}
            rows_initial = {c.pk: _initial_row(by_component.get(c.pk), currency) for c in components}
            initial = {
                "currency": currency,
                "price_book": latest.price_book if latest else "",
                "regions": list(latest.regions) if latest else [],
            }
        else:
            data = _with_added_tier(data, len(components))
        form = PriceVersionForm(data, initial=initial, tz=tz, tenant=tenant)
        rows = [
            ComponentPriceForm(component=c, data=data, prefix="c%d" % i, initial=rows_initial.get(c.pk, {}))
            for i, c in enumerate(components)
        ]
        return cls(form, rows)

    def is_valid(self) -> bool:
        results = [self.form.is_valid(), *(row.is_valid() for row in self.rows)]
        return all(results)

    def service_data(self, *, substitute: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The body of ``price_version_create``: the form's values, or ``substitute``'s for those
        the form refused (so the rows can still be checked in the same pass)."""
        cleaned = getattr(self.form, "cleaned_data", {})
        data: dict[str, Any] = {}
        for name in ("currency", "price_book", "regions", "effective_from"):
            if name in cleaned:
                data[name] = cleaned[name]
            elif substitute and name in substitute:
                data[name] = substitute[name]
        rows = [row for row in self.rows if hasattr(row, "cleaned_data")]
        data["components"] = [row.entry() for row in rows]
        return data

    def apply_errors(self, errors: list[FieldError], *, skip_fields: frozenset[str] | set[str] = frozenset()) -> None:
        for error in errors:
            match = _PATH.match(error.field)
            if match and int(match.group(1)) < len(self.rows):
                self.rows[int(match.group(1))].put_error(match.group(2) or "", error.message)
            elif error.field in skip_fields:
                continue
            else:
                self.form.apply_domain_errors_list([error])

    def has_errors(self) -> bool:
        return bool(self.form.errors) or any(
            row.errors or (row.is_tiered() and any(f.errors for f in row.tiers.forms)) for row in self.rows
        )

    def error_rows(self) -> list[dict[str, Any]]:
        """Every error for the summary at the top, each with a link to its input."""
        out = error_summary(self.form)
        for row in self.rows:
            code = row.component.product.code
            for item in error_summary(row):
                out.append({**item, "label": "%s · %s" % (code, item["label"]) if item["label"] else code})
            if row.is_tiered():
                for i, tier in enumerate(row.tiers.forms):
                    for item in error_summary(tier):
                        label = _("tier %(n)s") % {"n": i + 1}
                        out.append({**item, "label": "%s · %s · %s" % (code, label, item["label"])})
        return out


def _with_added_tier(data: QueryDict, count: int) -> QueryDict:
    """Without JavaScript, "add a tier" is a round trip posting one more (empty) tier row."""
    which = data.get("add_tier", "")
    if not which.isdigit() or int(which) >= count:
        return data
    data = data.copy()
    key = "c%s-tiers-TOTAL_FORMS" % which
    total = data.get(key, "0")
    data[key] = str(min(int(total) + 1 if total.isdigit() else 1, MAX_TIERS))
    data.setdefault("c%s-tiers-INITIAL_FORMS" % which, "0")
    return data


class _RolledBack(Exception):
    pass


def service_dry_run(
    create: Callable[[], PriceVersion], then: Callable[[PriceVersion], Any] | None = None
) -> tuple[DomainError | None, Any]:
    """Runs the catalog service, and ``then`` on what it made, in a transaction rolled back at the
    end: the service's verdict (its error, or None) and what ``then`` returned, nothing written."""
    result: Any = None
    try:
        with transaction.atomic():
            version = create()
            if then is not None:
                result = then(version)
            raise _RolledBack
    except _RolledBack:
        return None, result
    except DomainError as exc:
        return exc, None


# --- who is affected --------------------------------------------------------------------------


def _terms(resolved: ResolvedPrice) -> tuple[Any, ...]:
    """What billing charges a component by: its price or charge, and a usage charge's minimum and
    maximum (a change to those alone changes the invoice)."""
    return (resolved.price, resolved.charge, resolved.min_amount, resolved.max_amount)


def charge_text(resolved: ResolvedPrice | None, currency: str) -> str:
    """A component's price in a few words, for the old → new columns: "25.00", "0.010 per unit",
    "graduated: 0.010 to 10000, then 0.005"."""
    if resolved is None:
        return "—"
    places = currency_places(currency)

    def amount(value: Any) -> str:
        return str(decimal_plain(Decimal(str(value)), places)) if value is not None else "0"

    if resolved.price is not None:
        return amount(resolved.price)
    text = _charge_words(resolved.charge or {}, amount)
    bounds = []
    if resolved.min_amount is not None:
        bounds.append(str(_("minimum %(amount)s") % {"amount": amount(resolved.min_amount)}))
    if resolved.max_amount is not None:
        bounds.append(str(_("maximum %(amount)s") % {"amount": amount(resolved.max_amount)}))
    return "%s (%s)" % (text, ", ".join(bounds)) if bounds else text


def _charge_words(charge: dict[str, Any], amount: Any) -> str:
    model = charge.get("model")
    if model == "flat":
        return amount(charge.get("amount"))
    if model == "per_unit":
        return str(_("%(amount)s per unit") % {"amount": amount(charge.get("unit_amount"))})
    if model == "package":
        return str(
            _("%(amount)s per %(size)s")
            % {"amount": amount(charge.get("package_amount")), "size": charge.get("package_size")}
        )
    if model == "percentage":
        return "%s %%" % charge.get("rate")
    if model in TIERED:
        parts = []
        for tier in charge.get("tiers", []):
            bound = tier.get("up_to")
            parts.append(
                "%s %s" % (amount(tier.get("unit_amount")), (_("to %(n)s") % {"n": bound}) if bound else _("above"))
            )
        return "%s: %s" % (model, ", ".join(parts))
    return str(model or "—")


def affected(*, tenant: Tenant, plan: Plan, version: PriceVersion, now: datetime) -> dict[str, Any]:
    """The live subscriptions on ``plan`` in the version's currency whose price changes when
    ``version`` exists (it is the one just made in a rolled-back run): resolved with and without it,
    as billing resolves them (customer overrides and price locks included), at the version's start
    or now when it starts in the past (its earlier periods are billed already or bill at the next run).
    """
    at = max(version.effective_from or now, now)
    subscriptions = list(
        Subscription.objects.filter(
            tenant=tenant, plan=plan, status__in=SubscriptionStatus.LIVE, customer__currency=version.currency
        )
        .select_related("customer__partner")
        .order_by("customer__name", "external_id")[:PREVIEW_SCAN]
    )
    components = list(plan.components.all())  # prefetched by plan_get, as PriceBook.resolve reads them
    currency = version.currency
    versions = list(PriceVersion.objects.filter(tenant=tenant, plan=plan, currency=currency))
    prices = list(ComponentPrice.objects.filter(tenant=tenant, version__in=versions))
    overrides = list(
        PriceOverride.objects.filter(
            tenant=tenant,
            customer_id__in={s.customer_id for s in subscriptions},
            component__plan=plan,
            currency=currency,
        )
    )
    book = PriceBook(versions, prices, overrides)
    # The same rows without the new version: the prices the subscriptions have today.
    old_book = PriceBook(
        [v for v in versions if v.pk != version.pk], [p for p in prices if p.version_id != version.pk], overrides
    )
    rows: list[dict[str, Any]] = []
    count = 0
    unpriced = 0
    for sub in subscriptions:
        args: dict[str, Any] = {
            "plan": plan,
            "currency": currency,
            "country": sub.customer.country,
            "at": at,
            "customer_id": sub.customer_id,
            "locked": sub,
            "price_book": customer_price_book(sub.customer),
        }
        try:
            before = {r.component.pk: r for r in old_book.resolve(**args)}
        except DomainError:
            before = {}
            unpriced += 1
        try:
            after = {r.component.pk: r for r in book.resolve(**args)}
        except DomainError:  # no default price in effect yet at that instant: not priced either way
            after = {}
            unpriced += 1 if before else 0
        changes = []
        for component in components:
            old, new = before.get(component.pk), after.get(component.pk)
            if old is not None and new is not None and _terms(old) == _terms(new):
                continue
            changes.append(
                {
                    "component": component,
                    "old": charge_text(old, currency),
                    "new": charge_text(new, currency),
                    # Hardware is priced per device; services and fees when per_device; usage never.
                    "per_device": component.kind == ProductKind.HARDWARE
                    or (component.kind != ProductKind.USAGE and component.per_device),
                }
            )
        if not changes:
            continue
        count += 1
        if len(rows) < PREVIEW_ROWS:
            rows.append({"subscription": sub, "customer": sub.customer, "changes": changes})
    return {
        "count": count,
        "rows": rows,
        "more": count - len(rows),
        "scanned": len(subscriptions),
        "capped": len(subscriptions) == PREVIEW_SCAN,
        "at": at,
        "currency": currency,
        "in_past": version.effective_from is not None and version.effective_from < now,
        "effective_from": version.effective_from,
        "unpriced": unpriced,
    }
