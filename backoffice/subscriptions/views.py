"""Back-office subscription pages: the list, signing a subscription, its detail (devices, timeline,
charge ledger, scheduled changes), changes with a live proration preview, and the device-cloud
webhooks with their replay.

Views stay thin: they parse forms and call the subscription services and selectors the API calls
(``subscription_create``, ``subscription_change``, ``webhook_replay``), so a rule cannot differ
between the pages and the API. What the pages show is computed in
``backoffice.subscriptions.presenters``.
"""

from typing import Any
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from backoffice.access import EVERYONE, WRITERS, can_write, current_actor, current_tenant, staff_view
from backoffice.formatting import choice_label, moment, money, money_of, query_string
from backoffice.pages import clean_text, page_of
from backoffice.subscriptions.forms import ChangeForm, SubscriptionForm, local_now
from backoffice.subscriptions.presenters import (
    change_lines,
    device_counts,
    ledger,
    pretty_body,
    status_tabs,
    timeline,
)
from billing_platform.errors import DomainError
from catalog.selectors import plan_get, plan_list
from customers.selectors import customer_get, customer_list
from subscriptions.changes import ChangeResult, subscription_change
from subscriptions.models import (
    ChangeAction,
    ChangeStatus,
    Device,
    DeviceCloudWebhook,
    Subscription,
    SubscriptionStatus,
    WebhookStatus,
)
from subscriptions.periods import subscription_end
from subscriptions.selectors import (
    live_device_get,
    service_charge_list,
    subscription_change_list,
    subscription_get,
    subscription_list,
    subscription_status_counts,
    webhook_get,
    webhook_list,
    webhook_status_counts,
)
from subscriptions.services import subscription_create
from subscriptions.webhooks import webhook_replay
from tenancy.models import Tenant

CLOSED = (SubscriptionStatus.CANCELLED, SubscriptionStatus.ENDED)
# Replaying an applied webhook changes nothing; the button is offered for the others.
REPLAYABLE = (WebhookStatus.RECEIVED, WebhookStatus.REJECTED, WebhookStatus.FAILED)


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


@staff_view(EVERYONE)
def subscriptions(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status", "")
    status = status if status in SubscriptionStatus.values else ""
    search = clean_text(request.GET.get("q", ""))
    customer = clean_text(request.GET.get("customer", ""))[:200]  # one customer, by its exact external ID
    tenant = current_tenant(request)
    counts = subscription_status_counts(tenant=tenant, search=search or None, customer=customer or None)
    tabs = status_tabs(counts, SubscriptionStatus.choices, q=search, customer=customer)
    qs = subscription_list(tenant=tenant, status=status or None, search=search or None, customer=customer or None)
    page = page_of(request, qs.order_by("-created_at", "external_id"))
    rows = [{"subscription": s, "devices": device_counts(s)} for s in page.object_list]
    context = {
        "page": page,
        "rows": rows,
        "tabs": tabs,
        "status": status,
        "q": search,
        "customer": customer,
        "query": query_string(status=status, q=search, customer=customer),
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
    form = SubscriptionForm(
        request.POST or None, initial=initial, tz=tz, customers=customers, plans=plans, tenant=tenant
    )
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
        "lines": change_lines(result.lines, currency, tz),
        "total": money_of(result.total, currency),
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
    tenant = current_tenant(request)
    scheduled = subscription_change_list(tenant=tenant, subscription=subscription, status=ChangeStatus.SCHEDULED)
    active, total = device_counts(subscription)
    charges = service_charge_list(tenant=tenant, subscription=subscription)
    context = {
        "subscription": subscription,
        "tz_name": tz,
        "tenant_tz": tenant.timezone,
        "devices": devices,
        "active_devices": active,
        "live_devices": total,
        "timeline": timeline(subscription, tz),
        "ledger": ledger(charges, subscription.customer.currency, tz),
        "scheduled": scheduled,
        "form": form if writable else None,
        "can_write": can_write(request),
        "closed": subscription.status in CLOSED,
        "ends_at": subscription_end(subscription),
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
                "action": choice_label(ChangeAction, result.action),
                "when": moment(panel["effective_at"], panel["tz_name"]),
            },
        )
    else:
        messages.success(
            request,
            _("%(action)s applied: %(total)s on the next invoice.")
            % {"action": choice_label(ChangeAction, result.action), "total": money(panel["total"])},
        )
    return redirect("backoffice:subscription-detail", external_id=subscription.external_id)


# --- device-cloud webhooks ------------------------------------------------------------------


@staff_view(EVERYONE)
def webhooks(request: HttpRequest) -> HttpResponse:
    tenant = current_tenant(request)
    status = request.GET.get("status", "")
    status = status if status in WebhookStatus.values else ""
    page = page_of(request, webhook_list(tenant=tenant, status=status or None).order_by("-received_at", "-id"))
    context = {
        "page": page,
        "rows": [{"webhook": w, "body": pretty_body(w.body)} for w in page.object_list],
        "tabs": status_tabs(webhook_status_counts(tenant=tenant), WebhookStatus.choices),
        "status": status,
        "query": query_string(status=status),
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
        "body": pretty_body(webhook.body),
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
