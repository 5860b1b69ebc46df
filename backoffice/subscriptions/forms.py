"""Forms of the subscription pages. They parse what a person types (a device per line, a local date
and time) into the shapes ``subscription_create`` and ``subscription_change`` take; the services
check the subscription rules, and their field errors come back on the form with their paths."""

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from backoffice.forms import (
    DATETIME_INPUT_FORMATS,
    DATETIME_LOCAL_FORMAT,
    DomainErrorFormMixin,
    InputRulesMixin,
    LocalTimeMixin,
    year_validator,
)
from billing_platform.errors import DomainError
from billing_platform.periods import local_date, local_midnight
from catalog.errors import NoPriceForCurrency
from catalog.selectors import plan_get
from catalog.versions import customer_price_book, price_version_as_of
from customers.selectors import customer_get
from subscriptions.models import ChangeAction, Device
from subscriptions.selectors import subscription_list
from tenancy.models import Tenant

MAX_DEVICE_LINES = 1000
# The lengths the subscription models store (subscriptions.models.Device).
DEVICE_FIELD_LENGTHS = (("device_id", 200), ("device_type", 100), ("region", 100))
# Dates outside these years are typing mistakes, and would not fit the period arithmetic.
MIN_YEAR, MAX_YEAR = 1970, 2999
# The field each change action reads.
ACTION_FIELDS: dict[str, str] = {
    ChangeAction.ADD_DEVICES: "devices",
    ChangeAction.REMOVE_DEVICES: "device_ids",
    ChangeAction.CHANGE_PLAN: "plan",
    ChangeAction.CANCEL: "at_period_end",
}


def parse_device_lines(value: str) -> list[dict[str, str]]:
    """``device_id[,device_type[,region]]`` per line -> ``[{device_id, device_type, region}]``.
    Blank lines are skipped; an empty device id or a fourth value is an error naming the line."""
    devices: list[dict[str, str]] = []
    problems: list[forms.ValidationError] = []
    for number, line in enumerate(value.splitlines(), start=1):
        if not line.strip():
            continue
        parts = [part.strip() for part in line.split(",")]
        if len(parts) > 3:
            problems.append(
                forms.ValidationError(
                    _("Line %(line)s: at most three values, device_id,device_type,region."),
                    code="too_many_values",
                    params={"line": number},
                )
            )
        elif not parts[0]:
            problems.append(
                forms.ValidationError(
                    _("Line %(line)s: the device id comes first."), code="required", params={"line": number}
                )
            )
        else:
            parts += [""] * (3 - len(parts))
            too_long = [
                (name, size) for (name, size), part in zip(DEVICE_FIELD_LENGTHS, parts, strict=True) if len(part) > size
            ]
            for name, size in too_long:
                problems.append(
                    forms.ValidationError(
                        _("Line %(line)s: %(field)s is longer than %(max)s characters."),
                        code="max_length",
                        params={"line": number, "field": name, "max": size},
                    )
                )
            if not too_long:
                devices.append({"device_id": parts[0], "device_type": parts[1], "region": parts[2]})
    if len(devices) > MAX_DEVICE_LINES:
        problems.append(
            forms.ValidationError(
                _("At most %(max)s devices at a time."), code="too_many", params={"max": MAX_DEVICE_LINES}
            )
        )
    if problems:
        raise forms.ValidationError(problems)
    return devices


def devices_widget(rows: int = 4) -> forms.Textarea:
    return forms.Textarea(
        attrs={"rows": rows, "class": "tp-code", "spellcheck": "false", "placeholder": "A-1001,eld,FR\nA-1002"}
    )


DEVICES_HELP = _("One device per line: device_id[,device_type[,region]].")


def local_now(tz: ZoneInfo) -> datetime:
    """Now in ``tz``, to the minute and naive: what a datetime-local input shows."""
    return timezone.localtime(timezone.now(), tz).replace(second=0, microsecond=0, tzinfo=None)


check_year = year_validator(lowest=MIN_YEAR, highest=MAX_YEAR, message=_("Enter a date between %(min)s and %(max)s."))


class SubscriptionForm(InputRulesMixin, LocalTimeMixin, DomainErrorFormMixin, forms.Form):
    customer = forms.ChoiceField(label=_("Customer"))
    plan = forms.ChoiceField(label=_("Plan"))
    external_id = forms.CharField(
        label=_("External ID"),
        max_length=200,
        help_text=_("Your reference for the subscription: letters, digits and . _ : @ -"),
    )
    signed_at = forms.DateTimeField(
        label=_("Signed at"),
        validators=[check_year],
        input_formats=DATETIME_INPUT_FORMATS,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=DATETIME_LOCAL_FORMAT),
    )
    starts_on = forms.DateField(
        label=_("Starts on"),
        required=False,
        validators=[check_year],
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        help_text=_("In the customer's time zone; empty: the day of signature."),
    )
    devices = forms.CharField(label=_("Devices"), required=False, widget=devices_widget(6), help_text=DEVICES_HELP)

    def __init__(
        self,
        *args: Any,
        tz: ZoneInfo,
        customers: list[tuple[str, str]],
        plans: list[tuple[str, str]],
        tenant: Tenant | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.tz = tz
        self.tenant = tenant
        self.fields["customer"].choices = [("", "—"), *customers]  # type: ignore[attr-defined]
        self.fields["plan"].choices = [("", "—"), *plans]  # type: ignore[attr-defined]
        self.fields["signed_at"].help_text = _("Time in the tenant's time zone (%(tz)s).") % {"tz": tz.key}

    def clean(self) -> dict[str, Any]:
        """With the fields' own errors, in the same pass, what ``subscription_create`` would refuse
        next: an external ID already used, a plan without a price in the customer's currency at the
        start (the service still checks both)."""
        cleaned = super().clean() or {}
        if self.tenant is None:
            return cleaned
        external_id = cleaned.get("external_id")
        if external_id and subscription_list(tenant=self.tenant).filter(external_id=external_id).exists():
            self.add_error("external_id", _("Another subscription already has this external ID."))
        if cleaned.get("customer") and cleaned.get("plan"):
            try:
                customer = customer_get(tenant=self.tenant, external_id=cleaned["customer"])
                plan = plan_get(tenant=self.tenant, code=cleaned["plan"])
            except DomainError:
                return cleaned
            signed_at = cleaned.get("signed_at") or timezone.now()
            day = cleaned.get("starts_on") or local_date(signed_at, customer.timezone)
            try:
                price_version_as_of(
                    plan=plan,
                    currency=customer.currency,
                    country=customer.country,
                    at=local_midnight(day, customer.timezone),
                    price_book=customer_price_book(customer),
                )
            except NoPriceForCurrency:
                self.add_error(
                    "plan",
                    _("This plan has no price in %(currency)s, the customer's currency, on %(day)s.")
                    % {"currency": customer.currency, "day": day.isoformat()},
                )
        return cleaned

    def clean_external_id(self) -> str:
        return str(self.cleaned_data["external_id"]).strip()

    def clean_devices(self) -> list[dict[str, str]]:
        return parse_device_lines(self.cleaned_data.get("devices") or "")


class ChangeForm(InputRulesMixin, LocalTimeMixin, DomainErrorFormMixin, forms.Form):
    """One form for the four actions; only the fields of the chosen action are read."""

    action = forms.ChoiceField(label=_("Change"), choices=ChangeAction.choices)
    devices = forms.CharField(
        label=_("Devices to add"), required=False, widget=devices_widget(), help_text=DEVICES_HELP
    )
    device_ids = forms.MultipleChoiceField(
        label=_("Devices to remove"), required=False, widget=forms.CheckboxSelectMultiple
    )
    plan = forms.ChoiceField(
        label=_("New plan"),
        required=False,
        help_text=_("An upgrade applies at once; a downgrade at the end of the period already paid for."),
    )
    at_period_end = forms.BooleanField(
        label=_("At the end of the current period"),
        required=False,
        help_text=_("Otherwise at once (or at the effective time), with a prorated credit."),
    )
    effective_at = forms.DateTimeField(
        label=_("Effective at"),
        required=False,
        validators=[check_year],
        input_formats=DATETIME_INPUT_FORMATS,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=DATETIME_LOCAL_FORMAT),
    )

    def __init__(
        self,
        *args: Any,
        tz: ZoneInfo,
        devices: list[Device],
        plans: list[tuple[str, str]],
        starts_at: datetime,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("initial", {"action": ChangeAction.ADD_DEVICES, "at_period_end": True})
        super().__init__(*args, **kwargs)
        self.tz = tz
        self.starts_at = starts_at
        self.fields["device_ids"].choices = [  # type: ignore[attr-defined]
            (d.device_id, "%s · %s" % (d.device_id, d.device_type) if d.device_type else d.device_id)
            for d in devices
            if d.device_id  # a slot has no id to remove it by
        ]
        self.fields["plan"].choices = [("", "—"), *plans]  # type: ignore[attr-defined]
        self.fields["effective_at"].help_text = _(
            "Optional; time in the tenant's time zone (%(tz)s). Empty: now, or the period end for a "
            "downgrade or a cancellation."
        ) % {"tz": tz.key}

    def clean_devices(self) -> list[dict[str, str]]:
        return parse_device_lines(self.cleaned_data.get("devices") or "")

    def clean_effective_at(self) -> datetime | None:
        value: datetime | None = self.cleaned_data.get("effective_at")
        if value is not None and value < self.starts_at:
            raise forms.ValidationError(
                _("The subscription starts on %(date)s: a change cannot take effect before."),
                code="before_start",
                params={"date": timezone.localtime(self.starts_at, self.tz).strftime("%Y-%m-%d %H:%M %Z")},
            )
        return value

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        action = cleaned.get("action")
        # The fields of the other actions are sent too (hidden): what they hold does not matter.
        for name in set(ACTION_FIELDS.values()) - {ACTION_FIELDS.get(str(action))}:
            self.errors.pop(name, None)
            cleaned.pop(name, None)
        if action == ChangeAction.ADD_DEVICES and not cleaned.get("devices") and "devices" not in self.errors:
            self.add_error("devices", forms.ValidationError(_("List the devices to add."), code="required"))
        elif (
            action == ChangeAction.REMOVE_DEVICES and not cleaned.get("device_ids") and "device_ids" not in self.errors
        ):
            self.add_error("device_ids", forms.ValidationError(_("Tick the devices to remove."), code="required"))
        elif action == ChangeAction.CHANGE_PLAN and not cleaned.get("plan") and "plan" not in self.errors:
            self.add_error("plan", forms.ValidationError(_("Choose the new plan."), code="required"))
        elif action == ChangeAction.CANCEL and cleaned.get("at_period_end") and cleaned.get("effective_at"):
            self.add_error(
                "effective_at",
                forms.ValidationError(
                    _("A cancellation at the period end has no effective time; untick the box to choose one."),
                    code="conflict",
                ),
            )
        return cleaned

    def service_params(self) -> dict[str, Any]:
        """The ``params`` of ``subscription_change`` for the chosen action."""
        data = self.cleaned_data
        action = data["action"]
        if action == ChangeAction.ADD_DEVICES:
            return {"devices": data["devices"]}
        if action == ChangeAction.REMOVE_DEVICES:
            return {"device_ids": list(data["device_ids"])}
        if action == ChangeAction.CHANGE_PLAN:
            return {"plan": data["plan"]}
        return {"at_period_end": bool(data.get("at_period_end"))}
