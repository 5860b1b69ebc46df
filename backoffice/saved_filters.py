"""Saved filters of the back-office lists (invoices, subscriptions, customers, payments): a staff
user saves the list's current filter under a name, applies it again from the list's menu, or
deletes it. Each user sees only their own, in the current tenant (``tenancy.saved_filters``).

A saved filter is the list's query string, kept to the parameters the list takes. The list's own
filter form validates it when it is saved and again when it is applied: a filter that no longer
applies (a bill run deleted since, say) is refused with the reason, never applied half."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from backoffice.access import EVERYONE, FINANCE, current_tenant, staff_view
from backoffice.invoicing.forms import FILTER_NAMES, InvoiceFilterForm
from backoffice.pages import clean_text
from backoffice.payments.forms import PaymentFilterForm
from billing_platform.errors import DomainError, InvalidInput
from invoicing.selectors import bill_run_get
from subscriptions.models import SubscriptionStatus
from tenancy.models import SavedFilter, Tenant
from tenancy.saved_filters import saved_filter_delete, saved_filter_get, saved_filter_list, saved_filter_save


class SearchFilterForm(forms.Form):
    q = forms.CharField(label=gettext_lazy("Search"), required=False, max_length=200)


class SubscriptionFilterForm(SearchFilterForm):
    status = forms.ChoiceField(label=gettext_lazy("Status"), required=False, choices=SubscriptionStatus.choices)
    customer = forms.CharField(label=gettext_lazy("Customer"), required=False, max_length=200)


def _form_errors(form: forms.Form) -> list[str]:
    return ["%s: %s" % (form.fields[name].label, error) for name, errors in form.errors.items() for error in errors]


def _invoice_errors(query: QueryDict, tenant: Tenant) -> list[str]:
    errors = _form_errors(InvoiceFilterForm(query))
    run = query.get("run", "")
    if run:
        try:
            bill_run_get(tenant=tenant, pk=run)
        except DomainError:
            errors.append(_("Bill run: it no longer exists."))
    return errors


def _form_check(form_class: type[forms.Form]) -> Callable[[QueryDict, Tenant], list[str]]:
    def check(query: QueryDict, tenant: Tenant) -> list[str]:
        return _form_errors(form_class(query))

    return check


@dataclass(frozen=True)
class FilteredList:
    """A list whose filters can be saved: its page, the parameters of its filter, the check of
    their values (error messages, none when valid), and the roles that see it."""

    url_name: str
    params: tuple[str, ...]
    errors: Callable[[QueryDict, Tenant], list[str]]
    roles: frozenset[str] = EVERYONE


LISTS = {
    "invoices": FilteredList("backoffice:invoices", FILTER_NAMES, _invoice_errors),
    "subscriptions": FilteredList(
        "backoffice:subscription-list", ("status", "q", "customer"), _form_check(SubscriptionFilterForm)
    ),
    "customers": FilteredList("backoffice:customers", ("q",), _form_check(SearchFilterForm)),
    "payments": FilteredList(
        "backoffice:payments",
        ("customer", "method", "status", "date_from", "date_to"),
        _form_check(PaymentFilterForm),
        FINANCE,
    ),
}


def filter_query(list_name: str, raw: str) -> str:
    """``raw`` (a query string, with or without its "?") kept to the list's parameters, in the
    list's order, without empty values or the page number."""
    query = QueryDict(raw.lstrip("?"))
    kept = QueryDict(mutable=True)
    for name in LISTS[list_name].params:
        value = clean_text(query.get(name, ""))
        if value:
            kept[name] = value
    return kept.urlencode()


def _list_or_404(request: HttpRequest, list_name: str) -> FilteredList:
    found = LISTS.get(list_name)
    membership = getattr(request, "membership", None)
    if found is None or membership is None or membership.role not in found.roles:
        raise Http404("No such list.")
    return found


def _to_list(filtered: FilteredList, query: str = "") -> HttpResponse:
    return redirect(reverse(filtered.url_name) + ("?" + query if query else ""))


@staff_view(EVERYONE)
@require_POST
def saved_filter_new(request: HttpRequest) -> HttpResponse:
    list_name = request.POST.get("list", "")
    filtered = _list_or_404(request, list_name)
    tenant = current_tenant(request)
    query = filter_query(list_name, request.POST.get("query", ""))
    if not query:
        messages.error(request, _("Choose a filter first: there is nothing to save."))
        return _to_list(filtered)
    errors = filtered.errors(QueryDict(query), tenant)
    if errors:
        messages.error(request, _("Not saved: %(errors)s") % {"errors": "; ".join(errors)})
        return _to_list(filtered, query)
    try:
        saved = saved_filter_save(
            tenant=tenant,
            user=request.user,
            list_name=list_name,
            name=clean_text(request.POST.get("name", "")),
            query=query,
        )
    except InvalidInput as exc:
        messages.error(request, _("Not saved: %(errors)s") % {"errors": _input_error(exc)})
    else:
        messages.success(request, _("Filter “%(name)s” saved.") % {"name": saved.name})
    return _to_list(filtered, query)


def _input_error(exc: InvalidInput) -> str:
    code = exc.errors[0].code if exc.errors else ""
    messages_by_code = {
        "required": _("give the filter a name."),
        "too_long": _("the name or the filter is too long."),
        "too_many": _("keep at most 30 saved filters per list: delete one first."),
    }
    return str(messages_by_code.get(code, exc.detail))


def _saved_or_404(request: HttpRequest, pk: str) -> tuple[SavedFilter, FilteredList]:
    try:
        saved = saved_filter_get(tenant=current_tenant(request), user=request.user, pk=pk)
    except DomainError:
        raise Http404("No such saved filter.") from None
    return saved, _list_or_404(request, saved.list)


@staff_view(EVERYONE)
def saved_filter_apply(request: HttpRequest, pk: str) -> HttpResponse:
    """Open the list with the saved filter, once the list's form has found it still valid."""
    saved, filtered = _saved_or_404(request, pk)
    query = filter_query(saved.list, saved.query)
    errors = filtered.errors(QueryDict(query), current_tenant(request))
    if errors:
        messages.error(
            request,
            _("The saved filter “%(name)s” no longer applies: %(errors)s")
            % {"name": saved.name, "errors": "; ".join(errors)},
        )
        return _to_list(filtered)
    return _to_list(filtered, query)


@staff_view(EVERYONE)
@require_POST
def saved_filter_delete_view(request: HttpRequest, pk: str) -> HttpResponse:
    saved, filtered = _saved_or_404(request, pk)
    saved_filter_delete(tenant=current_tenant(request), user=request.user, pk=saved.pk)
    messages.success(request, _("Saved filter “%(name)s” deleted.") % {"name": saved.name})
    return _to_list(filtered, filter_query(saved.list, request.POST.get("query", "")))


def saved_filters_menu(request: HttpRequest, list_name: str) -> dict[str, Any]:
    """What the saved-filters bar of a list shows: the user's filters and the current filter."""
    return {
        "list_name": list_name,
        "saved": list(saved_filter_list(tenant=current_tenant(request), user=request.user, list_name=list_name)),
        "query": filter_query(list_name, request.GET.urlencode()),
    }
