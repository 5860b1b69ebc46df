"""The back-office's own pages: login, the tenant switcher, the home page, API keys and the audit
log. The pages of each domain are in its sub-package (``backoffice.customers``, ``.catalog``,
``.subscriptions``, ``.usage``, ``.invoicing``, ``.settings``).

Views stay thin: they call the same services and selectors as the API."""

from allauth.account.views import LoginView as AllauthLoginView
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from backoffice import csv_export, dashboard
from backoffice.access import EVERYONE, FINANCE, WRITERS, current_actor, current_tenant, staff_view
from backoffice.forms import ApiKeyForm
from backoffice.pages import page_of
from billing_platform.errors import DomainError, InvalidInput
from billing_platform.periods import local_date
from tenancy.middleware import SESSION_KEY
from tenancy.selectors import api_key_list, audit_log_list, membership_get
from tenancy.services import api_key_create, api_key_revoke

# The home page's "Recent changes": the last few entries, the audit log has them all.
RECENT_CHANGES = 5


class LoginView(AllauthLoginView):
    """allauth's login (e-mail and password, then the second factor of those who enrolled one),
    on the back-office's page. django-axes refuses it while the account or the address is locked out."""

    template_name = "backoffice/login.html"


@staff_view(EVERYONE)
def home(request: HttpRequest) -> HttpResponseBase:
    """The finance dashboard (``backoffice.dashboard``); ``?export=<table>`` downloads a chart's
    figures as CSV. Support agents see the work without the money."""
    tenant = current_tenant(request)
    finance = getattr(request, "membership").role in FINANCE  # noqa: B009 (set by the tenancy middleware)
    today = local_date(timezone.now(), tenant.timezone)
    export = request.GET.get("export")
    allowed = dashboard.EXPORTS if finance else dashboard.WORK_EXPORTS
    if export is not None and export not in allowed:
        raise Http404("No such table.")
    board = dashboard.dashboard_get(tenant=tenant, today=today, finance=finance)
    if export:
        header, rows = dashboard.export_table(board, export)
        filename = "dashboard-%s-%s.csv" % (export, today.isoformat())
        return csv_export.csv_response(filename=filename, header=header, rows=rows)
    labels = dashboard.bucket_labels()
    context = {
        "board": board,
        "charts": dashboard.chart_data(board),
        "aging_rows": [(labels[b.name], b.amount) for b in board.aging or []],
        "finance": finance,
        "range": {"start": board.months[0].strftime("%Y-%m"), "end": board.months[-1].strftime("%Y-%m")},
        "recent_audit": audit_log_list(tenant=tenant)[:RECENT_CHANGES] if finance else [],
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
                created_by=request.user,
            )
        except InvalidInput as exc:
            form.add_error(None, exc.detail)
        else:
            form = ApiKeyForm()
    response = render(
        request,
        "backoffice/api_keys.html",
        {"keys": api_key_list(tenant=tenant), "form": form, "new_key": new_key},
    )
    if new_key:
        add_never_cache_headers(response)  # the key is shown this once: no cache may keep the page
    return response


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
    page = page_of(request, qs)
    return render(request, "backoffice/audit_log.html", {"page": page, "object_type": object_type or ""})
