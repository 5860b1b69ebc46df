"""The portal users page, for a customer's portal admins: who at the customer may log in, with which
role; invite a colleague, change a role, remove someone. The same services as the back-office and
the API (``customers.portal_users``), which audit every change."""

from typing import Any

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from billing_platform.errors import DomainError, InvalidInput
from customers.errors import PortalUserEmailTaken, PortalUserSelfChange
from customers.models import PortalRole, PortalUser
from customers.portal_users import (
    portal_user_get,
    portal_user_invite,
    portal_user_list,
    portal_user_remove,
    portal_user_update,
)
from portal.access import ADMINS, current_portal, portal_actor, portal_view

# The services speak English (for the API); the page says it in the reader's language.
FIELD_ERRORS = {
    "invalid_email": gettext_lazy("Enter a valid email address."),
    "too_long": gettext_lazy("This value is too long."),
    "invalid_choice": gettext_lazy("Choose one of the roles."),
}


class InviteForm(forms.Form):
    email = forms.EmailField(label=gettext_lazy("E-mail address"), max_length=254)
    name = forms.CharField(label=gettext_lazy("Name"), max_length=200, required=False)
    role = forms.ChoiceField(label=gettext_lazy("Role"), choices=PortalRole.choices, initial=PortalRole.VIEWER)


class RoleForm(forms.Form):
    role = forms.ChoiceField(label=gettext_lazy("Role"), choices=PortalRole.choices)


def _base_url(request: HttpRequest) -> str:
    return request.build_absolute_uri("/").rstrip("/")


def _page(request: HttpRequest, form: InviteForm | None = None, status: int = 200) -> HttpResponse:
    portal = current_portal(request)
    users = list(portal_user_list(tenant=portal.tenant, customer=portal.customer))
    context: dict[str, Any] = {
        "users": users,
        "form": form or InviteForm(),
        "roles": PortalRole.choices,
        "me": portal.user.pk if portal.user else None,
    }
    return render(request, "portal/users/list.html", context, status=status)


@portal_view(ADMINS)
def users(request: HttpRequest) -> HttpResponse:
    return _page(request)


@portal_view(ADMINS)
def invite(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return redirect("portal:users")
    portal = current_portal(request)
    form = InviteForm(request.POST)
    if form.is_valid():
        try:
            portal_user_invite(
                tenant=portal.tenant,
                customer=portal.customer,
                email=form.cleaned_data["email"],
                name=form.cleaned_data["name"],
                role=form.cleaned_data["role"],
                actor=portal_actor(request),
                at=timezone.now(),
                base_url=_base_url(request),
            )
        except PortalUserEmailTaken:
            form.add_error("email", _("This address already has a portal login with us."))
        except InvalidInput as exc:
            for error in exc.errors:
                form.add_error(
                    error.field if error.field in form.fields else None, FIELD_ERRORS.get(error.code, error.message)
                )
        else:
            messages.success(
                request, _("Invitation sent to %(email)s.") % {"email": form.cleaned_data["email"].lower()}
            )
            return redirect("portal:users")
    return _page(request, form, status=400)


def _user(request: HttpRequest, user_id: str) -> PortalUser:
    portal = current_portal(request)
    try:
        user = portal_user_get(tenant=portal.tenant, customer=portal.customer, user_id=str(user_id))
    except DomainError:
        raise Http404("No such portal user.") from None
    user.customer = portal.customer
    return user


@portal_view(ADMINS)
def role_change(request: HttpRequest, user_id: str) -> HttpResponse:
    # Looked up first: another customer's user is not found, whatever the method.
    user = _user(request, user_id)
    if request.method != "POST":
        return redirect("portal:users")
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose one of the roles."))
        return redirect("portal:users")
    try:
        portal_user_update(
            tenant=current_portal(request).tenant,
            user=user,
            role=form.cleaned_data["role"],
            actor=portal_actor(request),
            at=timezone.now(),
        )
    except PortalUserSelfChange:
        messages.error(request, _("You cannot change your own role: ask another admin of your account."))
    else:
        messages.success(request, _("Role of %(email)s changed.") % {"email": user.email})
    return redirect("portal:users")


@portal_view(ADMINS)
def remove(request: HttpRequest, user_id: str) -> HttpResponse:
    user = _user(request, user_id)
    if request.method != "POST":
        return redirect("portal:users")
    try:
        portal_user_remove(
            tenant=current_portal(request).tenant, user=user, actor=portal_actor(request), at=timezone.now()
        )
    except PortalUserSelfChange:
        messages.error(request, _("You cannot remove yourself: ask another admin of your account."))
    else:
        messages.success(request, _("%(email)s can no longer log in to the portal.") % {"email": user.email})
    return redirect("portal:users")
