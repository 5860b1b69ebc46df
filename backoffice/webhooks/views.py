"""Back-office pages of outbound webhooks: the tenant's endpoints, one endpoint with its deliveries
and every try, and the actions on them (create, change, disable and enable, rotate the secret,
delete, replay a delivery).

Finance roles read them; owners and finance admins act. Views stay thin: each action is one call
to ``webhooks.services``, which the API calls too. A secret is shown once, on the page that answers
its creation or rotation, which no cache keeps (``Cache-Control: no-store``).
"""

import json
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from backoffice.access import FINANCE, WRITERS, can_write, current_actor, current_tenant, staff_view
from backoffice.formatting import query_string
from backoffice.pages import page_of
from backoffice.subscriptions.presenters import status_tabs
from backoffice.webhooks.forms import EndpointForm
from billing_platform.errors import DomainError
from tenancy.models import Tenant
from webhooks.events import EVENT_TYPES
from webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from webhooks.selectors import (
    webhook_delivery_counts,
    webhook_delivery_get,
    webhook_delivery_list,
    webhook_endpoint_get,
    webhook_endpoint_list,
)
from webhooks.services import (
    webhook_delivery_replay,
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_endpoint_disable,
    webhook_endpoint_enable,
    webhook_endpoint_rotate_secret,
    webhook_endpoint_update,
)


def _endpoint_or_404(tenant: Tenant, pk: str) -> WebhookEndpoint:
    try:
        return webhook_endpoint_get(tenant=tenant, pk=pk)
    except DomainError:
        raise Http404("No such webhook endpoint.") from None


def _no_store(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-store"  # the secret is shown once: never from a cache
    return response


@staff_view(FINANCE)
def endpoints(request: HttpRequest) -> HttpResponse:
    tenant = current_tenant(request)
    rows = list(webhook_endpoint_list(tenant=tenant))
    counts = webhook_delivery_counts(tenant=tenant, endpoint_ids=[e.pk for e in rows])
    context = {
        "rows": [{"endpoint": e, "counts": counts[e.pk]} for e in rows],
        "tz_name": tenant.timezone,
        "can_write": can_write(request),
    }
    return render(request, "backoffice/webhooks/endpoints.html", context)


@staff_view(WRITERS)
def endpoint_new(request: HttpRequest) -> HttpResponse:
    form = EndpointForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            endpoint, secret = webhook_endpoint_create(
                tenant=current_tenant(request),
                actor=current_actor(request),
                at=timezone.now(),
                url=form.cleaned_data["url"],
                events=form.cleaned_data["events"],
                description=form.cleaned_data["description"],
            )
        except DomainError as exc:
            form.apply_domain_errors(exc)
        else:
            messages.success(request, _("Webhook endpoint created."))
            # Rendered, not redirected to: the secret is shown on this answer only.
            return _no_store(_endpoint_page(request, endpoint, new_secret=secret))
    return render(request, "backoffice/webhooks/endpoint_form.html", {"form": form, "endpoint": None})


@staff_view(WRITERS)
def endpoint_edit(request: HttpRequest, pk: str) -> HttpResponse:
    endpoint = _endpoint_or_404(current_tenant(request), pk)
    initial = {"url": endpoint.url, "events": endpoint.events, "description": endpoint.description}
    form = EndpointForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            webhook_endpoint_update(
                endpoint=endpoint, actor=current_actor(request), at=timezone.now(), changes=form.cleaned_data
            )
        except DomainError as exc:
            form.apply_domain_errors(exc)
        else:
            messages.success(request, _("Webhook endpoint saved."))
            return redirect("backoffice:endpoint-detail", pk=endpoint.pk)
    return render(request, "backoffice/webhooks/endpoint_form.html", {"form": form, "endpoint": endpoint})


def _delivery_row(delivery: WebhookDelivery) -> dict[str, Any]:
    try:
        body = json.dumps(json.loads(delivery.event.body), indent=2, ensure_ascii=False)
    except ValueError:
        body = delivery.event.body
    return {"delivery": delivery, "tries": list(delivery.tries.all()), "body": body}


def _endpoint_page(request: HttpRequest, endpoint: WebhookEndpoint, *, new_secret: str = "") -> HttpResponse:
    tenant = current_tenant(request)
    status = request.GET.get("status", "")
    status = status if status in DeliveryStatus.values else ""
    deliveries = webhook_delivery_list(tenant=tenant, endpoint=endpoint, status=status or None)
    page = page_of(request, deliveries)
    counts = webhook_delivery_counts(tenant=tenant, endpoint_ids=[endpoint.pk])[endpoint.pk]
    now = timezone.now()
    previous_valid_until = (
        endpoint.previous_signing_secret_expires_at
        if endpoint.previous_signing_secret
        and endpoint.previous_signing_secret_expires_at
        and endpoint.previous_signing_secret_expires_at > now
        else None
    )
    context = {
        "endpoint": endpoint,
        "all_events": endpoint.events == ["*"],
        "event_descriptions": [(t, EVENT_TYPES.get(t, "")) for t in endpoint.events if t in EVENT_TYPES],
        "previous_valid_until": previous_valid_until,
        "new_secret": new_secret,
        "page": page,
        "rows": [_delivery_row(d) for d in page.object_list],
        "tabs": status_tabs(counts, DeliveryStatus.choices),
        "status": status,
        "query": query_string(status=status),
        "tz_name": tenant.timezone,
        "can_write": can_write(request),
    }
    return render(request, "backoffice/webhooks/endpoint_detail.html", context)


@staff_view(FINANCE)
def endpoint_detail(request: HttpRequest, pk: str) -> HttpResponse:
    return _endpoint_page(request, _endpoint_or_404(current_tenant(request), pk))


@staff_view(WRITERS)
@require_POST
def endpoint_disable_view(request: HttpRequest, pk: str) -> HttpResponse:
    endpoint = _endpoint_or_404(current_tenant(request), pk)
    webhook_endpoint_disable(endpoint=endpoint, actor=current_actor(request), at=timezone.now())
    messages.success(request, _("Endpoint disabled: it receives nothing until it is enabled again."))
    return redirect("backoffice:endpoint-detail", pk=endpoint.pk)


@staff_view(WRITERS)
@require_POST
def endpoint_enable_view(request: HttpRequest, pk: str) -> HttpResponse:
    endpoint = _endpoint_or_404(current_tenant(request), pk)
    webhook_endpoint_enable(endpoint=endpoint, actor=current_actor(request), at=timezone.now())
    messages.success(request, _("Endpoint enabled: it receives the events from now on."))
    return redirect("backoffice:endpoint-detail", pk=endpoint.pk)


@staff_view(WRITERS)
@require_POST
def endpoint_rotate_view(request: HttpRequest, pk: str) -> HttpResponse:
    endpoint = _endpoint_or_404(current_tenant(request), pk)
    endpoint, secret = webhook_endpoint_rotate_secret(
        endpoint=endpoint, actor=current_actor(request), at=timezone.now()
    )
    messages.success(request, _("New secret made: the old one keeps signing for 24 hours."))
    return _no_store(_endpoint_page(request, endpoint, new_secret=secret))


@staff_view(WRITERS)
@require_POST
def endpoint_delete_view(request: HttpRequest, pk: str) -> HttpResponse:
    endpoint = _endpoint_or_404(current_tenant(request), pk)
    webhook_endpoint_delete(endpoint=endpoint, actor=current_actor(request), at=timezone.now())
    messages.success(request, _("Endpoint %(url)s deleted.") % {"url": endpoint.url})
    return redirect("backoffice:endpoints")


@staff_view(WRITERS)
@require_POST
def delivery_replay_view(request: HttpRequest, pk: str) -> HttpResponse:
    tenant = current_tenant(request)
    try:
        delivery = webhook_delivery_get(tenant=tenant, pk=pk)
    except DomainError:
        raise Http404("No such delivery.") from None
    try:
        webhook_delivery_replay(delivery=delivery, actor=current_actor(request), at=timezone.now())
    except DomainError:
        messages.error(request, _("The endpoint is disabled: enable it before replaying its deliveries."))
    else:
        messages.success(request, _("Delivery queued to be sent again now."))
    default = reverse("backoffice:endpoint-detail", args=[delivery.endpoint_id])
    wanted = request.POST.get("next", "")
    safe = wanted and url_has_allowed_host_and_scheme(wanted, allowed_hosts={request.get_host()})
    return redirect(wanted if safe else default)
