"""Back-office subscription pages: the list, signing a subscription, its detail (devices, timeline,
charge ledger, scheduled changes), changes with a live proration preview, and the device-cloud
webhooks with their replay.

Views stay thin: they parse forms and call the subscription services and selectors the API calls
(``subscription_create``, ``subscription_change``, ``webhook_replay``), so a rule cannot differ
between the pages and the API. What is left here is presentation: local dates in the customer's
time zone, human labels for timeline entries, amounts with the currency's decimals.
"""

import json
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.dateparse import parse_datetime
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from backoffice.access import EVERYONE, WRITERS, can_write, current_actor, current_tenant, staff_view
from backoffice.catalog_views import _money
from backoffice.subscription_forms import ChangeForm, SubscriptionForm, local_now
from billing_platform.errors import DomainError
from billing_platform.periods import local_date
from catalog.selectors import plan_get, plan_list
from customers.selectors import customer_get, customer_list
from subscriptions.changes import ChangeLine, ChangeResult, subscription_change
from subscriptions.models import (
    ChangeAction,
    ChangeStatus,
    ChargeKind,
    Device,
    DeviceCloudWebhook,
    ServiceCharge,
    Subscription,
    SubscriptionChange,
    SubscriptionEvent,
    SubscriptionStatus,
    WebhookStatus,
)
from subscriptions.selectors import live_device_get, subscription_get, subscription_list, webhook_get, webhook_list
from subscriptions.services import subscription_create
from subscriptions.webhooks import webhook_replay
from tenancy.models import ActorType, Tenant

PAGE_SIZE = 50
CLOSED = (SubscriptionStatus.CANCELLED, SubscriptionStatus.ENDED)
# Replaying an applied webhook changes nothing; the button is offered for the others.
REPLAYABLE = (WebhookStatus.RECEIVED, WebhookStatus.REJECTED, WebhookStatus.FAILED)

EVENT_LABELS = {
    "subscription.signed": gettext_lazy("Signed"),
    "subscription.status_changed": gettext_lazy("Status changed"),
    "subscription.add_devices": gettext_lazy("Devices added"),
    "subscription.remove_devices": gettext_lazy("Devices removed"),
    "subscription.change_plan": gettext_lazy("Plan changed"),
    "subscription.cancel": gettext_lazy("Cancelled"),
    "subscription.change_scheduled": gettext_lazy("Change scheduled"),
    "device.shipped": gettext_lazy("Device shipped"),
    "device.activated": gettext_lazy("Device activated"),
    "device.deactivated": gettext_lazy("Device deactivated"),
}
# Types of the lines of a change (subscriptions.changes.ChangeLine.type).
CHANGE_LINE_TYPES = {
    "credit": gettext_lazy("Credit"),
    "service": gettext_lazy("Charge"),
    "fee": gettext_lazy("Fee"),
}


# --- presentation helpers -------------------------------------------------------------------


def _page(request: HttpRequest, qs: Any) -> Any:
    return Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))


def _label(choices: Any, value: str) -> str:
    return str(dict(choices.choices).get(value, value)) if value else ""


def _days(start: datetime, end: datetime, tz: str) -> tuple[date, date]:
    """A half-open period as the first and last local days it covers: [1 Apr, 1 May) -> 1 Apr, 30 Apr."""
    return local_date(start, tz), local_date(end - timedelta(microseconds=1), tz)


def _local(value: str, tz: str) -> datetime | None:
    """An ISO instant stored in an event's data, in ``tz``."""
    instant = parse_datetime(value) if isinstance(value, str) else None
    return timezone.localtime(instant, ZoneInfo(tz)) if instant and timezone.is_aware(instant) else None


def _number(value: Any) -> Any:
    try:
        return formats.localize(Decimal(str(value)))
    except (InvalidOperation, ValueError):
        return value


def _device_counts(subscription: Subscription) -> tuple[int, int]:
    """(active, total) of the devices on the subscription now: removed devices are not counted."""
    live = [d for d in subscription.devices.all() if d.removed_at is None]
    active = [d for d in live if d.activated_at is not None and d.deactivated_at is None]
    return len(active), len(live)


def _subscription_or_404(tenant: Tenant, external_id: str) -> Subscription:
    if "\x00" in external_id:  # PostgreSQL refuses NUL characters: no subscription has one
        raise Http404("No such subscription.")
    try:
        return subscription_get(tenant=tenant, external_id=external_id)
    except DomainError:
        raise Http404("No such subscription.") from None


def _next_url(request: HttpRequest, default: str) -> str:
    wanted = request.POST.get("next", "")
    if wanted and url_has_allowed_host_and_scheme(wanted, allowed_hosts={request.get_host()}):
        return wanted
    return default


# --- list -----------------------------------------------------------------------------------


def _query(**params: str) -> str:
    """A query string of the non-empty parameters, for links that keep the filters."""
    return urlencode({k: v for k, v in params.items() if v})


def _status_tabs(counts: dict[str, int], choices: Iterable[tuple[str, Any]], q: str = "") -> list[dict[str, Any]]:
    tabs = [{"status": "", "label": _("All"), "count": sum(counts.values()), "query": _query(q=q)}]
    tabs += [
        {"status": value, "label": label, "count": counts.get(value, 0), "query": _query(status=value, q=q)}
        for value, label in choices
    ]
    return tabs


def _status_counts(qs: QuerySet[Any]) -> dict[str, int]:
    return dict(qs.prefetch_related(None).order_by().values_list("status").annotate(n=Count("pk")))


@staff_view(EVERYONE)
def subscriptions(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status", "")
    status = status if status in SubscriptionStatus.values else ""
    search = request.GET.get("q", "").replace("\x00", "").strip()  # PostgreSQL refuses NUL characters
    qs = subscription_list(tenant=current_tenant(request))
    if search:
        # The selector filters by an exact customer; the page also finds parts of IDs and names.
        qs = qs.filter(
            Q(external_id__icontains=search)
            | Q(customer__external_id__icontains=search)
            | Q(customer__name__icontains=search)
        )
    tabs = _status_tabs(_status_counts(qs), SubscriptionStatus.choices, q=search)
    if status:
        qs = qs.filter(status=status)
    page = _page(request, qs.order_by("-created_at", "external_id"))
    rows = [{"subscription": s, "devices": _device_counts(s)} for s in page.object_list]
    context = {
        "page": page,
        "rows": rows,
        "tabs": tabs,
        "status": status,
        "q": search,
        "query": _query(status=status, q=search),
        "can_write": can_write(request),
    }
    template = "backoffice/subscriptions/_rows.html" if request.htmx else "backoffice/subscriptions/list.html"  # type: ignore[attr-defined]
    return render(request, template, context)


# --- new subscription -----------------------------------------------------------------------


def _plan_choices(tenant: Tenant, exclude: Any = None) -> list[tuple[str, str]]:
    return [(p.code, "%s (%s)" % (p.name, p.code)) for p in plan_list(tenant=tenant) if p.pk != exclude]


@staff_view(WRITERS)
def subscription_new(request: HttpRequest) -> HttpResponse:
    tenant = current_tenant(request)
    tz = ZoneInfo(tenant.timezone)
    customers = [
        (c.external_id, "%s (%s)" % (c.name, c.external_id))
        for c in customer_list(tenant=tenant).order_by("name", "id")
    ]
    plans = _plan_choices(tenant)
    initial = {"signed_at": local_now(tz), "customer": request.GET.get("customer", "")}
    form = SubscriptionForm(request.POST or None, initial=initial, tz=tz, customers=customers, plans=plans)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            subscription = subscription_create(
                tenant=tenant,
                actor=current_actor(request),
                at=timezone.now(),
                external_id=data["external_id"],
                customer=customer_get(tenant=tenant, external_id=data["customer"]),
                plan=plan_get(tenant=tenant, code=data["plan"]),
                signed_at=data["signed_at"],
                starts_on=data["starts_on"],
                devices=data["devices"],
            )
        except DomainError as exc:
            form.apply_domain_errors(exc)
        else:
            messages.success(
                request,
                _("Subscription %(id)s created: %(status)s.")
                % {"id": subscription.external_id, "status": subscription.get_status_display()},
            )
            return redirect("backoffice:subscription-detail", external_id=subscription.external_id)
    context = {"form": form, "has_customers": bool(customers), "has_plans": bool(plans), "tz_name": tenant.timezone}
    return render(request, "backoffice/subscriptions/form.html", context)


# --- detail ---------------------------------------------------------------------------------


def _event_details(event: SubscriptionEvent, tz: str) -> list[str]:
    """The data of a timeline entry as short sentences; unknown keys are left out."""
    data = event.data if isinstance(event.data, dict) else {}
    details: list[str] = []
    if data.get("plan") and event.type == "subscription.signed":
        details.append(_("Plan %(plan)s") % {"plan": data["plan"]})
    if data.get("from_plan") or data.get("to_plan"):
        details.append("%s → %s" % (data.get("from_plan", "?"), data.get("to_plan", "?")))
    for key in ("devices", "device_ids"):
        if isinstance(data.get(key), list) and data[key]:
            details.append(_("Devices: %(devices)s") % {"devices": ", ".join(str(d) for d in data[key])})
    if event.type == "subscription.change_scheduled":
        when = _local(data.get("effective_at", ""), tz)
        action = _label(ChangeAction, str(data.get("action", "")))
        if data.get("plan"):
            action = "%s (%s)" % (action, data["plan"])
        details.append(
            _("%(action)s on %(when)s")
            % {"action": action, "when": when.strftime("%Y-%m-%d %H:%M %Z") if when else "?"}
        )
    for line in data.get("lines") or []:
        if isinstance(line, dict):
            details.append(
                "%s %s %s"
                % (
                    CHANGE_LINE_TYPES.get(str(line.get("type")), line.get("type", "")),
                    line.get("product", ""),
                    _number(line.get("amount", "")),
                )
            )
    if data.get("reason"):
        details.append(_("Reason: %(reason)s") % {"reason": data["reason"]})
    return details


def _timeline(subscription: Subscription, tz: str) -> list[dict[str, Any]]:
    return [
        {
            "event": e,
            "label": EVENT_LABELS.get(e.type, e.type),
            "from_status": _label(SubscriptionStatus, e.from_status),
            "to_status": _label(SubscriptionStatus, e.to_status),
            "actor_type": _label(ActorType, e.actor_type),
            "details": _event_details(e, tz),
        }
        for e in subscription.events.all()
    ]


def _ledger(subscription: Subscription, tz: str) -> dict[str, Any]:
    # The API has no listing of the charge ledger yet, so there is no selector for it either.
    charges = (
        ServiceCharge.objects.filter(tenant_id=subscription.tenant_id, subscription=subscription)
        .select_related("component__product", "device")
        .order_by("period_start", "created_at", "id")
    )
    rows, pending = [], Decimal(0)
    currency = subscription.customer.currency
    for charge in charges:
        signed = -charge.amount if charge.kind == ChargeKind.CREDIT else charge.amount
        if charge.invoiced_at is None:
            pending += signed
        rows.append(
            {
                "charge": charge,
                "period": _days(charge.period_start, charge.period_end, tz),
                "covered": _days(charge.covered_start, charge.covered_end, tz),
                "amount": _money(signed, charge.currency),
            }
        )
    return {"rows": rows, "pending": _money(pending, currency), "currency": currency}


def _change_form(request: HttpRequest, subscription: Subscription, data: Any = None) -> ChangeForm:
    tenant = current_tenant(request)
    live = [d for d in subscription.devices.all() if d.removed_at is None]
    return ChangeForm(
        data,
        tz=ZoneInfo(tenant.timezone),
        devices=live,
        plans=_plan_choices(tenant, exclude=subscription.plan_id),
        starts_at=subscription.starts_at,
    )


def _change_lines(lines: Iterable[ChangeLine], currency: str, tz: str) -> list[dict[str, Any]]:
    rows = []
    for line in lines:
        first, last = _days(line.period_start, line.period_end, tz)
        days = None
        if line.type != "fee" and line.fraction > 0:
            # The days charged or credited out of the days of the whole service period.
            covered = (last - first).days + 1
            days = (covered, int((Decimal(covered) / line.fraction).to_integral_value()))
        rows.append(
            {
                "line": line,
                "type_label": CHANGE_LINE_TYPES.get(line.type, line.type),
                "first": first,
                "last": last,
                "days": days,
                "unit_amount": _money(line.unit_amount, currency),
                "amount": _money(line.amount, currency),
            }
        )
    return rows


def _change_outcome(
    request: HttpRequest, subscription: Subscription, form: ChangeForm, *, preview: bool
) -> dict[str, Any]:
    """Runs ``subscription_change`` (a preview writes nothing) and returns what the panel shows."""
    if not form.is_valid():
        return {"invalid": True}
    tz, currency = subscription.customer.timezone, subscription.customer.currency
    try:
        result: ChangeResult = subscription_change(
            subscription=subscription,
            action=form.cleaned_data["action"],
            params=form.service_params(),
            actor=current_actor(request),
            at=timezone.now(),
            effective_at=form.cleaned_data.get("effective_at"),
            preview=preview,
        )
    except DomainError as exc:
        return {"error": exc}
    # A preview's change row was rolled back, but it still says whether it would apply or wait.
    would = result.outcome or result.status
    return {
        "result": result,
        "would": would,
        "lines": _change_lines(result.lines, currency, tz),
        "total": _money(result.total, currency),
        "currency": currency,
        "effective_at": timezone.localtime(result.effective_at, ZoneInfo(tz)),
        "tz_name": tz,
    }


def _detail_page(
    request: HttpRequest,
    subscription: Subscription,
    *,
    form: ChangeForm | None = None,
    panel: dict[str, Any] | None = None,
) -> HttpResponse:
    tz = subscription.customer.timezone
    writable = can_write(request) and subscription.status not in CLOSED
    if form is None and writable:
        form = _change_form(request, subscription)
    devices = list(subscription.devices.all())
    scheduled = SubscriptionChange.objects.filter(
        tenant_id=subscription.tenant_id, subscription=subscription, status=ChangeStatus.SCHEDULED
    ).order_by("effective_at", "created_at")
    active, total = _device_counts(subscription)
    context = {
        "subscription": subscription,
        "tz_name": tz,
        "tenant_tz": current_tenant(request).timezone,
        "devices": devices,
        "active_devices": active,
        "live_devices": total,
        "timeline": _timeline(subscription, tz),
        "ledger": _ledger(subscription, tz),
        "scheduled": scheduled,
        "form": form if writable else None,
        "can_write": can_write(request),
        "closed": subscription.status in CLOSED,
        **(panel or {}),
    }
    return render(request, "backoffice/subscriptions/detail.html", context)


@staff_view(EVERYONE)
def subscription_detail(request: HttpRequest, external_id: str) -> HttpResponse:
    return _detail_page(request, _subscription_or_404(current_tenant(request), external_id))


@staff_view(WRITERS)
@require_POST
def subscription_change_preview(request: HttpRequest, external_id: str) -> HttpResponse:
    """The proration of a change, computed by the service with ``preview=True``: nothing is written.
    HTMX gets the panel alone; without JavaScript the whole page comes back with it."""
    subscription = _subscription_or_404(current_tenant(request), external_id)
    form = _change_form(request, subscription, request.POST)
    panel = _change_outcome(request, subscription, form, preview=True)
    if request.htmx:  # type: ignore[attr-defined]
        return render(request, "backoffice/subscriptions/_change_panel.html", {"form": form, **panel})
    return _detail_page(request, subscription, form=form, panel=panel)


@staff_view(WRITERS)
@require_POST
def subscription_change_apply(request: HttpRequest, external_id: str) -> HttpResponse:
    subscription = _subscription_or_404(current_tenant(request), external_id)
    form = _change_form(request, subscription, request.POST)
    panel = _change_outcome(request, subscription, form, preview=False)
    result = panel.get("result")
    if result is None:
        return _detail_page(request, subscription, form=form, panel=panel)
    if result.status == ChangeStatus.SCHEDULED:
        messages.success(
            request,
            _("%(action)s scheduled for %(when)s.")
            % {
                "action": _label(ChangeAction, result.action),
                "when": panel["effective_at"].strftime("%Y-%m-%d %H:%M %Z"),
            },
        )
    else:
        messages.success(
            request,
            _("%(action)s applied: %(total)s %(currency)s on the next invoice.")
            % {
                "action": _label(ChangeAction, result.action),
                "total": formats.localize(panel["total"]),
                "currency": panel["currency"],
            },
        )
    return redirect("backoffice:subscription-detail", external_id=subscription.external_id)


# --- device-cloud webhooks ------------------------------------------------------------------


def _pretty_body(body: str) -> str:
    try:
        return json.dumps(json.loads(body), indent=2, ensure_ascii=False)
    except ValueError:
        return body


@staff_view(EVERYONE)
def webhooks(request: HttpRequest) -> HttpResponse:
    tenant = current_tenant(request)
    status = request.GET.get("status", "")
    status = status if status in WebhookStatus.values else ""
    page = _page(request, webhook_list(tenant=tenant, status=status or None).order_by("-received_at", "-id"))
    context = {
        "page": page,
        "rows": [{"webhook": w, "body": _pretty_body(w.body)} for w in page.object_list],
        "tabs": _status_tabs(_status_counts(webhook_list(tenant=tenant)), WebhookStatus.choices),
        "status": status,
        "query": _query(status=status),
        "tz_name": tenant.timezone,
        "can_write": can_write(request),
        "replayable": REPLAYABLE,
    }
    return render(request, "backoffice/subscriptions/webhooks.html", context)


def _webhook_or_404(tenant: Tenant, pk: str) -> DeviceCloudWebhook:
    try:
        return webhook_get(tenant=tenant, pk=pk)
    except DomainError:
        raise Http404("No such webhook.") from None


@staff_view(EVERYONE)
def webhook_detail(request: HttpRequest, pk: str) -> HttpResponse:
    tenant = current_tenant(request)
    webhook = _webhook_or_404(tenant, pk)
    device: Device | None = live_device_get(tenant=tenant, device_id=webhook.device_id) if webhook.device_id else None
    context = {
        "webhook": webhook,
        "body": _pretty_body(webhook.body),
        "device": device,
        "tz_name": tenant.timezone,
        "can_write": can_write(request),
        "replayable": REPLAYABLE,
    }
    return render(request, "backoffice/subscriptions/webhook_detail.html", context)


@staff_view(WRITERS)
@require_POST
def webhook_replay_view(request: HttpRequest, pk: str) -> HttpResponse:
    tenant = current_tenant(request)
    webhook = _webhook_or_404(tenant, pk)
    try:
        webhook_replay(tenant=tenant, webhook=webhook, actor=current_actor(request), at=timezone.now())
    except DomainError as exc:
        messages.error(request, exc.detail)
    else:
        messages.success(request, _("Webhook %(id)s queued to be applied again.") % {"id": webhook.webhook_id})
    return redirect(_next_url(request, reverse("backoffice:webhook-detail", args=[webhook.pk])))
