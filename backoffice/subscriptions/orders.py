"""The shop's orders in the back-office (Billing → Orders): the list with a status filter, an
order's page with its shipping address, its invoice and its slots, and a form per open slot that
binds the shipped device's id to it (``subscriptions.orders.slot_bind``). The order is fulfilled
once every slot has its device; the device cloud then activates each by its id."""

from datetime import datetime
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from django import forms
from django.contrib import messages
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from backoffice.access import EVERYONE, WRITERS, can_write, current_actor, current_tenant, staff_view
from backoffice.formatting import query_string
from backoffice.forms import DomainErrorFormMixin, InputRulesMixin, LocalTimeMixin
from backoffice.pages import page_of
from backoffice.subscriptions.presenters import status_tabs
from billing_platform.errors import DomainError
from invoicing.models import Invoice
from subscriptions.models import Device, Order, OrderStatus
from subscriptions.orders import order_list, order_slots, slot_bind
from tenancy.models import Tenant


class SlotBindForm(InputRulesMixin, LocalTimeMixin, DomainErrorFormMixin, forms.Form):
    device_id = forms.CharField(label=gettext_lazy("Device ID"), max_length=200)
    device_type = forms.CharField(label=gettext_lazy("Type"), max_length=100, required=False)
    region = forms.CharField(label=gettext_lazy("Region"), max_length=100, required=False)
    shipped_at = forms.DateTimeField(
        label=gettext_lazy("Shipped"),
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M"],
    )

    def __init__(self, *args: Any, tz: ZoneInfo, slot: Device, **kwargs: Any) -> None:
        self.tz = tz
        super().__init__(*args, prefix="slot-%s" % slot.pk, **kwargs)
        self.slot = slot

    def service_kwargs(self) -> dict[str, Any]:
        data = self.cleaned_data
        shipped: datetime | None = data.get("shipped_at")
        return {
            "device_id": data["device_id"].strip(),
            "device_type": data["device_type"].strip() or None,
            "region": data["region"].strip() or None,
            "shipped_at": shipped,
        }


def _order_or_404(tenant: Tenant, pk: str) -> Order:
    try:
        order_id = UUID(pk)
    except ValueError:
        raise Http404("No such order.") from None
    order = order_list(tenant=tenant).filter(pk=order_id).first()
    if order is None:
        raise Http404("No such order.")
    return order


@staff_view(EVERYONE)
def orders(request: HttpRequest) -> HttpResponse:
    tenant = current_tenant(request)
    status = request.GET.get("status", "")
    status = status if status in OrderStatus.values else ""
    counts = dict(
        Order.objects.filter(tenant=tenant).values_list("status").annotate(n=Count("id")).values_list("status", "n")
    )
    qs = (
        order_list(tenant=tenant, status=status or None)
        .annotate(open_slots=Count("subscription__devices", filter=_open_slots()))
        .order_by("-placed_at", "-sequence")  # an aggregate query drops the model's ordering
    )
    page = page_of(request, qs)
    context = {
        "page": page,
        "tabs": status_tabs(counts, OrderStatus.choices),
        "status": status,
        "query": query_string(status=status),
        "tz_name": tenant.timezone,
    }
    return render(request, "backoffice/orders/list.html", context)


def _open_slots() -> Q:
    return Q(subscription__devices__device_id="", subscription__devices__removed_at__isnull=True)


def _order_page(request: HttpRequest, order: Order, bound_form: SlotBindForm | None = None) -> HttpResponse:
    tenant = current_tenant(request)
    tz = ZoneInfo(tenant.timezone)
    writer = can_write(request)
    rows: list[dict[str, Any]] = []
    open_slots = 0
    for slot in order_slots(order):
        open_slots += slot.is_slot
        form = None
        if writer and slot.is_slot:
            if bound_form is not None and bound_form.slot.pk == slot.pk:
                form = bound_form
            else:
                form = SlotBindForm(tz=tz, slot=slot, initial={"shipped_at": timezone.now().astimezone(tz)})
        rows.append({"slot": slot, "form": form})
    invoices = Invoice.objects.filter(tenant=tenant, order=order).order_by("created_at")
    context = {
        "order": order,
        "rows": rows,
        "invoices": invoices,
        "open_slots": open_slots,
        "tz_name": tenant.timezone,
        "can_write": writer,
    }
    return render(request, "backoffice/orders/detail.html", context, status=400 if bound_form is not None else 200)


@staff_view(EVERYONE)
def order_detail(request: HttpRequest, pk: str) -> HttpResponse:
    return _order_page(request, _order_or_404(current_tenant(request), pk))


@staff_view(WRITERS)
@require_POST
def order_slot_bind(request: HttpRequest, pk: str, slot: str) -> HttpResponse:
    tenant = current_tenant(request)
    order = _order_or_404(tenant, pk)
    found = next((d for d in order_slots(order) if str(d.pk) == slot), None)
    if found is None:
        raise Http404("No such slot.")
    form = SlotBindForm(request.POST, tz=ZoneInfo(tenant.timezone), slot=found)
    if form.is_valid():
        try:
            device = slot_bind(
                tenant=tenant,
                subscription=order.subscription,
                slot_id=found.pk,
                actor=current_actor(request),
                at=timezone.now(),
                **form.service_kwargs(),
            )
        except DomainError as exc:
            form.apply_domain_errors(exc)
        else:
            order.refresh_from_db()
            if order.status == OrderStatus.FULFILLED:
                messages.success(
                    request,
                    _("Device %(device)s bound. Every slot has its device: order %(number)s is fulfilled.")
                    % {"device": device.device_id, "number": order.number},
                )
            else:
                messages.success(request, _("Device %(device)s bound to the slot.") % {"device": device.device_id})
            return redirect("backoffice:order-detail", pk=order.pk)
    return _order_page(request, order, bound_form=form)
