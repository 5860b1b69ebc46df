"""A customer's negotiated prices (customer overrides) on their own page, ``/customers/<id>/overrides/``:
the overrides of every plan with their dates, a form to create one (pick the plan's component, then
its price or charge, the same rows as a price change) and one to end one from a date.

``price_override_create`` and ``price_override_end`` judge; their errors come back next to their
field in one pass, with what was typed kept."""

import uuid
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from django import forms
from django.contrib import messages
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from backoffice.access import EVERYONE, WRITERS, can_write, current_actor, current_tenant, staff_view
from backoffice.catalog.presenters import override_row
from backoffice.catalog.price_change import ComponentPriceForm
from backoffice.forms import (
    DATETIME_INPUT_FORMATS,
    DATETIME_LOCAL_FORMAT,
    InputRulesMixin,
    LocalTimeMixin,
    error_summary,
    field_root,
)
from billing_platform.errors import DomainError, InvalidInput
from catalog.models import PlanComponent, PriceOverride
from catalog.selectors import plan_list
from catalog.services import price_override_create, price_override_end, price_override_is_end
from catalog.versions import override_rank
from customers.models import Customer
from customers.selectors import customer_get
from tenancy.models import Tenant


class OverrideDateForm(InputRulesMixin, LocalTimeMixin, forms.Form):
    effective_from = forms.DateTimeField(
        label=gettext_lazy("Effective from"),
        required=False,
        input_formats=DATETIME_INPUT_FORMATS,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=DATETIME_LOCAL_FORMAT),
    )

    # Shown once a date in the past was refused for want of it (the template shows it then).
    confirm_past = forms.BooleanField(label=gettext_lazy("I understand: this date is in the past."), required=False)

    def __init__(self, *args: Any, tz: ZoneInfo, required: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tz = tz
        field = self.fields["effective_from"]
        field.required = required
        field.help_text = gettext_lazy(
            "Periods that start at or after this instant use it; empty: from the start. Time in %(tz)s."
        ) % {"tz": tz.key}

    def past_unconfirmed(self) -> bool:
        """A date in the past without its box ticked (after ``is_valid``)."""
        when = self.cleaned_data.get("effective_from")
        return when is not None and when < timezone.now() and not self.cleaned_data.get("confirm_past")

    def ask_confirmation(self) -> None:
        self.add_error(
            "confirm_past",
            _(
                "This date is in the past: invoices already issued keep their prices, and the billing "
                "periods not invoiced yet that start from it are billed with this change at the next bill "
                "runs. Tick the box to confirm."
            ),
        )


class _Unconfirmed(Exception):
    """The service took the change, which waits for its past date to be confirmed: undone."""


def _customer_or_404(tenant: Tenant, external_id: str) -> Customer:
    try:
        return customer_get(tenant=tenant, external_id=external_id)
    except DomainError:
        raise Http404("No such customer.") from None


def _components(tenant: Tenant) -> list[PlanComponent]:
    return [c for plan in plan_list(tenant=tenant).order_by("name", "code") for c in plan.components.all()]


def _component_choices(components: list[PlanComponent]) -> list[Any]:
    groups: dict[str, list[tuple[str, str]]] = {}
    for c in components:
        groups.setdefault("%s (%s)" % (c.plan.name, c.plan.code), []).append(
            (str(c.pk), "%s — %s" % (c.product.code, c.product.name))
        )
    return [("", "—"), *groups.items()]


def _rows(tenant: Tenant, customer: Customer, now: datetime) -> list[dict[str, Any]]:
    """The customer's overrides, by plan and component, each marked in effect, scheduled, ended (an
    end row) or superseded; the one in effect can be ended."""
    overrides = list(
        PriceOverride.objects.filter(tenant=tenant, customer=customer)
        .select_related("component__plan", "component__product")
        .order_by("component__plan__code", "component__position", "effective_from", "created_at")
    )
    rows = []
    by_component: dict[Any, list[PriceOverride]] = {}
    for o in overrides:
        by_component.setdefault(o.component_id, []).append(o)
    for items in by_component.values():
        items.sort(key=override_rank)  # the order billing lets them take over in (catalog.versions)
        in_effect = [o for o in items if o.effective_from is None or o.effective_from <= now]
        current = in_effect[-1] if in_effect else None
        for o in items:
            if price_override_is_end(o):
                status = "end"
            elif o.effective_from is not None and o.effective_from > now:
                status = "scheduled"
            elif o is current:
                status = "current"
            else:
                status = "superseded"
            later = [x for x in items if x is not o and (x.effective_from or now) > (o.effective_from or now)]
            rows.append(
                {
                    **override_row(o),
                    "status": status,
                    # An override still to end: in effect or scheduled, and no end row after it.
                    "endable": status in ("current", "scheduled") and not any(price_override_is_end(x) for x in later),
                }
            )
    return rows


def _page(
    request: HttpRequest,
    customer: Customer,
    *,
    component: PlanComponent | None = None,
    price_form: ComponentPriceForm | None = None,
    date_form: OverrideDateForm | None = None,
    end_errors: dict[str, Any] | None = None,
    status: int = 200,
) -> HttpResponse:
    tenant = current_tenant(request)
    tz = ZoneInfo(tenant.timezone)
    components = _components(tenant)
    if component is not None and price_form is None:
        price_form = ComponentPriceForm(component=component, prefix="o", initial={"model": "flat"})
    if component is not None and date_form is None:
        date_form = OverrideDateForm(tz=tz)
    errors = error_summary(date_form, price_form) if price_form is not None and price_form.is_bound else []
    if price_form is not None and price_form.is_bound and price_form.is_tiered():
        for i, tier in enumerate(price_form.tiers.forms):
            for item in error_summary(tier):
                errors.append({**item, "label": "%s %d · %s" % (_("tier"), i + 1, item["label"])})
    rows = _rows(tenant, customer, timezone.now())
    for row in rows:
        pk = str(row["override"].pk)
        if row["endable"]:
            row["end_form"] = (end_errors or {}).get(pk) or OverrideDateForm(tz=tz, required=True, prefix="end-%s" % pk)
    for form in (end_errors or {}).values():
        errors.extend(error_summary(form))
    context = {
        "customer": customer,
        "rows": rows,
        "component_choices": _component_choices(components),
        "component": component,
        "price_form": price_form,
        "date_form": date_form,
        "errors": errors,
        "tz_name": tenant.timezone,
        "can_write": can_write(request),
    }
    return render(request, "backoffice/catalog/overrides.html", context, status=status)


def _component_of(tenant: Tenant, value: str) -> PlanComponent | None:
    return next((c for c in _components(tenant) if str(c.pk) == value), None)


@staff_view(EVERYONE)
def customer_overrides(request: HttpRequest, external_id: str) -> HttpResponse:
    tenant = current_tenant(request)
    customer = _customer_or_404(tenant, external_id)
    component = _component_of(tenant, request.GET.get("component", "")) if can_write(request) else None
    return _page(request, customer, component=component)


@staff_view(WRITERS)
@require_POST
def customer_override_new(request: HttpRequest, external_id: str) -> HttpResponse:
    tenant = current_tenant(request)
    customer = _customer_or_404(tenant, external_id)
    component = _component_of(tenant, request.POST.get("component", ""))
    if component is None:
        messages.error(request, _("Choose the plan component whose price is negotiated."))
        return redirect("backoffice:customer-overrides", external_id=customer.external_id)
    tz = ZoneInfo(tenant.timezone)
    data = request.POST.copy()
    if "add_tier" in data:
        total = data.get("o-tiers-TOTAL_FORMS", "0")
        data["o-tiers-TOTAL_FORMS"] = str(min(int(total) + 1 if total.isdigit() else 1, 20))
    price_form = ComponentPriceForm(component=component, data=data, prefix="o")
    date_form = OverrideDateForm(data, tz=tz)
    valid = [price_form.is_valid(), date_form.is_valid()]
    if "add_tier" in data or "refresh" in data:
        return _page(request, customer, component=component, price_form=price_form, date_form=date_form)
    entry = price_form.entry()
    if all(valid):
        effective_from = date_form.cleaned_data.get("effective_from")
        unconfirmed = date_form.past_unconfirmed()
        try:
            # The service checks everything in the same pass; a past date not yet confirmed undoes
            # what it wrote (rows and their audit entry only) and asks for the confirmation.
            with transaction.atomic():
                price_override_create(
                    tenant=tenant,
                    actor=current_actor(request),
                    at=timezone.now(),
                    customer=customer,
                    plan=component.plan,
                    data={**entry, **({"effective_from": effective_from} if effective_from else {})},
                )
                if unconfirmed:
                    raise _Unconfirmed
        except _Unconfirmed:
            date_form.ask_confirmation()
        except InvalidInput as exc:
            if unconfirmed:
                date_form.ask_confirmation()
            for error in exc.errors:
                path = error.field
                if field_root(path) == "effective_from":
                    date_form.add_error("effective_from", error.message)
                else:
                    price_form.put_error(path if path != "price" or price_form.has_price else "charge", error.message)
        except DomainError as exc:
            date_form.add_error("effective_from", exc.detail)
        else:
            messages.success(
                request,
                _("Negotiated price of %(product)s saved for %(customer)s.")
                % {"product": component.product.code, "customer": customer.name},
            )
            return redirect("backoffice:customer-overrides", external_id=customer.external_id)
    return _page(request, customer, component=component, price_form=price_form, date_form=date_form)


@staff_view(WRITERS)
@require_POST
def customer_override_end(request: HttpRequest, external_id: str, pk: str) -> HttpResponse:
    tenant = current_tenant(request)
    customer = _customer_or_404(tenant, external_id)
    override = (
        PriceOverride.objects.filter(tenant=tenant, customer=customer, pk=pk)
        .select_related("component__plan", "component__product")
        .first()
        if _is_uuid(pk)
        else None
    )
    if override is None:
        raise Http404("No such override.")
    form = OverrideDateForm(request.POST, tz=ZoneInfo(tenant.timezone), required=True, prefix="end-%s" % pk)
    if form.is_valid():
        unconfirmed = form.past_unconfirmed()
        try:
            with transaction.atomic():
                price_override_end(
                    tenant=tenant,
                    actor=current_actor(request),
                    at=timezone.now(),
                    customer=customer,
                    plan=override.component.plan,
                    product=override.component.product.code,
                    effective_from=form.cleaned_data["effective_from"],
                )
                if unconfirmed:
                    raise _Unconfirmed
        except _Unconfirmed:
            form.ask_confirmation()
        except InvalidInput as exc:
            for error in exc.errors:
                form.add_error("effective_from", error.message)
        except DomainError as exc:
            form.add_error("effective_from", exc.detail)
        else:
            messages.success(
                request,
                _("The negotiated price of %(product)s ends: the price books apply again from that date.")
                % {"product": override.component.product.code},
            )
            return redirect("backoffice:customer-overrides", external_id=customer.external_id)
    return _page(request, customer, end_errors={str(override.pk): form})


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
