"""Back-office pages. Views stay thin: they call the same services and selectors as the API."""

from typing import Any

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from backoffice.access import EVERYONE, FINANCE, WRITERS, can_write, current_actor, current_tenant, staff_view
from backoffice.forms import ApiKeyForm, CustomerEditForm, CustomerForm, LoginForm
from billing_platform.errors import DomainError, InvalidInput
from customers.models import Customer
from customers.selectors import customer_get, customer_list
from customers.services import customer_create, customer_update
from tenancy.middleware import SESSION_KEY
from tenancy.models import ApiKey
from tenancy.selectors import api_key_list, audit_log_list, membership_get
from tenancy.services import api_key_create, api_key_revoke

PAGE_SIZE = 50


class LoginView(auth_views.LoginView):
    template_name = "backoffice/login.html"
    authentication_form = LoginForm
    redirect_authenticated_user = True


@staff_view(EVERYONE)
def home(request: HttpRequest) -> HttpResponse:
    tenant = current_tenant(request)
    context = {
        "customer_count": Customer.objects.filter(tenant=tenant).count(),
        "active_key_count": ApiKey.objects.filter(tenant=tenant, revoked_at__isnull=True).count(),
        # The audit log is for finance roles; support agents see customers, not who changed what.
        "recent_audit": audit_log_list(tenant=tenant)[:8] if _sees_audit(request) else [],
    }
    return render(request, "backoffice/home.html", context)


@require_POST
def tenant_switch(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return redirect("backoffice:login")
    tenant_id = request.POST.get("tenant_id", "")
    try:
        membership = membership_get(user=request.user, tenant_id=tenant_id)
    except (ValueError, ValidationError):  # not a UUID
        membership = None
    if membership is None:
        messages.error(request, _("You are not a member of that tenant."))
    else:
        request.session[SESSION_KEY] = str(membership.tenant_id)
        messages.success(request, _("Switched to %(tenant)s.") % {"tenant": membership.tenant.name})
    return redirect("backoffice:home")


@staff_view(EVERYONE)
def customers(request: HttpRequest) -> HttpResponse:
    search = request.GET.get("q", "").strip()
    qs = customer_list(tenant=current_tenant(request), search=search or None).order_by("name", "id")
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    template = "backoffice/customers/_rows.html" if request.htmx else "backoffice/customers/list.html"  # type: ignore[attr-defined]
    return render(request, template, {"page": page, "q": search, "can_write": can_write(request)})


@staff_view(WRITERS)
def customer_new(request: HttpRequest) -> HttpResponse:
    tenant = current_tenant(request)
    form = CustomerForm(
        request.POST or None,
        initial={"currency": tenant.default_currency, "timezone": tenant.timezone, "language": "en"},
    )
    if request.method == "POST" and form.is_valid():
        try:
            customer = customer_create(
                tenant=tenant, actor=current_actor(request), at=timezone.now(), **_customer_fields(form)
            )
        except InvalidInput as exc:
            form.apply_domain_errors(exc)
        except DomainError as exc:
            form.add_error(None, exc.detail)
        else:
            messages.success(request, _("Customer %(name)s created.") % {"name": customer.name})
            return redirect("backoffice:customer-detail", external_id=customer.external_id)
    return render(request, "backoffice/customers/form.html", {"form": form, "creating": True})


@staff_view(EVERYONE)
def customer_detail(request: HttpRequest, external_id: str) -> HttpResponse:
    tenant = current_tenant(request)
    customer = _customer_or_404(request, external_id)
    history: Any = []
    if _sees_audit(request):
        history = audit_log_list(tenant=tenant, object_type="customer").filter(object_id=external_id)[:20]
    return render(
        request,
        "backoffice/customers/detail.html",
        {"customer": customer, "history": history, "can_write": can_write(request)},
    )


@staff_view(WRITERS)
def customer_edit(request: HttpRequest, external_id: str) -> HttpResponse:
    tenant = current_tenant(request)
    customer = _customer_or_404(request, external_id)
    initial = {f: getattr(customer, f) for f in CustomerForm.base_fields}
    form = CustomerEditForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        changes = _customer_fields(form)
        changes.pop("external_id")
        try:
            customer_update(
                tenant=tenant,
                actor=current_actor(request),
                at=timezone.now(),
                external_id=external_id,
                changes=changes,
            )
        except InvalidInput as exc:
            form.apply_domain_errors(exc)
        else:
            messages.success(request, _("Customer updated."))
            return redirect("backoffice:customer-detail", external_id=external_id)
    return render(request, "backoffice/customers/form.html", {"form": form, "creating": False, "customer": customer})


@staff_view(WRITERS)
def api_keys(request: HttpRequest) -> HttpResponse:
    tenant = current_tenant(request)
    form = ApiKeyForm(request.POST or None)
    new_key = None
    if request.method == "POST" and form.is_valid():
        try:
            _, new_key = api_key_create(
                tenant=tenant,
                name=form.cleaned_data["name"],
                scope=form.cleaned_data["scope"],
                actor=current_actor(request),
                at=timezone.now(),
                created_by=request.user,  # type: ignore[arg-type]
            )
        except InvalidInput as exc:
            form.add_error(None, exc.detail)
        else:
            form = ApiKeyForm()
    return render(
        request,
        "backoffice/api_keys.html",
        {"keys": api_key_list(tenant=tenant), "form": form, "new_key": new_key},
    )


@staff_view(WRITERS)
@require_POST
def api_key_revoke_view(request: HttpRequest, key_id: str) -> HttpResponse:
    try:
        key = api_key_revoke(
            tenant=current_tenant(request), key_id=key_id, actor=current_actor(request), at=timezone.now()
        )
    except DomainError as exc:
        messages.error(request, exc.detail)
    except (ValueError, ValidationError):  # not a UUID
        messages.error(request, _("No such API key."))
    else:
        messages.success(request, _("Key %(name)s revoked.") % {"name": key.name})
    return redirect("backoffice:api-keys")


@staff_view(FINANCE)
def audit_log(request: HttpRequest) -> HttpResponse:
    object_type = request.GET.get("object_type") or None
    qs = audit_log_list(tenant=current_tenant(request), object_type=object_type)
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "backoffice/audit_log.html", {"page": page, "object_type": object_type or ""})


def _customer_fields(form: CustomerForm) -> dict[str, Any]:
    data = dict(form.cleaned_data)
    data["tax_id"] = data.get("tax_id") or ""
    return data


def _customer_or_404(request: HttpRequest, external_id: str) -> Customer:
    try:
        return customer_get(tenant=current_tenant(request), external_id=external_id)
    except DomainError:
        raise Http404("No such customer.") from None


def _sees_audit(request: HttpRequest) -> bool:
    membership = getattr(request, "membership", None)
    return membership is not None and membership.role in FINANCE
