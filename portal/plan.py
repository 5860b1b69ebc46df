"""The portal's Plan page: the customer's subscriptions (plan, status, devices, commitment, period,
changes waiting for their date) and the four changes a customer makes itself, each in two steps.

1. **Preview**: ``subscription_change(preview=True)``, the very lines the API's ``preview: true``
   returns (credits, charges, early-termination fee, with the days they cover); nothing is written.
   The page shows them with a confirm button carrying the same inputs and a signed token naming
   the subscription, the action, the inputs and a digest of the lines.
2. **Confirm**: the same POST with ``step=confirm``. It is refused, politely and with a fresh
   preview, when the token is older than ``PREVIEW_MAX_AGE``, was made for other inputs, or when
   the change now gives other lines than those previewed (a bill run, another change or a new day
   in between): the change is applied and checked in one transaction, rolled back if it differs.

Roles: admin and billing change (``BILLING``); a viewer sees the page without forms. The services
audit with ``portal_actor(request)``. Another customer's subscription answers 404.
"""

import hashlib
import json
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import messages
from django.core import signing
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _

from billing_platform.errors import DomainError
from billing_platform.formatting import day_text, money_text, period_days
from billing_platform.periods import local_date
from catalog.charge_models.base import Usage
from catalog.charge_models.pricing import price
from catalog.errors import NoPriceForCurrency
from catalog.models import Interval, Plan, ProductKind
from catalog.selectors import plan_list
from catalog.versions import component_prices_as_of, customer_price_book, price_version_as_of
from customers.models import Customer
from portal.access import BILLING, current_portal, portal_actor, portal_view
from subscriptions.changes import ChangeLine, ChangeResult, subscription_change
from subscriptions.models import ChangeAction, ChangeStatus, Device, Subscription, SubscriptionStatus
from subscriptions.periods import subscription_end, subscription_period_at
from subscriptions.selectors import live_device_get, subscription_change_list, subscription_list_for_customer

# A preview older than this is not confirmed: prices, the period or the devices may have moved on.
PREVIEW_MAX_AGE = timedelta(minutes=15)
PREVIEW_SALT = "portal.plan.preview"
# How many subscriptions the page lists (live ones first), and devices typed at once.
MAX_SUBSCRIPTIONS = 50
MAX_NEW_DEVICES = 100
CLOSED = (SubscriptionStatus.CANCELLED, SubscriptionStatus.ENDED)

# The action in the address -> the service's action.
ACTIONS: dict[str, str] = {
    "add-devices": ChangeAction.ADD_DEVICES,
    "remove-devices": ChangeAction.REMOVE_DEVICES,
    "change-plan": ChangeAction.CHANGE_PLAN,
    "cancel": ChangeAction.CANCEL,
}
ACTION_TITLES: dict[str, Any] = {
    ChangeAction.ADD_DEVICES: gettext_lazy("Add devices"),
    ChangeAction.REMOVE_DEVICES: gettext_lazy("Remove devices"),
    ChangeAction.CHANGE_PLAN: gettext_lazy("Change plan"),
    ChangeAction.CANCEL: gettext_lazy("Cancel the subscription"),
}


# A plan's fee for one device, by the plan's interval.
PER_DEVICE: dict[str, Any] = {
    Interval.MONTH: gettext_lazy("%(amount)s per device and month"),
    Interval.QUARTER: gettext_lazy("%(amount)s per device and quarter"),
    Interval.YEAR: gettext_lazy("%(amount)s per device and year"),
}


# --- what may be chosen ---------------------------------------------------------------------


def plans_offered(*, customer: Customer, at: datetime) -> list[Plan]:
    """The plans a customer may move to by itself: those the tenant offers for self-service (the
    shop's, ``self_service``) and prices in the customer's currency (and region) at ``at``. Plans
    kept for staff (negotiated, internal) are never offered."""
    offered = []
    price_book = customer_price_book(customer)
    for plan in plan_list(tenant=customer.tenant):
        if not plan.self_service:
            continue
        try:
            price_version_as_of(
                plan=plan, currency=customer.currency, country=customer.country, at=at, price_book=price_book
            )
        except NoPriceForCurrency:
            continue
        offered.append(plan)
    return offered


def plan_device_fee(*, plan: Plan, customer: Customer, at: datetime) -> Decimal | None:
    """What one more device costs on ``plan`` for a whole period, in the customer's currency at
    ``at``: the plan's per-device service fees for one device (the customer's own prices included);
    None when the plan has none the customer could be told."""
    try:
        resolved = component_prices_as_of(
            plan=plan,
            currency=customer.currency,
            country=customer.country,
            at=at,
            customer_id=customer.pk,
            price_book=customer_price_book(customer),
        )
    except DomainError:
        return None
    fees = [
        price(charge=r.charge, usage=Usage(quantity=Decimal(1)), currency=customer.currency).precise_amount
        for r in resolved
        if r.component.kind == ProductKind.SERVICE and r.component.per_device and r.charge is not None
    ]
    return sum(fees, Decimal(0)) if fees else None


def _live_devices(subscription: Subscription) -> list[Device]:
    return [d for d in subscription.devices.all() if d.removed_at is None]


# --- forms ----------------------------------------------------------------------------------


class ChangeForm(forms.Form):
    """A change's inputs. ``service_params`` gives the service's ``params``; ``error_field`` says
    which field a service error belongs to (by its path, or by its code for errors without one)."""

    error_codes: dict[str, str] = {}

    def __init__(self, *args: Any, subscription: Subscription, at: datetime, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.subscription = subscription
        self.at = at

    def service_params(self) -> dict[str, Any]:
        return {}

    def error_field(self, path: str) -> str | None:
        return None


class AddDevicesForm(ChangeForm):
    serials = forms.CharField(
        label=gettext_lazy("Serial numbers"),
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false", "autocomplete": "off", "class": "tp-code"}),
        help_text=gettext_lazy("One device per line (commas or spaces separate them too)."),
    )
    error_codes = {"device_in_use": "serials"}
    device_type = forms.CharField(label=gettext_lazy("Device type"), max_length=100, required=False)
    region = forms.CharField(label=gettext_lazy("Region"), max_length=100, required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        live = _live_devices(self.subscription)
        # The type and region the subscription's devices have: offered, and asked for when every
        # device has one (usage is split by them).
        self.known: dict[str, list[str]] = {}
        for name in ("device_type", "region"):
            values = sorted({getattr(d, name) for d in live if getattr(d, name)})
            self.known[name] = values
            field = self.fields[name]
            field.widget.attrs["list"] = "known-%s" % name
            field.widget.attrs["autocomplete"] = "off"
            if live and all(getattr(d, name) for d in live):
                field.required = True
            if len(values) == 1:
                self.initial.setdefault(name, values[0])

    def clean_serials(self) -> list[str]:
        raw = self.cleaned_data.get("serials") or ""
        serials = [s for s in raw.replace(",", " ").split() if s]
        if not serials:
            raise forms.ValidationError(_("Type the serial number of at least one device."), code="required")
        if len(serials) > MAX_NEW_DEVICES:
            raise forms.ValidationError(
                _("At most %(max)s devices at a time.") % {"max": MAX_NEW_DEVICES}, code="too_many"
            )
        too_long = [s for s in serials if len(s) > 200]
        if too_long:
            raise forms.ValidationError(_("A serial number has at most 200 characters."), code="max_length")
        twice = sorted({s for s in serials if serials.count(s) > 1})
        if twice:
            raise forms.ValidationError(
                _("Typed twice: %(serials)s.") % {"serials": ", ".join(twice)}, code="duplicate"
            )
        return serials

    def service_params(self) -> dict[str, Any]:
        data = self.cleaned_data
        kind, region = (data.get("device_type") or "").strip(), (data.get("region") or "").strip()
        return {"devices": [{"device_id": s, "device_type": kind, "region": region} for s in data["serials"]]}

    def error_field(self, path: str) -> str | None:
        if path.startswith("devices"):
            return "serials"
        return None


class RemoveDevicesForm(ChangeForm):
    device_ids = forms.MultipleChoiceField(label=gettext_lazy("Devices to remove"), widget=forms.CheckboxSelectMultiple)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices = []
        for d in _live_devices(self.subscription):
            if not d.device_id:
                continue  # a slot, not shipped yet: nothing to remove from the customer's fleet
            details = " · ".join(v for v in (d.device_type, d.region) if v)
            choices.append((d.device_id, "%s (%s)" % (d.device_id, details) if details else d.device_id))
        self.fields["device_ids"].choices = choices  # type: ignore[attr-defined]
        self.fields["device_ids"].error_messages["required"] = _("Tick the devices to remove.")

    def service_params(self) -> dict[str, Any]:
        return {"device_ids": sorted(self.cleaned_data["device_ids"])}

    def error_field(self, path: str) -> str | None:
        return "device_ids" if path == "device_ids" else None


class ChangePlanForm(ChangeForm):
    plan = forms.ChoiceField(label=gettext_lazy("New plan"), widget=forms.RadioSelect)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        customer = self.subscription.customer
        offered = [p for p in plans_offered(customer=customer, at=self.at) if p.pk != self.subscription.plan_id]
        self.plans = offered
        self.fields["plan"].choices = [(p.code, self._label(p)) for p in offered]  # type: ignore[attr-defined]
        self.fields["plan"].error_messages["required"] = _("Choose the new plan.")

    def _label(self, plan: Plan) -> str:
        customer = self.subscription.customer
        fee = plan_device_fee(plan=plan, customer=customer, at=self.at)
        if fee is None:
            return plan.name
        amount = money_text(fee, language=get_language(), currency=customer.currency)
        return "%s · %s" % (plan.name, PER_DEVICE[plan.interval] % {"amount": amount})

    def clean_plan(self) -> str:
        code = str(self.cleaned_data["plan"])
        waiting = subscription_change_list(
            tenant=self.subscription.tenant, subscription=self.subscription, status=ChangeStatus.SCHEDULED
        ).filter(action=ChangeAction.CHANGE_PLAN, params__plan=code)
        if waiting.exists():
            raise forms.ValidationError(_("This change is already scheduled."), code="scheduled")
        return code

    def service_params(self) -> dict[str, Any]:
        return {"plan": self.cleaned_data["plan"]}

    def error_field(self, path: str) -> str | None:
        return "plan" if path == "plan" else None


class CancelForm(ChangeForm):
    """No input: the portal cancels at the end of the current period; inside a commitment the
    service charges the committed periods left after it (the early-termination fee)."""

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.subscription.cancel_at is not None:
            raise forms.ValidationError(_("A cancellation is already scheduled."), code="scheduled")
        return cleaned

    def service_params(self) -> dict[str, Any]:
        return {"at_period_end": True}


FORMS: dict[str, type[ChangeForm]] = {
    ChangeAction.ADD_DEVICES: AddDevicesForm,
    ChangeAction.REMOVE_DEVICES: RemoveDevicesForm,
    ChangeAction.CHANGE_PLAN: ChangePlanForm,
    ChangeAction.CANCEL: CancelForm,
}


def _service_error_message(exc: DomainError, form: ChangeForm) -> str:
    """A service's refusal in the reader's language (the services speak English to the API)."""
    if exc.code == "device_in_use":
        typed = form.cleaned_data.get("serials") or []
        tenant = form.subscription.tenant
        taken = [s for s in typed if live_device_get(tenant=tenant, device_id=s) is not None]
        if taken:
            return _("Already on a subscription: %(serials)s.") % {"serials": ", ".join(taken)}
        return _("One of these devices was just added to a subscription.")
    if exc.code == "unknown_device":
        return _("This device is no longer on the subscription.")
    if exc.code == "same_plan":
        return _("The subscription is already on this plan.")
    if exc.code in ("unknown_plan", NoPriceForCurrency.code):
        return _("This plan cannot be chosen in your currency.")
    if exc.code == "invalid_transition":
        return _("This subscription is %(status)s: it cannot be changed any more.") % {
            "status": form.subscription.get_status_display().lower()
        }
    return _("This change cannot be made: %(reason)s") % {"reason": exc.detail}


def _apply_service_error(form: ChangeForm, exc: DomainError) -> None:
    message = _service_error_message(exc, form)
    fields = {form.error_field(e.field) for e in exc.errors} - {None}
    if not exc.errors and exc.code in form.error_codes:
        fields = {form.error_codes[exc.code]}
    if len(fields) == 1:
        form.add_error(fields.pop(), message)
    else:
        form.add_error(None, message)


# --- preview and confirmation ---------------------------------------------------------------


def _canonical(params: Mapping[str, Any]) -> str:
    return json.dumps(params, sort_keys=True, separators=(",", ":"))


def _outcome(result: ChangeResult) -> str:
    """What the change does: "applied" at once or "scheduled" (a preview says what it would do)."""
    return result.outcome or result.status


def result_digest(result: ChangeResult) -> str:
    """What a customer agrees to when confirming: the lines and, for a scheduled change, its date.
    An immediate change takes effect at the instant it is made, which is not part of it."""
    lines = [
        [
            line.type,
            line.product,
            list(line.devices),
            line.period_start.isoformat(),
            line.period_end.isoformat(),
            line.quantity,
            str(line.unit_amount),
            str(line.amount),
        ]
        for line in result.lines
    ]
    when = result.effective_at.isoformat() if _outcome(result) == ChangeStatus.SCHEDULED else ""
    body = json.dumps([result.action, _outcome(result), when, lines])
    return hashlib.sha256(body.encode()).hexdigest()


def preview_token(subscription: Subscription, action: str, params: Mapping[str, Any], result: ChangeResult) -> str:
    return signing.dumps(
        {"s": str(subscription.pk), "a": action, "p": _canonical(params), "d": result_digest(result)},
        salt=PREVIEW_SALT,
    )


def preview_token_read(token: str) -> dict[str, Any] | None:
    """The token of a preview still fresh, or None (expired, altered or missing)."""
    try:
        payload = signing.loads(token, salt=PREVIEW_SALT, max_age=PREVIEW_MAX_AGE)
    except signing.BadSignature:  # SignatureExpired is one
        return None
    return payload if isinstance(payload, dict) else None


class PreviewStale(Exception):
    """The change, made, differs from its preview: the transaction is rolled back."""


def _change(
    request: HttpRequest, subscription: Subscription, action: str, params: Mapping[str, Any], *, preview: bool
) -> ChangeResult:
    return subscription_change(
        subscription=subscription,
        action=action,
        params=params,
        actor=portal_actor(request),
        at=timezone.now(),
        preview=preview,
    )


def _confirm(
    request: HttpRequest, subscription: Subscription, action: str, params: Mapping[str, Any], token: dict[str, Any]
) -> ChangeResult:
    """Apply the change, and keep it only if it gives the lines the customer saw."""
    with transaction.atomic():
        result = _change(request, subscription, action, params, preview=False)
        if result_digest(result) != token["d"]:
            raise PreviewStale
    return result


def preview_rows(lines: list[ChangeLine], *, tz: str, currency: str) -> list[dict[str, Any]]:
    """The lines of a change as the page shows them: the days covered out of the period's days, or
    the number of committed periods an early-termination fee counts; signed amounts (a credit is
    negative)."""
    rows = []
    for line in lines:
        first, last = period_days(line.period_start, line.period_end, tz)
        days = None
        periods = None
        if line.type == "fee":
            periods = int(line.fraction)
        elif line.fraction > 0:
            covered = (last - first).days + 1
            days = (covered, int((Decimal(covered) / line.fraction).to_integral_value()))
        rows.append(
            {
                "line": line,
                "first": first,
                "last": last,
                "days": days,
                "periods": periods,
                "unit_amount": line.unit_amount,
                "amount": line.signed_amount,
                "currency": currency,
            }
        )
    return rows


# --- pages ----------------------------------------------------------------------------------


def _subscription_or_404(request: HttpRequest, external_id: str) -> Subscription:
    portal = current_portal(request)
    if "\x00" in external_id:
        raise Http404("No such subscription.")
    subscription = (
        Subscription.objects.filter(tenant=portal.tenant, customer=portal.customer, external_id=external_id)
        .select_related("plan", "customer", "tenant")
        .prefetch_related("devices")
        .first()
    )
    if subscription is None:
        raise Http404("No such subscription.")
    return subscription


def _last_day(subscription: Subscription, end: datetime | None) -> date | None:
    """The last local day before ``end`` (an end is the midnight that follows it)."""
    if end is None:
        return None
    return period_days(subscription.starts_at, end, subscription.customer.timezone)[1]


def _scheduled(subscription: Subscription, plan_names: Mapping[str, str]) -> list[dict[str, Any]]:
    rows = []
    for change in subscription_change_list(
        tenant=subscription.tenant, subscription=subscription, status=ChangeStatus.SCHEDULED
    ):
        code = str(change.params.get("plan", "")) if isinstance(change.params, dict) else ""
        rows.append({"change": change, "plan": plan_names.get(code, code)})
    return rows


def _summary(subscription: Subscription, now: datetime, plan_names: Mapping[str, str]) -> dict[str, Any]:
    tz = subscription.customer.timezone
    live = subscription.status not in CLOSED
    period = subscription_period_at(subscription, at=now) if live else None
    commitment = None
    if subscription.commitment_ends_at is not None and subscription.commitment_ends_at > now:
        commitment = _last_day(subscription, subscription.commitment_ends_at)
    return {
        "subscription": subscription,
        "live": live,
        "period": period_days(period.start, period.end, tz) if period else None,
        "renews_at": period.end if period and subscription_end(subscription) is None else None,
        "ends_at": subscription_end(subscription),
        "commitment_last_day": commitment,
        "devices": _live_devices(subscription),
        "scheduled": _scheduled(subscription, plan_names) if live else [],
    }


@portal_view()
def plan(request: HttpRequest) -> HttpResponse:
    portal = current_portal(request)
    now = timezone.now()
    subscriptions = subscription_list_for_customer(
        tenant=portal.tenant, customer=portal.customer, limit=MAX_SUBSCRIPTIONS
    )
    plan_names = {p.code: p.name for p in plan_list(tenant=portal.tenant)}
    rows = []
    for subscription in subscriptions:
        subscription.customer = portal.customer
        subscription.tenant = portal.tenant
        rows.append(_summary(subscription, now, plan_names))
    context = {
        "rows": rows,
        "can_change": portal.can_pay,
        "tz_name": portal.customer.timezone,
        "currency": portal.customer.currency,
    }
    return render(request, "portal/plan/index.html", context)


@portal_view(roles=BILLING)
def plan_change(request: HttpRequest, external_id: str, action: str) -> HttpResponseBase:
    """One change of one subscription: the form (GET), its preview (POST ``step=preview``) and its
    confirmation (POST ``step=confirm``)."""
    service_action = ACTIONS.get(action)
    if service_action is None:
        raise Http404("No such change.")
    subscription = _subscription_or_404(request, external_id)
    if subscription.status in CLOSED:
        messages.info(request, _("This subscription has ended: it cannot be changed any more."))
        return redirect("portal:plan")
    now = timezone.now()
    form_class = FORMS[service_action]
    data = request.POST if request.method == "POST" else None
    form = form_class(data, subscription=subscription, at=now)
    tz, currency = subscription.customer.timezone, subscription.customer.currency
    context: dict[str, Any] = {
        "subscription": subscription,
        "action": action,
        "service_action": service_action,
        "title": ACTION_TITLES[service_action],
        "form": form,
        "tz_name": tz,
        "currency": currency,
        "devices": _live_devices(subscription),
        "early_termination": subscription.plan.early_termination == "remaining_fees"
        and subscription.commitment_ends_at is not None
        and subscription.commitment_ends_at > subscription_period_at(subscription, at=now).end,
        "period_last_day": _last_day(subscription, subscription_period_at(subscription, at=now).end),
        "commitment_last_day": _last_day(subscription, subscription.commitment_ends_at),
    }
    if request.method == "POST" and form.is_valid():
        params = form.service_params()
        if request.POST.get("step") == "confirm":
            token = preview_token_read(request.POST.get("token", ""))
            fresh = (
                token is not None
                and token.get("s") == str(subscription.pk)
                and token.get("a") == service_action
                and token.get("p") == _canonical(params)
            )
            if fresh and token is not None:
                try:
                    result = _confirm(request, subscription, service_action, params, token)
                except PreviewStale:
                    context["stale"] = _(
                        "The amounts changed since your preview. Here they are again: check them, then confirm."
                    )
                except DomainError as exc:
                    _apply_service_error(form, exc)
                    return render(request, "portal/plan/change.html", context, status=422)
                else:
                    _done_message(request, result, tz)
                    return redirect("portal:plan")
            else:
                context["stale"] = _(
                    "This preview is out of date or was made for other choices. Here is the preview of "
                    "your choices now: check it, then confirm."
                )
        try:
            result = _change(request, subscription, service_action, params, preview=True)
        except DomainError as exc:
            _apply_service_error(form, exc)
        else:
            context.update(
                {
                    "result": result,
                    "outcome": _outcome(result),
                    "rows": preview_rows(result.lines, tz=tz, currency=currency),
                    "total": result.total,
                    "token": preview_token(subscription, service_action, params, result),
                }
            )
    status = 422 if request.method == "POST" and not form.is_valid() else 200
    return render(request, "portal/plan/change.html", context, status=status)


def _done_message(request: HttpRequest, result: ChangeResult, tz: str) -> None:
    title = ACTION_TITLES[result.action]
    if result.status == ChangeStatus.SCHEDULED:
        day = day_text(local_date(result.effective_at, tz), language=get_language(), format="long")
        messages.success(request, _("%(change)s: scheduled for %(day)s.") % {"change": title, "day": day})
    else:
        messages.success(request, _("%(change)s: done. Its lines will be on your next invoice.") % {"change": title})
